/* ares.c -- the network resolver: c-ares sends the questions, the answers
 * come back as wire bytes for answer.c. c-ares owns no loop either: its
 * socket-state callback tells the engine core which sockets to watch, and
 * the core hands their events back (an I/O source, core/core.h). */
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
    size_t pending;    /* queries sent whose callback has not fired */
    mxr__pool queries; /* cares_query blocks, reused */
} ares_backend;

typedef struct cares_query {
    ares_backend *ab;
    mxr__dns_cb cb;
    void *arg;
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

static int cares_query_op(mxr__backend *b, const char *name, uint16_t qtype,
                          mxr__dns_cb cb, void *arg)
{
    ares_backend *ab = (ares_backend *)b;
    unsigned char *buf = NULL;
    int len = 0;
    cares_query *q = mxr__pool_get(&ab->queries);
    if (!q)
        return -1;
    /* id 0: c-ares replaces it with a random id of its own */
    if (ares_create_query(name, 1 /* class IN */, qtype, 0, 1, &buf, &len,
                          EDNS_UDP_SIZE) != ARES_SUCCESS) {
        mxr__pool_put(&ab->queries, q);
        return -1;
    }
    *q = (cares_query){.ab = ab, .cb = cb, .arg = arg};
    ab->pending++;
    ares_send(ab->channel, buf, len, on_answer, q);
    ares_free_string(buf);
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

/* Cancels what is in flight: every callback fires with CANCELLED. A second
 * call finds nothing left. */
static void ares_shutdown_op(mxr__io_source *src)
{
    ares_backend *ab = of_source(src);
    if (ab->pending > 0)
        ares_cancel(ab->channel);
}

static void ares_destroy_op(mxr__backend *b)
{
    ares_backend *ab = (ares_backend *)b;
    ares_destroy(ab->channel); /* fires what is left: EDESTRUCTION */
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
