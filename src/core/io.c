/* io.c -- the I/O-source registry: which source watches which descriptor
 * (a table indexed by descriptor, grown on demand), and the embedder's
 * fds / timeout / process calls answered from it. */
#include "core/core.h"

#include <string.h>

/* What the core knows of one descriptor. */
struct mxr__io_entry {
    mxr__io_source *src; /* NULL: not watched */
    mxr__io_handle *h;
    int want;
    size_t slot; /* its index in c->watched */
};

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
        /* only its own watch: the number may be another source's now */
        if (known && c->by_fd[fd].src == src) {
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

int mxr__io_want(const mxr__core *c, int fd)
{
    return fd >= 0 && (size_t)fd < c->by_fd_cap ? c->by_fd[fd].want : 0;
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
        int t = s->ops->timeout(s, MXR__POLL_MAX_MS);
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
