/* route.c -- one routing request: name -> MX -> addresses of each target
 * -> plan, following DESIGN.md section 3 (RFC 5321 5.1, RFC 7505).
 *
 * The deterministic part of a finished plan is cached under the domain, so
 * a repeated route costs a hash lookup, a memcpy and the tie shuffle. */
#include "engine/engine.h"
#include "base/addr.h"
#include "base/name.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct mxr__target {
    mxr__route *r;
    char name[MXR__NAME_MAX + 1];
    uint16_t pref;
    bool via_cname;
    bool temp_failed;
    uint64_t served_until_ms; /* the earliest of its address answers */
    mxr_addr *addrs;
    size_t naddrs;
} mxr__target;

struct mxr__route {
    mxr__route *prev, *next; /* live jobs, for destroy */
    mxr_engine *e;
    mxr_route_cb cb;
    void *arg;
    mxr__input in;
    size_t outstanding; /* lookups whose callback has not fired */
    mxr__plan_builder pb;
    uint64_t mx_served_until_ms; /* end of the MX answer's TTL as served */
    mxr__target *targets;
    size_t ntargets;
    char input[]; /* as given */
};

/* ---------------------------------------------------- job bookkeeping */

static mxr__route *route_new(mxr_engine *e, const char *input, mxr_route_cb cb,
                             void *arg)
{
    size_t n = strlen(input);
    mxr__route *r = mxr__calloc(&e->a, 1, sizeof *r + n + 1);
    if (!r)
        return NULL;
    r->e = e;
    r->cb = cb;
    r->arg = arg;
    memcpy(r->input, input, n + 1);
    mxr__pb_init(&r->pb, &e->a);
    r->next = e->routes;
    if (e->routes)
        e->routes->prev = r;
    e->routes = r;
    return r;
}

static void route_free(mxr__route *r)
{
    mxr_engine *e = r->e;
    if (r->prev)
        r->prev->next = r->next;
    else
        e->routes = r->next;
    if (r->next)
        r->next->prev = r->prev;
    for (size_t i = 0; i < r->ntargets; i++)
        mxr__free(&e->a, r->targets[i].addrs);
    mxr__free(&e->a, r->targets);
    mxr__pb_free(&r->pb);
    mxr__free(&e->a, r);
}

/* Fire the user's callback: the one place a request ends. */
static void finish(mxr_engine *e, mxr_route_cb cb, void *arg, mxr_status st,
                   mxr_plan *plan)
{
    e->pending--;
    if (e->destroying)
        st = MXR_EDESTROYED;
    if (st != MXR_OK) { /* the callee gets a plan only with MXR_OK */
        mxr_plan_free(plan);
        plan = NULL;
    }
    cb(arg, st, plan);
}

/* arg: the user's callback; arg2: its argument. */
static void on_policies_done(mxr_engine *e, void *cb, void *arg,
                             mxr_plan *plan)
{
    finish(e, (mxr_route_cb)(uintptr_t)cb, arg, plan ? MXR_OK : MXR_ENOMEM,
           plan);
}

/* Hand the plan over, through the route hooks of the policies that want
 * this domain first (they may wait for DNS: then it ends later). */
static void deliver(mxr_engine *e, mxr_route_cb cb, void *arg, mxr_plan *plan)
{
    if (!plan || e->destroying ||
        !mxr__policies_has(e->policies, "route", plan->domain)) {
        finish(e, cb, arg, plan ? MXR_OK : MXR_ENOMEM, plan);
        return;
    }
    if (mxr__policies_route(e, e->policies, plan, on_policies_done,
                            (void *)(uintptr_t)cb, arg) != 0) {
        finish(e, cb, arg, MXR_ENOMEM, NULL);
        mxr_plan_free(plan);
    }
}

static void finish_deferred(mxr_engine *e, void *cb, void *arg, void *plan)
{
    deliver(e, (mxr_route_cb)(uintptr_t)cb, arg, plan);
}

/* --------------------------------------------------------- the plan */

static mxr_plan *user_copy(mxr_engine *e, const mxr_plan *tmpl,
                           const char *input)
{
    mxr_plan *p = mxr__plan_clone_for(tmpl, input, e->a.fn, e->a.ud);
    if (p)
        mxr__order_finish(&e->order, &e->rng, p);
    return p;
}

static size_t plan_key(char *key, const char *domain)
{
    size_t n = strlen(domain);
    key[0] = 'P';
    memcpy(key + 1, domain, n);
    return n + 1;
}

static void release_plan(void *ctx, void *value)
{
    mxr_plan_free(value);
}

