/* core.h -- the engine core: what every subsystem shares, and nothing that
 * belongs to one of them. The allocator and the clock, the deferred-task
 * queue (the callback contract: a callback never fires from inside the call
 * that started the request), the I/O-source registry that maps each watched
 * descriptor to its owner, request accounting, and the error channel.
 *
 * The core knows no subsystem. An I/O source (the DNS backend, the SMTP
 * sessions, later a listener or an HTTPS client) registers a small table of
 * operations and tells the core which descriptors it wants watched; the
 * core answers the embedder's fds / timeout / process calls from that.
 * docs/architecture.md, "Adding an I/O source", walks through it. */
#ifndef MXR_CORE_H
#define MXR_CORE_H

#include "base/alloc.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mxr__core mxr__core;

/* The longest a round waits when nothing is due: sources are asked for
 * their timeout up to this, and the poll loop sleeps at most this long. */
#define MXR__POLL_MAX_MS 1000

/* ----------------------------------------------------- deferred tasks */

/* A task lives inside the request it belongs to (container_of gets the
 * request back), so deferring never allocates and never fails: a request
 * that holds its task can always report later. A task is queued at most
 * once at a time. */
typedef struct mxr__task mxr__task;
typedef void (*mxr__task_fn)(mxr__task *t);
struct mxr__task {
    mxr__task *next;
    mxr__task_fn run;
};

#define mxr__container_of(ptr, type, member)                                   \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Queue t to run from the next mxr_engine_process (FIFO). */
void mxr__core_defer(mxr__core *c, mxr__task *t, mxr__task_fn run);

/* ----------------------------------------------------------- I/O sources */

typedef struct mxr__io_source mxr__io_source;

/* What a source watches: embedded in the source's own per-descriptor
 * object (an SMTP session, say), so a ready descriptor leads straight back
 * to it. Sources with one object for all their descriptors (c-ares) pass
 * NULL and get the descriptor alone. */
typedef struct mxr__io_handle {
    int fd;
} mxr__io_handle;

typedef struct mxr__io_ops {
    const char *name; /* in error messages */
    /* ms until the source must be processed with no descriptor ready, at
     * most max_ms; -1 when it waits for nothing. */
    int (*timeout)(mxr__io_source *src, int max_ms);
    /* A watched descriptor is ready (h is what was given to watch), or,
     * with fd MXR_NOFD, a round without an event for this source: handle
     * what is due. */
    void (*process)(mxr__io_source *src, int fd, mxr__io_handle *h,
                    bool readable, bool writable);
    /* Engine teardown: stop, fail what is pending, unwatch everything. It
     * may unregister and free the source. */
    void (*shutdown)(mxr__io_source *src);
} mxr__io_ops;

struct mxr__io_source {
    const mxr__io_ops *ops;
    mxr__io_source *next; /* the core's list */
};

/* Register src (its ops set by the caller); sources are shut down in the
 * reverse order of registration. */
void mxr__io_register(mxr__core *c, mxr__io_source *src);

/* Take src out of the registry (it watches nothing any more). */
void mxr__io_unregister(mxr__core *c, mxr__io_source *src);

/* Watch fd for want (MXR_WANT_READ | MXR_WANT_WRITE) on behalf of src; 0
 * stops watching it. The embedder's socket callback hears of each change.
 * MXR_OK, or MXR_ENOMEM when the registry cannot grow: the descriptor is
 * not watched and the error channel says so; nothing is dropped in
 * silence. A negative fd is MXR_EINVAL. */
mxr_status mxr__io_watch(mxr__core *c, mxr__io_source *src, int fd, int want,
                         mxr__io_handle *h);

/* ------------------------------------------------- requests and errors */

/* Requests accepted whose callback has not fired (mxr_engine_pending). */
static inline void mxr__core_request_begin(mxr__core *c);
static inline void mxr__core_request_end(mxr__core *c);

