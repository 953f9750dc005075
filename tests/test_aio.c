/* test_aio: the asynchronous I/O queue, run with each backend (io_uring only
 * where the kernel allows it): scattered writes and shuffled reads of an
 * 8 MiB file checked against the source and read(2), more requests than the
 * depth, waiting for one tag, end of file, a bad fd, an empty queue, stats,
 * draining on destroy, O_DIRECT where the filesystem takes it, and children
 * under seccomp filters where io_uring fails and AUTO must fall back. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "testutil.h"
#include "ffstream/aio.h"
#include "ffstream/rng.h"

#define FILE_BYTES ((size_t)8 << 20)
#define PIECE_MIN ((size_t)64 << 10)
#define PIECE_MAX ((size_t)1 << 20)
#define MAX_PIECES (FILE_BYTES / PIECE_MIN + 1)

static char dir[FF_PATH_MAX];
static uint8_t *source; /* FILE_BYTES pseudo-random bytes */

typedef struct {
    size_t offset, len;
} piece_t;

static void path_in_dir(char *path, size_t size, const char *name) {
    snprintf(path, size, "%s/%s", dir, name);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads a whole file with plain read(2). @return bytes read, or -1. */
static long long read_plain(const char *path, uint8_t *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, buf + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (size_t)n;
    }
    close(fd);
    return (long long)done;
}

static void write_plain(const char *path, const uint8_t *buf, size_t size) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(write(fd, buf, size) == (ssize_t)size);
    close(fd);
}

/* Cuts the file into pieces of PIECE_MIN..PIECE_MAX bytes (the last may be
 * shorter). @return the number of pieces. */
static size_t make_pieces(piece_t *pieces, ff_rng_t *rng) {
    size_t n = 0, offset = 0;
    while (offset < FILE_BYTES) {
        size_t len = PIECE_MIN + ff_rng_below(rng, (uint32_t)(PIECE_MAX - PIECE_MIN + 1));
        if (len > FILE_BYTES - offset) len = FILE_BYTES - offset;
        pieces[n++] = (piece_t){.offset = offset, .len = len};
        offset += len;
    }
    return n;
}

/* Collects count completions with ff_aio_wait; each tag below count must
 * come exactly once with result expect[tag]. */
static void collect_all(ff_aio_t *aio, size_t count, const int64_t *expect) {
    uint8_t seen[MAX_PIECES] = {0};
    for (size_t i = 0; i < count; i++) {
        uint64_t tag = UINT64_MAX;
        int64_t result = 0;
        ff_error_t err = {{0}};
        CHECKF(ff_aio_wait(aio, &tag, &result, &err) == 0, "%s", err.msg);
        CHECKF(tag < count, "tag %llu", (unsigned long long)tag);
        if (tag >= count) continue;
        CHECKF(!seen[tag], "tag %llu completed twice", (unsigned long long)tag);
        seen[tag] = 1;
        CHECKF(result == expect[tag], "tag %llu: result %lld, expected %lld",
               (unsigned long long)tag, (long long)result, (long long)expect[tag]);
    }
    CHECK(ff_aio_pending(aio) == 0);
}

/* Writes the source through the queue in pieces at scattered offsets, reads
 * it back in another order, and compares with the source and read(2). */
