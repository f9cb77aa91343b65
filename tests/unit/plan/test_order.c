/* test_order.c -- the ordering rules: preference sort, duplicates,
 * self-pruning, safety filters, family strategies, the final result, the
 * tie shuffle (statistically) and the limits. */
#include "support.h"

#include "base/addr.h"
#include "plan/order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    mxr_test_alloc bt; /* the builder's allocations */
    mxr__alloc a;
    mxr__plan_builder pb;
    mxr_test_alloc pt; /* the plans' allocations */
    mxr__order_config cfg;
    const char *local_names[4];
    mxr_addr local_addrs[4];
    char joined[4096]; /* for readable list comparisons */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mxr__alloc_init(&f->a, mxr_test_alloc_fn, &f->bt);
    mxr__pb_init(&f->pb, &f->a);
    f->cfg.family = MXR_FAMILY_ANY;
    f->cfg.local_names = f->local_names;
    f->cfg.local_addrs = f->local_addrs;
    f->cfg.max_hosts = 16;
    f->cfg.max_addrs_per_host = 8;
    f->cfg.max_addrs_total = 32;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    mxr__pb_free(&f->pb);
    assert_int_equal(f->a.bytes, 0);
    assert_int_equal(f->bt.live, 0);
    assert_int_equal(f->pt.live, 0);
    free(f);
    return 0;
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ------------------------------------------------------------- helpers */

static mxr_addr addr(const char *text)
{
    mxr_addr a;
    memset(&a, 0, sizeof a);
    if (!mxr__addr_parse(text, &a))
        fail_msg("bad address in test: %s", text);
    return a;
}

/* Adds a host with its space-separated addresses. */
static void add_from(fixture *f, const char *name, uint16_t pref,
                     mxr_source source, const char *addrs)
{
    mxr__host *h = mxr__pb_add_host(&f->pb, name, pref, source, 25);
    assert_non_null(h);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", addrs);
    char *save = NULL;
    for (char *t = strtok_r(buf, " ", &save); t;
         t = strtok_r(NULL, " ", &save)) {
        mxr_addr a = addr(t);
        assert_int_equal(mxr__pb_add_addr(&f->pb, h, &a), 0);
    }
}

static void add(fixture *f, const char *name, uint16_t pref, const char *addrs)
{
    add_from(f, name, pref, MXR_SOURCE_MX, addrs);
}

static void add_local_name(fixture *f, const char *name)
{
    f->local_names[f->cfg.nlocal_names++] = name;
}

static void add_local_addr(fixture *f, const char *text)
{
    f->local_addrs[f->cfg.nlocal_addrs++] = addr(text);
}

static void prepare(fixture *f)
{
    assert_int_equal(mxr__order_prepare(&f->cfg, &f->pb), 0);
}

static mxr_plan *pack(fixture *f)
{
    mxr_plan *p = mxr__plan_pack(&f->pb, "example.com", "example.com",
                                 mxr_test_alloc_fn, &f->pt);
    assert_non_null(p);
    return p;
}

static const char *reason_word(mxr_reason r)
{
    switch (r) {
    case MXR_REASON_NONE:
        return "none";
    case MXR_REASON_NO_ADDRESS:
        return "no-address";
    case MXR_REASON_TEMPFAIL:
        return "tempfail";
    case MXR_REASON_NO_USABLE_HOST:
        return "no-usable-host";
    case MXR_REASON_NO_MAIL_HOST:
        return "no-mail-host";
    case MXR_REASON_UNROUTABLE_ADDRESS:
        return "unroutable-address";
    case MXR_REASON_PRIVATE_ADDRESS:
        return "private-address";
    case MXR_REASON_DUPLICATE:
        return "duplicate";
    case MXR_REASON_SELF:
        return "self";
    case MXR_REASON_LOOPS_TO_SELF:
        return "loops-to-self";
    case MXR_REASON_LIMIT:
        return "limit";
    default:
        return "other";
    }
}

static void append(char *buf, size_t len, const char *word)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? " " : "", word);
}

/* "a b c": the builder's hosts in order. */
static void assert_hosts(fixture *f, const char *expected)
{
    f->joined[0] = '\0';
    for (size_t i = 0; i < f->pb.nhosts; i++)
        append(f->joined, sizeof f->joined, f->pb.hosts[i].name);
    assert_string_equal(f->joined, expected);
}

/* "a/20:self b/30:duplicate": the builder's skips in order. */
static void assert_skips(fixture *f, const char *expected)
{
    f->joined[0] = '\0';
    for (size_t i = 0; i < f->pb.nskips; i++) {
        char one[300];
        snprintf(one, sizeof one, "%s/%u:%s", f->pb.skips[i].name,
                 (unsigned)f->pb.skips[i].pref,
                 reason_word(f->pb.skips[i].reason));
        append(f->joined, sizeof f->joined, one);
    }
    assert_string_equal(f->joined, expected);
}

static void assert_addr_list(fixture *f, const mxr_addr *addrs, size_t n,
                             const char *expected)
{
    f->joined[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char text[MXR_ADDR_STRLEN];
        assert_non_null(mxr_addr_format(&addrs[i], text, sizeof text));
        append(f->joined, sizeof f->joined, text);
    }
    assert_string_equal(f->joined, expected);
}

