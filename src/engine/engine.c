/* engine.c -- the engine: assembles the subsystems from the options, owns
 * them, tears them down in order, and carries the public entry points
 * that take an engine. The event loop itself is the core's (core/core.h):
 * each subsystem with descriptors registered there as an I/O source. */
#include "engine/engine.h"
#include "base/addr.h"
#include "base/name.h"
#include "base/text.h"
#include "core/core.h"
#include "deliver/deliver.h"
#include "dns/cache.h"
#include "dns/lookup.h"
#include "plan/order.h"
#include "route/route.h"
#include "smtp/session.h"

#include <stdio.h>
#include <string.h>

struct mxr_engine {
    mxr__core core; /* first: allocator, clock, loop, errors */
    mxr__rng rng;
    mxr__order_config order;
    mxr__cache *cache; /* DNS answers and finished plans */
    mxr__backend *backend;
    mxr__lookups *dns;
    mxr__policy_env policy_env;
    mxr__policies *policies; /* NULL when none; swapped by a reload */
    mxr__router *router;
    mxr__smtp_pool *smtp;
    mxr__deliver deliver;
};

const char *mxr_engine_errmsg(const mxr_engine *e)
{
    return e ? e->core.err : "no engine";
}

uint64_t mxr_engine_now(const mxr_engine *e)
{
    return mxr__core_now(&e->core);
}

/* ------------------------------------------------------------- assembly */

static mxr_status order_config_init(mxr_engine *e, const mxr_options *o)
{
    mxr__order_config *c = &e->order;
    c->family = (mxr_family)o->v[MXR_OPT_FAMILY];
    c->allow_loopback = o->v[MXR_OPT_ALLOW_LOOPBACK] != 0;
    c->deny_private = o->v[MXR_OPT_DENY_PRIVATE] != 0;
    c->max_hosts = (size_t)o->v[MXR_OPT_MAX_HOSTS];
    c->max_addrs_per_host = (size_t)o->v[MXR_OPT_MAX_ADDRS_PER_HOST];
    c->max_addrs_total = (size_t)o->v[MXR_OPT_MAX_ADDRS_TOTAL];
    size_t n = o->nlocal_names;
    const char **names = mxr__calloc(&e->core.a, n + 1, sizeof *names);
    mxr_addr *addrs = mxr__calloc(&e->core.a, n + 1, sizeof *addrs);
    c->local_names = names;
    c->local_addrs = addrs;
    if (!names || !addrs)
        return MXR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (mxr__addr_parse(o->local_names[i], &addrs[c->nlocal_addrs]))
            c->nlocal_addrs++;
        else if (!(names[c->nlocal_names++] =
                       mxr__strdup(&e->core.a, o->local_names[i])))
            return MXR_ENOMEM;
    }
    return MXR_OK;
}

static void order_config_free(mxr_engine *e)
{
    for (size_t i = 0; i < e->order.nlocal_names; i++)
        mxr__free(&e->core.a, (void *)e->order.local_names[i]);
    mxr__free(&e->core.a, (void *)e->order.local_names);
    mxr__free(&e->core.a, (void *)e->order.local_addrs);
}

static char *servers_csv(mxr_engine *e, const mxr_options *o)
{
    size_t len = 1;
    for (size_t i = 0; i < o->nservers; i++)
        len += strlen(o->servers[i]) + 1;
    char *csv = mxr__calloc(&e->core.a, 1, len);
    for (size_t i = 0; csv && i < o->nservers; i++) {
        if (i)
            strcat(csv, ",");
        strcat(csv, o->servers[i]);
    }
    return csv;
}

/* Zones mean offline; otherwise c-ares on the given servers (or the
 * system's resolv.conf when none are given). */
