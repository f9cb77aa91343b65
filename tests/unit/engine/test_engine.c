/* test_engine.c -- the engine through the public API (mxroute.h): options,
 * the callback contract, routing the rules.test cases offline, the caches,
 * coalescing, the in-flight window, allocation failures, and the c-ares
 * backend against UDP ports on loopback that the test owns.
 *
 * The zone backend answers offline and an injected clock stands for time,
 * so nothing here sleeps on a TTL. Every engine uses a counting allocator:
 * once the engine is destroyed and the plans freed, nothing is left.
 *
 * A repro that could corrupt memory runs in a child process. */
#include "support.h"
#include "base/enums.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ fixture */

typedef struct fixture {
    mxr_options *o;
    mxr_engine *e;
    uint64_t now; /* the injected clock, ms */
    mxr_test_alloc ta;
} fixture;

static uint64_t fake_clock(void *ud)
{
    return *(const uint64_t *)ud;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || mxr_options_new(&f->o) != MXR_OK) {
        free(f);
        return -1;
    }
    f->now = 1000000;
    mxr_options_set_clock(f->o, fake_clock, &f->now);
    mxr_options_set_allocator(f->o, mxr_test_alloc_fn, &f->ta);
    *state = f;
    return 0;
}

/* Every test ends here: the engine's memory all went back. */
static int teardown(void **state)
{
    fixture *f = *state;
    mxr_engine_destroy(f->e);
    mxr_options_free(f->o);
    assert_int_equal(f->ta.live, 0);
    free(f);
    return 0;
}

static const char *rules_zone(void)
{
    return mxr_test_source_path("tests/zones/rules.test.zone");
}

static void use_rules(fixture *f)
{
    assert_int_equal(mxr_options_add_zone_file(f->o, rules_zone()), MXR_OK);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_SEED, 1), MXR_OK);
}

static void set_opt(fixture *f, mxr_option opt, int64_t v)
{
    assert_int_equal(mxr_options_set(f->o, opt, v), MXR_OK);
}

static mxr_engine *start(fixture *f)
{
    mxr_status st = mxr_engine_new(f->o, &f->e);
    if (st != MXR_OK)
        fail_msg("mxr_engine_new: %s: %s", mxr_strerror(st),
                 mxr_options_errmsg(f->o));
    return f->e;
}

static mxr_engine *start_rules(fixture *f)
{
    use_rules(f);
    return start(f);
}

static mxr_plan *route_sync_ok(mxr_engine *e, const char *input)
{
    mxr_plan *p = NULL;
    mxr_status st = mxr_route_sync(e, input, &p);
    if (st != MXR_OK)
        fail_msg("route %s: %s (%s)", input, mxr_strerror(st),
                 mxr_engine_errmsg(e));
    assert_non_null(p);
    return p;
}

static mxr_stats stats_of(const mxr_engine *e)
{
    mxr_stats s;
    mxr_engine_stats(e, &s);
    return s;
}

/* "host1,host2,..." */
static const char *order_of(const mxr_plan *p, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < p->ncandidates; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? "," : "",
                         p->candidates[i].host);
        assert_true(n >= 0 && (size_t)n < len - used);
        used += (size_t)n;
    }
    return buf;
}

static void assert_order(const mxr_plan *p, const char *want)
{
    char buf[4096];
    assert_string_equal(order_of(p, buf, sizeof buf), want);
}

static const mxr_candidate *candidate(const mxr_plan *p, const char *host)
{
    for (size_t i = 0; i < p->ncandidates; i++)
        if (strcmp(p->candidates[i].host, host) == 0)
            return &p->candidates[i];
    fail_msg("no candidate %s", host);
    return NULL;
}

static const char *addr_text(const mxr_addr *a, char *buf)
{
    assert_non_null(mxr_addr_format(a, buf, MXR_ADDR_STRLEN));
    return buf;
}

static size_t count_skipped(const mxr_plan *p, mxr_reason why)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nskipped; i++)
        n += p->skipped[i].reason == why;
    return n;
}

/* Two plans name the same hosts with the same addresses, in order. */
static void assert_same_candidates(const mxr_plan *a, const mxr_plan *b)
{
    assert_int_equal(a->result, b->result);
    assert_int_equal(a->ncandidates, b->ncandidates);
    for (size_t i = 0; i < a->ncandidates; i++) {
        const mxr_candidate *x = &a->candidates[i], *y = &b->candidates[i];
        assert_string_equal(x->host, y->host);
        assert_int_equal(x->preference, y->preference);
        assert_int_equal(x->naddrs, y->naddrs);
        assert_memory_equal(x->addrs, y->addrs, x->naddrs * sizeof *x->addrs);
    }
}

/* ------------------------------------------------- callback recording */

typedef struct rec {
    int fired;
    mxr_status status;
    mxr_plan *plan;
} rec;

static void on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    rec *r = arg;
    r->fired++;
    r->status = st;
    mxr_plan_free(r->plan); /* a second firing must not leak too */
    r->plan = plan;
}

static void rec_clear(rec *r)
{
    mxr_plan_free(r->plan);
    memset(r, 0, sizeof *r);
}

/* -------------------------------------------------------- zone texts */

/* A wildcard zone: any name under w.test has one MX. */
static const char *W_ZONE = "$ORIGIN w.test.\n"
                            "$TTL 300\n"
                            "@ SOA ns hostmaster 1 3600 600 86400 300\n"
                            "@ NS ns\n"
                            "ns A 192.0.2.53\n"
                            "* MX 10 mx.w.test.\n"
                            "mx A 192.0.2.25\n";

/* =================================================================== */
/* options                                                              */
/* =================================================================== */

static void test_options_defaults(void **state)
{
    fixture *f = *state;
    static const struct {
        mxr_option opt;
        int64_t def;
    } defaults[] = {
        {MXR_OPT_TIMEOUT_MS, 2000},
        {MXR_OPT_TRIES, 2},
        {MXR_OPT_FAMILY, MXR_FAMILY_ANY},
        {MXR_OPT_SEED, -1},
        {MXR_OPT_ALLOW_LOOPBACK, 0},
        {MXR_OPT_DENY_PRIVATE, 0},
        {MXR_OPT_PORT, 25},
        {MXR_OPT_MAX_HOSTS, 16},
        {MXR_OPT_MAX_ADDRS_PER_HOST, 8},
        {MXR_OPT_MAX_ADDRS_TOTAL, 32},
        {MXR_OPT_MAX_MX_RECORDS, 64},
        {MXR_OPT_CACHE_MAX_BYTES, 64 << 20},
        {MXR_OPT_TTL_MIN, 5},
        {MXR_OPT_TTL_MAX, 86400},
        {MXR_OPT_NEG_TTL_MAX, 3600},
        {MXR_OPT_TEMPFAIL_TTL, 5},
        {MXR_OPT_MAX_INFLIGHT, 100},
        {MXR_OPT_MAX_PENDING, 1000000},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        assert_int_equal(mxr_options_get(f->o, defaults[i].opt),
                         defaults[i].def);
    assert_int_equal(mxr_options_get(f->o, MXR__OPT_N), -1);
    assert_int_equal(mxr_options_get(NULL, MXR_OPT_PORT), -1);
    assert_int_equal(mxr_options_set(f->o, MXR__OPT_N, 1), MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, (mxr_option)-1, 1), MXR_EINVAL);
    assert_int_equal(mxr_options_set(NULL, MXR_OPT_PORT, 1), MXR_EINVAL);
    assert_int_equal(mxr_options_new(NULL), MXR_EINVAL);
    mxr_options_free(NULL);
}

static void test_options_ranges(void **state)
{
    fixture *f = *state;
    /* the ranges the header documents, and the obvious ones */
    static const struct {
        mxr_option opt;
        int64_t min, max;
    } ranges[] = {
        {MXR_OPT_TIMEOUT_MS, 10, 60000},
        {MXR_OPT_TRIES, 1, 10},
        {MXR_OPT_FAMILY, 0, 4},
        {MXR_OPT_ALLOW_LOOPBACK, 0, 1},
        {MXR_OPT_DENY_PRIVATE, 0, 1},
        {MXR_OPT_PORT, 1, 65535},
        {MXR_OPT_MAX_HOSTS, 1, 1000},
        {MXR_OPT_MAX_ADDRS_PER_HOST, 1, 100},
        {MXR_OPT_MAX_ADDRS_TOTAL, 1, 10000},
        {MXR_OPT_MAX_MX_RECORDS, 1, 10000},
        {MXR_OPT_MAX_INFLIGHT, 1, 100000},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        mxr_option opt = ranges[i].opt;
        int64_t before = mxr_options_get(f->o, opt);
        assert_int_equal(mxr_options_set(f->o, opt, ranges[i].min - 1),
                         MXR_EINVAL);
        assert_true(strlen(mxr_options_errmsg(f->o)) > 0);
        assert_int_equal(mxr_options_set(f->o, opt, ranges[i].max + 1),
                         MXR_EINVAL);
        assert_int_equal(mxr_options_get(f->o, opt), before); /* unchanged */
        assert_int_equal(mxr_options_set(f->o, opt, ranges[i].min), MXR_OK);
        assert_int_equal(mxr_options_get(f->o, opt), ranges[i].min);
        assert_int_equal(mxr_options_set(f->o, opt, ranges[i].max), MXR_OK);
        assert_int_equal(mxr_options_get(f->o, opt), ranges[i].max);
    }
    /* the open-ended ones */
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_SEED, -2), MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_SEED, INT64_MAX), MXR_OK);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_CACHE_MAX_BYTES, -1),
                     MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_CACHE_MAX_BYTES, 0), MXR_OK);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_TTL_MIN, -1), MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_MAX_PENDING, 0), MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_PORT, INT64_MIN),
                     MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, MXR_OPT_PORT, INT64_MAX),
                     MXR_EINVAL);
}

static void test_options_servers(void **state)
{
    fixture *f = *state;
    static const char *good[] = {
        "127.0.0.1", "127.0.0.1:5353", "[::1]:53",           "::1",
        "[::1]",     "192.0.2.1:1",    "[2001:db8::1]:65535"};
    static const char *bad[] = {"x",
                                "1.2.3.4:0",
                                "1.2.3.4:99999",
                                "[::1",
                                "",
                                "1.2.3.4:",
                                "[::1]:",
                                "[::1]x",
                                "host.example:53",
                                "1.2.3:53",
                                "[1.2.3.4.5]",
                                "1.2.3.4:53x"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mxr_status st = mxr_options_add_server(f->o, good[i]);
        if (st != MXR_OK)
            fail_msg("server '%s' refused: %s", good[i],
                     mxr_options_errmsg(f->o));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxr_status st = mxr_options_add_server(f->o, bad[i]);
        if (st != MXR_ESERVER)
            fail_msg("server '%s' accepted (%d)", bad[i], (int)st);
        assert_non_null(strstr(mxr_options_errmsg(f->o), bad[i]));
    }
    assert_int_equal(mxr_options_add_server(f->o, NULL), MXR_EINVAL);
}