/* The one error channel: the last failure's message, for
 * mxr_engine_errmsg. */
void mxr__core_error(mxr__core *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------- the core */

typedef struct mxr__io_entry mxr__io_entry; /* core.c */

struct mxr__core {
    mxr__alloc a;
    mxr_clock_fn clock;
    void *clock_ud;
    mxr_sock_fn sock_cb; /* the embedder's socket-state callback */
    void *sock_ud;
    mxr_log_fn log;
    void *log_ud;
    size_t pending;  /* accepted requests whose callback has not fired */
    bool destroying; /* set first in teardown: no new work is accepted */
    /* private to core/: task.c (the queue), io.c (the registry), poll.c */
    mxr__task *tasks_head, *tasks_tail;
    mxr__io_source *sources;
    mxr__io_entry *by_fd; /* indexed by descriptor */
    size_t by_fd_cap;
    int *watched; /* the watched descriptors, densely */
    size_t nwatched, watched_cap;
    void *pollfds; /* mxr__core_poll_once's array, kept between rounds */
    size_t pollfds_cap;
    char err[256];
};

static inline void mxr__core_request_begin(mxr__core *c)
{
    c->pending++;
}

static inline void mxr__core_request_end(mxr__core *c)
{
    c->pending--;
}

static inline uint64_t mxr__core_now(const mxr__core *c)
{
    return c->clock(c->clock_ud);
}

/* Set up with the embedder's hooks (NULL clock: CLOCK_MONOTONIC). */
void mxr__core_init(mxr__core *c, const mxr__alloc *a, mxr_clock_fn clock,
                    void *clock_ud, mxr_sock_fn sock_cb, void *sock_ud);
/* Teardown, first half: shut every source down (last registered first)
 * and run what they queued until the queue is empty. Sources may still
 * unwatch their descriptors until mxr__core_free. */
void mxr__core_shutdown(mxr__core *c);
/* Teardown, second half: free the registry. */
void mxr__core_free(mxr__core *c);

/* What fd is watched for (MXR_WANT_*), 0 when it is not. */
int mxr__io_want(const mxr__core *c, int fd);

/* The embedder's loop (mxr_engine_fds / timeout / process). */
size_t mxr__core_fds(const mxr__core *c, mxr_sock *out, size_t max);
int mxr__core_timeout(mxr__core *c);
void mxr__core_process(mxr__core *c, int read_fd, int write_fd);
/* Run queued tasks: those queued before the call (tasks they queue wait
 * for the next round, so a busy caller cannot starve socket events). */
void mxr__core_run_tasks(mxr__core *c);
/* Run tasks until none is left (teardown). */
void mxr__core_drain(mxr__core *c);

/* The engine's own poll loop: one round, waiting at most max_ms (-1: the
 * core's timeout). Returns MXR_OK, or MXR_ENOMEM when the poll set cannot
 * be built. */
mxr_status mxr__core_poll_once(mxr__core *c, int max_ms);

/* A monotonic clock in ms, for loops that bound real time. */
uint64_t mxr__monotonic_ms(void *ud);

/* Whole seconds from now_ms until until_ms, 0 once it has passed: how
 * long a plan or a cached answer may still be used. Inline: every cached
 * route counts its TTLs down with these. */
static inline uint32_t mxr__seconds_left(uint64_t until_ms, uint64_t now_ms)
{
    if (until_ms <= now_ms)
        return 0;
    uint64_t s = (until_ms - now_ms) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* What is left at now_ms of a TTL as served that ends at until_ms: the TTL
 * less the whole seconds elapsed, as caching resolvers count, so that a
 * fresh answer shows the TTL it came with. */
static inline uint32_t mxr__served_ttl_left(uint64_t until_ms, uint64_t now_ms)
{
    if (until_ms <= now_ms)
        return 0;
    uint64_t d = until_ms - now_ms, s = d / 1000 + (d % 1000 != 0);
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

#endif
