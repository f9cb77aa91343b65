/* cmd_send.c -- `mxroute send`: deliver one message for real, following
 * each recipient domain's plan and the failover machine, and report what
 * became of every recipient. */
#include "smtp_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The whole message in memory: mxr_send needs it until the end, and a
 * retry at the next host sends it again. NULL with errno on a read error
 * (a directory opens, then fails at the first read). */
static char *read_message(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *more = realloc(buf, cap * 2);
        if (!more)
            free(buf);
        buf = more;
        cap *= 2;
    }
    if (!buf)
        errno = ENOMEM;
    else if (ferror(f)) {
        errno = errno ? errno : EIO;
        free(buf);
        buf = NULL;
    }
    *len = n;
    return buf;
}

/* A message SMTP can carry: RFC 5322 text has no NUL, and an empty file
 * is a mistake more often than a message. */
static int message_ok(const char *name, const char *msg, size_t len)
{
    const char *why = len == 0 ? "the message is empty"
                      : memchr(msg, '\0', len)
                          ? "the message has a NUL byte (RFC 5322 text has "
                            "none)"
                          : NULL;
    if (!why)
        return 0;
    fprintf(stderr, "mxroute send: %s: %s\n", name, why);
    return EXIT_DATAERR;
}

static int prepare(smtp_args *a)
{
    bool std_in = !a->file || strcmp(a->file, "-") == 0;
    const char *name = std_in ? "stdin" : a->file;
    FILE *f = std_in ? stdin : fopen(a->file, "rb");
    if (!f)
        return cli_read_error(NULL, name, errno);
    size_t len = 0;
    errno = 0;
    a->owned = read_message(f, &len);
    int errnum = errno;
    if (!std_in)
        fclose(f);
    if (!a->owned)
        return cli_read_error(NULL, name, errnum ? errnum : EIO);
    a->msg = a->owned;
    a->len = len;
    return message_ok(name, a->msg, len);
}

int cmd_send(int argc, char **argv)
{
    static const smtp_command_ops ops = {false, prepare, NULL};
    return smtp_command(argc, argv, &ops);
}
