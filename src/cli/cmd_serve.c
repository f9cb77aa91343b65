/* cmd_serve.c -- `mxroute serve`: a daemon that answers routing questions
 * on sockets (the Postfix socketmap protocol, JSON Lines, Exim's
 * ${readsocket}) and serves its metrics over HTTP, in the foreground. The
 * listeners, the clients, the metrics listeners' epoll descriptors and a
 * signalfd are descriptors of one I/O source in the engine's own loop
 * (mxr_engine_add_io); the loop is mxr_engine_run_once until SIGTERM or
 * SIGINT. Then: stop accepting, let requests in flight finish (at most
 * --drain seconds), remove the unix sockets created, exit 0. */
#define _GNU_SOURCE /* accept4 */
#include "cli.h"
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_LISTEN 16

enum {
    OPT_LISTEN = 0x400,
    OPT_DOMAINS,
    OPT_TRANSPORT,
    OPT_MAX_CLIENTS,
    OPT_MAX_REQUEST,
    OPT_MAX_PIPELINE,
    OPT_MAX_OUTPUT,
    OPT_IDLE_TIMEOUT,
    OPT_DRAIN,
    OPT_PIDFILE,
    OPT_QUIET,
    OPT_CONFIG,
    OPT_CHECK_CONFIG,
    OPT_USER,
    OPT_LOG,
    OPT_LOG_LEVEL,
    OPT_LABEL_TRANSPORT,
    OPT_SOCKET_MODE
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mxroute serve [options] --listen PROTO:ADDR...\n\n"
            "Answer routing questions on sockets, in the foreground, until "
            "SIGTERM or\nSIGINT; SIGHUP reloads the configuration. PROTO: "
            "socketmap (Postfix\nsocketmap_table(5), map name 'transport'), "
            "json (JSON Lines), exim (Exim\n${readsocket}: a domain a "
            "connection), or metrics (Prometheus text over HTTP:\nGET "
            "/metrics). ADDR: unix:/path or inet:HOST:PORT (IPv6: "
            "inet:[::1]:PORT).\n\n"
            "serve options:\n"
            "  --listen PROTO:ADDR  a socket to serve (repeatable, up to %d)\n"
            "  --domains LIST       answer only for these domains "
            "(comma-separated;\n"
            "                       .example.com: its subdomains); others are "
            "not found\n"
            "  --transport NAME     the Postfix transport in socketmap replies "
            "(default smtp)\n"
            "  --label-transport LABEL=NAME  candidates a policy labelled "
            "LABEL go to\n"
            "                       the master.cf service NAME (repeatable)\n"
            "  --max-clients N      clients at once (default 256)\n"
            "  --max-request BYTES  one request (default 8192)\n"
            "  --max-pipeline N     requests in flight per client (default "
            "64)\n"
            "  --max-output BYTES   replies waiting for a client to read "
            "(default 1048576)\n"
            "  --idle-timeout S     close a client idle this long (default "
            "60)\n"
            "  --drain S            at SIGTERM, time for requests in flight "
            "(default 5)\n"
            "  --socket-mode MODE   octal mode of the unix sockets (default: "
            "the umask's)\n"
            "  --pidfile FILE       write the process id there\n"
            "  --config FILE        read options from FILE, one a line: "
            "'name value'\n"
            "                       or 'name' (the command line overrides "
            "it)\n"
            "  --check-config       check the options, zones and policies, "
            "then exit\n"
            "                       (0 valid, 78 not)\n"
            "  --user USER          once listening, run as USER\n"
            "  --log stderr|syslog  where the log goes (default stderr)\n"
            "  --log-level error|warning|info  (default info)\n"
            "  --quiet              log errors only (--log-level error)\n",
            MAX_LISTEN);
    cli_engine_usage(out);
    fprintf(out,
            "\nexit status: 0 stopped by SIGTERM/SIGINT, 64 usage, 66 "
            "unreadable input file,\n67 no such --user, 70 internal error (a "
            "socket that cannot be opened,\n...), 77 cannot switch to "
            "--user, 78 a bad --config file line or\n--check-config "
            "found a problem.\n");
}

/* ------------------------------------------------------------ sockets */

static int fail_listen(serve_listener *l, const char *what, int fd)
{
    cli_error("--listen %s: %s: %s", l->spec, what, strerror(errno));
    if (fd >= 0)
        close(fd);
    return EXIT_SOFTWARE;
}

