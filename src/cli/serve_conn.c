/* serve_conn.c -- one client of `mxroute serve`: its input buffer (at
 * most one request and a little), its FIFO of requests (answered in
 * order, at most max_pipeline in flight: past it the client is not read
 * until replies drain), its output buffer (bounded: a client that does
 * not read is closed, it cannot grow memory or block others) and its
 * idle deadline. Every descriptor is non-blocking and watched through
 * the command's one I/O source (cmd_serve.c). */
#include "serve.h"

#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

uint64_t serve_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void serve_log_line(const server *srv, int level, const char *msg)
{
    static const char *const tags[] = {"error: ", "warning: ", ""};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO};
    if (level < SERVE_LOG_ERROR)
        level = SERVE_LOG_ERROR;
    if (level > SERVE_LOG_INFO)
        level = SERVE_LOG_INFO;
    if (level > srv->cfg.log_level)
        return;
    if (srv->cfg.log_syslog) {
        syslog(prio[level], "%s%s", tags[level], msg);
        return;
    }
    fflush(stdout);
    fprintf(stderr, "%s: %s%s\n", cli_prog(), tags[level], msg);
}

static void vlog(const server *srv, int level, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    serve_log_line(srv, level, msg);
}

void serve_log_at(const server *srv, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(srv, level, fmt, ap);
    va_end(ap);
}

void serve_log(const server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(srv, SERVE_LOG_INFO, fmt, ap);
    va_end(ap);
}

/* The engine's levels: 0 info, 1 warning, 2 error. */
void serve_engine_log(void *ud, int level, const char *msg)
{
    serve_log_line(ud,
                   level >= 2   ? SERVE_LOG_ERROR
                   : level == 1 ? SERVE_LOG_WARNING
                                : SERVE_LOG_INFO,
                   msg);
}

static void req_free(serve_req *r)
{
    free(r->reply);
    free(r->input);
    json_decref(r->id);
    free(r);
}

/* One request counted for the metrics: answered, or its client gone. */
static void req_count(server *srv, serve_proto proto, serve_req *r)
{
    serve_tally_request(&srv->tally, proto, r->map, r->result,
                        serve_now_ns() - r->parsed_ns);
}

/* The reply as the protocol frames it: a netstring, or the line as is.
 * A socketmap reply's result is what it says; a JSON one's was set. */
static void req_set_reply(serve_req *r, serve_proto proto, char *text)
{
    if (proto == PROTO_SOCKETMAP)
        r->result = serve_sm_result(text);
    else if (proto == PROTO_EXIM)
        r->result = serve_ex_result(text);
    req_count(r->conn->srv, proto, r);
    if (!text) {
        r->reply = NULL;
        r->len = 0;
    } else if (proto == PROTO_SOCKETMAP) {
        size_t n = strlen(text);
        r->reply = malloc(n + 16);
        r->len = r->reply ? sm_netstring(r->reply, n + 16, text, n) : 0;
        free(text);
    } else {
        r->reply = text;
        r->len = strlen(text);
    }
    r->done = true;
}

static char *sm_text(const char *fmt, const char *arg)
{
    size_t n = strlen(fmt) + (arg ? strlen(arg) : 0) + 1;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, fmt, arg ? arg : "");
    return t;
}

static void watch(serve_conn *c);
static void flush(serve_conn *c);

/* The reply text of a routing result in the connection's protocol, at
 * most max bytes (NULL: no memory); takes the request's JSON id. The
 * socketmap and exim lines are formatted in one buffer for the whole
 * daemon (it has one thread), then copied at their size: not 100 kB per
 * reply. */
static char *route_reply(serve_conn *c, serve_req *r, size_t max, mxr_status st,
                         const mxr_plan *plan, const char *err)
{
    if (c->proto == PROTO_JSON) {
        void *id = r->id;
        r->id = NULL;
        r->result = serve_js_result(st, plan);
        return js_route_reply(id, r->input, st, plan, err);
    }
    static char text[SM_MAX_REPLY + 1];
    const serve_cfg *g = &c->srv->cfg;
    sm_transports tp = {g->transport, g->labels, g->nlabels};
    size_t lim = (max < SM_MAX_REPLY ? max : SM_MAX_REPLY) + 1;
    size_t n = c->proto == PROTO_EXIM
                   ? ex_format_result(text, lim, st, plan, err)
                   : sm_format_result(text, lim, &tp, st, plan, err);
    return strndup(text, n);
}

