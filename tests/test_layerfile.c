/* test_layerfile: the per-layer checkpoint file. Every codec round-trips
 * layers with and without Adam state bit for bit; equal inputs give equal
 * files; hand-corrupted files (preamble, each header field, payload bytes,
 * truncation) are rejected with a message naming the file and the field or
 * tensor; a save that fails part-way (RLIMIT_FSIZE) leaves the old file
 * intact. Fixtures are written to a temporary directory. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <xxhash.h>

#include "testutil.h"
#include "ffstream/layerfile.h"
#include "ffstream/memstat.h"
#include "ffstream/rng.h"

static char dir[FF_PATH_MAX];

static const ff_codec_t all_codecs[3] = {FF_CODEC_RAW, FF_CODEC_ZSTD, FF_CODEC_ZSTD_SHUFFLE};
static const char *const tensor_names[6] = {
    "weight", "bias", "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias",
};

static void path_of(char *out, size_t size, const char *name) {
    (void)size;
    check_path(out, dir, name);
}

static uint8_t *read_bytes(const char *name, size_t *size) {
    char path[FF_PATH_MAX];
    path_of(path, sizeof path, name);
    return check_read_file(path, size);
}

static void write_bytes(const char *name, const void *bytes, size_t size) {
    char path[FF_PATH_MAX];
    path_of(path, sizeof path, name);
    check_write_file(path, bytes, size);
}

#define PRE FF_LAYERFILE_PREAMBLE

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}


static void extreme_meta(ff_layerfile_meta_t *m) {
    memset(m, 0, sizeof *m);
    m->layer_index = 2;
    m->epochs_done = 3;
    m->epochs_total = 60;
    m->batch_in_epoch = 17;
    m->complete = 0; /* 3 of 60 epochs */
    m->loss = 0.693147180559945;
    m->goodness_pos = 12.345678901234567;
    m->goodness_neg = 1e-300;
    m->loss_sum = -2.5e-310; /* subnormal */
    m->good_pos_sum = 123456.789;
    m->good_neg_sum = 0.1;
    m->batches = UINT64_C(1) << 53;
    m->npos = 60000;
    m->nneg = 0;
    m->data_fingerprint = UINT64_C(0xfedcba9876543210);
    m->config_fingerprint = UINT64_C(0x0123456789abcdef);
    m->adam = ff_adam_defaults(1e-3);
}

