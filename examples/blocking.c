/* blocking.c -- the smallest useful libmxroute program.
 *
 * Routes each domain or address given on the command line with the
 * blocking call, mxr_route_sync, and prints its plan: the hosts to try in
 * order, with their preference and addresses, and the hosts skipped.
 *
 *   blocking [--zone FILE]... [--server IP[:PORT]]... DOMAIN|ADDRESS...
 *
 * With --zone the answers come from zone files and no network is used;
 * with --server from that DNS server; with neither from /etc/resolv.conf.
 *
 * Exit status (sysexits, as mail software uses): 0 when every input has
 * somewhere to go, else that of the first one that has not: 75 temporary
 * failure (try again later), 68 permanent failure (bounce), 65 bad input;
 * 64 usage, 70 internal error.
 *
 * Build: cc $(pkg-config --cflags mxroute) blocking.c \
 *           $(pkg-config --libs mxroute)
 *
 * SPDX-License-Identifier: MIT
 */
#include <mxroute.h>

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: blocking [--zone FILE]... [--server IP[:PORT]]..."
                    " DOMAIN|ADDRESS...\n");
    return 64;
}

static void print_plan(const mxr_plan *plan)
{
    char buf[MXR_ADDR_STRLEN];

    printf("%s: %s", plan->input, mxr_result_name(plan->result));
    if (plan->result != MXR_RESULT_OK)
        printf(" (%s)", mxr_reason_name(plan->reason));
    printf("\n");
    for (size_t i = 0; i < plan->ncandidates; i++) {
        const mxr_candidate *c = &plan->candidates[i];
        printf("  %5u %s", (unsigned)c->preference, c->host);
        for (size_t k = 0; k < c->naddrs; k++)
            printf(" %s", mxr_addr_format(&c->addrs[k], buf, sizeof buf));
        printf("\n");
    }
    for (size_t i = 0; i < plan->nskipped; i++)
        printf("  skipped %s: %s\n", plan->skipped[i].host,
               mxr_reason_name(plan->skipped[i].reason));
}

int main(int argc, char **argv)
{
    mxr_options *opts;
    mxr_engine *engine;
    mxr_status st;
    int i, status = 0;

    if (mxr_options_new(&opts) != MXR_OK)
        return 70;

    /* Options first: --zone FILE and --server ADDR, each repeatable. */
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--zone") == 0)
            st = mxr_options_add_zone_file(opts, argv[i + 1]);
        else if (strcmp(argv[i], "--server") == 0)
            st = mxr_options_add_server(opts, argv[i + 1]);
        else
            break;
        if (st != MXR_OK) {
            fprintf(stderr, "%s %s: %s\n", argv[i], argv[i + 1],
                    mxr_options_errmsg(opts));
            mxr_options_free(opts);
            return 64;
        }
    }
    if (i >= argc || argv[i][0] == '-') {
        mxr_options_free(opts);
        return usage();
    }

    /* The engine copies the options: they can go right away. */
    st = mxr_engine_new(opts, &engine);
    if (st != MXR_OK) {
        fprintf(stderr, "mxr_engine_new: %s: %s\n", mxr_strerror(st),
                mxr_options_errmsg(opts));
        mxr_options_free(opts);
        /* A zone file or server the caller named is a usage error (64), as
         * in mxroute; anything else is an internal one (70). */
        return st == MXR_EZONE || st == MXR_ESERVER ? 64 : 70;
    }
    mxr_options_free(opts);

    for (; i < argc; i++) {
        mxr_plan *plan;
        int rc;

        st = mxr_route_sync(engine, argv[i], &plan);
        if (st == MXR_EBADNAME) { /* not a domain or an address */
            fprintf(stderr, "%s: %s\n", argv[i], mxr_engine_errmsg(engine));
            rc = 65;
        } else if (st != MXR_OK) { /* out of memory, ... */
            fprintf(stderr, "%s: %s\n", argv[i], mxr_strerror(st));
            rc = 70;
        } else {
            /* A plan that says "no" still comes with MXR_OK. */
            print_plan(plan);
            rc = plan->result == MXR_RESULT_OK         ? 0
                 : plan->result == MXR_RESULT_TEMPFAIL ? 75
                                                       : 68;
            mxr_plan_free(plan); /* the plan is ours to free */
        }
        if (status == 0)
            status = rc;
    }

    mxr_engine_destroy(engine);
    return status;
}
