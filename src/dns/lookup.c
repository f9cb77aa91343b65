/* lookup.c -- DNS lookups through the cache. One query per (name, type) is
 * in flight however many routes ask (they wait on it together), and at
 * most MXR_OPT_MAX_INFLIGHT queries are sent at once: c-ares's cost per
 * query grows with the number in flight, so the rest wait in a FIFO. */
#include "engine/engine.h"
#include "base/name.h"

#include <string.h>

typedef struct mxr__waiter {
    struct mxr__waiter *next;
    mxr__lookup_cb cb;
    void *arg;
} mxr__waiter;

struct mxr__pq {
    mxr__pq *hnext; /* hash chain */
    mxr__pq *qnext; /* wait queue */
    mxr_engine *e;
    bool sending;     /* inside backend->query */
    bool failed_sync; /* the backend called back from inside query */
    mxr__rcode sync_rc;
    uint8_t hops;       /* CNAMEs chased so far */
    bool via_cname;
    uint32_t chase_ttl; /* min TTL over the chased CNAMEs */
    char asked[MXR__NAME_MAX + 1]; /* the name in the current question */
    uint64_t hash;
    uint16_t qtype;
    mxr__waiter *waiters, **wtail;
    mxr__waiter first; /* most queries have one waiter: no allocation */
    size_t keylen;
    char key[]; /* 2 bytes of type, then the name and its NUL */
};

#define KEY_MAX (2 + MXR__NAME_MAX + 1)

static size_t make_key(char *key, const char *name, uint16_t qtype)
{
    size_t n = strlen(name);
    key[0] = (char)(qtype >> 8);
    key[1] = (char)(qtype & 0xff);
    memcpy(key + 2, name, n + 1);
    return n + 3;
}

static void send_pq(mxr_engine *e, mxr__pq *pq);

/* A CNAME whose target lives in another zone: authoritative servers do not
 * chase it, so we ask again for the target (bounded; a loop ends as an
 * untrustworthy answer). Not through the cache or the coalescing table, so
 * a loop cannot wait on itself. Returns true when a new query went out. */
static bool chase_cname(mxr_engine *e, mxr__pq *pq, const mxr__answer *ans)
{
    if (!ans || ans->rcode != MXR__DNS_NODATA || !ans->cname_target ||
        e->destroying)
        return false;
    char next[MXR__NAME_MAX + 1];
    if (pq->hops >= MXR__CNAME_CHAIN_MAX ||
        mxr__hostname_normalize(ans->cname_target, strlen(ans->cname_target),
                                next, NULL, 0) != MXR_OK)
        return false;
    pq->hops++;
    pq->via_cname = true;
    if (ans->ttl < pq->chase_ttl)
        pq->chase_ttl = ans->ttl;
    memcpy(pq->asked, next, sizeof next);
    send_pq(e, pq);
    return true;
}

/* Fold what the chase learnt into the final answer. */
static void apply_chase(const mxr__pq *pq, mxr__answer *ans)
{
    if (pq->hops == 0)
        return;
    if (ans->cname_target && pq->hops >= MXR__CNAME_CHAIN_MAX)
        ans->rcode = MXR__DNS_NETWORK; /* chain too long */
    ans->via_cname = true;
    if (pq->chase_ttl < ans->ttl)
        ans->ttl = pq->chase_ttl;
}

static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------- the pending table */

int mxr__lookup_init(mxr_engine *e)
{
    e->pq_buckets = 256;
    e->pq_table = mxr__calloc(&e->a, e->pq_buckets, sizeof *e->pq_table);
    return e->pq_table ? 0 : -1;
}

void mxr__lookup_free(mxr_engine *e)
{
    mxr__free(&e->a, e->pq_table);
    e->pq_table = NULL;
}

static mxr__pq *pq_find(mxr_engine *e, const char *key, size_t len, uint64_t h)
{
    for (mxr__pq *p = e->pq_table[h & (e->pq_buckets - 1)]; p; p = p->hnext)
        if (p->hash == h && p->keylen == len && memcmp(p->key, key, len) == 0)
            return p;
    return NULL;
}

/* Doubling keeps chains short; on allocation failure the old table stays
 * (correct, only slower). */
static void pq_grow(mxr_engine *e)
{
    size_t n = e->pq_buckets * 2;
    mxr__pq **t = mxr__calloc(&e->a, n, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i < e->pq_buckets; i++) {
        for (mxr__pq *p = e->pq_table[i], *next; p; p = next) {
            next = p->hnext;
            p->hnext = t[p->hash & (n - 1)];
            t[p->hash & (n - 1)] = p;
        }
    }
    mxr__free(&e->a, e->pq_table);
    e->pq_table = t;
    e->pq_buckets = n;
}

