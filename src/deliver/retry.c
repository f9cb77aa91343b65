/* retry.c -- the retry schedule: min * factor^(attempts-1), capped at max,
 * jittered within [min, max].
 *
 * Everything is computed in milliseconds with 64-bit integers: seconds fit
 * in 32 bits, so the bounds fit in 42 bits and the arithmetic below checks
 * every product that could go further. */
#include "deliver/retry.h"

#include <stddef.h>

#define MS_PER_S UINT64_C(1000)

typedef struct delay_bounds {
    uint64_t min_ms, max_ms;
} delay_bounds;

/* A max below min would leave no valid delay; min wins then, so a
 * misconfigured domain still waits at least what was asked for first. */
static delay_bounds bounds_of(const mxr__retry_params *p)
{
    delay_bounds b = {(uint64_t)p->min_s * MS_PER_S,
                      (uint64_t)p->max_s * MS_PER_S};
    if (b.max_ms < b.min_ms)
        b.max_ms = b.min_ms;
    return b;
}

static uint64_t saturating_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* One growth step, or cap when delay * factor would pass cap (or 64 bits). */
static uint64_t grow_capped(uint64_t delay, uint32_t factor_pct, uint64_t cap)
{
    if (delay > UINT64_MAX / factor_pct)
        return cap;
    uint64_t next = delay * factor_pct / 100;
    return next > cap ? cap : next;
}

/* min * factor^(attempts-1), capped at max. The loop stops as soon as the
 * cap is reached or a step no longer changes the delay, so it runs a few
 * thousand times at most whatever attempts is (factor 101% from 1 s needs
 * about 2,900 steps to pass 2^32 s). */
static uint64_t backoff_ms(const mxr__retry_params *p, delay_bounds b,
                           unsigned attempts)
{
    uint64_t delay = b.min_ms;
    /* A factor of 100% or less never grows the delay, and anything below
     * min is clamped back to min: no need to loop. */
    if (p->factor_pct <= 100)
        return delay;
    for (unsigned i = 1; i < attempts && delay < b.max_ms; i++) {
        uint64_t next = grow_capped(delay, p->factor_pct, b.max_ms);
        if (next == delay) /* tiny delays that rounding keeps in place */
            break;
        delay = next;
    }
    return delay;
}

/* Uniform over [delay - span, delay + span] cut to [min, max], where span
 * is jitter% of delay: drawing inside the bounds (rather than clamping a
 * draw) keeps retries from piling up exactly on min or max. Jitter is
 * capped at 100%; delay < 2^42 ms, so delay * 100 cannot overflow. A NULL
 * rng means no jitter (deterministic schedules). */
static uint64_t jittered(uint64_t delay, uint32_t jitter_pct, mxr__rng *rng,
                         delay_bounds b)
{
    if (rng == NULL || jitter_pct == 0)
        return delay;
    uint64_t pct = jitter_pct > 100 ? 100 : jitter_pct;
    uint64_t span = delay * pct / 100;
    uint64_t lo = delay - span < b.min_ms ? b.min_ms : delay - span;
    uint64_t hi = delay + span > b.max_ms ? b.max_ms : delay + span;
    if (hi <= lo)
        return lo;
    return lo + mxr__rng_below(rng, hi - lo + 1);
}

static uint64_t clamped(uint64_t v, delay_bounds b)
{
    return v < b.min_ms ? b.min_ms : v > b.max_ms ? b.max_ms : v;
}

uint64_t mxr__retry_delay_ms(const mxr__retry_params *p, unsigned attempts,
                             mxr__rng *rng)
{
    delay_bounds b = bounds_of(p);
    uint64_t delay = backoff_ms(p, b, attempts == 0 ? 1 : attempts);
    return clamped(jittered(clamped(delay, b), p->jitter_pct, rng, b), b);
}

bool mxr__retry_next(const mxr__retry_params *p, unsigned attempts,
                     uint64_t first_ms, uint64_t now_ms, mxr__rng *rng,
                     uint64_t *next_ms)
{
    uint64_t max_age_ms = (uint64_t)p->max_age_s * MS_PER_S;
    /* A clock that reads earlier than the first attempt counts as age 0
     * rather than wrapping into a huge age. */
    uint64_t age_ms = now_ms > first_ms ? now_ms - first_ms : 0;
    if (age_ms >= max_age_ms)
        return false;
    uint64_t deadline = saturating_add(first_ms, max_age_ms);
    uint64_t next =
        saturating_add(now_ms, mxr__retry_delay_ms(p, attempts, rng));
    /* The schedule may not jump past the deadline: one last try happens
     * at the deadline itself, and the failure after it bounces. */
    *next_ms = next > deadline ? deadline : next;
    return true;
}