static void test_round_trip(ff_aio_backend_t backend, const char *name) {
    static piece_t pieces[MAX_PIECES];
    static uint32_t order[MAX_PIECES];
    static int64_t expect[MAX_PIECES];
    char path[512];
    path_in_dir(path, sizeof path, name);
    uint8_t *back = calloc(FILE_BYTES, 1);
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(back != NULL && fd >= 0);
    CHECKF(ff_aio_create(&aio, backend, 4, &err) == 0, "%s", err.msg);
    if (back == NULL || fd < 0 || aio == NULL) goto cleanup;
    CHECK(ff_aio_backend(aio) == backend);

    ff_rng_t rng;
    ff_rng_init(&rng, 42, 100, 0, 0);
    const size_t count = make_pieces(pieces, &rng);
    for (size_t i = 0; i < count; i++) expect[i] = (int64_t)pieces[i].len;
    ff_rng_permutation(&rng, order, count);
    for (size_t i = 0; i < count; i++) {
        const piece_t *p = &pieces[order[i]];
        CHECKF(ff_aio_write(aio, fd, source + p->offset, p->len, p->offset, order[i], &err) == 0,
               "%s", err.msg);
        CHECK(ff_aio_pending(aio) == i + 1); /* in flight or kept, never lost */
    }
    collect_all(aio, count, expect);

    ff_rng_permutation(&rng, order, count);
    for (size_t i = 0; i < count; i++) {
        const piece_t *p = &pieces[order[i]];
        CHECKF(ff_aio_read(aio, fd, back + p->offset, p->len, p->offset, order[i], &err) == 0, "%s",
               err.msg);
    }
    collect_all(aio, count, expect);
    CHECK(memcmp(back, source, FILE_BYTES) == 0);

    memset(back, 0, FILE_BYTES);
    CHECK(read_plain(path, back, FILE_BYTES) == (long long)FILE_BYTES);
    CHECK(memcmp(back, source, FILE_BYTES) == 0);

    ff_aio_stats_t stats;
    ff_aio_stats(aio, &stats);
    CHECK(stats.bytes_written == FILE_BYTES && stats.bytes_read == FILE_BYTES);
    CHECK(stats.writes == count && stats.reads == count);
    CHECK(stats.wait_seconds >= 0.0 && stats.wait_seconds < 60.0);
    printf("  %s: %zu pieces of 64 KiB..1 MiB written and read back, depth 4, "
           "%.3f s waiting\n",
           ff_aio_backend_name(backend), count, stats.wait_seconds);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
    free(back);
}

/* depth 2 and 16 requests: submissions block and keep early completions. */
static void test_more_than_depth(ff_aio_backend_t backend, const char *file) {
    enum { COUNT = 16, LEN = 100000 };
    static int64_t expect[COUNT];
    uint8_t *bufs = calloc(COUNT, LEN);
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int fd = open(file, O_RDONLY);
    CHECK(bufs != NULL && fd >= 0);
    CHECKF(ff_aio_create(&aio, backend, 2, &err) == 0, "%s", err.msg);
    if (bufs == NULL || fd < 0 || aio == NULL) goto cleanup;
    for (size_t i = 0; i < COUNT; i++) {
        expect[i] = LEN;
        /* Overlapping, out-of-order offsets: each request stands alone. */
        const uint64_t offset = (uint64_t)((COUNT - 1 - i) * 37000);
        CHECKF(ff_aio_read(aio, fd, bufs + i * LEN, LEN, offset, i, &err) == 0, "%s", err.msg);
    }
    CHECK(ff_aio_pending(aio) == COUNT);
    collect_all(aio, COUNT, expect);
    for (size_t i = 0; i < COUNT; i++)
        CHECKF(memcmp(bufs + i * LEN, source + (COUNT - 1 - i) * 37000, LEN) == 0, "request %zu",
               i);
    ff_aio_stats_t stats;
    ff_aio_stats(aio, &stats);
    CHECK(stats.reads == COUNT && stats.bytes_read == (uint64_t)COUNT * LEN);
    CHECK(stats.writes == 0 && stats.bytes_written == 0);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
    free(bufs);
}

