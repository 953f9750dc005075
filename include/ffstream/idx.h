/* idx.h: reader of the IDX file format used by MNIST and Fashion-MNIST.
 *
 * Layout (all integers big-endian):
 *   bytes 0-1  zero
 *   byte  2    element type (0x08 = unsigned byte; the only type accepted)
 *   byte  3    number of dimensions d (1..4)
 *   4*d bytes  size of each dimension
 *   then       prod(sizes) elements, nothing after them
 * Files may be gzip-compressed (.gz) or raw. Every field is checked against
 * the file's real length before anything is allocated from it: the file
 * size for raw files; for gzip files the real decompressed length, found by
 * a first pass that decompresses into a small buffer (the gzip trailer's
 * size is modulo 2^32 and could be forged), which also refuses a second
 * member or any byte after the first. The reader then streams the data, so
 * a caller allocates only what it keeps. */
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

/* An open IDX file whose header and length are verified: read its elements
 * front to back with ff_idx_reader_read. */
typedef struct ff_idx_reader ff_idx_reader_t;

/* Opens and verifies path (see above). expect_ndims is the number of
 * dimensions the caller needs (1 for labels, 3 for images); *shape receives
 * the header (data NULL). @return 0, or -1 with err naming the file and what
 * was wrong. */
int ff_idx_open(ff_idx_reader_t **out, ff_idx_t *shape, const char *path, int expect_ndims,
                ff_error_t *err);

/* Reads the next `bytes` elements into dst. @return 0 or -1 with err (the
 * file changed or failed under the reader). */
int ff_idx_reader_read(ff_idx_reader_t *r, void *dst, size_t bytes, ff_error_t *err);

/* Closes; NULL is a no-op. */
void ff_idx_close(ff_idx_reader_t *r);

/* Reads and validates the whole IDX file at path (gzip or raw): open,
 * allocate the verified count, read. @return 0, or -1 with err naming the
 * file and what was wrong. */
int ff_idx_read(ff_idx_t *out, const char *path, int expect_ndims, ff_error_t *err);

/* Frees out->data; safe on a zeroed or already freed struct. */
void ff_idx_free(ff_idx_t *idx);

#endif
