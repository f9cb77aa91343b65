/* smtp_reply.c -- SMTP reply lines to one reply: code, enhanced code and
 * text. A line is "CODE-text" (more follow) or "CODE text" / "CODE" (the
 * last). Every line of a reply must carry the same code. */
#include "smtp/reply.h"

#include <string.h>

void mxr__reply_reset(mxr__reply *r)
{
    memset(r, 0, offsetof(mxr__reply, text));
    r->text[0] = '\0';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 5321 4.2: first digit 2-5, second 0-5, third 0-9. */
static int parse_code(const char *p)
{
    if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' || !is_digit(p[2]))
        return -1;
    return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* "class.subject.detail" with class 2, 4 or 5 equal to the reply's first
 * digit (RFC 3463 section 2), followed by a space or the end of the line.
 * Returns its length, or 0 when text does not start with one. */
static size_t enhanced_len(const char *text, size_t len, int code)
{
    if (len < 5 || text[0] != (char)('0' + code / 100) || text[1] != '.')
        return 0;
    size_t i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (i < len && is_digit(text[i]) && i - start < 3)
            i++;
        if (i == start)
            return 0;
        if (part == 0) {
            if (i >= len || text[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && text[i] != ' ')
        return 0;
    return i < MXR__ENHANCED_MAX ? i : 0;
}

/* Keep printable ASCII only: reply text ends up in logs, terminals and
 * JSON, and a server may send anything. */
static void append_text(mxr__reply *r, const char *s, size_t n)
{
    if (r->nlines > 1 && r->len + 1 < sizeof r->text)
        r->text[r->len++] = '\n';
    for (size_t i = 0; i < n; i++) {
        if (r->len + 1 >= sizeof r->text) {
            r->truncated = true;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        r->text[r->len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    r->text[r->len] = '\0';
}

static void take_text(mxr__reply *r, const char *text, size_t len)
{
    size_t enh = enhanced_len(text, len, r->code);
    if (enh && r->nlines == 1) {
        memcpy(r->enhanced, text, enh);
        r->enhanced[enh] = '\0';
    }
    /* Each line of a multi-line reply repeats the enhanced code: drop it
     * from the text where it is the same. */
    if (enh && enh == strlen(r->enhanced) &&
        memcmp(text, r->enhanced, enh) == 0) {
        text += enh;
        len -= enh;
        while (len > 0 && *text == ' ') {
            text++;
            len--;
        }
    }
    append_text(r, text, len);
}

int mxr__reply_line(mxr__reply *r, const char *line, size_t len,
                    size_t max_total, const char **err)
{
    if (len < 3 || (len > 3 && line[3] != ' ' && line[3] != '-')) {
        *err = "malformed reply line";
        return -1;
    }
    int code = parse_code(line);
    if (code < 0) {
        *err = "malformed reply code";
        return -1;
    }
    if (r->code != 0 && code != r->code) {
        *err = "reply lines carry different codes";
        return -1;
    }
    r->total += len + 2;
    if (r->total > max_total) {
        *err = "reply too long";
        return -1;
    }
    r->code = code;
    r->nlines++;
    if (len > 4)
        take_text(r, line + 4, len - 4);
    else if (r->nlines > 1)
        append_text(r, "", 0);
    return len > 3 && line[3] == '-' ? 0 : 1;
}

/* Compare the first word of s (n bytes) with keyword, ignoring case. */
static bool word_is(const char *s, size_t n, const char *keyword)
{
    size_t k = strlen(keyword);
    if (n < k || (n > k && s[k] != ' '))
        return false;
    for (size_t i = 0; i < k; i++) {
        char a = s[i], b = keyword[i];
        if (a >= 'a' && a <= 'z')
            a = (char)(a - 'a' + 'A');
        if (b >= 'a' && b <= 'z')
            b = (char)(b - 'a' + 'A');
        if (a != b)
            return false;
    }
    return true;
}

bool mxr__reply_has_keyword(const mxr__reply *r, const char *keyword)
{
    const char *p = memchr(r->text, '\n', r->len);
    const char *end = r->text + r->len;
    while (p && p < end) {
        const char *start = p + 1;
        const char *nl = memchr(start, '\n', (size_t)(end - start));
        const char *stop = nl ? nl : end;
        if (word_is(start, (size_t)(stop - start), keyword))
            return true;
        p = nl;
    }
    return false;
}

long mxr__reply_next_line(const char *buf, size_t len, size_t *consumed)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return -1;
    size_t n = (size_t)(nl - buf);
    *consumed = n + 1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    return (long)n;
}
