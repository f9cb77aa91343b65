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

static int prepare(smtp_args *a)
{
    a->owned = probe_recipient(a->input);
    if (!a->owned)
        return EXIT_SOFTWARE;
    a->probe_to[0] = a->owned;
    a->to = a->probe_to;
    a->nto = 1;
    return 0;
}

int cmd_probe(int argc, char **argv)
{
    static const smtp_command_ops ops = {true, prepare, probe_json};
    return smtp_command(argc, argv, &ops);
}
