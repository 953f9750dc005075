/* layerfile.c: the per-layer checkpoint file (byte layout in layerfile.h):
 * the block codecs, the streaming writer (deterministic header, tensors
 * encoded block by block into the atomic writer) and the streaming reader,
 * which checks the header's checksum and every field before it allocates,
 * and every tensor's checksum as it decodes. */
#include "ffstream/layerfile.h"

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem: zstd's memory in the accounting */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include "ffstream/fileio.h"
#include "ffstream/json.h"
#include "ffstream/memstat.h"
#include "ffstream/tilefile.h"
#include "layerfile_internal.h"

/* Tensors are stored as the float32 bytes of memory, which the format
 * defines as little-endian. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "layerfile.c stores floats as they are in memory and needs a little-endian host"
#endif

#define FORMAT_NAME FF_LF_FORMAT_NAME
/* cJSON holds numbers as doubles: integers are exact up to 2^53. */
#define JSON_MAX_INT FF_LF_JSON_MAX_INT
#define MAX_DIM FF_LF_MAX_DIM
/* Floats shuffled and fed to zstd at a time: the codec's memory does not
 * grow with the tensor. */
#define BLOCK_FLOATS ((size_t)1 << 18)
#define BLOCK_BYTES (BLOCK_FLOATS * sizeof(float))
/* A frame may ask the decoder for at most a 2^23-byte window (what ffstream
 * writes needs 2^19 at level 1): a hostile frame cannot make the reader
 * allocate more. */
#define WINDOW_LOG_MAX 23


/* ---- codecs ---- */