/* ff_aio_wait_tag takes its request; the others wait for later calls. */
static void test_wait_tag(ff_aio_backend_t backend, const char *file) {
    enum { COUNT = 4, LEN = 1 << 20 };
    uint8_t *bufs = calloc(COUNT, LEN);
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int fd = open(file, O_RDONLY);
    CHECK(bufs != NULL && fd >= 0);
    CHECKF(ff_aio_create(&aio, backend, COUNT, &err) == 0, "%s", err.msg);
    if (bufs == NULL || fd < 0 || aio == NULL) goto cleanup;
    for (int round = 0; round < 2; round++) {
        /* Round 0 waits for the last request, so the others are likely
         * stashed first; round 1 for the first. */
        const uint64_t want = round == 0 ? 13 : 10;
        for (size_t i = 0; i < COUNT; i++)
            CHECKF(ff_aio_read(aio, fd, bufs + i * LEN, LEN, i * (size_t)LEN, 10 + i, &err) == 0,
                   "%s", err.msg);
        int64_t result = 0;
        CHECKF(ff_aio_wait_tag(aio, want, &result, &err) == 0, "%s", err.msg);
        CHECK(result == LEN);
        CHECK(memcmp(bufs + (want - 10) * LEN, source + (want - 10) * LEN, LEN) == 0);
        CHECK(ff_aio_pending(aio) == COUNT - 1);
        CHECK(ff_aio_wait_tag(aio, want, &result, &err) == -1); /* already collected */
        CHECK_CONTAINS(err.msg, "no request with tag");
        unsigned seen = 0;
        for (size_t i = 0; i + 1 < COUNT; i++) {
            uint64_t tag = 0;
            CHECKF(ff_aio_wait(aio, &tag, &result, &err) == 0, "%s", err.msg);
            CHECKF(tag >= 10 && tag < 10 + COUNT && tag != want, "tag %llu",
                   (unsigned long long)tag);
            CHECK(result == LEN);
            if (tag >= 10 && tag < 10 + COUNT) seen |= 1u << (tag - 10);
        }
        CHECK(seen == (0xfu & ~(1u << (want - 10))));
        CHECK(memcmp(bufs, source, (size_t)COUNT * LEN) == 0);
        memset(bufs, 0, (size_t)COUNT * LEN);
    }
    /* With depth 1, the second and third ff_aio_read each wait for the
     * request before them and keep its completion: tags 20 and 21 must be
     * found among the kept ones, 22 in flight. */
    ff_aio_destroy(aio);
    aio = NULL;
    CHECKF(ff_aio_create(&aio, backend, 1, &err) == 0, "%s", err.msg);
    if (aio == NULL) goto cleanup;
    for (size_t i = 0; i < 3; i++)
        CHECK(ff_aio_read(aio, fd, bufs + i * LEN, LEN, i * (size_t)LEN, 20 + i, &err) == 0);
    CHECK(ff_aio_pending(aio) == 3);
    const uint64_t kept_order[3] = {21, 20, 22};
    for (size_t i = 0; i < 3; i++) {
        int64_t result = 0;
        CHECKF(ff_aio_wait_tag(aio, kept_order[i], &result, &err) == 0, "%s", err.msg);
        CHECK(result == LEN);
    }
    CHECK(ff_aio_pending(aio) == 0);
    CHECK(memcmp(bufs, source, 3 * (size_t)LEN) == 0);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
    free(bufs);
}

