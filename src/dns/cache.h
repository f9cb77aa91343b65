/* cache.h -- a byte-bounded LRU map from keys to refcounted values, with
 * absolute expiry times. Used for DNS answers and for plans. */
#ifndef MXR_CACHE_H
#define MXR_CACHE_H

#include "base/alloc.h"

typedef struct mxr__cache mxr__cache;

/* Called when the cache drops its reference to a value. */
typedef void (*mxr__cache_release_fn)(void *ctx, void *value);

mxr__cache *mxr__cache_new(mxr__alloc *a, size_t max_bytes);
/* Releases every value. */
void mxr__cache_free(mxr__cache *c);

/* The live value for key, or NULL (expired entries are removed). A hit
 * becomes the most recently used entry. The pointer stays valid until the
 * next put, remove or free on this cache. */
void *mxr__cache_get(mxr__cache *c, const void *key, size_t keylen,
                     uint64_t now_ms);
/* Insert or replace. The cache takes the caller's reference to value and
 * releases it with release(ctx, value) when the entry goes. value_bytes is
 * what the value holds (the entry's own overhead is added). Evicts least
 * recently used entries to fit; a value larger than the whole bound is
 * released at once. Returns -1 only when out of memory (value released). */
mxr_status mxr__cache_put(mxr__cache *c, const void *key, size_t keylen,
                          void *value, size_t value_bytes, uint64_t expires_ms,
                          mxr__cache_release_fn release, void *ctx);
void mxr__cache_remove(mxr__cache *c, const void *key, size_t keylen);

size_t mxr__cache_entries(const mxr__cache *c);
size_t mxr__cache_bytes(const mxr__cache *c);
uint64_t mxr__cache_evictions(const mxr__cache *c);

/* What one entry counts against max_bytes: value_bytes + the entry's fixed
 * overhead + keylen (SIZE_MAX if that overflows). The bucket array and the
 * allocator's block headers are not counted. */
size_t mxr__cache_entry_cost(size_t keylen, size_t value_bytes);
/* Current number of hash buckets (a power of two; grows, never shrinks). */
size_t mxr__cache_buckets(const mxr__cache *c);

#endif
