/* shard.h: a rank's share of the data in a data-parallel run. Every batch
 * of m images is cut into P equal slices, rank r keeping images
 * [r m_b / P, (r+1) m_b / P) of batch b (m_b: the batch's images, m but for
 * the last batch); every rank keeps the same positions of every batch, its
 * positive and negative rows alike. The test images are cut into P
 * contiguous ranges. A rank's data is then an ordinary, smaller data set
 * whose batches are its slices (batch m / P), so the loop, the row source
 * and the caches work on it unchanged; only the gradient's normalisation
 * and the first layer's augmentation need the whole batch (ff_shard_share).
 * One process is the shard {rank 0 of 1}. */
#ifndef FFSTREAM_SHARD_H
#define FFSTREAM_SHARD_H

#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/error.h"

typedef struct {
    int rank, ranks;
    uint64_t train, test;   /* images over every rank */
    uint64_t batch_images;  /* m: images of a whole batch over every rank */
} ff_shard_t;

/* The shard of rank of ranks for cfg over train x test images. */
ff_shard_t ff_shard_make(const ff_config_t *cfg, int rank, int ranks, uint64_t train,
                         uint64_t test);

/* Whether the split works: m divisible by the ranks, every rank with at
 * least one image of the last batch and one test image. @return 0, or -1
 * with err naming the flag to change. */
int ff_shard_check(const ff_shard_t *s, ff_error_t *err);

/* Images of batch b over every rank, and this rank's first image within it
 * and its count. */
uint64_t ff_shard_batch_images(const ff_shard_t *s, uint64_t b);
void ff_shard_share(const ff_shard_t *s, uint64_t b, uint64_t *offset, uint64_t *count);

/* This rank's test images: [*first, *first + *count). */
void ff_shard_test_range(const ff_shard_t *s, uint64_t *first, uint64_t *count);

/* Keeps this rank's images of train (and of neg, the wrong label of every
 * training image) and of test, in place. @return 0 or -1 with err. */
int ff_shard_apply(const ff_shard_t *s, ff_dataset_t *train, uint8_t *neg, ff_dataset_t *test,
                   ff_error_t *err);

#endif
