/* test_cache.c -- the byte-bounded LRU cache (src/dns/cache.c). */
#include "support.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dns/cache.h"

/* Counts the values the cache hands back, through the release ctx. */
typedef struct release_log {
    size_t count;
    void *last;
} release_log;

static void log_release(void *ctx, void *value)
{
    release_log *log = ctx;
    log->count++;
    log->last = value;
}

static mxr_status put_str(mxr__cache *c, const char *key, void *value,
                          size_t value_bytes, uint64_t expires_ms,
                          release_log *log)
{
    return mxr__cache_put(c, key, strlen(key), value, value_bytes, expires_ms,
                          log_release, log);
}

static void *get_str(mxr__cache *c, const char *key, uint64_t now_ms)
{
    return mxr__cache_get(c, key, strlen(key), now_ms);
}

static size_t cost_of(const char *key, size_t value_bytes)
{
    return mxr__cache_entry_cost(strlen(key), value_bytes);
}

/* Frees the cache and checks that every block went back. */
static void free_and_check(mxr__cache *c, mxr__alloc *a)
{
    mxr__cache_free(c);
    assert_int_equal(a->bytes, 0);
}

static const uint64_t NEVER = UINT64_MAX;

/* ----------------------------------------------------------------- basics */

static void test_put_get(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    assert_non_null(c);
    release_log log = {0};
    int v1 = 1;

    assert_null(get_str(c, "example.com", 0));
    assert_int_equal(put_str(c, "example.com", &v1, 10, NEVER, &log), 0);
    assert_ptr_equal(get_str(c, "example.com", 0), &v1);
    assert_null(get_str(c, "example.org", 0));
    assert_null(get_str(c, "example.co", 0)); /* a prefix is another key */
    assert_null(get_str(c, "example.com.", 0));
    assert_int_equal(mxr__cache_entries(c), 1);
    assert_int_equal(mxr__cache_bytes(c), cost_of("example.com", 10));
    assert_int_equal(mxr__cache_evictions(c), 0);
    assert_int_equal(log.count, 0);

    free_and_check(c, &a);
    assert_int_equal(log.count, 1);
    assert_ptr_equal(log.last, &v1);
}

/* ------------------------------------------------- embedded entries */

/* A value that carries its cache node and its key, as answers and plans
 * do; dropped ones are counted and freed. */
typedef struct item {
    mxr__cache_node node;
    int id;
    char key[16];
} item;

typedef struct drops {
    mxr__alloc *a;
    size_t count;
    int last;
} drops;

static void drop_item(void *ctx, mxr__cache_node *node)
{
    drops *d = ctx;
    item *it = (item *)(void *)node;
    d->count++;
    d->last = it->id;
    mxr__free(d->a, it);
}

static item *item_new(mxr__alloc *a, const char *key, int id)
{
    item *it = mxr__calloc(a, 1, sizeof *it);
    assert_non_null(it);
    it->id = id;
    snprintf(it->key, sizeof it->key, "%s", key);
    assert_true(mxr__cache_node_set_key(&it->node, it->key, strlen(key)));
    return it;
}

static int found(mxr__cache *c, const char *key, uint64_t now)
{
    mxr__cache_node *n = mxr__cache_find(c, key, strlen(key), now);
    return n ? ((item *)(void *)n)->id : 0;
}

static void test_embedded_entries(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 300);
    drops d = {.a = &a};
    int kind = mxr__cache_kind_add(c, drop_item, &d);
    assert_true(kind > 0);

    mxr__cache_insert(c, &item_new(&a, "k1", 1)->node, 100, 50, kind);
    mxr__cache_insert(c, &item_new(&a, "k2", 2)->node, 100, NEVER, kind);
    assert_int_equal(found(c, "k1", 0), 1);
    assert_int_equal(found(c, "k2", 0), 2);
    assert_int_equal(found(c, "k3", 0), 0);
    assert_int_equal(mxr__cache_bytes(c), 200);

    /* the same key: the old entry goes first */
    mxr__cache_insert(c, &item_new(&a, "k1", 11)->node, 100, 50, kind);
    assert_int_equal(d.count, 1);
    assert_int_equal(d.last, 1);
    assert_int_equal(found(c, "k1", 0), 11);
    assert_int_equal(mxr__cache_entries(c), 2);

    /* over the bound: the least recently used goes (k2: k1 was found) */
    mxr__cache_insert(c, &item_new(&a, "k3", 3)->node, 150, NEVER, kind);
    assert_int_equal(d.last, 2);
    assert_int_equal(found(c, "k2", 0), 0);
    assert_int_equal(mxr__cache_bytes(c), 250);
    assert_int_equal(mxr__cache_evictions(c), 1);

    /* larger than the whole bound: dropped at once, nothing else goes */
    mxr__cache_insert(c, &item_new(&a, "k4", 4)->node, 301, NEVER, kind);
    assert_int_equal(d.last, 4);
    assert_int_equal(found(c, "k4", 0), 0);
    assert_int_equal(mxr__cache_entries(c), 2);

    /* expired: removed when found */
    assert_int_equal(found(c, "k1", 50), 0);
    assert_int_equal(d.last, 11);
    assert_int_equal(mxr__cache_bytes(c), 150);

    size_t before = d.count;
    mxr__cache_free(c);
    assert_int_equal(d.count, before + 1);
    assert_int_equal(a.bytes, 0);
}

