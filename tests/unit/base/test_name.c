/* test_name.c -- input parsing, IDNA and host-name normalisation
 * (src/base/name.c). */
#include "support.h"
#include "base/name.h"
#include "base/addr.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ helpers */

static mxr__input parse_ok(const char *input)
{
    mxr__input in;
    char err[256] = "";
    mxr_status st = mxr__input_parse(input, &in, err, sizeof err);
    if (st != MXR_OK)
        fail_msg("'%s' rejected: %s", input, err);
    return in;
}

static void expect_domain(const char *input, const char *want, bool local)
{
    mxr__input in = parse_ok(input);
    assert_int_equal(in.kind, MXR__INPUT_DOMAIN);
    assert_string_equal(in.domain, want);
    assert_int_equal(in.has_local, local);
}

/* The input is rejected and the message contains want. */
static void expect_error(const char *input, const char *want)
{
    mxr__input in;
    char err[256] = "";
    mxr_status st = mxr__input_parse(input, &in, err, sizeof err);
    if (st != MXR_EBADNAME)
        fail_msg("'%s' accepted as '%s'", input, in.domain);
    if (strstr(err, want) == NULL)
        fail_msg("'%s': message '%s' lacks '%s'", input, err, want);
    assert_null(strchr(err, '\n'));
    /* Nothing half-filled is left behind. */
    assert_int_equal(in.domain[0], '\0');
    assert_false(in.has_local);
}

static void expect_literal(const char *input, const char *domain,
                           const char *addr, bool local)
{
    mxr__input in = parse_ok(input);
    assert_int_equal(in.kind, MXR__INPUT_LITERAL);
    assert_string_equal(in.domain, domain);
    assert_int_equal(in.has_local, local);
    mxr_addr want;
    assert_true(mxr__addr_parse(addr, &want));
    assert_true(mxr__addr_equal(&in.literal, &want));
}

static void norm_ok(const char *in, const char *want)
{
    char out[MXR__NAME_MAX + 1], err[256] = "";
    mxr_status st =
        mxr__hostname_normalize(in, strlen(in), out, err, sizeof err);
    if (st != MXR_OK)
        fail_msg("'%s' rejected: %s", in, err);
    assert_string_equal(out, want);
}

static void norm_error(const char *in, size_t len, const char *want)
{
    char out[MXR__NAME_MAX + 1], err[256] = "";
    mxr_status st = mxr__hostname_normalize(in, len, out, err, sizeof err);
    assert_int_equal(st, MXR_EBADNAME);
    if (strstr(err, want) == NULL)
        fail_msg("message '%s' lacks '%s'", err, want);
    assert_int_equal(out[0], '\0');
}

/* n copies of c, for long labels and names. */
static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* A name of exactly len octets: 63-octet labels, the last one shorter. */
static char *name_of_length(char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (i % 64 == 63) ? '.' : 'a';
    if (buf[len - 1] == '.') { /* never end on a separator */
        buf[len - 2] = '.';
        buf[len - 1] = 'b';
    }
    buf[len] = '\0';
    return buf;
}

/* ------------------------------------------------------------- domains */

static void test_plain_domains(void **state)
{
    (void)state;
    expect_domain("example.com", "example.com", false);
    expect_domain("Example.COM", "example.com", false);
    expect_domain("example.com.", "example.com", false);
    expect_domain("EXAMPLE.COM.", "example.com", false);
    expect_domain("a-b.example", "a-b.example", false);
    expect_domain("1a.example", "1a.example", false);
    expect_domain("123.example", "123.example", false);
    expect_domain("localhost", "localhost", false);
    expect_domain("xn--bcher-kva.example", "xn--bcher-kva.example", false);
    expect_domain("a.b.c.d.e.f", "a.b.c.d.e.f", false);
}

static void test_empty_labels(void **state)
{
    (void)state;
    expect_error("", "empty input");
    expect_error(".", "empty host name");
    expect_error("..", "empty label in '..'");
    expect_error("a..b", "empty label in 'a..b'");
    expect_error(".example.com", "empty label");
    expect_error("example.com..", "empty label in 'example.com..'");
    expect_error("user@", "missing domain after '@'");
    expect_error("user@.", "empty host name");
}