static int same_bits(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_meta_equal(const ff_layerfile_meta_t *a, const ff_layerfile_meta_t *b) {
    CHECK(a->layer_index == b->layer_index && a->epochs_done == b->epochs_done);
    CHECK(a->epochs_total == b->epochs_total && a->batch_in_epoch == b->batch_in_epoch);
    CHECK(a->complete == b->complete);
    CHECK(same_bits(a->loss, b->loss) && same_bits(a->goodness_pos, b->goodness_pos));
    CHECK(same_bits(a->goodness_neg, b->goodness_neg) && same_bits(a->loss_sum, b->loss_sum));
    CHECK(same_bits(a->good_pos_sum, b->good_pos_sum));
    CHECK(same_bits(a->good_neg_sum, b->good_neg_sum));
    CHECK(a->batches == b->batches && a->npos == b->npos && a->nneg == b->nneg);
    CHECK(a->data_fingerprint == b->data_fingerprint);
    CHECK(a->config_fingerprint == b->config_fingerprint);
    CHECK(same_bits(a->adam.lr, b->adam.lr) && same_bits(a->adam.beta1, b->adam.beta1));
    CHECK(same_bits(a->adam.beta2, b->adam.beta2) && same_bits(a->adam.eps, b->adam.eps));
    CHECK(same_bits(a->adam.weight_decay, b->adam.weight_decay));
}

static void check_layers_equal(const ff_layer_t *a, const ff_layer_t *b, int with_adam) {
    CHECK(a->in == b->in && a->out == b->out && a->param_count == b->param_count);
    if (a->param_count != b->param_count || b->params == NULL) return;
    size_t bytes = a->param_count * sizeof(float);
    CHECK(memcmp(a->params, b->params, bytes) == 0);
    CHECK(b->weight == b->params && b->bias == b->params + (size_t)b->in * b->out);
    if (with_adam) {
        CHECK(b->adam_m != NULL && b->adam_v != NULL && b->grads != NULL);
        if (b->adam_m == NULL || b->adam_v == NULL) return;
        CHECK(memcmp(a->adam_m, b->adam_m, bytes) == 0);
        CHECK(memcmp(a->adam_v, b->adam_v, bytes) == 0);
        CHECK(a->adam_step == b->adam_step);
    } else {
        CHECK(b->adam_m == NULL && b->adam_v == NULL && b->grads == NULL);
    }
}

static void test_codecs(void) {
    enum { N = 1000 };
    static float src[N], back[N];
    static uint8_t stored[N * 4 + 1024];
    ff_rng_t rng;
    ff_rng_init(&rng, 7, 99, 0, 0);
    for (int i = 0; i < N; i++) src[i] = (ff_rng_uniform(&rng) - 0.5f) * 0.1f;
    ff_error_t err;
    for (int c = 0; c < 3; c++) {
        ff_codec_t codec = all_codecs[c], parsed;
        CHECK(ff_codec_parse(ff_codec_name(codec), &parsed) == 0 && parsed == codec);
        size_t bound = ff_codec_bound(codec, sizeof src), n = 0;
        CHECK(bound >= sizeof src && bound <= sizeof stored);
        CHECKF(ff_codec_compress(codec, 3, stored, bound, src, sizeof src, &n, &err) == 0, "%s",
               err.msg);
        CHECK(n > 0 && n <= bound);
        memset(back, 0, sizeof back);
        CHECKF(ff_codec_decompress(codec, back, sizeof back, stored, n, &err) == 0, "%s", err.msg);
        CHECK(memcmp(src, back, sizeof src) == 0);
        /* A decoder must refuse to produce a size other than the one asked. */
        CHECK(ff_codec_decompress(codec, back, sizeof back - 4, stored, n, &err) == -1);
        if (codec != FF_CODEC_RAW) {
            CHECK_CONTAINS(err.msg, "declares 4000 bytes, expected 3996");
            stored[n] = 0;
            CHECK(ff_codec_decompress(codec, back, sizeof back, stored, n + 1, &err) == -1);
            CHECK_CONTAINS(err.msg, "1 stray bytes after");
            CHECK(ff_codec_decompress(codec, back, sizeof back, stored, n / 2, &err) == -1);
            /* A flipped byte inside the frame: zstd's own checksum (or its
             * decoder) catches it when crc32 is bypassed. */
            stored[n - 6] ^= 0x40;
            CHECK(ff_codec_decompress(codec, back, sizeof back, stored, n, &err) == -1);
            CHECK_CONTAINS(err.msg, "zstd");
        }
    }
    ff_codec_t parsed;
    CHECK(ff_codec_parse("lz4", &parsed) == -1);
    CHECK(strcmp(ff_codec_name((ff_codec_t)9), "unknown") == 0);
    CHECK(ff_codec_bound((ff_codec_t)9, 100) == 0);
    size_t n;
    CHECK(ff_codec_compress(FF_CODEC_ZSTD_SHUFFLE, 3, stored, sizeof stored, src, 7, &n, &err) ==
          -1);
    CHECK_CONTAINS(err.msg, "whole number of floats");
    CHECK(ff_codec_compress(FF_CODEC_RAW, 0, stored, 10, src, 40, &n, &err) == -1);
    ff_layerfile_options_t def = ff_layerfile_default_options();
    CHECK(ff_codec_bound(def.codec, 4) > 0);
}

static void test_round_trip(void) {
    const uint32_t shapes[4][2] = {{1, 1}, {794, 37}, {3, 130}, {64, 64}};
    for (int s = 0; s < 4; s++) {
        for (int c = 0; c < 3; c++) {
            for (int with_adam = 0; with_adam <= 1; with_adam++) {
                uint32_t in = shapes[s][0], out = shapes[s][1];
                ff_layer_t layer, back;
                ff_layerfile_meta_t meta, meta_back;
                ff_layerfile_info_t info;
                ff_error_t err = {{0}};
                check_make_layer(&layer, in, out, with_adam, (uint64_t)(s * 10 + c));
                extreme_meta(&meta);
                ff_layerfile_options_t opt = {all_codecs[c], 3};
                char name[128], path[512];
                snprintf(name, sizeof name, "rt-%s-%ux%u-%s.ffl", ff_codec_name(all_codecs[c]), in,
                         out, with_adam ? "adam" : "plain");
                path_of(path, sizeof path, name);
                CHECKF(ff_layerfile_save(path, &layer, &meta, &opt, &err) == 0, "%s", err.msg);

                CHECKF(ff_layerfile_read_info(path, &info, &err) == 0, "%s", err.msg);
                struct stat st;
                CHECK(stat(path, &st) == 0 && info.file_bytes == (uint64_t)st.st_size);
                CHECK(info.version == FF_LAYERFILE_VERSION && info.in == in && info.out == out);
                CHECK(info.has_optimizer == with_adam);
                CHECK(info.tensor_count == (with_adam ? 6u : 2u));
                CHECK(info.adam_step == layer.adam_step);
                CHECK(strncmp(info.writer, "ffstream ", 9) == 0);
                for (uint32_t i = 0; i < info.tensor_count; i++) {
                    CHECK(strcmp(info.tensors[i].name, tensor_names[i]) == 0);
                    CHECK(info.tensors[i].codec == all_codecs[c]);
                    CHECK(info.tensors[i].shape[0] == out);
                    CHECK(info.tensors[i].raw_bytes == (uint64_t)out * (i % 2 == 0 ? in : 1) * 4);
                }
                check_meta_equal(&meta, &info.meta);

                CHECKF(ff_layerfile_load(path, &back, &meta_back, with_adam, 0, 0, &err) == 0, "%s",
                       err.msg);
                check_layers_equal(&layer, &back, with_adam);
                CHECK(back.adam_step == layer.adam_step);
                check_meta_equal(&meta, &meta_back);
                ff_layer_free(&back);
                if (with_adam) {
                    /* Inference load of a training file: parameters only. */
                    CHECKF(ff_layerfile_load(path, &back, NULL, 0, 0, 0, &err) == 0, "%s", err.msg);
                    check_layers_equal(&layer, &back, 0);
                    ff_layer_free(&back);
                }
                CHECKF(ff_layerfile_verify(path, &err) == 0, "%s", err.msg);
                ff_layer_free(&layer);
            }
        }
    }
}

/* NaN is written as null and read back as NaN; infinities and -0 survive. */
static void test_meta_special_values(void) {
    ff_layer_t layer, back;
    ff_layerfile_meta_t meta, meta_back;
    ff_error_t err;
    check_make_layer(&layer, 3, 2, 0, 5);
    extreme_meta(&meta);
    meta.loss = NAN;
    meta.goodness_pos = INFINITY;
    meta.goodness_neg = -INFINITY;
    meta.loss_sum = -0.0;
    meta.adam.weight_decay = NAN;
    char path[512];
    path_of(path, sizeof path, "special.ffl");
    CHECKF(ff_layerfile_save(path, &layer, &meta, NULL, &err) == 0, "%s", err.msg);
    size_t size;
    uint8_t *bytes = read_bytes("special.ffl", &size);
    CHECK(bytes != NULL && size > 16);
    if (bytes != NULL) {
        char *header = strndup((const char *)bytes + 16, le32(bytes + 12));
        CHECK_CONTAINS(header, "\"loss\":null");
        CHECK_CONTAINS(header, "\"goodness_pos\":\"inf\"");
        free(header);
    }
    free(bytes);
    CHECKF(ff_layerfile_load(path, &back, &meta_back, 0, 0, 0, &err) == 0, "%s", err.msg);
    CHECK(isnan(meta_back.loss) && isnan(meta_back.adam.weight_decay));
    CHECK(isinf(meta_back.goodness_pos) && meta_back.goodness_pos > 0);
    CHECK(isinf(meta_back.goodness_neg) && meta_back.goodness_neg < 0);
    CHECK(meta_back.loss_sum == 0 && signbit(meta_back.loss_sum));
    CHECK(meta_back.data_fingerprint == meta.data_fingerprint);
    ff_layer_free(&back);
    ff_layer_free(&layer);
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    int same = x != NULL && y != NULL && na == nb && na > 0 && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Two trainers are compared with cmp: equal layers and meta must give
 * byte-identical files, also after a load and a re-save. */
static void test_determinism(void) {
    for (int c = 0; c < 3; c++) {
        ff_layer_t layer, back;
        ff_layerfile_meta_t meta, meta_back;
        ff_error_t err;
        check_make_layer(&layer, 50, 20, 1, 3);
        extreme_meta(&meta);
        ff_layerfile_options_t opt = {all_codecs[c], 3};
        char a[512], b[512], r[512];
        path_of(a, sizeof a, "det-a.ffl");
        path_of(b, sizeof b, "det-b.ffl");
        path_of(r, sizeof r, "det-resaved.ffl");
        CHECKF(ff_layerfile_save(a, &layer, &meta, &opt, &err) == 0, "%s", err.msg);
        CHECKF(ff_layerfile_save(b, &layer, &meta, &opt, &err) == 0, "%s", err.msg);
        CHECKF(same_file("det-a.ffl", "det-b.ffl"), "codec %s", ff_codec_name(all_codecs[c]));
        CHECKF(ff_layerfile_load(a, &back, &meta_back, 1, 0, 0, &err) == 0, "%s", err.msg);
        CHECKF(ff_layerfile_save(r, &back, &meta_back, &opt, &err) == 0, "%s", err.msg);
        CHECKF(same_file("det-a.ffl", "det-resaved.ffl"), "codec %s", ff_codec_name(all_codecs[c]));
        /* A different value makes a different file. */
        back.params[0] += 1.0f;
        CHECK(ff_layerfile_save(r, &back, &meta_back, &opt, &err) == 0);
        CHECK(!same_file("det-a.ffl", "det-resaved.ffl"));
        ff_layer_free(&back);
        ff_layer_free(&layer);
    }
}

/* ---- rejection ---- */

/* The fixture every corruption starts from: a 5 -> 4 layer with Adam
 * state, zstd, and its header and payload split out. */
static uint8_t *good_file;
static size_t good_size;
static uint32_t good_header_bytes;
static ff_layerfile_info_t good_info;
/* Hand-written files give the header this many bytes of room (padded with
 * spaces, which JSON allows), so edits may grow it without moving the
 * payload. */
static uint32_t hand_header_bytes;
#define HAND_SLACK 256u

/* Checks that every reader of name fails with a message containing the
 * file name, want and want2 (when not NULL). header_level: read_info fails
 * too (otherwise the header is sound and only the payload is bad). */
static void expect_reject(const char *name, int header_level, const char *want, const char *want2) {
    char path[512];
    path_of(path, sizeof path, name);
    ff_error_t err = {{0}};
    ff_layerfile_info_t info;
    int rc = ff_layerfile_read_info(path, &info, &err);
    if (header_level) {
        CHECKF(rc == -1, "%s: read_info accepted it", name);
        CHECK_CONTAINS(err.msg, name);
        CHECK_CONTAINS(err.msg, want);
        if (want2 != NULL) CHECK_CONTAINS(err.msg, want2);
    } else {
        CHECKF(rc == 0, "%s: read_info rejected a sound header: %s", name, err.msg);
    }
    ff_layer_t layer;
    memset(&err, 0, sizeof err);
    CHECKF(ff_layerfile_load(path, &layer, NULL, 1, 0, 0, &err) == -1, "%s: load accepted it", name);
    CHECK(layer.params == NULL && layer.adam_m == NULL && layer.in == 0 && layer.out == 0);
    CHECK_CONTAINS(err.msg, name);
    CHECK_CONTAINS(err.msg, want);
    if (want2 != NULL) CHECK_CONTAINS(err.msg, want2);
    memset(&err, 0, sizeof err);
    CHECKF(ff_layerfile_verify(path, &err) == -1, "%s: verify accepted it", name);
    CHECK_CONTAINS(err.msg, name);
    CHECK_CONTAINS(err.msg, want);
    if (want2 != NULL) CHECK_CONTAINS(err.msg, want2);
    printf("rejected %s: %s\n", name, err.msg);
}

/* Sets the preamble's header checksum of a file image to match its header,
 * as the writer does: an edit made here is then judged on its field. */
static void rehash(uint8_t *buf) {
    uint32_t header = le32(buf + 12);
    uint64_t sum = XXH3_64bits_withSeed(buf + PRE, header, XXH3_64bits(buf, 16));
    for (int i = 0; i < 8; i++) buf[16 + i] = (uint8_t)(sum >> (8 * i));
}

/* Writes name: preamble, json padded to hand_header_bytes, the good
 * payload (or payload when not NULL). */
static void write_hand(const char *name, const char *json, const uint8_t *payload) {
    size_t json_bytes = strlen(json);
    CHECKF(json_bytes <= hand_header_bytes, "%s: edited header too long", name);
    size_t payload_bytes = good_size - PRE - good_header_bytes;
    size_t size = PRE + hand_header_bytes + payload_bytes;
    uint8_t *buf = malloc(size);
    if (buf == NULL || json_bytes > hand_header_bytes) {
        free(buf);
        return;
    }
    memcpy(buf, "FFLAYER", 8);
    put_le32(buf + 8, FF_LAYERFILE_VERSION);
    put_le32(buf + 12, hand_header_bytes);
    memset(buf + PRE, ' ', hand_header_bytes);
    memcpy(buf + PRE, json, json_bytes);
    memcpy(buf + PRE + hand_header_bytes,
           payload != NULL ? payload : good_file + PRE + good_header_bytes, payload_bytes);
    rehash(buf);
    write_bytes(name, buf, size);
    free(buf);
}

/* The good header with the offsets moved past the slack; edit, then pass to
 * reject_json. */
static cJSON *hand_header(void) {
    char *text = strndup((const char *)good_file + PRE, good_header_bytes);
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECK(root != NULL);
    cJSON *tensor;
    cJSON_ArrayForEach(tensor, cJSON_GetObjectItem(root, "tensors")) {
        cJSON *offset = cJSON_GetObjectItem(tensor, "offset");
        cJSON_SetNumberValue(offset, offset->valuedouble + HAND_SLACK);
    }
    return root;
}

static cJSON *tensor_of(cJSON *root, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(root, "tensors"), i);
}

static void set_field(cJSON *obj, const char *key, cJSON *value) {
    CHECK(cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value));
}

