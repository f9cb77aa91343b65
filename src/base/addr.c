/* addr.c -- numeric address parsing, formatting and the safety classes
 * that decide whether a DNS-derived address may be connected to. */
#include "base/addr.h"

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

/* Longest numeric text inet_pton can accept ("ffff:...:255.255.255.255"). */
#define MXR__ADDR_TEXT_MAX 45

/* inet_pton already refuses these, but saying so keeps the contract
 * (no brackets, no zone id, no spaces) independent of the libc. */
static bool has_forbidden_char(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '%' || c == '[' || c == ']' || c <= ' ' || c >= 0x7f)
            return true;
    }
    return false;
}

bool mxr__addr_parse(const char *text, mxr_addr *out)
{
    if (text == NULL || out == NULL)
        return false;
    size_t len = strnlen(text, MXR__ADDR_TEXT_MAX + 1);
    if (len == 0 || len > MXR__ADDR_TEXT_MAX || has_forbidden_char(text, len))
        return false;
    mxr_addr a;
    memset(&a, 0, sizeof a);
    /* The family is decided by the text, so "1.2.3.4" never becomes an
     * IPv6 address and an IPv6 text never half-parses as IPv4. */
    a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(a.family, text, a.bytes) != 1)
        return false;
    *out = a;
    return true;
}

static size_t addr_len(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

bool mxr__addr_equal(const mxr_addr *a, const mxr_addr *b)
{
    if (a == NULL || b == NULL || a->family != b->family)
        return false;
    size_t n = addr_len(a->family);
    return n != 0 && memcmp(a->bytes, b->bytes, n) == 0;
}

/* b is the address in network order; ranges from RFC 6890. */
static mxr_addr_class classify_v4(const uint8_t *b)
{
    if (b[0] == 0 || b[0] >= 224) /* this network, multicast, 240/4 and
                                     255.255.255.255 */
        return MXR_ADDR_UNROUTABLE;
    if (b[0] == 169 && b[1] == 254) /* link-local */
        return MXR_ADDR_UNROUTABLE;
    if (b[0] == 127)
        return MXR_ADDR_LOOPBACK;
    if (b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
        (b[0] == 192 && b[1] == 168))
        return MXR_ADDR_PRIVATE;
    if (b[0] == 100 && (b[1] & 0xc0) == 64) /* carrier-grade NAT */
        return MXR_ADDR_PRIVATE;
    return MXR_ADDR_GLOBAL;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

static mxr_addr_class classify_v6(const uint8_t *b)
{
    if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
        return classify_v4(b + 12);    /* ::ffff:a.b.c.d */
    if (all_zero(b, 15) && b[15] == 0) /* :: unspecified */
        return MXR_ADDR_UNROUTABLE;
    if (all_zero(b, 15) && b[15] == 1) /* ::1 */
        return MXR_ADDR_LOOPBACK;
    if (b[0] == 0xff) /* multicast */
        return MXR_ADDR_UNROUTABLE;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
        return MXR_ADDR_UNROUTABLE;
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return MXR_ADDR_PRIVATE;
    return MXR_ADDR_GLOBAL;
}

mxr_addr_class mxr_addr_classify(const mxr_addr *a)
{
    /* An address we cannot read is one we must not connect to. */
    if (a == NULL)
        return MXR_ADDR_UNROUTABLE;
    if (a->family == AF_INET)
        return classify_v4(a->bytes);
    if (a->family == AF_INET6)
        return classify_v6(a->bytes);
    return MXR_ADDR_UNROUTABLE;
}

const char *mxr_addr_class_name(mxr_addr_class cls)
{
    static const char *const words[] = {
        [MXR_ADDR_GLOBAL] = "global",
        [MXR_ADDR_PRIVATE] = "private",
        [MXR_ADDR_LOOPBACK] = "loopback",
        [MXR_ADDR_UNROUTABLE] = "unroutable",
    };
    return (unsigned)cls < sizeof words / sizeof *words ? words[cls]
                                                        : "unknown";
}

const char *mxr_addr_format(const mxr_addr *addr, char *buf, size_t len)
{
    if (addr == NULL || buf == NULL || addr_len(addr->family) == 0)
        return NULL;
    /* inet_ntop takes a socklen_t; more than MXR_ADDR_STRLEN is never
     * needed, so clamping cannot make a sufficient buffer look short. */
    socklen_t n = len > MXR_ADDR_STRLEN ? MXR_ADDR_STRLEN : (socklen_t)len;
    return inet_ntop(addr->family, addr->bytes, buf, n);
}

bool mxr_addr_parse(const char *text, mxr_addr *out)
{
    mxr_addr a;
    if (!text || !out || !mxr__addr_parse(text, &a))
        return false;
    *out = a;
    return true;
}
