/* serve_reload.c -- reloading `mxroute serve` (SIGHUP, the json "reload"
 * request). The options are read again and a new engine is built from
 * them (serve_reread: zones and policies load there); if anything fails
 * the running engine stays and the log says why. Otherwise new requests
 * go to the new engine at once, and the old one retires: it keeps the
 * requests it took and answers them from the daemon's loop, then it is
 * destroyed. The swap and the destruction happen between two rounds of
 * the loop, never inside an engine's callbacks.
 *
 * A retiring engine is driven without polling: its descriptors are kept
 * in an epoll set of its own, whose one descriptor the daemon's I/O
 * source watches beside the clients; a ready set hands each ready
 * descriptor to mxr_engine_process, and the source's timeout includes
 * the retiring engines' timeouts, so their timers run on time. */
#include "cli.h"
#include "serve.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* A bound on a retiring engine's life: its own timeouts (DNS, policy
 * budgets) end every request well before this. */
#define RETIRE_MAX_MS 60000

/* --------------------------------------- the retiring engines' descriptors */

static bool listed(const mxr_sock *s, size_t n, int fd)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].fd == fd)
            return true;
    return false;
}

static void epoll_set(int epfd, int fd, int want)
{
    struct epoll_event ev = {.events = (want & MXR_WANT_READ ? EPOLLIN : 0u) |
                                       (want & MXR_WANT_WRITE ? EPOLLOUT : 0u),
                             .data.fd = fd};
    /* a descriptor closed and opened again left the set when it closed */
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
        (void)epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* The epoll set made to hold what the engine watches now. Out of memory,
 * it stays as it was until the next round (the engine's timers still run
 * through serve_retiring_due). */
static void retiring_sync(serve_retiring *r)
{
    size_t n = mxr_engine_fds(r->engine, NULL, 0);
    mxr_sock *now = n ? malloc(n * sizeof *now) : NULL;
    if (n && !now)
        return;
    n = mxr_engine_fds(r->engine, now, n);
    for (size_t i = 0; i < r->nfds; i++)
        if (!listed(now, n, r->fds[i].fd))
            (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->fds[i].fd, NULL);
    for (size_t i = 0; i < n; i++)
        epoll_set(r->epfd, now[i].fd, now[i].want);
    free(r->fds);
    r->fds = now;
    r->nfds = n;
}

void serve_retiring_ready(serve_retiring *r)
{
    struct epoll_event ev[32];
    int n = epoll_wait(r->epfd, ev, 32, 0);
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        bool rd = ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP);
        bool wr = ev[i].events & EPOLLOUT;
        mxr_engine_process(r->engine, rd ? fd : MXR_NOFD, wr ? fd : MXR_NOFD);
    }
    retiring_sync(r);
}

void serve_retiring_due(server *srv)
{
    for (serve_retiring *r = srv->retiring; r; r = r->next) {
        if (mxr_engine_timeout(r->engine) != 0)
            continue;
        mxr_engine_process(r->engine, MXR_NOFD, MXR_NOFD);
        retiring_sync(r);
    }
}

