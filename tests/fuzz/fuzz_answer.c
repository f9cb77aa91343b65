/* fuzz_answer.c -- DNS answers from a hostile server, wire bytes in, plan
 * out: the whole path of src/dns/answer.c, the lookup layer (cache, CNAME
 * chase, coalescing, the in-flight window), route.c and the ordering
 * rules, then a delivery attempt along the plan.
 *
 * The engine runs on a backend of ours that answers each query, in the
 * order they are sent, with the next chunk of the input:
 *
 *   header   7 bytes: options (family, filters, own name, cache size,
 *            seed), host/address/record limits, the in-flight window,
 *            which inputs to route
 *   then     a chunk per query, in the order they are sent (u16 length,
 *            a mode byte, the bytes), and between the routes the bytes
 *            the attempts take (tests/fuzz/harness.c)
 *
 * Mode "splice" (the common one) builds a packet from the chunk's first
 * 12 bytes as the header (QDCOUNT forced to 1), our question, then the
 * rest of the chunk: the question matches, so the fuzzer works on the
 * records. "raw" sends the chunk as it is (mismatched questions, bad
 * headers); the others stand for transport failures, a backend that fails
 * to send, and one that calls back from inside the query. */
#include "harness.h"

#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#define SMALL_CACHE 4096 /* bytes: small enough that eviction happens */

enum {
    MODE_SPLICE,
    MODE_RAW,
    MODE_TIMEOUT,
    MODE_SERVFAIL,
    MODE_REFUSED,
    MODE_NETWORK,
    MODE_SEND_FAILS,
    MODE_SYNC_CALLBACK,
    MODE_SPLICE_AGAIN, /* splice twice as likely: it reaches the records */
    MODE_COUNT
};

typedef struct fz_query {
    struct fz_query *next;
    mxr__dns_cb cb;
    void *arg;
    uint16_t qtype;
    int mode;
    const uint8_t *body; /* in the fuzz input, alive for the whole run */
    size_t len;
    char name[];
} fz_query;

typedef struct fz_backend {
    mxr__backend base;
    mxr__alloc *a;
    fz_reader *r;
    fz_query *head, *tail;
} fz_backend;

/* ------------------------------------------------------------ packets */

static void answer(const fz_query *q)
{
    static const mxr__rcode failures[] = {
        [MODE_TIMEOUT] = MXR__DNS_TIMEOUT,
        [MODE_SERVFAIL] = MXR__DNS_SERVFAIL,
        [MODE_REFUSED] = MXR__DNS_REFUSED,
        [MODE_NETWORK] = MXR__DNS_NETWORK,
    };
    if (q->mode == MODE_RAW) {
        q->cb(q->arg, MXR__DNS_OK, q->len ? q->body : NULL, q->len);
    } else if (q->mode == MODE_SPLICE || q->mode == MODE_SPLICE_AGAIN) {
        size_t len = 0;
        uint8_t *w = fz_splice_answer(q->body, q->len, q->name, q->qtype, &len);
        q->cb(q->arg, w ? MXR__DNS_OK : MXR__DNS_NETWORK, w, len);
        free(w);
    } else {
        q->cb(q->arg, failures[q->mode], NULL, 0);
    }
}

/* ------------------------------------------------------ the backend */

static int fb_query(mxr__backend *b, const char *name, uint16_t qtype,
                    mxr__dns_cb cb, void *arg)
{
    fz_backend *fb = (fz_backend *)b;
    uint16_t want = fz_u16(fb->r);
    int mode = fz_byte(fb->r) % MODE_COUNT;
    const uint8_t *body;
    size_t len = fz_take(fb->r, &body, want);
    if (mode == MODE_SEND_FAILS)
        return -1;
    if (mode == MODE_SYNC_CALLBACK) { /* c-ares may do this on errors */
        cb(arg, MXR__DNS_SERVFAIL, NULL, 0);
        return 0;
    }
    size_t n = strlen(name);
    fz_query *q = mxr__malloc(fb->a, sizeof *q + n + 1);
    if (!q)
        return -1;
    *q = (fz_query){.cb = cb,
                    .arg = arg,
                    .qtype = qtype,
                    .mode = mode,
                    .body = body,
                    .len = len};
    memcpy(q->name, name, n + 1);
    if (fb->tail)
        fb->tail->next = q;
    else
        fb->head = q;
    fb->tail = q;
    return 0;
}

static fz_query *fb_pop(fz_backend *fb)
{
    fz_query *q = fb->head;
    if (q && !(fb->head = q->next))
        fb->tail = NULL;
    return q;
}

static fz_backend *of_source(mxr__io_source *src)
{
    return mxr__container_of(src, fz_backend, base.io);
}

static int fb_timeout(mxr__io_source *src, int max_ms)
{
    return of_source(src)->head ? 0 : -1;
}

/* Only what was queued before: answers may trigger further queries. */
static void fb_process(mxr__io_source *src, int fd, mxr__io_handle *h,
                       bool readable, bool writable)
{
    fz_backend *fb = of_source(src);
    fz_query *last = fb->tail, *q;
    while (last && (q = fb_pop(fb)) != NULL) {
        answer(q);
        bool was_last = q == last;
        mxr__free(fb->a, q);
        if (was_last)
            break;
    }
}

static void fb_shutdown(mxr__io_source *src)
{
    fz_backend *fb = of_source(src);
    fz_query *q;
    while ((q = fb_pop(fb)) != NULL) {
        q->cb(q->arg, MXR__DNS_CANCELLED, NULL, 0);
        mxr__free(fb->a, q);
    }
}

