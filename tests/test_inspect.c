/* test_inspect: the library half of ffinspect. Statistics of hand-computed
 * tensors (zeros of both signs, NaN, infinities, no finite value, a large
 * mean); tensor-by-tensor reading of a damaged file; the safetensors writer's
 * output parsed back byte by byte (length, JSON, padding, contiguous
 * offsets, every tensor's bytes against the layer's); the .npy writer's
 * output parsed (magic, version, header dict, 64-byte alignment, data);
 * verification of files and of a run directory built here (a flipped byte,
 * a truncated file, a missing layer, a broken shape chain, a stray
 * checkpoint, each named); and comparison of files and runs, including
 * tiled files (version 3) against whole-tensor ones, streamed on two threads
 * with memory that does not grow with the layer, and damage on either side
 * named whether it stops the comparison early or at its last tile. */
#include <cjson/cJSON.h>
#include <float.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "ffstream/inspect.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"
#include "ffstream/tilefile.h"

static char dir[FF_PATH_MAX];

static const char *const tensor_names[6] = {
    "weight", "bias", "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias",
};






static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The data of tensor i of layer (weight, bias, adam_m..., adam_v...). */
static const float *tensor_of(const ff_layer_t *layer, int i) {
    const float *blocks[3] = {layer->params, layer->adam_m, layer->adam_v};
    return blocks[i / 2] + (i % 2 == 0 ? 0 : (size_t)layer->in * layer->out);
}


static void meta_for_run(ff_layerfile_meta_t *m, uint32_t index, const ff_run_state_t *run) {
    memset(m, 0, sizeof *m);
    m->layer_index = index;
    m->epochs_done = m->epochs_total = run != NULL ? run->config.epochs : 2;
    m->complete = 1;
    m->loss = 0.5;
    m->data_fingerprint = run != NULL ? run->data_fingerprint : 0x1111;
    m->config_fingerprint = run != NULL ? run->config_fingerprint : 0x2222;
    m->adam = ff_adam_defaults(1e-3);
}

static void save_layer(const char *path, const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                       ff_codec_t codec) {
    ff_error_t err;
    ff_layerfile_options_t opt = {.codec = codec, .level = 3};
    CHECKF(ff_layerfile_save(path, layer, meta, &opt, &err) == 0, "%s", err.msg);
}

/* ---- statistics ---- */

static void check_stats(const char *what, const ff_inspect_stats_t *s, uint64_t finite, double min,
                        double max, double mean, double std, double l2, uint64_t zeros,
                        uint64_t nans, uint64_t infs) {
    CHECKF(s->finite == finite, "%s: finite %llu, expected %llu", what,
           (unsigned long long)s->finite, (unsigned long long)finite);
    CHECK_NEAR(s->min, min, 1e-12);
    CHECK_NEAR(s->max, max, 1e-12);
    CHECK_NEAR(s->mean, mean, 1e-12);
    CHECK_NEAR(s->std, std, 1e-12);
    CHECK_NEAR(s->l2_norm, l2, 1e-12);
    CHECKF(s->zeros == zeros && s->nan_count == nans && s->inf_count == infs,
           "%s: zeros %llu NaN %llu Inf %llu", what, (unsigned long long)s->zeros,
           (unsigned long long)s->nan_count, (unsigned long long)s->inf_count);
}

