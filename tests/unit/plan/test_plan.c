/* test_plan.c -- the plan builder and the single-block packed plan: deep
 * round trips, independence of copies, the limit reserve, and allocation
 * failures at every step. */
#include "support.h"

#include "base/addr.h"
#include "plan/plan.h"
#include "plan/template.h"
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct fixture {
    mxr_test_alloc bt; /* the builder's allocations */
    mxr__alloc a;
    mxr__plan_builder pb;
    mxr_test_alloc pt; /* the plans' allocations */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    mxr__alloc_init(&f->a, mxr_test_alloc_fn, &f->bt);
    mxr__pb_init(&f->pb, &f->a);
    *state = f;
    return 0;
}

/* Every test ends here: nothing may be left allocated anywhere. */
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

static mxr_addr addr(const char *text)
{
    mxr_addr a;
    memset(&a, 0, sizeof a);
    assert_true(mxr__addr_parse(text, &a));
    return a;
}

static mxr_status add_addr_text(mxr__plan_builder *pb, mxr__host *h,
                                const char *text)
{
    mxr_addr a = addr(text);
    return mxr__pb_add_addr(pb, h, &a);
}

/* A builder with every kind of field set. Returns -1 at the first
 * allocation failure (for the failure tests). */
static int build_sample(mxr__plan_builder *pb)
{
    mxr__host *h =
        mxr__pb_add_host(pb, "mx1.example.com", 10, MXR_SOURCE_MX, 25);
    if (!h)
        return -1;
    h->notes = MXR_NOTE_CNAME_TARGET;
    h->ttl = 3600;
    if (add_addr_text(pb, h, "192.0.2.1") != MXR_OK ||
        add_addr_text(pb, h, "2001:db8::1") != MXR_OK)
        return -1;
    h = mxr__pb_add_host(pb, "relay.example.net", 20, MXR_SOURCE_POLICY, 587);
    if (!h)
        return -1;
    h->tls_required = true;
    if (add_addr_text(pb, h, "198.51.100.7") != MXR_OK)
        return -1;
    if (!mxr__pb_add_host(pb, "mx3.example.com", 30, MXR_SOURCE_MX, 25))
        return -1;
    if (mxr__pb_skip(pb, "gone.example.com", 5, MXR_REASON_NO_ADDRESS) !=
            MXR_OK ||
        mxr__pb_skip(pb, "mx1.example.com", 15, MXR_REASON_DUPLICATE) != MXR_OK)
        return -1;
    mxr__pb_lower_ttl(pb, 600);
    mxr__pb_lower_ttl(pb, 300);
    mxr__pb_lower_ttl(pb, 900);
    pb->mx_ttl = 86400;
    return 0;
}

static void assert_candidate_matches(const mxr_candidate *c, const mxr__host *h)
{
    assert_string_equal(c->host, h->name);
    assert_int_equal(c->preference, h->pref);
    assert_int_equal(c->port, h->port);
    assert_int_equal(c->source, h->source);
    assert_int_equal(c->notes, h->notes);
    assert_int_equal(c->tls_required, h->tls_required);
    assert_int_equal(c->ttl, h->ttl);
    assert_int_equal(c->naddrs, h->naddrs);
    if (h->naddrs)
        assert_memory_equal(c->addrs, h->addrs, h->naddrs * sizeof *h->addrs);
}

/* The plan says exactly what the builder said. */
static void assert_plan_matches(const mxr_plan *p, const mxr__plan_builder *pb,
                                const char *input, const char *domain)
{
    assert_non_null(p);
    assert_string_equal(p->input, input);
    assert_string_equal(p->domain, domain);
    assert_int_equal(p->result, pb->result);
    assert_int_equal(p->reason, pb->reason);
    assert_int_equal(p->implicit, pb->implicit);
    assert_int_equal(p->ttl, pb->ttl == UINT32_MAX ? 0 : pb->ttl);
    assert_int_equal(p->mx_ttl, pb->mx_ttl);
    assert_int_equal(p->ncandidates, pb->nhosts);
    for (size_t i = 0; i < pb->nhosts; i++)
        assert_candidate_matches(&p->candidates[i], &pb->hosts[i]);
    assert_int_equal(p->nskipped, pb->nskips);
    for (size_t i = 0; i < pb->nskips; i++) {
        assert_string_equal(p->skipped[i].host, pb->skips[i].name);
        assert_int_equal(p->skipped[i].preference, pb->skips[i].pref);
        assert_int_equal(p->skipped[i].reason, pb->skips[i].reason);
    }
}

