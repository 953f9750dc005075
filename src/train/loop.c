/* loop.c: the Forward-Forward layer loop over a row source and a layer
 * store (see loop.h). Every random choice is regenerated from (seed, layer,
 * epoch, batch), so a resumed run takes exactly the steps the killed one
 * would have taken. */
#include "ffstream/loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/eval.h"
#include "ffstream/fileio.h"
#include "ffstream/head.h"
#include "ffstream/hook.h"
#include "ffstream/memstat.h"
#include "ffstream/memwatch.h"
#include "ffstream/rng.h"
#include "ffstream/step.h"
#include "ffstream/tiles.h"
#include "train_internal.h"

typedef struct {
    const ff_loop_t *in;
    const ff_config_t *cfg;
    ff_rows_t *rows;
    ff_store_t *store;
    ff_tiles_t *tiles;  /* the acquired layer in tiles (NULL: whole) */
    ff_result_t *res;
    ff_step_workspace_t ws;
    float *good;        /* [rows of the largest chunk] goodness */
    float *scores;      /* [T * 10] evaluation scores */
    float *chain;       /* [rows of the largest chunk, H]: evaluation through every layer */
    uint32_t *order;    /* [TRAIN chunks] this epoch's chunk order */
    uint32_t *next_order;
    ff_progress_t prog;
    ff_memwatch_t *watch; /* per-layer peaks (NULL: none) */
    int stop_agreed;      /* over ranks: some rank was asked to stop */
    double eval_seconds;
} loop_t;

static const ff_set_shape_t *shape(const loop_t *L, ff_set_t set) {
    return &L->rows->shape[set];
}

#define ROWS(L, op, ...) ((L)->rows->ops->op((L)->rows->self, __VA_ARGS__))
#define STORE(L, op, ...) ((L)->store->ops->op((L)->store->self, __VA_ARGS__))

/* Batches of an epoch, and how a batch is cut into training chunks (its
 * pieces): batch b is chunks b*pieces .. b*pieces + pieces - 1 (fewer for
 * the last batch). */
static uint64_t batch_count(const loop_t *L) {
    uint64_t m = L->cfg->batch / 2, N = shape(L, FF_SET_TRAIN)->units;
    return (N + m - 1) / m;
}

static uint64_t pieces_per_batch(const loop_t *L) {
    return (L->cfg->batch / 2) / shape(L, FF_SET_TRAIN)->units_per_chunk;
}

static uint64_t batch_pieces(const loop_t *L, uint64_t b) {
    uint64_t per = pieces_per_batch(L), first = b * per, chunks = shape(L, FF_SET_TRAIN)->chunks;
    return first + per <= chunks ? per : chunks - first;
}

/* The batch order of epoch e of layer k. */
static void epoch_order(const loop_t *L, uint32_t k, uint32_t e, uint32_t *order) {
    ff_rng_t rng;
    ff_rng_init(&rng, L->cfg->seed, FF_RNG_PURPOSE_EPOCH, k, e);
    ff_rng_permutation(&rng, order, batch_count(L));
}

/* What is read right after the last chunk of a phase, so the next phase
 * does not start by waiting for the disk. */
typedef struct {
    int active;
    ff_set_t set;
    uint64_t chunk;
} next_read_t;

static int prefetch(loop_t *L, ff_set_t set, uint64_t c, ff_error_t *err) {
    return ROWS(L, prefetch, set, c, err);
}

static int prefetch_next(loop_t *L, const next_read_t *next, ff_error_t *err) {
    return next->active ? prefetch(L, next->set, next->chunk, err) : 0;
}

/* ---- training one layer ------------------------------------------------- */

/* The first layer under concatenated labels: the image columns, which an
 * image's rows share under every label (a training pair, the test
 * candidates). 0 elsewhere. */
static size_t shared_columns(const loop_t *L, uint32_t k) {
    if (k != 0 || L->cfg->label != FF_LABEL_CONCAT) return 0;
    return (size_t)L->in->img_rows * L->in->img_cols;
}

/* Whether layer k's last training epoch writes the next layer's inputs
 * (--fused-pass): every layer but the last. */
static int fused(const loop_t *L, uint32_t k) {
    return L->cfg->fused_pass && k + 1 < L->cfg->layers;
}

/* --fused-pass: a piece's outputs, just computed by its step (the
 * workspace's y: positives then negatives, as the chunk's rows), become
 * chunk c of the next layer's training rows. */
static int write_fused(loop_t *L, uint64_t c, size_t rows, ff_error_t *err) {
    float *y;
    if (ROWS(L, out_buffer, FF_SET_TRAIN, c, &y, err) != 0) return -1;
    memcpy(y, L->ws.y, rows * L->cfg->hidden * sizeof(float));
    return ROWS(L, out_commit, FF_SET_TRAIN, c, err);
}

/* Whether to stop at this point: asked to (one process), or some rank was
 * when the ranks last summed (so all stop at the same step). */
static int stop_now(const loop_t *L) {
    return L->in->comm != NULL ? L->stop_agreed : ff_train_stop_requested();
}

