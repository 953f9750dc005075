/* tiles.c: a layer trained in tiles of output units (see tiles.h): the
 * tile streamer (an I/O thread, three tile buffers) and the two-pass
 * step, the forward pass and the hash over it. */
#include "ffstream/tiles.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/fileio.h"
#include "ffstream/hook.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/rng.h"

#define SLOTS 3
#define MAX_PASSES 16384

typedef enum { JOB_READ, JOB_WRITE } job_op_t;

typedef struct {
    job_op_t op;
    uint32_t tile;
    int slot, regions;
} job_t;

struct ff_tiles {
    uint32_t k, in, out, units;
    size_t acc_rows;         /* rows acc and good hold */
    float *good;             /* [acc_rows] a step's goodness */
    size_t *piece_pos, *piece_first; /* [pieces] each piece's positives and first row */
    uint64_t pieces;         /* pieces piece_pos holds */
    char path[FF_PATH_MAX], pending_path[FF_PATH_MAX];
    ff_tilefile_t src;       /* the committed state */
    ff_tilefile_t dst;       /* the next state being written (fd -1: none) */
    uint8_t *slot[SLOTS];    /* frames, FF_TILE_ALIGN-aligned */
    float *grad;             /* one tile's gradient, in a region's layout */
    double *acc;             /* [max_rows, FF_SUM_LANES] goodness sums (dense.h) */
    /* The I/O thread and its FIFO of jobs. */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t queue[2 * SLOTS];
    int head, len, busy, quit;
    int pending_jobs[SLOTS]; /* jobs queued or running on each slot */
    ff_error_t io_err;
    int io_failed;
    uint32_t tiles_written;  /* by this process: the kill hook's count */
    ff_tile_pass_t *passes;
    size_t pass_count;
};

/* ---- the I/O thread ---- */