static void assert_host_addrs(fixture *f, size_t i, const char *expected)
{
    assert_true(i < f->pb.nhosts);
    assert_addr_list(f, f->pb.hosts[i].addrs, f->pb.hosts[i].naddrs, expected);
}

static void assert_candidates(fixture *f, const mxr_plan *p,
                              const char *expected)
{
    f->joined[0] = '\0';
    for (size_t i = 0; i < p->ncandidates; i++)
        append(f->joined, sizeof f->joined, p->candidates[i].host);
    assert_string_equal(f->joined, expected);
}

static void assert_plan_skips(fixture *f, const mxr_plan *p,
                              const char *expected)
{
    f->joined[0] = '\0';
    for (size_t i = 0; i < p->nskipped; i++) {
        char one[300];
        snprintf(one, sizeof one, "%s/%u:%s", p->skipped[i].host,
                 (unsigned)p->skipped[i].preference,
                 reason_word(p->skipped[i].reason));
        append(f->joined, sizeof f->joined, one);
    }
    assert_string_equal(f->joined, expected);
}

static void assert_result(fixture *f, mxr_result result, mxr_reason reason)
{
    assert_int_equal(f->pb.result, result);
    assert_int_equal(f->pb.reason, reason);
}

/* ------------------------------------------------------ preference sort */

static void test_sorts_by_preference(void **state)
{
    fixture *f = *state;
    add(f, "c", 30, "192.0.2.3");
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 20, "192.0.2.2");
    prepare(f);
    assert_hosts(f, "a b c");
    assert_host_addrs(f, 0, "192.0.2.1");
    assert_host_addrs(f, 2, "192.0.2.3");
    assert_skips(f, "");
    assert_result(f, MXR_RESULT_OK, MXR_REASON_NONE);
}

static void test_sort_keeps_ties_in_order(void **state)
{
    fixture *f = *state;
    add(f, "x", 10, "192.0.2.1");
    add(f, "y", 5, "192.0.2.2");
    add(f, "z", 10, "192.0.2.3");
    add(f, "w", 5, "192.0.2.4");
    add(f, "v", 10, "192.0.2.5");
    add(f, "u", 0, "192.0.2.6");
    prepare(f);
    assert_hosts(f, "u y w x z v");
}

static void test_sort_many_hosts(void **state)
{
    fixture *f = *state;
    char name[32];
    for (unsigned i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "h%03u", i);
        add(f, name, (uint16_t)((i * 7919u) % 13u), "192.0.2.1");
    }
    prepare(f);
    assert_int_equal(f->pb.nhosts, 300);
    for (size_t i = 1; i < f->pb.nhosts; i++) {
        const mxr__host *prev = &f->pb.hosts[i - 1], *h = &f->pb.hosts[i];
        assert_true(prev->pref <= h->pref);
        if (prev->pref == h->pref) /* names follow the insertion order */
            assert_true(strcmp(prev->name, h->name) < 0);
    }
}

/* ---------------------------------------------------------- duplicates */

static void test_duplicate_keeps_lowest_preference(void **state)
{
    fixture *f = *state;
    add(f, "mx1", 20, "192.0.2.20");
    add(f, "mx2", 10, "192.0.2.2");
    add(f, "mx1", 10, "192.0.2.10");
    add(f, "mx1", 30, "192.0.2.30");
    prepare(f);
    assert_hosts(f, "mx2 mx1");
    assert_host_addrs(f, 1, "192.0.2.10"); /* nothing merged */
    assert_skips(f, "mx1/20:duplicate mx1/30:duplicate");
    assert_result(f, MXR_RESULT_OK, MXR_REASON_NONE);
}

static void test_duplicate_at_same_preference_keeps_first(void **state)
{
    fixture *f = *state;
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 10, "192.0.2.2");
    add(f, "a", 10, "192.0.2.3");
    prepare(f);
    assert_hosts(f, "a b");
    assert_host_addrs(f, 0, "192.0.2.1");
    assert_skips(f, "a/10:duplicate");
}

/* ------------------------------------------------------- self-pruning */

static void test_self_by_name_prunes_its_tier_and_beyond(void **state)
{
    fixture *f = *state;
    add_local_name(f, "mx.self.example");
    add(f, "a", 10, "192.0.2.1");
    add(f, "mx.self.example", 20, "192.0.2.9");
    add(f, "b", 20, "192.0.2.2");
    add(f, "c", 30, "192.0.2.3");
    add(f, "d", 15, "192.0.2.4");
    prepare(f);
    assert_hosts(f, "a d");
    assert_skips(f, "mx.self.example/20:self b/20:self c/30:self");
    assert_result(f, MXR_RESULT_OK, MXR_REASON_NONE);
}

static void test_self_by_address(void **state)
{
    fixture *f = *state;
    add_local_addr(f, "198.51.100.25");
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 20, "2001:db8::2 198.51.100.25");
    add(f, "c", 30, "192.0.2.3");
    prepare(f);
    assert_hosts(f, "a");
    assert_skips(f, "b/20:self c/30:self");
}

