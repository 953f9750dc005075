/* test_dense: every dense kernel against its plain-loop twin, and the FF and
 * backprop gradients against central finite differences computed in double
 * precision by an independent forward pass written here. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ffstream/bpnet.h"
#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/rng.h"

static float *random_matrix(ff_rng_t *rng, size_t n, float scale) {
    float *m = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) m[i] = (2.0f * ff_rng_uniform(rng) - 1.0f) * scale;
    return m;
}


/* Shapes include non-multiples of BLAS block sizes and a single row. */
static const size_t shapes[][3] = {{1, 7, 5}, {13, 33, 17}, {64, 794, 100}, {37, 500, 129}};

static void test_kernels_against_ref(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 100, 0, 0);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = random_matrix(&rng, rows * in, 1.0f);
        float *w = random_matrix(&rng, out * in, 1.0f / sqrtf((float)in));
        float *b = random_matrix(&rng, out, 0.1f);
        float *xn = malloc(rows * in * sizeof(float)), *xn_ref = malloc(rows * in * sizeof(float));
        float *nr = malloc(rows * sizeof(float)), *nr_ref = malloc(rows * sizeof(float));
        ff_dense_normalize(xn, nr, x, rows, in);
        ff_dense_normalize_ref(xn_ref, nr_ref, x, rows, in);
        double e = check_max_abs_diff(xn, xn_ref, rows * in);
        printf("normalize %zux%zu: max error %.3g\n", rows, in, e);
        CHECK(e < 1e-6);
        CHECK(check_max_abs_diff(nr, nr_ref, rows) < 1e-4);

        float *y = malloc(rows * out * sizeof(float)), *y_ref = malloc(rows * out * sizeof(float));
        ff_dense_linear(y, xn, w, b, rows, in, out);
        ff_dense_linear_ref(y_ref, xn, w, b, rows, in, out);
        e = check_max_abs_diff(y, y_ref, rows * out);
        printf("linear %zux%zu->%zu: max error %.3g\n", rows, in, out, e);
        CHECK(e < 1e-5);
        ff_dense_forward(y, xn, w, b, rows, in, out);
        ff_dense_forward_ref(y_ref, xn, w, b, rows, in, out);
        e = check_max_abs_diff(y, y_ref, rows * out);
        CHECK(e < 1e-5);
        size_t zeros = 0;
        for (size_t i = 0; i < rows * out; i++) zeros += y[i] == 0.0f;
        CHECK(zeros > 0 && zeros < rows * out); /* the ReLU was exercised both ways */

        /* FF loss with an uneven positive/negative split. */
        size_t npos = rows / 2 + (rows > 1), nneg = rows - npos;
        float *dz = malloc(rows * out * sizeof(float)), *dz_ref = malloc(rows * out * sizeof(float));
        float *g = malloc(rows * sizeof(float)), *g_ref = malloc(rows * sizeof(float));
        for (int kind = 0; kind < 2; kind++) {
            double l = ff_dense_ff_loss(dz, g, y, npos, nneg, out, 0.05f, (ff_goodness_t)kind);
            double l_ref = ff_dense_ff_loss_ref(dz_ref, g_ref, y, npos, nneg, out, 0.05f,
                                                (ff_goodness_t)kind);
            printf("ff_loss (%s) rows %zu: loss %.6f vs %.6f, dz max error %.3g\n",
                   kind ? "sum" : "mean", rows, l, l_ref, check_max_abs_diff(dz, dz_ref, rows * out));
            CHECK_NEAR(l, l_ref, 1e-6 * (1 + fabs(l_ref)));
            CHECK(check_max_abs_diff(dz, dz_ref, rows * out) < 1e-7 + 1e-5 * fabs(l_ref));
            CHECK(check_max_abs_diff(g, g_ref, rows) < 1e-5);
        }

        float *dw = malloc(out * in * sizeof(float)), *dw_ref = malloc(out * in * sizeof(float));
        float *db = malloc(out * sizeof(float)), *db_ref = malloc(out * sizeof(float));
        float *dzr = random_matrix(&rng, rows * out, 1.0f);
        ff_dense_backward_params(dw, db, dzr, xn, rows, in, out);
        ff_dense_backward_params_ref(dw_ref, db_ref, dzr, xn, rows, in, out);
        e = check_max_abs_diff(dw, dw_ref, out * in);
        printf("backward_params: dW max error %.3g, db %.3g\n", e, check_max_abs_diff(db, db_ref, out));
        CHECK(e < 1e-4);
        CHECK(check_max_abs_diff(db, db_ref, out) < 1e-4);

        float *dx = malloc(rows * in * sizeof(float)), *dx_ref = malloc(rows * in * sizeof(float));
        ff_dense_backward_input(dx, dzr, w, rows, in, out);
        ff_dense_backward_input_ref(dx_ref, dzr, w, rows, in, out);
        e = check_max_abs_diff(dx, dx_ref, rows * in);
        printf("backward_input: max error %.3g\n", e);
        CHECK(e < 1e-4);

        free(x), free(w), free(b), free(xn), free(xn_ref), free(nr), free(nr_ref), free(y);
        free(y_ref), free(dz), free(dz_ref), free(g), free(g_ref), free(dw), free(dw_ref);
        free(db), free(db_ref), free(dzr), free(dx), free(dx_ref);
    }
}