static int listen_unix(serve_listener *l, const char *path, int mode)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path[0] || strlen(path) >= sizeof sa.sun_path) {
        cli_error("--listen %s: the socket path is empty or too long", l->spec);
        return EXIT_USAGE;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_listen(l, "socket", -1);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* a socket file left by a daemon that died: take it over, unless
         * someone still answers on it */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool alive = probe >= 0 &&
                     connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (alive) {
            errno = EADDRINUSE;
            return fail_listen(l, "another process listens there", fd);
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return fail_listen(l, "bind", fd);
    l->unix_path = strdup(path);
    if (mode >= 0 && chmod(path, (mode_t)mode) != 0)
        return fail_listen(l, "chmod", fd);
    if (listen(fd, 128) != 0)
        return fail_listen(l, "listen", fd);
    l->fd = fd;
    return 0;
}

static int listen_inet(serve_listener *l, const char *hostport)
{
    char host[256];
    const char *port;
    if (hostport[0] == '[') {
        const char *e = strchr(hostport, ']');
        if (!e || e[1] != ':' || (size_t)(e - hostport) >= sizeof host)
            return cli_usage_error("--listen %s: not inet:[IPV6]:PORT",
                                   l->spec);
        memcpy(host, hostport + 1, (size_t)(e - hostport - 1));
        host[e - hostport - 1] = '\0';
        port = e + 2;
    } else {
        const char *c = strrchr(hostport, ':');
        if (!c || (size_t)(c - hostport) >= sizeof host ||
            strchr(hostport, ':') != c)
            return cli_usage_error("--listen %s: not inet:HOST:PORT", l->spec);
        memcpy(host, hostport, (size_t)(c - hostport));
        host[c - hostport] = '\0';
        port = c + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return cli_usage_error("--listen %s: bad port '%s'", l->spec, port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        cli_error("--listen %s: %s", l->spec, gai_strerror(gai));
        return EXIT_USAGE;
    }
    int fd =
        socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return fail_listen(l, "socket", -1);
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int rc = bind(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0)
        return fail_listen(l, "bind", fd);
    if (listen(fd, 128) != 0)
        return fail_listen(l, "listen", fd);
    l->fd = fd;
    return 0;
}

/* PROTO:unix:/path or PROTO:inet:HOST:PORT */
static int parse_listen(serve_listener *l, const char *arg)
{
    l->kind = KIND_LISTENER;
    l->fd = -1;
    l->spec = strdup(arg);
    const char *addr;
    if (strncmp(arg, "socketmap:", 10) == 0) {
        l->proto = PROTO_SOCKETMAP;
        addr = arg + 10;
    } else if (strncmp(arg, "json:", 5) == 0) {
        l->proto = PROTO_JSON;
        addr = arg + 5;
    } else if (strncmp(arg, "exim:", 5) == 0) {
        l->proto = PROTO_EXIM;
        addr = arg + 5;
    } else if (strncmp(arg, "metrics:", 8) == 0) {
        l->proto = PROTO_METRICS;
        addr = arg + 8;
    } else {
        return cli_usage_error("--listen %s: PROTO must be socketmap, json, "
                               "exim or metrics",
                               arg);
    }
    if (strncmp(addr, "unix:", 5) == 0)
        return 0;
    if (strncmp(addr, "inet:", 5) == 0)
        return 0;
    return cli_usage_error("--listen %s: ADDR must be unix:/PATH or "
                           "inet:HOST:PORT",
                           arg);
}

static int open_listener(serve_listener *l, int mode)
{
    const char *addr = strchr(l->spec, ':') + 1;
    return strncmp(addr, "unix:", 5) == 0 ? listen_unix(l, addr + 5, mode)
                                          : listen_inet(l, addr + 5);
}

/* ------------------------------------------------------ the I/O source */

#define ACCEPT_PAUSE_MS 200 /* out of descriptors: try again after this */

/* Out of descriptors (or memory), a pending connection stays pending and
 * the listener stays readable: stop watching it for a while instead of
 * spinning on accept. */
static void pause_listener(server *srv, serve_listener *l)
{
    serve_log_at(srv, SERVE_LOG_WARNING,
                 "%s: accept: %s; not accepting for %d ms", l->spec,
                 strerror(errno), ACCEPT_PAUSE_MS);
    l->paused_until = serve_now_ms() + ACCEPT_PAUSE_MS;
    (void)mxr_io_watch(srv->io, l->fd, 0, NULL);
}

/* Watch paused listeners again once their pause is over; the ms until the
 * next one is due, or -1. */
static int resume_listeners(server *srv, uint64_t now)
{
    int next = -1;
    for (size_t i = 0; i < srv->nls; i++) {
        serve_listener *l = &srv->ls[i];
        if (!l->paused_until || srv->stop)
            continue;
        if (now >= l->paused_until) {
            l->paused_until = 0;
            (void)mxr_io_watch(srv->io, l->fd, MXR_WANT_READ, l);
            continue;
        }
        int ms = (int)(l->paused_until - now);
        if (next < 0 || ms < next)
            next = ms;
    }
    return next;
}

static void accept_some(server *srv, serve_listener *l)
{
    for (int i = 0; i < 64 && !srv->stop; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                pause_listener(srv, l);
            else if (errno != EAGAIN && errno != EWOULDBLOCK &&
                     errno != EINTR && errno != ECONNABORTED)
                serve_log_at(srv, SERVE_LOG_WARNING, "%s: accept: %s", l->spec,
                             strerror(errno));
            return;
        }
        serve_accept(srv, l, fd);
    }
}

static void read_signals(server *srv)
{
    struct signalfd_siginfo si;
    while (read(srv->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            serve_log(srv, "signal %u: reloading", (unsigned)si.ssi_signo);
            srv->reload_asked = true; /* done between two rounds */
            continue;
        }
        if (!srv->stop)
            serve_log(srv, "signal %u: stopping", (unsigned)si.ssi_signo);
        srv->stop = true;
    }
}

static void src_process(void *ud, int fd, void *fd_ud, bool readable,
                        bool writable)
{
    server *srv = ud;
    if (fd_ud) {
        serve_kind kind = *(serve_kind *)fd_ud;
        if (kind == KIND_SIGNAL)
            read_signals(srv);
        else if (kind == KIND_LISTENER)
            accept_some(srv, fd_ud);
        else if (kind == KIND_RETIRING)
            serve_retiring_ready(fd_ud);
        else if (kind == KIND_CONN)
            serve_conn_event(fd_ud, readable, writable);
    }
    serve_http_run(srv,
                   fd_ud && *(serve_kind *)fd_ud == KIND_HTTP ? fd_ud : NULL);
    serve_retiring_due(srv);
    uint64_t now = serve_now_ms();
    serve_expire(srv, now);
    resume_listeners(srv, now);
    serve_reap(srv);
}

static int earliest(int a, int b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

static int src_timeout(void *ud, int max_ms)
{
    server *srv = ud;
    uint64_t now = serve_now_ms();
    int ms = earliest(serve_expire(srv, now), resume_listeners(srv, now));
    ms = earliest(ms, serve_http_timeout(srv));
    ms = earliest(ms, serve_retiring_timeout(srv));
    if (srv->reload_asked) /* asked from a callback: the loop must not wait */
        ms = 0;
    serve_reap(srv);
    return ms < 0 || ms > max_ms ? (max_ms >= 0 ? max_ms : ms) : ms;
}

const mxr_io_ops serve_io_ops = {
    .timeout = src_timeout,
    .process = src_process,
    .shutdown = NULL,
};

/* ------------------------------------------------------------ the run */

/* A metrics listener's socket goes to its HTTP daemon, which watches
 * its own descriptor. */
static int watch_listener(server *srv, serve_listener *l)
{
    if (l->proto == PROTO_METRICS)
        return serve_http_start(srv, l);
    if (mxr_io_watch(srv->io, l->fd, MXR_WANT_READ, l) == MXR_OK)
        return 0;
    cli_error("%s", mxr_engine_errmsg(srv->engine));
    return EXIT_SOFTWARE;
}

static int setup(server *srv)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        cli_error("signalfd: %s", strerror(errno));
        return EXIT_SOFTWARE;
    }
    signal(SIGPIPE, SIG_IGN);
    if (mxr_engine_add_io(srv->engine, &serve_io_ops, srv, &srv->io) !=
            MXR_OK ||
        mxr_io_watch(srv->io, srv->sigfd, MXR_WANT_READ, srv) != MXR_OK) {
        cli_error("%s", mxr_engine_errmsg(srv->engine));
        return EXIT_SOFTWARE;
    }
    for (size_t i = 0; i < srv->nls; i++) {
        int rc = open_listener(&srv->ls[i], srv->cfg.socket_mode);
        if (!rc)
            rc = watch_listener(srv, &srv->ls[i]);
        if (rc)
            return rc;
        serve_log(srv, "listening on %s", srv->ls[i].spec);
    }
    return 0;
}

