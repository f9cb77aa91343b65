/* output.c -- a routing result as text for people or JSON for tools. The
 * JSON fields are a contract (mxroute(1), OUTPUT): add, never rename. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* With --zone nothing is asked over the network: a name outside every
 * zone answers REFUSED, and "the DNS server refused" would send people
 * looking for a server. */
static bool offline;

void out_set_offline(void)
{
    offline = true;
}

/* One line on what a failure means, for people. */
const char *out_explain(mxr_reason r)
{
    if (r == MXR_REASON_REFUSED && offline)
        return "no --zone covers the domain (or its zone says "
               "mxroute-fault=refused); no DNS server is asked offline";
    switch (r) {
    case MXR_REASON_NULL_MX:
        return "the domain publishes a null MX: it accepts no mail "
               "(RFC 7505)";
    case MXR_REASON_NO_MAIL_HOST:
        return "no MX records and no address: nowhere to deliver";
    case MXR_REASON_NXDOMAIN:
        return "the domain does not exist";
    case MXR_REASON_SERVFAIL:
        return "the DNS server failed (SERVFAIL); try again later";
    case MXR_REASON_REFUSED:
        return "the DNS server refused the query";
    case MXR_REASON_TIMEOUT:
        return "the DNS server did not answer in time";
    case MXR_REASON_NETWORK:
        return "DNS transport error or an untrustworthy answer";
    case MXR_REASON_TEMPFAIL:
        return "no host usable now: address lookups failed temporarily";
    case MXR_REASON_NO_USABLE_HOST:
        return "every MX host was skipped (see below)";
    case MXR_REASON_POLICY:
        return "a routing policy decided so (or failed; see its messages)";
    case MXR_REASON_LOOPS_TO_SELF:
        return "we are the most preferred MX: mail would loop back to us";
    default:
        return mxr_reason_name(r);
    }
}

static void text_addrs(FILE *out, const mxr_candidate *c)
{
    char buf[MXR_ADDR_STRLEN];
    for (size_t k = 0; k < c->naddrs; k++)
        fprintf(out, "%s%s", k ? " " : "",
                mxr_addr_format(&c->addrs[k], buf, sizeof buf));
}

static void text_notes(FILE *out, uint32_t notes)
{
    const char *sep = "  [";
    for (uint32_t bit = 1; bit && bit <= notes; bit <<= 1) {
        if ((notes & bit) && mxr_note_name(bit)) {
            fprintf(out, "%s%s", sep, mxr_note_name(bit));
            sep = ", ";
        }
    }
    if (sep[0] == ',')
        fputc(']', out);
}

void out_text(FILE *out, const char *input, mxr_status st, const mxr_plan *p,
              const char *err)
{
    if (st != MXR_OK) {
        fprintf(out, "%s: error: %s\n", input, err ? err : mxr_strerror(st));
        return;
    }
    fprintf(out, "%s", p->domain);
    if (strcmp(input, p->domain) != 0)
        fprintf(out, " (from %s)", input);
    if (p->result == MXR_RESULT_OK)
        fprintf(out, ": ok, %zu candidate%s%s, ttl %us\n", p->ncandidates,
                p->ncandidates == 1 ? "" : "s",
                p->implicit ? " (implicit MX)" : "", (unsigned)p->ttl);
    else
        fprintf(out, ": %s (%s): %s\n", mxr_result_name(p->result),
                mxr_reason_name(p->reason), out_explain(p->reason));
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        fprintf(out, "  %5u  %-32s ", (unsigned)c->preference, c->host);
        text_addrs(out, c);
        if (c->port != 25)
            fprintf(out, "  port %u", (unsigned)c->port);
        if (c->tls_required)
            fprintf(out, "  tls required");
        if (c->source == MXR_SOURCE_POLICY)
            fprintf(out, "  (policy%s%s)", c->label ? ": " : "",
                    c->label ? c->label : "");
        text_notes(out, c->notes);
        fputc('\n', out);
    }
    for (size_t i = 0; i < p->nskipped; i++)
        fprintf(out, "  skipped %-32s (preference %u): %s\n",
                p->skipped[i].host, (unsigned)p->skipped[i].preference,
                mxr_reason_name(p->skipped[i].reason));
}

