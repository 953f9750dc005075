/* tiles.h: a layer trained in tiles of output units, for a layer whose
 * weights and Adam state do not fit in memory (the file layout is
 * tilefile.h). Forward-Forward makes this cheap: a row's loss depends on
 * the layer's outputs only through the row's goodness, a sum over output
 * units. A step over a batch is two streams over the tiles:
 *   pass 1  each tile's outputs give their part of every row's goodness;
 *   pass 2  each tile's outputs again (recomputed: the same bits), its dz
 *           from the row's goodness, its gradient, its Adam step, written
 *           to the next state's file.
 * The next layer's inputs and the evaluation scores are one stream over
 * the tiles per chunk of rows.
 *
 * Every stream overlaps its I/O with the products: an I/O thread reads
 * the next tile and writes the previous while the current one computes,
 * three tile buffers in turn, with O_DIRECT where the filesystem allows.
 *
 * Durability: a step writes a new file (RUN/layers/NNN.ffl.pending), its
 * header updated after every tile; when every tile is written it replaces
 * the committed file (fsync, rename, directory fsync). A process killed in
 * pass 2 leaves a pending file whose written tiles a resumed step keeps
 * (after checking them): it restarts at the tile boundary. With one tile
 * per layer the arithmetic is the untiled step's, operation for
 * operation. */
#ifndef FFSTREAM_TILES_H
#define FFSTREAM_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/layerfile.h"
#include "ffstream/step.h"
#include "ffstream/tilefile.h"

typedef struct ff_tiles ff_tiles_t;

/* One stream over the tiles, for the result (results/wide.json). */
typedef struct ff_tile_pass_record {
    char kind[16];          /* "init", "goodness", "update", "forward", "hash" */
    uint32_t layer;
    int64_t step;           /* the Adam step it belongs to (forward: -1) */
    uint32_t first_tile, tiles;
    double seconds, io_wait_seconds; /* wall time, and the part spent waiting for I/O */
    uint64_t bytes_read, bytes_written;
    double flops;
} ff_tile_pass_t;

/* Opens layer k's tiled state at `path` (RUN/layers/NNN.ffl): creates it
 * (initialised as ff_layer_init_for_run would, value for value, with zero
 * moments, and `meta` as its state) when it does not exist, else checks it
 * against in, out, units and meta's fingerprints and layer index.
 * *out_meta and *adam_step: the committed state. On failure *out may be
 * set: ff_tiles_close it. @return 0 or -1 with err. */
int ff_tiles_open(ff_tiles_t **out, const char *path, uint32_t k, uint32_t in, uint32_t outputs,
                  uint32_t units, uint64_t seed, const ff_layerfile_meta_t *meta,
                  ff_layerfile_meta_t *out_meta, int64_t *adam_step, ff_error_t *err);

/* One piece of a batch: its rows normalised, [npos + nneg, in], the first
 * npos positive; groups: how they share their image columns (NULL: not). */
typedef struct {
    const float *xn;
    size_t npos, nneg;
    const ff_dense_groups_t *groups;
} ff_tiles_piece_t;

/* Where a tiled step's rows come from: a batch of batch_pos + batch_neg
 * rows in `pieces` pieces, each given by get (called for every piece in
 * order, once per tile of each pass: a batch too large for memory is read
 * again for every tile; a batch of one piece can be kept). */
typedef struct {
    int (*get)(void *ctx, uint64_t j, ff_tiles_piece_t *piece, ff_error_t *err);
    void *ctx;
    uint64_t pieces;
    size_t batch_pos, batch_neg;
} ff_tiles_rows_t;

/* One training step on a batch (ws->y and ws->dz hold one piece's rows of
 * one tile's columns): the two passes above, the gradient of each tile
 * summed over the pieces as ff_step_grad sums them, the new state written
 * to the pending file (a pending file left by a killed step is resumed
 * from its last written tile). Adds the batch's loss and goodness to stats
 * (not `batches`). @return the matrix-product flops done, or -1 with
 * err. */
double ff_tiles_step(ff_tiles_t *t, ff_step_workspace_t *ws, const ff_tiles_rows_t *src,
                     const ff_step_params_t *p, ff_step_stats_t *stats, ff_error_t *err);

/* Makes the step's state the committed one, with `after` as its training
 * state (the stats and position after the step): header, fsync, rename,
 * directory fsync. @return 0 or -1 with err. */
int ff_tiles_commit(ff_tiles_t *t, const ff_layerfile_meta_t *after, ff_error_t *err);

/* y [rows, out] = relu(normalize(x) W^T + b) (y may be NULL), and with
 * goodness not NULL each row's goodness of that kind, a tile at a time;
 * the rows are g->units * g->copies, grouped as ff_step_forward_grouped
 * groups them (g->shared 0: no groups). @return the flops done, or -1 with
 * err. */
double ff_tiles_forward(ff_tiles_t *t, ff_step_workspace_t *ws, float *y, float *goodness,
                        ff_goodness_t kind, const float *x, const ff_dense_groups_t *g,
                        ff_error_t *err);

/* FNV-1a of the parameters in the untiled layer's order (every weight row,
 * then the bias), continuing from h. @return 0 or -1 with err. */
int ff_tiles_hash(ff_tiles_t *t, uint64_t *h, ff_error_t *err);

/* The streams so far (owned by t). */
const ff_tile_pass_t *ff_tiles_passes(const ff_tiles_t *t, size_t *count);

/* Whether the tile I/O uses O_DIRECT. */
int ff_tiles_direct(const ff_tiles_t *t);

void ff_tiles_close(ff_tiles_t *t);

/* Bytes a tiled layer of in -> out in tiles of `units` holds in memory
 * (three tile buffers, a tile's gradient, the record of its streams, the
 * checksums), for the memory model. */
uint64_t ff_tiles_bytes(uint32_t in, uint32_t out, uint32_t units);

/* Workspace out-width a tiled layer needs: the step's y and dz hold one
 * tile's columns. */
static inline uint32_t ff_tiles_ws_out(uint32_t out, uint32_t units) {
    return units < out ? units : out;
}

#endif
