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

#include <string.h>

/* 64-bit hash of len bytes (xxHash64's primes, 8 bytes a round). In memory
 * only: it may differ between hosts of different endianness. Inline: every
 * cache and pending-query lookup starts here. */
/* Multiply/rotate mixing with the xxHash64 primes, reading 8 bytes at a
 * time: domain names are 10-60 bytes, where a byte-at-a-time hash such as
 * FNV-1a costs several times more. */
#define MXR__H_PRIME1 0x9E3779B185EBCA87u
#define MXR__H_PRIME2 0xC2B2AE3D27D4EB4Fu
#define MXR__H_PRIME3 0x165667B19E3779F9u
#define MXR__H_PRIME4 0x85EBCA77C2B2AE63u
#define MXR__H_PRIME5 0x27D4EB2F165667C5u

static inline uint64_t mxr__h_rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t mxr__h_load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t mxr__h_load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t mxr__h_hash_round(uint64_t h, uint64_t word)
{
    word *= MXR__H_PRIME2;
    word = mxr__h_rotl64(word, 31);
    word *= MXR__H_PRIME1;
    h ^= word;
    return mxr__h_rotl64(h, 27) * MXR__H_PRIME1 + MXR__H_PRIME4;
}

static inline uint64_t mxr__h_hash_avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= MXR__H_PRIME2;
    h ^= h >> 29;
    h *= MXR__H_PRIME3;
    h ^= h >> 32;
    return h;
}

/* The last 0..8 bytes as one word, with overlapping reads instead of a
 * byte loop. The length is mixed into the seed, so the overlap cannot make
 * keys of different lengths collide systematically. */
static inline uint64_t mxr__h_tail_word(const unsigned char *p, size_t n)
{
    if (n >= 4)
        return (mxr__h_load32(p) << 32) | mxr__h_load32(p + n - 4);
    if (n > 0)
        return ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
    return 0;
}

static inline uint64_t mxr__hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    size_t n = len;
    uint64_t h = MXR__H_PRIME5 ^ ((uint64_t)len * MXR__H_PRIME1);
    while (n > 8) {
        h = mxr__h_hash_round(h, mxr__h_load64(p));
        p += 8;
        n -= 8;
    }
    h = mxr__h_hash_round(h, mxr__h_tail_word(p, n));
    return mxr__h_hash_avalanche(h);
}

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
