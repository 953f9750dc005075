/* data.c: dataset loading, standardisation, label embedding, negatives. */
#include "ffstream/data.h"

#include "ffstream/fileio.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ffstream/idx.h"
#include "ffstream/memstat.h"

/* Image bytes decoded at a time. */
#define STAGING_BYTES (1u << 20)

uint64_t ff_hash_bytes(uint64_t h, const void *bytes, size_t size) {
    const uint8_t *p = bytes;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Finds the first existing file among the usual MNIST spellings:
 * train-images-idx3-ubyte and train-images.idx3-ubyte, each raw or .gz. */
static int find_idx_file(char *path, size_t cap, const char *dir, const char *split,
                         const char *kind, ff_error_t *err) {
    char dotted[32];
    snprintf(dotted, sizeof dotted, "%s", kind);
    char *dash = strchr(dotted, '-');
    if (dash != NULL) *dash = '.';
    const char *const kinds[2] = {kind, dotted};
    const char *const suffixes[2] = {".gz", ""};
    for (int k = 0; k < 2; k++) {
        for (int s = 0; s < 2; s++) {
            snprintf(path, cap, "%s/%s-%s-ubyte%s", dir, split, kinds[k], suffixes[s]);
            struct stat st;
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return 0;
        }
    }
    return ff_error_set(err,
                        "%s: no %s-%s-ubyte[.gz] file found (expected MNIST-format IDX "
                        "files; install Debian's dataset-fashion-mnist or pass --data DIR)",
                        dir, split, kind);
}

int ff_data_load(ff_dataset_t *out, const char *dir, bool train, size_t limit, ff_error_t *err) {
    memset(out, 0, sizeof *out);
    const char *split = train ? "train" : "t10k";
    char img_path[FF_PATH_MAX], lab_path[FF_PATH_MAX];
    ff_idx_t img = {0}, lab = {0};
    ff_idx_reader_t *images = NULL;
    uint8_t *staging = NULL;
    int rc = -1;
    if (find_idx_file(img_path, sizeof img_path, dir, split, "images-idx3", err) != 0) goto cleanup;
    if (find_idx_file(lab_path, sizeof lab_path, dir, split, "labels-idx1", err) != 0) goto cleanup;
    /* Both files verified (header against real length) before anything is
     * allocated from them; the labels are small and read whole. */
    if (ff_idx_open(&images, &img, img_path, 3, err) != 0) goto cleanup;
    if (ff_idx_read(&lab, lab_path, 1, err) != 0) goto cleanup;
    if (img.dims[0] != lab.dims[0]) {
        ff_error_set(err, "%s has %u images but %s has %u labels, expected equal counts",
                     img_path, img.dims[0], lab_path, lab.dims[0]);
        goto cleanup;
    }
    for (size_t i = 0; i < lab.count; i++) {
        if (lab.data[i] >= FF_CLASSES) {
            ff_error_set(err, "%s: label %u at index %zu, expected 0..%d", lab_path,
                         lab.data[i], i, FF_CLASSES - 1);
            goto cleanup;
        }
    }
    size_t n = img.dims[0];
    if (limit > 0 && limit < n) n = limit;
    out->count = n;
    out->rows = img.dims[1];
    out->cols = img.dims[2];
    out->pixels = (size_t)img.dims[1] * img.dims[2];
    size_t total;
    if (ff_mul_size(n, out->pixels, &total) != 0) {
        ff_error_set(err, "%s: image size overflows", img_path);
        goto cleanup;
    }
    out->images = ff_mem_alloc(FF_MEM_DATASET, total * sizeof(float));
    out->labels = ff_mem_alloc(FF_MEM_DATASET, n);
    staging = ff_mem_alloc(FF_MEM_OTHER, STAGING_BYTES);
    if (out->images == NULL || out->labels == NULL || staging == NULL) {
        ff_error_set(err, "%s: out of memory for %zu images", img_path, n);
        goto cleanup;
    }
    /* Only the images kept are decoded, through a small staging buffer. */
    uint64_t h = FF_FNV_OFFSET;
    for (size_t done = 0; done < total;) {
        size_t step = total - done < STAGING_BYTES ? total - done : STAGING_BYTES;
        if (ff_idx_reader_read(images, staging, step, err) != 0) goto cleanup;
        h = ff_hash_bytes(h, staging, step);
        for (size_t i = 0; i < step; i++)
            out->images[done + i] = (float)staging[i] * (1.0f / 255.0f);
        done += step;
    }
    memcpy(out->labels, lab.data, n);
    out->fingerprint = ff_hash_bytes(h, lab.data, n);
    rc = 0;
cleanup:
    if (rc != 0) ff_data_free(out);
    ff_mem_free(staging);
    ff_idx_close(images);
    ff_idx_free(&lab);
    return rc;
}

void ff_data_free(ff_dataset_t *d) {
    if (d == NULL) return;
    ff_mem_free(d->images);
    ff_mem_free(d->labels);
    memset(d, 0, sizeof *d);
}

void ff_data_stats(const ff_dataset_t *d, double *mean, double *std) {
    size_t total = d->count * d->pixels;
    double sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < total; i++) sum += d->images[i];
    double m = total ? sum / (double)total : 0.0;
    for (size_t i = 0; i < total; i++) {
        double x = d->images[i] - m;
        sum2 += x * x;
    }
    *mean = m;
    *std = total ? sqrt(sum2 / (double)total) : 1.0;
}

