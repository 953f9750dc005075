/* train_bp.c: the backprop baseline. The body is the FF body (L2 norm,
 * Linear, ReLU per layer) followed by a Linear head to 10 classes, trained
 * end to end with softmax cross-entropy and Adam. Every layer's activations
 * for the batch are kept for the backward pass, as autograd would. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/bpnet.h"
#include "ffstream/dense.h"
#include "ffstream/eval.h"
#include "ffstream/layer.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/rng.h"
#include "ffstream/train.h"

int ff_train_bp(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                ff_result_t *res, ff_error_t *err) {
    memset(res, 0, sizeof *res);
    int rc = -1;
    const size_t N = train->count, B = cfg->batch, P = train->pixels;
    const size_t nbatches = (N + B - 1) / B;
    ff_bpnet_t net = {0};
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, nbatches * sizeof(uint32_t));
    res->per_epoch = calloc(cfg->epochs, sizeof *res->per_epoch);
    res->per_layer = calloc(cfg->layers, sizeof *res->per_layer);
    if (order == NULL || res->per_epoch == NULL || res->per_layer == NULL) {
        ff_error_set(err, "out of memory for the bp schedule");
        goto cleanup;
    }
    res->layer_count = cfg->layers;
    res->epoch_count = cfg->epochs;
    res->train_samples = N;
    res->test_samples = test->count;
    if (ff_bpnet_alloc(&net, cfg->layers, P, cfg->hidden, B, cfg->seed, err) != 0) goto cleanup;
    ff_adam_params_t adam = ff_adam_defaults(cfg->lr);

    /* Matrix-product flops of one row through forward and backward. */
    double flops_per_row = 0.0;
    for (uint32_t l = 0; l <= cfg->layers; l++)
        flops_per_row += (l == 0 ? 4.0 : 6.0) * (double)net.layers[l].in * net.layers[l].out;

    ff_progress_t prog;
    ff_progress_init(&prog, cfg->quiet ? 0 : cfg->progress, (uint64_t)cfg->epochs * N);
    double t_start = ff_now();
    ff_rng_t rng;
    for (uint32_t e = 0; e < cfg->epochs; e++) {
        double t_epoch = ff_now(), loss_sum = 0.0;
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, 0, e);
        ff_rng_permutation(&rng, order, nbatches);
        for (size_t bi = 0; bi < nbatches; bi++) {
            size_t r0 = (size_t)order[bi] * B, rows = N - r0 < B ? N - r0 : B;
            memcpy(net.input, train->images + r0 * P, rows * P * sizeof(float));
            ff_bpnet_forward(&net, rows);
            loss_sum += ff_dense_softmax_xent(net.dlogits, net.logits, train->labels + r0, rows,
                                              FF_CLASSES);
            ff_bpnet_backward(&net, rows);
            for (uint32_t l = 0; l <= cfg->layers; l++) ff_layer_adam_step(&net.layers[l], &adam);
            res->train_flops += flops_per_row * (double)rows;
            char label[64];
            snprintf(label, sizeof label, "bp epoch %u/%u", e + 1, cfg->epochs);
            ff_progress_update(&prog, rows, label, loss_sum / (double)(bi + 1), NAN, NAN, 0);
        }
        res->per_epoch[e].loss = loss_sum / (double)nbatches;
        res->per_epoch[e].seconds = ff_now() - t_epoch;
    }
    ff_progress_finish(&prog);
    res->train_seconds = ff_now() - t_start;
    for (uint32_t l = 0; l < cfg->layers; l++) {
        res->per_layer[l].in = net.layers[l].in;
        res->per_layer[l].out = net.layers[l].out;
        res->per_layer[l].loss = res->per_epoch[cfg->epochs - 1].loss;
        res->per_layer[l].goodness_pos = NAN;
        res->per_layer[l].goodness_neg = NAN;
        res->per_layer[l].seconds = NAN;
    }

    double t_eval = ff_now();
    size_t correct = 0;
    for (size_t i0 = 0; i0 < test->count; i0 += B) {
        size_t rows = test->count - i0 < B ? test->count - i0 : B;
        memcpy(net.input, test->images + i0 * P, rows * P * sizeof(float));
        ff_bpnet_forward(&net, rows);
        correct += ff_eval_correct(net.logits, test->labels + i0, rows, FF_CLASSES);
    }
    res->eval_seconds = ff_now() - t_eval;
    res->test_accuracy = test->count ? (double)correct / (double)test->count : 0.0;
    res->weights_hash = FF_FNV_OFFSET;
    for (uint32_t l = 0; l <= cfg->layers; l++)
        res->weights_hash = ff_hash_bytes(res->weights_hash, net.layers[l].params,
                                          ff_layer_block_bytes(&net.layers[l]));
    rc = 0;
cleanup:
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    ff_bpnet_free(&net);
    ff_mem_free(order);
    return rc;
}
