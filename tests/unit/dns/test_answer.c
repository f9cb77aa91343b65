/* test_answer.c -- DNS wire answers reduced to routing facts
 * (src/dns/answer.c): packets are built with ldns, turned into wire bytes and
 * parsed back, so every rule is checked on real DNS messages. Every test
 * counts its allocations: nothing may be left behind. */
#include "heap_fixture.h"

#include "dns/answer.h"

/* where mxr__answer_mx makes a target whole again */
static char tbuf[MXR__ANSWER_TEXT_MAX];

#include <stddef.h>

#include <ldns/ldns.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ fixture */

typedef heap_fixture fixture;

/* ------------------------------------------------- building packets */

/* A response for (qname, qtype, class IN): QR set, NOERROR, no records. */
static ldns_pkt *response_class(const char *qname, uint16_t qtype,
                                uint16_t qclass)
{
    ldns_rdf *name = ldns_dname_new_frm_str(qname);
    assert_non_null(name);
    ldns_pkt *p = ldns_pkt_query_new(name, (ldns_rr_type)qtype,
                                     (ldns_rr_class)qclass, LDNS_RD);
    assert_non_null(p);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_ra(p, true);
    return p;
}

static ldns_pkt *response(const char *qname, uint16_t qtype)
{
    return response_class(qname, qtype, LDNS_RR_CLASS_IN);
}

static void push(ldns_pkt *p, ldns_pkt_section sec, const char *text)
{
    ldns_rr *rr = NULL;
    ldns_status st = ldns_rr_new_frm_str(&rr, text, 3600, NULL, NULL);
    if (st != LDNS_STATUS_OK)
        fail_msg("bad test record '%s': %s", text, ldns_get_errorstr_by_id(st));
    assert_true(ldns_pkt_push_rr(p, sec, rr));
}

static void answer_rr(ldns_pkt *p, const char *text)
{
    push(p, LDNS_SECTION_ANSWER, text);
}

static void authority_rr(ldns_pkt *p, const char *text)
{
    push(p, LDNS_SECTION_AUTHORITY, text);
}

/* Wire bytes of p (malloc'd); frees p. */
static uint8_t *to_wire(ldns_pkt *p, size_t *len)
{
    uint8_t *wire = NULL;
    assert_int_equal(ldns_pkt2wire(&wire, p, len), LDNS_STATUS_OK);
    ldns_pkt_free(p);
    /* An exact-size copy, so that a read past the end is caught by ASan. */
    uint8_t *copy = malloc(*len ? *len : 1);
    assert_non_null(copy);
    memcpy(copy, wire, *len);
    LDNS_FREE(wire);
    return copy;
}

static mxr__answer *parse_max(fixture *f, ldns_pkt *p, const char *qname,
                              uint16_t qtype, size_t max)
{
    size_t len;
    uint8_t *wire = to_wire(p, &len);
    mxr__answer *ans = mxr__answer_parse(&f->a, wire, len, qname, qtype, max);
    free(wire);
    assert_non_null(ans);
    assert_int_equal(ans->refs, 1);
    assert_int_equal(ans->qtype, qtype);
    assert_true(mxr__answer_bytes(ans) > 0);
    return ans;
}

static mxr__answer *parse(fixture *f, ldns_pkt *p, const char *qname,
                          uint16_t qtype)
{
    return parse_max(f, p, qname, qtype, 64);
}

static void done(fixture *f, mxr__answer *ans)
{
    mxr__answer_unref(&f->a, ans);
}

/* Parses p and expects an answer carrying only rcode (and TTL 0). */
static void expect_rcode_only(fixture *f, ldns_pkt *p, const char *qname,
                              uint16_t qtype, mxr__rcode rc)
{
    mxr__answer *ans = parse(f, p, qname, qtype);
    assert_int_equal(ans->rcode, rc);
    assert_int_equal(ans->count, 0);
    assert_false(ans->via_cname);
    assert_int_equal(ans->ttl, 0);
    done(f, ans);
}

static void expect_network(fixture *f, ldns_pkt *p, const char *qname,
                           uint16_t qtype)
{
    expect_rcode_only(f, p, qname, qtype, MXR__DNS_NETWORK);
}

/* NETWORK, no records; the other fields do not matter (a chain we gave up
 * on may keep what was seen on the way). */
static void expect_untrusted(fixture *f, ldns_pkt *p, const char *qname,
                             uint16_t qtype)
{
    mxr__answer *ans = parse(f, p, qname, qtype);
    assert_int_equal(ans->rcode, MXR__DNS_NETWORK);
    assert_int_equal(ans->count, 0);
    done(f, ans);
}

static const char *SOA_TEXT = "example.com. 600 IN SOA ns.example.com. "
                              "hostmaster.example.com. 1 3600 600 86400 300";

/* ------------------------------------------------------------ MX records */

static void test_mx_three_records(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 MX1.Example.COM.");
    answer_rr(p, "example.com. 200 IN MX 20 mx2.example.com.");
    answer_rr(p, "example.com. 400 IN MX 5 mx3.example.net.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);

    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_false(ans->via_cname);
    assert_int_equal(ans->ttl, 200); /* the smallest */
    assert_int_equal(ans->count, 3);
    /* answer order: sorting is the route's business */
    assert_int_equal(mxr__answer_mx(ans, 0, tbuf).pref, 10);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "mx1.example.com");
    assert_int_equal(mxr__answer_mx(ans, 1, tbuf).pref, 20);
    assert_string_equal(mxr__answer_mx(ans, 1, tbuf).target, "mx2.example.com");
    assert_int_equal(mxr__answer_mx(ans, 2, tbuf).pref, 5);
    assert_string_equal(mxr__answer_mx(ans, 2, tbuf).target, "mx3.example.net");
    done(f, ans);
}

/* The block is its own cache entry: its key is the question asked. A copy
 * under another key (a chased CNAME's answer is cached under the first
 * question) holds the same records, pointing into the copy. */
