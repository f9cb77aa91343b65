/* test_lua_tables.c -- plans as Lua tables (mxroute/lua.h): the fields a
 * plan, a candidate and a skipped host get, a missing label and input,
 * and that the same function serves a plan the router made. */
#include "support.h"

#include "mxroute/lua.h"

#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

static const char zone[] = "$ORIGIN lua.test.\n"
                           "@ 300 SOA ns hostmaster 1 3600 600 86400 300\n"
                           "@ 300 NS ns\n"
                           "ns 300 A 192.0.2.53\n"
                           "@ 300 MX 10 mx1\n"
                           "@ 300 MX 20 192.0.2.9.\n"
                           "mx1 300 A 192.0.2.1\n"
                           "mx1 300 AAAA 2001:db8::1\n";

static mxr_plan *route(const char *input)
{
    mxr_options *o;
    mxr_engine *e;
    mxr_plan *p = NULL;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    assert_int_equal(mxr_options_add_zone_text(o, "lua.test", zone), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_SEED, 1), MXR_OK);
    assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
    mxr_options_free(o);
    assert_int_equal(mxr_route_sync(e, input, &p), MXR_OK);
    mxr_engine_destroy(e); /* the plan outlives its engine */
    return p;
}

/* Run chunk with the table on top of L as its argument; it must return
 * true. */
static void check(lua_State *L, const char *chunk)
{
    if (luaL_loadstring(L, chunk) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    if (!lua_toboolean(L, -1))
        fail_msg("false: %s", chunk);
    lua_pop(L, 1);
}

static void test_plan_table(void **state)
{
    mxr_plan *p = route("user@lua.test");
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    mxr_lua_push_plan(L, "user@lua.test", p);
    check(L, "local t = ...; return t.input == 'user@lua.test' and "
             "t.domain == 'lua.test' and t.status == 'ok' and "
             "t.reason == nil and t.implicit == false and t.ttl == 300 and "
             "t.mx_ttl == 300 and #t.candidates == 1 and #t.skipped == 1");
    check(L, "local c = (...).candidates[1]; return c.host == 'mx1.lua.test' "
             "and c.preference == 10 and c.port == 25 and c.source == 'mx' "
             "and c.tls == false and c.label == nil and c.ttl == 300 and "
             "#c.addresses == 2 and #c.notes == 0");
    check(L, "local s = (...).skipped[1]; return s.host == '192.0.2.9' "
             "and s.preference == 20 and s.reason == 'ip-literal'");
    lua_close(L);
    mxr_plan_free(p);
}

static void test_failed_plan_and_no_input(void **state)
{
    mxr_plan *p = route("nowhere.lua.test");
    lua_State *L = luaL_newstate();
    mxr_lua_push_plan(L, NULL, p);
    check(L, "local t = ...; return t.input == nil and "
             "t.status == 'permfail' and t.reason == 'nxdomain' and "
             "#t.candidates == 0");
    lua_close(L);
    mxr_plan_free(p);
}

/* A label is there when it says something: NULL and "" both leave it out,
 * as a plan and a plan being edited spell "no label". */
static void test_candidate_label(void **state)
{
    mxr_addr a = {0};
    mxr_candidate c = {.host = "relay.lua.test",
                       .preference = 5,
                       .port = 587,
                       .source = MXR_SOURCE_POLICY,
                       .tls_required = true,
                       .addrs = &a,
                       .naddrs = 0,
                       .label = ""};
    lua_State *L = luaL_newstate();
    mxr_lua_push_candidate(L, &c);
    check(L, "local c = ...; return c.label == nil and c.tls == true and "
             "c.port == 587 and c.source == 'policy'");
    lua_pop(L, 1);
    c.label = "relay";
    mxr_lua_push_candidate(L, &c);
    check(L, "return (...).label == 'relay'");
    lua_pop(L, 1);
    lua_newtable(L);
    mxr_lua_set_string(L, "gone", NULL);
    mxr_lua_set_integer(L, "n", -7);
    mxr_lua_set_boolean(L, "b", 1);
    check(L, "local t = ...; return t.gone == nil and t.n == -7 and t.b");
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_table),
        cmocka_unit_test(test_failed_plan_and_no_input),
        cmocka_unit_test(test_candidate_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
