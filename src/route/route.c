/* route.c -- one routing request: name -> MX -> addresses of each target
 * -> plan, following docs/routing-rules.md (RFC 5321 5.1, RFC 7505).
 *
 * The deterministic part of a finished plan is cached under the domain, so
 * a repeated route costs a hash lookup, a memcpy and the tie shuffle. */
#include "route/route.h"
#include "base/addr.h"
#include "base/list.h"
#include "base/name.h"
#include "base/pool.h"
#include "plan/plan.h"
#include "plan/template.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct mxr__route mxr__route;
typedef struct mxr__target mxr__target;

/* What a route job keeps inline, so that the usual domain costs no
 * allocation besides its answers and plans: the input, up to
 * TARGETS_INLINE MX targets (one pooled block) and TARGET_ADDRS_INLINE
 * addresses per target. Larger ones get blocks of their own. */
#define INPUT_INLINE 128
#define TARGETS_INLINE 4
#define TARGET_ADDRS_INLINE 2
/* Idle route jobs and target blocks kept for the next routes (MX answers
 * and completions come in waves as large as the backlog of routes); a
 * reused job keeps its plan builder's arrays up to BUILDER_KEEP entries.
 * What they hold is freed with the router. */
#define JOB_POOL_MAX 2048
#define BUILDER_KEEP 8

/* One address lookup of a target (AAAA or A). */
typedef struct target_query {
    mxr__lookup_req req;
    mxr__target *t;
} target_query;

struct mxr__target {
    mxr__route *r;
    target_query q[2];
    uint16_t pref;
    bool via_cname;
    bool temp_failed;
    uint64_t served_until_ms; /* the earliest of its address answers */
    mxr_addr *addrs;          /* inline_addrs, or a block of its own */
    size_t naddrs;
    /* The buffers come last: add_target zeroes only what is before. */
    char name[MXR__NAME_MAX + 1];
    mxr_addr inline_addrs[TARGET_ADDRS_INLINE];
};

/* A plan ready to be handed out from the next round (a cached plan). */
typedef struct ready_plan {
    mxr_route_cb cb;
    void *arg;
    mxr_plan *plan;
} ready_plan;

struct mxr__router {
    mxr__core *core;
    mxr__lookups *dns;
    mxr__cache *plans;
    int plan_kind; /* cached plans, in the cache */
    mxr__policies *const *policies;
    mxr__rng *rng;
    const mxr__order_config *order;
    mxr__router_config cfg;
    mxr__link jobs;        /* resolving now, for teardown */
    mxr__pool job_pool;    /* route jobs with INPUT_INLINE bytes of input */
    mxr__pool target_pool; /* blocks of TARGETS_INLINE targets */
    /* Cached plans wait here for the next round: a ring that grows (a
     * power of two, indexed by mask), so a route that was accepted can
     * always be answered. */
    ready_plan *ready;
    size_t ready_cap, ready_head, ready_len;
    mxr__task ready_task;
    bool ready_queued;
    mxr__router_stats stats;
};

struct mxr__route {
    mxr__link link; /* in the router's jobs */
    mxr__router *rt;
    mxr__lookup_req mx_req;
    mxr__task ready; /* an address literal completes from here */
    mxr_route_cb cb;
    void *arg;
    size_t outstanding; /* lookups whose callback has not fired */
    mxr__plan_builder pb;
    uint64_t mx_served_until_ms; /* end of the MX answer's TTL as served */
    mxr__target *targets;
    size_t ntargets;
    bool pooled;         /* the job's block is job_pool's */
    bool targets_pooled; /* targets is a target_pool block */
    mxr__input in;       /* last but the input: see clear_job */
    char input[];        /* as given */
};

/* ---------------------------------------------------- job bookkeeping */

/* Everything but the input's name buffer, which mxr__input_parse writes
 * before anything reads it: most of a job's bytes, and a cache miss per
 * line on a cold job. */
