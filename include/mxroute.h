/*
 * mxroute.h -- the public API of libmxroute.
 *
 * libmxroute answers, for an outgoing message, which servers to try and in
 * what order (RFC 5321 section 5.1, RFC 7505). It owns no event loop: the
 * embedder asks which descriptors to watch (mxr_engine_fds or a socket-state
 * callback), how long to wait (mxr_engine_timeout) and hands events back
 * (mxr_engine_process), the way c-ares does.
 *
 * Ownership and callback contract
 *  - A call that returns an error never fires its callback.
 *  - A call that returned MXR_OK fires its callback exactly once, from inside
 *    mxr_engine_process (never from inside the call that queued it), or from
 *    mxr_engine_destroy with status MXR_EDESTROYED.
 *  - A plan handed to a callback belongs to the callee: release it with
 *    mxr_plan_free. It is NULL when the status is not MXR_OK.
 *  - Engines are not thread-safe: use one engine per thread. The library
 *    keeps no global mutable state.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_H
#define MXROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MXR_EXTERN __attribute__((visibility("default")))
#else
#define MXR_EXTERN
#endif

#define MXR_VERSION_MAJOR 0
#define MXR_VERSION_MINOR 1
#define MXR_VERSION_PATCH 0
#define MXR_VERSION_STRING "0.1.0"
#define MXR_VERSION_HEX                                                        \
    ((MXR_VERSION_MAJOR << 16) | (MXR_VERSION_MINOR << 8) | MXR_VERSION_PATCH)

/* Runtime version, same encoding as MXR_VERSION_HEX. */
MXR_EXTERN unsigned mxr_version(void);
MXR_EXTERN const char *mxr_version_string(void);

/* ---------------------------------------------------------------- status */

/* Append-only: values never change meaning. */
typedef enum mxr_status {
    MXR_OK = 0,
    MXR_ENOMEM = 1,      /* out of memory */
    MXR_EINVAL = 2,      /* bad argument or option value */
    MXR_EBADNAME = 3,    /* input is not a valid domain or address */
    MXR_EZONE = 4,       /* zone file or zone text could not be loaded */
    MXR_ESERVER = 5,     /* DNS server address not understood */
    MXR_EDNS = 6,        /* the DNS library failed to initialise */
    MXR_EDESTROYED = 7,  /* engine destroyed while the request was pending */
    MXR_EBUSY = 8,       /* too many requests pending in this engine */
    MXR_EINTERNAL = 9,   /* a bug: please report it */
    MXR_EDONE = 10,      /* the attempt is over: nothing left to try */
    MXR_ESTATE = 11,     /* call not valid in the attempt's current state */
    MXR_EPOLICY = 12     /* a policy could not be loaded */
} mxr_status;

MXR_EXTERN const char *mxr_strerror(mxr_status status);

/* ------------------------------------------------------------ the plan */

typedef enum mxr_result {
    MXR_RESULT_OK = 0,       /* candidates to try */
    MXR_RESULT_TEMPFAIL = 1, /* try again later */
    MXR_RESULT_PERMFAIL = 2  /* bounce: this domain takes no mail */
} mxr_result;

/* Why a plan failed or a host was skipped. Append-only. */
typedef enum mxr_reason {
    MXR_REASON_NONE = 0,
    MXR_REASON_NULL_MX,            /* RFC 7505 null MX */
    MXR_REASON_NULL_MX_ENTRY,      /* "." target next to real MX records */
    MXR_REASON_NO_MAIL_HOST,       /* no MX and no address */
    MXR_REASON_NXDOMAIN,           /* the domain does not exist */
    MXR_REASON_SERVFAIL,           /* DNS server failure */
    MXR_REASON_REFUSED,            /* DNS server refused the query */
    MXR_REASON_TIMEOUT,            /* DNS server did not answer */
    MXR_REASON_NETWORK,            /* DNS transport error, bad answer */
    MXR_REASON_CNAME_TARGET,       /* note: target reached through a CNAME */
    MXR_REASON_IP_LITERAL,         /* MX target spelled as an IP address */
    MXR_REASON_NO_ADDRESS,         /* target has no usable A/AAAA */
    MXR_REASON_TEMPFAIL,           /* target lookup failed temporarily */
    MXR_REASON_NO_USABLE_HOST,     /* every target was skipped */
    MXR_REASON_UNROUTABLE_ADDRESS, /* loopback, multicast, link-local, ... */
    MXR_REASON_PRIVATE_ADDRESS,    /* private range, denied by option */
    MXR_REASON_DUPLICATE,          /* target listed twice */
    MXR_REASON_SELF,               /* our own name, or less preferred */
    MXR_REASON_LOOPS_TO_SELF,      /* we are the most preferred MX */
    MXR_REASON_LIMIT,              /* beyond the configured host limit */
    MXR_REASON_BAD_TARGET,         /* MX target is not a valid host name */
    MXR_REASON_POLICY,             /* decided by a policy (or its failure) */
    MXR_REASON_COUNT_
} mxr_reason;

