/* config.c: fftrain's flags. Every value is range-checked here so trainers
 * can assume a sane configuration. */
#include "ffstream/config.h"

#include "ffstream/aio.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const mode_names[FF_MODE_COUNT] = {"ff-mem", "bp", "ff-stream",
                                                       "ff-recurrent"};

const char *ff_mode_name(ff_mode_t mode) {
    return (unsigned)mode < FF_MODE_COUNT ? mode_names[mode] : "unknown";
}

const char *ff_label_name(ff_label_mode_t mode) {
    return mode == FF_LABEL_OVERLAY ? "overlay" : "concat";
}

void ff_config_defaults(ff_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = FF_MODE_FF_MEM;
    const char *env = getenv("FFSTREAM_DATA");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s",
             env != NULL && env[0] != '\0' ? env : FF_DEFAULT_DATA_DIR);
    cfg->layers = 2;
    cfg->hidden = 2000;
    cfg->epochs = 1;
    cfg->batch = 5000;
    cfg->lr = 0.03f;
    cfg->theta = 2.0f;
    cfg->seed = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cpus > 0 ? (int)cpus : 1;
    cfg->label = FF_LABEL_CONCAT;
    cfg->goodness = FF_GOODNESS_MEAN;
    cfg->progress = -1;
    ff_config_apply_recipe(cfg, "original", NULL);
}

const char *ff_loss_name(ff_loss_t loss) {
    switch (loss) {
    case FF_LOSS_LINEAR: return "linear";
    case FF_LOSS_PROBABILISTIC: return "probabilistic";
    case FF_LOSS_SYMBA: return "symba";
    default: return "softplus";
    }
}

int ff_config_apply_recipe(ff_config_t *cfg, const char *name, ff_error_t *err) {
    if (strcmp(name, "original") == 0) {
        /* The original experiment: what the memory profile measures. */
        cfg->hidden = 2000;
        cfg->epochs = 1;
        cfg->batch = 5000;
        cfg->lr = 0.03f;
        cfg->theta = 2.0f;
        cfg->label = FF_LABEL_CONCAT;
        cfg->goodness = FF_GOODNESS_MEAN;
        cfg->label_scale = 1.0;
        cfg->loss = FF_LOSS_SOFTPLUS;
        cfg->symba_alpha = 4.0;
        cfg->theta_per_unit = 0;
        cfg->lr_schedule = FF_LR_CONSTANT;
        cfg->lr_decay_start = 0.5;
        cfg->weight_decay = 0.0;
        cfg->jitter = 0;
        cfg->eval_softmax = 0;
        cfg->score_all_layers = 0;
        cfg->head_epochs = 5;
        cfg->head_lr = 0.001;
        cfg->fresh_negatives = 0;
    } else if (strcmp(name, "best") == 0) {
        /* What the experiments of README "Recipes" found to learn best:
         * small batches, symba with a sharp alpha, a salient label, fresh
         * negatives for layer 1, linear decay, and the softmax read-out
         * over every layer. */
        ff_config_apply_recipe(cfg, "original", NULL);
        cfg->hidden = 1000;
        cfg->epochs = 10;
        cfg->batch = 200;
        cfg->lr = 0.01;
        cfg->loss = FF_LOSS_SYMBA;
        cfg->symba_alpha = 128.0;
        cfg->label_scale = 20.0;
        cfg->fresh_negatives = 1;
        cfg->lr_schedule = FF_LR_LINEAR_DECAY;
        cfg->eval_softmax = 1;
        cfg->score_all_layers = 1;
        cfg->head_epochs = 30;
        cfg->head_lr = 0.1;
    } else {
        return ff_error_set(err, "--recipe: '%s', expected original or best", name);
    }
    snprintf(cfg->recipe, sizeof cfg->recipe, "%s", name);
    return 0;
}

float ff_config_layer_theta(const ff_config_t *cfg, uint32_t units) {
    return (float)(cfg->theta_per_unit ? cfg->theta * (double)units : cfg->theta);
}

