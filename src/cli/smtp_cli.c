/* smtp_cli.c -- the engine side of `mxroute probe` and `mxroute send`:
 * options, then for each recipient domain a plan, an attempt and
 * mxr_send, with every event written into a JSON report. */
#include "smtp_cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_FROM = 0x201,
    OPT_TO,
    OPT_HELO,
    OPT_TLS,
    OPT_TLS_CA,
    OPT_DNS_TIMEOUT,
};

/* --timeout sets every SMTP stage; the DNS one moves to --dns-timeout. */
static const mxr_option smtp_timeouts[] = {
    MXR_OPT_SMTP_CONNECT_MS, MXR_OPT_SMTP_GREETING_MS, MXR_OPT_SMTP_COMMAND_MS,
    MXR_OPT_SMTP_TLS_MS,     MXR_OPT_SMTP_DATA_MS,     MXR_OPT_SMTP_BLOCK_MS,
    MXR_OPT_SMTP_DOT_MS,
};

static void usage(FILE *out, bool probe)
{
    if (probe)
        fprintf(out,
                "usage: mxroute probe [options] ADDRESS|DOMAIN\n\n"
                "Walk the delivery plan like a sender, up to RCPT (no DATA), "
                "then QUIT: which\nhost would take the mail, or why it would "
                "be deferred or bounced. A DOMAIN\nprobes "
                "postmaster@DOMAIN.\n\n");
    else
        fprintf(out,
                "usage: mxroute send --from ADDR --to ADDR [--to ADDR...] "
                "[options] [FILE|-]\n\n"
                "Deliver the message in FILE (or standard input) for real, "
                "following each\nrecipient domain's plan and the failover "
                "rules; report every recipient.\n\n");
    fprintf(out,
            "SMTP options:\n"
            "  --from ADDR          envelope sender (default: the null sender "
            "<>)\n%s"
            "  --helo NAME          name sent with EHLO (default: this "
            "host's name)\n"
            "  --timeout MS         every SMTP stage's timeout (defaults: "
            "connect 30 s,\n"
            "                       greeting/commands 5 min, DATA 2 min, "
            "end of data 10 min)\n"
            "  --tls MODE           opportunistic (default), required, verify "
            "or none\n"
            "  --tls-ca FILE        trust anchors for --tls verify (default: "
            "the system's)\n"
            "  --json               one JSON object with every attempt and "
            "recipient\n",
            probe ? "" : "  --to ADDR            a recipient (repeatable)\n");
    cli_rule_usage(out);
    cli_engine_usage_with(out, "--dns-timeout MS");
    fprintf(out,
            "\nexit status: 0 %s, 75 some recipient deferred, 68 some "
            "bounced\n(none deferred), 64 usage, 65 invalid address, 66 "
            "message unreadable,\n70 internal error.\n",
            probe ? "a host accepted every recipient"
                  : "every recipient delivered");
}

static int set_all_timeouts(mxr_options *o, const char *arg)
{
    char *end;
    long long v = strtoll(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > 3600000) {
        cli_error("--timeout: '%s' is not 1..3600000 ms", arg);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof smtp_timeouts / sizeof *smtp_timeouts; i++)
        mxr_options_set(o, smtp_timeouts[i], v);
    return 0;
}

static int option_error(mxr_options *o, const char *what)
{
    cli_error("%s: %s", what, mxr_options_errmsg(o));
    return EXIT_USAGE;
}

static int smtp_option(mxr_options *o, smtp_args *a, int c, const char *arg)
{
    switch (c) {
    case OPT_FROM:
        a->from = arg;
        return 0;
    case OPT_TO: {
        const char **to = realloc(a->to, (a->nto + 1) * sizeof *to);
        if (!to)
            return EXIT_SOFTWARE;
        a->to = to;
        a->to[a->nto++] = arg;
        return 0;
    }
    case OPT_HELO:
        return mxr_options_set_helo(o, arg) == MXR_OK
                   ? 0
                   : option_error(o, "--helo");
    case OPT_TLS: {
        int m = mxr_tls_mode_parse(arg);
        if (m < 0) {
            cli_error("--tls: '%s' is not opportunistic, required, verify or "
                      "none",
                      arg);
            return EXIT_USAGE;
        }
        mxr_options_set(o, MXR_OPT_SMTP_TLS, m);
        return 0;
    }
    case OPT_TLS_CA:
        return mxr_options_set_tls_ca(o, arg) == MXR_OK
                   ? 0
                   : option_error(o, "--tls-ca");
    case 't':
        return set_all_timeouts(o, arg);
    case OPT_DNS_TIMEOUT:
        return cli_set_int(o, MXR_OPT_TIMEOUT_MS, arg, "--dns-timeout");
    }
    return -1;
}

