/* lua_tables.c -- plans as Lua tables (include/mxroute/lua.h): the one set
 * of field setters and candidate pushers behind policies' event tables, the
 * plan object's copies and `mxroute test`. Callers run them where a Lua
 * error is allowed (a protected call or a Lua-facing function): table
 * creation can raise "not enough memory". */
#include "mxroute.h"
#include "mxroute/lua.h"

void mxr_lua_set_string(lua_State *L, const char *k, const char *v)
{
    if (!v)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

void mxr_lua_set_integer(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

void mxr_lua_set_boolean(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

static void push_addrs(lua_State *L, const mxr_addr *a, size_t n)
{
    char buf[MXR_ADDR_STRLEN];
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, mxr_addr_format(&a[i], buf, sizeof buf));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void push_notes(lua_State *L, uint32_t notes)
{
    lua_newtable(L);
    int n = 0;
    for (uint32_t bit = 1; bit && bit <= notes; bit <<= 1)
        if ((notes & bit) && mxr_note_name(bit)) {
            lua_pushstring(L, mxr_note_name(bit));
            lua_rawseti(L, -2, ++n);
        }
}

void mxr_lua_push_candidate(lua_State *L, const mxr_candidate *c)
{
    lua_createtable(L, 0, 9);
    mxr_lua_set_string(L, "host", c->host);
    mxr_lua_set_integer(L, "preference", c->preference);
    mxr_lua_set_integer(L, "port", c->port);
    mxr_lua_set_string(L, "source", mxr_source_name(c->source));
    mxr_lua_set_boolean(L, "tls", c->tls_required);
    /* No label is NULL in a plan and "" in a plan being edited: either way
     * the field is absent, so scripts test `c.label` alone. */
    if (c->label && c->label[0])
        mxr_lua_set_string(L, "label", c->label);
    mxr_lua_set_integer(L, "ttl", c->ttl);
    push_addrs(L, c->addrs, c->naddrs);
    lua_setfield(L, -2, "addresses");
    push_notes(L, c->notes);
    lua_setfield(L, -2, "notes");
}

void mxr_lua_push_skipped(lua_State *L, const mxr_skipped *s)
{
    lua_createtable(L, 0, 3);
    mxr_lua_set_string(L, "host", s->host);
    mxr_lua_set_integer(L, "preference", s->preference);
    mxr_lua_set_string(L, "reason", mxr_reason_name(s->reason));
}

void mxr_lua_push_plan(lua_State *L, const char *input, const mxr_plan *p)
{
    lua_createtable(L, 0, 10);
    mxr_lua_set_string(L, "input", input);
    mxr_lua_set_string(L, "domain", p->domain);
    mxr_lua_set_string(L, "status", mxr_result_name(p->result));
    if (p->result != MXR_RESULT_OK)
        mxr_lua_set_string(L, "reason", mxr_reason_name(p->reason));
    mxr_lua_set_boolean(L, "implicit", p->implicit);
    mxr_lua_set_integer(L, "ttl", p->ttl);
    mxr_lua_set_integer(L, "mx_ttl", p->mx_ttl);
    lua_createtable(L, (int)p->ncandidates, 0);
    for (size_t i = 0; i < p->ncandidates; i++) {
        mxr_lua_push_candidate(L, &p->candidates[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "candidates");
    lua_createtable(L, (int)p->nskipped, 0);
    for (size_t i = 0; i < p->nskipped; i++) {
        mxr_lua_push_skipped(L, &p->skipped[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "skipped");
}
