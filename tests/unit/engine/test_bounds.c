/* test_bounds.c -- resource bounds under load: 1,000,000 route requests
 * (cached and cold, hot domains, the long tail and names that do not
 * exist) through one engine whose cache is far too small for them, with
 * 10% of the hosts failing in DNS (zone fault injection) and another 10%
 * refusing SMTP connections (reported through mxr_attempt_*, so host
 * health fills up). Throughout, and at the end:
 *
 *  - the record and plan cache never holds more than MXR_OPT_CACHE_MAX_BYTES
 *    (and it did evict);
 *  - DNS queries in flight never exceed MXR_OPT_MAX_INFLIGHT (and reach it);
 *  - host health never holds more than MXR_OPT_HEALTH_MAX_BYTES;
 *  - the engine's memory stays within those bounds plus the pending work;
 *  - every callback fires exactly once; after destroy every byte is back
 *    (a counting allocator) and no descriptor is left open.
 *
 * A second, smaller phase runs the c-ares backend against a closed UDP port
 * on loopback, where sockets really open and close.
 *
 * MXR_BOUNDS_REQUESTS sets the number of requests (the ASan pass of
 * scripts/test.sh uses fewer); the default is the full million. */
#include "support.h"

#include "engine/engine.h"

#include <dirent.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DOMAINS 20000
#define HOSTS 2000
#define HOT_DOMAINS 500
#define CACHE_MAX (1u << 20)
#define HEALTH_MAX (16u << 10)
#define INFLIGHT_MAX 32
#define WINDOW 512                  /* route requests kept pending at once */
#define PER_PENDING_MAX (16u << 10) /* bytes a pending request may hold */
#define ATTEMPT_EVERY 10 /* one plan in ten goes through an attempt */
#define DEFAULT_REQUESTS 1000000

