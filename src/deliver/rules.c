/* rules.c -- the default decision table and per-domain rules.
 *
 * Every outcome is (stage, class). The table below is the whole default
 * policy; each cell says why. Exhaustion is not in the table: moving to a
 * next address or host when none remains defers (DESIGN.md section 4,
 * "every candidate used up without delivery: defer with the last error"). */
#include "deliver/rules.h"
#include "base/text.h"

#include <stdlib.h>
#include <string.h>

#define CONT MXR_ACTION_CONTINUE
#define ADDR MXR_ACTION_NEXT_ADDRESS
#define HOST MXR_ACTION_NEXT_HOST
#define BNCE MXR_ACTION_BOUNCE
#define DONE MXR_ACTION_DELIVERED

/* Columns: OK, refused, timeout, unreachable, reset, 4xx, 5xx, 421. */
static const mxr_action default_table[MXR_STAGE_COUNT_][MXR_CLASS_COUNT_] = {
    /* Connection failures say nothing about the message: the next address
     * (another path to the same host) may work (RFC 5321 5.1: try each
     * address before giving up on a host). 421 anywhere is the server
     * closing the channel (RFC 5321 3.8): same as a broken connection. */
    [MXR_STAGE_CONNECT] = {CONT, ADDR, ADDR, ADDR, ADDR, ADDR, ADDR, ADDR},
    /* A STARTTLS that fails is this host's TLS setup, shared by all its
     * addresses (operational: one certificate per name): next host. */
    [MXR_STAGE_TLS] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, HOST, ADDR},
    /* A greeting refusal (RFC 5321 3.1: 554 or 4xx instead of 220) is the
     * host's policy for this client: another host of the domain may take
     * the mail. */
    [MXR_STAGE_GREETING] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, HOST, ADDR},
    /* EHLO 4xx/5xx (after any HELO fallback, which is the client's own
     * business): the host will not talk to us now; try the next host. */
    [MXR_STAGE_EHLO] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, HOST, ADDR},
    /* MAIL 4xx: transient at this host (overload, greylisting): the most
     * deployed senders move on while a host remains, then defer. MAIL 5xx:
     * the sender is refused; other MX hosts of one domain share its
     * policy (RFC 5321 4.2.1: 5yz means do not repeat): bounce. */
    [MXR_STAGE_MAIL] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, BNCE, ADDR},
    /* RCPT: decided per recipient. 4xx leaves the recipient for the next
     * host; 5xx bounces that recipient only (RFC 5321 3.3), others go on. */
    [MXR_STAGE_RCPT] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, BNCE, ADDR},
    /* DATA 4xx/5xx: as MAIL, for the recipients accepted in the session. */
    [MXR_STAGE_DATA] = {CONT, ADDR, ADDR, ADDR, ADDR, HOST, BNCE, ADDR},
    /* End-of-data: 2xx delivers the accepted recipients (RFC 5321 4.1.1.4);
     * 4xx/5xx as DATA. A timeout here may duplicate the message at the
     * next address: the RFC 1047 risk, accepted by every MTA over loss. */
    [MXR_STAGE_DOT] = {DONE, ADDR, ADDR, ADDR, ADDR, HOST, BNCE, ADDR},
};

typedef struct rule_range {
    int64_t min, max, def;
} rule_range;

/* Defaults close to Postfix and Exim practice (documented in mxroute.h). */
static const rule_range rule_ranges[MXR_RULE_COUNT_] = {
    [MXR_RULE_MAX_ADDRESSES] = {1, 1000, 10},
    [MXR_RULE_MAX_SESSIONS] = {1, 1000, 5},
    [MXR_RULE_RETRY_MIN_S] = {1, 86400, 300},
    [MXR_RULE_RETRY_MAX_S] = {1, 7 * 86400, 14400},
    [MXR_RULE_RETRY_FACTOR_PCT] = {100, 1000, 200},
    [MXR_RULE_RETRY_JITTER_PCT] = {0, 50, 10},
    [MXR_RULE_MAX_AGE_S] = {0, 30 * 86400, 5 * 86400},
    [MXR_RULE_HEALTH_BASE_S] = {1, 86400, 60},
    [MXR_RULE_HEALTH_MAX_S] = {1, 7 * 86400, 3600},
};

static void rules_defaults(mxr_rules *r)
{
    memcpy(r->table, default_table, sizeof r->table);
    for (int i = 0; i < MXR_RULE_COUNT_; i++)
        r->v[i] = rule_ranges[i].def;
}

mxr_status mxr_rules_new(mxr_rules **out)
{
    if (!out)
        return MXR_EINVAL;
    if (!(*out = malloc(sizeof **out)))
        return MXR_ENOMEM;
    rules_defaults(*out);
    return MXR_OK;
}

void mxr_rules_free(mxr_rules *r)
{
    free(r);
}

mxr_status mxr_rules_copy(const mxr_rules *from, mxr_rules **out)
{
    if (!from || !out)
        return MXR_EINVAL;
    if (!(*out = malloc(sizeof **out)))
        return MXR_ENOMEM;
    **out = *from;
    return MXR_OK;
}

