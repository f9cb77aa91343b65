/* cmd_route.c -- `mxroute route`: print the plan for each input. Inputs
 * are resolved concurrently through the engine's event-loop interface;
 * results are printed in input order. */
#include "cli.h"

#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_DEFAULT 1000
#define LINE_MAX_BYTES 4096
#define POLL_MAX 64

typedef struct slot {
    char *input;
    bool done;
    mxr_status status;
    mxr_plan *plan;
    char *err;
} slot;

typedef struct route_run {
    mxr_engine *engine;
    bool json;
    bool batch;
    slot *slots; /* a ring of `window` slots */
    size_t window, head, count;
    int exit_code;
    /* input source: argv or a stream */
    char **args;
    int nargs, next_arg;
    FILE *in;
} route_run;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mxroute route [options] DOMAIN|ADDRESS...\n"
            "       mxroute route [options] --batch FILE|-\n\n"
            "Print the ordered delivery plan for each domain or address: the "
            "MX hosts to\ntry, their addresses, the hosts skipped and why.\n\n"
            "output options:\n"
            "  --json               one JSON object per input, one per line\n"
            "  --batch FILE|-       read one input per line (- = stdin), "
            "write JSON Lines;\n"
            "                       inputs are resolved concurrently\n"
            "  --window N           inputs resolved at once (default %d)\n",
            WINDOW_DEFAULT);
    cli_engine_usage(out);
    fprintf(out, "\nexit status: 0 ok, 75 temporary failure, 68 permanent "
                 "failure, 65 invalid\ninput, 64 usage, 66 unreadable batch "
                 "file, 70 internal error (the most\nsevere of all inputs). "
                 "With --batch: 0 once every line was processed.\n");
}

/* ------------------------------------------------------------- slots */

static void on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    slot *s = arg;
    s->done = true;
    s->status = st;
    s->plan = plan;
}

static int slot_exit(const slot *s)
{
    if (s->status == MXR_EBADNAME)
        return EXIT_DATAERR;
    if (s->status != MXR_OK)
        return EXIT_SOFTWARE;
    return cli_exit_for_result(s->plan->result);
}

static void slot_print(route_run *run, slot *s)
{
    if (run->json)
        out_json(stdout, s->input, s->status, s->plan, s->err);
    else
        out_text(stdout, s->input, s->status, s->plan, s->err);
    run->exit_code = cli_worse_exit(run->exit_code, slot_exit(s));
    mxr_plan_free(s->plan);
    free(s->input);
    free(s->err);
    memset(s, 0, sizeof *s);
}

/* Print finished results from the head of the ring, in input order. */
static void flush_done(route_run *run)
{
    while (run->count > 0 && run->slots[run->head].done) {
        slot_print(run, &run->slots[run->head]);
        run->head = (run->head + 1) % run->window;
        run->count--;
    }
    fflush(stdout);
}

/* ------------------------------------------------------------ inputs */

static char *trim(char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    return line;
}

/* The next input, or NULL at the end. Blank lines and # comments in a
 * batch file are skipped. */
static char *next_input(route_run *run)
{
    if (!run->in)
        return run->next_arg < run->nargs ? strdup(run->args[run->next_arg++])
                                          : NULL;
    char line[LINE_MAX_BYTES];
    while (fgets(line, sizeof line, run->in)) {
        bool whole = strchr(line, '\n') || feof(run->in);
        char *t = trim(line);
        if (!whole) { /* an over-long line: take it whole, it is rejected */
            int c;
            while ((c = fgetc(run->in)) != EOF && c != '\n')
                ;
        }
        if (*t && *t != '#')
            return strdup(t);
    }
    return NULL;
}

static void submit(route_run *run, char *input)
{
    slot *s = &run->slots[(run->head + run->count) % run->window];
    run->count++;
    s->input = input;
    mxr_status st = mxr_route(run->engine, input, on_route, s);
    if (st != MXR_OK) {
        s->done = true;
        s->status = st;
        s->err = strdup(mxr_engine_errmsg(run->engine));
    }
}

static bool fill(route_run *run)
{
    while (run->count < run->window) {
        char *input = next_input(run);
        if (!input)
            return false;
        submit(run, input);
    }
    return true;
}

/* ------------------------------------------------------- the event loop */

