/* ffrec.c: the recurrent FF network: layers, workspace, one layer's step
 * (forward, local loss, gradient), the synchronous time step, the bottom-up
 * initialisation and the softmax read-out that proposes negative labels.
 * Matrix products run on whole batches through the dense kernels. */
#include "ffstream/ffrec.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#include "ffstream/data.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"

void ff_ffrec_layer_inputs(uint32_t layers, uint32_t hidden, uint32_t pixels, uint32_t classes,
                           uint32_t k, uint32_t *below, uint32_t *above) {
    *below = k == 0 ? pixels : hidden;
    *above = k + 1 == layers ? classes : hidden;
}

uint64_t ff_ffrec_parameter_count(uint32_t layers, uint32_t hidden, uint32_t pixels,
                                  uint32_t classes) {
    uint64_t n = (uint64_t)hidden * classes + classes;
    for (uint32_t k = 0; k < layers; k++) {
        uint32_t below, above;
        ff_ffrec_layer_inputs(layers, hidden, pixels, classes, k, &below, &above);
        n += ((uint64_t)below + above) * hidden + hidden;
    }
    return n;
}

int ff_ffrec_net_alloc(ff_ffrec_net_t *net, uint32_t layers, uint32_t hidden, uint32_t pixels,
                       uint32_t classes, uint64_t seed, int with_training, ff_error_t *err) {
    memset(net, 0, sizeof *net);
    if (layers == 0 || hidden == 0 || pixels == 0 || classes < 2)
        return ff_error_set(err, "ff-recurrent: invalid shape %u layers x %u units, %u pixels",
                            layers, hidden, pixels);
    net->layer = ff_mem_calloc(FF_MEM_OTHER, layers, sizeof *net->layer);
    if (net->layer == NULL) return ff_error_set(err, "out of memory for %u layers", layers);
    net->layers = layers;
    net->hidden = hidden;
    net->pixels = pixels;
    net->classes = classes;
    for (uint32_t k = 0; k < layers; k++) {
        uint32_t below, above;
        ff_ffrec_layer_inputs(layers, hidden, pixels, classes, k, &below, &above);
        if (ff_layer_alloc(&net->layer[k], below + above, hidden, with_training, err) != 0)
            goto fail;
        ff_layer_init_for_run(&net->layer[k], seed, k);
    }
    if (ff_layer_alloc(&net->readout, hidden, classes, with_training, err) != 0) goto fail;
    ff_layer_init_for_run(&net->readout, seed, layers);
    return 0;
fail:
    ff_ffrec_net_free(net);
    return -1;
}

void ff_ffrec_net_free(ff_ffrec_net_t *net) {
    if (net == NULL) return;
    ff_layer_free(&net->readout);
    if (net->layer != NULL)
        for (uint32_t k = 0; k < net->layers; k++) ff_layer_free(&net->layer[k]);
    ff_mem_free(net->layer);
    memset(net, 0, sizeof *net);
}

uint64_t ff_ffrec_net_hash(const ff_ffrec_net_t *net) {
    uint64_t h = FF_FNV_OFFSET;
    for (uint32_t k = 0; k < net->layers; k++)
        h = ff_hash_bytes(h, net->layer[k].params, ff_layer_block_bytes(&net->layer[k]));
    return ff_hash_bytes(h, net->readout.params, ff_layer_block_bytes(&net->readout));
}

