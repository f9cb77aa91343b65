/* hash.c -- the hash function and the chained table of hash.h. */
#include "base/hash.h"

#include <string.h>

/* ------------------------------------------------------------- hashing */

/* Multiply/rotate mixing with the xxHash64 primes, reading 8 bytes at a
 * time: domain names are 10-60 bytes, where a byte-at-a-time hash such as
 * FNV-1a costs several times more. */
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

uint64_t mxr__hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    size_t n = len;
    uint64_t h = PRIME5 ^ ((uint64_t)len * PRIME1);
    while (n > 8) {
        h = hash_round(h, load64(p));
        p += 8;
        n -= 8;
    }
    h = hash_round(h, tail_word(p, n));
    return hash_avalanche(h);
}

/* ----------------------------------------------------------- the table */

mxr_status mxr__htable_init(mxr__htable *t, mxr__alloc *a, size_t buckets)
{
    t->a = a;
    t->count = 0;
    t->mask = buckets - 1;
    t->buckets = mxr__calloc(a, buckets, sizeof *t->buckets);
    return t->buckets ? MXR_OK : MXR_ENOMEM;
}

void mxr__htable_free(mxr__htable *t)
{
    mxr__free(t->a, t->buckets);
    t->buckets = NULL;
}

static void chain_link(mxr__hnode **buckets, size_t mask, mxr__hnode *n)
{
    mxr__hnode **slot = &buckets[(size_t)n->hash & mask];
    n->next = *slot;
    *slot = n;
}

static void grow(mxr__htable *t)
{
    size_t old_count = t->mask + 1;
    if (old_count > SIZE_MAX / 2 / sizeof *t->buckets)
        return;
    mxr__hnode **fresh = mxr__calloc(t->a, old_count * 2, sizeof *fresh);
    if (!fresh)
        return;
    for (size_t i = 0; i < old_count; i++) {
        for (mxr__hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            chain_link(fresh, old_count * 2 - 1, n);
        }
    }
    mxr__free(t->a, t->buckets);
    t->buckets = fresh;
    t->mask = old_count * 2 - 1;
}

void mxr__htable_insert(mxr__htable *t, mxr__hnode *n)
{
    if (t->count + 1 > (t->mask + 1) / 4 * 3)
        grow(t);
    chain_link(t->buckets, t->mask, n);
    t->count++;
}

void mxr__htable_remove(mxr__htable *t, mxr__hnode *n)
{
    mxr__hnode **slot = &t->buckets[(size_t)n->hash & t->mask];
    while (*slot != n)
        slot = &(*slot)->next;
    *slot = n->next;
    t->count--;
}
