/*
 * mxroute/failover.h -- delivery attempts along a plan: stages, classes
 * and actions, the failover and retry rules, hops, outcomes and the
 * state of each recipient.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * Lifetime: an attempt (mxr_attempt) lives inside its engine's memory.
 * Free every attempt before mxr_engine_destroy; the plan given to
 * mxr_attempt_new is copied and may be freed at once. Pointers read from
 * an attempt (hops, recipients, its plan) are valid until it is freed.
 *
 * Growth: mxr_hop is filled into caller memory through a size
 * (mxr_attempt_next_sized); mxr_rcpt is allocated by the library and may
 * gain fields at its end; mxr_message and mxr_outcome are read from
 * caller memory and are frozen for a soname.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_FAILOVER_H
#define MXROUTE_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mxroute/engine.h"
#include "mxroute/options.h"
#include "mxroute/plan.h"
#include "mxroute/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where an SMTP attempt ended, and how. Append-only: values never change
 * meaning; new values may be added at the end. */
typedef enum mxr_stage {
    MXR_STAGE_CONNECT = 0,
    MXR_STAGE_TLS,
    MXR_STAGE_GREETING,
    MXR_STAGE_EHLO,
    MXR_STAGE_MAIL,
    MXR_STAGE_RCPT,
    MXR_STAGE_DATA,
    MXR_STAGE_DOT /* the reply to end-of-data */
} mxr_stage;

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_class {
    MXR_CLASS_OK = 0, /* 2xx/3xx, or a connection that worked */
    MXR_CLASS_REFUSED,
    MXR_CLASS_TIMEOUT,
    MXR_CLASS_UNREACHABLE,
    MXR_CLASS_RESET,
    MXR_CLASS_4XX,
    MXR_CLASS_5XX,
    MXR_CLASS_421 /* service closing: always connection-level */
} mxr_class;

/* What to do next. Append-only: values never change meaning; new values may be
 * added at the end. */
typedef enum mxr_action {
    MXR_ACTION_CONTINUE = 0, /* go on with this session */
    MXR_ACTION_NEXT_ADDRESS, /* next address of this host, else next host */
    MXR_ACTION_NEXT_HOST,    /* next host, else defer */
    MXR_ACTION_DEFER,        /* stop; retry later (see retry_at_ms) */
    MXR_ACTION_BOUNCE,       /* stop; permanent failure */
    MXR_ACTION_DELIVERED     /* every recipient is final */
} mxr_action;

/* The words ("connect", "5xx", "next-host", ...); "unknown" for a value
 * this library does not know. */
MXR_EXTERN const char *mxr_stage_name(mxr_stage stage);
MXR_EXTERN const char *mxr_class_name(mxr_class cls);
MXR_EXTERN const char *mxr_action_name(mxr_action action);
/* Parse the words above; -1 if unknown. */
MXR_EXTERN int mxr_stage_parse(const char *word);
MXR_EXTERN int mxr_class_parse(const char *word);
MXR_EXTERN int mxr_action_parse(const char *word);
/* Refused, timeout, unreachable, reset or 421: about the connection, not
 * the message (report these with mxr_attempt_outcome, even during RCPT). */
MXR_EXTERN bool mxr_class_is_connection(mxr_class cls);
/* The class of an SMTP reply code (250 -> OK, 421 -> 421, 4xx, 5xx). */
MXR_EXTERN mxr_class mxr_class_of_code(int code);

/* Per-domain failover and retry rules. Start from the default decision
 * table (docs/failover.md, section 3) and override cells or numbers. */
typedef struct mxr_rules mxr_rules;

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_rule {
    MXR_RULE_MAX_ADDRESSES = 0, /* addresses tried per attempt (10) */
    MXR_RULE_MAX_SESSIONS,      /* SMTP sessions per attempt (5) */
    MXR_RULE_RETRY_MIN_S,       /* first retry delay (300) */
    MXR_RULE_RETRY_MAX_S,       /* longest retry delay (14400) */
    MXR_RULE_RETRY_FACTOR_PCT,  /* growth per attempt, percent (200) */
    MXR_RULE_RETRY_JITTER_PCT,  /* +- jitter, percent of the delay (10) */
    MXR_RULE_MAX_AGE_S,         /* bounce deferred mail older (432000) */
    MXR_RULE_HEALTH_BASE_S,     /* first cool-down of a failed host (60);
                                   host health is engine-wide: read from
                                   the default rules only */
    MXR_RULE_HEALTH_MAX_S       /* longest cool-down (3600); likewise */
} mxr_rule;

