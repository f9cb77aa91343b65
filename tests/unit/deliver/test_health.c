/* test_health.c -- host health memory (src/deliver/health.c): cool-down growth,
 * clearing on success, decay, reordering of packed plans, the memory bound
 * and allocation failures. Time is a plain number: nothing sleeps. */
#include "support.h"

#include "base/addr.h"
#include "deliver/health.h"
#include "plan/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S UINT64_C(1000)           /* ms per second */
#define T0 (UINT64_C(1000000) * S) /* an arbitrary start time */

typedef struct fixture {
    mxr_test_alloc t;
    mxr__alloc a;
    mxr__health *h;
} fixture;

static const mxr__health_params DEFAULT_PARAMS = {60, 3600, 1 << 20};

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mxr__alloc_init(&f->a, mxr_test_alloc_fn, &f->t);
    f->h = mxr__health_new(&f->a, &DEFAULT_PARAMS);
    if (!f->h) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Every test ends here: nothing may be left allocated. */
static int teardown(void **state)
{
    fixture *f = *state;
    mxr__health_free(f->h);
    assert_int_equal(f->a.bytes, 0);
    assert_int_equal(f->t.live, 0);
    free(f);
    return 0;
}

static mxr_addr addr(const char *text)
{
    mxr_addr a;
    memset(&a, 0, sizeof a);
    assert_true(mxr__addr_parse(text, &a));
    return a;
}

static mxr__health_state host_state(fixture *f, const char *host, uint64_t now)
{
    return mxr__health_host(f->h, host, now);
}

static mxr__health_state addr_state(fixture *f, const char *text, uint64_t now)
{
    mxr_addr a = addr(text);
    return mxr__health_addr(f->h, &a, now);
}

static void fail_at(fixture *f, const char *host, const char *addr_text,
                    uint64_t now)
{
    mxr_addr a;
    if (addr_text)
        a = addr(addr_text);
    mxr__health_fail(f->h, host, addr_text ? &a : NULL, now);
}

/* ------------------------------------------------------------ cool-down */

static void test_unknown_is_up(void **state)
{
    fixture *f = *state;
    mxr__health_state st = host_state(f, "mx.example.com", T0);
    assert_false(st.down);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.down_until, 0);
    assert_int_equal(st.last_fail, 0);
    st = addr_state(f, "192.0.2.1", T0);
    assert_false(st.down);
    assert_int_equal(st.failures, 0);
}

/* 60, 120, 240, ... seconds, capped at 3600, for both kinds of entry. */
static void test_cooldown_growth(void **state)
{
    fixture *f = *state;
    const uint64_t expect_s[] = {60, 120, 240, 480, 960, 1920, 3600, 3600};
    uint64_t now = T0;
    for (unsigned i = 0; i < sizeof expect_s / sizeof *expect_s; i++) {
        fail_at(f, "mx.example.com", "2001:db8::25", now);
        mxr__health_state hs = host_state(f, "mx.example.com", now);
        mxr__health_state as = addr_state(f, "2001:db8::25", now);
        assert_true(hs.down && as.down);
        assert_int_equal(hs.failures, i + 1);
        assert_int_equal(as.failures, i + 1);
        assert_int_equal(hs.down_until, now + expect_s[i] * S);
        assert_int_equal(as.down_until, now + expect_s[i] * S);
        assert_int_equal(hs.last_fail, now);
        /* Down until the last millisecond of the cool-down, up at it. */
        assert_true(host_state(f, "mx.example.com", hs.down_until - 1).down);
        assert_false(host_state(f, "mx.example.com", hs.down_until).down);
        /* The next failure comes when the cool-down is over. */
        now = hs.down_until;
    }
    /* Many more failures: the count goes on, the cool-down stays capped. */
    for (unsigned i = 0; i < 100; i++)
        fail_at(f, "mx.example.com", NULL, now + i);
    mxr__health_state hs = host_state(f, "mx.example.com", now + 99);
    assert_int_equal(hs.failures, 108);
    assert_int_equal(hs.down_until, now + 99 + 3600 * S);
}

