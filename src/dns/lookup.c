/* lookup.c -- DNS lookups through the cache. One query per (name, type) is
 * in flight however many routes ask (they wait on it together), and at
 * most max_inflight queries are sent at once: c-ares's cost per query
 * grows with the number in flight, so the rest wait in a FIFO. */
#include "dns/lookup.h"
#include "base/hash.h"
#include "base/name.h"
#include "base/pool.h"

#include <stddef.h>
#include <string.h>

struct mxr__lookups {
    mxr__core *core;
    mxr__backend *backend;
    mxr__cache *cache;
    int cache_kind; /* answers, in the cache */
    mxr__lookup_config cfg;
    mxr__htable pending; /* queries in flight or waiting, by key */
    mxr__pool pqs;       /* their blocks, reused query after query */
    struct mxr__pq *waitq_head, *waitq_tail;
    mxr__lookup_stats stats;
};

typedef struct mxr__pq mxr__pq;
struct mxr__pq {
    mxr__hnode node; /* in the pending table */
    mxr__pq *qnext;  /* wait queue */
    mxr__lookups *l;
    mxr__task fail;   /* a send that failed reports from here */
    bool sending;     /* inside backend->query */
    bool failed_sync; /* the backend called back from inside query */
    mxr__rcode sync_rc;
    uint8_t hops; /* CNAMEs chased so far */
    bool via_cname;
    uint32_t chase_ttl; /* min TTL over the chased CNAMEs */
    uint16_t qtype;
    mxr__lookup_req *waiters, **wtail;
    size_t keylen;
    /* The name buffers come last: pq_new zeroes only what is before them. */
    char asked[MXR__NAME_MAX + 1];   /* the name in the current question */
    char key[2 + MXR__NAME_MAX + 1]; /* 2 bytes of type, the name, NUL */
};

#define KEY_MAX MXR__ANSWER_KEY_MAX
/* Free query blocks kept for the next ones: a burst of answers frees many
 * at once, the routes they finish ask again right after; queries wait in
 * a FIFO up to several windows long. Freed with the lookups. */
#define PQ_POOL_MAX 2048

static void send_pq(mxr__lookups *l, mxr__pq *pq);

/* A CNAME whose target lives in another zone: authoritative servers do not
 * chase it, so we ask again for the target (bounded; a loop ends as an
 * untrustworthy answer). Not through the cache or the coalescing table, so
 * a loop cannot wait on itself. Returns true when a new query went out. */
static bool chase_cname(mxr__lookups *l, mxr__pq *pq, const mxr__answer *ans)
{
    const char *target = ans ? mxr__answer_cname_target(ans) : NULL;
    if (!target || ans->rcode != MXR__DNS_NODATA || l->core->destroying)
        return false;
    char next[MXR__NAME_MAX + 1];
    if (pq->hops >= MXR__CNAME_CHAIN_MAX ||
        mxr__hostname_normalize(target, strlen(target), next, NULL, 0) !=
            MXR_OK)
        return false;
    pq->hops++;
    pq->via_cname = true;
    if (ans->ttl < pq->chase_ttl)
        pq->chase_ttl = ans->ttl;
    memcpy(pq->asked, next, sizeof next);
    send_pq(l, pq);
    return true;
}

/* Fold what the chase learnt into the final answer. */
static void apply_chase(const mxr__pq *pq, mxr__answer *ans)
{
    if (pq->hops == 0)
        return;
    if (ans->dangling && pq->hops >= MXR__CNAME_CHAIN_MAX)
        ans->rcode = MXR__DNS_NETWORK; /* chain too long */
    ans->via_cname = true;
    if (pq->chase_ttl < ans->ttl)
        ans->ttl = pq->chase_ttl;
}

/* ------------------------------------------------- the pending table */

static mxr__pq *pq_find(mxr__lookups *l, const char *key, size_t len,
                        uint64_t h)
{
    mxr__htable_each_in(n, &l->pending, h)
    {
        mxr__pq *p = mxr__container_of(n, mxr__pq, node);
        if (n->hash == h && p->keylen == len && memcmp(p->key, key, len) == 0)
            return p;
    }
    return NULL;
}

/* ---------------------------------------------------------- answers */

static uint32_t clamp_u32(uint32_t v, int64_t lo, int64_t hi)
{
    if (v < lo)
        return (uint32_t)lo;
    return v > hi ? (uint32_t)hi : v;
}

/* TTL clamps: positive answers between min and max, negative ones up to
 * their own bound, transient failures only briefly, cancellations never. */