static void clear_job(mxr__route *r)
{
    memset(r, 0, offsetof(mxr__route, in));
    r->in.kind = 0;
    r->in.has_local = false;
    r->in.domain[0] = '\0';
    memset(&r->in.literal, 0, sizeof r->in.literal);
}

/* A job from the pool keeps its builder's arrays (emptied by
 * mxr__pb_reset); any other starts with an empty builder. */
static mxr__route *job_alloc(mxr__router *rt, size_t input_size)
{
    mxr__alloc *a = &rt->core->a;
    mxr__plan_builder pb;
    mxr__pb_init(&pb, a);
    mxr__route *r = NULL;
    if (input_size <= INPUT_INLINE) {
        r = mxr__pool_take_kept(&rt->job_pool);
        if (r)
            pb = r->pb;
        else
            r = mxr__malloc(a, rt->job_pool.size);
    } else {
        r = mxr__malloc(a, sizeof *r + input_size);
    }
    if (r) {
        clear_job(r);
        r->pb = pb;
        r->pooled = input_size <= INPUT_INLINE;
    }
    return r;
}

static mxr__route *route_new(mxr__router *rt, const char *input,
                             mxr_route_cb cb, void *arg)
{
    size_t n = strlen(input);
    mxr__route *r = job_alloc(rt, n + 1);
    if (!r)
        return NULL;
    r->rt = rt;
    r->cb = cb;
    r->arg = arg;
    memcpy(r->input, input, n + 1);
    mxr__list_push_front(&rt->jobs, &r->link);
    return r;
}

static void targets_free(mxr__route *r)
{
    mxr__alloc *a = &r->rt->core->a;
    for (size_t i = 0; i < r->ntargets; i++)
        if (r->targets[i].addrs != r->targets[i].inline_addrs)
            mxr__free(a, r->targets[i].addrs);
    if (r->targets_pooled)
        mxr__pool_put(&r->rt->target_pool, r->targets);
    else
        mxr__free(a, r->targets);
}

/* Frees the kept jobs (and the builder arrays they keep) and targets. */
static void pools_drain(mxr__router *rt)
{
    mxr__route *r;
    while ((r = mxr__pool_take_kept(&rt->job_pool)) != NULL) {
        mxr__pb_free(&r->pb);
        mxr__free(&rt->core->a, r);
    }
    mxr__pool_drain(&rt->target_pool);
}

/* The job goes back to its pool. */
static void route_free(mxr__route *r)
{
    mxr__router *rt = r->rt;
    mxr__list_remove(&r->link);
    targets_free(r);
    if (r->pooled && mxr__pool_keeps(&rt->job_pool)) {
        mxr__pb_reset(&r->pb, BUILDER_KEEP);
        mxr__pool_put(&rt->job_pool, r);
    } else {
        mxr__pb_free(&r->pb);
        if (r->pooled)
            mxr__pool_put(&rt->job_pool, r); /* full: freed */
        else
            mxr__free(&rt->core->a, r);
    }
}

/* Fire the user's callback: the one place a request ends. */
static void finish(mxr__router *rt, mxr_route_cb cb, void *arg, mxr_status st,
                   mxr_plan *plan)
{
    mxr__core_request_end(rt->core);
    if (rt->core->destroying)
        st = MXR_EDESTROYED;
    if (st != MXR_OK) { /* the callee gets a plan only with MXR_OK */
        mxr_plan_free(plan);
        plan = NULL;
    }
    cb(arg, st, plan);
}

static void on_policies_done(const mxr__plan_sink *sink, mxr_plan *plan)
{
    finish(sink->owner, sink->cb, sink->arg, plan ? MXR_OK : MXR_ENOMEM, plan);
}

/* Hand the plan over, through the route hooks of the policies that want
 * this domain first (they may wait for DNS: then it ends later). */
