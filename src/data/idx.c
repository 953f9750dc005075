/* idx.c: IDX reader. The header is read and checked against the file's real
 * length before the data buffer is allocated: the file size for raw files,
 * the gzip trailer's ISIZE (uncompressed length mod 2^32) for .gz files. */
#include "ffstream/idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

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

/* Real length of the uncompressed content: file size, or gzip ISIZE. */
static int content_length(const char *path, int *is_gzip, uint64_t *length, ff_error_t *err) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    int rc = -1;
    struct stat st;
    uint8_t m[4];
    if (fstat(fileno(f), &st) != 0) {
        ff_error_set(err, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    *is_gzip = st.st_size >= 2 && fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    if (!*is_gzip) {
        *length = (uint64_t)st.st_size;
        rc = 0;
        goto done;
    }
    if (st.st_size < 18 || fseek(f, -4, SEEK_END) != 0 || fread(m, 1, 4, f) != 4) {
        ff_error_set(err, "%s: truncated gzip file (%lld bytes)", path, (long long)st.st_size);
        goto done;
    }
    *length = (uint64_t)m[0] | ((uint64_t)m[1] << 8) | ((uint64_t)m[2] << 16) |
              ((uint64_t)m[3] << 24);
    rc = 0;
done:
    fclose(f);
    return rc;
}

/* Reads exactly size bytes; @return bytes read, or -1 on a zlib error. */
static long long read_full(gzFile gz, uint8_t *buf, size_t size) {
    size_t done = 0;
    while (done < size) {
        size_t want = size - done > (1u << 30) ? (1u << 30) : size - done;
        int n = gzread(gz, buf + done, (unsigned)want);
        if (n < 0) return -1;
        if (n == 0) break;
        done += (size_t)n;
    }
    return (long long)done;
}

int ff_idx_read(ff_idx_t *out, const char *path, int expect_ndims, ff_error_t *err) {
    memset(out, 0, sizeof *out);
    if (expect_ndims < 1 || expect_ndims > FF_IDX_MAX_DIMS)
        return ff_error_set(err, "%s: %d dimensions asked, expected 1..%d", path, expect_ndims,
                            FF_IDX_MAX_DIMS);
    int is_gzip = 0;
    uint64_t length = 0;
    if (content_length(path, &is_gzip, &length, err) != 0) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    gzFile gz = gzdopen(fd, "rb"); /* owns fd from here */
    if (gz == NULL) {
        close(fd);
        return ff_error_set(err, "%s: cannot open: out of memory", path);
    }
    int rc = -1;
    uint8_t header[4 + 4 * FF_IDX_MAX_DIMS];
    long long n = read_full(gz, header, 4);
    if (n < 0) goto zerror;
    if (n < 4) {
        ff_error_set(err, "%s: file is %lld bytes, expected at least a 4-byte IDX header", path, n);
        goto cleanup;
    }
    if (check_magic(header, expect_ndims, path, err) != 0) goto cleanup;
    size_t header_bytes = 4 + 4 * (size_t)expect_ndims;
    n = read_full(gz, header + 4, header_bytes - 4);
    if (n < 0) goto zerror;
    if ((size_t)n < header_bytes - 4) {
        ff_error_set(err, "%s: truncated header: %zu bytes, expected %zu", path, 4 + (size_t)n,
                     header_bytes);
        goto cleanup;
    }
    if (check_dims(out, header + 4, expect_ndims, path, err) != 0) goto cleanup;
    uint64_t want = header_bytes + (uint64_t)out->count;
    if (!is_gzip && length != want) {
        ff_error_set(err, "%s: %s: header promises %zu data bytes, file has %llu", path,
                     length < want ? "truncated" : "trailing bytes", out->count,
                     (unsigned long long)(length - header_bytes));
        goto cleanup;
    }
    if (is_gzip && length != (want & 0xffffffffu)) {
        ff_error_set(err,
                     "%s: truncated or corrupt: header promises %zu data bytes but the gzip "
                     "trailer gives an uncompressed size of %llu bytes",
                     path, out->count, (unsigned long long)length);
        goto cleanup;
    }
    out->data = ff_mem_alloc(FF_MEM_DATASET, out->count);
    if (out->data == NULL) {
        ff_error_set(err, "%s: out of memory for %zu bytes", path, out->count);
        goto cleanup;
    }
    n = read_full(gz, out->data, out->count);
    if (n < 0) goto zerror;
    if ((size_t)n < out->count) {
        ff_error_set(err, "%s: truncated: header promises %zu data bytes, file has %lld", path,
                     out->count, n);
        goto cleanup;
    }
    uint8_t extra;
    n = read_full(gz, &extra, 1);
    if (n < 0) goto zerror;
    if (n > 0) {
        ff_error_set(err, "%s: trailing bytes after the %zu data bytes the header promises", path,
                     out->count);
        goto cleanup;
    }
    rc = 0;
    goto cleanup;
zerror: {
    int zerr = 0;
    const char *msg = gzerror(gz, &zerr);
    ff_error_set(err, "%s: corrupt or truncated file: %s", path,
                 zerr == Z_ERRNO ? strerror(errno) : msg);
}
cleanup:
    /* The file is read once: keep its pages out of the page cache. */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (gzclose(gz) != Z_OK && rc == 0)
        rc = ff_error_set(err, "%s: corrupt or truncated gzip stream", path);
    if (rc != 0) ff_idx_free(out);
    return rc;
}

void ff_idx_free(ff_idx_t *idx) {
    if (idx == NULL) return;
    ff_mem_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
