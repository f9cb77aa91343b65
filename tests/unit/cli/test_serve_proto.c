/* test_serve_proto.c -- the protocol halves of `mxroute serve`
 * (src/cli/serve_socketmap.c, serve_json.c, serve_exim.c): netstring
 * requests, keys and --domains, socketmap replies (next-hop lists cut at
 * a whole hop, the enhanced status codes), JSON Lines requests and error
 * lines, the exim protocol's reply lines (Exim host lists, quoting). The daemon
 * around them is tested against real clients in tests/it_serve.sh. */
#include "support.h"

#include "cli.h"
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static sm_parse_rc parse(const char *s, size_t max, sm_request *q,
                         const char **why)
{
    *why = NULL;
    return sm_parse(s, strlen(s), max, q, why);
}

static void test_sm_parse_request(void **state)
{
    (void)state;
    sm_request q;
    const char *why;
    const char *s = "26:transport user@example.com,11:transport *,";
    assert_int_equal(parse(s, 100, &q, &why), SM_REQUEST);
    assert_int_equal(q.name_len, 9);
    assert_memory_equal(q.name, "transport", 9);
    assert_int_equal(q.key_len, 16);
    assert_memory_equal(q.key, "user@example.com", 16);
    assert_int_equal(q.used, 30);
    /* the pipelined second request follows */
    assert_int_equal(sm_parse(s + q.used, strlen(s) - q.used, 100, &q, &why),
                     SM_REQUEST);
    assert_int_equal(q.key_len, 1);
    assert_int_equal(q.used, strlen(s) - 30);
}

static void test_sm_parse_partial(void **state)
{
    (void)state;
    sm_request q;
    const char *why;
    const char *s = "26:transport user@example.com,";
    for (size_t n = 0; n < strlen(s); n++)
        assert_int_equal(sm_parse(s, n, 100, &q, &why), SM_MORE);
}

static void test_sm_parse_bad(void **state)
{
    (void)state;
    sm_request q;
    const char *why;
    assert_int_equal(parse("garbage", 100, &q, &why), SM_BAD);
    assert_string_equal(why, "bad netstring length");
    assert_int_equal(parse(":transport x,", 100, &q, &why), SM_BAD);
    assert_int_equal(parse("11:transport x;", 100, &q, &why), SM_BAD);
    assert_string_equal(why, "netstring not terminated by ','");
    assert_int_equal(parse("9:transport,", 100, &q, &why), SM_BAD);
    assert_string_equal(why, "request is not 'NAME KEY'");
    assert_int_equal(parse("2: x,", 100, &q, &why), SM_BAD);
    assert_int_equal(sm_parse("3:a\0b,", 6, 100, &q, &why), SM_BAD);
    assert_string_equal(why, "NUL byte in request");
    /* a length over the limit is refused from its digits alone */
    assert_int_equal(parse("101", 100, &q, &why), SM_BAD);
    assert_string_equal(why, "request too long");
    assert_int_equal(parse("100", 100, &q, &why), SM_MORE);
    assert_int_equal(parse("99999999999999999999999:", 1 << 30, &q, &why),
                     SM_BAD);
}

static void test_sm_key_domain(void **state)
{
    (void)state;
    char d[256];
    assert_true(sm_key_domain("user@Example.COM", 16, d, sizeof d));
    assert_string_equal(d, "example.com");
    assert_true(sm_key_domain("\"a@b\"@example.com.", 18, d, sizeof d));
    assert_string_equal(d, "example.com");
    assert_true(sm_key_domain("example.com", 11, d, sizeof d));
    assert_string_equal(d, "example.com");
    assert_false(sm_key_domain("*", 1, d, sizeof d));
    assert_false(sm_key_domain(".example.com", 12, d, sizeof d));
    assert_false(sm_key_domain("user@", 5, d, sizeof d));
    assert_false(sm_key_domain("", 0, d, sizeof d));
    assert_false(sm_key_domain("a b", 3, d, sizeof d));
    assert_false(sm_key_domain("example.com", 11, d, 11));
}

