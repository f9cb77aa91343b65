/* answer_ldns_ref.c -- the reference of fuzz_answer_diff: mxroute's answer
 * parser as it was before dns/wire.c (ldns_wire2pkt, then the routing rules
 * over the ldns packet), kept as test code.
 *
 * The packet is framed here as the library frames it (each record by its
 * rdlength), and ldns decodes its parts: every name with ldns_wire2dname,
 * every record of the types routing reads (A, AAAA, MX, CNAME, SOA) with
 * ldns_wire2rr. Where ldns_wire2pkt broke a rule of docs/security.md, this
 * framing is the fix, and it says so:
 *
 *  - ldns_wire2pkt reads record data field by field and goes on reading
 *    the next record wherever the fields ended, so record data longer or
 *    shorter than its type's form shifted every later record (an A record
 *    of 5 bytes, an MX whose target runs past its rdlength). Here ldns must
 *    use up exactly the record's data and find every field of its type (an
 *    MX of a preference alone used to be skipped): otherwise the answer
 *    cannot be trusted. Empty data stays an ignored record, as it was.
 *  - ldns_wire2pkt refused a whole packet for record data of any type it
 *    knows that did not fit that type (a TXT string running past its
 *    record, an NS name with a pointer loop), although routing never reads
 *    those records: here only their owners are decoded.
 *  - a DNS message is at most 65535 bytes: longer input is refused.
 *
 * Two differences stay, flagged in the result for the target to allow:
 * names c-ares 1.18.1 cannot decode faithfully (more than 50 compression
 * pointers in one name; a label of one NUL byte, which it copies raw and so
 * cuts the text short), which the library refuses and ldns reads; and a
 * compression pointer to offset 0, which ldns refuses and c-ares follows
 * into the header (a name as arbitrary as any other the server can send). */
#include "answer_ldns_ref.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CARES_MAX_INDIRS 50

/* What the parser found before the result is packed. */
typedef struct parsed {
    mxr__rcode rcode;
    bool via_cname;
    const ldns_rdf *dangling; /* CNAME target without records here */
    uint32_t ttl;
    size_t count;
    size_t strbytes;
    ldns_rr **rrs; /* count entries, borrowed from the packet */
} parsed;

static uint32_t sane_ttl(uint32_t ttl)
{
    return ttl > INT32_MAX ? 0 : ttl;
}

static uint32_t rr_ttl(const ldns_rr *rr)
{
    return sane_ttl(ldns_rr_ttl(rr));
}

/* The negative TTL of RFC 2308: min(SOA TTL, SOA MINIMUM); none when
 * there is no SOA. */
static uint32_t negative_ttl(const ldns_pkt *pkt, uint32_t none)
{
    ldns_rr_list *auth = ldns_pkt_authority(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++) {
        ldns_rr *rr = ldns_rr_list_rr(auth, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA ||
            ldns_rr_rd_count(rr) < 7)
            continue;
        uint32_t minimum = sane_ttl(ldns_rdf2native_int32(ldns_rr_rdf(rr, 6)));
        uint32_t ttl = rr_ttl(rr);
        return minimum < ttl ? minimum : ttl;
    }
    return none;
}

/* Two uncompressed wire names, compared case-insensitively. Length bytes
 * are below 64, so folding letters cannot make them collide. Cheaper than
 * ldns_dname_compare, which orders names label by label. */
static bool same_name(const ldns_rdf *a, const ldns_rdf *b)
{
    size_t n = ldns_rdf_size(a);
    if (n != ldns_rdf_size(b))
        return false;
    const uint8_t *x = ldns_rdf_data(a), *y = ldns_rdf_data(b);
    for (size_t i = 0; i < n; i++) {
        uint8_t cx = x[i], cy = y[i];
        if (cx != cy && (cx | 0x20) != (cy | 0x20))
            return false;
        if (cx != cy && !((cx | 0x20) >= 'a' && (cx | 0x20) <= 'z'))
            return false;
    }
    return true;
}

static bool plain_byte(uint8_t c);

/* Does the wire name spell text (a normalised name, final dot optional)?
 * Compared in place: no text form is built for every packet. */