static void close_listeners(server *srv)
{
    for (size_t i = 0; i < srv->nls; i++) {
        serve_listener *l = &srv->ls[i];
        serve_http_stop(srv, l); /* a metrics listener's fd is its */
        if (l->fd >= 0) {
            if (srv->io)
                mxr_io_watch(srv->io, l->fd, 0, NULL);
            close(l->fd);
            l->fd = -1;
        }
        if (l->unix_path) {
            if (unlink(l->unix_path) != 0 && errno != ENOENT)
                serve_log_at(srv, SERVE_LOG_WARNING, "cannot remove %s: %s",
                             l->unix_path, strerror(errno));
            free(l->unix_path);
            l->unix_path = NULL;
        }
    }
}

static int run(server *srv)
{
    while (!srv->stop) {
        if (mxr_engine_run_once(srv->engine, -1) != MXR_OK) {
            cli_error("%s", mxr_engine_errmsg(srv->engine));
            return EXIT_SOFTWARE;
        }
        serve_between_rounds(srv);
    }
    serve_notify("STOPPING=1\nSTATUS=stopping: finishing the requests in "
                 "flight");
    close_listeners(srv);
    serve_drain(srv);
    serve_reap(srv);
    uint64_t deadline = serve_now_ms() + (uint64_t)srv->cfg.drain_ms;
    while (srv->nconns > 0 && serve_now_ms() < deadline) {
        uint64_t left = deadline - serve_now_ms();
        if (mxr_engine_run_once(srv->engine, left > 100 ? 100 : (int)left) !=
            MXR_OK)
            break;
        serve_between_rounds(srv);
        serve_reap(srv);
    }
    if (srv->nconns > 0)
        serve_log_at(srv, SERVE_LOG_WARNING,
                     "%zu client(s) still waiting after --drain: closed",
                     srv->nconns);
    while (srv->conns)
        serve_conn_close(srv->conns, NULL);
    serve_reap(srv);
    serve_log(srv, "stopped after %llu request(s)",
              (unsigned long long)srv->requests);
    return EXIT_OK;
}

