/* ares.c -- the network resolver: c-ares sends the questions, the answers
 * come back as wire bytes for answer.c. c-ares owns no loop either: its
 * socket-state callback tells the engine core which sockets to watch, and
 * the core hands their events back (an I/O source, core/core.h).
 *
 * At most inflight_cap questions are in c-ares at once; the rest wait here
 * in a FIFO, already encoded. c-ares 1.18 walks every query in flight on
 * each process and timeout call, and one UDP socket loses answers when a
 * few hundred arrive together (each loss costs a full timeout): past a few
 * hundred in flight it collapses. The caller's window (the lookup layer's
 * max_inflight) may be larger; the cap keeps the channel where it is fast. */
#include "dns/backend.h"
#include "base/pool.h"

#include <ares.h>
#include <stdio.h>
#include <string.h>

#define EDNS_UDP_SIZE 1232 /* the DNS flag day 2020 value */
#define QUERY_POOL_MAX 256 /* idle query blocks kept for the next ones */

typedef struct ares_backend {
    mxr__backend base;
    mxr__core *core;
    ares_channel channel;
    size_t pending;      /* queries in c-ares whose callback has not fired */
    size_t inflight_cap; /* the most handed to c-ares at once */
    struct cares_query *wait_head, **wait_tail; /* FIFO, not sent yet */
    bool pumping;      /* inside pump(): a nested call leaves the work to it */
    bool closing;      /* inside shutdown: nothing more goes to c-ares */
    mxr__pool queries; /* cares_query blocks, reused */
} ares_backend;

typedef struct cares_query {
    ares_backend *ab;
    mxr__dns_cb cb;
    void *arg;
    struct cares_query *next; /* in the FIFO */
    unsigned char *wire;      /* the encoded question while it waits */
    int len;
} cares_query;

static mxr__rcode map_status(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return MXR__DNS_TIMEOUT;
    case ARES_ESERVFAIL:
        return MXR__DNS_SERVFAIL;
    case ARES_EREFUSED:
        return MXR__DNS_REFUSED;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return MXR__DNS_CANCELLED;
    default:
        return MXR__DNS_NETWORK; /* refused connection, bad answer, ... */
    }
}

static void pump(ares_backend *ab);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                      int alen)
{
    cares_query *q = arg;
    ares_backend *ab = q->ab;
    ab->pending--;
    if (status == ARES_SUCCESS && abuf && alen > 0)
        q->cb(q->arg, MXR__DNS_OK, abuf, (size_t)alen);
    else
        q->cb(q->arg, map_status(status), NULL, 0);
    mxr__pool_put(&ab->queries, q); /* at most QUERY_POOL_MAX kept */
    pump(ab);
}

/* --------------------------------------------------- the waiting FIFO */

static void send_now(ares_backend *ab, cares_query *q, unsigned char *wire,
                     int len)
{
    ab->pending++;
    ares_send(ab->channel, wire, len, on_answer, q); /* may call back */
    ares_free_string(wire);
}

static void wait_push(ares_backend *ab, cares_query *q)
{
    q->next = NULL;
    *ab->wait_tail = q;
    ab->wait_tail = &q->next;
}

static cares_query *wait_pop(ares_backend *ab)
{
    cares_query *q = ab->wait_head;
    if (q && !(ab->wait_head = q->next))
        ab->wait_tail = &ab->wait_head;
    return q;
}

/* Moves waiting questions into c-ares while it has room. An answer that
 * comes back from inside ares_send (a synchronous failure) calls pump
 * again: the outer loop does that work, so the stack stays flat. */
static void pump(ares_backend *ab)
{
    if (ab->pumping || ab->closing)
        return;
    ab->pumping = true;
    while (ab->pending < ab->inflight_cap && ab->wait_head) {
        cares_query *q = wait_pop(ab);
        send_now(ab, q, q->wire, q->len);
    }
    ab->pumping = false;
}

/* Every waiting question is answered CANCELLED, those that the callbacks
 * queue meanwhile too. */
static void cancel_waiting(ares_backend *ab)
{
    cares_query *q;
    while ((q = wait_pop(ab)) != NULL) {
        ares_free_string(q->wire);
        q->cb(q->arg, MXR__DNS_CANCELLED, NULL, 0);
        mxr__pool_put(&ab->queries, q);
    }
}

/* c-ares opened, changed or closed a socket: the core watches it for us.
 * Should the core's table not grow, its error says so and the queries on
 * that socket time out: slower, never lost. */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable)
{
    ares_backend *ab = data;
    int want = (readable ? MXR_WANT_READ : 0) | (writable ? MXR_WANT_WRITE : 0);
    (void)mxr__io_watch(ab->core, &ab->base.io, (int)fd, want, NULL);
}

/* Sent at once while c-ares has room and nobody waits, else queued: the
 * FIFO keeps the order of the questions. */