static void test_domains_listed(void **state)
{
    (void)state;
    const char *l = "example.com, .example.net,other.org.";
    assert_true(serve_domain_listed(NULL, "anything.test"));
    assert_true(serve_domain_listed(l, "example.com"));
    assert_true(serve_domain_listed(l, "EXAMPLE.com"));
    assert_false(serve_domain_listed(l, "sub.example.com"));
    assert_true(serve_domain_listed(l, "sub.example.net"));
    assert_true(serve_domain_listed(l, "a.b.example.net"));
    assert_false(serve_domain_listed(l, "example.net"));
    assert_false(serve_domain_listed(l, "badexample.net"));
    assert_true(serve_domain_listed(l, "other.org"));
    assert_false(serve_domain_listed(l, "org"));
    assert_false(serve_domain_listed("", "example.com"));
}

static const sm_transports relay = {"relay", NULL, 0};
static const sm_transports smtp = {"smtp", NULL, 0};

/* A plan of n hosts, two addresses each (192.0.2.i, 2001:db8::i). */
typedef struct fake {
    mxr_plan p;
    mxr_candidate c[8];
    mxr_addr a[8][2];
} fake;

static void make_plan(fake *f, size_t n)
{
    memset(f, 0, sizeof *f);
    f->p.domain = f->p.input = "example.test";
    f->p.result = MXR_RESULT_OK;
    f->p.candidates = f->c;
    f->p.ncandidates = n;
    for (size_t i = 0; i < n; i++) {
        f->a[i][0] = (mxr_addr){.family = AF_INET,
                                .bytes = {192, 0, 2, (uint8_t)(i + 1)}};
        f->a[i][1] = (mxr_addr){
            .family = AF_INET6,
            .bytes = {0x20, 0x01, 0x0d, 0xb8, [15] = (uint8_t)(i + 1)}};
        f->c[i] = (mxr_candidate){.host = "mx.example.test",
                                  .port = (uint16_t)(i ? 25 : 2525),
                                  .naddrs = 2,
                                  .addrs = f->a[i]};
    }
}

static void test_sm_format_plan(void **state)
{
    (void)state;
    fake f;
    char out[SM_MAX_REPLY + 1];
    make_plan(&f, 2);
    size_t n = sm_format_result(out, sizeof out, &relay, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "OK relay:[192.0.2.1]:2525, [2001:db8::1]:2525, "
                             "[192.0.2.2]:25, [2001:db8::2]:25");
    assert_int_equal(n, strlen(out));
    /* cut at a whole next hop, never inside one */
    n = sm_format_result(out, 50, &smtp, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "OK smtp:[192.0.2.1]:2525, [2001:db8::1]:2525");
    assert_int_equal(n, strlen(out));
    /* a plan without any address is not an empty next-hop list */
    f.c[0].naddrs = f.c[1].naddrs = 0;
    sm_format_result(out, sizeof out, &smtp, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "TEMP no address to deliver to");
}

static void test_sm_format_failures(void **state)
{
    (void)state;
    fake f;
    char out[512];
    make_plan(&f, 0);
    f.p.result = MXR_RESULT_PERMFAIL;
    f.p.reason = MXR_REASON_NULL_MX;
    sm_format_result(out, sizeof out, &smtp, MXR_OK, &f.p, NULL);
    assert_true(strncmp(out, "OK error:5.1.10 null-mx: ", 25) == 0);
    f.p.reason = MXR_REASON_NXDOMAIN;
    sm_format_result(out, sizeof out, &smtp, MXR_OK, &f.p, NULL);
    assert_true(strncmp(out, "OK error:5.1.2 nxdomain: ", 25) == 0);
    assert_string_equal(sm_perm_code(MXR_REASON_NO_MAIL_HOST), "5.4.4");
    assert_string_equal(sm_perm_code(MXR_REASON_NO_USABLE_HOST), "5.4.4");
    assert_string_equal(sm_perm_code(MXR_REASON_LOOPS_TO_SELF), "5.4.6");
    assert_string_equal(sm_perm_code(MXR_REASON_POLICY), "5.7.1");
    f.p.result = MXR_RESULT_TEMPFAIL;
    f.p.reason = MXR_REASON_SERVFAIL;
    sm_format_result(out, sizeof out, &smtp, MXR_OK, &f.p, NULL);
    assert_true(strncmp(out, "TEMP servfail: ", 15) == 0);
    sm_format_result(out, sizeof out, &smtp, MXR_EBADNAME, NULL, "bad");
    assert_string_equal(out, "NOTFOUND ");
    sm_format_result(out, sizeof out, &smtp, MXR_ENOMEM, NULL, "no\nmemory");
    assert_string_equal(out, "TEMP internal error: no?memory");
}

