/* main.c -- the mxroute command: dispatch to a subcommand. */
#include "cli.h"

#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"route", cmd_route, "print the delivery plan for domains or addresses"},
    {"test", cmd_test, "run Lua policy test files offline"},
    {"simulate", cmd_simulate,
     "walk the failover machine against scripted outcomes"},
    {"check", cmd_check,
     "report problems and the sender's view of a domain's MX setup"},
    {"probe", cmd_probe,
     "walk the plan against the real SMTP servers, up to RCPT"},
    {"send", cmd_send, "deliver a message along the plan and failover rules"},
    {"serve", cmd_serve,
     "answer routing questions on sockets (Postfix socketmap, JSON Lines)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: mxroute [--version] [--help] COMMAND [ARGS]\n\n"
                 "Where does mail for a domain go? mxroute resolves MX "
                 "records and addresses\nand orders them as RFC 5321 "
                 "senders do.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'mxroute COMMAND --help' describes a command; "
                 "see also mxroute(1).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("mxroute %s\n", mxr_version_string());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            /* The command's argv[0] is its name in messages, getopt's
             * included: "mxroute route: invalid option -- 'f'". */
            argv[1] = cli_set_command(commands[i].name);
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    cli_error("unknown command '%s'", argv[1]);
    return cli_try_help();
}
