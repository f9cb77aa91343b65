/* engine.h -- the top of the library: the options an embedder fills
 * (options.c) and the engine that assembles every subsystem from them
 * (engine.c). struct mxr_engine itself is private to engine.c. Not part of
 * the public API. */
#ifndef MXR_ENGINE_H
#define MXR_ENGINE_H

#include "deliver/health.h"
#include "deliver/rules.h"
#include "dns/backend.h"
#include "policy/policy.h"

struct mxr_options {
    int64_t v[MXR__OPT_N];
    char **servers;
    size_t nservers;
    mxr__zone_source *zones; /* name and text owned */
    size_t nzones;
    char **local_names;
    size_t nlocal_names;
    mxr_alloc_fn alloc;
    void *alloc_ud;
    mxr_clock_fn clock;
    void *clock_ud;
    mxr_sock_fn sock;
    void *sock_ud;
    mxr_rules default_rules;
    mxr__domain_rules *rules;
    size_t nrules;
    mxr__policy_src *policies;
    size_t npolicies;
    mxr_log_fn log;
    void *log_ud;
    char *helo;   /* EHLO name, NULL for the default */
    char *tls_ca; /* trust anchors for MXR_TLS_VERIFY, or NULL */
    char err[256];
};

/* The engine's core, for the program's own I/O sources (source.c). */
mxr__core *mxr__engine_core(mxr_engine *e);

/* For tests and fuzz targets only: the engine's host-health memory, and a
 * way to put another DNS backend in place of the one the options chose
 * (the old one is shut down and freed; make builds the new one on the
 * core, registered as an I/O source). */
mxr__health *mxr__engine_health(mxr_engine *e);
mxr_status mxr__engine_replace_backend(
    mxr_engine *e, mxr__backend *(*make)(mxr__core *core, void *ud), void *ud);

#endif
