/* layerstats.c: RUN/layers.json, the per-layer figures of a streamed run. */
#include "ffstream/layerstats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/fileio.h"
#include "ffstream/json.h"
#include "ffstream/run.h"

#define FORMAT "ffstream-layer-stats"
#define VERSION 1u
/* Exactly representable in a JSON number read as a double. */
#define MAX_BYTES 9007199254740992.0

int ff_layerstats_save(const char *run_dir, const ff_layer_result_t *layers, uint32_t count,
                       ff_error_t *err) {
    char path[FF_PATH_MAX];
    if (ff_run_path(path, run_dir, FF_LAYERSTATS_NAME, err) != 0) return -1;
    cJSON *root = cJSON_CreateObject(), *list = NULL;
    int ok = root != NULL && cJSON_AddStringToObject(root, "format", FORMAT) != NULL &&
             cJSON_AddNumberToObject(root, "version", VERSION) != NULL &&
             (list = cJSON_AddArrayToObject(root, "layers")) != NULL;
    for (uint32_t k = 0; ok && k < count; k++) {
        const ff_layer_result_t *l = &layers[k];
        if (!l->measured) continue;
        cJSON *o = cJSON_CreateObject();
        ok = o != NULL && cJSON_AddItemToArray(list, o);
        ok = ok && cJSON_AddNumberToObject(o, "index", k) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "seconds", l->seconds) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)l->peak_rss_bytes) != NULL;
        ok = ok && (l->cgroup_peak_bytes > 0
                        ? cJSON_AddNumberToObject(o, "cgroup_peak_bytes",
                                                  (double)l->cgroup_peak_bytes) != NULL
                        : cJSON_AddNullToObject(o, "cgroup_peak_bytes") != NULL);
        ok = ok && cJSON_AddNumberToObject(o, "bytes_read", (double)l->bytes_read) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "bytes_written", (double)l->bytes_written) != NULL;
        ok = ok && cJSON_AddNumberToObject(o, "disk_bytes", (double)l->disk_bytes) != NULL;
    }
    return ff_json_write_atomic(path, root, ok, err);
}

static int get_bytes(const ff_json_ctx_t *c, const cJSON *o, const char *key, uint64_t *out,
                     ff_error_t *err) {
    return ff_json_get_uint(c, o, key, 0, (uint64_t)MAX_BYTES, out, err);
}

int ff_layerstats_parse(const char *path, const char *text, size_t size,
                        ff_layer_result_t *layers, uint32_t count, ff_error_t *err) {
    cJSON *root = NULL;
    int rc = -1;
    uint8_t *seen = calloc(count > 0 ? count : 1, 1);
    if (seen == NULL) return ff_error_set(err, "%s: out of memory", path);
    if (ff_json_parse(path, text, size, &root, err) != 0) goto cleanup;
    ff_json_ctx_t c = {.path = path, .section = NULL};
    static const char *const top[] = {"format", "version", "layers", NULL};
    static const char *const fields[] = {"index",      "seconds",       "peak_rss_bytes",
                                         "cgroup_peak_bytes", "bytes_read", "bytes_written",
                                         "disk_bytes", NULL};
    const char *format;
    uint64_t version;
    if (!cJSON_IsObject(root)) {
        ff_error_set(err, "%s: expected a JSON object", path);
        goto cleanup;
    }
    if (ff_json_check_keys(&c, root, top, err) != 0 ||
        ff_json_get_string(&c, root, "format", &format, err) != 0)
        goto cleanup;
    if (strcmp(format, FORMAT) != 0) {
        ff_error_set(err, "%s: format \"%s\", expected \"%s\"", path, format, FORMAT);
        goto cleanup;
    }
    if (ff_json_get_uint(&c, root, "version", 0, UINT32_MAX, &version, err) != 0) goto cleanup;
    if (version != VERSION) {
        ff_error_set(err, "%s: version %llu, this ffstream reads version %u", path,
                     (unsigned long long)version, VERSION);
        goto cleanup;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "layers");
    if (!cJSON_IsArray(list)) {
        ff_error_set(err, "%s: field \"layers\": expected an array", path);
        goto cleanup;
    }
    const cJSON *o;
    cJSON_ArrayForEach(o, list) {
        if (!cJSON_IsObject(o)) {
            ff_error_set(err, "%s: field \"layers\": expected objects", path);
            goto cleanup;
        }
        uint64_t index, rss, read, written, disk, cgroup = 0;
        double seconds;
        if (ff_json_check_keys(&c, o, fields, err) != 0 ||
            ff_json_get_uint(&c, o, "index", 0, count > 0 ? count - 1 : 0, &index, err) != 0 ||
            ff_json_get_number(&c, o, "seconds", 0, 1e9, &seconds, err) != 0 ||
            get_bytes(&c, o, "peak_rss_bytes", &rss, err) != 0 ||
            get_bytes(&c, o, "bytes_read", &read, err) != 0 ||
            get_bytes(&c, o, "bytes_written", &written, err) != 0 ||
            get_bytes(&c, o, "disk_bytes", &disk, err) != 0)
            goto cleanup;
        if (count == 0) {
            ff_error_set(err, "%s: a layer listed for a run of no layers", path);
            goto cleanup;
        }
        const cJSON *cg = cJSON_GetObjectItemCaseSensitive(o, "cgroup_peak_bytes");
        if (cg == NULL) {
            ff_error_set(err, "%s: field \"cgroup_peak_bytes\" is missing", path);
            goto cleanup;
        }
        if (!cJSON_IsNull(cg) && get_bytes(&c, o, "cgroup_peak_bytes", &cgroup, err) != 0)
            goto cleanup;
        if (seen[index]) {
            ff_error_set(err, "%s: layer %llu is listed twice", path, (unsigned long long)index);
            goto cleanup;
        }
        seen[index] = 1;
        ff_layer_result_t *l = &layers[index];
        l->measured = 1;
        l->seconds = seconds;
        l->peak_rss_bytes = rss;
        l->cgroup_peak_bytes = cgroup;
        l->bytes_read = read;
        l->bytes_written = written;
        l->disk_bytes = disk;
    }
    rc = 0;
cleanup:
    cJSON_Delete(root);
    free(seen);
    return rc;
}

int ff_layerstats_load(const char *run_dir, ff_layer_result_t *layers, uint32_t count,
                       ff_error_t *err) {
    char path[FF_PATH_MAX];
    if (ff_run_path(path, run_dir, FF_LAYERSTATS_NAME, err) != 0) return -1;
    char *text = NULL;
    size_t size = 0;
    if (ff_fileio_read_small(path, FF_LAYERSTATS_MAX_BYTES, &text, &size, err) != 0)
        return errno == ENOENT ? 0 : -1;
    int rc = ff_layerstats_parse(path, text, size, layers, count, err);
    free(text);
    return rc;
}
