/* plan_object.c -- the plan object of route hooks.
 *
 * Reading costs nothing extra: fields come from the plan as it is. The
 * first edit copies the plan into a builder; when the hook ends, an edited
 * plan is packed again (candidates added by a policy carry source
 * "policy"). A host added without addresses is resolved first: plan:add
 * then waits for DNS like mx.resolve_addr. */
#include "policy/internal.h"
#include "mxroute/lua.h"
#include "base/addr.h"
#include "base/name.h"
#include "plan/plan.h"

#include <string.h>

#define PLAN_META "mxroute.plan"
#define ADDRS_MAX 32

/* ------------------------------------------------------------ helpers */

/* The live edit the handle at idx stands for, or NULL once its hook has
 * ended. Only plan objects are light userdata in a policy's state; any
 * other value raises the argument error luaL_checkudata would. */
static mxr__plan_edit *edit_of(lua_State *L, int idx)
{
    if (!lua_islightuserdata(L, idx))
        luaL_typeerror(L, idx, PLAN_META);
    uint64_t handle = (uint64_t)(uintptr_t)lua_touserdata(L, idx);
    mxr__call *c = mxr__call_of(L);
    if (!c)
        return NULL;
    mxr__htable_each_in(n, &c->pol->live_plans, handle)
    {
        if (n->hash == handle)
            return mxr__container_of(n, mxr__plan_edit, node);
    }
    return NULL;
}

static mxr__plan_edit *check_edit(lua_State *L)
{
    mxr__plan_edit *ed = edit_of(L, 1);
    if (!ed)
        luaL_error(L, "this plan belongs to a route hook that has ended");
    return ed;
}

static int builder_from_plan(mxr__plan_edit *ed)
{
    const mxr_plan *p = ed->plan;
    mxr__plan_builder *pb = &ed->pb;
    pb->result = p->result;
    pb->reason = p->reason;
    pb->implicit = p->implicit;
    pb->ttl = p->ttl;
    pb->mx_ttl = p->mx_ttl;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        mxr__host *h =
            mxr__pb_add_host(pb, c->host, c->preference, c->source, c->port);
        if (!h)
            return -1;
        h->notes = c->notes;
        h->tls_required = c->tls_required;
        h->ttl = c->ttl;
        if (c->label)
            snprintf(h->label, sizeof h->label, "%s", c->label);
        for (size_t k = 0; k < c->naddrs; k++)
            if (mxr__pb_add_addr(pb, h, &c->addrs[k]) != 0)
                return -1;
    }
    for (size_t i = 0; i < p->nskipped; i++)
        if (mxr__pb_skip(pb, p->skipped[i].host, p->skipped[i].preference,
                         p->skipped[i].reason) != 0)
            return -1;
    return 0;
}

/* The builder to edit, copied from the plan on the first edit. */
static mxr__plan_builder *editable(lua_State *L, mxr__plan_edit *ed)
{
    ed->edits++;
    if (!ed->edited) {
        ed->edited = true;
        if (builder_from_plan(ed) != 0)
            luaL_error(L, "not enough memory");
    }
    return &ed->pb;
}

/* A host of the builder as a candidate of a plan, so that one function
 * shows scripts both (the strings stay the builder's). */
static mxr_candidate candidate_of_host(const mxr__host *h)
{
    return (mxr_candidate){.host = h->name,
                           .preference = h->pref,
                           .port = h->port,
                           .source = h->source,
                           .notes = h->notes,
                           .tls_required = h->tls_required,
                           .naddrs = h->naddrs,
                           .addrs = h->addrs,
                           .label = h->label,
                           .ttl = h->ttl};
}

/* ------------------------------------------------------------ reading */