/* Every accepted form makes an engine (c-ares takes the list). */
static void test_options_servers_engine(void **state)
{
    fixture *f = *state;
    static const char *forms[] = {"127.0.0.1", "127.0.0.1:5353", "[::1]:53",
                                  "[::1]", "[2001:db8::1]:65535"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        assert_int_equal(mxr_options_add_server(f->o, forms[i]), MXR_OK);
    start(f);
}

/* A bare IPv6 address ("::1") is accepted by mxr_options_add_server, so
 * mxr_engine_new must take it too (c-ares 1.18 wants "[IPv6]:port"). */
static void test_options_bare_ipv6_server(void **state)
{
    fixture *f = *state;
    assert_int_equal(mxr_options_add_server(f->o, "::1"), MXR_OK);
    assert_int_equal(mxr_options_add_server(f->o, "2001:db8::53"), MXR_OK);
    mxr_status st = mxr_engine_new(f->o, &f->e);
    if (st != MXR_OK)
        fail_msg("add_server(\"::1\") accepted, then mxr_engine_new: %s: %s",
                 mxr_strerror(st), mxr_options_errmsg(f->o));
}

static void test_options_zone_syntax_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(mxr_options_add_zone_text(f->o, "broken.zone",
                                               "$ORIGIN b.test.\n"
                                               "$TTL 300\n"
                                               "@ SOA ns hm 1 2 3 4 5\n"
                                               "@ NS ns\n"
                                               "ns A 192.0.2.1\n"
                                               "mx MX ten mx\n"),
                     MXR_OK);
    mxr_engine *e = NULL;
    assert_int_equal(mxr_engine_new(f->o, &e), MXR_EZONE);
    assert_null(e);
    const char *msg = mxr_options_errmsg(f->o);
    assert_non_null(strstr(msg, "broken.zone"));
    assert_non_null(strstr(msg, ":6"));
}

/* Zone text from third parties (src/dns/zone_read.c): what ldns alone got
 * wrong is refused or bounded with a message naming the line. */
static void expect_zone_error(fixture *f, const char *text, const char *msg)
{
    mxr_engine *e = NULL;
    assert_int_equal(mxr_options_add_zone_text(f->o, "bad.zone", text), MXR_OK);
    assert_int_equal(mxr_engine_new(f->o, &e), MXR_EZONE);
    assert_null(e);
    if (!strstr(mxr_options_errmsg(f->o), msg))
        fail_msg("'%s' lacks '%s'", mxr_options_errmsg(f->o), msg);
}

/* A second SOA followed by records without TTL: ldns 1.8.3 read a freed
 * record there (found by tests/fuzz/fuzz_zone.c). */
static void test_options_zone_second_soa(void **state)
{
    expect_zone_error(*state,
                      " SOA n h 1 0 0 0 0\n SOA s r 1 0 6 6 0\n"
                      " SOA s h 1 8 0 8 0\n",
                      "bad.zone:2: a second SOA record");
}

static char *rrset_zone(size_t records)
{
    size_t cap = 100 + records * 32, len = 0;
    char *z = malloc(cap);
    assert_non_null(z);
    len += (size_t)snprintf(z, cap,
                            "$ORIGIN big.test.\n@ SOA ns hm 1 2 3 4 5\n"
                            "@ MX 10 mx\n");
    for (size_t i = 0; i < records; i++)
        len += (size_t)snprintf(z + len, cap - len, "mx A 10.0.%zu.%zu\n",
                                i / 250, i % 250);
    return z;
}

/* An RRset is a list ldns walks on every insertion: it is bounded, so a
 * zone with 300,000 records at one name fails at once instead of
 * loading for hours. */
static void test_options_zone_rrset_bound(void **state)
{
    fixture *f = *state;
    char *z = rrset_zone(1000);
    assert_int_equal(mxr_options_add_zone_text(f->o, "big.zone", z), MXR_OK);
    free(z);
    mxr_plan *p = route_sync_ok(start(f), "big.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    mxr_plan_free(p);
    mxr_engine_destroy(f->e);
    f->e = NULL;
    mxr_options_free(f->o);
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    z = rrset_zone(1001);
    expect_zone_error(f, z, "bad.zone:1004: more than 1000 records");
    free(z);
}

/* Duplicates are dropped (and freed), DNSSEC records skipped; TTLs follow
 * $TTL, else the last TTL stated (RFC 2308 4, RFC 1035 5.1). */
static void test_options_zone_reading(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        mxr_options_add_zone_text(
            f->o, "a",
            "$ORIGIN a.test.\n@ 120 SOA ns hm 1 2 3 4 5\n@ MX 10 mx\n"
            "@ MX 10 mx\nmx 300 A 192.0.2.1\nmx 300 A 192.0.2.1\n"
            "@ NSEC a.test. MX\n"
            "@ RRSIG MX 8 2 300 20300101000000 20200101000000 1 a.test. "
            "AAAA\n"),
        MXR_OK);
    assert_int_equal(mxr_options_add_zone_text(f->o, "b",
                                               "$ORIGIN b.test.\n$TTL 60\n"
                                               "@ 600 SOA ns hm 1 2 3 4 5\n"
                                               "@ MX 10 mx\nmx A 192.0.2.2\n"),
                     MXR_OK);
    set_opt(f, MXR_OPT_FAMILY, MXR_FAMILY_IPV4);
    mxr_engine *e = start(f);
    mxr_plan *p = route_sync_ok(e, "a.test");
    assert_int_equal(p->ncandidates, 1);
    assert_int_equal(p->candidates[0].naddrs, 1);
    assert_int_equal(p->ttl, 120); /* the MX inherits the SOA's 120 */
    mxr_plan_free(p);
    p = route_sync_ok(e, "b.test");
    assert_int_equal(p->ttl, 60);
    mxr_plan_free(p);
}

/* mxr_engine_new on a zone path; the message must contain want. An alarm
 * turns a hang (a read loop that never sees the end) into a failure. */
static void expect_zone_file_error(fixture *f, const char *path,
                                   const char *want)
{
    mxr_engine *e = NULL;
    assert_int_equal(mxr_options_add_zone_file(f->o, path), MXR_OK);
    alarm(10);
    mxr_status st = mxr_engine_new(f->o, &e);
    alarm(0);
    assert_int_equal(st, MXR_EZONE);
    assert_null(e);
    if (!strstr(mxr_options_errmsg(f->o), want))
        fail_msg("'%s' lacks '%s'", mxr_options_errmsg(f->o), want);
}

/* A directory opens, then every read fails with EISDIR: the reader looped
 * on !feof for ever (issue 15). */
static void test_options_zone_directory(void **state)
{
    char want[600];
    const char *dir = mxr_test_source_path("tests/zones");
    snprintf(want, sizeof want, "%s: cannot be read: Is a directory", dir);
    expect_zone_file_error(*state, dir, want);
}

/* A file with NUL bytes: ldns drops them without a word, and random bytes
 * were reported at line 0. The line of the first such byte is named. */
static void test_options_zone_binary(void **state)
{
    char path[] = "/tmp/mxr-zone-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "$ORIGIN n.test.\n@ SOA ns hm 1 2 3 4 5\n"
                               "@ MX 10 m\0x\n";
    assert_int_equal(write(fd, text, sizeof text - 1), sizeof text - 1);
    close(fd);
    char want[100];
    snprintf(want, sizeof want, "%s:3: a NUL or control byte", path);
    fixture *f = *state;
    expect_zone_file_error(f, path, want);
    unlink(path);
    mxr_options_free(f->o);
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    expect_zone_error(f, "$ORIGIN n.test.\n\x01\x02\n",
                      "bad.zone:2: a NUL or control byte");
}

/* ldns takes a '(' still open at the end of the file as closed; '(' in
 * comments and strings do not count, as in ldns. */
static void test_options_zone_parentheses(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        mxr_options_add_zone_text(f->o, "p",
                                  "$ORIGIN p.test.\n@ SOA ns hm ( 1 2 ; (\n"
                                  "  3 4 5 )\n@ TXT \"a ( b\" \\( \n"
                                  "@ MX 10 mx\nmx A 192.0.2.1\n"),
        MXR_OK);
    mxr_plan *p = route_sync_ok(start(*state), "p.test");
    assert_int_equal(p->ncandidates, 1);
    mxr_plan_free(p);
    mxr_engine_destroy(f->e);
    f->e = NULL;
    mxr_options_free(f->o);
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    expect_zone_error(f,
                      "$ORIGIN p.test.\n\n@ SOA ns hm ( 1 2 3 4 5\n"
                      "@ MX 10 mx\n",
                      "bad.zone:3: this '(' is not closed before the end");
}

/* ldns counts the blank and comment lines after a record into it: errors
 * pointed below the record. */
static void test_options_zone_error_line(void **state)
{
    expect_zone_error(*state,
                      "$ORIGIN l.test.\n@ SOA ns hm 1 2 3 4 5\n\n\n; c\n"
                      "\n@ MX ten mx\n\n\nmx A 192.0.2.1\n",
                      "bad.zone:7: ");
}

/* Which file lacks its SOA, and which apex is loaded twice, from where. */
static void test_options_zone_apex_errors(void **state)
{
    fixture *f = *state;
    expect_zone_error(f, "", "bad.zone: no records: a zone file holds one");
    mxr_options_free(f->o);
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    expect_zone_error(f, "$ORIGIN n.test.\nns A 192.0.2.1\n",
                      "bad.zone: no SOA record");
    mxr_options_free(f->o);
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    assert_int_equal(mxr_options_add_zone_text(f->o, "w1", W_ZONE), MXR_OK);
    expect_zone_error(f, W_ZONE,
                      "bad.zone: zone w.test. is loaded twice (also from w1)");
}