static void test_scalar_functions(void) {
    CHECK_NEAR(ff_softplus(0.0), log(2.0), 1e-15);
    CHECK_NEAR(ff_softplus(50.0), 50.0, 1e-12);
    CHECK_NEAR(ff_softplus(-50.0), exp(-50.0), 1e-30);
    CHECK(isfinite(ff_softplus(1000.0)) && isfinite(ff_softplus(-1000.0)));
    CHECK_NEAR(ff_sigmoid(0.0), 0.5, 1e-15);
    CHECK_NEAR(ff_sigmoid(-800.0), 0.0, 1e-300);
    CHECK_NEAR(ff_sigmoid(800.0), 1.0, 1e-15);
    /* Zero rows normalise to zero rather than NaN. */
    float z[4] = {0}, zn[4], nz;
    ff_dense_normalize(zn, &nz, z, 1, 4);
    CHECK(zn[0] == 0.0f && nz == 0.0f);
}

/* FF loss of one layer in double: x rows (first npos positive), W [out,in]. */
static double ff_loss_double(const double *x, const double *w, const double *b, size_t rows,
                             size_t npos, size_t in, size_t out, double theta, int sum_kind) {
    double lp = 0, ln = 0;
    for (size_t i = 0; i < rows; i++) {
        double n = 0;
        for (size_t k = 0; k < in; k++) n += x[i * in + k] * x[i * in + k];
        n = sqrt(n) + 1e-8;
        double g = 0;
        for (size_t o = 0; o < out; o++) {
            double z = b[o];
            for (size_t k = 0; k < in; k++) z += w[o * in + k] * x[i * in + k] / n;
            if (z > 0) g += z * z;
        }
        if (!sum_kind) g /= (double)out;
        if (i < npos) lp += log1p(exp(-(g - theta)));
        else ln += log1p(exp(g - theta));
    }
    return lp / (double)npos + ln / (double)(rows - npos);
}

