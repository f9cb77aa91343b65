/* test_rng.c -- the tie-shuffle generator: reference outputs, seeding and
 * unbiased bounded draws. */
#include "support.h"

#include "base/rng.h"

/* Chi-square of observed counts against a uniform expectation. */
static double chi_square_uniform(const unsigned long *counts, size_t cells,
                                 unsigned long total)
{
    double expected = (double)total / (double)cells;
    double chi = 0;
    for (size_t i = 0; i < cells; i++) {
        double d = (double)counts[i] - expected;
        chi += d * d / expected;
    }
    return chi;
}

/* Outputs computed by an independent implementation of splitmix64
 * seeding and xoshiro256** (Python, from the reference C code). */
static void test_reference_outputs(void **state)
{
    (void)state;
    mxr__rng r;
    mxr__rng_seed(&r, 0);
    assert_true(mxr__rng_next(&r) == UINT64_C(0x99ec5f36cb75f2b4));
    assert_true(mxr__rng_next(&r) == UINT64_C(0xbf6e1f784956452a));
    assert_true(mxr__rng_next(&r) == UINT64_C(0x1a5f849d4933e6e0));
    mxr__rng_seed(&r, 12345);
    assert_true(mxr__rng_next(&r) == UINT64_C(0xbe6a36374160d49b));
    assert_true(mxr__rng_next(&r) == UINT64_C(0x214aaa0637a688c6));
    assert_true(mxr__rng_next(&r) == UINT64_C(0xf69d16de9954d388));
}

static void test_same_seed_same_sequence(void **state)
{
    (void)state;
    mxr__rng a, b, c;
    mxr__rng_seed(&a, 42);
    mxr__rng_seed(&b, 42);
    mxr__rng_seed(&c, 43);
    int differs = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = mxr__rng_next(&a);
        assert_true(x == mxr__rng_next(&b));
        differs += x != mxr__rng_next(&c);
    }
    assert_true(differs > 990);
}

static void test_seed_random_differs(void **state)
{
    (void)state;
    mxr__rng a, b;
    mxr__rng_seed_random(&a);
    mxr__rng_seed_random(&b);
    assert_true((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0);
    /* 256 bits from the OS: equal states would mean no entropy at all. */
    assert_memory_not_equal(a.s, b.s, sizeof a.s);
    assert_true(mxr__rng_next(&a) != mxr__rng_next(&b));
}

static void test_below_one_is_zero(void **state)
{
    (void)state;
    mxr__rng r;
    mxr__rng_seed(&r, 7);
    for (int i = 0; i < 10000; i++)
        assert_true(mxr__rng_below(&r, 1) == 0);
}

static void test_below_stays_in_range(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {
        2,         3, 7, 10, 1000, UINT64_C(1) << 32, (UINT64_C(1) << 63) + 1,
        UINT64_MAX};
    mxr__rng r;
    mxr__rng_seed(&r, 99);
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
        for (int i = 0; i < 20000; i++)
            assert_true(mxr__rng_below(&r, bounds[b]) < bounds[b]);
    }
}

/* With n = 3 * 2^62 a quarter of the raw draws must be rejected; plain
 * modulo would put five eighths of the results in the lower half. */
static void test_below_large_bound_unbiased(void **state)
{
    (void)state;
    const uint64_t n = (UINT64_C(1) << 63) + (UINT64_C(1) << 62);
    mxr__rng r;
    mxr__rng_seed(&r, 5);
    unsigned long halves[2] = {0, 0};
    const unsigned long draws = 100000;
    for (unsigned long i = 0; i < draws; i++)
        halves[mxr__rng_below(&r, n) >= n / 2]++;
    double chi = chi_square_uniform(halves, 2, draws);
    print_message("rng below(3*2^62) halves chi-square %.3f (df=1)\n", chi);
    assert_true(chi < 10.83); /* p = 0.001 */
}

static void test_below_three_uniform(void **state)
{
    (void)state;
    mxr__rng r;
    mxr__rng_seed(&r, 2024);
    unsigned long counts[3] = {0, 0, 0};
    const unsigned long draws = 300000;
    for (unsigned long i = 0; i < draws; i++) {
        uint64_t x = mxr__rng_below(&r, 3);
        assert_true(x < 3);
        counts[x]++;
    }
    double chi = chi_square_uniform(counts, 3, draws);
    print_message("rng below(3) chi-square %.3f (df=2)\n", chi);
    assert_true(chi < 13.82); /* p = 0.001 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_outputs),
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_seed_random_differs),
        cmocka_unit_test(test_below_one_is_zero),
        cmocka_unit_test(test_below_stays_in_range),
        cmocka_unit_test(test_below_large_bound_unbiased),
        cmocka_unit_test(test_below_three_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
