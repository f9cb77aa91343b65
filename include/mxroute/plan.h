/*
 * mxroute/plan.h -- the routing plan: addresses, candidates, skipped
 * hosts, reasons, sources and notes.
 *
 * Part of the public API of libmxroute; include <mxroute.h>.
 *
 * Lifetime: a plan (mxr_plan) is one self-contained block. It belongs to
 * whoever received it, holds no pointer into the engine, and outlives
 * the engine that made it: read it and mxr_plan_free it before or after
 * mxr_engine_destroy. The block is freed with the allocator the engine
 * was given (mxr_options_set_allocator), which must stay usable until
 * the last plan is freed.
 *
 * Growth: mxr_plan is allocated by the library, so fields may be added at
 * its end; read only the fields you know. mxr_candidate, mxr_skipped and
 * mxr_addr are elements of arrays you index: their size and layout are
 * frozen for a soname (new per-host data would come through new
 * functions).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef MXROUTE_PLAN_H
#define MXROUTE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mxroute/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_result {
    MXR_RESULT_OK = 0,       /* candidates to try */
    MXR_RESULT_TEMPFAIL = 1, /* try again later */
    MXR_RESULT_PERMFAIL = 2  /* bounce: this domain takes no mail */
} mxr_result;

/* Why a plan failed or a host was skipped. Append-only: values never
 * change meaning; new values may be added at the end (print an unknown
 * one with mxr_reason_name, which says "unknown"). */
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
    MXR_REASON_POLICY              /* decided by a policy (or its failure) */
} mxr_reason;

/* The stable reason word ("null-mx", "no-address", ...); "unknown" for a
 * value this library does not know. */
MXR_EXTERN const char *mxr_reason_name(mxr_reason reason);
MXR_EXTERN const char *mxr_result_name(mxr_result result);

/* Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_source {
    MXR_SOURCE_MX = 0,       /* from the domain's MX records */
    MXR_SOURCE_IMPLICIT = 1, /* implicit MX: the domain's own address */
    MXR_SOURCE_POLICY = 2,   /* added by a policy */
    MXR_SOURCE_LITERAL = 3   /* address literal such as [192.0.2.1] */
} mxr_source;

MXR_EXTERN const char *mxr_source_name(mxr_source source);

/* Candidate notes, a bit set. Bits never change meaning; new bits may be
 * added. */
#define MXR_NOTE_CNAME_TARGET 0x1u /* reached through a CNAME */
#define MXR_NOTE_ADDR_LIMIT 0x2u   /* addresses dropped by a limit */
#define MXR_NOTE_FILTERED 0x4u     /* some addresses dropped by filters */
#define MXR_NOTE_DOWN 0x8u         /* host health: cooling down, moved last */

/* The note word for one bit ("cname-target", ...), NULL if unknown. */
MXR_EXTERN const char *mxr_note_name(uint32_t note_bit);

/* Frozen layout. */
typedef struct mxr_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t bytes[16]; /* network order; 4 used for AF_INET */
} mxr_addr;

/* Format as text (inet_ntop); returns buf, or NULL if len is too small.
 * MXR_ADDR_STRLEN is always enough. */
#define MXR_ADDR_STRLEN 46
/* Parse numeric IPv4 or IPv6 text (no brackets, no zone id) into out;
 * false (out unchanged) when text is not an address. */
MXR_EXTERN bool mxr_addr_parse(const char *text, mxr_addr *out);
MXR_EXTERN const char *mxr_addr_format(const mxr_addr *addr, char *buf,
                                       size_t len);

/* The safety class of an address: the one the engine filters plans with
 * (MXR_OPT_ALLOW_LOOPBACK, MXR_OPT_DENY_PRIVATE), ranges from RFC 6890.
 * Append-only: values never change meaning; new values may be added at
 * the end. */
typedef enum mxr_addr_class {
    MXR_ADDR_GLOBAL = 0,    /* anything else: may be connected to */
    MXR_ADDR_PRIVATE = 1,   /* 10/8, 172.16/12, 192.168/16, 100.64/10,
                               fc00::/7 */
    MXR_ADDR_LOOPBACK = 2,  /* 127/8, ::1 */
    MXR_ADDR_UNROUTABLE = 3 /* unspecified, multicast, link-local,
                               broadcast, 0/8, 240/4 */
} mxr_addr_class;

/* IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are classified as the IPv4
 * they carry. NULL, or a family other than AF_INET and AF_INET6, is
 * MXR_ADDR_UNROUTABLE: an address that cannot be read is one not to
 * connect to. */
MXR_EXTERN mxr_addr_class mxr_addr_classify(const mxr_addr *addr);
/* "global", "private", "loopback", "unroutable"; "unknown" otherwise. */
MXR_EXTERN const char *mxr_addr_class_name(mxr_addr_class cls);

/* One host to try. Frozen layout (an element of plan->candidates). */
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

/* A host left out, and why. Frozen layout (an element of
 * plan->skipped). */
typedef struct mxr_skipped {
    const char *host;
    uint16_t preference;
    mxr_reason reason;
} mxr_skipped;

/* Allocated by the library: fields may be added at the end. */
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

/* Frees the whole block; NULL is ignored. Valid after the engine that
 * made the plan is destroyed (see the top of this header). */
MXR_EXTERN void mxr_plan_free(mxr_plan *plan);

#ifdef __cplusplus
}
#endif
#endif /* MXROUTE_PLAN_H */