static void test_ff_gradient_finite_differences(void) {
    enum { ROWS = 6, NPOS = 3, IN = 9, OUT = 7 };
    ff_rng_t rng;
    ff_rng_init(&rng, 11, 100, 1, 0);
    for (int kind = 0; kind < 2; kind++) {
        float *x = random_matrix(&rng, ROWS * IN, 1.0f);
        float *w = random_matrix(&rng, OUT * IN, 1.0f);
        float *b = random_matrix(&rng, OUT, 0.5f);
        float xn[ROWS * IN], y[ROWS * OUT], dz[ROWS * OUT], g[ROWS], dw[OUT * IN], db[OUT];
        float theta = kind ? 1.0f : 0.15f;
        ff_dense_normalize(xn, NULL, x, ROWS, IN);
        ff_dense_forward(y, xn, w, b, ROWS, IN, OUT);
        ff_dense_ff_loss(dz, g, y, NPOS, ROWS - NPOS, OUT, theta, (ff_goodness_t)kind);
        ff_dense_backward_params(dw, db, dz, xn, ROWS, IN, OUT);
        double xd[ROWS * IN], wd[OUT * IN], bd[OUT];
        for (int i = 0; i < ROWS * IN; i++) xd[i] = x[i];
        for (int i = 0; i < OUT * IN; i++) wd[i] = w[i];
        for (int i = 0; i < OUT; i++) bd[i] = b[i];
        double h = 1e-6, worst = 0;
        for (int i = 0; i < OUT * IN + OUT; i++) {
            double *p = i < OUT * IN ? &wd[i] : &bd[i - OUT * IN];
            double save = *p;
            *p = save + h;
            double lp = ff_loss_double(xd, wd, bd, ROWS, NPOS, IN, OUT, theta, kind);
            *p = save - h;
            double lm = ff_loss_double(xd, wd, bd, ROWS, NPOS, IN, OUT, theta, kind);
            *p = save;
            double numeric = (lp - lm) / (2 * h);
            double analytic = i < OUT * IN ? dw[i] : db[i - OUT * IN];
            double err = fabs(numeric - analytic) / (1e-3 + fabs(numeric));
            if (err > worst) worst = err;
        }
        printf("FF gradient (%s goodness) vs finite differences: max relative error %.3g\n",
               kind ? "sum" : "mean", worst);
        CHECK(worst < 1e-3);
        free(x), free(w), free(b);
    }
}

/* Loss of the bp network in double, reading its float parameters, with one
 * parameter (layer, index) replaced by value. */
static double bp_loss_double(const ff_bpnet_t *net, const float *input, const uint8_t *labels,
                             size_t rows, uint32_t pl, size_t pi, double pv) {
    double total = 0;
    size_t in0 = net->layers[0].in;
    double *h = malloc(rows * 64 * sizeof(double)), *t = malloc(rows * 64 * sizeof(double));
    for (size_t i = 0; i < rows * in0; i++) h[i] = input[i];
    size_t width = in0;
    for (uint32_t l = 0; l <= net->layer_count; l++) {
        const ff_layer_t *L = &net->layers[l];
        for (size_t i = 0; i < rows; i++) {
            double n = 0;
            if (l < net->layer_count) {
                for (size_t k = 0; k < width; k++) n += h[i * width + k] * h[i * width + k];
                n = sqrt(n) + 1e-8;
            } else {
                n = 1.0; /* the head sees the activities as they are */
            }
            for (size_t o = 0; o < L->out; o++) {
                size_t bi = (size_t)L->in * L->out + o;
                double z = (l == pl && bi == pi) ? pv : L->params[bi];
                for (size_t k = 0; k < L->in; k++) {
                    size_t wi = o * L->in + k;
                    double wv = (l == pl && wi == pi) ? pv : L->params[wi];
                    z += wv * h[i * width + k] / n;
                }
                t[i * L->out + o] = (l < net->layer_count && z < 0) ? 0 : z;
            }
        }
        width = L->out;
        double *s = h;
        h = t;
        t = s;
    }
    for (size_t i = 0; i < rows; i++) {
        double m = h[i * 10];
        for (int c = 1; c < 10; c++) m = fmax(m, h[i * 10 + c]);
        double se = 0;
        for (int c = 0; c < 10; c++) se += exp(h[i * 10 + c] - m);
        total += log(se) + m - h[i * 10 + labels[i]];
    }
    free(h), free(t);
    return total / (double)rows;
}