/* This host's name for EHLO when it looks like one; else "localhost". */
static void default_helo(mxr_options *o)
{
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        if (mxr_options_set_helo(o, host) == MXR_OK)
            return;
    }
    mxr_options_set_helo(o, "localhost");
}

static int check_operands(int argc, char **argv, bool probe, smtp_args *a)
{
    int left = argc - optind;
    if (probe && left != 1)
        return cli_usage_error("give one ADDRESS or DOMAIN");
    if (!probe && (left > 1 || !a->from || a->nto == 0))
        return cli_usage_error("--from and at least one --to are required, "
                               "and at most one FILE");
    if (probe)
        a->input = argv[optind];
    else if (left == 1)
        a->file = argv[optind];
    return 0;
}

int smtp_parse(int argc, char **argv, bool probe, mxr_options *o, smtp_args *a)
{
    static const struct option longopts[] = {
        CLI_ENGINE_LONGOPTS,
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"helo", required_argument, NULL, OPT_HELO},
        {"tls", required_argument, NULL, OPT_TLS},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"dns-timeout", required_argument, NULL, OPT_DNS_TIMEOUT},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        CLI_RULE_LONGOPTS,
        {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->probe = probe;
    if (mxr_rules_new(&a->rules) != MXR_OK)
        return EXIT_SOFTWARE;
    default_helo(o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout, probe);
            return -1;
        }
        if (c == 'j') {
            a->json = true;
            continue;
        }
        if (c == '?')
            return cli_try_help(); /* getopt said what was wrong */
        if (c == OPT_TO && probe)
            return cli_usage_error("--to is for send: a probe takes one "
                                   "ADDRESS or DOMAIN");
        int rc = smtp_option(o, a, c, optarg);
        if (rc < 0)
            rc = cli_rule_option(a->rules, c, optarg);
        if (rc < 0)
            rc = cli_engine_option(o, c, optarg);
        if (rc > 0)
            return rc;
    }
    return check_operands(argc, argv, probe, a);
}

/* ----------------------------------------------------------- the report */

typedef struct walk {
    mxr_attempt *at;
    json_t *attempts;
    json_t *cur;      /* the hop being reported */
    json_t *taken_by; /* the last hop that took recipients */
    bool done;
    mxr_status status;
} walk;

static json_t *str_or_null(const char *s)
{
    return s ? cli_json_text(s) : json_null();
}

static json_t *hop_json(const mxr_hop *h)
{
    char addr[MXR_ADDR_STRLEN];
    mxr_addr_format(&h->addr, addr, sizeof addr);
    return json_pack("{s:I, s:s, s:s, s:i, s:i, s:o, s:[]}", "hop",
                     (json_int_t)h->number, "host", h->host, "address", addr,
                     "port", h->port, "preference", h->preference, "label",
                     str_or_null(h->label), "rcpts");
}

static void note_rcpt(walk *w, const mxr_send_event *ev)
{
    const mxr_outcome *o = ev->outcome;
    json_t *r = json_pack(
        "{s:o, s:i, s:o, s:o, s:s}", "address",
        cli_json_text(mxr_attempt_recipient(w->at, ev->rcpt)->address), "code",
        o->code, "enhanced", str_or_null(o->enhanced), "reply",
        str_or_null(o->text), "action", mxr_action_name(ev->action));
    json_array_append_new(json_object_get(w->cur, "rcpts"), r);
}

static void note_session(walk *w, const mxr_send_event *ev)
{
    const mxr_outcome *o = ev->outcome;
    json_t *c = w->cur;
    json_object_set_new(c, "tls", json_boolean(ev->tls));
    json_object_set_new(c, "stage", json_string(mxr_stage_name(o->stage)));
    json_object_set_new(c, "class", json_string(mxr_class_name(o->cls)));
    json_object_set_new(c, "code", json_integer(o->code));
    json_object_set_new(c, "enhanced", str_or_null(o->enhanced));
    json_object_set_new(c, "reply", str_or_null(o->text));
    json_object_set_new(c, "action", json_string(mxr_action_name(ev->action)));
    json_object_set_new(c, "accepted", json_integer((json_int_t)ev->accepted));
    if (o->cls == MXR_CLASS_OK && ev->accepted > 0)
        w->taken_by = c;
    json_array_append_new(w->attempts, c);
    w->cur = NULL;
}

