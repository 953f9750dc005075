/* store_file.c: the layer store of ff-stream: one layer in memory at a
 * time. A layer is loaded from its checkpoint RUN/layers/NNN.ffl (checked
 * against the run) or created; it is saved after every epoch, and its final
 * checkpoint is written on a thread while its passes stream the caches
 * through it; then it is evicted and run.json moves past it. */
#include "ffstream/store.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "ffstream/background.h"
#include "ffstream/hook.h"
#include "ffstream/layerstats.h"
#include "ffstream/memstat.h"

typedef struct {
    char path[FF_PATH_MAX];
    ff_layer_t view;           /* the layer, without its Adam moments when they are not kept */
    ff_layerfile_meta_t meta;
    ff_layerfile_options_t options;
} save_job_t;

typedef struct {
    const ff_config_t *cfg;
    uint32_t width0;
    uint64_t data_fingerprint;
    uint64_t batches;          /* training batches per epoch */
    ff_run_state_t *state;     /* run.json's content, advanced by release */
    ff_layer_t layer;          /* the layer in memory */
    ff_background_t save;      /* its final checkpoint being written */
    save_job_t job;
    ff_tiles_t *tiles;         /* the layer in tiles (NULL: whole) */
    ff_layer_result_t *recorded; /* [layers]: RUN/layers.json as read at the start */
    int writer;                /* 0: loads checkpoints, writes nothing */
} file_store_t;

static int save_main(void *arg, ff_error_t *err) {
    save_job_t *job = arg;
    return ff_layerfile_save(job->path, &job->view, &job->meta, &job->options, err);
}

/* Which field of a checkpoint's training state contradicts the run (NULL:
 * none): the position against the epochs and batches, and the Adam step,
 * one per batch, against the position. */
static const char *progress_field(const ff_layerfile_meta_t *meta, int64_t adam_step,
                                  uint64_t batches) {
    if (meta->epochs_done > meta->epochs_total) return "epochs_done";
    if (meta->batch_in_epoch >= batches) return "batch_in_epoch";
    if (meta->complete != (meta->epochs_done == meta->epochs_total)) return "complete";
    if ((uint64_t)adam_step != (uint64_t)meta->epochs_done * batches + meta->batch_in_epoch)
        return "adam.step";
    return NULL;
}

/* Where training stands, from a checkpoint's training state. */
static void progress_from_meta(ff_layer_progress_t *p, const ff_layerfile_meta_t *meta) {
    p->epochs_done = meta->epochs_done;
    p->batch_in_epoch = meta->batch_in_epoch;
    p->complete = meta->complete;
    p->last = (ff_epoch_means_t){meta->loss, meta->goodness_pos, meta->goodness_neg};
    p->running = (ff_step_stats_t){.loss_sum = meta->loss_sum,
                                   .good_pos_sum = meta->good_pos_sum,
                                   .good_neg_sum = meta->good_neg_sum, .batches = meta->batches,
                                   .npos = meta->npos, .nneg = meta->nneg};
}

/* Layer k in tiles (tiles.h): opened, or created as ff_layer_init_for_run
 * would create it, and checked like a whole layer's checkpoint. */
static int acquire_tiled(file_store_t *s, uint32_t k, uint32_t in, const char *path,
                         ff_layer_t **out, ff_layer_progress_t *p, ff_error_t *err) {
    const ff_config_t *cfg = s->cfg;
    ff_layerfile_meta_t fresh, meta;
    int64_t step;
    ff_store_layer_meta(&fresh, cfg, k, s->data_fingerprint, p);
    *out = NULL;
    if (ff_tiles_open(&s->tiles, path, k, in, cfg->hidden, ff_config_tile_units(cfg), cfg->seed,
                      &fresh, &meta, &step, err) != 0) {
        ff_tiles_close(s->tiles);
        s->tiles = NULL;
        return -1;
    }
    const char *field = progress_field(&meta, step, s->batches);
    if (field != NULL) {
        ff_tiles_close(s->tiles);
        s->tiles = NULL;
        return ff_error_set(err, "%s: checkpoint does not belong to this run: field %s differs "
                            "(%u of %u epochs, batch %u, Adam step %lld)", path, field,
                            meta.epochs_done, meta.epochs_total, meta.batch_in_epoch,
                            (long long)step);
    }
    progress_from_meta(p, &meta);
    return 0;
}

