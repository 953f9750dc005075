/* plan.c: the run's plan (see plan.h): budget, fitted chunks, memory and
 * disk models, and the checks against the machine. */
#include "ffstream/plan.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "ffstream/cgroup.h"
#include "ffstream/fileio.h"
#include "ffstream/sysinfo.h"

int ff_plan_make(ff_plan_t *plan, ff_config_t *cfg, const ff_dataset_t *train,
                 const ff_dataset_t *test, ff_error_t *err) {
    memset(plan, 0, sizeof *plan);
    plan->pixels = train->pixels;
    plan->train = train->count;
    plan->test = test->count;
    if (cfg->mem_budget == FF_BUDGET_AUTO) {
        char where[FF_PATH_MAX];
        if (ff_cgroup_own_limit(&plan->budget, where, sizeof where, err) != 0) return -1;
        if (plan->budget != 0)
            snprintf(plan->budget_from, sizeof plan->budget_from, "the limit of cgroup %.120s",
                     where);
        else
            snprintf(plan->budget_from, sizeof plan->budget_from, "none: no cgroup limit");
    } else {
        plan->budget = cfg->mem_budget;
        snprintf(plan->budget_from, sizeof plan->budget_from, "%s",
                 plan->budget ? "--mem-budget" : "none: --mem-budget none");
    }
    if (ff_memmodel_fit(cfg, plan->pixels, plan->train, plan->test, plan->budget,
                        plan->budget_from, err) != 0)
        return -1;
    plan->memory = ff_memmodel(cfg, plan->pixels, plan->train, plan->test);
    plan->disk = ff_diskmodel(cfg, plan->pixels, plan->train, plan->test);
    return 0;
}


void ff_plan_bytes(char out[32], uint64_t bytes) {
    static const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(out, 32, "%llu bytes", (unsigned long long)bytes);
    else snprintf(out, 32, "%.2f %s", v, unit[u]);
}

int ff_plan_check_disk(ff_plan_t *plan, const ff_config_t *cfg, ff_error_t *err) {
    if (cfg->run_dir[0] == '\0' || plan->disk.total == 0) return 0;
    /* The run directory, or the nearest parent that exists yet. */
    char dir[FF_PATH_MAX];
    if (ff_path_format(dir, err, "%s", cfg->run_dir) != 0) return -1;
    struct statvfs vfs;
    while (statvfs(dir, &vfs) != 0) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof dir, ".");
            if (statvfs(dir, &vfs) != 0)
                return ff_error_set(err, "%s: cannot read the free space: %s", cfg->run_dir,
                                    strerror(errno));
            break;
        }
        if (slash == dir) slash[1] = '\0';
        else *slash = '\0';
    }
    plan->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    plan->disk_present = ff_fileio_tree_bytes(cfg->run_dir);
    uint64_t need = plan->disk.total > plan->disk_present ? plan->disk.total - plan->disk_present : 0;
    if (need > plan->disk_free) {
        char n[32], t[32], c[32], k[32], f[32];
        ff_plan_bytes(n, need);
        ff_plan_bytes(t, plan->disk.total);
        ff_plan_bytes(c, plan->disk.caches);
        ff_plan_bytes(k, plan->disk.checkpoints + plan->disk.transient);
        ff_plan_bytes(f, plan->disk_free);
        return ff_error_set(err, "%s: the run needs %s more disk (%s in all: caches %s, "
                            "checkpoints %s%s), but its filesystem has %s free%s; "
                            "--ignore-disk-space starts anyway",
                            cfg->run_dir, n, t, c, k, plan->disk.exact ? "" : " at most, compressed",
                            f,
                            cfg->keep_optimizer == FF_KEEP_ALL
                                ? "; --keep-optimizer last saves two thirds of the checkpoints"
                                : "");
    }
    return 0;
}

static double mib(uint64_t bytes) { return (double)bytes / 1048576.0; }