/* Everything a plan references lies after the plan itself and within its
 * block (whose private header, before the plan, is counted in bytes). */
static bool points_into(const void *ptr, const mxr_plan *p, size_t bytes)
{
    uintptr_t x = (uintptr_t)ptr, base = (uintptr_t)p;
    return x >= base && x < base + bytes;
}

/* Nothing the copy references lies in the original's block. */
static void assert_no_shared_memory(const mxr_plan *copy, const mxr_plan *orig)
{
    size_t bytes = mxr__plan_bytes(orig);
    assert_false(points_into(copy, orig, bytes));
    assert_false(points_into(copy->input, orig, bytes));
    assert_false(points_into(copy->domain, orig, bytes));
    assert_false(points_into(copy->candidates, orig, bytes));
    assert_false(points_into(copy->skipped, orig, bytes));
    for (size_t i = 0; i < copy->ncandidates; i++) {
        assert_false(points_into(copy->candidates[i].host, orig, bytes));
        assert_false(points_into(copy->candidates[i].addrs, orig, bytes));
    }
    for (size_t i = 0; i < copy->nskipped; i++)
        assert_false(points_into(copy->skipped[i].host, orig, bytes));
}

/* Every pointer of the plan lies in its own block. */
static void assert_self_contained(const mxr_plan *p)
{
    size_t bytes = mxr__plan_bytes(p);
    assert_true(points_into(p->input, p, bytes));
    assert_true(points_into(p->input + strlen(p->input), p, bytes));
    assert_true(points_into(p->domain, p, bytes));
    for (size_t i = 0; i < p->ncandidates; i++) {
        assert_true(points_into(p->candidates[i].host, p, bytes));
        if (p->candidates[i].naddrs)
            assert_true(points_into(p->candidates[i].addrs, p, bytes));
    }
    for (size_t i = 0; i < p->nskipped; i++)
        assert_true(points_into(p->skipped[i].host, p, bytes));
}

static mxr_plan *pack(fixture *f, const char *input, const char *domain)
{
    return mxr__plan_pack(&f->pb, input, domain, mxr_test_alloc_fn, &f->pt);
}

/* ------------------------------------------------------------- builder */

static void test_builder_defaults(void **state)
{
    fixture *f = *state;
    assert_int_equal(f->pb.ttl, UINT32_MAX);
    assert_int_equal(f->pb.result, MXR_RESULT_OK);
    assert_int_equal(f->pb.reason, MXR_REASON_NONE);
    assert_int_equal(f->pb.nhosts, 0);
    assert_int_equal(f->pb.nskips, 0);
    assert_false(f->pb.implicit);
}

static void test_lower_ttl_keeps_minimum(void **state)
{
    fixture *f = *state;
    mxr__pb_lower_ttl(&f->pb, 3600);
    assert_int_equal(f->pb.ttl, 3600);
    mxr__pb_lower_ttl(&f->pb, 60);
    mxr__pb_lower_ttl(&f->pb, 120);
    assert_int_equal(f->pb.ttl, 60);
    mxr__pb_lower_ttl(&f->pb, 0);
    assert_int_equal(f->pb.ttl, 0);
}

static void test_add_host_fields(void **state)
{
    fixture *f = *state;
    mxr__host *h = mxr__pb_add_host(&f->pb, "mx.example.org", 7,
                                    MXR_SOURCE_IMPLICIT, 2525);
    assert_non_null(h);
    assert_string_equal(h->name, "mx.example.org");
    assert_int_equal(h->pref, 7);
    assert_int_equal(h->port, 2525);
    assert_int_equal(h->source, MXR_SOURCE_IMPLICIT);
    assert_int_equal(h->notes, 0);
    assert_false(h->tls_required);
    assert_int_equal(h->naddrs, 0);
    assert_null(h->addrs);
}

