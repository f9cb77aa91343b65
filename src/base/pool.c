/* pool.c -- the free list of pool.h. */
#include "base/pool.h"

struct mxr__pool_free {
    mxr__pool_free *next;
};

void mxr__pool_init(mxr__pool *p, mxr__alloc *a, size_t size, size_t max_free)
{
    *p = (mxr__pool){
        .a = a,
        .size = size < sizeof(mxr__pool_free) ? sizeof(mxr__pool_free) : size,
        .max_free = max_free};
}

void *mxr__pool_take_kept(mxr__pool *p)
{
    mxr__pool_free *f = p->free;
    if (f) {
        p->free = f->next;
        p->nfree--;
    }
    return f;
}

void *mxr__pool_get(mxr__pool *p)
{
    void *block = mxr__pool_take_kept(p);
    return block ? block : mxr__malloc(p->a, p->size);
}

bool mxr__pool_keeps(const mxr__pool *p)
{
    return p->nfree < p->max_free;
}

void mxr__pool_put(mxr__pool *p, void *block)
{
    if (!block)
        return;
    if (!mxr__pool_keeps(p)) {
        mxr__free(p->a, block);
        return;
    }
    mxr__pool_free *f = block;
    f->next = p->free;
    p->free = f;
    p->nfree++;
}

void mxr__pool_drain(mxr__pool *p)
{
    void *block;
    while ((block = mxr__pool_take_kept(p)) != NULL)
        mxr__free(p->a, block);
}
