/* test_wire.c -- the record walker of src/dns/wire.c on packets written
 * byte by byte: what it reads from good packets, and each refusal (a
 * record cut short, rdlength past the end, compression loops, counts that
 * do not cover the packet, bytes left over, names c-ares cannot give back,
 * record data that does not fit its type). Every test counts its
 * allocations: nothing may be left behind. */
#include "heap_fixture.h"

#include "dns/answer.h"
#include "dns/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ fixture */

typedef heap_fixture fixture;

/* ------------------------------------------------- writing packets */

typedef struct pkt {
    uint8_t b[70000];
    size_t n;
} pkt;

static void put(pkt *p, const void *bytes, size_t n)
{
    assert_true(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, bytes, n);
    p->n += n;
}

static void put16(pkt *p, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(p, b, 2);
}

static void put32(pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

/* "mx.example.com" as labels, with the root label. */
static void put_name(pkt *p, const char *text)
{
    while (*text) {
        size_t n = strcspn(text, ".");
        uint8_t len = (uint8_t)n;
        put(p, &len, 1);
        put(p, text, n);
        text += n + (text[n] == '.');
    }
    put(p, "", 1);
}

static void header(pkt *p, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
    p->n = 0;
    put16(p, 0x1234);
    put16(p, 0x8180); /* QR, RD, RA, NOERROR */
    put16(p, qd);
    put16(p, an);
    put16(p, ns);
    put16(p, ar);
}

/* Header and the question (Example.COM MX IN) at offset 12. */
static void start(pkt *p, unsigned an, unsigned ns, unsigned ar)
{
    header(p, 1, an, ns, ar);
    put_name(p, "Example.COM");
    put16(p, MXR__TYPE_MX);
    put16(p, MXR__CLASS_IN);
}

/* Owner "c0 0c" (the question's name), type, class IN, TTL, rdlength. */
static void rr_head(pkt *p, uint16_t type, uint16_t rdlen)
{
    put16(p, 0xc00c);
    put16(p, type);
    put16(p, MXR__CLASS_IN);
    put32(p, 300);
    put16(p, rdlen);
}

static void mx_rr(pkt *p, uint16_t pref, const char *target)
{
    pkt name = {.n = 0};
    put_name(&name, target);
    rr_head(p, MXR__TYPE_MX, (uint16_t)(2 + name.n));
    put16(p, pref);
    put(p, name.b, name.n);
}

static mxr__wire_status decode(fixture *f, const pkt *p, mxr__wire_msg *m)
{
    /* an exact-size copy: a read past the end is caught by ASan */
    uint8_t *copy = malloc(p->n ? p->n : 1);
    assert_non_null(copy);
    memcpy(copy, p->b, p->n);
    mxr__wire_status st = mxr__wire_decode(m, &f->a, copy, p->n);
    mxr__wire_release(m);
    free(copy);
    return st;
}

static void refused(fixture *f, const pkt *p)
{
    mxr__wire_msg m;
    assert_int_equal(decode(f, p, &m), MXR__WIRE_MALFORMED);
}

static void accepted(fixture *f, const pkt *p)
{
    mxr__wire_msg m;
    assert_int_equal(decode(f, p, &m), MXR__WIRE_OK);
}

/* -------------------------------------------------------------- tests */

static void test_reads_records(void **state)
{
    fixture *f = *state;
    static pkt p;
    start(&p, 2, 0, 0);
    mx_rr(&p, 10, "MX1.example.com");
    rr_head(&p, MXR__TYPE_A, 4);
    put(&p, "\xc0\x00\x02\x05", 4);
    uint8_t *copy = malloc(p.n);
    assert_non_null(copy);
    memcpy(copy, p.b, p.n);
    mxr__wire_msg m;
    assert_int_equal(mxr__wire_decode(&m, &f->a, copy, p.n), MXR__WIRE_OK);
    assert_true(m.qr);
    assert_false(m.tc);
    assert_int_equal(m.rcode, 0);
    assert_int_equal(m.qdcount, 1);
    assert_int_equal(m.qtype, MXR__TYPE_MX);
    assert_int_equal(m.ancount, 2);
    /* canonical names: labels, letters lower-cased */
    const uint8_t *q = mxr__wire_name(&m, m.qname);
    assert_memory_equal(q,
                        "\x07"
                        "example\x03"
                        "com",
                        13);
    assert_int_equal(mxr__wire_name_len(q), 13);
    assert_ptr_equal(mxr__wire_name(&m, m.an[0].owner), q);
    assert_int_equal(m.an[0].pref, 10);
    assert_memory_equal(mxr__wire_name(&m, m.an[0].data),
                        "\x03mx1\x07"
                        "example\x03"
                        "com",
                        17);
    assert_int_equal(m.an[1].type, MXR__TYPE_A);
    assert_int_equal(m.an[1].ttl, 300);
    assert_memory_equal(copy + m.an[1].data, "\xc0\x00\x02\x05", 4);
    mxr__wire_release(&m);
    free(copy);
}

/* Every prefix of a good packet is refused: a record cut anywhere. */
static void test_truncated_rr(void **state)
{
    fixture *f = *state;
    static pkt p, cut;
    start(&p, 2, 0, 0);
    mx_rr(&p, 10, "mx1.example.com");
    mx_rr(&p, 20, "mx2.example.com");
    accepted(f, &p);
    for (size_t n = 0; n < p.n; n++) {
        memcpy(cut.b, p.b, n);
        cut.n = n;
        refused(f, &cut);
    }
}

static void test_rdlength_past_end(void **state)
{
    fixture *f = *state;
    static pkt p;
    start(&p, 1, 0, 0);
    rr_head(&p, 99, 40); /* a type not read: skipped by its length */
    put(&p, "0123456789", 10);
    refused(f, &p);
    start(&p, 1, 0, 0);
    rr_head(&p, 99, 10);
    put(&p, "0123456789", 10);
    accepted(f, &p);
    /* an SOA whose numbers lie past the end (ASan: no read of them) */
    start(&p, 0, 1, 0);
    pkt names = {.n = 0};
    put_name(&names, "ns.example.com");
    put_name(&names, "hostmaster.example.com");
    rr_head(&p, MXR__TYPE_SOA, (uint16_t)(names.n + 20));
    put(&p, names.b, names.n);
    refused(f, &p);
}

static void test_pointer_loop(void **state)
{
    fixture *f = *state;
    static pkt p;
    /* an MX target pointing at itself */
    start(&p, 1, 0, 0);
    rr_head(&p, MXR__TYPE_MX, 4);
    put16(&p, 10);
    size_t at = p.n;
    put16(&p, 0xc000 | (unsigned)at);
    refused(f, &p);
    /* two owners pointing at each other */
    start(&p, 1, 0, 0);
    at = p.n;
    put16(&p, 0xc000 | (unsigned)(at + 2));
    put16(&p, 0xc000 | (unsigned)at);
    refused(f, &p);
    /* a pointer past the end */
    start(&p, 1, 0, 0);
    rr_head(&p, MXR__TYPE_MX, 4);
    put16(&p, 10);
    put16(&p, 0xc000 | (unsigned)(p.n + 2));
    refused(f, &p);
}

/* A chain of pointers: c-ares follows 50, not 51. */
static void test_pointer_chain(void **state)
{
    fixture *f = *state;
    static pkt p;
    for (unsigned hops = 50; hops <= 51; hops++) {
        start(&p, 2, 0, 0);
        rr_head(&p, MXR__TYPE_MX, 4);
        put16(&p, 10);
        size_t target = p.n;
        put16(&p, 0); /* the last pointer of the chain, filled below */
        /* the chain: record data of a type not read */
        rr_head(&p, 99, (uint16_t)(2 * (hops - 1)));
        size_t prev = 12; /* the question's name */
        for (unsigned i = 1; i < hops; i++) {
            size_t here = p.n;
            put16(&p, 0xc000 | (unsigned)prev);
            prev = here;
        }
        p.b[target] = (uint8_t)(0xc0 | prev >> 8);
        p.b[target + 1] = (uint8_t)prev;
        mxr__wire_msg m;
        assert_int_equal(decode(f, &p, &m),
                         hops == 50 ? MXR__WIRE_OK : MXR__WIRE_MALFORMED);
    }
}

static void test_counts_above_records(void **state)
{
    fixture *f = *state;
    static pkt p;
    start(&p, 2, 0, 0);
    mx_rr(&p, 10, "mx1.example.com");
    refused(f, &p);
    /* counts far above what the packet can hold: refused before any
     * allocation */
    start(&p, 0xffff, 0xffff, 0xffff);
    mx_rr(&p, 10, "mx1.example.com");
    long calls = f->ta.calls;
    refused(f, &p);
    assert_int_equal(f->ta.calls, calls);
}

/* Counts below the records present: the bytes left over are refused (a
 * reader would take the next answer as authority, or ignore it). */
static void test_trailing_bytes(void **state)
{
    fixture *f = *state;
    static pkt p;
    start(&p, 1, 0, 0);
    mx_rr(&p, 10, "mx1.example.com");
    mx_rr(&p, 20, "mx2.example.com");
    refused(f, &p);
    start(&p, 1, 0, 0);
    mx_rr(&p, 10, "mx1.example.com");
    put(&p, "", 1);
    refused(f, &p);
}

static void test_name_length(void **state)
{
    fixture *f = *state;
    static pkt p;
    char name[300];
    /* 4 labels of 63 = 256 octets with the root: one too many */
    for (int over = 0; over <= 1; over++) {
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            size_t len = i == 3 ? (size_t)(61 + over) : 63;
            memset(name + n, 'a', len);
            n += len;
            name[n++] = '.';
        }
        name[n - 1] = '\0';
        start(&p, 1, 0, 0);
        mx_rr(&p, 10, name);
        if (over)
            refused(f, &p);
        else
            accepted(f, &p);
    }
}

