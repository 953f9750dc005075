/* adam.c: Adam as torch.optim.Adam (single-tensor path) computes it: scalars
 * are double, tensors float32, and the operation order is PyTorch's. */
#include "ffstream/adam.h"

#include <math.h>

#include "ffstream/pool.h"

ff_adam_params_t ff_adam_defaults(double lr) {
    ff_adam_params_t p = {.lr = lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
    return p;
}

typedef struct {
    float *param, *m, *v;
    const float *grad;
    float step_size, bc2_sqrt, fb1, fb2, one_minus_b1, one_minus_b2, wd, eps;
} adam_job_t;

/* Elements [begin, end): each on its own, so any split gives the same bits. */
FF_VECTOR_CLONES static void adam_range(void *ctx, size_t begin, size_t end) {
    const adam_job_t *j = ctx;
    /* The four arrays never overlap, and the constants are read once: the
     * compiler can then vectorise the loop (the same operations in the
     * same order, so the same bits as one element at a time). */
    float *restrict param = j->param, *restrict m = j->m, *restrict v = j->v;
    const float *restrict grad = j->grad;
    const float fb1 = j->fb1, fb2 = j->fb2, c1 = j->one_minus_b1, c2 = j->one_minus_b2;
    const float bc2_sqrt = j->bc2_sqrt, eps = j->eps, neg_step = -j->step_size, wd = j->wd;
    if (wd != 0.0f) {
        for (size_t i = begin; i < end; i++) {
            float g = grad[i] + wd * param[i];
            float mi = m[i] * fb1 + c1 * g, vi = v[i] * fb2 + c2 * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = param[i] + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        }
        return;
    }
    for (size_t i = begin; i < end; i++) {
        float g = grad[i];
        float mi = m[i] * fb1 + c1 * g, vi = v[i] * fb2 + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = param[i] + neg_step * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

void ff_adam_update(float *param, float *m, float *v, const float *grad, size_t n,
                    const ff_adam_params_t *p, int64_t step) {
    double b1 = p->beta1, b2 = p->beta2;
    double bias_correction1 = 1.0 - pow(b1, (double)step);
    double bias_correction2 = 1.0 - pow(b2, (double)step);
    adam_job_t j = {.param = param, .m = m, .v = v, .grad = grad,
                    .step_size = (float)(p->lr / bias_correction1),
                    .bc2_sqrt = (float)sqrt(bias_correction2),
                    .fb1 = (float)b1, .fb2 = (float)b2,
                    .one_minus_b1 = (float)(1.0 - b1), .one_minus_b2 = (float)(1.0 - b2),
                    .wd = (float)p->weight_decay, .eps = (float)p->eps};
    ff_pool_for(n, 32768, adam_range, &j);
}

void ff_adam_update_ref(float *param, float *m, float *v, const float *grad, size_t n,
                        const ff_adam_params_t *p, int64_t step) {
    for (size_t i = 0; i < n; i++) {
        double g = grad[i] + p->weight_decay * param[i];
        double mi = p->beta1 * (double)m[i] + (1.0 - p->beta1) * g;
        double vi = p->beta2 * (double)v[i] + (1.0 - p->beta2) * g * g;
        double mhat = mi / (1.0 - pow(p->beta1, (double)step));
        double vhat = vi / (1.0 - pow(p->beta2, (double)step));
        param[i] = (float)(param[i] - p->lr * mhat / (sqrt(vhat) + p->eps));
        m[i] = (float)mi;
        v[i] = (float)vi;
    }
}
