/* test_recipe: the options of the recipes. Each FF loss against a
 * value computed by hand and its plain-loop twin, the learning-rate schedule
 * against hand-computed rates, the softmax read-out's gradient against
 * central finite differences, and the label scale, neutral label and input
 * jitter of the data module. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/rng.h"
#include "ffstream/step.h"


/* One positive row y = (1, 2) and one negative row y = (1, 0), sum goodness:
 * g_pos = 5, g_neg = 1, theta = 2, so logit_pos = 3 and logit_neg = -1.
 * Expected values worked out by hand (then to 9 digits with a calculator):
 *   softplus:      log(1 + e^-3) + log(1 + e^-1)            = 0.361849039
 *   linear:        -3 + (-1)                                 = -4
 *   probabilistic: -log(s(3) + 1e-6) - log(1 - s(-1) + 1e-6) = 0.361846621
 *   symba (a=0.5): log(1 + e^(-0.5 (5 - 1)))                 = 0.126928011
 * and dloss/dg of the positive row: -s(-3) = -0.047425873 (softplus),
 * -1 (linear), -a s(-a (5 - 1)) = -0.059601461 (symba); dz = 2 y dloss/dg. */
static void test_losses_by_hand(void) {
    const float y[4] = {1.0f, 2.0f, 1.0f, 0.0f};
    struct {
        ff_loss_t kind;
        double loss, dgood_pos;
    } cases[] = {
        {FF_LOSS_SOFTPLUS, 0.3618490390919649, -0.04742587317756678},
        {FF_LOSS_LINEAR, -4.0, -1.0},
        {FF_LOSS_PROBABILISTIC, 0.3618466214269417, NAN},
        {FF_LOSS_SYMBA, 0.1269280110429725, -0.05960146101105877},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ff_loss_params_t p = {
            .kind = cases[c].kind, .goodness = FF_GOODNESS_SUM, .theta = 2.0f, .alpha = 0.5f};
        float dz[4], dz_ref[4], good[2], good_ref[2];
        double loss = ff_dense_local_loss(dz, good, y, 1, 1, 2, &p);
        double loss_ref = ff_dense_local_loss_ref(dz_ref, good_ref, y, 1, 1, 2, &p);
        printf("loss %s: %.9f (by hand %.9f, ref %.9f)\n", ff_loss_name(cases[c].kind), loss,
               cases[c].loss, loss_ref);
        CHECK_NEAR(loss, cases[c].loss, 1e-6);
        CHECK_NEAR(loss_ref, cases[c].loss, 1e-6);
        CHECK_NEAR(good[0], 5.0, 1e-6);
        CHECK_NEAR(good[1], 1.0, 1e-6);
        if (!isnan(cases[c].dgood_pos)) {
            CHECK_NEAR(dz[0], 2.0 * 1.0 * cases[c].dgood_pos, 1e-6);
            CHECK_NEAR(dz[1], 2.0 * 2.0 * cases[c].dgood_pos, 1e-6);
        }
        CHECK(dz[3] == 0.0f); /* the ReLU is off there */
        CHECK(check_max_abs_diff(dz, dz_ref, 4) < 1e-6);
    }
    /* Symba pulls the pair apart symmetrically. */
    ff_loss_params_t p = {.kind = FF_LOSS_SYMBA, .goodness = FF_GOODNESS_SUM, .alpha = 0.5f};
    float dz[4], good[2];
    ff_dense_local_loss(dz, good, y, 1, 1, 2, &p);
    CHECK_NEAR(dz[2], -dz[0], 1e-7);
    /* Mean goodness, softplus: g = 2.5 and 0.5, loss log(1+e^-0.5) + log(1+e^-1.5). */
    p = (ff_loss_params_t){.kind = FF_LOSS_SOFTPLUS, .goodness = FF_GOODNESS_MEAN, .theta = 2.0f};
    CHECK_NEAR(ff_dense_local_loss(dz, good, y, 1, 1, 2, &p), 0.6754902621628591, 1e-6);
    /* With the softplus loss the general kernel is the original one, bit for bit. */
    float dz_old[4], good_old[2];
    ff_dense_ff_loss(dz_old, good_old, y, 1, 1, 2, 2.0f, FF_GOODNESS_MEAN);
    CHECK(memcmp(dz, dz_old, sizeof dz) == 0);
}

