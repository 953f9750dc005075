/* step.c: the FF step: normalise, forward, local loss, gradient, Adam. */
#include "ffstream/step.h"

#include <assert.h>
#include <string.h>

#include "ffstream/memstat.h"

int ff_step_workspace_alloc(ff_step_workspace_t *ws, size_t max_rows, size_t max_in, size_t out,
                            ff_error_t *err) {
    memset(ws, 0, sizeof *ws);
    size_t nx, ny;
    if (ff_mul_size(max_rows, max_in, &nx) || ff_mul_size(nx, sizeof(float), &nx) ||
        ff_mul_size(max_rows, out, &ny) || ff_mul_size(ny, sizeof(float), &ny))
        return ff_error_set(err, "batch workspace %zu x %zu overflows", max_rows, max_in);
    ws->max_rows = max_rows;
    ws->max_in = max_in;
    ws->out = out;
    ws->xn = ff_mem_alloc(FF_MEM_ACTIVATIONS, nx);
    ws->y = ff_mem_alloc(FF_MEM_ACTIVATIONS, ny);
    ws->dz = ff_mem_alloc(FF_MEM_ACTIVATIONS, ny);
    ws->goodness = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * sizeof(float));
    if (ws->xn == NULL || ws->y == NULL || ws->dz == NULL || ws->goodness == NULL) {
        ff_step_workspace_free(ws);
        return ff_error_set(err, "out of memory for a %zu-row batch workspace", max_rows);
    }
    return 0;
}

uint64_t ff_step_workspace_bytes(uint64_t max_rows, uint64_t max_in, uint64_t out) {
    return (max_rows * max_in + 2 * max_rows * out + max_rows) * sizeof(float);
}

void ff_step_workspace_free(ff_step_workspace_t *ws) {
    if (ws == NULL) return;
    ff_mem_free(ws->goodness);
    ff_mem_free(ws->dz);
    ff_mem_free(ws->y);
    ff_mem_free(ws->xn);
    memset(ws, 0, sizeof *ws);
}

/* relu(xn W^T + b) into y from normalised rows xn: with `grouped`, whose
 * groups are known to hold, the image columns once per group; with NULL,
 * every row whole. @return the matrix-product flops done. */
static double forward_normalised(float *y, const ff_layer_t *layer, const float *xn,
                                 size_t rows, const ff_dense_groups_t *grouped) {
    if (grouped != NULL)
        return ff_dense_forward_grouped(y, xn, layer->weight, layer->bias, grouped, layer->in,
                                        layer->out);
    ff_dense_forward(y, xn, layer->weight, layer->bias, rows, layer->in, layer->out);
    return 2.0 * (double)rows * layer->in * layer->out;
}

double ff_step_grad(ff_layer_t *layer, ff_step_workspace_t *ws, const float *x, size_t npos,
                    size_t nneg, size_t batch_pos, size_t batch_neg, int accumulate,
                    const ff_step_params_t *p, ff_step_stats_t *stats) {
    size_t rows = npos + nneg;
    assert(rows <= ws->max_rows && layer->in <= ws->max_in && layer->out == ws->out);
    ff_dense_normalize(ws->xn, NULL, x, rows, layer->in);
    /* A positive and its negative: the same image under two labels. */
    const ff_dense_groups_t pairs = {.units = npos, .copies = 2, .unit_stride = 1,
                                     .copy_stride = npos, .shared = p->shared};
    const int paired = p->shared > 0 && npos == nneg &&
                       ff_dense_groups_hold(ws->xn, &pairs, layer->in);
    double flops = forward_normalised(ws->y, layer, ws->xn, rows, paired ? &pairs : NULL);
    ff_loss_params_t lp = {.kind = p->loss, .goodness = p->goodness, .theta = p->theta,
                           .alpha = p->alpha, .batch_pos = batch_pos, .batch_neg = batch_neg};
    double loss = ff_dense_local_loss(ws->dz, ws->goodness, ws->y, npos, nneg, layer->out, &lp);
    if (paired) {
        flops += ff_dense_backward_params_paired(layer->grad_weight, layer->grad_bias, ws->dz,
                                                 ws->xn, npos, p->shared, layer->in, layer->out,
                                                 accumulate);
    } else if (accumulate) {
        ff_dense_backward_params_add(layer->grad_weight, layer->grad_bias, ws->dz, ws->xn, rows,
                                     layer->in, layer->out);
        flops += 2.0 * (double)rows * layer->in * layer->out;
    } else {
        ff_dense_backward_params(layer->grad_weight, layer->grad_bias, ws->dz, ws->xn, rows,
                                 layer->in, layer->out);
        flops += 2.0 * (double)rows * layer->in * layer->out;
    }
    stats->loss_sum += loss;
    for (size_t i = 0; i < npos; i++) stats->good_pos_sum += ws->goodness[i];
    for (size_t i = npos; i < rows; i++) stats->good_neg_sum += ws->goodness[i];
    stats->npos += npos;
    stats->nneg += nneg;
    return flops;
}

void ff_step_apply(ff_layer_t *layer, const ff_step_params_t *p, ff_step_stats_t *stats) {
    ff_layer_adam_step(layer, &p->adam);
    stats->batches++;
}

void ff_step_train(ff_layer_t *layer, ff_step_workspace_t *ws, const float *x, size_t npos,
                   size_t nneg, const ff_step_params_t *p, ff_step_stats_t *stats) {
    ff_step_grad(layer, ws, x, npos, nneg, npos, nneg, 0, p, stats);
    ff_step_apply(layer, p, stats);
}

double ff_step_forward(float *y, const ff_layer_t *layer, ff_step_workspace_t *ws,
                       const float *x, size_t rows) {
    assert(rows <= ws->max_rows && layer->in <= ws->max_in);
    ff_dense_normalize(ws->xn, NULL, x, rows, layer->in);
    return forward_normalised(y, layer, ws->xn, rows, NULL);
}

double ff_step_forward_grouped(float *y, const ff_layer_t *layer, ff_step_workspace_t *ws,
                               const float *x, const ff_dense_groups_t *g) {
    const size_t rows = g->units * g->copies;
    assert(rows <= ws->max_rows && layer->in <= ws->max_in);
    ff_dense_normalize(ws->xn, NULL, x, rows, layer->in);
    const int hold = g->shared > 0 && g->copies > 1 && ff_dense_groups_hold(ws->xn, g, layer->in);
    return forward_normalised(y, layer, ws->xn, rows, hold ? g : NULL);
}

double ff_step_lr(double base, ff_lr_schedule_t schedule, double start, uint64_t epoch,
                  uint64_t epochs, uint64_t batch, uint64_t batches) {
    if (schedule != FF_LR_LINEAR_DECAY || epochs == 0 || batches == 0) return base;
    double t = ((double)epoch * (double)batches + (double)batch) /
               ((double)epochs * (double)batches);
    if (t < start) return base;
    return base * (1.0 - t) / (1.0 - start);
}
