/* step.h: one Forward-Forward training step of one layer on one batch, and
 * the layer's forward pass. Shared by every FF trainer (in memory or
 * streamed), which is why their weights agree bit for bit: they call the same
 * code on the same rows in the same order. */
#ifndef FFSTREAM_STEP_H
#define FFSTREAM_STEP_H

#include <stddef.h>

#include "ffstream/adam.h"
#include "ffstream/dense.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"

typedef struct {
    float theta;
    ff_goodness_t goodness;
    ff_adam_params_t adam;
} ff_step_params_t;

/* Scratch buffers sized for the largest batch of a layer. */
typedef struct {
    size_t max_rows, max_in, out;
    float *xn;       /* [max_rows, max_in] normalised input */
    float *y;        /* [max_rows, out] ReLU output */
    float *dz;       /* [max_rows, out] loss gradient */
    float *goodness; /* [max_rows] */
} ff_step_workspace_t;

/* Per-batch figures: summed so an epoch's mean can be formed. */
typedef struct {
    double loss_sum;      /* sum over batches of the batch loss */
    double good_pos_sum;  /* sum over positive rows of goodness */
    double good_neg_sum;
    size_t batches, npos, nneg;
} ff_step_stats_t;

int ff_step_workspace_alloc(ff_step_workspace_t *ws, size_t max_rows, size_t max_in, size_t out,
                            ff_error_t *err);
void ff_step_workspace_free(ff_step_workspace_t *ws);

/* Trains layer on x [npos+nneg, layer->in] (first npos rows positive): one
 * forward pass, FF loss, gradients, one Adam step. Adds to stats. */
void ff_step_train(ff_layer_t *layer, ff_step_workspace_t *ws, const float *x, size_t npos,
                   size_t nneg, const ff_step_params_t *p, ff_step_stats_t *stats);

/* y [rows, out] = relu(normalize(x) W^T + b): the layer's output, the next
 * layer's input. y may not alias x. */
void ff_step_forward(float *y, const ff_layer_t *layer, ff_step_workspace_t *ws, const float *x,
                     size_t rows);

#endif
