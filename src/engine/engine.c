/* engine.c -- the engine: lifetime, the deferred-callback queue and the
 * event-loop integration (fds, timeout, process) in the c-ares style. */
#include "engine/engine.h"
#include "smtp/session.h"
#include "smtp/tls.h"
#include "base/addr.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_POLL_MS 1000
#define POLL_FDS_MAX 64

static uint64_t monotonic_ms(void *ud)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mxr__now_ms(const mxr_engine *e)
{
    return e->clock(e->clock_ud);
}

void mxr__set_error(mxr_engine *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof e->err, fmt, ap);
    va_end(ap);
}

const char *mxr_engine_errmsg(const mxr_engine *e)
{
    return e ? e->err : "no engine";
}

/* ------------------------------------------------- deferred callbacks */

static int defq_grow(mxr_engine *e)
{
    size_t cap = e->defq_cap ? e->defq_cap * 2 : 64;
    mxr__deferred *q = mxr__malloc(&e->a, cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < e->defq_len; i++)
        q[i] = e->defq[(e->defq_head + i) % e->defq_cap];
    mxr__free(&e->a, e->defq);
    e->defq = q;
    e->defq_cap = cap;
    e->defq_head = 0;
    return 0;
}

int mxr__defer_reserve(mxr_engine *e)
{
    return e->defq_len < e->defq_cap ? 0 : defq_grow(e);
}

int mxr__defer(mxr_engine *e, mxr__deferred_fn fn, void *p1, void *p2,
               void *p3)
{
    if (e->defq_len == e->defq_cap && defq_grow(e) != 0)
        return -1;
    size_t tail = (e->defq_head + e->defq_len) % e->defq_cap;
    e->defq[tail] = (mxr__deferred){fn, p1, p2, p3};
    e->defq_len++;
    return 0;
}

/* Runs what was queued before the call; what callbacks queue waits for
 * the next round, so a busy caller cannot starve socket events. */
static void defq_run(mxr_engine *e)
{
    for (size_t n = e->defq_len; n > 0 && e->defq_len > 0; n--) {
        mxr__deferred d = e->defq[e->defq_head];
        e->defq_head = (e->defq_head + 1) % e->defq_cap;
        e->defq_len--;
        d.fn(e, d.p1, d.p2, d.p3);
    }
}

/* ----------------------------------------------------------- lifetime */

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
    const char **names = mxr__calloc(&e->a, n + 1, sizeof *names);
    mxr_addr *addrs = mxr__calloc(&e->a, n + 1, sizeof *addrs);
    c->local_names = names;
    c->local_addrs = addrs;
    if (!names || !addrs)
        return MXR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (mxr__addr_parse(o->local_names[i], &addrs[c->nlocal_addrs]))
            c->nlocal_addrs++;
        else if (!(names[c->nlocal_names++] =
                       mxr__strdup(&e->a, o->local_names[i])))
            return MXR_ENOMEM;
    }
    return MXR_OK;
}

static void order_config_free(mxr_engine *e)
{
    for (size_t i = 0; i < e->order.nlocal_names; i++)
        mxr__free(&e->a, (void *)e->order.local_names[i]);
    mxr__free(&e->a, (void *)e->order.local_names);
    mxr__free(&e->a, (void *)e->order.local_addrs);
}

static char *servers_csv(mxr_engine *e, const mxr_options *o)
{
    size_t len = 1;
    for (size_t i = 0; i < o->nservers; i++)
        len += strlen(o->servers[i]) + 1;
    char *csv = mxr__calloc(&e->a, 1, len);
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
    if (o->nzones > 0)
        return mxr__zone_new(o->zones, o->nzones, &e->a, &e->backend, e->err,
                             sizeof e->err);
    char *csv = o->nservers ? servers_csv(e, o) : NULL;
    if (o->nservers && !csv)
        return MXR_ENOMEM;
    mxr__ares_config cfg = {
        .servers_csv = csv,
        .timeout_ms = (int)o->v[MXR_OPT_TIMEOUT_MS],
        .tries = (int)o->v[MXR_OPT_TRIES],
        .sock_cb = o->sock,
        .sock_ud = o->sock_ud,
    };
    mxr_status st = mxr__ares_new(&cfg, &e->a, &e->backend, e->err,
                                  sizeof e->err);
    mxr__free(&e->a, csv);
    return st;
}

