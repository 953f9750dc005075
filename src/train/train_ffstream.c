/* train_ffstream.c: Forward-Forward out of core. Only the active layer (its
 * weights, gradients and Adam state) and a few chunk buffers are in memory;
 * the layer's inputs for every training row and every test image x label
 * live in activation caches on disk (actcache.h) and stream through the
 * layer with reads one chunk ahead and writes one chunk behind (aio.h).
 *
 *   input:  embed the training rows (positive, negative) and the test
 *           candidates into the caches of layer 0, then drop the dataset
 *   layer k: load or create layer k; train its epochs on cache k, saving a
 *           checkpoint after every epoch; one pass writes its outputs as
 *           cache k+1 and one pass over the test cache adds its goodness to
 *           the scores; run.json moves to k+1; cache k is deleted
 *
 * Every step runs the same code on the same rows in the same order as
 * ff-mem (step.c), so the weights are bit-identical; every random choice is
 * regenerated from (seed, layer, epoch), so a resumed run continues exactly
 * where the killed one stopped. */
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffstream/actcache.h"
#include "ffstream/aio.h"
#include "ffstream/eval.h"
#include "ffstream/head.h"
#include "ffstream/layer.h"
#include "ffstream/layerfile.h"
#include "ffstream/memmodel.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/report.h"
#include "ffstream/rng.h"
#include "ffstream/run.h"
#include "ffstream/step.h"
#include "ffstream/train.h"
#include "train_internal.h"

#define SCORES_MAGIC "FFSCORE"

typedef struct {
    const ff_config_t *cfg;
    const char *dir;
    ff_aio_t *aio;
    uint64_t tag;             /* config fingerprint ^ data fingerprint */
    uint64_t data_fp;
    size_t N, m, nbatches;    /* training images, images per batch, batches */
    size_t T, E, echunks;     /* test images, images per eval chunk, chunks */
    size_t in0, H;
    float *buf[4];            /* 0,1: chunks being read; 2,3: chunks being written */
    size_t buf_bytes;
    size_t write_pending[2];  /* bytes of the write in flight from buf[2+i] */
    const char *write_path[2];
    const ff_actcache_t *write_cache[2]; /* ... into this cache, */
    uint64_t write_chunk[2];             /* ... as this chunk */
    ff_step_workspace_t ws;
    float *good;              /* [rows of a chunk] goodness */
    float *scores;            /* [T * 10] */
    uint8_t *test_labels;     /* [T] */
    uint8_t *train_labels;    /* [N] (the softmax head's targets) */
    uint32_t img_rows, img_cols; /* image shape, for input jitter */
    ff_progress_t prog;
    struct {
        int active, fd, buffer;
        uint64_t chunk;
    } ahead;                  /* a first chunk read issued by the previous phase */
    ff_result_t *res;
} stream_t;

/* ---- chunk I/O ---------------------------------------------------------- */

static int await_buffer(stream_t *s, int b, size_t want, const char *path, const char *what,
                        ff_error_t *err) {
    int64_t got;
    if (ff_aio_wait_tag(s->aio, (uint64_t)b, &got, err) != 0)
        return ff_error_wrap(err, "%s: %s", path, what);
    if (got < 0)
        return ff_error_set(err, "%s: %s failed: %s", path, what, strerror((int)-got));
    if ((size_t)got != want)
        return ff_error_set(err, "%s: short %s: %lld of %zu bytes (truncated file?)", path, what,
                            (long long)got, want);
    return 0;
}

static int read_chunk(stream_t *s, const ff_actcache_t *cache, uint64_t c, int b,
                      ff_error_t *err) {
    if (ff_aio_read(s->aio, cache->fd, s->buf[b], ff_actcache_chunk_io_bytes(cache, c),
                    ff_actcache_chunk_offset(cache, c), (uint64_t)b, err) != 0)
        return ff_error_wrap(err, "%s: reading chunk %llu", cache->path, (unsigned long long)c);
    return 0;
}

static int await_read(stream_t *s, const ff_actcache_t *cache, uint64_t c, int b,
                      ff_error_t *err) {
    return await_buffer(s, b, ff_actcache_chunk_io_bytes(cache, c), cache->path, "read", err);
}

/* Waits for the write in flight from output buffer b (2 or 3), if any. */
static int drain_write(stream_t *s, int b, ff_error_t *err) {
    size_t want = s->write_pending[b - 2];
    if (want == 0) return 0;
    s->write_pending[b - 2] = 0;
    if (await_buffer(s, b, want, s->write_path[b - 2], "write", err) != 0) return -1;
    /* Written: in buffered mode its pages can leave the page cache now. */
    ff_actcache_release(s->write_cache[b - 2], s->write_chunk[b - 2]);
    return 0;
}

/* On an error path: lets the writes still in flight finish (they point into
 * files about to be closed and buffers about to be freed). */
static void drain_writes_quietly(stream_t *s) {
    ff_error_t ignored;
    drain_write(s, 2, &ignored);
    drain_write(s, 3, &ignored);
}

static int write_chunk(stream_t *s, ff_actcache_t *cache, uint64_t c, int b, ff_error_t *err) {
    ff_actcache_pad(cache, c, s->buf[b]);
    size_t bytes = ff_actcache_chunk_io_bytes(cache, c);
    if (ff_aio_write(s->aio, cache->fd, s->buf[b], bytes, ff_actcache_chunk_offset(cache, c),
                     (uint64_t)b, err) != 0)
        return ff_error_wrap(err, "%s: writing chunk %llu", cache->path, (unsigned long long)c);
    s->write_pending[b - 2] = bytes;
    s->write_path[b - 2] = cache->path;
    s->write_cache[b - 2] = cache;
    s->write_chunk[b - 2] = c;
    return 0;
}

static ff_actcache_geometry_t train_geometry(const stream_t *s, uint32_t layer) {
    ff_actcache_geometry_t g = {.width = (uint32_t)(layer == 0 ? s->in0 : s->H),
                                .rows_per_unit = 2, .units = s->N, .units_per_chunk = s->m,
                                .tag = s->tag, .layer = layer};
    return g;
}

/* Neutral-label rows (the softmax head's inputs), one per image: chunks of
 * m images for training, E for testing, as ff-mem's feature passes. */
