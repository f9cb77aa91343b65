/* relay.c -- how a relay delivers one message with libmxroute.
 *
 * Routes the first recipient's domain (through a Lua policy if one is
 * given), then walks the failover machine: for each hop the attempt hands
 * out, it runs one SMTP session and reports every step; the attempt says
 * what to do next and keeps the state of every recipient. The SMTP
 * session is fake: each server answers what an outcomes file says, and
 * accepts everything else. Nothing is sent on the network (with --zone,
 * not even DNS).
 *
 *   relay --from ADDR --to ADDR [--to ADDR]... [--outcomes FILE]
 *         [--policy FILE [--policy-config LUA]]... [--seed N]
 *         [--zone FILE]... [--server IP[:PORT]]...
 *
 * The outcomes file, one line per scripted reply ('#' starts a comment):
 *
 *   HOST[:STAGE[:RCPT]]=RESULT
 *
 *   mx1.example.com=refused             connection refused
 *   mx2.example.com:mail=451/4.7.1/Greylisted
 *   mx2.example.com:rcpt=451            every RCPT TO at mx2
 *   mx2.example.com:rcpt:bob@example.com=550/5.1.1/No such user
 *   *:ehlo=421                          any host
 *
 * STAGE is connect (the default), greeting, ehlo, tls, mail, rcpt, data
 * or dot; RESULT a class word (ok, refused, timeout, unreachable, reset)
 * or a reply CODE[/ENHANCED[/TEXT]]. The most specific line wins: a named
 * host over "*", a named recipient over none. STARTTLS is part of the
 * session only when the hop requires TLS (a policy's "tls = true").
 *
 * Exit status: 0 every recipient delivered, 75 some deferred (queue them
 * for their retry time), 68 otherwise (some bounced: send a DSN); 64
 * usage, 66 outcomes file unreadable, 70 internal error.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L /* strcasecmp, getline */

#include <mxroute.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_RCPTS 64
#define MAX_LINES 256

/* ------------------------------------------------- the fake SMTP servers */

/* One line of the outcomes file. */
typedef struct scripted {
    char host[256]; /* lower case, or "*" */
    mxr_stage stage;
    char rcpt[256]; /* "" for every recipient */
    mxr_class cls;
    int code; /* 0 for a class word */
    char enhanced[16];
    char text[256];
} scripted;

static scripted script[MAX_LINES];
static size_t nscript;

/* "451/4.7.1/Greylisted" or a class word into s. */
static bool parse_result(char *word, scripted *s)
{
    int cls = mxr_class_parse(word);
    if (cls >= 0 && !isdigit((unsigned char)word[0])) {
        s->cls = (mxr_class)cls;
        return true;
    }
    char *enh = strchr(word, '/'), *text = NULL;
    if (enh) {
        *enh++ = '\0';
        if ((text = strchr(enh, '/')))
            *text++ = '\0';
    }
    char *end;
    long code = strtol(word, &end, 10);
    if (*end || code < 200 || code > 599)
        return false;
    s->code = (int)code;
    s->cls = mxr_class_of_code(s->code);
    snprintf(s->enhanced, sizeof s->enhanced, "%s", enh ? enh : "");
    snprintf(s->text, sizeof s->text, "%s", text ? text : "");
    return true;
}

/* HOST[:STAGE[:RCPT]]=RESULT */
static bool parse_line(char *line, scripted *s)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return false;
    *eq = '\0';
    memset(s, 0, sizeof *s);
    s->stage = MXR_STAGE_CONNECT;
    char *stage = strchr(line, ':'), *rcpt = NULL;
    if (stage) {
        *stage++ = '\0';
        if ((rcpt = strchr(stage, ':')))
            *rcpt++ = '\0';
        int st = mxr_stage_parse(stage);
        if (st < 0 || (rcpt && st != MXR_STAGE_RCPT))
            return false;
        s->stage = (mxr_stage)st;
    }
    if (!*line || strlen(line) >= sizeof s->host)
        return false;
    for (char *c = line; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    snprintf(s->host, sizeof s->host, "%s", line);
    snprintf(s->rcpt, sizeof s->rcpt, "%s", rcpt ? rcpt : "");
    return parse_result(eq + 1, s);
}

