/* smtp_out.c -- the text form of a probe or send report: every hop with
 * its RCPT replies and how it ended, then every recipient and the
 * verdict. Read at a glance; --json carries the same facts for tools. */
#include "smtp_cli.h"

#include <string.h>

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_int_t num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* "250 2.1.5 Ok", "connection refused", ... on one line. */
static void print_reply(FILE *out, const json_t *o, const char *text_key)
{
    if (num(o, "code") > 0)
        fprintf(out, "%lld ", (long long)num(o, "code"));
    if (str(o, "enhanced")[0])
        fprintf(out, "%s ", str(o, "enhanced"));
    for (const char *p = str(o, text_key); *p; p++)
        fputc(*p == '\n' ? ' ' : *p, out);
}

static void print_hop(FILE *out, const json_t *h)
{
    fprintf(out, "hop %lld: %s [%s]:%lld (preference %lld%s)\n",
            (long long)num(h, "hop"), str(h, "host"), str(h, "address"),
            (long long)num(h, "port"), (long long)num(h, "preference"),
            json_is_true(json_object_get(h, "tls")) ? ", TLS" : "");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(h, "rcpts"), i, r)
    {
        fprintf(out, "  RCPT <%s>: ", str(r, "address"));
        print_reply(out, r, "reply");
        fprintf(out, "\n");
    }
    fprintf(out, "  ended at %s, %s: ", str(h, "stage"), str(h, "class"));
    print_reply(out, h, "reply");
    fprintf(out, " -> %s\n", str(h, "action"));
}

static void print_recipient(FILE *out, const json_t *r)
{
    fprintf(out, "  %s: %s", str(r, "address"), str(r, "state"));
    if (num(r, "code") > 0 || str(r, "text")[0]) {
        fprintf(out, " (");
        print_reply(out, r, "text");
        fprintf(out, ")");
    }
    if (str(r, "host")[0])
        fprintf(out, " by %s", str(r, "host"));
    fprintf(out, "\n");
}

static void print_domain(FILE *out, const json_t *d)
{
    const json_t *plan = json_object_get(d, "plan");
    fprintf(out, "%s: plan %s", str(d, "domain"), str(plan, "status"));
    if (strcmp(str(plan, "reason"), "none") != 0)
        fprintf(out, " (%s)", str(plan, "reason"));
    fprintf(out, "\n");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(d, "attempts"), i, h) print_hop(out, h);
}

void smtp_print_text(FILE *out, const json_t *report, bool probe)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(report, "domains"), i, x)
        print_domain(out, x);
    fprintf(out, "recipients:\n");
    json_array_foreach(json_object_get(report, "recipients"), i, x)
        print_recipient(out, x);
    const char *v = str(report, "verdict");
    fprintf(out, "verdict: %s", v);
    const json_t *d = json_array_get(json_object_get(report, "domains"), 0);
    if (probe && strcmp(v, "accepted") == 0 && d)
        fprintf(out, " by %s [%s]:%lld", str(d, "host"), str(d, "address"),
                (long long)num(d, "port"));
    fprintf(out, "\n");
}