static void test_ldh(void **state)
{
    (void)state;
    expect_error("exa mple.com", "character ' ' not allowed in a host name");
    expect_error(" example.com", "character ' '");
    expect_error("example.com ", "character ' '");
    expect_error("a_b.example", "character '_' not allowed");
    expect_error("a*.example", "character '*'");
    expect_error("a/b", "character '/'");
    expect_error("a:b", "character ':'");
    expect_error("a\"b", "character '\"'");
    expect_error("a\tb.example", "character '\\x09'");
    expect_error("a\nb.example", "character '\\x0a'");
    expect_error("a\x7f.example", "character '\\x7f'");
    expect_error("-a.example", "label '-a' starts with a hyphen");
    expect_error("a-.example", "label 'a-' ends with a hyphen");
    expect_error("example.-", "starts with a hyphen");
    expect_error("user@a]b", "character ']'");
    expect_error("user@a[b", "character '['");
}

static void test_label_lengths(void **state)
{
    (void)state;
    char label[80], input[200], want[200];
    repeat(label, 'a', 63);
    snprintf(input, sizeof input, "%s.example", label);
    expect_domain(input, input, false);
    snprintf(input, sizeof input, "user@%s.EXAMPLE.", label);
    snprintf(want, sizeof want, "%s.example", label);
    expect_domain(input, want, true);

    repeat(label, 'a', 64);
    snprintf(input, sizeof input, "%s.example", label);
    expect_error(input, "is longer than 63 octets");
    expect_error(input, "label 'aaaaaaaaaa"); /* quoted... */
    expect_error(input, "...'");              /* ...and truncated */
}

static void test_name_lengths(void **state)
{
    (void)state;
    char name[300], input[320];
    name_of_length(name, 253);
    assert_int_equal(strlen(name), 253);
    expect_domain(name, name, false);
    snprintf(input, sizeof input, "%s.", name); /* 254 with the final dot */
    expect_domain(input, name, false);
    snprintf(input, sizeof input, "u@%s", name);
    expect_domain(input, name, true);

    name_of_length(name, 254);
    assert_int_equal(strlen(name), 254);
    expect_error(name, "longer than 253 octets");
    snprintf(input, sizeof input, "%s.", name);
    expect_error(input, "longer than 253 octets");
}

static void test_input_too_long(void **state)
{
    (void)state;
    static char big[MXR__INPUT_MAX + 2];
    repeat(big, 'a', MXR__INPUT_MAX + 1);
    expect_error(big, "input longer than 1024 octets");
    /* At the limit the input is read, and fails for what it is. */
    repeat(big, 'a', MXR__INPUT_MAX);
    expect_error(big, "longer than 63 octets");
}

static void test_numeric_names(void **state)
{
    (void)state;
    expect_error("192.0.2.1", "use an address literal such as '[192.0.2.1]'");
    expect_error("192.0.2.1.", "'[192.0.2.1]'");
    expect_error("user@192.0.2.1", "is an IP address");
    expect_error("123", "all-numeric name '123'");
    expect_error("1.2.3.4.5", "all-numeric name");
    expect_error("1.2.3", "all-numeric name");
}

/* ---------------------------------------------------------- local parts */

static void test_local_parts(void **state)
{
    (void)state;
    expect_domain("user@example.com", "example.com", true);
    expect_domain("User@Example.COM.", "example.com", true);
    expect_domain("first.last+tag@example.com", "example.com", true);
    expect_domain("!#$%&'*+-/=?^_`{|}~@example.com", "example.com", true);
    expect_domain("a@b.example", "b.example", true);
    expect_error("@example.com", "empty local part");
    expect_error("a@b@example.com", "character '@' not allowed in local part");
    expect_error("a b@example.com", "character ' ' not allowed in local part");
    expect_error("a(b)@example.com", "character '('");
    expect_error("a\"b@example.com", "character '\"' not allowed in local");
    expect_error(".a@example.com", "misplaced dot in local part '.a'");
    expect_error("a.@example.com", "misplaced dot in local part 'a.'");
    expect_error("a..b@example.com", "misplaced dot in local part 'a..b'");
    expect_error(".@example.com", "misplaced dot");
    /* RFC 6531 (SMTPUTF8) local parts are accepted when valid UTF-8. */
    expect_domain("j\xc3\xb6rg@example.com", "example.com", true);
    expect_error("j\xc3rg@example.com", "local part is not valid UTF-8");
}

