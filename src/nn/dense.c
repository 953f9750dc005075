/* dense.c: layer kernels. Matrix products go through cblas_sgemm on whole
 * batches; the O(rows*width) element-wise parts are plain loops split by
 * rows (or columns) over the element-wise team (pool.h), each index
 * computed as the sequential loop computes it. Reductions run in a fixed
 * order, so results are identical run to run and for any thread count. */
#include "ffstream/dense.h"

#include "ffstream/pool.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double ff_softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }

double ff_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* Rows per part of the team: at least about 32K elements, so a handoff
 * (some microseconds) is small against the work. */
static size_t grain_rows(size_t width) {
    const size_t elements = 32768;
    return width >= elements ? 1 : elements / (width > 0 ? width : 1);
}

typedef struct {
    float *out, *aux;
    const float *in, *bias;
    size_t width;
    int kind;
} rows_job_t;

/* lanes[(first + c) % FF_SUM_LANES] += x[c]^2 for c in [0, n), in double
 * (dense.h: the sums of squares). */
static inline void add_squares(double lanes[FF_SUM_LANES], const float *x, size_t n,
                               size_t first) {
    size_t c = 0;
    for (; c < n && (first + c) % FF_SUM_LANES != 0; c++)
        lanes[(first + c) % FF_SUM_LANES] += (double)x[c] * x[c];
    for (; c + FF_SUM_LANES <= n; c += FF_SUM_LANES)
        for (size_t l = 0; l < FF_SUM_LANES; l++) lanes[l] += (double)x[c + l] * x[c + l];
    for (; c < n; c++) lanes[(first + c) % FF_SUM_LANES] += (double)x[c] * x[c];
}

static inline double lanes_total(const double l[FF_SUM_LANES]) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

static inline double sum_squares(const float *x, size_t n) {
    double lanes[FF_SUM_LANES] = {0};
    add_squares(lanes, x, n, 0);
    return lanes_total(lanes);
}

FF_VECTOR_CLONES static void normalize_rows(void *ctx, size_t begin, size_t end) {
    const rows_job_t *j = ctx;
    const size_t dim = j->width;
    for (size_t i = begin; i < end; i++) {
        const float *xi = j->in + i * dim;
        float *oi = j->out + i * dim;
        float norm = (float)sqrt(sum_squares(xi, dim));
        float inv = 1.0f / (norm + FF_NORM_EPS);
        for (size_t c = 0; c < dim; c++) oi[c] = xi[c] * inv;
        if (j->aux != NULL) j->aux[i] = norm;
    }
}

