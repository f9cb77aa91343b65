/* test_smtp_tls.c -- src/smtp_tls.c on its own: the client side of
 * STARTTLS over a real non-blocking socket pair, against an OpenSSL server
 * on the other end with a throwaway key and self-signed certificate made
 * here. One thread drives both ends in turn, so every step is the
 * non-blocking one the session makes: handshake, data both ways, the
 * WANT_READ / WANT_WRITE answers, certificate checks (on only when asked:
 * opportunistic TLS takes any certificate), SNI, a peer that closes or
 * answers in plain text, and writes to a closed peer that must not raise
 * SIGPIPE. */
#include "support.h"

#include "smtp/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST "mx.tls.test"

/* Made once: the server's key and certificate (for HOST), another
 * self-signed certificate (a trust anchor that does not sign HOST's), and
 * the two as PEM files for mxr__tls_ctx_new. */
static EVP_PKEY *key;
static X509 *cert, *stranger;
static char cert_file[64], stranger_file[64], junk_file[64];

typedef struct pair {
    int fd[2]; /* [0] client (mxr__tls), [1] server (OpenSSL) */
    mxr__tls_ctx *ctx;
    mxr__tls *c;
    SSL_CTX *sctx;
    SSL *s;
    char sni[256]; /* what the server was asked for */
    char err[256];
} pair;

