/* rng.c: xoshiro256** (Blackman & Vigna) with splitmix64 seeding. */
#include "ffstream/rng.h"

#include <assert.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ff_rng_init(ff_rng_t *rng, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b) {
    /* Mix the tuple through splitmix64 so nearby tuples give unrelated states. */
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (purpose * 0xd6e8feb86659fd93ULL);
    h = splitmix64(&x);
    x = h ^ (a * 0xa0761d6478bd642fULL);
    h = splitmix64(&x);
    x = h ^ (b * 0xe7037ed1a0b428dbULL);
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t ff_rng_next(ff_rng_t *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float ff_rng_uniform(ff_rng_t *rng) {
    return (float)(ff_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

uint32_t ff_rng_below(ff_rng_t *rng, uint32_t n) {
    assert(n > 0);
    /* Lemire's multiply-shift with rejection of the biased low range. */
    uint64_t m = (ff_rng_next(rng) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (ff_rng_next(rng) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void ff_rng_shuffle(ff_rng_t *rng, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = ff_rng_below(rng, (uint32_t)i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void ff_rng_permutation(ff_rng_t *rng, uint32_t *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (uint32_t)i;
    ff_rng_shuffle(rng, a, n);
}
