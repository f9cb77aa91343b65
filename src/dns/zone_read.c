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

/* ------------------------------------------------------- text checks */

/* What ldns's line reader (ldns_fget_token_l in parse.c) does with
 * parentheses, quotes and comments, replayed over the whole text before
 * ldns reads it: ldns takes a '(' still open at the end of the file as
 * closed, and drops NUL bytes without a word, so a truncated or binary
 * file would load as something else. */
typedef struct scan {
    int line, open_line, depth;
    bool comment, quoted;
    char prev;
} scan;

/* Bytes of zone text: printable, UTF-8, and ldns's white space. Anything
 * else (NUL, other control bytes) means this is not a zone file. */
static bool is_text(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t' || c == '\n' || c == '\r' ||
           c == '\f' || c == '\v';
}

static void scan_paren(scan *s, char c)
{
    if (s->comment)
        return;
    if (c == '(' && s->depth++ == 0)
        s->open_line = s->line;
    if (c == ')' && --s->depth < 0)
        s->depth = 0; /* ldns ends the line there and starts afresh */
}

static void scan_byte(scan *s, char c)
{
    bool escaped = s->prev == '\\';
    if ((c == '(' || c == ')') && !escaped && !s->quoted) {
        scan_paren(s, c);
        s->prev = c;
        return;
    }
    if (c == ';' && !s->quoted && !escaped)
        s->comment = true;
    if (c == '"' && !s->comment && !escaped)
        s->quoted = !s->quoted;
    if (c == '\n') {
        s->line++;
        s->comment = false;
        if (s->depth == 0) /* the end of a record: ldns reads on afresh */
            s->quoted = false;
    }
    s->prev = c == '\\' && escaped ? 0 : c;
}

static const char *check_text(const char *text, size_t len, int *line)
{
    scan s = {.line = 1};
    for (size_t i = 0; i < len; i++) {
        if (!is_text((unsigned char)text[i])) {
            *line = s.line;
            return "a NUL or control byte: this is not zone text";
        }
        scan_byte(&s, text[i]);
    }
    if (s.depth > 0) {
        *line = s.open_line;
        return "this '(' is not closed before the end of the file";
    }
    return NULL;
}

/* ----------------------------------------------------------- records */

/* Where the reader is in the text, for line numbers: ldns counts the
 * blank lines after a record into it, so its count points below the
 * record that failed. */
typedef struct cursor {
    const char *text;
    size_t len, pos;
    int line; /* of text[pos] */
} cursor;

/* The line the record at byte pos starts on: blank lines and comment
 * lines are skipped, as ldns reads them in with the record after them. */
static int record_line(cursor *c, size_t pos)
{
    for (; c->pos < pos && c->pos < c->len; c->pos++)
        c->line += c->text[c->pos] == '\n';
    int line = c->line;
    bool comment = false;
    for (size_t i = pos; i < c->len; i++) {
        char ch = c->text[i];
        if (ch == '\n') {
            line++;
            comment = false;
        } else if (ch == ';') {
            comment = true;
        } else if (!comment && ch != ' ' && ch != '\t' && ch != '\r') {
            break;
        }
    }
    return line;
}

static const char *read_all(reader *rd, FILE *fp, cursor *c, int *line)
{
    int ldns_line = 0; /* ldns wants a counter; ours is the one reported */
    const char *why = NULL;
    while (!why && !feof(fp) && !ferror(fp)) {
        long pos = ftell(fp);
        *line = record_line(c, pos < 0 ? c->len : (size_t)pos);
        why = read_one(rd, fp, &ldns_line);
    }
    return why ? why : ferror(fp) ? "cannot be read" : NULL;
}

const char *mxr__zone_read(const char *text, size_t len, ldns_dnssec_zone **out,
                           int *line)
{
    *line = 0;
    const char *why = check_text(text, len, line);
    if (why)
        return why;
    reader rd = {.z = ldns_dnssec_zone_new(), .last_ttl = DEFAULT_TTL};
    /* fmemopen of 0 bytes fails on older C libraries: nothing to read */
    FILE *fp = len ? fmemopen((void *)text, len, "r") : NULL;
    cursor c = {.text = text, .len = len, .line = 1};
    if (!rd.z || (len && !fp))
        why = "out of memory";
    else if (fp)
        why = read_all(&rd, fp, &c, line);
    if (fp)
        fclose(fp);
    ldns_rdf_deep_free(rd.origin);
    ldns_rdf_deep_free(rd.prev);
    if (why) {
        ldns_dnssec_zone_deep_free(rd.z);
        return why;
    }
    *out = rd.z;
    return NULL;
}
