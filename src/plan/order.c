/* order.c -- RFC 5321 section 5.1 ordering, applied in two stages.
 *
 * mxr__order_prepare works on the builder once per resolution and is
 * deterministic, so its result can be cached: sort, duplicates,
 * self-pruning, safety filters, family order. mxr__order_finish runs on
 * every route's private copy: the random tie shuffle and the limits (which
 * must come after the shuffle, or the same hosts would always be cut). */
#include "plan/order.h"

#include "base/addr.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------ builder helpers */

/* The per-host scratch arrays of a plan of a few hosts fit on the stack;
 * larger plans take (zeroed) blocks. */
typedef union scratch_space {
    unsigned char bytes[512];
    max_align_t align;
} scratch_space;

static void *scratch_get(mxr__plan_builder *pb, scratch_space *s, size_t n,
                         size_t size)
{
    if (n > sizeof s->bytes / size)
        return mxr__calloc(pb->a, n, size);
    memset(s->bytes, 0, n * size);
    return s->bytes;
}

static void scratch_put(mxr__plan_builder *pb, scratch_space *s, void *p)
{
    if (p != s->bytes)
        mxr__free(pb->a, p);
}

/* Moves every host marked with a reason to the skipped list, keeping the
 * order of both lists. Room for the skips was reserved up front, so this
 * cannot fail half-way and leave a host in both lists or in neither. */
static void sweep_marked_hosts(mxr__plan_builder *pb, mxr_reason *why)
{
    size_t kept = 0;
    for (size_t i = 0; i < pb->nhosts; i++) {
        mxr__host *h = &pb->hosts[i];
        if (why[i] != MXR_REASON_NONE) {
            (void)mxr__pb_skip(pb, h->name, h->pref, why[i]);
            mxr__free(pb->a, h->addrs);
            continue;
        }
        if (kept != i)
            pb->hosts[kept] = *h;
        kept++;
    }
    pb->nhosts = kept;
    memset(why, 0, kept * sizeof *why); /* fresh marks for the next step */
}

/* ---------------------------------------------------- preference sort */

/* qsort is not stable; comparing positions in the array last makes it so
 * (the elements are pointers into pb->hosts, in their original order). */
static int by_preference_then_position(const void *a, const void *b)
{
    const mxr__host *ha = *(const mxr__host *const *)a;
    const mxr__host *hb = *(const mxr__host *const *)b;
    if (ha->pref != hb->pref)
        return ha->pref < hb->pref ? -1 : 1;
    return ha < hb ? -1 : ha > hb;
}

static bool sorted_by_preference(const mxr__plan_builder *pb)
{
    for (size_t i = 1; i < pb->nhosts; i++) {
        if (pb->hosts[i].pref < pb->hosts[i - 1].pref)
            return false;
    }
    return true;
}

static int sort_by_preference(mxr__plan_builder *pb)
{
    if (sorted_by_preference(pb))
        return 0; /* the usual case costs no allocation */
    size_t n = pb->nhosts;
    const mxr__host **order = mxr__calloc(pb->a, n, sizeof *order);
    mxr__host *sorted = mxr__calloc(pb->a, n, sizeof *sorted);
    if (!order || !sorted) {
        mxr__free(pb->a, order);
        mxr__free(pb->a, sorted);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = &pb->hosts[i];
    qsort(order, n, sizeof *order, by_preference_then_position);
    for (size_t i = 0; i < n; i++)
        sorted[i] = *order[i];
    memcpy(pb->hosts, sorted, n * sizeof *sorted);
    mxr__free(pb->a, order);
    mxr__free(pb->a, sorted);
    return 0;
}

/* ---------------------------------------------------------- duplicates */

static int by_name_then_position(const void *a, const void *b)
{
    const mxr__host *ha = *(const mxr__host *const *)a;
    const mxr__host *hb = *(const mxr__host *const *)b;
    int c = strcmp(ha->name, hb->name);
    if (c != 0)
        return c;
    return ha < hb ? -1 : ha > hb;
}

/* Sorting by name finds every repeat in O(n log n) (MX answers may hold
 * thousands of records). Hosts are in preference order already, so the
 * first of each name has its lowest preference: later ones are marked. */
static int mark_duplicates(mxr__plan_builder *pb, mxr_reason *why)
{
    size_t n = pb->nhosts;
    if (n < 2)
        return 0;
    scratch_space s;
    const mxr__host **byname = scratch_get(pb, &s, n, sizeof *byname);
    if (!byname)
        return -1;
    for (size_t i = 0; i < n; i++)
        byname[i] = &pb->hosts[i];
    qsort(byname, n, sizeof *byname, by_name_then_position);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(byname[i]->name, byname[i - 1]->name) == 0)
            why[byname[i] - pb->hosts] = MXR_REASON_DUPLICATE;
    }
    scratch_put(pb, &s, byname);
    return 0;
}

