/* backend.h -- the resolver backend interface. A backend sends one question
 * and later calls back once with the wire answer or a transport failure.
 * Two backends: c-ares on the network (ares.c) and zone files (zone.c).
 * Each is an I/O source of the engine core: its answers come from the
 * core's process rounds. */
#ifndef MXR_DNS_BACKEND_H
#define MXR_DNS_BACKEND_H

#include "core/core.h"
#include "dns/answer.h"

/* wire/len are valid only during the call. When wire is NULL, rc says why
 * (timeout, servfail, refused, network, cancelled). */
typedef void (*mxr__dns_cb)(void *arg, mxr__rcode rc, const uint8_t *wire,
                            size_t len);

typedef struct mxr__backend mxr__backend;

typedef struct mxr__backend_ops {
    /* 0 on success (callback will fire once), -1 when out of memory. */
    int (*query)(mxr__backend *b, const char *name, uint16_t qtype,
                 mxr__dns_cb cb, void *arg);
    /* Frees the backend; its I/O source's shutdown has run before. */
    void (*destroy)(mxr__backend *b);
} mxr__backend_ops;

/* io.ops->shutdown fires every pending callback with MXR__DNS_CANCELLED;
 * it may run more than once. */
struct mxr__backend {
    const mxr__backend_ops *ops;
    mxr__io_source io;
};

/* The most questions c-ares holds at once by default; more wait in the
 * backend's FIFO (ares.c says why). */
#define MXR__ARES_INFLIGHT_CAP 100

typedef struct mxr__ares_config {
    const char *servers_csv; /* NULL: /etc/resolv.conf */
    int timeout_ms;
    int tries;
    size_t inflight_cap; /* 0: MXR__ARES_INFLIGHT_CAP */
} mxr__ares_config;

/* Both constructors register the backend with the core as an I/O source. */
mxr_status mxr__ares_new(const mxr__ares_config *cfg, mxr__core *core,
                         mxr__backend **out, char *err, size_t errlen);

/* Zone sources: file paths or in-memory text. */
typedef struct mxr__zone_source {
    const char *name; /* path, or a label for text */
    const char *text; /* NULL: read the file at name */
} mxr__zone_source;

mxr_status mxr__zone_new(const mxr__zone_source *src, size_t n, mxr__core *core,
                         mxr__backend **out, char *err, size_t errlen);

#endif