static void test_local_part_length(void **state)
{
    (void)state;
    char local[80], input[200];
    repeat(local, 'l', 64);
    snprintf(input, sizeof input, "%s@example.com", local);
    expect_domain(input, "example.com", true);
    repeat(local, 'l', 65);
    snprintf(input, sizeof input, "%s@example.com", local);
    expect_error(input, "local part longer than 64 octets");
    /* The quotes count: they are part of the local part on the wire. */
    local[0] = '"';
    repeat(local + 1, 'q', 62);
    local[63] = '"';
    local[64] = '\0';
    snprintf(input, sizeof input, "%s@example.com", local);
    expect_domain(input, "example.com", true);
    local[63] = 'q';
    local[64] = '"';
    local[65] = '\0';
    snprintf(input, sizeof input, "%s@example.com", local);
    expect_error(input, "local part longer than 64 octets");
}

static void test_quoted_local_parts(void **state)
{
    (void)state;
    expect_domain("\"a b\"@example.com", "example.com", true);
    expect_domain("\"a@b\"@example.com", "example.com", true);
    expect_domain("\"a@b\"@Example.COM.", "example.com", true);
    expect_domain("\"a\\\"b\"@example.com", "example.com", true);
    expect_domain("\"a\\\\b\"@example.com", "example.com", true);
    expect_domain("\"a\\@b\"@example.com", "example.com", true);
    expect_domain("\"\"@example.com", "example.com", true);
    expect_domain("\"a..b.\"@example.com", "example.com", true);
    expect_domain("\"(),:;<>[]\"@example.com", "example.com", true);
    expect_literal("\"a@b\"@[192.0.2.1]", "[192.0.2.1]", "192.0.2.1", true);

    expect_error("\"abc@example.com", "unterminated quoted local part");
    expect_error("\"abc\\\"@example.com", "unterminated quoted local part");
    expect_error("\"abc\\", "unterminated quoted local part");
    expect_error("\"", "unterminated quoted local part");
    expect_error("\"abc\"", "quoted local part without a domain");
    expect_error("\"a\"b@example.com",
                 "unexpected text after quoted local part: 'b@example.com'");
    expect_error("\"a\"@b@example.com", "character '@' not allowed");
    expect_error("\"a\x01\"@example.com",
                 "character '\\x01' not allowed in quoted local part");
    expect_error("\"a\\\x01\"@example.com", "character '\\x01'");
    expect_error("\"a\tb\"@example.com", "character '\\x09'");
    expect_error("\"\xc3\xa9\"@example.com", "character '\\xc3'");
    expect_error("\"a\x7f\"@example.com", "character '\\x7f'");
}

/* ------------------------------------------------------ address literals */

static void test_literals(void **state)
{
    (void)state;
    expect_literal("[192.0.2.1]", "[192.0.2.1]", "192.0.2.1", false);
    expect_literal("user@[192.0.2.1]", "[192.0.2.1]", "192.0.2.1", true);
    expect_literal("\"a b\"@[192.0.2.1]", "[192.0.2.1]", "192.0.2.1", true);
    expect_literal("[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", "2001:db8::1",
                   false);
    expect_literal("u@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", "2001:db8::1",
                   true);
    /* The prefix is case-insensitive; the stored form is canonical. */
    expect_literal("[ipv6:2001:DB8:0:0::1]", "[IPv6:2001:db8::1]",
                   "2001:db8::1", false);
    expect_literal("[IPV6:2001:0db8::0001]", "[IPv6:2001:db8::1]",
                   "2001:db8::1", false);
    expect_literal("[iPv6:::1]", "[IPv6:::1]", "::1", false);
    expect_literal("[IPv6:::ffff:192.0.2.1]", "[IPv6:::ffff:192.0.2.1]",
                   "::ffff:192.0.2.1", false);
}

