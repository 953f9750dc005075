/* layer.h: one fully connected layer with everything training needs: the
 * parameters (weight [out, in] then bias [out], contiguous), their gradients
 * and the Adam moments, each block one allocation in the same layout so a
 * single Adam call updates the whole layer and a checkpoint can store the
 * blocks as they are. */
#ifndef FFSTREAM_LAYER_H
#define FFSTREAM_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/adam.h"
#include "ffstream/error.h"
#include "ffstream/rng.h"

typedef struct {
    uint32_t in, out;
    size_t param_count;   /* in*out + out */
    int64_t adam_step;    /* optimiser steps taken */
    float *params;        /* [param_count]: weight then bias */
    float *grads;         /* [param_count], NULL when allocated for inference */
    float *adam_m;        /* [param_count], NULL when allocated for inference */
    float *adam_v;        /* [param_count], NULL when allocated for inference */
    float *weight, *bias; /* views into params */
    float *grad_weight, *grad_bias;
} ff_layer_t;

/* Allocates a layer of in -> out. with_training also allocates gradients and
 * zeroed Adam moments. Parameters are left uninitialised.
 * @return 0 or -1 with err. */
int ff_layer_alloc(ff_layer_t *layer, uint32_t in, uint32_t out, int with_training,
                   ff_error_t *err);

void ff_layer_free(ff_layer_t *layer);

/* PyTorch nn.Linear init: weight and bias uniform in +-1/sqrt(in). */
void ff_layer_init_params(ff_layer_t *layer, ff_rng_t *rng);

/* The init of layer `index` of a run with `seed`: each layer has its own
 * stream, so a layer can be created without replaying the layers before. */
void ff_layer_init_for_run(ff_layer_t *layer, uint64_t seed, uint32_t index);

/* Adam step over all parameters with the current gradients. */
void ff_layer_adam_step(ff_layer_t *layer, const ff_adam_params_t *p);

/* Bytes of each block: param_count * sizeof(float). */
size_t ff_layer_block_bytes(const ff_layer_t *layer);

#endif
