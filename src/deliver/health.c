/* health.c -- host health memory on top of the byte-bounded LRU cache.
 *
 * One cache holds both kinds of entry, told apart by the first key byte:
 *   "h" + host name (ASCII lower-cased)         a host
 *   "a" + '4' or '6' + 4 or 16 address bytes    an address
 * Sharing one cache puts hosts and addresses under a single memory bound
 * and a single LRU, so a flood of failing addresses cannot grow memory and
 * evicts the coldest entries of either kind.
 *
 * An entry expires max_s after its cool-down ends: the cache then forgets
 * it, which is how the failure count decays to zero without a timer.
 * Health is advisory: when memory runs out a failure is simply not
 * recorded, which costs ordering, never correctness. */
#include "deliver/health.h"

#include "dns/cache.h"
#include "base/name.h"

#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#define MS_PER_S UINT64_C(1000)

/* The longest key: the tag byte plus a host name. Addresses need 18. */
#define KEY_MAX (1 + MXR__NAME_MAX)

struct mxr__health {
    mxr__alloc *a;
    mxr__cache *table;
    mxr__health_params params;
};

typedef struct health_entry {
    unsigned failures;
    uint64_t down_until; /* ms */
    uint64_t last_fail;  /* ms */
} health_entry;

typedef struct health_key {
    unsigned char bytes[KEY_MAX];
    size_t len;
} health_key;

/* ---------------------------------------------------------------- keys */

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Host names are case-insensitive; plans carry them lower-cased already,
 * but callers may pass names from elsewhere. A name longer than any valid
 * host name is cut: at worst two invalid names share an entry. */
static health_key host_key(const char *host)
{
    health_key k;
    size_t n = strnlen(host, MXR__NAME_MAX);
    k.bytes[0] = 'h';
    for (size_t i = 0; i < n; i++)
        k.bytes[1 + i] = ascii_lower((unsigned char)host[i]);
    k.len = 1 + n;
    return k;
}

/* Only the bytes the family uses go into the key, matching
 * mxr__addr_equal. Returns false for an unknown family. */
static bool addr_key(const mxr_addr *addr, health_key *k)
{
    size_t n;
    unsigned char family;
    if (addr->family == AF_INET) {
        n = 4;
        family = '4';
    } else if (addr->family == AF_INET6) {
        n = 16;
        family = '6';
    } else {
        return false;
    }
    k->bytes[0] = 'a';
    k->bytes[1] = family;
    memcpy(&k->bytes[2], addr->bytes, n);
    k->len = 2 + n;
    return true;
}

/* ------------------------------------------------------------- entries */

static uint64_t saturating_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* base * 2^(failures-1) seconds, capped at max, in ms. base and max fit
 * in 32 bits, so a shift below 32 fits in 64 bits; past that the cap has
 * long been reached. */
static uint64_t cooldown_ms(const mxr__health_params *p, unsigned failures)
{
    if (p->base_s == 0 || failures == 0)
        return 0;
    unsigned doublings = failures - 1;
    uint64_t s = doublings >= 32 ? p->max_s : (uint64_t)p->base_s << doublings;
    return (s < p->max_s ? s : p->max_s) * MS_PER_S;
}

static void release_entry(void *ctx, void *value)
{
    mxr__free(ctx, value);
}

static const health_entry *find_entry(mxr__health *h, const health_key *k,
                                      uint64_t now_ms)
{
    return mxr__cache_get(h->table, k->bytes, k->len, now_ms);
}

/* Cache values cannot be updated in place (the expiry moves with each
 * failure), so each failure puts a fresh entry that replaces the old. */
static void record_failure(mxr__health *h, const health_key *k, uint64_t now_ms)
{
    const health_entry *old = find_entry(h, k, now_ms);
    unsigned failures = old ? old->failures : 0;
    health_entry *e = mxr__malloc(h->a, sizeof *e);
    if (!e)
        return;
    e->failures = failures < UINT_MAX ? failures + 1 : UINT_MAX;
    e->last_fail = now_ms;
    e->down_until =
        saturating_add(now_ms, cooldown_ms(&h->params, e->failures));
    uint64_t forget_at =
        saturating_add(e->down_until, (uint64_t)h->params.max_s * MS_PER_S);
    /* On failure the cache has released e already; nothing to undo. */
    (void)mxr__cache_put(h->table, k->bytes, k->len, e, sizeof *e, forget_at,
                         release_entry, h->a);
}

static mxr__health_state state_of(mxr__health *h, const health_key *k,
                                  uint64_t now_ms)
{
    mxr__health_state st = {false, 0, 0, 0};
    const health_entry *e = find_entry(h, k, now_ms);
    if (e) {
        st.down = e->down_until > now_ms;
        st.failures = e->failures;
        st.down_until = e->down_until;
        st.last_fail = e->last_fail;
    }
    return st;
}

/* ----------------------------------------------------------------- API */

mxr__health *mxr__health_new(mxr__alloc *a, const mxr__health_params *p)
{
    mxr__health *h = mxr__calloc(a, 1, sizeof *h);
    if (!h)
        return NULL;
    h->table = mxr__cache_new(a, p->max_bytes);
    if (!h->table) {
        mxr__free(a, h);
        return NULL;
    }
    h->a = a;
    h->params = *p;
    return h;
}

void mxr__health_free(mxr__health *h)
{
    if (!h)
        return;
    mxr__cache_free(h->table);
    mxr__free(h->a, h);
}

