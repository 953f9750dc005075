/* test_adam: Adam against values worked out by hand with PyTorch's formula
 * (m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)),
 * with and without weight decay, and the float path against the double one. */
#include "testutil.h"
#include "ffstream/adam.h"
#include "ffstream/rng.h"

static void test_hand_values(void) {
    /* lr 0.1, betas (0.9, 0.999), eps 1e-8, p0 = 1, gradients 0.5, -0.25, 2.
     * Step 1: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25,
     *         p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002.
     * Step 2: m = 0.02, v = 0.00031225, p = 0.8733662987.
     * Step 3: m = 0.218, v = 0.00431193775, p = 0.8063015345. */
    ff_adam_params_t p = ff_adam_defaults(0.1);
    float param = 1.0f, m = 0.0f, v = 0.0f;
    const float grads[3] = {0.5f, -0.25f, 2.0f};
    const double want_p[3] = {0.9000000019999999, 0.8733662987078462, 0.8063015345291529};
    const double want_m[3] = {0.05, 0.02, 0.218};
    const double want_v[3] = {0.00025, 0.00031225, 0.00431193775};
    for (int t = 0; t < 3; t++) {
        ff_adam_update(&param, &m, &v, &grads[t], 1, &p, t + 1);
        CHECK_NEAR(param, want_p[t], 1e-6);
        CHECK_NEAR(m, want_m[t], 1e-7);
        CHECK_NEAR(v, want_v[t], 1e-9);
    }
    /* Weight decay 0.01, lr 0.01, p0 = -2, gradient 0.3 twice:
     * g1 = 0.3 + 0.01 * -2 = 0.28 -> p = -2.0099999996;
     * g2 = 0.3 + 0.01 * p1        -> p = -2.0199999060. */
    p = ff_adam_defaults(0.01);
    p.weight_decay = 0.01;
    param = -2.0f, m = 0.0f, v = 0.0f;
    const float g = 0.3f;
    ff_adam_update(&param, &m, &v, &g, 1, &p, 1);
    CHECK_NEAR(param, -2.009999999642857, 1e-6);
    ff_adam_update(&param, &m, &v, &g, 1, &p, 2);
    CHECK_NEAR(param, -2.0199999060178695, 1e-6);
}

static void test_float_matches_double(void) {
    enum { N = 1000 };
    static float p1[N], m1[N], v1[N], p2[N], m2[N], v2[N], g[N];
    ff_rng_t rng;
    ff_rng_init(&rng, 3, 100, 3, 0);
    for (int i = 0; i < N; i++) p1[i] = p2[i] = ff_rng_uniform(&rng) - 0.5f;
    ff_adam_params_t p = ff_adam_defaults(0.03);
    p.weight_decay = 1e-4;
    double worst = 0;
    for (int t = 1; t <= 50; t++) {
        for (int i = 0; i < N; i++) g[i] = (ff_rng_uniform(&rng) - 0.5f) * 0.1f;
        ff_adam_update(p1, m1, v1, g, N, &p, t);
        ff_adam_update_ref(p2, m2, v2, g, N, &p, t);
    }
    for (int i = 0; i < N; i++)
        if (fabs(p1[i] - p2[i]) > worst) worst = fabs(p1[i] - p2[i]);
    printf("adam float vs double after 50 steps: max error %.3g\n", worst);
    CHECK(worst < 1e-5);
}

int main(void) {
    test_hand_values();
    test_float_matches_double();
    return check_exit("test_adam");
}
