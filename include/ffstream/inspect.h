/* inspect.h: reading checkpoints for people and scripts (the library half of
 * ffinspect): per-tensor statistics, verification of one layer file or a
 * whole run directory, comparison of two files or runs, and export to
 * safetensors and .npy. Tensors are streamed a block at a time, so a run, or
 * a tiled layer (tilefile.h), larger than memory can be inspected, compared
 * and exported.
 *
 * safetensors output (the format of huggingface/safetensors):
 *   0    8   N, the JSON header's length in bytes (u64 little-endian)
 *   8    N   JSON: {"__metadata__": {"format": "pt", ...strings},
 *                   "layers.K.weight": {"dtype": "F32", "shape": [out, in],
 *                   "data_offsets": [begin, end]}, "layers.K.bias", ...}
 *            padded with spaces so the data start at a multiple of 8
 *   8+N  ... the tensors' float32 little-endian bytes, back to back in the
 *            order of the header; offsets count from byte 8+N
 * Weights keep PyTorch's nn.Linear layout [out, in]; with the optimizer the
 * Adam moments follow each layer as layers.K.adam_m.weight and so on.
 *
 * .npy output (NumPy format version 1.0): "\x93NUMPY", 1, 0, the header
 * length (u16 little-endian), the header "{'descr': '<f4', 'fortran_order':
 * False, 'shape': (out, in), }" padded with spaces and ending in '\n' so the
 * data start at a multiple of 64, then the data. */
#ifndef FFSTREAM_INSPECT_H
#define FFSTREAM_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/fileio.h"
#include "ffstream/layerfile.h"
#include "ffstream/run.h"


/* ---- tensors ---- */

/* Summary of a float32 tensor. NaN and infinities are counted, and left out
 * of the moments so that one bad value does not hide the rest. */
typedef struct {
    uint64_t count;   /* elements */
    uint64_t finite;  /* elements neither NaN nor infinite */
    double min, max;  /* over finite elements; NaN when there are none */
    double mean, std; /* population std (divides by finite); NaN when none */
    double l2_norm;   /* sqrt of the sum of squares of finite elements */
    uint64_t zeros;   /* elements equal to zero (either sign) */
    uint64_t nan_count, inf_count;
} ff_inspect_stats_t;

/* Statistics of count floats (double accumulation, two passes). */
void ff_inspect_stats(const float *data, size_t count, ff_inspect_stats_t *out);


/* One layer file: its header and every tensor's statistics or read error. */
typedef struct {
    ff_layerfile_info_t info;
    int readable[FF_LAYERFILE_MAX_TENSORS]; /* the tensor decoded and its checksum held */
    ff_inspect_stats_t stats[FF_LAYERFILE_MAX_TENSORS];
    char error[FF_LAYERFILE_MAX_TENSORS][FF_ERROR_MSG_MAX]; /* "" when readable */
} ff_inspect_file_t;

/* Reads path's header and then each tensor in turn (one in memory at a
 * time). A damaged tensor is recorded in readable/error, not returned.
 * @return 0, or -1 with err when the header cannot be read or memory runs
 * out. */
int ff_inspect_file_read(const char *path, ff_inspect_file_t *file, ff_error_t *err);

/* ---- runs ---- */

typedef enum {
    FF_INSPECT_TRAINED = 0, /* the checkpoint says every epoch is done */
    FF_INSPECT_IN_PROGRESS, /* the checkpoint exists, mid-layer */
    FF_INSPECT_PENDING,     /* no checkpoint, and the run has not reached the layer */
    FF_INSPECT_MISSING,     /* no checkpoint, but run.json says the layer was trained */
    FF_INSPECT_UNREADABLE,  /* a file is there but its header cannot be read */
} ff_inspect_status_t;

/* @return "trained", "in progress", "pending", "missing" or "unreadable". */
const char *ff_inspect_status_name(ff_inspect_status_t status);