static mxr_status backend_init(mxr_engine *e, const mxr_options *o)
{
    char *err = e->core.err;
    size_t errlen = sizeof e->core.err;
    if (o->nzones > 0)
        return mxr__zone_new(o->zones, o->nzones, &e->core, &e->backend, err,
                             errlen);
    char *csv = o->nservers ? servers_csv(e, o) : NULL;
    if (o->nservers && !csv)
        return MXR_ENOMEM;
    mxr__ares_config cfg = {
        .servers_csv = csv,
        .timeout_ms = (int)o->v[MXR_OPT_TIMEOUT_MS],
        .tries = (int)o->v[MXR_OPT_TRIES],
    };
    mxr_status st = mxr__ares_new(&cfg, &e->core, &e->backend, err, errlen);
    mxr__free(&e->core.a, csv);
    return st;
}

static mxr_status dns_init(mxr_engine *e, const mxr_options *o)
{
    e->cache =
        mxr__cache_new(&e->core.a, (size_t)o->v[MXR_OPT_CACHE_MAX_BYTES]);
    if (!e->cache)
        return MXR_ENOMEM;
    mxr_status st = backend_init(e, o);
    if (st != MXR_OK)
        return st;
    mxr__lookup_config cfg = {
        .ttl_min = o->v[MXR_OPT_TTL_MIN],
        .ttl_max = o->v[MXR_OPT_TTL_MAX],
        .neg_ttl_max = o->v[MXR_OPT_NEG_TTL_MAX],
        .tempfail_ttl = o->v[MXR_OPT_TEMPFAIL_TTL],
        .max_inflight = (size_t)o->v[MXR_OPT_MAX_INFLIGHT],
        .max_mx_records = (size_t)o->v[MXR_OPT_MAX_MX_RECORDS],
    };
    e->dns = mxr__lookups_new(&e->core, e->backend, e->cache, &cfg);
    return e->dns ? MXR_OK : MXR_ENOMEM;
}

static mxr__policy_limits policy_limits(const mxr_options *o)
{
    return (mxr__policy_limits){
        .max_instructions = (uint64_t)o->v[MXR_OPT_POLICY_MAX_INSTRUCTIONS],
        .max_ms = (uint32_t)o->v[MXR_OPT_POLICY_MAX_MS],
        .max_memory = (size_t)o->v[MXR_OPT_POLICY_MAX_MEMORY],
        .defer_on_error = o->v[MXR_OPT_POLICY_ON_ERROR] != 0,
    };
}

static mxr_status policies_init(mxr_engine *e, const mxr_options *o)
{
    e->policy_env = (mxr__policy_env){
        .core = &e->core,
        .dns = e->dns,
        .family = (mxr_family)o->v[MXR_OPT_FAMILY],
        .port = (uint16_t)o->v[MXR_OPT_PORT],
        .seed = o->v[MXR_OPT_SEED],
    };
    if (o->npolicies == 0)
        return MXR_OK;
    mxr__policy_limits lim = policy_limits(o);
    return mxr__policies_load(&e->policy_env, o->policies, o->npolicies, &lim,
                              &e->policies, e->core.err, sizeof e->core.err);
}

static mxr_status router_init(mxr_engine *e, const mxr_options *o)
{
    mxr__router_config cfg = {
        .family = (mxr_family)o->v[MXR_OPT_FAMILY],
        .port = (uint16_t)o->v[MXR_OPT_PORT],
        .max_pending = (size_t)o->v[MXR_OPT_MAX_PENDING],
    };
    e->router = mxr__router_new(&e->core, e->dns, e->cache, &e->policies,
                                &e->rng, &e->order, &cfg);
    return e->router ? MXR_OK : MXR_ENOMEM;
}

