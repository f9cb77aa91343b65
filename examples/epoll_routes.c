/* epoll_routes.c -- many routes at once, driven by an epoll(7) loop.
 *
 * Reads domains or addresses, one per line (blank lines and lines
 * starting with '#' are ignored), from FILE or standard input, keeps up to
 * N routes in flight in one engine, and prints one line per result as it
 * completes, then statistics on standard error.
 *
 *   epoll_routes [-n N] [--zone FILE]... [--server IP[:PORT]]... [FILE]
 *
 * Output, one line per input, in completion order:
 *
 *   example.com ok mail1.example.com mail2.example.com
 *   nullmx.example.com permfail null-mx
 *   bad..name error bad-input
 *
 * How the engine is driven (the pattern to copy into an existing loop):
 *
 *  - mxr_options_set_sock_callback: the engine says when a descriptor
 *    starts or stops needing attention; the callback turns that into
 *    EPOLL_CTL_ADD / MOD / DEL. No descriptor list is kept here.
 *  - mxr_engine_timeout: how long epoll_wait may sleep. 0 means work is
 *    ready now (with zone files every answer is "ready now": there are no
 *    descriptors at all, and the timeout alone drives the loop).
 *  - mxr_engine_process: called for each ready descriptor, and with
 *    MXR_NOFD, MXR_NOFD when the wait timed out. Route callbacks fire from
 *    inside it.
 *
 * Exit status: 0 when every input was answered (whatever the answer), 70
 * on an internal error, 64 on a usage error, 66 when FILE cannot be read.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* getline, strdup, clock_gettime */

#include <mxroute.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Everything the callbacks need, in one place. */
typedef struct loop {
    int epfd;
    mxr_engine *engine;
    size_t inflight;     /* routes started whose callback has not fired */
    size_t inflight_max; /* highest seen */
    unsigned long started, ok, tempfail, permfail, bad, errors;
    unsigned long fd_adds, fd_mods, fd_dels; /* socket callback calls */
    int failed;                              /* an epoll_ctl failed: stop */
} loop;

/* ------------------------------------------------------ socket callback */

/* The engine wants fd watched for reading and/or writing, or (0, 0) no
 * longer. MOD first and ADD on ENOENT: no need to remember which
 * descriptors are registered. */
static void on_sock(void *ud, int fd, int readable, int writable)
{
    loop *lp = ud;
    struct epoll_event ev = {0};

    if (!readable && !writable) {
        /* The resolver may already have closed fd, which removes it from
         * the epoll set by itself: EBADF and ENOENT are fine. */
        if (epoll_ctl(lp->epfd, EPOLL_CTL_DEL, fd, NULL) == 0)
            lp->fd_dels++;
        return;
    }
    ev.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    ev.data.fd = fd;
    if (epoll_ctl(lp->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) {
        lp->fd_mods++;
    } else if (errno == ENOENT &&
               epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
        lp->fd_adds++;
    } else {
        perror("epoll_ctl");
        lp->failed = 1;
    }
}

/* ------------------------------------------------------- route callback */

/* The callback's argument: the loop, and our copy of the input (the plan
 * is NULL when the status is not MXR_OK, so it cannot tell us). */
typedef struct request {
    loop *lp;
    char input[]; /* NUL-terminated */
} request;

/* Fires once per accepted route, from inside mxr_engine_process (or from
 * mxr_engine_destroy with MXR_EDESTROYED). */
static void on_route(void *arg, mxr_status status, mxr_plan *plan)
{
    request *rq = arg;
    loop *lp = rq->lp;

    lp->inflight--;
    if (status != MXR_OK) {
        printf("%s error %s\n", rq->input, mxr_strerror(status));
        lp->errors++;
    } else {
        printf("%s %s", rq->input, mxr_result_name(plan->result));
        if (plan->result == MXR_RESULT_OK) {
            for (size_t i = 0; i < plan->ncandidates; i++)
                printf(" %s", plan->candidates[i].host);
            lp->ok++;
        } else {
            printf(" %s", mxr_reason_name(plan->reason));
            if (plan->result == MXR_RESULT_TEMPFAIL)
                lp->tempfail++;
            else
                lp->permfail++;
        }
        printf("\n");
        mxr_plan_free(plan); /* the plan is ours */
    }
    fflush(stdout); /* one line per result, as it completes */
    free(rq);
}

static void start_route(loop *lp, const char *input)
{
    size_t n = strlen(input);
    request *rq = malloc(sizeof *rq + n + 1);
    mxr_status st;

    if (!rq) {
        lp->errors++;
        return;
    }
    rq->lp = lp;
    memcpy(rq->input, input, n + 1);
    st = mxr_route(lp->engine, input, on_route, rq);
    if (st != MXR_OK) {
        /* Refused at once: the callback will never fire. */
        if (st == MXR_EBADNAME) {
            printf("%s error bad-input\n", input);
            fprintf(stderr, "%s: %s\n", input, mxr_engine_errmsg(lp->engine));
            lp->bad++;
        } else {
            printf("%s error %s\n", input, mxr_strerror(st));
            lp->errors++;
        }
        free(rq);
        return;
    }
    lp->started++;
    if (++lp->inflight > lp->inflight_max)
        lp->inflight_max = lp->inflight;
}

/* The next input line, trimmed, or NULL at the end. Reading a pipe or a
 * file like this blocks the loop while it waits for the writer; a server
 * would watch its input descriptor in the same epoll set instead. */
static const char *next_input(FILE *in, char **line, size_t *cap)
{
    ssize_t len;

    while ((len = getline(line, cap, in)) >= 0) {
        char *s = *line;
        while (len > 0 && strchr(" \t\r\n", s[len - 1]))
            s[--len] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s && *s != '#')
            return s;
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: epoll_routes [-n N] [--zone FILE]... "
                    "[--server IP[:PORT]]... [FILE]\n");
    return 64;
}

