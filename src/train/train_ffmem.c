/* train_ffmem.c: Forward-Forward with every layer in memory, as the original
 * experiment ran it. Layer k trains on the cached outputs of layer k-1 for the
 * whole training set (positive and negative rows); when it is done one more
 * pass writes its outputs as the cache of layer k+1. Layer 1 embeds images
 * on the fly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/eval.h"
#include "ffstream/head.h"
#include "ffstream/layer.h"
#include "ffstream/layerfile.h"
#include "ffstream/run.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/rng.h"
#include "ffstream/step.h"
#include "ffstream/train.h"
#include "train_internal.h"

typedef struct {
    const ff_dataset_t *train;
    const uint8_t *neg_labels; /* [N] wrong label of each negative row */
    ff_label_mode_t label;
    float label_scale;
    const float *cache_pos;    /* [N, width] layer inputs, NULL for layer 1 */
    const float *cache_neg;
    size_t width;
} batch_source_t;

/* Fills x [2m, width] with rows r0..r0+m-1: positives, then negatives. */
static void assemble_batch(float *x, const batch_source_t *src, size_t r0, size_t m) {
    const ff_dataset_t *d = src->train;
    if (src->cache_pos == NULL) {
        ff_data_embed_rows_scaled(x, d->images + r0 * d->pixels, d->pixels, NULL, d->labels + r0,
                                  m, src->label, src->label_scale);
        ff_data_embed_rows_scaled(x + m * src->width, d->images + r0 * d->pixels, d->pixels,
                                  NULL, src->neg_labels + r0, m, src->label, src->label_scale);
        return;
    }
    memcpy(x, src->cache_pos + r0 * src->width, m * src->width * sizeof(float));
    memcpy(x + m * src->width, src->cache_neg + r0 * src->width, m * src->width * sizeof(float));
}

/* Evaluates every test image against every label through all layers. */
static int evaluate(const ff_config_t *cfg, ff_layer_t *layers, const ff_dataset_t *test,
                    size_t *correct, ff_error_t *err) {
    int rc = -1;
    size_t in0 = ff_data_input_dim(test->pixels, cfg->label);
    size_t chunk = cfg->batch / 10 > 0 ? cfg->batch / 10 : 1;
    if (chunk > test->count) chunk = test->count;
    size_t rows = chunk * FF_CLASSES;
    size_t width = in0 > cfg->hidden ? in0 : cfg->hidden;
    ff_step_workspace_t ws = {0};
    float *a = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * width * sizeof(float));
    float *b = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * width * sizeof(float));
    float *good = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * sizeof(float));
    float *scores = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * sizeof(float));
    if (a == NULL || b == NULL || good == NULL || scores == NULL) {
        ff_error_set(err, "out of memory for evaluation buffers (%zu rows)", rows);
        goto cleanup;
    }
    if (ff_step_workspace_alloc(&ws, rows, width, cfg->hidden, err) != 0) goto cleanup;
    *correct = 0;
    for (size_t i0 = 0; i0 < test->count; i0 += chunk) {
        size_t n = test->count - i0 < chunk ? test->count - i0 : chunk;
        ff_eval_embed_candidates_scaled(a, test->images + i0 * test->pixels, test->pixels, n,
                                        cfg->label, (float)cfg->label_scale);
        memset(scores, 0, n * FF_CLASSES * sizeof(float));
        float *x = a, *y = b;
        for (uint32_t k = 0; k < cfg->layers; k++) {
            ff_step_forward(y, &layers[k], &ws, x, n * FF_CLASSES);
            if (ff_train_layer_scored(cfg, k)) {
                ff_dense_goodness(good, y, n * FF_CLASSES, cfg->hidden, cfg->goodness);
                ff_eval_accumulate(scores, good, n, ff_config_layer_theta(cfg, cfg->hidden));
            }
            float *t = x;
            x = y;
            y = t;
        }
        *correct += ff_eval_correct(scores, test->labels + i0, n, FF_CLASSES);
    }
    rc = 0;
cleanup:
    ff_step_workspace_free(&ws);
    ff_mem_free(scores);
    ff_mem_free(good);
    ff_mem_free(b);
    ff_mem_free(a);
    return rc;
}

/* Forwards n neutral-label rows of images through every layer in chunks of
 * `chunk` rows (ff-stream's neutral caches have the same chunks) and writes
 * the normalised activities of the scored layers as feature rows
 * features [n, scored x H]. a, b: [chunk, max(in0, H)] scratch. */
