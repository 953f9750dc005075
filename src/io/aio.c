/* aio.c: the bounded asynchronous I/O queue behind aio.h. Both backends share
 * one table of request slots (one per request in flight, owned by the
 * caller's thread) and one stash of completions reaped but not yet collected;
 * they differ in how a slot travels: io_uring carries its index in user_data,
 * the pread backend hands indices to one worker thread and gets them back.
 *
 * Bookkeeping (slots, queues, stash) comes from calloc/realloc: it is a few
 * bytes per request and the stash must grow; the I/O buffers themselves are
 * the caller's and charged by the caller. One ff_aio_t serves one thread. */
#include "ffstream/aio.h"

#include "ffstream/fileio.h"
#include "ffstream/hook.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef FF_HAVE_LIBURING
#include <liburing.h>
#endif

/* Largest queue; io_uring itself allows 32768 entries. */
#define AIO_MAX_DEPTH 4096u
/* Largest transfer handed to one pread/pwrite or SQE (32-bit length in the
 * SQE; Linux stops near 2 GiB anyway). A multiple of 4096, so the rest of an
 * O_DIRECT transfer stays aligned. */
#define AIO_MAX_CHUNK ((size_t)1 << 30)
/* Attempts at io_uring_submit while it reports EINTR or EAGAIN. */
#define URING_SUBMIT_ATTEMPTS 1000
/* user_data of NOPs (the probe, neutralised SQEs): no slot has this index. */
#define URING_NOP_DATA UINT64_MAX

typedef enum { AIO_OP_READ, AIO_OP_WRITE } aio_op_t;

/* A request in flight. The buffer is borrowed from the caller. */
typedef struct {
    uint64_t tag;
    uint64_t offset; /* file offset of buf[0] */
    unsigned char *buf;
    size_t len;  /* bytes asked */
    size_t done; /* bytes moved so far (io_uring resubmits the rest) */
    int fd;
    aio_op_t op;
    bool in_use;
} aio_request_t;

/* A request the caller has not collected yet. */
typedef struct {
    uint64_t tag;
    int64_t result; /* bytes moved or -errno */
} aio_completion_t;

/* A request the pread worker has finished, by slot. */
typedef struct {
    unsigned slot;
    int64_t result;
} aio_finished_t;

