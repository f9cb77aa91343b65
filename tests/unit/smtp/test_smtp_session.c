/* test_smtp_session.c -- src/smtp/session.c on its own: one SMTP session
 * (mxr__smtp_start) run by a session pool on a bare core (the loop under
 * mxr_engine_fds / timeout / process) over a real loopback socket,
 * against a tiny scripted server in a thread of this test (with an
 * OpenSSL server side for STARTTLS, on a throwaway certificate). The
 * core's clock is injected and stands still while the dialogue runs,
 * so each stage's deadline is exact: nothing fires one millisecond
 * before it, the session ends at stage + timeout on it. Checked: the
 * commands on the wire in order, the RCPT and end events (stage, class,
 * code, enhanced code, text, TLS, accepted count), HELO fallback, 421,
 * positive replies where none belongs, SMTPUTF8 without downgrade,
 * STARTTLS in every mode (refused, not offered, broken handshake,
 * certificate checks), QUIT only on a usable connection, cancel and
 * destroy without events, allocation failure, and no memory left. */
#define _GNU_SOURCE /* POLLRDHUP: a peer that closed, unread data or not */
#include "support.h"

#include "base/addr.h"
#include "core/core.h"
#include "smtp/session.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MX "mx.session.test"
#define T0 1000000u /* the core clock at the start of every case */
/* Stage timeouts, all different, so a stage on the wrong timer shows. */
enum {
    T_CONNECT = 310,
    T_GREETING = 320,
    T_COMMAND = 330,
    T_TLS = 340,
    T_DATA = 350,
    T_BLOCK = 360,
    T_DOT = 370
};
/* Bounds in real time: the scripted server gives up, the pump too. */
#define SERVER_WAIT_S 10
#define PUMP_ROUNDS 1000 /* of at most 10 ms */

static SSL_CTX *server_tls;
static char ca_file[64];

/* ------------------------------------------------------ the server */

/* A script is a NULL-terminated list of steps:
 *   "> TEXT"   send TEXT as it is (CRLFs written in)
 *   "< WORDS"  read a line, log it; it must start with WORDS
 *   "body"     read the message up to the "." line, keep it
 *   "tls"      TLS server handshake; later steps go over TLS
 *   "tls-fail" a TLS server handshake the client must abort
 *   "recv"     read whatever came (at least a byte), log nothing
 *   "pause"    wait 20 ms (splits a reply over several reads)
 *   "hold"     wait, reading nothing, until the client closes (or the
 *              test ends)
 *   "close"    close the connection now
 * After the last step the server logs every line until the client
 * closes (QUIT shows there). Lines are logged without CRLF, joined by
 * '|'. */
typedef struct server {
    int listener, fd;
    uint16_t port;
    const char *const *script;
    SSL *ssl;
    pthread_t thread;
    atomic_int steps; /* steps done */
    atomic_bool accepted;
    atomic_bool release; /* the test is over: stop holding */
    char in[8192];
    size_t inlen;
    char log[2048];
    char body[65536];
    size_t body_len;
    char error[256]; /* the step that did not hold */
} server;

static ssize_t srv_recv(server *v, char *buf, size_t len)
{
    if (v->ssl)
        return SSL_read(v->ssl, buf, (int)len);
    return recv(v->fd, buf, len, 0);
}

static void srv_send(server *v, const char *text)
{
    size_t len = strlen(text);
    ssize_t n = v->ssl ? SSL_write(v->ssl, text, (int)len)
                       : send(v->fd, text, len, MSG_NOSIGNAL);
    if (n != (ssize_t)len)
        snprintf(v->error, sizeof v->error, "send \"%.200s\" failed", text);
}

/* One line with its line end into line (cut at cap - 1); its length, or
 * -1 at the end of the connection. */
static long srv_line(server *v, char *line, size_t cap)
{
    for (;;) {
        char *nl = memchr(v->in, '\n', v->inlen);
        if (nl) {
            size_t n = (size_t)(nl - v->in) + 1;
            size_t keep = n < cap ? n : cap - 1;
            memcpy(line, v->in, keep);
            line[keep] = '\0';
            memmove(v->in, v->in + n, v->inlen - n);
            v->inlen -= n;
            return (long)n;
        }
        if (v->inlen == sizeof v->in)
            return -1;
        ssize_t r = srv_recv(v, v->in + v->inlen, sizeof v->in - v->inlen);
        if (r <= 0)
            return -1;
        v->inlen += (size_t)r;
    }
}

static void srv_log(server *v, const char *line)
{
    size_t n = strcspn(line, "\r\n"), at = strlen(v->log);
    snprintf(v->log + at, sizeof v->log - at, "%s%.*s", at ? "|" : "", (int)n,
             line);
}

static bool srv_expect(server *v, const char *want)
{
    char line[1100];
    if (srv_line(v, line, sizeof line) < 0) {
        snprintf(v->error, sizeof v->error, "EOF, want \"%.200s\"", want);
        return false;
    }
    srv_log(v, line);
    if (strncmp(line, want, strlen(want)) != 0) {
        snprintf(v->error, sizeof v->error, "got \"%.100s\", want \"%.100s\"",
                 line, want);
        return false;
    }
    return true;
}

