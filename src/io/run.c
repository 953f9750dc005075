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

#include "ffstream/report.h"

int ff_run_path(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int ff_run_layer_path(char *out, size_t cap, const char *dir, uint32_t index) {
    int n = snprintf(out, cap, "%s/layers/%03u.ffl", dir, index);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int ff_run_cache_path(char *out, size_t cap, const char *dir, const char *kind, uint32_t index,
                      const char *suffix) {
    int n = snprintf(out, cap, "%s/cache/%s-%03u.%s", dir, kind, index, suffix);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
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
    char path[4200];
    /* mkdir -p for the run directory itself. */
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return ff_error_set(err, "%s: cannot create directory: %s", path, strerror(errno));
        *p = '/';
    }
    if (make_dir(dir, err) != 0) return -1;
    if (ff_run_path(path, sizeof path, dir, "layers") || make_dir(path, err)) return -1;
    if (ff_run_path(path, sizeof path, dir, "cache") || make_dir(path, err)) return -1;
    return 0;
}

static void hex64(char *out, uint64_t v) { snprintf(out, 17, "%016llx", (unsigned long long)v); }

static void add_config(cJSON *o, const ff_config_t *c) {
    cJSON_AddNumberToObject(o, "layers", c->layers);
    cJSON_AddNumberToObject(o, "hidden", c->hidden);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "theta", c->theta);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(o, "seed", seed); /* a string: seeds can exceed 2^53 */
    cJSON_AddStringToObject(o, "label", ff_label_name(c->label));
    cJSON_AddStringToObject(o, "goodness", c->goodness == FF_GOODNESS_SUM ? "sum" : "mean");
    cJSON_AddNumberToObject(o, "train_limit", (double)c->train_limit);
    cJSON_AddNumberToObject(o, "test_limit", (double)c->test_limit);
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddStringToObject(o, "data", c->data_dir);
    /* The recipe options (issue 7). */
    cJSON_AddStringToObject(o, "recipe", c->recipe);
    cJSON_AddNumberToObject(o, "label_scale", c->label_scale);
    cJSON_AddStringToObject(o, "loss", ff_loss_name(c->loss));
    cJSON_AddNumberToObject(o, "symba_alpha", c->symba_alpha);
    cJSON_AddBoolToObject(o, "theta_per_unit", c->theta_per_unit);
    cJSON_AddNumberToObject(o, "lr_schedule", (double)c->lr_schedule);
    cJSON_AddNumberToObject(o, "lr_decay_start", c->lr_decay_start);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(o, "jitter", c->jitter);
    cJSON_AddBoolToObject(o, "eval_softmax", c->eval_softmax);
    cJSON_AddBoolToObject(o, "score_all_layers", c->score_all_layers);
    cJSON_AddNumberToObject(o, "head_epochs", c->head_epochs);
    cJSON_AddNumberToObject(o, "head_lr", c->head_lr);
    cJSON_AddBoolToObject(o, "fresh_negatives", c->fresh_negatives);
}

void ff_run_state_init(ff_run_state_t *s, const ff_config_t *cfg, uint64_t data_fingerprint,
                       uint64_t train_samples, uint64_t test_samples) {
    memset(s, 0, sizeof *s);
    snprintf(s->mode, sizeof s->mode, "%s", ff_mode_name(cfg->mode));
    s->config = *cfg;
    s->config_fingerprint = ff_config_fingerprint(cfg);
    s->data_fingerprint = data_fingerprint;
    s->train_samples = train_samples;
    s->test_samples = test_samples;
    s->layers = cfg->layers;
    s->cache_layer = FF_RUN_NO_CACHE;
    s->weights_hash = FF_FNV_OFFSET;
}