static void test_replace_releases_old_value(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    release_log log = {0};
    int v1 = 1, v2 = 2;

    assert_int_equal(put_str(c, "k", &v1, 10, NEVER, &log), 0);
    assert_int_equal(put_str(c, "k", &v2, 30, NEVER, &log), 0);
    assert_int_equal(log.count, 1);
    assert_ptr_equal(log.last, &v1);
    assert_ptr_equal(get_str(c, "k", 0), &v2);
    assert_int_equal(mxr__cache_entries(c), 1);
    assert_int_equal(mxr__cache_bytes(c), cost_of("k", 30));
    assert_int_equal(mxr__cache_evictions(c), 0); /* a replace is no evict */

    free_and_check(c, &a);
    assert_int_equal(log.count, 2);
    assert_ptr_equal(log.last, &v2);
}

static void test_expiry(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    release_log log = {0};
    int v = 1;

    assert_int_equal(put_str(c, "k", &v, 10, 1000, &log), 0);
    assert_ptr_equal(get_str(c, "k", 0), &v);
    assert_ptr_equal(get_str(c, "k", 999), &v);
    assert_int_equal(log.count, 0);
    /* Expiry is inclusive: at expires_ms the entry is gone. */
    assert_null(get_str(c, "k", 1000));
    assert_int_equal(log.count, 1);
    assert_int_equal(mxr__cache_entries(c), 0);
    assert_int_equal(mxr__cache_bytes(c), 0);
    assert_int_equal(mxr__cache_evictions(c), 0);
    /* Gone for good, even with an earlier clock. */
    assert_null(get_str(c, "k", 0));

    free_and_check(c, &a);
    assert_int_equal(log.count, 1);
}

/* -------------------------------------------------------------- bounding */

static void test_lru_eviction_order(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    size_t bound = 3 * cost_of("a", 100);
    mxr__cache *c = mxr__cache_new(&a, bound);
    release_log log = {0};
    int va, vb, vc, vd, ve;

    put_str(c, "a", &va, 100, NEVER, &log);
    put_str(c, "b", &vb, 100, NEVER, &log);
    put_str(c, "c", &vc, 100, NEVER, &log);
    assert_int_equal(mxr__cache_bytes(c), bound);
    assert_int_equal(log.count, 0);

    put_str(c, "d", &vd, 100, NEVER, &log);
    assert_int_equal(log.count, 1);
    assert_ptr_equal(log.last, &va);
    assert_int_equal(mxr__cache_evictions(c), 1);

    put_str(c, "e", &ve, 100, NEVER, &log);
    assert_int_equal(log.count, 2);
    assert_ptr_equal(log.last, &vb);
    assert_int_equal(mxr__cache_evictions(c), 2);

    assert_null(get_str(c, "a", 0));
    assert_null(get_str(c, "b", 0));
    assert_ptr_equal(get_str(c, "c", 0), &vc);
    assert_ptr_equal(get_str(c, "d", 0), &vd);
    assert_ptr_equal(get_str(c, "e", 0), &ve);
    assert_int_equal(mxr__cache_entries(c), 3);
    assert_int_equal(mxr__cache_bytes(c), bound);

    /* A big value evicts as many entries as it needs, oldest first. */
    int vbig;
    put_str(c, "f", &vbig, 2 * cost_of("a", 100) + 100, NEVER, &log);
    assert_int_equal(mxr__cache_entries(c), 1);
    assert_int_equal(mxr__cache_evictions(c), 5);
    assert_ptr_equal(get_str(c, "f", 0), &vbig);
    assert_true(mxr__cache_bytes(c) <= bound);

    free_and_check(c, &a);
}

