/* actcache.c: activation cache files (see actcache.h for the layout). The
 * module knows files and geometry only; the trainer moves chunks with aio. */
#include "ffstream/actcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffstream/fileio.h"
#include "ffstream/memstat.h"

static const char cache_magic[8] = {'F', 'F', 'C', 'A', 'C', 'H', 'E', 0};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Bytes of the checksum table, padded for O_DIRECT. */
static uint64_t table_bytes(uint64_t chunks) {
    return (chunks * 8 + FF_ACTCACHE_ALIGN - 1) / FF_ACTCACHE_ALIGN * FF_ACTCACHE_ALIGN;
}

int ff_actcache_sizes(const ff_actcache_geometry_t *g, size_t *slot_bytes, uint64_t *file_bytes) {
    size_t rows, bytes, chunks;
    if (g->width == 0 || g->rows_per_unit == 0 || g->units == 0 || g->units_per_chunk == 0)
        return -1;
    if (ff_mul_size(g->units_per_chunk, g->rows_per_unit, &rows) ||
        ff_mul_size(rows, g->width, &bytes) || ff_mul_size(bytes, sizeof(float), &bytes) ||
        bytes > SIZE_MAX - FF_ACTCACHE_ALIGN)
        return -1;
    bytes = (bytes + FF_ACTCACHE_ALIGN - 1) / FF_ACTCACHE_ALIGN * FF_ACTCACHE_ALIGN;
    chunks = (g->units + g->units_per_chunk - 1) / g->units_per_chunk;
    size_t total;
    if (ff_mul_size(chunks, bytes, &total) || total > SIZE_MAX / 2) return -1;
    *slot_bytes = bytes;
    *file_bytes = (uint64_t)total + FF_ACTCACHE_ALIGN + table_bytes(chunks);
    return 0;
}

static uint64_t table_offset(const ff_actcache_t *c) {
    return FF_ACTCACHE_ALIGN + c->chunk_count * (uint64_t)c->slot_bytes;
}

static void encode_header(uint8_t *h, const ff_actcache_t *c, uint32_t complete) {
    memset(h, 0, FF_ACTCACHE_ALIGN);
    memcpy(h, cache_magic, 8);
    put_u32(h + 8, FF_ACTCACHE_VERSION);
    put_u32(h + 12, c->g.width);
    put_u64(h + 16, c->g.units);
    put_u64(h + 24, c->g.units_per_chunk);
    put_u32(h + 32, c->g.rows_per_unit);
    put_u32(h + 36, complete);
    put_u64(h + 40, c->g.tag);
    put_u64(h + 48, c->g.layer);
    put_u64(h + 56, c->slot_bytes);
    put_u64(h + 64, complete ? ff_fileio_xxh3(c->sums, c->chunk_count * 8) : 0);
    put_u64(h + 72, ff_fileio_xxh3(h, 72));
}

/* Writes an aligned buffer (O_DIRECT needs one) of `bytes` at offset. */
static int write_aligned(ff_actcache_t *c, const void *data, size_t bytes, uint64_t offset,
                         const char *what, ff_error_t *err) {
    uint8_t *buf = ff_mem_alloc_aligned(FF_MEM_IO, bytes, FF_ACTCACHE_ALIGN);
    if (buf == NULL) return ff_error_set(err, "%s: out of memory for the %s", c->path, what);
    memcpy(buf, data, bytes);
    int rc = ff_fileio_pwrite(c->fd, buf, bytes, offset);
    int e = errno;
    ff_mem_free(buf);
    if (rc != 0) return ff_error_set(err, "%s: writing the %s: %s", c->path, what, strerror(e));
    return 0;
}

static int write_header(ff_actcache_t *c, uint32_t complete, ff_error_t *err) {
    uint8_t h[FF_ACTCACHE_ALIGN];
    encode_header(h, c, complete);
    return write_aligned(c, h, sizeof h, 0, "header", err);
}

static void reset(ff_actcache_t *c) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

int ff_actcache_create(ff_actcache_t *c, const char *path, const ff_actcache_geometry_t *g,
                       ff_error_t *err) {
    reset(c);
    uint64_t file_bytes;
    if (ff_actcache_sizes(g, &c->slot_bytes, &file_bytes) != 0)
        return ff_error_set(err, "%s: invalid or overflowing cache geometry", path);
    if (ff_path_format(c->path, err, "%s", path) != 0) return -1;
    c->g = *g;
    c->chunk_count = (g->units + g->units_per_chunk - 1) / g->units_per_chunk;
    c->sums = ff_mem_calloc(FF_MEM_IO, c->chunk_count, sizeof *c->sums);
    if (c->sums == NULL) return ff_error_set(err, "%s: out of memory for the checksums", path);
    /* O_DIRECT where the filesystem allows it (not tmpfs). */
    ff_error_t first;
    c->fd = ff_fileio_create_new(path, O_RDWR | O_DIRECT, &first);
    c->direct = c->fd >= 0;
    if (c->fd < 0) c->fd = ff_fileio_create_new(path, O_RDWR, err);
    if (c->fd < 0) {
        ff_actcache_close(c);
        return -1;
    }
    int rc = posix_fallocate(c->fd, 0, (off_t)file_bytes);
    if (rc != 0) {
        ff_error_set(err, "%s: cannot reserve %llu bytes for the activation cache: %s", path,
                     (unsigned long long)file_bytes, strerror(rc));
        goto fail;
    }
    if (write_header(c, 0, err) != 0) goto fail;
    return 0;
fail:
    ff_actcache_close(c);
    unlink(path);
    return -1;
}