int ff_run_write(const char *dir, const ff_run_state_t *s, ff_error_t *err) {
    char path[4200], hex[17];
    if (ff_run_path(path, sizeof path, dir, "run.json") != 0)
        return ff_error_set(err, "%s: path too long", dir);
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return ff_error_set(err, "%s: out of memory", path);
    cJSON_AddStringToObject(root, "format", "ffstream-run");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "writer", "ffstream " FF_VERSION);
    cJSON_AddStringToObject(root, "mode", s->mode);
    hex64(hex, s->config_fingerprint);
    cJSON_AddStringToObject(root, "config_fingerprint", hex);
    hex64(hex, s->data_fingerprint);
    cJSON_AddStringToObject(root, "data_fingerprint", hex);
    cJSON_AddNumberToObject(root, "train_samples", (double)s->train_samples);
    cJSON_AddNumberToObject(root, "test_samples", (double)s->test_samples);
    if (s->cache_layer == FF_RUN_NO_CACHE) cJSON_AddNullToObject(root, "cache_layer");
    else cJSON_AddNumberToObject(root, "cache_layer", s->cache_layer);
    cJSON_AddBoolToObject(root, "finished", s->finished);
    hex64(hex, s->weights_hash);
    cJSON_AddStringToObject(root, "weights_fnv1a64", hex);
    cJSON_AddNumberToObject(root, "hashed_layers", s->hashed_layers);
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    if (cfg != NULL) add_config(cfg, &s->config);
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (uint32_t i = 0; layers != NULL && i < s->layers; i++) {
        cJSON *l = cJSON_CreateObject();
        if (l == NULL) break;
        char file[32];
        snprintf(file, sizeof file, "layers/%03u.ffl", i);
        char lpath[4200];
        struct stat st;
        int exists = ff_run_layer_path(lpath, sizeof lpath, dir, i) == 0 && stat(lpath, &st) == 0;
        const char *status = "pending";
        if (s->finished || (s->cache_layer != FF_RUN_NO_CACHE && i < s->cache_layer))
            status = "trained";
        else if (exists)
            status = "in progress";
        cJSON_AddNumberToObject(l, "index", i);
        cJSON_AddStringToObject(l, "file", file);
        cJSON_AddStringToObject(l, "status", status);
        cJSON_AddItemToArray(layers, l);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL) return ff_error_set(err, "%s: out of memory", path);
    int rc = ff_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int get_number(const cJSON *o, const char *name, double min, double max, double *out,
                      const char *path, ff_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v)) return ff_error_set(err, "%s: field \"%s\" missing or not a number", path, name);
    if (!(v->valuedouble >= min && v->valuedouble <= max))
        return ff_error_set(err, "%s: field \"%s\" is %g, expected %g..%g", path, name,
                            v->valuedouble, min, max);
    *out = v->valuedouble;
    return 0;
}

static int get_string(const cJSON *o, const char *name, const char **out, const char *path,
                      ff_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v)) return ff_error_set(err, "%s: field \"%s\" missing or not a string", path, name);
    *out = v->valuestring;
    return 0;
}

static int get_hex64(const cJSON *o, const char *name, uint64_t *out, const char *path,
                     ff_error_t *err) {
    const char *s = NULL;
    if (get_string(o, name, &s, path, err) != 0) return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno != 0 || end == s || *end != '\0' || strlen(s) != 16)
        return ff_error_set(err, "%s: field \"%s\" is \"%s\", expected 16 hex digits", path, name, s);
    *out = v;
    return 0;
}

/* The recipe options of run.json's config; a run.json written before they
 * existed holds none and means the original recipe. @return 0 or -1. */
static int read_recipe_config(const cJSON *cfg, ff_config_t *c, const char *path,
                              ff_error_t *err) {
    if (cJSON_GetObjectItemCaseSensitive(cfg, "loss") == NULL) return 0;
    const char *str = NULL;
    double num = 0.0;
    if (get_string(cfg, "recipe", &str, path, err) != 0) return -1;
    snprintf(c->recipe, sizeof c->recipe, "%s", str);
    if (get_number(cfg, "label_scale", 0, 1e6, &c->label_scale, path, err) != 0) return -1;
    if (get_string(cfg, "loss", &str, path, err) != 0) return -1;
    c->loss = FF_LOSS_SOFTPLUS;
    for (int l = FF_LOSS_SOFTPLUS; l <= FF_LOSS_SYMBA; l++)
        if (strcmp(str, ff_loss_name((ff_loss_t)l)) == 0) c->loss = (ff_loss_t)l;
    if (get_number(cfg, "symba_alpha", 0, 1e6, &c->symba_alpha, path, err) != 0) return -1;
    c->theta_per_unit = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "theta_per_unit"));
    if (get_number(cfg, "lr_schedule", 0, 1, &num, path, err) != 0) return -1;
    c->lr_schedule = (ff_lr_schedule_t)num;
    if (get_number(cfg, "lr_decay_start", 0, 1, &c->lr_decay_start, path, err) != 0) return -1;
    if (get_number(cfg, "weight_decay", 0, 1, &c->weight_decay, path, err) != 0) return -1;
    if (get_number(cfg, "jitter", 0, 4, &num, path, err) != 0) return -1;
    c->jitter = (uint32_t)num;
    c->eval_softmax = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "eval_softmax"));
    c->score_all_layers = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "score_all_layers"));
    if (get_number(cfg, "head_epochs", 1, 100000, &num, path, err) != 0) return -1;
    c->head_epochs = (uint32_t)num;
    if (get_number(cfg, "head_lr", 0, 10, &c->head_lr, path, err) != 0) return -1;
    c->fresh_negatives = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "fresh_negatives"));
    return 0;
}

