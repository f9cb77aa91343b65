/* cache.h -- a byte-bounded LRU map from keys to values, with absolute
 * expiry times. Used for DNS answers and plans (embedded entries) and for
 * host health (boxed entries).
 *
 * An entry is one block. An embedded entry is a value that carries the
 * cache's node (mxr__cache_node) and its key in its own block: answers and
 * cached plans cost one allocation, not two. A boxed entry (mxr__cache_put)
 * is a block the cache makes around a value it only points to. One cache
 * holds one kind: mxr__cache_get reads boxed entries only. */
#ifndef MXR_CACHE_H
#define MXR_CACHE_H

#include "base/alloc.h"
#include "base/hash.h"
#include "base/list.h"

typedef struct mxr__cache mxr__cache;
typedef struct mxr__cache_node mxr__cache_node;

/* Called when the cache drops a boxed entry's reference to its value. */
typedef void (*mxr__cache_release_fn)(void *ctx, void *value);
/* Called when the cache drops an embedded entry: the node is unlinked and
 * the cache holds nothing of it any more. */
typedef void (*mxr__cache_drop_fn)(void *ctx, mxr__cache_node *node);

/* The cache's part of an entry. The owner sets key and keylen (the key's
 * bytes live in the same block); the cache sets the rest at insertion. */
struct mxr__cache_node {
    mxr__hnode hn; /* chain link and hash */
    const unsigned char *key;
    size_t keylen;
    uint64_t expires_ms;
    mxr__link lru;
    size_t cost; /* counted against max_bytes */
    mxr__cache_drop_fn drop;
    void *ctx;
};

mxr__cache *mxr__cache_new(mxr__alloc *a, size_t max_bytes);
/* Drops every entry. */
void mxr__cache_free(mxr__cache *c);

/* The live embedded entry for key, or NULL (expired entries are removed).
 * A hit becomes the most recently used entry. The node stays valid until
 * the next insert, put, remove or free on this cache. */
mxr__cache_node *mxr__cache_find(mxr__cache *c, const void *key, size_t keylen,
                                 uint64_t now_ms);
/* Link node under its key, replacing the entry there. cost is what the
 * entry counts against max_bytes (its whole block). Evicts least recently
 * used entries to fit; a node costing more than the whole bound is dropped
 * at once. Cannot fail: the block exists already. */
void mxr__cache_insert(mxr__cache *c, mxr__cache_node *node, size_t cost,
                       uint64_t expires_ms, mxr__cache_drop_fn drop, void *ctx);

/* Boxed entries: the value of a live entry for key, or NULL; as
 * mxr__cache_find otherwise. */
void *mxr__cache_get(mxr__cache *c, const void *key, size_t keylen,
                     uint64_t now_ms);
/* Insert or replace. The cache takes the caller's reference to value and
 * releases it with release(ctx, value) when the entry goes. value_bytes is
 * what the value holds (the box and the key are added). Evicts least
 * recently used entries to fit; a value larger than the whole bound is
 * released at once. MXR_ENOMEM only when out of memory (value released). */
mxr_status mxr__cache_put(mxr__cache *c, const void *key, size_t keylen,
                          void *value, size_t value_bytes, uint64_t expires_ms,
                          mxr__cache_release_fn release, void *ctx);
void mxr__cache_remove(mxr__cache *c, const void *key, size_t keylen);

size_t mxr__cache_entries(const mxr__cache *c);
size_t mxr__cache_bytes(const mxr__cache *c);
uint64_t mxr__cache_evictions(const mxr__cache *c);

/* What one boxed entry counts against max_bytes: value_bytes + the box +
 * keylen (SIZE_MAX if that overflows). The bucket array and the
 * allocator's block headers are not counted. */
size_t mxr__cache_entry_cost(size_t keylen, size_t value_bytes);
/* Current number of hash buckets (a power of two; grows, never shrinks). */
size_t mxr__cache_buckets(const mxr__cache *c);

#endif