static void test_options_zone_errors(void **state)
{
    fixture *f = *state;
    mxr_engine *e = NULL;
    /* a file that is not there */
    assert_int_equal(
        mxr_options_add_zone_file(f->o, "/nonexistent/mxroute.zone"), MXR_OK);
    assert_int_equal(mxr_engine_new(f->o, &e), MXR_EZONE);
    assert_null(e);
    assert_non_null(strstr(mxr_options_errmsg(f->o), "/nonexistent/"));
    mxr_options_free(f->o);

    /* no SOA */
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    mxr_options_set_allocator(f->o, mxr_test_alloc_fn, &f->ta);
    assert_int_equal(mxr_options_add_zone_text(
                         f->o, "nosoa", "$ORIGIN n.test.\nns A 192.0.2.1\n"),
                     MXR_OK);
    assert_int_equal(mxr_engine_new(f->o, &e), MXR_EZONE);
    assert_non_null(strstr(mxr_options_errmsg(f->o), "nosoa"));
    mxr_options_free(f->o);

    /* the same apex twice */
    assert_int_equal(mxr_options_new(&f->o), MXR_OK);
    mxr_options_set_allocator(f->o, mxr_test_alloc_fn, &f->ta);
    assert_int_equal(mxr_options_add_zone_text(f->o, "w1", W_ZONE), MXR_OK);
    assert_int_equal(mxr_options_add_zone_text(f->o, "w2", W_ZONE), MXR_OK);
    assert_int_equal(mxr_engine_new(f->o, &e), MXR_EZONE);
    assert_non_null(strstr(mxr_options_errmsg(f->o), "w2"));

    assert_int_equal(mxr_options_add_zone_text(f->o, "x", NULL), MXR_EINVAL);
    assert_int_equal(mxr_options_add_zone_file(f->o, NULL), MXR_EINVAL);
    assert_int_equal(mxr_engine_new(NULL, &e), MXR_EINVAL);
    assert_int_equal(mxr_engine_new(f->o, NULL), MXR_EINVAL);
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(mxr_version(), MXR_VERSION_HEX);
    assert_string_equal(mxr_version_string(), MXR_VERSION_STRING);
    assert_non_null(mxr_strerror(MXR_EDESTROYED));
}

/* =================================================================== */
/* lifetimes and size-versioned structs                                 */
/* =================================================================== */

/* A plan is one self-contained block: route, destroy the engine, and the
 * plan still reads whole (the ASan build sees any read of the engine's
 * freed memory) and frees through the allocator the engine was given. A
 * plan from the plan cache (the second route) too. */
static void test_plan_outlives_engine(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *first = route_sync_ok(e, "plain.rules.test");
    mxr_plan *cached = route_sync_ok(e, "user@plain.rules.test");
    assert_true(stats_of(e).plan_hits >= 1);
    mxr_engine_destroy(e);
    f->e = NULL;
    assert_true(f->ta.live > 0); /* the plans, in the caller's allocator */

    mxr_plan *plans[] = {first, cached};
    const char *inputs[] = {"plain.rules.test", "user@plain.rules.test"};
    for (size_t i = 0; i < 2; i++) {
        mxr_plan *p = plans[i];
        assert_string_equal(p->input, inputs[i]);
        assert_string_equal(p->domain, "plain.rules.test");
        assert_int_equal(p->result, MXR_RESULT_OK);
        assert_order(p, "mx1.plain.rules.test,mx2.plain.rules.test");
        char buf[MXR_ADDR_STRLEN];
        const mxr_candidate *c = &p->candidates[0];
        assert_int_equal(c->naddrs, 2);
        bool v4 = false;
        for (size_t k = 0; k < c->naddrs; k++) {
            assert_non_null(mxr_addr_format(&c->addrs[k], buf, sizeof buf));
            v4 = v4 || strcmp(buf, "192.0.2.11") == 0;
        }
        assert_true(v4);
        assert_int_equal(p->candidates[1].preference, 20);
        mxr_plan_free(p);
    }
    assert_int_equal(f->ta.live, 0);
}

/* Sized calls write into a buffer of CANARY bytes. After one for size
 * bytes of which filled hold data: zeros from filled to size, and not a
 * byte changed from size to the end (total). */
#define CANARY 0xa5
static void assert_sized_write(const unsigned char *buf, size_t total,
                               size_t size, size_t filled)
{
    for (size_t i = filled; i < size; i++)
        if (buf[i] != 0)
            fail_msg("byte %zu of %zu: %#x, want 0", i, size, buf[i]);
    for (size_t i = size; i < total; i++)
        if (buf[i] != CANARY)
            fail_msg("byte %zu past the caller's %zu changed", i, size);
}

/* mxr_engine_stats_sized writes exactly size bytes: the statistics the
 * library has (as many as fit), then zeros; never past size, whether the
 * caller's struct is the library's, older (smaller) or newer (larger). */
/* Outcomes reported outside an attempt reach the host-health memory:
 * the refused host is down and goes last in the next attempt's plan;
 * a later success clears it. */
static void test_report_and_health(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_health h;
    memset(&h, 0xff, sizeof h);
    assert_int_equal(mxr_engine_health(e, "mx1.plain.rules.test", NULL, &h),
                     MXR_OK);
    assert_false(h.down);
    assert_int_equal(h.failures, 0);
    mxr_outcome refused = {MXR_STAGE_CONNECT, MXR_CLASS_REFUSED, 0, NULL,
                           "refused"};
    /* any spelling of the name: case and a trailing dot */
    assert_int_equal(
        mxr_engine_report(e, "MX1.plain.rules.test.", NULL, &refused), MXR_OK);
    assert_int_equal(mxr_engine_health(e, "mx1.plain.rules.test", NULL, &h),
                     MXR_OK);
    assert_true(h.down);
    assert_int_equal(h.failures, 1);
    assert_true(h.down_until_ms > h.last_failure_ms);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    const char *rcpt[] = {"a@plain.rules.test"};
    mxr_message m = {
        .sender = "s@x.test", .recipients = rcpt, .nrecipients = 1};
    mxr_attempt *a;
    assert_int_equal(mxr_attempt_new(e, p, &m, &a), MXR_OK);
    const mxr_plan *ordered = mxr_attempt_plan(a);
    assert_string_equal(ordered->candidates[0].host, "mx2.plain.rules.test");
    assert_string_equal(ordered->candidates[1].host, "mx1.plain.rules.test");
    assert_true(ordered->candidates[1].notes & MXR_NOTE_DOWN);
    mxr_attempt_free(a);
    mxr_plan_free(p);
    mxr_outcome ok = {MXR_STAGE_DOT, MXR_CLASS_OK, 250, NULL, "ok"};
    assert_int_equal(mxr_engine_report(e, "mx1.plain.rules.test", NULL, &ok),
                     MXR_OK);
    assert_int_equal(mxr_engine_health(e, "mx1.plain.rules.test", NULL, &h),
                     MXR_OK);
    assert_false(h.down);
    assert_int_equal(h.failures, 0);
    /* misuse */
    assert_int_equal(mxr_engine_report(e, "bad..name", NULL, &refused),
                     MXR_EBADNAME);
    assert_int_equal(mxr_engine_report(e, NULL, NULL, &refused), MXR_EINVAL);
    assert_int_equal(mxr_engine_report(e, "x.test", NULL, NULL), MXR_EINVAL);
    mxr_addr ad;
    assert_true(mxr_addr_parse("192.0.2.11", &ad));
    assert_int_equal(mxr_engine_health(e, "x.test", &ad, &h), MXR_EINVAL);
    /* an address alone, and a smaller (older) struct written exactly */
    assert_int_equal(mxr_engine_report(e, NULL, &ad, &refused), MXR_OK);
    unsigned char buf[sizeof(mxr_health) + 8];
    memset(buf, 0xAB, sizeof buf);
    assert_int_equal(
        mxr_engine_health_sized(e, NULL, &ad, (mxr_health *)buf, sizeof(bool)),
        MXR_OK);
    assert_int_equal(buf[0], 1);               /* down */
    assert_int_equal(buf[sizeof(bool)], 0xAB); /* nothing past it */
}

/* A plan handed to another deliverer is ordered as an attempt would
 * order it: the refused host last, marked down; a plan routed before the
 * report changes only when ordered. */
static void test_order_by_health(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    assert_int_equal(mxr_engine_order_by_health(e, p), MXR_OK);
    assert_string_equal(p->candidates[0].host, "mx1.plain.rules.test");
    assert_false(p->candidates[0].notes & MXR_NOTE_DOWN);
    mxr_outcome refused = {MXR_STAGE_CONNECT, MXR_CLASS_REFUSED, 0, NULL,
                           "refused"};
    assert_int_equal(
        mxr_engine_report(e, "mx1.plain.rules.test", NULL, &refused), MXR_OK);
    assert_string_equal(p->candidates[0].host, "mx1.plain.rules.test");
    assert_int_equal(mxr_engine_order_by_health(e, p), MXR_OK);
    assert_string_equal(p->candidates[0].host, "mx2.plain.rules.test");
    assert_string_equal(p->candidates[1].host, "mx1.plain.rules.test");
    assert_true(p->candidates[1].notes & MXR_NOTE_DOWN);
    mxr_plan_free(p);
    assert_int_equal(mxr_engine_order_by_health(e, NULL), MXR_EINVAL);
    assert_int_equal(mxr_engine_order_by_health(NULL, NULL), MXR_EINVAL);
}

static void test_stats_sized(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan_free(route_sync_ok(e, "plain.rules.test"));
    const size_t lib = sizeof(mxr_stats);
    unsigned char buf[sizeof(mxr_stats) + 64];

    /* The macro: the size this program was compiled with. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_engine_stats(e, (mxr_stats *)(void *)buf), lib);
    assert_sized_write(buf, sizeof buf, lib, lib);
    mxr_stats s;
    memcpy(&s, buf, sizeof s);
    assert_int_equal(s.routes, 1);
    assert_true(s.queries_sent > 0);

    /* An older caller: its struct ends before policy_calls. */
    size_t old = offsetof(mxr_stats, policy_calls);
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_engine_stats_sized(e, (mxr_stats *)(void *)buf, old),
                     old);
    assert_sized_write(buf, sizeof buf, old, old);
    memcpy(&s, buf, old);
    assert_int_equal(s.routes, 1);

    /* A newer caller: 32 bytes the library does not know are zeroed, and
     * nothing after them is touched. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(
        mxr_engine_stats_sized(e, (mxr_stats *)(void *)buf, lib + 32), lib);
    assert_sized_write(buf, sizeof buf, lib + 32, lib);

    /* Nothing to fill, or nowhere to. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_engine_stats_sized(e, (mxr_stats *)(void *)buf, 0), 0);
    assert_sized_write(buf, sizeof buf, 0, 0);
    assert_int_equal(mxr_engine_stats_sized(e, NULL, lib), 0);
    assert_int_equal(mxr_engine_stats_sized(NULL, &s, lib), 0);
}

/* mxr_attempt_next_sized keeps to the caller's size the same way, and
 * writes nothing when it returns an error. */