static void expect_key(const mxr__answer *ans, const char *name, uint16_t qtype)
{
    char key[MXR__ANSWER_KEY_MAX];
    size_t len = mxr__answer_key(key, name, qtype);
    const unsigned char *at = mxr__cache_node_key(&ans->node);
    assert_int_equal(ans->node.keylen, len);
    assert_memory_equal(at, key, len);
    /* in the block, right after the header */
    assert_ptr_equal(at, ans->key);
    assert_true((const char *)at + len <=
                (const char *)ans + mxr__answer_bytes(ans));
}

static bool inside(const void *p, const mxr__answer *ans)
{
    const char *c = p, *start = (const char *)ans;
    return c >= start && c < start + mxr__answer_bytes(ans);
}

static void test_keys_and_rekeyed_copies(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx1.example.com.");
    answer_rr(p, "example.com. 300 IN MX 20 mx2.example.net.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    expect_key(ans, "example.com", MXR__TYPE_MX);
    ans->node.expires_ms = 1234;
    ans->served_until_ms = 5678;

    char key[MXR__ANSWER_KEY_MAX];
    size_t len = mxr__answer_key(key, "a-much-longer-question.example", 15);
    mxr__answer *copy = mxr__answer_rekeyed(&f->a, ans, key, len);
    assert_non_null(copy);
    done(f, ans); /* the copy owes the original nothing */
    expect_key(copy, "a-much-longer-question.example", MXR__TYPE_MX);
    assert_int_equal(copy->refs, 1);
    assert_int_equal(copy->node.expires_ms, 1234);
    assert_int_equal(copy->served_until_ms, 5678);
    assert_int_equal(copy->count, 2);
    assert_true(inside(mxr__answer_mx(copy, 1, tbuf).target, copy));
    assert_int_equal(mxr__answer_mx(copy, 1, tbuf).pref, 20);
    assert_string_equal(mxr__answer_mx(copy, 0, tbuf).target,
                        "mx1.example.com");
    assert_string_equal(mxr__answer_mx(copy, 1, tbuf).target,
                        "mx2.example.net");
    mxr__answer_unref(&f->a, copy);

    /* a dangling CNAME's target moves along; an error answer has no key */
    p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 3600 IN CNAME gone.example.net.");
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    copy = mxr__answer_rekeyed(&f->a, ans, key, 4);
    assert_non_null(copy);
    done(f, ans);
    assert_true(inside(mxr__answer_cname_target(copy), copy));
    assert_string_equal(mxr__answer_cname_target(copy), "gone.example.net");
    mxr__answer_unref(&f->a, copy);
    ans = mxr__answer_error(&f->a, MXR__DNS_TIMEOUT, MXR__TYPE_A, 0);
    assert_int_equal(ans->node.keylen, 0);
    copy = mxr__answer_rekeyed(&f->a, ans, key, len);
    mxr__answer_unref(&f->a, ans);
    assert_int_equal(copy->rcode, MXR__DNS_TIMEOUT);
    assert_int_equal(copy->node.keylen, len);
    mxr__answer_unref(&f->a, copy);

    /* out of memory: NULL, nothing held */
    ans = mxr__answer_error(&f->a, MXR__DNS_TIMEOUT, MXR__TYPE_A, 0);
    f->ta.fail_at = f->ta.calls + 1;
    assert_null(mxr__answer_rekeyed(&f->a, ans, key, len));
    mxr__answer_unref(&f->a, ans);
}

static void test_mx_root_target(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 0 .");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_int_equal(mxr__answer_mx(ans, 0, tbuf).pref, 0);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "");
    done(f, ans);

    /* next to a real one, both are reported as they are */
    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 0 .");
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->count, 2);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "");
    assert_string_equal(mxr__answer_mx(ans, 1, tbuf).target, "mx.example.com");
    done(f, ans);
}

