/* run.c: run directory paths and run.json. */
#include "ffstream/run.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffstream/fileio.h"
#include "ffstream/json.h"

int ff_run_path(char *out, const char *dir, const char *name, ff_error_t *err) {
    return ff_path_format(out, err, "%s/%s", dir, name);
}

int ff_run_layer_path(char *out, const char *dir, uint32_t index, ff_error_t *err) {
    return ff_path_format(out, err, "%s/layers/%03u.ffl", dir, index);
}

int ff_run_cache_path(char *out, const char *dir, const char *kind, uint32_t index,
                      const char *suffix, ff_error_t *err) {
    return ff_path_format(out, err, "%s/cache/%s-%03u.%s", dir, kind, index, suffix);
}

static int make_dir(const char *path, ff_error_t *err) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return ff_error_set(err, "%s: exists and is not a directory", path);
    }
    return ff_error_set(err, "%s: cannot create directory: %s", path, strerror(errno));
}

int ff_run_make_dirs(const char *dir, ff_error_t *err) {
    char path[FF_PATH_MAX];
    /* mkdir -p for the run directory itself. */
    if (ff_path_format(path, err, "%s", dir) != 0) return -1;
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return ff_error_set(err, "%s: cannot create directory: %s", path, strerror(errno));
        *p = '/';
    }
    if (make_dir(dir, err) != 0) return -1;
    if (ff_run_path(path, dir, "layers", err) || make_dir(path, err)) return -1;
    if (ff_run_path(path, dir, "cache", err) || make_dir(path, err)) return -1;
    return 0;
}

/* run.json: its "checksum" is the XXH3 of the document without it, as
 * cJSON_PrintUnformatted writes it (a pure function of the values), so an
 * edited field is found whatever the formatting. */
static uint64_t document_checksum(const cJSON *root, int *ok) {
    char *flat = cJSON_PrintUnformatted(root);
    *ok = flat != NULL;
    uint64_t h = flat != NULL ? ff_fileio_xxh3(flat, strlen(flat)) : 0;
    free(flat);
    return h;
}

void ff_run_state_init(ff_run_state_t *s, const ff_config_t *cfg, uint64_t data_fingerprint,
                       uint64_t train_samples, uint64_t test_samples) {
    memset(s, 0, sizeof *s);
    s->config = *cfg;
    s->config_fingerprint = ff_config_fingerprint(cfg);
    s->data_fingerprint = data_fingerprint;
    s->train_samples = train_samples;
    s->test_samples = test_samples;
    s->cache_layer = FF_RUN_NO_CACHE;
    s->weights_hash = FF_FNV_OFFSET;
}

static const char *layer_status(const char *dir, const ff_run_state_t *s, uint32_t i) {
    char lpath[FF_PATH_MAX];
    struct stat st;
    if (s->finished || (s->cache_layer != FF_RUN_NO_CACHE && i < s->cache_layer)) return "trained";
    if (ff_run_layer_path(lpath, dir, i, NULL) == 0 && stat(lpath, &st) == 0)
        return "in progress";
    return "pending";
}

