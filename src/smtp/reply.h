/* smtp_reply.h -- SMTP reply parsing (RFC 5321 section 4.2): multi-line
 * replies, the reply code, RFC 3463 enhanced status codes and EHLO
 * keywords. Everything here reads bytes from a remote server: it bounds
 * what it keeps and never trusts a length. */
#ifndef MXR_SMTP_REPLY_H
#define MXR_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* The longest reply line accepted (RFC 5321 4.5.3.1.5 allows 512 octets
 * with CRLF; real servers exceed it a little, hostile ones a lot). */
#define MXR__REPLY_LINE_MAX 2048
/* Reply text kept, all lines joined by '\n'; the rest is dropped. */
#define MXR__REPLY_TEXT_MAX 4096
#define MXR__ENHANCED_MAX 16

typedef struct mxr__reply {
    int code; /* 0 until the first line is read */
    unsigned nlines;
    size_t total; /* bytes of all lines so far, for the reply bound */
    size_t len;   /* of text */
    bool truncated;
    char enhanced[MXR__ENHANCED_MAX]; /* "2.1.5", or "" */
    char text[MXR__REPLY_TEXT_MAX];   /* NUL-terminated, printable ASCII */
} mxr__reply;

void mxr__reply_reset(mxr__reply *r);

/* Take one reply line, without its CRLF. Returns 1 when it was the last
 * line of the reply, 0 when more lines follow, -1 when the line is not a
 * valid reply line (err says why). max_total bounds the whole reply. */
int mxr__reply_line(mxr__reply *r, const char *line, size_t len,
                    size_t max_total, const char **err);

/* Does the EHLO reply r list keyword (case-insensitive, first word of a
 * line other than the first)? */
bool mxr__reply_has_keyword(const mxr__reply *r, const char *keyword);

/* Split buf at the first line end (LF, with or without CR). Returns the
 * line length without the line end and sets *consumed to the bytes to
 * drop, or returns -1 when no complete line is in buf. */
long mxr__reply_next_line(const char *buf, size_t len, size_t *consumed);

#endif
