/* chunkio.h: the chunk pipeline of a streamed run: two read buffers (the
 * chunk being computed and the next one being read) and two write buffers
 * (the chunk being filled and the previous one being written), moved
 * between activation caches (actcache.h) and memory with aio.h. Reads run
 * one chunk ahead and writes one chunk behind, so the disk works while the
 * cores compute. */
#ifndef FFSTREAM_CHUNKIO_H
#define FFSTREAM_CHUNKIO_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/actcache.h"
#include "ffstream/aio.h"
#include "ffstream/error.h"

typedef struct ff_chunkio ff_chunkio_t;

/* Four buffers of buffer_bytes (a multiple of FF_ACTCACHE_ALIGN, enough for
 * any chunk), moved with aio (not owned). @return 0 or -1 with err. */
int ff_chunkio_create(ff_chunkio_t **out, ff_aio_t *aio, size_t buffer_bytes, ff_error_t *err);

/* Waits for everything in flight, then frees; NULL is a no-op. */
void ff_chunkio_destroy(ff_chunkio_t *io);

/* Starts reading chunk c of cache into the free read buffer, unless that
 * read is already in flight; a different read in flight is waited for and
 * dropped first. @return 0 or -1 with err. */
int ff_chunkio_prefetch(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c,
                        ff_error_t *err);

/* Chunk c of cache in memory: the prefetched read if it is that chunk,
 * else read now. *rows stays valid until ff_chunkio_release. @return 0 or
 * -1 with err naming the file (a short read says the file is truncated). */
int ff_chunkio_read(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c, float **rows,
                    ff_error_t *err);

/* The held chunk is consumed; its pages leave the page cache. */
void ff_chunkio_release(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c);

/* A write buffer for chunk c (the one whose previous write has completed,
 * waited for here). @return 0 or -1 with err. */
int ff_chunkio_out_buffer(ff_chunkio_t *io, uint64_t c, float **rows, ff_error_t *err);

/* Pads and starts writing the buffer of chunk c to cache. @return 0 or -1. */
int ff_chunkio_write(ff_chunkio_t *io, ff_actcache_t *cache, uint64_t c, ff_error_t *err);

/* Waits for every write in flight. @return 0 or -1 with err (the first
 * failed write, naming its file). */
int ff_chunkio_drain(ff_chunkio_t *io, ff_error_t *err);

/* Bytes of the four buffers (for the memory model). */
size_t ff_chunkio_bytes(size_t buffer_bytes);

#endif