static mxr_status delivery_init(mxr_engine *e, const mxr_options *o)
{
    const int64_t *v = o->v;
    mxr__smtp_config sc = {
        .helo = o->helo,
        .tls_ca = o->tls_ca,
        .connect_ms = v[MXR_OPT_SMTP_CONNECT_MS],
        .greeting_ms = v[MXR_OPT_SMTP_GREETING_MS],
        .tls_ms = v[MXR_OPT_SMTP_TLS_MS],
        .command_ms = v[MXR_OPT_SMTP_COMMAND_MS],
        .data_ms = v[MXR_OPT_SMTP_DATA_MS],
        .block_ms = v[MXR_OPT_SMTP_BLOCK_MS],
        .dot_ms = v[MXR_OPT_SMTP_DOT_MS],
        .max_reply = (size_t)v[MXR_OPT_SMTP_MAX_REPLY],
    };
    if (!(e->smtp = mxr__smtp_pool_new(&e->core, &sc)))
        return MXR_ENOMEM;
    mxr__deliver_config dc = {
        .default_rules = &o->default_rules,
        .rules = o->rules,
        .nrules = o->nrules,
        .health_max_bytes = (size_t)v[MXR_OPT_HEALTH_MAX_BYTES],
        .tls = (mxr_tls_mode)v[MXR_OPT_SMTP_TLS],
    };
    return mxr__deliver_init(&e->deliver, &e->core, &e->policies, &e->rng,
                             e->smtp, &dc);
}

static mxr_status engine_init(mxr_engine *e, const mxr_options *o)
{
    if (o->v[MXR_OPT_TTL_MIN] > o->v[MXR_OPT_TTL_MAX]) {
        mxr__core_error(
            &e->core, "TTL minimum %lld is above the TTL maximum %lld",
            (long long)o->v[MXR_OPT_TTL_MIN], (long long)o->v[MXR_OPT_TTL_MAX]);
        return MXR_EINVAL;
    }
    if (o->v[MXR_OPT_SEED] >= 0)
        mxr__rng_seed(&e->rng, (uint64_t)o->v[MXR_OPT_SEED]);
    else
        mxr__rng_seed_random(&e->rng);
    mxr_status st = order_config_init(e, o);
    if (st == MXR_OK)
        st = dns_init(e, o);
    if (st == MXR_OK)
        st = policies_init(e, o);
    if (st == MXR_OK)
        st = router_init(e, o);
    if (st == MXR_OK)
        st = delivery_init(e, o);
    return st;
}

mxr_status mxr_engine_new(mxr_options *o, mxr_engine **out)
{
    mxr__alloc a;
    if (!o || !out)
        return MXR_EINVAL;
    mxr__alloc_init(&a, o->alloc, o->alloc_ud);
    mxr_engine *e = mxr__calloc(&a, 1, sizeof *e);
    if (!e)
        return MXR_ENOMEM;
    mxr__core_init(&e->core, &a, o->clock, o->clock_ud, o->sock, o->sock_ud);
    e->core.log = o->log;
    e->core.log_ud = o->log_ud;
    mxr_status st = engine_init(e, o);
    if (st != MXR_OK) {
        snprintf(o->err, sizeof o->err, "%s",
                 e->core.err[0] ? e->core.err : mxr_strerror(st));
        mxr_engine_destroy(e);
        return st;
    }
    *out = e;
    return MXR_OK;
}

/* Teardown, in the order the callback contract needs: no new work, the
 * DNS first (its callbacks end the routes waiting on it), then what the
 * queue holds (a send may wait there), the routes and sends left, and the
 * remaining I/O sources. Every accepted callback fires once. */
void mxr_engine_destroy(mxr_engine *e)
{
    if (!e)
        return;
    e->core.destroying = true;
    if (e->dns)
        mxr__lookups_cancel_waiting(e->dns);
    if (e->backend)
        e->backend->io.ops->shutdown(&e->backend->io);
    mxr__core_drain(&e->core);
    if (e->router)
        mxr__router_abort_all(e->router);
    if (e->deliver.core)
        mxr__send_abort_all(&e->deliver);
    mxr__core_shutdown(&e->core);
    if (e->backend)
        e->backend->ops->destroy(e->backend);
    mxr__smtp_pool_free(e->smtp);
    mxr__deliver_free(&e->deliver);
    mxr__router_free(e->router);
    mxr__policies_unref(e->policies);
    mxr__lookups_free(e->dns);
    mxr__cache_free(e->cache);
    order_config_free(e);
    mxr__core_free(&e->core);
    mxr__alloc a = e->core.a;
    mxr__free(&a, e);
}

