/* simulate_spec.c -- the scripted outcomes of `mxroute simulate`:
 *
 *   [@T/]TARGET[:STAGE[:RCPT]]=RESULT
 *
 * TARGET is a host name, an IP address ([IPv6] in brackets when a stage
 * follows) or "*"; STAGE one of connect..dot; RCPT a recipient address or
 * 1-based index (stage rcpt only); RESULT refused, timeout, unreachable,
 * reset, ok, or CODE[/ENHANCED[/TEXT]]. Every error names the spec. */
#include "simulate.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define ROUND_MAX_S (10LL * 365 * 86400) /* ten years of simulated time */

typedef struct parser {
    const char *spec; /* as given, for messages */
    char *err;
    size_t len;
} parser;

static bool fail(parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool fail(parser *p, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->len, "--outcome '%s': %s", p->spec, why);
    return false;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* "@T/" in front: the spec applies to the round at T seconds only. */
static bool parse_round(parser *p, char **cur, sim_spec *out)
{
    char *s = *cur;
    if (*s != '@')
        return true;
    char *slash = strchr(s, '/');
    if (!slash)
        return fail(p, "a round restriction is written @SECONDS/ in front");
    *slash = '\0';
    if (!all_digits(s + 1) || strlen(s + 1) > 12 ||
        strtoll(s + 1, NULL, 10) > ROUND_MAX_S)
        return fail(p, "'%s' is not a number of seconds", s + 1);
    out->has_round = true;
    out->round_ms = (uint64_t)strtoll(s + 1, NULL, 10) * 1000;
    *cur = slash + 1;
    return true;
}

static bool parse_ip(const char *s, mxr_addr *out)
{
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, s, out->bytes) == 1) {
        out->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, out->bytes) == 1) {
        out->family = AF_INET6;
        return true;
    }
    return false;
}

/* Host names compare like the plan spells them: lower case, no final
 * dot. Underscores are let through: the plan decides what is a host. */
static bool set_host(parser *p, char *s, sim_spec *out)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
    if (n == 0 || n > 253)
        return fail(p, "the target must be a host name, an IP address "
                       "or *");
    for (char *c = s; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
        if (!isalnum((unsigned char)*c) && !strchr(".-_", *c))
            return fail(p, "'%s' is not a host name, an IP address or *", s);
    }
    out->kind = SIM_TARGET_HOST;
    out->host = s;
    return true;
}

/* TARGET: "*", [IPv6] or [IPv4], a bare IPv4 address, or a host name. */
static bool parse_target(parser *p, char *s, sim_spec *out)
{
    size_t n = strlen(s);
    if (strcmp(s, "*") == 0) {
        out->kind = SIM_TARGET_ANY;
        return true;
    }
    if (s[0] == '[') {
        if (n < 2 || s[n - 1] != ']')
            return fail(p, "missing ']' after the address");
        s[n - 1] = '\0';
        if (!parse_ip(s + 1, &out->addr))
            return fail(p, "'%s' is not an IP address", s + 1);
        out->kind = SIM_TARGET_ADDR;
        return true;
    }
    if (parse_ip(s, &out->addr)) {
        out->kind = SIM_TARGET_ADDR;
        return true;
    }
    return set_host(p, s, out);
}

static bool parse_stage(parser *p, const char *s, sim_spec *out)
{
    int st = mxr_stage_parse(s);
    if (st < 0)
        return fail(p,
                    "unknown stage '%s' (connect, tls, greeting, ehlo, "
                    "mail, rcpt, data, dot; write an IPv6 target in "
                    "brackets)",
                    s);
    out->stage = (mxr_stage)st;
    return true;
}

