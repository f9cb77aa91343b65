/* core.c -- the engine core: deferred tasks, the I/O-source registry and
 * the poll loop the blocking calls use. */
#include "core/core.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEFAULT_POLL_MS 1000

/* What the core knows of one descriptor. */
struct mxr__io_entry {
    mxr__io_source *src; /* NULL: not watched */
    mxr__io_handle *h;
    int want;
    size_t slot; /* its index in c->watched */
};

uint64_t mxr__monotonic_ms(void *ud)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t mxr__seconds_left(uint64_t until_ms, uint64_t now_ms)
{
    if (until_ms <= now_ms)
        return 0;
    uint64_t s = (until_ms - now_ms) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

uint32_t mxr__served_ttl_left(uint64_t until_ms, uint64_t now_ms)
{
    if (until_ms <= now_ms)
        return 0;
    uint64_t d = until_ms - now_ms, s = d / 1000 + (d % 1000 != 0);
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

void mxr__core_init(mxr__core *c, const mxr__alloc *a, mxr_clock_fn clock,
                    void *clock_ud, mxr_sock_fn sock_cb, void *sock_ud)
{
    memset(c, 0, sizeof *c);
    c->a = *a;
    c->clock = clock ? clock : mxr__monotonic_ms;
    c->clock_ud = clock_ud;
    c->sock_cb = sock_cb;
    c->sock_ud = sock_ud;
}

void mxr__core_error(mxr__core *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

/* ----------------------------------------------------- deferred tasks */

void mxr__core_defer(mxr__core *c, mxr__task *t, mxr__task_fn run)
{
    t->run = run;
    t->next = NULL;
    if (c->tasks_tail)
        c->tasks_tail->next = t;
    else
        c->tasks_head = t;
    c->tasks_tail = t;
}

void mxr__core_run_tasks(mxr__core *c)
{
    mxr__task *last = c->tasks_tail; /* what is queued now, no more */
    while (last && c->tasks_head) {
        mxr__task *t = c->tasks_head;
        if (!(c->tasks_head = t->next))
            c->tasks_tail = NULL;
        t->next = NULL;
        t->run(t); /* may free t */
        if (t == last)
            break;
    }
}

void mxr__core_drain(mxr__core *c)
{
    while (c->tasks_head)
        mxr__core_run_tasks(c);
}

/* ----------------------------------------------------------- I/O sources */

void mxr__io_register(mxr__core *c, mxr__io_source *src)
{
    src->next = c->sources;
    c->sources = src;
}

void mxr__io_unregister(mxr__core *c, mxr__io_source *src)
{
    mxr__io_source **pp = &c->sources;
    while (*pp && *pp != src)
        pp = &(*pp)->next;
    if (*pp)
        *pp = src->next;
}

/* Room for descriptor fd in the table and one more watched slot. */
static mxr_status io_reserve(mxr__core *c, int fd)
{
    size_t need = (size_t)fd + 1;
    if (need > c->by_fd_cap) {
        size_t cap = c->by_fd_cap ? c->by_fd_cap : 64;
        while (cap < need)
            cap *= 2;
        mxr__io_entry *t = mxr__realloc(&c->a, c->by_fd, cap * sizeof *t);
        if (!t)
            return MXR_ENOMEM;
        memset(t + c->by_fd_cap, 0, (cap - c->by_fd_cap) * sizeof *t);
        c->by_fd = t;
        c->by_fd_cap = cap;
    }
    if (c->nwatched == c->watched_cap) {
        size_t cap = c->watched_cap ? c->watched_cap * 2 : 64;
        int *w = mxr__realloc(&c->a, c->watched, cap * sizeof *w);
        if (!w)
            return MXR_ENOMEM;
        c->watched = w;
        c->watched_cap = cap;
    }
    return MXR_OK;
}

static void io_unwatch(mxr__core *c, int fd)
{
    mxr__io_entry *e = &c->by_fd[fd];
    int moved = c->watched[--c->nwatched];
    c->watched[e->slot] = moved;
    c->by_fd[moved].slot = e->slot;
    *e = (mxr__io_entry){0};
}

static void tell_embedder(const mxr__core *c, int fd, int want)
{
    if (c->sock_cb)
        c->sock_cb(c->sock_ud, fd, (want & MXR_WANT_READ) != 0,
                   (want & MXR_WANT_WRITE) != 0);
}

mxr_status mxr__io_watch(mxr__core *c, mxr__io_source *src, int fd, int want,
                         mxr__io_handle *h)
{
    if (fd < 0)
        return MXR_EINVAL;
    bool known = (size_t)fd < c->by_fd_cap && c->by_fd[fd].src;
    if (want == 0) {
        if (known) {
            io_unwatch(c, fd);
            tell_embedder(c, fd, 0);
        }
        return MXR_OK;
    }
    if (!known) {
        if (io_reserve(c, fd) != MXR_OK) {
            mxr__core_error(c,
                            "%s: descriptor %d cannot be watched: out of "
                            "memory",
                            src->ops->name, fd);
            return MXR_ENOMEM;
        }
        c->by_fd[fd].slot = c->nwatched;
        c->watched[c->nwatched++] = fd;
    }
    mxr__io_entry *e = &c->by_fd[fd];
    bool changed = !known || e->want != want;
    e->src = src;
    e->h = h;
    e->want = want;
    if (changed)
        tell_embedder(c, fd, want);
    return MXR_OK;
}

void mxr__core_shutdown(mxr__core *c)
{
    c->destroying = true;
    for (mxr__io_source *s = c->sources; s; s = s->next)
        s->ops->shutdown(s);
    mxr__core_drain(c);
}

void mxr__core_free(mxr__core *c)
{
    mxr__free(&c->a, c->by_fd);
    mxr__free(&c->a, c->watched);
    mxr__free(&c->a, c->pollfds);
    c->pollfds = NULL;
    c->pollfds_cap = 0;
    c->by_fd = NULL;
    c->watched = NULL;
    c->by_fd_cap = c->watched_cap = c->nwatched = 0;
}

/* ------------------------------------------------------- the event loop */

size_t mxr__core_fds(const mxr__core *c, mxr_sock *out, size_t max)
{
    for (size_t i = 0; i < c->nwatched && i < max; i++) {
        int fd = c->watched[i];
        out[i] = (mxr_sock){.fd = fd, .want = c->by_fd[fd].want};
    }
    return c->nwatched;
}

int mxr__core_timeout(mxr__core *c)
{
    if (c->tasks_head)
        return 0;
    int best = -1;
    for (mxr__io_source *s = c->sources; s; s = s->next) {
        int t = s->ops->timeout(s, DEFAULT_POLL_MS);
        if (t >= 0 && (best < 0 || t < best))
            best = t;
    }
    return best;
}

/* The source watching fd, or NULL (a stale event after an unwatch). */
static mxr__io_source *dispatch(mxr__core *c, int fd, bool rd, bool wr)
{
    if (fd < 0 || (size_t)fd >= c->by_fd_cap || !c->by_fd[fd].src)
        return NULL;
    mxr__io_entry e = c->by_fd[fd];
    e.src->ops->process(e.src, fd, e.h, rd, wr);
    return e.src;
}

void mxr__core_process(mxr__core *c, int read_fd, int write_fd)
{
    mxr__io_source *a = NULL, *b = NULL;
    if (read_fd >= 0 && read_fd == write_fd) {
        a = dispatch(c, read_fd, true, true);
    } else {
        a = dispatch(c, read_fd, true, false);
        b = dispatch(c, write_fd, false, true);
    }
    /* Every other source gets its round too: timeouts are handled there,
     * as a c-ares process call would. */
    for (mxr__io_source *s = c->sources; s; s = s->next)
        if (s != a && s != b)
            s->ops->process(s, MXR_NOFD, NULL, false, false);
    mxr__core_run_tasks(c);
}

static short poll_events(int want)
{
    return (short)((want & MXR_WANT_READ ? POLLIN : 0) |
                   (want & MXR_WANT_WRITE ? POLLOUT : 0));
}

/* The poll array for n descriptors, taken out of the core for the round:
 * a callback that runs a blocking call (a nested round) gets its own. */
static struct pollfd *pollfds_take(mxr__core *c, size_t n, size_t *cap)
{
    struct pollfd *p = c->pollfds;
    *cap = c->pollfds_cap;
    c->pollfds = NULL;
    c->pollfds_cap = 0;
    if (n > *cap) {
        struct pollfd *q = mxr__realloc(&c->a, p, n * sizeof *q);
        if (!q) {
            mxr__free(&c->a, p);
            return NULL;
        }
        p = q;
        *cap = n;
    }
    return p;
}

static void pollfds_give_back(mxr__core *c, struct pollfd *p, size_t cap)
{
    if (cap > c->pollfds_cap) {
        mxr__free(&c->a, c->pollfds);
        c->pollfds = p;
        c->pollfds_cap = cap;
    } else {
        mxr__free(&c->a, p);
    }
}

mxr_status mxr__core_poll_once(mxr__core *c, int max_ms)
{
    size_t n = c->nwatched, cap = 0;
    struct pollfd *pfd = pollfds_take(c, n, &cap);
    if (n && !pfd) {
        mxr__core_error(c, "poll: no memory for %zu descriptors", n);
        return MXR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int fd = c->watched[i];
        pfd[i] =
            (struct pollfd){.fd = fd, .events = poll_events(c->by_fd[fd].want)};
    }
    int t = mxr__core_timeout(c);
    if (t < 0 || (max_ms >= 0 && t > max_ms))
        t = max_ms < 0 ? DEFAULT_POLL_MS : max_ms;
    int ready = t == 0 && n == 0 ? 0 : poll(pfd, (nfds_t)n, t);
    bool any = false;
    for (size_t i = 0; ready > 0 && i < n; i++) {
        if (!pfd[i].revents)
            continue;
        bool rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
        bool wr = pfd[i].revents & POLLOUT;
        mxr__core_process(c, rd ? pfd[i].fd : MXR_NOFD,
                          wr ? pfd[i].fd : MXR_NOFD);
        any = true;
    }
    pollfds_give_back(c, pfd, cap);
    if (!any)
        mxr__core_process(c, MXR_NOFD, MXR_NOFD);
    return MXR_OK;
}
