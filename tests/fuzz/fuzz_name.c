/* fuzz_name.c -- names and addresses from users, DNS and operators
 * (src/name.c, src/addr.c, the server and local-name options): any byte
 * string gives a valid result or a clear one-line error, never a crash.
 *
 * The input is used whole as a byte string (embedded NULs included) by
 * the functions that take a length, and up to its first NUL by those that
 * take a C string. */
#include "harness.h"

#include "base/addr.h"
#include "base/name.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ERR_LEN 256

/* A UTF-8 control that could break a line or turn text around: C1
 * (U+0080..U+009F), U+200E/F, U+2028..U+202E, U+2066..U+2069. */
static bool unsafe_utf8_at(const unsigned char *p)
{
    if (p[0] == 0xc2)
        return p[1] >= 0x80 && p[1] <= 0x9f;
    if (p[0] != 0xe2)
        return false;
    if (p[1] == 0x80)
        return p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae);
    return p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9;
}

/* A message is one printable line: no control character, not even one
 * spelled in UTF-8, can reach a log or a terminal. */
static void check_message(const char *err)
{
    FZ_ASSERT(err[0] != '\0');
    FZ_ASSERT(strlen(err) < ERR_LEN);
    for (const unsigned char *p = (const unsigned char *)err; *p; p++) {
        FZ_ASSERT(*p >= 0x20 && *p != 0x7f);
        FZ_ASSERT(!unsafe_utf8_at(p));
    }
}

static bool is_normal_host(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MXR__NAME_MAX || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.'))
            return false;
    }
    return true;
}

/* A literal's canonical text parses back to the same address. */
static void check_literal(const mxr__input *in)
{
    mxr__input again;
    char err[ERR_LEN];
    FZ_ASSERT(in->domain[0] == '[');
    FZ_ASSERT(mxr__input_parse(in->domain, &again, err, sizeof err) == MXR_OK);
    FZ_ASSERT(again.kind == MXR__INPUT_LITERAL);
    FZ_ASSERT(mxr__addr_equal(&again.literal, &in->literal));
    FZ_ASSERT(strcmp(again.domain, in->domain) == 0);
}

static void fuzz_input(const char *s)
{
    mxr__input in;
    char err[ERR_LEN] = "";
    if (mxr__input_parse(s, &in, err, sizeof err) != MXR_OK) {
        check_message(err);
        FZ_ASSERT(in.domain[0] == '\0'); /* nothing half-filled */
        return;
    }
    if (in.kind == MXR__INPUT_LITERAL) {
        check_literal(&in);
        return;
    }
    FZ_ASSERT(is_normal_host(in.domain));
    /* the domain part of a parsed input is itself a valid input */
    mxr__input again;
    FZ_ASSERT(mxr__input_parse(in.domain, &again, err, sizeof err) == MXR_OK);
    FZ_ASSERT(strcmp(again.domain, in.domain) == 0);
}

static void fuzz_hostname(const uint8_t *data, size_t size)
{
    char out[MXR__NAME_MAX + 1], again[MXR__NAME_MAX + 1];
    char err[ERR_LEN] = "";
    if (mxr__hostname_normalize((const char *)data, size, out, err,
                                sizeof err) != MXR_OK) {
        check_message(err);
        return;
    }
    FZ_ASSERT(is_normal_host(out));
    FZ_ASSERT(mxr__hostname_normalize(out, strlen(out), again, NULL, 0) ==
              MXR_OK);
    FZ_ASSERT(strcmp(out, again) == 0);
}

static void fuzz_addr(const char *s)
{
    mxr_addr a, b;
    char text[MXR_ADDR_STRLEN];
    if (!mxr__addr_parse(s, &a))
        return;
    FZ_ASSERT(a.family == AF_INET || a.family == AF_INET6);
    FZ_ASSERT(mxr_addr_format(&a, text, sizeof text) != NULL);
    FZ_ASSERT(mxr__addr_parse(text, &b) && mxr__addr_equal(&a, &b));
    (void)mxr__addr_classify(&a);
    FZ_ASSERT(mxr__name_is_ip_literal(s));
}

/* Operator-side parsers: a bad value is an error with a message. */
static void fuzz_options(const char *s)
{
    mxr_options *o;
    if (mxr_options_new(&o) != MXR_OK)
        return;
    mxr_status st = mxr_options_add_server(o, s);
    FZ_ASSERT(st == MXR_OK || st == MXR_ESERVER);
    if (st != MXR_OK)
        check_message(mxr_options_errmsg(o));
    st = mxr_options_add_local_name(o, s);
    FZ_ASSERT(st == MXR_OK || st == MXR_EBADNAME);
    (void)mxr_family_parse(s);
    (void)mxr_stage_parse(s);
    (void)mxr_class_parse(s);
    (void)mxr_action_parse(s);
    mxr_options_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fuzz_input(s);
    fuzz_hostname(data, size);
    fuzz_addr(s);
    (void)mxr__name_is_ip_literal(s);
    fuzz_options(s);
    free(s);
    return 0;
}