int ff_run_read(const char *dir, ff_run_state_t *s, int *missing, ff_error_t *err) {
    memset(s, 0, sizeof *s);
    *missing = 0;
    char path[4200];
    if (ff_run_path(path, sizeof path, dir, "run.json") != 0)
        return ff_error_set(err, "%s: path too long", dir);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *missing = errno == ENOENT;
        return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    }
    int rc = -1;
    char *text = NULL;
    cJSON *root = NULL;
    if (fseek(f, 0, SEEK_END) != 0) goto io_error;
    long size = ftell(f);
    if (size < 0 || size > (1 << 22) || fseek(f, 0, SEEK_SET) != 0) goto io_error;
    text = malloc((size_t)size + 1);
    if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) goto io_error;
    text[size] = '\0';
    root = cJSON_Parse(text);
    if (root == NULL) {
        ff_error_set(err, "%s: not valid JSON", path);
        goto cleanup;
    }
    const char *str = NULL;
    double num;
    if (get_string(root, "format", &str, path, err) != 0) goto cleanup;
    if (strcmp(str, "ffstream-run") != 0) {
        ff_error_set(err, "%s: field \"format\" is \"%s\", expected \"ffstream-run\"", path, str);
        goto cleanup;
    }
    if (get_number(root, "version", 1, 1, &num, path, err) != 0) goto cleanup;
    if (get_string(root, "mode", &str, path, err) != 0) goto cleanup;
    snprintf(s->mode, sizeof s->mode, "%s", str);
    if (get_hex64(root, "config_fingerprint", &s->config_fingerprint, path, err) != 0 ||
        get_hex64(root, "data_fingerprint", &s->data_fingerprint, path, err) != 0)
        goto cleanup;
    if (get_number(root, "train_samples", 0, 1e12, &num, path, err) != 0) goto cleanup;
    s->train_samples = (uint64_t)num;
    if (get_number(root, "test_samples", 0, 1e12, &num, path, err) != 0) goto cleanup;
    s->test_samples = (uint64_t)num;
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "cache_layer");
    if (cJSON_IsNull(cl)) {
        s->cache_layer = FF_RUN_NO_CACHE;
    } else {
        if (get_number(root, "cache_layer", 0, 4096, &num, path, err) != 0) goto cleanup;
        s->cache_layer = (uint32_t)num;
    }
    s->finished = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "finished"));
    if (get_hex64(root, "weights_fnv1a64", &s->weights_hash, path, err) != 0) goto cleanup;
    if (get_number(root, "hashed_layers", 0, 4096, &num, path, err) != 0) goto cleanup;
    s->hashed_layers = (uint32_t)num;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (!cJSON_IsObject(cfg)) {
        ff_error_set(err, "%s: field \"config\" missing", path);
        goto cleanup;
    }
    ff_config_t *c = &s->config;
    ff_config_defaults(c);
    if (get_number(cfg, "layers", 1, 4096, &num, path, err) != 0) goto cleanup;
    c->layers = s->layers = (uint32_t)num;
    if (get_number(cfg, "hidden", 1, 1 << 20, &num, path, err) != 0) goto cleanup;
    c->hidden = (uint32_t)num;
    if (get_number(cfg, "epochs", 1, 1e6, &num, path, err) != 0) goto cleanup;
    c->epochs = (uint32_t)num;
    if (get_number(cfg, "batch", 1, 1 << 24, &num, path, err) != 0) goto cleanup;
    c->batch = (uint32_t)num;
    if (get_number(cfg, "lr", 0, 10, &c->lr, path, err) != 0) goto cleanup;
    if (get_number(cfg, "theta", -1e30, 1e30, &c->theta, path, err) != 0) goto cleanup;
    if (get_string(cfg, "seed", &str, path, err) != 0) goto cleanup;
    c->seed = strtoull(str, NULL, 10);
    if (get_string(cfg, "label", &str, path, err) != 0) goto cleanup;
    c->label = strcmp(str, "overlay") == 0 ? FF_LABEL_OVERLAY : FF_LABEL_CONCAT;
    if (get_string(cfg, "goodness", &str, path, err) != 0) goto cleanup;
    c->goodness = strcmp(str, "sum") == 0 ? FF_GOODNESS_SUM : FF_GOODNESS_MEAN;
    if (get_number(cfg, "train_limit", 0, 1e12, &num, path, err) != 0) goto cleanup;
    c->train_limit = (uint64_t)num;
    if (get_number(cfg, "test_limit", 0, 1e12, &num, path, err) != 0) goto cleanup;
    c->test_limit = (uint64_t)num;
    if (get_number(cfg, "threads", 1, 1024, &num, path, err) != 0) goto cleanup;
    c->threads = (int)num;
    if (get_string(cfg, "data", &str, path, err) != 0) goto cleanup;
    snprintf(c->data_dir, sizeof c->data_dir, "%s", str);
    if (read_recipe_config(cfg, c, path, err) != 0) goto cleanup;
    if (s->cache_layer != FF_RUN_NO_CACHE && s->cache_layer >= s->layers) {
        ff_error_set(err, "%s: field \"cache_layer\" is %u, expected below %u", path,
                     s->cache_layer, s->layers);
        goto cleanup;
    }
    rc = 0;
    goto cleanup;
