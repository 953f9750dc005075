/* dense.h: the numerical kernels of a fully connected layer, for whole
 * batches, on cblas_sgemm. Each fast kernel has a plain-loop `_ref` twin that
 * the tests compare against. Outputs first, then inputs, then sizes; shapes
 * are row-major and given in brackets. Weights use PyTorch's layout
 * [out, in]. Kernels know nothing of files or of training schedules. */
#ifndef FFSTREAM_DENSE_H
#define FFSTREAM_DENSE_H

#include <stddef.h>
#include <stdint.h>

/* Added to the row norm before dividing, as in the reference FF code. */
#define FF_NORM_EPS 1e-8f

typedef enum {
    FF_GOODNESS_MEAN = 0, /* g = mean_j y_j^2 (reference recipe) */
    FF_GOODNESS_SUM = 1,  /* g = sum_j y_j^2 (Hinton's paper) */
} ff_goodness_t;

/* xn[i,:] = x[i,:] / (||x[i,:]||_2 + FF_NORM_EPS); norms[i] = ||x[i,:]||_2.
 * xn [rows, dim], norms [rows] (may be NULL), x [rows, dim]. xn may equal x. */
void ff_dense_normalize(float *xn, float *norms, const float *x, size_t rows, size_t dim);
void ff_dense_normalize_ref(float *xn, float *norms, const float *x, size_t rows, size_t dim);

/* Backward of ff_dense_normalize: dx [rows, dim] from dxn [rows, dim], the
 * input x [rows, dim] and its norms [rows]. */
void ff_dense_normalize_backward(float *dx, const float *dxn, const float *x,
                                 const float *norms, size_t rows, size_t dim);

/* y = x W^T + b. y [rows, out], x [rows, in], weight [out, in], bias [out]. */
void ff_dense_linear(float *y, const float *x, const float *weight, const float *bias,
                     size_t rows, size_t in, size_t out);
void ff_dense_linear_ref(float *y, const float *x, const float *weight, const float *bias,
                         size_t rows, size_t in, size_t out);

/* y = relu(x W^T + b), the FF/BP layer body after normalisation. */
void ff_dense_forward(float *y, const float *x, const float *weight, const float *bias,
                      size_t rows, size_t in, size_t out);
void ff_dense_forward_ref(float *y, const float *x, const float *weight, const float *bias,
                          size_t rows, size_t in, size_t out);

/* Rows that share their first `shared` input columns: `units` groups of
 * `copies` rows, row (u, c) at u * unit_stride + c * copy_stride. In the
 * first layer an image under each of its labels is such a group (the label
 * block has the same norm under every label, so the normalised image part
 * is the same too): a training chunk's positives then negatives (copies 2,
 * unit_stride 1, copy_stride units), a test chunk's 10 candidates per image
 * (copies 10, unit_stride 10, copy_stride 1). */
typedef struct {
    size_t units, copies, unit_stride, copy_stride, shared;
} ff_dense_groups_t;

/* Whether the rows of x [.., in] share their first g->shared columns bit
 * for bit as g says. */
int ff_dense_groups_hold(const float *x, const ff_dense_groups_t *g, size_t in);

/* ff_dense_forward of grouped rows (units * copies of them): the shared
 * columns' product is computed once per group, the other columns' for every
 * row. Equal to ff_dense_forward up to the order of float additions.
 * @return the matrix-product flops done. */
double ff_dense_forward_grouped(float *y, const float *x, const float *weight, const float *bias,
                                const ff_dense_groups_t *g, size_t in, size_t out);

/* ff_dense_backward_params (accumulate 0) or _add (1) of paired rows: x
 * [2 units, in], the first `units` rows positive, row units + u the same
 * image as row u in its first `shared` columns. The shared columns' gradient
 * is (dz_pos + dz_neg)^T x_pos: half the rows. dz is changed (its first
 * units rows then hold those sums). @return the matrix-product flops done. */
double ff_dense_backward_params_paired(float *dweight, float *dbias, float *dz, const float *x,
                                       size_t units, size_t shared, size_t in, size_t out,
                                       int accumulate);

