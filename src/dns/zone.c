/* dns_zone.c -- the offline resolver: answers from zone files loaded by
 * ldns, behaving like a recursive resolver in front of authoritative
 * servers for those zones. Answers are built as wire packets so that they
 * go through the same parser as network answers.
 *
 * Names outside every loaded zone answer REFUSED, as an authoritative server
 * would. An owner with TXT "mxroute-fault=servfail|refused|timeout" answers
 * every query for that name with that fault (an offline-test extension). */
#include "dns/backend.h"
#include "dns/zone_read.h"

#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <string.h>

#define FAULT_PREFIX "mxroute-fault="

typedef struct zone_query {
    struct zone_query *next;
    mxr__dns_cb cb;
    void *arg;
    uint16_t qtype;
    char name[];
} zone_query;

typedef struct zone_backend {
    mxr__backend base;
    mxr__alloc *a; /* the core's */
    ldns_dnssec_zone **zones;
    size_t nzones;
    zone_query *head, *tail;
} zone_backend;

/* ------------------------------------------------------------ loading */

static mxr_status zone_error(char *err, size_t errlen, const char *name,
                             int line, const char *what)
{
    snprintf(err, errlen, "%s:%d: %s", name, line, what);
    return MXR_EZONE;
}

static FILE *zone_open(const mxr__zone_source *src)
{
    if (src->text)
        return fmemopen((void *)src->text, strlen(src->text), "r");
    return fopen(src->name, "r");
}

static const ldns_rdf *zone_apex(const ldns_dnssec_zone *z)
{
    return z->soa ? z->soa->name : NULL;
}

static bool apex_loaded(const zone_backend *zb, const ldns_rdf *apex)
{
    for (size_t i = 0; i < zb->nzones; i++)
        if (ldns_dname_compare(zone_apex(zb->zones[i]), apex) == 0)
            return true;
    return false;
}

static mxr_status zone_load_one(zone_backend *zb, const mxr__zone_source *src,
                                char *err, size_t errlen)
{
    FILE *fp = zone_open(src);
    if (!fp)
        return zone_error(err, errlen, src->name, 0, strerror(errno));
    ldns_dnssec_zone *z = NULL;
    int line = 0;
    const char *why = mxr__zone_read(fp, &z, &line);
    fclose(fp);
    if (why)
        return zone_error(err, errlen, src->name, line, why);
    if (!zone_apex(z) || apex_loaded(zb, zone_apex(z))) {
        ldns_dnssec_zone_deep_free(z);
        return zone_error(err, errlen, src->name, 0,
                          "zone has no SOA, or its apex is loaded twice");
    }
    ldns_dnssec_zone_add_empty_nonterminals(z);
    zb->zones[zb->nzones++] = z;
    return MXR_OK;
}

/* ----------------------------------------------------------- answering */

/* The loaded zone with the longest apex that contains name. */
static ldns_dnssec_zone *zone_for(const zone_backend *zb, const ldns_rdf *name)
{
    ldns_dnssec_zone *best = NULL;
    size_t best_labels = 0;
    for (size_t i = 0; i < zb->nzones; i++) {
        const ldns_rdf *apex = zone_apex(zb->zones[i]);
        bool inside = ldns_dname_compare(apex, name) == 0 ||
                      ldns_dname_is_subdomain(name, apex);
        size_t labels = ldns_dname_label_count(apex);
        if (inside && (!best || labels > best_labels)) {
            best = zb->zones[i];
            best_labels = labels;
        }
    }
    return best;
}

static ldns_dnssec_rrs *rrs_of(ldns_dnssec_zone *z, const ldns_rdf *name,
                               ldns_rr_type type)
{
    ldns_dnssec_rrsets *set = ldns_dnssec_zone_find_rrset(z, name, type);
    return set ? set->rrs : NULL;
}

static bool name_exists(ldns_dnssec_zone *z, const ldns_rdf *name)
{
    return ldns_rbtree_search(z->names, name) != NULL;
}

/* The fault configured for name by a TXT record, or MXR__DNS_OK. */
static mxr__rcode fault_of(ldns_dnssec_zone *z, const ldns_rdf *name)
{
    for (ldns_dnssec_rrs *r = rrs_of(z, name, LDNS_RR_TYPE_TXT); r;
         r = r->next) {
        char *txt = ldns_rdf2str(ldns_rr_rdf(r->rr, 0));
        mxr__rcode rc = MXR__DNS_OK;
        if (txt && strstr(txt, FAULT_PREFIX "servfail"))
            rc = MXR__DNS_SERVFAIL;
        else if (txt && strstr(txt, FAULT_PREFIX "refused"))
            rc = MXR__DNS_REFUSED;
        else if (txt && strstr(txt, FAULT_PREFIX "timeout"))
            rc = MXR__DNS_TIMEOUT;
        LDNS_FREE(txt);
        if (rc != MXR__DNS_OK)
            return rc;
    }
    return MXR__DNS_OK;
}