/* ------------------------------------------------------------- helpers */

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static size_t requests_wanted(void)
{
    const char *v = getenv("MXR_BOUNDS_REQUESTS");
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 ? (size_t)n : DEFAULT_REQUESTS;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Hosts h0..h1999: every tenth answers SERVFAIL or times out (TXT fault),
 * every tenth (others) refuses SMTP connections in the attempts. */
static bool host_dns_fails(size_t h)
{
    return h % 10 == 0;
}

static bool host_smtp_fails(size_t h)
{
    return h % 10 == 5;
}

typedef struct text {
    char *buf;
    size_t len, cap;
} text;

static void append(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void append(text *t, const char *fmt, ...)
{
    if (t->len + 256 > t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1u << 20;
        t->buf = realloc(t->buf, t->cap);
        assert_non_null(t->buf);
    }
    va_list ap;
    va_start(ap, fmt);
    t->len += (size_t)vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
}

/* d0..d19999.bounds.test, each with two MX hosts out of h0..h1999. */
static char *zone_text(void)
{
    text z = {0};
    append(&z, "$ORIGIN bounds.test.\n$TTL 300\n"
               "@ SOA ns hostmaster 1 3600 600 86400 60\n");
    for (size_t h = 0; h < HOSTS; h++) {
        append(&z, "h%zu.hosts A 10.%zu.%zu.1\n", h, h / 250, h % 250);
        if (host_dns_fails(h))
            append(&z, "h%zu.hosts TXT \"mxroute-fault=%s\"\n", h,
                   h % 20 ? "timeout" : "servfail");
    }
    for (size_t d = 0; d < DOMAINS; d++) /* every 100th: both hosts fail */
        append(&z, "d%zu MX 10 h%zu.hosts\nd%zu MX 20 h%zu.hosts\n", d,
               d % HOSTS, d, d % 100 ? (d * 7 + 3) % HOSTS : (d + 10) % HOSTS);
    return z.buf;
}

/* ---------------------------------------------------------- the load */

typedef struct load {
    mxr_engine *e;
    uint64_t now, rng;
    size_t sent, fired, ok, tempfail, permfail, attempts, refused;
} load;

static uint64_t load_clock(void *ud)
{
    return ((const load *)ud)->now;
}

static size_t host_index(const char *host)
{
    return (size_t)strtoul(host + 1, NULL, 10); /* "h123.hosts..." */
}

/* Each hop: a refused connection at the failing hosts, else a delivery. */
static void run_attempt(load *l, const mxr_plan *plan)
{
    static const char *const rcpt[] = {"postmaster@example.org"};
    mxr_message msg = {
        .sender = "s@example.org", .recipients = rcpt, .nrecipients = 1};
    mxr_attempt *a;
    mxr_hop hop;
    assert_int_equal(mxr_attempt_new(l->e, plan, &msg, &a), MXR_OK);
    while (mxr_attempt_next(a, &hop) == MXR_OK) {
        if (host_smtp_fails(host_index(hop.host))) {
            mxr_outcome o = {.stage = MXR_STAGE_CONNECT,
                             .cls = MXR_CLASS_REFUSED};
            mxr_attempt_outcome(a, &o);
            l->refused++;
            continue;
        }
        mxr_outcome ok = {
            .stage = MXR_STAGE_RCPT, .cls = MXR_CLASS_OK, .code = 250};
        mxr_attempt_rcpt(a, 0, &ok);
        mxr_attempt_outcome(a, &ok);
        ok.stage = MXR_STAGE_DOT;
        mxr_attempt_outcome(a, &ok);
    }
    assert_true(mxr_attempt_done(a));
    assert_int_not_equal(mxr_attempt_recipient(a, 0)->state, MXR_RCPT_PENDING);
    mxr_attempt_free(a);
    l->attempts++;
}

static void on_route(void *arg, mxr_status st, mxr_plan *plan)
{
    load *l = arg;
    assert_int_equal(st, MXR_OK);
    l->fired++;
    if (plan->result == MXR_RESULT_OK)
        l->ok++;
    else if (plan->result == MXR_RESULT_TEMPFAIL)
        l->tempfail++;
    else
        l->permfail++;
    if (plan->result == MXR_RESULT_OK && l->fired % ATTEMPT_EVERY == 0)
        run_attempt(l, plan);
    mxr_plan_free(plan);
}

/* 60% hot domains (cached), 30% the whole tail (often evicted), 10% names
 * that do not exist, each one new (negative answers fill the cache). */
static void next_input(load *l, char *buf, size_t len)
{
    uint64_t r = splitmix(&l->rng);
    unsigned pct = (unsigned)(r % 100);
    size_t d = (size_t)(r >> 32);
    if (pct < 60)
        snprintf(buf, len, "d%zu.bounds.test", d % HOT_DOMAINS);
    else if (pct < 90)
        snprintf(buf, len, "user@d%zu.bounds.test", d % DOMAINS);
    else
        snprintf(buf, len, "n%zu.bounds.test", l->sent);
}

typedef struct bounds {
    size_t base_bytes; /* the engine's own memory before any route */
    size_t max_bytes, max_health, max_cache;
} bounds;

static void check_bounds(load *l, bounds *b)
{
    mxr_stats s;
    mxr_engine_stats(l->e, &s);
    size_t health = mxr__health_bytes(mxr__engine_health(l->e));
    assert_true(s.cache_bytes <= CACHE_MAX);
    assert_true(s.inflight <= INFLIGHT_MAX);
    assert_true(s.inflight_max <= INFLIGHT_MAX);
    assert_true(health <= HEALTH_MAX);
    size_t limit = b->base_bytes + CACHE_MAX + HEALTH_MAX +
                   WINDOW * PER_PENDING_MAX; /* queues grow to the window */
    if (s.bytes_allocated > limit)
        fail_msg("%zu bytes allocated, bound %zu", s.bytes_allocated, limit);
    b->max_bytes =
        s.bytes_allocated > b->max_bytes ? s.bytes_allocated : b->max_bytes;
    b->max_health = health > b->max_health ? health : b->max_health;
    b->max_cache = s.cache_bytes > b->max_cache ? s.cache_bytes : b->max_cache;
}

static void drive(load *l, size_t total, bounds *b)
{
    char input[64];
    while (l->fired < total) {
        while (l->sent < total && mxr_engine_pending(l->e) < WINDOW) {
            next_input(l, input, sizeof input);
            assert_int_equal(mxr_route(l->e, input, on_route, l), MXR_OK);
            l->sent++;
            l->now += 1; /* 1 ms a request: TTLs and cool-downs run out */
        }
        mxr_engine_process(l->e, MXR_NOFD, MXR_NOFD);
        check_bounds(l, b);
    }
}

static mxr_options *load_options(load *l, mxr_test_alloc *ta, const char *zone)
{
    mxr_options *o;
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, ta);
    mxr_options_set_clock(o, load_clock, l);
    assert_int_equal(mxr_options_set(o, MXR_OPT_CACHE_MAX_BYTES, CACHE_MAX),
                     MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_HEALTH_MAX_BYTES, HEALTH_MAX),
                     MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_MAX_INFLIGHT, INFLIGHT_MAX),
                     MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_SEED, 7), MXR_OK);
    assert_int_equal(mxr_options_add_zone_text(o, "bounds", zone), MXR_OK);
    return o;
}

