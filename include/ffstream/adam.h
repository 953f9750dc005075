/* adam.h: the Adam optimiser with PyTorch 1.13 semantics (bias correction,
 * eps added outside the square root, L2 weight decay added to the gradient).
 * The state (first and second moments) is owned by the caller so a layer's
 * whole state can live in one allocation and be saved as-is. */
#ifndef FFSTREAM_ADAM_H
#define FFSTREAM_ADAM_H

#include <stddef.h>
#include <stdint.h>

/* Hyper-parameters are double, like PyTorch's Python floats: 1 - beta2 must
 * be 0.001 rounded once, not 1 - (float)0.999. */
typedef struct {
    double lr;           /* learning rate */
    double beta1, beta2; /* moment decay rates (0.9, 0.999) */
    double eps;          /* added to sqrt(v_hat) (1e-8) */
    double weight_decay; /* L2 coefficient added to the gradient (0) */
} ff_adam_params_t;

/* PyTorch's defaults with the given learning rate. */
ff_adam_params_t ff_adam_defaults(double lr);

/* One Adam step on n parameters. step is the 1-based step count after this
 * update (bias corrections use it). param, m, v are updated in place; grad is
 * read only. */
void ff_adam_update(float *param, float *m, float *v, const float *grad, size_t n,
                    const ff_adam_params_t *p, int64_t step);

/* The same update in double precision with the textbook formula, for tests. */
void ff_adam_update_ref(float *param, float *m, float *v, const float *grad, size_t n,
                        const ff_adam_params_t *p, int64_t step);

#endif