/* --label-transport: the first candidate's label picks the service, and
 * the list keeps the hops of that service only; the last mapping of a
 * label wins; unmapped labels take --transport. */
static void test_sm_format_labels(void **state)
{
    (void)state;
    static const sm_label_transport map[] = {{"smarthost=relay", 9, "relay"},
                                             {"gateway", 7, "tls"},
                                             {"smarthost", 9, "relay2"}};
    const sm_transports t = {"smtp", map, 3};
    assert_string_equal(sm_transport_of(&t, NULL), "smtp");
    assert_string_equal(sm_transport_of(&t, "other"), "smtp");
    assert_string_equal(sm_transport_of(&t, "gateway"), "tls");
    assert_string_equal(sm_transport_of(&t, "smarthost"), "relay2");
    assert_string_equal(sm_transport_of(&t, "smart"), "smtp"); /* no prefix */
    assert_string_equal(sm_transport_of(&t, "gateway2"), "smtp");
    fake f;
    char out[512];
    make_plan(&f, 3);
    f.c[0].label = "gateway";
    f.c[2].label = "gateway";
    sm_format_result(out, sizeof out, &t, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "OK tls:[192.0.2.1]:2525, [2001:db8::1]:2525, "
                             "[192.0.2.3]:25, [2001:db8::3]:25");
    f.c[0].label = "other"; /* unmapped: --transport, with host 2 */
    sm_format_result(out, sizeof out, &t, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "OK smtp:[192.0.2.1]:2525, [2001:db8::1]:2525, "
                             "[192.0.2.2]:25, [2001:db8::2]:25");
}

/* outcome and health requests: what they name, and every refusal */
static void test_js_host_parse(void **state)
{
    (void)state;
    js_host_req q;
    const char *why;
    const char *l = "{\"op\":\"outcome\",\"host\":\"mx1.example.com\","
                    "\"addr\":\"2001:db8::1\",\"stage\":\"rcpt\","
                    "\"class\":\"421\",\"code\":421,\"enhanced\":\"4.3.2\","
                    "\"text\":\"closing\"}";
    assert_true(js_host_parse(l, strlen(l), JS_OUTCOME, &q, &why));
    assert_string_equal(q.host, "mx1.example.com");
    assert_true(q.has_addr);
    assert_int_equal(q.addr.family, AF_INET6);
    assert_int_equal(q.outcome.stage, MXR_STAGE_RCPT);
    assert_int_equal(q.outcome.cls, MXR_CLASS_421);
    assert_int_equal(q.outcome.code, 421);
    assert_string_equal(q.outcome.enhanced, "4.3.2");
    assert_string_equal(q.outcome.text, "closing");
    l = "{\"op\":\"outcome\",\"addr\":\"192.0.2.1\",\"class\":\"refused\"}";
    assert_true(js_host_parse(l, strlen(l), JS_OUTCOME, &q, &why));
    assert_string_equal(q.host, "");
    assert_int_equal(q.outcome.stage, MXR_STAGE_CONNECT); /* the default */
    assert_null(q.outcome.enhanced);
    assert_null(q.outcome.text);
    l = "{\"op\":\"health\",\"host\":\"mx1.example.com\"}";
    assert_true(js_host_parse(l, strlen(l), JS_HEALTH, &q, &why));
    assert_false(q.has_addr);
    static const char *const bad[] = {
        "{\"op\":\"health\"}",
        "{\"op\":\"health\",\"host\":\"a.test\",\"addr\":\"192.0.2.1\"}",
        "{\"op\":\"health\",\"host\":\"\"}",
        "{\"op\":\"health\",\"host\":7}",
        "{\"op\":\"health\",\"host\":\"a\\u0000b\"}",
        "{\"op\":\"health\",\"addr\":\"[192.0.2.1]\"}",
        "{\"op\":\"outcome\",\"host\":\"a.test\"}",
        "{\"op\":\"outcome\",\"host\":\"a.test\",\"class\":\"broken\"}",
        "{\"op\":\"outcome\",\"host\":\"a.test\",\"class\":\"4xx\","
        "\"stage\":\"later\"}",
        "{\"op\":\"outcome\",\"host\":\"a.test\",\"class\":\"4xx\","
        "\"code\":600}",
        "{\"op\":\"outcome\",\"host\":\"a.test\",\"class\":\"4xx\","
        "\"text\":5}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why = NULL;
        assert_false(js_host_parse(
            bad[i], strlen(bad[i]),
            strstr(bad[i], "outcome") ? JS_OUTCOME : JS_HEALTH, &q, &why));
        assert_non_null(why);
    }
}

