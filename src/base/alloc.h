/* alloc.h -- the engine's allocator: one hook (Lua's lua_Alloc shape) that
 * feeds every allocation of an engine, with exact byte accounting. Each block
 * carries its size in a small header, so callers free without knowing it. */
#ifndef MXR_ALLOC_H
#define MXR_ALLOC_H

#include "mxroute.h"

typedef struct mxr__alloc {
    mxr_alloc_fn fn;
    void *ud;
    size_t bytes; /* currently allocated, headers included */
} mxr__alloc;

/* The default hook: realloc/free. */
void *mxr__alloc_default(void *ud, void *ptr, size_t osize, size_t nsize);

void mxr__alloc_init(mxr__alloc *a, mxr_alloc_fn fn, void *ud);
/* An mxr_alloc_fn over an mxr__alloc (ud): for blocks that carry their own
 * allocator (packed plans) but should count against the engine. */
void *mxr__alloc_counted(void *ud, void *ptr, size_t osize, size_t nsize);
void *mxr__malloc(mxr__alloc *a, size_t n);
void *mxr__calloc(mxr__alloc *a, size_t count, size_t size);
void *mxr__realloc(mxr__alloc *a, void *p, size_t n);
void mxr__free(mxr__alloc *a, void *p);
char *mxr__strdup(mxr__alloc *a, const char *s);
char *mxr__strndup(mxr__alloc *a, const char *s, size_t n);
/* Size the caller asked for when p was allocated. */
size_t mxr__alloc_size(const void *p);

#endif
