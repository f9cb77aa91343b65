/* bench_mxroute.c -- libmxroute under load, through its public API only.
 *
 *   cold    route every domain of the list once, each for the first time,
 *           against the DNS server; at most W DNS queries in flight
 *           (MXR_OPT_MAX_INFLIGHT) and up to P route requests pending (the
 *           backlog is refilled from the loop). Counts plans with result OK
 *           and at least one candidate; prints domains/s.
 *   cached  route M domains once (filling the cache), then R more routes
 *           cycling over them, B mxr_route calls per
 *           mxr_engine_process(e, MXR_NOFD, MXR_NOFD) (which fires the
 *           deferred callbacks; each plan is freed). Prints decisions/s on
 *           this one thread. --policy none|noop|rewrite loads a built-in
 *           policy with a route hook (see POLICY_* below) for the whole
 *           run, warm-up included; every plan must come back OK, and with
 *           rewrite it must hold the relay (source policy) and have lost
 *           its last MX host. bytes_allocated_growth is how much more
 *           the engine holds after the run than after the warm-up (Lua
 *           states included).
 *   memory  route K distinct domains with a cache large enough never to
 *           evict, then reports per domain: the cache's own accounting
 *           (mxr_stats.cache_bytes), what the engine reports it holds
 *           (bytes_allocated, after minus before), what its allocator hook
 *           really holds (a counting hook is always installed here: it
 *           also sees plan blocks, which bytes_allocated does not count)
 *           and the VmRSS delta.
 *
 * Family: IPv4 only by default, so a route asks exactly MX + one A per
 * target like the raw c-ares loop and Node (resolveMx + resolve4);
 * --family any adds the AAAA questions mxroute asks by default.
 * --count-allocs installs a counting allocator hook (diagnostics: it is
 * not used for the headline figures).
 *
 * Usage: bench_mxroute MODE --server IP:PORT --list FILE [options]
 * Prints one line per measurement: RESULT mxroute_<mode> key=value ...
 */
#include "bench_util.h"

#include <mxroute.h>

#include <getopt.h>
#include <malloc.h>

static struct {
    const char *server;
    const char *list;
    size_t n;          /* domains used (0 = all in the list) */
    size_t window;     /* MXR_OPT_MAX_INFLIGHT */
    size_t backlog;    /* route requests kept pending in cold mode */
    size_t set;        /* cached: distinct domains */
    size_t rounds;     /* cached: routes after the warm-up */
    size_t batch;      /* cached: mxr_route calls per process */
    int family;
    bool count_allocs;
    int policy;        /* cached: POLICY_* */
} cfg = {.window = 100, .backlog = 2000, .set = 1000, .rounds = 5000000,
         .batch = 1, .family = MXR_FAMILY_IPV4};

static char **names;
static size_t nnames;

/* ------------------------------------------------------------ policies */

enum { POLICY_NONE, POLICY_NOOP, POLICY_REWRITE };
static const char *const policy_names[] = {"none", "noop", "rewrite", NULL};

/* The cost of calling a route hook at all. */
static const char POLICY_NOOP_SRC[] =
    "return { route = function(plan) end }\n";
/* An edit of the candidate list: the last host goes, a relay with an
 * explicit address (no DNS) comes in. */
static const char POLICY_REWRITE_SRC[] =
    "return { route = function(plan)\n"
    "  local c = plan:candidates()\n"
    "  plan:remove(c[#c].host)\n"
    "  plan:add{host = \"relay.bench.test\", addresses = {\"198.18.0.1\"},\n"
    "           preference = 5, label = \"relay\"}\n"
    "end }\n";
#define RELAY_HOST "relay.bench.test"

static void on_log(void *ud, int level, const char *msg)
{
    fprintf(stderr, "mxroute log %d: %s\n", level, msg);
}

/* ------------------------------------------------- counting allocator */

static uint64_t n_allocs, n_frees;
/* live blocks by requested size (the engine's 'osize' is exact) */
#define SIZE_SLOTS 4097
static int64_t live_by_size[SIZE_SLOTS];
static int64_t live_bytes; /* everything the hook holds, plans included */
static uint64_t allocs_by_size[SIZE_SLOTS]; /* allocation calls, by size */