static void test_mx_extreme_prefs(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 65535 big.example.com.");
    answer_rr(p, "example.com. 300 IN MX 0 zero.example.com.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->count, 2);
    assert_int_equal(mxr__answer_mx(ans, 0, tbuf).pref, 65535);
    assert_int_equal(mxr__answer_mx(ans, 1, tbuf).pref, 0);
    done(f, ans);
}

/* The question may come back in another case (0x20 randomisation); names
 * compare without case. Owners too. */
static void test_question_case_insensitive(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("EXAMPLE.Com", MXR__TYPE_MX);
    answer_rr(p, "Example.COM. 300 IN MX 10 mx.example.com.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 1);
    done(f, ans);

    /* the CNAME's owner and the target's records too */
    p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "WWW.Example.com. 300 IN CNAME Web.Example.NET.");
    answer_rr(p, "web.EXAMPLE.net. 300 IN A 192.0.2.1");
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_true(ans->via_cname);
    assert_int_equal(ans->count, 1);
    done(f, ans);

    /* a different name is not a case variant ("exbmple" vs "example") */
    p = response("exbmple.com", MXR__TYPE_MX);
    answer_rr(p, "exbmple.com. 300 IN MX 10 mx.example.com.");
    expect_network(f, p, "example.com", MXR__TYPE_MX);
}

/* ------------------------------------------------------- A and AAAA */

/* Record i of an address answer is this family's address. */
static void expect_addr(const mxr__answer *ans, size_t i, int family,
                        const uint8_t *bytes, size_t n)
{
    assert_int_equal(mxr__answer_addr(ans, i).family, family);
    assert_memory_equal(mxr__answer_addr(ans, i).bytes, bytes, n);
}
static void test_a_records(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("host.example.com", MXR__TYPE_A);
    answer_rr(p, "host.example.com. 120 IN A 192.0.2.1");
    answer_rr(p, "host.example.com. 60 IN A 198.51.100.7");
    mxr__answer *ans = parse(f, p, "host.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 2);
    assert_int_equal(ans->ttl, 60);
    static const uint8_t a0[4] = {192, 0, 2, 1}, a1[4] = {198, 51, 100, 7};
    expect_addr(ans, 0, AF_INET, a0, 4);
    expect_addr(ans, 1, AF_INET, a1, 4);
    done(f, ans);
}

static void test_aaaa_records(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("host.example.com", MXR__TYPE_AAAA);
    answer_rr(p, "host.example.com. 120 IN AAAA 2001:db8::1");
    answer_rr(p, "host.example.com. 900 IN AAAA 2001:db8:ffff::2");
    mxr__answer *ans = parse(f, p, "host.example.com", MXR__TYPE_AAAA);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 2);
    assert_int_equal(ans->ttl, 120);
    static const uint8_t a0[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                   0,    0,    0,    0,    0, 0, 0, 1};
    static const uint8_t a1[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0,
                                   0,    0,    0,    0,    0,    0,    0, 2};
    expect_addr(ans, 0, AF_INET6, a0, 16);
    expect_addr(ans, 1, AF_INET6, a1, 16);
    done(f, ans);
}

/* What a cached answer costs: the header, the key, then the records as
 * their own bytes (4 per A, 16 per AAAA, 8 per MX plus the target's
 * text), nothing more. */
static void test_blocks_are_compact(void **state)
{
    fixture *f = *state;
    char key[MXR__ANSWER_KEY_MAX];
    size_t head = offsetof(mxr__answer, key);
    ldns_pkt *p = response("host.example.com", MXR__TYPE_A);
    answer_rr(p, "host.example.com. 120 IN A 192.0.2.1");
    mxr__answer *ans = parse(f, p, "host.example.com", MXR__TYPE_A);
    size_t keylen = mxr__answer_key(key, "host.example.com", MXR__TYPE_A);
    assert_int_equal(mxr__answer_bytes(ans), head + keylen + 4);
    done(f, ans);

    p = response("host.example.com", MXR__TYPE_AAAA);
    answer_rr(p, "host.example.com. 120 IN AAAA 2001:db8::1");
    ans = parse(f, p, "host.example.com", MXR__TYPE_AAAA);
    assert_int_equal(mxr__answer_bytes(ans), head + keylen + 16);
    done(f, ans);

    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx1.example.com.");
    answer_rr(p, "example.com. 300 IN MX 20 b.example.com.");
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    keylen = mxr__answer_key(key, "example.com", MXR__TYPE_MX);
    size_t body = (head + keylen + 3) / 4 * 4;
    /* targets in the question's domain keep only their first labels */
    assert_int_equal(mxr__answer_bytes(ans),
                     body + 2 * 8 + sizeof "mx1" + sizeof "b");
    assert_int_equal(mxr__answer_mx(ans, 1, tbuf).pref, 20);
    assert_string_equal(mxr__answer_mx(ans, 1, tbuf).target, "b.example.com");
    done(f, ans);
}

/* Every way a target is kept -- the part before the question's name, the
 * question's name itself, whole (elsewhere, or the question's name is
 * only a suffix of its last label), the root -- reads back whole, also
 * from a copy under another question, which keeps them against its own
 * name. */
static void test_mx_targets_kept_against_the_question(void **state)
{
    fixture *f = *state;
    static const char *const want[] = {
        "mx1.example.com", "example.com", "mx.example.net", "xexample.com", "",
        "a.b.example.com"};
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 1 mx1.example.com.");
    answer_rr(p, "example.com. 300 IN MX 2 EXAMPLE.com.");
    answer_rr(p, "example.com. 300 IN MX 3 mx.example.net.");
    answer_rr(p, "example.com. 300 IN MX 4 xexample.com.");
    answer_rr(p, "example.com. 300 IN MX 5 .");
    answer_rr(p, "example.com. 300 IN MX 6 a.b.example.com.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->count, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mxr__answer_mx(ans, i, tbuf).pref, i + 1);
        assert_string_equal(mxr__answer_mx(ans, i, tbuf).target, want[i]);
    }
    char key[MXR__ANSWER_KEY_MAX];
    size_t len = mxr__answer_key(key, "example.net", MXR__TYPE_MX);
    mxr__answer *copy = mxr__answer_rekeyed(&f->a, ans, key, len);
    assert_non_null(copy);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(mxr__answer_mx(copy, i, tbuf).pref, i + 1);
        assert_string_equal(mxr__answer_mx(copy, i, tbuf).target, want[i]);
    }
    /* mx.example.net is kept as "mx" now, the example.com ones whole */
    size_t kept_com = sizeof "mx1" + sizeof "" + sizeof "mx.example.net" +
                      sizeof "xexample.com" + sizeof "" + sizeof "a.b";
    size_t kept_net = sizeof "mx1.example.com" + sizeof "example.com" +
                      sizeof "mx" + sizeof "xexample.com" + sizeof "" +
                      sizeof "a.b.example.com";
    assert_int_equal(mxr__answer_bytes(copy) - kept_net,
                     mxr__answer_bytes(ans) - kept_com);
    mxr__answer_unref(&f->a, copy);
    done(f, ans);
}

/* ------------------------------------------------------------ CNAMEs */

static void test_cname_chain(void **state)
{
    fixture *f = *state;
    /* one hop; the target's records have a larger TTL than the CNAME */
    ldns_pkt *p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 60 IN CNAME web.example.net.");
    answer_rr(p, "web.example.net. 300 IN A 192.0.2.80");
    mxr__answer *ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_true(ans->via_cname);
    assert_int_equal(ans->count, 1);
    assert_int_equal(ans->ttl, 60); /* the CNAME counts */
    done(f, ans);

    /* two hops, listed out of order, for MX */
    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "c2.example.org. 500 IN MX 10 MX.example.org.");
    answer_rr(p, "c1.example.net. 200 IN CNAME c2.example.org.");
    answer_rr(p, "example.com. 400 IN CNAME c1.example.net.");
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_true(ans->via_cname);
    assert_int_equal(ans->count, 1);
    assert_int_equal(ans->ttl, 200);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "mx.example.org");
    done(f, ans);

    /* records of the asked name win over a CNAME of another name */
    p = response("example.com", MXR__TYPE_A);
    answer_rr(p, "example.com. 300 IN A 192.0.2.1");
    answer_rr(p, "other.example.com. 10 IN CNAME x.example.com.");
    ans = parse(f, p, "example.com", MXR__TYPE_A);
    assert_false(ans->via_cname);
    assert_int_equal(ans->ttl, 300);
    done(f, ans);
}

