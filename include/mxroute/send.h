/*
 * mxroute/send.h -- the built-in SMTP client: mxr_send and its events.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * Lifetime: the done callback fires exactly once, from
 * mxr_engine_process or, with MXR_EDESTROYED, from mxr_engine_destroy;
 * the attempt must stay valid and untouched until then. An event's
 * pointers are valid during the event callback only; mxr_send_event is
 * allocated by the library and may gain fields at its end.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_SEND_H
#define MXROUTE_SEND_H

#include <stdbool.h>
#include <stddef.h>

#include "mxroute/engine.h"
#include "mxroute/failover.h"
#include "mxroute/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mxr_send runs an attempt against real servers: for each hop the
 * failover machine hands out, it opens an SMTP session to that exact
 * address (no second DNS lookup), reports every RCPT reply and how the
 * session ended to the machine, and follows its decision. It is driven
 * by the same loop as routing (mxr_engine_fds/timeout/process, or
 * mxr_engine_run). Sockets never raise SIGPIPE. After on_done, a
 * session may still wait for the reply to its QUIT (at most 10 s):
 * mxr_engine_timeout stays >= 0 until it closes; mxr_engine_destroy
 * closes it at once. */

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_send_event_kind {
    MXR_SEND_EVENT_RCPT = 0,   /* a recipient's RCPT reply */
    MXR_SEND_EVENT_SESSION = 1 /* a session ended (one per hop) */
} mxr_send_event_kind;

/* Allocated by the library: fields may be added at the end. */
typedef struct mxr_send_event {
    mxr_send_event_kind kind;
    const mxr_hop *hop;
    bool tls;                   /* the session ran over TLS */
    size_t rcpt;                /* RCPT: the recipient's index */
    const mxr_outcome *outcome; /* SESSION: where and how it ended; a
                                   probe that got through RCPT ends at
                                   {RCPT, OK} */
    mxr_action action;          /* what the failover machine decided */
    size_t accepted;            /* SESSION: recipients taken at RCPT */
} mxr_send_event;

/* Pointers in an event are valid during the call only. */
typedef void (*mxr_send_event_fn)(void *arg, const mxr_send_event *ev);
/* status: MXR_OK when the attempt ran to its end (see the recipients and
 * mxr_attempt_verdict), MXR_EDESTROYED when the engine is being
 * destroyed: free the attempt in this callback, while the engine is
 * still valid. */
typedef void (*mxr_send_done_fn)(void *arg, mxr_status status,
                                 mxr_attempt *attempt);

/* Stop after the RCPT phase and QUIT instead of sending DATA: the
 * recipients a host accepted count as delivered in the attempt (each with
 * the RCPT reply that accepted it), so the walk goes on exactly as a real
 * delivery would. */
#define MXR_SEND_PROBE 0x1u

/* Deliver msg (len bytes; RFC 5322 text with any line ends: sent with
 * CRLF and dot-stuffing) along attempt, from the attempt's sender to its
 * pending recipients. msg may be NULL with MXR_SEND_PROBE; it is copied
 * (in its wire form) before mxr_send returns. The attempt must stay
 * valid and untouched until on_done fires (exactly once, from
 * mxr_engine_process or mxr_engine_destroy). MXR_EINVAL for an address
 * with control characters or over 254 octets.
 * on_event may be NULL. */
MXR_EXTERN mxr_status mxr_send(mxr_engine *engine, mxr_attempt *attempt,
                               const char *msg, size_t len, unsigned flags,
                               mxr_send_event_fn on_event,
                               mxr_send_done_fn on_done, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_SEND_H */