void ff_data_standardize(ff_dataset_t *d, double mean, double std) {
    size_t total = d->count * d->pixels;
    float m = (float)mean, inv = (float)(std > 0 ? 1.0 / std : 1.0);
    for (size_t i = 0; i < total; i++) d->images[i] = (d->images[i] - m) * inv;
}

int ff_data_permute(ff_dataset_t *d, const uint32_t *perm, ff_error_t *err) {
    /* In place, cycle by cycle, so the dataset is never held twice: new row i
     * is old row perm[i]. */
    size_t n = d->count, px = d->pixels;
    uint8_t *done = ff_mem_calloc(FF_MEM_OTHER, n, 1);
    float *row = ff_mem_alloc(FF_MEM_OTHER, px * sizeof(float));
    if (done == NULL || row == NULL) {
        ff_mem_free(row);
        ff_mem_free(done);
        return ff_error_set(err, "out of memory permuting %zu images", n);
    }
    for (size_t start = 0; start < n; start++) {
        if (done[start]) continue;
        memcpy(row, d->images + start * px, px * sizeof(float));
        uint8_t label = d->labels[start];
        size_t k = start;
        for (;;) {
            size_t src = perm[k];
            done[k] = 1;
            if (src == start) {
                memcpy(d->images + k * px, row, px * sizeof(float));
                d->labels[k] = label;
                break;
            }
            memcpy(d->images + k * px, d->images + src * px, px * sizeof(float));
            d->labels[k] = d->labels[src];
            k = src;
        }
    }
    ff_mem_free(row);
    ff_mem_free(done);
    return 0;
}

size_t ff_data_input_dim(size_t pixels, ff_label_mode_t mode) {
    return mode == FF_LABEL_CONCAT ? pixels + FF_CLASSES : pixels;
}

void ff_data_embed(float *out, const float *image, size_t pixels, int label,
                   ff_label_mode_t mode) {
    ff_data_embed_scaled(out, image, pixels, label, mode, 1.0f);
}

void ff_data_embed_scaled(float *out, const float *image, size_t pixels, int label,
                          ff_label_mode_t mode, float scale) {
    memcpy(out, image, pixels * sizeof(float));
    float *slot = mode == FF_LABEL_CONCAT ? out + pixels : out;
    float value = scale;
    if (mode == FF_LABEL_OVERLAY) {
        /* Overlay: the label's pixel carries the image's largest value so it
         * stands out after standardisation, as in Hinton's reference code. */
        float max = image[0];
        for (size_t i = 1; i < pixels; i++)
            if (image[i] > max) max = image[i];
        value = max * scale;
    }
    float neutral = value * 0.1f;
    for (int c = 0; c < FF_CLASSES; c++)
        slot[c] = label == FF_LABEL_NEUTRAL ? neutral : c == label ? value : 0.0f;
}

void ff_data_embed_rows(float *out, const float *images, size_t pixels, const uint32_t *idx,
                        const uint8_t *labels, size_t n, ff_label_mode_t mode) {
    ff_data_embed_rows_scaled(out, images, pixels, idx, labels, n, mode, 1.0f);
}