static void test_hop_sized(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    const char *rcpts[] = {"a@plain.rules.test"};
    mxr_message msg = {
        .sender = "s@example.org", .recipients = rcpts, .nrecipients = 1};
    mxr_attempt *a;
    assert_int_equal(mxr_attempt_new(e, p, &msg, &a), MXR_OK);
    mxr_plan_free(p);
    const size_t lib = sizeof(mxr_hop);
    unsigned char buf[sizeof(mxr_hop) + 64];
    mxr_outcome refused = {.stage = MXR_STAGE_CONNECT,
                           .cls = MXR_CLASS_REFUSED};

    /* The macro, with canaries after the struct. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_attempt_next(a, (mxr_hop *)(void *)buf), MXR_OK);
    assert_sized_write(buf, sizeof buf, lib, lib);
    mxr_hop h;
    memcpy(&h, buf, sizeof h);
    assert_string_equal(h.host, "mx1.plain.rules.test");
    assert_int_equal(h.number, 1);
    mxr_attempt_outcome(a, &refused);

    /* An older caller whose hop ends before label. */
    size_t old = offsetof(mxr_hop, label);
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_attempt_next_sized(a, (mxr_hop *)(void *)buf, old),
                     MXR_OK);
    assert_sized_write(buf, sizeof buf, old, old);
    memcpy(&h, buf, old);
    assert_int_equal(h.number, 2);
    mxr_attempt_outcome(a, &refused);

    /* A newer caller: the tail is zeroed, nothing past it touched. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(
        mxr_attempt_next_sized(a, (mxr_hop *)(void *)buf, lib + 32), MXR_OK);
    assert_sized_write(buf, sizeof buf, lib + 32, lib);

    /* Errors write nothing: a session is open (ESTATE), size 0. */
    memset(buf, CANARY, sizeof buf);
    assert_int_equal(mxr_attempt_next_sized(a, (mxr_hop *)(void *)buf, lib),
                     MXR_ESTATE);
    assert_int_equal(mxr_attempt_next_sized(a, (mxr_hop *)(void *)buf, 0),
                     MXR_EINVAL);
    assert_sized_write(buf, sizeof buf, 0, 0);

    /* An RCPT reply of a class this library does not know is ignored:
     * the recipient can still be decided by a real reply. */
    mxr_outcome odd = {.stage = MXR_STAGE_RCPT, .cls = (mxr_class)10000};
    assert_int_equal(mxr_attempt_rcpt(a, 0, &odd), MXR_ACTION_CONTINUE);
    assert_int_equal(mxr_attempt_recipient(a, 0)->state, MXR_RCPT_PENDING);
    mxr_outcome no_user = {
        .stage = MXR_STAGE_RCPT, .cls = MXR_CLASS_5XX, .code = 550};
    assert_int_equal(mxr_attempt_rcpt(a, 0, &no_user), MXR_ACTION_BOUNCE);
    mxr_attempt_free(a);
}

/* Values past the end of a public enum (a newer header's) are refused or
 * named "unknown", never read out of a table. */
static void test_enums_out_of_range(void **state)
{
    fixture *f = *state;
    assert_int_equal(mxr_options_set(f->o, (mxr_option)-1, 1), MXR_EINVAL);
    assert_int_equal(mxr_options_set(f->o, (mxr_option)10000, 1), MXR_EINVAL);
    assert_int_equal(mxr_options_get(f->o, (mxr_option)10000), -1);
    assert_string_equal(mxr_reason_name((mxr_reason)10000), "unknown");
    assert_string_equal(mxr_result_name((mxr_result)10000), "unknown");
    assert_string_equal(mxr_source_name((mxr_source)10000), "unknown");
    assert_string_equal(mxr_family_name((mxr_family)10000), "unknown");
    assert_string_equal(mxr_tls_mode_name((mxr_tls_mode)10000), "unknown");
    assert_string_equal(mxr_stage_name((mxr_stage)10000), "unknown");
    assert_string_equal(mxr_class_name((mxr_class)10000), "unknown");
    assert_string_equal(mxr_action_name((mxr_action)10000), "unknown");
    assert_string_equal(mxr_rcpt_state_name((mxr_rcpt_state)10000), "unknown");
    assert_string_equal(mxr_addr_class_name((mxr_addr_class)10000), "unknown");
    assert_string_equal(mxr_strerror((mxr_status)10000), "unknown error");
    assert_false(mxr_class_is_connection((mxr_class)10000));
    mxr_rules *r;
    assert_int_equal(mxr_rules_new(&r), MXR_OK);
    assert_int_equal(mxr_rules_set(r, (mxr_rule)10000, 1), MXR_EINVAL);
    assert_int_equal(mxr_rules_get(r, (mxr_rule)10000), -1);
    assert_int_equal(mxr_rules_set_action(r, (mxr_stage)10000, MXR_CLASS_4XX,
                                          MXR_ACTION_DEFER),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, MXR_STAGE_MAIL, (mxr_class)-1,
                                          MXR_ACTION_DEFER),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, MXR_STAGE_MAIL, MXR_CLASS_4XX,
                                          (mxr_action)10000),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_action(r, (mxr_stage)10000, MXR_CLASS_4XX),
                     MXR_ACTION_NEXT_HOST);
    mxr_rules_free(r);
}

/* =================================================================== */
/* the callback contract                                                */
/* =================================================================== */

/* mxr_engine_run_once: one round at a time, control back between rounds,
 * the callback exactly once. */
static void test_run_once(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    rec r = {0};
    assert_int_equal(mxr_route(e, "tie.rules.test", on_route, &r), MXR_OK);
    int rounds = 0;
    while (!r.fired && rounds < 100) {
        assert_int_equal(mxr_engine_run_once(e, 1000), MXR_OK);
        rounds++;
    }
    assert_int_equal(r.fired, 1);
    assert_true(rounds >= 2); /* the MX answer, then the addresses */
    assert_int_equal(r.status, MXR_OK);
    assert_int_equal(mxr_engine_pending(e), 0);
    assert_int_equal(mxr_engine_run_once(e, 0), MXR_OK); /* idle: returns */
    assert_int_equal(r.fired, 1);
    assert_int_equal(mxr_engine_run_once(NULL, 0), MXR_EINVAL);
    rec_clear(&r);
}

/* mxr_route never calls back from inside itself, whatever path the
 * request takes; mxr_engine_run then fires each exactly once. */
static void test_contract_never_inside_route(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *warm = route_sync_ok(e, "plain.rules.test"); /* cached plan */
    mxr_plan_free(warm);
    warm = route_sync_ok(e, "unserved-all.rules.test"); /* cached MX only */
    mxr_plan_free(warm);

    static const char *inputs[] = {
        "tie.rules.test",          /* cold */
        "plain.rules.test",        /* a cached plan */
        "user@plain.rules.test",   /* the same, through an address */
        "unserved-all.rules.test", /* cached answers, no cached plan */
        "[192.0.2.1]",             /* an address literal */
        "nxdomain.rules.test",     /* negative */
        "fault-servfail.rules.test",
        "unserved.test",  /* outside every zone */
        "tie.rules.test", /* joins a query in flight */
    };
    enum { N = sizeof inputs / sizeof inputs[0] };
    rec r[N];
    memset(r, 0, sizeof r);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(mxr_route(e, inputs[i], on_route, &r[i]), MXR_OK);
        if (r[i].fired != 0)
            fail_msg("callback of %s fired inside mxr_route", inputs[i]);
    }
    assert_int_equal(mxr_engine_pending(e), N);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(r[i].fired, 0);
    assert_int_equal(mxr_engine_run(e, 10000), 0);
    assert_int_equal(mxr_engine_pending(e), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        assert_int_equal(r[i].status, MXR_OK);
        assert_non_null(r[i].plan);
        assert_string_equal(r[i].plan->input, inputs[i]);
    }
    assert_int_equal(r[1].plan->result, MXR_RESULT_OK);
    assert_int_equal(r[3].plan->result, MXR_RESULT_TEMPFAIL);
    assert_int_equal(r[4].plan->candidates[0].source, MXR_SOURCE_LITERAL);
    assert_int_equal(r[5].plan->reason, MXR_REASON_NXDOMAIN);
    assert_int_equal(r[6].plan->reason, MXR_REASON_SERVFAIL);
    assert_int_equal(r[7].plan->reason, MXR_REASON_REFUSED);
    /* nothing fires twice, later */
    mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    assert_int_equal(mxr_engine_run(e, 100), 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        rec_clear(&r[i]);
    }
}

static void test_contract_invalid_input(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    static const char *bad[] = {
        "",
        ".",
        "a..b",
        "-",
        "user@",
        "@example.com",
        "exa mple.com",
        "example.com\n",
        "\xff\xfe",
        "[300.1.1.1]",
        "[192.0.2.1",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
        "under_score.example",
    };
    rec r = {0};
    mxr_stats before = stats_of(e);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxr_status st = mxr_route(e, bad[i], on_route, &r);
        if (st != MXR_EBADNAME)
            fail_msg("'%s' gave %s", bad[i], mxr_strerror(st));
        assert_true(strlen(mxr_engine_errmsg(e)) > 0);
        static mxr_plan dummy;
        mxr_plan *p = &dummy; /* must be reset */
        assert_int_equal(mxr_route_sync(e, bad[i], &p), MXR_EBADNAME);
        assert_null(p);
    }
    assert_int_equal(mxr_engine_pending(e), 0);
    mxr_engine_run(e, 100);
    assert_int_equal(r.fired, 0);
    assert_int_equal(stats_of(e).queries_sent, before.queries_sent);
    /* other bad arguments */
    assert_int_equal(mxr_route(e, NULL, on_route, &r), MXR_EINVAL);
    assert_int_equal(mxr_route(e, "plain.rules.test", NULL, &r), MXR_EINVAL);
    assert_int_equal(mxr_route(NULL, "plain.rules.test", on_route, &r),
                     MXR_EINVAL);
    assert_int_equal(mxr_route_sync(e, "plain.rules.test", NULL), MXR_EINVAL);
    mxr_engine_run(e, 100);
    assert_int_equal(r.fired, 0);
}

