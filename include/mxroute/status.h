/*
 * mxroute/status.h -- the status every call returns.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_STATUS_H
#define MXROUTE_STATUS_H

#include "mxroute/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_status {
    MXR_OK = 0,
    MXR_ENOMEM = 1,     /* out of memory */
    MXR_EINVAL = 2,     /* bad argument or option value */
    MXR_EBADNAME = 3,   /* input is not a valid domain or address */
    MXR_EZONE = 4,      /* zone file or zone text could not be loaded */
    MXR_ESERVER = 5,    /* DNS server address not understood */
    MXR_EDNS = 6,       /* the DNS library failed to initialise */
    MXR_EDESTROYED = 7, /* engine destroyed while the request was pending */
    MXR_EBUSY = 8,      /* too many requests pending in this engine */
    MXR_EINTERNAL = 9,  /* a bug: please report it */
    MXR_EDONE = 10,     /* the attempt is over: nothing left to try */
    MXR_ESTATE = 11,    /* call not valid in the attempt's current state */
    MXR_EPOLICY = 12    /* a policy could not be loaded */
} mxr_status;

/* A sentence for any value; "unknown error" for one this library does
 * not know. */
MXR_EXTERN const char *mxr_strerror(mxr_status status);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_STATUS_H */
