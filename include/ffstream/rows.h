/* rows.h: where a Forward-Forward layer's input rows come from and where
 * its outputs (the next layer's inputs) go: the row-source interface the
 * one layer loop (loop.h) is written against, and its implementations.
 *
 * Rows come in four sets, each cut into chunks that are read and written
 * whole:
 *   FF_SET_TRAIN          a chunk is one training batch: its m images with
 *                         their labels (positive rows), then the same images
 *                         with wrong labels (negative rows)
 *   FF_SET_TEST           a chunk is E test images, each with each of the
 *                         10 labels (the candidates of evaluation)
 *   FF_SET_TRAIN_NEUTRAL  one neutral-label row per training image, in
 *                         chunks of m images (the softmax head's inputs)
 *   FF_SET_TEST_NEUTRAL   the same for the test images, chunks of E
 *
 * A source is a small table of operations plus opaque state (the
 * file_operations habit): the loop is written once, a source is a file.
 *   rows_mem.c    ff-mem: the data and the next layer's training inputs in
 *                 RAM; evaluation and the head's features are computed at
 *                 the end through every layer (per_layer_sets = 0)
 *   rows_cache.c  ff-stream: every set of the current layer in a cache file
 *                 on disk, read one chunk ahead and written one chunk
 *                 behind with io_uring (per_layer_sets = 1)
 * How two more plug in without touching the loop:
 *   - a rank's shard (data parallel): the cache source with a geometry that
 *     keeps the rank's share of each chunk's images; the loop reduces the
 *     gradient across ranks before Adam (loop.h's reduce hook);
 *   - a layer too wide for memory: the rows stay as they are; the layer
 *     store (store.h) hands out tiles and the step streams them.
 *
 * Contract: at most one chunk is held (read .. release) and one prefetch is
 * in flight at a time; a chunk's output buffer (out_buffer .. out_commit)
 * is filled while its input is held. */
#ifndef FFSTREAM_ROWS_H
#define FFSTREAM_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/aio.h"
#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/error.h"

typedef enum {
    FF_SET_TRAIN = 0,
    FF_SET_TEST = 1,
    FF_SET_TRAIN_NEUTRAL = 2,
    FF_SET_TEST_NEUTRAL = 3,
    FF_SET_COUNT
} ff_set_t;

/* How a set is cut: chunk c holds units c*units_per_chunk .. (the last may
 * be short), each unit (an image) giving rows_per_unit rows. */
typedef struct {
    uint64_t units;
    uint64_t units_per_chunk;
    uint32_t rows_per_unit;
    uint64_t chunks;
} ff_set_shape_t;

/* The shapes of the four sets of a run: N training images in batches of
 * batch/2, T test images in chunks of ff_config_eval_images. */
void ff_rows_shapes(ff_set_shape_t shapes[FF_SET_COUNT], const ff_config_t *cfg, uint64_t train,
                    uint64_t test);

/* Images in chunk c of a set, and its rows. */
uint64_t ff_set_chunk_units(const ff_set_shape_t *shape, uint64_t c);
size_t ff_set_chunk_rows(const ff_set_shape_t *shape, uint64_t c);

/* How chunk c's rows group by image, for the first layer's image columns
 * (`shared`) computed once per image: a training chunk is its positives
 * then their negatives, a test chunk each image's 10 candidates together,
 * a neutral chunk one row per image (no groups: shared is 0). */
ff_dense_groups_t ff_set_chunk_groups(const ff_set_shape_t *shape, ff_set_t set, uint64_t c,
                                      size_t shared);

/* What the first layer's rows are made of: the data (standardised), the
 * wrong label of every training image, and the embedding. */
typedef struct {
    const ff_dataset_t *train, *test;
    const uint8_t *negative_labels; /* [train->count] */
    ff_label_mode_t label;
    float label_scale;
} ff_rows_data_t;

/* Writes chunk c of set for the first layer into out [rows, input width]:
 * the one place where the first layer's rows are embedded. */
void ff_rows_embed_chunk(float *out, const ff_rows_data_t *data, const ff_set_shape_t *shape,
                         ff_set_t set, uint64_t c);

typedef struct ff_rows ff_rows_t;

