/* serve.h -- `mxroute serve`: the daemon's pieces. The protocol parsers
 * and reply formatters (serve_socketmap.c, serve_json.c, serve_exim.c)
 * are pure
 * functions over byte buffers, unit-tested in tests/unit/cli/; the
 * connections (serve_conn.c) and the command (cmd_serve.c) drive them
 * from the engine's loop, through the public API only. */
#ifndef MXR_CLI_SERVE_H
#define MXR_CLI_SERVE_H

#include "mxroute.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Postfix's socketmap client refuses a reply longer than this
 * (socketmap_table(5): 100000 bytes of netstring data). */
#define SM_MAX_REPLY 100000

typedef enum serve_proto {
    PROTO_SOCKETMAP,
    PROTO_JSON,
    PROTO_EXIM,   /* Exim's ${readsocket}: a domain a connection */
    PROTO_METRICS /* HTTP: the listener is libmicrohttpd's (serve_http.c) */
} serve_proto;

/* The protocols that carry requests (counted by the metrics). */
#define SERVE_NPROTO 3

/* --------------------------------------------------------- socketmap */

typedef enum sm_parse_rc {
    SM_MORE = 0, /* not a whole netstring yet */
    SM_REQUEST,  /* one request: name and key point into the buffer */
    SM_BAD       /* malformed: *why says how; close after the reply */
} sm_parse_rc;

typedef struct sm_request {
    const char *name; /* the map name, NUL-free, name_len bytes */
    size_t name_len;
    const char *key; /* the key, NUL-free, key_len bytes */
    size_t key_len;
    size_t used; /* bytes of the buffer the netstring took */
} sm_request;

/* Parse one netstring request "LEN:NAME KEY," at the start of buf (len
 * bytes), whose data may be at most max bytes. A length over max is SM_BAD
 * as soon as its digits show it, without waiting for the data. */
sm_parse_rc sm_parse(const char *buf, size_t len, size_t max, sm_request *out,
                     const char **why);

/* The domain a Postfix key stands for, lower-cased into out (size
 * bytes): after the last '@' of an address, the key itself otherwise,
 * without a trailing dot. false when the key names no domain we answer
 * for ("*", ".parent" lookups, empty, NUL bytes, too long). */
bool sm_key_domain(const char *key, size_t key_len, char *out, size_t size);

/* Domain list of --domains: "example.com" matches that domain,
 * ".example.com" its subdomains (transport(5)). NULL list: everything. */
bool serve_domain_listed(const char *list, const char *domain);

/* --label-transport LABEL=SERVICE: a candidate labelled LABEL (by a
 * policy) is delivered by the master.cf service SERVICE. */
#define SM_MAX_LABELS 32
typedef struct sm_label_transport {
    const char *label; /* label_len bytes: points into "LABEL=SERVICE" */
    size_t label_len;
    const char *transport;
} sm_label_transport;

typedef struct sm_transports {
    const char *fallback; /* --transport: unlabelled or unmapped */
    const sm_label_transport *map;
    size_t nmap;
} sm_transports;

/* The service for a candidate's label (NULL: none): the last mapping of
 * that label, or the fallback. */
const char *sm_transport_of(const sm_transports *t, const char *label);

/* The reply data (not yet a netstring) for a routing result, at most
 * max bytes (max >= 32) written to out with its NUL; returns its length.
 * A plan: "OK TRANSPORT:[addr]:port, [addr]:port, ..." cut at a whole
 * next hop, TRANSPORT the first candidate's service and the hops those of
 * the candidates with that same service (Postfix takes one transport for
 * a list); a permanent failure "OK error:5.X.Y reason"; a temporary one
 * "TEMP reason". */
size_t sm_format_result(char *out, size_t max, const sm_transports *t,
                        mxr_status st, const mxr_plan *p, const char *err);

/* Every address of every candidate, in plan order, each "[addr]:port",
 * sep between them, written at out + at (out holds max bytes); a hop
 * that would not fit is left out with the rest. With t, only the
 * candidates whose service (sm_transport_of) is the first candidate's.
 * Returns the new length; *nhops counts the hops written. */
