/* test_source.c -- the program's own descriptors in the engine's loop
 * (mxr_engine_add_io): a ready pipe reaches process() with its fd_ud,
 * a round without one says MXR_NOFD, the source's timeout counts,
 * mxr_engine_fds lists its descriptors, unwatching and removing work, a
 * route started from process() completes, and destroying the engine calls
 * shutdown once and frees the source (ASan checks the freeing). */
#include "support.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct prog {
    int ready, rounds, shutdowns;
    int last_fd;
    void *last_ud;
    int timeout_ms;
    mxr_engine *e;
    bool route_from_process;
    int routed;
} prog;

static int p_timeout(void *ud, int max_ms)
{
    prog *p = ud;
    return p->timeout_ms < 0 || p->timeout_ms > max_ms
               ? (p->timeout_ms < 0 ? -1 : max_ms)
               : p->timeout_ms;
}

static void on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    prog *p = arg;
    p->routed += st == MXR_OK ? 1 : 100;
    mxr_plan_free(plan);
}

static void p_process(void *ud, int fd, void *fd_ud, bool rd, bool wr)
{
    prog *p = ud;
    if (fd == MXR_NOFD) {
        assert_null(fd_ud);
        p->rounds++;
        return;
    }
    p->ready++;
    p->last_fd = fd;
    p->last_ud = fd_ud;
    char buf[16];
    if (rd)
        assert_true(read(fd, buf, sizeof buf) > 0);
    if (p->route_from_process) {
        p->route_from_process = false;
        assert_int_equal(mxr_route(p->e, "plain.rules.test", on_route, p),
                         MXR_OK);
    }
}

static void p_shutdown(void *ud)
{
    ((prog *)ud)->shutdowns++;
}

static const mxr_io_ops ops = {p_timeout, p_process, p_shutdown};

static mxr_engine *engine(void)
{
    mxr_options *o;
    mxr_engine *e;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    assert_int_equal(
        mxr_options_add_zone_file(
            o, mxr_test_source_path("tests/zones/rules.test.zone")),
        MXR_OK);
    assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
    mxr_options_free(o);
    return e;
}

static void test_source_in_the_loop(void **state)
{
    mxr_engine *e = engine();
    prog p = {.timeout_ms = -1, .e = e};
    mxr_io *s;
    assert_int_equal(mxr_engine_add_io(e, &ops, &p, &s), MXR_OK);
    int a[2], b[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    int tag_a, tag_b;
    assert_int_equal(mxr_io_watch(s, a[0], MXR_WANT_READ, &tag_a), MXR_OK);
    assert_int_equal(mxr_io_watch(s, b[0], MXR_WANT_READ, &tag_b), MXR_OK);
    mxr_sock socks[8];
    assert_int_equal(mxr_engine_fds(e, socks, 8), 2);
    /* b is ready: process gets b with its own tag, a route from inside
     * completes in a later round */
    p.route_from_process = true;
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(mxr_engine_run_once(e, 1000), MXR_OK);
    assert_int_equal(p.ready, 1);
    assert_int_equal(p.last_fd, b[0]);
    assert_ptr_equal(p.last_ud, &tag_b);
    assert_int_equal(mxr_engine_run(e, 5000), 0);
    assert_int_equal(p.routed, 1);
    /* nothing ready: a round without a descriptor */
    int rounds = p.rounds;
    assert_int_equal(mxr_engine_run_once(e, 0), MXR_OK);
    assert_true(p.rounds > rounds);
    /* the source's timeout is the engine's */
    assert_int_equal(mxr_engine_timeout(e), -1);
    p.timeout_ms = 25;
    assert_int_equal(mxr_engine_timeout(e), 25);
    p.timeout_ms = -1;
    /* unwatched: its events no longer reach the source */
    assert_int_equal(mxr_io_watch(s, b[0], 0, NULL), MXR_OK);
    assert_int_equal(mxr_engine_fds(e, socks, 8), 1);
    assert_int_equal(socks[0].fd, a[0]);
    assert_int_equal(mxr_io_watch(s, -1, MXR_WANT_READ, NULL), MXR_EINVAL);
    /* removed: nothing left to watch, no shutdown call */
    mxr_io_remove(s);
    assert_int_equal(mxr_engine_fds(e, socks, 8), 0);
    mxr_engine_destroy(e);
    assert_int_equal(p.shutdowns, 0);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

/* The source's table grows as descriptors are watched: an early
 * descriptor's fd_ud must survive every growth (a handle into the old
 * table was a use after free). */
static void test_source_table_growth(void **state)
{
    mxr_engine *e = engine();
    prog p = {.timeout_ms = -1, .e = e};
    mxr_io *s;
    assert_int_equal(mxr_engine_add_io(e, &ops, &p, &s), MXR_OK);
    enum { N = 120 };
    static int fds[N][2];
    static int tags[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        assert_int_equal(mxr_io_watch(s, fds[i][0], MXR_WANT_READ, &tags[i]),
                         MXR_OK);
    }
    assert_int_equal(write(fds[0][1], "x", 1), 1);
    assert_int_equal(mxr_engine_run_once(e, 1000), MXR_OK);
    assert_int_equal(p.ready, 1);
    assert_int_equal(p.last_fd, fds[0][0]);
    assert_ptr_equal(p.last_ud, &tags[0]);
    mxr_engine_destroy(e);
    for (int i = 0; i < N; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
}

static void test_source_shutdown_on_destroy(void **state)
{
    mxr_engine *e = engine();
    prog p = {.timeout_ms = -1};
    mxr_io *s;
    assert_int_equal(mxr_engine_add_io(e, &ops, &p, &s), MXR_OK);
    int a[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(mxr_io_watch(s, a[0], MXR_WANT_READ, NULL), MXR_OK);
    mxr_engine_destroy(e); /* frees the source */
    assert_int_equal(p.shutdowns, 1);
    close(a[0]);
    close(a[1]);
}

static void test_source_bad_arguments(void **state)
{
    mxr_engine *e = engine();
    mxr_io *s;
    static const mxr_io_ops no_process = {NULL, NULL, NULL};
    assert_int_equal(mxr_engine_add_io(e, &no_process, NULL, &s), MXR_EINVAL);
    assert_int_equal(mxr_engine_add_io(NULL, &ops, NULL, &s), MXR_EINVAL);
    assert_int_equal(mxr_engine_add_io(e, &ops, NULL, NULL), MXR_EINVAL);
    assert_int_equal(mxr_io_watch(NULL, 0, MXR_WANT_READ, NULL), MXR_EINVAL);
    mxr_io_remove(NULL);
    mxr_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_in_the_loop),
        cmocka_unit_test(test_source_table_growth),
        cmocka_unit_test(test_source_shutdown_on_destroy),
        cmocka_unit_test(test_source_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
