/* reload.c -- reload the policies of a running engine, as a relay does
 * on SIGHUP: a policy set that fails to load leaves the old one in place.
 * Run it from the top of the source tree (it reads docs/policy-tutorial/). */
#include <mxroute.h>
#include <stdio.h>

#define DIR "docs/policy-tutorial/"

static void log_line(void *ud, int level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "log[%d] %s\n", level, msg);
}

static void show(mxr_engine *e, const char *input)
{
    mxr_plan *p;
    if (mxr_route_sync(e, input, &p) != MXR_OK)
        return;
    printf("%s: %s", input, mxr_result_name(p->result));
    for (size_t i = 0; i < p->ncandidates; i++)
        printf(" %s:%u (%s)", p->candidates[i].host, p->candidates[i].port,
               mxr_source_name(p->candidates[i].source));
    printf("\n");
    mxr_plan_free(p);
}

/* A new set of policies: via_relay.lua with the given configuration. */
static mxr_status reload(mxr_engine *e, const char *config)
{
    mxr_options *o;
    if (mxr_options_new(&o) != MXR_OK)
        return MXR_ENOMEM;
    mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, 1); /* defer */
    mxr_options_add_policy(o, DIR "via_relay.lua", config);
    mxr_status st = mxr_engine_load_policies(e, o);
    if (st != MXR_OK)
        fprintf(stderr, "reload failed, old policies kept: %s\n",
                mxr_options_errmsg(o));
    mxr_options_free(o);
    return st;
}

int main(void)
{
    mxr_options *o;
    mxr_engine *e;
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep stdout and stderr in order */
    if (mxr_options_new(&o) != MXR_OK)
        return 1;
    mxr_options_add_zone_file(o, DIR "tutorial.zone");
    mxr_options_set_log(o, log_line, NULL);
    mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, 1); /* defer */
    mxr_options_add_policy(o, DIR "via_relay.lua", DIR "via_relay.config.lua");
    if (mxr_engine_new(o, &e) != MXR_OK) {
        fprintf(stderr, "cannot start: %s\n", mxr_options_errmsg(o));
        mxr_options_free(o);
        return 1;
    }
    mxr_options_free(o);
    show(e, "partner.example");

    /* A broken configuration (no relay): refused, the old set stays. */
    reload(e, "{ domains = { 'partner.example' } }");
    show(e, "partner.example");

    /* A good one: from now on, shop.example goes to the relay too. */
    if (reload(e, "{ domains = { 'partner.example', 'shop.example' },"
                  "  relay = 'relay.corp.example' }") == MXR_OK)
        printf("reloaded\n");
    show(e, "partner.example");
    show(e, "shop.example");
    mxr_engine_destroy(e);
    return 0;
}
