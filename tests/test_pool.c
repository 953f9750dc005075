/* test_pool: the element-wise team covers every index exactly once for any
 * team size, size and grain (nested calls included), and every kernel that
 * uses it gives the same bits for any team size (BLAS threads fixed). */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "ffstream/adam.h"
#include "ffstream/dense.h"
#include "ffstream/pool.h"
#include "ffstream/rng.h"

typedef struct {
    unsigned char *seen;
    size_t n;
    int nested;
} cover_t;

static void mark(void *ctx, size_t begin, size_t end) {
    cover_t *c = ctx;
    for (size_t i = begin; i < end; i++) c->seen[i]++;
    if (c->nested && begin == 0) {
        /* A call from inside a job runs on its caller, without deadlock. */
        cover_t inner = {.seen = calloc(100, 1), .n = 100};
        ff_pool_for(100, 1, mark, &inner);
        int once = 1;
        for (size_t i = 0; i < 100; i++) once &= inner.seen[i] == 1;
        CHECK(once);
        free(inner.seen);
    }
}

static void test_coverage(void) {
    static const int teams[] = {1, 2, 3, 5, 64, 1000};
    static const size_t sizes[] = {0, 1, 2, 7, 1000, 100003};
    static const size_t grains[] = {0, 1, 64, 1000000};
    for (size_t t = 0; t < sizeof teams / sizeof *teams; t++) {
        ff_pool_set_threads(teams[t]);
        CHECK(ff_pool_threads() == (teams[t] > FF_POOL_MAX_THREADS ? FF_POOL_MAX_THREADS : teams[t]));
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
                for (int nested = 0; nested < 2; nested++) {
                    size_t n = sizes[s];
                    cover_t c = {.seen = calloc(n + 1, 1), .n = n, .nested = nested};
                    /* Many jobs in a row: a helper woken late must not run
                     * a part of a job that has moved on. */
                    for (int rep = 0; rep < 20; rep++) ff_pool_for(n, grains[g], mark, &c);
                    int exact = 1;
                    for (size_t i = 0; i < n; i++) exact &= c.seen[i] == 20;
                    CHECKF(exact, "team %d, n %zu, grain %zu, nested %d: an index missed or "
                           "run twice", teams[t], n, grains[g], nested);
                    free(c.seen);
                }
    }
    ff_pool_shutdown();
}

/* Everything one FF step computes, for one team size. */
typedef struct {
    float *xn, *norms, *y, *dz[8], *good[8], *gw, *gb, *gw2, *gb2, *param, *m, *v;
    double loss[8];
} step_out_t;

enum { ROWS = 600, IN = 300, OUT = 257 };

static void run_step(step_out_t *o, const float *x, const float *w, const float *b) {
    o->xn = malloc(sizeof(float) * ROWS * IN);
    o->norms = malloc(sizeof(float) * ROWS);
    o->y = malloc(sizeof(float) * ROWS * OUT);
    ff_dense_normalize(o->xn, o->norms, x, ROWS, IN);
    ff_dense_forward(o->y, o->xn, w, b, ROWS, IN, OUT);
    for (int k = 0; k < 8; k++) {
        ff_loss_params_t p = {.kind = (ff_loss_t)(k % 4),
                              .goodness = k < 4 ? FF_GOODNESS_MEAN : FF_GOODNESS_SUM,
                              .theta = 2.0f, .alpha = 4.0f};
        o->dz[k] = malloc(sizeof(float) * ROWS * OUT);
        o->good[k] = malloc(sizeof(float) * ROWS);
        o->loss[k] = ff_dense_local_loss(o->dz[k], o->good[k], o->y, ROWS / 2, ROWS / 2, OUT, &p);
    }
    o->gw = malloc(sizeof(float) * IN * OUT);
    o->gb = malloc(sizeof(float) * OUT);
    ff_dense_backward_params(o->gw, o->gb, o->dz[0], o->xn, ROWS, IN, OUT);
    o->gw2 = malloc(sizeof(float) * IN * OUT);
    o->gb2 = malloc(sizeof(float) * OUT);
    memcpy(o->gw2, o->gw, sizeof(float) * IN * OUT);
    memcpy(o->gb2, o->gb, sizeof(float) * OUT);
    ff_dense_backward_params_add(o->gw2, o->gb2, o->dz[3], o->xn, ROWS, IN, OUT);
    o->param = malloc(sizeof(float) * IN * OUT);
    o->m = calloc(IN * OUT, sizeof(float));
    o->v = calloc(IN * OUT, sizeof(float));
    memcpy(o->param, w, sizeof(float) * IN * OUT);
    ff_adam_params_t ap = ff_adam_defaults(0.01);
    ap.weight_decay = 1e-4;
    for (int64_t step = 1; step <= 3; step++)
        ff_adam_update(o->param, o->m, o->v, step == 2 ? o->gw2 : o->gw, IN * OUT, &ap, step);
}

