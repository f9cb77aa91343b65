/* wire.c -- a DNS message read from its wire bytes (see wire.h).
 *
 * The walk is bounded by the packet: every field is checked against the
 * end before it is read, and each record consumes at least 11 bytes, so a
 * packet of n bytes holds at most n / 11 records whatever its counts say.
 * A name that uses compression is decoded by c-ares (ares_expand_name):
 * pointers, their loops and their bounds stay a library's job. Its text
 * form is turned back into labels here, which also enforces the 255-octet
 * bound that c-ares 1.18.1 does not. A name without a pointer (every
 * question, the EDNS owner) has nothing to decompress: its labels are
 * copied under the same bounds, and sanitizer and fuzz builds check every
 * such copy against c-ares's result (MXR_WIRE_CROSSCHECK). */
#include "dns/wire.h"

#include "dns/answer.h"

#include <ares.h>
#include <string.h>

#define HEADER 12
#define RR_FIXED 10 /* type, class, TTL, rdlength */
#define NAME_MAX_WIRE 255
#define MESSAGE_MAX 65535
#define CARES_MAX_INDIRS 50 /* c-ares's bound on pointers in one name */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

size_t mxr__wire_name_len(const uint8_t *name)
{
    size_t n = 0;
    while (name[n] != 0)
        n += name[n] + 1u;
    return n + 1;
}

/* ------------------------------------------------------ the name store */

static bool names_reserve(mxr__wire_msg *m, size_t need)
{
    if (m->names_cap - m->names_len >= need)
        return true;
    size_t cap = m->names_cap * 2;
    while (cap - m->names_len < need)
        cap *= 2;
    uint8_t *grown;
    if (m->names == m->names_stack) {
        grown = mxr__malloc(m->a, cap);
        if (grown)
            memcpy(grown, m->names, m->names_len);
    } else {
        grown = mxr__realloc(m->a, m->names, cap);
    }
    if (!grown) {
        m->nomem = true;
        return false;
    }
    m->names = grown;
    m->names_cap = cap;
    return true;
}

/* --------------------------------------------------------------- names */

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One byte of c-ares's text form at *s: itself, \c for a reserved
 * character or \DDD. Advances *s; -1 on a form c-ares does not write. */
