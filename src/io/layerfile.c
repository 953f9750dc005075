/* layerfile.c: the per-layer checkpoint file (byte layout in layerfile.h):
 * the codecs, the writer (deterministic header, one buffer, atomic write) and
 * the reader, which checks every header field before it allocates and every
 * checksum before it decodes. */
#include "ffstream/layerfile.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "ffstream/memstat.h"
#include "ffstream/fileio.h"

/* Tensors are stored as the float32 bytes of memory, which the format
 * defines as little-endian. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "layerfile.c stores floats as they are in memory and needs a little-endian host"
#endif

#define FORMAT_NAME "ffstream-layer"
/* cJSON holds numbers as doubles: integers are exact up to 2^53. */
#define JSON_MAX_INT (UINT64_C(1) << 53)
#define MAX_DIM (UINT64_C(1) << 24)
/* Bytes kept free in front of the compressed payload for the preamble and
 * header, so the file is assembled in one buffer; the header is ~1.5 KiB. */
#define HEADER_RESERVE 16384u
/* A pread or crc32 call covers at most this much (crc32 takes a uInt). */

static const char *const tensor_names[FF_LAYERFILE_MAX_TENSORS] = {
    "weight", "bias", "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias",
};

/* ---- codecs ---- */

const char *ff_codec_name(ff_codec_t codec) {
    switch (codec) {
    case FF_CODEC_RAW:
        return "raw";
    case FF_CODEC_ZSTD:
        return "zstd";
    case FF_CODEC_ZSTD_SHUFFLE:
        return "zstd-shuffle";
    }
    return "unknown";
}

int ff_codec_parse(const char *name, ff_codec_t *out) {
    const ff_codec_t all[3] = {FF_CODEC_RAW, FF_CODEC_ZSTD, FF_CODEC_ZSTD_SHUFFLE};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(name, ff_codec_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

size_t ff_codec_bound(ff_codec_t codec, size_t raw_bytes) {
    if (codec == FF_CODEC_RAW) return raw_bytes;
    if (codec != FF_CODEC_ZSTD && codec != FF_CODEC_ZSTD_SHUFFLE) return 0;
    size_t bound = ZSTD_compressBound(raw_bytes);
    return ZSTD_isError(bound) ? 0 : bound;
}

/* Byte k of every float goes to plane k: the sign-and-exponent bytes of
 * floats of similar magnitude then sit side by side, where zstd finds the
 * repetition that interleaved mantissa bytes hide.
 * One pass with four planes at once (rather than one pass per plane) lets
 * the compiler vectorise it: about 2.5x faster here. */
static void shuffle4(uint8_t *dst, const uint8_t *src, size_t count) {
    uint8_t *p0 = dst, *p1 = dst + count, *p2 = dst + 2 * count, *p3 = dst + 3 * count;
    for (size_t i = 0; i < count; i++) {
        p0[i] = src[4 * i], p1[i] = src[4 * i + 1];
        p2[i] = src[4 * i + 2], p3[i] = src[4 * i + 3];
    }
}

static void unshuffle4(uint8_t *dst, const uint8_t *src, size_t count) {
    const uint8_t *p0 = src, *p1 = src + count, *p2 = src + 2 * count, *p3 = src + 3 * count;
    for (size_t i = 0; i < count; i++) {
        dst[4 * i] = p0[i], dst[4 * i + 1] = p1[i];
        dst[4 * i + 2] = p2[i], dst[4 * i + 3] = p3[i];
    }
}

/* One zstd frame with the content size and checksum in it. */
static int zstd_compress(void *dst, size_t capacity, const void *src, size_t size, int level,
                         size_t *stored_bytes, ff_error_t *err) {
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (cctx == NULL) return ff_error_set(err, "out of memory for a zstd compression context");
    int rc = -1;
    size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cctx, dst, capacity, src, size);
    if (ZSTD_isError(r)) {
        ff_error_set(err, "zstd compression at level %d failed: %s", level, ZSTD_getErrorName(r));
        goto cleanup;
    }
    *stored_bytes = r;
    rc = 0;
cleanup:
    ZSTD_freeCCtx(cctx);
    return rc;
}

/* Decodes exactly one frame of exactly raw_bytes; zstd checks the frame's
 * own content checksum. */
static int zstd_decompress(void *dst, size_t raw_bytes, const void *src, size_t stored_bytes,
                           ff_error_t *err) {
    unsigned long long content = ZSTD_getFrameContentSize(src, stored_bytes);
    if (content == ZSTD_CONTENTSIZE_ERROR)
        return ff_error_set(err, "stored bytes are not a zstd frame");
    if (content == ZSTD_CONTENTSIZE_UNKNOWN)
        return ff_error_set(err, "zstd frame does not declare its content size");
    if (content != raw_bytes)
        return ff_error_set(err, "zstd frame declares %llu bytes, expected %zu", content,
                            raw_bytes);
    size_t frame = ZSTD_findFrameCompressedSize(src, stored_bytes);
    if (ZSTD_isError(frame))
        return ff_error_set(err, "zstd frame is truncated or corrupt: %s",
                            ZSTD_getErrorName(frame));
    if (frame != stored_bytes)
        return ff_error_set(err, "%zu stray bytes after the %zu-byte zstd frame",
                            stored_bytes - frame, frame);
    size_t n = ZSTD_decompress(dst, raw_bytes, src, stored_bytes);
    if (ZSTD_isError(n))
        return ff_error_set(err, "zstd decompression failed: %s", ZSTD_getErrorName(n));
    if (n != raw_bytes)
        return ff_error_set(err, "zstd frame decoded to %zu bytes, expected %zu", n, raw_bytes);
    return 0;
}

int ff_codec_compress(ff_codec_t codec, int level, void *dst, size_t dst_capacity, const void *src,
                      size_t raw_bytes, size_t *stored_bytes, ff_error_t *err) {
    uint8_t *planes = NULL;
    int rc = -1;
    if (codec == FF_CODEC_RAW) {
        if (dst_capacity < raw_bytes) {
            ff_error_set(err, "raw: %zu bytes do not fit in %zu", raw_bytes, dst_capacity);
            goto cleanup;
        }
        memcpy(dst, src, raw_bytes);
        *stored_bytes = raw_bytes;
        rc = 0;
    } else if (codec == FF_CODEC_ZSTD) {
        rc = zstd_compress(dst, dst_capacity, src, raw_bytes, level, stored_bytes, err);
    } else if (codec == FF_CODEC_ZSTD_SHUFFLE) {
        if (raw_bytes % 4 != 0) {
            ff_error_set(err, "zstd-shuffle: %zu bytes is not a whole number of floats", raw_bytes);
            goto cleanup;
        }
        planes = ff_mem_alloc(FF_MEM_IO, raw_bytes);
        if (planes == NULL) {
            ff_error_set(err, "zstd-shuffle: out of memory for %zu bytes", raw_bytes);
            goto cleanup;
        }
        shuffle4(planes, src, raw_bytes / 4);
        rc = zstd_compress(dst, dst_capacity, planes, raw_bytes, level, stored_bytes, err);
    } else {
        ff_error_set(err, "unknown codec %d", (int)codec);
    }
cleanup:
    ff_mem_free(planes);
    return rc;
}

int ff_codec_decompress(ff_codec_t codec, void *dst, size_t raw_bytes, const void *src,
                        size_t stored_bytes, ff_error_t *err) {
    uint8_t *planes = NULL;
    int rc = -1;
    if (codec == FF_CODEC_RAW) {
        if (stored_bytes != raw_bytes) {
            ff_error_set(err, "raw: %zu stored bytes, expected %zu", stored_bytes, raw_bytes);
            goto cleanup;
        }
        memcpy(dst, src, raw_bytes);
        rc = 0;
    } else if (codec == FF_CODEC_ZSTD) {
        rc = zstd_decompress(dst, raw_bytes, src, stored_bytes, err);
    } else if (codec == FF_CODEC_ZSTD_SHUFFLE) {
        if (raw_bytes % 4 != 0) {
            ff_error_set(err, "zstd-shuffle: %zu bytes is not a whole number of floats", raw_bytes);
            goto cleanup;
        }
        planes = ff_mem_alloc(FF_MEM_IO, raw_bytes);
        if (planes == NULL) {
            ff_error_set(err, "zstd-shuffle: out of memory for %zu bytes", raw_bytes);
            goto cleanup;
        }
        if (zstd_decompress(planes, raw_bytes, src, stored_bytes, err) != 0) goto cleanup;
        unshuffle4(dst, planes, raw_bytes / 4);
        rc = 0;
    } else {
        ff_error_set(err, "unknown codec %d", (int)codec);
    }
cleanup:
    ff_mem_free(planes);
    return rc;
}

/* ---- shared helpers ---- */

ff_layerfile_options_t ff_layerfile_default_options(void) {
    /* Measured on trained layers (README, "Checkpoint codec"): byte shuffle +
     * zstd level 1 stores weights at 1.25x and Adam moments at 1.75x, at
     * ~780 MB/s; level 3 gains under 2% for a slower compressor. */
    ff_layerfile_options_t opt = {.codec = FF_CODEC_ZSTD_SHUFFLE, .level = 1};
    return opt;
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The float block tensor i lives in: weight or bias of params, adam_m or
 * adam_v, each block laid out weight then bias. */
static float *tensor_data(const ff_layer_t *layer, uint32_t i) {
    float *blocks[3] = {layer->params, layer->adam_m, layer->adam_v};
    float *block = blocks[i / 2];
    return i % 2 == 0 ? block : block + (size_t)layer->in * layer->out;
}

/* ---- writer ---- */

/* Adds a non-negative integer as its exact decimal digits (callers keep it
 * at most 2^53 so readers that hold numbers as doubles see the same value).
 * @return 0, or -1 when out of memory. */
static int add_uint(cJSON *obj, const char *key, uint64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, key, text) != NULL ? 0 : -1;
}

static int add_hex(cJSON *obj, const char *key, uint64_t v, int digits) {
    char text[24];
    snprintf(text, sizeof text, "%0*" PRIx64, digits, v);
    return cJSON_AddStringToObject(obj, key, text) != NULL ? 0 : -1;
}

/* Formats finite v with the fewest of 15..17 significant digits that read
 * back to the same bits (so 0.1 stays "0.1" and -0 stays "-0"). */
static void format_double(char *text, size_t size, double v) {
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, size, "%.*g", digits, v);
        double back = strtod(text, NULL);
        if (back == v && signbit(back) == signbit(v)) break;
    }
}