static void test_bad_literals(void **state)
{
    (void)state;
    expect_error("[192.0.2.256]", "bad IPv4 address literal '[192.0.2.256]'");
    expect_error("[192.0.2]", "bad IPv4 address literal");
    expect_error("[192.0.2.1.]", "bad IPv4 address literal");
    expect_error("[ 192.0.2.1]", "bad IPv4 address literal");
    expect_error("[example.com]", "bad IPv4 address literal");
    expect_error("[]", "bad IPv4 address literal '[]'");
    expect_error("[", "unterminated address literal '['");
    expect_error("[192.0.2.1", "unterminated address literal '[192.0.2.1'");
    expect_error("u@[192.0.2.1", "unterminated address literal");
    expect_error("[192.0.2.1].", "unterminated address literal");
    expect_error("[192.0.2.1]x", "unterminated address literal");
    expect_error("[IPv6:192.0.2.1]", "bad IPv6 address literal");
    expect_error("[IPv6:2001:db8::g]", "bad IPv6 address literal");
    expect_error("[IPv6:fe80::1%eth0]", "bad IPv6 address literal");
    expect_error("[IPv6:]", "bad IPv6 address literal");
    expect_error("[IPv6 :2001:db8::1]", "unsupported address literal");
    expect_error("[2001:db8::1]", "needs the 'IPv6:' prefix: "
                                  "'[IPv6:2001:db8::1]'");
    expect_error("[x-tag:stuff]", "unsupported address literal '[x-tag:st");
    expect_error("[[192.0.2.1]]", "bad IPv4 address literal");
    expect_error("a[192.0.2.1]", "character '['");
    char big[200];
    big[0] = '[';
    repeat(big + 1, '1', 100);
    strcat(big, "]");
    expect_error(big, "address literal '[111");
    expect_error(big, "is too long");
}

/* ------------------------------------------------------------------ IDNA */

static void test_idna(void **state)
{
    (void)state;
    expect_domain("b\xc3\xbc"
                  "cher.example",
                  "xn--bcher-kva.example", false);
    expect_domain("B\xc3\xbc"
                  "cher.Example.",
                  "xn--bcher-kva.example", false);
    expect_domain("B\xc3\x9c"
                  "CHER.example",
                  "xn--bcher-kva.example", false);
    expect_domain("user@b\xc3\xbc"
                  "cher.example",
                  "xn--bcher-kva.example", true);
    expect_domain("\"a b\"@B\xc3\xbc"
                  "cher.example.",
                  "xn--bcher-kva.example", true);
    /* Non-transitional: sharp s is kept, not mapped to "ss". */
    expect_domain("fa\xc3\x9f.de", "xn--fa-hia.de", false);
    /* NFC input: u + combining diaeresis is the same name. */
    expect_domain("bu\xcc\x88"
                  "cher.example",
                  "xn--bcher-kva.example", false);
    /* Ideographic full stop separates labels. */
    expect_domain("b\xc3\xbc"
                  "cher\xe3\x80\x82"
                  "example",
                  "xn--bcher-kva.example", false);
}

static void test_idna_errors(void **state)
{
    (void)state;
    expect_error("b\xc3\xbc"
                 "cher.example..",
                 "empty label");
    expect_error("-\xc3\xbc.example", "IDNA: ");
    expect_error("-\xc3\xbc.example", "'-\xc3\xbc.example'");
    expect_error("\xc3\xbc_x.example", "character '_'");
    expect_error("\xc3\xbc x.example", "IDNA");
    /* A zero-width space maps to nothing and leaves an empty label. */
    expect_error("\xe2\x80\x8b.\xc3\xbc", "empty label");
    char label[80], input[200];
    repeat(label, 'a', 62);
    snprintf(input, sizeof input, "%s\xc3\xbc.example", label);
    expect_error(input, "IDNA");
    /* A long U-label is quoted truncated on a character boundary: byte 40
     * of "-üüü..." is in the middle of a 'ü', so the quote stops before. */
    char quoted[100];
    strcpy(input, "-");
    for (int i = 0; i < 30; i++)
        strcat(input, "\xc3\xbc");
    strcat(input, ".example");
    strcpy(quoted, "'-");
    for (int i = 0; i < 19; i++)
        strcat(quoted, "\xc3\xbc");
    strcat(quoted, "...'");
    expect_error(input, quoted);
    /* Valid UTF-8 that must not reach a terminal as it is: a C1 control
     * (U+0085, a line break), the line separator and a bidi override are
     * shown as bytes; the letters around them as they are. */
    expect_error("\xc2\x85.\xc3\xbc", "'\\xc2\\x85.\xc3\xbc'");
    expect_error("a\xe2\x80\xa8\xc3\xbc.example", "'a\\xe2\\x80\\xa8\xc3\xbc");
    expect_error("\xe2\x80\xae"
                 "b\xc3\xbc.example",
                 "'\\xe2\\x80\\xae"
                 "b\xc3\xbc");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xff.example",                 /* never valid */
        "\xfe.example",                 /* never valid */
        "b\xc3.example",                /* truncated */
        "b\xc3",                        /* truncated at the end */
        "\x80.example",                 /* lone continuation */
        "\xc0\xaf.example",             /* overlong '/' */
        "\xe0\x80\xaf.example",         /* overlong */
        "\xed\xa0\x80.example",         /* surrogate */
        "\xf4\x90\x80\x80.example",     /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80.example", /* 5-byte form */
        "user@\xe2\x82.example",        /* truncated 3-byte */
        "\xc3\xbc\xc3.example",         /* valid, then truncated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i], "not valid UTF-8");
    /* The bytes are shown escaped so the message stays printable. */
    expect_error("\xff.example", "'\\xff.example'");
}

