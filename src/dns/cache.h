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

#include <stdbool.h>

typedef struct mxr__cache mxr__cache;
typedef struct mxr__cache_node mxr__cache_node;

/* Called when the cache drops a boxed entry's reference to its value. */
typedef void (*mxr__cache_release_fn)(void *ctx, void *value);
/* Called when the cache drops an embedded entry: the node is unlinked and
 * the cache holds nothing of it any more. */
typedef void (*mxr__cache_drop_fn)(void *ctx, mxr__cache_node *node);

/* Kinds of entries one cache may hold: its own boxed entries (kind 0) and
 * up to MXR__CACHE_KINDS - 1 kinds of embedded ones (mxr__cache_kind_add). */
#define MXR__CACHE_KINDS 4
/* How far after its node an entry's key may start (mxr__cache_node_key). */
#define MXR__CACHE_KEY_OFF_MAX 255
#define MXR__CACHE_KEY_MAX UINT16_MAX

/* The cache's part of an entry, 48 bytes: one per cached answer and plan,
 * so every field is as small as it can be. The key is found from the
 * node (it lives in the same block, key_off bytes after the node) and the
 * drop function from the kind, rather than by pointers of their own. The
 * owner sets the key (mxr__cache_node_set_key); the cache the rest. */
struct mxr__cache_node {
    mxr__hnode hn; /* chain link and hash */
    mxr__link lru;
    uint64_t expires_ms;
    uint32_t cost; /* counted against max_bytes */
    uint16_t keylen;
    uint8_t key_off; /* the key is key_off bytes after the node */
    uint8_t kind;    /* index into the cache's drop functions */
};

/* Points the node at its key: keylen bytes at key, in the node's block,
 * at most MXR__CACHE_KEY_OFF_MAX bytes after the node (key may be NULL
 * when keylen is 0). False, node unchanged, when they are not. */
bool mxr__cache_node_set_key(mxr__cache_node *node, const void *key,
                             size_t keylen);

static inline const unsigned char *
mxr__cache_node_key(const mxr__cache_node *node)
{
    return (const unsigned char *)node + node->key_off;
}

mxr__cache *mxr__cache_new(mxr__alloc *a, size_t max_bytes);
/* Drops every entry. */
void mxr__cache_free(mxr__cache *c);

/* Registers a kind of embedded entry: the cache drops them with
 * drop(ctx, node). Returns the kind for mxr__cache_insert, or -1 when the
 * cache has MXR__CACHE_KINDS kinds already. */
int mxr__cache_kind_add(mxr__cache *c, mxr__cache_drop_fn drop, void *ctx);

/* The live embedded entry for key, or NULL (expired entries are removed).
 * A hit becomes the most recently used entry. The node stays valid until
 * the next insert, put, remove or free on this cache. */
mxr__cache_node *mxr__cache_find(mxr__cache *c, const void *key, size_t keylen,
                                 uint64_t now_ms);
/* Link node (its key set) under its key, replacing the entry there. cost
 * is what the entry counts against max_bytes (its whole block); kind, one
 * of mxr__cache_kind_add's, says how to drop it. Evicts least recently
 * used entries to fit; a node costing more than the whole bound (or more
 * than UINT32_MAX) is dropped at once. Cannot fail: the block exists. */
void mxr__cache_insert(mxr__cache *c, mxr__cache_node *node, size_t cost,
                       uint64_t expires_ms, int kind);

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
