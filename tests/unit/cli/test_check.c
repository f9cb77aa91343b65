/* test_check.c -- the rules of `mxroute check` (src/cli/check_findings.c,
 * check_ttl.c) on plans written by hand: which TTL each TTL finding
 * judges, their severities and records, the --planning advice, and the
 * resolver comparison. The same findings on real DNS answers are in
 * tests/it_check.sh (zone files and knotd). */
#include "support.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ fixture */

#define NC 4
#define NS 40

/* A plan of MX hosts, each with one address, built field by field. */
typedef struct fake {
    mxr_plan p;
    mxr_candidate c[NC];
    mxr_skipped s[NS];
    mxr_addr a[NC];
    char hosts[NC][32];
    chk_report r;
} fake;

static int setup(void **state)
{
    fake *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->p.domain = f->p.input = "example.test";
    f->p.result = MXR_RESULT_OK;
    f->p.candidates = f->c;
    f->p.skipped = f->s;
    f->r.input = "example.test";
    f->r.plan = &f->p;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fake *f = *state;
    chk_report_free(&f->r);
    free(f);
    return 0;
}

/* Candidate i: mxN.example.test at preference 10 * (i + 1), one IPv4
 * address, its address TTL as given. */
static void add_host(fake *f, uint32_t ttl)
{
    size_t i = f->p.ncandidates++;
    snprintf(f->hosts[i], sizeof f->hosts[i], "mx%zu.example.test", i + 1);
    f->a[i] = (mxr_addr){.family = AF_INET, .bytes = {192, 0, 2, (uint8_t)i}};
    f->c[i] = (mxr_candidate){.host = f->hosts[i],
                              .preference = (uint16_t)(10 * (i + 1)),
                              .port = 25,
                              .source = MXR_SOURCE_MX,
                              .naddrs = 1,
                              .addrs = &f->a[i],
                              .ttl = ttl};
}

/* Two MX hosts with sound TTLs; the plan's own ttl as a negative AAAA
 * answer would make it. */
static void sound_plan(fake *f)
{
    add_host(f, 3600);
    add_host(f, 3600);
    f->p.mx_ttl = 3600;
    f->p.ttl = 30;
}

static const chk_finding *find(const fake *f, const char *code)
{
    for (size_t i = 0; i < f->r.n; i++)
        if (strcmp(f->r.f[i].code, code) == 0)
            return &f->r.f[i];
    return NULL;
}

static size_t count(const fake *f, const char *code)
{
    size_t n = 0;
    for (size_t i = 0; i < f->r.n; i++)
        n += strcmp(f->r.f[i].code, code) == 0;
    return n;
}

static void findings(fake *f)
{
    chk_report_free(&f->r);
    chk_findings(&f->r);
}

/* The findings of the plan with this result and MX TTL. */
static void findings_as(fake *f, mxr_result res, mxr_reason why,
                        uint32_t mx_ttl)
{
    f->p.result = res;
    f->p.reason = why;
    f->p.mx_ttl = mx_ttl;
    findings(f);
}

static void assert_finding(const fake *f, chk_sev sev, const char *code)
{
    const chk_finding *x = find(f, code);
    if (!x)
        fail_msg("no %s finding", code);
    if (x->sev != sev)
        fail_msg("%s is %s, expected %s", code, chk_sev_name(x->sev),
                 chk_sev_name(sev));
}

static void assert_no(const fake *f, const char *code)
{
    if (find(f, code))
        fail_msg("unexpected %s: %s", code, find(f, code)->message);
}

static void assert_record(const fake *f, const char *code, const char *rec)
{
    const chk_finding *x = find(f, code);
    assert_non_null(x);
    for (size_t i = 0; i < x->nrecords; i++)
        if (strcmp(x->records[i], rec) == 0)
            return;
    fail_msg("%s has no record '%s' (first: '%s')", code, rec,
             x->nrecords ? x->records[0] : "none");
}

/* ------------------------------------------------------ the MX TTL */

/* The plan's ttl (30: a negative answer's SOA minimum) is not the MX
 * records' TTL: nothing to say about TTLs. */
static void test_judges_mx_ttl_not_plan_ttl(void **state)
{
    fake *f = *state;
    sound_plan(f);
    findings(f);
    assert_no(f, "TTL-LOW");
    assert_no(f, "TTL-HIGH");
    assert_no(f, "TARGET-TTL-LOW");
    assert_no(f, "TARGET-TTL-HIGH");
    assert_no(f, "PLANNING-TTL");
}

