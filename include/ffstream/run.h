/* run.h: the run directory of a streamed (or saved) training run.
 *
 *   RUN/run.json              configuration, fingerprints, progress; rewritten
 *                             atomically at every phase change
 *   RUN/layers/NNN.ffl        one checkpoint per layer (layerfile.h)
 *   RUN/cache/train-NNN.cache inputs of layer NNN for every training row
 *   RUN/cache/test-NNN.cache  inputs of layer NNN for every test image x label
 *   RUN/cache/scores-NNN.f32  evaluation scores summed over layers < NNN
 *   RUN/result.json           the final result (same fields as --json)
 *
 * run.json's "cache_layer" k says: the training and test caches of layer k
 * and scores-k are complete. Everything a resumed run needs follows from it
 * and from layer k's checkpoint. */
#ifndef FFSTREAM_RUN_H
#define FFSTREAM_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/error.h"

#define FF_RUN_NO_CACHE UINT32_MAX

typedef struct {
    char mode[16];
    uint64_t config_fingerprint;
    uint64_t data_fingerprint;
    uint64_t train_samples, test_samples;
    uint32_t layers;
    uint32_t cache_layer;  /* FF_RUN_NO_CACHE before layer 0's caches exist */
    uint64_t weights_hash; /* FNV-1a of the parameters of layers < hashed_layers */
    uint32_t hashed_layers;
    int finished;
    ff_config_t config;    /* as saved (for messages and ffinspect) */
} ff_run_state_t;

/* Formats RUN/<name> into out. @return 0 or -1 when it does not fit. */
int ff_run_path(char *out, size_t cap, const char *dir, const char *name);

/* RUN/layers/NNN.ffl and friends for layer index. */
int ff_run_layer_path(char *out, size_t cap, const char *dir, uint32_t index);
int ff_run_cache_path(char *out, size_t cap, const char *dir, const char *kind, uint32_t index,
                      const char *suffix);

/* Creates RUN, RUN/layers and RUN/cache (mkdir -p). @return 0 or -1. */
int ff_run_make_dirs(const char *dir, ff_error_t *err);

/* The state of a new run of cfg on data with this fingerprint and these
 * counts: no cache yet, nothing hashed, not finished. */
void ff_run_state_init(ff_run_state_t *state, const ff_config_t *cfg, uint64_t data_fingerprint,
                       uint64_t train_samples, uint64_t test_samples);

/* Writes RUN/run.json atomically, with each layer's status derived from the
 * checkpoints on disk. @return 0 or -1 with err. */
int ff_run_write(const char *dir, const ff_run_state_t *state, ff_error_t *err);

/* Reads and validates RUN/run.json. @return 0, or -1 with err naming the
 * file and the field; *missing is set when the file does not exist. */
int ff_run_read(const char *dir, ff_run_state_t *state, int *missing, ff_error_t *err);

/* Compares a saved run with the flags and data of a resume: refuses, naming
 * the first flag that differs, or the data. @return 0 or -1 with err. */
int ff_run_check_resume(const ff_run_state_t *saved, const ff_config_t *cfg,
                        uint64_t data_fingerprint, ff_error_t *err);

/* Removes leftover temporary files (NAME.tmp.PID) of a killed run. */
void ff_run_remove_temporaries(const char *dir);

#endif
