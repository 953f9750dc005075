/* train_ffrec.c: the ff-recurrent trainer. Every layer, the read-out and the
 * states of every layer for one batch live in memory (each layer needs its
 * neighbours' states at every time step). Per batch: a bottom-up pass gives
 * the initial states; the read-out learns from them and proposes the
 * negative labels; then 8 synchronous time steps, each layer taking one Adam
 * step on its own FF loss at every step. Evaluation runs the 8 steps once per
 * candidate label and sums goodness over steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/eval.h"
#include "ffstream/ffrec.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/rng.h"
#include "ffstream/train.h"

/* Matrix-product flops of one row through layer k's forward pass. */
static double forward_flops_per_row(const ff_ffrec_net_t *net) {
    double f = 0.0;
    for (uint32_t k = 0; k < net->layers; k++)
        f += 2.0 * (double)net->layer[k].in * net->layer[k].out;
    return f;
}

/* Evaluates every test image with every candidate label: rows are
 * image-major (row i*10 + c is image i with label c). */
static void evaluate(const ff_config_t *cfg, ff_ffrec_net_t *net, ff_ffrec_workspace_t *ws,
                     uint8_t *row_labels, const ff_dataset_t *test, size_t chunk, size_t *correct) {
    const size_t P = test->pixels;
    *correct = 0;
    for (size_t i0 = 0; i0 < test->count; i0 += chunk) {
        size_t n = test->count - i0 < chunk ? test->count - i0 : chunk, rows = n * FF_CLASSES;
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < FF_CLASSES; c++) {
                memcpy(ws->images + (i * FF_CLASSES + c) * P, test->images + (i0 + i) * P,
                       P * sizeof(float));
                row_labels[i * FF_CLASSES + c] = (uint8_t)c;
            }
        ff_ffrec_set_labels(ws, row_labels, rows);
        ws->cur = 0;
        ff_ffrec_bottom_up(net, ws, rows);
        memset(ws->scores, 0, rows * sizeof(float));
        for (int t = 0; t < FF_FFREC_TIME_STEPS; t++)
            ff_ffrec_time_step(net, ws, rows, 0, NULL, NULL, NULL,
                               t >= FF_FFREC_FIRST_SCORED_STEP ? ws->scores : NULL,
                               (float)cfg->theta, cfg->goodness);
        *correct += ff_eval_correct(ws->scores, test->labels + i0, n, FF_CLASSES);
    }
}

