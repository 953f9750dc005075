/* step.h: one Forward-Forward training step of one layer on one batch, and
 * the layer's forward pass. Shared by every FF trainer (in memory or
 * streamed), which is why their weights agree bit for bit: they call the same
 * code on the same rows in the same order. */
#ifndef FFSTREAM_STEP_H
#define FFSTREAM_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/adam.h"
#include "ffstream/dense.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"

/* Learning-rate schedules. A schedule is a pure function of the position in
 * training (epoch, batch), so a resumed run takes exactly the same steps. */
typedef enum {
    FF_LR_CONSTANT = 0,     /* the base rate throughout */
    FF_LR_LINEAR_DECAY = 1, /* constant, then linear to 0 from decay_start of training */
} ff_lr_schedule_t;

typedef struct {
    float theta;
    ff_goodness_t goodness;
    ff_adam_params_t adam;
    ff_loss_t loss;   /* FF_LOSS_SOFTPLUS (0) unless a recipe says otherwise */
    float alpha;      /* symba's scale */
    /* The first layer under concatenated labels: its input columns before
     * the label block (the image), which a positive row and its negative
     * share; their product is then computed once per image (0: no sharing). */
    size_t shared;
} ff_step_params_t;

/* The learning rate of the step at `batch` (0-based) of `batches` in `epoch`
 * of `epochs`: base, or for FF_LR_LINEAR_DECAY base x (1 - t) / (1 - start)
 * once the fraction of steps done t = (epoch x batches + batch) / (epochs x
 * batches) reaches start (in [0, 1)). */
double ff_step_lr(double base, ff_lr_schedule_t schedule, double start, uint64_t epoch,
                  uint64_t epochs, uint64_t batch, uint64_t batches);

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

/* Bytes ff_step_workspace_alloc takes for these sizes (the memory model). */
uint64_t ff_step_workspace_bytes(uint64_t max_rows, uint64_t max_in, uint64_t out);

/* Trains layer on x [npos+nneg, layer->in] (first npos rows positive): one
 * forward pass, FF loss, gradients, one Adam step. Adds to stats. */
void ff_step_train(ff_layer_t *layer, ff_step_workspace_t *ws, const float *x, size_t npos,
                   size_t nneg, const ff_step_params_t *p, ff_step_stats_t *stats);

/* The gradient of one piece of a batch (a row chunk, a rank's shard): x
 * [npos+nneg, in], first npos rows positive, the loss scaled for a batch of
 * batch_pos + batch_neg rows. accumulate 0 writes the layer's gradient, 1
 * adds to it, so a batch's pieces sum to its gradient (exact up to the
 * order of the sums). Adds the piece's loss share and goodness to stats
 * (not `batches`: the caller counts the step). With p->shared, a piece
 * whose negatives repeat its positives' images (npos == nneg, checked bit
 * for bit) computes the image columns' products once per image.
 * @return the matrix-product flops done. */
double ff_step_grad(ff_layer_t *layer, ff_step_workspace_t *ws, const float *x, size_t npos,
                  size_t nneg, size_t batch_pos, size_t batch_neg, int accumulate,
                  const ff_step_params_t *p, ff_step_stats_t *stats);

/* One Adam step with the layer's gradient; counts the batch in stats. */
void ff_step_apply(ff_layer_t *layer, const ff_step_params_t *p, ff_step_stats_t *stats);

/* y [rows, out] = relu(normalize(x) W^T + b): the layer's output, the next
 * layer's input. y may not alias x. @return the matrix-product flops done. */
double ff_step_forward(float *y, const ff_layer_t *layer, ff_step_workspace_t *ws,
                       const float *x, size_t rows);

/* ff_step_forward of grouped rows (g->units * g->copies of them): when the
 * normalised rows share g->shared columns as g says (checked bit for bit),
 * their product is computed once per group, else (or with g->shared 0) as
 * ff_step_forward.
 * @return the matrix-product flops done. */
double ff_step_forward_grouped(float *y, const ff_layer_t *layer, ff_step_workspace_t *ws,
                               const float *x, const ff_dense_groups_t *g);

#endif
