/* raw_cares.c -- the baseline: the same DNS work as routing a domain, done
 * with bare c-ares and nothing else.
 *
 * For each domain: an MX query; when it answers, an A query for each MX
 * target. At most W queries in flight (default 100, mxroute's
 * MXR_OPT_MAX_INFLIGHT default); target queries go before new domains, so
 * a started domain finishes soon. Channel settings as in mxroute's
 * src/dns/ares.c: NOSEARCH | EDNS (1232), 2000 ms timeout, 2 tries, questions
 * built by c-ares (ares_query). Answers parsed with ares_parse_mx_reply /
 * ares_parse_a_reply. Event loop: ares_getsock + poll + ares_process_fd.
 *
 * Usage: raw_cares --server IP:PORT --list FILE [-n N] [-w W]
 * Prints one line: RESULT raw_cares domains=... ok=... seconds=... dps=...
 */
#include "bench_util.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>

typedef struct dom {
    int remaining; /* A queries not answered yet */
    int naddrs;
    int failed;
} dom;

typedef struct pending_a {
    size_t d;
    char *name;
} pending_a;

static ares_channel chan;
static char **names;
static size_t ndomains, next_domain, done, ok, inflight, window = 100;
static size_t queries, nerrors;
static dom *doms;
/* target names waiting for a free slot in the window: a FIFO ring */
static pending_a *aq;
static size_t aq_cap, aq_head, aq_len;

static void pump(void);

static void domain_done(size_t d)
{
    done++;
    if (!doms[d].failed && doms[d].naddrs > 0)
        ok++;
}

static void on_a(void *arg, int status, int timeouts, unsigned char *abuf,
                 int alen)
{
    size_t d = (size_t)(uintptr_t)arg;
    inflight--;
    if (status == ARES_SUCCESS) {
        struct ares_addrttl ttls[16];
        int n = 16;
        struct hostent *he = NULL;
        if (ares_parse_a_reply(abuf, alen, &he, ttls, &n) == ARES_SUCCESS) {
            doms[d].naddrs += n;
            ares_free_hostent(he);
        } else {
            doms[d].failed = 1;
        }
    } else {
        doms[d].failed = 1;
        nerrors++;
    }
    if (--doms[d].remaining == 0)
        domain_done(d);
    pump();
}

static void aq_push(size_t d, const char *name)
{
    if (aq_len == aq_cap) {
        size_t cap = aq_cap ? aq_cap * 2 : 1024;
        pending_a *q = malloc(cap * sizeof *q);
        if (!q)
            abort();
        for (size_t i = 0; i < aq_len; i++)
            q[i] = aq[(aq_head + i) % aq_cap];
        free(aq);
        aq = q;
        aq_cap = cap;
        aq_head = 0;
    }
    aq[(aq_head + aq_len++) % aq_cap] = (pending_a){d, strdup(name)};
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf,
                  int alen)
{
    size_t d = (size_t)(uintptr_t)arg;
    struct ares_mx_reply *mx = NULL;
    inflight--;
    if (status == ARES_SUCCESS &&
        ares_parse_mx_reply(abuf, alen, &mx) == ARES_SUCCESS) {
        for (struct ares_mx_reply *m = mx; m; m = m->next) {
            doms[d].remaining++;
            aq_push(d, m->host);
        }
        ares_free_data(mx);
    } else {
        doms[d].failed = 1;
        if (status != ARES_SUCCESS)
            nerrors++;
    }
    if (doms[d].remaining == 0)
        domain_done(d);
    pump();
}

/* Fill the window: targets of started domains first, then new domains. */
static void pump(void)
{
    while (inflight < window) {
        if (aq_len > 0) {
            pending_a p = aq[aq_head];
            aq_head = (aq_head + 1) % aq_cap;
            aq_len--;
            inflight++;
            queries++;
            ares_query(chan, p.name, ns_c_in, ns_t_a, on_a,
                       (void *)(uintptr_t)p.d);
            free(p.name);
        } else if (next_domain < ndomains) {
            size_t d = next_domain++;
            inflight++;
            queries++;
            ares_query(chan, names[d], ns_c_in, ns_t_mx, on_mx,
                       (void *)(uintptr_t)d);
        } else {
            break;
        }
    }
}

static void loop(void)
{
    while (done < ndomains) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(chan, socks, ARES_GETSOCK_MAXNUM);
        nfds_t n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) |
                               (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0));
            if (!ev)
                continue;
            pfd[n].fd = socks[i];
            pfd[n].events = ev;
            pfd[n].revents = 0;
            n++;
        }
        struct timeval maxtv = {1, 0}, tv;
        struct timeval *t = ares_timeout(chan, &maxtv, &tv);
        int ms = (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
        int ready = poll(pfd, n, ms);
        int any = 0;
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            if (!pfd[i].revents)
                continue;
            int rd = pfd[i].revents & (POLLIN | POLLERR | POLLHUP);
            int wr = pfd[i].revents & POLLOUT;
            ares_process_fd(chan, rd ? pfd[i].fd : ARES_SOCKET_BAD,
                            wr ? pfd[i].fd : ARES_SOCKET_BAD);
            any = 1;
        }
        if (!any)
            ares_process_fd(chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: raw_cares --server IP:PORT --list FILE [-n N] [-w W]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *server = NULL, *list = NULL;
    size_t limit = 0;
    static const struct option lo[] = {{"server", 1, 0, 's'},
                                       {"list", 1, 0, 'l'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:l:n:w:", lo, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'l': list = optarg; break;
        case 'n': limit = strtoul(optarg, NULL, 10); break;
        case 'w': window = strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (!server || !list || window == 0)
        usage();
    ndomains = bench_read_list(list, &names);
    if (limit && limit < ndomains)
        ndomains = limit;
    doms = calloc(ndomains, sizeof *doms);

    ares_library_init(ARES_LIB_INIT_ALL);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
    o.timeout = 2000;
    o.tries = 2;
    o.ednspsz = 1232;
    int rc = ares_init_options(&chan, &o,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
                                   ARES_OPT_TRIES | ARES_OPT_EDNSPSZ);
    if (rc == ARES_SUCCESS)
        rc = ares_set_servers_ports_csv(chan, server);
    if (rc != ARES_SUCCESS) {
        fprintf(stderr, "c-ares: %s\n", ares_strerror(rc));
        return 1;
    }

    double cpu0 = bench_cpu(), t0 = bench_now();
    pump();
    loop();
    double secs = bench_now() - t0, cpu = bench_cpu() - cpu0;

    printf("RESULT raw_cares domains=%zu ok=%zu errors=%zu queries=%zu "
           "window=%zu seconds=%.3f dps=%.0f qps=%.0f cpu_s=%.3f "
           "cpu_us_per_domain=%.2f\n",
           ndomains, ok, nerrors, queries, window, secs,
           (double)ndomains / secs, (double)queries / secs, cpu,
           cpu * 1e6 / (double)ndomains);
    ares_destroy(chan);
    ares_library_cleanup();
    return ok == ndomains ? 0 : 1;
}
