/* template.h -- a finished plan in the compact form the cache keeps: what
 * a cached decision unpacks into the caller's public plan block.
 *
 * A public plan spends most of its bytes on pointers and fixed-size
 * structs (56 per candidate, 20 per address, room to skip every
 * candidate). A template keeps only the facts: 12 bytes a host, 4 a
 * skipped entry, 5 or 17 an address, the names (one that ends in the
 * domain keeps only what comes before it) and labels. The domain itself is
 * not in the template: the caller keeps it (the plan cache's key) and
 * hands it to mxr__tmpl_unpack. Built before policies run, so it holds
 * what the engine found; the caller's copy goes through the policies. */
#ifndef MXR_PLAN_TEMPLATE_H
#define MXR_PLAN_TEMPLATE_H

#include "plan/plan.h"

/* A template's memory must be aligned to this. */
#define MXR__TMPL_ALIGN 4

/* Bytes of pb's template for domain; 0 when pb cannot be one (more than
 * 65535 hosts, skipped entries or addresses, more than 255 addresses on a
 * host, a note, source or reason beyond 8 bits, an address of another
 * family): such a plan is simply not cached. */
size_t mxr__tmpl_size(const mxr__plan_builder *pb, const char *domain);
/* Writes the template into mem (mxr__tmpl_size bytes, aligned to
 * MXR__TMPL_ALIGN). */
void mxr__tmpl_pack(const mxr__plan_builder *pb, const char *domain, void *mem);

/* The plan's result and TTL (seconds it may be reused; 0 for none). */
mxr_result mxr__tmpl_result(const void *tmpl);
uint32_t mxr__tmpl_ttl(const void *tmpl);

/* The public plan (one block from fn/ud) for input: the same as
 * mxr__plan_pack would have made from the builder, domain being the
 * domain given to mxr__tmpl_pack (domlen bytes, no NUL needed). NULL when
 * out of memory. */
mxr_plan *mxr__tmpl_unpack(const void *tmpl, const char *domain, size_t domlen,
                           const char *input, mxr_alloc_fn fn, void *ud);

#endif