int ff_actcache_open(ff_actcache_t *c, const char *path, const ff_actcache_geometry_t *expect,
                     ff_error_t *err) {
    reset(c);
    int rc = -1;
    uint8_t h[FF_ACTCACHE_ALIGN];
    if (ff_path_format(c->path, err, "%s", path) != 0) return -1;
    uint64_t size;
    c->fd = ff_fileio_open_regular(path, O_DIRECT, &size, err);
    c->direct = c->fd >= 0;
    if (c->fd < 0 && errno == EINVAL) c->fd = ff_fileio_open_regular(path, 0, &size, err);
    if (c->fd < 0) return -1;
    uint8_t *aligned = ff_mem_alloc_aligned(FF_MEM_IO, FF_ACTCACHE_ALIGN, FF_ACTCACHE_ALIGN);
    if (aligned == NULL) {
        ff_error_set(err, "%s: out of memory for the header", path);
        goto cleanup;
    }
    if (size < FF_ACTCACHE_ALIGN || ff_fileio_read_exact(c->fd, aligned, FF_ACTCACHE_ALIGN, 0)) {
        ff_error_set(err, "%s: truncated activation cache: %llu bytes, shorter than its %u-byte "
                     "header", path, (unsigned long long)size, FF_ACTCACHE_ALIGN);
        ff_mem_free(aligned);
        goto cleanup;
    }
    memcpy(h, aligned, sizeof h);
    ff_mem_free(aligned);
    if (memcmp(h, cache_magic, 8) != 0) {
        ff_error_set(err, "%s: not an ffstream activation cache (bad magic)", path);
        goto cleanup;
    }
    if (get_u32(h + 8) != FF_ACTCACHE_VERSION) {
        ff_error_set(err, "%s: cache version %u, expected %u", path, get_u32(h + 8),
                     FF_ACTCACHE_VERSION);
        goto cleanup;
    }
    if (get_u64(h + 72) != ff_fileio_xxh3(h, 72)) {
        ff_error_set(err, "%s: header checksum mismatch: the header is damaged", path);
        goto cleanup;
    }
    c->g.width = get_u32(h + 12);
    c->g.units = get_u64(h + 16);
    c->g.units_per_chunk = get_u64(h + 24);
    c->g.rows_per_unit = get_u32(h + 32);
    c->g.tag = get_u64(h + 40);
    c->g.layer = get_u64(h + 48);
    c->slot_bytes = get_u64(h + 56);
    const struct { const char *name; uint64_t got, want; } fields[] = {
        {"width", c->g.width, expect->width},
        {"units", c->g.units, expect->units},
        {"units_per_chunk", c->g.units_per_chunk, expect->units_per_chunk},
        {"rows_per_unit", c->g.rows_per_unit, expect->rows_per_unit},
        {"tag", c->g.tag, expect->tag},
        {"layer", c->g.layer, expect->layer},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (fields[i].got != fields[i].want) {
            ff_error_set(err, "%s: field %s is %llu, expected %llu", path, fields[i].name,
                         (unsigned long long)fields[i].got, (unsigned long long)fields[i].want);
            goto cleanup;
        }
    }
    if (get_u32(h + 36) != 1) {
        ff_error_set(err, "%s: incomplete activation cache (the run stopped while writing it)",
                     path);
        goto cleanup;
    }
    size_t slot;
    uint64_t file_bytes;
    if (ff_actcache_sizes(&c->g, &slot, &file_bytes) != 0 || slot != c->slot_bytes) {
        ff_error_set(err, "%s: field slot_bytes is %zu, expected %zu", path, c->slot_bytes, slot);
        goto cleanup;
    }
    if (size != file_bytes) {
        ff_error_set(err, "%s: %s: %llu bytes, expected %llu", path,
                     size < file_bytes ? "truncated" : "trailing bytes", (unsigned long long)size,
                     (unsigned long long)file_bytes);
        goto cleanup;
    }
    c->chunk_count = (c->g.units + c->g.units_per_chunk - 1) / c->g.units_per_chunk;
    /* The table: its size follows from the geometry just checked. */
    uint64_t tbytes = table_bytes(c->chunk_count);
    uint8_t *table = ff_mem_alloc_aligned(FF_MEM_IO, tbytes, FF_ACTCACHE_ALIGN);
    c->sums = ff_mem_alloc(FF_MEM_IO, c->chunk_count * sizeof *c->sums);
    if (table == NULL || c->sums == NULL) {
        ff_mem_free(table);
        ff_error_set(err, "%s: out of memory for the checksums", path);
        goto cleanup;
    }
    int bad = ff_fileio_read_exact(c->fd, table, tbytes, table_offset(c)) != 0;
    for (uint64_t k = 0; !bad && k < c->chunk_count; k++) c->sums[k] = get_u64(table + 8 * k);
    ff_mem_free(table);
    if (bad || get_u64(h + 64) != ff_fileio_xxh3(c->sums, c->chunk_count * 8)) {
        ff_error_set(err, "%s: the checksum table is damaged", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0) ff_actcache_close(c);
    return rc;
}

int ff_actcache_finish(ff_actcache_t *c, ff_error_t *err) {
    if (ff_fileio_fsync(c->fd) != 0)
        return ff_error_set(err, "%s: fsync: %s", c->path, strerror(errno));
    uint64_t tbytes = table_bytes(c->chunk_count);
    uint8_t *table = ff_mem_calloc(FF_MEM_IO, tbytes, 1);
    if (table == NULL) return ff_error_set(err, "%s: out of memory for the checksums", c->path);
    for (uint64_t k = 0; k < c->chunk_count; k++) put_u64(table + 8 * k, c->sums[k]);
    int rc = write_aligned(c, table, tbytes, table_offset(c), "checksum table", err);
    ff_mem_free(table);
    if (rc != 0 || write_header(c, 1, err) != 0) return -1;
    if (ff_fileio_fsync(c->fd) != 0)
        return ff_error_set(err, "%s: fsync: %s", c->path, strerror(errno));
    return 0;
}

void ff_actcache_close(ff_actcache_t *c) {
    if (c == NULL) return;
    if (c->fd >= 0) {
        if (!c->direct) posix_fadvise(c->fd, 0, 0, POSIX_FADV_DONTNEED);
        close(c->fd);
    }
    ff_mem_free(c->sums);
    c->sums = NULL;
    c->fd = -1;
}
void ff_actcache_move(ff_actcache_t *dst, ff_actcache_t *src) {
    ff_actcache_close(dst);
    *dst = *src;
    reset(src);
}

uint64_t ff_actcache_chunk_units(const ff_actcache_t *c, uint64_t chunk) {
    uint64_t first = chunk * c->g.units_per_chunk;
    uint64_t left = c->g.units - first;
    return left < c->g.units_per_chunk ? left : c->g.units_per_chunk;
}

size_t ff_actcache_chunk_rows(const ff_actcache_t *c, uint64_t chunk) {
    return (size_t)(ff_actcache_chunk_units(c, chunk) * c->g.rows_per_unit);
}

size_t ff_actcache_chunk_io_bytes(const ff_actcache_t *c, uint64_t chunk) {
    size_t bytes = ff_actcache_chunk_rows(c, chunk) * c->g.width * sizeof(float);
    return (bytes + FF_ACTCACHE_ALIGN - 1) / FF_ACTCACHE_ALIGN * FF_ACTCACHE_ALIGN;
}

uint64_t ff_actcache_chunk_offset(const ff_actcache_t *c, uint64_t chunk) {
    return FF_ACTCACHE_ALIGN + chunk * (uint64_t)c->slot_bytes;
}

size_t ff_actcache_buffer_bytes(const ff_actcache_t *c) { return c->slot_bytes; }

void ff_actcache_release(const ff_actcache_t *c, uint64_t chunk) {
    if (c->direct) return;
    off_t offset = (off_t)ff_actcache_chunk_offset(c, chunk);
    off_t length = (off_t)ff_actcache_chunk_io_bytes(c, chunk);
    /* Dirty pages cannot be dropped: write a written chunk back first (a
     * no-op for a chunk that was only read). */
    sync_file_range(c->fd, offset, length,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                        SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(c->fd, offset, length, POSIX_FADV_DONTNEED);
}

void ff_actcache_seal(ff_actcache_t *c, uint64_t chunk, void *buffer) {
    size_t used = ff_actcache_chunk_rows(c, chunk) * c->g.width * sizeof(float);
    size_t bytes = ff_actcache_chunk_io_bytes(c, chunk);
    memset((char *)buffer + used, 0, bytes - used);
    c->sums[chunk] = ff_fileio_xxh3(buffer, bytes);
}

int ff_actcache_check(const ff_actcache_t *c, uint64_t chunk, const void *buffer,
                      ff_error_t *err) {
    uint64_t sum = ff_fileio_xxh3(buffer, ff_actcache_chunk_io_bytes(c, chunk));
    if (sum != c->sums[chunk])
        return ff_error_set(err, "%s: chunk %llu: checksum mismatch (recorded %016llx, read "
                            "%016llx): the cache is damaged", c->path, (unsigned long long)chunk,
                            (unsigned long long)c->sums[chunk], (unsigned long long)sum);
    return 0;
}