struct ff_aio {
    ff_aio_backend_t backend; /* FF_AIO_URING or FF_AIO_PREAD once created */
    unsigned depth;
    unsigned in_flight;      /* slots in use: queued, not yet reaped */
    aio_request_t *requests; /* depth slots */
    unsigned *free_slots;    /* stack of unused slot indices */
    unsigned free_count;
    aio_completion_t *stash; /* reaped, not collected, in completion order */
    size_t stash_count, stash_capacity;
    ff_aio_stats_t stats;
#ifdef FF_HAVE_LIBURING
    struct io_uring ring;
    bool ring_ready;
#endif
    /* pread backend: slot indices go to the worker through todo, results come
     * back through finished. Both rings hold depth entries, which is enough
     * since at most depth slots are in use. */
    pthread_mutex_t lock;
    pthread_cond_t todo_added;     /* todo gained an entry, or stop was set */
    pthread_cond_t finished_added; /* finished gained an entry */
    bool sync_ready;
    pthread_t worker;
    bool worker_started;
    bool stop; /* set by destroy once nothing is in flight */
    unsigned *todo;
    unsigned todo_head, todo_count;
    aio_finished_t *finished;
    unsigned finished_head, finished_count;
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Makes room for one more stashed completion before one is reaped, so a
 * reaped completion can never be lost to a failed allocation. */
static int stash_reserve(ff_aio_t *aio, ff_error_t *err) {
    if (aio->stash_count < aio->stash_capacity) return 0;
    size_t capacity = aio->stash_capacity * 2, bytes = 0;
    if (ff_mul_size(capacity, sizeof *aio->stash, &bytes) != 0)
        return ff_error_set(err, "aio: %zu completions not collected, too many to keep",
                            aio->stash_count);
    aio_completion_t *grown = realloc(aio->stash, bytes);
    if (grown == NULL)
        return ff_error_set(err, "aio: keeping %zu uncollected completions: %s", capacity,
                            strerror(errno));
    aio->stash = grown;
    aio->stash_capacity = capacity;
    return 0;
}

static void stash_remove(ff_aio_t *aio, size_t index) {
    memmove(aio->stash + index, aio->stash + index + 1,
            (aio->stash_count - index - 1) * sizeof *aio->stash);
    aio->stash_count--;
}

/* ---- pread backend ------------------------------------------------------ */

/* Moves a whole request with pread/pwrite, looping on short transfers and
 * EINTR. @return bytes moved, or -errno; a read stops early at end of file. */
static int64_t transfer_blocking(const aio_request_t *request) {
    size_t done = 0;
    while (done < request->len) {
        size_t want = request->len - done;
        if (want > AIO_MAX_CHUNK) want = AIO_MAX_CHUNK;
        const off_t offset = (off_t)(request->offset + done);
        ssize_t n = request->op == AIO_OP_READ
                        ? pread(request->fd, request->buf + done, want, offset)
                        : pwrite(request->fd, request->buf + done, want, offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -(int64_t)errno;
        }
        if (n == 0) {
            if (request->op == AIO_OP_READ) break; /* end of file */
            return -EIO; /* a write that moves nothing would loop forever */
        }
        done += (size_t)n;
    }
    return (int64_t)done;
}

/* The worker: takes slots from todo in order, moves them, posts results. It
 * copies the slot under the lock; the caller does not touch a slot again
 * until it has reaped it. */
static void *pread_worker(void *arg) {
    ff_aio_t *aio = arg;
    pthread_mutex_lock(&aio->lock);
    for (;;) {
        while (aio->todo_count == 0 && !aio->stop) pthread_cond_wait(&aio->todo_added, &aio->lock);
        if (aio->todo_count == 0) break; /* stop, and nothing left to do */
        const unsigned slot = aio->todo[aio->todo_head];
        aio->todo_head = (aio->todo_head + 1) % aio->depth;
        aio->todo_count--;
        const aio_request_t request = aio->requests[slot];
        pthread_mutex_unlock(&aio->lock);

        const int64_t result = transfer_blocking(&request);

        pthread_mutex_lock(&aio->lock);
        const unsigned tail = (aio->finished_head + aio->finished_count) % aio->depth;
        aio->finished[tail] = (aio_finished_t){.slot = slot, .result = result};
        aio->finished_count++;
        pthread_cond_signal(&aio->finished_added);
    }
    pthread_mutex_unlock(&aio->lock);
    return NULL;
}

/* Initialises the lock and both conditions, or none of them.
 * @return 0 or an error number. */
static int pread_sync_init(ff_aio_t *aio) {
    int ret = pthread_mutex_init(&aio->lock, NULL);
    if (ret != 0) return ret;
    ret = pthread_cond_init(&aio->todo_added, NULL);
    if (ret == 0) {
        ret = pthread_cond_init(&aio->finished_added, NULL);
        if (ret != 0) pthread_cond_destroy(&aio->todo_added);
    }
    if (ret != 0) pthread_mutex_destroy(&aio->lock);
    return ret;
}

static int pread_start(ff_aio_t *aio, ff_error_t *err) {
    aio->todo = calloc(aio->depth, sizeof *aio->todo);
    aio->finished = calloc(aio->depth, sizeof *aio->finished);
    if (aio->todo == NULL || aio->finished == NULL)
        return ff_error_set(err, "aio: pread queues of %u entries: out of memory", aio->depth);
    int ret = pread_sync_init(aio);
    if (ret != 0) return ff_error_set(err, "aio: pthread_mutex_init: %s", strerror(ret));
    aio->sync_ready = true;
    /* The worker blocks every signal, so handlers keep running on the
     * caller's threads as they would without this library. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&aio->worker, NULL, pread_worker, aio);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret != 0) return ff_error_set(err, "aio: pthread_create: %s", strerror(ret));
    aio->worker_started = true;
    return 0;
}

static void pread_queue(ff_aio_t *aio, unsigned slot) {
    pthread_mutex_lock(&aio->lock);
    aio->todo[(aio->todo_head + aio->todo_count) % aio->depth] = slot;
    aio->todo_count++;
    pthread_cond_signal(&aio->todo_added);
    pthread_mutex_unlock(&aio->lock);
}

/* Blocks until the worker finishes a request (one is in flight). */
static void pread_reap(ff_aio_t *aio, unsigned *slot, int64_t *result) {
    pthread_mutex_lock(&aio->lock);
    while (aio->finished_count == 0) pthread_cond_wait(&aio->finished_added, &aio->lock);
    const aio_finished_t done = aio->finished[aio->finished_head];
    aio->finished_head = (aio->finished_head + 1) % aio->depth;
    aio->finished_count--;
    pthread_mutex_unlock(&aio->lock);
    *slot = done.slot;
    *result = done.result;
}

static void pread_stop(ff_aio_t *aio) {
    if (aio->worker_started) {
        pthread_mutex_lock(&aio->lock);
        aio->stop = true;
        pthread_cond_signal(&aio->todo_added);
        pthread_mutex_unlock(&aio->lock);
        pthread_join(aio->worker, NULL);
        aio->worker_started = false;
    }
    if (aio->sync_ready) {
        pthread_cond_destroy(&aio->finished_added);
        pthread_cond_destroy(&aio->todo_added);
        pthread_mutex_destroy(&aio->lock);
        aio->sync_ready = false;
    }
}

/* ---- io_uring backend --------------------------------------------------- */

#ifdef FF_HAVE_LIBURING
/* Why io_uring setup or entry failed with errno, as a hint for the user.
 * kernel.io_uring_disabled (Linux 6.6+) is read, never changed: 1 allows
 * only members of kernel.io_uring_group, 2 forbids io_uring to everyone; both
 * show as EPERM, as does a seccomp filter (Docker's default profile). */
static void uring_hint(int error, char *hint, size_t size) {
    hint[0] = '\0';
    if (error == EPERM) {
        int disabled = -1;
        FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &disabled) != 1) disabled = -1;
            fclose(f);
        }
        if (disabled > 0)
            snprintf(hint, size, " (kernel.io_uring_disabled=%d)", disabled);
        else
            snprintf(hint, size, " (kernel.io_uring_disabled or seccomp)");
    } else if (error == ENOSYS) {
        snprintf(hint, size, " (kernel without io_uring, or seccomp)");
    } else if (error == ENOMEM) {
        snprintf(hint, size, " (before Linux 5.12 the ring counts against ulimit -l)");
    }
}

