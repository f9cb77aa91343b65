/* addr.h -- address parsing and the safety classification of addresses. */
#ifndef MXR_ADDR_H
#define MXR_ADDR_H

#include "mxroute.h"

typedef enum mxr__addr_class {
    MXR__ADDR_GLOBAL = 0,
    MXR__ADDR_PRIVATE,    /* 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 */
    MXR__ADDR_LOOPBACK,   /* 127/8, ::1 */
    MXR__ADDR_UNROUTABLE  /* unspecified, multicast, link-local, broadcast,
                             0/8, 240/4 */
} mxr__addr_class;

/* IPv4-mapped IPv6 addresses are classified as the IPv4 they carry. */
mxr__addr_class mxr__addr_classify(const mxr_addr *a);

/* Parse numeric IPv4 or IPv6 text (no brackets, no zone id). */
bool mxr__addr_parse(const char *text, mxr_addr *out);
bool mxr__addr_equal(const mxr_addr *a, const mxr_addr *b);

#endif
