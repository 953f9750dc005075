/* layerfile_internal.h: the header pieces the two layer file layouts share
 * (layerfile.c: whole tensors, version 2; tilefile.c: tiles of output
 * units, version 3), defined in layerhdr.c: the JSON writers and readers of
 * the common fields and the training state, and the preamble's checksum.
 * Not part of the public API. */
#ifndef FFSTREAM_LAYERFILE_INTERNAL_H
#define FFSTREAM_LAYERFILE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "ffstream/json.h"
#include "ffstream/layerfile.h"

#define FF_LF_FORMAT_NAME "ffstream-layer"
/* cJSON holds numbers as doubles: integers are exact up to 2^53. */
#define FF_LF_JSON_MAX_INT (UINT64_C(1) << 53)
#define FF_LF_MAX_DIM (UINT64_C(1) << 24)

/* XXH3-64 of preamble bytes 0..15 and the header. */
uint64_t ff_lf_header_checksum(const uint8_t *preamble, const char *header, size_t bytes);
/* Exact decimal / fixed-width hex / finite-or-null-or-"inf" numbers.
 * @return 0, or -1 when out of memory. */
int ff_lf_add_uint(cJSON *obj, const char *key, uint64_t v);
int ff_lf_add_hex(cJSON *obj, const char *key, uint64_t v, int digits);
int ff_lf_add_double(cJSON *obj, const char *key, double v);
/* "adam", "training", "data_fingerprint", "config_fingerprint". */
int ff_lf_add_state(cJSON *root, const ff_layerfile_meta_t *meta, int64_t adam_step);
int ff_lf_get_double(const ff_json_ctx_t *c, const cJSON *obj, const char *key, double *out,
                     ff_error_t *err);
/* The "adam" and "training" objects, checked (info->adam_step, info->meta). */
int ff_lf_parse_adam(const char *path, const cJSON *root, ff_layerfile_info_t *info,
                     ff_error_t *err);
int ff_lf_parse_training(const char *path, const cJSON *root, ff_layerfile_meta_t *m,
                         ff_error_t *err);
/* What both versions' headers open with. */
typedef struct {
    char writer[64];
    uint32_t layer_index, in, out;
} ff_lf_common_t;

/* Parses header text (bytes, NUL-terminated) into *root (cJSON_Delete it)
 * and checks its opening fields: a JSON object with only `keys`, "format",
 * "version" equal to version, "writer", "layer_index", "in" and "out"
 * (1 .. 2^24), "dtype" float32, "activation" relu. @return 0, or -1 with
 * err naming the file and the field (*root NULL). */
int ff_lf_parse_common(const char *path, const char *text, size_t bytes,
                       const char *const *keys, uint32_t version, cJSON **root,
                       ff_lf_common_t *out, ff_error_t *err);

/* The header of the open file fd: `bytes` (checked by the caller against
 * the file's length) after the preamble, NUL-terminated, its checksum
 * against the preamble's. @return the text (ff_mem_free it), or NULL with
 * err naming the file. */
char *ff_lf_read_header(int fd, const char *path, const uint8_t *preamble, uint32_t bytes,
                        ff_error_t *err);

/* err for a failed or short read of `what`. @return -1. */
int ff_lf_read_error(const char *path, const char *what, ff_error_t *err);
/* Closes fd after dropping its pages from the page cache. */
void ff_lf_close_dropping_cache(int fd);

#endif