static void *io_main(void *arg) {
    ff_tiles_t *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->len == 0 && !t->quit) pthread_cond_wait(&t->cv, &t->mu);
        if (t->len == 0 && t->quit) break;
        job_t j = t->queue[t->head];
        t->busy = 1;
        int failed = t->io_failed;
        pthread_mutex_unlock(&t->mu);
        ff_error_t e = {0};
        int rc = 0;
        if (!failed) {
            if (j.op == JOB_READ) {
                rc = ff_tilefile_read(&t->src, j.tile, j.regions, t->slot[j.slot], &e);
            } else {
                /* The header follows every tile: a killed step resumes here. */
                rc = ff_tilefile_write_next(&t->dst, t->slot[j.slot], j.regions, &e);
                if (rc == 0) rc = ff_tilefile_write_header(&t->dst, &e);
                if (rc == 0) ff_hook_kill("tile", t->k, ++t->tiles_written);
            }
        }
        pthread_mutex_lock(&t->mu);
        if (rc != 0 && !t->io_failed) {
            t->io_failed = 1;
            t->io_err = e;
        }
        t->head = (t->head + 1) % (int)(sizeof t->queue / sizeof t->queue[0]);
        t->len--;
        t->busy = 0;
        t->pending_jobs[j.slot]--;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void submit(ff_tiles_t *t, job_op_t op, uint32_t tile, int slot, int regions) {
    pthread_mutex_lock(&t->mu);
    const int cap = (int)(sizeof t->queue / sizeof t->queue[0]);
    while (t->len == cap) pthread_cond_wait(&t->cv, &t->mu);
    t->queue[(t->head + t->len) % cap] = (job_t){op, tile, slot, regions};
    t->len++;
    t->pending_jobs[slot]++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Waits until slot's jobs are done (all jobs when slot < 0); the wait is
 * added to *waited. @return 0, or -1 with err when an I/O job failed. */
static int wait_slot(ff_tiles_t *t, int slot, double *waited, ff_error_t *err) {
    double t0 = ff_now();
    pthread_mutex_lock(&t->mu);
    while (slot >= 0 ? t->pending_jobs[slot] > 0 : (t->len > 0 || t->busy))
        pthread_cond_wait(&t->cv, &t->mu);
    int failed = t->io_failed;
    if (failed && err != NULL) *err = t->io_err;
    pthread_mutex_unlock(&t->mu);
    *waited += ff_now() - t0;
    return failed ? -1 : 0;
}

/* ---- streams ---- */

/* What one stream does with each tile: buf is the tile's frame (its
 * parameters, and with 3 regions its moments), rows its output units. */
typedef int (*tile_fn)(void *ctx, ff_tiles_t *t, uint32_t tile, uint8_t *frame, uint32_t rows,
                       ff_error_t *err);

static ff_tile_pass_t *new_pass(ff_tiles_t *t, const char *kind, int64_t step, uint32_t first) {
    if (t->pass_count == MAX_PASSES) return NULL; /* the record stops growing, the run does not */
    ff_tile_pass_t *p = &t->passes[t->pass_count++];
    memset(p, 0, sizeof *p);
    snprintf(p->kind, sizeof p->kind, "%s", kind);
    p->layer = t->k;
    p->step = step;
    p->first_tile = first;
    return p;
}

/* Streams tiles first .. count-1 of the committed file through fn, reading
 * `regions` of each ahead; with write, each tile's frame then goes to the
 * pending file (in tile order). */
static int stream(ff_tiles_t *t, const char *kind, int64_t step, uint32_t first, int regions,
                  int write, tile_fn fn, void *ctx, const double *flops_done, ff_error_t *err) {
    const uint32_t count = t->src.count;
    uint64_t r0, w0;
    ff_fileio_counters(&r0, &w0);
    const double flops0 = flops_done != NULL ? *flops_done : 0.0;
    double t0 = ff_now(), waited = 0.0;
    for (uint32_t i = first; i < count && i < first + 2; i++)
        submit(t, JOB_READ, i, (int)((i - first) % SLOTS), regions);
    int rc = 0;
    for (uint32_t i = first; i < count; i++) {
        const int s = (int)((i - first) % SLOTS);
        if (wait_slot(t, s, &waited, err) != 0) {
            rc = -1;
            break;
        }
        const uint32_t rows = ff_tilefile_rows(&t->src, i);
        if (fn(ctx, t, i, t->slot[s], rows, err) != 0) {
            rc = -1;
            break;
        }
        if (write) submit(t, JOB_WRITE, i, s, 3);
        /* FIFO: the read into the third slot runs after that slot's write. */
        if (i + 2 < count) submit(t, JOB_READ, i + 2, (int)((i + 2 - first) % SLOTS), regions);
    }
    ff_error_t drain_err;
    if (wait_slot(t, -1, &waited, &drain_err) != 0 && rc == 0) {
        *err = drain_err;
        rc = -1;
    }
    uint64_t r1, w1;
    ff_fileio_counters(&r1, &w1);
    ff_tile_pass_t *p = new_pass(t, kind, step, first);
    if (p != NULL) {
        p->tiles = count - first;
        p->seconds = ff_now() - t0;
        p->io_wait_seconds = waited;
        p->bytes_read = r1 - r0;
        p->bytes_written = w1 - w0;
        p->flops = flops_done != NULL ? *flops_done - flops0 : 0.0;
    }
    return rc;
}

/* A tile's parameters (and moments, gradient) as an ff_layer_t of rows
 * outputs. */
static ff_layer_t tile_view(const ff_tiles_t *t, uint8_t *frame, uint32_t rows) {
    ff_layer_t v = {0};
    v.in = t->in;
    v.out = rows;
    v.param_count = (size_t)rows * t->in + rows;
    v.params = (float *)frame;
    v.adam_m = (float *)(frame + t->src.region_bytes);
    v.adam_v = (float *)(frame + 2 * t->src.region_bytes);
    v.grads = t->grad;
    v.weight = v.params;
    v.bias = v.params + (size_t)rows * t->in;
    v.grad_weight = v.grads;
    v.grad_bias = v.grads + (size_t)rows * t->in;
    return v;
}

/* ---- creation ---- */

static int alloc_buffers(ff_tiles_t *t, ff_error_t *err) {
    for (int s = 0; s < SLOTS; s++) {
        t->slot[s] = ff_mem_alloc_aligned(FF_MEM_WEIGHTS, (size_t)t->src.frame_bytes, FF_TILE_ALIGN);
        if (t->slot[s] == NULL)
            return ff_error_set(err, "out of memory for a %.1f MiB tile buffer",
                                (double)t->src.frame_bytes / 1048576.0);
    }
    t->grad = ff_mem_alloc(FF_MEM_GRADIENTS, (size_t)t->src.region_bytes);
    t->passes = ff_mem_alloc(FF_MEM_OTHER, MAX_PASSES * sizeof *t->passes);
    if (t->grad == NULL || t->passes == NULL)
        return ff_error_set(err, "out of memory for a tile's gradient");
    return 0;
}

/* Writes a new layer's committed file: parameters as ff_layer_init_for_run
 * draws them (the weight [out, in] row by row, then the bias, from one
 * stream), zero moments (never written: the file is created zero). */
static int create_layer(ff_tiles_t *t, uint64_t seed, const ff_layerfile_meta_t *meta,
                        ff_error_t *err) {
    ff_tilefile_t *d = &t->dst;
    if (ff_tilefile_geometry(d, t->in, t->out, t->units, err) != 0 ||
        ff_tilefile_create(d, t->pending_path, err) != 0)
        return -1;
    double t0 = ff_now();
    uint64_t w0, r0;
    ff_fileio_counters(&r0, &w0);
    ff_rng_t wrng, brng;
    ff_rng_init(&wrng, seed, FF_RNG_PURPOSE_INIT, t->k, 0);
    brng = wrng;
    for (uint64_t i = 0; i < (uint64_t)t->in * t->out; i++) (void)ff_rng_uniform(&brng);
    const float bound = 1.0f / sqrtf((float)t->in);
    uint8_t *frame = t->slot[0];
    memset(frame, 0, (size_t)d->frame_bytes);
    for (uint32_t i = 0; i < d->count; i++) {
        const uint32_t rows = ff_tilefile_rows(d, i);
        float *p = (float *)frame;
        for (size_t j = 0; j < (size_t)rows * t->in; j++)
            p[j] = (2.0f * ff_rng_uniform(&wrng) - 1.0f) * bound;
        for (size_t j = 0; j < rows; j++)
            p[(size_t)rows * t->in + j] = (2.0f * ff_rng_uniform(&brng) - 1.0f) * bound;
        if (rows < t->units) /* the last tile: what the region holds past it is zero */
            memset(p + (size_t)rows * t->in + rows, 0,
                   (size_t)d->region_bytes - ((size_t)rows * t->in + rows) * sizeof(float));
        /* The moments are zero: the new file already reads so. */
        if (ff_tilefile_write_next(d, frame, 1, err) != 0) return -1;
    }
    d->adam_step = 0;
    d->meta = *meta;
    if (ff_tilefile_write_header(d, err) != 0 || ff_tilefile_sync(d, err) != 0) return -1;
    ff_tilefile_close(d);
    if (rename(t->pending_path, t->path) != 0)
        return ff_error_set(err, "%s: cannot rename to %s: %s", t->pending_path, t->path,
                            strerror(errno));
    if (ff_fileio_sync_parent(t->path, err) != 0) return -1;
    uint64_t w1, r1;
    ff_fileio_counters(&r1, &w1);
    ff_tile_pass_t *p = new_pass(t, "init", 0, 0);
    if (p != NULL) {
        p->tiles = d->count;
        p->seconds = ff_now() - t0;
        p->bytes_read = r1 - r0;
        p->bytes_written = w1 - w0;
    }
    return 0;
}

int ff_tiles_open(ff_tiles_t **out, const char *path, uint32_t k, uint32_t in, uint32_t outputs,
                  uint32_t units, uint64_t seed, const ff_layerfile_meta_t *meta,
                  ff_layerfile_meta_t *out_meta, int64_t *adam_step, ff_error_t *err) {
    *out = NULL;
    ff_tiles_t *t = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *t);
    if (t == NULL) return ff_error_set(err, "out of memory");
    t->k = k;
    t->in = in;
    t->out = outputs;
    t->units = units;
    t->src.fd = t->dst.fd = -1;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, io_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        ff_mem_free(t);
        return ff_error_set(err, "cannot start the tile I/O thread");
    }
    *out = t;
    if (ff_path_format(t->path, err, "%s", path) != 0 ||
        ff_path_format(t->pending_path, err, "%s.pending", path) != 0)
        return -1;
    ff_tilefile_t g;
    if (ff_tilefile_geometry(&g, in, outputs, units, err) != 0) return -1;
    t->src.frame_bytes = g.frame_bytes;
    t->src.region_bytes = g.region_bytes;
    if (alloc_buffers(t, err) != 0) return -1;
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) return ff_error_set(err, "%s: %s", path, strerror(errno));
        if (create_layer(t, seed, meta, err) != 0) return -1;
    }
    if (ff_tilefile_open(&t->src, path, 0, 0, 1, err) != 0) return -1;
    const ff_layerfile_meta_t *m = &t->src.meta;
    const char *field = NULL;
    if (t->src.in != in || t->src.out != outputs) field = "shape";
    else if (t->src.units != units) field = "tiles.units";
    else if (m->layer_index != k) field = "layer_index";
    else if (m->epochs_total != meta->epochs_total) field = "epochs_total";
    else if (m->data_fingerprint != meta->data_fingerprint) field = "data_fingerprint";
    else if (m->config_fingerprint != meta->config_fingerprint) field = "config_fingerprint";
    if (field != NULL)
        return ff_error_set(err, "%s: checkpoint does not belong to this run: field %s differs "
                            "(file: layer %u, %u -> %u in tiles of %u; run: layer %u, %u -> %u in "
                            "tiles of %u)", path, field, m->layer_index, t->src.in, t->src.out,
                            t->src.units, k, in, outputs, units);
    *out_meta = t->src.meta;
    *adam_step = t->src.adam_step;
    return 0;
}