static void test_contract_busy(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_MAX_PENDING, 2);
    mxr_engine *e = start_rules(f);
    rec r[3] = {{0}};
    assert_int_equal(mxr_route(e, "plain.rules.test", on_route, &r[0]), MXR_OK);
    assert_int_equal(mxr_route(e, "tie.rules.test", on_route, &r[1]), MXR_OK);
    assert_int_equal(mxr_route(e, "dual.rules.test", on_route, &r[2]),
                     MXR_EBUSY);
    assert_true(strlen(mxr_engine_errmsg(e)) > 0);
    assert_int_equal(mxr_engine_run(e, 10000), 0);
    assert_int_equal(r[0].fired, 1);
    assert_int_equal(r[1].fired, 1);
    assert_int_equal(r[2].fired, 0);
    /* room again */
    assert_int_equal(mxr_route(e, "dual.rules.test", on_route, &r[2]), MXR_OK);
    assert_int_equal(mxr_engine_run(e, 10000), 0);
    assert_int_equal(r[2].fired, 1);
    for (size_t i = 0; i < 3; i++)
        rec_clear(&r[i]);
}

/* Destroy before any mxr_engine_process: every request ends once. */
static void test_contract_destroy_zone_pending(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    static const char *inputs[] = {"plain.rules.test", "user@tie.rules.test",
                                   "[192.0.2.1]", "nxdomain.rules.test",
                                   "plain.rules.test"};
    enum { N = sizeof inputs / sizeof inputs[0] };
    rec r[N];
    memset(r, 0, sizeof r);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(mxr_route(e, inputs[i], on_route, &r[i]), MXR_OK);
    assert_int_equal(mxr_engine_pending(e), N);
    mxr_engine_destroy(e);
    f->e = NULL;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        assert_int_equal(r[i].status, MXR_EDESTROYED);
        assert_null(r[i].plan);
    }
}

/* Destroy with requests at every stage: a cached plan waiting to be handed
 * out, lookups half done, queries over the in-flight window. */
static void test_contract_destroy_zone_midway(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_MAX_INFLIGHT, 2);
    mxr_engine *e = start_rules(f);
    mxr_plan_free(route_sync_ok(e, "plain.rules.test"));
    static const char *inputs[] = {"plain.rules.test", "google.rules.test",
                                   "tiers.rules.test", "many.rules.test",
                                   "dual.rules.test",  "[IPv6:2001:db8::1]"};
    enum { N = sizeof inputs / sizeof inputs[0] };
    rec r[N];
    memset(r, 0, sizeof r);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(mxr_route(e, inputs[i], on_route, &r[i]), MXR_OK);
    /* some progress: MX answers in, target lookups started */
    mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    size_t pending = mxr_engine_pending(e);
    assert_true(pending > 0);
    size_t fired = 0;
    for (size_t i = 0; i < N; i++)
        fired += (size_t)r[i].fired;
    assert_int_equal(fired + pending, N);
    mxr_engine_destroy(e);
    f->e = NULL;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        if (r[i].status == MXR_OK)
            assert_non_null(r[i].plan);
        else
            assert_int_equal(r[i].status, MXR_EDESTROYED);
        rec_clear(&r[i]);
    }
}

/* A UDP socket on 127.0.0.1 that nobody reads: queries to it stay
 * pending. Returns the fd; *port is its port. */
static int silent_udp(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static void add_local_server(fixture *f, uint16_t port)
{
    char server[64];
    snprintf(server, sizeof server, "127.0.0.1:%u", port);
    assert_int_equal(mxr_options_add_server(f->o, server), MXR_OK);
}

typedef struct sock_log {
    int calls;
    int last_fd;
    int readable;
} sock_log;

static void on_sock(void *ud, int fd, int readable, int writable)
{
    sock_log *l = ud;
    l->calls++;
    l->last_fd = fd;
    l->readable = readable;
    (void)writable;
}

static void destroy_with_silent_server(fixture *f, int64_t max_inflight)
{
    uint16_t port;
    int fd = silent_udp(&port);
    sock_log slog = {0};
    add_local_server(f, port);
    set_opt(f, MXR_OPT_TIMEOUT_MS, 60000);
    set_opt(f, MXR_OPT_TRIES, 1);
    set_opt(f, MXR_OPT_MAX_INFLIGHT, max_inflight);
    mxr_options_set_sock_callback(f->o, on_sock, &slog);
    mxr_engine *e = start(f);
    static const char *inputs[] = {"a.example", "b.example",   "user@c.example",
                                   "a.example", "[192.0.2.1]", "d.example"};
    enum { N = sizeof inputs / sizeof inputs[0] };
    rec r[N];
    memset(r, 0, sizeof r);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(mxr_route(e, inputs[i], on_route, &r[i]), MXR_OK);
        assert_int_equal(r[i].fired, 0);
    }
    /* the event loop sees the socket and a timeout, nothing completes */
    mxr_sock socks[8];
    size_t n = mxr_engine_fds(e, socks, 8);
    assert_true(n >= 1);
    assert_true(socks[0].want & MXR_WANT_READ);
    assert_true(slog.calls >= 1);
    assert_int_equal(slog.readable, 1);
    mxr_engine_process(e, MXR_NOFD, MXR_NOFD); /* the literal completes */
    mxr_engine_process(e, socks[0].fd, MXR_NOFD);
    int t = mxr_engine_timeout(e);
    assert_true(t > 0 && t <= 60000);
    assert_int_equal(r[4].fired, 1);
    assert_int_equal(r[4].status, MXR_OK);
    assert_int_equal(mxr_engine_pending(e), N - 1);
    mxr_stats s = stats_of(e);
    assert_true(s.inflight <= (size_t)max_inflight);
    assert_true(s.inflight >= 1);

    mxr_engine_destroy(e);
    f->e = NULL;
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        if (i == 4)
            continue;
        assert_int_equal(r[i].status, MXR_EDESTROYED);
        assert_null(r[i].plan);
    }
    rec_clear(&r[4]);
    close(fd);
}

static void test_contract_destroy_ares_pending(void **state)
{
    destroy_with_silent_server(*state, 100);
}

/* Some queries still wait for room in the in-flight window. */
static void test_contract_destroy_ares_window(void **state)
{
    destroy_with_silent_server(*state, 1);
}

/* =================================================================== */
/* c-ares against ports on loopback                                     */
/* =================================================================== */

static void test_ares_timeout(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int fd = silent_udp(&port);
    add_local_server(f, port);
    set_opt(f, MXR_OPT_TIMEOUT_MS, 50);
    set_opt(f, MXR_OPT_TRIES, 1);
    mxr_engine *e = start(f);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    assert_int_equal(p->result, MXR_RESULT_TEMPFAIL);
    assert_int_equal(p->reason, MXR_REASON_TIMEOUT);
    assert_int_equal(p->ncandidates, 0);
    mxr_plan_free(p);
    /* every query sent to the silent port timed out */
    mxr_stats s = stats_of(e);
    assert_true(s.queries_sent >= 1);
    assert_int_equal(s.queries_timed_out, s.queries_sent);
    close(fd);
}