static ff_actcache_geometry_t neutral_geometry(const stream_t *s, uint32_t layer, int test) {
    ff_actcache_geometry_t g = {.width = (uint32_t)(layer == 0 ? s->in0 : s->H),
                                .rows_per_unit = 1, .units = test ? s->T : s->N,
                                .units_per_chunk = test ? s->E : s->m, .tag = s->tag,
                                .layer = layer};
    return g;
}

static int neutral_path(char *path, size_t cap, const stream_t *s, uint32_t layer, int test) {
    return ff_run_cache_path(path, cap, s->dir, test ? "test-neutral" : "train-neutral", layer,
                             "cache");
}

static ff_actcache_geometry_t test_geometry(const stream_t *s, uint32_t layer) {
    ff_actcache_geometry_t g = {.width = (uint32_t)(layer == 0 ? s->in0 : s->H),
                                .rows_per_unit = FF_CLASSES, .units = s->T,
                                .units_per_chunk = s->E, .tag = s->tag, .layer = layer};
    return g;
}

/* ---- scores ------------------------------------------------------------- */

static int write_scores(stream_t *s, uint32_t layer, ff_error_t *err) {
    char path[4200];
    if (ff_run_cache_path(path, sizeof path, s->dir, "scores", layer, "f32") != 0)
        return ff_error_set(err, "%s: path too long", s->dir);
    size_t count = s->T * FF_CLASSES, bytes = 16 + count * sizeof(float);
    uint8_t *data = ff_mem_alloc(FF_MEM_IO, bytes);
    if (data == NULL) return ff_error_set(err, "%s: out of memory", path);
    memset(data, 0, 16);
    memcpy(data, SCORES_MAGIC, 8);
    for (int i = 0; i < 8; i++) data[8 + i] = (uint8_t)((uint64_t)count >> (8 * i));
    memcpy(data + 16, s->scores, count * sizeof(float));
    int rc = ff_write_file_atomic(path, data, bytes, err);
    ff_mem_free(data);
    return rc;
}

