/* simulate_args.c -- the options of `mxroute simulate`: the message, the
 * scripted outcomes, the rounds, the failover rules (shared with probe and
 * send, rule_opts.c) and the engine options. */
#include "cli.h"
#include "simulate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_FROM = 1000,
    OPT_TO,
    OPT_OUTCOME,
    OPT_AT,
    OPT_FOLLOW,
    OPT_JSON,
    OPT_HELP
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mxroute simulate [options] DOMAIN|ADDRESS\n\n"
            "Route one domain, then walk the failover machine against "
            "scripted outcomes:\nevery connection, reply and decision, and "
            "the final state of each recipient.\nHosts without a scripted "
            "outcome accept everything.\n\n"
            "message and script:\n"
            "  --from ADDR          envelope sender (default %s)\n"
            "  --to ADDR            a recipient (repeatable; default: the "
            "ADDRESS, or\n"
            "                       postmaster@DOMAIN); all in one domain\n"
            "  --outcome SPEC       [@T/]TARGET[:STAGE[:RCPT]]=RESULT "
            "(repeatable), e.g.\n"
            "                       mx1.example.com=refused, "
            "*:rcpt=451/4.7.1/Try later,\n"
            "                       @0/192.0.2.1:mail=550, "
            "*:rcpt:2=550/5.1.1/No such user\n"
            "                       STAGE: connect tls greeting ehlo mail "
            "rcpt data dot\n"
            "                       RESULT: refused timeout unreachable "
            "reset ok, or\n"
            "                       CODE[/ENHANCED[/TEXT]] (a code needs "
            "a STAGE)\n"
            "  --at SECONDS         run a round at this time (repeatable, "
            "ascending;\n"
            "                       default 0)\n"
            "  --follow             then keep retrying when due until no "
            "recipient is\n"
            "                       deferred (at most %d rounds)\n"
            "  --json               one JSON object per round, one per line\n",
            DEFAULT_FROM, SIM_MAX_ROUNDS);
    cli_rule_usage(out);
    cli_engine_usage(out);
    fprintf(out, "\nexit status: 0 every recipient delivered, 75 some "
                 "deferred, 68 some bounced\nand none deferred, 65 invalid "
                 "input, 64 usage, 70 internal error.\n");
}

/* Grow *arr (of *n elements of size sz) by one; NULL when out of memory. */
static void *push(void *arr, size_t *n, size_t sz, void **out)
{
    void *grown = realloc(arr, (*n + 1) * sz);
    if (!grown)
        return NULL;
    *out = (char *)grown + *n * sz;
    (*n)++;
    return grown;
}

static int add_outcome(sim_args *a, const char *spec)
{
    char err[512];
    void *slot;
    sim_spec *grown = push(a->specs, &a->nspecs, sizeof *a->specs, &slot);
    if (!grown)
        return EXIT_SOFTWARE;
    a->specs = grown;
    if (!sim_spec_parse(spec, slot, err, sizeof err)) {
        cli_error("%s", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* --at times must grow: a round cannot run before the one before it. */
static int add_at(sim_args *a, const char *arg)
{
    long long s;
    void *slot;
    int rc = cli_parse_count("--at", arg, SIM_AT_MAX_S, &s);
    if (rc)
        return rc;
    if (a->nat > 0 && (uint64_t)s * 1000 <= a->at_ms[a->nat - 1]) {
        cli_error("--at %s: times must be given in ascending order", arg);
        return EXIT_USAGE;
    }
    if (a->nat >= SIM_MAX_ROUNDS) {
        cli_error("at most %d --at times", SIM_MAX_ROUNDS);
        return EXIT_USAGE;
    }
    uint64_t *grown = push(a->at_ms, &a->nat, sizeof *a->at_ms, &slot);
    if (!grown)
        return EXIT_SOFTWARE;
    a->at_ms = grown;
    *(uint64_t *)slot = (uint64_t)s * 1000;
    return 0;
}

static int add_to(sim_args *a, const char *addr)
{
    void *slot;
    if (a->nto >= SIM_MAX_RCPTS) {
        cli_error("at most %d recipients", SIM_MAX_RCPTS);
        return EXIT_USAGE;
    }
    const char **grown = push(a->to, &a->nto, sizeof *a->to, &slot);
    if (!grown)
        return EXIT_SOFTWARE;
    a->to = grown;
    *(const char **)slot = addr;
    return 0;
}

static int sim_option(sim_args *a, mxr_rules *rules, int c, const char *arg)
{
    int rc = cli_rule_option(rules, c, arg);
    if (rc >= 0)
        return rc;
    switch (c) {
    case OPT_FROM:
        a->from = arg;
        return 0;
    case OPT_TO:
        return add_to(a, arg);
    case OPT_OUTCOME:
        return add_outcome(a, arg);
    case OPT_AT:
        return add_at(a, arg);
    case OPT_FOLLOW:
        a->follow = true;
        return 0;
    case OPT_JSON:
        a->json = true;
        return 0;
    }
    return -1;
}

static const struct option longopts[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"outcome", required_argument, NULL, OPT_OUTCOME},
    {"at", required_argument, NULL, OPT_AT},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"json", no_argument, NULL, OPT_JSON},
    CLI_RULE_LONGOPTS,
    {"help", no_argument, NULL, OPT_HELP},
    CLI_ENGINE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

int sim_parse_args(int argc, char **argv, mxr_options *o, mxr_rules *rules,
                   sim_args *a)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hj", longopts, NULL)) != -1) {
        int rc = cli_engine_option(o, c, optarg);
        if (rc < 0)
            rc = sim_option(a, rules, c == 'j' ? OPT_JSON : c, optarg);
        if (rc > 0)
            return rc;
        if (rc == 0)
            continue;
        if (c == 'h' || c == OPT_HELP) {
            usage(stdout);
            return -1;
        }
        return cli_try_help(); /* getopt said what was wrong */
    }
    if (argc - optind > 1 || (argc == optind && a->nto == 0))
        return cli_usage_error("give one DOMAIN or ADDRESS (or --to)");
    a->input = optind < argc ? argv[optind] : NULL;
    return 0;
}

void sim_args_free(sim_args *a)
{
    for (size_t i = 0; i < a->nspecs; i++)
        sim_spec_free(&a->specs[i]);
    free(a->specs);
    free(a->to);
    free(a->at_ms);
}
