/* train_internal.h: pieces the FF trainers share that are not public API:
 * what the configuration says for a layer's step, its learning rate at a
 * step, the head's Adam parameters and which layers are scored. */
#ifndef FFSTREAM_TRAIN_INTERNAL_H
#define FFSTREAM_TRAIN_INTERNAL_H

#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/step.h"

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

#endif
