/* aio.h: asynchronous file reads and writes with a bounded queue: io_uring
 * (liburing) when the kernel allows it, otherwise pread/pwrite on a worker
 * thread, so compute and I/O overlap either way. Each request carries a tag
 * the caller chooses; short transfers are resubmitted internally, so a
 * completion reports either the full length or an error. */
#ifndef FFSTREAM_AIO_H
#define FFSTREAM_AIO_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

typedef enum {
    FF_AIO_AUTO = 0,  /* io_uring when it works here, else pread */
    FF_AIO_URING = 1,
    FF_AIO_PREAD = 2,
} ff_aio_backend_t;

typedef struct ff_aio ff_aio_t;

typedef struct {
    uint64_t bytes_read, bytes_written;
    uint64_t reads, writes;
    double wait_seconds; /* time spent blocked in ff_aio_wait */
} ff_aio_stats_t;

/* Creates a queue of at most depth requests in flight. FF_AIO_AUTO probes
 * io_uring (it can be disabled by seccomp, kernel.io_uring_disabled or an
 * old kernel) and falls back to pread; FF_AIO_URING fails when io_uring is
 * unavailable. @return 0 or -1 with err saying why. */
int ff_aio_create(ff_aio_t **out, ff_aio_backend_t backend, unsigned depth, ff_error_t *err);

/* Waits for every request in flight, then frees; NULL is a no-op. */
void ff_aio_destroy(ff_aio_t *aio);

ff_aio_backend_t ff_aio_backend(const ff_aio_t *aio);
const char *ff_aio_backend_name(ff_aio_backend_t backend);

/* Parses "auto", "uring" or "pread". @return 0 or -1. */
int ff_aio_parse_backend(const char *name, ff_aio_backend_t *out);

/* Queues a read of len bytes at offset of fd into buf (which must stay valid
 * until its completion). Blocks while depth requests are in flight.
 * @return 0 or -1 with err. */
int ff_aio_read(ff_aio_t *aio, int fd, void *buf, size_t len, uint64_t offset, uint64_t tag,
                ff_error_t *err);

/* Queues a write of len bytes from buf to offset of fd. */
int ff_aio_write(ff_aio_t *aio, int fd, const void *buf, size_t len, uint64_t offset,
                 uint64_t tag, ff_error_t *err);

/* Waits for the next completion (in any order). *tag is the request's tag,
 * *result the bytes transferred (the full length) or -errno; a read that
 * meets end of file early reports the bytes it got. @return 0, or -1 with err
 * when nothing is in flight or the queue itself failed. */
int ff_aio_wait(ff_aio_t *aio, uint64_t *tag, int64_t *result, ff_error_t *err);

/* Waits for the completion of the request with this tag, keeping the other
 * completions for later ff_aio_wait/ff_aio_wait_tag calls. */
int ff_aio_wait_tag(ff_aio_t *aio, uint64_t tag, int64_t *result, ff_error_t *err);

/* Requests in flight or completed but not yet collected. */
unsigned ff_aio_pending(const ff_aio_t *aio);

void ff_aio_stats(const ff_aio_t *aio, ff_aio_stats_t *out);

#endif