/* End of file, a closed fd, a read-only fd, an empty queue. */
static void test_edges(ff_aio_backend_t backend) {
    enum { SHORT_FILE = 10000 };
    char path[512];
    path_in_dir(path, sizeof path, "short");
    write_plain(path, source, SHORT_FILE);
    uint8_t buf[16384] = {0};
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int64_t result = 0;
    uint64_t tag = 0;
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECKF(ff_aio_create(&aio, backend, 4, &err) == 0, "%s", err.msg);
    if (fd < 0 || aio == NULL) goto cleanup;

    CHECK(ff_aio_read(aio, fd, buf, 8192, 4096, 1, &err) == 0);
    CHECK(ff_aio_wait_tag(aio, 1, &result, &err) == 0);
    CHECKF(result == SHORT_FILE - 4096, "read across end of file gave %lld", (long long)result);
    CHECK(memcmp(buf, source + 4096, SHORT_FILE - 4096) == 0);
    CHECK(ff_aio_read(aio, fd, buf, 100, 20000, 2, &err) == 0);
    CHECK(ff_aio_wait_tag(aio, 2, &result, &err) == 0 && result == 0);
    CHECK(ff_aio_read(aio, fd, buf, 0, 0, 3, &err) == 0); /* empty request */
    CHECK(ff_aio_wait_tag(aio, 3, &result, &err) == 0 && result == 0);
    CHECK(ff_aio_write(aio, fd, buf, 100, 0, 4, &err) == 0); /* fd is read-only */
    CHECK(ff_aio_wait_tag(aio, 4, &result, &err) == 0);
    CHECKF(result == -EBADF, "write to a read-only fd gave %lld", (long long)result);

    int closed = open(path, O_RDONLY);
    CHECK(closed >= 0);
    close(closed);
    CHECK(ff_aio_read(aio, closed, buf, 100, 0, 5, &err) == 0);
    CHECK(ff_aio_wait(aio, &tag, &result, &err) == 0);
    CHECK(tag == 5);
    CHECKF(result == -EBADF, "read on a closed fd gave %lld", (long long)result);

    const double start = now_seconds();
    CHECK(ff_aio_wait(aio, &tag, &result, &err) == -1);
    CHECK_CONTAINS(err.msg, "no request in flight");
    CHECK(ff_aio_wait_tag(aio, 77, &result, &err) == -1);
    CHECK_CONTAINS(err.msg, "tag 77");
    CHECK(now_seconds() - start < 1.0);
    CHECK(ff_aio_read(aio, fd, buf, 100, UINT64_MAX - 10, 6, &err) == -1);
    CHECK_CONTAINS(err.msg, "offset");
    CHECK(ff_aio_pending(aio) == 0);

    ff_aio_stats_t stats;
    ff_aio_stats(aio, &stats);
    CHECK(stats.reads == 4 && stats.writes == 1);
    CHECK(stats.bytes_read == SHORT_FILE - 4096 && stats.bytes_written == 0);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
}

/* A short read that is not end of file: a pipe holding 1000 of the 3000
 * bytes asked. io_uring must resubmit the remaining 2000 bytes (a pipe
 * ignores offsets); pread cannot read a pipe at all and must say ESPIPE. */
static void test_short_read(ff_aio_backend_t backend) {
    uint8_t buf[3000] = {0};
    int pipe_fds[2] = {-1, -1};
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int64_t result = 0;
    CHECK(pipe(pipe_fds) == 0);
    CHECKF(ff_aio_create(&aio, backend, 2, &err) == 0, "%s", err.msg);
    if (pipe_fds[0] < 0 || aio == NULL) goto cleanup;
    CHECK(write(pipe_fds[1], source, 1000) == 1000);
    CHECK(ff_aio_read(aio, pipe_fds[0], buf, sizeof buf, 0, 1, &err) == 0);
    CHECK(write(pipe_fds[1], source + 1000, 2000) == 2000);
    CHECK(ff_aio_wait_tag(aio, 1, &result, &err) == 0);
    if (backend == FF_AIO_URING) {
        CHECKF(result == (int64_t)sizeof buf, "short pipe read gave %lld", (long long)result);
        CHECK(memcmp(buf, source, sizeof buf) == 0);
        /* An empty O_NONBLOCK pipe: older kernels answer -EAGAIN, which
         * must be resubmitted until the data written meanwhile arrives;
         * newer ones (6.x) wait for the data themselves. */
        CHECK(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK) == 0);
        memset(buf, 0, sizeof buf);
        CHECK(ff_aio_read(aio, pipe_fds[0], buf, 100, 0, 2, &err) == 0);
        CHECK(write(pipe_fds[1], source, 100) == 100);
        CHECK(ff_aio_wait_tag(aio, 2, &result, &err) == 0);
        CHECKF(result == 100, "read after -EAGAIN gave %lld", (long long)result);
        CHECK(memcmp(buf, source, 100) == 0);
    } else {
        CHECKF(result == -ESPIPE, "pread on a pipe gave %lld", (long long)result);
    }
