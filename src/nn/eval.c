/* eval.c: candidate-label embedding and argmax scoring. */
#include "ffstream/eval.h"

void ff_eval_embed_candidates(float *out, const float *images, size_t pixels, size_t n,
                              ff_label_mode_t mode) {
    ff_eval_embed_candidates_scaled(out, images, pixels, n, mode, 1.0f);
}

void ff_eval_embed_candidates_scaled(float *out, const float *images, size_t pixels, size_t n,
                                     ff_label_mode_t mode, float scale) {
    size_t dim = ff_data_input_dim(pixels, mode);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < FF_CLASSES; c++)
            ff_data_embed_scaled(out + (i * FF_CLASSES + (size_t)c) * dim, images + i * pixels,
                                 pixels, c, mode, scale);
}

void ff_eval_accumulate(float *scores, const float *goodness, size_t n, float theta) {
    for (size_t r = 0; r < n * FF_CLASSES; r++) scores[r] += goodness[r] - theta;
}

int ff_eval_layer_counts(uint32_t layer, uint32_t layer_count) {
    return layer_count == 1 || layer > 0;
}

size_t ff_eval_correct(const float *scores, const uint8_t *labels, size_t n, size_t classes) {
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        const float *s = scores + i * classes;
        size_t best = 0;
        for (size_t c = 1; c < classes; c++)
            if (s[c] > s[best]) best = c;
        correct += best == labels[i];
    }
    return correct;
}