static void test_add_host_cuts_overlong_name(void **state)
{
    fixture *f = *state;
    char name[400];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    mxr__host *h = mxr__pb_add_host(&f->pb, name, 0, MXR_SOURCE_MX, 25);
    assert_non_null(h);
    assert_int_equal(strlen(h->name), MXR__NAME_MAX);
}

static void test_builder_grows(void **state)
{
    fixture *f = *state;
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "mx%d.example.com", i);
        mxr__host *h = mxr__pb_add_host(&f->pb, name, (uint16_t)(i % 7),
                                        MXR_SOURCE_MX, 25);
        assert_non_null(h);
        for (int k = 0; k < 10; k++) {
            mxr_addr a = addr("192.0.2.0");
            a.bytes[3] = (uint8_t)k;
            a.bytes[2] = (uint8_t)i;
            assert_int_equal(mxr__pb_add_addr(&f->pb, h, &a), 0);
        }
        assert_int_equal(
            mxr__pb_skip(&f->pb, name, (uint16_t)i, MXR_REASON_TEMPFAIL), 0);
    }
    assert_int_equal(f->pb.nhosts, 100);
    assert_int_equal(f->pb.nskips, 100);
    assert_int_equal(f->pb.hosts[42].addrs[9].bytes[2], 42);
    assert_int_equal(f->pb.hosts[42].addrs[9].bytes[3], 9);
    mxr_plan *p = pack(f, "big.example", "big.example");
    assert_plan_matches(p, &f->pb, "big.example", "big.example");
    assert_self_contained(p);
    mxr_plan_free(p);
}

static void test_remove_host_keeps_order(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr__pb_remove_host(&f->pb, 0);
    assert_int_equal(f->pb.nhosts, 2);
    assert_string_equal(f->pb.hosts[0].name, "relay.example.net");
    assert_string_equal(f->pb.hosts[1].name, "mx3.example.com");
    mxr__pb_remove_host(&f->pb, 1);
    assert_int_equal(f->pb.nhosts, 1);
    mxr__pb_remove_host(&f->pb, 5); /* out of range: nothing */
    assert_int_equal(f->pb.nhosts, 1);
    assert_string_equal(f->pb.hosts[0].name, "relay.example.net");
}

static void test_fail_sets_result(void **state)
{
    fixture *f = *state;
    mxr__pb_fail(&f->pb, MXR_RESULT_TEMPFAIL, MXR_REASON_SERVFAIL);
    assert_int_equal(f->pb.result, MXR_RESULT_TEMPFAIL);
    assert_int_equal(f->pb.reason, MXR_REASON_SERVFAIL);
}

/* ---------------------------------------------------------------- pack */

static void test_pack_round_trip(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    f->pb.implicit = true;
    mxr_plan *p = pack(f, "User@Example.COM", "example.com");
    assert_plan_matches(p, &f->pb, "User@Example.COM", "example.com");
    assert_int_equal(p->ttl, 300);
    assert_true(p->implicit);
    assert_self_contained(p);
    assert_true(mxr__plan_bytes(p) > sizeof *p);
    /* One block: that is everything the plan allocator holds. */
    assert_int_equal(f->pt.live, mxr__plan_bytes(p));
    mxr_plan_free(p);
    assert_int_equal(f->pt.live, 0);
}

/* The sample, plus a label, an implicit host (the domain itself) and a
 * skipped entry named as the domain: every way a template keeps a name. */
