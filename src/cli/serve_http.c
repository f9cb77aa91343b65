/* serve_http.c -- the metrics listeners of `mxroute serve`: libmicrohttpd
 * serves HTTP on the socket the daemon bound (MHD_OPTION_LISTEN_SOCKET),
 * without a thread of its own. MHD_USE_EPOLL gathers its sockets under
 * one epoll descriptor, watched in the daemon's I/O source; the source
 * runs MHD_run when that descriptor is readable or MHD_get_timeout is
 * due. Bounded: a few connections at once (past them a new one is closed
 * at once: refused, never queued), each closed after --idle-timeout
 * idle, a small memory pool each (request headers beyond it are
 * refused), only GET and HEAD of /metrics. A scrape reads the
 * engine the server has now (srv->engine): a reload never leaves a
 * stale pointer here. */
#include "serve.h"

#include "cli.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_MAX_CONNECTIONS 16 /* per metrics listener */
/* libmicrohttpd's own limit, never reached: at it libmicrohttpd stops
 * accepting (new clients would wait in the backlog) and, run from an
 * outside loop, would listen again only at its next run. */
#define HTTP_MHD_LIMIT (HTTP_MAX_CONNECTIONS + 1)
#define HTTP_MEMORY_LIMIT 16384 /* bytes per connection: headers, buffers */

struct serve_http {
    serve_kind kind; /* KIND_HTTP: the epoll descriptor's fd_ud */
    server *srv;
    serve_listener *l;
    struct MHD_Daemon *d;
    int epfd;
    unsigned connections; /* open now */
    uint64_t refused;     /* past HTTP_MAX_CONNECTIONS */
    uint64_t messages;    /* libmicrohttpd's log lines, every 100th shown */
};

/* --------------------------------------------------------- the scrape */

static size_t http_clients(const server *srv)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->nls; i++)
        n += srv->ls[i].http ? srv->ls[i].http->connections : 0;
    return n;
}

static char *scrape(const server *srv, size_t *len)
{
    serve_snapshot s = {.tally = &srv->tally,
                        .refused = srv->refused,
                        .reloads_ok = srv->reloads_ok,
                        .reloads_failed = srv->reloads_failed,
                        .http_clients = http_clients(srv)};
    serve_stats(srv, &s.engine);
    for (const serve_conn *c = srv->conns; c; c = c->next)
        if (c->proto < SERVE_NPROTO)
            s.clients[c->proto]++;
    return serve_metrics_render(&s, len);
}

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned code,
                                    const char *text, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_metrics(server *srv, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = scrape(srv, &len);
    if (!text)
        return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "out of memory\n", NULL);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* Answered on the first call, with the headers: a body is never read
 * (libmicrohttpd closes the connection instead of reading it). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_len, void **req_cls)
{
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)req_cls;
    if (strcmp(url, "/metrics") != 0)
        return reply_static(conn, MHD_HTTP_NOT_FOUND,
                            "not found: the metrics are at /metrics\n", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "method not allowed: GET or HEAD\n", "GET, HEAD");
    return reply_metrics(cls, conn);
}

/* ---------------------------------------------------------- the daemon */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct serve_http *h = cls;
    if (h->messages++ % 100 != 0) /* a flood repeats itself */
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
        msg[--n] = '\0';
    serve_log_at(h->srv, SERVE_LOG_WARNING, "%s: %s", h->l->spec, msg);
}

/* A client past the limit is closed at once: it learns now, instead of
 * waiting in the backlog for a slot. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr,
                                 socklen_t len)
{
    (void)addr;
    (void)len;
    struct serve_http *h = cls;
    if (h->connections < HTTP_MAX_CONNECTIONS)
        return MHD_YES;
    if (h->refused++ % 100 == 0)
        serve_log_at(h->srv, SERVE_LOG_WARNING,
                     "%s: too many HTTP connections (%d): refused", h->l->spec,
                     HTTP_MAX_CONNECTIONS);
    return MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_ctx,
                          enum MHD_ConnectionNotificationCode what)
{
    (void)conn;
    (void)socket_ctx;
    struct serve_http *h = cls;
    if (what == MHD_CONNECTION_NOTIFY_STARTED)
        h->connections++;
    else if (h->connections > 0)
        h->connections--;
}

static bool watch_epoll(server *srv, struct serve_http *h)
{
    if (mxr_io_watch(srv->io, h->epfd, MXR_WANT_READ, h) == MXR_OK)
        return true;
    serve_log_at(srv, SERVE_LOG_ERROR, "%s: %s", h->l->spec,
                 mxr_engine_errmsg(srv->engine));
    return false;
}

int serve_http_start(server *srv, serve_listener *l)
{
    struct serve_http *h = calloc(1, sizeof *h);
    if (!h) {
        cli_error("--listen %s: out of memory", l->spec);
        return EXIT_SOFTWARE;
    }
    *h = (struct serve_http){.kind = KIND_HTTP, .srv = srv, .l = l};
    unsigned idle_s = (unsigned)(srv->cfg.idle_ms / 1000);
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, on_accept, h, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)l->fd, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MHD_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s ? idle_s : 1u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY_LIMIT,
        MHD_OPTION_END);
    const union MHD_DaemonInfo *di =
        h->d ? MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (!di) {
        cli_error("--listen %s: libmicrohttpd could not start", l->spec);
        if (h->d) {
            MHD_stop_daemon(h->d); /* it closed the socket */
            l->fd = -1;
        }
        free(h);
        return EXIT_SOFTWARE;
    }
    h->epfd = di->epoll_fd;
    l->http = h;
    return watch_epoll(srv, h) ? 0 : EXIT_SOFTWARE;
}

void serve_http_stop(server *srv, serve_listener *l)
{
    struct serve_http *h = l->http;
    if (!h)
        return;
    if (srv->io)
        (void)mxr_io_watch(srv->io, h->epfd, 0, NULL);
    MHD_stop_daemon(h->d); /* closes l->fd too */
    l->fd = -1;
    l->http = NULL;
    free(h);
}

/* Whether libmicrohttpd wants to run within ms from now (ms may be NULL). */
static bool due(struct serve_http *h, int *ms)
{
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (MHD_get_timeout(h->d, &t) != MHD_YES)
        return false;
    if (ms)
        *ms = t > 60000 ? 60000 : (int)t;
    return t == 0;
}

/* Out of descriptors, libmicrohttpd stops listening too; a run that
 * closes connections frees them, but it listens again only from the
 * start of a run, and nothing else may come to start one. */
static void run_daemon(struct serve_http *h)
{
    unsigned before = h->connections;
    MHD_run(h->d);
    if (h->connections < before)
        MHD_run(h->d);
}

void serve_http_run(server *srv, struct serve_http *ready)
{
    for (size_t i = 0; i < srv->nls; i++) {
        struct serve_http *h = srv->ls[i].http;
        if (h && (h == ready || due(h, NULL)))
            run_daemon(h);
    }
}

int serve_http_timeout(const server *srv)
{
    int next = -1;
    for (size_t i = 0; i < srv->nls; i++) {
        int ms = -1;
        struct serve_http *h = srv->ls[i].http;
        if (h)
            due(h, &ms);
        if (ms >= 0 && (next < 0 || ms < next))
            next = ms;
    }
    return next;
}

mxr_status serve_metrics_rewatch(server *srv)
{
    mxr_status st = MXR_OK;
    for (size_t i = 0; st == MXR_OK && i < srv->nls; i++)
        if (srv->ls[i].http)
            st = mxr_io_watch(srv->io, srv->ls[i].http->epfd, MXR_WANT_READ,
                              srv->ls[i].http);
    return st;
}
