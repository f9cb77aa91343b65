/* attempt.c -- one delivery attempt of one message along one plan: the
 * failover state machine of docs/failover.md.
 *
 * The caller asks where to connect (mxr_attempt_next), runs an SMTP
 * session there, reports each recipient's RCPT reply and how the session
 * ended; the rules table turns each outcome into an action. Every
 * recipient ends in exactly one of delivered, bounced or deferred: the
 * attempt is over only when none is pending. */
#include "deliver/deliver.h"
#include "plan/plan.h"
#include "deliver/retry.h"
#include "base/text.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define TEXT_MAX 512 /* reply text kept per recipient */
#define ENH_MAX 16

#define RCPT_TRIED 0x1u    /* got a RCPT reply in this session */
#define RCPT_ACCEPTED 0x2u /* RCPT 2xx in this session, not yet delivered */

typedef struct last_error {
    int code;
    char enhanced[ENH_MAX];
    char text[TEXT_MAX];
    const char *host;
} last_error;

/* Per recipient: the public view plus the strings it points to. Until
 * the recipient is settled, the strings hold its RCPT acceptance (code in
 * ok_code): a delivery reported without a reply of its own (a probe's)
 * shows that. */
typedef struct rcpt_slot {
    mxr_rcpt pub;
    unsigned flags;
    bool has_error; /* err holds the last failure that concerned it */
    last_error err;
    int ok_code;
    char enhanced[ENH_MAX];
    char text[TEXT_MAX];
} rcpt_slot;

struct mxr_attempt {
    mxr__deliver *d;
    const mxr_rules *rules;
    mxr_plan *plan; /* our copy, ordered by host health */
    mxr__retry_params retry;
    uint64_t first_ms;
    unsigned attempts;
    rcpt_slot *rcpts;
    size_t n;
    size_t cand, addr;    /* the current hop */
    bool started;         /* a hop was handed out */
    bool in_session;      /* a hop is out and its outcome not reported */
    mxr_action move;      /* how to advance on the next mxr_attempt_next */
    mxr_action rcpt_move; /* for recipients left pending by RCPT replies */
    unsigned sessions, addresses;
    bool done;
    char *sender; /* "" for the null sender */
    last_error last;
};

/* ------------------------------------------------------------ helpers */

static const mxr_candidate *current(const mxr_attempt *a)
{
    return &a->plan->candidates[a->cand];
}

static void remember_error(mxr_attempt *a, const mxr_outcome *o)
{
    a->last.code = o->code;
    mxr__copy_text(a->last.enhanced, sizeof a->last.enhanced, o->enhanced);
    if (o->text && o->text[0])
        mxr__copy_text(a->last.text, sizeof a->last.text, o->text);
    else
        snprintf(a->last.text, sizeof a->last.text, "%s at %s",
                 mxr_class_name(o->cls), mxr_stage_name(o->stage));
    a->last.host = current(a)->host;
}

/* Make the recipient final with the reply already in its strings. */
static void publish(rcpt_slot *r, mxr_rcpt_state state, int code,
                    const char *host)
{
    r->pub.state = state;
    r->pub.code = code;
    r->pub.enhanced = r->enhanced[0] ? r->enhanced : NULL;
    r->pub.text = r->text;
    r->pub.host = host;
    r->flags = 0;
}

static void settle(rcpt_slot *r, mxr_rcpt_state state, int code,
                   const char *enhanced, const char *text, const char *host)
{
    mxr__copy_text(r->enhanced, sizeof r->enhanced, enhanced);
    mxr__copy_text(r->text, sizeof r->text, text);
    publish(r, state, code, host);
}

/* A RCPT 2xx, kept in the recipient's strings (see rcpt_slot). */
static void keep_acceptance(rcpt_slot *r, const mxr_outcome *reply)
{
    r->flags |= RCPT_ACCEPTED;
    r->ok_code = reply->code;
    mxr__copy_text(r->enhanced, sizeof r->enhanced, reply->enhanced);
    mxr__copy_text(r->text, sizeof r->text,
                   reply->text && reply->text[0] ? reply->text : "accepted");
}