static void pq_insert(mxr_engine *e, mxr__pq *pq)
{
    if (e->pq_count + 1 > e->pq_buckets)
        pq_grow(e);
    mxr__pq **slot = &e->pq_table[pq->hash & (e->pq_buckets - 1)];
    pq->hnext = *slot;
    *slot = pq;
    e->pq_count++;
}

static void pq_unlink(mxr_engine *e, mxr__pq *pq)
{
    mxr__pq **pp = &e->pq_table[pq->hash & (e->pq_buckets - 1)];
    while (*pp != pq)
        pp = &(*pp)->hnext;
    *pp = pq->hnext;
    e->pq_count--;
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
static uint32_t cache_ttl(const mxr_engine *e, const mxr__answer *ans)
{
    switch (ans->rcode) {
    case MXR__DNS_OK:
        return clamp_u32(ans->ttl, e->v[MXR_OPT_TTL_MIN],
                         e->v[MXR_OPT_TTL_MAX]);
    case MXR__DNS_NODATA:
    case MXR__DNS_NXDOMAIN:
        return clamp_u32(ans->ttl, e->v[MXR_OPT_TTL_MIN],
                         e->v[MXR_OPT_NEG_TTL_MAX]);
    case MXR__DNS_CANCELLED:
        return 0;
    default:
        return (uint32_t)e->v[MXR_OPT_TEMPFAIL_TTL];
    }
}

static void release_answer(void *ctx, void *value)
{
    mxr__answer_unref(ctx, value);
}

static void cache_answer(mxr_engine *e, const mxr__pq *pq, mxr__answer *ans,
                         uint32_t ttl)
{
    if (ttl == 0 || e->destroying)
        return;
    mxr__answer_ref(ans);
    mxr__cache_put(e->cache, pq->key, pq->keylen, ans, mxr__answer_bytes(ans),
                   ans->expires_ms, release_answer, &e->a);
}

static void deliver_all(mxr_engine *e, mxr__pq *pq, const mxr__answer *ans,
                        uint32_t ttl)
{
    for (mxr__waiter *w = pq->waiters, *next; w; w = next) {
        next = w->next;
        w->cb(w->arg, ans, ttl);
        if (w != &pq->first)
            mxr__free(&e->a, w);
    }
}

static void pump(mxr_engine *e);

static void on_dns(void *arg, mxr__rcode rc, const uint8_t *wire, size_t len)
{
    mxr__pq *pq = arg;
    mxr_engine *e = pq->e;
    if (pq->sending) { /* keep the callback out of the caller's frame */
        pq->failed_sync = true;
        pq->sync_rc = wire ? MXR__DNS_NETWORK : rc;
        return;
    }
    size_t max = (size_t)e->v[MXR_OPT_MAX_MX_RECORDS];
    mxr__answer *ans =
        wire ? mxr__answer_parse(&e->a, wire, len, pq->asked, pq->qtype, max)
             : mxr__answer_error(&e->a, rc, pq->qtype, 0);
    static const mxr__answer oom = {.rcode = MXR__DNS_NETWORK};
    e->inflight--;
    if (chase_cname(e, pq, ans)) {
        mxr__answer_unref(&e->a, ans);
        return;
    }
    if (ans)
        apply_chase(pq, ans);
    pq_unlink(e, pq);
    uint32_t ttl = ans ? cache_ttl(e, ans) : 0;
    if (ans) {
        uint64_t now = mxr__now_ms(e);
        ans->expires_ms = now + (uint64_t)ttl * 1000;
        ans->served_until_ms = now + (uint64_t)ans->ttl * 1000;
        cache_answer(e, pq, ans, ttl);
    }
    deliver_all(e, pq, ans ? ans : &oom, ttl);
    mxr__answer_unref(&e->a, ans);
    mxr__free(&e->a, pq);
    pump(e);
}

/* ----------------------------------------------------------- sending */

static void fail_pq(mxr_engine *e, void *p1, void *p2, void *p3)
{
    mxr__pq *pq = p1;
    on_dns(pq, pq->failed_sync ? pq->sync_rc : MXR__DNS_NETWORK, NULL, 0);
}

static void send_pq(mxr_engine *e, mxr__pq *pq)
{
    e->inflight++;
    if (e->inflight > e->stats.inflight_max)
        e->stats.inflight_max = e->inflight;
    e->stats.queries_sent++;
    pq->sending = true;
    int rc =
        e->backend->ops->query(e->backend, pq->asked, pq->qtype, on_dns, pq);
    pq->sending = false;
    if ((rc != 0 || pq->failed_sync) &&
        mxr__defer(e, fail_pq, pq, NULL, NULL) != 0)
        on_dns(pq, MXR__DNS_NETWORK, NULL, 0); /* out of memory: last resort */
}

static mxr__pq *waitq_pop(mxr_engine *e)
{
    mxr__pq *pq = e->waitq_head;
    if (pq && !(e->waitq_head = pq->qnext))
        e->waitq_tail = NULL;
    return pq;
}

static void pump(mxr_engine *e)
{
    while (e->inflight < (size_t)e->v[MXR_OPT_MAX_INFLIGHT] && e->waitq_head)
        send_pq(e, waitq_pop(e));
}

void mxr__lookup_cancel_waiting(mxr_engine *e)
{
    mxr__pq *pq;
    while ((pq = waitq_pop(e)) != NULL) {
        e->inflight++; /* on_dns balances it */
        on_dns(pq, MXR__DNS_CANCELLED, NULL, 0);
    }
}

static void queue_or_send(mxr_engine *e, mxr__pq *pq)
{
    if (e->inflight < (size_t)e->v[MXR_OPT_MAX_INFLIGHT]) {
        send_pq(e, pq);
        return;
    }
    if (e->waitq_tail)
        e->waitq_tail->qnext = pq;
    else
        e->waitq_head = pq;
    e->waitq_tail = pq;
}

/* ------------------------------------------------------------ lookup */

static void deliver_cached(mxr_engine *e, void *cb, void *arg, void *ans)
{
    mxr__answer *a = ans;
    uint32_t ttl = mxr__seconds_left(a->expires_ms, mxr__now_ms(e));
    ((mxr__lookup_cb)(uintptr_t)cb)(arg, a, ttl);
    mxr__answer_unref(&e->a, a);
}

static int add_waiter(mxr_engine *e, mxr__pq *pq, mxr__lookup_cb cb, void *arg)
{
    mxr__waiter *w = pq->waiters ? mxr__malloc(&e->a, sizeof *w) : &pq->first;
    if (!w)
        return -1;
    *w = (mxr__waiter){.cb = cb, .arg = arg};
    *pq->wtail = w;
    pq->wtail = &w->next;
    return 0;
}

static mxr__pq *pq_new(mxr_engine *e, const char *key, size_t len, uint64_t h,
                       uint16_t qtype)
{
    mxr__pq *pq = mxr__malloc(&e->a, sizeof *pq + len);
    if (!pq)
        return NULL;
    *pq = (mxr__pq){.e = e, .hash = h, .qtype = qtype, .keylen = len,
                    .chase_ttl = UINT32_MAX};
    pq->wtail = &pq->waiters;
    memcpy(pq->key, key, len);
    memcpy(pq->asked, key + 2, len - 2);
    return pq;
}

int mxr__lookup(mxr_engine *e, const char *name, uint16_t qtype,
                mxr__lookup_cb cb, void *arg)
{
    char key[KEY_MAX];
    if (e->destroying) /* the backend may be gone already */
        return -1;
    /* Failures after this point are reported through the deferred queue,
     * never by calling back from inside the caller's frame. */
    if (mxr__defer_reserve(e) != 0)
        return -1;
    size_t len = make_key(key, name, qtype);
    mxr__answer *hit = mxr__cache_get(e->cache, key, len, mxr__now_ms(e));
    if (hit) {
        e->stats.cache_hits++;
        mxr__answer_ref(hit);
        if (mxr__defer(e, deliver_cached, (void *)(uintptr_t)cb, arg, hit) == 0)
            return 0;
        mxr__answer_unref(&e->a, hit);
        return -1;
    }
    uint64_t h = hash_key(key, len);
    mxr__pq *pq = pq_find(e, key, len, h);
    if (pq) {
        e->stats.queries_coalesced++;
        return add_waiter(e, pq, cb, arg);
    }
    if (!(pq = pq_new(e, key, len, h, qtype)))
        return -1;
    if (add_waiter(e, pq, cb, arg) != 0) {
        mxr__free(&e->a, pq);
        return -1;
    }
    pq_insert(e, pq);
    queue_or_send(e, pq);
    return 0;
}
