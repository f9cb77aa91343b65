/* cmd_probe.c -- `mxroute probe ADDRESS|DOMAIN`: the seed articles'
 * "stop the primary and see where mail goes" as one command. The plan is
 * walked against the real servers up to RCPT, then QUIT; nothing is
 * delivered. */
#include "smtp_cli.h"

#include <stdlib.h>
#include <string.h>

/* A domain alone probes postmaster, which every domain must have
 * (RFC 5321 section 4.5.1). */
static char *probe_recipient(const char *input)
{
    if (strchr(input, '@'))
        return strdup(input);
    size_t n = strlen(input) + sizeof "postmaster@";
    char *r = malloc(n);
    if (r)
        snprintf(r, n, "postmaster@%s", input);
    return r;
}

/* The probe's --json shape: one domain, flattened. */
static json_t *probe_json(const smtp_args *a, json_t *report)
{
    json_t *d = json_array_get(json_object_get(report, "domains"), 0);
    json_t *out = json_object();
    json_object_set_new(out, "input", cli_json_text(a->input));
    json_object_set(out, "domain", json_object_get(d, "domain"));
    json_object_set(out, "sender", json_object_get(report, "sender"));
    json_object_set(out, "verdict", json_object_get(report, "verdict"));
    static const char *const keys[] = {"host", "address", "port", "plan",
                                       "attempts"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        json_object_set(out, keys[i], json_object_get(d, keys[i]));
    json_object_set(out, "recipients", json_object_get(report, "recipients"));
    return out;
}

static int run(mxr_options *o, smtp_args *a)
{
    mxr_engine *e = NULL;
    if (mxr_engine_new(o, &e) != MXR_OK) {
        fprintf(stderr, "mxroute: %s\n", mxr_options_errmsg(o));
        return EXIT_USAGE;
    }
    char *rcpt = probe_recipient(a->input);
    const char *to[1] = {rcpt};
    a->to = to;
    a->nto = 1;
    json_t *report = json_object();
    int rc = rcpt ? smtp_run(e, a, NULL, 0, report) : EXIT_SOFTWARE;
    a->to = NULL;
    if (rc == EXIT_OK || rc == EXIT_TEMPFAIL || rc == EXIT_NOHOST) {
        if (a->json) {
            json_t *j = probe_json(a, report);
            json_dumpf(j, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(j);
        } else {
            smtp_print_text(stdout, report, true);
        }
    }
    json_decref(report);
    free(rcpt);
    mxr_engine_destroy(e);
    return rc;
}

int cmd_probe(int argc, char **argv)
{
    mxr_options *o = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    smtp_args a;
    int rc = smtp_parse(argc, argv, true, o, &a);
    if (rc == 0)
        rc = run(o, &a);
    mxr_options_free(o);
    free(a.to);
    return rc < 0 ? EXIT_OK : rc;
}
