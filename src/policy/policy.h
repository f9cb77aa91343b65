/* policy.h -- Lua routing policies: loading, the sandbox, budgets, and the
 * hooks the engine calls (route, outcome, retry). docs/lua-api.md is the
 * reference scripts see; docs/architecture.md places the layer.
 *
 * Each policy has its own lua_State (so a memory cap is per policy and no
 * policy can see another), a sandboxed environment built by allow-list,
 * and runs every hook call in a coroutine: route hooks may yield while a
 * DNS lookup is in flight. A failing, slow or hungry call is stopped and
 * reported with script:line; the engine then uses its own decision. */
#ifndef MXR_POLICY_H
#define MXR_POLICY_H

#include "core/core.h"
#include "dns/lookup.h"

typedef struct mxr__policy_src {
    char *name;   /* file path, or a label for source text */
    char *source; /* NULL: read the file at name */
    char *config; /* NULL, a ".lua" file name, or a table constructor */
} mxr__policy_src;

typedef struct mxr__policy_limits {
    uint64_t max_instructions;
    uint32_t max_ms;
    size_t max_memory;
    bool defer_on_error;
} mxr__policy_limits;

/* The hooks a policy may return, indexed (never looked up by name on the
 * hot path). */
typedef enum mxr__hook {
    MXR__HOOK_ROUTE = 0,
    MXR__HOOK_OUTCOME,
    MXR__HOOK_RETRY,
    MXR__HOOK_N,
    MXR__HOOK_LOAD = MXR__HOOK_N /* running the file itself: not a hook */
} mxr__hook;

/* What policies reach of the engine, owned by the engine and set before
 * the first load. */
typedef struct mxr__policy_env {
    mxr__core *core;       /* allocator, clock, log */
    mxr__lookups *dns;     /* the mx module's lookups */
    mxr_family family;     /* which address lookups mx.resolve makes */
    uint16_t port;         /* plan:add's default port */
    int64_t seed;          /* math.random's seed; < 0: random */
    uint64_t calls;        /* hook calls (mxr_stats.policy_calls) */
    uint64_t errors;       /* hook calls stopped (mxr_stats.policy_errors) */
    uint64_t budget_kills; /* of those, by the instruction or time budget */
} mxr__policy_env;

/* A loaded set of policies, refcounted: a reload swaps the engine's set
 * while calls of the old one finish. */
typedef struct mxr__policies mxr__policies;

mxr_status mxr__policies_load(mxr__policy_env *env, const mxr__policy_src *src,
                              size_t n, const mxr__policy_limits *lim,
                              mxr__policies **out, char *err, size_t errlen);
void mxr__policies_ref(mxr__policies *set);
void mxr__policies_unref(mxr__policies *set);
/* Does any policy of the set have this hook for this domain? */
bool mxr__policies_has(const mxr__policies *set, mxr__hook hook,
                       const char *domain);

/* Who gets the plan once the route hooks are done: the router's function,
 * with the embedder's callback and argument carried along typed. */
typedef struct mxr__plan_sink mxr__plan_sink;
struct mxr__plan_sink {
    void (*done)(const mxr__plan_sink *sink, mxr_plan *plan);
    void *owner; /* the router */
    mxr_route_cb cb;
    void *arg;
};

/* Route hooks of every matching policy, in order, on a plan the caller
 * owns (ownership passes in). May finish before returning; otherwise
 * sink->done fires later from mxr_engine_process. It receives the plan to
 * use (the same, or an edited one) and fires exactly once, also when a
 * hook fails (then with the plan as it was, or a tempfail plan when the
 * engine defers on policy errors). MXR_ENOMEM when out of memory: done
 * does not fire and the plan is still the caller's. The sink is copied. */
mxr_status mxr__policies_route(mxr__policies *set, mxr_plan *plan,
                               const mxr__plan_sink *sink);

/* What outcome and retry hooks see. */
typedef struct mxr__outcome_event {
    const char *domain;
    const char *host;
    const mxr_addr *addr;
    const char *recipient; /* for a RCPT reply, else NULL */
    const mxr_outcome *outcome;
} mxr__outcome_event;

/* The action after every matching outcome hook (each sees the previous
 * one's choice); def when no hook changes it or a hook fails. */
mxr_action mxr__policies_outcome(mxr__policies *set,
                                 const mxr__outcome_event *ev, mxr_action def);

typedef struct mxr__retry_event {
    const char *domain;
    const char *recipient;
    unsigned attempts;    /* failed attempts so far, this one included */
    uint64_t age_ms;      /* since the first attempt */
    int code;             /* last reply code, 0 if none */
    const char *enhanced; /* its enhanced status code, or NULL */
    const char *text;     /* last error */
    const char *host;     /* the host that gave it, or NULL */
} mxr__retry_event;

/* Retry hooks: *delay_ms comes in with the schedule's delay and leaves
 * with the one to use. Returns true when a hook gives up (bounce now). */
bool mxr__policies_retry(mxr__policies *set, const mxr__retry_event *ev,
                         uint64_t *delay_ms);

#endif
