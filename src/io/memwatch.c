/* memwatch.c: sampled peaks of the resident set and the cgroup's usage. */
#include "ffstream/memwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ffstream/cgroup.h"
#include "ffstream/fileio.h"

struct ff_memwatch {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    unsigned interval_ms;
    int statm_fd, usage_fd; /* -1 when absent */
    long page;
    ff_memwatch_peaks_t peaks;
};

/* A decimal number at the start of fd's file, read from offset 0 (the
 * kernel regenerates these files on every read). 0 when unreadable. */
static uint64_t read_number(int fd, int field) {
    if (fd < 0) return 0;
    char text[128];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n <= 0) return 0;
    text[n] = '\0';
    char *p = text, *end;
    unsigned long long v = 0;
    for (int i = 0; i <= field; i++) {
        v = strtoull(p, &end, 10);
        if (end == p) return 0;
        p = end;
    }
    return v;
}

static void sample(ff_memwatch_t *w) {
    uint64_t rss = read_number(w->statm_fd, 1) * (uint64_t)w->page;
    uint64_t cg = read_number(w->usage_fd, 0);
    pthread_mutex_lock(&w->lock);
    if (rss > w->peaks.rss_peak) w->peaks.rss_peak = rss;
    if (cg > w->peaks.cgroup_peak) w->peaks.cgroup_peak = cg;
    w->peaks.samples++;
    pthread_mutex_unlock(&w->lock);
}

static void *watch(void *arg) {
    ff_memwatch_t *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)w->interval_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT) {
        }
        if (w->stop) break;
        pthread_mutex_unlock(&w->lock);
        sample(w);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

ff_memwatch_t *ff_memwatch_start(unsigned interval_ms) {
    ff_memwatch_t *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    w->interval_ms = interval_ms > 0 ? interval_ms : 1;
    w->page = sysconf(_SC_PAGESIZE);
    w->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    char path[FF_PATH_MAX];
    ff_error_t ignored;
    w->usage_fd = ff_cgroup_own_usage_file(path, sizeof path, &ignored) == 1
                      ? open(path, O_RDONLY | O_CLOEXEC)
                      : -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, watch, w) != 0) {
        w->stop = 1;
        ff_memwatch_stop(w);
        return NULL;
    }
    sample(w);
    return w;
}

ff_memwatch_peaks_t ff_memwatch_take(ff_memwatch_t *w) {
    ff_memwatch_peaks_t zero = {0, 0, 0};
    if (w == NULL) return zero;
    sample(w);
    pthread_mutex_lock(&w->lock);
    ff_memwatch_peaks_t out = w->peaks;
    w->peaks = zero;
    pthread_mutex_unlock(&w->lock);
    sample(w); /* the next stretch starts at today's level */
    return out;
}

void ff_memwatch_stop(ff_memwatch_t *w) {
    if (w == NULL) return;
    pthread_mutex_lock(&w->lock);
    int running = !w->stop;
    w->stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    if (running) pthread_join(w->thread, NULL);
    if (w->statm_fd >= 0) close(w->statm_fd);
    if (w->usage_fd >= 0) close(w->usage_fd);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
