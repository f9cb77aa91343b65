/* test_rules.c -- src/rules.c on its own: the stage, class and action
 * words (the JSON and CLI contract) both ways, the class of a reply code
 * at every boundary, which classes are connection-level, every rule's
 * range as docs/failover.md section 7 gives it, copies that do not share,
 * and the choice of per-domain rules (exact, longest ".suffix", default).
 * The decision table cell by cell is test_attempt.c's business. */
#include "support.h"
#include "base/enums.h"

#include "deliver/rules.h"

#include <string.h>

/* The words, written out here from docs/failover.md section 1, in enum
 * order: a renamed or reordered word breaks the JSON contract. */
static const char *const stages[] = {"connect", "tls",  "greeting", "ehlo",
                                     "mail",    "rcpt", "data",     "dot"};
static const char *const classes[] = {
    "ok", "refused", "timeout", "unreachable", "reset", "4xx", "5xx", "421"};
static const char *const actions[] = {"continue", "next-address", "next-host",
                                      "defer",    "bounce",       "delivered"};

#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Words that must parse to nothing: near misses of real words. */
static const char *const not_words[] = {
    "",          " ",          "CONNECT",  "Connect", "connect ",
    " connect",  "conn",       "connectx", "4XX",     "4xx\n",
    "next_host", "next-hosts", "unknown",  "-1",      "0"};

/* Adapters: the library's functions take their own enum types. */
static const char *stage_name(int v)
{
    return mxr_stage_name((mxr_stage)v);
}
static const char *class_name(int v)
{
    return mxr_class_name((mxr_class)v);
}
static const char *action_name(int v)
{
    return mxr_action_name((mxr_action)v);
}

/* Each table both ways, near misses, and no word of one table parses in
 * another (the CLI and JSON read them in different places). */
static void test_words(void **state)
{
    (void)state;
    const mxr_test_words tables[] = {
        {stages, COUNT(stages), stage_name, mxr_stage_parse, NULL, 0},
        {classes, COUNT(classes), class_name, mxr_class_parse, NULL, 0},
        {actions, COUNT(actions), action_name, mxr_action_parse, NULL, 0},
    };
    assert_int_equal(COUNT(stages), MXR__STAGE_N);
    assert_int_equal(COUNT(classes), MXR__CLASS_N);
    assert_int_equal(COUNT(actions), MXR__ACTION_N);
    for (size_t i = 0; i < COUNT(tables); i++) {
        mxr_test_words t = tables[i];
        t.bad = not_words;
        t.nbad = COUNT(not_words);
        mxr_test_check_words(&t);
        for (size_t j = 0; j < COUNT(tables); j++) {
            if (j == i)
                continue;
            t.bad = tables[j].words;
            t.nbad = tables[j].n;
            mxr_test_check_words(&t);
        }
    }
}

/* Every boundary of mxr_class_of_code: anything outside 200..599 is a
 * protocol violation and temporary, never a bounce or a success. */
static void test_class_of_code(void **state)
{
    (void)state;
    static const struct {
        int code;
        mxr_class cls;
    } cases[] = {
        {-1, MXR_CLASS_4XX},     {0, MXR_CLASS_4XX},   {99, MXR_CLASS_4XX},
        {199, MXR_CLASS_4XX},    {200, MXR_CLASS_OK},  {250, MXR_CLASS_OK},
        {299, MXR_CLASS_OK},     {300, MXR_CLASS_OK},  {354, MXR_CLASS_OK},
        {399, MXR_CLASS_OK},     {400, MXR_CLASS_4XX}, {420, MXR_CLASS_4XX},
        {421, MXR_CLASS_421},    {422, MXR_CLASS_4XX}, {450, MXR_CLASS_4XX},
        {499, MXR_CLASS_4XX},    {500, MXR_CLASS_5XX}, {554, MXR_CLASS_5XX},
        {599, MXR_CLASS_5XX},    {600, MXR_CLASS_4XX}, {999, MXR_CLASS_4XX},
        {100000, MXR_CLASS_4XX},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        if (mxr_class_of_code(cases[i].code) != cases[i].cls)
            fail_msg("code %d: class %s, want %s", cases[i].code,
                     mxr_class_name(mxr_class_of_code(cases[i].code)),
                     mxr_class_name(cases[i].cls));
    }
}

static void test_connection_classes(void **state)
{
    (void)state;
    /* mxroute.h: refused, timeout, unreachable, reset or 421. */
    static const bool conn[MXR__CLASS_N] = {[MXR_CLASS_REFUSED] = true,
                                                [MXR_CLASS_TIMEOUT] = true,
                                                [MXR_CLASS_UNREACHABLE] = true,
                                                [MXR_CLASS_RESET] = true,
                                                [MXR_CLASS_421] = true};
    for (int c = 0; c < MXR__CLASS_N; c++) {
        assert_int_equal(mxr_class_is_connection((mxr_class)c), conn[c]);
        assert_int_equal(mxr__class_is_connection((mxr_class)c), conn[c]);
    }
    assert_false(mxr_class_is_connection(MXR__CLASS_N));
    assert_false(mxr_class_is_connection((mxr_class)-1));
}

