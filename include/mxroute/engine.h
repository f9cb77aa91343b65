/*
 * mxroute/engine.h -- the engine: lifetime, routing calls, the event
 * loop and statistics.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * Ownership and callback contract
 *  - A call that returns an error never fires its callback.
 *  - A call that returned MXR_OK fires its callback exactly once, from inside
 *    mxr_engine_process (never from inside the call that queued it), or from
 *    mxr_engine_destroy with status MXR_EDESTROYED.
 *  - A plan handed to a callback belongs to the callee: release it with
 *    mxr_plan_free. It is NULL when the status is not MXR_OK.
 *  - Engines are not thread-safe: use one engine per thread. The library
 *    keeps no global mutable state.
 *
 * Lifetimes
 *  - Options: copied by mxr_engine_new; free them right after it.
 *  - Plans: self-contained; they outlive the engine (mxroute/plan.h).
 *  - Attempts (mxroute/failover.h): must be freed before their engine is
 *    destroyed; an attempt holds a pointer to the engine's memory, and
 *    mxr_attempt_free after mxr_engine_destroy reads freed memory.
 *  - mxr_send: its done callback fires exactly once, also from
 *    mxr_engine_destroy (MXR_EDESTROYED), where the attempt is freed.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_ENGINE_H
#define MXROUTE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mxroute/options.h"
#include "mxroute/plan.h"
#include "mxroute/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mxr_engine mxr_engine;

/* On failure the reason is in mxr_options_errmsg(opts). The options are
 * copied: they may be freed or reused once this returns. */
MXR_EXTERN mxr_status mxr_engine_new(mxr_options *opts, mxr_engine **out);
/* Fires every pending callback once with MXR_EDESTROYED, then frees.
 * Plans handed out stay valid (free them when you like). Every attempt
 * made on this engine must be freed before: one freed after reads the
 * engine's freed memory (undefined behaviour; ASan reports it). NULL is
 * ignored. */
MXR_EXTERN void mxr_engine_destroy(mxr_engine *engine);

/* Detail of the last synchronous error on this engine ("label over 63
 * octets", ...). Valid until the next call on the engine. */
MXR_EXTERN const char *mxr_engine_errmsg(const mxr_engine *engine);

typedef void (*mxr_route_cb)(void *arg, mxr_status status, mxr_plan *plan);

/* Route a domain or an address ("user@example.com", "[192.0.2.1]").
 * Invalid input returns MXR_EBADNAME with a message in mxr_engine_errmsg. */
MXR_EXTERN mxr_status mxr_route(mxr_engine *engine, const char *input,
                                mxr_route_cb cb, void *arg);

/* Blocking convenience: route and wait (runs the engine's own poll loop). */
MXR_EXTERN mxr_status mxr_route_sync(mxr_engine *engine, const char *input,
                                     mxr_plan **out);

/* Event-loop integration. */
#define MXR_WANT_READ 0x1
#define MXR_WANT_WRITE 0x2
/* Frozen layout: mxr_engine_fds fills an array of these, so its size
 * never changes within a soname (more about a descriptor would come
 * through a new function). */
typedef struct mxr_sock {
    int fd;
    int want; /* MXR_WANT_* */
} mxr_sock;

/* Fill up to max descriptors to watch; returns how many there are. */
MXR_EXTERN size_t mxr_engine_fds(mxr_engine *engine, mxr_sock *out, size_t max);
/* Milliseconds until mxr_engine_process must be called even without
 * events: 0 = now, -1 = nothing pending. */
MXR_EXTERN int mxr_engine_timeout(mxr_engine *engine);
/* Handle events (MXR_NOFD when there is none of that kind), expire
 * timeouts and fire completed callbacks. */
#define MXR_NOFD (-1)
MXR_EXTERN void mxr_engine_process(mxr_engine *engine, int read_fd,
                                   int write_fd);
/* Run until no request is pending or timeout_ms passes (-1 = no bound).
 * Returns the number of requests still pending. */
MXR_EXTERN size_t mxr_engine_run(mxr_engine *engine, int timeout_ms);
/* One round of the engine's own poll loop, for a program that has nothing
 * else to watch but wants control back between rounds (to feed more
 * requests): wait for the engine's descriptors at most max_ms (-1: as long
 * as the engine's timeout says, at most a second), then process. MXR_OK,
 * or MXR_ENOMEM when the descriptor list could not be built (the engine's
 * error message says so). */
