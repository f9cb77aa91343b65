/* name.c -- turning user input and DNS names into validated host names.
 *
 * Every function here must be safe on any byte string: input comes from
 * users, from MX records and from operators' configuration. Error messages
 * are one line, quote the offending text (truncated, with control and
 * non-UTF-8 bytes shown as \xNN) and never depend on the locale.
 *
 * Address literals are stored in out->domain in one canonical spelling:
 * "[192.0.2.1]" and "[IPv6:2001:db8::1]", the address re-formatted by
 * inet_ntop, so equal literals compare equal as strings.
 *
 * Only the IDNA path allocates, inside libidn2, and frees before return. */
#include "base/name.h"
#include "base/addr.h"

#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define LOCAL_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define QUOTE_MAX 40 /* bytes of offending text quoted in a message */
#define QUOTE_BUF MXR__QUOTE_BUF
#define LITERAL_MAX 64

/* Where error messages go; len 0 means the caller wants none. */
typedef struct errbuf {
    char *buf;
    size_t len;
} errbuf;

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Writes the message and returns MXR_EBADNAME, so checks can return it. */
static mxr_status fail(errbuf *e, const char *fmt, ...) PRINTF_LIKE(2, 3);

static mxr_status fail(errbuf *e, const char *fmt, ...)
{
    if (e->buf != NULL && e->len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->len, fmt, ap);
        va_end(ap);
    }
    return MXR_EBADNAME;
}

/* ------------------------------------------------------------ helpers */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex_digit(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_ldh(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-';
}

/* Not tolower(): the C locale must not change what a name is. */
static char ascii_lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* One byte for a message: itself when printable ASCII, else \xNN. */
static const char *show_char(unsigned char c, char buf[8])
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 8, "%c", c);
    else
        snprintf(buf, 8, "\\x%02x", c);
    return buf;
}

/* Where to cut s[0..n) so the quote holds at most QUOTE_MAX bytes; with
 * UTF-8 text, never inside a character. */
static size_t quote_cut(const unsigned char *s, size_t n, bool utf8)
{
    if (n <= QUOTE_MAX)
        return n;
    size_t k = QUOTE_MAX;
    while (utf8 && k > 0 && (s[k] & 0xc0) == 0x80)
        k--;
    return k;
}

static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Characters that must not reach a log or a terminal as they are, even
 * in valid UTF-8: C1 controls (U+0085 is a line break), the line and
 * paragraph separators and the bidirectional controls that can make a
 * message read differently from what it says. */
static bool unsafe_code_point(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200e && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* Bytes of the UTF-8 character at u[0..n) to copy as they are: its
 * length when it is safe to show, 0 when it must be escaped. */
static size_t shown_utf8(const unsigned char *u, size_t n)
{
    uint32_t cp;
    size_t len = utf8_decode(u, n, &cp);
    return len > 1 && !unsafe_code_point(cp) ? len : 0;
}

/* s[0..n) made safe to print on one line. utf8: the text was checked to
 * be valid UTF-8, so its printable non-ASCII characters are shown as they
 * are; every other byte is written \xNN. */
static const char *quote(const char *s, size_t n, bool utf8,
                         char buf[QUOTE_BUF])
{
    const unsigned char *u = (const unsigned char *)s;
    size_t cut = quote_cut(u, n, utf8), pos = 0;
    char one[8];
    for (size_t i = 0; i < cut;) {
        size_t keep = utf8 && u[i] >= 0x80 ? shown_utf8(u + i, cut - i) : 0;
        if (keep > 0) {
            memcpy(buf + pos, u + i, keep);
            pos += keep;
            i += keep;
            continue;
        }
        size_t plen = strlen(show_char(u[i++], one));
        memcpy(buf + pos, one, plen);
        pos += plen;
    }
    if (cut < n) {
        memcpy(buf + pos, "...", 3);
        pos += 3;
    }
    buf[pos] = '\0';
    return buf;
}

const char *mxr__quote(const char *s, size_t n, char buf[MXR__QUOTE_BUF])
{
    return quote(s, n, false, buf);
}

/* --------------------------------------------------------- host names */

static mxr_status check_label_chars(const char *label, size_t n, errbuf *e)
{
    char c[8];
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)label[i];
        if (b >= 0x80)
            return fail(e, "non-ASCII byte '%s' in a host name",
                        show_char(b, c));
        if (!is_ldh(b))
            return fail(e, "character '%s' not allowed in a host name",
                        show_char(b, c));
    }
    return MXR_OK;
}

