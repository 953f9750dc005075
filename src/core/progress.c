/* progress.c: timing and progress output. */
#include "ffstream/progress.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

double ff_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ff_progress_init(ff_progress_t *p, int mode, uint64_t total_units) {
    p->is_tty = isatty(STDERR_FILENO);
    p->enabled = mode > 0 || (mode < 0 && p->is_tty);
    p->start = ff_now();
    p->last_print = 0.0;
    p->total = total_units;
    p->done = 0;
}

static void format_duration(char *buf, size_t cap, double seconds) {
    if (!(seconds >= 0) || seconds > 1e7) {
        snprintf(buf, cap, "?");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, cap, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(buf, cap, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, cap, "%lds", s);
}

void ff_progress_update(ff_progress_t *p, uint64_t units, const char *label, double loss,
                        double good_pos, double good_neg, int force) {
    p->done += units;
    if (!p->enabled) return;
    double now = ff_now();
    double min_gap = p->is_tty ? 0.25 : 5.0;
    if (!force && now - p->last_print < min_gap) return;
    p->last_print = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->done / elapsed : 0.0;
    double eta = rate > 0 && p->total > p->done ? (double)(p->total - p->done) / rate : 0.0;
    char eta_s[32];
    format_duration(eta_s, sizeof eta_s, eta);
    char stats[128] = "";
    if (!isnan(loss) && !isnan(good_pos))
        snprintf(stats, sizeof stats, " loss %.4f g+ %.3f g- %.3f", loss, good_pos, good_neg);
    else if (!isnan(loss))
        snprintf(stats, sizeof stats, " loss %.4f", loss);
    fprintf(stderr, "%s%s%s  %.0f samples/s  ETA %s%s", p->is_tty ? "\r\033[K" : "", label, stats,
            rate, eta_s, p->is_tty ? "" : "\n");
    fflush(stderr);
}

void ff_progress_finish(ff_progress_t *p) {
    if (p->enabled && p->is_tty) {
        fputc('\n', stderr);
        fflush(stderr);
    }
}