/* The batch's gradient and figures summed over the ranks in rank order
 * (the same bits on every rank), the figures added to the epoch's. */
static int sum_over_ranks(loop_t *L, ff_layer_t *layer, const ff_step_stats_t *mine,
                          ff_step_stats_t *st, ff_error_t *err) {
    ff_comm_t *c = L->in->comm;
    if (c->ops->sum_floats(c, layer->grads, layer->param_count, err) != 0) return -1;
    /* A stop (SIGINT, SIGTERM) is decided together: a rank that stopped
     * alone would leave the others waiting. */
    double f[6] = {mine->loss_sum, mine->good_pos_sum, mine->good_neg_sum, (double)mine->npos,
                   (double)mine->nneg, ff_train_stop_requested() ? 1.0 : 0.0};
    if (c->ops->sum_doubles(c, f, 6, err) != 0) return -1;
    L->stop_agreed = f[5] > 0;
    st->loss_sum += f[0];
    st->good_pos_sum += f[1];
    st->good_neg_sum += f[2];
    st->npos += (size_t)f[3];
    st->nneg += (size_t)f[4];
    return 0;
}

/* Every rank must hold the same layer after training it: its hash against
 * rank 0's. */
static int check_same_weights(loop_t *L, uint32_t k, const ff_layer_t *layer, ff_error_t *err) {
    ff_comm_t *c = L->in->comm;
    uint64_t hashes[FF_MAX_RANKS];
    if (c->size > FF_MAX_RANKS)
        return ff_error_set(err, "%d ranks, at most %d", c->size, FF_MAX_RANKS);
    uint64_t h = ff_hash_bytes(FF_FNV_OFFSET, layer->params, ff_layer_block_bytes(layer));
    if (c->ops->gather_u64(c, h, hashes, err) != 0) return -1;
    for (int r = 1; r < c->size; r++)
        if (hashes[r] != hashes[0])
            return ff_error_set(err, "layer %u: rank %d's weights differ from rank 0's (hash "
                                "%016llx, rank 0 %016llx)", k + 1, r,
                                (unsigned long long)hashes[r], (unsigned long long)hashes[0]);
    return 0;
}

/* A tiled layer's step is whole: its state is committed with the training
 * state after batch bi of epoch e (what train_epochs records once the
 * step is counted), so a resume starts at the next batch. */
static int commit_tiled_step(loop_t *L, uint32_t k, const ff_layer_progress_t *p,
                             const ff_step_stats_t *st, uint32_t e, uint64_t bi,
                             uint64_t nbatches, ff_error_t *err) {
    ff_layer_progress_t q = *p;
    q.running = *st;
    q.epochs_done = e;
    q.batch_in_epoch = (uint32_t)(bi + 1);
    if (bi + 1 == nbatches) {
        q.last = ff_epoch_means(st);
        memset(&q.running, 0, sizeof q.running);
        q.epochs_done = e + 1;
        q.batch_in_epoch = 0;
        q.complete = e + 1 == L->cfg->epochs;
    }
    ff_layerfile_meta_t meta;
    L->store->ops->layer_meta(L->store->self, k, &q, &meta);
    return ff_tiles_commit(L->tiles, &meta, err);
}

/* A batch being trained: where its pieces are and how they are
 * augmented. */
typedef struct {
    loop_t *L;
    uint32_t k, e;
    uint64_t b, per, pieces, offset; /* offset: the first image's place (a rank's share) */
    uint32_t width;
    size_t shared;
    next_read_t after;               /* what is read after the batch's last piece */
    int64_t cached;                  /* the piece normalised in the workspace (-1: none) */
    size_t npos;
    ff_dense_groups_t pairs;
    int paired;
} batch_t;

/* Reads piece j of batch B (its chunk), `next` read behind it, and applies
 * the first layer's augmentation: its rows are stored un-augmented, and
 * fresh negatives and shifts come from (seed, epoch, batch) alone. The
 * caller releases the chunk. */
static int read_piece(loop_t *L, const batch_t *B, uint64_t j, const next_read_t *next, float **x,
                      size_t *mb, ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    const ff_set_shape_t *sh = shape(L, FF_SET_TRAIN);
    const uint64_t c = B->b * B->per + j;
    if (ROWS(L, read, FF_SET_TRAIN, c, B->k == 0, x, err) != 0 || prefetch_next(L, next, err) != 0)
        return -1;
    *mb = ff_set_chunk_units(sh, c);
    const size_t first = (size_t)(B->offset + j * sh->units_per_chunk);
    if (B->k == 0 && cfg->fresh_negatives)
        ff_data_redraw_negatives(*x, *mb, B->width, (size_t)L->in->img_rows * L->in->img_cols,
                                 cfg->label, cfg->seed, B->e, B->b, first);
    if (B->k == 0)
        ff_data_jitter_batch(*x, *mb, B->width, L->in->img_rows, L->in->img_cols, cfg->label,
                             cfg->jitter, cfg->seed, B->e, B->b, first);
    return 0;
}