typedef struct {
    /* Inputs of `layer` become current (opened, checked). */
    int (*begin_layer)(void *self, uint32_t layer, ff_error_t *err);
    /* A pass over set begins; with write_next its outputs are the next
     * layer's inputs of that set. */
    int (*begin_pass)(void *self, ff_set_t set, int write_next, ff_error_t *err);
    /* Chunk c of the current layer's set. *rows stays valid until release;
     * with writable the caller may change it (the first layer's
     * augmentation). */
    int (*read)(void *self, ff_set_t set, uint64_t c, int writable, float **rows,
                ff_error_t *err);
    /* Chunk c of set will be read next: start reading it. */
    int (*prefetch)(void *self, ff_set_t set, uint64_t c, ff_error_t *err);
    void (*release)(void *self, ff_set_t set, uint64_t c);
    /* Where chunk c's outputs go [rows, out width], and their hand-over. */
    int (*out_buffer)(void *self, ff_set_t set, uint64_t c, float **rows, ff_error_t *err);
    int (*out_commit)(void *self, ff_set_t set, uint64_t c, ff_error_t *err);
    /* Every chunk of set's outputs is written: make them durable now,
     * before end_layer (--fused-pass: before the layer counts as trained). */
    int (*out_finish)(void *self, ff_set_t set, ff_error_t *err);
    /* Set's outputs were finished by an earlier process: take them as they
     * are (checked) instead of a pass. */
    int (*out_reuse)(void *self, ff_set_t set, ff_error_t *err);
    /* Every output written for `layer` is durable and becomes the inputs of
     * layer + 1 (the last writes of one pass overlap the next pass). */
    int (*end_layer)(void *self, uint32_t layer, ff_error_t *err);
    /* Layer's inputs are no longer needed (run.json has moved past it). */
    void (*drop_layer)(void *self, uint32_t layer);
    /* Evaluation scores summed over layers < layer: kept with the rows
     * when per_layer_sets, so a resumed run has them. */
    int (*scores_load)(void *self, uint32_t layer, float *scores, ff_error_t *err);
    int (*scores_save)(void *self, uint32_t layer, const float *scores, ff_error_t *err);
    /* The softmax head's features of chunk c (training or test side):
     * out [images, scored layers x hidden], each block normalised. */
    int (*features)(void *self, int test, uint64_t c, float *out, ff_error_t *err);
    /* The head is trained: what only it needed can go. */
    void (*finish)(void *self);
    /* Waits for everything in flight, then frees; NULL self is a no-op. */
    void (*destroy)(void *self);
} ff_rows_ops_t;

struct ff_rows {
    const ff_rows_ops_t *ops;
    void *self;
    /* 1: every set of every layer passes through the source (evaluation and
     * the head's features follow the layers one by one); 0: only the
     * training rows do, and evaluation runs at the end through every layer
     * kept in memory. */
    int per_layer_sets;
    ff_set_shape_t shape[FF_SET_COUNT];
    uint32_t width0;      /* input width of the first layer */
    uint32_t hidden;
};

/* ---- ff-mem: rows in RAM ---- */

/* A source over data (kept by pointer, must outlive the source): the first
 * layer's rows are embedded chunk by chunk as they are read; each layer's
 * outputs on every training row are kept in RAM (2 N H floats, chunk after
 * chunk) as the next layer's inputs. @return 0 or -1 with err. */
int ff_rows_mem_create(ff_rows_t *rows, const ff_config_t *cfg, const ff_rows_data_t *data,
                       ff_error_t *err);

/* ---- ff-stream: rows in cache files ---- */

/* A source over the caches of the run directory `dir` (RUN/cache). The
 * caches of the first layer are written by ff_rows_cache_write_inputs;
 * `tag` ties every cache to its run. @return 0 or -1 with err. */
int ff_rows_cache_create(ff_rows_t *rows, const ff_config_t *cfg, const char *dir,
                         uint64_t train, uint64_t test, uint32_t width0, uint64_t tag,
                         ff_aio_t *aio, ff_error_t *err);

/* Embeds every set of the first layer from data into layer 0's caches and
 * writes zero scores. @return 0 or -1 with err. */
int ff_rows_cache_write_inputs(ff_rows_t *rows, const ff_rows_data_t *data, ff_error_t *err);

/* Removes the caches of every layer below `layer` (a resumed run's
 * leftovers). */
void ff_rows_cache_remove_below(ff_rows_t *rows, uint32_t layer);

#endif
