/* check_findings.c -- the rules of `mxroute check`: each reads the routing
 * plan (result, reason, candidates, skipped hosts, ttl) and adds findings
 * to the report (check_report.c) with a severity, a stable code, the
 * records involved and a fix. Skipped MX targets go by a table: one row a
 * reason. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ------------------------------------------------------------ helpers */

/* "example.com. MX 10 mx.example.com." */
static char *mx_rr(const mxr_plan *p, unsigned pref, const char *host)
{
    return chk_fmt("%s. MX %u %s.", p->domain, pref, chk_target(host));
}

static char *addr_rr(const mxr_candidate *c, const mxr_addr *a)
{
    char buf[MXR_ADDR_STRLEN];
    mxr_addr_format(a, buf, sizeof buf);
    return chk_fmt("%s. %s %s", c->host, a->family == AF_INET6 ? "AAAA" : "A",
                   buf);
}

static bool is_mx_skip(const mxr_skipped *s)
{
    return s->reason != MXR_REASON_NULL_MX_ENTRY;
}

/* ---------------------------------------------------- plan-level rules */

static void rule_result(chk_report *r)
{
    const mxr_plan *p = r->plan;
    if (p->implicit) {
        char *msg = chk_fmt("%s has no MX record: senders fall back to its "
                            "address (implicit MX)",
                            p->domain);
        chk_add1(r, CHK_WARNING, "MX-NONE-IMPLICIT",
                 chk_fmt("%s. MX (none); %s. A/AAAA", p->domain, p->domain),
                 "publish an MX record naming the mail host, or a null MX "
                 "(MX 0 .) if the domain takes no mail",
                 msg);
        free(msg);
    }
    if (p->result == MXR_RESULT_OK)
        return;
    char *msg = NULL;
    switch (p->reason) {
    case MXR_REASON_NULL_MX:
        msg = chk_fmt("%s publishes a null MX (RFC 7505): it takes no mail, "
                      "senders bounce at once",
                      p->domain);
        chk_add1(r, CHK_INFO, "NULL-MX", chk_fmt("%s. MX 0 .", p->domain),
                 "nothing to fix if the domain sends no mail replies; replace "
                 "the null MX with real MX records to receive mail",
                 msg);
        break;
    case MXR_REASON_NXDOMAIN:
        msg = chk_fmt("%s does not exist (NXDOMAIN): mail to it bounces",
                      p->domain);
        chk_add1(r, CHK_ERROR, "NXDOMAIN", chk_fmt("%s. (NXDOMAIN)", p->domain),
                 "create the domain in DNS with MX records, or check the "
                 "spelling",
                 msg);
        break;
    case MXR_REASON_NO_MAIL_HOST:
        msg = chk_fmt("%s has no MX record and no address: there is no mail "
                      "host",
                      p->domain);
        chk_add1(r, CHK_ERROR, "MX-NONE", chk_fmt("%s. MX (none)", p->domain),
                 "publish MX records for the domain, or a null MX (MX 0 .) to "
                 "say it takes no mail",
                 msg);
        break;
    case MXR_REASON_NO_USABLE_HOST:
        msg = chk_fmt("every mail host of %s is unusable: mail bounces",
                      p->domain);
        chk_add1(r, CHK_ERROR, "NO-USABLE-HOST", NULL,
                 "fix the MX targets listed in the other findings", msg);
        break;
    case MXR_REASON_LOOPS_TO_SELF:
        msg = chk_fmt("we are the most preferred MX of %s (mail loops back)",
                      p->domain);
        chk_add1(r, CHK_ERROR, "LOOPS-TO-SELF", NULL,
                 "deliver locally, or remove our name from --local-name", msg);
        break;
    default:
        if (p->result == MXR_RESULT_TEMPFAIL) {
            msg = chk_fmt("the lookup of %s failed temporarily (%s): senders "
                          "queue and retry",
                          p->domain, mxr_reason_name(p->reason));
            chk_add1(
                r, CHK_ERROR, "LOOKUP-TEMPFAIL",
                chk_fmt("%s. MX (%s)", p->domain, mxr_reason_name(p->reason)),
                "make the domain's name servers answer (check delegation "
                "and the servers' health)",
                msg);
        } else {
            msg = chk_fmt("mail to %s fails permanently (%s)", p->domain,
                          mxr_reason_name(p->reason));
            chk_add1(r, CHK_ERROR, "PERMFAIL", NULL,
                     "fix the domain's MX records", msg);
        }
    }
    free(msg);
}