/* The stable reason word ("null-mx", "no-address", ...). */
MXR_EXTERN const char *mxr_reason_name(mxr_reason reason);
MXR_EXTERN const char *mxr_result_name(mxr_result result);

typedef enum mxr_source {
    MXR_SOURCE_MX = 0,       /* from the domain's MX records */
    MXR_SOURCE_IMPLICIT = 1, /* implicit MX: the domain's own address */
    MXR_SOURCE_POLICY = 2,   /* added by a policy */
    MXR_SOURCE_LITERAL = 3   /* address literal such as [192.0.2.1] */
} mxr_source;

MXR_EXTERN const char *mxr_source_name(mxr_source source);

/* Candidate notes, a bit set. */
#define MXR_NOTE_CNAME_TARGET 0x1u /* reached through a CNAME */
#define MXR_NOTE_ADDR_LIMIT 0x2u   /* addresses dropped by a limit */
#define MXR_NOTE_FILTERED 0x4u     /* some addresses dropped by filters */
#define MXR_NOTE_DOWN 0x8u         /* host health: cooling down, moved last */

/* The note word for one bit ("cname-target", ...), NULL if unknown. */
MXR_EXTERN const char *mxr_note_name(uint32_t note_bit);

typedef struct mxr_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; 4 used for AF_INET */
} mxr_addr;

/* Format as text (inet_ntop); returns buf, or NULL if len is too small.
 * MXR_ADDR_STRLEN is always enough. */
#define MXR_ADDR_STRLEN 46
MXR_EXTERN const char *mxr_addr_format(const mxr_addr *addr, char *buf,
                                       size_t len);

typedef struct mxr_candidate {
    const char *host;    /* A-label form, no trailing dot */
    uint16_t preference; /* MX preference (0 for implicit/literal) */
    uint16_t port;       /* SMTP port to connect to */
    mxr_source source;
    uint32_t notes; /* MXR_NOTE_* bits */
    bool tls_required;
    size_t naddrs;
    const mxr_addr *addrs; /* in the order to try them */
    const char *label;     /* a policy's name for the hop, or NULL */
    /* Seconds left of the TTL of the host's addresses as DNS served them
     * (not clamped by MXR_OPT_TTL_MIN/MAX): the smallest over the A/AAAA
     * answers that gave addresses (and the CNAMEs leading to them); a
     * negative answer for the other family does not count. Counts down
     * while the answers are cached. 0 for address literals and for
     * addresses a policy gave itself. */
    uint32_t ttl;
} mxr_candidate;

typedef struct mxr_skipped {
    const char *host;
    uint16_t preference;
    mxr_reason reason;
} mxr_skipped;

typedef struct mxr_plan {
    const char *input;  /* as given */
    const char *domain; /* normalised A-label form */
    mxr_result result;
    mxr_reason reason; /* MXR_REASON_NONE when result is OK */
    bool implicit;     /* candidates come from an implicit MX */
    uint32_t ttl;      /* seconds the plan may be reused */
    size_t ncandidates;
    const mxr_candidate *candidates; /* in the order to try them */
    size_t nskipped;
    const mxr_skipped *skipped;
    /* Seconds left of the TTL of the MX answer as DNS served it (not
     * clamped), counting down while cached: the MX RRset's TTL (the
     * smallest over a CNAME chain to it); for NODATA (implicit MX, no mail
     * host) and NXDOMAIN the negative TTL of RFC 2308, min(SOA TTL, SOA
     * minimum). 0 when the MX lookup failed and for address literals.
     * Unlike ttl, it says nothing about the address answers. */
    uint32_t mx_ttl;
} mxr_plan;