void mxr__health_fail(mxr__health *h, const char *host, const mxr_addr *addr,
                      uint64_t now_ms)
{
    if (!h)
        return;
    health_key k;
    if (host) {
        k = host_key(host);
        record_failure(h, &k, now_ms);
    }
    if (addr && addr_key(addr, &k))
        record_failure(h, &k, now_ms);
}

void mxr__health_ok(mxr__health *h, const char *host, const mxr_addr *addr,
                    uint64_t now_ms)
{
    (void)now_ms;
    if (!h)
        return;
    health_key k;
    if (host) {
        k = host_key(host);
        mxr__cache_remove(h->table, k.bytes, k.len);
    }
    if (addr && addr_key(addr, &k))
        mxr__cache_remove(h->table, k.bytes, k.len);
}

mxr__health_state mxr__health_host(mxr__health *h, const char *host,
                                   uint64_t now_ms)
{
    mxr__health_state none = {false, 0, 0, 0};
    if (!h || !host)
        return none;
    health_key k = host_key(host);
    return state_of(h, &k, now_ms);
}

mxr__health_state mxr__health_addr(mxr__health *h, const mxr_addr *addr,
                                   uint64_t now_ms)
{
    mxr__health_state none = {false, 0, 0, 0};
    health_key k;
    if (!h || !addr || !addr_key(addr, &k))
        return none;
    return state_of(h, &k, now_ms);
}

size_t mxr__health_bytes(const mxr__health *h)
{
    return h ? mxr__cache_bytes(h->table) : 0;
}

/* ------------------------------------------------------------- reorder */

/* Where an element goes: up before down; among down ones, the least
 * recently failed first when last_fail counts (it is 0 otherwise, and the
 * sort is stable, so plan order holds). */
typedef struct order_key {
    bool down;
    uint64_t last_fail;
} order_key;

static int order_compare(order_key x, order_key y)
{
    if (x.down != y.down)
        return x.down ? 1 : -1;
    return (x.last_fail > y.last_fail) - (x.last_fail < y.last_fail);
}

typedef order_key (*order_key_fn)(const void *elem, void *ctx);

typedef struct reorder_ctx {
    mxr__health *h;
    uint64_t now_ms;
    bool hosts_by_last_fail; /* every host is down */
} reorder_ctx;

/* Binary insertion sort: stable, in place, no allocation (reordering
 * cannot fail), and O(n log n) key look-ups, which dominate the cost:
 * plans hold at most a few hundred hosts and a hundred addresses each.
 * tmp has room for one element. */
static void stable_sort(void *base, size_t n, size_t size, order_key_fn key,
                        void *ctx, void *tmp)
{
    unsigned char *b = base;
    for (size_t i = 1; i < n; i++) {
        order_key ki = key(b + i * size, ctx);
        /* First position whose key is greater than ki: equal keys stay
         * in front, which keeps the sort stable. */
        size_t lo = 0, hi = i;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (order_compare(key(b + mid * size, ctx), ki) > 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (lo == i)
            continue;
        memcpy(tmp, b + i * size, size);
        memmove(b + (lo + 1) * size, b + lo * size, (i - lo) * size);
        memcpy(b + lo * size, tmp, size);
    }
}

/* The down flag comes from the note set by mark_down_hosts, so only the
 * all-down case looks the host up again. */
static order_key host_order_key(const void *elem, void *vctx)
{
    const mxr_candidate *c = elem;
    const reorder_ctx *ctx = vctx;
    order_key k = {(c->notes & MXR_NOTE_DOWN) != 0, 0};
    if (k.down && ctx->hosts_by_last_fail)
        k.last_fail = mxr__health_host(ctx->h, c->host, ctx->now_ms).last_fail;
    return k;
}

static order_key addr_order_key(const void *elem, void *vctx)
{
    const reorder_ctx *ctx = vctx;
    mxr__health_state st = mxr__health_addr(ctx->h, elem, ctx->now_ms);
    order_key k = {st.down, st.down ? st.last_fail : 0};
    return k;
}

/* Sets MXR_NOTE_DOWN on hosts cooling down and clears it on the others
 * (a plan reordered earlier may carry a stale note). Returns how many are
 * down. */
static size_t mark_down_hosts(mxr__health *h, mxr_candidate *cands, size_t n,
                              uint64_t now_ms)
{
    size_t down = 0;
    for (size_t i = 0; i < n; i++) {
        if (mxr__health_host(h, cands[i].host, now_ms).down) {
            cands[i].notes |= MXR_NOTE_DOWN;
            down++;
        } else {
            cands[i].notes &= ~MXR_NOTE_DOWN;
        }
    }
    return down;
}

static void reorder_addrs(mxr_candidate *c, reorder_ctx *ctx)
{
    /* The block belongs to the caller; addrs is const only for users. */
    mxr_addr *addrs = (mxr_addr *)(uintptr_t)c->addrs;
    mxr_addr tmp;
    stable_sort(addrs, c->naddrs, sizeof *addrs, addr_order_key, ctx, &tmp);
}

void mxr__health_reorder(mxr__health *h, mxr_plan *plan, uint64_t now_ms)
{
    if (!h || !plan || plan->ncandidates == 0)
        return;
    mxr_candidate *cands = (mxr_candidate *)(uintptr_t)plan->candidates;
    size_t n = plan->ncandidates;
    reorder_ctx ctx = {h, now_ms, false};
    ctx.hosts_by_last_fail = mark_down_hosts(h, cands, n, now_ms) == n;
    mxr_candidate tmp;
    stable_sort(cands, n, sizeof *cands, host_order_key, &ctx, &tmp);
    for (size_t i = 0; i < n; i++)
        reorder_addrs(&cands[i], &ctx);
}