static void cache_plan(mxr_engine *e, const char *domain, mxr_plan *tmpl)
{
    char key[MXR__NAME_MAX + 2];
    if (tmpl->result == MXR_RESULT_TEMPFAIL || tmpl->ttl == 0 ||
        e->destroying) {
        mxr_plan_free(tmpl);
        return;
    }
    uint64_t now = mxr__now_ms(e);
    uint64_t expires = now + (uint64_t)tmpl->ttl * 1000;
    mxr__plan_set_cached(tmpl, now, expires);
    mxr__cache_put(e->cache, key, plan_key(key, domain), tmpl,
                   mxr__plan_bytes(tmpl), expires, release_plan, NULL);
}

static void targets_to_plan(mxr__route *r);

/* Order, pack, cache and hand out the plan; ends the job. */
static void route_complete(mxr__route *r)
{
    mxr_engine *e = r->e;
    mxr_plan *tmpl = NULL, *plan = NULL;
    targets_to_plan(r);
    if (!e->destroying && mxr__order_prepare(&e->order, &r->pb) == 0)
        tmpl = mxr__plan_pack(&r->pb, "", r->in.domain, mxr__alloc_counted,
                              &e->a);
    if (tmpl)
        plan = user_copy(e, tmpl, r->input);
    if (tmpl && r->in.kind == MXR__INPUT_DOMAIN)
        cache_plan(e, r->in.domain, tmpl);
    else
        mxr_plan_free(tmpl);
    mxr_route_cb cb = r->cb;
    void *arg = r->arg;
    mxr_status st = e->destroying ? MXR_EDESTROYED : plan ? MXR_OK : MXR_ENOMEM;
    route_free(r);
    if (st == MXR_OK)
        deliver(e, cb, arg, plan);
    else
        finish(e, cb, arg, st, plan);
}

static void lookup_done(mxr__route *r)
{
    if (--r->outstanding == 0)
        route_complete(r);
}

/* ------------------------------------------------------ target lookups */

static void fail_plan(mxr__route *r, mxr_result res, mxr_reason why,
                      uint32_t ttl)
{
    mxr__pb_fail(&r->pb, res, why);
    mxr__pb_lower_ttl(&r->pb, ttl);
}

static void on_target_addr(void *arg, const mxr__answer *ans, uint32_t ttl)
{
    mxr__target *t = arg;
    mxr__route *r = t->r;
    mxr__pb_lower_ttl(&r->pb, ttl);
    if (ans->rcode == MXR__DNS_OK && ans->count > 0) {
        if (ans->served_until_ms < t->served_until_ms)
            t->served_until_ms = ans->served_until_ms;
        mxr_addr *grown = mxr__realloc(
            &r->e->a, t->addrs, (t->naddrs + ans->count) * sizeof *grown);
        if (grown) {
            memcpy(grown + t->naddrs, ans->addrs, ans->count * sizeof *grown);
            t->addrs = grown;
            t->naddrs += ans->count;
        } else {
            t->temp_failed = true;
        }
        t->via_cname |= ans->via_cname;
    } else if (mxr__rcode_is_temporary(ans->rcode)) {
        t->temp_failed = true;
    }
    lookup_done(r);
}

static bool want_family(const mxr_engine *e, int family)
{
    int64_t f = e->v[MXR_OPT_FAMILY];
    return family == AF_INET ? f != MXR_FAMILY_IPV6 : f != MXR_FAMILY_IPV4;
}

static void lookup_target(mxr__route *r, mxr__target *t)
{
    static const struct {
        int family;
        uint16_t qtype;
    } kinds[] = {{AF_INET6, MXR__TYPE_AAAA}, {AF_INET, MXR__TYPE_A}};
    for (size_t i = 0; i < 2; i++) {
        if (!want_family(r->e, kinds[i].family))
            continue;
        r->outstanding++;
        if (mxr__lookup(r->e, t->name, kinds[i].qtype, on_target_addr, t) !=
            0) {
            t->temp_failed = true;
            r->outstanding--;
        }
    }
}

static bool is_local_name(const mxr_engine *e, const char *name)
{
    for (size_t i = 0; i < e->order.nlocal_names; i++)
        if (strcmp(e->order.local_names[i], name) == 0)
            return true;
    return false;
}

/* Turn each finished target into a host or a skipped entry. One of our
 * own names stays a host even without addresses: self-pruning must see it
 * (if our own lookup failed we are still the MX, not a backup's client).
 * The served TTLs are read here, so that all of them are as of one time. */
