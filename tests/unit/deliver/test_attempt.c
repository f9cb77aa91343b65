/* test_attempt.c -- the attempt API (mxroute.h, "failover rules" and
 * "attempts") through the public API only: every cell of the default
 * decision table against docs/failover.md section 3, per-recipient results,
 * per-domain overrides, limits, the retry schedule, host health, failed
 * plans, misuse, and the invariant of docs/failover.md section 5 (every
 * recipient ends delivered, bounced or deferred) under 100,000 randomised
 * outcome sequences and every sequence of three session outcomes.
 *
 * Plans come from the offline zone backend (tests/zones/rules.test.zone
 * and zone text below); time comes from an injected clock, so retry times
 * are exact and nothing sleeps. Every engine uses a counting allocator:
 * once the engine is destroyed, nothing is left.
 *
 * Tests named test_regress_* show library bugs; they fail until the bug is
 * fixed. */
#include "support.h"
#include "base/enums.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SEC UINT64_C(1000)
#define HOUR (UINT64_C(3600) * SEC)
#define DAY (UINT64_C(86400) * SEC)
#define T0 UINT64_C(1700000000000) /* the injected clock starts here, ms */

/* Defaults of mxroute.h (MXR_RULE_*), in ms. */
#define RETRY_MIN (UINT64_C(300) * SEC)
#define RETRY_MAX (UINT64_C(14400) * SEC)
#define MAX_AGE (UINT64_C(432000) * SEC)

#define CONT MXR_ACTION_CONTINUE
#define NADDR MXR_ACTION_NEXT_ADDRESS
#define NHOST MXR_ACTION_NEXT_HOST
#define DEFER MXR_ACTION_DEFER
#define BOUNCE MXR_ACTION_BOUNCE
#define DELIV MXR_ACTION_DELIVERED

#define S_CONNECT MXR_STAGE_CONNECT
#define S_GREETING MXR_STAGE_GREETING
#define S_EHLO MXR_STAGE_EHLO
#define S_MAIL MXR_STAGE_MAIL
#define S_RCPT MXR_STAGE_RCPT
#define S_DATA MXR_STAGE_DATA
#define S_DOT MXR_STAGE_DOT

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

/* Domains for overrides, limits, retry and health; addresses from the
 * documentation ranges, distinct from rules.test (health is per address). */
static const char example_zone[] =
    "$ORIGIN example.test.\n"
    "$TTL 3600\n"
    "@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
    "@ NS ns\n"
    "ns A 192.0.2.250\n"
    "@ MX 10 mx1\n"
    "@ MX 20 mx2\n"
    "mx1 A 203.0.113.151\n"
    "mx1 AAAA 2001:db8:e::151\n"
    "mx2 A 203.0.113.152\n"
    "mx2 AAAA 2001:db8:e::152\n"
    "other MX 10 mx1.other\n"
    "other MX 20 mx2.other\n"
    "mx1.other A 203.0.113.153\n"
    "mx2.other A 203.0.113.154\n"
    "sub MX 10 mx1.sub\n"
    "sub MX 20 mx2.sub\n"
    "mx1.sub A 203.0.113.155\n"
    "mx2.sub A 203.0.113.156\n"
    "a.sub MX 10 mx1.a.sub\n"
    "a.sub MX 20 mx2.a.sub\n"
    "mx1.a.sub A 203.0.113.157\n"
    "mx2.a.sub A 203.0.113.158\n"
    "stay MX 10 mx1.stay\n"
    "stay MX 20 mx2.stay\n"
    "mx1.stay A 203.0.113.159\n"
    "mx2.stay A 203.0.113.160\n"
    "five MX 10 mx1.five\n"
    "five MX 20 mx2.five\n"
    "mx1.five A 203.0.113.161\n"
    "mx1.five A 203.0.113.162\n"
    "mx1.five A 203.0.113.163\n"
    "mx2.five A 203.0.113.164\n"
    "mx2.five A 203.0.113.165\n"
    "sess MX 10 mx1.sess\n"
    "sess MX 20 mx2.sess\n"
    "mx1.sess A 203.0.113.166\n"
    "mx2.sess A 203.0.113.167\n"
    "retry MX 10 mx.retry\n"
    "mx.retry A 203.0.113.168\n"
    "one MX 10 mx.one\n"
    "mx.one A 203.0.113.169\n";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || mxr_options_new(&f->o) != MXR_OK) {
        free(f);
        return -1;
    }
    f->now = T0;
    mxr_options_set_clock(f->o, fake_clock, &f->now);
    mxr_options_set_allocator(f->o, mxr_test_alloc_fn, &f->ta);
    if (mxr_options_set(f->o, MXR_OPT_SEED, 1) != MXR_OK ||
        mxr_options_add_zone_file(
            f->o, mxr_test_source_path("tests/zones/rules.test.zone")) !=
            MXR_OK ||
        mxr_options_add_zone_text(f->o, "example.test", example_zone) !=
            MXR_OK) {
        mxr_options_free(f->o);
        free(f);
        return -1;
    }
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

static void start(fixture *f)
{
    assert_null(f->e);
    assert_int_equal(mxr_engine_new(f->o, &f->e), MXR_OK);
}

static mxr_plan *route(fixture *f, const char *input)
{
    mxr_plan *p = NULL;
    assert_int_equal(mxr_route_sync(f->e, input, &p), MXR_OK);
    assert_non_null(p);
    return p;
}

static mxr_rules *new_rules(void)
{
    mxr_rules *r = NULL;
    assert_int_equal(mxr_rules_new(&r), MXR_OK);
    assert_non_null(r);
    return r;
}

static void set_rule(mxr_rules *r, mxr_rule k, int64_t v)
{
    assert_int_equal(mxr_rules_set(r, k, v), MXR_OK);
}

static void set_cell(mxr_rules *r, mxr_stage s, mxr_class c, mxr_action a)
{
    assert_int_equal(mxr_rules_set_action(r, s, c, a), MXR_OK);
}

/* Hands the rules to the options (which copy them) and frees them. */
static void add_rules(fixture *f, const char *domain, mxr_rules *r)
{
    assert_int_equal(mxr_options_add_rules(f->o, domain, r), MXR_OK);
    mxr_rules_free(r);
}

#define MAXR 5
static const char *const rcpt_names[MAXR] = {"r0@dest.test", "r1@dest.test",
                                             "r2@dest.test", "r3@dest.test",
                                             "r4@dest.test"};

static mxr_attempt *attempt(fixture *f, const mxr_plan *p, size_t n,
                            uint64_t first_ms, unsigned attempts)
{
    mxr_message m = {"sender@example.org", rcpt_names, n, first_ms, attempts};
    mxr_attempt *a = NULL;
    assert_int_equal(mxr_attempt_new(f->e, p, &m, &a), MXR_OK);
    assert_non_null(a);
    return a;
}

static mxr_outcome reply(mxr_stage s, mxr_class c, int code, const char *enh,
                         const char *text)
{
    mxr_outcome o = {s, c, code, enh, text};
    return o;
}

/* A typical outcome of class c. Connection-level failures carry no reply
 * code and no text (the library then says what happened). */
static mxr_outcome typical(mxr_stage s, mxr_class c)
{
    switch (c) {
    case MXR_CLASS_OK:
        return reply(s, c, 250, "2.0.0", "ok");
    case MXR_CLASS_4XX:
        return reply(s, c, 451, "4.3.0", "try again later");
    case MXR_CLASS_5XX:
        return reply(s, c, 554, "5.7.1", "rejected here");
    case MXR_CLASS_421:
        return reply(s, c, 421, "4.4.2", "closing channel");
    default:
        return reply(s, c, 0, NULL, NULL);
    }
}

static mxr_action out(mxr_attempt *a, mxr_outcome o)
{
    return mxr_attempt_outcome(a, &o);
}

static mxr_action out_t(mxr_attempt *a, mxr_stage s, mxr_class c)
{
    return out(a, typical(s, c));
}

static mxr_action rcpt(mxr_attempt *a, size_t i, int code, const char *enh,
                       const char *text)
{
    mxr_outcome o =
        reply(MXR_STAGE_RCPT, mxr_class_of_code(code), code, enh, text);
    return mxr_attempt_rcpt(a, i, &o);
}

static bool addr_eq(const mxr_addr *x, const mxr_addr *y)
{
    if (x->family != y->family)
        return false;
    size_t n = x->family == AF_INET ? 4 : 16;
    return memcmp(x->bytes, y->bytes, n) == 0;
}

static size_t addr_index(const mxr_candidate *c, const mxr_addr *ad)
{
    for (size_t i = 0; i < c->naddrs; i++)
        if (addr_eq(&c->addrs[i], ad))
            return i;
    return SIZE_MAX;
}

/* The next hop must be address `addr` of candidate `cand` of the
 * attempt's plan. */
static mxr_hop hop_at(mxr_attempt *a, size_t cand, size_t addr)
{
    mxr_hop h;
    memset(&h, 0, sizeof h);
    assert_int_equal(mxr_attempt_next(a, &h), MXR_OK);
    const mxr_plan *p = mxr_attempt_plan(a);
    assert_non_null(p);
    assert_int_equal(h.candidate, cand);
    assert_true(cand < p->ncandidates);
    const mxr_candidate *c = &p->candidates[cand];
    assert_string_equal(h.host, c->host);
    assert_int_equal(addr_index(c, &h.addr), addr);
    assert_int_equal(h.port, c->port);
    assert_int_equal(h.preference, c->preference);
    assert_int_equal(h.tls_required, c->tls_required);
    return h;
}

static void assert_done(mxr_attempt *a)
{
    mxr_hop h;
    assert_true(mxr_attempt_done(a));
    assert_int_equal(mxr_attempt_next(a, &h), MXR_EDONE);
}

static const mxr_rcpt *R(const mxr_attempt *a, size_t i)
{
    const mxr_rcpt *r = mxr_attempt_recipient(a, i);
    assert_non_null(r);
    return r;
}

static void assert_pending(const mxr_attempt *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(R(a, i)->state, MXR_RCPT_PENDING);
}

static void assert_deferred(const mxr_rcpt *r, uint64_t now, uint64_t lo,
                            uint64_t hi)
{
    assert_int_equal(r->state, MXR_RCPT_DEFERRED);
    assert_in_range(r->retry_at_ms, now + lo, now + hi);
}

/* Default retry after the first failed attempt: min, jittered up by at
 * most 10% (the jitter below min is clamped back to min). */
static void assert_first_retry(const mxr_rcpt *r, uint64_t now)
{
    assert_deferred(r, now, RETRY_MIN, RETRY_MIN + RETRY_MIN / 10);
}