void ff_dense_normalize(float *xn, float *norms, const float *x, size_t rows, size_t dim) {
    rows_job_t j = {.out = xn, .aux = norms, .in = x, .width = dim};
    ff_pool_for(rows, grain_rows(dim), normalize_rows, &j);
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

static void bias_rows(void *ctx, size_t begin, size_t end) {
    const rows_job_t *j = ctx;
    for (size_t i = begin; i < end; i++) memcpy(j->out + i * j->width, j->bias, j->width * sizeof(float));
}

void ff_dense_linear(float *y, const float *x, const float *weight, const float *bias,
                     size_t rows, size_t in, size_t out) {
    if (rows == 0) return;
    /* Seed y with the bias so sgemm accumulates onto it (beta = 1). */
    rows_job_t j = {.out = y, .bias = bias, .width = out};
    ff_pool_for(rows, grain_rows(out), bias_rows, &j);
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

FF_VECTOR_CLONES static void relu_rows(void *ctx, size_t begin, size_t end) {
    const rows_job_t *j = ctx;
    float *y = j->out;
    for (size_t i = begin * j->width; i < end * j->width; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

void ff_dense_forward(float *y, const float *x, const float *weight, const float *bias,
                      size_t rows, size_t in, size_t out) {
    ff_dense_linear(y, x, weight, bias, rows, in, out);
    rows_job_t j = {.out = y, .width = out};
    ff_pool_for(rows, grain_rows(out), relu_rows, &j);
}

int ff_dense_groups_hold(const float *x, const ff_dense_groups_t *g, size_t in) {
    if (g->shared > in) return 0;
    for (size_t u = 0; u < g->units; u++) {
        const float *first = x + u * g->unit_stride * in;
        for (size_t c = 1; c < g->copies; c++)
            if (memcmp(first + c * g->copy_stride * in, first, g->shared * sizeof(float)) != 0)
                return 0;
    }
    return 1;
}

typedef struct {
    float *y;
    const float *bias;
    const ff_dense_groups_t *g;
    size_t out;
} groups_job_t;

/* Every row of a group starts from its group's shared product (held in
 * the group's first row) plus the bias; the first row last. */
FF_VECTOR_CLONES static void group_seed_units(void *ctx, size_t begin, size_t end) {
    const groups_job_t *j = ctx;
    const ff_dense_groups_t *g = j->g;
    const size_t out = j->out;
    for (size_t u = begin; u < end; u++) {
        const float *shared = j->y + u * g->unit_stride * out;
        for (size_t c = g->copies; c-- > 0;) {
            float *row = j->y + (u * g->unit_stride + c * g->copy_stride) * out;
            for (size_t o = 0; o < out; o++) row[o] = shared[o] + j->bias[o];
        }
    }
}

double ff_dense_forward_grouped(float *y, const float *x, const float *weight, const float *bias,
                                const ff_dense_groups_t *g, size_t in, size_t out) {
    const size_t rows = g->units * g->copies, S = g->shared, rest = in - S;
    assert(S <= in && g->copies >= 1);
    if (rows == 0) return 0.0;
    /* The shared columns of each group's first row, into that row of y. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)g->units, (int)out, (int)S, 1.0f, x,
                (int)(g->unit_stride * in), weight, (int)in, 0.0f, y,
                (int)(g->unit_stride * out));
    groups_job_t j = {.y = y, .bias = bias, .g = g, .out = out};
    ff_pool_for(g->units, grain_rows(out * g->copies), group_seed_units, &j);
    /* The other columns (the label block), every row. */
    if (rest > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)rest, 1.0f,
                    x + S, (int)in, weight + S, (int)in, 1.0f, y, (int)out);
    rows_job_t r = {.out = y, .width = out};
    ff_pool_for(rows, grain_rows(out), relu_rows, &r);
    return 2.0 * (double)out * ((double)g->units * (double)S + (double)rows * (double)rest);
}

void ff_dense_forward_ref(float *y, const float *x, const float *weight, const float *bias,
                          size_t rows, size_t in, size_t out) {
    ff_dense_linear_ref(y, x, weight, bias, rows, in, out);
    for (size_t i = 0; i < rows * out; i++)
        if (y[i] < 0.0f) y[i] = 0.0f;
}

FF_VECTOR_CLONES static void goodness_rows(void *ctx, size_t begin, size_t end) {
    const rows_job_t *j = ctx;
    const size_t out = j->width;
    double scale = j->kind == FF_GOODNESS_MEAN ? 1.0 / (double)out : 1.0;
    for (size_t i = begin; i < end; i++)
        j->out[i] = (float)(sum_squares(j->in + i * out, out) * scale);
}

void ff_dense_goodness(float *goodness, const float *y, size_t rows, size_t out,
                       ff_goodness_t kind) {
    rows_job_t j = {.out = goodness, .in = y, .width = out, .kind = (int)kind};
    ff_pool_for(rows, grain_rows(out), goodness_rows, &j);
}

double ff_dense_ff_loss(float *dz, float *goodness, const float *y, size_t npos, size_t nneg,
                        size_t out, float theta, ff_goodness_t kind) {
    ff_loss_params_t p = {.kind = FF_LOSS_SOFTPLUS, .goodness = kind, .theta = theta};
    return ff_dense_local_loss(dz, goodness, y, npos, nneg, out, &p);
}

/* One row's share of the loss: adds its loss to *loss_pos or *loss_neg and
 * @return dloss / dg_i. The sequential pass (the loss, in row order) and the
 * split pass (dz) call it alike, so both see the same bits. */
static double row_term(const ff_loss_params_t *p, const float *goodness, size_t i, size_t npos,
                       double count_pos, double count_neg, double *loss_pos, double *loss_neg) {
    int positive = i < npos;
    double logit = (double)goodness[i] - p->theta;
    double dgood;
    switch (p->kind) {
    case FF_LOSS_LINEAR:
        if (positive) {
            *loss_pos -= logit;
            dgood = -1.0 / count_pos;
        } else {
            *loss_neg += logit;
            dgood = 1.0 / count_neg;
        }
        break;
    case FF_LOSS_PROBABILISTIC: {
        double prob = ff_sigmoid(logit), dprob = prob * (1.0 - prob);
        if (positive) {
            *loss_pos -= log(prob + FF_PROBABILISTIC_EPS);
            dgood = -dprob / (prob + FF_PROBABILISTIC_EPS) / count_pos;
        } else {
            *loss_neg -= log(1.0 - prob + FF_PROBABILISTIC_EPS);
            dgood = dprob / (1.0 - prob + FF_PROBABILISTIC_EPS) / count_neg;
        }
        break;
    }
    case FF_LOSS_SYMBA: {
        /* Each pair's loss is counted once, with its positive row. */
        size_t pair = positive ? i : i - npos;
        double margin = (double)p->alpha * ((double)goodness[pair] - goodness[npos + pair]);
        double pull = (double)p->alpha * ff_sigmoid(-margin) / count_pos;
        if (positive) *loss_pos += ff_softplus(-margin);
        dgood = positive ? -pull : pull;
        break;
    }
    default:
        if (positive) {
            *loss_pos += ff_softplus(-logit);
            dgood = -ff_sigmoid(-logit) / count_pos;
        } else {
            *loss_neg += ff_softplus(logit);
            dgood = ff_sigmoid(logit) / count_neg;
        }
        break;
    }
    return dgood;
}

typedef struct {
    float *dz;
    const float *goodness, *y;
    size_t npos, cols;
    double count_pos, count_neg, scale;
    const ff_loss_params_t *p;
} dz_job_t;

FF_VECTOR_CLONES static void dz_rows(void *ctx, size_t begin, size_t end) {
    const dz_job_t *j = ctx;
    for (size_t i = begin; i < end; i++) {
        double unused_pos = 0.0, unused_neg = 0.0;
        double dgood = row_term(j->p, j->goodness, i, j->npos, j->count_pos, j->count_neg,
                                &unused_pos, &unused_neg);
        /* dg/dy_j = 2 y_j * scale; y_j = 0 where the ReLU is off, so this is
         * also the gradient with respect to the pre-activation. */
        float coef = (float)(2.0 * j->scale * dgood);
        const float *yi = j->y + i * j->cols;
        float *di = j->dz + i * j->cols;
        for (size_t c = 0; c < j->cols; c++) di[c] = coef * yi[c];
    }
}

/* The counts a piece's loss is scaled by: the batch's, or the piece's own. */
static double count_of(size_t batch, size_t own) { return (double)(batch > 0 ? batch : own); }

double ff_dense_local_loss_value(const float *goodness, size_t npos, size_t nneg,
                                 const ff_loss_params_t *p) {
    const size_t rows = npos + nneg;
    assert(p->kind != FF_LOSS_SYMBA || npos == nneg);
    const double count_pos = count_of(p->batch_pos, npos), count_neg = count_of(p->batch_neg, nneg);
    /* The loss in row order, on the caller: O(rows). */
    double loss_pos = 0.0, loss_neg = 0.0;
    for (size_t i = 0; i < rows; i++)
        (void)row_term(p, goodness, i, npos, count_pos, count_neg, &loss_pos, &loss_neg);
    double loss = 0.0;
    if (npos > 0) loss += loss_pos / count_pos;
    if (nneg > 0 && p->kind != FF_LOSS_SYMBA) loss += loss_neg / count_neg;
    return loss;
}

void ff_dense_local_dz(float *dz, const float *goodness, const float *y, size_t npos, size_t nneg,
                       size_t out, size_t cols, const ff_loss_params_t *p) {
    const double scale = p->goodness == FF_GOODNESS_MEAN ? 1.0 / (double)out : 1.0;
    /* dz, O(rows * cols), split by rows. */
    dz_job_t j = {.dz = dz, .goodness = goodness, .y = y, .npos = npos, .cols = cols,
                  .count_pos = count_of(p->batch_pos, npos),
                  .count_neg = count_of(p->batch_neg, nneg), .scale = scale, .p = p};
    ff_pool_for(npos + nneg, grain_rows(cols), dz_rows, &j);
}

double ff_dense_local_loss(float *dz, float *goodness, const float *y, size_t npos, size_t nneg,
                           size_t out, const ff_loss_params_t *p) {
    ff_dense_goodness(goodness, y, npos + nneg, out, p->goodness);
    double loss = ff_dense_local_loss_value(goodness, npos, nneg, p);
    ff_dense_local_dz(dz, goodness, y, npos, nneg, out, out, p);
    return loss;
}

typedef struct {
    double *acc;
    const float *y;
    size_t cols, first;
} goodness_add_job_t;

FF_VECTOR_CLONES static void goodness_add_rows(void *ctx, size_t begin, size_t end) {
    const goodness_add_job_t *j = ctx;
    for (size_t i = begin; i < end; i++)
        add_squares(j->acc + i * FF_SUM_LANES, j->y + i * j->cols, j->cols, j->first);
}

void ff_dense_goodness_add(double *acc, const float *y, size_t rows, size_t cols, size_t first) {
    goodness_add_job_t j = {.acc = acc, .y = y, .cols = cols, .first = first};
    ff_pool_for(rows, grain_rows(cols), goodness_add_rows, &j);
}

void ff_dense_goodness_finish(float *goodness, const double *acc, size_t rows, size_t out,
                              ff_goodness_t kind) {
    const double scale = kind == FF_GOODNESS_MEAN ? 1.0 / (double)out : 1.0;
    for (size_t i = 0; i < rows; i++)
        goodness[i] = (float)(lanes_total(acc + i * FF_SUM_LANES) * scale);
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

double ff_dense_local_loss_ref(float *dz, float *goodness, const float *y, size_t npos,
                               size_t nneg, size_t out, const ff_loss_params_t *p) {
    size_t rows = npos + nneg;
    double loss = 0.0;
    double dgdy = p->goodness == FF_GOODNESS_MEAN ? 2.0 / (double)out : 2.0;
    double *g = calloc(rows, sizeof *g);
    assert(g != NULL);
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < out; j++) g[i] += (double)y[i * out + j] * y[i * out + j];
        if (p->goodness == FF_GOODNESS_MEAN) g[i] /= (double)out;
        goodness[i] = (float)g[i];
    }
    for (size_t i = 0; i < rows; i++) {
        int positive = i < npos;
        double count = positive ? (double)npos : (double)nneg;
        double logit = g[i] - p->theta, dg;
        if (p->kind == FF_LOSS_LINEAR) {
            loss += (positive ? -logit : logit) / count;
            dg = (positive ? -1.0 : 1.0) / count;
        } else if (p->kind == FF_LOSS_PROBABILISTIC) {
            double e = FF_PROBABILISTIC_EPS, prob = 1.0 / (1.0 + exp(-logit));
            /* d/dg log(prob + e) = prob (1 - prob) / (prob + e) */
            if (positive) {
                loss += -log(prob + e) / count;
                dg = -prob * (1.0 - prob) / (prob + e) / count;
            } else {
                loss += -log(1.0 - prob + e) / count;
                dg = prob * (1.0 - prob) / (1.0 - prob + e) / count;
            }
        } else if (p->kind == FF_LOSS_SYMBA) {
            size_t pair = positive ? i : i - npos;
            double d = g[pair] - g[npos + pair];
            /* d/dd log(1 + exp(-a d)) = -a / (1 + exp(a d)) */
            double dd = -p->alpha / (1.0 + exp(p->alpha * d)) / (double)npos;
            if (positive) loss += log(1.0 + exp(-p->alpha * d)) / (double)npos;
            dg = positive ? dd : -dd;
        } else {
            double sign = positive ? -1.0 : 1.0;
            loss += log(1.0 + exp(sign * logit)) / count;
            dg = sign * (1.0 / (1.0 + exp(-sign * logit))) / count;
        }
        for (size_t j = 0; j < out; j++) {
            double yj = y[i * out + j];
            dz[i * out + j] = yj > 0 ? (float)(dg * dgdy * yj) : 0.0f;
        }
    }
    free(g);
    return loss;
}

typedef struct {
    float *dbias;
    const float *dz;
    size_t rows, out;
} bias_grad_job_t;

/* Columns [begin, end) of dbias += the column sums of dz, each column in
 * row order. */
FF_VECTOR_CLONES static void bias_grad_cols(void *ctx, size_t begin, size_t end) {
    const bias_grad_job_t *j = ctx;
    for (size_t i = 0; i < j->rows; i++) {
        const float *di = j->dz + i * j->out;
        for (size_t o = begin; o < end; o++) j->dbias[o] += di[o];
    }
}

static void bias_grad_add(float *dbias, const float *dz, size_t rows, size_t out) {
    bias_grad_job_t j = {.dbias = dbias, .dz = dz, .rows = rows, .out = out};
    /* A part takes at least 64 columns (a few cache lines of each row). */
    ff_pool_for(out, rows * out >= 32768 ? 64 : out, bias_grad_cols, &j);
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
    bias_grad_add(dbias, dz, rows, out);
}

void ff_dense_backward_params_add(float *dweight, float *dbias, const float *dz, const float *x,
                                  size_t rows, size_t in, size_t out) {
    if (rows == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)rows, 1.0f, dz,
                (int)out, x, (int)in, 1.0f, dweight, (int)in);
    bias_grad_add(dbias, dz, rows, out);
}

typedef struct {
    float *dz;
    size_t units, out;
} fold_job_t;

/* dz row u += dz row units + u: a positive row's gradient and its
 * negative's, which multiply the same image columns. */
FF_VECTOR_CLONES static void fold_pairs_rows(void *ctx, size_t begin, size_t end) {
    const fold_job_t *j = ctx;
    const float *neg = j->dz + j->units * j->out;
    for (size_t i = begin * j->out; i < end * j->out; i++) j->dz[i] += neg[i];
}

double ff_dense_backward_params_paired(float *dweight, float *dbias, float *dz, const float *x,
                                       size_t units, size_t shared, size_t in, size_t out,
                                       int accumulate) {
    const size_t rows = 2 * units, rest = in - shared;
    const float beta = accumulate ? 1.0f : 0.0f;
    assert(shared <= in);
    if (rows == 0) {
        if (!accumulate) {
            memset(dweight, 0, in * out * sizeof(float));
            memset(dbias, 0, out * sizeof(float));
        }
        return 0.0;
    }
    if (!accumulate)
        for (size_t o = 0; o < out; o++) dbias[o] = 0.0f;
    bias_grad_add(dbias, dz, rows, out);
    /* The label block's columns from every row, before dz is folded. */
    if (rest > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)rest, (int)rows, 1.0f,
                    dz, (int)out, x + shared, (int)in, beta, dweight + shared, (int)in);
    /* dz_pos + dz_neg, then the shared columns from the positive rows. */
    fold_job_t j = {.dz = dz, .units = units, .out = out};
    ff_pool_for(units, grain_rows(out), fold_pairs_rows, &j);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)shared, (int)units, 1.0f,
                dz, (int)out, x, (int)in, beta, dweight, (int)in);
    return 2.0 * (double)out * ((double)units * (double)shared + (double)rows * (double)rest);
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