static void test_bp_gradient_finite_differences(void) {
    enum { ROWS = 5, IN = 12, HIDDEN = 8 };
    ff_bpnet_t net;
    ff_error_t err;
    CHECK(ff_bpnet_alloc(&net, 2, IN, HIDDEN, ROWS, 3, &err) == 0);
    ff_rng_t rng;
    ff_rng_init(&rng, 5, 100, 2, 0);
    for (size_t i = 0; i < ROWS * IN; i++) net.input[i] = 2.0f * ff_rng_uniform(&rng) - 1.0f;
    float input[ROWS * IN];
    memcpy(input, net.input, sizeof input);
    uint8_t labels[ROWS] = {0, 3, 9, 3, 5};
    /* Larger weights so activities are not tiny and kinks are rare. */
    for (uint32_t l = 0; l <= 2; l++)
        for (size_t i = 0; i < net.layers[l].param_count; i++) net.layers[l].params[i] *= 3.0f;
    ff_bpnet_forward(&net, ROWS);
    ff_dense_softmax_xent(net.dlogits, net.logits, labels, ROWS, 10);
    ff_bpnet_backward(&net, ROWS);
    double h = 1e-6, worst = 0;
    for (uint32_t l = 0; l <= 2; l++) {
        const ff_layer_t *L = &net.layers[l];
        for (size_t i = 0; i < L->param_count; i++) {
            double lp = bp_loss_double(&net, input, labels, ROWS, l, i, L->params[i] + h);
            double lm = bp_loss_double(&net, input, labels, ROWS, l, i, L->params[i] - h);
            double numeric = (lp - lm) / (2 * h);
            double err_i = fabs(numeric - L->grads[i]) / (1e-3 + fabs(numeric));
            if (err_i > worst) worst = err_i;
        }
    }
    printf("bp gradient vs finite differences: max relative error %.3g\n", worst);
    CHECK(worst < 2e-3);
    ff_bpnet_free(&net);
}

static void test_softmax_xent(void) {
    float logits[2 * 3] = {1, 2, 3, 0, 0, 0};
    uint8_t labels[2] = {2, 1};
    float d[6];
    double l = ff_dense_softmax_xent(d, logits, labels, 2, 3);
    double l0 = log(exp(1) + exp(2) + exp(3)) - 3, l1 = log(3.0);
    CHECK_NEAR(l, (l0 + l1) / 2, 1e-6);
    CHECK_NEAR(d[2], (exp(3) / (exp(1) + exp(2) + exp(3)) - 1) / 2, 1e-7);
    CHECK_NEAR(d[3], (1.0 / 3) / 2, 1e-7);
}

/* Rows of an image under several labels: the grouped forward and the
 * paired gradient against the plain-loop kernels on the same rows, for
 * both layouts (a training chunk's positives then negatives, a test chunk's
 * candidates), with the label block after the image and none at all. */
static void test_grouped_against_ref(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 101, 0, 0);
    const size_t cases[][4] = {/* units, shared, label columns, out */
                               {1, 7, 3, 5}, {13, 33, 10, 17}, {64, 784, 10, 100}, {9, 40, 0, 31}};
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        const size_t units = cases[s][0], S = cases[s][1], in = S + cases[s][2], out = cases[s][3];
        /* Weights at the scale of a layer's initialisation (1/sqrt(in)). */
        float *w = random_matrix(&rng, out * in, 1.0f / sqrtf((float)in));
        float *b = random_matrix(&rng, out, 0.1f);
        for (int layout = 0; layout < 2; layout++) {
            ff_dense_groups_t g = {.units = units, .shared = S};
            if (layout == 0) g.copies = 2, g.unit_stride = 1, g.copy_stride = units;
            else g.copies = 10, g.unit_stride = 10, g.copy_stride = 1;
            const size_t rows = units * g.copies;
            float *img = random_matrix(&rng, units * S, 1.0f);
            float *x = random_matrix(&rng, rows * in, 1.0f); /* label columns differ per row */
            for (size_t u = 0; u < units; u++)
                for (size_t c = 0; c < g.copies; c++)
                    memcpy(x + (u * g.unit_stride + c * g.copy_stride) * in, img + u * S,
                           S * sizeof(float));
            CHECK(ff_dense_groups_hold(x, &g, in));
            float *y = malloc(rows * out * sizeof(float)), *y_ref = malloc(rows * out * sizeof(float));
            double flops = ff_dense_forward_grouped(y, x, w, b, &g, in, out);
            ff_dense_forward_ref(y_ref, x, w, b, rows, in, out);
            double e = check_max_abs_diff(y, y_ref, rows * out);
            printf("forward_grouped %zu units x %zu copies, %zu + %zu -> %zu: max error %.3g\n",
                   units, g.copies, S, in - S, out, e);
            CHECK(e < 1e-5);
            CHECK_NEAR(flops, 2.0 * out * (units * S + rows * (in - S)), 0.5);
            if (layout == 0) {
                float *dz = random_matrix(&rng, rows * out, 1.0f);
                float *dw = random_matrix(&rng, out * in, 1.0f), *db = random_matrix(&rng, out, 1.0f);
                float *dw_ref = malloc(out * in * sizeof(float)), *db_ref = malloc(out * sizeof(float));
                ff_dense_backward_params_ref(dw_ref, db_ref, dz, x, rows, in, out);
                float *dz_copy = malloc(rows * out * sizeof(float));
                memcpy(dz_copy, dz, rows * out * sizeof(float));
                ff_dense_backward_params_paired(dw, db, dz_copy, x, units, S, in, out, 0);
                e = check_max_abs_diff(dw, dw_ref, out * in);
                printf("backward_params_paired: dW max error %.3g, db %.3g\n", e,
                       check_max_abs_diff(db, db_ref, out));
                CHECK(e < 1e-4 && check_max_abs_diff(db, db_ref, out) < 1e-4);
                /* accumulate: a second piece adds its gradient */
                memcpy(dz_copy, dz, rows * out * sizeof(float));
                ff_dense_backward_params_paired(dw, db, dz_copy, x, units, S, in, out, 1);
                for (size_t i = 0; i < out * in; i++) dw_ref[i] *= 2.0f;
                for (size_t i = 0; i < out; i++) db_ref[i] *= 2.0f;
                CHECK(check_max_abs_diff(dw, dw_ref, out * in) < 2e-4);
                CHECK(check_max_abs_diff(db, db_ref, out) < 2e-4);
                free(dz), free(dw), free(db), free(dw_ref), free(db_ref), free(dz_copy);
            }
            /* One differing image value: the groups no longer hold. */
            x[(g.copy_stride * in) + S / 2] += 1.0f;
            CHECK(!ff_dense_groups_hold(x, &g, in));
            free(img), free(x), free(y), free(y_ref);
        }
        free(w), free(b);
    }
}

