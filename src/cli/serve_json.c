/* serve_json.c -- the JSON Lines protocol of `mxroute serve`: one request
 * object per line, one response line each, in order. A route response is
 * the object `mxroute route --json` prints (output.c) plus "id". */
#include "serve.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

js_op js_parse(const char *line, size_t len, void **id, char **input,
               const char **why)
{
    json_error_t err;
    *id = NULL;
    *input = NULL;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        *why = "bad JSON: not one object on the line";
        return JS_ERROR;
    }
    json_t *jid = json_object_get(req, "id");
    if (jid)
        *id = json_incref(jid);
    const char *op = json_string_value(json_object_get(req, "op"));
    js_op rc = JS_ERROR;
    if (!op) {
        *why = "no \"op\"";
    } else if (strcmp(op, "stats") == 0) {
        rc = JS_STATS;
    } else if (strcmp(op, "outcome") == 0) {
        rc = JS_OUTCOME;
    } else if (strcmp(op, "health") == 0) {
        rc = JS_HEALTH;
    } else if (strcmp(op, "reload") == 0) {
        rc = JS_RELOAD;
    } else if (strcmp(op, "route") == 0) {
        json_t *in = json_object_get(req, "input");
        if (!json_is_string(in) || json_string_length(in) == 0 ||
            memchr(json_string_value(in), '\0', json_string_length(in))) {
            *why = "\"input\" must be a non-empty string";
        } else if (!(*input = strdup(json_string_value(in)))) {
            *why = "out of memory";
        } else {
            rc = JS_ROUTE;
        }
    } else {
        *why = "unknown \"op\" (route, outcome, health, stats, reload)";
    }
    json_decref(req);
    return rc;
}

static char *line_of(void *id, json_t *obj)
{
    if (obj && id)
        json_object_set(obj, "id", id);
    json_decref(id);
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(obj);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *l = realloc(s, n + 2);
    if (!l) {
        free(s);
        return NULL;
    }
    l[n] = '\n';
    l[n + 1] = '\0';
    return l;
}

char *js_route_reply(void *id, const char *input, mxr_status st,
                     const mxr_plan *p, const char *err)
{
    return line_of(id, out_json_object(input, st, p, err));
}

char *js_stats_reply(void *id, const mxr_stats *s, size_t clients,
                     uint64_t reloads_ok, uint64_t reloads_failed)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I}",
        "routes", (json_int_t)s->routes, "plan_hits", (json_int_t)s->plan_hits,
        "queries_sent", (json_int_t)s->queries_sent, "queries_coalesced",
        (json_int_t)s->queries_coalesced, "cache_hits",
        (json_int_t)s->cache_hits, "cache_evictions",
        (json_int_t)s->cache_evictions, "cache_entries",
        (json_int_t)s->cache_entries, "cache_bytes", (json_int_t)s->cache_bytes,
        "inflight", (json_int_t)s->inflight, "inflight_max",
        (json_int_t)s->inflight_max, "bytes_allocated",
        (json_int_t)s->bytes_allocated, "policy_calls",
        (json_int_t)s->policy_calls, "policy_errors",
        (json_int_t)s->policy_errors, "clients", (json_int_t)clients);
    if (o)
        json_object_update_new(
            o, json_pack("{s:I, s:I}", "reloads_ok", (json_int_t)reloads_ok,
                         "reloads_failed", (json_int_t)reloads_failed));
    return line_of(id, o);
}

char *js_reload_reply(void *id, const char *why)
{
    return line_of(id, why ? json_pack("{s:s, s:o}", "reload", "failed",
                                       "error", cli_json_text(why))
                           : json_pack("{s:s}", "reload", "ok"));
}

char *js_error_reply(void *id, const char *why)
{
    json_t *o = json_pack("{s:s}", "error", why);
    if (o && !id)
        json_object_set_new(o, "id", json_null());
    return line_of(id, o);
}

char *js_notfound_reply(void *id, const char *input)
{
    return line_of(id, json_pack("{s:o, s:s, s:s}", "input",
                                 cli_json_text(input), "status", "notfound",
                                 "message", "not in --domains"));
}

/* ------------------------------------------------- outcome and health */

/* An optional string member into out (size bytes, cut to fit): false
 * when it is there but not a string without NUL bytes. */
