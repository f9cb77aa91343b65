/* answer.c -- DNS wire answers reduced to routing facts: the rules.
 *
 * dns/wire.c reads the packet (it refuses what cannot be read); this file
 * applies the rules to what it holds, then packs the result into one
 * block. The rcode applies to the end of a CNAME chain (RFC 6604), so the
 * chain is followed inside the answer section before records are
 * collected. A chain longer than MXR__CNAME_CHAIN_MAX, a question that
 * does not match ours or a packet wire.c refuses is an answer we cannot
 * trust: MXR__DNS_NETWORK. TTLs with the top bit set count as zero (RFC
 * 2181). */
#include "dns/answer.h"
#include "base/name.h"

#include "dns/wire.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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

/* One record kept for the answer: plain data, handed to the packing. */
typedef struct fact {
    uint16_t pref;
    const uint8_t *data; /* MX: target (canonical wire name); A/AAAA: bytes */
} fact;

/* What the rules found before the result is packed into one block. */
typedef struct parsed {
    mxr__rcode rcode;
    bool via_cname;
    const uint8_t *dangling; /* CNAME target without records here */
    uint32_t ttl;
    size_t count;
    fact *recs; /* count entries */
} parsed;

#define RECS_ON_STACK 32 /* answers this small need no scratch allocation */

size_t mxr__answer_key(char *out, const char *name, uint16_t qtype)
{
    size_t n = strnlen(name, MXR__ANSWER_KEY_MAX - 3);
    out[0] = (char)(qtype >> 8);
    out[1] = (char)(qtype & 0xff);
    memcpy(out + 2, name, n);
    out[n + 2] = '\0';
    return n + 3;
}

/* An MX record in the body: the target's text is at body + target, kept
 * against the question's name as form (an mxr__name_form) says. */
typedef struct mx_rec {
    uint16_t pref;
    uint8_t form;
    uint32_t target;
} mx_rec;

static size_t record_size(uint16_t qtype)
{
    switch (qtype) {
    case MXR__TYPE_MX:
        return sizeof(mx_rec);
    case MXR__TYPE_AAAA:
        return 16;
    default:
        return 4;
    }
}

/* Where the body starts: after the key, aligned for MX records. */
static size_t body_offset(uint16_t qtype, size_t keylen)
{
    size_t at = offsetof(mxr__answer, key) + keylen;
    size_t al = qtype == MXR__TYPE_MX ? alignof(mx_rec) : 1;
    return (at + al - 1) / al * al;
}

static const unsigned char *body_of(const mxr__answer *ans)
{
    return (const unsigned char *)ans +
           body_offset(ans->qtype, ans->node.keylen);
}

static size_t body_size(const mxr__answer *ans)
{
    return mxr__alloc_size(ans) - body_offset(ans->qtype, ans->node.keylen);
}

/* The header, the key, then body bytes (zeroed). */
static mxr__answer *answer_alloc(mxr__alloc *a, uint16_t qtype, size_t body,
                                 const char *key, size_t keylen)
{
    mxr__answer *ans = mxr__calloc(a, 1, body_offset(qtype, keylen) + body);
    if (ans) {
        ans->refs = 1;
        ans->qtype = qtype;
        if (keylen)
            memcpy(ans->key, key, keylen);
        /* the key is right after the header: within the node's reach */
        mxr__cache_node_set_key(&ans->node, ans->key, keylen);
    }
    return ans;
}

/* Writes the record's target at body + *text as its form says. */
static void put_target(mx_rec *rec, const char *whole, size_t n,
                       const char *qname, size_t qlen, char *body, size_t *text)
{
    size_t kept;
    rec->form = (uint8_t)mxr__name_split(whole, n, qname, qlen, &kept);
    rec->target = (uint32_t)*text;
    memcpy(body + *text, whole, kept);
    body[*text + kept] = '\0';
    *text += kept + 1;
}

/* The question's name, from the key (2 bytes of type, the name, NUL). */
static const char *key_name(const mxr__answer *ans, size_t *len)
{
    *len = ans->node.keylen >= 3 ? ans->node.keylen - 3u : 0;
    return (const char *)ans->key + 2;
}

mxr__mx mxr__answer_mx(const mxr__answer *ans, size_t i,
                       char buf[MXR__ANSWER_TEXT_MAX])
{
    const mx_rec *rec = (const mx_rec *)(const void *)body_of(ans) + i;
    const char *kept = (const char *)body_of(ans) + rec->target;
    if (rec->form == MXR__NAME_WHOLE)
        return (mxr__mx){rec->pref, kept};
    size_t qlen;
    const char *qname = key_name(ans, &qlen);
    mxr__name_join(buf, kept, strlen(kept), rec->form, qname, qlen);
    return (mxr__mx){rec->pref, buf};
}

