/* check.h: the assertions of ffstream's test programs. A failed CHECK prints
 * file:line and the expression, counts the failure and lets the test go on;
 * main returns check_exit() so any failure makes the program fail. Exit 77
 * means skipped (meson's convention). */
#ifndef FFSTREAM_TESTS_CHECK_H
#define FFSTREAM_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                           \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

/* Checks |a - b| <= tol, printing both values when not. */
#define CHECK_NEAR(a, b, tol)                                                             \
    do {                                                                                  \
        double check_a_ = (a), check_b_ = (b);                                            \
        CHECKF(fabs(check_a_ - check_b_) <= (tol), "%.9g vs %.9g (tolerance %g)", check_a_, \
               check_b_, (double)(tol));                                                  \
    } while (0)

/* Checks that a string contains a substring (error messages). */
#define CHECK_CONTAINS(haystack, needle) \
    CHECKF(strstr((haystack), (needle)) != NULL, "\"%s\" does not contain \"%s\"", (haystack), (needle))

static inline int check_exit(const char *name) {
    if (check_failures > 0) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: %d checks passed\n", name, check_count);
    return 0;
}

/* The whole file at path, NUL-terminated (so text can be searched), with
 * its byte count in *size (may be NULL). @return NULL when it cannot be
 * read; free() the result. */
static inline void *check_read_file(const char *path, size_t *size) {
    if (size != NULL) *size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf == NULL) return NULL;
    buf[n] = '\0';
    if (size != NULL) *size = (size_t)n;
    return buf;
}

/* The real dataset, or a skip (77) with a reason; FFSTREAM_REQUIRE_DATA=1
 * (set by tools/test.sh, which installs the data) turns the skip into a
 * failure so a missing package cannot pass silently. */
static inline const char *check_dataset_dir(void) {
    const char *dir = getenv("FFSTREAM_DATA");
    if (dir == NULL || dir[0] == '\0') dir = FF_DEFAULT_DATA_DIR;
    char path[4096];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        fclose(f);
        return dir;
    }
    const char *req = getenv("FFSTREAM_REQUIRE_DATA");
    fprintf(stderr, "dataset not found at %s (install dataset-fashion-mnist or set FFSTREAM_DATA)\n",
            dir);
    exit(req != NULL && req[0] == '1' ? 1 : 77);
}

#endif