static void test_self_by_mapped_address(void **state)
{
    fixture *f = *state;
    add_local_addr(f, "198.51.100.25");
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 20, "::ffff:198.51.100.25");
    prepare(f);
    assert_hosts(f, "a");
    assert_skips(f, "b/20:self");
}

static void test_self_most_preferred_loops(void **state)
{
    fixture *f = *state;
    add_local_name(f, "me");
    add(f, "b", 20, "192.0.2.2");
    add(f, "me", 10, "192.0.2.1");
    prepare(f);
    assert_hosts(f, "");
    assert_skips(f, "me/10:self b/20:self");
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_LOOPS_TO_SELF);
    mxr_plan *p = pack(f);
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    assert_int_equal(p->reason, MXR_REASON_LOOPS_TO_SELF);
    assert_int_equal(p->ncandidates, 0);
    mxr_plan_free(p);
}

/* Sharing the top preference with others is still "most preferred". */
static void test_self_in_top_tie_loops(void **state)
{
    fixture *f = *state;
    add_local_addr(f, "192.0.2.99");
    add(f, "a", 10, "192.0.2.1");
    add(f, "me", 10, "192.0.2.99");
    add(f, "b", 20, "192.0.2.2");
    prepare(f);
    assert_hosts(f, "");
    assert_skips(f, "a/10:self me/10:self b/20:self");
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_LOOPS_TO_SELF);
}

/* A temporary skip elsewhere does not turn a loop into a retry. */
static void test_loops_to_self_wins_over_tempfail(void **state)
{
    fixture *f = *state;
    add_local_name(f, "me");
    assert_int_equal(mxr__pb_skip(&f->pb, "x", 5, MXR_REASON_TEMPFAIL), 0);
    add(f, "me", 10, "");
    prepare(f);
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_LOOPS_TO_SELF);
    assert_skips(f, "x/5:tempfail me/10:self");
}

static void test_no_self_without_match(void **state)
{
    fixture *f = *state;
    add_local_name(f, "me");
    add_local_addr(f, "192.0.2.99");
    add(f, "mex", 10, "192.0.2.1");
    add(f, "m", 20, "192.0.2.98");
    prepare(f);
    assert_hosts(f, "mex m");
    assert_skips(f, "");
}

/* ---------------------------------------------------- safety filters */

static void test_loopback_dropped_by_default(void **state)
{
    fixture *f = *state;
    add(f, "lo4", 10, "127.0.0.1");
    add(f, "lo6", 10, "::1");
    add(f, "mapped", 10, "::ffff:127.0.0.1");
    add(f, "mixed", 20, "127.0.0.2 192.0.2.1 ::1 2001:db8::1");
    prepare(f);
    assert_hosts(f, "mixed");
    assert_host_addrs(f, 0, "2001:db8::1 192.0.2.1");
    assert_true(f->pb.hosts[0].notes & MXR_NOTE_FILTERED);
    assert_skips(f, "lo4/10:unroutable-address lo6/10:unroutable-address "
                    "mapped/10:unroutable-address");
}

static void test_allow_loopback_keeps_it(void **state)
{
    fixture *f = *state;
    f->cfg.allow_loopback = true;
    add(f, "lo4", 10, "127.0.0.1");
    add(f, "lo6", 10, "::1");
    add(f, "mapped", 10, "::ffff:127.0.0.1");
    prepare(f);
    assert_hosts(f, "lo4 lo6 mapped");
    for (size_t i = 0; i < f->pb.nhosts; i++)
        assert_int_equal(f->pb.hosts[i].notes & MXR_NOTE_FILTERED, 0);
}

static void test_unroutable_always_dropped(void **state)
{
    fixture *f = *state;
    static const char *const unroutable[] = {
        "0.0.0.0",   "0.1.2.3",         "224.0.0.1",         "239.1.1.1",
        "240.0.0.1", "255.255.255.255", "169.254.1.1",       "::",
        "ff02::1",   "fe80::1",         "::ffff:169.254.0.1"};
    f->cfg.allow_loopback = true;
    char name[16];
    size_t n = sizeof unroutable / sizeof *unroutable;
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "u%zu", i);
        add(f, name, (uint16_t)i, unroutable[i]);
    }
    prepare(f);
    assert_int_equal(f->pb.nhosts, 0);
    assert_int_equal(f->pb.nskips, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f->pb.skips[i].reason, MXR_REASON_UNROUTABLE_ADDRESS);
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST);
}

static void test_private_allowed_by_default(void **state)
{
    fixture *f = *state;
    add(f, "p", 10, "10.1.2.3 172.16.0.1 192.168.1.1 100.64.0.1 fd00::1");
    prepare(f);
    assert_hosts(f, "p");
    assert_int_equal(f->pb.hosts[0].naddrs, 5);
    assert_int_equal(f->pb.hosts[0].notes & MXR_NOTE_FILTERED, 0);
}