static void assert_reply(const mxr_rcpt *r, int code, const char *enh,
                         const char *text)
{
    assert_int_equal(r->code, code);
    if (enh)
        assert_string_equal(r->enhanced ? r->enhanced : "(null)", enh);
    else
        assert_null(r->enhanced);
    assert_non_null(r->text);
    if (text)
        assert_string_equal(r->text, text);
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------- the decision table (1, 2) */

static bool is_conn(mxr_class c)
{
    return c == MXR_CLASS_REFUSED || c == MXR_CLASS_TIMEOUT ||
           c == MXR_CLASS_UNREACHABLE || c == MXR_CLASS_RESET;
}

/* docs/failover.md section 3, row by row, written out here independently
 * of src/deliver/rules.c. *row names the table row a cell comes from, or is
 * NULL for the cells the table does not name (then the action is this test's
 * reading of the design, listed in the test report). */
static mxr_action design_action(mxr_stage s, mxr_class c, const char **row)
{
    *row = NULL;
    if (c == MXR_CLASS_OK) {
        *row = "success (end-of-data 2xx delivers)";
        return s == S_DOT ? DELIV : CONT;
    }
    if ((s == S_CONNECT && is_conn(c)) || c == MXR_CLASS_421) {
        *row = "connect refused / timeout / unreachable / reset, 421 "
               "anywhere: next address, then next host";
        return NADDR;
    }
    if ((s == S_GREETING && (c == MXR_CLASS_4XX || c == MXR_CLASS_5XX)) ||
        (s == S_EHLO && c == MXR_CLASS_4XX)) {
        *row = "greeting 4xx or 5xx, EHLO 4xx: next host";
        return NHOST;
    }
    if (s >= S_MAIL && c == MXR_CLASS_4XX) {
        *row = "MAIL, RCPT, DATA, end-of-data 4xx: next host while one "
               "remains; on the last, defer";
        return NHOST;
    }
    if (s == S_RCPT && c == MXR_CLASS_5XX) {
        *row = "RCPT 5xx: bounce that recipient; the others go on";
        return BOUNCE;
    }
    if (s >= S_MAIL && c == MXR_CLASS_5XX) {
        *row = "MAIL, DATA, end-of-data 5xx: bounce";
        return BOUNCE;
    }
    /* Not in the table. A connection that breaks after connect says as
     * little about the message as one that never opened. */
    if (is_conn(c))
        return NADDR;
    /* No reply exists at connect: a reply class there is the transport's. */
    if (s == S_CONNECT)
        return NADDR;
    /* TLS 4xx/5xx, EHLO 5xx: this host will not talk to us; as greeting. */
    return NHOST;
}

static void test_table_matches_design(void **state)
{
    (void)state;
    mxr_rules *fresh = new_rules();
    int bad = 0, unnamed = 0;
    for (int s = 0; s < MXR__STAGE_N; s++) {
        for (int c = 0; c < MXR__CLASS_N; c++) {
            const char *row;
            mxr_action want = design_action(s, c, &row);
            mxr_action dflt = mxr_rules_action(NULL, s, c);
            mxr_action got = mxr_rules_action(fresh, s, c);
            unnamed += row == NULL;
            if (dflt != want || got != want) {
                print_error("cell %s/%s: library %s (fresh rules %s), "
                            "docs/failover.md: %s (%s)\n",
                            mxr_stage_name(s), mxr_class_name(c),
                            mxr_action_name(dflt), mxr_action_name(got),
                            mxr_action_name(want),
                            row ? row : "not named; this test's reading");
                bad++;
            }
        }
    }
    mxr_rules_free(fresh);
    assert_int_equal(bad, 0);
    /* The cells the table does not name: connection-level classes after
     * connect (4 x 7), 4xx/5xx at connect and at TLS, EHLO 5xx. */
    assert_int_equal(unnamed, 4 * 7 + 2 + 2 + 1);
}

/* Run cell (s, c) on the first hop of a fresh attempt with two
 * recipients; returns the action. For RCPT 4xx/5xx both recipients get
 * that reply; for the other RCPT failures r0 is accepted first; for DATA
 * and end-of-data both are accepted first. */
static mxr_action run_cell(mxr_attempt *a, mxr_stage s, mxr_class c,
                           mxr_action want)
{
    mxr_outcome o = typical(s, c);
    if (s < S_RCPT)
        return out(a, o);
    if (s == S_RCPT && (c == MXR_CLASS_4XX || c == MXR_CLASS_5XX)) {
        for (size_t i = 0; i < 2; i++) {
            mxr_action ra = mxr_attempt_rcpt(a, i, &o);
            if (c == MXR_CLASS_5XX) {
                assert_int_equal(ra, BOUNCE);
                assert_int_equal(R(a, i)->state, MXR_RCPT_BOUNCED);
            } else {
                assert_int_equal(ra, want);
                assert_int_equal(R(a, i)->state, MXR_RCPT_PENDING);
            }
        }
        return out_t(a, S_RCPT, MXR_CLASS_OK); /* the RCPT phase is over */
    }
    assert_int_equal(rcpt(a, 0, 250, "2.1.5", "ok"), CONT);
    if (s == S_RCPT)
        return out(a, o);
    assert_int_equal(rcpt(a, 1, 250, "2.1.5", "ok"), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    return out(a, o);
}

static void test_table_cells_first_hop(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    assert_int_equal(p->ncandidates, 2);
    assert_int_equal(p->candidates[0].naddrs, 2);
    assert_int_equal(p->candidates[1].naddrs, 2);
    for (int s = 0; s < MXR__STAGE_N; s++) {
        for (int c = 1; c < MXR__CLASS_N; c++) {
            const char *row;
            mxr_action want = design_action(s, c, &row);
            f->now += 3 * HOUR; /* host health of earlier cells is gone */
            mxr_attempt *a = attempt(f, p, 2, 0, 0);
            hop_at(a, 0, 0);
            mxr_action got = run_cell(a, s, c, want);
            if (got != want)
                fail_msg("cell %s/%s: got %s, want %s", mxr_stage_name(s),
                         mxr_class_name(c), mxr_action_name(got),
                         mxr_action_name(want));
            mxr_outcome o = typical(s, c);
            if (want == BOUNCE) {
                for (size_t i = 0; i < 2; i++) {
                    const mxr_rcpt *r = R(a, i);
                    assert_int_equal(r->state, MXR_RCPT_BOUNCED);
                    assert_reply(r, o.code, o.enhanced, o.text);
                    assert_string_equal(r->host, "mx1.plain.rules.test");
                }
                assert_done(a);
            } else {
                assert_false(mxr_attempt_done(a));
                assert_pending(a, 2);
                if (want == NADDR)
                    hop_at(a, 0, 1); /* same host, next address */
                else
                    hop_at(a, 1, 0); /* next host */
            }
            mxr_attempt_free(a);
        }
    }
    mxr_plan_free(p);
}

/* The same cells on the only address of the only host: whatever moves on
 * defers (with the last error), whatever bounces bounces. */
static void test_table_cells_last_hop(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "one.example.test");
    assert_int_equal(p->ncandidates, 1);
    assert_int_equal(p->candidates[0].naddrs, 1);
    for (int s = 0; s < MXR__STAGE_N; s++) {
        for (int c = 1; c < MXR__CLASS_N; c++) {
            const char *row;
            mxr_action want = design_action(s, c, &row);
            f->now += 3 * HOUR;
            mxr_attempt *a = attempt(f, p, 2, 0, 0);
            hop_at(a, 0, 0);
            mxr_action got = run_cell(a, s, c, want);
            mxr_action final = want == BOUNCE ? BOUNCE : DEFER;
            if (got != final)
                fail_msg("last hop, cell %s/%s: got %s, want %s",
                         mxr_stage_name(s), mxr_class_name(c),
                         mxr_action_name(got), mxr_action_name(final));
            mxr_outcome o = typical(s, c);
            for (size_t i = 0; i < 2; i++) {
                const mxr_rcpt *r = R(a, i);
                if (final == DEFER)
                    assert_first_retry(r, f->now);
                else
                    assert_int_equal(r->state, MXR_RCPT_BOUNCED);
                assert_reply(r, o.code, o.enhanced, o.text);
                assert_string_equal(r->host, "mx.one.example.test");
                if (!o.text) /* the library says what happened */
                    assert_non_null(strstr(r->text, mxr_class_name(c)));
            }
            assert_done(a);
            mxr_attempt_free(a);
        }
    }
    mxr_plan_free(p);
}

/* ------------------------------------------------ on the last host (2) */

static void test_mail_4xx_last_host_defers(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), NHOST);
    f->now += 20 * SEC;
    hop_at(a, 1, 0);
    mxr_action act = out(a, reply(S_MAIL, MXR_CLASS_4XX, 452, "4.3.1",
                                  "insufficient system storage"));
    assert_int_equal(act, DEFER);
    for (size_t i = 0; i < 2; i++) {
        const mxr_rcpt *r = R(a, i);
        assert_first_retry(r, f->now);
        assert_reply(r, 452, "4.3.1", "insufficient system storage");
        assert_string_equal(r->host, "mx2.plain.rules.test");
    }
    assert_done(a);
    /* Outcomes after the end change nothing and repeat the verdict. */
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DEFER);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DEFERRED);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_all_addresses_refused_defers(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 0, 1);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_TIMEOUT), NADDR);
    hop_at(a, 1, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_UNREACHABLE), NADDR);
    hop_at(a, 1, 1);
    assert_int_equal(out(a, reply(S_CONNECT, MXR_CLASS_REFUSED, 0, NULL,
                                  "Connection refused")),
                     DEFER);
    const mxr_rcpt *r = R(a, 0);
    assert_first_retry(r, f->now);
    assert_reply(r, 0, NULL, "Connection refused");
    assert_string_equal(r->host, "mx2.plain.rules.test");
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* ------------------------------------------------ per recipient (3) */

static void test_rcpt_mixed_results(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 3, 0, 0);
    assert_int_equal(mxr_attempt_nrecipients(a), 3);
    assert_string_equal(R(a, 1)->address, "r1@dest.test");
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_EHLO, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_OK), CONT);
    assert_int_equal(rcpt(a, 0, 250, "2.1.5", "recipient ok"), CONT);
    assert_int_equal(rcpt(a, 1, 451, "4.2.0", "greylisted"), NHOST);
    assert_int_equal(rcpt(a, 2, 550, "5.1.1", "no such user"), BOUNCE);
    const mxr_rcpt *r2 = R(a, 2);
    assert_int_equal(r2->state, MXR_RCPT_BOUNCED);
    assert_reply(r2, 550, "5.1.1", "no such user");
    assert_string_equal(r2->host, "mx1.plain.rules.test");
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT); /* DATA next */
    assert_int_equal(
        out(a, reply(S_DOT, MXR_CLASS_OK, 250, "2.0.0", "queued as A1")),
        NHOST);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DELIVERED);
    assert_reply(R(a, 0), 250, "2.0.0", "queued as A1");
    assert_string_equal(R(a, 0)->host, "mx1.plain.rules.test");
    assert_int_equal(R(a, 1)->state, MXR_RCPT_PENDING);
    assert_false(mxr_attempt_done(a));

    /* r1 goes on to the next host; the others are final and stay so. */
    hop_at(a, 1, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT); /* ignored */
    assert_int_equal(rcpt(a, 2, 250, NULL, NULL), CONT); /* ignored */
    assert_int_equal(rcpt(a, 1, 250, "2.1.5", "ok"), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(
        out(a, reply(S_DOT, MXR_CLASS_OK, 250, "2.0.0", "queued as B2")),
        DELIV);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DELIVERED);
    assert_string_equal(R(a, 0)->text, "queued as A1");
    assert_string_equal(R(a, 0)->host, "mx1.plain.rules.test");
    assert_int_equal(R(a, 1)->state, MXR_RCPT_DELIVERED);
    assert_string_equal(R(a, 1)->text, "queued as B2");
    assert_string_equal(R(a, 1)->host, "mx2.plain.rules.test");
    assert_int_equal(R(a, 2)->state, MXR_RCPT_BOUNCED);
    assert_reply(R(a, 2), 550, "5.1.1", "no such user");
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_rcpt_all_accepted_delivered(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 3, 0, 0);
    hop_at(a, 0, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rcpt(a, i, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DELIV);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(R(a, i)->state, MXR_RCPT_DELIVERED);
        assert_int_equal(R(a, i)->code, 250);
    }
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_rcpt_all_rejected_bounce_no_data(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 3, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 550, "5.1.1", "no such user"), BOUNCE);
    assert_int_equal(rcpt(a, 1, 553, "5.1.3", "bad address"), BOUNCE);
    assert_int_equal(rcpt(a, 2, 554, NULL, "denied"), BOUNCE);
    /* No recipient accepted: the RCPT phase ends the session, no DATA. */
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), BOUNCE);
    assert_reply(R(a, 0), 550, "5.1.1", "no such user");
    assert_reply(R(a, 1), 553, "5.1.3", "bad address");
    assert_reply(R(a, 2), 554, NULL, "denied");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(R(a, i)->state, MXR_RCPT_BOUNCED);
    assert_done(a);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), BOUNCE);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_BOUNCED);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* RCPT 4xx for one and 2xx for the other on the last host: the accepted
 * one is delivered, the other deferred with its own reply. */