static bool opt_string(json_t *req, const char *key, char *out, size_t size)
{
    json_t *v = json_object_get(req, key);
    out[0] = '\0';
    if (!v)
        return true;
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v))
        return false;
    snprintf(out, size, "%s", json_string_value(v));
    return true;
}

static const char *parse_target(json_t *req, js_op op, js_host_req *q)
{
    json_t *host = json_object_get(req, "host");
    if (host && (!json_is_string(host) || json_string_length(host) == 0 ||
                 json_string_length(host) >= sizeof q->host ||
                 strlen(json_string_value(host)) != json_string_length(host)))
        return "\"host\" must be a host name";
    if (host)
        memcpy(q->host, json_string_value(host), json_string_length(host) + 1);
    json_t *addr = json_object_get(req, "addr");
    if (addr && (!json_is_string(addr) ||
                 !mxr_addr_parse(json_string_value(addr), &q->addr)))
        return "\"addr\" must be an IPv4 or IPv6 address";
    q->has_addr = addr != NULL;
    if (!host && !addr)
        return "give \"host\" or \"addr\"";
    if (op == JS_HEALTH && host && addr)
        return "give \"host\" or \"addr\", not both";
    return NULL;
}

static const char *parse_outcome(json_t *req, js_host_req *q)
{
    const char *cls = json_string_value(json_object_get(req, "class"));
    int c = cls ? mxr_class_parse(cls) : -1;
    if (c < 0)
        return "\"class\" must be ok, refused, timeout, unreachable, "
               "reset, 4xx, 5xx or 421";
    json_t *jstage = json_object_get(req, "stage");
    const char *stage = jstage ? json_string_value(jstage) : "connect";
    int s = stage ? mxr_stage_parse(stage) : -1;
    if (s < 0)
        return "\"stage\" must be connect, tls, greeting, ehlo, mail, rcpt, "
               "data or dot";
    json_t *code = json_object_get(req, "code");
    if (code && (!json_is_integer(code) || json_integer_value(code) < 0 ||
                 json_integer_value(code) > 599))
        return "\"code\" must be an SMTP reply code (0 for none)";
    if (!opt_string(req, "enhanced", q->enhanced, sizeof q->enhanced) ||
        !opt_string(req, "text", q->text, sizeof q->text))
        return "\"enhanced\" and \"text\" must be strings";
    q->outcome = (mxr_outcome){
        .stage = (mxr_stage)s,
        .cls = (mxr_class)c,
        .code = code ? (int)json_integer_value(code) : 0,
        .enhanced = q->enhanced[0] ? q->enhanced : NULL,
        .text = q->text[0] ? q->text : NULL,
    };
    return NULL;
}

bool js_host_parse(const char *line, size_t len, js_op op, js_host_req *out,
                   const char **why)
{
    memset(out, 0, sizeof *out);
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    *why = !json_is_object(req) ? "bad JSON: not one object on the line"
                                : parse_target(req, op, out);
    if (!*why && op == JS_OUTCOME)
        *why = parse_outcome(req, out);
    json_decref(req);
    return *why == NULL;
}

/* ms from now to t (0 when t is past), and from t to now (null: never) */
static json_t *ms_until(uint64_t t, uint64_t now)
{
    return json_integer(t > now ? (json_int_t)(t - now) : 0);
}

static json_t *ms_since(uint64_t t, uint64_t now)
{
    return t ? json_integer(now > t ? (json_int_t)(now - t) : 0) : json_null();
}

char *js_health_reply(void *id, const js_host_req *q, const mxr_health *h,
                      uint64_t now, bool recorded)
{
    json_t *o = json_object();
    char addr[MXR_ADDR_STRLEN];
    if (!o)
        return line_of(id, NULL);
    if (recorded)
        json_object_set_new(o, "recorded", json_true());
    if (q->host[0])
        json_object_set_new(o, "host", cli_json_text(q->host));
    if (q->has_addr)
        json_object_set_new(
            o, "addr",
            json_string(mxr_addr_format(&q->addr, addr, sizeof addr)));
    json_object_set_new(o, "down", json_boolean(h->down));
    json_object_set_new(o, "failures", json_integer(h->failures));
    json_object_set_new(o, "down_for_ms", ms_until(h->down_until_ms, now));
    json_object_set_new(o, "last_failure_ago_ms",
                        ms_since(h->last_failure_ms, now));
    return line_of(id, o);
}