static void test_deny_private(void **state)
{
    fixture *f = *state;
    f->cfg.deny_private = true;
    add(f, "priv", 10, "10.1.2.3 192.168.1.1 fd00::1");
    add(f, "privlo", 10, "10.1.2.3 127.0.0.1");
    add(f, "some", 20, "10.1.2.3 192.0.2.1");
    prepare(f);
    assert_hosts(f, "some");
    assert_host_addrs(f, 0, "192.0.2.1");
    assert_true(f->pb.hosts[0].notes & MXR_NOTE_FILTERED);
    assert_skips(f, "priv/10:private-address privlo/10:unroutable-address");
}

/* A policy's host is the operator's own choice (a local filter on
 * 127.0.0.1:10025, say); address literals come from the recipient. */
static void test_filters_spare_policy_hosts(void **state)
{
    fixture *f = *state;
    f->cfg.deny_private = true;
    add_from(f, "filter", 10, MXR_SOURCE_POLICY, "127.0.0.1 10.0.0.1");
    add_from(f, "[127.0.0.1]", 10, MXR_SOURCE_LITERAL, "127.0.0.1");
    prepare(f);
    assert_hosts(f, "filter");
    assert_host_addrs(f, 0, "127.0.0.1 10.0.0.1");
    assert_skips(f, "[127.0.0.1]/10:unroutable-address");
}

static void test_host_without_address_skipped(void **state)
{
    fixture *f = *state;
    add(f, "empty", 10, "");
    add(f, "full", 20, "192.0.2.1");
    prepare(f);
    assert_hosts(f, "full");
    assert_skips(f, "empty/10:no-address");
}

/* ------------------------------------------------------ family order */

#define MIXED "192.0.2.1 2001:db8::1 192.0.2.2 2001:db8::2 2001:db8::3"

static void check_family(fixture *f, mxr_family family, const char *addrs,
                         const char *expected)
{
    f->cfg.family = family;
    add(f, "h", 10, addrs);
    prepare(f);
    assert_hosts(f, "h");
    assert_host_addrs(f, 0, expected);
}

static void test_family_any_interleaves_v6_first(void **state)
{
    check_family(*state, MXR_FAMILY_ANY, MIXED,
                 "2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 2001:db8::3");
}

static void test_family_any_more_v4(void **state)
{
    check_family(*state, MXR_FAMILY_ANY,
                 "192.0.2.1 192.0.2.2 192.0.2.3 2001:db8::1",
                 "2001:db8::1 192.0.2.1 192.0.2.2 192.0.2.3");
}

static void test_family_any_single_family(void **state)
{
    check_family(*state, MXR_FAMILY_ANY, "192.0.2.2 192.0.2.1",
                 "192.0.2.2 192.0.2.1");
}

static void test_family_ipv4_only(void **state)
{
    check_family(*state, MXR_FAMILY_IPV4, MIXED, "192.0.2.1 192.0.2.2");
}

static void test_family_ipv6_only(void **state)
{
    check_family(*state, MXR_FAMILY_IPV6, MIXED,
                 "2001:db8::1 2001:db8::2 2001:db8::3");
}

static void test_family_prefer_ipv4(void **state)
{
    check_family(*state, MXR_FAMILY_PREFER_IPV4, MIXED,
                 "192.0.2.1 192.0.2.2 2001:db8::1 2001:db8::2 2001:db8::3");
}

static void test_family_prefer_ipv6(void **state)
{
    check_family(*state, MXR_FAMILY_PREFER_IPV6, MIXED,
                 "2001:db8::1 2001:db8::2 2001:db8::3 192.0.2.1 192.0.2.2");
}

static void test_family_only_leaves_host_without_address(void **state)
{
    fixture *f = *state;
    f->cfg.family = MXR_FAMILY_IPV6;
    add(f, "v4", 10, "192.0.2.1");
    add(f, "v6", 20, "2001:db8::1");
    prepare(f);
    assert_hosts(f, "v6");
    assert_skips(f, "v4/10:no-address");

    mxr__pb_free(&f->pb);
    f->cfg.family = MXR_FAMILY_IPV4;
    add(f, "v6", 10, "2001:db8::1");
    prepare(f);
    assert_hosts(f, "");
    assert_skips(f, "v6/10:no-address");
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST);
}

/* A v6-only backup never jumps ahead of a v4-only primary. */
static void test_preference_beats_family(void **state)
{
    static const mxr_family families[] = {
        MXR_FAMILY_ANY, MXR_FAMILY_PREFER_IPV4, MXR_FAMILY_PREFER_IPV6};
    fixture *f = *state;
    for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
        mxr__pb_free(&f->pb);
        f->cfg.family = families[i];
        add(f, "backup6", 20, "2001:db8::20");
        add(f, "primary4", 10, "192.0.2.10");
        add(f, "backup4", 30, "192.0.2.30");
        prepare(f);
        assert_hosts(f, "primary4 backup6 backup4");
        mxr__rng rng;
        mxr__rng_seed(&rng, 1);
        mxr_plan *p = pack(f);
        mxr__order_finish(&f->cfg, &rng, p);
        assert_candidates(f, p, "primary4 backup6 backup4");
        mxr_plan_free(p);
    }
}

/* ------------------------------------------------------------ result */