static void on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    serve_req *r = arg;
    serve_conn *c = r->conn;
    if (!c) { /* the client went away */
        mxr_plan_free(plan);
        req_free(r);
        return;
    }
    const char *err = st == MXR_OK ? NULL : mxr_strerror(st);
    if (plan) /* outcomes reported since (JSON "outcome") reorder it */
        mxr_engine_order_by_health(c->srv->engine, plan);
    req_set_reply(r, c->proto, route_reply(c, r, SM_MAX_REPLY, st, plan, err));
    mxr_plan_free(plan);
    flush(c);
}

static serve_req *req_push(serve_conn *c)
{
    serve_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->parsed_ns = serve_now_ns();
    r->result = RES_ERROR; /* json: until the answer says otherwise */
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->inflight++;
    c->srv->requests++;
    return r;
}

/* Route input for r; the reply comes from on_route, or now when the
 * engine refuses it. */
static void start_route(serve_conn *c, serve_req *r, const char *input)
{
    mxr_status st = mxr_route(c->srv->engine, input, on_route, r);
    if (st == MXR_OK)
        return;
    const char *err = mxr_engine_errmsg(c->srv->engine);
    req_set_reply(r, c->proto, route_reply(c, r, 511, st, NULL, err));
}

/* An outcome or health request: the reply, at once. An outcome goes to
 * the host-health memory, which orders later plans. */
static char *host_request(serve_conn *c, serve_req *r, js_op op,
                          const char *line, size_t len, void *id)
{
    js_host_req q;
    const char *why;
    if (!js_host_parse(line, len, op, &q, &why))
        return js_error_reply(id, why);
    mxr_engine *e = c->srv->engine;
    const char *host = q.host[0] ? q.host : NULL;
    const mxr_addr *addr = q.has_addr ? &q.addr : NULL;
    mxr_status st = MXR_OK;
    if (op == JS_OUTCOME)
        st = mxr_engine_report(e, host, addr, &q.outcome);
    mxr_health h;
    if (st == MXR_OK)
        st = mxr_engine_health(e, host, host ? NULL : addr, &h);
    if (st != MXR_OK)
        return js_error_reply(id, mxr_engine_errmsg(e));
    r->result = RES_OK;
    return js_health_reply(id, &q, &h, mxr_engine_now(e), op == JS_OUTCOME);
}

/* ------------------------------------------------------------ parsing */

#define IN_SLACK 16 /* the input buffer: a request and netstring "LEN:" ',' */

/* --max-request as it was when the client came: a reload that changes it
 * does not outgrow the input buffer of a client already connected. */
static size_t max_request(const serve_conn *c)
{
    return c->in_cap - IN_SLACK;
}

static bool sm_step(serve_conn *c)
{
    sm_request q;
    const char *why = NULL;
    sm_parse_rc rc = sm_parse(c->in, c->in_len, max_request(c), &q, &why);
    if (rc == SM_MORE)
        return false;
    serve_req *r = req_push(c);
    if (!r) {
        serve_conn_close(c, "out of memory");
        return false;
    }
    if (rc == SM_BAD) {
        serve_log(c->srv, "client sent a malformed request: %s", why);
        req_set_reply(r, c->proto, sm_text("PERM %s", why));
        c->closing = true;
        return false;
    }
    r->map = MAP_TRANSPORT;
    if (q.name_len != 9 || memcmp(q.name, "transport", 9) != 0) {
        r->map = MAP_OTHER;
        serve_log(c->srv, "client asked an unknown map");
        req_set_reply(
            r, c->proto,
            sm_text("PERM unknown map name (only 'transport')", NULL));
        c->closing = true;
        return false;
    }
    char domain[256];
    if (!sm_key_domain(q.key, q.key_len, domain, sizeof domain) ||
        !serve_domain_listed(c->srv->cfg.domains, domain)) {
        req_set_reply(r, c->proto, sm_text("NOTFOUND ", NULL));
    } else if (!(r->input = strdup(domain))) {
        req_set_reply(r, c->proto, sm_text("TEMP out of memory", NULL));
    } else {
        start_route(c, r, r->input);
    }
    memmove(c->in, c->in + q.used, c->in_len - q.used);
    c->in_len -= q.used;
    return true;
}