/* The policies' retry hooks may change the delay or give up. */
static bool retry_allowed(mxr_attempt *a, const rcpt_slot *r,
                          const last_error *why, unsigned failed, uint64_t now,
                          uint64_t *next)
{
    mxr__policies *set = *a->d->policies;
    if (!mxr__policies_has(set, MXR__HOOK_RETRY, a->plan->domain))
        return true;
    uint64_t delay = *next - now;
    mxr__retry_event ev = {.domain = a->plan->domain,
                           .recipient = r->pub.address,
                           .attempts = failed,
                           .age_ms = now > a->first_ms ? now - a->first_ms : 0,
                           .code = why->code,
                           .enhanced = why->enhanced[0] ? why->enhanced : NULL,
                           .text = why->text,
                           .host = why->host};
    if (mxr__policies_retry(set, &ev, &delay))
        return false;
    *next = now + delay;
    return true;
}

/* Defer one recipient with the error that stopped it, or bounce it when
 * the message has reached its maximum age (or a retry hook gave up). */
static void defer_one(mxr_attempt *a, rcpt_slot *r)
{
    const last_error *why = r->has_error ? &r->err : &a->last;
    uint64_t now = mxr__core_now(a->d->core), next;
    unsigned failed = a->attempts < UINT_MAX ? a->attempts + 1 : UINT_MAX;
    bool alive =
        mxr__retry_next(&a->retry, failed, a->first_ms, now, a->d->rng, &next);
    bool policy_gave_up =
        alive && !retry_allowed(a, r, why, failed, now, &next);
    if (alive && !policy_gave_up) {
        settle(r, MXR_RCPT_DEFERRED, why->code, why->enhanced, why->text,
               why->host);
        r->pub.retry_at_ms = next;
        return;
    }
    char text[TEXT_MAX + 64];
    uint64_t age = now > a->first_ms ? now - a->first_ms : 0;
    if (policy_gave_up)
        snprintf(text, sizeof text, "a retry policy gave up: %s", why->text);
    else
        snprintf(text, sizeof text, "expired after %u s in the queue: %s",
                 (unsigned)(age / 1000), why->text);
    settle(r, MXR_RCPT_BOUNCED, why->code, why->enhanced, text, why->host);
}

static size_t count_state(const mxr_attempt *a, mxr_rcpt_state st)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->rcpts[i].pub.state == st;
    return n;
}

/* The attempt's verdict once no recipient is pending. */
static mxr_action final_action(const mxr_attempt *a)
{
    if (count_state(a, MXR_RCPT_DEFERRED) > 0)
        return MXR_ACTION_DEFER;
    if (count_state(a, MXR_RCPT_DELIVERED) > 0)
        return MXR_ACTION_DELIVERED;
    return MXR_ACTION_BOUNCE;
}

static mxr_action finish_if_settled(mxr_attempt *a)
{
    if (count_state(a, MXR_RCPT_PENDING) > 0)
        return MXR_ACTION_CONTINUE;
    a->done = true;
    return final_action(a);
}

/* Stop the attempt: every pending recipient is deferred (or bounced). */
static mxr_action end_pending(mxr_attempt *a, mxr_action how)
{
    for (size_t i = 0; i < a->n; i++) {
        rcpt_slot *r = &a->rcpts[i];
        if (r->pub.state != MXR_RCPT_PENDING)
            continue;
        const last_error *why = r->has_error ? &r->err : &a->last;
        if (how == MXR_ACTION_BOUNCE)
            settle(r, MXR_RCPT_BOUNCED, why->code, why->enhanced, why->text,
                   why->host);
        else
            defer_one(a, r);
    }
    a->done = true;
    return final_action(a);
}

/* --------------------------------------------------------- the cursor */

typedef struct cursor {
    size_t cand, addr;
} cursor;

static bool cursor_valid(const mxr_attempt *a, cursor c)
{
    return c.cand < a->plan->ncandidates &&
           c.addr < a->plan->candidates[c.cand].naddrs;
}

