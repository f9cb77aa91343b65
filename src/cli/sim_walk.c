/* sim_walk.c -- one delivery attempt walked against scripted outcomes:
 * a fake SMTP session per hop (connect, greeting, EHLO, STARTTLS when
 * scripted or required, MAIL, RCPT per recipient, DATA, end-of-data),
 * each stage reported to the failover machine. Shared by `mxroute
 * simulate` and `mxroute test`. */
#include "cli.h"
#include "simulate.h"

#include <stdint.h>
#include <stdlib.h>

#define SIM_MAX_HOPS 100000 /* guard: a machine that never ends is a bug */

static bool is_connection_class(mxr_class c)
{
    return c == MXR_CLASS_REFUSED || c == MXR_CLASS_TIMEOUT ||
           c == MXR_CLASS_UNREACHABLE || c == MXR_CLASS_RESET ||
           c == MXR_CLASS_421;
}

static sim_reply reply_at(sim_session *ss, mxr_stage stage, size_t rcpt)
{
    sim_where w = {.round_ms = ss->r->at_ms, .hop = &ss->hop, .stage = stage};
    if (stage == MXR_STAGE_RCPT && rcpt != SIZE_MAX) {
        w.rcpt = mxr_attempt_recipient(ss->a, rcpt)->address;
        w.rcpt_index = (ss->map ? ss->map[rcpt] : rcpt) + 1;
    }
    return sim_reply_for(ss->specs, ss->nspecs, &w);
}

static void record(sim_session *ss, mxr_stage stage, const sim_reply *rep,
                   const char *rcpt, mxr_action act)
{
    sim_round *r = ss->r;
    if (r->nsteps == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        sim_step *grown = realloc(r->steps, cap * sizeof *grown);
        if (!grown) {
            ss->oom = true;
            return;
        }
        r->steps = grown;
        r->cap = cap;
    }
    sim_step *st = &r->steps[r->nsteps++];
    *st = (sim_step){.session = ss->hop.number,
                     .host = ss->hop.host,
                     .preference = ss->hop.preference,
                     .cooling_down = ss->hop.host_down,
                     .stage = stage,
                     .no_reply = rep == NULL,
                     .rcpt = rcpt,
                     .action = act};
    snprintf(st->address, sizeof st->address, "%s", ss->address);
    if (rep)
        st->reply = *rep;
}

static mxr_outcome outcome_of(mxr_stage stage, const sim_reply *rep)
{
    return (mxr_outcome){.stage = stage,
                         .cls = rep->cls,
                         .code = rep->code,
                         .enhanced = rep->enhanced[0] ? rep->enhanced : NULL,
                         .text = rep->text};
}

/* Tell the machine how a stage went. Successes before RCPT are progress
 * reports it acknowledges with "continue"; a failure ends the session. */
static mxr_action report(sim_session *ss, mxr_stage stage, const sim_reply *rep,
                         bool *ended)
{
    mxr_outcome o = outcome_of(stage, rep);
    mxr_action act = mxr_attempt_outcome(ss->a, &o);
    record(ss, stage, rep, NULL, act);
    *ended = rep->cls != MXR_CLASS_OK;
    return act;
}

/* STARTTLS is only part of the script when the hop requires it or an
 * outcome is scripted for it: most simulations are about other stages. */
static bool tls_in_script(sim_session *ss)
{
    sim_where w = {
        .round_ms = ss->r->at_ms, .hop = &ss->hop, .stage = MXR_STAGE_TLS};
    return ss->hop.tls_required || sim_spec_match(ss->specs, ss->nspecs, &w);
}

/* connect .. MAIL, in protocol order: STARTTLS follows EHLO (RFC 3207),
 * whatever the order of the stage enum. Returns the action of the stage
 * that ended the session, or CONTINUE when all went well. */