/* JSON has no NaN or infinity: NaN is null, the infinities are the strings
 * "inf" and "-inf". */
static int add_double(cJSON *obj, const char *key, double v) {
    if (isnan(v)) return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
    if (isinf(v)) return cJSON_AddStringToObject(obj, key, v > 0 ? "inf" : "-inf") ? 0 : -1;
    char text[40];
    format_double(text, sizeof text, v);
    return cJSON_AddRawToObject(obj, key, text) != NULL ? 0 : -1;
}

static int add_tensor(cJSON *list, const ff_layerfile_tensor_t *t) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return -1;
    if (!cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return -1;
    }
    int bad = cJSON_AddStringToObject(o, "name", t->name) == NULL;
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    bad |= shape == NULL;
    for (uint32_t d = 0; shape != NULL && d < t->ndim; d++) {
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, t->shape[d]);
        cJSON *dim = cJSON_CreateRaw(text);
        bad |= dim == NULL || !cJSON_AddItemToArray(shape, dim);
    }
    bad |= cJSON_AddStringToObject(o, "codec", ff_codec_name(t->codec)) == NULL;
    bad |= add_uint(o, "raw_bytes", t->raw_bytes);
    bad |= add_uint(o, "stored_bytes", t->stored_bytes);
    bad |= add_uint(o, "offset", t->offset);
    bad |= add_hex(o, "crc32", t->crc32, 8);
    return bad ? -1 : 0;
}

/* The header text (cJSON_free it), or NULL when out of memory. Nothing in it
 * depends on the time or the machine, so equal inputs give equal bytes. */
