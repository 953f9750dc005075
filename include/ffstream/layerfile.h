/* layerfile.h: the per-layer checkpoint file (.ffl): one layer's weights,
 * bias and Adam state, compressed, self-describing and safe to read from an
 * untrusted disk.
 *
 * Byte layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       8     magic "FFLAYER\0"
 *   8       4     format version (FF_LAYERFILE_VERSION)
 *   12      4     header length H in bytes (2 .. FF_LAYERFILE_MAX_HEADER)
 *   16      8     XXH3-64 of bytes 0..15 and of the H header bytes: every
 *                 field of the header (training state, tensor checksums)
 *                 is covered
 *   24      H     JSON header (UTF-8, no NUL), padded with spaces to H
 *   24+H    ...   payload: the tensors' stored bytes, back to back with no
 *                 gap, in the order of the header's "tensors" array, and
 *                 nothing after the last; offsets in the header are
 *                 absolute file offsets
 *
 * The JSON header (written and read with cJSON) holds:
 *   "format": "ffstream-layer", "version": 1, "writer": "ffstream X.Y.Z",
 *   "layer_index", "in", "out", "dtype": "float32", "activation": "relu",
 *   "tensors": [{"name", "shape": [..], "codec", "raw_bytes", "stored_bytes",
 *                "offset", "crc32"}...]  in the order weight [out, in],
 *               bias [out], adam_m.weight, adam_m.bias, adam_v.weight,
 *               adam_v.bias (the Adam tensors only when the file has them),
 *   "adam": {"step", "lr", "beta1", "beta2", "eps", "weight_decay"},
 *   "training": {"epochs_done", "epochs_total", "batch_in_epoch",
 *                "complete", "loss", "goodness_pos", "goodness_neg",
 *                "loss_sum", "good_pos_sum", "good_neg_sum", "batches",
 *                "npos", "nneg"},
 *   "data_fingerprint", "config_fingerprint": 16 hex digits.
 *
 * Codecs: "raw" (the float32 little-endian bytes), "zstd" (one zstd frame
 * with its content size and checksum), "zstd-shuffle" (each block of 2^18
 * floats split into 4 byte planes, the blocks making one zstd frame).
 * crc32 (zlib's) covers each tensor's stored bytes.
 *
 * Writes stream block by block (the memory of writing or reading does not
 * grow with the layer) into the atomic writer: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. A reader checks the
 * header's checksum and every field (ranges, no unknown field, offsets
 * inside the file, sizes agreeing with the shapes, the training state
 * consistent with itself) before it allocates, refuses a zstd frame that
 * declares another size or a window above 8 MiB, and verifies every
 * checksum as it decodes. */
#ifndef FFSTREAM_LAYERFILE_H
#define FFSTREAM_LAYERFILE_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/adam.h"
#include "ffstream/error.h"
#include "ffstream/layer.h"

#define FF_LAYERFILE_MAGIC "FFLAYER"
#define FF_LAYERFILE_VERSION 2u
#define FF_LAYERFILE_PREAMBLE 24u
#define FF_LAYERFILE_MAX_HEADER (1u << 20)
#define FF_LAYERFILE_MAX_TENSORS 6
/* The largest Adam step a file holds: far below 2^53, so a resumed layer
 * can take its steps and still be saved exactly. */
#define FF_LAYERFILE_MAX_STEP (UINT64_C(1) << 52)

typedef enum {
    FF_CODEC_RAW = 0,
    FF_CODEC_ZSTD = 1,
    FF_CODEC_ZSTD_SHUFFLE = 2,
} ff_codec_t;

/* Training state stored with a layer: enough to resume mid-layer and to
 * report. */
typedef struct {
    uint32_t layer_index;     /* 0-based */
    uint32_t epochs_done;     /* whole epochs finished */
    uint32_t epochs_total;
    uint32_t batch_in_epoch;  /* batches of epoch epochs_done already trained */
    int complete;             /* every epoch trained */
    double loss, goodness_pos, goodness_neg; /* last finished epoch's means */
    /* Running sums of the epoch in progress (ff_step_stats_t). */
    double loss_sum, good_pos_sum, good_neg_sum;
    uint64_t batches, npos, nneg;
    uint64_t data_fingerprint;
    uint64_t config_fingerprint;
    ff_adam_params_t adam;    /* hyper-parameters; the step is layer->adam_step */
} ff_layerfile_meta_t;

typedef struct {
    char name[32];
    uint32_t ndim;
    uint64_t shape[2];
    ff_codec_t codec;
    uint64_t raw_bytes, stored_bytes, offset;
    uint32_t crc32;
} ff_layerfile_tensor_t;

/* What a file's header says, without reading the payload. */
typedef struct {
    uint32_t version;
    uint32_t in, out;
    int64_t adam_step;
    int has_optimizer;        /* the Adam tensors are present */
    uint32_t tensor_count;
    ff_layerfile_tensor_t tensors[FF_LAYERFILE_MAX_TENSORS];
    uint64_t file_bytes;
    /* A tiled file (version 3, tilefile.h): output units per tile and
     * tiles; 0 for a version 2 file. */
    uint32_t tile_units, tile_count;
    char writer[64];
    ff_layerfile_meta_t meta;
} ff_layerfile_info_t;