/* The local loss of a layer, from goodness g and threshold theta (logit = g - theta):
 * softplus: softplus(-logit) for positives, softplus(logit) for negatives (the
 *   original experiment);
 * linear: -logit for positives, logit for negatives (the original library's
 *   linear loss; unbounded, so only with a decaying learning rate);
 * probabilistic: -log(p + 1e-6) for positives, -log(1 - p + 1e-6) for
 *   negatives, p = sigmoid(logit) (the original library's probabilistic loss);
 * symba: softplus(-alpha (g_pos_i - g_neg_i)) over the pairs (positive row i,
 *   negative row npos + i), no threshold (Lee & Song 2023, "SymBa").
 * Each half is averaged over its rows (symba over the pairs). */
typedef enum {
    FF_LOSS_SOFTPLUS = 0,
    FF_LOSS_LINEAR = 1,
    FF_LOSS_PROBABILISTIC = 2,
    FF_LOSS_SYMBA = 3,
} ff_loss_t;

/* Added inside the logarithms of the probabilistic loss, as in the library. */
#define FF_PROBABILISTIC_EPS 1e-6

typedef struct {
    ff_loss_t kind;
    ff_goodness_t goodness;
    float theta; /* threshold (unused by symba) */
    float alpha; /* symba's scale of the goodness difference */
    /* Positive and negative rows of the whole batch when the rows given are
     * one piece of it (a row chunk, a rank's shard): the loss and gradient
     * are scaled for the batch, so the pieces' sum is the batch's. 0: the
     * rows given are the batch. */
    size_t batch_pos, batch_neg;
} ff_loss_params_t;

/* goodness[i] = mean (or sum) over j of y[i,j]^2. y [rows, out]. */
void ff_dense_goodness(float *goodness, const float *y, size_t rows, size_t out,
                       ff_goodness_t kind);

/* Forward-Forward loss of one batch whose first npos rows are positive and
 * next nneg rows negative: logit = g - theta,
 *   loss = mean_pos softplus(-logit) + mean_neg softplus(logit).
 * Writes goodness [npos+nneg] and dz = dloss/d(pre-activation) [rows, out]
 * (zero where the ReLU is off; the gradient stops at the layer input).
 * y [rows, out] is the ReLU output. @return the loss. */
double ff_dense_ff_loss(float *dz, float *goodness, const float *y, size_t npos, size_t nneg,
                        size_t out, float theta, ff_goodness_t kind);
double ff_dense_ff_loss_ref(float *dz, float *goodness, const float *y, size_t npos,
                            size_t nneg, size_t out, float theta, ff_goodness_t kind);

/* ff_dense_ff_loss for any loss of ff_loss_params_t (symba needs npos ==
 * nneg). With FF_LOSS_SOFTPLUS it computes exactly what ff_dense_ff_loss
 * does, bit for bit. @return the loss. */
double ff_dense_local_loss(float *dz, float *goodness, const float *y, size_t npos, size_t nneg,
                           size_t out, const ff_loss_params_t *p);
double ff_dense_local_loss_ref(float *dz, float *goodness, const float *y, size_t npos,
                               size_t nneg, size_t out, const ff_loss_params_t *p);

/* A row's sum of squares (the norm, the goodness) is taken in double, in
 * FF_SUM_LANES partial sums: column j goes to lane j mod FF_SUM_LANES, in
 * column order within a lane, and the lanes are added in a fixed tree at
 * the end. Independent lanes let the additions overlap (one chain of
 * dependent double additions is what limited these loops); the order is
 * fixed, so the bits do not depend on threads, tiles or the vector copy. */
#define FF_SUM_LANES 8

/* The pieces of ff_dense_local_loss, for rows whose columns come in tiles
 * (a layer wider than memory). Each gives the bits the whole-row call
 * gives: the same operations in the same order.
 *   ff_dense_goodness_add:    lanes acc[i * FF_SUM_LANES ..] += the squares
 *                             of y [rows, cols], one tile whose first
 *                             column is column `first` of the row
 *   ff_dense_goodness_finish: goodness[i] from acc once every tile is in
 *                             (out: the whole row's width)
 *   ff_dense_local_loss_value: the loss from the goodness
 *   ff_dense_local_dz:        dz [rows, cols] of one tile's y [rows, cols]
 *                             (out: the whole row's width, the mean's) */
void ff_dense_goodness_add(double *acc, const float *y, size_t rows, size_t cols, size_t first);
void ff_dense_goodness_finish(float *goodness, const double *acc, size_t rows, size_t out,
                              ff_goodness_t kind);