static void test_get_refreshes_recency(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 3 * cost_of("a", 100));
    release_log log = {0};
    int va, vb, vc, vd;

    put_str(c, "a", &va, 100, NEVER, &log);
    put_str(c, "b", &vb, 100, NEVER, &log);
    put_str(c, "c", &vc, 100, NEVER, &log);
    assert_ptr_equal(get_str(c, "a", 0), &va); /* a is now the newest */
    put_str(c, "d", &vd, 100, NEVER, &log);
    assert_ptr_equal(log.last, &vb);
    assert_ptr_equal(get_str(c, "a", 0), &va);
    assert_null(get_str(c, "b", 0));

    /* A get on the newest entry keeps it newest. */
    assert_ptr_equal(get_str(c, "a", 0), &va);
    put_str(c, "b", &vb, 100, NEVER, &log);
    assert_ptr_equal(log.last, &vc);

    free_and_check(c, &a);
}

static void test_oversize_value_rejected(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    size_t bound = cost_of("k", 100);
    mxr__cache *c = mxr__cache_new(&a, bound);
    release_log log = {0};
    int v1, v2, v3;

    assert_int_equal(put_str(c, "other", &v1, 101, NEVER, &log), 0);
    assert_int_equal(log.count, 1);
    assert_ptr_equal(log.last, &v1);
    assert_int_equal(mxr__cache_entries(c), 0);

    /* An entry that exactly fills the bound is kept. */
    assert_int_equal(put_str(c, "k", &v2, 100, NEVER, &log), 0);
    assert_int_equal(mxr__cache_bytes(c), bound);
    assert_ptr_equal(get_str(c, "k", 0), &v2);

    /* An oversize replace leaves no stale value behind. */
    assert_int_equal(put_str(c, "k", &v3, 101, NEVER, &log), 0);
    assert_int_equal(log.count, 3);
    assert_null(get_str(c, "k", 0));
    assert_int_equal(mxr__cache_entries(c), 0);
    assert_int_equal(mxr__cache_bytes(c), 0);
    assert_int_equal(mxr__cache_evictions(c), 0);

    /* Sizes near SIZE_MAX must not wrap around into "fits". */
    assert_int_equal(put_str(c, "k", &v1, SIZE_MAX, NEVER, &log), 0);
    assert_int_equal(put_str(c, "k", &v1, SIZE_MAX - 1, NEVER, &log), 0);
    assert_int_equal(log.count, 5);
    assert_int_equal(mxr__cache_entry_cost(1, SIZE_MAX), SIZE_MAX);
    assert_int_equal(mxr__cache_entry_cost(SIZE_MAX, 0), SIZE_MAX);

    free_and_check(c, &a);
}

static void test_zero_bytes_disables_caching(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 0);
    assert_non_null(c);
    release_log log = {0};
    int v;

    assert_int_equal(put_str(c, "k", &v, 0, NEVER, &log), 0);
    assert_int_equal(log.count, 1);
    assert_null(get_str(c, "k", 0));
    assert_int_equal(mxr__cache_entries(c), 0);
    assert_int_equal(mxr__cache_bytes(c), 0);
    assert_int_equal(mxr__cache_evictions(c), 0);

    free_and_check(c, &a);
    assert_int_equal(log.count, 1);
}

static void test_remove(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    release_log log = {0};
    int va, vb;

    put_str(c, "a", &va, 10, NEVER, &log);
    put_str(c, "b", &vb, 20, NEVER, &log);
    mxr__cache_remove(c, "a", 1);
    assert_int_equal(log.count, 1);
    assert_ptr_equal(log.last, &va);
    assert_null(get_str(c, "a", 0));
    assert_ptr_equal(get_str(c, "b", 0), &vb);
    assert_int_equal(mxr__cache_entries(c), 1);
    assert_int_equal(mxr__cache_bytes(c), cost_of("b", 20));
    assert_int_equal(mxr__cache_evictions(c), 0);

    mxr__cache_remove(c, "a", 1); /* absent: nothing happens */
    mxr__cache_remove(c, NULL, 0);
    mxr__cache_remove(c, "bb", 2);
    assert_int_equal(log.count, 1);
    assert_int_equal(mxr__cache_entries(c), 1);

    mxr__cache_remove(c, "b", 1);
    assert_int_equal(mxr__cache_entries(c), 0);
    assert_int_equal(mxr__cache_bytes(c), 0);

    free_and_check(c, &a);
    assert_int_equal(log.count, 2);
}

