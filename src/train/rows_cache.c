/* rows_cache.c: the row source of ff-stream. Every set of the current
 * layer lives in a cache file (actcache.h) under RUN/cache; chunks move
 * through the chunk pipeline (chunkio.h), the scores through scores.h, and
 * a finished layer's caches are deleted on a thread of their own.
 *
 *   RUN/cache/train-NNN.cache          FF_SET_TRAIN of layer NNN
 *   RUN/cache/test-NNN.cache           FF_SET_TEST
 *   RUN/cache/train-neutral-NNN.cache  FF_SET_TRAIN_NEUTRAL (--eval softmax)
 *   RUN/cache/test-neutral-NNN.cache   FF_SET_TEST_NEUTRAL
 *   RUN/cache/scores-NNN.f32           scores summed over layers < NNN
 *
 * The neutral caches of layer k+1 are layer k's outputs on neutral rows:
 * the next layer's inputs and, when layer k is scored, the head's features,
 * kept until the head is trained. */
#include "ffstream/rows.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ffstream/actcache.h"
#include "ffstream/background.h"
#include "ffstream/chunkio.h"
#include "ffstream/head.h"
#include "ffstream/hook.h"
#include "ffstream/memstat.h"
#include "ffstream/run.h"
#include "ffstream/scores.h"
#include "train_internal.h"

static const char *const set_kind[FF_SET_COUNT] = {"train", "test", "train-neutral",
                                                   "test-neutral"};

typedef struct {
    char dir[FF_PATH_MAX];
    uint32_t layer;
    int keep_neutral;
} janitor_job_t;

typedef struct {
    const ff_config_t *cfg;
    const ff_set_shape_t *shape;
    char dir[FF_PATH_MAX];
    uint64_t tag;
    uint32_t width0, hidden;
    uint32_t layer;                  /* the current inputs are this layer's */
    ff_chunkio_t *io;
    ff_actcache_t in[FF_SET_COUNT];  /* the current layer's caches */
    ff_actcache_t out[FF_SET_COUNT]; /* the next layer's, being written */
    int out_done[FF_SET_COUNT];      /* out[set] is finished (durable) already */
    ff_actcache_t *features[2];      /* [scored layers] kept neutral caches, per side */
    ff_background_t janitor;
    janitor_job_t job;
} cache_rows_t;

static int set_used(const cache_rows_t *r, ff_set_t set) {
    return set == FF_SET_TRAIN || set == FF_SET_TEST || r->cfg->eval_softmax;
}

static ff_actcache_geometry_t geometry(const cache_rows_t *r, ff_set_t set, uint32_t layer) {
    const ff_set_shape_t *sh = &r->shape[set];
    ff_actcache_geometry_t g = {.width = layer == 0 ? r->width0 : r->hidden,
                                .rows_per_unit = sh->rows_per_unit, .units = sh->units,
                                .units_per_chunk = sh->units_per_chunk, .tag = r->tag,
                                .layer = layer};
    return g;
}

static int cache_path(char *out, const cache_rows_t *r, ff_set_t set, uint32_t layer,
                      ff_error_t *err) {
    return ff_run_cache_path(out, r->dir, set_kind[set], layer, "cache", err);
}

static int open_set(cache_rows_t *r, ff_actcache_t *cache, ff_set_t set, uint32_t layer,
                    ff_error_t *err) {
    char path[FF_PATH_MAX];
    ff_actcache_geometry_t g = geometry(r, set, layer);
    if (cache_path(path, r, set, layer, err) != 0) return -1;
    return ff_actcache_open(cache, path, &g, err);
}

static int create_set(cache_rows_t *r, ff_actcache_t *cache, ff_set_t set, uint32_t layer,
                      ff_error_t *err) {
    char path[FF_PATH_MAX];
    ff_actcache_geometry_t g = geometry(r, set, layer);
    if (cache_path(path, r, set, layer, err) != 0) return -1;
    return ff_actcache_create(cache, path, &g, err);
}

/* ---- deleting caches ---- */

/* Whether layer k's neutral caches (layer k-1's outputs) are features of a
 * scored layer, needed by the head at the end. */
static int neutral_kept(const ff_config_t *cfg, uint32_t k) {
    return cfg->eval_softmax && k > 0 && ff_train_layer_scored(cfg, k - 1);
}

