/* test_addr.c -- address parsing, comparison, formatting and the safety
 * classification of addresses (src/base/addr.c). */
#include "support.h"
#include "base/addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static mxr_addr must_parse(const char *text)
{
    mxr_addr a;
    if (!mxr__addr_parse(text, &a))
        fail_msg("could not parse '%s'", text);
    return a;
}

static void test_parse_ipv4(void **state)
{
    (void)state;
    mxr_addr a = must_parse("192.0.2.1");
    assert_int_equal(a.family, AF_INET);
    const uint8_t want[4] = {192, 0, 2, 1};
    assert_memory_equal(a.bytes, want, 4);
    a = must_parse("0.0.0.0");
    assert_int_equal(a.family, AF_INET);
    a = must_parse("255.255.255.255");
    assert_int_equal(a.bytes[3], 255);
}

static void test_parse_ipv6(void **state)
{
    (void)state;
    mxr_addr a = must_parse("2001:db8::1");
    assert_int_equal(a.family, AF_INET6);
    const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                              0,    0,    0,    0,    0, 0, 0, 1};
    assert_memory_equal(a.bytes, want, 16);
    a = must_parse("::");
    assert_int_equal(a.family, AF_INET6);
    a = must_parse("::ffff:192.0.2.1");
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.bytes[10], 0xff);
    assert_int_equal(a.bytes[15], 1);
    a = must_parse("2001:DB8::A");
    assert_int_equal(a.bytes[15], 0x0a);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " 192.0.2.1",
        "192.0.2.1 ",
        "192.0.2.1\n",
        "192.0.2.1.",
        "192.0.2",
        "192.0.2.256",
        "1.2.3.4.5",
        "[192.0.2.1]",
        "[::1]",
        "fe80::1%eth0",
        "fe80::1%1",
        "2001:db8::1::2",
        "2001:db8:::1",
        "example.com",
        "1.2.3.4:25",
        "::ffff:1.2.3.4.5",
        "0x7f.0.0.1",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255x",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mxr_addr a;
        memset(&a, 0x5a, sizeof a);
        if (mxr__addr_parse(bad[i], &a))
            fail_msg("'%s' parsed", bad[i]);
        /* A failed parse leaves the output alone. */
        assert_int_equal(a.bytes[0], 0x5a);
    }
    mxr_addr a;
    assert_false(mxr__addr_parse(NULL, &a));
    assert_false(mxr__addr_parse("192.0.2.1", NULL));
}

static void test_equal(void **state)
{
    (void)state;
    mxr_addr a = must_parse("192.0.2.1"), b = must_parse("192.0.2.1");
    assert_true(mxr__addr_equal(&a, &b));
    /* Bytes beyond the 4 an IPv4 address uses do not matter. */
    b.bytes[10] = 0x77;
    assert_true(mxr__addr_equal(&a, &b));
    b = must_parse("192.0.2.2");
    assert_false(mxr__addr_equal(&a, &b));
    /* A mapped address is a different address on the wire. */
    b = must_parse("::ffff:192.0.2.1");
    assert_false(mxr__addr_equal(&a, &b));
    a = must_parse("2001:db8::1");
    b = must_parse("2001:0db8:0:0::0:1");
    assert_true(mxr__addr_equal(&a, &b));
    b = must_parse("2001:db8::2");
    assert_false(mxr__addr_equal(&a, &b));
    assert_false(mxr__addr_equal(&a, NULL));
    assert_false(mxr__addr_equal(NULL, &a));
    mxr_addr u, v;
    memset(&u, 0, sizeof u);
    memset(&v, 0, sizeof v);
    u.family = v.family = 12345;
    assert_false(mxr__addr_equal(&u, &v));
}

typedef struct class_case {
    const char *text;
    mxr_addr_class want;
} class_case;

#define G MXR_ADDR_GLOBAL
#define P MXR_ADDR_PRIVATE
#define L MXR_ADDR_LOOPBACK
#define U MXR_ADDR_UNROUTABLE