static bool srv_body(server *v)
{
    char line[1100];
    long n;
    while ((n = srv_line(v, line, sizeof line)) >= 0) {
        if (strcmp(line, ".\r\n") == 0)
            return true;
        if (v->body_len + (size_t)n <= sizeof v->body) {
            memcpy(v->body + v->body_len, line, (size_t)n);
            v->body_len += (size_t)n;
        }
    }
    snprintf(v->error, sizeof v->error, "EOF in the message");
    return false;
}

static bool srv_tls(server *v)
{
    v->ssl = SSL_new(server_tls);
    SSL_set_fd(v->ssl, v->fd);
    if (SSL_accept(v->ssl) == 1)
        return true;
    snprintf(v->error, sizeof v->error, "TLS accept failed");
    SSL_free(v->ssl);
    v->ssl = NULL;
    return false;
}

/* The client aborts the handshake (a certificate it does not accept). */
static bool srv_tls_fail(server *v)
{
    SSL *ssl = SSL_new(server_tls);
    SSL_set_fd(ssl, v->fd);
    if (SSL_accept(ssl) == 1)
        snprintf(v->error, sizeof v->error, "TLS accepted, want aborted");
    SSL_free(ssl);
    return false;
}

static bool srv_recv_any(server *v)
{
    v->inlen = 0; /* what was buffered goes too */
    return srv_recv(v, v->in, sizeof v->in) > 0;
}

/* Until the client closes, or the test lets go: a client that closes
 * with its send queue full sends no FIN until we read, so its close
 * may never show. */
static void srv_hold(server *v)
{
    struct pollfd p = {.fd = v->fd, .events = POLLRDHUP};
    for (int i = 0; i < SERVER_WAIT_S * 50 && !atomic_load(&v->release); i++)
        if (poll(&p, 1, 20) != 0)
            return;
}

/* One step; false ends the script (an error, or the connection closed). */
static bool srv_step(server *v, const char *step)
{
    if (step[0] == '>') {
        srv_send(v, step + 2);
        return !v->error[0];
    }
    if (step[0] == '<')
        return srv_expect(v, step + 2);
    if (strcmp(step, "body") == 0)
        return srv_body(v);
    if (strcmp(step, "tls") == 0)
        return srv_tls(v);
    if (strcmp(step, "tls-fail") == 0)
        return srv_tls_fail(v);
    if (strcmp(step, "recv") == 0)
        return srv_recv_any(v);
    if (strcmp(step, "pause") == 0)
        return usleep(20000) == 0;
    if (strcmp(step, "hold") == 0)
        srv_hold(v);
    else if (strcmp(step, "close") != 0)
        snprintf(v->error, sizeof v->error, "bad step \"%.200s\"", step);
    return false;
}

