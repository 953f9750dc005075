/* actcache.c: activation cache files (see actcache.h for the layout). The
 * module knows files and geometry only; the trainer moves chunks with aio. */
#include "ffstream/actcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    if (ff_mul_size(chunks, bytes, &total) || total > SIZE_MAX - FF_ACTCACHE_ALIGN) return -1;
    *slot_bytes = bytes;
    *file_bytes = (uint64_t)total + FF_ACTCACHE_ALIGN;
    return 0;
}

/* Opens path, with O_DIRECT when the filesystem allows it. */
static int open_cache(const char *path, int flags, int *direct) {
    int fd = open(path, flags | O_DIRECT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        *direct = 1;
        return fd;
    }
    if (errno != EINVAL) return -1;
    *direct = 0;
    return open(path, flags | O_CLOEXEC, 0644);
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
}

static int write_header(ff_actcache_t *c, uint32_t complete, ff_error_t *err) {
    uint8_t *h = ff_mem_alloc_aligned(FF_MEM_IO, FF_ACTCACHE_ALIGN, FF_ACTCACHE_ALIGN);
    if (h == NULL) return ff_error_set(err, "%s: out of memory for the header", c->path);
    encode_header(h, c, complete);
    ssize_t n = pwrite(c->fd, h, FF_ACTCACHE_ALIGN, 0);
    int e = errno;
    ff_mem_free(h);
    if (n != (ssize_t)FF_ACTCACHE_ALIGN)
        return ff_error_set(err, "%s: writing the header: %s", c->path,
                            n < 0 ? strerror(e) : "short write");
    return 0;
}

int ff_actcache_create(ff_actcache_t *c, const char *path, const ff_actcache_geometry_t *g,
                       ff_error_t *err) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    uint64_t file_bytes;
    if (ff_actcache_sizes(g, &c->slot_bytes, &file_bytes) != 0)
        return ff_error_set(err, "%s: invalid or overflowing cache geometry", path);
    if (strlen(path) >= sizeof c->path) return ff_error_set(err, "%s: path too long", path);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->g = *g;
    c->chunk_count = (g->units + g->units_per_chunk - 1) / g->units_per_chunk;
    c->fd = open_cache(path, O_RDWR | O_CREAT | O_TRUNC, &c->direct);
    if (c->fd < 0) return ff_error_set(err, "%s: cannot create: %s", path, strerror(errno));
    int rc = posix_fallocate(c->fd, 0, (off_t)file_bytes);
    if (rc != 0) {
        ff_error_set(err, "%s: cannot reserve %llu bytes for the activation cache: %s", path,
                     (unsigned long long)file_bytes, strerror(rc));
        goto fail;
    }
    if (write_header(c, 0, err) != 0) goto fail;
    return 0;
fail:
    close(c->fd);
    unlink(path);
    c->fd = -1;
    return -1;
}

int ff_actcache_open(ff_actcache_t *c, const char *path, const ff_actcache_geometry_t *expect,
                     ff_error_t *err) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    int rc = -1;
    uint8_t *h = ff_mem_alloc_aligned(FF_MEM_IO, FF_ACTCACHE_ALIGN, FF_ACTCACHE_ALIGN);
    if (h == NULL) return ff_error_set(err, "%s: out of memory for the header", path);
    if (strlen(path) >= sizeof c->path) {
        ff_error_set(err, "%s: path too long", path);
        goto cleanup;
    }
    snprintf(c->path, sizeof c->path, "%s", path);
    c->fd = open_cache(path, O_RDONLY, &c->direct);
    if (c->fd < 0) {
        ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
        goto cleanup;
    }
    ssize_t n = pread(c->fd, h, FF_ACTCACHE_ALIGN, 0);
    if (n != (ssize_t)FF_ACTCACHE_ALIGN) {
        ff_error_set(err, "%s: truncated activation cache header (%zd bytes, expected %u)", path, n,
                     FF_ACTCACHE_ALIGN);
        goto cleanup;
    }
    if (memcmp(h, cache_magic, 8) != 0) {
        ff_error_set(err, "%s: not an ffstream activation cache (bad magic)", path);
        goto cleanup;
    }
    if (get_u32(h + 8) != FF_ACTCACHE_VERSION) {
        ff_error_set(err, "%s: cache version %u, expected %u", path, get_u32(h + 8),
                     FF_ACTCACHE_VERSION);
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
    struct stat st;
    if (fstat(c->fd, &st) != 0 || (uint64_t)st.st_size < file_bytes) {
        ff_error_set(err, "%s: truncated: %lld bytes, expected %llu", path,
                     (long long)st.st_size, (unsigned long long)file_bytes);
        goto cleanup;
    }
    c->chunk_count = (c->g.units + c->g.units_per_chunk - 1) / c->g.units_per_chunk;
    rc = 0;
cleanup:
    ff_mem_free(h);
    if (rc != 0 && c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    return rc;
}

int ff_actcache_finish(ff_actcache_t *c, ff_error_t *err) {
    if (fdatasync(c->fd) != 0)
        return ff_error_set(err, "%s: fdatasync: %s", c->path, strerror(errno));
    if (write_header(c, 1, err) != 0) return -1;
    if (fdatasync(c->fd) != 0)
        return ff_error_set(err, "%s: fdatasync: %s", c->path, strerror(errno));
    return 0;
}

void ff_actcache_close(ff_actcache_t *c) {
    if (c == NULL || c->fd < 0) return;
    if (!c->direct) posix_fadvise(c->fd, 0, 0, POSIX_FADV_DONTNEED);
    close(c->fd);
    c->fd = -1;
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

void ff_actcache_pad(const ff_actcache_t *c, uint64_t chunk, void *buffer) {
    size_t used = ff_actcache_chunk_rows(c, chunk) * c->g.width * sizeof(float);
    memset((char *)buffer + used, 0, ff_actcache_chunk_io_bytes(c, chunk) - used);
}
