/* dense.c: layer kernels. Matrix products go through cblas_sgemm on whole
 * batches; the O(rows*width) element-wise parts are plain loops (they cost
 * about 1/in of the products). Reductions run in a fixed order so results are
 * identical run to run. */
#include "ffstream/dense.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <string.h>

double ff_softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }

double ff_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

void ff_dense_normalize(float *xn, float *norms, const float *x, size_t rows, size_t dim) {
    for (size_t i = 0; i < rows; i++) {
        const float *xi = x + i * dim;
        float *oi = xn + i * dim;
        double sum = 0.0;
        for (size_t j = 0; j < dim; j++) sum += (double)xi[j] * xi[j];
        float norm = (float)sqrt(sum);
        float inv = 1.0f / (norm + FF_NORM_EPS);
        for (size_t j = 0; j < dim; j++) oi[j] = xi[j] * inv;
        if (norms != NULL) norms[i] = norm;
    }
}

void ff_dense_normalize_ref(float *xn, float *norms, const float *x, size_t rows, size_t dim) {
    for (size_t i = 0; i < rows; i++) {
        double sum = 0.0;
        for (size_t j = 0; j < dim; j++) sum += (double)x[i * dim + j] * x[i * dim + j];
        double norm = sqrt(sum);
        for (size_t j = 0; j < dim; j++) xn[i * dim + j] = (float)(x[i * dim + j] / (norm + 1e-8));
        if (norms != NULL) norms[i] = (float)norm;
    }
}

void ff_dense_normalize_backward(float *dx, const float *dxn, const float *x,
                                 const float *norms, size_t rows, size_t dim) {
    /* xn = x / s with s = n + eps, n = ||x||:
     * dx = dxn / s - x * (x . dxn) / (s^2 n). */
    for (size_t i = 0; i < rows; i++) {
        const float *xi = x + i * dim, *gi = dxn + i * dim;
        float *oi = dx + i * dim;
        double n = norms[i], s = n + FF_NORM_EPS;
        double dot = 0.0;
        for (size_t j = 0; j < dim; j++) dot += (double)xi[j] * gi[j];
        double a = 1.0 / s, c = n > 0 ? dot / (s * s * n) : 0.0;
        for (size_t j = 0; j < dim; j++) oi[j] = (float)(a * gi[j] - c * xi[j]);
    }
}

void ff_dense_linear(float *y, const float *x, const float *weight, const float *bias,
                     size_t rows, size_t in, size_t out) {
    if (rows == 0) return;
    /* Seed y with the bias so sgemm accumulates onto it (beta = 1). */
    for (size_t i = 0; i < rows; i++) memcpy(y + i * out, bias, out * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f, x,
                (int)in, weight, (int)in, 1.0f, y, (int)out);
}

void ff_dense_linear_ref(float *y, const float *x, const float *weight, const float *bias,
                         size_t rows, size_t in, size_t out) {
    for (size_t i = 0; i < rows; i++)
        for (size_t o = 0; o < out; o++) {
            double acc = bias[o];
            for (size_t k = 0; k < in; k++) acc += (double)x[i * in + k] * weight[o * in + k];
            y[i * out + o] = (float)acc;
        }
}

