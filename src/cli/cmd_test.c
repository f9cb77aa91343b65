/* cmd_test.c -- `mxroute test FILE...`: offline policy tests in Lua (see
 * docs/testing.md). Each file runs in its own Lua state with the test
 * functions; each `test` block passes or fails on its own, and the run
 * ends with "N passed, N failed". */
#include "cli.h"
#include "simulate.h"
#include "test_prelude.lua.h"

#include <getopt.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <mxroute/lua.h>
#include <stdlib.h>
#include <string.h>

#define TEST_EPOCH_MS UINT64_C(1000000000) /* the fixed clock of a run */
#define FAIL_MARK "mxroute.test.failed"    /* error value of a failed check */
#define MAX_LIST 64

typedef struct tpolicy {
    char *path;
    char *config;
} tpolicy;

/* What a test file has set up, and its counts. */
typedef struct tctx {
    const char *file;
    char dir[PATH_MAX];
    char *zones[MAX_LIST];
    size_t nzones;
    tpolicy policies[MAX_LIST];
    size_t npolicies;
    char *local_names[MAX_LIST];
    size_t nlocal;
    int family, port;
    bool allow_loopback, deny_private, defer_on_error, stay_on_4xx;
    int64_t seed, max_age;
    mxr_engine *engine; /* built lazily, rebuilt after a change */
    mxr_options *opts;
    const char *test; /* the running test, or NULL */
    bool test_failed;
    unsigned passed, failed;
} tctx;

static uint64_t fixed_clock(void *ud)
{
    return TEST_EPOCH_MS;
}

static tctx *ctx_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ------------------------------------------------------------- engine */

static void engine_drop(tctx *t)
{
    mxr_engine_destroy(t->engine);
    mxr_options_free(t->opts);
    t->engine = NULL;
    t->opts = NULL;
}

static void log_policy(void *ud, int level, const char *msg)
{
    fflush(stdout); /* keep results and policy messages in order */
    fprintf(stderr, "    %s%s\n", level >= 2 ? "error: " : "", msg);
}

static int add_rules(tctx *t)
{
    mxr_rules *r;
    if (!t->stay_on_4xx && t->max_age < 0)
        return 0;
    if (mxr_rules_new(&r) != MXR_OK)
        return -1;
    if (t->stay_on_4xx)
        mxr_rules_stay_on_4xx(r);
    if (t->max_age >= 0)
        mxr_rules_set(r, MXR_RULE_MAX_AGE_S, t->max_age);
    mxr_status st = mxr_options_add_rules(t->opts, NULL, r);
    mxr_rules_free(r);
    return st == MXR_OK ? 0 : -1;
}

static mxr_status fill_options(tctx *t)
{
    mxr_options *o = t->opts;
    mxr_status st = MXR_OK;
    mxr_options_set_clock(o, fixed_clock, NULL);
    mxr_options_set_log(o, log_policy, NULL);
    mxr_options_set(o, MXR_OPT_SEED, t->seed);
    mxr_options_set(o, MXR_OPT_FAMILY, t->family);
    mxr_options_set(o, MXR_OPT_ALLOW_LOOPBACK, t->allow_loopback);
    mxr_options_set(o, MXR_OPT_DENY_PRIVATE, t->deny_private);
    mxr_options_set(o, MXR_OPT_PORT, t->port);
    mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, t->defer_on_error);
    for (size_t i = 0; st == MXR_OK && i < t->nzones; i++)
        st = mxr_options_add_zone_text(o, "zone", t->zones[i]);
    for (size_t i = 0; st == MXR_OK && i < t->npolicies; i++)
        st = mxr_options_add_policy(o, t->policies[i].path,
                                    t->policies[i].config);
    for (size_t i = 0; st == MXR_OK && i < t->nlocal; i++)
        st = mxr_options_add_local_name(o, t->local_names[i]);
    if (st == MXR_OK && add_rules(t) != 0)
        st = MXR_ENOMEM;
    return st;
}

/* The engine for what the file has set up so far; raises on errors. */
static mxr_engine *engine_get(lua_State *L, tctx *t)
{
    if (t->engine)
        return t->engine;
    if (t->nzones == 0)
        luaL_error(L, "no zone data: call zone[[ ... ]] first");
    if (mxr_options_new(&t->opts) != MXR_OK)
        luaL_error(L, "out of memory");
    mxr_status st = fill_options(t);
    if (st == MXR_OK)
        st = mxr_engine_new(t->opts, &t->engine);
    if (st != MXR_OK) {
        lua_pushstring(L, mxr_options_errmsg(t->opts)[0]
                              ? mxr_options_errmsg(t->opts)
                              : mxr_strerror(st));
        engine_drop(t);
        lua_error(L); /* does not return */
    }
    return t->engine;
}

