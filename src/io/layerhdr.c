/* layerhdr.c: what both layer file layouts share (layerfile_internal.h):
 * the tensor names, the preamble's checksum, and the JSON header's common
 * fields and training state, written and read strictly. layerfile.c (whole
 * tensors, version 2) and tilefile.c (tiles, version 3) build on it; neither
 * calls the other's format code but through layerfile.h's dispatch. */
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

#include "ffstream/fileio.h"
#include "ffstream/json.h"
#include "ffstream/memstat.h"
#include "ffstream/layerfile.h"
#include "layerfile_internal.h"

#define FORMAT_NAME FF_LF_FORMAT_NAME
#define JSON_MAX_INT FF_LF_JSON_MAX_INT
#define MAX_DIM FF_LF_MAX_DIM

static const char *const tensor_names[FF_LAYERFILE_MAX_TENSORS] = {
    "weight", "bias", "adam_m.weight", "adam_m.bias", "adam_v.weight", "adam_v.bias",
};

const char *ff_layerfile_tensor_name(uint32_t index) {
    return index < FF_LAYERFILE_MAX_TENSORS ? tensor_names[index] : "unknown";
}


/* The header's checksum: XXH3-64 of preamble bytes 0..15 and the header. */
uint64_t ff_lf_header_checksum(const uint8_t *preamble, const char *header, size_t bytes) {
    return XXH3_64bits_withSeed(header, bytes, XXH3_64bits(preamble, 16));
}


/* Adds a non-negative integer as its exact decimal digits (callers keep it
 * at most 2^53 so readers that hold numbers as doubles see the same value).
 * @return 0, or -1 when out of memory. */
int ff_lf_add_uint(cJSON *obj, const char *key, uint64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, key, text) != NULL ? 0 : -1;
}


int ff_lf_add_hex(cJSON *obj, const char *key, uint64_t v, int digits) {
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
int ff_lf_add_double(cJSON *obj, const char *key, double v) {
    if (isnan(v)) return cJSON_AddNullToObject(obj, key) != NULL ? 0 : -1;
    if (isinf(v)) return cJSON_AddStringToObject(obj, key, v > 0 ? "inf" : "-inf") ? 0 : -1;
    char text[40];
    format_double(text, sizeof text, v);
    return cJSON_AddRawToObject(obj, key, text) != NULL ? 0 : -1;
}


int ff_lf_add_state(cJSON *root, const ff_layerfile_meta_t *meta, int64_t adam_step) {
    int bad = 0;
    cJSON *adam = cJSON_AddObjectToObject(root, "adam");
    bad |= adam == NULL;
    if (adam != NULL) {
        bad |= ff_lf_add_uint(adam, "step", (uint64_t)adam_step);
        bad |= ff_lf_add_double(adam, "lr", meta->adam.lr);
        bad |= ff_lf_add_double(adam, "beta1", meta->adam.beta1);
        bad |= ff_lf_add_double(adam, "beta2", meta->adam.beta2);
        bad |= ff_lf_add_double(adam, "eps", meta->adam.eps);
        bad |= ff_lf_add_double(adam, "weight_decay", meta->adam.weight_decay);
    }
    cJSON *tr = cJSON_AddObjectToObject(root, "training");
    bad |= tr == NULL;
    if (tr != NULL) {
        bad |= ff_lf_add_uint(tr, "epochs_done", meta->epochs_done);
        bad |= ff_lf_add_uint(tr, "epochs_total", meta->epochs_total);
        bad |= ff_lf_add_uint(tr, "batch_in_epoch", meta->batch_in_epoch);
        bad |= cJSON_AddBoolToObject(tr, "complete", meta->complete != 0) == NULL;
        bad |= ff_lf_add_double(tr, "loss", meta->loss);
        bad |= ff_lf_add_double(tr, "goodness_pos", meta->goodness_pos);
        bad |= ff_lf_add_double(tr, "goodness_neg", meta->goodness_neg);
        bad |= ff_lf_add_double(tr, "loss_sum", meta->loss_sum);
        bad |= ff_lf_add_double(tr, "good_pos_sum", meta->good_pos_sum);
        bad |= ff_lf_add_double(tr, "good_neg_sum", meta->good_neg_sum);
        bad |= ff_lf_add_uint(tr, "batches", meta->batches);
        bad |= ff_lf_add_uint(tr, "npos", meta->npos);
        bad |= ff_lf_add_uint(tr, "nneg", meta->nneg);
    }
    bad |= ff_lf_add_hex(root, "data_fingerprint", meta->data_fingerprint, 16);
    bad |= ff_lf_add_hex(root, "config_fingerprint", meta->config_fingerprint, 16);
    return bad ? -1 : 0;
}


static const char *const adam_keys[] = {"step", "lr", "beta1", "beta2", "eps", "weight_decay",
                                        NULL};

static const char *const training_keys[] = {
    "epochs_done", "epochs_total", "batch_in_epoch", "complete", "loss", "goodness_pos",
    "goodness_neg", "loss_sum", "good_pos_sum", "good_neg_sum", "batches", "npos", "nneg", NULL};

/* A number, null (NaN) or "inf" / "-inf": what add_double writes. */
int ff_lf_get_double(const ff_json_ctx_t *c, const cJSON *obj, const char *key, double *out,
                      ff_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(item)) *out = item->valuedouble;
    else if (cJSON_IsNull(item)) *out = NAN;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "inf") == 0) *out = INFINITY;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "-inf") == 0) *out = -INFINITY;
    else
        return ff_error_set(err, "%s: header field \"%s%s%s\" is %s", c->path,
                            c->section ? c->section : "", c->section ? "." : "", key,
                            item == NULL ? "missing"
                                         : "not a number, null, \"inf\" or \"-inf\"");
    return 0;
}


