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
#include "ffstream/scores.h"
#include "ffstream/step.h"
#include "ffstream/store.h"
#include "ffstream/tiles.h"
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
    /* loop.c: workspace (a tile's columns wide when tiled), goodness,
     * scores, and (evaluation through every layer at once) the second chain
     * buffer; tiles.c: a whole batch's goodness (sums and values) and its
     * pieces' places (at most one per row pair). */
    const uint64_t tu = ff_config_tile_units(cfg);
    const uint64_t loop = ff_step_workspace_bytes(rows_max, width, tu ? tu : H) + rows_max * F +
                          T * FF_CLASSES * F + (stream ? 0 : rows_max * H * F) +
                          (tu ? (uint64_t)cfg->batch * (FF_SUM_LANES * sizeof(double) +
                                                        sizeof(float)) +
                                    2 * (uint64_t)cfg->batch * sizeof(size_t)
                              : 0);
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
    const ff_layerfile_options_t save_options = ff_store_layerfile_options(cfg);
    const uint64_t save = ff_layerfile_save_bytes(&save_options);
    const uint64_t labels = N + T;
    ph = (ff_memmodel_t){.phase = "loading"}; /* the first layer's caches are written */
    ph.io = chunks + T * FF_CLASSES * F;       /* + the zero scores */
    ph.dataset = dataset_bytes(pixels, N, T) + N + labels;
    keep_peak(&best, &ph);
    ph = (ff_memmodel_t){.phase = "training"};
    if (tu) {
        /* tiles.c: three tile frames (parameters and moments) in turn, one
         * tile's gradient, the header block; no whole-layer save. */
        ff_tilefile_t g;
        ff_error_t ignored;
        uint64_t region = ff_tilefile_geometry(&g, (uint32_t)width, (uint32_t)H, (uint32_t)tu,
                                               &ignored) == 0 ? g.region_bytes : 0;
        /* + the bias the release's hash gathers. A tiling the format cannot
         * hold (config.c refuses it) costs more than any budget. */
        const uint64_t tiles = ff_tiles_bytes((uint32_t)width, (uint32_t)H, (uint32_t)tu);
        if (region == 0 || tiles == UINT64_MAX) {
            ph.weights = ph.parameters = UINT64_MAX / 4;
        } else {
            ph.weights = 3 * g.frame_bytes;
            ph.gradients = region;
            ph.parameters = ph.weights + ph.gradients;
            ph.activations = tiles + H * F - ph.parameters; /* record, checksums; + loop below */
        }
        ph.io = chunks + g.data_offset;
    } else {
        set_parameters(&ph, width * H + H);
        ph.io = chunks + save;
    }
    ph.activations += loop;
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

/* ---- the disk ---- */

static uint64_t cache_file_bytes(uint32_t width, uint32_t rows_per_unit, uint64_t units,
                                 uint64_t per_chunk) {
    ff_actcache_geometry_t g = {.width = width, .rows_per_unit = rows_per_unit, .units = units,
                                .units_per_chunk = per_chunk};
    size_t slot;
    uint64_t bytes = 0;
    if (units == 0 || ff_actcache_sizes(&g, &slot, &bytes) != 0) return 0;
    return bytes;
}

/* The caches of one layer's four sets at input width `width`. */
static uint64_t layer_caches(const ff_config_t *cfg, const ff_set_shape_t *sh, uint32_t width,
                             int with_neutral) {
    uint64_t bytes = 0;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        if (s >= FF_SET_TRAIN_NEUTRAL && !with_neutral) continue;
        bytes += cache_file_bytes(width, sh[s].rows_per_unit, sh[s].units, sh[s].units_per_chunk);
    }
    (void)cfg;
    return bytes;
}

/* A layer file's size: raw tensors exactly, compressed ones at most the
 * codec's bound. */
static uint64_t checkpoint_bytes(const ff_config_t *cfg, uint64_t in, uint64_t out, int adam) {
    const uint32_t tu = ff_config_tile_units(cfg);
    if (tu > 0 && cfg->mode == FF_MODE_FF_STREAM) {
        /* Tiled (tilefile.h): raw, the moments always kept. */
        ff_tilefile_t g;
        ff_error_t ignored;
        (void)adam;
        return ff_tilefile_geometry(&g, (uint32_t)in, (uint32_t)out, tu, &ignored) == 0
                   ? ff_tilefile_bytes(&g) : 0;
    }
    /* The codec's worst case for compressed tensors; raw ones exactly. */
    uint64_t tensors = adam ? 6 : 2, weight = in * out * 4, bias = out * 4, stored = 0;
    for (uint64_t t = 0; t < tensors; t++) {
        uint64_t raw = t % 2 == 0 ? weight : bias;
        stored += cfg->checkpoint_codec == FF_CODEC_RAW ? raw
                                                        : ff_codec_bound((ff_codec_t)cfg->checkpoint_codec, raw);
    }
    return FF_LAYERFILE_PREAMBLE + 1024 + 320 * tensors + stored;
}

