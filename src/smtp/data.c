/* smtp_data.c -- CRLF normalisation and dot-stuffing in one pass. Both
 * functions walk the message with the same rules; the first only counts,
 * so the caller allocates once. */
#include "smtp/data.h"

#include <string.h>

/* Emit into out when it is not NULL; always count. */
typedef struct sink {
    char *out;
    size_t n;
} sink;

static void put(sink *s, const char *bytes, size_t n)
{
    if (s->out)
        memcpy(s->out + s->n, bytes, n);
    s->n += n;
}

static void encode(const char *msg, size_t len, sink *s)
{
    bool line_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = msg[i];
        if (c == '\r' || c == '\n') {
            /* CRLF, bare CR or bare LF: one line end each. */
            if (c == '\r' && i + 1 < len && msg[i + 1] == '\n')
                i++;
            put(s, "\r\n", 2);
            line_start = true;
            continue;
        }
        if (c == '.' && line_start)
            put(s, ".", 1); /* transparency: the server strips it */
        put(s, &c, 1);
        line_start = false;
    }
    if (!line_start)
        put(s, "\r\n", 2); /* the last line had no line end */
    put(s, ".\r\n", 3);
}

size_t mxr__data_encoded_len(const char *msg, size_t len)
{
    sink s = {NULL, 0};
    encode(msg, len, &s);
    return s.n;
}

void mxr__data_encode(const char *msg, size_t len, char *out)
{
    sink s = {out, 0};
    encode(msg, len, &s);
}

bool mxr__data_is_8bit(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)msg[i] > 127)
            return true;
    return false;
}
