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
 * with a reason, and what it returns is freed. */
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
        FZ_ASSERT(op == JS_ROUTE || op == JS_STATS || op == JS_ERROR ||
                  op == JS_RELOAD);
        if (op == JS_ROUTE)
            FZ_ASSERT(input != NULL);
        if (op == JS_ERROR)
            FZ_ASSERT(why && *why);
        free(input);
        json_decref(id);
        off += n + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    socketmap_stream((const char *)data, size);
    json_lines((const char *)data, size);
    return 0;
}
