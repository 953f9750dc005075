/* rows_mem.c: the row source of ff-mem. The first layer's rows are embedded
 * from the data as they are read; each later layer's training inputs (its
 * predecessor's outputs on every training row, 2 N H floats) are held in
 * RAM chunk after chunk, exactly as a cache file holds them, so a chunk is
 * read in place. Test and neutral rows are always the first layer's:
 * evaluation and the head's features run through every layer at the end
 * (per_layer_sets = 0). */
#include "ffstream/rows.h"

#include <assert.h>
#include <string.h>

#include "ffstream/memstat.h"

typedef struct {
    const ff_set_shape_t *shape; /* the source's four shapes */
    ff_rows_data_t data;
    uint32_t layer;      /* the current inputs are layer `layer`'s */
    size_t hidden;
    size_t chunk_floats; /* floats of a full training chunk of hidden-wide rows */
    float *scratch;      /* [largest chunk's rows, width0]: first-layer rows */
    float *inputs;       /* [2 N, hidden], chunk-major: the current inputs (layer > 0) */
    float *outputs;      /* the next layer's inputs, being written */
    float *spare;        /* the inputs before: the next pass's outputs (already mapped) */
    uint32_t layers;
} mem_rows_t;

static int mem_begin_layer(void *self, uint32_t layer, ff_error_t *err) {
    mem_rows_t *m = self;
    if (layer != m->layer)
        return ff_error_set(err, "ff-mem rows: layer %u's inputs asked for, layer %u's are held",
                            layer, m->layer);
    return 0;
}

static int mem_begin_pass(void *self, ff_set_t set, int write_next, ff_error_t *err) {
    mem_rows_t *m = self;
    if (!write_next) return 0;
    if (set != FF_SET_TRAIN)
        return ff_error_set(err, "ff-mem rows: only the training rows of a next layer are kept");
    size_t floats, bytes;
    const ff_set_shape_t *sh = &m->shape[FF_SET_TRAIN];
    if (ff_mul_size((size_t)sh->units * 2, m->hidden, &floats) != 0 ||
        ff_mul_size(floats, sizeof(float), &bytes) != 0)
        return ff_error_set(err, "the activation cache (2 x %llu x %zu floats) overflows",
                            (unsigned long long)sh->units, m->hidden);
    if (m->spare != NULL) { /* the same size: every layer's rows are hidden wide */
        m->outputs = m->spare;
        m->spare = NULL;
        return 0;
    }
    m->outputs = ff_mem_alloc(FF_MEM_ACTIVATIONS, bytes);
    if (m->outputs == NULL)
        return ff_error_set(err, "out of memory for the activation cache (2 x %llu x %zu floats)",
                            (unsigned long long)sh->units, m->hidden);
    ff_mem_advise_huge(m->outputs, bytes);
    return 0;
}

static int mem_read(void *self, ff_set_t set, uint64_t c, int writable, float **rows,
                    ff_error_t *err) {
    mem_rows_t *m = self;
    if (set == FF_SET_TRAIN && m->layer > 0) {
        if (writable)
            return ff_error_set(err, "ff-mem rows: layer %u's inputs are shared, not writable",
                                m->layer);
        *rows = m->inputs + c * m->chunk_floats;
        return 0;
    }
    ff_rows_embed_chunk(m->scratch, &m->data, &m->shape[set], set, c);
    *rows = m->scratch;
    return 0;
}

static int mem_prefetch(void *self, ff_set_t set, uint64_t c, ff_error_t *err) {
    (void)self, (void)set, (void)c, (void)err;
    return 0; /* nothing to wait for in RAM */
}

static void mem_release(void *self, ff_set_t set, uint64_t c) { (void)self, (void)set, (void)c; }

static int mem_out_buffer(void *self, ff_set_t set, uint64_t c, float **rows, ff_error_t *err) {
    mem_rows_t *m = self;
    if (set != FF_SET_TRAIN || m->outputs == NULL)
        return ff_error_set(err, "ff-mem rows: no next layer's rows are being written");
    *rows = m->outputs + c * m->chunk_floats;
    return 0;
}