static void test_host_and_addr_are_separate(void **state)
{
    fixture *f = *state;
    fail_at(f, "a.example.com", NULL, T0);
    fail_at(f, NULL, "192.0.2.1", T0);
    assert_true(host_state(f, "a.example.com", T0).down);
    assert_false(host_state(f, "b.example.com", T0).down);
    assert_true(addr_state(f, "192.0.2.1", T0).down);
    assert_false(addr_state(f, "192.0.2.2", T0).down);
    /* The same bytes in another family are another address. */
    assert_false(addr_state(f, "::c000:201", T0).down);
    assert_false(addr_state(f, "::ffff:192.0.2.1", T0).down);
    /* Host names are case-insensitive. */
    assert_true(host_state(f, "A.Example.COM", T0).down);
    /* An unknown family is never recorded nor found. */
    mxr_addr odd;
    memset(&odd, 0, sizeof odd);
    mxr__health_fail(f->h, NULL, &odd, T0);
    assert_false(mxr__health_addr(f->h, &odd, T0).down);
}

static void test_ok_clears(void **state)
{
    fixture *f = *state;
    for (unsigned i = 0; i < 3; i++)
        fail_at(f, "mx.example.com", "192.0.2.1", T0 + i);
    fail_at(f, "other.example.com", "192.0.2.2", T0);
    mxr_addr a = addr("192.0.2.1");
    mxr__health_ok(f->h, "mx.example.com", &a, T0 + 10);
    mxr__health_state st = host_state(f, "mx.example.com", T0 + 10);
    assert_false(st.down);
    assert_int_equal(st.failures, 0);
    assert_false(addr_state(f, "192.0.2.1", T0 + 10).down);
    /* Others stay down. */
    assert_true(host_state(f, "other.example.com", T0 + 10).down);
    assert_true(addr_state(f, "192.0.2.2", T0 + 10).down);
    /* The next failure starts from the base cool-down again. */
    fail_at(f, "mx.example.com", NULL, T0 + 20);
    st = host_state(f, "mx.example.com", T0 + 20);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.down_until, T0 + 20 + 60 * S);
    /* ok with only a host, or only an address, or nothing. */
    mxr__health_ok(f->h, NULL, NULL, T0 + 30);
    mxr__health_ok(f->h, "mx.example.com", NULL, T0 + 30);
    assert_false(host_state(f, "mx.example.com", T0 + 30).down);
    a = addr("192.0.2.2");
    mxr__health_ok(f->h, NULL, &a, T0 + 30);
    assert_false(addr_state(f, "192.0.2.2", T0 + 30).down);
    assert_true(host_state(f, "other.example.com", T0 + 30).down);
}

/* An entry quiet for max_s past the end of its cool-down is forgotten:
 * the next failure starts from the base again. */
static void test_decay(void **state)
{
    fixture *f = *state;
    fail_at(f, "mx.example.com", "192.0.2.1", T0);
    fail_at(f, "mx.example.com", "192.0.2.1", T0);
    mxr__health_state st = host_state(f, "mx.example.com", T0);
    assert_int_equal(st.down_until, T0 + 120 * S);
    uint64_t forget_at = st.down_until + 3600 * S;

    /* Up but remembered until then; a failure now would grow further. */
    st = host_state(f, "mx.example.com", forget_at - 1);
    assert_false(st.down);
    assert_int_equal(st.failures, 2);
    assert_int_equal(addr_state(f, "192.0.2.1", forget_at - 1).failures, 2);

    st = host_state(f, "mx.example.com", forget_at);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.last_fail, 0);
    assert_int_equal(addr_state(f, "192.0.2.1", forget_at).failures, 0);

    fail_at(f, "mx.example.com", "192.0.2.1", forget_at + 5);
    st = host_state(f, "mx.example.com", forget_at + 5);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.down_until, forget_at + 5 + 60 * S);
    st = addr_state(f, "192.0.2.1", forget_at + 5);
    assert_int_equal(st.failures, 1);
}

/* A failure while still remembered (cool-down over) keeps counting. */
static void test_count_kept_while_remembered(void **state)
{
    fixture *f = *state;
    fail_at(f, "mx.example.com", NULL, T0);
    uint64_t later = T0 + 60 * S + 3000 * S; /* up, not yet forgotten */
    assert_false(host_state(f, "mx.example.com", later).down);
    fail_at(f, "mx.example.com", NULL, later);
    mxr__health_state st = host_state(f, "mx.example.com", later);
    assert_int_equal(st.failures, 2);
    assert_int_equal(st.down_until, later + 120 * S);
}

