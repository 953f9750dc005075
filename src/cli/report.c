/* report.c: result JSON via cJSON, and the atomic file write every writer of
 * ffstream uses (the rdbSave pattern: temp file, fsync, rename, fsync dir). */
#include "ffstream/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffstream/dense.h"
#include "ffstream/memstat.h"

/* JSON has no NaN: write null for figures that do not apply. */
static void add_number(cJSON *obj, const char *name, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(obj, name, v);
    else cJSON_AddNullToObject(obj, name);
}

char *ff_report_json(const ff_config_t *cfg, const ff_result_t *res) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    cJSON_AddStringToObject(root, "mode", ff_mode_name(cfg->mode));
    cJSON_AddNumberToObject(root, "layers", cfg->layers);
    cJSON_AddNumberToObject(root, "hidden", cfg->hidden);
    cJSON_AddNumberToObject(root, "epochs", cfg->epochs);
    cJSON_AddNumberToObject(root, "batch", cfg->batch);
    add_number(root, "lr", cfg->lr);
    add_number(root, "theta", cfg->theta);
    cJSON_AddNumberToObject(root, "seed", (double)cfg->seed);
    cJSON_AddStringToObject(root, "label", ff_label_name(cfg->label));
    cJSON_AddStringToObject(root, "goodness", cfg->goodness == FF_GOODNESS_SUM ? "sum" : "mean");
    cJSON_AddStringToObject(root, "data", cfg->data_dir);
    cJSON_AddNumberToObject(root, "threads", cfg->threads);
    cJSON_AddNumberToObject(root, "train_samples", (double)res->train_samples);
    cJSON_AddNumberToObject(root, "test_samples", (double)res->test_samples);
    add_number(root, "test_accuracy", res->test_accuracy);
    /* The recipe (issue 7): its options and both read-outs. */
    cJSON_AddStringToObject(root, "recipe", cfg->recipe);
    add_number(root, "label_scale", cfg->label_scale);
    cJSON_AddStringToObject(root, "loss", ff_loss_name(cfg->loss));
    add_number(root, "symba_alpha", cfg->symba_alpha);
    cJSON_AddStringToObject(root, "threshold", cfg->theta_per_unit ? "per-unit" : "fixed");
    cJSON_AddStringToObject(root, "lr_schedule",
                            cfg->lr_schedule == FF_LR_LINEAR_DECAY ? "linear-decay" : "constant");
    add_number(root, "lr_decay_start", cfg->lr_decay_start);
    add_number(root, "weight_decay", cfg->weight_decay);
    cJSON_AddNumberToObject(root, "jitter", cfg->jitter);
    cJSON_AddStringToObject(root, "eval", cfg->eval_softmax ? "softmax" : "goodness");
    cJSON_AddStringToObject(root, "score_layers", cfg->score_all_layers ? "all" : "skip-first");
    cJSON_AddStringToObject(root, "negatives", cfg->fresh_negatives ? "per-epoch" : "fixed");
    if (cfg->mode == FF_MODE_FF_MEM || cfg->mode == FF_MODE_FF_STREAM) {
        add_number(root, "goodness_accuracy", res->goodness_accuracy);
        if (cfg->eval_softmax) {
            cJSON_AddNumberToObject(root, "head_epochs", cfg->head_epochs);
            add_number(root, "head_lr", cfg->head_lr);
            add_number(root, "softmax_accuracy", res->softmax_accuracy);
            add_number(root, "head_seconds", res->head_seconds);
            char hex[17];
            snprintf(hex, sizeof hex, "%016llx", (unsigned long long)res->head_hash);
            cJSON_AddStringToObject(root, "head_fnv1a64", hex);
        }
    }
    add_number(root, "train_seconds", res->train_seconds);
    add_number(root, "eval_seconds", res->eval_seconds);
    cJSON_AddNumberToObject(root, "peak_rss_bytes", (double)res->peak_rss_bytes);
    add_number(root, "train_gflops_per_second",
               res->train_seconds > 0 ? res->train_flops / res->train_seconds / 1e9 : NAN);
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)res->weights_hash);
    cJSON_AddStringToObject(root, "weights_fnv1a64", hash);
    cJSON_AddStringToObject(root, "version", FF_VERSION);
    cJSON_AddStringToObject(root, "blas", ff_dense_blas_name());

    if (cfg->mode == FF_MODE_FF_STREAM) {
        cJSON_AddNumberToObject(root, "working_set_bytes", (double)res->working_set_bytes);
        cJSON *io = cJSON_AddObjectToObject(root, "io");
        if (io != NULL) {
            cJSON_AddStringToObject(io, "backend", res->io_backend ? res->io_backend : "none");
            cJSON_AddNumberToObject(io, "bytes_read", (double)res->io_bytes_read);
            cJSON_AddNumberToObject(io, "bytes_written", (double)res->io_bytes_written);
            add_number(io, "wait_seconds", res->io_wait_seconds);
        }
        cJSON_AddBoolToObject(root, "resumed", res->resumed);
        if (res->resumed) cJSON_AddNumberToObject(root, "resumed_at_layer", res->resumed_at_layer);
    }
    if (cfg->run_dir[0] != '\0') cJSON_AddStringToObject(root, "run", cfg->run_dir);
    cJSON *layers = cJSON_AddArrayToObject(root, "per_layer");
    for (uint32_t i = 0; layers != NULL && i < res->layer_count; i++) {
        const ff_layer_result_t *l = &res->per_layer[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) break;
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddNumberToObject(o, "in", l->in);
        cJSON_AddNumberToObject(o, "out", l->out);
        add_number(o, "loss", l->loss);
        add_number(o, "goodness_pos", l->goodness_pos);
        add_number(o, "goodness_neg", l->goodness_neg);
        add_number(o, "seconds", l->seconds);
        cJSON_AddItemToArray(layers, o);
    }
    if (res->epoch_count > 0) {
        cJSON *epochs = cJSON_AddArrayToObject(root, "per_epoch");
        for (uint32_t i = 0; epochs != NULL && i < res->epoch_count; i++) {
            cJSON *o = cJSON_CreateObject();
            if (o == NULL) break;
            add_number(o, "loss", res->per_epoch[i].loss);
            add_number(o, "seconds", res->per_epoch[i].seconds);
            cJSON_AddItemToArray(epochs, o);
        }
    }
    cJSON *mem = cJSON_AddObjectToObject(root, "memory");
    if (mem != NULL) {
        /* Peak bytes of each category and of their sum, from ff_mem_alloc. */
        for (int c = 0; c < FF_MEM_COUNT; c++)
            cJSON_AddNumberToObject(mem, ff_mem_category_name((ff_mem_category_t)c),
                                    (double)res->memory.peak[c]);
        cJSON_AddNumberToObject(mem, "peak_total", (double)res->memory.peak_total);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static int write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        ssize_t n = write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        size -= (size_t)n;
    }
    return 0;
}

int ff_write_file_atomic(const char *path, const void *data, size_t size, ff_error_t *err) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ff_error_set(err, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ff_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
    if (write_all(fd, data, size) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ff_error_set(err, "%s: write failed: %s", tmp, strerror(e));
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return ff_error_set(err, "%s: fsync failed: %s", tmp, strerror(e));
    }
    /* The data is on disk: drop its pages so a memory cgroup does not count
     * a checkpoint twice (once in the trainer, once in the page cache). */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return ff_error_set(err, "%s: close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ff_error_set(err, "%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some filesystems refuse fsync on directories */
        close(dfd);
    }
    return 0;
}

int ff_report_write(const char *path, const ff_config_t *cfg, const ff_result_t *res,
                    ff_error_t *err) {
    char *text = ff_report_json(cfg, res);
    if (text == NULL) return ff_error_set(err, "%s: out of memory building the result JSON", path);
    int rc = ff_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