static void test_rcpt_4xx_last_host_deferred(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "one.example.test");
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 451, "4.2.0", "greylisted"), NHOST);
    assert_int_equal(rcpt(a, 1, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DEFER);
    assert_first_retry(R(a, 0), f->now);
    assert_reply(R(a, 0), 451, "4.2.0", "greylisted");
    assert_int_equal(R(a, 1)->state, MXR_RCPT_DELIVERED);
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* A failure after RCPT: accepted recipients are not delivered. */
static void test_rcpt_then_data_failure_not_delivered(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(rcpt(a, 1, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_TIMEOUT), NADDR);
    assert_pending(a, 2);
    hop_at(a, 0, 1);
    /* Only r1 this time; a DOT OK delivers r1 alone. */
    assert_int_equal(rcpt(a, 1, 250, NULL, NULL), CONT);
    assert_int_equal(rcpt(a, 0, 452, "4.5.3", "too many recipients"), NHOST);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), NHOST);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_PENDING);
    assert_int_equal(R(a, 1)->state, MXR_RCPT_DELIVERED);
    hop_at(a, 1, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    /* Every recipient final, one delivered: the verdict is DELIVERED. */
    assert_int_equal(out_t(a, S_DATA, MXR_CLASS_5XX), DELIV);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_BOUNCED);
    assert_int_equal(R(a, 0)->code, 554);
    assert_int_equal(R(a, 1)->state, MXR_RCPT_DELIVERED);
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* A delivery reported without a reply of its own ({DOT, OK} with code 0,
 * as a probe that stops before DATA reports it): each recipient shows the
 * RCPT reply that accepted it, from the session that delivered it. */
static void test_delivered_without_reply_keeps_rcpt_acceptance(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 3, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 250, "2.1.5", "first host"), CONT);
    assert_int_equal(rcpt(a, 1, 250, "2.1.5", "first host"), CONT);
    assert_int_equal(rcpt(a, 2, 250, "2.1.5", "first host"), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DATA, MXR_CLASS_4XX), NHOST);
    assert_pending(a, 3);
    hop_at(a, 1, 0);
    assert_int_equal(rcpt(a, 0, 250, "2.1.5", "r0 ok"), CONT);
    assert_int_equal(rcpt(a, 1, 251, "2.1.5", "r1 forwarded"), CONT);
    assert_int_equal(rcpt(a, 2, 250, NULL, NULL), CONT);
    assert_int_equal(out(a, reply(S_DOT, MXR_CLASS_OK, 0, NULL, "no reply")),
                     DELIV);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DELIVERED);
    assert_reply(R(a, 0), 250, "2.1.5", "r0 ok");
    assert_reply(R(a, 1), 251, "2.1.5", "r1 forwarded");
    assert_reply(R(a, 2), 250, NULL, "accepted"); /* a bare 250 */
    assert_string_equal(R(a, 1)->host, "mx2.plain.rules.test");
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* ----------------------------------------------------- overrides (4) */

static void test_overrides_by_domain(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_cell(r, S_MAIL, MXR_CLASS_5XX, NHOST);
    assert_int_equal(mxr_rules_action(r, S_MAIL, MXR_CLASS_5XX), NHOST);
    add_rules(f, "example.test", r);
    r = new_rules();
    set_cell(r, S_GREETING, MXR_CLASS_4XX, DEFER);
    set_cell(r, S_CONNECT, MXR_CLASS_REFUSED, NHOST);
    add_rules(f, ".sub.example.test", r);
    start(f);

    /* Exact rule: example.test itself. */
    mxr_plan *p = route(f, "example.test");
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_5XX), NHOST);
    hop_at(a, 1, 0);
    /* Default cell, last host: defer. */
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_4XX), DEFER);
    assert_done(a);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DEFERRED);
    mxr_attempt_free(a);
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    mxr_attempt_free(a);
    mxr_plan_free(p);

    /* An exact rule is not for subdomains. */
    p = route(f, "other.example.test");
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_5XX), BOUNCE);
    mxr_attempt_free(a);
    mxr_plan_free(p);

    /* ".sub.example.test" is for the subdomains, not sub.example.test. */
    p = route(f, "sub.example.test");
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_4XX), NHOST);
    mxr_attempt_free(a);
    mxr_plan_free(p);

    /* The plan's domain picks the rules, whatever the input looked like. */
    p = route(f, "User@A.Sub.Example.Test");
    assert_string_equal(p->domain, "a.sub.example.test");
    a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_4XX), DEFER);
    assert_first_retry(R(a, 0), f->now);
    assert_first_retry(R(a, 1), f->now);
    assert_done(a);
    mxr_attempt_free(a);
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NHOST);
    hop_at(a, 1, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_5XX), BOUNCE);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_override_default_rules(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_cell(r, S_CONNECT, MXR_CLASS_REFUSED, NHOST);
    add_rules(f, NULL, r); /* the defaults of this engine */
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NHOST);
    hop_at(a, 1, 0);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_rules_api(void **state)
{
    (void)state;
    mxr_rules *r = new_rules();
    static const mxr_rule all[] = {
        MXR_RULE_MAX_ADDRESSES,    MXR_RULE_MAX_SESSIONS,
        MXR_RULE_RETRY_MIN_S,      MXR_RULE_RETRY_MAX_S,
        MXR_RULE_RETRY_FACTOR_PCT, MXR_RULE_RETRY_JITTER_PCT,
        MXR_RULE_MAX_AGE_S,        MXR_RULE_HEALTH_BASE_S,
        MXR_RULE_HEALTH_MAX_S};
    static const int64_t dflt[] = {10, 5,      300, 14400, 200,
                                   10, 432000, 60,  3600};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        assert_int_equal(mxr_rules_get(r, all[i]), dflt[i]);
        assert_int_equal(mxr_rules_get(NULL, all[i]), dflt[i]);
    }
    assert_int_equal(mxr_rules_set(r, MXR_RULE_MAX_ADDRESSES, 0), MXR_EINVAL);
    assert_int_equal(mxr_rules_set(r, MXR_RULE_RETRY_JITTER_PCT, 51),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_set(r, MXR__RULE_N, 1), MXR_EINVAL);
    assert_int_equal(mxr_rules_set(NULL, MXR_RULE_MAX_ADDRESSES, 3),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_get(r, MXR__RULE_N), -1);
    assert_int_equal(mxr_rules_set_action(r, MXR__STAGE_N, 1, NHOST),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, 0, MXR__CLASS_N, NHOST),
                     MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, 0, 1, MXR__ACTION_N), MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(NULL, 0, 1, NHOST), MXR_EINVAL);

    /* stay_on_4xx: exactly the 4xx cells of MAIL, RCPT, DATA, DOT. */
    mxr_rules_stay_on_4xx(r);
    mxr_rules_stay_on_4xx(NULL);
    for (int s = 0; s < MXR__STAGE_N; s++)
        for (int c = 0; c < MXR__CLASS_N; c++) {
            mxr_action want = mxr_rules_action(NULL, s, c);
            if (s >= S_MAIL && c == MXR_CLASS_4XX)
                want = DEFER;
            assert_int_equal(mxr_rules_action(r, s, c), want);
        }
    mxr_rules *copy = NULL;
    assert_int_equal(mxr_rules_copy(r, &copy), MXR_OK);
    assert_int_equal(mxr_rules_action(copy, S_RCPT, MXR_CLASS_4XX), DEFER);
    assert_int_equal(mxr_rules_copy(NULL, &copy), MXR_EINVAL);
    assert_int_equal(mxr_rules_copy(r, NULL), MXR_EINVAL);
    assert_int_equal(mxr_rules_new(NULL), MXR_EINVAL);
    mxr_rules_free(copy);
    mxr_rules_free(NULL);

    mxr_options *o = NULL;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    assert_int_equal(mxr_options_add_rules(o, "bad..name", r), MXR_EBADNAME);
    assert_int_equal(mxr_options_add_rules(o, "example.test", NULL),
                     MXR_EINVAL);
    assert_int_equal(mxr_options_add_rules(NULL, "example.test", r),
                     MXR_EINVAL);
    mxr_options_free(o);
    mxr_rules_free(r);

    /* Words. */
    for (int s = 0; s < MXR__STAGE_N; s++)
        assert_int_equal(mxr_stage_parse(mxr_stage_name(s)), s);
    for (int c = 0; c < MXR__CLASS_N; c++)
        assert_int_equal(mxr_class_parse(mxr_class_name(c)), c);
    for (int x = 0; x < MXR__ACTION_N; x++)
        assert_int_equal(mxr_action_parse(mxr_action_name(x)), x);
    assert_int_equal(mxr_stage_parse("nope"), -1);
    assert_int_equal(mxr_class_parse(NULL), -1);
    assert_string_equal(mxr_stage_name(MXR__STAGE_N), "unknown");
    assert_string_equal(mxr_rcpt_state_name(MXR_RCPT_DEFERRED), "deferred");
    assert_string_equal(mxr_rcpt_state_name((mxr_rcpt_state)9), "unknown");
    assert_int_equal(mxr_class_of_code(250), MXR_CLASS_OK);
    assert_int_equal(mxr_class_of_code(354), MXR_CLASS_OK);
    assert_int_equal(mxr_class_of_code(421), MXR_CLASS_421);
    assert_int_equal(mxr_class_of_code(451), MXR_CLASS_4XX);
    assert_int_equal(mxr_class_of_code(550), MXR_CLASS_5XX);
    /* Nonsense codes are temporary: a broken server never bounces mail. */
    assert_int_equal(mxr_class_of_code(0), MXR_CLASS_4XX);
    assert_int_equal(mxr_class_of_code(199), MXR_CLASS_4XX);
    assert_int_equal(mxr_class_of_code(600), MXR_CLASS_4XX);
}

static void test_stay_on_4xx(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    mxr_rules_stay_on_4xx(r);
    add_rules(f, "stay.example.test", r);
    start(f);
    mxr_plan *p = route(f, "stay.example.test");

    /* RCPT 451 defers that recipient at once; no next host. */
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 451, "4.2.0", "greylisted"), DEFER);
    assert_first_retry(R(a, 0), f->now);
    assert_reply(R(a, 0), 451, "4.2.0", "greylisted");
    assert_string_equal(R(a, 0)->host, "mx1.stay.example.test");
    assert_int_equal(rcpt(a, 1, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DEFER);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DEFERRED);
    assert_int_equal(R(a, 1)->state, MXR_RCPT_DELIVERED);
    assert_done(a);
    mxr_attempt_free(a);

    /* Every recipient 451: the RCPT phase ends the attempt. */
    a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 451, NULL, NULL), DEFER);
    assert_int_equal(rcpt(a, 1, 450, NULL, NULL), DEFER);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), DEFER);
    assert_done(a);
    mxr_attempt_free(a);

    /* MAIL, DATA and end-of-data 451 defer everything at once. */
    static const mxr_stage stages[] = {S_MAIL, S_DATA, S_DOT};
    for (size_t k = 0; k < 3; k++) {
        a = attempt(f, p, 2, 0, 0);
        hop_at(a, 0, 0);
        if (stages[k] > S_RCPT) {
            assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
            assert_int_equal(rcpt(a, 1, 250, NULL, NULL), CONT);
            assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
        }
        assert_int_equal(out_t(a, stages[k], MXR_CLASS_4XX), DEFER);
        assert_first_retry(R(a, 0), f->now);
        assert_first_retry(R(a, 1), f->now);
        assert_reply(R(a, 1), 451, "4.3.0", "try again later");
        assert_done(a);
        mxr_attempt_free(a);
    }

    /* Connection-level failures and greeting 4xx still move on. */
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_421), NADDR);
    hop_at(a, 1, 0);
    assert_int_equal(out_t(a, S_GREETING, MXR_CLASS_4XX), DEFER); /* last */
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* -------------------------------------------------------- limits (5) */

static void test_limit_addresses(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_rule(r, MXR_RULE_MAX_ADDRESSES, 3);
    add_rules(f, "five.example.test", r);
    start(f);
    mxr_plan *p = route(f, "five.example.test");
    assert_int_equal(p->ncandidates, 2);
    assert_int_equal(p->candidates[0].naddrs + p->candidates[1].naddrs, 5);
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 0, 1);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 0, 2);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), DEFER);
    assert_first_retry(R(a, 0), f->now);
    assert_first_retry(R(a, 1), f->now);
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);

    /* The default limit is 10 addresses. */
    p = route(f, "manytotal.rules.test");
    a = attempt(f, p, 1, 0, 0);
    size_t hops = 0;
    mxr_hop h;
    mxr_action act = NADDR;
    while (mxr_attempt_next(a, &h) == MXR_OK) {
        hops++;
        act = out_t(a, S_CONNECT, MXR_CLASS_TIMEOUT);
        if (act != NADDR)
            break;
    }
    assert_int_equal(hops, 10);
    assert_int_equal(act, DEFER);
    assert_done(a);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_limit_sessions(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_rule(r, MXR_RULE_MAX_SESSIONS, 1);
    add_rules(f, "sess.example.test", r);
    start(f);
    mxr_plan *p = route(f, "sess.example.test");

    /* One session that failed with 4xx: no second session. */
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), DEFER);
    assert_first_retry(R(a, 0), f->now);
    assert_done(a);
    mxr_attempt_free(a);

    /* A refused connection is no session. */
    a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 1, 0);
    assert_int_equal(out_t(a, S_EHLO, MXR_CLASS_4XX), DEFER);
    assert_done(a);
    mxr_attempt_free(a);

    /* A partly successful session leaves the rest deferred. */
    a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(rcpt(a, 1, 451, NULL, "later"), NHOST);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DEFER);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_DELIVERED);
    assert_first_retry(R(a, 1), f->now);
    assert_string_equal(R(a, 1)->text, "later");
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* --------------------------------------------------------- retry (6) */

