/* strings.c -- names of statuses, reasons, sources, notes and families,
 * and the version. Words are part of the JSON contract: never rename. */
#include "mxroute.h"
#include "base/text.h"

#include <string.h>

unsigned mxr_version(void)
{
    return MXR_VERSION_HEX;
}

const char *mxr_version_string(void)
{
    return MXR_VERSION_STRING;
}

const char *mxr_strerror(mxr_status status)
{
    static const char *const msg[] = {
        [MXR_OK] = "success",
        [MXR_ENOMEM] = "out of memory",
        [MXR_EINVAL] = "invalid argument",
        [MXR_EBADNAME] = "invalid domain or address",
        [MXR_EZONE] = "zone data could not be loaded",
        [MXR_ESERVER] = "DNS server address not understood",
        [MXR_EDNS] = "DNS library failure",
        [MXR_EDESTROYED] = "engine destroyed",
        [MXR_EBUSY] = "too many pending requests",
        [MXR_EINTERNAL] = "internal error",
        [MXR_EDONE] = "the attempt is over",
        [MXR_ESTATE] = "not valid in the attempt's current state",
        [MXR_EPOLICY] = "a policy could not be loaded",
    };
    if ((unsigned)status < sizeof msg / sizeof msg[0] && msg[status])
        return msg[status];
    return "unknown error";
}

static const char *const reason_words[MXR_REASON_COUNT_] = {
    [MXR_REASON_NONE] = "none",
    [MXR_REASON_NULL_MX] = "null-mx",
    [MXR_REASON_NULL_MX_ENTRY] = "null-mx-entry",
    [MXR_REASON_NO_MAIL_HOST] = "no-mail-host",
    [MXR_REASON_NXDOMAIN] = "nxdomain",
    [MXR_REASON_SERVFAIL] = "servfail",
    [MXR_REASON_REFUSED] = "refused",
    [MXR_REASON_TIMEOUT] = "timeout",
    [MXR_REASON_NETWORK] = "network",
    [MXR_REASON_CNAME_TARGET] = "cname-target",
    [MXR_REASON_IP_LITERAL] = "ip-literal",
    [MXR_REASON_NO_ADDRESS] = "no-address",
    [MXR_REASON_TEMPFAIL] = "tempfail",
    [MXR_REASON_NO_USABLE_HOST] = "no-usable-host",
    [MXR_REASON_UNROUTABLE_ADDRESS] = "unroutable-address",
    [MXR_REASON_PRIVATE_ADDRESS] = "private-address",
    [MXR_REASON_DUPLICATE] = "duplicate",
    [MXR_REASON_SELF] = "self",
    [MXR_REASON_LOOPS_TO_SELF] = "loops-to-self",
    [MXR_REASON_LIMIT] = "limit",
    [MXR_REASON_BAD_TARGET] = "bad-target",
    [MXR_REASON_POLICY] = "policy",
};

const char *mxr_reason_name(mxr_reason reason)
{
    if ((unsigned)reason < MXR_REASON_COUNT_)
        return reason_words[reason];
    return "unknown";
}

const char *mxr_result_name(mxr_result result)
{
    switch (result) {
    case MXR_RESULT_OK:
        return "ok";
    case MXR_RESULT_TEMPFAIL:
        return "tempfail";
    case MXR_RESULT_PERMFAIL:
        return "permfail";
    }
    return "unknown";
}

const char *mxr_source_name(mxr_source source)
{
    switch (source) {
    case MXR_SOURCE_MX:
        return "mx";
    case MXR_SOURCE_IMPLICIT:
        return "implicit";
    case MXR_SOURCE_POLICY:
        return "policy";
    case MXR_SOURCE_LITERAL:
        return "literal";
    }
    return "unknown";
}

const char *mxr_note_name(uint32_t note_bit)
{
    switch (note_bit) {
    case MXR_NOTE_CNAME_TARGET:
        return "cname-target";
    case MXR_NOTE_ADDR_LIMIT:
        return "address-limit";
    case MXR_NOTE_FILTERED:
        return "filtered";
    case MXR_NOTE_DOWN:
        return "down";
    }
    return NULL;
}

static const char *const family_words[] = {
    [MXR_FAMILY_ANY] = "any",
    [MXR_FAMILY_IPV4] = "ipv4",
    [MXR_FAMILY_IPV6] = "ipv6",
    [MXR_FAMILY_PREFER_IPV4] = "prefer-ipv4",
    [MXR_FAMILY_PREFER_IPV6] = "prefer-ipv6",
};

int mxr__word_index(const char *const *words, size_t n, const char *word)
{
    for (size_t i = 0; word && i < n; i++)
        if (strcmp(word, words[i]) == 0)
            return (int)i;
    return -1;
}

int mxr_family_parse(const char *word)
{
    return mxr__word_index(family_words,
                           sizeof family_words / sizeof *family_words, word);
}

const char *mxr_family_name(mxr_family family)
{
    if ((unsigned)family < sizeof family_words / sizeof *family_words)
        return family_words[family];
    return "unknown";
}

static const char *const tls_words[] = {
    [MXR_TLS_OPPORTUNISTIC] = "opportunistic",
    [MXR_TLS_REQUIRED] = "required",
    [MXR_TLS_VERIFY] = "verify",
    [MXR_TLS_NONE] = "none",
};

int mxr_tls_mode_parse(const char *word)
{
    return mxr__word_index(tls_words, sizeof tls_words / sizeof *tls_words,
                           word);
}

const char *mxr_tls_mode_name(mxr_tls_mode mode)
{
    if ((unsigned)mode < sizeof tls_words / sizeof *tls_words)
        return tls_words[mode];
    return "unknown";
}

void mxr__copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}
