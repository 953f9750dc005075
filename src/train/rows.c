/* rows.c: what every row source shares: the shapes of the four sets and
 * the embedding of the first layer's rows. */
#include "ffstream/rows.h"

#include "ffstream/eval.h"

void ff_rows_shapes(ff_set_shape_t shapes[FF_SET_COUNT], const ff_config_t *cfg, uint64_t train,
                    uint64_t test) {
    const uint64_t m = cfg->batch / 2, E = ff_config_eval_images(cfg, test);
    /* Training rows in pieces of a batch; the head's rows in whole batches
     * (its step is one chunk). */
    const uint64_t per_chunk[FF_SET_COUNT] = {ff_config_piece_images(cfg), E, m, E};
    /* The neutral rows exist only for the softmax head. */
    const uint64_t neutral = cfg->eval_softmax != 0;
    const uint64_t units[FF_SET_COUNT] = {train, test, neutral * train, neutral * test};
    const uint32_t rows_per_unit[FF_SET_COUNT] = {2, FF_CLASSES, 1, 1};
    for (int s = 0; s < FF_SET_COUNT; s++) {
        shapes[s].units = units[s];
        shapes[s].units_per_chunk = per_chunk[s];
        shapes[s].rows_per_unit = rows_per_unit[s];
        shapes[s].chunks = per_chunk[s] ? (units[s] + per_chunk[s] - 1) / per_chunk[s] : 0;
    }
}

uint64_t ff_set_chunk_units(const ff_set_shape_t *shape, uint64_t c) {
    uint64_t first = c * shape->units_per_chunk;
    uint64_t left = shape->units - first;
    return left < shape->units_per_chunk ? left : shape->units_per_chunk;
}

size_t ff_set_chunk_rows(const ff_set_shape_t *shape, uint64_t c) {
    return (size_t)(ff_set_chunk_units(shape, c) * shape->rows_per_unit);
}

ff_dense_groups_t ff_set_chunk_groups(const ff_set_shape_t *shape, ff_set_t set, uint64_t c,
                                      size_t shared) {
    const size_t n = (size_t)ff_set_chunk_units(shape, c);
    ff_dense_groups_t g = {.units = n, .copies = shape->rows_per_unit, .shared = shared};
    if (set == FF_SET_TRAIN) {
        g.unit_stride = 1, g.copy_stride = n;
    } else {
        g.unit_stride = shape->rows_per_unit, g.copy_stride = 1;
    }
    if (g.copies < 2) g.shared = 0;
    return g;
}

void ff_rows_embed_chunk(float *out, const ff_rows_data_t *data, const ff_set_shape_t *shape,
                         ff_set_t set, uint64_t c) {
    const int test = set == FF_SET_TEST || set == FF_SET_TEST_NEUTRAL;
    const ff_dataset_t *d = test ? data->test : data->train;
    const size_t P = d->pixels, i0 = (size_t)(c * shape->units_per_chunk);
    const size_t n = (size_t)ff_set_chunk_units(shape, c);
    const float *images = d->images + i0 * P;
    switch (set) {
    case FF_SET_TRAIN: {
        size_t width = ff_data_input_dim(P, data->label);
        ff_data_embed_rows_scaled(out, images, P, NULL, d->labels + i0, n, data->label,
                                  data->label_scale);
        ff_data_embed_rows_scaled(out + n * width, images, P, NULL, data->negative_labels + i0, n,
                                  data->label, data->label_scale);
        break;
    }
    case FF_SET_TEST:
        ff_eval_embed_candidates_scaled(out, images, P, n, data->label, data->label_scale);
        break;
    default: /* neutral rows */
        ff_data_embed_rows_scaled(out, images, P, NULL, NULL, n, data->label, data->label_scale);
        break;
    }
}
