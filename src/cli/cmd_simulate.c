/* cmd_simulate.c -- `mxroute simulate`: route one domain, then walk the
 * failover machine (mxr_attempt) against scripted outcomes, round after
 * round on a simulated clock, and print every step and every recipient.
 *
 * One engine serves every round, so host health carries over: a host that
 * failed in one round cools down and is tried last in the next. The plan
 * is routed once, at the first round, as a queue would keep it. */
#include "cli.h"
#include "simulate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The engine clock reads SIM_EPOCH_MS + simulated time. Not 0: a message
 * whose first_attempt_ms is 0 counts as first tried "now", and host
 * health reads 0 as "never failed". */
#define SIM_EPOCH_MS UINT64_C(1000000000)

typedef struct sim {
    const sim_args *args;
    mxr_engine *e;
    uint64_t clock_ms; /* what the engine's clock reads now */
    uint64_t first_ms; /* clock at the first round */
    mxr_plan *plan;
    sim_rcpt *rcpts;
    size_t n;
    unsigned rounds; /* rounds run so far */
} sim;

/* ---------------------------------------------------------------- setup */

static uint64_t sim_clock(void *ud)
{
    return *(const uint64_t *)ud;
}

static int route_error(mxr_engine *e, mxr_status st, const char *what,
                       const char *input)
{
    if (st == MXR_EBADNAME) {
        cli_error("%s'%s': %s", what, input, mxr_engine_errmsg(e));
        return EXIT_DATAERR;
    }
    cli_error("%s'%s': %s", what, input, mxr_strerror(st));
    return EXIT_SOFTWARE;
}

/* A recipient must be an address of the routed domain: the simulation
 * walks one plan. Routing it again is how the library normalises it (and
 * answers from its plan cache). */
static int check_recipient(sim *s, const char *addr)
{
    mxr_plan *p = NULL;
    if (!strchr(addr, '@')) {
        cli_error("--to '%s' is not an address", addr);
        return EXIT_USAGE;
    }
    mxr_status st = mxr_route_sync(s->e, addr, &p);
    if (st != MXR_OK)
        return route_error(s->e, st, "--to ", addr);
    int rc = 0;
    if (strcmp(p->domain, s->plan->domain) != 0) {
        cli_error("recipient '%s' is not in %s: one simulation routes one "
                  "domain",
                  addr, s->plan->domain);
        rc = EXIT_USAGE;
    }
    mxr_plan_free(p);
    return rc;
}

/* The recipients: --to, or the ADDRESS, or postmaster@DOMAIN. */
static int add_recipient(sim *s, const char *addr)
{
    sim_rcpt *r = &s->rcpts[s->n];
    memset(r, 0, sizeof *r);
    if (!(r->address = strdup(addr)))
        return EXIT_SOFTWARE;
    r->state = MXR_RCPT_PENDING;
    s->n++;
    return 0;
}

static int make_recipients(sim *s)
{
    const sim_args *a = s->args;
    s->rcpts = calloc(a->nto ? a->nto : 1, sizeof *s->rcpts);
    if (!s->rcpts)
        return EXIT_SOFTWARE;
    int rc = 0;
    for (size_t i = 0; i < a->nto && rc == 0; i++)
        if ((rc = check_recipient(s, a->to[i])) == 0)
            rc = add_recipient(s, a->to[i]);
    if (a->nto > 0 || rc)
        return rc;
    if (strchr(a->input, '@'))
        return add_recipient(s, a->input);
    char *pm = malloc(strlen(a->input) + sizeof "postmaster@");
    if (!pm)
        return EXIT_SOFTWARE;
    strcpy(pm, "postmaster@");
    strcat(pm, a->input);
    rc = add_recipient(s, pm);
    free(pm);
    return rc;
}

/* A spec naming a recipient that is not there would never match: say so
 * rather than run a script that does not do what it says. */
