/* test_serve_metrics.c -- what `mxroute serve` counts and how a scrape
 * shows it (src/cli/serve_metrics.c): histogram buckets at their bounds,
 * reply classification, retired engines' counters, label escaping, and
 * the exposition text: every family with HELP and TYPE, cumulative
 * buckets whose +Inf is the count. The HTTP side is tested against the
 * real daemon in tests/it_serve_metrics.sh. */
#include "support.h"

#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sample line "NAME{LABELS} VALUE" (or "NAME VALUE") of text: its
 * value, or -1 when the line is missing. */
static long long sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
        if (strncmp(l, series, n) == 0 && l[n] == ' ')
            return atoll(l + n + 1);
    return -1;
}

static void test_tally_buckets(void **state)
{
    (void)state;
    serve_tally t = {0};
    /* a bound is inclusive (le): 100 µs is in the first bucket */
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_TRANSPORT, RES_OK, 100000);
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_TRANSPORT, RES_OK, 100001);
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_TRANSPORT, RES_TEMP,
                        20000000000ull); /* 20 s: +Inf */
    serve_tally_request(&t, PROTO_JSON, MAP_ROUTE, RES_PERM, 0);
    assert_int_equal(t.latency[PROTO_SOCKETMAP][0], 1);
    assert_int_equal(t.latency[PROTO_SOCKETMAP][1], 1);
    assert_int_equal(t.latency[PROTO_SOCKETMAP][SERVE_LATENCY_BUCKETS], 1);
    assert_int_equal(t.latency[PROTO_JSON][0], 1);
    assert_int_equal(t.requests[PROTO_SOCKETMAP][MAP_TRANSPORT][RES_OK], 2);
    assert_int_equal(t.requests[PROTO_SOCKETMAP][MAP_TRANSPORT][RES_TEMP], 1);
    assert_int_equal(t.requests[PROTO_JSON][MAP_ROUTE][RES_PERM], 1);
    assert_true(t.latency_ns[PROTO_SOCKETMAP] == 20000200001ull);
    /* out-of-range labels are ignored, never written past the arrays */
    serve_tally_request(&t, PROTO_METRICS, MAP_ROUTE, RES_OK, 1);
    serve_tally_request(&t, PROTO_JSON, MAP_N, RES_OK, 1);
    serve_tally_request(&t, PROTO_JSON, MAP_ROUTE, RES_N, 1);
    assert_int_equal(t.latency[PROTO_JSON][0], 1);
}

static void test_results(void **state)
{
    (void)state;
    assert_int_equal(serve_sm_result("OK smtp:[192.0.2.1]:25"), RES_OK);
    assert_int_equal(serve_sm_result("OK error:5.1.10 null-mx: ..."), RES_PERM);
    assert_int_equal(serve_sm_result("NOTFOUND "), RES_NOTFOUND);
    assert_int_equal(serve_sm_result("TEMP servfail: ..."), RES_TEMP);
    assert_int_equal(serve_sm_result("PERM bad netstring length"), RES_ERROR);
    assert_int_equal(serve_sm_result(NULL), RES_ERROR);
    mxr_plan p = {0};
    p.result = MXR_RESULT_OK;
    assert_int_equal(serve_js_result(MXR_OK, &p), RES_OK);
    p.result = MXR_RESULT_PERMFAIL;
    assert_int_equal(serve_js_result(MXR_OK, &p), RES_PERM);
    p.result = MXR_RESULT_TEMPFAIL;
    assert_int_equal(serve_js_result(MXR_OK, &p), RES_TEMP);
    assert_int_equal(serve_js_result(MXR_EBADNAME, NULL), RES_INVALID);
    assert_int_equal(serve_js_result(MXR_ENOMEM, NULL), RES_ERROR);
    assert_int_equal(serve_ex_result("action=route hosts=<;[192.0.2.1]:25\n"),
                     RES_OK);
    assert_int_equal(serve_ex_result("action=fail message=\"5.1.2 x\"\n"),
                     RES_PERM);
    assert_int_equal(serve_ex_result("action=defer message=\"x\"\n"), RES_TEMP);
    assert_int_equal(serve_ex_result("action=decline message=\"x\"\n"),
                     RES_NOTFOUND);
    assert_int_equal(serve_ex_result("action=routed"), RES_ERROR);
    assert_int_equal(serve_ex_result(NULL), RES_ERROR);
}

static void test_stats_add(void **state)
{
    (void)state;
    mxr_stats live = {.routes = 5,
                      .plan_hits = 1,
                      .cache_entries = 7,
                      .inflight = 2,
                      .queries_timed_out = 1,
                      .policy_budget_kills = 1};
    mxr_stats old = {.routes = 10,
                     .plan_hits = 4,
                     .cache_entries = 99,
                     .inflight = 9,
                     .queries_timed_out = 3,
                     .policy_budget_kills = 2,
                     .policy_calls = 6};
    serve_stats_add(&live, &old);
    assert_int_equal(live.routes, 15);
    assert_int_equal(live.plan_hits, 5);
    assert_int_equal(live.queries_timed_out, 4);
    assert_int_equal(live.policy_budget_kills, 3);
    assert_int_equal(live.policy_calls, 6);
    /* gauges are the live engine's */
    assert_int_equal(live.cache_entries, 7);
    assert_int_equal(live.inflight, 2);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    serve_metrics_label(f, "v", "a\"b\\c\nd");
    fclose(f);
    assert_string_equal(buf, "v=\"a\\\"b\\\\c\\nd\"");
    free(buf);
}

