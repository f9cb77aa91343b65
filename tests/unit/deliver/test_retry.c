/* test_retry.c -- the retry schedule (src/deliver/retry.c): exact backoff without
 * jitter, saturation for any attempt count, the jitter distribution, and
 * the maximum message age. */
#include "support.h"

#include "deliver/retry.h"

#include <limits.h>

#define S UINT64_C(1000) /* ms per second */

/* The documented defaults of MXR_RULE_RETRY_* and MXR_RULE_MAX_AGE_S. */
static mxr__retry_params defaults(void)
{
    mxr__retry_params p = {300, 14400, 200, 10, 432000};
    return p;
}

static mxr__retry_params without_jitter(void)
{
    mxr__retry_params p = defaults();
    p.jitter_pct = 0;
    return p;
}

/* ----------------------------------------------------------- backoff */

static void test_exact_delays_without_jitter(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    mxr__rng rng;
    mxr__rng_seed(&rng, 1);
    const uint64_t expect_s[] = {300,  600,   1200,  2400,  4800,
                                 9600, 14400, 14400, 14400, 14400};
    for (unsigned i = 0; i < sizeof expect_s / sizeof *expect_s; i++)
        assert_int_equal(mxr__retry_delay_ms(&p, i + 1, &rng), expect_s[i] * S);
    /* No rng means no jitter, even with a jitter percentage. */
    p.jitter_pct = 50;
    assert_int_equal(mxr__retry_delay_ms(&p, 2, NULL), 600 * S);
}

static void test_zero_attempts_is_first(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    assert_int_equal(mxr__retry_delay_ms(&p, 0, NULL), 300 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, 0, NULL),
                     mxr__retry_delay_ms(&p, 1, NULL));
}

static void test_huge_attempts_saturate(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    assert_int_equal(mxr__retry_delay_ms(&p, UINT_MAX, NULL), 14400 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, 1000, NULL), 14400 * S);

    /* The largest numbers the types allow: no overflow anywhere. */
    mxr__retry_params big = {1, UINT32_MAX, UINT32_MAX, 0, UINT32_MAX};
    assert_int_equal(mxr__retry_delay_ms(&big, 1, NULL), 1 * S);
    assert_int_equal(mxr__retry_delay_ms(&big, 3, NULL),
                     (uint64_t)UINT32_MAX * S);
    assert_int_equal(mxr__retry_delay_ms(&big, UINT_MAX, NULL),
                     (uint64_t)UINT32_MAX * S);

    /* min 0 stays 0 (0 * factor^n), without looping UINT_MAX times. */
    mxr__retry_params zero = {0, 600, 200, 10, 86400};
    mxr__rng rng;
    mxr__rng_seed(&rng, 2);
    assert_int_equal(mxr__retry_delay_ms(&zero, UINT_MAX, &rng), 0);

    /* The slowest growth still ends at the cap, and quickly. */
    mxr__retry_params slow = {1, UINT32_MAX, 101, 0, UINT32_MAX};
    assert_int_equal(mxr__retry_delay_ms(&slow, 2, NULL), 1010);
    assert_int_equal(mxr__retry_delay_ms(&slow, UINT_MAX, NULL),
                     (uint64_t)UINT32_MAX * S);
}

static void test_factor_100_is_constant(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    p.factor_pct = 100;
    for (unsigned a = 1; a < 50; a++)
        assert_int_equal(mxr__retry_delay_ms(&p, a, NULL), 300 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, UINT_MAX, NULL), 300 * S);
    /* Shrinking factors are clamped back to min. */
    p.factor_pct = 50;
    assert_int_equal(mxr__retry_delay_ms(&p, 5, NULL), 300 * S);
}

static void test_non_integer_factor(void **state)
{
    (void)state;
    mxr__retry_params p = {100, 1000, 150, 0, 86400};
    assert_int_equal(mxr__retry_delay_ms(&p, 1, NULL), 100 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, 2, NULL), 150 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, 3, NULL), 225 * S);
    assert_int_equal(mxr__retry_delay_ms(&p, 4, NULL), 337500);
    assert_int_equal(mxr__retry_delay_ms(&p, 10, NULL), 1000 * S);
}