static void test_mx_ttl_low(void **state)
{
    fake *f = *state;
    sound_plan(f);
    f->p.mx_ttl = 30;
    f->p.ttl = 3600; /* whatever the plan's */
    findings(f);
    assert_finding(f, CHK_WARNING, "TTL-LOW");
    assert_record(f, "TTL-LOW", "example.test. 30 MX 10 mx1.example.test.");
    assert_record(f, "TTL-LOW", "example.test. 30 MX 20 mx2.example.test.");
    assert_true(strstr(find(f, "TTL-LOW")->message, "(30 s)") != NULL);
    /* low addresses too: one finding about them, apart */
    f->c[0].ttl = f->c[1].ttl = 30;
    findings(f);
    assert_int_equal(count(f, "TTL-LOW"), 1);
    assert_int_equal(count(f, "TARGET-TTL-LOW"), 1);
    assert_int_equal(find(f, "TARGET-TTL-LOW")->nrecords, 2);
    f->p.mx_ttl = 120; /* low, not alarming */
    findings(f);
    assert_finding(f, CHK_INFO, "TTL-LOW");
    f->p.mx_ttl = 300;
    findings(f);
    assert_no(f, "TTL-LOW");
}

/* The case the plan's ttl hid: MX records of two days next to A-only
 * hosts, whose AAAA NODATA made the plan's ttl 300. */
static void test_mx_ttl_high(void **state)
{
    fake *f = *state;
    sound_plan(f);
    f->p.mx_ttl = 172800;
    f->p.ttl = 300;
    findings(f);
    assert_finding(f, CHK_INFO, "TTL-HIGH");
    assert_record(f, "TTL-HIGH",
                  "example.test. 172800 MX 10 mx1.example.test.");
    assert_no(f, "TARGET-TTL-HIGH");
    f->p.mx_ttl = 86400;
    findings(f);
    assert_no(f, "TTL-HIGH");
}

/* A temporarily failed target no longer hides the MX TTL (it changes
 * the plan's ttl, not the MX records'). */
static void test_mx_ttl_with_tempfail_target(void **state)
{
    fake *f = *state;
    add_host(f, 3600);
    f->s[0] = (mxr_skipped){"mx9.example.test", 20, MXR_REASON_TEMPFAIL};
    f->p.nskipped = 1;
    f->p.mx_ttl = 30;
    f->p.ttl = 5;
    findings(f);
    assert_finding(f, CHK_WARNING, "TTL-LOW");
    assert_record(f, "TTL-LOW", "example.test. 30 MX 20 mx9.example.test.");
    assert_finding(f, CHK_WARNING, "LOOKUP-TEMPFAIL");
}

static void test_null_mx_ttl(void **state)
{
    fake *f = *state;
    findings_as(f, MXR_RESULT_PERMFAIL, MXR_REASON_NULL_MX, 30);
    assert_finding(f, CHK_INFO, "NULL-MX");
    assert_finding(f, CHK_WARNING, "TTL-LOW");
    assert_record(f, "TTL-LOW", "example.test. 30 MX 0 .");
}

/* Without MX records, mx_ttl is a negative answer's (or 0 for a failed
 * lookup): not the TTL of anything to change. */
static void test_no_mx_ttl_without_mx_records(void **state)
{
    fake *f = *state;
    findings_as(f, MXR_RESULT_PERMFAIL, MXR_REASON_NXDOMAIN, 30);
    assert_finding(f, CHK_ERROR, "NXDOMAIN");
    assert_no(f, "TTL-LOW");
    findings_as(f, MXR_RESULT_TEMPFAIL, MXR_REASON_TIMEOUT, 0);
    assert_finding(f, CHK_ERROR, "LOOKUP-TEMPFAIL");
    assert_no(f, "TTL-LOW");

    /* implicit MX: the NODATA's 30 s is not judged, the address's is */
    f->p.implicit = true;
    add_host(f, 30);
    f->c[0].source = MXR_SOURCE_IMPLICIT;
    f->c[0].host = "example.test";
    findings_as(f, MXR_RESULT_OK, MXR_REASON_NONE, 30);
    assert_finding(f, CHK_WARNING, "MX-NONE-IMPLICIT");
    assert_no(f, "TTL-LOW");
    assert_finding(f, CHK_INFO, "TARGET-TTL-LOW");
    assert_record(f, "TARGET-TTL-LOW", "example.test. 30 A");
}

/* ------------------------------------------------------ address TTLs */

static void test_target_ttls(void **state)
{
    fake *f = *state;
    add_host(f, 30);
    add_host(f, 172800);
    add_host(f, 120); /* low for an MX record, normal for a host */
    f->a[1] = (mxr_addr){.family = AF_INET6, .bytes = {0x20, 0x01, 0x0d, 0xb8}};
    f->p.mx_ttl = 3600;
    findings(f);
    assert_no(f, "TTL-LOW");
    assert_no(f, "TTL-HIGH");
    assert_finding(f, CHK_INFO, "TARGET-TTL-LOW");
    assert_finding(f, CHK_INFO, "TARGET-TTL-HIGH");
    assert_int_equal(find(f, "TARGET-TTL-LOW")->nrecords, 1);
    assert_record(f, "TARGET-TTL-LOW", "mx1.example.test. 30 A");
    assert_record(f, "TARGET-TTL-HIGH", "mx2.example.test. 172800 AAAA");
    assert_true(strstr(find(f, "TARGET-TTL-LOW")->message, "1 mail host ") !=
                NULL);
}