static int uring_unavailable(ff_error_t *err, const char *operation, int error) {
    char hint[96];
    uring_hint(error, hint, sizeof hint);
    return ff_error_set(err, "io_uring unavailable: %s: %s%s; use --io pread", operation,
                        strerror(error), hint);
}

/* Sets up the ring and proves it works: setup may succeed while
 * io_uring_enter is filtered, so one NOP goes all the way round; the kernel
 * must also know IORING_OP_READ and IORING_OP_WRITE (Linux 5.6). */
static int uring_start(ff_aio_t *aio, ff_error_t *err) {
    int ret = io_uring_queue_init(aio->depth, &aio->ring, 0);
    if (ret < 0) return uring_unavailable(err, "io_uring_queue_init", -ret);
    aio->ring_ready = true;
    int rc = -1;
    struct io_uring_probe *probe = NULL;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&aio->ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, URING_NOP_DATA);
    ret = io_uring_submit(&aio->ring);
    if (ret != 1) {
        uring_unavailable(err, "io_uring_enter", ret < 0 ? -ret : EIO);
        goto cleanup;
    }
    struct io_uring_cqe *cqe = NULL;
    do ret = io_uring_wait_cqe(&aio->ring, &cqe);
    while (ret == -EINTR);
    if (ret < 0) {
        uring_unavailable(err, "io_uring_wait_cqe", -ret);
        goto cleanup;
    }
    ret = cqe->res;
    io_uring_cqe_seen(&aio->ring, cqe);
    if (ret < 0) {
        uring_unavailable(err, "IORING_OP_NOP", -ret);
        goto cleanup;
    }
    probe = io_uring_get_probe_ring(&aio->ring);
    if (probe == NULL || !io_uring_opcode_supported(probe, IORING_OP_READ) ||
        !io_uring_opcode_supported(probe, IORING_OP_WRITE)) {
        ff_error_set(err, "io_uring unavailable: the kernel lacks IORING_OP_READ/WRITE (Linux "
                          "5.6 or newer needed); use --io pread");
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (probe != NULL) io_uring_free_probe(probe);
    if (rc != 0) {
        io_uring_queue_exit(&aio->ring);
        aio->ring_ready = false;
    }
    return rc;
}

/* Puts the untransferred rest of a slot's request on the ring and submits
 * it. @return 0 or -errno; on failure nothing of the slot stays queued. */