/* plan:candidates() -> a copy, in order: editing it changes nothing. */
static int plan_candidates(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    if (ed->edited) {
        lua_createtable(L, (int)ed->pb.nhosts, 0);
        for (size_t i = 0; i < ed->pb.nhosts; i++) {
            mxr_candidate c = candidate_of_host(&ed->pb.hosts[i]);
            mxr_lua_push_candidate(L, &c);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    }
    const mxr_plan *p = ed->plan;
    lua_createtable(L, (int)p->ncandidates, 0);
    for (size_t i = 0; i < p->ncandidates; i++) {
        mxr_lua_push_candidate(L, &p->candidates[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* plan:skipped() -> {{host=, preference=, reason=}, ...} */
static int plan_skipped(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    size_t n = ed->edited ? ed->pb.nskips : ed->plan->nskipped;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        if (ed->edited) {
            const mxr__skip *k = &ed->pb.skips[i];
            mxr_skipped s = {
                .host = k->name, .preference = k->pref, .reason = k->reason};
            mxr_lua_push_skipped(L, &s);
        } else {
            mxr_lua_push_skipped(L, &ed->plan->skipped[i]);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* The recipients being routed: the input when it is an address. */
static void push_recipients(lua_State *L, const char *input)
{
    lua_newtable(L);
    if (input && strchr(input, '@')) {
        lua_pushstring(L, input);
        lua_rawseti(L, -2, 1);
    }
}

/* The fields of the plan object, in the order of plan_index's switch. */
enum {
    F_DOMAIN,
    F_INPUT,
    F_STATUS,
    F_REASON,
    F_IMPLICIT,
    F_TTL,
    F_MX_TTL,
    F_RECIPIENTS,
    F_COUNT
};
static const char *const fields[F_COUNT] = {"domain", "input",     "status",
                                            "reason", "implicit",  "ttl",
                                            "mx_ttl", "recipients"};

/* The field index of the key at idx, or -1 (also for a key that is not a
 * string). */
static int field_of(lua_State *L, int idx)
{
    const char *k =
        lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    for (int i = 0; k && i < F_COUNT; i++)
        if (strcmp(k, fields[i]) == 0)
            return i;
    return -1;
}

/* Push the plan's method named by the key at idx, or nil; its type. */
static int push_method(lua_State *L, int idx)
{
    int t = luaL_getmetafield(L, 1, "methods"); /* pushes nothing if nil */
    if (t == LUA_TTABLE) {
        lua_pushvalue(L, idx);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        return lua_type(L, -1);
    }
    if (t != LUA_TNIL)
        lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNIL;
}

static int plan_index(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    luaL_checkstring(L, 2);
    mxr_result res = ed->edited ? ed->pb.result : ed->plan->result;
    mxr_reason why = ed->edited ? ed->pb.reason : ed->plan->reason;
    switch (field_of(L, 2)) {
    case F_DOMAIN:
        lua_pushstring(L, ed->plan->domain);
        break;
    case F_INPUT:
        lua_pushstring(L, ed->plan->input);
        break;
    case F_STATUS:
        lua_pushstring(L, mxr_result_name(res));
        break;
    case F_REASON:
        res == MXR_RESULT_OK ? lua_pushnil(L)
                             : lua_pushstring(L, mxr_reason_name(why));
        break;
    case F_IMPLICIT:
        lua_pushboolean(L, ed->plan->implicit);
        break;
    case F_TTL:
        lua_pushinteger(L, ed->plan->ttl);
        break;
    case F_MX_TTL:
        lua_pushinteger(L, ed->plan->mx_ttl);
        break;
    case F_RECIPIENTS:
        push_recipients(L, ed->plan->input);
        break;
    default:
        push_method(L, 2);
    }
    return 1;
}

/* plan.k = v: the plan changes through its methods only. The error is the
 * assigning line's (luaL_error names the caller: script:line). */
static int plan_newindex(lua_State *L)
{
    (void)edit_of(L, 1);
    int f = field_of(L, 2);
    if (f >= 0)
        return luaL_error(L, "plan.%s is read-only", fields[f]);
    if (lua_type(L, 2) == LUA_TSTRING && push_method(L, 2) != LUA_TNIL)
        return luaL_error(L, "plan.%s is read-only (a method)",
                          lua_tostring(L, 2));
    return luaL_error(L,
                      "plan has no field '%s' to set (its fields are "
                      "read-only)",
                      luaL_tolstring(L, 2, NULL));
}

/* ----------------------------------------------------------- editing */

typedef struct host_spec {
    char host[MXR__NAME_MAX + 1];
    lua_Integer pref, port;
    bool tls, has_pref;
    char label[64];
    const char *position; /* "first", "last" or NULL */
} host_spec;

static lua_Integer opt_int_field(lua_State *L, int t, const char *k,
                                 lua_Integer def, lua_Integer lo,
                                 lua_Integer hi, bool *present)
{
    int type = lua_getfield(L, t, k);
    lua_Integer v = def;
    if (type != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < lo || v > hi)
            luaL_error(L, "bad field '%s' (an integer %d..%d expected)", k,
                       (int)lo, (int)hi);
    }
    if (present)
        *present = type != LUA_TNIL;
    lua_pop(L, 1);
    return v;
}

/* Read {host=, preference=, port=, tls=, label=, position=} at t. */
static void read_spec(lua_State *L, int t, mxr__plan_edit *ed, host_spec *s)
{
    luaL_checktype(L, t, LUA_TTABLE);
    memset(s, 0, sizeof *s);
    if (lua_getfield(L, t, "host") != LUA_TSTRING)
        luaL_error(L, "bad field 'host' (a host name expected)");
    size_t n;
    char q[MXR__QUOTE_BUF];
    const char *h = lua_tolstring(L, -1, &n);
    if (!mxr__name_is_ip_literal(h) &&
        mxr__hostname_normalize(h, n, s->host, NULL, 0) != MXR_OK)
        luaL_error(L, "bad field 'host' ('%s' is not a host name)",
                   mxr__quote(h, n, q));
    if (mxr__name_is_ip_literal(h))
        snprintf(s->host, sizeof s->host, "%s", h);
    lua_pop(L, 1);
    s->pref = opt_int_field(L, t, "preference", 0, 0, 65535, &s->has_pref);
    s->port = opt_int_field(L, t, "port", ed->env->port, 1, 65535, NULL);
    lua_getfield(L, t, "tls");
    s->tls = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, t, "label") != LUA_TNIL) {
        snprintf(s->label, sizeof s->label, "%s", luaL_tolstring(L, -1, NULL));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "position") != LUA_TNIL) {
        const char *pos = lua_tostring(L, -1);
        if (!pos || (strcmp(pos, "first") != 0 && strcmp(pos, "last") != 0))
            luaL_error(L, "bad field 'position' (\"first\" or \"last\" "
                          "expected)");
        s->position = pos[0] == 'f' ? "first" : "last";
    }
    lua_pop(L, 1);
}

/* Where a new host goes: first, last, or after its preference peers. */
static size_t insert_at(const mxr__plan_builder *pb, const host_spec *s)
{
    if (s->position)
        return s->position[0] == 'f' ? 0 : pb->nhosts;
    size_t i = 0;
    while (i < pb->nhosts && pb->hosts[i].pref <= s->pref)
        i++;
    return i;
}

/* ttl: of the addresses when DNS gave them, else 0. */
static void add_host(lua_State *L, mxr__plan_edit *ed, const host_spec *s,
                     const mxr_addr *addrs, size_t n, uint32_t ttl)
{
    mxr__plan_builder *pb = editable(L, ed);
    size_t at = insert_at(pb, s);
    mxr__host *h = mxr__pb_add_host(pb, s->host, (uint16_t)s->pref,
                                    MXR_SOURCE_POLICY, (uint16_t)s->port);
    for (size_t i = 0; h && i < n; i++)
        if (mxr__pb_add_addr(pb, h, &addrs[i]) != 0)
            h = NULL;
    if (!h)
        luaL_error(L, "not enough memory");
    h->tls_required = s->tls;
    h->ttl = ttl;
    memcpy(h->label, s->label, sizeof h->label);
    mxr__host moved = *h;
    memmove(&pb->hosts[at + 1], &pb->hosts[at],
            (pb->nhosts - 1 - at) * sizeof *pb->hosts);
    pb->hosts[at] = moved;
    pb->result = MXR_RESULT_OK; /* a host to try: no longer failed */
    pb->reason = MXR_REASON_NONE;
}

static size_t read_addresses(lua_State *L, int t, mxr_addr *out)
{
    size_t n = 0;
    if (lua_getfield(L, t, "addresses") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_argcheck(L, lua_istable(L, -1), 2, "'addresses' must be a list");
    size_t len = lua_rawlen(L, -1);
    luaL_argcheck(L, len <= ADDRS_MAX, 2, "more than 32 addresses");
    for (size_t i = 1; i <= len; i++, n++) {
        char q[MXR__QUOTE_BUF];
        size_t alen = 0;
        lua_rawgeti(L, -1, (lua_Integer)i);
        const char *a = lua_tolstring(L, -1, &alen);
        if (!a || !mxr__addr_parse(a, &out[n]))
            luaL_error(L, "bad address '%s' in 'addresses'",
                       a ? mxr__quote(a, alen, q) : "?");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return n;
}

static int add_k(lua_State *L, int status, lua_KContext ctx)
{
    /* take the answers and free the wait before anything can raise */
    mxr__dns_wait *w = mxr__call_of(L)->wait;
    mxr_addr addrs[ADDRS_MAX];
    size_t n = 0;
    bool temp = w && w->temporary;
    uint64_t until = w ? w->served_until_ms : 0;
    if (status != MXR__WAIT_BAD_NAME && w) {
        n = w->naddrs < ADDRS_MAX ? w->naddrs : ADDRS_MAX;
        memcpy(addrs, w->addrs, n * sizeof *addrs);
    }
    mxr__policy_wait_done(L);
    mxr__plan_edit *ed = check_edit(L);
    host_spec s;
    read_spec(L, 2, ed, &s);
    if (n == 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", s.host,
                        temp ? "lookup failed" : "no address");
        return 2;
    }
    add_host(L, ed, &s, addrs, n,
             mxr__served_ttl_left(until, mxr__core_now(ed->env->core)));
    lua_pushboolean(L, 1);
    return 1;
}

/* plan:add{host=, addresses=, preference=, port=, tls=, label=, position=}
 * -> true | nil, why. Without addresses the host is resolved first. */
static int plan_add(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    host_spec s;
    read_spec(L, 2, ed, &s);
    mxr_addr addrs[ADDRS_MAX];
    size_t n = read_addresses(L, 2, addrs);
    if (n == 0 && mxr__name_is_ip_literal(s.host) &&
        mxr__addr_parse(s.host, &addrs[0]))
        n = 1;
    if (n == 0)
        return mxr__policy_wait_addr(L, s.host, 0, add_k);
    add_host(L, ed, &s, addrs, n, 0);
    lua_pushboolean(L, 1);
    return 1;
}

static bool host_matches(lua_State *L, const mxr__host *h, int how)
{
    if (lua_type(L, how) == LUA_TSTRING)
        return mxr__hostname_eq(h->name, lua_tostring(L, how));
    lua_pushvalue(L, how); /* a predicate on the candidate */
    mxr_candidate c = candidate_of_host(h);
    mxr_lua_push_candidate(L, &c);
    lua_call(L, 1, 1);
    bool yes = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return yes;
}

/* plan:remove(host | function(candidate) -> bool) -> count removed. The
 * removed hosts are listed as skipped with reason "policy". */
static int plan_remove(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    luaL_argcheck(L, lua_type(L, 2) == LUA_TSTRING || lua_isfunction(L, 2), 2,
                  "host name or function expected");
    mxr__plan_builder *pb = editable(L, ed);
    lua_Integer removed = 0;
    for (size_t i = 0; i < pb->nhosts;) {
        unsigned edits = ed->edits;
        bool match = host_matches(L, &pb->hosts[i], 2);
        /* an edit would move the hosts under our index (and an add in
         * every call would never let the loop end) */
        if (ed->edits != edits)
            return luaL_error(L, "plan:remove: its function may not edit "
                                 "the plan");
        if (!match) {
            i++;
            continue;
        }
        if (mxr__pb_skip(pb, pb->hosts[i].name, pb->hosts[i].pref,
                         MXR_REASON_POLICY) != 0)
            return luaL_error(L, "not enough memory");
        mxr__pb_remove_host(pb, i);
        removed++;
    }
    lua_pushinteger(L, removed);
    return 1;
}

/* plan:reorder{"host1", "host2", ...}: these first, in this order; the
 * others keep their order after them. */
static int plan_reorder(lua_State *L)
{
    mxr__plan_edit *ed = check_edit(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    mxr__plan_builder *pb = editable(L, ed);
    size_t front = 0, len = lua_rawlen(L, 2);
    for (size_t k = 1; k <= len && front < pb->nhosts; k++) {
        lua_rawgeti(L, 2, (lua_Integer)k);
        const char *want = luaL_checkstring(L, -1);
        for (size_t i = front; i < pb->nhosts; i++) {
            if (!mxr__hostname_eq(pb->hosts[i].name, want))
                continue;
            mxr__host h = pb->hosts[i];
            memmove(&pb->hosts[front + 1], &pb->hosts[front],
                    (i - front) * sizeof h);
            pb->hosts[front++] = h;
            break;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* plan:fail("tempfail" | "permfail"): no candidates; the message is
 * deferred or bounced with reason "policy". */
static int plan_fail(lua_State *L)
{
    static const char *const kinds[] = {"tempfail", "permfail", NULL};
    mxr__plan_edit *ed = check_edit(L);
    int kind = luaL_checkoption(L, 2, NULL, kinds);
    mxr__plan_builder *pb = editable(L, ed);
    while (pb->nhosts > 0) {
        if (mxr__pb_skip(pb, pb->hosts[0].name, pb->hosts[0].pref,
                         MXR_REASON_POLICY) != 0)
            return luaL_error(L, "not enough memory");
        mxr__pb_remove_host(pb, 0);
    }
    mxr__pb_fail(pb, kind ? MXR_RESULT_PERMFAIL : MXR_RESULT_TEMPFAIL,
                 MXR_REASON_POLICY);
    return 0;
}

static int plan_tostring(lua_State *L)
{
    mxr__plan_edit *ed = edit_of(L, 1);
    lua_pushfstring(L, "plan(%s)", ed ? ed->plan->domain : "ended");
    return 1;
}

/* plan:replace{spec, ...}: the smart host case. In Lua, so that each add
 * may wait for DNS (a C function could only yield once per call). */
static const char replace_source[] =
    "local plan, specs = ...\n"
    "if type(specs) ~= 'table' then\n"
    "  error(\"bad argument #1 to 'replace' (a list of hosts expected)\", 2)\n"
    "end\n"
    "plan:remove(function() return true end)\n"
    "local added = 0\n"
    "for i, spec in ipairs(specs) do\n"
    "  if plan:add(spec) then added = added + 1 end\n"
    "end\n"
    "if added == 0 and #specs > 0 then\n"
    "  return nil, 'no host of the replacement list could be used'\n"
    "end\n"
    "return true\n";

static void register_replace(lua_State *L)
{
    if (luaL_loadbufferx(L, replace_source, sizeof replace_source - 1,
                         "=plan:replace", "t") == LUA_OK)
        lua_setfield(L, -2, "replace");
    else
        lua_pop(L, 1);
}

void mxr__plan_object_register(lua_State *L)
{
    static const luaL_Reg methods[] = {{"candidates", plan_candidates},
                                       {"skipped", plan_skipped},
                                       {"add", plan_add},
                                       {"remove", plan_remove},
                                       {"reorder", plan_reorder},
                                       {"fail", plan_fail},
                                       {NULL, NULL}};
    luaL_newmetatable(L, PLAN_META);
    luaL_newlib(L, methods);
    register_replace(L);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, plan_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, plan_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, plan_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    /* the metatable of every light userdata of this state: the handles */
    lua_pushlightuserdata(L, NULL);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* ------------------------------------------------------- lifetime */

void mxr__plan_edit_init(mxr__plan_edit *ed, const mxr__policy_env *env,
                         const mxr_plan *plan)
{
    memset(ed, 0, sizeof *ed);
    ed->env = env;
    ed->plan = plan;
    mxr__pb_init(&ed->pb, &env->core->a);
}

void mxr__plan_edit_push(mxr__policy *p, lua_State *co, mxr__plan_edit *ed)
{
    uint64_t handle = ++p->plan_serial; /* 2^64: never wraps in practice */
    ed->pol = p;
    ed->node.hash = handle;
    mxr__htable_insert(&p->live_plans, &ed->node);
    lua_pushlightuserdata(co, (void *)(uintptr_t)handle);
}

mxr_plan *mxr__plan_edit_result(mxr__plan_edit *ed, bool *oom)
{
    *oom = false;
    if (!ed || !ed->edited)
        return NULL;
    mxr__plan_builder *pb = &ed->pb;
    if (pb->nhosts == 0 && pb->result == MXR_RESULT_OK)
        mxr__pb_fail(pb, MXR_RESULT_TEMPFAIL, MXR_REASON_POLICY);
    mxr_plan *p = mxr__plan_pack(pb, ed->plan->input, ed->plan->domain,
                                 ed->env->core->a.fn, ed->env->core->a.ud);
    *oom = p == NULL;
    return p;
}

void mxr__plan_edit_done(mxr__plan_edit *ed)
{
    if (ed->pol) /* the handle now finds nothing: every use refused */
        mxr__htable_remove(&ed->pol->live_plans, &ed->node);
    ed->pol = NULL;
    mxr__pb_free(&ed->pb);
}