/* Where `move` leads from c, skipping hosts without addresses. */
static cursor cursor_advance(const mxr_attempt *a, cursor c, mxr_action move)
{
    if (move == MXR_ACTION_NEXT_ADDRESS)
        c.addr++;
    else {
        c.cand++;
        c.addr = 0;
    }
    while (c.cand < a->plan->ncandidates && !cursor_valid(a, c)) {
        c.cand++;
        c.addr = 0;
    }
    return c;
}

static bool within_limits(const mxr_attempt *a)
{
    return a->addresses < (unsigned)a->rules->v[MXR_RULE_MAX_ADDRESSES] &&
           a->sessions < (unsigned)a->rules->v[MXR_RULE_MAX_SESSIONS];
}

/* Is there a hop after the current one for this move, within limits? */
static bool has_next(const mxr_attempt *a, mxr_action move)
{
    cursor c = cursor_advance(a, (cursor){a->cand, a->addr}, move);
    return within_limits(a) && c.cand < a->plan->ncandidates;
}

/* The table's action, as the policies' outcome hooks may change it (they
 * cannot claim a delivery). */
static mxr_action decide(mxr_attempt *a, const mxr_outcome *o,
                         const char *recipient)
{
    mxr_action act = mxr_rules_action(a->rules, o->stage, o->cls);
    mxr__policies *set = *a->d->policies;
    if (!mxr__policies_has(set, MXR__HOOK_OUTCOME, a->plan->domain))
        return act;
    const mxr_candidate *c = current(a);
    mxr__outcome_event ev = {.domain = a->plan->domain,
                             .host = c->host,
                             .addr = &c->addrs[a->addr],
                             .recipient = recipient,
                             .outcome = o};
    mxr_action chosen = mxr__policies_outcome(set, &ev, act);
    return chosen == MXR_ACTION_DELIVERED ? act : chosen;
}

/* ------------------------------------------------------------- the API */

mxr_status mxr_attempt_next(mxr_attempt *a, mxr_hop *out)
{
    if (!a || !out)
        return MXR_EINVAL;
    if (a->done)
        return MXR_EDONE;
    if (a->in_session)
        return MXR_ESTATE;
    cursor c = {a->cand, a->addr};
    if (!a->started) {
        c = (cursor){0, 0};
        if (!cursor_valid(a, c))
            c = cursor_advance(a, c, MXR_ACTION_NEXT_HOST);
    } else {
        c = cursor_advance(a, c, a->move);
    }
    if (c.cand >= a->plan->ncandidates || !within_limits(a)) {
        end_pending(a, MXR_ACTION_DEFER);
        return MXR_EDONE;
    }
    a->started = true;
    a->cand = c.cand;
    a->addr = c.addr;
    a->addresses++;
    a->in_session = true;
    a->rcpt_move = MXR_ACTION_NEXT_HOST;
    for (size_t i = 0; i < a->n; i++)
        a->rcpts[i].flags = 0;
    const mxr_candidate *cd = current(a);
    *out = (mxr_hop){.host = cd->host,
                     .preference = cd->preference,
                     .port = cd->port,
                     .tls_required = cd->tls_required,
                     .host_down = (cd->notes & MXR_NOTE_DOWN) != 0,
                     .addr = cd->addrs[c.addr],
                     .candidate = c.cand,
                     .label = cd->label,
                     .number = a->addresses};
    return MXR_OK;
}

/* A per-recipient action that is not final keeps the recipient for the
 * next hop; DELIVERED or CONTINUE on a refusal would lose it. */
static mxr_action sane_retry_move(mxr_action act)
{
    return act == MXR_ACTION_NEXT_ADDRESS ? act : MXR_ACTION_NEXT_HOST;
}

