/* train.c: what every trainer shares: data preparation and the result. */
#include "ffstream/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/eval.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"
#include "ffstream/store.h"
#include "train_internal.h"

void ff_result_free(ff_result_t *res) {
    if (res == NULL) return;
    free(res->per_layer);
    free(res->tile_passes);
    free(res->rank_peak_rss);
    free(res->per_epoch);
    memset(res, 0, sizeof *res);
}

int ff_train_load_data(const ff_config_t *cfg, ff_dataset_t *train, ff_dataset_t *test,
                       ff_error_t *err) {
    memset(test, 0, sizeof *test);
    uint32_t *perm = NULL;
    if (ff_data_load(train, cfg->data_dir, true, cfg->train_limit, err) != 0) return -1;
    if (ff_data_load(test, cfg->data_dir, false, cfg->test_limit, err) != 0) goto fail;
    if (train->pixels != test->pixels) {
        ff_error_set(err, "%s: training images are %ux%u but test images %ux%u, expected equal",
                     cfg->data_dir, train->rows, train->cols, test->rows, test->cols);
        goto fail;
    }
    if (ff_config_check_data(cfg, train->count, err) != 0) goto fail;
    if (cfg->label == FF_LABEL_OVERLAY && train->pixels <= FF_CLASSES) {
        ff_error_set(err, "%s: --label overlay writes the label over the first %d pixels, but the "
                     "images are %ux%u (%zu pixels), expected more than %d; use --label concat",
                     cfg->data_dir, FF_CLASSES, train->rows, train->cols, train->pixels,
                     FF_CLASSES);
        goto fail;
    }
    double mean, std;
    ff_data_stats(train, &mean, &std);
    ff_data_standardize(train, mean, std);
    ff_data_standardize(test, mean, std);
    /* One seeded shuffle of the training images; batches are fixed slices of
     * this order and each epoch visits them in a fresh random order. */
    perm = ff_mem_alloc(FF_MEM_OTHER, train->count * sizeof(uint32_t));
    if (perm == NULL) {
        ff_error_set(err, "out of memory for a permutation of %zu images", train->count);
        goto fail;
    }
    ff_rng_t rng;
    ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_DATA_ORDER, 0, 0);
    ff_rng_permutation(&rng, perm, train->count);
    if (ff_data_permute(train, perm, err) != 0) goto fail;
    ff_mem_free(perm);
    return 0;
fail:
    ff_mem_free(perm);
    ff_data_free(test);
    ff_data_free(train);
    return -1;
}

static volatile sig_atomic_t stop_requested = 0;

void ff_train_request_stop(void) { stop_requested = 1; }

int ff_train_stop_requested(void) { return stop_requested != 0; }

uint64_t ff_train_data_fingerprint(const ff_dataset_t *train, const ff_dataset_t *test) {
    uint64_t parts[2] = {train->fingerprint, test->fingerprint};
    return ff_hash_bytes(FF_FNV_OFFSET, parts, sizeof parts);
}

ff_epoch_means_t ff_epoch_means(const ff_step_stats_t *st) {
    ff_epoch_means_t m = {NAN, NAN, NAN};
    if (st->batches > 0) m.loss = st->loss_sum / (double)st->batches;
    if (st->npos > 0) m.goodness_pos = st->good_pos_sum / (double)st->npos;
    if (st->nneg > 0) m.goodness_neg = st->good_neg_sum / (double)st->nneg;
    return m;
}

ff_layerfile_options_t ff_store_layerfile_options(const ff_config_t *cfg) {
    ff_layerfile_options_t o = ff_layerfile_default_options();
    o.codec = (ff_codec_t)cfg->checkpoint_codec;
    return o;
}

void ff_store_layer_meta(ff_layerfile_meta_t *meta, const ff_config_t *cfg, uint32_t index,
                         uint64_t data_fingerprint, const ff_layer_progress_t *p) {
    memset(meta, 0, sizeof *meta);
    meta->layer_index = index;
    meta->epochs_done = p->epochs_done;
    meta->epochs_total = cfg->epochs;
    meta->batch_in_epoch = p->batch_in_epoch;
    meta->complete = p->epochs_done == cfg->epochs;
    meta->loss = p->last.loss;
    meta->goodness_pos = p->last.goodness_pos;
    meta->goodness_neg = p->last.goodness_neg;
    meta->loss_sum = p->running.loss_sum;
    meta->good_pos_sum = p->running.good_pos_sum;
    meta->good_neg_sum = p->running.good_neg_sum;
    meta->batches = p->running.batches;
    meta->npos = p->running.npos;
    meta->nneg = p->running.nneg;
    meta->data_fingerprint = data_fingerprint;
    meta->config_fingerprint = ff_config_fingerprint(cfg);
    meta->adam = ff_adam_defaults(cfg->lr);
    meta->adam.weight_decay = cfg->weight_decay;
}

ff_step_params_t ff_train_step_params(const ff_config_t *cfg, uint32_t units) {
    ff_step_params_t p = {.theta = ff_config_layer_theta(cfg, units), .goodness = cfg->goodness,
                          .adam = ff_adam_defaults(cfg->lr), .loss = cfg->loss,
                          .alpha = (float)cfg->symba_alpha};
    p.adam.weight_decay = cfg->weight_decay;
    return p;
}

double ff_train_layer_lr(const ff_config_t *cfg, uint32_t epoch, uint64_t batch,
                         uint64_t batches) {
    return ff_step_lr(cfg->lr, cfg->lr_schedule, cfg->lr_decay_start, epoch, cfg->epochs, batch,
                      batches);
}

ff_adam_params_t ff_train_head_adam(const ff_config_t *cfg, uint32_t epoch, uint64_t batch,
                                    uint64_t batches) {
    ff_adam_params_t p = ff_adam_defaults(ff_step_lr(cfg->head_lr, cfg->lr_schedule,
                                                     cfg->lr_decay_start, epoch,
                                                     cfg->head_epochs, batch, batches));
    p.weight_decay = cfg->weight_decay;
    return p;
}

int ff_train_layer_scored(const ff_config_t *cfg, uint32_t k) {
    return cfg->score_all_layers || ff_eval_layer_counts(k, cfg->layers);
}

uint32_t ff_train_scored_count(const ff_config_t *cfg) {
    uint32_t n = 0;
    for (uint32_t k = 0; k < cfg->layers; k++) n += ff_train_layer_scored(cfg, k) != 0;
    return n;
}
