/* fuzz_policy.c -- what a policy hands back: the input is decoded into
 * Lua values (numbers at the edges, strings of any bytes, nested tables,
 * tables with metamethods, functions that edit the plan and return more
 * values) that a fixed policy passes to the plan methods (plan:add,
 * replace, reorder, remove, fail, ...) and returns from its route,
 * outcome and retry hooks. Routing and a delivery attempt then run
 * through the policy; whatever the values, every plan keeps its
 * invariants, no recipient is lost and the engine frees everything.
 *
 * The values reach the policy as its configuration: Lua source written
 * by gen_* below from the input bytes (always valid syntax, so the
 * fuzzer spends its time on values, not on the parser). Functions in the
 * values run as the policy's own code and see the plan of the current
 * route hook in the global P. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 4
#define COUNT(a) (sizeof(a) / sizeof *(a))

/* ------------------------------------------------- values from bytes */

/* The source being written. Its size is bounded by the input: every
 * piece costs input bytes, and past the end of the input every value is
 * nil (scripts/fuzz.sh caps inputs with policy.options). */
typedef struct gen {
    fz_reader *r;
    char *buf;
    size_t len, cap;
    bool oom;
    int depth;
} gen;

static void emit(gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(gen *g, const char *fmt, ...)
{
    char piece[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    FZ_ASSERT(n >= 0 && (size_t)n < sizeof piece);
    if (g->len + (size_t)n + 1 > g->cap) {
        size_t cap = (g->cap + (size_t)n + 1) * 2;
        char *grown = realloc(g->buf, cap);
        if (!grown) {
            g->oom = true;
            return;
        }
        g->buf = grown;
        g->cap = cap;
    }
    memcpy(g->buf + g->len, piece, (size_t)n + 1);
    g->len += (size_t)n;
}

static const char *pick(gen *g, const char *const *words, size_t n)
{
    return words[fz_byte(g->r) % n];
}

static const char *const WORDS[] = {"first",
                                    "last",
                                    "tempfail",
                                    "permfail",
                                    "bogus",
                                    "defer",
                                    "bounce",
                                    "next-host",
                                    "next-address",
                                    "continue",
                                    "delivered",
                                    "mx1.example.com",
                                    "MX2.Example.COM.",
                                    "relay.example.net",
                                    "nosuch.example.com",
                                    "192.0.2.1",
                                    "2001:db8::1",
                                    "127.0.0.1",
                                    "::1",
                                    "[192.0.2.1]",
                                    "300.1.1.1",
                                    "a..b",
                                    "-bad-",
                                    "xn--bcher-kva.example",
                                    "",
                                    "example.com",
                                    "fault.example.com",
                                    "slow.example.com",
                                    "host",
                                    "info",
                                    "warning"};
static const char *const INTEGERS[] = {"0",
                                       "-1",
                                       "1",
                                       "25",
                                       "65535",
                                       "65536",
                                       "math.maxinteger",
                                       "math.mininteger",
                                       "2^31",
                                       "2592000",
                                       "2592001",
                                       "1e15",
                                       "-0"};
static const char *const FLOATS[] = {"0.5",    "-0.0", "1e308",  "-1e308",
                                     "0/0",    "1/0",  "-1/0",   "2592000.5",
                                     "1e-300", "3.0",  "0.0005", "-2.5"};
static const char *const REPEATS[] = {"63",  "64",   "253",   "254",
                                      "256", "4096", "100000"};
static const char *const STATEMENTS[] = {
    "P:add(%s)",
    "P:remove(%s)",
    "P:reorder(%s)",
    "P:replace(%s)",
    "P:fail(%s)",
    "local _ = P:candidates(), %s",
    "local _ = P:skipped(), %s",
    "mx.resolve_addr(%s)",
    "mx.resolve_mx(%s)",
    "error(%s)",
    "pcall(P.add, P, %s)",
    "mx.log(%s)",
    "local _ = tostring(P) .. P.status, %s",
    "P = %s",
    "local _ = #P:candidates() + #(%s or {})"};
static const char *const SPEC_KEYS[] = {
    "host", "addresses", "preference", "port", "tls", "label", "position"};

static void gen_value(gen *g);

static void gen_bytes(gen *g)
{
    const uint8_t *b;
    size_t n = fz_take(g->r, &b, fz_byte(g->r) % 48);
    emit(g, "\"");
    for (size_t i = 0; i < n; i++)
        emit(g, "\\%03u", b[i]);
    emit(g, "\"");
}

static void gen_list(gen *g, unsigned n)
{
    emit(g, "{");
    for (unsigned i = 0; i < n; i++) {
        gen_value(g);
        emit(g, ",");
    }
    emit(g, "}");
}

/* A table shaped like a plan:add spec, each key there or not. */
static void gen_spec(gen *g)
{
    uint8_t keys = fz_byte(g->r) | 1; /* a host, mostly */
    emit(g, "{");
    for (size_t k = 0; k < COUNT(SPEC_KEYS); k++) {
        if (!(keys & (1u << k)))
            continue;
        emit(g, "%s = ", SPEC_KEYS[k]);
        gen_value(g);
        emit(g, ",");
    }
    emit(g, "}");
}

/* function(...) STATEMENT; ... return VALUE end */
static void gen_function(gen *g)
{
    unsigned n = fz_byte(g->r) % 3;
    emit(g, "function(...) ");
    for (unsigned i = 0; i < n; i++) {
        const char *stmt = pick(g, STATEMENTS, COUNT(STATEMENTS));
        const char *arg = strstr(stmt, "%s");
        emit(g, "%.*s", (int)(arg - stmt), stmt);
        gen_value(g);
        emit(g, "%s; ", arg + 2);
    }
    emit(g, "return ");
    gen_value(g);
    emit(g, " end");
}

/* A table whose metamethods run code: __index on a spec, __tostring on
 * a label, __len, ... */
static void gen_meta(gen *g)
{
    static const char *const events[] = {"__index", "__tostring", "__len",
                                         "__eq",    "__concat",   "__call"};
    emit(g, "setmetatable(");
    gen_spec(g);
    emit(g, ", {%s = ", pick(g, events, COUNT(events)));
    gen_function(g);
    emit(g, "})");
}

static void gen_leaf(gen *g, uint8_t kind)
{
    switch (kind) {
    case 0:
        emit(g, "nil");
        break;
    case 1:
        emit(g, fz_byte(g->r) & 1 ? "true" : "false");
        break;
    case 2:
        emit(g, "%d", (int8_t)fz_byte(g->r));
        break;
    case 3:
        emit(g, "(%s)", pick(g, INTEGERS, COUNT(INTEGERS)));
        break;
    case 4:
        emit(g, "(%s)", pick(g, FLOATS, COUNT(FLOATS)));
        break;
    case 5:
        gen_bytes(g);
        break;
    default:
        emit(g, "\"%s\"", pick(g, WORDS, COUNT(WORDS)));
        break;
    }
}

static void gen_value(gen *g)
{
    uint8_t kind = fz_byte(g->r) % 14;
    if (kind < 7 || g->depth >= DEPTH_MAX) {
        gen_leaf(g, kind % 7);
        return;
    }
    g->depth++;
    switch (kind) {
    case 7:
        gen_list(g, fz_byte(g->r) % 5);
        break;
    case 8:
        gen_spec(g);
        break;
    case 9:
        emit(g, "{");
        gen_spec(g);
        emit(g, ",");
        gen_spec(g);
        emit(g, "}");
        break;
    case 10:
        gen_meta(g);
        break;
    case 11:
        gen_function(g);
        break;
    case 12:
        emit(g, "string.rep(\"%s\", ", pick(g, WORDS, COUNT(WORDS)));
        emit(g, "%s)", pick(g, REPEATS, COUNT(REPEATS)));
        break;
    default:
        emit(g, "(function() local t = {} for i = 1, %s do t[i] = ",
             pick(g, REPEATS, 4));
        gen_value(g);
        emit(g, " end return t end)()");
        break;
    }
    g->depth--;
}

/* { ops = {{method, value, protected}, ...}, route_ret = v, outcome = v,
 *   retry = v [, domains = v, name = v], outcome_call = b, retry_call = b } */
static void gen_config(gen *g, bool loading_fields)
{
    static const char *const methods[] = {"add",     "replace", "reorder",
                                          "remove",  "fail",    "candidates",
                                          "skipped", "nosuch"};
    static const char *const fields[] = {"route_ret", "outcome", "retry",
                                         "domains", "name"};
    unsigned nops = fz_byte(g->r) % 6;
    emit(g, "{ops = {");
    for (unsigned i = 0; i < nops; i++) {
        emit(g, "{\"%s\", ", pick(g, methods, COUNT(methods)));
        gen_value(g);
        emit(g, ", %s},", fz_byte(g->r) & 1 ? "true" : "false");
    }
    emit(g, "}");
    for (size_t f = 0; f < (loading_fields ? 5u : 3u); f++) {
        emit(g, ", %s = ", fields[f]);
        gen_value(g);
    }
    bool call_outcome = fz_byte(g->r) & 1; /* in input order */
    bool call_retry = fz_byte(g->r) & 1;
    emit(g, ", outcome_call = %s, retry_call = %s}",
         call_outcome ? "true" : "false", call_retry ? "true" : "false");
}

/* ------------------------------------------------------- the policy */

static const char POLICY[] =
    "local cfg = ...\n"
    "local ops = type(cfg.ops) == 'table' and cfg.ops or {}\n"
    "local function give(v, call, ev)\n"
    "  if call and type(v) == 'function' then return v(ev) end\n"
    "  return v\n"
    "end\n"
    "return {\n"
    "  name = cfg.name, domains = cfg.domains,\n"
    "  route = function(plan)\n"
    "    P = plan\n"
    "    for _, op in ipairs(ops) do\n"
    "      local m = plan[op[1]]\n"
    "      if op[3] then pcall(m, plan, op[2]) else m(plan, op[2]) end\n"
    "    end\n"
    "    return cfg.route_ret\n"
    "  end,\n"
    "  outcome = function(ev) return give(cfg.outcome, cfg.outcome_call, ev) "
    "end,\n"
    "  retry = function(ev) return give(cfg.retry, cfg.retry_call, ev) end,\n"
    "}\n";

static const char ZONES[2][512] = {
    "$ORIGIN example.com.\n"
    "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n"
    "@ MX 10 mx1\n@ MX 20 mx2\n@ MX 30 mx3\n"
    "mx1 A 192.0.2.1\nmx1 AAAA 2001:db8::1\nmx2 A 192.0.2.2\n"
    "mx3 A 10.0.0.3\n"
    "nullmx MX 0 .\n"
    "fault MX 10 mx1\nfault TXT \"mxroute-fault=servfail\"\n"
    "slow TXT \"mxroute-fault=timeout\"\n",
    "$ORIGIN example.net.\n"
    "@ 3600 IN SOA ns hostmaster 1 3600 600 86400 300\n"
    "relay A 192.0.2.25\nrelay AAAA 2001:db8::25\n"
    "alias CNAME relay\n",
};

/* FZ_SHOW=1 in the environment prints the configuration and the
 * engine's messages: what a crash input does, in Lua. */
static bool show(void)
{
    const char *v = getenv("FZ_SHOW");
    return v && v[0] == '1';
}

static void log_line(void *ud, int level, const char *msg)
{
    FZ_ASSERT(msg != NULL);
    if (show())
        fprintf(stderr, "log[%d] %s\n", level, msg);
}

/* Small budgets: a value such as string.rep(s, 100000) in a loop must
 * end fast, and the caps are part of what is tested. */
static mxr_options *make_options(const char *config, uint8_t flags,
                                 fz_alloc *alloc)
{
    mxr_options *o;
    if (mxr_options_new(&o) != MXR_OK)
        return NULL;
    mxr_options_set_allocator(o, fz_alloc_fn, alloc);
    mxr_options_set_clock(o, fz_clock, NULL);
    mxr_options_set_log(o, log_line, NULL);
    mxr_options_set(o, MXR_OPT_SEED, 1);
    mxr_options_set(o, MXR_OPT_POLICY_MAX_INSTRUCTIONS, 20000);
    mxr_options_set(o, MXR_OPT_POLICY_MAX_MS, 200);
    mxr_options_set(o, MXR_OPT_POLICY_MAX_MEMORY, 4 << 20);
    mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, flags & 1);
    for (size_t i = 0; i < COUNT(ZONES); i++)
        mxr_options_add_zone_text(o, "zone", ZONES[i]);
    mxr_options_add_policy_text(o, "fuzz", POLICY, config);
    if (flags & 2) /* chained: the second sees what the first left */
        mxr_options_add_policy_text(o, "fuzz2", POLICY, config);
    return o;
}

static void route_all(mxr_engine *e, fz_reader *r)
{
    static const char *const inputs[] = {
        "user@example.com", "nullmx.example.com", "fault.example.com",
        "[192.0.2.9]", "slow.example.com"};
    static const fz_plan_rules rules = {.policy = true};
    fz_result res[COUNT(inputs)] = {{0}};
    for (size_t i = 0; i < COUNT(inputs); i++)
        FZ_ASSERT(mxr_route(e, inputs[i], fz_on_route, &res[i]) == MXR_OK);
    fz_run(e);
    for (size_t i = 0; i < COUNT(inputs); i++) {
        fz_now_ms += 1000;
        fz_settle(e, &res[i], &rules, r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    uint8_t flags = fz_byte(&r);
    gen g = {.r = &r};
    gen_config(&g, flags & 4);
    if (show() && !g.oom)
        fprintf(stderr, "config: %s\n", g.buf);
    fz_alloc alloc = {0};
    mxr_options *o = g.oom ? NULL : make_options(g.buf, flags, &alloc);
    mxr_engine *e = NULL;
    fz_now_ms = 1000000;
    if (o) {
        mxr_status st = mxr_engine_new(o, &e);
        /* a configuration over budget or bad loading fields (domains,
         * name) stop the policy, with a message */
        FZ_ASSERT(st == MXR_OK || st == MXR_EPOLICY);
        FZ_ASSERT(st == MXR_OK || mxr_options_errmsg(o)[0] != '\0');
        mxr_options_free(o);
    }
    if (e) {
        route_all(e, &r);
        mxr_engine_destroy(e);
    }
    FZ_ASSERT(alloc.live == 0);
    free(g.buf);
    return 0;
}