static void poll_round(mxr_engine *e)
{
    mxr_sock socks[POLL_MAX];
    struct pollfd pfd[POLL_MAX];
    size_t n = mxr_engine_fds(e, socks, POLL_MAX);
    n = n < POLL_MAX ? n : POLL_MAX;
    for (size_t i = 0; i < n; i++)
        pfd[i] = (struct pollfd){
            .fd = socks[i].fd,
            .events = (short)((socks[i].want & MXR_WANT_READ ? POLLIN : 0) |
                              (socks[i].want & MXR_WANT_WRITE ? POLLOUT : 0))};
    int t = mxr_engine_timeout(e);
    int ready = poll(pfd, (nfds_t)n, t < 0 ? 1000 : t);
    bool handled = false;
    for (size_t i = 0; ready > 0 && i < n; i++) {
        if (!pfd[i].revents)
            continue;
        int rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd
                                                               : MXR_NOFD;
        int wr = pfd[i].revents & POLLOUT ? pfd[i].fd : MXR_NOFD;
        mxr_engine_process(e, rd, wr);
        handled = true;
    }
    if (!handled)
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
}

static void run_all(route_run *run)
{
    bool more = true;
    while (more || run->count > 0) {
        if (more)
            more = fill(run);
        flush_done(run);
        if (run->count > 0 && mxr_engine_pending(run->engine) > 0)
            poll_round(run->engine);
    }
}

/* -------------------------------------------------------------- command */

static int parse_window(const char *arg, size_t *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || v < 1 || v > 1000000) {
        cli_error("--window: '%s' is not 1..1000000", arg);
        return EXIT_USAGE;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, mxr_options *o, route_run *run,
                      const char **batch)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"batch", required_argument, NULL, 'b'},
        {"window", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        CLI_ENGINE_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hj", longopts, NULL)) != -1) {
        int rc = cli_engine_option(o, c, optarg);
        if (rc >= 0) {
            if (rc > 0)
                return rc;
            continue;
        }
        if (c == 'j')
            run->json = true;
        else if (c == 'b')
            *batch = optarg;
        else if (c == 'w' && (rc = parse_window(optarg, &run->window)))
            return rc;
        else if (c == 'h') {
            usage(stdout);
            return -1;
        } else if (c != 'w') {
            return cli_try_help(); /* getopt said what was wrong */
        }
    }
    run->args = argv + optind;
    run->nargs = argc - optind;
    if ((run->nargs == 0) == (*batch == NULL))
        return cli_usage_error("give inputs or --batch, not both and not "
                               "neither");
    return 0;
}

static int open_batch(route_run *run, const char *batch)
{
    run->batch = true;
    run->json = true;
    run->in = strcmp(batch, "-") == 0 ? stdin : fopen(batch, "r");
    if (!run->in) {
        perror(batch);
        return 66; /* EX_NOINPUT */
    }
    return 0;
}

static int route_main(mxr_options *o, route_run *run, const char *batch)
{
    int rc = batch ? open_batch(run, batch) : 0;
    if (rc)
        return rc;
    mxr_status st = mxr_engine_new(o, &run->engine);
    if (st != MXR_OK) {
        cli_error("%s", mxr_options_errmsg(o));
        return st == MXR_EZONE || st == MXR_ESERVER || st == MXR_EPOLICY
                   ? EXIT_USAGE
                   : EXIT_SOFTWARE;
    }
    run->slots = calloc(run->window, sizeof *run->slots);
    if (!run->slots) {
        mxr_engine_destroy(run->engine);
        return EXIT_SOFTWARE;
    }
    run_all(run);
    mxr_engine_destroy(run->engine);
    free(run->slots);
    if (run->in && run->in != stdin)
        fclose(run->in);
    return run->batch && run->exit_code != EXIT_SOFTWARE ? EXIT_OK
                                                         : run->exit_code;
}

int cmd_route(int argc, char **argv)
{
    mxr_options *o = NULL;
    route_run run = {.window = WINDOW_DEFAULT};
    const char *batch = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    int rc = parse_args(argc, argv, o, &run, &batch);
    if (rc == 0)
        rc = route_main(o, &run, batch);
    mxr_options_free(o);
    return rc < 0 ? EXIT_OK : rc;
}