static int cares_query_op(mxr__backend *b, const char *name, uint16_t qtype,
                          mxr__dns_cb cb, void *arg)
{
    ares_backend *ab = (ares_backend *)b;
    unsigned char *wire = NULL;
    int len = 0;
    cares_query *q = mxr__pool_get(&ab->queries);
    if (!q)
        return -1;
    /* id 0: c-ares replaces it with a random id of its own */
    if (ares_create_query(name, 1 /* class IN */, qtype, 0, 1, &wire, &len,
                          EDNS_UDP_SIZE) != ARES_SUCCESS) {
        mxr__pool_put(&ab->queries, q);
        return -1;
    }
    *q = (cares_query){.ab = ab, .cb = cb, .arg = arg};
    if (ab->pending < ab->inflight_cap && !ab->wait_head && !ab->closing) {
        send_now(ab, q, wire, len);
    } else {
        q->wire = wire;
        q->len = len;
        wait_push(ab, q);
    }
    return 0;
}

static ares_backend *of_source(mxr__io_source *src)
{
    return mxr__container_of(src, ares_backend, base.io);
}

static int ares_timeout_op(mxr__io_source *src, int max_ms)
{
    ares_backend *ab = of_source(src);
    if (ab->pending == 0)
        return -1;
    struct timeval maxtv = {max_ms / 1000, (max_ms % 1000) * 1000};
    struct timeval tv;
    struct timeval *t = ares_timeout(ab->channel, &maxtv, &tv);
    long ms = t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
    return (int)ms;
}

/* c-ares reads the ready socket and handles its timeouts in one call. */
static void ares_process_op(mxr__io_source *src, int fd, mxr__io_handle *h,
                            bool readable, bool writable)
{
    ares_backend *ab = of_source(src);
    ares_socket_t none = ARES_SOCKET_BAD;
    ares_process_fd(ab->channel, readable ? (ares_socket_t)fd : none,
                    writable ? (ares_socket_t)fd : none);
}

/* Cancels what waits and what is in flight: every callback fires with
 * CANCELLED. While it runs, the callbacks' new questions wait instead of
 * reaching c-ares, and are cancelled too. A second call finds nothing
 * left. */
static void ares_shutdown_op(mxr__io_source *src)
{
    ares_backend *ab = of_source(src);
    ab->closing = true;
    cancel_waiting(ab);
    if (ab->pending > 0)
        ares_cancel(ab->channel);
    cancel_waiting(ab);
    ab->closing = false;
}

static void ares_destroy_op(mxr__backend *b)
{
    ares_backend *ab = (ares_backend *)b;
    ab->closing = true;
    cancel_waiting(ab);
    ares_destroy(ab->channel); /* fires what is left: EDESTRUCTION */
    cancel_waiting(ab);        /* what those callbacks asked */
    mxr__pool_drain(&ab->queries);
    mxr__free(&ab->core->a, ab);
}

static const mxr__backend_ops ares_ops = {
    .query = cares_query_op,
    .destroy = ares_destroy_op,
};

static const mxr__io_ops ares_io_ops = {
    .name = "c-ares",
    .timeout = ares_timeout_op,
    .process = ares_process_op,
    .shutdown = ares_shutdown_op,
};

/* Explicit timeouts and tries: c-ares defaults can take over a minute to
 * give up on a dead server. No search list: we only ask absolute names.
 * NOCHECKRESP: c-ares 1.18 reports a retried SERVFAIL or REFUSED as
 * ECONNREFUSED, losing the cause; we take the packet and classify its rcode
 * ourselves. The price: with several servers, a SERVFAIL is final for that
 * query (a timeout still moves on to the next server). */
static int channel_init(ares_backend *ab, const mxr__ares_config *cfg)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP;
    o.timeout = cfg->timeout_ms;
    o.tries = cfg->tries;
    o.ednspsz = EDNS_UDP_SIZE;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = ab;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
               ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_STATE_CB;
    return ares_init_options(&ab->channel, &o, mask);
}

mxr_status mxr__ares_new(const mxr__ares_config *cfg, mxr__core *core,
                         mxr__backend **out, char *err, size_t errlen)
{
    mxr__alloc *a = &core->a;
    ares_backend *ab = mxr__calloc(a, 1, sizeof *ab);
    if (!ab)
        return MXR_ENOMEM;
    ab->base.ops = &ares_ops;
    ab->base.io.ops = &ares_io_ops;
    ab->core = core;
    ab->inflight_cap =
        cfg->inflight_cap ? cfg->inflight_cap : MXR__ARES_INFLIGHT_CAP;
    ab->wait_tail = &ab->wait_head;
    mxr__pool_init(&ab->queries, a, sizeof(cares_query), QUERY_POOL_MAX);
    int rc = channel_init(ab, cfg);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        mxr__free(a, ab);
        return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_EDNS;
    }
    if (cfg->servers_csv &&
        (rc = ares_set_servers_ports_csv(ab->channel, cfg->servers_csv)) !=
            ARES_SUCCESS) {
        snprintf(err, errlen, "DNS server list '%s': %s", cfg->servers_csv,
                 ares_strerror(rc));
        ares_destroy(ab->channel);
        mxr__free(a, ab);
        return MXR_ESERVER;
    }
    mxr__io_register(core, &ab->base.io);
    *out = &ab->base;
    return MXR_OK;
}
