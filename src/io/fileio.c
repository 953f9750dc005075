/* fileio.c: exact reads and writes, regular-file opens, exclusive creation,
 * the atomic writer, checksums. */
#include "ffstream/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "ffstream/hook.h"

/* One syscall or zlib call moves at most this much. */
#define IO_CHUNK (1u << 30)

int ff_path_format(char *out, ff_error_t *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, FF_PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= FF_PATH_MAX) {
        out[0] = '\0';
        return ff_error_set(err, "a path is longer than %d bytes (the limit of ffstream's paths)",
                            FF_PATH_MAX - 1);
    }
    return 0;
}

static _Atomic uint64_t bytes_in, bytes_out;

void ff_fileio_count(uint64_t read_bytes, uint64_t written_bytes) {
    if (read_bytes) atomic_fetch_add_explicit(&bytes_in, read_bytes, memory_order_relaxed);
    if (written_bytes) atomic_fetch_add_explicit(&bytes_out, written_bytes, memory_order_relaxed);
}

void ff_fileio_counters(uint64_t *read_bytes, uint64_t *written_bytes) {
    *read_bytes = atomic_load_explicit(&bytes_in, memory_order_relaxed);
    *written_bytes = atomic_load_explicit(&bytes_out, memory_order_relaxed);
}

int ff_fileio_read_exact(int fd, void *buf, size_t size, uint64_t offset) {
    ff_fileio_count(size, 0);
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

/* Writes exactly size bytes at offset (pwrite), or at the file position
 * when offset < 0 (write), retried on short writes and EINTR; the one place
 * a test build can fail a synchronous write. */
static int write_exact(int fd, const void *buf, size_t size, int64_t offset) {
    int injected = ff_hook_fault(FF_HOOK_WRITE);
    if (injected != 0) {
        errno = injected;
        return -1;
    }
    ff_fileio_count(0, size);
    const uint8_t *p = buf;
    while (size > 0) {
        const size_t want = size > IO_CHUNK ? IO_CHUNK : size;
        ssize_t n = offset >= 0 ? pwrite(fd, p, want, (off_t)offset) : write(fd, p, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += n;
        size -= (size_t)n;
        if (offset >= 0) offset += n;
    }
    return 0;
}

int ff_fileio_pwrite(int fd, const void *buf, size_t size, uint64_t offset) {
    return write_exact(fd, buf, size, (int64_t)offset);
}

int ff_fileio_write_all(int fd, const void *buf, size_t size) {
    return write_exact(fd, buf, size, -1);
}

int ff_fileio_fsync(int fd) {
    int injected = ff_hook_fault(FF_HOOK_FSYNC);
    if (injected != 0) {
        errno = injected;
        return -1;
    }
    return fsync(fd);
}

static const char *file_type_name(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

int ff_fileio_open_regular(const char *path, int flags, uint64_t *size, ff_error_t *err) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer forever; it is cleared again once the type is known. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | flags);
    if (fd < 0) {
        int e = errno;
        ff_error_set(err, "%s: cannot open: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        ff_error_set(err, "%s: cannot stat: %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        ff_error_set(err, "%s: is %s, expected a regular file", path, file_type_name(st.st_mode));
        errno = EINVAL;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size != NULL) *size = (uint64_t)st.st_size;
    return fd;
}

int ff_fileio_read_small(const char *path, size_t max_bytes, char **text, size_t *size,
                         ff_error_t *err) {
    *text = NULL;
    if (size != NULL) *size = 0;
    uint64_t bytes;
    int fd = ff_fileio_open_regular(path, 0, &bytes, err);
    if (fd < 0) return -1;
    if (bytes > max_bytes) {
        close(fd);
        errno = EFBIG;
        return ff_error_set(err, "%s: %llu bytes, expected at most %zu", path,
                            (unsigned long long)bytes, max_bytes);
    }
    char *buf = malloc((size_t)bytes + 1);
    if (buf == NULL) {
        close(fd);
        errno = ENOMEM;
        return ff_error_set(err, "%s: out of memory for %llu bytes", path,
                            (unsigned long long)bytes);
    }
    if (ff_fileio_read_exact(fd, buf, (size_t)bytes, 0) != 0) {
        int e = errno;
        free(buf);
        close(fd);
        errno = e != 0 ? e : EIO;
        if (e == 0) return ff_error_set(err, "%s: shrank while being read", path);
        return ff_error_set(err, "%s: cannot read: %s", path, strerror(e));
    }
    close(fd);
    buf[bytes] = '\0';
    *text = buf;
    if (size != NULL) *size = (size_t)bytes;
    return 0;
}

int ff_fileio_create_new(const char *path, int flags, ff_error_t *err) {
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return ff_error_set(err, "%s: is %s; refusing to write there (expected a regular file "
                                "or nothing)", path, file_type_name(st.st_mode));
        if (unlink(path) != 0 && errno != ENOENT)
            return ff_error_set(err, "%s: cannot remove the old file: %s", path, strerror(errno));
    }
    int fd = open(path, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | flags, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == EEXIST)
            return ff_error_set(err, "%s: appeared while being created (something else writes "
                                "there); refusing to write through it", path);
        return ff_error_set(err, "%s: cannot create: %s", path, strerror(e));
    }
    return fd;
}