typedef struct {
    uint32_t index;
    char path[FF_PATH_MAX]; /* RUN/layers/NNN.ffl */
    ff_inspect_status_t status;
    int has_info; /* info holds the header (trained or in progress) */
    ff_layerfile_info_t info;
    char error[FF_ERROR_MSG_MAX];     /* why the header is unreadable, else "" */
    uint64_t raw_bytes, stored_bytes; /* over every tensor of the file */
} ff_inspect_run_layer_t;

typedef struct {
    char dir[FF_PATH_MAX];
    ff_run_state_t state;           /* run.json */
    ff_inspect_run_layer_t *layers; /* [state.config.layers] */
    /* Disk use: bytes allocated to the files of layers/, of cache/, and the
     * rest (run.json, result.json). */
    uint64_t disk_layers, disk_caches, disk_other;
} ff_inspect_run_t;

/* Reads dir/run.json and every layer's header (not the payloads).
 * @return 0, or -1 with err when run.json cannot be read or memory runs
 * out. */
int ff_inspect_run_open(ff_inspect_run_t *run, const char *dir, ff_error_t *err);

/* Frees what ff_inspect_run_open allocated; a zeroed run is a no-op. */
void ff_inspect_run_free(ff_inspect_run_t *run);

/* @return how many layers from layer 0 on have a readable checkpoint (what
 * an export of the run can hold). */
uint32_t ff_inspect_run_present_layers(const ff_inspect_run_t *run);

/* ---- verification ---- */

typedef enum {
    FF_INSPECT_PROBLEM_FILE = 0, /* the file itself is damaged: header, checksum, codec */
    FF_INSPECT_PROBLEM_RUN,      /* the run does not fit together: missing layer, shapes */
} ff_inspect_problem_kind_t;

typedef struct {
    ff_inspect_problem_kind_t kind;
    char file[FF_PATH_MAX]; /* the file at fault */
    int64_t layer;                  /* its layer index, or -1 */
    char tensor[32];                /* the tensor at fault, or "" for the whole file */
    char message[FF_ERROR_MSG_MAX]; /* the whole story, naming the file */
} ff_inspect_problem_t;

typedef struct {
    ff_inspect_problem_t *problems;
    size_t count, capacity;
    size_t files_checked, tensors_checked;
    uint32_t pending_layers; /* layers a run has not reached yet (not a fault) */
} ff_inspect_report_t;

/* Frees the problem list; a zeroed report is a no-op. */
void ff_inspect_report_free(ff_inspect_report_t *report);

/* Checks one layer file: its header (every field, as the reader does) and
 * every tensor's checksum and decoded size, going on past a bad tensor so
 * each one is named. layer is the run's index of the file, recorded with
 * its problems (-1 outside a run; ff_inspect_verify_run checks the header's
 * index against it). Problems are appended to report. @return 0 when the checks ran
 * (sound or not: see report->count), or -1 with err when out of memory. */
int ff_inspect_verify_file(const char *path, int64_t layer, ff_inspect_report_t *report,
                           ff_error_t *err);

/* Checks a whole run: run.json readable; every layer the run has reached
 * present, complete when run.json says trained, with its own index, the
 * run's fingerprints and epochs; shapes chaining (layer k's in is layer
 * k-1's out, every out is the run's hidden width); no checkpoint beyond the
 * run's layers; and every file as ff_inspect_verify_file does.
 * @return 0 when the checks ran, or -1 with err when out of memory. */
int ff_inspect_verify_run(const char *dir, ff_inspect_report_t *report, ff_error_t *err);

/* ---- comparison ---- */

typedef struct {
    char name[32];
    int in_a, in_b; /* the tensor is in each file */
    uint32_t ndim;
    uint64_t shape_a[2], shape_b[2];
    int shapes_equal;
    int identical;           /* bit for bit */
    uint64_t count;          /* elements compared */
    uint64_t differing;      /* elements whose bits differ */
    uint64_t nan_mismatches; /* differing elements where one side is NaN */
    double max_abs;          /* max |a - b| over the other differing elements */
    double max_rel;          /* max |a - b| / max(|a|, FLT_MIN) over the same */
    double max_mag;          /* max |a| over every element: the tensor's scale */
} ff_inspect_tensor_diff_t;

