/* scores.h: the evaluation scores file of a streamed run: each test
 * candidate's goodness summed over the layers evaluated so far, saved with
 * each layer so a resumed run continues the sum.
 *
 * Byte layout (little-endian):
 *   0   8  magic "FFSCORE\0"
 *   8   4  format version (FF_SCORES_VERSION)
 *   12  4  layer: the scores sum the layers below it
 *   16  8  count of floats
 *   24  8  tag: the run's fingerprint
 *   32  8  XXH3-64 of the floats, seeded with the XXH3-64 of bytes 0..31
 *   40  4 * count  the scores, float32
 * Written atomically; read only after every field and the checksum agree
 * with what the run expects. */
#ifndef FFSTREAM_SCORES_H
#define FFSTREAM_SCORES_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

#define FF_SCORES_VERSION 2u
#define FF_SCORES_HEADER 40u

/* @return 0 or -1 with err naming path and the operation. */
int ff_scores_write(const char *path, const float *scores, size_t count, uint32_t layer,
                    uint64_t tag, ff_error_t *err);

/* Reads exactly count scores of `layer` of the run `tag`. @return 0 or -1
 * with err naming path and the field that differs. */
int ff_scores_read(const char *path, float *scores, size_t count, uint32_t layer, uint64_t tag,
                   ff_error_t *err);

#endif