static void test_nothing_left_with_tempfail_is_tempfail(void **state)
{
    fixture *f = *state;
    assert_int_equal(mxr__pb_skip(&f->pb, "t", 10, MXR_REASON_TEMPFAIL), 0);
    add(f, "lo", 20, "127.0.0.1");
    prepare(f);
    assert_result(f, MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL);
}

/* The implicit MX had an address (else route.c fails with no-mail-host
 * before ordering); filters took it, so nothing usable is left. */
static void test_nothing_left_implicit_is_no_usable_host(void **state)
{
    fixture *f = *state;
    f->pb.implicit = true;
    add_from(f, "example.com", 0, MXR_SOURCE_IMPLICIT, "127.0.0.1");
    prepare(f);
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST);
    assert_skips(f, "example.com/0:unroutable-address");
}

static void test_nothing_left_is_no_usable_host(void **state)
{
    fixture *f = *state;
    assert_int_equal(mxr__pb_skip(&f->pb, "n", 10, MXR_REASON_NO_ADDRESS), 0);
    prepare(f); /* no host was ever added */
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST);
}

static void test_failed_builder_left_alone(void **state)
{
    fixture *f = *state;
    add(f, "b", 20, "127.0.0.1");
    add(f, "a", 10, "192.0.2.1");
    mxr__pb_fail(&f->pb, MXR_RESULT_PERMFAIL, MXR_REASON_NULL_MX);
    prepare(f);
    assert_hosts(f, "b a");
    assert_skips(f, "");
    assert_result(f, MXR_RESULT_PERMFAIL, MXR_REASON_NULL_MX);
}

/* Fails each allocation of prepare in turn, on the builder fill() makes
 * (total entries): -1, nothing leaked, and no host lost or counted twice
 * on the way. Returns how many failed; the builder holds the plan that
 * got through. */
static long prepare_failures(fixture *f, void (*fill)(fixture *), size_t total)
{
    long failures = 0;
    for (long n = 1; n < 50; n++) {
        mxr__pb_free(&f->pb);
        f->bt.fail_at = 0;
        fill(f);
        f->bt.fail_at = f->bt.calls + n;
        int rc = mxr__order_prepare(&f->cfg, &f->pb);
        f->bt.fail_at = 0;
        if (rc == 0)
            return failures;
        assert_int_equal(rc, MXR_ENOMEM);
        assert_int_equal(f->pb.nhosts + f->pb.nskips, total);
        failures++;
    }
    fail_msg("prepare never got through");
    return failures;
}

static void add_three(fixture *f)
{
    add(f, "b", 20, "192.0.2.2 2001:db8::2");
    add(f, "a", 10, "192.0.2.1 2001:db8::1");
    add(f, "b", 30, "192.0.2.3");
}

static void test_prepare_allocation_failures(void **state)
{
    fixture *f = *state;
    /* sort (2), skip reserve; the marks, the duplicate index and the
     * address scratch of three hosts are on the stack */
    assert_int_equal(prepare_failures(f, add_three, 3), 3);
    assert_hosts(f, "a b");
    assert_host_addrs(f, 0, "2001:db8::1 192.0.2.1");
    mxr__pb_free(&f->pb);
    assert_int_equal(f->bt.live, 0);
}

/* Too many hosts and addresses for the stack: every scratch array is a
 * block, and each one failing leaves the builder whole. */
static void add_many(fixture *f)
{
    char name[32];
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "h%d", i);
        add(f, name, (uint16_t)(150 - i), "192.0.2.9");
    }
    mxr__host *h = mxr__pb_add_host(&f->pb, "many", 0, MXR_SOURCE_MX, 25);
    assert_non_null(h);
    for (int i = 0; i < 40; i++) {
        mxr_addr a = addr(i % 2 ? "192.0.2.1" : "2001:db8::1");
        a.bytes[i % 2 ? 3 : 15] = (uint8_t)(i + 1);
        assert_int_equal(mxr__pb_add_addr(&f->pb, h, &a), 0);
    }
}

static void test_prepare_large_allocation_failures(void **state)
{
    fixture *f = *state;
    /* sort (2), skip reserve, marks, duplicate index, address scratch */
    assert_int_equal(prepare_failures(f, add_many, 151), 6);
    assert_int_equal(f->pb.nhosts, 151);
    assert_string_equal(f->pb.hosts[0].name, "many");
    assert_int_equal(f->pb.hosts[0].naddrs, 40);
    mxr__pb_free(&f->pb);
    assert_int_equal(f->bt.live, 0);
}

/* ----------------------------------------------------- tie shuffle */

static mxr_plan *finished_copy(fixture *f, const mxr_plan *p, uint64_t seed)
{
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &f->pt);
    assert_non_null(c);
    mxr__rng rng;
    mxr__rng_seed(&rng, seed);
    mxr__order_finish(&f->cfg, &rng, c);
    return c;
}

static double chi_square(const unsigned long *counts, size_t cells,
                         double expected)
{
    double chi = 0;
    for (size_t i = 0; i < cells; i++) {
        double d = (double)counts[i] - expected;
        chi += d * d / expected;
    }
    return chi;
}