static int uring_queue(ff_aio_t *aio, unsigned slot) {
    const aio_request_t *request = &aio->requests[slot];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&aio->ring);
    if (sqe == NULL) return -EBUSY; /* only after depth failed submits */
    size_t want = request->len - request->done;
    if (want > AIO_MAX_CHUNK) want = AIO_MAX_CHUNK;
    if (request->op == AIO_OP_READ)
        io_uring_prep_read(sqe, request->fd, request->buf + request->done, (unsigned)want,
                           request->offset + request->done);
    else
        io_uring_prep_write(sqe, request->fd, request->buf + request->done, (unsigned)want,
                            request->offset + request->done);
    io_uring_sqe_set_data64(sqe, slot);
    int ret = 0;
    for (int attempt = 0; attempt < URING_SUBMIT_ATTEMPTS; attempt++) {
        ret = io_uring_submit(&aio->ring);
        if (ret > 0) return 0;
        if (ret == 0) ret = -EAGAIN;
        if (ret != -EINTR && ret != -EAGAIN) break;
        sched_yield();
    }
    /* The SQE is published but the kernel did not take it (it reads SQEs
     * only inside io_uring_enter). Turn it into a NOP that names no slot, so
     * whenever a later submit carries it, it touches no buffer. */
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, URING_NOP_DATA);
    return ret;
}

/* Blocks until a request is complete: a short transfer is resubmitted for
 * the rest (buffer and offset advanced), -EAGAIN and -EINTR resubmitted as
 * they were, and a read meeting end of file completes with what it got.
 * @return 0, or -1 when the ring itself failed. */
static int uring_reap(ff_aio_t *aio, unsigned *slot_out, int64_t *result, ff_error_t *err) {
    for (;;) {
        struct io_uring_cqe *cqe = NULL;
        int ret = io_uring_wait_cqe(&aio->ring, &cqe);
        if (ret == -EINTR) continue;
        if (ret < 0) return ff_error_set(err, "aio: io_uring_wait_cqe: %s", strerror(-ret));
        const uint64_t data = io_uring_cqe_get_data64(cqe);
        const int res = cqe->res;
        io_uring_cqe_seen(&aio->ring, cqe);
        if (data == URING_NOP_DATA) continue;
        assert(data < aio->depth && aio->requests[data].in_use);
        const unsigned slot = (unsigned)data;
        aio_request_t *request = &aio->requests[slot];
        bool resubmit = false;
        int64_t final = 0;
        if (res == -EAGAIN || res == -EINTR) {
            resubmit = true;
        } else if (res < 0) {
            final = res;
        } else if (res == 0) {
            /* End of file for a read; a write that moves nothing would spin. */
            const bool complete = request->op == AIO_OP_READ || request->done == request->len;
            final = complete ? (int64_t)request->done : -EIO;
        } else {
            request->done += (size_t)res;
            resubmit = request->done < request->len;
            final = (int64_t)request->done;
        }
        if (resubmit) {
            ret = uring_queue(aio, slot);
            if (ret == 0) continue;
            final = ret;
        }
        *slot_out = slot;
        *result = final;
        return 0;
    }
}
#else
static int uring_start(ff_aio_t *aio, ff_error_t *err) {
    (void)aio;
    return ff_error_set(err, "io_uring unavailable: ffstream was built without liburing; use "
                             "--io pread");
}
#endif

static void uring_stop(ff_aio_t *aio) {
#ifdef FF_HAVE_LIBURING
    if (aio->ring_ready) io_uring_queue_exit(&aio->ring);
    aio->ring_ready = false;
#else
    (void)aio;
#endif
}

/* ---- the queue ---------------------------------------------------------- */

/* Blocks until one request in flight completes, frees its slot and counts it
 * in the stats. @return 0, or -1 when the queue itself failed. */
static int reap_one(ff_aio_t *aio, aio_completion_t *out, ff_error_t *err) {
    unsigned slot = 0;
    int64_t result = 0;
#ifdef FF_HAVE_LIBURING
    if (aio->backend == FF_AIO_URING) {
        if (uring_reap(aio, &slot, &result, err) != 0) return -1;
    } else
#endif
    {
        pread_reap(aio, &slot, &result);
    }
    aio_request_t *request = &aio->requests[slot];
    if (request->op == AIO_OP_READ) {
        aio->stats.reads++;
        if (result > 0) aio->stats.bytes_read += (uint64_t)result;
        if (result > 0) ff_fileio_count((uint64_t)result, 0);
    } else {
        aio->stats.writes++;
        if (result > 0) aio->stats.bytes_written += (uint64_t)result;
        if (result > 0) ff_fileio_count(0, (uint64_t)result);
        /* Test builds can fail any asynchronous write, as a disk would. */
        int injected = ff_hook_fault(FF_HOOK_WRITE);
        if (injected != 0) result = -injected;
    }
    out->tag = request->tag;
    out->result = result;
    request->in_use = false;
    aio->free_slots[aio->free_count++] = slot;
    aio->in_flight--;
    return 0;
}