/* A chain of n CNAMEs c0 -> c1 -> ... -> cn, then an A record of cn. */
static ldns_pkt *chain_packet(int n, bool with_record)
{
    char text[256];
    ldns_pkt *p = response("c0.example.com", MXR__TYPE_A);
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof text,
                 "c%d.example.com. 300 IN CNAME c%d.example.com.", i, i + 1);
        answer_rr(p, text);
    }
    if (with_record) {
        snprintf(text, sizeof text, "c%d.example.com. 300 IN A 192.0.2.9", n);
        answer_rr(p, text);
    }
    return p;
}

static void test_cname_chain_limit(void **state)
{
    fixture *f = *state;
    /* exactly the maximum is followed */
    mxr__answer *ans = parse(f, chain_packet(MXR__CNAME_CHAIN_MAX, true),
                             "c0.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_true(ans->via_cname);
    assert_int_equal(ans->count, 1);
    done(f, ans);

    /* one more is an answer we cannot trust */
    expect_untrusted(f, chain_packet(MXR__CNAME_CHAIN_MAX + 1, true),
                     "c0.example.com", MXR__TYPE_A);
    expect_untrusted(f, chain_packet(MXR__CNAME_CHAIN_MAX + 5, true),
                     "c0.example.com", MXR__TYPE_A);
    expect_untrusted(f, chain_packet(MXR__CNAME_CHAIN_MAX + 1, false),
                     "c0.example.com", MXR__TYPE_A);
}

static void test_cname_loop(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("a.example.com", MXR__TYPE_A);
    answer_rr(p, "a.example.com. 300 IN CNAME b.example.com.");
    answer_rr(p, "b.example.com. 300 IN CNAME a.example.com.");
    expect_untrusted(f, p, "a.example.com", MXR__TYPE_A);

    p = response("a.example.com", MXR__TYPE_MX);
    answer_rr(p, "a.example.com. 300 IN CNAME a.example.com.");
    expect_untrusted(f, p, "a.example.com", MXR__TYPE_MX);

    /* a loop next to an NXDOMAIN rcode is no better */
    p = response("a.example.com", MXR__TYPE_A);
    ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
    answer_rr(p, "a.example.com. 300 IN CNAME b.example.com.");
    answer_rr(p, "b.example.com. 300 IN CNAME a.example.com.");
    expect_untrusted(f, p, "a.example.com", MXR__TYPE_A);
}

/* A CNAME to a name without records of the type: the rcode is the one of
 * the end of the chain (RFC 6604). */
static void test_cname_dangling(void **state)
{
    fixture *f = *state;
    /* the chain ends at a name whose records are not here (another zone,
     * or none): NODATA, and the name to ask for next */
    ldns_pkt *p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 3600 IN CNAME Gone.Example.NET.");
    authority_rr(p, SOA_TEXT);
    mxr__answer *ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_true(ans->via_cname);
    assert_int_equal(ans->count, 0);
    assert_int_equal(ans->ttl, 300); /* min(CNAME 3600, SOA 600/300) */
    assert_non_null(mxr__answer_cname_target(ans));
    assert_string_equal(mxr__answer_cname_target(ans), "gone.example.net");
    done(f, ans);

    /* out of the server's zones there is no SOA: the CNAME's TTL, not 0
     * (knotd answers so; 0 cut plans through it to the TTL minimum) */
    p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 3600 IN CNAME Gone.Example.NET.");
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->ttl, 3600);
    assert_non_null(mxr__answer_cname_target(ans));
    done(f, ans);

    /* the CNAME's TTL bounds the negative one */
    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 60 IN CNAME a.example.org.");
    answer_rr(p, "a.example.org. 90 IN CNAME b.example.org.");
    authority_rr(p, SOA_TEXT);
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->ttl, 60);
    assert_string_equal(mxr__answer_cname_target(ans), "b.example.org");
    done(f, ans);

    /* NXDOMAIN at the end of the chain: nothing more to ask */
    p = response("www.example.com", MXR__TYPE_A);
    ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
    answer_rr(p, "www.example.com. 3600 IN CNAME gone.example.com.");
    authority_rr(p, SOA_TEXT);
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_NXDOMAIN);
    assert_true(ans->via_cname);
    assert_int_equal(ans->ttl, 300);
    assert_null(mxr__answer_cname_target(ans));
    done(f, ans);

    /* no CNAME, no records: plain NODATA */
    p = response("www.example.com", MXR__TYPE_A);
    authority_rr(p, SOA_TEXT);
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_null(mxr__answer_cname_target(ans));
    assert_false(ans->via_cname);
    done(f, ans);

    /* records found: no target to chase */
    p = response("www.example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 300 IN CNAME web.example.com.");
    answer_rr(p, "web.example.com. 300 IN A 192.0.2.1");
    ans = parse(f, p, "www.example.com", MXR__TYPE_A);
    assert_null(mxr__answer_cname_target(ans));
    done(f, ans);
}

/* ------------------------------------------------- negative answers */

static void test_nodata_soa_ttl(void **state)
{
    fixture *f = *state;
    /* SOA TTL 600, MINIMUM 300: 300 */
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    authority_rr(p, SOA_TEXT);
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->count, 0);
    assert_false(ans->via_cname);
    assert_int_equal(ans->ttl, 300);
    done(f, ans);

    /* SOA TTL 100, MINIMUM 300: 100 */
    p = response("example.com", MXR__TYPE_MX);
    authority_rr(p, "example.com. 100 IN SOA ns.example.com. "
                    "hostmaster.example.com. 1 3600 600 86400 300");
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->ttl, 100);
    done(f, ans);

    /* no SOA at all: nothing to cache it by */
    p = response("example.com", MXR__TYPE_MX);
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->ttl, 0);
    done(f, ans);

    /* other records of the name (an A for an MX question): still NODATA */
    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 50 IN A 192.0.2.1");
    authority_rr(p, SOA_TEXT);
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->count, 0);
    done(f, ans);
}

