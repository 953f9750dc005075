/* json.h: strict reading of ffstream's JSON documents (run.json, the layer
 * header, configurations) on top of cJSON. Every getter names the file, the
 * key and what was expected; a document with a duplicate key, invalid UTF-8
 * or bytes after its end is refused as a whole. */
#ifndef FFSTREAM_JSON_H
#define FFSTREAM_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

/* Where a value is read from, for messages: "PATH: field \"KEY\" ...",
 * with `section` ("config", "training"...) prefixed to the key when set. */
typedef struct {
    const char *path;
    const char *section;
} ff_json_ctx_t;

/* Parses size bytes of text (which need not be NUL-terminated) into *out.
 * Refuses invalid UTF-8, a duplicate key in any object, and anything after
 * the value but whitespace. @return 0 or -1 with err naming path. */
int ff_json_parse(const char *path, const char *text, size_t size, cJSON **out, ff_error_t *err);

/* Whether size bytes are valid UTF-8 (no overlong forms or surrogates). */
int ff_json_valid_utf8(const char *text, size_t size);

/* A whole number in [min, max] (exactly representable: at most 2^53).
 * @return 0 or -1 with err. */
int ff_json_get_uint(const ff_json_ctx_t *c, const cJSON *obj, const char *key, uint64_t min,
                     uint64_t max, uint64_t *out, ff_error_t *err);

/* A finite number in [min, max]. */
int ff_json_get_number(const ff_json_ctx_t *c, const cJSON *obj, const char *key, double min,
                       double max, double *out, ff_error_t *err);

int ff_json_get_string(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const char **out, ff_error_t *err);

int ff_json_get_bool(const ff_json_ctx_t *c, const cJSON *obj, const char *key, int *out,
                     ff_error_t *err);

/* Exactly 16 lowercase hex digits. */
int ff_json_get_hex64(const ff_json_ctx_t *c, const cJSON *obj, const char *key, uint64_t *out,
                      ff_error_t *err);

/* A string equal to one of names[0..] (NULL-terminated); *out its index. */
int ff_json_get_choice(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const char *const *names, int *out, ff_error_t *err);

/* An object member. */
int ff_json_get_object(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const cJSON **out, ff_error_t *err);

/* Refuses a key of obj not in allowed (NULL-terminated). */
int ff_json_check_keys(const ff_json_ctx_t *c, const cJSON *obj, const char *const *allowed,
                       ff_error_t *err);

/* Writes root as formatted JSON to path with the atomic writer, then
 * deletes root (always). ok 0 (a member could not be added) reports out of
 * memory. @return 0 or -1 with err naming path. */
int ff_json_write_atomic(const char *path, cJSON *root, int ok, ff_error_t *err);

/* Adds "key": "%016llx". @return the item or NULL. */
cJSON *ff_json_add_hex64(cJSON *obj, const char *key, uint64_t v);

#endif