/* 100,000 keys through a cache that holds 1,000: the bound holds after
 * every put and the survivors are exactly the newest 1,000. */
static void test_many_entries_bounded(void **state)
{
    (void)state;
    enum { NKEYS = 100000, KEEP = 1000, VALUE_BYTES = 100 };
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    size_t cost = mxr__cache_entry_cost(8, VALUE_BYTES);
    size_t bound = KEEP * cost + cost / 2; /* slack that fits no entry */
    mxr__cache *c = mxr__cache_new(&a, bound);
    release_log log = {0};
    static int values[NKEYS];
    char key[16];

    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "%08d", i);
        assert_int_equal(put_str(c, key, &values[i], VALUE_BYTES, NEVER, &log),
                         0);
        size_t bytes = mxr__cache_bytes(c);
        assert_true(bytes <= bound);
        assert_int_equal(bytes, mxr__cache_entries(c) * cost);
        assert_int_equal(mxr__cache_entries(c), i < KEEP ? i + 1 : KEEP);
        assert_int_equal(log.count, (size_t)i + 1 - mxr__cache_entries(c));
    }
    assert_int_equal(mxr__cache_evictions(c), NKEYS - KEEP);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "%08d", i);
        void *expect = i >= NKEYS - KEEP ? &values[i] : NULL;
        assert_ptr_equal(get_str(c, key, 0), expect);
    }
    free_and_check(c, &a);
    assert_int_equal(log.count, NKEYS);
}

static void test_keys_with_nul_bytes(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    release_log log = {0};
    static const struct {
        const char *bytes;
        size_t len;
    } keys[] = {
        {"a\0b", 3}, {"a\0c", 3}, {"a", 1},          {"a\0", 2},
        {"", 0},     {"\0", 1},   {"\0\0\0\0\0", 5}, {"\0\0\0\0\0\0\0\0\0", 9},
    };
    enum { N = sizeof keys / sizeof keys[0] };
    int values[N];

    for (size_t i = 0; i < N; i++)
        assert_int_equal(mxr__cache_put(c, keys[i].bytes, keys[i].len,
                                        &values[i], 1, NEVER, log_release,
                                        &log),
                         0);
    assert_int_equal(mxr__cache_entries(c), N);
    assert_int_equal(log.count, 0);
    for (size_t i = 0; i < N; i++)
        assert_ptr_equal(mxr__cache_get(c, keys[i].bytes, keys[i].len, 0),
                         &values[i]);
    /* The empty key may be spelled with a NULL pointer. */
    assert_ptr_equal(mxr__cache_get(c, NULL, 0, 0), &values[4]);
    assert_null(mxr__cache_get(c, "a\0d", 3, 0));

    free_and_check(c, &a);
    assert_int_equal(log.count, N);
}

static void test_growth(void **state)
{
    (void)state;
    enum { NKEYS = 10000 };
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, SIZE_MAX);
    release_log log = {0};
    static int values[NKEYS];
    char key[32];

    size_t first = mxr__cache_buckets(c);
    assert_int_equal(first & (first - 1), 0);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "host-%d.example.net", i);
        put_str(c, key, &values[i], 0, NEVER, &log);
        size_t buckets = mxr__cache_buckets(c);
        assert_int_equal(buckets & (buckets - 1), 0); /* a power of two */
        assert_true(mxr__cache_entries(c) * 4 <= buckets * 3);
    }
    assert_true(mxr__cache_buckets(c) > first);
    assert_int_equal(mxr__cache_entries(c), NKEYS);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "host-%d.example.net", i);
        assert_ptr_equal(get_str(c, key, 0), &values[i]);
    }
    assert_int_equal(log.count, 0);
    free_and_check(c, &a);
}

/* --------------------------------------------------------- out of memory */

/* Fails each allocation in turn: every failed put releases its value,
 * what was stored stays readable, and nothing leaks. */
