/* zone_read.c -- our own loop over ldns_rr_new_frm_fp_l instead of
 * ldns_dnssec_zone_new_frm_fp_l, because ldns 1.8.3, given zone text from
 * anyone:
 *  - reads a freed record when a zone has a second SOA followed by a
 *    record without TTL (use after free; found by tests/fuzz/fuzz_zone.c);
 *  - leaks every record read before a syntax error, and every duplicate
 *    record (ldns_dnssec_rrs_add_rr drops it without freeing it);
 *  - takes time quadratic in the size of an RRset, recursing once per
 *    record: 300,000 A records at one name never finished loading.
 * So: a second SOA is an error, duplicates are freed, and RRsets and the
 * types at a name are bounded. DNSSEC records are skipped: routing does
 * not look at them, and they are what ldns's special cases are about. */
#include "dns/zone_read.h"

#include <stdbool.h>

#define DEFAULT_TTL 3600

typedef struct reader {
    ldns_dnssec_zone *z;
    ldns_rdf *origin, *prev; /* $ORIGIN, and the owner of the last line */
    uint32_t ttl_directive;  /* $TTL, once seen (RFC 2308 section 4) */
    bool has_directive;
    uint32_t last_ttl; /* else the last TTL stated (RFC 1035 5.1) */
} reader;

static bool is_dnssec(ldns_rr_type t)
{
    return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC ||
           t == LDNS_RR_TYPE_NSEC3 || t == LDNS_RR_TYPE_NSEC3PARAM;
}

/* Is this very record in the zone? ldns keeps one of two equal records
 * and says nothing about the other. */
static bool stored(const ldns_dnssec_zone *z, const ldns_rr *rr)
{
    const ldns_dnssec_rrsets *set =
        ldns_dnssec_zone_find_rrset(z, ldns_rr_owner(rr), ldns_rr_get_type(rr));
    for (const ldns_dnssec_rrs *r = set ? set->rrs : NULL; r; r = r->next)
        if (r->rr == rr)
            return true;
    return false;
}

/* Would adding rr pass the bounds on the RRset and the types at its
 * name? */
static const char *within_bounds(const ldns_dnssec_zone *z, const ldns_rr *rr)
{
    ldns_rbnode_t *node =
        z->names ? ldns_rbtree_search(z->names, ldns_rr_owner(rr)) : NULL;
    if (!node)
        return NULL;
    size_t types = 0, records = 0;
    const ldns_dnssec_name *name = node->data;
    for (const ldns_dnssec_rrsets *s = name->rrsets; s; s = s->next) {
        types++;
        for (const ldns_dnssec_rrs *r = s->rrs;
             s->type == ldns_rr_get_type(rr) && r; r = r->next)
            records++;
    }
    if (records >= MXR__ZONE_RRSET_MAX)
        return "more than 1000 records of one type at one name";
    if (types >= MXR__ZONE_TYPES_MAX)
        return "more than 256 record types at one name";
    return NULL;
}

/* The zone takes rr, or it is freed here. */
static const char *keep(reader *rd, ldns_rr *rr)
{
    ldns_rr_type type = ldns_rr_get_type(rr);
    const char *why = NULL;
    if (type == LDNS_RR_TYPE_SOA && rd->z->soa)
        why = "a second SOA record";
    else if (!is_dnssec(type))
        why = within_bounds(rd->z, rr);
    if (why || is_dnssec(type)) {
        ldns_rr_free(rr);
        return why;
    }
    if (type == LDNS_RR_TYPE_SOA && !rd->origin) /* as ldns does */
        rd->origin = ldns_rdf_clone(ldns_rr_owner(rr));
    ldns_status st = ldns_dnssec_zone_add_rr(rd->z, rr);
    if (st != LDNS_STATUS_OK || !stored(rd->z, rr))
        ldns_rr_free(rr);
    return st == LDNS_STATUS_OK ? NULL : ldns_get_errorstr_by_id(st);
}

/* One line (or one record over several lines); NULL when it is fine. */
static const char *read_one(reader *rd, FILE *fp, int *line)
{
    uint32_t ttl = rd->has_directive ? rd->ttl_directive : rd->last_ttl;
    ldns_rr *rr = NULL;
    ldns_status st =
        ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &rd->origin, &rd->prev, line);
    switch (st) {
    case LDNS_STATUS_OK:
        if (!rd->has_directive)
            rd->last_ttl = ldns_rr_ttl(rr);
        return keep(rd, rr);
    case LDNS_STATUS_SYNTAX_TTL:
        rd->ttl_directive = ttl;
        rd->has_directive = true;
        return NULL;
    case LDNS_STATUS_SYNTAX_EMPTY:
    case LDNS_STATUS_SYNTAX_ORIGIN:
        return NULL;
    case LDNS_STATUS_SYNTAX_INCLUDE: /* no file is opened on a zone's word */
        return ldns_get_errorstr_by_id(LDNS_STATUS_SYNTAX_INCLUDE_ERR_NOTIMPL);
    default:
        return ldns_get_errorstr_by_id(st);
    }
}

const char *mxr__zone_read(FILE *fp, ldns_dnssec_zone **out, int *line)
{
    reader rd = {.z = ldns_dnssec_zone_new(), .last_ttl = DEFAULT_TTL};
    const char *why = rd.z ? NULL : "out of memory";
    while (!why && !feof(fp))
        why = read_one(&rd, fp, line);
    ldns_rdf_deep_free(rd.origin);
    ldns_rdf_deep_free(rd.prev);
    if (why) {
        ldns_dnssec_zone_deep_free(rd.z);
        return why;
    }
    *out = rd.z;
    return NULL;
}