static void test_params_edges(void **state)
{
    (void)state;
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);

    /* Base 0: failures are counted but never cool down. */
    mxr__health_params p0 = {0, 3600, 1 << 16};
    mxr__health *h = mxr__health_new(&a, &p0);
    assert_non_null(h);
    for (unsigned i = 0; i < 40; i++)
        mxr__health_fail(h, "mx.example.com", NULL, T0);
    mxr__health_state st = mxr__health_host(h, "mx.example.com", T0);
    assert_false(st.down);
    assert_int_equal(st.failures, 40);
    mxr__health_free(h);

    /* Base above max: max from the first failure; the largest values and
     * a clock near its end do not overflow. */
    mxr__health_params big = {UINT32_MAX, UINT32_MAX, 1 << 16};
    h = mxr__health_new(&a, &big);
    assert_non_null(h);
    mxr__health_fail(h, "x.example.com", NULL, T0);
    st = mxr__health_host(h, "x.example.com", T0);
    assert_int_equal(st.down_until, T0 + (uint64_t)UINT32_MAX * S);
    for (unsigned i = 0; i < 70; i++)
        mxr__health_fail(h, "y.example.com", NULL, UINT64_MAX - 5);
    st = mxr__health_host(h, "y.example.com", UINT64_MAX - 5);
    assert_true(st.down);
    assert_int_equal(st.failures, 70);
    assert_int_equal(st.down_until, UINT64_MAX);
    mxr__health_free(h);

    /* Shifts past 32 bits would lose the high bits of a large base: the
     * cap must hold for every failure count. */
    mxr__health_params wide = {UINT32_C(1) << 31, UINT32_MAX, 1 << 16};
    h = mxr__health_new(&a, &wide);
    assert_non_null(h);
    for (unsigned i = 1; i <= 80; i++) {
        mxr__health_fail(h, "z.example.com", NULL, T0);
        st = mxr__health_host(h, "z.example.com", T0);
        assert_int_equal(st.failures, i);
        assert_int_equal(st.down_until,
                         T0 + (i == 1 ? UINT64_C(1) << 31 : UINT32_MAX) * S);
    }
    mxr__health_free(h);

    /* No memory at all: nothing is remembered, nothing breaks. */
    mxr__health_params none = {60, 3600, 0};
    h = mxr__health_new(&a, &none);
    assert_non_null(h);
    mxr__health_fail(h, "mx.example.com", NULL, T0);
    assert_false(mxr__health_host(h, "mx.example.com", T0).down);
    assert_int_equal(mxr__health_bytes(h), 0);
    mxr__health_free(h);
    assert_int_equal(a.bytes, 0);

    /* A NULL table is a table that knows nothing. */
    mxr__health_fail(NULL, "mx.example.com", NULL, T0);
    mxr__health_ok(NULL, "mx.example.com", NULL, T0);
    assert_false(mxr__health_host(NULL, "mx.example.com", T0).down);
    assert_int_equal(mxr__health_bytes(NULL), 0);
    mxr__health_free(NULL);
}

/* ------------------------------------------------------------- reorder */

/* Plans in these tests: "name=addr,addr;name=addr;..." with preferences
 * 10, 20, 30, ... in the order given. */
static mxr_plan *make_plan(const char *spec)
{
    mxr__alloc a;
    mxr__alloc_init(&a, NULL, NULL);
    mxr__plan_builder pb;
    mxr__pb_init(&pb, &a);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    uint16_t pref = 10;
    char *save_host = NULL;
    for (char *hs = strtok_r(buf, ";", &save_host); hs;
         hs = strtok_r(NULL, ";", &save_host)) {
        char *eq = strchr(hs, '=');
        if (eq)
            *eq = '\0';
        mxr__host *host = mxr__pb_add_host(&pb, hs, pref, MXR_SOURCE_MX, 25);
        assert_non_null(host);
        pref += 10;
        char *save_addr = NULL;
        for (char *as = eq ? strtok_r(eq + 1, ",", &save_addr) : NULL; as;
             as = strtok_r(NULL, ",", &save_addr)) {
            mxr_addr ad = addr(as);
            assert_int_equal(mxr__pb_add_addr(&pb, host, &ad), 0);
        }
    }
    mxr_plan *p = mxr__plan_pack(&pb, "example.com", "example.com",
                                 mxr__alloc_default, NULL);
    assert_non_null(p);
    mxr__pb_free(&pb);
    assert_int_equal(a.bytes, 0);
    return p;
}