/* ------------------------------------------------------- self-pruning */

static bool is_local_name(const mxr__order_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nlocal_names; i++) {
        if (cfg->local_names[i] && strcmp(cfg->local_names[i], name) == 0)
            return true;
    }
    return false;
}

/* ::ffff:192.0.2.1 is the same machine as 192.0.2.1. */
static mxr_addr unmapped(const mxr_addr *a)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0xff, 0xff};
    mxr_addr out = *a;
    if (a->family == AF_INET6 && memcmp(a->bytes, v4mapped, 12) == 0) {
        memset(&out, 0, sizeof out);
        out.family = AF_INET;
        memcpy(out.bytes, a->bytes + 12, 4);
    }
    return out;
}

static bool is_local_addr(const mxr__order_config *cfg, const mxr_addr *a)
{
    mxr_addr mine = unmapped(a);
    for (size_t i = 0; i < cfg->nlocal_addrs; i++) {
        mxr_addr local = unmapped(&cfg->local_addrs[i]);
        if (mxr__addr_equal(&mine, &local))
            return true;
    }
    return false;
}

static bool host_is_self(const mxr__order_config *cfg, const mxr__host *h)
{
    if (is_local_name(cfg, h->name))
        return true;
    for (size_t i = 0; i < h->naddrs; i++) {
        if (is_local_addr(cfg, &h->addrs[i]))
            return true;
    }
    return false;
}

/* Delivering to a host no more preferred than ourselves would send the
 * message back to us (RFC 5321 5.1), so the first self host and every
 * host from its preference on go. Returns true when that was the most
 * preferred tier: we are the destination and must not relay at all. */
static bool mark_self_and_beyond(const mxr__order_config *cfg,
                                 const mxr__plan_builder *pb, mxr_reason *why)
{
    size_t first_self = pb->nhosts;
    for (size_t i = 0; i < pb->nhosts && first_self == pb->nhosts; i++) {
        if (host_is_self(cfg, &pb->hosts[i]))
            first_self = i;
    }
    if (first_self == pb->nhosts)
        return false;
    uint16_t self_pref = pb->hosts[first_self].pref;
    for (size_t i = 0; i < pb->nhosts; i++) {
        if (pb->hosts[i].pref >= self_pref)
            why[i] = MXR_REASON_SELF;
    }
    return self_pref <= pb->hosts[0].pref;
}

/* ---------------------------------------------------- safety filters */

/* Addresses from DNS and from address literals come from outside (a
 * recipient address is the sender's choice), so they are filtered. A host
 * added by a policy is the operator's own configuration, for example a
 * content filter on 127.0.0.1, and is trusted as given. */
static bool needs_safety_filter(const mxr__host *h)
{
    return h->source != MXR_SOURCE_POLICY;
}

typedef struct filter_counts {
    size_t private_denied; /* dropped because deny_private */
    size_t unsafe;         /* dropped as loopback or unroutable */
} filter_counts;

