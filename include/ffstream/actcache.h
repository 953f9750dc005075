/* actcache.h: the on-disk activation cache: one file holding a layer's input
 * rows for the whole training (or test) set, cut into chunks that are read
 * and written whole. A chunk holds `units_per_chunk` units (images) of
 * `rows_per_unit` rows each (2 for training: the positive rows then the
 * negative rows of a batch, exactly the matrix a step trains on; 10 for
 * evaluation: each image with each label), each row `width` floats.
 *
 * Byte layout (little-endian):
 *   0      4096   header: magic "FFCACHE\0", u32 version, u32 width,
 *                 u64 units, u64 units_per_chunk, u32 rows_per_unit,
 *                 u32 complete (1 once every chunk is written and synced),
 *                 u64 tag (the run's fingerprint), u64 layer, u64 slot_bytes,
 *                 u64 XXH3 of the checksum table (at 64), u64 XXH3 of
 *                 bytes 0..71 (at 72), zeros
 *   4096 + c*slot_bytes   chunk c: its rows, then zero padding
 *   4096 + chunks*slot_bytes  the checksum table: the XXH3-64 of each
 *                 chunk's transferred bytes, u64 each, zero-padded to 4096
 * A chunk's checksum is taken when it is written and checked when it is
 * read, before anything uses it: a flipped byte or a chunk of another run
 * is an error naming the file and the chunk.
 * slot_bytes is a multiple of 4096 so chunks can be moved with O_DIRECT,
 * which keeps the page cache (charged to a cgroup) from filling with data
 * read once per epoch. Where O_DIRECT is refused (tmpfs), buffered I/O is
 * used and each chunk's pages are dropped with posix_fadvise once used. */
#ifndef FFSTREAM_ACTCACHE_H
#define FFSTREAM_ACTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/fileio.h"

#define FF_ACTCACHE_ALIGN 4096u
#define FF_ACTCACHE_VERSION 2u

typedef struct {
    uint32_t width;          /* floats per row */
    uint32_t rows_per_unit;  /* 2 (positive, negative) or 10 (candidate labels) */
    uint64_t units;          /* images */
    uint64_t units_per_chunk;
    uint64_t tag;            /* fingerprint of the run the cache belongs to */
    uint64_t layer;          /* index of the layer these rows are the input of */
} ff_actcache_geometry_t;

typedef struct {
    int fd;
    int direct;              /* opened with O_DIRECT */
    ff_actcache_geometry_t g;
    uint64_t chunk_count;
    size_t slot_bytes;
    uint64_t *sums;          /* [chunk_count] each chunk's XXH3 */
    char path[FF_PATH_MAX];
} ff_actcache_t;

/* Creates the cache file at path (a new file: a leftover regular file is
 * replaced, a symlink or anything else there refused) and reserves its
 * full size with posix_fallocate, so a full disk is found before any work.
 * @return 0 or -1 with err naming the file and the operation. */
int ff_actcache_create(ff_actcache_t *cache, const char *path, const ff_actcache_geometry_t *g,
                       ff_error_t *err);

/* Opens a complete cache (a regular file: a FIFO is refused without
 * blocking), checks its header and checksum table against expect and
 * keeps the table. @return 0 or -1 with err naming the file and the field. */
int ff_actcache_open(ff_actcache_t *cache, const char *path, const ff_actcache_geometry_t *expect,
                     ff_error_t *err);

/* Syncs the data, writes the checksum table, then marks the header
 * complete and syncs again. @return 0 or -1 with err. */
int ff_actcache_finish(ff_actcache_t *cache, ff_error_t *err);

/* Closes the file and frees the table; safe on a closed or zeroed cache
 * (fd -1). */
void ff_actcache_close(ff_actcache_t *cache);

/* Closes *dst and moves *src into it; *src is left closed. */
void ff_actcache_move(ff_actcache_t *dst, ff_actcache_t *src);

/* Units (images) in chunk c: units_per_chunk except maybe the last. */
uint64_t ff_actcache_chunk_units(const ff_actcache_t *cache, uint64_t c);

/* Rows in chunk c. */
size_t ff_actcache_chunk_rows(const ff_actcache_t *cache, uint64_t c);

/* Bytes to transfer for chunk c: its rows rounded up to FF_ACTCACHE_ALIGN. */
size_t ff_actcache_chunk_io_bytes(const ff_actcache_t *cache, uint64_t c);

/* File offset of chunk c. */
uint64_t ff_actcache_chunk_offset(const ff_actcache_t *cache, uint64_t c);

/* Size of a buffer that holds any chunk (slot_bytes); allocate it with
 * ff_mem_alloc_aligned(..., FF_ACTCACHE_ALIGN). */
size_t ff_actcache_buffer_bytes(const ff_actcache_t *cache);

/* Tells the kernel chunk c's pages are no longer needed (buffered mode;
 * a written chunk is written back first). */
void ff_actcache_release(const ff_actcache_t *cache, uint64_t c);

/* Before chunk c is written from buffer: zeroes the padding after its rows
 * (the bytes written are deterministic) and records its checksum. */
void ff_actcache_seal(ff_actcache_t *cache, uint64_t c, void *buffer);

/* After chunk c is read into buffer: its checksum must be the recorded one.
 * @return 0 or -1 with err naming the file and the chunk. */
int ff_actcache_check(const ff_actcache_t *cache, uint64_t c, const void *buffer,
                      ff_error_t *err);

/* The slot size and file size a geometry needs (for the memory model and
 * disk checks). @return 0 or -1 on overflow. */
int ff_actcache_sizes(const ff_actcache_geometry_t *g, size_t *slot_bytes, uint64_t *file_bytes);

#endif
