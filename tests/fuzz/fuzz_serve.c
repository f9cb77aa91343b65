/* fuzz_serve.c -- what a client of `mxroute serve` sends (src/cli/
 * serve_socketmap.c, serve_json.c).
 *
 * Socketmap: the input is a connection's byte stream, parsed request
 * after request as the daemon parses it. Every request lies inside the
 * buffer, consumes what it says, has a name and a key without NUL bytes
 * and within the size limit, and its key gives a lower-case domain or
 * none. A malformed stream ends with SM_BAD, never a read past the end.
 *
 * JSON Lines: every line parses to a route, a stats request or an error
 * with a reason, and what it returns is freed.
 *
 * Exim: the input as a reply's message (an engine error, an input echoed)
 * still makes one reply line for ${extract}: ends in its only newline,
 * no other control byte, every '"' inside the value escaped. */
#include "harness.h"

#include "serve.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUEST 512 /* small: the fuzzer reaches the limit */

static void check_domain(const sm_request *rq)
{
    char dom[300];
    if (!sm_key_domain(rq->key, rq->key_len, dom, sizeof dom))
        return;
    size_t n = strlen(dom);
    FZ_ASSERT(n > 0 && n < sizeof dom);
    FZ_ASSERT(dom[n - 1] != '.');
    for (size_t i = 0; i < n; i++)
        FZ_ASSERT(!(dom[i] >= 'A' && dom[i] <= 'Z') && dom[i] != '@');
}

static void socketmap_stream(const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        sm_request rq;
        const char *why = NULL;
        sm_parse_rc rc = sm_parse(buf + off, len - off, MAX_REQUEST, &rq, &why);
        if (rc == SM_BAD) {
            FZ_ASSERT(why && *why);
            return;
        }
        if (rc == SM_MORE)
            return;
        FZ_ASSERT(rq.used > 0 && rq.used <= len - off);
        FZ_ASSERT(rq.name >= buf + off && rq.key >= buf + off);
        FZ_ASSERT(rq.key + rq.key_len <= buf + off + rq.used);
        FZ_ASSERT(rq.name_len + rq.key_len < MAX_REQUEST);
        FZ_ASSERT(!memchr(rq.name, '\0', rq.name_len));
        FZ_ASSERT(!memchr(rq.key, '\0', rq.key_len));
        check_domain(&rq);
        off += rq.used;
    }
}

/* outcome and health: a request is refused with a reason, or names a
 * host (NUL-free, shorter than its buffer) or an address, and its reply
 * is one JSON line. */
static void host_request(const char *line, size_t n, js_op op)
{
    js_host_req q;
    const char *why = NULL;
    if (!js_host_parse(line, n, op, &q, &why)) {
        FZ_ASSERT(why && *why);
        return;
    }
    FZ_ASSERT(q.host[0] || q.has_addr);
    FZ_ASSERT(strlen(q.host) < sizeof q.host);
    mxr_health h = {0};
    char *r = js_health_reply(NULL, &q, &h, 0, op == JS_OUTCOME);
    FZ_ASSERT(r && strchr(r, '\n') == r + strlen(r) - 1);
    free(r);
}

static void json_lines(const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
        void *id = NULL;
        char *input = NULL;
        const char *why = NULL;
        js_op op = js_parse(buf + off, n, &id, &input, &why);
        FZ_ASSERT(op == JS_ROUTE || op == JS_STATS || op == JS_OUTCOME ||
                  op == JS_HEALTH || op == JS_RELOAD || op == JS_ERROR);
        if (op == JS_ROUTE)
            FZ_ASSERT(input != NULL);
        if (op == JS_ERROR)
            FZ_ASSERT(why && *why);
        if (op == JS_OUTCOME || op == JS_HEALTH)
            host_request(buf + off, n, op);
        free(input);
        json_decref(id);
        off += n + 1;
    }
}

static void exim_message(const char *buf, size_t len)
{
    char msg[600], out[256];
    size_t n = len < sizeof msg - 1 ? len : sizeof msg - 1;
    memcpy(msg, buf, n);
    msg[n] = '\0';
    size_t at = ex_format_message(out, sizeof out, "defer", NULL, msg);
    FZ_ASSERT(at == strlen(out) && at < sizeof out);
    FZ_ASSERT(at > 0 && out[at - 1] == '\n' && out[at - 2] == '"');
    const char *v = strchr(out, '"');
    FZ_ASSERT(v && strncmp(out, "action=defer message=\"", 22) == 0);
    for (size_t i = 0; i + 1 < at; i++)
        FZ_ASSERT((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    for (const char *c = v + 1; c < out + at - 2; c++) {
        if (*c == '\\')
            c++; /* an escape: the next byte is literal */
        else
            FZ_ASSERT(*c != '"');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    socketmap_stream((const char *)data, size);
    json_lines((const char *)data, size);
    exim_message((const char *)data, size);
    return 0;
}