static void *srv_main(void *arg)
{
    server *v = arg;
    struct pollfd p = {.fd = v->listener, .events = POLLIN};
    if (poll(&p, 1, SERVER_WAIT_S * 1000) != 1)
        return NULL;
    v->fd = accept(v->listener, NULL, NULL);
    if (v->fd < 0)
        return NULL;
    struct timeval tv = {.tv_sec = SERVER_WAIT_S};
    setsockopt(v->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    atomic_store(&v->accepted, true);
    bool going = true;
    for (size_t i = 0; going && v->script[i]; i++) {
        /* "hold" counts as done when it starts: it lasts until the end. */
        bool hold = strcmp(v->script[i], "hold") == 0;
        if (hold)
            atomic_fetch_add(&v->steps, 1);
        going = srv_step(v, v->script[i]);
        if (!hold)
            atomic_fetch_add(&v->steps, 1);
    }
    char line[1100];
    while (going && srv_line(v, line, sizeof line) >= 0)
        srv_log(v, line);
    if (v->ssl) {
        SSL_free(v->ssl);
        v->ssl = NULL;
    }
    close(v->fd);
    return NULL;
}

static bool has_step(const char *const *script, const char *step)
{
    for (size_t i = 0; script[i]; i++)
        if (strcmp(script[i], step) == 0)
            return true;
    return false;
}

static size_t script_len(const char *const *script)
{
    size_t n = 0;
    while (script[n])
        n++;
    return n;
}

/* ------------------------------------------------ the client's side */

typedef struct run {
    mxr_test_alloc ta;
    uint64_t now;
    mxr__core core;
    mxr__core *e; /* &core while it is up */
    mxr__smtp_pool *pool;
    mxr__smtp *s;
    server srv;
    bool server_started;
    /* events */
    int ends;
    mxr_outcome end;
    char end_text[512], end_enh[16];
    bool end_tls;
    size_t accepted;
    char rcpts[128]; /* "i:code" of each RCPT event, space-separated */
} run;

static uint64_t fake_clock(void *ud)
{
    return ((run *)ud)->now;
}

static void on_rcpt(void *ud, size_t i, const mxr_outcome *o)
{
    run *r = ud;
    size_t at = strlen(r->rcpts);
    assert_int_equal(o->stage, MXR_STAGE_RCPT);
    snprintf(r->rcpts + at, sizeof r->rcpts - at, "%s%zu:%d", at ? " " : "", i,
             o->code);
}

static void on_end(void *ud, const mxr_outcome *o, bool tls, size_t accepted)
{
    run *r = ud;
    r->ends++;
    r->end = *o;
    snprintf(r->end_text, sizeof r->end_text, "%s", o->text ? o->text : "");
    snprintf(r->end_enh, sizeof r->end_enh, "%s",
             o->enhanced ? o->enhanced : "");
    r->end_tls = tls;
    r->accepted = accepted;
}

/* A core with the test's allocator and clock, and a session pool on it
 * with every stage on its own timer. */
static void core_new(run *r)
{
    const mxr__smtp_config cfg = {.helo = "client.test",
                                  .tls_ca = ca_file,
                                  .connect_ms = T_CONNECT,
                                  .greeting_ms = T_GREETING,
                                  .tls_ms = T_TLS,
                                  .command_ms = T_COMMAND,
                                  .data_ms = T_DATA,
                                  .block_ms = T_BLOCK,
                                  .dot_ms = T_DOT,
                                  .max_reply = 65536};
    mxr__alloc a;
    mxr__alloc_init(&a, mxr_test_alloc_fn, &r->ta);
    mxr__core_init(&r->core, &a, fake_clock, r, NULL, NULL);
    r->e = &r->core;
    r->pool = mxr__smtp_pool_new(r->e, &cfg);
    assert_non_null(r->pool);
}

/* A listening socket on 127.0.0.1 and the server thread behind it. */
static void server_start(run *r, const char *const *script)
{
    server *v = &r->srv;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(v->listener >= 0);
    assert_int_equal(bind(v->listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(v->listener, 4), 0);
    assert_int_equal(getsockname(v->listener, (struct sockaddr *)&a, &len), 0);
    v->port = ntohs(a.sin_port);
    v->script = script;
    v->fd = -1;
    assert_int_equal(pthread_create(&v->thread, NULL, srv_main, v), 0);
    r->server_started = true;
}

static run *run_new(void)
{
    run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->now = T0;
    core_new(r);
    return r;
}

/* The core shuts down (closing what is open: no event), the server
 * thread ends, and every byte went back to the allocator. */
static void run_finish(run *r)
{
    mxr__core_shutdown(r->e);
    mxr__smtp_pool_free(r->pool);
    mxr__core_free(r->e);
    r->e = NULL;
    if (r->server_started) {
        atomic_store(&r->srv.release, true);
        pthread_join(r->srv.thread, NULL);
        close(r->srv.listener);
        r->server_started = false;
    }
    assert_int_equal(r->ta.live, 0);
}

static void run_free(run *r)
{
    run_finish(r);
    free(r);
}

static const char *const rcpts[] = {"a@x.test", "b@x.test"};
static const char wire[] = "Subject: t\r\n\r\n..dot\r\nbody\r\n.\r\n";

/* What the session carries: a probe of one recipient unless changed. */
static mxr__smtp_job job_probe(void)
{
    return (mxr__smtp_job){.host = MX,
                           .sender = "s@c.test",
                           .rcpts = rcpts,
                           .nrcpts = 1,
                           .tls = MXR_TLS_OPPORTUNISTIC};
}

static void start(run *r, const mxr__smtp_job *job, uint16_t port)
{
    mxr_addr a;
    assert_true(mxr__addr_parse("127.0.0.1", &a));
    mxr__smtp_events ev = {on_rcpt, on_end, r};
    r->s = mxr__smtp_start(r->pool, &a, port, job, &ev);
    assert_non_null(r->s);
}

/* Run the core over its real descriptors, the clock standing still,
 * until done(r) holds or the rounds run out; whether it holds. */
static bool pump_rounds(run *r, bool (*done)(run *), int rounds)
{
    for (int round = 0; round < rounds && !done(r); round++) {
        mxr_sock socks[8];
        struct pollfd p[8];
        size_t n = mxr__core_fds(r->e, socks, 8);
        n = n < 8 ? n : 8;
        for (size_t i = 0; i < n; i++)
            p[i] = (struct pollfd){
                .fd = socks[i].fd,
                .events =
                    (short)((socks[i].want & MXR_WANT_READ ? POLLIN : 0) |
                            (socks[i].want & MXR_WANT_WRITE ? POLLOUT : 0))};
        poll(p, n, 10);
        for (size_t i = 0; i < n; i++) {
            bool rd = p[i].revents & (POLLIN | POLLHUP | POLLERR);
            bool wr = p[i].revents & (POLLOUT | POLLERR);
            if (rd || wr)
                mxr__core_process(r->e, rd ? p[i].fd : MXR_NOFD,
                                  wr ? p[i].fd : MXR_NOFD);
        }
        mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    }
    return done(r);
}

static bool pump(run *r, bool (*done)(run *))
{
    return pump_rounds(r, done, PUMP_ROUNDS);
}

static bool never(run *r)
{
    (void)r;
    return false;
}

static bool ended(run *r)
{
    return r->ends > 0;
}

/* The session is gone: no descriptor left to watch. */
static bool closed(run *r)
{
    mxr_sock socks[4];
    return mxr__core_fds(r->e, socks, 4) == 0;
}

static bool ended_and_closed(run *r)
{
    return ended(r) && closed(r);
}

static bool script_done(run *r)
{
    return (size_t)atomic_load(&r->srv.steps) == script_len(r->srv.script);
}

/* ----------------------------------------------------- the dialogues */

/* A session from the first byte to the close: what the server saw (log),
 * the events, and that the server's script held all the way. */
typedef struct dialogue {
    const char *name;
    const char *const *script;
    mxr__smtp_job job;
    /* expected */
    mxr_stage stage;
    mxr_class cls;
    int code;
    const char *enhanced; /* "" for none */
    const char *text;     /* a part of it */
    bool tls;
    size_t accepted;
    const char *rcpts; /* RCPT events */
    const char *log;   /* the lines the server read */
} dialogue;

#define S(...)                                                                 \
    (const char *const[])                                                      \
    {                                                                          \
        __VA_ARGS__, NULL                                                      \
    }
#define GREET "> 220 " MX " ESMTP\r\n"
#define EHLO_OK(...) "< EHLO client.test", "> 250-" MX "\r\n" __VA_ARGS__
#define MAIL_OK "< MAIL FROM:<s@c.test>", "> 250 2.1.0 ok\r\n"
#define RCPT_OK(who) "< RCPT TO:<" who ">", "> 250 2.1.5 ok\r\n"
#define QUIT_OK "< QUIT", "> 221 2.0.0 bye\r\n"
#define STARTTLS_OFFERED EHLO_OK("250 STARTTLS\r\n"), "< STARTTLS"

static mxr__smtp_job with_tls(mxr_tls_mode m)
{
    mxr__smtp_job j = job_probe();
    j.tls = m;
    return j;
}

static void run_dialogue(const dialogue *d)
{
    run *r = run_new();
    server_start(r, d->script);
    start(r, &d->job, r->srv.port);
    bool over = pump(r, ended_and_closed);
    run_finish(r);
    if (!over || r->ends != 1)
        fail_msg("%s: %d end events, session %s", d->name, r->ends,
                 over ? "closed" : "still open");
    if (r->srv.error[0] || !script_done(r))
        fail_msg("%s: server script: %s", d->name,
                 r->srv.error[0] ? r->srv.error : "not finished");
    if (r->end.stage != d->stage || r->end.cls != d->cls ||
        r->end.code != d->code || strcmp(r->end_enh, d->enhanced) != 0 ||
        !strstr(r->end_text, d->text) || r->end_tls != d->tls ||
        r->accepted != d->accepted)
        fail_msg("%s: ended %s %s %d \"%s\" \"%s\" tls=%d accepted=%zu; "
                 "want %s %s %d \"%s\" \"...%s...\" tls=%d accepted=%zu",
                 d->name, mxr_stage_name(r->end.stage),
                 mxr_class_name(r->end.cls), r->end.code, r->end_enh,
                 r->end_text, r->end_tls, r->accepted, mxr_stage_name(d->stage),
                 mxr_class_name(d->cls), d->code, d->enhanced, d->text, d->tls,
                 d->accepted);
    if (strcmp(r->rcpts, d->rcpts) != 0)
        fail_msg("%s: RCPT events \"%s\", want \"%s\"", d->name, r->rcpts,
                 d->rcpts);
    if (strcmp(r->srv.log, d->log) != 0)
        fail_msg("%s: the server read\n  \"%s\"\nwant\n  \"%s\"", d->name,
                 r->srv.log, d->log);
    if (has_step(d->script, "body")) /* as sent, less the terminator */
        assert_memory_equal(r->srv.body, wire, sizeof wire - 1 - 3);
    free(r);
}

static void run_dialogues(const dialogue *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_dialogue(&d[i]);
}

#define PROBE_TAIL "|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>|QUIT"

static void test_delivery(void **state)
{
    (void)state;
    mxr__smtp_job deliver1 = job_probe();
    deliver1.wire = wire;
    deliver1.wire_len = sizeof wire - 1;
    deliver1.body_8bit = true;
    mxr__smtp_job deliver = deliver1;
    deliver.nrcpts = 2;
    mxr__smtp_job helo8 = job_probe();
    helo8.body_8bit = true;
    const dialogue d[] = {
        {"delivery: multi-line greeting, 8BITMIME, one RCPT refused",
         S("> 220-" MX " hi\r\n220 ready\r\n",
           EHLO_OK("250-8BITMIME\r\n250 SMTPUTF8\r\n"),
           "< MAIL FROM:<s@c.test> BODY=8BITMIME", "> 250 2.1.0 ok\r\n",
           "< RCPT TO:<a@x.test>", "> 550 5.1.1 no such user\r\n",
           RCPT_OK("b@x.test"), "< DATA", "> 354 go ahead\r\n", "body",
           "> 250 2.0.0 queued as X\r\n", QUIT_OK),
         deliver, MXR_STAGE_DOT, MXR_CLASS_OK, 250, "2.0.0", "queued as X",
         false, 1, "0:550 1:250",
         "EHLO client.test|MAIL FROM:<s@c.test> BODY=8BITMIME"
         "|RCPT TO:<a@x.test>|RCPT TO:<b@x.test>|DATA|QUIT"},
        {"probe: stops after RCPT",
         S(GREET, EHLO_OK("250 8BITMIME\r\n"), MAIL_OK, RCPT_OK("a@x.test"),
           QUIT_OK),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over",
         false, 1, "0:250", "EHLO client.test" PROBE_TAIL},
        {"nobody accepted: no DATA",
         S(GREET, EHLO_OK("250 8BITMIME\r\n"), MAIL_OK, "< RCPT TO:<a@x.test>",
           "> 450 4.2.0 later\r\n", QUIT_OK),
         deliver1, MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "no recipient accepted",
         false, 0, "0:450",
         "EHLO client.test|MAIL FROM:<s@c.test> BODY=8BITMIME"
         "|RCPT TO:<a@x.test>|QUIT"},
        {"a reply in pieces over several reads",
         S("> 22", "pause", "> 0 hi\r", "pause", "> \n", "< EHLO",
           "> 250-" MX "\r\n", "pause", "> 250 ok\r\n", MAIL_OK,
           RCPT_OK("a@x.test"), QUIT_OK),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over",
         false, 1, "0:250", "EHLO client.test" PROBE_TAIL},
        {"EHLO 502: HELO, and no MAIL parameters after HELO",
         S(GREET, "< EHLO client.test", "> 502 5.5.2 what\r\n",
           "< HELO client.test", "> 250 " MX "\r\n", MAIL_OK,
           RCPT_OK("a@x.test"), QUIT_OK),
         helo8, MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over", false,
         1, "0:250", "EHLO client.test|HELO client.test" PROBE_TAIL},
    };
    run_dialogues(d, sizeof d / sizeof *d);
}

static void test_refusals(void **state)
{
    (void)state;
    mxr__smtp_job utf8 = job_probe();
    utf8.need_smtputf8 = true;
    mxr__smtp_job deliver = job_probe();
    deliver.wire = wire;
    deliver.wire_len = sizeof wire - 1;
    const dialogue d[] = {
        {"greeting 554, then QUIT", S("> 554 5.7.1 go away\r\n", QUIT_OK),
         job_probe(), MXR_STAGE_GREETING, MXR_CLASS_5XX, 554, "5.7.1",
         "go away", false, 0, "", "QUIT"},
        {"EHLO 450: no HELO (4xx is not 'unknown'), QUIT",
         S(GREET, "< EHLO", "> 450 4.3.2 busy\r\n", QUIT_OK), job_probe(),
         MXR_STAGE_EHLO, MXR_CLASS_4XX, 450, "4.3.2", "busy", false, 0, "",
         "EHLO client.test|QUIT"},
        {"MAIL 421: closed without QUIT",
         S(GREET, EHLO_OK("250 ok\r\n"), "< MAIL", "> 421 4.3.2 closing\r\n"),
         job_probe(), MXR_STAGE_MAIL, MXR_CLASS_421, 421, "4.3.2", "closing",
         false, 0, "", "EHLO client.test|MAIL FROM:<s@c.test>"},
        {"RCPT 421: ends the session, no RCPT event",
         S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, "< RCPT",
           "> 421 4.3.2 closing\r\n"),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_421, 421, "4.3.2", "closing",
         false, 0, "",
         "EHLO client.test|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>"},
        {"DATA 554, QUIT",
         S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, RCPT_OK("a@x.test"), "< DATA",
           "> 554 5.6.0 no\r\n", QUIT_OK),
         deliver, MXR_STAGE_DATA, MXR_CLASS_5XX, 554, "5.6.0", "no", false, 1,
         "0:250",
         "EHLO client.test|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>|DATA|QUIT"},
        {"end-of-data 451, QUIT",
         S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, RCPT_OK("a@x.test"), "< DATA",
           "> 354 go\r\n", "body", "> 451 4.3.0 later\r\n", QUIT_OK),
         deliver, MXR_STAGE_DOT, MXR_CLASS_4XX, 451, "4.3.0", "later", false, 1,
         "0:250",
         "EHLO client.test|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>|DATA|QUIT"},
        {"SMTPUTF8 needed, not offered: no MAIL, 5.6.7, QUIT",
         S(GREET, EHLO_OK("250 8BITMIME\r\n"), QUIT_OK), utf8, MXR_STAGE_MAIL,
         MXR_CLASS_5XX, 0, "5.6.7", "SMTPUTF8", false, 0, "",
         "EHLO client.test|QUIT"},
        {"SMTPUTF8 offered: MAIL ... SMTPUTF8",
         S(GREET, EHLO_OK("250 SMTPUTF8\r\n"),
           "< MAIL FROM:<s@c.test> SMTPUTF8", "> 250 ok\r\n",
           RCPT_OK("a@x.test"), QUIT_OK),
         utf8, MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over", false, 1,
         "0:250",
         "EHLO client.test|MAIL FROM:<s@c.test> SMTPUTF8|RCPT TO:<a@x.test>"
         "|QUIT"},
    };
    run_dialogues(d, sizeof d / sizeof *d);
}

