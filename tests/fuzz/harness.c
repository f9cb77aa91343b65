/* harness.c -- what the fuzz targets share: reading the input, counting
 * memory, the invariants of a plan and a bounded delivery attempt. */
#include "harness.h"

#include "base/addr.h"
#include "base/enums.h"
#include "base/name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RUN_ROUNDS_MAX 100000 /* engine rounds before we call it a hang */
#define ATTEMPT_HOPS_MAX 200  /* far above the rules' address limit */
#define REPLY_TEXT_MAX 700    /* longer than the text an attempt keeps */
#define KEPT_TEXT_MAX 512     /* what it keeps (src/deliver/attempt.c) */

void fz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

/* ------------------------------------------------------------ reading */

uint8_t fz_byte(fz_reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

uint16_t fz_u16(fz_reader *r)
{
    uint16_t hi = fz_byte(r);
    return (uint16_t)(hi << 8 | fz_byte(r));
}

size_t fz_take(fz_reader *r, const uint8_t **out, size_t n)
{
    if (n > r->left)
        n = r->left;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return n;
}

/* ------------------------------------------------------ DNS packets */

#define NAME_WIRE_MAX 256

static size_t name_to_wire(const char *name, uint8_t *out)
{
    size_t o = 0;
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, ".");
        n = n > 63 ? 63 : n;
        if (o + n + 2 > NAME_WIRE_MAX)
            break;
        out[o++] = (uint8_t)n;
        memcpy(out + o, p, n);
        o += n;
        p += n;
        p += *p == '.';
    }
    out[o++] = 0;
    return o;
}

uint8_t *fz_splice_answer(const uint8_t *body, size_t len, const char *qname,
                          uint16_t qtype, size_t *out_len)
{
    uint8_t *w = malloc(12 + NAME_WIRE_MAX + 4 + len);
    if (!w)
        return NULL;
    memset(w, 0, 12);
    memcpy(w, body, len < 12 ? len : 12);
    w[4] = 0, w[5] = 1; /* QDCOUNT */
    size_t o = 12 + name_to_wire(qname, w + 12);
    w[o++] = (uint8_t)(qtype >> 8);
    w[o++] = (uint8_t)qtype;
    w[o++] = 0, w[o++] = 1; /* class IN */
    if (len > 12) {
        memcpy(w + o, body + 12, len - 12);
        o += len - 12;
    }
    *out_len = o;
    return w;
}

/* -------------------------------------------------------- allocator */

void *fz_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fz_alloc *c = ud;
    if (nsize == 0) {
        if (ptr)
            c->live -= osize;
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p)
        c->live += nsize - (ptr ? osize : 0);
    return p;
}

/* ------------------------------------------------------ plan invariants */

/* A host name as the engine writes it: normalising it changes nothing. */
static void check_host_name(const char *host)
{
    char norm[MXR__NAME_MAX + 1];
    FZ_ASSERT(mxr__hostname_normalize(host, strlen(host), norm, NULL, 0) ==
              MXR_OK);
    FZ_ASSERT(strcmp(norm, host) == 0);
}

static void check_addr_allowed(const mxr_addr *a, const fz_plan_rules *r)
{
    mxr_addr_class cls = mxr_addr_classify(a);
    FZ_ASSERT(cls != MXR_ADDR_UNROUTABLE);
    FZ_ASSERT(cls != MXR_ADDR_LOOPBACK || r->allow_loopback);
    FZ_ASSERT(cls != MXR_ADDR_PRIVATE || !r->deny_private);
    if (r->family == MXR_FAMILY_IPV4)
        FZ_ASSERT(a->family == AF_INET);
    if (r->family == MXR_FAMILY_IPV6)
        FZ_ASSERT(a->family == AF_INET6);
}

