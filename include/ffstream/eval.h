/* eval.h: scoring helpers. FF evaluation tries every label for each image:
 * rows are image-major (row i*10 + c is image i with label c); each counted
 * layer adds (goodness - theta) to score[i][c]; the prediction is the argmax. */
#ifndef FFSTREAM_EVAL_H
#define FFSTREAM_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/data.h"

/* Writes the 10 candidate rows of each of n images: out [n*10, input_dim]. */
void ff_eval_embed_candidates(float *out, const float *images, size_t pixels, size_t n,
                              ff_label_mode_t mode);

/* ff_eval_embed_candidates with the label value multiplied by scale. */
void ff_eval_embed_candidates_scaled(float *out, const float *images, size_t pixels, size_t n,
                                     ff_label_mode_t mode, float scale);

/* scores[i*10 + c] += goodness[i*10 + c] - theta, for n images. */
void ff_eval_accumulate(float *scores, const float *goodness, size_t n, float theta);

/* Whether layer (0-based) of layer_count contributes to the FF score: all
 * but the first, or the only one. */
int ff_eval_layer_counts(uint32_t layer, uint32_t layer_count);

/* @return how many of the n rows of scores [n, classes] have their argmax
 * (first on ties) equal to labels[i]. */
size_t ff_eval_correct(const float *scores, const uint8_t *labels, size_t n, size_t classes);

#endif
