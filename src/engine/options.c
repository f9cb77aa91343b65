/* options.c -- engine options: one range-checked table of integers plus
 * the lists (servers, zones, own names) and the hooks. */
#include "engine/engine.h"
#include "base/addr.h"
#include "base/name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <errno.h>

typedef struct option_range {
    int64_t min, max, def;
} option_range;

/* The documented defaults and ranges (see mxroute.h). */
static const option_range ranges[MXR_OPT_COUNT_] = {
    [MXR_OPT_TIMEOUT_MS] = {10, 60000, 2000},
    [MXR_OPT_TRIES] = {1, 10, 2},
    [MXR_OPT_FAMILY] = {0, 4, MXR_FAMILY_ANY},
    [MXR_OPT_SEED] = {-1, INT64_MAX, -1},
    [MXR_OPT_ALLOW_LOOPBACK] = {0, 1, 0},
    [MXR_OPT_DENY_PRIVATE] = {0, 1, 0},
    [MXR_OPT_PORT] = {1, 65535, 25},
    [MXR_OPT_MAX_HOSTS] = {1, 1000, 16},
    [MXR_OPT_MAX_ADDRS_PER_HOST] = {1, 100, 8},
    [MXR_OPT_MAX_ADDRS_TOTAL] = {1, 10000, 32},
    [MXR_OPT_MAX_MX_RECORDS] = {1, 10000, 64},
    [MXR_OPT_CACHE_MAX_BYTES] = {0, INT64_MAX, 64 << 20},
    [MXR_OPT_TTL_MIN] = {0, 86400, 5},
    [MXR_OPT_TTL_MAX] = {1, 7 * 86400, 86400},
    [MXR_OPT_NEG_TTL_MAX] = {0, 86400, 3600},
    [MXR_OPT_TEMPFAIL_TTL] = {0, 3600, 5},
    [MXR_OPT_MAX_INFLIGHT] = {1, 100000, 100},
    [MXR_OPT_MAX_PENDING] = {1, 100000000, 1000000},
    [MXR_OPT_HEALTH_MAX_BYTES] = {0, INT64_MAX, 4 << 20},
    [MXR_OPT_POLICY_MAX_INSTRUCTIONS] = {1000, 1000000000, 1000000},
    [MXR_OPT_POLICY_MAX_MS] = {1, 60000, 100},
    [MXR_OPT_POLICY_MAX_MEMORY] = {64 << 10, INT64_MAX, 32 << 20},
    [MXR_OPT_POLICY_ON_ERROR] = {0, 1, 0},
    [MXR_OPT_SMTP_CONNECT_MS] = {1, 3600000, 30000},
    [MXR_OPT_SMTP_GREETING_MS] = {1, 3600000, 300000},
    [MXR_OPT_SMTP_COMMAND_MS] = {1, 3600000, 300000},
    [MXR_OPT_SMTP_TLS_MS] = {1, 3600000, 60000},
    [MXR_OPT_SMTP_DATA_MS] = {1, 3600000, 120000},
    [MXR_OPT_SMTP_BLOCK_MS] = {1, 3600000, 180000},
    [MXR_OPT_SMTP_DOT_MS] = {1, 3600000, 600000},
    [MXR_OPT_SMTP_TLS] = {0, 3, MXR_TLS_OPPORTUNISTIC},
    [MXR_OPT_SMTP_MAX_REPLY] = {512, 16 << 20, 65536},
};

mxr_status mxr_options_new(mxr_options **out)
{
    if (!out)
        return MXR_EINVAL;
    mxr_options *o = calloc(1, sizeof *o);
    if (!o)
        return MXR_ENOMEM;
    for (int i = 0; i < MXR_OPT_COUNT_; i++)
        o->v[i] = ranges[i].def;
    mxr_rules *defaults;
    if (mxr_rules_new(&defaults) != MXR_OK) {
        free(o);
        return MXR_ENOMEM;
    }
    o->default_rules = *defaults;
    mxr_rules_free(defaults);
    *out = o;
    return MXR_OK;
}

static void free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

void mxr_options_free(mxr_options *o)
{
    if (!o)
        return;
    free_strings(o->servers, o->nservers);
    free_strings(o->local_names, o->nlocal_names);
    for (size_t i = 0; i < o->nzones; i++) {
        free((char *)o->zones[i].name);
        free((char *)o->zones[i].text);
    }
    free(o->zones);
    for (size_t i = 0; i < o->nrules; i++)
        free(o->rules[i].domain);
    free(o->rules);
    for (size_t i = 0; i < o->npolicies; i++) {
        free(o->policies[i].name);
        free(o->policies[i].source);
        free(o->policies[i].config);
    }
    free(o->policies);
    free(o->helo);
    free(o->tls_ca);
    free(o);
}