MXR_EXTERN mxr_status mxr_rules_new(mxr_rules **out);
MXR_EXTERN void mxr_rules_free(mxr_rules *rules);
MXR_EXTERN mxr_status mxr_rules_copy(const mxr_rules *from, mxr_rules **out);
/* Cells of class MXR_CLASS_OK are not consulted (success is progress).
 * A stage, class, action or rule this library does not know: the setters
 * return MXR_EINVAL, mxr_rules_action returns MXR_ACTION_NEXT_HOST and
 * mxr_rules_get -1. */
MXR_EXTERN mxr_status mxr_rules_set_action(mxr_rules *rules, mxr_stage stage,
                                           mxr_class cls, mxr_action action);
MXR_EXTERN mxr_action mxr_rules_action(const mxr_rules *rules, mxr_stage stage,
                                       mxr_class cls);
MXR_EXTERN mxr_status mxr_rules_set(mxr_rules *rules, mxr_rule rule,
                                    int64_t value);
MXR_EXTERN int64_t mxr_rules_get(const mxr_rules *rules, mxr_rule rule);
/* The "stay on this host and retry later" behaviour: 4xx at MAIL, RCPT,
 * DATA and end-of-data defer instead of moving to the next host. */
MXR_EXTERN void mxr_rules_stay_on_4xx(mxr_rules *rules);

/* Rules for a domain ("example.com", or ".example.com" for its
 * subdomains), or the default rules when domain is NULL. Copied. */
MXR_EXTERN mxr_status mxr_options_add_rules(mxr_options *opts,
                                            const char *domain,
                                            const mxr_rules *rules);

/* --------------------------------------------------------------- attempts */

/* Read from caller memory: frozen layout for a soname. */
typedef struct mxr_message {
    const char *sender;
    const char *const *recipients;
    size_t nrecipients;
    uint64_t first_attempt_ms; /* engine clock; 0 = now */
    unsigned attempts;         /* delivery attempts made before this one */
} mxr_message;

/* One delivery attempt of one message along one plan: hands out where to
 * connect next, takes outcomes, and keeps every recipient's state. */
typedef struct mxr_attempt mxr_attempt;

/* The plan is copied (and reordered by host health: hosts cooling down
 * move to the end, never out). At least one recipient. Free every attempt
 * before its engine. */
MXR_EXTERN mxr_status mxr_attempt_new(mxr_engine *engine, const mxr_plan *plan,
                                      const mxr_message *msg,
                                      mxr_attempt **out);
MXR_EXTERN void mxr_attempt_free(mxr_attempt *attempt);

/* Where to connect next. Size-versioned: fields may be added at the end
 * (never removed or moved); a field added later reads 0 (or NULL) from a
 * library that predates it. Filled by mxr_attempt_next. */
typedef struct mxr_hop {
    const char *host;
    uint16_t preference;
    uint16_t port;
    bool tls_required;
    bool host_down; /* cooling down: moved last, tried as a last resort */
    mxr_addr addr;
    size_t candidate;  /* index in the attempt's plan */
    unsigned number;   /* 1 for the first hop of the attempt */
    const char *label; /* the candidate's label (policies), or NULL */
} mxr_hop;

/* The next address to connect to, in plan order, skipping what the last
 * action ruled out. MXR_EDONE when the attempt is over. On MXR_OK it
 * fills the size bytes at out (size: the caller's sizeof(mxr_hop)) and
 * never more: the first min(size, the library's sizeof(mxr_hop)) bytes
 * with the hop, the rest of the size bytes with zeros. On any other
 * status out is untouched. MXR_EINVAL when attempt or out is NULL or
 * size is 0. Pointers in the hop are valid until the attempt is freed. */
MXR_EXTERN mxr_status mxr_attempt_next_sized(mxr_attempt *attempt, mxr_hop *out,
                                             size_t size);
/* mxr_attempt_next(attempt, &hop): the sized call with the size of the
 * mxr_hop this program was compiled with. */
#define mxr_attempt_next(attempt, out)                                         \
    mxr_attempt_next_sized((attempt), (out), sizeof(mxr_hop))

/* Read from caller memory: frozen layout for a soname. */
typedef struct mxr_outcome {
    mxr_stage stage;
    mxr_class cls;
    int code;             /* SMTP reply code, 0 when none */
    const char *enhanced; /* "4.7.1", or NULL */
    const char *text;     /* reply text or error, or NULL */
} mxr_outcome;

/* The RCPT reply (2xx, 4xx or 5xx) for recipient i in the current
 * session (a reply whose class this library does not know is ignored:
 * MXR_ACTION_CONTINUE, nothing recorded). A 5xx bounces that recipient (by
 * default); a 4xx leaves it for the next host. Returns the action for that
 * recipient. A 421, timeout or broken connection during RCPT ends the session:
 * report it with mxr_attempt_outcome. */
