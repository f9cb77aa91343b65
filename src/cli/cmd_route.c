/* cmd_route.c -- `mxroute route`: print the plan for each input. Inputs
 * are resolved concurrently through the engine's event-loop interface;
 * results are printed in input order. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_DEFAULT 1000
#define LINE_MAX_BYTES 4096

typedef struct slot {
    char *input;
    bool done;
    mxr_status status;
    mxr_plan *plan;
    char *err;
} slot;

typedef struct input {
    char *text;          /* NULL at the end */
    const char *invalid; /* why it is refused before routing, or NULL */
} input;

/* One line of a batch: at most LINE_MAX_BYTES - 1 bytes are kept, the
 * rest of an over-long line is read and dropped, so that every line gets
 * one answer and the next line is still the next input. */
typedef struct batch_line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool overlong, nul;
} batch_line;

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
    batch_line line;
    int read_errno; /* the batch could not be read to its end */
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
                 "failure, 65 invalid\ninput, 64 usage, 66 unreadable input "
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

/* false at the end of the input, or on a read error (ferror). Bytes are
 * counted, not looked for with strchr: a NUL byte in a line hid its line
 * end from fgets and the next line was swallowed. */
static bool read_line(FILE *in, batch_line *l)
{
    int c;
    bool any = false;
    l->len = 0;
    l->overlong = l->nul = false;
    while ((c = getc_unlocked(in)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        l->nul |= c == '\0';
        if (l->len < sizeof l->buf - 1)
            l->buf[l->len++] = (char)c;
        else
            l->overlong = true;
    }
    l->buf[l->len] = '\0';
    return any && !ferror(in);
}

/* The line without surrounding blanks and a CRLF's CR; NULs are shown as
 * "\0", so that the answer says which line it was. */
static char *line_text(const batch_line *l)
{
    size_t a = 0, n = l->len;
    while (a < n && (l->buf[a] == ' ' || l->buf[a] == '\t'))
        a++;
    while (n > a && (l->buf[n - 1] == ' ' || l->buf[n - 1] == '\t' ||
                     l->buf[n - 1] == '\r')) /* not strchr: it finds NUL */
        n--;
    char *out = malloc(2 * (n - a) + 1), *o = out;
    for (size_t i = a; out && i < n; i++) {
        if (l->buf[i] == '\0') {
            *o++ = '\\';
            *o++ = '0';
        } else {
            *o++ = l->buf[i];
        }
    }
    if (out)
        *o = '\0';
    return out;
}

/* The next input (text NULL at the end or on a read error). Blank lines
 * and # comments in a batch file are skipped; a line that cannot be a
 * domain or address is answered as invalid without routing. */
static input next_input(route_run *run)
{
    if (!run->in)
        return (input){run->next_arg < run->nargs
                           ? strdup(run->args[run->next_arg++])
                           : NULL,
                       NULL};
    batch_line *l = &run->line;
    while (read_line(run->in, l)) {
        char *t = line_text(l);
        if (t && (t[0] == '#' || (!t[0] && !l->overlong))) {
            free(t);
            continue;
        }
        const char *invalid = l->nul ? "the line has a NUL byte"
                              : l->overlong
                                  ? "the line is longer than 4095 bytes"
                                  : NULL;
        return (input){t, invalid};
    }
    if (ferror(run->in))
        run->read_errno = errno ? errno : EIO;
    return (input){NULL, NULL};
}

static void submit(route_run *run, input in)
{
    slot *s = &run->slots[(run->head + run->count) % run->window];
    run->count++;
    s->input = in.text;
    mxr_status st = in.invalid ? MXR_EBADNAME
                               : mxr_route(run->engine, in.text, on_route, s);
    if (st != MXR_OK) {
        s->done = true;
        s->status = st;
        s->err =
            strdup(in.invalid ? in.invalid : mxr_engine_errmsg(run->engine));
    }
}

static bool fill(route_run *run)
{
    while (run->count < run->window) {
        input in = next_input(run);
        if (!in.text)
            return false;
        submit(run, in);
    }
    return true;
}

/* ------------------------------------------------------- the event loop */

/* 0, or EXIT_SOFTWARE when the engine's loop cannot go on (out of
 * memory): the inputs in flight are then answered by the engine's
 * teardown, so every line still gets its answer. */
static int run_all(route_run *run)
{
    bool more = true;
    while (more || run->count > 0) {
        if (more)
            more = fill(run);
        flush_done(run);
        if (run->count > 0 && mxr_engine_pending(run->engine) > 0 &&
            mxr_engine_run_once(run->engine, -1) != MXR_OK) {
            cli_error("%s", mxr_engine_errmsg(run->engine));
            return EXIT_SOFTWARE;
        }
    }
    return 0;
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
    return run->in ? 0 : cli_read_error("--batch", batch, errno);
}

static int route_main(mxr_options *o, route_run *run, const char *batch)
{
    int rc = batch ? open_batch(run, batch) : 0;
    if (rc)
        return rc;
    if ((rc = cli_engine_new(o, &run->engine)) != 0)
        return rc;
    run->slots = calloc(run->window, sizeof *run->slots);
    if (!run->slots) {
        mxr_engine_destroy(run->engine);
        return EXIT_SOFTWARE;
    }
    int loop_rc = run_all(run);
    mxr_engine_destroy(run->engine);
    flush_done(run);
    free(run->slots);
    if (run->in && run->in != stdin)
        fclose(run->in);
    if (run->read_errno) /* the lines read were answered; the rest not */
        return cli_read_error("--batch", batch, run->read_errno);
    if (loop_rc)
        return loop_rc;
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