void ff_dense_forward(float *y, const float *x, const float *weight, const float *bias,
                      size_t rows, size_t in, size_t out) {
    ff_dense_linear(y, x, weight, bias, rows, in, out);
    size_t n = rows * out;
    for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

void ff_dense_forward_ref(float *y, const float *x, const float *weight, const float *bias,
                          size_t rows, size_t in, size_t out) {
    ff_dense_linear_ref(y, x, weight, bias, rows, in, out);
    for (size_t i = 0; i < rows * out; i++)
        if (y[i] < 0.0f) y[i] = 0.0f;
}

void ff_dense_goodness(float *goodness, const float *y, size_t rows, size_t out,
                       ff_goodness_t kind) {
    double scale = kind == FF_GOODNESS_MEAN ? 1.0 / (double)out : 1.0;
    for (size_t i = 0; i < rows; i++) {
        const float *yi = y + i * out;
        double sum = 0.0;
        for (size_t j = 0; j < out; j++) sum += (double)yi[j] * yi[j];
        goodness[i] = (float)(sum * scale);
    }
}

double ff_dense_ff_loss(float *dz, float *goodness, const float *y, size_t npos, size_t nneg,
                        size_t out, float theta, ff_goodness_t kind) {
    size_t rows = npos + nneg;
    double scale = kind == FF_GOODNESS_MEAN ? 1.0 / (double)out : 1.0;
    ff_dense_goodness(goodness, y, rows, out, kind);
    double loss_pos = 0.0, loss_neg = 0.0;
    for (size_t i = 0; i < rows; i++) {
        int positive = i < npos;
        double logit = (double)goodness[i] - theta;
        double dgood; /* dloss / dg_i */
        if (positive) {
            loss_pos += ff_softplus(-logit);
            dgood = -ff_sigmoid(-logit) / (double)npos;
        } else {
            loss_neg += ff_softplus(logit);
            dgood = ff_sigmoid(logit) / (double)nneg;
        }
        /* dg/dy_j = 2 y_j * scale; y_j = 0 where the ReLU is off, so this is
         * also the gradient with respect to the pre-activation. */
        float coef = (float)(2.0 * scale * dgood);
        const float *yi = y + i * out;
        float *di = dz + i * out;
        for (size_t j = 0; j < out; j++) di[j] = coef * yi[j];
    }
    double loss = 0.0;
    if (npos > 0) loss += loss_pos / (double)npos;
    if (nneg > 0) loss += loss_neg / (double)nneg;
    return loss;
}

double ff_dense_ff_loss_ref(float *dz, float *goodness, const float *y, size_t npos,
                            size_t nneg, size_t out, float theta, ff_goodness_t kind) {
    size_t rows = npos + nneg;
    double loss = 0.0;
    for (size_t i = 0; i < rows; i++) {
        double g = 0.0;
        for (size_t j = 0; j < out; j++) g += (double)y[i * out + j] * y[i * out + j];
        if (kind == FF_GOODNESS_MEAN) g /= (double)out;
        goodness[i] = (float)g;
        double logit = g - theta;
        double sign = i < npos ? -1.0 : 1.0;
        double count = i < npos ? (double)npos : (double)nneg;
        loss += log(1.0 + exp(sign * logit)) / count;
        /* d/dlogit log(1+exp(s*logit)) = s * sigmoid(s*logit) */
        double dg = sign * (1.0 / (1.0 + exp(-sign * logit))) / count;
        double dgdy = kind == FF_GOODNESS_MEAN ? 2.0 / (double)out : 2.0;
        for (size_t j = 0; j < out; j++) {
            double yj = y[i * out + j];
            dz[i * out + j] = yj > 0 ? (float)(dg * dgdy * yj) : 0.0f;
        }
    }
    return loss;
}

void ff_dense_backward_params(float *dweight, float *dbias, const float *dz, const float *x,
                              size_t rows, size_t in, size_t out) {
    if (rows == 0) {
        memset(dweight, 0, in * out * sizeof(float));
        memset(dbias, 0, out * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows, 1.0f, dz,
                (int)out, x, (int)in, 0.0f, dweight, (int)in);
    for (size_t o = 0; o < out; o++) dbias[o] = 0.0f;
    for (size_t i = 0; i < rows; i++) {
        const float *di = dz + i * out;
        for (size_t o = 0; o < out; o++) dbias[o] += di[o];
    }
}

void ff_dense_backward_params_ref(float *dweight, float *dbias, const float *dz,
                                  const float *x, size_t rows, size_t in, size_t out) {
    for (size_t o = 0; o < out; o++) {
        double b = 0.0;
        for (size_t i = 0; i < rows; i++) b += dz[i * out + o];
        dbias[o] = (float)b;
        for (size_t k = 0; k < in; k++) {
            double acc = 0.0;
            for (size_t i = 0; i < rows; i++) acc += (double)dz[i * out + o] * x[i * in + k];
            dweight[o * in + k] = (float)acc;
        }
    }
}

void ff_dense_backward_input(float *dx, const float *dz, const float *weight, size_t rows,
                             size_t in, size_t out) {
    if (rows == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)in, (int)out, 1.0f,
                dz, (int)out, weight, (int)in, 0.0f, dx, (int)in);
}

void ff_dense_backward_input_ref(float *dx, const float *dz, const float *weight, size_t rows,
                                 size_t in, size_t out) {
    for (size_t i = 0; i < rows; i++)
        for (size_t k = 0; k < in; k++) {
            double acc = 0.0;
            for (size_t o = 0; o < out; o++) acc += (double)dz[i * out + o] * weight[o * in + k];
            dx[i * in + k] = (float)acc;
        }
}

void ff_dense_relu_backward(float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(y[i] > 0.0f)) dy[i] = 0.0f;
}

double ff_dense_softmax_xent(float *dlogits, const float *logits, const uint8_t *labels,
                             size_t rows, size_t classes) {
    double loss = 0.0;
    for (size_t i = 0; i < rows; i++) {
        const float *li = logits + i * classes;
        float *di = dlogits + i * classes;
        double max = li[0];
        for (size_t c = 1; c < classes; c++)
            if (li[c] > max) max = li[c];
        double sum = 0.0;
        for (size_t c = 0; c < classes; c++) sum += exp(li[c] - max);
        double log_sum = log(sum) + max;
        assert(labels[i] < classes);
        loss += log_sum - li[labels[i]];
        for (size_t c = 0; c < classes; c++) {
            double p = exp(li[c] - log_sum);
            di[c] = (float)((p - (c == labels[i] ? 1.0 : 0.0)) / (double)rows);
        }
    }
    return rows ? loss / (double)rows : 0.0;
}

int ff_dense_set_threads(int threads) {
#ifdef FF_HAVE_OPENBLAS_THREADS
    if (threads > 0) openblas_set_num_threads(threads);
    return openblas_get_num_threads();
#else
    (void)threads;
    return 1;
#endif
}

const char *ff_dense_blas_name(void) {
#ifdef FF_HAVE_OPENBLAS_THREADS
    return openblas_get_config();
#else
    return "cblas";
#endif
}