static int read_scores(stream_t *s, uint32_t layer, ff_error_t *err) {
    char path[4200];
    if (ff_run_cache_path(path, sizeof path, s->dir, "scores", layer, "f32") != 0)
        return ff_error_set(err, "%s: path too long", s->dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t count = s->T * FF_CLASSES;
    uint8_t head[16];
    int rc = -1;
    if (fread(head, 1, 16, f) != 16 || memcmp(head, SCORES_MAGIC, 8) != 0) {
        ff_error_set(err, "%s: not an ffstream scores file", path);
        goto done;
    }
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)head[8 + i] << (8 * i);
    if (n != count) {
        ff_error_set(err, "%s: holds %llu scores, expected %zu", path, (unsigned long long)n,
                     count);
        goto done;
    }
    if (fread(s->scores, sizeof(float), count, f) != count || fgetc(f) != EOF) {
        ff_error_set(err, "%s: truncated or oversized scores file", path);
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

/* ---- the first layer's inputs ------------------------------------------- */

static int write_input_caches(stream_t *s, const ff_dataset_t *train, const ff_dataset_t *test,
                              const uint8_t *neg, ff_error_t *err) {
    ff_actcache_t cache = {.fd = -1};
    char path[4200];
    int rc = -1;
    ff_actcache_geometry_t g = train_geometry(s, 0);
    if (ff_run_cache_path(path, sizeof path, s->dir, "train", 0, "cache") != 0 ||
        ff_actcache_create(&cache, path, &g, err) != 0)
        goto cleanup;
    for (uint64_t c = 0; c < cache.chunk_count; c++) {
        int b = 2 + (int)(c & 1);
        if (drain_write(s, b, err) != 0) goto cleanup;
        size_t r0 = c * s->m, mb = ff_actcache_chunk_units(&cache, c), P = train->pixels;
        float scale = (float)s->cfg->label_scale;
        ff_data_embed_rows_scaled(s->buf[b], train->images + r0 * P, P, NULL, train->labels + r0,
                                  mb, s->cfg->label, scale);
        ff_data_embed_rows_scaled(s->buf[b] + mb * s->in0, train->images + r0 * P, P, NULL,
                                  neg + r0, mb, s->cfg->label, scale);
        if (write_chunk(s, &cache, c, b, err) != 0) goto cleanup;
        ff_progress_update(&s->prog, 0, "ff-stream writing layer 1 inputs", NAN, NAN, NAN, 0);
        ff_train_test_kill("input", 0, c + 1);
    }
    if (drain_write(s, 2, err) != 0 || drain_write(s, 3, err) != 0) goto cleanup;
    if (ff_actcache_finish(&cache, err) != 0) goto cleanup;
    ff_actcache_close(&cache);

    g = test_geometry(s, 0);
    if (ff_run_cache_path(path, sizeof path, s->dir, "test", 0, "cache") != 0 ||
        ff_actcache_create(&cache, path, &g, err) != 0)
        goto cleanup;
    for (uint64_t c = 0; c < cache.chunk_count; c++) {
        int b = 2 + (int)(c & 1);
        if (drain_write(s, b, err) != 0) goto cleanup;
        size_t i0 = c * s->E, n = ff_actcache_chunk_units(&cache, c);
        ff_eval_embed_candidates_scaled(s->buf[b], test->images + i0 * test->pixels,
                                        test->pixels, n, s->cfg->label,
                                        (float)s->cfg->label_scale);
        if (write_chunk(s, &cache, c, b, err) != 0) goto cleanup;
    }
    if (drain_write(s, 2, err) != 0 || drain_write(s, 3, err) != 0) goto cleanup;
    if (ff_actcache_finish(&cache, err) != 0) goto cleanup;
    for (int test_side = 0; s->cfg->eval_softmax && test_side < 2; test_side++) {
        const ff_dataset_t *d = test_side ? test : train;
        ff_actcache_close(&cache);
        g = neutral_geometry(s, 0, test_side);
        if (neutral_path(path, sizeof path, s, 0, test_side) != 0 ||
            ff_actcache_create(&cache, path, &g, err) != 0)
            goto cleanup;
        for (uint64_t c = 0; c < cache.chunk_count; c++) {
            int b = 2 + (int)(c & 1);
            if (drain_write(s, b, err) != 0) goto cleanup;
            size_t i0 = c * g.units_per_chunk, n = ff_actcache_chunk_units(&cache, c);
            ff_data_embed_rows_scaled(s->buf[b], d->images + i0 * d->pixels, d->pixels, NULL,
                                      NULL, n, s->cfg->label, (float)s->cfg->label_scale);
            if (write_chunk(s, &cache, c, b, err) != 0) goto cleanup;
        }
        if (drain_write(s, 2, err) != 0 || drain_write(s, 3, err) != 0) goto cleanup;
        if (ff_actcache_finish(&cache, err) != 0) goto cleanup;
    }
    memset(s->scores, 0, s->T * FF_CLASSES * sizeof(float));
    if (write_scores(s, 0, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0) drain_writes_quietly(s);
    ff_actcache_close(&cache);
    return rc;
}

/* ---- training one layer -------------------------------------------------- */

static int save_layer(stream_t *s, const ff_layer_t *layer, uint32_t k,
                      const ff_epoch_means_t *last, const ff_step_stats_t *running,
                      uint32_t epochs_done, uint32_t batch_in_epoch, ff_error_t *err) {
    char path[4200];
    if (ff_run_layer_path(path, sizeof path, s->dir, k) != 0)
        return ff_error_set(err, "%s: path too long", s->dir);
    ff_layerfile_meta_t meta;
    ff_train_layer_meta(&meta, s->cfg, k, s->data_fp, last, running, epochs_done, batch_in_epoch);
    return ff_layerfile_save(path, layer, &meta, NULL, err);
}

/* The final checkpoint of a layer, written on its own thread while the
 * passes stream the caches through the (read-only) layer: compression and
 * fsync then cost no wall time. */
typedef struct {
    pthread_t thread;
    int started;
    char path[4200];
    const ff_layer_t *layer;
    ff_layerfile_meta_t meta;
    int rc;
    ff_error_t err;
} background_save_t;

static void *background_save_main(void *arg) {
    background_save_t *b = arg;
    b->rc = ff_layerfile_save(b->path, b->layer, &b->meta, NULL, &b->err);
    return NULL;
}

static int background_save_start(background_save_t *b, stream_t *s, const ff_layer_t *layer,
                                 uint32_t k, const ff_epoch_means_t *last, ff_error_t *err) {
    memset(b, 0, sizeof *b);
    if (ff_run_layer_path(b->path, sizeof b->path, s->dir, k) != 0)
        return ff_error_set(err, "%s: path too long", s->dir);
    ff_step_stats_t none = {0};
    ff_train_layer_meta(&b->meta, s->cfg, k, s->data_fp, last, &none, s->cfg->epochs, 0);
    b->layer = layer;
    int rc = pthread_create(&b->thread, NULL, background_save_main, b);
    if (rc != 0) {
        /* No thread: save in the foreground instead. */
        return ff_layerfile_save(b->path, layer, &b->meta, NULL, err);
    }
    b->started = 1;
    return 0;
}

static int background_save_join(background_save_t *b, ff_error_t *err) {
    if (!b->started) return 0;
    pthread_join(b->thread, NULL);
    b->started = 0;
    if (b->rc != 0) {
        *err = b->err;
        return -1;
    }
    return 0;
}

/* Loads layer k's checkpoint if there is one, else creates the layer. */
static int open_layer(stream_t *s, uint32_t k, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                      int *found, ff_error_t *err) {
    char path[4200];
    struct stat st;
    *found = 0;
    uint32_t in = (uint32_t)(k == 0 ? s->in0 : s->H);
    if (ff_run_layer_path(path, sizeof path, s->dir, k) != 0)
        return ff_error_set(err, "%s: path too long", s->dir);
    if (stat(path, &st) != 0) {
        if (ff_layer_alloc(layer, in, (uint32_t)s->H, 1, err) != 0) return -1;
        ff_layer_init_for_run(layer, s->cfg->seed, k);
        memset(meta, 0, sizeof *meta);
        meta->loss = meta->goodness_pos = meta->goodness_neg = NAN;
        return 0;
    }
    if (ff_layerfile_load(path, layer, meta, 1, err) != 0) return -1;
    *found = 1;
    const char *field = NULL;
    if (layer->in != in || layer->out != s->H) field = "shape";
    else if (meta->layer_index != k) field = "layer_index";
    else if (meta->epochs_total != s->cfg->epochs) field = "epochs_total";
    else if (meta->data_fingerprint != s->data_fp) field = "data_fingerprint";
    else if (meta->config_fingerprint != ff_config_fingerprint(s->cfg)) field = "config_fingerprint";
    else if (meta->epochs_done > meta->epochs_total) field = "epochs_done";
    else if (meta->batch_in_epoch >= s->nbatches) field = "batch_in_epoch";
    if (field != NULL) {
        uint32_t got_in = layer->in, got_out = layer->out;
        ff_layer_free(layer);
        return ff_error_set(err,
                            "%s: checkpoint does not belong to this run: field %s differs (file: "
                            "layer %u, %u -> %u, %u of %u epochs; run: layer %u, %u -> %zu, %u "
                            "epochs)",
                            path, field, meta->layer_index, got_in, got_out, meta->epochs_done,
                            meta->epochs_total, k, in, s->H, s->cfg->epochs);
    }
    return 0;
}

/* The read one phase issues for the next (the first chunk of the next
 * epoch or pass) so that no phase starts by waiting for the disk. */
static void ahead_set(stream_t *s, const ff_actcache_t *cache, uint64_t c, int b) {
    s->ahead.active = 1;
    s->ahead.fd = cache->fd;
    s->ahead.chunk = c;
    s->ahead.buffer = b;
}

/* Makes sure chunk c of cache is being read; @return the buffer it goes to
 * (the one already reading it, or `preferred`), or -1 with err. */
static int start_first_read(stream_t *s, const ff_actcache_t *cache, uint64_t c, int preferred,
                            ff_error_t *err) {
    if (s->ahead.active && s->ahead.fd == cache->fd && s->ahead.chunk == c) {
        s->ahead.active = 0;
        return s->ahead.buffer;
    }
    if (s->ahead.active) {
        /* A stale read-ahead (a stop or an error changed the plan): drop it. */
        int64_t ignored;
        s->ahead.active = 0;
        if (ff_aio_wait_tag(s->aio, (uint64_t)s->ahead.buffer, &ignored, err) != 0) return -1;
    }
    if (read_chunk(s, cache, c, preferred, err) != 0) return -1;
    return preferred;
}

/* Trains layer k on its training cache `cache` from where its checkpoint
 * stopped, saving a checkpoint after every epoch but the last. When it
 * finishes, the first chunk of `next` (chunk 0) is already being read.
 * @return 0, 1 when a stop was requested (saved), -1 on error. */
static int train_layer(stream_t *s, uint32_t k, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                       const ff_actcache_t *cache, const ff_actcache_t *next, ff_error_t *err) {
    const ff_config_t *cfg = s->cfg;
    int rc = -1;
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, 2 * s->nbatches * sizeof(uint32_t));
    if (order == NULL) return ff_error_set(err, "out of memory for the batch order");
    uint32_t *next_order = order + s->nbatches;
    ff_step_params_t sp = ff_train_step_params(cfg, layer->out);
    ff_epoch_means_t last = {meta->loss, meta->goodness_pos, meta->goodness_neg};
    ff_step_stats_t st = {.loss_sum = meta->loss_sum, .good_pos_sum = meta->good_pos_sum,
                          .good_neg_sum = meta->good_neg_sum, .batches = meta->batches,
                          .npos = meta->npos, .nneg = meta->nneg};
    uint32_t first_batch = meta->batch_in_epoch;
    uint64_t steps_here = 0; /* steps of this layer taken by this process */
    ff_rng_t rng;
    ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, k, meta->epochs_done);
    ff_rng_permutation(&rng, order, s->nbatches);
    for (uint32_t e = meta->epochs_done; e < cfg->epochs; e++) {
        int b = start_first_read(s, cache, order[first_batch], 0, err);
        if (b < 0) goto cleanup;
        if (e + 1 < cfg->epochs) {
            ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, k, e + 1);
            ff_rng_permutation(&rng, next_order, s->nbatches);
        }
        for (size_t bi = first_batch; bi < s->nbatches; bi++, b ^= 1) {
            uint64_t c = order[bi];
            if (await_read(s, cache, c, b, err) != 0) goto cleanup;
            /* Read the next chunk (of this epoch, the next one, or the next
             * pass) while this one is computed. */
            if (bi + 1 < s->nbatches) {
                if (read_chunk(s, cache, order[bi + 1], b ^ 1, err) != 0) goto cleanup;
            } else if (e + 1 < cfg->epochs) {
                if (read_chunk(s, cache, next_order[0], b ^ 1, err) != 0) goto cleanup;
                ahead_set(s, cache, next_order[0], b ^ 1);
            } else if (next != NULL) {
                if (read_chunk(s, next, 0, b ^ 1, err) != 0) goto cleanup;
                ahead_set(s, next, 0, b ^ 1);
            }
            size_t mb = ff_actcache_chunk_units(cache, c);
            /* The first layer's cache holds un-jittered rows: shift them as
             * they arrive, exactly as ff-mem shifts the rows it embeds. */
            if (k == 0 && cfg->fresh_negatives)
                ff_data_redraw_negatives(s->buf[b], mb, layer->in,
                                         (size_t)s->img_rows * s->img_cols, cfg->label,
                                         cfg->seed, e, c);
            if (k == 0)
                ff_data_jitter_batch(s->buf[b], mb, layer->in, s->img_rows, s->img_cols,
                                     cfg->label, cfg->jitter, cfg->seed, e, c);
            sp.adam.lr = ff_train_layer_lr(cfg, e, bi, s->nbatches);
            ff_step_train(layer, &s->ws, s->buf[b], mb, mb, &sp, &st);
            ff_actcache_release(cache, c);
            s->res->train_flops += 4.0 * 2.0 * (double)mb * layer->in * layer->out;
            steps_here++;
            char label[80];
            snprintf(label, sizeof label, "ff-stream layer %u/%u epoch %u/%u", k + 1, cfg->layers,
                     e + 1, cfg->epochs);
            ff_progress_update(&s->prog, 2 * mb, label, st.loss_sum / (double)st.batches,
                               st.good_pos_sum / (double)st.npos,
                               st.good_neg_sum / (double)st.nneg, 0);
            ff_train_test_kill("train", k, steps_here);
            if (ff_train_stop_requested() && bi + 1 < s->nbatches) {
                /* Save mid-epoch: the next run starts at batch bi + 1. */
                int64_t ignored;
                if (ff_aio_wait_tag(s->aio, (uint64_t)(b ^ 1), &ignored, err) != 0) goto cleanup;
                if (save_layer(s, layer, k, &last, &st, e, (uint32_t)(bi + 1), err) != 0)
                    goto cleanup;
                rc = 1;
                goto cleanup;
            }
        }
        last = ff_train_epoch_means(&st);
        memset(&st, 0, sizeof st);
        first_batch = 0;
        memcpy(order, next_order, s->nbatches * sizeof(uint32_t));
        /* The last epoch's checkpoint is written by the caller, in the
         * background while the passes run. */
        if (e + 1 < cfg->epochs && save_layer(s, layer, k, &last, &st, e + 1, 0, err) != 0)
            goto cleanup;
        if (ff_train_stop_requested() && e + 1 < cfg->epochs) {
            rc = 1;
            goto cleanup;
        }
    }
    meta->loss = last.loss;
    meta->goodness_pos = last.goodness_pos;
    meta->goodness_neg = last.goodness_neg;
    meta->epochs_done = cfg->epochs;
    meta->complete = 1;
    rc = 0;
cleanup:
    ff_mem_free(order);
    return rc;
}

