/* fileio.c: exact positional reads and crc32 for the file readers. */
#include "ffstream/fileio.h"

#include <errno.h>
#include <unistd.h>
#include <zlib.h>

/* One syscall or zlib call moves at most this much. */
#define IO_CHUNK (1u << 30)

int ff_fileio_read_exact(int fd, void *buf, size_t size, uint64_t offset) {
    uint8_t *p = buf;
    while (size > 0) {
        ssize_t n = pread(fd, p, size > IO_CHUNK ? IO_CHUNK : size, (off_t)offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = 0;
            return -1;
        }
        p += n;
        size -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

uint32_t ff_fileio_crc32(const void *data, size_t size) {
    const Bytef *p = data;
    uLong crc = crc32(0L, Z_NULL, 0);
    while (size > 0) {
        uInt n = size > IO_CHUNK ? IO_CHUNK : (uInt)size;
        crc = crc32(crc, p, n);
        p += n;
        size -= n;
    }
    return (uint32_t)crc;
}