double ff_dense_softmax_head(float *dweight, float *dbias, float *scratch, const float *x,
                             const float *weight, const float *bias, const uint8_t *labels,
                             size_t rows, size_t in, size_t classes) {
    float *logits = scratch, *dlogits = scratch + rows * classes;
    ff_dense_linear(logits, x, weight, bias, rows, in, classes);
    double loss = ff_dense_softmax_xent(dlogits, logits, labels, rows, classes);
    ff_dense_backward_params(dweight, dbias, dlogits, x, rows, in, classes);
    return loss;
}

double ff_dense_softmax_head_ref(float *dweight, float *dbias, const float *x,
                                 const float *weight, const float *bias, const uint8_t *labels,
                                 size_t rows, size_t in, size_t classes) {
    double loss = 0.0;
    double *p = calloc(classes, sizeof *p);
    assert(p != NULL);
    memset(dweight, 0, classes * in * sizeof(float));
    memset(dbias, 0, classes * sizeof(float));
    for (size_t i = 0; i < rows; i++) {
        double max = -INFINITY, sum = 0.0;
        for (size_t c = 0; c < classes; c++) {
            double z = bias[c];
            for (size_t k = 0; k < in; k++) z += (double)weight[c * in + k] * x[i * in + k];
            p[c] = z;
            if (z > max) max = z;
        }
        for (size_t c = 0; c < classes; c++) sum += exp(p[c] - max);
        loss += log(sum) + max - p[labels[i]];
        for (size_t c = 0; c < classes; c++) {
            double d = (exp(p[c] - max) / sum - (c == labels[i])) / (double)rows;
            dbias[c] += (float)d;
            for (size_t k = 0; k < in; k++) dweight[c * in + k] += (float)(d * x[i * in + k]);
        }
    }
    free(p);
    return rows ? loss / (double)rows : 0.0;
}

