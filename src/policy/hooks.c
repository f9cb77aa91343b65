/* hooks.c -- running the hooks: the route chain (asynchronous: a
 * hook may wait for DNS), the outcome and retry hooks (synchronous), and
 * the `mx` module scripts use to resolve names.
 *
 * A hook that waits for DNS yields its coroutine; the lookups it started
 * resume it once, when the last answer is in. A coroutine only ever waits
 * for its own lookups, and every lookup completes (also when the engine is
 * destroyed), so a stale resumption cannot happen. */
#include "policy/internal.h"
#include "mxroute/lua.h"
#include "base/name.h"
#include "plan/plan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct route_run {
    mxr__policies *set;
    size_t next;    /* the next policy to run */
    mxr_plan *plan; /* current plan, owned */
    mxr__plan_sink sink;
    mxr__call call;
    mxr__plan_edit edit; /* the current hook's plan edits */
} route_run;

static void route_step(route_run *run);
static void route_after_resume(route_run *run, int st, int nres);

/* ---------------------------------------------------------- DNS waits */

static void wait_answer(mxr__lookup_req *req, const mxr__answer *ans,
                        uint32_t ttl)
{
    mxr__call *c = mxr__container_of(req, mxr__wait_req, req)->call;
    mxr__dns_wait *w = c->wait;
    if (w->naddrs == 0 && !w->mx_text)
        w->rcode = ans->rcode;
    w->temporary |= mxr__rcode_is_temporary(ans->rcode);
    if (ans->rcode == MXR__DNS_OK && ans->qtype != MXR__TYPE_MX) {
        for (size_t i = 0; i < ans->count && w->naddrs < 32; i++)
            w->addrs[w->naddrs++] = mxr__answer_addr(ans, i);
        if (ans->served_until_ms < w->served_until_ms)
            w->served_until_ms = ans->served_until_ms;
    }
    if (ans->rcode == MXR__DNS_OK && ans->qtype == MXR__TYPE_MX) {
        w->rcode = MXR__DNS_OK;
        size_t len = 1;
        char buf[MXR__ANSWER_TEXT_MAX];
        for (size_t i = 0; i < ans->count; i++)
            len += strlen(mxr__answer_mx(ans, i, buf).target) + 8;
        if ((w->mx_text = malloc(len)) != NULL) {
            w->mx_text[0] = '\0';
            for (size_t i = 0; i < ans->count; i++) {
                mxr__mx mx = mxr__answer_mx(ans, i, buf);
                sprintf(w->mx_text + strlen(w->mx_text), "%u %s\n", mx.pref,
                        mx.target);
            }
        }
    }
    if (--w->pending > 0)
        return;
    route_run *run = c->owner;
    int nres = 0;
    int st = mxr__call_resume(c, 0, &nres);
    route_after_resume(run, st, nres);
}

static int start_wait(lua_State *L, const char *name, bool mx)
{
    mxr__call *c = mxr__call_of(L);
    if (!c || c->sync || !c->owner)
        return luaL_error(L, "DNS lookups are only possible in route hooks");
    /* Checked before any lookup starts: an answer must never resume a
     * call that could not wait (a sort comparator, a remove predicate). */
    if (!lua_isyieldable(L))
        return luaL_error(L, "DNS lookups cannot wait inside a callback "
                             "called from C (a sort comparator, a remove "
                             "predicate, a metamethod)");
    char norm[MXR__NAME_MAX + 1];
    if (mxr__hostname_normalize(name, strlen(name), norm, NULL, 0) != MXR_OK)
        return -1;
    const mxr__policy_env *env = c->pol->set->env;
    c->wait = calloc(1, sizeof *c->wait);
    if (!c->wait)
        return luaL_error(L, "not enough memory");
    c->wait->served_until_ms = UINT64_MAX; /* lowered by each answer */
    static const uint16_t addr_types[] = {MXR__TYPE_AAAA, MXR__TYPE_A};
    for (int i = mx ? 2 : 0; i < 3; i++) {
        uint16_t t = i == 2 ? MXR__TYPE_MX : addr_types[i];
        if (i == 2 && !mx)
            break;
        if (!mx && ((t == MXR__TYPE_A && env->family == MXR_FAMILY_IPV6) ||
                    (t == MXR__TYPE_AAAA && env->family == MXR_FAMILY_IPV4)))
            continue;
        mxr__wait_req *wr = &c->wait->reqs[i];
        wr->call = c;
        c->wait->pending++;
        if (mxr__lookup(env->dns, &wr->req, norm, t, wait_answer) != MXR_OK) {
            c->wait->pending--;
            c->wait->temporary = true;
        }
    }
    return c->wait->pending;
}

