/* fuzz_answer_diff.c -- differential: the library's answer decoder
 * (dns/wire.c and the rules of dns/answer.c) against the ldns path it
 * replaced (answer_ldns_ref.c). On every input both give the same routing
 * facts (rcode class, via_cname, TTL, count, every record: MX preference
 * and target text, addresses, the dangling CNAME target), or both refuse
 * the input (MXR__DNS_NETWORK).
 *
 * Input:
 *   byte 0    bits 0-1: the type asked (MX, A, AAAA, MX); bit 2: raw mode
 *   byte 1    max_records (0 .. 79)
 *   byte 2    length L of the name asked (at most 80), then L bytes of it
 *   the rest  the packet. Raw mode takes it as it is; otherwise its first
 *             12 bytes are the header (QDCOUNT forced to 1), then comes
 *             our question, then the rest: the question matches, so the
 *             fuzzer works on the records.
 *
 * Differences the rules allow (answer_ldns_ref.c says why): a name c-ares
 * 1.18.1 cannot decode faithfully must be refused by the library, whatever
 * ldns read; a compression pointer to offset 0 is refused by ldns, and the
 * library's result is not compared. */
#include "harness.h"

#include "answer_ldns_ref.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* where mxr__answer_mx makes a target whole again */
static char tbuf[MXR__ANSWER_TEXT_MAX];

#define QNAME_MAX 80

static const uint16_t qtypes[4] = {MXR__TYPE_MX, MXR__TYPE_A, MXR__TYPE_AAAA,
                                   MXR__TYPE_MX};

static void compare_records(const mxr__answer *got, const ref_answer *want,
                            uint16_t qtype)
{
    for (size_t i = 0; i < got->count; i++) {
        const ref_record *r = &want->recs[i];
        if (qtype == MXR__TYPE_MX) {
            FZ_ASSERT(mxr__answer_mx(got, i, tbuf).pref == r->pref);
            FZ_ASSERT(strcmp(mxr__answer_mx(got, i, tbuf).target, r->target) ==
                      0);
        } else {
            size_t n = qtype == MXR__TYPE_A ? 4 : 16;
            FZ_ASSERT(mxr__answer_addr(got, i).family ==
                      (qtype == MXR__TYPE_A ? AF_INET : AF_INET6));
            FZ_ASSERT(memcmp(mxr__answer_addr(got, i).bytes, r->addr, n) == 0);
        }
    }
}

static void compare(const mxr__answer *got, const ref_answer *want,
                    uint16_t qtype)
{
    if (want->cares_refuses) {
        FZ_ASSERT(got->rcode == MXR__DNS_NETWORK);
        return;
    }
    if (want->pointer_to_zero && want->rcode == MXR__DNS_NETWORK)
        return;
    FZ_ASSERT(got->rcode == want->rcode);
    FZ_ASSERT(got->qtype == qtype);
    FZ_ASSERT(got->count == want->count);
    if (got->rcode == MXR__DNS_NETWORK || got->rcode == MXR__DNS_SERVFAIL ||
        got->rcode == MXR__DNS_REFUSED)
        return;
    FZ_ASSERT(got->via_cname == want->via_cname);
    FZ_ASSERT(got->ttl == want->ttl);
    FZ_ASSERT((mxr__answer_cname_target(got) == NULL) ==
              (want->cname_target == NULL));
    if (mxr__answer_cname_target(got))
        FZ_ASSERT(strcmp(mxr__answer_cname_target(got), want->cname_target) ==
                  0);
    compare_records(got, want, qtype);
}

static void check(const uint8_t *wire, size_t len, const char *qname,
                  uint16_t qtype, size_t max)
{
    fz_alloc fa = {0};
    mxr__alloc a;
    mxr__alloc_init(&a, fz_alloc_fn, &fa);
    mxr__answer *got = mxr__answer_parse(&a, wire, len, qname, qtype, max);
    FZ_ASSERT(got != NULL);
    ref_answer want;
    ref_answer_parse(wire, len, qname, qtype, max, &want);
    compare(got, &want, qtype);
    ref_answer_free(&want);
    mxr__answer_unref(&a, got);
    FZ_ASSERT(a.bytes == 0 && fa.live == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    uint8_t flags = fz_byte(&r);
    uint16_t qtype = qtypes[flags & 3];
    size_t max = fz_byte(&r) % 80;
    const uint8_t *qbytes;
    size_t qlen = fz_take(&r, &qbytes, fz_byte(&r) % (QNAME_MAX + 1));
    char qname[QNAME_MAX + 1];
    memcpy(qname, qbytes, qlen);
    qname[qlen] = '\0';
    const uint8_t *body = r.p;
    size_t len = r.left;
    if (flags & 4) {
        /* an exact-size copy: a read past the end is caught by ASan */
        uint8_t *w = malloc(len ? len : 1);
        if (!w)
            abort();
        memcpy(w, body, len);
        check(w, len, qname, qtype, max);
        free(w);
        return 0;
    }
    size_t wlen;
    uint8_t *w = fz_splice_answer(body, len, qname, qtype, &wlen);
    if (!w)
        abort();
    check(w, wlen, qname, qtype, max);
    free(w);
    return 0;
}