mxr_action mxr_attempt_rcpt(mxr_attempt *a, size_t i, const mxr_outcome *reply)
{
    if (!a || !reply || !a->in_session || i >= a->n ||
        a->rcpts[i].pub.state != MXR_RCPT_PENDING ||
        (a->rcpts[i].flags & RCPT_TRIED))
        return MXR_ACTION_CONTINUE; /* nothing to decide: ignored */
    rcpt_slot *r = &a->rcpts[i];
    r->flags |= RCPT_TRIED;
    if (reply->cls == MXR_CLASS_OK) {
        keep_acceptance(r, reply);
        return MXR_ACTION_CONTINUE;
    }
    mxr_outcome rcpt_reply = *reply;
    rcpt_reply.stage = MXR_STAGE_RCPT; /* whatever the caller said */
    mxr_action act = decide(a, &rcpt_reply, r->pub.address);
    remember_error(a, reply);
    r->err = a->last; /* this reply is this recipient's own error */
    r->has_error = true;
    if (act == MXR_ACTION_BOUNCE)
        settle(r, MXR_RCPT_BOUNCED, reply->code, reply->enhanced, a->last.text,
               current(a)->host);
    else if (act == MXR_ACTION_DEFER)
        defer_one(a, r); /* or an expiry bounce */
    else
        a->rcpt_move = act = sane_retry_move(act);
    return r->pub.state == MXR_RCPT_BOUNCED ? MXR_ACTION_BOUNCE : act;
}

static void health_note(mxr_attempt *a, const mxr_outcome *o)
{
    const mxr_candidate *c = current(a);
    uint64_t now = mxr__core_now(a->d->core);
    if (!mxr__class_is_connection(o->cls)) {
        mxr__health_ok(a->d->health, c->host, &c->addrs[a->addr], now);
        return;
    }
    bool last_addr = a->addr + 1 >= c->naddrs;
    mxr__health_fail(a->d->health, last_addr ? c->host : NULL,
                     &c->addrs[a->addr], now);
}

/* The session delivered the message to the recipients accepted in it:
 * each gets the end-of-data reply, or, when the outcome carries no reply
 * (code 0: a probe stops before DATA), its own RCPT acceptance. */
static mxr_action on_delivered(mxr_attempt *a, const mxr_outcome *o)
{
    const char *host = current(a)->host;
    for (size_t i = 0; i < a->n; i++) {
        rcpt_slot *r = &a->rcpts[i];
        if (!(r->flags & RCPT_ACCEPTED))
            continue;
        if (o->code == 0)
            publish(r, MXR_RCPT_DELIVERED, r->ok_code, host);
        else
            settle(r, MXR_RCPT_DELIVERED, o->code, o->enhanced,
                   o->text ? o->text : "accepted", host);
    }
    return MXR_ACTION_CONTINUE;
}

/* Recipients still pending after a session (RCPT 4xx, or failures) go on
 * to the next hop, or are deferred when nothing is left to try. */
static mxr_action move_on(mxr_attempt *a, mxr_action move)
{
    mxr_action settled = finish_if_settled(a);
    if (a->done)
        return settled;
    if (!has_next(a, move))
        return end_pending(a, MXR_ACTION_DEFER);
    a->move = move;
    return move;
}

/* Which pending recipients a session failure concerns: at DATA and
 * end-of-data only those in the mail transaction (accepted at RCPT); the
 * ones refused with a 4xx at RCPT were never part of it. Before that,
 * everyone pending. */
static bool concerned(const mxr_outcome *o, const rcpt_slot *r)
{
    if (r->pub.state != MXR_RCPT_PENDING)
        return false;
    return o->stage < MXR_STAGE_DATA || (r->flags & RCPT_ACCEPTED);
}

static mxr_action on_failure(mxr_attempt *a, const mxr_outcome *o)
{
    mxr_action act = decide(a, o, NULL);
    remember_error(a, o);
    bool final = act == MXR_ACTION_BOUNCE || act == MXR_ACTION_DEFER;
    for (size_t i = 0; i < a->n; i++) {
        rcpt_slot *r = &a->rcpts[i];
        if (!concerned(o, r))
            continue;
        r->err = a->last;
        r->has_error = true;
        if (final && act == MXR_ACTION_BOUNCE)
            settle(r, MXR_RCPT_BOUNCED, o->code, o->enhanced, a->last.text,
                   a->last.host);
        else if (final)
            defer_one(a, r);
    }
    for (size_t i = 0; i < a->n; i++)
        a->rcpts[i].flags &= ~RCPT_ACCEPTED; /* not delivered after all */
    return move_on(a, final ? a->rcpt_move : sane_retry_move(act));
}

