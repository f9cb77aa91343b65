/* deliver.c -- how a relay delivers one message with libmxroute's own SMTP
 * client, driven by the relay's own epoll(7) loop.
 *
 * Reads the message (RFC 5322 text, any line ends) from standard input,
 * routes every recipient, groups the recipients by their domain (one
 * delivery attempt per domain, as a relay's queue would), and hands each
 * attempt to mxr_send: the library connects to the hops the failover
 * machine hands out, speaks SMTP (EHLO, STARTTLS when offered, MAIL, RCPT,
 * DATA) and follows the machine's decisions. The domains are delivered
 * side by side in one engine. Every event is printed as it happens, then
 * every recipient's state.
 *
 *   deliver --from ADDR --to ADDR [--to ADDR]... [--zone FILE]...
 *           [--server IP[:PORT]]... [--port N] [--allow-loopback]
 *           [--helo NAME] [--timeout MS] < message
 *
 * --from '' sends with the null sender (bounces). --port is the SMTP port
 * of every host (25 by default); --allow-loopback keeps 127.0.0.0/8 and
 * ::1 in plans (tests). --helo names us in EHLO (use the relay's own fully
 * qualified name; "localhost" otherwise). --timeout sets every SMTP
 * stage's timeout (the defaults are RFC 5321's: minutes). With --zone, DNS
 * answers come from zone files and only SMTP uses the network.
 *
 * Output, one line per event, prefixed with the domain:
 *
 *   example.com: hop 1 mx1.example.com 192.0.2.10 port 25: session ended
 *     at connect: refused "Connection refused" -> next-address
 *   example.com: hop 2 mx2.example.com 192.0.2.20 port 25: rcpt
 *     <alice@example.com>: ok 250 2.1.5 "Ok" -> continue
 *   example.com: hop 2 mx2.example.com 192.0.2.20 port 25: session ended
 *     at dot: ok 250 2.0.0 "Ok: queued" -> delivered (1 accepted)
 *   alice@example.com: delivered (mx2.example.com: 250 2.0.0 Ok: queued)
 *
 * (each event on one line), then a summary, and on standard error how many
 * times the socket callback added, modified and removed a descriptor.
 *
 * How the engine is driven (the pattern to copy into an existing loop;
 * routing and SMTP sessions share it):
 *
 *  - mxr_options_set_sock_callback: the engine says when a descriptor
 *    (a DNS socket, or an SMTP connection) starts or stops needing
 *    attention; the callback turns that into EPOLL_CTL_ADD / MOD / DEL.
 *    An SMTP socket is removed ((0, 0)) before the library closes it.
 *  - mxr_engine_timeout: how long epoll_wait may sleep (the nearest SMTP
 *    stage deadline or DNS retry; 0 when work is ready now).
 *  - mxr_engine_process: called for each ready descriptor, and with
 *    MXR_NOFD, MXR_NOFD when the wait timed out (that is how connection
 *    and reply timeouts fire). Route callbacks, send events and send
 *    completions fire from inside it.
 *  - mxr_engine_pending: routes and sends not yet completed; the loop runs
 *    until it is 0.
 *
 * Exit status: 0 every recipient delivered, 75 some deferred (queue them
 * for their retry time), 68 otherwise (some bounced: send a DSN); 64
 * usage, 65 a recipient that is not an address, 70 internal error.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <mxroute.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_RCPTS 64

/* The SMTP stages --timeout sets. */
static const mxr_option smtp_timeouts[] = {
    MXR_OPT_SMTP_CONNECT_MS, MXR_OPT_SMTP_GREETING_MS, MXR_OPT_SMTP_COMMAND_MS,
    MXR_OPT_SMTP_TLS_MS,     MXR_OPT_SMTP_DATA_MS,     MXR_OPT_SMTP_BLOCK_MS,
    MXR_OPT_SMTP_DOT_MS,
};

/* ------------------------------------------------------ the epoll loop */

typedef struct loop {
    int epfd;
    mxr_engine *engine;
    int failed;                              /* an epoll_ctl failed: stop */
    unsigned long fd_adds, fd_mods, fd_dels; /* socket callback calls */
} loop;

/* The engine wants fd watched for reading and/or writing, or (0, 0) no
 * longer. MOD first and ADD on ENOENT: no need to remember which
 * descriptors are registered. */