static bool js_step(serve_conn *c)
{
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl) {
        if (c->in_len <= max_request(c))
            return false;
        serve_req *r = req_push(c);
        if (r)
            req_set_reply(r, c->proto,
                          js_error_reply(NULL, "request line too long"));
        serve_log(c->srv, "client sent a line over --max-request");
        c->closing = true;
        return false;
    }
    size_t used = (size_t)(nl - c->in) + 1, n = used - 1;
    if (n > 0 && c->in[n - 1] == '\r')
        n--;
    size_t a = 0;
    while (a < n && (c->in[a] == ' ' || c->in[a] == '\t'))
        a++;
    if (a < n) {
        serve_req *r = req_push(c);
        if (!r) {
            serve_conn_close(c, "out of memory");
            return false;
        }
        void *id = NULL;
        const char *why = NULL;
        js_op op = js_parse(c->in + a, n - a, &id, &r->input, &why);
        r->map = op == JS_ROUTE     ? MAP_ROUTE
                 : op == JS_STATS   ? MAP_STATS
                 : op == JS_OUTCOME ? MAP_OUTCOME
                 : op == JS_HEALTH  ? MAP_HEALTH
                 : op == JS_RELOAD  ? MAP_RELOAD
                                    : MAP_NONE;
        char domain[256];
        if (op == JS_ROUTE && c->srv->cfg.domains &&
            (!sm_key_domain(r->input, strlen(r->input), domain,
                            sizeof domain) ||
             !serve_domain_listed(c->srv->cfg.domains, domain))) {
            r->result = RES_NOTFOUND;
            req_set_reply(r, c->proto, js_notfound_reply(id, r->input));
        } else if (op == JS_ROUTE) {
            r->id = id;
            start_route(c, r, r->input);
        } else if (op == JS_STATS) {
            server *srv = c->srv;
            mxr_stats s;
            serve_stats(srv, &s);
            r->result = RES_OK;
            req_set_reply(r, c->proto,
                          js_stats_reply(id, &s, srv->nconns, srv->reloads_ok,
                                         srv->reloads_failed));
        } else if (op == JS_OUTCOME || op == JS_HEALTH) {
            req_set_reply(r, c->proto,
                          host_request(c, r, op, c->in + a, n - a, id));
        } else if (op == JS_RELOAD) {
            r->id = id; /* answered by serve_reload_answer */
            r->reload = true;
            c->srv->reload_waiting++;
            c->srv->reload_asked = true;
        } else {
            req_set_reply(r, c->proto, js_error_reply(id, why));
        }
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    return true;
}

/* A reload the client asked for: what it sent after waits for it. */
static bool awaits_reload(const serve_conn *c)
{
    return c->tail && c->tail->reload && !c->tail->done;
}

/* A reply line of the exim protocol (NULL: no memory). */
static char *ex_text(const char *action, const char *message)
{
    size_t max = strlen(message) * 2 + 64;
    char *t = malloc(max);
    if (t)
        ex_format_message(t, max, action, NULL, message);
    return t;
}

/* The exim protocol: one request line per connection, whose reply is the
 * last (Exim's ${readsocket} reads until the daemon closes). */
static bool ex_step(serve_conn *c)
{
    char *nl = memchr(c->in, '\n', c->in_len);
    if (!nl && c->in_len <= max_request(c))
        return false;
    serve_req *r = req_push(c);
    if (!r) {
        serve_conn_close(c, "out of memory");
        return false;
    }
    c->closing = true;
    r->map = MAP_NONE;
    if (!nl) {
        serve_log(c->srv, "client sent a line over --max-request");
        req_set_reply(r, c->proto, ex_text("defer", "request line too long"));
        return false;
    }
    size_t a = 0, n = (size_t)(nl - c->in);
    while (n > 0 && (c->in[n - 1] == '\r' || c->in[n - 1] == ' '))
        n--;
    while (a < n && c->in[a] == ' ')
        a++;
    char domain[256];
    bool named = sm_key_domain(c->in + a, n - a, domain, sizeof domain);
    if (named)
        r->map = MAP_ROUTE;
    if (!named)
        req_set_reply(r, c->proto,
                      ex_text("defer", "bad request: not a domain or an "
                                       "address"));
    else if (!serve_domain_listed(c->srv->cfg.domains, domain))
        req_set_reply(r, c->proto, ex_text("decline", "not in --domains"));
    else if (!(r->input = strdup(domain)))
        req_set_reply(r, c->proto, ex_text("defer", "out of memory"));
    else
        start_route(c, r, r->input);
    c->in_len = 0;
    return false;
}

