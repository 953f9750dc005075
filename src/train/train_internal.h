/* train_internal.h: pieces the FF trainers share that are not public API:
 * the checkpoint metadata of a layer, and the test hook that kills the
 * process at a chosen point (used by the resume tests). */
#ifndef FFSTREAM_TRAIN_INTERNAL_H
#define FFSTREAM_TRAIN_INTERNAL_H

#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/layerfile.h"
#include "ffstream/step.h"

/* Last finished epoch's means (NaN when none finished yet). */
typedef struct {
    double loss, goodness_pos, goodness_neg;
} ff_epoch_means_t;

/* Fills meta for layer `index` after `epochs_done` epochs and
 * `batch_in_epoch` batches of the next; `running` holds the sums of the
 * epoch in progress (zero at an epoch boundary). */
void ff_train_layer_meta(ff_layerfile_meta_t *meta, const ff_config_t *cfg, uint32_t index,
                         uint64_t data_fingerprint, const ff_epoch_means_t *last,
                         const ff_step_stats_t *running, uint32_t epochs_done,
                         uint32_t batch_in_epoch);

/* The means of a finished epoch's stats. */
ff_epoch_means_t ff_train_epoch_means(const ff_step_stats_t *st);

/* The step parameters of a layer with `units` outputs under cfg's recipe
 * (threshold, goodness, loss, Adam with weight decay, base learning rate). */
ff_step_params_t ff_train_step_params(const ff_config_t *cfg, uint32_t units);

/* The learning rate of step `batch` of `batches` in epoch `epoch` of a layer. */
double ff_train_layer_lr(const ff_config_t *cfg, uint32_t epoch, uint64_t batch,
                         uint64_t batches);

/* The head's Adam parameters for step `batch` of `batches` in head epoch
 * `epoch` (the learning-rate schedule applies to the head too). */
ff_adam_params_t ff_train_head_adam(const ff_config_t *cfg, uint32_t epoch, uint64_t batch,
                                    uint64_t batches);

/* Whether layer k counts in the goodness score and feeds the softmax head. */
int ff_train_layer_scored(const ff_config_t *cfg, uint32_t k);

/* How many layers are scored (the head has that many blocks of features). */
uint32_t ff_train_scored_count(const ff_config_t *cfg);

/* Kills the process with SIGKILL when FFSTREAM_TEST_KILL is
 * "phase:layer:count" and matches (phase, layer, count); with a fourth
 * field "INT" it raises SIGINT instead (a graceful stop), once. Phases: "train"
 * (count = steps of that layer taken by this process), "cache" and "eval" (count = chunks
 * written), "saved" (layer checkpoint complete, count 0), "advanced"
 * (run.json moved past the layer, count 0), "input" (count = chunks of the
 * first layer's caches written). */
void ff_train_test_kill(const char *phase, uint32_t layer, uint64_t count);

#endif
