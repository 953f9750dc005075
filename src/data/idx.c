/* idx.c: IDX reader. The header is checked against the file's real content
 * length before anything is allocated from it: the file size for raw files,
 * the decompressed length for gzip files (one pass into a small buffer). */
#include "ffstream/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ffstream/fileio.h"
#include "ffstream/memstat.h"

static uint32_t read_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Checks the 4-byte magic. */
static int check_magic(const uint8_t *m, int expect_ndims, const char *name, ff_error_t *err) {
    if (m[0] != 0 || m[1] != 0)
        return ff_error_set(err,
                            "%s: bad magic %02x%02x%02x%02x, expected an IDX file starting "
                            "00 00 08 0%d",
                            name, m[0], m[1], m[2], m[3], expect_ndims);
    if (m[2] != 0x08)
        return ff_error_set(err, "%s: element type 0x%02x, expected 0x08 (unsigned byte)", name,
                            m[2]);
    if (m[3] != expect_ndims)
        return ff_error_set(err, "%s: %d dimensions, expected %d", name, m[3], expect_ndims);
    return 0;
}

/* Parses the sizes; out->count = their product. */
static int check_dims(ff_idx_t *out, const uint8_t *d, int ndims, const char *name,
                      ff_error_t *err) {
    size_t count = 1;
    for (int i = 0; i < ndims; i++) {
        out->dims[i] = read_be32(d + 4 * i);
        if (out->dims[i] == 0)
            return ff_error_set(err, "%s: dimension %d is 0, expected at least 1", name, i);
        if (ff_mul_size(count, out->dims[i], &count) != 0)
            return ff_error_set(err, "%s: dimension sizes overflow", name);
    }
    out->ndims = ndims;
    out->count = count;
    return 0;
}

/* Bytes of compressed input read from the file at a time. */
#define INPUT_BYTES 65536u

struct ff_idx_reader {
    char path[FF_PATH_MAX];
    int fd;
    int gzip;
    z_stream z;
    int z_ready;       /* inflateInit2 done */
    int z_end;         /* the member's end was reached */
    uint8_t in[INPUT_BYTES];
};

/* Reads up to `want` bytes of content (decompressed for gzip) into dst;
 * *got says how many (0 at the end). A gzip member must end exactly at the
 * end of the file: a second member or trailing bytes are an error.
 * @return 0 or -1 with err. */
static int content_read(ff_idx_reader_t *r, uint8_t *dst, size_t want, size_t *got,
                        ff_error_t *err) {
    *got = 0;
    if (!r->gzip) {
        while (*got < want) {
            ssize_t n = read(r->fd, dst + *got, want - *got);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return ff_error_set(err, "%s: cannot read: %s", r->path, strerror(errno));
            if (n == 0) break;
            *got += (size_t)n;
        }
        return 0;
    }
    r->z.next_out = dst;
    r->z.avail_out = (uInt)want;
    while (r->z.avail_out > 0 && !r->z_end) {
        if (r->z.avail_in == 0) {
            ssize_t n = read(r->fd, r->in, sizeof r->in);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return ff_error_set(err, "%s: cannot read: %s", r->path, strerror(errno));
            if (n == 0)
                return ff_error_set(err, "%s: truncated or corrupt gzip stream: it ends before "
                                    "its end-of-stream marker", r->path);
            r->z.next_in = r->in;
            r->z.avail_in = (uInt)n;
        }
        int zr = inflate(&r->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            r->z_end = 1;
            /* Nothing may follow the member: not in the buffer, not in the file. */
            uint8_t extra;
            ssize_t n = r->z.avail_in > 0 ? 1 : read(r->fd, &extra, 1);
            if (n != 0)
                return ff_error_set(err, "%s: bytes after the gzip member (a second member or "
                                    "trailing garbage), expected one gzip member", r->path);
        } else if (zr != Z_OK) {
            return ff_error_set(err, "%s: corrupt or truncated gzip stream: %s", r->path,
                                r->z.msg != NULL ? r->z.msg : "inflate failed");
        }
    }
    *got = want - r->z.avail_out;
    return 0;
}

/* Back to the first byte of content. @return 0 or -1 with err. */
static int content_rewind(ff_idx_reader_t *r, ff_error_t *err) {
    if (lseek(r->fd, 0, SEEK_SET) != 0)
        return ff_error_set(err, "%s: cannot seek: %s", r->path, strerror(errno));
    if (r->gzip) {
        if (r->z_ready) inflateEnd(&r->z);
        memset(&r->z, 0, sizeof r->z);
        r->z_ready = r->z_end = 0;
        if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) /* gzip wrapper only */
            return ff_error_set(err, "%s: cannot start zlib: out of memory", r->path);
        r->z_ready = 1;
    }
    return 0;
}