static void test_js_health_reply(void **state)
{
    (void)state;
    js_host_req q = {.host = "mx1.example.com"};
    mxr_health h = {true, 2, 5000, 1000};
    char *r = js_health_reply(json_integer(4), &q, &h, 3000, true);
    assert_string_equal(r, "{\"recorded\":true,\"host\":\"mx1.example.com\","
                           "\"down\":true,\"failures\":2,\"down_for_ms\":2000,"
                           "\"last_failure_ago_ms\":2000,\"id\":4}\n");
    free(r);
    q.host[0] = '\0';
    q.has_addr = mxr_addr_parse("192.0.2.1", &q.addr);
    h = (mxr_health){0};
    r = js_health_reply(NULL, &q, &h, 3000, false);
    assert_string_equal(r, "{\"addr\":\"192.0.2.1\",\"down\":false,"
                           "\"failures\":0,\"down_for_ms\":0,"
                           "\"last_failure_ago_ms\":null}\n");
    free(r);
}

static void test_sm_netstring(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(sm_netstring(out, sizeof out, "NOTFOUND ", 9), 12);
    assert_memory_equal(out, "9:NOTFOUND ,", 12);
    assert_int_equal(sm_netstring(out, sizeof out, "", 0), 3);
    assert_memory_equal(out, "0:,", 3);
    assert_int_equal(sm_netstring(out, 8, "NOTFOUND ", 9), 0);
}

static void test_ex_format_plan(void **state)
{
    (void)state;
    fake f;
    char out[SM_MAX_REPLY + 1];
    make_plan(&f, 2);
    size_t n = ex_format_result(out, sizeof out, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "action=route hosts=<;[192.0.2.1]:2525;"
                             "[2001:db8::1]:2525;[192.0.2.2]:25;"
                             "[2001:db8::2]:25\n");
    assert_int_equal(n, strlen(out));
    /* cut at a whole host, the line still ends in its newline */
    n = ex_format_result(out, 64, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "action=route hosts=<;[192.0.2.1]:2525;"
                             "[2001:db8::1]:2525\n");
    assert_int_equal(n, strlen(out));
    f.c[0].naddrs = f.c[1].naddrs = 0;
    ex_format_result(out, sizeof out, MXR_OK, &f.p, NULL);
    assert_string_equal(out,
                        "action=defer message=\"no address to deliver to\"\n");
}

static void test_ex_format_failures(void **state)
{
    (void)state;
    fake f;
    char out[512];
    make_plan(&f, 0);
    f.p.result = MXR_RESULT_PERMFAIL;
    f.p.reason = MXR_REASON_NULL_MX;
    ex_format_result(out, sizeof out, MXR_OK, &f.p, NULL);
    assert_string_equal(out, "action=fail message=\"5.1.10 null-mx: the "
                             "domain publishes a null MX: it accepts no "
                             "mail (RFC 7505)\"\n");
    f.p.reason = MXR_REASON_POLICY;
    ex_format_result(out, sizeof out, MXR_OK, &f.p, NULL);
    assert_true(strncmp(out, "action=fail message=\"5.7.1 policy: ", 35) == 0);
    f.p.result = MXR_RESULT_TEMPFAIL;
    f.p.reason = MXR_REASON_SERVFAIL;
    ex_format_result(out, sizeof out, MXR_OK, &f.p, NULL);
    assert_true(strncmp(out, "action=defer message=\"servfail: ", 32) == 0);
    ex_format_result(out, sizeof out, MXR_EBADNAME, NULL, "empty label");
    assert_string_equal(
        out, "action=decline message=\"invalid-name: empty label\"\n");
    /* quotes and backslashes escaped for ${extract}, control bytes gone */
    ex_format_result(out, sizeof out, MXR_ENOMEM, NULL, "a \"b\" \\c\nd");
    assert_string_equal(out, "action=defer message=\"internal error: "
                             "a \\\"b\\\" \\\\c?d\"\n");
    /* a long message is cut, the quote closed and the line ended */
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t n = ex_format_message(out, 100, "defer", NULL, big);
    assert_int_equal(n, strlen(out));
    assert_true(n < 100);
    assert_memory_equal(out + n - 2, "\"\n", 2);
}