/* Defer one recipient of a fresh attempt on a one-address plan with
 * MAIL 451; returns its retry delay. */
static uint64_t retry_delay(fixture *f, const mxr_plan *p, uint64_t first,
                            unsigned attempts)
{
    mxr_attempt *a = attempt(f, p, 1, first, attempts);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), DEFER);
    const mxr_rcpt *r = R(a, 0);
    assert_int_equal(r->state, MXR_RCPT_DEFERRED);
    assert_true(r->retry_at_ms > f->now);
    uint64_t d = r->retry_at_ms - f->now;
    mxr_attempt_free(a);
    return d;
}

static void test_retry_schedule(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_rule(r, MXR_RULE_RETRY_MIN_S, 60);
    set_rule(r, MXR_RULE_RETRY_MAX_S, 600);
    set_rule(r, MXR_RULE_RETRY_FACTOR_PCT, 300);
    set_rule(r, MXR_RULE_RETRY_JITTER_PCT, 0);
    set_rule(r, MXR_RULE_MAX_AGE_S, 3600);
    add_rules(f, "retry.example.test", r);
    start(f);
    mxr_plan *p = route(f, "one.example.test");

    /* Defaults: 300 s * 2^attempts, +-10%, within [300 s, 14400 s]. */
    static const struct {
        unsigned attempts;
        uint64_t lo, hi;
    } dflt[] = {
        {0, RETRY_MIN, RETRY_MIN + RETRY_MIN / 10},
        {1, 540 * SEC, 660 * SEC},
        {3, 2160 * SEC, 2640 * SEC},
        {5, 8640 * SEC, 10560 * SEC}, /* 9600 s +-10% */
        {50, RETRY_MAX - RETRY_MAX / 10, RETRY_MAX},
        {1000000, RETRY_MAX - RETRY_MAX / 10, RETRY_MAX},
    };
    for (size_t k = 0; k < sizeof dflt / sizeof *dflt; k++) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 200; i++) {
            f->now += SEC;
            uint64_t d = retry_delay(f, p, 0, dflt[k].attempts);
            assert_in_range(d, dflt[k].lo, dflt[k].hi);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* Jitter: 200 draws are not all the same. */
        assert_true(hi > lo);
    }
    mxr_plan_free(p);

    /* Per-domain schedule, no jitter: exact. */
    p = route(f, "retry.example.test");
    assert_int_equal(retry_delay(f, p, 0, 0), 60 * SEC);
    assert_int_equal(retry_delay(f, p, 0, 1), 180 * SEC);
    assert_int_equal(retry_delay(f, p, 0, 2), 540 * SEC);
    assert_int_equal(retry_delay(f, p, 0, 3), 600 * SEC);
    /* Close to the maximum age: one last try at the deadline itself. */
    assert_int_equal(retry_delay(f, p, f->now - 3590 * SEC, 0), 10 * SEC);
    mxr_plan_free(p);
}

static void test_retry_max_age(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_rule(r, MXR_RULE_MAX_AGE_S, 3600);
    add_rules(f, "retry.example.test", r);
    start(f);
    mxr_plan *p = route(f, "one.example.test");

    /* One millisecond short of the maximum age: deferred to the deadline. */
    uint64_t first = f->now - MAX_AGE + 100 * SEC;
    assert_int_equal(retry_delay(f, p, first, 3), 100 * SEC);

    /* At and past the maximum age: bounced with the last error. */
    static const uint64_t ages[] = {MAX_AGE, MAX_AGE + 1, 30 * DAY};
    for (size_t k = 0; k < 3; k++) {
        mxr_attempt *a = attempt(f, p, 2, f->now - ages[k], 7);
        hop_at(a, 0, 0);
        assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
        assert_int_equal(rcpt(a, 1, 451, "4.2.0", "greylisted"), NHOST);
        assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
        assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DELIV);
        assert_int_equal(R(a, 0)->state, MXR_RCPT_DELIVERED);
        const mxr_rcpt *rc = R(a, 1);
        assert_int_equal(rc->state, MXR_RCPT_BOUNCED);
        assert_true(starts_with(rc->text, "expired"));
        assert_non_null(strstr(rc->text, "greylisted"));
        assert_int_equal(rc->code, 451);
        assert_done(a);
        mxr_attempt_free(a);
    }

    /* Time passes during the attempt: first_attempt_ms 0 is "now" at
     * mxr_attempt_new, and the age is checked when the recipient defers. */
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    f->now += MAX_AGE;
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), BOUNCE);
    assert_true(starts_with(R(a, 0)->text, "expired"));
    mxr_attempt_free(a);

    /* A first attempt in the future counts as age 0. */
    assert_in_range(retry_delay(f, p, f->now + HOUR, 0), RETRY_MIN,
                    RETRY_MIN + RETRY_MIN / 10);
    mxr_plan_free(p);

    /* Per-domain maximum age. */
    p = route(f, "retry.example.test");
    a = attempt(f, p, 1, f->now - 3601 * SEC, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), BOUNCE);
    assert_true(starts_with(R(a, 0)->text, "expired"));
    mxr_attempt_free(a);
    assert_in_range(retry_delay(f, p, f->now - 3000 * SEC, 0), RETRY_MIN,
                    RETRY_MIN + RETRY_MIN / 10);
    mxr_plan_free(p);
}

/* -------------------------------------------------------- health (7) */

static size_t cand_index(const mxr_plan *p, const char *host)
{
    for (size_t i = 0; i < p->ncandidates; i++)
        if (strcmp(p->candidates[i].host, host) == 0)
            return i;
    return SIZE_MAX;
}

/* The attempt's plan holds the routed plan's hosts and addresses, in
 * some order: never one dropped. */
static void assert_same_members(const mxr_plan *routed, const mxr_plan *got)
{
    assert_int_equal(got->ncandidates, routed->ncandidates);
    for (size_t i = 0; i < routed->ncandidates; i++) {
        const mxr_candidate *c = &routed->candidates[i];
        size_t j = cand_index(got, c->host);
        assert_true(j < got->ncandidates);
        assert_int_equal(got->candidates[j].naddrs, c->naddrs);
        for (size_t k = 0; k < c->naddrs; k++)
            assert_true(addr_index(&got->candidates[j], &c->addrs[k]) <
                        c->naddrs);
    }
}

/* The host order of a new attempt on p, and its MXR_NOTE_DOWN notes. */
static void assert_order(fixture *f, const mxr_plan *p, const char *first,
                         bool first_down, const char *second, bool second_down)
{
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    const mxr_plan *ap = mxr_attempt_plan(a);
    assert_same_members(p, ap);
    assert_string_equal(ap->candidates[0].host, first);
    assert_string_equal(ap->candidates[1].host, second);
    assert_int_equal((ap->candidates[0].notes & MXR_NOTE_DOWN) != 0,
                     first_down);
    assert_int_equal((ap->candidates[1].notes & MXR_NOTE_DOWN) != 0,
                     second_down);
    mxr_hop h = hop_at(a, 0, 0);
    assert_int_equal(h.host_down, first_down);
    mxr_attempt_free(a);
}

/* Refuse every address of the host at the front of a new attempt. */
static void refuse_front_host(fixture *f, const mxr_plan *p)
{
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 0, 1);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    mxr_attempt_free(a);
}

#define MX1 "mx1.plain.rules.test"
#define MX2 "mx2.plain.rules.test"

static void test_health_down_host_moves_last(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    assert_order(f, p, MX1, false, MX2, false);

    refuse_front_host(f, p); /* mx1 down for 60 s */
    f->now += 10 * SEC;
    assert_order(f, p, MX2, false, MX1, true);
    /* The routed plan itself is untouched. */
    assert_string_equal(p->candidates[0].host, MX1);
    assert_int_equal(p->candidates[0].notes & MXR_NOTE_DOWN, 0);

    /* Reached after the others, mx1 is still tried, marked down. */
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), NHOST);
    mxr_hop h = hop_at(a, 1, 0);
    assert_string_equal(h.host, MX1);
    assert_true(h.host_down);
    mxr_attempt_free(a);

    /* Past the cool-down (60 s): back in front. */
    f->now += 51 * SEC;
    assert_order(f, p, MX1, false, MX2, false);

    /* A second failure doubles the cool-down to 120 s. */
    refuse_front_host(f, p);
    f->now += 100 * SEC;
    assert_order(f, p, MX2, false, MX1, true);
    f->now += 21 * SEC;
    assert_order(f, p, MX1, false, MX2, false);
    mxr_plan_free(p);
}

static void test_health_success_clears(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    refuse_front_host(f, p);
    f->now += SEC;
    assert_order(f, p, MX2, false, MX1, true);

    /* mx2 says 4xx, mx1 (down) takes the message: mx1 is healthy again. */
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), NHOST);
    mxr_hop h = hop_at(a, 1, 0);
    assert_true(h.host_down);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DELIV);
    mxr_attempt_free(a);
    f->now += SEC;
    assert_order(f, p, MX1, false, MX2, false);
    mxr_plan_free(p);
}

static void test_health_address_order(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    const mxr_addr first = p->candidates[0].addrs[0];
    const mxr_addr second = p->candidates[0].addrs[1];
    /* The first address of mx1 refuses, the second takes the message. */
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    hop_at(a, 0, 1);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DELIV);
    mxr_attempt_free(a);
    /* mx1 is fine, its refusing address goes after the other one. */
    a = attempt(f, p, 1, 0, 0);
    const mxr_plan *ap = mxr_attempt_plan(a);
    assert_string_equal(ap->candidates[0].host, MX1);
    assert_int_equal(ap->candidates[0].notes & MXR_NOTE_DOWN, 0);
    assert_true(addr_eq(&ap->candidates[0].addrs[0], &second));
    assert_true(addr_eq(&ap->candidates[0].addrs[1], &first));
    mxr_hop h = hop_at(a, 0, 0);
    assert_true(addr_eq(&h.addr, &second));
    assert_false(h.host_down);
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

static void test_health_all_down(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    refuse_front_host(f, p); /* mx1 at t */
    f->now += SEC;
    refuse_front_host(f, p); /* mx2 at t + 1 s */
    f->now += SEC;
    /* All down: the least recently failed first, and none dropped. */
    assert_order(f, p, MX1, true, MX2, true);

    /* Later, the other way round. */
    f->now += 3 * HOUR;
    assert_order(f, p, MX1, false, MX2, false);
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), NHOST); /* mx1 ok */
    hop_at(a, 1, 0);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_RESET), NADDR);
    hop_at(a, 1, 1);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_UNREACHABLE), DEFER);
    mxr_attempt_free(a); /* mx2 down at t2 */
    f->now += SEC;
    refuse_front_host(f, p); /* mx1 down at t2 + 1 s */
    f->now += SEC;
    assert_order(f, p, MX2, true, MX1, true);
    mxr_plan_free(p);
}

static void test_health_base_from_default_rules(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    set_rule(r, MXR_RULE_HEALTH_BASE_S, 10);
    add_rules(f, NULL, r);
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    refuse_front_host(f, p);
    f->now += 9 * SEC;
    assert_order(f, p, MX2, false, MX1, true);
    f->now += 2 * SEC;
    assert_order(f, p, MX1, false, MX2, false);
    mxr_plan_free(p);
}

/* -------------------------------------------------- failed plans (8) */