/* Inputs and replies are untrusted bytes; JSON strings must be UTF-8:
 * bytes that are not become '?' rather than a missing field. */
json_t *cli_json_text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    for (char *c = copy; c && *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    j = json_string(copy ? copy : "");
    free(copy);
    return j;
}

static json_t *json_notes(uint32_t notes)
{
    json_t *arr = json_array();
    for (uint32_t bit = 1; bit && bit <= notes; bit <<= 1)
        if ((notes & bit) && mxr_note_name(bit))
            json_array_append_new(arr, json_string(mxr_note_name(bit)));
    return arr;
}

static json_t *json_candidate(const mxr_candidate *c)
{
    char buf[MXR_ADDR_STRLEN];
    json_t *addrs = json_array();
    for (size_t k = 0; k < c->naddrs; k++)
        json_array_append_new(
            addrs, json_string(mxr_addr_format(&c->addrs[k], buf, sizeof buf)));
    return json_pack("{s:s, s:i, s:o, s:s, s:o, s:i, s:b, s:o, s:I}", "host",
                     c->host, "preference", (int)c->preference, "addresses",
                     addrs, "source", mxr_source_name(c->source), "notes",
                     json_notes(c->notes), "port", (int)c->port, "tls_required",
                     (int)c->tls_required, "label",
                     c->label ? cli_json_text(c->label) : json_null(), "ttl",
                     (json_int_t)c->ttl);
}

static json_t *json_plan(const char *input, const mxr_plan *p)
{
    json_t *cands = json_array();
    json_t *skipped = json_array();
    for (size_t i = 0; i < p->ncandidates; i++)
        json_array_append_new(cands, json_candidate(&p->candidates[i]));
    for (size_t i = 0; i < p->nskipped; i++)
        json_array_append_new(skipped,
                              json_pack("{s:s, s:i, s:s}", "host",
                                        p->skipped[i].host, "preference",
                                        (int)p->skipped[i].preference, "reason",
                                        mxr_reason_name(p->skipped[i].reason)));
    json_t *reason = p->result == MXR_RESULT_OK
                         ? json_null()
                         : json_string(mxr_reason_name(p->reason));
    json_t *obj =
        json_pack("{s:o, s:s, s:s, s:o, s:b, s:o, s:o, s:I, s:I}", "input",
                  cli_json_text(input), "domain", p->domain, "status",
                  mxr_result_name(p->result), "reason", reason, "implicit",
                  (int)p->implicit, "candidates", cands, "skipped", skipped,
                  "ttl", (json_int_t)p->ttl, "mx_ttl", (json_int_t)p->mx_ttl);
    /* a failure also says, for people, what its reason means here */
    if (obj && p->result != MXR_RESULT_OK)
        json_object_set_new(obj, "message",
                            json_string(out_explain(p->reason)));
    return obj;
}

/* Invalid input and engine errors: status "invalid" / "error" with the
 * message, so a batch consumer sees every line answered. */
static json_t *json_error(const char *input, mxr_status st, const char *err)
{
    const char *status = st == MXR_EBADNAME ? "invalid" : "error";
    return json_pack("{s:o, s:s, s:s, s:o}", "input", cli_json_text(input),
                     "status", status, "reason",
                     st == MXR_EBADNAME ? "invalid-name" : "internal-error",
                     "error", cli_json_text(err ? err : mxr_strerror(st)));
}

json_t *out_json_object(const char *input, mxr_status st, const mxr_plan *p,
                        const char *err)
{
    return st == MXR_OK ? json_plan(input, p) : json_error(input, st, err);
}

void out_json(FILE *out, const char *input, mxr_status st, const mxr_plan *p,
              const char *err)
{
    json_t *obj = out_json_object(input, st, p, err);
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (s)
        fprintf(out, "%s\n", s);
    else
        fprintf(out, "{\"input\":null,\"status\":\"error\","
                     "\"error\":\"out of memory\"}\n");
    free(s);
    json_decref(obj);
}