/* Writes root as the header of name (and frees it), then expects every
 * reader to reject the file. */
static void reject_json(const char *name, cJSON *root, const char *want, const char *want2) {
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    write_hand(name, text, NULL);
    free(text);
    expect_reject(name, 1, want, want2);
}

static void make_fixture(void) {
    ff_layer_t layer;
    ff_layerfile_meta_t meta;
    ff_error_t err;
    check_make_layer(&layer, 5, 4, 1, 11);
    extreme_meta(&meta);
    char path[512];
    path_of(path, sizeof path, "good.ffl");
    CHECKF(ff_layerfile_save(path, &layer, &meta, NULL, &err) == 0, "%s", err.msg);
    CHECKF(ff_layerfile_read_info(path, &good_info, &err) == 0, "%s", err.msg);
    ff_layer_free(&layer);
    good_file = read_bytes("good.ffl", &good_size);
    CHECK(good_file != NULL && good_size > PRE);
    good_header_bytes = le32(good_file + 12);
    hand_header_bytes = good_header_bytes + HAND_SLACK;

    /* The unedited hand-written file must load, or the rejections below
     * would prove nothing. */
    cJSON *root = hand_header();
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    write_hand("hand-base.ffl", text, NULL);
    free(text);
    path_of(path, sizeof path, "hand-base.ffl");
    CHECKF(ff_layerfile_load(path, &layer, NULL, 1, 0, 0, &err) == 0, "%s", err.msg);
    ff_layer_free(&layer);
}