/* Replies that break the protocol: class reset, the socket closed at once
 * (no QUIT: we no longer know where the server is). */
static void test_protocol_errors(void **state)
{
    (void)state;
    mxr__smtp_job deliver = job_probe();
    deliver.wire = wire;
    deliver.wire_len = sizeof wire - 1;
    const dialogue d[] = {
        {"354 to EHLO", S(GREET, "< EHLO", "> 354 what\r\n"), job_probe(),
         MXR_STAGE_EHLO, MXR_CLASS_RESET, 354, "", "unexpected reply", false, 0,
         "", "EHLO client.test"},
        {"354 to RCPT",
         S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, "< RCPT", "> 354 what\r\n"),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_RESET, 354, "",
         "unexpected reply", false, 0, "",
         "EHLO client.test|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>"},
        {"250 to DATA",
         S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, RCPT_OK("a@x.test"), "< DATA",
           "> 250 sure\r\n"),
         deliver, MXR_STAGE_DATA, MXR_CLASS_RESET, 250, "", "unexpected reply",
         false, 1, "0:250",
         "EHLO client.test|MAIL FROM:<s@c.test>|RCPT TO:<a@x.test>|DATA"},
        {"a greeting without a code", S("> hello, I am not SMTP\r\n"),
         job_probe(), MXR_STAGE_GREETING, MXR_CLASS_RESET, 0, "", "malformed",
         false, 0, "", ""},
        {"closed after EHLO", S(GREET, "< EHLO", "close"), job_probe(),
         MXR_STAGE_EHLO, MXR_CLASS_RESET, 0, "",
         "connection closed by the server", false, 0, "", "EHLO client.test"},
    };
    run_dialogues(d, sizeof d / sizeof *d);
}