const char *ff_codec_name(ff_codec_t codec) {
    switch (codec) {
    case FF_CODEC_RAW: return "raw";
    case FF_CODEC_ZSTD: return "zstd";
    case FF_CODEC_ZSTD_SHUFFLE: return "zstd-shuffle";
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

/* Byte k of every float of a block goes to plane k: the sign-and-exponent
 * bytes of floats of similar magnitude then sit side by side, where zstd
 * finds the repetition that interleaved mantissa bytes hide. One pass with
 * four planes at once lets the compiler vectorise it. */
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

/* zstd allocates through ff_mem, so its contexts are in the accounting. */
static void *zstd_alloc(void *opaque, size_t size) {
    (void)opaque;
    return ff_mem_alloc(FF_MEM_IO, size);
}

static void zstd_free(void *opaque, void *address) {
    (void)opaque;
    ff_mem_free(address);
}

static const ZSTD_customMem zstd_memory = {zstd_alloc, zstd_free, NULL};

/* Where encoded bytes go: an atomic file, or a buffer. */
typedef struct {
    ff_atomic_t *file;
    uint8_t *buffer;
    size_t capacity, used;
    uint32_t crc;
    uint64_t bytes;
} sink_t;

static int sink_put(sink_t *s, const void *data, size_t size, ff_error_t *err) {
    if (size == 0) return 0;
    s->crc = (uint32_t)crc32(s->crc, data, (uInt)size);
    s->bytes += size;
    if (s->file != NULL) return ff_atomic_write(s->file, data, size, err);
    if (size > s->capacity - s->used)
        return ff_error_set(err, "the encoded data do not fit in %zu bytes", s->capacity);
    memcpy(s->buffer + s->used, data, size);
    s->used += size;
    return 0;
}

/* The encoder's scratch: a shuffled block, zstd's output and its context. */
typedef struct {
    uint8_t *planes; /* [BLOCK_BYTES] */
    uint8_t *out;    /* [ZSTD_CStreamOutSize()] */
    ZSTD_CCtx *cctx;
} encoder_t;

static void encoder_free(encoder_t *e) {
    ZSTD_freeCCtx(e->cctx);
    ff_mem_free(e->out);
    ff_mem_free(e->planes);
    memset(e, 0, sizeof *e);
}

static int encoder_init(encoder_t *e, ff_error_t *err) {
    memset(e, 0, sizeof *e);
    e->planes = ff_mem_alloc(FF_MEM_IO, BLOCK_BYTES);
    e->out = ff_mem_alloc(FF_MEM_IO, ZSTD_CStreamOutSize());
    e->cctx = ZSTD_createCCtx_advanced(zstd_memory);
    if (e->planes == NULL || e->out == NULL || e->cctx == NULL) {
        encoder_free(e);
        return ff_error_set(err, "out of memory for the checkpoint encoder");
    }
    return 0;
}

/* Encodes raw_bytes of src as one stored tensor into the sink: raw bytes,
 * or one zstd frame (content size and checksum in it) of the bytes, or of
 * each block's byte planes. */
static int encode(encoder_t *e, ff_codec_t codec, int level, const void *src, size_t raw_bytes,
                  sink_t *sink, ff_error_t *err) {
    const uint8_t *p = src;
    if (codec == FF_CODEC_RAW) return sink_put(sink, src, raw_bytes, err);
    if (codec == FF_CODEC_ZSTD_SHUFFLE && raw_bytes % 4 != 0)
        return ff_error_set(err, "zstd-shuffle: %zu bytes is not a whole number of floats",
                            raw_bytes);
    if (codec != FF_CODEC_ZSTD && codec != FF_CODEC_ZSTD_SHUFFLE)
        return ff_error_set(err, "unknown codec %d", (int)codec);
    size_t r = ZSTD_CCtx_reset(e->cctx, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(e->cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setPledgedSrcSize(e->cctx, raw_bytes);
    if (ZSTD_isError(r))
        return ff_error_set(err, "zstd at level %d: %s", level, ZSTD_getErrorName(r));
    for (size_t done = 0;;) {
        size_t step = raw_bytes - done < BLOCK_BYTES ? raw_bytes - done : BLOCK_BYTES;
        const uint8_t *block = p + done;
        if (codec == FF_CODEC_ZSTD_SHUFFLE) {
            shuffle4(e->planes, block, step / 4);
            block = e->planes;
        }
        done += step;
        ZSTD_inBuffer in = {block, step, 0};
        ZSTD_EndDirective mode = done == raw_bytes ? ZSTD_e_end : ZSTD_e_continue;
        for (;;) {
            ZSTD_outBuffer out = {e->out, ZSTD_CStreamOutSize(), 0};
            size_t left = ZSTD_compressStream2(e->cctx, &out, &in, mode);
            if (ZSTD_isError(left))
                return ff_error_set(err, "zstd compression failed: %s", ZSTD_getErrorName(left));
            if (sink_put(sink, e->out, out.pos, err) != 0) return -1;
            if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) break;
        }
        if (done == raw_bytes) return 0;
    }
}

/* What decoded values go to. */
typedef int (*values_fn)(void *ctx, const float *values, size_t count, ff_error_t *err);

/* Where stored bytes come from: a file at an offset, or a buffer. */
typedef struct {
    int fd;
    uint64_t offset;
    const uint8_t *buffer;
    uint64_t left;
    uint32_t crc;
} source_t;

/* The decoder's scratch: stored bytes read, a block of planes, the
 * unshuffled block, zstd's context. */
typedef struct {
    uint8_t *in;     /* [ZSTD_DStreamInSize()] */
    uint8_t *planes; /* [BLOCK_BYTES] */
    float *values;   /* [BLOCK_FLOATS] */
    ZSTD_DCtx *dctx;
} decoder_t;

static void decoder_free(decoder_t *d) {
    ZSTD_freeDCtx(d->dctx);
    ff_mem_free(d->values);
    ff_mem_free(d->planes);
    ff_mem_free(d->in);
    memset(d, 0, sizeof *d);
}

static int decoder_init(decoder_t *d, ff_error_t *err) {
    memset(d, 0, sizeof *d);
    d->in = ff_mem_alloc(FF_MEM_IO, ZSTD_DStreamInSize());
    d->planes = ff_mem_alloc(FF_MEM_IO, BLOCK_BYTES);
    d->values = ff_mem_alloc(FF_MEM_IO, BLOCK_BYTES);
    d->dctx = ZSTD_createDCtx_advanced(zstd_memory);
    if (d->in == NULL || d->planes == NULL || d->values == NULL || d->dctx == NULL) {
        decoder_free(d);
        return ff_error_set(err, "out of memory for the checkpoint decoder");
    }
    return 0;
}

/* Up to `want` stored bytes from the source into buf; *got how many. */
static int source_get(source_t *s, uint8_t *buf, size_t want, size_t *got, ff_error_t *err) {
    *got = want < s->left ? want : (size_t)s->left;
    if (*got == 0) return 0;
    if (s->buffer != NULL) {
        memcpy(buf, s->buffer, *got);
        s->buffer += *got;
    } else if (ff_fileio_read_exact(s->fd, buf, *got, s->offset) != 0) {
        if (errno == 0) return ff_error_set(err, "the file ended early (it shrank while read?)");
        return ff_error_set(err, "cannot read: %s", strerror(errno));
    }
    s->offset += *got;
    s->left -= *got;
    s->crc = (uint32_t)crc32(s->crc, buf, (uInt)*got);
    return 0;
}

/* Hands one decoded block to fn (unshuffled first for zstd-shuffle). */
static int emit(decoder_t *d, ff_codec_t codec, const uint8_t *bytes, size_t size, values_fn fn,
                void *ctx, ff_error_t *err) {
    const float *values = (const float *)(const void *)bytes;
    if (codec == FF_CODEC_ZSTD_SHUFFLE) {
        unshuffle4((uint8_t *)d->values, bytes, size / 4);
        values = d->values;
    } else if (((uintptr_t)bytes % sizeof(float)) != 0) {
        memcpy(d->values, bytes, size);
        values = d->values;
    }
    return fn(ctx, values, size / 4, err);
}

/* Decodes stored_bytes from src into raw_bytes of values handed to fn a
 * block at a time. Refuses: a frame that declares another size or none, a
 * window larger than 2^WINDOW_LOG_MAX, data after the frame, a frame that
 * ends early, a failed zstd checksum. src->crc is the stored bytes' crc32 at
 * the end. */
static int decode(decoder_t *d, ff_codec_t codec, source_t *src, uint64_t raw_bytes, values_fn fn,
                  void *ctx, ff_error_t *err) {
    if (codec != FF_CODEC_RAW && codec != FF_CODEC_ZSTD && codec != FF_CODEC_ZSTD_SHUFFLE)
        return ff_error_set(err, "unknown codec %d", (int)codec);
    if (raw_bytes % 4 != 0)
        return ff_error_set(err, "%" PRIu64 " bytes is not a whole number of floats", raw_bytes);
    size_t got;
    if (codec == FF_CODEC_RAW) {
        if (src->left != raw_bytes)
            return ff_error_set(err, "raw: %" PRIu64 " stored bytes, expected %" PRIu64,
                                src->left, raw_bytes);
        while (src->left > 0) {
            if (source_get(src, d->planes, BLOCK_BYTES, &got, err) != 0 ||
                emit(d, codec, d->planes, got, fn, ctx, err) != 0)
                return -1;
        }
        return 0;
    }
    size_t r = ZSTD_DCtx_reset(d->dctx, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r)) r = ZSTD_DCtx_setParameter(d->dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
    if (ZSTD_isError(r)) return ff_error_set(err, "zstd: %s", ZSTD_getErrorName(r));
    /* The frame header first: its declared size must be the expected one. */
    size_t first = ZSTD_DStreamInSize();
    if (source_get(src, d->in, first, &got, err) != 0) return -1;
    unsigned long long content = ZSTD_getFrameContentSize(d->in, got);
    if (content == ZSTD_CONTENTSIZE_ERROR)
        return ff_error_set(err, "stored bytes are not a zstd frame");
    if (content == ZSTD_CONTENTSIZE_UNKNOWN)
        return ff_error_set(err, "zstd frame does not declare its content size");
    if (content != raw_bytes)
        return ff_error_set(err, "zstd frame declares %llu bytes, expected %" PRIu64, content,
                            raw_bytes);
    ZSTD_inBuffer in = {d->in, got, 0};
    uint64_t produced = 0;
    size_t filled = 0, hint = 1;
    while (hint != 0) {
        if (in.pos == in.size) {
            if (source_get(src, d->in, ZSTD_DStreamInSize(), &got, err) != 0) return -1;
            if (got == 0)
                return ff_error_set(err, "zstd frame is truncated (%" PRIu64 " of %" PRIu64
                                    " bytes decoded)", produced + filled, raw_bytes);
            in = (ZSTD_inBuffer){d->in, got, 0};
        }
        ZSTD_outBuffer out = {d->planes + filled, BLOCK_BYTES - filled, 0};
        hint = ZSTD_decompressStream(d->dctx, &out, &in);
        if (ZSTD_isError(hint))
            return ff_error_set(err, "zstd decompression failed: %s", ZSTD_getErrorName(hint));
        filled += out.pos;
        if (produced + filled > raw_bytes)
            return ff_error_set(err, "zstd frame decodes to more than %" PRIu64 " bytes",
                                raw_bytes);
        if (filled == BLOCK_BYTES || (hint == 0 && filled > 0)) {
            if (emit(d, codec, d->planes, filled, fn, ctx, err) != 0) return -1;
            produced += filled;
            filled = 0;
        }
    }
    if (in.pos != in.size || src->left != 0)
        return ff_error_set(err, "%" PRIu64 " stray bytes after the zstd frame",
                            (uint64_t)(in.size - in.pos) + src->left);
    if (produced != raw_bytes)
        return ff_error_set(err, "zstd frame decoded to %" PRIu64 " bytes, expected %" PRIu64,
                            produced, raw_bytes);
    return 0;
}

int ff_codec_compress(ff_codec_t codec, int level, void *dst, size_t dst_capacity, const void *src,
                      size_t raw_bytes, size_t *stored_bytes, ff_error_t *err) {
    encoder_t e;
    if (encoder_init(&e, err) != 0) return -1;
    sink_t sink = {.buffer = dst, .capacity = dst_capacity};
    int rc = encode(&e, codec, level, src, raw_bytes, &sink, err);
    encoder_free(&e);
    if (rc == 0) *stored_bytes = sink.used;
    return rc;
}

typedef struct {
    float *dst;
    size_t count;
    size_t capacity; /* floats dst holds; 0: as many as the caller checked */
} copy_ctx_t;

static int copy_values(void *ctx, const float *values, size_t count, ff_error_t *err) {
    copy_ctx_t *c = ctx;
    /* A file that changed under the reader may give more than it said. */
    if (c->capacity != 0 && count > c->capacity - c->count)
        return ff_error_set(err, "more values than the tensor holds (%zu)", c->capacity);
    memcpy(c->dst + c->count, values, count * sizeof(float));
    c->count += count;
    return 0;
}

int ff_codec_decompress(ff_codec_t codec, void *dst, size_t raw_bytes, const void *src,
                        size_t stored_bytes, ff_error_t *err) {
    decoder_t d;
    if (decoder_init(&d, err) != 0) return -1;
    source_t s = {.fd = -1, .buffer = src, .left = stored_bytes};
    copy_ctx_t c = {dst, 0, raw_bytes / sizeof(float)};
    int rc = decode(&d, codec, &s, raw_bytes, copy_values, &c, err);
    decoder_free(&d);
    return rc;
}

ff_layerfile_options_t ff_layerfile_default_options(void) {
    /* Measured on trained layers (README, "Checkpoint codec"): byte shuffle +
     * zstd level 1 stores weights at 1.25x and Adam moments at 1.75x, at
     * ~780 MB/s; level 3 gains under 2% for a slower compressor. */
    ff_layerfile_options_t opt = {.codec = FF_CODEC_ZSTD_SHUFFLE, .level = 1};
    return opt;
}


/* The float block tensor i lives in: weight or bias of params, adam_m or
 * adam_v, each block laid out weight then bias. */
static float *tensor_data(const ff_layer_t *layer, uint32_t i) {
    float *blocks[3] = {layer->params, layer->adam_m, layer->adam_v};
    float *block = blocks[i / 2];
    return i % 2 == 0 ? block : block + (size_t)layer->in * layer->out;
}

/* ---- writer ---- */

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
    bad |= ff_lf_add_uint(o, "raw_bytes", t->raw_bytes);
    bad |= ff_lf_add_uint(o, "stored_bytes", t->stored_bytes);
    bad |= ff_lf_add_uint(o, "offset", t->offset);
    bad |= ff_lf_add_hex(o, "crc32", t->crc32, 8);
    return bad ? -1 : 0;
}

/* The header text (cJSON_free it), or NULL when out of memory. Nothing in it
 * depends on the time or the machine, so equal inputs give equal bytes. */
static char *build_header(const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                          const ff_layerfile_tensor_t *tensors, uint32_t count) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    int bad = cJSON_AddStringToObject(root, "format", FORMAT_NAME) == NULL;
    bad |= ff_lf_add_uint(root, "version", FF_LAYERFILE_VERSION);
    bad |= cJSON_AddStringToObject(root, "writer", "ffstream " FF_VERSION) == NULL;
    bad |= ff_lf_add_uint(root, "layer_index", meta->layer_index);
    bad |= ff_lf_add_uint(root, "in", layer->in);
    bad |= ff_lf_add_uint(root, "out", layer->out);
    bad |= cJSON_AddStringToObject(root, "dtype", "float32") == NULL;
    bad |= cJSON_AddStringToObject(root, "activation", "relu") == NULL;
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    bad |= list == NULL;
    for (uint32_t i = 0; list != NULL && i < count; i++) bad |= add_tensor(list, &tensors[i]);
    bad |= ff_lf_add_state(root, meta, layer->adam_step);
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
    if (layer->adam_step < 0 || (uint64_t)layer->adam_step > FF_LAYERFILE_MAX_STEP)
        return ff_error_set(err, "%s: cannot save: Adam step %" PRId64 ", expected 0..2^52", path,
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

/* Header bytes reserved in front of the payload: the header is written
 * last (it records the stored sizes) and padded with spaces to this size,
 * which depends only on the tensor count. */
static size_t header_reserve(uint32_t tensors) { return 1024 + 320 * (size_t)tensors; }

/* The header text padded with spaces to `reserve` bytes, or NULL when it
 * does not fit or memory is short (free()). */
static char *padded_header(const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                           const ff_layerfile_tensor_t *tensors, uint32_t count, size_t reserve) {
    char *json = build_header(layer, meta, tensors, count);
    if (json == NULL) return NULL;
    size_t n = strlen(json);
    char *text = n <= reserve ? malloc(reserve) : NULL;
    if (text != NULL) {
        memcpy(text, json, n);
        memset(text + n, ' ', reserve - n);
    }
    cJSON_free(json);
    return text;
}

int ff_layerfile_save(const char *path, const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                      const ff_layerfile_options_t *opt, ff_error_t *err) {
    assert(path != NULL && layer != NULL && meta != NULL);
    ff_layerfile_options_t o = opt != NULL ? *opt : ff_layerfile_default_options();
    if (check_save_args(path, layer, meta, &o, err) != 0) return -1;
    ff_layerfile_tensor_t tensors[FF_LAYERFILE_MAX_TENSORS];
    memset(tensors, 0, sizeof tensors);
    uint32_t count = layer->adam_m != NULL ? 6 : 2;
    const size_t reserve = header_reserve(count);
    const uint64_t payload_start = FF_LAYERFILE_PREAMBLE + reserve;
    encoder_t e;
    ff_atomic_t file;
    char *header = NULL;
    int rc = -1, open = 0;
    if (encoder_init(&e, err) != 0) return -1;
    if (ff_atomic_begin(&file, path, err) != 0) goto cleanup;
    open = 1;
    /* The preamble and header are written last, over this placeholder. */
    static const char zeros[4096];
    for (size_t left = FF_LAYERFILE_PREAMBLE + reserve; left > 0;) {
        size_t n = left < sizeof zeros ? left : sizeof zeros;
        if (ff_atomic_write(&file, zeros, n, err) != 0) {
            open = 0;
            goto cleanup;
        }
        left -= n;
    }
    uint64_t offset = payload_start;
    for (uint32_t i = 0; i < count; i++) {
        ff_layerfile_tensor_t *t = &tensors[i];
        snprintf(t->name, sizeof t->name, "%s", ff_layerfile_tensor_name(i));
        t->ndim = i % 2 == 0 ? 2 : 1;
        t->shape[0] = layer->out;
        t->shape[1] = i % 2 == 0 ? layer->in : 0;
        t->codec = o.codec;
        t->raw_bytes = (uint64_t)layer->out * (i % 2 == 0 ? layer->in : 1) * sizeof(float);
        t->offset = offset;
        sink_t sink = {.file = &file, .crc = (uint32_t)crc32(0L, Z_NULL, 0)};
        if (encode(&e, o.codec, o.level, tensor_data(layer, i), (size_t)t->raw_bytes, &sink,
                   err) != 0) {
            ff_error_wrap(err, "%s: cannot save tensor %s", path, t->name);
            open = sink.file->fd >= 0;
            goto cleanup;
        }
        t->stored_bytes = sink.bytes;
        t->crc32 = sink.crc;
        offset += sink.bytes;
    }
    header = padded_header(layer, meta, tensors, count, reserve);
    if (header == NULL) {
        ff_error_set(err, "%s: cannot save: the header does not fit in %zu bytes or memory is "
                     "short", path, reserve);
        goto cleanup;
    }
    uint8_t pre[FF_LAYERFILE_PREAMBLE];
    memcpy(pre, FF_LAYERFILE_MAGIC, 8); /* the 7 letters and their NUL */
    ff_put_le(pre + 8, FF_LAYERFILE_VERSION, 4);
    ff_put_le(pre + 12, reserve, 4);
    ff_put_le(pre + 16, ff_lf_header_checksum(pre, header, reserve), 8);
    if (ff_fileio_pwrite(file.fd, pre, sizeof pre, 0) != 0 ||
        ff_fileio_pwrite(file.fd, header, reserve, FF_LAYERFILE_PREAMBLE) != 0) {
        ff_error_set(err, "%s: write failed: %s", file.tmp, strerror(errno));
        goto cleanup;
    }
    open = 0;
    rc = ff_atomic_commit(&file, err);
cleanup:
    if (open) ff_atomic_abort(&file);
    free(header);
    encoder_free(&e);
    return rc;
}

size_t ff_layerfile_save_bytes(const ff_layerfile_options_t *opt) {
    /* Streamed: one block of planes, zstd's output buffer and, when it
     * compresses, its context, whatever the layer's size. */
    ff_layerfile_options_t o = opt != NULL ? *opt : ff_layerfile_default_options();
    return BLOCK_BYTES + ZSTD_CStreamOutSize() +
           (o.codec == FF_CODEC_RAW ? 0 : ZSTD_estimateCStreamSize(o.level));
}

size_t ff_layerfile_load_bytes(void) {
    return ZSTD_DStreamInSize() + 2 * BLOCK_BYTES + ZSTD_estimateDStreamSize(1u << WINDOW_LOG_MAX);
}

/* ---- reader ---- */

/* The header's fields, strictly: what ff_json's getters check, plus the
 * ranges and relations below. */
static const char *const header_keys[] = {
    "format", "version", "writer", "layer_index", "in", "out", "dtype", "activation", "tensors",
    "adam", "training", "data_fingerprint", "config_fingerprint", NULL};
static const char *const tensor_keys[] = {"name", "shape", "codec", "raw_bytes", "stored_bytes",
                                          "offset", "crc32", NULL};

/* Reads and checks tensors[i] into info: the name expected at that place,
 * the shape [out, in] or [out], the size agreeing with it, a known codec
 * that can produce the stored size, and bytes right after the previous
 * tensor's (no gaps, no overlaps), inside the file. */
static int parse_tensor(const char *path, const cJSON *list, uint32_t i, uint64_t start,
                        ff_layerfile_info_t *info, ff_error_t *err) {
    ff_layerfile_tensor_t *out = &info->tensors[i];
    char section[32];
    snprintf(section, sizeof section, "tensors[%u]", i);
    ff_json_ctx_t c = {path, section};
    const cJSON *t = cJSON_GetArrayItem(list, (int)i);
    if (!cJSON_IsObject(t))
        return ff_error_set(err, "%s: header field \"tensors[%u]\" is not an object", path, i);
    if (ff_json_check_keys(&c, t, tensor_keys, err) != 0) return -1;
    const char *name = NULL;
    if (ff_json_get_string(&c, t, "name", &name, err) != 0) return -1;
    if (strcmp(name, ff_layerfile_tensor_name(i)) != 0)
        return ff_error_set(err,
                            "%s: header field \"tensors[%u].name\" is \"%.40s\", expected "
                            "\"%s\" (the order is weight, bias, adam_m.weight, adam_m.bias, "
                            "adam_v.weight, adam_v.bias)",
                            path, i, name, ff_layerfile_tensor_name(i));
    snprintf(out->name, sizeof out->name, "%s", ff_layerfile_tensor_name(i));
    const uint32_t ndim = i % 2 == 0 ? 2 : 1;
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != (int)ndim)
        return ff_error_set(err, "%s: tensor %s: field \"shape\" is not an array of %u sizes",
                            path, out->name, ndim);
    const uint64_t expect[2] = {info->out, info->in};
    for (uint32_t d = 0; d < ndim; d++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, (int)d);
        double v = cJSON_IsNumber(dim) ? dim->valuedouble : -1;
        if (v != (double)expect[d])
            return ff_error_set(err, "%s: tensor %s: shape[%u] is %.17g, expected %" PRIu64
                                " (the header's %s)", path, out->name, d, v, expect[d],
                                d == 0 ? "out" : "in");
        out->shape[d] = expect[d];
    }
    out->ndim = ndim;
    const uint64_t expect_raw = info->out * (ndim == 2 ? (uint64_t)info->in : 1) * sizeof(float);
    if (ff_json_get_uint(&c, t, "raw_bytes", expect_raw, expect_raw, &out->raw_bytes, err) != 0)
        return -1;
    const char *codec = NULL;
    if (ff_json_get_string(&c, t, "codec", &codec, err) != 0) return -1;
    if (ff_codec_parse(codec, &out->codec) != 0)
        return ff_error_set(err, "%s: tensor %s: unknown codec \"%.40s\", expected raw, zstd or "
                            "zstd-shuffle", path, out->name, codec);
    uint64_t bound = ff_codec_bound(out->codec, (size_t)out->raw_bytes);
    uint64_t least = out->codec == FF_CODEC_RAW ? out->raw_bytes : 1;
    if (ff_json_get_uint(&c, t, "stored_bytes", least, bound, &out->stored_bytes, err) != 0)
        return ff_error_wrap(err, "tensor %s (codec %s)", out->name, codec);
    if (ff_json_get_uint(&c, t, "offset", 0, JSON_MAX_INT, &out->offset, err) != 0) return -1;
    if (out->offset != start)
        return ff_error_set(err, "%s: tensor %s: offset %" PRIu64 ", expected %" PRIu64
                            " (right after %s)", path, out->name, out->offset, start,
                            i == 0 ? "the header" : "the previous tensor");
    if (out->stored_bytes > info->file_bytes - out->offset)
        return ff_error_set(err, "%s: tensor %s: offset %" PRIu64 " + %" PRIu64
                            " bytes runs past the end of the %" PRIu64 "-byte file (truncated?)",
                            path, out->name, out->offset, out->stored_bytes, info->file_bytes);
    uint64_t crc;
    const char *hex;
    if (ff_json_get_string(&c, t, "crc32", &hex, err) != 0) return -1;
    if (strlen(hex) != 8 || strspn(hex, "0123456789abcdef") != 8)
        return ff_error_set(err, "%s: tensor %s: field \"crc32\" is \"%.40s\", expected 8 "
                            "lowercase hex digits", path, out->name, hex);
    crc = strtoull(hex, NULL, 16);
    out->crc32 = (uint32_t)crc;
    return 0;
}

static int parse_header(const char *path, const char *text, size_t header_bytes,
                        ff_layerfile_info_t *info, ff_error_t *err) {
    cJSON *root = NULL;
    int rc = -1;
    ff_json_ctx_t c = {path, NULL};
    ff_lf_common_t common;
    if (ff_lf_parse_common(path, text, header_bytes, header_keys, info->version, &root, &common,
                           err) != 0)
        return -1;
    snprintf(info->writer, sizeof info->writer, "%s", common.writer);
    info->meta.layer_index = common.layer_index;
    info->in = common.in;
    info->out = common.out;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : -1;
    if (n != 2 && n != 6) {
        ff_error_set(err, "%s: header field \"tensors\" is not an array of 2 tensors (weight, "
                     "bias) or 6 (with the Adam moments)", path);
        goto cleanup;
    }
    info->tensor_count = (uint32_t)n;
    info->has_optimizer = n == 6;
    uint64_t next = FF_LAYERFILE_PREAMBLE + (uint64_t)header_bytes;
    for (uint32_t i = 0; i < info->tensor_count; i++) {
        if (parse_tensor(path, list, i, next, info, err) != 0) goto cleanup;
        next = info->tensors[i].offset + info->tensors[i].stored_bytes;
    }
    /* The writer ends the file with the last tensor: more bytes mean two
     * files run together or an append that does not belong. */
    if (next != info->file_bytes) {
        ff_error_set(err, "%s: %" PRIu64 " trailing bytes after the last tensor (the tensors end "
                     "at byte %" PRIu64 " of %" PRIu64 ")", path, info->file_bytes - next, next,
                     info->file_bytes);
        goto cleanup;
    }
    if (ff_lf_parse_adam(path, root, info, err) != 0 ||
        ff_lf_parse_training(path, root, &info->meta, err) != 0)
        goto cleanup;
    if (ff_json_get_hex64(&c, root, "data_fingerprint", &info->meta.data_fingerprint, err) != 0 ||
        ff_json_get_hex64(&c, root, "config_fingerprint", &info->meta.config_fingerprint, err) !=
            0)
        goto cleanup;
    rc = 0;
cleanup:
    cJSON_Delete(root);
    return rc;
}

/* Opens path, reads and checks the preamble, the header's checksum and the
 * header into info, and leaves *fd_out open for the payload. */
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
        ff_lf_read_error(path, "the preamble", err);
        goto cleanup;
    }
    /* A foreign file gets named as such even when it is short. */
    if (have >= 8 && memcmp(pre, FF_LAYERFILE_MAGIC, 8) != 0) {
        ff_error_set(err, "%s: not an ffstream layer file (magic %02x %02x %02x %02x %02x %02x "
                     "%02x %02x, expected \"FFLAYER\\0\")", path, pre[0], pre[1], pre[2], pre[3],
                     pre[4], pre[5], pre[6], pre[7]);
        goto cleanup;
    }
    if (have < sizeof pre) {
        ff_error_set(err, "%s: file is %zu bytes, shorter than the %u-byte preamble of a layer "
                     "file (empty or truncated?)", path, have, FF_LAYERFILE_PREAMBLE);
        goto cleanup;
    }
    info->version = (uint32_t)ff_get_le(pre + 8, 4);
    if (info->version != FF_LAYERFILE_VERSION) {
        ff_error_set(err, "%s: layer file format version %u, this build (ffstream " FF_VERSION
                     ") reads version %u", path, info->version, FF_LAYERFILE_VERSION);
        goto cleanup;
    }
    uint32_t header_bytes = (uint32_t)ff_get_le(pre + 12, 4);
    if (header_bytes < 2 || header_bytes > FF_LAYERFILE_MAX_HEADER) {
        ff_error_set(err, "%s: header length %u bytes, expected 2..%u", path, header_bytes,
                     FF_LAYERFILE_MAX_HEADER);
        goto cleanup;
    }
    if (header_bytes > info->file_bytes - FF_LAYERFILE_PREAMBLE) {
        ff_error_set(err, "%s: header length %u runs past the end of the %" PRIu64 "-byte file "
                     "(truncated?)", path, header_bytes, info->file_bytes);
        goto cleanup;
    }
    text = ff_lf_read_header(fd, path, pre, header_bytes, err);
    if (text == NULL) goto cleanup;
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