static int check_spec_recipients(const sim *s)
{
    for (size_t i = 0; i < s->args->nspecs; i++) {
        const sim_spec *sp = &s->args->specs[i];
        bool found = sp->rcpt_index ? sp->rcpt_index <= s->n : !sp->rcpt_addr;
        for (size_t k = 0; sp->rcpt_addr && k < s->n; k++)
            found =
                found || strcasecmp(sp->rcpt_addr, s->rcpts[k].address) == 0;
        if (!found) {
            cli_error("--outcome '%s': no such recipient (%zu given)",
                      sp->source, s->n);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- rounds */

static bool waiting(const sim_rcpt *r)
{
    return r->state == MXR_RCPT_PENDING || r->state == MXR_RCPT_DEFERRED;
}

static bool any_waiting(const sim *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (waiting(&s->rcpts[i]))
            return true;
    return false;
}

/* When the message is next due: now for recipients never tried, else the
 * earliest retry time. A queue retries the whole message then, so every
 * deferred recipient goes into that round. */
static uint64_t due_ms(const sim *s)
{
    uint64_t due = UINT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        const sim_rcpt *r = &s->rcpts[i];
        if (r->state == MXR_RCPT_PENDING)
            return 0;
        if (r->state == MXR_RCPT_DEFERRED && r->retry_at_ms < due)
            due = r->retry_at_ms;
    }
    return due;
}

static int keep_result(sim_rcpt *r, const mxr_rcpt *res, unsigned round,
                       uint64_t epoch)
{
    if (res->state == MXR_RCPT_PENDING) {
        cli_error("internal error: %s left pending by a finished attempt",
                  r->address);
        return EXIT_SOFTWARE;
    }
    free(r->text);
    free(r->host);
    r->state = res->state;
    r->code = res->code;
    snprintf(r->enhanced, sizeof r->enhanced, "%s",
             res->enhanced ? res->enhanced : "");
    r->text = res->text ? strdup(res->text) : NULL;
    r->host = res->host ? strdup(res->host) : NULL;
    r->retry_at_ms = res->retry_at_ms > epoch ? res->retry_at_ms - epoch : 0;
    r->round = round;
    return (res->text && !r->text) || (res->host && !r->host) ? EXIT_SOFTWARE
                                                              : 0;
}

static mxr_action verdict(const mxr_attempt *a)
{
    bool deferred = false, delivered = false;
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        mxr_rcpt_state st = mxr_attempt_recipient(a, i)->state;
        deferred |= st == MXR_RCPT_DEFERRED;
        delivered |= st == MXR_RCPT_DELIVERED;
    }
    return deferred    ? MXR_ACTION_DEFER
           : delivered ? MXR_ACTION_DELIVERED
                       : MXR_ACTION_BOUNCE;
}

/* The recipients still waiting, and where each sits in s->rcpts. */
static size_t waiting_list(const sim *s, const char **list, size_t *map)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (waiting(&s->rcpts[i])) {
            list[k] = s->rcpts[i].address;
            map[k++] = i;
        }
    return k;
}

static int finish_round(sim *s, sim_session *ss)
{
    int rc = 0;
    ss->r->action = verdict(ss->a);
    for (size_t i = 0; i < mxr_attempt_nrecipients(ss->a) && rc == 0; i++)
        rc = keep_result(&s->rcpts[ss->map[i]], mxr_attempt_recipient(ss->a, i),
                         ss->r->number, SIM_EPOCH_MS);
    if (rc == 0)
        sim_print_round(stdout, s->args->json, ss->r, s->rcpts, s->n);
    return rc;
}

/* One delivery attempt of the waiting recipients at simulated time t. */
static int run_round(sim *s, uint64_t t)
{
    const char **list = calloc(s->n, sizeof *list);
    size_t *map = calloc(s->n, sizeof *map);
    sim_round r = {.at_ms = t, .domain = s->plan->domain};
    sim_session ss = {.specs = s->args->specs,
                      .nspecs = s->args->nspecs,
                      .r = &r,
                      .map = map};
    int rc = list && map ? 0 : EXIT_SOFTWARE;
    if (rc == 0) {
        s->clock_ms = SIM_EPOCH_MS + t;
        if (s->rounds == 0)
            s->first_ms = s->clock_ms;
        mxr_message m = {.sender = s->args->from,
                         .recipients = list,
                         .nrecipients = waiting_list(s, list, map),
                         .first_attempt_ms = s->first_ms,
                         .attempts = s->rounds};
        if (mxr_attempt_new(s->e, s->plan, &m, &ss.a) != MXR_OK)
            rc = EXIT_SOFTWARE;
    }
    if (rc == 0) {
        r.number = ++s->rounds;
        r.plan = mxr_attempt_plan(ss.a);
        if ((rc = sim_walk(&ss)) == 0)
            rc = finish_round(s, &ss);
    }
    mxr_attempt_free(ss.a);
    free(r.steps);
    free(list);
    free(map);
    return rc;
}

/* A round at t, or a note that nothing is due yet. */
static int round_at(sim *s, uint64_t t)
{
    uint64_t due = due_ms(s);
    if (due > t) {
        sim_print_skipped(stdout, s->args->json, t, due);
        return 0;
    }
    return run_round(s, t);
}

