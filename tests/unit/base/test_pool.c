/* test_pool.c -- the free list of same-sized blocks (src/base/pool.c):
 * reuse without allocator calls, the bound on kept blocks, exact byte
 * counts, and failures of the allocator. */
#include "support.h"

#include <string.h>

#include "base/pool.h"

static mxr__alloc counting(mxr_test_alloc *ta)
{
    mxr__alloc a;
    mxr__alloc_init(&a, mxr_test_alloc_fn, ta);
    return a;
}

static void test_reuse_costs_no_call(void **state)
{
    (void)state;
    mxr_test_alloc ta = {0};
    mxr__alloc a = counting(&ta);
    mxr__pool p;
    mxr__pool_init(&p, &a, 100, 4);
    char *x = mxr__pool_get(&p);
    assert_non_null(x);
    memset(x, 0xab, 100); /* the whole size is usable */
    long calls = ta.calls;
    mxr__pool_put(&p, x);
    assert_int_equal(ta.calls, calls); /* kept, not freed */
    assert_ptr_equal(mxr__pool_get(&p), x);
    assert_int_equal(ta.calls, calls); /* reused, not allocated */
    mxr__pool_put(&p, x);
    mxr__pool_drain(&p);
    assert_int_equal(a.bytes, 0);
    assert_int_equal(ta.live, 0);
}

/* Blocks put back beyond max_free go back to the allocator. */
static void test_kept_blocks_are_bounded(void **state)
{
    (void)state;
    mxr_test_alloc ta = {0};
    mxr__alloc a = counting(&ta);
    mxr__pool p;
    mxr__pool_init(&p, &a, 64, 2);
    void *b[5];
    for (int i = 0; i < 5; i++)
        assert_non_null(b[i] = mxr__pool_get(&p));
    size_t one = a.bytes / 5;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mxr__pool_keeps(&p), i < 2);
        mxr__pool_put(&p, b[i]);
    }
    assert_int_equal(p.nfree, 2);
    assert_int_equal(a.bytes, 2 * one); /* the kept ones still count */
    /* Taken last in, first out; then the allocator again. */
    assert_ptr_equal(mxr__pool_get(&p), b[1]);
    assert_ptr_equal(mxr__pool_get(&p), b[0]);
    long calls = ta.calls;
    void *fresh = mxr__pool_get(&p);
    assert_non_null(fresh);
    assert_int_equal(ta.calls, calls + 1);
    mxr__pool_put(&p, b[0]);
    mxr__pool_put(&p, b[1]);
    mxr__pool_put(&p, fresh);
    mxr__pool_put(&p, NULL);
    assert_int_equal(p.nfree, 2);
    mxr__pool_drain(&p);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(ta.live, 0);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    mxr_test_alloc ta = {1, 0, 0};
    mxr__alloc a = counting(&ta);
    mxr__pool p;
    mxr__pool_init(&p, &a, 32, 8);
    assert_null(mxr__pool_get(&p));
    void *x = mxr__pool_get(&p);
    assert_non_null(x);
    mxr__pool_put(&p, x);
    mxr__pool_drain(&p);
    assert_int_equal(ta.live, 0);
}

/* A block smaller than the list link still has room for it. */
static void test_tiny_blocks(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__pool p;
    mxr__pool_init(&p, &a, 1, 4);
    assert_true(p.size >= sizeof(void *));
    void *x = mxr__pool_get(&p), *y = mxr__pool_get(&p);
    mxr__pool_put(&p, x);
    mxr__pool_put(&p, y);
    assert_ptr_equal(mxr__pool_get(&p), y);
    mxr__pool_put(&p, y);
    mxr__pool_drain(&p);
    assert_int_equal(a.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_costs_no_call),
        cmocka_unit_test(test_kept_blocks_are_bounded),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_tiny_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