/* ------------------------------------------------------- skipped hosts */

/* What a finding's message is made of, besides its format. */
typedef enum skip_args {
    ARGS_HOST,       /* "%s": the target */
    ARGS_PREF,       /* "%u": the preference */
    ARGS_HOST_PREF,  /* "%s ... %u" */
    ARGS_HOST_REASON /* "%s ... %s": the target, the reason word */
} skip_args;

/* One row per reason a sender skips an MX target for. */
typedef struct skip_rule {
    mxr_reason reason;
    chk_sev sev;
    const char *code;
    const char *fix;
    skip_args args;
    const char *msg;
} skip_rule;

static const skip_rule skip_rules[] = {
    {MXR_REASON_NULL_MX_ENTRY, CHK_ERROR, "NULL-MX-MIXED",
     "remove the '.' MX record if the domain takes mail, or every other MX "
     "record if it does not",
     ARGS_PREF,
     "null MX (MX %u .) mixed with other MX records: RFC 7505 forbids it, "
     "senders ignore the entry"},
    {MXR_REASON_IP_LITERAL, CHK_ERROR, "TARGET-IP-LITERAL",
     "point the MX at a host name that has an A/AAAA record", ARGS_HOST,
     "MX target %s is an IP address, not a host name: senders skip it"},
    {MXR_REASON_NO_ADDRESS, CHK_ERROR, "TARGET-NO-ADDRESS",
     "add an A or AAAA record for the target, or remove the MX record",
     ARGS_HOST, "MX target %s has no A/AAAA record: senders skip it"},
    {MXR_REASON_UNROUTABLE_ADDRESS, CHK_ERROR, "TARGET-UNROUTABLE",
     "give the target a public address", ARGS_HOST,
     "MX target %s resolves only to loopback or unroutable addresses: "
     "senders skip it"},
    {MXR_REASON_PRIVATE_ADDRESS, CHK_ERROR, "TARGET-PRIVATE",
     "publish the host's public address (split-horizon DNS keeps private "
     "ones inside)",
     ARGS_HOST,
     "MX target %s resolves only to private addresses: senders outside your "
     "network cannot reach it"},
    {MXR_REASON_DUPLICATE, CHK_WARNING, "DUPLICATE-TARGET",
     "keep one MX record per host", ARGS_HOST_PREF,
     "MX target %s is listed more than once (the MX %u record is ignored)"},
    {MXR_REASON_BAD_TARGET, CHK_ERROR, "TARGET-INVALID",
     "use a host name of letters, digits and hyphens", ARGS_HOST,
     "MX target %s is not a valid host name"},
};

/* A temporary failure of the target's lookup, whatever its kind. */
static const skip_rule skip_tempfail = {
    MXR_REASON_TEMPFAIL,
    CHK_WARNING,
    "LOOKUP-TEMPFAIL",
    "make the target's name servers answer",
    ARGS_HOST_REASON,
    "the address lookup of MX target %s failed temporarily (%s)"};

/* Any other reason: worth a line, not an alarm. */
static const skip_rule skip_other = {
    MXR_REASON_NONE,  CHK_INFO,
    "TARGET-SKIPPED", "nothing to fix unless this is unexpected",
    ARGS_HOST_REASON, "MX target %s is skipped (%s)"};