void ff_data_embed_rows_scaled(float *out, const float *images, size_t pixels,
                               const uint32_t *idx, const uint8_t *labels, size_t n,
                               ff_label_mode_t mode, float scale) {
    size_t dim = ff_data_input_dim(pixels, mode);
    for (size_t i = 0; i < n; i++) {
        size_t src = idx != NULL ? idx[i] : i;
        ff_data_embed_scaled(out + i * dim, images + src * pixels, pixels,
                             labels != NULL ? labels[i] : FF_LABEL_NEUTRAL, mode, scale);
    }
}

void ff_data_shift_row(float *row, uint32_t rows, uint32_t cols, ff_label_mode_t mode, int dx,
                       int dy) {
    size_t pixels = (size_t)rows * cols;
    float label[FF_CLASSES];
    int overlay = mode == FF_LABEL_OVERLAY && pixels > FF_CLASSES;
    if (overlay) memcpy(label, row, sizeof label);
    float background = row[overlay ? FF_CLASSES : 0];
    for (size_t i = overlay ? FF_CLASSES : 0; i < pixels; i++)
        if (row[i] < background) background = row[i];
    /* The label pixels must not travel with the image. */
    if (overlay)
        for (int c = 0; c < FF_CLASSES; c++) row[c] = background;
    /* In place: walk against the shift so every source is read before it is
     * overwritten. */
    int ystep = dy > 0 ? -1 : 1, xstep = dx > 0 ? -1 : 1;
    for (int y = dy > 0 ? (int)rows - 1 : 0; y >= 0 && y < (int)rows; y += ystep) {
        for (int x = dx > 0 ? (int)cols - 1 : 0; x >= 0 && x < (int)cols; x += xstep) {
            int sy = y - dy, sx = x - dx;
            int inside = sy >= 0 && sy < (int)rows && sx >= 0 && sx < (int)cols;
            row[(size_t)y * cols + (size_t)x] =
                inside ? row[(size_t)sy * cols + (size_t)sx] : background;
        }
    }
    if (overlay) memcpy(row, label, sizeof label);
}

void ff_data_jitter_batch(float *x, size_t npos, size_t width, uint32_t rows, uint32_t cols,
                          ff_label_mode_t mode, uint32_t max_shift, uint64_t seed,
                          uint64_t epoch, uint64_t batch, size_t first) {
    if (max_shift == 0) return;
    ff_rng_t rng;
    ff_rng_init(&rng, seed, FF_RNG_PURPOSE_JITTER, epoch, batch);
    uint32_t span = 2 * max_shift + 1;
    /* The draws of the batch's earlier images, replayed (a draw may take
     * more than one number, so they cannot be skipped by count). */
    for (size_t i = 0; i < 2 * first; i++) ff_rng_below(&rng, span);
    for (size_t i = 0; i < npos; i++) {
        int dx = (int)ff_rng_below(&rng, span) - (int)max_shift;
        int dy = (int)ff_rng_below(&rng, span) - (int)max_shift;
        if (dx == 0 && dy == 0) continue;
        ff_data_shift_row(x + i * width, rows, cols, mode, dx, dy);
        ff_data_shift_row(x + (npos + i) * width, rows, cols, mode, dx, dy);
    }
}

void ff_data_redraw_negatives(float *x, size_t npos, size_t width, size_t pixels,
                              ff_label_mode_t mode, uint64_t seed, uint64_t epoch,
                              uint64_t batch, size_t first) {
    size_t slot = mode == FF_LABEL_CONCAT ? pixels : 0;
    ff_rng_t rng;
    ff_rng_init(&rng, seed, FF_RNG_PURPOSE_NEGATIVE_EPOCH, epoch, batch);
    for (size_t i = 0; i < first; i++) ff_rng_below(&rng, FF_CLASSES - 1);
    for (size_t i = 0; i < npos; i++) {
        const float *pos = x + i * width + slot;
        float *neg = x + (npos + i) * width + slot;
        int label = 0;
        for (int c = 1; c < FF_CLASSES; c++)
            if (pos[c] > pos[label]) label = c;
        int wrong = (label + 1 + (int)ff_rng_below(&rng, FF_CLASSES - 1)) % FF_CLASSES;
        for (int c = 0; c < FF_CLASSES; c++) neg[c] = c == wrong ? pos[label] : 0.0f;
    }
}

void ff_data_negative_labels(uint8_t *neg, const uint8_t *labels, size_t n, ff_rng_t *rng) {
    for (size_t i = 0; i < n; i++)
        neg[i] = (uint8_t)((labels[i] + 1 + ff_rng_below(rng, FF_CLASSES - 1)) % FF_CLASSES);
}