/* ---- the step ---- */

/* acc for rows rows (grown as needed). */
/* acc and good for rows rows, the places of `pieces` pieces (grown as
 * needed). */
static int ensure_acc(ff_tiles_t *t, size_t rows, uint64_t pieces, ff_error_t *err) {
    if (rows > t->acc_rows) {
        ff_mem_free(t->acc);
        ff_mem_free(t->good);
        t->acc = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * FF_SUM_LANES * sizeof(double));
        t->good = ff_mem_alloc(FF_MEM_ACTIVATIONS, rows * sizeof(float));
        t->acc_rows = t->acc != NULL && t->good != NULL ? rows : 0;
        if (t->acc_rows == 0)
            return ff_error_set(err, "out of memory for %zu rows' goodness", rows);
    }
    if (pieces > t->pieces) {
        ff_mem_free(t->piece_pos);
        t->piece_pos = ff_mem_alloc(FF_MEM_OTHER, 2 * (size_t)pieces * sizeof(size_t));
        t->piece_first = t->piece_pos != NULL ? t->piece_pos + pieces : NULL;
        t->pieces = t->piece_pos != NULL ? pieces : 0;
        if (t->pieces == 0) return ff_error_set(err, "out of memory for %llu pieces",
                                                (unsigned long long)pieces);
    }
    return 0;
}

