/* smtp_cli.h -- what `mxroute probe` and `mxroute send` share: their
 * options, the engine, one delivery per domain driven by mxr_send, and a
 * JSON model of what happened that both the text and the --json output
 * are printed from. */
#ifndef MXR_SMTP_CLI_H
#define MXR_SMTP_CLI_H

#include "cli.h"

#define EXIT_NOINPUT 66

typedef struct smtp_args {
    bool json;
    bool probe;
    const char *from; /* NULL: the null sender */
    const char **to;  /* send: --to; probe: the one recipient */
    size_t nto;
    const char *file;  /* send: message file, NULL or "-" for stdin */
    const char *input; /* probe: as given */
    const char *msg;   /* send: the message */
    size_t len;
    char *owned; /* freed at the end: the message, or the probe's
                    recipient */
    const char *probe_to[1];
    mxr_rules *rules; /* the failover rules (--stay-on-4xx, --max-age...) */
} smtp_args;

/* What makes probe and send differ around the shared run. */
typedef struct smtp_command_ops {
    bool probe;
    /* After the options: set msg/len or the recipient; 0 or an exit
     * code. */
    int (*prepare)(smtp_args *a);
    /* What --json prints (a new reference); NULL: the report itself. */
    json_t *(*json_form)(const smtp_args *a, json_t *report);
} smtp_command_ops;

/* The whole command: options, engine, run, output. */
int smtp_command(int argc, char **argv, const smtp_command_ops *ops);

/* Parse the options of probe (probe = true) or send into opts and a.
 * Returns 0, an exit code, or -1 after --help. */
int smtp_parse(int argc, char **argv, bool probe, mxr_options *opts,
               smtp_args *a);

/* Deliver (or probe) msg from a->from to a->to, one attempt per domain.
 * Fills report (see smtp_report_*) and returns the exit code. */
int smtp_run(mxr_engine *e, const smtp_args *a, const char *msg, size_t len,
             json_t *report);

/* Output of a finished run. */
void smtp_print_text(FILE *out, const json_t *report, bool probe);
/* The exit code for a finished report: 75 when a recipient is deferred,
 * else 68 when one bounced, else 0. */
int smtp_exit_code(const json_t *report);

#endif