/* ------------------------------------------------------------- messages */

static void test_error_buffer(void **state)
{
    (void)state;
    mxr__input in;
    char err[16];
    memset(err, 'z', sizeof err);
    /* errlen 0 writes nothing. */
    assert_int_equal(mxr__input_parse("a..b", &in, err, 0), MXR_EBADNAME);
    assert_int_equal(err[0], 'z');
    assert_int_equal(mxr__input_parse("a..b", &in, NULL, 0), MXR_EBADNAME);
    assert_int_equal(mxr__input_parse("a..b", &in, NULL, 10), MXR_EBADNAME);
    /* A short buffer gets a truncated, terminated message. */
    assert_int_equal(mxr__input_parse("a..b", &in, err, 8), MXR_EBADNAME);
    assert_int_equal(strlen(err), 7);
    assert_int_equal(err[8], 'z');
    /* Success leaves err alone. */
    memset(err, 'z', sizeof err);
    assert_int_equal(mxr__input_parse("example.com", &in, err, sizeof err),
                     MXR_OK);
    assert_int_equal(err[0], 'z');
}

static void test_quotes_are_truncated(void **state)
{
    (void)state;
    char input[400], err[512];
    mxr__input in;
    repeat(input, 'a', 300);
    input[150] = '.';
    input[151] = '.';
    assert_int_equal(mxr__input_parse(input, &in, err, sizeof err),
                     MXR_EBADNAME);
    assert_true(strlen(err) < 80);
    assert_non_null(strstr(err, "...'"));
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char err[64];
    mxr__input in;
    assert_int_equal(mxr__input_parse(NULL, &in, err, sizeof err),
                     MXR_EBADNAME);
    assert_string_equal(err, "no input");
    assert_int_equal(mxr__input_parse("example.com", NULL, err, sizeof err),
                     MXR_EINVAL);
}

/* ------------------------------------------------------ hostname_normalize */

static void test_normalize(void **state)
{
    (void)state;
    norm_ok("MX1.Example.COM.", "mx1.example.com");
    norm_ok("mx1.example.com", "mx1.example.com");
    norm_ok("a", "a");
    norm_ok("A.", "a");
    norm_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
    /* MX targets spelled as addresses are valid names; the planner skips
     * them with mxr__name_is_ip_literal. */
    norm_ok("192.0.2.1", "192.0.2.1");
    norm_ok("192.0.2.1.", "192.0.2.1");
}

static void test_normalize_errors(void **state)
{
    (void)state;
    norm_error("", 0, "empty host name");
    norm_error(".", 1, "empty host name");
    norm_error(NULL, 0, "empty host name");
    norm_error("..", 2, "empty label in '..'");
    norm_error("a..b", 4, "empty label in 'a..b'");
    norm_error("a.b..", 5, "empty label");
    norm_error(".a", 2, "empty label");
    norm_error("a b", 3, "character ' ' not allowed in a host name");
    norm_error("a_b", 3, "character '_'");
    norm_error("a\0b.com", 7, "character '\\x00'");
    norm_error("b\xc3\xbc"
               "cher.example",
               14, "non-ASCII byte '\\xc3'");
    norm_error("\xff", 1, "non-ASCII byte '\\xff'");
    norm_error("-mx.example", 11, "starts with a hyphen");
    norm_error("mx-.example", 11, "ends with a hyphen");
    norm_error("[192.0.2.1]", 11, "character '['");
}

