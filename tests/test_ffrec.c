/* test_ffrec: the recurrent FF network (ff-recurrent). Its kernels against
 * their _ref twins; a layer's local-loss gradient against central finite
 * differences of an independent double-precision forward; the bottom-up pass
 * and one time step of a tiny hand-set network against values worked out by
 * hand; negative sampling; and end to end on a Fashion-MNIST subset:
 * learning above chance, bit-identical reruns, memory accounting = model. */
#include "testutil.h"
#include "ffstream/config.h"
#include "ffstream/dense.h"
#include "ffstream/ffrec.h"
#include "ffstream/memmodel.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"
#include "ffstream/train.h"

static void fill(float *x, size_t n, ff_rng_t *rng, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ff_rng_uniform(rng);
}

static void test_kernels(void) {
    enum { R = 7, DA = 13, DB = 5 };
    ff_rng_t rng;
    ff_rng_init(&rng, 11, 99, 0, 0);
    float a[R * DA], b[R * DB], u[R * (DA + DB)], u_ref[R * (DA + DB)];
    fill(a, R * DA, &rng, -2, 2);
    fill(b, R * DB, &rng, -1, 3);
    double max_err = 0.0;
    for (int with_b = 0; with_b < 2; with_b++) {
        ff_dense_concat_normalized(u, a, with_b ? b : NULL, R, DA, DB);
        ff_dense_concat_normalized_ref(u_ref, a, with_b ? b : NULL, R, DA, DB);
        for (size_t i = 0; i < R * (DA + DB); i++)
            if (fabs(u[i] - u_ref[i]) > max_err) max_err = fabs(u[i] - u_ref[i]);
    }
    /* Each half of a row has unit norm. */
    double na = 0, nb = 0;
    for (int j = 0; j < DA; j++) na += (double)u[j] * u[j];
    for (int j = 0; j < DB; j++) nb += (double)u[DA + j] * u[DA + j];
    CHECK_NEAR(na, 1.0, 1e-6);
    CHECK_NEAR(nb, 1.0, 1e-6);

    float old[64], fresh[64], s[64], s_ref[64], d[64], d_ref[64];
    fill(old, 64, &rng, 0, 2);
    fill(fresh, 64, &rng, -1, 1);
    for (int i = 0; i < 64; i++) fresh[i] = fresh[i] > 0 ? fresh[i] : 0; /* a ReLU output */
    ff_dense_blend(s, old, fresh, 64, FF_FFREC_KEEP);
    ff_dense_blend_ref(s_ref, old, fresh, 64, FF_FFREC_KEEP);
    for (int i = 0; i < 64; i++)
        if (fabs(s[i] - s_ref[i]) > max_err) max_err = fabs(s[i] - s_ref[i]);
    ff_dense_blend(s, NULL, fresh, 64, FF_FFREC_KEEP);
    ff_dense_blend_ref(s_ref, NULL, fresh, 64, FF_FFREC_KEEP);
    for (int i = 0; i < 64; i++)
        if (fabs(s[i] - s_ref[i]) > max_err) max_err = fabs(s[i] - s_ref[i]);
    fill(d, 64, &rng, -1, 1);
    ff_dense_blend_backward_ref(d_ref, d, fresh, 64, FF_FFREC_KEEP);
    ff_dense_blend_backward(d, d, fresh, 64, FF_FFREC_KEEP); /* in place */
    for (int i = 0; i < 64; i++) {
        if (fabs(d[i] - d_ref[i]) > max_err) max_err = fabs(d[i] - d_ref[i]);
        CHECK(fresh[i] > 0 || d[i] == 0.0f);
    }
    printf("kernels: max |fast - ref| = %.3g (tolerance 1e-6)\n", max_err);
    CHECK(max_err <= 1e-6);
}

/* The layer's loss in double, written from the definition, independent of
 * the kernels: s = keep*old + (1-keep)*relu(W [n(below), n(above)] + b). */
static double loss_double(const double *params, const float *below, size_t db, const float *above,
                          size_t da, const float *old, size_t npos, size_t nneg, size_t out,
                          double theta, ff_goodness_t kind) {
    size_t in = db + da;
    const double *w = params, *bias = params + in * out;
    double keep = FF_FFREC_KEEP, lpos = 0, lneg = 0;
    double u[64];
    for (size_t r = 0; r < npos + nneg; r++) {
        double nb = 0, na = 0;
        for (size_t j = 0; j < db; j++) nb += (double)below[r * db + j] * below[r * db + j];
        for (size_t j = 0; j < da; j++) na += (double)above[r * da + j] * above[r * da + j];
        for (size_t j = 0; j < db; j++) u[j] = below[r * db + j] / (sqrt(nb) + 1e-8);
        for (size_t j = 0; j < da; j++) u[db + j] = above[r * da + j] / (sqrt(na) + 1e-8);
        double g = 0;
        for (size_t o = 0; o < out; o++) {
            double z = bias[o];
            for (size_t j = 0; j < in; j++) z += w[o * in + j] * u[j];
            double s = keep * old[r * out + o] + (1 - keep) * (z > 0 ? z : 0);
            g += s * s;
        }
        if (kind == FF_GOODNESS_MEAN) g /= (double)out;
        if (r < npos)
            lpos += log1p(exp(-(g - theta)));
        else
            lneg += log1p(exp(g - theta));
    }
    return lpos / (double)npos + lneg / (double)nneg;
}

