/* cache.c -- a byte-bounded LRU map: a chained hash table plus an intrusive
 * doubly linked LRU list.
 *
 * Each entry is a single allocation: the fixed part followed by the key
 * bytes, so a lookup touches one block and a removal frees one block. The
 * buckets (a power of two of them) hold singly linked chains; the table
 * doubles when the load passes 3/4 and never shrinks. The LRU list is
 * circular through a sentinel in the cache: sentinel.next is the most
 * recently used entry, sentinel.prev the least.
 *
 * Byte accounting: an entry costs value_bytes + sizeof(cache_entry) + keylen
 * (mxr__cache_entry_cost). The bucket array is deliberately not counted: it
 * grows in steps the eviction loop cannot undo, and it is small (one pointer
 * per bucket, at most about 2.7 per entry at the moment of a growth).
 *
 * Release callbacks must not call back into the same cache: they run while
 * a put, get, remove or free is in progress. */
#include "dns/cache.h"

#include <stdbool.h>
#include <string.h>

#define INITIAL_BUCKETS 16

typedef struct lru_link {
    struct lru_link *prev, *next;
} lru_link;

typedef struct cache_entry cache_entry;
/* The fields a lookup reads come first so that a hit usually touches the
 * first cache line of the block and the key. */
struct cache_entry {
    cache_entry *chain_next;
    uint64_t hash;
    size_t keylen;
    uint64_t expires_ms;
    void *value;
    lru_link lru;
    size_t cost; /* counted against max_bytes */
    mxr__cache_release_fn release;
    void *ctx;
    unsigned char key[];
};

struct mxr__cache {
    mxr__alloc *a;
    cache_entry **buckets;
    size_t mask; /* bucket count - 1 */
    size_t entries;
    size_t bytes;
    size_t max_bytes;
    uint64_t evictions;
    lru_link lru; /* sentinel */
};

/* ------------------------------------------------------------- hashing */

/* Multiply/rotate mixing with the xxHash64 primes, reading 8 bytes at a
 * time: domain names are 10-60 bytes, where a byte-at-a-time hash such as
 * FNV-1a costs several times more. Only used in memory, so the result may
 * differ between hosts of different endianness. */
#define PRIME1 0x9E3779B185EBCA87u
#define PRIME2 0xC2B2AE3D27D4EB4Fu
#define PRIME3 0x165667B19E3779F9u
#define PRIME4 0x85EBCA77C2B2AE63u
#define PRIME5 0x27D4EB2F165667C5u

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t hash_round(uint64_t h, uint64_t word)
{
    word *= PRIME2;
    word = rotl64(word, 31);
    word *= PRIME1;
    h ^= word;
    return rotl64(h, 27) * PRIME1 + PRIME4;
}

static uint64_t hash_avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= PRIME2;
    h ^= h >> 29;
    h *= PRIME3;
    h ^= h >> 32;
    return h;
}

/* The last 0..8 bytes as one word, with overlapping reads instead of a
 * byte loop. The length is mixed into the seed, so the overlap cannot make
 * keys of different lengths collide systematically. */
static uint64_t tail_word(const unsigned char *p, size_t n)
{
    if (n >= 4)
        return (load32(p) << 32) | load32(p + n - 4);
    if (n > 0)
        return ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
    return 0;
}

static uint64_t hash_key(const void *key, size_t keylen)
{
    const unsigned char *p = key;
    size_t n = keylen;
    uint64_t h = PRIME5 ^ ((uint64_t)keylen * PRIME1);
    while (n > 8) {
        h = hash_round(h, load64(p));
        p += 8;
        n -= 8;
    }
    h = hash_round(h, tail_word(p, n));
    return hash_avalanche(h);
}

/* ----------------------------------------------------------- LRU list */

static cache_entry *entry_of_link(lru_link *l)
{
    return (cache_entry *)((char *)l - offsetof(cache_entry, lru));
}

static void lru_unlink(lru_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
}

static void lru_push_front(mxr__cache *c, lru_link *l)
{
    l->prev = &c->lru;
    l->next = c->lru.next;
    c->lru.next->prev = l;
    c->lru.next = l;
}

/* ---------------------------------------------------------- hash table */

static cache_entry **bucket_of(const mxr__cache *c, uint64_t hash)
{
    return &c->buckets[(size_t)hash & c->mask];
}

static bool key_matches(const cache_entry *e, uint64_t hash, const void *key,
                        size_t keylen)
{
    /* keylen 0 may come with a NULL key, which memcmp must not see. */
    return e->hash == hash && e->keylen == keylen &&
           (keylen == 0 || memcmp(e->key, key, keylen) == 0);
}

static cache_entry *find_entry(const mxr__cache *c, uint64_t hash,
                               const void *key, size_t keylen)
{
    for (cache_entry *e = *bucket_of(c, hash); e; e = e->chain_next)
        if (key_matches(e, hash, key, keylen))
            return e;
    return NULL;
}

