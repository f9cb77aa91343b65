/* order.h -- the RFC 5321 ordering rules applied to a plan: preference
 * sort, duplicates, self-pruning, address safety filters, family strategy,
 * then per route the tie shuffle and the limits. */
#ifndef MXR_ORDER_H
#define MXR_ORDER_H

#include "plan/plan.h"
#include "base/rng.h"

typedef struct mxr__order_config {
    mxr_family family;
    bool allow_loopback;
    bool deny_private;
    const char *const *local_names; /* normalised */
    size_t nlocal_names;
    const mxr_addr *local_addrs;
    size_t nlocal_addrs;
    size_t max_hosts;
    size_t max_addrs_per_host;
    size_t max_addrs_total;
} mxr__order_config;

/* Deterministic part, run once per resolution (its result is cached):
 * stable sort by preference, drop duplicates (keep the lowest preference),
 * self-prune, filter unsafe addresses, order addresses by family, move
 * hosts without addresses to the skipped list, and decide the result when
 * nothing usable remains. Returns -1 only when out of memory. */
mxr_status mxr__order_prepare(const mxr__order_config *cfg,
                              mxr__plan_builder *pb);

/* Per-route part, on a private copy: uniform shuffle within each
 * preference, then the host and address limits. */
void mxr__order_finish(const mxr__order_config *cfg, mxr__rng *rng,
                       mxr_plan *plan);

#endif
