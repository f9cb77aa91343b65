/* check_ttl.c -- the TTL rules of `mxroute check`: how fast a change of
 * the MX records (TTL-LOW, TTL-HIGH), or of a mail host's addresses
 * (TARGET-TTL-LOW, TARGET-TTL-HIGH), reaches senders, and the migration
 * advice of --planning (PLANNING-TTL).
 *
 * They judge the TTLs as DNS served them (mxr_plan.mx_ttl and each
 * candidate's ttl), never the plan's reuse time: that is the smallest TTL
 * of every answer, clamped, and often the SOA minimum of a negative AAAA
 * answer that says nothing about the MX records. */
#include "check.h"

#include <stdlib.h>
#include <sys/socket.h>

/* Below TTL_LOW_WARN senders ask again for nearly every message; above
 * TTL_HIGH a change takes over a day to reach them. */
#define TTL_LOW_WARN 60
#define TTL_LOW 300
#define TTL_HIGH 86400
#define TTL_PLAN_MAX 600   /* what the seed articles advise before a move */
#define TTL_RECORDS_MAX 16 /* records listed in one finding */

/* A NULL-terminated list of owned record strings; past TTL_RECORDS_MAX
 * the rest are left out (40 MX records make no readable finding). */
typedef struct rec_list {
    char *s[TTL_RECORDS_MAX + 1];
    size_t n;
} rec_list;

static void recs_add(rec_list *l, char *rec)
{
    if (rec && l->n < TTL_RECORDS_MAX)
        l->s[l->n++] = rec;
    else
        free(rec);
}

static const char *const *recs_view(const rec_list *l)
{
    return (const char *const *)l->s;
}

static void recs_free(rec_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    l->n = 0;
}

/* mx_ttl is the TTL of MX records (a null MX included), not that of a
 * negative or failed answer: the domain publishes MX records. */
static bool has_mx_records(const mxr_plan *p)
{
    if (p->implicit)
        return false;
    if (p->reason == MXR_REASON_NULL_MX || p->nskipped > 0)
        return true;
    for (size_t i = 0; i < p->ncandidates; i++)
        if (p->candidates[i].source == MXR_SOURCE_MX)
            return true;
    return false;
}

/* "example.com. 30 MX 10 mx.example.com.", one per MX record. */
static void mx_records(const mxr_plan *p, rec_list *out)
{
    chk_mx *mx;
    size_t n = chk_mx_records(p, true, &mx);
    for (size_t i = 0; i < n; i++)
        recs_add(out, chk_fmt("%s. %u MX %u %s.", p->domain, p->mx_ttl,
                              mx[i].pref, chk_target(mx[i].host)));
    if (n == 0 && p->reason == MXR_REASON_NULL_MX)
        recs_add(out, chk_fmt("%s. %u MX 0 .", p->domain, p->mx_ttl));
    free(mx);
}

/* The hosts whose addresses come from the domain's DNS: MX targets, or
 * the domain itself for an implicit MX (not literals, not a policy's). */
static bool judged_host(const mxr_candidate *c)
{
    return (c->source == MXR_SOURCE_MX || c->source == MXR_SOURCE_IMPLICIT) &&
           c->naddrs > 0;
}

/* "mx.example.com. 30 A" (AAAA, or A/AAAA when it has both). */
static char *addr_record(const mxr_candidate *c)
{
    bool v4 = false, v6 = false;
    for (size_t k = 0; k < c->naddrs; k++) {
        v6 = v6 || c->addrs[k].family == AF_INET6;
        v4 = v4 || c->addrs[k].family != AF_INET6;
    }
    return chk_fmt("%s. %u %s", c->host, c->ttl,
                   v4 && v6 ? "A/AAAA"
                   : v6     ? "AAAA"
                            : "A");
}

/* ---------------------------------------------------------- the MX TTL */

static void rule_mx_ttl(chk_report *r)
{
    const mxr_plan *p = r->plan;
    unsigned ttl = p->mx_ttl;
    if (!has_mx_records(p) || (ttl >= TTL_LOW && ttl <= TTL_HIGH))
        return;
    rec_list recs = {0};
    mx_records(p, &recs);
    if (ttl < TTL_LOW)
        chk_add(r, ttl < TTL_LOW_WARN ? CHK_WARNING : CHK_INFO, "TTL-LOW",
                recs_view(&recs),
                r->planning ? "keep it low only around the migration, then "
                              "restore 3600-86400 s"
                            : "use 3600 s or more once the configuration is "
                              "stable",
                "the MX records have a very low TTL (%u s): every sender "
                "asks again that often",
                ttl);
    else
        chk_add(r, CHK_INFO, "TTL-HIGH", recs_view(&recs), "use 3600-86400 s",
                "the MX records have a very high TTL (%u s): a change "
                "takes over a day to reach every sender",
                ttl);
    recs_free(&recs);
}

