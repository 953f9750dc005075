/* background.h: one task on a thread of its own (a layer's final checkpoint
 * written while its passes run, a finished layer's caches deleted), or run
 * at once on the caller's thread when no thread can be made. */
#ifndef FFSTREAM_BACKGROUND_H
#define FFSTREAM_BACKGROUND_H

#include <pthread.h>

#include "ffstream/error.h"

typedef int (*ff_background_fn)(void *arg, ff_error_t *err);

typedef struct {
    pthread_t thread;
    int running;    /* a thread is running fn */
    int done;       /* fn ran inline: rc and err hold its outcome */
    ff_background_fn fn;
    void *arg;
    int rc;
    ff_error_t err;
} ff_background_t;

/* Starts fn(arg) (b must be idle: joined or zeroed). */
void ff_background_start(ff_background_t *b, ff_background_fn fn, void *arg);

/* Waits for the task; idle tasks return 0. @return fn's result, with its
 * message in err when it failed (err may be NULL). */
int ff_background_join(ff_background_t *b, ff_error_t *err);

#endif