typedef struct {
    char a[FF_PATH_MAX], b[FF_PATH_MAX];
    int readable; /* both files read; else error says why */
    char error[FF_ERROR_MSG_MAX];
    int headers_identical; /* preamble and JSON header byte for byte */
    int shapes_equal;      /* same in, out and tensor shapes */
    int identical;         /* the same tensors, each bit for bit */
    uint32_t tensor_count; /* the union of both files' tensors */
    ff_inspect_tensor_diff_t tensors[FF_LAYERFILE_MAX_TENSORS];
} ff_inspect_file_diff_t;

/* Compares two layer files tensor by tensor, whole-tensor (version 2) or
 * tiled (version 3) in any pairing: both tensors stream at once, b's on a
 * second thread handing blocks to this one through a fixed ring, so memory
 * does not grow with the layer. A tensor with nothing to compare it with
 * (in one file only, or of another shape) is still read and checked.
 * @return 0 with out->readable = 1, or -1 with err (and out->error, the
 * tensor figures zeroed) naming the file when a file cannot be read or a
 * tensor is damaged. */
int ff_inspect_diff_files(const char *a, const char *b, ff_inspect_file_diff_t *out,
                          ff_error_t *err);

typedef struct {
    ff_run_state_t a, b;            /* both run.json */
    uint32_t layer_count;           /* layers compared: 0 when the counts differ */
    ff_inspect_file_diff_t *layers; /* [layer_count] */
    uint32_t unreadable;            /* layers that could not be compared */
    int identical;                  /* same layer count, every layer identical */
    char message[FF_ERROR_MSG_MAX]; /* why the runs cannot be compared layer by layer, or "" */
} ff_inspect_run_diff_t;

/* Compares two runs layer by layer. A layer that is missing or damaged in
 * either run is recorded (readable = 0) and counts as a difference.
 * @return 0, or -1 with err when a run.json cannot be read or memory runs
 * out. */
int ff_inspect_diff_runs(const char *a, const char *b, ff_inspect_run_diff_t *out, ff_error_t *err);

void ff_inspect_run_diff_free(ff_inspect_run_diff_t *diff);

/* ---- export ---- */

typedef struct {
    size_t tensors; /* tensors written */
    uint64_t bytes; /* bytes written (all files) */
} ff_inspect_export_t;

typedef struct {
    int with_optimizer;    /* add the Adam moments (every file must have them) */
    int force;             /* replace an existing output (else refused) */
    const uint32_t *names; /* [count] the layer index file i must hold and is named by (a
                              run's: 0, 1, ...); NULL: each header's own, distinct */
} ff_inspect_export_options_t;

/* Writes the layer files paths[0..count) to one safetensors file at
 * out_path, all or nothing (the atomic writer), streaming each tensor.
 * Every source is checked whole before anything is written: a damaged one
 * is an error. with_optimizer adds each layer's Adam step as metadata.
 * @return 0 with *result filled (result may be NULL), or -1 with err naming
 * the file and tensor. */
int ff_inspect_export_safetensors(const char *out_path, const char *const *paths, size_t count,
                                  const ff_inspect_export_options_t *opt,
                                  ff_inspect_export_t *result, ff_error_t *err);

/* Writes one .npy file (format 1.0, '<f4', C order) of ndim (1 or 2)
 * dimensions, atomically. @return 0 or -1 with err. */
int ff_inspect_write_npy(const char *path, const float *data, uint32_t ndim, const uint64_t *shape,
                         ff_error_t *err);

/* Writes every tensor of paths[0..count) as dir/layers.K.NAME.npy, all or
 * nothing: into a new directory beside dir that takes dir's name once
 * complete (an existing dir only with opt->force). @return 0 with *result
 * filled (may be NULL), or -1 with err. */
int ff_inspect_export_npy(const char *dir, const char *const *paths, size_t count,
                          const ff_inspect_export_options_t *opt, ff_inspect_export_t *result,
                          ff_error_t *err);

#endif