typedef struct {
    const float *xn;
    size_t rows, npos, nneg;
    float *y, *dz;           /* one tile's columns */
    const float *goodness;
    const ff_step_params_t *p;
    ff_loss_params_t lp;
    int64_t step;
    float *out;              /* forward: the whole rows, or NULL */
    int accumulate;          /* add each tile's goodness to acc */
    const ff_dense_groups_t *groups; /* rows sharing their image columns (NULL: none) */
    /* A step: its rows piece by piece (the xn, rows, npos, nneg and groups
     * above are the current piece's), each piece's counts and first row. */
    const ff_tiles_rows_t *src;
    size_t *piece_pos, *piece_first;
    double flops;            /* the products' flops so far */
} step_ctx_t;

/* Makes piece j of a step the current one (its rows, their place). */
static int use_piece(step_ctx_t *c, uint64_t j, ff_error_t *err) {
    ff_tiles_piece_t pc;
    if (c->src->get(c->src->ctx, j, &pc, err) != 0) return -1;
    c->xn = pc.xn;
    c->npos = pc.npos;
    c->nneg = pc.nneg;
    c->rows = pc.npos + pc.nneg;
    c->groups = pc.groups;
    return 0;
}

/* A tile's outputs y [rows, tile rows]: the image columns once per group
 * when the rows are grouped, as the whole layer computes them. */
static void tile_forward(step_ctx_t *c, const ff_layer_t *v) {
    if (c->groups != NULL) {
        c->flops += ff_dense_forward_grouped(c->y, c->xn, v->weight, v->bias, c->groups, v->in,
                                             v->out);
    } else {
        ff_dense_forward(c->y, c->xn, v->weight, v->bias, c->rows, v->in, v->out);
        c->flops += 2.0 * (double)c->rows * v->in * v->out;
    }
}

