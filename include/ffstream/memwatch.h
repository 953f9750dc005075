/* memwatch.h: the peaks of a stretch of work. A thread samples the
 * process's resident set (/proc/self/statm) and its own cgroup's memory in
 * use (page cache included) every few milliseconds and keeps the largest
 * values since the last ff_memwatch_take. It neither resets nor disturbs
 * the kernel's own peaks (VmHWM, ru_maxrss, the cgroup's max usage), so an
 * outside profiler still reads the whole run's. Sampled: a spike shorter
 * than the interval can be missed. */
#ifndef FFSTREAM_MEMWATCH_H
#define FFSTREAM_MEMWATCH_H

#include <stdint.h>

/* The sampling interval the trainers use. */
#define FF_MEMWATCH_INTERVAL_MS 20

typedef struct ff_memwatch ff_memwatch_t;

typedef struct {
    uint64_t rss_peak;    /* largest resident set sampled, bytes */
    uint64_t cgroup_peak; /* largest cgroup usage sampled, bytes; 0 without a cgroup */
    uint64_t samples;
} ff_memwatch_peaks_t;

/* Starts sampling every interval_ms. @return the watch, or NULL when the
 * thread cannot start (the caller goes on without peaks). */
ff_memwatch_t *ff_memwatch_start(unsigned interval_ms);

/* The peaks since the last take (or the start), a sample taken now
 * included; the next stretch starts from here. NULL watch: zeros. */
ff_memwatch_peaks_t ff_memwatch_take(ff_memwatch_t *w);

/* Stops the thread and frees; NULL is a no-op. */
void ff_memwatch_stop(ff_memwatch_t *w);

#endif