static void deliver(mxr__router *rt, mxr_route_cb cb, void *arg, mxr_plan *plan)
{
    mxr__policies *set = *rt->policies;
    if (!plan || rt->core->destroying ||
        !mxr__policies_has(set, MXR__HOOK_ROUTE, plan->domain)) {
        finish(rt, cb, arg, plan ? MXR_OK : MXR_ENOMEM, plan);
        return;
    }
    mxr__plan_sink sink = {
        .done = on_policies_done, .owner = rt, .cb = cb, .arg = arg};
    if (mxr__policies_route(set, plan, &sink) != MXR_OK) {
        finish(rt, cb, arg, MXR_ENOMEM, NULL);
        mxr_plan_free(plan);
    }
}

/* ----------------------------------------------------- ready plans */

static mxr_status ready_reserve(mxr__router *rt)
{
    if (rt->ready_len < rt->ready_cap)
        return MXR_OK;
    size_t cap = rt->ready_cap ? rt->ready_cap * 2 : 64;
    ready_plan *q = mxr__malloc(&rt->core->a, cap * sizeof *q);
    if (!q)
        return MXR_ENOMEM;
    for (size_t i = 0; i < rt->ready_len; i++)
        q[i] = rt->ready[(rt->ready_head + i) & (rt->ready_cap - 1)];
    mxr__free(&rt->core->a, rt->ready);
    rt->ready = q;
    rt->ready_cap = cap;
    rt->ready_head = 0;
    return MXR_OK;
}

/* Hands out the plans queued before this round; later ones wait for the
 * next, so a caller routing from its callbacks cannot starve the loop. */
static void ready_run(mxr__task *t)
{
    mxr__router *rt = mxr__container_of(t, mxr__router, ready_task);
    rt->ready_queued = false;
    for (size_t n = rt->ready_len; n > 0; n--) {
        ready_plan p = rt->ready[rt->ready_head];
        rt->ready_head = (rt->ready_head + 1) & (rt->ready_cap - 1);
        rt->ready_len--;
        deliver(rt, p.cb, p.arg, p.plan);
    }
    if (rt->ready_len > 0 && !rt->ready_queued) {
        rt->ready_queued = true;
        mxr__core_defer(rt->core, &rt->ready_task, ready_run);
    }
}

/* Room was reserved: cannot fail. */
static void ready_push(mxr__router *rt, mxr_route_cb cb, void *arg,
                       mxr_plan *plan)
{
    size_t tail = (rt->ready_head + rt->ready_len) & (rt->ready_cap - 1);
    rt->ready[tail] = (ready_plan){cb, arg, plan};
    rt->ready_len++;
    if (!rt->ready_queued) {
        rt->ready_queued = true;
        mxr__core_defer(rt->core, &rt->ready_task, ready_run);
    }
}

/* --------------------------------------------------------- the plan */

static size_t plan_key(char *key, const char *domain)
{
    size_t n = strlen(domain);
    key[0] = 'P';
    memcpy(key + 1, domain, n);
    return n + 1;
}

/* A finished plan's template (plan/template.h) in one block with its
 * cache entry: the node, the key ('P' and the domain, which the template
 * shares), then the template, which route unpacks for every caller. */
typedef struct cached_plan {
    mxr__cache_node node;
    unsigned char key[];
} cached_plan;

static size_t template_offset(size_t keylen)
{
    size_t at = offsetof(cached_plan, key) + keylen;
    return (at + MXR__TMPL_ALIGN - 1) / MXR__TMPL_ALIGN * MXR__TMPL_ALIGN;
}

static const void *template_of(const cached_plan *cp)
{
    return (const char *)cp + template_offset(cp->node.keylen);
}

/* The caller's plan for input, from the template. */
static mxr_plan *user_copy(mxr__router *rt, const cached_plan *cp,
                           const char *input)
{
    const char *domain = (const char *)cp->key + 1;
    mxr_plan *p =
        mxr__tmpl_unpack(template_of(cp), domain, cp->node.keylen - 1u, input,
                         rt->core->a.fn, rt->core->a.ud);
    if (p)
        mxr__order_finish(rt->order, rt->rng, p);
    return p;
}

