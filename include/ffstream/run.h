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
/* run.json's format version; a run of another version is refused on resume
 * with both versions named. */
#define FF_RUN_VERSION 2u

typedef struct {
    ff_config_t config;    /* the run's configuration (mode and layers included) */
    uint64_t config_fingerprint;
    uint64_t data_fingerprint;
    uint64_t train_samples, test_samples;
    uint32_t cache_layer;  /* FF_RUN_NO_CACHE before layer 0's caches exist */
    uint64_t weights_hash; /* FNV-1a of the parameters of layers < hashed_layers */
    uint32_t hashed_layers;
    int finished;
} ff_run_state_t;

/* RUN/<name>, RUN/layers/NNN.ffl and RUN/cache/KIND-NNN.SUFFIX into out
 * (FF_PATH_MAX bytes). @return 0 or -1 with err when too long. */
int ff_run_path(char *out, const char *dir, const char *name, ff_error_t *err);
int ff_run_layer_path(char *out, const char *dir, uint32_t index, ff_error_t *err);
int ff_run_cache_path(char *out, const char *dir, const char *kind, uint32_t index,
                      const char *suffix, ff_error_t *err);

/* Creates RUN, RUN/layers and RUN/cache (mkdir -p). @return 0 or -1. */
int ff_run_make_dirs(const char *dir, ff_error_t *err);

/* The state of a new run of cfg on data with this fingerprint and these
 * counts: no cache yet, nothing hashed, not finished. */
void ff_run_state_init(ff_run_state_t *state, const ff_config_t *cfg, uint64_t data_fingerprint,
                       uint64_t train_samples, uint64_t test_samples);

/* Writes RUN/run.json atomically, with each layer's status derived from the
 * checkpoints on disk. @return 0 or -1 with err. */
int ff_run_write(const char *dir, const ff_run_state_t *state, ff_error_t *err);

/* Reads and validates RUN/run.json strictly: its checksum, every field's
 * range, no unknown field, a known format version. @return 0, or -1 with err
 * naming the file and the field; *missing is set when the file does not
 * exist. */
int ff_run_read(const char *dir, ff_run_state_t *state, int *missing, ff_error_t *err);

/* Parses and validates size bytes of run.json text (path names it in
 * messages); check_checksum 0 skips only the checksum (the fuzz target, so
 * every field's validation is reached). @return 0 or -1 with err. */
int ff_run_parse(const char *path, const char *text, size_t size, int check_checksum,
                 ff_run_state_t *state, ff_error_t *err);

/* Compares a saved run with the flags and data of a resume: refuses, naming
 * the first flag that differs, or the data. @return 0 or -1 with err. */
int ff_run_check_resume(const ff_run_state_t *saved, const ff_config_t *cfg,
                        uint64_t data_fingerprint, ff_error_t *err);

/* Removes leftover temporary files (NAME.tmp.HEX) of a killed run. */
void ff_run_remove_temporaries(const char *dir);

#endif