static int file_acquire(void *self, uint32_t k, ff_layer_t **out, ff_layer_progress_t *p,
                        ff_error_t *err) {
    file_store_t *s = self;
    const ff_config_t *cfg = s->cfg;
    ff_layer_t *layer = &s->layer;
    char path[FF_PATH_MAX];
    struct stat st;
    uint32_t in = k == 0 ? s->width0 : cfg->hidden;
    memset(p, 0, sizeof *p);
    p->last = (ff_epoch_means_t){NAN, NAN, NAN};
    *out = layer;
    if (ff_run_layer_path(path, cfg->run_dir, k, err) != 0) return -1;
    if (ff_config_tile_units(cfg) > 0) return acquire_tiled(s, k, in, path, out, p, err);
    if (lstat(path, &st) != 0) {
        if (ff_layer_alloc(layer, in, cfg->hidden, 1, err) != 0) return -1;
        ff_layer_init_for_run(layer, cfg->seed, k);
        return 0;
    }
    ff_layerfile_meta_t meta;
    ff_layerfile_info_t info;
    if (ff_layerfile_read_info(path, &info, err) != 0) return -1;
    /* A finished layer saved without its Adam moments is loaded for its
     * passes only; anything else must carry them to resume training. */
    int with_training = !(info.meta.complete && !info.has_optimizer);
    if (ff_layerfile_load(path, layer, &meta, with_training, in, cfg->hidden, err) != 0) return -1;
    const char *field = NULL;
    if (layer->in != in || layer->out != cfg->hidden) field = "shape";
    else if (meta.layer_index != k) field = "layer_index";
    else if (meta.epochs_total != cfg->epochs) field = "epochs_total";
    else if (meta.data_fingerprint != s->data_fingerprint) field = "data_fingerprint";
    else if (meta.config_fingerprint != ff_config_fingerprint(cfg)) field = "config_fingerprint";
    else field = progress_field(&meta, layer->adam_step, s->batches);
    if (field != NULL) {
        uint32_t got_in = layer->in, got_out = layer->out;
        ff_layer_free(layer);
        return ff_error_set(err,
                            "%s: checkpoint does not belong to this run: field %s differs (file: "
                            "layer %u, %u -> %u, %u of %u epochs; run: layer %u, %u -> %u, %u "
                            "epochs)",
                            path, field, meta.layer_index, got_in, got_out, meta.epochs_done,
                            meta.epochs_total, k, in, cfg->hidden, cfg->epochs);
    }
    progress_from_meta(p, &meta);
    return 0;
}

static int file_checkpoint(void *self, uint32_t k, const ff_layer_t *layer,
                           const ff_layer_progress_t *p, ff_error_t *err) {
    file_store_t *s = self;
    char path[FF_PATH_MAX];
    if (!s->writer || s->tiles != NULL) return 0; /* tiles: every step is committed */
    if (ff_run_layer_path(path, s->cfg->run_dir, k, err) != 0) return -1;
    ff_layerfile_meta_t meta;
    ff_store_layer_meta(&meta, s->cfg, k, s->data_fingerprint, p);
    ff_layerfile_options_t opt = ff_store_layerfile_options(s->cfg);
    return ff_layerfile_save(path, layer, &meta, &opt, err);
}

/* Compression and fsync of the final checkpoint cost no wall time: they
 * run beside the passes, which only read the layer. */
static int file_trained(void *self, uint32_t k, const ff_layer_t *layer,
                        const ff_layer_progress_t *p, ff_error_t *err) {
    file_store_t *s = self;
    if (!s->writer || s->tiles != NULL) return 0; /* tiles: the last step committed it */
    if (ff_run_layer_path(s->job.path, s->cfg->run_dir, k, err) != 0) return -1;
    ff_store_layer_meta(&s->job.meta, s->cfg, k, s->data_fingerprint, p);
    s->job.options = ff_store_layerfile_options(s->cfg);
    /* A finished layer is never trained again: with --keep-optimizer last
     * its Adam moments are dropped, except the last layer's. */
    s->job.view = *layer;
    if (s->cfg->keep_optimizer == FF_KEEP_LAST && k + 1 < s->cfg->layers)
        s->job.view.adam_m = s->job.view.adam_v = NULL;
    ff_background_start(&s->save, save_main, &s->job);
    return 0;
}

static int file_release(void *self, uint32_t k, ff_error_t *err) {
    file_store_t *s = self;
    ff_run_state_t *state = s->state;
    /* The checkpoint must be on disk before run.json moves past it. */
    if (ff_background_join(&s->save, err) != 0) return -1;
    ff_hook_kill("saved", k, 0);
    if (state->hashed_layers == k) {
        if (s->tiles != NULL) {
            if (ff_tiles_hash(s->tiles, &state->weights_hash, err) != 0) return -1;
        } else {
            state->weights_hash = ff_hash_bytes(state->weights_hash, s->layer.params,
                                                ff_layer_block_bytes(&s->layer));
        }
        state->hashed_layers = k + 1;
    }
    ff_tiles_close(s->tiles);
    s->tiles = NULL;
    ff_layer_free(&s->layer); /* evict */
    if (k + 1 < s->cfg->layers) state->cache_layer = k + 1;
    else state->finished = 1;
    return s->writer ? ff_run_write(s->cfg->run_dir, state, err) : 0;
}

static ff_layer_t *file_all_layers(void *self) {
    (void)self;
    return NULL; /* one layer at a time */
}