static bool address_allowed(const mxr__order_config *cfg, const mxr_addr *a,
                            filter_counts *dropped)
{
    switch (mxr_addr_classify(a)) {
    case MXR_ADDR_GLOBAL:
        return true;
    case MXR_ADDR_PRIVATE:
        if (!cfg->deny_private)
            return true;
        dropped->private_denied++;
        return false;
    case MXR_ADDR_LOOPBACK:
        if (cfg->allow_loopback)
            return true;
        dropped->unsafe++;
        return false;
    case MXR_ADDR_UNROUTABLE:
    default:
        dropped->unsafe++;
        return false;
    }
}

/* Drops the unsafe addresses of h in place, keeping the order of the
 * rest; returns why h must go when none is left, else NONE. */
static mxr_reason filter_addresses(const mxr__order_config *cfg, mxr__host *h)
{
    if (h->naddrs == 0)
        return MXR_REASON_NO_ADDRESS;
    if (!needs_safety_filter(h))
        return MXR_REASON_NONE;
    filter_counts dropped = {0, 0};
    size_t kept = 0;
    for (size_t i = 0; i < h->naddrs; i++) {
        if (address_allowed(cfg, &h->addrs[i], &dropped))
            h->addrs[kept++] = h->addrs[i];
    }
    h->naddrs = kept;
    if (dropped.private_denied + dropped.unsafe > 0)
        h->notes |= MXR_NOTE_FILTERED;
    if (kept > 0)
        return MXR_REASON_NONE;
    return dropped.unsafe > 0 ? MXR_REASON_UNROUTABLE_ADDRESS
                              : MXR_REASON_PRIVATE_ADDRESS;
}

static void mark_unsafe_hosts(const mxr__order_config *cfg,
                              mxr__plan_builder *pb, mxr_reason *why)
{
    for (size_t i = 0; i < pb->nhosts; i++)
        why[i] = filter_addresses(cfg, &pb->hosts[i]);
}

/* ------------------------------------------------------ family order */

/* Keeps only the addresses of one family, in their order. */
static void keep_family(mxr__host *h, int family)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->naddrs; i++) {
        if (h->addrs[i].family == family)
            h->addrs[kept++] = h->addrs[i];
    }
    h->naddrs = kept;
}

/* Appends to out the addresses of h of one family, in their order;
 * returns the new length of out. */
static size_t collect_family(const mxr__host *h, int family, mxr_addr *out,
                             size_t len)
{
    for (size_t i = 0; i < h->naddrs; i++) {
        if (h->addrs[i].family == family)
            out[len++] = h->addrs[i];
    }
    return len;
}

static size_t collect_other_families(const mxr__host *h, mxr_addr *out,
                                     size_t len)
{
    for (size_t i = 0; i < h->naddrs; i++) {
        int f = h->addrs[i].family;
        if (f != AF_INET && f != AF_INET6)
            out[len++] = h->addrs[i];
    }
    return len;
}

/* first family, then second, each in its own order (stable partition). */
static void put_family_first(mxr__host *h, int first, int second,
                             mxr_addr *scratch)
{
    size_t len = collect_family(h, first, scratch, 0);
    len = collect_family(h, second, scratch, len);
    len = collect_other_families(h, scratch, len);
    memcpy(h->addrs, scratch, len * sizeof *scratch);
}

/* IPv6, IPv4, IPv6, ... so that a broken path of one family costs one
 * attempt, not all of them (the spirit of Happy Eyeballs, RFC 8305). */
static void interleave_families(mxr__host *h, mxr_addr *scratch)
{
    size_t end6 = collect_family(h, AF_INET6, scratch, 0);
    size_t end4 = collect_family(h, AF_INET, scratch, end6);
    size_t all = collect_other_families(h, scratch, end4);
    size_t out = 0, i6 = 0, i4 = end6;
    while (i6 < end6 || i4 < end4) {
        if (i6 < end6)
            h->addrs[out++] = scratch[i6++];
        if (i4 < end4)
            h->addrs[out++] = scratch[i4++];
    }
    /* Addresses of neither family (never from DNS) go last. */
    memcpy(h->addrs + out, scratch + end4, (all - end4) * sizeof *scratch);
}

