/* retry.h -- the retry schedule: exponential backoff with jitter between a
 * minimum and a maximum delay, and a maximum message age. */
#ifndef MXR_RETRY_H
#define MXR_RETRY_H

#include "base/rng.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct mxr__retry_params {
    uint32_t min_s;      /* delay after the first failed attempt */
    uint32_t max_s;      /* no delay is longer */
    uint32_t factor_pct; /* growth per attempt: 200 doubles */
    uint32_t jitter_pct; /* the delay moves by up to +- this percent */
    uint32_t max_age_s;  /* older deferred mail bounces */
} mxr__retry_params;

/* Delay in ms after `attempts` failed attempts (attempts >= 1):
 * min * factor^(attempts-1), capped at max, then jittered, and always
 * within [min, max]. Never overflows, whatever attempts is. */
uint64_t mxr__retry_delay_ms(const mxr__retry_params *p, unsigned attempts,
                             mxr__rng *rng);

/* When to try again after a failed attempt at now_ms, for a message first
 * tried at first_ms after `attempts` failed attempts. Returns false when
 * the message has reached max age (the caller bounces it); otherwise sets
 * *next_ms, which is never past first_ms + max_age (one last try then). */
bool mxr__retry_next(const mxr__retry_params *p, unsigned attempts,
                     uint64_t first_ms, uint64_t now_ms, mxr__rng *rng,
                     uint64_t *next_ms);

#endif