size_t serve_put_hops(char *out, size_t at, size_t max, const char *sep,
                      const mxr_plan *p, const sm_transports *t, size_t *nhops);

/* The enhanced status code (RFC 3463) of a permanent routing failure. */
const char *sm_perm_code(mxr_reason r);

/* "LEN:DATA," into out (size >= len + 12); returns its length. */
size_t sm_netstring(char *out, size_t size, const char *data, size_t len);

/* ------------------------------------------------------------- json */

typedef enum js_op {
    JS_ROUTE,
    JS_STATS,
    JS_OUTCOME,
    JS_HEALTH,
    JS_RELOAD,
    JS_ERROR
} js_op;

/* One request line (without its newline). On JS_ROUTE *input is a
 * malloc'ed copy of "input"; on JS_ERROR *why says what was wrong. *id is
 * the request's "id" (a new reference, or NULL when there was none). */
js_op js_parse(const char *line, size_t len, void **id, char **input,
               const char **why);
/* Response lines, each malloc'ed and ending in '\n' (NULL: no memory).
 * They take the id reference. */
char *js_route_reply(void *id, const char *input, mxr_status st,
                     const mxr_plan *p, const char *err);
char *js_stats_reply(void *id, const mxr_stats *s, size_t clients,
                     uint64_t reloads_ok, uint64_t reloads_failed);
/* {"reload":"ok"}, or {"reload":"failed","error":why} when why is not
 * NULL. */
char *js_reload_reply(void *id, const char *why);
char *js_error_reply(void *id, const char *why);
/* {"input":..., "status":"notfound"}: outside --domains. */
char *js_notfound_reply(void *id, const char *input);

/* What an outcome or health request names: a host, an address or both
 * (health: exactly one), and for outcome how the connection went. */
typedef struct js_host_req {
    char host[256]; /* "" when absent */
    bool has_addr;
    mxr_addr addr;
    mxr_outcome outcome; /* its strings point into enhanced and text */
    char enhanced[16];
    char text[256]; /* cut to fit: only logged */
} js_host_req;

/* The fields of an outcome or health request line (js_parse said which
 * op): false with *why when one is missing, of the wrong type or out of
 * range. */
bool js_host_parse(const char *line, size_t len, js_op op, js_host_req *out,
                   const char **why);
/* What the health memory knows of q's host (or address), at engine time
 * now: {"host"|"addr":..., "down":..., "failures":..., "down_for_ms":...,
 * "last_failure_ago_ms":...}, plus "recorded":true for an outcome. */
char *js_health_reply(void *id, const js_host_req *q, const mxr_health *h,
                      uint64_t now, bool recorded);

/* ------------------------------------------------------------- exim */

/* Reply lines of the exim protocol (Exim's ${readsocket}), written to out
 * (max >= 64 bytes) with their newline and NUL; each returns its length.
 *   a plan               action=route hosts=<;[addr]:port;[addr]:port
 *                        (Exim's host-list syntax, cut at a whole hop)
 *   a permanent failure  action=fail message="5.X.Y REASON: ..."
 *   a temporary one      action=defer message="REASON: ..."
 *   an invalid name      action=decline message="invalid-name: ..." */
size_t ex_format_result(char *out, size_t max, mxr_status st, const mxr_plan *p,
                        const char *err);
/* action=ACTION message="PREFIXMESSAGE": the value quoted and escaped
 * for ${extract}, control bytes made '?'. */
size_t ex_format_message(char *out, size_t max, const char *action,
                         const char *prefix, const char *message);

/* ---------------------------------------------------------- metrics */

/* The "map" label of a request: the socketmap map name (transport, or
 * one we do not serve), the JSON op; none when the request was too
 * malformed to name one. Fixed values: a client cannot make new series. */
typedef enum serve_map {
    MAP_NONE,
    MAP_TRANSPORT,
    MAP_OTHER,
    MAP_ROUTE,
    MAP_STATS,
    MAP_OUTCOME,
    MAP_HEALTH,
    MAP_RELOAD,
    MAP_N
} serve_map;