/* Push copies of rrs, owned by `owner` (a wildcard's records are
 * synthesised under the name asked, RFC 4592). */
static void push_rrs(ldns_pkt *pkt, ldns_pkt_section sec, ldns_dnssec_rrs *r,
                     const ldns_rdf *owner)
{
    for (; r; r = r->next) {
        ldns_rr *rr = ldns_rr_clone(r->rr);
        if (owner) {
            ldns_rdf_deep_free(ldns_rr_owner(rr));
            ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
        }
        ldns_pkt_push_rr(pkt, sec, rr);
    }
}

static void push_soa(ldns_pkt *pkt, ldns_dnssec_zone *z)
{
    push_rrs(pkt, LDNS_SECTION_AUTHORITY,
             rrs_of(z, zone_apex(z), LDNS_RR_TYPE_SOA), NULL);
}

/* The wildcard that covers a name absent from z: "*." + its closest
 * existing ancestor, if that wildcard exists. Caller frees. */
static ldns_rdf *wildcard_for(ldns_dnssec_zone *z, const ldns_rdf *name)
{
    ldns_rdf *parent = ldns_dname_left_chop(name);
    while (parent && !name_exists(z, parent) &&
           ldns_dname_is_subdomain(parent, zone_apex(z))) {
        ldns_rdf *up = ldns_dname_left_chop(parent);
        ldns_rdf_deep_free(parent);
        parent = up;
    }
    ldns_rdf *star = ldns_dname_new_frm_str("*");
    ldns_rdf *wild = NULL;
    if (parent && star && ldns_dname_cat(star, parent) == LDNS_STATUS_OK &&
        name_exists(z, star)) {
        wild = star;
        star = NULL;
    }
    ldns_rdf_deep_free(star);
    ldns_rdf_deep_free(parent);
    return wild;
}

/* Answer one name of the chain from zone z. Returns true when the chain
 * ends here; otherwise *next is the CNAME target to follow. */
static bool answer_name(ldns_pkt *pkt, ldns_dnssec_zone *z,
                        const ldns_rdf *name, ldns_rr_type qtype,
                        const ldns_rdf **next)
{
    ldns_rdf *wild = name_exists(z, name) ? NULL : wildcard_for(z, name);
    const ldns_rdf *src = wild ? wild : name;
    const ldns_rdf *owner = wild ? name : NULL;
    ldns_dnssec_rrs *rrs = rrs_of(z, src, qtype);
    ldns_dnssec_rrs *cname = rrs_of(z, src, LDNS_RR_TYPE_CNAME);
    bool end = rrs || !cname;
    if (end) {
        push_rrs(pkt, LDNS_SECTION_ANSWER, rrs, owner);
        if (!rrs)
            push_soa(pkt, z);
        if (!rrs && !wild && !name_exists(z, name))
            ldns_pkt_set_rcode(pkt, LDNS_RCODE_NXDOMAIN);
    } else {
        push_rrs(pkt, LDNS_SECTION_ANSWER, cname, owner);
        *next = ldns_rr_rdf(cname->rr, 0);
    }
    ldns_rdf_deep_free(wild);
    return end;
}

/* Fill pkt for (qname, qtype), following CNAMEs across loaded zones.
 * Returns a transport-level fault instead when one is configured. */
static mxr__rcode zone_answer(const zone_backend *zb, ldns_pkt *pkt,
                              const ldns_rdf *qname, ldns_rr_type qtype)
{
    const ldns_rdf *name = qname;
    for (int hop = 0; hop <= MXR__CNAME_CHAIN_MAX; hop++) {
        ldns_dnssec_zone *z = zone_for(zb, name);
        if (!z)
            return hop == 0 ? MXR__DNS_REFUSED : MXR__DNS_SERVFAIL;
        mxr__rcode fault = fault_of(z, name);
        if (fault != MXR__DNS_OK)
            return fault;
        if (answer_name(pkt, z, name, qtype, &name))
            return MXR__DNS_OK;
    }
    return MXR__DNS_OK; /* the parser reports the over-long chain */
}

