/* heap_fixture.h -- the cmocka fixture of unit tests over the engine's
 * internal allocator: an mxr__alloc on a counting mxr_test_alloc, which
 * every test must leave empty. */
#ifndef MXR_TEST_HEAP_FIXTURE_H
#define MXR_TEST_HEAP_FIXTURE_H

#include "support.h"

#include "base/alloc.h"

#include <stdlib.h>

typedef struct heap_fixture {
    mxr_test_alloc ta;
    mxr__alloc a;
} heap_fixture;

static inline int heap_setup(void **state)
{
    heap_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mxr__alloc_init(&f->a, mxr_test_alloc_fn, &f->ta);
    *state = f;
    return 0;
}

/* Every test ends here: nothing may be left allocated. */
static inline int heap_teardown(void **state)
{
    heap_fixture *f = *state;
    assert_int_equal(f->a.bytes, 0);
    assert_int_equal(f->ta.live, 0);
    free(f);
    return 0;
}

#endif