/* Every loss, fast against the plain-loop twin, on random batches, and its
 * gradient against central finite differences of the twin's loss in y. */
static void test_losses_against_ref(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 100, 0, 0);
    const size_t npos = 9, out = 13, rows = 2 * npos;
    float *y = malloc(rows * out * sizeof(float)), *dz = malloc(rows * out * sizeof(float));
    float *dz_ref = malloc(rows * out * sizeof(float)), *good = malloc(rows * sizeof(float));
    float *good_ref = malloc(rows * sizeof(float)), *scratch = malloc(rows * out * sizeof(float));
    for (size_t i = 0; i < rows * out; i++) {
        float u = 2.0f * ff_rng_uniform(&rng) - 1.0f;
        y[i] = u > 0 ? u : 0.0f;
    }
    for (int kind = FF_LOSS_SOFTPLUS; kind <= FF_LOSS_SYMBA; kind++) {
        for (int gk = 0; gk < 2; gk++) {
            ff_loss_params_t p = {.kind = (ff_loss_t)kind,
                                  .goodness = (ff_goodness_t)gk,
                                  .theta = gk ? 2.0f : 0.15f,
                                  .alpha = 3.0f};
            double loss = ff_dense_local_loss(dz, good, y, npos, npos, out, &p);
            double loss_ref = ff_dense_local_loss_ref(dz_ref, good_ref, y, npos, npos, out, &p);
            double err = check_max_abs_diff(dz, dz_ref, rows * out);
            /* Finite differences in y where the ReLU is on. */
            double fd_err = 0.0, h = 1e-3;
            for (size_t i = 0; i < rows * out; i += 7) {
                if (!(y[i] > 0.01f)) continue;
                float keep = y[i];
                y[i] = keep + (float)h;
                double up = ff_dense_local_loss_ref(scratch, good_ref, y, npos, npos, out, &p);
                y[i] = keep - (float)h;
                double down = ff_dense_local_loss_ref(scratch, good_ref, y, npos, npos, out, &p);
                y[i] = keep;
                double fd = (up - down) / (2.0 * h), d = fabs(fd - dz_ref[i]);
                if (d > fd_err) fd_err = d;
            }
            printf("loss %s/%s: |loss - ref| %.2e, max |dz - ref| %.2e, max |dz - fd| %.2e\n",
                   ff_loss_name(p.kind), gk ? "sum" : "mean", fabs(loss - loss_ref), err, fd_err);
            CHECK(fabs(loss - loss_ref) < 1e-5);
            CHECK(err < 1e-6);
            CHECK(fd_err < 1e-3);
        }
    }
    free(scratch);
    free(good_ref);
    free(good);
    free(dz_ref);
    free(dz);
    free(y);
}

/* Linear decay over the second half of 4 epochs x 10 steps. */
static void test_lr_schedule(void) {
    CHECK(ff_step_lr(0.01, FF_LR_CONSTANT, 0.5, 3, 4, 9, 10) == 0.01);
    CHECK(ff_step_lr(0.01, FF_LR_LINEAR_DECAY, 0.5, 1, 4, 5, 10) == 0.01);           /* t = 15/40 */
    CHECK_NEAR(ff_step_lr(0.01, FF_LR_LINEAR_DECAY, 0.5, 2, 4, 0, 10), 0.01, 1e-15); /* t = 1/2 */
    CHECK_NEAR(ff_step_lr(0.01, FF_LR_LINEAR_DECAY, 0.5, 3, 4, 0, 10), 0.005, 1e-15);  /* t = 3/4 */
    CHECK_NEAR(ff_step_lr(0.01, FF_LR_LINEAR_DECAY, 0.5, 3, 4, 9, 10), 0.0005, 1e-15); /* 39/40 */
    CHECK_NEAR(ff_step_lr(1.0, FF_LR_LINEAR_DECAY, 0.0, 0, 2, 1, 4), 0.875, 1e-15);    /* t = 1/8 */
    /* Every step's rate is positive and never increases. */
    double prev = 1.0;
    for (uint64_t e = 0; e < 3; e++)
        for (uint64_t b = 0; b < 7; b++) {
            double lr = ff_step_lr(1.0, FF_LR_LINEAR_DECAY, 0.3, e, 3, b, 7);
            CHECK(lr > 0.0 && lr <= prev);
            prev = lr;
        }
}