/* Index of a permutation of 0..k-1 (Lehmer code), for k <= 4. */
static size_t permutation_index(const int *perm, size_t k)
{
    size_t index = 0;
    for (size_t i = 0; i < k; i++) {
        size_t smaller_after = 0;
        for (size_t j = i + 1; j < k; j++)
            smaller_after += perm[j] < perm[i];
        index = index * (k - i) + smaller_after;
    }
    return index;
}

typedef struct tie_stats {
    unsigned long position[4][4]; /* [position][host] */
    unsigned long orders[24];     /* by permutation index */
} tie_stats;

/* Shuffles "top", a tie of k hosts named a, b, ..., and "end" with seeds
 * 1..trials, checking that the tie never leaves its place. */
static void run_tie_shuffle(fixture *f, size_t k, unsigned long trials,
                            tie_stats *st)
{
    add(f, "end", 20, "192.0.2.200");
    char name[2] = "a";
    for (size_t i = 0; i < k; i++) {
        name[0] = (char)('a' + i);
        add(f, name, 10, "192.0.2.1");
    }
    add(f, "top", 5, "192.0.2.100");
    prepare(f);
    mxr_plan *p = pack(f);
    memset(st, 0, sizeof *st);
    for (unsigned long seed = 1; seed <= trials; seed++) {
        mxr_plan *c = finished_copy(f, p, seed);
        assert_int_equal(c->ncandidates, k + 2);
        assert_string_equal(c->candidates[0].host, "top");
        assert_string_equal(c->candidates[k + 1].host, "end");
        int perm[4];
        for (size_t pos = 0; pos < k; pos++) {
            const mxr_candidate *cand = &c->candidates[pos + 1];
            int host = cand->host[0] - 'a';
            assert_true(host >= 0 && (size_t)host < k);
            assert_int_equal(cand->preference, 10);
            assert_int_equal(cand->naddrs, 1); /* addresses moved along */
            perm[pos] = host;
            st->position[pos][host]++;
        }
        st->orders[permutation_index(perm, k)]++;
        mxr_plan_free(c);
    }
    mxr_plan_free(p);
}

/* Pearson's statistic over the k x k table of (position, host) counts.
 * Each trial adds a whole permutation matrix, not k independent draws:
 * the raw sum is then k/(k-1) times a chi-square with (k-1)^2 degrees of
 * freedom (the covariance of a uniform permutation matrix is the same in
 * every direction of the zero-margin matrices), so it is scaled back to
 * compare with the usual critical values. Unscaled, its mean would be
 * k-1 above the degrees of freedom and the test would fail too often. */
static double position_chi_square(const tie_stats *st, size_t k,
                                  unsigned long trials)
{
    unsigned long cells[16];
    for (size_t pos = 0; pos < k; pos++)
        for (size_t h = 0; h < k; h++)
            cells[pos * k + h] = st->position[pos][h];
    double raw = chi_square(cells, k * k, (double)trials / (double)k);
    return raw * (double)(k - 1) / (double)k;
}

static void test_shuffle_four_way_tie_uniform(void **state)
{
    fixture *f = *state;
    const unsigned long trials = 40000;
    tie_stats st;
    run_tie_shuffle(f, 4, trials, &st);
    /* Rows and columns of the 4x4 table each sum to trials: df = 9. */
    double chi = position_chi_square(&st, 4, trials);
    double chi_orders = chi_square(st.orders, 24, (double)trials / 24.0);
    print_message("4-way tie: position chi-square %.2f (df=9, crit 27.88), "
                  "order chi-square %.2f (df=23, crit 49.73)\n",
                  chi, chi_orders);
    assert_true(chi < 27.88);        /* p = 0.001 */
    assert_true(chi_orders < 49.73); /* p = 0.001 */
    for (size_t i = 0; i < 24; i++)
        assert_true(st.orders[i] > 0); /* every order occurs */
}

static void test_shuffle_three_way_tie_uniform(void **state)
{
    fixture *f = *state;
    const unsigned long trials = 30000;
    tie_stats st;
    run_tie_shuffle(f, 3, trials, &st);
    double chi = position_chi_square(&st, 3, trials);
    double chi_orders = chi_square(st.orders, 6, (double)trials / 6.0);
    print_message("3-way tie: position chi-square %.2f (df=4, crit 18.47), "
                  "order chi-square %.2f (df=5, crit 20.52)\n",
                  chi, chi_orders);
    assert_true(chi < 18.47);
    assert_true(chi_orders < 20.52);
}

static void order_of(const mxr_plan *p, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < p->ncandidates; i++)
        append(out, len, p->candidates[i].host);
}

static void test_shuffle_seeded_reproducible(void **state)
{
    fixture *f = *state;
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 10, "192.0.2.2");
    add(f, "c", 10, "192.0.2.3");
    add(f, "d", 10, "192.0.2.4");
    add(f, "e", 10, "192.0.2.5");
    prepare(f);
    mxr_plan *p = pack(f);
    char first[64], again[64];
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        mxr_plan *x = finished_copy(f, p, seed);
        mxr_plan *y = finished_copy(f, p, seed);
        mxr_plan *z = finished_copy(f, p, seed + 1000);
        order_of(x, first, sizeof first);
        order_of(y, again, sizeof again);
        assert_string_equal(first, again);
        order_of(z, again, sizeof again);
        distinct += strcmp(first, again) != 0;
        mxr_plan_free(x);
        mxr_plan_free(y);
        mxr_plan_free(z);
    }
    /* 120 orders: two seeds agree by chance 1 time in 120. */
    assert_true(distinct >= 8);
    mxr_plan_free(p);
}

