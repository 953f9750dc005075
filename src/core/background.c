/* background.c: a task on its own thread (see background.h). */
#include "ffstream/background.h"

#include <string.h>

static void *background_main(void *arg) {
    ff_background_t *b = arg;
    b->rc = b->fn(b->arg, &b->err);
    return NULL;
}

void ff_background_start(ff_background_t *b, ff_background_fn fn, void *arg) {
    memset(b, 0, sizeof *b);
    b->fn = fn;
    b->arg = arg;
    if (pthread_create(&b->thread, NULL, background_main, b) == 0) {
        b->running = 1;
        return;
    }
    b->rc = fn(arg, &b->err); /* no thread: do it now */
    b->done = 1;
}

int ff_background_join(ff_background_t *b, ff_error_t *err) {
    if (b->running) pthread_join(b->thread, NULL);
    else if (!b->done) return 0;
    int rc = b->rc;
    if (rc != 0 && err != NULL) *err = b->err;
    b->running = b->done = 0;
    b->rc = 0;
    return rc;
}