/* docs/failover.md section 7: default and range of every rule. */
static const struct {
    mxr_rule rule;
    int64_t def, min, max;
} ranges[] = {
    {MXR_RULE_MAX_ADDRESSES, 10, 1, 1000},
    {MXR_RULE_MAX_SESSIONS, 5, 1, 1000},
    {MXR_RULE_RETRY_MIN_S, 300, 1, 86400},
    {MXR_RULE_RETRY_MAX_S, 14400, 1, 604800},
    {MXR_RULE_RETRY_FACTOR_PCT, 200, 100, 1000},
    {MXR_RULE_RETRY_JITTER_PCT, 10, 0, 50},
    {MXR_RULE_MAX_AGE_S, 432000, 0, 2592000},
    {MXR_RULE_HEALTH_BASE_S, 60, 1, 86400},
    {MXR_RULE_HEALTH_MAX_S, 3600, 1, 604800},
};

static void test_rule_ranges(void **state)
{
    (void)state;
    assert_int_equal(COUNT(ranges), MXR__RULE_N);
    mxr_rules *r = NULL;
    assert_int_equal(mxr_rules_new(&r), MXR_OK);
    for (size_t i = 0; i < COUNT(ranges); i++) {
        mxr_rule k = ranges[i].rule;
        assert_int_equal(mxr_rules_get(r, k), ranges[i].def);
        assert_int_equal(mxr_rules_get(NULL, k), ranges[i].def);
        assert_int_equal(mxr_rules_set(r, k, ranges[i].min - 1), MXR_EINVAL);
        assert_int_equal(mxr_rules_get(r, k), ranges[i].def); /* unchanged */
        assert_int_equal(mxr_rules_set(r, k, ranges[i].max + 1), MXR_EINVAL);
        assert_int_equal(mxr_rules_set(r, k, INT64_MIN), MXR_EINVAL);
        assert_int_equal(mxr_rules_set(r, k, INT64_MAX), MXR_EINVAL);
        assert_int_equal(mxr_rules_set(r, k, ranges[i].min), MXR_OK);
        assert_int_equal(mxr_rules_get(r, k), ranges[i].min);
        assert_int_equal(mxr_rules_set(r, k, ranges[i].max), MXR_OK);
        assert_int_equal(mxr_rules_get(r, k), ranges[i].max);
    }
    assert_int_equal(mxr_rules_set(r, (mxr_rule)-1, 1), MXR_EINVAL);
    assert_int_equal(mxr_rules_get(r, (mxr_rule)-1), -1);
    assert_int_equal(mxr_rules_get(NULL, MXR__RULE_N), -1);
    mxr_rules_free(r);
    mxr_rules_free(NULL);
}

/* Out-of-range cells: the cautious answer (next host), never a bounce. */
static void test_action_bad_cells(void **state)
{
    (void)state;
    mxr_rules *r = NULL;
    assert_int_equal(mxr_rules_new(NULL), MXR_EINVAL);
    assert_int_equal(mxr_rules_new(&r), MXR_OK);
    const mxr_rules *both[] = {r, NULL};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(mxr_rules_action(both[i], MXR__STAGE_N, 0),
                         MXR_ACTION_NEXT_HOST);
        assert_int_equal(mxr_rules_action(both[i], (mxr_stage)-1, 0),
                         MXR_ACTION_NEXT_HOST);
        assert_int_equal(mxr_rules_action(both[i], 0, MXR__CLASS_N),
                         MXR_ACTION_NEXT_HOST);
        assert_int_equal(mxr_rules_action(both[i], 0, (mxr_class)-1),
                         MXR_ACTION_NEXT_HOST);
    }
    assert_int_equal(mxr_rules_set_action(r, (mxr_stage)-1, 0, 0), MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, 0, (mxr_class)-1, 0), MXR_EINVAL);
    assert_int_equal(mxr_rules_set_action(r, 0, 0, (mxr_action)-1), MXR_EINVAL);
    mxr_rules_free(r);
}

/* New rules hold the defaults the library uses without rules (NULL). */
static void test_new_rules_are_the_defaults(void **state)
{
    (void)state;
    mxr_rules *r = NULL;
    assert_int_equal(mxr_rules_new(&r), MXR_OK);
    for (int s = 0; s < MXR__STAGE_N; s++)
        for (int c = 0; c < MXR__CLASS_N; c++)
            assert_int_equal(mxr_rules_action(r, s, c),
                             mxr_rules_action(NULL, s, c));
    /* Success continues, except at end-of-data where it delivers. */
    for (int s = 0; s < MXR__STAGE_N; s++)
        assert_int_equal(mxr_rules_action(r, s, MXR_CLASS_OK),
                         s == MXR_STAGE_DOT ? MXR_ACTION_DELIVERED
                                            : MXR_ACTION_CONTINUE);
    mxr_rules_free(r);
}