/* The softmax read-out in double precision, written here independently. */
static double head_loss_double(const float *x, const float *w, const float *b,
                               const uint8_t *labels, size_t rows, size_t in, size_t classes) {
    double loss = 0.0;
    for (size_t i = 0; i < rows; i++) {
        double z[16], max = -1e300, sum = 0.0;
        for (size_t c = 0; c < classes; c++) {
            z[c] = b[c];
            for (size_t k = 0; k < in; k++) z[c] += (double)w[c * in + k] * x[i * in + k];
            if (z[c] > max) max = z[c];
        }
        for (size_t c = 0; c < classes; c++) sum += exp(z[c] - max);
        loss += max + log(sum) - z[labels[i]];
    }
    return loss / (double)rows;
}

static void test_softmax_head_gradient(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 11, 100, 1, 0);
    const size_t rows = 6, in = 23, classes = FF_CLASSES;
    float x[6 * 23], w[10 * 23], b[10], dw[10 * 23], db[10], dw_ref[10 * 23], db_ref[10];
    float scratch[2 * 6 * 10];
    uint8_t labels[6];
    for (size_t i = 0; i < rows * in; i++) x[i] = 2.0f * ff_rng_uniform(&rng) - 1.0f;
    for (size_t i = 0; i < classes * in; i++) w[i] = 0.5f * (2.0f * ff_rng_uniform(&rng) - 1.0f);
    for (size_t i = 0; i < classes; i++) b[i] = 0.1f * (2.0f * ff_rng_uniform(&rng) - 1.0f);
    for (size_t i = 0; i < rows; i++) labels[i] = (uint8_t)ff_rng_below(&rng, FF_CLASSES);
    double loss = ff_dense_softmax_head(dw, db, scratch, x, w, b, labels, rows, in, classes);
    double loss_ref = ff_dense_softmax_head_ref(dw_ref, db_ref, x, w, b, labels, rows, in, classes);
    double loss_here = head_loss_double(x, w, b, labels, rows, in, classes);
    double h = 1e-3, fd_err = 0.0;
    for (size_t i = 0; i < classes * in + classes; i++) {
        float *p = i < classes * in ? &w[i] : &b[i - classes * in];
        float g = i < classes * in ? dw[i] : db[i - classes * in];
        float keep = *p;
        *p = keep + (float)h;
        double up = head_loss_double(x, w, b, labels, rows, in, classes);
        *p = keep - (float)h;
        double down = head_loss_double(x, w, b, labels, rows, in, classes);
        *p = keep;
        double d = fabs((up - down) / (2.0 * h) - g);
        if (d > fd_err) fd_err = d;
    }
    double ref_err = check_max_abs_diff(dw, dw_ref, classes * in);
    double bias_err = check_max_abs_diff(db, db_ref, classes);
    printf("softmax head: loss %.6f (ref %.6f, here %.6f), max |grad - fd| %.2e, "
           "max |grad - ref| %.2e / %.2e\n",
           loss, loss_ref, loss_here, fd_err, ref_err, bias_err);
    CHECK_NEAR(loss, loss_here, 1e-5);
    CHECK_NEAR(loss_ref, loss_here, 1e-9);
    CHECK(fd_err < 2e-4);
    CHECK(ref_err < 1e-6 && bias_err < 1e-6);
}