static int get_u32(const ff_json_ctx_t *c, const cJSON *obj, const char *key, uint32_t *out,
                   ff_error_t *err) {
    uint64_t v;
    if (ff_json_get_uint(c, obj, key, 0, UINT32_MAX, &v, err) != 0) return -1;
    *out = (uint32_t)v;
    return 0;
}


int ff_lf_parse_adam(const char *path, const cJSON *root, ff_layerfile_info_t *info,
                      ff_error_t *err) {
    ff_json_ctx_t c = {path, NULL};
    const cJSON *adam;
    if (ff_json_get_object(&c, root, "adam", &adam, err) != 0) return -1;
    c.section = "adam";
    if (ff_json_check_keys(&c, adam, adam_keys, err) != 0) return -1;
    uint64_t step;
    if (ff_json_get_uint(&c, adam, "step", 0, FF_LAYERFILE_MAX_STEP, &step, err) != 0) return -1;
    info->adam_step = (int64_t)step;
    ff_adam_params_t *p = &info->meta.adam;
    if (ff_lf_get_double(&c, adam, "lr", &p->lr, err) != 0 ||
        ff_lf_get_double(&c, adam, "beta1", &p->beta1, err) != 0 ||
        ff_lf_get_double(&c, adam, "beta2", &p->beta2, err) != 0 ||
        ff_lf_get_double(&c, adam, "eps", &p->eps, err) != 0 ||
        ff_lf_get_double(&c, adam, "weight_decay", &p->weight_decay, err) != 0)
        return -1;
    return 0;
}


int ff_lf_parse_training(const char *path, const cJSON *root, ff_layerfile_meta_t *m,
                          ff_error_t *err) {
    ff_json_ctx_t c = {path, NULL};
    const cJSON *tr;
    if (ff_json_get_object(&c, root, "training", &tr, err) != 0) return -1;
    c.section = "training";
    if (ff_json_check_keys(&c, tr, training_keys, err) != 0) return -1;
    if (get_u32(&c, tr, "epochs_done", &m->epochs_done, err) != 0 ||
        get_u32(&c, tr, "epochs_total", &m->epochs_total, err) != 0 ||
        get_u32(&c, tr, "batch_in_epoch", &m->batch_in_epoch, err) != 0 ||
        ff_json_get_bool(&c, tr, "complete", &m->complete, err) != 0)
        return -1;
    if (ff_lf_get_double(&c, tr, "loss", &m->loss, err) != 0 ||
        ff_lf_get_double(&c, tr, "goodness_pos", &m->goodness_pos, err) != 0 ||
        ff_lf_get_double(&c, tr, "goodness_neg", &m->goodness_neg, err) != 0 ||
        ff_lf_get_double(&c, tr, "loss_sum", &m->loss_sum, err) != 0 ||
        ff_lf_get_double(&c, tr, "good_pos_sum", &m->good_pos_sum, err) != 0 ||
        ff_lf_get_double(&c, tr, "good_neg_sum", &m->good_neg_sum, err) != 0 ||
        ff_json_get_uint(&c, tr, "batches", 0, JSON_MAX_INT, &m->batches, err) != 0 ||
        ff_json_get_uint(&c, tr, "npos", 0, JSON_MAX_INT, &m->npos, err) != 0 ||
        ff_json_get_uint(&c, tr, "nneg", 0, JSON_MAX_INT, &m->nneg, err) != 0)
        return -1;
    if (m->epochs_done > m->epochs_total)
        return ff_error_set(err, "%s: header field \"training.epochs_done\" is %u, more than "
                            "epochs_total %u", path, m->epochs_done, m->epochs_total);
    if (m->complete != (m->epochs_done == m->epochs_total))
        return ff_error_set(err, "%s: header field \"training.complete\" is %s but %u of %u "
                            "epochs are done", path, m->complete ? "true" : "false",
                            m->epochs_done, m->epochs_total);
    return 0;
}


