/* rules.h -- failover and retry rules: the decision table of DESIGN.md
 * section 4 with per-domain overrides. */
#ifndef MXR_RULES_H
#define MXR_RULES_H

#include "mxroute.h"

struct mxr_rules {
    mxr_action table[MXR_STAGE_COUNT_][MXR_CLASS_COUNT_];
    int64_t v[MXR_RULE_COUNT_];
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
                                const mxr_rules *defaults,
                                const char *domain);

/* Connection-level classes: they say nothing about the message, only
 * about the path to the server (health memory counts them). */
bool mxr__class_is_connection(mxr_class cls);

#endif