mxr_addr mxr__answer_addr(const mxr__answer *ans, size_t i)
{
    mxr_addr ad = {0};
    size_t n = record_size(ans->qtype);
    ad.family = ans->qtype == MXR__TYPE_AAAA ? AF_INET6 : AF_INET;
    memcpy(ad.bytes, body_of(ans) + i * n, n);
    return ad;
}

const char *mxr__answer_cname_target(const mxr__answer *ans)
{
    return ans->dangling ? (const char *)body_of(ans) : NULL;
}

mxr__answer *mxr__answer_error(mxr__alloc *a, mxr__rcode rc, uint16_t qtype,
                               uint32_t ttl)
{
    mxr__answer *ans = answer_alloc(a, qtype, 0, NULL, 0);
    if (ans) {
        ans->rcode = rc;
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

/* The body of an MX answer's copy under another key: the targets are
 * kept against the new question's name. */
static size_t rekeyed_mx_bytes(const mxr__answer *ans, const char *qname,
                               size_t qlen)
{
    char buf[MXR__ANSWER_TEXT_MAX];
    size_t sum = sizeof(mx_rec) * ans->count, kept;
    for (size_t i = 0; i < ans->count; i++) {
        const char *t = mxr__answer_mx(ans, i, buf).target;
        mxr__name_split(t, strlen(t), qname, qlen, &kept);
        sum += kept + 1;
    }
    return sum;
}

static void rekey_mx_body(mxr__answer *copy, const mxr__answer *ans)
{
    char buf[MXR__ANSWER_TEXT_MAX];
    char *body = (char *)(uintptr_t)body_of(copy);
    size_t qlen, text = sizeof(mx_rec) * ans->count;
    const char *qname = key_name(copy, &qlen);
    for (size_t i = 0; i < ans->count; i++) {
        mxr__mx mx = mxr__answer_mx(ans, i, buf);
        mx_rec *rec = (mx_rec *)(void *)body + i;
        rec->pref = mx.pref;
        put_target(rec, mx.target, strlen(mx.target), qname, qlen, body, &text);
    }
}

mxr__answer *mxr__answer_rekeyed(mxr__alloc *a, const mxr__answer *ans,
                                 const char *key, size_t keylen)
{
    bool mx = ans->qtype == MXR__TYPE_MX && ans->count > 0;
    size_t qlen = keylen >= 3 ? keylen - 3 : 0; /* the key's name */
    size_t body = mx ? rekeyed_mx_bytes(ans, key + 2, qlen) : body_size(ans);
    mxr__answer *copy = answer_alloc(a, ans->qtype, body, key, keylen);
    if (!copy)
        return NULL;
    copy->node.expires_ms = ans->node.expires_ms;
    copy->ttl = ans->ttl;
    copy->served_until_ms = ans->served_until_ms;
    copy->count = ans->count;
    copy->rcode = ans->rcode;
    copy->via_cname = ans->via_cname;
    copy->dangling = ans->dangling;
    if (mx) /* the targets are kept against the new key */
        rekey_mx_body(copy, ans);
    else /* offsets count from the body: it moves as it is */
        memcpy((unsigned char *)(uintptr_t)body_of(copy), body_of(ans), body);
    return copy;
}

/* RFC 2181 section 8: a TTL with the top bit set is read as zero (a
 * server must not make us keep its answer for 136 years). */
static uint32_t sane_ttl(uint32_t ttl)
{
    return ttl > INT32_MAX ? 0 : ttl;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* The negative TTL of RFC 2308: min(SOA TTL, SOA MINIMUM); none when
 * there is no SOA. */
static uint32_t negative_ttl(const mxr__wire_msg *m, uint32_t none)
{
    if (!m->has_soa)
        return none;
    return min_u32(sane_ttl(m->soa_minimum), sane_ttl(m->soa_ttl));
}

/* Two canonical names (letters lower-cased by wire.c): the same bytes. */
static bool same_name(const uint8_t *a, const uint8_t *b)
{
    return a == b || memcmp(a, b, mxr__wire_name_len(a)) == 0;
}

/* Bytes that stand for themselves in a host name's text; anything else is
 * written \DDD (RFC 1035 5.1) and later fails the LDH check visibly. */
static bool plain_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Does the wire name spell text (a normalised name, final dot optional)?
 * Compared in place: no text form is built for every packet. */
static bool name_is_text(const uint8_t *w, const char *text)
{
    size_t t = 0;
    for (size_t i = 0; w[i] != 0; i += w[i] + 1u) {
        if (i > 0 && text[t++] != '.')
            return false;
        for (size_t k = 1; k <= w[i]; k++, t++) {
            uint8_t c = w[i + k];
            if (!plain_byte(c) || (c | 0x20) != (text[t] | 0x20))
                return false;
        }
    }
    return text[t] == '\0' || (text[t] == '.' && text[t + 1] == '\0');
}

/* The question must be ours: one question, same type, class IN and name
 * (qname is in normalised text form). Returns its name, or NULL. */
static const uint8_t *question_name(const mxr__wire_msg *m, const char *qname,
                                    uint16_t qtype)
{
    if (m->qdcount != 1 || m->qtype != qtype || m->qclass != MXR__CLASS_IN)
        return NULL;
    const uint8_t *name = mxr__wire_name(m, m->qname);
    return name_is_text(name, qname) ? name : NULL;
}

static mxr__rcode rcode_class(uint8_t rc)
{
    switch (rc) {
    case 0:
        return MXR__DNS_OK;
    case 3:
        return MXR__DNS_NXDOMAIN;
    case 2:
        return MXR__DNS_SERVFAIL;
    case 5:
        return MXR__DNS_REFUSED;
    default:
        return MXR__DNS_NETWORK; /* FORMERR, NOTIMP: nothing usable */
    }
}

static const mxr__wire_rr *find_cname(const mxr__wire_msg *m,
                                      const uint8_t *owner)
{
    for (size_t i = 0; i < m->ancount; i++) {
        const mxr__wire_rr *rr = &m->an[i];
        if (rr->type == MXR__TYPE_CNAME && rr->rdlen > 0 &&
            same_name(mxr__wire_name(m, rr->owner), owner))
            return rr;
    }
    return NULL;
}

/* Length of the text form of a wire name (labels, no final dot), NUL
 * included. */
static size_t dname_text_size(const uint8_t *w)
{
    size_t n = 1;
    for (size_t i = 0; w[i] != 0; i += w[i] + 1u) {
        n += i > 0; /* the dot before this label */
        for (size_t k = 1; k <= w[i]; k++)
            n += plain_byte(w[i + k]) ? 1 : 4;
    }
    return n;
}

/* Text form of a target: lower case, no final dot, "" for the root.
 * Returns the bytes written with the NUL; out has dname_text_size(w)
 * bytes. */
static size_t target_text(const uint8_t *w, char *out)
{
    size_t o = 0;
    for (size_t i = 0; w[i] != 0; i += w[i] + 1u) {
        if (i > 0)
            out[o++] = '.';
        for (size_t k = 1; k <= w[i]; k++) {
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

static fact fact_of(const mxr__wire_msg *m, const mxr__wire_rr *rr)
{
    if (rr->type == MXR__TYPE_MX)
        return (fact){rr->pref, mxr__wire_name(m, rr->data)};
    return (fact){0, m->wire + rr->data};
}

/* Past the record limit, an MX record replaces the least preferred one
 * kept: a huge answer must not push out the best hosts. */
static void keep_record(parsed *p, fact f, uint16_t qtype, size_t max)
{
    if (p->count < max) {
        p->recs[p->count++] = f;
        return;
    }
    if (qtype != MXR__TYPE_MX || max == 0)
        return;
    size_t worst = 0;
    for (size_t i = 1; i < p->count; i++)
        if (p->recs[i].pref > p->recs[worst].pref)
            worst = i;
    if (f.pref < p->recs[worst].pref)
        p->recs[worst] = f;
}

/* Collect the records of qtype owned by name into p; returns how many. */
static size_t collect_records(const mxr__wire_msg *m, const uint8_t *name,
                              uint16_t qtype, size_t max, parsed *p)
{
    for (size_t i = 0; i < m->ancount; i++) {
        const mxr__wire_rr *rr = &m->an[i];
        if (rr->type != qtype || rr->rclass != MXR__CLASS_IN ||
            rr->rdlen == 0 || !same_name(mxr__wire_name(m, rr->owner), name))
            continue;
        keep_record(p, fact_of(m, rr), qtype, max);
        p->ttl = min_u32(p->ttl, sane_ttl(rr->ttl));
    }
    return p->count; /* MX targets' text is sized when packed */
}

/* Follow CNAMEs from qname inside the answer section and collect records. */
static void walk_answer(const mxr__wire_msg *m, const uint8_t *qname,
                        uint16_t qtype, size_t max, parsed *p)
{
    const uint8_t *name = qname;
    for (int hop = 0; hop <= MXR__CNAME_CHAIN_MAX; hop++) {
        if (collect_records(m, name, qtype, max, p) > 0)
            return;
        const mxr__wire_rr *cname = find_cname(m, name);
        if (!cname) {
            if (p->rcode == MXR__DNS_OK && p->via_cname)
                p->dangling = name;
            /* Without an SOA a negative answer must not be cached (RFC
             * 2308), but a CNAME out of the server's zones comes without
             * one and says nothing negative: the chase asks for the rest. */
            p->ttl =
                min_u32(p->ttl, negative_ttl(m, p->dangling ? UINT32_MAX : 0));
            p->rcode = p->rcode == MXR__DNS_OK ? MXR__DNS_NODATA : p->rcode;
            return;
        }
        p->via_cname = true;
        p->ttl = min_u32(p->ttl, sane_ttl(cname->ttl));
        name = mxr__wire_name(m, cname->data);
    }
    p->rcode = MXR__DNS_NETWORK; /* chain too long or a loop */
}

/* Bytes the MX targets keep (kept + NUL each) against qname. */
static size_t mx_text_bytes(const parsed *p, const char *qname, size_t qlen)
{
    char whole[MXR__ANSWER_TEXT_MAX];
    size_t sum = 0, kept;
    for (size_t i = 0; i < p->count; i++) {
        size_t n = target_text(p->recs[i].data, whole) - 1;
        mxr__name_split(whole, n, qname, qlen, &kept);
        sum += kept + 1;
    }
    return sum;
}

/* Records, then the MX targets' text; or a dangling CNAME's target
 * (which comes only without records). */
static void fill_body(mxr__answer *ans, const parsed *p)
{
    unsigned char *body = (unsigned char *)(uintptr_t)body_of(ans);
    size_t each = record_size(ans->qtype);
    if (p->dangling) {
        target_text(p->dangling, (char *)body);
        return;
    }
    size_t qlen, text = each * p->count;
    const char *qname = key_name(ans, &qlen);
    char whole[MXR__ANSWER_TEXT_MAX];
    for (size_t i = 0; i < p->count; i++) {
        if (ans->qtype != MXR__TYPE_MX) {
            memcpy(body + i * each, p->recs[i].data, each);
            continue;
        }
        mx_rec *rec = (mx_rec *)(void *)body + i;
        rec->pref = p->recs[i].pref;
        size_t n = target_text(p->recs[i].data, whole) - 1;
        put_target(rec, whole, n, qname, qlen, (char *)body, &text);
    }
}

static mxr__answer *pack_answer(mxr__alloc *a, const parsed *p,
                                const char *qname, uint16_t qtype)
{
    char key[MXR__ANSWER_KEY_MAX];
    size_t keylen = mxr__answer_key(key, qname, qtype);
    size_t text = p->dangling ? dname_text_size(p->dangling)
                  : qtype == MXR__TYPE_MX
                      ? mx_text_bytes(p, key + 2, keylen - 3)
                      : 0;
    size_t body = record_size(qtype) * p->count + text;
    mxr__answer *ans = answer_alloc(a, qtype, body, key, keylen);
    if (!ans)
        return NULL;
    ans->rcode = p->count > 0 ? MXR__DNS_OK : p->rcode;
    ans->via_cname = p->via_cname;
    ans->dangling = p->dangling != NULL;
    ans->ttl = p->ttl;
    ans->count = (uint16_t)p->count;
    fill_body(ans, p);
    return ans;
}

static mxr__answer *apply_rules(mxr__alloc *a, const mxr__wire_msg *m,
                                const char *qtext, uint16_t qtype,
                                size_t max_records)
{
    const uint8_t *qname = question_name(m, qtext, qtype);
    if (!m->qr || m->tc || !qname)
        return mxr__answer_error(a, MXR__DNS_NETWORK, qtype, 0);
    mxr__rcode rc = rcode_class(m->rcode);
    if (rc != MXR__DNS_OK && rc != MXR__DNS_NXDOMAIN)
        return mxr__answer_error(a, rc, qtype, 0);
    size_t max = m->ancount < max_records ? m->ancount : max_records;
    max = max < UINT16_MAX ? max : UINT16_MAX; /* the answer's count */
    fact stack_recs[RECS_ON_STACK];
    parsed p = {.rcode = rc, .ttl = UINT32_MAX, .recs = stack_recs};
    if (max > RECS_ON_STACK && !(p.recs = mxr__malloc(a, max * sizeof *p.recs)))
        return NULL;
    walk_answer(m, qname, qtype, max, &p);
    mxr__answer *ans = pack_answer(a, &p, qtext, qtype);
    if (p.recs != stack_recs)
        mxr__free(a, p.recs);
    return ans;
}

mxr__answer *mxr__answer_parse(mxr__alloc *a, const uint8_t *wire, size_t len,
                               const char *qname, uint16_t qtype,
                               size_t max_records)
{
    mxr__wire_msg m;
    mxr__wire_status st = mxr__wire_decode(&m, a, wire, len);
    mxr__answer *ans = st == MXR__WIRE_OK
                           ? apply_rules(a, &m, qname, qtype, max_records)
                       : st == MXR__WIRE_MALFORMED
                           ? mxr__answer_error(a, MXR__DNS_NETWORK, qtype, 0)
                           : NULL;
    mxr__wire_release(&m);
    return ans;
}