int ff_dense_set_threads(int threads) {
    if (threads > 0) ff_pool_set_threads(threads);
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

/* ---- recurrent FF (ff-recurrent) kernels ---- */

/* Writes x / (||x|| + eps) of one row into out; x == NULL writes zeros. */
static void normalize_row(float *out, const float *x, size_t dim) {
    if (x == NULL) {
        memset(out, 0, dim * sizeof(float));
        return;
    }
    double sum = 0.0;
    for (size_t j = 0; j < dim; j++) sum += (double)x[j] * x[j];
    float inv = 1.0f / ((float)sqrt(sum) + FF_NORM_EPS);
    for (size_t j = 0; j < dim; j++) out[j] = x[j] * inv;
}

void ff_dense_concat_normalized(float *u, const float *a, const float *b, size_t rows,
                                size_t da, size_t db) {
    size_t width = da + db;
    for (size_t i = 0; i < rows; i++) {
        normalize_row(u + i * width, a + i * da, da);
        normalize_row(u + i * width + da, b != NULL ? b + i * db : NULL, db);
    }
}

void ff_dense_concat_normalized_ref(float *u, const float *a, const float *b, size_t rows,
                                    size_t da, size_t db) {
    for (size_t i = 0; i < rows; i++) {
        double na = 0.0, nb = 0.0;
        for (size_t j = 0; j < da; j++) na += (double)a[i * da + j] * a[i * da + j];
        for (size_t j = 0; b != NULL && j < db; j++) nb += (double)b[i * db + j] * b[i * db + j];
        na = sqrt(na) + 1e-8;
        nb = sqrt(nb) + 1e-8;
        for (size_t j = 0; j < da; j++) u[i * (da + db) + j] = (float)(a[i * da + j] / na);
        for (size_t j = 0; j < db; j++)
            u[i * (da + db) + da + j] = b != NULL ? (float)(b[i * db + j] / nb) : 0.0f;
    }
}

void ff_dense_blend(float *state, const float *old, const float *fresh, size_t n, float keep) {
    float take = 1.0f - keep;
    if (old == NULL) {
        for (size_t i = 0; i < n; i++) state[i] = take * fresh[i];
        return;
    }
    for (size_t i = 0; i < n; i++) state[i] = keep * old[i] + take * fresh[i];
}

void ff_dense_blend_ref(float *state, const float *old, const float *fresh, size_t n,
                        float keep) {
    for (size_t i = 0; i < n; i++) {
        double o = old != NULL ? old[i] : 0.0;
        state[i] = (float)((double)keep * o + (1.0 - (double)keep) * fresh[i]);
    }
}

void ff_dense_blend_backward(float *dz, const float *dstate, const float *fresh, size_t n,
                             float keep) {
    float take = 1.0f - keep;
    for (size_t i = 0; i < n; i++) dz[i] = fresh[i] > 0.0f ? take * dstate[i] : 0.0f;
}

void ff_dense_blend_backward_ref(float *dz, const float *dstate, const float *fresh, size_t n,
                                 float keep) {
    for (size_t i = 0; i < n; i++)
        dz[i] = fresh[i] > 0.0f ? (float)((1.0 - (double)keep) * dstate[i]) : 0.0f;
}
