/* check_report.c -- the report of `mxroute check`: findings added with a
 * severity, a stable code, the records involved and a fix; counted and
 * sorted (errors first). The rules that add them are in check_findings.c,
 * the output in check_out.c. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *chk_sev_name(chk_sev s)
{
    return s == CHK_ERROR ? "error" : s == CHK_WARNING ? "warning" : "info";
}

static char *vfmt(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *chk_fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = vfmt(f, ap);
    va_end(ap);
    return s;
}

void chk_add(chk_report *r, chk_sev sev, const char *code,
             const char *const *records, const char *fix, const char *f, ...)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        chk_finding *nf = realloc(r->f, cap * sizeof *nf);
        if (!nf)
            return;
        r->f = nf;
        r->cap = cap;
    }
    chk_finding *x = &r->f[r->n++];
    memset(x, 0, sizeof *x);
    x->sev = sev;
    x->code = code;
    va_list ap;
    va_start(ap, f);
    x->message = vfmt(f, ap);
    va_end(ap);
    x->fix = strdup(fix ? fix : "");
    size_t n = 0;
    while (records && records[n])
        n++;
    x->records = calloc(n + 1, sizeof *x->records);
    for (size_t i = 0; x->records && i < n; i++)
        x->records[x->nrecords++] = strdup(records[i]);
}

void chk_report_free(chk_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->f[i].message);
        free(r->f[i].fix);
        for (size_t j = 0; j < r->f[i].nrecords; j++)
            free(r->f[i].records[j]);
        free(r->f[i].records);
    }
    free(r->f);
    r->f = NULL;
    r->n = r->cap = 0;
}

size_t chk_count(const chk_report *r, chk_sev s)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->f[i].sev == s;
    return n;
}

void chk_sort(chk_report *r)
{
    /* insertion sort: stable, the lists are short */
    for (size_t i = 1; i < r->n; i++) {
        chk_finding x = r->f[i];
        size_t j = i;
        while (j > 0 && r->f[j - 1].sev > x.sev) {
            r->f[j] = r->f[j - 1];
            j--;
        }
        r->f[j] = x;
    }
}

void chk_add1(chk_report *r, chk_sev sev, const char *code, char *rec,
              const char *fix, const char *msg)
{
    const char *recs[] = {rec, NULL};
    chk_add(r, sev, code, rec ? recs : NULL, fix, "%s", msg ? msg : "");
    free(rec);
}