static char *build_header(const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                          const ff_layerfile_tensor_t *tensors, uint32_t count) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    int bad = cJSON_AddStringToObject(root, "format", FORMAT_NAME) == NULL;
    bad |= add_uint(root, "version", FF_LAYERFILE_VERSION);
    bad |= cJSON_AddStringToObject(root, "writer", "ffstream " FF_VERSION) == NULL;
    bad |= add_uint(root, "layer_index", meta->layer_index);
    bad |= add_uint(root, "in", layer->in);
    bad |= add_uint(root, "out", layer->out);
    bad |= cJSON_AddStringToObject(root, "dtype", "float32") == NULL;
    bad |= cJSON_AddStringToObject(root, "activation", "relu") == NULL;
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    bad |= list == NULL;
    for (uint32_t i = 0; list != NULL && i < count; i++) bad |= add_tensor(list, &tensors[i]);
    cJSON *adam = cJSON_AddObjectToObject(root, "adam");
    bad |= adam == NULL;
    if (adam != NULL) {
        bad |= add_uint(adam, "step", (uint64_t)layer->adam_step);
        bad |= add_double(adam, "lr", meta->adam.lr);
        bad |= add_double(adam, "beta1", meta->adam.beta1);
        bad |= add_double(adam, "beta2", meta->adam.beta2);
        bad |= add_double(adam, "eps", meta->adam.eps);
        bad |= add_double(adam, "weight_decay", meta->adam.weight_decay);
    }
    cJSON *tr = cJSON_AddObjectToObject(root, "training");
    bad |= tr == NULL;
    if (tr != NULL) {
        bad |= add_uint(tr, "epochs_done", meta->epochs_done);
        bad |= add_uint(tr, "epochs_total", meta->epochs_total);
        bad |= add_uint(tr, "batch_in_epoch", meta->batch_in_epoch);
        bad |= cJSON_AddBoolToObject(tr, "complete", meta->complete != 0) == NULL;
        bad |= add_double(tr, "loss", meta->loss);
        bad |= add_double(tr, "goodness_pos", meta->goodness_pos);
        bad |= add_double(tr, "goodness_neg", meta->goodness_neg);
        bad |= add_double(tr, "loss_sum", meta->loss_sum);
        bad |= add_double(tr, "good_pos_sum", meta->good_pos_sum);
        bad |= add_double(tr, "good_neg_sum", meta->good_neg_sum);
        bad |= add_uint(tr, "batches", meta->batches);
        bad |= add_uint(tr, "npos", meta->npos);
        bad |= add_uint(tr, "nneg", meta->nneg);
    }
    bad |= add_hex(root, "data_fingerprint", meta->data_fingerprint, 16);
    bad |= add_hex(root, "config_fingerprint", meta->config_fingerprint, 16);
    char *text = bad ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* Refuses to write what the reader would reject. */
static int check_save_args(const char *path, const ff_layer_t *layer,
                           const ff_layerfile_meta_t *meta, const ff_layerfile_options_t *opt,
                           ff_error_t *err) {
    if (layer->params == NULL || layer->weight == NULL || layer->bias == NULL)
        return ff_error_set(err, "%s: cannot save: the layer has no parameters", path);
    if (layer->in < 1 || layer->in > MAX_DIM || layer->out < 1 || layer->out > MAX_DIM)
        return ff_error_set(err, "%s: cannot save: layer %u -> %u, expected sizes 1..%" PRIu64,
                            path, layer->in, layer->out, MAX_DIM);
    if ((layer->adam_m == NULL) != (layer->adam_v == NULL))
        return ff_error_set(err, "%s: cannot save: the layer has only one of the Adam moments",
                            path);
    if (layer->adam_step < 0 || (uint64_t)layer->adam_step > JSON_MAX_INT)
        return ff_error_set(err, "%s: cannot save: Adam step %" PRId64 ", expected 0..2^53", path,
                            layer->adam_step);
    const uint64_t counts[3] = {meta->batches, meta->npos, meta->nneg};
    const char *const count_names[3] = {"batches", "npos", "nneg"};
    for (size_t i = 0; i < 3; i++)
        if (counts[i] > JSON_MAX_INT)
            return ff_error_set(err,
                                "%s: cannot save: training.%s = %" PRIu64
                                " exceeds 2^53, which JSON cannot hold exactly",
                                path, count_names[i], counts[i]);
    if (ff_codec_bound(opt->codec, 1) == 0)
        return ff_error_set(err, "%s: cannot save: unknown codec %d", path, (int)opt->codec);
    if (opt->codec != FF_CODEC_RAW &&
        (opt->level < ZSTD_minCLevel() || opt->level > ZSTD_maxCLevel()))
        return ff_error_set(err, "%s: cannot save: zstd level %d, expected %d..%d", path,
                            opt->level, ZSTD_minCLevel(), ZSTD_maxCLevel());
    return 0;
}

