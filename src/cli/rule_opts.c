/* rule_opts.c -- the failover and retry rule options that simulate, probe
 * and send share: what simulate predicts, probe and send can be told to do
 * (mxr_rules, mxr_rules_new(3)). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>

int cli_parse_count(const char *opt, const char *arg, long long max,
                    long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || end == arg || *end || v < 0 || v > max) {
        cli_error("%s: '%s' is not a number from 0 to %lld", opt, arg, max);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

static int set_rule(mxr_rules *rules, mxr_rule rule, const char *opt,
                    const char *arg)
{
    long long v;
    int rc = cli_parse_count(opt, arg, INT32_MAX, &v);
    if (rc)
        return rc;
    if (mxr_rules_set(rules, rule, v) != MXR_OK) {
        cli_error("%s: %s is out of range (see mxroute(1))", opt, arg);
        return EXIT_USAGE;
    }
    return 0;
}

/* The options, the rule each sets, and its flag in messages. */
static const struct {
    int opt;
    mxr_rule rule;
    const char *flag;
} rule_flags[] = {
    {CLI_OPT_MAX_AGE, MXR_RULE_MAX_AGE_S, "--max-age"},
    {CLI_OPT_RETRY_MIN, MXR_RULE_RETRY_MIN_S, "--retry-min"},
    {CLI_OPT_RETRY_MAX, MXR_RULE_RETRY_MAX_S, "--retry-max"},
    {CLI_OPT_MAX_ADDRESSES, MXR_RULE_MAX_ADDRESSES, "--max-addresses"},
    {CLI_OPT_MAX_SESSIONS, MXR_RULE_MAX_SESSIONS, "--max-sessions"},
    {CLI_OPT_COOL_DOWN, MXR_RULE_HEALTH_BASE_S, "--cool-down"},
};

int cli_rule_option(mxr_rules *rules, int opt, const char *arg)
{
    if (opt == CLI_OPT_STAY_ON_4XX) {
        mxr_rules_stay_on_4xx(rules);
        return 0;
    }
    for (size_t i = 0; i < sizeof rule_flags / sizeof *rule_flags; i++)
        if (rule_flags[i].opt == opt)
            return set_rule(rules, rule_flags[i].rule, rule_flags[i].flag, arg);
    return -1;
}

void cli_rule_usage(FILE *out)
{
    fprintf(out,
            "failover and retry rules:\n"
            "  --stay-on-4xx        4xx at MAIL..end-of-data defers instead "
            "of trying the\n"
            "                       next host\n"
            "  --max-age S          bounce what is still deferred after S "
            "seconds (432000)\n"
            "  --retry-min S        first retry delay (300)\n"
            "  --retry-max S        longest retry delay (14400)\n"
            "  --max-addresses N    addresses tried per attempt (10)\n"
            "  --max-sessions N     SMTP sessions per attempt (5)\n"
            "  --cool-down S        first cool-down of a failed host (60)\n");
}
