/* alloc.c -- the engine's allocator with a size header per block. */
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

/* Keeps the user part of every block aligned for any type. Aligned as
 * max_align_t rather than as large as it (32 bytes on x86-64): 16 bytes
 * a block, for every answer, plan and cache entry. */
typedef struct mxr__blockhdr {
    _Alignas(max_align_t) size_t size;
} mxr__blockhdr;

void *mxr__alloc_default(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

void *mxr__alloc_counted(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mxr__alloc *a = ud;
    void *p = a->fn(a->ud, ptr, osize, nsize);
    if (p || nsize == 0)
        a->bytes += nsize - osize;
    return p;
}

void mxr__alloc_init(mxr__alloc *a, mxr_alloc_fn fn, void *ud)
{
    a->fn = fn ? fn : mxr__alloc_default;
    a->ud = fn ? ud : NULL;
    a->bytes = 0;
}

void *mxr__malloc(mxr__alloc *a, size_t n)
{
    return mxr__realloc(a, NULL, n);
}

void *mxr__calloc(mxr__alloc *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = mxr__malloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *mxr__realloc(mxr__alloc *a, void *p, size_t n)
{
    if (n > SIZE_MAX - sizeof(mxr__blockhdr))
        return NULL;
    mxr__blockhdr *old = p ? (mxr__blockhdr *)p - 1 : NULL;
    size_t osize = old ? old->size + sizeof *old : 0;
    size_t nsize = n + sizeof(mxr__blockhdr);
    mxr__blockhdr *h = a->fn(a->ud, old, osize, nsize);
    if (!h)
        return NULL;
    a->bytes += nsize - osize;
    h->size = n;
    return h + 1;
}

void mxr__free(mxr__alloc *a, void *p)
{
    if (!p)
        return;
    mxr__blockhdr *h = (mxr__blockhdr *)p - 1;
    size_t osize = h->size + sizeof *h;
    a->bytes -= osize;
    a->fn(a->ud, h, osize, 0);
}

size_t mxr__alloc_size(const void *p)
{
    return p ? ((const mxr__blockhdr *)p - 1)->size : 0;
}

char *mxr__strndup(mxr__alloc *a, const char *s, size_t n)
{
    char *d = mxr__malloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *mxr__strdup(mxr__alloc *a, const char *s)
{
    return mxr__strndup(a, s, strlen(s));
}
