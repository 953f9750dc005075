/* test_actcache: activation cache files: geometry and chunk arithmetic, a
 * written cache read back byte for byte with every chunk's checksum, and
 * rejection of a cache that is incomplete, truncated, foreign, of another
 * geometry, or has a flipped byte in a chunk, the table or the header; a
 * symlink or FIFO in place of a cache is refused without following or
 * blocking. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "ffstream/actcache.h"
#include "ffstream/memstat.h"

static char dir[FF_PATH_MAX];

static float value(uint64_t chunk, size_t i) { return (float)(chunk * 100000 + i) * 0.5f; }

static void write_cache(const char *path, const ff_actcache_geometry_t *g, int finish) {
    ff_actcache_t c;
    ff_error_t err;
    CHECKF(ff_actcache_create(&c, path, g, &err) == 0, "%s", err.msg);
    float *buf = ff_mem_alloc_aligned(FF_MEM_IO, ff_actcache_buffer_bytes(&c), FF_ACTCACHE_ALIGN);
    for (uint64_t k = 0; k < c.chunk_count; k++) {
        size_t n = ff_actcache_chunk_rows(&c, k) * g->width;
        for (size_t i = 0; i < n; i++) buf[i] = value(k, i);
        ff_actcache_seal(&c, k, buf);
        size_t bytes = ff_actcache_chunk_io_bytes(&c, k);
        CHECK(pwrite(c.fd, buf, bytes, (off_t)ff_actcache_chunk_offset(&c, k)) == (ssize_t)bytes);
    }
    if (finish) CHECKF(ff_actcache_finish(&c, &err) == 0, "%s", err.msg);
    ff_actcache_close(&c);
    ff_mem_free(buf);
}

int main(void) {
    check_tempdir(dir, "actcache");
    char path[512];
    snprintf(path, sizeof path, "%s/train-000.cache", dir);
    /* 23 images, 5 per chunk: 4 full chunks and one of 3; rows of 7 floats. */
    ff_actcache_geometry_t g = {.width = 7, .rows_per_unit = 2, .units = 23,
                                .units_per_chunk = 5, .tag = 0xabc, .layer = 2};
    size_t slot;
    uint64_t file_bytes;
    CHECK(ff_actcache_sizes(&g, &slot, &file_bytes) == 0);
    CHECK(slot == 4096 && file_bytes == 4096 + 5 * 4096 + 4096); /* header, chunks, table */
    write_cache(path, &g, 1);

    ff_actcache_t c;
    ff_error_t err;
    CHECKF(ff_actcache_open(&c, path, &g, &err) == 0, "%s", err.msg);
    CHECK(c.chunk_count == 5);
    CHECK(ff_actcache_chunk_units(&c, 4) == 3 && ff_actcache_chunk_rows(&c, 4) == 6);
    CHECK(ff_actcache_chunk_rows(&c, 0) == 10);
    float *buf = ff_mem_alloc_aligned(FF_MEM_IO, ff_actcache_buffer_bytes(&c), FF_ACTCACHE_ALIGN);
    int wrong = 0;
    for (uint64_t k = 0; k < c.chunk_count; k++) {
        size_t bytes = ff_actcache_chunk_io_bytes(&c, k);
        CHECK(pread(c.fd, buf, bytes, (off_t)ff_actcache_chunk_offset(&c, k)) == (ssize_t)bytes);
        CHECKF(ff_actcache_check(&c, k, buf, &err) == 0, "%s", err.msg);
        for (size_t i = 0; i < ff_actcache_chunk_rows(&c, k) * g.width; i++)
            wrong += buf[i] != value(k, i);
        ff_actcache_release(&c, k);
    }
    CHECK(wrong == 0);
    printf("cache opened with%s O_DIRECT, %llu chunks read back\n", c.direct ? "" : "out",
           (unsigned long long)c.chunk_count);
    /* A flipped bit in a chunk: its checksum names the chunk. */
    size_t bytes = ff_actcache_chunk_io_bytes(&c, 2);
    CHECK(pread(c.fd, buf, bytes, (off_t)ff_actcache_chunk_offset(&c, 2)) == (ssize_t)bytes);
    ((uint8_t *)buf)[17] ^= 0x04;
    CHECK(ff_actcache_check(&c, 2, buf, &err) == -1);
    CHECK_CONTAINS(err.msg, "chunk 2: checksum mismatch");
    ff_actcache_close(&c);
    ff_actcache_close(&c); /* second close is a no-op */

    /* A damaged checksum table or header: refused at open. */
    check_flip_byte(path, 4096 + 5 * 4096 + 9);
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "the checksum table is damaged");
    write_cache(path, &g, 1);
    check_flip_byte(path, 50); /* the layer field */
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "header checksum mismatch");
    write_cache(path, &g, 1);

    /* A symlink planted where a cache is created: refused, target intact. */
    char victim[FF_PATH_MAX], link_path[FF_PATH_MAX];
    check_path(victim, dir, "victim");
    check_path(link_path, dir, "test-001.cache");
    check_write_file(victim, "keep", 4);
    CHECK(symlink(victim, link_path) == 0);
    CHECK(ff_actcache_create(&c, link_path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "symbolic link; refusing to write there");
    size_t vsize;
    char *vtext = check_read_file(victim, &vsize);
    CHECK(vtext != NULL && vsize == 4);
    free(vtext);
    /* A FIFO where a cache is opened: refused at once. */
    char fifo[FF_PATH_MAX];
    check_path(fifo, dir, "fifo.cache");
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK(ff_actcache_open(&c, fifo, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "is a FIFO, expected a regular file");
    CHECK(ff_actcache_open(&c, dir, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "is a directory, expected a regular file");

    /* Another geometry or run: rejected, naming the field. */
    ff_actcache_geometry_t other = g;
    other.width = 8;
    CHECK(ff_actcache_open(&c, path, &other, &err) == -1);
    CHECK_CONTAINS(err.msg, "field width is 7, expected 8");
    other = g;
    other.tag = 1;
    CHECK(ff_actcache_open(&c, path, &other, &err) == -1);
    CHECK_CONTAINS(err.msg, "field tag");

    /* Truncated. */
    CHECK(truncate(path, 4096 + 3 * 4096) == 0);
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "truncated");

    /* Never finished (the run died while writing it). */
    write_cache(path, &g, 0);
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "incomplete activation cache");

    /* Foreign file. */
    snprintf(path, sizeof path, "%s/foreign", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    static char junk[8192];
    memset(junk, 'x', sizeof junk);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "not an ffstream activation cache");
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(ff_actcache_open(&c, path, &g, &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot open");

    /* Impossible geometry. */
    ff_actcache_geometry_t zero = g;
    zero.units = 0;
    CHECK(ff_actcache_create(&c, path, &zero, &err) == -1);
    CHECK_CONTAINS(err.msg, "invalid or overflowing cache geometry");

    ff_mem_free(buf);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_actcache");
}
