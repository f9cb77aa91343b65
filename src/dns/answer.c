/* answer.c -- DNS wire answers reduced to routing facts, parsed by ldns.
 *
 * The rcode applies to the end of a CNAME chain (RFC 6604), so the chain is
 * followed inside the answer section before records are collected. A chain
 * longer than MXR__CNAME_CHAIN_MAX, a question that does not match ours, a
 * packet with bytes its header does not count or one ldns rejects is an
 * answer we cannot trust: MXR__DNS_NETWORK. TTLs with the top bit set
 * count as zero (RFC 2181). */
#include "dns/answer.h"

#include <ldns/ldns.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

bool mxr__rcode_is_temporary(mxr__rcode rc)
{
    return rc >= MXR__DNS_SERVFAIL;
}

mxr_reason mxr__rcode_reason(mxr__rcode rc)
{
    switch (rc) {
    case MXR__DNS_OK:
        return MXR_REASON_NONE;
    case MXR__DNS_NODATA:
        return MXR_REASON_NO_ADDRESS;
    case MXR__DNS_NXDOMAIN:
        return MXR_REASON_NXDOMAIN;
    case MXR__DNS_SERVFAIL:
        return MXR_REASON_SERVFAIL;
    case MXR__DNS_REFUSED:
        return MXR_REASON_REFUSED;
    case MXR__DNS_TIMEOUT:
        return MXR_REASON_TIMEOUT;
    case MXR__DNS_NETWORK:
    case MXR__DNS_CANCELLED:
        break;
    }
    return MXR_REASON_NETWORK;
}

/* What the parser found before the result is packed into one block. */
typedef struct parsed {
    mxr__rcode rcode;
    bool via_cname;
    const ldns_rdf *dangling; /* CNAME target without records here */
    uint32_t ttl;
    size_t count;
    size_t strbytes;
    ldns_rr **rrs; /* count entries, borrowed from the packet */
} parsed;

#define RRS_ON_STACK 32 /* answers this small need no scratch allocation */

size_t mxr__answer_key(char *out, const char *name, uint16_t qtype)
{
    size_t n = strnlen(name, MXR__ANSWER_KEY_MAX - 3);
    out[0] = (char)(qtype >> 8);
    out[1] = (char)(qtype & 0xff);
    memcpy(out + 2, name, n);
    out[n + 2] = '\0';
    return n + 3;
}

/* The struct, extra bytes for records and strings, then the key. */
static mxr__answer *answer_alloc(mxr__alloc *a, size_t extra, const char *key,
                                 size_t keylen)
{
    mxr__answer *ans = mxr__calloc(a, 1, sizeof *ans + extra + keylen);
    if (ans) {
        ans->refs = 1;
        unsigned char *at = (unsigned char *)(ans + 1) + extra;
        if (keylen)
            memcpy(at, key, keylen);
        ans->node.key = at;
        ans->node.keylen = keylen;
    }
    return ans;
}

mxr__answer *mxr__answer_error(mxr__alloc *a, mxr__rcode rc, uint16_t qtype,
                               uint32_t ttl)
{
    mxr__answer *ans = answer_alloc(a, 0, NULL, 0);
    if (ans) {
        ans->rcode = rc;
        ans->qtype = qtype;
        ans->ttl = ttl;
    }
    return ans;
}

void mxr__answer_ref(mxr__answer *ans)
{
    ans->refs++;
}

void mxr__answer_unref(mxr__alloc *a, mxr__answer *ans)
{
    if (ans && --ans->refs == 0)
        mxr__free(a, ans);
}

size_t mxr__answer_bytes(const mxr__answer *ans)
{
    return mxr__alloc_size(ans);
}

/* Where ptr, which pointed into from's block, lands in to's. */
static const void *moved(const void *ptr, const mxr__answer *from,
                         mxr__answer *to)
{
    return ptr ? (const char *)to + ((const char *)ptr - (const char *)from)
               : NULL;
}

mxr__answer *mxr__answer_rekeyed(mxr__alloc *a, const mxr__answer *ans,
                                 const char *key, size_t keylen)
{
    size_t extra = mxr__alloc_size(ans) - sizeof *ans - ans->node.keylen;
    mxr__answer *copy = answer_alloc(a, extra, key, keylen);
    if (!copy)
        return NULL;
    mxr__cache_node node = copy->node; /* the new key */
    node.expires_ms = ans->node.expires_ms;
    memcpy(copy, ans, sizeof *ans + extra);
    copy->node = node;
    copy->refs = 1;
    copy->mx = moved(ans->mx, ans, copy); /* addrs, by the union */
    copy->cname_target = moved(ans->cname_target, ans, copy);
    mxr__mx *mx = (mxr__mx *)(uintptr_t)copy->mx;
    for (size_t i = 0; mx && i < copy->count; i++)
        mx[i].target = moved(mx[i].target, ans, copy);
    return copy;
}

