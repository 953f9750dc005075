/* config.h: the training configuration shared by every trainer, and the
 * command-line parser of fftrain that fills it. Parsing validates every flag
 * before any work starts. */
#ifndef FFSTREAM_CONFIG_H
#define FFSTREAM_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/error.h"
#include "ffstream/step.h"

typedef enum {
    FF_MODE_FF_MEM = 0,    /* Forward-Forward, every layer and the activation cache in RAM */
    FF_MODE_BP = 1,        /* backprop baseline with the same body */
    FF_MODE_FF_STREAM = 2, /* Forward-Forward, one layer in RAM, activations on disk */
    FF_MODE_FF_RECURRENT = 3, /* recurrent FF (Hinton's top-down network), all in RAM */
    FF_MODE_COUNT
} ff_mode_t;

typedef struct {
    ff_mode_t mode;
    char data_dir[4096];
    uint32_t layers;       /* hidden layers */
    uint32_t hidden;       /* units per hidden layer */
    uint32_t epochs;       /* FF: epochs per layer; bp: epochs of the whole net */
    uint32_t batch;        /* rows per optimiser step (FF: half positive, half negative) */
    double lr;
    double theta;          /* FF goodness threshold */
    uint64_t seed;
    uint64_t train_limit;  /* 0 = all */
    uint64_t test_limit;   /* 0 = all */
    int threads;           /* BLAS threads */
    ff_label_mode_t label;
    ff_goodness_t goodness;
    char json_path[4096];  /* "" = none */
    char run_dir[4096];    /* "" = none; required by ff-stream */
    int resume;            /* continue the run in run_dir */
    int io_backend;        /* ff_aio_backend_t: auto, uring or pread */
    int quiet;
    int progress;          /* 1 force on, 0 off, -1 when stderr is a terminal */
    /* Recipe options (issue 7). Each flows into the shared step, data and
     * evaluation code, so ff-mem and ff-stream compute the same thing. */
    char recipe[16];       /* the --recipe preset applied first ("original") */
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
} ff_config_t;

/* The defaults of the original experiment (hidden 2000, batch 5000, ...). */
void ff_config_defaults(ff_config_t *cfg);

/* Applies the preset `name` ("original" or "best") to cfg.
 * @return 0 or -1 with err naming the presets. */
int ff_config_apply_recipe(ff_config_t *cfg, const char *name, ff_error_t *err);

/* The threshold of a layer with `units` outputs (theta, or theta x units). */
float ff_config_layer_theta(const ff_config_t *cfg, uint32_t units);

/* @return "softplus", "linear", "probabilistic" or "symba". */
const char *ff_loss_name(ff_loss_t loss);

/* A hash of every setting that changes the numbers a run produces (not
 * the mode, paths, I/O backend or verbosity): runs with equal fingerprints
 * and equal data give bit-identical weights. */
uint64_t ff_config_fingerprint(const ff_config_t *cfg);

/* @return "ff-mem", "bp", ... */
const char *ff_mode_name(ff_mode_t mode);
const char *ff_label_name(ff_label_mode_t mode);

/* Parses fftrain's command line into cfg (which holds defaults on entry).
 * @return 0 to run, 1 when --help was asked, -1 with err on a bad flag. */
int ff_config_parse(ff_config_t *cfg, int argc, char **argv, ff_error_t *err);

/* Checks the flags against the data actually loaded (batch vs images).
 * @return 0 or -1 with err. */
int ff_config_check_data(const ff_config_t *cfg, uint64_t train_count, ff_error_t *err);

void ff_config_usage(FILE *out);

#endif