/* The "result" label: what the reply said. */
typedef enum serve_result {
    RES_OK,       /* next hops (json: status ok; the stats answer) */
    RES_NOTFOUND, /* not answered for: outside --domains, no domain */
    RES_TEMP,     /* a temporary failure: Postfix defers */
    RES_PERM,     /* a permanent failure: null MX, NXDOMAIN, ... */
    RES_INVALID,  /* json: the input is no domain or address */
    RES_ERROR,    /* a bad request (PERM, json "error") or engine error */
    RES_DROPPED,  /* the client left before its answer */
    RES_N
} serve_result;

/* Upper bounds of the latency histogram, in ns (+Inf after them). */
#define SERVE_LATENCY_BUCKETS 16

/* The daemon's own counters (the engine's are in mxr_stats). */
typedef struct serve_tally {
    uint64_t requests[SERVE_NPROTO][MAP_N][RES_N]; /* [proto][map][result] */
    uint64_t latency[SERVE_NPROTO][SERVE_LATENCY_BUCKETS + 1]; /* +Inf last */
    uint64_t latency_ns[SERVE_NPROTO];                         /* their sum */
    int64_t started;                                           /* unix time */
} serve_tally;

/* What a scrape shows, gathered from the server at scrape time. */
typedef struct serve_snapshot {
    mxr_stats engine; /* counters: live engine + retired; gauges: live */
    const serve_tally *tally;
    size_t clients[SERVE_NPROTO]; /* connected, by protocol */
    size_t http_clients;          /* connected to the metrics listeners */
    uint64_t refused;             /* --max-clients */
    uint64_t reloads_ok, reloads_failed;
} serve_snapshot;

/* The result of a socketmap reply, from its data ("OK error:..." is a
 * permanent failure); of a JSON route answer, from the routing result. */
serve_result serve_sm_result(const char *data);
serve_result serve_js_result(mxr_status st, const mxr_plan *p);
/* The result of an exim reply line, from its action. */
serve_result serve_ex_result(const char *line);
/* Count one request: its answer is made (or the client left), ns after
 * it was parsed. */
void serve_tally_request(serve_tally *t, serve_proto proto, serve_map map,
                         serve_result res, uint64_t ns);
/* Counters of retired engines added to a live one's (gauges untouched). */
void serve_stats_add(mxr_stats *to, const mxr_stats *from);
/* The Prometheus text exposition (format 0.0.4) of a snapshot, malloc'ed
 * (*len bytes, NUL-terminated); NULL when out of memory. */
char *serve_metrics_render(const serve_snapshot *s, size_t *len);
/* label="value" with the value escaped (\, ", \n) into out. */
void serve_metrics_label(FILE *out, const char *name, const char *value);
uint64_t serve_now_ns(void);

/* ------------------------------------------------------- the daemon */

typedef struct serve_cfg {
    size_t max_clients;  /* connections at once (all listeners) */
    size_t max_request;  /* bytes of one request (netstring data, line) */
    size_t max_pipeline; /* requests in flight per client */
    size_t max_output;   /* bytes waiting for a client to read */
    int idle_ms;         /* an idle client is closed after this */
    int drain_ms;        /* at SIGTERM, time left for requests in flight */
    const char *domains; /* --domains, or NULL */
    const char *transport;
    sm_label_transport labels[SM_MAX_LABELS]; /* --label-transport */
    size_t nlabels;
    int socket_mode; /* --socket-mode, or -1: the umask decides */
    int log_level;   /* SERVE_LOG_*: lines above it are dropped */
    bool log_syslog; /* --log syslog */
} serve_cfg;

/* Levels of --log-level, and of the engine's log (0 info, 1 warning,
 * 2 error) once mapped. */
enum { SERVE_LOG_ERROR, SERVE_LOG_WARNING, SERVE_LOG_INFO };

/* What a watched descriptor is: the first member of its fd_ud. */
typedef enum serve_kind {
    KIND_SIGNAL,
    KIND_LISTENER,
    KIND_CONN,
    KIND_HTTP,    /* a metrics listener's libmicrohttpd epoll descriptor */
    KIND_RETIRING /* a retiring engine's epoll set (serve_reload.c) */
} serve_kind;