static void test_js_parse(void **state)
{
    (void)state;
    void *id;
    char *input;
    const char *why;
    const char *l = "{\"id\":7,\"op\":\"route\",\"input\":\"u@example.com\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ROUTE);
    assert_string_equal(input, "u@example.com");
    assert_int_equal(json_integer_value(id), 7);
    free(input);
    char *r = js_error_reply(id, "x");
    assert_string_equal(r, "{\"error\":\"x\",\"id\":7}\n");
    free(r);
    l = "{\"op\":\"stats\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_STATS);
    assert_null(id);
    l = "{\"op\":\"outcome\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_OUTCOME);
    l = "{\"op\":\"health\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_HEALTH);
    assert_null(input);
    l = "{\"id\":\"a\",\"op\":\"nope\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ERROR);
    assert_non_null(strstr(why, "unknown"));
    r = js_error_reply(id, why);
    assert_non_null(strstr(r, "\"id\":\"a\""));
    free(r);
    l = "{\"op\":\"route\",\"input\":3}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ERROR);
    l = "[1,2]";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ERROR);
    l = "{\"op\":\"route\"";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ERROR);
    r = js_error_reply(NULL, why);
    assert_non_null(strstr(r, "\"id\":null"));
    free(r);
}

/* {"op":"reload"}: its own op, the id kept, no input; the reply says ok
 * or failed with the reason. */
static void test_js_reload(void **state)
{
    (void)state;
    void *id;
    char *input;
    const char *why = NULL;
    const char *l = "{\"id\":9,\"op\":\"reload\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_RELOAD);
    assert_null(input);
    assert_int_equal(json_integer_value(id), 9);
    char *r = js_reload_reply(id, NULL);
    assert_string_equal(r, "{\"reload\":\"ok\",\"id\":9}\n");
    free(r);
    l = "{\"op\":\"reload\",\"input\":\"ignored\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_RELOAD);
    assert_null(id);
    assert_null(input);
    r = js_reload_reply(NULL, "zone x: line 3: bad \"record\"");
    assert_string_equal(r, "{\"reload\":\"failed\",\"error\":\"zone x: line 3: "
                           "bad \\\"record\\\"\"}\n");
    free(r);
    l = "{\"op\":\"Reload\"}";
    assert_int_equal(js_parse(l, strlen(l), &id, &input, &why), JS_ERROR);
    assert_non_null(strstr(why, "reload"));
}

/* The stats reply counts the reloads. */
static void test_js_stats_reloads(void **state)
{
    (void)state;
    mxr_stats s = {.routes = 3};
    char *r = js_stats_reply(json_integer(1), &s, 2, 5, 1);
    json_t *o = json_loads(r, 0, NULL);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "routes")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "reloads_ok")), 5);
    assert_int_equal(json_integer_value(json_object_get(o, "reloads_failed")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 1);
    json_decref(o);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sm_parse_request),
        cmocka_unit_test(test_sm_parse_partial),
        cmocka_unit_test(test_sm_parse_bad),
        cmocka_unit_test(test_sm_key_domain),
        cmocka_unit_test(test_domains_listed),
        cmocka_unit_test(test_sm_format_plan),
        cmocka_unit_test(test_sm_format_failures),
        cmocka_unit_test(test_sm_format_labels),
        cmocka_unit_test(test_js_host_parse),
        cmocka_unit_test(test_js_health_reply),
        cmocka_unit_test(test_sm_netstring),
        cmocka_unit_test(test_ex_format_plan),
        cmocka_unit_test(test_ex_format_failures),
        cmocka_unit_test(test_js_parse),
        cmocka_unit_test(test_js_reload),
        cmocka_unit_test(test_js_stats_reloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