/* Decodes tensor t of the open file fd, values to fn; the crc32 of the
 * stored bytes must match the header's. */
static int stream_tensor(decoder_t *d, int fd, const char *path, const ff_layerfile_tensor_t *t,
                         values_fn fn, void *ctx, ff_error_t *err) {
    source_t src = {.fd = fd, .offset = t->offset, .left = t->stored_bytes,
                    .crc = (uint32_t)crc32(0L, Z_NULL, 0)};
    if (decode(d, t->codec, &src, t->raw_bytes, fn, ctx, err) != 0) {
        /* A damaged payload is named by its checksum when the bytes allow. */
        if (src.left == 0 && src.crc != t->crc32)
            return ff_error_set(err, "%s: tensor %s: crc32 mismatch (stored %08x, computed "
                                "%08x)", path, t->name, t->crc32, src.crc);
        return ff_error_wrap(err, "%s: tensor %s", path, t->name);
    }
    if (src.crc != t->crc32)
        return ff_error_set(err, "%s: tensor %s: crc32 mismatch (stored %08x, computed %08x)",
                            path, t->name, t->crc32, src.crc);
    return 0;
}

/* The format version of path when it starts like a layer file; 0 when it
 * does not (the version 2 reader then says what is wrong). */
static uint32_t peek_version(const char *path) {
    ff_error_t ignored;
    uint64_t bytes;
    uint8_t pre[12];
    int fd = ff_fileio_open_regular(path, 0, &bytes, &ignored);
    if (fd < 0) return 0;
    uint32_t v = 0;
    if (bytes >= sizeof pre && ff_fileio_read_exact(fd, pre, sizeof pre, 0) == 0 &&
        memcmp(pre, FF_LAYERFILE_MAGIC, 8) == 0)
        v = (uint32_t)ff_get_le(pre + 8, 4);
    close(fd);
    return v;
}