static void test_nxdomain(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("nothere.example.com", MXR__TYPE_MX);
    ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
    authority_rr(p, SOA_TEXT);
    mxr__answer *ans = parse(f, p, "nothere.example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_NXDOMAIN);
    assert_int_equal(ans->count, 0);
    assert_int_equal(ans->ttl, 300);
    done(f, ans);

    p = response("nothere.example.com", MXR__TYPE_A);
    ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
    ans = parse(f, p, "nothere.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_NXDOMAIN);
    assert_int_equal(ans->ttl, 0);
    done(f, ans);
}

/* ------------------------------------------------------ server errors */

static ldns_pkt *with_rcode(ldns_pkt_rcode rc)
{
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    ldns_pkt_set_rcode(p, rc);
    /* records in an error answer are never used */
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    authority_rr(p, SOA_TEXT);
    return p;
}

static void test_error_rcodes(void **state)
{
    fixture *f = *state;
    expect_rcode_only(f, with_rcode(LDNS_RCODE_SERVFAIL), "example.com",
                      MXR__TYPE_MX, MXR__DNS_SERVFAIL);
    expect_rcode_only(f, with_rcode(LDNS_RCODE_REFUSED), "example.com",
                      MXR__TYPE_MX, MXR__DNS_REFUSED);
    expect_network(f, with_rcode(LDNS_RCODE_FORMERR), "example.com",
                   MXR__TYPE_MX);
    expect_network(f, with_rcode(LDNS_RCODE_NOTIMPL), "example.com",
                   MXR__TYPE_MX);
    expect_network(f, with_rcode(LDNS_RCODE_YXDOMAIN), "example.com",
                   MXR__TYPE_MX);
    expect_network(f, with_rcode(LDNS_RCODE_NOTAUTH), "example.com",
                   MXR__TYPE_MX);
}

static void test_rcode_classes(void **state)
{
    (void)state;
    assert_false(mxr__rcode_is_temporary(MXR__DNS_OK));
    assert_false(mxr__rcode_is_temporary(MXR__DNS_NODATA));
    assert_false(mxr__rcode_is_temporary(MXR__DNS_NXDOMAIN));
    assert_true(mxr__rcode_is_temporary(MXR__DNS_SERVFAIL));
    assert_true(mxr__rcode_is_temporary(MXR__DNS_REFUSED));
    assert_true(mxr__rcode_is_temporary(MXR__DNS_TIMEOUT));
    assert_true(mxr__rcode_is_temporary(MXR__DNS_NETWORK));
    assert_true(mxr__rcode_is_temporary(MXR__DNS_CANCELLED));
    assert_int_equal(mxr__rcode_reason(MXR__DNS_OK), MXR_REASON_NONE);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_NXDOMAIN), MXR_REASON_NXDOMAIN);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_SERVFAIL), MXR_REASON_SERVFAIL);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_REFUSED), MXR_REASON_REFUSED);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_TIMEOUT), MXR_REASON_TIMEOUT);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_NETWORK), MXR_REASON_NETWORK);
    assert_int_equal(mxr__rcode_reason(MXR__DNS_CANCELLED), MXR_REASON_NETWORK);
}

/* ------------------------------------------ answers we cannot trust */

static ldns_pkt *good_mx(const char *qname)
{
    ldns_pkt *p = response(qname, MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    return p;
}

static void test_question_mismatch(void **state)
{
    fixture *f = *state;
    /* another name */
    expect_network(f, good_mx("example.com"), "example.org", MXR__TYPE_MX);
    expect_network(f, good_mx("example.com"), "www.example.com", MXR__TYPE_MX);
    /* another type */
    expect_network(f, good_mx("example.com"), "example.com", MXR__TYPE_A);
    ldns_pkt *p = response("example.com", MXR__TYPE_A);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* another class */
    p = response_class("example.com", MXR__TYPE_MX, LDNS_RR_CLASS_CH);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* no question at all */
    p = good_mx("example.com");
    ldns_rr_list_deep_free(ldns_pkt_question(p));
    ldns_pkt_set_question(p, ldns_rr_list_new());
    ldns_pkt_set_qdcount(p, 0);
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* two questions */
    p = good_mx("example.com");
    ldns_rr *q2 = NULL;
    assert_int_equal(
        ldns_rr_new_question_frm_str(&q2, "example.com. IN MX", NULL, NULL),
        LDNS_STATUS_OK);
    assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q2));
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* a name that is not one */
    p = good_mx("example.com");
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    expect_network(f, p, longname, MXR__TYPE_MX);
}

static void test_flags(void **state)
{
    fixture *f = *state;
    /* a query, not a response */
    ldns_pkt *p = good_mx("example.com");
    ldns_pkt_set_qr(p, false);
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* truncated: the rest of the answer is missing */
    p = good_mx("example.com");
    ldns_pkt_set_tc(p, true);
    expect_network(f, p, "example.com", MXR__TYPE_MX);
    /* AA, AD, CD change nothing */
    p = good_mx("example.com");
    ldns_pkt_set_aa(p, true);
    ldns_pkt_set_ad(p, true);
    ldns_pkt_set_cd(p, true);
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 1);
    done(f, ans);
}

/* A rich answer: CNAME, MX records, SOA, an additional A. */
static ldns_pkt *rich_mx(void)
{
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN CNAME mail.example.net.");
    answer_rr(p, "mail.example.net. 200 IN MX 10 mx1.example.net.");
    answer_rr(p, "mail.example.net. 200 IN MX 20 MX2.example.net.");
    answer_rr(p, "mail.example.net. 200 IN MX 0 .");
    authority_rr(p, SOA_TEXT);
    push(p, LDNS_SECTION_ADDITIONAL, "mx1.example.net. 60 IN A 192.0.2.1");
    return p;
}

static ldns_pkt *rich_a(void)
{
    ldns_pkt *p = response("host.example.com", MXR__TYPE_A);
    answer_rr(p, "host.example.com. 300 IN CNAME h.example.org.");
    answer_rr(p, "h.example.org. 120 IN A 192.0.2.7");
    answer_rr(p, "h.example.org. 120 IN A 192.0.2.8");
    authority_rr(p, SOA_TEXT);
    return p;
}

