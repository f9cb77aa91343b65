/* send.c -- mxr_send: the failover machine (attempt.c) driving real SMTP
 * sessions (smtp_session.c). The machine says where to connect; a session
 * runs there; every RCPT reply and the way the session ended go back to
 * the machine, which decides what comes next. Nothing here second-guesses
 * the machine: the rules table and the policies' outcome hooks decide. */
#include "deliver/deliver.h"
#include "smtp/data.h"
#include "base/text.h"

#include <string.h>

#define PATH_MAX_OCTETS 254 /* RFC 5321 4.5.3.1.3: 256 with the brackets */

/* An RCPT reply kept beyond its event, strings included. */
typedef struct kept_reply {
    mxr_outcome o;
    char enhanced[16];
    char text[512];
} kept_reply;

typedef struct mxr__send mxr__send;
struct mxr__send {
    mxr__deliver *d;
    mxr__link link;   /* in d->sends */
    mxr__task starts; /* the first hop starts from the next round */
    mxr_attempt *at;
    unsigned flags;
    mxr_send_event_fn on_event;
    mxr_send_done_fn on_done;
    void *arg;
    char *wire; /* the message as sent after DATA, or NULL (probe) */
    size_t wire_len;
    bool body_8bit, need_smtputf8;
    mxr_hop hop;
    mxr__smtp *session;
    /* The session's last RCPT acceptance and refusal: a session that ends
     * right after RCPT (nobody accepted, or a probe) is reported with
     * the one that decided it. */
    kept_reply last_ok, last_refused;
    const char **rcpts; /* this session's recipients ... */
    size_t *ids;        /* ... and their index in the attempt */
    size_t nrcpts;
};

/* ------------------------------------------------------------ checking */

/* An address goes into a command line: no control characters (CR or LF
 * would inject commands), and within the RFC 5321 path length. */
static bool address_ok(const char *s, bool *non_ascii)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        if (*p > 0x7f)
            *non_ascii = true;
    }
    return n <= PATH_MAX_OCTETS;
}

static mxr_status check_addresses(mxr__core *core, mxr_attempt *at,
                                  bool *non_ascii)
{
    if (!address_ok(mxr__attempt_sender(at), non_ascii)) {
        mxr__core_error(core,
                        "sender address has control characters or is "
                        "over %d octets",
                        PATH_MAX_OCTETS);
        return MXR_EINVAL;
    }
    for (size_t i = 0; i < mxr_attempt_nrecipients(at); i++) {
        const char *r = mxr_attempt_recipient(at, i)->address;
        if (!address_ok(r, non_ascii)) {
            mxr__core_error(core,
                            "recipient %zu has control characters or is "
                            "over %d octets",
                            i + 1, PATH_MAX_OCTETS);
            return MXR_EINVAL;
        }
    }
    return MXR_OK;
}

/* ------------------------------------------------------------ lifetime */

static void send_free(mxr__send *s)
{
    mxr__alloc *a = &s->d->core->a;
    mxr__free(a, s->wire);
    mxr__free(a, s->rcpts);
    mxr__free(a, s->ids);
    mxr__free(a, s);
}

/* The one exit: the done callback fires exactly once. */
static void complete(mxr__send *s, mxr_status status)
{
    mxr__smtp_cancel(s->session);
    s->session = NULL;
    mxr__list_remove(&s->link);
    mxr__core_request_end(s->d->core);
    mxr_send_done_fn done = s->on_done;
    void *arg = s->arg;
    mxr_attempt *at = s->at;
    send_free(s);
    done(arg, status, at);
}

/* ----------------------------------------------------------- the walk */

static void emit(mxr__send *s, const mxr_send_event *ev)
{
    if (s->on_event)
        s->on_event(s->arg, ev);
}

static void next_hop(mxr__send *s);

static void keep(kept_reply *k, const mxr_outcome *reply)
{
    k->o = *reply;
    mxr__copy_text(k->enhanced, sizeof k->enhanced, reply->enhanced);
    mxr__copy_text(k->text, sizeof k->text, reply->text);
    k->o.enhanced = reply->enhanced ? k->enhanced : NULL;
    k->o.text = reply->text ? k->text : NULL;
}

static void on_rcpt(void *ud, size_t i, const mxr_outcome *reply)
{
    mxr__send *s = ud;
    keep(reply->cls == MXR_CLASS_OK ? &s->last_ok : &s->last_refused, reply);
    mxr_action act = mxr_attempt_rcpt(s->at, s->ids[i], reply);
    mxr_send_event ev = {.kind = MXR_SEND_EVENT_RCPT,
                         .hop = &s->hop,
                         .rcpt = s->ids[i],
                         .outcome = reply,
                         .action = act};
    emit(s, &ev);
}

static void on_end(void *ud, const mxr_outcome *o, bool tls, size_t accepted)
{
    mxr__send *s = ud;
    s->session = NULL; /* it closes on its own */
    mxr_outcome told = *o;
    /* A probe stops where DATA would start: what the host accepted counts
     * as taken, so the walk continues exactly as a delivery would. The
     * outcome's code stays 0 (no reply of its own): each recipient keeps
     * the RCPT reply that accepted it. */
    if ((s->flags & MXR_SEND_PROBE) && o->stage == MXR_STAGE_RCPT &&
        o->cls == MXR_CLASS_OK && accepted > 0)
        told.stage = MXR_STAGE_DOT;
    mxr_action act = mxr_attempt_outcome(s->at, &told);
    /* Ended right after RCPT: the last acceptance (a probe) or the last
     * refusal (nobody accepted) says more than "RCPT phase over". */
    bool after_rcpt = o->stage == MXR_STAGE_RCPT && o->cls == MXR_CLASS_OK;
    const kept_reply *k = accepted > 0 ? &s->last_ok : &s->last_refused;
    mxr_send_event ev = {.kind = MXR_SEND_EVENT_SESSION,
                         .hop = &s->hop,
                         .tls = tls,
                         .outcome = after_rcpt && k->o.code ? &k->o : o,
                         .action = act,
                         .accepted = accepted};
    emit(s, &ev);
    if (mxr_attempt_done(s->at))
        complete(s, MXR_OK);
    else
        next_hop(s);
}