static void parse(serve_conn *c)
{
    while (c->fd >= 0 && !c->closing && c->in_len > 0 &&
           c->inflight < c->srv->cfg.max_pipeline && !awaits_reload(c) &&
           (c->proto == PROTO_SOCKETMAP ? sm_step(c)
            : c->proto == PROTO_JSON    ? js_step(c)
                                        : ex_step(c)))
        ;
}

/* ------------------------------------------------------------ output */

/* Finished replies from the head of the FIFO into the output buffer, then
 * as much of it to the socket as it takes. */
static void flush(serve_conn *c)
{
    while (c->head && c->head->done) {
        serve_req *r = c->head;
        size_t pending = c->out_len - c->out_off;
        if (!r->reply) {
            serve_conn_close(c, "out of memory");
            return;
        }
        if (pending + r->len > c->srv->cfg.max_output) {
            serve_conn_close(c, "the client does not read its replies "
                                "(--max-output)");
            return;
        }
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, pending);
            c->out_len = pending;
            c->out_off = 0;
        }
        char *o = realloc(c->out, c->out_len + r->len);
        if (!o) {
            serve_conn_close(c, "out of memory");
            return;
        }
        c->out = o;
        memcpy(c->out + c->out_len, r->reply, r->len);
        c->out_len += r->len;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->inflight--;
        req_free(r);
    }
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            serve_conn_close(c, NULL); /* the client went away */
            return;
        }
        c->out_off += (size_t)n;
        c->touched = serve_now_ms();
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if ((c->closing || c->eof) && !c->head && c->out_len == 0) {
        serve_conn_close(c, NULL);
        return;
    }
    /* a reply drained: the pipeline may take what is buffered */
    size_t before = c->inflight;
    parse(c);
    if (c->fd < 0)
        return;
    if (c->inflight != before && c->head && c->head->done) {
        flush(c); /* replies made at once (NOTFOUND, errors) */
        return;
    }
    watch(c);
}

static void watch(serve_conn *c)
{
    bool can_read = !c->closing && !c->eof && !c->srv->draining &&
                    c->inflight < c->srv->cfg.max_pipeline &&
                    !awaits_reload(c) && c->in_len < c->in_cap;
    int want = (can_read ? MXR_WANT_READ : 0) |
               (c->out_off < c->out_len ? MXR_WANT_WRITE : 0);
    if (want == c->want)
        return;
    if (mxr_io_watch(c->srv->io, c->fd, want, c) != MXR_OK) {
        serve_conn_close(c, "cannot watch the connection (out of memory)");
        return;
    }
    c->want = want;
}

/* At the client's end of file: a last line without its newline is a
 * request all the same (`printf '%s' DOMAIN | nc`, an Exim readsocket
 * request without "\n"); a partial netstring is dropped. */
static void end_last_line(serve_conn *c)
{
    if (c->proto != PROTO_SOCKETMAP && c->in_len > 0 && c->in_len < c->in_cap)
        c->in[c->in_len++] = '\n';
    else
        c->in_len = 0;
}

static void do_read(serve_conn *c)
{
    if (c->in_len >= c->in_cap)
        return;
    ssize_t n =
        recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        serve_conn_close(c, NULL);
        return;
    }
    if (n == 0) {
        c->eof = true;
        end_last_line(c);
        return;
    }
    c->in_len += (size_t)n;
    c->touched = serve_now_ms();
}

void serve_conn_event(serve_conn *c, bool readable, bool writable)
{
    if (readable) {
        do_read(c);
        if (c->fd < 0)
            return;
        parse(c);
        if (c->fd < 0)
            return;
    }
    flush(c);
}

/* ------------------------------------------------------- life and death */