/* Names for messages, in mxr_option order. */
static const char *const option_names[MXR_OPT_COUNT_] = {
    "timeout", "tries", "family", "seed", "allow-loopback", "deny-private",
    "port", "max-hosts", "max-addrs-per-host", "max-addrs-total",
    "max-mx-records", "cache-max-bytes", "ttl-min", "ttl-max", "neg-ttl-max",
    "tempfail-ttl", "max-inflight", "max-pending", "health-max-bytes",
    "policy-max-instructions", "policy-max-ms", "policy-max-memory",
    "policy-on-error", "smtp-connect-ms", "smtp-greeting-ms",
    "smtp-command-ms", "smtp-tls-ms", "smtp-data-ms", "smtp-block-ms",
    "smtp-dot-ms", "smtp-tls", "smtp-max-reply",
};

mxr_status mxr_options_set(mxr_options *o, mxr_option opt, int64_t value)
{
    if (!o || (unsigned)opt >= MXR_OPT_COUNT_)
        return MXR_EINVAL;
    if (value < ranges[opt].min || value > ranges[opt].max) {
        snprintf(o->err, sizeof o->err, "%s: %lld is outside %lld..%lld",
                 option_names[opt], (long long)value,
                 (long long)ranges[opt].min, (long long)ranges[opt].max);
        return MXR_EINVAL;
    }
    o->v[opt] = value;
    return MXR_OK;
}

int64_t mxr_options_get(const mxr_options *o, mxr_option opt)
{
    if (!o || (unsigned)opt >= MXR_OPT_COUNT_)
        return -1;
    return o->v[opt];
}

static mxr_status push_string(char ***list, size_t *n, const char *s)
{
    char **grown = realloc(*list, (*n + 1) * sizeof **list);
    if (!grown)
        return MXR_ENOMEM;
    *list = grown;
    if (!(grown[*n] = strdup(s)))
        return MXR_ENOMEM;
    (*n)++;
    return MXR_OK;
}

/* Accepts "IP", "IP:PORT", "[IPv6]:PORT" and a bare IPv6 address; stores
 * the form c-ares's server list wants. */
static bool server_canonical(const char *in, char *out, size_t len)
{
    mxr_addr ad;
    char host[64];
    unsigned port = 53;
    const char *colon = strrchr(in, ':');
    if (mxr__addr_parse(in, &ad))
        return snprintf(out, len, ad.family == AF_INET ? "%s:53" : "[%s]:53",
                        in) < (int)len;
    if (in[0] == '[') {
        const char *end = strchr(in, ']');
        if (!end || (size_t)(end - in - 1) >= sizeof host)
            return false;
        memcpy(host, in + 1, (size_t)(end - in - 1));
        host[end - in - 1] = '\0';
        colon = end[1] == ':' ? end + 1 : (end[1] ? NULL : end);
    } else {
        if (!colon || (size_t)(colon - in) >= sizeof host)
            return false;
        memcpy(host, in, (size_t)(colon - in));
        host[colon - in] = '\0';
    }
    if (!colon || !mxr__addr_parse(host, &ad))
        return false;
    if (*colon == ':') {
        char *end;
        if (colon[1] < '0' || colon[1] > '9') /* strtoul takes " +53" */
            return false;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (*end || p == 0 || p > 65535)
            return false;
        port = (unsigned)p;
    }
    return snprintf(out, len, ad.family == AF_INET ? "%s:%u" : "[%s]:%u", host,
                    port) < (int)len;
}

mxr_status mxr_options_add_server(mxr_options *o, const char *server)
{
    char canon[96], q[MXR__QUOTE_BUF];
    if (!o || !server)
        return MXR_EINVAL;
    if (!server_canonical(server, canon, sizeof canon)) {
        snprintf(o->err, sizeof o->err,
                 "DNS server '%s' is not IP, IP:PORT or [IPv6]:PORT",
                 mxr__quote(server, strlen(server), q));
        return MXR_ESERVER;
    }
    return push_string(&o->servers, &o->nservers, canon);
}

static mxr_status push_zone(mxr_options *o, const char *name, const char *text)
{
    mxr__zone_source *grown =
        realloc(o->zones, (o->nzones + 1) * sizeof *o->zones);
    if (!grown)
        return MXR_ENOMEM;
    o->zones = grown;
    char *n = strdup(name);
    char *t = text ? strdup(text) : NULL;
    if (!n || (text && !t)) {
        free(n);
        free(t);
        return MXR_ENOMEM;
    }
    o->zones[o->nzones++] = (mxr__zone_source){.name = n, .text = t};
    return MXR_OK;
}

mxr_status mxr_options_add_zone_file(mxr_options *o, const char *path)
{
    if (!o || !path)
        return MXR_EINVAL;
    return push_zone(o, path, NULL);
}

mxr_status mxr_options_add_zone_text(mxr_options *o, const char *name,
                                     const char *text)
{
    if (!o || !text)
        return MXR_EINVAL;
    return push_zone(o, name ? name : "<zone text>", text);
}

