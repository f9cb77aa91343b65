/* test_core.c -- the engine core (src/core/): deferred tasks run in order,
 * once, and only those queued before the round; the I/O-source registry
 * hands a ready descriptor to its own source and handle, holds far more
 * descriptors than any fixed table would, reports a table that cannot
 * grow instead of dropping the descriptor, tells the embedder of every
 * change; timeouts are the earliest of the sources'; the poll loop runs
 * a round on real pipes. */
#include "support.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------- tasks */

typedef struct job {
    mxr__task task;
    mxr__core *core;
    int id;
    int *log;
    size_t *nlog;
    bool requeue; /* queue itself again once, from inside its run */
} job;

static void job_run(mxr__task *t)
{
    job *j = mxr__container_of(t, job, task);
    j->log[(*j->nlog)++] = j->id;
    if (j->requeue) {
        j->requeue = false;
        mxr__core_defer(j->core, &j->task, job_run);
    }
}

static mxr__core *core_new(mxr_test_alloc *t)
{
    mxr__alloc a;
    mxr__alloc_init(&a, t ? mxr_test_alloc_fn : NULL, t);
    mxr__core *c = calloc(1, sizeof *c);
    assert_non_null(c);
    mxr__core_init(c, &a, NULL, NULL, NULL, NULL);
    return c;
}

static void core_del(mxr__core *c)
{
    mxr__core_shutdown(c);
    mxr__core_free(c);
    assert_int_equal(c->a.bytes, 0);
    free(c);
}

static void test_tasks_fifo_one_round(void **state)
{
    mxr__core *c = core_new(NULL);
    int log[8];
    size_t n = 0;
    job j[3];
    for (int i = 0; i < 3; i++) {
        j[i] = (job){.core = c, .id = i, .log = log, .nlog = &n};
        mxr__core_defer(c, &j[i].task, job_run);
    }
    j[1].requeue = true;
    assert_int_equal(mxr__core_timeout(c), 0); /* tasks: due at once */
    mxr__core_run_tasks(c);
    /* 0, 1, 2 in order; 1's second run waits for the next round */
    assert_int_equal(n, 3);
    assert_int_equal(log[0], 0);
    assert_int_equal(log[1], 1);
    assert_int_equal(log[2], 2);
    mxr__core_run_tasks(c);
    assert_int_equal(n, 4);
    assert_int_equal(log[3], 1);
    mxr__core_run_tasks(c); /* nothing left: nothing runs twice */
    assert_int_equal(n, 4);
    assert_int_equal(mxr__core_timeout(c), -1);
    core_del(c);
}

/* ------------------------------------------------------ an I/O source */

typedef struct conn {
    mxr__io_handle io;
    int id;
    int hits;
} conn;

typedef struct fake_source {
    mxr__io_source io;
    int timeout_ms; /* what it reports */
    int rounds;     /* process calls without a descriptor */
    int ready;      /* process calls with one */
    int last_fd;
    bool shut;
} fake_source;

static fake_source *of(mxr__io_source *s)
{
    return mxr__container_of(s, fake_source, io);
}

static int fs_timeout(mxr__io_source *s, int max_ms)
{
    int t = of(s)->timeout_ms;
    return t < 0 || t > max_ms ? (t < 0 ? -1 : max_ms) : t;
}

static void fs_process(mxr__io_source *s, int fd, mxr__io_handle *h,
                       bool readable, bool writable)
{
    fake_source *f = of(s);
    if (fd == MXR_NOFD) {
        f->rounds++;
        return;
    }
    f->ready++;
    f->last_fd = fd;
    if (h)
        mxr__container_of(h, conn, io)->hits++;
}

static void fs_shutdown(mxr__io_source *s)
{
    of(s)->shut = true;
}

static const mxr__io_ops fs_ops = {"fake", fs_timeout, fs_process, fs_shutdown};

typedef struct sock_log {
    int calls;
    int last_fd, last_rd, last_wr;
} sock_log;