struct serve_http;

typedef struct serve_listener {
    serve_kind kind;
    int fd;
    serve_proto proto;
    char *spec;              /* as given, for messages */
    char *unix_path;         /* a socket file we created, removed at exit */
    uint64_t paused_until;   /* out of descriptors: not watched until then */
    struct serve_http *http; /* metrics: the HTTP daemon that owns fd */
} serve_listener;

struct serve_conn;

/* One request: its reply is written when every request before it on the
 * connection has been. It outlives a connection closed under it (conn
 * NULL): the route callback still owes it, and frees it then. */
typedef struct serve_req {
    struct serve_req *next;
    struct serve_conn *conn;
    bool done;
    char *reply; /* the bytes to send (a netstring, a JSON line) */
    size_t len;
    void *id;            /* json: the request's "id" (a jansson reference) */
    char *input;         /* what was routed */
    uint64_t parsed_ns;  /* when the request was parsed (metrics) */
    serve_map map;       /* its labels */
    serve_result result; /* json: set before the reply is made */
    bool reload;         /* json: waits for the reload it asked for */
} serve_req;

typedef struct server server;

typedef struct serve_conn {
    serve_kind kind;
    struct serve_conn *prev, *next;
    server *srv;
    int fd;
    serve_proto proto;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    serve_req *head, *tail;
    size_t inflight;  /* requests not yet moved to out */
    uint64_t touched; /* ms of the last byte read or written */
    bool closing;     /* a PERM reply is the last: close once it is sent */
    bool eof;         /* the client closed its side */
    int want;
} serve_conn;

/* An engine a reload replaced: it answers the requests it took, driven
 * from the daemon's loop (serve_reload.c), then it is destroyed. */
typedef struct serve_retiring {
    serve_kind kind; /* KIND_RETIRING: the fd_ud of epfd */
    struct serve_retiring *next;
    mxr_engine *engine;
    int epfd;      /* an epoll set of the engine's descriptors */
    mxr_sock *fds; /* what epfd holds, as the engine last listed them */
    size_t nfds, cap;
    uint64_t deadline; /* destroyed then, requests or not */
} serve_retiring;

struct serve_args;

struct server {
    serve_kind kind; /* KIND_SIGNAL: the signalfd's fd_ud */
    mxr_engine *engine;
    mxr_io *io;
    serve_cfg cfg;
    serve_listener *ls;
    size_t nls;
    serve_conn *conns;
    size_t nconns;
    serve_conn *dead; /* closed in this round, freed after it */
    int sigfd;
    bool stop;
    bool draining;
    uint64_t requests, refused;
    uint64_t expire_at; /* serve_expire: no client is due before this */
    serve_tally tally;
    /* reloads (serve_reload.c) */
    int argc; /* the command line, read again with the --config file */
    char **argv;
    const char *user, *pidfile; /* as started: they need a restart */
    struct serve_args *args;    /* a reload's: cfg's strings point into it */
    bool reload_asked;          /* SIGHUP or a json reload since the round */
    size_t reload_waiting;      /* json reload requests waiting */
    serve_retiring *retiring;
    mxr_stats retired_stats; /* counters of the engines destroyed */
    uint64_t reloads_ok, reloads_failed;
};

uint64_t serve_now_ms(void);
/* The daemon's log: its own lines and the policies' messages go through
 * serve_log_line, to stderr ("mxroute serve: [warning: |error: ]...") or
 * to syslog (LOG_MAIL, ident mxroute, with the pid), those above
 * --log-level dropped. serve_log is an info line. */