/* name/namelen are the whole name, only for the message. */
static mxr_status check_label(const char *label, size_t n, const char *name,
                              size_t namelen, errbuf *e)
{
    char q[QUOTE_BUF];
    if (n == 0)
        return fail(e, "empty label in '%s'", quote(name, namelen, false, q));
    mxr_status st = check_label_chars(label, n, e);
    if (st != MXR_OK)
        return st;
    if (n > MXR__LABEL_MAX)
        return fail(e, "label '%s' is longer than %d octets",
                    quote(label, n, false, q), MXR__LABEL_MAX);
    if (label[0] == '-')
        return fail(e, "label '%s' starts with a hyphen",
                    quote(label, n, false, q));
    if (label[n - 1] == '-')
        return fail(e, "label '%s' ends with a hyphen",
                    quote(label, n, false, q));
    return MXR_OK;
}

/* name[0..len) without its final dot; orig_len includes it, for messages. */
static mxr_status check_labels(const char *name, size_t len, size_t orig_len,
                               errbuf *e)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        mxr_status st = check_label(name + start, i - start, name, orig_len, e);
        if (st != MXR_OK)
            return st;
        start = i + 1;
    }
    return MXR_OK;
}

/* One pass over a name that breaks no rule (the usual case): labels of 1
 * to 63 LDH octets, no hyphen at either end, at most MXR__NAME_MAX octets
 * without the final dot. Writes it lower-cased; false when any rule is
 * broken, and the full check then says which. */
static bool normalize_quickly(const char *in, size_t n, char *out)
{
    if (n > MXR__NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '.') {
            if (label == 0 || in[i - 1] == '-')
                return false;
            label = 0;
        } else if (!is_ldh(c) || ++label > MXR__LABEL_MAX ||
                   (label == 1 && c == '-')) {
            return false;
        }
        out[i] = ascii_lower(c);
    }
    if (label == 0 || in[n - 1] == '-')
        return false;
    out[n] = '\0';
    return true;
}

mxr_status mxr__hostname_normalize(const char *in, size_t len,
                                   char out[MXR__NAME_MAX + 1], char *err,
                                   size_t errlen)
{
    errbuf e = {err, errlen};
    if (out == NULL)
        return MXR_EINVAL;
    out[0] = '\0';
    if (in == NULL)
        len = 0;
    size_t n = len > 0 && in[len - 1] == '.' ? len - 1 : len;
    if (n == 0) /* "" or the root "." is no host to deliver to */
        return fail(&e, "empty host name");
    if (normalize_quickly(in, n, out))
        return MXR_OK;
    out[0] = '\0';
    mxr_status st = check_labels(in, n, len, &e);
    if (st != MXR_OK)
        return st;
    char q[QUOTE_BUF];
    if (n > MXR__NAME_MAX)
        return fail(&e, "name '%s' is longer than %d octets",
                    quote(in, n, false, q), MXR__NAME_MAX);
    for (size_t i = 0; i < n; i++)
        out[i] = ascii_lower((unsigned char)in[i]);
    out[n] = '\0';
    return MXR_OK;
}

/* The length of name without one trailing dot. */
static size_t len_undotted(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && name[n - 1] == '.' ? n - 1 : n;
}

bool mxr__hostname_eq(const char *a, const char *b)
{
    size_t n = len_undotted(a);
    if (n != len_undotted(b))
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) !=
            ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

