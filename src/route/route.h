/* route.h -- the router: one routing request goes name -> MX -> addresses
 * of each target -> plan (RFC 5321 5.1, RFC 7505), then through the route
 * hooks of the policies, to the embedder's callback. The rules are in
 * docs/routing-rules.md. */
#ifndef MXR_ROUTE_ROUTE_H
#define MXR_ROUTE_ROUTE_H

#include "core/core.h"
#include "dns/cache.h"
#include "dns/lookup.h"
#include "plan/order.h"
#include "policy/policy.h"

typedef struct mxr__router mxr__router;

typedef struct mxr__router_config {
    mxr_family family;  /* which address lookups to make */
    uint16_t port;      /* of every candidate DNS gives */
    size_t max_pending; /* requests accepted at once (MXR_EBUSY past it) */
} mxr__router_config;

typedef struct mxr__router_stats {
    uint64_t routes;    /* requests accepted */
    uint64_t plan_hits; /* answered from a cached plan */
} mxr__router_stats;

/* Everything is borrowed and must outlive the router; *policies is read
 * at each route, so a reload takes effect for the next one. order: its
 * names and addresses too. NULL when out of memory. */
mxr__router *mxr__router_new(mxr__core *core, mxr__lookups *dns,
                             mxr__cache *plans, mxr__policies *const *policies,
                             mxr__rng *rng, const mxr__order_config *order,
                             const mxr__router_config *cfg);
/* Teardown: every request still here ends with MXR_EDESTROYED. Run it
 * once the lookups were cancelled. */
void mxr__router_abort_all(mxr__router *rt);
void mxr__router_free(mxr__router *rt);
const mxr__router_stats *mxr__router_stats_of(const mxr__router *rt);

/* Route input. MXR_OK: cb fires exactly once, from mxr_engine_process.
 * Otherwise (MXR_EBADNAME, MXR_EBUSY, MXR_ENOMEM, MXR_EDESTROYED) it never
 * fires and the core's error channel says why. */
mxr_status mxr__route_start(mxr__router *rt, const char *input, mxr_route_cb cb,
                            void *arg);

#endif
