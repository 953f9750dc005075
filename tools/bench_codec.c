/* bench_codec: compression ratio and speed of the layer-file codecs (raw,
 * zstd and zstd-shuffle at zstd levels 1 and 3) on float32 data, either a
 * freshly initialised layer or the little-endian floats of a file, so the
 * default codec is chosen from measurements. Each figure is the best of
 * REPEATS runs; every decode is checked against the input.
 * usage: bench_codec --init IN OUT [REPEATS] | --floats FILE [REPEATS] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ffstream/layer.h"
#include "ffstream/layerfile.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"

typedef struct {
    ff_codec_t codec;
    int level;
} bench_case_t;

/* raw has no level: it is measured once. */
static const bench_case_t cases[] = {
    {FF_CODEC_RAW, 0},          {FF_CODEC_ZSTD, 1},         {FF_CODEC_ZSTD, 3},
    {FF_CODEC_ZSTD_SHUFFLE, 1}, {FF_CODEC_ZSTD_SHUFFLE, 3},
};

/* Parses a positive integer no larger than max. @return 0 or -1. */
static int parse_count(const char *text, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v == 0 || v > max || text[0] == '-') return -1;
    *out = v;
    return 0;
}

/* Reads the whole of path into a buffer of float32s. @return 0 or -1 with
 * err. */
static int read_floats(const char *path, uint8_t **data, size_t *bytes, ff_error_t *err) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    int rc = -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        ff_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
        goto cleanup;
    }
    if (st.st_size <= 0 || st.st_size % 4 != 0) {
        ff_error_set(err, "%s: %lld bytes is not a positive whole number of float32s", path,
                     (long long)st.st_size);
        goto cleanup;
    }
    *bytes = (size_t)st.st_size;
    *data = ff_mem_alloc(FF_MEM_OTHER, *bytes);
    if (*data == NULL) {
        ff_error_set(err, "%s: out of memory for %zu bytes", path, *bytes);
        goto cleanup;
    }
    if (fread(*data, 1, *bytes, f) != *bytes) {
        ff_error_set(err, "%s: short read", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) {
        ff_mem_free(*data);
        *data = NULL;
    }
    fclose(f);
    return rc;
}

/* Measures one codec and level on src. @return 0 or -1 with err. */
static int bench_one(const bench_case_t *bc, const uint8_t *src, size_t bytes, uint8_t *stored,
                     size_t capacity, uint8_t *back, int repeats, ff_error_t *err) {
    size_t stored_bytes = 0;
    double best_compress = 1e30, best_decompress = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t = ff_now();
        if (ff_codec_compress(bc->codec, bc->level, stored, capacity, src, bytes, &stored_bytes,
                              err) != 0)
            return -1;
        t = ff_now() - t;
        if (t < best_compress) best_compress = t;
    }
    for (int r = 0; r < repeats; r++) {
        memset(back, 0, bytes);
        double t = ff_now();
        if (ff_codec_decompress(bc->codec, back, bytes, stored, stored_bytes, err) != 0) return -1;
        t = ff_now() - t;
        if (t < best_decompress) best_decompress = t;
        if (memcmp(src, back, bytes) != 0)
            return ff_error_set(err, "%s level %d: decoded data differs from the input",
                                ff_codec_name(bc->codec), bc->level);
    }
    char level[16] = "-";
    if (bc->codec != FF_CODEC_RAW) snprintf(level, sizeof level, "%d", bc->level);
    printf("%-13s %5s %14zu %9.3fx %13.1f MB/s %15.1f MB/s\n", ff_codec_name(bc->codec), level,
           stored_bytes, (double)bytes / (double)stored_bytes, (double)bytes / 1e6 / best_compress,
           (double)bytes / 1e6 / best_decompress);
    return 0;
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s --init IN OUT [REPEATS] | --floats FILE [REPEATS]\n", argv0);
}

int main(int argc, char **argv) {
    unsigned long in = 0, out = 0, repeats = 5;
    const char *floats_path = NULL;
    int next;
    if (argc >= 4 && strcmp(argv[1], "--init") == 0) {
        if (parse_count(argv[2], 1ul << 24, &in) != 0 || parse_count(argv[3], 1ul << 24, &out)) {
            fprintf(stderr, "%s: IN and OUT must be integers in 1..16777216\n", argv[0]);
            return 2;
        }
        next = 4;
    } else if (argc >= 3 && strcmp(argv[1], "--floats") == 0) {
        floats_path = argv[2];
        next = 3;
    } else {
        usage(argv[0]);
        return 2;
    }
    if (argc > next + 1 || (argc == next + 1 && parse_count(argv[next], 1000, &repeats) != 0)) {
        usage(argv[0]);
        fprintf(stderr, "%s: REPEATS must be an integer in 1..1000\n", argv[0]);
        return 2;
    }

    ff_error_t err;
    ff_layer_t layer = {0};
    uint8_t *file_data = NULL;
    const uint8_t *src;
    size_t bytes = 0;
    if (floats_path == NULL) {
        if (ff_layer_alloc(&layer, (uint32_t)in, (uint32_t)out, 0, &err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err.msg);
            return 1;
        }
        ff_layer_init_for_run(&layer, 1, 0);
        src = (const uint8_t *)layer.params;
        bytes = ff_layer_block_bytes(&layer);
        printf("data: freshly initialised layer %lu -> %lu (seed 1): weight and bias, %zu bytes\n",
               in, out, bytes);
    } else {
        if (read_floats(floats_path, &file_data, &bytes, &err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err.msg);
            return 1;
        }
        src = file_data;
        printf("data: %s, %zu bytes (%zu float32s)\n", floats_path, bytes, bytes / 4);
    }
    size_t capacity = ff_codec_bound(FF_CODEC_ZSTD, bytes);
    uint8_t *stored = ff_mem_alloc(FF_MEM_IO, capacity);
    uint8_t *back = ff_mem_alloc(FF_MEM_IO, bytes);
    int rc = 0;
    if (capacity == 0 || stored == NULL || back == NULL) {
        fprintf(stderr, "%s: out of memory for %zu + %zu bytes of buffers\n", argv[0], capacity,
                bytes);
        rc = 1;
    }
    if (rc == 0) {
        printf("best of %lu runs; MB = 10^6 bytes of float32 input\n", repeats);
        printf("%-13s %5s %14s %10s %18s %20s\n", "codec", "level", "stored bytes", "ratio",
               "compress", "decompress");
    }
    for (size_t i = 0; rc == 0 && i < sizeof cases / sizeof cases[0]; i++) {
        if (bench_one(&cases[i], src, bytes, stored, capacity, back, (int)repeats, &err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[0], err.msg);
            rc = 1;
        }
    }
    ff_mem_free(back);
    ff_mem_free(stored);
    ff_mem_free(file_data);
    ff_layer_free(&layer);
    return rc;
}