cleanup:
    ff_aio_destroy(aio);
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    if (pipe_fds[1] >= 0) close(pipe_fds[1]);
}

/* Destroy waits for requests nobody collected: the buffers are complete.
 * The file is opened with O_DIRECT when possible, so the reads go to the
 * disk and are still in flight when destroy is called, not served inline
 * from the page cache. */
static void test_destroy_drains(ff_aio_backend_t backend, const char *file) {
    enum { COUNT = 8, LEN = 1 << 20 };
    void *bufs = NULL;
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int fd = open(file, O_RDONLY | O_DIRECT);
    if (fd < 0) fd = open(file, O_RDONLY);
    CHECK(posix_memalign(&bufs, 4096, (size_t)COUNT * LEN) == 0 && fd >= 0);
    CHECKF(ff_aio_create(&aio, backend, 3, &err) == 0, "%s", err.msg);
    if (bufs == NULL || fd < 0 || aio == NULL) goto cleanup;
    memset(bufs, 0, (size_t)COUNT * LEN);
    for (size_t i = 0; i < COUNT; i++)
        CHECK(ff_aio_read(aio, fd, (uint8_t *)bufs + i * LEN, LEN, i * (size_t)LEN, i, &err) == 0);
    ff_aio_destroy(aio);
    aio = NULL;
    CHECK(memcmp(bufs, source, (size_t)COUNT * LEN) == 0);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
    free(bufs);
}

/* One aligned write and read with O_DIRECT, when the filesystem allows it. */
static void test_direct(ff_aio_backend_t backend) {
    enum { LEN = 1 << 20 };
    char path[512];
    path_in_dir(path, sizeof path, "direct");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_DIRECT, 0644);
    if (fd < 0) {
        printf("  %s: O_DIRECT skipped: open: %s\n", ff_aio_backend_name(backend), strerror(errno));
        return;
    }
    void *out = NULL, *in = NULL;
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int64_t result = 0;
    CHECK(posix_memalign(&out, 4096, LEN) == 0 && posix_memalign(&in, 4096, LEN) == 0);
    CHECKF(ff_aio_create(&aio, backend, 2, &err) == 0, "%s", err.msg);
    if (out == NULL || in == NULL || aio == NULL) goto cleanup;
    memcpy(out, source + 12345, LEN);
    memset(in, 0, LEN);
    CHECKF(ff_aio_write(aio, fd, out, LEN / 2, LEN / 2, 1, &err) == 0, "%s", err.msg);
    CHECKF(ff_aio_write(aio, fd, out, LEN / 2, 0, 2, &err) == 0, "%s", err.msg);
    CHECK(ff_aio_wait_tag(aio, 1, &result, &err) == 0 && result == LEN / 2);
    CHECK(ff_aio_wait_tag(aio, 2, &result, &err) == 0 && result == LEN / 2);
    CHECKF(ff_aio_read(aio, fd, in, LEN, 0, 3, &err) == 0, "%s", err.msg);
    CHECK(ff_aio_wait_tag(aio, 3, &result, &err) == 0);
    CHECKF(result == LEN, "O_DIRECT read gave %lld", (long long)result);
    CHECK(memcmp(in, out, LEN / 2) == 0 && memcmp((uint8_t *)in + LEN / 2, out, LEN / 2) == 0);
    printf("  %s: O_DIRECT aligned round trip of %d bytes ok\n", ff_aio_backend_name(backend), LEN);
cleanup:
    ff_aio_destroy(aio);
    close(fd);
    free(in);
    free(out);
}