static int earliest(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int serve_retiring_timeout(server *srv)
{
    int ms = -1;
    uint64_t now = serve_now_ms();
    for (serve_retiring *r = srv->retiring; r; r = r->next) {
        ms = earliest(ms, mxr_engine_timeout(r->engine));
        ms = earliest(ms, r->deadline > now ? (int)(r->deadline - now) : 0);
    }
    return ms;
}

/* --------------------------------------------------------- statistics */

/* The counters (serve_stats_add), and the highest inflight_max. */
static void add_counters(mxr_stats *sum, const mxr_stats *s)
{
    serve_stats_add(sum, s);
    if (s->inflight_max > sum->inflight_max)
        sum->inflight_max = s->inflight_max;
}

static void add_gauges(mxr_stats *sum, const mxr_stats *s)
{
    sum->cache_entries += s->cache_entries;
    sum->cache_bytes += s->cache_bytes;
    sum->inflight += s->inflight;
    sum->bytes_allocated += s->bytes_allocated;
}

void serve_stats(const server *srv, mxr_stats *out)
{
    mxr_engine_stats(srv->engine, out);
    add_counters(out, &srv->retired_stats);
    for (const serve_retiring *r = srv->retiring; r; r = r->next) {
        mxr_stats s;
        mxr_engine_stats(r->engine, &s);
        add_counters(out, &s);
        add_gauges(out, &s);
    }
}

/* ------------------------------------------------------ retiring engines */

static serve_retiring *retiring_new(mxr_engine *engine)
{
    serve_retiring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->kind = KIND_RETIRING;
    r->engine = engine;
    r->deadline = serve_now_ms() + RETIRE_MAX_MS;
    if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* The entry, not its engine. */
static void retiring_free(server *srv, serve_retiring *r)
{
    if (srv->io)
        (void)mxr_io_watch(srv->io, r->epfd, 0, NULL);
    close(r->epfd);
    free(r->fds);
    free(r);
}

static void retire_end(server *srv, serve_retiring *r)
{
    size_t left = mxr_engine_pending(r->engine);
    if (left)
        serve_log_at(srv, SERVE_LOG_WARNING,
                     "a replaced configuration still had %zu request(s) "
                     "after %d s: they are answered as failed",
                     left, RETIRE_MAX_MS / 1000);
    mxr_stats s;
    mxr_engine_stats(r->engine, &s);
    add_counters(&srv->retired_stats, &s);
    mxr_engine_destroy(r->engine); /* answers what is left */
    retiring_free(srv, r);
}

/* The retiring engines done (or all of them), destroyed. */
static void collect(server *srv, bool all)
{
    uint64_t now = serve_now_ms();
    for (serve_retiring **pp = &srv->retiring; *pp;) {
        serve_retiring *r = *pp;
        if (all || mxr_engine_pending(r->engine) == 0 || now >= r->deadline) {
            *pp = r->next;
            retire_end(srv, r);
        } else {
            pp = &r->next;
        }
    }
}

void serve_retire_all(server *srv)
{
    collect(srv, true);
}

/* ------------------------------------------------------------ the swap */

mxr_status serve_rewatch(server *srv)
{
    mxr_io *io = srv->io;
    mxr_status st = mxr_io_watch(io, srv->sigfd, MXR_WANT_READ, srv);
    for (size_t i = 0; st == MXR_OK && i < srv->nls; i++) {
        serve_listener *l = &srv->ls[i];
        /* a metrics listener's socket is libmicrohttpd's: its epoll
         * descriptor is watched instead (serve_metrics_rewatch) */
        if (l->fd >= 0 && !l->paused_until && !l->http)
            st = mxr_io_watch(io, l->fd, MXR_WANT_READ, l);
    }
    if (st == MXR_OK)
        st = serve_metrics_rewatch(srv);
    for (serve_conn *c = srv->conns; st == MXR_OK && c; c = c->next)
        if (c->want)
            st = mxr_io_watch(io, c->fd, c->want, c);
    for (serve_retiring *r = srv->retiring; st == MXR_OK && r; r = r->next)
        st = mxr_io_watch(io, r->epfd, MXR_WANT_READ, r);
    return st;
}

/* The running engine retires, next takes its place and the daemon's
 * descriptors. On failure nothing changed. */
static mxr_status switch_engine(server *srv, mxr_engine *next)
{
    serve_retiring *r = retiring_new(srv->engine);
    if (!r)
        return MXR_ENOMEM;
    r->next = srv->retiring;
    srv->retiring = r;
    mxr_io *old = srv->io, *io = NULL;
    mxr_status st = mxr_engine_add_io(next, &serve_io_ops, srv, &io);
    if (st == MXR_OK) {
        srv->io = io;
        st = serve_rewatch(srv);
    }
    if (st != MXR_OK) {
        if (io)
            mxr_io_remove(io);
        srv->io = old;
        srv->retiring = r->next;
        retiring_free(srv, r);
        return st;
    }
    mxr_io_remove(old);
    srv->engine = next;
    retiring_sync(r);
    return MXR_OK;
}

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u +
           (unsigned long long)ts.tv_nsec / 1000u;
}

static void reload_failed(server *srv, const char *why)
{
    srv->reloads_failed++;
    serve_log_at(srv, SERVE_LOG_ERROR,
                 "reload failed, the running configuration stays: %s", why);
    serve_reload_answer(srv, why);
    serve_notify("READY=1\nSTATUS=serving; the last reload failed: %s", why);
}

static void reload(server *srv)
{
    serve_notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
                 monotonic_usec());
    char why[1024];
    serve_reading next;
    cli_capture_errors(why, sizeof why);
    int rc = serve_reread(srv, &next);
    cli_capture_errors(NULL, 0);
    if (rc != 0) {
        reload_failed(srv, why[0] ? why : "the options cannot be read");
        return;
    }
    if (switch_engine(srv, next.engine) != MXR_OK) {
        mxr_engine_destroy(next.engine);
        serve_args_free(next.args);
        free(next.args);
        reload_failed(srv, "out of memory while moving the daemon's "
                           "descriptors to the new engine");
        return;
    }
    srv->cfg = next.cfg;
    srv->expire_at = 0; /* a shorter --idle-timeout may be due sooner */
    if (srv->args) {
        serve_args_free(srv->args);
        free(srv->args);
    }
    srv->args = next.args;
    srv->reloads_ok++;
    if (next.restart[0])
        serve_log_at(srv, SERVE_LOG_WARNING,
                     "reload: changed options need a restart and keep their "
                     "running values:%s",
                     next.restart);
    serve_log(srv, "reloaded: new requests use the new configuration");
    serve_reload_answer(srv, NULL);
    serve_notify("READY=1\nSTATUS=serving; reloaded");
}

void serve_between_rounds(server *srv)
{
    if (srv->reload_asked) {
        srv->reload_asked = false;
        if (srv->stop)
            serve_reload_answer(srv, "the daemon is stopping");
        else
            reload(srv);
    }
    collect(srv, false);
}
