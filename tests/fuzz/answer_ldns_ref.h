/* answer_ldns_ref.h -- the reference for fuzz_answer_diff: the answer
 * parser mxroute had before dns/wire.c, which builds an ldns packet
 * (ldns_wire2pkt) and applies the routing rules to it. Test code only: the
 * library no longer calls ldns for answers.
 *
 * Its result is plain data, compared with the library's mxr__answer. */
#ifndef MXR_ANSWER_LDNS_REF_H
#define MXR_ANSWER_LDNS_REF_H

#include "dns/answer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ref_record {
    uint16_t pref;    /* MX */
    char *target;     /* MX, malloc'd text */
    uint8_t addr[16]; /* A: 4 bytes, AAAA: 16 */
} ref_record;

typedef struct ref_answer {
    mxr__rcode rcode;
    bool via_cname;
    uint32_t ttl;
    size_t count;
    ref_record *recs;   /* count entries */
    char *cname_target; /* or NULL */
    /* Known differences (see fuzz_answer_diff.c): a name c-ares 1.18.1
     * cannot decode faithfully (more than 50 pointers, a label of one NUL
     * byte), and a compression pointer to offset 0, which ldns refuses. */
    bool cares_refuses;
    bool pointer_to_zero;
} ref_answer;

/* Parse as the ldns path did, with the framing rules of the library (see
 * answer_ldns_ref.c). Fills out; free with ref_answer_free. */
void ref_answer_parse(const uint8_t *wire, size_t len, const char *qname,
                      uint16_t qtype, size_t max_records, ref_answer *out);
void ref_answer_free(ref_answer *r);

#endif