static uint32_t cache_ttl(const mxr__lookup_config *c, const mxr__answer *ans)
{
    switch (ans->rcode) {
    case MXR__DNS_OK:
        return clamp_u32(ans->ttl, c->ttl_min, c->ttl_max);
    case MXR__DNS_NODATA:
    case MXR__DNS_NXDOMAIN:
        return clamp_u32(ans->ttl, c->ttl_min, c->neg_ttl_max);
    case MXR__DNS_CANCELLED:
        return 0;
    default:
        return (uint32_t)c->tempfail_ttl;
    }
}

static void drop_answer(void *ctx, mxr__cache_node *node)
{
    mxr__answer_unref(ctx, mxr__list_entry(node, mxr__answer, node));
}

static bool keyed_by(const mxr__answer *ans, const char *key, size_t len)
{
    return ans->node.keylen == len && memcmp(ans->key, key, len) == 0;
}

/* The answer is its own cache entry when it answers the question asked
 * first, as it usually does; one that answers a chased CNAME's target or
 * a failure (which has no key) is cached as a copy under the question. */
static void cache_answer(mxr__lookups *l, const mxr__pq *pq, mxr__answer *ans,
                         uint32_t ttl)
{
    mxr__alloc *a = &l->core->a;
    if (ttl == 0 || l->core->destroying)
        return;
    mxr__answer *entry = ans;
    if (keyed_by(ans, pq->key, pq->keylen))
        mxr__answer_ref(ans);
    else if (!(entry = mxr__answer_rekeyed(a, ans, pq->key, pq->keylen)))
        return;
    mxr__cache_insert(l->cache, &entry->node, mxr__answer_bytes(entry),
                      entry->node.expires_ms, l->cache_kind);
}

static void deliver_all(mxr__pq *pq, const mxr__answer *ans, uint32_t ttl)
{
    for (mxr__lookup_req *w = pq->waiters, *next; w; w = next) {
        next = w->next;
        w->done(w, ans, ttl);
    }
}

static void pump(mxr__lookups *l);

static void on_dns(void *arg, mxr__rcode rc, const uint8_t *wire, size_t len)
{
    mxr__pq *pq = arg;
    mxr__lookups *l = pq->l;
    mxr__alloc *a = &l->core->a;
    if (pq->sending) { /* keep the callback out of the caller's frame */
        pq->failed_sync = true;
        pq->sync_rc = wire ? MXR__DNS_NETWORK : rc;
        return;
    }
    size_t max = l->cfg.max_mx_records;
    mxr__answer *ans =
        wire ? mxr__answer_parse(a, wire, len, pq->asked, pq->qtype, max)
             : mxr__answer_error(a, rc, pq->qtype, 0);
    static const mxr__answer oom = {.rcode = MXR__DNS_NETWORK};
    l->stats.inflight--;
    if (!wire && rc == MXR__DNS_TIMEOUT)
        l->stats.queries_timed_out++;
    if (chase_cname(l, pq, ans)) {
        mxr__answer_unref(a, ans);
        return;
    }
    if (ans)
        apply_chase(pq, ans);
    mxr__htable_remove(&l->pending, &pq->node);
    uint32_t ttl = ans ? cache_ttl(&l->cfg, ans) : 0;
    if (ans) {
        uint64_t now = mxr__core_now(l->core);
        ans->node.expires_ms = now + (uint64_t)ttl * 1000;
        ans->served_until_ms = now + (uint64_t)ans->ttl * 1000;
        cache_answer(l, pq, ans, ttl);
    }
    deliver_all(pq, ans ? ans : &oom, ttl);
    mxr__answer_unref(a, ans);
    mxr__pool_put(&l->pqs, pq);
    pump(l);
}

/* ----------------------------------------------------------- sending */

static void fail_pq(mxr__task *t)
{
    mxr__pq *pq = mxr__container_of(t, mxr__pq, fail);
    on_dns(pq, pq->failed_sync ? pq->sync_rc : MXR__DNS_NETWORK, NULL, 0);
}

static void send_pq(mxr__lookups *l, mxr__pq *pq)
{
    if (++l->stats.inflight > l->stats.inflight_max)
        l->stats.inflight_max = l->stats.inflight;
    l->stats.queries_sent++;
    pq->sending = true;
    int rc =
        l->backend->ops->query(l->backend, pq->asked, pq->qtype, on_dns, pq);
    pq->sending = false;
    if (rc != 0 || pq->failed_sync) /* report from the next round */
        mxr__core_defer(l->core, &pq->fail, fail_pq);
}

static mxr__pq *waitq_pop(mxr__lookups *l)
{
    mxr__pq *pq = l->waitq_head;
    if (pq && !(l->waitq_head = pq->qnext))
        l->waitq_tail = NULL;
    return pq;
}

static void pump(mxr__lookups *l)
{
    while (l->stats.inflight < l->cfg.max_inflight && l->waitq_head)
        send_pq(l, waitq_pop(l));
}

