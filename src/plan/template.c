/* template.c -- compact plan templates: packing from the builder and
 * unpacking into a public plan block.
 *
 * A template is laid out as
 *
 *   head | hosts (12 bytes each) | skipped (4 each) | addresses | strings
 *
 * Addresses are a family tag byte and their 4 or 16 bytes, host by host.
 * Strings are NUL-terminated, in order: each host's name then its label
 * (when it has one), then each skipped entry's name. A name is stored
 * whole, empty when it is the domain, or without ".domain" when it ends
 * in it (most MX hosts live in their domain); unpacking puts the domain
 * back. Unpacking walks the template once, front to back. */
#include "plan/template.h"
#include "base/name.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

/* How a name is stored (an mxr__name_form: the low bits of a host's
 * flags, a skip's how). */
#define NAME_MASK 3u
#define HOST_TLS 0x4u
#define HOST_LABEL 0x8u
#define TAG_V4 4
#define TAG_V6 6

typedef struct tmpl_head {
    uint32_t ttl, mx_ttl;
    uint32_t strbytes;   /* the public plan's strings, the domain included */
    uint32_t addr_bytes; /* the address stream */
    uint16_t nhosts, nskips, naddrs;
    uint8_t result, reason;
    bool implicit;
} tmpl_head;

typedef struct tmpl_host {
    uint32_t ttl;
    uint16_t pref, port;
    uint8_t naddrs, source, notes, flags;
} tmpl_host;

typedef struct tmpl_skip {
    uint16_t pref;
    uint8_t reason, how;
} tmpl_skip;

_Static_assert(alignof(tmpl_head) <= MXR__TMPL_ALIGN &&
                   alignof(tmpl_host) <= MXR__TMPL_ALIGN &&
                   sizeof(tmpl_head) % alignof(tmpl_host) == 0 &&
                   sizeof(tmpl_host) % alignof(tmpl_skip) == 0,
               "template parts stay aligned");

/* ------------------------------------------------------------ names */

/* How name is stored against domain, and how many bytes of it. */
static mxr__name_form name_form(const char *name, const char *domain,
                                size_t *kept)
{
    return mxr__name_split(name, strlen(name), domain, strlen(domain), kept);
}

/* Bytes the name takes in the public plan, NUL included. */
static size_t name_public_size(const char *name)
{
    return strlen(name) + 1;
}

static char *put_bytes(char *at, const char *s, size_t n)
{
    memcpy(at, s, n);
    at[n] = '\0';
    return at + n + 1;
}

/* ------------------------------------------------------------ sizing */

typedef struct tmpl_count {
    size_t naddrs, addr_bytes, strbytes, stored;
} tmpl_count;

static bool host_fits(const mxr__host *h)
{
    if (h->naddrs > UINT8_MAX || h->notes > UINT8_MAX ||
        (unsigned)h->source > UINT8_MAX)
        return false;
    for (size_t k = 0; k < h->naddrs; k++)
        if (h->addrs[k].family != AF_INET && h->addrs[k].family != AF_INET6)
            return false;
    return true;
}

static void count_host(const mxr__host *h, const char *domain, tmpl_count *n)
{
    size_t kept;
    name_form(h->name, domain, &kept);
    n->stored += kept + 1;
    n->strbytes += name_public_size(h->name);
    if (h->label[0]) {
        n->stored += strlen(h->label) + 1;
        n->strbytes += strlen(h->label) + 1;
    }
    n->naddrs += h->naddrs;
    for (size_t k = 0; k < h->naddrs; k++)
        n->addr_bytes += h->addrs[k].family == AF_INET6 ? 17 : 5;
}