MXR_EXTERN void mxr_plan_free(mxr_plan *plan);

/* ------------------------------------------------------------- options */

typedef struct mxr_options mxr_options;

typedef enum mxr_family {
    MXR_FAMILY_ANY = 0, /* both, interleaved, IPv6 first within a host */
    MXR_FAMILY_IPV4 = 1,
    MXR_FAMILY_IPV6 = 2,
    MXR_FAMILY_PREFER_IPV4 = 3,
    MXR_FAMILY_PREFER_IPV6 = 4
} mxr_family;

/* Parse "any", "ipv4", ... ; returns -1 if unknown. */
MXR_EXTERN int mxr_family_parse(const char *word);
MXR_EXTERN const char *mxr_family_name(mxr_family family);

/* Integer options. Defaults in parentheses; every value is range-checked
 * by mxr_options_set, which returns MXR_EINVAL when out of range. */
typedef enum mxr_option {
    MXR_OPT_TIMEOUT_MS = 0,     /* per DNS try (2000; 10..60000) */
    MXR_OPT_TRIES,              /* DNS tries per server (2; 1..10) */
    MXR_OPT_FAMILY,             /* mxr_family (MXR_FAMILY_ANY) */
    MXR_OPT_SEED,               /* shuffle seed; -1 = random (-1) */
    MXR_OPT_ALLOW_LOOPBACK,     /* 0/1: accept loopback addresses (0) */
    MXR_OPT_DENY_PRIVATE,       /* 0/1: skip RFC 1918/4193 addresses (0) */
    MXR_OPT_PORT,               /* SMTP port in plans (25) */
    MXR_OPT_MAX_HOSTS,          /* hosts kept in a plan (16; 1..1000) */
    MXR_OPT_MAX_ADDRS_PER_HOST, /* (8; 1..100) */
    MXR_OPT_MAX_ADDRS_TOTAL,    /* addresses in a whole plan (32; 1..10000) */
    MXR_OPT_MAX_MX_RECORDS,     /* records read per answer, MX or address
                                   (64; 1..10000) */
    MXR_OPT_CACHE_MAX_BYTES,    /* cache memory bound (64 MiB; 0 = no cache) */
    MXR_OPT_TTL_MIN,            /* positive TTL clamp, seconds (5) */
    MXR_OPT_TTL_MAX,            /* (86400) */
    MXR_OPT_NEG_TTL_MAX,        /* negative answers (NXDOMAIN/NODATA) (3600) */
    MXR_OPT_TEMPFAIL_TTL,       /* transient failures are cached (5) */
    MXR_OPT_MAX_INFLIGHT,       /* DNS queries in flight (100; 1..100000) */
    MXR_OPT_MAX_PENDING,        /* route requests pending (1000000) */
    MXR_OPT_HEALTH_MAX_BYTES,   /* host health memory bound (4 MiB) */
    MXR_OPT_POLICY_MAX_INSTRUCTIONS, /* Lua VM instructions per hook call
                                        (1000000; 1000..1e9) */
    MXR_OPT_POLICY_MAX_MS,      /* CPU time per hook call, ms (100) */
    MXR_OPT_POLICY_MAX_MEMORY,  /* bytes per policy's Lua state (32 MiB) */
    MXR_OPT_POLICY_ON_ERROR,    /* when a hook fails: 0 = the engine's own
                                   decision, 1 = defer (0) */
    /* SMTP client (mxr_send). Timeouts in ms (1..3600000); the defaults
     * follow RFC 5321 section 4.5.3.2 where it gives one. */
    MXR_OPT_SMTP_CONNECT_MS,    /* TCP connect (30000) */
    MXR_OPT_SMTP_GREETING_MS,   /* initial 220 (300000: 5 min) */
    MXR_OPT_SMTP_COMMAND_MS,    /* EHLO, HELO, STARTTLS, MAIL, RCPT, QUIT
                                   replies (300000: 5 min) */
    MXR_OPT_SMTP_TLS_MS,        /* TLS handshake (60000) */
    MXR_OPT_SMTP_DATA_MS,       /* reply to DATA (120000: 2 min) */
    MXR_OPT_SMTP_BLOCK_MS,      /* each write of the message (180000) */
    MXR_OPT_SMTP_DOT_MS,        /* reply to end-of-data (600000: 10 min) */
    MXR_OPT_SMTP_TLS,           /* mxr_tls_mode (MXR_TLS_OPPORTUNISTIC) */
    MXR_OPT_SMTP_MAX_REPLY,     /* bytes of one reply, all lines (65536;
                                   512..16 MiB): longer is a protocol
                                   error */
    MXR_OPT_COUNT_
} mxr_option;