static int parse_size(const char *opt, const char *arg, long long min,
                      long long max, size_t *out)
{
    long long v;
    int rc = cli_parse_count(opt, arg, max, &v);
    if (rc)
        return rc;
    if (v < min)
        return cli_usage_error("%s: '%s' is below %lld", opt, arg, min);
    *out = (size_t)v;
    return 0;
}

/* What the run does besides serving: from options that are not the
 * server's own. */
typedef struct run_opts {
    const char *pidfile;
    const char *user;
    bool check;      /* --check-config */
    int configs;     /* --config options getopt saw */
    int nconfig;     /* --config options the prescan saw */
    bool file_error; /* the option that failed came from the --config file */
    uid_t uid;
    gid_t gid;
    char *user_name;
} run_opts;

/* A master.cf service name as a next hop's transport: no separator of a
 * next-hop list. */
static bool is_transport_name(const char *s)
{
    return s[0] && !strpbrk(s, ": \t,[]\r\n");
}

/* LABEL=SERVICE; arg outlives the run (argv or the --config file's). */
static int parse_label_transport(serve_cfg *g, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !is_transport_name(eq + 1))
        return cli_usage_error("--label-transport: '%s' is not "
                               "LABEL=SERVICE",
                               arg);
    if (g->nlabels == SM_MAX_LABELS)
        return cli_usage_error("at most %d --label-transport", SM_MAX_LABELS);
    g->labels[g->nlabels++] =
        (sm_label_transport){arg, (size_t)(eq - arg), eq + 1};
    return 0;
}

static int parse_socket_mode(serve_cfg *g, const char *arg)
{
    char *end;
    long m = strtol(arg, &end, 8);
    if (!arg[0] || *end || m < 0 || m > 0777)
        return cli_usage_error("--socket-mode: '%s' is not an octal mode "
                               "(0 to 0777)",
                               arg);
    g->socket_mode = (int)m;
    return 0;
}