int ff_layerfile_save(const char *path, const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                      const ff_layerfile_options_t *opt, ff_error_t *err) {
    assert(path != NULL && layer != NULL && meta != NULL);
    ff_layerfile_options_t o = opt != NULL ? *opt : ff_layerfile_default_options();
    if (check_save_args(path, layer, meta, &o, err) != 0) return -1;

    ff_layerfile_tensor_t tensors[FF_LAYERFILE_MAX_TENSORS];
    memset(tensors, 0, sizeof tensors);
    uint32_t count = layer->adam_m != NULL ? 6 : 2;
    size_t capacity = HEADER_RESERVE;
    for (uint32_t i = 0; i < count; i++) {
        ff_layerfile_tensor_t *t = &tensors[i];
        snprintf(t->name, sizeof t->name, "%s", tensor_names[i]);
        t->ndim = i % 2 == 0 ? 2 : 1;
        t->shape[0] = layer->out;
        t->shape[1] = i % 2 == 0 ? layer->in : 0;
        t->codec = o.codec;
        t->raw_bytes = (uint64_t)layer->out * (i % 2 == 0 ? layer->in : 1) * sizeof(float);
        size_t bound = ff_codec_bound(o.codec, (size_t)t->raw_bytes);
        if (bound == 0 || capacity > SIZE_MAX - bound)
            return ff_error_set(err, "%s: cannot save: layer %u -> %u is too large to encode", path,
                                layer->in, layer->out);
        capacity += bound;
    }

    int rc = -1;
    char *header = NULL;
    uint8_t *file = ff_mem_alloc(FF_MEM_IO, capacity);
    if (file == NULL) {
        ff_error_set(err, "%s: cannot save: out of memory for a %zu-byte buffer", path, capacity);
        goto cleanup;
    }
    /* Encode every tensor first: the header records the stored sizes. */
    size_t payload = 0;
    for (uint32_t i = 0; i < count; i++) {
        ff_layerfile_tensor_t *t = &tensors[i];
        uint8_t *dst = file + HEADER_RESERVE + payload;
        size_t stored = 0;
        if (ff_codec_compress(o.codec, o.level, dst, capacity - HEADER_RESERVE - payload,
                              tensor_data(layer, i), (size_t)t->raw_bytes, &stored, err) != 0) {
            ff_error_wrap(err, "%s: cannot save tensor %s", path, t->name);
            goto cleanup;
        }
        t->stored_bytes = stored;
        t->crc32 = ff_fileio_crc32(dst, stored);
        payload += stored;
    }
    /* Offsets are absolute, so they depend on the header's length, which
     * depends on their digits: iterate to the fixed point. The length never
     * shrinks from one round to the next, so this ends in a few rounds. */
    size_t header_bytes = 0;
    for (int round = 0;; round++) {
        assert(round < 16);
        uint64_t offset = FF_LAYERFILE_PREAMBLE + header_bytes;
        for (uint32_t i = 0; i < count; i++) {
            tensors[i].offset = offset;
            offset += tensors[i].stored_bytes;
        }
        cJSON_free(header);
        header = build_header(layer, meta, tensors, count);
        if (header == NULL) {
            ff_error_set(err, "%s: cannot save: out of memory building the header", path);
            goto cleanup;
        }
        size_t length = strlen(header);
        if (length == header_bytes) break;
        header_bytes = length;
    }
    assert(FF_LAYERFILE_PREAMBLE + header_bytes <= HEADER_RESERVE);
    memmove(file + FF_LAYERFILE_PREAMBLE + header_bytes, file + HEADER_RESERVE, payload);
    memcpy(file, FF_LAYERFILE_MAGIC, 8); /* the 7 letters and their NUL */
    put_le32(file + 8, FF_LAYERFILE_VERSION);
    put_le32(file + 12, (uint32_t)header_bytes);
    memcpy(file + FF_LAYERFILE_PREAMBLE, header, header_bytes);
    rc = ff_fileio_write_atomic(path, file, FF_LAYERFILE_PREAMBLE + header_bytes + payload, err);
cleanup:
    cJSON_free(header);
    ff_mem_free(file);
    return rc;
}

/* ---- reader ---- */

/* Where header fields are looked up, for messages like
 * `<path>: tensor bias: header field "offset" missing`. */
typedef struct {
    const char *path;
    const char *prefix; /* "" or "tensor bias: " */
    const char *group;  /* "", "adam.", "training." or "tensors[1]." */
    ff_error_t *err;
} field_ctx_t;

static const cJSON *get_field(const field_ctx_t *c, const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (item == NULL)
        ff_error_set(c->err, "%s: %sheader field \"%s%s\" missing", c->path, c->prefix, c->group,
                     key);
    return item;
}

/* An integer in min..max (max at most 2^53), exactly. */
static int get_uint(const field_ctx_t *c, const cJSON *obj, const char *key, uint64_t min,
                    uint64_t max, uint64_t *out) {
    const cJSON *item = get_field(c, obj, key);
    if (item == NULL) return -1;
    if (!cJSON_IsNumber(item))
        return ff_error_set(c->err, "%s: %sheader field \"%s%s\" is not a number", c->path,
                            c->prefix, c->group, key);
    double v = item->valuedouble;
    if (!(v >= (double)min && v <= (double)max && v == floor(v))) {
        char text[40];
        format_double(text, sizeof text, v);
        return ff_error_set(c->err,
                            "%s: %sheader field \"%s%s\" is %s, expected an integer in "
                            "%" PRIu64 "..%" PRIu64,
                            c->path, c->prefix, c->group, key, text, min, max);
    }
    *out = (uint64_t)v;
    return 0;
}

static int get_u32(const field_ctx_t *c, const cJSON *obj, const char *key, uint32_t *out) {
    uint64_t v;
    if (get_uint(c, obj, key, 0, UINT32_MAX, &v) != 0) return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A number, null (NaN) or "inf" / "-inf": what add_double writes. */
static int get_double(const field_ctx_t *c, const cJSON *obj, const char *key, double *out) {
    const cJSON *item = get_field(c, obj, key);
    if (item == NULL) return -1;
    if (cJSON_IsNumber(item))
        *out = item->valuedouble;
    else if (cJSON_IsNull(item))
        *out = NAN;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "inf") == 0)
        *out = INFINITY;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "-inf") == 0)
        *out = -INFINITY;
    else
        return ff_error_set(c->err,
                            "%s: %sheader field \"%s%s\" is not a number, null, \"inf\" or "
                            "\"-inf\"",
                            c->path, c->prefix, c->group, key);
    return 0;
}

static int get_string(const field_ctx_t *c, const cJSON *obj, const char *key, const char **out) {
    const cJSON *item = get_field(c, obj, key);
    if (item == NULL) return -1;
    if (!cJSON_IsString(item))
        return ff_error_set(c->err, "%s: %sheader field \"%s%s\" is not a string", c->path,
                            c->prefix, c->group, key);
    *out = item->valuestring;
    return 0;
}

/* A string of exactly `digits` hex digits. */
static int get_hex(const field_ctx_t *c, const cJSON *obj, const char *key, int digits,
                   uint64_t *out) {
    const char *s = NULL;
    if (get_string(c, obj, key, &s) != 0) return -1;
    uint64_t v = 0;
    int n = 0;
    for (; s[n] != '\0' && n <= digits; n++) {
        char ch = s[n];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0) break;
        v = v << 4 | (uint64_t)d;
    }
    if (n != digits || s[n] != '\0')
        return ff_error_set(c->err,
                            "%s: %sheader field \"%s%s\" is \"%.40s\", expected %d hex digits",
                            c->path, c->prefix, c->group, key, s, digits);
    *out = v;
    return 0;
}

