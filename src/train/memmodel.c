/* memmodel.c: the memory model, mirroring the allocations of the trainers
 * phase by phase: ff-mem and ff-stream (loop.c, rows_*.c, store_*.c),
 * ff-recurrent (train_ffrec.c, ffrec.c) and bp (bpnet.c). Tests compare it
 * with the trainers' own accounting. */
#include "ffstream/memmodel.h"

#include "ffstream/actcache.h"
#include "ffstream/chunkio.h"
#include "ffstream/data.h"
#include "ffstream/ffrec.h"
#include "ffstream/head.h"
#include "ffstream/layerfile.h"
#include "ffstream/rows.h"
#include "ffstream/step.h"
#include "train_internal.h"

#define F ((uint64_t)sizeof(float))

static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Decoded images (floats) and labels of both splits. */
static uint64_t dataset_bytes(uint64_t pixels, uint64_t train, uint64_t test) {
    return (train + test) * (pixels * F + 1);
}

static void set_parameters(ff_memmodel_t *m, uint64_t params) {
    m->weights = params * F;
    m->gradients = params * F;
    m->optimizer = 2 * params * F;
    m->parameters = 4 * params * F;
}

static uint64_t sum(const ff_memmodel_t *m) {
    return m->parameters + m->activations + m->io + m->dataset + m->head;
}

/* Keeps the phase with the larger sum in *best. */
static void keep_peak(ff_memmodel_t *best, const ff_memmodel_t *phase) {
    if (sum(phase) >= best->total) {
        *best = *phase;
        best->total = sum(phase);
    }
}

/* ff-mem and ff-stream: the loop's buffers, the rows' and the store's, and
 * the head's, in each phase of the run. */
static ff_memmodel_t model_ff(const ff_config_t *cfg, uint64_t pixels, uint64_t N, uint64_t T) {
    const int stream = cfg->mode == FF_MODE_FF_STREAM;
    const uint64_t H = cfg->hidden, L = cfg->layers;
    const uint64_t in0 = ff_data_input_dim(pixels, cfg->label), width = max_u64(in0, H);
    ff_set_shape_t sh[FF_SET_COUNT];
    ff_rows_shapes(sh, cfg, N, T);
    uint64_t rows_max = 0;
    for (int s = 0; s < FF_SET_COUNT; s++)
        rows_max = max_u64(rows_max, sh[s].units_per_chunk * sh[s].rows_per_unit);
    /* loop.c: workspace, goodness, scores, and (evaluation through every
     * layer at once) the second chain buffer. */
    const uint64_t loop = ff_step_workspace_bytes(rows_max, width, H) + rows_max * F +
                          T * FF_CLASSES * F + (stream ? 0 : rows_max * H * F);
    /* The softmax head: its layer and scratch, and its features: one chunk
     * (ff-stream reads them from the kept caches), or every training image
     * plus one test chunk (ff-mem). */
    uint64_t head = 0;
    if (cfg->eval_softmax) {
        const uint64_t D = (uint64_t)ff_train_scored_count(cfg) * H;
        const uint64_t rows_h = max_u64(sh[FF_SET_TRAIN_NEUTRAL].units_per_chunk,
                                        sh[FF_SET_TEST_NEUTRAL].units_per_chunk);
        head = ff_head_bytes(D, rows_h) + rows_h * D * F + (stream ? 0 : N * D * F);
    }
    ff_memmodel_t best = {0}, ph;
    if (!stream) {
        /* store_mem.c: every layer; rows_mem.c: the first layer's scratch
         * and the cache (old and new during the passes of layers 2..L-1). */
        const uint64_t params = (in0 * H + H) + (L - 1) * (H * H + H);
        const uint64_t scratch = rows_max * in0 * F;
        const uint64_t caches = (L >= 3 ? 4 : L == 2 ? 2 : 0) * N * H * F;
        ph = (ff_memmodel_t){.phase = "passes"};
        set_parameters(&ph, params);
        ph.activations = loop + scratch + caches;
        ph.dataset = dataset_bytes(pixels, N, T) + N; /* + the negative labels */
        keep_peak(&best, &ph);
        ph.phase = "head"; /* the caches are gone */
        ph.activations = loop + scratch;
        ph.head = head;
        keep_peak(&best, &ph);
        return best;
    }
    /* store_file.c: one layer (the widest) and, while it is saved, the
     * checkpoint's encoding buffer; rows_cache.c: the chunk pipeline; the
     * labels outlive the dataset. */
    size_t slot = 0;
    for (int s = 0; s < FF_SET_COUNT; s++)
        for (uint64_t w = 0; w < 2; w++) {
            ff_actcache_geometry_t g = {.width = (uint32_t)(w == 0 ? in0 : H),
                                        .rows_per_unit = sh[s].rows_per_unit,
                                        .units = sh[s].units,
                                        .units_per_chunk = sh[s].units_per_chunk};
            size_t one;
            uint64_t file_bytes;
            if (g.units > 0 && ff_actcache_sizes(&g, &one, &file_bytes) == 0 && one > slot)
                slot = one;
        }
    const uint64_t chunks = ff_chunkio_bytes(slot);
    const uint64_t save = ff_layerfile_save_bytes((uint32_t)width, (uint32_t)H, 1);
    const uint64_t labels = N + T;
    ph = (ff_memmodel_t){.phase = "loading"}; /* the first layer's caches are written */
    ph.io = chunks + T * FF_CLASSES * F;       /* + the zero scores */
    ph.dataset = dataset_bytes(pixels, N, T) + N + labels;
    keep_peak(&best, &ph);
    ph = (ff_memmodel_t){.phase = "training"};
    set_parameters(&ph, width * H + H);
    ph.activations = loop;
    ph.io = chunks + save;
    ph.dataset = labels;
    keep_peak(&best, &ph);
    ph = (ff_memmodel_t){.phase = "head"}; /* the last layer is evicted */
    ph.activations = loop;
    ph.io = chunks;
    ph.dataset = labels;
    ph.head = head;
    keep_peak(&best, &ph);
    return best;
}

