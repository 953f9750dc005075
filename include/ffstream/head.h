/* head.h: the one-pass read-out of a Forward-Forward network (Hinton 2022,
 * section 3.3): a linear softmax layer on the normalised activities of the
 * scored layers for a neutral-label input. It trains on detached activities
 * (no gradient reaches the FF layers) and is shared by ff-mem and ff-stream,
 * which feed it the same feature rows in the same order. */
#ifndef FFSTREAM_HEAD_H
#define FFSTREAM_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/adam.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"

typedef struct {
    ff_layer_t layer; /* weight [10, in], bias [10], gradients, Adam moments */
    size_t max_rows;
    float *scratch; /* [2, max_rows, 10] logits and their gradient */
} ff_head_t;

/* Allocates a head of `in` features for batches up to max_rows, initialised
 * as layer `index` of a run with `seed` (PyTorch nn.Linear init).
 * @return 0 or -1 with err. */
int ff_head_init(ff_head_t *head, uint32_t in, size_t max_rows, uint64_t seed, uint32_t index,
                 ff_error_t *err);
void ff_head_free(ff_head_t *head);

/* Writes block `block` of feature rows: features[i, block*width ..] =
 * activity[i, :] / (||activity[i, :]|| + eps), for `rows` rows of
 * `features_width` floats. activity [rows, width]. */
void ff_head_gather(float *features, size_t features_width, const float *activity, size_t rows,
                    size_t width, size_t block);

/* One Adam step of the head on x [rows, in] with labels. @return the loss. */
double ff_head_train_step(ff_head_t *head, const float *x, const uint8_t *labels, size_t rows,
                          const ff_adam_params_t *adam);

/* @return how many of the rows of x the head classifies as labels says. */
size_t ff_head_correct(ff_head_t *head, const float *x, const uint8_t *labels, size_t rows);

/* Bytes ff_head_init takes for `in` features and max_rows rows: the
 * layer's weights, gradients and Adam moments, and the scratch. */
uint64_t ff_head_bytes(uint64_t in, uint64_t max_rows);

#endif
