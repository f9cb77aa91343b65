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

static int prepare(smtp_args *a)
{
    size_t len = 0;
    errno = 0;
    a->owned = read_message(a->file, &len);
    if (!a->owned) {
        fprintf(stderr, "mxroute send: %s: %s\n", a->file ? a->file : "stdin",
                strerror(errno ? errno : EIO));
        return EXIT_NOINPUT;
    }
    a->msg = a->owned;
    a->len = len;
    return 0;
}

int cmd_send(int argc, char **argv)
{
    static const smtp_command_ops ops = {false, prepare, NULL};
    return smtp_command(argc, argv, &ops);
}
