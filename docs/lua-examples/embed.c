/* embed.c -- load two policies into an engine and route one domain.
 * Build it against libmxroute and run it from the top of the source tree
 * (it reads examples/zones/ and docs/lua-examples/). */
#include <mxroute.h>
#include <stdio.h>

/* mx.log, print and policy errors arrive here. */
static void log_line(void *ud, int level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "log[%d] %s\n", level, msg);
}

int main(void)
{
    mxr_options *o;
    mxr_engine *e;
    mxr_plan *plan;
    if (mxr_options_new(&o) != MXR_OK)
        return 1;
    mxr_options_add_zone_file(o, "examples/zones/example.com.zone");
    mxr_options_add_zone_file(o, "docs/lua-examples/relays.example.zone");
    mxr_options_set_log(o, log_line, NULL);
    /* A policy file and its configuration, a table constructor. */
    mxr_options_add_policy(o, "docs/lua-examples/smarthost.lua",
                           "{ relay = 'smarthost.relays.example' }");
    /* A policy from source text, without configuration ({}). */
    mxr_options_add_policy_text(
        o, "inline",
        "return { route = function(plan) mx.log('seen ' .. plan.domain) end }",
        NULL);
    mxr_options_set(o, MXR_OPT_POLICY_ON_ERROR, 1); /* defer on errors */
    if (mxr_engine_new(o, &e) != MXR_OK) {
        fprintf(stderr, "cannot start: %s\n", mxr_options_errmsg(o));
        mxr_options_free(o);
        return 1;
    }
    mxr_options_free(o);
    if (mxr_route_sync(e, "single.example.com", &plan) == MXR_OK) {
        for (size_t i = 0; i < plan->ncandidates; i++) {
            const mxr_candidate *c = &plan->candidates[i];
            printf("%s source=%s label=%s\n", c->host,
                   mxr_source_name(c->source), c->label ? c->label : "-");
        }
        mxr_plan_free(plan);
    }
    mxr_engine_destroy(e);
    return 0;
}
