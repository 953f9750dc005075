/* memmodel.c: the memory model, mirroring the allocations of train_ffmem.c,
 * train_ffstream.c and bpnet.c (tests compare it with their accounting). */
#include "ffstream/memmodel.h"

#include "ffstream/actcache.h"
#include "ffstream/data.h"
#include "ffstream/ffrec.h"
#include "ffstream/layerfile.h"

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Decoded images (floats) and labels of both splits. */
static uint64_t dataset_bytes(uint64_t pixels, uint64_t train, uint64_t test) {
    return (train + test) * (pixels * sizeof(float) + 1);
}

ff_memmodel_t ff_memmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                          uint64_t test) {
    ff_memmodel_t m = {0};
    const uint64_t F = sizeof(float), H = cfg->hidden, L = cfg->layers;
    const uint64_t in0 = ff_data_input_dim(pixels, cfg->label);
    const uint64_t max_in = max_u64(in0, H);
    if (cfg->mode == FF_MODE_BP) {
        const uint64_t B = cfg->batch, wmax = max_u64(pixels, H);
        uint64_t params = 0;
        for (uint64_t l = 0; l <= L; l++) {
            uint64_t in = l == 0 ? pixels : H, out = l == L ? FF_CLASSES : H;
            params += in * out + out;
        }
        m.parameters = 4 * params * F;
        /* Per layer: normalised input, norms, ReLU output; plus the input
         * batch, logits and their gradient, and two backward buffers. */
        uint64_t acts = B * pixels + 2 * B * FF_CLASSES + 2 * B * wmax;
        for (uint64_t l = 0; l < L; l++) acts += B * (l == 0 ? pixels : H) + B + B * H;
        m.activations = acts * F;
        m.dataset = dataset_bytes(pixels, train, test);
    } else if (cfg->mode == FF_MODE_FF_RECURRENT) {
        /* Mirrors train_ffrec.c: every layer and the read-out with their
         * training state; a workspace of max(batch, 10 * batch/10) rows
         * holding two generations of every layer's states (ffrec.c). */
        const uint64_t E = cfg->batch / 10 > 0 ? cfg->batch / 10 : 1;
        const uint64_t rows = max_u64(cfg->batch, FF_CLASSES * (E < test ? E : max_u64(test, 1)));
        const uint64_t middle = L >= 3 ? 2 * H : (L == 2 ? H + FF_CLASSES : 0);
        const uint64_t in_max =
            max_u64(max_u64(pixels + (L > 1 ? H : FF_CLASSES), middle), H);
        m.parameters = 4 * ff_memmodel_network_parameters(cfg, pixels) * F;
        uint64_t acts = 2 * L * rows * H              /* states, two generations */
                        + rows * pixels               /* images */
                        + rows * in_max               /* normalised input */
                        + 2 * rows * H                /* ReLU output, gradient */
                        + 2 * rows                    /* goodness, scores */
                        + 3 * rows * FF_CLASSES;      /* one-hot, logits, gradient */
        m.activations = acts * F;
        uint64_t nbatches = (train + cfg->batch / 2 - 1) / (cfg->batch / 2);
        m.dataset = dataset_bytes(pixels, train, test) + rows + 4 * nbatches; /* + labels, order */
    } else if (cfg->mode == FF_MODE_FF_MEM) {
        const uint64_t rows = cfg->batch;
        uint64_t params = (in0 * H + H) + (L - 1) * (H * H + H);
        m.parameters = 4 * params * F;
        /* The cache: 2NH floats, and both the old and the new one during
         * the pass of a layer that has an input cache (layers 2..L-1). */
        uint64_t caches = L >= 3 ? 4 * train * H : (L == 2 ? 2 * train * H : 0);
        uint64_t batch = rows * max_in              /* assembled batch */
                         + rows * (max_in + 2 * H + 1); /* xn, y, dz, goodness */
        m.activations = (caches + batch) * F;
        m.dataset = dataset_bytes(pixels, train, test) + train; /* + negative labels */
    } else {
        const uint64_t m2 = cfg->batch, E = cfg->batch / 10 > 0 ? cfg->batch / 10 : 1;
        const uint64_t rows = max_u64(m2, FF_CLASSES * (E < test ? E : test));
        uint64_t P = max_in * H + H;
        m.parameters = 4 * P * F;
        m.activations = (rows * (max_in + 2 * H + 1) + rows) * F + test * (FF_CLASSES * F + 1);
        size_t slot = 0;
        uint64_t file_bytes;
        ff_actcache_geometry_t g = {.width = (uint32_t)max_in, .rows_per_unit = 2,
                                    .units = train, .units_per_chunk = cfg->batch / 2};
        if (ff_actcache_sizes(&g, &slot, &file_bytes) != 0) slot = 0;
        size_t slot_test = 0;
        g.rows_per_unit = FF_CLASSES;
        g.units = test;
        g.units_per_chunk = E;
        if (ff_actcache_sizes(&g, &slot_test, &file_bytes) != 0) slot_test = 0;
        m.io = 4 * max_u64(slot, slot_test) +
               ff_layerfile_save_bytes((uint32_t)max_in, (uint32_t)H, 1);
        /* The dataset is freed before training; it is the peak only when it
         * outweighs the training working set. */
        uint64_t training = m.parameters + m.activations + m.io;
        uint64_t loading = dataset_bytes(pixels, train, test) + train + 4 * slot;
        m.dataset = loading > training ? loading - training : 0;
    }
    m.total = m.parameters + m.activations + m.io + m.dataset;
    return m;
}

uint64_t ff_memmodel_network_parameters(const ff_config_t *cfg, uint64_t pixels) {
    const uint64_t H = cfg->hidden, L = cfg->layers;
    if (cfg->mode == FF_MODE_FF_RECURRENT)
        return ff_ffrec_parameter_count((uint32_t)L, (uint32_t)H, (uint32_t)pixels, FF_CLASSES);
    if (cfg->mode == FF_MODE_BP)
        return (pixels * H + H) + (L - 1) * (H * H + H) + (H * FF_CLASSES + FF_CLASSES);
    uint64_t in0 = ff_data_input_dim(pixels, cfg->label);
    return (in0 * H + H) + (L - 1) * (H * H + H);
}
