/* train.h: the trainers (ff-mem, bp) and the result every one of them fills.
 * A trainer takes loaded, standardised data and a validated configuration;
 * it prints nothing but progress (when cfg->progress allows). */
#ifndef FFSTREAM_TRAIN_H
#define FFSTREAM_TRAIN_H

#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/error.h"
#include "ffstream/memstat.h"

typedef struct {
    uint32_t in, out;
    double loss;          /* mean batch loss of the last epoch */
    double goodness_pos;  /* mean goodness of positive rows, last epoch (FF) */
    double goodness_neg;  /* mean goodness of negative rows, last epoch (FF) */
    double seconds;       /* wall time spent on this layer, cache pass included */
    /* Measured while this process worked on the layer (measured = 1; a
     * layer finished by an earlier process has none): the sampled peaks of
     * the resident set and of the own cgroup's usage (0: no cgroup), and
     * the bytes the process read and wrote (files and asynchronous I/O). */
    int measured;
    uint64_t peak_rss_bytes, cgroup_peak_bytes;
    uint64_t bytes_read, bytes_written;
    /* Disk under the run directory when the layer is done, its inputs and
     * outputs both still there (0 without a run directory). */
    uint64_t disk_bytes;
} ff_layer_result_t;

typedef struct {
    double loss;
    double seconds;
} ff_epoch_result_t;

typedef struct {
    double test_accuracy;   /* fraction in [0, 1] */
    double train_seconds;
    double eval_seconds;
    uint64_t train_samples;
    uint64_t test_samples;
    uint32_t layer_count;
    ff_layer_result_t *per_layer; /* [layer_count] */
    uint32_t epoch_count;
    ff_epoch_result_t *per_epoch; /* [epoch_count], bp only */
    uint64_t weights_hash;  /* FNV-1a of every layer's parameters, in order */
    double train_flops;     /* floating-point operations of training matrix products */
    /* FF modes, by phase (seconds of wall time and matrix-product flops):
     * the training steps (their reads and epoch checkpoints included), the
     * passes that write the next layer's inputs and the head's features, and
     * the evaluation passes over the test candidates. */
    double step_seconds, step_flops;
    double pass_seconds, pass_flops;
    double eval_flops;
    /* ff-stream only (zero otherwise): */
    uint64_t working_set_bytes; /* analytic: active layer + batch and I/O buffers */
    uint64_t io_bytes_read, io_bytes_written;
    double io_wait_seconds;     /* blocked waiting for reads or writes */
    const char *io_backend;     /* "uring" or "pread" */
    /* Tiled layers (tiles.h; 0 / NULL otherwise): units per tile, whether
     * tile I/O bypassed the page cache, and every stream over the tiles this
     * process made (free() the array). */
    uint32_t tile_units;
    int tile_direct;
    struct ff_tile_pass_record *tile_passes;
    size_t tile_pass_count;
    uint32_t resumed_at_layer;  /* layer a resumed run started from */
    int resumed;
    int started_fresh;          /* --resume found no run.json and started a new run */
    int run_intact;             /* an error left a resumable run behind */
    /* Both read-outs (NaN when not computed): the accuracy of every-label
     * goodness and of the softmax head; test_accuracy is the one --eval chose. */
    double goodness_accuracy;
    double softmax_accuracy;
    double head_seconds;    /* training the softmax head (part of train_seconds) */
    uint64_t head_hash;     /* FNV-1a of the head's parameters (0 without a head) */
    ff_mem_stats_t memory;  /* the program's own accounting, at the end */
    uint64_t peak_rss_bytes;
    /* From the plan made before the run (fftrain fills them; 0: none): the
     * model's peak memory and disk, the budget, and the whole network's
     * weights and Adam moments, which an in-memory trainer holds at once. */
    uint64_t plan_memory_bytes, plan_disk_bytes, budget_bytes, state_bytes;
    /* Data parallel (fftrain fills them): the ranks and each one's peak
     * resident set (NULL for one process). */
    uint32_t ranks;
    uint64_t *rank_peak_rss; /* [ranks] */
} ff_result_t;

void ff_result_free(ff_result_t *res);

/* Forward-Forward with every layer and the next layer's inputs (2N x hidden
 * floats) in memory, progressive schedule. train must be standardised.
 * @return 0 or -1 with err. */
int ff_train_ffmem(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                   ff_result_t *res, ff_error_t *err);

/* Forward-Forward out of core: only the active layer in memory, its inputs
 * streamed from the activation cache in cfg->run_dir (see run.h). Resumes
 * when cfg->resume. train and test may be released by the trainer once the
 * first layer's caches are written (their memory is freed; the structs are
 * left zeroed except test labels kept internally).
 * @return 0 done, 1 stopped by ff_train_request_stop (resumable), -1 error. */
int ff_train_ffstream(const ff_config_t *cfg, ff_dataset_t *train, ff_dataset_t *test,
                      ff_result_t *res, ff_error_t *err);

/* Asks a running trainer to stop after its current step, save, and return 1
 * (async-signal-safe: main's SIGINT/SIGTERM handlers call it). */
void ff_train_request_stop(void);
int ff_train_stop_requested(void);

/* The data fingerprint a run records: both splits' raw bytes. */
uint64_t ff_train_data_fingerprint(const ff_dataset_t *train, const ff_dataset_t *test);

/* Recurrent Forward-Forward (ff-recurrent, see ffrec.h): every layer and
 * one batch's states of every layer in memory; cfg->epochs passes over the
 * data, 8 time steps per batch. train must be standardised.
 * @return 0 or -1 with err. */
int ff_train_ffrec(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                   ff_result_t *res, ff_error_t *err);

/* Backprop through the same body plus a linear head, softmax cross-entropy. */
int ff_train_bp(const ff_config_t *cfg, const ff_dataset_t *train, const ff_dataset_t *test,
                ff_result_t *res, ff_error_t *err);

/* Loads train and test splits per cfg, standardises both with the training
 * set's mean and std and shuffles the training images with the run's seed.
 * @return 0 or -1 with err. */
int ff_train_load_data(const ff_config_t *cfg, ff_dataset_t *train, ff_dataset_t *test,
                       ff_error_t *err);

#endif