static void test_allocation_failures(void **state)
{
    (void)state;
    enum { NKEYS = 60 };
    static int values[NKEYS];
    char key[16];
    long fail_at;

    for (fail_at = 1;; fail_at++) {
        mxr_test_alloc t = {.fail_at = fail_at};
        mxr__alloc a;
        mxr__alloc_init(&a, mxr_test_alloc_fn, &t);
        release_log log = {0};
        mxr__cache *c = mxr__cache_new(&a, SIZE_MAX);
        if (!c) {
            assert_int_equal(t.live, 0);
            assert_int_equal(a.bytes, 0);
            continue;
        }
        bool stored[NKEYS];
        size_t failed = 0;
        for (int i = 0; i < NKEYS; i++) {
            snprintf(key, sizeof key, "key%d", i);
            int rc = put_str(c, key, &values[i], 8, NEVER, &log);
            assert_true(rc == MXR_OK || rc == MXR_ENOMEM);
            stored[i] = rc == MXR_OK;
            if (rc == MXR_ENOMEM) {
                failed++;
                assert_int_equal(log.count, failed);
                assert_ptr_equal(log.last, &values[i]);
            }
        }
        assert_int_equal(mxr__cache_entries(c), NKEYS - failed);
        for (int i = 0; i < NKEYS; i++) {
            snprintf(key, sizeof key, "key%d", i);
            assert_ptr_equal(get_str(c, key, 0), stored[i] ? &values[i] : NULL);
        }
        mxr__cache_free(c);
        assert_int_equal(log.count, NKEYS);
        assert_int_equal(t.live, 0);
        assert_int_equal(a.bytes, 0);
        if (t.calls < fail_at)
            break; /* this run failed nothing: every point was covered */
    }
    assert_true(fail_at > NKEYS); /* the loop did go through the puts */
}

/* A failed table growth keeps the old table; the put still succeeds. */
static void test_growth_failure_keeps_table(void **state)
{
    (void)state;
    enum { NKEYS = 200 };
    static int values[NKEYS];
    char key[16];
    mxr_test_alloc t = {0};
    mxr__alloc a;
    mxr__alloc_init(&a, mxr_test_alloc_fn, &t);
    mxr__cache *c = mxr__cache_new(&a, SIZE_MAX);
    release_log log = {0};
    size_t first = mxr__cache_buckets(c);
    size_t growth_failures = 0;

    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "key%d", i);
        size_t before = mxr__cache_buckets(c);
        /* The entry is the next allocation; a growth would be the one
         * after it. Fail that one every time up to 150 entries. */
        t.fail_at = i < 150 ? t.calls + 2 : 0;
        assert_int_equal(put_str(c, key, &values[i], 8, NEVER, &log), 0);
        if (i < 150) {
            assert_int_equal(mxr__cache_buckets(c), first);
            growth_failures += t.calls >= t.fail_at;
        } else {
            assert_true(mxr__cache_buckets(c) >= before);
        }
    }
    assert_true(growth_failures > 0);
    assert_true(mxr__cache_buckets(c) > first);
    assert_int_equal(mxr__cache_entries(c), NKEYS);
    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "key%d", i);
        assert_ptr_equal(get_str(c, key, 0), &values[i]);
    }
    mxr__cache_free(c);
    assert_int_equal(log.count, NKEYS);
    assert_int_equal(t.live, 0);
}

/* ------------------------------------------------ random ops vs a model */

enum { MODEL_KEYS = 500, MODEL_OPS = 200000 };

/* A reference LRU: a flat array scanned for the least recently used. */
typedef struct model_slot {
    bool present;
    size_t token;
    size_t cost;
    uint64_t expires_ms;
    uint64_t used; /* recency stamp */
} model_slot;

typedef struct model {
    model_slot slots[MODEL_KEYS];
    unsigned char key[MODEL_KEYS][40];
    size_t keylen[MODEL_KEYS];
    size_t bytes, entries, max_bytes;
    uint64_t evictions, tick;
    /* One byte per put: 1 while the cache holds that value. The value
     * handed to the cache is a pointer into this array. */
    unsigned char live[MODEL_OPS + 1];
    size_t nlive;
} model;