static void test_reject_preamble(void) {
    uint8_t *buf = malloc(good_size);
    if (buf == NULL) return;

    memcpy(buf, good_file, good_size);
    buf[6] = 'X';
    write_bytes("bad-magic.ffl", buf, good_size);
    expect_reject("bad-magic.ffl", 1, "not an ffstream layer file (magic 46 46 4c 41 59 45 58 00",
                  NULL);

    memcpy(buf, good_file, good_size);
    put_le32(buf + 8, 1);
    write_bytes("version-1.ffl", buf, good_size);
    expect_reject("version-1.ffl", 1, "format version 1, this build (ffstream ", "reads version 2");

    /* Any change to the header without its checksum: caught before parsing. */
    memcpy(buf, good_file, good_size);
    buf[PRE + good_header_bytes / 2] ^= 0x01;
    write_bytes("header-edited.ffl", buf, good_size);
    expect_reject("header-edited.ffl", 1, "header checksum mismatch", "edited or damaged");
    memcpy(buf, good_file, good_size);
    buf[17] ^= 0x80;
    write_bytes("checksum-edited.ffl", buf, good_size);
    expect_reject("checksum-edited.ffl", 1, "header checksum mismatch", NULL);

    const uint32_t bad_lengths[4] = {0, 1, FF_LAYERFILE_MAX_HEADER + 1, 0xffffffffu};
    for (int i = 0; i < 4; i++) {
        memcpy(buf, good_file, good_size);
        put_le32(buf + 12, bad_lengths[i]);
        char name[64], want[64];
        snprintf(name, sizeof name, "header-length-%u.ffl", bad_lengths[i]);
        snprintf(want, sizeof want, "header length %u bytes, expected 2..", bad_lengths[i]);
        write_bytes(name, buf, good_size);
        expect_reject(name, 1, want, NULL);
    }
    memcpy(buf, good_file, good_size);
    put_le32(buf + 12, (uint32_t)good_size - PRE + 1);
    write_bytes("header-past-end.ffl", buf, good_size);
    expect_reject("header-past-end.ffl", 1, "runs past the end", "truncated");

    /* Foreign files: an IDX header, random bytes, an empty file, a short
     * text file. */
    const uint8_t idx[24] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4};
    write_bytes("foreign.idx", idx, sizeof idx);
    expect_reject("foreign.idx", 1, "not an ffstream layer file", NULL);
    ff_rng_t rng;
    ff_rng_init(&rng, 3, 99, 2, 0);
    for (size_t i = 0; i < good_size; i++) buf[i] = (uint8_t)ff_rng_next(&rng);
    write_bytes("random.bin", buf, good_size);
    expect_reject("random.bin", 1, "not an ffstream layer file", NULL);
    write_bytes("empty.ffl", buf, 0);
    expect_reject("empty.ffl", 1, "file is 0 bytes, shorter than the 24-byte preamble", NULL);
    write_bytes("hello.txt", "hello\n", 6);
    expect_reject("hello.txt", 1, "file is 6 bytes", NULL);

    char path[512];
    ff_error_t err;
    ff_layerfile_info_t info;
    path_of(path, sizeof path, "does-not-exist.ffl");
    CHECK(ff_layerfile_read_info(path, &info, &err) == -1);
    CHECK_CONTAINS(err.msg, "does-not-exist.ffl: cannot open");
    CHECK(ff_layerfile_read_info(dir, &info, &err) == -1);
    CHECK_CONTAINS(err.msg, "expected a regular file");
    free(buf);
}

