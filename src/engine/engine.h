/* engine.h -- the engine's internals shared by engine.c, options.c,
 * lookup.c and route.c. Not part of the public API. */
#ifndef MXR_ENGINE_H
#define MXR_ENGINE_H

#include "dns/cache.h"
#include "dns/backend.h"
#include "deliver/health.h"
#include "policy/policy.h"
#include "deliver/rules.h"
#include "plan/order.h"
#include "base/rng.h"

struct mxr_options {
    int64_t v[MXR_OPT_COUNT_];
    char **servers;
    size_t nservers;
    mxr__zone_source *zones; /* name and text owned */
    size_t nzones;
    char **local_names;
    size_t nlocal_names;
    mxr_alloc_fn alloc;
    void *alloc_ud;
    mxr_clock_fn clock;
    void *clock_ud;
    mxr_sock_fn sock;
    void *sock_ud;
    mxr_rules default_rules;
    mxr__domain_rules *rules;
    size_t nrules;
    mxr__policy_src *policies;
    size_t npolicies;
    mxr_log_fn log;
    void *log_ud;
    char *helo;   /* EHLO name, NULL for the default */
    char *tls_ca; /* trust anchors for MXR_TLS_VERIFY, or NULL */
    char err[256];
};

/* A callback to run from mxr_engine_process, never from inside the call
 * that scheduled it (the callback contract in mxroute.h). */
typedef void (*mxr__deferred_fn)(mxr_engine *e, void *p1, void *p2, void *p3);
typedef struct mxr__deferred {
    mxr__deferred_fn fn;
    void *p1, *p2, *p3;
} mxr__deferred;

typedef struct mxr__pq mxr__pq; /* a DNS query in flight (lookup.c) */
typedef struct mxr__smtp mxr__smtp;   /* an SMTP session (smtp_session.c) */
typedef struct mxr__send mxr__send;   /* an mxr_send in progress (send.c) */
typedef struct mxr__tls_ctx mxr__tls_ctx;
typedef struct mxr__route mxr__route;

struct mxr_engine {
    mxr__alloc a;
    int64_t v[MXR_OPT_COUNT_];
    mxr_clock_fn clock;
    void *clock_ud;
    mxr__backend *backend;
    mxr__cache *cache;
    mxr__rng rng;
    mxr__order_config order;
    mxr_rules default_rules;
    mxr__domain_rules *rules; /* per domain, engine-owned copies */
    size_t nrules;
    mxr__health *health;
    mxr__policies *policies; /* NULL when none */
    mxr_log_fn log;
    void *log_ud;
    mxr_sock_fn sock_cb;
    void *sock_ud;
    /* SMTP: sessions open, sends in progress, TLS made on first use */
    char *helo;
    char *tls_ca;
    mxr__tls_ctx *tls_ctx;
    mxr__smtp *smtp;
    uint64_t smtp_due; /* no session deadline before this (a lower bound):
                          sessions are swept only when it has passed */
    mxr__send *sends;
    /* lookups: pending queries by (name, type), and those over the window */
    mxr__pq **pq_table;
    size_t pq_buckets, pq_count;
    mxr__pq *waitq_head, *waitq_tail;
    size_t inflight;
    /* deferred callbacks, a growable ring */
    mxr__deferred *defq;
    size_t defq_cap, defq_head, defq_len;
    /* route jobs waiting on DNS, for destroy */
    mxr__route *routes;
    size_t pending; /* accepted requests whose callback has not fired */
    bool destroying;
    mxr_stats stats;
    char err[256];
};

uint64_t mxr__now_ms(const mxr_engine *e);
int mxr__defer(mxr_engine *e, mxr__deferred_fn fn, void *p1, void *p2,
               void *p3);
/* Make sure the next mxr__defer cannot fail (0), or -1 when out of memory:
 * lets a call fail cleanly up front instead of calling back from inside. */
int mxr__defer_reserve(mxr_engine *e);
void mxr__set_error(mxr_engine *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* lookup.c: answers through the cache, one query per (name, type) in
 * flight, at most MXR_OPT_MAX_INFLIGHT queries sent at once. The callback
 * fires exactly once, from mxr_engine_process; ans is valid during the call
 * and ttl is what remains of its (clamped) TTL. */
typedef void (*mxr__lookup_cb)(void *arg, const mxr__answer *ans,
                               uint32_t ttl);
int mxr__lookup(mxr_engine *e, const char *name, uint16_t qtype,
                mxr__lookup_cb cb, void *arg);
int mxr__lookup_init(mxr_engine *e);
/* Fail every query not yet sent (engine teardown). */
void mxr__lookup_cancel_waiting(mxr_engine *e);
void mxr__lookup_free(mxr_engine *e);

/* The engine's TLS context, made on first use; NULL with err on failure. */
mxr__tls_ctx *mxr__engine_tls_ctx(mxr_engine *e, char *err, size_t errlen);

/* attempt.c, for send.c */
const char *mxr__attempt_sender(const mxr_attempt *a);
mxr_engine *mxr__attempt_engine(const mxr_attempt *a);

/* send.c: finish every mxr_send with MXR_EDESTROYED (engine teardown). */
void mxr__send_abort_all(mxr_engine *e);

/* route.c */
mxr_status mxr__route_start(mxr_engine *e, const char *input,
                            mxr_route_cb cb, void *arg);
void mxr__route_abort_all(mxr_engine *e);

#endif
