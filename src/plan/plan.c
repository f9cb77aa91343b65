/* plan.c -- the plan builder and the single-block packed plan.
 *
 * A packed plan is one allocation laid out as
 *
 *   plan_header | mxr_plan | candidates | skipped (+ reserve) | addresses |
 *   strings (domain, candidate hosts, skipped hosts) | input
 *
 * Every pointer in the plan points inside the block, so a copy is a memcpy
 * plus one relocation, and mxr_plan_free needs nothing but the block. The
 * input comes last so that a copy for another input only changes the tail. */
#include "plan/plan.h"
#include "core/core.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------- builder */

void mxr__pb_init(mxr__plan_builder *pb, mxr__alloc *a)
{
    memset(pb, 0, sizeof *pb);
    pb->a = a;
    pb->result = MXR_RESULT_OK;
    pb->reason = MXR_REASON_NONE;
    pb->ttl = UINT32_MAX;
}

void mxr__pb_free(mxr__plan_builder *pb)
{
    for (size_t i = 0; i < pb->nhosts; i++)
        mxr__free(pb->a, pb->hosts[i].addrs);
    mxr__free(pb->a, pb->hosts);
    mxr__free(pb->a, pb->skips);
    mxr__pb_init(pb, pb->a);
}

void mxr__pb_reset(mxr__plan_builder *pb, size_t keep_max)
{
    for (size_t i = 0; i < pb->nhosts; i++)
        mxr__free(pb->a, pb->hosts[i].addrs);
    mxr__host *hosts = pb->hosts;
    mxr__skip *skips = pb->skips;
    size_t caphosts = pb->caphosts, capskips = pb->capskips;
    if (caphosts > keep_max) {
        mxr__free(pb->a, hosts);
        hosts = NULL;
        caphosts = 0;
    }
    if (capskips > keep_max) {
        mxr__free(pb->a, skips);
        skips = NULL;
        capskips = 0;
    }
    mxr__pb_init(pb, pb->a);
    pb->hosts = hosts;
    pb->caphosts = caphosts;
    pb->skips = skips;
    pb->capskips = capskips;
}

/* Grows *arr (of elements of elem bytes, *cap of them) so that it holds at
 * least need elements; doubling keeps appends amortised O(1). */