static bool any_accepted(const mxr_attempt *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->rcpts[i].flags & RCPT_ACCEPTED)
            return true;
    return false;
}

mxr_action mxr_attempt_outcome(mxr_attempt *a, const mxr_outcome *o)
{
    if (!a || !o || (unsigned)o->stage >= MXR_STAGE_COUNT_ ||
        (unsigned)o->cls >= MXR_CLASS_COUNT_)
        return MXR_ACTION_CONTINUE;
    if (!a->in_session)
        return a->done ? final_action(a) : MXR_ACTION_CONTINUE;
    bool ok = o->cls == MXR_CLASS_OK;
    /* RCPT phase over with some recipient accepted: DATA follows. */
    if (ok && o->stage == MXR_STAGE_RCPT && any_accepted(a))
        return MXR_ACTION_CONTINUE;
    /* Progress reports (a greeting, 250 to MAIL, 354 to DATA) end nothing:
     * only end-of-data decides delivery. */
    if (ok && o->stage != MXR_STAGE_RCPT && o->stage != MXR_STAGE_DOT)
        return MXR_ACTION_CONTINUE;
    a->in_session = false;
    if (o->stage > MXR_STAGE_CONNECT)
        a->sessions++;
    health_note(a, o);
    if (!ok)
        return on_failure(a, o);
    if (o->stage == MXR_STAGE_DOT)
        on_delivered(a, o);
    return move_on(a, a->rcpt_move);
}

/* -------------------------------------------------------- lifetime */

static mxr_status copy_recipients(mxr_attempt *a, const mxr_message *m)
{
    a->rcpts = mxr__calloc(&a->d->core->a, m->nrecipients ? m->nrecipients : 1,
                           sizeof *a->rcpts);
    if (!a->rcpts)
        return MXR_ENOMEM;
    for (size_t i = 0; i < m->nrecipients; i++, a->n++) {
        if (!m->recipients[i])
            return MXR_EINVAL;
        a->rcpts[i].pub.address = mxr__strdup(&a->d->core->a, m->recipients[i]);
        if (!a->rcpts[i].pub.address)
            return MXR_ENOMEM;
    }
    return MXR_OK;
}

static void retry_params(mxr__retry_params *p, const mxr_rules *r)
{
    p->min_s = (uint32_t)r->v[MXR_RULE_RETRY_MIN_S];
    p->max_s = (uint32_t)r->v[MXR_RULE_RETRY_MAX_S];
    p->factor_pct = (uint32_t)r->v[MXR_RULE_RETRY_FACTOR_PCT];
    p->jitter_pct = (uint32_t)r->v[MXR_RULE_RETRY_JITTER_PCT];
    p->max_age_s = (uint32_t)r->v[MXR_RULE_MAX_AGE_S];
}

/* A plan without candidates (a failed route) still gives an attempt: its
 * recipients settle at once, deferred or bounced as the plan says. */
static void settle_failed_plan(mxr_attempt *a)
{
    const mxr_plan *p = a->plan;
    if (p->result == MXR_RESULT_OK && p->ncandidates > 0)
        return;
    a->last.code = 0;
    snprintf(a->last.text, sizeof a->last.text, "routing: %s (%s)",
             mxr_result_name(p->result), mxr_reason_name(p->reason));
    end_pending(a, p->result == MXR_RESULT_PERMFAIL ? MXR_ACTION_BOUNCE
                                                    : MXR_ACTION_DEFER);
}

