/* plan.h -- building a plan host by host, and packing it into the single
 * block the caller receives (mxr_plan). A packed plan is position
 * independent up to one relocation, so cloning a plan is a memcpy. */
#ifndef MXR_PLAN_H
#define MXR_PLAN_H

#include "base/alloc.h"
#include "base/name.h"

typedef struct mxr__host {
    uint16_t pref;
    uint16_t port;
    mxr_source source;
    uint32_t notes;
    bool tls_required;
    uint32_t ttl; /* of its addresses, as served (mxr_candidate.ttl) */
    size_t naddrs;
    mxr_addr *addrs; /* builder-owned */
    /* The strings come last: mxr__pb_add_host zeroes what is before. */
    char name[MXR__NAME_MAX + 1];
    char label[64]; /* "" when none */
} mxr__host;

typedef struct mxr__skip {
    char name[MXR__NAME_MAX + 1];
    uint16_t pref;
    mxr_reason reason;
} mxr__skip;

typedef struct mxr__plan_builder {
    mxr__alloc *a;
    mxr__host *hosts;
    size_t nhosts, caphosts;
    mxr__skip *skips;
    size_t nskips, capskips;
    mxr_result result;
    mxr_reason reason;
    bool implicit;
    uint32_t ttl;    /* UINT32_MAX until a record lowers it */
    uint32_t mx_ttl; /* of the MX answer, as served (mxr_plan.mx_ttl) */
} mxr__plan_builder;

void mxr__pb_init(mxr__plan_builder *pb, mxr__alloc *a);
void mxr__pb_free(mxr__plan_builder *pb);
/* Empty the builder for the next plan. Its host and skip arrays stay
 * allocated when they hold at most keep_max entries, so that a builder
 * reused plan after plan (a pooled route job) stops allocating them. */
void mxr__pb_reset(mxr__plan_builder *pb, size_t keep_max);
/* Returns the new host, or NULL when out of memory. */
mxr__host *mxr__pb_add_host(mxr__plan_builder *pb, const char *name,
                            uint16_t pref, mxr_source source, uint16_t port);
mxr_status mxr__pb_add_addr(mxr__plan_builder *pb, mxr__host *h,
                            const mxr_addr *ad);
mxr_status mxr__pb_skip(mxr__plan_builder *pb, const char *name, uint16_t pref,
                        mxr_reason reason);
/* Make room for `more` further skips, so that moving hosts to the skipped
 * list cannot fail half-way. 0, or -1 when out of memory. */
mxr_status mxr__pb_reserve_skips(mxr__plan_builder *pb, size_t more);
/* Remove host i, keeping the order of the others. */
void mxr__pb_remove_host(mxr__plan_builder *pb, size_t i);
void mxr__pb_fail(mxr__plan_builder *pb, mxr_result result, mxr_reason reason);
void mxr__pb_lower_ttl(mxr__plan_builder *pb, uint32_t ttl);

/* Pack into one block from fn/ud (the block remembers them for
 * mxr_plan_free). Room is reserved so that every candidate can later move
 * to the skipped list (limits). NULL when out of memory. */
mxr_plan *mxr__plan_pack(const mxr__plan_builder *pb, const char *input,
                         const char *domain, mxr_alloc_fn fn, void *ud);
/* What a public plan block has room for: candidates (and as many more
 * skipped entries, for limits), skipped entries, addresses, and the bytes
 * of every string but the input. */
typedef struct mxr__plan_room {
    size_t ncandidates, nskipped, naddrs, strbytes;
} mxr__plan_room;

/* A block made by mxr__plan_block, for its maker to fill in: plan's
 * input, ncandidates, candidates, nskipped and skipped are set (the
 * arrays' contents are not), every other field is zero. */
typedef struct mxr__plan_parts {
    mxr_plan *plan;
    mxr_candidate *candidates;
    mxr_skipped *skipped;
    mxr_addr *addrs; /* room->naddrs */
    char *strings;   /* room->strbytes */
} mxr__plan_parts;

/* A plan block from fn/ud (mxr_plan_free frees it) holding input, with
 * room as asked; false when it cannot exist or out of memory. Used to
 * unpack cached plans (plan/template.h). */
bool mxr__plan_block(const mxr__plan_room *room, const char *input,
                     mxr_alloc_fn fn, void *ud, mxr__plan_parts *out);
/* Deep copy into a block from fn/ud. */
mxr_plan *mxr__plan_clone(const mxr_plan *p, mxr_alloc_fn fn, void *ud);
/* Same plan, another input string (a cached plan reused for "u@d"). */
mxr_plan *mxr__plan_clone_for(const mxr_plan *p, const char *input,
                              mxr_alloc_fn fn, void *ud);
size_t mxr__plan_bytes(const mxr_plan *p);
/* Set the TTLs of copy, a copy of a plan cached from built_ms (when
 * its TTLs were read) to expires_ms, to what is left of them at now_ms. */
void mxr__plan_count_down(mxr_plan *copy, uint64_t built_ms,
                          uint64_t expires_ms, uint64_t now_ms);
/* Append a skipped entry in the reserved room (limits); 0 or -1 if full. */
mxr_status mxr__plan_skip_candidate(mxr_plan *p, size_t i, mxr_reason reason);

#endif