static void free_step(step_out_t *o) {
    free(o->xn), free(o->norms), free(o->y), free(o->gw), free(o->gb), free(o->gw2), free(o->gb2);
    free(o->param), free(o->m), free(o->v);
    for (int k = 0; k < 8; k++) free(o->dz[k]), free(o->good[k]);
}

#define SAME(a, b, count) (memcmp((a), (b), sizeof(float) * (size_t)(count)) == 0)

static void test_same_bits(void) {
    ff_rng_t rng;
    ff_rng_init(&rng, 7, FF_RNG_PURPOSE_INIT, 0, 0);
    float *x = malloc(sizeof(float) * ROWS * IN), *w = malloc(sizeof(float) * IN * OUT);
    float *b = malloc(sizeof(float) * OUT);
    for (size_t i = 0; i < (size_t)ROWS * IN; i++) x[i] = ff_rng_uniform(&rng);
    for (size_t i = 0; i < (size_t)IN * OUT; i++) w[i] = (ff_rng_uniform(&rng) - 0.5f) * 0.2f;
    for (size_t i = 0; i < OUT; i++) b[i] = (ff_rng_uniform(&rng) - 0.5f) * 0.1f;
    ff_pool_set_threads(1);
    step_out_t one;
    run_step(&one, x, w, b);
    static const int teams[] = {2, 3, 7};
    for (size_t t = 0; t < sizeof teams / sizeof *teams; t++) {
        ff_pool_set_threads(teams[t]);
        step_out_t many;
        run_step(&many, x, w, b);
        int team = teams[t];
        CHECKF(SAME(one.xn, many.xn, ROWS * IN) && SAME(one.norms, many.norms, ROWS),
               "normalize differs with %d threads", team);
        CHECKF(SAME(one.y, many.y, ROWS * OUT), "forward differs with %d threads", team);
        for (int k = 0; k < 8; k++) {
            CHECKF(SAME(one.dz[k], many.dz[k], ROWS * OUT) &&
                       SAME(one.good[k], many.good[k], ROWS) && one.loss[k] == many.loss[k],
                   "loss %d differs with %d threads", k, team);
        }
        CHECKF(SAME(one.gw, many.gw, IN * OUT) && SAME(one.gb, many.gb, OUT) &&
                   SAME(one.gw2, many.gw2, IN * OUT) && SAME(one.gb2, many.gb2, OUT),
               "backward differs with %d threads", team);
        CHECKF(SAME(one.param, many.param, IN * OUT) && SAME(one.m, many.m, IN * OUT) &&
                   SAME(one.v, many.v, IN * OUT),
               "adam differs with %d threads", team);
        free_step(&many);
    }
    free_step(&one);
    free(x), free(w), free(b);
    ff_pool_shutdown();
}

int main(void) {
    ff_dense_set_threads(2); /* BLAS threads stay at 2: only the team changes */
    test_coverage();
    test_same_bits();
    return check_exit("test_pool");
}