/* Driving the engine from our own poll loop, the way an embedder does. */
static void test_ares_closed_port_own_loop(void **state)
{
    fixture *f = *state;
    uint16_t port;
    int fd = silent_udp(&port);
    close(fd); /* now a closed port: ICMP port unreachable */
    add_local_server(f, port);
    set_opt(f, MXR_OPT_TIMEOUT_MS, 2000);
    set_opt(f, MXR_OPT_TRIES, 1);
    mxr_engine *e = start(f);
    rec r = {0};
    assert_int_equal(mxr_route(e, "plain.rules.test", on_route, &r), MXR_OK);
    for (int round = 0; round < 1000 && mxr_engine_pending(e) > 0; round++) {
        mxr_sock socks[16];
        struct pollfd pfd[16];
        size_t n = mxr_engine_fds(e, socks, 16);
        assert_true(n <= 16);
        for (size_t i = 0; i < n; i++) {
            pfd[i].fd = socks[i].fd;
            pfd[i].events =
                (short)((socks[i].want & MXR_WANT_READ ? POLLIN : 0) |
                        (socks[i].want & MXR_WANT_WRITE ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        int t = mxr_engine_timeout(e);
        assert_true(t >= 0); /* something is pending */
        int ready = poll(pfd, (nfds_t)n, t < 100 ? t : 100);
        if (ready <= 0) {
            mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (pfd[i].revents)
                mxr_engine_process(e, pfd[i].fd, MXR_NOFD);
    }
    assert_int_equal(mxr_engine_pending(e), 0);
    assert_int_equal(r.fired, 1);
    assert_int_equal(r.status, MXR_OK);
    assert_int_equal(r.plan->result, MXR_RESULT_TEMPFAIL);
    assert_true(r.plan->reason == MXR_REASON_NETWORK ||
                r.plan->reason == MXR_REASON_REFUSED);
    assert_int_equal(mxr_engine_timeout(e), -1); /* idle */
    rec_clear(&r);
}

/* =================================================================== */
/* routing the rules.test cases                                         */
/* =================================================================== */

static void test_route_plain(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    char a[MXR_ADDR_STRLEN];
    assert_string_equal(p->input, "plain.rules.test");
    assert_string_equal(p->domain, "plain.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_int_equal(p->reason, MXR_REASON_NONE);
    assert_false(p->implicit);
    assert_int_equal(p->ttl, 3600);
    assert_int_equal(p->ncandidates, 2);
    assert_int_equal(p->nskipped, 0);
    assert_order(p, "mx1.plain.rules.test,mx2.plain.rules.test");
    const mxr_candidate *c = &p->candidates[0];
    assert_int_equal(c->preference, 10);
    assert_int_equal(c->port, 25);
    assert_int_equal(c->source, MXR_SOURCE_MX);
    assert_int_equal(c->notes, 0);
    assert_int_equal(c->naddrs, 2);
    /* family "any": IPv6 first within a host */
    assert_string_equal(addr_text(&c->addrs[0], a), "2001:db8::11");
    assert_string_equal(addr_text(&c->addrs[1], a), "192.0.2.11");
    c = &p->candidates[1];
    assert_int_equal(c->preference, 20);
    assert_int_equal(c->naddrs, 2);
    assert_string_equal(addr_text(&c->addrs[1], a), "192.0.2.12");
    mxr_plan_free(p);

    /* the same domain through an address and odd spelling */
    p = route_sync_ok(e, "\"john doe\"@PLAIN.Rules.TEST.");
    assert_string_equal(p->input, "\"john doe\"@PLAIN.Rules.TEST.");
    assert_string_equal(p->domain, "plain.rules.test");
    assert_order(p, "mx1.plain.rules.test,mx2.plain.rules.test");
    mxr_plan_free(p);
}

static void test_route_port_and_family(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_PORT, 2525);
    set_opt(f, MXR_OPT_FAMILY, MXR_FAMILY_IPV4);
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "plain.rules.test");
    char a[MXR_ADDR_STRLEN];
    assert_int_equal(p->ncandidates, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(p->candidates[i].port, 2525);
        assert_int_equal(p->candidates[i].naddrs, 1);
        assert_int_equal(p->candidates[i].addrs[0].family, AF_INET);
    }
    assert_string_equal(addr_text(&p->candidates[0].addrs[0], a), "192.0.2.11");
    mxr_plan_free(p);
    /* no AAAA query was needed: 1 MX + 2 A */
    assert_int_equal(stats_of(e).queries_sent, 3);
}

static void test_route_nullmx(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    static const char *nulls[] = {"nullmx.rules.test", "nullmx-a.rules.test",
                                  "nullmx-pref10.rules.test",
                                  "user@nullmx.rules.test"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        mxr_plan *p = route_sync_ok(e, nulls[i]);
        assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
        assert_int_equal(p->reason, MXR_REASON_NULL_MX);
        assert_string_equal(mxr_reason_name(p->reason), "null-mx");
        assert_int_equal(p->ncandidates, 0);
        assert_false(p->implicit);
        mxr_plan_free(p);
    }
    /* a root target next to a real MX is skipped */
    mxr_plan *p = route_sync_ok(e, "nullmix.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_order(p, "mx.nullmix.rules.test");
    assert_int_equal(p->nskipped, 1);
    assert_int_equal(p->skipped[0].reason, MXR_REASON_NULL_MX_ENTRY);
    mxr_plan_free(p);
}

static void test_route_implicit(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    char a[MXR_ADDR_STRLEN];
    /* implicit.rules.test has an A record and no MX */
    mxr_plan *p = route_sync_ok(e, "implicit.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_true(p->implicit);
    assert_int_equal(p->ncandidates, 1);
    assert_string_equal(p->candidates[0].host, "implicit.rules.test");
    assert_int_equal(p->candidates[0].source, MXR_SOURCE_IMPLICIT);
    assert_int_equal(p->candidates[0].preference, 0);
    assert_int_equal(p->candidates[0].naddrs, 1);
    assert_string_equal(addr_text(&p->candidates[0].addrs[0], a), "192.0.2.62");
    mxr_plan_free(p);

    p = route_sync_ok(e, "implicit6.rules.test");
    assert_true(p->implicit);
    assert_string_equal(addr_text(&p->candidates[0].addrs[0], a),
                        "2001:db8::62");
    mxr_plan_free(p);

    /* exists, but neither MX nor address */
    p = route_sync_ok(e, "nomail.rules.test");
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    assert_int_equal(p->reason, MXR_REASON_NO_MAIL_HOST);
    assert_int_equal(p->ncandidates, 0);
    mxr_plan_free(p);
}

static void test_route_nxdomain(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "nxdomain.rules.test");
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    assert_int_equal(p->reason, MXR_REASON_NXDOMAIN);
    assert_int_equal(p->ncandidates, 0);
    /* negative TTL: min(SOA TTL 3600, SOA MINIMUM 300) */
    assert_int_equal(p->ttl, 300);
    mxr_plan_free(p);

    p = route_sync_ok(e, "deep.under.nxdomain.rules.test");
    assert_int_equal(p->reason, MXR_REASON_NXDOMAIN);
    mxr_plan_free(p);
}

static void test_route_failures(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    static const struct {
        const char *in;
        mxr_result res;
        mxr_reason why;
    } cases[] = {
        {"fault-servfail.rules.test", MXR_RESULT_TEMPFAIL, MXR_REASON_SERVFAIL},
        {"fault-timeout.rules.test", MXR_RESULT_TEMPFAIL, MXR_REASON_TIMEOUT},
        {"fault-refused.rules.test", MXR_RESULT_TEMPFAIL, MXR_REASON_REFUSED},
        {"unserved.test", MXR_RESULT_TEMPFAIL, MXR_REASON_REFUSED},
        {"unserved-all.rules.test", MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL},
        {"mixed-temp.rules.test", MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL},
        {"noaddr-all.rules.test", MXR_RESULT_PERMFAIL,
         MXR_REASON_NO_USABLE_HOST},
        {"loopback.rules.test", MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST},
        {"iplit-only.rules.test", MXR_RESULT_PERMFAIL,
         MXR_REASON_NO_USABLE_HOST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mxr_plan *p = route_sync_ok(e, cases[i].in);
        if (p->result != cases[i].res || p->reason != cases[i].why)
            fail_msg("%s: %s/%s", cases[i].in, mxr_result_name(p->result),
                     mxr_reason_name(p->reason));
        assert_int_equal(p->ncandidates, 0);
        mxr_plan_free(p);
        /* only the zone's timeout fault is a timed-out query */
        assert_int_equal(stats_of(e).queries_timed_out, i >= 1 ? 1 : 0);
    }
}

static void test_route_cname_target(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    char a[MXR_ADDR_STRLEN];
    mxr_plan *p = route_sync_ok(e, "cname.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_order(p, "mail.cname.rules.test");
    const mxr_candidate *c = candidate(p, "mail.cname.rules.test");
    assert_true(c->notes & MXR_NOTE_CNAME_TARGET);
    assert_string_equal(mxr_note_name(MXR_NOTE_CNAME_TARGET), "cname-target");
    assert_int_equal(c->naddrs, 1);
    assert_string_equal(addr_text(&c->addrs[0], a), "192.0.2.70");
    mxr_plan_free(p);

    p = route_sync_ok(e, "cname2.rules.test"); /* two hops */
    assert_true(p->candidates[0].notes & MXR_NOTE_CNAME_TARGET);
    mxr_plan_free(p);

    /* a plain target carries no note */
    p = route_sync_ok(e, "plain.rules.test");
    assert_false(p->candidates[0].notes & MXR_NOTE_CNAME_TARGET);
    mxr_plan_free(p);

    /* the domain itself is an alias: its MX is followed */
    p = route_sync_ok(e, "alias.rules.test");
    assert_order(p, "mx1.plain.rules.test,mx2.plain.rules.test");
    assert_false(p->implicit);
    mxr_plan_free(p);
}

static void test_route_host_limit(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_MAX_HOSTS, 3);
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "many.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_order(p, "m01.many.rules.test,m02.many.rules.test,"
                    "m03.many.rules.test");
    assert_int_equal(p->nskipped, 37);
    assert_int_equal(count_skipped(p, MXR_REASON_LIMIT), 37);
    mxr_plan_free(p);
    /* a cached plan is cut the same way */
    p = route_sync_ok(e, "many.rules.test");
    assert_int_equal(stats_of(e).plan_hits, 1);
    assert_int_equal(p->ncandidates, 3);
    assert_int_equal(count_skipped(p, MXR_REASON_LIMIT), 37);
    mxr_plan_free(p);
}

static void test_route_addr_limits(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_MAX_ADDRS_PER_HOST, 3);
    set_opt(f, MXR_OPT_MAX_ADDRS_TOTAL, 10);
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "bigaddr.rules.test");
    assert_int_equal(p->candidates[0].naddrs, 3);
    mxr_plan_free(p);
    p = route_sync_ok(e, "manytotal.rules.test");
    size_t total = 0;
    for (size_t i = 0; i < p->ncandidates; i++) {
        assert_true(p->candidates[i].naddrs >= 1);
        assert_true(p->candidates[i].naddrs <= 3);
        total += p->candidates[i].naddrs;
    }
    assert_true(total <= 10);
    assert_true(total > 0);
    mxr_plan_free(p);
}

static void test_route_max_mx_records(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_MAX_MX_RECORDS, 5);
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "many.rules.test");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_true(p->ncandidates <= 5);
    assert_true(p->ncandidates + p->nskipped <= 5);
    mxr_plan_free(p);
}

static void test_route_literal(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    char a[MXR_ADDR_STRLEN];
    mxr_plan *p = route_sync_ok(e, "postmaster@[192.0.2.1]");
    assert_int_equal(p->result, MXR_RESULT_OK);
    assert_int_equal(p->ncandidates, 1);
    assert_int_equal(p->candidates[0].source, MXR_SOURCE_LITERAL);
    assert_int_equal(p->candidates[0].naddrs, 1);
    assert_string_equal(addr_text(&p->candidates[0].addrs[0], a), "192.0.2.1");
    mxr_plan_free(p);
    assert_int_equal(stats_of(e).queries_sent, 0); /* no DNS at all */
    /* loopback literals go through the same filters */
    p = route_sync_ok(e, "[127.0.0.1]");
    assert_int_equal(p->ncandidates, 0);
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    mxr_plan_free(p);
}

static void test_route_ttl(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    /* MX 600, A of the target 120: the shortest */
    mxr_plan *p = route_sync_ok(e, "ttl.rules.test");
    assert_int_equal(p->ttl, 120);
    mxr_plan_free(p);
}

/* The TTLs as served: the MX answer's own and each host's addresses',
 * not the plan's reuse time (the smallest of all answers, clamped,
 * negative ones included). */
static void test_route_served_ttls(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_TTL_MAX, 100); /* the clamps bound ttl only */
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "ttl.rules.test");
    assert_int_equal(p->ttl, 100);
    assert_int_equal(p->mx_ttl, 600);
    assert_int_equal(p->candidates[0].ttl, 120);
    mxr_plan_free(p);
    /* implicit MX: the MX NODATA's negative TTL (SOA minimum 300); the
     * host's is its A record's 3600, not its AAAA NODATA's 300 */
    p = route_sync_ok(e, "implicit.rules.test");
    assert_int_equal(p->mx_ttl, 300);
    assert_int_equal(p->candidates[0].ttl, 3600);
    mxr_plan_free(p);
    p = route_sync_ok(e, "nxdomain.rules.test");
    assert_int_equal(p->mx_ttl, 300);
    mxr_plan_free(p);
    p = route_sync_ok(e, "nullmx.rules.test");
    assert_int_equal(p->mx_ttl, 3600);
    mxr_plan_free(p);
    p = route_sync_ok(e, "fault-servfail.rules.test"); /* no TTL served */
    assert_int_equal(p->mx_ttl, 0);
    mxr_plan_free(p);
    p = route_sync_ok(e, "[192.0.2.1]");
    assert_int_equal(p->mx_ttl, 0);
    assert_int_equal(p->candidates[0].ttl, 0);
    mxr_plan_free(p);
}

/* From the caches, the served TTLs count down, and past their end they
 * say 0 even while a TTL_MIN clamp keeps the answer. */
