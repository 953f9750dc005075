/* test_memstat: allocations are charged to their category and released on
 * free; peaks remember the high-water mark; RSS figures are sane. */
#include <stdint.h>

#include "testutil.h"
#include "ffstream/memstat.h"

int main(void) {
    ff_mem_stats_t s0, s1, s2;
    ff_mem_stats(&s0);
    char *a = ff_mem_alloc(FF_MEM_WEIGHTS, 1000);
    char *b = ff_mem_calloc(FF_MEM_IO, 10, 300);
    CHECK(a != NULL && b != NULL);
    CHECK(((uintptr_t)a % 64) == 0 && ((uintptr_t)b % 64) == 0);
    CHECK(b[0] == 0 && b[2999] == 0);
    ff_mem_stats(&s1);
    CHECK(s1.current[FF_MEM_WEIGHTS] - s0.current[FF_MEM_WEIGHTS] == 1000);
    CHECK(s1.current[FF_MEM_IO] - s0.current[FF_MEM_IO] == 3000);
    CHECK(s1.current_total - s0.current_total == 4000);
    char *c = ff_mem_alloc_aligned(FF_MEM_IO, 5000, 4096);
    CHECK(c != NULL && ((uintptr_t)c % 4096) == 0);
    c[4999] = 1;
    ff_mem_stats(&s2);
    CHECK(s2.current[FF_MEM_IO] - s0.current[FF_MEM_IO] == 8000);
    ff_mem_free(c);
    CHECK(ff_mem_alloc_aligned(FF_MEM_IO, 10, 3000) == NULL); /* not a power of two */
    ff_mem_free(a);
    ff_mem_free(b);
    ff_mem_free(NULL);
    ff_mem_stats(&s2);
    CHECK(s2.current_total == s0.current_total);
    CHECK(s2.peak_total >= s0.current_total + 4000);
    CHECK(s2.peak[FF_MEM_IO] >= 3000);
    CHECK(ff_mem_calloc(FF_MEM_OTHER, SIZE_MAX / 2, 4) == NULL);
    ff_mem_reset_peaks();
    ff_mem_stats(&s2);
    CHECK(s2.peak_total == s2.current_total);
    CHECK(strcmp(ff_mem_category_name(FF_MEM_IO), "io_buffers") == 0);
    uint64_t peak = ff_mem_peak_rss_bytes(), cur = ff_mem_current_rss_bytes();
    printf("rss %llu bytes, peak %llu bytes\n", (unsigned long long)cur, (unsigned long long)peak);
    CHECK(peak > 100000 && cur > 100000 && cur <= peak + 4096 * 64);
    return check_exit("test_memstat");
}