/* A copy is a value: changing one changes nothing in the other. */
static void test_copy_is_independent(void **state)
{
    (void)state;
    mxr_rules *a = NULL, *b = NULL;
    assert_int_equal(mxr_rules_new(&a), MXR_OK);
    assert_int_equal(mxr_rules_set(a, MXR_RULE_MAX_SESSIONS, 7), MXR_OK);
    assert_int_equal(mxr_rules_set_action(a, MXR_STAGE_MAIL, MXR_CLASS_5XX,
                                          MXR_ACTION_DEFER),
                     MXR_OK);
    assert_int_equal(mxr_rules_copy(a, &b), MXR_OK);
    assert_int_equal(mxr_rules_get(b, MXR_RULE_MAX_SESSIONS), 7);
    assert_int_equal(mxr_rules_action(b, MXR_STAGE_MAIL, MXR_CLASS_5XX),
                     MXR_ACTION_DEFER);
    assert_int_equal(mxr_rules_set(b, MXR_RULE_MAX_SESSIONS, 9), MXR_OK);
    assert_int_equal(mxr_rules_set_action(b, MXR_STAGE_MAIL, MXR_CLASS_5XX,
                                          MXR_ACTION_BOUNCE),
                     MXR_OK);
    assert_int_equal(mxr_rules_get(a, MXR_RULE_MAX_SESSIONS), 7);
    assert_int_equal(mxr_rules_action(a, MXR_STAGE_MAIL, MXR_CLASS_5XX),
                     MXR_ACTION_DEFER);
    assert_int_equal(mxr_rules_copy(NULL, &b), MXR_EINVAL);
    assert_int_equal(mxr_rules_copy(a, NULL), MXR_EINVAL);
    mxr_rules_free(a);
    mxr_rules_free(b);
}

/* mxr__rules_for: "example.com" exactly, ".example.com" its subdomains
 * (not itself, not "badexample.com"), the longest suffix first, an exact
 * match over any suffix, the defaults otherwise. */
static void test_rules_for_domain(void **state)
{
    (void)state;
    mxr__domain_rules list[] = {
        {.domain = "sub.example.com"}, /* exact, listed before the suffixes */
        {.domain = ".example.com"},    {.domain = ".deep.example.com"},
        {.domain = "example.com"},     {.domain = ".org"},
    };
    const size_t n = COUNT(list);
    const mxr_rules defaults = {.v = {0}};
    static const struct {
        const char *domain;
        int want; /* index in list, -1 for the defaults */
    } cases[] = {
        {"example.com", 3},
        {"sub.example.com", 0},
        {"x.sub.example.com", 1},
        {"a.example.com", 1},
        {"deep.example.com", 1},     /* ".deep.example.com" is its subs */
        {"a.deep.example.com", 2},   /* longest suffix wins */
        {"x.a.deep.example.com", 2}, /* at any depth */
        {"badexample.com", -1},      /* a suffix ends at a dot */
        {"com", -1},
        {"example.org", 4},
        {"org", -1},
        {"", -1},
        {"example.co", -1},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        const mxr_rules *got =
            mxr__rules_for(list, n, &defaults, cases[i].domain);
        const mxr_rules *want =
            cases[i].want < 0 ? &defaults : &list[cases[i].want].rules;
        if (got != want)
            fail_msg("%s: got rules #%ld, want #%d", cases[i].domain,
                     got == &defaults ? -1L : (long)(got - &list[0].rules),
                     cases[i].want);
    }
    /* The longest suffix wins whatever the order of the list. */
    mxr__domain_rules rev[] = {{.domain = ".deep.example.com"},
                               {.domain = ".example.com"}};
    assert_ptr_equal(mxr__rules_for(rev, 2, &defaults, "a.deep.example.com"),
                     &rev[0].rules);
    assert_ptr_equal(mxr__rules_for(list, n, &defaults, NULL), &defaults);
    assert_ptr_equal(mxr__rules_for(list, 0, &defaults, "example.com"),
                     &defaults);
    assert_ptr_equal(mxr__rules_for(NULL, 0, &defaults, "example.com"),
                     &defaults);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_class_of_code),
        cmocka_unit_test(test_connection_classes),
        cmocka_unit_test(test_rule_ranges),
        cmocka_unit_test(test_action_bad_cells),
        cmocka_unit_test(test_new_rules_are_the_defaults),
        cmocka_unit_test(test_copy_is_independent),
        cmocka_unit_test(test_rules_for_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