static void live_add(size_t size, int64_t d)
{
    live_by_size[size < SIZE_SLOTS - 1 ? size : SIZE_SLOTS - 1] += d;
    live_bytes += d * (int64_t)size;
}

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    if (ptr)
        live_add(osize, -1);
    if (nsize == 0) {
        n_frees += ptr != NULL;
        free(ptr);
        return NULL;
    }
    n_allocs++;
    allocs_by_size[nsize < SIZE_SLOTS - 1 ? nsize : SIZE_SLOTS - 1]++;
    void *p = realloc(ptr, nsize);
    if (p)
        live_add(nsize, 1);
    else if (ptr)
        live_add(osize, 1);
    return p;
}

/* The block sizes that stay allocated per routed domain (at least one
 * block per 4 domains), as "size x count-per-domain". */
static void print_live_blocks(size_t k)
{
    printf("LIVE blocks kept per domain (bytes incl. the engine's size "
           "header x blocks):");
    for (size_t i = 0; i < SIZE_SLOTS; i++)
        if (live_by_size[i] > 0 && (size_t)live_by_size[i] * 4 >= k)
            printf(" %zu%sx%.2f", i, i == SIZE_SLOTS - 1 ? "+" : "",
                   (double)live_by_size[i] / (double)k);
    printf("\n");
}

/* The sizes of the allocation calls made per routed domain (at least one
 * call per 20 domains), as "size x calls-per-domain": where they come
 * from is read off the sizes. */
static void print_alloc_sizes(const uint64_t *before, size_t k)
{
    printf("ALLOCS calls per domain by size (bytes incl. the engine's size "
           "header x calls):");
    for (size_t i = 0; i < SIZE_SLOTS; i++) {
        uint64_t n = allocs_by_size[i] - before[i];
        if (n * 20 >= k)
            printf(" %zu%sx%.2f", i, i == SIZE_SLOTS - 1 ? "+" : "",
                   (double)n / (double)k);
    }
    printf("\n");
}

/* -------------------------------------------------------------- engine */

static mxr_engine *engine_new(int64_t cache_bytes)
{
    mxr_options *o = NULL;
    mxr_engine *e = NULL;
    if (mxr_options_new(&o) != MXR_OK ||
        mxr_options_add_server(o, cfg.server) != MXR_OK ||
        mxr_options_set(o, MXR_OPT_MAX_INFLIGHT, (int64_t)cfg.window) !=
            MXR_OK ||
        mxr_options_set(o, MXR_OPT_FAMILY, cfg.family) != MXR_OK ||
        mxr_options_set(o, MXR_OPT_SEED, 1) != MXR_OK ||
        (cache_bytes >= 0 &&
         mxr_options_set(o, MXR_OPT_CACHE_MAX_BYTES, cache_bytes) != MXR_OK)) {
        fprintf(stderr, "options: %s\n", o ? mxr_options_errmsg(o) : "oom");
        exit(1);
    }
    if (cfg.count_allocs)
        mxr_options_set_allocator(o, counting_alloc, NULL);
    if (cfg.policy != POLICY_NONE) {
        const char *src =
            cfg.policy == POLICY_NOOP ? POLICY_NOOP_SRC : POLICY_REWRITE_SRC;
        if (mxr_options_add_policy_text(o, policy_names[cfg.policy], src,
                                        NULL) != MXR_OK) {
            fprintf(stderr, "policy: %s\n", mxr_options_errmsg(o));
            exit(1);
        }
        mxr_options_set_log(o, on_log, NULL);
    }
    mxr_status st = mxr_engine_new(o, &e);
    if (st != MXR_OK) {
        fprintf(stderr, "engine: %s: %s\n", mxr_strerror(st),
                mxr_options_errmsg(o));
        exit(1);
    }
    mxr_options_free(o);
    return e;
}

/* One round of the engine's own poll loop (mxr_engine_run_once): the
 * descriptor list grows with the engine's, nothing is left unwatched. */
