/* test_data: standardisation, label embedding (concat and overlay),
 * negative labels, permutation and the candidate rows of evaluation. */
#include "testutil.h"
#include "ffstream/data.h"
#include "ffstream/eval.h"
#include "ffstream/memstat.h"

static void test_standardize(void) {
    float images[2 * 3] = {0.0f, 0.5f, 1.0f, 1.0f, 0.5f, 0.0f};
    ff_dataset_t d = {.count = 2, .pixels = 3, .images = images};
    double mean, std;
    ff_data_stats(&d, &mean, &std);
    CHECK_NEAR(mean, 0.5, 1e-12);
    CHECK_NEAR(std, sqrt(1.0 / 6.0), 1e-7);
    ff_data_standardize(&d, mean, std);
    ff_data_stats(&d, &mean, &std);
    CHECK_NEAR(mean, 0.0, 1e-7);
    CHECK_NEAR(std, 1.0, 1e-6);
}

static void test_embed(void) {
    float image[12];
    for (int i = 0; i < 12; i++) image[i] = (float)i - 3.0f; /* max 8 at the end */
    float row[22];
    CHECK(ff_data_input_dim(12, FF_LABEL_CONCAT) == 22);
    CHECK(ff_data_input_dim(12, FF_LABEL_OVERLAY) == 12);
    ff_data_embed(row, image, 12, 3, FF_LABEL_CONCAT);
    for (int i = 0; i < 12; i++) CHECK(row[i] == image[i]);
    for (int c = 0; c < 10; c++) CHECK(row[12 + c] == (c == 3 ? 1.0f : 0.0f));
    ff_data_embed(row, image, 12, 7, FF_LABEL_OVERLAY);
    for (int c = 0; c < 10; c++) CHECK(row[c] == (c == 7 ? 8.0f : 0.0f));
    CHECK(row[10] == image[10] && row[11] == image[11]);

    float cands[2 * 10 * 22];
    float two[24];
    for (int i = 0; i < 24; i++) two[i] = (float)i;
    ff_eval_embed_candidates(cands, two, 12, 2, FF_LABEL_CONCAT);
    /* Row i*10 + c is image i with label c. */
    CHECK(cands[(1 * 10 + 4) * 22 + 0] == 12.0f);
    CHECK(cands[(1 * 10 + 4) * 22 + 12 + 4] == 1.0f);
    CHECK(cands[(0 * 10 + 9) * 22 + 12 + 9] == 1.0f && cands[(0 * 10 + 9) * 22 + 12 + 8] == 0.0f);
}

static void test_negative_labels(void) {
    enum { N = 45000 };
    static uint8_t labels[N], neg[N];
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 10);
    ff_rng_t rng;
    ff_rng_init(&rng, 9, FF_RNG_PURPOSE_NEGATIVE, 0, 0);
    ff_data_negative_labels(neg, labels, N, &rng);
    int counts[10][10] = {{0}};
    for (int i = 0; i < N; i++) {
        CHECK(neg[i] < 10 && neg[i] != labels[i]);
        counts[labels[i]][neg[i] % 10]++;
    }
    /* Each wrong label about 500 times per true label. */
    for (int t = 0; t < 10; t++)
        for (int c = 0; c < 10; c++)
            if (c != t) CHECKF(counts[t][c] > 380 && counts[t][c] < 620, "%d->%d: %d", t, c, counts[t][c]);
}

static void test_permute_and_score(void) {
    ff_dataset_t d = {.count = 3, .pixels = 2};
    d.images = ff_mem_alloc(FF_MEM_DATASET, 6 * sizeof(float));
    d.labels = ff_mem_alloc(FF_MEM_DATASET, 3);
    for (int i = 0; i < 6; i++) d.images[i] = (float)i;
    for (int i = 0; i < 3; i++) d.labels[i] = (uint8_t)i;
    uint32_t perm[3] = {2, 0, 1};
    ff_error_t err;
    CHECK(ff_data_permute(&d, perm, &err) == 0);
    CHECK(d.labels[0] == 2 && d.images[0] == 4.0f && d.images[1] == 5.0f && d.labels[2] == 1);
    ff_data_free(&d);

    /* A random permutation of many rows (several cycles) applied in place. */
    enum { N = 500, PX = 3 };
    d.count = N, d.pixels = PX;
    d.images = ff_mem_alloc(FF_MEM_DATASET, N * PX * sizeof(float));
    d.labels = ff_mem_alloc(FF_MEM_DATASET, N);
    for (int i = 0; i < N * PX; i++) d.images[i] = (float)i;
    for (int i = 0; i < N; i++) d.labels[i] = (uint8_t)(i % 10);
    static uint32_t big[N];
    ff_rng_t rng;
    ff_rng_init(&rng, 4, 100, 0, 0);
    ff_rng_permutation(&rng, big, N);
    CHECK(ff_data_permute(&d, big, &err) == 0);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        wrong += d.labels[i] != big[i] % 10;
        for (int j = 0; j < PX; j++) wrong += d.images[i * PX + j] != (float)(big[i] * PX + j);
    }
    CHECK(wrong == 0);
    ff_data_free(&d);

    float scores[2 * 10] = {0};
    float good[2 * 10];
    for (int i = 0; i < 20; i++) good[i] = 0.0f;
    good[3] = 5.0f;      /* image 0 -> label 3 */
    good[10 + 9] = 1.0f; /* image 1 -> label 9 */
    ff_eval_accumulate(scores, good, 2, 2.0f);
    CHECK(scores[3] == 3.0f && scores[0] == -2.0f);
    uint8_t labels[2] = {3, 8};
    CHECK(ff_eval_correct(scores, labels, 2, 10) == 1);
    CHECK(ff_eval_layer_counts(0, 1) && !ff_eval_layer_counts(0, 3) && ff_eval_layer_counts(2, 3));
}

int main(void) {
    test_standardize();
    test_embed();
    test_negative_labels();
    test_permute_and_score();
    return check_exit("test_data");
}