static void test_gradient(ff_goodness_t kind) {
    enum { DB = 6, DA = 4, OUT = 5, NPOS = 3, NNEG = 3, R = NPOS + NNEG };
    ff_error_t err;
    ff_layer_t layer;
    CHECK(ff_layer_alloc(&layer, DB + DA, OUT, 1, &err) == 0);
    ff_rng_t rng;
    ff_rng_init(&rng, 5, 99, (uint64_t)kind, 1);
    ff_layer_init_params(&layer, &rng);
    for (size_t i = 0; i < layer.param_count; i++) layer.params[i] *= 3.0f; /* livelier ReLUs */
    float below[R * DB], above[R * DA], old[R * OUT], state[R * OUT];
    fill(below, R * DB, &rng, -1, 1);
    fill(above, R * DA, &rng, 0, 1);
    fill(old, R * OUT, &rng, 0, 1);
    /* A workspace shaped for this one layer. */
    ff_ffrec_workspace_t ws = {.max_rows = R, .max_in = DB + DA, .hidden = OUT};
    float u[R * (DB + DA)], fresh[R * OUT], dz[R * OUT], good[R];
    ws.u = u, ws.fresh = fresh, ws.dz = dz, ws.goodness = good;
    /* theta near the mean goodness keeps every sigmoid away from saturation. */
    ff_ffrec_layer_forward(state, &layer, &ws, below, DB, above, DA, old, R);
    ff_dense_goodness(good, state, R, OUT, kind);
    double theta = 0;
    for (int r = 0; r < R; r++) theta += good[r] / R;
    double loss = ff_ffrec_layer_loss_grad(state, &layer, &ws, below, DB, above, DA, old, NPOS,
                                           NNEG, (float)theta, kind);
    double p[(DB + DA) * OUT + OUT];
    for (size_t i = 0; i < layer.param_count; i++) p[i] = layer.params[i];
    double l0 = loss_double(p, below, DB, above, DA, old, NPOS, NNEG, OUT, theta, kind);
    CHECK_NEAR(loss, l0, 1e-5);
    double max_err = 0, max_grad = 0;
    const double h = 1e-5;
    for (size_t i = 0; i < layer.param_count; i++) {
        double keep_p = p[i];
        p[i] = keep_p + h;
        double lp = loss_double(p, below, DB, above, DA, old, NPOS, NNEG, OUT, theta, kind);
        p[i] = keep_p - h;
        double lm = loss_double(p, below, DB, above, DA, old, NPOS, NNEG, OUT, theta, kind);
        p[i] = keep_p;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - layer.grads[i]);
        if (e > max_err) max_err = e;
        if (fabs(fd) > max_grad) max_grad = fabs(fd);
    }
    printf("gradient (%s goodness): loss %.6f, max |analytic - finite difference| = %.3g, "
           "max |gradient| = %.3g (tolerance 1e-4)\n",
           kind == FF_GOODNESS_MEAN ? "mean" : "sum", loss, max_err, max_grad);
    CHECK(max_grad > 1e-3); /* the check compares something */
    CHECK(max_err < 1e-4);
    ff_layer_free(&layer);
}

/* Two hidden layers of 3 units, a 2-pixel image and 2 classes, weights set
 * by hand; every number below is worked out in the comments. */
