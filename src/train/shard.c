/* shard.c: a rank's share of the data (see shard.h). */
#include "ffstream/shard.h"

#include <string.h>

ff_shard_t ff_shard_make(const ff_config_t *cfg, int rank, int ranks, uint64_t train,
                         uint64_t test) {
    ff_shard_t s = {.rank = rank, .ranks = ranks, .train = train, .test = test,
                    .batch_images = cfg->batch / 2};
    return s;
}

uint64_t ff_shard_batch_images(const ff_shard_t *s, uint64_t b) {
    uint64_t first = b * s->batch_images;
    if (first >= s->train) return 0;
    return s->train - first < s->batch_images ? s->train - first : s->batch_images;
}

void ff_shard_share(const ff_shard_t *s, uint64_t b, uint64_t *offset, uint64_t *count) {
    const uint64_t m = ff_shard_batch_images(s, b), P = (uint64_t)s->ranks, r = (uint64_t)s->rank;
    *offset = m * r / P;
    *count = m * (r + 1) / P - *offset;
}

void ff_shard_test_range(const ff_shard_t *s, uint64_t *first, uint64_t *count) {
    const uint64_t P = (uint64_t)s->ranks, r = (uint64_t)s->rank;
    *first = s->test * r / P;
    *count = s->test * (r + 1) / P - *first;
}

int ff_shard_check(const ff_shard_t *s, ff_error_t *err) {
    if (s->ranks <= 1) return 0;
    const uint64_t P = (uint64_t)s->ranks;
    if (s->batch_images % P != 0)
        return ff_error_set(err, "--batch %llu: its %llu images per batch do not split evenly "
                            "over %d ranks; use a batch of 2 x a multiple of %d images",
                            (unsigned long long)(2 * s->batch_images),
                            (unsigned long long)s->batch_images, s->ranks, s->ranks);
    const uint64_t batches = (s->train + s->batch_images - 1) / s->batch_images;
    const uint64_t last = ff_shard_batch_images(s, batches - 1);
    if (last < P)
        return ff_error_set(err, "the last batch has %llu image(s), fewer than the %d ranks: "
                            "choose --train-limit or --batch so every rank gets one",
                            (unsigned long long)last, s->ranks);
    if (s->test < P)
        return ff_error_set(err, "%llu test image(s) for %d ranks: every rank needs one "
                            "(--test-limit)", (unsigned long long)s->test, s->ranks);
    return 0;
}

/* Moves the kept images to the front, in order (kept[i] >= i). */
static void keep(ff_dataset_t *d, uint8_t *extra, uint64_t from, uint64_t count, uint64_t to) {
    const size_t px = d->pixels;
    if (from != to) {
        memmove(d->images + to * px, d->images + from * px, count * px * sizeof(float));
        memmove(d->labels + to, d->labels + from, count);
        if (extra != NULL) memmove(extra + to, extra + from, count);
    }
}

int ff_shard_apply(const ff_shard_t *s, ff_dataset_t *train, uint8_t *neg, ff_dataset_t *test,
                   ff_error_t *err) {
    if (s->ranks <= 1) return 0;
    if (train->count != s->train || test->count != s->test)
        return ff_error_set(err, "shard: %zu training and %zu test images, expected %llu and %llu",
                            train->count, test->count, (unsigned long long)s->train,
                            (unsigned long long)s->test);
    const uint64_t batches = (s->train + s->batch_images - 1) / s->batch_images;
    uint64_t kept = 0;
    for (uint64_t b = 0; b < batches; b++) {
        uint64_t offset, count;
        ff_shard_share(s, b, &offset, &count);
        keep(train, neg, b * s->batch_images + offset, count, kept);
        kept += count;
    }
    train->count = kept;
    uint64_t first, count;
    ff_shard_test_range(s, &first, &count);
    keep(test, NULL, first, count, 0);
    test->count = count;
    return 0;
}