static void model_release(void *ctx, void *value)
{
    model *m = ctx;
    unsigned char *token = value;
    assert_true(token >= m->live && token < m->live + MODEL_OPS + 1);
    assert_int_equal(*token, 1); /* released once, and only once */
    *token = 0;
    m->nlive--;
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void model_drop(model *m, size_t k)
{
    m->slots[k].present = false;
    m->bytes -= m->slots[k].cost;
    m->entries--;
}

static void model_evict_lru(model *m)
{
    size_t oldest = MODEL_KEYS;
    for (size_t k = 0; k < MODEL_KEYS; k++)
        if (m->slots[k].present &&
            (oldest == MODEL_KEYS || m->slots[k].used < m->slots[oldest].used))
            oldest = k;
    assert_true(oldest < MODEL_KEYS);
    model_drop(m, oldest);
    m->evictions++;
}

static void model_put(model *m, size_t k, size_t token, size_t value_bytes,
                      uint64_t expires_ms)
{
    if (m->slots[k].present)
        model_drop(m, k);
    size_t cost = mxr__cache_entry_cost(m->keylen[k], value_bytes);
    if (cost > m->max_bytes)
        return;
    while (m->bytes + cost > m->max_bytes)
        model_evict_lru(m);
    m->slots[k] = (model_slot){.present = true,
                               .token = token,
                               .cost = cost,
                               .expires_ms = expires_ms,
                               .used = ++m->tick};
    m->bytes += cost;
    m->entries++;
}

static void *model_get(model *m, size_t k, uint64_t now_ms)
{
    model_slot *s = &m->slots[k];
    if (!s->present)
        return NULL;
    if (s->expires_ms <= now_ms) {
        model_drop(m, k);
        return NULL;
    }
    s->used = ++m->tick;
    return &m->live[s->token];
}

static void model_make_keys(model *m)
{
    for (size_t k = 0; k < MODEL_KEYS; k++) {
        int n = snprintf((char *)m->key[k], sizeof m->key[k], "key-%zu%s", k,
                         k % 3 == 0 ? ".mail.example.com" : "");
        m->keylen[k] = (size_t)n;
        if (k % 7 == 0)
            m->key[k][0] = '\0'; /* some keys hold a NUL byte */
    }
}

static void test_random_ops_match_model(void **state)
{
    (void)state;
    static model m;
    memset(&m, 0, sizeof m);
    model_make_keys(&m);
    m.max_bytes = 40 * 1024;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, m.max_bytes);
    uint64_t seed = 0x5eed1234abcdULL;
    uint64_t now = 1000;

    for (size_t op = 1; op <= MODEL_OPS; op++) {
        size_t k = xorshift64(&seed) % MODEL_KEYS;
        unsigned what = xorshift64(&seed) % 100;
        now += xorshift64(&seed) % 3;
        if (what < 45) {
            size_t value_bytes = xorshift64(&seed) % 400;
            if (xorshift64(&seed) % 200 == 0)
                value_bytes = m.max_bytes; /* never fits */
            uint64_t expires = now + 1 + xorshift64(&seed) % 2000;
            m.live[op] = 1;
            m.nlive++;
            model_put(&m, k, op, value_bytes, expires);
            assert_int_equal(mxr__cache_put(c, m.key[k], m.keylen[k],
                                            &m.live[op], value_bytes, expires,
                                            model_release, &m),
                             0);
            assert_int_equal(m.live[op],
                             m.slots[k].present && m.slots[k].token == op);
        } else if (what < 90) {
            void *expect = model_get(&m, k, now);
            assert_ptr_equal(mxr__cache_get(c, m.key[k], m.keylen[k], now),
                             expect);
        } else {
            if (m.slots[k].present)
                model_drop(&m, k);
            mxr__cache_remove(c, m.key[k], m.keylen[k]);
        }
        assert_int_equal(mxr__cache_entries(c), m.entries);
        assert_int_equal(mxr__cache_bytes(c), m.bytes);
        assert_int_equal(mxr__cache_evictions(c), m.evictions);
        assert_int_equal(m.nlive, m.entries);
        assert_true(m.bytes <= m.max_bytes);
    }
    assert_true(m.evictions > 1000); /* the bound was exercised */
    free_and_check(c, &a);
    assert_int_equal(m.nlive, 0);
}

/* The node is what every cached answer and plan pays: it stays small. */
static void test_node_is_compact(void **state)
{
    (void)state;
    assert_true(sizeof(mxr__cache_node) <= 48);
}

/* Each kind of embedded entry goes to its own drop function and context;
 * a cache has room for MXR__CACHE_KINDS kinds, its boxes included. */
