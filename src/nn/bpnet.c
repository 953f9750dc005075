/* bpnet.c: forward and backward passes of the backprop network. */
#include "ffstream/bpnet.h"

#include <stdlib.h>
#include <string.h>

#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/memstat.h"


void ff_bpnet_free(ff_bpnet_t *net) {
    if (net->layers != NULL)
        for (uint32_t l = 0; l <= net->layer_count; l++) ff_layer_free(&net->layers[l]);
    for (uint32_t l = 0; net->xn != NULL && l < net->layer_count; l++) {
        ff_mem_free(net->xn[l]);
        ff_mem_free(net->norms[l]);
        ff_mem_free(net->y[l]);
    }
    free(net->layers);
    free(net->xn);
    free(net->norms);
    free(net->y);
    ff_mem_free(net->input);
    ff_mem_free(net->logits);
    ff_mem_free(net->dlogits);
    ff_mem_free(net->dh);
    ff_mem_free(net->dxn);
    memset(net, 0, sizeof *net);
}

int ff_bpnet_alloc(ff_bpnet_t *net, uint32_t layers, size_t in0, size_t hidden, size_t rows,
                   uint64_t seed, ff_error_t *err) {
    memset(net, 0, sizeof *net);
    uint32_t L = layers;
    size_t H = hidden, wmax = in0 > H ? in0 : H;
    net->layer_count = L;
    net->max_rows = rows;
    net->layers = calloc(L + 1, sizeof *net->layers);
    net->xn = calloc(L, sizeof *net->xn);
    net->norms = calloc(L, sizeof *net->norms);
    net->y = calloc(L, sizeof *net->y);
    if (net->layers == NULL || net->xn == NULL || net->norms == NULL || net->y == NULL) goto oom;
    for (uint32_t l = 0; l <= L; l++) {
        uint32_t in = (uint32_t)(l == 0 ? in0 : H), out = (uint32_t)(l == L ? FF_CLASSES : H);
        if (ff_layer_alloc(&net->layers[l], in, out, 1, err) != 0) goto fail;
        ff_layer_init_for_run(&net->layers[l], seed, l);
    }
    for (uint32_t l = 0; l < L; l++) {
        size_t in = l == 0 ? in0 : H;
        net->xn[l] = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * in * sizeof(float));
        net->norms[l] = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * sizeof(float));
        net->y[l] = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * H * sizeof(float));
        if (net->xn[l] == NULL || net->norms[l] == NULL || net->y[l] == NULL) goto oom;
    }
    net->input = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * in0 * sizeof(float));
    net->logits = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * FF_CLASSES * sizeof(float));
    net->dlogits = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * FF_CLASSES * sizeof(float));
    net->dh = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * wmax * sizeof(float));
    net->dxn = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * wmax * sizeof(float));
    if (net->input == NULL || net->logits == NULL || net->dlogits == NULL || net->dh == NULL ||
        net->dxn == NULL)
        goto oom;
    return 0;
oom:
    ff_error_set(err, "out of memory for a %u-layer backprop network with %zu-row batches", L, rows);
fail:
    ff_bpnet_free(net);
    return -1;
}

void ff_bpnet_forward(ff_bpnet_t *net, size_t rows) {
    const float *x = net->input;
    for (uint32_t l = 0; l < net->layer_count; l++) {
        ff_layer_t *L = &net->layers[l];
        ff_dense_normalize(net->xn[l], net->norms[l], x, rows, L->in);
        ff_dense_forward(net->y[l], net->xn[l], L->weight, L->bias, rows, L->in, L->out);
        x = net->y[l];
    }
    ff_layer_t *head = &net->layers[net->layer_count];
    ff_dense_linear(net->logits, x, head->weight, head->bias, rows, head->in, head->out);
}

void ff_bpnet_backward(ff_bpnet_t *net, size_t rows) {
    uint32_t Lc = net->layer_count;
    ff_layer_t *head = &net->layers[Lc];
    const float *h_last = Lc > 0 ? net->y[Lc - 1] : net->input;
    ff_dense_backward_params(head->grad_weight, head->grad_bias, net->dlogits, h_last, rows,
                             head->in, head->out);
    ff_dense_backward_input(net->dh, net->dlogits, head->weight, rows, head->in, head->out);
    for (uint32_t l = Lc; l-- > 0;) {
        ff_layer_t *L = &net->layers[l];
        ff_dense_relu_backward(net->dh, net->y[l], rows * L->out); /* dh is now dz */
        ff_dense_backward_params(L->grad_weight, L->grad_bias, net->dh, net->xn[l], rows, L->in,
                                 L->out);
        if (l == 0) break; /* no gradient needed for the images */
        ff_dense_backward_input(net->dxn, net->dh, L->weight, rows, L->in, L->out);
        ff_dense_normalize_backward(net->dh, net->dxn, net->y[l - 1], net->norms[l], rows, L->in);
    }
}