static int goodness_tile(void *ctx, ff_tiles_t *t, uint32_t tile, uint8_t *frame, uint32_t rows,
                         ff_error_t *err) {
    (void)err;
    step_ctx_t *c = ctx;
    ff_layer_t v = tile_view(t, frame, rows);
    tile_forward(c, &v);
    if (c->accumulate)
        ff_dense_goodness_add(t->acc, c->y, c->rows, rows, (size_t)tile * t->units);
    if (c->out != NULL) /* the tile's columns of every row */
        for (size_t i = 0; i < c->rows; i++)
            memcpy(c->out + i * t->out + (size_t)tile * t->units, c->y + i * rows,
                   rows * sizeof(float));
    return 0;
}

/* Pass 1 of a step, one tile: its part of every row's goodness, piece by
 * piece (the pieces' counts recorded on the first tile). */
static int step_goodness_tile(void *ctx, ff_tiles_t *t, uint32_t tile, uint8_t *frame,
                              uint32_t rows, ff_error_t *err) {
    step_ctx_t *c = ctx;
    ff_layer_t v = tile_view(t, frame, rows);
    size_t first = 0;
    for (uint64_t j = 0; j < c->src->pieces; j++) {
        if (use_piece(c, j, err) != 0) return -1;
        if (tile == 0) {
            c->piece_pos[j] = c->npos;
            c->piece_first[j] = first;
        } else if (c->piece_pos[j] != c->npos || c->piece_first[j] != first) {
            return ff_error_set(err, "tiled layer %u: piece %llu of the batch changed size "
                                "between tiles", t->k + 1, (unsigned long long)j);
        }
        tile_forward(c, &v);
        ff_dense_goodness_add(t->acc + first * FF_SUM_LANES, c->y, c->rows, rows,
                              (size_t)tile * t->units);
        first += c->rows;
    }
    return 0;
}

/* Pass 2 of a step, one tile: the same products as pass 1 on the same
 * inputs (the same outputs), dz from each row's goodness, the gradient
 * summed over the pieces, the tile's Adam step. */
static int update_tile(void *ctx, ff_tiles_t *t, uint32_t tile, uint8_t *frame, uint32_t rows,
                       ff_error_t *err) {
    (void)tile;
    step_ctx_t *c = ctx;
    ff_layer_t v = tile_view(t, frame, rows);
    for (uint64_t j = 0; j < c->src->pieces; j++) {
        if (use_piece(c, j, err) != 0) return -1;
        const int accumulate = j > 0;
        const float *good = c->goodness + c->piece_first[j];
        tile_forward(c, &v);
        ff_dense_local_dz(c->dz, good, c->y, c->npos, c->nneg, t->out, rows, &c->lp);
        if (c->groups != NULL) {
            c->flops += ff_dense_backward_params_paired(v.grad_weight, v.grad_bias, c->dz, c->xn,
                                                        c->npos, c->groups->shared, t->in, rows,
                                                        accumulate);
        } else {
            if (accumulate)
                ff_dense_backward_params_add(v.grad_weight, v.grad_bias, c->dz, c->xn, c->rows,
                                             t->in, rows);
            else
                ff_dense_backward_params(v.grad_weight, v.grad_bias, c->dz, c->xn, c->rows,
                                         t->in, rows);
            c->flops += 2.0 * (double)c->rows * t->in * rows;
        }
    }
    ff_adam_update(v.params, v.adam_m, v.adam_v, v.grads, v.param_count, &c->p->adam, c->step);
    return 0;
}

/* A pending file left by a killed step of this state: its written tiles
 * are kept once they check out; anything else is started again. @return
 * the first tile to write. */
static uint32_t resume_pending(ff_tiles_t *t) {
    ff_error_t ignored;
    struct stat st;
    if (lstat(t->pending_path, &st) != 0) return 0;
    ff_tilefile_t *d = &t->dst;
    if (!S_ISREG(st.st_mode) || ff_tilefile_open(d, t->pending_path, 1, 1, 1, &ignored) != 0)
        return 0;
    int same = d->in == t->in && d->out == t->out && d->units == t->units &&
               d->adam_step == t->src.adam_step + 1 &&
               d->meta.layer_index == t->src.meta.layer_index &&
               d->meta.config_fingerprint == t->src.meta.config_fingerprint &&
               d->meta.data_fingerprint == t->src.meta.data_fingerprint;
    /* Each written tile is read back and checked: the header may have
     * reached the disk before a tile did. */
    uint32_t good = 0;
    for (uint32_t i = 0; same && i < d->done; i++) {
        if (ff_tilefile_read(d, i, 3, t->slot[0], &ignored) != 0) break;
        good = i + 1;
    }
    if (!same || good == 0) {
        ff_tilefile_close(d);
        return 0;
    }
    d->done = good;
    return good;
}

