/* memstat.c: category-tracked allocation. A 64-byte prefix in front of each
 * block remembers its size and category so ff_mem_free can uncharge it.
 * Large blocks are mapped from the kernel directly and unmapped when freed:
 * the process's resident memory then follows the live blocks exactly,
 * whatever malloc's per-thread arenas and adaptive mmap threshold would
 * keep (a checkpoint writer's thread, busy cores, a different order of
 * frees). */
#include "ffstream/memstat.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define FF_MEM_ALIGN 64

/* Sits in the 64 bytes just below the pointer handed out. */
typedef struct {
    void *raw;         /* what posix_memalign or mmap returned */
    size_t bytes;
    size_t mapped;     /* bytes mapped (0: from malloc) */
    int category;
    uint32_t magic;
} block_header_t;

/* Blocks from this size up are mapped directly. */
#define MAP_MIN ((size_t)256 << 10)

#define BLOCK_MAGIC 0xff5eedu

static _Atomic uint64_t g_current[FF_MEM_COUNT];
static _Atomic uint64_t g_peak[FF_MEM_COUNT];
static _Atomic uint64_t g_current_total;
static _Atomic uint64_t g_peak_total;

static const char *const category_names[FF_MEM_COUNT] = {
    "weights", "gradients", "optimizer", "activations", "io_buffers", "dataset", "other",
};

const char *ff_mem_category_name(ff_mem_category_t category) {
    if ((unsigned)category >= FF_MEM_COUNT) return "unknown";
    return category_names[category];
}

static void raise_peak(_Atomic uint64_t *peak, uint64_t value) {
    uint64_t old = atomic_load(peak);
    while (value > old && !atomic_compare_exchange_weak(peak, &old, value)) {
    }
}

void *ff_mem_alloc_aligned(ff_mem_category_t category, size_t bytes, size_t align) {
    if ((unsigned)category >= FF_MEM_COUNT) category = FF_MEM_OTHER;
    if (align < FF_MEM_ALIGN) align = FF_MEM_ALIGN;
    if ((align & (align - 1)) != 0 || bytes > SIZE_MAX - align) return NULL;
    void *raw = NULL;
    size_t mapped = 0;
    /* The header needs FF_MEM_ALIGN bytes below the pointer; with a larger
     * alignment a whole `align` step is spent so the pointer stays aligned.
     * A mapping is page-aligned, which covers every alignment up to a page. */
    long page = sysconf(_SC_PAGESIZE);
    if (bytes >= MAP_MIN && page > 0 && align <= (size_t)page) {
        mapped = bytes + align;
        raw = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) return NULL;
    } else if (posix_memalign(&raw, align, bytes + align) != 0) {
        return NULL;
    }
    char *ptr = (char *)raw + align;
    block_header_t *h = (block_header_t *)(ptr - FF_MEM_ALIGN);
    h->raw = raw;
    h->mapped = mapped;
    h->bytes = bytes;
    h->category = category;
    h->magic = BLOCK_MAGIC;
    uint64_t c = atomic_fetch_add(&g_current[category], bytes) + bytes;
    raise_peak(&g_peak[category], c);
    uint64_t t = atomic_fetch_add(&g_current_total, bytes) + bytes;
    raise_peak(&g_peak_total, t);
    return ptr;
}

void *ff_mem_alloc(ff_mem_category_t category, size_t bytes) {
    return ff_mem_alloc_aligned(category, bytes, FF_MEM_ALIGN);
}

void ff_mem_advise_huge(void *ptr, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t begin = ((uintptr_t)ptr + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)ptr + bytes) & ~(huge - 1);
    if (ptr != NULL && end > begin) (void)madvise((void *)begin, end - begin, MADV_HUGEPAGE);
#else
    (void)ptr, (void)bytes;
#endif
}

void *ff_mem_calloc(ff_mem_category_t category, size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    void *p = ff_mem_alloc(category, count * size);
    if (p != NULL) memset(p, 0, count * size);
    return p;
}

void ff_mem_free(void *ptr) {
    if (ptr == NULL) return;
    block_header_t *h = (block_header_t *)((char *)ptr - FF_MEM_ALIGN);
    if (h->magic != BLOCK_MAGIC) {
        fprintf(stderr, "ff_mem_free: %p was not allocated by ff_mem_alloc\n", ptr);
        abort();
    }
    h->magic = 0;
    atomic_fetch_sub(&g_current[h->category], h->bytes);
    atomic_fetch_sub(&g_current_total, h->bytes);
    if (h->mapped != 0) munmap(h->raw, h->mapped);
    else free(h->raw);
}

void ff_mem_stats(ff_mem_stats_t *out) {
    for (int i = 0; i < FF_MEM_COUNT; i++) {
        out->current[i] = atomic_load(&g_current[i]);
        out->peak[i] = atomic_load(&g_peak[i]);
    }
    out->current_total = atomic_load(&g_current_total);
    out->peak_total = atomic_load(&g_peak_total);
}

void ff_mem_reset_peaks(void) {
    for (int i = 0; i < FF_MEM_COUNT; i++) atomic_store(&g_peak[i], atomic_load(&g_current[i]));
    atomic_store(&g_peak_total, atomic_load(&g_current_total));
}

uint64_t ff_mem_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

uint64_t ff_mem_current_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
