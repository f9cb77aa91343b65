/* policy.h -- Lua routing policies: loading, the sandbox, budgets, and the
 * hooks the engine calls (route, outcome, retry). DESIGN.md section 5.
 *
 * Each policy has its own lua_State (so a memory cap is per policy and no
 * policy can see another), a sandboxed environment built by allow-list,
 * and runs every hook call in a coroutine: route hooks may yield while a
 * DNS lookup is in flight. A failing, slow or hungry call is stopped and
 * reported with script:line; the engine then uses its own decision. */
#ifndef MXR_POLICY_H
#define MXR_POLICY_H

#include "mxroute.h"

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

/* A loaded set of policies, refcounted: a reload swaps the engine's set
 * while calls of the old one finish. */
typedef struct mxr__policies mxr__policies;

mxr_status mxr__policies_load(mxr_engine *e, const mxr__policy_src *src,
                              size_t n, const mxr__policy_limits *lim,
                              mxr__policies **out, char *err, size_t errlen);
void mxr__policies_ref(mxr__policies *set);
void mxr__policies_unref(mxr__policies *set);
/* Does any policy of the set have this hook for this domain? */
bool mxr__policies_has(const mxr__policies *set, const char *hook,
                       const char *domain);

/* Route hooks of every matching policy, in order, on a plan the caller
 * owns (ownership passes in). May finish before returning; otherwise
 * done fires later from mxr_engine_process. done receives the plan to
 * use (the same, or an edited one) and fires exactly once, also when a
 * hook fails (then with the plan as it was, or a tempfail plan when the
 * engine defers on policy errors). Returns -1 only when out of memory
 * (done does not fire; the plan is still the caller's). */
typedef void (*mxr__route_done)(mxr_engine *e, void *arg, void *arg2,
                                mxr_plan *plan);
int mxr__policies_route(mxr_engine *e, mxr__policies *set, mxr_plan *plan,
                        mxr__route_done done, void *arg, void *arg2);

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
mxr_action mxr__policies_outcome(mxr_engine *e, mxr__policies *set,
                                 const mxr__outcome_event *ev,
                                 mxr_action def);

typedef struct mxr__retry_event {
    const char *domain;
    const char *recipient;
    unsigned attempts;   /* failed attempts so far, this one included */
    uint64_t age_ms;     /* since the first attempt */
    int code;             /* last reply code, 0 if none */
    const char *enhanced; /* its enhanced status code, or NULL */
    const char *text;     /* last error */
    const char *host;     /* the host that gave it, or NULL */
} mxr__retry_event;

/* Retry hooks: *delay_ms comes in with the schedule's delay and leaves
 * with the one to use. Returns true when a hook gives up (bounce now). */
bool mxr__policies_retry(mxr_engine *e, mxr__policies *set,
                         const mxr__retry_event *ev, uint64_t *delay_ms);

#endif