void serve_log_line(const server *srv, int level, const char *msg);
void serve_log_at(const server *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void serve_log(const server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An mxr_log_fn for the engine (ud: the server). */
void serve_engine_log(void *ud, int level, const char *msg);

/* -------------------------------------------------- the --config file */

struct option;

/* The arguments to parse: the file's lines as "--name=value" (argv[1]
 * to argv[nfile]; where[i] is "FILE:LINE" of argv[i + 1]), then the
 * command line's argv[1..]. */
typedef struct serve_args {
    char **argv;
    int argc;
    char **where;
    size_t nfile;
} serve_args;

/* path NULL: the command line only. 0, or an exit code (said): 66 the
 * file cannot be read, 78 a line that names no option of opts (or
 * config, check-config, help), or lacks or has a value it must not. */
int serve_args_build(serve_args *a, const char *path, const struct option *opts,
                     int argc, char **argv);
void serve_args_free(serve_args *a);

/* ------------------------------------------------------------ reloads */

/* The daemon's I/O source (cmd_serve.c): a reload moves it to the new
 * engine. */
extern const mxr_io_ops serve_io_ops;

/* What a reload reads (serve_reread): the settings that take effect at
 * once, and the engine built from the options. */
typedef struct serve_reading {
    serve_cfg cfg;
    serve_args *args; /* cfg's strings point into it */
    mxr_engine *engine;
    char restart[128]; /* options changed that need a restart, or "" */
} serve_reading;

/* Read the --config file and the command line again, as a start does,
 * and build a new engine (zones, policies) from them. 0, or an exit code
 * with the reason said through cli_error (cli_capture_errors). */
int serve_reread(server *srv, serve_reading *out);

/* Between two rounds of the loop (outside every engine's callbacks): a
 * reload asked for since the last call, then the retiring engines whose
 * requests are all answered (or whose time is up) destroyed. */
void serve_between_rounds(server *srv);
/* Watch every descriptor of the daemon in srv->io again, with what it
 * waits for now: after srv->io moved to another engine. A new kind of
 * descriptor (an HTTP server's) adds its line here. */
mxr_status serve_rewatch(server *srv);
/* The loop's part in the retiring engines: ms until one needs a round
 * (-1: none), a round for the one whose epoll set is ready, and a round
 * for each whose timers are due. */
int serve_retiring_timeout(server *srv);
void serve_retiring_ready(serve_retiring *r);
void serve_retiring_due(server *srv);
/* At exit: every retiring engine destroyed (its requests answered with
 * MXR_EDESTROYED). */
void serve_retire_all(server *srv);
/* The statistics of every engine of the run: counters summed over the
 * live, the retiring and the destroyed engines (they never go back), the
 * live and retiring engines' gauges summed. */
void serve_stats(const server *srv, mxr_stats *out);
/* A json reload request waits (r->reload): answered by
 * serve_reload_answer, why NULL when the reload worked. */
void serve_reload_answer(server *srv, const char *why);

/* sd_notify(3) when the daemon was started by systemd (NOTIFY_SOCKET),
 * nothing otherwise or when built without libsystemd. */
void serve_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A new client (non-blocking fd): watched, or refused with one error
 * reply and closed when there are max_clients already. */
void serve_accept(server *srv, serve_listener *l, int fd);
void serve_conn_event(serve_conn *c, bool readable, bool writable);
/* Close idle clients; ms until the next deadline, or -1. */
int serve_expire(server *srv, uint64_t now);
/* Stop reading from every client: each is closed once its replies are
 * out. */
void serve_drain(server *srv);
void serve_conn_close(serve_conn *c, const char *why);
/* Free the connections closed since the last call. */
void serve_reap(server *srv);

/* ------------------------------------------- the metrics listeners */

/* Hand a metrics listener's bound socket to a libmicrohttpd daemon run
 * from the engine's loop (no thread) and watch its epoll descriptor.
 * 0, or an exit code (said). */
int serve_http_start(server *srv, serve_listener *l);
/* Stop it: its connections and the listening socket are closed. */
void serve_http_stop(server *srv, serve_listener *l);
/* Run the daemons: h the one whose descriptor is ready (or NULL); the
 * others when their timeout is due. */
void serve_http_run(server *srv, struct serve_http *h);
/* ms until a daemon must run, or -1. */
int serve_http_timeout(const server *srv);
/* Watch every metrics descriptor again in srv->io (a reload moved the
 * source to a new engine). */
mxr_status serve_metrics_rewatch(server *srv);

#endif