int ff_layerfile_read_info(const char *path, ff_layerfile_info_t *info, ff_error_t *err) {
    if (peek_version(path) == FF_TILEFILE_VERSION) return ff_tilefile_read_info(path, info, err);
    int fd;
    if (open_layerfile(path, &fd, info, err) != 0) return -1;
    ff_lf_close_dropping_cache(fd);
    return 0;
}

int ff_layerfile_stream_tensor(const char *path, const ff_layerfile_tensor_t *t,
                               ff_layerfile_values_fn fn, void *ctx, ff_error_t *err) {
    ff_layerfile_info_t info;
    int fd;
    if (peek_version(path) == FF_TILEFILE_VERSION) {
        /* The tensor must be one of the file's own, as its header says now. */
        if (ff_tilefile_read_info(path, &info, err) != 0) return -1;
        for (uint32_t i = 0; i < info.tensor_count; i++)
            if (strcmp(t->name, info.tensors[i].name) == 0 &&
                t->raw_bytes == info.tensors[i].raw_bytes)
                return ff_tilefile_stream_tensor(path, i, fn, ctx, err);
        return ff_error_set(err, "%s: tensor %.32s is not the file's (it changed since it was "
                            "read)", path, t->name);
    }
    if (open_layerfile(path, &fd, &info, err) != 0) return -1;
    /* The tensor must be one of the file's own, as its header says now. */
    int known = 0;
    for (uint32_t i = 0; i < info.tensor_count; i++)
        known |= strcmp(info.tensors[i].name, t->name) == 0 &&
                 info.tensors[i].offset == t->offset &&
                 info.tensors[i].stored_bytes == t->stored_bytes &&
                 info.tensors[i].raw_bytes == t->raw_bytes;
    decoder_t d;
    int rc = -1;
    if (!known)
        ff_error_set(err, "%s: tensor %s is not the file's (it changed since it was read)", path,
                     t->name);
    else if (decoder_init(&d, err) == 0) {
        rc = stream_tensor(&d, fd, path, t, fn, ctx, err);
        decoder_free(&d);
    }
    ff_lf_close_dropping_cache(fd);
    return rc;
}