static void poll_once(mxr_engine *e)
{
    if (mxr_engine_run_once(e, 1000) != MXR_OK) {
        fprintf(stderr, "bench_mxroute: %s\n", mxr_engine_errmsg(e));
        exit(1);
    }
}

typedef struct counts {
    size_t done, ok, failed;
} counts;

/* With the rewrite policy: the relay is there, added by the policy, with
 * its one address, and one MX host went (the zone gives 2 per domain). */
static bool rewritten(const mxr_plan *plan)
{
    bool relay = false;
    size_t mx = 0;
    for (size_t i = 0; i < plan->ncandidates; i++) {
        const mxr_candidate *c = &plan->candidates[i];
        if (c->source == MXR_SOURCE_MX)
            mx++;
        else if (c->source == MXR_SOURCE_POLICY &&
                 strcmp(c->host, RELAY_HOST) == 0 && c->naddrs == 1 &&
                 c->label && strcmp(c->label, "relay") == 0)
            relay = true;
    }
    return relay && mx == 1 && plan->ncandidates == 2 && plan->nskipped == 1;
}

static void on_plan(void *arg, mxr_status st, mxr_plan *plan)
{
    counts *c = arg;
    c->done++;
    if (st == MXR_OK && plan->result == MXR_RESULT_OK &&
        plan->ncandidates > 0 &&
        (cfg.policy != POLICY_REWRITE || rewritten(plan)))
        c->ok++;
    else
        c->failed++;
    mxr_plan_free(plan);
}

/* Route names[from..to) keeping up to backlog requests pending (c has
 * counted the first from already). */
static void route_range(mxr_engine *e, size_t from, size_t to, counts *c)
{
    size_t next = from;
    while (c->done < to) {
        while (next < to && mxr_engine_pending(e) < cfg.backlog) {
            mxr_status st = mxr_route(e, names[next], on_plan, c);
            if (st != MXR_OK) {
                fprintf(stderr, "mxr_route(%s): %s: %s\n", names[next],
                        mxr_strerror(st), mxr_engine_errmsg(e));
                exit(1);
            }
            next++;
        }
        poll_once(e);
    }
}

static void route_all(mxr_engine *e, size_t n, counts *c)
{
    route_range(e, 0, n, c);
}

static void print_stats(const char *tag, mxr_engine *e)
{
    mxr_stats s;
    mxr_engine_stats(e, &s);
    printf("STATS %s routes=%llu plan_hits=%llu queries_sent=%llu "
           "coalesced=%llu cache_hits=%llu evictions=%llu cache_entries=%zu "
           "cache_bytes=%zu inflight_max=%zu bytes_allocated=%zu\n",
           tag, (unsigned long long)s.routes, (unsigned long long)s.plan_hits,
           (unsigned long long)s.queries_sent,
           (unsigned long long)s.queries_coalesced,
           (unsigned long long)s.cache_hits,
           (unsigned long long)s.cache_evictions, s.cache_entries,
           s.cache_bytes, s.inflight_max, s.bytes_allocated);
}

/* ---------------------------------------------------------------- modes */

static int mode_cold(void)
{
    size_t n = cfg.n && cfg.n < nnames ? cfg.n : nnames;
    mxr_engine *e = engine_new(-1);
    counts c = {0};
    uint64_t a0 = n_allocs;
    static uint64_t sizes0[SIZE_SLOTS];
    memcpy(sizes0, allocs_by_size, sizeof sizes0);
    double cpu0 = bench_cpu(), t0 = bench_now();
    route_all(e, n, &c);
    double secs = bench_now() - t0, cpu = bench_cpu() - cpu0;
    mxr_stats s;
    mxr_engine_stats(e, &s);
    printf("RESULT mxroute_cold domains=%zu ok=%zu failed=%zu queries=%llu "
           "window=%zu backlog=%zu seconds=%.3f dps=%.0f qps=%.0f cpu_s=%.3f "
           "cpu_us_per_domain=%.2f",
           n, c.ok, c.failed, (unsigned long long)s.queries_sent, cfg.window,
           cfg.backlog, secs, (double)n / secs,
           (double)s.queries_sent / secs, cpu, cpu * 1e6 / (double)n);
    if (cfg.count_allocs)
        printf(" allocs_per_domain=%.1f", (double)(n_allocs - a0) / (double)n);
    printf("\n");
    if (cfg.count_allocs)
        print_alloc_sizes(sizes0, n);
    print_stats("cold", e);
    mxr_engine_destroy(e);
    return c.ok == n ? 0 : 1;
}

