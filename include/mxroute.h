/*
 * mxroute.h -- the public API of libmxroute: the one header to include.
 *
 * libmxroute answers, for an outgoing message, which servers to try and in
 * what order (RFC 5321 section 5.1, RFC 7505). It owns no event loop: the
 * embedder asks which descriptors to watch (mxr_engine_fds or a socket-state
 * callback), how long to wait (mxr_engine_timeout) and hands events back
 * (mxr_engine_process), the way c-ares does.
 *
 * The declarations live in focused headers under mxroute/, each of which
 * compiles alone; include this one:
 *   mxroute/version.h   version macros, MXR_EXTERN
 *   mxroute/status.h    mxr_status, mxr_strerror
 *   mxroute/plan.h      addresses and their classes, candidates, plans,
 *                       results, reasons, sources, notes
 *   mxroute/options.h   options, families, TLS modes, callbacks
 *   mxroute/engine.h    engine lifetime, routing, the event loop, stats
 *   mxroute/failover.h  stages, classes, actions, rules, attempts, hops,
 *                       outcomes, recipients
 *   mxroute/send.h      mxr_send (the SMTP client) and its events
 * One more is opt-in, not included here: mxroute/lua.h (plans as Lua
 * tables), for programs that run Lua themselves, after <lua.h>.
 *
 * Ownership and callback contract (mxroute/engine.h has the full text)
 *  - A call that returns an error never fires its callback.
 *  - A call that returned MXR_OK fires its callback exactly once, from inside
 *    mxr_engine_process (never from inside the call that queued it), or from
 *    mxr_engine_destroy with status MXR_EDESTROYED.
 *  - A plan handed to a callback belongs to the callee: release it with
 *    mxr_plan_free. It is NULL when the status is not MXR_OK.
 *  - Engines are not thread-safe: use one engine per thread. The library
 *    keeps no global mutable state.
 *
 * Lifetimes: options may be freed right after mxr_engine_new; a plan
 * outlives its engine; an attempt does not (free it first); mxr_send's
 * done callback fires exactly once, also on destroy.
 *
 * Compatibility: every public enum is append-only (values never change
 * meaning; new ones are added at the end, and there are no "count"
 * values); structs the library fills into caller memory (mxr_stats,
 * mxr_hop) are size-versioned, so a newer library never writes past a
 * caller's struct; CHANGES.md lists what changed between versions.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_H
#define MXROUTE_H

#include "mxroute/version.h"
#include "mxroute/status.h"
#include "mxroute/plan.h"
#include "mxroute/options.h"
#include "mxroute/engine.h"
#include "mxroute/failover.h"
#include "mxroute/send.h"

#endif /* MXROUTE_H */