static bool is_temporary(mxr_reason r)
{
    return r == MXR_REASON_TEMPFAIL || r == MXR_REASON_SERVFAIL ||
           r == MXR_REASON_REFUSED || r == MXR_REASON_TIMEOUT ||
           r == MXR_REASON_NETWORK;
}

static const skip_rule *skip_rule_for(mxr_reason reason)
{
    for (size_t i = 0; i < sizeof skip_rules / sizeof *skip_rules; i++)
        if (skip_rules[i].reason == reason)
            return &skip_rules[i];
    return is_temporary(reason) ? &skip_tempfail : &skip_other;
}

/* The formats are the table's own, one per args kind. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *skip_message(const skip_rule *rule, const mxr_skipped *s)
{
    const char *h = chk_target(s->host);
    switch (rule->args) {
    case ARGS_PREF:
        return chk_fmt(rule->msg, s->preference);
    case ARGS_HOST_PREF:
        return chk_fmt(rule->msg, h, s->preference);
    case ARGS_HOST_REASON:
        return chk_fmt(rule->msg, h, mxr_reason_name(s->reason));
    default:
        return chk_fmt(rule->msg, h);
    }
}
#pragma GCC diagnostic pop

static void rule_skipped(chk_report *r)
{
    const mxr_plan *p = r->plan;
    size_t nlimit = 0;
    for (size_t i = 0; i < p->nskipped; i++) {
        const mxr_skipped *s = &p->skipped[i];
        if (s->reason == MXR_REASON_LIMIT) {
            nlimit++;
            continue;
        }
        const skip_rule *rule = skip_rule_for(s->reason);
        char *msg = skip_message(rule, s);
        chk_add1(r, rule->sev, rule->code, mx_rr(p, s->preference, s->host),
                 rule->fix, msg);
        free(msg);
    }
    if (nlimit)
        chk_add(r, CHK_INFO, "MX-LIMIT", NULL,
                "publish fewer MX records: senders try only the first few",
                "%zu MX records are beyond this sender's host limit and "
                "are never tried",
                nlimit);
}

/* ---------------------------------------------------------- candidates */

static void rule_candidates(chk_report *r)
{
    const mxr_plan *p = r->plan;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        char *rec = c->source == MXR_SOURCE_MX
                        ? mx_rr(p, c->preference, c->host)
                        : NULL;
        if (c->notes & MXR_NOTE_CNAME_TARGET) {
            char *msg = chk_fmt("MX target %s is an alias (CNAME): RFC 5321 "
                                "forbids it, some senders refuse it",
                                c->host);
            chk_add1(r, CHK_WARNING, "TARGET-CNAME", rec ? strdup(rec) : NULL,
                     "point the MX at the canonical name the CNAME leads to",
                     msg);
            free(msg);
        }
        if (c->notes & MXR_NOTE_FILTERED) {
            char *msg = chk_fmt("some addresses of %s are unusable (loopback, "
                                "link-local, ...) and are skipped",
                                c->host);
            chk_add1(r, CHK_WARNING, "TARGET-UNROUTABLE",
                     rec ? strdup(rec) : NULL,
                     "remove the unusable A/AAAA records of the host", msg);
            free(msg);
        }
        bool pub = false;
        size_t npriv = 0, nunr = 0;
        const char *recs[9] = {0};
        char *own[8] = {0};
        size_t nown = 0;
        for (size_t k = 0; k < c->naddrs; k++) {
            /* The library's own classes; loopback is unroutable here:
             * it only gets into a plan with --allow-loopback. */
            mxr_addr_class ac = mxr_addr_classify(&c->addrs[k]);
            pub = pub || ac == MXR_ADDR_GLOBAL;
            if (ac == MXR_ADDR_GLOBAL)
                continue;
            npriv += ac == MXR_ADDR_PRIVATE;
            nunr += ac != MXR_ADDR_PRIVATE;
            if (nown < 8) {
                own[nown] = addr_rr(c, &c->addrs[k]);
                recs[nown] = own[nown];
                nown++;
            }
        }
        if (nunr) /* only with --allow-loopback */
            chk_add(r, CHK_ERROR, "TARGET-UNROUTABLE", recs,
                    "give the host a public address",
                    "%s resolves to loopback or unroutable addresses", c->host);
        else if (npriv)
            chk_add(r, pub ? CHK_WARNING : CHK_ERROR, "TARGET-PRIVATE", recs,
                    "publish only public addresses for mail hosts "
                    "(split-horizon DNS keeps private ones inside)",
                    "%s resolves to private addresses%s", c->host,
                    pub ? " (it has public ones too)"
                        : ": senders outside your network cannot reach it");
        for (size_t k = 0; k < nown; k++)
            free(own[k]);
        free(rec);
    }
}

