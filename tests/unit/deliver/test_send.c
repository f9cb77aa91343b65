/* test_send.c -- the contract of mxr_send (mxroute.h, "SMTP client")
 * through the public API, against real sockets on loopback: a port with
 * nothing listening (refused) and a listener that accepts in the kernel
 * but never speaks. The SMTP dialogue itself is tested against real
 * servers by tests/it_smtp.sh; here: argument checks, the done callback
 * firing exactly once (also when the engine is destroyed mid-session),
 * events in order, allocation failures, and no memory left behind. */
#include "support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct fixture {
    mxr_test_alloc ta;
    mxr_engine *e;
    int listener; /* accepts (backlog) and never speaks */
    uint16_t silent_port, closed_port;
} fixture;

typedef struct result {
    int done;
    mxr_status status;
    int sessions, rcpts;
    mxr_stage last_stage;
    mxr_class last_class;
} result;

/* A TCP port on 127.0.0.1: bound and listening when listen_too, else
 * closed again (nothing listens there afterwards). */
static int loopback_port(bool listen_too, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listen_too) {
        assert_int_equal(listen(fd, 8), 0);
        return fd;
    }
    close(fd);
    return -1;
}

static const char zone[] = "$ORIGIN send.test.\n"
                           "$TTL 300\n"
                           "@ SOA ns h 1 3600 600 86400 300\n"
                           "@ NS ns\n"
                           "ns A 127.0.0.1\n"
                           "@ MX 10 mx\n"
                           "mx A 127.0.0.1\n";

static mxr_engine *engine_on(fixture *f, uint16_t port, int timeout_ms)
{
    mxr_options *o = NULL;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, &f->ta);
    assert_int_equal(mxr_options_add_zone_text(o, "send.test", zone), MXR_OK);
    mxr_options_set(o, MXR_OPT_ALLOW_LOOPBACK, 1);
    mxr_options_set(o, MXR_OPT_PORT, port);
    mxr_options_set(o, MXR_OPT_SMTP_CONNECT_MS, timeout_ms);
    mxr_options_set(o, MXR_OPT_SMTP_GREETING_MS, timeout_ms);
    mxr_engine *e = NULL;
    assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
    mxr_options_free(o);
    return e;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->listener = loopback_port(true, &f->silent_port);
    loopback_port(false, &f->closed_port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->listener);
    assert_int_equal(f->ta.live, 0); /* every engine gave back everything */
    free(f);
    return 0;
}

static mxr_attempt *attempt_for(mxr_engine *e, const char *const *rcpts,
                                size_t n)
{
    mxr_plan *p = NULL;
    assert_int_equal(mxr_route_sync(e, rcpts[0], &p), MXR_OK);
    mxr_message m = {
        .sender = "s@client.test", .recipients = rcpts, .nrecipients = n};
    mxr_attempt *a = NULL;
    assert_int_equal(mxr_attempt_new(e, p, &m, &a), MXR_OK);
    mxr_plan_free(p);
    return a;
}

static void on_event(void *arg, const mxr_send_event *ev)
{
    result *r = arg;
    assert_int_equal(r->done, 0); /* events come before the end */
    assert_non_null(ev->hop);
    if (ev->kind == MXR_SEND_EVENT_RCPT) {
        r->rcpts++;
        return;
    }
    r->sessions++;
    r->last_stage = ev->outcome->stage;
    r->last_class = ev->outcome->cls;
}

static void on_done(void *arg, mxr_status st, mxr_attempt *at)
{
    result *r = arg;
    r->done++;
    r->status = st;
    assert_non_null(at);
    if (st == MXR_EDESTROYED)
        mxr_attempt_free(at); /* the engine is still valid here */
}

static const char *const one[] = {"u@send.test"};

/* ------------------------------------------------------------ tests */

static void test_refused_defers_every_recipient(void **state)
{
    fixture *f = *state;
    mxr_engine *e = engine_on(f, f->closed_port, 2000);
    const char *const two[] = {"a@send.test", "b@send.test"};
    mxr_attempt *a = attempt_for(e, two, 2);
    result r = {0};
    assert_int_equal(mxr_send(e, a, "x\n", 2, 0, on_event, on_done, &r),
                     MXR_OK);
    assert_int_equal(r.done, 0); /* never from inside the call */
    mxr_engine_run(e, -1);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, MXR_OK);
    assert_int_equal(r.sessions, 1);
    assert_int_equal(r.last_stage, MXR_STAGE_CONNECT);
    assert_int_equal(r.last_class, MXR_CLASS_REFUSED);
    assert_true(mxr_attempt_done(a));
    assert_int_equal(mxr_attempt_verdict(a), MXR_ACTION_DEFER);
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(mxr_attempt_recipient(a, i)->state, MXR_RCPT_DEFERRED);
    mxr_attempt_free(a);
    mxr_engine_destroy(e);
}

