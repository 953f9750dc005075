/* data.h: datasets in memory (images as standardised floats, labels as
 * bytes), label embedding for Forward-Forward, negative labels, and the data
 * fingerprint that ties a run to the exact data it was trained on. */
#ifndef FFSTREAM_DATA_H
#define FFSTREAM_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/rng.h"

#define FF_CLASSES 10

typedef enum {
    FF_LABEL_CONCAT = 0,  /* one-hot appended after the pixels */
    FF_LABEL_OVERLAY = 1, /* Hinton: one-hot over the first 10 pixels, scaled by the image max */
} ff_label_mode_t;

typedef struct {
    size_t count;        /* images */
    size_t pixels;       /* rows * cols */
    uint32_t rows, cols;
    float *images;       /* [count, pixels], [0,1] after load, standardised after ff_data_standardize */
    uint8_t *labels;     /* [count], each < FF_CLASSES */
    uint64_t fingerprint; /* hash of the raw label and pixel bytes loaded */
} ff_dataset_t;

/* Loads the train or test split of the MNIST-format set in dir: files
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte, also with '.' for the first
 * '-' before idx, raw or .gz. limit > 0 keeps the first limit images.
 * Pixels are scaled to [0,1]. @return 0 or -1 with err. */
int ff_data_load(ff_dataset_t *out, const char *dir, bool train, size_t limit, ff_error_t *err);

void ff_data_free(ff_dataset_t *d);

/* Mean and standard deviation over every pixel of d (double accumulation). */
void ff_data_stats(const ff_dataset_t *d, double *mean, double *std);

/* x <- (x - mean) / std for every pixel. */
void ff_data_standardize(ff_dataset_t *d, double mean, double std);

/* Reorders d's images and labels by perm (new i = old perm[i]).
 * @return 0 or -1 when out of memory. */
int ff_data_permute(ff_dataset_t *d, const uint32_t *perm, ff_error_t *err);

/* Width of an embedded FF row: pixels + 10 (concat) or pixels (overlay). */
size_t ff_data_input_dim(size_t pixels, ff_label_mode_t mode);

/* Writes one embedded row (width ff_data_input_dim) for image with label. */
void ff_data_embed(float *out, const float *image, size_t pixels, int label,
                   ff_label_mode_t mode);

/* Embeds n images: out[i] = embed(images[idx[i]], labels[i]). idx may be
 * NULL (identity). out: [n, ff_data_input_dim]. */
void ff_data_embed_rows(float *out, const float *images, size_t pixels, const uint32_t *idx,
                        const uint8_t *labels, size_t n, ff_label_mode_t mode);

/* The label of a neutral row: every class gets a tenth of the label value
 * (Hinton's input for the one-pass softmax read-out). */
#define FF_LABEL_NEUTRAL (-1)

/* ff_data_embed with the label value multiplied by scale (concat: scale;
 * overlay: scale x the image's max); label may be FF_LABEL_NEUTRAL. With
 * scale 1 it writes exactly what ff_data_embed writes. */
void ff_data_embed_scaled(float *out, const float *image, size_t pixels, int label,
                          ff_label_mode_t mode, float scale);

/* ff_data_embed_rows with a label scale; labels NULL embeds neutral rows. */
void ff_data_embed_rows_scaled(float *out, const float *images, size_t pixels,
                               const uint32_t *idx, const uint8_t *labels, size_t n,
                               ff_label_mode_t mode, float scale);

/* Shifts the image part of one embedded row (rows x cols pixels, then the
 * label for concat) by dx columns and dy rows; uncovered pixels take the
 * image's smallest value (the background after standardisation). The label
 * (the first 10 pixels under overlay) stays where it is. */
void ff_data_shift_row(float *row, uint32_t rows, uint32_t cols, ff_label_mode_t mode, int dx,
                       int dy);

/* Input jitter of the images first .. first+npos-1 of one training batch,
 * x [2 npos, width] (positives, then their negatives in the same order):
 * positive row i and negative row i get the same shift, uniform in
 * [-max_shift, max_shift]^2, the batch's images in order from (seed, epoch,
 * batch) alone, so every trainer applies the same shifts whether a batch
 * comes whole or in pieces. */
void ff_data_jitter_batch(float *x, size_t npos, size_t width, uint32_t rows, uint32_t cols,
                          ff_label_mode_t mode, uint32_t max_shift, uint64_t seed,
                          uint64_t epoch, uint64_t batch, size_t first);

/* Fresh negatives for one first-layer training batch x [2 npos, width]
 * (positives, then their negatives): reads each positive row's label from
 * its label slot (the largest of the 10 label values) and rewrites negative
 * row i's slot with a wrong label drawn from (seed, epoch, batch) alone
 * (images first .. first+npos-1 of the batch, as ff_data_jitter_batch), at
 * the positive's label value. Lets the first layer see new negatives every
 * epoch while its cache holds rows embedded once. */
void ff_data_redraw_negatives(float *x, size_t npos, size_t width, size_t pixels,
                              ff_label_mode_t mode, uint64_t seed, uint64_t epoch,
                              uint64_t batch, size_t first);

/* neg[i] = a label drawn uniformly from the 9 labels other than labels[i]. */
void ff_data_negative_labels(uint8_t *neg, const uint8_t *labels, size_t n, ff_rng_t *rng);

/* @return the FNV-1a 64-bit hash of bytes, continuing from h (start with
 * FF_FNV_OFFSET). */
#define FF_FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t ff_hash_bytes(uint64_t h, const void *bytes, size_t size);

#endif