static const class_case ipv4_cases[] = {
    {"0.0.0.0", U},         {"0.1.2.3", U},         {"0.255.255.255", U},
    {"1.0.0.0", G},         {"8.8.8.8", G},         {"192.0.2.1", G},
    {"198.51.100.7", G},    {"203.0.113.9", G},     {"127.0.0.1", L},
    {"127.255.255.254", L}, {"126.255.255.255", G}, {"128.0.0.1", G},
    {"169.254.0.1", U},     {"169.254.255.255", U}, {"169.253.0.1", G},
    {"169.255.0.1", G},     {"224.0.0.1", U},       {"239.255.255.255", U},
    {"223.255.255.255", G}, {"240.0.0.1", U},       {"254.1.2.3", U},
    {"255.255.255.255", U}, {"10.0.0.1", P},        {"10.255.255.255", P},
    {"9.255.255.255", G},   {"11.0.0.0", G},        {"172.16.0.1", P},
    {"172.31.255.255", P},  {"172.15.255.255", G},  {"172.32.0.0", G},
    {"192.168.0.1", P},     {"192.168.255.255", P}, {"192.167.255.255", G},
    {"192.169.0.0", G},     {"100.64.0.1", P},      {"100.127.255.255", P},
    {"100.63.255.255", G},  {"100.128.0.0", G},
};

static const class_case ipv6_cases[] = {
    {"::", U},
    {"::1", L},
    {"fe80::1", U},
    {"febf:ffff::1", U},
    {"fec0::1", G},
    {"fe7f::1", G},
    {"ff02::1", U},
    {"ff0e::101", U},
    {"fc00::1", P},
    {"fd12:3456::1", P},
    {"fbff::1", G},
    {"fe00::1", G},
    {"2001:db8::1", G},
    {"2a00:1450:4001::1b", G},
    {"::ffff:127.0.0.1", L},
    {"::ffff:10.1.2.3", P},
    {"::ffff:100.64.0.1", P},
    {"::ffff:192.0.2.1", G},
    {"::ffff:0.0.0.0", U},
    {"::ffff:169.254.0.1", U},
    {"::ffff:224.0.0.1", U},
    {"::ffff:255.255.255.255", U},
    {"::1:ffff:127.0.0.1", G}, /* not the mapped prefix */
};

static void check_classes(const class_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mxr_addr a = must_parse(cases[i].text);
        mxr_addr_class got = mxr_addr_classify(&a);
        if (got != cases[i].want)
            fail_msg("%s: class %d, want %d", cases[i].text, (int)got,
                     (int)cases[i].want);
    }
}

static void test_classify_ipv4(void **state)
{
    (void)state;
    check_classes(ipv4_cases, sizeof ipv4_cases / sizeof ipv4_cases[0]);
}

static void test_classify_ipv6(void **state)
{
    (void)state;
    check_classes(ipv6_cases, sizeof ipv6_cases / sizeof ipv6_cases[0]);
}

static void test_classify_unknown(void **state)
{
    (void)state;
    /* What cannot be read must never be connected to. */
    mxr_addr a;
    memset(&a, 0, sizeof a);
    a.family = 0;
    a.bytes[0] = 8;
    assert_int_equal(mxr_addr_classify(&a), MXR_ADDR_UNROUTABLE);
    assert_int_equal(mxr_addr_classify(NULL), MXR_ADDR_UNROUTABLE);
}

/* The classifier as an embedder sees it (mxroute/plan.h): the values are
 * ABI, each class has its word, and an address built by hand (no parser:
 * AF_INET6 bytes of ::ffff:10.0.0.1) is classified as the IPv4 it
 * carries. */
static void test_classify_public(void **state)
{
    (void)state;
    assert_int_equal(MXR_ADDR_GLOBAL, 0);
    assert_int_equal(MXR_ADDR_PRIVATE, 1);
    assert_int_equal(MXR_ADDR_LOOPBACK, 2);
    assert_int_equal(MXR_ADDR_UNROUTABLE, 3);
    static const struct {
        const char *text;
        mxr_addr_class want;
        const char *word;
    } one_per_class[] = {
        {"192.0.2.1", MXR_ADDR_GLOBAL, "global"},
        {"2001:db8::1", MXR_ADDR_GLOBAL, "global"},
        {"172.20.0.1", MXR_ADDR_PRIVATE, "private"},
        {"fd00::25", MXR_ADDR_PRIVATE, "private"},
        {"127.0.0.1", MXR_ADDR_LOOPBACK, "loopback"},
        {"::1", MXR_ADDR_LOOPBACK, "loopback"},
        {"169.254.1.1", MXR_ADDR_UNROUTABLE, "unroutable"},
        {"ff02::1", MXR_ADDR_UNROUTABLE, "unroutable"},
        {"::ffff:8.8.8.8", MXR_ADDR_GLOBAL, "global"},
        {"::ffff:192.168.1.1", MXR_ADDR_PRIVATE, "private"},
        {"::ffff:127.0.0.2", MXR_ADDR_LOOPBACK, "loopback"},
        {"::ffff:240.0.0.1", MXR_ADDR_UNROUTABLE, "unroutable"},
    };
    for (size_t i = 0; i < sizeof one_per_class / sizeof *one_per_class; i++) {
        mxr_addr a = must_parse(one_per_class[i].text);
        mxr_addr_class got = mxr_addr_classify(&a);
        if (got != one_per_class[i].want)
            fail_msg("%s: class %d, want %d", one_per_class[i].text, (int)got,
                     (int)one_per_class[i].want);
        assert_string_equal(mxr_addr_class_name(got), one_per_class[i].word);
    }
    mxr_addr mapped;
    memset(&mapped, 0, sizeof mapped);
    mapped.family = AF_INET6;
    mapped.bytes[10] = mapped.bytes[11] = 0xff;
    mapped.bytes[12] = 10;
    mapped.bytes[15] = 1;
    assert_int_equal(mxr_addr_classify(&mapped), MXR_ADDR_PRIVATE);
    mapped.bytes[12] = 127;
    assert_int_equal(mxr_addr_classify(&mapped), MXR_ADDR_LOOPBACK);
    mapped.bytes[11] = 0xfe; /* not the mapped prefix: a global IPv6 */
    assert_int_equal(mxr_addr_classify(&mapped), MXR_ADDR_GLOBAL);
    assert_string_equal(mxr_addr_class_name((mxr_addr_class)4), "unknown");
    assert_string_equal(mxr_addr_class_name((mxr_addr_class)-1), "unknown");
}

