/* policy.c -- Lua policy states: loading, the sandbox, the memory cap and
 * the per-call budgets.
 *
 * Sandbox by allow-list (docs/lua-api.md section 9): a policy's chunk runs with
 * an environment that holds only the safe parts of base, string, table,
 * math and utf8, os.time, and our own `mx` module. Bytecode never loads
 * (text mode only), string.dump is gone, the string metatable is locked,
 * and require only finds the engine's own modules.
 *
 * Budgets: a count hook adds up instructions and CPU time. Once a call is
 * over budget the hook re-arms on every instruction and raises each time,
 * so a pcall inside the script cannot swallow the stop (the Redis way).
 * Memory is capped per state in the allocator, with exact accounting. */
#include "policy/internal.h"
#include "base/name.h"

#include <errno.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_EVERY 1000 /* instructions between budget checks */
#define SOURCE_MAX (4 << 20)

/* Indexed by mxr__hook; the names scripts use for the hooks. */
static const char *const hook_names[] = {"route", "outcome", "retry", "load"};

const char *mxr__hook_name(mxr__hook hook)
{
    return hook_names[hook];
}

/* ------------------------------------------------------------ logging */

void mxr__policy_log(const mxr__policy_env *env, int level, const char *fmt,
                     ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (env->core->log)
        env->core->log(env->core->log_ud, level, msg);
}

/* ----------------------------------------------------- memory and time */

/* HAProxy's rule: the new total is used + nsize - osize, with osize
 * meaning nothing when ptr is NULL (then it is a type tag). */
static void *policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mxr__policy *p = ud;
    mxr__alloc *a = &p->set->env->core->a;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        p->mem_used -= old;
        return mxr__alloc_counted(a, ptr, old, 0);
    }
    if (nsize > old && p->mem_used - old + nsize > p->mem_limit)
        return NULL; /* Lua raises "not enough memory" */
    void *n = mxr__alloc_counted(a, ptr, old, nsize);
    if (n)
        p->mem_used = p->mem_used - old + nsize;
    return n;
}

/* The time budget counts time while the script runs (never while it waits
 * for DNS). A thread CPU clock would be exact, but on Linux it is a real
 * system call (about 240 ns here) where the monotonic clock is a vDSO
 * read: that difference alone was most of a no-op hook's cost. */
static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

mxr__call *mxr__call_of(lua_State *L)
{
    return *(mxr__call **)lua_getextraspace(L);
}

static void budget_check(mxr__call *c)
{
    const mxr__policy_limits *lim = &c->pol->set->lim;
    uint64_t now = cpu_now_ns();
    if (c->run_since == 0) /* the clock starts at the first check: a hook
                              shorter than HOOK_EVERY never reads it */
        c->run_since = now;
    uint64_t cpu = c->cpu_ns + (now - c->run_since);
    if (c->instructions > lim->max_instructions)
        snprintf(c->why, sizeof c->why, "instruction budget exceeded (%llu)",
                 (unsigned long long)lim->max_instructions);
    else if (cpu > (uint64_t)lim->max_ms * 1000000u)
        snprintf(c->why, sizeof c->why, "time budget exceeded (%u ms)",
                 (unsigned)lim->max_ms);
    else
        return;
    c->killed = true;
}

/* The error names the innermost line of the policy's own files (chunks
 * "@file"), not of the engine's Lua helpers (xpcall, plan:replace). */
static void budget_raise(lua_State *L, const mxr__call *c)
{
    lua_Debug d;
    char place[300] = "";
    for (int level = 0; lua_getstack(L, level, &d); level++) {
        if (lua_getinfo(L, "Sl", &d) && d.currentline > 0 &&
            d.source[0] == '@') {
            snprintf(place, sizeof place, "%s:%d: ", d.short_src,
                     d.currentline);
            break;
        }
    }
    lua_pushfstring(L, "%s%s", place, c->why);
    lua_error(L);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    mxr__call *c = mxr__call_of(L);
    if (!c)
        return;
    c->instructions += c->killed ? 1 : HOOK_EVERY;
    if (!c->killed)
        budget_check(c);
    if (c->killed) { /* re-armed on every instruction: pcall cannot win */
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        budget_raise(L, c);
    }
}