static void targets_to_plan(mxr__route *r)
{
    uint64_t now = mxr__now_ms(r->e);
    r->pb.mx_ttl = mxr__served_ttl_left(r->mx_served_until_ms, now);
    for (size_t i = 0; i < r->ntargets; i++) {
        mxr__target *t = &r->targets[i];
        if (t->naddrs == 0 && !is_local_name(r->e, t->name)) {
            mxr_reason why =
                t->temp_failed ? MXR_REASON_TEMPFAIL : MXR_REASON_NO_ADDRESS;
            if (r->pb.implicit)
                mxr__pb_fail(&r->pb,
                             t->temp_failed ? MXR_RESULT_TEMPFAIL
                                            : MXR_RESULT_PERMFAIL,
                             t->temp_failed ? MXR_REASON_TEMPFAIL
                                            : MXR_REASON_NO_MAIL_HOST);
            else
                mxr__pb_skip(&r->pb, t->name, t->pref, why);
            continue;
        }
        mxr_source src = r->pb.implicit ? MXR_SOURCE_IMPLICIT : MXR_SOURCE_MX;
        mxr__host *h = mxr__pb_add_host(&r->pb, t->name, t->pref, src,
                                        (uint16_t)r->e->v[MXR_OPT_PORT]);
        for (size_t k = 0; h && k < t->naddrs; k++)
            mxr__pb_add_addr(&r->pb, h, &t->addrs[k]);
        if (h && t->via_cname)
            h->notes |= MXR_NOTE_CNAME_TARGET;
        if (h && t->naddrs)
            h->ttl = mxr__served_ttl_left(t->served_until_ms, now);
    }
}

static mxr__target *add_target(mxr__route *r, const char *name, uint16_t pref)
{
    mxr__target *t = &r->targets[r->ntargets++];
    memset(t, 0, sizeof *t);
    t->r = r;
    t->pref = pref;
    t->served_until_ms = UINT64_MAX; /* lowered by each address answer */
    strcpy(t->name, name);
    return t;
}

/* ------------------------------------------------------- the MX answer */

static int cmp_mx(const void *a, const void *b)
{
    const mxr__mx *x = *(const mxr__mx *const *)a;
    const mxr__mx *y = *(const mxr__mx *const *)b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x < y ? -1 : (x > y); /* stable: answer order */
}

static bool all_root(const mxr__answer *ans)
{
    for (size_t i = 0; i < ans->count; i++)
        if (ans->mx[i].target[0] != '\0')
            return false;
    return true;
}

static bool target_seen(const mxr__route *r, const char *name)
{
    for (size_t i = 0; i < r->ntargets; i++)
        if (strcmp(r->targets[i].name, name) == 0)
            return true;
    return false;
}

/* Why an MX target cannot be used, or MXR_REASON_NONE. */
static mxr_reason target_problem(const mxr__route *r, const mxr__mx *mx,
                                 char norm[MXR__NAME_MAX + 1])
{
    if (mx->target[0] == '\0')
        return MXR_REASON_NULL_MX_ENTRY;
    if (mxr__name_is_ip_literal(mx->target))
        return MXR_REASON_IP_LITERAL;
    if (mxr__hostname_normalize(mx->target, strlen(mx->target), norm, NULL,
                                0) != MXR_OK)
        return MXR_REASON_BAD_TARGET;
    return target_seen(r, norm) ? MXR_REASON_DUPLICATE : MXR_REASON_NONE;
}

static int take_mx_targets(mxr__route *r, const mxr__answer *ans)
{
    const mxr__mx **sorted = mxr__malloc(&r->e->a, ans->count * sizeof *sorted);
    r->targets = mxr__calloc(&r->e->a, ans->count, sizeof *r->targets);
    if (!sorted || !r->targets) {
        mxr__free(&r->e->a, sorted);
        return -1;
    }
    for (size_t i = 0; i < ans->count; i++)
        sorted[i] = &ans->mx[i];
    qsort(sorted, ans->count, sizeof *sorted, cmp_mx);
    for (size_t i = 0; i < ans->count; i++) {
        char norm[MXR__NAME_MAX + 1];
        mxr_reason why = target_problem(r, sorted[i], norm);
        if (why == MXR_REASON_NONE)
            add_target(r, norm, sorted[i]->pref);
        else
            mxr__pb_skip(&r->pb,
                         why == MXR_REASON_NULL_MX_ENTRY ? "."
                                                         : sorted[i]->target,
                         sorted[i]->pref, why);
    }
    mxr__free(&r->e->a, sorted);
    return 0;
}

/* The MX lookup still counts as outstanding here, so no completion can
 * happen before every target lookup has been issued. */
static void start_targets(mxr__route *r)
{
    for (size_t i = 0; i < r->ntargets; i++)
        lookup_target(r, &r->targets[i]);
}