static void on_event(void *arg, const mxr_send_event *ev)
{
    walk *w = arg;
    if (!w->cur)
        w->cur = hop_json(ev->hop);
    if (ev->kind == MXR_SEND_EVENT_RCPT)
        note_rcpt(w, ev);
    else
        note_session(w, ev);
}

static void on_done(void *arg, mxr_status st, mxr_attempt *at)
{
    walk *w = arg;
    w->done = true;
    w->status = st;
}

static const char *state_word(mxr_rcpt_state st, bool probe)
{
    if (probe && st == MXR_RCPT_DELIVERED)
        return "accepted"; /* a probe never sends the message */
    return mxr_rcpt_state_name(st);
}

static void add_recipients(json_t *list, const mxr_attempt *at, bool probe)
{
    for (size_t i = 0; i < mxr_attempt_nrecipients(at); i++) {
        const mxr_rcpt *r = mxr_attempt_recipient(at, i);
        json_array_append_new(
            list,
            json_pack("{s:o, s:s, s:i, s:o, s:o, s:o}", "address",
                      cli_json_text(r->address), "state",
                      state_word(r->state, probe), "code", r->code, "enhanced",
                      str_or_null(r->enhanced), "text", str_or_null(r->text),
                      "host", str_or_null(r->host)));
    }
}

/* delivered (or accepted) when every recipient was; else defer when one
 * waits; else bounce. */
static const char *verdict_of(const json_t *recipients, bool probe)
{
    bool deferred = false, bounced = false;
    size_t i;
    json_t *r;
    json_array_foreach(recipients, i, r)
    {
        const char *st = json_string_value(json_object_get(r, "state"));
        deferred |= strcmp(st, "deferred") == 0 || strcmp(st, "pending") == 0;
        bounced |= strcmp(st, "bounced") == 0;
    }
    if (deferred)
        return "defer";
    if (bounced)
        return "bounce";
    return probe ? "accepted" : "delivered";
}

/* ------------------------------------------------------------- the run */

typedef struct group {
    char *domain;
    const char **rcpts;
    size_t n;
    mxr_plan *plan; /* of the first recipient; the domain's plan */
} group;

/* host, address and port of the hop that took the mail, or nulls. */
static void set_taken_by(json_t *dom, const json_t *hop)
{
    static const char *const keys[] = {"host", "address", "port"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = hop ? json_object_get(hop, keys[i]) : NULL;
        json_object_set_new(dom, keys[i], v ? json_incref(v) : json_null());
    }
}

static json_t *plan_json(const mxr_plan *p)
{
    return json_pack("{s:s, s:s}", "status", mxr_result_name(p->result),
                     "reason", mxr_reason_name(p->reason));
}

static int run_group(mxr_engine *e, const smtp_args *a, const group *g,
                     const char *msg, size_t len, json_t *dom)
{
    mxr_message m = {.sender = a->from ? a->from : "",
                     .recipients = g->rcpts,
                     .nrecipients = g->n};
    walk w = {.attempts = json_array()};
    json_object_set_new(dom, "domain", json_string(g->plan->domain));
    json_object_set_new(dom, "plan", plan_json(g->plan));
    json_object_set_new(dom, "attempts", w.attempts);
    mxr_status st = mxr_attempt_new(e, g->plan, &m, &w.at);
    if (st == MXR_OK)
        st = mxr_send(e, w.at, msg, len, a->probe ? MXR_SEND_PROBE : 0,
                      on_event, on_done, &w);
    if (st != MXR_OK) {
        cli_error("%s: %s", g->plan->domain,
                  mxr_engine_errmsg(e)[0] ? mxr_engine_errmsg(e)
                                          : mxr_strerror(st));
        mxr_attempt_free(w.at);
        return st == MXR_EINVAL ? EXIT_DATAERR : EXIT_SOFTWARE;
    }
    while (!w.done)
        mxr_engine_run(e, -1);
    json_t *recipients = json_array();
    add_recipients(recipients, w.at, a->probe);
    json_object_set_new(dom, "verdict",
                        json_string(verdict_of(recipients, a->probe)));
    json_object_set_new(dom, "recipients", recipients);
    set_taken_by(dom, w.taken_by);
    mxr_attempt_free(w.at);
    return w.status == MXR_OK ? 0 : EXIT_SOFTWARE;
}