MXR_EXTERN mxr_status mxr_options_new(mxr_options **out);
MXR_EXTERN void mxr_options_free(mxr_options *opts);
MXR_EXTERN mxr_status mxr_options_set(mxr_options *opts, mxr_option opt,
                                      int64_t value);
MXR_EXTERN int64_t mxr_options_get(const mxr_options *opts, mxr_option opt);

/* STARTTLS (RFC 3207) in mxr_send. A candidate with tls_required asks
 * for at least MXR_TLS_REQUIRED whatever the option says. */
typedef enum mxr_tls_mode {
    MXR_TLS_OPPORTUNISTIC = 0, /* when offered; no certificate check
                                  (RFC 7435); a refused STARTTLS goes on
                                  in clear */
    MXR_TLS_REQUIRED = 1,      /* must succeed; no certificate check */
    MXR_TLS_VERIFY = 2,        /* must succeed, chain and MX host name
                                  verified */
    MXR_TLS_NONE = 3           /* never */
} mxr_tls_mode;

/* "opportunistic", "required", "verify", "none"; -1 if unknown. */
MXR_EXTERN int mxr_tls_mode_parse(const char *word);
MXR_EXTERN const char *mxr_tls_mode_name(mxr_tls_mode mode);

/* The name sent with EHLO/HELO ("localhost" by default; use the relay's
 * own fully qualified name). */
MXR_EXTERN mxr_status mxr_options_set_helo(mxr_options *opts,
                                           const char *name);
/* Trust anchors (PEM file) for MXR_TLS_VERIFY; the system's by default. */
MXR_EXTERN mxr_status mxr_options_set_tls_ca(mxr_options *opts,
                                             const char *path);

/* DNS server "IP", "IP:PORT" or "[IPv6]:PORT"; repeatable. Without any
 * server and any zone, /etc/resolv.conf is used. */
MXR_EXTERN mxr_status mxr_options_add_server(mxr_options *opts,
                                             const char *server);
/* Offline resolution: answer from zone files (ldns syntax, $ORIGIN
 * required or taken from the SOA). With any zone, no network is used. */
MXR_EXTERN mxr_status mxr_options_add_zone_file(mxr_options *opts,
                                                const char *path);
/* Zone text in memory, same syntax; name is used in error messages. */
MXR_EXTERN mxr_status mxr_options_add_zone_text(mxr_options *opts,
                                                const char *name,
                                                const char *text);
/* One of our own host names or addresses (self-pruning); repeatable. */
MXR_EXTERN mxr_status mxr_options_add_local_name(mxr_options *opts,
                                                 const char *name);

/* A Lua routing policy (see docs/lua-api.md): a file returning a table of
 * hooks (route, outcome, retry). config is Lua source of its
 * configuration: a file name ending in ".lua", or a table constructor
 * such as "{ relay = 'smtp.example.net' }"; NULL for an empty table.
 * Policies chain in the order added. Checked when the engine loads them. */
MXR_EXTERN mxr_status mxr_options_add_policy(mxr_options *opts,
                                             const char *path,
                                             const char *config);
/* The same from source text; name is used in messages ("name:line"). */
MXR_EXTERN mxr_status mxr_options_add_policy_text(mxr_options *opts,
                                                  const char *name,
                                                  const char *source,
                                                  const char *config);

/* Set the configuration (as in mxr_options_add_policy) of the policy
 * added last; MXR_EINVAL when there is none. */
MXR_EXTERN mxr_status mxr_options_set_policy_config(mxr_options *opts,
                                                    const char *config);

/* Messages from the engine (policy errors with script:line, print() from
 * policies). level: 0 info, 1 warning, 2 error. */
typedef void (*mxr_log_fn)(void *ud, int level, const char *message);
MXR_EXTERN void mxr_options_set_log(mxr_options *opts, mxr_log_fn fn,
                                    void *ud);