static void test_failed_plans(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_hop h;

    mxr_plan *p = route(f, "nullmx.rules.test");
    assert_int_equal(p->result, MXR_RESULT_PERMFAIL);
    mxr_attempt *a = attempt(f, p, 3, 0, 0);
    assert_true(mxr_attempt_done(a));
    for (size_t i = 0; i < 3; i++) {
        const mxr_rcpt *r = R(a, i);
        assert_int_equal(r->state, MXR_RCPT_BOUNCED);
        assert_string_equal(r->text, "routing: permfail (null-mx)");
    }
    assert_int_equal(mxr_attempt_next(a, &h), MXR_EDONE);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), BOUNCE);
    mxr_attempt_free(a);
    mxr_plan_free(p);

    p = route(f, "unserved-all.rules.test");
    assert_int_equal(p->result, MXR_RESULT_TEMPFAIL);
    a = attempt(f, p, 2, 0, 0);
    assert_true(mxr_attempt_done(a));
    for (size_t i = 0; i < 2; i++) {
        assert_first_retry(R(a, i), f->now);
        assert_string_equal(R(a, i)->text, "routing: tempfail (tempfail)");
    }
    assert_int_equal(mxr_attempt_next(a, &h), MXR_EDONE);
    assert_int_equal(out_t(a, S_DOT, MXR_CLASS_OK), DEFER);
    mxr_attempt_free(a);
    /* Too old: a temporary routing failure bounces. */
    a = attempt(f, p, 1, f->now - MAX_AGE - SEC, 4);
    assert_true(mxr_attempt_done(a));
    assert_int_equal(R(a, 0)->state, MXR_RCPT_BOUNCED);
    assert_true(starts_with(R(a, 0)->text, "expired"));
    assert_non_null(strstr(R(a, 0)->text, "routing: tempfail"));
    mxr_attempt_free(a);
    mxr_plan_free(p);

    p = route(f, "fault-servfail.rules.test");
    assert_int_equal(p->result, MXR_RESULT_TEMPFAIL);
    a = attempt(f, p, 1, 0, 2);
    assert_deferred(R(a, 0), f->now, 1080 * SEC, 1320 * SEC);
    assert_string_equal(R(a, 0)->text, "routing: tempfail (servfail)");
    mxr_attempt_free(a);
    mxr_plan_free(p);
}

/* ----------------------------------------------------------- misuse */

static void test_misuse(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_message m = {"s@x.test", rcpt_names, 2, 0, 0};
    mxr_attempt *a = NULL;
    assert_int_equal(mxr_attempt_new(NULL, p, &m, &a), MXR_EINVAL);
    assert_int_equal(mxr_attempt_new(f->e, NULL, &m, &a), MXR_EINVAL);
    assert_int_equal(mxr_attempt_new(f->e, p, NULL, &a), MXR_EINVAL);
    assert_int_equal(mxr_attempt_new(f->e, p, &m, NULL), MXR_EINVAL);
    mxr_message m2 = {"s@x.test", NULL, 2, 0, 0};
    assert_int_equal(mxr_attempt_new(f->e, p, &m2, &a), MXR_EINVAL);
    const char *holes[] = {"a@x.test", NULL, "c@x.test"};
    mxr_message m3 = {"s@x.test", holes, 3, 0, 0};
    assert_int_equal(mxr_attempt_new(f->e, p, &m3, &a), MXR_EINVAL);
    assert_null(a);

    a = attempt(f, p, 2, 0, 0);
    mxr_plan_free(p); /* the attempt has its own copy */
    p = NULL;
    mxr_hop h;
    /* Outcomes and RCPT replies without a hop: ignored. */
    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_5XX), CONT);
    assert_int_equal(rcpt(a, 0, 550, NULL, NULL), CONT);
    assert_pending(a, 2);
    assert_false(mxr_attempt_done(a));
    assert_int_equal(mxr_attempt_next(NULL, &h), MXR_EINVAL);
    assert_int_equal(mxr_attempt_next(a, NULL), MXR_EINVAL);

    hop_at(a, 0, 0);
    assert_int_equal(mxr_attempt_next(a, &h), MXR_ESTATE); /* no outcome */
    mxr_outcome o = typical(S_RCPT, MXR_CLASS_OK);
    assert_int_equal(mxr_attempt_rcpt(a, 2, &o), CONT);
    assert_int_equal(mxr_attempt_rcpt(a, SIZE_MAX, &o), CONT);
    assert_int_equal(mxr_attempt_rcpt(a, 0, NULL), CONT);
    assert_int_equal(mxr_attempt_rcpt(NULL, 0, &o), CONT);
    assert_int_equal(mxr_attempt_outcome(a, NULL), CONT);
    assert_int_equal(mxr_attempt_outcome(NULL, &o), CONT);
    assert_int_equal(
        out(a, reply((mxr_stage)99, MXR_CLASS_5XX, 550, NULL, NULL)), CONT);
    assert_int_equal(
        out(a, reply((mxr_stage)-1, MXR_CLASS_5XX, 550, NULL, NULL)), CONT);
    assert_int_equal(out(a, reply(S_MAIL, (mxr_class)99, 550, NULL, NULL)),
                     CONT);
    /* None of it counted: the session is still open, nothing settled. */
    assert_int_equal(mxr_attempt_next(a, &h), MXR_ESTATE);
    assert_pending(a, 2);
    /* A second RCPT reply for the same recipient is ignored. */
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(rcpt(a, 0, 550, NULL, NULL), CONT);
    assert_int_equal(R(a, 0)->state, MXR_RCPT_PENDING);

    assert_null(mxr_attempt_recipient(a, 2));
    assert_null(mxr_attempt_recipient(NULL, 0));
    assert_int_equal(mxr_attempt_nrecipients(NULL), 0);
    assert_null(mxr_attempt_plan(NULL));
    assert_false(mxr_attempt_done(NULL));
    mxr_attempt_free(NULL);

    assert_int_equal(out_t(a, S_MAIL, MXR_CLASS_4XX), NHOST);
    mxr_attempt_free(a); /* in the middle: nothing leaks (teardown) */
}

/* Allocation failures in mxr_attempt_new: an error, never a crash or a
 * leak. */
static void test_attempt_new_alloc_failures(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_message m = {"s@x.test", rcpt_names, 3, 0, 0};
    int ok = 0;
    for (long k = 1; k < 20; k++) {
        mxr_attempt *a = NULL;
        size_t live = f->ta.live;
        f->ta.fail_at = f->ta.calls + k;
        mxr_status st = mxr_attempt_new(f->e, p, &m, &a);
        f->ta.fail_at = 0;
        if (st == MXR_OK) {
            ok++;
            mxr_attempt_free(a);
        } else {
            assert_int_equal(st, MXR_ENOMEM);
            assert_null(a);
        }
        assert_int_equal(f->ta.live, live);
    }
    assert_true(ok > 0);
    mxr_plan_free(p);
}

/* ------------------------------------------------- the invariant (9) */

static uint64_t xs_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static unsigned rnd(uint64_t *s, unsigned n)
{
    return (unsigned)((xs_next(s) >> 11) % n);
}

typedef struct trace_ent {
    char op; /* 'n' next, 'o' outcome, 'r' rcpt, 't' clock */
    int i, stage, cls, code, result;
    uint64_t t;
} trace_ent;

#define TRACE_MAX 512

/* One attempt being driven, and what the test knows about it. */
typedef struct drv {
    fixture *f;
    mxr_attempt *a;
    const mxr_plan *routed;
    size_t n;
    /* the rules the attempt runs under */
    unsigned max_addrs, max_sessions;
    uint64_t min_ms, max_ms, max_age_ms, first_ms;
    bool loose; /* cells overridden at random: bounces may carry anything */
    /* the session */
    bool tried[MAXR], accepted[MAXR];
    bool have_hop;
    size_t cand, addr;
    mxr_action move;
    unsigned hops, sessions;
    /* per recipient */
    mxr_rcpt_state state[MAXR];
    int code[MAXR];
    uint64_t retry_at[MAXR];
    /* for messages */
    const char *label;
    unsigned long seq;
    unsigned attempts;
    trace_ent tr[TRACE_MAX];
    size_t ntr;
} drv;

/* Failed checks, tallied by line: the first example is kept in full. */
typedef struct tally {
    int line;
    const char *what;
    unsigned long count;
    char *first;
} tally;

static tally tallies[64];
static size_t ntallies;

static const char *trace_op(const trace_ent *t, char *buf, size_t len)
{
    switch (t->op) {
    case 'n':
        snprintf(buf, len, "next -> %s cand=%d addr=%d",
                 mxr_strerror((mxr_status)t->result), t->stage, t->cls);
        break;
    case 'o':
        snprintf(buf, len, "outcome %s %s %d -> %s",
                 mxr_stage_name((mxr_stage)t->stage),
                 mxr_class_name((mxr_class)t->cls), t->code,
                 mxr_action_name((mxr_action)t->result));
        break;
    case 'r':
        snprintf(buf, len, "rcpt %d %s %d -> %s", t->i,
                 mxr_class_name((mxr_class)t->cls), t->code,
                 mxr_action_name((mxr_action)t->result));
        break;
    default:
        snprintf(buf, len, "clock +%llu ms", (unsigned long long)t->t);
        break;
    }
    return buf;
}

static void drv_fail(drv *d, const char *what, int line)
{
    tally *t = NULL;
    for (size_t i = 0; i < ntallies; i++)
        if (tallies[i].line == line)
            t = &tallies[i];
    if (!t) {
        if (ntallies == sizeof tallies / sizeof *tallies)
            return;
        t = &tallies[ntallies++];
        t->line = line;
        t->what = what;
        t->count = 0;
        size_t cap = 65536, used = 0;
        t->first = malloc(cap);
        if (t->first) {
            used += (size_t)snprintf(
                t->first, cap,
                "  %s #%lu: domain %s, %zu recipients, attempts %u, "
                "first %lld ms from t0, max_addrs %u, max_sessions %u\n",
                d->label, d->seq, d->routed->domain, d->n, d->attempts,
                (long long)(d->first_ms - T0), d->max_addrs, d->max_sessions);
            char buf[128];
            for (size_t i = 0; i < d->ntr && used < cap - 256; i++)
                used +=
                    (size_t)snprintf(t->first + used, cap - used, "    %s\n",
                                     trace_op(&d->tr[i], buf, sizeof buf));
            for (size_t i = 0; i < d->n && used < cap - 256; i++) {
                const mxr_rcpt *r = mxr_attempt_recipient(d->a, i);
                if (!r)
                    continue;
                used += (size_t)snprintf(
                    t->first + used, cap - used,
                    "    r%zu: %s code %d text '%s' retry_at %+lld ms\n", i,
                    mxr_rcpt_state_name(r->state), r->code,
                    r->text ? r->text : "(null)",
                    r->state == MXR_RCPT_DEFERRED
                        ? (long long)(r->retry_at_ms - d->f->now)
                        : 0LL);
            }
        }
    }
    t->count++;
}

#define CHECK(d, cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            drv_fail((d), #cond, __LINE__);                                    \
            return false;                                                      \
        }                                                                      \
    } while (0)

static void report_tallies(const char *label, unsigned long runs)
{
    for (size_t i = 0; i < ntallies; i++) {
        fprintf(stderr,
                "%s: check '%s' (line %d) failed in %lu of %lu runs; "
                "first:\n%s",
                label, tallies[i].what, tallies[i].line, tallies[i].count, runs,
                tallies[i].first ? tallies[i].first : "");
        free(tallies[i].first);
    }
    size_t n = ntallies;
    ntallies = 0;
    if (n)
        fail_msg("%s: %zu kinds of failed checks", label, n);
}

static void trace(drv *d, char op, int i, int stage, int cls, int code,
                  int result)
{
    if (d->ntr < TRACE_MAX)
        d->tr[d->ntr++] = (trace_ent){op, i, stage, cls, code, result, 0};
}

static void advance(drv *d, uint64_t ms)
{
    if (!ms)
        return;
    d->f->now += ms;
    if (d->ntr < TRACE_MAX)
        d->tr[d->ntr++] = (trace_ent){'t', 0, 0, 0, 0, 0, ms};
}

static int code_of(mxr_class c, unsigned pick)
{
    static const int c4[] = {450, 451, 452};
    static const int c5[] = {550, 552, 553, 554};
    switch (c) {
    case MXR_CLASS_OK:
        return 250;
    case MXR_CLASS_4XX:
        return c4[pick % 3];
    case MXR_CLASS_5XX:
        return c5[pick % 4];
    case MXR_CLASS_421:
        return 421;
    default:
        return 0;
    }
}