/* c-ares 1.18.1 copies a label of one NUL byte raw, cutting its text
 * short: such a name cannot be read back. The root itself is fine. */
static void test_nul_label(void **state)
{
    fixture *f = *state;
    static pkt p;
    static const uint8_t nul_first[] = {1, 0, 3, 'c', 'o', 'm', 0};
    static const uint8_t nul_last[] = {3, 'c', 'o', 'm', 1, 0, 0};
    static const uint8_t root[] = {0};
    const struct {
        const uint8_t *name;
        size_t n;
        bool ok;
    } cases[] = {{nul_first, sizeof nul_first, false},
                 {nul_last, sizeof nul_last, false},
                 {root, sizeof root, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        start(&p, 1, 0, 0);
        rr_head(&p, MXR__TYPE_MX, (uint16_t)(2 + cases[i].n));
        put16(&p, 0);
        put(&p, cases[i].name, cases[i].n);
        if (cases[i].ok)
            accepted(f, &p);
        else
            refused(f, &p);
    }
    /* a pointer to the root, and to a name starting with a NUL label */
    for (int nul = 0; nul <= 1; nul++) {
        start(&p, 1, 0, 0);
        rr_head(&p, MXR__TYPE_MX, 4);
        put16(&p, 0);
        put16(&p, 0xc000 | (unsigned)(p.n + 2 + 10 + 2));
        rr_head(&p, 99, (uint16_t)(nul ? sizeof nul_first : 1));
        if (nul)
            put(&p, nul_first, sizeof nul_first);
        else
            put(&p, root, 1);
        p.b[7] = 2;
        if (nul)
            refused(f, &p);
        else
            accepted(f, &p);
    }
}

/* Names without pointers are copied in place, names with pointers go
 * through c-ares: both must give the same canonical name. Each target is
 * written plain in one packet and, in another, as a pointer to the same
 * bytes kept in a record of an unknown type. */
static void decode_target(fixture *f, const pkt *p, uint8_t *out, size_t *n)
{
    mxr__wire_msg m;
    assert_int_equal(mxr__wire_decode(&m, &f->a, p->b, p->n), MXR__WIRE_OK);
    assert_int_equal(m.ancount, p->b[7] == 2 ? 2 : 1);
    const uint8_t *name = mxr__wire_name(&m, m.an[0].data);
    *n = mxr__wire_name_len(name);
    memcpy(out, name, *n);
    mxr__wire_release(&m);
}

static void test_plain_names_as_cares(void **state)
{
    fixture *f = *state;
    static pkt p;
    static const uint8_t odd[][12] = {
        {3, 'M', 'x', '1', 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e'},
        {3, 'a', '.', 'b', 2, '\\', 'c', 0},
        {3, 'a', 0, 'b', 2, 0xff, ' ', 0},
        {2, '_', '-', 1, 'Z', 0}};
    static const size_t len[] = {12, 8, 8, 6};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        uint8_t name[16];
        memcpy(name, odd[i], len[i]);
        size_t n = len[i];
        if (name[n - 1] != 0)
            name[n++] = 0;
        uint8_t plain[256], via_ptr[256];
        size_t plain_n, ptr_n;
        start(&p, 1, 0, 0);
        rr_head(&p, MXR__TYPE_MX, (uint16_t)(2 + n));
        put16(&p, 10);
        put(&p, name, n);
        decode_target(f, &p, plain, &plain_n);
        start(&p, 2, 0, 0);
        rr_head(&p, MXR__TYPE_MX, 4);
        put16(&p, 10);
        put16(&p, 0xc000 | (unsigned)(p.n + 2 + 2 + 10)); /* its rdata */
        rr_head(&p, 99, (uint16_t)n);
        put(&p, name, n);
        decode_target(f, &p, via_ptr, &ptr_n);
        assert_int_equal(plain_n, ptr_n);
        assert_memory_equal(plain, via_ptr, plain_n);
        for (size_t k = 0; k < plain_n; k++) /* letters lower-cased */
            assert_false(plain[k] >= 'A' && plain[k] <= 'Z');
    }
    /* the reserved label types (01, 10) are refused, even with as many
     * bytes after them as their "length" says */
    for (unsigned type = 0x40; type <= 0x80; type += 0x40) {
        uint8_t bad[2 + 0x81] = {(uint8_t)(type | 1)};
        memset(bad + 1, 'a', type | 1);
        bad[1 + (type | 1)] = 0;
        size_t n = 2 + (type | 1);
        start(&p, 1, 0, 0);
        rr_head(&p, MXR__TYPE_MX, (uint16_t)(2 + n));
        put16(&p, 10);
        put(&p, bad, n);
        refused(f, &p);
    }
}

static void test_rdata_form(void **state)
{
    fixture *f = *state;
    static pkt p;
    /* A: 4 bytes or nothing */
    for (uint16_t n = 0; n <= 6; n++) {
        start(&p, 1, 0, 0);
        rr_head(&p, MXR__TYPE_A, n);
        put(&p, "\x01\x02\x03\x04\x05\x06", n);
        if (n == 0 || n == 4)
            accepted(f, &p);
        else
            refused(f, &p);
    }
    /* MX: a target ending before the data does, or only a preference */
    start(&p, 1, 0, 0);
    rr_head(&p, MXR__TYPE_MX, 2 + 3 + 1);
    put16(&p, 10);
    put_name(&p, "mx");
    put(&p, "", 1);
    refused(f, &p);
    start(&p, 1, 0, 0);
    rr_head(&p, MXR__TYPE_MX, 2);
    put16(&p, 10);
    refused(f, &p);
    /* SOA: two names and five numbers, exactly */
    for (int extra = 0; extra <= 1; extra++) {
        start(&p, 0, 1, 0);
        pkt names = {.n = 0};
        put_name(&names, "ns.example.com");
        put_name(&names, "hostmaster.example.com");
        rr_head(&p, MXR__TYPE_SOA, (uint16_t)(names.n + 20 + extra));
        put(&p, names.b, names.n);
        for (int i = 0; i < 5; i++)
            put32(&p, (uint32_t)i + 1);
        put(&p, "\x00", (size_t)extra);
        mxr__wire_msg m;
        uint8_t *copy = malloc(p.n);
        assert_non_null(copy);
        memcpy(copy, p.b, p.n);
        assert_int_equal(mxr__wire_decode(&m, &f->a, copy, p.n),
                         extra ? MXR__WIRE_MALFORMED : MXR__WIRE_OK);
        if (!extra) {
            assert_true(m.has_soa);
            assert_int_equal(m.soa_ttl, 300);
            assert_int_equal(m.soa_minimum, 5);
        }
        mxr__wire_release(&m);
        free(copy);
    }
}

/* An answer bigger than the stack scratch: more records and more name
 * bytes; the blocks are given back by mxr__wire_release. */
static void test_big_answer(void **state)
{
    fixture *f = *state;
    static pkt p;
    unsigned n = 200;
    start(&p, n, 0, 0);
    char name[80];
    for (unsigned i = 0; i < n; i++) {
        snprintf(name, sizeof name, "mx%u.%050u.example.com", i, i);
        mx_rr(&p, (uint16_t)i, name);
    }
    uint8_t *copy = malloc(p.n);
    assert_non_null(copy);
    memcpy(copy, p.b, p.n);
    mxr__wire_msg m;
    assert_int_equal(mxr__wire_decode(&m, &f->a, copy, p.n), MXR__WIRE_OK);
    assert_int_equal(m.ancount, n);
    assert_true(f->a.bytes > 0);
    assert_int_equal(m.an[n - 1].pref, n - 1);
    mxr__wire_release(&m);
    free(copy);
}

static void test_allocation_failures(void **state)
{
    fixture *f = *state;
    static pkt p;
    start(&p, 100, 0, 0);
    char name[80];
    for (unsigned i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "mx%u.%050u.example.com", i, i);
        mx_rr(&p, (uint16_t)i, name);
    }
    for (long k = 1;; k++) {
        mxr_test_alloc ta = {.fail_at = k};
        mxr__alloc a;
        mxr__alloc_init(&a, mxr_test_alloc_fn, &ta);
        mxr__wire_msg m;
        mxr__wire_status st = mxr__wire_decode(&m, &a, p.b, p.n);
        mxr__wire_release(&m);
        assert_int_equal(a.bytes, 0);
        if (ta.calls < k) {
            assert_int_equal(st, MXR__WIRE_OK);
            break;
        }
        assert_int_equal(st, MXR__WIRE_NOMEM);
    }
    (void)f;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, heap_setup, heap_teardown)
    const struct CMUnitTest tests[] = {
        T(test_reads_records),       T(test_truncated_rr),
        T(test_rdlength_past_end),   T(test_pointer_loop),
        T(test_pointer_chain),       T(test_counts_above_records),
        T(test_trailing_bytes),      T(test_name_length),
        T(test_nul_label),           T(test_plain_names_as_cares),
        T(test_rdata_form),          T(test_big_answer),
        T(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
