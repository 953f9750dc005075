/* rng.h: seeded, portable random numbers (xoshiro256** seeded by splitmix64).
 * Every random choice in ffstream comes from a stream derived from the run's
 * seed and a purpose tuple, so a layer's init or an epoch's batch order can be
 * regenerated on its own: that is what makes resume and ff-stream == ff-mem
 * bit-identical. Output is the same on every platform. */
#ifndef FFSTREAM_RNG_H
#define FFSTREAM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} ff_rng_t;

/* Purposes of derived streams (first element of the purpose tuple). */
enum {
    FF_RNG_PURPOSE_DATA_ORDER = 1, /* permutation of training images */
    FF_RNG_PURPOSE_NEGATIVE = 2,   /* wrong labels of negative rows */
    FF_RNG_PURPOSE_INIT = 3,       /* layer init, a = layer index */
    FF_RNG_PURPOSE_EPOCH = 4,      /* batch order, a = layer, b = epoch */
    FF_RNG_PURPOSE_RECURRENT_NEGATIVE = 5, /* ff-recurrent negatives, a = epoch, b = batch */
    /* Recipe options; numbered apart from the trainers' purposes. */
    FF_RNG_PURPOSE_JITTER = 17,    /* input shifts, a = epoch, b = chunk */
    FF_RNG_PURPOSE_HEAD = 18,      /* softmax head's batch order, a = epoch */
    FF_RNG_PURPOSE_NEGATIVE_EPOCH = 19, /* first layer's fresh negatives, a = epoch, b = chunk */
};

/* Seeds rng from (seed, purpose, a, b); distinct tuples give independent
 * streams. */
void ff_rng_init(ff_rng_t *rng, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);

uint64_t ff_rng_next(ff_rng_t *rng);

/* @return a float uniform in [0, 1) with 24 random bits. */
float ff_rng_uniform(ff_rng_t *rng);

/* @return an integer uniform in [0, n), without modulo bias; n > 0. */
uint32_t ff_rng_below(ff_rng_t *rng, uint32_t n);

/* Fisher-Yates shuffle of a[0..n). */
void ff_rng_shuffle(ff_rng_t *rng, uint32_t *a, size_t n);

/* Writes the identity permutation of n into a, then shuffles it. */
void ff_rng_permutation(ff_rng_t *rng, uint32_t *a, size_t n);

#endif