static void zone_resolve(zone_backend *zb, const zone_query *q)
{
    ldns_rdf *qname = ldns_dname_new_frm_str(q->name);
    ldns_pkt *pkt = qname ? ldns_pkt_query_new(ldns_rdf_clone(qname), q->qtype,
                                               LDNS_RR_CLASS_IN, LDNS_RD)
                          : NULL;
    mxr__rcode rc =
        pkt ? zone_answer(zb, pkt, qname, q->qtype) : MXR__DNS_NETWORK;
    uint8_t *wire = NULL;
    size_t len = 0;
    if (rc == MXR__DNS_OK) {
        ldns_pkt_set_qr(pkt, true);
        ldns_pkt_set_ra(pkt, true);
        if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK)
            rc = MXR__DNS_NETWORK;
    }
    q->cb(q->arg, rc, rc == MXR__DNS_OK ? wire : NULL, len);
    LDNS_FREE(wire);
    ldns_pkt_free(pkt);
    ldns_rdf_deep_free(qname);
}

/* ---------------------------------------------------- backend interface */

static int zone_query_op(mxr__backend *b, const char *name, uint16_t qtype,
                         mxr__dns_cb cb, void *arg)
{
    zone_backend *zb = (zone_backend *)b;
    size_t n = strlen(name);
    zone_query *q = mxr__malloc(zb->a, sizeof *q + n + 1);
    if (!q)
        return -1;
    *q = (zone_query){.cb = cb, .arg = arg, .qtype = qtype};
    memcpy(q->name, name, n + 1);
    if (zb->tail)
        zb->tail->next = q;
    else
        zb->head = q;
    zb->tail = q;
    return 0;
}

static zone_backend *of_source(mxr__io_source *src)
{
    return mxr__container_of(src, zone_backend, base.io);
}

/* Zone answers need no descriptor: a queued question is due at once. */
static int zone_timeout(mxr__io_source *src, int max_ms)
{
    return of_source(src)->head ? 0 : -1;
}

static zone_query *zone_pop(zone_backend *zb)
{
    zone_query *q = zb->head;
    if (q) {
        zb->head = q->next;
        if (!zb->head)
            zb->tail = NULL;
    }
    return q;
}

/* Answers only the queries queued before this call: callbacks may queue
 * more, which wait for the next round like network answers would. */
static void zone_process(mxr__io_source *src, int fd, mxr__io_handle *h,
                         bool readable, bool writable)
{
    zone_backend *zb = of_source(src);
    zone_query *last = zb->tail;
    zone_query *q;
    while (last && (q = zone_pop(zb)) != NULL) {
        zone_resolve(zb, q);
        bool was_last = q == last;
        mxr__free(zb->a, q);
        if (was_last)
            break;
    }
}

/* Every question still queued is answered CANCELLED. */
static void zone_shutdown(mxr__io_source *src)
{
    zone_backend *zb = of_source(src);
    zone_query *q;
    while ((q = zone_pop(zb)) != NULL) {
        q->cb(q->arg, MXR__DNS_CANCELLED, NULL, 0);
        mxr__free(zb->a, q);
    }
}

static void zone_destroy(mxr__backend *b)
{
    zone_backend *zb = (zone_backend *)b;
    zone_shutdown(&zb->base.io);
    for (size_t i = 0; i < zb->nzones; i++)
        ldns_dnssec_zone_deep_free(zb->zones[i]);
    mxr__free(zb->a, zb->zones);
    mxr__free(zb->a, zb);
}

static const mxr__backend_ops zone_ops = {
    .query = zone_query_op,
    .destroy = zone_destroy,
};

static const mxr__io_ops zone_io_ops = {
    .name = "zone files",
    .timeout = zone_timeout,
    .process = zone_process,
    .shutdown = zone_shutdown,
};

mxr_status mxr__zone_new(const mxr__zone_source *src, size_t n,
                         mxr__core *core, mxr__backend **out, char *err,
                         size_t errlen)
{
    mxr__alloc *a = &core->a;
    zone_backend *zb = mxr__calloc(a, 1, sizeof *zb);
    if (!zb || !(zb->zones = mxr__calloc(a, n ? n : 1, sizeof *zb->zones))) {
        mxr__free(a, zb);
        return MXR_ENOMEM;
    }
    zb->base.ops = &zone_ops;
    zb->base.io.ops = &zone_io_ops;
    zb->a = a;
    for (size_t i = 0; i < n; i++) {
        mxr_status st = zone_load_one(zb, &src[i], err, errlen);
        if (st != MXR_OK) {
            zone_destroy(&zb->base);
            return st;
        }
    }
    mxr__io_register(core, &zb->base.io);
    *out = &zb->base;
    return MXR_OK;
}