static int serve_option(server *srv, int c, const char *arg, run_opts *ro)
{
    serve_cfg *g = &srv->cfg;
    size_t v = 0;
    int rc = 0;
    switch (c) {
    case OPT_LISTEN:
        if (srv->nls == MAX_LISTEN)
            return cli_usage_error("at most %d --listen", MAX_LISTEN);
        return parse_listen(&srv->ls[srv->nls++], arg);
    case OPT_DOMAINS:
        g->domains = arg;
        return 0;
    case OPT_TRANSPORT:
        if (!is_transport_name(arg))
            return cli_usage_error("--transport: '%s' is not a transport "
                                   "name",
                                   arg);
        g->transport = arg;
        return 0;
    case OPT_LABEL_TRANSPORT:
        return parse_label_transport(g, arg);
    case OPT_SOCKET_MODE:
        return parse_socket_mode(g, arg);
    case OPT_MAX_CLIENTS:
        return parse_size("--max-clients", arg, 1, 100000, &g->max_clients);
    case OPT_MAX_REQUEST:
        return parse_size("--max-request", arg, 64, 1 << 20, &g->max_request);
    case OPT_MAX_PIPELINE:
        return parse_size("--max-pipeline", arg, 1, 100000, &g->max_pipeline);
    case OPT_MAX_OUTPUT:
        return parse_size("--max-output", arg, 200000, 1LL << 30,
                          &g->max_output);
    case OPT_IDLE_TIMEOUT:
        if (!(rc = parse_size("--idle-timeout", arg, 1, 86400, &v)))
            g->idle_ms = (int)v * 1000;
        return rc;
    case OPT_DRAIN:
        if (!(rc = parse_size("--drain", arg, 0, 3600, &v)))
            g->drain_ms = (int)v * 1000;
        return rc;
    case OPT_PIDFILE:
        ro->pidfile = arg;
        return 0;
    case OPT_QUIET:
        g->log_level = SERVE_LOG_ERROR;
        return 0;
    case OPT_CONFIG:
        ro->configs++;
        return 0;
    case OPT_CHECK_CONFIG:
        ro->check = true;
        return 0;
    case OPT_USER:
        if (!arg[0])
            return cli_usage_error("--user: empty user name");
        ro->user = arg;
        return 0;
    case OPT_LOG:
        if (strcmp(arg, "stderr") != 0 && strcmp(arg, "syslog") != 0)
            return cli_usage_error("--log: '%s' is not stderr or syslog", arg);
        g->log_syslog = arg[1] == 'y';
        return 0;
    case OPT_LOG_LEVEL:
        if (strcmp(arg, "error") == 0)
            g->log_level = SERVE_LOG_ERROR;
        else if (strcmp(arg, "warning") == 0)
            g->log_level = SERVE_LOG_WARNING;
        else if (strcmp(arg, "info") == 0)
            g->log_level = SERVE_LOG_INFO;
        else
            return cli_usage_error("--log-level: '%s' is not error, warning "
                                   "or info",
                                   arg);
        return 0;
    }
    return cli_try_help();
}

static const struct option longopts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"domains", required_argument, NULL, OPT_DOMAINS},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"label-transport", required_argument, NULL, OPT_LABEL_TRANSPORT},
    {"socket-mode", required_argument, NULL, OPT_SOCKET_MODE},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"max-request", required_argument, NULL, OPT_MAX_REQUEST},
    {"max-pipeline", required_argument, NULL, OPT_MAX_PIPELINE},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"user", required_argument, NULL, OPT_USER},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    CLI_ENGINE_LONGOPTS,
    {NULL, 0, NULL, 0},
};

static int take_option(mxr_options *o, server *srv, run_opts *ro, int c)
{
    int rc = cli_engine_option(o, c, optarg);
    if (rc >= 0)
        return rc;
    if (c == 'h') {
        usage(stdout);
        return -1;
    }
    return c == '?' ? cli_try_help() : serve_option(srv, c, optarg, ro);
}

/* The file's options first (messages then name FILE:LINE), then the
 * command line's: the same table, the later value of an option wins. */
static int parse_args(serve_args *a, mxr_options *o, server *srv, run_opts *ro)
{
    size_t k = 0;
    optind = 1;
    for (;;) {
        cli_set_where(k < a->nfile ? a->where[k] : NULL);
        int c = getopt_long(a->argc, a->argv, "h", longopts, NULL);
        if (c == -1)
            break;
        bool from_file = k++ < a->nfile;
        int rc = take_option(o, srv, ro, c);
        if (rc) {
            ro->file_error = from_file && rc > 0;
            cli_set_where(NULL);
            return rc;
        }
    }
    cli_set_where(NULL);
    if (optind < a->argc)
        return cli_usage_error("unexpected argument '%s'", a->argv[optind]);
    if (ro->configs != ro->nconfig)
        return cli_usage_error("write --config FILE in full");
    if (srv->nls == 0)
        return cli_usage_error("give at least one --listen PROTO:ADDR");
    return 0;
}