static int submit(ff_aio_t *aio, aio_op_t op, int fd, unsigned char *buf, size_t len,
                  uint64_t offset, uint64_t tag, ff_error_t *err) {
    const char *what = op == AIO_OP_READ ? "ff_aio_read" : "ff_aio_write";
    if (buf == NULL && len > 0) return ff_error_set(err, "%s: buffer is NULL", what);
    if (len > (uint64_t)INT64_MAX || offset > (uint64_t)INT64_MAX - len)
        return ff_error_set(err, "%s: %zu bytes at offset %llu: past the largest file offset", what,
                            len, (unsigned long long)offset);
    if (aio->free_count == 0) {
        /* Full: wait for one request and keep it for ff_aio_wait. */
        aio_completion_t completion;
        if (stash_reserve(aio, err) != 0 || reap_one(aio, &completion, err) != 0)
            return ff_error_wrap(err, "%s: waiting for room in the queue", what);
        aio->stash[aio->stash_count++] = completion;
    }
    const unsigned slot = aio->free_slots[--aio->free_count];
    aio->requests[slot] = (aio_request_t){.tag = tag,
                                          .offset = offset,
                                          .buf = buf,
                                          .len = len,
                                          .done = 0,
                                          .fd = fd,
                                          .op = op,
                                          .in_use = true};
    aio->in_flight++;
#ifdef FF_HAVE_LIBURING
    if (aio->backend == FF_AIO_URING) {
        const int ret = uring_queue(aio, slot);
        if (ret != 0) {
            aio->requests[slot].in_use = false;
            aio->free_slots[aio->free_count++] = slot;
            aio->in_flight--;
            return ff_error_set(err, "%s: io_uring_submit: %s", what, strerror(-ret));
        }
        return 0;
    }
#endif
    pread_queue(aio, slot);
    return 0;
}

int ff_aio_create(ff_aio_t **out, ff_aio_backend_t backend, unsigned depth, ff_error_t *err) {
    *out = NULL;
    if (depth < 1 || depth > AIO_MAX_DEPTH)
        return ff_error_set(err, "ff_aio_create: queue depth %u, expected 1..%u", depth,
                            AIO_MAX_DEPTH);
    if (backend != FF_AIO_AUTO && backend != FF_AIO_URING && backend != FF_AIO_PREAD)
        return ff_error_set(err, "ff_aio_create: backend %d, expected auto, uring or pread",
                            (int)backend);
    ff_aio_t *aio = calloc(1, sizeof *aio);
    if (aio == NULL) return ff_error_set(err, "ff_aio_create: out of memory");
    int rc = -1;
    aio->depth = depth;
    aio->requests = calloc(depth, sizeof *aio->requests);
    aio->free_slots = calloc(depth, sizeof *aio->free_slots);
    aio->stash = calloc(depth, sizeof *aio->stash);
    if (aio->requests == NULL || aio->free_slots == NULL || aio->stash == NULL) {
        ff_error_set(err, "ff_aio_create: %u request slots: out of memory", depth);
        goto cleanup;
    }
    aio->stash_capacity = depth;
    for (unsigned i = 0; i < depth; i++) aio->free_slots[i] = depth - 1 - i;
    aio->free_count = depth;
    if (backend != FF_AIO_PREAD) {
        /* AUTO forgets why io_uring failed: pread is the documented fallback. */
        if (uring_start(aio, backend == FF_AIO_URING ? err : NULL) == 0) {
            aio->backend = FF_AIO_URING;
            rc = 0;
            goto cleanup;
        }
        if (backend == FF_AIO_URING) goto cleanup;
    }
    if (pread_start(aio, err) != 0) goto cleanup;
    aio->backend = FF_AIO_PREAD;
    rc = 0;
cleanup:
    if (rc != 0) {
        ff_aio_destroy(aio);
        return -1;
    }
    *out = aio;
    return 0;
}

