/* support.c -- shared helpers for the cmocka unit tests. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>

void *mxr_test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mxr_test_alloc *t = ud;
    if (nsize == 0) {
        if (ptr)
            t->live -= osize;
        free(ptr);
        return NULL;
    }
    t->calls++;
    if (t->fail_at > 0 && t->calls == t->fail_at)
        return NULL;
    if (t->fail_from > 0 && t->calls >= t->fail_from)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        t->live += nsize - (ptr ? osize : 0);
    return p;
}

const char *mxr_test_source_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("MXR_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

void mxr_test_check_words(const mxr_test_words *t)
{
    for (size_t i = 0; i < t->n; i++) {
        assert_string_equal(t->name((int)i), t->words[i]);
        assert_int_equal(t->parse(t->words[i]), (int)i);
    }
    assert_string_equal(t->name((int)t->n), "unknown");
    assert_string_equal(t->name(-1), "unknown");
    assert_string_equal(t->name(1000), "unknown");
    assert_int_equal(t->parse(NULL), -1);
    for (size_t i = 0; i < t->nbad; i++)
        if (t->parse(t->bad[i]) != -1)
            fail_msg("\"%s\" parsed as %d", t->bad[i], t->parse(t->bad[i]));
}
