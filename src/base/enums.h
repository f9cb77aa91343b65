/* enums.h -- how many values each public enum has, for the library's own
 * tables and range checks. Not part of the public API: the public enums
 * are append-only and carry no count, so that a program compiled against
 * one version never sizes an array by another version's count.
 *
 * When a value is appended to a public enum, move its bound here to the
 * new last value; the static assertions in strings.c, options.c and
 * rules.c check that the name tables keep up. */
#ifndef MXR_ENUMS_H
#define MXR_ENUMS_H

#include "mxroute.h"

#define MXR__REASON_N (MXR_REASON_POLICY + 1)
#define MXR__OPT_N (MXR_OPT_SMTP_MAX_REPLY + 1)
#define MXR__STAGE_N (MXR_STAGE_DOT + 1)
#define MXR__CLASS_N (MXR_CLASS_421 + 1)
#define MXR__ACTION_N (MXR_ACTION_DELIVERED + 1)
#define MXR__RULE_N (MXR_RULE_HEALTH_MAX_S + 1)

#endif