/* A policy's hosts and literals have no DNS TTL (0): never judged. */
static void test_target_ttls_only_from_dns(void **state)
{
    fake *f = *state;
    sound_plan(f);
    add_host(f, 0);
    f->c[2].source = MXR_SOURCE_POLICY;
    add_host(f, 0);
    f->c[3].source = MXR_SOURCE_LITERAL;
    findings(f);
    assert_no(f, "TARGET-TTL-LOW");
}

/* 40 MX records make 16 records in a finding, not 40. */
static void test_records_bounded(void **state)
{
    fake *f = *state;
    add_host(f, 3600);
    for (size_t i = 0; i < NS; i++)
        f->s[i] = (mxr_skipped){"m.example.test", (uint16_t)(100 + i),
                                MXR_REASON_LIMIT};
    f->p.nskipped = NS;
    f->p.mx_ttl = 30;
    findings(f);
    assert_finding(f, CHK_WARNING, "TTL-LOW");
    assert_int_equal(find(f, "TTL-LOW")->nrecords, 16);
}

/* --------------------------------------------------------- --planning */

static void test_planning(void **state)
{
    fake *f = *state;
    sound_plan(f);
    f->c[0].ttl = f->c[1].ttl = 300;
    f->r.planning = true;
    findings(f);
    assert_finding(f, CHK_INFO, "PLANNING-TTL");
    const char *m = find(f, "PLANNING-TTL")->message;
    assert_true(strstr(m, "from 3600 s to 300-600 s") != NULL);
    assert_null(strstr(m, "A/AAAA"));

    f->c[1].ttl = 7200; /* a host that may move keeps its address long */
    findings(f);
    m = find(f, "PLANNING-TTL")->message;
    assert_true(strstr(m, "A/AAAA records of the hosts that move (up to "
                          "7200 s)") != NULL);
    assert_record(f, "PLANNING-TTL", "mx2.example.test. 7200 A");
    assert_record(f, "PLANNING-TTL",
                  "example.test. 3600 MX 10 mx1.example.test.");

    f->p.mx_ttl = 300;
    f->c[1].ttl = 300;
    findings(f);
    assert_true(
        strstr(find(f, "PLANNING-TTL")->message, "already low enough") != NULL);
    assert_no(f, "TTL-LOW"); /* 300 is not below 300 */
}

static void test_planning_implicit_and_failures(void **state)
{
    fake *f = *state;
    f->r.planning = true;
    f->p.implicit = true;
    add_host(f, 3600);
    f->c[0].source = MXR_SOURCE_IMPLICIT;
    f->p.mx_ttl = 300;
    findings(f);
    assert_true(strstr(find(f, "PLANNING-TTL")->message,
                       "no MX record: before moving its mail host, lower "
                       "the TTL of its A/AAAA records from 3600 s") != NULL);

    f->p.implicit = false;
    f->p.ncandidates = 0;
    findings_as(f, MXR_RESULT_PERMFAIL, MXR_REASON_NXDOMAIN, 300);
    assert_no(f, "PLANNING-TTL"); /* nothing to migrate */
}

/* ----------------------------------------------------------- resolvers */

static void test_resolvers_compare_sets(void **state)
{
    fake *f = *state;
    sound_plan(f);
    void *gs = NULL;
    assert_int_equal(setup(&gs), 0);
    fake *g = gs;
    sound_plan(g);
    /* the same records in another order agree */
    mxr_candidate t = g->c[0];
    g->c[0] = g->c[1];
    g->c[1] = t;
    chk_resolver v[2] = {{"192.0.2.53", MXR_OK, &f->p},
                         {"198.51.100.53", MXR_OK, &g->p}};
    f->r.resolvers = v;
    f->r.nresolvers = 2;
    findings(f);
    assert_no(f, "RESOLVERS-DISAGREE");
    /* another preference does not */
    g->c[0].preference = 5;
    findings(f);
    assert_finding(f, CHK_WARNING, "RESOLVERS-DISAGREE");
    assert_record(f, "RESOLVERS-DISAGREE",
                  "192.0.2.53: 10 mx1.example.test, 20 mx2.example.test");
    assert_record(f, "RESOLVERS-DISAGREE",
                  "198.51.100.53: 5 mx2.example.test, 10 mx1.example.test");
    /* a failed resolver is an answer of its own */
    v[1].status = MXR_EDESTROYED;
    findings(f);
    assert_record(f, "RESOLVERS-DISAGREE", "198.51.100.53: (engine destroyed)");
    f->r.resolvers = NULL;
    f->r.nresolvers = 0;
    teardown(&gs);
}

/* ---------------------------------------------------------------- main */

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_judges_mx_ttl_not_plan_ttl),
        T(test_mx_ttl_low),
        T(test_mx_ttl_high),
        T(test_mx_ttl_with_tempfail_target),
        T(test_null_mx_ttl),
        T(test_no_mx_ttl_without_mx_records),
        T(test_target_ttls),
        T(test_target_ttls_only_from_dns),
        T(test_records_bounded),
        T(test_planning),
        T(test_planning_implicit_and_failures),
        T(test_resolvers_compare_sets),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