static int load_outcomes(const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rc = 0;

    if (!f) {
        perror(path);
        return 66;
    }
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = line, *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        s += strspn(s, " \t");
        size_t len = strlen(s); /* trailing blanks; the text keeps its own */
        while (len > 0 && strchr(" \t\r\n", s[len - 1]))
            s[--len] = '\0';
        if (!*s)
            continue;
        if (nscript == MAX_LINES || !parse_line(s, &script[nscript])) {
            fprintf(stderr, "%s:%u: expected HOST[:STAGE[:RCPT]]=RESULT\n",
                    path, lineno);
            rc = 64;
        } else {
            nscript++;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* What the server of hop answers at stage (rcpt: the recipient at stage
 * RCPT, else NULL). Without a scripted line, the usual success. */
static mxr_outcome server_reply(const mxr_hop *hop, mxr_stage stage,
                                const char *rcpt)
{
    /* Sized by its initialisers: the stage enum is append-only and has
     * no count, so a stage this program does not know gets code 0. */
    static const int success[] = {
        [MXR_STAGE_CONNECT] = 0,    [MXR_STAGE_TLS] = 220,
        [MXR_STAGE_GREETING] = 220, [MXR_STAGE_EHLO] = 250,
        [MXR_STAGE_MAIL] = 250,     [MXR_STAGE_RCPT] = 250,
        [MXR_STAGE_DATA] = 354,     [MXR_STAGE_DOT] = 250};
    int ok_code =
        (size_t)stage < sizeof success / sizeof *success ? success[stage] : 0;
    const scripted *best = NULL;
    int best_score = -1;

    for (size_t i = 0; i < nscript; i++) {
        const scripted *s = &script[i];
        bool any_host = strcmp(s->host, "*") == 0;
        if (s->stage != stage ||
            (!any_host && strcasecmp(s->host, hop->host) != 0) ||
            (s->rcpt[0] && (!rcpt || strcasecmp(s->rcpt, rcpt) != 0)))
            continue;
        int score = (any_host ? 0 : 2) + (s->rcpt[0] ? 1 : 0);
        if (score > best_score) {
            best = s;
            best_score = score;
        }
    }
    if (!best)
        return (mxr_outcome){
            .stage = stage, .cls = MXR_CLASS_OK, .code = ok_code};
    return (mxr_outcome){.stage = stage,
                         .cls = best->cls,
                         .code = best->code,
                         .enhanced = best->enhanced[0] ? best->enhanced : NULL,
                         .text = best->text[0] ? best->text : NULL};
}

/* ------------------------------------------------------ one SMTP session */

static void print_step(const mxr_outcome *o, const char *rcpt, mxr_action act)
{
    printf("    %-8s ", mxr_stage_name(o->stage));
    if (o->code)
        printf("%d", o->code);
    else
        printf("%s", mxr_class_name(o->cls));
    if (o->enhanced)
        printf(" %s", o->enhanced);
    if (o->text)
        printf(" %s", o->text);
    if (rcpt)
        printf(" <%s>", rcpt);
    printf(" -> %s\n", mxr_action_name(act));
}

/* Report one step that is not a recipient's reply. Returns true while the
 * session goes on: any failure ends it (a real client would send QUIT if
 * the connection is still up). */
static bool step(mxr_attempt *a, const mxr_outcome *o, mxr_action *act)
{
    *act = mxr_attempt_outcome(a, o);
    print_step(o, NULL, *act);
    return o->cls == MXR_CLASS_OK;
}

static bool connection_level(mxr_class cls)
{
    return cls == MXR_CLASS_REFUSED || cls == MXR_CLASS_TIMEOUT ||
           cls == MXR_CLASS_UNREACHABLE || cls == MXR_CLASS_RESET ||
           cls == MXR_CLASS_421;
}

/* One session at one hop, in protocol order. Returns the last action. */
static mxr_action session(mxr_attempt *a, const mxr_hop *hop)
{
    mxr_action act = MXR_ACTION_CONTINUE;
    mxr_outcome o;

    /* connect, greeting, EHLO, STARTTLS (RFC 3207: after EHLO), MAIL. */
    const mxr_stage opening[] = {MXR_STAGE_CONNECT, MXR_STAGE_GREETING,
                                 MXR_STAGE_EHLO, MXR_STAGE_TLS, MXR_STAGE_MAIL};
    for (size_t s = 0; s < sizeof opening / sizeof *opening; s++) {
        if (opening[s] == MXR_STAGE_TLS && !hop->tls_required)
            continue;
        o = server_reply(hop, opening[s], NULL);
        if (!step(a, &o, &act))
            return act;
    }

    /* One RCPT TO per recipient still pending (some may have bounced at
     * an earlier hop, or been accepted and delivered there). */
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        const mxr_rcpt *r = mxr_attempt_recipient(a, i);
        if (r->state != MXR_RCPT_PENDING)
            continue;
        o = server_reply(hop, MXR_STAGE_RCPT, r->address);
        if (connection_level(o.cls)) {
            /* 421 or a lost connection: the session is over for all. */
            step(a, &o, &act);
            return act;
        }
        act = mxr_attempt_rcpt(a, i, &o);
        print_step(&o, r->address, act);
    }
    /* Close the RCPT phase: CONTINUE when somebody was accepted. */
    o = (mxr_outcome){.stage = MXR_STAGE_RCPT, .cls = MXR_CLASS_OK};
    act = mxr_attempt_outcome(a, &o);
    if (act != MXR_ACTION_CONTINUE) {
        printf("    rcpt     nobody accepted -> %s\n", mxr_action_name(act));
        return act;
    }

    /* DATA (354 is progress), the message, then the end-of-data reply,
     * which delivers the recipients accepted in this session. */
    o = server_reply(hop, MXR_STAGE_DATA, NULL);
    if (!step(a, &o, &act))
        return act;
    o = server_reply(hop, MXR_STAGE_DOT, NULL);
    step(a, &o, &act);
    return act;
}

/* ------------------------------------------------------------ the relay */

static void print_plan(const mxr_plan *plan)
{
    char buf[MXR_ADDR_STRLEN];

    printf("plan for %s: %s", plan->domain, mxr_result_name(plan->result));
    if (plan->result != MXR_RESULT_OK)
        printf(" (%s)", mxr_reason_name(plan->reason));
    printf("\n");
    for (size_t i = 0; i < plan->ncandidates; i++) {
        const mxr_candidate *c = &plan->candidates[i];
        printf("  %5u %s port %u", (unsigned)c->preference, c->host,
               (unsigned)c->port);
        if (c->source != MXR_SOURCE_MX)
            printf(" [%s]", mxr_source_name(c->source));
        if (c->label)
            printf(" label %s", c->label);
        if (c->tls_required)
            printf(" tls");
        printf(":");
        for (size_t k = 0; k < c->naddrs; k++)
            printf(" %s", mxr_addr_format(&c->addrs[k], buf, sizeof buf));
        printf("\n");
    }
    for (size_t i = 0; i < plan->nskipped; i++)
        printf("  skipped %s: %s\n", plan->skipped[i].host,
               mxr_reason_name(plan->skipped[i].reason));
}

/* Messages from policies (print(), errors with script:line). */
static void on_log(void *ud, int level, const char *message)
{
    static const char *const levels[] = {"info", "warning", "error"};
    (void)ud;
    fprintf(stderr, "relay: policy %s: %s\n",
            levels[level >= 0 && level <= 2 ? level : 2], message);
}

static int usage(void)
{
    fprintf(stderr, "usage: relay --from ADDR --to ADDR [--to ADDR]... "
                    "[--outcomes FILE]\n"
                    "             [--policy FILE [--policy-config LUA]]... "
                    "[--seed N]\n"
                    "             [--zone FILE]... [--server IP[:PORT]]...\n");
    return 64;
}

static const char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : address;
}