double ff_tiles_step(ff_tiles_t *t, ff_step_workspace_t *ws, const ff_tiles_rows_t *src,
                     const ff_step_params_t *p, ff_step_stats_t *stats, ff_error_t *err) {
    const size_t rows = src->batch_pos + src->batch_neg;
    const int64_t step = t->src.adam_step + 1;
    if (ws->out < t->units || src->pieces == 0 || src->pieces > rows)
        return ff_error_set(err, "tiled layer %u: a workspace of %zu columns for tiles of %u, "
                            "%llu pieces", t->k + 1, ws->out, t->units,
                            (unsigned long long)src->pieces);
    if (ensure_acc(t, rows, src->pieces, err) != 0) return -1;
    step_ctx_t c = {.y = ws->y, .dz = ws->dz, .goodness = t->good, .p = p, .step = step,
                    .src = src, .piece_pos = t->piece_pos, .piece_first = t->piece_first};
    c.lp = (ff_loss_params_t){.kind = p->loss, .goodness = p->goodness, .theta = p->theta,
                              .alpha = p->alpha, .batch_pos = src->batch_pos,
                              .batch_neg = src->batch_neg};
    /* Pass 1: every row's goodness. */
    memset(t->acc, 0, rows * FF_SUM_LANES * sizeof *t->acc);
    if (stream(t, "goodness", step, 0, 1, 0, step_goodness_tile, &c, &c.flops, err) != 0)
        return -1;
    ff_dense_goodness_finish(t->good, t->acc, rows, t->out, p->goodness);
    /* The loss and the goodness sums piece by piece, as the whole layer's
     * step sums its pieces. */
    for (uint64_t j = 0; j < src->pieces; j++) {
        const size_t first = c.piece_first[j], npos = c.piece_pos[j];
        const size_t end = j + 1 < src->pieces ? c.piece_first[j + 1] : rows;
        const float *g = t->good + first;
        stats->loss_sum += ff_dense_local_loss_value(g, npos, end - first - npos, &c.lp);
        for (size_t i = 0; i < npos; i++) stats->good_pos_sum += g[i];
        for (size_t i = npos; i < end - first; i++) stats->good_neg_sum += g[i];
        stats->npos += npos;
        stats->nneg += end - first - npos;
    }
    /* Pass 2: each tile's update, into the next state's file. */
    uint32_t first = resume_pending(t);
    if (first == 0) {
        ff_tilefile_t *d = &t->dst;
        if (ff_tilefile_geometry(d, t->in, t->out, t->units, err) != 0 ||
            ff_tilefile_create(d, t->pending_path, err) != 0)
            return -1;
    }
    t->dst.adam_step = step;
    t->dst.meta = t->src.meta; /* until the step is whole */
    if (stream(t, "update", step, first, 3, 1, update_tile, &c, &c.flops, err) != 0) return -1;
    return c.flops;
}

int ff_tiles_commit(ff_tiles_t *t, const ff_layerfile_meta_t *after, ff_error_t *err) {
    if (t->dst.fd < 0 || t->dst.done != t->dst.count)
        return ff_error_set(err, "%s: no whole step to commit", t->pending_path);
    /* the header with the new state, fsync, rename, directory fsync. */
    t->dst.meta = *after;
    if (ff_tilefile_write_header(&t->dst, err) != 0 || ff_tilefile_sync(&t->dst, err) != 0)
        return -1;
    ff_tilefile_close(&t->dst);
    if (rename(t->pending_path, t->path) != 0)
        return ff_error_set(err, "%s: cannot rename to %s: %s", t->pending_path, t->path,
                            strerror(errno));
    if (ff_fileio_sync_parent(t->path, err) != 0) return -1;
    ff_tilefile_close(&t->src);
    if (ff_tilefile_open(&t->src, t->path, 0, 0, 1, err) != 0) return -1;
    /* The file renamed into place, not another: the buffers are sized for it. */
    if (t->src.in != t->in || t->src.out != t->out || t->src.units != t->units ||
        t->src.adam_step != t->dst.adam_step)
        return ff_error_set(err, "%s: changed while it was committed (another file is there)",
                            t->path);
    return 0;
}

