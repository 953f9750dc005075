/* report.c: the result JSON of a training run (cJSON), written atomically. */
#include "ffstream/report.h"
#include "ffstream/tiles.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/dense.h"
#include "ffstream/fileio.h"
#include "ffstream/memstat.h"
#include "ffstream/sysinfo.h"

/* The load and the date when the program started (ff_report_mark_start);
 * NAN and "" until then. */
static double start_load = NAN;
static char start_date[32];

void ff_report_mark_start(void) {
    start_load = ff_sysinfo_loadavg_1m();
    ff_sysinfo_utc_now(start_date, sizeof start_date);
}

/* JSON has no NaN: write null for figures that do not apply. */
static void add_number(cJSON *obj, const char *name, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(obj, name, v);
    else cJSON_AddNullToObject(obj, name);
}

/* The run against its plan and the machine: the plan's peaks and what was
 * measured (the largest per-layer figures), and the size of the network's
 * state against the machine's memory and the budget. */
static void add_scale(cJSON *root, const ff_config_t *cfg, const ff_result_t *res) {
    uint64_t rss = 0, cgroup = 0, disk = 0;
    int measured = 0;
    for (uint32_t i = 0; i < res->layer_count; i++) {
        const ff_layer_result_t *l = &res->per_layer[i];
        if (!l->measured) continue;
        measured = 1;
        if (l->peak_rss_bytes > rss) rss = l->peak_rss_bytes;
        if (l->cgroup_peak_bytes > cgroup) cgroup = l->cgroup_peak_bytes;
        if (l->disk_bytes > disk) disk = l->disk_bytes;
    }
    cJSON *plan = cJSON_AddObjectToObject(root, "plan");
    if (plan != NULL) {
        cJSON_AddNumberToObject(plan, "memory_peak_bytes", (double)res->plan_memory_bytes);
        cJSON_AddNumberToObject(plan, "disk_peak_bytes", (double)res->plan_disk_bytes);
        cJSON_AddNumberToObject(plan, "budget_bytes", (double)res->budget_bytes);
        cJSON_AddNumberToObject(plan, "accounted_peak_bytes", (double)res->memory.peak_total);
        if (cfg->run_dir[0] != '\0' && measured)
            cJSON_AddNumberToObject(plan, "measured_disk_peak_bytes", (double)disk);
        else
            cJSON_AddNullToObject(plan, "measured_disk_peak_bytes");
        if (measured) cJSON_AddNumberToObject(plan, "layer_rss_peak_bytes", (double)rss);
        else cJSON_AddNullToObject(plan, "layer_rss_peak_bytes");
        if (cgroup > 0) cJSON_AddNumberToObject(plan, "layer_cgroup_peak_bytes", (double)cgroup);
        else cJSON_AddNullToObject(plan, "layer_cgroup_peak_bytes");
    }
    cJSON *state = cJSON_AddObjectToObject(root, "state");
    if (state != NULL) {
        const uint64_t ram = ff_sysinfo_ram_bytes();
        cJSON_AddNumberToObject(state, "bytes", (double)res->state_bytes);
        cJSON_AddNumberToObject(state, "machine_ram_bytes", (double)ram);
        add_number(state, "to_ram", ram ? (double)res->state_bytes / (double)ram : NAN);
        add_number(state, "to_budget",
                   res->budget_bytes ? (double)res->state_bytes / (double)res->budget_bytes : NAN);
    }
}

/* One phase's wall time, matrix-product work and rate. */
static void add_phase(cJSON *phases, const char *name, double seconds, double flops) {
    cJSON *ph = cJSON_AddObjectToObject(phases, name);
    if (ph == NULL) return;
    add_number(ph, "seconds", seconds);
    add_number(ph, "gflop", flops / 1e9);
    add_number(ph, "gflops_per_second", seconds > 0 ? flops / seconds / 1e9 : NAN);
}

/* Where an FF run's time went: the training steps, the passes writing the
 * next layer's inputs (and the head's features), the evaluation passes. */
/* Tiled layers: the tiling and every stream over the tiles. */
static void add_tiles(cJSON *root, const ff_result_t *res) {
    cJSON *t = cJSON_AddObjectToObject(root, "tiles");
    if (t == NULL) return;
    cJSON_AddNumberToObject(t, "units", res->tile_units);
    cJSON_AddStringToObject(t, "io", res->tile_direct ? "O_DIRECT" : "buffered");
    cJSON *list = cJSON_AddArrayToObject(t, "passes");
    for (size_t i = 0; list != NULL && i < res->tile_pass_count; i++) {
        const ff_tile_pass_t *p = &res->tile_passes[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(list, o)) {
            cJSON_Delete(o);
            return;
        }
        cJSON_AddStringToObject(o, "kind", p->kind);
        cJSON_AddNumberToObject(o, "layer", p->layer + 1);
        cJSON_AddNumberToObject(o, "step", (double)p->step);
        cJSON_AddNumberToObject(o, "first_tile", p->first_tile);
        cJSON_AddNumberToObject(o, "tiles", p->tiles);
        add_number(o, "seconds", p->seconds);
        add_number(o, "io_wait_seconds", p->io_wait_seconds);
        add_number(o, "io_wait_fraction", p->seconds > 0 ? p->io_wait_seconds / p->seconds : NAN);
        cJSON_AddNumberToObject(o, "bytes_read", (double)p->bytes_read);
        cJSON_AddNumberToObject(o, "bytes_written", (double)p->bytes_written);
        add_number(o, "gflop", p->flops / 1e9);
    }
}