/* The tiled step's pieces (ff_tiles_rows_t.get): piece j normalised in the
 * workspace. A batch of one piece is read once and kept; a batch of
 * several is read again for every tile, the next piece read behind. */
static int tiled_piece(void *ctx, uint64_t j, ff_tiles_piece_t *out, ff_error_t *err) {
    batch_t *B = ctx;
    loop_t *L = B->L;
    if ((int64_t)j != B->cached) {
        float *x;
        size_t mb;
        next_read_t next = B->after;
        if (B->pieces > 1)
            next = (next_read_t){1, FF_SET_TRAIN, B->b * B->per + (j + 1) % B->pieces};
        if (read_piece(L, B, j, &next, &x, &mb, err) != 0) return -1;
        ff_dense_normalize(L->ws.xn, NULL, x, 2 * mb, B->width);
        ROWS(L, release, FF_SET_TRAIN, B->b * B->per + j);
        /* A positive and its negative: the same image under two labels. */
        B->pairs = (ff_dense_groups_t){.units = mb, .copies = 2, .unit_stride = 1,
                                       .copy_stride = mb, .shared = B->shared};
        B->paired = B->shared > 0 && ff_dense_groups_hold(L->ws.xn, &B->pairs, B->width);
        B->npos = mb;
        B->cached = (int64_t)j;
    }
    *out = (ff_tiles_piece_t){.xn = L->ws.xn, .npos = B->npos, .nneg = B->npos,
                              .groups = B->paired ? &B->pairs : NULL};
    return 0;
}

/* Trains layer k from `progress` to its last epoch; checkpoints after every
 * epoch but the last. A batch is summed over its pieces before its Adam
 * step (one piece: the batch itself). `after` is read once the last step is
 * taken. @return 0, 1 when a stop was requested (saved), -1 on error. */
static int train_epochs(loop_t *L, uint32_t k, ff_layer_t *layer, ff_layer_progress_t *p,
                        const next_read_t *after, ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    const ff_set_shape_t *sh = shape(L, FF_SET_TRAIN);
    const uint64_t nbatches = batch_count(L), per = pieces_per_batch(L);
    ff_step_params_t sp = ff_train_step_params(cfg, cfg->hidden);
    sp.shared = shared_columns(L, k);
    ff_step_stats_t *st = &p->running;
    const uint32_t width = k == 0 ? L->rows->width0 : cfg->hidden; /* the layer's inputs */
    uint64_t steps_here = 0; /* steps of this layer taken by this process */
    uint32_t first_batch = p->batch_in_epoch;
    epoch_order(L, k, p->epochs_done, L->order);
    for (uint32_t e = p->epochs_done; e < cfg->epochs; e++) {
        /* --fused-pass: the last epoch writes the next layer's rows. It
         * always runs whole (a stop inside it saves nothing), so its
         * outputs come from one uninterrupted trajectory. */
        const int fuse = fused(L, k) && e + 1 == cfg->epochs;
        if (fuse && first_batch != 0)
            return ff_error_set(err, "layer %u: --fused-pass cannot resume inside the last epoch "
                                "(checkpoint at batch %u)", k + 1, first_batch);
        if (fuse && ROWS(L, begin_pass, FF_SET_TRAIN, 1, err) != 0) return -1;
        if (prefetch(L, FF_SET_TRAIN, (uint64_t)L->order[first_batch] * per, err) != 0) return -1;
        if (e + 1 < cfg->epochs) epoch_order(L, k, e + 1, L->next_order);
        for (uint64_t bi = first_batch; bi < nbatches; bi++) {
            const uint64_t b = L->order[bi], pieces = batch_pieces(L, b);
            size_t images = 0;
            for (uint64_t j = 0; j < pieces; j++) images += ff_set_chunk_units(sh, b * per + j);
            /* Over ranks: the loss is the whole batch's, and the rows' places
             * in it (the augmentation's streams) are the whole batch's. */
            uint64_t offset = 0, whole = images;
            ff_step_stats_t mine = {0}, *into = L->in->comm != NULL ? &mine : st;
            if (L->in->comm != NULL) {
                uint64_t count;
                ff_shard_share(L->in->shard, b, &offset, &count);
                whole = ff_shard_batch_images(L->in->shard, b);
            }
            /* What is read after the batch's last piece. */
            next_read_t after_batch = *after;
            if (bi + 1 < nbatches)
                after_batch = (next_read_t){1, FF_SET_TRAIN, (uint64_t)L->order[bi + 1] * per};
            else if (e + 1 < cfg->epochs)
                after_batch = (next_read_t){1, FF_SET_TRAIN, (uint64_t)L->next_order[0] * per};
            batch_t B = {.k = k, .e = e, .b = b, .per = per, .pieces = pieces, .offset = offset,
                         .width = width, .shared = sp.shared, .after = after_batch,
                         .cached = -1};
            if (L->tiles != NULL) {
                /* Adam's step is taken tile by tile inside. */
                B.L = L;
                ff_tiles_rows_t src = {.get = tiled_piece, .ctx = &B, .pieces = pieces,
                                       .batch_pos = images, .batch_neg = images};
                sp.adam.lr = ff_train_layer_lr(cfg, e, bi, nbatches);
                double f = ff_tiles_step(L->tiles, &L->ws, &src, &sp, st, err);
                if (f < 0 || prefetch_next(L, &after_batch, err) != 0) return -1;
                L->res->step_flops += f;
            }
            for (uint64_t j = 0; L->tiles == NULL && j < pieces; j++) {
                float *x;
                size_t mb;
                next_read_t next = after_batch;
                if (j + 1 < pieces) next = (next_read_t){1, FF_SET_TRAIN, b * per + j + 1};
                if (read_piece(L, &B, j, &next, &x, &mb, err) != 0) return -1;
                L->res->step_flops +=
                    ff_step_grad(layer, &L->ws, x, mb, mb, whole, whole, j > 0, &sp, into);
                if (fuse && write_fused(L, b * per + j, 2 * mb, err) != 0) return -1;
                ROWS(L, release, FF_SET_TRAIN, b * per + j);
            }
            if (L->in->comm != NULL && sum_over_ranks(L, layer, &mine, st, err) != 0) return -1;
            sp.adam.lr = ff_train_layer_lr(cfg, e, bi, nbatches);
            if (L->tiles != NULL) {
                st->batches++;
                if (commit_tiled_step(L, k, p, st, e, bi, nbatches, err) != 0) return -1;
            } else {
                ff_step_apply(layer, &sp, st);
            }
            steps_here++;
            char label[96];
            snprintf(label, sizeof label, "%s layer %u/%u epoch %u/%u", L->in->name, k + 1,
                     cfg->layers, e + 1, cfg->epochs);
            ff_progress_update(&L->prog, 2 * images, label, st->loss_sum / (double)st->batches,
                               st->good_pos_sum / (double)st->npos,
                               st->good_neg_sum / (double)st->nneg, 0);
            ff_hook_kill("train", k, steps_here);
            if (stop_now(L) && bi + 1 < nbatches && fuse) {
                /* The last epoch starts again from the checkpoint before it. */
                return 1;
            }
            if (stop_now(L) && bi + 1 < nbatches) {
                /* Save mid-epoch: the next run starts at batch bi + 1. */
                p->epochs_done = e;
                p->batch_in_epoch = (uint32_t)(bi + 1);
                if (STORE(L, checkpoint, k, layer, p, err) != 0) return -1;
                return 1;
            }
        }
        p->last = ff_epoch_means(st);
        memset(st, 0, sizeof *st);
        first_batch = 0;
        p->epochs_done = e + 1;
        p->batch_in_epoch = 0;
        memcpy(L->order, L->next_order, nbatches * sizeof *L->order);
        /* The last epoch's checkpoint is the store's `trained`. */
        if (e + 1 < cfg->epochs) {
            if (STORE(L, checkpoint, k, layer, p, err) != 0) return -1;
            if (stop_now(L)) return 1;
        }
    }
    p->complete = 1;
    return 0;
}