mxr_status mxr_engine_load_policies(mxr_engine *e, mxr_options *o)
{
    if (!e || !o)
        return MXR_EINVAL;
    mxr__policies *set = NULL;
    mxr__policy_limits lim = policy_limits(o);
    mxr_status st =
        o->npolicies == 0
            ? MXR_OK
            : mxr__policies_load(&e->policy_env, o->policies, o->npolicies,
                                 &lim, &set, o->err, sizeof o->err);
    if (st != MXR_OK)
        return st; /* the old policies stay */
    mxr__policies_unref(e->policies);
    e->policies = set;
    return MXR_OK;
}

/* ------------------------------------------------------- the event loop */

size_t mxr_engine_fds(mxr_engine *e, mxr_sock *out, size_t max)
{
    return mxr__core_fds(&e->core, out, max);
}

int mxr_engine_timeout(mxr_engine *e)
{
    return mxr__core_timeout(&e->core);
}

void mxr_engine_process(mxr_engine *e, int read_fd, int write_fd)
{
    mxr__core_process(&e->core, read_fd, write_fd);
}

size_t mxr_engine_pending(const mxr_engine *e)
{
    return e->core.pending;
}

mxr_status mxr_engine_run_once(mxr_engine *e, int max_ms)
{
    if (!e)
        return MXR_EINVAL;
    return mxr__core_poll_once(&e->core, max_ms);
}

size_t mxr_engine_run(mxr_engine *e, int timeout_ms)
{
    uint64_t start = mxr__monotonic_ms(NULL);
    int left = timeout_ms;
    while (e->core.pending > 0) {
        /* at least one round, even with timeout 0 */
        if (mxr__core_poll_once(&e->core, left) != MXR_OK)
            break;
        if (timeout_ms < 0)
            continue;
        uint64_t spent = mxr__monotonic_ms(NULL) - start;
        if (spent >= (uint64_t)timeout_ms)
            break;
        left = timeout_ms - (int)spent;
    }
    return e->core.pending;
}

/* --------------------------------------------------------------- routes */

mxr_status mxr_route(mxr_engine *e, const char *input, mxr_route_cb cb,
                     void *arg)
{
    if (!e || !input || !cb)
        return MXR_EINVAL;
    return mxr__route_start(e->router, input, cb, arg);
}

typedef struct sync_result {
    bool done;
    mxr_status status;
    mxr_plan *plan;
} sync_result;

static void on_sync(void *arg, mxr_status st, mxr_plan *plan)
{
    sync_result *r = arg;
    r->done = true;
    r->status = st;
    r->plan = plan;
}

mxr_status mxr_route_sync(mxr_engine *e, const char *input, mxr_plan **out)
{
    sync_result r = {0};
    if (!out)
        return MXR_EINVAL;
    *out = NULL;
    mxr_status st = mxr_route(e, input, on_sync, &r);
    while (st == MXR_OK && !r.done)
        if (mxr__core_poll_once(&e->core, -1) != MXR_OK)
            return MXR_ENOMEM; /* r.done never comes; e->core.err says why */
    if (st != MXR_OK)
        return st;
    *out = r.plan;
    return r.status;
}

/* ------------------------------------------------------------ delivery */

mxr_status mxr_attempt_new(mxr_engine *e, const mxr_plan *plan,
                           const mxr_message *msg, mxr_attempt **out)
{
    if (!e)
        return MXR_EINVAL;
    return mxr__attempt_new(&e->deliver, plan, msg, out);
}

mxr_status mxr_send(mxr_engine *e, mxr_attempt *at, const char *msg, size_t len,
                    unsigned flags, mxr_send_event_fn on_event,
                    mxr_send_done_fn on_done, void *arg)
{
    if (!e)
        return MXR_EINVAL;
    return mxr__send_start(&e->deliver, at, msg, len, flags, on_event, on_done,
                           arg);
}

/* ---------------------------------------------------------- host health */

/* The name as the health memory keys it (plans carry normalised names). */
static mxr_status health_key(mxr_engine *e, const char *host,
                             char out[MXR__NAME_MAX + 1])
{
    if (!host)
        return MXR_OK;
    char err[128];
    mxr_status st =
        mxr__hostname_normalize(host, strlen(host), out, err, sizeof err);
    if (st != MXR_OK)
        mxr__core_error(&e->core, "%s", err);
    return st;
}

