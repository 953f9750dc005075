/* bench_gemm: the machine's cblas_sgemm throughput on the three products of
 * one FF training step (forward x W^T, gradient dz^T x) and the forward of
 * the cache pass, at the shapes fftrain uses, so fftrain's GFLOP/s can be
 * read as a fraction of what BLAS itself reaches here.
 * usage: bench_gemm ROWS IN OUT [THREADS] [REPEATS] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "ffstream/dense.h"
#include "ffstream/memstat.h"
#include "ffstream/progress.h"
#include "ffstream/rng.h"

static double time_gemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda,
                        const float *b, int ldb, float *c, int ldc, int repeats) {
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t = ff_now();
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c,
                    ldc);
        t = ff_now() - t;
        if (t < best) best = t;
    }
    return 2.0 * m * n * k / best / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s ROWS IN OUT [THREADS] [REPEATS]\n", argv[0]);
        return 2;
    }
    int rows = atoi(argv[1]), in = atoi(argv[2]), out = atoi(argv[3]);
    int threads = argc > 4 ? atoi(argv[4]) : 0, repeats = argc > 5 ? atoi(argv[5]) : 10;
    if (rows <= 0 || in <= 0 || out <= 0 || repeats <= 0) {
        fprintf(stderr, "%s: ROWS, IN, OUT and REPEATS must be positive\n", argv[0]);
        return 2;
    }
    threads = ff_dense_set_threads(threads);
    float *x = ff_mem_alloc(FF_MEM_OTHER, (size_t)rows * in * sizeof(float));
    float *w = ff_mem_alloc(FF_MEM_OTHER, (size_t)out * in * sizeof(float));
    float *y = ff_mem_alloc(FF_MEM_OTHER, (size_t)rows * out * sizeof(float));
    if (x == NULL || w == NULL || y == NULL) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    ff_rng_t rng;
    ff_rng_init(&rng, 1, 99, 0, 0);
    for (size_t i = 0; i < (size_t)rows * in; i++) x[i] = ff_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)out * in; i++) w[i] = ff_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)rows * out; i++) y[i] = ff_rng_uniform(&rng);
    /* Forward: y [rows,out] = x [rows,in] W^T; gradient: dW [out,in] = dz^T x. */
    double fwd = time_gemm(0, 1, rows, out, in, x, in, w, in, y, out, repeats);
    double grad = time_gemm(1, 0, out, in, rows, y, out, x, in, w, in, repeats);
    double step = 2.0 / (1.0 / fwd + 1.0 / grad); /* one forward and one gradient product */
    printf("sgemm %d x %d -> %d, %d threads, best of %d: forward %.1f GFLOP/s, "
           "weight gradient %.1f GFLOP/s, FF step mix %.1f GFLOP/s\n",
           rows, in, out, threads, repeats, fwd, grad, step);
    ff_mem_free(y);
    ff_mem_free(w);
    ff_mem_free(x);
    return 0;
}