/* RFC 2181 section 8: a TTL with the top bit set is read as zero (a
 * server must not make us keep its answer for 136 years). */
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

static mxr__answer *pack_answer(mxr__alloc *a, const parsed *p,
                                const char *qname, uint16_t qtype)
{
    size_t each = qtype == MXR__TYPE_MX ? sizeof(mxr__mx) : sizeof(mxr_addr);
    char key[MXR__ANSWER_KEY_MAX];
    size_t keylen = mxr__answer_key(key, qname, qtype);
    mxr__answer *ans =
        answer_alloc(a, each * p->count + p->strbytes, key, keylen);
    if (!ans)
        return NULL;
    ans->rcode = p->count > 0 ? MXR__DNS_OK : p->rcode;
    ans->qtype = qtype;
    ans->via_cname = p->via_cname;
    ans->ttl = p->ttl;
    ans->count = p->count;
    char *base = (char *)(ans + 1);
    if (p->dangling) {
        char *str =
            base + each * p->count + p->strbytes - dname_text_size(p->dangling);
        target_text(p->dangling, str);
        ans->cname_target = str;
    }
    if (qtype == MXR__TYPE_MX) {
        mxr__mx *mx = (mxr__mx *)base;
        char *str = base + each * p->count;
        for (size_t i = 0; i < p->count; i++) {
            mx[i].pref = ldns_rdf2native_int16(ldns_rr_rdf(p->rrs[i], 0));
            mx[i].target = str;
            str += target_text(ldns_rr_rdf(p->rrs[i], 1), str);
        }
        ans->mx = mx;
    } else {
        mxr_addr *ad = (mxr_addr *)base;
        for (size_t i = 0; i < p->count; i++) {
            const ldns_rdf *rd = ldns_rr_rdf(p->rrs[i], 0);
            ad[i].family = qtype == MXR__TYPE_A ? AF_INET : AF_INET6;
            memcpy(ad[i].bytes, ldns_rdf_data(rd), ldns_rdf_size(rd));
        }
        ans->addrs = ad;
    }
    return ans;
}

static mxr__answer *parse_packet(mxr__alloc *a, const ldns_pkt *pkt,
                                 const char *qtext, uint16_t qtype,
                                 size_t max_records)
{
    const ldns_rdf *qname = question_name(pkt, qtext, qtype);
    if (!ldns_pkt_qr(pkt) || ldns_pkt_tc(pkt) || !qname)
        return mxr__answer_error(a, MXR__DNS_NETWORK, qtype, 0);
    mxr__rcode rc = rcode_class(ldns_pkt_get_rcode(pkt));
    if (rc != MXR__DNS_OK && rc != MXR__DNS_NXDOMAIN)
        return mxr__answer_error(a, rc, qtype, 0);
    size_t an = ldns_rr_list_rr_count(ldns_pkt_answer(pkt));
    size_t max = an < max_records ? an : max_records;
    ldns_rr *stack_rrs[RRS_ON_STACK];
    parsed p = {.rcode = rc, .ttl = UINT32_MAX, .rrs = stack_rrs};
    if (max > RRS_ON_STACK && !(p.rrs = mxr__malloc(a, max * sizeof *p.rrs)))
        return NULL;
    walk_answer(pkt, qname, qtype, max, &p);
    mxr__answer *ans = pack_answer(a, &p, qtext, qtype);
    if (p.rrs != stack_rrs)
        mxr__free(a, p.rrs);
    return ans;
}

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

mxr__answer *mxr__answer_parse(mxr__alloc *a, const uint8_t *wire, size_t len,
                               const char *qname, uint16_t qtype,
                               size_t max_records)
{
    ldns_pkt *pkt = NULL;
    if (!wire || !counts_cover_packet(wire, len) ||
        ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK)
        return mxr__answer_error(a, MXR__DNS_NETWORK, qtype, 0);
    mxr__answer *ans = parse_packet(a, pkt, qname, qtype, max_records);
    ldns_pkt_free(pkt);
    return ans;
}