static void add_phases(cJSON *root, const ff_result_t *res) {
    cJSON *phases = cJSON_AddObjectToObject(root, "phases");
    if (phases == NULL) return;
    add_phase(phases, "step", res->step_seconds, res->step_flops);
    add_phase(phases, "next_layer_pass", res->pass_seconds, res->pass_flops);
    add_phase(phases, "evaluation", res->eval_seconds, res->eval_flops);
}

char *ff_report_json(const ff_config_t *cfg, const ff_result_t *res) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    /* The configuration, as run.json and ffinspect write it. */
    if (ff_config_to_json(cfg, root) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddNumberToObject(root, "train_samples", (double)res->train_samples);
    cJSON_AddNumberToObject(root, "test_samples", (double)res->test_samples);
    add_number(root, "test_accuracy", res->test_accuracy);
    if (cfg->mode == FF_MODE_FF_MEM || cfg->mode == FF_MODE_FF_STREAM) {
        add_number(root, "goodness_accuracy", res->goodness_accuracy);
        if (cfg->eval_softmax) {
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
    if (cfg->mode == FF_MODE_FF_MEM || cfg->mode == FF_MODE_FF_STREAM) add_phases(root, res);
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)res->weights_hash);
    cJSON_AddStringToObject(root, "weights_fnv1a64", hash);
    cJSON_AddStringToObject(root, "version", FF_VERSION);
    cJSON_AddStringToObject(root, "blas", ff_dense_blas_name());
    /* Which code ran, on what, and how busy the machine was. */
    cJSON *info = cJSON_AddObjectToObject(root, "run_info");
    if (info != NULL) {
        char kernel[512], now[32];
        ff_sysinfo_kernel(kernel, sizeof kernel);
        ff_sysinfo_utc_now(now, sizeof now);
        cJSON_AddStringToObject(info, "commit", ff_sysinfo_commit());
        cJSON_AddStringToObject(info, "build_type", ff_sysinfo_build_type());
        /* 0 asks OpenBLAS for its thread count without changing it. */
        cJSON_AddNumberToObject(info, "blas_threads", ff_dense_set_threads(0));
        cJSON_AddStringToObject(info, "kernel", kernel);
        if (start_date[0] != '\0') cJSON_AddStringToObject(info, "started", start_date);
        else cJSON_AddNullToObject(info, "started");
        cJSON_AddStringToObject(info, "finished", now);
        add_number(info, "load_average_1m_start", start_load);
        add_number(info, "load_average_1m_end", ff_sysinfo_loadavg_1m());
    }

    if (cfg->mode == FF_MODE_FF_STREAM) {
        cJSON_AddNumberToObject(root, "working_set_bytes", (double)res->working_set_bytes);
        cJSON *io = cJSON_AddObjectToObject(root, "io");
        if (io != NULL) {
            cJSON_AddStringToObject(io, "backend", res->io_backend ? res->io_backend : "none");
            cJSON_AddNumberToObject(io, "bytes_read", (double)res->io_bytes_read);
            cJSON_AddNumberToObject(io, "bytes_written", (double)res->io_bytes_written);
            add_number(io, "wait_seconds", res->io_wait_seconds);
        }
        if (res->tile_units > 0) add_tiles(root, res);
        cJSON_AddBoolToObject(root, "resumed", res->resumed);
        if (res->resumed) cJSON_AddNumberToObject(root, "resumed_at_layer", res->resumed_at_layer);
    }
    if (cfg->run_dir[0] != '\0') cJSON_AddStringToObject(root, "run", cfg->run_dir);
    add_scale(root, cfg, res);
    if (res->ranks > 1) {
        cJSON *ranks = cJSON_AddObjectToObject(root, "ranks");
        if (ranks != NULL) cJSON_AddNumberToObject(ranks, "count", res->ranks);
        cJSON *peaks = ranks != NULL ? cJSON_AddArrayToObject(ranks, "peak_rss_bytes") : NULL;
        for (uint32_t r = 0; peaks != NULL && res->rank_peak_rss != NULL && r < res->ranks; r++)
            cJSON_AddItemToArray(peaks, cJSON_CreateNumber((double)res->rank_peak_rss[r]));
    }
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
        if (l->measured) {
            cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)l->peak_rss_bytes);
            if (l->cgroup_peak_bytes > 0)
                cJSON_AddNumberToObject(o, "cgroup_peak_bytes", (double)l->cgroup_peak_bytes);
            else
                cJSON_AddNullToObject(o, "cgroup_peak_bytes");
            cJSON_AddNumberToObject(o, "bytes_read", (double)l->bytes_read);
            cJSON_AddNumberToObject(o, "bytes_written", (double)l->bytes_written);
            if (cfg->run_dir[0] != '\0') cJSON_AddNumberToObject(o, "disk_bytes", (double)l->disk_bytes);
        }
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

int ff_report_write(const char *path, const ff_config_t *cfg, const ff_result_t *res,
                    ff_error_t *err) {
    char *text = ff_report_json(cfg, res);
    if (text == NULL) return ff_error_set(err, "%s: out of memory building the result JSON", path);
    int rc = ff_fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
