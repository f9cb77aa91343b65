/* support.h -- shared helpers for the cmocka unit tests. */
#ifndef MXR_TEST_SUPPORT_H
#define MXR_TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mxroute.h"

/* Tests initialise mxr_test_alloc positionally ({n, 0, 0}); fields added
 * later are zero, which is what they mean. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* An allocator that fails the Nth allocation (counting from 1; 0 = never)
 * and counts live bytes, for allocation-failure tests. With fail_from set,
 * the allocation of that number and every one after it fail too (memory
 * stays exhausted). */
typedef struct mxr_test_alloc {
    long fail_at;
    long calls;
    size_t live;
    long fail_from; /* 0 = never */
} mxr_test_alloc;

void *mxr_test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);

/* Path of a file under the source tree (MXR_SOURCE_DIR). Static buffer. */
const char *mxr_test_source_path(const char *rel);

/* A throwaway self-signed certificate for host (CN and DNS subjectAltName)
 * with key k, valid from an hour ago for a day: the server side of the TLS
 * tests. */
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;
X509 *mxr_test_self_signed(EVP_PKEY *k, const char *host);
/* Write x as PEM (NULL: a PEM block that is not base64) to a new
 * temporary file; its name goes to path (cap >= 64). */
void mxr_test_write_pem(char *path, size_t cap, X509 *x);

/* A word table of the JSON and CLI contract (stages, families, ...): the
 * words in enum order, the library's name and parse functions for it
 * (adapters taking int), and near misses that must not parse. */
typedef struct mxr_test_words {
    const char *const *words;
    size_t n;
    const char *(*name)(int value);
    int (*parse)(const char *word);
    const char *const *bad;
    size_t nbad;
} mxr_test_words;

/* name(i) is words[i] and parse(words[i]) is i for every i < n; name of
 * n, -1 and 1000 is "unknown"; parse of NULL and of every bad word -1. */
void mxr_test_check_words(const mxr_test_words *t);

#endif
