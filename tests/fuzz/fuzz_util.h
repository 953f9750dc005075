/* fuzz_util.h: what the fuzz targets share: the input as a file the
 * library's readers can open (a memfd, named through /proc/self/fd). */
#ifndef FFSTREAM_FUZZ_UTIL_H
#define FFSTREAM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes size bytes to a new in-memory file; path receives its name.
 * @return the descriptor (close it), or -1. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
