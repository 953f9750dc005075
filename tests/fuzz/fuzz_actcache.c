/* fuzz_actcache: the activation-cache reader on any bytes. The header's
 * checksum is set to match and the geometry the run expects is taken from
 * the header itself, so the fuzzer reaches the size, table and chunk
 * checks; every chunk is then read and checked. */
#include <xxhash.h>

#include "fuzz_util.h"
#include "ffstream/actcache.h"
#include "ffstream/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (64u << 20)) return 0;
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) return 0;
    memcpy(copy, data, size);
    ff_actcache_geometry_t g = {0};
    if (size >= FF_ACTCACHE_ALIGN) {
        uint64_t sum = XXH3_64bits(copy, 72);
        for (int i = 0; i < 8; i++) copy[72 + i] = (uint8_t)(sum >> (8 * i));
        g.width = (uint32_t)le(copy + 12, 4);
        g.units = le(copy + 16, 8);
        g.units_per_chunk = le(copy + 24, 8);
        g.rows_per_unit = (uint32_t)le(copy + 32, 4);
        g.tag = le(copy + 40, 8);
        g.layer = le(copy + 48, 8);
    }
    char path[64];
    int fd = fuzz_file(copy, size, path, sizeof path);
    free(copy);
    if (fd < 0) return 0;
    ff_actcache_t cache;
    ff_error_t err;
    if (ff_actcache_open(&cache, path, &g, &err) == 0) {
        float *buf = ff_mem_alloc_aligned(FF_MEM_IO, ff_actcache_buffer_bytes(&cache),
                                          FF_ACTCACHE_ALIGN);
        for (uint64_t c = 0; buf != NULL && c < cache.chunk_count; c++) {
            size_t bytes = ff_actcache_chunk_io_bytes(&cache, c);
            if (pread(cache.fd, buf, bytes, (off_t)ff_actcache_chunk_offset(&cache, c)) ==
                (ssize_t)bytes)
                ff_actcache_check(&cache, c, buf, &err);
        }
        ff_mem_free(buf);
        ff_actcache_close(&cache);
    }
    close(fd);
    return 0;
}