void ff_plan_print(FILE *out, const ff_config_t *cfg, const ff_plan_t *plan) {
    const ff_memmodel_t *m = &plan->memory;
    const ff_diskmodel_t *d = &plan->disk;
    fprintf(out, "plan of a %s run: %u layers x %u units, %llu training and %llu test images\n",
            ff_mode_name(cfg->mode), cfg->layers, cfg->hidden, (unsigned long long)plan->train,
            (unsigned long long)plan->test);
    const uint64_t ram = ff_sysinfo_ram_bytes();
    const double state = 3.0 * sizeof(float) * (double)ff_memmodel_network_parameters(cfg, plan->pixels);
    char state_s[32];
    ff_plan_bytes(state_s, (uint64_t)state);
    fprintf(out, "network state   %s of weights and Adam moments", state_s);
    if (ram) fprintf(out, " (%.2fx this machine's RAM)", state / (double)ram);
    fputc('\n', out);
    if (plan->budget)
        fprintf(out, "memory budget   %.1f MiB (%s)\n", mib(plan->budget), plan->budget_from);
    else
        fprintf(out, "memory budget   none (%s)\n", plan->budget_from);
    if (ff_config_tile_units(cfg) > 0)
        fprintf(out, "tiles           %u output units per tile, %u tiles per layer, streamed "
                "from disk\n", ff_config_tile_units(cfg),
                (cfg->hidden + ff_config_tile_units(cfg) - 1) / ff_config_tile_units(cfg));
    if (cfg->mode == FF_MODE_FF_STREAM || cfg->mode == FF_MODE_FF_MEM)
        fprintf(out, "chunks          %zu images per training chunk (%u per batch), %zu per "
                "evaluation chunk\n", ff_config_piece_images(cfg), cfg->batch / 2,
                ff_config_eval_images(cfg, plan->test));
    fprintf(out, "memory model    %.1f MiB at its peak (%s), by category:\n", mib(m->total),
            m->phase);
    const struct {
        const char *name;
        uint64_t bytes;
    } rows[] = {{"weights", m->weights},       {"gradients", m->gradients},
                {"optimizer", m->optimizer},   {"activations", m->activations},
                {"io_buffers", m->io},         {"dataset", m->dataset},
                {"head", m->head}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        fprintf(out, "  %-13s %12.1f MiB\n", rows[i].name, mib(rows[i].bytes));
    fprintf(out, "  %-13s %12.1f MiB (the process itself, outside the model)\n", "reserve",
            mib(FF_MEMMODEL_RESERVE));
    if (d->total > 0) {
        fprintf(out, "disk            %.1f MiB at its peak%s:\n", mib(d->total),
                d->exact ? "" : " (at most: checkpoints are compressed)");
        fprintf(out, "  %-13s %12.1f MiB (a layer's inputs and its outputs)\n", "caches",
                mib(d->caches));
        if (d->kept) fprintf(out, "  %-13s %12.1f MiB (the head's features)\n", "kept", mib(d->kept));
        fprintf(out, "  %-13s %12.1f MiB (%s; %.1f MiB when the run is done)\n", "checkpoints",
                mib(d->checkpoints),
                cfg->keep_optimizer == FF_KEEP_ALL ? "every layer with its Adam state"
                                                   : "Adam state in the last layer only",
                mib(d->final_checkpoints));
        if (d->transient)
            fprintf(out, "  %-13s %12.1f MiB (a checkpoint while its successor is written)\n",
                    "transient", mib(d->transient));
        fprintf(out, "  %-13s %12.1f MiB (run.json, scores, result)\n", "other", mib(d->other));
        if (plan->disk_free)
            fprintf(out, "  free          %12.1f MiB where the run directory is\n",
                    mib(plan->disk_free));
    }
}

char *ff_plan_json(const ff_config_t *cfg, const ff_plan_t *plan) {
    cJSON *root = cJSON_CreateObject(), *mem = NULL, *disk = NULL;
    int ok = root != NULL && ff_config_to_json(cfg, root) == 0;
    ok = ok && cJSON_AddNumberToObject(root, "train_samples", (double)plan->train) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "test_samples", (double)plan->test) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "budget_bytes", (double)plan->budget) != NULL;
    /* The whole network's weights and Adam moments, against the machine. */
    const double state = 3.0 * sizeof(float) * (double)ff_memmodel_network_parameters(cfg, plan->pixels);
    ok = ok && cJSON_AddNumberToObject(root, "state_bytes", state) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "machine_ram_bytes", (double)ff_sysinfo_ram_bytes()) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "budget_from", plan->budget_from) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "tile_units_chosen", ff_config_tile_units(cfg)) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "piece_images_chosen",
                                       (double)ff_config_piece_images(cfg)) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "eval_images_chosen",
                                       (double)ff_config_eval_images(cfg, plan->test)) != NULL;
    ok = ok && (mem = cJSON_AddObjectToObject(root, "memory")) != NULL;
    const ff_memmodel_t *m = &plan->memory;
    ok = ok && cJSON_AddNumberToObject(mem, "weights", (double)m->weights) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "gradients", (double)m->gradients) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "optimizer", (double)m->optimizer) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "activations", (double)m->activations) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "io_buffers", (double)m->io) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "dataset", (double)m->dataset) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "head", (double)m->head) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "peak_total", (double)m->total) != NULL;
    ok = ok && cJSON_AddStringToObject(mem, "peak_phase", m->phase) != NULL;
    ok = ok && cJSON_AddNumberToObject(mem, "reserve", (double)FF_MEMMODEL_RESERVE) != NULL;
    ok = ok && (disk = cJSON_AddObjectToObject(root, "disk")) != NULL;
    const ff_diskmodel_t *d = &plan->disk;
    ok = ok && cJSON_AddNumberToObject(disk, "caches", (double)d->caches) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "kept", (double)d->kept) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "checkpoints", (double)d->checkpoints) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "transient", (double)d->transient) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "final_checkpoints", (double)d->final_checkpoints) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "other", (double)d->other) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "peak_total", (double)d->total) != NULL;
    ok = ok && cJSON_AddBoolToObject(disk, "exact", d->exact) != NULL;
    ok = ok && cJSON_AddNumberToObject(disk, "free", (double)plan->disk_free) != NULL;
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}