int main(int argc, char **argv)
{
    const char *from = NULL, *to[MAX_RCPTS];
    size_t nto = 0;
    mxr_options *opts;
    mxr_engine *engine;
    mxr_status st = MXR_OK;
    int rc;

    if (mxr_options_new(&opts) != MXR_OK)
        return 70;
    mxr_options_set_log(opts, on_log, NULL);
    for (int i = 1; i < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (!val) {
            mxr_options_free(opts);
            return usage();
        }
        if (strcmp(opt, "--from") == 0) {
            from = val;
        } else if (strcmp(opt, "--to") == 0) {
            if (nto == MAX_RCPTS) {
                fprintf(stderr, "relay: at most %d recipients\n", MAX_RCPTS);
                mxr_options_free(opts);
                return 64;
            }
            to[nto++] = val;
        } else if (strcmp(opt, "--outcomes") == 0) {
            if ((rc = load_outcomes(val)) != 0) {
                mxr_options_free(opts);
                return rc;
            }
        } else if (strcmp(opt, "--policy") == 0)
            st = mxr_options_add_policy(opts, val, NULL);
        else if (strcmp(opt, "--policy-config") == 0)
            st = mxr_options_set_policy_config(opts, val);
        else if (strcmp(opt, "--seed") == 0)
            st = mxr_options_set(opts, MXR_OPT_SEED, atoll(val));
        else if (strcmp(opt, "--zone") == 0)
            st = mxr_options_add_zone_file(opts, val);
        else if (strcmp(opt, "--server") == 0)
            st = mxr_options_add_server(opts, val);
        else {
            mxr_options_free(opts);
            return usage();
        }
        if (st != MXR_OK) {
            fprintf(stderr, "relay: %s %s: %s\n", opt, val,
                    mxr_options_errmsg(opts));
            mxr_options_free(opts);
            return 64;
        }
    }
    if (!from || nto == 0) {
        mxr_options_free(opts);
        return usage();
    }

    /* Policies are loaded (and checked) here. */
    st = mxr_engine_new(opts, &engine);
    if (st != MXR_OK) {
        fprintf(stderr, "relay: %s: %s\n", mxr_strerror(st),
                mxr_options_errmsg(opts));
        mxr_options_free(opts);
        return st == MXR_EPOLICY ? 64 : 70;
    }
    mxr_options_free(opts);

    /* 1. Route. One attempt is for the recipients of one domain: a real
     *    relay groups its recipients by domain and routes each group. */
    for (size_t i = 1; i < nto; i++)
        if (strcasecmp(domain_of(to[i]), domain_of(to[0])) != 0)
            fprintf(stderr,
                    "relay: warning: %s is not at %s; sent along "
                    "the same plan all the same\n",
                    to[i], domain_of(to[0]));
    mxr_plan *plan;
    st = mxr_route_sync(engine, to[0], &plan);
    if (st != MXR_OK) {
        fprintf(stderr, "relay: %s: %s\n", to[0],
                st == MXR_EBADNAME ? mxr_engine_errmsg(engine)
                                   : mxr_strerror(st));
        mxr_engine_destroy(engine);
        return st == MXR_EBADNAME ? 65 : 70;
    }
    print_plan(plan);

    /* 2. Start the attempt. It copies the plan (a failed plan gives an
     *    attempt that is already over: every recipient deferred or
     *    bounced with the routing reason). */
    mxr_message msg = {.sender = from, .recipients = to, .nrecipients = nto};
    mxr_attempt *a;
    st = mxr_attempt_new(engine, plan, &msg, &a);
    mxr_plan_free(plan);
    if (st != MXR_OK) {
        fprintf(stderr, "relay: mxr_attempt_new: %s\n", mxr_strerror(st));
        mxr_engine_destroy(engine);
        return 70;
    }

    /* 3. Hop after hop until the attempt says it is over. */
    const mxr_plan *ordered = mxr_attempt_plan(a); /* after host health */
    mxr_hop hop;
    while ((st = mxr_attempt_next(a, &hop)) == MXR_OK) {
        char addr[MXR_ADDR_STRLEN];
        const char *label = ordered->candidates[hop.candidate].label;
        printf("hop %u: %s %s port %u, preference %u%s%s%s%s\n", hop.number,
               hop.host, mxr_addr_format(&hop.addr, addr, sizeof addr),
               (unsigned)hop.port, (unsigned)hop.preference,
               label ? ", label " : "", label ? label : "",
               hop.tls_required ? ", tls required" : "",
               hop.host_down ? ", cooling down" : "");
        session(a, &hop);
    }
    if (st != MXR_EDONE) {
        fprintf(stderr, "relay: mxr_attempt_next: %s\n", mxr_strerror(st));
        mxr_attempt_free(a);
        mxr_engine_destroy(engine);
        return 70;
    }

    /* 4. Every recipient is now delivered, bounced or deferred. */
    size_t delivered = 0, bounced = 0, deferred = 0;
    uint64_t now = mxr_engine_now(engine);
    for (size_t i = 0; i < mxr_attempt_nrecipients(a); i++) {
        const mxr_rcpt *r = mxr_attempt_recipient(a, i);
        printf("%s: %s", r->address, mxr_rcpt_state_name(r->state));
        if (r->state == MXR_RCPT_DEFERRED) {
            deferred++;
            printf(", retry in %llu s",
                   (unsigned long long)(r->retry_at_ms > now
                                            ? (r->retry_at_ms - now) / 1000
                                            : 0));
        } else if (r->state == MXR_RCPT_DELIVERED) {
            delivered++;
        } else {
            bounced++;
        }
        /* The reply that decided it, and the host that gave it. */
        printf(" (%s:", r->host ? r->host : "-");
        if (r->code)
            printf(" %d", r->code);
        if (r->enhanced)
            printf(" %s", r->enhanced);
        printf(" %s)\n", r->text ? r->text : "");
    }
    printf("%zu delivered, %zu bounced, %zu deferred\n", delivered, bounced,
           deferred);

    mxr_attempt_free(a); /* before its engine */
    mxr_engine_destroy(engine);
    return deferred ? 75 : bounced ? 68 : 0;
}