mxr__name_form mxr__name_split(const char *name, size_t n, const char *domain,
                               size_t d, size_t *kept)
{
    *kept = n;
    if (d == 0 || n < d || memcmp(name + n - d, domain, d) != 0)
        return MXR__NAME_WHOLE;
    if (n == d) {
        *kept = 0;
        return MXR__NAME_IS_DOMAIN;
    }
    if (n > d + 1 && name[n - d - 1] == '.') {
        *kept = n - d - 1;
        return MXR__NAME_UNDER;
    }
    return MXR__NAME_WHOLE;
}

size_t mxr__name_join(char *out, const char *kept, size_t k,
                      mxr__name_form form, const char *domain, size_t d)
{
    size_t at = 0;
    if (form != MXR__NAME_IS_DOMAIN) {
        memcpy(out, kept, k);
        at = k;
    }
    if (form == MXR__NAME_UNDER)
        out[at++] = '.';
    if (form != MXR__NAME_WHOLE) {
        memcpy(out + at, domain, d);
        at += d;
    }
    out[at] = '\0';
    return at;
}

bool mxr__name_is_ip_literal(const char *name)
{
    if (name == NULL)
        return false;
    char buf[LITERAL_MAX];
    size_t n = strnlen(name, sizeof buf);
    if (n == 0 || n >= sizeof buf)
        return false;
    /* inet_pton reads nothing else: most host names stop here, cheaply */
    for (size_t i = 0; i < n; i++)
        if (!is_hex_digit((unsigned char)name[i]) && name[i] != ':' &&
            name[i] != '.')
            return false;
    memcpy(buf, name, n + 1);
    /* A DNS name may carry its final dot: "192.0.2.1." is still IPv4. */
    if (buf[n - 1] == '.' && strchr(buf, ':') == NULL)
        buf[n - 1] = '\0';
    mxr_addr a;
    return mxr__addr_parse(buf, &a);
}

/* --------------------------------------------------------------- UTF-8 */

/* Decodes the lead byte: sequence length, its payload bits and the least
 * code point that length may carry (to refuse overlong forms). */
static size_t utf8_lead(unsigned char c, uint32_t *cp, uint32_t *min)
{
    if (c < 0x80) {
        *cp = c, *min = 0;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        *cp = c & 0x1fu, *min = 0x80;
        return 2;
    }
    if ((c & 0xf0) == 0xe0) {
        *cp = c & 0x0fu, *min = 0x800;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        *cp = c & 0x07u, *min = 0x10000;
        return 4;
    }
    return 0;
}

/* Length of the valid RFC 3629 sequence at s[0..n) and its code point,
 * 0 when invalid: truncated, overlong, a surrogate or above U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t min;
    size_t len = utf8_lead(s[0], cp, &min);
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3fu);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

static size_t utf8_seq(const unsigned char *s, size_t n)
{
    uint32_t cp;
    return utf8_decode(s, n, &cp);
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(u + i, n - i);
        if (len == 0)
            return false;
        i += len;
    }
    return true;
}

static bool has_non_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------- local part */

static bool is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 qtextSMTP: printable ASCII but '"' and '\'. */
static bool is_qtext(unsigned char c)
{
    return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static mxr_status check_dot_atom(const char *s, size_t n, errbuf *e)
{
    char q[QUOTE_BUF], c[8];
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '.' && (i == 0 || i == n - 1 || s[i - 1] == '.'))
            return fail(e, "misplaced dot in local part '%s'",
                        quote(s, n, false, q));
        /* RFC 6531 (SMTPUTF8): UTF-8 is atext too; check_local_part has
         * validated the whole local part already. */
        if (b != '.' && !is_atext(b) && b < 0x80)
            return fail(e, "character '%s' not allowed in local part",
                        show_char(b, c));
    }
    return MXR_OK;
}

/* s[0..n) is a whole quoted string whose closing quote was found by
 * quoted_end, so a backslash is never the last byte before it. */