static void test_label_scale_and_neutral(void) {
    float image[12] = {0.5f, -1, 3.0f, 0, 0, 0, 0, 0, 0, 0, 0, 0.25f}, row[22];
    ff_data_embed_scaled(row, image, 12, 4, FF_LABEL_CONCAT, 2.5f);
    CHECK(row[12 + 4] == 2.5f && row[12 + 3] == 0.0f && row[2] == 3.0f);
    ff_data_embed_scaled(row, image, 12, FF_LABEL_NEUTRAL, FF_LABEL_CONCAT, 2.0f);
    for (int c = 0; c < FF_CLASSES; c++) CHECK_NEAR(row[12 + c], 0.2, 1e-7);
    ff_data_embed_scaled(row, image, 12, 7, FF_LABEL_OVERLAY, 2.0f);
    CHECK(row[7] == 6.0f && row[0] == 0.0f && row[11] == 0.25f); /* 2 x the max 3 */
    ff_data_embed_scaled(row, image, 12, FF_LABEL_NEUTRAL, FF_LABEL_OVERLAY, 1.0f);
    CHECK_NEAR(row[3], 0.3, 1e-7);
    /* Scale 1 is the original embedding. */
    float old[22];
    ff_data_embed(old, image, 12, 4, FF_LABEL_OVERLAY);
    ff_data_embed_scaled(row, image, 12, 4, FF_LABEL_OVERLAY, 1.0f);
    CHECK(memcmp(old, row, 12 * sizeof(float)) == 0);
}