static size_t most_addresses(const mxr__plan_builder *pb)
{
    size_t most = 0;
    for (size_t i = 0; i < pb->nhosts; i++) {
        if (pb->hosts[i].naddrs > most)
            most = pb->hosts[i].naddrs;
    }
    return most;
}

static void order_addresses(mxr_family family, mxr__host *h, mxr_addr *scratch)
{
    switch (family) {
    case MXR_FAMILY_IPV4:
        keep_family(h, AF_INET);
        break;
    case MXR_FAMILY_IPV6:
        keep_family(h, AF_INET6);
        break;
    case MXR_FAMILY_PREFER_IPV4:
        put_family_first(h, AF_INET, AF_INET6, scratch);
        break;
    case MXR_FAMILY_PREFER_IPV6:
        put_family_first(h, AF_INET6, AF_INET, scratch);
        break;
    case MXR_FAMILY_ANY:
    default:
        interleave_families(h, scratch);
        break;
    }
}

/* Orders each host's addresses; hosts themselves never move, because
 * preference order always beats family order. */
static int mark_hosts_by_family(const mxr__order_config *cfg,
                                mxr__plan_builder *pb, mxr_reason *why)
{
    size_t most = most_addresses(pb);
    if (most == 0)
        return 0;
    scratch_space s;
    mxr_addr *spare = scratch_get(pb, &s, most, sizeof *spare);
    if (!spare)
        return -1;
    for (size_t i = 0; i < pb->nhosts; i++) {
        mxr__host *h = &pb->hosts[i];
        order_addresses(cfg->family, h, spare);
        if (h->naddrs == 0)
            why[i] = MXR_REASON_NO_ADDRESS;
    }
    scratch_put(pb, &s, spare);
    return 0;
}

/* ------------------------------------------------------------ result */

static bool any_skip_temporary(const mxr__plan_builder *pb)
{
    for (size_t i = 0; i < pb->nskips; i++) {
        if (pb->skips[i].reason == MXR_REASON_TEMPFAIL)
            return true;
    }
    return false;
}

/* Nothing usable: a temporary skip may clear up, so try again later;
 * otherwise the domain takes no mail from us. */
static void decide_without_hosts(mxr__plan_builder *pb)
{
    /* An implicit MX without any address fails earlier (no-mail-host, in
     * route.c); here the domain had addresses and filters took them. */
    if (any_skip_temporary(pb))
        mxr__pb_fail(pb, MXR_RESULT_TEMPFAIL, MXR_REASON_TEMPFAIL);
    else
        mxr__pb_fail(pb, MXR_RESULT_PERMFAIL, MXR_REASON_NO_USABLE_HOST);
}

/* The steps that need the per-host marks; why[] has one slot per host. */
static int prepare_hosts(const mxr__order_config *cfg, mxr__plan_builder *pb,
                         mxr_reason *why)
{
    if (mark_duplicates(pb, why) < 0)
        return -1;
    sweep_marked_hosts(pb, why);

    if (mark_self_and_beyond(cfg, pb, why)) {
        sweep_marked_hosts(pb, why);
        mxr__pb_fail(pb, MXR_RESULT_PERMFAIL, MXR_REASON_LOOPS_TO_SELF);
        return 0;
    }
    sweep_marked_hosts(pb, why);

    mark_unsafe_hosts(cfg, pb, why);
    sweep_marked_hosts(pb, why);

    if (mark_hosts_by_family(cfg, pb, why) < 0)
        return -1;
    sweep_marked_hosts(pb, why);
    return 0;
}

mxr_status mxr__order_prepare(const mxr__order_config *cfg,
                              mxr__plan_builder *pb)
{
    if (pb->result != MXR_RESULT_OK)
        return MXR_OK;
    if (pb->nhosts > 0) {
        if (sort_by_preference(pb) < 0)
            return MXR_ENOMEM;
        /* Each host is skipped at most once. */
        if (mxr__pb_reserve_skips(pb, pb->nhosts) != MXR_OK)
            return MXR_ENOMEM;
        scratch_space s;
        mxr_reason *why = scratch_get(pb, &s, pb->nhosts, sizeof *why);
        if (!why)
            return MXR_ENOMEM;
        int rc = prepare_hosts(cfg, pb, why);
        scratch_put(pb, &s, why);
        if (rc < 0)
            return MXR_ENOMEM;
        if (pb->result != MXR_RESULT_OK)
            return MXR_OK; /* loops to self */
    }
    if (pb->nhosts == 0)
        decide_without_hosts(pb);
    return MXR_OK;
}

