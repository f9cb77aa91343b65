/* serve_config.c -- the --config file of `mxroute serve`, turned into
 * arguments: one option a line, "name value" or "name" for a flag, the
 * long option names without "--"; '#' starts a comment line; blank lines
 * are skipped. Each line becomes one argument "--name=value" (or
 * "--name"), put before the command line's, so that one getopt table
 * parses both and the command line overrides the file's single-valued
 * options. A name is checked against that table here, so every argument
 * from the file is one option getopt takes as it stands. */
#define _GNU_SOURCE /* getline */
#include "cli.h"
#include "serve.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* Options a file may not give: they say what to do with the file. */
static bool forbidden(const char *name)
{
    return strcmp(name, "config") == 0 || strcmp(name, "check-config") == 0 ||
           strcmp(name, "help") == 0;
}

static const struct option *find_option(const struct option *opts,
                                        const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts;
    return NULL;
}

static int line_error(const char *path, size_t line, const char *fmt,
                      const char *name)
{
    char where[4096];
    snprintf(where, sizeof where, "%s:%zu", path, line);
    cli_set_where(where);
    cli_error(fmt, name);
    cli_set_where(NULL);
    return EXIT_CONFIG;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One line (trimmed, not empty, not a comment) into a[*n]: 0 or an exit
 * code (said). */
static int take_line(const char *path, size_t line, char *text,
                     const struct option *opts, serve_args *a)
{
    char *value = text + strcspn(text, " \t");
    if (*value)
        *value++ = '\0';
    value = trim(value);
    if (text[0] == '-')
        return line_error(
            path, line, "'%s': write the option name without its dashes", text);
    const struct option *o = find_option(opts, text);
    if (!o)
        return line_error(path, line, "unknown option '%s'", text);
    if (forbidden(text))
        return line_error(path, line, "'%s' cannot be given in a file", text);
    if (o->has_arg == required_argument && !value[0])
        return line_error(path, line, "'%s' needs a value", text);
    if (o->has_arg == no_argument && value[0])
        return line_error(path, line, "'%s' takes no value", text);
    size_t len = strlen(text) + strlen(value) + 4;
    char *arg = malloc(len), *where = malloc(strlen(path) + 24);
    if (!arg || !where) {
        free(arg);
        free(where);
        cli_error("out of memory");
        return EXIT_SOFTWARE;
    }
    snprintf(arg, len, value[0] ? "--%s=%s" : "--%s", text, value);
    sprintf(where, "%s:%zu", path, line);
    a->argv[a->argc++] = arg;
    a->where[a->nfile++] = where;
    return 0;
}

static size_t count_lines(FILE *f)
{
    size_t n = 0;
    int c, last = '\n';
    while ((c = getc(f)) != EOF) {
        if (c == '\n')
            n++;
        last = c;
    }
    rewind(f);
    return n + (last != '\n');
}

int serve_args_build(serve_args *a, const char *path, const struct option *opts,
                     int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    FILE *f = NULL;
    if (path) {
        if (cli_readable("--config", path))
            return EXIT_NOINPUT;
        if (!(f = fopen(path, "r")))
            return cli_read_error("--config", path, errno);
    }
    size_t lines = f ? count_lines(f) : 0;
    a->argv = calloc(lines + (size_t)argc + 1, sizeof *a->argv);
    a->where = calloc(lines + 1, sizeof *a->where);
    if (!a->argv || !a->where) {
        if (f)
            fclose(f);
        cli_error("out of memory");
        return EXIT_SOFTWARE;
    }
    a->argv[a->argc++] = strdup(argv[0]);
    char *buf = NULL;
    size_t cap = 0, line = 0;
    int rc = 0;
    while (rc == 0 && f && line < lines && getline(&buf, &cap, f) >= 0) {
        line++;
        char *text = trim(buf);
        if (text[0] && text[0] != '#')
            rc = take_line(path, line, text, opts, a);
    }
    if (rc == 0 && f && ferror(f))
        rc = cli_read_error("--config", path, errno);
    free(buf);
    if (f)
        fclose(f);
    for (int i = 1; rc == 0 && i < argc; i++)
        if (!(a->argv[a->argc++] = strdup(argv[i]))) {
            cli_error("out of memory");
            rc = EXIT_SOFTWARE;
        }
    return rc;
}

void serve_args_free(serve_args *a)
{
    for (int i = 0; a->argv && i < a->argc; i++)
        free(a->argv[i]);
    for (size_t i = 0; a->where && i < a->nfile; i++)
        free(a->where[i]);
    free(a->argv);
    free(a->where);
    memset(a, 0, sizeof *a);
}