static void test_jitter(void) {
    /* A 4x4 image with the label appended (concat); background -1. */
    float row[26], shifted[26];
    for (int i = 0; i < 16; i++) row[i] = (float)i;
    row[0] = -1.0f;
    for (int c = 0; c < 10; c++) row[16 + c] = c == 3 ? 1.0f : 0.0f;
    memcpy(shifted, row, sizeof row);
    ff_data_shift_row(shifted, 4, 4, FF_LABEL_CONCAT, 1, 2); /* right 1, down 2 */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            int sy = y - 2, sx = x - 1;
            float want = sy >= 0 && sx >= 0 ? row[sy * 4 + sx] : -1.0f;
            CHECKF(shifted[y * 4 + x] == want, "pixel (%d,%d) %g, expected %g", x, y,
                   shifted[y * 4 + x], want);
        }
    CHECK(memcmp(shifted + 16, row + 16, 10 * sizeof(float)) == 0); /* the label stays */
    memcpy(shifted, row, sizeof row);
    ff_data_shift_row(shifted, 4, 4, FF_LABEL_CONCAT, -1, -1);
    CHECK(shifted[0] == row[5] && shifted[3] == -1.0f && shifted[15] == -1.0f);
    /* Overlay: a 3x5 image whose first 10 pixels are the label; the label
     * stays, the last row (shifted up) is refilled with the background (the
     * smallest image pixel, 1) and the label pixels never travel. */
    float ov[15] = {0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
    ff_data_shift_row(ov, 3, 5, FF_LABEL_OVERLAY, 0, -1);
    CHECK(ov[2] == 9.0f && ov[5] == 0.0f && ov[10] == 1.0f && ov[14] == 1.0f);
    float ov2[15] = {0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5};
    ff_data_shift_row(ov2, 3, 5, FF_LABEL_OVERLAY, 0, 1); /* down: row 1 comes from the label row */
    CHECK(ov2[2] == 9.0f && ov2[12] == 1.0f);             /* the cleared label pixel, not 9 */
    /* A batch: pair i shifted alike, the same shifts for the same (seed,
     * epoch, chunk), other shifts for another epoch. */
    const size_t w = 26, n = 8;
    float a[2 * 8 * 26], b[2 * 8 * 26];
    for (size_t i = 0; i < 2 * n; i++) memcpy(a + i * w, row, sizeof row);
    memcpy(b, a, sizeof a);
    ff_data_jitter_batch(a, n, w, 4, 4, FF_LABEL_CONCAT, 2, 5, 1, 3, 0);
    ff_data_jitter_batch(b, n, w, 4, 4, FF_LABEL_CONCAT, 2, 5, 1, 3, 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    for (size_t i = 0; i < n; i++) CHECK(memcmp(a + i * w, a + (n + i) * w, sizeof row) == 0);
    int moved = 0;
    for (size_t i = 0; i < n; i++) moved += memcmp(a + i * w, row, sizeof row) != 0;
    CHECK(moved > 0);
    for (size_t i = 0; i < 2 * n; i++) memcpy(b + i * w, row, sizeof row);
    ff_data_jitter_batch(b, n, w, 4, 4, FF_LABEL_CONCAT, 2, 5, 2, 3, 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    /* The same batch in two pieces of 3 and 5 images: the same shifts. */
    for (size_t i = 0; i < 2 * n; i++) memcpy(b + i * w, row, sizeof row);
    float piece[2 * 5 * 26];
    for (size_t part = 0; part < 2; part++) {
        size_t first = part == 0 ? 0 : 3, count = part == 0 ? 3 : 5;
        for (size_t i = 0; i < 2 * count; i++) memcpy(piece + i * w, row, sizeof row);
        ff_data_jitter_batch(piece, count, w, 4, 4, FF_LABEL_CONCAT, 2, 5, 1, 3, first);
        for (size_t i = 0; i < count; i++) {
            memcpy(b + (first + i) * w, piece + i * w, sizeof row);
            memcpy(b + (n + first + i) * w, piece + (count + i) * w, sizeof row);
        }
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static void test_recipes(void) {
    ff_config_t cfg;
    ff_error_t err;
    ff_config_defaults(&cfg);
    uint64_t original = ff_config_fingerprint(&cfg);
    char *argv1[] = {"fftrain", "--lr", "0.5", "--recipe", "best", NULL};
    CHECK(ff_config_parse(&cfg, 5, argv1, &err) == 0);
    CHECK(cfg.recipe == FF_RECIPE_BEST && cfg.eval_softmax == 1);
    CHECK(cfg.lr == 0.5); /* a flag overrides the preset wherever it stands */
    CHECK(ff_config_fingerprint(&cfg) != original);
    ff_config_defaults(&cfg);
    char *argv2[] = {"fftrain", "--recipe", "fastest", NULL};
    CHECK(ff_config_parse(&cfg, 3, argv2, &err) == -1 && strstr(err.msg, "--recipe") != NULL);
    ff_config_defaults(&cfg);
    char *argv3[] = {"fftrain", "--loss", "hinge", NULL};
    CHECK(ff_config_parse(&cfg, 3, argv3, &err) == -1 && strstr(err.msg, "--loss") != NULL);
    /* Each result-affecting option changes the fingerprint. */
    ff_config_defaults(&cfg);
    cfg.jitter = 1;
    CHECK(ff_config_fingerprint(&cfg) != original);
    ff_config_defaults(&cfg);
    cfg.weight_decay = 1e-4;
    CHECK(ff_config_fingerprint(&cfg) != original);
    ff_config_defaults(&cfg);
    CHECK(ff_config_fingerprint(&cfg) == original);
    CHECK(ff_config_layer_theta(&cfg, 100) == 2.0f);
    cfg.theta_per_unit = 1;
    CHECK(ff_config_layer_theta(&cfg, 100) == 200.0f);
}

int main(void) {
    ff_dense_set_threads(1);
    test_losses_by_hand();
    test_losses_against_ref();
    test_lr_schedule();
    test_softmax_head_gradient();
    test_label_scale_and_neutral();
    test_jitter();
    test_recipes();
    return check_exit("test_recipe");
}
