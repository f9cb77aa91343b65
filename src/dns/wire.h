/* wire.h -- a DNS message read from its wire bytes: a bounded walk over the
 * header, the question and the three record sections, with every
 * compressed name decoded by c-ares's ares_expand_name (a name without
 * pointers is copied as it stands, under the same bounds). No rule of routing is applied here
 * (that is answer.c's job): this module only says what the packet holds, or
 * that it cannot be read.
 *
 * Names come out in a canonical wire form: uncompressed labels, letters
 * lower-cased, ending with the root label, at most 255 octets. */
#ifndef MXR_WIRE_H
#define MXR_WIRE_H

#include "base/alloc.h"

#include <stdbool.h>
#include <stdint.h>

#define MXR__TYPE_CNAME 5
#define MXR__TYPE_SOA 6
#define MXR__CLASS_IN 1

/* One record of the answer section. Names are offsets into the message's
 * name store (mxr__wire_name). */
typedef struct mxr__wire_rr {
    uint32_t owner;
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;   /* as sent */
    uint16_t rdlen; /* 0: the record carries nothing and is to be ignored */
    uint16_t pref;  /* MX */
    /* A / AAAA: offset of the address in the packet; MX / CNAME: the
     * target's name. */
    uint32_t data;
} mxr__wire_rr;

/* A name decoded at a packet offset (see wire.c, the names memo). */
typedef struct mxr__wire_memo {
    uint16_t off;
    uint8_t hops; /* compression pointers c-ares followed */
    uint32_t at;  /* in the name store */
} mxr__wire_memo;

#define MXR__WIRE_MEMO 16
#define MXR__WIRE_RRS_ON_STACK 32
#define MXR__WIRE_NAMES_ON_STACK 2048

typedef struct mxr__wire_msg {
    const uint8_t *wire;
    size_t len;
    bool qr, tc;
    uint8_t rcode; /* the header's 4 bits */
    uint16_t qdcount;
    uint16_t qtype, qclass; /* the first question's */
    uint32_t qname;
    size_t ancount;
    mxr__wire_rr *an;
    bool has_soa; /* the first SOA of the authority section */
    uint32_t soa_ttl, soa_minimum;
    /* scratch: the stack arrays serve typical answers, bigger ones take
     * blocks from the allocator (released by mxr__wire_release) */
    mxr__alloc *a;
    bool nomem;
    mxr__wire_memo memo[MXR__WIRE_MEMO];
    size_t nmemo;
    uint8_t *names;
    size_t names_len, names_cap;
    mxr__wire_rr an_stack[MXR__WIRE_RRS_ON_STACK];
    uint8_t names_stack[MXR__WIRE_NAMES_ON_STACK];
} mxr__wire_msg;

typedef enum mxr__wire_status {
    MXR__WIRE_OK = 0,
    MXR__WIRE_MALFORMED, /* the packet cannot be read: it is not trusted */
    MXR__WIRE_NOMEM
} mxr__wire_status;

/* Read wire[0..len) into m (which needs no initialisation). Refused
 * (MXR__WIRE_MALFORMED): a packet shorter than a header or longer than
 * 65535 bytes; a name that c-ares does not decode (pointer loops, pointers
 * or labels past the end), longer than 255 octets, or that c-ares 1.18.1
 * cannot give back faithfully (a label of one NUL byte); a record running
 * past the end; counts that do not account for every byte; record data of
 * A, AAAA, MX, CNAME or SOA that is not exactly that type's form (empty
 * data is allowed: the record is ignored). Call mxr__wire_release after
 * any result. */
mxr__wire_status mxr__wire_decode(mxr__wire_msg *m, mxr__alloc *a,
                                  const uint8_t *wire, size_t len);
void mxr__wire_release(mxr__wire_msg *m);

/* The canonical wire form of a name stored at off. */
static inline const uint8_t *mxr__wire_name(const mxr__wire_msg *m,
                                            uint32_t off)
{
    return m->names + off;
}

/* Octets of a canonical wire name, the root label included. */
size_t mxr__wire_name_len(const uint8_t *name);

#endif