static mxr_action opening(sim_session *ss, bool *ended)
{
    static const mxr_stage stages[] = {MXR_STAGE_CONNECT, MXR_STAGE_GREETING,
                                       MXR_STAGE_EHLO, MXR_STAGE_TLS,
                                       MXR_STAGE_MAIL};
    for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) {
        if (stages[i] == MXR_STAGE_TLS && !tls_in_script(ss))
            continue;
        sim_reply rep = reply_at(ss, stages[i], SIZE_MAX);
        mxr_action act = report(ss, stages[i], &rep, ended);
        if (*ended)
            return act;
    }
    return MXR_ACTION_CONTINUE;
}

/* One RCPT per recipient still pending. A connection-level result (421,
 * a timeout) ends the session for everyone; replies are per recipient.
 * The phase closes with an OK report at stage rcpt: the machine then goes
 * on to DATA when someone was accepted, or says where to go instead. */
static mxr_action rcpt_phase(sim_session *ss, bool *ended)
{
    size_t n = mxr_attempt_nrecipients(ss->a);
    for (size_t i = 0; i < n; i++) {
        const mxr_rcpt *rc = mxr_attempt_recipient(ss->a, i);
        if (rc->state != MXR_RCPT_PENDING)
            continue;
        sim_reply rep = reply_at(ss, MXR_STAGE_RCPT, i);
        mxr_outcome o = outcome_of(MXR_STAGE_RCPT, &rep);
        if (is_connection_class(rep.cls)) {
            mxr_action act = mxr_attempt_outcome(ss->a, &o);
            record(ss, MXR_STAGE_RCPT, &rep, rc->address, act);
            *ended = true;
            return act;
        }
        mxr_action act = mxr_attempt_rcpt(ss->a, i, &o);
        record(ss, MXR_STAGE_RCPT, &rep, rc->address, act);
    }
    sim_reply done = {.cls = MXR_CLASS_OK};
    mxr_outcome o = outcome_of(MXR_STAGE_RCPT, &done);
    mxr_action act = mxr_attempt_outcome(ss->a, &o);
    *ended = act != MXR_ACTION_CONTINUE;
    if (*ended)
        record(ss, MXR_STAGE_RCPT, NULL, NULL, act);
    return act;
}

/* DATA and end-of-data. A 354 is not reported: the machine takes "OK" as
 * the end of a session only at end-of-data, so it learns of DATA only
 * when DATA fails. */
static mxr_action transfer(sim_session *ss)
{
    bool ended;
    sim_reply rep = reply_at(ss, MXR_STAGE_DATA, SIZE_MAX);
    if (rep.cls != MXR_CLASS_OK)
        return report(ss, MXR_STAGE_DATA, &rep, &ended);
    record(ss, MXR_STAGE_DATA, &rep, NULL, MXR_ACTION_CONTINUE);
    rep = reply_at(ss, MXR_STAGE_DOT, SIZE_MAX);
    return report(ss, MXR_STAGE_DOT, &rep, &ended);
}

static mxr_action run_session(sim_session *ss)
{
    bool ended = false;
    mxr_action act = opening(ss, &ended);
    if (!ended)
        act = rcpt_phase(ss, &ended);
    return ended ? act : transfer(ss);
}

/* Hops until the machine says the attempt is over. */
int sim_walk(sim_session *ss)
{
    for (unsigned hops = 0; hops < SIM_MAX_HOPS; hops++) {
        if (mxr_attempt_done(ss->a))
            return ss->oom ? EXIT_SOFTWARE : 0;
        mxr_status st = mxr_attempt_next(ss->a, &ss->hop);
        if (st == MXR_EDONE)
            return ss->oom ? EXIT_SOFTWARE : 0;
        if (st != MXR_OK) {
            cli_error("mxr_attempt_next: %s", mxr_strerror(st));
            return EXIT_SOFTWARE;
        }
        mxr_addr_format(&ss->hop.addr, ss->address, sizeof ss->address);
        run_session(ss);
    }
    cli_error("the attempt did not end after %d hops", SIM_MAX_HOPS);
    return EXIT_SOFTWARE;
}
