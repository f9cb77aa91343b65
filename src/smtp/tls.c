/* smtp_tls.c -- the OpenSSL side of STARTTLS (RFC 3207).
 *
 * Opportunistic TLS does not check certificates (RFC 7435: an unverified
 * encrypted channel is better than a clear one); "verify" checks the
 * chain and the MX host name (RFC 6125 via X509_check_host). */
#include "smtp/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

struct mxr__tls_ctx {
    SSL_CTX *ssl;
    BIO_METHOD *bio; /* sockets without SIGPIPE, see nosig_write */
};

struct mxr__tls {
    SSL *ssl;
};

static void last_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    if (e) {
        ERR_error_string_n(e, buf, sizeof buf);
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

/* OpenSSL's socket BIO writes with write(2): a peer that closed mid-TLS
 * would raise SIGPIPE in the embedder's process. This BIO uses send(2)
 * with MSG_NOSIGNAL, and recv(2), on the descriptor in its data. */
static int nosig_write(BIO *b, const char *buf, size_t len, size_t *done)
{
    BIO_clear_retry_flags(b);
    ssize_t n = send(BIO_get_fd(b, NULL), buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
        *done = (size_t)n;
        return 1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    return 0;
}

static int nosig_read(BIO *b, char *buf, size_t len, size_t *done)
{
    BIO_clear_retry_flags(b);
    ssize_t n = recv(BIO_get_fd(b, NULL), buf, len, 0);
    if (n > 0) {
        *done = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return 0;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    switch (cmd) {
    case BIO_C_SET_FD:
        BIO_set_data(b, (void *)(intptr_t)(*(int *)ptr + 1));
        BIO_set_init(b, 1);
        return 1;
    case BIO_C_GET_FD: {
        int fd = (int)(intptr_t)BIO_get_data(b) - 1;
        if (ptr)
            *(int *)ptr = fd;
        return fd;
    }
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *nosig_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "mxroute socket");
    if (m && (!BIO_meth_set_write_ex(m, nosig_write) ||
              !BIO_meth_set_read_ex(m, nosig_read) ||
              !BIO_meth_set_ctrl(m, nosig_ctrl))) {
        BIO_meth_free(m);
        m = NULL;
    }
    return m;
}

mxr__tls_ctx *mxr__tls_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    mxr__tls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->ssl = SSL_CTX_new(TLS_client_method());
    c->bio = nosig_method();
    if (!c->ssl || !c->bio) {
        last_error(err, errlen, "TLS context");
        mxr__tls_ctx_free(c);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    /* Writes go out of a buffer that may move between retries. */
    SSL_CTX_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    int ok = ca_file ? SSL_CTX_load_verify_locations(c->ssl, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(c->ssl);
    if (ok != 1) {
        last_error(err, errlen, "loading trust anchors");
        mxr__tls_ctx_free(c);
        return NULL;
    }
    return c;
}

void mxr__tls_ctx_free(mxr__tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    BIO_meth_free(c->bio);
    free(c);
}

mxr__tls *mxr__tls_new(mxr__tls_ctx *ctx, int fd, const char *host, bool verify)
{
    mxr__tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(ctx->ssl);
    BIO *bio = BIO_new(ctx->bio);
    if (bio)
        BIO_set_fd(bio, fd, BIO_NOCLOSE);
    if (!t->ssl || !bio) {
        BIO_free(bio);
        mxr__tls_free(t);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(t->ssl, bio, bio); /* the SSL owns it now */
    if (SSL_set_tlsext_host_name(t->ssl, host) != 1) {
        mxr__tls_free(t);
        ERR_clear_error();
        return NULL;
    }
    if (verify) {
        SSL_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(t->ssl, host) != 1) {
            mxr__tls_free(t);
            ERR_clear_error();
            return NULL;
        }
    } else {
        SSL_set_verify(t->ssl, SSL_VERIFY_NONE, NULL);
    }
    SSL_set_connect_state(t->ssl);
    return t;
}

void mxr__tls_free(mxr__tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    free(t);
}

/* Map an SSL_get_error code to our step results. */
static int step_result(mxr__tls *t, int rc)
{
    switch (SSL_get_error(t->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return MXR__TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return MXR__TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
    case SSL_ERROR_SYSCALL:
        return MXR__TLS_CLOSED;
    default:
        return MXR__TLS_FAILED;
    }
}

int mxr__tls_handshake(mxr__tls *t, char *err, size_t errlen)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return MXR__TLS_DONE;
    int r = step_result(t, rc);
    if (r == MXR__TLS_WANT_READ || r == MXR__TLS_WANT_WRITE)
        return r;
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK) {
        snprintf(err, errlen, "certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (r == MXR__TLS_CLOSED) {
        snprintf(err, errlen, "connection closed during the TLS handshake");
        ERR_clear_error();
    } else {
        last_error(err, errlen, "TLS handshake failed");
    }
    return MXR__TLS_FAILED;
}

ssize_t mxr__tls_read(mxr__tls *t, void *buf, size_t len)
{
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int r = step_result(t, n);
    ERR_clear_error();
    return r == MXR__TLS_FAILED ? MXR__TLS_CLOSED : r;
}

ssize_t mxr__tls_write(mxr__tls *t, const void *buf, size_t len)
{
    ERR_clear_error();
    int n = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int r = step_result(t, n);
    ERR_clear_error();
    return r == MXR__TLS_FAILED ? MXR__TLS_CLOSED : r;
}

void mxr__tls_describe(const mxr__tls *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl));
}