static mxr_status rules_init(mxr_engine *e, const mxr_options *o)
{
    e->default_rules = o->default_rules;
    e->rules = mxr__calloc(&e->a, o->nrules + 1, sizeof *e->rules);
    if (!e->rules)
        return MXR_ENOMEM;
    for (size_t i = 0; i < o->nrules; i++, e->nrules++) {
        e->rules[i].rules = o->rules[i].rules;
        if (!(e->rules[i].domain = mxr__strdup(&e->a, o->rules[i].domain)))
            return MXR_ENOMEM;
    }
    mxr__health_params hp = {
        .base_s = (uint32_t)o->default_rules.v[MXR_RULE_HEALTH_BASE_S],
        .max_s = (uint32_t)o->default_rules.v[MXR_RULE_HEALTH_MAX_S],
        .max_bytes = (size_t)o->v[MXR_OPT_HEALTH_MAX_BYTES],
    };
    e->health = mxr__health_new(&e->a, &hp);
    return e->health ? MXR_OK : MXR_ENOMEM;
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
    e->log = o->log;
    e->log_ud = o->log_ud;
    if (o->npolicies == 0)
        return MXR_OK;
    mxr__policy_limits lim = policy_limits(o);
    return mxr__policies_load(e, o->policies, o->npolicies, &lim,
                              &e->policies, e->err, sizeof e->err);
}

mxr_status mxr_engine_load_policies(mxr_engine *e, mxr_options *o)
{
    if (!e || !o)
        return MXR_EINVAL;
    mxr__policies *set = NULL;
    mxr__policy_limits lim = policy_limits(o);
    mxr_status st = o->npolicies == 0
                        ? MXR_OK
                        : mxr__policies_load(e, o->policies, o->npolicies,
                                             &lim, &set, o->err, sizeof o->err);
    if (st != MXR_OK)
        return st; /* the old policies stay */
    mxr__policies_unref(e->policies);
    e->policies = set;
    return MXR_OK;
}

static void rules_free(mxr_engine *e)
{
    for (size_t i = 0; i < e->nrules; i++)
        mxr__free(&e->a, e->rules[i].domain);
    mxr__free(&e->a, e->rules);
    mxr__health_free(e->health);
}

uint64_t mxr_engine_now(const mxr_engine *e)
{
    return mxr__now_ms(e);
}

static mxr_status smtp_init(mxr_engine *e, const mxr_options *o)
{
    e->helo = mxr__strdup(&e->a, o->helo ? o->helo : "localhost");
    if (o->tls_ca && !(e->tls_ca = mxr__strdup(&e->a, o->tls_ca)))
        return MXR_ENOMEM;
    return e->helo ? MXR_OK : MXR_ENOMEM;
}

mxr__tls_ctx *mxr__engine_tls_ctx(mxr_engine *e, char *err, size_t errlen)
{
    if (!e->tls_ctx)
        e->tls_ctx = mxr__tls_ctx_new(e->tls_ca, err, errlen);
    return e->tls_ctx;
}

static mxr_status engine_init(mxr_engine *e, const mxr_options *o)
{
    if (o->v[MXR_OPT_TTL_MIN] > o->v[MXR_OPT_TTL_MAX]) {
        mxr__set_error(e, "TTL minimum %lld is above the TTL maximum %lld",
                       (long long)o->v[MXR_OPT_TTL_MIN],
                       (long long)o->v[MXR_OPT_TTL_MAX]);
        return MXR_EINVAL;
    }
    memcpy(e->v, o->v, sizeof e->v);
    e->clock = o->clock ? o->clock : monotonic_ms;
    e->clock_ud = o->clock_ud;
    if (o->v[MXR_OPT_SEED] >= 0)
        mxr__rng_seed(&e->rng, (uint64_t)o->v[MXR_OPT_SEED]);
    else
        mxr__rng_seed_random(&e->rng);
    e->sock_cb = o->sock;
    e->sock_ud = o->sock_ud;
    mxr_status st = smtp_init(e, o);
    if (st == MXR_OK)
        st = order_config_init(e, o);
    if (st == MXR_OK)
        st = rules_init(e, o);
    if (st == MXR_OK)
        st = policies_init(e, o);
    if (st != MXR_OK)
        return st;
    e->cache = mxr__cache_new(&e->a, (size_t)o->v[MXR_OPT_CACHE_MAX_BYTES]);
    if (!e->cache || mxr__lookup_init(e) != 0)
        return MXR_ENOMEM;
    return backend_init(e, o);
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
    e->a = a;
    mxr_status st = engine_init(e, o);
    if (st != MXR_OK) {
        snprintf(o->err, sizeof o->err, "%s",
                 e->err[0] ? e->err : mxr_strerror(st));
        mxr_engine_destroy(e);
        return st;
    }
    *out = e;
    return MXR_OK;
}

