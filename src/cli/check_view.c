/* check_view.c -- the plan as a sender sees it: its MX records in order,
 * and the tiers of hosts a sender tries first, then next. */
#include "check.h"

#include <stdlib.h>
#include <string.h>

const char *chk_target(const char *host)
{
    return !host || !*host || strcmp(host, ".") == 0 ? "" : host;
}

static int cmp_mx(const void *a, const void *b)
{
    const chk_mx *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return strcmp(x->host, y->host);
}

size_t chk_mx_records(const mxr_plan *p, bool mx_only, chk_mx **out)
{
    size_t n = 0;
    chk_mx *v = calloc(p->ncandidates + p->nskipped + 1, sizeof *v);
    for (size_t i = 0; v && i < p->ncandidates; i++)
        if (!mx_only || p->candidates[i].source == MXR_SOURCE_MX)
            v[n++] =
                (chk_mx){p->candidates[i].preference, p->candidates[i].host};
    for (size_t i = 0; v && i < p->nskipped; i++)
        v[n++] = (chk_mx){p->skipped[i].preference,
                          *chk_target(p->skipped[i].host) ? p->skipped[i].host
                                                          : "."};
    if (v)
        qsort(v, n, sizeof *v, cmp_mx);
    *out = v;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t chk_tiers(const mxr_plan *p, chk_tier **out)
{
    *out = NULL;
    if (!p || p->ncandidates == 0)
        return 0;
    chk_tier *t = calloc(p->ncandidates, sizeof *t);
    if (!t)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < p->ncandidates; i++) {
        const mxr_candidate *c = &p->candidates[i];
        size_t k = 0;
        while (k < n && t[k].preference != c->preference)
            k++;
        if (k == n) {
            t[n].preference = c->preference;
            t[n].hosts = calloc(p->ncandidates, sizeof *t[n].hosts);
            n++;
        }
        if (t[k].hosts)
            t[k].hosts[t[k].nhosts++] = c->host;
    }
    for (size_t i = 1; i < n; i++) /* by preference */
        for (size_t j = i; j > 0 && t[j - 1].preference > t[j].preference;
             j--) {
            chk_tier x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    for (size_t i = 0; i < n; i++)
        if (t[i].hosts)
            qsort(t[i].hosts, t[i].nhosts, sizeof *t[i].hosts, cmp_str);
    *out = t;
    return n;
}

void chk_tiers_free(chk_tier *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].hosts);
    free(t);
}
