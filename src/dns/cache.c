/* cache.c -- a byte-bounded LRU map: the chained hash table plus an
 * intrusive doubly linked LRU list.
 *
 * Each entry is a single allocation: the fixed part followed by the key
 * bytes, so a lookup touches one block and a removal frees one block. The
 * table is base/hash.h's; the LRU list is base/list.h's, with the head in
 * the cache: head.next is the most recently used entry, head.prev the
 * least.
 *
 * Byte accounting: an entry costs value_bytes + sizeof(cache_entry) + keylen
 * (mxr__cache_entry_cost). The bucket array is deliberately not counted: it
 * grows in steps the eviction loop cannot undo, and it is small (one pointer
 * per bucket, at most about 2.7 per entry at the moment of a growth).
 *
 * Release callbacks must not call back into the same cache: they run while
 * a put, get, remove or free is in progress. */
#include "dns/cache.h"
#include "base/hash.h"
#include "base/list.h"

#include <stdbool.h>
#include <string.h>

#define INITIAL_BUCKETS 16

typedef struct cache_entry cache_entry;
/* The fields a lookup reads come first so that a hit usually touches the
 * first cache line of the block and the key. */
struct cache_entry {
    mxr__hnode node; /* chain link and hash */
    size_t keylen;
    uint64_t expires_ms;
    void *value;
    mxr__link lru;
    size_t cost; /* counted against max_bytes */
    mxr__cache_release_fn release;
    void *ctx;
    unsigned char key[];
};

struct mxr__cache {
    mxr__alloc *a;
    mxr__htable table;
    size_t bytes;
    size_t max_bytes;
    uint64_t evictions;
    mxr__link lru; /* head */
};

static cache_entry *entry_of_node(mxr__hnode *n)
{
    return mxr__list_entry(n, cache_entry, node);
}

static cache_entry *find_entry(const mxr__cache *c, uint64_t hash,
                               const void *key, size_t keylen)
{
    mxr__htable_each_in(n, &c->table, hash)
    {
        cache_entry *e = entry_of_node(n);
        /* keylen 0 may come with a NULL key, which memcmp must not see. */
        if (n->hash == hash && e->keylen == keylen &&
            (keylen == 0 || memcmp(e->key, key, keylen) == 0))
            return e;
    }
    return NULL;
}

/* ------------------------------------------------------------- entries */

static void release_value(mxr__cache_release_fn release, void *ctx, void *value)
{
    if (release)
        release(ctx, value);
}

/* Unlinks e from both structures before releasing its value, so the cache
 * is consistent whatever the release callback does with the value. */
static void drop_entry(mxr__cache *c, cache_entry *e)
{
    mxr__htable_remove(&c->table, &e->node);
    mxr__list_remove(&e->lru);
    c->bytes -= e->cost;
    release_value(e->release, e->ctx, e->value);
    mxr__free(c->a, e);
}

static void evict_until_bytes_at_most(mxr__cache *c, size_t room)
{
    while (c->bytes > room) {
        drop_entry(c, mxr__list_entry(c->lru.prev, cache_entry, lru));
        c->evictions++;
    }
}

static bool entry_cost(size_t keylen, size_t value_bytes, size_t *cost)
{
    size_t fixed = sizeof(cache_entry);
    if (keylen > SIZE_MAX - fixed || value_bytes > SIZE_MAX - fixed - keylen)
        return false;
    *cost = fixed + keylen + value_bytes;
    return true;
}

/* ---------------------------------------------------------------- API */

size_t mxr__cache_entry_cost(size_t keylen, size_t value_bytes)
{
    size_t cost;
    return entry_cost(keylen, value_bytes, &cost) ? cost : SIZE_MAX;
}

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
    return c;
}

void mxr__cache_free(mxr__cache *c)
{
    if (!c)
        return;
    mxr__list_each(l, next, &c->lru)
    {
        cache_entry *e = mxr__list_entry(l, cache_entry, lru);
        release_value(e->release, e->ctx, e->value);
        mxr__free(c->a, e);
    }
    mxr__htable_free(&c->table);
    mxr__free(c->a, c);
}

void *mxr__cache_get(mxr__cache *c, const void *key, size_t keylen,
                     uint64_t now_ms)
{
    cache_entry *e = find_entry(c, mxr__hash_bytes(key, keylen), key, keylen);
    if (!e)
        return NULL;
    if (e->expires_ms <= now_ms) {
        drop_entry(c, e);
        return NULL;
    }
    if (c->lru.next != &e->lru) {
        mxr__list_remove(&e->lru);
        mxr__list_push_front(&c->lru, &e->lru);
    }
    return e->value;
}

mxr_status mxr__cache_put(mxr__cache *c, const void *key, size_t keylen,
                          void *value, size_t value_bytes, uint64_t expires_ms,
                          mxr__cache_release_fn release, void *ctx)
{
    uint64_t hash = mxr__hash_bytes(key, keylen);
    /* Drop the old value first, whatever happens to the new one: after a
     * put, a get must never see a value older than the one just given. */
    cache_entry *old = find_entry(c, hash, key, keylen);
    if (old)
        drop_entry(c, old);

    size_t cost;
    if (!entry_cost(keylen, value_bytes, &cost) || cost > c->max_bytes) {
        release_value(release, ctx, value);
        return MXR_OK;
    }
    /* Allocate before evicting, so that running out of memory does not
     * also empty the cache. cost >= sizeof *e + keylen: no overflow. */
    cache_entry *e = mxr__malloc(c->a, sizeof *e + keylen);
    if (!e) {
        release_value(release, ctx, value);
        return MXR_ENOMEM;
    }
    evict_until_bytes_at_most(c, c->max_bytes - cost);

    e->node.hash = hash;
    e->keylen = keylen;
    e->expires_ms = expires_ms;
    e->value = value;
    e->cost = cost;
    e->release = release;
    e->ctx = ctx;
    if (keylen)
        memcpy(e->key, key, keylen);
    mxr__htable_insert(&c->table, &e->node);
    mxr__list_push_front(&c->lru, &e->lru);
    c->bytes += cost;
    return MXR_OK;
}

void mxr__cache_remove(mxr__cache *c, const void *key, size_t keylen)
{
    cache_entry *e = find_entry(c, mxr__hash_bytes(key, keylen), key, keylen);
    if (e)
        drop_entry(c, e);
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