int main(int argc, char **argv)
{
    loop lp = {.epfd = -1};
    mxr_options *opts;
    mxr_status st = MXR_OK;
    FILE *in = stdin;
    long window = 100;
    char *line = NULL;
    size_t cap = 0;
    int i, eof = 0, rc = 0;

    if (mxr_options_new(&opts) != MXR_OK)
        return 70;
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (i + 1 >= argc) {
            mxr_options_free(opts);
            return usage();
        }
        if (strcmp(argv[i], "-n") == 0) {
            char *end;
            window = strtol(argv[++i], &end, 10);
            if (*end || window < 1 || window > 100000) {
                mxr_options_free(opts);
                return usage();
            }
            continue;
        }
        if (strcmp(argv[i], "--zone") == 0)
            st = mxr_options_add_zone_file(opts, argv[++i]);
        else if (strcmp(argv[i], "--server") == 0)
            st = mxr_options_add_server(opts, argv[++i]);
        else {
            mxr_options_free(opts);
            return usage();
        }
        if (st != MXR_OK) {
            fprintf(stderr, "%s: %s\n", argv[i], mxr_options_errmsg(opts));
            mxr_options_free(opts);
            return 64;
        }
    }
    if (i + 1 < argc) {
        mxr_options_free(opts);
        return usage();
    }
    if (i < argc && strcmp(argv[i], "-") != 0 && !(in = fopen(argv[i], "r"))) {
        perror(argv[i]);
        mxr_options_free(opts);
        return 66;
    }

    lp.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp.epfd < 0) {
        perror("epoll_create1");
        mxr_options_free(opts);
        return 70;
    }
    /* Set before mxr_engine_new: the engine keeps the callback. */
    mxr_options_set_sock_callback(opts, on_sock, &lp);
    st = mxr_engine_new(opts, &lp.engine);
    if (st != MXR_OK) {
        fprintf(stderr, "mxr_engine_new: %s: %s\n", mxr_strerror(st),
                mxr_options_errmsg(opts));
        mxr_options_free(opts);
        close(lp.epfd);
        return 70;
    }
    mxr_options_free(opts);

    double t0 = now_s();
    for (;;) {
        struct epoll_event events[64];
        int n, timeout;

        /* Keep the window full. */
        while (!eof && lp.inflight < (size_t)window) {
            const char *s = next_input(in, &line, &cap);
            if (!s)
                eof = 1;
            else
                start_route(&lp, s);
        }
        if (lp.failed) {
            rc = 70;
            break;
        }
        if (eof && lp.inflight == 0)
            break; /* every route answered */

        /* Sleep until a descriptor is ready or the engine's deadline. */
        timeout = mxr_engine_timeout(lp.engine);
        n = epoll_wait(lp.epfd, events, 64, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_wait");
            rc = 70;
            break;
        }
        if (n == 0) {
            /* Timed out: expire timeouts, deliver ready answers. */
            mxr_engine_process(lp.engine, MXR_NOFD, MXR_NOFD);
            continue;
        }
        for (int k = 0; k < n; k++) {
            int fd = events[k].data.fd;
            uint32_t ev = events[k].events;
            /* An error or a hang-up is for the resolver to see on read. */
            mxr_engine_process(
                lp.engine, ev & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : MXR_NOFD,
                ev & EPOLLOUT ? fd : MXR_NOFD);
        }
    }
    double elapsed = now_s() - t0;

    mxr_stats stats;
    mxr_engine_stats(lp.engine, &stats);
    /* Fires MXR_EDESTROYED for anything still in flight (after an error). */
    mxr_engine_destroy(lp.engine);
    close(lp.epfd);
    if (in != stdin)
        fclose(in);
    free(line);

    unsigned long answered = lp.ok + lp.tempfail + lp.permfail;
    fprintf(stderr,
            "%lu answered (%lu ok, %lu tempfail, %lu permfail), "
            "%lu bad input, %lu errors in %.3f s\n"
            "in flight at most %zu (window %ld); DNS queries %llu sent, "
            "%llu coalesced, %llu cache hits, at most %zu at once; "
            "sockets %lu added, %lu modified, %lu removed\n",
            answered, lp.ok, lp.tempfail, lp.permfail, lp.bad, lp.errors,
            elapsed, lp.inflight_max, window,
            (unsigned long long)stats.queries_sent,
            (unsigned long long)stats.queries_coalesced,
            (unsigned long long)stats.cache_hits, stats.inflight_max,
            lp.fd_adds, lp.fd_mods, lp.fd_dels);
    if (rc == 0 && lp.errors)
        rc = 70;
    return rc;
}
