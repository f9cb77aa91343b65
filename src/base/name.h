/* name.h -- turning user input and DNS names into validated host names.
 * Nothing here allocates; every function is safe on any byte string. */
#ifndef MXR_NAME_H
#define MXR_NAME_H

#include "mxroute.h"

#define MXR__NAME_MAX 253 /* octets in presentation form, no final dot */
#define MXR__LABEL_MAX 63
#define MXR__INPUT_MAX 1024 /* longest input accepted at all */

typedef enum mxr__input_kind {
    MXR__INPUT_DOMAIN = 0, /* route by MX */
    MXR__INPUT_LITERAL = 1 /* address literal: route to that address */
} mxr__input_kind;

typedef struct mxr__input {
    mxr__input_kind kind;
    bool has_local;                 /* input was local@domain */
    char domain[MXR__NAME_MAX + 1]; /* A-label, lower case, no final dot;
                                       for literals the canonical bracketed
                                       text: "[192.0.2.1]",
                                       "[IPv6:2001:db8::1]" (inet_ntop) */
    mxr_addr literal;               /* for MXR__INPUT_LITERAL */
} mxr__input;

/* Parse a domain or an address: "example.com", "Example.COM.",
 * "user@example.com", "\"a b\"@example.com", "user@[192.0.2.1]",
 * "user@[IPv6:2001:db8::1]", "[192.0.2.1]", U-labels (IDNA2008).
 * On error returns MXR_EBADNAME and writes a one-line reason to err. */
mxr_status mxr__input_parse(const char *input, mxr__input *out, char *err,
                            size_t errlen);

/* Normalise an ASCII host name (as found in DNS or given by an operator):
 * lower-case, drop one trailing dot, check labels are LDH, 1..63 octets,
 * total at most 253. Returns MXR_OK or MXR_EBADNAME with a reason. */
mxr_status mxr__hostname_normalize(const char *in, size_t len,
                                   char out[MXR__NAME_MAX + 1], char *err,
                                   size_t errlen);

/* s[0..n) made fit for a one-line message: at most 40 bytes, control
 * and non-ASCII bytes written \xNN, "..." when cut. Returns buf. */
#define MXR__QUOTE_BUF 168 /* 40 bytes as \xNN, "..." and the NUL */
const char *mxr__quote(const char *s, size_t n, char buf[MXR__QUOTE_BUF]);

/* Two host names compared as DNS compares them: ASCII case ignored, one
 * trailing dot ignored ("MX1.Example.COM." is "mx1.example.com"). */
bool mxr__hostname_eq(const char *a, const char *b);

/* A host name kept beside a domain it may end in, as cached MX answers
 * (against their question) and plan templates (against their domain)
 * keep it: the whole name, the part before ".domain", or nothing when it
 * is the domain. */
typedef enum mxr__name_form {
    MXR__NAME_WHOLE = 0,
    MXR__NAME_UNDER = 1,
    MXR__NAME_IS_DOMAIN = 2
} mxr__name_form;

/* name (n bytes) against domain (d bytes; 0 keeps every name whole): its
 * form, and in *kept how many of its first bytes are kept. */
mxr__name_form mxr__name_split(const char *name, size_t n, const char *domain,
                               size_t d, size_t *kept);
/* The whole name back from its kept bytes (k) and form, NUL-terminated in
 * out (k + 1 + d + 1 bytes at most); returns its length. */
size_t mxr__name_join(char *out, const char *kept, size_t k,
                      mxr__name_form form, const char *domain, size_t d);

/* True when name is spelled as an IPv4 or IPv6 address ("192.0.2.1"). */
bool mxr__name_is_ip_literal(const char *name);

#endif
