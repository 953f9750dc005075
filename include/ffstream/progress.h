/* progress.h: wall-clock timing and the one-line progress report on stderr
 * (layer, epoch, loss, goodness of positives vs negatives, samples/s, ETA). */
#ifndef FFSTREAM_PROGRESS_H
#define FFSTREAM_PROGRESS_H

#include <stdint.h>

/* Monotonic time in seconds. */
double ff_now(void);

typedef struct {
    int enabled;
    int is_tty;       /* rewrite one line with \r instead of printing lines */
    double start;     /* ff_now() at ff_progress_init */
    double last_print;
    uint64_t total;   /* work units (samples) of the whole run */
    uint64_t done;
} ff_progress_t;

/* mode: 1 on, 0 off, -1 on when stderr is a terminal. */
void ff_progress_init(ff_progress_t *p, int mode, uint64_t total_units);

/* Reports progress after `units` more samples. label is a short phase name
 * ("layer 2/4 epoch 3/10"); the loss and goodness figures are printed when
 * not NaN. Prints at most a few times a second unless force. */
void ff_progress_update(ff_progress_t *p, uint64_t units, const char *label, double loss,
                        double good_pos, double good_neg, int force);

/* Ends the progress line (newline on a terminal). */
void ff_progress_finish(ff_progress_t *p);

#endif
