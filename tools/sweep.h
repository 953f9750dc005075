/* sweep.h: the parts of ffprofile that decide rather than run: the modes
 * and depths of a sweep (parsed and bounded), the resume check of a results
 * file against the sweep's configuration, the records a resumed sweep keeps,
 * and the time left. Kept apart from ffprofile.c so tests call them
 * directly; nothing here prints. */
#ifndef FFSTREAM_TOOLS_SWEEP_H
#define FFSTREAM_TOOLS_SWEEP_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "ffstream/config.h"
#include "ffstream/error.h"

/* Who runs a cell: fftrain, or the PyTorch reference (ff_torch.py). */
typedef enum { SWEEP_FFTRAIN, SWEEP_TORCH } sweep_runner_t;

typedef struct {
    const char *name;       /* as in --modes and the results: "ff-mem", "torch-bp" */
    sweep_runner_t runner;
    ff_mode_t ff_mode;      /* fftrain's mode; for torch, the trainer of the same network */
    const char *torch_mode; /* ff_torch.py's --mode ("ff", "bp"); NULL for fftrain */
} sweep_mode_t;

/* Every mode a sweep can hold, in --help order. */
#define SWEEP_MODE_COUNT 6
extern const sweep_mode_t sweep_modes[SWEEP_MODE_COUNT];

/* The most depths one sweep may hold. */
#define SWEEP_MAX_DEPTHS 256

/* Parses "ff-mem,bp" into modes (SWEEP_MODE_COUNT entries). A name listed
 * twice, an unknown name or an empty list is refused with err naming
 * --modes. */
int sweep_parse_modes(const char *text, const sweep_mode_t **modes, int *count, ff_error_t *err);

/* Parses "A:B:S" (A, A+S, ... up to B) or "a,b,c" into depths
 * (SWEEP_MAX_DEPTHS entries). Every number must be a whole number in
 * 1..FF_MAX_LAYERS (so no step or end can wrap around), a range must not be
 * empty, a depth may not be listed twice, and a sweep of more than
 * SWEEP_MAX_DEPTHS depths is refused, never cut; err names --layers. */
int sweep_parse_depths(const char *text, uint32_t *depths, int *count, ff_error_t *err);

/* The settings of a results file's "config" that must agree for a resume,
 * in the order they are compared: JSON key and the flag that sets it. */
typedef struct {
    const char *key, *flag;
} sweep_setting_t;
extern const sweep_setting_t sweep_settings[];

/* Compares the saved "config" of path with the sweep's own, setting by
 * setting. @return 0 when they agree, else -1 with err naming the first
 * setting that differs, its value in the file and now. */
int sweep_compare_config(const cJSON *saved, const cJSON *now, const char *path, ff_error_t *err);

/* Checks the "runs" array of a results file: every record an object with a
 * string "mode", a whole "layers" and a string "status". @return 0 or -1
 * with err naming path and the record. */
int sweep_check_runs(const cJSON *runs, const char *path, ff_error_t *err);

/* Whether a record's cell is done for good: status "ok" or "oom-killed"
 * (a failed cell is run again on resume). */
int sweep_record_done(const cJSON *record);

/* The first record of runs for (mode, depth) that is done for good, or NULL. */
cJSON *sweep_find_done(const cJSON *runs, const char *mode, uint32_t depth);

/* A cell still to run. */
typedef struct {
    const char *mode;
    uint32_t depth;
} sweep_cell_t;

/* Seconds the cells left should take, predicted from the records of runs
 * that finished ok: a cell of depth d takes d x the seconds per layer of
 * the finished cells of its mode (their wall seconds over their depths),
 * or of every mode when none of its own has finished. @return the
 * seconds, or -1 when nothing has finished yet. */
double sweep_eta(const cJSON *runs, const sweep_cell_t *left, size_t n_left);

/* A duration for people: "42s", "3m07s", "2h05m". Negative: "unknown". */
void sweep_format_duration(double seconds, char *out, size_t cap);

#endif