mxr_status mxr_options_add_local_name(mxr_options *o, const char *name)
{
    char norm[MXR__NAME_MAX + 1];
    mxr_addr ad;
    if (!o || !name)
        return MXR_EINVAL;
    if (mxr__addr_parse(name, &ad))
        return push_string(&o->local_names, &o->nlocal_names, name);
    if (mxr__hostname_normalize(name, strlen(name), norm, o->err,
                                sizeof o->err) != MXR_OK)
        return MXR_EBADNAME;
    return push_string(&o->local_names, &o->nlocal_names, norm);
}

mxr_status mxr_options_add_rules(mxr_options *o, const char *domain,
                                 const mxr_rules *rules)
{
    char norm[MXR__NAME_MAX + 2];
    if (!o || !rules)
        return MXR_EINVAL;
    if (!domain) {
        o->default_rules = *rules;
        return MXR_OK;
    }
    bool sub = domain[0] == '.';
    norm[0] = '.';
    if (mxr__hostname_normalize(domain + sub, strlen(domain + sub),
                                norm + 1, o->err, sizeof o->err) != MXR_OK)
        return MXR_EBADNAME;
    for (size_t i = 0; i < o->nrules; i++) { /* the later rules win */
        if (strcmp(o->rules[i].domain, sub ? norm : norm + 1) == 0) {
            o->rules[i].rules = *rules;
            return MXR_OK;
        }
    }
    mxr__domain_rules *grown =
        realloc(o->rules, (o->nrules + 1) * sizeof *o->rules);
    if (!grown)
        return MXR_ENOMEM;
    o->rules = grown;
    if (!(grown[o->nrules].domain = strdup(sub ? norm : norm + 1)))
        return MXR_ENOMEM;
    grown[o->nrules++].rules = *rules;
    return MXR_OK;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    *oom |= s && !d;
    return d;
}

mxr_status mxr_options_add_policy_text(mxr_options *o, const char *name,
                                       const char *source, const char *config)
{
    if (!o || (!name && !source))
        return MXR_EINVAL;
    mxr__policy_src *grown =
        realloc(o->policies, (o->npolicies + 1) * sizeof *o->policies);
    if (!grown)
        return MXR_ENOMEM;
    o->policies = grown;
    bool oom = false;
    mxr__policy_src *p = &grown[o->npolicies];
    p->name = dup_or_null(name ? name : "policy", &oom);
    p->source = dup_or_null(source, &oom);
    p->config = dup_or_null(config, &oom);
    if (oom) {
        free(p->name);
        free(p->source);
        free(p->config);
        return MXR_ENOMEM;
    }
    o->npolicies++;
    return MXR_OK;
}

mxr_status mxr_options_add_policy(mxr_options *o, const char *path,
                                  const char *config)
{
    if (!path)
        return MXR_EINVAL;
    return mxr_options_add_policy_text(o, path, NULL, config);
}

mxr_status mxr_options_set_policy_config(mxr_options *o, const char *config)
{
    if (!o || o->npolicies == 0 || !config)
        return MXR_EINVAL;
    char *c = strdup(config);
    if (!c)
        return MXR_ENOMEM;
    free(o->policies[o->npolicies - 1].config);
    o->policies[o->npolicies - 1].config = c;
    return MXR_OK;
}

void mxr_options_set_log(mxr_options *o, mxr_log_fn fn, void *ud)
{
    if (o) {
        o->log = fn;
        o->log_ud = ud;
    }
}

void mxr_options_set_allocator(mxr_options *o, mxr_alloc_fn fn, void *ud)
{
    if (o) {
        o->alloc = fn;
        o->alloc_ud = ud;
    }
}

void mxr_options_set_clock(mxr_options *o, mxr_clock_fn fn, void *ud)
{
    if (o) {
        o->clock = fn;
        o->clock_ud = ud;
    }
}

void mxr_options_set_sock_callback(mxr_options *o, mxr_sock_fn fn, void *ud)
{
    if (o) {
        o->sock = fn;
        o->sock_ud = ud;
    }
}

const char *mxr_options_errmsg(const mxr_options *o)
{
    return o ? o->err : "no options";
}

/* An EHLO argument (RFC 5321 4.1.1.1): a domain or an address literal.
 * Printable ASCII without spaces: it goes into a command line. */
static bool helo_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] <= 0x20 || name[i] >= 0x7f)
            return false;
    return true;
}

static mxr_status replace_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return MXR_ENOMEM;
    free(*slot);
    *slot = copy;
    return MXR_OK;
}

mxr_status mxr_options_set_helo(mxr_options *o, const char *name)
{
    if (!o || !name)
        return MXR_EINVAL;
    if (!helo_ok(name)) {
        snprintf(o->err, sizeof o->err,
                 "EHLO name must be 1 to 255 printable characters without "
                 "spaces");
        return MXR_EINVAL;
    }
    return replace_string(&o->helo, name);
}

mxr_status mxr_options_set_tls_ca(mxr_options *o, const char *path)
{
    if (!o || !path)
        return MXR_EINVAL;
    if (access(path, R_OK) != 0) {
        snprintf(o->err, sizeof o->err, "%s: %s", path, strerror(errno));
        return MXR_EINVAL;
    }
    return replace_string(&o->tls_ca, path);
}