/* ------------------------------------------------------ set-up calls */

static char *dup_or_die(lua_State *L, const char *s)
{
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

static int t_zone(lua_State *L)
{
    tctx *t = ctx_of(L);
    const char *text = luaL_checkstring(L, 1);
    luaL_argcheck(L, t->nzones < MAX_LIST, 1, "too many zones");
    t->zones[t->nzones++] = dup_or_die(L, text);
    engine_drop(t);
    return 0;
}

/* policy(path [, config]): path relative to the test file's directory. */
static int t_policy(lua_State *L)
{
    tctx *t = ctx_of(L);
    const char *path = luaL_checkstring(L, 1);
    luaL_argcheck(L, t->npolicies < MAX_LIST, 1, "too many policies");
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s%s%s", path[0] == '/' ? "" : t->dir,
             path[0] == '/' ? "" : "/", path);
    char *config = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getglobal(L, "__serialize");
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        config = dup_or_die(L, lua_tostring(L, -1));
    }
    t->policies[t->npolicies].path = dup_or_die(L, full);
    t->policies[t->npolicies++].config = config;
    engine_drop(t);
    return 0;
}

static bool opt_bool(lua_State *L, const char *k, bool def)
{
    int type = lua_getfield(L, 1, k);
    bool v = type == LUA_TNIL ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static int64_t opt_int(lua_State *L, const char *k, int64_t def)
{
    int isnum = 1;
    int64_t v = lua_getfield(L, 1, k) == LUA_TNIL
                    ? def
                    : (int64_t)lua_tointegerx(L, -1, &isnum);
    if (!isnum)
        luaL_error(L, "options: '%s' must be an integer", k);
    lua_pop(L, 1);
    return v;
}

static void opt_local_names(lua_State *L, tctx *t)
{
    if (lua_getfield(L, 1, "local_names") == LUA_TTABLE) {
        for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
            lua_rawgeti(L, -1, i);
            if (t->nlocal < MAX_LIST)
                t->local_names[t->nlocal++] =
                    dup_or_die(L, luaL_checkstring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static int t_options(lua_State *L)
{
    tctx *t = ctx_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "family") == LUA_TSTRING &&
        (t->family = mxr_family_parse(lua_tostring(L, -1))) < 0)
        luaL_error(L, "options: unknown family '%s'", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "policy_on_error") == LUA_TSTRING)
        t->defer_on_error = strcmp(lua_tostring(L, -1), "defer") == 0;
    lua_pop(L, 1);
    t->seed = opt_int(L, "seed", t->seed);
    t->port = (int)opt_int(L, "port", t->port);
    t->max_age = opt_int(L, "max_age", t->max_age);
    t->allow_loopback = opt_bool(L, "allow_loopback", t->allow_loopback);
    t->deny_private = opt_bool(L, "deny_private", t->deny_private);
    t->stay_on_4xx = opt_bool(L, "stay_on_4xx", t->stay_on_4xx);
    opt_local_names(L, t);
    engine_drop(t);
    return 0;
}

static void ctx_defaults(tctx *t)
{
    t->family = MXR_FAMILY_ANY;
    t->port = 25;
    t->seed = 1;
    t->max_age = -1;
    t->allow_loopback = t->deny_private = false;
    t->defer_on_error = t->stay_on_4xx = false;
}

static void ctx_clear(tctx *t)
{
    engine_drop(t);
    for (size_t i = 0; i < t->nzones; i++)
        free(t->zones[i]);
    for (size_t i = 0; i < t->npolicies; i++) {
        free(t->policies[i].path);
        free(t->policies[i].config);
    }
    for (size_t i = 0; i < t->nlocal; i++)
        free(t->local_names[i]);
    t->nzones = t->npolicies = t->nlocal = 0;
    ctx_defaults(t);
}

static int t_reset(lua_State *L)
{
    ctx_clear(ctx_of(L));
    return 0;
}

/* ------------------------------------------------------ plans as tables */

/* Route input; on invalid input, a table {input, status = "invalid",
 * error = message}. Raises on engine errors. */
static mxr_plan *route_or_push_error(lua_State *L, tctx *t, const char *in)
{
    mxr_engine *e = engine_get(L, t);
    mxr_plan *p = NULL;
    mxr_status st = mxr_route_sync(e, in, &p);
    if (st == MXR_EBADNAME) {
        lua_createtable(L, 0, 3);
        mxr_lua_set_string(L, "input", in);
        mxr_lua_set_string(L, "status", "invalid");
        mxr_lua_set_string(L, "error", mxr_engine_errmsg(e));
        return NULL;
    }
    if (st != MXR_OK)
        luaL_error(L, "route %s: %s", in, mxr_strerror(st));
    return p;
}

static int t_route(lua_State *L)
{
    tctx *t = ctx_of(L);
    const char *in = luaL_checkstring(L, 1);
    mxr_plan *p = route_or_push_error(L, t, in);
    if (p) {
        mxr_lua_push_plan(L, in, p);
        mxr_plan_free(p);
    }
    return 1;
}

/* ------------------------------------------------------------ deliver */

/* What deliver{} holds while it runs. It lives in a to-be-closed Lua
 * userdata: when deliver returns, or a Lua error raised halfway (a bad
 * field, a policy that does not load, memory) unwinds it, __close frees
 * it at once, while the engine the attempt belongs to is still there. */
typedef struct delivery {
    const char *to[MAX_LIST];
    size_t nto;
    sim_spec specs[MAX_LIST];
    size_t nspecs;
    mxr_message msg;
    mxr_plan *plan;
    mxr_attempt *attempt;
    sim_round round;
} delivery;

static int delivery_close(lua_State *L)
{
    delivery *d = lua_touserdata(L, 1);
    for (size_t i = 0; i < d->nspecs; i++)
        sim_spec_free(&d->specs[i]);
    d->nspecs = 0;
    mxr_attempt_free(d->attempt);
    d->attempt = NULL;
    mxr_plan_free(d->plan);
    d->plan = NULL;
    free(d->round.steps);
    d->round.steps = NULL;
    return 0;
}

static delivery *delivery_new(lua_State *L)
{
    delivery *d = lua_newuserdatauv(L, sizeof *d, 0);
    memset(d, 0, sizeof *d);
    if (luaL_newmetatable(L, "mxroute.test.delivery")) {
        lua_pushcfunction(L, delivery_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1);
    return d;
}

static void read_list(lua_State *L, const char *k, const char **out, size_t *n)
{
    if (lua_getfield(L, 1, k) != LUA_TTABLE)
        luaL_error(L, "deliver: '%s' must be a list of strings", k);
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
        lua_rawgeti(L, -1, i);
        if (*n >= MAX_LIST)
            luaL_error(L, "deliver: more than %d entries in '%s'", MAX_LIST, k);
        out[(*n)++] = luaL_checkstring(L, -1);
        lua_pop(L, 1); /* the string stays alive in the table */
    }
    lua_pop(L, 1);
}

static void read_delivery(lua_State *L, delivery *d)
{
    const char *outcomes[MAX_LIST];
    size_t nout = 0;
    char err[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    read_list(L, "to", d->to, &d->nto);
    luaL_argcheck(L, d->nto > 0, 1, "'to' needs a recipient");
    if (lua_getfield(L, 1, "outcomes") != LUA_TNIL) {
        lua_pop(L, 1);
        read_list(L, "outcomes", outcomes, &nout);
    } else {
        lua_pop(L, 1);
    }
    for (size_t i = 0; i < nout; i++, d->nspecs++)
        if (!sim_spec_parse(outcomes[i], &d->specs[i], err, sizeof err))
            luaL_error(L, "deliver: outcome '%s': %s", outcomes[i], err);
    lua_getfield(L, 1, "from");
    d->msg.sender = luaL_optstring(L, -1, "sender@example.invalid");
    lua_pop(L, 1);
    lua_getfield(L, 1, "attempts");
    d->msg.attempts = (unsigned)luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "age");
    lua_Integer age = luaL_optinteger(L, -1, 0);
    lua_pop(L, 2);
    luaL_argcheck(L, age >= 0 && age < 1000000000, 1, "'age' out of range");
    d->msg.first_attempt_ms = TEST_EPOCH_MS - (uint64_t)age * 1000;
    d->msg.recipients = d->to;
    d->msg.nrecipients = d->nto;
}

static const char *verdict_word(const mxr_attempt *a)
{
    bool deferred = false, delivered = false;
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        mxr_rcpt_state s = mxr_attempt_recipient(a, i)->state;
        deferred |= s == MXR_RCPT_DEFERRED || s == MXR_RCPT_PENDING;
        delivered |= s == MXR_RCPT_DELIVERED;
    }
    return deferred ? "defer" : delivered ? "delivered" : "bounce";
}