/* A max below min leaves min as the only valid delay. */
static void test_max_below_min(void **state)
{
    (void)state;
    mxr__retry_params p = {600, 60, 200, 10, 86400};
    mxr__rng rng;
    mxr__rng_seed(&rng, 3);
    for (unsigned a = 1; a < 10; a++)
        assert_int_equal(mxr__retry_delay_ms(&p, a, &rng), 600 * S);
}

/* ------------------------------------------------------------- jitter */

/* 100,000 draws around 1200 s with +-10%: every draw inside the band and
 * inside [min, max], both halves of the band reached, the mean within
 * 0.2% of the delay (the standard error is about 0.02%). */
static void test_jitter_bounds_and_mean(void **state)
{
    (void)state;
    mxr__retry_params p = defaults();
    mxr__rng rng;
    mxr__rng_seed(&rng, 42);
    const uint64_t delay = 1200 * S, span = 120 * S;
    const unsigned draws = 100000;
    uint64_t lowest = UINT64_MAX, highest = 0;
    double sum = 0;
    unsigned below = 0, above = 0;
    for (unsigned i = 0; i < draws; i++) {
        uint64_t d = mxr__retry_delay_ms(&p, 3, &rng);
        assert_true(d >= delay - span && d <= delay + span);
        assert_true(d >= p.min_s * S && d <= p.max_s * S);
        lowest = d < lowest ? d : lowest;
        highest = d > highest ? d : highest;
        below += d < delay;
        above += d > delay;
        sum += (double)d;
    }
    double mean = sum / draws;
    assert_true(mean > delay * 0.998 && mean < delay * 1.002);
    /* Both sides, and close to both edges. */
    assert_true(below > draws / 3 && above > draws / 3);
    assert_true(lowest < delay - span * 99 / 100);
    assert_true(highest > delay + span * 99 / 100);
}

/* With a span of 20 ms (1% of 2 s) every one of the 41 values shows up,
 * the extremes included: the band is closed at both ends. */
static void test_jitter_reaches_both_ends(void **state)
{
    (void)state;
    mxr__retry_params p = {1, 10, 200, 1, 86400};
    mxr__rng rng;
    mxr__rng_seed(&rng, 8);
    unsigned seen[41] = {0};
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t d = mxr__retry_delay_ms(&p, 2, &rng);
        assert_true(d >= 1980 && d <= 2020);
        seen[d - 1980]++;
    }
    for (unsigned i = 0; i < 41; i++)
        assert_true(seen[i] > 0);
}

/* Near the bounds the jittered delay is clamped back into [min, max]. */
static void test_jitter_clamped_to_bounds(void **state)
{
    (void)state;
    mxr__retry_params p = defaults();
    p.jitter_pct = 50;
    mxr__rng rng;
    mxr__rng_seed(&rng, 7);
    /* Draws stay within [min, max] and reach both ends, without piling up
     * on a bound (a clamped draw would put half of them exactly there). */
    unsigned near_min = 0, near_max = 0, at_min = 0, at_max = 0;
    for (unsigned i = 0; i < 10000; i++) {
        uint64_t first = mxr__retry_delay_ms(&p, 1, &rng);
        uint64_t capped = mxr__retry_delay_ms(&p, 100, &rng);
        assert_true(first >= 300 * S && first <= 450 * S);
        assert_true(capped >= 7200 * S && capped <= 14400 * S);
        near_min += first < 303 * S;
        near_max += capped > 14328 * S;
        at_min += first == 300 * S;
        at_max += capped == 14400 * S;
    }
    assert_true(near_min > 0 && near_max > 0);
    assert_true(at_min < 100 && at_max < 100);
    /* Jitter over 100% is treated as 100%: never negative, never 0. */
    p.jitter_pct = 1000;
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t d = mxr__retry_delay_ms(&p, 2, &rng);
        assert_true(d >= 300 * S && d <= 1200 * S);
    }
}

static void test_jitter_is_seeded(void **state)
{
    (void)state;
    mxr__retry_params p = defaults();
    mxr__rng r1, r2;
    mxr__rng_seed(&r1, 99);
    mxr__rng_seed(&r2, 99);
    for (unsigned i = 0; i < 100; i++)
        assert_int_equal(mxr__retry_delay_ms(&p, i % 8, &r1),
                         mxr__retry_delay_ms(&p, i % 8, &r2));
}