/* train_epochs, its wall time added to the steps' phase. */
static int train_layer(loop_t *L, uint32_t k, ff_layer_t *layer, ff_layer_progress_t *p,
                       const next_read_t *after, ff_error_t *err) {
    const double t0 = ff_now();
    int rc = train_epochs(L, k, layer, p, after, err);
    L->res->step_seconds += ff_now() - t0;
    return rc;
}

/* ---- passes -------------------------------------------------------------- */

/* Streams every chunk of set through layers[0..count-1] (one layer, or the
 * whole network when evaluation runs at the end): the outputs of the last
 * go to the next layer's rows when write_next, and for FF_SET_TEST the
 * goodness of each scored layer goes into the scores. `first` is the index
 * of layers[0]; `after` is read once the last chunk is. */
static int pass(loop_t *L, ff_set_t set, ff_layer_t *const *layers, uint32_t first,
                uint32_t count, int write_next, const next_read_t *after, const char *phase,
                ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    const ff_set_shape_t *sh = shape(L, set);
    const int score = set == FF_SET_TEST;
    double t0 = ff_now();
    if (ROWS(L, begin_pass, set, write_next, err) != 0) return -1;
    if (sh->chunks > 0 && prefetch(L, set, 0, err) != 0) return -1;
    for (uint64_t c = 0; c < sh->chunks; c++) {
        float *x;
        if (ROWS(L, read, set, c, 0, &x, err) != 0) return -1;
        next_read_t next = *after;
        if (c + 1 < sh->chunks) next = (next_read_t){1, set, c + 1};
        if (prefetch_next(L, &next, err) != 0) return -1;
        size_t n = ff_set_chunk_units(sh, c), rows = ff_set_chunk_rows(sh, c);
        const float *in = x;
        for (uint32_t j = 0; j < count; j++) {
            const ff_layer_t *layer = layers[j];
            float *y = j % 2 == 0 ? L->ws.y : L->chain;
            if (j + 1 == count && write_next && ROWS(L, out_buffer, set, c, &y, err) != 0)
                return -1;
            /* The first layer's training pairs and test candidates share
             * their image columns: computed once per image. */
            const int scored = score && ff_train_layer_scored(cfg, first + j);
            double *flops = score ? &L->res->eval_flops : &L->res->pass_flops;
            const ff_dense_groups_t g =
                ff_set_chunk_groups(sh, set, c, shared_columns(L, first + j));
            if (L->tiles != NULL) {
                /* One stream over the tiles per chunk: the outputs the next
                 * layer needs, the goodness the scores need. */
                const int out = j + 1 == count && write_next;
                double f = ff_tiles_forward(L->tiles, &L->ws, out ? y : NULL,
                                            scored ? L->good : NULL, cfg->goodness, in, &g, err);
                if (f < 0) return -1;
                *flops += f;
            } else {
                *flops += ff_step_forward_grouped(y, layer, &L->ws, in, &g);
                if (scored) ff_dense_goodness(L->good, y, rows, layer->out, cfg->goodness);
            }
            if (scored)
                ff_eval_accumulate(L->scores + c * sh->units_per_chunk * FF_CLASSES, L->good, n,
                                   ff_config_layer_theta(cfg, cfg->hidden));
            if (j == 0) ROWS(L, release, set, c); /* x is consumed */
            in = y;
        }
        if (write_next && ROWS(L, out_commit, set, c, err) != 0) return -1;
        ff_progress_update(&L->prog, set == FF_SET_TRAIN ? rows : 0,
                           "writing the next layer's inputs", NAN, NAN, NAN, 0);
        ff_hook_kill(phase, first, c + 1);
    }
    *(score ? &L->eval_seconds : &L->res->pass_seconds) += ff_now() - t0;
    return 0;
}