/* The plan back in the spec syntax, with a '!' after down hosts. */
static const char *describe(const mxr_plan *p)
{
    static char out[1024];
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s%s", i ? ";" : "",
                              c->host, c->notes & MXR_NOTE_DOWN ? "!" : "");
        for (size_t j = 0; j < c->naddrs; j++) {
            char text[MXR_ADDR_STRLEN];
            assert_non_null(mxr_addr_format(&c->addrs[j], text, sizeof text));
            n += (size_t)snprintf(out + n, sizeof out - n, "%s%s",
                                  j ? "," : "=", text);
        }
        assert_true(n < sizeof out);
    }
    return out;
}

static void test_reorder_one_down_host(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("a=192.0.2.1;b=192.0.2.2;c=192.0.2.3");
    fail_at(f, "b", NULL, T0);
    mxr__health_reorder(f->h, p, T0 + 1);
    assert_string_equal(describe(p), "a=192.0.2.1;c=192.0.2.3;b!=192.0.2.2");
    assert_int_equal(p->candidates[0].preference, 10);
    assert_int_equal(p->candidates[1].preference, 30);
    assert_int_equal(p->candidates[2].preference, 20);
    assert_int_equal(p->candidates[2].notes, MXR_NOTE_DOWN);
    /* Once the cool-down is over the plan goes back to preference order
     * and the stale note goes. */
    mxr__health_reorder(f->h, p, T0 + 60 * S);
    assert_string_equal(describe(p), "a=192.0.2.1;c=192.0.2.3;b=192.0.2.2");
    mxr_plan_free(p);
    p = make_plan("a=192.0.2.1;b=192.0.2.2;c=192.0.2.3");
    mxr__health_reorder(f->h, p, T0 + 60 * S);
    assert_string_equal(describe(p), "a=192.0.2.1;b=192.0.2.2;c=192.0.2.3");
    mxr_plan_free(p);
}

static void test_reorder_keeps_preference_among_up(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("h1;h2;h3;h4;h5;h6");
    fail_at(f, "h1", NULL, T0 + 3);
    fail_at(f, "h3", NULL, T0 + 1);
    fail_at(f, "h4", NULL, T0 + 2);
    mxr__health_reorder(f->h, p, T0 + 10);
    /* Down hosts keep plan order (not failure order) while any is up. */
    assert_string_equal(describe(p), "h2;h5;h6;h1!;h3!;h4!");
    for (size_t i = 1; i < 3; i++)
        assert_true(p->candidates[i - 1].preference <
                    p->candidates[i].preference);
    mxr_plan_free(p);
}

static void test_reorder_all_down(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("a=192.0.2.1;b=192.0.2.2;c=192.0.2.3;d");
    fail_at(f, "a", NULL, T0 + 300);
    fail_at(f, "b", NULL, T0 + 100);
    fail_at(f, "c", NULL, T0 + 200);
    fail_at(f, "d", NULL, T0 + 100); /* ties with b: plan order */
    mxr__health_reorder(f->h, p, T0 + 1000);
    assert_string_equal(describe(p),
                        "b!=192.0.2.2;d!;c!=192.0.2.3;a!=192.0.2.1");
    mxr_plan_free(p);

    p = make_plan("only=192.0.2.9");
    fail_at(f, "only", NULL, T0);
    mxr__health_reorder(f->h, p, T0 + 1);
    assert_string_equal(describe(p), "only!=192.0.2.9");
    mxr_plan_free(p);
}