/* Per-layer figures, read back from the checkpoints' headers so a resumed
 * run reports the same as an uninterrupted one; the header must be the
 * finished layer k of this run. */
static int file_describe(void *self, uint32_t k, ff_layer_result_t *out, ff_error_t *err) {
    file_store_t *s = self;
    const ff_config_t *cfg = s->cfg;
    char path[FF_PATH_MAX];
    ff_layerfile_info_t info;
    if (ff_run_layer_path(path, cfg->run_dir, k, err) != 0) return -1;
    if (ff_layerfile_read_info(path, &info, err) != 0)
        return ff_error_wrap(err, "layer %u is trained according to run.json, but its checkpoint "
                             "cannot be read; the run cannot finish (start a new --run)", k);
    if (info.meta.layer_index != k || !info.meta.complete || info.out != cfg->hidden ||
        info.in != (k == 0 ? s->width0 : cfg->hidden) ||
        info.meta.config_fingerprint != ff_config_fingerprint(cfg) ||
        info.meta.data_fingerprint != s->data_fingerprint)
        return ff_error_set(err, "%s: not the finished layer %u of this run (layer %u, %u -> %u, "
                            "%s); the run cannot finish (start a new --run)", path, k,
                            info.meta.layer_index, info.in, info.out,
                            info.meta.complete ? "complete" : "incomplete");
    out->in = info.in;
    out->out = info.out;
    out->loss = info.meta.loss;
    out->goodness_pos = info.meta.goodness_pos;
    out->goodness_neg = info.meta.goodness_neg;
    out->seconds = NAN; /* trained by an earlier process */
    const ff_layer_result_t *r = &s->recorded[k];
    if (r->measured) {
        out->measured = 1;
        out->seconds = r->seconds;
        out->peak_rss_bytes = r->peak_rss_bytes;
        out->cgroup_peak_bytes = r->cgroup_peak_bytes;
        out->bytes_read = r->bytes_read;
        out->bytes_written = r->bytes_written;
        out->disk_bytes = r->disk_bytes;
    }
    return 0;
}

static int file_record(void *self, const ff_layer_result_t *layers, uint32_t count,
                       ff_error_t *err) {
    file_store_t *s = self;
    return s->writer ? ff_layerstats_save(s->cfg->run_dir, layers, count, err) : 0;
}

static ff_tiles_t *file_tiles(void *self) { return ((file_store_t *)self)->tiles; }

static void file_layer_meta(void *self, uint32_t k, const ff_layer_progress_t *p,
                            ff_layerfile_meta_t *meta) {
    file_store_t *s = self;
    ff_store_layer_meta(meta, s->cfg, k, s->data_fingerprint, p);
}

static uint64_t file_weights_hash(void *self) { return ((file_store_t *)self)->state->weights_hash; }

static int file_finish(void *self, const ff_result_t *res, ff_error_t *err) {
    (void)self, (void)res, (void)err;
    return 0; /* every checkpoint and run.json are written as the run goes */
}

static void file_destroy(void *self) {
    file_store_t *s = self;
    if (s == NULL) return;
    ff_background_join(&s->save, NULL); /* before the layer it reads is freed */
    ff_layer_free(&s->layer);
    ff_tiles_close(s->tiles);
    ff_mem_free(s->recorded);
    ff_mem_free(s);
}

static const ff_store_ops_t file_store_ops = {
    .acquire = file_acquire,
    .checkpoint = file_checkpoint,
    .trained = file_trained,
    .release = file_release,
    .all_layers = file_all_layers,
    .describe = file_describe,
    .record = file_record,
    .tiles = file_tiles,
    .layer_meta = file_layer_meta,
    .weights_hash = file_weights_hash,
    .finish = file_finish,
    .destroy = file_destroy,
};

int ff_store_file_create(ff_store_t *store, const ff_config_t *cfg, uint32_t width0,
                         uint64_t data_fingerprint, uint64_t batches, ff_run_state_t *state,
                         int writer, ff_error_t *err) {
    memset(store, 0, sizeof *store);
    file_store_t *s = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *s);
    if (s == NULL) return ff_error_set(err, "out of memory");
    s->cfg = cfg;
    s->width0 = width0;
    s->data_fingerprint = data_fingerprint;
    s->batches = batches;
    s->state = state;
    s->writer = writer;
    store->ops = &file_store_ops;
    store->self = s;
    /* What earlier processes recorded of the layers they finished. */
    s->recorded = ff_mem_calloc(FF_MEM_OTHER, cfg->layers, sizeof *s->recorded);
    if (s->recorded == NULL) return ff_error_set(err, "out of memory");
    if (ff_layerstats_load(cfg->run_dir, s->recorded, cfg->layers, err) != 0)
        return ff_error_wrap(err, "the figures of the layers already trained cannot be read "
                                  "(delete the file to resume without them)");
    return 0;
}
