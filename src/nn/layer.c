/* layer.c: allocation, init and update of one dense layer. */
#include "ffstream/layer.h"

#include <math.h>
#include <string.h>

#include "ffstream/memstat.h"

int ff_layer_alloc(ff_layer_t *layer, uint32_t in, uint32_t out, int with_training,
                   ff_error_t *err) {
    memset(layer, 0, sizeof *layer);
    size_t count;
    if (in == 0 || out == 0 || ff_mul_size(in, out, &count) != 0 || count > SIZE_MAX - out ||
        (count + out) > SIZE_MAX / sizeof(float))
        return ff_error_set(err, "layer %u -> %u: invalid or overflowing shape", in, out);
    count += out;
    size_t bytes = count * sizeof(float);
    layer->in = in;
    layer->out = out;
    layer->param_count = count;
    layer->params = ff_mem_alloc(FF_MEM_WEIGHTS, bytes);
    if (layer->params == NULL) goto oom;
    if (with_training) {
        layer->grads = ff_mem_alloc(FF_MEM_GRADIENTS, bytes);
        layer->adam_m = ff_mem_calloc(FF_MEM_OPTIMIZER, count, sizeof(float));
        layer->adam_v = ff_mem_calloc(FF_MEM_OPTIMIZER, count, sizeof(float));
        if (layer->grads == NULL || layer->adam_m == NULL || layer->adam_v == NULL) goto oom;
        layer->grad_weight = layer->grads;
        layer->grad_bias = layer->grads + (size_t)in * out;
    }
    layer->weight = layer->params;
    layer->bias = layer->params + (size_t)in * out;
    return 0;
oom:
    ff_layer_free(layer);
    return ff_error_set(err, "layer %u -> %u: out of memory for %zu bytes per block", in, out,
                        bytes);
}

void ff_layer_free(ff_layer_t *layer) {
    if (layer == NULL) return;
    ff_mem_free(layer->adam_v);
    ff_mem_free(layer->adam_m);
    ff_mem_free(layer->grads);
    ff_mem_free(layer->params);
    memset(layer, 0, sizeof *layer);
}

void ff_layer_init_params(ff_layer_t *layer, ff_rng_t *rng) {
    /* kaiming_uniform_(a=sqrt(5)) on [out, in] gives bound 1/sqrt(fan_in);
     * the bias uses the same bound. */
    float bound = 1.0f / sqrtf((float)layer->in);
    for (size_t i = 0; i < layer->param_count; i++)
        layer->params[i] = (2.0f * ff_rng_uniform(rng) - 1.0f) * bound;
}

void ff_layer_init_for_run(ff_layer_t *layer, uint64_t seed, uint32_t index) {
    ff_rng_t rng;
    ff_rng_init(&rng, seed, FF_RNG_PURPOSE_INIT, index, 0);
    ff_layer_init_params(layer, &rng);
}

void ff_layer_adam_step(ff_layer_t *layer, const ff_adam_params_t *p) {
    layer->adam_step++;
    ff_adam_update(layer->params, layer->adam_m, layer->adam_v, layer->grads, layer->param_count,
                   p, layer->adam_step);
}

size_t ff_layer_block_bytes(const ff_layer_t *layer) {
    return layer->param_count * sizeof(float);
}