static const char *text_of(mxr_class c, unsigned pick)
{
    static const char *const t[] = {"ok", "try again later", "go away", NULL};
    if (pick % 4 == 3)
        return NULL;
    return c == MXR_CLASS_OK ? t[0] : c == MXR_CLASS_5XX ? t[2] : t[pick % 2];
}

static mxr_action d_outcome(drv *d, mxr_stage s, mxr_class c, int code)
{
    mxr_outcome o = {s, c, code,
                     c == MXR_CLASS_OK    ? "2.0.0"
                     : c == MXR_CLASS_5XX ? "5.7.1"
                     : code               ? "4.3.0"
                                          : NULL,
                     text_of(c, (unsigned)code + (unsigned)s)};
    mxr_action act = mxr_attempt_outcome(d->a, &o);
    trace(d, 'o', 0, s, c, code, act);
    return act;
}

static size_t count_state(const drv *d, mxr_rcpt_state st)
{
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++)
        k += mxr_attempt_recipient(d->a, i)->state == st;
    return k;
}

/* The message's age now; a first attempt in the future is age 0. */
static uint64_t drv_age(const drv *d)
{
    return d->f->now > d->first_ms ? d->f->now - d->first_ms : 0;
}

/* After every call: a final state never changes; a recipient that just
 * became final is consistent. Delivery only at an end-of-data OK
 * (dot_ok), and then exactly for the recipients accepted in the session. */
static bool drv_observe(drv *d, bool dot_ok)
{
    uint64_t now = d->f->now;
    for (size_t i = 0; i < d->n; i++) {
        const mxr_rcpt *r = mxr_attempt_recipient(d->a, i);
        CHECK(d, r != NULL);
        if (d->state[i] != MXR_RCPT_PENDING) {
            CHECK(d, r->state == d->state[i]);
            CHECK(d, r->code == d->code[i]);
            CHECK(d, r->state != MXR_RCPT_DEFERRED ||
                         r->retry_at_ms == d->retry_at[i]);
            continue;
        }
        bool deliver = dot_ok && d->accepted[i];
        switch (r->state) {
        case MXR_RCPT_PENDING:
            CHECK(d, !deliver);
            break;
        case MXR_RCPT_DELIVERED:
            CHECK(d, deliver);
            CHECK(d, r->host != NULL);
            break;
        case MXR_RCPT_BOUNCED:
            CHECK(d, !deliver);
            CHECK(d, r->text != NULL);
            if (starts_with(r->text, "expired")) {
                CHECK(d, drv_age(d) >= d->max_age_ms);
            } else if (!starts_with(r->text, "routing:") && !d->loose) {
                CHECK(d, r->code >= 500 && r->code <= 599);
            }
            break;
        case MXR_RCPT_DEFERRED: {
            CHECK(d, !deliver);
            CHECK(d, r->text != NULL);
            CHECK(d, r->retry_at_ms > now);
            uint64_t deadline = d->first_ms + d->max_age_ms;
            uint64_t delay = r->retry_at_ms - now;
            CHECK(d, drv_age(d) < d->max_age_ms);
            CHECK(d, r->retry_at_ms <= deadline);
            CHECK(d, r->retry_at_ms == deadline ||
                         (delay >= d->min_ms && delay <= d->max_ms));
            break;
        }
        default:
            CHECK(d, false);
        }
        d->state[i] = r->state;
        d->code[i] = r->code;
        d->retry_at[i] = r->retry_at_ms;
    }
    if (mxr_attempt_done(d->a))
        CHECK(d, count_state(d, MXR_RCPT_PENDING) == 0);
    return true;
}

/* The action that ends a session agrees with the recipients. */
static bool drv_check_action(drv *d, mxr_action act)
{
    bool done = mxr_attempt_done(d->a);
    size_t npend = count_state(d, MXR_RCPT_PENDING);
    switch (act) {
    case MXR_ACTION_DEFER:
    case MXR_ACTION_BOUNCE:
    case MXR_ACTION_DELIVERED: {
        CHECK(d, done);
        CHECK(d, npend == 0);
        mxr_action verdict = count_state(d, MXR_RCPT_DEFERRED)    ? DEFER
                             : count_state(d, MXR_RCPT_DELIVERED) ? DELIV
                                                                  : BOUNCE;
        CHECK(d, act == verdict);
        break;
    }
    case MXR_ACTION_NEXT_ADDRESS:
    case MXR_ACTION_NEXT_HOST:
        CHECK(d, !done);
        CHECK(d, npend > 0);
        break;
    default:
        CHECK(d, false);
    }
    return true;
}

static bool drv_end(drv *d, mxr_action act, mxr_stage stage, bool dot_ok)
{
    if (stage > S_CONNECT)
        d->sessions++;
    CHECK(d, d->sessions <= d->max_sessions);
    if (!drv_observe(d, dot_ok))
        return false;
    memset(d->accepted, 0, sizeof d->accepted);
    if (!drv_check_action(d, act))
        return false;
    d->move = act;
    return true;
}

/* Where the next hop must be: plan order, after the last move. */
static void expected_hop(const drv *d, const mxr_plan *p, size_t *cand,
                         size_t *addr)
{
    size_t c = 0, k = 0;
    if (d->have_hop) {
        c = d->cand;
        k = d->addr;
        if (d->move == NADDR && k + 1 < p->candidates[c].naddrs) {
            k++;
        } else {
            c++;
            k = 0;
        }
    }
    while (c < p->ncandidates && p->candidates[c].naddrs == 0)
        c++;
    *cand = c;
    *addr = k;
}

static bool drv_hop(drv *d, const mxr_hop *h)
{
    const mxr_plan *p = mxr_attempt_plan(d->a);
    CHECK(d, p != NULL);
    CHECK(d, h->candidate < p->ncandidates);
    const mxr_candidate *c = &p->candidates[h->candidate];
    size_t k = addr_index(c, &h->addr);
    CHECK(d, k < c->naddrs);
    CHECK(d, strcmp(h->host, c->host) == 0);
    CHECK(d, h->port == c->port && h->preference == c->preference);
    CHECK(d, h->host_down == ((c->notes & MXR_NOTE_DOWN) != 0));
    size_t wc, wk;
    expected_hop(d, p, &wc, &wk);
    CHECK(d, h->candidate == wc && k == wk);
    d->have_hop = true;
    d->cand = h->candidate;
    d->addr = k;
    d->hops++;
    CHECK(d, d->hops <= d->max_addrs);
    memset(d->tried, 0, sizeof d->tried);
    memset(d->accepted, 0, sizeof d->accepted);
    return true;
}

static bool drv_rcpt(drv *d, size_t i, mxr_class cls, int code)
{
    bool counts = d->state[i] == MXR_RCPT_PENDING && !d->tried[i];
    mxr_outcome o = {S_RCPT, cls, code, NULL, text_of(cls, (unsigned)i)};
    mxr_action act = mxr_attempt_rcpt(d->a, i, &o);
    trace(d, 'r', (int)i, S_RCPT, cls, code, act);
    if (!counts) {
        CHECK(d, act == CONT);
        return drv_observe(d, false);
    }
    d->tried[i] = true;
    if (cls == MXR_CLASS_OK) {
        d->accepted[i] = true;
        CHECK(d, act == CONT);
        return drv_observe(d, false);
    }
    if (!drv_observe(d, false))
        return false;
    const mxr_rcpt *r = mxr_attempt_recipient(d->a, i);
    switch (act) {
    case MXR_ACTION_BOUNCE:
        CHECK(d, r->state == MXR_RCPT_BOUNCED);
        break;
    case MXR_ACTION_DEFER: /* or bounced, when the message expired */
        CHECK(d, r->state == MXR_RCPT_DEFERRED ||
                     (r->state == MXR_RCPT_BOUNCED &&
                      starts_with(r->text, "expired")));
        break;
    case MXR_ACTION_NEXT_ADDRESS:
    case MXR_ACTION_NEXT_HOST:
        CHECK(d, r->state == MXR_RCPT_PENDING);
        break;
    default:
        CHECK(d, false);
    }
    return true;
}

/* One SMTP session as the caller reports it. */
typedef struct script {
    mxr_stage stage; /* where the session ends */
    mxr_class cls;   /* how; at RCPT, OK means: then end-of-data OK */
    int code;
    bool progress; /* report the stages before as OK first */
    bool rcpt_sent[MAXR];
    mxr_class rcpt_cls[MAXR];
    int rcpt_code[MAXR];
    int dup;             /* a recipient that gets a second RCPT reply, or -1 */
    uint64_t advance_ms; /* time spent in the session */
} script;

static bool drv_session(drv *d, const script *s)
{
    mxr_action act;
    if (s->progress) {
        for (int st = 0; st < (int)s->stage && st < S_RCPT; st++) {
            act = d_outcome(d, st, MXR_CLASS_OK, 250);
            CHECK(d, act == CONT);
            if (!drv_observe(d, false))
                return false;
        }
    }
    if (s->stage < S_RCPT) {
        advance(d, s->advance_ms);
        return drv_end(d, d_outcome(d, s->stage, s->cls, s->code), s->stage,
                       false);
    }
    for (size_t i = 0; i < d->n; i++)
        if (s->rcpt_sent[i] && !drv_rcpt(d, i, s->rcpt_cls[i], s->rcpt_code[i]))
            return false;
    if (s->dup >= 0 && (size_t)s->dup < d->n &&
        !drv_rcpt(d, (size_t)s->dup, MXR_CLASS_OK, 250))
        return false;
    advance(d, s->advance_ms);
    if (s->stage == S_RCPT && s->cls != MXR_CLASS_OK)
        return drv_end(d, d_outcome(d, S_RCPT, s->cls, s->code), S_RCPT, false);
    bool any = false;
    for (size_t i = 0; i < d->n; i++)
        any |= d->accepted[i];
    act = d_outcome(d, S_RCPT, MXR_CLASS_OK, 250);
    if (!any)
        return drv_end(d, act, S_RCPT, false);
    CHECK(d, act == CONT);
    if (!drv_observe(d, false))
        return false;
    if (s->stage == S_RCPT)
        return drv_end(d, d_outcome(d, S_DOT, MXR_CLASS_OK, 250), S_DOT, true);
    bool ok = s->stage == S_DOT && s->cls == MXR_CLASS_OK;
    return drv_end(d, d_outcome(d, s->stage, s->cls, s->code), s->stage, ok);
}

typedef void (*script_fn)(void *ctx, const drv *d, unsigned session, script *s);

/* Drive an attempt to its end; every check on the way and at the end. */
static bool drv_run(drv *d, script_fn fn, void *ctx)
{
    if (!drv_observe(d, false))
        return false;
    unsigned step;
    for (step = 0; step < 100; step++) {
        mxr_hop h;
        memset(&h, 0, sizeof h);
        bool was_done = mxr_attempt_done(d->a);
        mxr_status st = mxr_attempt_next(d->a, &h);
        trace(d, 'n', 0, (int)h.candidate, 0, 0, st);
        if (st == MXR_EDONE) {
            /* After NEXT_*, a hop is always there (limits included). */
            CHECK(d, was_done);
            break;
        }
        CHECK(d, st == MXR_OK);
        CHECK(d, !was_done);
        if (!drv_hop(d, &h))
            return false;
        d->tr[d->ntr - 1].cls = (int)d->addr;
        script s;
        fn(ctx, d, step, &s);
        if (!drv_session(d, &s))
            return false;
    }
    CHECK(d, step < 100);
    CHECK(d, mxr_attempt_done(d->a));
    if (!drv_observe(d, false))
        return false;
    for (size_t i = 0; i < d->n; i++) {
        mxr_rcpt_state st = mxr_attempt_recipient(d->a, i)->state;
        CHECK(d, st == MXR_RCPT_DELIVERED || st == MXR_RCPT_BOUNCED ||
                     st == MXR_RCPT_DEFERRED);
    }
    /* The end is the end. */
    mxr_hop h;
    CHECK(d, mxr_attempt_next(d->a, &h) == MXR_EDONE);
    mxr_action verdict = d_outcome(d, S_DOT, MXR_CLASS_OK, 250);
    if (!drv_check_action(d, verdict))
        return false;
    mxr_outcome ok = {S_RCPT, MXR_CLASS_OK, 250, NULL, NULL};
    CHECK(d, mxr_attempt_rcpt(d->a, 0, &ok) == CONT);
    return drv_observe(d, false);
}