/* RCPT: a 1-based index in --to order, or an address. */
static bool parse_rcpt(parser *p, const char *s, sim_spec *out)
{
    if (out->stage != MXR_STAGE_RCPT)
        return fail(p, "a recipient can only be named at stage rcpt");
    if (all_digits(s)) {
        long long i = strlen(s) <= 6 ? strtoll(s, NULL, 10) : 0;
        if (i < 1)
            return fail(p, "recipient index '%s' must be 1 or more", s);
        out->rcpt_index = (size_t)i;
        return true;
    }
    if (!strchr(s, '@'))
        return fail(p, "'%s' is neither a recipient address nor an index", s);
    out->rcpt_addr = s;
    return true;
}

/* 1 to 3 digits then `end`: one part of an enhanced code. */
static const char *digits_then(const char *s, char end)
{
    size_t n = 0;
    while (n < 3 && isdigit((unsigned char)s[n]))
        n++;
    return n > 0 && s[n] == end ? s + n + 1 : NULL;
}

/* ENHANCED: class.subject.detail (RFC 3463), its class the same as the
 * reply code's first digit, so that a script cannot say "250/5.1.1". */
static bool parse_enhanced(parser *p, const char *s, int code, sim_reply *r)
{
    const char *rest = NULL;
    if (isdigit((unsigned char)s[0]) && s[1] == '.' &&
        (rest = digits_then(s + 2, '.')))
        rest = digits_then(rest, '\0');
    if (!rest)
        return fail(p, "'%s' is not an enhanced status code such as 4.7.1", s);
    if (s[0] - '0' != code / 100)
        return fail(p, "enhanced code %s does not go with reply %d", s, code);
    snprintf(r->enhanced, sizeof r->enhanced, "%s", s);
    return true;
}

/* CODE[/ENHANCED[/TEXT]]: the text is everything after the second '/'. */
static bool parse_code(parser *p, char *s, sim_reply *r)
{
    if (!(isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
          isdigit((unsigned char)s[2]) && (s[3] == '\0' || s[3] == '/')))
        return fail(p,
                    "result '%s' is not refused, timeout, unreachable, "
                    "reset, ok or a reply code such as 451/4.7.1/text",
                    s);
    r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (r->code < 200 || r->code > 599)
        return fail(p, "reply code %d is not between 200 and 599", r->code);
    r->cls = mxr_class_of_code(r->code);
    if (s[3] == '\0')
        return true;
    char *enh = s + 4, *text = strchr(enh, '/');
    if (text)
        *text++ = '\0';
    if (*enh && !parse_enhanced(p, enh, r->code, r))
        return false;
    r->text = text && *text ? text : NULL;
    return true;
}

static const char *const words[] = {"ok", "refused", "timeout", "unreachable",
                                    "reset"};
static const mxr_class word_class[] = {MXR_CLASS_OK, MXR_CLASS_REFUSED,
                                       MXR_CLASS_TIMEOUT, MXR_CLASS_UNREACHABLE,
                                       MXR_CLASS_RESET};

/* A result word, or a code. Codes need a stage after connect: there is no
 * reply before the greeting, and a stage-less code is most likely a typo
 * for "mail" or "rcpt" that would otherwise silently mean something. */
static bool parse_result(parser *p, char *s, bool stage_given, sim_spec *out)
{
    sim_reply *r = &out->reply;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strcmp(s, words[i]) == 0) {
            r->cls = word_class[i];
            return true;
        }
    if (!parse_code(p, s, r))
        return false;
    if (!stage_given)
        return fail(p,
                    "a reply code needs a stage, as in "
                    "mx.example.com:mail=%s",
                    s);
    if (out->stage == MXR_STAGE_CONNECT)
        return fail(p, "connect takes refused, timeout, unreachable, reset "
                       "or ok; replies start at greeting");
    return true;
}

/* LHS = TARGET[:STAGE[:RCPT]], split at the ':' outside brackets; RCPT
 * is the rest (an address may hold colons). */
