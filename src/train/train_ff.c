/* train_ff.c: the two Forward-Forward trainers. Each constructs a row
 * source and a layer store and runs the one layer loop (loop.h) over them:
 *   ff-mem:    rows in RAM (rows_mem.c), every layer in RAM (store_mem.c)
 *   ff-stream: rows in cache files (rows_cache.c), one layer at a time from
 *              its checkpoint (store_file.c), in a run directory that a
 *              killed run resumes from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ffstream/aio.h"
#include "ffstream/comm.h"
#include "ffstream/loop.h"
#include "ffstream/memmodel.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"
#include "ffstream/run.h"
#include "ffstream/shard.h"
#include "ffstream/train.h"

/* What both trainers fill before the loop: counts and per-layer slots. */
static int result_init(ff_result_t *res, const ff_config_t *cfg, uint64_t train, uint64_t test,
                       ff_error_t *err) {
    memset(res, 0, sizeof *res);
    res->per_layer = calloc(cfg->layers, sizeof *res->per_layer);
    if (res->per_layer == NULL) return ff_error_set(err, "out of memory for %u layers", cfg->layers);
    res->layer_count = cfg->layers;
    res->train_samples = train;
    res->test_samples = test;
    for (uint32_t k = 0; k < cfg->layers; k++) res->per_layer[k].seconds = NAN;
    return 0;
}

/* The wrong label of every training image, drawn once per run. */
static uint8_t *negative_labels(const ff_config_t *cfg, const ff_dataset_t *train,
                                ff_error_t *err) {
    uint8_t *neg = ff_mem_alloc(FF_MEM_DATASET, train->count);
    if (neg == NULL) {
        ff_error_set(err, "out of memory for negative labels");
        return NULL;
    }
    ff_rng_t rng;
    ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_NEGATIVE, 0, 0);
    ff_data_negative_labels(neg, train->labels, train->count, &rng);
    return neg;
}

static ff_rows_data_t rows_data(const ff_config_t *cfg, const ff_dataset_t *train,
                                const ff_dataset_t *test, const uint8_t *neg) {
    ff_rows_data_t d = {.train = train, .test = test, .negative_labels = neg,
                        .label = cfg->label, .label_scale = (float)cfg->label_scale};
    return d;
}

int ff_train_ffmem(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                   ff_result_t *res, ff_error_t *err) {
    if (result_init(res, cfg, train->count, test->count, err) != 0) return -1;
    if (cfg->run_dir[0] != '\0') {
        /* Never overwrite another run (an unfinished ff-stream run above all). */
        ff_run_state_t existing;
        int missing = 0;
        if (ff_run_read(cfg->run_dir, &existing, &missing, err) == 0)
            return ff_error_set(err, "%s already holds a run (%s); choose another --run directory",
                                cfg->run_dir, ff_mode_name(existing.config.mode));
        if (!missing) return -1;
    }
    const uint64_t data_fp = ff_train_data_fingerprint(train, test);
    const uint32_t width0 = (uint32_t)ff_data_input_dim(train->pixels, cfg->label);
    ff_store_t store = {0};
    ff_rows_t rows = {0};
    int rc = -1;
    uint8_t *neg = NULL;
    if (ff_store_mem_create(&store, cfg, width0, data_fp, train->count, test->count, err) != 0)
        goto cleanup;
    if ((neg = negative_labels(cfg, train, err)) == NULL) goto cleanup;
    ff_rows_data_t data = rows_data(cfg, train, test, neg);
    if (ff_rows_mem_create(&rows, cfg, &data, err) != 0) goto cleanup;
    ff_loop_t loop = {.cfg = cfg, .rows = &rows, .store = &store, .first_layer = 0,
                      .img_rows = train->rows, .img_cols = train->cols,
                      .train_labels = train->labels, .test_labels = test->labels,
                      .name = "ff-mem"};
    if (ff_loop_run(&loop, res, err) != 0) goto cleanup;
    rc = store.ops->finish(store.self, res, err);
cleanup:
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    if (rows.ops != NULL) rows.ops->destroy(rows.self);
    ff_mem_free(neg);
    if (store.ops != NULL) store.ops->destroy(store.self);
    return rc;
}