static bool name_is_text(const ldns_rdf *dname, const char *text)
{
    const uint8_t *w = ldns_rdf_data(dname);
    size_t len = ldns_rdf_size(dname), t = 0;
    for (size_t i = 0; i < len && w[i] != 0; i += w[i] + 1) {
        if (i > 0 && text[t++] != '.')
            return false;
        for (size_t k = 1; k <= w[i]; k++, t++) {
            uint8_t c = i + k < len ? w[i + k] : 0;
            if (!plain_byte(c) || (c | 0x20) != (text[t] | 0x20))
                return false;
        }
    }
    return text[t] == '\0' || (text[t] == '.' && text[t + 1] == '\0');
}

/* The question must be ours: same type, class IN and name (qname is in
 * normalised text form). Returns the question's name, or NULL. */
static const ldns_rdf *question_name(const ldns_pkt *pkt, const char *qname,
                                     uint16_t qtype)
{
    ldns_rr_list *q = ldns_pkt_question(pkt);
    if (ldns_rr_list_rr_count(q) != 1)
        return NULL;
    ldns_rr *rr = ldns_rr_list_rr(q, 0);
    const ldns_rdf *owner = ldns_rr_owner(rr);
    if (ldns_rr_get_type(rr) != qtype ||
        ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
        ldns_rdf_get_type(owner) != LDNS_RDF_TYPE_DNAME ||
        !name_is_text(owner, qname))
        return NULL;
    return owner;
}

static mxr__rcode rcode_class(ldns_pkt_rcode rc)
{
    switch (rc) {
    case LDNS_RCODE_NOERROR:
        return MXR__DNS_OK;
    case LDNS_RCODE_NXDOMAIN:
        return MXR__DNS_NXDOMAIN;
    case LDNS_RCODE_SERVFAIL:
        return MXR__DNS_SERVFAIL;
    case LDNS_RCODE_REFUSED:
        return MXR__DNS_REFUSED;
    default:
        return MXR__DNS_NETWORK; /* FORMERR, NOTIMP: nothing usable */
    }
}

/* Does rr carry usable rdata of the asked type? Hostile answers can carry
 * records whose rdata does not fit the type. */
static bool rr_usable(const ldns_rr *rr, uint16_t qtype)
{
    if (qtype == MXR__TYPE_MX)
        return ldns_rr_rd_count(rr) == 2 &&
               ldns_rdf_get_type(ldns_rr_rdf(rr, 1)) == LDNS_RDF_TYPE_DNAME;
    size_t want = qtype == MXR__TYPE_A ? 4 : 16;
    return ldns_rr_rd_count(rr) == 1 &&
           ldns_rdf_size(ldns_rr_rdf(rr, 0)) == want;
}

static const ldns_rr *find_cname(const ldns_rr_list *an, const ldns_rdf *owner)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
            ldns_rr_rd_count(rr) == 1 && same_name(ldns_rr_owner(rr), owner))
            return rr;
    }
    return NULL;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* Bytes that stand for themselves in a host name's text; anything else is
 * written \DDD (RFC 1035 5.1) and later fails the LDH check visibly. */
static bool plain_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Length of the text form of a wire name (labels, no final dot), NUL
 * included. ldns has checked the label structure already. */
static size_t dname_text_size(const ldns_rdf *dname)
{
    const uint8_t *w = ldns_rdf_data(dname);
    size_t len = ldns_rdf_size(dname), n = 1;
    for (size_t i = 0; i < len && w[i] != 0; i += w[i] + 1) {
        n += i > 0; /* the dot before this label */
        for (size_t k = 1; k <= w[i] && i + k < len; k++)
            n += plain_byte(w[i + k]) ? 1 : 4;
    }
    return n;
}

/* Text form of a target: lower case, no final dot, "" for the root.
 * Written from the label bytes: ldns_rdf2str goes through printf for every
 * character, which dominated cold routing. Returns the bytes written with
 * the NUL; out has dname_text_size(dname) bytes. */
static size_t target_text(const ldns_rdf *dname, char *out)
{
    const uint8_t *w = ldns_rdf_data(dname);
    size_t len = ldns_rdf_size(dname), o = 0;
    for (size_t i = 0; i < len && w[i] != 0; i += w[i] + 1) {
        if (i > 0)
            out[o++] = '.';
        for (size_t k = 1; k <= w[i] && i + k < len; k++) {
            uint8_t c = w[i + k];
            if (plain_byte(c))
                out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            else
                o += (size_t)sprintf(out + o, "\\%03u", c);
        }
    }
    out[o] = '\0';
    return o + 1;
}