void mxr__policy_wait_done(lua_State *L)
{
    mxr__call *c = mxr__call_of(L);
    if (c && c->wait) {
        free(c->wait->mx_text);
        free(c->wait);
        c->wait = NULL;
    }
}

/* Continuations get LUA_YIELD after a wait, LUA_OK when called at once
 * (nothing could start), and BAD_NAME for an invalid name. */
int mxr__policy_wait_addr(lua_State *L, const char *name, lua_KContext ctx,
                          lua_KFunction k)
{
    int n = start_wait(L, name, false);
    if (n <= 0) /* invalid name, or nothing could start: answer at once */
        return k(L, n < 0 ? MXR__WAIT_BAD_NAME : LUA_OK, ctx);
    return lua_yieldk(L, 0, ctx, k);
}

static const char *wait_error(const mxr__dns_wait *w)
{
    if (!w)
        return "invalid host name";
    if (w->temporary && w->naddrs == 0 && !w->mx_text)
        return mxr_reason_name(mxr__rcode_reason(
            w->rcode == MXR__DNS_OK ? MXR__DNS_NETWORK : w->rcode));
    return w->rcode == MXR__DNS_NXDOMAIN ? "nxdomain" : "nodata";
}

/* ------------------------------------------------------------ mx module */

static int resolve_addr_k(lua_State *L, int status, lua_KContext ctx)
{
    /* copy and free the wait first: building the table may raise */
    mxr__dns_wait copy, *w = mxr__call_of(L)->wait;
    bool have = status != MXR__WAIT_BAD_NAME && w;
    if (have)
        memcpy(&copy, w, sizeof copy);
    const char *err = wait_error(have ? w : NULL);
    mxr__policy_wait_done(L);
    char buf[MXR_ADDR_STRLEN];
    if (!have || copy.naddrs == 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, (int)copy.naddrs, 0);
    for (size_t i = 0; i < copy.naddrs; i++) {
        lua_pushstring(L, mxr_addr_format(&copy.addrs[i], buf, sizeof buf));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* mx.resolve_addr(name) -> {"192.0.2.1", ...} | nil, reason */
static int mx_resolve_addr(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    return mxr__policy_wait_addr(L, name, 0, resolve_addr_k);
}

static int resolve_mx_k(lua_State *L, int status, lua_KContext ctx)
{
    mxr__dns_wait *w = mxr__call_of(L)->wait;
    if (status == MXR__WAIT_BAD_NAME || !w || !w->mx_text) {
        lua_pushnil(L);
        lua_pushstring(L, wait_error(status == MXR__WAIT_BAD_NAME ? NULL : w));
        mxr__policy_wait_done(L);
        return 2;
    }
    lua_newtable(L);
    int i = 0;
    for (char *line = w->mx_text, *nl; (nl = strchr(line, '\n'));
         line = nl + 1) {
        *nl = '\0';
        char *sp = strchr(line, ' ');
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, strtol(line, NULL, 10));
        lua_setfield(L, -2, "preference");
        lua_pushstring(L, sp ? sp + 1 : "");
        lua_setfield(L, -2, "host");
        lua_rawseti(L, -2, ++i);
    }
    mxr__policy_wait_done(L);
    return 1;
}

/* mx.resolve_mx(name) -> {{preference=10, host="..."}, ...} | nil, reason
 * (a null MX gives one entry with host ""). */
static int mx_resolve_mx(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int n = start_wait(L, name, true);
    if (n <= 0)
        return resolve_mx_k(L, n < 0 ? MXR__WAIT_BAD_NAME : LUA_OK, 0);
    return lua_yieldk(L, 0, 0, resolve_mx_k);
}

/* mx.log(message [, level]) with level "info" (default), "warning" or
 * "error". */
static int mx_log(lua_State *L)
{
    static const char *const levels[] = {"info", "warning", "error", NULL};
    const char *msg = luaL_checkstring(L, 1);
    int level = luaL_checkoption(L, 2, "info", levels);
    mxr__call *c = mxr__call_of(L);
    if (c)
        mxr__policy_log(c->pol->set->env, level, "policy %s: %s", c->pol->name,
                        msg);
    return 0;
}

/* mx.now() -> the engine's clock in seconds (float). */
static int mx_now(lua_State *L)
{
    mxr__call *c = mxr__call_of(L);
    lua_pushnumber(L, c ? (double)mxr__core_now(c->pol->set->env->core) / 1000.0
                        : 0);
    return 1;
}

void mxr__mx_module_open(lua_State *L)
{
    static const luaL_Reg fns[] = {{"resolve_mx", mx_resolve_mx},
                                   {"resolve_addr", mx_resolve_addr},
                                   {"log", mx_log},
                                   {"now", mx_now},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_pushstring(L, MXR_VERSION_STRING);
    lua_setfield(L, -2, "version");
}

/* --------------------------------------------------------- route chain */

/* A plan that says "try later": what a failing hook leaves when the
 * engine defers on policy errors. */
static mxr_plan *tempfail_plan(mxr__alloc *a, const mxr_plan *from)
{
    mxr__plan_builder pb;
    mxr__pb_init(&pb, a);
    mxr__pb_fail(&pb, MXR_RESULT_TEMPFAIL, MXR_REASON_POLICY);
    mxr__pb_lower_ttl(&pb, 0);
    pb.mx_ttl = from->mx_ttl; /* the MX answer is what it was */
    mxr_plan *p = mxr__plan_pack(&pb, from->input, from->domain, a->fn, a->ud);
    mxr__pb_free(&pb);
    return p;
}

/* One route run is kept for the next route: with hooks that do not wait,
 * a run per decision costs no allocation. */
static route_run *run_new(mxr__policies *set)
{
    route_run *run = set->spare_run;
    set->spare_run = NULL;
    return run ? run : mxr__malloc(&set->env->core->a, sizeof *run);
}

static void run_free(route_run *run)
{
    mxr__policies *set = run->set;
    if (!set->spare_run)
        set->spare_run = run;
    else
        mxr__free(&set->env->core->a, run);
    mxr__policies_unref(set); /* may free the set and its spare */
}

static void route_finish(route_run *run)
{
    mxr__plan_sink sink = run->sink;
    mxr_plan *plan = run->plan;
    run_free(run);
    sink.done(&sink, plan);
}

/* The hook of the current policy ended (well or not): keep or drop its
 * edits. Returns false when the chain stops here. */
static bool route_call_ended(route_run *run, int st, int nres)
{
    mxr__call *c = &run->call;
    if (st == LUA_OK && nres > 0 && !lua_isnil(c->co, -1)) {
        mxr__call_fail(c,
                       "returned a %s; a route hook edits the plan and "
                       "returns nothing",
                       luaL_typename(c->co, -1));
        st = LUA_ERRRUN;
    }
    bool oom = false;
    mxr_plan *edited =
        st == LUA_OK ? mxr__plan_edit_result(&run->edit, &oom) : NULL;
    if (oom) {
        mxr__call_fail(c, "out of memory building the edited plan");
        st = LUA_ERRMEM;
    }
    mxr__plan_edit_done(&run->edit);
    mxr__call_end(c);
    if (edited) {
        mxr_plan_free(run->plan);
        run->plan = edited;
    }
    if (st == LUA_OK || !run->set->lim.defer_on_error)
        return true;
    mxr_plan *tf = tempfail_plan(&run->set->env->core->a, run->plan);
    if (tf) {
        mxr_plan_free(run->plan);
        run->plan = tf;
    }
    return false;
}

static void route_after_resume(route_run *run, int st, int nres)
{
    if (st == LUA_YIELD)
        return; /* waiting for DNS again */
    if (route_call_ended(run, st, nres))
        route_step(run);
    else
        route_finish(run);
}

/* Run the next matching policy's route hook, or finish the chain. */
static void route_step(route_run *run)
{
    while (run->next < run->set->n) {
        mxr__policy *p = &run->set->p[run->next++];
        if (!mxr__policy_matches(p, MXR__HOOK_ROUTE, run->plan->domain))
            continue;
        if (mxr__call_begin(&run->call, p, MXR__HOOK_ROUTE, false) != 0)
            continue; /* out of memory: this policy is skipped */
        mxr__plan_edit_init(&run->edit, run->set->env, run->plan);
        run->call.owner = run;
        int nres = 0;
        mxr__call_push_hook(&run->call);
        mxr__plan_edit_push(p, run->call.co, &run->edit);
        int st = mxr__call_resume(&run->call, 1, &nres);
        if (st == LUA_YIELD)
            return;
        if (!route_call_ended(run, st, nres))
            break;
    }
    route_finish(run);
}

mxr_status mxr__policies_route(mxr__policies *set, mxr_plan *plan,
                               const mxr__plan_sink *sink)
{
    route_run *run = run_new(set);
    if (!run)
        return MXR_ENOMEM;
    *run = (route_run){.set = set, .plan = plan, .sink = *sink};
    mxr__policies_ref(set);
    route_step(run);
    return MXR_OK;
}

/* ------------------------------------------------- outcome and retry */

typedef struct outcome_push {
    const mxr__outcome_event *ev;
    mxr_action current;
} outcome_push;

/* Under lua_pcall (mxr__call_push_protected): the event table. */
static int push_outcome_event(lua_State *L)
{
    const outcome_push *op = lua_touserdata(L, 1);
    const mxr__outcome_event *ev = op->ev;
    mxr_action current = op->current;
    char buf[MXR_ADDR_STRLEN];
    lua_createtable(L, 0, 10);
    mxr_lua_set_string(L, "domain", ev->domain);
    mxr_lua_set_string(L, "host", ev->host);
    mxr_lua_set_string(L, "address",
                       ev->addr ? mxr_addr_format(ev->addr, buf, sizeof buf)
                                : NULL);
    mxr_lua_set_string(L, "recipient", ev->recipient);
    mxr_lua_set_string(L, "stage", mxr_stage_name(ev->outcome->stage));
    mxr_lua_set_string(L, "class", mxr_class_name(ev->outcome->cls));
    mxr_lua_set_integer(L, "code", ev->outcome->code);
    mxr_lua_set_string(L, "enhanced", ev->outcome->enhanced);
    mxr_lua_set_string(L, "text", ev->outcome->text);
    mxr_lua_set_string(L, "action", mxr_action_name(current));
    return 1;
}

/* Run one synchronous hook with its event on top of c->co; results left
 * on c->co. Returns the number of results, or -1 when it failed. */
static int run_sync(mxr__call *c)
{
    int nres = 0;
    int st = mxr__call_resume(c, 1, &nres);
    if (st == LUA_YIELD) {
        mxr__call_fail(c, "tried to wait; only route hooks may");
        return -1;
    }
    return st == LUA_OK ? nres : -1;
}

static mxr_action outcome_one(mxr__policy *p, const mxr__outcome_event *ev,
                              mxr_action current)
{
    mxr__call c;
    outcome_push op = {ev, current};
    if (mxr__call_begin(&c, p, MXR__HOOK_OUTCOME, true) != 0)
        return current;
    mxr__call_push_hook(&c);
    int nres = mxr__call_push_protected(&c, push_outcome_event, &op) == 0
                   ? run_sync(&c)
                   : -1;
    mxr_action act = current;
    if (nres < 0 && p->set->lim.defer_on_error)
        act = MXR_ACTION_DEFER; /* the hook failed: wait and try later */
    if (nres > 0 && !lua_isnil(c.co, -nres)) {
        const char *w = lua_tostring(c.co, -nres);
        int a = w && lua_type(c.co, -nres) == LUA_TSTRING ? mxr_action_parse(w)
                                                          : -1;
        if (a < 0 || a == MXR_ACTION_DELIVERED) {
            mxr__call_fail(&c,
                           "returned %s%s%s; expected nil or one of "
                           "continue, next-address, next-host, defer, "
                           "bounce",
                           w ? "'" : "a ", w ? w : luaL_typename(c.co, -nres),
                           w ? "'" : "");
            if (p->set->lim.defer_on_error)
                act = MXR_ACTION_DEFER;
        } else
            act = (mxr_action)a;
    }
    mxr__call_end(&c);
    return act;
}

mxr_action mxr__policies_outcome(mxr__policies *set,
                                 const mxr__outcome_event *ev, mxr_action def)
{
    mxr_action act = def;
    for (size_t i = 0; set && i < set->n; i++)
        if (mxr__policy_matches(&set->p[i], MXR__HOOK_OUTCOME, ev->domain))
            act = outcome_one(&set->p[i], ev, act);
    return act;
}

typedef struct retry_push {
    const mxr__retry_event *ev;
    uint64_t delay_ms;
} retry_push;

static int push_retry_event(lua_State *L)
{
    const retry_push *rp = lua_touserdata(L, 1);
    const mxr__retry_event *ev = rp->ev;
    lua_createtable(L, 0, 7);
    mxr_lua_set_string(L, "domain", ev->domain);
    mxr_lua_set_string(L, "recipient", ev->recipient);
    mxr_lua_set_integer(L, "attempts", ev->attempts);
    lua_pushnumber(L, (double)ev->age_ms / 1000.0);
    lua_setfield(L, -2, "age");
    mxr_lua_set_integer(L, "code", ev->code);
    mxr_lua_set_string(L, "enhanced", ev->enhanced);
    mxr_lua_set_string(L, "text", ev->text);
    mxr_lua_set_string(L, "host", ev->host);
    lua_pushnumber(L, (double)rp->delay_ms / 1000.0);
    lua_setfield(L, -2, "delay");
    return 1;
}

/* A retry hook returns nil (keep), a delay in seconds, or false (give
 * up). Returns true when it gave up. */
static bool retry_one(mxr__policy *p, const mxr__retry_event *ev,
                      uint64_t *delay_ms)
{
    mxr__call c;
    retry_push rp = {ev, *delay_ms};
    if (mxr__call_begin(&c, p, MXR__HOOK_RETRY, true) != 0)
        return false;
    mxr__call_push_hook(&c);
    int nres = mxr__call_push_protected(&c, push_retry_event, &rp) == 0
                   ? run_sync(&c)
                   : -1;
    bool give_up = false;
    if (nres > 0) {
        int idx = lua_gettop(c.co) - nres + 1;
        int t = lua_type(c.co, idx);
        double d = lua_tonumber(c.co, idx);
        if (t == LUA_TBOOLEAN && !lua_toboolean(c.co, idx))
            give_up = true;
        else if (t == LUA_TNUMBER && d >= 0 && d <= 30 * 86400.0)
            *delay_ms = (uint64_t)(d * 1000.0);
        else if (t != LUA_TNIL)
            mxr__call_fail(&c,
                           "returned %s; expected nil, false or a delay "
                           "in seconds (0 to 30 days)",
                           luaL_typename(c.co, idx));
    }
    mxr__call_end(&c);
    return give_up;
}

bool mxr__policies_retry(mxr__policies *set, const mxr__retry_event *ev,
                         uint64_t *delay_ms)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (mxr__policy_matches(&set->p[i], MXR__HOOK_RETRY, ev->domain) &&
            retry_one(&set->p[i], ev, delay_ms))
            return true;
    return false;
}