/* Counts pb's parts; false when it cannot be a template. */
static bool count_template(const mxr__plan_builder *pb, const char *domain,
                           tmpl_count *n)
{
    *n = (tmpl_count){.strbytes = strlen(domain) + 1};
    if (pb->nhosts > UINT16_MAX || pb->nskips > UINT16_MAX ||
        (unsigned)pb->result > UINT8_MAX || (unsigned)pb->reason > UINT8_MAX)
        return false;
    for (size_t i = 0; i < pb->nhosts; i++) {
        if (!host_fits(&pb->hosts[i]))
            return false;
        count_host(&pb->hosts[i], domain, n);
    }
    for (size_t i = 0; i < pb->nskips; i++) {
        size_t kept;
        if ((unsigned)pb->skips[i].reason > UINT8_MAX)
            return false;
        name_form(pb->skips[i].name, domain, &kept);
        n->stored += kept + 1;
        n->strbytes += name_public_size(pb->skips[i].name);
    }
    /* names are at most MXR__NAME_MAX bytes: no sum here can overflow */
    return n->naddrs <= UINT16_MAX && n->strbytes <= UINT32_MAX;
}

size_t mxr__tmpl_size(const mxr__plan_builder *pb, const char *domain)
{
    tmpl_count n;
    if (!count_template(pb, domain ? domain : "", &n))
        return 0;
    return sizeof(tmpl_head) + pb->nhosts * sizeof(tmpl_host) +
           pb->nskips * sizeof(tmpl_skip) + n.addr_bytes + n.stored;
}

/* ----------------------------------------------------------- packing */

static uint8_t *pack_addrs(const mxr__host *h, uint8_t *at)
{
    for (size_t k = 0; k < h->naddrs; k++) {
        bool v6 = h->addrs[k].family == AF_INET6;
        size_t n = v6 ? 16 : 4;
        *at++ = v6 ? TAG_V6 : TAG_V4;
        memcpy(at, h->addrs[k].bytes, n);
        at += n;
    }
    return at;
}

/* Stores name as name_form says; returns the form. */
static unsigned pack_name(const char *name, const char *domain, char **str)
{
    size_t kept;
    unsigned form = name_form(name, domain, &kept);
    *str = put_bytes(*str, name, kept);
    return form;
}

void mxr__tmpl_pack(const mxr__plan_builder *pb, const char *domain, void *mem)
{
    domain = domain ? domain : "";
    tmpl_count n;
    count_template(pb, domain, &n); /* mxr__tmpl_size said it fits */
    tmpl_head *head = mem;
    *head = (tmpl_head){.ttl = pb->ttl == UINT32_MAX ? 0 : pb->ttl,
                        .mx_ttl = pb->mx_ttl,
                        .strbytes = (uint32_t)n.strbytes,
                        .addr_bytes = (uint32_t)n.addr_bytes,
                        .nhosts = (uint16_t)pb->nhosts,
                        .nskips = (uint16_t)pb->nskips,
                        .naddrs = (uint16_t)n.naddrs,
                        .result = (uint8_t)pb->result,
                        .reason = (uint8_t)pb->reason,
                        .implicit = pb->implicit};
    tmpl_host *hosts = (tmpl_host *)(head + 1);
    tmpl_skip *skips = (tmpl_skip *)(hosts + pb->nhosts);
    uint8_t *addrs = (uint8_t *)(skips + pb->nskips);
    char *str = (char *)addrs + n.addr_bytes;
    for (size_t i = 0; i < pb->nhosts; i++) {
        const mxr__host *h = &pb->hosts[i];
        unsigned flags = pack_name(h->name, domain, &str);
        if (h->label[0]) {
            str = put_bytes(str, h->label, strlen(h->label));
            flags |= HOST_LABEL;
        }
        flags |= h->tls_required ? HOST_TLS : 0;
        hosts[i] = (tmpl_host){.ttl = h->ttl,
                               .pref = h->pref,
                               .port = h->port,
                               .naddrs = (uint8_t)h->naddrs,
                               .source = (uint8_t)h->source,
                               .notes = (uint8_t)h->notes,
                               .flags = (uint8_t)flags};
        addrs = pack_addrs(h, addrs);
    }
    for (size_t i = 0; i < pb->nskips; i++) {
        unsigned form = pack_name(pb->skips[i].name, domain, &str);
        skips[i] = (tmpl_skip){.pref = pb->skips[i].pref,
                               .reason = (uint8_t)pb->skips[i].reason,
                               .how = (uint8_t)form};
    }
}