/* Collect the records of qtype owned by name into p; returns how many. */
static uint16_t mx_pref(const ldns_rr *rr)
{
    return ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
}

/* Past the record limit, an MX record replaces the least preferred one
 * kept: a huge answer must not push out the best hosts. */
static void keep_record(parsed *p, ldns_rr *rr, uint16_t qtype, size_t max)
{
    if (p->count < max) {
        p->rrs[p->count++] = rr;
        return;
    }
    if (qtype != MXR__TYPE_MX || max == 0)
        return;
    size_t worst = 0;
    for (size_t i = 1; i < p->count; i++)
        if (mx_pref(p->rrs[i]) > mx_pref(p->rrs[worst]))
            worst = i;
    if (mx_pref(rr) < mx_pref(p->rrs[worst]))
        p->rrs[worst] = rr;
}

static size_t collect_records(const ldns_rr_list *an, const ldns_rdf *name,
                              uint16_t qtype, size_t max, parsed *p)
{
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        ldns_rr *rr = ldns_rr_list_rr(an, i);
        if (ldns_rr_get_type(rr) != qtype ||
            ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
            !same_name(ldns_rr_owner(rr), name) || !rr_usable(rr, qtype))
            continue;
        keep_record(p, rr, qtype, max);
        p->ttl = min_u32(p->ttl, rr_ttl(rr));
    }
    for (size_t i = 0; qtype == MXR__TYPE_MX && i < p->count; i++)
        p->strbytes += dname_text_size(ldns_rr_rdf(p->rrs[i], 1));
    return p->count;
}

/* Follow CNAMEs from qname inside the answer section and collect records. */
static void walk_answer(const ldns_pkt *pkt, const ldns_rdf *qname,
                        uint16_t qtype, size_t max, parsed *p)
{
    const ldns_rr_list *an = ldns_pkt_answer(pkt);
    const ldns_rdf *name = qname;
    for (int hop = 0; hop <= MXR__CNAME_CHAIN_MAX; hop++) {
        if (collect_records(an, name, qtype, max, p) > 0)
            return;
        const ldns_rr *cname = find_cname(an, name);
        if (!cname) {
            if (p->rcode == MXR__DNS_OK && p->via_cname) {
                p->dangling = name;
                p->strbytes += dname_text_size(name);
            }
            /* Without an SOA a negative answer must not be cached (RFC
             * 2308), but a CNAME out of the server's zones comes without
             * one and says nothing negative: the chase asks for the rest. */
            p->ttl = min_u32(p->ttl,
                             negative_ttl(pkt, p->dangling ? UINT32_MAX : 0));
            p->rcode = p->rcode == MXR__DNS_OK ? MXR__DNS_NODATA : p->rcode;
            return;
        }
        p->via_cname = true;
        p->ttl = min_u32(p->ttl, rr_ttl(cname));
        name = ldns_rr_rdf(cname, 0);
    }
    p->rcode = MXR__DNS_NETWORK; /* chain too long or a loop */
}

/* ------------------------------------------------------- the result */

static char *text_of(const ldns_rdf *dname)
{
    char *s = malloc(dname_text_size(dname));
    if (!s)
        abort();
    target_text(dname, s);
    return s;
}

static void pack(const parsed *p, uint16_t qtype, ref_answer *out)
{
    out->rcode = p->count > 0 ? MXR__DNS_OK : p->rcode;
    out->via_cname = p->via_cname;
    out->ttl = p->ttl;
    out->count = p->count;
    out->cname_target = p->dangling ? text_of(p->dangling) : NULL;
    out->recs = calloc(p->count ? p->count : 1, sizeof *out->recs);
    if (!out->recs)
        abort();
    for (size_t i = 0; i < p->count; i++) {
        ref_record *r = &out->recs[i];
        if (qtype == MXR__TYPE_MX) {
            r->pref = mx_pref(p->rrs[i]);
            r->target = text_of(ldns_rr_rdf(p->rrs[i], 1));
        } else {
            const ldns_rdf *rd = ldns_rr_rdf(p->rrs[i], 0);
            memcpy(r->addr, ldns_rdf_data(rd), ldns_rdf_size(rd));
        }
    }
}

