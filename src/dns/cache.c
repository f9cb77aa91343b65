/* cache.c -- a byte-bounded LRU map: the chained hash table plus an
 * intrusive doubly linked LRU list.
 *
 * Every entry is a single block holding the cache's node, the key and the
 * value (or, boxed, a pointer to it), so a lookup touches one block and a
 * removal frees or hands back one block. The table is base/hash.h's; the
 * LRU list is base/list.h's, with the head in the cache: head.next is the
 * most recently used entry, head.prev the least.
 *
 * Byte accounting: an embedded entry costs what its owner says (its whole
 * block); a boxed one value_bytes + sizeof(box) + keylen
 * (mxr__cache_entry_cost). The bucket array is deliberately not counted:
 * it grows in steps the eviction loop cannot undo, and it is small (one
 * pointer per bucket, at most about 2.7 per entry at the moment of a
 * growth).
 *
 * Drop and release callbacks must not call back into the same cache: they
 * run while an insert, put, get, remove or free is in progress. */
#include "dns/cache.h"

#include <stdbool.h>
#include <string.h>

#define INITIAL_BUCKETS 16

/* A boxed entry (kind 0): the node, the value it points to, the key. */
typedef struct box {
    mxr__cache_node node;
    void *value;
    mxr__cache_release_fn release;
    void *rctx;
    unsigned char key[];
} box;

/* How the cache drops the entries of one kind. */
typedef struct cache_kind {
    mxr__cache_drop_fn drop;
    void *ctx;
} cache_kind;

#define BOX_KIND 0

struct mxr__cache {
    mxr__alloc *a;
    mxr__htable table;
    size_t bytes;
    size_t max_bytes;
    uint64_t evictions;
    mxr__link lru; /* head */
    cache_kind kinds[MXR__CACHE_KINDS];
    int nkinds;
};

static void drop_box(void *ctx, mxr__cache_node *node);

static mxr__cache_node *node_of_hnode(mxr__hnode *n)
{
    return mxr__list_entry(n, mxr__cache_node, hn);
}

static mxr__cache_node *node_of_lru(mxr__link *l)
{
    return mxr__list_entry(l, mxr__cache_node, lru);
}