/* ---- the passes after a layer is trained --------------------------------- */

/* Streams cache `in` through the layer; writes the outputs to `out` when it
 * is not NULL, and adds each chunk's goodness to the scores when `score`.
 * At its last chunk it starts reading chunk 0 of `next` (may be NULL). The
 * last writes may still be in flight on return (drain_write before closing
 * `out`). */
static int stream_pass(stream_t *s, const ff_layer_t *layer, const ff_actcache_t *in,
                       ff_actcache_t *out, int score, const ff_actcache_t *next,
                       const char *phase, uint32_t k, ff_error_t *err) {
    int b = start_first_read(s, in, 0, 0, err);
    if (b < 0) return -1;
    for (uint64_t c = 0; c < in->chunk_count; c++, b ^= 1) {
        int ob = 2 + (int)(c & 1);
        if (await_read(s, in, c, b, err) != 0) return -1;
        if (c + 1 < in->chunk_count) {
            if (read_chunk(s, in, c + 1, b ^ 1, err) != 0) return -1;
        } else if (next != NULL) {
            if (read_chunk(s, next, 0, b ^ 1, err) != 0) return -1;
            ahead_set(s, next, 0, b ^ 1);
        }
        size_t rows = ff_actcache_chunk_rows(in, c);
        float *y = s->ws.y;
        if (out != NULL) {
            if (drain_write(s, ob, err) != 0) return -1;
            y = s->buf[ob];
        }
        ff_step_forward(y, layer, &s->ws, s->buf[b], rows);
        ff_actcache_release(in, c);
        if (score) {
            size_t n = ff_actcache_chunk_units(in, c);
            ff_dense_goodness(s->good, y, rows, layer->out, s->cfg->goodness);
            ff_eval_accumulate(s->scores + c * s->E * FF_CLASSES, s->good, n,
                               ff_config_layer_theta(s->cfg, layer->out));
        }
        if (out != NULL && write_chunk(s, out, c, ob, err) != 0) return -1;
        ff_progress_update(&s->prog, rows, "ff-stream writing the next layer's inputs", NAN, NAN,
                           NAN, 0);
        ff_train_test_kill(phase, k, c + 1);
    }
    return 0;
}

