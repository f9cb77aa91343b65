/* common.c -- exit codes and the engine options every command shares. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_read_error(const char *opt, const char *path, int errnum)
{
    fflush(stdout); /* the answers so far, then why the rest is missing */
    cli_error("%s%s%s: cannot be read: %s", opt ? opt : "", opt ? " " : "",
              path, strerror(errnum));
    return EXIT_NOINPUT;
}

/* Without opening the file: a pipe named /dev/fd/N (a shell's <(...))
 * must keep every byte for the real read. A directory would open and
 * fail at the first read. */
int cli_readable(const char *opt, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cli_read_error(opt, path, errno);
    if (S_ISDIR(st.st_mode))
        return cli_read_error(opt, path, EISDIR);
    if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0)
        return cli_read_error(opt, path, errno);
    return 0;
}

static char prog[64] = "mxroute";

char *cli_set_command(const char *command)
{
    snprintf(prog, sizeof prog, "mxroute %s", command);
    return prog;
}

const char *cli_prog(void)
{
    return prog;
}

static const char *where;

void cli_set_where(const char *w)
{
    where = w;
}

/* A daemon's reload reads its options again: their errors go to the
 * daemon's log, not to stderr (cli_capture_errors). */
static char *captured;
static size_t captured_size;

void cli_capture_errors(char *buf, size_t size)
{
    captured = size ? buf : NULL;
    captured_size = size;
    if (captured)
        captured[0] = '\0';
}

/* The first message is kept: the one that says what went wrong. */
static void capture(const char *fmt, va_list ap)
{
    if (captured[0])
        return;
    int n = where ? snprintf(captured, captured_size, "%s: ", where) : 0;
    if (n >= 0 && (size_t)n < captured_size)
        vsnprintf(captured + n, captured_size - (size_t)n, fmt, ap);
}

static void verror(const char *fmt, va_list ap)
{
    if (captured) {
        capture(fmt, ap);
        return;
    }
    fflush(stdout); /* results before the message, also in a pipe */
    fprintf(stderr, "%s: ", prog);
    if (where)
        fprintf(stderr, "%s: ", where);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
}

int cli_try_help(void)
{
    if (captured)
        return EXIT_USAGE;
    fprintf(stderr, "Try '%s --help'.\n", prog);
    return EXIT_USAGE;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    return cli_try_help();
}

static int severity(int code)
{
    switch (code) {
    case EXIT_SOFTWARE:
        return 5;
    case EXIT_USAGE:
        return 4;
    case EXIT_DATAERR:
        return 3;
    case EXIT_NOHOST:
        return 2;
    case EXIT_TEMPFAIL:
        return 1;
    default:
        return 0;
    }
}

int cli_worse_exit(int a, int b)
{
    return severity(b) > severity(a) ? b : a;
}

int cli_exit_for_result(mxr_result r)
{
    switch (r) {
    case MXR_RESULT_OK:
        return EXIT_OK;
    case MXR_RESULT_TEMPFAIL:
        return EXIT_TEMPFAIL;
    case MXR_RESULT_PERMFAIL:
        return EXIT_NOHOST;
    }
    return EXIT_SOFTWARE;
}

static int parse_int(const char *arg, const char *what, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end) {
        cli_error("%s: '%s' is not a number", what, arg);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

/* mxr_options_set's message, "NAME: V is outside MIN..MAX", without the
 * library's NAME: the command names its own option (--dns-timeout sets
 * the library's timeout). */
static const char *range_error(const mxr_options *o)
{
    const char *msg = mxr_options_errmsg(o);
    const char *rest = strstr(msg, ": ");
    return rest ? rest + 2 : msg;
}

int cli_set_int(mxr_options *o, mxr_option opt, const char *arg,
                const char *what)
{
    int64_t v;
    int rc = parse_int(arg, what, &v);
    if (rc)
        return rc;
    if (mxr_options_set(o, opt, v) != MXR_OK) {
        cli_error("%s: %s", what, range_error(o));
        return EXIT_USAGE;
    }
    return 0;
}

/* The library's message names the value, or else it is named here. */
static int checked(mxr_options *o, mxr_status st, const char *what,
                   const char *arg)
{
    if (st == MXR_OK)
        return 0;
    const char *msg = mxr_options_errmsg(o);
    if (!msg[0])
        cli_error("%s '%s': %s", what, arg, mxr_strerror(st));
    else if (arg[0] && strstr(msg, arg))
        cli_error("%s: %s", what, msg);
    else
        cli_error("%s '%s': %s", what, arg, msg);
    return EXIT_USAGE;
}

/* Policy messages (errors with script:line, print()) go to stderr. They
 * are the policies' log, in the documented form "mxroute: [LEVEL: ]policy
 * NAME: ...", not the command's own errors: no command name here. */
static void log_to_stderr(void *ud, int level, const char *msg)
{
    static const char *const tags[] = {"", "warning: ", "error: "};
    fflush(stdout); /* results and messages in order, also in a pipe */
    fprintf(stderr, "mxroute: %s%s\n",
            tags[level >= 0 && level < 3 ? level : 0], msg);
}

/* As the library tells them apart: a configuration ending in .lua is a
 * file, anything else a table constructor. */
static bool is_config_file(const char *arg)
{
    size_t n = strlen(arg);
    return n >= 4 && strcmp(arg + n - 4, ".lua") == 0;
}

static int policy_option(mxr_options *o, int opt, const char *arg)
{
    switch (opt) {
    case 'y':
        mxr_options_set_log(o, log_to_stderr, NULL);
        if (cli_readable("--policy", arg))
            return EXIT_NOINPUT;
        return checked(o, mxr_options_add_policy(o, arg, NULL), "--policy",
                       arg);
    case 'Y':
        if (is_config_file(arg) && cli_readable("--policy-config", arg))
            return EXIT_NOINPUT;
        if (mxr_options_set_policy_config(o, arg) != MXR_OK) {
            return cli_usage_error("--policy-config must follow the --policy "
                                   "it configures");
        }
        return 0;
    case 0x101:
        return cli_set_int(o, MXR_OPT_POLICY_MAX_INSTRUCTIONS, arg,
                           "--policy-max-instructions");
    case 0x102:
        return cli_set_int(o, MXR_OPT_POLICY_MAX_MS, arg, "--policy-max-ms");
    case 0x103:
        return cli_set_int(o, MXR_OPT_POLICY_MAX_MEMORY, arg,
                           "--policy-max-memory");
    case 0x104:
        if (strcmp(arg, "default") != 0 && strcmp(arg, "defer") != 0) {
            cli_error("--policy-on-error: '%s' is not default or defer", arg);
            return EXIT_USAGE;
        }
        return checked(
            o, mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, arg[2] == 'f'),
            "--policy-on-error", arg);
    }
    return -1;
}