typedef struct {
    ff_codec_t codec; /* for every tensor */
    int level;        /* zstd level */
} ff_layerfile_options_t;

/* The codec and level ffstream writes by default (chosen from measurements,
 * see the README). */
ff_layerfile_options_t ff_layerfile_default_options(void);

/* @return "raw", "zstd", "zstd-shuffle", or "unknown". */
const char *ff_codec_name(ff_codec_t codec);

/* Parses a codec name as ff_codec_name spells it. @return 0, or -1 when the
 * name is not a codec. */
int ff_codec_parse(const char *name, ff_codec_t *out);

/* @return the most bytes codec can store for raw_bytes bytes of input (size
 * dst of ff_codec_compress with it), or 0 for an unknown codec or an input
 * too large for zstd. */
size_t ff_codec_bound(ff_codec_t codec, size_t raw_bytes);

/* Encodes raw_bytes bytes of float32 data from src into dst (dst_capacity
 * bytes, ff_codec_bound is always enough) at zstd level `level` (ignored by
 * raw). zstd-shuffle needs raw_bytes to be a multiple of 4. Scratch memory
 * is charged to FF_MEM_IO. The output depends only on the input, codec,
 * level and zstd version, so saved files can be compared byte for byte.
 * @return 0 with *stored_bytes set, or -1 with err saying what
 * failed (the caller adds the file and tensor). */
int ff_codec_compress(ff_codec_t codec, int level, void *dst, size_t dst_capacity, const void *src,
                      size_t raw_bytes, size_t *stored_bytes, ff_error_t *err);

/* Decodes stored_bytes bytes from src into exactly raw_bytes bytes at dst.
 * Rejects a zstd frame that declares or holds another size, has bytes after
 * it, or fails its own checksum. @return 0 or -1 with err. */
int ff_codec_decompress(ff_codec_t codec, void *dst, size_t raw_bytes, const void *src,
                        size_t stored_bytes, ff_error_t *err);

/* Writes layer (weight and bias, plus the Adam moments when layer->adam_m is
 * not NULL) and meta to path atomically. opt may be NULL for the defaults.
 * On failure the previous file at path, if any, is untouched.
 * @return 0 or -1 with err naming the file and the operation. */
int ff_layerfile_save(const char *path, const ff_layer_t *layer, const ff_layerfile_meta_t *meta,
                      const ff_layerfile_options_t *opt, ff_error_t *err);

/* Bytes ff_layerfile_save allocates at its peak with these options (NULL:
 * the defaults), for the memory model: the streaming encoder's block and
 * buffers, whatever the layer's shape. */
size_t ff_layerfile_save_bytes(const ff_layerfile_options_t *opt);

/* Bytes a load or a tensor stream allocates besides the layer itself. */
size_t ff_layerfile_load_bytes(void);

/* Reads and validates the header of path. @return 0 or -1 with err naming
 * the file and the field. */
int ff_layerfile_read_info(const char *path, ff_layerfile_info_t *info, ff_error_t *err);

/* Loads path into layer (allocated here; with_training also allocates
 * gradients and loads the Adam state, which the file must then have).
 * expect_in / expect_out, when not 0, are the shape the caller needs: a
 * file of another shape is refused before anything is allocated. Verifies
 * every checksum. meta may be NULL. @return 0 or -1 with err naming the file
 * and the field or tensor. */
int ff_layerfile_load(const char *path, ff_layer_t *layer, ff_layerfile_meta_t *meta,
                      int with_training, uint32_t expect_in, uint32_t expect_out,
                      ff_error_t *err);

/* What receives a tensor's values as they are decoded, a block at a time.
 * @return 0, or -1 with err to stop. */
typedef int (*ff_layerfile_values_fn)(void *ctx, const float *values, size_t count,
                                      ff_error_t *err);

/* Decodes tensor t of path (from ff_layerfile_read_info) block by block into
 * fn, checking its crc32 and zstd's checksum: memory does not grow with the
 * tensor. @return 0 or -1 with err naming the file and the tensor. */
int ff_layerfile_stream_tensor(const char *path, const ff_layerfile_tensor_t *t,
                               ff_layerfile_values_fn fn, void *ctx, ff_error_t *err);

/* The name of tensor `index` in a file's order: "weight", "bias",
 * "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias". */
const char *ff_layerfile_tensor_name(uint32_t index);

/* Reads tensor t (from ff_layerfile_read_info of path) into dst
 * (t->raw_bytes): its crc32 is checked before anything decodes it.
 * @return 0 or -1 with err naming the file and the tensor. */
int ff_layerfile_read_tensor(const char *path, const ff_layerfile_tensor_t *t, float *dst,
                             ff_error_t *err);

/* Reads every tensor of path and checks its checksum and size, and that
 * every value is finite; does not keep the data. @return 0 when sound, or
 * -1 with err naming the first bad tensor. */
int ff_layerfile_verify(const char *path, ff_error_t *err);

#endif