static void on_sock(void *ud, int fd, int readable, int writable)
{
    loop *lp = ud;
    struct epoll_event ev = {0};

    if (!readable && !writable) {
        /* The resolver may already have closed a DNS socket, which
         * removes it from the epoll set by itself: EBADF and ENOENT are
         * fine. SMTP sockets are still open here. */
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

/* One wait and the processing of what it returned. -1 on an error. */
static int turn(loop *lp)
{
    struct epoll_event events[16];
    int n = epoll_wait(lp->epfd, events, 16, mxr_engine_timeout(lp->engine));

    if (n < 0) {
        if (errno == EINTR)
            return 0;
        perror("epoll_wait");
        return -1;
    }
    if (n == 0) {
        /* Timed out: expire deadlines, run what is ready. */
        mxr_engine_process(lp->engine, MXR_NOFD, MXR_NOFD);
        return 0;
    }
    for (int k = 0; k < n; k++) {
        int fd = events[k].data.fd;
        uint32_t ev = events[k].events;
        /* An error or a hang-up (a refused connection, a reset) is for
         * the engine to see: hand it over as readable. */
        mxr_engine_process(lp->engine,
                           ev & (EPOLLIN | EPOLLERR | EPOLLHUP) ? fd : MXR_NOFD,
                           ev & EPOLLOUT ? fd : MXR_NOFD);
    }
    return 0;
}

/* Run until every route and send started has completed. In a real relay
 * this is the server's main loop, with its own descriptors in the same
 * epoll set; here nothing else happens meanwhile. */
static int run(loop *lp)
{
    while (mxr_engine_pending(lp->engine) > 0)
        if (lp->failed || turn(lp) != 0)
            return -1;
    return lp->failed ? -1 : 0;
}

/* A send completes when its attempt is decided, but a session that ended
 * well has just sent QUIT and still waits for the 221 (the library bounds
 * that wait). A long-running relay just keeps looping; a program about to
 * exit goes on until the engine has nothing left (timeout -1), so that
 * every connection closes politely and leaves the epoll set through the
 * socket callback. */
static int drain(loop *lp)
{
    while (mxr_engine_timeout(lp->engine) >= 0)
        if (lp->failed || turn(lp) != 0)
            return -1;
    return lp->failed ? -1 : 0;
}

/* ------------------------------------------------------------- routing */

typedef struct route_req {
    mxr_status status;
    mxr_plan *plan; /* ours once the callback fired */
} route_req;

static void on_route(void *arg, mxr_status status, mxr_plan *plan)
{
    route_req *rq = arg;
    rq->status = status;
    rq->plan = plan;
}

/* ------------------------------------------------------------ delivery */

/* The recipients of one domain: one plan, one attempt, one mxr_send. */
typedef struct group {
    const char *domain; /* the plan's (normalised) */
    mxr_plan *plan;
    const char *rcpts[MAX_RCPTS];
    size_t n;
    mxr_attempt *attempt;
    bool sent, done;
    mxr_status status; /* of the send, once done */
} group;

static void print_outcome(const mxr_outcome *o)
{
    printf("%s", mxr_class_name(o->cls));
    if (o->code)
        printf(" %d", o->code);
    if (o->enhanced)
        printf(" %s", o->enhanced);
    if (o->text)
        printf(" \"%s\"", o->text);
}

/* Fires from inside mxr_engine_process, as things happen. The pointers in
 * ev are valid during the call only. */
static void on_event(void *arg, const mxr_send_event *ev)
{
    const group *g = arg;
    const mxr_hop *h = ev->hop;
    char addr[MXR_ADDR_STRLEN];

    printf("%s: hop %u %s %s port %u: ", g->domain, h->number, h->host,
           mxr_addr_format(&h->addr, addr, sizeof addr), (unsigned)h->port);
    if (ev->kind == MXR_SEND_EVENT_RCPT) {
        printf("rcpt <%s>: ",
               mxr_attempt_recipient(g->attempt, ev->rcpt)->address);
        print_outcome(ev->outcome);
        printf(" -> %s\n", mxr_action_name(ev->action));
    } else {
        printf("session ended at %s%s: ", mxr_stage_name(ev->outcome->stage),
               ev->tls ? " (tls)" : "");
        print_outcome(ev->outcome);
        printf(" -> %s (%zu accepted)\n", mxr_action_name(ev->action),
               ev->accepted);
    }
    fflush(stdout); /* one line per event, as it happens */
}

/* Fires once per accepted mxr_send: the attempt is over (MXR_OK), or the
 * engine was destroyed first (MXR_EDESTROYED). */
static void on_done(void *arg, mxr_status status, mxr_attempt *attempt)
{
    group *g = arg;
    (void)attempt; /* g->attempt */
    g->done = true;
    g->status = status;
}

static void print_plan(const group *g)
{
    const mxr_plan *p = g->plan;

    printf("%s: plan %s", g->domain, mxr_result_name(p->result));
    if (p->result != MXR_RESULT_OK)
        printf(" (%s)", mxr_reason_name(p->reason));
    for (size_t i = 0; i < p->ncandidates; i++)
        printf("%s %u %s", i ? "," : ":", (unsigned)p->candidates[i].preference,
               p->candidates[i].host);
    printf("; %zu recipient%s\n", g->n, g->n == 1 ? "" : "s");
}

/* --------------------------------------------------------------- input */

/* The whole of standard input; NULL on a read error or out of memory. */
static char *read_message(size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);

    while (buf) {
        n += fread(buf + n, 1, cap - n, stdin);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    if (buf && ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: deliver --from ADDR --to ADDR [--to ADDR]... "
                    "[--zone FILE]...\n"
                    "               [--server IP[:PORT]]... [--port N] "
                    "[--allow-loopback]\n"
                    "               [--helo NAME] [--timeout MS] < message\n");
    return 64;
}

/* Options into opts, recipients into to[]. 0, or the exit status. */
static int parse_args(int argc, char **argv, mxr_options *opts,
                      const char **from, const char **to, size_t *nto)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        mxr_status st = MXR_OK;

        if (strcmp(opt, "--allow-loopback") == 0) {
            mxr_options_set(opts, MXR_OPT_ALLOW_LOOPBACK, 1);
            continue;
        }
        const char *val = argv[++i];
        if (!val)
            return usage();
        if (strcmp(opt, "--from") == 0) {
            *from = val;
        } else if (strcmp(opt, "--to") == 0) {
            if (*nto == MAX_RCPTS) {
                fprintf(stderr, "deliver: at most %d recipients\n", MAX_RCPTS);
                return 64;
            }
            to[(*nto)++] = val;
        } else if (strcmp(opt, "--zone") == 0) {
            st = mxr_options_add_zone_file(opts, val);
        } else if (strcmp(opt, "--server") == 0) {
            st = mxr_options_add_server(opts, val);
        } else if (strcmp(opt, "--port") == 0) {
            st = mxr_options_set(opts, MXR_OPT_PORT, atoll(val));
        } else if (strcmp(opt, "--helo") == 0) {
            st = mxr_options_set_helo(opts, val);
        } else if (strcmp(opt, "--timeout") == 0) {
            for (size_t k = 0; st == MXR_OK &&
                               k < sizeof smtp_timeouts / sizeof *smtp_timeouts;
                 k++)
                st = mxr_options_set(opts, smtp_timeouts[k], atoll(val));
        } else {
            return usage();
        }
        if (st != MXR_OK) {
            fprintf(stderr, "deliver: %s %s: %s\n", opt, val,
                    mxr_options_errmsg(opts)[0] ? mxr_options_errmsg(opts)
                                                : mxr_strerror(st));
            return 64;
        }
    }
    return *from && *nto > 0 ? 0 : usage();
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    const char *from = NULL, *to[MAX_RCPTS];
    size_t nto = 0, ngroups = 0, len = 0;
    route_req routes[MAX_RCPTS] = {{0}};
    group groups[MAX_RCPTS];
    loop lp = {.epfd = -1};
    mxr_options *opts;
    mxr_status st;
    char *msg = NULL;
    int rc;

    if (mxr_options_new(&opts) != MXR_OK)
        return 70;
    if ((rc = parse_args(argc, argv, opts, &from, to, &nto)) != 0) {
        mxr_options_free(opts);
        return rc;
    }
    if (!(msg = read_message(&len))) {
        perror("deliver: standard input");
        mxr_options_free(opts);
        return 70;
    }
    lp.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lp.epfd < 0) {
        perror("epoll_create1");
        mxr_options_free(opts);
        free(msg);
        return 70;
    }
    /* Set before mxr_engine_new: the engine keeps the callback. */
    mxr_options_set_sock_callback(opts, on_sock, &lp);
    st = mxr_engine_new(opts, &lp.engine);
    if (st != MXR_OK) {
        fprintf(stderr, "deliver: mxr_engine_new: %s: %s\n", mxr_strerror(st),
                mxr_options_errmsg(opts));
        mxr_options_free(opts);
        close(lp.epfd);
        free(msg);
        return 70;
    }
    mxr_options_free(opts);

    /* 1. Route every recipient, all at once (the engine coalesces the
     *    lookups of a domain and caches its plan). */
    rc = 0;
    for (size_t i = 0; rc == 0 && i < nto; i++) {
        st = mxr_route(lp.engine, to[i], on_route, &routes[i]);
        if (st != MXR_OK) { /* refused at once: no callback */
            fprintf(stderr, "deliver: %s: %s\n", to[i],
                    st == MXR_EBADNAME ? mxr_engine_errmsg(lp.engine)
                                       : mxr_strerror(st));
            rc = st == MXR_EBADNAME ? 65 : 70;
        }
    }
    if (run(&lp) != 0)
        rc = 70;
    for (size_t i = 0; rc == 0 && i < nto; i++)
        if (routes[i].status != MXR_OK) {
            fprintf(stderr, "deliver: %s: %s\n", to[i],
                    mxr_strerror(routes[i].status));
            rc = 70;
        }

    /* 2. Group by the plan's domain (normalised: "Example.COM" and
     *    "example.com" are one group), keeping the first plan of each.
     *    After a routing error nothing is grouped, so nothing is sent. */
    for (size_t i = 0; rc == 0 && i < nto; i++) {
        group *g = NULL;
        for (size_t k = 0; !g && k < ngroups; k++)
            if (strcmp(groups[k].domain, routes[i].plan->domain) == 0)
                g = &groups[k];
        if (!g) {
            g = &groups[ngroups++];
            *g = (group){.domain = routes[i].plan->domain,
                         .plan = routes[i].plan};
            routes[i].plan = NULL; /* the group's now */
        }
        g->rcpts[g->n++] = to[i];
    }
    for (size_t k = 0; k < ngroups; k++)
        print_plan(&groups[k]);

    /* 3. One attempt per domain, all sent side by side. An attempt copies
     *    its plan and recipients; a failed plan gives an attempt that is
     *    already over (every recipient deferred or bounced with the
     *    routing reason), which mxr_send completes without connecting. */
    for (size_t k = 0; k < ngroups; k++) {
        group *g = &groups[k];
        mxr_message m = {
            .sender = from, .recipients = g->rcpts, .nrecipients = g->n};
        st = mxr_attempt_new(lp.engine, g->plan, &m, &g->attempt);
        if (st == MXR_OK)
            st = mxr_send(lp.engine, g->attempt, msg, len, 0, on_event, on_done,
                          g);
        if (st != MXR_OK) {
            /* MXR_EINVAL: an address with control characters or too long.
             * The other domains still go. */
            fprintf(stderr, "deliver: %s: %s\n", g->domain,
                    mxr_engine_errmsg(lp.engine)[0]
                        ? mxr_engine_errmsg(lp.engine)
                        : mxr_strerror(st));
            rc = st == MXR_EINVAL ? 65 : 70;
            continue;
        }
        g->sent = true;
    }
    fflush(stdout);
    if (run(&lp) != 0 || drain(&lp) != 0)
        rc = 70;

    /* 4. Every recipient of a completed attempt is now delivered, bounced
     *    or deferred. */
    size_t delivered = 0, bounced = 0, deferred = 0;
    uint64_t now = mxr_engine_now(lp.engine);
    for (size_t k = 0; k < ngroups; k++) {
        const group *g = &groups[k];
        if (!g->sent || !g->done || g->status != MXR_OK) {
            if (g->sent && rc == 0)
                rc = 70;
            continue;
        }
        for (size_t i = 0; i < mxr_attempt_nrecipients(g->attempt); i++) {
            const mxr_rcpt *r = mxr_attempt_recipient(g->attempt, i);
            printf("%s: %s", r->address, mxr_rcpt_state_name(r->state));
            if (r->state == MXR_RCPT_DEFERRED) {
                deferred++;
                printf(", retry in %llu s",
                       (unsigned long long)(r->retry_at_ms > now
                                                ? (r->retry_at_ms - now) / 1000
                                                : 0));
            } else if (r->state == MXR_RCPT_DELIVERED) {
                delivered++;
            } else {
                bounced++;
            }
            /* The reply that decided it, and the host that gave it. */
            printf(" (%s:", r->host ? r->host : "-");
            if (r->code)
                printf(" %d", r->code);
            if (r->enhanced)
                printf(" %s", r->enhanced);
            printf(" %s)\n", r->text ? r->text : "");
        }
    }
    if (ngroups > 0)
        printf("%zu delivered, %zu bounced, %zu deferred\n", delivered, bounced,
               deferred);
    fprintf(stderr, "sockets %lu added, %lu modified, %lu removed\n",
            lp.fd_adds, lp.fd_mods, lp.fd_dels);

    /* Attempts are freed before their engine. But a send still pending
     * (only after an epoll error here) must keep its attempt until its
     * callback fires, and the engine fires it (MXR_EDESTROYED) only when
     * destroyed: then the engine goes first, and the attempts are left to
     * the exit (they cannot be freed without their engine). */
    if (mxr_engine_pending(lp.engine) > 0) {
        mxr_engine_destroy(lp.engine);
        lp.engine = NULL;
    }
    for (size_t k = 0; k < ngroups; k++) {
        if (lp.engine)
            mxr_attempt_free(groups[k].attempt);
        mxr_plan_free(groups[k].plan);
    }
    for (size_t i = 0; i < nto; i++)
        mxr_plan_free(routes[i].plan);
    if (lp.engine)
        mxr_engine_destroy(lp.engine);
    close(lp.epfd);
    free(msg);
    if (rc != 0)
        return rc;
    return deferred ? 75 : bounced ? 68 : 0;
}