void ff_config_usage(FILE *out) {
    fprintf(out,
        "usage: fftrain [options]\n"
        "Trains a fully connected network on an MNIST-format dataset and reports\n"
        "test accuracy, time and memory.\n"
        "\n"
        "  --mode MODE         ff-stream (Forward-Forward, one layer in RAM, activations\n"
        "                      streamed from disk), ff-mem (Forward-Forward, all in RAM),\n"
        "                      bp (backprop) or ff-recurrent (recurrent FF, Hinton's\n"
        "                      top-down network, 8 time steps per batch) [ff-mem]\n"
        "  --run DIR           run directory: per-layer checkpoints, activation cache,\n"
        "                      run.json, result.json (required by ff-stream; ff-mem saves\n"
        "                      its final layers there)\n"
        "  --resume            continue the run in --run DIR where it stopped\n"
        "  --io auto|uring|pread  I/O backend of ff-stream [auto: io_uring if usable]\n"
        "  --data DIR          directory of the IDX files [$FFSTREAM_DATA or\n"
        "                      " FF_DEFAULT_DATA_DIR "]\n"
        "  --layers N          hidden layers [2]\n"
        "  --hidden N          units per hidden layer [2000]\n"
        "  --epochs N          FF: epochs per layer; bp: epochs [1]\n"
        "  --batch N           rows per optimiser step; for FF half are positive and\n"
        "                      half negative (5000 = 2500 images) [5000]\n"
        "  --lr X              Adam learning rate [0.03]\n"
        "  --theta X           FF goodness threshold [2.0]\n"
        "  --goodness mean|sum FF goodness: mean or sum of squared activities [mean]\n"
        "  --label concat|overlay  label embedding: one-hot appended (794 inputs) or\n"
        "                      written over the first 10 pixels (Hinton) [concat]\n"
        "  --recipe NAME       preset applied before the other flags: original (the\n"
        "                      original experiment) or best (README \"Recipes\") [original]\n"
        "  --label-scale X     multiplies the label value (one-hot, or image max for\n"
        "                      overlay) [1]\n"
        "  --loss NAME         FF layer loss: softplus, linear, probabilistic or symba\n"
        "                      [softplus]\n"
        "  --symba-alpha X     symba's scale of the goodness difference [4]\n"
        "  --threshold fixed|per-unit  threshold theta, or theta x the layer's units [fixed]\n"
        "  --lr-schedule constant|linear-decay  linear decay to 0 from --lr-decay-start\n"
        "                      of each layer's steps (and the head's) [constant]\n"
        "  --lr-decay-start F  fraction of the steps before the decay starts [0.5]\n"
        "  --weight-decay X    Adam L2 weight decay of layers and head [0]\n"
        "  --jitter N          shift layer 1's training images by up to +-N pixels [0]\n"
        "  --eval goodness|softmax  accuracy from every-label goodness, or from a linear\n"
        "                      softmax head on the normalised neutral-label activities\n"
        "                      (trained on detached activities; both are reported) [goodness]\n"
        "  --score-layers skip-first|all  layers in the goodness score and the head\n"
        "                      [skip-first: layers 2..N, or the only one]\n"
        "  --head-epochs N     epochs of the softmax head [5]\n"
        "  --head-lr X         Adam learning rate of the softmax head [0.001]\n"
        "  --negatives fixed|per-epoch  wrong labels drawn once, or drawn anew every\n"
        "                      epoch for layer 1 (later layers train on cached rows) [fixed]\n"
        "  --seed N            seed of every random choice [1]\n"
        "  --train-limit N     use the first N training images (0 = all) [0]\n"
        "  --test-limit N      use the first N test images (0 = all) [0]\n"
        "  --threads N         BLAS threads [online CPUs]\n"
        "  --json FILE         write the result as JSON to FILE\n"
        "  --progress          progress on stderr even when it is not a terminal\n"
        "  --quiet             no progress and no summary\n"
        "  --help              this text\n");
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     ff_error_t *err) {
    if (s == NULL) return ff_error_set(err, "%s: missing value", flag);
    errno = 0;
    char *end = NULL;
    if (s[0] == '-') return ff_error_set(err, "%s: '%s' is negative, expected %llu..%llu", flag, s,
                                         (unsigned long long)min, (unsigned long long)max);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return ff_error_set(err, "%s: '%s' is not a whole number", flag, s);
    if (v < min || v > max)
        return ff_error_set(err, "%s: %llu is out of range, expected %llu..%llu", flag, v,
                            (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

static int parse_float(const char *flag, const char *s, double min_exclusive, double max,
                       double *out, ff_error_t *err) {
    if (s == NULL) return ff_error_set(err, "%s: missing value", flag);
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return ff_error_set(err, "%s: '%s' is not a number", flag, s);
    if (!(v > min_exclusive) || v > max)
        return ff_error_set(err, "%s: %g is out of range, expected > %g and <= %g", flag, v,
                            min_exclusive, max);
    *out = v;
    return 0;
}

/* A number in [0, max]. @return 0 or -1 with err. */
static int parse_nonnegative(const char *flag, const char *s, double max, double *out,
                             ff_error_t *err) {
    double v;
    if (parse_float(flag, s, -INFINITY, max, &v, err) != 0) return -1;
    if (v < 0) return ff_error_set(err, "%s: %g is negative, expected 0..%g", flag, v, max);
    *out = v;
    return 0;
}

/* The recipe options of issue 7. @return 1 when a is one (consumed), 0 when
 * not, -1 with err on a bad value. */
static int parse_recipe_flag(ff_config_t *cfg, const char *a, const char *v, ff_error_t *err) {
    uint64_t u;
    double x = 0.0;
    if (strcmp(a, "--recipe") == 0) {
        return 1; /* applied before the other flags */
    } else if (strcmp(a, "--label-scale") == 0) {
        if (parse_float(a, v, 0.0, 1e6, &cfg->label_scale, err)) return -1;
    } else if (strcmp(a, "--loss") == 0) {
        int found = 0;
        for (int l = FF_LOSS_SOFTPLUS; l <= FF_LOSS_SYMBA; l++)
            if (strcmp(v, ff_loss_name((ff_loss_t)l)) == 0) { cfg->loss = (ff_loss_t)l; found = 1; }
        if (!found)
            return ff_error_set(err, "--loss: '%s', expected softplus, linear, probabilistic or symba", v);
    } else if (strcmp(a, "--symba-alpha") == 0) {
        if (parse_float(a, v, 0.0, 1e6, &cfg->symba_alpha, err)) return -1;
    } else if (strcmp(a, "--threshold") == 0) {
        if (strcmp(v, "fixed") == 0) cfg->theta_per_unit = 0;
        else if (strcmp(v, "per-unit") == 0) cfg->theta_per_unit = 1;
        else return ff_error_set(err, "--threshold: '%s', expected fixed or per-unit", v);
    } else if (strcmp(a, "--lr-schedule") == 0) {
        if (strcmp(v, "constant") == 0) cfg->lr_schedule = FF_LR_CONSTANT;
        else if (strcmp(v, "linear-decay") == 0) cfg->lr_schedule = FF_LR_LINEAR_DECAY;
        else return ff_error_set(err, "--lr-schedule: '%s', expected constant or linear-decay", v);
    } else if (strcmp(a, "--lr-decay-start") == 0) {
        if (parse_nonnegative(a, v, 0.999, &x, err)) return -1;
        cfg->lr_decay_start = x;
    } else if (strcmp(a, "--weight-decay") == 0) {
        if (parse_nonnegative(a, v, 1.0, &cfg->weight_decay, err)) return -1;
    } else if (strcmp(a, "--jitter") == 0) {
        if (parse_u64(a, v, 0, 4, &u, err)) return -1;
        cfg->jitter = (uint32_t)u;
    } else if (strcmp(a, "--eval") == 0) {
        if (strcmp(v, "goodness") == 0) cfg->eval_softmax = 0;
        else if (strcmp(v, "softmax") == 0) cfg->eval_softmax = 1;
        else return ff_error_set(err, "--eval: '%s', expected goodness or softmax", v);
    } else if (strcmp(a, "--score-layers") == 0) {
        if (strcmp(v, "skip-first") == 0) cfg->score_all_layers = 0;
        else if (strcmp(v, "all") == 0) cfg->score_all_layers = 1;
        else return ff_error_set(err, "--score-layers: '%s', expected skip-first or all", v);
    } else if (strcmp(a, "--head-epochs") == 0) {
        if (parse_u64(a, v, 1, 100000, &u, err)) return -1;
        cfg->head_epochs = (uint32_t)u;
    } else if (strcmp(a, "--head-lr") == 0) {
        if (parse_float(a, v, 0.0, 10.0, &cfg->head_lr, err)) return -1;
    } else if (strcmp(a, "--negatives") == 0) {
        if (strcmp(v, "fixed") == 0) cfg->fresh_negatives = 0;
        else if (strcmp(v, "per-epoch") == 0) cfg->fresh_negatives = 1;
        else return ff_error_set(err, "--negatives: '%s', expected fixed or per-epoch", v);
    } else {
        return 0;
    }
    return 1;
}

int ff_config_parse(ff_config_t *cfg, int argc, char **argv, ff_error_t *err) {
    /* A preset first, so that the flags given with it override its values
     * wherever they stand on the command line. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--recipe") == 0 && ff_config_apply_recipe(cfg, argv[i + 1], err) != 0)
            return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strcmp(a, "--quiet") == 0) { cfg->quiet = 1; continue; }
        if (strcmp(a, "--progress") == 0) { cfg->progress = 1; continue; }
        if (strcmp(a, "--resume") == 0) { cfg->resume = 1; continue; }
        /* Every other flag takes a value. */
        if (strncmp(a, "--", 2) != 0)
            return ff_error_set(err, "unexpected argument '%s' (see --help)", a);
        if (v == NULL) return ff_error_set(err, "%s: missing value", a);
        i++;
        int recipe_flag = parse_recipe_flag(cfg, a, v, err);
        if (recipe_flag < 0) return -1;
        if (recipe_flag > 0) continue;
        if (strcmp(a, "--mode") == 0) {
            int found = 0;
            for (int m = 0; m < FF_MODE_COUNT; m++)
                if (strcmp(v, mode_names[m]) == 0) { cfg->mode = (ff_mode_t)m; found = 1; }
            if (!found)
                return ff_error_set(err, "--mode: unknown mode '%s', expected ff-stream, ff-mem, bp or ff-recurrent", v);
        } else if (strcmp(a, "--data") == 0) {
            if (strlen(v) >= sizeof cfg->data_dir) return ff_error_set(err, "--data: path too long");
            snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", v);
        } else if (strcmp(a, "--layers") == 0) {
            if (parse_u64(a, v, 1, 4096, &u, err)) return -1;
            cfg->layers = (uint32_t)u;
        } else if (strcmp(a, "--hidden") == 0) {
            if (parse_u64(a, v, 1, 1u << 20, &u, err)) return -1;
            cfg->hidden = (uint32_t)u;
        } else if (strcmp(a, "--epochs") == 0) {
            if (parse_u64(a, v, 1, 1000000, &u, err)) return -1;
            cfg->epochs = (uint32_t)u;
        } else if (strcmp(a, "--batch") == 0) {
            if (parse_u64(a, v, 1, 1u << 24, &u, err)) return -1;
            cfg->batch = (uint32_t)u;
        } else if (strcmp(a, "--lr") == 0) {
            if (parse_float(a, v, 0.0, 10.0, &cfg->lr, err)) return -1;
        } else if (strcmp(a, "--theta") == 0) {
            if (parse_float(a, v, -1e30, 1e30, &cfg->theta, err)) return -1;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(a, v, 0, UINT64_MAX, &u, err)) return -1;
            cfg->seed = u;
        } else if (strcmp(a, "--train-limit") == 0) {
            if (parse_u64(a, v, 0, UINT32_MAX, &u, err)) return -1;
            cfg->train_limit = u;
        } else if (strcmp(a, "--test-limit") == 0) {
            if (parse_u64(a, v, 0, UINT32_MAX, &u, err)) return -1;
            cfg->test_limit = u;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_u64(a, v, 1, 1024, &u, err)) return -1;
            cfg->threads = (int)u;
        } else if (strcmp(a, "--label") == 0) {
            if (strcmp(v, "concat") == 0) cfg->label = FF_LABEL_CONCAT;
            else if (strcmp(v, "overlay") == 0) cfg->label = FF_LABEL_OVERLAY;
            else return ff_error_set(err, "--label: '%s', expected concat or overlay", v);
        } else if (strcmp(a, "--goodness") == 0) {
            if (strcmp(v, "mean") == 0) cfg->goodness = FF_GOODNESS_MEAN;
            else if (strcmp(v, "sum") == 0) cfg->goodness = FF_GOODNESS_SUM;
            else return ff_error_set(err, "--goodness: '%s', expected mean or sum", v);
        } else if (strcmp(a, "--run") == 0) {
            if (strlen(v) >= sizeof cfg->run_dir - 64) return ff_error_set(err, "--run: path too long");
            snprintf(cfg->run_dir, sizeof cfg->run_dir, "%s", v);
        } else if (strcmp(a, "--io") == 0) {
            ff_aio_backend_t b;
            if (ff_aio_parse_backend(v, &b) != 0)
                return ff_error_set(err, "--io: '%s', expected auto, uring or pread", v);
            cfg->io_backend = (int)b;
        } else if (strcmp(a, "--json") == 0) {
            if (strlen(v) >= sizeof cfg->json_path) return ff_error_set(err, "--json: path too long");
            snprintf(cfg->json_path, sizeof cfg->json_path, "%s", v);
        } else {
            return ff_error_set(err, "unknown flag '%s' (see --help)", a);
        }
    }
    if (cfg->mode != FF_MODE_BP && cfg->batch < 2)
        return ff_error_set(err, "--batch: %u rows, FF needs at least 2 (one positive, one negative)",
                            cfg->batch);
    if (cfg->mode != FF_MODE_BP && cfg->batch % 2 != 0)
        return ff_error_set(err, "--batch: %u is odd, FF needs an even count (half positive, half negative)",
                            cfg->batch);
    if (cfg->mode == FF_MODE_FF_STREAM && cfg->run_dir[0] == '\0')
        return ff_error_set(err, "--mode ff-stream needs --run DIR (where layers and activations live)");
    if (cfg->resume && cfg->run_dir[0] == '\0')
        return ff_error_set(err, "--resume needs --run DIR");
    if (cfg->resume && cfg->mode != FF_MODE_FF_STREAM)
        return ff_error_set(err, "--resume: only ff-stream runs can be resumed");
    if (cfg->mode == FF_MODE_BP && cfg->run_dir[0] != '\0')
        return ff_error_set(err, "--run: bp keeps no per-layer checkpoints");
    if (cfg->mode == FF_MODE_FF_RECURRENT && cfg->run_dir[0] != '\0')
        return ff_error_set(err, "--run: ff-recurrent keeps no per-layer checkpoints");
    if (cfg->train_limit > 0 && ff_config_check_data(cfg, cfg->train_limit, err) != 0) return -1;
    return 0;
}