static int get_object(const field_ctx_t *c, const cJSON *obj, const char *key, const cJSON **out) {
    const cJSON *item = get_field(c, obj, key);
    if (item == NULL) return -1;
    if (!cJSON_IsObject(item))
        return ff_error_set(c->err, "%s: %sheader field \"%s%s\" is not an object", c->path,
                            c->prefix, c->group, key);
    *out = item;
    return 0;
}

/* The shape must be [out, in] for weights and [out] for biases. */
static int check_shape(const field_ctx_t *c, const cJSON *t, ff_layerfile_tensor_t *out,
                       uint32_t ndim, uint32_t in, uint32_t layer_out) {
    const cJSON *shape = get_field(c, t, "shape");
    if (shape == NULL) return -1;
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != (int)ndim)
        return ff_error_set(c->err, "%s: %sheader field \"shape\" is not an array of %u sizes",
                            c->path, c->prefix, ndim);
    const uint64_t expect[2] = {layer_out, in};
    char text[64];
    int len = 0;
    int mismatch = 0;
    for (uint32_t d = 0; d < ndim; d++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, (int)d);
        double v = cJSON_IsNumber(dim) ? dim->valuedouble : -1;
        if (!(v >= 0 && v <= (double)JSON_MAX_INT && v == floor(v)))
            return ff_error_set(c->err, "%s: %sshape[%u] is not a size", c->path, c->prefix, d);
        out->shape[d] = (uint64_t)v;
        mismatch |= out->shape[d] != expect[d];
        len += snprintf(text + len, sizeof text - (size_t)len, "%s%" PRIu64, d ? ", " : "",
                        out->shape[d]);
    }
    out->ndim = ndim;
    if (mismatch)
        return ff_error_set(c->err, "%s: %sshape [%s] disagrees with %s", c->path, c->prefix, text,
                            ndim == 2 ? "the header's [out, in]" : "the header's [out]");
    return 0;
}

/* Reads and checks tensors[i] into out: the name expected at that place,
 * a shape agreeing with in/out, consistent sizes, a known codec and bytes
 * inside the payload that overlap no earlier tensor. */
static int parse_tensor(const char *path, const cJSON *list, uint32_t i, uint32_t in,
                        uint32_t layer_out, uint64_t payload_start, uint64_t file_bytes,
                        ff_layerfile_info_t *info, ff_error_t *err) {
    ff_layerfile_tensor_t *out = &info->tensors[i];
    char group[32], prefix[48];
    snprintf(group, sizeof group, "tensors[%u].", i);
    field_ctx_t c = {path, "", group, err};
    const cJSON *t = cJSON_GetArrayItem(list, (int)i);
    if (!cJSON_IsObject(t))
        return ff_error_set(err, "%s: header field \"tensors[%u]\" is not an object", path, i);
    const char *name = NULL;
    if (get_string(&c, t, "name", &name) != 0) return -1;
    if (strcmp(name, tensor_names[i]) != 0)
        return ff_error_set(err,
                            "%s: header field \"tensors[%u].name\" is \"%.40s\", expected "
                            "\"%s\" (the order is weight, bias, adam_m.weight, adam_m.bias, "
                            "adam_v.weight, adam_v.bias)",
                            path, i, name, tensor_names[i]);
    snprintf(out->name, sizeof out->name, "%s", tensor_names[i]);
    snprintf(prefix, sizeof prefix, "tensor %s: ", tensor_names[i]);
    c.prefix = prefix;
    c.group = "";

    uint32_t ndim = i % 2 == 0 ? 2 : 1;
    if (check_shape(&c, t, out, ndim, in, layer_out) != 0) return -1;
    uint64_t expect_raw = (uint64_t)layer_out * (ndim == 2 ? in : 1) * sizeof(float);
    if (get_uint(&c, t, "raw_bytes", 0, JSON_MAX_INT, &out->raw_bytes) != 0) return -1;
    if (out->raw_bytes != expect_raw)
        return ff_error_set(err,
                            "%s: tensor %s: raw_bytes %" PRIu64 " disagrees with its shape "
                            "(%" PRIu64 " float32 bytes)",
                            path, out->name, out->raw_bytes, expect_raw);
    const char *codec = NULL;
    if (get_string(&c, t, "codec", &codec) != 0) return -1;
    if (ff_codec_parse(codec, &out->codec) != 0)
        return ff_error_set(err,
                            "%s: tensor %s: unknown codec \"%.40s\", expected raw, zstd or "
                            "zstd-shuffle",
                            path, out->name, codec);
    if (get_uint(&c, t, "stored_bytes", 1, JSON_MAX_INT, &out->stored_bytes) != 0) return -1;
    if (out->codec == FF_CODEC_RAW && out->stored_bytes != out->raw_bytes)
        return ff_error_set(err,
                            "%s: tensor %s: codec raw but stored_bytes %" PRIu64
                            " differs from raw_bytes %" PRIu64,
                            path, out->name, out->stored_bytes, out->raw_bytes);
    uint64_t bound = ff_codec_bound(out->codec, (size_t)out->raw_bytes);
    if (out->stored_bytes > bound)
        return ff_error_set(err,
                            "%s: tensor %s: stored_bytes %" PRIu64 " exceeds the %" PRIu64
                            " bytes %s can produce from %" PRIu64 " bytes",
                            path, out->name, out->stored_bytes, bound, codec, out->raw_bytes);
    if (get_uint(&c, t, "offset", 0, JSON_MAX_INT, &out->offset) != 0) return -1;
    if (out->offset < payload_start)
        return ff_error_set(err,
                            "%s: tensor %s: offset %" PRIu64
                            " lies inside the preamble and header (the payload starts at "
                            "byte %" PRIu64 ")",
                            path, out->name, out->offset, payload_start);
    if (out->offset > file_bytes || out->stored_bytes > file_bytes - out->offset)
        return ff_error_set(err,
                            "%s: tensor %s: offset %" PRIu64 " + %" PRIu64
                            " bytes runs past the end of the %" PRIu64 "-byte file (truncated?)",
                            path, out->name, out->offset, out->stored_bytes, file_bytes);
    for (uint32_t j = 0; j < i; j++) {
        const ff_layerfile_tensor_t *o = &info->tensors[j];
        if (out->offset < o->offset + o->stored_bytes &&
            o->offset < out->offset + out->stored_bytes)
            return ff_error_set(err,
                                "%s: tensor %s (bytes %" PRIu64 "..%" PRIu64
                                ") overlaps tensor %s (bytes %" PRIu64 "..%" PRIu64 ")",
                                path, out->name, out->offset, out->offset + out->stored_bytes - 1,
                                o->name, o->offset, o->offset + o->stored_bytes - 1);
    }
    uint64_t crc;
    if (get_hex(&c, t, "crc32", 8, &crc) != 0) return -1;
    out->crc32 = (uint32_t)crc;
    return 0;
}