MXR_EXTERN mxr_action mxr_attempt_rcpt(mxr_attempt *attempt, size_t i,
                                       const mxr_outcome *reply);
/* How the current session went (an outcome whose stage or class this
 * library does not know is ignored: MXR_ACTION_CONTINUE). Class OK before
 * end-of-data is progress (CONTINUE), except {RCPT, OK}: the RCPT phase is
 * over, and when nobody was accepted the session ends. A failure ends the
 * session: at DATA and end-of-data it concerns only the recipients accepted at
 * RCPT. {DOT, OK} delivers them. Returns the action; DEFER, BOUNCE and
 * DELIVERED end the attempt (check each recipient: a DELIVERED attempt may have
 * bounces). */
MXR_EXTERN mxr_action mxr_attempt_outcome(mxr_attempt *attempt,
                                          const mxr_outcome *outcome);

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_rcpt_state {
    MXR_RCPT_PENDING = 0,
    MXR_RCPT_DELIVERED,
    MXR_RCPT_BOUNCED,
    MXR_RCPT_DEFERRED
} mxr_rcpt_state;

MXR_EXTERN const char *mxr_rcpt_state_name(mxr_rcpt_state state);

/* Allocated by the library (mxr_attempt_recipient): fields may be added
 * at the end. */
typedef struct mxr_rcpt {
    const char *address;
    mxr_rcpt_state state;
    int code;             /* the reply that decided it (0 if none) */
    const char *enhanced; /* or NULL */
    const char *text;     /* reply text, or why ("expired", ...) */
    const char *host;     /* the host that decided it, or NULL */
    uint64_t retry_at_ms; /* when deferred */
} mxr_rcpt;

MXR_EXTERN size_t mxr_attempt_nrecipients(const mxr_attempt *attempt);
MXR_EXTERN const mxr_rcpt *mxr_attempt_recipient(const mxr_attempt *attempt,
                                                 size_t i);
/* The plan as the attempt orders it (after host health). */
MXR_EXTERN const mxr_plan *mxr_attempt_plan(const mxr_attempt *attempt);
MXR_EXTERN bool mxr_attempt_done(const mxr_attempt *attempt);
/* The verdict of a finished attempt: DELIVERED (some recipient was
 * delivered and none waits), DEFER (some recipient is deferred) or BOUNCE;
 * CONTINUE while it is not done. */
MXR_EXTERN mxr_action mxr_attempt_verdict(const mxr_attempt *attempt);

/* ------------------------------------------------------- host health */

/* Outcomes learnt outside an attempt: a daemon whose MTA reports how a
 * connection went (mxroute serve's "outcome" request), or a program that
 * delivers on its own. A connection-level class (refused, timeout,
 * unreachable, reset, 421) puts the address and the host into their
 * cool-down, as mxr_attempt_outcome would; any other class clears them.
 * host and addr may each be NULL (not both). Later plans order hosts by
 * this memory (mxr_attempt_new). MXR_EBADNAME for a host that is not a
 * host name, MXR_EINVAL for a NULL outcome or neither host nor addr. */
MXR_EXTERN mxr_status mxr_engine_report(mxr_engine *engine, const char *host,
                                        const mxr_addr *addr,
                                        const mxr_outcome *outcome);

/* What the engine's host-health memory knows of a host (addr NULL) or of
 * one address (host NULL). Size-versioned like mxr_stats: the library
 * writes exactly size bytes (data that fits, then zeros); fields may be
 * added at the end. */
typedef struct mxr_health {
    bool down;                /* cooling down now */
    unsigned failures;        /* consecutive failures remembered */
    uint64_t down_until_ms;   /* engine clock; 0 if never failed */
    uint64_t last_failure_ms; /* engine clock; 0 if none */
} mxr_health;

MXR_EXTERN mxr_status mxr_engine_health_sized(mxr_engine *engine,
                                              const char *host,
                                              const mxr_addr *addr,
                                              mxr_health *out, size_t size);
#define mxr_engine_health(engine, host, addr, out)                             \
    mxr_engine_health_sized((engine), (host), (addr), (out), sizeof(mxr_health))

/* Reorder plan in place by the host-health memory, as mxr_attempt_new
 * orders its copy: hosts cooling down move to the end (never out), and
 * within each host addresses cooling down move after the others; hosts
 * cooling down carry MXR_NOTE_DOWN. For a program that hands plans to
 * another deliverer (mxroute serve answering Postfix or Exim) and learns
 * outcomes through mxr_engine_report. The plan must be one the caller owns
 * (from mxr_route or mxr_route_sync). MXR_EINVAL for a NULL
 * engine or plan. */
MXR_EXTERN mxr_status mxr_engine_order_by_health(mxr_engine *engine,
                                                 mxr_plan *plan);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_FAILOVER_H */