void mxr_engine_destroy(mxr_engine *e)
{
    if (!e)
        return;
    e->destroying = true;
    mxr__lookup_cancel_waiting(e);
    if (e->backend)
        e->backend->ops->destroy(e->backend); /* cancels what is in flight */
    while (e->defq_len > 0)
        defq_run(e);
    mxr__route_abort_all(e);
    mxr__send_abort_all(e); /* after the queue: a send may wait there */
    mxr__smtp_close_all(e);
    mxr__tls_ctx_free(e->tls_ctx);
    mxr__free(&e->a, e->helo);
    mxr__free(&e->a, e->tls_ca);
    mxr__policies_unref(e->policies);
    mxr__cache_free(e->cache);
    mxr__lookup_free(e);
    order_config_free(e);
    rules_free(e);
    mxr__free(&e->a, e->defq);
    mxr__alloc a = e->a;
    mxr__free(&a, e);
}

/* ------------------------------------------------------- the event loop */

size_t mxr_engine_fds(mxr_engine *e, mxr_sock *out, size_t max)
{
    size_t n = e->backend->ops->fds(e->backend, out, max);
    size_t room = n < max ? max - n : 0;
    return n + mxr__smtp_fds(e, out + (n < max ? n : max), room);
}

int mxr_engine_timeout(mxr_engine *e)
{
    if (e->defq_len > 0)
        return 0;
    int dns = e->backend->ops->timeout(e->backend, DEFAULT_POLL_MS);
    int smtp = mxr__smtp_timeout(e, DEFAULT_POLL_MS);
    if (dns < 0 || (smtp >= 0 && smtp < dns))
        return smtp;
    return dns;
}

void mxr_engine_process(mxr_engine *e, int read_fd, int write_fd)
{
    e->backend->ops->process(e->backend, read_fd, write_fd);
    mxr__smtp_process(e, read_fd, write_fd);
    defq_run(e);
}

size_t mxr_engine_pending(const mxr_engine *e)
{
    return e->pending;
}

/* One round of the engine's own poll loop; waits at most max_ms. */
static void run_once(mxr_engine *e, int max_ms)
{
    mxr_sock socks[POLL_FDS_MAX];
    struct pollfd pfd[POLL_FDS_MAX];
    size_t n = mxr_engine_fds(e, socks, POLL_FDS_MAX);
    n = n < POLL_FDS_MAX ? n : POLL_FDS_MAX;
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = socks[i].fd;
        pfd[i].events = (short)((socks[i].want & MXR_WANT_READ ? POLLIN : 0) |
                                (socks[i].want & MXR_WANT_WRITE ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    int t = mxr_engine_timeout(e);
    if (t < 0 || (max_ms >= 0 && t > max_ms))
        t = max_ms < 0 ? DEFAULT_POLL_MS : max_ms;
    int ready = t == 0 && n == 0 ? 0 : poll(pfd, (nfds_t)n, t);
    bool any = false;
    for (size_t i = 0; ready > 0 && i < n; i++) {
        if (!pfd[i].revents)
            continue;
        bool rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
        bool wr = pfd[i].revents & POLLOUT;
        mxr_engine_process(e, rd ? pfd[i].fd : MXR_NOFD,
                           wr ? pfd[i].fd : MXR_NOFD);
        any = true;
    }
    if (!any)
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
}

size_t mxr_engine_run(mxr_engine *e, int timeout_ms)
{
    uint64_t start = monotonic_ms(NULL);
    int left = timeout_ms;
    while (e->pending > 0) {
        run_once(e, left); /* at least one round, even with timeout 0 */
        if (timeout_ms < 0)
            continue;
        uint64_t spent = monotonic_ms(NULL) - start;
        if (spent >= (uint64_t)timeout_ms)
            break;
        left = timeout_ms - (int)spent;
    }
    return e->pending;
}

/* --------------------------------------------------------------- routes */

mxr_status mxr_route(mxr_engine *e, const char *input, mxr_route_cb cb,
                     void *arg)
{
    if (!e || !input || !cb)
        return MXR_EINVAL;
    if (e->destroying)
        return MXR_EDESTROYED;
    return mxr__route_start(e, input, cb, arg);
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
        run_once(e, -1);
    if (st != MXR_OK)
        return st;
    *out = r.plan;
    return r.status;
}

void mxr_engine_stats(const mxr_engine *e, mxr_stats *out)
{
    *out = e->stats;
    out->cache_entries = mxr__cache_entries(e->cache);
    out->cache_bytes = mxr__cache_bytes(e->cache);
    out->cache_evictions = mxr__cache_evictions(e->cache);
    out->inflight = e->inflight;
    out->bytes_allocated = e->a.bytes;
}