int ff_layerfile_read_tensor(const char *path, const ff_layerfile_tensor_t *t, float *dst,
                             ff_error_t *err) {
    copy_ctx_t c = {dst, 0, (size_t)(t->raw_bytes / sizeof(float))};
    return ff_layerfile_stream_tensor(path, t, copy_values, &c, err);
}

/* ff_layerfile_load of a tiled file: its tensors streamed tile by tile. */
static int load_tiled(const char *path, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                      int with_training, uint32_t expect_in, uint32_t expect_out,
                      ff_error_t *err) {
    ff_layerfile_info_t info;
    if (ff_tilefile_read_info(path, &info, err) != 0) return -1;
    if ((expect_in != 0 && info.in != expect_in) || (expect_out != 0 && info.out != expect_out))
        return ff_error_set(err, "%s: layer %u -> %u, expected %u -> %u", path, info.in, info.out,
                            expect_in != 0 ? expect_in : info.in,
                            expect_out != 0 ? expect_out : info.out);
    if (ff_layer_alloc(layer, info.in, info.out, with_training, err) != 0)
        return ff_error_wrap(err, "%s", path);
    for (uint32_t i = 0; i < (with_training ? 6u : 2u); i++) {
        copy_ctx_t c = {tensor_data(layer, i), 0,
                        (size_t)(info.tensors[i].raw_bytes / sizeof(float))};
        if (ff_tilefile_stream_tensor(path, i, copy_values, &c, err) != 0 ||
            (c.count != c.capacity &&
             ff_error_set(err, "%s: tensor %s: %zu values, expected %zu (the file changed "
                          "while being read?)", path, ff_layerfile_tensor_name(i), c.count, c.capacity))) {
            ff_layer_free(layer);
            return -1;
        }
    }
    layer->adam_step = info.adam_step;
    if (meta != NULL) *meta = info.meta;
    return 0;
}

