/* pool.h -- a free list of same-sized blocks for objects that live for one
 * request and are made again for the next (route jobs, pending queries,
 * backend queries): once warm, taking one costs no allocator call.
 *
 * At most max_free blocks wait in the list; a block put back beyond that
 * is freed, so the memory a pool holds idle is bounded by max_free * size.
 * The blocks come from, and count against, the engine's allocator: its
 * byte count stays exact (a kept block is an allocated block). */
#ifndef MXR_BASE_POOL_H
#define MXR_BASE_POOL_H

#include "base/alloc.h"

typedef struct mxr__pool_free mxr__pool_free; /* a block on the list */

typedef struct mxr__pool {
    mxr__alloc *a;
    size_t size;     /* bytes of every block */
    size_t max_free; /* blocks kept on the list at most */
    size_t nfree;
    mxr__pool_free *free;
} mxr__pool;

/* size: at least a pointer's worth is used, whatever is asked. */
void mxr__pool_init(mxr__pool *p, mxr__alloc *a, size_t size, size_t max_free);
/* A block of p->size bytes, contents undefined; NULL when out of memory. */
void *mxr__pool_get(mxr__pool *p);
/* Back to the list, or freed when the list is full. NULL is ignored. */
void mxr__pool_put(mxr__pool *p, void *block);
/* A kept block, or NULL when none is left: never allocates (teardown of
 * blocks that hold memory of their own). */
void *mxr__pool_take_kept(mxr__pool *p);
/* True when the next put will keep its block. */
bool mxr__pool_keeps(const mxr__pool *p);
/* Frees every block on the list (teardown). */
void mxr__pool_drain(mxr__pool *p);

#endif