static void remove_cache(const char *dir, const char *kind, uint32_t k, const char *suffix) {
    char path[FF_PATH_MAX];
    if (ff_run_cache_path(path, dir, kind, k, suffix, NULL) == 0) unlink(path);
}

static void remove_layer_caches(const char *dir, uint32_t k, int keep_neutral) {
    if (!keep_neutral) {
        remove_cache(dir, set_kind[FF_SET_TRAIN_NEUTRAL], k, "cache");
        remove_cache(dir, set_kind[FF_SET_TEST_NEUTRAL], k, "cache");
    }
    remove_cache(dir, set_kind[FF_SET_TRAIN], k, "cache");
    remove_cache(dir, set_kind[FF_SET_TEST], k, "cache");
    remove_cache(dir, "scores", k, "f32");
}

/* Unlinking hundreds of megabytes takes ext4 tens of milliseconds: the
 * janitor does it beside the next layer's work. */
static int janitor_main(void *arg, ff_error_t *err) {
    (void)err;
    janitor_job_t *job = arg;
    remove_layer_caches(job->dir, job->layer, job->keep_neutral);
    return 0;
}

/* ---- operations ---- */

static int cache_begin_layer(void *self, uint32_t layer, ff_error_t *err) {
    cache_rows_t *r = self;
    r->layer = layer;
    for (int s = 0; s < FF_SET_COUNT; s++)
        if (set_used(r, (ff_set_t)s) && r->in[s].fd < 0 &&
            open_set(r, &r->in[s], (ff_set_t)s, layer, err) != 0)
            return -1;
    return 0;
}

static int cache_begin_pass(void *self, ff_set_t set, int write_next, ff_error_t *err) {
    cache_rows_t *r = self;
    if (!write_next) return 0;
    r->out_done[set] = 0;
    return create_set(r, &r->out[set], set, r->layer + 1, err);
}

static int cache_read(void *self, ff_set_t set, uint64_t c, int writable, float **rows,
                      ff_error_t *err) {
    cache_rows_t *r = self;
    (void)writable; /* the pipeline's buffers are ours to change */
    return ff_chunkio_read(r->io, &r->in[set], c, rows, err);
}

static int cache_prefetch(void *self, ff_set_t set, uint64_t c, ff_error_t *err) {
    cache_rows_t *r = self;
    return ff_chunkio_prefetch(r->io, &r->in[set], c, err);
}

static void cache_release(void *self, ff_set_t set, uint64_t c) {
    cache_rows_t *r = self;
    ff_chunkio_release(r->io, &r->in[set], c);
}

static int cache_out_buffer(void *self, ff_set_t set, uint64_t c, float **rows,
                            ff_error_t *err) {
    cache_rows_t *r = self;
    (void)set;
    return ff_chunkio_out_buffer(r->io, c, rows, err);
}

static int cache_out_commit(void *self, ff_set_t set, uint64_t c, ff_error_t *err) {
    cache_rows_t *r = self;
    return ff_chunkio_write(r->io, &r->out[set], c, err);
}

/* Waits for the writes in flight, then syncs set's outputs and marks them
 * complete (once: end_layer skips a set finished already). */
static int cache_out_finish(void *self, ff_set_t set, ff_error_t *err) {
    cache_rows_t *r = self;
    if (ff_chunkio_drain(r->io, err) != 0 || ff_actcache_finish(&r->out[set], err) != 0)
        return -1;
    r->out_done[set] = 1;
    return 0;
}

static int cache_out_reuse(void *self, ff_set_t set, ff_error_t *err) {
    cache_rows_t *r = self;
    if (open_set(r, &r->out[set], set, r->layer + 1, err) != 0) return -1;
    r->out_done[set] = 1;
    return 0;
}

static int cache_end_layer(void *self, uint32_t layer, ff_error_t *err) {
    cache_rows_t *r = self;
    if (ff_chunkio_drain(r->io, err) != 0) return -1;
    for (int s = 0; s < FF_SET_COUNT; s++)
        if (r->out[s].fd >= 0 && !r->out_done[s] && cache_out_finish(r, (ff_set_t)s, err) != 0)
            return -1;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        ff_actcache_move(&r->in[s], &r->out[s]);
        r->out_done[s] = 0;
    }
    r->layer = layer + 1;
    return 0;
}