/* ----------------------------------------------------------- sandbox */

static int safe_print(lua_State *L)
{
    int n = lua_gettop(L); /* before the buffer may push a box */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    mxr__call *c = mxr__call_of(L);
    mxr__policy *p = c ? c->pol : lua_touserdata(L, lua_upvalueindex(1));
    mxr__policy_log(p->set->env, 0, "policy %s: %s", p->name,
                    lua_tostring(L, -1));
    return 0;
}

/* load(chunk [, name [, mode [, env]]]): text only, and the sandbox
 * environment unless one is given. */
static int safe_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    int env = !lua_isnone(L, 4) ? 4 : 0;
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (env)
        lua_pushvalue(L, env);
    else
        lua_rawgeti(
            L, LUA_REGISTRYINDEX,
            ((mxr__policy *)lua_touserdata(L, lua_upvalueindex(1)))->env_ref);
    lua_setupvalue(L, -2, 1);
    return 1;
}

/* Lua runs __gc (finalizers) and __close (when a failed coroutine is
 * reset or closed) with hooks off: no budget could stop them. */
static int safe_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        luaL_argcheck(L, lua_getfield(L, 2, "__gc") == LUA_TNIL, 2,
                      "__gc metamethods are not allowed in policies");
        luaL_argcheck(L, lua_getfield(L, 2, "__close") == LUA_TNIL, 2,
                      "__close metamethods are not allowed in policies");
        lua_pop(L, 2);
    }
    lua_getglobal(L, "setmetatable"); /* the real one, in the state */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Whether the running call is over budget (for the xpcall wrapper). */
static int call_stopped(lua_State *L)
{
    mxr__call *c = mxr__call_of(L);
    lua_pushboolean(L, c && c->killed);
    return 1;
}

static int safe_os_time(lua_State *L)
{
    luaL_argcheck(L, lua_isnoneornil(L, 1), 1, "only os.time() is allowed");
    lua_pushinteger(L, (lua_Integer)time(NULL));
    return 1;
}

static const char *lua_dirs[] = {MXR_LUA_DIR_INSTALLED, MXR_LUA_DIR_SOURCE};

static char *read_file(const char *path, char *err, size_t errlen);

/* Load an engine module under the chunk name "=NAME": its frames are then
 * skipped when an error is given a place, which names the line of the
 * policy that called it. LUA_ERRFILE when the file is not there. */
static int load_module(lua_State *L, const char *path, const char *name)
{
    char err[64], chunk[128];
    char *text = read_file(path, err, sizeof err);
    if (!text)
        return LUA_ERRFILE;
    snprintf(chunk, sizeof chunk, "=%s", name);
    int st = luaL_loadbufferx(L, text, strlen(text), chunk, "t");
    free(text);
    return st;
}

/* require(name): only the engine's own modules (lua/NAME.lua), loaded
 * once per state into the sandbox. */
static int safe_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const char *c = name; *c; c++)
        luaL_argcheck(L,
                      (*c >= 'a' && *c <= 'z') || *c == '_' || *c == '.' ||
                          (*c >= '0' && *c <= '9'),
                      1, "module names are lower-case words and dots");
    lua_getfield(L, LUA_REGISTRYINDEX, "mxr.loaded");
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    char path[512], rel[256];
    snprintf(rel, sizeof rel, "%s", name);
    for (char *c = rel; *c; c++)
        *c = *c == '.' ? '/' : *c;
    int st = LUA_ERRFILE;
    for (size_t i = 0;
         i < sizeof lua_dirs / sizeof *lua_dirs && st == LUA_ERRFILE; i++) {
        snprintf(path, sizeof path, "%s/%s.lua", lua_dirs[i], rel);
        lua_settop(L, 2);
        st = load_module(L, path, name);
    }
    if (st != LUA_OK)
        return luaL_error(L,
                          "module '%s' not found among the engine's "
                          "modules",
                          name);
    lua_rawgeti(
        L, LUA_REGISTRYINDEX,
        ((mxr__policy *)lua_touserdata(L, lua_upvalueindex(1)))->env_ref);
    lua_setupvalue(L, -2, 1);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, 2, name);
    return 1;
}