/* Lua-style allocator (osize is exact on free and realloc). */
typedef void *(*mxr_alloc_fn)(void *ud, void *ptr, size_t osize,
                              size_t nsize);
MXR_EXTERN void mxr_options_set_allocator(mxr_options *opts, mxr_alloc_fn fn,
                                          void *ud);

/* Clock in milliseconds (monotonic); injectable so tests never sleep. */
typedef uint64_t (*mxr_clock_fn)(void *ud);
MXR_EXTERN void mxr_options_set_clock(mxr_options *opts, mxr_clock_fn fn,
                                      void *ud);

/* Called when a descriptor starts or stops needing attention, for
 * epoll-style loops. readable/writable = 0/0 means: stop watching fd. */
typedef void (*mxr_sock_fn)(void *ud, int fd, int readable, int writable);
MXR_EXTERN void mxr_options_set_sock_callback(mxr_options *opts,
                                              mxr_sock_fn fn, void *ud);

/* The message of the last error of mxr_options_* (zone load errors say
 * file:line). Valid until the next call on opts. */
MXR_EXTERN const char *mxr_options_errmsg(const mxr_options *opts);

/* -------------------------------------------------------------- engine */

typedef struct mxr_engine mxr_engine;

/* On failure the reason is in mxr_options_errmsg(opts). The options are
 * copied: they may be freed or reused once this returns. */
MXR_EXTERN mxr_status mxr_engine_new(mxr_options *opts, mxr_engine **out);
/* Fires every pending callback once with MXR_EDESTROYED, then frees. */
MXR_EXTERN void mxr_engine_destroy(mxr_engine *engine);

/* Detail of the last synchronous error on this engine ("label over 63
 * octets", ...). Valid until the next call on the engine. */
MXR_EXTERN const char *mxr_engine_errmsg(const mxr_engine *engine);

typedef void (*mxr_route_cb)(void *arg, mxr_status status, mxr_plan *plan);

/* Route a domain or an address ("user@example.com", "[192.0.2.1]").
 * Invalid input returns MXR_EBADNAME with a message in mxr_engine_errmsg. */
MXR_EXTERN mxr_status mxr_route(mxr_engine *engine, const char *input,
                                mxr_route_cb cb, void *arg);

/* Blocking convenience: route and wait (runs the engine's own poll loop). */
MXR_EXTERN mxr_status mxr_route_sync(mxr_engine *engine, const char *input,
                                     mxr_plan **out);

/* Event-loop integration. */
#define MXR_WANT_READ 0x1
#define MXR_WANT_WRITE 0x2
typedef struct mxr_sock {
    int fd;
    int want; /* MXR_WANT_* */
} mxr_sock;

/* Fill up to max descriptors to watch; returns how many there are. */
MXR_EXTERN size_t mxr_engine_fds(mxr_engine *engine, mxr_sock *out,
                                 size_t max);
/* Milliseconds until mxr_engine_process must be called even without
 * events: 0 = now, -1 = nothing pending. */
MXR_EXTERN int mxr_engine_timeout(mxr_engine *engine);
/* Handle events (MXR_NOFD when there is none of that kind), expire
 * timeouts and fire completed callbacks. */
#define MXR_NOFD (-1)
MXR_EXTERN void mxr_engine_process(mxr_engine *engine, int read_fd,
                                   int write_fd);
/* Run until no request is pending or timeout_ms passes (-1 = no bound).
 * Returns the number of requests still pending. */
MXR_EXTERN size_t mxr_engine_run(mxr_engine *engine, int timeout_ms);
/* Requests accepted whose callback has not fired yet. */
MXR_EXTERN size_t mxr_engine_pending(const mxr_engine *engine);

typedef struct mxr_stats {
    uint64_t routes;           /* route requests accepted */
    uint64_t plan_hits;        /* answered from a cached plan */
    uint64_t queries_sent;     /* DNS queries issued by the backend */
    uint64_t queries_coalesced;/* lookups that joined a query in flight */
    uint64_t cache_hits;       /* lookups answered from the record cache */
    uint64_t cache_evictions;
    size_t cache_entries;
    size_t cache_bytes;
    size_t inflight;     /* DNS queries in flight now */
    size_t inflight_max; /* highest ever */
    size_t bytes_allocated; /* by the engine's allocator, now */
    uint64_t policy_calls;  /* hook calls */
    uint64_t policy_errors; /* hook calls stopped (error, budget, ...) */
} mxr_stats;

