/* chunkio.c: read-ahead and write-behind of cache chunks (see chunkio.h).
 * aio tags are buffer indices: 0 and 1 read, 2 and 3 write. */
#include "ffstream/chunkio.h"

#include <string.h>

#include "ffstream/memstat.h"

#define READ_BUFFERS 2
#define WRITE_BUFFERS 2

typedef struct {
    int active;
    int fd;
    uint64_t chunk;
} read_slot_t;

typedef struct {
    size_t pending;              /* bytes of the write in flight (0: none) */
    const ff_actcache_t *cache;  /* ... into this cache */
    uint64_t chunk;              /* ... as this chunk */
} write_slot_t;

struct ff_chunkio {
    ff_aio_t *aio;
    size_t bytes;
    float *buf[READ_BUFFERS + WRITE_BUFFERS];
    read_slot_t read[READ_BUFFERS]; /* a read in flight into buffer i */
    int held;                       /* the read buffer handed out, or -1 */
    write_slot_t write[WRITE_BUFFERS];
};

size_t ff_chunkio_bytes(size_t buffer_bytes) {
    return (READ_BUFFERS + WRITE_BUFFERS) * buffer_bytes;
}

int ff_chunkio_create(ff_chunkio_t **out, ff_aio_t *aio, size_t buffer_bytes, ff_error_t *err) {
    *out = NULL;
    ff_chunkio_t *io = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *io);
    if (io == NULL) return ff_error_set(err, "out of memory");
    io->aio = aio;
    io->bytes = buffer_bytes;
    io->held = -1;
    for (int i = 0; i < READ_BUFFERS + WRITE_BUFFERS; i++) {
        io->buf[i] = ff_mem_alloc_aligned(FF_MEM_IO, buffer_bytes, FF_ACTCACHE_ALIGN);
        if (io->buf[i] == NULL) {
            ff_chunkio_destroy(io);
            return ff_error_set(err, "out of memory for 4 chunk buffers of %zu bytes",
                                buffer_bytes);
        }
    }
    *out = io;
    return 0;
}

/* Waits for the request on buffer b and checks it moved `want` bytes. */
static int await(ff_chunkio_t *io, int b, size_t want, const char *path, const char *what,
                 ff_error_t *err) {
    int64_t got;
    if (ff_aio_wait_tag(io->aio, (uint64_t)b, &got, err) != 0)
        return ff_error_wrap(err, "%s: %s", path, what);
    if (got < 0)
        return ff_error_set(err, "%s: %s failed: %s", path, what, strerror((int)-got));
    if ((size_t)got != want)
        return ff_error_set(err, "%s: short %s: %lld of %zu bytes (truncated file?)", path, what,
                            (long long)got, want);
    return 0;
}

/* Drops a read in flight that nobody will use (a stop or an error changed
 * the plan). */
static int drop_read(ff_chunkio_t *io, int b, ff_error_t *err) {
    if (!io->read[b].active) return 0;
    io->read[b].active = 0;
    int64_t ignored;
    return ff_aio_wait_tag(io->aio, (uint64_t)b, &ignored, err);
}

static int start_read(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c, int b,
                      ff_error_t *err) {
    if (ff_aio_read(io->aio, cache->fd, io->buf[b], ff_actcache_chunk_io_bytes(cache, c),
                    ff_actcache_chunk_offset(cache, c), (uint64_t)b, err) != 0)
        return ff_error_wrap(err, "%s: reading chunk %llu", cache->path, (unsigned long long)c);
    io->read[b] = (read_slot_t){1, cache->fd, c};
    return 0;
}

static int find_read(const ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c) {
    for (int b = 0; b < READ_BUFFERS; b++)
        if (io->read[b].active && io->read[b].fd == cache->fd && io->read[b].chunk == c) return b;
    return -1;
}

int ff_chunkio_prefetch(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c,
                        ff_error_t *err) {
    if (find_read(io, cache, c) >= 0) return 0;
    int b = io->held == 0 ? 1 : 0;
    if (drop_read(io, b, err) != 0) return -1;
    return start_read(io, cache, c, b, err);
}

int ff_chunkio_read(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c, float **rows,
                    ff_error_t *err) {
    int b = find_read(io, cache, c);
    if (b < 0) {
        b = io->held == 0 ? 1 : 0;
        if (drop_read(io, b, err) != 0 || start_read(io, cache, c, b, err) != 0) return -1;
    }
    /* A stale read in the other buffer is dropped when that buffer is
     * next needed. */
    io->read[b].active = 0;
    if (await(io, b, ff_actcache_chunk_io_bytes(cache, c), cache->path, "read", err) != 0 ||
        ff_actcache_check(cache, c, io->buf[b], err) != 0)
        return -1;
    io->held = b;
    *rows = io->buf[b];
    return 0;
}

void ff_chunkio_release(ff_chunkio_t *io, const ff_actcache_t *cache, uint64_t c) {
    io->held = -1;
    ff_actcache_release(cache, c);
}

static int drain_one(ff_chunkio_t *io, int w, ff_error_t *err) {
    write_slot_t *s = &io->write[w];
    if (s->pending == 0) return 0;
    size_t want = s->pending;
    s->pending = 0;
    if (await(io, READ_BUFFERS + w, want, s->cache->path, "write", err) != 0) return -1;
    /* Written: in buffered mode its pages can leave the page cache now. */
    ff_actcache_release(s->cache, s->chunk);
    return 0;
}

int ff_chunkio_out_buffer(ff_chunkio_t *io, uint64_t c, float **rows, ff_error_t *err) {
    int w = (int)(c & 1);
    if (drain_one(io, w, err) != 0) return -1;
    *rows = io->buf[READ_BUFFERS + w];
    return 0;
}

int ff_chunkio_write(ff_chunkio_t *io, ff_actcache_t *cache, uint64_t c, ff_error_t *err) {
    int w = (int)(c & 1);
    void *buf = io->buf[READ_BUFFERS + w];
    ff_actcache_seal(cache, c, buf);
    size_t bytes = ff_actcache_chunk_io_bytes(cache, c);
    if (ff_aio_write(io->aio, cache->fd, buf, bytes, ff_actcache_chunk_offset(cache, c),
                     (uint64_t)(READ_BUFFERS + w), err) != 0)
        return ff_error_wrap(err, "%s: writing chunk %llu", cache->path, (unsigned long long)c);
    io->write[w] = (write_slot_t){bytes, cache, c};
    return 0;
}

int ff_chunkio_drain(ff_chunkio_t *io, ff_error_t *err) {
    int rc = 0;
    ff_error_t ignored;
    for (int w = 0; w < WRITE_BUFFERS; w++)
        if (drain_one(io, w, rc == 0 ? err : &ignored) != 0) rc = -1;
    return rc;
}

void ff_chunkio_destroy(ff_chunkio_t *io) {
    if (io == NULL) return;
    ff_error_t ignored;
    /* Requests in flight point into the buffers: wait for them first. */
    for (int b = 0; b < READ_BUFFERS; b++) drop_read(io, b, &ignored);
    ff_chunkio_drain(io, &ignored);
    for (int i = 0; i < READ_BUFFERS + WRITE_BUFFERS; i++) ff_mem_free(io->buf[i]);
    ff_mem_free(io);
}