static void test_names_and_arguments(void) {
    ff_aio_backend_t b = FF_AIO_PREAD;
    CHECK(ff_aio_parse_backend("auto", &b) == 0 && b == FF_AIO_AUTO);
    CHECK(ff_aio_parse_backend("uring", &b) == 0 && b == FF_AIO_URING);
    CHECK(ff_aio_parse_backend("pread", &b) == 0 && b == FF_AIO_PREAD);
    CHECK(ff_aio_parse_backend("io_uring", &b) == -1 && b == FF_AIO_PREAD);
    CHECK(ff_aio_parse_backend("", &b) == -1);
    CHECK(strcmp(ff_aio_backend_name(FF_AIO_URING), "uring") == 0);
    CHECK(strcmp(ff_aio_backend_name(FF_AIO_AUTO), "auto") == 0);
    ff_aio_t *aio = (ff_aio_t *)&b;
    ff_error_t err = {{0}};
    CHECK(ff_aio_create(&aio, FF_AIO_PREAD, 0, &err) == -1 && aio == NULL);
    CHECK_CONTAINS(err.msg, "depth 0");
    CHECK(ff_aio_create(&aio, FF_AIO_AUTO, 1u << 20, &err) == -1);
    CHECK(ff_aio_create(&aio, (ff_aio_backend_t)7, 4, &err) == -1);
    CHECK_CONTAINS(err.msg, "backend 7");
    ff_aio_destroy(NULL);
}

/* The kernel's switch, read only: at 2 nobody may use io_uring. */
static void test_io_uring_disabled_sysctl(void) {
    int disabled = -1;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &disabled) != 1) disabled = -1;
        fclose(f);
    }
    printf("kernel.io_uring_disabled = %d%s\n", disabled, disabled < 0 ? " (not present)" : "");
    if (disabled == 2) {
        ff_aio_t *aio = NULL;
        ff_error_t err = {{0}};
        CHECK(ff_aio_create(&aio, FF_AIO_URING, 4, &err) == -1);
        CHECK_CONTAINS(err.msg, "io_uring_disabled");
        ff_aio_destroy(aio);
    }
}

#if defined(__x86_64__)
/* Makes syscall nr fail with error for this process and its threads. */
static int deny_syscall(int nr, int error) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)error & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* In a child: io_uring is denied, AUTO must pick pread and work, URING
 * must fail naming io_uring and the refused call. */
static void seccomp_child(int nr, int error, const char *refused) {
    if (deny_syscall(nr, error) != 0) {
        fprintf(stderr, "cannot install the seccomp filter: %s\n", strerror(errno));
        _exit(77);
    }
    enum { LEN = 1 << 20 };
    char path[512];
    path_in_dir(path, sizeof path, "seccomp");
    uint8_t *back = calloc(1, LEN);
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    int64_t result = 0;
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(back != NULL && fd >= 0);
    CHECKF(ff_aio_create(&aio, FF_AIO_AUTO, 4, &err) == 0, "%s", err.msg);
    if (back == NULL || fd < 0 || aio == NULL) goto cleanup;
    CHECKF(ff_aio_backend(aio) == FF_AIO_PREAD, "AUTO picked %s",
           ff_aio_backend_name(ff_aio_backend(aio)));
    CHECK(ff_aio_write(aio, fd, source, LEN, 4096, 1, &err) == 0);
    CHECK(ff_aio_wait_tag(aio, 1, &result, &err) == 0 && result == LEN);
    CHECK(ff_aio_read(aio, fd, back, LEN, 4096, 2, &err) == 0);
    CHECK(ff_aio_wait_tag(aio, 2, &result, &err) == 0 && result == LEN);
    CHECK(memcmp(back, source, LEN) == 0);
    ff_aio_destroy(aio);
    aio = NULL;
    CHECK(ff_aio_create(&aio, FF_AIO_URING, 4, &err) == -1 && aio == NULL);
    CHECK_CONTAINS(err.msg, "io_uring");
#ifdef FF_HAVE_LIBURING
    CHECK_CONTAINS(err.msg, refused);
#endif
    printf("  child denied %s: AUTO picked pread, round trip ok; uring refused: %s\n", refused,
           err.msg);
cleanup:
    ff_aio_destroy(aio);
    if (fd >= 0) close(fd);
    free(back);
    fflush(stdout);
    fflush(stderr);
    _exit(check_failures == 0 ? 0 : 1);
}

