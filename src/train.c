/* train.c: what every trainer shares: data preparation and the result. */
#include "ffstream/train.h"

#include <stdlib.h>
#include <string.h>

#include "ffstream/memstat.h"
#include "ffstream/rng.h"

void ff_result_free(ff_result_t *res) {
    if (res == NULL) return;
    free(res->per_layer);
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
