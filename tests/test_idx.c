/* test_idx: IDX files, raw and gzip: good files load with the right values;
 * truncated, trailing, bad magic, wrong type or dimensions, mismatched counts
 * and out-of-range labels are rejected with a message naming the file and
 * the problem. Fixtures are written to a temporary directory. */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "ffstream/data.h"
#include "ffstream/idx.h"
#include "ffstream/memstat.h"
#include "ffstream/train.h"

static char dir[FF_PATH_MAX];

static size_t make_idx(uint8_t *buf, int ndims, const uint32_t *dims, uint8_t fill_mod) {
    buf[0] = 0, buf[1] = 0, buf[2] = 0x08, buf[3] = (uint8_t)ndims;
    size_t n = 1, off = 4;
    for (int i = 0; i < ndims; i++) {
        buf[off++] = (uint8_t)(dims[i] >> 24), buf[off++] = (uint8_t)(dims[i] >> 16);
        buf[off++] = (uint8_t)(dims[i] >> 8), buf[off++] = (uint8_t)dims[i];
        n *= dims[i];
    }
    for (size_t i = 0; i < n; i++) buf[off + i] = (uint8_t)((i * 7) % fill_mod);
    return off + n;
}

static void write_file(const char *name, const uint8_t *bytes, size_t size, int gz) {
    char path[FF_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, bytes, (unsigned)size);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(bytes, 1, size, f);
        fclose(f);
    }
}