/* The recipients still pending go to this hop. */
static void collect_pending(mxr__send *s)
{
    s->nrcpts = 0;
    for (size_t i = 0; i < mxr_attempt_nrecipients(s->at); i++) {
        const mxr_rcpt *r = mxr_attempt_recipient(s->at, i);
        if (r->state != MXR_RCPT_PENDING)
            continue;
        s->rcpts[s->nrcpts] = r->address;
        s->ids[s->nrcpts++] = i;
    }
}

static mxr_tls_mode hop_tls(const mxr__send *s)
{
    mxr_tls_mode m = s->d->tls;
    if (s->hop.tls_required &&
        (m == MXR_TLS_OPPORTUNISTIC || m == MXR_TLS_NONE))
        return MXR_TLS_REQUIRED; /* the plan asks for it */
    return m;
}

static void next_hop(mxr__send *s)
{
    static const mxr__smtp_events events = {on_rcpt, on_end, NULL};
    while (mxr_attempt_next(s->at, &s->hop) == MXR_OK) {
        collect_pending(s);
        s->last_ok.o.code = s->last_refused.o.code = 0; /* none yet */
        mxr__smtp_job job = {.host = s->hop.host,
                             .sender = mxr__attempt_sender(s->at),
                             .rcpts = s->rcpts,
                             .nrcpts = s->nrcpts,
                             .wire = s->wire,
                             .wire_len = s->wire_len,
                             .body_8bit = s->body_8bit,
                             .need_smtputf8 = s->need_smtputf8,
                             .tls = hop_tls(s)};
        mxr__smtp_events ev = events;
        ev.ud = s;
        s->session =
            mxr__smtp_start(s->d->smtp, &s->hop.addr, s->hop.port, &job, &ev);
        if (s->session)
            return;
        mxr_outcome o = {MXR_STAGE_CONNECT, MXR_CLASS_UNREACHABLE, 0, NULL,
                         "out of memory"};
        mxr_attempt_outcome(s->at, &o);
    }
    complete(s, MXR_OK);
}

static void start(mxr__task *t)
{
    mxr__send *s = mxr__container_of(t, mxr__send, starts);
    if (s->d->core->destroying)
        return; /* mxr__send_abort_all completes it */
    if (mxr_attempt_done(s->at))
        complete(s, MXR_OK);
    else
        next_hop(s);
}

/* ---------------------------------------------------------- the API */

static mxr_status prepare(mxr__send *s, const char *msg, size_t len)
{
    mxr__alloc *a = &s->d->core->a;
    size_t n = mxr_attempt_nrecipients(s->at);
    s->rcpts = mxr__calloc(a, n, sizeof *s->rcpts);
    s->ids = mxr__calloc(a, n, sizeof *s->ids);
    if (!s->rcpts || !s->ids)
        return MXR_ENOMEM;
    if (s->flags & MXR_SEND_PROBE)
        return MXR_OK;
    s->wire_len = mxr__data_encoded_len(msg ? msg : "", len);
    s->wire = mxr__malloc(a, s->wire_len);
    if (!s->wire)
        return MXR_ENOMEM;
    mxr__data_encode(msg ? msg : "", len, s->wire);
    s->body_8bit = msg && mxr__data_is_8bit(msg, len);
    return MXR_OK;
}

mxr_status mxr__send_start(mxr__deliver *d, mxr_attempt *at, const char *msg,
                           size_t len, unsigned flags,
                           mxr_send_event_fn on_event, mxr_send_done_fn on_done,
                           void *arg)
{
    if (!at || !on_done || (!msg && len > 0) || (flags & ~MXR_SEND_PROBE) ||
        mxr__attempt_deliver(at) != d)
        return MXR_EINVAL;
    if (d->core->destroying)
        return MXR_EDESTROYED;
    bool non_ascii = false;
    mxr_status st = check_addresses(d->core, at, &non_ascii);
    if (st != MXR_OK)
        return st;
    mxr__send *s = mxr__calloc(&d->core->a, 1, sizeof *s);
    if (!s)
        return MXR_ENOMEM;
    *s = (mxr__send){.d = d,
                     .at = at,
                     .flags = flags,
                     .on_event = on_event,
                     .on_done = on_done,
                     .arg = arg,
                     .need_smtputf8 = non_ascii};
    if ((st = prepare(s, msg, len)) != MXR_OK) {
        send_free(s);
        return st;
    }
    mxr__list_push_front(&d->sends, &s->link);
    mxr__core_request_begin(d->core);
    mxr__core_defer(d->core, &s->starts, start);
    return MXR_OK;
}

void mxr__send_abort_all(mxr__deliver *d)
{
    while (!mxr__list_empty(&d->sends))
        complete(mxr__list_entry(d->sends.next, mxr__send, link),
                 MXR_EDESTROYED);
}