/* Opens the run to resume, or starts a new one (run.json written). */
static int open_run(const ff_config_t *cfg, uint64_t data_fp, uint64_t train, uint64_t test,
                    ff_run_state_t *state, ff_result_t *res, ff_error_t *err) {
    int missing = 0;
    const char *dir = cfg->run_dir;
    if (ff_run_read(dir, state, &missing, err) == 0) {
        if (!cfg->resume)
            return ff_error_set(err,
                                "%s already holds a run; continue it with --resume or choose "
                                "another --run directory",
                                dir);
        if (ff_run_check_resume(state, cfg, data_fp, err) != 0) return -1;
        if (state->finished) {
            char result_path[FF_PATH_MAX];
            struct stat st;
            if (ff_run_path(result_path, dir, "result.json", err) != 0) return -1;
            if (lstat(result_path, &st) == 0)
                return ff_error_set(err, "%s: the run is finished (see %s)", dir, result_path);
            /* Killed after the last layer but before its result was written:
             * everything needed is on disk, only the result is left to do. */
        }
        res->resumed = 1;
        res->resumed_at_layer = state->cache_layer == FF_RUN_NO_CACHE ? 0 : state->cache_layer;
        ff_run_remove_temporaries(dir);
        return 0;
    }
    if (!missing) return -1; /* run.json exists but is unreadable: err says why */
    /* No run.json: a new run. With --resume the run was killed before it
     * wrote one (while loading the data), so there is nothing to lose. */
    res->started_fresh = cfg->resume;
    if (ff_run_make_dirs(dir, err) != 0) return -1;
    ff_run_state_init(state, cfg, data_fp, train, test);
    return ff_run_write(dir, state, err);
}

/* Ranks after the first read the run rank 0 opened or made, and check it
 * against their own flags and data: a rank that differs is named with the
 * first flag that does. */
static int join_run(const ff_config_t *cfg, uint64_t data_fp, int rank, ff_run_state_t *state,
                    ff_result_t *res, ff_error_t *err) {
    int missing = 0;
    if (ff_run_read(cfg->run_dir, state, &missing, err) != 0)
        return ff_error_wrap(err, "rank %d: the run rank 0 opened", rank);
    if (ff_run_check_resume(state, cfg, data_fp, err) != 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        const char *what = strncmp(why, "cannot resume: ", 15) == 0 ? why + 15 : why;
        return ff_error_set(err, "rank %d differs from rank 0, whose run it joins (every rank "
                            "needs the same flags and data): %s", rank, what);
    }
    res->resumed = cfg->resume && !res->started_fresh;
    res->resumed_at_layer = state->cache_layer == FF_RUN_NO_CACHE ? 0 : state->cache_layer;
    return 0;
}