void ff_aio_destroy(ff_aio_t *aio) {
    if (aio == NULL) return;
    /* The kernel or the worker may still be writing into callers' buffers. If
     * the ring itself failed, exiting it is the last resort. */
    while (aio->in_flight > 0) {
        aio_completion_t completion;
        if (reap_one(aio, &completion, NULL) != 0) break;
    }
    uring_stop(aio);
    pread_stop(aio);
    free(aio->finished);
    free(aio->todo);
    free(aio->stash);
    free(aio->free_slots);
    free(aio->requests);
    free(aio);
}

ff_aio_backend_t ff_aio_backend(const ff_aio_t *aio) {
    return aio->backend;
}

const char *ff_aio_backend_name(ff_aio_backend_t backend) {
    switch (backend) {
    case FF_AIO_AUTO:
        return "auto";
    case FF_AIO_URING:
        return "uring";
    case FF_AIO_PREAD:
        return "pread";
    }
    return "unknown";
}

int ff_aio_parse_backend(const char *name, ff_aio_backend_t *out) {
    static const ff_aio_backend_t all[] = {FF_AIO_AUTO, FF_AIO_URING, FF_AIO_PREAD};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (name != NULL && strcmp(name, ff_aio_backend_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

int ff_aio_read(ff_aio_t *aio, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag,
                ff_error_t *err) {
    return submit(aio, AIO_OP_READ, fd, buf, len, offset, tag, err);
}

int ff_aio_write(ff_aio_t *aio, int fd, const void *buf, size_t len, uint64_t offset, uint64_t tag,
                 ff_error_t *err) {
    /* The buffer is only read; the slot keeps one pointer type for both. */
    return submit(aio, AIO_OP_WRITE, fd, (unsigned char *)(uintptr_t)buf, len, offset, tag, err);
}

int ff_aio_wait(ff_aio_t *aio, uint64_t *tag, int64_t *result, ff_error_t *err) {
    const double start = now_seconds();
    int rc = -1;
    aio_completion_t completion;
    if (aio->stash_count > 0) {
        completion = aio->stash[0];
        stash_remove(aio, 0);
    } else if (aio->in_flight == 0) {
        ff_error_set(err, "ff_aio_wait: no request in flight or waiting to be collected");
        goto cleanup;
    } else if (reap_one(aio, &completion, err) != 0) {
        ff_error_wrap(err, "ff_aio_wait");
        goto cleanup;
    }
    if (tag != NULL) *tag = completion.tag;
    if (result != NULL) *result = completion.result;
    rc = 0;
cleanup:
    aio->stats.wait_seconds += now_seconds() - start;
    return rc;
}

static bool tag_in_flight(const ff_aio_t *aio, uint64_t tag) {
    for (unsigned i = 0; i < aio->depth; i++)
        if (aio->requests[i].in_use && aio->requests[i].tag == tag) return true;
    return false;
}

int ff_aio_wait_tag(ff_aio_t *aio, uint64_t tag, int64_t *result, ff_error_t *err) {
    const double start = now_seconds();
    int rc = -1;
    for (size_t i = 0; i < aio->stash_count; i++) {
        if (aio->stash[i].tag == tag) {
            if (result != NULL) *result = aio->stash[i].result;
            stash_remove(aio, i);
            rc = 0;
            goto cleanup;
        }
    }
    if (!tag_in_flight(aio, tag)) {
        ff_error_set(err,
                     "ff_aio_wait_tag: no request with tag %llu in flight or waiting to be "
                     "collected",
                     (unsigned long long)tag);
        goto cleanup;
    }
    for (;;) {
        aio_completion_t completion;
        if (stash_reserve(aio, err) != 0 || reap_one(aio, &completion, err) != 0) {
            ff_error_wrap(err, "ff_aio_wait_tag %llu", (unsigned long long)tag);
            goto cleanup;
        }
        if (completion.tag == tag) {
            if (result != NULL) *result = completion.result;
            rc = 0;
            goto cleanup;
        }
        aio->stash[aio->stash_count++] = completion;
    }
cleanup:
    aio->stats.wait_seconds += now_seconds() - start;
    return rc;
}

unsigned ff_aio_pending(const ff_aio_t *aio) {
    return aio->in_flight + (unsigned)aio->stash_count;
}

void ff_aio_stats(const ff_aio_t *aio, ff_aio_stats_t *out) {
    *out = aio->stats;
}
