/* loop.h: the one Forward-Forward layer loop. Every FF trainer (ff-mem,
 * ff-stream) is this loop over a row source (rows.h) and a layer store
 * (store.h); they differ only in the source and store they construct, so
 * their weights agree bit for bit by construction.
 *
 *   for each layer k (from the first not yet trained):
 *       acquire k from the store
 *       train: epochs of steps over TRAIN chunks in a fresh order per
 *              epoch (the first layer augmented), checkpoint per epoch
 *       pass:  TRAIN rows -> layer k -> the next layer's TRAIN rows;
 *              when the source keeps every set: TEST rows -> scores and
 *              the next TEST rows, neutral rows -> the next neutral rows
 *       end the layer in the source, release k from the store
 *   when the source does not keep every set: evaluation and the head's
 *       features through every layer at once (the store keeps them all)
 *   the softmax head (with --eval softmax), then the accuracies
 *
 *   data parallel: each rank runs this loop on its share of every batch;
 *       the gradient is summed over the ranks in rank order before each
 *       Adam step, the weights hash compared at each layer's end, the
 *       correct answers summed at the end (comm.h, shard.h)
 *
 *   source -> step -> sink -> checkpoint:
 *     rows.read ---> step (normalise, forward, loss, gradient, Adam)
 *     rows.read ---> forward ---> rows.out (next layer) / scores
 *     store.checkpoint, store.trained, store.release (checkpoints, run.json) */
#ifndef FFSTREAM_LOOP_H
#define FFSTREAM_LOOP_H

#include <stdint.h>

#include "ffstream/comm.h"
#include "ffstream/config.h"
#include "ffstream/error.h"
#include "ffstream/progress.h"
#include "ffstream/rows.h"
#include "ffstream/shard.h"
#include "ffstream/store.h"
#include "ffstream/train.h"

typedef struct {
    const ff_config_t *cfg;
    ff_rows_t *rows;
    ff_store_t *store;
    uint32_t first_layer;      /* layers below are trained and their passes done */
    uint32_t img_rows, img_cols; /* image shape (the first layer's jitter) */
    const uint8_t *train_labels; /* [N] the head's targets */
    const uint8_t *test_labels;  /* [T] */
    const char *name;          /* "ff-mem", "ff-stream": progress lines */
    /* Data parallel (NULL: one process): the ranks, which sum each batch's
     * gradient in rank order before the Adam step, and this rank's share
     * of every batch (the rows above are the share). */
    ff_comm_t *comm;
    const ff_shard_t *shard;
} ff_loop_t;

/* Trains, evaluates and fills res (per-layer figures, accuracies, hashes,
 * flops). @return 0 done, 1 stopped by ff_train_request_stop (resumable),
 * -1 error with err. */
int ff_loop_run(const ff_loop_t *loop, ff_result_t *res, ff_error_t *err);

#endif
