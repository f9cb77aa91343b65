/* hash.c -- the hash function and the chained table of hash.h. */
#include "base/hash.h"

#include <string.h>

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
