/* serve_exim.c -- the Exim protocol of `mxroute serve`, made for Exim's
 * ${readsocket}: one request line (a domain or an address) per
 * connection, one reply line of KEY=VALUE pairs that Exim's
 * ${extract{KEY}{...}} reads, then the daemon closes (readsocket reads
 * until end of file). Pure functions over buffers, like the other two
 * protocols: the connection code (serve_conn.c) owns the bytes.
 *
 * Why not JSON: Exim 4.96's ${extract json} does not honour quotes, so a
 * comma or a brace inside a string breaks it, and Exim has no operator to
 * escape $domain into a JSON string. ${extract} on KEY=VALUE text takes
 * quoted values with backslash escapes, and the request needs no
 * escaping at all. */
#include "serve.h"

#include "cli.h"

#include <stdio.h>
#include <string.h>

/* A quoted value for ${extract}: '"' and '\' escaped, control bytes
 * (which would end or corrupt the reply line) become '?'. Stops short of
 * max, leaving room for the closing quote and the newline. */
static size_t put_quoted(char *out, size_t at, size_t max, const char *s)
{
    if (at + 3 >= max)
        return at;
    out[at++] = '"';
    for (; s && *s && at + 4 < max; s++) {
        char c = *s;
        if (c == '"' || c == '\\')
            out[at++] = '\\';
        out[at++] = (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
    }
    out[at++] = '"';
    out[at] = '\0';
    return at;
}

static size_t end_line(char *out, size_t at, size_t max)
{
    if (at + 1 >= max)
        at = max - 2;
    out[at++] = '\n';
    out[at] = '\0';
    return at;
}

size_t ex_format_message(char *out, size_t max, const char *action,
                         const char *prefix, const char *message)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s", prefix ? prefix : "",
             message ? message : "");
    int n = snprintf(out, max, "action=%s message=", action);
    size_t at = n < 0 ? 0 : (size_t)n >= max ? max - 1 : (size_t)n;
    return end_line(out, put_quoted(out, at, max, text), max);
}

/* "REASON: what it means", the text the socketmap replies carry too. */
static size_t fail_line(char *out, size_t max, const char *action,
                        const char *code, mxr_reason r)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s%s: ", code ? code : "",
             code ? " " : "", mxr_reason_name(r));
    return ex_format_message(out, max, action, prefix, out_explain(r));
}

size_t ex_format_result(char *out, size_t max, mxr_status st, const mxr_plan *p,
                        const char *err)
{
    out[0] = '\0';
    if (st == MXR_EBADNAME)
        return ex_format_message(out, max, "decline", "invalid-name: ", err);
    if (st != MXR_OK)
        return ex_format_message(out, max, "defer", "internal error: ",
                                 err ? err : mxr_strerror(st));
    if (p->result == MXR_RESULT_PERMFAIL)
        return fail_line(out, max, "fail", sm_perm_code(p->reason), p->reason);
    if (p->result != MXR_RESULT_OK)
        return fail_line(out, max, "defer", NULL, p->reason);
    /* Exim's host list: ';' as the separator ("<;"), since IPv6
     * addresses and ports hold colons; each item "[ADDR]:PORT", the form
     * manualroute takes for an address with a port. No spaces: the list
     * is route_data's first word. */
    static const char head[] = "action=route hosts=<;";
    size_t nhops = 0, at = 0;
    if (max > sizeof head) {
        memcpy(out, head, sizeof head);
        at =
            serve_put_hops(out, sizeof head - 1, max - 1, ";", p, NULL, &nhops);
    }
    if (nhops == 0)
        return ex_format_message(out, max, "defer", NULL,
                                 "no address to deliver to");
    return end_line(out, at, max);
}