int ff_ffrec_workspace_alloc(ff_ffrec_workspace_t *ws, const ff_ffrec_net_t *net, size_t max_rows,
                             ff_error_t *err) {
    memset(ws, 0, sizeof *ws);
    size_t max_in = 0;
    for (uint32_t k = 0; k < net->layers; k++)
        if (net->layer[k].in > max_in) max_in = net->layer[k].in;
    if (max_in < net->hidden) max_in = net->hidden; /* the read-out's input */
    size_t states, rowsxin, rowsxh;
    if (ff_mul_size(max_rows, net->hidden, &rowsxh) || ff_mul_size(rowsxh, net->layers, &states) ||
        ff_mul_size(max_rows, max_in, &rowsxin) || ff_mul_size(states, sizeof(float), &states) ||
        ff_mul_size(rowsxin, sizeof(float), &rowsxin) ||
        ff_mul_size(rowsxh, sizeof(float), &rowsxh))
        return ff_error_set(err, "ff-recurrent workspace of %zu rows overflows", max_rows);
    ws->max_rows = max_rows;
    ws->max_in = max_in;
    ws->layers = net->layers;
    ws->hidden = net->hidden;
    ws->pixels = net->pixels;
    ws->classes = net->classes;
    /* max_rows * pixels and * classes are below max_rows * max_in. */
    ws->state[0] = ff_mem_alloc(FF_MEM_ACTIVATIONS, states);
    ws->state[1] = ff_mem_alloc(FF_MEM_ACTIVATIONS, states);
    ws->images = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * net->pixels * sizeof(float));
    ws->onehot = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * net->classes * sizeof(float));
    ws->u = ff_mem_alloc(FF_MEM_ACTIVATIONS, rowsxin);
    ws->fresh = ff_mem_alloc(FF_MEM_ACTIVATIONS, rowsxh);
    ws->dz = ff_mem_alloc(FF_MEM_ACTIVATIONS, rowsxh);
    ws->goodness = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * sizeof(float));
    ws->logits = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * net->classes * sizeof(float));
    ws->dlogits = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * net->classes * sizeof(float));
    ws->scores = ff_mem_alloc(FF_MEM_ACTIVATIONS, max_rows * sizeof(float));
    if (ws->state[0] == NULL || ws->state[1] == NULL || ws->images == NULL || ws->onehot == NULL ||
        ws->u == NULL || ws->fresh == NULL || ws->dz == NULL || ws->goodness == NULL ||
        ws->logits == NULL || ws->dlogits == NULL || ws->scores == NULL) {
        ff_ffrec_workspace_free(ws);
        return ff_error_set(err, "out of memory for the ff-recurrent states (%zu rows x %u layers)",
                            max_rows, net->layers);
    }
    return 0;
}

void ff_ffrec_workspace_free(ff_ffrec_workspace_t *ws) {
    if (ws == NULL) return;
    ff_mem_free(ws->scores);
    ff_mem_free(ws->dlogits);
    ff_mem_free(ws->logits);
    ff_mem_free(ws->goodness);
    ff_mem_free(ws->dz);
    ff_mem_free(ws->fresh);
    ff_mem_free(ws->u);
    ff_mem_free(ws->onehot);
    ff_mem_free(ws->images);
    ff_mem_free(ws->state[1]);
    ff_mem_free(ws->state[0]);
    memset(ws, 0, sizeof *ws);
}

void ff_ffrec_set_labels(ff_ffrec_workspace_t *ws, const uint8_t *labels, size_t rows) {
    assert(rows <= ws->max_rows);
    memset(ws->onehot, 0, rows * ws->classes * sizeof(float));
    for (size_t i = 0; i < rows; i++) {
        assert(labels[i] < ws->classes);
        ws->onehot[i * ws->classes + labels[i]] = 1.0f;
    }
}

/* Layer k's state buffer in generation g. */
static float *state_of(const ff_ffrec_workspace_t *ws, int g, uint32_t k) {
    return ws->state[g] + (size_t)k * ws->max_rows * ws->hidden;
}

void ff_ffrec_layer_forward(float *state_out, const ff_layer_t *layer, ff_ffrec_workspace_t *ws,
                            const float *below, size_t below_dim, const float *above,
                            size_t above_dim, const float *state_in, size_t rows) {
    assert(rows <= ws->max_rows && below_dim + above_dim == layer->in && layer->in <= ws->max_in);
    ff_dense_concat_normalized(ws->u, below, above, rows, below_dim, above_dim);
    ff_dense_forward(ws->fresh, ws->u, layer->weight, layer->bias, rows, layer->in, layer->out);
    ff_dense_blend(state_out, state_in, ws->fresh, rows * layer->out, FF_FFREC_KEEP);
}

double ff_ffrec_layer_loss_grad(float *state_out, ff_layer_t *layer, ff_ffrec_workspace_t *ws,
                                const float *below, size_t below_dim, const float *above,
                                size_t above_dim, const float *state_in, size_t npos, size_t nneg,
                                float theta, ff_goodness_t kind) {
    size_t rows = npos + nneg;
    ff_ffrec_layer_forward(state_out, layer, ws, below, below_dim, above, above_dim, state_in,
                           rows);
    /* dz holds dloss/dstate, then dloss/d(pre-activation): the kept share
     * of the old state is a constant. */
    double loss =
        ff_dense_ff_loss(ws->dz, ws->goodness, state_out, npos, nneg, layer->out, theta, kind);
    ff_dense_blend_backward(ws->dz, ws->dz, ws->fresh, rows * layer->out, FF_FFREC_KEEP);
    ff_dense_backward_params(layer->grad_weight, layer->grad_bias, ws->dz, ws->u, rows, layer->in,
                             layer->out);
    return loss;
}