/* The goodness of rows whose columns come in tiles of any width (a layer
 * wider than memory) is bit for bit the whole rows' goodness, for 1 and 2
 * threads, and the plain loop's within rounding. */
static void test_goodness_in_tiles(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 0, 0, 0);
    const size_t rows = 400, out = 203; /* 2 threads: 2 parts of rows */
    float *y = random_matrix(&rng, rows * out, 2.0f), *whole = malloc(rows * sizeof(float));
    float *tiled = malloc(rows * sizeof(float)), *tile = malloc(rows * out * sizeof(float));
    double *acc = malloc(rows * FF_SUM_LANES * sizeof(double));
    for (int threads = 1; threads <= 2; threads++) {
        ff_dense_set_threads(threads);
        ff_dense_goodness(whole, y, rows, out, FF_GOODNESS_MEAN);
        const size_t widths[] = {1, 3, 8, 13, 100, 203};
        for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
            memset(acc, 0, rows * FF_SUM_LANES * sizeof(double));
            for (size_t first = 0; first < out; first += widths[w]) {
                size_t cols = first + widths[w] <= out ? widths[w] : out - first;
                for (size_t i = 0; i < rows; i++)
                    memcpy(tile + i * cols, y + i * out + first, cols * sizeof(float));
                ff_dense_goodness_add(acc, tile, rows, cols, first);
            }
            ff_dense_goodness_finish(tiled, acc, rows, out, FF_GOODNESS_MEAN);
            CHECKF(memcmp(whole, tiled, rows * sizeof(float)) == 0,
                   "tiles of %zu columns, %d threads: goodness differs", widths[w], threads);
        }
        for (size_t i = 0; i < rows; i++) {
            double g = 0.0;
            for (size_t j = 0; j < out; j++) g += (double)y[i * out + j] * y[i * out + j];
            CHECK(fabs(whole[i] - g / (double)out) <= 1e-6 * (g / (double)out));
        }
    }
    free(acc), free(tile), free(tiled), free(whole), free(y);
}

int main(void) {
    test_goodness_in_tiles();
    ff_dense_set_threads(2);
    test_grouped_against_ref();
    test_scalar_functions();
    test_kernels_against_ref();
    test_ff_gradient_finite_differences();
    test_bp_gradient_finite_differences();
    test_softmax_xent();
    return check_exit("test_dense");
}