static int ensure_capacity(mxr__alloc *a, void **arr, size_t *cap, size_t need,
                           size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem)
        return -1;
    void *p = mxr__realloc(a, *arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Names are normalised by the caller and fit; an overlong one is cut
 * rather than overflowing the fixed buffer. */
static void copy_name(char dst[MXR__NAME_MAX + 1], const char *src)
{
    size_t n = src ? strnlen(src, MXR__NAME_MAX) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

mxr__host *mxr__pb_add_host(mxr__plan_builder *pb, const char *name,
                            uint16_t pref, mxr_source source, uint16_t port)
{
    void *arr = pb->hosts;
    if (ensure_capacity(pb->a, &arr, &pb->caphosts, pb->nhosts + 1,
                        sizeof *pb->hosts) < 0)
        return NULL;
    pb->hosts = arr;
    mxr__host *h = &pb->hosts[pb->nhosts++];
    /* Not the name and label buffers, most of the struct, which are only
     * read up to their NUL. */
    memset(h, 0, offsetof(mxr__host, name));
    copy_name(h->name, name);
    h->label[0] = '\0';
    h->pref = pref;
    h->port = port;
    h->source = source;
    return h;
}

mxr_status mxr__pb_add_addr(mxr__plan_builder *pb, mxr__host *h,
                            const mxr_addr *ad)
{
    /* The allocator remembers each block's size, which spares the host
     * struct a capacity field. */
    size_t cap = mxr__alloc_size(h->addrs) / sizeof *h->addrs;
    void *arr = h->addrs;
    if (ensure_capacity(pb->a, &arr, &cap, h->naddrs + 1, sizeof *h->addrs) < 0)
        return MXR_ENOMEM;
    h->addrs = arr;
    h->addrs[h->naddrs++] = *ad;
    return MXR_OK;
}

mxr_status mxr__pb_reserve_skips(mxr__plan_builder *pb, size_t more)
{
    if (more > SIZE_MAX - pb->nskips)
        return MXR_ENOMEM;
    void *arr = pb->skips;
    if (ensure_capacity(pb->a, &arr, &pb->capskips, pb->nskips + more,
                        sizeof *pb->skips) < 0)
        return MXR_ENOMEM;
    pb->skips = arr;
    return MXR_OK;
}

mxr_status mxr__pb_skip(mxr__plan_builder *pb, const char *name, uint16_t pref,
                        mxr_reason reason)
{
    if (mxr__pb_reserve_skips(pb, 1) != MXR_OK)
        return MXR_ENOMEM;
    mxr__skip *s = &pb->skips[pb->nskips++];
    copy_name(s->name, name);
    s->pref = pref;
    s->reason = reason;
    return MXR_OK;
}

void mxr__pb_remove_host(mxr__plan_builder *pb, size_t i)
{
    if (i >= pb->nhosts)
        return;
    mxr__free(pb->a, pb->hosts[i].addrs);
    memmove(&pb->hosts[i], &pb->hosts[i + 1],
            (pb->nhosts - i - 1) * sizeof *pb->hosts);
    pb->nhosts--;
}

void mxr__pb_fail(mxr__plan_builder *pb, mxr_result result, mxr_reason reason)
{
    pb->result = result;
    pb->reason = reason;
}

void mxr__pb_lower_ttl(mxr__plan_builder *pb, uint32_t ttl)
{
    if (ttl < pb->ttl)
        pb->ttl = ttl;
}

/* --------------------------------------------------------- packed plan */

/* Sits in front of the mxr_plan; aligned as max_align_t (not padded to
 * its size), which keeps the plan aligned. */
typedef struct plan_header {
    struct {
        _Alignas(max_align_t) mxr_alloc_fn fn;
        void *ud;
        size_t size;     /* the whole block, header included */
        size_t skip_cap; /* room in the skipped array */
    } h;
} plan_header;

/* Byte offsets of each part of a block, from its start. */
typedef struct plan_layout {
    size_t candidates, skipped, addrs, strings, input, size;
    size_t skip_cap;
} plan_layout;

/* Overflow-checked size arithmetic: false when the block cannot exist. */
static bool size_add(size_t *acc, size_t n)
{
    if (n > SIZE_MAX - *acc)
        return false;
    *acc += n;
    return true;
}

/* Reserves count elements of elem bytes aligned to align at *acc; the
 * array starts at *at. */
static bool layout_array(size_t *acc, size_t count, size_t elem, size_t align,
                         size_t *at)
{
    size_t pad = (align - *acc % align) % align;
    if (!size_add(acc, pad))
        return false;
    *at = *acc;
    return count <= SIZE_MAX / elem && size_add(acc, count * elem);
}

static bool layout_string(size_t *acc, const char *s)
{
    return size_add(acc, strlen(s) + 1);
}

/* The layout for a plan of these sizes; strbytes counts every string
 * but the input. */
static bool plan_layout_sized(const mxr__plan_room *room, size_t inputlen,
                              plan_layout *lay)
{
    size_t acc = sizeof(plan_header) + sizeof(mxr_plan);
    if (room->nskipped > SIZE_MAX - room->ncandidates)
        return false;
    /* room to move every candidate to the skipped list (limits) */
    lay->skip_cap = room->nskipped + room->ncandidates;
    if (!layout_array(&acc, room->ncandidates, sizeof(mxr_candidate),
                      alignof(mxr_candidate), &lay->candidates) ||
        !layout_array(&acc, lay->skip_cap, sizeof(mxr_skipped),
                      alignof(mxr_skipped), &lay->skipped) ||
        !layout_array(&acc, room->naddrs, sizeof(mxr_addr), alignof(mxr_addr),
                      &lay->addrs))
        return false;
    lay->strings = acc;
    if (!size_add(&acc, room->strbytes))
        return false;
    lay->input = acc;
    if (!size_add(&acc, inputlen) || !size_add(&acc, 1))
        return false;
    lay->size = acc;
    return true;
}

static bool plan_layout_for(const mxr__plan_builder *pb, const char *input,
                            const char *domain, plan_layout *lay)
{
    mxr__plan_room room = {
        .ncandidates = pb->nhosts, .nskipped = pb->nskips, .strbytes = 0};
    for (size_t i = 0; i < pb->nhosts; i++) {
        if (!size_add(&room.naddrs, pb->hosts[i].naddrs))
            return false;
    }
    if (!layout_string(&room.strbytes, domain))
        return false;
    for (size_t i = 0; i < pb->nhosts; i++) {
        if (!layout_string(&room.strbytes, pb->hosts[i].name) ||
            !layout_string(&room.strbytes, pb->hosts[i].label))
            return false;
    }
    for (size_t i = 0; i < pb->nskips; i++) {
        if (!layout_string(&room.strbytes, pb->skips[i].name))
            return false;
    }
    return plan_layout_sized(&room, strlen(input), lay);
}

static plan_header *header_of(const mxr_plan *p)
{
    return (plan_header *)((char *)(uintptr_t)p - sizeof(plan_header));
}

static mxr_plan *plan_in(char *block)
{
    return (mxr_plan *)(block + sizeof(plan_header));
}

/* Copies s to *cursor and moves the cursor past its terminator. */
static const char *put_string(char **cursor, const char *s)
{
    size_t n = strlen(s) + 1;
    char *at = *cursor;
    memcpy(at, s, n);
    *cursor += n;
    return at;
}

static void block_init(char *block, mxr_alloc_fn fn, void *ud, size_t size,
                       size_t skip_cap)
{
    plan_header *hdr = (plan_header *)block;
    memset(hdr, 0, sizeof *hdr);
    hdr->h.fn = fn;
    hdr->h.ud = ud;
    hdr->h.size = size;
    hdr->h.skip_cap = skip_cap;
}

static char *block_alloc(mxr_alloc_fn fn, void *ud, size_t size,
                         size_t skip_cap)
{
    char *block = fn(ud, NULL, 0, size);
    if (block)
        block_init(block, fn, ud, size, skip_cap);
    return block;
}

static void fill_candidates(const mxr__plan_builder *pb, char *block,
                            const plan_layout *lay, char **strings)
{
    mxr_candidate *cands = (mxr_candidate *)(block + lay->candidates);
    mxr_addr *addrs = (mxr_addr *)(block + lay->addrs);
    for (size_t i = 0; i < pb->nhosts; i++) {
        const mxr__host *h = &pb->hosts[i];
        mxr_candidate *c = &cands[i];
        memset(c, 0, sizeof *c);
        c->host = put_string(strings, h->name);
        c->label = h->label[0] ? put_string(strings, h->label) : NULL;
        c->preference = h->pref;
        c->port = h->port;
        c->source = h->source;
        c->notes = h->notes;
        c->tls_required = h->tls_required;
        c->ttl = h->ttl;
        c->naddrs = h->naddrs;
        c->addrs = addrs;
        if (h->naddrs)
            memcpy(addrs, h->addrs, h->naddrs * sizeof *addrs);
        addrs += h->naddrs;
    }
}

static void fill_skipped(const mxr__plan_builder *pb, char *block,
                         const plan_layout *lay, char **strings)
{
    mxr_skipped *skipped = (mxr_skipped *)(block + lay->skipped);
    /* The reserve is zeroed so that copies of the block copy no
     * uninitialised bytes. */
    memset(skipped, 0, lay->skip_cap * sizeof *skipped);
    for (size_t i = 0; i < pb->nskips; i++) {
        skipped[i].host = put_string(strings, pb->skips[i].name);
        skipped[i].preference = pb->skips[i].pref;
        skipped[i].reason = pb->skips[i].reason;
    }
}

static mxr_plan *pack_block(const mxr__plan_builder *pb, const char *input,
                            const char *domain, const plan_layout *lay,
                            char *block)
{
    mxr_plan *p = plan_in(block);
    memset(p, 0, sizeof *p);
    char *strings = block + lay->strings;
    p->domain = put_string(&strings, domain);
    fill_candidates(pb, block, lay, &strings);
    fill_skipped(pb, block, lay, &strings);
    strings = block + lay->input;
    p->input = put_string(&strings, input);

    p->result = pb->result;
    p->reason = pb->reason;
    p->implicit = pb->implicit;
    p->ttl = pb->ttl == UINT32_MAX ? 0 : pb->ttl;
    p->mx_ttl = pb->mx_ttl;
    p->ncandidates = pb->nhosts;
    p->candidates = (const mxr_candidate *)(block + lay->candidates);
    p->nskipped = pb->nskips;
    p->skipped = (const mxr_skipped *)(block + lay->skipped);
    return p;
}

mxr_plan *mxr__plan_pack(const mxr__plan_builder *pb, const char *input,
                         const char *domain, mxr_alloc_fn fn, void *ud)
{
    input = input ? input : "";
    domain = domain ? domain : "";
    plan_layout lay;
    if (!plan_layout_for(pb, input, domain, &lay))
        return NULL;
    char *block = block_alloc(fn, ud, lay.size, lay.skip_cap);
    return block ? pack_block(pb, input, domain, &lay, block) : NULL;
}

bool mxr__plan_block(const mxr__plan_room *room, const char *input,
                     mxr_alloc_fn fn, void *ud, mxr__plan_parts *out)
{
    input = input ? input : "";
    plan_layout lay;
    if (!plan_layout_sized(room, strlen(input), &lay))
        return false;
    char *block = block_alloc(fn, ud, lay.size, lay.skip_cap);
    if (!block)
        return false;
    mxr_plan *p = plan_in(block);
    memset(p, 0, sizeof *p);
    char *at = block + lay.input;
    p->input = put_string(&at, input);
    out->candidates = (mxr_candidate *)(block + lay.candidates);
    out->skipped = (mxr_skipped *)(block + lay.skipped);
    /* the reserve is zeroed so that copies of the block copy no
     * uninitialised bytes */
    memset(out->skipped + room->nskipped, 0,
           room->ncandidates * sizeof *out->skipped);
    out->addrs = (mxr_addr *)(block + lay.addrs);
    out->strings = block + lay.strings;
    p->ncandidates = room->ncandidates;
    p->candidates = out->candidates;
    p->nskipped = room->nskipped;
    p->skipped = out->skipped;
    out->plan = p;
    return true;
}

/* Where ptr, which pointed into the block at from, lands in the copy at
 * to. Offsets rather than pointer differences across blocks keep this
 * defined behaviour. */
static const void *relocated(const void *ptr, const char *from, char *to)
{
    return ptr ? to + ((const char *)ptr - from) : NULL;
}

static void relocate_plan(mxr_plan *p, const char *from, char *to)
{
    p->input = relocated(p->input, from, to);
    p->domain = relocated(p->domain, from, to);
    p->candidates = relocated(p->candidates, from, to);
    p->skipped = relocated(p->skipped, from, to);
    mxr_candidate *cands = (mxr_candidate *)(uintptr_t)p->candidates;
    for (size_t i = 0; i < p->ncandidates; i++) {
        cands[i].host = relocated(cands[i].host, from, to);
        if (cands[i].label)
            cands[i].label = relocated(cands[i].label, from, to);
        cands[i].addrs = relocated(cands[i].addrs, from, to);
    }
    mxr_skipped *skipped = (mxr_skipped *)(uintptr_t)p->skipped;
    for (size_t i = 0; i < p->nskipped; i++)
        skipped[i].host = relocated(skipped[i].host, from, to);
}

/* Copies the first prefix bytes of p's block into a new block of size
 * bytes from fn/ud and relocates the copy. */
static mxr_plan *copy_block(const mxr_plan *p, size_t prefix, size_t size,
                            mxr_alloc_fn fn, void *ud)
{
    const char *from = (const char *)header_of(p);
    char *to = block_alloc(fn, ud, size, header_of(p)->h.skip_cap);
    if (!to)
        return NULL;
    memcpy(to + sizeof(plan_header), from + sizeof(plan_header),
           prefix - sizeof(plan_header));
    mxr_plan *copy = plan_in(to);
    relocate_plan(copy, from, to);
    return copy;
}

mxr_plan *mxr__plan_clone(const mxr_plan *p, mxr_alloc_fn fn, void *ud)
{
    if (!p)
        return NULL;
    size_t size = header_of(p)->h.size;
    return copy_block(p, size, size, fn, ud);
}

mxr_plan *mxr__plan_clone_for(const mxr_plan *p, const char *input,
                              mxr_alloc_fn fn, void *ud)
{
    if (!p)
        return NULL;
    input = input ? input : "";
    /* The input is the last thing in the block: keep everything before
     * it and put the new one in its place. */
    size_t prefix = (size_t)(p->input - (const char *)header_of(p));
    size_t size = prefix;
    if (!size_add(&size, strlen(input) + 1))
        return NULL;
    mxr_plan *copy = copy_block(p, prefix, size, fn, ud);
    if (!copy)
        return NULL;
    char *at = (char *)header_of(copy) + prefix;
    copy->input = put_string(&at, input);
    return copy;
}

size_t mxr__plan_bytes(const mxr_plan *p)
{
    return p ? header_of(p)->h.size : 0;
}

mxr_status mxr__plan_skip_candidate(mxr_plan *p, size_t i, mxr_reason reason)
{
    if (!p || i >= p->ncandidates || p->nskipped >= header_of(p)->h.skip_cap)
        return MXR_EINVAL;
    /* The block belongs to whoever holds p; the public fields are const
     * only to keep callers from editing a plan they were handed. */
    mxr_candidate *cands = (mxr_candidate *)(uintptr_t)p->candidates;
    mxr_skipped *skipped = (mxr_skipped *)(uintptr_t)p->skipped;
    mxr_skipped *s = &skipped[p->nskipped++];
    s->host = cands[i].host; /* the string stays in the block */
    s->preference = cands[i].preference;
    s->reason = reason;
    memmove(&cands[i], &cands[i + 1], (p->ncandidates - i - 1) * sizeof *cands);
    p->ncandidates--;
    return MXR_OK;
}

void mxr_plan_free(mxr_plan *plan)
{
    if (!plan)
        return;
    plan_header *hdr = header_of(plan);
    hdr->h.fn(hdr->h.ud, hdr, hdr->h.size, 0);
}

/* A served TTL of ttl seconds read age_ms ago. */
static uint32_t aged(uint32_t ttl, uint64_t age_ms)
{
    return mxr__served_ttl_left((uint64_t)ttl * 1000, age_ms);
}

void mxr__plan_count_down(mxr_plan *copy, uint64_t built_ms,
                          uint64_t expires_ms, uint64_t now_ms)
{
    uint64_t age = now_ms > built_ms ? now_ms - built_ms : 0;
    copy->ttl = mxr__seconds_left(expires_ms, now_ms);
    copy->mx_ttl = aged(copy->mx_ttl, age);
    /* the copy is the caller's block; const only keeps callers out */
    mxr_candidate *cands = (mxr_candidate *)(uintptr_t)copy->candidates;
    for (size_t i = 0; i < copy->ncandidates; i++)
        cands[i].ttl = aged(cands[i].ttl, age);
}