static void test_seccomp_fallback(int nr, int error, const char *refused) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) seccomp_child(nr, error, refused);
    if (pid < 0) return;
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("  seccomp fallback skipped: filters not allowed here\n");
        return;
    }
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
#endif

/* Every test with one backend; @return 0, or -1 when it is unavailable. */
static int test_backend(ff_aio_backend_t backend, const char *data_file) {
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    if (ff_aio_create(&aio, backend, 4, &err) != 0) {
        printf("%s: skipped: %s\n", ff_aio_backend_name(backend), err.msg);
        return -1;
    }
    ff_aio_destroy(aio);
    printf("%s:\n", ff_aio_backend_name(backend));
    char name[64];
    snprintf(name, sizeof name, "out-%s", ff_aio_backend_name(backend));
    test_round_trip(backend, name);
    test_more_than_depth(backend, data_file);
    test_wait_tag(backend, data_file);
    test_edges(backend);
    test_short_read(backend);
    test_destroy_drains(backend, data_file);
    test_direct(backend);
    return 0;
}

int main(void) {
    check_tempdir(dir, "aio");
    source = malloc(FILE_BYTES);
    if (source == NULL) return 1;
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 99, 0, 0);
    for (size_t i = 0; i < FILE_BYTES; i += 8) {
        const uint64_t r = ff_rng_next(&rng);
        memcpy(source + i, &r, 8);
    }
    char data_file[512];
    path_in_dir(data_file, sizeof data_file, "source");
    write_plain(data_file, source, FILE_BYTES);

    test_names_and_arguments();
    test_io_uring_disabled_sysctl();
    ff_aio_t *aio = NULL;
    ff_error_t err = {{0}};
    CHECKF(ff_aio_create(&aio, FF_AIO_AUTO, 4, &err) == 0, "%s", err.msg);
    const ff_aio_backend_t chosen = aio != NULL ? ff_aio_backend(aio) : FF_AIO_AUTO;
    ff_aio_destroy(aio);
    printf("auto picks %s here\n", ff_aio_backend_name(chosen));

    CHECK(test_backend(FF_AIO_PREAD, data_file) == 0);
    const int have_uring = test_backend(FF_AIO_URING, data_file) == 0;
    CHECK(chosen == (have_uring ? FF_AIO_URING : FF_AIO_PREAD));
    if (have_uring) {
        /* Both backends wrote the same pieces: the files must be identical. */
        char a[512], b[512];
        path_in_dir(a, sizeof a, "out-pread");
        path_in_dir(b, sizeof b, "out-uring");
        uint8_t *fa = calloc(FILE_BYTES + 1, 1), *fb = calloc(FILE_BYTES + 1, 1);
        CHECK(fa != NULL && fb != NULL);
        if (fa != NULL && fb != NULL) {
            CHECK(read_plain(a, fa, FILE_BYTES + 1) == (long long)FILE_BYTES);
            CHECK(read_plain(b, fb, FILE_BYTES + 1) == (long long)FILE_BYTES);
            CHECK(memcmp(fa, fb, FILE_BYTES) == 0);
            printf("out-pread and out-uring are byte-identical\n");
        }
        free(fa);
        free(fb);
    }

#if defined(__x86_64__)
    printf("seccomp:\n");
    test_seccomp_fallback(__NR_io_uring_setup, ENOSYS, "io_uring_queue_init");
    test_seccomp_fallback(__NR_io_uring_enter, EPERM, "io_uring_enter");
#else
    printf("seccomp fallback skipped: the filter is written for x86_64\n");
#endif

    free(source);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_aio");
}
