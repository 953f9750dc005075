/* head.c: the softmax read-out: feature gathering, training step, scoring. */
#include "ffstream/head.h"

#include <assert.h>
#include <string.h>

#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/eval.h"
#include "ffstream/memstat.h"

int ff_head_init(ff_head_t *head, uint32_t in, size_t max_rows, uint64_t seed, uint32_t index,
                 ff_error_t *err) {
    memset(head, 0, sizeof *head);
    if (ff_layer_alloc(&head->layer, in, FF_CLASSES, 1, err) != 0) return -1;
    ff_layer_init_for_run(&head->layer, seed, index);
    head->max_rows = max_rows;
    head->scratch = ff_mem_alloc(FF_MEM_ACTIVATIONS, 2 * max_rows * FF_CLASSES * sizeof(float));
    if (head->scratch == NULL) {
        ff_head_free(head);
        return ff_error_set(err, "out of memory for the softmax head's %zu-row scratch", max_rows);
    }
    return 0;
}

uint64_t ff_head_bytes(uint64_t in, uint64_t max_rows) {
    return (4 * (in * FF_CLASSES + FF_CLASSES) + 2 * max_rows * FF_CLASSES) * sizeof(float);
}

void ff_head_free(ff_head_t *head) {
    if (head == NULL) return;
    ff_mem_free(head->scratch);
    ff_layer_free(&head->layer);
    memset(head, 0, sizeof *head);
}

void ff_head_gather(float *features, size_t features_width, const float *activity, size_t rows,
                    size_t width, size_t block) {
    for (size_t i = 0; i < rows; i++)
        ff_dense_normalize(features + i * features_width + block * width, NULL,
                           activity + i * width, 1, width);
}

double ff_head_train_step(ff_head_t *head, const float *x, const uint8_t *labels, size_t rows,
                          const ff_adam_params_t *adam) {
    ff_layer_t *L = &head->layer;
    assert(rows <= head->max_rows);
    double loss = ff_dense_softmax_head(L->grad_weight, L->grad_bias, head->scratch, x, L->weight,
                                        L->bias, labels, rows, L->in, FF_CLASSES);
    ff_layer_adam_step(L, adam);
    return loss;
}

size_t ff_head_correct(ff_head_t *head, const float *x, const uint8_t *labels, size_t rows) {
    const ff_layer_t *L = &head->layer;
    assert(rows <= head->max_rows);
    ff_dense_linear(head->scratch, x, L->weight, L->bias, rows, L->in, FF_CLASSES);
    return ff_eval_correct(head->scratch, labels, rows, FF_CLASSES);
}
