/* rng.c -- xoshiro256** (Blackman and Vigna), seeded through splitmix64 so
 * that any 64-bit seed, even 0, gives a well-mixed non-zero state. */
#include "base/rng.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void mxr__rng_seed(mxr__rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (size_t i = 0; i < 4; i++)
        r->s[i] = splitmix64_next(&x);
}

/* Fills buf completely or reports failure; getrandom may return short
 * reads for large requests and EINTR before the pool is ready. */
static bool read_os_entropy(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Only for systems without getrandom: distinct per process and per call,
 * which is all a tie shuffle needs. */
static uint64_t time_based_seed(const mxr__rng *r)
{
    struct timespec rt = {0}, mono = {0};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t x =
        (uint64_t)rt.tv_sec * UINT64_C(1000000000) + (uint64_t)rt.tv_nsec;
    x ^= rotl((uint64_t)mono.tv_nsec, 32) ^ (uint64_t)mono.tv_sec;
    x ^= rotl((uint64_t)getpid(), 16);
    x ^= (uint64_t)(uintptr_t)r;
    return x;
}

static bool state_is_zero(const mxr__rng *r)
{
    return (r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0;
}

void mxr__rng_seed_random(mxr__rng *r)
{
    if (read_os_entropy(r->s, sizeof r->s) && !state_is_zero(r))
        return;
    /* xoshiro must never run from the all-zero state: it would stay there. */
    mxr__rng_seed(r, time_based_seed(r));
}

uint64_t mxr__rng_next(mxr__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t mxr__rng_below(mxr__rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* 2^64 mod n values at the bottom of the range would make small
     * results more likely; drawing again when we land there removes the
     * bias (fewer than half the draws are ever rejected). */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = mxr__rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}