static void test_starttls(void **state)
{
    (void)state;
    mxr__smtp_job wrong_name = with_tls(MXR_TLS_VERIFY);
    wrong_name.host = "other.session.test";
    const dialogue d[] = {
        {"STARTTLS, then EHLO again over TLS",
         S(GREET, STARTTLS_OFFERED, "> 220 2.0.0 go\r\n", "tls",
           EHLO_OK("250 8BITMIME\r\n"), MAIL_OK, RCPT_OK("a@x.test"), QUIT_OK),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over",
         true, 1, "0:250",
         "EHLO client.test|STARTTLS|EHLO client.test" PROBE_TAIL},
        {"verify with the anchor",
         S(GREET, STARTTLS_OFFERED, "> 220 2.0.0 go\r\n", "tls",
           EHLO_OK("250 ok\r\n"), MAIL_OK, RCPT_OK("a@x.test"), QUIT_OK),
         with_tls(MXR_TLS_VERIFY), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "",
         "RCPT phase over", true, 1, "0:250",
         "EHLO client.test|STARTTLS|EHLO client.test" PROBE_TAIL},
        {"verify, name not in the certificate: no QUIT",
         S(GREET, STARTTLS_OFFERED, "> 220 2.0.0 go\r\n", "tls-fail"),
         wrong_name, MXR_STAGE_TLS, MXR_CLASS_5XX, 0, "",
         "certificate verification failed: hostname mismatch", false, 0, "",
         "EHLO client.test|STARTTLS"},
        {"--tls none: no STARTTLS though offered",
         S(GREET, EHLO_OK("250 STARTTLS\r\n"), MAIL_OK, RCPT_OK("a@x.test"),
           QUIT_OK),
         with_tls(MXR_TLS_NONE), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "",
         "RCPT phase over", false, 1, "0:250", "EHLO client.test" PROBE_TAIL},
        {"STARTTLS 454, opportunistic: on in clear",
         S(GREET, STARTTLS_OFFERED, "> 454 4.7.0 not now\r\n", MAIL_OK,
           RCPT_OK("a@x.test"), QUIT_OK),
         job_probe(), MXR_STAGE_RCPT, MXR_CLASS_OK, 0, "", "RCPT phase over",
         false, 1, "0:250", "EHLO client.test|STARTTLS" PROBE_TAIL},
        {"STARTTLS 454, required: tls 4xx, QUIT",
         S(GREET, STARTTLS_OFFERED, "> 454 4.7.0 not now\r\n", QUIT_OK),
         with_tls(MXR_TLS_REQUIRED), MXR_STAGE_TLS, MXR_CLASS_4XX, 454, "4.7.0",
         "not now", false, 0, "", "EHLO client.test|STARTTLS|QUIT"},
        {"STARTTLS 554, verify: tls 5xx, QUIT",
         S(GREET, STARTTLS_OFFERED, "> 554 5.7.0 never\r\n", QUIT_OK),
         with_tls(MXR_TLS_VERIFY), MXR_STAGE_TLS, MXR_CLASS_5XX, 554, "5.7.0",
         "never", false, 0, "", "EHLO client.test|STARTTLS|QUIT"},
        {"STARTTLS not offered, required",
         S(GREET, EHLO_OK("250 8BITMIME\r\n"), QUIT_OK),
         with_tls(MXR_TLS_REQUIRED), MXR_STAGE_TLS, MXR_CLASS_5XX, 0, "",
         "does not offer it", false, 0, "", "EHLO client.test|QUIT"},
        {"HELO only, required",
         S(GREET, "< EHLO", "> 500 what\r\n", "< HELO", "> 250 ok\r\n",
           QUIT_OK),
         with_tls(MXR_TLS_REQUIRED), MXR_STAGE_TLS, MXR_CLASS_5XX, 0, "",
         "only speaks HELO", false, 0, "",
         "EHLO client.test|HELO client.test|QUIT"},
        {"closed after the 220 to STARTTLS: tls 5xx, even opportunistic",
         S(GREET, STARTTLS_OFFERED, "> 220 2.0.0 go\r\n", "close"), job_probe(),
         MXR_STAGE_TLS, MXR_CLASS_5XX, 0, "",
         "connection closed during the TLS handshake", false, 0, "",
         "EHLO client.test|STARTTLS"},
        {"plain text for a ServerHello",
         S(GREET, STARTTLS_OFFERED, "> 220 2.0.0 go\r\n", "recv",
           "> this is not TLS\r\n", "hold"),
         job_probe(), MXR_STAGE_TLS, MXR_CLASS_5XX, 0, "",
         "TLS handshake failed: ", false, 0, "", "EHLO client.test|STARTTLS"},
    };
    run_dialogues(d, sizeof d / sizeof *d);
}