/* ------------------------------------------------------------ max age */

static void test_next_is_now_plus_delay(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    uint64_t first = 1000000, next = 0;
    assert_true(mxr__retry_next(&p, 1, first, first, NULL, &next));
    assert_int_equal(next, first + 300 * S);
    assert_true(mxr__retry_next(&p, 3, first, first + 900 * S, NULL, &next));
    assert_int_equal(next, first + 900 * S + 1200 * S);
}

static void test_expiry_exactly_at_max_age(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    uint64_t first = 5000, age = (uint64_t)p.max_age_s * S, next = 7;
    assert_false(mxr__retry_next(&p, 10, first, first + age, NULL, &next));
    assert_int_equal(next, 7); /* untouched when expired */
    assert_false(mxr__retry_next(&p, 10, first, first + age + 1, NULL, &next));
    assert_true(mxr__retry_next(&p, 10, first, first + age - 1, NULL, &next));
    /* Max age 0: the first failure already bounces. */
    p.max_age_s = 0;
    assert_false(mxr__retry_next(&p, 1, first, first, NULL, &next));
}

/* The schedule never jumps past first + max_age: there is one last try
 * at the deadline, and a failure then expires. */
static void test_last_try_capped_at_deadline(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    uint64_t first = 5000, age = (uint64_t)p.max_age_s * S, next = 0;
    uint64_t now = first + age - 60 * S; /* max delay is 4 h > 60 s */
    assert_true(mxr__retry_next(&p, 20, first, now, NULL, &next));
    assert_int_equal(next, first + age);
    /* With jitter, too. */
    mxr__rng rng;
    mxr__rng_seed(&rng, 5);
    p.jitter_pct = 10;
    for (unsigned i = 0; i < 1000; i++) {
        assert_true(mxr__retry_next(&p, 20, first, now, &rng, &next));
        assert_int_equal(next, first + age);
    }
    assert_false(mxr__retry_next(&p, 21, first, first + age, &rng, &next));
}

/* A whole message life: the deadline is always reached, never passed. */
static void test_schedule_until_bounce(void **state)
{
    (void)state;
    mxr__retry_params p = defaults();
    mxr__rng rng;
    mxr__rng_seed(&rng, 11);
    uint64_t first = 123456, deadline = first + (uint64_t)p.max_age_s * S;
    uint64_t now = first, next = 0;
    unsigned attempts = 0;
    while (mxr__retry_next(&p, ++attempts, first, now, &rng, &next)) {
        assert_true(next > now && next <= deadline);
        now = next;
        assert_true(attempts < 1000);
    }
    assert_int_equal(now, deadline);
    /* 300..9600 s doubling, then 4 h steps: about 35 attempts in 5 days. */
    assert_true(attempts > 25 && attempts < 45);
}

static void test_times_near_the_end_of_the_clock(void **state)
{
    (void)state;
    mxr__retry_params p = without_jitter();
    uint64_t first = UINT64_MAX - 10 * S, next = 0;
    assert_true(mxr__retry_next(&p, 1, first, first + 1, NULL, &next));
    assert_int_equal(next, UINT64_MAX); /* saturated, not wrapped */
    /* A clock behind the first attempt counts as age 0. */
    assert_true(mxr__retry_next(&p, 1, 10 * S, 5 * S, NULL, &next));
    assert_int_equal(next, 5 * S + 300 * S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_delays_without_jitter),
        cmocka_unit_test(test_zero_attempts_is_first),
        cmocka_unit_test(test_huge_attempts_saturate),
        cmocka_unit_test(test_factor_100_is_constant),
        cmocka_unit_test(test_non_integer_factor),
        cmocka_unit_test(test_max_below_min),
        cmocka_unit_test(test_jitter_bounds_and_mean),
        cmocka_unit_test(test_jitter_reaches_both_ends),
        cmocka_unit_test(test_jitter_clamped_to_bounds),
        cmocka_unit_test(test_jitter_is_seeded),
        cmocka_unit_test(test_next_is_now_plus_delay),
        cmocka_unit_test(test_expiry_exactly_at_max_age),
        cmocka_unit_test(test_last_try_capped_at_deadline),
        cmocka_unit_test(test_schedule_until_bounce),
        cmocka_unit_test(test_times_near_the_end_of_the_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
