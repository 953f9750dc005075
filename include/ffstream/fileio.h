/* fileio.h: the one home of ffstream's file primitives: exact reads, opening
 * a file that must be regular (without blocking on a FIFO), creating a file
 * that must be new (never through a planted link), the atomic writer every
 * writer uses, checksums, and the path-length limit.
 *
 * Every write and fsync of the library goes through ff_fileio_pwrite,
 * ff_fileio_write_all and ff_fileio_fsync, so test builds can make any one
 * of them fail (hook.h) without touching the code under test. */
#ifndef FFSTREAM_FILEIO_H
#define FFSTREAM_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ffstream/error.h"

/* Bytes of every path buffer, the terminating NUL included. */
#define FF_PATH_MAX 4096

/* Formats a path into out (FF_PATH_MAX bytes). @return 0, or -1 with err
 * when it does not fit. */
int ff_path_format(char *out, ff_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads exactly size bytes at offset. @return 0, or -1 with errno set (0 when
 * the file ends first). */
int ff_fileio_read_exact(int fd, void *buf, size_t size, uint64_t offset);

/* pwrite of exactly size bytes (retried on short writes and EINTR).
 * @return 0, or -1 with errno set. */
int ff_fileio_pwrite(int fd, const void *buf, size_t size, uint64_t offset);

/* write of exactly size bytes at the file position. @return 0 or -1/errno. */
int ff_fileio_write_all(int fd, const void *buf, size_t size);

/* fsync. @return 0 or -1 with errno set. */
int ff_fileio_fsync(int fd);

/* Little-endian integers of `bytes` bytes (1..8) in the binary headers. */
static inline void ff_put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t ff_get_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Bytes this process has moved to and from files since it started: every
 * read and write of the primitives above and of the asynchronous queue
 * (aio.c counts its completions here). Safe from any thread. */
void ff_fileio_count(uint64_t read_bytes, uint64_t written_bytes);
void ff_fileio_counters(uint64_t *read_bytes, uint64_t *written_bytes);

/* Disk used by the regular files under dir, four levels deep (st_blocks:
 * what the filesystem allocated); 0 when dir does not exist. */
uint64_t ff_fileio_tree_bytes(const char *dir);

/* Opens an existing file for reading (flags are added to O_RDONLY) and
 * checks it is a regular file before anything can block on it: a FIFO,
 * device or directory is refused with err naming the path and its type.
 * *size, when not NULL, receives the file's length. @return the descriptor,
 * or -1 with err (errno kept: ENOENT for a missing file). */
int ff_fileio_open_regular(const char *path, int flags, uint64_t *size, ff_error_t *err);

/* Reads a whole regular file of at most max_bytes into a NUL-terminated
 * malloc'd buffer (free()). The size is checked before the allocation.
 * @return 0, or -1 with err (errno ENOENT for a missing file). */
int ff_fileio_read_small(const char *path, size_t max_bytes, char **text, size_t *size,
                         ff_error_t *err);

/* Creates path as a new file (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0644)
 * opened with flags (the access mode included: O_WRONLY or O_RDWR). A regular file already at path is removed first
 * (a leftover of a killed run); anything else there (a symlink, a FIFO, a
 * directory) is refused, so a planted link is never written through.
 * @return the descriptor, or -1 with err. */
int ff_fileio_create_new(const char *path, int flags, ff_error_t *err);

/* fsync of the directory holding path (a filesystem that does not sync
 * directories, EINVAL, is not an error). @return 0 or -1 with err. */
int ff_fileio_sync_parent(const char *path, ff_error_t *err);

/* The atomic writer (the rdbSave pattern): data goes to a temporary file
 * beside the target, with an unpredictable name, created O_EXCL |
 * O_NOFOLLOW; commit fsyncs it, renames it over the target (replacing a
 * symlink there, never following it) and fsyncs the directory. Until
 * commit, the old file at path is untouched. */
typedef struct {
    int fd;
    char path[FF_PATH_MAX];
    char tmp[FF_PATH_MAX];
} ff_atomic_t;

/* @return 0 or -1 with err naming the temporary file. */
int ff_atomic_begin(ff_atomic_t *a, const char *path, ff_error_t *err);

/* Appends size bytes. @return 0 or -1 with err (the writer is aborted). */
int ff_atomic_write(ff_atomic_t *a, const void *data, size_t size, ff_error_t *err);

/* fsync, drop the pages, close, rename, fsync the directory. @return 0 or
 * -1 with err naming the operation (the writer is aborted; a failed
 * directory fsync comes after the rename: the new file is in place but may
 * not survive a crash). */
int ff_atomic_commit(ff_atomic_t *a, ff_error_t *err);

/* Closes and removes the temporary file; safe after commit or abort. */
void ff_atomic_abort(ff_atomic_t *a);

/* begin + write + commit of one buffer. @return 0 or -1 with err. */
int ff_fileio_write_atomic(const char *path, const void *data, size_t size, ff_error_t *err);

/* Checks before any work that the atomic writer will be able to write
 * path: not a directory, and its directory exists and takes a new file
 * (one is created and removed). @return 0 or -1 with err naming path. */
int ff_fileio_check_writable(const char *path, ff_error_t *err);

/* Whether name is a temporary file name of ff_atomic_t ("X.tmp.<hex>"). */
int ff_fileio_is_temporary(const char *name);

/* zlib's crc32 of size bytes. */
uint32_t ff_fileio_crc32(const void *data, size_t size);

/* XXH3-64 of size bytes (the fast checksum of activation caches and
 * scores, where crc32 would cost several percent of a run). */
uint64_t ff_fileio_xxh3(const void *data, size_t size);

#endif