static void build_template_sample(mxr__plan_builder *pb)
{
    assert_int_equal(build_sample(pb), 0);
    snprintf(pb->hosts[1].label, sizeof pb->hosts[1].label, "relay");
    mxr__host *h =
        mxr__pb_add_host(pb, "example.com", 0, MXR_SOURCE_IMPLICIT, 25);
    assert_non_null(h);
    assert_int_equal(add_addr_text(pb, h, "203.0.113.9"), MXR_OK);
    assert_int_equal(mxr__pb_skip(pb, "example.com", 0, MXR_REASON_SELF), 0);
    assert_int_equal(mxr__pb_skip(pb, "xexample.com", 1, MXR_REASON_LIMIT), 0);
}

/* A compact template (what the plan cache keeps) unpacks into the plan
 * the builder would have packed: every field, the labels, the room to
 * skip every candidate, a block of its own; it writes no byte past its
 * size and is much smaller than the public plan. */
static void test_template_round_trip(void **state)
{
    fixture *f = *state;
    build_template_sample(&f->pb);
    size_t size = mxr__tmpl_size(&f->pb, "example.com");
    assert_true(size > 0);
    mxr_plan *ref = pack(f, "u@example.com", "example.com");
    assert_true(size * 2 < mxr__plan_bytes(ref));
    unsigned char *mem = malloc(size + 16);
    assert_non_null(mem);
    memset(mem, 0xa5, size + 16);
    mxr__tmpl_pack(&f->pb, "example.com", mem);
    assert_int_equal(mem[size], 0xa5); /* nothing past the size */
    assert_int_equal(mxr__tmpl_ttl(mem), 300);
    assert_int_equal(mxr__tmpl_result(mem), MXR_RESULT_OK);

    /* the domain comes from elsewhere (the cache key): no NUL needed */
    mxr_plan *p = mxr__tmpl_unpack(mem, "example.comXYZ", 11, "u@example.com",
                                   mxr_test_alloc_fn, &f->pt);
    assert_plan_matches(p, &f->pb, "u@example.com", "example.com");
    assert_self_contained(p);
    assert_null(p->candidates[0].label);
    assert_string_equal(p->candidates[1].label, "relay");
    /* no byte kept for an empty label: a little smaller */
    assert_true(mxr__plan_bytes(p) <= mxr__plan_bytes(ref));
    for (size_t i = p->ncandidates; i > 0; i--)
        assert_int_equal(mxr__plan_skip_candidate(p, 0, MXR_REASON_LIMIT), 0);
    assert_int_equal(p->nskipped, f->pb.nskips + f->pb.nhosts);
    assert_string_equal(p->skipped[p->nskipped - 1].host, "example.com");
    mxr_plan_free(p);
    mxr_plan_free(ref);
    free(mem);
}

/* A plan a template cannot hold (it keeps 8-bit counts and notes, and two
 * address families) says so with size 0: it is not cached. */
static void test_template_refuses_what_it_cannot_hold(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    assert_true(mxr__tmpl_size(&f->pb, "example.com") > 0);
    f->pb.hosts[0].notes = 0x100;
    assert_int_equal(mxr__tmpl_size(&f->pb, "example.com"), 0);
    f->pb.hosts[0].notes = 0;
    f->pb.hosts[0].addrs[0].family = 0;
    assert_int_equal(mxr__tmpl_size(&f->pb, "example.com"), 0);
    f->pb.hosts[0].addrs[0].family = AF_INET;
    mxr__host *h = &f->pb.hosts[2];
    for (int i = 0; i < 256; i++)
        assert_int_equal(add_addr_text(&f->pb, h, "192.0.2.77"), MXR_OK);
    assert_int_equal(mxr__tmpl_size(&f->pb, "example.com"), 0);
}

static void test_pack_without_ttl_gives_zero(void **state)
{
    fixture *f = *state;
    assert_non_null(
        mxr__pb_add_host(&f->pb, "mx.example.com", 0, MXR_SOURCE_MX, 25));
    mxr_plan *p = pack(f, "example.com", "example.com");
    assert_non_null(p);
    assert_int_equal(p->ttl, 0);
    mxr_plan_free(p);
}

/* A copy of a cached plan says what is left of each TTL: the plan's from
 * its expiry, the served ones (MX, addresses) from their age. */
