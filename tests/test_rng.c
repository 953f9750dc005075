/* test_rng: the generator is deterministic, portable (golden values), its
 * streams independent, and its bounded draws unbiased and in range. */
#include "testutil.h"
#include "ffstream/rng.h"

int main(void) {
    ff_rng_t a, b;
    ff_rng_init(&a, 42, 1, 2, 3);
    ff_rng_init(&b, 42, 1, 2, 3);
    for (int i = 0; i < 100; i++) CHECK(ff_rng_next(&a) == ff_rng_next(&b));

    /* Golden values: a change here changes every run's results. */
    ff_rng_init(&a, 1, 0, 0, 0);
    uint64_t first = ff_rng_next(&a), second = ff_rng_next(&a);
    printf("seed 1 stream (0,0,0): %016llx %016llx\n", (unsigned long long)first,
           (unsigned long long)second);
    CHECK(first == 0x3e7d890d2781d292ULL);
    CHECK(second == 0x726a7cde04ebbfc7ULL);

    /* Different purpose tuples give different streams. */
    ff_rng_init(&a, 42, 1, 2, 3);
    ff_rng_init(&b, 42, 1, 2, 4);
    int same = 0;
    for (int i = 0; i < 100; i++) same += ff_rng_next(&a) == ff_rng_next(&b);
    CHECK(same == 0);

    /* Bounded draws: in range and close to uniform over 9 values. */
    int counts[9] = {0};
    for (int i = 0; i < 90000; i++) {
        uint32_t v = ff_rng_below(&a, 9);
        CHECK(v < 9);
        if (v < 9) counts[v]++;
    }
    for (int i = 0; i < 9; i++) CHECKF(counts[i] > 9500 && counts[i] < 10500, "count[%d] %d", i, counts[i]);

    float lo = 1, hi = 0;
    for (int i = 0; i < 100000; i++) {
        float u = ff_rng_uniform(&a);
        CHECK(u >= 0.0f && u < 1.0f);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    CHECK(lo < 0.001f && hi > 0.999f);

    enum { N = 1000 };
    static uint32_t perm[N];
    static int seen[N];
    ff_rng_permutation(&a, perm, N);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        CHECK(perm[i] < N);
        if (perm[i] < N) seen[perm[i]]++;
        moved += perm[i] != (uint32_t)i;
    }
    for (int i = 0; i < N; i++) CHECK(seen[i] == 1);
    CHECK(moved > N / 2);
    return check_exit("test_rng");
}