static void push_delivery(lua_State *L, const mxr_attempt *a,
                          const sim_round *r)
{
    lua_createtable(L, 0, 3);
    mxr_lua_set_string(L, "action", verdict_word(a));
    lua_newtable(L);
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        const mxr_rcpt *rc = mxr_attempt_recipient(a, i);
        lua_createtable(L, 0, 7);
        mxr_lua_set_string(L, "address", rc->address);
        mxr_lua_set_string(L, "state", mxr_rcpt_state_name(rc->state));
        if (rc->code)
            mxr_lua_set_integer(L, "code", rc->code);
        mxr_lua_set_string(L, "enhanced", rc->enhanced);
        mxr_lua_set_string(L, "text", rc->text);
        mxr_lua_set_string(L, "host", rc->host);
        if (rc->state == MXR_RCPT_DEFERRED)
            mxr_lua_set_integer(
                L, "retry_in",
                (lua_Integer)((rc->retry_at_ms - TEST_EPOCH_MS) / 1000));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "recipients");
    lua_newtable(L);
    for (size_t i = 0; i < r->nsteps; i++) {
        const sim_step *st = &r->steps[i];
        lua_createtable(L, 0, 5);
        mxr_lua_set_string(L, "host", st->host);
        mxr_lua_set_string(L, "address", st->address);
        mxr_lua_set_string(L, "stage", mxr_stage_name(st->stage));
        if (!st->no_reply && st->reply.code)
            mxr_lua_set_integer(L, "code", st->reply.code);
        else if (!st->no_reply)
            mxr_lua_set_string(L, "class", mxr_class_name(st->reply.cls));
        mxr_lua_set_string(L, "action", mxr_action_name(st->action));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "hops");
}