int ff_run_write(const char *dir, const ff_run_state_t *s, ff_error_t *err) {
    char path[FF_PATH_MAX];
    if (ff_path_format(path, err, "%s/run.json", dir) != 0) return -1;
    cJSON *root = cJSON_CreateObject(), *cfg = NULL, *layers = NULL;
    int ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "format", "ffstream-run") != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "version", FF_RUN_VERSION) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "writer", "ffstream " FF_VERSION) != NULL;
    ok = ok && ff_json_add_hex64(root, "config_fingerprint", s->config_fingerprint) != NULL;
    ok = ok && ff_json_add_hex64(root, "data_fingerprint", s->data_fingerprint) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "train_samples", (double)s->train_samples) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "test_samples", (double)s->test_samples) != NULL;
    if (ok && s->cache_layer == FF_RUN_NO_CACHE) ok = cJSON_AddNullToObject(root, "cache_layer") != NULL;
    else if (ok) ok = cJSON_AddNumberToObject(root, "cache_layer", s->cache_layer) != NULL;
    ok = ok && cJSON_AddBoolToObject(root, "finished", s->finished) != NULL;
    ok = ok && ff_json_add_hex64(root, "weights_fnv1a64", s->weights_hash) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "hashed_layers", s->hashed_layers) != NULL;
    ok = ok && (cfg = cJSON_AddObjectToObject(root, "config")) != NULL;
    ok = ok && ff_config_to_json(&s->config, cfg) == 0;
    ok = ok && (layers = cJSON_AddArrayToObject(root, "layers")) != NULL;
    for (uint32_t i = 0; ok && i < s->config.layers; i++) {
        cJSON *l = cJSON_CreateObject();
        char file[32];
        snprintf(file, sizeof file, "layers/%03u.ffl", i);
        ok = l != NULL && cJSON_AddItemToArray(layers, l);
        ok = ok && cJSON_AddNumberToObject(l, "index", i) != NULL;
        ok = ok && cJSON_AddStringToObject(l, "file", file) != NULL;
        ok = ok && cJSON_AddStringToObject(l, "status", layer_status(dir, s, i)) != NULL;
    }
    uint64_t sum = ok ? document_checksum(root, &ok) : 0;
    ok = ok && ff_json_add_hex64(root, "checksum", sum) != NULL;
    return ff_json_write_atomic(path, root, ok, err);
}

int ff_run_read(const char *dir, ff_run_state_t *s, int *missing, ff_error_t *err) {
    memset(s, 0, sizeof *s);
    *missing = 0;
    char path[FF_PATH_MAX];
    if (ff_path_format(path, err, "%s/run.json", dir) != 0) return -1;
    char *text = NULL;
    size_t size = 0;
    if (ff_fileio_read_small(path, 1u << 22, &text, &size, err) != 0) {
        *missing = errno == ENOENT;
        return -1;
    }
    int rc = ff_run_parse(path, text, size, 1, s, err);
    free(text);
    return rc;
}