int cli_engine_new(mxr_options *o, mxr_engine **out)
{
    mxr_status st = mxr_engine_new(o, out);
    if (st == MXR_OK)
        return 0;
    cli_error("%s", mxr_options_errmsg(o));
    return st == MXR_EZONE || st == MXR_ESERVER || st == MXR_EPOLICY
               ? EXIT_USAGE
               : EXIT_SOFTWARE;
}

int cli_engine_option(mxr_options *o, int opt, const char *arg)
{
    int rc = policy_option(o, opt, arg);
    if (rc >= 0)
        return rc;
    switch (opt) {
    case 'S':
        return checked(o, mxr_options_add_server(o, arg), "--server", arg);
    case 'z':
        out_set_offline();
        if (cli_readable("--zone", arg))
            return EXIT_NOINPUT;
        return checked(o, mxr_options_add_zone_file(o, arg), "--zone", arg);
    case 'L':
        return checked(o, mxr_options_add_local_name(o, arg), "--local-name",
                       arg);
    case 'f': {
        int f = mxr_family_parse(arg);
        if (f < 0) {
            cli_error("--family: '%s' is not any, ipv4, ipv6, prefer-ipv4 or "
                      "prefer-ipv6",
                      arg);
            return EXIT_USAGE;
        }
        return checked(o, mxr_options_set(o, MXR_OPT_FAMILY, f), "--family",
                       arg);
    }
    case 's':
        return cli_set_int(o, MXR_OPT_SEED, arg, "--seed");
    case 'l':
        return checked(o, mxr_options_set(o, MXR_OPT_ALLOW_LOOPBACK, 1),
                       "--allow-loopback", "");
    case 'P':
        return checked(o, mxr_options_set(o, MXR_OPT_DENY_PRIVATE, 1),
                       "--deny-private", "");
    case 't':
        return cli_set_int(o, MXR_OPT_TIMEOUT_MS, arg, "--timeout");
    case 'T':
        return cli_set_int(o, MXR_OPT_TRIES, arg, "--tries");
    case 'p':
        return cli_set_int(o, MXR_OPT_PORT, arg, "--port");
    case 'I':
        return cli_set_int(o, MXR_OPT_MAX_INFLIGHT, arg, "--max-inflight");
    }
    return -1;
}

void cli_engine_usage(FILE *out)
{
    cli_engine_usage_with(out, "--timeout MS");
}

void cli_engine_usage_with(FILE *out, const char *dns_timeout_flag)
{
    fprintf(out,
            "resolver options:\n"
            "  --server IP[:PORT]   DNS server to ask (repeatable; default: "
            "/etc/resolv.conf)\n"
            "  --zone FILE          answer offline from a zone file "
            "(repeatable)\n"
            "  %-20s DNS timeout per try (default 2000)\n"
            "  --tries N            DNS tries per server (default 2)\n"
            "  --max-inflight N     DNS queries in flight at once (default "
            "100)\n"
            "routing options:\n"
            "  --local-name NAME    one of our own names or addresses, for "
            "self-pruning\n"
            "                       (repeatable)\n"
            "  --family F           any, ipv4, ipv6, prefer-ipv4, prefer-ipv6 "
            "(default any)\n"
            "  --seed N             seed the tie shuffle (reproducible "
            "order)\n"
            "  --allow-loopback     accept loopback addresses (tests)\n"
            "  --deny-private       skip private-range addresses\n"
            "  --port N             SMTP port put in plans (default 25)\n"
            "policy options:\n"
            "  --policy FILE        run a Lua policy's hooks (repeatable; "
            "in order)\n"
            "  --policy-config CFG  configuration of the --policy before it: "
            "a .lua file\n"
            "                       or a table such as "
            "\"{relay='smtp.example.net'}\"\n"
            "  --policy-max-instructions N  per hook call (default "
            "1000000)\n"
            "  --policy-max-ms MS   CPU time per hook call (default 100)\n"
            "  --policy-max-memory BYTES    per policy (default 33554432)\n"
            "  --policy-on-error default|defer  when a hook fails "
            "(default: default)\n",
            dns_timeout_flag);
}