/* --config and --check-config are needed before parsing: the file makes
 * the arguments, and --check-config changes the exit status of errors. */
static int prescan(int argc, char **argv, const char **config, bool *check)
{
    int n = 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            *config = argv[++i];
            n++;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *config = argv[i] + 9;
            n++;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            *check = true;
        }
    }
    return n;
}

static int write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        cli_error("--pidfile %s: %s", path, strerror(errno));
        return EXIT_SOFTWARE;
    }
    return 0;
}

static int lookup_user(run_opts *ro)
{
    errno = 0;
    struct passwd *pw = getpwnam(ro->user);
    if (!pw) {
        cli_error("--user %s: %s", ro->user,
                  errno ? strerror(errno) : "no such user");
        return EXIT_NOUSER;
    }
    ro->uid = pw->pw_uid;
    ro->gid = pw->pw_gid;
    if (!(ro->user_name = strdup(pw->pw_name))) {
        cli_error("out of memory");
        return EXIT_SOFTWARE;
    }
    return 0;
}

static int own(const char *path, const run_opts *ro)
{
    if (chown(path, ro->uid, ro->gid) == 0)
        return 0;
    cli_error("--user %s: chown %s: %s", ro->user, path, strerror(errno));
    return EXIT_NOPERM;
}

/* Once listening: the unix sockets and the pid file become the user's
 * (the daemon removes them at exit), then the process does. */
static int become_user(server *srv, const run_opts *ro)
{
    if (ro->uid == geteuid() && ro->gid == getegid())
        return 0;
    for (size_t i = 0; i < srv->nls; i++)
        if (srv->ls[i].unix_path && own(srv->ls[i].unix_path, ro))
            return EXIT_NOPERM;
    if (ro->pidfile && own(ro->pidfile, ro))
        return EXIT_NOPERM;
    if (initgroups(ro->user_name, ro->gid) != 0 || setgid(ro->gid) != 0 ||
        setuid(ro->uid) != 0) {
        cli_error("--user %s: %s", ro->user, strerror(errno));
        return EXIT_NOPERM;
    }
    if (ro->uid != 0 && setuid(0) == 0) {
        cli_error("--user %s: root privileges could be taken back", ro->user);
        return EXIT_NOPERM;
    }
    serve_log(srv, "running as %s (uid %ld, gid %ld)", ro->user_name,
              (long)ro->uid, (long)ro->gid);
    return 0;
}

static int build_engine(mxr_options *o, server *srv, mxr_engine **out)
{
    mxr_options_set_log(o, serve_engine_log, srv);
    return cli_engine_new(o, out);
}

/* Parse, look the user up, load zones and policies: what --check-config
 * checks, and what a run does before it opens its sockets. */
static int configure(int argc, char **argv, server *srv, run_opts *ro,
                     serve_args *a)
{
    const char *config = NULL;
    int nconfig = ro->nconfig = prescan(argc, argv, &config, &ro->check);
    if (nconfig > 1)
        return cli_usage_error("--config: give one file");
    int rc = serve_args_build(a, config, longopts, argc, argv);
    if (rc)
        return rc;
    mxr_options *o = NULL;
    if (mxr_options_new(&o) != MXR_OK)
        return EXIT_SOFTWARE;
    rc = parse_args(a, o, srv, ro);
    if (rc == 0 && ro->user)
        rc = lookup_user(ro);
    if (rc == 0 && srv->cfg.log_syslog)
        openlog("mxroute", LOG_PID, LOG_MAIL);
    if (rc == 0)
        rc = build_engine(o, srv, &srv->engine);
    mxr_options_free(o);
    if (rc > 0 && (ro->check || (ro->file_error && rc == EXIT_USAGE)))
        rc = EXIT_CONFIG;
    return rc;
}