void ff_ffrec_bottom_up(const ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows) {
    for (uint32_t k = 0; k < net->layers; k++) {
        uint32_t below, above;
        ff_ffrec_layer_inputs(net->layers, net->hidden, net->pixels, net->classes, k, &below,
                              &above);
        const float *in = k == 0 ? ws->images : state_of(ws, ws->cur, k - 1);
        ff_ffrec_layer_forward(state_of(ws, ws->cur, k), &net->layer[k], ws, in, below, NULL, above,
                               NULL, rows);
    }
}

void ff_ffrec_time_step(ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows, size_t npos,
                        const ff_step_params_t *train, ff_step_stats_t *stats,
                        double *layer_seconds, float *scores, float theta, ff_goodness_t kind) {
    const int old = ws->cur, next = 1 - ws->cur;
    for (uint32_t k = 0; k < net->layers; k++) {
        double t0 = layer_seconds != NULL ? ff_now() : 0.0;
        uint32_t below, above;
        ff_ffrec_layer_inputs(net->layers, net->hidden, net->pixels, net->classes, k, &below,
                              &above);
        /* Every input is a state of the previous step: a synchronous update. */
        const float *from_below = k == 0 ? ws->images : state_of(ws, old, k - 1);
        const float *from_above = k + 1 == net->layers ? ws->onehot : state_of(ws, old, k + 1);
        float *out = state_of(ws, next, k);
        ff_layer_t *L = &net->layer[k];
        if (train != NULL) {
            double loss = ff_ffrec_layer_loss_grad(out, L, ws, from_below, below, from_above, above,
                                                   state_of(ws, old, k), npos, rows - npos,
                                                   train->theta, train->goodness);
            ff_layer_adam_step(L, &train->adam);
            ff_step_stats_t *st = &stats[k];
            st->loss_sum += loss;
            for (size_t i = 0; i < npos; i++) st->good_pos_sum += ws->goodness[i];
            for (size_t i = npos; i < rows; i++) st->good_neg_sum += ws->goodness[i];
            st->batches++;
            st->npos += npos;
            st->nneg += rows - npos;
        } else {
            ff_ffrec_layer_forward(out, L, ws, from_below, below, from_above, above,
                                   state_of(ws, old, k), rows);
            if (scores != NULL) {
                ff_dense_goodness(ws->goodness, out, rows, L->out, kind);
                for (size_t i = 0; i < rows; i++) scores[i] += ws->goodness[i] - theta;
            }
        }
        if (layer_seconds != NULL) layer_seconds[k] += ff_now() - t0;
    }
    ws->cur = next;
}

void ff_ffrec_readout_forward(const ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, size_t rows) {
    assert(rows <= ws->max_rows);
    const float *top = state_of(ws, ws->cur, net->layers - 1);
    ff_dense_concat_normalized(ws->u, top, NULL, rows, net->hidden, 0);
    ff_dense_linear(ws->logits, ws->u, net->readout.weight, net->readout.bias, rows, net->hidden,
                    net->classes);
}

double ff_ffrec_readout_train(ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws, const uint8_t *labels,
                              size_t rows, const ff_adam_params_t *adam) {
    double loss = ff_dense_softmax_xent(ws->dlogits, ws->logits, labels, rows, net->classes);
    ff_dense_backward_params(net->readout.grad_weight, net->readout.grad_bias, ws->dlogits, ws->u,
                             rows, net->hidden, net->classes);
    ff_layer_adam_step(&net->readout, adam);
    return loss;
}

void ff_ffrec_sample_negatives(uint8_t *neg, const float *logits, const uint8_t *labels,
                               size_t rows, size_t classes, ff_rng_t *rng) {
    assert(classes >= 2 && classes <= 256);
    double p[256];
    for (size_t i = 0; i < rows; i++) {
        const float *li = logits + i * classes;
        double max = -INFINITY;
        for (size_t c = 0; c < classes; c++)
            if (c != labels[i] && li[c] > max) max = li[c];
        double sum = 0.0;
        for (size_t c = 0; c < classes; c++) {
            p[c] = c == labels[i] ? 0.0 : exp((double)li[c] - max);
            sum += p[c];
        }
        /* Draw u in [0, sum) and walk the cumulative distribution; the
         * last wrong label takes any rounding remainder. */
        double u = (double)ff_rng_uniform(rng) * sum, acc = 0.0;
        size_t pick = classes;
        if (sum > 0.0 && isfinite(sum)) {
            for (size_t c = 0; c < classes; c++) {
                if (c == labels[i]) continue;
                acc += p[c];
                pick = c;
                if (u < acc) break;
            }
        } else {
            uint32_t r = ff_rng_below(rng, (uint32_t)classes - 1);
            pick = r >= labels[i] ? r + 1 : r;
        }
        assert(pick < classes && pick != labels[i]);
        neg[i] = (uint8_t)pick;
    }
}