uint64_t ff_config_fingerprint(const ff_config_t *cfg) {
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "layers=%u hidden=%u epochs=%u batch=%u lr=%.17g theta=%.17g seed=%llu "
                     "label=%s goodness=%d train_limit=%llu test_limit=%llu threads=%d",
                     cfg->layers, cfg->hidden, cfg->epochs, cfg->batch, cfg->lr, cfg->theta,
                     (unsigned long long)cfg->seed, ff_label_name(cfg->label), (int)cfg->goodness,
                     (unsigned long long)cfg->train_limit, (unsigned long long)cfg->test_limit,
                     cfg->threads);
    /* The recipe options, only when one differs from the original recipe so
     * that runs made before they existed keep their fingerprint. */
    ff_config_t original;
    memset(&original, 0, sizeof original);
    ff_config_apply_recipe(&original, "original", NULL);
    if (n > 0 && (size_t)n < sizeof text &&
        (cfg->label_scale != original.label_scale || cfg->loss != original.loss ||
         cfg->symba_alpha != original.symba_alpha || cfg->theta_per_unit ||
         cfg->lr_schedule != original.lr_schedule ||
         cfg->lr_decay_start != original.lr_decay_start || cfg->weight_decay != 0.0 ||
         cfg->jitter != 0 || cfg->eval_softmax || cfg->score_all_layers ||
         cfg->head_epochs != original.head_epochs || cfg->head_lr != original.head_lr ||
         cfg->fresh_negatives))
        n += snprintf(text + n, sizeof text - (size_t)n,
                      " label_scale=%.17g loss=%d alpha=%.17g per_unit=%d schedule=%d "
                      "decay_start=%.17g wd=%.17g jitter=%u eval=%d score_all=%d head=%u/%.17g "
                      "fresh_negatives=%d",
                      cfg->label_scale, (int)cfg->loss, cfg->symba_alpha, cfg->theta_per_unit,
                      (int)cfg->lr_schedule, cfg->lr_decay_start, cfg->weight_decay, cfg->jitter,
                      cfg->eval_softmax, cfg->score_all_layers, cfg->head_epochs, cfg->head_lr,
                      cfg->fresh_negatives);
    if (n < 0 || (size_t)n >= sizeof text) n = (int)strlen(text);
    return ff_hash_bytes(FF_FNV_OFFSET, text, (size_t)n);
}

int ff_config_check_data(const ff_config_t *cfg, uint64_t train_count, ff_error_t *err) {
    uint64_t images_per_step = cfg->mode == FF_MODE_BP ? cfg->batch : cfg->batch / 2;
    if (images_per_step > train_count)
        return ff_error_set(err,
                            "--batch: %u rows need %llu training images per step, but only %llu "
                            "are loaded (lower --batch or raise --train-limit)",
                            cfg->batch, (unsigned long long)images_per_step,
                            (unsigned long long)train_count);
    return 0;
}