static void check_candidate(const mxr_candidate *c, const fz_plan_rules *r)
{
    FZ_ASSERT(c->host != NULL && c->host[0] != '\0');
    FZ_ASSERT((unsigned)c->source <= MXR_SOURCE_LITERAL);
    FZ_ASSERT(c->naddrs >= 1 && c->addrs != NULL);
    FZ_ASSERT(c->port >= 1);
    for (size_t k = 0; k < c->naddrs; k++)
        FZ_ASSERT(c->addrs[k].family == AF_INET ||
                  c->addrs[k].family == AF_INET6);
    if (r->policy)
        return;
    FZ_ASSERT(c->naddrs <= r->max_addrs_per_host);
    FZ_ASSERT(c->source != MXR_SOURCE_POLICY);
    for (size_t k = 0; k < c->naddrs; k++)
        check_addr_allowed(&c->addrs[k], r);
    if (c->source == MXR_SOURCE_MX || c->source == MXR_SOURCE_IMPLICIT)
        check_host_name(c->host);
}

static void check_limits(const mxr_plan *p, const fz_plan_rules *r)
{
    size_t total = 0;
    FZ_ASSERT(p->ncandidates <= r->max_hosts);
    for (size_t i = 0; i < p->ncandidates; i++) {
        total += p->candidates[i].naddrs;
        if (i > 0) /* preference order, before any policy */
            FZ_ASSERT(p->candidates[i - 1].preference <=
                      p->candidates[i].preference);
    }
    FZ_ASSERT(total <= r->max_addrs_total);
}

void fz_check_plan(mxr_status status, const mxr_plan *p, const fz_plan_rules *r)
{
    FZ_ASSERT((status == MXR_OK) == (p != NULL));
    if (!p)
        return;
    FZ_ASSERT(p->input != NULL && p->domain != NULL);
    FZ_ASSERT((unsigned)p->result <= MXR_RESULT_PERMFAIL);
    FZ_ASSERT((unsigned)p->reason < MXR__REASON_N);
    FZ_ASSERT(mxr_reason_name(p->reason) != NULL);
    if (p->result == MXR_RESULT_OK)
        FZ_ASSERT(p->reason == MXR_REASON_NONE && p->ncandidates > 0);
    else
        FZ_ASSERT(p->reason != MXR_REASON_NONE && p->ncandidates == 0);
    for (size_t i = 0; i < p->ncandidates; i++)
        check_candidate(&p->candidates[i], r);
    for (size_t i = 0; i < p->nskipped; i++) {
        FZ_ASSERT(p->skipped[i].host != NULL);
        FZ_ASSERT((unsigned)p->skipped[i].reason < MXR__REASON_N);
    }
    if (!r->policy)
        check_limits(p, r);
}

/* ------------------------------------------------------- the attempt */

static int reply_code(mxr_class cls)
{
    switch (cls) {
    case MXR_CLASS_OK:
        return 250;
    case MXR_CLASS_4XX:
        return 451;
    case MXR_CLASS_5XX:
        return 550;
    case MXR_CLASS_421:
        return 421;
    default:
        return 0; /* connection-level: no reply */
    }
}

/* A reply of class cls; its text is taken from the input when asked. */
static mxr_outcome make_reply(fz_reader *r, mxr_stage stage, mxr_class cls,
                              char text[REPLY_TEXT_MAX + 1])
{
    const uint8_t *bytes;
    size_t n =
        fz_byte(r) & 1 ? fz_take(r, &bytes, fz_u16(r) % REPLY_TEXT_MAX) : 0;
    if (n)
        memcpy(text, bytes, n);
    text[n] = '\0';
    return (mxr_outcome){.stage = stage,
                         .cls = cls,
                         .code = reply_code(cls),
                         .enhanced = cls == MXR_CLASS_OK ? NULL : "4.7.1",
                         .text = n ? text : NULL};
}

static mxr_class reply_class(uint8_t b)
{
    static const mxr_class classes[] = {MXR_CLASS_OK, MXR_CLASS_4XX,
                                        MXR_CLASS_5XX};
    return classes[b % 3];
}

/* The RCPT phase: one reply per recipient, then the end of the phase. */
static mxr_action rcpt_phase(mxr_attempt *a, fz_reader *r, mxr_class end)
{
    char text[REPLY_TEXT_MAX + 1];
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        mxr_outcome reply =
            make_reply(r, MXR_STAGE_RCPT, reply_class(fz_byte(r)), text);
        mxr_action act = mxr_attempt_rcpt(a, i, &reply);
        FZ_ASSERT((unsigned)act < MXR__ACTION_N);
    }
    mxr_outcome o = make_reply(r, MXR_STAGE_RCPT, end, text);
    return mxr_attempt_outcome(a, &o);
}