static mxr__cache_node *find_node(const mxr__cache *c, uint64_t hash,
                                  const void *key, size_t keylen)
{
    mxr__htable_each_in(n, &c->table, hash)
    {
        mxr__cache_node *e = node_of_hnode(n);
        /* keylen 0 may come with a NULL key, which memcmp must not see. */
        if (n->hash == hash && e->keylen == keylen &&
            (keylen == 0 || memcmp(mxr__cache_node_key(e), key, keylen) == 0))
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------- entries */

static void drop_entry(const mxr__cache *c, mxr__cache_node *e)
{
    const cache_kind *k = &c->kinds[e->kind];
    k->drop(k->ctx, e);
}

/* Unlinks e from both structures before dropping it, so the cache is
 * consistent whatever the drop callback does with the block. */
static void drop_node(mxr__cache *c, mxr__cache_node *e)
{
    mxr__htable_remove(&c->table, &e->hn);
    mxr__list_remove(&e->lru);
    c->bytes -= e->cost;
    drop_entry(c, e);
}

static void evict_until_bytes_at_most(mxr__cache *c, size_t room)
{
    while (c->bytes > room) {
        drop_node(c, node_of_lru(c->lru.prev));
        c->evictions++;
    }
}

/* Finds key's live entry; an expired one is dropped on the way. */
static mxr__cache_node *live_node(mxr__cache *c, const void *key, size_t keylen,
                                  uint64_t now_ms)
{
    mxr__cache_node *e =
        find_node(c, mxr__hash_bytes(key, keylen), key, keylen);
    if (!e)
        return NULL;
    if (e->expires_ms <= now_ms) {
        drop_node(c, e);
        return NULL;
    }
    if (c->lru.next != &e->lru) {
        mxr__list_remove(&e->lru);
        mxr__list_push_front(&c->lru, &e->lru);
    }
    return e;
}

/* ---------------------------------------------------------------- API */

mxr__cache *mxr__cache_new(mxr__alloc *a, size_t max_bytes)
{
    mxr__cache *c = mxr__calloc(a, 1, sizeof *c);
    if (!c)
        return NULL;
    if (mxr__htable_init(&c->table, a, INITIAL_BUCKETS) != MXR_OK) {
        mxr__free(a, c);
        return NULL;
    }
    c->a = a;
    c->max_bytes = max_bytes;
    mxr__list_init(&c->lru);
    c->kinds[BOX_KIND] = (cache_kind){drop_box, a};
    c->nkinds = 1;
    return c;
}

int mxr__cache_kind_add(mxr__cache *c, mxr__cache_drop_fn drop, void *ctx)
{
    if (c->nkinds >= MXR__CACHE_KINDS)
        return -1;
    c->kinds[c->nkinds] = (cache_kind){drop, ctx};
    return c->nkinds++;
}

bool mxr__cache_node_set_key(mxr__cache_node *node, const void *key,
                             size_t keylen)
{
    if (keylen == 0) {
        node->key_off = 0;
        node->keylen = 0;
        return true;
    }
    uintptr_t at = (uintptr_t)key, from = (uintptr_t)node;
    if (keylen > MXR__CACHE_KEY_MAX || at < from ||
        at - from > MXR__CACHE_KEY_OFF_MAX)
        return false;
    node->key_off = (uint8_t)(at - from);
    node->keylen = (uint16_t)keylen;
    return true;
}

void mxr__cache_free(mxr__cache *c)
{
    if (!c)
        return;
    mxr__list_each(l, next, &c->lru) drop_entry(c, node_of_lru(l));
    mxr__htable_free(&c->table);
    mxr__free(c->a, c);
}

mxr__cache_node *mxr__cache_find(mxr__cache *c, const void *key, size_t keylen,
                                 uint64_t now_ms)
{
    return live_node(c, key, keylen, now_ms);
}

void mxr__cache_insert(mxr__cache *c, mxr__cache_node *node, size_t cost,
                       uint64_t expires_ms, int kind)
{
    const unsigned char *key = mxr__cache_node_key(node);
    uint64_t hash = mxr__hash_bytes(key, node->keylen);
    /* Drop the old entry first, whatever happens to the new one: after an
     * insert, a find must never see a value older than the one just given. */
    mxr__cache_node *old = find_node(c, hash, key, node->keylen);
    if (old)
        drop_node(c, old);
    node->hn.hash = hash;
    node->expires_ms = expires_ms;
    node->kind = (uint8_t)kind;
    if (cost > c->max_bytes || cost > UINT32_MAX) {
        drop_entry(c, node);
        return;
    }
    node->cost = (uint32_t)cost;
    evict_until_bytes_at_most(c, c->max_bytes - cost);
    mxr__htable_insert(&c->table, &node->hn);
    mxr__list_push_front(&c->lru, &node->lru);
    c->bytes += cost;
}

/* ------------------------------------------------------ boxed entries */

static bool entry_cost(size_t keylen, size_t value_bytes, size_t *cost)
{
    size_t fixed = sizeof(box);
    if (keylen > SIZE_MAX - fixed || value_bytes > SIZE_MAX - fixed - keylen)
        return false;
    *cost = fixed + keylen + value_bytes;
    return true;
}

size_t mxr__cache_entry_cost(size_t keylen, size_t value_bytes)
{
    size_t cost;
    return entry_cost(keylen, value_bytes, &cost) ? cost : SIZE_MAX;
}

static void release_value(mxr__cache_release_fn release, void *ctx, void *value)
{
    if (release)
        release(ctx, value);
}

static void drop_box(void *ctx, mxr__cache_node *node)
{
    box *b = mxr__list_entry(node, box, node);
    release_value(b->release, b->rctx, b->value);
    mxr__free(ctx, b);
}

void *mxr__cache_get(mxr__cache *c, const void *key, size_t keylen,
                     uint64_t now_ms)
{
    mxr__cache_node *e = live_node(c, key, keylen, now_ms);
    return e ? mxr__list_entry(e, box, node)->value : NULL;
}

mxr_status mxr__cache_put(mxr__cache *c, const void *key, size_t keylen,
                          void *value, size_t value_bytes, uint64_t expires_ms,
                          mxr__cache_release_fn release, void *ctx)
{
    size_t cost;
    if (keylen > MXR__CACHE_KEY_MAX ||
        !entry_cost(keylen, value_bytes, &cost) || cost > c->max_bytes ||
        cost > UINT32_MAX) {
        mxr__cache_remove(c, key, keylen); /* never an older value after */
        release_value(release, ctx, value);
        return MXR_OK;
    }
    /* cost >= sizeof *b + keylen: no overflow. */
    box *b = mxr__malloc(c->a, sizeof *b + keylen);
    if (!b) {
        mxr__cache_remove(c, key, keylen);
        release_value(release, ctx, value);
        return MXR_ENOMEM;
    }
    *b = (box){.value = value, .release = release, .rctx = ctx};
    if (keylen)
        memcpy(b->key, key, keylen);
    mxr__cache_node_set_key(&b->node, b->key, keylen); /* cannot fail */
    mxr__cache_insert(c, &b->node, cost, expires_ms, BOX_KIND);
    return MXR_OK;
}

void mxr__cache_remove(mxr__cache *c, const void *key, size_t keylen)
{
    mxr__cache_node *e =
        find_node(c, mxr__hash_bytes(key, keylen), key, keylen);
    if (e)
        drop_node(c, e);
}

size_t mxr__cache_entries(const mxr__cache *c)
{
    return c->table.count;
}

size_t mxr__cache_bytes(const mxr__cache *c)
{
    return c->bytes;
}

uint64_t mxr__cache_evictions(const mxr__cache *c)
{
    return c->evictions;
}

size_t mxr__cache_buckets(const mxr__cache *c)
{
    return c->table.mask + 1;
}