int ff_layerfile_load(const char *path, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                      int with_training, uint32_t expect_in, uint32_t expect_out,
                      ff_error_t *err) {
    memset(layer, 0, sizeof *layer);
    ff_layerfile_info_t info;
    int fd;
    if (peek_version(path) == FF_TILEFILE_VERSION)
        return load_tiled(path, layer, meta, with_training, expect_in, expect_out, err);
    if (open_layerfile(path, &fd, &info, err) != 0) return -1;
    int rc = -1;
    decoder_t d = {0};
    /* The caller's shape before the allocation: a header cannot make the
     * trainer allocate a layer it did not ask for. */
    if ((expect_in != 0 && info.in != expect_in) || (expect_out != 0 && info.out != expect_out)) {
        ff_error_set(err, "%s: layer %u -> %u, expected %u -> %u", path, info.in, info.out,
                     expect_in != 0 ? expect_in : info.in, expect_out != 0 ? expect_out : info.out);
        goto cleanup;
    }
    if (with_training && !info.has_optimizer) {
        ff_error_set(err, "%s: the file has no Adam state (it was saved without training state), "
                     "so training cannot resume from it", path);
        goto cleanup;
    }
    if (ff_layer_alloc(layer, info.in, info.out, with_training, err) != 0) {
        ff_error_wrap(err, "%s", path);
        goto cleanup;
    }
    if (decoder_init(&d, err) != 0) goto cleanup;
    uint32_t count = with_training ? 6 : 2;
    for (uint32_t i = 0; i < count; i++) {
        copy_ctx_t c = {tensor_data(layer, i), 0,
                        (size_t)(info.tensors[i].raw_bytes / sizeof(float))};
        if (stream_tensor(&d, fd, path, &info.tensors[i], copy_values, &c, err) != 0)
            goto cleanup;
    }
    layer->adam_step = info.adam_step;
    if (meta != NULL) *meta = info.meta;
    rc = 0;
cleanup:
    decoder_free(&d);
    ff_lf_close_dropping_cache(fd);
    if (rc != 0) ff_layer_free(layer);
    return rc;
}

