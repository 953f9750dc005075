/* idx.h: reader of the IDX file format used by MNIST and Fashion-MNIST.
 *
 * Layout (all integers big-endian):
 *   bytes 0-1  zero
 *   byte  2    element type (0x08 = unsigned byte; the only type accepted)
 *   byte  3    number of dimensions d (1..4)
 *   4*d bytes  size of each dimension
 *   then       prod(sizes) elements, nothing after them
 * Files may be gzip-compressed (.gz) or raw; both are read through zlib.
 * Every field is checked against the file's real length (its size, or the
 * gzip trailer's uncompressed size) before the data is allocated; a gzip
 * file must be a single member. */
#ifndef FFSTREAM_IDX_H
#define FFSTREAM_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

#define FF_IDX_MAX_DIMS 4

typedef struct {
    int ndims;
    uint32_t dims[FF_IDX_MAX_DIMS];
    size_t count;  /* elements: product of dims */
    uint8_t *data; /* count bytes, ff_mem_alloc'd (FF_MEM_DATASET) */
} ff_idx_t;

/* Reads and validates the IDX file at path (gzip or raw). expect_ndims is the
 * number of dimensions the caller needs (1 for labels, 3 for images).
 * @return 0, or -1 with err naming the file and what was wrong. */
int ff_idx_read(ff_idx_t *out, const char *path, int expect_ndims, ff_error_t *err);

/* Frees out->data; safe on a zeroed or already freed struct. */
void ff_idx_free(ff_idx_t *idx);

#endif