static void test_truncated_bytes(void **state)
{
    fixture *f = *state;
    struct {
        ldns_pkt *p;
        const char *qname;
        uint16_t qtype;
    } cases[] = {{rich_mx(), "example.com", MXR__TYPE_MX},
                 {rich_a(), "host.example.com", MXR__TYPE_A}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len;
        uint8_t *wire = to_wire(cases[c].p, &len);
        assert_true(len > 12);
        for (size_t n = 0; n <= len; n++) {
            /* a buffer of exactly n bytes: ASan sees any over-read */
            uint8_t *prefix = malloc(n ? n : 1);
            assert_non_null(prefix);
            memcpy(prefix, wire, n);
            mxr__answer *ans = mxr__answer_parse(
                &f->a, prefix, n, cases[c].qname, cases[c].qtype, 64);
            free(prefix);
            assert_non_null(ans);
            if (n < len) {
                if (ans->rcode != MXR__DNS_NETWORK)
                    fail_msg("prefix of %zu/%zu bytes: rcode %d", n, len,
                             (int)ans->rcode);
                assert_int_equal(ans->count, 0);
            } else {
                assert_int_equal(ans->rcode, MXR__DNS_OK);
                assert_true(ans->count > 0);
            }
            done(f, ans);
        }
        free(wire);
    }
}

/* Bytes the header does not count: after the last record, or records
 * past a count that lies low (ldns would read the answer as authority). */
static void test_uncounted_bytes(void **state)
{
    fixture *f = *state;
    size_t len;
    uint8_t *wire = to_wire(rich_mx(), &len);
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, wire, len);
    longer[len] = 0;
    mxr__answer *ans = mxr__answer_parse(&f->a, longer, len + 1, "example.com",
                                         MXR__TYPE_MX, 64);
    assert_int_equal(ans->rcode, MXR__DNS_NETWORK);
    done(f, ans);
    wire[7]--; /* ANCOUNT one low: the last answer is left over */
    ans = mxr__answer_parse(&f->a, wire, len, "example.com", MXR__TYPE_MX, 64);
    assert_int_equal(ans->rcode, MXR__DNS_NETWORK);
    assert_int_equal(ans->count, 0);
    done(f, ans);
    free(longer);
    free(wire);
}

/* A response to example.com MX with one record, in the answer section or
 * the authority section: the class and TTL it parses to. */
static void expect_ttl(fixture *f, ldns_pkt_section sec, const char *rr,
                       mxr__rcode rc, uint32_t ttl)
{
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    push(p, sec, rr);
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, rc);
    assert_int_equal(ans->ttl, ttl);
    done(f, ans);
}

/* RFC 2181 section 8: a TTL with the top bit set counts as zero, for the
 * records and for the negative TTL of the SOA. */
static void test_ttl_top_bit(void **state)
{
    expect_ttl(*state, LDNS_SECTION_ANSWER,
               "example.com. 2147483647 IN MX 10 mx1.example.com.", MXR__DNS_OK,
               2147483647);
    expect_ttl(*state, LDNS_SECTION_ANSWER,
               "example.com. 4294967295 IN MX 10 mx1.example.com.", MXR__DNS_OK,
               0);
    expect_ttl(*state, LDNS_SECTION_AUTHORITY,
               "example.com. 2147483648 IN SOA ns.example.com. "
               "hostmaster.example.com. 1 3600 600 86400 300",
               MXR__DNS_NODATA, 0);
}

/* splitmix64: a fixed-seed generator, so the mutations are reproducible. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void check_sane(const mxr__answer *ans, uint16_t qtype, size_t max)
{
    assert_non_null(ans);
    assert_int_equal(ans->refs, 1);
    assert_int_equal(ans->qtype, qtype);
    switch (ans->rcode) {
    case MXR__DNS_OK:
        assert_true(ans->count > 0);
        break;
    case MXR__DNS_NODATA:
    case MXR__DNS_NXDOMAIN:
    case MXR__DNS_SERVFAIL:
    case MXR__DNS_REFUSED:
    case MXR__DNS_NETWORK:
        assert_int_equal(ans->count, 0);
        break;
    default: /* timeouts and cancellations never come from a packet */
        fail_msg("rcode %d from a packet", (int)ans->rcode);
    }
    assert_true(ans->count <= max);
    if (mxr__answer_cname_target(ans)) {
        assert_int_equal(ans->rcode, MXR__DNS_NODATA);
        assert_true(ans->via_cname);
        assert_true(strlen(mxr__answer_cname_target(ans)) < 4 * 256);
    }
    for (size_t i = 0; i < ans->count; i++) {
        if (qtype == MXR__TYPE_MX) {
            const char *t = mxr__answer_mx(ans, i, tbuf).target;
            assert_non_null(t);
            size_t n = strlen(t);
            assert_true(n < 4 * 256);
            for (size_t k = 0; k < n; k++)
                assert_false(t[k] >= 'A' && t[k] <= 'Z');
            assert_true(n == 0 || t[n - 1] != '.' ||
                        (n >= 2 && t[n - 2] == '\\'));
        } else {
            assert_int_equal(mxr__answer_addr(ans, i).family,
                             qtype == MXR__TYPE_A ? AF_INET : AF_INET6);
        }
    }
}