/* After layer k is trained: its outputs on every training row become the
 * next layer's inputs and, when the source keeps every set, the test
 * candidates' scores and next rows and the neutral rows follow. The first
 * training chunk of layer k+1 is read at the end. */
static int layer_passes(loop_t *L, uint32_t k, ff_layer_t *layer, ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    const int last = k + 1 == cfg->layers, every_set = L->rows->per_layer_sets;
    ff_layer_t *one[1] = {layer};
    next_read_t none = {0, FF_SET_TRAIN, 0}, test0 = {every_set, FF_SET_TEST, 0};
    if (every_set && ROWS(L, scores_load, k, L->scores, err) != 0) return -1;
    if (!last && !fused(L, k) && pass(L, FF_SET_TRAIN, one, k, 1, 1, &test0, "cache", err) != 0)
        return -1;
    if (last || fused(L, k)) /* no pass: the work counted for it is done */
        ff_progress_update(&L->prog, 2 * shape(L, FF_SET_TRAIN)->units, L->in->name, NAN, NAN,
                           NAN, 0);
    if (every_set) {
        if (pass(L, FF_SET_TEST, one, k, 1, !last, &none, "eval", err) != 0) return -1;
        if (cfg->eval_softmax &&
            (pass(L, FF_SET_TRAIN_NEUTRAL, one, k, 1, 1, &none, "neutral", err) != 0 ||
             pass(L, FF_SET_TEST_NEUTRAL, one, k, 1, 1, &none, "neutral", err) != 0))
            return -1;
        if (ROWS(L, scores_save, k + 1, L->scores, err) != 0) return -1;
    }
    if (ROWS(L, end_layer, k, err) != 0) return -1;
    if (!last) {
        /* The next layer starts with epoch 0 in its own order: read its
         * first chunk while the checkpoint and run.json are written. */
        epoch_order(L, k + 1, 0, L->next_order);
        if (prefetch(L, FF_SET_TRAIN, (uint64_t)L->next_order[0] * pieces_per_batch(L), err) != 0)
            return -1;
    }
    return 0;
}

/* ---- the softmax head ------------------------------------------------------ */

/* Features of chunk c of a neutral set: from the source when it keeps every
 * set, else computed here through every layer (`all`), into out. */
static int head_features(loop_t *L, int test, uint64_t c, float *out, ff_error_t *err) {
    if (L->rows->per_layer_sets) return ROWS(L, features, test, c, out, err);
    const ff_config_t *cfg = L->cfg;
    ff_set_t set = test ? FF_SET_TEST_NEUTRAL : FF_SET_TRAIN_NEUTRAL;
    ff_layer_t *all = L->store->ops->all_layers(L->store->self);
    float *x;
    if (ROWS(L, read, set, c, 0, &x, err) != 0) return -1;
    size_t n = ff_set_chunk_units(shape(L, set), c), block = 0;
    const size_t H = cfg->hidden, D = (size_t)ff_train_scored_count(cfg) * H;
    const float *in = x;
    for (uint32_t j = 0; j < cfg->layers; j++) {
        float *y = j % 2 == 0 ? L->ws.y : L->chain;
        ff_step_forward(y, &all[j], &L->ws, in, n);
        if (ff_train_layer_scored(cfg, j)) ff_head_gather(out, D, y, n, H, block++);
        if (j == 0) ROWS(L, release, set, c);
        in = y;
    }
    return 0;
}

