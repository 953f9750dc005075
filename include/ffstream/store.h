/* store.h: where a Forward-Forward layer's state (weights, gradients, Adam
 * moments) lives between the steps of the layer loop (loop.h), and how its
 * training progress is saved: the layer-store interface and its
 * implementations.
 *   store_mem.c   ff-mem: every layer allocated at the start and kept in
 *                 RAM (the original experiment); written to RUN/layers at
 *                 the end when there is a run directory
 *   store_file.c  ff-stream: one layer at a time, loaded from or created
 *                 beside its checkpoint RUN/layers/NNN.ffl, saved after
 *                 every epoch and (in the background) when trained, then
 *                 evicted; run.json advances layer by layer
 * A layer too wide for memory (--tile-units, or --mem-budget that needs
 * it) is kept by store_file.c in tiles of output units (tiles.h): acquire
 * then gives no layer but the store's tiles, and every step commits its
 * state. */
#ifndef FFSTREAM_STORE_H
#define FFSTREAM_STORE_H

#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"
#include "ffstream/layerfile.h"
#include "ffstream/run.h"
#include "ffstream/step.h"
#include "ffstream/tiles.h"
#include "ffstream/train.h"

/* Last finished epoch's means (NaN when none finished yet). */
typedef struct {
    double loss, goodness_pos, goodness_neg;
} ff_epoch_means_t;

/* The means of a finished epoch's stats. */
ff_epoch_means_t ff_epoch_means(const ff_step_stats_t *st);

/* Where a layer's training stands. */
typedef struct {
    uint32_t epochs_done;     /* whole epochs finished */
    uint32_t batch_in_epoch;  /* batches of epoch epochs_done already taken */
    ff_step_stats_t running;  /* sums of the epoch in progress */
    ff_epoch_means_t last;    /* the last finished epoch's means */
    int complete;             /* every epoch trained */
} ff_layer_progress_t;

typedef struct {
    /* Layer k, from its checkpoint or new; *progress says where its
     * training stands. The layer stays valid until release. A tiled layer
     * gives *layer NULL: its tiles come from `tiles`. */
    int (*acquire)(void *self, uint32_t k, ff_layer_t **layer, ff_layer_progress_t *progress,
                   ff_error_t *err);
    /* A point worth saving: an epoch boundary before the last, or a stop. */
    int (*checkpoint)(void *self, uint32_t k, const ff_layer_t *layer,
                      const ff_layer_progress_t *progress, ff_error_t *err);
    /* Layer k's training is complete; it is only read from now until
     * release (its passes run meanwhile). */
    int (*trained)(void *self, uint32_t k, const ff_layer_t *layer,
                   const ff_layer_progress_t *progress, ff_error_t *err);
    /* Layer k's passes are done and its outputs durable: save, evict,
     * advance. */
    int (*release)(void *self, uint32_t k, ff_error_t *err);
    /* Every layer, when the store keeps them all in memory (evaluation at
     * the end runs through them); NULL otherwise. */
    ff_layer_t *(*all_layers)(void *self);
    /* Layer k's figures for the result (its checkpoint's header, and what
     * it cost when that was recorded): for layers this process did not
     * train. */
    int (*describe)(void *self, uint32_t k, ff_layer_result_t *out, ff_error_t *err);
    /* The figures of every layer done so far (layers[0..count), measured
     * ones flagged), kept with the run when it can be resumed; NULL when
     * the store keeps nothing between processes. */
    int (*record)(void *self, const ff_layer_result_t *layers, uint32_t count, ff_error_t *err);
    /* The acquired layer's tiles when the store keeps it in tiles, else
     * NULL (NULL op: the store never tiles). */
    ff_tiles_t *(*tiles)(void *self);
    /* The checkpoint state of layer k at `progress` (a tiled step's commit). */
    void (*layer_meta)(void *self, uint32_t k, const ff_layer_progress_t *progress,
                       ff_layerfile_meta_t *meta);
    /* FNV-1a of every layer's parameters, in order. */
    uint64_t (*weights_hash)(void *self);
    /* The run is trained: final files (ff-mem's layers, if asked). */
    int (*finish)(void *self, const ff_result_t *res, ff_error_t *err);
    void (*destroy)(void *self);
} ff_store_ops_t;

typedef struct {
    const ff_store_ops_t *ops;
    void *self;
} ff_store_t;

/* ---- ff-mem: every layer in RAM ---- */

/* Allocates and initialises every layer now (the whole network in memory,
 * as the original experiment holds it). With cfg->run_dir set, finish
 * writes every layer in the checkpoint format and a finished run.json.
 * @return 0 or -1 with err. */
int ff_store_mem_create(ff_store_t *store, const ff_config_t *cfg, uint32_t width0,
                        uint64_t data_fingerprint, uint64_t train, uint64_t test,
                        ff_error_t *err);

/* ---- ff-stream: one layer at a time, checkpoints on disk ---- */

/* A store over RUN/layers with the run state `state` (run.json's content,
 * owned by the caller and advanced by release). writer 0: a rank other
 * than the first of a data-parallel run, which loads checkpoints but
 * writes nothing (rank 0 writes for every rank: their layers are the
 * same). @return 0 or -1 with err. */
int ff_store_file_create(ff_store_t *store, const ff_config_t *cfg, uint32_t width0,
                         uint64_t data_fingerprint, uint64_t batches, ff_run_state_t *state,
                         int writer, ff_error_t *err);

/* The codec options of a run's checkpoints (--checkpoint-codec). */
ff_layerfile_options_t ff_store_layerfile_options(const ff_config_t *cfg);

/* The checkpoint metadata of layer `index` at `progress`. */
void ff_store_layer_meta(ff_layerfile_meta_t *meta, const ff_config_t *cfg, uint32_t index,
                         uint64_t data_fingerprint, const ff_layer_progress_t *progress);

#endif
