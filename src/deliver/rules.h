/* rules.h -- failover and retry rules: the default decision table
 * (docs/failover.md, section 3) with per-domain overrides. */
#ifndef MXR_RULES_H
#define MXR_RULES_H

#include "base/enums.h"

struct mxr_rules {
    mxr_action table[MXR__STAGE_N][MXR__CLASS_N];
    int64_t v[MXR__RULE_N];
};

/* Rules bound to a domain: "example.com" (exact) or ".example.com" (its
 * subdomains, like transport(5)). */
typedef struct mxr__domain_rules {
    char *domain;
    mxr_rules rules;
} mxr__domain_rules;

/* The most specific rules for domain: exact, then the longest matching
 * ".suffix", then the defaults. */
const mxr_rules *mxr__rules_for(const mxr__domain_rules *list, size_t n,
                                const mxr_rules *defaults, const char *domain);

/* Connection-level classes: they say nothing about the message, only
 * about the path to the server (health memory counts them). */
bool mxr__class_is_connection(mxr_class cls);

#endif
