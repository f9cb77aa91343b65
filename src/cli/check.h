/* check.h -- `mxroute check`: findings about a domain's MX configuration,
 * derived from the routing plan (public API only). */
#ifndef MXR_CHECK_H
#define MXR_CHECK_H

#include "cli.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum chk_sev { CHK_ERROR = 0, CHK_WARNING = 1, CHK_INFO = 2 } chk_sev;

typedef struct chk_finding {
    chk_sev sev;
    const char *code; /* stable: "TARGET-NO-ADDRESS", ... */
    char *message;
    char **records;
    size_t nrecords;
    char *fix;
} chk_finding;

/* One resolver's view (several --server): its plan or failure. */
typedef struct chk_resolver {
    const char *server;
    mxr_status status;
    mxr_plan *plan;
} chk_resolver;

typedef struct chk_report {
    const char *input;
    const mxr_plan *plan;
    bool planning;
    chk_finding *f;
    size_t n, cap;
    chk_resolver *resolvers;
    size_t nresolvers;
} chk_report;

const char *chk_sev_name(chk_sev s);

/* printf into a new string (NULL when out of memory). */
char *chk_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
/* An MX target as written in a record: "" for the root (null MX). */
const char *chk_target(const char *host);

/* One MX record of a plan: a candidate or a skipped entry. */
typedef struct chk_mx {
    unsigned pref;
    const char *host; /* "." for the root */
} chk_mx;
/* The plan's MX records (with mx_only, candidates of other sources left
 * out), by preference then name. *out is NULL when out of memory; free
 * it. */
size_t chk_mx_records(const mxr_plan *p, bool mx_only, chk_mx **out);

/* Add a finding; records is a NULL-terminated list (copied), may be NULL.
 * The message is printf-formatted. */
void chk_add(chk_report *r, chk_sev sev, const char *code,
             const char *const *records, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void chk_report_free(chk_report *r);
/* Add with one record (owned: freed here, may be NULL) and a finished
 * message. */
void chk_add1(chk_report *r, chk_sev sev, const char *code, char *rec,
              const char *fix, const char *msg);

/* Derive every finding from the plan (and the resolvers' plans). */
void chk_findings(chk_report *r);
/* The TTL rules (check_ttl.c): TTL-LOW, TTL-HIGH (the MX records),
 * TARGET-TTL-LOW, TARGET-TTL-HIGH (the hosts' addresses), PLANNING-TTL. */
void chk_rules_ttl(chk_report *r);
/* Sort by severity (errors first), stable. */
void chk_sort(chk_report *r);
size_t chk_count(const chk_report *r, chk_sev s);

/* The sender's view: tiers of the plan's candidates by preference. */
typedef struct chk_tier {
    unsigned preference;
    size_t nhosts;
    const char **hosts; /* sorted by name */
} chk_tier;
size_t chk_tiers(const mxr_plan *p, chk_tier **out);
void chk_tiers_free(chk_tier *t, size_t n);

void chk_out_text(FILE *out, const chk_report *r);
void chk_out_json(FILE *out, const chk_report *r);

#endif
