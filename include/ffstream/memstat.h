/* memstat.h: the program's own memory accounting. Every large buffer is
 * allocated through ff_mem_alloc with a category, so the result JSON can say
 * where the bytes went (weights, optimizer state, activations, I/O buffers...)
 * next to the peak RSS the kernel reports. */
#ifndef FFSTREAM_MEMSTAT_H
#define FFSTREAM_MEMSTAT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FF_MEM_WEIGHTS = 0,  /* parameters: weights and biases */
    FF_MEM_GRADIENTS,    /* parameter gradients */
    FF_MEM_OPTIMIZER,    /* Adam first and second moments */
    FF_MEM_ACTIVATIONS,  /* batch activations and cached layer outputs */
    FF_MEM_IO,           /* I/O buffers (chunks in flight, compression) */
    FF_MEM_DATASET,      /* decoded images and labels */
    FF_MEM_OTHER,        /* everything else that is tracked */
    FF_MEM_COUNT
} ff_mem_category_t;

/* @return the JSON name of a category ("weights", "io_buffers", ...). */
const char *ff_mem_category_name(ff_mem_category_t category);

/* Allocates bytes (64-byte aligned, uninitialised) charged to category.
 * @return the pointer, or NULL when out of memory. bytes == 0 gives a valid
 * unique pointer. */
void *ff_mem_alloc(ff_mem_category_t category, size_t bytes);

/* Like ff_mem_alloc with a larger power-of-two alignment (4096 for
 * O_DIRECT buffers). */
void *ff_mem_alloc_aligned(ff_mem_category_t category, size_t bytes, size_t align);

/* Like ff_mem_alloc, zero-filled; count*size is overflow-checked. */
void *ff_mem_calloc(ff_mem_category_t category, size_t count, size_t size);

/* Asks the kernel for huge pages behind a large block that is written
 * whole before it is read (transparent huge pages in "madvise" mode): 512
 * times fewer page faults when it is first touched. Advice only: nothing
 * changes where the kernel says no. */
void ff_mem_advise_huge(void *ptr, size_t bytes);

/* Frees a pointer from ff_mem_alloc; NULL is a no-op. */
void ff_mem_free(void *ptr);

typedef struct {
    uint64_t current[FF_MEM_COUNT]; /* bytes live now, by category */
    uint64_t peak[FF_MEM_COUNT];    /* highest bytes live, by category */
    uint64_t current_total;         /* bytes live now, all categories */
    uint64_t peak_total;            /* highest bytes live at one time */
} ff_mem_stats_t;

void ff_mem_stats(ff_mem_stats_t *out);

/* Forgets the peaks (current values stay); tests use it between runs. */
void ff_mem_reset_peaks(void);

/* @return the process's peak resident set size in bytes (getrusage). */
uint64_t ff_mem_peak_rss_bytes(void);

/* @return the process's current resident set size in bytes (/proc), or 0. */
uint64_t ff_mem_current_rss_bytes(void);

#endif
