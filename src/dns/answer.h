/* answer.h -- a DNS answer reduced to what routing needs: a class of result,
 * the records of the asked type (following CNAMEs inside the answer), and a
 * TTL. Read from wire bytes by dns/wire.c (names decoded by c-ares); both
 * resolver backends produce wire bytes, so every rule is applied here, in
 * one place. */
#ifndef MXR_ANSWER_H
#define MXR_ANSWER_H

#include "base/alloc.h"
#include "dns/cache.h"

#define MXR__TYPE_A 1
#define MXR__TYPE_MX 15
#define MXR__TYPE_AAAA 28
#define MXR__CNAME_CHAIN_MAX 8

typedef enum mxr__rcode {
    MXR__DNS_OK = 0,   /* records of the asked type (count > 0) */
    MXR__DNS_NODATA,   /* the name exists, no record of that type */
    MXR__DNS_NXDOMAIN, /* the name does not exist */
    MXR__DNS_SERVFAIL,
    MXR__DNS_REFUSED,
    MXR__DNS_TIMEOUT,
    MXR__DNS_NETWORK,  /* transport error, or an answer we cannot trust */
    MXR__DNS_CANCELLED /* the engine is going away */
} mxr__rcode;

/* True for results worth retrying later (SERVFAIL ... CANCELLED). */
bool mxr__rcode_is_temporary(mxr__rcode rc);
mxr_reason mxr__rcode_reason(mxr__rcode rc);

/* The longest text of an MX target, NUL included: a wire name has at most
 * 255 bytes, and a byte that is no letter, digit, '-' or '_' is written as
 * 4 (\DDD). */
#define MXR__ANSWER_TEXT_MAX 1024

/* One MX record, as readers see it (mxr__answer_mx). */
typedef struct mxr__mx {
    uint16_t pref;
    const char *target; /* lower case, no final dot; "" for the root */
} mxr__mx;

/* One allocation, which is also its own cache entry: this header, then
 * the cache key (MXR__ANSWER_KEY_MAX bytes at most), then the body. The
 * body holds either the records -- MX as (preference, offset of the
 * target's text), addresses as their 4 or 16 bytes -- followed by the MX
 * targets' text, or (no records) a dangling CNAME's target. A target that
 * is the question's name, or ends in it, keeps only what comes before
 * (most MX hosts live in their domain). Offsets count from the body. Read
 * the records with the accessors below. Shared by reference between the cache
 * and deliveries in flight. */
typedef struct mxr__answer {
    /* key: the question (mxr__answer_key); node.expires_ms: when the
     * answer expires (the TTL clamps), set by the lookup layer */
    mxr__cache_node node;
    uint32_t refs;
    uint32_t ttl; /* min TTL of used records, or the negative TTL */
    /* When ttl, as served, runs out; set by the lookup layer. Differs from
     * node.expires_ms, which the TTL clamps decide. */
    uint64_t served_until_ms;
    uint16_t count; /* records (at most MXR_OPT_MAX_MX_RECORDS) */
    uint16_t qtype;
    uint8_t rcode;  /* mxr__rcode */
    bool via_cname; /* the records belong to a CNAME's target */
    /* NOERROR ending at a CNAME whose target's records are not in the
     * answer (an authoritative server does not chase out of its zones):
     * the body is the target to ask for next (mxr__answer_cname_target). */
    bool dangling;
    unsigned char key[]; /* node.keylen bytes, then the body */
} mxr__answer;

/* The i-th record of an MX answer (i < count). Its target is text in the
 * answer, or in buf when it had to be made whole again. */
mxr__mx mxr__answer_mx(const mxr__answer *ans, size_t i,
                       char buf[MXR__ANSWER_TEXT_MAX]);
/* The i-th address of an A or AAAA answer (i < count). */
mxr_addr mxr__answer_addr(const mxr__answer *ans, size_t i);
/* The dangling CNAME's target, or NULL. */
const char *mxr__answer_cname_target(const mxr__answer *ans);

/* The cache key of the question (qtype, name): 2 bytes of type, the name
 * and its NUL. out has MXR__ANSWER_KEY_MAX bytes; returns the length. */
#define MXR__ANSWER_KEY_MAX (2 + 253 + 1)
size_t mxr__answer_key(char *out, const char *name, uint16_t qtype);

/* Parse wire bytes answering (qname, qtype), keyed by that question. A
 * mismatched question, a malformed packet or an unusable rcode gives
 * MXR__DNS_NETWORK; never NULL unless out of memory. At most max_records
 * records are kept. */
mxr__answer *mxr__answer_parse(mxr__alloc *a, const uint8_t *wire, size_t len,
                               const char *qname, uint16_t qtype,
                               size_t max_records);
/* An answer carrying only a result class (timeouts and the like); its key
 * is empty. */
mxr__answer *mxr__answer_error(mxr__alloc *a, mxr__rcode rc, uint16_t qtype,
                               uint32_t ttl);
/* A copy of ans keyed by key (refs 1; NULL when out of memory): the
 * answer to a chased CNAME is cached under the question first asked. */
mxr__answer *mxr__answer_rekeyed(mxr__alloc *a, const mxr__answer *ans,
                                 const char *key, size_t keylen);
void mxr__answer_ref(mxr__answer *ans);
void mxr__answer_unref(mxr__alloc *a, mxr__answer *ans);
/* Bytes held by the answer, its key included (for cache accounting). */
size_t mxr__answer_bytes(const mxr__answer *ans);

#endif