static int text_byte(const char **s)
{
    const char *p = *s;
    if (p[0] != '\\') {
        *s = p + 1;
        return (uint8_t)p[0];
    }
    if (!is_digit(p[1])) {
        *s = p + 2;
        return p[1] ? (uint8_t)p[1] : -1;
    }
    if (!is_digit(p[2]) || !is_digit(p[3]))
        return -1;
    int v = (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    *s = p + 4;
    return v <= 255 ? v : -1;
}

/* c-ares's text form back to labels, letters lower-cased, in out (at
 * least NAME_MAX_WIRE bytes). An empty label means c-ares 1.18.1 wrote a
 * label of one NUL byte as it is, cutting the text short: the name cannot
 * be known, so it is refused like any name we cannot read. Returns the
 * octets written, 0 when refused. */
static size_t text_to_wire(const char *text, uint8_t *out)
{
    size_t o = 0;
    if (*text == '\0') {
        out[0] = 0;
        return 1;
    }
    for (const char *s = text;;) {
        size_t label = o++;
        while (*s != '\0' && *s != '.') {
            int b = text_byte(&s);
            if (b < 0 || o >= NAME_MAX_WIRE - 1)
                return 0;
            out[o++] = lower((uint8_t)b);
        }
        size_t n = o - label - 1;
        if (n == 0 || n > 63)
            return 0;
        out[label] = (uint8_t)n;
        if (*s++ == '\0')
            break;
    }
    out[o++] = 0;
    return o;
}

/* c-ares writes "" for the root, and also for a name whose first label is
 * one NUL byte. Tell them apart by the byte the name's pointers lead to
 * (c-ares has checked them: in the packet, at most CARES_MAX_INDIRS). */
static bool leads_to_root(const uint8_t *w, size_t len, size_t off)
{
    for (int hops = 0; hops <= CARES_MAX_INDIRS; hops++) {
        if (off >= len)
            return false;
        if ((w[off] & 0xc0) != 0xc0)
            return w[off] == 0;
        if (off + 1 >= len)
            return false;
        off = (size_t)(w[off] & 0x3f) << 8 | w[off + 1];
    }
    return false;
}

/* -------------------------------------------------- the names memo
 *
 * Answers point at names they hold already: owners at the question ("c0
 * 0c"), additional records at MX targets. A name that is exactly a pointer
 * to a name decoded before is that name: it is not decoded again. c-ares
 * would follow one pointer more than for the name pointed at, so the memo
 * keeps each name's pointer count, known exactly when its bytes in place
 * end at the root or at a pointer to another name of the memo. */

#define HOPS_UNKNOWN 0xff

static const mxr__wire_memo *memo_find(const mxr__wire_msg *m, size_t off)
{
    for (size_t i = 0; i < m->nmemo; i++)
        if (m->memo[i].off == off)
            return &m->memo[i];
    return NULL;
}

/* Pointers c-ares follows in the name at off (already decoded). */
static uint8_t hops_of(const mxr__wire_msg *m, size_t off)
{
    const uint8_t *w = m->wire;
    while (w[off] != 0 && (w[off] & 0xc0) == 0)
        off += w[off] + 1u;
    if (w[off] == 0)
        return 0;
    const mxr__wire_memo *to =
        memo_find(m, (size_t)(w[off] & 0x3f) << 8 | w[off + 1]);
    return to && to->hops < CARES_MAX_INDIRS ? to->hops + 1 : HOPS_UNKNOWN;
}

static void memo_add(mxr__wire_msg *m, size_t off, uint32_t at)
{
    uint8_t hops = hops_of(m, off);
    if (hops == HOPS_UNKNOWN || m->nmemo == MXR__WIRE_MEMO)
        return;
    m->memo[m->nmemo++] = (mxr__wire_memo){(uint16_t)off, hops, at};
}

/* Names stored from mark on are given back: so are their memo entries. */
static void names_rewind(mxr__wire_msg *m, size_t mark)
{
    m->names_len = mark;
    while (m->nmemo > 0 && m->memo[m->nmemo - 1].at >= mark)
        m->nmemo--;
}

/* Is the name at off a pointer to a name of the memo? Sets *at. */
static bool memo_hit(const mxr__wire_msg *m, size_t off, uint32_t *at)
{
    const uint8_t *w = m->wire;
    if (off + 2 > m->len || (w[off] & 0xc0) != 0xc0)
        return false;
    const mxr__wire_memo *to =
        memo_find(m, (size_t)(w[off] & 0x3f) << 8 | w[off + 1]);
    if (!to || to->hops >= CARES_MAX_INDIRS)
        return false;
    *at = to->at;
    return true;
}

/* A name without compression pointers is its labels in place: copied
 * (letters lower-cased) under the bounds text_to_wire enforces on c-ares's
 * output, with no decompression to do. Questions, the EDNS root owner and
 * most first occurrences of a name take this path; any name with a
 * pointer goes to c-ares. */
typedef enum name_form { NAME_BAD, NAME_PLAIN, NAME_COMPRESSED } name_form;

static name_form plain_name(const uint8_t *w, size_t len, size_t off,
                            uint8_t *out, size_t *n, size_t *enclen)
{
    size_t p = off, o = 0;
    while (p < len && w[p] != 0) {
        uint8_t b = w[p];
        if ((b & 0xc0) == 0xc0)
            return NAME_COMPRESSED;
        /* 01 and 10 label types are reserved (c-ares refuses them); the
         * next length byte must be inside the packet, as c-ares asks */
        if (b > 63 || p + 1 + b >= len || o + 1 + b >= NAME_MAX_WIRE)
            return NAME_BAD;
        if (b == 1 && w[p + 1] == 0) /* c-ares 1.18.1 cannot give it back */
            return NAME_BAD;
        out[o++] = b;
        for (size_t i = 1; i <= b; i++)
            out[o++] = lower(w[p + i]);
        p += 1u + b;
    }
    if (p >= len)
        return NAME_BAD;
    out[o++] = 0;
    *n = o;
    *enclen = p + 1 - off;
    return NAME_PLAIN;
}

/* The name at off through ares_expand_name and its text form: 0 when
 * refused, else the octets written to out. */
static size_t cares_name(const mxr__wire_msg *m, size_t off, uint8_t *out,
                         size_t *enclen)
{
    char *text = NULL;
    long used = 0;
    if (ares_expand_name(m->wire + off, m->wire, (int)m->len, &text, &used) !=
        ARES_SUCCESS)
        return 0;
    size_t n = text_to_wire(text, out);
    if (n == 1 && !leads_to_root(m->wire, m->len, off))
        n = 0;
    ares_free_string(text);
    if (n == 0 || used <= 0 || off + (size_t)used > m->len)
        return 0;
    *enclen = (size_t)used;
    return n;
}

#ifdef MXR_WIRE_CROSSCHECK
#include <stdio.h>
#include <stdlib.h>
/* Sanitizer and fuzz builds hold the plain path to c-ares's on every
 * name it takes: the same verdict, octets and length in place. */
static void crosscheck_plain(const mxr__wire_msg *m, size_t off, name_form form,
                             const uint8_t *out, size_t n, size_t enclen)
{
    uint8_t ref[NAME_MAX_WIRE];
    size_t ref_used = 0;
    size_t ref_n = cares_name(m, off, ref, &ref_used);
    bool same = form == NAME_PLAIN
                    ? ref_n == n && ref_used == enclen && !memcmp(ref, out, n)
                    : ref_n == 0;
    if (!same) {
        fprintf(stderr, "wire.c: plain name at %zu differs from c-ares\n", off);
        abort();
    }
}
#define CROSSCHECK_PLAIN(m, off, form, out, n, enclen)                         \
    crosscheck_plain(m, off, form, out, n, enclen)
#else
#define CROSSCHECK_PLAIN(m, off, form, out, n, enclen) ((void)0)
#endif

/* Decode the name at off into the store (its offset in *at) and set *end
 * past its bytes in place. False when it cannot be read. */
static bool read_name(mxr__wire_msg *m, size_t off, size_t *end, uint32_t *at)
{
    if (memo_hit(m, off, at)) {
        *end = off + 2;
        return true;
    }
    if (off >= m->len || !names_reserve(m, NAME_MAX_WIRE))
        return false;
    uint8_t *out = m->names + m->names_len;
    size_t n = 0, enclen = 0;
    name_form form = plain_name(m->wire, m->len, off, out, &n, &enclen);
    if (form != NAME_COMPRESSED)
        CROSSCHECK_PLAIN(m, off, form, out, n, enclen);
    if (form == NAME_BAD)
        return false;
    if (form == NAME_COMPRESSED && (n = cares_name(m, off, out, &enclen)) == 0)
        return false;
    *at = (uint32_t)m->names_len;
    m->names_len += n;
    *end = off + enclen;
    memo_add(m, off, *at);
    return true;
}

/* ------------------------------------------------------------ records */

typedef enum section { QUESTION, ANSWER, AUTHORITY, ADDITIONAL } section;

/* A name inside record data that must end exactly at end. */
static bool rdata_name(mxr__wire_msg *m, size_t off, size_t end, uint32_t *at)
{
    size_t after;
    return read_name(m, off, &after, at) && after == end;
}

/* Record data of the types routing reads must be exactly that type's
 * form: otherwise the packet is not what it says it is. */
static bool read_rdata(mxr__wire_msg *m, mxr__wire_rr *rr, size_t off)
{
    size_t end = off + rr->rdlen;
    uint32_t unused;
    switch (rr->type) {
    case MXR__TYPE_A:
    case MXR__TYPE_AAAA:
        rr->data = (uint32_t)off;
        return rr->rdlen == (rr->type == MXR__TYPE_A ? 4 : 16);
    case MXR__TYPE_MX:
        rr->pref = rr->rdlen >= 2 ? get16(m->wire + off) : 0;
        return rr->rdlen >= 3 && rdata_name(m, off + 2, end, &rr->data);
    case MXR__TYPE_CNAME:
        return rdata_name(m, off, end, &rr->data);
    case MXR__TYPE_SOA: { /* two names, then five 32-bit fields */
        size_t mark = m->names_len, mid = 0, last = 0;
        bool ok = read_name(m, off, &mid, &unused) && mid < end &&
                  read_name(m, mid, &last, &unused) && last + 20 == end;
        names_rewind(m, mark); /* only the MINIMUM field is kept */
        rr->data = (uint32_t)(last + 16);
        return ok;
    }
    default:
        return true; /* not read: its bytes are skipped */
    }
}

static bool keep_soa(mxr__wire_msg *m, const mxr__wire_rr *rr)
{
    if (!m->has_soa && rr->type == MXR__TYPE_SOA && rr->rdlen > 0) {
        m->has_soa = true;
        m->soa_ttl = rr->ttl;
        m->soa_minimum = get32(m->wire + rr->data);
    }
    return true;
}

static bool read_rr(mxr__wire_msg *m, size_t *off, section sec)
{
    size_t mark = m->names_len, p;
    mxr__wire_rr rr = {0};
    if (!read_name(m, *off, &p, &rr.owner))
        return false;
    if (p + RR_FIXED > m->len)
        return false;
    rr.type = get16(m->wire + p);
    rr.rclass = get16(m->wire + p + 2);
    rr.ttl = get32(m->wire + p + 4);
    rr.rdlen = get16(m->wire + p + 8);
    p += RR_FIXED;
    if (p + rr.rdlen > m->len || (rr.rdlen > 0 && !read_rdata(m, &rr, p)))
        return false;
    *off = p + rr.rdlen;
    if (sec == ANSWER) {
        m->an[m->ancount++] = rr;
        return true;
    }
    names_rewind(m, mark); /* names of other sections are only checked */
    return sec != AUTHORITY || keep_soa(m, &rr);
}

static bool read_question(mxr__wire_msg *m, size_t *off, bool first)
{
    size_t mark = m->names_len, p;
    uint32_t at;
    if (!read_name(m, *off, &p, &at) || p + 4 > m->len)
        return false;
    if (first) {
        m->qname = at;
        m->qtype = get16(m->wire + p);
        m->qclass = get16(m->wire + p + 2);
    } else {
        names_rewind(m, mark);
    }
    *off = p + 4;
    return true;
}

/* ------------------------------------------------------------ message */

static void read_header(mxr__wire_msg *m)
{
    const uint8_t *w = m->wire;
    m->qr = w[2] & 0x80;
    m->tc = w[2] & 0x02;
    m->rcode = w[3] & 0x0f;
    m->qdcount = get16(w + 4);
}

/* The answer records' array: on the stack for typical answers. A count
 * that cannot fit in the packet is refused before anything is allocated. */
static mxr__wire_status answer_array(mxr__wire_msg *m, size_t ancount)
{
    if (ancount * (1 + RR_FIXED) > m->len - HEADER)
        return MXR__WIRE_MALFORMED;
    if (ancount <= MXR__WIRE_RRS_ON_STACK)
        return MXR__WIRE_OK;
    m->an = mxr__malloc(m->a, ancount * sizeof *m->an);
    return m->an ? MXR__WIRE_OK : MXR__WIRE_NOMEM;
}

static mxr__wire_status walk(mxr__wire_msg *m)
{
    const uint8_t *w = m->wire;
    size_t counts[4] = {get16(w + 4), get16(w + 6), get16(w + 8),
                        get16(w + 10)};
    mxr__wire_status st = answer_array(m, counts[ANSWER]);
    if (st != MXR__WIRE_OK)
        return st;
    size_t off = HEADER;
    for (size_t i = 0; i < counts[QUESTION]; i++)
        if (!read_question(m, &off, i == 0))
            return MXR__WIRE_MALFORMED;
    for (section s = ANSWER; s <= ADDITIONAL; s++)
        for (size_t i = 0; i < counts[s]; i++)
            if (!read_rr(m, &off, s))
                return MXR__WIRE_MALFORMED;
    return off == m->len ? MXR__WIRE_OK : MXR__WIRE_MALFORMED;
}

mxr__wire_status mxr__wire_decode(mxr__wire_msg *m, mxr__alloc *a,
                                  const uint8_t *wire, size_t len)
{
    m->a = a;
    m->wire = wire;
    m->len = len;
    m->an = m->an_stack;
    m->ancount = 0;
    m->has_soa = false;
    m->names = m->names_stack;
    m->names_len = 0;
    m->names_cap = sizeof m->names_stack;
    m->qdcount = 0;
    m->nomem = false;
    m->nmemo = 0;
    if (!wire || len < HEADER || len > MESSAGE_MAX)
        return MXR__WIRE_MALFORMED;
    read_header(m);
    mxr__wire_status st = walk(m);
    return m->nomem ? MXR__WIRE_NOMEM : st;
}

void mxr__wire_release(mxr__wire_msg *m)
{
    if (m->an != m->an_stack)
        mxr__free(m->a, m->an);
    if (m->names != m->names_stack)
        mxr__free(m->a, m->names);
    m->an = m->an_stack;
    m->names = m->names_stack;
}
