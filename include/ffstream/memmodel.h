/* memmodel.h: the analytic memory model of each trainer: the bytes its own
 * buffers need at their peak, from the shapes alone. The profiler draws it
 * next to the measured peaks; ff-stream reports its working set from it.
 *
 * Per layer of P = in*out + out parameters, training holds the weights,
 * their gradients and Adam's two moments: 4P floats.
 *   ff-stream: 4P of the widest layer + batch and chunk buffers + the final
 *              checkpoint's encoding buffer; the dataset only while the
 *              first layer's caches are written; the head's features one
 *              chunk at a time. Independent of depth.
 *   ff-mem:    4P of every layer + the cached inputs of the next layer for
 *              every training row (2 N H floats, twice during a pass) +
 *              the batch + the dataset; the head's features of every
 *              training image at the end.
 *   ff-recurrent: 4P of every layer and the read-out + two generations of
 *              every layer's states for one batch (2 L B H floats) + the
 *              batch's input buffers + the dataset. No activation cache.
 *   bp:        4P of every layer and the head + every layer's activations
 *              for one batch + the dataset. */
#ifndef FFSTREAM_MEMMODEL_H
#define FFSTREAM_MEMMODEL_H

#include <stdint.h>

#include "ffstream/config.h"

typedef struct {
    uint64_t weights;     /* parameters of the layers in memory (and the head's in "head") */
    uint64_t gradients;
    uint64_t optimizer;   /* Adam's two moments */
    uint64_t parameters;  /* weights + gradients + optimizer */
    uint64_t activations; /* batch buffers, activation caches held in RAM, scores */
    uint64_t io;          /* chunk buffers and the checkpoint encoding buffer */
    uint64_t dataset;     /* images and labels in memory at the peak */
    uint64_t head;        /* the softmax head: its parameters, features and scratch */
    uint64_t total;       /* the peak: the sum of the above in the phase that peaks */
    const char *phase;    /* that phase: "training", "passes", "head", "loading" */
} ff_memmodel_t;

/* The model for cfg's mode and shapes with `train` training and `test` test
 * images of `pixels` pixels each: the bytes ff_mem_alloc holds at the peak,
 * by category (what the trainers account; the small bookkeeping of
 * FF_MEM_OTHER is left out). */
ff_memmodel_t ff_memmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                          uint64_t test);

/* Parameters (weights and biases) of the whole network cfg describes: the
 * FF layers, or for bp the body and the head. */
uint64_t ff_memmodel_network_parameters(const ff_config_t *cfg, uint64_t pixels);

/* Memory the process needs beyond its own buffers: code, the C library,
 * the BLAS threads' buffers, pages of files in the middle of being
 * written. A budget must hold the model plus this. */
#define FF_MEMMODEL_RESERVE ((uint64_t)32 << 20)

/* The disk a run needs (ff-stream; ff-mem's saved layers): the bytes of
 * each kind at the layer where the run's disk use peaks. */
typedef struct {
    uint64_t caches;      /* activation caches at the peak (a layer's inputs and outputs) */
    uint64_t kept;        /* neutral caches kept for the softmax head */
    uint64_t checkpoints; /* checkpoints at the peak (finished layers', the current one's) */
    uint64_t transient;   /* an epoch's checkpoint while its successor is written */
    uint64_t other;       /* run.json, result.json, scores */
    uint64_t total;       /* the peak: the sum of the above at the layer that peaks */
    uint64_t final_checkpoints; /* every layer's checkpoint when the run is done */
    int exact;            /* 1 when checkpoints are stored raw (sizes exact), 0 when
                             compressed (then an upper bound) */
} ff_diskmodel_t;

ff_diskmodel_t ff_diskmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                            uint64_t test);

/* Fits cfg to a memory budget (bytes, 0 for none): ff-stream gets the
 * largest training chunk (--piece-images, a divisor of the batch's images)
 * and evaluation chunk (--eval-images) not set by hand whose model fits
 * budget - FF_MEMMODEL_RESERVE; the other modes only have to fit. budget_from
 * names where the budget came from, for messages. @return 0, or -1 with err
 * naming the smallest budget that would do and the flag that would help. */
int ff_memmodel_fit(ff_config_t *cfg, uint64_t pixels, uint64_t train, uint64_t test,
                    uint64_t budget, const char *budget_from, ff_error_t *err);

#endif
