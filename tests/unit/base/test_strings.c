/* test_strings.c -- src/strings.c on its own: the version, every status
 * message, and every word of the reason, result, source, note, family and
 * TLS mode tables, written out here independently (the words are part of
 * the JSON contract: a rename must break a test), both ways where there
 * is a parser; values outside each table; and the two text helpers of
 * text.h at their boundaries. */
#include "support.h"
#include "base/enums.h"

#include "base/text.h"

#include <stdio.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof *(a))

static void test_version(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", MXR_VERSION_MAJOR,
             MXR_VERSION_MINOR, MXR_VERSION_PATCH);
    assert_string_equal(mxr_version_string(), want);
    assert_string_equal(mxr_version_string(), MXR_VERSION_STRING);
    assert_int_equal(mxr_version(), (unsigned)MXR_VERSION_HEX);
    assert_int_equal(mxr_version() >> 16, MXR_VERSION_MAJOR);
    assert_int_equal((mxr_version() >> 8) & 0xff, MXR_VERSION_MINOR);
    assert_int_equal(mxr_version() & 0xff, MXR_VERSION_PATCH);
}

static void test_strerror(void **state)
{
    (void)state;
    static const char *const want[] = {
        [MXR_OK] = "success",
        [MXR_ENOMEM] = "out of memory",
        [MXR_EINVAL] = "invalid argument",
        [MXR_EBADNAME] = "invalid domain or address",
        [MXR_EZONE] = "zone data could not be loaded",
        [MXR_ESERVER] = "DNS server address not understood",
        [MXR_EDNS] = "DNS library failure",
        [MXR_EDESTROYED] = "engine destroyed",
        [MXR_EBUSY] = "too many pending requests",
        [MXR_EINTERNAL] = "internal error",
        [MXR_EDONE] = "the attempt is over",
        [MXR_ESTATE] = "not valid in the attempt's current state",
        [MXR_EPOLICY] = "a policy could not be loaded",
    };
    for (size_t i = 0; i < COUNT(want); i++)
        assert_string_equal(mxr_strerror((mxr_status)i), want[i]);
    /* The first value past the table, and far outside it. */
    static const int bad[] = {(int)COUNT(want), 100, -1, -1000};
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_string_equal(mxr_strerror((mxr_status)bad[i]), "unknown error");
}

static void test_reason_words(void **state)
{
    (void)state;
    static const char *const want[] = {"none",
                                       "null-mx",
                                       "null-mx-entry",
                                       "no-mail-host",
                                       "nxdomain",
                                       "servfail",
                                       "refused",
                                       "timeout",
                                       "network",
                                       "cname-target",
                                       "ip-literal",
                                       "no-address",
                                       "tempfail",
                                       "no-usable-host",
                                       "unroutable-address",
                                       "private-address",
                                       "duplicate",
                                       "self",
                                       "loops-to-self",
                                       "limit",
                                       "bad-target",
                                       "policy"};
    assert_int_equal(COUNT(want), MXR__REASON_N);
    for (size_t i = 0; i < COUNT(want); i++)
        assert_string_equal(mxr_reason_name((mxr_reason)i), want[i]);
    assert_string_equal(mxr_reason_name(MXR__REASON_N), "unknown");
    assert_string_equal(mxr_reason_name((mxr_reason)-1), "unknown");
}

static void test_result_and_source_words(void **state)
{
    (void)state;
    static const char *const results[] = {"ok", "tempfail", "permfail"};
    for (size_t i = 0; i < COUNT(results); i++)
        assert_string_equal(mxr_result_name((mxr_result)i), results[i]);
    assert_string_equal(mxr_result_name((mxr_result)3), "unknown");
    assert_string_equal(mxr_result_name((mxr_result)-1), "unknown");
    static const char *const sources[] = {"mx", "implicit", "policy",
                                          "literal"};
    for (size_t i = 0; i < COUNT(sources); i++)
        assert_string_equal(mxr_source_name((mxr_source)i), sources[i]);
    assert_string_equal(mxr_source_name((mxr_source)4), "unknown");
    assert_string_equal(mxr_source_name((mxr_source)-1), "unknown");
}

/* One word per note bit; no word for no bit, an unknown bit, or a mask
 * of several (callers name the bits one at a time). */
