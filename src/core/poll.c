/* poll.c -- the engine's own poll loop, for the blocking calls
 * (mxr_route_sync, mxr_engine_run): one round over the watched descriptors,
 * with an array that grows with them. */
#include "core/core.h"

#include <poll.h>

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
        pfd[i] = (struct pollfd){.fd = fd,
                                 .events = poll_events(mxr__io_want(c, fd))};
    }
    int t = mxr__core_timeout(c);
    if (t < 0 || (max_ms >= 0 && t > max_ms))
        t = max_ms < 0 ? MXR__POLL_MAX_MS : max_ms;
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
