/* hash.h -- the one hash function and the one hash table.
 *
 * The table is chained and intrusive: each element embeds an mxr__hnode
 * holding its chain link and its hash, and the caller compares keys itself
 * (mxr__htable_each_in walks one chain). Buckets are a power of two; the
 * table doubles when the load passes 3/4 and never shrinks. A failed growth
 * keeps the old table: lookups stay correct, chains only get longer. */
#ifndef MXR_BASE_HASH_H
#define MXR_BASE_HASH_H

#include "base/alloc.h"

/* 64-bit hash of len bytes (xxHash64's primes, 8 bytes a round). In memory
 * only: it may differ between hosts of different endianness. */
uint64_t mxr__hash_bytes(const void *key, size_t len);

typedef struct mxr__hnode {
    struct mxr__hnode *next;
    uint64_t hash;
} mxr__hnode;

typedef struct mxr__htable {
    mxr__alloc *a;
    mxr__hnode **buckets;
    size_t mask; /* bucket count - 1 */
    size_t count;
} mxr__htable;

/* buckets: a power of two. MXR_OK or MXR_ENOMEM. */
mxr_status mxr__htable_init(mxr__htable *t, mxr__alloc *a, size_t buckets);
/* Frees the buckets, not the elements. */
void mxr__htable_free(mxr__htable *t);
/* Link n (n->hash set by the caller); grows the table first if due. */
void mxr__htable_insert(mxr__htable *t, mxr__hnode *n);
/* Unlink n, which must be in the table. Chains are short (load <= 3/4), so
 * walking one beats a back pointer in every element. */
void mxr__htable_remove(mxr__htable *t, mxr__hnode *n);

static inline mxr__hnode *mxr__htable_chain(const mxr__htable *t, uint64_t h)
{
    return t->buckets[(size_t)h & t->mask];
}

/* Walk the nodes whose chain holds hash h (compare n->hash, then keys). */
#define mxr__htable_each_in(n, t, h)                                           \
    for (mxr__hnode *n = mxr__htable_chain((t), (h)); n; n = n->next)

#endif