/* The caller's plan straight from the builder, for a plan that cannot be
 * a template (mxr__tmpl_size). */
static mxr_plan *user_pack(mxr__router *rt, const mxr__route *r)
{
    mxr_plan *p = mxr__plan_pack(&r->pb, r->input, r->in.domain, rt->core->a.fn,
                                 rt->core->a.ud);
    if (p)
        mxr__order_finish(rt->order, rt->rng, p);
    return p;
}

/* NULL when pb cannot be a template or out of memory. */
static cached_plan *cached_plan_new(mxr__router *rt,
                                    const mxr__plan_builder *pb,
                                    const char *domain)
{
    char key[MXR__NAME_MAX + 2];
    size_t keylen = plan_key(key, domain);
    size_t at = template_offset(keylen);
    size_t size = mxr__tmpl_size(pb, domain);
    if (size == 0)
        return NULL;
    cached_plan *cp = mxr__malloc(&rt->core->a, at + size);
    if (!cp)
        return NULL;
    memcpy(cp->key, key, keylen);
    cp->node = (mxr__cache_node){0};
    mxr__cache_node_set_key(&cp->node, cp->key, keylen); /* right after */
    mxr__tmpl_pack(pb, domain, (char *)cp + at);
    return cp;
}

static void drop_plan(void *ctx, mxr__cache_node *node)
{
    mxr__free(ctx, mxr__list_entry(node, cached_plan, node));
}

static void cache_plan(mxr__router *rt, cached_plan *cp)
{
    const void *tmpl = template_of(cp);
    uint32_t ttl = mxr__tmpl_ttl(tmpl);
    if (mxr__tmpl_result(tmpl) == MXR_RESULT_TEMPFAIL || ttl == 0 ||
        rt->core->destroying) {
        mxr__free(&rt->core->a, cp);
        return;
    }
    uint64_t expires = mxr__core_now(rt->core) + (uint64_t)ttl * 1000;
    mxr__cache_insert(rt->plans, &cp->node, mxr__alloc_size(cp), expires,
                      rt->plan_kind);
}

static void targets_to_plan(mxr__route *r);