static void test_served_ttls_count_down(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_TTL_MIN, 300);
    mxr_engine *e = start_rules(f);
    mxr_plan_free(route_sync_ok(e, "ttl.rules.test"));
    f->now += 150 * 1000;
    mxr_plan *p = route_sync_ok(e, "ttl.rules.test");
    assert_int_equal(stats_of(e).plan_hits, 1);
    assert_int_equal(p->ttl, 150);
    assert_int_equal(p->mx_ttl, 450);
    assert_int_equal(p->candidates[0].ttl, 0); /* served 120 s */
    mxr_plan_free(p);
    /* a new plan from cached address answers: theirs are older */
    mxr_plan_free(route_sync_ok(e, "plain.rules.test"));
    f->now += 100 * 1000;
    p = route_sync_ok(e, "alias.rules.test");
    assert_int_equal(p->mx_ttl, 3600); /* asked now */
    assert_int_equal(p->ncandidates, 2);
    assert_int_equal(p->candidates[0].ttl, 3500);
    assert_int_equal(p->candidates[1].ttl, 3500);
    mxr_plan_free(p);
}

/* --------------------------------------------------------- shuffling */

static void tie_order(fixture *f, int64_t seed, int rounds, char out[][256])
{
    mxr_options *o = NULL;
    mxr_engine *e = NULL;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    assert_int_equal(mxr_options_add_zone_file(o, rules_zone()), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_SEED, seed), MXR_OK);
    mxr_options_set_clock(o, fake_clock, &f->now);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, &f->ta);
    assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
    for (int i = 0; i < rounds; i++) {
        mxr_plan *p = route_sync_ok(e, "tie.rules.test");
        assert_int_equal(p->ncandidates, 3);
        order_of(p, out[i], 256);
        mxr_plan_free(p);
    }
    mxr_engine_destroy(e);
    mxr_options_free(o);
}

static void test_shuffle_seeded(void **state)
{
    fixture *f = *state;
    enum { ROUNDS = 8 };
    char a[ROUNDS][256], b[ROUNDS][256];
    /* the same seed gives the same orders, cold and from the plan cache */
    tie_order(f, 42, ROUNDS, a);
    tie_order(f, 42, ROUNDS, b);
    bool varied = false;
    for (int i = 0; i < ROUNDS; i++) {
        assert_string_equal(a[i], b[i]);
        varied |= strcmp(a[i], a[0]) != 0;
    }
    assert_true(varied); /* every route shuffles, not only the first */

    /* across seeds, every host of the tie comes first sometimes */
    static const char *hosts[] = {"a.tie.rules.test", "b.tie.rules.test",
                                  "c.tie.rules.test"};
    int first[3] = {0, 0, 0};
    for (int64_t seed = 1; seed <= 200; seed++) {
        tie_order(f, seed, 1, a);
        for (int h = 0; h < 3; h++) {
            size_t n = strlen(hosts[h]);
            if (strncmp(a[0], hosts[h], n) == 0 && a[0][n] == ',')
                first[h]++;
            assert_non_null(strstr(a[0], hosts[h]));
        }
    }
    for (int h = 0; h < 3; h++)
        if (first[h] < 30) /* about 67 expected; never 0 */
            fail_msg("%s came first %d times in 200", hosts[h], first[h]);
    assert_int_equal(first[0] + first[1] + first[2], 200);
}

static void test_shuffle_keeps_tiers(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        mxr_options_add_zone_file(
            f->o, mxr_test_source_path("tests/zones/ext.test.zone")),
        MXR_OK);
    mxr_engine *e = start_rules(f);
    for (int i = 0; i < 20; i++) {
        mxr_plan *p = route_sync_ok(e, "google.rules.test");
        assert_int_equal(p->ncandidates, 5);
        assert_string_equal(p->candidates[0].host, "aspmx.google.rules.test");
        for (size_t k = 1; k < p->ncandidates; k++)
            assert_true(p->candidates[k - 1].preference <=
                        p->candidates[k].preference);
        mxr_plan_free(p);
    }
}

/* =================================================================== */
/* caching                                                              */
/* =================================================================== */

static void test_cache_plan_hit(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p1 = route_sync_ok(e, "plain.rules.test");
    mxr_stats s1 = stats_of(e);
    assert_int_equal(s1.routes, 1);
    assert_int_equal(s1.plan_hits, 0);
    assert_int_equal(s1.queries_sent, 5); /* MX + (A, AAAA) x 2 */
    assert_true(s1.cache_entries >= 6);   /* 5 answers + the plan */
    assert_true(s1.cache_bytes > 0);
    assert_true(s1.bytes_allocated > 0);
    assert_int_equal(s1.inflight, 0);

    mxr_plan *p2 = route_sync_ok(e, "plain.rules.test");
    mxr_stats s2 = stats_of(e);
    assert_int_equal(s2.routes, 2);
    assert_int_equal(s2.plan_hits, 1);
    assert_int_equal(s2.queries_sent, s1.queries_sent);
    assert_same_candidates(p1, p2);
    assert_int_equal(p2->ttl, p1->ttl);
    assert_ptr_not_equal(p1, p2); /* each caller owns a copy */
    mxr_plan_free(p1);
    mxr_plan_free(p2);

    /* the same domain written as an address is the same plan */
    p1 = route_sync_ok(e, "u@plain.rules.test");
    assert_int_equal(stats_of(e).plan_hits, 2);
    assert_string_equal(p1->input, "u@plain.rules.test");
    mxr_plan_free(p1);

    /* just before the TTL runs out: still cached */
    f->now += 3599 * 1000;
    p1 = route_sync_ok(e, "plain.rules.test");
    assert_int_equal(stats_of(e).plan_hits, 3);
    assert_int_equal(stats_of(e).queries_sent, 5);
    mxr_plan_free(p1);

    /* past it: asked again */
    f->now += 2 * 1000;
    p1 = route_sync_ok(e, "plain.rules.test");
    mxr_stats s3 = stats_of(e);
    assert_int_equal(s3.plan_hits, 3);
    assert_int_equal(s3.queries_sent, 10);
    assert_order(p1, "mx1.plain.rules.test,mx2.plain.rules.test");
    mxr_plan_free(p1);
    /* with no plan of ours alive, the engine's count is all the allocator
     * holds: cached plans included */
    assert_int_equal(stats_of(e).bytes_allocated, f->ta.live);
}

/* Negative plans are cached by the SOA minimum; transient failures are
 * not kept as plans. */
static void test_cache_negative_and_tempfail(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan_free(route_sync_ok(e, "nxdomain.rules.test"));
    uint64_t q = stats_of(e).queries_sent;
    mxr_plan_free(route_sync_ok(e, "nxdomain.rules.test"));
    assert_int_equal(stats_of(e).queries_sent, q);
    assert_int_equal(stats_of(e).plan_hits, 1);
    f->now += 301 * 1000; /* past the negative TTL */
    mxr_plan_free(route_sync_ok(e, "nxdomain.rules.test"));
    assert_int_equal(stats_of(e).queries_sent, q + 1);

    mxr_plan *p = route_sync_ok(e, "fault-servfail.rules.test");
    assert_int_equal(p->result, MXR_RESULT_TEMPFAIL);
    mxr_plan_free(p);
    mxr_stats s = stats_of(e);
    mxr_plan_free(route_sync_ok(e, "fault-servfail.rules.test"));
    assert_int_equal(stats_of(e).plan_hits, s.plan_hits); /* no plan */
    /* the failed answer itself is kept briefly (MXR_OPT_TEMPFAIL_TTL) */
    assert_int_equal(stats_of(e).queries_sent, s.queries_sent);
    f->now += 6 * 1000;
    mxr_plan_free(route_sync_ok(e, "fault-servfail.rules.test"));
    assert_int_equal(stats_of(e).queries_sent, s.queries_sent + 1);
}

static void test_cache_disabled(void **state)
{
    fixture *f = *state;
    set_opt(f, MXR_OPT_CACHE_MAX_BYTES, 0);
    mxr_engine *e = start_rules(f);
    mxr_plan_free(route_sync_ok(e, "plain.rules.test"));
    mxr_plan_free(route_sync_ok(e, "plain.rules.test"));
    mxr_stats s = stats_of(e);
    assert_int_equal(s.plan_hits, 0);
    assert_int_equal(s.cache_hits, 0);
    assert_int_equal(s.queries_sent, 10);
    assert_int_equal(s.cache_entries, 0);
    assert_int_equal(s.cache_bytes, 0);
}

static void test_cache_bound(void **state)
{
    fixture *f = *state;
    enum { BOUND = 20000, DOMAINS = 500 };
    set_opt(f, MXR_OPT_CACHE_MAX_BYTES, BOUND);
    assert_int_equal(mxr_options_add_zone_text(f->o, "w.zone", W_ZONE), MXR_OK);
    mxr_engine *e = start(f);
    size_t peak = 0;
    for (int i = 0; i < DOMAINS; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%d.w.test", i);
        mxr_plan *p = route_sync_ok(e, name);
        assert_int_equal(p->result, MXR_RESULT_OK);
        assert_order(p, "mx.w.test");
        mxr_plan_free(p);
        mxr_stats s = stats_of(e);
        if (s.cache_bytes > BOUND)
            fail_msg("after %d domains: %zu cache bytes > %d", i + 1,
                     s.cache_bytes, BOUND);
        peak = s.cache_bytes > peak ? s.cache_bytes : peak;
    }
    mxr_stats s = stats_of(e);
    assert_true(s.cache_evictions > 0);
    assert_true(peak > BOUND / 2); /* the bound was reached, not avoided */
    assert_true(s.cache_entries < DOMAINS);
    /* the early domains were evicted: routing one asks again */
    uint64_t q = s.queries_sent;
    mxr_plan_free(route_sync_ok(e, "d0.w.test"));
    assert_true(stats_of(e).queries_sent > q);
}

/* =================================================================== */
/* coalescing and the in-flight window                                  */
/* =================================================================== */

static void test_coalescing(void **state)
{
    fixture *f = *state;
    enum { N = 100 };
    mxr_engine *e = start_rules(f);
    static rec r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mxr_route(e, "plain.rules.test", on_route, &r[i]),
                         MXR_OK);
        assert_int_equal(r[i].fired, 0);
    }
    assert_int_equal(mxr_engine_pending(e), N);
    assert_int_equal(mxr_engine_run(e, 10000), 0);
    mxr_stats s = stats_of(e);
    assert_int_equal(s.queries_sent, 1 + 4); /* one MX, (A, AAAA) x 2 */
    assert_true(s.queries_coalesced >= N - 1);
    assert_int_equal(s.inflight, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        assert_int_equal(r[i].status, MXR_OK);
        assert_int_equal(r[i].plan->ncandidates, 2);
        assert_same_candidates(r[0].plan, r[i].plan);
    }
    for (int i = 0; i < N; i++)
        rec_clear(&r[i]);
}

