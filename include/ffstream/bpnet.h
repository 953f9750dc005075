/* bpnet.h: the backprop network: the FF body (L2 norm, Linear, ReLU per
 * layer) and a Linear head to 10 classes, with every layer's activations for
 * one batch kept for the backward pass, as autograd would keep them. */
#ifndef FFSTREAM_BPNET_H
#define FFSTREAM_BPNET_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/layer.h"

typedef struct {
    uint32_t layer_count; /* body layers */
    ff_layer_t *layers;   /* [layer_count + 1]: body, then the head */
    size_t max_rows;
    float *input;         /* [B, in0] batch images */
    float **xn;           /* per layer [B, in_l] normalised input */
    float **norms;        /* per layer [B] */
    float **y;            /* per layer [B, H] ReLU output = next input */
    float *logits, *dlogits; /* [B, 10] */
    float *dh, *dxn;      /* [B, max width] backward scratch */
} ff_bpnet_t;

/* Allocates layers body layers (in0 -> hidden -> ... -> hidden) and the head
 * (hidden -> 10), initialised from seed, with buffers for rows-row batches.
 * @return 0 or -1 with err. */
int ff_bpnet_alloc(ff_bpnet_t *net, uint32_t layers, size_t in0, size_t hidden, size_t rows,
                   uint64_t seed, ff_error_t *err);

void ff_bpnet_free(ff_bpnet_t *net);

/* Forward pass of the rows in net->input [rows, in0]; leaves net->logits. */
void ff_bpnet_forward(ff_bpnet_t *net, size_t rows);

/* Backward pass from net->dlogits [rows, 10] (set by the caller, e.g. with
 * ff_dense_softmax_xent); fills every layer's gradients. */
void ff_bpnet_backward(ff_bpnet_t *net, size_t rows);

#endif