static void neutral_features(float *features, const ff_config_t *cfg, ff_layer_t *layers,
                             ff_step_workspace_t *ws, const ff_dataset_t *d, size_t n,
                             size_t chunk, float *a, float *b) {
    size_t H = cfg->hidden, D = (size_t)ff_train_scored_count(cfg) * H;
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
        size_t mb = n - r0 < chunk ? n - r0 : chunk;
        ff_data_embed_rows_scaled(a, d->images + r0 * d->pixels, d->pixels, NULL, NULL, mb,
                                  cfg->label, (float)cfg->label_scale);
        float *x = a, *y = b;
        size_t block = 0;
        for (uint32_t k = 0; k < cfg->layers; k++) {
            ff_step_forward(y, &layers[k], ws, x, mb);
            if (ff_train_layer_scored(cfg, k))
                ff_head_gather(features + r0 * D, D, y, mb, H, block++);
            float *t = x;
            x = y;
            y = t;
        }
    }
}

/* The softmax read-out on detached activities: features of every training
 * image, head_epochs epochs of Adam over chunks of m images in a fresh
 * order per epoch, then the test accuracy (chunks of E images). */
static int train_head(const ff_config_t *cfg, ff_layer_t *layers, ff_step_workspace_t *ws,
                      const ff_dataset_t *train, const ff_dataset_t *test, ff_result_t *res,
                      ff_error_t *err) {
    int rc = -1;
    const size_t N = train->count, m = cfg->batch / 2, H = cfg->hidden;
    size_t E = cfg->batch / 10 > 0 ? cfg->batch / 10 : 1;
    if (E > test->count) E = test->count;
    const size_t nchunks = (N + m - 1) / m, D = (size_t)ff_train_scored_count(cfg) * H;
    const size_t in0 = ff_data_input_dim(train->pixels, cfg->label);
    const size_t width = in0 > H ? in0 : H, rows = m > E ? m : E;
    ff_head_t head = {0};
    float *features = ff_mem_alloc(FF_MEM_ACTIVATIONS, N * D * sizeof(float));
    float *a = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * width * sizeof(float));
    float *b = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * width * sizeof(float));
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, nchunks * sizeof(uint32_t));
    if (features == NULL || a == NULL || b == NULL || order == NULL) {
        ff_error_set(err, "out of memory for the softmax head's features (%zu x %zu floats)", N,
                     D);
        goto cleanup;
    }
    if (ff_head_init(&head, (uint32_t)D, rows, cfg->seed, cfg->layers, err) != 0) goto cleanup;
    neutral_features(features, cfg, layers, ws, train, N, m, a, b);
    for (uint32_t e = 0; e < cfg->head_epochs; e++) {
        ff_rng_t rng;
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_HEAD, e, 0);
        ff_rng_permutation(&rng, order, nchunks);
        for (size_t bi = 0; bi < nchunks; bi++) {
            size_t r0 = (size_t)order[bi] * m, mb = N - r0 < m ? N - r0 : m;
            ff_adam_params_t adam = ff_train_head_adam(cfg, e, bi, nchunks);
            ff_head_train_step(&head, features + r0 * D, train->labels + r0, mb, &adam);
        }
    }
    size_t correct = 0;
    for (size_t i0 = 0; i0 < test->count; i0 += E) {
        size_t n = test->count - i0 < E ? test->count - i0 : E;
        ff_dataset_t part = *test;
        part.images = test->images + i0 * test->pixels;
        neutral_features(features, cfg, layers, ws, &part, n, E, a, b);
        correct += ff_head_correct(&head, features, test->labels + i0, n);
    }
    res->softmax_accuracy = test->count ? (double)correct / (double)test->count : 0.0;
    res->head_hash = ff_hash_bytes(FF_FNV_OFFSET, head.layer.params,
                                   ff_layer_block_bytes(&head.layer));
    rc = 0;
cleanup:
    ff_head_free(&head);
    ff_mem_free(order);
    ff_mem_free(b);
    ff_mem_free(a);
    ff_mem_free(features);
    return rc;
}

/* Saves every layer in the per-layer format ff-stream writes, with the same
 * metadata, so the two trainers' files can be compared byte for byte. */