ff_diskmodel_t ff_diskmodel(const ff_config_t *cfg, uint64_t pixels, uint64_t train,
                            uint64_t test) {
    ff_diskmodel_t d = {.exact = cfg->checkpoint_codec == FF_CODEC_RAW ||
                                 ff_config_tile_units(cfg) > 0};
    const uint64_t H = cfg->hidden, L = cfg->layers, in0 = ff_data_input_dim(pixels, cfg->label);
    const int stream = cfg->mode == FF_MODE_FF_STREAM;
    if (!stream && !(cfg->mode == FF_MODE_FF_MEM && cfg->run_dir[0] != '\0')) return d;
    ff_set_shape_t sh[FF_SET_COUNT];
    ff_rows_shapes(sh, cfg, train, test);
    const int softmax = cfg->eval_softmax != 0, keep = cfg->keep_optimizer == FF_KEEP_ALL;
    uint64_t neutral = 0;
    if (softmax)
        neutral = cache_file_bytes((uint32_t)H, 1, train, sh[FF_SET_TRAIN_NEUTRAL].units_per_chunk) +
                  cache_file_bytes((uint32_t)H, 1, test, sh[FF_SET_TEST_NEUTRAL].units_per_chunk);
    d.other = (stream ? 2 * (FF_SCORES_HEADER + test * FF_CLASSES * 4) : 0) + (64u << 10);
    /* Layer by layer: the finished layers' checkpoints, this layer's
     * (its previous epoch's file and the one replacing it), its input
     * caches and its outputs, the neutral caches kept for the head. */
    uint64_t finished = 0, kept = 0, peak = 0;
    for (uint64_t k = 0; k < L; k++) {
        const uint64_t in = k == 0 ? in0 : H;
        const uint64_t with_adam = checkpoint_bytes(cfg, in, H, 1);
        const uint64_t final = checkpoint_bytes(cfg, in, H, keep || k + 1 == L);
        /* While a tiled layer trains, every step writes its next state
         * beside the committed one. */
        const int replaced = cfg->epochs > 1 || ff_config_tile_units(cfg) > 0;
        const uint64_t checkpoints = finished + (replaced ? with_adam : 0) + final;
        uint64_t caches = 0;
        if (stream) {
            caches = layer_caches(cfg, sh, (uint32_t)in, softmax);
            if (k + 1 < L) caches += layer_caches(cfg, sh, (uint32_t)H, softmax);
            else if (softmax) caches += neutral; /* the last layer's neutral outputs */
        }
        const uint64_t now = checkpoints + caches + kept + d.other;
        if (now > peak) {
            peak = now;
            d.caches = caches;
            d.kept = kept;
            d.transient = checkpoints - finished - final;
            d.checkpoints = finished + final;
        }
        finished += final;
        if (softmax && k > 0 && ff_train_layer_scored(cfg, k - 1)) kept += neutral;
    }
    /* At the end: every final checkpoint (and the kept caches until the head
     * is trained); this is the peak when the checkpoints outweigh the caches. */
    if (finished + kept + d.other > peak) {
        peak = finished + kept + d.other;
        d.caches = 0;
        d.kept = kept;
        d.transient = 0;
        d.checkpoints = finished;
    }
    d.final_checkpoints = finished;
    d.total = peak;
    return d;
}

/* ---- fitting a budget ---- */