static void test_reorder_addresses(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("a=192.0.2.1,2001:db8::1,192.0.2.2,2001:db8::2,"
                            "192.0.2.3;b=198.51.100.1,198.51.100.2");
    fail_at(f, NULL, "192.0.2.1", T0 + 50);
    fail_at(f, NULL, "192.0.2.2", T0 + 10);
    fail_at(f, NULL, "2001:db8::2", T0 + 30);
    fail_at(f, NULL, "198.51.100.2", T0 + 10);
    /* An address whose cool-down is over counts as up again. */
    fail_at(f, NULL, "192.0.2.3", T0 - 120 * S);
    mxr__health_reorder(f->h, p, T0 + 100);
    /* Up ones in plan order, then down ones, least recently failed first;
     * the hosts themselves are up and stay put. */
    assert_string_equal(describe(p),
                        "a=2001:db8::1,192.0.2.3,192.0.2.2,2001:db8::2,"
                        "192.0.2.1;b=198.51.100.1,198.51.100.2");
    mxr_plan_free(p);

    /* Addresses move with their host, and are sorted under a down host. */
    p = make_plan("a=192.0.2.1,192.0.2.2;b=198.51.100.1");
    fail_at(f, "a", NULL, T0);
    mxr__health_reorder(f->h, p, T0 + 100);
    assert_string_equal(describe(p), "b=198.51.100.1;a!=192.0.2.2,192.0.2.1");
    mxr_plan_free(p);
}

static void test_reorder_empty_plan(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("");
    assert_int_equal(p->ncandidates, 0);
    fail_at(f, "a", NULL, T0);
    mxr__health_reorder(f->h, p, T0);
    assert_int_equal(p->ncandidates, 0);
    mxr__health_reorder(f->h, NULL, T0);
    mxr__health_reorder(NULL, p, T0);
    mxr_plan_free(p);
}

/* A reordered plan is still a valid block: it clones, and the clone reads
 * the same. */
static void test_reorder_then_clone(void **state)
{
    fixture *f = *state;
    mxr_plan *p = make_plan("a=192.0.2.1,192.0.2.2;b=192.0.2.3;c");
    fail_at(f, "a", "192.0.2.1", T0);
    mxr__health_reorder(f->h, p, T0 + 1);
    char before[1024];
    snprintf(before, sizeof before, "%s", describe(p));
    assert_string_equal(before, "b=192.0.2.3;c;a!=192.0.2.2,192.0.2.1");
    mxr_plan *copy = mxr__plan_clone(p, mxr__alloc_default, NULL);
    assert_non_null(copy);
    mxr_plan_free(p);
    assert_string_equal(describe(copy), before);
    mxr_plan_free(copy);
}

/* ---------------------------------------------------------------- bounds */

/* A million distinct failing addresses against a 64 KiB table: the
 * counted bytes never pass the bound, nor does real memory grow with the
 * flood, and the latest failures are the ones remembered. */
static void test_bounded_memory_flood(void **state)
{
    (void)state;
    mxr_test_alloc t = {0};
    mxr__alloc a;
    mxr__alloc_init(&a, mxr_test_alloc_fn, &t);
    const size_t bound = 64 * 1024;
    mxr__health_params p = {60, 3600, bound};
    mxr__health *h = mxr__health_new(&a, &p);
    assert_non_null(h);
    size_t peak_alloc = 0;
    mxr_addr ad;
    memset(&ad, 0, sizeof ad);
    for (uint32_t i = 0; i < 1000000; i++) {
        ad.family = i % 2 ? AF_INET6 : AF_INET;
        memcpy(ad.bytes, &i, sizeof i);
        mxr__health_fail(h, i % 16 == 0 ? "flood.example.com" : NULL, &ad,
                         T0 + i);
        assert_true(mxr__health_bytes(h) <= bound);
        peak_alloc = a.bytes > peak_alloc ? a.bytes : peak_alloc;
    }
    /* Headers and the bucket array are not counted; they stay a small
     * multiple of the bound whatever the flood. */
    assert_true(peak_alloc < 4 * bound);
    assert_true(mxr__health_bytes(h) > bound / 2);
    assert_true(mxr__health_addr(h, &ad, T0 + 1000000).down);
    /* The host is touched every 16 failures, so it stays recent. */
    mxr__health_state st =
        mxr__health_host(h, "flood.example.com", T0 + 1000000);
    assert_true(st.down);
    assert_int_equal(st.failures, 1000000 / 16);
    mxr__health_free(h);
    assert_int_equal(a.bytes, 0);
    assert_int_equal(t.live, 0);
}

/* ---------------------------------------------------- allocation failure */