/* The softmax head's inputs: streams the neutral rows of layer k (training
 * and test) through it into the neutral caches of layer k+1, which are also
 * layer k's features when it is scored. */
static int neutral_passes(stream_t *s, uint32_t k, const ff_layer_t *layer, ff_error_t *err) {
    ff_actcache_t in = {.fd = -1}, out = {.fd = -1};
    char path[4200];
    int rc = -1;
    for (int test_side = 0; test_side < 2; test_side++) {
        ff_actcache_geometry_t g = neutral_geometry(s, k, test_side);
        if (neutral_path(path, sizeof path, s, k, test_side) != 0 ||
            ff_actcache_open(&in, path, &g, err) != 0)
            goto cleanup;
        g = neutral_geometry(s, k + 1, test_side);
        if (neutral_path(path, sizeof path, s, k + 1, test_side) != 0 ||
            ff_actcache_create(&out, path, &g, err) != 0)
            goto cleanup;
        if (stream_pass(s, layer, &in, &out, 0, NULL, "neutral", k, err) != 0) goto cleanup;
        if (drain_write(s, 2, err) != 0 || drain_write(s, 3, err) != 0) goto cleanup;
        if (ff_actcache_finish(&out, err) != 0) goto cleanup;
        ff_actcache_close(&out);
        ff_actcache_close(&in);
    }
    rc = 0;
cleanup:
    if (rc != 0) drain_writes_quietly(s);
    ff_actcache_close(&out);
    ff_actcache_close(&in);
    return rc;
}

/* After layer k is trained on `train_in`: cache k+1 for training and
 * testing (the last writes of one pass overlap the next pass), and the
 * scores including layer k. The new caches are handed back open in
 * train_out and test_out (the next layer's inputs) with the first chunk of
 * the next layer's first epoch already being read. */
static int layer_passes(stream_t *s, uint32_t k, const ff_layer_t *layer,
                        const ff_actcache_t *train_in, const ff_actcache_t *test_in,
                        ff_actcache_t *train_out, ff_actcache_t *test_out, ff_error_t *err) {
    const ff_config_t *cfg = s->cfg;
    int last = k + 1 == cfg->layers, rc = -1;
    char path[4200];
    ff_actcache_geometry_t g;
    if (read_scores(s, k, err) != 0) goto cleanup;
    if (!last) {
        g = train_geometry(s, k + 1);
        if (ff_run_cache_path(path, sizeof path, s->dir, "train", k + 1, "cache") != 0 ||
            ff_actcache_create(train_out, path, &g, err) != 0)
            goto cleanup;
        if (stream_pass(s, layer, train_in, train_out, 0, test_in, "cache", k, err) != 0)
            goto cleanup;
        g = test_geometry(s, k + 1);
        if (ff_run_cache_path(path, sizeof path, s->dir, "test", k + 1, "cache") != 0 ||
            ff_actcache_create(test_out, path, &g, err) != 0)
            goto cleanup;
    }
    if (stream_pass(s, layer, test_in, last ? NULL : test_out,
                    ff_train_layer_scored(cfg, k), NULL, "eval", k, err) != 0)
        goto cleanup;
    if (drain_write(s, 2, err) != 0 || drain_write(s, 3, err) != 0) goto cleanup;
    if (cfg->eval_softmax && neutral_passes(s, k, layer, err) != 0) goto cleanup;
    if (!last && (ff_actcache_finish(train_out, err) != 0 ||
                  ff_actcache_finish(test_out, err) != 0))
        goto cleanup;
    if (write_scores(s, k + 1, err) != 0) goto cleanup;
    if (!last) {
        /* The next layer starts with epoch 0 in its own order: read its
         * first chunk while the checkpoint and run.json are written. */
        uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, s->nbatches * sizeof(uint32_t));
        if (order == NULL) {
            ff_error_set(err, "out of memory for the batch order");
            goto cleanup;
        }
        ff_rng_t rng;
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_EPOCH, k + 1, 0);
        ff_rng_permutation(&rng, order, s->nbatches);
        int started = read_chunk(s, train_out, order[0], 0, err);
        if (started == 0) ahead_set(s, train_out, order[0], 0);
        ff_mem_free(order);
        if (started != 0) goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) drain_writes_quietly(s);
    return rc;
}

/* Removes layer k's inputs; its neutral rows stay when they are the
 * features of a scored layer (keep_neutral), until the head is trained. */
static void remove_neutral_caches(const char *dir, uint32_t k) {
    char path[4200];
    if (ff_run_cache_path(path, sizeof path, dir, "train-neutral", k, "cache") == 0) unlink(path);
    if (ff_run_cache_path(path, sizeof path, dir, "test-neutral", k, "cache") == 0) unlink(path);
}