/* Trains the head on detached, normalised activities (a fresh chunk order
 * per head epoch), then scores the test images. Without a source that
 * keeps every set, the training features of every image are computed
 * first and held (N x D floats, as the original holds them). */
static int head_phase(loop_t *L, ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    const ff_set_shape_t *tr = shape(L, FF_SET_TRAIN_NEUTRAL), *te = shape(L, FF_SET_TEST_NEUTRAL);
    const size_t D = (size_t)ff_train_scored_count(cfg) * cfg->hidden;
    const size_t rows = tr->units_per_chunk > te->units_per_chunk ? tr->units_per_chunk
                                                                  : te->units_per_chunk;
    const int held = !L->rows->per_layer_sets;
    ff_head_t head = {0};
    int rc = -1;
    size_t chunk_floats, all_floats;
    if (ff_mul_size(rows, D, &chunk_floats) != 0 || ff_mul_size(tr->units, D, &all_floats) != 0)
        return ff_error_set(err, "the softmax head's features overflow (%zu x %zu)", rows, D);
    float *features = ff_mem_alloc(FF_MEM_ACTIVATIONS,
                                   (held ? all_floats : chunk_floats) * sizeof(float));
    float *test_features = held ? ff_mem_alloc(FF_MEM_ACTIVATIONS, chunk_floats * sizeof(float))
                                : features;
    uint32_t *order = ff_mem_alloc(FF_MEM_OTHER, tr->chunks * sizeof(uint32_t));
    size_t correct = 0;
    if (features == NULL || test_features == NULL || order == NULL) {
        ff_error_set(err, "out of memory for the softmax head's features (%zu x %zu floats)",
                     held ? (size_t)tr->units : rows, D);
        goto cleanup;
    }
    if (ff_head_init(&head, (uint32_t)D, rows, cfg->seed, cfg->layers, err) != 0) goto cleanup;
    for (uint64_t c = 0; held && c < tr->chunks; c++)
        if (head_features(L, 0, c, features + c * tr->units_per_chunk * D, err) != 0)
            goto cleanup;
    for (uint32_t e = 0; e < cfg->head_epochs; e++) {
        ff_rng_t rng;
        ff_rng_init(&rng, cfg->seed, FF_RNG_PURPOSE_HEAD, e, 0);
        ff_rng_permutation(&rng, order, tr->chunks);
        for (uint64_t bi = 0; bi < tr->chunks; bi++) {
            uint64_t c = order[bi];
            size_t n = ff_set_chunk_units(tr, c);
            const float *f = features + (held ? c * tr->units_per_chunk * D : 0);
            if (!held && head_features(L, 0, c, features, err) != 0) goto cleanup;
            ff_adam_params_t adam = ff_train_head_adam(cfg, e, bi, tr->chunks);
            ff_head_train_step(&head, f, L->in->train_labels + c * tr->units_per_chunk, n, &adam);
        }
    }
    for (uint64_t c = 0; c < te->chunks; c++) {
        size_t n = ff_set_chunk_units(te, c);
        if (head_features(L, 1, c, test_features, err) != 0) goto cleanup;
        correct += ff_head_correct(&head, test_features, L->in->test_labels + c * te->units_per_chunk,
                                   n);
    }
    L->res->softmax_accuracy = te->units ? (double)correct / (double)te->units : 0.0;
    L->res->head_hash = ff_hash_bytes(FF_FNV_OFFSET, head.layer.params,
                                      ff_layer_block_bytes(&head.layer));
    rc = 0;
cleanup:
    ff_head_free(&head);
    ff_mem_free(order);
    if (test_features != features) ff_mem_free(test_features);
    ff_mem_free(features);
    return rc;
}

/* ---- the loop --------------------------------------------------------------- */

/* With progress on: one line per finished layer, with what it cost and
 * when the run should end (the layers still to come at this layer's pace). */
static void layer_note(loop_t *L, uint32_t k, const ff_layer_result_t *r) {
    if (!L->prog.enabled) return;
    const double MiB = 1048576.0;
    const uint32_t left = L->cfg->layers - k - 1;
    const double done = ff_now() - L->prog.start, per = done / (double)(k + 1 - L->in->first_layer);
    fprintf(stderr,
            "%slayer %u/%u done in %.1f s: RSS peak %.1f MiB, cgroup peak %.1f MiB, read %.1f MiB, "
            "written %.1f MiB; %u to go, about %.0f s\n",
            L->prog.is_tty ? "\r\033[K" : "", k + 1, L->cfg->layers, r->seconds,
            (double)r->peak_rss_bytes / MiB, (double)r->cgroup_peak_bytes / MiB,
            (double)r->bytes_read / MiB, (double)r->bytes_written / MiB, left, per * left);
    fflush(stderr);
}

/* The tiled layer's streams so far, added to the result's (the hash of
 * the release comes after: it is not a training stream). */