static void test_million_routes(void **state)
{
    (void)state;
    size_t total = requests_wanted(), fds = open_fds();
    mxr_test_alloc ta = {0};
    load l = {.now = 1000000, .rng = 42};
    bounds b = {0};
    char *zone = zone_text();
    mxr_options *o = load_options(&l, &ta, zone);
    assert_int_equal(mxr_engine_new(o, &l.e), MXR_OK);
    mxr_options_free(o);
    free(zone);
    mxr_stats s;
    mxr_engine_stats(l.e, &s);
    b.base_bytes = s.bytes_allocated;
    drive(&l, total, &b);
    mxr_engine_stats(l.e, &s);
    printf("bounds: %zu requests: %zu ok, %zu tempfail, %zu permfail; "
           "%zu attempts, %zu refused connections\n",
           total, l.ok, l.tempfail, l.permfail, l.attempts, l.refused);
    printf("bounds: %llu queries, %llu plan hits, %llu record hits, "
           "%llu evictions; inflight max %zu/%d\n",
           (unsigned long long)s.queries_sent, (unsigned long long)s.plan_hits,
           (unsigned long long)s.cache_hits,
           (unsigned long long)s.cache_evictions, s.inflight_max, INFLIGHT_MAX);
    printf("bounds: peak cache %zu/%u bytes, peak health %zu/%u bytes, "
           "peak engine memory %zu bytes (%zu at start)\n",
           b.max_cache, CACHE_MAX, b.max_health, HEALTH_MAX, b.max_bytes,
           b.base_bytes);
    assert_int_equal(l.fired, total);
    assert_int_equal(s.routes, total);
    assert_true(l.ok > 0 && l.tempfail > 0 && l.permfail > 0);
    assert_true(l.refused > 0);
    assert_true(s.cache_evictions > 0);             /* the bound was reached */
    assert_int_equal(s.inflight_max, INFLIGHT_MAX); /* and the window */
    mxr_engine_destroy(l.e);
    assert_int_equal(ta.live, 0);
    assert_int_equal(open_fds(), fds);
}

/* ------------------------------------------------- c-ares, real sockets */

/* A UDP port on loopback with nothing bound: each query is refused at
 * once (ICMP port unreachable), so sockets open and close quickly. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void on_network_route(void *arg, mxr_status st, mxr_plan *plan)
{
    size_t *fired = arg;
    assert_int_equal(st, MXR_OK);
    assert_int_equal(plan->result, MXR_RESULT_TEMPFAIL);
    (*fired)++;
    mxr_plan_free(plan);
}

static void test_ares_sockets(void **state)
{
    (void)state;
    enum { ROUTES = 2000, INFLIGHT = 8 };
    size_t fds = open_fds(), fired = 0;
    mxr_test_alloc ta = {0};
    mxr_options *o;
    mxr_engine *e;
    char server[64], name[64];
    snprintf(server, sizeof server, "127.0.0.1:%d", closed_port());
    assert_int_equal(mxr_options_new(&o), MXR_OK);
    mxr_options_set_allocator(o, mxr_test_alloc_fn, &ta);
    assert_int_equal(mxr_options_add_server(o, server), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_TRIES, 1), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_TIMEOUT_MS, 200), MXR_OK);
    assert_int_equal(mxr_options_set(o, MXR_OPT_MAX_INFLIGHT, INFLIGHT),
                     MXR_OK);
    assert_int_equal(mxr_engine_new(o, &e), MXR_OK);
    mxr_options_free(o);
    for (size_t i = 0; i < ROUTES; i++) {
        snprintf(name, sizeof name, "a%zu.example", i);
        assert_int_equal(mxr_route(e, name, on_network_route, &fired), MXR_OK);
    }
    assert_int_equal(mxr_engine_run(e, 120000), 0);
    mxr_stats s;
    mxr_engine_stats(e, &s);
    assert_int_equal(fired, ROUTES);
    assert_true(s.inflight_max <= INFLIGHT);
    mxr_engine_destroy(e);
    assert_int_equal(ta.live, 0);
    assert_int_equal(open_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_routes),
        cmocka_unit_test(test_ares_sockets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