static void fb_destroy(mxr__backend *b)
{
    fz_backend *fb = (fz_backend *)b;
    fb_shutdown(&fb->base.io);
    mxr__free(fb->a, fb);
}

static const mxr__backend_ops fb_ops = {
    .query = fb_query,
    .destroy = fb_destroy,
};

static const mxr__io_ops fb_io_ops = {
    .name = "fuzz backend",
    .timeout = fb_timeout,
    .process = fb_process,
    .shutdown = fb_shutdown,
};

static mxr__backend *make_backend(mxr__core *core, void *r)
{
    fz_backend *fb = mxr__calloc(&core->a, 1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->base.ops = &fb_ops;
    fb->base.io.ops = &fb_io_ops;
    fb->a = &core->a;
    fb->r = r;
    mxr__io_register(core, &fb->base.io);
    return &fb->base;
}

/* The engine is made with a tiny zone (so no network is touched), then
 * its backend is swapped for ours. */
static bool swap_backend(mxr_engine *e, fz_reader *r)
{
    return mxr__engine_replace_backend(e, make_backend, r) == MXR_OK;
}

/* ------------------------------------------------------------ routing */

/* What the header chose, for the checks at the end. */
typedef struct setup {
    fz_plan_rules rules;
    size_t cache_max, window;
} setup;

static mxr_options *make_options(fz_reader *r, fz_alloc *alloc, setup *su)
{
    static const char zone[] = "$ORIGIN fuzz.invalid.\n"
                               "@ 3600 IN SOA ns hostmaster 1 3600 600 "
                               "86400 300\n";
    mxr_options *o;
    if (mxr_options_new(&o) != MXR_OK)
        return NULL;
    /* one statement per byte: the order of reads must not depend on the
     * compiler (initialisers and arguments are unsequenced) */
    uint8_t flags = fz_byte(r);
    fz_plan_rules *rules = &su->rules;
    *rules = (fz_plan_rules){
        .family = (mxr_family)(flags % 5),
        .allow_loopback = flags & 8,
        .deny_private = flags & 16,
    };
    rules->max_hosts = 1 + fz_byte(r) % 24;
    rules->max_addrs_per_host = 1 + fz_byte(r) % 10;
    rules->max_addrs_total = 1 + fz_byte(r) % 40;
    mxr_options_set(o, MXR_OPT_FAMILY, rules->family);
    mxr_options_set(o, MXR_OPT_ALLOW_LOOPBACK, rules->allow_loopback);
    mxr_options_set(o, MXR_OPT_DENY_PRIVATE, rules->deny_private);
    mxr_options_set(o, MXR_OPT_MAX_HOSTS, (int64_t)rules->max_hosts);
    mxr_options_set(o, MXR_OPT_MAX_ADDRS_PER_HOST,
                    (int64_t)rules->max_addrs_per_host);
    mxr_options_set(o, MXR_OPT_MAX_ADDRS_TOTAL,
                    (int64_t)rules->max_addrs_total);
    mxr_options_set(o, MXR_OPT_MAX_MX_RECORDS, 1 + fz_byte(r) % 100);
    if (flags & 32)
        mxr_options_add_local_name(o, "mx1.example.com");
    su->cache_max = flags & 64 ? SMALL_CACHE : 64u << 20;
    mxr_options_set(o, MXR_OPT_CACHE_MAX_BYTES, (int64_t)su->cache_max);
    su->window = 1 + fz_byte(r) % 8;
    mxr_options_set(o, MXR_OPT_MAX_INFLIGHT, (int64_t)su->window);
    mxr_options_set(o, MXR_OPT_SEED, flags >> 7);
    mxr_options_set_allocator(o, fz_alloc_fn, alloc);
    mxr_options_set_clock(o, fz_clock, NULL);
    mxr_options_add_zone_text(o, "fuzz", zone);
    return o;
}

static void route_rounds(mxr_engine *e, const fz_plan_rules *rules,
                         fz_reader *r)
{
    static const char *const inputs[] = {"example.com", "User@Example.COM.",
                                         "mx1.example.com",
                                         "xn--bcher-kva.example"};
    uint8_t pick = fz_byte(r);
    const char *first = inputs[pick % 4], *second = inputs[(pick % 4) ^ 1];
    fz_result a = {0}, b = {0}, c = {0};
    /* two at once: the same domain shares its queries */
    FZ_ASSERT(mxr_route(e, first, fz_on_route, &a) == MXR_OK);
    FZ_ASSERT(mxr_route(e, second, fz_on_route, &b) == MXR_OK);
    fz_run(e);
    fz_settle(e, &a, rules, r);
    fz_settle(e, &b, rules, r);
    fz_now_ms += (uint64_t)fz_byte(r) * 1000; /* cached, or expired */
    FZ_ASSERT(mxr_route(e, first, fz_on_route, &c) == MXR_OK);
    fz_run(e);
    fz_settle(e, &c, rules, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    fz_alloc alloc = {0};
    setup su;
    mxr_engine *e = NULL;
    fz_now_ms = 1000000;
    mxr_options *o = make_options(&r, &alloc, &su);
    if (!o)
        return 0;
    mxr_status st = mxr_engine_new(o, &e);
    mxr_options_free(o);
    FZ_ASSERT(st == MXR_OK);
    if (swap_backend(e, &r))
        route_rounds(e, &su.rules, &r);
    mxr_stats stats;
    mxr_engine_stats(e, &stats);
    FZ_ASSERT(stats.inflight == 0);
    FZ_ASSERT(stats.inflight_max <= su.window);
    FZ_ASSERT(stats.cache_bytes <= su.cache_max);
    mxr_engine_destroy(e);
    FZ_ASSERT(alloc.live == 0); /* the engine gave back everything */
    return 0;
}
