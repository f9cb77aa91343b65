/* serve_metrics.c -- what `mxroute serve` counts and how a scrape shows
 * it: the per-request tally (protocol, map, result, latency), the
 * classification of replies into results, and the Prometheus text
 * exposition (format 0.0.4) of a snapshot. Pure functions over memory:
 * the HTTP side is serve_http.c. Every label value is one of a fixed set,
 * so no client can create series. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t serve_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ----------------------------------------------------------- counting */

/* 100 µs to 10 s: a cached plan answers in the first buckets, a DNS
 * timeout (--timeout, --tries) in the last. The text of each bound is
 * written out: no float formatting decides what a scraper reads. */
static const uint64_t bucket_ns[SERVE_LATENCY_BUCKETS] = {
    100000,     250000,     500000,     1000000,    2500000,   5000000,
    10000000,   25000000,   50000000,   100000000,  250000000, 500000000,
    1000000000, 2500000000, 5000000000, 10000000000};
static const char *const bucket_le[SERVE_LATENCY_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10"};

void serve_tally_request(serve_tally *t, serve_proto proto, serve_map map,
                         serve_result res, uint64_t ns)
{
    if (proto >= SERVE_NPROTO || map >= MAP_N || res >= RES_N)
        return;
    t->requests[proto][map][res]++;
    size_t b = 0;
    while (b < SERVE_LATENCY_BUCKETS && ns > bucket_ns[b])
        b++;
    t->latency[proto][b]++;
    t->latency_ns[proto] += ns;
}

serve_result serve_sm_result(const char *data)
{
    if (!data)
        return RES_ERROR;
    if (strncmp(data, "OK error:", 9) == 0)
        return RES_PERM;
    if (strncmp(data, "OK ", 3) == 0)
        return RES_OK;
    if (strncmp(data, "NOTFOUND", 8) == 0)
        return RES_NOTFOUND;
    if (strncmp(data, "TEMP", 4) == 0)
        return RES_TEMP;
    return RES_ERROR; /* PERM: the request was wrong */
}

serve_result serve_ex_result(const char *line)
{
    static const struct {
        const char *action;
        serve_result res;
    } actions[] = {{"action=route ", RES_OK},
                   {"action=fail ", RES_PERM},
                   {"action=defer ", RES_TEMP},
                   {"action=decline ", RES_NOTFOUND}};
    for (size_t i = 0; line && i < sizeof actions / sizeof *actions; i++)
        if (strncmp(line, actions[i].action, strlen(actions[i].action)) == 0)
            return actions[i].res;
    return RES_ERROR;
}

serve_result serve_js_result(mxr_status st, const mxr_plan *p)
{
    if (st == MXR_EBADNAME)
        return RES_INVALID;
    if (st != MXR_OK || !p)
        return RES_ERROR;
    return p->result == MXR_RESULT_OK         ? RES_OK
           : p->result == MXR_RESULT_PERMFAIL ? RES_PERM
                                              : RES_TEMP;
}

void serve_stats_add(mxr_stats *to, const mxr_stats *from)
{
    to->routes += from->routes;
    to->plan_hits += from->plan_hits;
    to->queries_sent += from->queries_sent;
    to->queries_coalesced += from->queries_coalesced;
    to->cache_hits += from->cache_hits;
    to->cache_evictions += from->cache_evictions;
    to->policy_calls += from->policy_calls;
    to->policy_errors += from->policy_errors;
    to->queries_timed_out += from->queries_timed_out;
    to->policy_budget_kills += from->policy_budget_kills;
}

/* ---------------------------------------------------------- rendering */

static const char *const proto_names[SERVE_NPROTO] = {"socketmap", "json",
                                                      "exim"};
static const char *const map_names[MAP_N] = {"none",   "transport", "other",
                                             "route",  "stats",     "outcome",
                                             "health", "reload"};
static const char *const result_names[RES_N] = {
    "ok", "notfound", "temp", "perm", "invalid", "error", "dropped"};
/* The maps each protocol can name, up to MAP_N. */
static const serve_map proto_maps[SERVE_NPROTO][MAP_N] = {
    {MAP_TRANSPORT, MAP_OTHER, MAP_NONE, MAP_N},
    {MAP_ROUTE, MAP_STATS, MAP_OUTCOME, MAP_HEALTH, MAP_RELOAD, MAP_NONE,
     MAP_N},
    {MAP_ROUTE, MAP_NONE, MAP_N}};

void serve_metrics_label(FILE *out, const char *name, const char *value)
{
    fprintf(out, "%s=\"", name);
    for (const char *c = value; *c; c++) {
        if (*c == '\\' || *c == '"')
            fprintf(out, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", out);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void family(FILE *out, const char *name, const char *type,
                   const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample. */
static void single(FILE *out, const char *name, const char *type,
                   const char *help, uint64_t v)
{
    family(out, name, type, help);
    fprintf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void requests(FILE *out, const serve_tally *t)
{
    family(out, "mxroute_requests_total", "counter",
           "Requests answered, by protocol, map (socketmap map name, json "
           "op) and result.");
    for (int p = 0; p < SERVE_NPROTO; p++)
        for (int m = 0; proto_maps[p][m] != MAP_N; m++)
            for (int r = 0; r < RES_N; r++) {
                serve_map map = proto_maps[p][m];
                fprintf(out,
                        "mxroute_requests_total{proto=\"%s\",map=\"%s\","
                        "result=\"%s\"} %llu\n",
                        proto_names[p], map_names[map], result_names[r],
                        (unsigned long long)t->requests[p][map][r]);
            }
}

static void latency(FILE *out, const serve_tally *t)
{
    const char *n = "mxroute_request_duration_seconds";
    family(out, n, "histogram",
           "Seconds from a request parsed to its answer made.");
    for (int p = 0; p < SERVE_NPROTO; p++) {
        uint64_t cum = 0;
        for (int b = 0; b <= SERVE_LATENCY_BUCKETS; b++) {
            cum += t->latency[p][b];
            fprintf(out, "%s_bucket{proto=\"%s\",le=\"%s\"} %llu\n", n,
                    proto_names[p],
                    b < SERVE_LATENCY_BUCKETS ? bucket_le[b] : "+Inf",
                    (unsigned long long)cum);
        }
        fprintf(out, "%s_sum{proto=\"%s\"} %.9f\n", n, proto_names[p],
                (double)t->latency_ns[p] / 1e9);
        fprintf(out, "%s_count{proto=\"%s\"} %llu\n", n, proto_names[p],
                (unsigned long long)cum);
    }
}

static void clients(FILE *out, const serve_snapshot *s)
{
    family(out, "mxroute_clients", "gauge",
           "Clients connected now, by protocol.");
    for (int p = 0; p < SERVE_NPROTO; p++)
        fprintf(out, "mxroute_clients{proto=\"%s\"} %zu\n", proto_names[p],
                s->clients[p]);
    fprintf(out, "mxroute_clients{proto=\"metrics\"} %zu\n", s->http_clients);
    single(out, "mxroute_clients_refused_total", "counter",
           "Clients refused at --max-clients.", s->refused);
}

static void daemon_info(FILE *out, const serve_snapshot *s)
{
    family(out, "mxroute_build_info", "gauge",
           "Always 1; the version of the library serving.");
    fputs("mxroute_build_info{", out);
    serve_metrics_label(out, "version", mxr_version_string());
    fputs("} 1\n", out);
    single(out, "mxroute_start_time_seconds", "gauge",
           "When the daemon started, in seconds since the Unix epoch.",
           (uint64_t)s->tally->started);
    family(out, "mxroute_reloads_total", "counter",
           "Reloads of the configuration, by result.");
    fprintf(out, "mxroute_reloads_total{result=\"ok\"} %llu\n",
            (unsigned long long)s->reloads_ok);
    fprintf(out, "mxroute_reloads_total{result=\"failed\"} %llu\n",
            (unsigned long long)s->reloads_failed);
}

static void cache(FILE *out, const mxr_stats *e)
{
    single(out, "mxroute_routes_total", "counter",
           "Route requests the engine accepted.", e->routes);
    single(out, "mxroute_plan_cache_hits_total", "counter",
           "Routes answered from a cached plan.", e->plan_hits);
    single(out, "mxroute_plan_cache_misses_total", "counter",
           "Routes that had to look their plan up.", e->routes - e->plan_hits);
    single(out, "mxroute_dns_cache_hits_total", "counter",
           "DNS lookups answered from the record cache.", e->cache_hits);
    single(out, "mxroute_dns_cache_misses_total", "counter",
           "DNS lookups that went to DNS: sent a query or joined one in "
           "flight.",
           e->queries_sent + e->queries_coalesced);
    single(out, "mxroute_dns_cache_evictions_total", "counter",
           "Records evicted from the cache to stay in its bounds.",
           e->cache_evictions);
    single(out, "mxroute_dns_cache_entries", "gauge",
           "Answers in the record cache now.", e->cache_entries);
    single(out, "mxroute_dns_cache_bytes", "gauge",
           "Bytes the record cache holds now.", e->cache_bytes);
}

static void dns_policy(FILE *out, const mxr_stats *e)
{
    single(out, "mxroute_dns_queries_total", "counter", "DNS queries sent.",
           e->queries_sent);
    single(out, "mxroute_dns_query_timeouts_total", "counter",
           "DNS queries that got no answer in time.", e->queries_timed_out);
    single(out, "mxroute_dns_queries_coalesced_total", "counter",
           "DNS lookups that joined a query already in flight.",
           e->queries_coalesced);
    single(out, "mxroute_dns_queries_inflight", "gauge",
           "DNS queries in flight now.", e->inflight);
    single(out, "mxroute_policy_calls_total", "counter", "Policy hook calls.",
           e->policy_calls);
    single(out, "mxroute_policy_errors_total", "counter",
           "Policy hook calls stopped by an error or a budget.",
           e->policy_errors);
    single(out, "mxroute_policy_budget_kills_total", "counter",
           "Policy hook calls stopped by their instruction or time budget.",
           e->policy_budget_kills);
    single(out, "mxroute_memory_bytes", "gauge",
           "Bytes the engine has allocated now.", e->bytes_allocated);
}

char *serve_metrics_render(const serve_snapshot *s, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out)
        return NULL;
    daemon_info(out, s);
    requests(out, s->tally);
    latency(out, s->tally);
    clients(out, s);
    cache(out, &s->engine);
    dns_policy(out, &s->engine);
    if (ferror(out)) {
        fclose(out);
        free(text);
        return NULL;
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