static void test_count_down(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *tmpl = pack(f, "", "example.com");
    uint64_t built = 10000, expires = 10000 + 300 * 1000;
    mxr_plan *p =
        mxr__plan_clone_for(tmpl, "example.com", mxr_test_alloc_fn, &f->pt);
    mxr__plan_count_down(p, built, expires, 10000 + 100500); /* 100.5 s */
    assert_int_equal(p->ttl, 199);      /* may be used 199 s more */
    assert_int_equal(p->mx_ttl, 86300); /* 100 whole seconds went */
    assert_int_equal(p->candidates[0].ttl, 3500);
    assert_int_equal(p->candidates[1].ttl, 0); /* had none: stays 0 */
    /* past every TTL: nothing goes below 0 */
    mxr__plan_count_down(p, built, expires, 10000 + 90000 * 1000ULL);
    assert_int_equal(p->ttl, 0);
    assert_int_equal(p->mx_ttl, 0);
    assert_int_equal(p->candidates[0].ttl, 0);
    /* a clock before the plan was built changes nothing but the plan's */
    mxr_plan_free(p);
    p = mxr__plan_clone(tmpl, mxr_test_alloc_fn, &f->pt);
    mxr__plan_count_down(p, built, expires, 5000);
    assert_int_equal(p->mx_ttl, 86400);
    assert_int_equal(p->candidates[0].ttl, 3600);
    mxr_plan_free(p);
    mxr_plan_free(tmpl);
}

static void test_seconds_left(void **state)
{
    (void)state;
    assert_int_equal(mxr__seconds_left(5000, 5000), 0);
    assert_int_equal(mxr__seconds_left(4000, 5000), 0);
    assert_int_equal(mxr__seconds_left(5999, 5000), 0);
    assert_int_equal(mxr__seconds_left(6000, 5000), 1);
    assert_int_equal(mxr__seconds_left(UINT64_MAX, 0), UINT32_MAX);
    /* a served TTL loses only whole seconds */
    assert_int_equal(mxr__served_ttl_left(5000, 5000), 0);
    assert_int_equal(mxr__served_ttl_left(5001, 5000), 1);
    assert_int_equal(mxr__served_ttl_left(6000, 5000), 1);
    assert_int_equal(mxr__served_ttl_left(6001, 5000), 2);
    assert_int_equal(mxr__served_ttl_left(UINT64_MAX, 0), UINT32_MAX);
}

static void test_pack_null_strings_are_empty(void **state)
{
    fixture *f = *state;
    mxr_plan *p = pack(f, NULL, NULL);
    assert_non_null(p);
    assert_string_equal(p->input, "");
    assert_string_equal(p->domain, "");
    mxr_plan_free(p);
}

static void test_pack_failed_plan(void **state)
{
    fixture *f = *state;
    mxr__pb_fail(&f->pb, MXR_RESULT_PERMFAIL, MXR_REASON_NXDOMAIN);
    mxr__pb_lower_ttl(&f->pb, 30);
    mxr_plan *p = pack(f, "nowhere.example", "nowhere.example");
    assert_plan_matches(p, &f->pb, "nowhere.example", "nowhere.example");
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    assert_int_equal(p->reason, MXR_REASON_NXDOMAIN);
    assert_int_equal(p->ncandidates, 0);
    assert_int_equal(p->nskipped, 0);
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(p);
    assert_plan_matches(c, &f->pb, "nowhere.example", "nowhere.example");
    mxr_plan_free(c);
}

static void test_plan_free_null(void **state)
{
    (void)state;
    mxr_plan_free(NULL);
    assert_int_equal(mxr__plan_bytes(NULL), 0);
}

/* --------------------------------------------------------------- clone */

static void test_clone_is_independent(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *p = pack(f, "a@example.com", "example.com");
    assert_non_null(p);
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &f->pt);
    assert_non_null(c);
    assert_int_equal(mxr__plan_bytes(c), mxr__plan_bytes(p));
    assert_no_shared_memory(c, p);
    mxr_plan_free(p); /* the copy must not need anything of it */
    assert_plan_matches(c, &f->pb, "a@example.com", "example.com");
    assert_self_contained(c);
    mxr_plan *cc = mxr__plan_clone(c, mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(c);
    assert_plan_matches(cc, &f->pb, "a@example.com", "example.com");
    mxr_plan_free(cc);
}

