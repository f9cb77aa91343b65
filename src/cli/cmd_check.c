/* cmd_check.c -- `mxroute check DOMAIN`: resolve like a sender and report
 * what is wrong or fragile in the domain's MX configuration. Built on the
 * public API only: the findings come from the routing plan. */
#include "check.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_TTL_MAX (7 * 86400)

typedef struct saved_opt {
    int c;
    const char *arg;
} saved_opt;

typedef struct check_args {
    bool json, planning;
    saved_opt *saved;
    size_t nsaved;
    const char **servers;
    size_t nservers;
    const char *domain;
} check_args;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mxroute check [options] DOMAIN\n\n"
            "Resolve DOMAIN as a sender does and report findings about its "
            "MX setup, each\nwith a severity (error, warning, info), a "
            "stable code, the records involved\nand a fix; then the "
            "sender's view: the tiers in order, the share of first\n"
            "attempts of each host and where mail goes if the first tier "
            "is down.\n\n"
            "check options:\n"
            "  --json               one JSON object (findings, tiers, "
            "if_primary_down,\n"
            "                       resolvers when several --server)\n"
            "  --planning           add migration advice (lower the TTL "
            "first)\n"
            "  several --server     ask each server on its own and compare "
            "the answers\n");
    cli_engine_usage(out);
    fprintf(out, "\nexit status: 0 no error-level finding, 1 some, 64 usage, "
                 "65 invalid domain,\n70 internal error.\n");
}

/* Options for one engine: every saved option, with only `server` when it
 * is given (else every server). TTLs are not clamped, so that the checks
 * see the published values. */
static int build_options(const check_args *a, const char *server,
                         mxr_options **out)
{
    mxr_options *o = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    mxr_options_set(o, MXR_OPT_TTL_MIN, 0);
    mxr_options_set(o, MXR_OPT_TTL_MAX, CHECK_TTL_MAX);
    for (size_t i = 0; i < a->nsaved; i++) {
        const saved_opt *s = &a->saved[i];
        if (server && s->c == 'S')
            continue;
        int rc = cli_engine_option(o, s->c, s->arg);
        if (rc > 0) {
            mxr_options_free(o);
            return rc;
        }
    }
    if (server && mxr_options_add_server(o, server) != MXR_OK) {
        mxr_options_free(o);
        return EXIT_USAGE;
    }
    *out = o;
    return 0;
}

static int parse_args(int argc, char **argv, check_args *a)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"planning", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        CLI_ENGINE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    mxr_options *probe = NULL;
    if (mxr_options_new(&probe) != MXR_OK)
        return EXIT_SOFTWARE;
    a->saved = calloc((size_t)argc + 1, sizeof *a->saved);
    a->servers = calloc((size_t)argc + 1, sizeof *a->servers);
    int c, rc = 0;
    optind = 1;
    while (rc == 0 && a->saved && a->servers &&
           (c = getopt_long(argc, argv, "hj", longopts, NULL)) != -1) {
        int r = cli_engine_option(probe, c, optarg);
        if (r > 0) {
            rc = r;
        } else if (r == 0) {
            a->saved[a->nsaved++] = (saved_opt){c, optarg};
            if (c == 'S')
                a->servers[a->nservers++] = optarg;
        } else if (c == 'j') {
            a->json = true;
        } else if (c == 'n') {
            a->planning = true;
        } else if (c == 'h') {
            usage(stdout);
            rc = -1;
        } else {
            rc = cli_try_help(); /* getopt said what was wrong */
        }
    }
    mxr_options_free(probe);
    if (!a->saved || !a->servers)
        return EXIT_SOFTWARE;
    if (rc == 0 && argc - optind != 1)
        rc = cli_usage_error("give exactly one DOMAIN");
    if (rc == 0)
        a->domain = argv[optind];
    return rc;
}

/* Route the domain with one engine. Returns 0, or an exit code. */
static int route_once(const check_args *a, const char *server, mxr_status *st,
                      mxr_plan **plan)
{
    mxr_options *o = NULL;
    int rc = build_options(a, server, &o);
    if (rc)
        return rc;
    mxr_engine *e = NULL;
    mxr_status est = mxr_engine_new(o, &e);
    if (est != MXR_OK) {
        cli_error("%s", mxr_options_errmsg(o));
        mxr_options_free(o);
        return est == MXR_EZONE || est == MXR_ESERVER || est == MXR_EPOLICY
                   ? EXIT_USAGE
                   : EXIT_SOFTWARE;
    }
    mxr_options_free(o);
    *plan = NULL;
    *st = mxr_route_sync(e, a->domain, plan);
    if (*st == MXR_EBADNAME) {
        cli_error("'%s': %s", a->domain,
                  mxr_engine_errmsg(e)[0] ? mxr_engine_errmsg(e)
                                          : mxr_strerror(*st));
        rc = EXIT_DATAERR;
    } else if (*st != MXR_OK && !server) {
        cli_error("%s", mxr_strerror(*st));
        rc = EXIT_SOFTWARE;
    }
    mxr_engine_destroy(e);
    return rc;
}

static int check_main(check_args *a)
{
    mxr_status st;
    mxr_plan *plan = NULL;
    int rc = route_once(a, NULL, &st, &plan);
    if (rc)
        return rc;
    chk_report r = {.input = a->domain, .plan = plan, .planning = a->planning};
    if (a->nservers >= 2) {
        r.resolvers = calloc(a->nservers, sizeof *r.resolvers);
        for (size_t i = 0; r.resolvers && i < a->nservers; i++) {
            chk_resolver *v = &r.resolvers[i];
            v->server = a->servers[i];
            rc = route_once(a, v->server, &v->status, &v->plan);
            r.nresolvers++;
            if (rc)
                break;
        }
    }
    if (rc == 0) {
        chk_findings(&r);
        if (a->json)
            chk_out_json(stdout, &r);
        else
            chk_out_text(stdout, &r);
        rc = chk_count(&r, CHK_ERROR) ? 1 : EXIT_OK;
    }
    for (size_t i = 0; i < r.nresolvers; i++)
        mxr_plan_free(r.resolvers[i].plan);
    free(r.resolvers);
    chk_report_free(&r);
    mxr_plan_free(plan);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    check_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc == 0)
        rc = check_main(&a);
    free(a.saved);
    free(a.servers);
    return rc < 0 ? EXIT_OK : rc;
}