ff_memmodel_t ff_memmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                          uint64_t test) {
    ff_memmodel_t m = {.phase = "training"};
    const uint64_t H = cfg->hidden, L = cfg->layers;
    if (cfg->mode == FF_MODE_FF_MEM || cfg->mode == FF_MODE_FF_STREAM)
        return model_ff(cfg, pixels, train, test);
    if (cfg->mode == FF_MODE_BP) {
        const uint64_t B = cfg->batch, wmax = max_u64(pixels, H);
        set_parameters(&m, ff_memmodel_network_parameters(cfg, pixels));
        /* Per layer: normalised input, norms, ReLU output; plus the input
         * batch, logits and their gradient, and two backward buffers. */
        uint64_t acts = B * pixels + 2 * B * FF_CLASSES + 2 * B * wmax;
        for (uint64_t l = 0; l < L; l++) acts += B * (l == 0 ? pixels : H) + B + B * H;
        m.activations = acts * F;
        m.dataset = dataset_bytes(pixels, train, test);
    } else {
        /* ff-recurrent, mirroring train_ffrec.c: every layer and the
         * read-out with their training state; a workspace of max(batch,
         * 10 x evaluation images) rows holding two generations of every
         * layer's states (ffrec.c). */
        const uint64_t E = ff_config_eval_images(cfg, max_u64(test, 1));
        const uint64_t rows = max_u64(cfg->batch, FF_CLASSES * E);
        const uint64_t middle = L >= 3 ? 2 * H : (L == 2 ? H + FF_CLASSES : 0);
        const uint64_t in_max = max_u64(max_u64(pixels + (L > 1 ? H : FF_CLASSES), middle), H);
        set_parameters(&m, ff_memmodel_network_parameters(cfg, pixels));
        uint64_t acts = 2 * L * rows * H              /* states, two generations */
                        + rows * pixels               /* images */
                        + rows * in_max               /* normalised input */
                        + 2 * rows * H                /* ReLU output, gradient */
                        + 2 * rows                    /* goodness, scores */
                        + 3 * rows * FF_CLASSES;      /* one-hot, logits, gradient */
        m.activations = acts * F;
        uint64_t nbatches = (train + cfg->batch / 2 - 1) / (cfg->batch / 2);
        m.dataset = dataset_bytes(pixels, train, test) + rows + 4 * nbatches; /* + labels, order */
    }
    m.total = sum(&m);
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