int ff_run_parse(const char *path, const char *text, size_t size, int check_checksum,
                 ff_run_state_t *s, ff_error_t *err) {
    memset(s, 0, sizeof *s);
    cJSON *root = NULL;
    int rc = -1;
    if (ff_json_parse(path, text, size, &root, err) != 0) goto cleanup;
    ff_json_ctx_t c = {.path = path, .section = NULL};
    const char *str = NULL;
    uint64_t u;
    if (!cJSON_IsObject(root)) {
        ff_error_set(err, "%s: expected a JSON object", path);
        goto cleanup;
    }
    if (ff_json_get_string(&c, root, "format", &str, err) != 0) goto cleanup;
    if (strcmp(str, "ffstream-run") != 0) {
        ff_error_set(err, "%s: field \"format\" is \"%.40s\", expected \"ffstream-run\"", path, str);
        goto cleanup;
    }
    if (ff_json_get_uint(&c, root, "version", 0, UINT32_MAX, &u, err) != 0) goto cleanup;
    if (u != FF_RUN_VERSION) {
        const char *writer = "an unknown version";
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "writer");
        if (cJSON_IsString(w) && strlen(w->valuestring) < 64) writer = w->valuestring;
        ff_error_set(err,
                     "%s: run format version %llu (written by %s); this is ffstream " FF_VERSION
                     ", which reads version %u: finish the run with the version that started "
                     "it, or start a new --run",
                     path, (unsigned long long)u, writer, FF_RUN_VERSION);
        goto cleanup;
    }
    static const char *const keys[] = {"format", "version", "writer", "config_fingerprint",
                                       "data_fingerprint", "train_samples", "test_samples",
                                       "cache_layer", "finished", "weights_fnv1a64",
                                       "hashed_layers", "config", "layers", "checksum", NULL};
    if (ff_json_check_keys(&c, root, keys, err) != 0) goto cleanup;
    uint64_t stored_sum, sum;
    if (ff_json_get_hex64(&c, root, "checksum", &stored_sum, err) != 0) goto cleanup;
    cJSON_DeleteItemFromObjectCaseSensitive(root, "checksum");
    int ok;
    sum = document_checksum(root, &ok);
    if (!ok) {
        ff_error_set(err, "%s: out of memory", path);
        goto cleanup;
    }
    if (check_checksum && sum != stored_sum) {
        ff_error_set(err, "%s: checksum mismatch (field \"checksum\" is %016llx, the content "
                     "gives %016llx): the file was edited or damaged",
                     path, (unsigned long long)stored_sum, (unsigned long long)sum);
        goto cleanup;
    }
    if (ff_json_get_string(&c, root, "writer", &str, err) != 0) goto cleanup;
    if (ff_json_get_hex64(&c, root, "config_fingerprint", &s->config_fingerprint, err) != 0 ||
        ff_json_get_hex64(&c, root, "data_fingerprint", &s->data_fingerprint, err) != 0 ||
        ff_json_get_uint(&c, root, "train_samples", 1, UINT32_MAX, &s->train_samples, err) != 0 ||
        ff_json_get_uint(&c, root, "test_samples", 1, UINT32_MAX, &s->test_samples, err) != 0 ||
        ff_json_get_bool(&c, root, "finished", &s->finished, err) != 0 ||
        ff_json_get_hex64(&c, root, "weights_fnv1a64", &s->weights_hash, err) != 0 ||
        ff_json_get_uint(&c, root, "hashed_layers", 0, 4096, &u, err) != 0)
        goto cleanup;
    s->hashed_layers = (uint32_t)u;
    const cJSON *cfg;
    if (ff_json_get_object(&c, root, "config", &cfg, err) != 0) goto cleanup;
    ff_config_defaults(&s->config);
    if (ff_config_from_json(&s->config, cfg, path, err) != 0) goto cleanup;
    const uint32_t L = s->config.layers;
    if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "cache_layer"))) {
        s->cache_layer = FF_RUN_NO_CACHE;
    } else {
        if (ff_json_get_uint(&c, root, "cache_layer", 0, L - 1, &u, err) != 0) goto cleanup;
        s->cache_layer = (uint32_t)u;
    }
    if (s->hashed_layers > L) {
        ff_error_set(err, "%s: field \"hashed_layers\" is %u, expected at most %u (the layers)",
                     path, s->hashed_layers, L);
        goto cleanup;
    }
    if (s->finished && (s->hashed_layers != L)) {
        ff_error_set(err, "%s: field \"finished\" is true but only %u of %u layers are hashed",
                     path, s->hashed_layers, L);
        goto cleanup;
    }
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "layers"))) {
        ff_error_set(err, "%s: field \"layers\" is not an array", path);
        goto cleanup;
    }
    if (s->config_fingerprint != ff_config_fingerprint(&s->config)) {
        ff_error_set(err, "%s: field \"config_fingerprint\" does not match the configuration "
                     "recorded beside it", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    cJSON_Delete(root);
    return rc;
}

int ff_run_check_resume(const ff_run_state_t *saved, const ff_config_t *cfg,
                        uint64_t data_fingerprint, ff_error_t *err) {
    if (saved->config.mode != cfg->mode)
        return ff_error_set(err, "cannot resume: the run was made by --mode %s, not %s",
                            ff_mode_name(saved->config.mode), ff_mode_name(cfg->mode));
    if (ff_config_compare(&saved->config, cfg, err) != 0) return -1;
    if (saved->config_fingerprint != ff_config_fingerprint(cfg))
        return ff_error_set(err, "cannot resume: the configuration fingerprint differs");
    if (saved->data_fingerprint != data_fingerprint)
        return ff_error_set(err,
                            "cannot resume: the data differ from the run's (fingerprint %016llx, "
                            "now %016llx; check --data %s)",
                            (unsigned long long)saved->data_fingerprint,
                            (unsigned long long)data_fingerprint, cfg->data_dir);
    return 0;
}

static void remove_temporaries_in(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    char path[FF_PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!ff_fileio_is_temporary(e->d_name)) continue;
        if (ff_path_format(path, NULL, "%s/%s", dir, e->d_name) == 0) unlink(path);
    }
    closedir(d);
}

void ff_run_remove_temporaries(const char *dir) {
    char path[FF_PATH_MAX];
    remove_temporaries_in(dir);
    if (ff_run_path(path, dir, "layers", NULL) == 0) remove_temporaries_in(path);
    if (ff_run_path(path, dir, "cache", NULL) == 0) remove_temporaries_in(path);
}
