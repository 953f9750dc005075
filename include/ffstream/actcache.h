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
 *                 u64 tag (the run's fingerprint), u64 layer, u64 slot_bytes
 *   4096 + c*slot_bytes   chunk c: its rows, then zero padding to slot_bytes
 * slot_bytes is a multiple of 4096 so chunks can be moved with O_DIRECT,
 * which keeps the page cache (charged to a cgroup) from filling with data
 * read once per epoch. Where O_DIRECT is refused (tmpfs), buffered I/O is
 * used and each chunk's pages are dropped with posix_fadvise once used. */
#ifndef FFSTREAM_ACTCACHE_H
#define FFSTREAM_ACTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

#define FF_ACTCACHE_ALIGN 4096u
#define FF_ACTCACHE_VERSION 1u

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
    char path[4096];
} ff_actcache_t;

/* Creates (truncating) the cache file at path and reserves its full size
 * with posix_fallocate, so a full disk is found before any work.
 * @return 0 or -1 with err naming the file and the operation. */
int ff_actcache_create(ff_actcache_t *cache, const char *path, const ff_actcache_geometry_t *g,
                       ff_error_t *err);

/* Opens a complete cache and checks its header against expect.
 * @return 0 or -1 with err naming the file and the field. */
int ff_actcache_open(ff_actcache_t *cache, const char *path, const ff_actcache_geometry_t *expect,
                     ff_error_t *err);

/* Syncs the data, then marks the header complete and syncs again.
 * @return 0 or -1 with err. */
int ff_actcache_finish(ff_actcache_t *cache, ff_error_t *err);

/* Closes the file; safe on a closed or zeroed cache. */
void ff_actcache_close(ff_actcache_t *cache);

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

/* Zeroes a chunk buffer's padding after the rows of chunk c so the bytes
 * written are deterministic. */
void ff_actcache_pad(const ff_actcache_t *cache, uint64_t c, void *buffer);

/* The slot size and file size a geometry needs (for the memory model and
 * disk checks). @return 0 or -1 on overflow. */
int ff_actcache_sizes(const ff_actcache_geometry_t *g, size_t *slot_bytes, uint64_t *file_bytes);

#endif