/* One SMTP session: every stage succeeds up to `fail`, which ends with
 * class cls (class OK at end-of-data is a delivery). */
static void session(mxr_attempt *a, fz_reader *r, mxr_stage fail, mxr_class cls)
{
    char text[REPLY_TEXT_MAX + 1];
    for (int s = MXR_STAGE_CONNECT; s <= (int)fail; s++) {
        mxr_class c = s == (int)fail ? cls : MXR_CLASS_OK;
        mxr_action act;
        if (s == MXR_STAGE_RCPT) {
            act = rcpt_phase(a, r, c);
        } else {
            mxr_outcome o = make_reply(r, (mxr_stage)s, c, text);
            act = mxr_attempt_outcome(a, &o);
        }
        FZ_ASSERT((unsigned)act < MXR__ACTION_N);
        if (act != MXR_ACTION_CONTINUE || mxr_attempt_done(a))
            return;
    }
}

static void check_settled(const mxr_attempt *a)
{
    FZ_ASSERT(mxr_attempt_done(a));
    FZ_ASSERT(mxr_attempt_verdict(a) != MXR_ACTION_CONTINUE);
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        const mxr_rcpt *rc = mxr_attempt_recipient(a, i);
        FZ_ASSERT(rc->state != MXR_RCPT_PENDING); /* nobody is lost */
        FZ_ASSERT(rc->text != NULL);
        FZ_ASSERT(strlen(rc->text) < KEPT_TEXT_MAX); /* replies are cut */
    }
}

void fz_walk_attempt(mxr_engine *e, const mxr_plan *plan, fz_reader *r)
{
    static const char *const rcpts[] = {"a@example.com", "b@example.com"};
    mxr_message msg = {.sender = "sender@example.org",
                       .recipients = rcpts,
                       .nrecipients = 2,
                       .attempts = fz_byte(r) % 4};
    mxr_attempt *a = NULL;
    if (!plan || mxr_attempt_new(e, plan, &msg, &a) != MXR_OK)
        return;
    const mxr_plan *ap = mxr_attempt_plan(a);
    int hops = 0;
    mxr_hop hop;
    while (!mxr_attempt_done(a) && mxr_attempt_next(a, &hop) == MXR_OK) {
        FZ_ASSERT(++hops <= ATTEMPT_HOPS_MAX);
        FZ_ASSERT(hop.candidate < ap->ncandidates);
        FZ_ASSERT(hop.addr.family == AF_INET || hop.addr.family == AF_INET6);
        uint8_t b = fz_byte(r);
        mxr_class cls = (mxr_class)((b >> 3) % MXR__CLASS_N);
        mxr_stage fail =
            cls == MXR_CLASS_OK ? MXR_STAGE_DOT : (mxr_stage)(b % MXR__STAGE_N);
        session(a, r, fail, cls);
    }
    check_settled(a);
    mxr_attempt_free(a);
}

void fz_run(mxr_engine *e)
{
    for (int i = 0; i < RUN_ROUNDS_MAX && mxr_engine_pending(e) > 0; i++)
        mxr_engine_process(e, MXR_NOFD, MXR_NOFD);
    FZ_ASSERT(mxr_engine_pending(e) == 0);
}

void fz_on_route(void *arg, mxr_status status, mxr_plan *plan)
{
    fz_result *res = arg;
    FZ_ASSERT(!res->done); /* exactly once */
    *res = (fz_result){.done = true, .status = status, .plan = plan};
}

void fz_settle(mxr_engine *e, fz_result *res, const fz_plan_rules *rules,
               fz_reader *r)
{
    FZ_ASSERT(res->done);
    fz_check_plan(res->status, res->plan, rules);
    fz_walk_attempt(e, res->plan, r);
    mxr_plan_free(res->plan);
}

uint64_t fz_now_ms;

uint64_t fz_clock(void *ud)
{
    return fz_now_ms;
}