MXR_EXTERN void mxr_engine_stats(const mxr_engine *engine, mxr_stats *out);

/* Replace the engine's policies with those listed in opts (and their
 * budgets). If any fails to load, the old policies stay and the reason is
 * in mxr_options_errmsg(opts). Hooks already running finish with the old
 * policies. */
MXR_EXTERN mxr_status mxr_engine_load_policies(mxr_engine *engine,
                                               mxr_options *opts);

/* ------------------------------------------------------- failover rules */

/* Where an SMTP attempt ended, and how. */
typedef enum mxr_stage {
    MXR_STAGE_CONNECT = 0,
    MXR_STAGE_TLS,
    MXR_STAGE_GREETING,
    MXR_STAGE_EHLO,
    MXR_STAGE_MAIL,
    MXR_STAGE_RCPT,
    MXR_STAGE_DATA,
    MXR_STAGE_DOT, /* the reply to end-of-data */
    MXR_STAGE_COUNT_
} mxr_stage;

typedef enum mxr_class {
    MXR_CLASS_OK = 0, /* 2xx/3xx, or a connection that worked */
    MXR_CLASS_REFUSED,
    MXR_CLASS_TIMEOUT,
    MXR_CLASS_UNREACHABLE,
    MXR_CLASS_RESET,
    MXR_CLASS_4XX,
    MXR_CLASS_5XX,
    MXR_CLASS_421, /* service closing: always connection-level */
    MXR_CLASS_COUNT_
} mxr_class;

/* What to do next. Append-only. */
typedef enum mxr_action {
    MXR_ACTION_CONTINUE = 0,  /* go on with this session */
    MXR_ACTION_NEXT_ADDRESS,  /* next address of this host, else next host */
    MXR_ACTION_NEXT_HOST,     /* next host, else defer */
    MXR_ACTION_DEFER,         /* stop; retry later (see retry_at_ms) */
    MXR_ACTION_BOUNCE,        /* stop; permanent failure */
    MXR_ACTION_DELIVERED,     /* every recipient is final */
    MXR_ACTION_COUNT_
} mxr_action;

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

/* Per-domain failover and retry rules. Start from the defaults of
 * DESIGN.md section 4 and override cells or numbers. */
typedef struct mxr_rules mxr_rules;

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
    MXR_RULE_HEALTH_MAX_S,      /* longest cool-down (3600); likewise */
    MXR_RULE_COUNT_
} mxr_rule;

MXR_EXTERN mxr_status mxr_rules_new(mxr_rules **out);
MXR_EXTERN void mxr_rules_free(mxr_rules *rules);
MXR_EXTERN mxr_status mxr_rules_copy(const mxr_rules *from, mxr_rules **out);
/* Cells of class MXR_CLASS_OK are not consulted (success is progress). */
MXR_EXTERN mxr_status mxr_rules_set_action(mxr_rules *rules, mxr_stage stage,
                                           mxr_class cls, mxr_action action);
MXR_EXTERN mxr_action mxr_rules_action(const mxr_rules *rules,
                                       mxr_stage stage, mxr_class cls);
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

typedef struct mxr_hop {
    const char *host;
    uint16_t preference;
    uint16_t port;
    bool tls_required;
    bool host_down; /* cooling down: moved last, tried as a last resort */
    mxr_addr addr;
    size_t candidate; /* index in the attempt's plan */
    unsigned number;  /* 1 for the first hop of the attempt */
    const char *label; /* the candidate's label (policies), or NULL */
} mxr_hop;

/* The next address to connect to, in plan order, skipping what the last
 * action ruled out. MXR_EDONE when the attempt is over. */
MXR_EXTERN mxr_status mxr_attempt_next(mxr_attempt *attempt, mxr_hop *out);

typedef struct mxr_outcome {
    mxr_stage stage;
    mxr_class cls;
    int code;             /* SMTP reply code, 0 when none */
    const char *enhanced; /* "4.7.1", or NULL */
    const char *text;     /* reply text or error, or NULL */
} mxr_outcome;

/* The RCPT reply (2xx, 4xx or 5xx) for recipient i in the current
 * session. A 5xx bounces that recipient (by default); a 4xx leaves it for
 * the next host. Returns the action for that recipient. A 421, timeout or
 * broken connection during RCPT ends the session: report it with
 * mxr_attempt_outcome. */