int ff_fileio_sync_parent(const char *path, ff_error_t *err) {
    char dir[FF_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    const char *name = dirname(dir);
    int dfd = open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return ff_error_set(err, "%s: cannot open the directory: %s", name, strerror(errno));
    int rc = ff_fileio_fsync(dfd);
    int e = errno;
    close(dfd);
    /* Some filesystems do not sync directories at all (EINVAL): nothing to
     * wait for there. A failed sync is an error: the rename may be lost. */
    if (rc != 0 && e != EINVAL && e != ENOTSUP && e != EROFS)
        return ff_error_set(err, "%s: fsync of the directory failed: %s", name, strerror(e));
    return 0;
}

int ff_atomic_begin(ff_atomic_t *a, const char *path, ff_error_t *err) {
    a->fd = -1;
    a->tmp[0] = '\0';
    if (ff_path_format(a->path, err, "%s", path) != 0) return -1;
    /* An unpredictable name, created exclusively: nothing planted beside the
     * target can be written through. */
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL + (uint64_t)attempt;
        if (ff_path_format(a->tmp, err, "%s.tmp.%016llx", path, (unsigned long long)r) != 0)
            return ff_error_wrap(err, "%s", path);
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (a->fd >= 0) return 0;
        if (errno != EEXIST) break;
    }
    int e = errno;
    ff_error_set(err, "%s: cannot create: %s", a->tmp, strerror(e));
    a->tmp[0] = '\0';
    return -1;
}

int ff_atomic_write(ff_atomic_t *a, const void *data, size_t size, ff_error_t *err) {
    if (ff_fileio_write_all(a->fd, data, size) != 0) {
        int e = errno;
        ff_error_set(err, "%s: write failed: %s", a->tmp, strerror(e));
        ff_atomic_abort(a);
        return -1;
    }
    return 0;
}

int ff_atomic_commit(ff_atomic_t *a, ff_error_t *err) {
    if (ff_fileio_fsync(a->fd) != 0) {
        ff_error_set(err, "%s: fsync failed: %s", a->tmp, strerror(errno));
        ff_atomic_abort(a);
        return -1;
    }
    /* On disk now: drop the pages so a memory cgroup does not count the
     * file twice (once in the writer, once in the page cache). */
    posix_fadvise(a->fd, 0, 0, POSIX_FADV_DONTNEED);
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0) {
        ff_error_set(err, "%s: close failed: %s", a->tmp, strerror(errno));
        ff_atomic_abort(a);
        return -1;
    }
    if (rename(a->tmp, a->path) != 0) {
        ff_error_set(err, "%s: rename from %s failed: %s", a->path, a->tmp, strerror(errno));
        ff_atomic_abort(a);
        return -1;
    }
    a->tmp[0] = '\0';
    return ff_fileio_sync_parent(a->path, err);
}

void ff_atomic_abort(ff_atomic_t *a) {
    if (a->fd >= 0) close(a->fd);
    a->fd = -1;
    if (a->tmp[0] != '\0') unlink(a->tmp);
    a->tmp[0] = '\0';
}

int ff_fileio_write_atomic(const char *path, const void *data, size_t size, ff_error_t *err) {
    ff_atomic_t a;
    if (ff_atomic_begin(&a, path, err) != 0) return -1;
    if (ff_atomic_write(&a, data, size, err) != 0) return -1;
    return ff_atomic_commit(&a, err);
}

int ff_fileio_check_writable(const char *path, ff_error_t *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return ff_error_set(err, "%s: is a directory, expected a file name", path);
    ff_atomic_t a;
    if (ff_atomic_begin(&a, path, err) != 0) return -1;
    ff_atomic_abort(&a);
    return 0;
}

int ff_fileio_is_temporary(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (t == NULL) return 0;
    t += 5;
    size_t n = strspn(t, "0123456789abcdef");
    return n == 16 && t[n] == '\0';
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

uint64_t ff_fileio_xxh3(const void *data, size_t size) { return XXH3_64bits(data, size); }

/* Bytes of the regular files under dir (0 when it does not exist). */
static uint64_t tree_bytes(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (d == NULL || depth > 4) {
        if (d != NULL) closedir(d);
        return 0;
    }
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[FF_PATH_MAX];
        struct stat st;
        if (ff_path_format(path, NULL, "%s/%s", dir, e->d_name) != 0 || lstat(path, &st) != 0)
            continue;
        if (S_ISREG(st.st_mode)) total += (uint64_t)st.st_blocks * 512;
        else if (S_ISDIR(st.st_mode)) total += tree_bytes(path, depth + 1);
    }
    closedir(d);
    return total;
}

uint64_t ff_fileio_tree_bytes(const char *dir) { return tree_bytes(dir, 0); }