static void test_inflight_window(void **state)
{
    fixture *f = *state;
    enum { N = 200 };
    set_opt(f, MXR_OPT_MAX_INFLIGHT, 3);
    assert_int_equal(mxr_options_add_zone_text(f->o, "w.zone", W_ZONE), MXR_OK);
    mxr_engine *e = start(f);
    static rec r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof name, "host%d.w.test", i);
        assert_int_equal(mxr_route(e, name, on_route, &r[i]), MXR_OK);
        assert_true(stats_of(e).inflight <= 3);
    }
    size_t rounds = 0;
    while (mxr_engine_pending(e) > 0) {
        assert_true(rounds++ < 100000);
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
        assert_true(stats_of(e).inflight <= 3);
    }
    mxr_stats s = stats_of(e);
    assert_true(s.inflight_max <= 3);
    assert_int_equal(s.inflight_max, 3); /* the window was used */
    assert_int_equal(s.inflight, 0);
    assert_int_equal(s.queries_sent, N + 2); /* MX each, A + AAAA once */
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].fired, 1);
        assert_int_equal(r[i].status, MXR_OK);
        assert_int_equal(r[i].plan->result, MXR_RESULT_OK);
        rec_clear(&r[i]);
    }
}

/* The zone backend's event-loop face: no descriptors, a zero timeout
 * while work is queued, -1 when idle. */
static void test_zone_event_loop(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_sock socks[4];
    assert_int_equal(mxr_engine_timeout(e), -1);
    assert_int_equal(mxr_engine_fds(e, socks, 4), 0);
    rec r = {0};
    assert_int_equal(mxr_route(e, "plain.rules.test", on_route, &r), MXR_OK);
    assert_int_equal(mxr_engine_timeout(e), 0);
    int rounds = 0;
    while (mxr_engine_pending(e) > 0) {
        assert_true(rounds++ < 100);
        assert_int_equal(mxr_engine_timeout(e), 0);
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    }
    assert_int_equal(mxr_engine_timeout(e), -1);
    assert_int_equal(r.fired, 1);
    assert_int_equal(r.plan->ncandidates, 2);
    rec_clear(&r);
}

/* =================================================================== */
/* allocation failures                                                  */
/* =================================================================== */

static mxr_options *alloc_options(mxr_test_alloc *ta, uint64_t *now)
{
    mxr_options *o = NULL;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    assert_int_equal(mxr_options_add_zone_file(o, rules_zone()), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_SEED, 7), MXR_OK);
    mxr_options_set_clock(o, fake_clock, now);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, ta);
    return o;
}

/* Fail the Nth allocation, for every N, across engine_new, route_sync
 * and destroy: a clean error or a plan, never a crash or a leak. */
static void test_alloc_failure_each(void **state)
{
    fixture *f = *state;
    long n;
    int errors = 0;
    for (n = 1;; n++) {
        mxr_test_alloc ta = {.fail_at = n};
        mxr_options *o = alloc_options(&ta, &f->now);
        mxr_engine *e = NULL;
        mxr_plan *p = NULL;
        mxr_status st = mxr_engine_new(o, &e);
        if (st == MXR_OK) {
            assert_non_null(e);
            st = mxr_route_sync(e, "plain.rules.test", &p);
            assert_int_equal(mxr_engine_pending(e), 0);
            mxr_engine_destroy(e);
        } else {
            assert_null(e);
        }
        if (st == MXR_OK) {
            assert_non_null(p);
            assert_string_equal(p->domain, "plain.rules.test");
        } else {
            assert_int_equal(st, MXR_ENOMEM);
            assert_null(p);
            errors++;
        }
        mxr_plan_free(p);
        if (ta.live != 0)
            fail_msg("allocation %ld failed: %zu bytes left", n, ta.live);
        mxr_options_free(o);
        if (ta.calls < n) { /* never reached: a full run */
            assert_int_equal(st, MXR_OK);
            break;
        }
    }
    assert_true(n > 20);
    assert_true(errors > 0);
}

/* Memory runs out at allocation N of mxr_route and stays out: mxr_route
 * either fails (and never calls back) or succeeds without calling back
 * from inside; once memory is back, the request ends exactly once. */
static void test_alloc_exhausted_never_inside_route(void **state)
{
    fixture *f = *state;
    for (long k = 1;; k++) {
        assert_true(k < 1000);
        mxr_test_alloc ta = {0};
        mxr_options *o = alloc_options(&ta, &f->now);
        mxr_engine *e = NULL;
        assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
        rec r = {0};
        long before = ta.calls;
        ta.fail_from = before + k;
        mxr_status st = mxr_route(e, "plain.rules.test", on_route, &r);
        bool reached = ta.calls >= before + k;
        int fired_inside = r.fired;
        ta.fail_from = 0;
        mxr_engine_run(e, 10000);
        int fired = r.fired;
        assert_int_equal(mxr_engine_pending(e), 0);
        mxr_engine_destroy(e);
        rec_clear(&r);
        size_t live = ta.live;
        mxr_options_free(o);
        if (fired_inside)
            fail_msg("memory exhausted from allocation %ld of mxr_route on: "
                     "its callback fired from inside mxr_route, which then "
                     "returned %s",
                     k, mxr_strerror(st));
        assert_int_equal(fired, st == MXR_OK ? 1 : 0);
        assert_int_equal(live, 0);
        if (!reached) { /* mxr_route needed fewer than k allocations */
            assert_int_equal(st, MXR_OK);
            break;
        }
    }
}

/* ----------------------------------------------- isolated bug repros */

/* Runs fn in a child process (a bug may corrupt memory or abort under
 * ASan); the child's exit status is fn's return value. */
static int run_isolated(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

typedef struct child_rec {
    int fired;
    mxr_status status;
} child_rec;

static void child_on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    child_rec *r = arg;
    r->fired++;
    r->status = st;
    mxr_plan_free(plan);
}

/* ttl.rules.test: MX TTL 600, its target's A TTL 120, so the plan expires
 * at 120 s while the MX answer stays cached. At 200 s a route finds the
 * MX in the cache (a deferred delivery) and needs new target lookups.
 * Destroying the engine before it is processed runs that delivery during
 * teardown: it must not send queries to the destroyed backend (a
 * use-after-free and a leak before commit 45709ab). In a child process,
 * since a regression corrupts memory. */
static int child_destroy_with_cached_mx(void)
{
    mxr_test_alloc ta = {0};
    uint64_t now = 1000000;
    mxr_options *o = NULL;
    mxr_engine *e = NULL;
    if (mxr_options_new(&o) != MXR_OK ||
        mxr_options_add_zone_file(o, rules_zone()) != MXR_OK)
        return 10;
    mxr_options_set_clock(o, fake_clock, &now);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, &ta);
    if (mxr_engine_new(o, &e) != MXR_OK)
        return 11;
    mxr_plan *p = NULL;
    if (mxr_route_sync(e, "ttl.rules.test", &p) != MXR_OK || p->ttl != 120)
        return 12;
    mxr_plan_free(p);
    now += 200 * 1000;
    child_rec r = {0};
    if (mxr_route(e, "ttl.rules.test", child_on_route, &r) != MXR_OK)
        return 13;
    mxr_engine_destroy(e);
    mxr_options_free(o);
    if (r.fired != 1 || r.status != MXR_EDESTROYED)
        return 2;
    if (ta.live != 0) {
        fprintf(stderr, "child: %zu bytes leaked after destroy\n", ta.live);
        return 3;
    }
    return 0;
}

static void test_destroy_with_cached_mx_delivery(void **state)
{
    (void)state;
    int rc = run_isolated(child_destroy_with_cached_mx);
    if (rc != 0)
        fail_msg("destroy with a pending cached-MX delivery: child exit %d "
                 "(2 = callback wrong, 3 = leak, >128 = signal)",
                 rc);
}

/* A plan from the plan cache says how long it may be reused: what is left
 * of the TTL, not the TTL it had when it was built. */
static void test_cache_plan_ttl_counts_down(void **state)
{
    fixture *f = *state;
    mxr_engine *e = start_rules(f);
    mxr_plan *p = route_sync_ok(e, "ttl.rules.test");
    assert_int_equal(p->ttl, 120);
    mxr_plan_free(p);
    f->now += 100 * 1000;
    p = route_sync_ok(e, "ttl.rules.test");
    assert_int_equal(stats_of(e).plan_hits, 1);
    uint32_t ttl = p->ttl;
    mxr_plan_free(p);
    if (ttl > 20)
        fail_msg("cached plan 100 s old says ttl %u (at most 20 left)", ttl);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_options_defaults),
        T(test_options_ranges),
        T(test_options_servers),
        T(test_options_servers_engine),
        T(test_options_zone_syntax_error),
        T(test_options_zone_errors),
        T(test_options_zone_second_soa),
        T(test_options_zone_rrset_bound),
        T(test_options_zone_reading),
        T(test_options_zone_directory),
        T(test_options_zone_binary),
        T(test_options_zone_parentheses),
        T(test_options_zone_error_line),
        T(test_options_zone_apex_errors),
        T(test_version),
        T(test_plan_outlives_engine),
        T(test_stats_sized),
        T(test_hop_sized),
        T(test_enums_out_of_range),
        T(test_report_and_health),
        T(test_order_by_health),
        T(test_run_once),
        T(test_contract_never_inside_route),
        T(test_contract_invalid_input),
        T(test_contract_busy),
        T(test_contract_destroy_zone_pending),
        T(test_contract_destroy_zone_midway),
        T(test_contract_destroy_ares_pending),
        T(test_contract_destroy_ares_window),
        T(test_ares_timeout),
        T(test_ares_closed_port_own_loop),
        T(test_route_plain),
        T(test_route_port_and_family),
        T(test_route_nullmx),
        T(test_route_implicit),
        T(test_route_nxdomain),
        T(test_route_failures),
        T(test_route_cname_target),
        T(test_route_host_limit),
        T(test_route_addr_limits),
        T(test_route_max_mx_records),
        T(test_route_literal),
        T(test_route_ttl),
        T(test_route_served_ttls),
        T(test_served_ttls_count_down),
        T(test_shuffle_seeded),
        T(test_shuffle_keeps_tiers),
        T(test_cache_plan_hit),
        T(test_cache_negative_and_tempfail),
        T(test_cache_disabled),
        T(test_cache_bound),
        T(test_coalescing),
        T(test_inflight_window),
        T(test_zone_event_loop),
        T(test_alloc_failure_each),
        T(test_destroy_with_cached_mx_delivery),
        /* regressions: bugs found by these tests, fixed in 3c1e50a */
        T(test_options_bare_ipv6_server),
        T(test_alloc_exhausted_never_inside_route),
        T(test_cache_plan_ttl_counts_down),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