static const serve_cfg cfg_defaults = {.max_clients = 256,
                                       .max_request = 8192,
                                       .max_pipeline = 64,
                                       .max_output = 1 << 20,
                                       .idle_ms = 60000,
                                       .drain_ms = 5000,
                                       .transport = "smtp",
                                       .socket_mode = -1,
                                       .log_level = SERVE_LOG_INFO};

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The options that take effect at start only and changed since, named in
 * out ("" when none). */
static void restart_needed(const server *srv, const server *next,
                           const run_opts *ro, char *out, size_t size)
{
    bool listen = srv->nls != next->nls;
    for (size_t i = 0; !listen && i < srv->nls; i++)
        listen = !same(srv->ls[i].spec, next->ls[i].spec);
    snprintf(out, size, "%s%s%s%s%s", listen ? " --listen" : "",
             same(srv->user, ro->user) ? "" : " --user",
             same(srv->pidfile, ro->pidfile) ? "" : " --pidfile",
             srv->cfg.log_syslog == next->cfg.log_syslog ? "" : " --log",
             srv->cfg.socket_mode == next->cfg.socket_mode ? ""
                                                           : " --socket-mode");
}

/* As configure() reads, without touching the running server but for its
 * log; getopt's own messages off (the reason is captured). */
int serve_reread(server *srv, serve_reading *out)
{
    serve_listener ls[MAX_LISTEN] = {0};
    server next = {.ls = ls, .cfg = cfg_defaults};
    run_opts ro = {0};
    const char *config = NULL;
    *out = (serve_reading){.args = calloc(1, sizeof(serve_args))};
    if (!out->args) {
        cli_error("out of memory");
        return EXIT_SOFTWARE;
    }
    ro.nconfig = prescan(srv->argc, srv->argv, &config, &ro.check);
    int opterr_was = opterr, rc;
    opterr = 0;
    mxr_options *o = NULL;
    rc = serve_args_build(out->args, config, longopts, srv->argc, srv->argv);
    if (rc == 0 && mxr_options_new(&o) != MXR_OK) {
        cli_error("out of memory");
        rc = EXIT_SOFTWARE;
    }
    if (rc == 0)
        rc = parse_args(out->args, o, &next, &ro);
    if (rc == 0)
        rc = build_engine(o, srv, &out->engine);
    opterr = opterr_was;
    mxr_options_free(o);
    if (rc == 0)
        restart_needed(srv, &next, &ro, out->restart, sizeof out->restart);
    for (size_t i = 0; i < next.nls; i++)
        free(ls[i].spec);
    out->cfg = next.cfg;
    out->cfg.log_syslog = srv->cfg.log_syslog; /* kept until a restart */
    out->cfg.socket_mode = srv->cfg.socket_mode;
    if (rc) {
        serve_args_free(out->args);
        free(out->args);
        out->args = NULL;
    }
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    static serve_listener listeners[MAX_LISTEN];
    server srv = {.kind = KIND_SIGNAL,
                  .ls = listeners,
                  .sigfd = -1,
                  .cfg = cfg_defaults,
                  .argc = argc,
                  .argv = argv};
    run_opts ro = {0};
    serve_args a = {0};
    srv.tally.started = (int64_t)time(NULL);
    int rc = configure(argc, argv, &srv, &ro, &a);
    srv.user = ro.user;
    srv.pidfile = ro.pidfile;
    if (rc == 0 && ro.check) {
        printf("%s: configuration OK\n", cli_prog());
        rc = -1;
    }
    if (rc == 0)
        rc = setup(&srv);
    if (rc == 0 && ro.pidfile)
        rc = write_pidfile(ro.pidfile);
    if (rc == 0 && ro.user)
        rc = become_user(&srv, &ro);
    if (rc == 0) {
        serve_notify("READY=1\nSTATUS=serving");
        rc = run(&srv);
    }
    close_listeners(&srv);
    while (srv.conns)
        serve_conn_close(srv.conns, NULL);
    serve_reap(&srv);
    serve_retire_all(&srv);
    mxr_engine_destroy(srv.engine); /* frees the source; orphans answered */
    if (srv.args) {
        serve_args_free(srv.args);
        free(srv.args);
    }
    if (srv.sigfd >= 0)
        close(srv.sigfd);
    if (ro.pidfile && rc != -1 && srv.io)
        unlink(ro.pidfile);
    for (size_t i = 0; i < srv.nls; i++)
        free(listeners[i].spec);
    free(ro.user_name);
    serve_args_free(&a);
    if (srv.cfg.log_syslog)
        closelog();
    return rc < 0 ? EXIT_OK : rc;
}