MXR_EXTERN mxr_status mxr_engine_run_once(mxr_engine *engine, int max_ms);
/* Descriptors of the program's own in the engine's loop: a listener, its
 * clients, an HTTP server. A source registers its operations once and
 * tells the engine which descriptors to watch; the engine's loop
 * (mxr_engine_fds/timeout/process, mxr_engine_run_once) then serves them
 * beside its own DNS and SMTP sockets, and hands each ready descriptor to
 * process() with the fd_ud given when it was watched.
 *
 * timeout: ms until process() must run with nothing ready (at most
 *   max_ms), -1 when the source waits for nothing; NULL: always -1.
 * process: fd ready (readable/writable), or fd MXR_NOFD and fd_ud NULL for
 *   a round in which none of the source's descriptors was ready.
 * shutdown: the engine is being destroyed: called once, after the
 *   engine's own requests have ended (their callbacks fired with
 *   MXR_EDESTROYED); NULL: nothing to do. The engine then unwatches and
 *   frees the source: do not call mxr_io_remove after it.
 * Callbacks may call mxr_route and mxr_io_watch; a source may remove
 * itself from process(). */
typedef struct mxr_io mxr_io;
typedef struct mxr_io_ops {
    int (*timeout)(void *ud, int max_ms);
    void (*process)(void *ud, int fd, void *fd_ud, bool readable,
                    bool writable);
    void (*shutdown)(void *ud);
} mxr_io_ops;

/* ops must outlive the source. MXR_EINVAL without ops->process. */
MXR_EXTERN mxr_status mxr_engine_add_io(mxr_engine *engine,
                                        const mxr_io_ops *ops, void *ud,
                                        mxr_io **out);
/* Watch fd for want (MXR_WANT_*; 0: no longer), handing fd_ud back with
 * its events. The socket-state callback hears of each change, as of the
 * engine's own descriptors. MXR_ENOMEM when the engine's descriptor table
 * cannot grow (nothing is watched then), MXR_EINVAL for a negative fd. */
MXR_EXTERN mxr_status mxr_io_watch(mxr_io *io, int fd, int want, void *fd_ud);
/* Unwatch every descriptor of the source and free it (not its ud). */
MXR_EXTERN void mxr_io_remove(mxr_io *io);

/* Requests accepted whose callback has not fired yet. */
MXR_EXTERN size_t mxr_engine_pending(const mxr_engine *engine);

/* Engine statistics. Size-versioned: fields may be added at the end
 * (never removed or moved), and a field added later reads 0 from a
 * library that predates it. Read them with mxr_engine_stats. */
typedef struct mxr_stats {
    uint64_t routes;            /* route requests accepted */
    uint64_t plan_hits;         /* answered from a cached plan */
    uint64_t queries_sent;      /* DNS queries issued by the backend */
    uint64_t queries_coalesced; /* lookups that joined a query in flight */
    uint64_t cache_hits;        /* lookups answered from the record cache */
    uint64_t cache_evictions;
    size_t cache_entries;
    size_t cache_bytes;
    size_t inflight;        /* DNS queries in flight now */
    size_t inflight_max;    /* highest ever */
    size_t bytes_allocated; /* by the engine's allocator, now */
    uint64_t policy_calls;  /* hook calls */
    uint64_t policy_errors; /* hook calls stopped (error, budget, ...) */
    /* since 0.2.0's mxroute serve metrics */
    uint64_t queries_timed_out;   /* DNS queries that got no answer in time */
    uint64_t policy_budget_kills; /* hook calls stopped by their instruction
                                     or time budget (also policy_errors) */
} mxr_stats;

/* Fill the size bytes at out (size: the caller's sizeof(mxr_stats)) and
 * never more: the first min(size, the library's sizeof(mxr_stats)) bytes
 * with statistics, the rest of the size bytes with zeros. Returns how
 * many bytes hold statistics; 0 (nothing written) when engine or out is
 * NULL. */
MXR_EXTERN size_t mxr_engine_stats_sized(const mxr_engine *engine,
                                         mxr_stats *out, size_t size);
/* mxr_engine_stats(engine, &stats): the sized call with the size of the
 * mxr_stats this program was compiled with. */
#define mxr_engine_stats(engine, out)                                          \
    mxr_engine_stats_sized((engine), (out), sizeof(mxr_stats))

/* Replace the engine's policies with those listed in opts (and their
 * budgets). If any fails to load, the old policies stay and the reason is
 * in mxr_options_errmsg(opts). Hooks already running finish with the old
 * policies. */
MXR_EXTERN mxr_status mxr_engine_load_policies(mxr_engine *engine,
                                               mxr_options *opts);

/* The engine's clock, for callers that schedule with it. */
MXR_EXTERN uint64_t mxr_engine_now(const mxr_engine *engine);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_ENGINE_H */