/* ------------------------------------------------------------ finish */

static void swap_candidates(mxr_candidate *a, mxr_candidate *b)
{
    mxr_candidate t = *a;
    *a = *b;
    *b = t;
}

/* Fisher-Yates with unbiased draws: every order equally likely. */
static void shuffle_run(mxr__rng *rng, mxr_candidate *c, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mxr__rng_below(rng, i);
        if (j != i - 1)
            swap_candidates(&c[j], &c[i - 1]);
    }
}

/* RFC 5321 5.1: hosts of equal preference are tried in random order, which
 * spreads the load; hosts never cross a preference boundary. */
static void shuffle_ties(mxr__rng *rng, mxr_candidate *c, size_t n)
{
    size_t start = 0;
    while (start < n) {
        size_t end = start + 1;
        while (end < n && c[end].preference == c[start].preference)
            end++;
        shuffle_run(rng, c + start, end - start);
        start = end;
    }
}

/* 0 means no limit, so a zeroed configuration never empties a plan. */
static void cap_addresses(mxr_candidate *c, size_t max)
{
    if (max > 0 && c->naddrs > max) {
        c->naddrs = max;
        c->notes |= MXR_NOTE_ADDR_LIMIT;
    }
}

/* Moves candidates [keep, n) to the skipped list in their order. Taking
 * them from the end keeps each move O(1); the moved entries then sit in
 * reverse order and are turned around. */
static void skip_candidates_from(mxr_plan *plan, size_t keep, mxr_reason reason)
{
    size_t first = plan->nskipped;
    while (plan->ncandidates > keep) {
        if (mxr__plan_skip_candidate(plan, plan->ncandidates - 1, reason) !=
            MXR_OK)
            break; /* no room: cannot happen, the block reserves it */
    }
    mxr_skipped *s = (mxr_skipped *)(uintptr_t)plan->skipped;
    for (size_t i = first, j = plan->nskipped; i + 1 < j; i++, j--) {
        mxr_skipped t = s[i];
        s[i] = s[j - 1];
        s[j - 1] = t;
    }
}

/* Host limit, then per-host and whole-plan address limits in the order of
 * trial, so the budget goes to the hosts tried first. The hosts that get
 * nothing form a tail, skipped in one go. */
static void apply_limits(const mxr__order_config *cfg, mxr_plan *plan)
{
    mxr_candidate *c = (mxr_candidate *)(uintptr_t)plan->candidates;
    size_t keep = plan->ncandidates;
    if (cfg->max_hosts > 0 && keep > cfg->max_hosts)
        keep = cfg->max_hosts;
    size_t budget = cfg->max_addrs_total > 0 ? cfg->max_addrs_total : SIZE_MAX;
    for (size_t i = 0; i < keep; i++) {
        if (budget == 0) {
            keep = i;
            break;
        }
        cap_addresses(&c[i], cfg->max_addrs_per_host);
        cap_addresses(&c[i], budget);
        budget -= c[i].naddrs;
    }
    skip_candidates_from(plan, keep, MXR_REASON_LIMIT);
}

void mxr__order_finish(const mxr__order_config *cfg, mxr__rng *rng,
                       mxr_plan *plan)
{
    if (!plan || plan->result != MXR_RESULT_OK)
        return;
    /* The plan is this route's private copy: its block is ours to edit. */
    mxr_candidate *c = (mxr_candidate *)(uintptr_t)plan->candidates;
    shuffle_ties(rng, c, plan->ncandidates);
    apply_limits(cfg, plan);
}
