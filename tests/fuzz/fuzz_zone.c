/* fuzz_zone.c -- zone text from third parties (mxr_options_add_zone_text,
 * src/dns/zone.c through ldns), then routing over what loaded.
 *
 * The input is zone text. A line "%%" starts another zone (at most
 * three: CNAME chains across zones). When the text begins with ';', the
 * rest of that first line (a comment to ldns) lists up to four names to
 * route, separated by spaces; example.com and www.example.com are always
 * routed. A zone that does not load must give MXR_EZONE and a message
 * naming the zone; one that loads must route without breaking any plan
 * invariant, and the engine must give back all its memory. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZONES_MAX 3
#define NAMES_MAX 6
#define NAME_TEXT_MAX 300

/* Cut text (NUL-terminated, writable) at "%%" lines into zones. */
static size_t split_zones(char *text, char *zones[ZONES_MAX])
{
    size_t n = 0;
    zones[n++] = text;
    for (char *p = text; n < ZONES_MAX && (p = strstr(p, "\n%%\n"));) {
        *p = '\0';
        p += 4;
        zones[n++] = p;
    }
    return n;
}

/* The names listed on a first line "; a b c", then the fixed ones. */
static size_t route_names(const char *text,
                          char names[NAMES_MAX][NAME_TEXT_MAX])
{
    size_t n = 0;
    if (text[0] == ';') {
        size_t len = strcspn(text + 1, "\n");
        char line[NAME_TEXT_MAX * 4];
        snprintf(line, sizeof line, "%.*s", (int)len, text + 1);
        for (char *save = NULL, *w = strtok_r(line, " \t", &save);
             w && n < NAMES_MAX - 2; w = strtok_r(NULL, " \t", &save))
            snprintf(names[n++], NAME_TEXT_MAX, "%s", w);
    }
    snprintf(names[n++], NAME_TEXT_MAX, "example.com");
    snprintf(names[n++], NAME_TEXT_MAX, "www.example.com");
    return n;
}

static const fz_plan_rules default_rules = {
    .max_hosts = 16,
    .max_addrs_per_host = 8,
    .max_addrs_total = 32,
    .family = MXR_FAMILY_ANY,
};

static void route_all(mxr_engine *e, const char *text, fz_reader *r)
{
    char names[NAMES_MAX][NAME_TEXT_MAX];
    fz_result res[NAMES_MAX] = {{0}};
    size_t n = route_names(text, names);
    for (size_t i = 0; i < n; i++) {
        mxr_status st = mxr_route(e, names[i], fz_on_route, &res[i]);
        FZ_ASSERT(st == MXR_OK || st == MXR_EBADNAME);
        if (st != MXR_OK) /* no callback for a refused input */
            res[i] = (fz_result){.done = true, .status = st};
    }
    fz_run(e);
    for (size_t i = 0; i < n; i++)
        fz_settle(e, &res[i], &default_rules, r);
}

/* A zone that did not load is named in the message ("zone2:LINE: ..."). */
static void check_load_error(mxr_status st, const char *msg)
{
    FZ_ASSERT(st == MXR_EZONE);
    FZ_ASSERT(strncmp(msg, "zone", 4) == 0 && strchr(msg, ':') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *zones[ZONES_MAX];
    mxr_options *o;
    if (!text || mxr_options_new(&o) != MXR_OK) {
        free(text);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    fz_alloc alloc = {0};
    fz_now_ms = 1000000;
    mxr_options_set_allocator(o, fz_alloc_fn, &alloc);
    mxr_options_set_clock(o, fz_clock, NULL);
    mxr_options_set(o, MXR_OPT_SEED, 1);
    char zone_name[32];
    size_t nzones = split_zones(text, zones);
    for (size_t i = 0; i < nzones; i++) {
        snprintf(zone_name, sizeof zone_name, "zone%zu", i + 1);
        FZ_ASSERT(mxr_options_add_zone_text(o, zone_name, zones[i]) == MXR_OK);
    }
    mxr_engine *e = NULL;
    mxr_status st = mxr_engine_new(o, &e);
    if (st != MXR_OK)
        check_load_error(st, mxr_options_errmsg(o));
    mxr_options_free(o);
    if (e) {
        fz_reader r = {data, size};
        route_all(e, text, &r);
        mxr_engine_destroy(e);
    }
    FZ_ASSERT(alloc.live == 0);
    free(text);
    return 0;
}