int ff_memmodel_fit(ff_config_t *cfg, uint64_t pixels, uint64_t train, uint64_t test,
                    uint64_t budget, const char *budget_from, ff_error_t *err) {
    if (budget == 0) return 0;
    const double MiB = 1048576.0;
    const uint64_t room = budget > FF_MEMMODEL_RESERVE ? budget - FF_MEMMODEL_RESERVE : 0;
    ff_memmodel_t m = ff_memmodel(cfg, pixels, train, test);
    if (m.total <= room) return 0;
    if (cfg->mode != FF_MODE_FF_STREAM) {
        ff_config_t stream = *cfg;
        stream.mode = FF_MODE_FF_STREAM;
        stream.piece_images = 1;
        stream.eval_images = 1;
        ff_memmodel_t least = ff_memmodel(&stream, pixels, train, test);
        return ff_error_set(err, "--mem-budget: %s needs %.1f MiB (its memory model %.1f MiB at "
                            "its peak, %s, plus %.0f MiB for the process itself), but the budget "
                            "is %.1f MiB (%s): lower --batch, or use --mode ff-stream, which "
                            "can run this network in %.1f MiB", ff_mode_name(cfg->mode),
                            (double)(m.total + FF_MEMMODEL_RESERVE) / MiB, (double)m.total / MiB,
                            m.phase, (double)FF_MEMMODEL_RESERVE / MiB, (double)budget / MiB,
                            budget_from, (double)(least.total + FF_MEMMODEL_RESERVE) / MiB);
    }
    /* ff-stream: the largest training chunk (a divisor of the batch's
     * images) and evaluation chunk that fit; rows of the two kept alike. */
    const uint32_t images = cfg->batch / 2;
    const size_t E = ff_config_eval_images(cfg, test);
    const int fixed_piece = cfg->piece_images != 0, fixed_eval = cfg->eval_images != 0;
    ff_config_t trial = *cfg;
    for (uint32_t p = images; p >= 1; p--) {
        if (images % p != 0) continue;
        if (fixed_piece && p != cfg->piece_images) continue;
        trial.piece_images = p;
        if (!fixed_eval) {
            size_t e = (2 * (size_t)p) / FF_CLASSES;
            trial.eval_images = (uint32_t)(e < 1 ? 1 : e > E ? E : e);
        }
        if (ff_memmodel(&trial, pixels, train, test).total <= room) {
            cfg->piece_images = p == images ? 0 : p;
            if (!fixed_eval) cfg->eval_images = trial.eval_images == E ? 0 : trial.eval_images;
            return 0;
        }
    }
    /* A layer wider than the budget: tiles of output units, the fewest
     * that fit, with the largest training chunks that fit (whole batches
     * first: a batch in chunks is read again for every tile). */
    if (cfg->tile_units == 0 && cfg->hidden >= 2) {
        for (uint32_t p = images; p >= 1; p--) {
            if (images % p != 0 || (fixed_piece && p != cfg->piece_images)) continue;
            trial = *cfg;
            trial.piece_images = p;
            if (!fixed_eval) {
                size_t e = (2 * (size_t)p) / FF_CLASSES;
                trial.eval_images = (uint32_t)(e < 1 ? 1 : e > E ? E : e);
            }
            /* Memory falls as tiles get narrower: the widest that fit. */
            uint32_t lo = 2, hi = cfg->hidden < FF_TILEFILE_MAX_TILES ? cfg->hidden
                                                                      : FF_TILEFILE_MAX_TILES;
            trial.tile_units = (cfg->hidden + hi - 1) / hi;
            if (ff_memmodel(&trial, pixels, train, test).total > room) continue;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                trial.tile_units = (cfg->hidden + mid - 1) / mid;
                if (ff_memmodel(&trial, pixels, train, test).total <= room) hi = mid;
                else lo = mid + 1;
            }
            cfg->tile_units = (cfg->hidden + hi - 1) / hi;
            cfg->piece_images = p == images ? 0 : p;
            if (!fixed_eval) cfg->eval_images = trial.eval_images == E ? 0 : trial.eval_images;
            return 0;
        }
        trial = *cfg;
    }
    trial.piece_images = fixed_piece ? cfg->piece_images : 1;
    if (!fixed_eval) trial.eval_images = 1;
    ff_memmodel_t least = ff_memmodel(&trial, pixels, train, test);
    return ff_error_set(err, "--mem-budget: %.1f MiB (%s) is below what this ff-stream run needs "
                        "with its smallest chunks: %.1f MiB (the model %.1f MiB at its %s "
                        "peak: %.1f MiB of them the layer's weights, gradients and Adam state; "
                        "plus %.0f MiB for the process itself); a smaller --hidden%s needs less",
                        (double)budget / MiB, budget_from,
                        (double)(least.total + FF_MEMMODEL_RESERVE) / MiB,
                        (double)least.total / MiB, least.phase, (double)least.parameters / MiB,
                        (double)FF_MEMMODEL_RESERVE / MiB,
                        cfg->eval_softmax ? " or --eval goodness (the head's features)" : "");
}