void serve_conn_close(serve_conn *c, const char *why)
{
    server *srv = c->srv;
    if (c->fd < 0)
        return;
    if (why)
        serve_log(srv, "client closed: %s", why);
    if (c->want)
        mxr_io_watch(srv->io, c->fd, 0, NULL);
    close(c->fd);
    c->fd = -1;
    for (serve_req *r = c->head, *next; r; r = next) {
        next = r->next;
        if (r->reload && !r->done)
            srv->reload_waiting--;
        if (r->done || r->reload) {
            req_free(r);
            continue;
        }
        r->result = RES_DROPPED;
        req_count(srv, c->proto, r);
        r->conn = NULL; /* on_route frees it */
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->head = c->tail = NULL;
    /* callers up the stack still look at c->fd: freed by serve_reap */
    c->prev = NULL;
    c->next = srv->dead;
    srv->dead = c;
}

void serve_reap(server *srv)
{
    while (srv->dead) {
        serve_conn *c = srv->dead;
        srv->dead = c->next;
        free(c);
    }
}

/* One reply and the door: too many clients. Best effort, never waiting:
 * the socket is new, its buffer empty. */
static void refuse(server *srv, serve_listener *l, int fd)
{
    static const char sm[] = "21:PERM too many clients,";
    static const char js[] = "{\"id\":null,\"error\":\"too many clients\"}\n";
    static const char ex[] = "action=defer message=\"too many clients\"\n";
    const char *m = l->proto == PROTO_SOCKETMAP ? sm
                    : l->proto == PROTO_JSON    ? js
                                                : ex;
    ssize_t w = send(fd, m, strlen(m), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    close(fd);
    if (srv->refused++ % 100 == 0)
        serve_log(srv, "%s: too many clients (--max-clients %zu): refused",
                  l->spec, srv->cfg.max_clients);
}

void serve_accept(server *srv, serve_listener *l, int fd)
{
    if (srv->nconns >= srv->cfg.max_clients) {
        refuse(srv, l, fd);
        return;
    }
    serve_conn *c = calloc(1, sizeof *c);
    size_t cap = srv->cfg.max_request + IN_SLACK;
    if (c)
        c->in = malloc(cap);
    if (!c || !c->in) {
        free(c);
        close(fd);
        serve_log(srv, "out of memory: client refused");
        return;
    }
    c->kind = KIND_CONN;
    c->srv = srv;
    c->fd = fd;
    c->proto = l->proto;
    c->in_cap = cap;
    c->touched = serve_now_ms();
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    watch(c);
}

int serve_expire(server *srv, uint64_t now)
{
    /* No deadline is before the earliest the last walk saw: a byte moved
     * only pushes a client's deadline later, and a new client's is a
     * whole --idle-timeout away. So the walk over every client runs once
     * per deadline, not once per event. */
    if (now < srv->expire_at)
        return (int)(srv->expire_at - now);
    int next = -1;
    for (serve_conn *c = srv->conns, *n; c; c = n) {
        n = c->next;
        bool busy = c->head && !c->head->done; /* routing: DNS has bounds */
        if (busy)
            continue;
        uint64_t due = c->touched + (uint64_t)srv->cfg.idle_ms;
        if (now >= due) {
            serve_conn_close(c, c->out_len ? "the client does not read "
                                             "(--idle-timeout)"
                                           : NULL);
            continue;
        }
        int ms = (int)(due - now);
        if (next < 0 || ms < next)
            next = ms;
    }
    /* all busy (or none): walk again next time */
    srv->expire_at = next < 0 ? 0 : now + (uint64_t)next;
    return next;
}

void serve_reload_answer(server *srv, const char *why)
{
    for (serve_conn *c = srv->conns, *n; c && srv->reload_waiting; c = n) {
        n = c->next;
        bool any = false;
        for (serve_req *r = c->head; r; r = r->next) {
            if (!r->reload || r->done)
                continue;
            void *id = r->id;
            r->id = NULL;
            r->result = why ? RES_ERROR : RES_OK;
            req_set_reply(r, c->proto, js_reload_reply(id, why));
            srv->reload_waiting--;
            any = true;
        }
        if (any)
            flush(c);
    }
}

void serve_drain(server *srv)
{
    srv->draining = true;
    for (serve_conn *c = srv->conns, *n; c; c = n) {
        n = c->next;
        c->eof = true;
        flush(c);
    }
}