static int keep_tile_passes(loop_t *L) {
    size_t n;
    const ff_tile_pass_t *p = ff_tiles_passes(L->tiles, &n);
    ff_result_t *res = L->res;
    ff_tile_pass_t *all = realloc(res->tile_passes, (res->tile_pass_count + n) * sizeof *all);
    if (all == NULL && res->tile_pass_count + n > 0) return -1;
    if (n > 0) memcpy(all + res->tile_pass_count, p, n * sizeof *p);
    res->tile_passes = all;
    res->tile_pass_count += n;
    res->tile_direct = ff_tiles_direct(L->tiles);
    return 0;
}

static int run_layers(loop_t *L, ff_error_t *err) {
    const ff_config_t *cfg = L->cfg;
    for (uint32_t k = L->in->first_layer; k < cfg->layers; k++) {
        double t_layer = ff_now();
        uint64_t read0, written0;
        ff_fileio_counters(&read0, &written0);
        ff_memwatch_take(L->watch);
        ff_layer_t *layer;
        ff_layer_progress_t p;
        if (ROWS(L, begin_layer, k, err) != 0) return -1;
        if (STORE(L, acquire, k, &layer, &p, err) != 0) return -1;
        L->tiles = L->store->ops->tiles != NULL ? L->store->ops->tiles(L->store->self) : NULL;
        /* --fused-pass: the next layer's training rows were written by the
         * last epoch, here or (when the layer was trained by an earlier
         * process) before the layer was recorded as trained. */
        const int rows_written = fused(L, k);
        if (!p.complete) {
            /* The last step reads the first chunk of the next pass. */
            next_read_t after = {1, k + 1 < cfg->layers ? FF_SET_TRAIN : FF_SET_TEST, 0};
            if (rows_written) after.set = FF_SET_TEST;
            if ((k + 1 == cfg->layers || rows_written) && !L->rows->per_layer_sets)
                after.active = 0;
            int rc = train_layer(L, k, layer, &p, &after, err);
            if (rc != 0) return rc;
            if (L->in->comm != NULL && check_same_weights(L, k, layer, err) != 0) return -1;
            /* The rows are durable before the layer counts as trained: a
             * trained layer's fused rows cannot be made again. */
            if (rows_written && ROWS(L, out_finish, FF_SET_TRAIN, err) != 0) return -1;
            if (rows_written) ff_hook_kill("fused", k, 0);
            if (STORE(L, trained, k, layer, &p, err) != 0) return -1;
        } else if (rows_written && ROWS(L, out_reuse, FF_SET_TRAIN, err) != 0) {
            return ff_error_wrap(err, "layer %u's training rows, written by layer %u's last epoch "
                                 "(--fused-pass), cannot be read, and the trained layer cannot "
                                 "make them again (start a new --run)", k + 2, k + 1);
        }
        ff_layer_result_t *r = &L->res->per_layer[k];
        r->in = k == 0 ? L->rows->width0 : cfg->hidden;
        r->out = cfg->hidden;
        r->loss = p.last.loss;
        r->goodness_pos = p.last.goodness_pos;
        r->goodness_neg = p.last.goodness_neg;
        if (layer_passes(L, k, layer, err) != 0) return -1;
        /* Every rank's next inputs are durable before run.json moves on. */
        if (L->in->comm != NULL && L->in->comm->ops->barrier(L->in->comm, err) != 0) return -1;
        if (L->tiles != NULL && keep_tile_passes(L) != 0)
            return ff_error_set(err, "out of memory for the record of the tile streams");
        if (STORE(L, release, k, err) != 0) return -1;
        L->tiles = NULL;
        /* What the layer cost, recorded before its inputs go: the disk
         * then holds them and its outputs, the run's peak. */
        r->seconds = ff_now() - t_layer;
        ff_memwatch_peaks_t peaks = ff_memwatch_take(L->watch);
        uint64_t read1, written1;
        ff_fileio_counters(&read1, &written1);
        r->measured = 1;
        r->peak_rss_bytes = peaks.rss_peak;
        r->cgroup_peak_bytes = peaks.cgroup_peak;
        r->bytes_read = read1 - read0;
        r->bytes_written = written1 - written0;
        if (cfg->run_dir[0] != '\0') r->disk_bytes = ff_fileio_tree_bytes(cfg->run_dir);
        if (L->store->ops->record != NULL &&
            STORE(L, record, L->res->per_layer, cfg->layers, err) != 0)
            return -1;
        ff_hook_kill("advanced", k, 0);
        L->rows->ops->drop_layer(L->rows->self, k);
        layer_note(L, k, r);
        if (stop_now(L) && k + 1 < cfg->layers) return 1;
    }
    return 0;
}

/* Evaluation through every layer at once (a source that keeps only the
 * training rows; the store keeps every layer). */
static int evaluate_at_end(loop_t *L, ff_error_t *err) {
    ff_layer_t *all = L->store->ops->all_layers(L->store->self);
    ff_layer_t *layers[FF_MAX_LAYERS];
    for (uint32_t j = 0; j < L->cfg->layers; j++) layers[j] = &all[j];
    next_read_t none = {0, FF_SET_TRAIN, 0};
    return pass(L, FF_SET_TEST, layers, 0, L->cfg->layers, 0, &none, "eval", err);
}

