/* serve_socketmap.c -- the Postfix socketmap protocol (socketmap_table(5)):
 * netstring requests "NAME KEY", replies "OK data", "NOTFOUND ",
 * "TEMP reason", "PERM reason". Pure functions over buffers: the
 * connection code (serve_conn.c) owns the bytes. */
#include "serve.h"

#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

sm_parse_rc sm_parse(const char *buf, size_t len, size_t max, sm_request *out,
                     const char **why)
{
    size_t i = 0, n = 0;
    while (i < len && buf[i] >= '0' && buf[i] <= '9') {
        n = n * 10 + (size_t)(buf[i] - '0');
        i++;
        if (n > max || i > 10) {
            *why = "request too long";
            return SM_BAD;
        }
    }
    if (i == len)
        return SM_MORE;
    if (i == 0 || buf[i] != ':') {
        *why = "bad netstring length";
        return SM_BAD;
    }
    size_t start = i + 1;
    if (len - start < n + 1)
        return SM_MORE;
    if (buf[start + n] != ',') {
        *why = "netstring not terminated by ','";
        return SM_BAD;
    }
    const char *data = buf + start;
    if (memchr(data, '\0', n)) {
        *why = "NUL byte in request";
        return SM_BAD;
    }
    const char *sp = memchr(data, ' ', n);
    if (!sp || sp == data) {
        *why = "request is not 'NAME KEY'";
        return SM_BAD;
    }
    out->name = data;
    out->name_len = (size_t)(sp - data);
    out->key = sp + 1;
    out->key_len = n - out->name_len - 1;
    out->used = start + n + 1;
    return SM_REQUEST;
}

bool sm_key_domain(const char *key, size_t key_len, char *out, size_t size)
{
    const char *d = key;
    size_t n = key_len;
    for (size_t i = key_len; i > 0; i--) {
        if (key[i - 1] == '@') {
            d = key + i;
            n = key_len - i;
            break;
        }
    }
    if (n > 0 && d[n - 1] == '.')
        n--;
    /* One trailing dot is the root; a second one (an empty label) makes
     * no domain (found by fuzz_serve). */
    if (n == 0 || n >= size || d[0] == '.' || d[n - 1] == '.' ||
        memchr(d, '\0', n) || (n == 1 && d[0] == '*'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            return false;
        out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return true;
}

bool serve_domain_listed(const char *list, const char *domain)
{
    if (!list)
        return true;
    size_t dlen = strlen(domain);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 &&
               (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '.'))
            n--;
        if (n > 1 && p[0] == '.') {
            /* subdomains only: "x.example.com" for ".example.com" */
            if (dlen > n - 1 && domain[dlen - n] == '.' &&
                strncasecmp(domain + dlen - n + 1, p + 1, n - 1) == 0)
                return true;
        } else if (n > 0 && n == dlen && strncasecmp(domain, p, n) == 0) {
            return true;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

const char *sm_perm_code(mxr_reason r)
{
    switch (r) {
    case MXR_REASON_NULL_MX:
        return "5.1.10"; /* RFC 7505, section 4.2 */
    case MXR_REASON_NXDOMAIN:
        return "5.1.2"; /* bad destination system address */
    case MXR_REASON_LOOPS_TO_SELF:
        return "5.4.6"; /* routing loop detected */
    case MXR_REASON_POLICY:
        return "5.7.1"; /* delivery not authorized */
    default:
        return "5.4.4"; /* unable to route */
    }
}

/* Reply text must not carry bytes that break Postfix's logging or the
 * next-hop syntax: control characters become '?'. */
static size_t put_text(char *out, size_t at, size_t max, const char *s)
{
    for (; s && *s && at + 1 < max; s++)
        out[at++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    out[at] = '\0';
    return at;
}

static size_t put_reason(char *out, size_t at, size_t max, mxr_reason r)
{
    at = put_text(out, at, max, mxr_reason_name(r));
    at = put_text(out, at, max, ": ");
    return put_text(out, at, max, out_explain(r));
}

const char *sm_transport_of(const sm_transports *t, const char *label)
{
    size_t n = label ? strlen(label) : 0;
    for (size_t i = t->nmap; label && i-- > 0;)
        if (t->map[i].label_len == n && memcmp(t->map[i].label, label, n) == 0)
            return t->map[i].transport;
    return t->fallback;
}

/* Each a whole next hop "[addr]:port" (IPv6 without the "ipv6:" tag:
 * Postfix's SMTP client takes "[2001:db8::1]:25" as an address literal,
 * and a next-hop list is "smtp:[a]:25, [b]:25", one transport for all;
 * Exim's manualroute takes the same items). A candidate of another
 * service than the first's is left out: a plan mixing them is a policy's
 * choice, and Postfix cannot follow it. A hop that would pass max is left
 * out with the rest: the reply stays whole. */
size_t serve_put_hops(char *out, size_t at, size_t max, const char *sep,
                      const mxr_plan *p, const sm_transports *t, size_t *nhops)
{
    const char *service =
        t && p->ncandidates ? sm_transport_of(t, p->candidates[0].label) : NULL;
    char addr[MXR_ADDR_STRLEN], hop[MXR_ADDR_STRLEN + 16];
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        if (service && strcmp(sm_transport_of(t, c->label), service) != 0)
            continue;
        for (size_t k = 0; k < c->naddrs; k++) {
            int n = snprintf(hop, sizeof hop, "%s[%s]:%u", *nhops ? sep : "",
                             mxr_addr_format(&c->addrs[k], addr, sizeof addr),
                             (unsigned)c->port);
            if (n < 0 || (size_t)n >= sizeof hop || at + (size_t)n >= max)
                return at;
            memcpy(out + at, hop, (size_t)n + 1);
            at += (size_t)n;
            (*nhops)++;
        }
    }
    return at;
}

size_t sm_format_result(char *out, size_t max, const sm_transports *t,
                        mxr_status st, const mxr_plan *p, const char *err)
{
    size_t at = 0;
    out[0] = '\0';
    if (st == MXR_EBADNAME)
        return put_text(out, 0, max, "NOTFOUND ");
    if (st != MXR_OK) {
        at = put_text(out, 0, max, "TEMP internal error: ");
        return put_text(out, at, max, err ? err : mxr_strerror(st));
    }
    if (p->result == MXR_RESULT_OK) {
        size_t nhops = 0;
        const char *service =
            p->ncandidates ? sm_transport_of(t, p->candidates[0].label) : "";
        at = (size_t)snprintf(out, max, "OK %s:", service);
        if (at < max && p->ncandidates)
            at = serve_put_hops(out, at, max, ", ", p, t, &nhops);
        if (nhops > 0)
            return at;
        return put_text(out, 0, max, "TEMP no address to deliver to");
    }
    if (p->result == MXR_RESULT_PERMFAIL) {
        at =
            (size_t)snprintf(out, max, "OK error:%s ", sm_perm_code(p->reason));
        return put_reason(out, at, max, p->reason);
    }
    at = put_text(out, 0, max, "TEMP ");
    return put_reason(out, at, max, p->reason);
}

size_t sm_netstring(char *out, size_t size, const char *data, size_t len)
{
    int n = snprintf(out, size, "%zu:", len);
    if (n < 0 || (size_t)n + len + 1 >= size)
        return 0;
    memcpy(out + n, data, len);
    out[(size_t)n + len] = ',';
    return (size_t)n + len + 1;
}