static void test_random_mutations(void **state)
{
    fixture *f = *state;
    enum { MUTATIONS = 100000 };
    struct {
        uint8_t *wire;
        size_t len;
        const char *qname;
        uint16_t qtype;
    } base[2] = {{NULL, 0, "example.com", MXR__TYPE_MX},
                 {NULL, 0, "host.example.com", MXR__TYPE_A}};
    base[0].wire = to_wire(rich_mx(), &base[0].len);
    base[1].wire = to_wire(rich_a(), &base[1].len);
    uint64_t seed = 20240101;
    size_t by_rcode[MXR__DNS_CANCELLED + 1] = {0};
    for (long i = 0; i < MUTATIONS; i++) {
        size_t which = (size_t)(i & 1);
        size_t len = base[which].len;
        uint8_t *buf = malloc(len);
        assert_non_null(buf);
        memcpy(buf, base[which].wire, len);
        unsigned flips = 1 + (unsigned)(next_rand(&seed) % 4);
        for (unsigned k = 0; k < flips; k++) {
            uint64_t r = next_rand(&seed);
            size_t at = (size_t)(r % len);
            uint8_t x = (uint8_t)(r >> 32);
            buf[at] ^= x ? x : 0x01;
        }
        size_t max = (i % 7 == 0) ? 1 : 64;
        mxr__answer *ans = mxr__answer_parse(&f->a, buf, len, base[which].qname,
                                             base[which].qtype, max);
        free(buf);
        check_sane(ans, base[which].qtype, max);
        by_rcode[ans->rcode]++;
        done(f, ans);
    }
    free(base[0].wire);
    free(base[1].wire);
    /* the mutations reached the record parsing, not only the header */
    assert_true(by_rcode[MXR__DNS_OK] > 1000);
    assert_true(by_rcode[MXR__DNS_NETWORK] > 1000);
}

/* ------------------------------------------------------ record filters */

static void test_max_records(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    char text[128];
    for (int i = 0; i < 1000; i++) {
        snprintf(text, sizeof text,
                 "example.com. 300 IN MX %d m%04d.example.com.", i, i);
        answer_rr(p, text);
    }
    size_t len;
    uint8_t *wire = to_wire(p, &len);
    static const size_t caps[] = {64, 1, 999, 1000, 10000};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        mxr__answer *ans = mxr__answer_parse(&f->a, wire, len, "example.com",
                                             MXR__TYPE_MX, caps[c]);
        assert_non_null(ans);
        assert_int_equal(ans->rcode, MXR__DNS_OK);
        size_t want = caps[c] < 1000 ? caps[c] : 1000;
        assert_int_equal(ans->count, want);
        for (size_t i = 0; i < ans->count; i++) {
            snprintf(text, sizeof text, "m%04zu.example.com", i);
            assert_int_equal(mxr__answer_mx(ans, i, tbuf).pref, i);
            assert_string_equal(mxr__answer_mx(ans, i, tbuf).target, text);
        }
        done(f, ans);
    }
    free(wire);
}

/* Past the limit the most preferred records are kept, whatever their
 * order in the answer: a flood cannot push out the best hosts. */
static void test_max_records_keeps_most_preferred(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    char text[128];
    for (int i = 999; i >= 0; i--) { /* worst first */
        snprintf(text, sizeof text,
                 "example.com. 300 IN MX %d m%04d.example.com.", i, i);
        answer_rr(p, text);
    }
    size_t len;
    uint8_t *wire = to_wire(p, &len);
    mxr__answer *ans =
        mxr__answer_parse(&f->a, wire, len, "example.com", MXR__TYPE_MX, 10);
    assert_int_equal(ans->count, 10);
    unsigned seen = 0;
    for (size_t i = 0; i < ans->count; i++) {
        assert_true(mxr__answer_mx(ans, i, tbuf).pref < 10);
        snprintf(text, sizeof text, "m%04u.example.com",
                 mxr__answer_mx(ans, i, tbuf).pref);
        assert_string_equal(mxr__answer_mx(ans, i, tbuf).target, text);
        seen |= 1u << mxr__answer_mx(ans, i, tbuf).pref;
    }
    assert_int_equal(seen, 0x3ff);
    done(f, ans);
    free(wire);
}

static void test_wrong_type_owner_class_ignored(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 10 IN A 192.0.2.1");
    answer_rr(p, "example.com. 10 IN TXT \"v=spf1 -all\"");
    answer_rr(p, "other.example.com. 10 IN MX 5 evil.example.org.");
    answer_rr(p, "com. 10 IN MX 5 evil.example.org.");
    answer_rr(p, "example.com. 10 CH MX 5 chaos.example.org.");
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "mx.example.com");
    assert_int_equal(ans->ttl, 300); /* ignored records do not count */
    done(f, ans);

    /* only records of the wrong owner: the asked name has none */
    p = response("example.com", MXR__TYPE_A);
    answer_rr(p, "www.example.com. 10 IN A 192.0.2.1");
    answer_rr(p, "example.com. 10 IN AAAA 2001:db8::1");
    authority_rr(p, SOA_TEXT);
    ans = parse(f, p, "example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->count, 0);
    done(f, ans);

    /* AAAA question, A records only */
    p = response("example.com", MXR__TYPE_AAAA);
    answer_rr(p, "example.com. 10 IN A 192.0.2.1");
    ans = parse(f, p, "example.com", MXR__TYPE_AAAA);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    done(f, ans);
}

/* An address record of the asked type whose rdata has n bytes. */
static void push_raw_addr(ldns_pkt *p, const char *owner, uint16_t type,
                          size_t n)
{
    ldns_rr *rr = ldns_rr_new();
    assert_non_null(rr);
    ldns_rr_set_owner(rr, ldns_dname_new_frm_str(owner));
    ldns_rr_set_type(rr, (ldns_rr_type)type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, 30);
    static const uint8_t junk[32] = {10, 20, 30, 40, 50, 60, 70, 80};
    if (n > 0)
        assert_true(ldns_rr_push_rdf(
            rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, n, junk)));
    assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
}

