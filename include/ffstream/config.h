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

typedef enum {
    FF_MODE_FF_MEM = 0,    /* Forward-Forward, every layer and the activation cache in RAM */
    FF_MODE_BP = 1,        /* backprop baseline with the same body */
    FF_MODE_FF_STREAM = 2, /* Forward-Forward, one layer in RAM, activations on disk */
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
} ff_config_t;

/* The defaults of the original experiment (hidden 2000, batch 5000, ...). */
void ff_config_defaults(ff_config_t *cfg);

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