/* Counts the values of a tensor that are not finite, for verify. */
typedef struct {
    uint64_t finite, count;
} finite_ctx_t;

static int count_finite(void *ctx, const float *values, size_t count, ff_error_t *err) {
    (void)err;
    finite_ctx_t *c = ctx;
    for (size_t i = 0; i < count; i++) c->finite += isfinite(values[i]) != 0;
    c->count += count;
    return 0;
}

int ff_layerfile_verify(const char *path, ff_error_t *err) {
    ff_layerfile_info_t info;
    int fd;
    if (peek_version(path) == FF_TILEFILE_VERSION) {
        for (uint32_t i = 0; i < 6; i++) {
            finite_ctx_t c = {0, 0};
            if (ff_tilefile_stream_tensor(path, i, count_finite, &c, err) != 0) return -1;
            if (c.finite != c.count)
                return ff_error_set(err, "%s: tensor %s: %" PRIu64 " of %" PRIu64 " values are "
                                    "NaN or infinite", path, ff_layerfile_tensor_name(i), c.count - c.finite,
                                    c.count);
        }
        return 0;
    }
    if (open_layerfile(path, &fd, &info, err) != 0) return -1;
    decoder_t d;
    int rc = -1;
    if (decoder_init(&d, err) != 0) goto cleanup;
    for (uint32_t i = 0; i < info.tensor_count; i++) {
        finite_ctx_t c = {0, 0};
        if (stream_tensor(&d, fd, path, &info.tensors[i], count_finite, &c, err) != 0) goto done;
        /* Sound bytes can still hold a diverged layer: no weight may be NaN
         * or infinite (a layer that training blew up is not a checkpoint to
         * resume from). */
        if (c.finite != c.count) {
            ff_error_set(err, "%s: tensor %s: %" PRIu64 " of %" PRIu64 " values are NaN or "
                         "infinite", path, info.tensors[i].name, c.count - c.finite, c.count);
            goto done;
        }
    }
    rc = 0;
done:
    decoder_free(&d);
cleanup:
    ff_lf_close_dropping_cache(fd);
    return rc;
}
