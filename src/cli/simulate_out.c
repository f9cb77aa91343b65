/* simulate_out.c -- one round of `mxroute simulate` as text for people or
 * as one JSON object (a line) for tools. The JSON fields are a contract
 * like those of `route`: add, never rename. */
#include "cli.h"
#include "simulate.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Times are whole seconds unless the retry jitter made them otherwise;
 * ten significant digits keep milliseconds for ten years of queue. */
#define JSON_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10))

void sim_print_time(FILE *out, uint64_t ms)
{
    if (ms % 1000 == 0)
        fprintf(out, "%llus", (unsigned long long)(ms / 1000));
    else
        fprintf(out, "%llu.%03llus", (unsigned long long)(ms / 1000),
                (unsigned long long)(ms % 1000));
}

/* "refused", "250", "451 4.7.1 Try later". */
static void format_reply(char *buf, size_t len, const sim_reply *r)
{
    if (r->code == 0) {
        snprintf(buf, len, "%s", mxr_class_name(r->cls));
        return;
    }
    snprintf(buf, len, "%d%s%s%s%s", r->code, r->enhanced[0] ? " " : "",
             r->enhanced, r->text ? " " : "", r->text ? r->text : "");
}

/* ------------------------------------------------------------------ text */

static void text_plan(FILE *out, const mxr_plan *p)
{
    fprintf(out, "  plan:");
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        fprintf(out, "%s %s (%u%s)", i ? "," : "", c->host,
                (unsigned)c->preference,
                c->notes & MXR_NOTE_DOWN ? ", cooling down" : "");
    }
    fprintf(out, "%s\n", p->ncandidates ? "" : " nothing to try");
}

static void text_hop(FILE *out, const sim_step *s)
{
    fprintf(out, "  #%u %s %s (preference %u%s)\n", s->session, s->host,
            s->address, (unsigned)s->preference,
            s->cooling_down ? ", cooling down" : "");
}

static void text_step(FILE *out, const sim_step *s)
{
    char reply[600], line[800];
    if (s->no_reply)
        snprintf(reply, sizeof reply, "no recipient accepted");
    else
        format_reply(reply, sizeof reply, &s->reply);
    snprintf(line, sizeof line, "%s%s%s%s", s->rcpt ? "<" : "",
             s->rcpt ? s->rcpt : "", s->rcpt ? "> " : "", reply);
    fprintf(out, "      %-9s %-44s -> %s\n", mxr_stage_name(s->stage), line,
            mxr_action_name(s->action));
}

static void text_rcpt(FILE *out, const sim_rcpt *r, unsigned round)
{
    char reply[600];
    sim_reply rep = {.code = r->code, .text = r->text};
    snprintf(rep.enhanced, sizeof rep.enhanced, "%s", r->enhanced);
    if (r->code)
        format_reply(reply, sizeof reply, &rep);
    else
        snprintf(reply, sizeof reply, "%s", r->text ? r->text : "");
    fprintf(out, "    %s: %s", r->address, mxr_rcpt_state_name(r->state));
    if (r->state == MXR_RCPT_DEFERRED) {
        fprintf(out, ", retry at ");
        sim_print_time(out, r->retry_at_ms);
    }
    if (r->host)
        fprintf(out, " %s %s", r->state == MXR_RCPT_DEFERRED ? "after" : "by",
                r->host);
    fprintf(out, ": %s", reply);
    if (r->round != round)
        fprintf(out, " (round %u)", r->round);
    fputc('\n', out);
}

static void text_round(FILE *out, const sim_round *r, const sim_rcpt *rcpts,
                       size_t n)
{
    fprintf(out, "\nround %u at ", r->number);
    sim_print_time(out, r->at_ms);
    fputc('\n', out);
    text_plan(out, r->plan);
    unsigned session = 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        if (r->steps[i].session != session) {
            session = r->steps[i].session;
            text_hop(out, &r->steps[i]);
        }
        text_step(out, &r->steps[i]);
    }
    fprintf(out, "  result: %s\n", mxr_action_name(r->action));
    for (size_t i = 0; i < n; i++)
        text_rcpt(out, &rcpts[i], r->number);
}