/* The shared test allocator, with memory exhausted for good from the
 * fail_from-th allocation on (0 = never). */
typedef struct exhaustible {
    mxr_test_alloc t;
    long fail_from;
} exhaustible;

static void *exhaustible_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    exhaustible *e = ud;
    if (nsize != 0 && e->fail_from > 0 && e->t.calls + 1 >= e->fail_from) {
        e->t.calls++;
        return NULL;
    }
    return mxr_test_alloc_fn(&e->t, ptr, osize, nsize);
}

/* One run of everything that allocates; fails quietly where it must. */
static void exercise(mxr__health *h)
{
    mxr_addr a1 = addr("192.0.2.1"), a2 = addr("2001:db8::2");
    for (unsigned i = 0; i < 4; i++) {
        mxr__health_fail(h, "a.example.com", &a1, T0 + i);
        mxr__health_fail(h, "b.example.com", &a2, T0 + i);
    }
    mxr_plan *p = make_plan("a.example.com=192.0.2.1,192.0.2.5;"
                            "b.example.com=2001:db8::2;c.example.com");
    mxr__health_reorder(h, p, T0 + 10);
    mxr_plan_free(p);
    mxr__health_ok(h, "a.example.com", &a1, T0 + 20);
    (void)mxr__health_host(h, "b.example.com", T0 + 20);
    (void)mxr__health_addr(h, &a2, T0 + 20);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    bool completed = false;
    for (long n = 1; n < 200 && !completed; n++) {
        mxr_test_alloc t = {0};
        t.fail_at = n;
        mxr__alloc a;
        mxr__alloc_init(&a, mxr_test_alloc_fn, &t);
        mxr__health *h = mxr__health_new(&a, &DEFAULT_PARAMS);
        if (h) {
            exercise(h);
            mxr__health_free(h);
        }
        assert_int_equal(a.bytes, 0);
        assert_int_equal(t.live, 0);
        completed = t.calls < n; /* no allocation failed: all paths seen */
    }
    assert_true(completed);

    /* Memory exhausted for good from the Nth allocation on. */
    for (long from = 1; from < 12; from++) {
        exhaustible e = {{0}, from};
        mxr__alloc a;
        mxr__alloc_init(&a, exhaustible_fn, &e);
        mxr__health *h = mxr__health_new(&a, &DEFAULT_PARAMS);
        if (h) {
            exercise(h);
            mxr__health_free(h);
        }
        assert_int_equal(a.bytes, 0);
        assert_int_equal(e.t.live, 0);
    }
}

/* A failure that cannot be recorded leaves the previous state intact
 * rather than a half-updated one. */
static void test_failed_record_keeps_old_state(void **state)
{
    (void)state;
    exhaustible e = {{0}, 0};
    mxr__alloc a;
    mxr__alloc_init(&a, exhaustible_fn, &e);
    mxr__health *h = mxr__health_new(&a, &DEFAULT_PARAMS);
    assert_non_null(h);
    mxr__health_fail(h, "mx.example.com", NULL, T0);
    e.fail_from = e.t.calls + 1;
    mxr__health_fail(h, "mx.example.com", NULL, T0 + 1);
    mxr__health_state st = mxr__health_host(h, "mx.example.com", T0 + 1);
    assert_true(st.down);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.last_fail, T0);
    mxr__health_free(h);
    assert_int_equal(a.bytes, 0);
    assert_int_equal(e.t.live, 0);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_unknown_is_up),
        FIXTURE_TEST(test_cooldown_growth),
        FIXTURE_TEST(test_host_and_addr_are_separate),
        FIXTURE_TEST(test_ok_clears),
        FIXTURE_TEST(test_decay),
        FIXTURE_TEST(test_count_kept_while_remembered),
        cmocka_unit_test(test_params_edges),
        FIXTURE_TEST(test_reorder_one_down_host),
        FIXTURE_TEST(test_reorder_keeps_preference_among_up),
        FIXTURE_TEST(test_reorder_all_down),
        FIXTURE_TEST(test_reorder_addresses),
        FIXTURE_TEST(test_reorder_empty_plan),
        FIXTURE_TEST(test_reorder_then_clone),
        cmocka_unit_test(test_bounded_memory_flood),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_failed_record_keeps_old_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
