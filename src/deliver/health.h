/* health.h -- host health memory: connection-level failures put an address
 * and its host into a cool-down that grows with repeated failures (base *
 * 2^(n-1), capped) and clears on success. Down hosts are tried last, never
 * dropped. Memory is bounded: a byte-bounded LRU of entries; an entry is
 * forgotten (failure count decays to zero) once it has been quiet for
 * max_cooldown past its last cool-down. */
#ifndef MXR_HEALTH_H
#define MXR_HEALTH_H

#include "base/alloc.h"

typedef struct mxr__health mxr__health;

typedef struct mxr__health_params {
    uint32_t base_s;    /* first cool-down */
    uint32_t max_s;     /* longest cool-down */
    size_t max_bytes;   /* memory bound of the table */
} mxr__health_params;

typedef struct mxr__health_state {
    bool down;            /* cooling down at now */
    unsigned failures;    /* consecutive failures remembered */
    uint64_t down_until;  /* ms; 0 if never failed */
    uint64_t last_fail;   /* ms of the last failure; 0 if none */
} mxr__health_state;

mxr__health *mxr__health_new(mxr__alloc *a, const mxr__health_params *p);
void mxr__health_free(mxr__health *h);

/* A connection-level failure of addr on host (host may be NULL to mark
 * only the address; addr may be NULL to mark only the host). */
void mxr__health_fail(mxr__health *h, const char *host, const mxr_addr *addr,
                      uint64_t now_ms);
/* A session got through: forget failures of addr and host. */
void mxr__health_ok(mxr__health *h, const char *host, const mxr_addr *addr,
                    uint64_t now_ms);
mxr__health_state mxr__health_host(mxr__health *h, const char *host,
                                   uint64_t now_ms);
mxr__health_state mxr__health_addr(mxr__health *h, const mxr_addr *addr,
                                   uint64_t now_ms);

/* Reorder a packed plan in place (one the caller owns): hosts that are
 * down move after the hosts that are up, keeping their relative order
 * (so preference order holds among the up hosts), and get MXR_NOTE_DOWN;
 * within each host, down addresses move after up ones. When every host is
 * down, the least recently failed goes first. */
void mxr__health_reorder(mxr__health *h, mxr_plan *plan, uint64_t now_ms);

/* Bytes the table counts against max_bytes (mxr__cache_bytes), for
 * statistics and the memory-bound tests. */
size_t mxr__health_bytes(const mxr__health *h);

#endif