mxr_result mxr__tmpl_result(const void *tmpl)
{
    return (mxr_result)((const tmpl_head *)tmpl)->result;
}

uint32_t mxr__tmpl_ttl(const void *tmpl)
{
    return ((const tmpl_head *)tmpl)->ttl;
}

/* --------------------------------------------------------- unpacking */

/* Where unpacking reads (the template) and writes (the public block). */
typedef struct unpacker {
    const char *str;   /* the template's next string */
    const uint8_t *ad; /* its next address */
    char *out;         /* the plan's next string */
    mxr_addr *addrs;   /* its next address */
    const char *domain;
    size_t domlen;
} unpacker;

/* The next stored name, made whole again in the plan's strings. */
static const char *unpack_name(unpacker *u, unsigned form)
{
    size_t kept = strlen(u->str);
    char *at = u->out;
    size_t n = mxr__name_join(at, u->str, kept, (mxr__name_form)form, u->domain,
                              u->domlen);
    u->out = at + n + 1;
    u->str += kept + 1;
    return at;
}

static const char *unpack_label(unpacker *u)
{
    size_t n = strlen(u->str);
    char *at = u->out;
    u->out = put_bytes(at, u->str, n);
    u->str += n + 1;
    return at;
}

static const mxr_addr *unpack_addrs(unpacker *u, size_t n)
{
    mxr_addr *first = u->addrs;
    for (size_t k = 0; k < n; k++) {
        bool v6 = *u->ad++ == TAG_V6;
        size_t len = v6 ? 16 : 4;
        mxr_addr *ad = u->addrs++;
        *ad = (mxr_addr){.family = v6 ? AF_INET6 : AF_INET};
        memcpy(ad->bytes, u->ad, len);
        u->ad += len;
    }
    return first;
}

static void unpack_host(unpacker *u, const tmpl_host *th, mxr_candidate *c)
{
    *c = (mxr_candidate){.preference = th->pref,
                         .port = th->port,
                         .source = (mxr_source)th->source,
                         .notes = th->notes,
                         .tls_required = (th->flags & HOST_TLS) != 0,
                         .naddrs = th->naddrs,
                         .ttl = th->ttl};
    c->host = unpack_name(u, th->flags & NAME_MASK);
    c->label = th->flags & HOST_LABEL ? unpack_label(u) : NULL;
    c->addrs = unpack_addrs(u, th->naddrs);
}

mxr_plan *mxr__tmpl_unpack(const void *tmpl, const char *domain, size_t domlen,
                           const char *input, mxr_alloc_fn fn, void *ud)
{
    const tmpl_head *head = tmpl;
    mxr__plan_room room = {head->nhosts, head->nskips, head->naddrs,
                           head->strbytes};
    mxr__plan_parts parts;
    if (!mxr__plan_block(&room, input, fn, ud, &parts))
        return NULL;
    const tmpl_host *hosts = (const tmpl_host *)(head + 1);
    const tmpl_skip *skips = (const tmpl_skip *)(hosts + head->nhosts);
    const uint8_t *ad = (const uint8_t *)(skips + head->nskips);
    unpacker u = {.str = (const char *)ad + head->addr_bytes,
                  .ad = ad,
                  .out = parts.strings,
                  .addrs = parts.addrs,
                  .domain = domain,
                  .domlen = domlen};
    mxr_plan *p = parts.plan;
    p->domain = u.out;
    u.out = put_bytes(u.out, domain, domlen);
    for (size_t i = 0; i < head->nhosts; i++)
        unpack_host(&u, &hosts[i], &parts.candidates[i]);
    for (size_t i = 0; i < head->nskips; i++) {
        parts.skipped[i] = (mxr_skipped){.preference = skips[i].pref,
                                         .reason = (mxr_reason)skips[i].reason};
        parts.skipped[i].host = unpack_name(&u, skips[i].how);
    }
    p->result = (mxr_result)head->result;
    p->reason = (mxr_reason)head->reason;
    p->implicit = head->implicit;
    p->ttl = head->ttl;
    p->mx_ttl = head->mx_ttl;
    return p;
}