static int parse_adam(const field_ctx_t *top, const cJSON *root, ff_layerfile_info_t *info) {
    const cJSON *adam = NULL;
    if (get_object(top, root, "adam", &adam) != 0) return -1;
    field_ctx_t c = {top->path, "", "adam.", top->err};
    uint64_t step;
    if (get_uint(&c, adam, "step", 0, JSON_MAX_INT, &step) != 0) return -1;
    info->adam_step = (int64_t)step;
    ff_adam_params_t *p = &info->meta.adam;
    if (get_double(&c, adam, "lr", &p->lr) != 0 || get_double(&c, adam, "beta1", &p->beta1) != 0 ||
        get_double(&c, adam, "beta2", &p->beta2) != 0 ||
        get_double(&c, adam, "eps", &p->eps) != 0 ||
        get_double(&c, adam, "weight_decay", &p->weight_decay) != 0)
        return -1;
    return 0;
}

static int parse_training(const field_ctx_t *top, const cJSON *root, ff_layerfile_meta_t *m) {
    const cJSON *tr = NULL;
    if (get_object(top, root, "training", &tr) != 0) return -1;
    field_ctx_t c = {top->path, "", "training.", top->err};
    if (get_u32(&c, tr, "epochs_done", &m->epochs_done) != 0 ||
        get_u32(&c, tr, "epochs_total", &m->epochs_total) != 0 ||
        get_u32(&c, tr, "batch_in_epoch", &m->batch_in_epoch) != 0)
        return -1;
    const cJSON *complete = get_field(&c, tr, "complete");
    if (complete == NULL) return -1;
    if (!cJSON_IsBool(complete))
        return ff_error_set(c.err, "%s: header field \"training.complete\" is not true or false",
                            c.path);
    m->complete = cJSON_IsTrue(complete) ? 1 : 0;
    if (get_double(&c, tr, "loss", &m->loss) != 0 ||
        get_double(&c, tr, "goodness_pos", &m->goodness_pos) != 0 ||
        get_double(&c, tr, "goodness_neg", &m->goodness_neg) != 0 ||
        get_double(&c, tr, "loss_sum", &m->loss_sum) != 0 ||
        get_double(&c, tr, "good_pos_sum", &m->good_pos_sum) != 0 ||
        get_double(&c, tr, "good_neg_sum", &m->good_neg_sum) != 0 ||
        get_uint(&c, tr, "batches", 0, JSON_MAX_INT, &m->batches) != 0 ||
        get_uint(&c, tr, "npos", 0, JSON_MAX_INT, &m->npos) != 0 ||
        get_uint(&c, tr, "nneg", 0, JSON_MAX_INT, &m->nneg) != 0)
        return -1;
    return 0;
}

/* Parses and checks the header text (NUL-terminated, header_bytes long)
 * into info, whose version and file_bytes are already set. */