/* ----------------------------------------------------- pattern guard */

/* Work our C helpers do in one call, charged to the running call's
 * instruction budget and checked at once: a count hook never sees it. */
static void charge(lua_State *L, double work)
{
    mxr__call *c = mxr__call_of(L);
    if (!c)
        return;
    c->instructions += work > 1e15 ? (uint64_t)1e15 : (uint64_t)work;
    if (!c->killed)
        budget_check(c);
    if (c->killed) {
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        budget_raise(L, c);
    }
}

/* Lua's matcher backtracks inside one C call, where no count hook can stop
 * it: ".-.-.-b" over n bytes costs about n^4 steps. Each repetition
 * ('*', '+', '-' outside a set) multiplies the worst case by n, and an
 * unanchored search by n again. Calls whose worst case is above this are
 * refused before they start. */
#define PATTERN_COST_MAX 1e8

static int count_repetitions(const char *p, size_t len, bool *anchored)
{
    int q = 0;
    *anchored = len > 0 && p[0] == '^';
    /* '?' backtracks too: "a?a?a?...aaa" is exponential */
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            i++; /* an escape: the next byte is literal or a class */
        } else if (p[i] == '[') {
            i += (i + 1 < len && p[i + 1] == '^') ? 2 : 1;
            for (i += (i < len && p[i] == ']'); i < len && p[i] != ']'; i++)
                i += p[i] == '%';
        } else if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?') {
            q++;
        }
    }
    return q;
}

/* Upvalues: the original function, and whether '^' anchors for it
 * (gmatch has no anchors in Lua 5.4). A plain find matches no pattern. */
static int guarded_match(lua_State *L)
{
    size_t n, plen;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &plen);
    bool plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_gettop(L) >= 4 &&
                 lua_toboolean(L, 4);
    bool anchored;
    int q = plain ? 0 : count_repetitions(p, plen, &anchored);
    anchored = !plain && anchored && lua_toboolean(L, lua_upvalueindex(3));
    double cost = (double)plen + 1; /* every step compares the pattern */
    for (int k = 0; k < q + !anchored && cost <= PATTERN_COST_MAX; k++)
        cost *= (double)n + 1;
    if (cost > PATTERN_COST_MAX)
        return luaL_error(L,
                          "pattern too costly for a %d-byte subject (%d "
                          "repetitions): simplify it or shorten the "
                          "subject",
                          (int)n, q);
    /* The estimate is a loose bound (most patterns run in linear time),
     * so only a small share of it is charged; the cap above is what stops
     * real backtracking. */
    charge(L, cost / 1024);
    lua_pushvalue(L, lua_upvalueindex(1)); /* the original function */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* string.rep builds its result in one C call the count hook cannot
 * interrupt: results are capped, as policies have no use for big ones. */
#define REP_MAX (1 << 20)

static int guarded_rep(lua_State *L)
{
    size_t len, seplen = 0;
    luaL_checklstring(L, 1, &len);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &seplen);
    double total = n > 0 ? (double)n * (double)(len + seplen) : 0;
    if (total > REP_MAX)
        return luaL_error(L, "string.rep: a result over %d bytes", REP_MAX);
    charge(L, total / 256); /* a byte copy is far cheaper than an op */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* Wrap string.find, match, gmatch and gsub (also reached as methods), and
 * string.rep. */
static void guard_patterns(lua_State *L)
{
    static const struct {
        const char *name;
        bool plain_arg, anchors;
    } fns[] = {{"find", true, true},
               {"match", false, true},
               {"gmatch", false, false},
               {"gsub", false, true}};
    lua_getglobal(L, LUA_STRLIBNAME);
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        lua_getfield(L, -1, fns[i].name);
        lua_pushboolean(L, fns[i].plain_arg);
        lua_pushboolean(L, fns[i].anchors);
        lua_pushcclosure(L, guarded_match, 3);
        lua_setfield(L, -2, fns[i].name);
    }
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, guarded_rep, 1);
    lua_setfield(L, -2, "rep");
    lua_pop(L, 1);
}