static void cache_drop_layer(void *self, uint32_t layer) {
    cache_rows_t *r = self;
    ff_background_join(&r->janitor, NULL);
    snprintf(r->job.dir, sizeof r->job.dir, "%s", r->dir);
    r->job.layer = layer;
    r->job.keep_neutral = neutral_kept(r->cfg, layer);
    ff_background_start(&r->janitor, janitor_main, &r->job);
}

static int scores_path(char *out, const cache_rows_t *r, uint32_t layer, ff_error_t *err) {
    return ff_run_cache_path(out, r->dir, "scores", layer, "f32", err);
}

static int cache_scores_load(void *self, uint32_t layer, float *scores, ff_error_t *err) {
    cache_rows_t *r = self;
    char path[FF_PATH_MAX];
    if (scores_path(path, r, layer, err) != 0) return -1;
    return ff_scores_read(path, scores, r->shape[FF_SET_TEST].units * FF_CLASSES, layer, r->tag,
                          err);
}

static int cache_scores_save(void *self, uint32_t layer, const float *scores,
                             ff_error_t *err) {
    cache_rows_t *r = self;
    char path[FF_PATH_MAX];
    if (scores_path(path, r, layer, err) != 0) return -1;
    return ff_scores_write(path, scores, r->shape[FF_SET_TEST].units * FF_CLASSES, layer, r->tag,
                           err);
}

static void close_features(cache_rows_t *r) {
    uint32_t blocks = ff_train_scored_count(r->cfg);
    for (int side = 0; side < 2; side++) {
        for (uint32_t j = 0; r->features[side] != NULL && j < blocks; j++)
            ff_actcache_close(&r->features[side][j]);
        ff_mem_free(r->features[side]);
        r->features[side] = NULL;
    }
}

/* Opens the kept neutral caches of one side: layer k+1's for each scored
 * layer k. */
static int open_features(cache_rows_t *r, int test, ff_error_t *err) {
    uint32_t blocks = ff_train_scored_count(r->cfg), j = 0;
    ff_set_t set = test ? FF_SET_TEST_NEUTRAL : FF_SET_TRAIN_NEUTRAL;
    ff_actcache_t *files = ff_mem_calloc(FF_MEM_OTHER, blocks, sizeof *files);
    if (files == NULL) return ff_error_set(err, "out of memory");
    for (j = 0; j < blocks; j++) files[j].fd = -1;
    r->features[test] = files;
    j = 0;
    for (uint32_t k = 0; k < r->cfg->layers; k++)
        if (ff_train_layer_scored(r->cfg, k) && open_set(r, &files[j++], set, k + 1, err) != 0)
            return -1;
    return 0;
}

static int cache_features(void *self, int test, uint64_t c, float *out, ff_error_t *err) {
    cache_rows_t *r = self;
    uint32_t blocks = ff_train_scored_count(r->cfg);
    size_t D = (size_t)blocks * r->hidden;
    if (r->features[test] == NULL && open_features(r, test, err) != 0) return -1;
    for (uint32_t j = 0; j < blocks; j++) {
        ff_actcache_t *f = &r->features[test][j];
        float *rows;
        if (ff_chunkio_read(r->io, f, c, &rows, err) != 0) return -1;
        ff_head_gather(out, D, rows, ff_actcache_chunk_units(f, c), r->hidden, j);
        ff_chunkio_release(r->io, f, c);
    }
    return 0;
}

static void cache_finish(void *self) {
    cache_rows_t *r = self;
    ff_background_join(&r->janitor, NULL);
    close_features(r);
    for (uint32_t k = 0; k <= r->cfg->layers; k++) {
        remove_cache(r->dir, set_kind[FF_SET_TRAIN_NEUTRAL], k, "cache");
        remove_cache(r->dir, set_kind[FF_SET_TEST_NEUTRAL], k, "cache");
    }
}

static void cache_destroy(void *self) {
    cache_rows_t *r = self;
    if (r == NULL) return;
    ff_background_join(&r->janitor, NULL);
    ff_chunkio_destroy(r->io); /* drains requests that still point at the buffers */
    close_features(r);
    for (int s = 0; s < FF_SET_COUNT; s++) {
        ff_actcache_close(&r->out[s]);
        ff_actcache_close(&r->in[s]);
    }
    ff_mem_free(r);
}

