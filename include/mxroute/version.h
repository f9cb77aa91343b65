/*
 * mxroute/version.h -- library version and the export macro.
 *
 * Part of the public API of libmxroute; include <mxroute.h>, which
 * includes every header of this folder.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_VERSION_H
#define MXROUTE_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MXR_EXTERN __attribute__((visibility("default")))
#else
#define MXR_EXTERN
#endif

/* The version of the headers. Within one soname (libmxroute.so.0.2 for
 * every 0.2.x) releases only add: new functions, new enum values at the
 * end, new fields at the end of the structs that say they may grow. */
#define MXR_VERSION_MAJOR 0
#define MXR_VERSION_MINOR 2
#define MXR_VERSION_PATCH 0
#define MXR_VERSION_STRING "0.2.0"
#define MXR_VERSION_HEX                                                        \
    ((MXR_VERSION_MAJOR << 16) | (MXR_VERSION_MINOR << 8) | MXR_VERSION_PATCH)

/* Runtime version, same encoding as MXR_VERSION_HEX. */
MXR_EXTERN unsigned mxr_version(void);
MXR_EXTERN const char *mxr_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_VERSION_H */
