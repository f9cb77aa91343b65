/* core.c -- the engine core's lifetime, its clock and its error channel.
 * The tasks are in task.c, the I/O-source registry in io.c, the poll loop
 * of the blocking calls in poll.c. */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t mxr__monotonic_ms(void *ud)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

void mxr__core_shutdown(mxr__core *c)
{
    c->destroying = true;
    for (mxr__io_source *s = c->sources, *next; s; s = next) {
        next = s->next; /* a source may unregister and free itself */
        s->ops->shutdown(s);
    }
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