static bool parse_lhs(parser *p, char *lhs, sim_spec *out, bool *stage_given)
{
    char *close = lhs[0] == '[' ? strchr(lhs, ']') : NULL;
    char *colon = strchr(close ? close : lhs, ':');
    out->stage = MXR_STAGE_CONNECT;
    *stage_given = colon != NULL;
    if (colon)
        *colon = '\0';
    if (!parse_target(p, lhs, out))
        return false;
    if (!colon)
        return true;
    char *stage = colon + 1, *rcpt = strchr(stage, ':');
    if (rcpt)
        *rcpt++ = '\0';
    if (!parse_stage(p, stage, out))
        return false;
    return !rcpt || parse_rcpt(p, rcpt, out);
}

bool sim_spec_parse(const char *spec, sim_spec *out, char *err, size_t len)
{
    parser p = {spec, err, len};
    memset(out, 0, sizeof *out);
    out->source = spec;
    if (!(out->buf = strdup(spec)))
        return fail(&p, "out of memory");
    char *cur = out->buf;
    if (!parse_round(&p, &cur, out))
        return false;
    char *close = cur[0] == '[' ? strchr(cur, ']') : NULL;
    char *eq = strchr(close ? close : cur, '=');
    if (!eq || eq == cur)
        return fail(&p, "expected TARGET[:STAGE[:RCPT]]=RESULT");
    *eq = '\0';
    bool stage_given;
    return parse_lhs(&p, cur, out, &stage_given) &&
           parse_result(&p, eq + 1, stage_given, out);
}

void sim_spec_free(sim_spec *spec)
{
    free(spec->buf);
    spec->buf = NULL;
}

/* ------------------------------------------------------------- matching */

static bool addr_equal(const mxr_addr *a, const mxr_addr *b)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    return a->family == b->family && memcmp(a->bytes, b->bytes, n) == 0;
}

static bool target_matches(const sim_spec *s, const mxr_hop *hop)
{
    switch (s->kind) {
    case SIM_TARGET_ANY:
        return true;
    case SIM_TARGET_HOST:
        return strcasecmp(s->host, hop->host) == 0;
    case SIM_TARGET_ADDR:
        return addr_equal(&s->addr, &hop->addr);
    }
    return false;
}

static bool rcpt_matches(const sim_spec *s, const sim_where *w)
{
    if (s->rcpt_index)
        return s->rcpt_index == w->rcpt_index;
    if (s->rcpt_addr)
        return w->rcpt && strcasecmp(s->rcpt_addr, w->rcpt) == 0;
    return true;
}

/* How specific a matching spec is: a named target counts most. */
static int specificity(const sim_spec *s)
{
    return (s->kind != SIM_TARGET_ANY) * 4 +
           (s->rcpt_index || s->rcpt_addr) * 2 + s->has_round;
}

const sim_spec *sim_spec_match(const sim_spec *specs, size_t n,
                               const sim_where *w)
{
    const sim_spec *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const sim_spec *s = &specs[i];
        if (s->stage != w->stage ||
            (s->has_round && s->round_ms != w->round_ms) ||
            !target_matches(s, w->hop) || !rcpt_matches(s, w))
            continue;
        if (!best || specificity(s) > specificity(best))
            best = s;
    }
    return best;
}

/* What a willing server answers at each stage. */
static int success_code(mxr_stage stage)
{
    switch (stage) {
    case MXR_STAGE_CONNECT:
        return 0;
    case MXR_STAGE_TLS:
    case MXR_STAGE_GREETING:
        return 220;
    case MXR_STAGE_DATA:
        return 354;
    default:
        return 250;
    }
}

sim_reply sim_reply_for(const sim_spec *specs, size_t n, const sim_where *w)
{
    const sim_spec *s = sim_spec_match(specs, n, w);
    sim_reply r = {.cls = MXR_CLASS_OK};
    if (s)
        r = s->reply;
    if (r.cls == MXR_CLASS_OK && r.code == 0)
        r.code = success_code(w->stage);
    return r;
}