int ff_loop_run(const ff_loop_t *in, ff_result_t *res, ff_error_t *err) {
    const ff_config_t *cfg = in->cfg;
    loop_t L = {.in = in, .cfg = cfg, .rows = in->rows, .store = in->store, .res = res};
    const ff_set_shape_t *tr = &in->rows->shape[FF_SET_TRAIN], *te = &in->rows->shape[FF_SET_TEST];
    int rc = -1;
    size_t rows_max = 0;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        size_t r = (size_t)in->rows->shape[s].units_per_chunk * in->rows->shape[s].rows_per_unit;
        if (r > rows_max) rows_max = r;
    }
    const size_t H = cfg->hidden, width = in->rows->width0 > H ? in->rows->width0 : H;
    /* Tiled layers: the step's outputs and dz hold one tile's columns. */
    const uint32_t units = ff_config_tile_units(cfg);
    res->tile_units = units;
    if (units > 0 && (in->comm != NULL || !in->rows->per_layer_sets))
        return ff_error_set(err, "--tile-units: tiled layers train in one ff-stream process");
    if (cfg->fused_pass && (units > 0 || in->comm != NULL))
        return ff_error_set(err, "--fused-pass: not with %s", units > 0 ? "tiled layers (the "
                            "memory budget needs tiles)" : "data-parallel ranks");
    if (ff_step_workspace_alloc(&L.ws, rows_max, width, units > 0 ? units : H, err) != 0)
        return -1;
    L.good = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows_max * sizeof(float));
    L.scores = ff_mem_calloc(FF_MEM_ACTIVATIONS, te->units * FF_CLASSES, sizeof(float));
    L.order = ff_mem_alloc(FF_MEM_OTHER, 2 * batch_count(&L) * sizeof(uint32_t));
    if (!in->rows->per_layer_sets)
        L.chain = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows_max * H * sizeof(float));
    if (L.good == NULL || L.scores == NULL || L.order == NULL ||
        (!in->rows->per_layer_sets && L.chain == NULL)) {
        ff_error_set(err, "out of memory for the loop's buffers (%zu rows)", rows_max);
        goto cleanup;
    }
    L.next_order = L.order + batch_count(&L);
    if (cfg->layers > FF_MAX_LAYERS) {
        ff_error_set(err, "--layers: %u, at most %d", cfg->layers, FF_MAX_LAYERS);
        goto cleanup;
    }
    /* The layers trained by an earlier process must be there and sound
     * before any work: a run that cannot finish says so now, not after
     * hours of training. */
    for (uint32_t k = 0; k < in->first_layer; k++)
        if (STORE(&L, describe, k, &res->per_layer[k], err) != 0) goto cleanup;
    uint64_t work = (uint64_t)(cfg->layers - in->first_layer) * (cfg->epochs + 1) * 2 * tr->units;
    ff_progress_init(&L.prog, cfg->quiet ? 0 : cfg->progress, work);
    L.watch = ff_memwatch_start(FF_MEMWATCH_INTERVAL_MS);
    double t_start = ff_now();

    rc = run_layers(&L, err);
    if (rc != 0) goto cleanup;
    rc = -1;
    ff_progress_finish(&L.prog);
    if (!in->rows->per_layer_sets && evaluate_at_end(&L, err) != 0) goto cleanup;
    res->softmax_accuracy = NAN;
    if (cfg->eval_softmax) {
        double t_head = ff_now();
        if (head_phase(&L, err) != 0) goto cleanup;
        res->head_seconds = ff_now() - t_head;
    }
    in->rows->ops->finish(in->rows->self);
    if (in->rows->per_layer_sets && ROWS(&L, scores_load, cfg->layers, L.scores, err) != 0)
        goto cleanup;
    size_t correct = ff_eval_correct(L.scores, in->test_labels, te->units, FF_CLASSES);
    uint64_t tested = te->units;
    if (in->comm != NULL) {
        double counts[2] = {(double)correct, (double)tested};
        if (in->comm->ops->sum_doubles(in->comm, counts, 2, err) != 0) goto cleanup;
        correct = (size_t)counts[0];
        tested = (uint64_t)counts[1];
    }
    res->goodness_accuracy = tested ? (double)correct / (double)tested : 0.0;
    res->test_accuracy = cfg->eval_softmax ? res->softmax_accuracy : res->goodness_accuracy;
    res->eval_seconds = L.eval_seconds;
    res->train_seconds = ff_now() - t_start - L.eval_seconds;
    /* Training counts the products of the steps and of the next layer's passes. */
    res->train_flops = res->step_flops + res->pass_flops;
    res->weights_hash = in->store->ops->weights_hash(in->store->self);
    rc = 0;
cleanup:
    ff_memwatch_stop(L.watch);
    ff_mem_free(L.chain);
    ff_mem_free(L.order);
    ff_mem_free(L.scores);
    ff_mem_free(L.good);
    ff_step_workspace_free(&L.ws);
    return rc;
}