/* A new attempt to drive. */
static bool drv_start(drv *d, fixture *f, const mxr_plan *p,
                      const mxr_rules *rules, bool loose, size_t n,
                      uint64_t first, unsigned attempts)
{
    memset(d, 0, sizeof *d);
    d->f = f;
    d->routed = p;
    d->n = n;
    d->loose = loose;
    d->attempts = attempts;
    d->max_addrs = (unsigned)mxr_rules_get(rules, MXR_RULE_MAX_ADDRESSES);
    d->max_sessions = (unsigned)mxr_rules_get(rules, MXR_RULE_MAX_SESSIONS);
    uint64_t min_s = (uint64_t)mxr_rules_get(rules, MXR_RULE_RETRY_MIN_S);
    uint64_t max_s = (uint64_t)mxr_rules_get(rules, MXR_RULE_RETRY_MAX_S);
    d->min_ms = min_s * SEC;
    d->max_ms = (max_s < min_s ? min_s : max_s) * SEC;
    d->max_age_ms = (uint64_t)mxr_rules_get(rules, MXR_RULE_MAX_AGE_S) * SEC;
    d->first_ms = first ? first : f->now;
    mxr_message m = {"sender@example.org", rcpt_names, n, first, attempts};
    d->a = NULL;
    CHECK(d, mxr_attempt_new(f->e, p, &m, &d->a) == MXR_OK);
    const mxr_plan *ap = mxr_attempt_plan(d->a);
    CHECK(d, ap != NULL && ap->ncandidates == p->ncandidates);
    CHECK(d, mxr_attempt_nrecipients(d->a) == n);
    /* Health reorders, never drops. */
    for (size_t i = 0; i < p->ncandidates; i++) {
        size_t j = cand_index(ap, p->candidates[i].host);
        CHECK(d, j < ap->ncandidates);
        CHECK(d, ap->candidates[j].naddrs == p->candidates[i].naddrs);
        for (size_t k = 0; k < p->candidates[i].naddrs; k++)
            CHECK(d,
                  addr_index(&ap->candidates[j], &p->candidates[i].addrs[k]) <
                      p->candidates[i].naddrs);
    }
    return true;
}

/* ------------------------------------------------- randomised (9a) */

#define GEN_CLASSES 8
#define GEN_SHAPES 16
#define GEN_RUNS 100000UL

typedef struct gen {
    fixture *f;
    mxr_rules *rules[GEN_CLASSES];
    bool loose[GEN_CLASSES];
    mxr_plan *plans[GEN_CLASSES][GEN_SHAPES];
    mxr_plan *failed[2];
    uint64_t rng;
} gen;

/* gen.test: for class k and shape j, s<j>.c<k>.gen.test with 1-4 hosts of
 * 1-3 addresses each, at random preferences (ties are shuffled). */
static char *gen_zone(uint64_t *rng)
{
    size_t cap = 1 << 20, used = 0;
    char *z = malloc(cap);
    assert_non_null(z);
    used += (size_t)snprintf(z, cap,
                             "$ORIGIN gen.test.\n$TTL 3600\n"
                             "@ SOA ns.gen.test. hm.gen.test. 1 3600 600 "
                             "86400 300\n@ NS ns\nns A 192.0.2.251\n");
    for (unsigned k = 0; k < GEN_CLASSES; k++)
        for (unsigned j = 0; j < GEN_SHAPES; j++) {
            unsigned hosts = 1 + rnd(rng, 4);
            for (unsigned h = 0; h < hosts; h++) {
                used += (size_t)snprintf(z + used, cap - used,
                                         "s%u.c%u MX %u h%u.s%u.c%u\n", j, k,
                                         10 * rnd(rng, 3), h, j, k);
                unsigned addrs = 1 + rnd(rng, 3);
                for (unsigned x = 0; x < addrs; x++) {
                    if (rnd(rng, 3) == 0)
                        used += (size_t)snprintf(z + used, cap - used,
                                                 "h%u.s%u.c%u A 10.%u.%u.%u\n",
                                                 h, j, k, k, j * 4 + h, x + 1);
                    else
                        used += (size_t)snprintf(
                            z + used, cap - used,
                            "h%u.s%u.c%u AAAA 2001:db8:%x:%x::%x:%x\n", h, j, k,
                            k + 1, j + 1, h + 1, x + 1);
                }
            }
        }
    assert_true(used < cap - 1);
    return z;
}

static mxr_rules *gen_rules(unsigned k, uint64_t *rng, bool *loose)
{
    mxr_rules *r = new_rules();
    *loose = false;
    switch (k) {
    case 0: /* the defaults */
        break;
    case 1:
        mxr_rules_stay_on_4xx(r);
        break;
    case 2:
        set_rule(r, MXR_RULE_MAX_ADDRESSES, 2);
        set_rule(r, MXR_RULE_MAX_SESSIONS, 2);
        break;
    case 3: /* messages expire during the attempt */
        set_rule(r, MXR_RULE_MAX_AGE_S, 120);
        set_rule(r, MXR_RULE_RETRY_MIN_S, 10);
        set_rule(r, MXR_RULE_RETRY_MAX_S, 60);
        set_rule(r, MXR_RULE_RETRY_JITTER_PCT, 50);
        break;
    default: /* any cell may say anything, numbers at random */
        *loose = true;
        for (int s = 0; s < MXR__STAGE_N; s++)
            for (int c = 0; c < MXR__CLASS_N; c++)
                if (rnd(rng, 10) < 3)
                    set_cell(r, s, c, (mxr_action)rnd(rng, MXR__ACTION_N));
        set_rule(r, MXR_RULE_MAX_ADDRESSES, 1 + rnd(rng, 6));
        set_rule(r, MXR_RULE_MAX_SESSIONS, 1 + rnd(rng, 4));
        set_rule(r, MXR_RULE_RETRY_MIN_S, 1 + rnd(rng, 100));
        set_rule(r, MXR_RULE_RETRY_MAX_S, 1 + rnd(rng, 1000));
        set_rule(r, MXR_RULE_RETRY_FACTOR_PCT, 100 + rnd(rng, 901));
        set_rule(r, MXR_RULE_RETRY_JITTER_PCT, rnd(rng, 51));
        set_rule(r, MXR_RULE_MAX_AGE_S, k == 7 ? 0 : rnd(rng, 600));
        break;
    }
    return r;
}

static void random_script(void *ctx, const drv *d, unsigned session, script *s)
{
    gen *g = ctx;
    uint64_t *rng = &g->rng;
    (void)session;
    memset(s, 0, sizeof *s);
    s->stage = (mxr_stage)rnd(rng, MXR__STAGE_N);
    s->cls = (mxr_class)rnd(rng, MXR__CLASS_N);
    if (rnd(rng, 4) == 0) { /* a session that works, as most do */
        s->stage = S_DOT;
        s->cls = MXR_CLASS_OK;
    }
    /* OK ends a session only at RCPT (then DOT OK) and at end-of-data. */
    if (s->cls == MXR_CLASS_OK && s->stage != S_RCPT && s->stage != S_DOT)
        s->cls = (mxr_class)(1 + rnd(rng, MXR__CLASS_N - 1));
    s->code = code_of(s->cls, rnd(rng, 12));
    s->progress = rnd(rng, 2);
    static const int codes[] = {250, 250, 250, 250, 251, 450, 451, 452,
                                421, 550, 551, 552, 553, 554, 199, 600};
    for (size_t i = 0; i < d->n; i++) {
        unsigned pick = rnd(rng, 20);
        s->rcpt_sent[i] = pick != 0;
        if (pick == 1) { /* no reply: the connection broke */
            s->rcpt_cls[i] = MXR_CLASS_TIMEOUT;
            s->rcpt_code[i] = 0;
        } else {
            s->rcpt_code[i] = codes[rnd(rng, sizeof codes / sizeof *codes)];
            s->rcpt_cls[i] = mxr_class_of_code(s->rcpt_code[i]);
        }
    }
    s->dup = rnd(rng, 4) == 0 ? (int)rnd(rng, (unsigned)d->n) : -1;
    s->advance_ms = rnd(rng, 3) == 0 ? rnd(rng, 60000) : 0;
}

static void test_invariant_random(void **state)
{
    fixture *f = *state;
    gen *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->f = f;
    g->rng = UINT64_C(0x9E3779B97F4A7C15); /* fixed seed */
    char *zone = gen_zone(&g->rng);
    assert_int_equal(mxr_options_add_zone_text(f->o, "gen.test", zone), MXR_OK);
    free(zone);
    for (unsigned k = 0; k < GEN_CLASSES; k++) {
        g->rules[k] = gen_rules(k, &g->rng, &g->loose[k]);
        char dom[32];
        snprintf(dom, sizeof dom, ".c%u.gen.test", k);
        assert_int_equal(mxr_options_add_rules(f->o, dom, g->rules[k]), MXR_OK);
    }
    start(f);
    for (unsigned k = 0; k < GEN_CLASSES; k++)
        for (unsigned j = 0; j < GEN_SHAPES; j++) {
            char dom[64];
            snprintf(dom, sizeof dom, "s%u.c%u.gen.test", j, k);
            g->plans[k][j] = route(f, dom);
            assert_int_equal(g->plans[k][j]->result, MXR_RESULT_OK);
            assert_true(g->plans[k][j]->ncandidates >= 1);
        }
    g->failed[0] = route(f, "nullmx.rules.test");
    g->failed[1] = route(f, "unserved-all.rules.test");
    mxr_rules *dflt = new_rules();

    drv *d = malloc(sizeof *d);
    assert_non_null(d);
    unsigned long done_by_edone = 0, delivered = 0, bounced = 0, deferred = 0;
    for (unsigned long seq = 0; seq < GEN_RUNS; seq++) {
        f->now += rnd(&g->rng, 5000);
        const mxr_plan *p;
        const mxr_rules *rules;
        bool loose = false;
        if (rnd(&g->rng, 100) < 2) {
            p = g->failed[rnd(&g->rng, 2)];
            rules = dflt;
        } else {
            unsigned k = rnd(&g->rng, GEN_CLASSES);
            p = g->plans[k][rnd(&g->rng, GEN_SHAPES)];
            rules = g->rules[k];
            loose = g->loose[k];
        }
        size_t n = 1 + rnd(&g->rng, MAXR);
        unsigned attempts = rnd(&g->rng, 4)   ? rnd(&g->rng, 4)
                            : rnd(&g->rng, 2) ? rnd(&g->rng, 100)
                                              : 1000000;
        uint64_t age = (uint64_t)mxr_rules_get(rules, MXR_RULE_MAX_AGE_S) * SEC;
        uint64_t first = 0;
        switch (rnd(&g->rng, 8)) {
        case 4:
        case 5:
            first = f->now - (xs_next(&g->rng) % (age + 1));
            break;
        case 6: /* expired already */
            first = f->now - age - rnd(&g->rng, 1000);
            break;
        case 7: /* in the future */
            first = f->now + 1 + rnd(&g->rng, 10000);
            break;
        default:
            break;
        }
        if (!drv_start(d, f, p, rules, loose, n, first, attempts)) {
            if (d->a)
                mxr_attempt_free(d->a);
            continue;
        }
        d->label = "random";
        d->seq = seq;
        if (drv_run(d, random_script, g)) {
            done_by_edone++;
            delivered += count_state(d, MXR_RCPT_DELIVERED);
            bounced += count_state(d, MXR_RCPT_BOUNCED);
            deferred += count_state(d, MXR_RCPT_DEFERRED);
        }
        mxr_attempt_free(d->a);
    }
    print_message("random: %lu sequences, %lu clean; recipients: %lu "
                  "delivered, %lu bounced, %lu deferred\n",
                  GEN_RUNS, done_by_edone, delivered, bounced, deferred);
    /* Every ending occurred, often. */
    assert_true(delivered > 10000 && bounced > 10000 && deferred > 10000);
    free(d);
    mxr_rules_free(dflt);
    for (unsigned k = 0; k < GEN_CLASSES; k++) {
        mxr_rules_free(g->rules[k]);
        for (unsigned j = 0; j < GEN_SHAPES; j++)
            mxr_plan_free(g->plans[k][j]);
    }
    mxr_plan_free(g->failed[0]);
    mxr_plan_free(g->failed[1]);
    free(g);
    report_tallies("random", GEN_RUNS);
}

