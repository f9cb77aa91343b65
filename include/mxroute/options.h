/*
 * mxroute/options.h -- the options an engine is made from.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * Lifetime: mxr_engine_new and mxr_engine_load_policies copy what they
 * need from the options: free or reuse them as soon as either returns.
 * Callbacks and their ud pointers given here (log, allocator, clock,
 * socket callback) are kept by the engine and must stay valid until it
 * is destroyed; the allocator until the last plan it allocated is freed.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_OPTIONS_H
#define MXROUTE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "mxroute/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mxr_options mxr_options;

/* Append-only: values never change meaning; new values may be added at
 * the end. */
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
 * by mxr_options_set, which returns MXR_EINVAL when out of range (and for
 * an option this library does not know; mxr_options_get returns -1 then).
 * Append-only: values never change meaning; new values may be added at
 * the end. */
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
    MXR_OPT_POLICY_MAX_MS,           /* CPU time per hook call, ms (100) */
    MXR_OPT_POLICY_MAX_MEMORY,       /* bytes per policy's Lua state (32 MiB) */
    MXR_OPT_POLICY_ON_ERROR,         /* when a hook fails: 0 = the engine's own
                                        decision, 1 = defer (0) */
    /* SMTP client (mxr_send). Timeouts in ms (1..3600000); the defaults
     * follow RFC 5321 section 4.5.3.2 where it gives one. */
    MXR_OPT_SMTP_CONNECT_MS,  /* TCP connect (30000) */
    MXR_OPT_SMTP_GREETING_MS, /* initial 220 (300000: 5 min) */
    MXR_OPT_SMTP_COMMAND_MS,  /* EHLO, HELO, STARTTLS, MAIL, RCPT, QUIT
                                 replies (300000: 5 min) */
    MXR_OPT_SMTP_TLS_MS,      /* TLS handshake (60000) */
    MXR_OPT_SMTP_DATA_MS,     /* reply to DATA (120000: 2 min) */
    MXR_OPT_SMTP_BLOCK_MS,    /* each write of the message (180000) */
    MXR_OPT_SMTP_DOT_MS,      /* reply to end-of-data (600000: 10 min) */
    MXR_OPT_SMTP_TLS,         /* mxr_tls_mode (MXR_TLS_OPPORTUNISTIC) */
    MXR_OPT_SMTP_MAX_REPLY,   /* bytes of one reply, all lines (65536;
                                 512..16 MiB): longer is a protocol
                                 error */
} mxr_option;

MXR_EXTERN mxr_status mxr_options_new(mxr_options **out);
MXR_EXTERN void mxr_options_free(mxr_options *opts);
MXR_EXTERN mxr_status mxr_options_set(mxr_options *opts, mxr_option opt,
                                      int64_t value);
MXR_EXTERN int64_t mxr_options_get(const mxr_options *opts, mxr_option opt);

/* STARTTLS (RFC 3207) in mxr_send. A candidate with tls_required asks
 * for at least MXR_TLS_REQUIRED whatever the option says. Append-only:
 * values never change meaning; new values may be added at the end. */
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
MXR_EXTERN mxr_status mxr_options_set_helo(mxr_options *opts, const char *name);
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
MXR_EXTERN void mxr_options_set_log(mxr_options *opts, mxr_log_fn fn, void *ud);

/* Lua-style allocator (osize is exact on free and realloc). */
typedef void *(*mxr_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
MXR_EXTERN void mxr_options_set_allocator(mxr_options *opts, mxr_alloc_fn fn,
                                          void *ud);

/* Clock in milliseconds (monotonic); injectable so tests never sleep. */
typedef uint64_t (*mxr_clock_fn)(void *ud);
MXR_EXTERN void mxr_options_set_clock(mxr_options *opts, mxr_clock_fn fn,
                                      void *ud);

/* Called when a descriptor starts or stops needing attention, for
 * epoll-style loops. readable/writable = 0/0 means: stop watching fd. */
typedef void (*mxr_sock_fn)(void *ud, int fd, int readable, int writable);
MXR_EXTERN void mxr_options_set_sock_callback(mxr_options *opts, mxr_sock_fn fn,
                                              void *ud);

/* The message of the last error of mxr_options_* (zone load errors say
 * file:line). Valid until the next call on opts. */
MXR_EXTERN const char *mxr_options_errmsg(const mxr_options *opts);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_OPTIONS_H */
