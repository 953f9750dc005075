/* config.h: the training configuration and the one table of fftrain's
 * options that everything about an option is generated from: the parser,
 * --help, the configuration fingerprint, the configuration in run.json and
 * in the result JSON, the resume check and ffinspect's configuration view.
 * Adding an option is a member of ff_config_t and a row of the table. */
#ifndef FFSTREAM_CONFIG_H
#define FFSTREAM_CONFIG_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/error.h"
#include "ffstream/fileio.h"
#include "ffstream/step.h"

typedef enum {
    FF_MODE_FF_MEM = 0,    /* Forward-Forward, every layer and the activation cache in RAM */
    FF_MODE_BP = 1,        /* backprop baseline with the same body */
    FF_MODE_FF_STREAM = 2, /* Forward-Forward, one layer in RAM, activations on disk */
    FF_MODE_FF_RECURRENT = 3, /* recurrent FF (Hinton's top-down network), all in RAM */
    FF_MODE_COUNT
} ff_mode_t;

typedef enum { FF_RECIPE_ORIGINAL = 0, FF_RECIPE_BEST = 1 } ff_recipe_t;

/* The most hidden layers a network may have (--layers). */
#define FF_MAX_LAYERS 4096

/* Every value is range-checked by the parser, so trainers can assume a sane
 * configuration. Members typed with an enum hold that enum's values. */
typedef struct {
    ff_mode_t mode;
    char data_dir[FF_PATH_MAX];
    uint32_t layers;       /* hidden layers */
    uint32_t hidden;       /* units per hidden layer */
    uint32_t epochs;       /* FF: epochs per layer; bp: epochs of the whole net */
    uint32_t batch;        /* rows per optimiser step (FF: half positive, half negative) */
    double lr;
    double theta;          /* FF goodness threshold */
    uint64_t seed;
    uint64_t train_limit;  /* 0 = all */
    uint64_t test_limit;   /* 0 = all */
    uint32_t threads;      /* BLAS threads */
    ff_label_mode_t label;
    ff_goodness_t goodness;
    char json_path[FF_PATH_MAX]; /* "" = none */
    char run_dir[FF_PATH_MAX];   /* "" = none; required by ff-stream */
    int resume;            /* continue the run in run_dir */
    int io_backend;        /* ff_aio_backend_t: auto, uring or pread */
    int quiet;
    int progress;          /* 1 force on, 0 off, -1 when stderr is a terminal */
    /* Recipe options: each flows into the shared step, data and evaluation
     * code, so ff-mem and ff-stream compute the same thing. */
    ff_recipe_t recipe;    /* the --recipe preset applied first */
    double label_scale;    /* multiplies the label value of every embedded row */
    ff_loss_t loss;        /* the layers' local loss */
    double symba_alpha;    /* symba's scale of g_pos - g_neg */
    int theta_per_unit;    /* threshold = theta x units of the layer */
    ff_lr_schedule_t lr_schedule;
    double lr_decay_start; /* fraction of a layer's steps before linear decay starts */
    double weight_decay;   /* Adam's L2 coefficient (layers and head) */
    uint32_t jitter;       /* max +-pixel shift of the first layer's training rows */
    int eval_softmax;      /* accuracy from the softmax head (else every-label goodness) */
    int score_all_layers;  /* goodness score and head use every layer, not layers 2..N */
    uint32_t head_epochs;  /* epochs of the softmax head */
    double head_lr;        /* Adam learning rate of the softmax head */
    int fresh_negatives;   /* the first layer draws new wrong labels every epoch */
    int fused_pass;        /* a layer's last training epoch writes the next layer's inputs */
    /* Memory and disk. */
    uint64_t mem_budget;   /* bytes; FF_BUDGET_AUTO: the cgroup's limit; 0: none */
    uint32_t piece_images; /* images per training chunk (a batch is summed over its
                              chunks); 0: chosen (batch/2 unless the budget needs fewer) */
    uint32_t eval_images;  /* images per evaluation chunk; 0: chosen (batch/10 or fewer) */
    uint32_t tile_units;   /* output units per tile of a tiled layer; 0 or >= hidden: whole
                              layers (set from --mem-budget when it needs tiles) */
    int keep_optimizer;    /* ff_keep_t: Adam moments kept in every checkpoint, or the last's */
    int checkpoint_codec;  /* ff_codec_t of checkpoints */
    int plan;              /* print the memory and disk plan and stop */
    int ignore_disk_space; /* start even when the filesystem has less free space than planned */
} ff_config_t;

/* --mem-budget auto: the limit of the cgroup the process runs in. */
#define FF_BUDGET_AUTO UINT64_MAX

typedef enum { FF_KEEP_ALL = 0, FF_KEEP_LAST = 1 } ff_keep_t;

