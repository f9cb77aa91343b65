/* fuzz_smtp_reply.c -- what an SMTP server sends back (src/smtp_reply.c)
 * and what we send after DATA (src/smtp_data.c).
 *
 * Replies: the input is a server's byte stream, cut into lines as the
 * session cuts it and fed to the reply parser reply after reply. Every
 * reply is either refused with a message or kept with a valid code, a
 * well-formed enhanced code, and bounded printable text.
 *
 * DATA: the same bytes as a message. Its wire form has CRLF line ends
 * only, no line that is a lone ".", ends with the terminator, and
 * undoing the dot-stuffing gives the message with its line ends made
 * CRLF. */
#include "harness.h"

#include "smtp/data.h"
#include "smtp/reply.h"

#include <stdlib.h>
#include <string.h>

#define MAX_TOTAL 65536

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

static void check_reply(const mxr__reply *r)
{
    FZ_ASSERT(r->code >= 200 && r->code <= 559);
    FZ_ASSERT(r->len < sizeof r->text && strlen(r->text) == r->len);
    for (size_t i = 0; i < r->len; i++)
        FZ_ASSERT(r->text[i] == '\n' ||
                  (r->text[i] >= 0x20 && r->text[i] < 0x7f));
    size_t n = strlen(r->enhanced);
    if (n == 0)
        return;
    /* class.subject.detail, the class matching the reply */
    FZ_ASSERT(n >= 5 && n < MXR__ENHANCED_MAX);
    FZ_ASSERT(r->enhanced[0] == (char)('0' + r->code / 100));
    FZ_ASSERT(r->enhanced[1] == '.' && digit(r->enhanced[2]));
}

static void fuzz_replies(const char *buf, size_t len)
{
    mxr__reply r;
    mxr__reply_reset(&r);
    size_t off = 0, used;
    long n;
    while ((n = mxr__reply_next_line(buf + off, len - off, &used)) >= 0) {
        FZ_ASSERT((size_t)n < used && off + used <= len);
        const char *err = NULL;
        int rc = mxr__reply_line(&r, buf + off, (size_t)n, MAX_TOTAL, &err);
        off += used;
        if (rc < 0) {
            FZ_ASSERT(err && err[0]);
            mxr__reply_reset(&r); /* the session ends here; go on anyway */
            continue;
        }
        FZ_ASSERT(r.total <= MAX_TOTAL);
        if (rc == 1) {
            check_reply(&r);
            (void)mxr__reply_has_keyword(&r, "STARTTLS");
            (void)mxr__reply_has_keyword(&r, "8BITMIME");
            mxr__reply_reset(&r);
        }
    }
}

/* Undo the wire form: drop the terminator and one leading dot per line. */
static size_t unstuff(const char *wire, size_t len, char *out)
{
    size_t o = 0;
    FZ_ASSERT(len >= 3 && memcmp(wire + len - 3, ".\r\n", 3) == 0);
    len -= 3;
    bool line_start = true;
    for (size_t i = 0; i < len; i++) {
        if (line_start && wire[i] == '.') {
            FZ_ASSERT(i + 1 < len && wire[i + 1] == '.'); /* stuffed */
            i++;
        }
        out[o++] = wire[i];
        line_start = wire[i] == '\n';
        if (wire[i] == '\n')
            FZ_ASSERT(i > 0 && wire[i - 1] == '\r');
        if (wire[i] == '\r')
            FZ_ASSERT(i + 1 < len && wire[i + 1] == '\n');
    }
    FZ_ASSERT(len == 0 || line_start); /* the last line is closed */
    return o;
}

/* The message with every line end (CRLF, CR, LF) as CRLF, and closed. */
static size_t normalise(const char *msg, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\r' || msg[i] == '\n') {
            if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
                i++;
            out[o++] = '\r';
            out[o++] = '\n';
        } else {
            out[o++] = msg[i];
        }
    }
    if (o > 0 && out[o - 1] != '\n') {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

static void fuzz_data(const char *msg, size_t len)
{
    size_t n = mxr__data_encoded_len(msg, len);
    FZ_ASSERT(n <= 3 * len + 5); /* at most "..\r\n" growth per byte */
    char *wire = malloc(n), *back = malloc(n), *want = malloc(2 * len + 2);
    if (!wire || !back || !want)
        goto out;
    mxr__data_encode(msg, len, wire);
    size_t b = unstuff(wire, n, back);
    size_t w = normalise(msg, len, want);
    FZ_ASSERT(b == w && memcmp(back, want, b) == 0);
    FZ_ASSERT(mxr__data_is_8bit(msg, len) == mxr__data_is_8bit(wire, n));
out:
    free(wire);
    free(back);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_replies((const char *)data, size);
    fuzz_data((const char *)data, size);
    return 0;
}