int ff_train_ffrec(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                   ff_result_t *res, ff_error_t *err) {
    memset(res, 0, sizeof *res);
    int rc = -1;
    const size_t N = train->count, m = cfg->batch / 2, P = train->pixels, L = cfg->layers;
    const size_t nbatches = (N + m - 1) / m;
    /* Evaluation takes batch/10 images (batch rows) at a time, like ff-mem. */
    size_t chunk = ff_config_eval_images(cfg, test->count > 0 ? test->count : 1);
    const size_t max_rows = 2 * m > chunk * FF_CLASSES ? 2 * m : chunk * FF_CLASSES;
    ff_ffrec_net_t net = {0};
    ff_ffrec_workspace_t ws = {0};
    ff_step_stats_t *stats = calloc(L, sizeof *stats);
    double *seconds = calloc(L, sizeof *seconds);
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, nbatches * sizeof(uint32_t));
    uint8_t *row_labels = ff_mem_alloc(FF_MEM_OTHER, max_rows);
    res->per_layer = calloc(L, sizeof *res->per_layer);
    if (stats == NULL || seconds == NULL || order == NULL || row_labels == NULL ||
        res->per_layer == NULL) {
        ff_error_set(err, "out of memory for the ff-recurrent schedule (%zu layers)", L);
        goto cleanup;
    }
    res->layer_count = (uint32_t)L;
    res->train_samples = N;
    res->test_samples = test->count;
    if (ff_ffrec_net_alloc(&net, (uint32_t)L, cfg->hidden, (uint32_t)P, FF_CLASSES, cfg->seed, 1,
                           err) != 0 ||
        ff_ffrec_workspace_alloc(&ws, &net, max_rows, err) != 0)
        goto cleanup;

    ff_step_params_t sp = {
        .theta = (float)cfg->theta, .goodness = cfg->goodness, .adam = ff_adam_defaults(cfg->lr)};
    const double fwd_row = forward_flops_per_row(&net);
    const double readout_row = 4.0 * (double)cfg->hidden * FF_CLASSES;
    ff_progress_t prog;
    ff_progress_init(&prog, cfg->quiet ? 0 : cfg->progress, (uint64_t)cfg->epochs * 2 * N);
    double t_start = ff_now();
    ff_rng_t rng;
    for (uint32_t e = 0; e < cfg->epochs; e++) {
        memset(stats, 0, L * sizeof *stats);
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, 0, e);
        ff_rng_permutation(&rng, order, nbatches);
        for (size_t bi = 0; bi < nbatches; bi++) {
            size_t r0 = (size_t)order[bi] * m, mb = N - r0 < m ? N - r0 : m, rows = 2 * mb;
            /* Positives then negatives: the same images, different labels. */
            memcpy(ws.images, train->images + r0 * P, mb * P * sizeof(float));
            memcpy(ws.images + mb * P, train->images + r0 * P, mb * P * sizeof(float));
            ws.cur = 0;
            ff_ffrec_bottom_up(&net, &ws, rows);
            /* The model's own guess, before any label is seen, proposes the
             * negative labels; then the read-out learns from the same pass. */
            ff_ffrec_readout_forward(&net, &ws, mb);
            memcpy(row_labels, train->labels + r0, mb);
            ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_RECURRENT_NEGATIVE, e, order[bi]);
            ff_ffrec_sample_negatives(row_labels + mb, ws.logits, train->labels + r0, mb,
                                      FF_CLASSES, &rng);
            ff_ffrec_readout_train(&net, &ws, train->labels + r0, mb, &sp.adam);
            ff_ffrec_set_labels(&ws, row_labels, rows);
            for (int t = 0; t < FF_FFREC_TIME_STEPS; t++)
                ff_ffrec_time_step(&net, &ws, rows, mb, &sp, stats, seconds, NULL, sp.theta,
                                   cfg->goodness);
            res->train_flops += (double)rows * fwd_row * (1.0 + 2.0 * FF_FFREC_TIME_STEPS) +
                                (double)mb * readout_row;
            double loss = 0.0, gp = 0.0, gn = 0.0;
            for (size_t k = 0; k < L; k++) {
                loss += stats[k].loss_sum / (double)stats[k].batches / (double)L;
                gp += stats[k].good_pos_sum / (double)stats[k].npos / (double)L;
                gn += stats[k].good_neg_sum / (double)stats[k].nneg / (double)L;
            }
            char label[64];
            snprintf(label, sizeof label, "ff-recurrent epoch %u/%u", e + 1, cfg->epochs);
            ff_progress_update(&prog, rows, label, loss, gp, gn, 0);
        }
    }
    ff_progress_finish(&prog);
    res->train_seconds = ff_now() - t_start;
    for (size_t k = 0; k < L; k++) {
        ff_layer_result_t *lr = &res->per_layer[k];
        const ff_step_stats_t *st = &stats[k];
        lr->in = net.layer[k].in;
        lr->out = net.layer[k].out;
        lr->loss = st->batches ? st->loss_sum / (double)st->batches : NAN;
        lr->goodness_pos = st->npos ? st->good_pos_sum / (double)st->npos : NAN;
        lr->goodness_neg = st->nneg ? st->good_neg_sum / (double)st->nneg : NAN;
        lr->seconds = seconds[k];
    }

    double t_eval = ff_now();
    size_t correct = 0;
    evaluate(cfg, &net, &ws, row_labels, test, chunk, &correct);
    res->eval_seconds = ff_now() - t_eval;
    res->test_accuracy = test->count ? (double)correct / (double)test->count : 0.0;
    /* The score is every-label goodness; the read-out only proposes negatives. */
    res->goodness_accuracy = res->test_accuracy;
    res->softmax_accuracy = NAN;
    res->weights_hash = ff_ffrec_net_hash(&net);
    rc = 0;
cleanup:
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    ff_ffrec_workspace_free(&ws);
    ff_ffrec_net_free(&net);
    ff_mem_free(row_labels);
    ff_mem_free(order);
    free(seconds);
    free(stats);
    return rc;
}