int ff_train_ffstream(const ff_config_t *cfg, ff_dataset_t *train, ff_dataset_t *test,
                      ff_result_t *res, ff_error_t *err) {
    ff_comm_t *comm = ff_comm_world();
    const uint64_t N = train->count, T = test->count;
    if (result_init(res, cfg, N, T, err) != 0) return -1;
    const uint64_t data_fp = ff_train_data_fingerprint(train, test);
    const uint64_t tag = ff_config_fingerprint(cfg) ^ data_fp;
    const uint32_t width0 = (uint32_t)ff_data_input_dim(train->pixels, cfg->label);
    const uint32_t img_rows = train->rows, img_cols = train->cols;
    /* Data parallel: this rank's share of every batch is an ordinary,
     * smaller data set with batches of batch / ranks (shard.h); the run's
     * configuration and fingerprints stay the whole run's. */
    const ff_shard_t shard = ff_shard_make(cfg, comm->rank, comm->size, N, T);
    ff_config_t local = *cfg;
    local.batch = cfg->batch / (uint32_t)comm->size;
    char dir[FF_PATH_MAX];
    ff_run_state_t state;
    ff_aio_t *aio = NULL;
    ff_rows_t rows = {0};
    ff_store_t store = {0};
    uint8_t *neg = NULL, *train_labels = NULL, *test_labels = NULL;
    int rc = -1;
    if (ff_shard_check(&shard, err) != 0) return -1;
    if (comm->size > 1 && (cfg->eval_softmax || cfg->mode != FF_MODE_FF_STREAM))
        return ff_error_set(err, "over %d ranks: only --mode ff-stream with --eval goodness "
                            "(the softmax head is trained in one process)", comm->size);
    /* Rank 0 opens or makes the run; the others join it. */
    if (comm->rank == 0 && open_run(cfg, data_fp, N, T, &state, res, err) != 0) goto fail_rank;
    if (comm->ops->barrier(comm, err) != 0) goto cleanup;
    if (comm->rank > 0 && join_run(cfg, data_fp, comm->rank, &state, res, err) != 0)
        goto fail_rank;
    /* A rank's caches live in RUN/rank-K (one process: RUN itself). */
    if (comm->size > 1 ? ff_path_format(dir, err, "%s/rank-%d", cfg->run_dir, comm->rank)
                       : ff_path_format(dir, err, "%s", cfg->run_dir))
        goto cleanup;
    if (comm->size > 1) {
        if (ff_run_make_dirs(dir, err) != 0) goto cleanup;
        ff_run_remove_temporaries(dir);
    }
    if (ff_aio_create(&aio, (ff_aio_backend_t)cfg->io_backend, 4, err) != 0) goto cleanup;
    res->io_backend = ff_aio_backend_name(ff_aio_backend(aio));
    const uint64_t batches = (N + cfg->batch / 2 - 1) / (cfg->batch / 2);
    if (ff_store_file_create(&store, cfg, width0, data_fp, batches, &state, comm->rank == 0, err) != 0)
        goto cleanup;
    /* The labels outlive the dataset: the head's targets and the scoring. */
    train_labels = ff_mem_alloc(FF_MEM_DATASET, N);
    test_labels = ff_mem_alloc(FF_MEM_DATASET, T);
    if (train_labels == NULL || test_labels == NULL) {
        ff_error_set(err, "out of memory for the labels");
        goto cleanup;
    }
    /* The wrong labels are drawn over the whole set, then shared out. */
    if ((neg = negative_labels(cfg, train, err)) == NULL) goto cleanup;
    if (ff_shard_apply(&shard, train, neg, test, err) != 0) goto cleanup;
    memcpy(train_labels, train->labels, train->count);
    memcpy(test_labels, test->labels, test->count);
    if (ff_rows_cache_create(&rows, &local, dir, train->count, test->count, width0, tag, aio, err) != 0)
        goto cleanup;
    ff_memmodel_t model = ff_memmodel(&local, train->pixels, train->count, test->count);
    res->working_set_bytes = model.total;
    if (state.cache_layer != FF_RUN_NO_CACHE)
        ff_rows_cache_remove_below(&rows, state.cache_layer);

    res->run_intact = 1; /* from here on an error leaves a run --resume can continue */
    if (state.cache_layer == FF_RUN_NO_CACHE && !state.finished) {
        ff_rows_data_t data = rows_data(cfg, train, test, neg);
        if (ff_rows_cache_write_inputs(&rows, &data, err) != 0) goto cleanup;
        /* Every rank's first caches are complete before run.json says so. */
        if (comm->ops->barrier(comm, err) != 0) goto cleanup;
        state.cache_layer = 0;
        if (comm->rank == 0 && ff_run_write(cfg->run_dir, &state, err) != 0) goto cleanup;
    }
    /* From here on the dataset lives on disk only. */
    ff_mem_free(neg);
    neg = NULL;
    ff_data_free(train);
    ff_data_free(test);

    ff_loop_t loop = {.cfg = &local, .rows = &rows, .store = &store,
                      .first_layer = state.finished ? cfg->layers : state.cache_layer,
                      .img_rows = img_rows, .img_cols = img_cols, .train_labels = train_labels,
                      .test_labels = test_labels, .name = "ff-stream",
                      .comm = comm->size > 1 ? comm : NULL, .shard = &shard};
    rc = ff_loop_run(&loop, res, err);
    goto cleanup;
fail_rank:
    /* Before any rank has written: the others are waiting in a collective. */
    if (comm->size > 1) {
        fprintf(stderr, "fftrain: rank %d: %s\n", comm->rank, err->msg);
        ff_comm_abort(comm, 1);
    }
cleanup:
    if (store.ops != NULL) store.ops->destroy(store.self); /* joins the checkpoint writer */
    if (rows.ops != NULL) rows.ops->destroy(rows.self);    /* drains the pipeline */
    if (aio != NULL) {
        ff_aio_stats_t io;
        ff_aio_stats(aio, &io);
        res->io_bytes_read = io.bytes_read;
        res->io_bytes_written = io.bytes_written;
        res->io_wait_seconds = io.wait_seconds;
        ff_aio_destroy(aio);
    }
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    ff_mem_free(neg);
    ff_mem_free(test_labels);
    ff_mem_free(train_labels);
    return rc;
}
