/* smtp_session.h -- one SMTP client session (RFC 5321) to one address,
 * non-blocking, run by the engine's event loop: connect, greeting,
 * EHLO (HELO fallback), STARTTLS (RFC 3207), MAIL, RCPT per recipient,
 * DATA, end-of-data, QUIT. The session reports each RCPT reply and how it
 * ended; what to do next is the failover machine's business (send.c). */
#ifndef MXR_SMTP_SESSION_H
#define MXR_SMTP_SESSION_H

#include "core/core.h"

typedef struct mxr__smtp mxr__smtp;

/* The sessions of an engine: one I/O source of the core, with what every
 * session shares (EHLO name, TLS context, timeouts). */
typedef struct mxr__smtp_pool mxr__smtp_pool;

typedef struct mxr__smtp_config {
    const char *helo;   /* EHLO name (copied) */
    const char *tls_ca; /* trust anchors for MXR_TLS_VERIFY, or NULL */
    /* stage timeouts in ms (RFC 5321 4.5.3.2 defaults in options.c) */
    int64_t connect_ms, greeting_ms, tls_ms, command_ms, data_ms, block_ms,
        dot_ms;
    size_t max_reply; /* octets of one reply kept */
} mxr__smtp_config;

/* Registers the pool with the core. NULL when out of memory. */
mxr__smtp_pool *mxr__smtp_pool_new(mxr__core *core,
                                   const mxr__smtp_config *cfg);
/* After the core's shutdown (which closed every session). */
void mxr__smtp_pool_free(mxr__smtp_pool *pool);

/* What one session carries out. Every pointer stays valid until the end
 * event fires; the session keeps no reference after it. */
typedef struct mxr__smtp_job {
    const char *host; /* MX host name: SNI and certificate checks */
    const char *sender;
    const char *const *rcpts; /* addresses for RCPT TO, in order */
    size_t nrcpts;
    const char *wire; /* DATA bytes, terminator included; NULL: probe,
                         stop after RCPT */
    size_t wire_len;
    bool body_8bit;     /* ask for BODY=8BITMIME when offered */
    bool need_smtputf8; /* an address is not ASCII (RFC 6531) */
    mxr_tls_mode tls;   /* for this hop */
} mxr__smtp_job;

typedef struct mxr__smtp_events {
    /* The RCPT reply for job->rcpts[i]. */
    void (*rcpt)(void *ud, size_t i, const mxr_outcome *reply);
    /* How the session ended: a failure at some stage, {RCPT, OK} when the
     * RCPT phase is over and no DATA follows (nobody accepted, or a
     * probe), or {DOT, OK}. accepted: recipients taken at RCPT. */
    void (*end)(void *ud, const mxr_outcome *o, bool tls, size_t accepted);
    void *ud;
} mxr__smtp_events;

/* Open a session to addr:port. Returns NULL only when out of memory; every
 * other failure (even an immediate one) is reported by the end event from
 * mxr_engine_process. */
mxr__smtp *mxr__smtp_start(mxr__smtp_pool *pool, const mxr_addr *addr,
                           uint16_t port, const mxr__smtp_job *job,
                           const mxr__smtp_events *ev);
/* Drop a session at once: no event fires, the socket is closed. */
void mxr__smtp_cancel(mxr__smtp *s);

#endif
