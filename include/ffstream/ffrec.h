/* ffrec.h: the recurrent Forward-Forward network (ff-recurrent): a stack of
 * hidden layers that, at every time step, each read the L2-normalised states
 * of the layer below (the image, for the first) and of the layer above (the
 * one-hot label, for the top one) from the previous step, and blend the
 * result with their own previous state. Each layer learns from its own FF
 * loss at every step; a softmax read-out of the top layer supplies the
 * negative labels. See README "Recurrent FF (ff-recurrent)". */
#ifndef FFSTREAM_FFREC_H
#define FFSTREAM_FFREC_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/dense.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"
#include "ffstream/rng.h"
#include "ffstream/step.h"

/* Time steps per batch, in training and in evaluation (the original's 8). */
#define FF_FFREC_TIME_STEPS 8
/* Evaluation sums goodness over steps FF_FFREC_FIRST_SCORED_STEP..8-1 (the
 * original skips step 0, when only the top layer has seen the label). */
#define FF_FFREC_FIRST_SCORED_STEP 1
/* Share of a layer's previous state kept at each step (0.3 old, 0.7 new). */
#define FF_FFREC_KEEP 0.3f

typedef struct {
    uint32_t layers, hidden, pixels, classes;
    ff_layer_t *layer;  /* [layers]: layer k maps [below, above] -> hidden */
    ff_layer_t readout; /* hidden -> classes, softmax */
} ff_ffrec_net_t;

/* Buffers for up to max_rows rows. Row r of a batch carries its image,
 * its label (the top layer's input from above) and one state per layer;
 * states of step t-1 are in state[cur], step t is written to state[1-cur]. */
typedef struct {
    size_t max_rows, max_in;
    uint32_t layers, hidden, pixels, classes;
    float *state[2]; /* each [layers, max_rows, hidden] */
    int cur;
    float *images;   /* [max_rows, pixels] */
    float *onehot;   /* [max_rows, classes] */
    float *u;        /* [max_rows, max_in] a layer's normalised input */
    float *fresh;    /* [max_rows, hidden] relu(u W^T + b) */
    float *dz;       /* [max_rows, hidden] */
    float *goodness; /* [max_rows] */
    float *logits;   /* [max_rows, classes] */
    float *dlogits;  /* [max_rows, classes] */
    float *scores;   /* [max_rows] evaluation: summed goodness - theta */
} ff_ffrec_workspace_t;

/* Widths of layer k's two inputs: below (pixels for k = 0, else hidden)
 * and above (classes for the top layer, else hidden). */
void ff_ffrec_layer_inputs(uint32_t layers, uint32_t hidden, uint32_t pixels, uint32_t classes,
                           uint32_t k, uint32_t *below, uint32_t *above);

/* Allocates the layers (with gradients and Adam state when with_training)
 * and initialises them from seed: layer k from the init stream k, the
 * read-out from stream `layers`. @return 0 or -1 with err. */
int ff_ffrec_net_alloc(ff_ffrec_net_t *net, uint32_t layers, uint32_t hidden, uint32_t pixels,
                       uint32_t classes, uint64_t seed, int with_training, ff_error_t *err);
void ff_ffrec_net_free(ff_ffrec_net_t *net);

/* FNV-1a of every layer's parameters, then the read-out's. */
uint64_t ff_ffrec_net_hash(const ff_ffrec_net_t *net);

/* All parameters (weights and biases) of the network, read-out included. */
uint64_t ff_ffrec_parameter_count(uint32_t layers, uint32_t hidden, uint32_t pixels,
                                  uint32_t classes);

/* @return 0 or -1 with err. */
int ff_ffrec_workspace_alloc(ff_ffrec_workspace_t *ws, const ff_ffrec_net_t *net, size_t max_rows,
                             ff_error_t *err);
void ff_ffrec_workspace_free(ff_ffrec_workspace_t *ws);

/* ws->onehot rows 0..rows-1 from labels. */
void ff_ffrec_set_labels(ff_ffrec_workspace_t *ws, const uint8_t *labels, size_t rows);

/* One layer at one step, forward only: state_out [rows, hidden] =
 * keep * state_in + (1 - keep) * relu([n(below), n(above)] W^T + b), where
 * n() is the L2 normalisation; state_in and above may be NULL (zeros).
 * Leaves the input in ws->u and the ReLU output in ws->fresh. */
void ff_ffrec_layer_forward(float *state_out, const ff_layer_t *layer, ff_ffrec_workspace_t *ws,
                            const float *below, size_t below_dim, const float *above,
                            size_t above_dim, const float *state_in, size_t rows);

/* The forward above, then the layer's FF loss on state_out (first npos rows
 * positive, next nneg negative; mean of softplus as in ff-mem) and its
 * gradient with respect to the layer's parameters in layer->grads. The
 * inputs are constants (detached). Writes goodness [rows] to ws->goodness.
 * @return the loss. */
double ff_ffrec_layer_loss_grad(float *state_out, ff_layer_t *layer, ff_ffrec_workspace_t *ws,
                                const float *below, size_t below_dim, const float *above,
                                size_t above_dim, const float *state_in, size_t npos, size_t nneg,
                                float theta, ff_goodness_t kind);

/* The initial states: one bottom-up pass from ws->images with nothing from
 * above and no previous state, into ws->state[ws->cur]. */
void ff_ffrec_bottom_up(const ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows);

/* One synchronous time step of every layer on rows rows, from
 * ws->state[ws->cur] into the other buffer, then flips ws->cur. With
 * train != NULL each layer takes one Adam step on its own loss right after
 * its forward pass (first npos rows positive, the rest negative) and adds to
 * stats[k]. With scores != NULL adds every layer's goodness - theta to
 * scores[rows]. layer_seconds [layers] (may be NULL) accumulates the wall
 * time of each layer. */
void ff_ffrec_time_step(ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows, size_t npos,
                        const ff_step_params_t *train, ff_step_stats_t *stats,
                        double *layer_seconds, float *scores, float theta, ff_goodness_t kind);

/* The read-out's softmax on the top layer's current states: ws->logits
 * [rows, classes] hold the logits. */
void ff_ffrec_readout_forward(const ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows);

/* One Adam step of the read-out on softmax cross-entropy of its current
 * logits (ff_ffrec_readout_forward) against labels; its input, the top
 * layer's normalised state, must still be in ws->u. @return the loss. */
double ff_ffrec_readout_train(ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, const uint8_t *labels,
                              size_t rows, const ff_adam_params_t *adam);

/* neg[i]: a label drawn from the softmax of logits [rows, classes] with
 * labels[i] excluded (renormalised over the others); uniform over the
 * others when those have no mass. */
void ff_ffrec_sample_negatives(uint8_t *neg, const float *logits, const uint8_t *labels,
                               size_t rows, size_t classes, ff_rng_t *rng);

#endif