/* What an option's value is. */
typedef enum {
    FF_OPT_SWITCH, /* no value: sets an int to 1 */
    FF_OPT_U32,    /* whole number in [min, max] */
    FF_OPT_U64,    /* whole number in [min, max], written in JSON as a decimal string */
    FF_OPT_NUMBER, /* finite double in [min, max] ((min, max] when min_exclusive) */
    FF_OPT_CHOICE, /* one of `choices`, stored as its index in an int-sized member */
    FF_OPT_PATH,   /* a path of fewer than FF_PATH_MAX bytes */
    FF_OPT_SIZE,   /* bytes with an optional unit (K, M, G, T), "auto" or "none" (uint64_t) */
} ff_option_kind_t;

enum {
    FF_OPT_FINGERPRINT = 1u << 0, /* changes the numbers a run produces: hashed, checked on resume */
    FF_OPT_RECORDED = 1u << 1,    /* written with a run: run.json and the result JSON */
    FF_OPT_PRESET = 1u << 2,      /* set by every --recipe preset (to its default or the preset's value) */
};

typedef struct {
    const char *flag;     /* "--lr" */
    const char *key;      /* JSON key: the flag without dashes, '-' as '_' */
    ff_option_kind_t kind;
    size_t offset;        /* of the member in ff_config_t */
    double min, max;      /* numbers */
    int min_exclusive;
    const char *const *choices; /* FF_OPT_CHOICE: names by value, NULL-terminated */
    const char *fallback; /* the default as typed on the command line; NULL: computed */
    unsigned flags;
    const char *value_name; /* in --help: "N", "X", "DIR" ... */
    const char *help;
} ff_option_t;

/* The table. @return its rows; *count receives their number. */
const ff_option_t *ff_options(size_t *count);

/* The option with this flag ("--lr") or JSON key ("lr"), or NULL. */
const ff_option_t *ff_option_find(const char *flag_or_key);

/* Parses text as o's value into cfg. @return 0 or -1 with err naming the
 * flag, the text and what was expected. */
int ff_config_set(ff_config_t *cfg, const ff_option_t *o, const char *text, ff_error_t *err);

/* o's value in cfg in its canonical spelling (what the parser reads back
 * to the same value: %.17g for numbers, the choice's name). */
void ff_config_format(const ff_config_t *cfg, const ff_option_t *o, char *out, size_t cap);

/* The defaults: the original experiment (hidden 2000, batch 5000, ...). */
void ff_config_defaults(ff_config_t *cfg);

/* Applies a preset ("original" or "best") to cfg. @return 0 or -1 with err
 * naming the presets. */
int ff_config_apply_recipe(ff_config_t *cfg, const char *name, ff_error_t *err);

/* Parses fftrain's command line into cfg (which holds defaults on entry).
 * @return 0 to run, 1 when --help was asked, -1 with err on a bad flag. */
int ff_config_parse(ff_config_t *cfg, int argc, char **argv, ff_error_t *err);

/* Checks the flags against the data actually loaded (batch vs images).
 * @return 0 or -1 with err. */
int ff_config_check_data(const ff_config_t *cfg, uint64_t train_count, ff_error_t *err);

void ff_config_usage(FILE *out);

/* A hash of every FF_OPT_FINGERPRINT option (key and canonical value): runs with equal fingerprints
 * and equal data give bit-identical weights. */
uint64_t ff_config_fingerprint(const ff_config_t *cfg);

/* Adds every FF_OPT_RECORDED option to obj under its key. @return 0 or -1
 * when out of memory. */
int ff_config_to_json(const ff_config_t *cfg, cJSON *obj);

/* Reads the recorded options from obj (as ff_config_to_json wrote them)
 * into cfg, strictly: every one present, no unknown key, every value in
 * range. @return 0 or -1 with err naming path, the key and what was
 * expected. */
int ff_config_from_json(ff_config_t *cfg, const cJSON *obj, const char *path, ff_error_t *err);

/* The first fingerprinted option whose value differs between a saved run
 * and a resume: "cannot resume: --lr was 0.01 in this run, now 0.02 ...".
 * @return 0 when none differs, or -1 with err. */
int ff_config_compare(const ff_config_t *saved, const ff_config_t *now, ff_error_t *err);

/* The threshold of a layer with `units` outputs (theta, or theta x units). */
float ff_config_layer_theta(const ff_config_t *cfg, uint32_t units);

/* Images per chunk of evaluation work (each gives 10 candidate rows):
 * --eval-images, else batch/10, at least 1, at most the test images there
 * are. */
size_t ff_config_eval_images(const ff_config_t *cfg, uint64_t test_images);

/* @return "ff-mem", "bp", ... */
/* Output units per tile when layers are tiled (tiles.h), else 0. */
uint32_t ff_config_tile_units(const ff_config_t *cfg);

/* Images per training chunk: --piece-images, else the whole batch (batch/2). */
size_t ff_config_piece_images(const ff_config_t *cfg);

const char *ff_mode_name(ff_mode_t mode);
const char *ff_label_name(ff_label_mode_t mode);
const char *ff_loss_name(ff_loss_t loss);

#endif