static void on_sock(void *ud, int fd, int rd, int wr)
{
    sock_log *l = ud;
    l->calls++;
    l->last_fd = fd;
    l->last_rd = rd;
    l->last_wr = wr;
}

enum { NPIPES = 300 }; /* 600 descriptors: far past any old 64-entry table */

static void test_registry_many_descriptors(void **state)
{
    mxr__core *c = core_new(NULL);
    sock_log sl = {0};
    c->sock_cb = on_sock;
    c->sock_ud = &sl;
    fake_source a = {.io.ops = &fs_ops, .timeout_ms = -1};
    fake_source b = {.io.ops = &fs_ops, .timeout_ms = -1};
    mxr__io_register(c, &a.io);
    mxr__io_register(c, &b.io);
    static int fds[NPIPES][2];
    static conn conns[NPIPES];
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        conns[i] = (conn){.io.fd = fds[i][0], .id = i};
        fake_source *src = i % 2 ? &b : &a;
        assert_int_equal(
            mxr__io_watch(c, &src->io, fds[i][0], MXR_WANT_READ, &conns[i].io),
            MXR_OK);
        assert_int_equal(
            mxr__io_watch(c, &src->io, fds[i][1], MXR_WANT_WRITE, NULL),
            MXR_OK);
    }
    assert_int_equal(sl.calls, 2 * NPIPES);
    mxr_sock *socks = calloc(2 * NPIPES, sizeof *socks);
    assert_int_equal(mxr__core_fds(c, socks, 2 * NPIPES), 2 * NPIPES);
    assert_int_equal(mxr__core_fds(c, socks, 10), 2 * NPIPES); /* the count */
    /* A ready descriptor goes to its own source and handle only; the other
     * source gets a round without one. */
    int i = NPIPES - 1; /* odd: source b */
    mxr__core_process(c, fds[i][0], MXR_NOFD);
    assert_int_equal(b.ready, 1);
    assert_int_equal(b.last_fd, fds[i][0]);
    assert_int_equal(conns[i].hits, 1);
    assert_int_equal(a.ready, 0);
    assert_int_equal(a.rounds, 1);
    assert_int_equal(b.rounds, 0);
    /* A descriptor no longer watched is ignored, never misdelivered. */
    assert_int_equal(mxr__io_watch(c, &b.io, fds[i][0], 0, NULL), MXR_OK);
    assert_int_equal(sl.last_fd, fds[i][0]);
    assert_int_equal(sl.last_rd + sl.last_wr, 0);
    mxr__core_process(c, fds[i][0], MXR_NOFD);
    assert_int_equal(b.ready, 1);
    assert_int_equal(mxr__core_fds(c, socks, 2 * NPIPES), 2 * NPIPES - 1);
    /* Changing what a descriptor waits for tells the embedder once. */
    int before = sl.calls;
    assert_int_equal(
        mxr__io_watch(c, &a.io, fds[0][0], MXR_WANT_READ, &conns[0].io),
        MXR_OK);
    assert_int_equal(sl.calls, before); /* no change */
    assert_int_equal(mxr__io_watch(c, &a.io, fds[0][0],
                                   MXR_WANT_READ | MXR_WANT_WRITE,
                                   &conns[0].io),
                     MXR_OK);
    assert_int_equal(sl.calls, before + 1);
    assert_int_equal(mxr__io_want(c, fds[0][0]),
                     MXR_WANT_READ | MXR_WANT_WRITE);
    assert_int_equal(mxr__io_watch(c, &a.io, -1, MXR_WANT_READ, NULL),
                     MXR_EINVAL);
    /* A source that unwatches a descriptor now another's (it closed its
     * own, and the number was reused) leaves the other's watch alone. */
    assert_int_equal(mxr__io_watch(c, &b.io, fds[0][0], 0, NULL), MXR_OK);
    assert_int_equal(mxr__io_want(c, fds[0][0]),
                     MXR_WANT_READ | MXR_WANT_WRITE);
    mxr__core_process(c, fds[0][0], MXR_NOFD);
    assert_int_equal(conns[0].hits, 1);
    mxr__core_shutdown(c);
    assert_true(a.shut && b.shut);
    for (int k = 0; k < NPIPES; k++) {
        close(fds[k][0]);
        close(fds[k][1]);
    }
    free(socks);
    mxr__core_free(c);
    assert_int_equal(c->a.bytes, 0);
    free(c);
}

