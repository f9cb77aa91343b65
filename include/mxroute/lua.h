/*
 * mxroute/lua.h -- plans as Lua 5.4 tables, for embedders that run Lua
 * themselves. Policies, the plan object's plan:candidates() and the
 * `mxroute test` runner all build their tables with these functions, so a
 * script sees the same fields wherever it meets a plan (docs/lua-api.md).
 *
 * Not included by mxroute.h: include it after <lua.h> where Lua is used.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_LUA_H
#define MXROUTE_LUA_H

#include <lua.h>
#include <mxroute.h>

#ifdef __cplusplus
extern "C" {
#endif

/* t[k] = v on the table on top of the stack; a NULL v sets nothing. */
MXR_EXTERN void mxr_lua_set_string(lua_State *L, const char *k,
                                   const char *v);
MXR_EXTERN void mxr_lua_set_integer(lua_State *L, const char *k,
                                    lua_Integer v);
MXR_EXTERN void mxr_lua_set_boolean(lua_State *L, const char *k, int v);

/* Push {host, preference, port, source, tls, label (when it has one),
 * ttl, addresses = {text, ...}, notes = {word, ...}}. */
MXR_EXTERN void mxr_lua_push_candidate(lua_State *L, const mxr_candidate *c);
/* Push {host, preference, reason}. */
MXR_EXTERN void mxr_lua_push_skipped(lua_State *L, const mxr_skipped *s);
/* Push {input, domain, status, reason (unless ok), implicit, ttl, mx_ttl,
 * candidates = {...}, skipped = {...}}; input may be NULL. */
MXR_EXTERN void mxr_lua_push_plan(lua_State *L, const char *input,
                                  const mxr_plan *p);

#ifdef __cplusplus
}
#endif

#endif