/* ---------------------------------------------------- address TTLs */

/* A low address TTL is how DNS-based failover works (and what large
 * providers publish), so it is only information, and only when very low. */
static void rule_addr_ttl(chk_report *r)
{
    const mxr_plan *p = r->plan;
    rec_list low = {0}, high = {0};
    size_t nlow = 0, nhigh = 0;
    unsigned lowest = UINT32_MAX, highest = 0;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        if (!judged_host(c))
            continue;
        if (c->ttl < TTL_LOW_WARN) {
            nlow++;
            lowest = c->ttl < lowest ? c->ttl : lowest;
            recs_add(&low, addr_record(c));
        } else if (c->ttl > TTL_HIGH) {
            nhigh++;
            highest = c->ttl > highest ? c->ttl : highest;
            recs_add(&high, addr_record(c));
        }
    }
    if (nlow)
        chk_add(r, CHK_INFO, "TARGET-TTL-LOW", recs_view(&low),
                "fine for DNS-based failover; otherwise use 300 s or more",
                "%zu mail host%s ha%s addresses with a very low TTL (down "
                "to %u s): senders look them up again for nearly every "
                "message",
                nlow, nlow == 1 ? "" : "s", nlow == 1 ? "s" : "ve", lowest);
    if (nhigh)
        chk_add(r, CHK_INFO, "TARGET-TTL-HIGH", recs_view(&high),
                "use 3600-86400 s, and lower it a day or two before moving "
                "a host to a new address",
                "%zu mail host%s ha%s addresses with a very high TTL (up to "
                "%u s): moving a host to a new address takes over a day to "
                "reach every sender",
                nhigh, nhigh == 1 ? "" : "s", nhigh == 1 ? "s" : "ve", highest);
    recs_free(&low);
    recs_free(&high);
}

/* --------------------------------------------------------- --planning */

/* The longest address TTL of the hosts a migration may move; their
 * records go to recs when over TTL_PLAN_MAX. */
static unsigned addr_ttl_max(const mxr_plan *p, rec_list *recs)
{
    unsigned max = 0;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        if (!judged_host(c))
            continue;
        max = c->ttl > max ? c->ttl : max;
        if (c->ttl > TTL_PLAN_MAX)
            recs_add(recs, addr_record(c));
    }
    return max;
}

/* The seed articles' advice: lower the TTL 24-48 h before a change, so
 * that senders drop the old records quickly. Without MX records, moving
 * the mail host means changing the domain's own addresses. */
static char *planning_message(const mxr_plan *p, bool mx, unsigned addr_max)
{
    bool addr_high = addr_max > TTL_PLAN_MAX;
    if (!mx)
        return addr_high
                   ? chk_fmt("%s has no MX record: before moving its mail "
                             "host, lower the TTL of its A/AAAA records "
                             "from %u s to 300-600 s 24-48 hours ahead",
                             p->domain, addr_max)
                   : chk_fmt("%s has no MX record: the TTL of its A/AAAA "
                             "records (%u s) is already low enough for a "
                             "move of its mail host",
                             p->domain, addr_max);
    char *tail = addr_high ? chk_fmt("; the same for the A/AAAA records of "
                                     "the hosts that move (up to %u s)",
                                     addr_max)
                           : NULL;
    const char *t = tail ? tail : "";
    char *msg =
        p->mx_ttl > TTL_PLAN_MAX
            ? chk_fmt("before changing MX records, lower their TTL from %u "
                      "s to 300-600 s 24-48 hours ahead, so senders pick up "
                      "the change quickly%s",
                      p->mx_ttl, t)
            : chk_fmt("the MX TTL (%u s) is already low enough for a "
                      "migration; restore 3600-86400 s afterwards%s",
                      p->mx_ttl, t);
    free(tail);
    return msg;
}

static void rule_planning(chk_report *r)
{
    const mxr_plan *p = r->plan;
    bool mx = has_mx_records(p);
    if (!r->planning || (!mx && !(p->implicit && p->ncandidates > 0)))
        return;
    rec_list recs = {0};
    if (mx)
        mx_records(p, &recs);
    char *msg = planning_message(p, mx, addr_ttl_max(p, &recs));
    chk_add(r, CHK_INFO, "PLANNING-TTL", recs_view(&recs),
            "lower the TTL to 300-600 s 24-48 h before the change, keep the "
            "old servers accepting mail for a few days, then restore the "
            "TTL",
            "%s", msg ? msg : "lower the TTL before a migration");
    free(msg);
    recs_free(&recs);
}

void chk_rules_ttl(chk_report *r)
{
    rule_mx_ttl(r);
    rule_addr_ttl(r);
    rule_planning(r);
}
