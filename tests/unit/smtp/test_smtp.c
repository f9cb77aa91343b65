/* test_smtp.c -- the SMTP client's pure parts: reply parsing (single and
 * multi-line, enhanced codes, EHLO keywords, malformed and hostile
 * replies), line splitting, and the DATA encoding (CRLF normalisation,
 * dot-stuffing, the terminator). The sessions themselves are tested
 * against real servers by tests/it_smtp.sh. */
#include "support.h"

#include "smtp/data.h"
#include "smtp/reply.h"

#include <stdlib.h>
#include <string.h>

#define BIG 65536

/* Feed "\r\n"-separated lines; returns the last mxr__reply_line result. */
static int feed(mxr__reply *r, const char *lines, const char **err)
{
    mxr__reply_reset(r);
    int rc = 0;
    size_t len = strlen(lines), off = 0, used;
    long n;
    while ((n = mxr__reply_next_line(lines + off, len - off, &used)) >= 0) {
        rc = mxr__reply_line(r, lines + off, (size_t)n, BIG, err);
        off += used;
        if (rc != 0)
            break;
    }
    return rc;
}

static void test_single_line(void **state)
{
    (void)state;
    mxr__reply r;
    const char *err = NULL;
    assert_int_equal(feed(&r, "250 2.1.5 Ok\r\n", &err), 1);
    assert_int_equal(r.code, 250);
    assert_string_equal(r.enhanced, "2.1.5");
    assert_string_equal(r.text, "Ok");
    assert_int_equal(feed(&r, "354\r\n", &err), 1); /* code alone */
    assert_int_equal(r.code, 354);
    assert_string_equal(r.text, "");
}

static void test_multi_line_and_keywords(void **state)
{
    (void)state;
    mxr__reply r;
    const char *err = NULL;
    assert_int_equal(feed(&r,
                          "250-mx.example.net Hello\r\n250-PIPELINING\r\n"
                          "250-8bitmime\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n",
                          &err),
                     1);
    assert_int_equal(r.nlines, 5);
    assert_true(mxr__reply_has_keyword(&r, "8BITMIME"));
    assert_true(mxr__reply_has_keyword(&r, "STARTTLS"));
    assert_true(mxr__reply_has_keyword(&r, "SMTPUTF8"));
    assert_false(mxr__reply_has_keyword(&r, "CHUNKING"));
    /* The greeting line is not a keyword, and prefixes do not count. */
    assert_false(mxr__reply_has_keyword(&r, "mx.example.net"));
    assert_false(mxr__reply_has_keyword(&r, "PIPE"));
}

static void test_enhanced_code_per_line(void **state)
{
    (void)state;
    mxr__reply r;
    const char *err = NULL;
    assert_int_equal(
        feed(&r, "550-5.7.1 Refused\r\n550 5.7.1 see the policy\r\n", &err), 1);
    assert_string_equal(r.enhanced, "5.7.1");
    assert_string_equal(r.text, "Refused\nsee the policy");
    /* Wrong class digit, or no space after it: ordinary text. */
    assert_int_equal(feed(&r, "450 5.1.1 odd\r\n", &err), 1);
    assert_string_equal(r.enhanced, "");
    assert_int_equal(feed(&r, "250 2.1.5x\r\n", &err), 1);
    assert_string_equal(r.enhanced, "");
    assert_string_equal(r.text, "2.1.5x");
}

static void test_malformed(void **state)
{
    (void)state;
    mxr__reply r;
    const char *err = NULL;
    const char *bad[] = {"25\r\n",        "2500 x\r\n",        "abc ok\r\n",
                         "650 no\r\n",    "199 no\r\n",        "260 no\r\n",
                         "250x text\r\n", "250-a\r\n251 b\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err = NULL;
        assert_int_equal(feed(&r, bad[i], &err), -1);
        assert_non_null(err);
    }
}

static void test_hostile_text_is_bounded_and_printable(void **state)
{
    (void)state;
    mxr__reply r;
    const char *err = NULL;
    mxr__reply_reset(&r);
    char line[MXR__REPLY_LINE_MAX];
    memset(line, 'x', sizeof line);
    memcpy(line, "250-", 4);
    line[10] = '\x1b'; /* a terminal escape */
    line[11] = (char)0xff;
    for (int i = 0; i < 10; i++)
        assert_int_equal(mxr__reply_line(&r, line, sizeof line, BIG, &err), 0);
    assert_true(r.truncated);
    assert_true(r.len < MXR__REPLY_TEXT_MAX);
    for (size_t i = 0; i < r.len; i++)
        assert_true(r.text[i] == '\n' ||
                    (r.text[i] >= 0x20 && r.text[i] < 0x7f));
    /* The whole reply is bounded too: a server that never ends one. */
    mxr__reply_reset(&r);
    int rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++)
        rc = mxr__reply_line(&r, line, sizeof line, BIG, &err);
    assert_int_equal(rc, -1);
    assert_string_equal(err, "reply too long");
}

static void test_next_line(void **state)
{
    (void)state;
    size_t used;
    assert_int_equal(mxr__reply_next_line("250 ok\r\nrest", 12, &used), 6);
    assert_int_equal(used, 8);
    assert_int_equal(mxr__reply_next_line("250 ok\nrest", 11, &used), 6);
    assert_int_equal(used, 7);
    assert_int_equal(mxr__reply_next_line("250 partial", 11, &used), -1);
}

/* ------------------------------------------------------------- DATA */

static void check_encoding(const char *in, size_t len, const char *want)
{
    size_t n = mxr__data_encoded_len(in, len);
    assert_int_equal(n, strlen(want));
    char *out = malloc(n + 1);
    assert_non_null(out);
    mxr__data_encode(in, len, out);
    out[n] = '\0';
    assert_string_equal(out, want);
    free(out);
}

static void test_data_line_ends(void **state)
{
    (void)state;
    check_encoding("a\r\nb\r\n", 6, "a\r\nb\r\n.\r\n");
    check_encoding("a\nb\n", 4, "a\r\nb\r\n.\r\n");       /* bare LF */
    check_encoding("a\rb\r", 4, "a\r\nb\r\n.\r\n");       /* bare CR */
    check_encoding("a\n\r\nb", 5, "a\r\n\r\nb\r\n.\r\n"); /* no last end */
    check_encoding("", 0, ".\r\n");
}

static void test_data_dot_stuffing(void **state)
{
    (void)state;
    check_encoding(".\n", 2, "..\r\n.\r\n");
    check_encoding("a\n.b\n..c\n", 9, "a\r\n..b\r\n...c\r\n.\r\n");
    check_encoding("a.b\n", 4, "a.b\r\n.\r\n"); /* not at a line start */
    check_encoding(".", 1, "..\r\n.\r\n");
}

static void test_data_8bit_and_nul(void **state)
{
    (void)state;
    assert_false(mxr__data_is_8bit("plain\r\n", 7));
    assert_true(mxr__data_is_8bit("caf\xc3\xa9", 5));
    assert_int_equal(mxr__data_encoded_len("a\0b\n", 4), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_multi_line_and_keywords),
        cmocka_unit_test(test_enhanced_code_per_line),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_hostile_text_is_bounded_and_printable),
        cmocka_unit_test(test_next_line),
        cmocka_unit_test(test_data_line_ends),
        cmocka_unit_test(test_data_dot_stuffing),
        cmocka_unit_test(test_data_8bit_and_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