static void parse_packet(const ldns_pkt *pkt, const char *qtext, uint16_t qtype,
                         size_t max_records, ref_answer *out)
{
    const ldns_rdf *qname = question_name(pkt, qtext, qtype);
    if (!ldns_pkt_qr(pkt) || ldns_pkt_tc(pkt) || !qname) {
        out->rcode = MXR__DNS_NETWORK;
        return;
    }
    mxr__rcode rc = rcode_class(ldns_pkt_get_rcode(pkt));
    if (rc != MXR__DNS_OK && rc != MXR__DNS_NXDOMAIN) {
        out->rcode = rc;
        return;
    }
    size_t an = ldns_rr_list_rr_count(ldns_pkt_answer(pkt));
    size_t max = an < max_records ? an : max_records;
    parsed p = {.rcode = rc, .ttl = UINT32_MAX};
    p.rrs = malloc((max ? max : 1) * sizeof *p.rrs);
    if (!p.rrs)
        abort();
    walk_answer(pkt, qname, qtype, max, &p);
    pack(&p, qtype, out);
    free(p.rrs);
}

/* ---------------------------------------------------------- framing */

static uint16_t get16(const uint8_t *w)
{
    return (uint16_t)(w[0] << 8 | w[1]);
}

/* Offset just past the wire name at off (a pointer ends it), 0 when it
 * runs off the packet. */
static size_t skip_name(const uint8_t *w, size_t len, size_t off)
{
    while (off < len) {
        uint8_t n = w[off];
        if ((n & 0xc0) == 0xc0)
            return off + 2 <= len ? off + 2 : 0;
        if (n & 0xc0)
            return 0; /* extended label types: retired (RFC 6891) */
        off += 1u + n;
        if (n == 0)
            return off;
    }
    return 0;
}

/* Do the header's counts account for every byte? ldns stops reading
 * after the counted records, so a packet whose counts lie low looks
 * fine to it: the records past them would be read as something else
 * (an answer as authority). Such a packet is not trusted. */
static bool counts_cover_packet(const uint8_t *w, size_t len)
{
    if (len < 12)
        return false;
    size_t off = 12, qd = get16(w + 4);
    size_t rrs = (size_t)get16(w + 6) + get16(w + 8) + get16(w + 10);
    for (size_t i = 0; i < qd && off; i++) {
        off = skip_name(w, len, off);
        off = off && off + 4 <= len ? off + 4 : 0;
    }
    for (size_t i = 0; i < rrs && off; i++) {
        off = skip_name(w, len, off);
        if (!off || off + 10 > len)
            return false;
        off += 10u + get16(w + off + 8);
    }
    return off == len;
}

/* Follow the name at off as a decoder would, to flag the known
 * differences. The framing has been checked: labels are in the packet. */
static void name_quirks(const uint8_t *w, size_t len, size_t off,
                        ref_answer *out)
{
    for (unsigned hops = 0; off < len && w[off] != 0;) {
        uint8_t n = w[off];
        if ((n & 0xc0) == 0xc0) {
            if (off + 1 >= len)
                return;
            off = (size_t)(n & 0x3f) << 8 | w[off + 1];
            out->pointer_to_zero |= off == 0;
            if (++hops > CARES_MAX_INDIRS) {
                out->cares_refuses = true;
                return;
            }
            continue;
        }
        if (n & 0xc0)
            return;
        out->cares_refuses |= n == 1 && off + 1 < len && w[off + 1] == 0;
        off += 1u + n;
    }
}

static bool routing_type(uint16_t type)
{
    return type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_AAAA ||
           type == LDNS_RR_TYPE_MX || type == LDNS_RR_TYPE_CNAME ||
           type == LDNS_RR_TYPE_SOA;
}

/* Does rr carry every field of its type? (Empty data: no field at all.) */
static bool complete(const ldns_rr *rr, size_t rdlen)
{
    size_t want = ldns_rr_get_type(rr) == LDNS_RR_TYPE_MX    ? 2
                  : ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA ? 7
                                                             : 1;
    return rdlen == 0 || ldns_rr_rd_count(rr) == want;
}

