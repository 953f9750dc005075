/* testutil.h: what ffstream's test programs share: the assertions (a
 * failed CHECK prints file:line and the expression, counts the failure and
 * lets the test go on; main returns check_exit() so any failure makes the
 * program fail; exit 77 means skipped, meson's convention), temporary
 * directories, file helpers, test layers and one training runner. */
#ifndef FFSTREAM_TESTS_TESTUTIL_H
#define FFSTREAM_TESTS_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffstream/config.h"
#include "ffstream/fileio.h"
#include "ffstream/layer.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"
#include "ffstream/train.h"

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
    char path[FF_PATH_MAX];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        fclose(f);
        return dir;
    }
    const char *req = getenv("FFSTREAM_REQUIRE_DATA");
    fprintf(stderr,
            "dataset not found at %s: apt-get install dataset-fashion-mnist (or set "
            "FFSTREAM_DATA; data/README.md)\n",
            dir);
    exit(req != NULL && req[0] == '1' ? 1 : 77);
}

/* A new directory $TMPDIR/ffstream-test-NAME-XXXXXX into out (FF_PATH_MAX
 * bytes); exits the test (1) when it cannot be made. */
static inline void check_tempdir(char *out, const char *name) {
    const char *base = getenv("TMPDIR");
    snprintf(out, FF_PATH_MAX, "%s/ffstream-test-%s-XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp", name);
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

/* DIR/NAME into out (FF_PATH_MAX bytes). */
static inline void check_path(char *out, const char *dir, const char *name) {
    snprintf(out, FF_PATH_MAX, "%s/%s", dir, name);
}

/* Writes size bytes to path (created or truncated), counting a check. */
static inline void check_write_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot create %s", path);
    if (f == NULL) return;
    CHECK(fwrite(bytes, 1, size, f) == size);
    fclose(f);
}

/* Flips every bit of the byte at offset of path. */
static inline void check_flip_byte(const char *path, size_t offset) {
    size_t size;
    unsigned char *bytes = check_read_file(path, &size);
    CHECK(bytes != NULL && offset < size);
    if (bytes != NULL && offset < size) {
        bytes[offset] ^= 0xff;
        check_write_file(path, bytes, size);
    }
    free(bytes);
}

static inline void check_copy_file(const char *from, const char *to) {
    size_t size;
    void *bytes = check_read_file(from, &size);
    CHECKF(bytes != NULL, "cannot read %s", from);
    if (bytes != NULL) check_write_file(to, bytes, size);
    free(bytes);
}

/* max |a[i] - b[i]| in double. */
static inline double check_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

/* A layer in -> out with distinct values in every block: parameters from
 * the run init of `seed`, and with with_adam Adam moments from another
 * stream, zero gradients, Adam step 1000 + seed. */
static inline void check_make_layer(ff_layer_t *layer, uint32_t in, uint32_t out, int with_adam,
                                    uint64_t seed) {
    ff_error_t err;
    CHECKF(ff_layer_alloc(layer, in, out, with_adam, &err) == 0, "%s", err.msg);
    ff_layer_init_for_run(layer, seed, 0);
    if (with_adam) {
        ff_rng_t rng;
        ff_rng_init(&rng, seed, 99, 1, 0);
        for (size_t i = 0; i < layer->param_count; i++) {
            layer->adam_m[i] = (ff_rng_uniform(&rng) - 0.5f) * 1e-3f;
            layer->adam_v[i] = ff_rng_uniform(&rng) * 1e-6f;
            layer->grads[i] = 0;
        }
    }
    layer->adam_step = (int64_t)(1000 + seed);
}

/* Loads cfg's data and trains with cfg's mode; each run's memory peaks are
 * its own. @return the trainer's result (0 done), printing why on failure. */
static inline int check_train(const ff_config_t *cfg, ff_result_t *res) {
    ff_dataset_t train, test;
    ff_error_t err;
    ff_mem_reset_peaks();
    memset(res, 0, sizeof *res);
    if (ff_train_load_data(cfg, &train, &test, &err) != 0) {
        fprintf(stderr, "load: %s\n", err.msg);
        return -1;
    }
    int rc;
    switch (cfg->mode) {
    case FF_MODE_BP: rc = ff_train_bp(cfg, &train, &test, res, &err); break;
    case FF_MODE_FF_RECURRENT: rc = ff_train_ffrec(cfg, &train, &test, res, &err); break;
    case FF_MODE_FF_STREAM: rc = ff_train_ffstream(cfg, &train, &test, res, &err); break;
    default: rc = ff_train_ffmem(cfg, &train, &test, res, &err); break;
    }
    if (rc != 0) fprintf(stderr, "train: %s\n", err.msg);
    ff_data_free(&test);
    ff_data_free(&train);
    return rc;
}

#endif
