/* pool.h: a small fixed team of threads for the element-wise work between
 * BLAS calls: normalisation, ReLU, goodness, the loss gradient, the bias
 * gradient and Adam. OpenBLAS runs the products on --threads cores; between
 * them those cores would idle while one thread walks the rows.
 *
 * Work is split by index range. Every kernel that uses the team computes
 * each index exactly as its sequential loop does (a row's sums stay in
 * column order, a column's sums in row order), so the results do not
 * depend on the number of threads, bit for bit. The team works only while
 * the caller waits in ff_pool_for, never during a BLAS call. */
#ifndef FFSTREAM_POOL_H
#define FFSTREAM_POOL_H

#include <stddef.h>

/* FF_VECTOR_CLONES before an element-wise kernel: GCC builds it three times,
 * for x86-64's baseline (SSE2), AVX2 and AVX-512, and the loader picks the
 * copy the CPU runs (an ifunc), so a portable binary still uses the wide
 * registers. Every copy does the same operations in the same order (the
 * build turns contraction into fused multiply-adds off), so the bits do
 * not depend on the copy. Elsewhere it is nothing. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FF_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FF_VECTOR_CLONES
#endif

/* fn(ctx, begin, end) handles indices [begin, end). */
typedef void (*ff_pool_fn)(void *ctx, size_t begin, size_t end);

/* Sets the team size (threads <= 1: the caller alone; capped at
 * FF_POOL_MAX_THREADS). Helpers start at the first call that uses them. */
#define FF_POOL_MAX_THREADS 64
void ff_pool_set_threads(int threads);
int ff_pool_threads(void);

/* Runs fn over [0, n) in at most ff_pool_threads() contiguous parts of at
 * least grain indices, the caller taking the first. A call from another
 * thread while the team is busy, or where no helper could be started, runs
 * fn(ctx, 0, n) on the caller. */
void ff_pool_for(size_t n, size_t grain, ff_pool_fn fn, void *ctx);

/* Stops and joins the helpers (the next ff_pool_for starts them again). */
void ff_pool_shutdown(void);

#endif