static void test_reject_truncated(void) {
    /* Inside the preamble, inside the header, inside and at the last byte
     * of each tensor. */
    const size_t in_preamble[3] = {5, 12, 23};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "cut-%zu.ffl", in_preamble[i]);
        write_bytes(name, good_file, in_preamble[i]);
        expect_reject(name, 1, "shorter than the 24-byte preamble", NULL);
    }
    write_bytes("cut-header.ffl", good_file, PRE + good_header_bytes / 2);
    expect_reject("cut-header.ffl", 1, "runs past the end", "truncated");
    write_bytes("cut-header-end.ffl", good_file, PRE + good_header_bytes);
    expect_reject("cut-header-end.ffl", 1, "tensor weight: offset", "truncated");
    for (uint32_t i = 0; i < good_info.tensor_count; i++) {
        const ff_layerfile_tensor_t *t = &good_info.tensors[i];
        size_t cuts[2] = {t->offset + t->stored_bytes / 2, t->offset + t->stored_bytes - 1};
        for (int k = 0; k < 2; k++) {
            char name[64], want[64];
            snprintf(name, sizeof name, "cut-in-%s-%d.ffl", t->name, k);
            snprintf(want, sizeof want, "tensor %s: offset %llu", t->name,
                     (unsigned long long)t->offset);
            write_bytes(name, good_file, cuts[k]);
            expect_reject(name, 1, want, "runs past the end of the");
        }
    }
    /* One extra byte is as wrong as one missing. */
    uint8_t *buf = malloc(good_size + 1);
    if (buf == NULL) return;
    memcpy(buf, good_file, good_size);
    buf[good_size] = 0;
    write_bytes("trailing.ffl", buf, good_size + 1);
    expect_reject("trailing.ffl", 1, "1 trailing bytes after the last tensor", NULL);
    free(buf);
}

