/* addr.h -- address parsing and comparison. The safety classification is
 * public (mxr_addr_classify in mxroute/plan.h), implemented in addr.c. */
#ifndef MXR_ADDR_H
#define MXR_ADDR_H

#include "mxroute.h"

/* The safety classes (mxr_addr_classify, mxr_addr_class_name) are
 * public: mxroute/plan.h. */

/* Parse numeric IPv4 or IPv6 text (no brackets, no zone id). */
bool mxr__addr_parse(const char *text, mxr_addr *out);
bool mxr__addr_equal(const mxr_addr *a, const mxr_addr *b);

#endif
