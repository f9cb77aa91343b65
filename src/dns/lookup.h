/* lookup.h -- DNS lookups through the cache: one query per (name, type) in
 * flight however many ask (they wait on it together), at most max_inflight
 * queries sent at once (the rest wait in a FIFO), CNAMEs into other zones
 * chased, answers cached with their TTLs clamped. */
#ifndef MXR_DNS_LOOKUP_H
#define MXR_DNS_LOOKUP_H

#include "core/core.h"
#include "dns/answer.h"
#include "dns/backend.h"
#include "dns/cache.h"

typedef struct mxr__lookups mxr__lookups;

/* One lookup, embedded in the request that asks (container_of gets it
 * back), so asking allocates nothing and the answer finds its way home
 * typed. done fires exactly once, from mxr_engine_process; ans is valid
 * during the call and ttl is what remains of its (clamped) TTL. */
typedef struct mxr__lookup_req mxr__lookup_req;
typedef void (*mxr__lookup_done)(mxr__lookup_req *req, const mxr__answer *ans,
                                 uint32_t ttl);
struct mxr__lookup_req {
    mxr__task task;        /* a cached answer is handed over from here */
    mxr__lookup_req *next; /* the other waiters on the same query */
    mxr__lookup_done done;
    mxr__lookups *owner;
    mxr__answer *hit; /* the cached answer on its way, a reference */
};

typedef struct mxr__lookup_config {
    int64_t ttl_min, ttl_max, neg_ttl_max, tempfail_ttl; /* seconds */
    size_t max_inflight;
    size_t max_mx_records;
} mxr__lookup_config;

typedef struct mxr__lookup_stats {
    uint64_t queries_sent;
    uint64_t queries_coalesced;
    uint64_t cache_hits;
    uint64_t queries_timed_out; /* answered by the backend's timeout */
    size_t inflight, inflight_max;
} mxr__lookup_stats;

/* backend and cache stay the caller's. NULL when out of memory. */
mxr__lookups *mxr__lookups_new(mxr__core *core, mxr__backend *backend,
                               mxr__cache *cache,
                               const mxr__lookup_config *cfg);
/* Fail every query not yet sent (engine teardown). */
void mxr__lookups_cancel_waiting(mxr__lookups *l);
void mxr__lookups_free(mxr__lookups *l);
const mxr__lookup_stats *mxr__lookups_stats(const mxr__lookups *l);
/* Ask another backend from now on (tests and fuzz targets). */
void mxr__lookups_set_backend(mxr__lookups *l, mxr__backend *backend);

/* Ask for name's records of qtype. MXR_OK: done fires later, exactly once.
 * MXR_ENOMEM, or MXR_EDESTROYED during teardown: done never fires. */
mxr_status mxr__lookup(mxr__lookups *l, mxr__lookup_req *req, const char *name,
                       uint16_t qtype, mxr__lookup_done done);

#endif
