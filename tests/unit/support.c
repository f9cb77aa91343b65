/* support.c -- shared helpers for the cmocka unit tests. */
#include "support.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *mxr_test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    mxr_test_alloc *t = ud;
    if (nsize == 0) {
        if (ptr)
            t->live -= osize;
        free(ptr);
        return NULL;
    }
    t->calls++;
    if (t->fail_at > 0 && t->calls == t->fail_at)
        return NULL;
    if (t->fail_from > 0 && t->calls >= t->fail_from)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        t->live += nsize - (ptr ? osize : 0);
    return p;
}

const char *mxr_test_source_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("MXR_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

void mxr_test_check_words(const mxr_test_words *t)
{
    for (size_t i = 0; i < t->n; i++) {
        assert_string_equal(t->name((int)i), t->words[i]);
        assert_int_equal(t->parse(t->words[i]), (int)i);
    }
    assert_string_equal(t->name((int)t->n), "unknown");
    assert_string_equal(t->name(-1), "unknown");
    assert_string_equal(t->name(1000), "unknown");
    assert_int_equal(t->parse(NULL), -1);
    for (size_t i = 0; i < t->nbad; i++)
        if (t->parse(t->bad[i]) != -1)
            fail_msg("\"%s\" parsed as %d", t->bad[i], t->parse(t->bad[i]));
}

X509 *mxr_test_self_signed(EVP_PKEY *k, const char *host)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)host, -1, -1, 0);
    X509_set_issuer_name(x, n);
    char san[300];
    snprintf(san, sizeof san, "DNS:%s", host);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    return x;
}

void mxr_test_write_pem(char *path, size_t cap, X509 *x)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(path, cap, "%s/mxr-tls-XXXXXX",
             tmp && strlen(tmp) + 16 < cap ? tmp : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    if (x)
        assert_int_equal(PEM_write_X509(f, x), 1);
    else
        fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
              "-----END CERTIFICATE-----\n",
              f);
    fclose(f);
}