static int run_rounds(sim *s)
{
    static const uint64_t zero = 0;
    const sim_args *a = s->args;
    const uint64_t *at = a->nat ? a->at_ms : &zero;
    size_t nat = a->nat ? a->nat : 1;
    int rc = 0;
    for (size_t i = 0; i < nat && rc == 0 && any_waiting(s); i++)
        rc = round_at(s, at[i]);
    while (rc == 0 && a->follow && any_waiting(s) && s->rounds < SIM_MAX_ROUNDS)
        rc = run_round(s, due_ms(s));
    if (rc == 0 && a->follow && any_waiting(s))
        fprintf(a->json ? stderr : stdout,
                "%sstopped after %d rounds with recipients still deferred\n",
                a->json ? "mxroute simulate: " : "\n", SIM_MAX_ROUNDS);
    return rc;
}

static int final_exit(const sim *s)
{
    bool deferred = false, bounced = false;
    for (size_t i = 0; i < s->n; i++) {
        deferred |= waiting(&s->rcpts[i]);
        bounced |= s->rcpts[i].state == MXR_RCPT_BOUNCED;
    }
    return deferred ? EXIT_TEMPFAIL : bounced ? EXIT_NOHOST : EXIT_OK;
}

/* -------------------------------------------------------------- command */

static int start_engine(sim *s, mxr_options *o, const mxr_rules *rules)
{
    mxr_options_set_clock(o, sim_clock, &s->clock_ms);
    s->clock_ms = SIM_EPOCH_MS;
    if (mxr_options_add_rules(o, NULL, rules) != MXR_OK) {
        cli_error("%s", mxr_options_errmsg(o));
        return EXIT_SOFTWARE;
    }
    return cli_engine_new(o, &s->e);
}

/* Route once: the DOMAIN|ADDRESS, or else the first recipient. */
static int route_once(sim *s)
{
    const char *input = s->args->input ? s->args->input : s->args->to[0];
    mxr_status st = mxr_route_sync(s->e, input, &s->plan);
    return st == MXR_OK ? 0 : route_error(s->e, st, "", input);
}

/* A named target that is nowhere in the plan is most likely a typo: the
 * outcome would never happen. Worth a warning, not a failure: a script
 * may be shared by several domains. */
static bool spec_in_plan(const sim_spec *sp, const mxr_plan *p)
{
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        mxr_hop hop = {.host = c->host};
        for (size_t k = 0; k < c->naddrs || k == 0; k++) {
            if (k < c->naddrs)
                hop.addr = c->addrs[k];
            sim_where w = {.round_ms = sp->round_ms,
                           .hop = &hop,
                           .stage = sp->stage,
                           .rcpt_index = sp->rcpt_index,
                           .rcpt = sp->rcpt_addr};
            if (sim_spec_match(sp, 1, &w))
                return true;
        }
    }
    return false;
}

static void warn_unmatched(const sim *s)
{
    for (size_t i = 0; i < s->args->nspecs; i++)
        if (!spec_in_plan(&s->args->specs[i], s->plan))
            cli_error("warning: --outcome '%s' matches no host or address "
                      "of %s",
                      s->args->specs[i].source, s->plan->domain);
}

static void print_header(const sim *s)
{
    const sim_args *a = s->args;
    warn_unmatched(s);
    if (a->json)
        return;
    printf("from %s to", a->from);
    for (size_t i = 0; i < s->n; i++)
        printf("%s %s", i ? "," : "", s->rcpts[i].address);
    printf("\n");
    out_text(stdout, a->input ? a->input : a->to[0], MXR_OK, s->plan, NULL);
}

static int simulate(sim *s, mxr_options *o, const mxr_rules *rules)
{
    int rc = start_engine(s, o, rules);
    if (rc == 0)
        rc = route_once(s);
    if (rc == 0)
        rc = make_recipients(s);
    if (rc == 0)
        rc = check_spec_recipients(s);
    if (rc == 0) {
        print_header(s);
        rc = run_rounds(s);
    }
    return rc ? rc : final_exit(s);
}

static void sim_free(sim *s, sim_args *a)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->rcpts[i].address);
        free(s->rcpts[i].text);
        free(s->rcpts[i].host);
    }
    free(s->rcpts);
    mxr_plan_free(s->plan);
    mxr_engine_destroy(s->e);
    sim_args_free(a);
}

int cmd_simulate(int argc, char **argv)
{
    mxr_options *o = NULL;
    mxr_rules *rules = NULL;
    sim_args a = {.from = DEFAULT_FROM};
    sim s = {.args = &a};
    if (mxr_options_new(&o) != MXR_OK || mxr_rules_new(&rules) != MXR_OK) {
        mxr_options_free(o);
        return EXIT_SOFTWARE;
    }
    int rc = sim_parse_args(argc, argv, o, rules, &a);
    if (rc == 0)
        rc = simulate(&s, o, rules);
    fflush(stdout);
    sim_free(&s, &a);
    mxr_rules_free(rules);
    mxr_options_free(o);
    return rc < 0 ? EXIT_OK : rc;
}