/* ------------------------------------------------------------------ JSON */

static json_t *json_time(uint64_t ms)
{
    if (ms % 1000 == 0)
        return json_integer((json_int_t)(ms / 1000));
    return json_real((double)ms / 1000.0);
}

static json_t *json_code(int code)
{
    return code ? json_integer(code) : json_null();
}

static json_t *json_enh(const char *enh)
{
    return enh[0] ? json_string(enh) : json_null();
}

static json_t *json_step(const sim_step *s)
{
    const sim_reply *r = &s->reply;
    return json_pack(
        "{s:I, s:s, s:s, s:i, s:b, s:s, s:o, s:o, s:o, s:o, s:o, s:s}",
        "session", (json_int_t)s->session, "host", s->host, "address",
        s->address, "preference", (int)s->preference, "cooling_down",
        (int)s->cooling_down, "stage", mxr_stage_name(s->stage), "class",
        s->no_reply ? json_null() : json_string(mxr_class_name(r->cls)), "code",
        json_code(s->no_reply ? 0 : r->code), "enhanced",
        json_enh(s->no_reply ? "" : r->enhanced), "text",
        cli_json_text(s->no_reply ? "no recipient accepted" : r->text), "recipient",
        cli_json_text(s->rcpt), "action", mxr_action_name(s->action));
}

static json_t *json_rcpt(const sim_rcpt *r, size_t index)
{
    json_t *retry =
        r->state == MXR_RCPT_DEFERRED ? json_time(r->retry_at_ms) : json_null();
    return json_pack("{s:o, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:I}", "address",
                     cli_json_text(r->address), "index", (json_int_t)index, "state",
                     mxr_rcpt_state_name(r->state), "code", json_code(r->code),
                     "enhanced", json_enh(r->enhanced), "text",
                     cli_json_text(r->text), "host", cli_json_text(r->host), "retry_at",
                     retry, "round", (json_int_t)r->round);
}

static json_t *json_round(const sim_round *r, const sim_rcpt *rcpts, size_t n)
{
    json_t *plan = json_array(), *down = json_array();
    json_t *steps = json_array(), *rc = json_array();
    for (size_t i = 0; i < r->plan->ncandidates; i++) {
        const mxr_candidate *c = &r->plan->candidates[i];
        json_array_append_new(plan, json_string(c->host));
        if (c->notes & MXR_NOTE_DOWN)
            json_array_append_new(down, json_string(c->host));
    }
    for (size_t i = 0; i < r->nsteps; i++)
        json_array_append_new(steps, json_step(&r->steps[i]));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(rc, json_rcpt(&rcpts[i], i + 1));
    return json_pack("{s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:s}", "round",
                     (json_int_t)r->number, "at", json_time(r->at_ms), "domain",
                     r->domain, "plan", plan, "cooling_down", down, "steps",
                     steps, "recipients", rc, "action",
                     mxr_action_name(r->action));
}

static void json_print(FILE *out, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_FLAGS) : NULL;
    if (s)
        fprintf(out, "%s\n", s);
    else
        fprintf(out, "{\"error\":\"out of memory\"}\n");
    free(s);
    json_decref(obj);
}

/* ------------------------------------------------------------------- API */

void sim_print_round(FILE *out, bool json, const sim_round *r,
                     const sim_rcpt *rcpts, size_t n)
{
    if (json)
        json_print(out, json_round(r, rcpts, n));
    else
        text_round(out, r, rcpts, n);
}

void sim_print_skipped(FILE *out, bool json, uint64_t at_ms, uint64_t due_ms)
{
    if (json) {
        json_print(out, json_pack("{s:o, s:b, s:o}", "at", json_time(at_ms),
                                  "skipped", 1, "due", json_time(due_ms)));
        return;
    }
    fprintf(out, "\nat ");
    sim_print_time(out, at_ms);
    fprintf(out, ": not due until ");
    sim_print_time(out, due_ms);
    fprintf(out, ", no round\n");
}
