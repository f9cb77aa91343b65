/* smtp_tls.h -- STARTTLS over a non-blocking socket with OpenSSL. One
 * context per engine, made on first use; one connection object per
 * session. Calls never block: they say which readiness they wait for. */
#ifndef MXR_SMTP_TLS_H
#define MXR_SMTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct mxr__tls_ctx mxr__tls_ctx;
typedef struct mxr__tls mxr__tls;

/* Result of a TLS step. */
enum {
    MXR__TLS_DONE = 0,
    MXR__TLS_WANT_READ = -1,
    MXR__TLS_WANT_WRITE = -2,
    MXR__TLS_FAILED = -3, /* handshake or verification failed */
    MXR__TLS_CLOSED = -4  /* the peer closed or the transport broke */
};

/* ca_file: trust anchors for verification, or NULL for the system's. */
mxr__tls_ctx *mxr__tls_ctx_new(const char *ca_file, char *err, size_t errlen);
void mxr__tls_ctx_free(mxr__tls_ctx *ctx);

/* Start a client connection on fd. host is sent as SNI and, when verify
 * is set, checked against the certificate along with its chain. */
mxr__tls *mxr__tls_new(mxr__tls_ctx *ctx, int fd, const char *host,
                       bool verify);
void mxr__tls_free(mxr__tls *t);

/* Drive the handshake: MXR__TLS_DONE, WANT_*, or FAILED (err says why). */
int mxr__tls_handshake(mxr__tls *t, char *err, size_t errlen);
/* Bytes read/written (> 0), or a negative MXR__TLS_* value. */
ssize_t mxr__tls_read(mxr__tls *t, void *buf, size_t len);
ssize_t mxr__tls_write(mxr__tls *t, const void *buf, size_t len);
/* Protocol and cipher, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384". */
void mxr__tls_describe(const mxr__tls *t, char *buf, size_t len);

#endif