/* --------------------------------------------------------- the MX set */

static int cmp_u(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

static const char *parent(const char *host)
{
    const char *dot = strchr(host, '.');
    return dot ? dot + 1 : host;
}

static bool same_prefix(const mxr_addr *a, const mxr_addr *b)
{
    if (a->family != b->family)
        return true; /* compared per family */
    return memcmp(a->bytes, b->bytes, a->family == AF_INET6 ? 6 : 3) == 0;
}

static void rule_mxset(chk_report *r)
{
    const mxr_plan *p = r->plan;
    if (p->result != MXR_RESULT_OK || p->implicit)
        return;
    size_t nmx = 0;
    unsigned prefs[1024];
    size_t npref = 0;
    for (size_t i = 0; i < p->ncandidates; i++)
        if (p->candidates[i].source == MXR_SOURCE_MX) {
            nmx++;
            if (npref < 1024)
                prefs[npref++] = p->candidates[i].preference;
        }
    for (size_t i = 0; i < p->nskipped; i++)
        if (is_mx_skip(&p->skipped[i])) {
            nmx++;
            if (npref < 1024)
                prefs[npref++] = p->skipped[i].preference;
        }
    /* SINGLE-MX */
    if (nmx == 1 && p->ncandidates == 1 &&
        p->candidates[0].source == MXR_SOURCE_MX) {
        const mxr_candidate *c = &p->candidates[0];
        char *rec = mx_rr(p, c->preference, c->host);
        char *msg =
            c->naddrs > 1
                ? chk_fmt("a single MX (%s, %zu addresses): redundancy depends "
                          "on the host's addresses",
                          c->host, c->naddrs)
                : chk_fmt("a single MX with one address (%s): no redundancy, "
                          "senders queue while it is down",
                          c->host);
        chk_add1(r, c->naddrs > 1 ? CHK_INFO : CHK_WARNING, "SINGLE-MX", rec,
                 "add a second MX at a higher preference (e.g. MX 20) on "
                 "another network",
                 msg);
        free(msg);
    }
    /* SAME-NETWORK and SAME-SUFFIX (2 hosts or more) */
    size_t nmxc = 0;
    const mxr_addr *ref4 = NULL, *ref6 = NULL;
    bool samenet = true, samesuf = true;
    const char *suf = NULL;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        if (c->source != MXR_SOURCE_MX)
            continue;
        nmxc++;
        if (!suf)
            suf = parent(c->host);
        else if (strcasecmp(suf, parent(c->host)) != 0)
            samesuf = false;
        for (size_t k = 0; k < c->naddrs; k++) {
            const mxr_addr *a = &c->addrs[k];
            const mxr_addr **ref = a->family == AF_INET6 ? &ref6 : &ref4;
            if (!*ref)
                *ref = a;
            else if (!same_prefix(*ref, a))
                samenet = false;
        }
    }
    if (nmxc >= 2 && samenet && (ref4 || ref6)) {
        char b4[MXR_ADDR_STRLEN] = "", b6[MXR_ADDR_STRLEN] = "";
        if (ref4)
            mxr_addr_format(ref4, b4, sizeof b4);
        if (ref6)
            mxr_addr_format(ref6, b6, sizeof b6);
        chk_add(r, CHK_INFO, "SAME-NETWORK", NULL,
                "put a backup MX on another network (another provider or "
                "site)",
                "all %zu MX hosts are in one network (%s%s%s%s%s): one "
                "outage takes them all down",
                nmxc, ref4 ? "IPv4 /24 of " : "", b4, ref4 && ref6 ? ", " : "",
                ref6 ? "IPv6 /48 of " : "", b6);
    }
    if (nmxc >= 2 && samesuf && suf)
        chk_add(r, CHK_INFO, "SAME-SUFFIX", NULL,
                "consider a backup MX under another domain (its DNS fails "
                "independently)",
                "all %zu MX hosts are under %s: they share that zone's DNS",
                nmxc, suf);
    /* CLOSE-PREFERENCES */
    qsort(prefs, npref, sizeof *prefs, cmp_u);
    for (size_t i = 1; i < npref; i++)
        if (prefs[i] == prefs[i - 1] + 1) {
            chk_add(r, CHK_INFO, "CLOSE-PREFERENCES", NULL,
                    "space preferences out (10, 20, 30) to leave room for "
                    "new tiers",
                    "MX preferences %u and %u leave no room to insert a "
                    "tier between them",
                    prefs[i - 1], prefs[i]);
            break;
        }
}