/* Order, pack, cache and hand out the plan; ends the job. */
static void route_complete(mxr__route *r)
{
    mxr__router *rt = r->rt;
    bool destroying = rt->core->destroying;
    cached_plan *cp = NULL;
    mxr_plan *plan = NULL;
    targets_to_plan(r);
    if (!destroying && mxr__order_prepare(rt->order, &r->pb) == 0) {
        cp = cached_plan_new(rt, &r->pb, r->in.domain);
        plan = cp ? user_copy(rt, cp, r->input) : user_pack(rt, r);
    }
    if (cp && r->in.kind == MXR__INPUT_DOMAIN)
        cache_plan(rt, cp);
    else
        mxr__free(&rt->core->a, cp);
    mxr_route_cb cb = r->cb;
    void *arg = r->arg;
    mxr_status st = destroying ? MXR_EDESTROYED : plan ? MXR_OK : MXR_ENOMEM;
    route_free(r);
    if (st == MXR_OK)
        deliver(rt, cb, arg, plan);
    else
        finish(rt, cb, arg, st, plan);
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

/* Appends the answer's addresses to t's, inline while they fit. */
static mxr_status add_target_addrs(mxr__route *r, mxr__target *t,
                                   const mxr__answer *ans)
{
    size_t total = t->naddrs + ans->count;
    if (total > TARGET_ADDRS_INLINE) {
        mxr__alloc *a = &r->rt->core->a;
        mxr_addr *own = t->addrs == t->inline_addrs ? NULL : t->addrs;
        mxr_addr *grown = mxr__realloc(a, own, total * sizeof *grown);
        if (!grown)
            return MXR_ENOMEM;
        if (!own && t->naddrs)
            memcpy(grown, t->inline_addrs, t->naddrs * sizeof *grown);
        t->addrs = grown;
    } else {
        t->addrs = t->inline_addrs;
    }
    for (size_t i = 0; i < ans->count; i++)
        t->addrs[t->naddrs + i] = mxr__answer_addr(ans, i);
    t->naddrs = total;
    return MXR_OK;
}

static void on_target_addr(mxr__lookup_req *req, const mxr__answer *ans,
                           uint32_t ttl)
{
    mxr__target *t = mxr__container_of(req, target_query, req)->t;
    mxr__route *r = t->r;
    mxr__pb_lower_ttl(&r->pb, ttl);
    if (ans->rcode == MXR__DNS_OK && ans->count > 0) {
        if (ans->served_until_ms < t->served_until_ms)
            t->served_until_ms = ans->served_until_ms;
        if (add_target_addrs(r, t, ans) != MXR_OK)
            t->temp_failed = true;
        t->via_cname |= ans->via_cname;
    } else if (mxr__rcode_is_temporary(ans->rcode)) {
        t->temp_failed = true;
    }
    lookup_done(r);
}

static bool want_family(const mxr__router *rt, int family)
{
    mxr_family f = rt->cfg.family;
    return family == AF_INET ? f != MXR_FAMILY_IPV6 : f != MXR_FAMILY_IPV4;
}

static void lookup_target(mxr__route *r, mxr__target *t)
{
    static const struct {
        int family;
        uint16_t qtype;
    } kinds[] = {{AF_INET6, MXR__TYPE_AAAA}, {AF_INET, MXR__TYPE_A}};
    for (size_t i = 0; i < 2; i++) {
        if (!want_family(r->rt, kinds[i].family))
            continue;
        t->q[i].t = t;
        r->outstanding++;
        if (mxr__lookup(r->rt->dns, &t->q[i].req, t->name, kinds[i].qtype,
                        on_target_addr) != MXR_OK) {
            t->temp_failed = true;
            r->outstanding--;
        }
    }
}

static bool is_local_name(const mxr__router *rt, const char *name)
{
    for (size_t i = 0; i < rt->order->nlocal_names; i++)
        if (strcmp(rt->order->local_names[i], name) == 0)
            return true;
    return false;
}

/* Turn each finished target into a host or a skipped entry. One of our
 * own names stays a host even without addresses: self-pruning must see it
 * (if our own lookup failed we are still the MX, not a backup's client).
 * The served TTLs are read here, so that all of them are as of one time. */
static void targets_to_plan(mxr__route *r)
{
    uint64_t now = mxr__core_now(r->rt->core);
    r->pb.mx_ttl = mxr__served_ttl_left(r->mx_served_until_ms, now);
    for (size_t i = 0; i < r->ntargets; i++) {
        mxr__target *t = &r->targets[i];
        if (t->naddrs == 0 && !is_local_name(r->rt, t->name)) {
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
        mxr__host *h =
            mxr__pb_add_host(&r->pb, t->name, t->pref, src, r->rt->cfg.port);
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
    /* Not its name and address buffers: written before they are read. */
    memset(t, 0, offsetof(mxr__target, name));
    t->r = r;
    t->pref = pref;
    t->served_until_ms = UINT64_MAX; /* lowered by each address answer */
    strcpy(t->name, name);
    return t;
}

/* ------------------------------------------------------- the MX answer */

/* An MX record's preference and place in the answer (a stable sort). */
typedef struct sorted_mx {
    uint16_t pref;
    size_t at;
} sorted_mx;

static int cmp_mx(const void *a, const void *b)
{
    const sorted_mx *x = a;
    const sorted_mx *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->at < y->at ? -1 : (x->at > y->at); /* stable: answer order */
}

static bool all_root(const mxr__answer *ans)
{
    char buf[MXR__ANSWER_TEXT_MAX];
    for (size_t i = 0; i < ans->count; i++)
        if (mxr__answer_mx(ans, i, buf).target[0] != '\0')
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

/* Room for n targets: a pooled block when they fit one. */
static mxr_status targets_alloc(mxr__route *r, size_t n)
{
    r->targets_pooled = n <= TARGETS_INLINE;
    r->targets = r->targets_pooled
                     ? mxr__pool_get(&r->rt->target_pool)
                     : mxr__calloc(&r->rt->core->a, n, sizeof *r->targets);
    return r->targets ? MXR_OK : MXR_ENOMEM;
}

#define SORT_ON_STACK 64 /* MX answers this small sort without a block */

static int take_mx_targets(mxr__route *r, const mxr__answer *ans)
{
    mxr__alloc *a = &r->rt->core->a;
    sorted_mx stack[SORT_ON_STACK];
    sorted_mx *sorted = ans->count <= SORT_ON_STACK
                            ? stack
                            : mxr__malloc(a, ans->count * sizeof *sorted);
    if (!sorted || targets_alloc(r, ans->count) != MXR_OK) {
        if (sorted != stack)
            mxr__free(a, sorted);
        return -1;
    }
    char buf[MXR__ANSWER_TEXT_MAX];
    for (size_t i = 0; i < ans->count; i++)
        sorted[i] = (sorted_mx){mxr__answer_mx(ans, i, buf).pref, i};
    qsort(sorted, ans->count, sizeof *sorted, cmp_mx);
    for (size_t i = 0; i < ans->count; i++) {
        char norm[MXR__NAME_MAX + 1];
        mxr__mx mx = mxr__answer_mx(ans, sorted[i].at, buf);
        mxr_reason why = target_problem(r, &mx, norm);
        if (why == MXR_REASON_NONE)
            add_target(r, norm, mx.pref);
        else
            mxr__pb_skip(&r->pb,
                         why == MXR_REASON_NULL_MX_ENTRY ? "." : mx.target,
                         mx.pref, why);
    }
    if (sorted != stack)
        mxr__free(a, sorted);
    return 0;
}

/* The MX lookup still counts as outstanding here, so no completion can
 * happen before every target lookup has been issued. */
static void start_targets(mxr__route *r)
{
    for (size_t i = 0; i < r->ntargets; i++)
        lookup_target(r, &r->targets[i]);
}

static void on_mx(mxr__lookup_req *req, const mxr__answer *ans, uint32_t ttl)
{
    mxr__route *r = mxr__container_of(req, mxr__route, mx_req);
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
        if (targets_alloc(r, 1) == MXR_OK) {
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

static void literal_ready(mxr__task *t)
{
    route_complete(mxr__container_of(t, mxr__route, ready));
}

/* An address literal routes to that address: no DNS, but the same safety
 * filters (a recipient's literal is as untrusted as DNS). */
static mxr_status route_literal(mxr__router *rt, const mxr__input *in,
                                const char *input, mxr_route_cb cb, void *arg)
{
    mxr__route *r = route_new(rt, input, cb, arg);
    if (!r)
        return MXR_ENOMEM;
    r->in = *in;
    mxr__host *h = mxr__pb_add_host(&r->pb, in->domain, 0, MXR_SOURCE_LITERAL,
                                    rt->cfg.port);
    if (!h || mxr__pb_add_addr(&r->pb, h, &in->literal) != 0) {
        route_free(r);
        return MXR_ENOMEM;
    }
    mxr__core_defer(rt->core, &r->ready, literal_ready);
    mxr__core_request_begin(rt->core);
    return MXR_OK;
}

static mxr_status route_cached(mxr__router *rt, const cached_plan *cp,
                               const char *input, mxr_route_cb cb, void *arg)
{
    if (ready_reserve(rt) != MXR_OK)
        return MXR_ENOMEM;
    mxr_plan *plan = user_copy(rt, cp, input);
    if (!plan)
        return MXR_ENOMEM;
    /* cached when its TTLs were read, for its TTL (cache_plan) */
    uint64_t expires = cp->node.expires_ms;
    uint64_t built = expires - (uint64_t)mxr__tmpl_ttl(template_of(cp)) * 1000;
    mxr__plan_count_down(plan, built, expires, mxr__core_now(rt->core));
    ready_push(rt, cb, arg, plan);
    rt->stats.plan_hits++;
    mxr__core_request_begin(rt->core);
    return MXR_OK;
}

static mxr_status route_resolve(mxr__router *rt, const mxr__input *in,
                                const char *input, mxr_route_cb cb, void *arg)
{
    mxr__route *r = route_new(rt, input, cb, arg);
    if (!r)
        return MXR_ENOMEM;
    r->in = *in;
    r->outstanding = 1;
    mxr_status st =
        mxr__lookup(rt->dns, &r->mx_req, in->domain, MXR__TYPE_MX, on_mx);
    if (st != MXR_OK) {
        route_free(r);
        return st;
    }
    mxr__core_request_begin(rt->core);
    return MXR_OK;
}

mxr_status mxr__route_start(mxr__router *rt, const char *input, mxr_route_cb cb,
                            void *arg)
{
    mxr__input in;
    mxr__core *core = rt->core;
    if (core->destroying)
        return MXR_EDESTROYED;
    if (mxr__input_parse(input, &in, core->err, sizeof core->err) != MXR_OK)
        return MXR_EBADNAME;
    if (core->pending >= rt->cfg.max_pending) {
        mxr__core_error(core, "%zu requests pending", core->pending);
        return MXR_EBUSY;
    }
    rt->stats.routes++;
    if (in.kind == MXR__INPUT_LITERAL)
        return route_literal(rt, &in, input, cb, arg);
    char key[MXR__NAME_MAX + 2];
    mxr__cache_node *hit = mxr__cache_find(
        rt->plans, key, plan_key(key, in.domain), mxr__core_now(core));
    if (hit)
        return route_cached(rt, mxr__list_entry(hit, cached_plan, node), input,
                            cb, arg);
    return route_resolve(rt, &in, input, cb, arg);
}

/* ---------------------------------------------------------- lifetime */

mxr__router *mxr__router_new(mxr__core *core, mxr__lookups *dns,
                             mxr__cache *plans, mxr__policies *const *policies,
                             mxr__rng *rng, const mxr__order_config *order,
                             const mxr__router_config *cfg)
{
    mxr__router *rt = mxr__calloc(&core->a, 1, sizeof *rt);
    if (!rt)
        return NULL;
    *rt = (mxr__router){.core = core,
                        .dns = dns,
                        .plans = plans,
                        .policies = policies,
                        .rng = rng,
                        .order = order,
                        .cfg = *cfg};
    rt->plan_kind = mxr__cache_kind_add(plans, drop_plan, &core->a);
    if (rt->plan_kind < 0) {
        mxr__free(&core->a, rt);
        return NULL;
    }
    mxr__list_init(&rt->jobs);
    mxr__pool_init(&rt->job_pool, &core->a, sizeof(mxr__route) + INPUT_INLINE,
                   JOB_POOL_MAX);
    mxr__pool_init(&rt->target_pool, &core->a,
                   TARGETS_INLINE * sizeof(mxr__target), JOB_POOL_MAX);
    return rt;
}

/* Engine teardown: lookups were cancelled already, so a job still here
 * is one that never got its answers; end it once. */
void mxr__router_abort_all(mxr__router *rt)
{
    while (!mxr__list_empty(&rt->jobs)) {
        mxr__route *r = mxr__list_entry(rt->jobs.next, mxr__route, link);
        mxr_route_cb cb = r->cb;
        void *arg = r->arg;
        route_free(r);
        finish(rt, cb, arg, MXR_EDESTROYED, NULL);
    }
}

void mxr__router_free(mxr__router *rt)
{
    if (!rt)
        return;
    pools_drain(rt);
    mxr__free(&rt->core->a, rt->ready);
    mxr__free(&rt->core->a, rt);
}

const mxr__router_stats *mxr__router_stats_of(const mxr__router *rt)
{
    return &rt->stats;
}