/* Parses and checks the header (header_bytes of text, NUL-terminated) into
 * info, whose version and file_bytes are already set. */
int ff_lf_parse_common(const char *path, const char *text, size_t bytes,
                       const char *const *keys, uint32_t version, cJSON **root_out,
                       ff_lf_common_t *out, ff_error_t *err) {
    cJSON *root = NULL;
    ff_json_ctx_t c = {path, NULL};
    *root_out = NULL;
    if (ff_json_parse(path, text, bytes, &root, err) != 0) return ff_error_wrap(err, "the header");
    const char *s = NULL;
    uint64_t v, in64, out64;
    if (!cJSON_IsObject(root)) {
        ff_error_set(err, "%s: header is not a JSON object", path);
        goto fail;
    }
    if (ff_json_check_keys(&c, root, keys, err) != 0 ||
        ff_json_get_string(&c, root, "format", &s, err) != 0)
        goto fail;
    if (strcmp(s, FORMAT_NAME) != 0) {
        ff_error_set(err, "%s: header field \"format\" is \"%.40s\", expected \"%s\"", path, s,
                     FORMAT_NAME);
        goto fail;
    }
    if (ff_json_get_uint(&c, root, "version", version, version, &v, err) != 0 ||
        ff_json_get_string(&c, root, "writer", &s, err) != 0)
        goto fail;
    snprintf(out->writer, sizeof out->writer, "%s", s);
    if (get_u32(&c, root, "layer_index", &out->layer_index, err) != 0 ||
        ff_json_get_uint(&c, root, "in", 1, MAX_DIM, &in64, err) != 0 ||
        ff_json_get_uint(&c, root, "out", 1, MAX_DIM, &out64, err) != 0)
        goto fail;
    out->in = (uint32_t)in64;
    out->out = (uint32_t)out64;
    if (ff_json_get_string(&c, root, "dtype", &s, err) != 0) goto fail;
    if (strcmp(s, "float32") != 0) {
        ff_error_set(err, "%s: header field \"dtype\" is \"%.40s\", expected \"float32\"", path, s);
        goto fail;
    }
    if (ff_json_get_string(&c, root, "activation", &s, err) != 0) goto fail;
    if (strcmp(s, "relu") != 0) {
        ff_error_set(err, "%s: header field \"activation\" is \"%.40s\", expected \"relu\"", path,
                     s);
        goto fail;
    }
    *root_out = root;
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}


int ff_lf_read_error(const char *path, const char *what, ff_error_t *err) {
    if (errno == 0)
        return ff_error_set(err, "%s: cannot read %s: the file ended early (it shrank while being "
                            "read?)", path, what);
    return ff_error_set(err, "%s: cannot read %s: %s", path, what, strerror(errno));
}


/* Closes a checkpoint that has been read: its pages would otherwise stay
 * in the page cache, which a memory cgroup charges to the trainer. */
void ff_lf_close_dropping_cache(int fd) {
    if (fd < 0) return;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

char *ff_lf_read_header(int fd, const char *path, const uint8_t *preamble, uint32_t bytes,
                        ff_error_t *err) {
    char *text = ff_mem_alloc(FF_MEM_IO, (size_t)bytes + 1);
    if (text == NULL) {
        ff_error_set(err, "%s: out of memory for the %u-byte header", path, bytes);
        return NULL;
    }
    if (ff_fileio_read_exact(fd, text, bytes, FF_LAYERFILE_PREAMBLE) != 0) {
        ff_lf_read_error(path, "the header", err);
        ff_mem_free(text);
        return NULL;
    }
    text[bytes] = '\0';
    uint64_t stored = ff_get_le(preamble + 16, 8), sum = ff_lf_header_checksum(preamble, text, bytes);
    if (stored != sum) {
        ff_error_set(err, "%s: header checksum mismatch (the preamble says %016" PRIx64 ", the "
                     "header gives %016" PRIx64 "): the header was edited or damaged", path,
                     stored, sum);
        ff_mem_free(text);
        return NULL;
    }
    return text;
}
