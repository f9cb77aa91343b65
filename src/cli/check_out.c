/* check_out.c -- `mxroute check` output: text for people, JSON for tools. */
#include "check.h"

#include <string.h>

static const char *status_word(const chk_report *r)
{
    return chk_count(r, CHK_ERROR)     ? "error"
           : chk_count(r, CHK_WARNING) ? "warning"
                                       : "ok";
}

/* ---------------------------------------------------------------- text */

static void text_tier(FILE *out, const chk_tier *t, bool first)
{
    fprintf(out, "  preference %-5u", t->preference);
    for (size_t i = 0; i < t->nhosts; i++)
        fprintf(out, "%s%s (%.0f%%)", i ? ", " : " ", t->hosts[i],
                first ? 100.0 / (double)t->nhosts : 0.0);
    fputc('\n', out);
}

static void text_view(FILE *out, const chk_report *r)
{
    chk_tier *t;
    size_t n = chk_tiers(r->plan, &t);
    if (n == 0) {
        fprintf(out, "\nsender's view: no host to deliver to (%s)\n",
                r->plan->result == MXR_RESULT_OK
                    ? "none"
                    : mxr_reason_name(r->plan->reason));
        return;
    }
    fprintf(out, "\nsender's view (share of first attempts):\n");
    for (size_t i = 0; i < n; i++)
        text_tier(out, &t[i], i == 0);
    if (n > 1) {
        fprintf(out, "if preference %u is down:", t[0].preference);
        for (size_t i = 0; i < t[1].nhosts; i++)
            fprintf(out, "%s%s (%.0f%%)", i ? ", " : " ", t[1].hosts[i],
                    100.0 / (double)t[1].nhosts);
        fprintf(out, " at preference %u\n", t[1].preference);
    } else {
        fprintf(out,
                "if preference %u is down: no other tier; senders "
                "queue the mail and retry (for up to a few days)\n",
                t[0].preference);
    }
    chk_tiers_free(t, n);
}

static void text_resolvers(FILE *out, const chk_report *r)
{
    if (r->nresolvers < 2)
        return;
    fprintf(out, "\nresolvers:\n");
    for (size_t i = 0; i < r->nresolvers; i++) {
        const chk_resolver *v = &r->resolvers[i];
        fprintf(out, "  %-22s", v->server);
        if (v->status != MXR_OK) {
            fprintf(out, " (%s)\n", mxr_strerror(v->status));
            continue;
        }
        const mxr_plan *p = v->plan;
        if (p->ncandidates == 0)
            fprintf(out, " (%s)", mxr_reason_name(p->reason));
        for (size_t k = 0; k < p->ncandidates; k++)
            fprintf(out, " %u %s", p->candidates[k].preference,
                    p->candidates[k].host);
        for (size_t k = 0; k < p->nskipped; k++)
            fprintf(out, " %u %s [%s]", p->skipped[k].preference,
                    p->skipped[k].host, mxr_reason_name(p->skipped[k].reason));
        fputc('\n', out);
    }
}

void chk_out_text(FILE *out, const chk_report *r)
{
    size_t ne = chk_count(r, CHK_ERROR), nw = chk_count(r, CHK_WARNING),
           ni = chk_count(r, CHK_INFO);
    fprintf(out, "%s: %s -- %zu error%s, %zu warning%s, %zu info\n",
            r->plan->domain,
            ne   ? "PROBLEMS"
            : nw ? "OK with warnings"
                 : "OK",
            ne, ne == 1 ? "" : "s", nw, nw == 1 ? "" : "s", ni);
    for (size_t i = 0; i < r->n; i++) {
        const chk_finding *f = &r->f[i];
        fprintf(out, "\n%-7s %s: %s\n",
                f->sev == CHK_ERROR     ? "ERROR"
                : f->sev == CHK_WARNING ? "WARNING"
                                        : "info",
                f->code, f->message ? f->message : "");
        for (size_t k = 0; k < f->nrecords; k++)
            fprintf(out, "        record: %s\n", f->records[k]);
        if (f->fix && *f->fix)
            fprintf(out, "        fix:    %s\n", f->fix);
    }
    text_view(out, r);
    text_resolvers(out, r);
}

