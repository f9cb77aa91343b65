/* bench_util.h -- small helpers shared by the benchmark programs: clocks,
 * CPU time, resident memory and the domain list. Header-only. */
#ifndef MXR_BENCH_UTIL_H
#define MXR_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU seconds of this process. */
static inline double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS from a /proc/PID/status file, in bytes (0 if unknown): this
 * process's, or a daemon's under load (serve_load). */
static inline size_t bench_rss_of(const char *status_path)
{
    FILE *f = fopen(status_path, "r");
    char line[256];
    size_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoul(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}

static inline size_t bench_rss(void)
{
    return bench_rss_of("/proc/self/status");
}

/* Reads one name per line; returns the count, *out an array of strings
 * (one allocation each, never freed: the process ends). */
static inline size_t bench_read_list(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof *v);
    char line[512];
    while (v && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (n == cap) {
            char **g = realloc(v, (cap *= 2) * sizeof *v);
            if (!g)
                break;
            v = g;
        }
        v[n++] = strdup(line);
    }
    fclose(f);
    if (!v || n == 0) {
        fprintf(stderr, "%s: no names\n", path);
        exit(2);
    }
    *out = v;
    return n;
}

#endif