static void test_hand_step(void) {
    ff_error_t err;
    ff_ffrec_net_t net;
    CHECK(ff_ffrec_net_alloc(&net, 2, 3, 2, 2, 1, 0, &err) == 0);
    /* Layer 0: input [n(image) (2), n(state of layer 1) (3)]. */
    const float w0[15] = {1,  0, 0, 0, 0,  /* z0 = image_0 */
                          0,  0, 1, 0, 0,  /* z1 = above_0 - 0.5 */
                          -1, 0, 0, 0, 0}; /* z2 = -image_0 */
    const float b0[3] = {0, -0.5f, 0};
    /* Layer 1: input [n(state of layer 0) (3), one-hot label (2)]. */
    const float w1[15] = {0, 1, 0, 0,  2,   /* z0 = below_1 + 2 label_1 */
                          0, 0, 1, -1, 0,   /* z1 = below_2 - label_0 + 0.1 */
                          0, 0, 0, 0,  -1}; /* z2 = -label_1 */
    const float b1[3] = {0, 0.1f, 0};
    memcpy(net.layer[0].weight, w0, sizeof w0);
    memcpy(net.layer[0].bias, b0, sizeof b0);
    memcpy(net.layer[1].weight, w1, sizeof w1);
    memcpy(net.layer[1].bias, b1, sizeof b1);
    ff_ffrec_workspace_t ws;
    CHECK(ff_ffrec_workspace_alloc(&ws, &net, 1, &err) == 0);
    ws.images[0] = 3, ws.images[1] = 4; /* n(image) = (0.6, 0.8) */
    uint8_t label = 1;
    ff_ffrec_set_labels(&ws, &label, 1);

    /* Bottom-up: layer 0 sees (0.6, 0.8, 0, 0, 0): z = (0.6, -0.5, -0.6),
     * state = 0.7 relu(z) = (0.42, 0, 0). Layer 1 sees n(0.42, 0, 0) =
     * (1, 0, 0) and no label: z = (0, 0.1, 0), state = (0, 0.07, 0). */
    ws.cur = 0;
    ff_ffrec_bottom_up(&net, &ws, 1);
    const float *s0 = ws.state[0], *s1 = ws.state[0] + 3;
    CHECK_NEAR(s0[0], 0.42, 1e-6);
    CHECK_NEAR(s0[1], 0.0, 1e-6);
    CHECK_NEAR(s0[2], 0.0, 1e-6);
    CHECK_NEAR(s1[0], 0.0, 1e-6);
    CHECK_NEAR(s1[1], 0.07, 1e-6);
    CHECK_NEAR(s1[2], 0.0, 1e-6);

    /* One step from hand-set states: layer 0 was (0, 3, 4), layer 1 (2, 0, 0).
     * Layer 0 sees (0.6, 0.8 | n(2,0,0) = 1, 0, 0): z = (0.6, 0.5, -0.6),
     *   state = 0.3 (0, 3, 4) + 0.7 (0.6, 0.5, 0) = (0.42, 1.25, 1.2),
     *   goodness = (0.1764 + 1.5625 + 1.44) / 3 = 1.0596333.
     * Layer 1 sees (n(0, 3, 4) = 0, 0.6, 0.8 | label 0, 1): z = (2.6, 0.9, -1),
     *   state = 0.3 (2, 0, 0) + 0.7 (2.6, 0.9, 0) = (2.42, 0.63, 0),
     *   goodness = (5.8564 + 0.3969) / 3 = 2.0844333.
     * Score with theta 2: (1.0596333 - 2) + (2.0844333 - 2) = -0.8559333. */
    ws.state[0][0] = 0, ws.state[0][1] = 3, ws.state[0][2] = 4;
    ws.state[0][3] = 2, ws.state[0][4] = 0, ws.state[0][5] = 0;
    float score = 0;
    ff_ffrec_time_step(&net, &ws, 1, 0, NULL, NULL, NULL, &score, 2.0f, FF_GOODNESS_MEAN);
    CHECK(ws.cur == 1);
    const float *n0 = ws.state[1], *n1 = ws.state[1] + 3;
    const double want0[3] = {0.42, 1.25, 1.2}, want1[3] = {2.42, 0.63, 0};
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(n0[j], want0[j], 1e-6);
        CHECK_NEAR(n1[j], want1[j], 1e-6);
    }
    CHECK_NEAR(score, -0.8559333, 1e-6);
    printf("hand step: states (%.4f %.4f %.4f) (%.4f %.4f %.4f), score %.7f\n", n0[0], n0[1], n0[2],
           n1[0], n1[1], n1[2], score);
    ff_ffrec_workspace_free(&ws);
    ff_ffrec_net_free(&net);
}

static void test_negatives(void) {
    /* True label 0 is never drawn; labels 1 and 2 come 1:3 (logits 0, ln 3). */
    enum { N = 20000 };
    static float logits[N * 3];
    static uint8_t labels[N], neg[N];
    for (int i = 0; i < N; i++) {
        logits[i * 3] = 50.0f, logits[i * 3 + 1] = 0.0f, logits[i * 3 + 2] = logf(3.0f);
        labels[i] = 0;
    }
    ff_rng_t rng;
    ff_rng_init(&rng, 3, FF_RNG_PURPOSE_RECURRENT_NEGATIVE, 0, 0);
    ff_ffrec_sample_negatives(neg, logits, labels, N, 3, &rng);
    int count[3] = {0};
    for (int i = 0; i < N; i++) count[neg[i]]++;
    printf("negatives: %d x label 0, %d x 1, %d x 2 (expected 0, 5000, 15000)\n", count[0],
           count[1], count[2]);
    CHECK(count[0] == 0);
    CHECK_NEAR((double)count[2] / N, 0.75, 0.015);
}