/* ---------------------------------------------------------------- JSON */

static json_t *json_tier(const chk_tier *t, bool first, bool alone)
{
    json_t *hosts = json_array();
    for (size_t i = 0; i < t->nhosts; i++)
        json_array_append_new(
            hosts,
            json_pack("{s:o, s:f}", "host", cli_json_text(t->hosts[i]), "share",
                      first || alone ? 1.0 / (double)t->nhosts : 0.0));
    return json_pack("{s:i, s:o}", "preference", (int)t->preference, "hosts",
                     hosts);
}

static json_t *json_findings(const chk_report *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const chk_finding *f = &r->f[i];
        json_t *recs = json_array();
        for (size_t k = 0; k < f->nrecords; k++)
            json_array_append_new(recs, cli_json_text(f->records[k]));
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:o, s:o, s:o}", "severity",
                      chk_sev_name(f->sev), "code", f->code, "message",
                      cli_json_text(f->message ? f->message : ""), "records",
                      recs, "fix", cli_json_text(f->fix ? f->fix : "")));
    }
    return arr;
}

static json_t *json_resolvers(const chk_report *r)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < r->nresolvers; i++) {
        const chk_resolver *v = &r->resolvers[i];
        json_t *mx = json_array();
        json_t *o;
        if (v->status != MXR_OK) {
            o = json_pack("{s:s, s:s, s:o}", "result", "error", "reason",
                          mxr_strerror(v->status), "mx", mx);
        } else {
            const mxr_plan *p = v->plan;
            for (size_t k = 0; k < p->ncandidates; k++)
                json_array_append_new(
                    mx, json_pack("{s:i, s:o}", "preference",
                                  (int)p->candidates[k].preference, "host",
                                  cli_json_text(p->candidates[k].host)));
            for (size_t k = 0; k < p->nskipped; k++)
                json_array_append_new(
                    mx, json_pack("{s:i, s:o, s:s}", "preference",
                                  (int)p->skipped[k].preference, "host",
                                  cli_json_text(p->skipped[k].host), "skipped",
                                  mxr_reason_name(p->skipped[k].reason)));
            o = json_pack("{s:s, s:o, s:o, s:I}", "result",
                          mxr_result_name(p->result), "reason",
                          p->result == MXR_RESULT_OK
                              ? json_null()
                              : json_string(mxr_reason_name(p->reason)),
                          "mx", mx, "mx_ttl", (json_int_t)p->mx_ttl);
        }
        json_object_set_new(obj, v->server, o);
    }
    return obj;
}

void chk_out_json(FILE *out, const chk_report *r)
{
    const mxr_plan *p = r->plan;
    chk_tier *t;
    size_t n = chk_tiers(p, &t);
    json_t *tiers = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(tiers, json_tier(&t[i], i == 0, false));
    json_t *down = n > 1 ? json_tier(&t[1], false, true) : json_null();
    chk_tiers_free(t, n);
    json_t *j = json_pack(
        "{s:o, s:s, s:s, s:o, s:b, s:I, s:I, s:{s:I, s:I, s:I}, s:o, s:o, "
        "s:o}",
        "domain", cli_json_text(p->domain), "status", status_word(r), "result",
        mxr_result_name(p->result), "reason",
        p->result == MXR_RESULT_OK ? json_null()
                                   : json_string(mxr_reason_name(p->reason)),
        "implicit", (int)p->implicit, "ttl", (json_int_t)p->ttl, "mx_ttl",
        (json_int_t)p->mx_ttl, "counts", "error",
        (json_int_t)chk_count(r, CHK_ERROR), "warning",
        (json_int_t)chk_count(r, CHK_WARNING), "info",
        (json_int_t)chk_count(r, CHK_INFO), "findings", json_findings(r),
        "tiers", tiers, "if_primary_down", down);
    if (j && r->nresolvers >= 2)
        json_object_set_new(j, "resolvers", json_resolvers(r));
    if (j) {
        json_dumpf(j, out, JSON_COMPACT);
        fputc('\n', out);
    }
    json_decref(j);
}
