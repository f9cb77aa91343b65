/* internal.h -- shared between policy.c (states, sandbox, budgets),
 * hooks.c (hook drivers, the mx module) and plan_object.c (the plan object
 * scripts edit). */
#ifndef MXR_POLICY_INTERNAL_H
#define MXR_POLICY_INTERNAL_H

#include "base/hash.h"
#include "plan/plan.h"
#include "policy/policy.h"

#include <lauxlib.h>
#include <lua.h>

#define MXR__POOL_THREADS 4 /* idle coroutines kept per policy */

typedef struct mxr__policy {
    mxr__policies *set;
    char *name; /* for messages: the file's base name */
    lua_State *L;
    size_t mem_used, mem_limit;
    int table_ref; /* the table the policy returned */
    int env_ref;   /* its sandbox environment */
    bool has[MXR__HOOK_N];
    int hook_ref[MXR__HOOK_N]; /* registry references to the hook functions */
    /* the plan objects of the route hooks running now, by handle: a
     * handle is never reused, so a kept object stays ended */
    mxr__htable live_plans;
    uint64_t plan_serial; /* the last handle given out */
    char **domains;       /* NULL: every domain */
    size_t ndomains;
    int idle_ref[MXR__POOL_THREADS];
    lua_State *idle[MXR__POOL_THREADS];
    size_t nidle;
} mxr__policy;

struct mxr__policies {
    unsigned refs;
    mxr__policy_env *env;
    mxr__policy *p;
    size_t n;
    mxr__policy_limits lim;
    void *spare_run; /* hooks.c: a finished route run, kept for the next */
};

/* One hook call, running in its own coroutine. */
typedef struct mxr__call {
    mxr__policy *pol;
    mxr__hook hook;
    lua_State *co;
    int co_ref;
    uint64_t instructions;
    uint64_t cpu_ns;    /* spent in the script so far */
    uint64_t run_since; /* thread CPU clock when this resumption began */
    bool killed;        /* over budget: every instruction now errors */
    char why[96];
    bool sync;    /* may not wait for DNS */
    char *errbuf; /* loading: errors go here, not to the log */
    size_t errlen;
    /* DNS a route hook is waiting for (hooks.c) */
    struct mxr__dns_wait *wait;
    void *owner; /* the route run that resumes the call */
} mxr__call;

/* One lookup a hook waits for: the request, and the call it resumes. */
typedef struct mxr__wait_req {
    mxr__lookup_req req;
    struct mxr__call *call;
} mxr__wait_req;

/* Results of the lookups a hook waited for. */
typedef struct mxr__dns_wait {
    mxr__wait_req reqs[3]; /* AAAA and A, or MX */
    int pending;
    bool temporary;   /* some lookup failed temporarily */
    mxr__rcode rcode; /* the first answer's class */
    mxr_addr addrs[32];
    size_t naddrs;
    uint64_t served_until_ms; /* earliest TTL end of the address answers */
    char *mx_text;            /* "pref host\n..." of an MX answer, malloc'd */
    bool null_mx;
} mxr__dns_wait;

#define MXR__WAIT_BAD_NAME (-1) /* continuation status: invalid name */

/* Start lookups of name's addresses for the calling hook and yield; k
 * runs when every answer is in, with mxr__call_of(L)->wait filled. */
int mxr__policy_wait_addr(lua_State *L, const char *name, lua_KContext ctx,
                          lua_KFunction k);
/* Free the wait of the call (from a continuation, after reading it). */
void mxr__policy_wait_done(lua_State *L);

/* policy.c */
/* 0, or -1 when no coroutine could be had (out of memory). */
mxr_status mxr__call_begin(mxr__call *c, mxr__policy *p, mxr__hook hook,
                           bool sync);
/* Run fn(ud) under lua_pcall on the policy's state and move its one result
 * onto the call's coroutine: C-side allocations that fail become errors,
 * never a panic. -1 when fn failed (reported). */
mxr_status mxr__call_push_protected(mxr__call *c, lua_CFunction fn, void *ud);
/* Pushes the hook function on c->co; false if the policy has none. */
bool mxr__call_push_hook(mxr__call *c);
/* Resume (or start) the call with nargs on its stack: LUA_OK, LUA_YIELD,
 * or an error status (message reported already). */
int mxr__call_resume(mxr__call *c, int nargs, int *nres);
/* Report a failure of this call ("policy X: route hook: msg"). */
void mxr__call_fail(mxr__call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mxr__call_end(mxr__call *c);
mxr__call *mxr__call_of(lua_State *L);
bool mxr__policy_matches(const mxr__policy *p, mxr__hook hook,
                         const char *domain);
/* "route", "outcome", "retry", "load": for messages. */
const char *mxr__hook_name(mxr__hook hook);
void mxr__policy_log(const mxr__policy_env *env, int level, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

/* hooks.c: the mx module in a sandbox environment (table on top) */
void mxr__mx_module_open(lua_State *L);

/* plan_object.c: the plan object a route hook edits. The edit state is
 * C-owned; the script gets a handle (a light userdata: nothing to allocate
 * per call) that finds it while the hook runs. When the hook ends the
 * handle finds nothing, so a script that keeps the object gets an error,
 * never stale memory. */
typedef struct mxr__plan_edit {
    const mxr__policy_env *env;
    const mxr_plan *plan; /* as it came in (borrowed) */
    mxr__plan_builder pb; /* the edited copy, once edited */
    bool edited;
    unsigned edits;   /* edit calls so far: a plan:remove function makes none */
    mxr__hnode node;  /* in pol->live_plans, hash = the handle */
    mxr__policy *pol; /* NULL: not live */
} mxr__plan_edit;

void mxr__plan_object_register(lua_State *L);
void mxr__plan_edit_init(mxr__plan_edit *ed, const mxr__policy_env *env,
                         const mxr_plan *plan);
/* With the hook function on top of co: push the plan object for ed, live
 * in p until mxr__plan_edit_done (resume co with 1 argument). Allocates at
 * most a growth of p's table, whose failure only lengthens its chains. */
void mxr__plan_edit_push(mxr__policy *p, lua_State *co, mxr__plan_edit *ed);
/* The edited plan (a new block from the engine's allocator), or NULL when
 * nothing changed or memory ran out (*oom). */
mxr_plan *mxr__plan_edit_result(mxr__plan_edit *ed, bool *oom);
/* Cut the object off and free the edits. */
void mxr__plan_edit_done(mxr__plan_edit *ed);

#endif
