/* memmodel.h: the analytic memory model of each trainer: the bytes its own
 * buffers need at their peak, from the shapes alone. The profiler draws it
 * next to the measured peaks; ff-stream reports its working set from it.
 *
 * Per layer of P = in*out + out parameters, training holds the weights,
 * their gradients and Adam's two moments: 4P floats.
 *   ff-stream: 4P of the widest layer + batch and chunk buffers + the final
 *              checkpoint's encoding buffer; the dataset only while the
 *              first layer's caches are written. Independent of depth.
 *   ff-mem:    4P of every layer + the cached inputs of the next layer for
 *              every training row (2 N H floats, twice during a pass) +
 *              the batch + the dataset.
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
    uint64_t parameters;  /* weights, gradients and Adam moments */
    uint64_t activations; /* batch buffers and activation caches */
    uint64_t io;          /* chunk and checkpoint buffers */
    uint64_t dataset;     /* images and labels in memory at the peak */
    uint64_t total;       /* the peak the model predicts */
} ff_memmodel_t;

/* The model for cfg's mode and shapes with `train` training and `test` test
 * images of `pixels` pixels each. */
ff_memmodel_t ff_memmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                          uint64_t test);

/* Parameters (weights and biases) of the whole network cfg describes: the
 * FF layers, or for bp the body and the head. */
uint64_t ff_memmodel_network_parameters(const ff_config_t *cfg, uint64_t pixels);

#endif