static void test_finish_ignores_failed_plan(void **state)
{
    fixture *f = *state;
    add(f, "a", 10, "192.0.2.1");
    mxr__pb_fail(&f->pb, MXR_RESULT_TEMPFAIL, MXR_REASON_SERVFAIL);
    mxr_plan *p = pack(f);
    mxr__rng rng;
    mxr__rng_seed(&rng, 3);
    f->cfg.max_hosts = 1;
    mxr__order_finish(&f->cfg, &rng, p);
    assert_int_equal(p->ncandidates, 1);
    assert_int_equal(p->nskipped, 0);
    mxr__order_finish(&f->cfg, &rng, NULL);
    mxr_plan_free(p);
}

/* -------------------------------------------------------------- limits */

static mxr_plan *prepared_and_finished(fixture *f)
{
    prepare(f);
    mxr_plan *p = pack(f);
    mxr__rng rng;
    mxr__rng_seed(&rng, 11);
    mxr__order_finish(&f->cfg, &rng, p);
    return p;
}

static void test_limit_hosts(void **state)
{
    fixture *f = *state;
    f->cfg.max_hosts = 2;
    assert_int_equal(mxr__pb_skip(&f->pb, "x", 1, MXR_REASON_NO_ADDRESS), 0);
    add(f, "d", 40, "192.0.2.4");
    add(f, "c", 30, "192.0.2.3");
    add(f, "b", 20, "192.0.2.2");
    add(f, "a", 10, "192.0.2.1");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_plan_skips(f, p, "x/1:no-address c/30:limit d/40:limit");
    assert_int_equal(p->result, MXR_RESULT_OK);
    mxr_plan_free(p);
}

static void test_limit_addresses_per_host(void **state)
{
    fixture *f = *state;
    f->cfg.max_addrs_per_host = 2;
    add(f, "a", 10, "192.0.2.1 192.0.2.2 192.0.2.3");
    add(f, "b", 20, "192.0.2.4 192.0.2.5");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_addr_list(f, p->candidates[0].addrs, p->candidates[0].naddrs,
                     "192.0.2.1 192.0.2.2");
    assert_true(p->candidates[0].notes & MXR_NOTE_ADDR_LIMIT);
    assert_int_equal(p->candidates[1].naddrs, 2);
    assert_int_equal(p->candidates[1].notes & MXR_NOTE_ADDR_LIMIT, 0);
    mxr_plan_free(p);
}

static void test_limit_addresses_total(void **state)
{
    fixture *f = *state;
    f->cfg.max_addrs_total = 5;
    add(f, "a", 10, "192.0.2.1 192.0.2.2 192.0.2.3");
    add(f, "b", 20, "192.0.2.4 192.0.2.5 192.0.2.6");
    add(f, "c", 30, "192.0.2.7 192.0.2.8 192.0.2.9");
    add(f, "d", 40, "192.0.2.10");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_int_equal(p->candidates[0].naddrs, 3);
    assert_int_equal(p->candidates[0].notes & MXR_NOTE_ADDR_LIMIT, 0);
    assert_addr_list(f, p->candidates[1].addrs, p->candidates[1].naddrs,
                     "192.0.2.4 192.0.2.5");
    assert_true(p->candidates[1].notes & MXR_NOTE_ADDR_LIMIT);
    assert_plan_skips(f, p, "c/30:limit d/40:limit");
    mxr_plan_free(p);
}

/* An exact fit truncates nothing; the next host gets nothing. */
static void test_limit_addresses_total_exact(void **state)
{
    fixture *f = *state;
    f->cfg.max_addrs_total = 3;
    add(f, "a", 10, "192.0.2.1 192.0.2.2");
    add(f, "b", 20, "192.0.2.3");
    add(f, "c", 30, "192.0.2.4");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_int_equal(p->candidates[1].notes & MXR_NOTE_ADDR_LIMIT, 0);
    assert_plan_skips(f, p, "c/30:limit");
    mxr_plan_free(p);
}

static void test_limits_combined(void **state)
{
    fixture *f = *state;
    f->cfg.max_hosts = 3;
    f->cfg.max_addrs_per_host = 2;
    f->cfg.max_addrs_total = 3;
    add(f, "a", 10, "192.0.2.1 192.0.2.2 192.0.2.3");
    add(f, "b", 20, "192.0.2.4 192.0.2.5");
    add(f, "c", 30, "192.0.2.6");
    add(f, "d", 40, "192.0.2.7");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_int_equal(p->candidates[0].naddrs, 2);
    assert_true(p->candidates[0].notes & MXR_NOTE_ADDR_LIMIT);
    assert_int_equal(p->candidates[1].naddrs, 1);
    assert_true(p->candidates[1].notes & MXR_NOTE_ADDR_LIMIT);
    assert_plan_skips(f, p, "c/30:limit d/40:limit");
    /* The trimmed plan still copies cleanly. */
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(p);
    assert_candidates(f, c, "a b");
    assert_plan_skips(f, c, "c/30:limit d/40:limit");
    mxr_plan_free(c);
}