double ff_dense_local_loss_value(const float *goodness, size_t npos, size_t nneg,
                                 const ff_loss_params_t *p);
void ff_dense_local_dz(float *dz, const float *goodness, const float *y, size_t npos, size_t nneg,
                       size_t out, size_t cols, const ff_loss_params_t *p);

/* Parameter gradients of y = x W^T + b: dweight = dz^T x [out, in],
 * dbias = sum over rows of dz [out]. dz [rows, out], x [rows, in]. */
void ff_dense_backward_params(float *dweight, float *dbias, const float *dz, const float *x,
                              size_t rows, size_t in, size_t out);

/* The same, added to dweight and dbias (a batch's gradient accumulated over
 * its pieces). */
void ff_dense_backward_params_add(float *dweight, float *dbias, const float *dz, const float *x,
                                  size_t rows, size_t in, size_t out);
void ff_dense_backward_params_ref(float *dweight, float *dbias, const float *dz,
                                  const float *x, size_t rows, size_t in, size_t out);

/* Input gradient of y = x W^T + b: dx = dz W. dx [rows, in]. */
void ff_dense_backward_input(float *dx, const float *dz, const float *weight, size_t rows,
                             size_t in, size_t out);
void ff_dense_backward_input_ref(float *dx, const float *dz, const float *weight, size_t rows,
                                 size_t in, size_t out);

/* dz[i] = dy[i] where y[i] > 0, else 0 (ReLU backward), in place on dy. */
void ff_dense_relu_backward(float *dy, const float *y, size_t n);

/* Softmax cross-entropy averaged over rows. logits [rows, classes],
 * labels [rows]. Writes dlogits [rows, classes] = (softmax - onehot) / rows.
 * @return the mean loss. */
double ff_dense_softmax_xent(float *dlogits, const float *logits, const uint8_t *labels,
                             size_t rows, size_t classes);

/* One step's gradient of a linear softmax read-out (the FF head):
 * logits = x W^T + b, loss = mean over rows of cross-entropy with labels.
 * dweight [classes, in], dbias [classes], scratch [2, rows, classes],
 * x [rows, in], weight [classes, in], bias [classes], labels [rows].
 * @return the mean loss. */
double ff_dense_softmax_head(float *dweight, float *dbias, float *scratch, const float *x,
                             const float *weight, const float *bias, const uint8_t *labels,
                             size_t rows, size_t in, size_t classes);
double ff_dense_softmax_head_ref(float *dweight, float *dbias, const float *x,
                                 const float *weight, const float *bias, const uint8_t *labels,
                                 size_t rows, size_t in, size_t classes);

/* Numerically stable log(1 + exp(x)) and 1 / (1 + exp(-x)). */
double ff_softplus(double x);
double ff_sigmoid(double x);

/* Sets the number of BLAS threads (no-op without OpenBLAS). @return the
 * number in effect. */
int ff_dense_set_threads(int threads);

/* A short description of the BLAS library for reports. */
const char *ff_dense_blas_name(void);

/* ---- recurrent FF (ff-recurrent) kernels ---- */

/* u[i,:] = [a[i,:] / (||a[i,:]|| + eps), b[i,:] / (||b[i,:]|| + eps)]: the
 * input of a recurrent layer, its two neighbours normalised separately.
 * u [rows, da+db], a [rows, da], b [rows, db]; b may be NULL (zeros). */
void ff_dense_concat_normalized(float *u, const float *a, const float *b, size_t rows,
                                size_t da, size_t db);
void ff_dense_concat_normalized_ref(float *u, const float *a, const float *b, size_t rows,
                                    size_t da, size_t db);

/* state[i] = keep * old[i] + (1 - keep) * fresh[i] for n values; old may be
 * NULL (zeros). state may alias old. */
void ff_dense_blend(float *state, const float *old, const float *fresh, size_t n, float keep);
void ff_dense_blend_ref(float *state, const float *old, const float *fresh, size_t n,
                        float keep);

/* Backward of ff_dense_blend through fresh = relu(z): dz[i] = (1 - keep) *
 * dstate[i] where fresh[i] > 0, else 0. dz may equal dstate. */
void ff_dense_blend_backward(float *dz, const float *dstate, const float *fresh, size_t n,
                             float keep);
void ff_dense_blend_backward_ref(float *dz, const float *dstate, const float *fresh, size_t n,
                                 float keep);

#endif