/* The table cannot grow: the watch fails with a message naming the source
 * and the descriptor, and what was watched before stays watched. */
static void test_registry_growth_failure(void **state)
{
    mxr_test_alloc t = {0};
    mxr__core *c = core_new(&t);
    fake_source a = {.io.ops = &fs_ops, .timeout_ms = -1};
    mxr__io_register(c, &a.io);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(mxr__io_watch(c, &a.io, p[0], MXR_WANT_READ, NULL),
                     MXR_OK);
    t.fail_from = t.calls + 1; /* memory is gone from now on */
    int far = 100000;          /* needs a bigger table */
    assert_int_equal(mxr__io_watch(c, &a.io, far, MXR_WANT_READ, NULL),
                     MXR_ENOMEM);
    assert_non_null(strstr(c->err, "fake"));
    assert_non_null(strstr(c->err, "100000"));
    mxr_sock s[4];
    assert_int_equal(mxr__core_fds(c, s, 4), 1);
    assert_int_equal(s[0].fd, p[0]);
    t.fail_from = 0;
    close(p[0]);
    close(p[1]);
    core_del(c);
    assert_int_equal(t.live, 0);
}

static void test_timeout_earliest_source(void **state)
{
    mxr__core *c = core_new(NULL);
    fake_source a = {.io.ops = &fs_ops, .timeout_ms = 700};
    fake_source b = {.io.ops = &fs_ops, .timeout_ms = 40};
    fake_source idle = {.io.ops = &fs_ops, .timeout_ms = -1};
    assert_int_equal(mxr__core_timeout(c), -1);
    mxr__io_register(c, &idle.io);
    assert_int_equal(mxr__core_timeout(c), -1);
    mxr__io_register(c, &a.io);
    assert_int_equal(mxr__core_timeout(c), 700);
    mxr__io_register(c, &b.io);
    assert_int_equal(mxr__core_timeout(c), 40);
    mxr__io_unregister(c, &b.io);
    assert_int_equal(mxr__core_timeout(c), 700);
    core_del(c);
}

/* One round of the poll loop on real pipes: the readable one is handed to
 * its handle; with nothing ready, every source gets its round. */
static void test_poll_once(void **state)
{
    mxr__core *c = core_new(NULL);
    fake_source a = {.io.ops = &fs_ops, .timeout_ms = -1};
    mxr__io_register(c, &a.io);
    int p[2], q[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(q), 0);
    conn cp = {.io.fd = p[0]}, cq = {.io.fd = q[0]};
    mxr__io_watch(c, &a.io, p[0], MXR_WANT_READ, &cp.io);
    mxr__io_watch(c, &a.io, q[0], MXR_WANT_READ, &cq.io);
    assert_int_equal(write(q[1], "x", 1), 1);
    assert_int_equal(mxr__core_poll_once(c, 1000), MXR_OK);
    assert_int_equal(cq.hits, 1);
    assert_int_equal(cp.hits, 0);
    char ch;
    assert_int_equal(read(q[0], &ch, 1), 1);
    assert_int_equal(mxr__core_poll_once(c, 0), MXR_OK); /* nothing ready */
    assert_int_equal(a.rounds, 1);
    assert_int_equal(cq.hits + cp.hits, 1);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    core_del(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_fifo_one_round),
        cmocka_unit_test(test_registry_many_descriptors),
        cmocka_unit_test(test_registry_growth_failure),
        cmocka_unit_test(test_timeout_earliest_source),
        cmocka_unit_test(test_poll_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