static void on_mx(void *arg, const mxr__answer *ans, uint32_t ttl)
{
    mxr__route *r = arg;
    mxr__pb_lower_ttl(&r->pb, ttl);
    r->mx_served_until_ms = ans->served_until_ms; /* now when it failed */
    if (ans->rcode == MXR__DNS_OK && all_root(ans))
        fail_plan(r, MXR_RESULT_PERMFAIL, MXR_REASON_NULL_MX, ttl);
    else if (ans->rcode == MXR__DNS_OK) {
        if (take_mx_targets(r, ans) == 0)
            start_targets(r);
        else
            fail_plan(r, MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL, 0);
    } else if (ans->rcode == MXR__DNS_NODATA) {
        r->pb.implicit = true;
        r->targets = mxr__calloc(&r->e->a, 1, sizeof *r->targets);
        if (r->targets) {
            add_target(r, r->in.domain, 0);
            start_targets(r);
        } else {
            fail_plan(r, MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL, 0);
        }
    } else if (ans->rcode == MXR__DNS_NXDOMAIN)
        fail_plan(r, MXR_RESULT_PERMFAIL, MXR_REASON_NXDOMAIN, ttl);
    else
        fail_plan(r, MXR_RESULT_TEMPFAIL, mxr__rcode_reason(ans->rcode), ttl);
    lookup_done(r);
}

/* ------------------------------------------------------------ starting */

static void literal_ready(mxr_engine *e, void *r, void *unused1, void *unused2)
{
    route_complete(r);
}

/* An address literal routes to that address: no DNS, but the same safety
 * filters (a recipient's literal is as untrusted as DNS). */
static mxr_status route_literal(mxr_engine *e, const mxr__input *in,
                                const char *input, mxr_route_cb cb, void *arg)
{
    mxr__route *r = route_new(e, input, cb, arg);
    if (!r)
        return MXR_ENOMEM;
    r->in = *in;
    mxr__host *h = mxr__pb_add_host(&r->pb, in->domain, 0, MXR_SOURCE_LITERAL,
                                    (uint16_t)e->v[MXR_OPT_PORT]);
    if (!h || mxr__pb_add_addr(&r->pb, h, &in->literal) != 0 ||
        mxr__defer(e, literal_ready, r, NULL, NULL) != 0) {
        route_free(r);
        return MXR_ENOMEM;
    }
    e->pending++;
    return MXR_OK;
}

static mxr_status route_cached(mxr_engine *e, const mxr_plan *tmpl,
                               const char *input, mxr_route_cb cb, void *arg)
{
    mxr_plan *plan = user_copy(e, tmpl, input);
    if (!plan ||
        mxr__defer(e, finish_deferred, (void *)(uintptr_t)cb, arg, plan) != 0) {
        mxr_plan_free(plan);
        return MXR_ENOMEM;
    }
    mxr__plan_count_down(plan, tmpl, mxr__now_ms(e));
    e->stats.plan_hits++;
    e->pending++;
    return MXR_OK;
}

static mxr_status route_resolve(mxr_engine *e, const mxr__input *in,
                                const char *input, mxr_route_cb cb, void *arg)
{
    mxr__route *r = route_new(e, input, cb, arg);
    if (!r)
        return MXR_ENOMEM;
    r->in = *in;
    r->outstanding = 1;
    e->pending++;
    if (mxr__lookup(e, in->domain, MXR__TYPE_MX, on_mx, r) != 0) {
        e->pending--;
        route_free(r);
        return MXR_ENOMEM;
    }
    return MXR_OK;
}

mxr_status mxr__route_start(mxr_engine *e, const char *input, mxr_route_cb cb,
                            void *arg)
{
    mxr__input in;
    if (mxr__input_parse(input, &in, e->err, sizeof e->err) != MXR_OK)
        return MXR_EBADNAME;
    if (e->pending >= (size_t)e->v[MXR_OPT_MAX_PENDING]) {
        mxr__set_error(e, "%zu requests pending", e->pending);
        return MXR_EBUSY;
    }
    e->stats.routes++;
    if (in.kind == MXR__INPUT_LITERAL)
        return route_literal(e, &in, input, cb, arg);
    char key[MXR__NAME_MAX + 2];
    const mxr_plan *tmpl =
        mxr__cache_get(e->cache, key, plan_key(key, in.domain), mxr__now_ms(e));
    if (tmpl)
        return route_cached(e, tmpl, input, cb, arg);
    return route_resolve(e, &in, input, cb, arg);
}

/* Engine teardown: lookups were cancelled already, so a job still here
 * is one that never got its answers; end it once. */
void mxr__route_abort_all(mxr_engine *e)
{
    while (e->routes) {
        mxr__route *r = e->routes;
        mxr_route_cb cb = r->cb;
        void *arg = r->arg;
        route_free(r);
        finish(e, cb, arg, MXR_EDESTROYED, NULL);
    }
}