static void chain_insert(mxr__cache *c, cache_entry *e)
{
    cache_entry **slot = bucket_of(c, e->hash);
    e->chain_next = *slot;
    *slot = e;
}

/* Chains are short (load <= 3/4), so walking one beats storing a back
 * pointer in every entry. */
static void chain_unlink(mxr__cache *c, cache_entry *e)
{
    cache_entry **slot = bucket_of(c, e->hash);
    while (*slot != e)
        slot = &(*slot)->chain_next;
    *slot = e->chain_next;
}

static bool table_needs_growth(const mxr__cache *c, size_t entries)
{
    return entries > (c->mask + 1) / 4 * 3;
}

/* Doubles the bucket array. On allocation failure the old table stays:
 * lookups remain correct, only the chains get longer. */
static void grow_table(mxr__cache *c)
{
    size_t old_count = c->mask + 1;
    if (old_count > SIZE_MAX / 2 / sizeof *c->buckets)
        return;
    cache_entry **fresh = mxr__calloc(c->a, old_count * 2, sizeof *fresh);
    if (!fresh)
        return;
    cache_entry **old = c->buckets;
    c->buckets = fresh;
    c->mask = old_count * 2 - 1;
    for (size_t i = 0; i < old_count; i++) {
        cache_entry *next;
        for (cache_entry *e = old[i]; e; e = next) {
            next = e->chain_next;
            chain_insert(c, e);
        }
    }
    mxr__free(c->a, old);
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
    chain_unlink(c, e);
    lru_unlink(&e->lru);
    c->entries--;
    c->bytes -= e->cost;
    release_value(e->release, e->ctx, e->value);
    mxr__free(c->a, e);
}

static void evict_until_bytes_at_most(mxr__cache *c, size_t room)
{
    while (c->bytes > room) {
        drop_entry(c, entry_of_link(c->lru.prev));
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
    c->buckets = mxr__calloc(a, INITIAL_BUCKETS, sizeof *c->buckets);
    if (!c->buckets) {
        mxr__free(a, c);
        return NULL;
    }
    c->a = a;
    c->mask = INITIAL_BUCKETS - 1;
    c->max_bytes = max_bytes;
    c->lru.prev = c->lru.next = &c->lru;
    return c;
}

void mxr__cache_free(mxr__cache *c)
{
    if (!c)
        return;
    lru_link *next;
    for (lru_link *l = c->lru.next; l != &c->lru; l = next) {
        next = l->next;
        cache_entry *e = entry_of_link(l);
        release_value(e->release, e->ctx, e->value);
        mxr__free(c->a, e);
    }
    mxr__free(c->a, c->buckets);
    mxr__free(c->a, c);
}

void *mxr__cache_get(mxr__cache *c, const void *key, size_t keylen,
                     uint64_t now_ms)
{
    cache_entry *e = find_entry(c, hash_key(key, keylen), key, keylen);
    if (!e)
        return NULL;
    if (e->expires_ms <= now_ms) {
        drop_entry(c, e);
        return NULL;
    }
    if (c->lru.next != &e->lru) {
        lru_unlink(&e->lru);
        lru_push_front(c, &e->lru);
    }
    return e->value;
}

int mxr__cache_put(mxr__cache *c, const void *key, size_t keylen, void *value,
                   size_t value_bytes, uint64_t expires_ms,
                   mxr__cache_release_fn release, void *ctx)
{
    uint64_t hash = hash_key(key, keylen);
    /* Drop the old value first, whatever happens to the new one: after a
     * put, a get must never see a value older than the one just given. */
    cache_entry *old = find_entry(c, hash, key, keylen);
    if (old)
        drop_entry(c, old);

    size_t cost;
    if (!entry_cost(keylen, value_bytes, &cost) || cost > c->max_bytes) {
        release_value(release, ctx, value);
        return 0;
    }
    /* Allocate before evicting, so that running out of memory does not
     * also empty the cache. cost >= sizeof *e + keylen: no overflow. */
    cache_entry *e = mxr__malloc(c->a, sizeof *e + keylen);
    if (!e) {
        release_value(release, ctx, value);
        return -1;
    }
    evict_until_bytes_at_most(c, c->max_bytes - cost);
    if (table_needs_growth(c, c->entries + 1))
        grow_table(c);

    e->hash = hash;
    e->keylen = keylen;
    e->expires_ms = expires_ms;
    e->value = value;
    e->cost = cost;
    e->release = release;
    e->ctx = ctx;
    if (keylen)
        memcpy(e->key, key, keylen);
    chain_insert(c, e);
    lru_push_front(c, &e->lru);
    c->entries++;
    c->bytes += cost;
    return 0;
}

void mxr__cache_remove(mxr__cache *c, const void *key, size_t keylen)
{
    cache_entry *e = find_entry(c, hash_key(key, keylen), key, keylen);
    if (e)
        drop_entry(c, e);
}

size_t mxr__cache_entries(const mxr__cache *c)
{
    return c->entries;
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
    return c->mask + 1;
}