static void test_bad_rdata_length(void **state)
{
    fixture *f = *state;
    /* empty rdata survives ldns: the record must be skipped */
    ldns_pkt *p = response("host.example.com", MXR__TYPE_A);
    push_raw_addr(p, "host.example.com.", MXR__TYPE_A, 0);
    answer_rr(p, "host.example.com. 300 IN A 192.0.2.5");
    mxr__answer *ans = parse(f, p, "host.example.com", MXR__TYPE_A);
    assert_int_equal(ans->rcode, MXR__DNS_OK);
    assert_int_equal(ans->count, 1);
    assert_int_equal(ans->ttl, 300);
    static const uint8_t want[4] = {192, 0, 2, 5};
    assert_memory_equal(mxr__answer_addr(ans, 0).bytes, want, 4);
    done(f, ans);

    p = response("host.example.com", MXR__TYPE_AAAA);
    push_raw_addr(p, "host.example.com.", MXR__TYPE_AAAA, 0);
    ans = parse(f, p, "host.example.com", MXR__TYPE_AAAA);
    assert_int_equal(ans->rcode, MXR__DNS_NODATA);
    assert_int_equal(ans->count, 0);
    done(f, ans);

    p = response("example.com", MXR__TYPE_MX);
    push_raw_addr(p, "example.com.", MXR__TYPE_MX, 0);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    ans = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_int_equal(ans->count, 1);
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "mx.example.com");
    done(f, ans);

    /* other wrong lengths: the packet is not what it says, untrusted */
    static const size_t bad[] = {1, 3, 5, 16};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = response("host.example.com", MXR__TYPE_A);
        push_raw_addr(p, "host.example.com.", MXR__TYPE_A, bad[i]);
        answer_rr(p, "host.example.com. 300 IN A 192.0.2.5");
        ans = parse(f, p, "host.example.com", MXR__TYPE_A);
        assert_int_equal(ans->rcode, MXR__DNS_NETWORK);
        done(f, ans);
    }
    p = response("host.example.com", MXR__TYPE_AAAA);
    push_raw_addr(p, "host.example.com.", MXR__TYPE_AAAA, 4);
    ans = parse(f, p, "host.example.com", MXR__TYPE_AAAA);
    assert_int_equal(ans->rcode, MXR__DNS_NETWORK);
    assert_int_equal(ans->count, 0);
    done(f, ans);
}

/* ------------------------------------------------- lifetime, memory */

static void test_refcounting(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    mxr__answer *ans = parse(f, p, "example.com", MXR__TYPE_MX);
    size_t held = f->a.bytes;
    assert_true(held > 0);
    assert_true(mxr__answer_bytes(ans) >= sizeof *ans);
    mxr__answer_ref(ans);
    assert_int_equal(ans->refs, 2);
    mxr__answer_ref(ans);
    assert_int_equal(ans->refs, 3);
    mxr__answer_unref(&f->a, ans);
    mxr__answer_unref(&f->a, ans);
    assert_int_equal(ans->refs, 1);
    assert_int_equal(f->a.bytes, held); /* still alive */
    assert_string_equal(mxr__answer_mx(ans, 0, tbuf).target, "mx.example.com");
    mxr__answer_unref(&f->a, ans);
    assert_int_equal(f->a.bytes, 0);
    mxr__answer_unref(&f->a, NULL); /* harmless */

    /* an error answer */
    ans = mxr__answer_error(&f->a, MXR__DNS_TIMEOUT, MXR__TYPE_AAAA, 7);
    assert_non_null(ans);
    assert_int_equal(ans->refs, 1);
    assert_int_equal(ans->rcode, MXR__DNS_TIMEOUT);
    assert_int_equal(ans->qtype, MXR__TYPE_AAAA);
    assert_int_equal(ans->ttl, 7);
    assert_int_equal(ans->count, 0);
    assert_true(mxr__answer_bytes(ans) > 0);
    mxr__answer_ref(ans);
    mxr__answer_unref(&f->a, ans);
    mxr__answer_unref(&f->a, ans);
    assert_int_equal(f->a.bytes, 0);
}

/* Bigger answers account for more bytes (the cache relies on it). */
static void test_bytes_grow_with_records(void **state)
{
    fixture *f = *state;
    ldns_pkt *p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx.example.com.");
    mxr__answer *one = parse(f, p, "example.com", MXR__TYPE_MX);
    p = response("example.com", MXR__TYPE_MX);
    answer_rr(p, "example.com. 300 IN MX 10 mx1.example.com.");
    answer_rr(p, "example.com. 300 IN MX 20 mx2.example.com.");
    answer_rr(p, "example.com. 300 IN MX 30 mx3.example.com.");
    mxr__answer *three = parse(f, p, "example.com", MXR__TYPE_MX);
    assert_true(mxr__answer_bytes(three) > mxr__answer_bytes(one));
    done(f, one);
    done(f, three);
}

static void test_allocation_failures(void **state)
{
    fixture *f = *state;
    size_t len;
    uint8_t *wire = to_wire(rich_mx(), &len);
    for (long n = 1;; n++) {
        mxr_test_alloc ta = {.fail_at = n};
        mxr__alloc a;
        mxr__alloc_init(&a, mxr_test_alloc_fn, &ta);
        mxr__answer *ans =
            mxr__answer_parse(&a, wire, len, "example.com", MXR__TYPE_MX, 64);
        if (ans) {
            /* complete answers only: never a half-parsed one */
            assert_int_equal(ans->rcode, MXR__DNS_OK);
            assert_int_equal(ans->count, 3);
            mxr__answer_unref(&a, ans);
        }
        assert_int_equal(a.bytes, 0);
        assert_int_equal(ta.live, 0);
        if (ta.calls < n) { /* the failure was never reached */
            assert_non_null(ans);
            break;
        }
    }
    free(wire);
    (void)f;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, heap_setup, heap_teardown)
    const struct CMUnitTest tests[] = {
        T(test_mx_three_records),
        T(test_keys_and_rekeyed_copies),
        T(test_blocks_are_compact),
        T(test_mx_targets_kept_against_the_question),
        T(test_mx_root_target),
        T(test_mx_extreme_prefs),
        T(test_question_case_insensitive),
        T(test_a_records),
        T(test_aaaa_records),
        T(test_cname_chain),
        T(test_cname_chain_limit),
        T(test_cname_loop),
        T(test_cname_dangling),
        T(test_nodata_soa_ttl),
        T(test_nxdomain),
        T(test_error_rcodes),
        T(test_rcode_classes),
        T(test_question_mismatch),
        T(test_flags),
        T(test_truncated_bytes),
        T(test_uncounted_bytes),
        T(test_ttl_top_bit),
        T(test_random_mutations),
        T(test_max_records),
        T(test_max_records_keeps_most_preferred),
        T(test_wrong_type_owner_class_ignored),
        T(test_bad_rdata_length),
        T(test_refcounting),
        T(test_bytes_grow_with_records),
        T(test_allocation_failures),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