/* ----------------------------------------------------------- resolvers */

/* "10 a.example, 20 b.example" (by preference, then name) or the result
 * word in parentheses; NULL when out of memory. Caller frees. */
static char *signature(const chk_resolver *v)
{
    if (v->status != MXR_OK)
        return chk_fmt("(%s)", mxr_strerror(v->status));
    const mxr_plan *p = v->plan;
    if (p->result != MXR_RESULT_OK && p->reason != MXR_REASON_NO_USABLE_HOST)
        return chk_fmt("(%s)", mxr_reason_name(p->reason));
    chk_mx *mx;
    size_t n = chk_mx_records(p, false, &mx), len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(mx[i].host) + 16; /* "65535 " and ", " */
    char *s = mx ? calloc(len, 1) : NULL;
    for (size_t i = 0, at = 0; s && i < n; i++)
        at += (size_t)snprintf(s + at, len - at, "%s%u %s", i ? ", " : "",
                               mx[i].pref, mx[i].host);
    free(mx);
    return s;
}

static void rule_resolvers(chk_report *r)
{
    if (r->nresolvers < 2)
        return;
    char **sig = calloc(r->nresolvers, sizeof *sig);
    const char **recs = calloc(r->nresolvers + 1, sizeof *recs);
    char **own = calloc(r->nresolvers, sizeof *own);
    if (!sig || !recs || !own)
        goto out;
    bool differ = false;
    for (size_t i = 0; i < r->nresolvers; i++) {
        sig[i] = signature(&r->resolvers[i]);
        own[i] =
            chk_fmt("%s: %s", r->resolvers[i].server, sig[i] ? sig[i] : "?");
        recs[i] = own[i];
        differ = differ || (sig[i] && sig[0] && strcmp(sig[i], sig[0]));
    }
    if (differ)
        chk_add(r, CHK_WARNING, "RESOLVERS-DISAGREE", recs,
                "wait for the TTL to expire after a change, or make every "
                "name server serve the same zone (check serials and "
                "transfers)",
                "the %zu resolvers give different MX answers for %s",
                r->nresolvers, r->plan->domain);
out:
    for (size_t i = 0; sig && own && i < r->nresolvers; i++) {
        free(sig[i]);
        free(own[i]);
    }
    free(sig);
    free(own);
    free(recs);
}

void chk_findings(chk_report *r)
{
    rule_result(r);
    rule_skipped(r);
    rule_candidates(r);
    rule_mxset(r);
    chk_rules_ttl(r);
    rule_resolvers(r);
    chk_sort(r);
}