static const ff_rows_ops_t cache_ops = {
    .begin_layer = cache_begin_layer,
    .begin_pass = cache_begin_pass,
    .read = cache_read,
    .prefetch = cache_prefetch,
    .release = cache_release,
    .out_buffer = cache_out_buffer,
    .out_commit = cache_out_commit,
    .out_finish = cache_out_finish,
    .out_reuse = cache_out_reuse,
    .end_layer = cache_end_layer,
    .drop_layer = cache_drop_layer,
    .scores_load = cache_scores_load,
    .scores_save = cache_scores_save,
    .features = cache_features,
    .finish = cache_finish,
    .destroy = cache_destroy,
};

/* The largest chunk of any set at either width: the size of every buffer
 * of the pipeline. @return 0 or -1 on overflow. */
static int buffer_bytes(const cache_rows_t *r, size_t *out) {
    *out = 0;
    for (int s = 0; s < FF_SET_COUNT; s++)
        for (uint32_t layer = 0; layer < 2; layer++) {
            ff_actcache_geometry_t g = geometry(r, (ff_set_t)s, layer);
            size_t slot;
            uint64_t file_bytes;
            if (g.units == 0) continue;
            if (ff_actcache_sizes(&g, &slot, &file_bytes) != 0) return -1;
            if (slot > *out) *out = slot;
        }
    return 0;
}

int ff_rows_cache_create(ff_rows_t *rows, const ff_config_t *cfg, const char *dir,
                         uint64_t train, uint64_t test, uint32_t width0, uint64_t tag,
                         ff_aio_t *aio, ff_error_t *err) {
    memset(rows, 0, sizeof *rows);
    ff_rows_shapes(rows->shape, cfg, train, test);
    rows->width0 = width0;
    rows->hidden = cfg->hidden;
    rows->per_layer_sets = 1;
    cache_rows_t *r = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *r);
    if (r == NULL) return ff_error_set(err, "out of memory");
    r->cfg = cfg;
    r->shape = rows->shape;
    r->tag = tag;
    r->width0 = width0;
    r->hidden = cfg->hidden;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        r->in[s].fd = r->out[s].fd = -1;
        r->in[s].sums = r->out[s].sums = NULL;
    }
    size_t bytes;
    if (ff_path_format(r->dir, err, "%s", dir) != 0) goto fail;
    if (buffer_bytes(r, &bytes) != 0) {
        ff_error_set(err, "activation chunk size overflows");
        goto fail;
    }
    if (ff_chunkio_create(&r->io, aio, bytes, err) != 0) goto fail;
    rows->ops = &cache_ops;
    rows->self = r;
    return 0;
fail:
    cache_destroy(r);
    return -1;
}

int ff_rows_cache_write_inputs(ff_rows_t *rows, const ff_rows_data_t *data, ff_error_t *err) {
    cache_rows_t *r = rows->self;
    int rc = -1;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        if (!set_used(r, (ff_set_t)s)) continue;
        ff_actcache_t *cache = &r->out[s];
        if (create_set(r, cache, (ff_set_t)s, 0, err) != 0) goto cleanup;
        for (uint64_t c = 0; c < cache->chunk_count; c++) {
            float *buf;
            if (ff_chunkio_out_buffer(r->io, c, &buf, err) != 0) goto cleanup;
            ff_rows_embed_chunk(buf, data, &r->shape[s], (ff_set_t)s, c);
            if (ff_chunkio_write(r->io, cache, c, err) != 0) goto cleanup;
            if (s == FF_SET_TRAIN) ff_hook_kill("input", 0, c + 1);
        }
        if (ff_chunkio_drain(r->io, err) != 0 || ff_actcache_finish(cache, err) != 0)
            goto cleanup;
        ff_actcache_close(cache);
    }
    float *zeros = ff_mem_calloc(FF_MEM_IO, r->shape[FF_SET_TEST].units * FF_CLASSES,
                                 sizeof(float));
    if (zeros == NULL) {
        ff_error_set(err, "out of memory for the scores");
        goto cleanup;
    }
    rc = cache_scores_save(r, 0, zeros, err);
    ff_mem_free(zeros);
cleanup:
    if (rc != 0) {
        ff_error_t ignored;
        ff_chunkio_drain(r->io, &ignored);
    }
    for (int s = 0; s < FF_SET_COUNT; s++) ff_actcache_close(&r->out[s]);
    return rc;
}

void ff_rows_cache_remove_below(ff_rows_t *rows, uint32_t layer) {
    cache_rows_t *r = rows->self;
    for (uint32_t k = 0; k < layer; k++) remove_layer_caches(r->dir, k, neutral_kept(r->cfg, k));
}