static ff_config_t subset_config(const char *data) {
    ff_config_t cfg;
    ff_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data);
    cfg.mode = FF_MODE_FF_RECURRENT;
    cfg.train_limit = 6000;
    cfg.test_limit = 1000;
    cfg.layers = 2;
    cfg.hidden = 128;
    cfg.batch = 500;
    cfg.epochs = 2;
    cfg.lr = 0.01;
    cfg.quiet = 1;
    cfg.threads = 1;
    return cfg;
}


static void test_learns(const char *data) {
    /* Measured 78.75% with seed 1 (seeds 2..4: 78.1%, 77.3%, 73.7%; chance is
     * 10%, ff-mem at the same size and lr 15.3%): 10k images, 2x256, batch
     * 500, lr 0.03, 3 epochs, about 6 s on one core. */
    ff_config_t cfg = subset_config(data);
    cfg.train_limit = 10000;
    cfg.test_limit = 2000;
    cfg.hidden = 256;
    cfg.lr = 0.03;
    cfg.epochs = 3;
    ff_result_t a;
    CHECK(check_train(&cfg, &a) == 0);
    printf("ff-recurrent 2x256, 10000 images, 3 epochs: accuracy %.4f, train %.2f s, eval %.2f s\n",
           a.test_accuracy, a.train_seconds, a.eval_seconds);
    for (uint32_t k = 0; k < a.layer_count; k++)
        printf("  layer %u (%u -> %u): loss %.4f, goodness pos %.3f neg %.3f, %.2f s\n", k + 1,
               a.per_layer[k].in, a.per_layer[k].out, a.per_layer[k].loss,
               a.per_layer[k].goodness_pos, a.per_layer[k].goodness_neg, a.per_layer[k].seconds);
    CHECK(a.test_accuracy > 0.65);
    /* 2 ln 2 = 1.386 is the loss of a layer that has learnt nothing. */
    for (uint32_t k = 0; k < a.layer_count; k++) {
        CHECK(a.per_layer[k].loss < 1.30);
        CHECK(a.per_layer[k].goodness_pos > a.per_layer[k].goodness_neg + 0.3);
    }
    ff_result_free(&a);
}

static void test_deterministic(const char *data) {
    /* Bit-identical rerun; another seed gives other weights. */
    ff_config_t cfg = subset_config(data);
    ff_result_t a, b, c;
    CHECK(check_train(&cfg, &a) == 0);
    CHECK(check_train(&cfg, &b) == 0);
    cfg.seed = 2;
    CHECK(check_train(&cfg, &c) == 0);
    printf("ff-recurrent 2x128: weights %016llx / %016llx, seed 2: %016llx\n",
           (unsigned long long)a.weights_hash, (unsigned long long)b.weights_hash,
           (unsigned long long)c.weights_hash);
    CHECK(a.weights_hash == b.weights_hash);
    CHECK(a.test_accuracy == b.test_accuracy);
    CHECK(a.per_layer[0].loss == b.per_layer[0].loss);
    CHECK(a.weights_hash != c.weights_hash);

    /* The accounting matches the model exactly for the trainer's own buffers. */
    uint64_t params = ff_ffrec_parameter_count(2, 128, 784, 10);
    CHECK(params == (784 + 128) * 128 + 128 + (128 + 10) * 128 + 128 + 128 * 10 + 10);
    CHECK(a.memory.peak[FF_MEM_WEIGHTS] == params * 4);
    CHECK(a.memory.peak[FF_MEM_GRADIENTS] == params * 4);
    CHECK(a.memory.peak[FF_MEM_OPTIMIZER] == params * 8);
    ff_memmodel_t m = ff_memmodel(&cfg, 784, 6000, 1000);
    printf("activations: accounted %llu bytes, model %llu\n",
           (unsigned long long)a.memory.peak[FF_MEM_ACTIVATIONS],
           (unsigned long long)m.activations);
    CHECK(m.parameters == params * 16);
    CHECK(a.memory.peak[FF_MEM_ACTIVATIONS] == m.activations);
    CHECK(ff_memmodel_network_parameters(&cfg, 784) == params);
    ff_result_free(&a), ff_result_free(&b), ff_result_free(&c);
}

int main(void) {
    ff_dense_set_threads(1); /* as fftrain --threads 1: sgemm rounding depends on it */
    test_kernels();
    test_gradient(FF_GOODNESS_MEAN);
    test_gradient(FF_GOODNESS_SUM);
    test_hand_step();
    test_negatives();
    const char *data = check_dataset_dir();
    test_learns(data);
    test_deterministic(data);
    return check_exit("test_ffrec");
}