static int mem_out_commit(void *self, ff_set_t set, uint64_t c, ff_error_t *err) {
    (void)self, (void)set, (void)c, (void)err;
    return 0;
}

static int mem_out_finish(void *self, ff_set_t set, ff_error_t *err) {
    (void)self, (void)set, (void)err;
    return 0; /* RAM: nothing to make durable */
}

static int mem_out_reuse(void *self, ff_set_t set, ff_error_t *err) {
    (void)self, (void)set;
    return ff_error_set(err, "ff-mem rows: nothing outlives the process to reuse");
}

static int mem_end_layer(void *self, uint32_t layer, ff_error_t *err) {
    mem_rows_t *m = self;
    (void)err;
    /* At most two caches exist. The old inputs become the outputs of the
     * next pass, if one follows (layer + 1 is not the last): a fresh cache
     * costs a page fault per page on first touch (a second or more per
     * GiB, measured on a virtual machine), once per run instead of once
     * per layer. The peak is a pass's two caches either way. */
    if (layer + 2 < m->layers) {
        m->spare = m->inputs;
    } else {
        ff_mem_free(m->inputs);
    }
    m->inputs = m->outputs;
    m->outputs = NULL;
    m->layer = layer + 1;
    return 0;
}

static void mem_drop_layer(void *self, uint32_t layer) { (void)self, (void)layer; }

static void mem_finish(void *self) { (void)self; }

static void mem_destroy(void *self) {
    mem_rows_t *m = self;
    if (m == NULL) return;
    ff_mem_free(m->outputs);
    ff_mem_free(m->inputs);
    ff_mem_free(m->spare);
    ff_mem_free(m->scratch);
    ff_mem_free(m);
}

static const ff_rows_ops_t mem_ops = {
    .begin_layer = mem_begin_layer,
    .begin_pass = mem_begin_pass,
    .read = mem_read,
    .prefetch = mem_prefetch,
    .release = mem_release,
    .out_buffer = mem_out_buffer,
    .out_commit = mem_out_commit,
    .out_finish = mem_out_finish,
    .out_reuse = mem_out_reuse,
    .end_layer = mem_end_layer,
    .drop_layer = mem_drop_layer,
    .scores_load = NULL, /* per_layer_sets = 0: the loop keeps the scores */
    .scores_save = NULL,
    .features = NULL,
    .finish = mem_finish,
    .destroy = mem_destroy,
};

int ff_rows_mem_create(ff_rows_t *rows, const ff_config_t *cfg, const ff_rows_data_t *data,
                       ff_error_t *err) {
    memset(rows, 0, sizeof *rows);
    ff_rows_shapes(rows->shape, cfg, data->train->count, data->test->count);
    rows->width0 = (uint32_t)ff_data_input_dim(data->train->pixels, cfg->label);
    rows->hidden = cfg->hidden;
    rows->per_layer_sets = 0;
    mem_rows_t *m = ff_mem_calloc(FF_MEM_OTHER, 1, sizeof *m);
    if (m == NULL) return ff_error_set(err, "out of memory");
    m->shape = rows->shape;
    m->data = *data;
    m->hidden = cfg->hidden;
    m->layers = cfg->layers;
    m->chunk_floats = (size_t)rows->shape[FF_SET_TRAIN].units_per_chunk * 2 * cfg->hidden;
    size_t most = 0;
    for (int s = 0; s < FF_SET_COUNT; s++) {
        size_t r = (size_t)(rows->shape[s].units_per_chunk * rows->shape[s].rows_per_unit);
        if (r > most) most = r;
    }
    m->scratch = ff_mem_alloc(FF_MEM_ACTIVATIONS, most * rows->width0 * sizeof(float));
    if (m->scratch == NULL) {
        mem_destroy(m);
        return ff_error_set(err, "out of memory for a %zu-row batch", most);
    }
    rows->ops = &mem_ops;
    rows->self = m;
    return 0;
}