static int walk_delivery(lua_State *L, tctx *t, delivery *d)
{
    d->round = (sim_round){.number = 1, .domain = d->plan->domain};
    sim_session ss = {.specs = d->specs, .nspecs = d->nspecs, .r = &d->round};
    if (mxr_attempt_new(t->engine, d->plan, &d->msg, &d->attempt) != MXR_OK)
        return -1;
    ss.a = d->attempt;
    int rc = sim_walk(&ss);
    if (rc == 0)
        push_delivery(L, d->attempt, &d->round);
    return rc;
}

/* deliver{to = {...}, from = ..., outcomes = {...}, attempts = N,
 * age = S}: route, then one attempt against the scripted outcomes. */
static int t_deliver(lua_State *L)
{
    tctx *t = ctx_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    delivery *d = delivery_new(L); /* closed on return or error */
    read_delivery(L, d);
    d->plan = route_or_push_error(L, t, d->to[0]);
    int rc = d->plan ? walk_delivery(L, t, d) : 0;
    /* (walk_delivery pushed the result, or nothing when rc != 0) */
    if (rc != 0)
        return luaL_error(L, "deliver: the failover machine failed");
    return 1;
}

/* ------------------------------------------------------ bookkeeping */

/* __fail(text [, message]): a failed check; ends the running test. */
static int t_fail(lua_State *L)
{
    tctx *t = ctx_of(L);
    const char *text = luaL_checkstring(L, 1);
    const char *msg = luaL_optstring(L, 2, NULL);
    luaL_where(L, 2); /* the line of the eq/ok call in the test file */
    fprintf(stdout, "  FAIL %s: %s%s%s%s\n", t->test ? t->test : "(file)",
            lua_tostring(L, -1), msg ? msg : "", msg ? ": " : "", text);
    t->test_failed = true;
    lua_pushliteral(L, FAIL_MARK);
    return lua_error(L);
}

static int t_begin(lua_State *L)
{
    tctx *t = ctx_of(L);
    engine_drop(t); /* no host health or cache carried between tests */
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "mxr.test.name");
    lua_getfield(L, LUA_REGISTRYINDEX, "mxr.test.name");
    t->test = lua_tostring(L, -1);
    t->test_failed = false;
    return 0;
}

/* __end(ok, err): count the test; an error that is not a failed check is
 * reported with its place. */