static int mode_cached(void)
{
    size_t m = cfg.set < nnames ? cfg.set : nnames;
    mxr_engine *e = engine_new(-1);
    counts warm = {0};
    route_all(e, m, &warm);
    if (warm.ok != m) {
        fprintf(stderr, "cached: warm-up routed %zu of %zu\n", warm.ok, m);
        return 1;
    }
    mxr_stats s0;
    mxr_engine_stats(e, &s0);
    counts c = {0};
    size_t batch = cfg.batch ? cfg.batch : 1, k = 0;
    uint64_t a0 = n_allocs;
    double cpu0 = bench_cpu(), t0 = bench_now();
    for (size_t r = 0; r < cfg.rounds;) {
        for (size_t b = 0; b < batch && r < cfg.rounds; b++, r++) {
            if (mxr_route(e, names[k], on_plan, &c) != MXR_OK) {
                fprintf(stderr, "mxr_route: %s\n", mxr_engine_errmsg(e));
                return 1;
            }
            if (++k == m)
                k = 0;
        }
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    }
    while (mxr_engine_pending(e) > 0)
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    double secs = bench_now() - t0, cpu = bench_cpu() - cpu0;
    mxr_stats s;
    mxr_engine_stats(e, &s);
    printf("RESULT mxroute_cached policy=%s set=%zu routes=%zu ok=%zu "
           "failed=%zu batch=%zu plan_hits=%llu queries_sent=%llu "
           "policy_calls=%llu policy_errors=%llu seconds=%.3f "
           "decisions_per_s=%.0f cpu_s=%.3f ns_per_decision=%.1f "
           "bytes_allocated_growth=%lld",
           policy_names[cfg.policy], m, cfg.rounds, c.ok, c.failed, batch,
           (unsigned long long)(s.plan_hits - s0.plan_hits),
           (unsigned long long)(s.queries_sent - s0.queries_sent),
           (unsigned long long)(s.policy_calls - s0.policy_calls),
           (unsigned long long)(s.policy_errors - s0.policy_errors), secs,
           (double)cfg.rounds / secs, cpu, secs * 1e9 / (double)cfg.rounds,
           (long long)s.bytes_allocated - (long long)s0.bytes_allocated);
    if (cfg.count_allocs)
        printf(" allocs_per_decision=%.2f",
               (double)(n_allocs - a0) / (double)cfg.rounds);
    printf("\n");
    bool hooks_ok = cfg.policy == POLICY_NONE
                        ? s.policy_calls == 0
                        : s.policy_calls - s0.policy_calls == cfg.rounds &&
                              s.policy_errors == 0;
    if (!hooks_ok)
        fprintf(stderr, "cached: %llu hook calls, %llu hook errors for %zu "
                        "routes\n",
                (unsigned long long)(s.policy_calls - s0.policy_calls),
                (unsigned long long)s.policy_errors, cfg.rounds);
    if (c.ok != cfg.rounds)
        fprintf(stderr, "cached: %zu of %zu plans not as expected\n",
                c.failed, cfg.rounds);
    mxr_engine_destroy(e);
    return c.ok == cfg.rounds && hooks_ok ? 0 : 1;
}