static void test_reject_header_fields(void) {
    cJSON *root;

    write_hand("json-broken.ffl", "{\"format\":\"ffstream-layer\",", NULL);
    expect_reject("json-broken.ffl", 1, "not valid JSON", NULL);
    write_hand("json-array.ffl", "[1, 2]", NULL);
    expect_reject("json-array.ffl", 1, "header is not a JSON object", NULL);
    write_hand("json-empty.ffl", "{}", NULL);
    expect_reject("json-empty.ffl", 1, "field \"format\" is missing", NULL);
    {
        /* A NUL inside the header: a reader must not stop at it. */
        char *text = cJSON_PrintUnformatted(root = hand_header());
        cJSON_Delete(root);
        write_hand("json-nul.ffl", text, NULL);
        free(text);
        size_t size;
        uint8_t *bytes = read_bytes("json-nul.ffl", &size);
        if (bytes != NULL) {
            bytes[PRE + hand_header_bytes - 3] = 0;
            rehash(bytes);
            write_bytes("json-nul.ffl", bytes, size);
        }
        free(bytes);
        expect_reject("json-nul.ffl", 1, "NUL byte", NULL);
    }

    root = hand_header();
    set_field(root, "format", cJSON_CreateString("ffstream-model"));
    reject_json("format.ffl", root, "header field \"format\" is \"ffstream-model\"", NULL);

    root = hand_header();
    set_field(root, "version", cJSON_CreateNumber(3));
    reject_json("json-version.ffl", root, "field \"version\" is 3, expected 2..2", NULL);

    root = hand_header();
    cJSON_DeleteItemFromObject(root, "in");
    reject_json("missing-in.ffl", root, "field \"in\" is missing", NULL);

    root = hand_header();
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(root, "adam"), "step");
    reject_json("missing-step.ffl", root, "field \"adam.step\" is missing", NULL);

    root = hand_header();
    cJSON_DeleteItemFromObject(root, "training");
    reject_json("missing-training.ffl", root, "field \"training\" is missing", NULL);

    root = hand_header();
    cJSON_DeleteItemFromObject(tensor_of(root, 3), "crc32");
    reject_json("missing-crc.ffl", root, "field \"tensors[3].crc32\" is missing", NULL);

    root = hand_header();
    set_field(root, "in", cJSON_CreateNumber(0));
    reject_json("in-zero.ffl", root, "field \"in\" is 0, expected 1..16777216", NULL);

    root = hand_header();
    set_field(root, "out", cJSON_CreateNumber(16777217));
    reject_json("out-huge.ffl", root, "field \"out\" is 16777217", NULL);

    root = hand_header();
    set_field(root, "in", cJSON_CreateNumber(2.5));
    reject_json("in-fraction.ffl", root, "field \"in\" is not a whole number", NULL);

    root = hand_header();
    set_field(root, "in", cJSON_CreateString("5"));
    reject_json("in-string.ffl", root, "field \"in\" is not a whole number", NULL);

    root = hand_header();
    set_field(root, "dtype", cJSON_CreateString("float16"));
    reject_json("dtype.ffl", root, "header field \"dtype\" is \"float16\"", NULL);

    /* in disagrees with the weight shapes. */
    root = hand_header();
    set_field(root, "in", cJSON_CreateNumber(6));
    reject_json("in-vs-shape.ffl", root, "tensor weight: shape[1] is 5, expected 6", NULL);

    root = hand_header();
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(tensor_of(root, 4), "shape"), 0,
                             cJSON_CreateNumber(3));
    reject_json("shape.ffl", root, "tensor adam_v.weight: shape[0] is 3, expected 4", NULL);

    root = hand_header();
    cJSON_AddItemToArray(cJSON_GetObjectItem(tensor_of(root, 1), "shape"), cJSON_CreateNumber(1));
    reject_json("shape-ndim.ffl", root, "tensor bias: field \"shape\"", "1 sizes");

    root = hand_header();
    set_field(tensor_of(root, 2), "raw_bytes", cJSON_CreateNumber(84));
    reject_json("raw-bytes.ffl", root, "field \"tensors[2].raw_bytes\" is 84, expected 80..80",
                NULL);

    root = hand_header();
    set_field(tensor_of(root, 1), "codec", cJSON_CreateString("lz4"));
    reject_json("codec.ffl", root, "tensor bias: unknown codec \"lz4\"", NULL);

    root = hand_header();
    set_field(tensor_of(root, 0), "codec", cJSON_CreateString("raw"));
    reject_json("codec-raw.ffl", root, "tensor weight (codec raw)", "tensors[0].stored_bytes");

    root = hand_header();
    set_field(tensor_of(root, 5), "stored_bytes", cJSON_CreateNumber(0));
    reject_json("stored-zero.ffl", root, "field \"tensors[5].stored_bytes\" is 0", NULL);

    root = hand_header();
    set_field(tensor_of(root, 0), "stored_bytes", cJSON_CreateNumber(1e6));
    reject_json("stored-huge.ffl", root, "field \"tensors[0].stored_bytes\" is 1000000, expected",
                NULL);

    root = hand_header();
    set_field(tensor_of(root, 5), "offset", cJSON_CreateNumber(1e9));
    reject_json("offset-far.ffl", root, "tensor adam_v.bias: offset 1000000000, expected",
                "right after the previous tensor");

    root = hand_header();
    set_field(tensor_of(root, 5), "offset", cJSON_CreateNumber(9007199254740992.0));
    reject_json("offset-2p53.ffl", root, "tensor adam_v.bias: offset 90071992547409", NULL);

    root = hand_header();
    set_field(tensor_of(root, 5), "offset", cJSON_CreateNumber(1e300));
    reject_json("offset-1e300.ffl", root, "field \"tensors[5].offset\" is not a whole number",
                NULL);

    root = hand_header();
    set_field(tensor_of(root, 0), "offset", cJSON_CreateNumber(8));
    reject_json("offset-in-header.ffl", root, "tensor weight: offset 8, expected",
                "right after the header");

    {
        root = hand_header();
        double bias_offset = cJSON_GetObjectItem(tensor_of(root, 1), "offset")->valuedouble;
        set_field(tensor_of(root, 2), "offset", cJSON_CreateNumber(bias_offset));
        reject_json("overlap.ffl", root, "tensor adam_m.weight: offset", "right after the previous");
    }
    {
        /* A gap of one byte between two tensors. */
        root = hand_header();
        cJSON *offset = cJSON_GetObjectItem(tensor_of(root, 3), "offset");
        cJSON_SetNumberValue(offset, offset->valuedouble + 1);
        reject_json("gap.ffl", root, "tensor adam_m.bias: offset", "right after the previous");
    }
    write_hand("duplicate-key.ffl", "{\"format\":\"ffstream-layer\",\"format\":\"x\"}", NULL);
    expect_reject("duplicate-key.ffl", 1, "key \"format\" appears twice", NULL);
    root = hand_header();
    cJSON_AddNumberToObject(cJSON_GetObjectItem(root, "training"), "bonus_epochs", 3);
    reject_json("unknown-key.ffl", root, "\"training.bonus_epochs\" is not a field this version",
                NULL);
    root = hand_header();
    set_field(root, "writer", cJSON_CreateString("ffstream \xff\xfe"));
    reject_json("utf8.ffl", root, "not valid UTF-8", NULL);
    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "training"), "complete", cJSON_CreateTrue());
    reject_json("complete-early.ffl", root, "\"training.complete\" is true but 3 of 60 epochs",
                NULL);
    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "training"), "epochs_done", cJSON_CreateNumber(61));
    reject_json("epochs-done.ffl", root, "epochs_done\" is 61, more than epochs_total 60", NULL);
    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "adam"), "step", cJSON_CreateNumber(9007199254740992.0));
    reject_json("step-2p53.ffl", root, "field \"adam.step\" is 90071992547409",
                NULL);

    root = hand_header();
    set_field(tensor_of(root, 0), "name", cJSON_CreateString("bias"));
    reject_json("name-order.ffl", root, "\"tensors[0].name\" is \"bias\", expected \"weight\"",
                NULL);

    root = hand_header();
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(root, "tensors"), 5);
    reject_json("three-tensors.ffl", root, "header field \"tensors\" is not an array of 2", NULL);

    /* Dropping the Adam tensors from the header leaves their bytes behind. */
    root = hand_header();
    for (int i = 5; i >= 2; i--) cJSON_DeleteItemFromArray(cJSON_GetObjectItem(root, "tensors"), i);
    reject_json("two-tensors.ffl", root, "trailing bytes after the last tensor", NULL);

    root = hand_header();
    set_field(tensor_of(root, 1), "crc32", cJSON_CreateString("12345g78"));
    reject_json("crc-hex.ffl", root, "tensor bias: field \"crc32\" is \"12345g78\"",
                "8 lowercase hex digits");

    root = hand_header();
    set_field(root, "data_fingerprint", cJSON_CreateString("1234"));
    reject_json("fingerprint.ffl", root, "field \"data_fingerprint\" is \"1234\"", NULL);

    root = hand_header();
    set_field(root, "config_fingerprint", cJSON_CreateNumber(12));
    reject_json("fingerprint-number.ffl", root, "\"config_fingerprint\" is not a string", NULL);

    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "training"), "complete", cJSON_CreateNumber(1));
    reject_json("complete.ffl", root, "field \"training.complete\" is not true or false", NULL);

    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "training"), "npos", cJSON_CreateNumber(-1));
    reject_json("npos.ffl", root, "field \"training.npos\" is not a whole number", NULL);

    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "adam"), "lr", cJSON_CreateString("fast"));
    reject_json("lr.ffl", root, "header field \"adam.lr\" is not a number", NULL);

    root = hand_header();
    set_field(cJSON_GetObjectItem(root, "adam"), "step", cJSON_CreateNumber(-3));
    reject_json("step.ffl", root, "field \"adam.step\" is not a whole number", NULL);
}