static int group_setup(void **state)
{
    (void)state;
    key = EVP_EC_gen("P-256");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    if (!key || !other)
        return -1;
    cert = mxr_test_self_signed(key, HOST);
    stranger = mxr_test_self_signed(other, HOST); /* same name, other key */
    EVP_PKEY_free(other);
    mxr_test_write_pem(cert_file, sizeof cert_file, cert);
    mxr_test_write_pem(stranger_file, sizeof stranger_file, stranger);
    mxr_test_write_pem(junk_file, sizeof junk_file, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(cert_file);
    unlink(stranger_file);
    unlink(junk_file);
    X509_free(cert);
    X509_free(stranger);
    EVP_PKEY_free(key);
    return 0;
}

/* ------------------------------------------------------------ the pair */

static int on_servername(SSL *s, int *alert, void *arg)
{
    (void)alert;
    pair *p = arg;
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    snprintf(p->sni, sizeof p->sni, "%s", name ? name : "");
    return SSL_TLSEXT_ERR_OK;
}

/* A connected non-blocking socket pair, the client context (ca_file as
 * mxr__tls_ctx_new takes it) and connection, and the server end. */
static pair *pair_new(const char *ca_file, const char *host, bool verify)
{
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    for (int i = 0; i < 2; i++)
        fcntl(p->fd[i], F_SETFL, fcntl(p->fd[i], F_GETFL) | O_NONBLOCK);
    p->ctx = mxr__tls_ctx_new(ca_file, p->err, sizeof p->err);
    assert_non_null(p->ctx);
    p->c = mxr__tls_new(p->ctx, p->fd[0], host, verify);
    assert_non_null(p->c);
    p->sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(p->sctx);
    assert_int_equal(SSL_CTX_use_certificate(p->sctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(p->sctx, key), 1);
    SSL_CTX_set_tlsext_servername_callback(p->sctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(p->sctx, p);
    p->s = SSL_new(p->sctx);
    assert_non_null(p->s);
    SSL_set_fd(p->s, p->fd[1]);
    SSL_set_accept_state(p->s);
    return p;
}

static void pair_free(pair *p)
{
    mxr__tls_free(p->c);
    mxr__tls_ctx_free(p->ctx);
    SSL_free(p->s);
    SSL_CTX_free(p->sctx);
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    free(p);
    ERR_clear_error();
}

/* Both ends take turns until the client's handshake is over (DONE or
 * FAILED) and the server's has stopped wanting more; the client's last
 * result. A handshake needs a handful of turns: 100 means it is stuck. */
static int handshake(pair *p)
{
    int c = MXR__TLS_WANT_WRITE;
    bool s_over = false;
    for (int turn = 0; turn < 100; turn++) {
        if (c == MXR__TLS_WANT_READ || c == MXR__TLS_WANT_WRITE)
            c = mxr__tls_handshake(p->c, p->err, sizeof p->err);
        if (!s_over) {
            int r = SSL_do_handshake(p->s);
            int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(p->s, r);
            s_over = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
        }
        if (c != MXR__TLS_WANT_READ && c != MXR__TLS_WANT_WRITE && s_over)
            return c;
    }
    fail_msg("handshake stuck (client %d)", c);
    return c;
}

/* Read exactly len bytes on the client, letting the server end flush. */
static void client_read_all(pair *p, char *buf, size_t len)
{
    size_t got = 0;
    for (int turn = 0; got < len && turn < 1000; turn++) {
        ssize_t n = mxr__tls_read(p->c, buf + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else
            assert_int_equal(n, MXR__TLS_WANT_READ);
    }
    assert_int_equal(got, len);
}

/* ------------------------------------------------------------- tests */

static void test_handshake_and_data(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    char buf[64];
    /* Nothing sent yet: the first step writes the ClientHello and waits. */
    assert_int_equal(mxr__tls_handshake(p->c, p->err, sizeof p->err),
                     MXR__TLS_WANT_READ);
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    assert_string_equal(p->sni, HOST); /* SNI in every mode */
    mxr__tls_describe(p->c, buf, sizeof buf);
    assert_true(strncmp(buf, "TLSv1.", 6) == 0);
    assert_non_null(strchr(buf, ' ')); /* "protocol cipher" */
    /* Nothing to read: WANT_READ, not an error. */
    assert_int_equal(mxr__tls_read(p->c, buf, sizeof buf), MXR__TLS_WANT_READ);
    /* Client to server and back, byte for byte. */
    assert_int_equal(mxr__tls_write(p->c, "EHLO client\r\n", 13), 13);
    int n = SSL_read(p->s, buf, sizeof buf);
    assert_int_equal(n, 13);
    assert_memory_equal(buf, "EHLO client\r\n", 13);
    assert_int_equal(SSL_write(p->s, "250 ok\r\n", 8), 8);
    client_read_all(p, buf, 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);
    pair_free(p);
}

/* The server reads what arrived so far and checks it against out. */
static size_t server_drain(pair *p, const char *out, size_t chunk, size_t got)
{
    static char in[16384];
    int r;
    while ((r = SSL_read(p->s, in, sizeof in)) > 0) {
        for (int i = 0; i < r; i++)
            assert_int_equal(in[i], out[(got + (size_t)i) % chunk]);
        got += (size_t)r;
    }
    assert_int_equal(SSL_get_error(p->s, r), SSL_ERROR_WANT_READ);
    return got;
}

/* A full socket: writes take what fits (partial writes are on), then say
 * WANT_WRITE; the same write, retried once the peer has read, goes
 * through; everything arrives whole and in order. */
static void test_want_write_and_partial_writes(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    enum { CHUNK = 16384 };
    static char out[CHUNK];
    size_t sent = 0, got = 0;
    ssize_t n;
    for (size_t i = 0; i < CHUNK; i++)
        out[i] = (char)('a' + i % 26);
    while ((n = mxr__tls_write(p->c, out + sent % CHUNK,
                               CHUNK - sent % CHUNK)) > 0)
        sent += (size_t)n;
    assert_int_equal(n, MXR__TLS_WANT_WRITE);
    assert_true(sent > 0);
    for (int turn = 0; n <= 0 && turn < 100; turn++) {
        got = server_drain(p, out, CHUNK, got);
        n = mxr__tls_write(p->c, out + sent % CHUNK, CHUNK - sent % CHUNK);
    }
    assert_true(n > 0);
    sent += (size_t)n;
    got = server_drain(p, out, CHUNK, got);
    assert_int_equal(got, sent);
    pair_free(p);
}

/* Opportunistic (no verify) takes a certificate for another name that no
 * trust anchor signed: RFC 7435. */
static void test_no_verify_takes_any_certificate(void **state)
{
    (void)state;
    pair *p = pair_new(stranger_file, "not-the-name.test", false);
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    pair_free(p);
}

static void test_verify_with_the_right_anchor(void **state)
{
    (void)state;
    pair *p = pair_new(cert_file, HOST, true);
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    pair_free(p);
}

/* verify: the failure says so, and why, in the error text. */
static void expect_verify_failure(const char *ca, const char *host,
                                  const char *why)
{
    pair *p = pair_new(ca, host, true);
    assert_int_equal(handshake(p), MXR__TLS_FAILED);
    const char *prefix = "certificate verification failed: ";
    if (strncmp(p->err, prefix, strlen(prefix)) != 0 || !strstr(p->err, why))
        fail_msg("error \"%s\", want \"%s...%s\"", p->err, prefix, why);
    pair_free(p);
}

static void test_verify_wrong_name(void **state)
{
    (void)state;
    expect_verify_failure(cert_file, "other.tls.test", "hostname mismatch");
    /* No partial wildcards, and no match on a parent name either. */
    expect_verify_failure(cert_file, "x." HOST, "hostname mismatch");
}

static void test_verify_unknown_anchor(void **state)
{
    (void)state;
    expect_verify_failure(stranger_file, HOST, "self");
}

/* The peer closes before a single TLS byte: a failed handshake with a
 * clear text, no SIGPIPE (the ClientHello goes to a closed socket). */
static void test_peer_closed_before_handshake(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    close(p->fd[1]);
    p->fd[1] = -1;
    assert_int_equal(mxr__tls_handshake(p->c, p->err, sizeof p->err),
                     MXR__TLS_FAILED);
    assert_string_equal(p->err, "connection closed during the TLS handshake");
    pair_free(p);
}

/* The peer reads the ClientHello and hangs up: also a closed connection. */
static void test_peer_closes_after_client_hello(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    char buf[4096];
    assert_int_equal(mxr__tls_handshake(p->c, p->err, sizeof p->err),
                     MXR__TLS_WANT_READ);
    assert_true(recv(p->fd[1], buf, sizeof buf, 0) > 0);
    shutdown(p->fd[1], SHUT_WR);
    int r = mxr__tls_handshake(p->c, p->err, sizeof p->err);
    assert_int_equal(r, MXR__TLS_FAILED);
    assert_string_equal(p->err, "connection closed during the TLS handshake");
    pair_free(p);
}

/* Plain text where the ServerHello belongs: failed, with OpenSSL's
 * reason after our prefix. */
static void test_peer_answers_in_plain_text(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    char buf[4096];
    static const char junk[] = "this is not TLS\r\nthis is not TLS\r\n";
    assert_int_equal(mxr__tls_handshake(p->c, p->err, sizeof p->err),
                     MXR__TLS_WANT_READ);
    assert_true(recv(p->fd[1], buf, sizeof buf, 0) > 0);
    assert_int_equal(send(p->fd[1], junk, sizeof junk - 1, 0),
                     (ssize_t)sizeof junk - 1);
    assert_int_equal(mxr__tls_handshake(p->c, p->err, sizeof p->err),
                     MXR__TLS_FAILED);
    const char *prefix = "TLS handshake failed: ";
    assert_true(strncmp(p->err, prefix, strlen(prefix)) == 0);
    assert_true(strlen(p->err) > strlen(prefix)); /* and why */
    pair_free(p);
}

/* After the handshake: close_notify reads as CLOSED; a write to a peer
 * that is gone is CLOSED too, and raises no SIGPIPE (the test process
 * would die of it). */
static void test_closed_after_handshake(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    char buf[64];
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    SSL_shutdown(p->s);
    assert_int_equal(mxr__tls_read(p->c, buf, sizeof buf), MXR__TLS_CLOSED);
    close(p->fd[1]);
    p->fd[1] = -1;
    ssize_t n = 0;
    for (int i = 0; i < 4 && n >= 0; i++) /* the first may still fit */
        n = mxr__tls_write(p->c, "QUIT\r\n", 6);
    assert_int_equal(n, MXR__TLS_CLOSED);
    pair_free(p);
}

/* A peer that vanishes mid-session without close_notify: CLOSED. */
static void test_reset_after_handshake(void **state)
{
    (void)state;
    pair *p = pair_new(NULL, HOST, false);
    char buf[64];
    assert_int_equal(handshake(p), MXR__TLS_DONE);
    close(p->fd[1]);
    p->fd[1] = -1;
    assert_int_equal(mxr__tls_read(p->c, buf, sizeof buf), MXR__TLS_CLOSED);
    pair_free(p);
}

static void test_context_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(mxr__tls_ctx_new("/nonexistent/ca.pem", err, sizeof err));
    assert_true(strncmp(err, "loading trust anchors", 21) == 0);
    err[0] = '\0';
    assert_null(mxr__tls_ctx_new(junk_file, err, sizeof err));
    assert_true(strncmp(err, "loading trust anchors", 21) == 0);
    /* A short error buffer is cut, never overrun. */
    char small[8];
    memset(small, '#', sizeof small);
    assert_null(mxr__tls_ctx_new("/nonexistent/ca.pem", small, 5));
    assert_int_equal(strlen(small), 4);
    assert_int_equal(small[5], '#');
    mxr__tls_ctx_free(NULL);
    mxr__tls_free(NULL);
    ERR_clear_error();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_want_write_and_partial_writes),
        cmocka_unit_test(test_no_verify_takes_any_certificate),
        cmocka_unit_test(test_verify_with_the_right_anchor),
        cmocka_unit_test(test_verify_wrong_name),
        cmocka_unit_test(test_verify_unknown_anchor),
        cmocka_unit_test(test_peer_closed_before_handshake),
        cmocka_unit_test(test_peer_closes_after_client_hello),
        cmocka_unit_test(test_peer_answers_in_plain_text),
        cmocka_unit_test(test_closed_after_handshake),
        cmocka_unit_test(test_reset_after_handshake),
        cmocka_unit_test(test_context_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