/* ---------------------------------------------------------- timeouts */

/* A server that goes quiet at some stage. The clock stands still while
 * the session gets there; then it moves to one millisecond before the
 * stage's deadline (nothing happens) and to the deadline (the session
 * ends: stage, timeout, "timed out", closed without QUIT). */
typedef struct stall {
    const char *name;
    const char *const *script;
    mxr__smtp_job job;
    mxr_stage stage;
    unsigned ms;
} stall;

static char big[32 << 20]; /* more than a loopback socket takes */

static void run_stall(const stall *c)
{
    run *r = run_new();
    server_start(r, c->script);
    start(r, &c->job, r->srv.port);
    if (!pump(r, script_done) || r->ends)
        fail_msg("%s: did not reach the stall (%d ends, server: %s)", c->name,
                 r->ends, r->srv.error);
    pump_rounds(r, never, 10); /* let the session settle there */
    int left = mxr__core_timeout(r->e);
    if (left < 0 || left > (int)c->ms) /* a lower bound, never later */
        fail_msg("%s: core timeout %d ms, deadline in %u", c->name, left,
                 c->ms);
    r->now = T0 + c->ms - 1;
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    if (r->ends)
        fail_msg("%s: ended %u ms early at %s", c->name, 1u,
                 mxr_stage_name(r->end.stage));
    r->now = T0 + c->ms;
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    if (r->ends != 1 || r->end.stage != c->stage ||
        r->end.cls != MXR_CLASS_TIMEOUT || strcmp(r->end_text, "timed out"))
        fail_msg("%s: %d ends, last %s %s \"%s\"; want %s timeout", c->name,
                 r->ends, mxr_stage_name(r->end.stage),
                 mxr_class_name(r->end.cls), r->end_text,
                 mxr_stage_name(c->stage));
    assert_true(closed(r));
    run_free(r);
}