double ff_tiles_forward(ff_tiles_t *t, ff_step_workspace_t *ws, float *y, float *goodness,
                        ff_goodness_t kind, const float *x, const ff_dense_groups_t *g,
                        ff_error_t *err) {
    const size_t rows = g->units * g->copies;
    if (rows > ws->max_rows || ws->out < t->units)
        return ff_error_set(err, "tiled layer %u: %zu rows, at most %zu", t->k + 1, rows,
                            ws->max_rows);
    if (goodness != NULL && ensure_acc(t, rows, 0, err) != 0) return -1;
    ff_dense_normalize(ws->xn, NULL, x, rows, t->in);
    step_ctx_t c = {.xn = ws->xn, .rows = rows, .y = ws->y, .out = y,
                    .accumulate = goodness != NULL};
    if (g->shared > 0 && g->copies > 1 && ff_dense_groups_hold(ws->xn, g, t->in)) c.groups = g;
    if (goodness != NULL) memset(t->acc, 0, rows * FF_SUM_LANES * sizeof *t->acc);
    if (stream(t, "forward", -1, 0, 1, 0, goodness_tile, &c, &c.flops, err) != 0) return -1;
    if (goodness != NULL) ff_dense_goodness_finish(goodness, t->acc, rows, t->out, kind);
    return c.flops;
}

typedef struct {
    uint64_t h;
    float *bias; /* [out] */
} hash_ctx_t;

static int hash_tile(void *ctx, ff_tiles_t *t, uint32_t tile, uint8_t *frame, uint32_t rows,
                     ff_error_t *err) {
    (void)err;
    hash_ctx_t *c = ctx;
    ff_layer_t v = tile_view(t, frame, rows);
    c->h = ff_hash_bytes(c->h, v.weight, (size_t)rows * t->in * sizeof(float));
    memcpy(c->bias + (size_t)tile * t->units, v.bias, rows * sizeof(float));
    return 0;
}

int ff_tiles_hash(ff_tiles_t *t, uint64_t *h, ff_error_t *err) {
    hash_ctx_t c = {*h, ff_mem_alloc(FF_MEM_OTHER, (size_t)t->out * sizeof(float))};
    if (c.bias == NULL) return ff_error_set(err, "out of memory");
    int rc = stream(t, "hash", t->src.adam_step, 0, 1, 0, hash_tile, &c, NULL, err);
    if (rc == 0) *h = ff_hash_bytes(c.h, c.bias, (size_t)t->out * sizeof(float));
    ff_mem_free(c.bias);
    return rc;
}

const ff_tile_pass_t *ff_tiles_passes(const ff_tiles_t *t, size_t *count) {
    *count = t->pass_count;
    return t->passes;
}

int ff_tiles_direct(const ff_tiles_t *t) { return t->src.direct; }

void ff_tiles_close(ff_tiles_t *t) {
    if (t == NULL) return;
    pthread_mutex_lock(&t->mu);
    t->quit = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    ff_tilefile_close(&t->dst);
    ff_tilefile_close(&t->src);
    ff_mem_free(t->acc);
    ff_mem_free(t->good);
    ff_mem_free(t->piece_pos);
    for (int s = 0; s < SLOTS; s++) ff_mem_free(t->slot[s]);
    ff_mem_free(t->grad);
    ff_mem_free(t->passes);
    ff_mem_free(t);
}

uint64_t ff_tiles_bytes(uint32_t in, uint32_t out, uint32_t units) {
    ff_tilefile_t g;
    ff_error_t ignored;
    if (ff_tilefile_geometry(&g, in, out, units, &ignored) != 0) return UINT64_MAX;
    /* The frames, a gradient, the streams' record, both files' checksums. */
    return SLOTS * g.frame_bytes + g.region_bytes + MAX_PASSES * sizeof(ff_tile_pass_t) +
           2 * 3 * (uint64_t)g.count * sizeof(uint64_t);
}