static mxr_status check_quoted(const char *s, size_t n, errbuf *e)
{
    char c[8];
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '\\')
            b = (unsigned char)s[++i];
        else if (is_qtext(b))
            continue;
        if (b < 32 || b > 126)
            return fail(e, "character '%s' not allowed in quoted local part",
                        show_char(b, c));
    }
    return MXR_OK;
}

static mxr_status check_local_part(const char *s, size_t n, errbuf *e)
{
    if (n == 0)
        return fail(e, "empty local part");
    if (n > LOCAL_MAX)
        return fail(e, "local part longer than %d octets", LOCAL_MAX);
    if (has_non_ascii(s, n) && !utf8_valid(s, n))
        return fail(e, "local part is not valid UTF-8");
    if (s[0] == '"')
        return check_quoted(s, n, e);
    return check_dot_atom(s, n, e);
}

/* Index of the quote closing the quoted string at s[0], 0 if none. */
static size_t quoted_end(const char *s, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (s[i] == '\\')
            i++; /* the escaped byte can be a quote or an '@' */
        else if (s[i] == '"')
            return i;
    }
    return 0;
}

/* The local part is the quoted string at s[0]; an '@' must follow it. */
static mxr_status split_quoted(const char *s, size_t n, size_t *local_len,
                               errbuf *e)
{
    char q[QUOTE_BUF];
    size_t end = quoted_end(s, n);
    if (end == 0)
        return fail(e, "unterminated quoted local part");
    if (end + 1 == n)
        return fail(e, "quoted local part without a domain");
    if (s[end + 1] != '@')
        return fail(e, "unexpected text after quoted local part: '%s'",
                    quote(s + end + 1, n - end - 1, false, q));
    *local_len = end + 1;
    return MXR_OK;
}

/* Splits at the last '@' outside a quoted local part. *local_len is the
 * length before the '@'; *has_local is false for a bare domain. Without
 * a leading quote no '@' can be quoted, so the last '@' is the split:
 * any earlier one is then reported as a bad local-part character. */
static mxr_status split_address(const char *s, size_t n, size_t *local_len,
                                bool *has_local, errbuf *e)
{
    *has_local = true;
    if (s[0] == '"')
        return split_quoted(s, n, local_len, e);
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == '@') {
            *local_len = i - 1;
            return MXR_OK;
        }
    }
    *has_local = false;
    *local_len = 0;
    return MXR_OK;
}

/* ------------------------------------------------------ address literal */

/* text is "192.0.2.1" or "IPv6:2001:db8::1" (the brackets removed). */
static mxr_status parse_literal_text(const char *text, mxr_addr *a, errbuf *e)
{
    char q[QUOTE_BUF];
    const char *shown = quote(text, strlen(text), false, q);
    if (strncasecmp(text, "IPv6:", 5) == 0) {
        if (!mxr__addr_parse(text + 5, a) || a->family != AF_INET6)
            return fail(e, "bad IPv6 address literal '[%s]'", shown);
        return MXR_OK;
    }
    if (strchr(text, ':') != NULL) {
        if (mxr__addr_parse(text, a))
            return fail(e,
                        "IPv6 address literal needs the 'IPv6:' prefix: "
                        "'[IPv6:%s]'",
                        shown);
        return fail(e, "unsupported address literal '[%s]'", shown);
    }
    if (!mxr__addr_parse(text, a) || a->family != AF_INET)
        return fail(e, "bad IPv4 address literal '[%s]'", shown);
    return MXR_OK;
}

static mxr_status parse_literal(const char *d, size_t n, mxr__input *out,
                                errbuf *e)
{
    char q[QUOTE_BUF], text[LITERAL_MAX], addr[MXR_ADDR_STRLEN];
    if (n < 2 || d[n - 1] != ']')
        return fail(e, "unterminated address literal '%s'",
                    quote(d, n, false, q));
    if (n - 2 >= sizeof text)
        return fail(e, "address literal '%s' is too long",
                    quote(d, n, false, q));
    memcpy(text, d + 1, n - 2);
    text[n - 2] = '\0';
    mxr_status st = parse_literal_text(text, &out->literal, e);
    if (st != MXR_OK)
        return st;
    mxr_addr_format(&out->literal, addr, sizeof addr);
    snprintf(out->domain, sizeof out->domain, "[%s%s]",
             out->literal.family == AF_INET6 ? "IPv6:" : "", addr);
    out->kind = MXR__INPUT_LITERAL;
    return MXR_OK;
}