static void test_reject_payload(void) {
    /* A flipped byte in each tensor: crc32 names the tensor before any
     * decoding. */
    uint8_t *buf = malloc(good_size);
    if (buf == NULL) return;
    for (uint32_t i = 0; i < good_info.tensor_count; i++) {
        const ff_layerfile_tensor_t *t = &good_info.tensors[i];
        memcpy(buf, good_file, good_size);
        buf[t->offset + t->stored_bytes / 2] ^= 0x10;
        char name[64], want[96];
        snprintf(name, sizeof name, "flip-%s.ffl", t->name);
        snprintf(want, sizeof want, "tensor %s: crc32 mismatch (stored %08x, computed ", t->name,
                 t->crc32);
        write_bytes(name, buf, good_size);
        expect_reject(name, 0, want, NULL);
    }
    free(buf);

    /* A corrupt frame whose crc32 was updated to match: zstd catches it. */
    cJSON *root = hand_header();
    const ff_layerfile_tensor_t *t = &good_info.tensors[2];
    size_t payload_bytes = good_size - PRE - good_header_bytes;
    uint8_t *payload = malloc(payload_bytes);
    if (payload == NULL) {
        cJSON_Delete(root);
        return;
    }
    memcpy(payload, good_file + PRE + good_header_bytes, payload_bytes);
    uint8_t *stored = payload + (t->offset - PRE - good_header_bytes);
    stored[t->stored_bytes - 2] ^= 0x01; /* inside the 4-byte content checksum */
    char crc[16];
    snprintf(crc, sizeof crc, "%08lx", crc32(0L, stored, (uInt)t->stored_bytes));
    set_field(tensor_of(root, 2), "crc32", cJSON_CreateString(crc));
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    write_hand("zstd-checksum.ffl", text, payload);
    free(text);
    free(payload);
    expect_reject("zstd-checksum.ffl", 0, "tensor adam_m.weight: zstd", NULL);
}