/* One record at *pos, framed by its rdlength. Records of the types
 * routing reads are parsed by ldns, which must use up exactly their data
 * and find every field; of the others only the owner is parsed. Returns
 * the record to keep (NULL: none), or sets *bad. */
static ldns_rr *read_record(const uint8_t *w, size_t len, size_t *pos,
                            ldns_pkt_section sec, bool *bad, ref_answer *out)
{
    size_t at = *pos, fixed = skip_name(w, len, at);
    name_quirks(w, len, at, out);
    uint16_t type = get16(w + fixed);
    size_t data = fixed + 10, end = data + get16(w + fixed + 8);
    *pos = end;
    if (!routing_type(type)) {
        ldns_rdf *owner = NULL;
        *bad = ldns_wire2dname(&owner, w, len, &at) != LDNS_STATUS_OK;
        ldns_rdf_deep_free(owner);
        return NULL;
    }
    if (end > data && type == LDNS_RR_TYPE_MX && end - data >= 3)
        name_quirks(w, len, data + 2, out);
    if (end > data && type == LDNS_RR_TYPE_CNAME)
        name_quirks(w, len, data, out);
    if (end > data && type == LDNS_RR_TYPE_SOA) {
        name_quirks(w, len, data, out);
        size_t mid = skip_name(w, len, data);
        if (mid && mid < end)
            name_quirks(w, len, mid, out);
    }
    ldns_rr *rr = NULL;
    if (ldns_wire2rr(&rr, w, len, &at, sec) != LDNS_STATUS_OK || at != end ||
        !complete(rr, end - data)) {
        ldns_rr_free(rr);
        *bad = true;
        return NULL;
    }
    return rr;
}

/* The packet as ldns_wire2pkt would build it, framed record by record
 * (see the head of this file); NULL when refused. Counts cover the packet:
 * checked before. */
static ldns_pkt *read_packet(const uint8_t *w, size_t len, ref_answer *out)
{
    ldns_pkt *pkt = ldns_pkt_new();
    if (!pkt)
        abort();
    ldns_pkt_set_qr(pkt, w[2] & 0x80);
    ldns_pkt_set_tc(pkt, w[2] & 0x02);
    ldns_pkt_set_rcode(pkt, w[3] & 0x0f);
    size_t pos = 12, qd = get16(w + 4);
    bool bad = false;
    for (size_t i = 0; i < qd && !bad; i++) {
        ldns_rr *rr = NULL;
        name_quirks(w, len, pos, out);
        bad = ldns_wire2rr(&rr, w, len, &pos, LDNS_SECTION_QUESTION) !=
              LDNS_STATUS_OK;
        if (rr)
            ldns_pkt_push_rr(pkt, LDNS_SECTION_QUESTION, rr);
    }
    static const ldns_pkt_section secs[] = {
        LDNS_SECTION_ANSWER, LDNS_SECTION_AUTHORITY, LDNS_SECTION_ADDITIONAL};
    for (size_t s = 0; s < 3; s++) {
        size_t n = get16(w + 6 + 2 * s);
        for (size_t i = 0; i < n && !bad; i++) {
            ldns_rr *rr = read_record(w, len, &pos, secs[s], &bad, out);
            if (rr)
                ldns_pkt_push_rr(pkt, secs[s], rr);
        }
    }
    if (bad) {
        ldns_pkt_free(pkt);
        return NULL;
    }
    return pkt;
}

void ref_answer_parse(const uint8_t *wire, size_t len, const char *qname,
                      uint16_t qtype, size_t max_records, ref_answer *out)
{
    *out = (ref_answer){.rcode = MXR__DNS_NETWORK};
    if (!wire || len > 65535 || !counts_cover_packet(wire, len))
        return;
    ldns_pkt *pkt = read_packet(wire, len, out);
    if (pkt)
        parse_packet(pkt, qname, qtype, max_records, out);
    ldns_pkt_free(pkt);
}

void ref_answer_free(ref_answer *r)
{
    for (size_t i = 0; r->recs && i < r->count; i++)
        free(r->recs[i].target);
    free(r->recs);
    free(r->cname_target);
    *r = (ref_answer){0};
}