void mxr__lookups_cancel_waiting(mxr__lookups *l)
{
    mxr__pq *pq;
    while ((pq = waitq_pop(l)) != NULL) {
        l->stats.inflight++; /* on_dns balances it */
        on_dns(pq, MXR__DNS_CANCELLED, NULL, 0);
    }
}

static void queue_or_send(mxr__lookups *l, mxr__pq *pq)
{
    if (l->stats.inflight < l->cfg.max_inflight) {
        send_pq(l, pq);
        return;
    }
    if (l->waitq_tail)
        l->waitq_tail->qnext = pq;
    else
        l->waitq_head = pq;
    l->waitq_tail = pq;
}

/* ------------------------------------------------------------ lookup */

static void deliver_cached(mxr__task *t)
{
    mxr__lookup_req *req = mxr__container_of(t, mxr__lookup_req, task);
    mxr__lookups *l = req->owner;
    mxr__answer *a = req->hit;
    req->hit = NULL;
    uint32_t ttl =
        mxr__seconds_left(a->node.expires_ms, mxr__core_now(l->core));
    req->done(req, a, ttl); /* may free req */
    mxr__answer_unref(&l->core->a, a);
}

static void add_waiter(mxr__pq *pq, mxr__lookup_req *req)
{
    req->next = NULL;
    *pq->wtail = req;
    pq->wtail = &req->next;
}

static mxr__pq *pq_new(mxr__lookups *l, const char *key, size_t len, uint64_t h,
                       uint16_t qtype)
{
    mxr__pq *pq = mxr__pool_get(&l->pqs);
    if (!pq)
        return NULL;
    /* Not the name buffers: zeroing them would write bytes no query
     * reads (and their cache misses show in the cold path's profile). */
    memset(pq, 0, offsetof(mxr__pq, asked));
    pq->node.hash = h;
    pq->l = l;
    pq->chase_ttl = UINT32_MAX;
    pq->qtype = qtype;
    pq->wtail = &pq->waiters;
    pq->keylen = len;
    memcpy(pq->key, key, len);
    memcpy(pq->asked, key + 2, len - 2);
    return pq;
}

mxr_status mxr__lookup(mxr__lookups *l, mxr__lookup_req *req, const char *name,
                       uint16_t qtype, mxr__lookup_done done)
{
    char key[KEY_MAX];
    if (l->core->destroying) /* the backend may be gone already */
        return MXR_EDESTROYED;
    *req = (mxr__lookup_req){.done = done, .owner = l};
    size_t len = mxr__answer_key(key, name, qtype);
    mxr__cache_node *node =
        mxr__cache_find(l->cache, key, len, mxr__core_now(l->core));
    if (node) {
        mxr__answer *hit = mxr__list_entry(node, mxr__answer, node);
        /* Handed over from the next round, never from inside this call. */
        l->stats.cache_hits++;
        mxr__answer_ref(hit);
        req->hit = hit;
        mxr__core_defer(l->core, &req->task, deliver_cached);
        return MXR_OK;
    }
    uint64_t h = mxr__hash_bytes(key, len);
    mxr__pq *pq = pq_find(l, key, len, h);
    if (pq) {
        l->stats.queries_coalesced++;
        add_waiter(pq, req);
        return MXR_OK;
    }
    if (!(pq = pq_new(l, key, len, h, qtype)))
        return MXR_ENOMEM;
    add_waiter(pq, req);
    mxr__htable_insert(&l->pending, &pq->node);
    queue_or_send(l, pq);
    return MXR_OK;
}

/* ---------------------------------------------------------- lifetime */

mxr__lookups *mxr__lookups_new(mxr__core *core, mxr__backend *backend,
                               mxr__cache *cache, const mxr__lookup_config *cfg)
{
    mxr__lookups *l = mxr__calloc(&core->a, 1, sizeof *l);
    if (!l)
        return NULL;
    *l = (mxr__lookups){
        .core = core, .backend = backend, .cache = cache, .cfg = *cfg};
    l->cache_kind = mxr__cache_kind_add(cache, drop_answer, &core->a);
    if (l->cache_kind < 0 ||
        mxr__htable_init(&l->pending, &core->a, 256) != MXR_OK) {
        mxr__free(&core->a, l);
        return NULL;
    }
    mxr__pool_init(&l->pqs, &core->a, sizeof(mxr__pq), PQ_POOL_MAX);
    return l;
}

void mxr__lookups_free(mxr__lookups *l)
{
    if (!l)
        return;
    mxr__htable_free(&l->pending);
    mxr__pool_drain(&l->pqs);
    mxr__free(&l->core->a, l);
}

const mxr__lookup_stats *mxr__lookups_stats(const mxr__lookups *l)
{
    return &l->stats;
}

void mxr__lookups_set_backend(mxr__lookups *l, mxr__backend *backend)
{
    l->backend = backend;
}