static void test_stats(void) {
    ff_inspect_stats_t s;
    /* The textbook set: mean 5, population std exactly 2. */
    const float plain[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    ff_inspect_stats(plain, 8, &s);
    CHECK(s.count == 8);
    check_stats("plain", &s, 8, 2, 9, 5, 2, sqrt(232.0), 0, 0, 0);

    /* Finite values {0, -0, 3, -4, 0}: sum -1, mean -0.2, squared
     * deviations 3 * 0.04 + 3.2^2 + 3.8^2 = 24.8, std sqrt(24.8 / 5); L2
     * sqrt(9 + 16) = 5. NaN and the infinities are counted, not averaged. */
    const float mixed[8] = {0.0f, -0.0f, NAN, 3.0f, INFINITY, -4.0f, -INFINITY, 0.0f};
    ff_inspect_stats(mixed, 8, &s);
    CHECK(s.count == 8);
    check_stats("mixed", &s, 5, -4, 3, -0.2, sqrt(24.8 / 5), 5, 3, 1, 2);

    /* No finite value: the moments are NaN, the norm is 0. */
    const float bad[3] = {NAN, INFINITY, NAN};
    ff_inspect_stats(bad, 3, &s);
    CHECK(s.finite == 0 && s.nan_count == 2 && s.inf_count == 1 && s.zeros == 0);
    CHECK(isnan(s.min) && isnan(s.max) && isnan(s.mean) && isnan(s.std));
    CHECK(s.l2_norm == 0);
    ff_inspect_stats(NULL, 0, &s);
    CHECK(s.count == 0 && s.finite == 0 && isnan(s.mean));

    /* A spread of 0.5 about 1e6: one pass of sum-of-squares would lose it. */
    const float offset[4] = {1000000.5f, 999999.5f, 1000000.5f, 999999.5f};
    ff_inspect_stats(offset, 4, &s);
    CHECK_NEAR(s.mean, 1e6, 1e-9);
    CHECK_NEAR(s.std, 0.5, 1e-9);
    printf("stats: hand-computed values agree\n");
}

/* ---- reading a damaged file tensor by tensor ---- */

static void test_file_read(void) {
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    ff_error_t err;
    char path[512];
    check_path(path, dir, "read.ffl");
    check_make_layer(&layer, 7, 5, 1, 3);
    layer.weight[4] = 0.0f;
    layer.weight[9] = NAN;
    layer.bias[2] = -INFINITY;
    meta_for_run(&meta, 3, NULL);
    save_layer(path, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);

    ff_inspect_file_t *f = malloc(sizeof *f);
    CHECKF(ff_inspect_file_read(path, f, &err) == 0, "%s", err.msg);
    CHECK(f->info.tensor_count == 6 && f->info.meta.layer_index == 3);
    for (int i = 0; i < 6; i++) {
        ff_inspect_stats_t direct;
        size_t count = (size_t)f->info.tensors[i].raw_bytes / sizeof(float);
        ff_inspect_stats(tensor_of(&layer, i), count, &direct);
        CHECKF(f->readable[i], "%s", f->error[i]);
        CHECK(f->stats[i].count == count && f->stats[i].finite == direct.finite);
        CHECK(f->stats[i].min == direct.min && f->stats[i].max == direct.max);
        CHECK(f->stats[i].mean == direct.mean && f->stats[i].l2_norm == direct.l2_norm);
    }
    CHECK(f->stats[0].nan_count == 1 && f->stats[0].zeros >= 1 && f->stats[1].inf_count == 1);

    /* A flipped byte inside the bias: only the bias is unreadable, and the
     * message names the file, the tensor and the checksum. */
    check_flip_byte(path, (size_t)f->info.tensors[1].offset + 3);
    CHECKF(ff_inspect_file_read(path, f, &err) == 0, "%s", err.msg);
    CHECK(f->readable[0] && !f->readable[1] && f->readable[2] && f->readable[5]);
    CHECK_CONTAINS(f->error[1], path);
    CHECK_CONTAINS(f->error[1], "tensor bias: crc32 mismatch");

    /* A file that is not a layer file at all is refused as a whole. */
    char junk[512];
    check_path(junk, dir, "junk.ffl");
    check_write_file(junk, "hello, world, this is not a checkpoint", 38);
    CHECK(ff_inspect_file_read(junk, f, &err) == -1);
    CHECK_CONTAINS(err.msg, "not an ffstream layer file");
    free(f);
    ff_layer_free(&layer);
}

/* ---- safetensors ---- */

/* Parses a safetensors file and checks it against layers[0..count)
 * (indices index[]): the length prefix, the JSON, the padding, every entry's
 * dtype, shape and offsets, contiguity, and every tensor's bytes. */
static void check_safetensors(const char *path, const ff_layer_t *layers, const uint32_t *index,
                              int count, int with_optimizer) {
    size_t size;
    uint8_t *bytes = check_read_file(path, &size);
    CHECKF(bytes != NULL && size >= 8, "cannot read %s", path);
    if (bytes == NULL || size < 8) {
        free(bytes);
        return;
    }
    uint64_t n = le64(bytes);
    CHECKF(n % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)n);
    CHECK(n <= size - 8);
    if (n > size - 8) {
        free(bytes);
        return;
    }
    CHECK(bytes[8] == '{');
    /* The JSON ends at its closing brace; only spaces may follow. */
    size_t end = 8 + (size_t)n;
    while (end > 8 && bytes[end - 1] == ' ') end--;
    CHECK(end > 8 && bytes[end - 1] == '}');
    CHECK(8 + n - end < 8);
    char *text = malloc((size_t)n + 1);
    memcpy(text, bytes + 8, (size_t)n);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    CHECKF(root != NULL, "header is not JSON: %s", text);
    if (root == NULL) {
        free(text);
        free(bytes);
        return;
    }
    const uint8_t *data = bytes + 8 + n;
    uint64_t data_bytes = size - 8 - n;

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    CHECK(cJSON_IsObject(meta));
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(meta, "format");
    CHECK(cJSON_IsString(format) && strcmp(format->valuestring, "pt") == 0);
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(meta, "source");
    CHECK(cJSON_IsString(source) && strcmp(source->valuestring, "ffstream") == 0);
    const cJSON *nlayers = cJSON_GetObjectItemCaseSensitive(meta, "layers");
    char want[64];
    snprintf(want, sizeof want, "%d", count);
    CHECK(cJSON_IsString(nlayers) && strcmp(nlayers->valuestring, want) == 0);
    for (const cJSON *m = meta != NULL ? meta->child : NULL; m != NULL; m = m->next)
        CHECKF(cJSON_IsString(m), "metadata %s is not a string", m->string);
    if (with_optimizer) {
        snprintf(want, sizeof want, "layers.%u.adam_step", index[0]);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(meta, want);
        char step_text[32];
        snprintf(step_text, sizeof step_text, "%lld", (long long)layers[0].adam_step);
        CHECK(cJSON_IsString(step) && strcmp(step->valuestring, step_text) == 0);
    }

    /* The entries, in the order listed: contiguous from 0, ending at the
     * end of the file, each holding exactly the layer's bytes. */
    int per_layer = with_optimizer ? 6 : 2, entries = 0;
    uint64_t expect_begin = 0;
    const cJSON *e = root->child;
    for (int l = 0; l < count; l++) {
        for (int t = 0; t < per_layer; t++) {
            while (e != NULL && strcmp(e->string, "__metadata__") == 0) e = e->next;
            CHECK(e != NULL);
            if (e == NULL) break;
            char name[64];
            snprintf(name, sizeof name, "layers.%u.%s", index[l], tensor_names[t]);
            CHECKF(strcmp(e->string, name) == 0, "entry %s, expected %s", e->string, name);
            const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
            CHECK(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "F32") == 0);
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
            const ff_layer_t *layer = &layers[l];
            if (t % 2 == 0) {
                CHECK(cJSON_GetArraySize(shape) == 2);
                CHECK(cJSON_GetArrayItem(shape, 0)->valuedouble == layer->out);
                CHECK(cJSON_GetArrayItem(shape, 1)->valuedouble == layer->in);
            } else {
                CHECK(cJSON_GetArraySize(shape) == 1);
                CHECK(cJSON_GetArrayItem(shape, 0)->valuedouble == layer->out);
            }
            const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
            CHECK(cJSON_GetArraySize(offsets) == 2);
            uint64_t begin = (uint64_t)cJSON_GetArrayItem(offsets, 0)->valuedouble;
            uint64_t stop = (uint64_t)cJSON_GetArrayItem(offsets, 1)->valuedouble;
            size_t floats = t % 2 == 0 ? (size_t)layer->in * layer->out : layer->out;
            CHECKF(begin == expect_begin, "%s begins at %llu, expected %llu", name,
                   (unsigned long long)begin, (unsigned long long)expect_begin);
            CHECK(stop - begin == floats * sizeof(float));
            CHECK(stop <= data_bytes);
            if (stop <= data_bytes && stop - begin == floats * sizeof(float))
                CHECKF(memcmp(data + begin, tensor_of(layer, t), floats * sizeof(float)) == 0,
                       "%s: bytes differ from the layer's", name);
            expect_begin = stop;
            entries++;
            e = e->next;
        }
    }
    CHECKF(e == NULL, "unexpected entry %s", e != NULL ? e->string : "");
    CHECK(entries == count * per_layer);
    CHECK(expect_begin == data_bytes);
    cJSON_Delete(root);
    free(text);
    free(bytes);
}