static void test_normalize_lengths(void **state)
{
    (void)state;
    char name[300], out[MXR__NAME_MAX + 1], err[128];
    repeat(name, 'A', 63);
    norm_ok(name, repeat(out, 'a', 63));
    repeat(name, 'a', 64);
    norm_error(name, 64, "longer than 63 octets");
    name_of_length(name, 253);
    norm_ok(name, name);
    strcat(name, "."); /* 254 octets with the final dot is still fine */
    assert_int_equal(mxr__hostname_normalize(name, 254, out, err, sizeof err),
                     MXR_OK);
    assert_int_equal(strlen(out), 253);
    assert_memory_equal(out, name, 253);
    name_of_length(name, 254);
    norm_error(name, 254, "name '");
    norm_error(name, 254, "is longer than 253 octets");
    /* Far longer input is still bounded and safe. */
    static char huge[100000];
    for (size_t i = 0; i < sizeof huge; i++)
        huge[i] = (i % 10 == 9) ? '.' : 'x';
    norm_error(huge, sizeof huge, "longer than 253 octets");
}

static void test_normalize_not_terminated(void **state)
{
    (void)state;
    char out[MXR__NAME_MAX + 1], err[128];
    const char text[] = {'M', 'X', '.', 'E', 'x', '.', '!', '!'};
    /* Only len bytes are read; what follows does not matter. */
    assert_int_equal(mxr__hostname_normalize(text, 5, out, err, sizeof err),
                     MXR_OK);
    assert_string_equal(out, "mx.ex");
    assert_int_equal(mxr__hostname_normalize(text, 6, out, err, sizeof err),
                     MXR_OK);
    assert_string_equal(out, "mx.ex");
    assert_int_equal(mxr__hostname_normalize(text, 7, out, err, sizeof err),
                     MXR_EBADNAME);
    assert_int_equal(mxr__hostname_normalize(text, 5, NULL, err, sizeof err),
                     MXR_EINVAL);
}

/* ------------------------------------------------------- ip-literal test */

static void test_is_ip_literal(void **state)
{
    (void)state;
    assert_true(mxr__name_is_ip_literal("192.0.2.1"));
    assert_true(mxr__name_is_ip_literal("192.0.2.1."));
    assert_true(mxr__name_is_ip_literal("0.0.0.0"));
    assert_true(mxr__name_is_ip_literal("2001:db8::1"));
    assert_true(mxr__name_is_ip_literal("::1"));
    assert_true(mxr__name_is_ip_literal("::ffff:192.0.2.1"));
    assert_false(mxr__name_is_ip_literal("192.0.2"));
    assert_false(mxr__name_is_ip_literal("192.0.2.1.."));
    assert_false(mxr__name_is_ip_literal("192.0.2.256"));
    assert_false(mxr__name_is_ip_literal("1.2.3.4.5"));
    assert_false(mxr__name_is_ip_literal("2001:db8::1."));
    assert_false(mxr__name_is_ip_literal("[192.0.2.1]"));
    assert_false(mxr__name_is_ip_literal("fe80::1%eth0"));
    assert_false(mxr__name_is_ip_literal("mx.example.com"));
    assert_false(mxr__name_is_ip_literal("1a.2.3.4"));
    assert_false(mxr__name_is_ip_literal("."));
    assert_false(mxr__name_is_ip_literal(""));
    assert_false(mxr__name_is_ip_literal(NULL));
    char big[300];
    name_of_length(big, 200);
    assert_false(mxr__name_is_ip_literal(big));
}

/* ----------------------------------------------------------- robustness */

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Bytes that reach the deeper paths: separators, quotes, literals and
 * UTF-8 lead and continuation bytes. */
static unsigned char interesting_byte(uint64_t r)
{
    static const char pool[] = "aZ09-._@\"\\[]:IPv6 \x01\x7f"
                               "\xc3\xbc\xe2\x80\x8b\xf0\x9f\x98\x80\xff";
    return (unsigned char)pool[r % (sizeof pool - 1)];
}