static int parse_header(const char *path, const char *text, size_t header_bytes,
                        ff_layerfile_info_t *info, ff_error_t *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    int rc = -1;
    field_ctx_t c = {path, "", "", err};
    if (root == NULL) {
        ff_error_set(err, "%s: header is not valid JSON (error near byte %zu of %zu)", path,
                     end != NULL ? (size_t)(end - text) : 0, header_bytes);
        goto cleanup;
    }
    if ((size_t)(end - text) != header_bytes) {
        ff_error_set(err, "%s: header has a NUL byte at byte %zu of %zu", path,
                     (size_t)(end - text), header_bytes);
        goto cleanup;
    }
    if (!cJSON_IsObject(root)) {
        ff_error_set(err, "%s: header is not a JSON object", path);
        goto cleanup;
    }
    const char *s = NULL;
    if (get_string(&c, root, "format", &s) != 0) goto cleanup;
    if (strcmp(s, FORMAT_NAME) != 0) {
        ff_error_set(err, "%s: header field \"format\" is \"%.40s\", expected \"%s\"", path, s,
                     FORMAT_NAME);
        goto cleanup;
    }
    uint32_t version;
    if (get_u32(&c, root, "version", &version) != 0) goto cleanup;
    if (version != info->version) {
        ff_error_set(err, "%s: header field \"version\" is %u but the preamble says %u", path,
                     version, info->version);
        goto cleanup;
    }
    if (get_string(&c, root, "writer", &s) != 0) goto cleanup;
    snprintf(info->writer, sizeof info->writer, "%s", s);
    if (get_u32(&c, root, "layer_index", &info->meta.layer_index) != 0) goto cleanup;
    uint64_t in, out;
    if (get_uint(&c, root, "in", 1, MAX_DIM, &in) != 0 ||
        get_uint(&c, root, "out", 1, MAX_DIM, &out) != 0)
        goto cleanup;
    size_t count, bytes;
    if (ff_mul_size((size_t)in, (size_t)out, &count) != 0 || count > SIZE_MAX - out ||
        ff_mul_size(count + (size_t)out, sizeof(float), &bytes) != 0) {
        ff_error_set(err, "%s: layer %" PRIu64 " -> %" PRIu64 " is too large for this machine",
                     path, in, out);
        goto cleanup;
    }
    info->in = (uint32_t)in;
    info->out = (uint32_t)out;
    if (get_string(&c, root, "dtype", &s) != 0) goto cleanup;
    if (strcmp(s, "float32") != 0) {
        ff_error_set(err, "%s: header field \"dtype\" is \"%.40s\", expected \"float32\"", path, s);
        goto cleanup;
    }
    if (get_string(&c, root, "activation", &s) != 0) goto cleanup;
    if (strcmp(s, "relu") != 0) {
        ff_error_set(err, "%s: header field \"activation\" is \"%.40s\", expected \"relu\"", path,
                     s);
        goto cleanup;
    }

    const cJSON *list = get_field(&c, root, "tensors");
    if (list == NULL) goto cleanup;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
    if (n != 2 && n != 6) {
        ff_error_set(err,
                     "%s: header field \"tensors\" is not an array of 2 tensors (weight, bias) "
                     "or 6 (with the Adam moments)",
                     path);
        goto cleanup;
    }
    info->tensor_count = (uint32_t)n;
    info->has_optimizer = n == 6;
    uint64_t payload_start = FF_LAYERFILE_PREAMBLE + (uint64_t)header_bytes;
    uint64_t end_of_tensors = payload_start;
    for (uint32_t i = 0; i < info->tensor_count; i++) {
        if (parse_tensor(path, list, i, info->in, info->out, payload_start, info->file_bytes, info,
                         err) != 0)
            goto cleanup;
        uint64_t tensor_end = info->tensors[i].offset + info->tensors[i].stored_bytes;
        if (tensor_end > end_of_tensors) end_of_tensors = tensor_end;
    }
    /* The writer ends the file with the last tensor: more bytes mean two
     * files run together or an append that does not belong. */
    if (end_of_tensors != info->file_bytes) {
        ff_error_set(err,
                     "%s: %" PRIu64 " trailing bytes after the last tensor (the tensors end "
                     "at byte %" PRIu64 " of %" PRIu64 ")",
                     path, info->file_bytes - end_of_tensors, end_of_tensors, info->file_bytes);
        goto cleanup;
    }
    if (parse_adam(&c, root, info) != 0 || parse_training(&c, root, &info->meta) != 0) goto cleanup;
    if (get_hex(&c, root, "data_fingerprint", 16, &info->meta.data_fingerprint) != 0 ||
        get_hex(&c, root, "config_fingerprint", 16, &info->meta.config_fingerprint) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    cJSON_Delete(root);
    return rc;
}

static int read_error(const char *path, const char *what, ff_error_t *err) {
    if (errno == 0)
        return ff_error_set(err,
                            "%s: cannot read %s: the file ended early (it shrank while being "
                            "read?)",
                            path, what);
    return ff_error_set(err, "%s: cannot read %s: %s", path, what, strerror(errno));
}

/* Closes a checkpoint that has been read whole: its pages would otherwise
 * stay in the page cache, which a memory cgroup charges to the trainer. */
static void close_dropping_cache(int fd) {
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* Opens path, reads and checks the preamble and header into info and leaves
 * *fd_out open for the payload. */
static int open_layerfile(const char *path, int *fd_out, ff_layerfile_info_t *info,
                          ff_error_t *err) {
    memset(info, 0, sizeof *info);
    *fd_out = -1;
    char *text = NULL;
    int rc = -1;
    int fd = ff_fileio_open_regular(path, 0, &info->file_bytes, err);
    if (fd < 0) return -1;
    uint8_t pre[FF_LAYERFILE_PREAMBLE];
    size_t have = info->file_bytes < sizeof pre ? (size_t)info->file_bytes : sizeof pre;
    if (ff_fileio_read_exact(fd, pre, have, 0) != 0) {
        read_error(path, "the preamble", err);
        goto cleanup;
    }
    /* A foreign file gets named as such even when it is short. */
    if (have >= 8 && memcmp(pre, FF_LAYERFILE_MAGIC, 8) != 0) {
        ff_error_set(err,
                     "%s: not an ffstream layer file (magic %02x %02x %02x %02x %02x %02x %02x "
                     "%02x, expected \"FFLAYER\\0\")",
                     path, pre[0], pre[1], pre[2], pre[3], pre[4], pre[5], pre[6], pre[7]);
        goto cleanup;
    }
    if (have < sizeof pre) {
        ff_error_set(err,
                     "%s: file is %zu bytes, shorter than the %u-byte preamble of a layer file "
                     "(empty or truncated?)",
                     path, have, FF_LAYERFILE_PREAMBLE);
        goto cleanup;
    }
    info->version = get_le32(pre + 8);
    if (info->version != FF_LAYERFILE_VERSION) {
        ff_error_set(err, "%s: layer file format version %u, this build reads version %u", path,
                     info->version, FF_LAYERFILE_VERSION);
        goto cleanup;
    }
    uint32_t header_bytes = get_le32(pre + 12);
    if (header_bytes < 2 || header_bytes > FF_LAYERFILE_MAX_HEADER) {
        ff_error_set(err, "%s: header length %u bytes, expected 2..%u", path, header_bytes,
                     FF_LAYERFILE_MAX_HEADER);
        goto cleanup;
    }
    if (header_bytes > info->file_bytes - FF_LAYERFILE_PREAMBLE) {
        ff_error_set(
            err, "%s: header length %u runs past the end of the %" PRIu64 "-byte file (truncated?)",
            path, header_bytes, info->file_bytes);
        goto cleanup;
    }
    text = ff_mem_alloc(FF_MEM_IO, (size_t)header_bytes + 1);
    if (text == NULL) {
        ff_error_set(err, "%s: out of memory for the %u-byte header", path, header_bytes);
        goto cleanup;
    }
    if (ff_fileio_read_exact(fd, text, header_bytes, FF_LAYERFILE_PREAMBLE) != 0) {
        read_error(path, "the header", err);
        goto cleanup;
    }
    text[header_bytes] = '\0';
    if (parse_header(path, text, header_bytes, info, err) != 0) goto cleanup;
    *fd_out = fd;
    fd = -1;
    rc = 0;
cleanup:
    ff_mem_free(text);
    if (fd >= 0) close(fd);
    if (rc != 0) memset(info, 0, sizeof *info); /* no half-read header escapes */
    return rc;
}

/* Reads tensor t's stored bytes into stored (room for t->stored_bytes),
 * checks their crc32 before anything decodes them, then decodes into dst
 * (t->raw_bytes). */
static int read_tensor(int fd, const char *path, const ff_layerfile_tensor_t *t, uint8_t *stored,
                       void *dst, ff_error_t *err) {
    if (ff_fileio_read_exact(fd, stored, (size_t)t->stored_bytes, t->offset) != 0) {
        char what[64];
        snprintf(what, sizeof what, "tensor %s", t->name);
        return read_error(path, what, err);
    }
    uint32_t crc = ff_fileio_crc32(stored, (size_t)t->stored_bytes);
    if (crc != t->crc32)
        return ff_error_set(err, "%s: tensor %s: crc32 mismatch (stored %08x, computed %08x)", path,
                            t->name, t->crc32, crc);
    if (ff_codec_decompress(t->codec, dst, (size_t)t->raw_bytes, stored, (size_t)t->stored_bytes,
                            err) != 0)
        return ff_error_wrap(err, "%s: tensor %s", path, t->name);
    return 0;
}

const char *ff_layerfile_tensor_name(uint32_t index) {
    return index < FF_LAYERFILE_MAX_TENSORS ? tensor_names[index] : "unknown";
}

int ff_layerfile_read_tensor(const char *path, const ff_layerfile_tensor_t *t, float *dst,
                             ff_error_t *err) {
    if (t->stored_bytes > SIZE_MAX || t->raw_bytes > SIZE_MAX)
        return ff_error_set(err, "%s: tensor %s: too large for this machine", path, t->name);
    int fd = ff_fileio_open_regular(path, 0, NULL, err);
    if (fd < 0) return -1;
    int rc = -1;
    uint8_t *stored = ff_mem_alloc(FF_MEM_IO, (size_t)t->stored_bytes);
    if (stored == NULL)
        ff_error_set(err, "%s: tensor %s: out of memory for %" PRIu64 " bytes", path, t->name,
                     t->stored_bytes);
    else
        rc = read_tensor(fd, path, t, stored, dst, err);
    ff_mem_free(stored);
    close_dropping_cache(fd);
    return rc;
}

int ff_layerfile_read_info(const char *path, ff_layerfile_info_t *info, ff_error_t *err) {
    int fd;
    if (open_layerfile(path, &fd, info, err) != 0) return -1;
    close_dropping_cache(fd);
    return 0;
}

int ff_layerfile_load(const char *path, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                      int with_training, ff_error_t *err) {
    memset(layer, 0, sizeof *layer);
    ff_layerfile_info_t info;
    int fd;
    if (open_layerfile(path, &fd, &info, err) != 0) return -1;
    uint8_t *stored = NULL;
    int rc = -1;
    if (with_training && !info.has_optimizer) {
        ff_error_set(err,
                     "%s: the file has no Adam state (it was saved without training state), so "
                     "training cannot resume from it",
                     path);
        goto cleanup;
    }
    uint32_t count = with_training ? 6 : 2;
    size_t most_stored = 0;
    for (uint32_t i = 0; i < count; i++)
        if (info.tensors[i].stored_bytes > most_stored)
            most_stored = (size_t)info.tensors[i].stored_bytes;
    if (ff_layer_alloc(layer, info.in, info.out, with_training, err) != 0) {
        ff_error_wrap(err, "%s", path);
        goto cleanup;
    }
    stored = ff_mem_alloc(FF_MEM_IO, most_stored);
    if (stored == NULL) {
        ff_error_set(err, "%s: out of memory for a %zu-byte read buffer", path, most_stored);
        goto cleanup;
    }
    for (uint32_t i = 0; i < count; i++)
        if (read_tensor(fd, path, &info.tensors[i], stored, tensor_data(layer, i), err) != 0)
            goto cleanup;
    layer->adam_step = info.adam_step;
    if (meta != NULL) *meta = info.meta;
    rc = 0;
cleanup:
    ff_mem_free(stored);
    close_dropping_cache(fd);
    if (rc != 0) ff_layer_free(layer);
    return rc;
}

int ff_layerfile_verify(const char *path, ff_error_t *err) {
    ff_layerfile_info_t info;
    int fd;
    if (open_layerfile(path, &fd, &info, err) != 0) return -1;
    size_t most_stored = 0, most_raw = 0;
    for (uint32_t i = 0; i < info.tensor_count; i++) {
        if (info.tensors[i].stored_bytes > most_stored)
            most_stored = (size_t)info.tensors[i].stored_bytes;
        if (info.tensors[i].raw_bytes > most_raw) most_raw = (size_t)info.tensors[i].raw_bytes;
    }
    int rc = -1;
    uint8_t *stored = ff_mem_alloc(FF_MEM_IO, most_stored);
    uint8_t *raw = ff_mem_alloc(FF_MEM_IO, most_raw);
    if (stored == NULL || raw == NULL) {
        ff_error_set(err, "%s: out of memory for %zu + %zu bytes of buffers", path, most_stored,
                     most_raw);
        goto cleanup;
    }
    for (uint32_t i = 0; i < info.tensor_count; i++)
        if (read_tensor(fd, path, &info.tensors[i], stored, raw, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    ff_mem_free(raw);
    ff_mem_free(stored);
    close_dropping_cache(fd);
    return rc;
}

size_t ff_layerfile_save_bytes(uint32_t in, uint32_t out, int with_optimizer) {
    ff_layerfile_options_t o = ff_layerfile_default_options();
    size_t weight = (size_t)in * out * sizeof(float), bias = (size_t)out * sizeof(float);
    size_t tensors = with_optimizer ? 3 : 1;
    /* The whole file in one buffer, plus the byte-plane scratch of the
     * largest tensor while it is compressed. */
    size_t bytes = HEADER_RESERVE + tensors * (ff_codec_bound(o.codec, weight) +
                                               ff_codec_bound(o.codec, bias));
    if (o.codec == FF_CODEC_ZSTD_SHUFFLE) bytes += weight;
    return bytes;
}