static void remove_layer_caches(const char *dir, uint32_t k, int keep_neutral) {
    char path[4200];
    if (!keep_neutral) remove_neutral_caches(dir, k);
    if (ff_run_cache_path(path, sizeof path, dir, "train", k, "cache") == 0) unlink(path);
    if (ff_run_cache_path(path, sizeof path, dir, "test", k, "cache") == 0) unlink(path);
    if (ff_run_cache_path(path, sizeof path, dir, "scores", k, "f32") == 0) unlink(path);
}

/* ---- the result ---------------------------------------------------------- */

/* Per-layer figures, read back from the checkpoints' headers so a resumed
 * run reports the same as an uninterrupted one. */
static int collect_layers(stream_t *s, ff_error_t *err) {
    ff_result_t *res = s->res;
    for (uint32_t k = 0; k < s->cfg->layers; k++) {
        char path[4200];
        ff_layerfile_info_t info;
        if (ff_run_layer_path(path, sizeof path, s->dir, k) != 0 ||
            ff_layerfile_read_info(path, &info, err) != 0)
            return -1;
        res->per_layer[k].in = info.in;
        res->per_layer[k].out = info.out;
        res->per_layer[k].loss = info.meta.loss;
        res->per_layer[k].goodness_pos = info.meta.goodness_pos;
        res->per_layer[k].goodness_neg = info.meta.goodness_neg;
    }
    return 0;
}

/* Deletes a finished layer's caches on a thread of its own: unlinking
 * hundreds of megabytes takes ext4 tens of milliseconds. */
typedef struct {
    pthread_t thread;
    int started;
    char dir[4096];
    uint32_t layer;
    int keep_neutral;
} janitor_t;

static void *janitor_main(void *arg) {
    janitor_t *j = arg;
    remove_layer_caches(j->dir, j->layer, j->keep_neutral);
    return NULL;
}

static void janitor_join(janitor_t *j) {
    if (!j->started) return;
    pthread_join(j->thread, NULL);
    j->started = 0;
}

static void janitor_start(janitor_t *j, const char *dir, uint32_t k, int keep_neutral) {
    janitor_join(j);
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    j->layer = k;
    j->keep_neutral = keep_neutral;
    if (pthread_create(&j->thread, NULL, janitor_main, j) == 0) j->started = 1;
    else remove_layer_caches(dir, k, keep_neutral);
}

/* Whether the neutral cache of layer k (layer k-1's outputs) is the
 * features of a scored layer, needed by the head at the end. */
static int neutral_kept(const ff_config_t *cfg, uint32_t k) {
    return cfg->eval_softmax && k > 0 && ff_train_layer_scored(cfg, k - 1);
}

/* ---- the softmax head ------------------------------------------------------ */

/* Trains the softmax head on the kept neutral caches (the scored layers'
 * outputs), chunk by chunk as ff-mem does from memory, then scores the test
 * images; only one chunk of features is in memory. Restarts from scratch
 * when a run is resumed here. */
static int head_phase(stream_t *s, ff_error_t *err) {
    const ff_config_t *cfg = s->cfg;
    uint32_t blocks = ff_train_scored_count(cfg);
    size_t D = (size_t)blocks * s->H, rows = s->m > s->E ? s->m : s->E;
    ff_actcache_t *files = calloc(blocks, sizeof *files);
    float *features = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * D * sizeof(float));
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, s->nbatches * sizeof(uint32_t));
    ff_head_t head = {0};
    size_t correct = 0;
    int rc = -1;
    for (uint32_t j = 0; files != NULL && j < blocks; j++) files[j].fd = -1;
    if (files == NULL || features == NULL || order == NULL) {
        ff_error_set(err, "out of memory for the softmax head's %zu x %zu features", rows, D);
        goto cleanup;
    }
    if (ff_head_init(&head, (uint32_t)D, rows, cfg->seed, cfg->layers, err) != 0) goto cleanup;
    if (s->ahead.active) {
        int64_t ignored;
        s->ahead.active = 0;
        if (ff_aio_wait_tag(s->aio, (uint64_t)s->ahead.buffer, &ignored, err) != 0) goto cleanup;
    }
    for (int test_side = 0; test_side < 2; test_side++) {
        uint32_t j = 0;
        for (uint32_t k = 0; k < cfg->layers; k++) {
            if (!ff_train_layer_scored(cfg, k)) continue;
            char path[4200];
            ff_actcache_geometry_t g = neutral_geometry(s, k + 1, test_side);
            if (neutral_path(path, sizeof path, s, k + 1, test_side) != 0 ||
                ff_actcache_open(&files[j++], path, &g, err) != 0)
                goto cleanup;
        }
        uint64_t chunks = files[0].chunk_count;
        uint32_t epochs = test_side ? 1 : cfg->head_epochs;
        for (uint32_t e = 0; e < epochs; e++) {
            if (!test_side) {
                ff_rng_t rng;
                ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_HEAD, e, 0);
                ff_rng_permutation(&rng, order, chunks);
            }
            for (uint64_t bi = 0; bi < chunks; bi++) {
                uint64_t c = test_side ? bi : order[bi];
                size_t n = ff_actcache_chunk_units(&files[0], c);
                for (j = 0; j < blocks; j++) {
                    if (read_chunk(s, &files[j], c, 0, err) != 0 ||
                        await_read(s, &files[j], c, 0, err) != 0)
                        goto cleanup;
                    ff_head_gather(features, D, s->buf[0], n, s->H, j);
                    ff_actcache_release(&files[j], c);
                }
                if (test_side) {
                    correct += ff_head_correct(&head, features, s->test_labels + c * s->E, n);
                } else {
                    ff_adam_params_t adam = ff_train_head_adam(cfg, e, bi, chunks);
                    ff_head_train_step(&head, features, s->train_labels + c * s->m, n, &adam);
                }
            }
        }
        for (j = 0; j < blocks; j++) ff_actcache_close(&files[j]);
    }
    s->res->softmax_accuracy = s->T ? (double)correct / (double)s->T : 0.0;
    s->res->head_hash = ff_hash_bytes(FF_FNV_OFFSET, head.layer.params,
                                      ff_layer_block_bytes(&head.layer));
    rc = 0;
cleanup:
    for (uint32_t j = 0; files != NULL && j < blocks; j++) ff_actcache_close(&files[j]);
    ff_head_free(&head);
    ff_mem_free(order);
    ff_mem_free(features);
    free(files);
    return rc;
}

/* ---- the trainer ---------------------------------------------------------- */

