/* test_ares.c -- the c-ares backend's waiting FIFO (src/dns/ares.c): at
 * most inflight_cap questions reach c-ares, the rest are sent in their
 * order as answers come back, and shutdown or destroy answers the waiting
 * ones CANCELLED. A real c-ares channel talks to a UDP socket of the test,
 * which reads the questions and answers them when the test says so. */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/backend.h"

/* ------------------------------------------------ the test's DNS server */

typedef struct server {
    int fd;
    char addr[32];
} server;

static void server_open(server *s)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(s->addr, sizeof s->addr, "127.0.0.1:%u", ntohs(sin.sin_port));
}

/* The first label of a question (the tests ask "q<i>.test"). */
static void first_label(const uint8_t *pkt, ssize_t n, char *out, size_t cap)
{
    assert_true(n > 13 && pkt[12] > 0 && (size_t)pkt[12] < cap &&
                13 + pkt[12] <= n);
    memcpy(out, pkt + 13, pkt[12]);
    out[pkt[12]] = '\0';
}

/* Reads every question waiting on the socket, answers each at once (an
 * empty NOERROR reply: the question echoed with QR set) when answer is
 * true, and appends their first labels to got (space-separated). Returns
 * how many were read. */
static size_t server_drain(server *s, bool answer, char *got, size_t cap)
{
    size_t n = 0;
    for (;;) {
        uint8_t pkt[1500];
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t r = recvfrom(s->fd, pkt, sizeof pkt, 0,
                             (struct sockaddr *)&from, &flen);
        if (r < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return n;
        }
        char label[64];
        first_label(pkt, r, label, sizeof label);
        size_t used = strlen(got);
        snprintf(got + used, cap - used, "%s%s", used ? " " : "", label);
        n++;
        if (answer) {
            pkt[2] |= 0x80;                    /* QR: a response */
            pkt[3] = (uint8_t)(pkt[3] & 0xf0); /* rcode NOERROR */
            assert_int_equal(sendto(s->fd, pkt, (size_t)r, 0,
                                    (struct sockaddr *)&from, flen),
                             r);
        }
    }
}

/* ------------------------------------------------ the backend under test */

typedef struct fixture {
    mxr_test_alloc ta;
    mxr__core core;
    mxr__backend *b;
    server srv;
} fixture;

/* What the questions' callbacks saw, in the order they fired. */
typedef struct answers {
    size_t n, cancelled;
    char order[256];
    fixture *f;
    int ask_again_on; /* this question's callback asks one more (-1: none) */
} answers;

typedef struct question {
    answers *log;
    int id;
} question;

static void ask(fixture *f, question *q);

static void on_reply(void *arg, mxr__rcode rc, const uint8_t *wire, size_t len)
{
    question *q = arg;
    answers *log = q->log;
    size_t used = strlen(log->order);
    snprintf(log->order + used, sizeof log->order - used, "%sq%d",
             used ? " " : "", q->id);
    log->n++;
    if (rc == MXR__DNS_CANCELLED) {
        assert_null(wire);
        log->cancelled++;
    } else {
        assert_int_equal(rc, MXR__DNS_OK);
        assert_true(wire && len >= 12);
    }
    if (q->id == log->ask_again_on) {
        static question extra;
        extra = (question){.log = log, .id = 99};
        ask(log->f, &extra);
    }
}

static void ask(fixture *f, question *q)
{
    char name[32];
    snprintf(name, sizeof name, "q%d.test", q->id);
    assert_int_equal(f->b->ops->query(f->b, name, 15 /* MX */, on_reply, q), 0);
}

/* Asks q0 .. q<n-1>, in that order. */
static void ask_n(fixture *f, answers *log, question *q, int n)
{
    for (int i = 0; i < n; i++) {
        q[i] = (question){.log = log, .id = i};
        ask(f, &q[i]);
    }
}