io_error:
    ff_error_set(err, "%s: cannot read: %s", path, strerror(errno));
cleanup:
    cJSON_Delete(root);
    free(text);
    fclose(f);
    return rc;
}

int ff_run_check_resume(const ff_run_state_t *saved, const ff_config_t *cfg,
                        uint64_t data_fingerprint, ff_error_t *err) {
    const ff_config_t *o = &saved->config;
    char was[64], now[64];
#define DIFFERS(flag, fmt, a, b)                                                          \
    do {                                                                                  \
        snprintf(was, sizeof was, fmt, a);                                                \
        snprintf(now, sizeof now, fmt, b);                                                \
        if (strcmp(was, now) != 0)                                                        \
            return ff_error_set(err,                                                      \
                                "cannot resume: %s was %s in this run, now %s (resume with " \
                                "the run's flags, or start a new --run)",                 \
                                flag, was, now);                                          \
    } while (0)
    if (strcmp(saved->mode, ff_mode_name(cfg->mode)) != 0)
        return ff_error_set(err, "cannot resume: the run was made by --mode %s, not %s",
                            saved->mode, ff_mode_name(cfg->mode));
    DIFFERS("--layers", "%u", o->layers, cfg->layers);
    DIFFERS("--hidden", "%u", o->hidden, cfg->hidden);
    DIFFERS("--epochs", "%u", o->epochs, cfg->epochs);
    DIFFERS("--batch", "%u", o->batch, cfg->batch);
    DIFFERS("--lr", "%.17g", o->lr, cfg->lr);
    DIFFERS("--theta", "%.17g", o->theta, cfg->theta);
    DIFFERS("--seed", "%llu", (unsigned long long)o->seed, (unsigned long long)cfg->seed);
    DIFFERS("--label", "%s", ff_label_name(o->label), ff_label_name(cfg->label));
    DIFFERS("--goodness", "%d", (int)o->goodness, (int)cfg->goodness);
    DIFFERS("--train-limit", "%llu", (unsigned long long)o->train_limit,
            (unsigned long long)cfg->train_limit);
    DIFFERS("--test-limit", "%llu", (unsigned long long)o->test_limit,
            (unsigned long long)cfg->test_limit);
    DIFFERS("--threads", "%d", o->threads, cfg->threads);
    DIFFERS("--label-scale", "%.17g", o->label_scale, cfg->label_scale);
    DIFFERS("--loss", "%s", ff_loss_name(o->loss), ff_loss_name(cfg->loss));
    DIFFERS("--symba-alpha", "%.17g", o->symba_alpha, cfg->symba_alpha);
    DIFFERS("--threshold", "%s", o->theta_per_unit ? "per-unit" : "fixed",
            cfg->theta_per_unit ? "per-unit" : "fixed");
    DIFFERS("--lr-schedule", "%s", o->lr_schedule ? "linear-decay" : "constant",
            cfg->lr_schedule ? "linear-decay" : "constant");
    DIFFERS("--lr-decay-start", "%.17g", o->lr_decay_start, cfg->lr_decay_start);
    DIFFERS("--weight-decay", "%.17g", o->weight_decay, cfg->weight_decay);
    DIFFERS("--jitter", "%u", o->jitter, cfg->jitter);
    DIFFERS("--eval", "%s", o->eval_softmax ? "softmax" : "goodness",
            cfg->eval_softmax ? "softmax" : "goodness");
    DIFFERS("--score-layers", "%s", o->score_all_layers ? "all" : "skip-first",
            cfg->score_all_layers ? "all" : "skip-first");
    DIFFERS("--head-epochs", "%u", o->head_epochs, cfg->head_epochs);
    DIFFERS("--head-lr", "%.17g", o->head_lr, cfg->head_lr);
    DIFFERS("--negatives", "%s", o->fresh_negatives ? "per-epoch" : "fixed",
            cfg->fresh_negatives ? "per-epoch" : "fixed");
#undef DIFFERS
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
    char path[4400];
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, ".tmp.") == NULL) continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
    }
    closedir(d);
}

void ff_run_remove_temporaries(const char *dir) {
    char path[4200];
    remove_temporaries_in(dir);
    if (ff_run_path(path, sizeof path, dir, "layers") == 0) remove_temporaries_in(path);
    if (ff_run_path(path, sizeof path, dir, "cache") == 0) remove_temporaries_in(path);
}
