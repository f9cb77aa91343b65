/* harness.h -- shared by the fuzz targets (tests/fuzz/fuzz_*.c): the
 * libFuzzer entry point, a byte reader over the input, a counting
 * allocator and the invariants every plan must keep.
 *
 * Each target is built twice: with clang and libFuzzer (scripts/fuzz.sh),
 * and with any compiler as a replay program (replay.c) that feeds the seed
 * corpus and the regression inputs to the same entry point under ctest. */
#ifndef MXR_FUZZ_HARNESS_H
#define MXR_FUZZ_HARNESS_H

#include "mxroute.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash: libFuzzer saves the input. */
#define FZ_ASSERT(cond) ((cond) ? (void)0 : fz_fail(__FILE__, __LINE__, #cond))
void fz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

/* Reads the input front to back; past the end every read gives 0. */
typedef struct fz_reader {
    const uint8_t *p;
    size_t left;
} fz_reader;

uint8_t fz_byte(fz_reader *r);
uint16_t fz_u16(fz_reader *r);
/* Up to n bytes; returns how many were taken. */
size_t fz_take(fz_reader *r, const uint8_t **out, size_t n);

/* A DNS response for the answer targets: body's first 12 bytes as the
 * header (QDCOUNT forced to 1, zeros when shorter), the question (qname,
 * qtype, class IN), then the rest of body. malloc'd; NULL when out of
 * memory. */
uint8_t *fz_splice_answer(const uint8_t *body, size_t len, const char *qname,
                          uint16_t qtype, size_t *out_len);

/* An allocator for mxr_options_set_allocator that counts live bytes, so
 * a target can check that an engine gives back everything it took. */
typedef struct fz_alloc {
    size_t live;
} fz_alloc;
void *fz_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

/* What a plan made by the engine (no policy) must respect. */
typedef struct fz_plan_rules {
    size_t max_hosts, max_addrs_per_host, max_addrs_total;
    mxr_family family;
    bool allow_loopback, deny_private;
    bool policy; /* a policy may have edited it: limits and filters off */
} fz_plan_rules;

/* Abort on any broken invariant of plan (NULL is allowed when status is
 * not MXR_OK). */
void fz_check_plan(mxr_status status, const mxr_plan *plan,
                   const fz_plan_rules *rules);

/* Walk one delivery attempt of plan for two recipients, the outcome of
 * each hop chosen by the reader, and check that it ends (bounded) with no
 * recipient left pending. */
void fz_walk_attempt(mxr_engine *e, const mxr_plan *plan, fz_reader *r);

/* Run the engine until nothing is pending; a hang is a crash. */
void fz_run(mxr_engine *e);

/* One route request: fz_on_route (an mxr_route_cb) fills it, and checks
 * that it fires once. */
typedef struct fz_result {
    bool done;
    mxr_status status;
    mxr_plan *plan;
} fz_result;
void fz_on_route(void *arg, mxr_status status, mxr_plan *plan);

/* The request has ended: check its plan, walk an attempt along it, free
 * it. */
void fz_settle(mxr_engine *e, fz_result *res, const fz_plan_rules *rules,
               fz_reader *r);

/* The engine's clock in the targets (mxr_options_set_clock): fz_now_ms,
 * which each input sets and advances, so runs are reproducible. */
extern uint64_t fz_now_ms;
uint64_t fz_clock(void *ud);

#endif
