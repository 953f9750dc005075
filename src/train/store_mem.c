/* store_mem.c: the layer store of ff-mem: every layer allocated at the
 * start and kept in RAM, as the original experiment holds its network; with
 * a run directory, every layer is written at the end in the checkpoint
 * format ff-stream writes (same metadata), so the two trainers' files can be
 * compared byte for byte. */
#include "ffstream/store.h"

#include <math.h>
#include <string.h>

#include "ffstream/data.h"
#include "ffstream/memstat.h"

typedef struct {
    const ff_config_t *cfg;
    ff_layer_t *layers; /* [cfg->layers] */
    uint64_t data_fingerprint, train, test;
} mem_store_t;

static int mem_acquire(void *self, uint32_t k, ff_layer_t **layer, ff_layer_progress_t *p,
                       ff_error_t *err) {
    mem_store_t *s = self;
    (void)err;
    *layer = &s->layers[k];
    memset(p, 0, sizeof *p);
    p->last = (ff_epoch_means_t){NAN, NAN, NAN};
    return 0;
}

static int mem_keep(void *self, uint32_t k, const ff_layer_t *layer,
                    const ff_layer_progress_t *p, ff_error_t *err) {
    (void)self, (void)k, (void)layer, (void)p, (void)err;
    return 0; /* in RAM until the end */
}

static int mem_release(void *self, uint32_t k, ff_error_t *err) {
    (void)self, (void)k, (void)err;
    return 0; /* every layer stays: evaluation runs through all of them */
}

static ff_layer_t *mem_all_layers(void *self) { return ((mem_store_t *)self)->layers; }

static uint64_t mem_weights_hash(void *self) {
    mem_store_t *s = self;
    uint64_t h = FF_FNV_OFFSET;
    for (uint32_t k = 0; k < s->cfg->layers; k++)
        h = ff_hash_bytes(h, s->layers[k].params, ff_layer_block_bytes(&s->layers[k]));
    return h;
}

static int mem_finish(void *self, const ff_result_t *res, ff_error_t *err) {
    mem_store_t *s = self;
    const ff_config_t *cfg = s->cfg;
    if (cfg->run_dir[0] == '\0') return 0;
    if (ff_run_make_dirs(cfg->run_dir, err) != 0) return -1;
    for (uint32_t k = 0; k < cfg->layers; k++) {
        char path[FF_PATH_MAX];
        if (ff_run_layer_path(path, cfg->run_dir, k, err) != 0) return -1;
        const ff_layer_result_t *r = &res->per_layer[k];
        ff_layer_progress_t p = {.epochs_done = cfg->epochs, .complete = 1,
                                 .last = {r->loss, r->goodness_pos, r->goodness_neg}};
        ff_layerfile_meta_t meta;
        ff_store_layer_meta(&meta, cfg, k, s->data_fingerprint, &p);
        ff_layerfile_options_t opt = ff_store_layerfile_options(cfg);
        ff_layer_t view = s->layers[k];
        if (cfg->keep_optimizer == FF_KEEP_LAST && k + 1 < cfg->layers)
            view.adam_m = view.adam_v = NULL; /* as ff-stream saves a finished layer */
        if (ff_layerfile_save(path, &view, &meta, &opt, err) != 0) return -1;
    }
    ff_run_state_t state;
    ff_run_state_init(&state, cfg, s->data_fingerprint, s->train, s->test);
    state.finished = 1;
    state.weights_hash = res->weights_hash;
    state.hashed_layers = cfg->layers;
    return ff_run_write(cfg->run_dir, &state, err);
}

static void mem_destroy(void *self) {
    mem_store_t *s = self;
    if (s == NULL) return;
    for (uint32_t k = 0; s->layers != NULL && k < s->cfg->layers; k++) ff_layer_free(&s->layers[k]);
    ff_mem_free(s->layers);
    ff_mem_free(s);
}

static const ff_store_ops_t mem_store_ops = {
    .acquire = mem_acquire,
    .checkpoint = mem_keep,
    .trained = mem_keep,
    .release = mem_release,
    .all_layers = mem_all_layers,
    .describe = NULL, /* ff-mem always starts at layer 0 */
    .record = NULL,
    .weights_hash = mem_weights_hash,
    .finish = mem_finish,
    .destroy = mem_destroy,
};

int ff_store_mem_create(ff_store_t *store, const ff_config_t *cfg, uint32_t width0,
                        uint64_t data_fingerprint, uint64_t train, uint64_t test,
                        ff_error_t *err) {
    memset(store, 0, sizeof *store);
    mem_store_t *s = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *s);
    if (s == NULL) return ff_error_set(err, "out of memory");
    s->cfg = cfg;
    s->data_fingerprint = data_fingerprint;
    s->train = train;
    s->test = test;
    s->layers = ff_mem_calloc(FF_MEM_OTHER, cfg->layers, sizeof *s->layers);
    if (s->layers == NULL) {
        ff_mem_free(s);
        return ff_error_set(err, "out of memory for %u layers", cfg->layers);
    }
    /* The original keeps the whole network in memory: allocate it all now. */
    for (uint32_t k = 0; k < cfg->layers; k++) {
        if (ff_layer_alloc(&s->layers[k], k == 0 ? width0 : cfg->hidden, cfg->hidden, 1, err) !=
            0) {
            mem_destroy(s);
            return -1;
        }
        ff_layer_init_for_run(&s->layers[k], cfg->seed, k);
    }
    store->ops = &mem_store_ops;
    store->self = s;
    return 0;
}