/* --------------------------------------------------------------- domain */

static bool all_numeric(const char *name)
{
    for (; *name != '\0'; name++) {
        if (!is_digit((unsigned char)*name) && *name != '.')
            return false;
    }
    return true;
}

/* A domain of digits and dots is an address typed without brackets (or
 * nothing routable at all: no top-level domain is numeric). */
static mxr_status reject_numeric(const char *name, errbuf *e)
{
    char q[QUOTE_BUF];
    if (!all_numeric(name)) /* LDH names cannot hold ':', so no IPv6 */
        return MXR_OK;      /* the common case: no message to build */
    const char *shown = quote(name, strlen(name), false, q);
    if (mxr__name_is_ip_literal(name))
        return fail(e,
                    "'%s' is an IP address, not a domain; use an address "
                    "literal such as '[%s]'",
                    shown, shown);
    return fail(e, "all-numeric name '%s' is not a domain", shown);
}

/* d is NUL-terminated at d[n] (it is the tail of the input). */
static mxr_status parse_idn(const char *d, size_t n, mxr__input *out, errbuf *e)
{
    char q[QUOTE_BUF];
    if (!utf8_valid(d, n))
        return fail(e, "not valid UTF-8: '%s'", quote(d, n, false, q));
    uint8_t *alabel = NULL;
    int rc = idn2_lookup_u8((const uint8_t *)d, &alabel,
                            IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
        idn2_free(alabel);
        return fail(e, "IDNA: %s: '%s'", idn2_strerror(rc),
                    quote(d, n, true, q));
    }
    const char *ascii = (const char *)alabel;
    mxr_status st = mxr__hostname_normalize(ascii, strlen(ascii), out->domain,
                                            e->buf, e->len);
    idn2_free(alabel);
    return st;
}

static mxr_status parse_domain(const char *d, size_t n, mxr__input *out,
                               errbuf *e)
{
    mxr_status st;
    if (n == 0)
        return fail(e, "missing domain after '@'");
    if (d[0] == '[')
        return parse_literal(d, n, out, e);
    if (has_non_ascii(d, n))
        st = parse_idn(d, n, out, e);
    else
        st = mxr__hostname_normalize(d, n, out->domain, e->buf, e->len);
    if (st != MXR_OK)
        return st;
    out->kind = MXR__INPUT_DOMAIN;
    return reject_numeric(out->domain, e);
}

static mxr_status parse_input(const char *input, mxr__input *out, errbuf *e)
{
    if (input == NULL)
        return fail(e, "no input");
    size_t n = strnlen(input, MXR__INPUT_MAX + 1);
    if (n > MXR__INPUT_MAX)
        return fail(e, "input longer than %d octets", MXR__INPUT_MAX);
    if (n == 0)
        return fail(e, "empty input");
    size_t local_len = 0;
    mxr_status st = split_address(input, n, &local_len, &out->has_local, e);
    if (st != MXR_OK)
        return st;
    if (!out->has_local)
        return parse_domain(input, n, out, e);
    st = check_local_part(input, local_len, e);
    if (st != MXR_OK)
        return st;
    return parse_domain(input + local_len + 1, n - local_len - 1, out, e);
}

mxr_status mxr__input_parse(const char *input, mxr__input *out, char *err,
                            size_t errlen)
{
    errbuf e = {err, errlen};
    if (out == NULL)
        return MXR_EINVAL;
    memset(out, 0, sizeof *out);
    mxr_status st = parse_input(input, out, &e);
    if (st != MXR_OK) /* leave no half-filled result behind */
        memset(out, 0, sizeof *out);
    return st;
}
