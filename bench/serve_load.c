/* serve_load.c -- a load generator for socketmap daemons (Postfix's
 * socketmap_table(5) protocol): `mxroute serve`, and for comparison
 * postfix-mta-sts-resolver. One thread, one epoll set.
 *
 *   load  C connections (default 32), each keeping D requests in flight
 *         (default 1: Postfix asks one lookup at a time per connection),
 *         requests "MAP KEY" cycling over the keys of a file (one a line),
 *         for R requests (--requests) or S seconds (--seconds). Every
 *         reply must be one whole netstring of at most 100000 bytes whose
 *         data begins with the expected prefix ("OK "). Anything else (a
 *         NOTFOUND, TEMP or PERM reply, a malformed netstring, a reply to
 *         no request, a connection closed, the run's time bound passed)
 *         ends the run at once with exit status 1. Prints requests/s and
 *         the latency percentiles, exact over every request (from just
 *         before its send to the read that completed its reply).
 *   idle  opens N connections (default 1000), asks one question on each
 *         (so the daemon has accepted and served every one), prints
 *         "HELD N", holds them for H seconds (--hold), then closes them.
 *
 * --pid PID names the daemon: load mode then reports its CPU time per
 * request (utime + stime from /proc/PID/stat, steadier than wall time on
 * a shared machine), idle mode its VmRSS before, once every client is
 * answered (before HELD) and after they are closed.
 *
 * Usage: serve_load load|idle --connect unix:PATH|inet:HOST:PORT
 *        --keys FILE [--map NAME] [--expect PREFIX] [-c C] [-d D]
 *        [--requests R | --seconds S] [--timeout T] [-n N] [--hold H]
 *        [--pid PID]
 * Prints one line: RESULT serve_load_<mode> key=value ...
 */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REPLY 100000 /* socketmap_table(5): Postfix's bound */
#define MAX_DEPTH 4096
#define IN_START 4096 /* a connection's input buffer grows from this */

static struct {
    const char *connect;
    const char *keys;
    const char *map;
    const char *expect;
    size_t conns;      /* load: connections */
    size_t depth;      /* load: requests in flight per connection */
    uint64_t requests; /* load: stop after this many (0: --seconds) */
    double seconds;    /* load: or issue requests for this long */
    double timeout;    /* the whole run, connections and replies included */
    size_t idle;       /* idle: connections */
    double hold;       /* idle: seconds to hold them */
    long pid;          /* the daemon, or 0 */
} cfg = {.map = "transport",
         .expect = "OK ",
         .conns = 32,
         .depth = 1,
         .seconds = 5,
         .timeout = 120,
         .idle = 1000,
         .hold = 2};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "serve_load: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ requests */

/* Every request, made once: the hot loop only copies bytes. */
typedef struct request {
    char *bytes;
    size_t len;
} request;

static request *reqs;
static size_t nreqs, max_req_len;

static void build_requests(void)
{
    char **keys;
    nreqs = bench_read_list(cfg.keys, &keys);
    reqs = calloc(nreqs, sizeof *reqs);
    if (!reqs)
        fail("out of memory");
    for (size_t i = 0; i < nreqs; i++) {
        size_t data = strlen(cfg.map) + 1 + strlen(keys[i]);
        size_t cap = data + 24;
        if (!(reqs[i].bytes = malloc(cap)))
            fail("out of memory");
        reqs[i].len = (size_t)snprintf(reqs[i].bytes, cap, "%zu:%s %s,", data,
                                       cfg.map, keys[i]);
        if (reqs[i].len > max_req_len)
            max_req_len = reqs[i].len;
    }
}

/* --------------------------------------------------------- the address */

static struct sockaddr_storage dst;
static socklen_t dst_len;

/* unix:PATH, inet:HOST:PORT or inet:[IPV6]:PORT, numeric hosts only */
static void parse_connect(const char *spec)
{
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&dst;
        if (strlen(spec + 5) >= sizeof un->sun_path)
            fail("%s: path too long", spec);
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, spec + 5);
        dst_len = sizeof *un;
        return;
    }
    char host[256];
    const char *hp = spec + 5, *colon = strrchr(hp, ':');
    if (strncmp(spec, "inet:", 5) != 0 || !colon ||
        (size_t)(colon - hp) >= sizeof host)
        fail("--connect %s: not unix:PATH or inet:HOST:PORT", spec);
    size_t hl = (size_t)(colon - hp);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
                    *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        fail("--connect %s: %s", spec, gai_strerror(rc));
    memcpy(&dst, res->ai_addr, res->ai_addrlen);
    dst_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* A connected, non-blocking socket. The connect itself blocks (a full
 * listen backlog waits for the daemon to accept), bounded by a send
 * timeout, which Linux applies to connect. */