static void test_stage_timeouts(void **state)
{
    (void)state;
    mxr__smtp_job deliver = job_probe();
    deliver.wire = wire;
    deliver.wire_len = sizeof wire - 1;
    mxr__smtp_job bulk = deliver;
    memset(big, 'x', sizeof big);
    memcpy(big + sizeof big - 5, "\r\n.\r\n", 5);
    bulk.wire = big;
    bulk.wire_len = sizeof big;
#define UP_TO_DATA                                                             \
    GREET, EHLO_OK("250 ok\r\n"), MAIL_OK, RCPT_OK("a@x.test"), "< DATA"
    const stall c[] = {
        {"no greeting", S("pause"), job_probe(), MXR_STAGE_GREETING,
         T_GREETING},
        {"no reply to EHLO", S(GREET, "< EHLO"), job_probe(), MXR_STAGE_EHLO,
         T_COMMAND},
        {"no reply to MAIL", S(GREET, EHLO_OK("250 ok\r\n"), "< MAIL"),
         job_probe(), MXR_STAGE_MAIL, T_COMMAND},
        {"no reply to STARTTLS", S(GREET, STARTTLS_OFFERED), job_probe(),
         MXR_STAGE_TLS, T_COMMAND},
        {"no TLS handshake after 220",
         S(GREET, STARTTLS_OFFERED, "> 220 go\r\n"), job_probe(), MXR_STAGE_TLS,
         T_TLS},
        {"no 354 to DATA", S(UP_TO_DATA), deliver, MXR_STAGE_DATA, T_DATA},
        {"the message not taken (socket full)",
         S(UP_TO_DATA, "> 354 go\r\n", "hold"), bulk, MXR_STAGE_DATA, T_BLOCK},
        {"no reply to the final dot", S(UP_TO_DATA, "> 354 go\r\n", "body"),
         deliver, MXR_STAGE_DOT, T_DOT},
    };
#undef UP_TO_DATA
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        run_stall(&c[i]);
}