static void test_note_words(void **state)
{
    (void)state;
    assert_string_equal(mxr_note_name(MXR_NOTE_CNAME_TARGET), "cname-target");
    assert_string_equal(mxr_note_name(MXR_NOTE_ADDR_LIMIT), "address-limit");
    assert_string_equal(mxr_note_name(MXR_NOTE_FILTERED), "filtered");
    assert_string_equal(mxr_note_name(MXR_NOTE_DOWN), "down");
    assert_null(mxr_note_name(0));
    assert_null(mxr_note_name(0x10));
    assert_null(mxr_note_name(0x80000000u));
    assert_null(mxr_note_name(MXR_NOTE_CNAME_TARGET | MXR_NOTE_DOWN));
}

/* Near misses that no parser may take. */
static const char *const not_words[] = {
    "",           " ",        "ANY",      "Ipv4",
    "ipv4 ",      " ipv4",    "ip4",      "prefer_ipv4",
    "prefer-ipv", "REQUIRED", "verify\n", "opportunistic!",
    "unknown",    "0"};

static const char *family_name(int v)
{
    return mxr_family_name((mxr_family)v);
}
static const char *tls_mode_name(int v)
{
    return mxr_tls_mode_name((mxr_tls_mode)v);
}

/* Families and TLS modes both ways, near misses, and no word of one
 * table parses in the other. */
static void test_family_and_tls_words(void **state)
{
    (void)state;
    static const char *const families[] = {"any", "ipv4", "ipv6", "prefer-ipv4",
                                           "prefer-ipv6"};
    static const char *const modes[] = {[MXR_TLS_OPPORTUNISTIC] =
                                            "opportunistic",
                                        [MXR_TLS_REQUIRED] = "required",
                                        [MXR_TLS_VERIFY] = "verify",
                                        [MXR_TLS_NONE] = "none"};
    assert_int_equal(MXR_FAMILY_PREFER_IPV6, COUNT(families) - 1);
    mxr_test_words f = {families,         COUNT(families), family_name,
                        mxr_family_parse, not_words,       COUNT(not_words)};
    mxr_test_words m = {modes,         COUNT(modes),
                        tls_mode_name, mxr_tls_mode_parse,
                        not_words,     COUNT(not_words)};
    mxr_test_check_words(&f);
    mxr_test_check_words(&m);
    f.bad = modes;
    f.nbad = COUNT(modes);
    m.bad = families;
    m.nbad = COUNT(families);
    mxr_test_check_words(&f);
    mxr_test_check_words(&m);
}

static void test_word_index(void **state)
{
    (void)state;
    static const char *const words[] = {"a", "bb", "a"};
    assert_int_equal(mxr__word_index(words, 3, "a"), 0); /* the first */
    assert_int_equal(mxr__word_index(words, 3, "bb"), 1);
    assert_int_equal(mxr__word_index(words, 1, "bb"), -1); /* past n */
    assert_int_equal(mxr__word_index(words, 0, "a"), -1);
    assert_int_equal(mxr__word_index(words, 3, "b"), -1);
    assert_int_equal(mxr__word_index(words, 3, "bbb"), -1);
    assert_int_equal(mxr__word_index(words, 3, NULL), -1);
}

/* mxr__copy_text keeps at most cap - 1 bytes and always terminates; the
 * byte at dst[cap] is never written (a canary shows it). */
static void test_copy_text(void **state)
{
    (void)state;
    char buf[8];
    static const struct {
        size_t cap;
        const char *src, *want;
    } cases[] = {
        {1, "abc", ""},    {2, "abc", "a"},
        {3, "abc", "ab"},  {4, "abc", "abc"},
        {5, "abc", "abc"}, {4, "", ""},
        {4, NULL, ""},     {7, "abcdefghij", "abcdef"},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        memset(buf, '#', sizeof buf);
        mxr__copy_text(buf, cases[i].cap, cases[i].src);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(buf[cases[i].cap], '#');
    }
    /* The source need not be terminated within cap: strnlen bounds it. */
    const char unterminated[3] = {'x', 'y', 'z'};
    memset(buf, '#', sizeof buf);
    mxr__copy_text(buf, 3, unterminated);
    assert_string_equal(buf, "xy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_reason_words),
        cmocka_unit_test(test_result_and_source_words),
        cmocka_unit_test(test_note_words),
        cmocka_unit_test(test_family_and_tls_words),
        cmocka_unit_test(test_word_index),
        cmocka_unit_test(test_copy_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