static void fixture_open(fixture *f, size_t cap)
{
    memset(f, 0, sizeof *f);
    mxr__alloc a;
    mxr__alloc_init(&a, mxr_test_alloc_fn, &f->ta);
    mxr__core_init(&f->core, &a, NULL, NULL, NULL, NULL);
    server_open(&f->srv);
    mxr__ares_config cfg = {.servers_csv = f->srv.addr,
                            .timeout_ms = 5000,
                            .tries = 1,
                            .inflight_cap = cap};
    char err[256];
    assert_int_equal(mxr__ares_new(&cfg, &f->core, &f->b, err, sizeof err),
                     MXR_OK);
}

/* The engine's teardown order: the sources shut down, then the backend. */
static void fixture_close(fixture *f)
{
    mxr__core_shutdown(&f->core);
    f->b->ops->destroy(f->b);
    mxr__core_free(&f->core);
    close(f->srv.fd);
    assert_int_equal(f->core.a.bytes, 0);
    assert_int_equal(f->ta.live, 0);
}

/* Runs the core until n callbacks have fired (bounded). */
static void run_until(fixture *f, answers *log, size_t n)
{
    for (int i = 0; i < 200 && log->n < n; i++)
        assert_int_equal(mxr__core_poll_once(&f->core, 20), MXR_OK);
    assert_int_equal(log->n, n);
}

/* ------------------------------------------------------------------ tests */

/* Cap 2, five questions: the server sees two at a time, in the order they
 * were asked, and the next two only once the first are answered. */
static void test_fifo_order_and_cap(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 2);
    answers log = {.f = &f, .ask_again_on = -1};
    question q[5];
    ask_n(&f, &log, q, 5);
    char got[128] = "";
    assert_int_equal(server_drain(&f.srv, true, got, sizeof got), 2);
    assert_string_equal(got, "q0 q1");
    run_until(&f, &log, 2);
    assert_int_equal(server_drain(&f.srv, true, got, sizeof got), 2);
    assert_string_equal(got, "q0 q1 q2 q3");
    run_until(&f, &log, 4);
    assert_int_equal(server_drain(&f.srv, true, got, sizeof got), 1);
    run_until(&f, &log, 5);
    assert_string_equal(got, "q0 q1 q2 q3 q4");
    assert_string_equal(log.order, "q0 q1 q2 q3 q4");
    assert_int_equal(log.cancelled, 0);
    fixture_close(&f);
}

/* Shutdown with one question in c-ares and two waiting: all three are
 * answered CANCELLED, the waiting ones never reach the server, and a
 * question asked from the cancelled one's callback is cancelled too
 * (c-ares would not cancel it: it came after ares_cancel began). */
static void test_shutdown_cancels_waiting(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 1);
    answers log = {.f = &f, .ask_again_on = 0};
    question q[3];
    ask_n(&f, &log, q, 3);
    char got[128] = "";
    assert_int_equal(server_drain(&f.srv, false, got, sizeof got), 1);
    f.b->io.ops->shutdown(&f.b->io);
    assert_int_equal(log.n, 4);
    assert_int_equal(log.cancelled, 4);
    /* the waiting ones first, then the one in flight, then the extra one */
    assert_string_equal(log.order, "q1 q2 q0 q99");
    assert_int_equal(server_drain(&f.srv, false, got, sizeof got), 0);
    assert_string_equal(got, "q0");
    f.b->io.ops->shutdown(&f.b->io); /* a second call finds nothing */
    assert_int_equal(log.n, 4);
    fixture_close(&f);
}

/* Destroy without a shutdown before it, questions waiting: each callback
 * fires once (CANCELLED) and nothing is left allocated. */
static void test_destroy_with_waiting(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, 1);
    answers log = {.f = &f, .ask_again_on = -1};
    question q[3];
    ask_n(&f, &log, q, 3);
    mxr__io_unregister(&f.core, &f.b->io);
    f.b->ops->destroy(f.b);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.cancelled, 3);
    mxr__core_free(&f.core);
    close(f.srv.fd);
    assert_int_equal(f.core.a.bytes, 0);
    assert_int_equal(f.ta.live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_and_cap),
        cmocka_unit_test(test_shutdown_cancels_waiting),
        cmocka_unit_test(test_destroy_with_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