static void test_greeting_timeout(void **state)
{
    fixture *f = *state;
    mxr_engine *e = engine_on(f, f->silent_port, 200);
    mxr_attempt *a = attempt_for(e, one, 1);
    result r = {0};
    assert_int_equal(
        mxr_send(e, a, NULL, 0, MXR_SEND_PROBE, on_event, on_done, &r), MXR_OK);
    mxr_engine_run(e, -1);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.last_stage, MXR_STAGE_GREETING);
    assert_int_equal(r.last_class, MXR_CLASS_TIMEOUT);
    assert_int_equal(mxr_attempt_recipient(a, 0)->state, MXR_RCPT_DEFERRED);
    mxr_attempt_free(a);
    mxr_engine_destroy(e);
}

/* Destroyed while a session waits for the greeting: the done callback
 * fires once, with MXR_EDESTROYED, and nothing is left open. */
static void test_destroy_mid_session(void **state)
{
    fixture *f = *state;
    mxr_engine *e = engine_on(f, f->silent_port, 60000);
    mxr_attempt *a = attempt_for(e, one, 1);
    result r = {0};
    assert_int_equal(mxr_send(e, a, "m", 1, 0, on_event, on_done, &r), MXR_OK);
    mxr_engine_run(e, 100); /* connected, waiting for 220 */
    assert_int_equal(r.done, 0);
    assert_int_equal(mxr_engine_pending(e), 1);
    mxr_engine_destroy(e); /* on_done frees the attempt */
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, MXR_EDESTROYED);
}

/* No descriptor left for the socket: the connect fails before it starts.
 * The failure is reported from mxr_engine_process like any other, and the
 * dead session is freed (it used to stay, keeping the timeout at 0). */
static void test_no_descriptor_left(void **state)
{
    fixture *f = *state;
    mxr_engine *e = engine_on(f, f->silent_port, 2000);
    mxr_attempt *a = attempt_for(e, one, 1);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int held[64], n = 0, fd;
    while (n < 64 && (fd = dup(f->listener)) >= 0)
        held[n++] = fd;
    result r = {0};
    assert_int_equal(mxr_send(e, a, "m", 1, 0, on_event, on_done, &r), MXR_OK);
    mxr_engine_run(e, -1);
    while (n > 0)
        close(held[--n]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.last_stage, MXR_STAGE_CONNECT);
    assert_int_equal(r.last_class, MXR_CLASS_UNREACHABLE);
    assert_int_equal(mxr_attempt_recipient(a, 0)->state, MXR_RCPT_DEFERRED);
    assert_int_equal(mxr_engine_timeout(e), -1); /* nothing left to run */
    mxr_attempt_free(a);
    mxr_engine_destroy(e);
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    mxr_engine *e = engine_on(f, f->closed_port, 1000);
    result r = {0};
    const char *const inject[] = {"u@send.test\r\nRSET"};
    mxr_attempt *a = attempt_for(e, one, 1);
    assert_int_equal(mxr_send(e, a, "m", 1, 0, NULL, NULL, &r), MXR_EINVAL);
    assert_int_equal(mxr_send(e, a, NULL, 5, 0, NULL, on_done, &r), MXR_EINVAL);
    assert_int_equal(mxr_send(e, a, "m", 1, 0x80, NULL, on_done, &r),
                     MXR_EINVAL);
    mxr_attempt_free(a);
    mxr_plan *p = NULL;
    assert_int_equal(mxr_route_sync(e, "u@send.test", &p), MXR_OK);
    mxr_message m = {
        .sender = "s@client.test", .recipients = inject, .nrecipients = 1};
    assert_int_equal(mxr_attempt_new(e, p, &m, &a), MXR_OK);
    assert_int_equal(mxr_send(e, a, "m", 1, 0, NULL, on_done, &r), MXR_EINVAL);
    assert_non_null(strstr(mxr_engine_errmsg(e), "control characters"));
    mxr_attempt_free(a);
    mxr_plan_free(p);
    assert_int_equal(r.done, 0); /* an error return never calls back */
    mxr_engine_destroy(e);
}

/* Every allocation of mxr_send fails in turn: an error return, no
 * callback, and nothing leaked. */
static void test_allocation_failures(void **state)
{
    fixture *f = *state;
    for (long n = 1; n < 40; n++) {
        mxr_engine *e = engine_on(f, f->closed_port, 1000);
        mxr_attempt *a = attempt_for(e, one, 1);
        size_t before = f->ta.live;
        result r = {0};
        f->ta.fail_at = f->ta.calls + n;
        mxr_status st = mxr_send(e, a, "hello\n", 6, 0, NULL, on_done, &r);
        f->ta.fail_at = 0;
        if (st == MXR_OK) {
            mxr_engine_run(e, -1);
            assert_int_equal(r.done, 1);
        } else {
            assert_int_equal(st, MXR_ENOMEM);
            assert_int_equal(r.done, 0);
            assert_int_equal(f->ta.live, before);
        }
        mxr_attempt_free(a);
        mxr_engine_destroy(e);
        if (st == MXR_OK)
            break; /* past the last allocation */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused_defers_every_recipient,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_greeting_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_mid_session, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_descriptor_left, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