mxr_status mxr_engine_report(mxr_engine *e, const char *host,
                             const mxr_addr *addr, const mxr_outcome *o)
{
    char name[MXR__NAME_MAX + 1];
    if (!e || !o || (!host && !addr))
        return MXR_EINVAL;
    mxr_status st = health_key(e, host, name);
    if (st != MXR_OK)
        return st;
    const char *h = host ? name : NULL;
    uint64_t now = mxr__core_now(&e->core);
    if (mxr_class_is_connection(o->cls))
        mxr__health_fail(e->deliver.health, h, addr, now);
    else
        mxr__health_ok(e->deliver.health, h, addr, now);
    return MXR_OK;
}

mxr_status mxr_engine_health_sized(mxr_engine *e, const char *host,
                                   const mxr_addr *addr, mxr_health *out,
                                   size_t size)
{
    char name[MXR__NAME_MAX + 1];
    if (!e || !out || size == 0 || (!host == !addr))
        return MXR_EINVAL;
    mxr_status st = health_key(e, host, name);
    if (st != MXR_OK)
        return st;
    uint64_t now = mxr__core_now(&e->core);
    mxr__health_state hs = host
                               ? mxr__health_host(e->deliver.health, name, now)
                               : mxr__health_addr(e->deliver.health, addr, now);
    mxr_health h = {.down = hs.down,
                    .failures = hs.failures,
                    .down_until_ms = hs.down_until,
                    .last_failure_ms = hs.last_fail};
    size_t n = size < sizeof h ? size : sizeof h;
    memcpy(out, &h, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
    return MXR_OK;
}

mxr_status mxr_engine_order_by_health(mxr_engine *e, mxr_plan *plan)
{
    if (!e || !plan)
        return MXR_EINVAL;
    mxr__health_reorder(e->deliver.health, plan, mxr__core_now(&e->core));
    return MXR_OK;
}

/* ----------------------------------------------------------- statistics */

/* Size-versioned (mxroute/engine.h): never more than size bytes at out. */
size_t mxr_engine_stats_sized(const mxr_engine *e, mxr_stats *out, size_t size)
{
    if (!e || !out)
        return 0;
    const mxr__router_stats *rs = mxr__router_stats_of(e->router);
    const mxr__lookup_stats *ls = mxr__lookups_stats(e->dns);
    const mxr_stats s = {
        .routes = rs->routes,
        .plan_hits = rs->plan_hits,
        .queries_sent = ls->queries_sent,
        .queries_coalesced = ls->queries_coalesced,
        .cache_hits = ls->cache_hits,
        .cache_evictions = mxr__cache_evictions(e->cache),
        .cache_entries = mxr__cache_entries(e->cache),
        .cache_bytes = mxr__cache_bytes(e->cache),
        .inflight = ls->inflight,
        .inflight_max = ls->inflight_max,
        .bytes_allocated = e->core.a.bytes,
        .policy_calls = e->policy_env.calls,
        .policy_errors = e->policy_env.errors,
        .queries_timed_out = ls->queries_timed_out,
        .policy_budget_kills = e->policy_env.budget_kills,
    };
    return mxr__copy_sized(out, size, &s, sizeof s);
}

mxr__core *mxr__engine_core(mxr_engine *e)
{
    return &e->core;
}

/* ------------------------------------------------- tests and fuzzing */

mxr__health *mxr__engine_health(mxr_engine *e)
{
    return e->deliver.health;
}

mxr_status mxr__engine_replace_backend(
    mxr_engine *e, mxr__backend *(*make)(mxr__core *core, void *ud), void *ud)
{
    mxr__backend *b = make(&e->core, ud);
    if (!b)
        return MXR_ENOMEM;
    e->backend->io.ops->shutdown(&e->backend->io);
    mxr__io_unregister(&e->core, &e->backend->io);
    e->backend->ops->destroy(e->backend);
    e->backend = b;
    mxr__lookups_set_backend(e->dns, b);
    return MXR_OK;
}