static void test_zero_limits_mean_unlimited(void **state)
{
    fixture *f = *state;
    f->cfg.max_hosts = 0;
    f->cfg.max_addrs_per_host = 0;
    f->cfg.max_addrs_total = 0;
    add(f, "a", 10, "192.0.2.1 192.0.2.2 192.0.2.3");
    add(f, "b", 20, "192.0.2.4");
    mxr_plan *p = prepared_and_finished(f);
    assert_candidates(f, p, "a b");
    assert_int_equal(p->candidates[0].naddrs, 3);
    assert_int_equal(p->nskipped, 0);
    mxr_plan_free(p);
}

/* The host limit applies after the shuffle: every tied host gets its
 * turn, not always the first ones listed. */
static void test_limit_after_shuffle(void **state)
{
    fixture *f = *state;
    f->cfg.max_hosts = 2;
    add(f, "a", 10, "192.0.2.1");
    add(f, "b", 10, "192.0.2.2");
    add(f, "c", 10, "192.0.2.3");
    add(f, "d", 10, "192.0.2.4");
    prepare(f);
    mxr_plan *p = pack(f);
    unsigned long kept[4] = {0, 0, 0, 0};
    for (uint64_t seed = 1; seed <= 400; seed++) {
        mxr_plan *c = finished_copy(f, p, seed);
        assert_int_equal(c->ncandidates, 2);
        assert_int_equal(c->nskipped, 2);
        assert_int_equal(c->skipped[0].reason, MXR_REASON_LIMIT);
        for (size_t i = 0; i < 2; i++)
            kept[c->candidates[i].host[0] - 'a']++;
        mxr_plan_free(c);
    }
    for (size_t i = 0; i < 4; i++)
        assert_true(kept[i] > 100); /* 200 expected */
    mxr_plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_sorts_by_preference),
        FIXTURE_TEST(test_sort_keeps_ties_in_order),
        FIXTURE_TEST(test_sort_many_hosts),
        FIXTURE_TEST(test_duplicate_keeps_lowest_preference),
        FIXTURE_TEST(test_duplicate_at_same_preference_keeps_first),
        FIXTURE_TEST(test_self_by_name_prunes_its_tier_and_beyond),
        FIXTURE_TEST(test_self_by_address),
        FIXTURE_TEST(test_self_by_mapped_address),
        FIXTURE_TEST(test_self_most_preferred_loops),
        FIXTURE_TEST(test_self_in_top_tie_loops),
        FIXTURE_TEST(test_loops_to_self_wins_over_tempfail),
        FIXTURE_TEST(test_no_self_without_match),
        FIXTURE_TEST(test_loopback_dropped_by_default),
        FIXTURE_TEST(test_allow_loopback_keeps_it),
        FIXTURE_TEST(test_unroutable_always_dropped),
        FIXTURE_TEST(test_private_allowed_by_default),
        FIXTURE_TEST(test_deny_private),
        FIXTURE_TEST(test_filters_spare_policy_hosts),
        FIXTURE_TEST(test_host_without_address_skipped),
        FIXTURE_TEST(test_family_any_interleaves_v6_first),
        FIXTURE_TEST(test_family_any_more_v4),
        FIXTURE_TEST(test_family_any_single_family),
        FIXTURE_TEST(test_family_ipv4_only),
        FIXTURE_TEST(test_family_ipv6_only),
        FIXTURE_TEST(test_family_prefer_ipv4),
        FIXTURE_TEST(test_family_prefer_ipv6),
        FIXTURE_TEST(test_family_only_leaves_host_without_address),
        FIXTURE_TEST(test_preference_beats_family),
        FIXTURE_TEST(test_nothing_left_with_tempfail_is_tempfail),
        FIXTURE_TEST(test_nothing_left_implicit_is_no_usable_host),
        FIXTURE_TEST(test_nothing_left_is_no_usable_host),
        FIXTURE_TEST(test_failed_builder_left_alone),
        FIXTURE_TEST(test_prepare_allocation_failures),
        FIXTURE_TEST(test_prepare_large_allocation_failures),
        FIXTURE_TEST(test_shuffle_four_way_tie_uniform),
        FIXTURE_TEST(test_shuffle_three_way_tie_uniform),
        FIXTURE_TEST(test_shuffle_seeded_reproducible),
        FIXTURE_TEST(test_finish_ignores_failed_plan),
        FIXTURE_TEST(test_limit_hosts),
        FIXTURE_TEST(test_limit_addresses_per_host),
        FIXTURE_TEST(test_limit_addresses_total),
        FIXTURE_TEST(test_limit_addresses_total_exact),
        FIXTURE_TEST(test_limits_combined),
        FIXTURE_TEST(test_zero_limits_mean_unlimited),
        FIXTURE_TEST(test_limit_after_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