/* The whole content length, decompressing gzip into a small buffer. */
static int content_length(ff_idx_reader_t *r, uint64_t *length, ff_error_t *err) {
    if (!r->gzip) {
        struct stat st;
        if (fstat(r->fd, &st) != 0)
            return ff_error_set(err, "%s: cannot stat: %s", r->path, strerror(errno));
        *length = (uint64_t)st.st_size;
        return 0;
    }
    uint8_t buf[INPUT_BYTES];
    size_t got;
    *length = 0;
    do {
        if (content_read(r, buf, sizeof buf, &got, err) != 0) return -1;
        *length += got;
    } while (got > 0);
    return content_rewind(r, err);
}

int ff_idx_open(ff_idx_reader_t **out, ff_idx_t *shape, const char *path, int expect_ndims,
                ff_error_t *err) {
    *out = NULL;
    memset(shape, 0, sizeof *shape);
    if (expect_ndims < 1 || expect_ndims > FF_IDX_MAX_DIMS)
        return ff_error_set(err, "%s: %d dimensions asked, expected 1..%d", path, expect_ndims,
                            FF_IDX_MAX_DIMS);
    ff_idx_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL) return ff_error_set(err, "%s: out of memory", path);
    r->fd = -1;
    if (ff_path_format(r->path, err, "%s", path) != 0) goto fail;
    uint64_t file_bytes;
    r->fd = ff_fileio_open_regular(path, 0, &file_bytes, err);
    if (r->fd < 0) goto fail;
    uint8_t magic[2] = {0, 0};
    r->gzip = file_bytes >= 2 && ff_fileio_read_exact(r->fd, magic, 2, 0) == 0 &&
              magic[0] == 0x1f && magic[1] == 0x8b;
    uint64_t length;
    if (content_rewind(r, err) != 0 || content_length(r, &length, err) != 0) goto fail;
    uint8_t header[4 + 4 * FF_IDX_MAX_DIMS];
    size_t got;
    if (content_read(r, header, 4, &got, err) != 0) goto fail;
    if (got < 4) {
        ff_error_set(err, "%s: file is %zu bytes, expected at least a 4-byte IDX header", path,
                     got);
        goto fail;
    }
    if (check_magic(header, expect_ndims, path, err) != 0) goto fail;
    size_t header_bytes = 4 + 4 * (size_t)expect_ndims;
    if (content_read(r, header + 4, header_bytes - 4, &got, err) != 0) goto fail;
    if (got < header_bytes - 4) {
        ff_error_set(err, "%s: truncated header: %zu bytes, expected %zu", path, 4 + got,
                     header_bytes);
        goto fail;
    }
    if (check_dims(shape, header + 4, expect_ndims, path, err) != 0) goto fail;
    uint64_t want = header_bytes + (uint64_t)shape->count;
    if (length != want) {
        ff_error_set(err, "%s: %s: the header promises %zu data bytes, the %s has %llu", path,
                     length < want ? "truncated" : "trailing bytes", shape->count,
                     r->gzip ? "decompressed stream" : "file",
                     (unsigned long long)(length - header_bytes));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    ff_idx_close(r);
    memset(shape, 0, sizeof *shape);
    return -1;
}

int ff_idx_reader_read(ff_idx_reader_t *r, void *dst, size_t bytes, ff_error_t *err) {
    size_t got;
    if (content_read(r, dst, bytes, &got, err) != 0) return -1;
    if (got != bytes)
        return ff_error_set(err, "%s: changed while being read (%zu of %zu bytes)", r->path, got,
                            bytes);
    return 0;
}

void ff_idx_close(ff_idx_reader_t *r) {
    if (r == NULL) return;
    if (r->z_ready) inflateEnd(&r->z);
    if (r->fd >= 0) {
        /* The file is read once: keep its pages out of the page cache. */
        posix_fadvise(r->fd, 0, 0, POSIX_FADV_DONTNEED);
        close(r->fd);
    }
    free(r);
}

int ff_idx_read(ff_idx_t *out, const char *path, int expect_ndims, ff_error_t *err) {
    ff_idx_reader_t *r;
    if (ff_idx_open(&r, out, path, expect_ndims, err) != 0) return -1;
    int rc = -1;
    out->data = ff_mem_alloc(FF_MEM_DATASET, out->count);
    if (out->data == NULL)
        ff_error_set(err, "%s: out of memory for %zu bytes", path, out->count);
    else
        rc = ff_idx_reader_read(r, out->data, out->count, err);
    ff_idx_close(r);
    if (rc != 0) ff_idx_free(out);
    return rc;
}

void ff_idx_free(ff_idx_t *idx) {
    if (idx == NULL) return;
    ff_mem_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