static group *find_group(group *gs, size_t n, const char *domain)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(gs[i].domain, domain) == 0)
            return &gs[i];
    return NULL;
}

/* Route every recipient (this also checks its syntax) and group them by
 * their normalised domain, in the order given. */
static int make_groups(mxr_engine *e, const smtp_args *a, group *gs, size_t *ng)
{
    *ng = 0;
    for (size_t i = 0; i < a->nto; i++) {
        mxr_plan *p = NULL;
        mxr_status st = mxr_route_sync(e, a->to[i], &p);
        if (st != MXR_OK) {
            cli_error("'%s': %s", a->to[i],
                      mxr_engine_errmsg(e)[0] ? mxr_engine_errmsg(e)
                                              : mxr_strerror(st));
            return st == MXR_EBADNAME ? EXIT_DATAERR : EXIT_SOFTWARE;
        }
        group *g = find_group(gs, *ng, p->domain);
        if (g) {
            mxr_plan_free(p);
        } else {
            g = &gs[(*ng)++];
            g->plan = p;
            g->domain = strdup(p->domain);
            g->rcpts = calloc(a->nto, sizeof *g->rcpts);
            if (!g->domain || !g->rcpts)
                return EXIT_SOFTWARE;
        }
        g->rcpts[g->n++] = a->to[i];
    }
    return 0;
}

static void free_groups(group *gs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(gs[i].domain);
        free(gs[i].rcpts);
        mxr_plan_free(gs[i].plan);
    }
    free(gs);
}

int smtp_run(mxr_engine *e, const smtp_args *a, const char *msg, size_t len,
             json_t *report)
{
    group *gs = calloc(a->nto, sizeof *gs);
    size_t ng = 0;
    int rc = gs ? make_groups(e, a, gs, &ng) : EXIT_SOFTWARE;
    json_t *domains = json_array(), *all = json_array();
    json_object_set_new(report, "sender", json_string(a->from ? a->from : ""));
    json_object_set_new(report, "domains", domains);
    json_object_set_new(report, "recipients", all);
    for (size_t i = 0; rc == 0 && i < ng; i++) {
        json_t *dom = json_object();
        json_array_append_new(domains, dom);
        rc = run_group(e, a, &gs[i], msg, len, dom);
        if (rc == 0)
            json_array_extend(all, json_object_get(dom, "recipients"));
    }
    free_groups(gs, ng);
    if (rc != 0)
        return rc;
    json_object_set_new(report, "verdict",
                        json_string(verdict_of(all, a->probe)));
    return smtp_exit_code(report);
}

int smtp_exit_code(const json_t *report)
{
    const char *v = json_string_value(json_object_get(report, "verdict"));
    if (v && strcmp(v, "defer") == 0)
        return EXIT_TEMPFAIL;
    if (v && strcmp(v, "bounce") == 0)
        return EXIT_NOHOST;
    return EXIT_OK;
}

static void print_report(const smtp_args *a, const smtp_command_ops *ops,
                         json_t *report)
{
    if (!a->json) {
        smtp_print_text(stdout, report, ops->probe);
        return;
    }
    json_t *j =
        ops->json_form ? ops->json_form(a, report) : json_incref(report);
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
}

static int run_and_print(mxr_options *o, const smtp_args *a,
                         const smtp_command_ops *ops)
{
    mxr_engine *e = NULL;
    if (mxr_options_add_rules(o, NULL, a->rules) != MXR_OK ||
        mxr_engine_new(o, &e) != MXR_OK) {
        cli_error("%s", mxr_options_errmsg(o));
        return EXIT_USAGE;
    }
    json_t *report = json_object();
    int rc = smtp_run(e, a, a->msg, a->len, report);
    if (rc == EXIT_OK || rc == EXIT_TEMPFAIL || rc == EXIT_NOHOST)
        print_report(a, ops, report);
    json_decref(report);
    mxr_engine_destroy(e);
    return rc;
}

int smtp_command(int argc, char **argv, const smtp_command_ops *ops)
{
    mxr_options *o = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    smtp_args a;
    int rc = smtp_parse(argc, argv, ops->probe, o, &a);
    if (rc == 0)
        rc = ops->prepare(&a);
    if (rc == 0)
        rc = run_and_print(o, &a, ops);
    mxr_options_free(o);
    mxr_rules_free(a.rules);
    if (a.to != a.probe_to)
        free(a.to);
    free(a.owned);
    return rc < 0 ? EXIT_OK : rc; /* -1: --help */
}