/* Reads name expecting failure with a message containing want. */
static void expect_reject(const char *name, int ndims, const char *want) {
    char path[FF_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ff_idx_t idx;
    ff_error_t err = {{0}};
    int rc = ff_idx_read(&idx, path, ndims, &err);
    CHECKF(rc == -1, "%s was accepted", name);
    CHECK_CONTAINS(err.msg, want);
    CHECK_CONTAINS(err.msg, name);
    printf("rejected %s: %s\n", name, err.msg);
}

static void test_good_files(void) {
    static uint8_t buf[4096];
    uint32_t dims[3] = {5, 4, 3};
    size_t n = make_idx(buf, 3, dims, 255);
    write_file("good-raw", buf, n, 0);
    write_file("good.gz", buf, n, 1);
    const char *names[2] = {"good-raw", "good.gz"};
    for (int i = 0; i < 2; i++) {
        char path[FF_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        ff_idx_t idx;
        ff_error_t err;
        CHECKF(ff_idx_read(&idx, path, 3, &err) == 0, "%s", err.msg);
        CHECK(idx.ndims == 3 && idx.dims[0] == 5 && idx.dims[1] == 4 && idx.dims[2] == 3);
        CHECK(idx.count == 60);
        CHECK(idx.data != NULL && idx.data[1] == 7 && idx.data[59] == (59 * 7) % 255);
        ff_idx_free(&idx);
        ff_idx_free(&idx); /* second free is a no-op */
    }
}

static void test_bad_files(void) {
    static uint8_t buf[4096];
    uint32_t dims[3] = {5, 4, 3};
    size_t n = make_idx(buf, 3, dims, 255);
    write_file("truncated", buf, n - 1, 0);
    expect_reject("truncated", 3, "truncated");
    write_file("truncated-data.gz", buf, n - 10, 1);
    expect_reject("truncated-data.gz", 3, "truncated");
    write_file("trailing", buf, n, 0);
    {
        char path[FF_PATH_MAX];
        snprintf(path, sizeof path, "%s/trailing", dir);
        FILE *f = fopen(path, "ab");
        fputc(0, f);
        fclose(f);
    }
    expect_reject("trailing", 3, "trailing bytes");
    write_file("short-header", buf, 9, 0);
    expect_reject("short-header", 3, "truncated header");
    write_file("tiny", buf, 2, 0);
    expect_reject("tiny", 3, "expected at least a 4-byte IDX header");

    uint8_t bad[4096];
    memcpy(bad, buf, n);
    bad[0] = 0x1f, bad[1] = 0x8c; /* not gzip, not IDX */
    write_file("bad-magic", bad, n, 0);
    expect_reject("bad-magic", 3, "bad magic");
    memcpy(bad, buf, n);
    bad[2] = 0x0d; /* float elements */
    write_file("float-type", bad, n, 0);
    expect_reject("float-type", 3, "element type 0x0d");
    expect_reject("good-raw", 1, "3 dimensions, expected 1");

    uint32_t zero[3] = {0, 4, 3};
    n = make_idx(bad, 3, zero, 255);
    write_file("zero-dim", bad, n, 0);
    expect_reject("zero-dim", 3, "dimension 0 is 0");

    /* A gzip file cut in the middle of its compressed stream. */
    static uint8_t big[80000];
    uint32_t bdims[3] = {100, 28, 25};
    n = make_idx(big, 3, bdims, 251);
    write_file("full.gz", big, n, 1);
    char src[FF_PATH_MAX], dst[512];
    snprintf(src, sizeof src, "%s/full.gz", dir);
    snprintf(dst, sizeof dst, "%s/cut.gz", dir);
    FILE *in = fopen(src, "rb");
    static uint8_t gzbytes[80000];
    size_t gzlen = fread(gzbytes, 1, sizeof gzbytes, in);
    fclose(in);
    FILE *out = fopen(dst, "wb");
    fwrite(gzbytes, 1, gzlen / 2, out);
    fclose(out);
    expect_reject("cut.gz", 3, "truncated or corrupt");
    /* A flipped byte inside the compressed stream: inflate or the CRC fails. */
    gzbytes[gzlen / 2] ^= 0x55;
    snprintf(dst, sizeof dst, "%s/flipped.gz", dir);
    out = fopen(dst, "wb");
    fwrite(gzbytes, 1, gzlen, out);
    fclose(out);
    expect_reject("flipped.gz", 3, "corrupt");

    ff_idx_t idx;
    ff_error_t err;
    char missing[FF_PATH_MAX];
    snprintf(missing, sizeof missing, "%s/does-not-exist", dir);
    CHECK(ff_idx_read(&idx, missing, 1, &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot open");
}

/* A dataset directory with the given image and label counts, and one label
 * set to bad_label (when not 0). */
static void make_dataset(const char *sub, uint32_t images, uint32_t labels, uint8_t bad_label) {
    char d[FF_PATH_MAX];
    snprintf(d, sizeof d, "%s/%s", dir, sub);
    mkdir(d, 0755);
    static uint8_t buf[65536];
    const char *splits[2] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        uint32_t idims[3] = {images, 28, 28};
        size_t n = make_idx(buf, 3, idims, 255);
        char name[FF_PATH_MAX];
        snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte.gz", sub, splits[s]);
        write_file(name, buf, n, 1);
        uint32_t ldims[1] = {labels};
        n = make_idx(buf, 1, ldims, 10);
        if (bad_label) buf[8 + labels - 1] = bad_label;
        snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte", sub, splits[s]); /* raw */
        write_file(name, buf, n, 0);
    }
}

/* Images of 3x3 pixels: --label overlay would write the 10-value label
 * past each row; refused by name before any embedding. */
static void test_overlay_needs_room(void) {
    char d[FF_PATH_MAX];
    snprintf(d, sizeof d, "%s/tiny-images", dir);
    mkdir(d, 0755);
    static uint8_t buf[4096];
    const char *splits[2] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        uint32_t idims[3] = {40, 3, 3}, ldims[1] = {40};
        char name[FF_PATH_MAX];
        size_t n = make_idx(buf, 3, idims, 255);
        snprintf(name, sizeof name, "tiny-images/%s-images-idx3-ubyte", splits[s]);
        write_file(name, buf, n, 0);
        n = make_idx(buf, 1, ldims, 10);
        snprintf(name, sizeof name, "tiny-images/%s-labels-idx1-ubyte", splits[s]);
        write_file(name, buf, n, 0);
    }
    ff_config_t cfg;
    ff_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", d);
    cfg.batch = 10;
    cfg.label = FF_LABEL_OVERLAY;
    ff_dataset_t train, test;
    ff_error_t err;
    CHECK(ff_train_load_data(&cfg, &train, &test, &err) == -1);
    CHECK_CONTAINS(err.msg, "--label overlay writes the label over the first 10 pixels, but the "
                            "images are 3x3 (9 pixels)");
    cfg.label = FF_LABEL_CONCAT;
    CHECKF(ff_train_load_data(&cfg, &train, &test, &err) == 0, "%s", err.msg);
    ff_data_free(&train);
    ff_data_free(&test);
}

/* A gzip file whose size trailer matches a huge claim modulo 2^32 (the
 * header claims 2^32 + 60 bytes of data; 60 are there): refused by the
 * decompressed length, before anything is allocated from the claim. */
static void test_gzip_size_modulo(void) {
    static uint8_t buf[4096];
    uint32_t dims[3] = {1, 1, 60};
    size_t n = make_idx(buf, 3, dims, 255);
    /* dims 65537 x 65536 x 1 = 2^32 + 2^16 elements: mod 2^32 = 65536; keep
     * the real data at 65536 bytes so the trailer matches the claim mod 2^32. */
    (void)n;
    static uint8_t big[16 + 65536];
    uint32_t huge[3] = {65537, 65536, 1};
    big[0] = 0, big[1] = 0, big[2] = 0x08, big[3] = 3;
    for (int i = 0; i < 3; i++) {
        big[4 + 4 * i] = (uint8_t)(huge[i] >> 24), big[5 + 4 * i] = (uint8_t)(huge[i] >> 16);
        big[6 + 4 * i] = (uint8_t)(huge[i] >> 8), big[7 + 4 * i] = (uint8_t)huge[i];
    }
    write_file("modulo.gz", big, sizeof big, 1);
    ff_mem_reset_peaks();
    ff_mem_stats_t before, after;
    ff_mem_stats(&before);
    expect_reject("modulo.gz", 3, "truncated: the header promises 4295032832 data bytes");
    ff_mem_stats(&after);
    CHECKF(after.peak_total - before.current_total < (1u << 20), "%llu bytes allocated",
           (unsigned long long)(after.peak_total - before.current_total));
    /* Bytes after the gzip member, and a second member. */
    write_file("tail.gz", buf, n, 1);
    char path[FF_PATH_MAX];
    snprintf(path, sizeof path, "%s/tail.gz", dir);
    FILE *f = fopen(path, "ab");
    fputs("garbage", f);
    fclose(f);
    expect_reject("tail.gz", 3, "bytes after the gzip member");
}

static void test_dataset_validation(void) {
    ff_dataset_t d;
    ff_error_t err;
    char path[FF_PATH_MAX];
    make_dataset("ok", 20, 20, 0);
    snprintf(path, sizeof path, "%s/ok", dir);
    CHECKF(ff_data_load(&d, path, true, 0, &err) == 0, "%s", err.msg);
    CHECK(d.count == 20 && d.pixels == 784 && d.labels[1] == 7);
    CHECK_NEAR(d.images[1], 7.0 / 255.0, 1e-7);
    uint64_t fp = d.fingerprint;
    ff_data_free(&d);
    CHECK(ff_data_load(&d, path, true, 5, &err) == 0 && d.count == 5);
    CHECK(d.fingerprint != fp); /* a subset is different data */
    ff_data_free(&d);

    make_dataset("counts", 20, 19, 0);
    snprintf(path, sizeof path, "%s/counts", dir);
    CHECK(ff_data_load(&d, path, true, 0, &err) == -1);
    CHECK_CONTAINS(err.msg, "has 20 images but");
    CHECK_CONTAINS(err.msg, "19 labels");

    make_dataset("label", 20, 20, 10);
    snprintf(path, sizeof path, "%s/label", dir);
    CHECK(ff_data_load(&d, path, false, 0, &err) == -1);
    CHECK_CONTAINS(err.msg, "label 10 at index 19, expected 0..9");
    CHECK_CONTAINS(err.msg, "t10k-labels-idx1-ubyte");

    snprintf(path, sizeof path, "%s/empty-dir", dir);
    mkdir(path, 0755);
    CHECK(ff_data_load(&d, path, true, 0, &err) == -1);
    CHECK_CONTAINS(err.msg, "no train-images-idx3-ubyte[.gz] file found");
}

int main(void) {
    check_tempdir(dir, "idx");
    test_good_files();
    test_bad_files();
    test_dataset_validation();
    test_overlay_needs_room();
    test_gzip_size_modulo();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_idx");
}
