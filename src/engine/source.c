/* source.c -- the program's own I/O sources in the engine's loop
 * (mxr_engine_add_io): a public face on the core's I/O-source
 * registry. The source keeps each watched descriptor's fd_ud in a table
 * by descriptor and finds it from the descriptor the core hands back: no
 * handle points into the table, which moves when it grows. */
#include "engine/engine.h"
#include "core/core.h"

#include <string.h>

typedef struct source_fd {
    bool watched;
    void *fd_ud;
} source_fd;

struct mxr_io {
    mxr__io_source io;
    mxr__core *core;
    const mxr_io_ops *ops;
    void *ud;
    source_fd *fds; /* indexed by descriptor */
    size_t nfds;
};

static mxr_io *of(mxr__io_source *s)
{
    return mxr__container_of(s, mxr_io, io);
}

static int src_timeout(mxr__io_source *s, int max_ms)
{
    mxr_io *src = of(s);
    return src->ops->timeout ? src->ops->timeout(src->ud, max_ms) : -1;
}

static void src_process(mxr__io_source *s, int fd, mxr__io_handle *h,
                        bool readable, bool writable)
{
    mxr_io *src = of(s);
    void *fd_ud = fd >= 0 && (size_t)fd < src->nfds && src->fds[fd].watched
                      ? src->fds[fd].fd_ud
                      : NULL;
    src->ops->process(src->ud, fd, fd_ud, readable, writable);
}

static void source_free(mxr_io *src)
{
    mxr__free(&src->core->a, src->fds);
    mxr__free(&src->core->a, src);
}

static void unwatch_all(mxr_io *src)
{
    for (size_t fd = 0; fd < src->nfds; fd++)
        if (src->fds[fd].watched)
            (void)mxr__io_watch(src->core, &src->io, (int)fd, 0, NULL);
}

/* Engine teardown: tell the program, then free the source (the core reads
 * the next source before calling this). */
static void src_shutdown(mxr__io_source *s)
{
    mxr_io *src = of(s);
    if (src->ops->shutdown)
        src->ops->shutdown(src->ud);
    unwatch_all(src);
    mxr__io_unregister(src->core, &src->io);
    source_free(src);
}

static const mxr__io_ops source_ops = {
    .name = "program source",
    .timeout = src_timeout,
    .process = src_process,
    .shutdown = src_shutdown,
};

mxr_status mxr_engine_add_io(mxr_engine *e, const mxr_io_ops *ops, void *ud,
                             mxr_io **out)
{
    if (!e || !ops || !ops->process || !out)
        return MXR_EINVAL;
    mxr__core *core = mxr__engine_core(e);
    if (core->destroying)
        return MXR_EDESTROYED;
    mxr_io *src = mxr__calloc(&core->a, 1, sizeof *src);
    if (!src)
        return MXR_ENOMEM;
    *src = (mxr_io){.io.ops = &source_ops, .core = core, .ops = ops, .ud = ud};
    mxr__io_register(core, &src->io);
    *out = src;
    return MXR_OK;
}

/* Room for slot fd; new slots are free. */
static mxr_status grow_slots(mxr_io *src, int fd)
{
    size_t need = (size_t)fd + 1, n = src->nfds ? src->nfds : 16;
    if (need <= src->nfds)
        return MXR_OK;
    while (n < need)
        n *= 2;
    source_fd *t = mxr__realloc(&src->core->a, src->fds, n * sizeof *t);
    if (!t)
        return MXR_ENOMEM;
    for (size_t i = src->nfds; i < n; i++)
        t[i] = (source_fd){0};
    src->fds = t;
    src->nfds = n;
    return MXR_OK;
}

mxr_status mxr_io_watch(mxr_io *src, int fd, int want, void *fd_ud)
{
    if (!src || fd < 0)
        return MXR_EINVAL;
    if (want == 0) {
        if ((size_t)fd < src->nfds)
            src->fds[fd] = (source_fd){0};
        return mxr__io_watch(src->core, &src->io, fd, 0, NULL);
    }
    if (grow_slots(src, fd) != MXR_OK) {
        mxr__core_error(src->core,
                        "program source: descriptor %d cannot be watched: "
                        "out of memory",
                        fd);
        return MXR_ENOMEM;
    }
    mxr_status st = mxr__io_watch(src->core, &src->io, fd, want, NULL);
    if (st == MXR_OK)
        src->fds[fd] = (source_fd){.watched = true, .fd_ud = fd_ud};
    return st;
}

void mxr_io_remove(mxr_io *src)
{
    if (!src)
        return;
    unwatch_all(src);
    mxr__io_unregister(src->core, &src->io);
    source_free(src);
}
