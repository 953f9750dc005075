/* fileio.h: small file helpers shared by the modules that read ffstream's
 * files (layerfile, inspect): exact positional reads and crc32. Internal to
 * the library. */
#ifndef FFSTREAM_FILEIO_H
#define FFSTREAM_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads exactly size bytes at offset of fd, retrying short reads and EINTR.
 * @return 0, or -1 with errno set (0 when the file ended first). */
int ff_fileio_read_exact(int fd, void *buf, size_t size, uint64_t offset);

/* zlib's crc32 of size bytes (any size). */
uint32_t ff_fileio_crc32(const void *data, size_t size);

#endif
