/* serve_json.c -- the JSON Lines protocol of `mxroute serve`: one request
 * object per line, one response line each, in order. A route response is
 * the object `mxroute route --json` prints (output.c) plus "id". */
#include "serve.h"

#include "cli.h"

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
        *why = "unknown \"op\" (route, stats, reload)";
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