static void test_kinds_drop_their_own(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, 1 << 20);
    drops d1 = {.a = &a}, d2 = {.a = &a};
    int k1 = mxr__cache_kind_add(c, drop_item, &d1);
    int k2 = mxr__cache_kind_add(c, drop_item, &d2);
    assert_true(k1 > 0 && k2 > 0 && k1 != k2);
    for (int i = 3; i < MXR__CACHE_KINDS; i++)
        assert_true(mxr__cache_kind_add(c, drop_item, &d1) > 0);
    assert_int_equal(mxr__cache_kind_add(c, drop_item, &d1), -1);

    mxr__cache_insert(c, &item_new(&a, "one", 1)->node, 10, NEVER, k1);
    mxr__cache_insert(c, &item_new(&a, "two", 2)->node, 10, NEVER, k2);
    mxr__cache_remove(c, "two", 3);
    assert_int_equal(d2.count, 1);
    assert_int_equal(d2.last, 2);
    assert_int_equal(d1.count, 0);
    mxr__cache_free(c);
    assert_int_equal(d1.count, 1);
    assert_int_equal(d1.last, 1);
    assert_int_equal(a.bytes, 0);
}

/* The key is found by a small offset from the node: set_key refuses a
 * key before the node, too far after it or too long, and leaves the node
 * as it was. */
static void test_node_key_bounds(void **state)
{
    (void)state;
    struct {
        unsigned char before[8];
        mxr__cache_node node;
        unsigned char after[300];
    } blk = {0};
    mxr__cache_node *n = &blk.node;
    assert_true(mxr__cache_node_set_key(n, blk.after, 3));
    assert_ptr_equal(mxr__cache_node_key(n), blk.after);
    assert_int_equal(n->keylen, 3);
    unsigned char *last = (unsigned char *)n + MXR__CACHE_KEY_OFF_MAX;
    assert_true(mxr__cache_node_set_key(n, last, 1));
    assert_ptr_equal(mxr__cache_node_key(n), last);

    assert_false(mxr__cache_node_set_key(n, last + 1, 1));
    assert_false(mxr__cache_node_set_key(n, blk.before, 1));
    assert_false(mxr__cache_node_set_key(n, blk.after, 70000));
    assert_ptr_equal(mxr__cache_node_key(n), last);
    assert_int_equal(n->keylen, 1);
    assert_true(mxr__cache_node_set_key(n, NULL, 0));
    assert_int_equal(n->keylen, 0);
}

/* A cost the node cannot hold (more than 32 bits) counts as larger than
 * any bound: dropped at once, like one over max_bytes. A boxed key longer
 * than the node can say is not cached either. */
static void test_huge_cost_and_key(void **state)
{
    (void)state;
    if (SIZE_MAX <= UINT32_MAX)
        skip();
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__cache *c = mxr__cache_new(&a, SIZE_MAX);
    drops d = {.a = &a};
    int kind = mxr__cache_kind_add(c, drop_item, &d);
    mxr__cache_insert(c, &item_new(&a, "big", 1)->node, (size_t)UINT32_MAX + 1,
                      NEVER, kind);
    assert_int_equal(d.count, 1);
    assert_int_equal(mxr__cache_entries(c), 0);
    mxr__cache_insert(c, &item_new(&a, "fits", 2)->node, UINT32_MAX, NEVER,
                      kind);
    assert_int_equal(mxr__cache_entries(c), 1);
    assert_int_equal(mxr__cache_bytes(c), UINT32_MAX);

    static char longkey[MXR__CACHE_KEY_MAX + 1];
    release_log log = {0};
    int v = 1;
    assert_int_equal(mxr__cache_put(c, longkey, sizeof longkey, &v, 1, NEVER,
                                    log_release, &log),
                     0);
    assert_int_equal(log.count, 1); /* released at once */
    assert_null(mxr__cache_get(c, longkey, sizeof longkey, 0));
    mxr__cache_free(c);
    assert_int_equal(a.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_embedded_entries),
        cmocka_unit_test(test_replace_releases_old_value),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_lru_eviction_order),
        cmocka_unit_test(test_get_refreshes_recency),
        cmocka_unit_test(test_oversize_value_rejected),
        cmocka_unit_test(test_zero_bytes_disables_caching),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_many_entries_bounded),
        cmocka_unit_test(test_keys_with_nul_bytes),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_growth_failure_keeps_table),
        cmocka_unit_test(test_random_ops_match_model),
        cmocka_unit_test(test_node_is_compact),
        cmocka_unit_test(test_kinds_drop_their_own),
        cmocka_unit_test(test_node_key_bounds),
        cmocka_unit_test(test_huge_cost_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