static int t_end(lua_State *L)
{
    tctx *t = ctx_of(L);
    bool ok = lua_toboolean(L, 1);
    const char *err = lua_tostring(L, 2);
    if (!ok && !t->test_failed)
        fprintf(stdout, "  FAIL %s: error: %s\n", t->test,
                err ? err : "(error object is not a string)");
    if (ok && !t->test_failed) {
        t->passed++;
        fprintf(stdout, "  ok   %s\n", t->test);
    } else {
        t->failed++;
    }
    t->test = NULL;
    t->test_failed = false;
    return 0;
}

/* -------------------------------------------------------------- files */

static void register_api(lua_State *L, tctx *t)
{
    static const luaL_Reg fns[] = {
        {"zone", t_zone},   {"policy", t_policy}, {"options", t_options},
        {"reset", t_reset}, {"route", t_route},   {"deliver", t_deliver},
        {"__fail", t_fail}, {"__begin", t_begin}, {"__end", t_end},
        {NULL, NULL}};
    lua_pushglobaltable(L);
    lua_pushlightuserdata(L, t);
    luaL_setfuncs(L, fns, 1);
    lua_pop(L, 1);
}

static lua_State *test_state(tctx *t)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                    {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},
                                    {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}};
    lua_State *L = luaL_newstate();
    if (!L)
        return NULL;
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    register_api(L, t);
    if (luaL_dostring(L, test_prelude) != LUA_OK) {
        cli_error("prelude: %s", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

static void set_dir(tctx *t, const char *file)
{
    const char *slash = strrchr(file, '/');
    if (!slash)
        snprintf(t->dir, sizeof t->dir, ".");
    else
        snprintf(t->dir, sizeof t->dir, "%.*s", (int)(slash - file), file);
}

/* Run one file; an error outside any test counts as one failure. Returns
 * 66 when the file cannot be read, else 0. */
static int run_file(const char *file, unsigned *passed, unsigned *failed)
{
    tctx t;
    memset(&t, 0, sizeof t);
    ctx_defaults(&t);
    t.file = file;
    set_dir(&t, file);
    if (cli_readable(NULL, file)) /* as every command reports its files */
        return EXIT_NOINPUT;
    lua_State *L = test_state(&t);
    if (!L)
        return EXIT_SOFTWARE;
    printf("%s\n", file);
    int rc = 0;
    int st = luaL_loadfilex(L, file, "t");
    if (st == LUA_ERRFILE) { /* it changed since: Lua's own words */
        fprintf(stderr, "mxroute test: %s\n", lua_tostring(L, -1));
        rc = EXIT_NOINPUT;
    } else if (st != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK) {
        const char *err = lua_tostring(L, -1);
        if (!err || strcmp(err, FAIL_MARK) != 0)
            printf("  FAIL (file): error: %s\n", err ? err : "?");
        t.failed++;
    }
    if (rc == 0 && t.passed + t.failed == 0) {
        /* A file without a test must not look green, even beside files
         * that have tests: it fails on its own, by name. */
        printf("  FAIL (file): no test ran\n");
        fprintf(stderr,
                "mxroute test: %s: no test ran (wrap checks in "
                "test(\"name\", function() ... end))\n",
                file);
        t.failed++;
    }
    *passed += t.passed;
    *failed += t.failed;
    lua_close(L);
    ctx_clear(&t);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mxroute test [--] FILE...\n\n"
                 "Run Lua policy test files offline (see docs/testing.md): "
                 "zone data inline,\npolicies with their configuration, "
                 "routes, scripted SMTP outcomes and\nassertions. Ends with "
                 "'N passed, N failed'.\n\n"
                 "exit status: 0 all passed, 1 a test failed or a file ran no "
                 "test,\n64 usage, 66 unreadable file.\n");
}

/* Only --help: anything else that looks like an option is a mistake (a
 * file named so goes after "--"). Returns 0, -1 after --help, or 64. */
static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c != 'h')
            return cli_try_help(); /* getopt said what was wrong */
        usage(stdout);
        return -1;
    }
    if (optind == argc)
        return cli_usage_error("give at least one FILE");
    return 0;
}

int cmd_test(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    unsigned passed = 0, failed = 0;
    for (int i = optind; i < argc; i++) {
        int r = run_file(argv[i], &passed, &failed);
        rc = r ? r : rc;
    }
    printf("%u passed, %u failed\n", passed, failed);
    if (rc)
        return rc;
    return failed ? 1 : EXIT_OK;
}