static int save_run(const ff_config_t *cfg, const ff_layer_t *layers, const ff_result_t *res,
                    uint64_t data_fp, ff_error_t *err) {
    if (ff_run_make_dirs(cfg->run_dir, err) != 0) return -1;
    for (uint32_t k = 0; k < cfg->layers; k++) {
        char path[4200];
        if (ff_run_layer_path(path, sizeof path, cfg->run_dir, k) != 0)
            return ff_error_set(err, "%s: path too long", cfg->run_dir);
        ff_epoch_means_t last = {res->per_layer[k].loss, res->per_layer[k].goodness_pos,
                                 res->per_layer[k].goodness_neg};
        ff_step_stats_t none = {0};
        ff_layerfile_meta_t meta;
        ff_train_layer_meta(&meta, cfg, k, data_fp, &last, &none, cfg->epochs, 0);
        if (ff_layerfile_save(path, &layers[k], &meta, NULL, err) != 0) return -1;
    }
    ff_run_state_t state;
    ff_run_state_init(&state, cfg, data_fp, res->train_samples, res->test_samples);
    state.finished = 1;
    state.weights_hash = res->weights_hash;
    state.hashed_layers = cfg->layers;
    return ff_run_write(cfg->run_dir, &state, err);
}

int ff_train_ffmem(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                   ff_result_t *res, ff_error_t *err) {
    memset(res, 0, sizeof *res);
    int rc = -1;
    if (cfg->run_dir[0] != '\0') {
        /* Never overwrite another run (an unfinished ff-stream run above all). */
        ff_run_state_t existing;
        int missing = 0;
        if (ff_run_read(cfg->run_dir, &existing, &missing, err) == 0)
            return ff_error_set(err, "%s already holds a run (%s); choose another --run directory",
                                cfg->run_dir, existing.mode);
        if (!missing) return -1;
    }
    const size_t N = train->count, m = cfg->batch / 2, H = cfg->hidden;
    const size_t nbatches = (N + m - 1) / m;
    const size_t in0 = ff_data_input_dim(train->pixels, cfg->label);
    const size_t max_in = in0 > H ? in0 : H;
    ff_layer_t *layers = calloc(cfg->layers, sizeof *layers);
    uint8_t *neg = ff_mem_alloc(FF_MEM_DATASET, N);
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, nbatches * sizeof(uint32_t));
    float *x = NULL, *cache_pos = NULL, *cache_neg = NULL, *next_pos = NULL, *next_neg = NULL;
    ff_step_workspace_t ws = {0};
    res->per_layer = calloc(cfg->layers, sizeof *res->per_layer);
    if (layers == NULL || neg == NULL || order == NULL || res->per_layer == NULL) {
        ff_error_set(err, "out of memory for %u layers", cfg->layers);
        goto cleanup;
    }
    res->layer_count = cfg->layers;
    res->train_samples = N;
    res->test_samples = test->count;

    /* The original keeps the whole network in memory: allocate it all now. */
    for (uint32_t k = 0; k < cfg->layers; k++) {
        if (ff_layer_alloc(&layers[k], (uint32_t)(k == 0 ? in0 : H), (uint32_t)H, 1, err) != 0)
            goto cleanup;
        ff_layer_init_for_run(&layers[k], cfg->seed, k);
    }
    x = ff_mem_alloc(FF_MEM_ACTIVATIONS, 2 * m * max_in * sizeof(float));
    if (x == NULL) {
        ff_error_set(err, "out of memory for a %u-row batch", cfg->batch);
        goto cleanup;
    }
    if (ff_step_workspace_alloc(&ws, 2 * m, max_in, H, err) != 0) goto cleanup;
    ff_rng_t rng;
    ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_NEGATIVE, 0, 0);
    ff_data_negative_labels(neg, train->labels, N, &rng);

    ff_step_params_t sp = ff_train_step_params(cfg, (uint32_t)H);
    ff_progress_t prog;
    ff_progress_init(&prog, cfg->quiet ? 0 : cfg->progress,
                     (uint64_t)cfg->layers * (cfg->epochs + 1) * 2 * N);
    double t_start = ff_now();
    for (uint32_t k = 0; k < cfg->layers; k++) {
        double t_layer = ff_now();
        ff_layer_t *L = &layers[k];
        batch_source_t src = {.train = train, .neg_labels = neg, .label = cfg->label,
                              .label_scale = (float)cfg->label_scale, .cache_pos = cache_pos, .cache_neg = cache_neg, .width = L->in};
        ff_step_stats_t st = {0};
        for (uint32_t e = 0; e < cfg->epochs; e++) {
            memset(&st, 0, sizeof st);
            ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, k, e);
            ff_rng_permutation(&rng, order, nbatches);
            for (size_t bi = 0; bi < nbatches; bi++) {
                size_t r0 = (size_t)order[bi] * m, mb = N - r0 < m ? N - r0 : m;
                assemble_batch(x, &src, r0, mb);
                /* Jitter applies to the first layer's training rows only:
                 * the next layers' inputs are cached once, un-jittered. */
                if (k == 0 && cfg->fresh_negatives)
                    ff_data_redraw_negatives(x, mb, L->in, train->pixels, cfg->label, cfg->seed,
                                             e, order[bi]);
                if (k == 0)
                    ff_data_jitter_batch(x, mb, L->in, train->rows, train->cols, cfg->label,
                                         cfg->jitter, cfg->seed, e, order[bi]);
                sp.adam.lr = ff_train_layer_lr(cfg, e, bi, nbatches);
                ff_step_train(L, &ws, x, mb, mb, &sp, &st);
                res->train_flops += 4.0 * 2.0 * (double)mb * (double)L->in * (double)H;
                char label[64];
                snprintf(label, sizeof label, "ff-mem layer %u/%u epoch %u/%u", k + 1, cfg->layers,
                         e + 1, cfg->epochs);
                ff_progress_update(&prog, 2 * mb, label, st.loss_sum / (double)st.batches,
                                   st.good_pos_sum / (double)st.npos,
                                   st.good_neg_sum / (double)st.nneg, 0);
            }
        }
        /* The next layer's inputs: this layer's outputs on every row. */
        if (k + 1 < cfg->layers) {
            next_pos = ff_mem_alloc(FF_MEM_ACTIVATIONS, N * H * sizeof(float));
            next_neg = ff_mem_alloc(FF_MEM_ACTIVATIONS, N * H * sizeof(float));
            if (next_pos == NULL || next_neg == NULL) {
                ff_error_set(err, "out of memory for the activation cache (2 x %zu x %zu floats)",
                             N, H);
                goto cleanup;
            }
            for (size_t r0 = 0; r0 < N; r0 += m) {
                size_t mb = N - r0 < m ? N - r0 : m;
                assemble_batch(x, &src, r0, mb);
                ff_step_forward(ws.y, L, &ws, x, 2 * mb);
                memcpy(next_pos + r0 * H, ws.y, mb * H * sizeof(float));
                memcpy(next_neg + r0 * H, ws.y + mb * H, mb * H * sizeof(float));
                res->train_flops += 2.0 * 2.0 * (double)mb * (double)L->in * (double)H;
                ff_progress_update(&prog, 2 * mb, "ff-mem caching outputs", NAN, NAN, NAN, 0);
            }
            ff_mem_free(cache_pos);
            ff_mem_free(cache_neg);
            cache_pos = next_pos;
            cache_neg = next_neg;
            next_pos = next_neg = NULL;
        } else {
            ff_progress_update(&prog, 2 * N, "ff-mem", NAN, NAN, NAN, 0);
        }
        ff_layer_result_t *lr = &res->per_layer[k];
        lr->in = L->in;
        lr->out = L->out;
        lr->loss = st.batches ? st.loss_sum / (double)st.batches : NAN;
        lr->goodness_pos = st.npos ? st.good_pos_sum / (double)st.npos : NAN;
        lr->goodness_neg = st.nneg ? st.good_neg_sum / (double)st.nneg : NAN;
        lr->seconds = ff_now() - t_layer;
    }
    ff_progress_finish(&prog);
    /* The cache of the last layer is not needed for evaluation. */
    ff_mem_free(cache_pos);
    ff_mem_free(cache_neg);
    cache_pos = cache_neg = NULL;
    res->softmax_accuracy = NAN;
    if (cfg->eval_softmax) {
        double t_head = ff_now();
        if (train_head(cfg, layers, &ws, train, test, res, err) != 0) goto cleanup;
        res->head_seconds = ff_now() - t_head;
    }
    res->train_seconds = ff_now() - t_start;

    double t_eval = ff_now();
    size_t correct = 0;
    if (evaluate(cfg, layers, test, &correct, err) != 0) goto cleanup;
    res->eval_seconds = ff_now() - t_eval;
    res->goodness_accuracy = test->count ? (double)correct / (double)test->count : 0.0;
    res->test_accuracy = cfg->eval_softmax ? res->softmax_accuracy : res->goodness_accuracy;
    res->weights_hash = FF_FNV_OFFSET;
    for (uint32_t k = 0; k < cfg->layers; k++)
        res->weights_hash = ff_hash_bytes(res->weights_hash, layers[k].params,
                                          ff_layer_block_bytes(&layers[k]));
    if (cfg->run_dir[0] != '\0' &&
        save_run(cfg, layers, res, ff_train_data_fingerprint(train, test), err) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    ff_step_workspace_free(&ws);
    ff_mem_free(next_neg);
    ff_mem_free(next_pos);
    ff_mem_free(cache_neg);
    ff_mem_free(cache_pos);
    ff_mem_free(x);
    ff_mem_free(order);
    ff_mem_free(neg);
    if (layers != NULL)
        for (uint32_t k = 0; k < cfg->layers; k++) ff_layer_free(&layers[k]);
    free(layers);
    return rc;
}