static int mode_memory(void)
{
    size_t k = cfg.n && cfg.n < nnames ? cfg.n : nnames;
    cfg.count_allocs = true; /* the hook sees every block, plans included */
    malloc_trim(0);
    size_t rss0 = bench_rss();
    mxr_engine *e = engine_new((int64_t)1 << 40); /* never evict */
    mxr_stats s0, s1;
    mxr_engine_stats(e, &s0);
    int64_t hook0 = live_bytes;
    counts c = {0};
    /* The marginal cost, from half the domains to all of them: what the
     * engine's fixed parts (pools, the first buckets) hold does not count
     * there, the growth of the cache's bucket array does. */
    size_t half = k / 2;
    route_range(e, 0, half, &c);
    mxr_stats sh;
    mxr_engine_stats(e, &sh);
    int64_t hook_half = live_bytes;
    route_range(e, half, k, &c);
    malloc_trim(0);
    size_t rss1 = bench_rss();
    mxr_engine_stats(e, &s1);
    double per_cache = (double)s1.cache_bytes / (double)k;
    double per_alloc =
        (double)(s1.bytes_allocated - s0.bytes_allocated) / (double)k;
    double per_rss = rss1 > rss0 ? (double)(rss1 - rss0) / (double)k : 0;
    double per_hook = (double)(live_bytes - hook0) / (double)k;
    double rest = (double)(k - half);
    double marginal_hook = (double)(live_bytes - hook_half) / rest;
    double marginal_cache = (double)(s1.cache_bytes - sh.cache_bytes) / rest;
    printf("RESULT mxroute_memory domains=%zu ok=%zu cache_entries=%zu "
           "entries_per_domain=%.2f evictions=%llu cache_bytes=%zu "
           "bytes_allocated=%zu cache_bytes_per_domain=%.0f "
           "allocated_bytes_per_domain=%.0f hook_bytes_per_domain=%.0f "
           "rss_delta=%zu rss_bytes_per_domain=%.0f "
           "marginal_cache_bytes_per_domain=%.0f "
           "marginal_hook_bytes_per_domain=%.0f\n",
           k, c.ok, s1.cache_entries, (double)s1.cache_entries / (double)k,
           (unsigned long long)s1.cache_evictions, s1.cache_bytes,
           s1.bytes_allocated, per_cache, per_alloc, per_hook, rss1 - rss0,
           per_rss, marginal_cache, marginal_hook);
    print_live_blocks(k);
    mxr_engine_destroy(e);
    return c.ok == k ? 0 : 1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_mxroute cold|cached|memory --server IP:PORT "
            "--list FILE\n"
            "  [-n N] [-w WINDOW] [--backlog P] [--set M] [--rounds R]\n"
            "  [--batch B] [--family ipv4|any] [--count-allocs]\n"
            "  [--policy none|noop|rewrite]   (cached mode)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"server", 1, 0, 's'},  {"list", 1, 0, 'l'},
        {"backlog", 1, 0, 'p'}, {"set", 1, 0, 'm'},
        {"rounds", 1, 0, 'r'},  {"batch", 1, 0, 'b'},
        {"family", 1, 0, 'f'},  {"count-allocs", 0, 0, 'c'},
        {"policy", 1, 0, 'P'},  {0, 0, 0, 0}};
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "s:l:n:w:", lo, NULL)) != -1) {
        switch (c) {
        case 's': cfg.server = optarg; break;
        case 'l': cfg.list = optarg; break;
        case 'n': cfg.n = strtoul(optarg, NULL, 10); break;
        case 'w': cfg.window = strtoul(optarg, NULL, 10); break;
        case 'p': cfg.backlog = strtoul(optarg, NULL, 10); break;
        case 'm': cfg.set = strtoul(optarg, NULL, 10); break;
        case 'r': cfg.rounds = strtoul(optarg, NULL, 10); break;
        case 'b': cfg.batch = strtoul(optarg, NULL, 10); break;
        case 'f':
            if ((cfg.family = mxr_family_parse(optarg)) < 0)
                usage();
            break;
        case 'c': cfg.count_allocs = true; break;
        case 'P':
            cfg.policy = -1;
            for (int i = 0; policy_names[i]; i++)
                if (strcmp(optarg, policy_names[i]) == 0)
                    cfg.policy = i;
            if (cfg.policy < 0)
                usage();
            break;
        default: usage();
        }
    }
    if (!cfg.server || !cfg.list || cfg.window == 0 || cfg.backlog == 0)
        usage();
    nnames = bench_read_list(cfg.list, &names);
    if (strcmp(mode, "cold") == 0)
        return mode_cold();
    if (strcmp(mode, "cached") == 0)
        return mode_cached();
    if (strcmp(mode, "memory") == 0)
        return mode_memory();
    usage();
    return 2;
}