static void test_safetensors(void) {
    ff_layer_t layers[2];
    ff_layerfile_meta_t meta;
    ff_error_t err;
    char paths[2][512], out[512];
    const uint32_t index[2] = {0, 1};
    check_make_layer(&layers[0], 9, 6, 1, 1);
    check_make_layer(&layers[1], 6, 6, 1, 2);
    const ff_codec_t codecs[2] = {FF_CODEC_RAW, FF_CODEC_ZSTD};
    for (int l = 0; l < 2; l++) {
        char name[32];
        snprintf(name, sizeof name, "st-%d.ffl", l);
        check_path(paths[l], dir, name);
        meta_for_run(&meta, index[l], NULL);
        save_layer(paths[l], &layers[l], &meta, codecs[l]);
    }
    const char *list[2] = {paths[0], paths[1]};
    ff_inspect_export_t result;
    for (int with_optimizer = 0; with_optimizer <= 1; with_optimizer++) {
        check_path(out, dir, with_optimizer ? "all.safetensors" : "model.safetensors");
        CHECKF(ff_inspect_export_safetensors(out, list, 2, &(ff_inspect_export_options_t){with_optimizer, 1, NULL}, &result, &err) == 0,
               "%s", err.msg);
        CHECK(result.tensors == (size_t)(with_optimizer ? 12 : 4));
        struct stat st;
        CHECK(stat(out, &st) == 0 && (uint64_t)st.st_size == result.bytes);
        check_safetensors(out, layers, index, 2, with_optimizer);
    }
    /* One file alone is named by the layer index in its header. */
    ff_layer_t lone;
    char lone_path[512];
    const uint32_t lone_index = 7;
    check_make_layer(&lone, 3, 2, 0, 9);
    check_path(lone_path, dir, "lone.ffl");
    meta_for_run(&meta, lone_index, NULL);
    save_layer(lone_path, &lone, &meta, FF_CODEC_ZSTD_SHUFFLE);
    const char *one[1] = {lone_path};
    check_path(out, dir, "lone.safetensors");
    CHECKF(ff_inspect_export_safetensors(out, one, 1, &(ff_inspect_export_options_t){0, 1, NULL}, &result, &err) == 0, "%s", err.msg);
    check_safetensors(out, &lone, &lone_index, 1, 0);

    /* Refusals: Adam state the file lacks, two files of the same layer. */
    CHECK(ff_inspect_export_safetensors(out, one, 1, &(ff_inspect_export_options_t){1, 1, NULL}, &result, &err) == -1);
    CHECK_CONTAINS(err.msg, lone_path);
    CHECK_CONTAINS(err.msg, "no Adam state");
    const char *twice[2] = {paths[0], paths[0]};
    CHECK(ff_inspect_export_safetensors(out, twice, 2, &(ff_inspect_export_options_t){0, 1, NULL}, &result, &err) == -1);
    CHECK_CONTAINS(err.msg, "both layer 0");
    /* The refused exports left the earlier file and no temporary behind. */
    check_safetensors(out, &lone, &lone_index, 1, 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    printf("safetensors: header, alignment, offsets and bytes of 2 exports agree\n");
    ff_layer_free(&lone);
    ff_layer_free(&layers[1]);
    ff_layer_free(&layers[0]);
}

/* ---- npy ---- */

/* Parses a .npy file: magic, version 1.0, header length, dict, padding to
 * 64 bytes, '\n', then exactly the expected floats. */
static void check_npy(const char *path, const float *expect, uint32_t ndim, const uint64_t *shape) {
    size_t size;
    uint8_t *bytes = check_read_file(path, &size);
    CHECKF(bytes != NULL && size >= 10, "cannot read %s", path);
    if (bytes == NULL || size < 10) {
        free(bytes);
        return;
    }
    CHECK(memcmp(bytes, "\x93NUMPY", 6) == 0);
    CHECK(bytes[6] == 1 && bytes[7] == 0);
    size_t header = (size_t)bytes[8] | (size_t)bytes[9] << 8;
    CHECKF((10 + header) % 64 == 0, "%s: data start at %zu", path, 10 + header);
    CHECK(10 + header <= size);
    if (10 + header > size) {
        free(bytes);
        return;
    }
    CHECK(bytes[10 + header - 1] == '\n');
    char dict[256] = {0};
    memcpy(dict, bytes + 10, header < sizeof dict - 1 ? header : sizeof dict - 1);
    char want[128];
    if (ndim == 1)
        snprintf(want, sizeof want, "'shape': (%llu,)", (unsigned long long)shape[0]);
    else
        snprintf(want, sizeof want, "'shape': (%llu, %llu)", (unsigned long long)shape[0],
                 (unsigned long long)shape[1]);
    CHECK(dict[0] == '{');
    CHECK_CONTAINS(dict, "'descr': '<f4'");
    CHECK_CONTAINS(dict, "'fortran_order': False");
    CHECK_CONTAINS(dict, want);
    /* After the closing brace only spaces, then the newline. */
    char *close = strrchr(dict, '}');
    CHECK(close != NULL);
    for (char *p = close != NULL ? close + 1 : dict; p < dict + header - 1; p++) CHECK(*p == ' ');
    size_t count = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    CHECKF(size - 10 - header == count * sizeof(float), "%s: %zu data bytes, expected %zu", path,
           size - 10 - header, count * sizeof(float));
    if (size - 10 - header == count * sizeof(float))
        CHECK(memcmp(bytes + 10 + header, expect, count * sizeof(float)) == 0);
    free(bytes);
}

static void test_npy(void) {
    ff_error_t err;
    char path[512];
    float values[12];
    for (int i = 0; i < 12; i++) values[i] = (float)i * 0.25f - 1.0f;
    const uint64_t shape2[2] = {3, 4}, shape1[1] = {12};
    check_path(path, dir, "matrix.npy");
    CHECKF(ff_inspect_write_npy(path, values, 2, shape2, &err) == 0, "%s", err.msg);
    check_npy(path, values, 2, shape2);
    check_path(path, dir, "vector.npy");
    CHECKF(ff_inspect_write_npy(path, values, 1, shape1, &err) == 0, "%s", err.msg);
    check_npy(path, values, 1, shape1);
    CHECK(ff_inspect_write_npy(path, values, 3, shape1, &err) == -1);

    /* A whole layer with its Adam state: one file per tensor. */
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    char file[512], out[512];
    check_make_layer(&layer, 5, 4, 1, 4);
    check_path(file, dir, "npy-src.ffl");
    meta_for_run(&meta, 2, NULL);
    save_layer(file, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
    check_path(out, dir, "npy");
    const char *list[1] = {file};
    ff_inspect_export_t result;
    CHECKF(ff_inspect_export_npy(out, list, 1, &(ff_inspect_export_options_t){1, 1, NULL}, &result, &err) == 0, "%s", err.msg);
    CHECK(result.tensors == 6);
    uint64_t total = 0;
    for (int t = 0; t < 6; t++) {
        char name[600];
        snprintf(name, sizeof name, "%s/layers.2.%s.npy", out, tensor_names[t]);
        const uint64_t shape[2] = {4, t % 2 == 0 ? 5 : 0};
        check_npy(name, tensor_of(&layer, t), t % 2 == 0 ? 2 : 1, shape);
        struct stat st;
        if (stat(name, &st) == 0) total += (uint64_t)st.st_size;
    }
    CHECK(total == result.bytes);
    printf("npy: headers, alignment and data of 8 files agree\n");
    ff_layer_free(&layer);
}

/* ---- verification ---- */

static int count_problems(const ff_inspect_report_t *r, const char *file, const char *tensor,
                          const char *fragment) {
    int n = 0;
    for (size_t i = 0; i < r->count; i++) {
        const ff_inspect_problem_t *p = &r->problems[i];
        if (file != NULL && strcmp(p->file, file) != 0) continue;
        if (tensor != NULL && strcmp(p->tensor, tensor) != 0) continue;
        if (fragment != NULL && strstr(p->message, fragment) == NULL) continue;
        n++;
    }
    return n;
}

static void print_problems(const ff_inspect_report_t *r) {
    for (size_t i = 0; i < r->count; i++)
        fprintf(stderr, "  problem: %s\n", r->problems[i].message);
}

static void test_verify_file(void) {
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    ff_error_t err;
    char path[512];
    check_path(path, dir, "verify.ffl");
    check_make_layer(&layer, 8, 3, 1, 5);
    meta_for_run(&meta, 0, NULL);
    save_layer(path, &layer, &meta, FF_CODEC_ZSTD);
    ff_layerfile_info_t info;
    CHECKF(ff_layerfile_read_info(path, &info, &err) == 0, "%s", err.msg);

    ff_inspect_report_t r = {0};
    CHECKF(ff_inspect_verify_file(path, -1, &r, &err) == 0, "%s", err.msg);
    CHECK(r.count == 0 && r.files_checked == 1 && r.tensors_checked == 6);
    ff_inspect_report_free(&r);

    /* Two damaged tensors: both named, the others pass. */
    check_flip_byte(path, (size_t)info.tensors[0].offset + info.tensors[0].stored_bytes / 2);
    check_flip_byte(path, (size_t)info.tensors[4].offset + 1);
    CHECKF(ff_inspect_verify_file(path, 0, &r, &err) == 0, "%s", err.msg);
    CHECK(r.count == 2);
    CHECK(count_problems(&r, path, "weight", "crc32 mismatch") == 1);
    CHECK(count_problems(&r, path, "adam_v.weight", "crc32 mismatch") == 1);
    CHECK(r.count == 2 && r.problems[0].kind == FF_INSPECT_PROBLEM_FILE &&
          r.problems[0].layer == 0);
    ff_inspect_report_free(&r);

    /* Truncated inside the last tensor: the header check names it. */
    save_layer(path, &layer, &meta, FF_CODEC_ZSTD);
    CHECK(truncate(path, (off_t)(info.file_bytes - 2)) == 0);
    CHECKF(ff_inspect_verify_file(path, -1, &r, &err) == 0, "%s", err.msg);
    CHECK(r.count == 1);
    CHECK(count_problems(&r, path, "adam_v.bias", "truncated") == 1);
    if (r.count != 1) print_problems(&r);
    ff_inspect_report_free(&r);
    ff_layer_free(&layer);
    printf("verify file: flipped bytes and truncation named\n");
}

/* A run directory of three layers 6 -> 4 -> 4 -> 4 written here with the
 * library's own writers (what fftrain leaves behind, without training). */
static void make_run(const char *run_dir, ff_run_state_t *state, uint64_t seed) {
    ff_error_t err;
    CHECKF(ff_run_make_dirs(run_dir, &err) == 0, "%s", err.msg);
    memset(state, 0, sizeof *state);
    ff_config_defaults(&state->config);
    state->config.layers = 3;
    state->config.hidden = 4;
    state->config.epochs = 2;
    state->config.mode = FF_MODE_FF_STREAM;
    state->config_fingerprint = ff_config_fingerprint(&state->config);
    state->data_fingerprint = 0x123456;
    state->train_samples = 100;
    state->test_samples = 20;
    state->cache_layer = 2;
    state->finished = 1;
    state->hashed_layers = 3;
    for (uint32_t k = 0; k < 3; k++) {
        ff_layer_t layer;
        ff_layerfile_meta_t meta;
        char path[600];
        check_make_layer(&layer, k == 0 ? 6 : 4, 4, 1, seed + k);
        meta_for_run(&meta, k, state);
        CHECK(ff_run_layer_path(path, run_dir, k, NULL) == 0);
        save_layer(path, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
        ff_layer_free(&layer);
    }
    CHECKF(ff_run_write(run_dir, state, &err) == 0, "%s", err.msg);
}

static void test_verify_run(void) {
    ff_error_t err;
    ff_run_state_t state;
    char run_dir[512], path1[600], path2[600], stray[600];
    check_path(run_dir, dir, "run");
    make_run(run_dir, &state, 10);
    ff_run_layer_path(path1, run_dir, 1, NULL);
    ff_run_layer_path(path2, run_dir, 2, NULL);

    ff_inspect_run_t run;
    CHECKF(ff_inspect_run_open(&run, run_dir, &err) == 0, "%s", err.msg);
    CHECK(run.state.config.layers == 3 && ff_inspect_run_present_layers(&run) == 3);
    for (uint32_t k = 0; k < 3; k++) {
        CHECK(run.layers[k].status == FF_INSPECT_TRAINED && run.layers[k].has_info);
        CHECK(run.layers[k].info.out == 4 && run.layers[k].info.in == (k == 0 ? 6u : 4u));
        CHECK(run.layers[k].raw_bytes ==
              3 * (uint64_t)run.layers[k].info.out * (run.layers[k].info.in + 1) * sizeof(float));
    }
    ff_inspect_run_free(&run);

    ff_inspect_report_t r = {0};
    CHECKF(ff_inspect_verify_run(run_dir, &r, &err) == 0, "%s", err.msg);
    CHECKF(r.count == 0, "%zu problems in a sound run", r.count);
    if (r.count != 0) print_problems(&r);
    CHECK(r.files_checked == 3 && r.tensors_checked == 18);
    ff_inspect_report_free(&r);

    /* A missing layer in a finished run. */
    char saved[600];
    snprintf(saved, sizeof saved, "%s.saved", path1);
    CHECK(rename(path1, saved) == 0);
    CHECKF(ff_inspect_run_open(&run, run_dir, &err) == 0, "%s", err.msg);
    CHECK(run.layers[1].status == FF_INSPECT_MISSING && ff_inspect_run_present_layers(&run) == 1);
    ff_inspect_run_free(&run);
    CHECKF(ff_inspect_verify_run(run_dir, &r, &err) == 0, "%s", err.msg);
    CHECK(count_problems(&r, path1, NULL, "layer 1 is missing") == 1);
    CHECK(r.count == 1);
    ff_inspect_report_free(&r);

    /* Layer 1 replaced by a 6 -> 4 layer: the shapes no longer chain. */
    ff_layer_t wide;
    ff_layerfile_meta_t meta;
    check_make_layer(&wide, 6, 4, 1, 99);
    meta_for_run(&meta, 1, &state);
    save_layer(path1, &wide, &meta, FF_CODEC_RAW);
    ff_layer_free(&wide);
    CHECKF(ff_inspect_verify_run(run_dir, &r, &err) == 0, "%s", err.msg);
    CHECK(count_problems(&r, path1, "weight", "takes 6 inputs but layer 0 gives 4") == 1);
    CHECK(count_problems(&r, path2, "weight", "takes 4 inputs but layer 1 gives 4") == 0);
    CHECK(r.count == 1);
    ff_inspect_report_free(&r);
    CHECK(rename(saved, path1) == 0);

    /* A flipped byte in layer 2, a stray layer 3, and a pending run. */
    ff_layerfile_info_t info;
    CHECKF(ff_layerfile_read_info(path2, &info, &err) == 0, "%s", err.msg);
    check_flip_byte(path2, (size_t)info.tensors[3].offset);
    ff_run_layer_path(stray, run_dir, 3, NULL);
    check_copy_file(path1, stray);
    CHECKF(ff_inspect_verify_run(run_dir, &r, &err) == 0, "%s", err.msg);
    CHECK(count_problems(&r, path2, "adam_m.bias", "crc32 mismatch") == 1);
    CHECK(count_problems(&r, stray, NULL, "beyond the run's 3 layers") == 1);
    CHECK(r.count == 2);
    if (r.count != 2) print_problems(&r);
    ff_inspect_report_free(&r);
    CHECK(unlink(stray) == 0);

    /* Not finished, caches of layer 1 done: layer 2 pending when absent. */
    state.finished = 0;
    state.cache_layer = 1;
    CHECK(unlink(path2) == 0);
    CHECKF(ff_run_write(run_dir, &state, &err) == 0, "%s", err.msg);
    CHECKF(ff_inspect_verify_run(run_dir, &r, &err) == 0, "%s", err.msg);
    CHECK(r.count == 0 && r.pending_layers == 1 && r.files_checked == 2);
    if (r.count != 0) print_problems(&r);
    ff_inspect_report_free(&r);
    CHECKF(ff_inspect_run_open(&run, run_dir, &err) == 0, "%s", err.msg);
    CHECK(run.layers[2].status == FF_INSPECT_PENDING);
    ff_inspect_run_free(&run);

    /* No run.json at all. */
    char empty[512];
    check_path(empty, dir, "not-a-run");
    CHECK(mkdir(empty, 0755) == 0);
    CHECKF(ff_inspect_verify_run(empty, &r, &err) == 0, "%s", err.msg);
    CHECK(r.count == 1 && count_problems(&r, NULL, NULL, "run.json") == 1);
    ff_inspect_report_free(&r);
    printf("verify run: missing layer, broken chain, damaged tensor, stray file named\n");
}

/* ---- comparison ---- */

static void test_diff(void) {
    ff_error_t err;
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    char a[512], b[512];
    check_path(a, dir, "diff-a.ffl");
    check_path(b, dir, "diff-b.ffl");
    check_make_layer(&layer, 5, 3, 1, 21);
    meta_for_run(&meta, 0, NULL);
    save_layer(a, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
    save_layer(b, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);

    ff_inspect_file_diff_t *d = malloc(sizeof *d);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    CHECK(d->readable && d->identical && d->headers_identical && d->shapes_equal);
    CHECK(d->tensor_count == 6 && d->tensors[0].count == 15 && d->tensors[0].identical);

    /* Another codec: the same numbers, other header bytes. */
    save_layer(b, &layer, &meta, FF_CODEC_RAW);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    CHECK(d->identical && !d->headers_identical);

    /* Two changed values: the largest differences are exact. */
    float w0 = layer.weight[0];
    layer.weight[0] = w0 + 0.25f;
    layer.weight[7] = NAN;
    layer.bias[1] = -layer.bias[1];
    save_layer(b, &layer, &meta, FF_CODEC_RAW);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    CHECK(!d->identical && d->tensors[2].identical);
    CHECK(d->tensors[0].differing == 2 && d->tensors[0].nan_mismatches == 1);
    CHECK_NEAR(d->tensors[0].max_abs, (double)(w0 + 0.25f) - w0, 1e-12);
    CHECK_NEAR(d->tensors[0].max_rel, ((double)(w0 + 0.25f) - w0) / fabs(w0), 1e-9);
    CHECK(d->tensors[1].differing == 1);
    CHECK_NEAR(d->tensors[1].max_abs, 2 * fabs(layer.bias[1]), 1e-12);
    CHECK_NEAR(d->tensors[1].max_rel, 2, 1e-12);

    /* Without Adam state on one side, and another shape. */
    ff_layer_t plain;
    check_make_layer(&plain, 5, 3, 0, 21);
    save_layer(b, &plain, &meta, FF_CODEC_RAW);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    CHECK(!d->identical && d->tensor_count == 6 && d->tensors[0].identical);
    CHECK(d->tensors[2].in_a && !d->tensors[2].in_b);
    ff_layer_free(&plain);
    check_make_layer(&plain, 4, 3, 1, 21);
    save_layer(b, &plain, &meta, FF_CODEC_RAW);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    CHECK(!d->identical && !d->shapes_equal && !d->tensors[0].shapes_equal);
    CHECK(d->tensors[1].shapes_equal);
    ff_layer_free(&plain);

    /* A damaged file cannot be compared, and says so. */
    save_layer(b, &layer, &meta, FF_CODEC_RAW);
    ff_layerfile_info_t info;
    CHECKF(ff_layerfile_read_info(b, &info, &err) == 0, "%s", err.msg);
    check_flip_byte(b, (size_t)info.tensors[1].offset);
    CHECK(ff_inspect_diff_files(a, b, d, &err) == -1);
    CHECK(!d->readable && !d->identical);
    CHECK_CONTAINS(err.msg, "tensor bias: crc32 mismatch");
    CHECK_CONTAINS(d->error, b);
    free(d);
    ff_layer_free(&layer);

    /* Runs: equal runs, one with another layer, one with another count. */
    ff_run_state_t state;
    char run_a[512], run_b[512], run_c[512];
    check_path(run_a, dir, "diff-run-a");
    check_path(run_b, dir, "diff-run-b");
    check_path(run_c, dir, "diff-run-c");
    make_run(run_a, &state, 40);
    make_run(run_b, &state, 40);
    ff_inspect_run_diff_t rd;
    CHECKF(ff_inspect_diff_runs(run_a, run_b, &rd, &err) == 0, "%s", err.msg);
    CHECK(rd.identical && rd.layer_count == 3 && rd.unreadable == 0);
    CHECK(rd.layers[2].headers_identical);
    ff_inspect_run_diff_free(&rd);
    make_run(run_c, &state, 40);
    char path[600];
    ff_run_layer_path(path, run_b, 1, NULL);
    check_make_layer(&layer, 4, 4, 1, 1000);
    meta_for_run(&meta, 1, &state);
    save_layer(path, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
    ff_layer_free(&layer);
    CHECKF(ff_inspect_diff_runs(run_a, run_b, &rd, &err) == 0, "%s", err.msg);
    CHECK(!rd.identical && rd.layers[0].identical && !rd.layers[1].identical);
    CHECK(rd.layers[1].tensors[0].max_abs > 0 && rd.layers[2].identical);
    ff_inspect_run_diff_free(&rd);
    CHECK(unlink(path) == 0);
    CHECKF(ff_inspect_diff_runs(run_a, run_b, &rd, &err) == 0, "%s", err.msg);
    CHECK(!rd.identical && rd.unreadable == 1 && !rd.layers[1].readable);
    CHECK_CONTAINS(rd.layers[1].error, path);
    ff_inspect_run_diff_free(&rd);
    state.config.layers = 2;
    state.config_fingerprint = ff_config_fingerprint(&state.config);
    state.cache_layer = 1;
    state.finished = 0;
    state.hashed_layers = 1;
    CHECKF(ff_run_write(run_c, &state, &err) == 0, "%s", err.msg);
    CHECKF(ff_inspect_diff_runs(run_a, run_c, &rd, &err) == 0, "%s", err.msg);
    CHECK(!rd.identical && rd.layer_count == 0);
    CHECK_CONTAINS(rd.message, "different layer counts");
    ff_inspect_run_diff_free(&rd);
    printf("diff: identical, changed, NaN, missing tensors, shapes, damaged files, runs\n");
}

/* ---- comparison of tiled files ---- */

/* Writes layer (with its Adam state) as a tiled file (tilefile.h) of units
 * output units per tile, as the trainer's tiles do. */
static void save_tiled(const char *path, const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                       uint32_t units) {
    ff_tilefile_t tf;
    ff_error_t err;
    unlink(path);
    CHECKF(ff_tilefile_geometry(&tf, layer->in, layer->out, units, &err) == 0 &&
               ff_tilefile_create(&tf, path, &err) == 0,
           "%s", err.msg);
    uint8_t *frame = ff_mem_alloc_aligned(FF_MEM_OTHER, (size_t)tf.frame_bytes, FF_TILE_ALIGN);
    CHECK(frame != NULL);
    const size_t in = layer->in;
    for (uint32_t t = 0; frame != NULL && t < tf.count; t++) {
        const size_t rows = ff_tilefile_rows(&tf, t), first = (size_t)t * tf.units;
        memset(frame, 0, (size_t)tf.frame_bytes);
        for (int r = 0; r < 3; r++) {
            float *region = (float *)(frame + r * tf.region_bytes);
            memcpy(region, tensor_of(layer, 2 * r) + first * in, rows * in * sizeof(float));
            memcpy(region + rows * in, tensor_of(layer, 2 * r + 1) + first, rows * sizeof(float));
        }
        CHECKF(ff_tilefile_write_next(&tf, frame, 3, &err) == 0, "%s", err.msg);
    }
    tf.adam_step = layer->adam_step;
    tf.meta = *meta;
    CHECKF(ff_tilefile_write_header(&tf, &err) == 0 && ff_tilefile_sync(&tf, &err) == 0, "%s",
           err.msg);
    ff_tilefile_close(&tf);
    ff_mem_free(frame);
}

/* The offset of byte `at` of tile t's region r in a tiled file in -> out. */
static size_t tile_byte(uint32_t in, uint32_t out, uint32_t units, uint32_t t, int r, size_t at) {
    ff_tilefile_t g;
    ff_error_t err;
    CHECKF(ff_tilefile_geometry(&g, in, out, units, &err) == 0, "%s", err.msg);
    return (size_t)(g.data_offset + t * g.frame_bytes + r * g.region_bytes + at);
}

/* Bytes ff_inspect_diff_files(a, b) takes at its peak beyond what was live. */
static uint64_t diff_peak(const char *a, const char *b, ff_inspect_file_diff_t *d) {
    ff_error_t err;
    ff_mem_stats_t before, after;
    ff_mem_reset_peaks();
    ff_mem_stats(&before);
    CHECKF(ff_inspect_diff_files(a, b, d, &err) == 0, "%s", err.msg);
    ff_mem_stats(&after);
    CHECK(after.current_total == before.current_total);
    return after.peak_total - before.current_total;
}

static void test_diff_tiled(void) {
    ff_error_t err;
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    char whole[512], t7[512], t45[512], t1[512], changed[512], bad[512], big[512];
    check_path(whole, dir, "tiled-whole.ffl");
    check_path(t7, dir, "tiled-7.ffl");
    check_path(t45, dir, "tiled-45.ffl");
    check_path(t1, dir, "tiled-1.ffl");
    check_path(changed, dir, "tiled-changed.ffl");
    check_path(bad, dir, "tiled-bad.ffl");
    check_path(big, dir, "tiled-big.ffl");
    check_make_layer(&layer, 61, 45, 1, 5);
    meta_for_run(&meta, 2, NULL);
    save_layer(whole, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
    save_tiled(t7, &layer, &meta, 7); /* 7 tiles, the last of 3 units */
    save_tiled(t45, &layer, &meta, 45);
    save_tiled(t1, &layer, &meta, 1);

    /* The same numbers whole, in 7 tiles, in 1 and in 45: identical either
     * way round. */
    ff_inspect_file_diff_t *d = malloc(sizeof *d);
    const char *pairs[][2] = {{whole, t7}, {t7, whole}, {t7, t45}, {t1, t7}, {t45, whole}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        CHECKF(ff_inspect_diff_files(pairs[p][0], pairs[p][1], d, &err) == 0, "%s", err.msg);
        CHECKF(d->readable && d->identical && d->shapes_equal && !d->headers_identical,
               "%s vs %s", pairs[p][0], pairs[p][1]);
        CHECK(d->tensor_count == 6 && d->tensors[0].count == 61 * 45 && d->tensors[5].count == 45);
    }

    /* Values changed in the first and the last tile: found, exactly. */
    float w = layer.weight[44 * 61 + 60], v = layer.adam_v[3];
    layer.weight[44 * 61 + 60] = w + 0.5f;
    layer.bias[44] = NAN;
    layer.adam_v[3] = 2 * v;
    save_tiled(changed, &layer, &meta, 7);
    CHECKF(ff_inspect_diff_files(whole, changed, d, &err) == 0, "%s", err.msg);
    CHECK(d->readable && !d->identical && d->tensors[2].identical && d->tensors[3].identical);
    CHECK(d->tensors[0].differing == 1 && d->tensors[0].nan_mismatches == 0);
    CHECK_NEAR(d->tensors[0].max_abs, (double)(w + 0.5f) - w, 1e-12);
    CHECK(d->tensors[1].differing == 1 && d->tensors[1].nan_mismatches == 1 &&
          d->tensors[1].max_abs == 0);
    CHECK(d->tensors[4].differing == 1 && d->tensors[5].identical);
    CHECK_NEAR(d->tensors[4].max_rel, 1, 1e-12);
    ff_layer_free(&layer);

    /* Damage in tile 3 of either side: the comparison fails naming the file
     * and the tile, B's error reported over the stream it stopped. */
    check_copy_file(t7, bad);
    check_flip_byte(bad, tile_byte(61, 45, 7, 3, 0, 100));
    const char *damaged[][2] = {{whole, bad}, {bad, whole}, {bad, t7}, {t1, bad}};
    for (size_t p = 0; p < sizeof damaged / sizeof damaged[0]; p++) {
        CHECK(ff_inspect_diff_files(damaged[p][0], damaged[p][1], d, &err) == -1);
        CHECK(!d->readable && !d->identical);
        CHECK_CONTAINS(err.msg, bad);
        CHECK_CONTAINS(err.msg, "tensor weight: tile 3 of 7: checksum mismatch");
        CHECK_CONTAINS(d->error, "tile 3 of 7");
        /* Values compared before the checksum failed are not reported. */
        CHECK(d->tensors[0].count == 0 && d->tensors[0].differing == 0 &&
              d->tensors[0].max_abs == 0);
    }
    /* In the last tile's adam_v bias: every value of adam_v.weight reaches
     * the comparison before the checksum fails. */
    check_copy_file(t7, bad);
    check_flip_byte(bad, tile_byte(61, 45, 7, 6, 2, 3 * 61 * 4 + 1));
    CHECK(ff_inspect_diff_files(whole, bad, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor adam_v.weight: tile 6 of 7: checksum mismatch");
    CHECK(ff_inspect_diff_files(bad, whole, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor adam_v.weight: tile 6 of 7: checksum mismatch");

    /* Memory: a layer 4 times larger takes no more to compare (the ring and
     * each stream's block), less than one of its tensors. */
    uint64_t peak[2];
    const uint32_t sizes[2][2] = {{1024, 1024}, {2048, 2048}};
    for (int k = 0; k < 2; k++) {
        check_make_layer(&layer, sizes[k][0], sizes[k][1], 1, 7);
        meta_for_run(&meta, 0, NULL);
        save_layer(whole, &layer, &meta, FF_CODEC_ZSTD_SHUFFLE);
        save_tiled(big, &layer, &meta, 200);
        ff_layer_free(&layer);
        uint64_t both = diff_peak(whole, big, d);
        CHECK(d->identical);
        uint64_t tiled = diff_peak(big, big, d);
        CHECK(d->identical);
        peak[k] = both > tiled ? both : tiled;
        printf("diff tiled: %u -> %u: at most %.2f MiB (%.2f tiled only) to compare %.2f MiB "
               "tensors\n", sizes[k][0], sizes[k][1], (double)peak[k] / 1048576.0,
               (double)tiled / 1048576.0, (double)sizes[k][0] * sizes[k][1] * 4 / 1048576.0);
    }
    CHECKF(peak[1] <= peak[0] + (64u << 10), "%llu bytes for the large layer, %llu for the small",
           (unsigned long long)peak[1], (unsigned long long)peak[0]);
    CHECK(peak[1] < (uint64_t)sizes[1][0] * sizes[1][1] * sizeof(float));

    /* A large tensor damaged in its first tile: B's thread, blocked on the
     * full ring, is stopped and joined. */
    check_copy_file(big, bad);
    check_flip_byte(bad, tile_byte(2048, 2048, 200, 0, 0, 4096));
    CHECK(ff_inspect_diff_files(bad, whole, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor weight: tile 0 of 11: checksum mismatch");
    CHECK(ff_inspect_diff_files(whole, bad, d, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor weight: tile 0 of 11: checksum mismatch");
    free(d);
    unlink(whole);
    unlink(big);
    unlink(bad);
    printf("diff tiled: whole vs tiled identical, changes found, damage named, memory bounded\n");
}

int main(void) {
    check_tempdir(dir, "inspect");
    test_stats();
    test_file_read();
    test_safetensors();
    test_npy();
    test_verify_file();
    test_verify_run();
    test_diff();
    test_diff_tiled();
    /* Every buffer the module took from ff_mem_alloc went back. */
    ff_mem_stats_t stats;
    ff_mem_stats(&stats);
    CHECKF(stats.current_total == 0, "%llu bytes still allocated",
           (unsigned long long)stats.current_total);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_inspect");
}