/* Every family the issue names, with HELP and TYPE. */
static const char *const families[][2] = {
    {"mxroute_build_info", "gauge"},
    {"mxroute_start_time_seconds", "gauge"},
    {"mxroute_reloads_total", "counter"},
    {"mxroute_requests_total", "counter"},
    {"mxroute_request_duration_seconds", "histogram"},
    {"mxroute_clients", "gauge"},
    {"mxroute_clients_refused_total", "counter"},
    {"mxroute_routes_total", "counter"},
    {"mxroute_plan_cache_hits_total", "counter"},
    {"mxroute_plan_cache_misses_total", "counter"},
    {"mxroute_dns_cache_hits_total", "counter"},
    {"mxroute_dns_cache_misses_total", "counter"},
    {"mxroute_dns_queries_total", "counter"},
    {"mxroute_dns_query_timeouts_total", "counter"},
    {"mxroute_policy_calls_total", "counter"},
    {"mxroute_policy_errors_total", "counter"},
    {"mxroute_policy_budget_kills_total", "counter"},
};

static void test_render(void **state)
{
    (void)state;
    serve_tally t = {.started = 1700000000};
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_TRANSPORT, RES_OK, 50000);
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_TRANSPORT, RES_OK, 3000000);
    serve_tally_request(&t, PROTO_SOCKETMAP, MAP_NONE, RES_ERROR, 3000000);
    serve_tally_request(&t, PROTO_JSON, MAP_STATS, RES_OK, 1000);
    serve_snapshot s = {.engine = {.routes = 9,
                                   .plan_hits = 2,
                                   .queries_sent = 5,
                                   .queries_coalesced = 1,
                                   .queries_timed_out = 3,
                                   .policy_budget_kills = 4},
                        .tally = &t,
                        .clients = {3, 1},
                        .http_clients = 2,
                        .refused = 6,
                        .reloads_ok = 7,
                        .reloads_failed = 8};
    size_t len = 0;
    char *text = serve_metrics_render(&s, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "# HELP %s ", families[i][0]);
        if (!strstr(text, want))
            fail_msg("no HELP for %s", families[i][0]);
        snprintf(want, sizeof want, "# TYPE %s %s\n", families[i][0],
                 families[i][1]);
        if (!strstr(text, want))
            fail_msg("no \"%s\"", want);
    }
    assert_int_equal(sample(text, "mxroute_requests_total{proto=\"socketmap\","
                                  "map=\"transport\",result=\"ok\"}"),
                     2);
    assert_int_equal(sample(text, "mxroute_requests_total{proto=\"socketmap\","
                                  "map=\"none\",result=\"error\"}"),
                     1);
    assert_int_equal(sample(text, "mxroute_requests_total{proto=\"json\","
                                  "map=\"route\",result=\"dropped\"}"),
                     0);
    /* cumulative buckets; +Inf and _count are all the requests */
    const char *h = "mxroute_request_duration_seconds";
    char series[128];
    long long want_le[][2] = {{0, 1}, {4, 1}, {5, 3}, {15, 3}};
    static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001",
                                     "0.0025", "0.005",   "0.01",   "0.025",
                                     "0.05",   "0.1",     "0.25",   "0.5",
                                     "1",      "2.5",     "5",      "10"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(series, sizeof series,
                 "%s_bucket{proto=\"socketmap\",le=\"%s\"}", h,
                 le[want_le[i][0]]);
        assert_int_equal(sample(text, series), want_le[i][1]);
    }
    snprintf(series, sizeof series,
             "%s_bucket{proto=\"socketmap\",le=\"+Inf\"}", h);
    assert_int_equal(sample(text, series), 3);
    snprintf(series, sizeof series, "%s_count{proto=\"socketmap\"}", h);
    assert_int_equal(sample(text, series), 3);
    snprintf(series, sizeof series, "%s_count{proto=\"json\"}", h);
    assert_int_equal(sample(text, series), 1);
    assert_non_null(strstr(
        text, "mxroute_request_duration_seconds_sum{proto=\"socketmap\"} "
              "0.006050000\n"));
    assert_int_equal(sample(text, "mxroute_clients{proto=\"socketmap\"}"), 3);
    assert_int_equal(sample(text, "mxroute_clients{proto=\"json\"}"), 1);
    assert_int_equal(sample(text, "mxroute_clients{proto=\"metrics\"}"), 2);
    assert_int_equal(sample(text, "mxroute_clients_refused_total"), 6);
    assert_int_equal(sample(text, "mxroute_reloads_total{result=\"ok\"}"), 7);
    assert_int_equal(sample(text, "mxroute_reloads_total{result=\"failed\"}"),
                     8);
    assert_int_equal(sample(text, "mxroute_plan_cache_misses_total"), 7);
    assert_int_equal(sample(text, "mxroute_dns_cache_misses_total"), 6);
    assert_int_equal(sample(text, "mxroute_dns_query_timeouts_total"), 3);
    assert_int_equal(sample(text, "mxroute_policy_budget_kills_total"), 4);
    assert_int_equal(sample(text, "mxroute_start_time_seconds"), 1700000000);
    char info[64];
    snprintf(info, sizeof info, "mxroute_build_info{version=\"%s\"}",
             mxr_version_string());
    assert_int_equal(sample(text, info), 1);
    assert_int_equal(text[len - 1], '\n');
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tally_buckets),
        cmocka_unit_test(test_results),
        cmocka_unit_test(test_stats_add),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
