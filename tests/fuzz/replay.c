/* replay.c -- runs a fuzz target without libFuzzer: every file named on
 * the command line, and every file in every directory named, goes through
 * LLVMFuzzerTestOneInput once. ctest runs it on the seed corpus and the
 * regression inputs (tests/fuzz/corpus/<target>, tests/fuzz/regress/<target>)
 * with gcc, plain and under ASan + UBSan.
 *
 * A directory that does not exist is skipped with a note (git keeps no
 * empty directory), but a run that fed no input at all fails: an empty
 * corpus must not look like a passing test. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INPUT_MAX (16u << 20) /* far above any target's -max_len */

/* Reads the whole file; NULL (and a message) on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = malloc(INPUT_MAX);
    size_t n = buf ? fread(buf, 1, INPUT_MAX, f) : 0;
    bool bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: unreadable or too large\n", path);
        free(buf);
        return NULL;
    }
    /* An exact-size copy, so ASan sees a read past the end. */
    uint8_t *exact = malloc(n ? n : 1);
    if (exact)
        memcpy(exact, buf, n);
    free(buf);
    *len = n;
    return exact;
}

static int run_file(const char *path, size_t *count)
{
    size_t len = 0;
    uint8_t *data = read_file(path, &len);
    if (!data)
        return -1;
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    (*count)++;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir, in name order (runs are reproducible). */
static int run_dir(const char *dir, size_t *count)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name), rc = 0;
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            run_file(path, count) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: none (skipped)\n", argv[i]);
            continue;
        }
        if ((S_ISDIR(st.st_mode) ? run_dir(argv[i], &count)
                                 : run_file(argv[i], &count)) != 0)
            rc = 1;
    }
    printf("replay: %zu inputs, %s\n", count, rc ? "errors" : "no crash");
    return rc != 0 || count == 0;
}