static int open_socket(void)
{
    int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    if (fd < 0)
        fail("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&dst, dst_len) != 0)
        fail("connect %s: %s", cfg.connect, strerror(errno));
    int one = 1;
    if (dst.ss_family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* ----------------------------------------------------------- latencies */

static uint64_t *lat; /* ns, one per reply */
static size_t nlat, lat_cap;

static void add_latency(uint64_t ns)
{
    if (nlat == lat_cap) {
        lat_cap = lat_cap ? 2 * lat_cap : 1 << 20;
        if (!(lat = realloc(lat, lat_cap * sizeof *lat)))
            fail("out of memory");
    }
    lat[nlat++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank over the sorted samples, in microseconds. */
static double percentile_us(double q)
{
    size_t rank = (size_t)(q * (double)nlat + 0.999999);
    return nlat ? (double)lat[rank ? rank - 1 : 0] / 1e3 : 0;
}

/* --------------------------------------------------------- connections */

typedef struct conn {
    int fd;
    int want; /* the epoll events registered */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off;
    uint64_t *sent; /* ring of send times, one per request in flight */
    size_t head, count;
} conn;

typedef struct run {
    int ep;
    conn *conns;
    size_t nconns;
    uint64_t issued, done, limit;
    uint64_t issue_until, hard_deadline; /* ns */
    size_t next_key;
    bool sampled; /* the first reply was printed */
} run;

static void set_want(run *r, conn *c, int want)
{
    struct epoll_event ev = {.events = (uint32_t)want, .data.ptr = c};
    if (want != c->want && epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->want = want;
}

static void flush_out(run *r, conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            fail("send: %s", n < 0 ? strerror(errno) : "nothing sent");
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    set_want(r, c, EPOLLIN | (c->out_len ? EPOLLOUT : 0));
}

/* Fill the connection's window, then send what was queued at once. */
static void issue(run *r, conn *c)
{
    uint64_t t = now_ns();
    while (c->count < cfg.depth && r->issued < r->limit && t < r->issue_until) {
        const request *q = &reqs[r->next_key];
        if (++r->next_key == nreqs)
            r->next_key = 0;
        memcpy(c->out + c->out_len, q->bytes, q->len);
        c->out_len += q->len;
        c->sent[(c->head + c->count) % cfg.depth] = t;
        c->count++;
        r->issued++;
    }
    flush_out(r, c);
}

static void fail_reply(const char *why, const char *data, size_t len)
{
    fail("%s: '%.*s'", why, (int)(len > 200 ? 200 : len), data);
}

/* The length of the whole reply netstring at buf, 0 when it is not all
 * there yet; a malformed or unexpected reply ends the run. */
static size_t parse_reply(const char *buf, size_t len)
{
    size_t i = 0, n = 0;
    while (i < len && buf[i] >= '0' && buf[i] <= '9') {
        n = n * 10 + (size_t)(buf[i++] - '0');
        if (n > MAX_REPLY || i > 6)
            fail("a reply longer than %d bytes", MAX_REPLY);
    }
    if (i == len)
        return 0;
    if (i == 0 || buf[i] != ':')
        fail_reply("malformed netstring", buf, len - i);
    if (len - i - 1 < n + 1)
        return 0;
    const char *data = buf + i + 1;
    if (data[n] != ',')
        fail_reply("netstring not terminated by ','", data, n);
    size_t el = strlen(cfg.expect);
    if (n < el || memcmp(data, cfg.expect, el) != 0)
        fail_reply("unexpected reply", data, n);
    return i + 2 + n;
}

/* Every whole reply in the input buffer ends its request (replies come
 * in request order). */
static void take_replies(run *r, conn *c, uint64_t t)
{
    size_t at = 0, used;
    while ((used = parse_reply(c->in + at, c->in_len - at)) > 0) {
        if (c->count == 0)
            fail_reply("a reply to no request", c->in + at, used);
        if (!r->sampled) {
            printf("SAMPLE %.*s\n", (int)used, c->in + at);
            r->sampled = true;
        }
        add_latency(t - c->sent[c->head]);
        c->head = (c->head + 1) % cfg.depth;
        c->count--;
        r->done++;
        at += used;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
}

static void read_replies(run *r, conn *c)
{
    for (;;) {
        if (c->in_len == c->in_cap) {
            if (c->in_cap > MAX_REPLY + 16)
                fail("a reply longer than %d bytes", MAX_REPLY);
            c->in_cap *= 2;
            if (!(c->in = realloc(c->in, c->in_cap)))
                fail("out of memory");
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("recv: %s", strerror(errno));
        if (n == 0)
            fail("the daemon closed a connection (%zu requests in flight, "
                 "%zu bytes of a reply)",
                 c->count, c->in_len);
        c->in_len += (size_t)n;
        if ((size_t)n < room)
            break; /* drained */
    }
    take_replies(r, c, now_ns());
    issue(r, c);
}

static void open_conns(run *r, size_t n)
{
    if ((r->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        fail("epoll_create1: %s", strerror(errno));
    if (!(r->conns = calloc(n, sizeof *r->conns)))
        fail("out of memory");
    r->nconns = n;
    for (size_t i = 0; i < n; i++) {
        conn *c = &r->conns[i];
        c->fd = open_socket();
        c->in_cap = IN_START;
        c->in = malloc(c->in_cap);
        c->out = malloc(cfg.depth * max_req_len);
        c->sent = malloc(cfg.depth * sizeof *c->sent);
        if (!c->in || !c->out || !c->sent)
            fail("out of memory");
        c->want = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            fail("epoll_ctl: %s", strerror(errno));
    }
}

static void close_conns(run *r)
{
    for (size_t i = 0; i < r->nconns; i++) {
        close(r->conns[i].fd);
        free(r->conns[i].in);
        free(r->conns[i].out);
        free(r->conns[i].sent);
    }
    free(r->conns);
    close(r->ep);
}

/* Issue on every connection, then serve events until every request issued
 * has its reply. Returns the time of the last reply. */
static uint64_t drive(run *r)
{
    for (size_t i = 0; i < r->nconns; i++)
        issue(r, &r->conns[i]);
    struct epoll_event evs[64];
    while (r->done < r->issued) {
        uint64_t t = now_ns();
        if (t >= r->hard_deadline)
            fail("timed out after %.0f s: %llu of %llu replies", cfg.timeout,
                 (unsigned long long)r->done, (unsigned long long)r->issued);
        int ms = (int)((r->hard_deadline - t) / 1000000u) + 1;
        int n = epoll_wait(r->ep, evs, 64, ms > 1000 ? 1000 : ms);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                read_replies(r, c);
            else if (evs[i].events & EPOLLOUT)
                flush_out(r, c);
        }
    }
    return now_ns();
}

/* ------------------------------------------------------ the daemon's side */

static size_t daemon_rss(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", cfg.pid);
    return cfg.pid ? bench_rss_of(path) : 0;
}

/* utime + stime of the daemon (all its threads), in seconds. */
static double daemon_cpu(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", cfg.pid);
    FILE *f = cfg.pid ? fopen(path, "r") : NULL;
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* ---------------------------------------------------------------- modes */

static int mode_load(void)
{
    run r = {.limit = cfg.requests ? cfg.requests : UINT64_MAX};
    uint64_t start = now_ns();
    r.hard_deadline = start + (uint64_t)(cfg.timeout * 1e9);
    open_conns(&r, cfg.conns);
    double dcpu0 = daemon_cpu(), cpu0 = bench_cpu();
    uint64_t t0 = now_ns();
    r.issue_until =
        cfg.requests ? UINT64_MAX : t0 + (uint64_t)(cfg.seconds * 1e9);
    uint64_t t1 = drive(&r);
    double secs = (double)(t1 - t0) / 1e9, cpu = bench_cpu() - cpu0;
    double dcpu = daemon_cpu() - dcpu0;
    close_conns(&r);
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++)
        sum += (double)lat[i];
    printf("RESULT serve_load_load connect=%s map=%s conns=%zu depth=%zu "
           "requests=%llu errors=0 seconds=%.3f rps=%.0f p50_us=%.1f "
           "p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f "
           "client_cpu_s=%.3f",
           cfg.connect, cfg.map, cfg.conns, cfg.depth,
           (unsigned long long)r.done, secs, (double)r.done / secs,
           percentile_us(0.50), percentile_us(0.90), percentile_us(0.99),
           nlat ? (double)lat[nlat - 1] / 1e3 : 0,
           nlat ? sum / (double)nlat / 1e3 : 0, cpu);
    if (cfg.pid)
        printf(" daemon_cpu_s=%.2f daemon_cpu_us_per_req=%.2f", dcpu,
               r.done ? dcpu * 1e6 / (double)r.done : 0);
    printf("\n");
    return 0;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s,
                          .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int mode_idle(void)
{
    size_t rss0 = daemon_rss();
    cfg.depth = 1;
    run r = {.limit = cfg.idle, .issue_until = UINT64_MAX};
    r.hard_deadline = now_ns() + (uint64_t)(cfg.timeout * 1e9);
    open_conns(&r, cfg.idle);
    drive(&r); /* one question each: every connection was accepted */
    sleep_s(0.2);
    size_t held = daemon_rss();
    /* a script may now measure a load beside the idle clients */
    printf("HELD %zu\n", cfg.idle);
    sleep_s(cfg.hold);
    close_conns(&r);
    sleep_s(0.5); /* the daemon sees the closes */
    size_t after = daemon_rss();
    printf("RESULT serve_load_idle connect=%s clients=%zu answered=%llu "
           "rss_before=%zu rss_held=%zu rss_after=%zu "
           "rss_bytes_per_client=%.0f\n",
           cfg.connect, cfg.idle, (unsigned long long)r.done, rss0, held, after,
           held > rss0 ? (double)(held - rss0) / (double)cfg.idle : 0);
    return 0;
}

/* ------------------------------------------------------------------ main */

/* Enough descriptors for the idle clients: the soft limit up to the hard
 * one. */
static void raise_nofile(size_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need + 16)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need + 16)
        fail("RLIMIT_NOFILE is %llu: too low for %zu connections",
             (unsigned long long)rl.rlim_cur, need);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: serve_load load|idle --connect unix:PATH|inet:HOST:PORT "
            "--keys FILE\n"
            "  [--map NAME (transport)] [--expect PREFIX ('OK ')]\n"
            "  load: [-c CONNS (32)] [-d DEPTH (1)] [--requests R | "
            "--seconds S (5)]\n"
            "  idle: [-n CLIENTS (1000)] [--hold S (2)]\n"
            "  [--timeout S (120)] [--pid DAEMON_PID]\n");
    exit(2);
}

static double parse_secs(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0) || v > 86400)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"connect", 1, 0, 'C'},  {"keys", 1, 0, 'k'},
        {"map", 1, 0, 'm'},      {"expect", 1, 0, 'e'},
        {"requests", 1, 0, 'r'}, {"seconds", 1, 0, 's'},
        {"timeout", 1, 0, 't'},  {"hold", 1, 0, 'H'},
        {"pid", 1, 0, 'p'},      {0, 0, 0, 0}};
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    optind = 2;
    int o;
    while ((o = getopt_long(argc, argv, "c:d:n:", lo, NULL)) != -1) {
        switch (o) {
        case 'C':
            cfg.connect = optarg;
            break;
        case 'k':
            cfg.keys = optarg;
            break;
        case 'm':
            cfg.map = optarg;
            break;
        case 'e':
            cfg.expect = optarg;
            break;
        case 'c':
            cfg.conns = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            cfg.depth = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            cfg.idle = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            cfg.requests = strtoull(optarg, NULL, 10);
            break;
        case 's':
            cfg.seconds = parse_secs(optarg);
            break;
        case 't':
            cfg.timeout = parse_secs(optarg);
            break;
        case 'H':
            cfg.hold = parse_secs(optarg);
            break;
        case 'p':
            cfg.pid = strtol(optarg, NULL, 10);
            break;
        default:
            usage();
        }
    }
    if (!cfg.connect || !cfg.keys || optind < argc || cfg.conns == 0 ||
        cfg.depth == 0 || cfg.depth > MAX_DEPTH || cfg.idle == 0)
        usage();
    parse_connect(cfg.connect);
    build_requests();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "load") == 0) {
        raise_nofile(cfg.conns);
        return mode_load();
    }
    if (strcmp(mode, "idle") == 0) {
        raise_nofile(cfg.idle);
        return mode_idle();
    }
    usage();
    return 2;
}