MXR_EXTERN mxr_action mxr_attempt_rcpt(mxr_attempt *attempt, size_t i,
                                       const mxr_outcome *reply);
/* How the current session went. Class OK before end-of-data is progress
 * (CONTINUE), except {RCPT, OK}: the RCPT phase is over, and when nobody
 * was accepted the session ends. A failure ends the session: at DATA and
 * end-of-data it concerns only the recipients accepted at RCPT. {DOT, OK}
 * delivers them. Returns the action; DEFER, BOUNCE and DELIVERED end the
 * attempt (check each recipient: a DELIVERED attempt may have bounces). */
MXR_EXTERN mxr_action mxr_attempt_outcome(mxr_attempt *attempt,
                                          const mxr_outcome *outcome);

typedef enum mxr_rcpt_state {
    MXR_RCPT_PENDING = 0,
    MXR_RCPT_DELIVERED,
    MXR_RCPT_BOUNCED,
    MXR_RCPT_DEFERRED
} mxr_rcpt_state;

MXR_EXTERN const char *mxr_rcpt_state_name(mxr_rcpt_state state);

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

/* ---------------------------------------------------------- SMTP client */

/* mxr_send runs an attempt against real servers: for each hop the
 * failover machine hands out, it opens an SMTP session to that exact
 * address (no second DNS lookup), reports every RCPT reply and how the
 * session ended to the machine, and follows its decision. It is driven
 * by the same loop as routing (mxr_engine_fds/timeout/process, or
 * mxr_engine_run). Sockets never raise SIGPIPE. After on_done, a
 * session may still wait for the reply to its QUIT (at most 10 s):
 * mxr_engine_timeout stays >= 0 until it closes; mxr_engine_destroy
 * closes it at once. */

typedef enum mxr_send_event_kind {
    MXR_SEND_EVENT_RCPT = 0,   /* a recipient's RCPT reply */
    MXR_SEND_EVENT_SESSION = 1 /* a session ended (one per hop) */
} mxr_send_event_kind;

typedef struct mxr_send_event {
    mxr_send_event_kind kind;
    const mxr_hop *hop;
    bool tls;                   /* the session ran over TLS */
    size_t rcpt;                /* RCPT: the recipient's index */
    const mxr_outcome *outcome; /* SESSION: where and how it ended; a
                                   probe that got through RCPT ends at
                                   {RCPT, OK} */
    mxr_action action;          /* what the failover machine decided */
    size_t accepted;            /* SESSION: recipients taken at RCPT */
} mxr_send_event;

/* Pointers in an event are valid during the call only. */
typedef void (*mxr_send_event_fn)(void *arg, const mxr_send_event *ev);
/* status: MXR_OK when the attempt ran to its end (see the recipients and
 * mxr_attempt_verdict), MXR_EDESTROYED when the engine is being
 * destroyed: free the attempt in this callback, while the engine is
 * still valid. */
typedef void (*mxr_send_done_fn)(void *arg, mxr_status status,
                                 mxr_attempt *attempt);

/* Stop after the RCPT phase and QUIT instead of sending DATA: the
 * recipients a host accepted count as delivered in the attempt (each with
 * the RCPT reply that accepted it), so the walk goes on exactly as a real
 * delivery would. */
#define MXR_SEND_PROBE 0x1u

/* Deliver msg (len bytes; RFC 5322 text with any line ends: sent with
 * CRLF and dot-stuffing) along attempt, from the attempt's sender to its
 * pending recipients. msg may be NULL with MXR_SEND_PROBE; it is copied
 * (in its wire form) before mxr_send returns. The attempt must stay
 * valid and untouched until on_done fires (exactly once, from
 * mxr_engine_process or mxr_engine_destroy). MXR_EINVAL for an address
 * with control characters or over 254 octets.
 * on_event may be NULL. */
MXR_EXTERN mxr_status mxr_send(mxr_engine *engine, mxr_attempt *attempt,
                               const char *msg, size_t len, unsigned flags,
                               mxr_send_event_fn on_event,
                               mxr_send_done_fn on_done, void *arg);

/* The engine's clock, for callers that schedule with it. */
MXR_EXTERN uint64_t mxr_engine_now(const mxr_engine *engine);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_H */
