/* rng.h -- a small seedable generator (xoshiro256**, seeded by splitmix64)
 * for the tie shuffle; unbiased bounded draws. Not for cryptography. */
#ifndef MXR_RNG_H
#define MXR_RNG_H

#include <stdint.h>

typedef struct mxr__rng {
    uint64_t s[4];
} mxr__rng;

void mxr__rng_seed(mxr__rng *r, uint64_t seed);
/* Seed from the operating system (getrandom); falls back to time. */
void mxr__rng_seed_random(mxr__rng *r);
uint64_t mxr__rng_next(mxr__rng *r);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t mxr__rng_below(mxr__rng *r, uint64_t n);

#endif