/* len random bytes in buf; zero_ok: whether NUL may appear. */
static void random_bytes(uint64_t *seed, unsigned char *buf, size_t len,
                         bool zero_ok)
{
    bool biased = next_random(seed) % 2 == 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t r = next_random(seed);
        unsigned char b =
            biased ? interesting_byte(r >> 8) : (unsigned char)(r >> 8);
        if (b == 0 && !zero_ok)
            b = 1 + (unsigned char)(r % 255);
        buf[i] = b;
    }
}

static void check_message(const char *err)
{
    assert_true(strlen(err) > 0);
    assert_true(strlen(err) < 256);
    assert_null(strchr(err, '\n'));
}

/* A result that was accepted must itself be a normal name. */
static void check_accepted_domain(const mxr__input *in)
{
    char out[MXR__NAME_MAX + 1], err[256];
    assert_true(strlen(in->domain) <= MXR__NAME_MAX);
    if (in->kind == MXR__INPUT_LITERAL)
        return;
    assert_int_equal(mxr__hostname_normalize(in->domain, strlen(in->domain),
                                             out, err, sizeof err),
                     MXR_OK);
    assert_string_equal(out, in->domain);
}

static void test_random_bytes(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed5eed12345678u;
    unsigned char buf[302];
    char err[256], out[MXR__NAME_MAX + 1];
    long accepted = 0;
    for (long i = 0; i < 200000; i++) {
        size_t len = (size_t)(next_random(&seed) % 301);
        random_bytes(&seed, buf, len, false);
        buf[len] = '\0';
        mxr__input in;
        err[0] = '\0';
        mxr_status st = mxr__input_parse((char *)buf, &in, err, sizeof err);
        assert_true(st == MXR_OK || st == MXR_EBADNAME);
        if (st == MXR_OK) {
            check_accepted_domain(&in);
            accepted++;
        } else {
            check_message(err);
        }

        random_bytes(&seed, buf, len, true);
        st = mxr__hostname_normalize((char *)buf, len, out, err, sizeof err);
        assert_true(st == MXR_OK || st == MXR_EBADNAME);
        assert_true(strlen(out) <= MXR__NAME_MAX);
    }
    /* The biased half must reach the success paths too. */
    assert_true(accepted > 0);
}

/* A host name split against a domain and joined again is itself. */
static void test_split_and_join(void **state)
{
    (void)state;
    static const struct {
        const char *name, *domain;
        mxr__name_form form;
        size_t kept;
    } cases[] = {
        {"mx1.example.com", "example.com", MXR__NAME_UNDER, 3},
        {"example.com", "example.com", MXR__NAME_IS_DOMAIN, 0},
        {"mx.other.net", "example.com", MXR__NAME_WHOLE, 12},
        {"notexample.com", "example.com", MXR__NAME_WHOLE, 14},
        {"example.com", "", MXR__NAME_WHOLE, 11},
        {"", "", MXR__NAME_WHOLE, 0},
        {"com", "example.com", MXR__NAME_WHOLE, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *name = cases[i].name, *dom = cases[i].domain;
        size_t kept;
        mxr__name_form form =
            mxr__name_split(name, strlen(name), dom, strlen(dom), &kept);
        assert_int_equal(form, cases[i].form);
        assert_int_equal(kept, cases[i].kept);
        char out[64];
        size_t n = mxr__name_join(out, name, kept, form, dom, strlen(dom));
        assert_string_equal(out, name);
        assert_int_equal(n, strlen(name));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_domains),
        cmocka_unit_test(test_empty_labels),
        cmocka_unit_test(test_ldh),
        cmocka_unit_test(test_label_lengths),
        cmocka_unit_test(test_name_lengths),
        cmocka_unit_test(test_input_too_long),
        cmocka_unit_test(test_numeric_names),
        cmocka_unit_test(test_local_parts),
        cmocka_unit_test(test_local_part_length),
        cmocka_unit_test(test_quoted_local_parts),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_bad_literals),
        cmocka_unit_test(test_idna),
        cmocka_unit_test(test_idna_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_quotes_are_truncated),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_normalize_errors),
        cmocka_unit_test(test_normalize_lengths),
        cmocka_unit_test(test_normalize_not_terminated),
        cmocka_unit_test(test_is_ip_literal),
        cmocka_unit_test(test_split_and_join),
        cmocka_unit_test(test_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
