/* cli.h -- shared pieces of the mxroute command. */
#ifndef MXR_CLI_H
#define MXR_CLI_H

#include "mxroute.h"

#include <jansson.h>
#include <stdio.h>

/* sysexits(3) values, as mail software uses them. */
#define EXIT_OK 0
#define EXIT_USAGE 64
#define EXIT_DATAERR 65
#define EXIT_NOINPUT 66
#define EXIT_NOUSER 67
#define EXIT_NOHOST 68
#define EXIT_SOFTWARE 70
#define EXIT_TEMPFAIL 75
#define EXIT_NOPERM 77
#define EXIT_CONFIG 78

/* Messages on stderr start with one prefix, "mxroute COMMAND: " (just
 * "mxroute: " before a command is known). main names the command, and
 * puts the same name in the command's argv[0] so that getopt's own
 * messages ("invalid option -- 'f'") carry it too. */
char *cli_set_command(const char *command);
const char *cli_prog(void);
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "Try 'mxroute COMMAND --help'." after a usage error; EXIT_USAGE. */
int cli_try_help(void);
/* A usage error: one line, then where the help is. Returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Where the arguments being parsed come from ("FILE:LINE" of a
 * configuration file), put after the prefix of every message until it
 * is set back to NULL. */
void cli_set_where(const char *where);
/* From now on, the first message of cli_error and cli_usage_error goes
 * into buf (size bytes, emptied here) and nothing to stderr, until this
 * is called with size 0. */
void cli_capture_errors(char *buf, size_t size);

/* Input files. An option that names a file the command must read is
 * checked when it is parsed, so that every option reports the same way:
 * "mxroute CMD: OPT FILE: cannot be read: REASON" (OPT may be NULL, for
 * an operand) and EXIT_NOINPUT. cli_readable returns 0 or EXIT_NOINPUT;
 * the reading itself still checks every read. */
int cli_readable(const char *opt, const char *path);
int cli_read_error(const char *opt, const char *path, int errnum);

/* The more severe of two exit codes (70 > 65 > 68 > 75 > 0). */
int cli_worse_exit(int a, int b);
int cli_exit_for_result(mxr_result r);

/* Engine options shared by every command that resolves. Returns -1 if the
 * option is not one of them, 0 when taken, or an exit code > 0 on error. */
typedef struct cli_engine_opts {
    mxr_options *opts;
} cli_engine_opts;

#define CLI_ENGINE_LONGOPTS                                                    \
    {"server", required_argument, NULL, 'S'},                                  \
        {"zone", required_argument, NULL, 'z'},                                \
        {"local-name", required_argument, NULL, 'L'},                          \
        {"family", required_argument, NULL, 'f'},                              \
        {"seed", required_argument, NULL, 's'},                                \
        {"allow-loopback", no_argument, NULL, 'l'},                            \
        {"deny-private", no_argument, NULL, 'P'},                              \
        {"timeout", required_argument, NULL, 't'},                             \
        {"tries", required_argument, NULL, 'T'},                               \
        {"port", required_argument, NULL, 'p'},                                \
        {"max-inflight", required_argument, NULL, 'I'},                        \
        {"policy", required_argument, NULL, 'y'},                              \
        {"policy-config", required_argument, NULL, 'Y'},                       \
        {"policy-max-instructions", required_argument, NULL, 0x101},           \
        {"policy-max-ms", required_argument, NULL, 0x102},                     \
        {"policy-max-memory", required_argument, NULL, 0x103},                 \
    {                                                                          \
        "policy-on-error", required_argument, NULL, 0x104                      \
    }

int cli_engine_option(mxr_options *opts, int opt, const char *arg);
/* mxr_engine_new(opts, out) for a command: on failure the options' message
 * is said and the exit status returned (64 for a zone, server or policy
 * that does not load, 70 otherwise); 0 on success. */
int cli_engine_new(mxr_options *opts, mxr_engine **out);
/* Set an integer option from the text of the command's option flag (named
 * in messages). Returns 0 or EXIT_USAGE. */
int cli_set_int(mxr_options *opts, mxr_option opt, const char *arg,
                const char *flag);
/* The option help lines for the shared engine options. */
void cli_engine_usage(FILE *out);
/* The same, naming the DNS timeout option dns_timeout_flag (probe and
 * send call it --dns-timeout: their --timeout is SMTP's). */
void cli_engine_usage_with(FILE *out, const char *dns_timeout_flag);

/* Failover and retry rule options (rule_opts.c), shared by simulate,
 * probe and send. */
enum {
    CLI_OPT_STAY_ON_4XX = 0x300,
    CLI_OPT_MAX_AGE,
    CLI_OPT_RETRY_MIN,
    CLI_OPT_RETRY_MAX,
    CLI_OPT_MAX_ADDRESSES,
    CLI_OPT_MAX_SESSIONS,
    CLI_OPT_COOL_DOWN
};

#define CLI_RULE_LONGOPTS                                                      \
    {"stay-on-4xx", no_argument, NULL, CLI_OPT_STAY_ON_4XX},                   \
        {"max-age", required_argument, NULL, CLI_OPT_MAX_AGE},                 \
        {"retry-min", required_argument, NULL, CLI_OPT_RETRY_MIN},             \
        {"retry-max", required_argument, NULL, CLI_OPT_RETRY_MAX},             \
        {"max-addresses", required_argument, NULL, CLI_OPT_MAX_ADDRESSES},     \
        {"max-sessions", required_argument, NULL, CLI_OPT_MAX_SESSIONS},       \
    {                                                                          \
        "cool-down", required_argument, NULL, CLI_OPT_COOL_DOWN                \
    }

/* Returns -1 if opt is not a rule option, 0 when taken, or EXIT_USAGE. */
int cli_rule_option(mxr_rules *rules, int opt, const char *arg);
void cli_rule_usage(FILE *out);
/* A whole number 0..max from the text of option opt; 0 or EXIT_USAGE
 * (said). */
int cli_parse_count(const char *opt, const char *arg, long long max,
                    long long *out);

/* Commands. */
int cmd_route(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Output of one routing result. Once out_set_offline was called (a
 * --zone was given), a REFUSED plan is explained as a name outside every
 * zone, not as a server's refusal. */
void out_set_offline(void);
void out_text(FILE *out, const char *input, mxr_status st, const mxr_plan *p,
              const char *err);
void out_json(FILE *out, const char *input, mxr_status st, const mxr_plan *p,
              const char *err);
/* The object out_json prints (NULL: no memory), for `mxroute serve`. */
json_t *out_json_object(const char *input, mxr_status st, const mxr_plan *p,
                        const char *err);
/* One line on what a failed plan's reason means, for people. */
const char *out_explain(mxr_reason r);

/* A JSON string for untrusted bytes (non-UTF-8 bytes become '?'), or
 * null for NULL. */
json_t *cli_json_text(const char *s);

#endif