static void test_format(void **state)
{
    (void)state;
    char buf[MXR_ADDR_STRLEN];
    mxr_addr a = must_parse("192.0.2.1");
    assert_string_equal(mxr_addr_format(&a, buf, sizeof buf), "192.0.2.1");
    assert_ptr_equal(mxr_addr_format(&a, buf, sizeof buf), buf);
    a = must_parse("2001:0DB8:0000::0001");
    assert_string_equal(mxr_addr_format(&a, buf, sizeof buf), "2001:db8::1");
    a = must_parse("::ffff:192.0.2.1");
    assert_string_equal(mxr_addr_format(&a, buf, sizeof buf),
                        "::ffff:192.0.2.1");
    a = must_parse("::");
    assert_string_equal(mxr_addr_format(&a, buf, sizeof buf), "::");
}

static void test_format_buffer_size(void **state)
{
    (void)state;
    char buf[MXR_ADDR_STRLEN];
    mxr_addr a = must_parse("192.0.2.1"); /* 9 characters and the NUL */
    assert_null(mxr_addr_format(&a, buf, 9));
    assert_null(mxr_addr_format(&a, buf, 0));
    assert_non_null(mxr_addr_format(&a, buf, 10));
    assert_string_equal(buf, "192.0.2.1");
    /* MXR_ADDR_STRLEN is enough for the longest IPv6 spelling. */
    a = must_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_non_null(mxr_addr_format(&a, buf, sizeof buf));
    assert_string_equal(buf, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    /* A huge length is clamped, not truncated. */
    char big[64];
    assert_non_null(mxr_addr_format(&a, big, (size_t)-1 / 2));
}

static void test_format_rejects(void **state)
{
    (void)state;
    char buf[MXR_ADDR_STRLEN];
    mxr_addr a;
    memset(&a, 0, sizeof a);
    a.family = 12345;
    assert_null(mxr_addr_format(&a, buf, sizeof buf));
    assert_null(mxr_addr_format(NULL, buf, sizeof buf));
    a = must_parse("192.0.2.1");
    assert_null(mxr_addr_format(&a, NULL, sizeof buf));
}

/* Deterministic xorshift so runs are reproducible. */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_format_parse_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 20000; i++) {
        mxr_addr a, b;
        memset(&a, 0, sizeof a);
        a.family = (i & 1) ? AF_INET6 : AF_INET;
        for (size_t k = 0; k < 16; k++)
            a.bytes[k] = (uint8_t)next_random(&seed);
        if (a.family == AF_INET)
            memset(a.bytes + 4, 0, 12);
        if (i % 7 == 0) /* compressible runs of zeros */
            memset(a.bytes + 2, 0, 8);
        char buf[MXR_ADDR_STRLEN];
        assert_non_null(mxr_addr_format(&a, buf, sizeof buf));
        assert_true(mxr__addr_parse(buf, &b));
        assert_true(mxr__addr_equal(&a, &b));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipv4),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_classify_ipv4),
        cmocka_unit_test(test_classify_ipv6),
        cmocka_unit_test(test_classify_unknown),
        cmocka_unit_test(test_classify_public),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_buffer_size),
        cmocka_unit_test(test_format_rejects),
        cmocka_unit_test(test_format_parse_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