mxr_status mxr__attempt_new(mxr__deliver *d, const mxr_plan *plan,
                            const mxr_message *msg, mxr_attempt **out)
{
    if (!plan || !msg || !out || msg->nrecipients == 0 || !msg->recipients)
        return MXR_EINVAL;
    mxr__alloc *al = &d->core->a;
    uint64_t now = mxr__core_now(d->core);
    mxr_attempt *a = mxr__calloc(al, 1, sizeof *a);
    if (!a)
        return MXR_ENOMEM;
    a->d = d;
    a->rules =
        mxr__rules_for(d->rules, d->nrules, &d->default_rules, plan->domain);
    retry_params(&a->retry, a->rules);
    a->first_ms = msg->first_attempt_ms ? msg->first_attempt_ms : now;
    a->attempts = msg->attempts;
    a->rcpt_move = MXR_ACTION_NEXT_HOST;
    mxr_status st = copy_recipients(a, msg);
    if (st == MXR_OK &&
        !(a->sender = mxr__strdup(al, msg->sender ? msg->sender : "")))
        st = MXR_ENOMEM;
    if (st == MXR_OK &&
        !(a->plan = mxr__plan_clone(plan, mxr__alloc_counted, al)))
        st = MXR_ENOMEM;
    if (st != MXR_OK) {
        mxr_attempt_free(a);
        return st;
    }
    mxr__health_reorder(d->health, a->plan, now);
    settle_failed_plan(a);
    *out = a;
    return MXR_OK;
}

void mxr_attempt_free(mxr_attempt *a)
{
    if (!a)
        return;
    mxr__alloc *al = &a->d->core->a;
    for (size_t i = 0; i < a->n; i++)
        mxr__free(al, (void *)a->rcpts[i].pub.address);
    mxr__free(al, a->rcpts);
    mxr__free(al, a->sender);
    mxr_plan_free(a->plan);
    mxr__free(al, a);
}

size_t mxr_attempt_nrecipients(const mxr_attempt *a)
{
    return a ? a->n : 0;
}

const mxr_rcpt *mxr_attempt_recipient(const mxr_attempt *a, size_t i)
{
    return a && i < a->n ? &a->rcpts[i].pub : NULL;
}

const mxr_plan *mxr_attempt_plan(const mxr_attempt *a)
{
    return a ? a->plan : NULL;
}

bool mxr_attempt_done(const mxr_attempt *a)
{
    return a && a->done;
}

mxr_action mxr_attempt_verdict(const mxr_attempt *a)
{
    return a && a->done ? final_action(a) : MXR_ACTION_CONTINUE;
}

const char *mxr_rcpt_state_name(mxr_rcpt_state s)
{
    static const char *const words[] = {"pending", "delivered", "bounced",
                                        "deferred"};
    return (unsigned)s < sizeof words / sizeof *words ? words[s] : "unknown";
}

const char *mxr__attempt_sender(const mxr_attempt *a)
{
    return a->sender;
}

mxr__deliver *mxr__attempt_deliver(const mxr_attempt *a)
{
    return a->d;
}

/* ---------------------------------------------------- the shared part */

mxr_status mxr__deliver_init(mxr__deliver *d, mxr__core *core,
                             mxr__policies *const *policies, mxr__rng *rng,
                             mxr__smtp_pool *smtp,
                             const mxr__deliver_config *cfg)
{
    *d = (mxr__deliver){.core = core,
                        .policies = policies,
                        .rng = rng,
                        .smtp = smtp,
                        .tls = cfg->tls,
                        .default_rules = *cfg->default_rules};
    mxr__list_init(&d->sends);
    d->rules = mxr__calloc(&core->a, cfg->nrules + 1, sizeof *d->rules);
    if (!d->rules)
        return MXR_ENOMEM;
    for (size_t i = 0; i < cfg->nrules; i++, d->nrules++) {
        d->rules[i].rules = cfg->rules[i].rules;
        if (!(d->rules[i].domain = mxr__strdup(&core->a, cfg->rules[i].domain)))
            return MXR_ENOMEM;
    }
    const int64_t *v = cfg->default_rules->v;
    mxr__health_params hp = {
        .base_s = (uint32_t)v[MXR_RULE_HEALTH_BASE_S],
        .max_s = (uint32_t)v[MXR_RULE_HEALTH_MAX_S],
        .max_bytes = cfg->health_max_bytes,
    };
    d->health = mxr__health_new(&core->a, &hp);
    return d->health ? MXR_OK : MXR_ENOMEM;
}

void mxr__deliver_free(mxr__deliver *d)
{
    if (!d->core)
        return;
    for (size_t i = 0; i < d->nrules; i++)
        mxr__free(&d->core->a, d->rules[i].domain);
    mxr__free(&d->core->a, d->rules);
    mxr__health_free(d->health);
}
