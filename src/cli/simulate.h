/* simulate.h -- pieces of `mxroute simulate`: scripted outcomes (parsed
 * from --outcome specs and matched against hops) and the record of one
 * delivery round, printed as text or JSON. */
#ifndef MXR_CLI_SIMULATE_H
#define MXR_CLI_SIMULATE_H

#include "mxroute.h"

#include <stdio.h>

#define SIM_ENH_MAX 16 /* "5.1.1": class.subject(3).detail(3) + NUL */

/* ------------------------------------------------------------- outcomes */

/* What a server does at one stage: a connection-level result (code 0) or
 * an SMTP reply. */
typedef struct sim_reply {
    mxr_class cls;
    int code;                   /* 0: none (connection result, or "ok") */
    char enhanced[SIM_ENH_MAX]; /* "" when none */
    const char *text;           /* NULL when none */
} sim_reply;

typedef enum sim_target_kind {
    SIM_TARGET_ANY = 0, /* "*" */
    SIM_TARGET_HOST,
    SIM_TARGET_ADDR
} sim_target_kind;

/* One --outcome TARGET[:STAGE[:RCPT]]=RESULT, with an optional @T/ round
 * restriction. Strings point into `buf`, a copy of the spec. */
typedef struct sim_spec {
    const char *source; /* the spec as given (not copied) */
    char *buf;
    bool has_round;
    uint64_t round_ms; /* applies to the round at this time only */
    sim_target_kind kind;
    const char *host; /* lower case, no trailing dot */
    mxr_addr addr;
    mxr_stage stage;
    const char *rcpt_addr; /* RCPT restriction by address, or NULL */
    size_t rcpt_index;     /* ... or by 1-based index; 0 = none */
    sim_reply reply;
} sim_spec;

/* Parse spec into out; spec must outlive out. On error returns false with a
 * message in err. */
bool sim_spec_parse(const char *spec, sim_spec *out, char *err, size_t len);
void sim_spec_free(sim_spec *spec);

/* Where the machine is when it asks for a reply. */
typedef struct sim_where {
    uint64_t round_ms; /* simulated time of the round, from its start */
    const mxr_hop *hop;
    mxr_stage stage;
    const char *rcpt;  /* the recipient at stage rcpt, else NULL */
    size_t rcpt_index; /* its 1-based index in --to order, else 0 */
} sim_where;

/* The most specific spec that matches (a named host or address beats
 * "*", a named recipient beats all recipients, a round restriction beats
 * none; ties go to the spec given first), or NULL. */
const sim_spec *sim_spec_match(const sim_spec *specs, size_t n,
                               const sim_where *w);

/* The reply for w: the matching spec's, or success (220/250/354). */
sim_reply sim_reply_for(const sim_spec *specs, size_t n, const sim_where *w);

/* --------------------------------------------------------------- rounds */

/* One scripted step and what the machine made of it. */
typedef struct sim_step {
    unsigned session;
    const char *host; /* owned by the round's attempt */
    uint16_t preference;
    bool cooling_down;
    char address[MXR_ADDR_STRLEN];
    mxr_stage stage;
    bool no_reply; /* end of RCPT with no recipient accepted */
    sim_reply reply;
    const char *rcpt; /* the recipient at stage rcpt, else NULL */
    mxr_action action;
} sim_step;

/* One recipient across rounds. */
typedef struct sim_rcpt {
    char *address;
    mxr_rcpt_state state;
    int code;
    char enhanced[SIM_ENH_MAX];
    char *text;
    char *host;
    uint64_t retry_at_ms; /* from the start of the simulation */
    unsigned round;       /* the round that last decided it */
} sim_rcpt;

typedef struct sim_round {
    unsigned number; /* 1 for the first round run */
    uint64_t at_ms;  /* from the start of the simulation */
    const char *domain;
    const mxr_plan *plan; /* as the attempt ordered it (host health) */
    sim_step *steps;
    size_t nsteps, cap;
    mxr_action action; /* the round's verdict */
} sim_round;

/* One attempt walked against scripted outcomes (sim_walk.c). */
typedef struct sim_session {
    const sim_spec *specs;
    size_t nspecs;
    sim_round *r; /* steps are recorded here; r->at_ms is the round */
    mxr_attempt *a;
    const size_t *map; /* attempt recipient -> 0-based index for specs,
                          or NULL for the same index */
    mxr_hop hop;
    char address[MXR_ADDR_STRLEN];
    bool oom;
} sim_session;

/* Hops until the machine says the attempt is over: 0, or EXIT_SOFTWARE
 * (70) when memory ran out or the machine misbehaved. */
int sim_walk(sim_session *ss);

/* Output of one round (all recipients, settled earlier or now). */
void sim_print_round(FILE *out, bool json, const sim_round *r,
                     const sim_rcpt *rcpts, size_t n);
/* A round that did not run: nothing was due before due_ms. */
void sim_print_skipped(FILE *out, bool json, uint64_t at_ms, uint64_t due_ms);
/* Seconds for people: "300s", "331.234s". */
void sim_print_time(FILE *out, uint64_t ms);

/* ------------------------------------------------ the command's options */

#define SIM_MAX_ROUNDS 100 /* with --follow: retries are bounded */
#define SIM_MAX_RCPTS 1000
#define SIM_AT_MAX_S (10LL * 365 * 86400)
#define DEFAULT_FROM "sender@example.invalid"

typedef struct sim_args {
    const char *input; /* DOMAIN|ADDRESS, or NULL */
    const char *from;
    const char **to;
    size_t nto;
    sim_spec *specs;
    size_t nspecs;
    uint64_t *at_ms;
    size_t nat;
    bool follow, json;
} sim_args;

/* Parse simulate's options into o (engine), rules and a (simulate_args.c).
 * Returns 0, an exit code, or -1 after --help. */
int sim_parse_args(int argc, char **argv, mxr_options *o, mxr_rules *rules,
                   sim_args *a);
void sim_args_free(sim_args *a);

#endif