/* A probe session run until the server has played script (which must
 * outlive the run). */
static run *run_to_end_of(const char *const *script)
{
    run *r = run_new();
    server_start(r, script);
    mxr__smtp_job job = job_probe();
    start(r, &job, r->srv.port);
    assert_true(pump(r, script_done));
    return r;
}

static const char *const up_to_ehlo[] = {GREET, "< EHLO", NULL};

/* No reply to QUIT: the end event has fired already; the socket closes
 * at the QUIT deadline (the command timeout, under 10 s) with no second
 * event. */
static void test_quit_timeout(void **state)
{
    (void)state;
    run *r = run_to_end_of(S(GREET, EHLO_OK("250 ok\r\n"), MAIL_OK,
                             RCPT_OK("a@x.test"), "< QUIT"));
    assert_int_equal(r->ends, 1);
    assert_false(closed(r));
    r->now = T0 + T_COMMAND - 1;
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    assert_false(closed(r));
    r->now = T0 + T_COMMAND;
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    assert_true(closed(r));
    assert_int_equal(r->ends, 1);
    assert_int_equal(mxr__core_timeout(r->e), -1); /* nothing left */
    run_free(r);
}

/* ---------------------------------------------------------- lifetime */

static void test_connect_refused(void **state)
{
    (void)state;
    run *r = run_new();
    uint16_t port;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd); /* nothing listens there now */
    mxr__smtp_job job = job_probe();
    start(r, &job, port);
    assert_int_equal(r->ends, 0); /* never from inside the start */
    assert_true(pump(r, ended_and_closed));
    assert_int_equal(r->end.stage, MXR_STAGE_CONNECT);
    assert_int_equal(r->end.cls, MXR_CLASS_REFUSED);
    run_free(r);
}

/* Cancelled mid-dialogue: no event, the server sees the connection
 * close, and the next round frees the session. */
static void test_cancel(void **state)
{
    (void)state;
    run *r = run_to_end_of(up_to_ehlo);
    mxr__smtp_cancel(r->s);
    mxr__smtp_cancel(NULL);
    assert_true(closed(r));
    pthread_join(r->srv.thread, NULL); /* it saw the close */
    r->server_started = false;
    close(r->srv.listener);
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    assert_int_equal(mxr__core_timeout(r->e), -1); /* freed */
    assert_int_equal(r->ends, 0);
    assert_string_equal(r->srv.log, "EHLO client.test");
    run_free(r);
}

/* The core shut down mid-dialogue (engine destroy): no event, the socket
 * closed. */
static void test_destroy_mid_session(void **state)
{
    (void)state;
    run *r = run_to_end_of(up_to_ehlo);
    run_free(r); /* joins the server: it saw the close */
}

/* Out of memory for the session: NULL, nothing opened, nothing kept. */
static void test_allocation_failure(void **state)
{
    (void)state;
    run *r = run_new();
    mxr_addr a;
    assert_true(mxr__addr_parse("127.0.0.1", &a));
    mxr__smtp_job job = job_probe();
    mxr__smtp_events ev = {on_rcpt, on_end, r};
    size_t before = r->ta.live;
    r->ta.fail_at = r->ta.calls + 1;
    assert_null(mxr__smtp_start(r->pool, &a, 25, &job, &ev));
    r->ta.fail_at = 0;
    assert_int_equal(r->ta.live, before);
    assert_true(closed(r));
    assert_int_equal(mxr__core_timeout(r->e), -1);
    mxr__core_process(r->e, MXR_NOFD, MXR_NOFD);
    assert_int_equal(r->ends, 0);
    run_free(r);
}

/* ------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        return -1;
    X509 *cert = mxr_test_self_signed(key, MX);
    mxr_test_write_pem(ca_file, sizeof ca_file, cert);
    server_tls = SSL_CTX_new(TLS_server_method());
    if (!server_tls || SSL_CTX_use_certificate(server_tls, cert) != 1 ||
        SSL_CTX_use_PrivateKey(server_tls, key) != 1)
        return -1;
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    SSL_CTX_free(server_tls);
    unlink(ca_file);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_stage_timeouts),
        cmocka_unit_test(test_quit_timeout),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_destroy_mid_session),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