/* ------------------------------------------------- exhaustive (9b) */

/* Every way a session can end: a failure at CONNECT..MAIL, RCPT with the
 * RCPT replies then a failure or OK (then end-of-data OK), DATA failures,
 * end-of-data failures or OK. */
#define EX_EVENTS (5 * 7 + 8 + 7 + 8)
#define EX_LEN 3

static void ex_event(unsigned e, mxr_stage *s, mxr_class *c)
{
    if (e < 35) {
        *s = (mxr_stage)(e / 7);
        *c = (mxr_class)(1 + e % 7);
    } else if (e < 43) {
        *s = S_RCPT;
        *c = (mxr_class)(e - 35);
    } else if (e < 50) {
        *s = S_DATA;
        *c = (mxr_class)(1 + (e - 43));
    } else {
        *s = S_DOT;
        *c = (mxr_class)(e - 50);
    }
}

typedef struct ex_ctx {
    unsigned events[EX_LEN];
    int replies[2];    /* the RCPT reply of each recipient, every session */
    bool success_tail; /* after the events: accept all, else refuse */
} ex_ctx;

static void ex_script(void *vctx, const drv *d, unsigned session, script *s)
{
    const ex_ctx *x = vctx;
    memset(s, 0, sizeof *s);
    s->dup = -1;
    if (session < EX_LEN) {
        ex_event(x->events[session], &s->stage, &s->cls);
        for (size_t i = 0; i < d->n; i++) {
            s->rcpt_sent[i] = true;
            s->rcpt_code[i] = x->replies[i];
            s->rcpt_cls[i] = mxr_class_of_code(x->replies[i]);
        }
    } else if (x->success_tail) {
        s->stage = S_DOT;
        s->cls = MXR_CLASS_OK;
        for (size_t i = 0; i < d->n; i++) {
            s->rcpt_sent[i] = true;
            s->rcpt_code[i] = 250;
            s->rcpt_cls[i] = MXR_CLASS_OK;
        }
    } else {
        s->stage = S_CONNECT;
        s->cls = MXR_CLASS_REFUSED;
    }
    s->code = code_of(s->cls, session);
}

static void test_invariant_exhaustive(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_rules *dflt = new_rules();
    drv *d = malloc(sizeof *d);
    assert_non_null(d);
    static const int replies[] = {250, 451, 550};
    unsigned long runs = 0;
    unsigned long ends[MXR__ACTION_N] = {0};
    for (unsigned tail = 0; tail < 2; tail++)
        for (unsigned rc = 0; rc < 9; rc++)
            for (unsigned e0 = 0; e0 < EX_EVENTS; e0++)
                for (unsigned e1 = 0; e1 < EX_EVENTS; e1++)
                    for (unsigned e2 = 0; e2 < EX_EVENTS; e2++) {
                        ex_ctx x = {{e0, e1, e2},
                                    {replies[rc / 3], replies[rc % 3]},
                                    tail == 1};
                        /* Host health of the last run is long gone. */
                        f->now += 3 * HOUR;
                        runs++;
                        if (!drv_start(d, f, p, dflt, false, 2, 0, 0)) {
                            if (d->a)
                                mxr_attempt_free(d->a);
                            continue;
                        }
                        d->label = "exhaustive";
                        d->seq = runs;
                        if (drv_run(d, ex_script, &x))
                            ends[d->move < MXR__ACTION_N ? d->move : 0]++;
                        mxr_attempt_free(d->a);
                    }
    print_message("exhaustive: %lu runs; last action: %lu defer, %lu "
                  "bounce, %lu delivered\n",
                  runs, ends[DEFER], ends[BOUNCE], ends[DELIV]);
    free(d);
    mxr_rules_free(dflt);
    mxr_plan_free(p);
    report_tallies("exhaustive", runs);
}

/* --------------------------------------------------------- bugs */

/* The decision table says DATA/OK is "continue": a 354 reported as
 * progress must not end the session. */
static void test_regress_data_ok_ends_session(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    assert_int_equal(mxr_rules_action(NULL, S_DATA, MXR_CLASS_OK), CONT);
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    mxr_action data =
        out(a, reply(S_DATA, MXR_CLASS_OK, 354, NULL, "start mail input"));
    mxr_action dot = out_t(a, S_DOT, MXR_CLASS_OK);
    mxr_rcpt_state st = R(a, 0)->state;
    mxr_attempt_free(a);
    mxr_plan_free(p);
    assert_int_equal(data, CONT); /* got next-host: the session ended */
    assert_int_equal(dot, DELIV);
    assert_int_equal(st, MXR_RCPT_DELIVERED);
}

/* A recipient deferred after RCPT 4xx keeps its own reply, not the RCPT
 * 5xx another recipient got later in the same session. */
static void test_regress_deferred_rcpt_gets_other_rcpt_reply(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "one.example.test");
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 451, "4.2.0", "greylisted"), NHOST);
    assert_int_equal(rcpt(a, 1, 550, "5.1.1", "no such user"), BOUNCE);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), DEFER);
    assert_int_equal(R(a, 1)->state, MXR_RCPT_BOUNCED);
    const mxr_rcpt *r = R(a, 0);
    assert_first_retry(r, f->now);
    mxr_rcpt got = *r;
    char text[64];
    snprintf(text, sizeof text, "%s", r->text ? r->text : "(null)");
    mxr_attempt_free(a);
    mxr_plan_free(p);
    /* got 550 "no such user": r1's reply */
    assert_int_equal(got.code, 451);
    assert_string_equal(text, "greylisted");
}

/* rules.c: "DATA 4xx/5xx: as MAIL, for the recipients accepted in the
 * session". A recipient that got RCPT 4xx was not in the transaction the
 * end-of-data 5xx refused: it goes on to the next host. */
static void test_regress_dot_5xx_bounces_rcpt_not_in_transaction(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 2, 0, 0);
    hop_at(a, 0, 0);
    assert_int_equal(rcpt(a, 0, 250, NULL, NULL), CONT);
    assert_int_equal(rcpt(a, 1, 451, "4.2.0", "greylisted"), NHOST);
    assert_int_equal(out_t(a, S_RCPT, MXR_CLASS_OK), CONT);
    mxr_action act = out(a, reply(S_DOT, MXR_CLASS_5XX, 554, "5.7.1",
                                  "message content rejected"));
    mxr_rcpt_state s0 = R(a, 0)->state, s1 = R(a, 1)->state;
    mxr_attempt_free(a);
    mxr_plan_free(p);
    assert_int_equal(s0, MXR_RCPT_BOUNCED);
    assert_int_equal(s1, MXR_RCPT_PENDING); /* got bounced with the 554 */
    assert_int_equal(act, NHOST);           /* got bounce */
}

/* mxr_attempt_rcpt "returns the action for that recipient": an expired
 * message's RCPT 4xx under stay_on_4xx bounces it, so BOUNCE. */
static void test_regress_rcpt_action_when_expired(void **state)
{
    fixture *f = *state;
    mxr_rules *r = new_rules();
    mxr_rules_stay_on_4xx(r);
    add_rules(f, "stay.example.test", r);
    start(f);
    mxr_plan *p = route(f, "stay.example.test");
    mxr_attempt *a = attempt(f, p, 1, f->now - MAX_AGE - SEC, 3);
    hop_at(a, 0, 0);
    mxr_action act = rcpt(a, 0, 451, NULL, "later");
    mxr_rcpt_state st = R(a, 0)->state;
    mxr_attempt_free(a);
    mxr_plan_free(p);
    assert_int_equal(st, MXR_RCPT_BOUNCED);
    assert_int_equal(act, BOUNCE); /* got defer */
}

/* msg.attempts is "delivery attempts made before this one": UINT_MAX of
 * them is the longest delay, not the first one (attempts + 1 must not
 * wrap to 0). */
static void test_retry_attempts_uint_max(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "one.example.test");
    uint64_t d = retry_delay(f, p, 0, UINT_MAX);
    assert_in_range(d, RETRY_MAX - RETRY_MAX / 10, RETRY_MAX);
    mxr_plan_free(p);
}

/* mxr_hop.number counts hops (addresses handed out), 1 first; a refused
 * connection is still a hop. (MXR_RULE_MAX_SESSIONS counts sessions that
 * got past connect, which the limit tests cover.) */
static void test_regress_hop_number_counts_hops(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_attempt *a = attempt(f, p, 1, 0, 0);
    mxr_hop h = hop_at(a, 0, 0);
    assert_int_equal(h.number, 1);
    assert_int_equal(out_t(a, S_CONNECT, MXR_CLASS_REFUSED), NADDR);
    h = hop_at(a, 0, 1);
    mxr_attempt_free(a);
    mxr_plan_free(p);
    assert_int_equal(h.number, 2);
}

/* A message without recipients has nothing to deliver: the attempt is
 * refused or over at once, not a connection to make and a "bounce". */
static void test_regress_zero_recipients(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *p = route(f, "plain.rules.test");
    mxr_message m = {"s@x.test", NULL, 0, 0, 0};
    mxr_attempt *a = NULL;
    mxr_status st = mxr_attempt_new(f->e, p, &m, &a);
    bool done = true;
    mxr_status nx = MXR_EDONE;
    if (st == MXR_OK) {
        mxr_hop h;
        done = mxr_attempt_done(a);
        nx = mxr_attempt_next(a, &h);
        mxr_attempt_free(a);
    } else {
        assert_int_equal(st, MXR_EINVAL);
    }
    mxr_plan_free(p);
    assert_true(done);               /* got: not done */
    assert_int_equal(nx, MXR_EDONE); /* got: a hop to connect to */
}

/* The engine's allocator feeds every allocation of an engine (alloc.h):
 * the attempt's copy of the plan too. A plan with 32 addresses costs more
 * through it than one with 4. */
static void test_regress_attempt_plan_bypasses_allocator(void **state)
{
    fixture *f = *state;
    start(f);
    mxr_plan *small = route(f, "plain.rules.test");
    mxr_plan *big = route(f, "manytotal.rules.test");
    size_t naddr = 0;
    for (size_t i = 0; i < big->ncandidates; i++)
        naddr += big->candidates[i].naddrs;
    assert_int_equal(naddr, 32);
    size_t live = f->ta.live;
    mxr_attempt *a = attempt(f, small, 1, 0, 0);
    size_t d_small = f->ta.live - live;
    live = f->ta.live;
    mxr_attempt *b = attempt(f, big, 1, 0, 0);
    size_t d_big = f->ta.live - live;
    mxr_attempt_free(a);
    mxr_attempt_free(b);
    mxr_plan_free(small);
    mxr_plan_free(big);
    assert_true(d_big >= d_small + 28 * sizeof(mxr_addr));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_table_matches_design),
        T(test_table_cells_first_hop),
        T(test_table_cells_last_hop),
        T(test_mail_4xx_last_host_defers),
        T(test_all_addresses_refused_defers),
        T(test_rcpt_mixed_results),
        T(test_rcpt_all_accepted_delivered),
        T(test_rcpt_all_rejected_bounce_no_data),
        T(test_rcpt_4xx_last_host_deferred),
        T(test_rcpt_then_data_failure_not_delivered),
        T(test_delivered_without_reply_keeps_rcpt_acceptance),
        T(test_overrides_by_domain),
        T(test_override_default_rules),
        T(test_rules_api),
        T(test_stay_on_4xx),
        T(test_limit_addresses),
        T(test_limit_sessions),
        T(test_retry_schedule),
        T(test_retry_max_age),
        T(test_health_down_host_moves_last),
        T(test_health_success_clears),
        T(test_health_address_order),
        T(test_health_all_down),
        T(test_health_base_from_default_rules),
        T(test_failed_plans),
        T(test_misuse),
        T(test_attempt_new_alloc_failures),
        T(test_invariant_random),
        T(test_invariant_exhaustive),
        T(test_regress_data_ok_ends_session),
        T(test_regress_deferred_rcpt_gets_other_rcpt_reply),
        T(test_regress_dot_5xx_bounces_rcpt_not_in_transaction),
        T(test_regress_rcpt_action_when_expired),
        T(test_retry_attempts_uint_max),
        T(test_regress_hop_number_counts_hops),
        T(test_regress_zero_recipients),
        T(test_regress_attempt_plan_bypasses_allocator),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