/* A plan may be cloned into another allocator and freed there. */
static void test_clone_into_other_allocator(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *p = pack(f, "example.com", "example.com");
    mxr_test_alloc other = {0, 0, 0};
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &other);
    assert_non_null(c);
    assert_int_equal(other.live, mxr__plan_bytes(c));
    mxr_plan_free(p);
    assert_plan_matches(c, &f->pb, "example.com", "example.com");
    mxr_plan_free(c);
    assert_int_equal(other.live, 0);
}

static void test_clone_for_other_inputs(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    const char *orig_input = "postmaster@example.com";
    mxr_plan *p = pack(f, orig_input, "example.com");
    size_t bytes = mxr__plan_bytes(p);
    static const char *const inputs[] = {
        "a@example.com", "", "a.very.long.local.part.indeed+tag@example.com"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        mxr_plan *c =
            mxr__plan_clone_for(p, inputs[i], mxr_test_alloc_fn, &f->pt);
        assert_non_null(c);
        assert_int_equal(mxr__plan_bytes(c),
                         bytes - strlen(orig_input) + strlen(inputs[i]));
        assert_no_shared_memory(c, p);
        assert_self_contained(c);
        assert_plan_matches(c, &f->pb, inputs[i], "example.com");
        /* A copy of a copy keeps the new input. */
        mxr_plan *cc = mxr__plan_clone(c, mxr_test_alloc_fn, &f->pt);
        mxr_plan_free(c);
        assert_plan_matches(cc, &f->pb, inputs[i], "example.com");
        mxr_plan_free(cc);
    }
    mxr_plan *c =
        mxr__plan_clone_for(p, "x@example.com", mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(p);
    assert_plan_matches(c, &f->pb, "x@example.com", "example.com");
    mxr_plan_free(c);
}

/* ------------------------------------------------------ skip_candidate */

static void test_skip_candidate_keeps_order(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *p = pack(f, "example.com", "example.com");
    assert_int_equal(mxr__plan_skip_candidate(p, 1, MXR_REASON_LIMIT), 0);
    assert_int_equal(p->ncandidates, 2);
    assert_string_equal(p->candidates[0].host, "mx1.example.com");
    assert_string_equal(p->candidates[1].host, "mx3.example.com");
    assert_int_equal(p->candidates[0].naddrs, 2);
    assert_int_equal(p->nskipped, 3);
    assert_string_equal(p->skipped[0].host, "gone.example.com");
    assert_string_equal(p->skipped[2].host, "relay.example.net");
    assert_int_equal(p->skipped[2].preference, 20);
    assert_int_equal(p->skipped[2].reason, MXR_REASON_LIMIT);
    assert_int_equal(mxr__plan_skip_candidate(p, 2, MXR_REASON_LIMIT),
                     MXR_EINVAL);
    assert_int_equal(mxr__plan_skip_candidate(NULL, 0, MXR_REASON_LIMIT),
                     MXR_EINVAL);

    /* The moved entry survives a copy and the original's end. */
    mxr_plan *c = mxr__plan_clone(p, mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(p);
    assert_int_equal(c->nskipped, 3);
    assert_string_equal(c->skipped[2].host, "relay.example.net");
    assert_string_equal(c->candidates[1].host, "mx3.example.com");
    assert_self_contained(c);
    mxr_plan_free(c);
}

/* The reserve lets every candidate move; no more than that. */
static void test_skip_every_candidate(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *p = pack(f, "example.com", "example.com");
    while (p->ncandidates > 0)
        assert_int_equal(mxr__plan_skip_candidate(p, 0, MXR_REASON_LIMIT), 0);
    assert_int_equal(p->nskipped, 5);
    assert_string_equal(p->skipped[2].host, "mx1.example.com");
    assert_string_equal(p->skipped[3].host, "relay.example.net");
    assert_string_equal(p->skipped[4].host, "mx3.example.com");
    assert_int_equal(mxr__plan_skip_candidate(p, 0, MXR_REASON_LIMIT),
                     MXR_EINVAL);
    mxr_plan *c =
        mxr__plan_clone_for(p, "b@example.com", mxr_test_alloc_fn, &f->pt);
    mxr_plan_free(p);
    assert_int_equal(c->ncandidates, 0);
    assert_int_equal(c->nskipped, 5);
    assert_string_equal(c->skipped[4].host, "mx3.example.com");
    assert_self_contained(c);
    mxr_plan_free(c);
}

/* ----------------------------------------------------- out of memory */

/* Fails each allocation of the builder in turn: the builder reports it
 * and, once freed, holds nothing. */
static void test_builder_allocation_failures(void **state)
{
    (void)state;
    long failures = 0;
    for (long n = 1; n < 100; n++) {
        mxr_test_alloc t = {n, 0, 0};
        mxr__alloc a;
        mxr__plan_builder pb;
        mxr__alloc_init(&a, mxr_test_alloc_fn, &t);
        mxr__pb_init(&pb, &a);
        int rc = build_sample(&pb);
        mxr__pb_free(&pb);
        assert_int_equal(t.live, 0);
        assert_int_equal(a.bytes, 0);
        if (rc == 0)
            break;
        failures++;
    }
    /* hosts, two address arrays, skips: four allocations can fail. */
    assert_int_equal(failures, 4);
}

static void test_pack_allocation_failure(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_test_alloc t = {1, 0, 0};
    assert_null(mxr__plan_pack(&f->pb, "example.com", "example.com",
                               mxr_test_alloc_fn, &t));
    assert_int_equal(t.live, 0);
}

static void test_clone_allocation_failure(void **state)
{
    fixture *f = *state;
    assert_int_equal(build_sample(&f->pb), 0);
    mxr_plan *p = pack(f, "example.com", "example.com");
    mxr_test_alloc t = {1, 0, 0};
    assert_null(mxr__plan_clone(p, mxr_test_alloc_fn, &t));
    assert_int_equal(t.live, 0);
    t.calls = 0;
    assert_null(mxr__plan_clone_for(p, "a@example.com", mxr_test_alloc_fn, &t));
    assert_int_equal(t.live, 0);
    assert_null(mxr__plan_clone(NULL, mxr_test_alloc_fn, &t));
    mxr_plan_free(p);
}

#define FIXTURE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FIXTURE_TEST(test_builder_defaults),
        FIXTURE_TEST(test_lower_ttl_keeps_minimum),
        FIXTURE_TEST(test_add_host_fields),
        FIXTURE_TEST(test_add_host_cuts_overlong_name),
        FIXTURE_TEST(test_builder_grows),
        FIXTURE_TEST(test_remove_host_keeps_order),
        FIXTURE_TEST(test_fail_sets_result),
        FIXTURE_TEST(test_pack_round_trip),
        FIXTURE_TEST(test_template_round_trip),
        FIXTURE_TEST(test_template_refuses_what_it_cannot_hold),
        FIXTURE_TEST(test_pack_without_ttl_gives_zero),
        FIXTURE_TEST(test_pack_null_strings_are_empty),
        FIXTURE_TEST(test_count_down),
        FIXTURE_TEST(test_seconds_left),
        FIXTURE_TEST(test_pack_failed_plan),
        FIXTURE_TEST(test_plan_free_null),
        FIXTURE_TEST(test_clone_is_independent),
        FIXTURE_TEST(test_clone_into_other_allocator),
        FIXTURE_TEST(test_clone_for_other_inputs),
        FIXTURE_TEST(test_skip_candidate_keeps_order),
        FIXTURE_TEST(test_skip_every_candidate),
        FIXTURE_TEST(test_builder_allocation_failures),
        FIXTURE_TEST(test_pack_allocation_failure),
        FIXTURE_TEST(test_clone_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