mxr_status mxr_rules_set_action(mxr_rules *r, mxr_stage stage, mxr_class cls,
                                mxr_action action)
{
    if (!r || (unsigned)stage >= MXR_STAGE_COUNT_ ||
        (unsigned)cls >= MXR_CLASS_COUNT_ ||
        (unsigned)action >= MXR_ACTION_COUNT_)
        return MXR_EINVAL;
    r->table[stage][cls] = action;
    return MXR_OK;
}

mxr_action mxr_rules_action(const mxr_rules *r, mxr_stage stage, mxr_class cls)
{
    if ((unsigned)stage >= MXR_STAGE_COUNT_ ||
        (unsigned)cls >= MXR_CLASS_COUNT_)
        return MXR_ACTION_NEXT_HOST;
    return r ? r->table[stage][cls] : default_table[stage][cls];
}

mxr_status mxr_rules_set(mxr_rules *r, mxr_rule rule, int64_t value)
{
    if (!r || (unsigned)rule >= MXR_RULE_COUNT_ ||
        value < rule_ranges[rule].min || value > rule_ranges[rule].max)
        return MXR_EINVAL;
    r->v[rule] = value;
    return MXR_OK;
}

int64_t mxr_rules_get(const mxr_rules *r, mxr_rule rule)
{
    if ((unsigned)rule >= MXR_RULE_COUNT_)
        return -1;
    return r ? r->v[rule] : rule_ranges[rule].def;
}

void mxr_rules_stay_on_4xx(mxr_rules *r)
{
    static const mxr_stage stages[] = {MXR_STAGE_MAIL, MXR_STAGE_RCPT,
                                       MXR_STAGE_DATA, MXR_STAGE_DOT};
    for (size_t i = 0; r && i < sizeof stages / sizeof *stages; i++)
        r->table[stages[i]][MXR_CLASS_4XX] = MXR_ACTION_DEFER;
}

bool mxr_class_is_connection(mxr_class cls)
{
    return mxr__class_is_connection(cls);
}

bool mxr__class_is_connection(mxr_class cls)
{
    return cls == MXR_CLASS_REFUSED || cls == MXR_CLASS_TIMEOUT ||
           cls == MXR_CLASS_UNREACHABLE || cls == MXR_CLASS_RESET ||
           cls == MXR_CLASS_421;
}

/* ".example.com" matches the subdomains of example.com, not itself. */
static size_t suffix_match(const char *pattern, const char *domain)
{
    size_t p = strlen(pattern), d = strlen(domain);
    if (pattern[0] != '.' || d <= p)
        return 0;
    return strcmp(domain + d - p, pattern) == 0 ? p : 0;
}

const mxr_rules *mxr__rules_for(const mxr__domain_rules *list, size_t n,
                                const mxr_rules *defaults, const char *domain)
{
    const mxr_rules *best = defaults;
    size_t best_len = 0;
    for (size_t i = 0; domain && i < n; i++) {
        if (strcmp(list[i].domain, domain) == 0)
            return &list[i].rules;
        size_t len = suffix_match(list[i].domain, domain);
        if (len > best_len) {
            best = &list[i].rules;
            best_len = len;
        }
    }
    return best;
}

/* ------------------------------------------------------------- words */

static const char *const stage_words[MXR_STAGE_COUNT_] = {
    "connect", "tls", "greeting", "ehlo", "mail", "rcpt", "data", "dot"};
static const char *const class_words[MXR_CLASS_COUNT_] = {
    "ok", "refused", "timeout", "unreachable", "reset", "4xx", "5xx", "421"};
static const char *const action_words[MXR_ACTION_COUNT_] = {
    "continue", "next-address", "next-host", "defer", "bounce", "delivered"};

const char *mxr_stage_name(mxr_stage s)
{
    return (unsigned)s < MXR_STAGE_COUNT_ ? stage_words[s] : "unknown";
}

const char *mxr_class_name(mxr_class c)
{
    return (unsigned)c < MXR_CLASS_COUNT_ ? class_words[c] : "unknown";
}

const char *mxr_action_name(mxr_action a)
{
    return (unsigned)a < MXR_ACTION_COUNT_ ? action_words[a] : "unknown";
}

int mxr_stage_parse(const char *w)
{
    return mxr__word_index(stage_words, MXR_STAGE_COUNT_, w);
}

int mxr_class_parse(const char *w)
{
    return mxr__word_index(class_words, MXR_CLASS_COUNT_, w);
}

int mxr_action_parse(const char *w)
{
    return mxr__word_index(action_words, MXR_ACTION_COUNT_, w);
}

/* A code outside 200..599 is a protocol violation: temporary, so that a
 * broken server can never make us drop or bounce mail. */
mxr_class mxr_class_of_code(int code)
{
    if (code == 421)
        return MXR_CLASS_421;
    if (code >= 200 && code < 400)
        return MXR_CLASS_OK;
    if (code >= 500 && code < 600)
        return MXR_CLASS_5XX;
    return MXR_CLASS_4XX;
}