static void test_verify(void) {
    char path[512];
    ff_error_t err;
    path_of(path, sizeof path, "good.ffl");
    CHECKF(ff_layerfile_verify(path, &err) == 0, "%s", err.msg);
    path_of(path, sizeof path, "flip-adam_v.bias.ffl");
    CHECK(ff_layerfile_verify(path, &err) == -1);
    CHECK_CONTAINS(err.msg, "flip-adam_v.bias.ffl: tensor adam_v.bias: crc32 mismatch");

    /* A file without Adam state cannot resume training. */
    ff_layer_t layer, back;
    ff_layerfile_meta_t meta;
    check_make_layer(&layer, 4, 3, 0, 9);
    extreme_meta(&meta);
    path_of(path, sizeof path, "no-adam.ffl");
    CHECKF(ff_layerfile_save(path, &layer, &meta, NULL, &err) == 0, "%s", err.msg);
    CHECKF(ff_layerfile_verify(path, &err) == 0, "%s", err.msg);
    CHECK(ff_layerfile_load(path, &back, NULL, 1, 0, 0, &err) == -1);
    CHECK(back.params == NULL && back.in == 0);
    CHECK_CONTAINS(err.msg, "no-adam.ffl");
    CHECK_CONTAINS(err.msg, "no Adam state");
    printf("rejected no-adam.ffl with training: %s\n", err.msg);
    CHECKF(ff_layerfile_load(path, &back, NULL, 0, 0, 0, &err) == 0, "%s", err.msg);
    check_layers_equal(&layer, &back, 0);
    ff_layer_free(&back);

    /* Saving refuses what the reader would reject. */
    ff_layerfile_options_t opt = {FF_CODEC_ZSTD, 1000};
    CHECK(ff_layerfile_save(path, &layer, &meta, &opt, &err) == -1);
    CHECK_CONTAINS(err.msg, "zstd level 1000");
    opt = (ff_layerfile_options_t){(ff_codec_t)7, 3};
    CHECK(ff_layerfile_save(path, &layer, &meta, &opt, &err) == -1);
    CHECK_CONTAINS(err.msg, "unknown codec 7");
    meta.npos = (UINT64_C(1) << 53) + 1;
    CHECK(ff_layerfile_save(path, &layer, &meta, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "training.npos");
    CHECKF(ff_layerfile_verify(path, &err) == 0, "%s", err.msg); /* still the first save */
    ff_layer_free(&layer);
}

static int temp_files_left(void) {
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") != NULL) count++;
    closedir(d);
    return count;
}

/* A save that fails part-way (the file size limit, as on a full disk)
 * reports it and leaves the previous file as it was. */
static void test_atomic_failure(void) {
    ff_layer_t small, big, back;
    ff_layerfile_meta_t meta;
    ff_error_t err = {{0}};
    check_make_layer(&small, 6, 5, 1, 21);
    check_make_layer(&big, 300, 200, 1, 22);
    extreme_meta(&meta);
    char path[512];
    path_of(path, sizeof path, "atomic.ffl");
    CHECKF(ff_layerfile_save(path, &small, &meta, NULL, &err) == 0, "%s", err.msg);
    size_t before_size;
    uint8_t *before = read_bytes("atomic.ffl", &before_size);

    struct rlimit old_limit, limit;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    limit = old_limit;
    limit.rlim_cur = 64 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    int limited = setrlimit(RLIMIT_FSIZE, &limit) == 0;
    CHECKF(limited, "setrlimit(RLIMIT_FSIZE) failed");
    ff_layerfile_options_t raw = {FF_CODEC_RAW, 0};
    int rc = ff_layerfile_save(path, &big, &meta, &raw, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    signal(SIGXFSZ, old_handler);

    CHECK(rc == -1);
    CHECK_CONTAINS(err.msg, "atomic.ffl");
    CHECK_CONTAINS(err.msg, "write failed: File too large");
    printf("failed save: %s\n", err.msg);
    size_t after_size;
    uint8_t *after = read_bytes("atomic.ffl", &after_size);
    CHECK(before != NULL && after != NULL && before_size == after_size &&
          memcmp(before, after, before_size) == 0);
    CHECKF(ff_layerfile_load(path, &back, NULL, 1, 0, 0, &err) == 0, "%s", err.msg);
    check_layers_equal(&small, &back, 1);
    ff_layer_free(&back);
    CHECK(temp_files_left() == 0);

    /* The same save without the limit goes through and replaces the file. */
    CHECKF(ff_layerfile_save(path, &big, &meta, &raw, &err) == 0, "%s", err.msg);
    CHECKF(ff_layerfile_load(path, &back, NULL, 1, 0, 0, &err) == 0, "%s", err.msg);
    check_layers_equal(&big, &back, 1);
    ff_layer_free(&back);
    CHECK(temp_files_left() == 0);
    free(after);
    free(before);
    ff_layer_free(&big);
    ff_layer_free(&small);
}

/* Sizes a file claims cannot make the reader allocate: a header claiming a
 * 16384 x 16384 layer in a small file is refused by a trainer's expected
 * shape before anything is allocated, and streaming a tensor never holds
 * more than a block; a layer with NaN weights does not pass verify. */
static void test_hostile_sizes(void) {
    ff_error_t err;
    char path[FF_PATH_MAX];
    cJSON *root = hand_header();
    set_field(root, "in", cJSON_CreateNumber(16384));
    set_field(root, "out", cJSON_CreateNumber(16384));
    const double raw[6] = {16384.0 * 16384 * 4, 16384.0 * 4, 16384.0 * 16384 * 4, 16384.0 * 4,
                           16384.0 * 16384 * 4, 16384.0 * 4};
    for (int i = 0; i < 6; i++) {
        cJSON *shape = cJSON_CreateArray();
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(16384));
        if (i % 2 == 0) cJSON_AddItemToArray(shape, cJSON_CreateNumber(16384));
        set_field(tensor_of(root, i), "shape", shape);
        set_field(tensor_of(root, i), "raw_bytes", cJSON_CreateNumber(raw[i]));
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    write_hand("claims-16384.ffl", text, NULL);
    free(text);
    path_of(path, sizeof path, "claims-16384.ffl");
    ff_mem_reset_peaks();
    ff_mem_stats_t before, after;
    ff_mem_stats(&before);
    ff_layer_t layer;
    CHECK(ff_layerfile_load(path, &layer, NULL, 1, 5, 4, &err) == -1);
    CHECK_CONTAINS(err.msg, "layer 16384 -> 16384, expected 5 -> 4");
    ff_layerfile_info_t info;
    CHECKF(ff_layerfile_read_info(path, &info, &err) == 0, "%s", err.msg);
    CHECK(ff_layerfile_read_tensor(path, &info.tensors[0], NULL, &err) == -1); /* no data: frame size */
    CHECK_CONTAINS(err.msg, "declares 80 bytes, expected 1073741824");
    ff_mem_stats(&after);
    CHECKF(after.peak_total - before.current_total < (8u << 20),
           "reading a file that claims 4 GiB took %llu bytes",
           (unsigned long long)(after.peak_total - before.current_total));
    printf("rejected claims-16384.ffl: %s\n", err.msg);

    check_make_layer(&layer, 6, 3, 1, 5);
    layer.params[4] = NAN;
    layer.adam_v[2] = INFINITY;
    ff_layerfile_meta_t meta;
    extreme_meta(&meta);
    path_of(path, sizeof path, "nan.ffl");
    CHECKF(ff_layerfile_save(path, &layer, &meta, NULL, &err) == 0, "%s", err.msg);
    CHECK(ff_layerfile_verify(path, &err) == -1);
    CHECK_CONTAINS(err.msg, "tensor weight: 1 of 18 values are NaN or infinite");
    ff_layer_free(&layer);
}

int main(void) {
    check_tempdir(dir, "layerfile");
    test_codecs();
    test_round_trip();
    test_meta_special_values();
    test_determinism();
    make_fixture();
    if (good_file != NULL) {
        test_reject_preamble();
        test_reject_truncated();
        test_reject_header_fields();
        test_reject_payload();
        test_verify();
        test_hostile_sizes();
    }
    test_atomic_failure();
    free(good_file);
    /* Every buffer the module took from ff_mem_alloc went back. */
    ff_mem_stats_t stats;
    ff_mem_stats(&stats);
    CHECKF(stats.current_total == 0, "%llu bytes still allocated",
           (unsigned long long)stats.current_total);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_layerfile");
}
