/* cmd_send.c -- `mxroute send`: deliver one message for real, following
 * each recipient domain's plan and the failover machine, and report what
 * became of every recipient. */
#include "smtp_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The whole message in memory: mxr_send needs it until the end, and a
 * retry at the next host sends it again. */
static char *read_message(const char *file, size_t *len)
{
    bool std_in = !file || strcmp(file, "-") == 0;
    FILE *f = std_in ? stdin : fopen(file, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *more = realloc(buf, cap * 2);
        if (!more) {
            free(buf);
            buf = NULL;
        }
        buf = more;
        cap *= 2;
    }
    int failed = ferror(f);
    if (!std_in)
        fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int run(mxr_options *o, const smtp_args *a)
{
    size_t len = 0;
    char *msg = read_message(a->file, &len);
    if (!msg) {
        fprintf(stderr, "mxroute send: %s: %s\n", a->file ? a->file : "stdin",
                strerror(errno ? errno : EIO));
        return EXIT_NOINPUT;
    }
    mxr_engine *e = NULL;
    if (mxr_engine_new(o, &e) != MXR_OK) {
        fprintf(stderr, "mxroute: %s\n", mxr_options_errmsg(o));
        free(msg);
        return EXIT_USAGE;
    }
    json_t *report = json_object();
    int rc = smtp_run(e, a, msg, len, report);
    if (rc == EXIT_OK || rc == EXIT_TEMPFAIL || rc == EXIT_NOHOST) {
        if (a->json) {
            json_dumpf(report, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        } else {
            smtp_print_text(stdout, report, false);
        }
    }
    json_decref(report);
    mxr_engine_destroy(e);
    free(msg);
    return rc;
}

int cmd_send(int argc, char **argv)
{
    mxr_options *o = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    smtp_args a;
    int rc = smtp_parse(argc, argv, false, o, &a);
    if (rc == 0)
        rc = run(o, &a);
    mxr_options_free(o);
    free(a.to);
    return rc < 0 ? EXIT_OK : rc;
}