int ff_train_ffstream(const ff_config_t *cfg, ff_dataset_t *train, ff_dataset_t *test,
                      ff_result_t *res, ff_error_t *err) {
    memset(res, 0, sizeof *res);
    stream_t s = {.cfg = cfg, .dir = cfg->run_dir, .res = res};
    int rc = -1;
    uint8_t *neg = NULL;
    ff_layer_t layer = {0};
    background_save_t save = {.started = 0};
    janitor_t janitor = {.started = 0};
    ff_actcache_t train_in = {.fd = -1}, test_in = {.fd = -1};
    ff_actcache_t train_out = {.fd = -1}, test_out = {.fd = -1};
    ff_error_t save_err;
    ff_run_state_t state;
    int missing = 0;
    s.N = train->count;
    s.m = cfg->batch / 2;
    s.nbatches = (s.N + s.m - 1) / s.m;
    s.T = test->count;
    s.E = cfg->batch / 10 > 0 ? cfg->batch / 10 : 1; /* as ff-mem's evaluation chunks */
    if (s.E > s.T) s.E = s.T;
    s.echunks = (s.T + s.E - 1) / s.E;
    s.in0 = ff_data_input_dim(train->pixels, cfg->label);
    s.H = cfg->hidden;
    s.data_fp = ff_train_data_fingerprint(train, test);
    s.tag = ff_config_fingerprint(cfg) ^ s.data_fp;
    res->per_layer = calloc(cfg->layers, sizeof *res->per_layer);
    if (res->per_layer == NULL) return ff_error_set(err, "out of memory");
    res->layer_count = cfg->layers;
    res->train_samples = s.N;
    res->test_samples = s.T;
    for (uint32_t k = 0; k < cfg->layers; k++) res->per_layer[k].seconds = NAN;

    /* The run directory: a new run, or the one to resume. */
    if (ff_run_read(s.dir, &state, &missing, err) == 0) {
        if (!cfg->resume) {
            ff_error_set(err,
                         "%s already holds a run; continue it with --resume or choose another "
                         "--run directory",
                         s.dir);
            goto cleanup;
        }
        if (ff_run_check_resume(&state, cfg, s.data_fp, err) != 0) goto cleanup;
        if (state.finished) {
            char result_path[4200];
            struct stat st;
            if (ff_run_path(result_path, sizeof result_path, s.dir, "result.json") == 0 &&
                stat(result_path, &st) == 0) {
                ff_error_set(err, "%s: the run is finished (see %s)", s.dir, result_path);
                goto cleanup;
            }
            /* Killed after the last layer but before its result was written:
             * everything needed is on disk, only the result is left to do. */
        }
        res->resumed = 1;
        res->resumed_at_layer = state.cache_layer == FF_RUN_NO_CACHE ? 0 : state.cache_layer;
        ff_run_remove_temporaries(s.dir);
        for (uint32_t k = 0; state.cache_layer != FF_RUN_NO_CACHE && k < state.cache_layer; k++)
            remove_layer_caches(s.dir, k, neutral_kept(cfg, k));
    } else if (!missing) {
        goto cleanup; /* run.json exists but is unreadable: err says why */
    } else {
        /* No run.json: a new run. With --resume the run was killed before it
         * wrote one (while loading the data), so there is nothing to lose. */
        res->started_fresh = cfg->resume;
        if (ff_run_make_dirs(s.dir, err) != 0) goto cleanup;
        ff_run_state_init(&state, cfg, s.data_fp, s.N, s.T);
        if (ff_run_write(s.dir, &state, err) != 0) goto cleanup;
    }

    if (ff_aio_create(&s.aio, (ff_aio_backend_t)cfg->io_backend, 4, err) != 0) goto cleanup;
    res->io_backend = ff_aio_backend_name(ff_aio_backend(s.aio));
    /* Buffers sized for the largest chunk of any cache (training or test,
     * first layer's width or the hidden width). */
    size_t rows_max = 2 * s.m > FF_CLASSES * s.E ? 2 * s.m : FF_CLASSES * s.E;
    for (uint32_t layer_kind = 0; layer_kind < 2; layer_kind++) {
        ff_actcache_geometry_t geos[2] = {train_geometry(&s, layer_kind),
                                          test_geometry(&s, layer_kind)};
        for (int i = 0; i < 2; i++) {
            size_t slot;
            uint64_t file_bytes;
            if (ff_actcache_sizes(&geos[i], &slot, &file_bytes) != 0) {
                ff_error_set(err, "activation chunk size overflows");
                goto cleanup;
            }
            if (slot > s.buf_bytes) s.buf_bytes = slot;
        }
    }
    for (int i = 0; i < 4; i++) {
        s.buf[i] = ff_mem_alloc_aligned(FF_MEM_IO, s.buf_bytes, FF_ACTCACHE_ALIGN);
        if (s.buf[i] == NULL) {
            ff_error_set(err, "out of memory for 4 chunk buffers of %zu bytes", s.buf_bytes);
            goto cleanup;
        }
    }
    size_t max_in = s.in0 > s.H ? s.in0 : s.H;
    if (ff_step_workspace_alloc(&s.ws, rows_max, max_in, s.H, err) != 0) goto cleanup;
    s.good = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows_max * sizeof(float));
    s.scores = ff_mem_alloc(FF_MEM_ACTIVATIONS, s.T * FF_CLASSES * sizeof(float));
    s.test_labels = ff_mem_alloc(FF_MEM_DATASET, s.T);
    if (s.good == NULL || s.scores == NULL || s.test_labels == NULL) {
        ff_error_set(err, "out of memory for scores");
        goto cleanup;
    }
    memcpy(s.test_labels, test->labels, s.T);
    s.train_labels = ff_mem_alloc(FF_MEM_DATASET, s.N);
    if (s.train_labels == NULL) {
        ff_error_set(err, "out of memory for training labels");
        goto cleanup;
    }
    memcpy(s.train_labels, train->labels, s.N);
    s.img_rows = train->rows;
    s.img_cols = train->cols;
    /* The analytic working set: the memory model without the loading phase. */
    ff_memmodel_t model = ff_memmodel(cfg, train->pixels, s.N, s.T);
    res->working_set_bytes = model.parameters + model.activations + model.io;

    res->run_intact = 1; /* from here on an error leaves a run --resume can continue */
    uint32_t first = state.cache_layer == FF_RUN_NO_CACHE ? 0 : state.cache_layer;
    uint64_t passes = (uint64_t)(cfg->layers - first) * (cfg->epochs + 1) * 2 * s.N;
    ff_progress_init(&s.prog, cfg->quiet ? 0 : cfg->progress, passes);
    double t_start = ff_now();

    if (state.cache_layer == FF_RUN_NO_CACHE && !state.finished) {
        neg = ff_mem_alloc(FF_MEM_DATASET, s.N);
        if (neg == NULL) {
            ff_error_set(err, "out of memory for negative labels");
            goto cleanup;
        }
        ff_rng_t rng;
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_NEGATIVE, 0, 0);
        ff_data_negative_labels(neg, train->labels, s.N, &rng);
        if (write_input_caches(&s, train, test, neg, err) != 0) goto cleanup;
        state.cache_layer = 0;
        if (ff_run_write(s.dir, &state, err) != 0) goto cleanup;
    }
    /* From here on the dataset lives on disk only. */
    ff_mem_free(neg);
    neg = NULL;
    ff_data_free(train);
    ff_data_free(test);

    for (uint32_t k = state.finished ? cfg->layers : state.cache_layer; k < cfg->layers; k++) {
        double t_layer = ff_now();
        ff_layerfile_meta_t meta;
        int found;
        if (open_layer(&s, k, &layer, &meta, &found, err) != 0) goto cleanup;
        /* This layer's inputs: handed over open by the previous layer's
         * passes, or opened (and checked) here when the run starts. */
        ff_actcache_geometry_t g = train_geometry(&s, k);
        char path[4200];
        if (train_in.fd < 0 &&
            (ff_run_cache_path(path, sizeof path, s.dir, "train", k, "cache") != 0 ||
             ff_actcache_open(&train_in, path, &g, err) != 0))
            goto cleanup;
        g = test_geometry(&s, k);
        if (test_in.fd < 0 &&
            (ff_run_cache_path(path, sizeof path, s.dir, "test", k, "cache") != 0 ||
             ff_actcache_open(&test_in, path, &g, err) != 0))
            goto cleanup;
        if (!(found && meta.complete)) {
            int trc = train_layer(&s, k, &layer, &meta, &train_in,
                                  k + 1 < cfg->layers ? &train_in : &test_in, err);
            if (trc != 0) {
                rc = trc;
                goto cleanup;
            }
            ff_epoch_means_t last = {meta.loss, meta.goodness_pos, meta.goodness_neg};
            if (background_save_start(&save, &s, &layer, k, &last, err) != 0) goto cleanup;
        }
        int prc = layer_passes(&s, k, &layer, &train_in, &test_in, &train_out, &test_out, err);
        if (prc == 0) {
            ff_actcache_close(&test_in);
            ff_actcache_close(&train_in);
            train_in = train_out;
            test_in = test_out;
            train_out.fd = test_out.fd = -1;
        }
        /* The checkpoint must be on disk before run.json moves past it. */
        if (background_save_join(&save, prc == 0 ? err : &save_err) != 0 && prc == 0) goto cleanup;
        if (prc != 0) goto cleanup;
        ff_train_test_kill("saved", k, 0);
        if (state.hashed_layers == k) {
            state.weights_hash =
                ff_hash_bytes(state.weights_hash, layer.params, ff_layer_block_bytes(&layer));
            state.hashed_layers = k + 1;
        }
        ff_layer_free(&layer); /* evict */
        if (k + 1 < cfg->layers) state.cache_layer = k + 1;
        else state.finished = 1;
        if (ff_run_write(s.dir, &state, err) != 0) goto cleanup;
        janitor_start(&janitor, s.dir, k, neutral_kept(cfg, k));
        ff_train_test_kill("advanced", k, 0);
        res->per_layer[k].seconds = ff_now() - t_layer;
        if (ff_train_stop_requested() && k + 1 < cfg->layers) {
            rc = 1;
            goto cleanup;
        }
    }
    ff_progress_finish(&s.prog);
    res->softmax_accuracy = NAN;
    if (cfg->eval_softmax) {
        double t_head = ff_now();
        janitor_join(&janitor);
        if (head_phase(&s, err) != 0) goto cleanup;
        for (uint32_t k = 0; k <= cfg->layers; k++) remove_neutral_caches(s.dir, k);
        res->head_seconds = ff_now() - t_head;
    }
    res->train_seconds = ff_now() - t_start;
    /* Evaluation ran layer by layer with the passes; only the argmax is left. */
    double t_eval = ff_now();
    if (read_scores(&s, cfg->layers, err) != 0) goto cleanup;
    size_t correct = ff_eval_correct(s.scores, s.test_labels, s.T, FF_CLASSES);
    res->goodness_accuracy = s.T ? (double)correct / (double)s.T : 0.0;
    res->test_accuracy = cfg->eval_softmax ? res->softmax_accuracy : res->goodness_accuracy;
    res->eval_seconds = ff_now() - t_eval;
    if (collect_layers(&s, err) != 0) goto cleanup;
    res->weights_hash = state.weights_hash;
    rc = 0;
cleanup:
    background_save_join(&save, &save_err); /* before the layer it reads is freed */
    janitor_join(&janitor);
    if (s.aio != NULL) {
        ff_aio_stats_t io;
        ff_aio_stats(s.aio, &io);
        res->io_bytes_read = io.bytes_read;
        res->io_bytes_written = io.bytes_written;
        res->io_wait_seconds = io.wait_seconds;
        ff_aio_destroy(s.aio); /* drains requests that still point at the buffers */
    }
    ff_actcache_close(&test_out);
    ff_actcache_close(&train_out);
    ff_actcache_close(&test_in);
    ff_actcache_close(&train_in);
    ff_mem_stats(&res->memory);
    res->peak_rss_bytes = ff_mem_peak_rss_bytes();
    ff_layer_free(&layer);
    ff_mem_free(neg);
    ff_mem_free(s.train_labels);
    ff_mem_free(s.test_labels);
    ff_mem_free(s.scores);
    ff_mem_free(s.good);
    ff_step_workspace_free(&s.ws);
    for (int i = 0; i < 4; i++) ff_mem_free(s.buf[i]);
    return rc;
}
