/* dns.h -- the resolver backend interface. A backend sends one question and
 * later calls back once with the wire answer or a transport failure. Two
 * backends: c-ares on the network (dns_ares.c) and zone files (dns_zone.c). */
#ifndef MXR_DNS_H
#define MXR_DNS_H

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
    size_t (*fds)(mxr__backend *b, mxr_sock *out, size_t max);
    /* ms until process must run, at most max_ms; -1 if idle. */
    int (*timeout)(mxr__backend *b, int max_ms);
    void (*process)(mxr__backend *b, int read_fd, int write_fd);
    /* Fires every pending callback with MXR__DNS_CANCELLED, then frees. */
    void (*destroy)(mxr__backend *b);
} mxr__backend_ops;

struct mxr__backend {
    const mxr__backend_ops *ops;
};

typedef struct mxr__ares_config {
    const char *servers_csv; /* NULL: /etc/resolv.conf */
    int timeout_ms;
    int tries;
    mxr_sock_fn sock_cb;
    void *sock_ud;
} mxr__ares_config;

mxr_status mxr__ares_new(const mxr__ares_config *cfg, mxr__alloc *a,
                         mxr__backend **out, char *err, size_t errlen);

/* Zone sources: file paths or in-memory text. */
typedef struct mxr__zone_source {
    const char *name; /* path, or a label for text */
    const char *text; /* NULL: read the file at name */
} mxr__zone_source;

mxr_status mxr__zone_new(const mxr__zone_source *src, size_t n,
                         mxr__alloc *a, mxr__backend **out, char *err,
                         size_t errlen);

#endif