static void open_std_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                    {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    /* string.dump would hand out bytecode; the string metatable would
     * hand out the real string table */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "mxr.loaded");
    guard_patterns(L);
}

/* Copy the allowed globals of the real state into env (on top). */
static void copy_allowed(lua_State *L)
{
    static const char *const allowed[] = {
        "assert",        "error",        "ipairs",       "next",
        "pairs",         "pcall",        "xpcall",       "rawequal",
        "rawget",        "rawlen",       "rawset",       "select",
        "setmetatable",  "getmetatable", "tonumber",     "tostring",
        "type",          "_VERSION",     LUA_STRLIBNAME, LUA_TABLIBNAME,
        LUA_MATHLIBNAME, LUA_UTF8LIBNAME};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) {
        lua_getglobal(L, allowed[i]);
        lua_setfield(L, -2, allowed[i]);
    }
}

static void set_closure(lua_State *L, mxr__policy *p, lua_CFunction f,
                        const char *name)
{
    lua_pushlightuserdata(L, p);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

/* xpcall runs its handler at the point of error, where Lua has hooks off
 * when the error came from the budget: a looping handler could not be
 * stopped. This xpcall runs the handler after the protected call, like
 * ordinary code, and never for a call that was stopped. Written in Lua
 * over pcall, so waiting for DNS inside it still works. */
static const char xpcall_source[] =
    "local pcall, pack, unpack, stopped = ...\n"
    "return function(f, handler, ...)\n"
    "  local r = pack(pcall(f, ...))\n"
    "  if r[1] or stopped() then return unpack(r, 1, r.n) end\n"
    "  local ok, h = pcall(handler, r[2])\n" /* as Lua: a failing */
    "  return false, h\n"                    /* handler is not fatal */
    "end\n";

static void install_xpcall(lua_State *L)
{
    if (luaL_loadbufferx(L, xpcall_source, sizeof xpcall_source - 1, "=xpcall",
                         "t") != LUA_OK) {
        lua_pop(L, 1);
        return;
    }
    lua_getglobal(L, "pcall");
    lua_getglobal(L, LUA_TABLIBNAME);
    lua_getfield(L, -1, "pack");
    lua_getfield(L, -2, "unpack");
    lua_remove(L, -3);
    lua_pushcfunction(L, call_stopped);
    lua_call(L, 4, 1);
    lua_setfield(L, -2, "xpcall");
}

/* The policy's environment: built by allow-list, kept in the registry. */
static void build_env(lua_State *L, mxr__policy *p)
{
    lua_newtable(L);
    copy_allowed(L);
    set_closure(L, p, safe_print, "print");
    set_closure(L, p, safe_setmetatable, "setmetatable");
    set_closure(L, p, safe_load, "load");
    set_closure(L, p, safe_require, "require");
    lua_newtable(L);
    lua_pushcfunction(L, safe_os_time);
    lua_setfield(L, -2, "time");
    lua_setfield(L, -2, "os");
    mxr__mx_module_open(L);
    lua_setfield(L, -2, "mx");
    install_xpcall(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "_G");
    p->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ------------------------------------------------------------- calls */

/* Under lua_pcall: a new coroutine, anchored in the registry. */
static int new_thread(lua_State *L)
{
    int *ref = lua_touserdata(L, 1);
    lua_newthread(L);
    lua_pushvalue(L, -1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static lua_State *thread_get(mxr__policy *p, int *ref)
{
    if (p->nidle > 0) {
        p->nidle--;
        *ref = p->idle_ref[p->nidle];
        return p->idle[p->nidle];
    }
    lua_pushcfunction(p->L, new_thread);
    lua_pushlightuserdata(p->L, ref);
    if (lua_pcall(p->L, 1, 1, 0) != LUA_OK) {
        lua_pop(p->L, 1);
        return NULL;
    }
    lua_State *co = lua_tothread(p->L, -1);
    lua_pop(p->L, 1); /* the registry keeps it */
    /* set once: pooled threads all ended cleanly, so theirs still works */
    lua_sethook(co, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
    return co;
}

/* A thread that ended cleanly goes back to the pool. One that failed is
 * dropped, never reset: an error raised from the count hook leaves hooks
 * off on that thread (so no budget would fire on it again), and a reset
 * would run pending __close handlers without any budget. */
static void thread_put(mxr__policy *p, lua_State *co, int ref, bool clean)
{
    *(mxr__call **)lua_getextraspace(co) = NULL;
    if (!clean) {
        lua_sethook(co, NULL, 0, 0);
        luaL_unref(p->L, LUA_REGISTRYINDEX, ref);
        return;
    }
    lua_settop(co, 0);
    if (p->nidle < MXR__POOL_THREADS) {
        p->idle[p->nidle] = co;
        p->idle_ref[p->nidle++] = ref;
    } else {
        luaL_unref(p->L, LUA_REGISTRYINDEX, ref);
    }
}

mxr_status mxr__call_begin(mxr__call *c, mxr__policy *p, mxr__hook hook,
                           bool sync)
{
    memset(c, 0, sizeof *c);
    c->pol = p;
    c->hook = hook;
    c->sync = sync;
    if (hook != MXR__HOOK_LOAD) /* counts hook calls, not loading */
        p->set->env->calls++;
    c->co = thread_get(p, &c->co_ref);
    if (!c->co) {
        mxr__call_fail(c, "not enough memory for a coroutine");
        return MXR_ENOMEM;
    }
    *(mxr__call **)lua_getextraspace(c->co) = c;
    return MXR_OK;
}

mxr_status mxr__call_push_protected(mxr__call *c, lua_CFunction fn, void *ud)
{
    lua_State *L = c->pol->L;
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        mxr__call_fail(c, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return MXR_EPOLICY;
    }
    lua_xmove(L, c->co, 1);
    return MXR_OK;
}

bool mxr__call_push_hook(mxr__call *c)
{
    if (c->hook >= MXR__HOOK_N || !c->pol->has[c->hook])
        return false;
    lua_rawgeti(c->co, LUA_REGISTRYINDEX, c->pol->hook_ref[c->hook]);
    return true;
}

/* "file:line: " of the innermost Lua function on the dead coroutine, for
 * errors raised from C (memory, argument checks) that carry no place. */
static void where(lua_State *co, char *buf, size_t len)
{
    lua_Debug ar;
    buf[0] = '\0';
    for (int level = 0; lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0 &&
            ar.source[0] == '@') { /* the policy's files, not our helpers */
            snprintf(buf, len, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
}

void mxr__call_fail(mxr__call *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->errbuf) {
        snprintf(c->errbuf, c->errlen, "policy %s: %s", c->pol->name, msg);
        return;
    }
    mxr__policy_env *env = c->pol->set->env;
    env->errors++;
    if (c->killed)
        env->budget_kills++;
    mxr__policy_log(env, 2, "policy %s: %s hook: %s; %s", c->pol->name,
                    hook_names[c->hook], msg,
                    c->pol->set->lim.defer_on_error ? "deferring"
                                                    : "default decision used");
}

int mxr__call_resume(mxr__call *c, int nargs, int *nres)
{
    c->run_since = 0; /* set by the first budget check, if any */
    int st = lua_resume(c->co, c->pol->L, nargs, nres);
    if (c->run_since)
        c->cpu_ns += cpu_now_ns() - c->run_since;
    if (st == LUA_OK && c->killed)
        st = LUA_ERRRUN; /* finished, but only after its budget ran out */
    if (st == LUA_OK || st == LUA_YIELD)
        return st;
    char place[300];
    const char *msg = lua_type(c->co, -1) == LUA_TSTRING
                          ? lua_tostring(c->co, -1)
                      : c->killed ? c->why
                                  : "error object is not a string";
    where(c->co, place, sizeof place);
    bool placed = place[0] && strncmp(msg, place, strlen(place) - 2) == 0;
    mxr__call_fail(c, "%s%s", placed || !place[0] ? "" : place, msg);
    return st;
}

void mxr__call_end(mxr__call *c)
{
    if (!c->co)
        return;
    bool clean = lua_status(c->co) == LUA_OK && !c->killed;
    thread_put(c->pol, c->co, c->co_ref, clean);
    c->co = NULL;
}

bool mxr__policy_matches(const mxr__policy *p, mxr__hook hook,
                         const char *domain)
{
    if (!p->has[hook])
        return false;
    if (!p->domains)
        return true;
    size_t dl = domain ? strlen(domain) : 0;
    for (size_t i = 0; i < p->ndomains; i++) {
        const char *d = p->domains[i];
        size_t n = strlen(d);
        if (d[0] == '.' ? (dl > n && strcmp(domain + dl - n, d) == 0)
                        : (domain && strcmp(domain, d) == 0))
            return true;
    }
    return false;
}

bool mxr__policies_has(const mxr__policies *set, mxr__hook hook,
                       const char *domain)
{
    for (size_t i = 0; set && i < set->n; i++)
        if (mxr__policy_matches(&set->p[i], hook, domain))
            return true;
    return false;
}

/* ------------------------------------------------------------ loading */

static size_t line_of(const char *text, const char *at)
{
    size_t line = 1;
    for (; text < at; text++)
        line += *text == '\n';
    return line;
}

/* A policy or configuration file. A directory opens and fails at the
 * first read: without the ferror check it read as an empty chunk. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    int errnum = f ? 0 : errno;
    char *buf = f ? malloc(SOURCE_MAX + 1) : NULL;
    size_t n = buf ? fread(buf, 1, SOURCE_MAX + 1, f) : 0;
    if (f && !buf)
        errnum = ENOMEM;
    else if (f && ferror(f))
        errnum = errno ? errno : EIO;
    if (f)
        fclose(f);
    const char *nul = errnum ? NULL : memchr(buf, '\0', n);
    if (errnum || n > SOURCE_MAX || nul) {
        if (errnum)
            snprintf(err, errlen, "%s: cannot be read: %s", path,
                     strerror(errnum));
        else if (n > SOURCE_MAX)
            snprintf(err, errlen, "%s: larger than 4 MiB", path);
        else /* the chunk is loaded as a C string: the rest would vanish */
            snprintf(err, errlen, "%s:%zu: a NUL byte: this is not Lua text",
                     path, line_of(buf, nul));
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Load text as a chunk named name, with the policy's environment. */
static int load_chunk(mxr__policy *p, const char *text, const char *name,
                      char *err, size_t errlen)
{
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@%s", name);
    if (luaL_loadbufferx(p->L, text, strlen(text), chunk, "t") != LUA_OK) {
        snprintf(err, errlen, "policy %s: %s", p->name, lua_tostring(p->L, -1));
        lua_pop(p->L, 1);
        return -1;
    }
    lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->env_ref);
    lua_setupvalue(p->L, -2, 1);
    return 0;
}

/* Run the function on top of p->L with nargs below it... as a budgeted
 * call; leaves its one result on p->L. */
static int run_budgeted(mxr__policy *p, int nargs, char *err, size_t errlen)
{
    mxr__call c;
    if (mxr__call_begin(&c, p, MXR__HOOK_LOAD, true) != 0) {
        snprintf(err, errlen, "policy %s: out of memory", p->name);
        return -1;
    }
    c.errbuf = err;
    c.errlen = errlen;
    lua_xmove(p->L, c.co, nargs + 1);
    int nres = 0;
    int st = mxr__call_resume(&c, nargs, &nres);
    if (st == LUA_YIELD) {
        snprintf(err, errlen, "policy %s: cannot wait while loading", p->name);
        st = LUA_ERRRUN;
    }
    if (st == LUA_OK) {
        lua_settop(c.co, nres ? 1 : 0);
        if (nres == 0)
            lua_pushnil(c.co);
        lua_xmove(c.co, p->L, 1);
    }
    mxr__call_end(&c);
    return st == LUA_OK ? 0 : -1;
}

/* The configuration table: a .lua file or a table constructor. */
static int push_config(mxr__policy *p, const char *config, char *err,
                       size_t errlen)
{
    if (!config) {
        lua_newtable(p->L);
        return 0;
    }
    char *file =
        ends_with(config, ".lua") ? read_file(config, err, errlen) : NULL;
    if (ends_with(config, ".lua") && !file)
        return -1;
    const char *text = file ? file : config;
    size_t n = strlen(text) + 8;
    char *src = malloc(n);
    if (!src) {
        free(file);
        return -1;
    }
    /* a bare constructor "{...}" is an expression: return it */
    const char *t = text + strspn(text, " \t\r\n");
    snprintf(src, n, "%s%s", *t == '{' ? "return " : "", text);
    int rc =
        load_chunk(p, src, file ? base_name(config) : "config", err, errlen);
    free(src);
    free(file);
    if (rc == 0)
        rc = run_budgeted(p, 0, err, errlen);
    if (rc == 0 && !lua_istable(p->L, -1)) {
        snprintf(err, errlen,
                 "policy %s: the configuration is a %s, not a "
                 "table",
                 p->name, luaL_typename(p->L, -1));
        lua_pop(p->L, 1);
        rc = -1;
    }
    return rc;
}

static int read_domains(mxr__policy *p, char *err, size_t errlen)
{
    lua_State *L = p->L;
    int t = lua_getfield(L, -1, "domains");
    if (t == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (t != LUA_TTABLE) {
        snprintf(err, errlen,
                 "policy %s: 'domains' must be a list of "
                 "domain names, not a %s",
                 p->name, lua_typename(L, t));
        lua_pop(L, 1);
        return -1;
    }
    size_t n = lua_istable(L, -1) ? lua_rawlen(L, -1) : 0;
    p->domains = calloc(n + 1, sizeof *p->domains);
    for (size_t i = 1; p->domains && i <= n; i++, p->ndomains++) {
        char norm[MXR__NAME_MAX + 2] = ".";
        const char *d = lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING
                            ? lua_tostring(L, -1)
                            : "";
        bool sub = d[0] == '.';
        bool ok = mxr__hostname_normalize(d + sub, strlen(d + sub), norm + 1,
                                          NULL, 0) == MXR_OK;
        lua_pop(L, 1);
        if (!ok) {
            snprintf(err, errlen,
                     "policy %s: domains[%zu] is not a domain "
                     "name",
                     p->name, i);
            lua_pop(L, 1);
            return -1;
        }
        p->domains[i - 1] = strdup(sub ? norm : norm + 1);
    }
    lua_pop(L, 1);
    if (!lua_istable(L, -1) || !p->domains) {
        snprintf(err, errlen, "policy %s: 'domains' must be a list", p->name);
        return -1;
    }
    return 0;
}

/* The table a policy returns: hooks must be functions. */
static int check_table(mxr__policy *p, char *err, size_t errlen)
{
    lua_State *L = p->L;
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen,
                 "policy %s: returned a %s, expected a table "
                 "of hooks (route, outcome, retry)",
                 p->name, luaL_typename(L, -1));
        return -1;
    }
    for (int h = 0; h < MXR__HOOK_N; h++) {
        int t = lua_getfield(L, -1, hook_names[h]);
        lua_pop(L, 1);
        if (t == LUA_TFUNCTION) { /* a reference: one call to push it */
            lua_getfield(L, -1, hook_names[h]);
            p->hook_ref[h] = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        if (t != LUA_TNIL && t != LUA_TFUNCTION) {
            snprintf(err, errlen,
                     "policy %s: '%s' must be a function, not "
                     "a %s",
                     p->name, hook_names[h], lua_typename(L, t));
            return -1;
        }
        p->has[h] = t == LUA_TFUNCTION;
    }
    if (lua_getfield(L, -1, "name") == LUA_TSTRING) { /* for messages */
        char *name = strdup(lua_tostring(L, -1));
        if (name) {
            free(p->name);
            p->name = name;
        }
    }
    lua_pop(L, 1);
    if (!p->has[0] && !p->has[1] && !p->has[2]) {
        snprintf(err, errlen, "policy %s: no hook (route, outcome or retry)",
                 p->name);
        return -1;
    }
    return read_domains(p, err, errlen);
}

/* With a seed (MXR_OPT_SEED, --seed), math.random in policies repeats
 * too: reproducible runs cover the whole decision. */
static void seed_random(mxr__policy *p)
{
    int64_t seed = p->set->env->seed;
    if (seed < 0)
        return;
    lua_getglobal(p->L, LUA_MATHLIBNAME);
    lua_getfield(p->L, -1, "randomseed");
    lua_pushinteger(p->L, (lua_Integer)seed);
    if (lua_pcall(p->L, 1, 0, 0) != LUA_OK)
        lua_pop(p->L, 1); /* the error: unseeded is still correct */
    lua_pop(p->L, 1);
}

static int policy_open(mxr__policy *p, const mxr__policy_src *src, char *err,
                       size_t errlen)
{
    p->name = strdup(base_name(src->name));
    p->mem_limit = p->set->lim.max_memory;
    p->L = p->name ? lua_newstate(policy_alloc, p) : NULL;
    if (!p->L) {
        snprintf(err, errlen, "policy %s: out of memory", src->name);
        return -1;
    }
    open_std_libs(p->L);
    seed_random(p);
    build_env(p->L, p);
    mxr__plan_object_register(p->L);
    if (mxr__htable_init(&p->live_plans, &p->set->env->core->a, 8) != MXR_OK) {
        snprintf(err, errlen, "policy %s: out of memory", src->name);
        return -1;
    }
    char *file = src->source ? NULL : read_file(src->name, err, errlen);
    if (!src->source && !file)
        return -1;
    int rc =
        load_chunk(p, src->source ? src->source : file, p->name, err, errlen);
    free(file);
    if (rc == 0)
        rc = push_config(p, src->config, err, errlen);
    if (rc == 0)
        rc = run_budgeted(p, 1, err, errlen);
    if (rc == 0)
        rc = check_table(p, err, errlen);
    if (rc == 0)
        p->table_ref = luaL_ref(p->L, LUA_REGISTRYINDEX);
    return rc;
}

static void policy_close(mxr__policy *p)
{
    if (p->L)
        lua_close(p->L);
    if (p->live_plans.buckets)
        mxr__htable_free(&p->live_plans);
    for (size_t i = 0; i < p->ndomains; i++)
        free(p->domains[i]);
    free(p->domains);
    free(p->name);
}

mxr_status mxr__policies_load(mxr__policy_env *env, const mxr__policy_src *src,
                              size_t n, const mxr__policy_limits *lim,
                              mxr__policies **out, char *err, size_t errlen)
{
    mxr__policies *set = calloc(1, sizeof *set);
    if (!set || !(set->p = calloc(n ? n : 1, sizeof *set->p))) {
        free(set);
        return MXR_ENOMEM;
    }
    set->refs = 1;
    set->env = env;
    set->lim = *lim;
    for (size_t i = 0; i < n; i++, set->n++) {
        set->p[i].set = set;
        if (policy_open(&set->p[i], &src[i], err, errlen) != 0) {
            set->n++;
            mxr__policies_unref(set);
            return MXR_EPOLICY;
        }
    }
    *out = set;
    return MXR_OK;
}

void mxr__policies_ref(mxr__policies *set)
{
    if (set)
        set->refs++;
}

void mxr__policies_unref(mxr__policies *set)
{
    if (!set || --set->refs > 0)
        return;
    for (size_t i = 0; i < set->n; i++)
        policy_close(&set->p[i]);
    if (set->spare_run)
        mxr__free(&set->env->core->a, set->spare_run);
    free(set->p);
    free(set);
}
