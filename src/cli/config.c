/* config.c: the option table and everything generated from it: parser,
 * usage, defaults, presets, fingerprint, JSON, resume comparison. */
#include "ffstream/config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffstream/cgroup.h"
#include "ffstream/data.h"
#include "ffstream/json.h"
#include "ffstream/tilefile.h"

/* Choice members are stored through an int: every enum used for one must be
 * int-sized. */
_Static_assert(sizeof(ff_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_label_mode_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_goodness_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_loss_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_lr_schedule_t) == sizeof(int), "enum size");
_Static_assert(sizeof(ff_recipe_t) == sizeof(int), "enum size");

static const char *const mode_names[] = {"ff-mem", "bp", "ff-stream", "ff-recurrent", NULL};
static const char *const label_names[] = {"concat", "overlay", NULL};
static const char *const goodness_names[] = {"mean", "sum", NULL};
static const char *const loss_names[] = {"softplus", "linear", "probabilistic", "symba", NULL};
static const char *const threshold_names[] = {"fixed", "per-unit", NULL};
static const char *const schedule_names[] = {"constant", "linear-decay", NULL};
static const char *const eval_names[] = {"goodness", "softmax", NULL};
static const char *const score_names[] = {"skip-first", "all", NULL};
static const char *const negatives_names[] = {"fixed", "per-epoch", NULL};
static const char *const io_names[] = {"auto", "uring", "pread", NULL};
static const char *const recipe_names[] = {"original", "best", NULL};
static const char *const keep_names[] = {"all", "last", NULL};
/* By ff_codec_t value. */
static const char *const codec_names[] = {"raw", "zstd", "zstd-shuffle", NULL};

#define FP (FF_OPT_FINGERPRINT | FF_OPT_RECORDED)
#define REC FF_OPT_RECORDED
#define RCP (FP | FF_OPT_PRESET)
#define AT(member) offsetof(ff_config_t, member)
#define NOLIMIT 0, 0, 0
#define SWITCH(flag, key, member, help) {flag, key, FF_OPT_SWITCH, AT(member), NOLIMIT, NULL, "0", 0, NULL, help}

/* The options, in --help order. Defaults are spelled as on the command
 * line and parsed like any value, so the default and the same value typed
 * by hand are the same double (0.03 is never the float 0.03f). */
static const ff_option_t options[] = {
    {"--mode", "mode", FF_OPT_CHOICE, AT(mode), NOLIMIT, mode_names, "ff-mem", REC, "MODE",
     "ff-stream (Forward-Forward, one layer in RAM, activations streamed from disk), ff-mem "
     "(Forward-Forward, all in RAM), bp (backprop) or ff-recurrent (recurrent FF, Hinton's "
     "top-down network, 8 time steps per batch)"},
    {"--run", "run", FF_OPT_PATH, AT(run_dir), NOLIMIT, NULL, "", 0, "DIR",
     "run directory: per-layer checkpoints, activation caches, run.json, result.json "
     "(required by ff-stream; ff-mem saves its final layers there)"},
    SWITCH("--resume", "resume", resume, "continue the run in --run DIR where it stopped"),
    {"--io", "io", FF_OPT_CHOICE, AT(io_backend), NOLIMIT, io_names, "auto", 0, "auto|uring|pread",
     "I/O backend of ff-stream (auto: io_uring if usable)"},
    {"--data", "data", FF_OPT_PATH, AT(data_dir), NOLIMIT, NULL, NULL, REC, "DIR",
     "directory of the MNIST-format IDX files [$FFSTREAM_DATA or " FF_DEFAULT_DATA_DIR "]"},
    {"--layers", "layers", FF_OPT_U32, AT(layers), 1, FF_MAX_LAYERS, 0, NULL, "2", FP, "N", "hidden layers"},
    {"--hidden", "hidden", FF_OPT_U32, AT(hidden), 1, 1 << 20, 0, NULL, "2000", RCP, "N",
     "units per hidden layer"},
    {"--epochs", "epochs", FF_OPT_U32, AT(epochs), 1, 1000000, 0, NULL, "1", RCP, "N",
     "FF: epochs per layer; bp and ff-recurrent: epochs of the whole network"},
    {"--batch", "batch", FF_OPT_U32, AT(batch), 1, 1 << 24, 0, NULL, "5000", RCP, "N",
     "rows per optimiser step; for FF half are positive and half negative (5000 = 2500 "
     "images)"},
    {"--lr", "lr", FF_OPT_NUMBER, AT(lr), 0, 10, 1, NULL, "0.03", RCP, "X", "Adam learning rate"},
    {"--theta", "theta", FF_OPT_NUMBER, AT(theta), -1e30, 1e30, 0, NULL, "2", RCP, "X",
     "FF goodness threshold"},
    {"--goodness", "goodness", FF_OPT_CHOICE, AT(goodness), NOLIMIT, goodness_names, "mean", RCP,
     "mean|sum", "FF goodness: mean or sum of squared activities"},
    {"--label", "label", FF_OPT_CHOICE, AT(label), NOLIMIT, label_names, "concat", RCP,
     "concat|overlay",
     "label embedding: one-hot appended (794 inputs) or written over the first 10 pixels "
     "(Hinton)"},
    {"--recipe", "recipe", FF_OPT_CHOICE, AT(recipe), NOLIMIT, recipe_names, "original", REC,
     "NAME",
     "preset applied before every other flag: original (the original experiment) or best "
     "(README \"Recipes\")"},
    {"--label-scale", "label_scale", FF_OPT_NUMBER, AT(label_scale), 0, 1e6, 1, NULL, "1", RCP,
     "X", "multiplies the label value (one-hot, or image max for overlay)"},
    {"--loss", "loss", FF_OPT_CHOICE, AT(loss), NOLIMIT, loss_names, "softplus", RCP, "NAME",
     "FF layer loss: softplus, linear, probabilistic or symba"},
    {"--symba-alpha", "symba_alpha", FF_OPT_NUMBER, AT(symba_alpha), 0, 1e6, 1, NULL, "4", RCP,
     "X", "symba's scale of the goodness difference"},
    {"--threshold", "threshold", FF_OPT_CHOICE, AT(theta_per_unit), NOLIMIT, threshold_names,
     "fixed", RCP, "fixed|per-unit", "threshold theta, or theta x the layer's units"},
    {"--lr-schedule", "lr_schedule", FF_OPT_CHOICE, AT(lr_schedule), NOLIMIT, schedule_names,
     "constant", RCP, "constant|linear-decay",
     "linear decay to 0 from --lr-decay-start of each layer's steps (and the head's)"},
    {"--lr-decay-start", "lr_decay_start", FF_OPT_NUMBER, AT(lr_decay_start), 0, 0.999, 0, NULL,
     "0.5", RCP, "F", "fraction of the steps before the decay starts"},
    {"--weight-decay", "weight_decay", FF_OPT_NUMBER, AT(weight_decay), 0, 1, 0, NULL, "0", RCP,
     "X", "Adam L2 weight decay of layers and head"},
    {"--jitter", "jitter", FF_OPT_U32, AT(jitter), 0, 4, 0, NULL, "0", RCP, "N",
     "shift layer 1's training images by up to +-N pixels"},
    {"--eval", "eval", FF_OPT_CHOICE, AT(eval_softmax), NOLIMIT, eval_names, "goodness", RCP,
     "goodness|softmax",
     "accuracy from every-label goodness, or from a linear softmax head on the normalised "
     "neutral-label activities (both are reported)"},
    {"--score-layers", "score_layers", FF_OPT_CHOICE, AT(score_all_layers), NOLIMIT, score_names,
     "skip-first", RCP, "skip-first|all",
     "layers in the goodness score and the head (skip-first: layers 2..N, or the only one)"},
    {"--head-epochs", "head_epochs", FF_OPT_U32, AT(head_epochs), 1, 100000, 0, NULL, "5", RCP,
     "N", "epochs of the softmax head"},
    {"--head-lr", "head_lr", FF_OPT_NUMBER, AT(head_lr), 0, 10, 1, NULL, "0.001", RCP, "X",
     "Adam learning rate of the softmax head"},
    {"--negatives", "negatives", FF_OPT_CHOICE, AT(fresh_negatives), NOLIMIT, negatives_names,
     "fixed", RCP, "fixed|per-epoch",
     "wrong labels drawn once, or anew every epoch for layer 1 (later layers train on cached "
     "rows)"},
    {"--fused-pass", "fused_pass", FF_OPT_SWITCH, AT(fused_pass), NOLIMIT, NULL, "0", FP, NULL,
     "FF: the next layer's inputs are the outputs of each layer's last training epoch (no "
     "separate pass; an approximation, see README \"Fused pass\")"},
    {"--seed", "seed", FF_OPT_U64, AT(seed), 0, 18446744073709551615.0, 0, NULL, "1", FP, "N",
     "seed of every random choice"},
    {"--train-limit", "train_limit", FF_OPT_U64, AT(train_limit), 0, 4294967295.0, 0, NULL, "0",
     FP, "N", "use the first N training images (0 = all)"},
    {"--test-limit", "test_limit", FF_OPT_U64, AT(test_limit), 0, 4294967295.0, 0, NULL, "0", FP,
     "N", "use the first N test images (0 = all)"},
    {"--threads", "threads", FF_OPT_U32, AT(threads), 1, 1024, 0, NULL, NULL, FP, "N",
     "threads of the products (BLAS) and of the element-wise work [online CPUs]"},
    {"--mem-budget", "mem_budget", FF_OPT_SIZE, AT(mem_budget), NOLIMIT, NULL, "auto", REC,
     "SIZE",
     "memory the run may use (K, M, G): ff-stream sizes its chunks to fit it, the other modes "
     "are refused before any work when they do not fit; auto: the limit of the cgroup the "
     "process runs in; none: no budget"},
    {"--piece-images", "piece_images", FF_OPT_U32, AT(piece_images), 0, 1 << 23, 0, NULL, "0",
     FP, "N",
     "images per training chunk; a batch's gradient is summed over its chunks (0: the whole "
     "batch, or fewer when --mem-budget needs it; must divide the batch's images)"},
    {"--tile-units", "tile_units", FF_OPT_U32, AT(tile_units), 0, 1 << 24, 0, NULL, "0", FP, "N",
     "ff-stream: train and store each layer in tiles of N output units, streamed from disk "
     "(a layer wider than memory; 0: whole layers, or tiles when --mem-budget needs them)"},
    {"--eval-images", "eval_images", FF_OPT_U32, AT(eval_images), 0, 1 << 23, 0, NULL, "0", FP,
     "N", "test images per evaluation chunk (0: batch/10, or fewer when --mem-budget needs it)"},
    {"--keep-optimizer", "keep_optimizer", FF_OPT_CHOICE, AT(keep_optimizer), NOLIMIT, keep_names,
     "all", REC, "all|last",
     "Adam moments in every finished layer's checkpoint, or only where training may still "
     "resume (finished layers are never retrained: last saves two thirds of their disk)"},
    {"--checkpoint-codec", "checkpoint_codec", FF_OPT_CHOICE, AT(checkpoint_codec), NOLIMIT,
     codec_names, "zstd-shuffle", REC, "raw|zstd|zstd-shuffle",
     "codec of the checkpoints' tensors"},
    SWITCH("--ignore-disk-space", "ignore_disk_space", ignore_disk_space,
           "start even when the run's filesystem has less free space than the plan needs (a "
           "full disk then stops the run, which resumes once there is room)"),
    SWITCH("--plan", "plan", plan,
           "print the memory model by category and the disk the run needs, then stop (with "
           "--json FILE, also as JSON)"),
    {"--json", "json", FF_OPT_PATH, AT(json_path), NOLIMIT, NULL, "", 0, "FILE",
     "write the result as JSON to FILE"},
    SWITCH("--progress", "progress", progress,
           "progress on stderr even when it is not a terminal"),
    SWITCH("--quiet", "quiet", quiet, "no progress and no summary"),
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

/* The largest whole number a JSON number (a double) holds exactly. */
#define EXACT_IN_JSON 9007199254740992.0

/* The presets beyond the defaults, as command-line fragments. */
static const char *const best_recipe[] = {
    "--hidden", "1000", "--epochs", "10", "--batch", "200", "--lr", "0.01", "--loss", "symba",
    "--symba-alpha", "128", "--label-scale", "20", "--negatives", "per-epoch", "--lr-schedule",
    "linear-decay", "--eval", "softmax", "--score-layers", "all", "--head-epochs", "30",
    "--head-lr", "0.1", NULL};

const ff_option_t *ff_options(size_t *count) {
    if (count != NULL) *count = OPTION_COUNT;
    return options;
}

const ff_option_t *ff_option_find(const char *name) {
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strcmp(name, options[i].flag) == 0 || strcmp(name, options[i].key) == 0)
            return &options[i];
    return NULL;
}

const char *ff_mode_name(ff_mode_t mode) {
    return (unsigned)mode < FF_MODE_COUNT ? mode_names[mode] : "unknown";
}

const char *ff_label_name(ff_label_mode_t mode) { return label_names[mode == FF_LABEL_OVERLAY]; }

const char *ff_loss_name(ff_loss_t loss) {
    return (unsigned)loss <= FF_LOSS_SYMBA ? loss_names[loss] : "unknown";
}

static void *member(ff_config_t *cfg, const ff_option_t *o) { return (char *)cfg + o->offset; }

static const void *cmember(const ff_config_t *cfg, const ff_option_t *o) {
    return (const char *)cfg + o->offset;
}

/* "a, b or c" */
static void list_choices(const ff_option_t *o, char *out, size_t cap) {
    out[0] = '\0';
    for (int i = 0; o->choices[i] != NULL; i++) {
        size_t n = strlen(out);
        const char *sep = i == 0 ? "" : o->choices[i + 1] == NULL ? " or " : ", ";
        snprintf(out + n, cap - n, "%s%s", sep, o->choices[i]);
    }
}

/* A whole-number option's bounds (the table holds them as doubles; 2^64
 * itself does not convert). */
static uint64_t whole_min(const ff_option_t *o) { return (uint64_t)o->min; }

static uint64_t whole_max(const ff_option_t *o) {
    return o->max >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)o->max;
}

static int parse_whole(const ff_option_t *o, const char *text, uint64_t *out, ff_error_t *err) {
    unsigned long long lo = whole_min(o), hi = whole_max(o);
    if (text[0] == '-' || text[0] == '+' || text[0] == ' ' || text[0] == '\0')
        return ff_error_set(err, "%s: '%s' is not a whole number from %llu to %llu", o->flag,
                            text, lo, hi);
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE || v > hi || v < lo) {
        if (*end == '\0')
            return ff_error_set(err, "%s: %s is out of range, expected %llu..%llu", o->flag, text,
                                lo, hi);
    }
    if (errno != 0 || end == text || *end != '\0')
        return ff_error_set(err, "%s: '%s' is not a whole number from %llu to %llu", o->flag,
                            text, lo, hi);
    *out = v;
    return 0;
}

/* "(0, 10]", "[0, 1]", or "a finite number" when the range is the
 * whole line. */
static void describe_range(const ff_option_t *o, char *out, size_t cap) {
    if (o->min <= -1e30 && o->max >= 1e30)
        snprintf(out, cap, "a finite number");
    else
        snprintf(out, cap, "a number in %c%g, %g]", o->min_exclusive ? '(' : '[', o->min, o->max);
}

int ff_config_set(ff_config_t *cfg, const ff_option_t *o, const char *text, ff_error_t *err) {
    if (text == NULL) return ff_error_set(err, "%s: missing value", o->flag);
    void *m = member(cfg, o);
    switch (o->kind) {
    case FF_OPT_SWITCH: {
        int one = strcmp(text, "0") != 0;
        memcpy(m, &one, sizeof one);
        return 0;
    }
    case FF_OPT_U32:
    case FF_OPT_U64: {
        uint64_t v = 0;
        if (parse_whole(o, text, &v, err) != 0) return -1;
        if (o->kind == FF_OPT_U32) {
            uint32_t v32 = (uint32_t)v;
            memcpy(m, &v32, sizeof v32);
        } else {
            memcpy(m, &v, sizeof v);
        }
        return 0;
    }
    case FF_OPT_NUMBER: {
        char range[96];
        describe_range(o, range, sizeof range);
        errno = 0;
        char *end = NULL;
        double v = strtod(text, &end);
        if (end == text || *end != '\0' || text[0] == ' ' || !isfinite(v) ||
            (errno == ERANGE && fabs(v) > 1.0))
            return ff_error_set(err, "%s: '%s' is not %s", o->flag, text, range);
        if (v < o->min || v > o->max || (o->min_exclusive && v == o->min))
            return ff_error_set(err, "%s: %s is out of range, expected %s", o->flag, text, range);
        memcpy(m, &v, sizeof v);
        return 0;
    }
    case FF_OPT_CHOICE:
        for (int i = 0; o->choices[i] != NULL; i++)
            if (strcmp(text, o->choices[i]) == 0) {
                memcpy(m, &i, sizeof i);
                return 0;
            }
        {
            char list[256];
            list_choices(o, list, sizeof list);
            return ff_error_set(err, "%s: '%s', expected %s", o->flag, text, list);
        }
    case FF_OPT_SIZE: {
        uint64_t v;
        if (strcmp(text, "auto") == 0) v = FF_BUDGET_AUTO;
        else if (strcmp(text, "none") == 0) v = 0;
        else {
            ff_error_t why;
            if (ff_parse_size(text, &v, &why) != 0 || v == 0)
                return ff_error_set(err, "%s: '%s', expected a size such as 900M or 4G, auto or "
                                    "none", o->flag, text);
        }
        memcpy(m, &v, sizeof v);
        return 0;
    }
    case FF_OPT_PATH:
        if (strlen(text) >= FF_PATH_MAX - 64)
            return ff_error_set(err, "%s: path too long (%zu bytes, at most %d)", o->flag,
                                strlen(text), FF_PATH_MAX - 65);
        snprintf(m, FF_PATH_MAX, "%s", text);
        return 0;
    }
    return ff_error_set(err, "%s: unknown option kind", o->flag);
}

void ff_config_format(const ff_config_t *cfg, const ff_option_t *o, char *out, size_t cap) {
    const void *m = cmember(cfg, o);
    int i;
    uint32_t u32;
    uint64_t u64;
    double d;
    switch (o->kind) {
    case FF_OPT_SWITCH:
        memcpy(&i, m, sizeof i);
        snprintf(out, cap, "%s", i < 0 ? "auto" : i ? "on" : "off");
        return;
    case FF_OPT_U32:
        memcpy(&u32, m, sizeof u32);
        snprintf(out, cap, "%u", u32);
        return;
    case FF_OPT_U64:
        memcpy(&u64, m, sizeof u64);
        snprintf(out, cap, "%llu", (unsigned long long)u64);
        return;
    case FF_OPT_NUMBER:
        memcpy(&d, m, sizeof d);
        /* The shortest spelling that reads back to the same double. */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(out, cap, "%.*g", digits, d);
            if (strtod(out, NULL) == d) break;
        }
        return;
    case FF_OPT_CHOICE: {
        memcpy(&i, m, sizeof i);
        int n = 0;
        while (o->choices[n] != NULL) n++;
        snprintf(out, cap, "%s", i >= 0 && i < n ? o->choices[i] : "unknown");
        return;
    }
    case FF_OPT_PATH:
        snprintf(out, cap, "%s", (const char *)m);
        return;
    case FF_OPT_SIZE:
        memcpy(&u64, m, sizeof u64);
        if (u64 == FF_BUDGET_AUTO) snprintf(out, cap, "auto");
        else if (u64 == 0) snprintf(out, cap, "none");
        else snprintf(out, cap, "%llu", (unsigned long long)u64);
        return;
    }
}

void ff_config_defaults(ff_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].fallback != NULL && ff_config_set(cfg, &options[i], options[i].fallback, NULL) != 0)
            abort(); /* a default the table itself refuses: a programming error */
    const char *env = getenv("FFSTREAM_DATA");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s",
             env != NULL && env[0] != '\0' ? env : FF_DEFAULT_DATA_DIR);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cpus > 0 ? (uint32_t)(cpus > 1024 ? 1024 : cpus) : 1;
    cfg->progress = -1;
}

int ff_config_apply_recipe(ff_config_t *cfg, const char *name, ff_error_t *err) {
    const ff_option_t *recipe = ff_option_find("--recipe");
    ff_config_t preset;
    if (ff_config_set(&preset, recipe, name, err) != 0) return -1;
    /* Every option a preset owns back to its default, then the preset's
     * fragment: a preset names every value it relies on, and leaves the
     * others (depth, seed, data limits, threads) alone. */
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        if ((o->flags & FF_OPT_PRESET) && o->fallback != NULL &&
            ff_config_set(cfg, o, o->fallback, err) != 0)
            return -1;
    }
    if (preset.recipe == FF_RECIPE_BEST)
        for (int i = 0; best_recipe[i] != NULL; i += 2)
            if (ff_config_set(cfg, ff_option_find(best_recipe[i]), best_recipe[i + 1], err) != 0)
                return -1;
    cfg->recipe = preset.recipe;
    return 0;
}

float ff_config_layer_theta(const ff_config_t *cfg, uint32_t units) {
    return (float)(cfg->theta_per_unit ? cfg->theta * (double)units : cfg->theta);
}

size_t ff_config_piece_images(const ff_config_t *cfg) {
    return cfg->piece_images > 0 ? cfg->piece_images : cfg->batch / 2;
}

uint32_t ff_config_tile_units(const ff_config_t *cfg) {
    return cfg->tile_units > 0 && cfg->tile_units < cfg->hidden ? cfg->tile_units : 0;
}

size_t ff_config_eval_images(const ff_config_t *cfg, uint64_t test_images) {
    size_t e = cfg->eval_images > 0 ? cfg->eval_images : cfg->batch / 10 > 0 ? cfg->batch / 10 : 1;
    return e > test_images ? (size_t)test_images : e;
}

void ff_config_usage(FILE *out) {
    fprintf(out,
            "usage: fftrain [options]\n"
            "Trains a fully connected network on an MNIST-format dataset and reports\n"
            "test accuracy, time and memory.\n\n");
    ff_config_t defaults;
    ff_config_defaults(&defaults);
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        char head[96], def[FF_PATH_MAX];
        snprintf(head, sizeof head, "  %s%s%s", o->flag, o->value_name ? " " : "",
                 o->value_name ? o->value_name : "");
        fprintf(out, "%-22s", head);
        if (strlen(head) >= 22) fprintf(out, "\n%-22s", "");
        /* Wrap the help at 78 columns. */
        const char *h = o->help;
        size_t col = 22;
        while (*h != '\0') {
            size_t word = strcspn(h, " ");
            if (col + word > 78 && col > 22) {
                fprintf(out, "\n%-22s", "");
                col = 22;
            }
            fprintf(out, "%.*s", (int)word, h);
            col += word;
            h += word;
            if (*h == ' ') {
                h++;
                if (col + 1 < 78) fputc(' ', out), col++;
            }
        }
        ff_config_format(&defaults, o, def, sizeof def);
        if (o->kind != FF_OPT_SWITCH && o->fallback != NULL && o->fallback[0] != '\0')
            fprintf(out, " [%s]", def);
        fputc('\n', out);
    }
    fprintf(out, "%-22s%s\n", "  --help", "this text");
}

int ff_config_parse(ff_config_t *cfg, int argc, char **argv, ff_error_t *err) {
    /* A preset first, so that the flags given with it override its values
     * wherever they stand on the command line. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--recipe") == 0) {
            if (i + 1 >= argc) return ff_error_set(err, "--recipe: missing value");
            if (ff_config_apply_recipe(cfg, argv[i + 1], err) != 0) return -1;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strncmp(a, "--", 2) != 0)
            return ff_error_set(err, "unexpected argument '%s' (see --help)", a);
        const ff_option_t *o = ff_option_find(a);
        if (o == NULL || strcmp(o->flag, a) != 0)
            return ff_error_set(err, "unknown flag '%s' (see --help)", a);
        if (o->kind == FF_OPT_SWITCH) {
            if (ff_config_set(cfg, o, "1", err) != 0) return -1;
            continue;
        }
        if (i + 1 >= argc) return ff_error_set(err, "%s: missing value", a);
        const char *v = argv[++i];
        if (o->offset == offsetof(ff_config_t, recipe)) continue; /* applied above */
        if (ff_config_set(cfg, o, v, err) != 0) return -1;
    }
    if (cfg->mode != FF_MODE_BP && cfg->batch < 2)
        return ff_error_set(err, "--batch: %u rows, FF needs at least 2 (one positive, one negative)",
                            cfg->batch);
    if (cfg->mode != FF_MODE_BP && cfg->batch % 2 != 0)
        return ff_error_set(err, "--batch: %u is odd, FF needs an even count (half positive, half negative)",
                            cfg->batch);
    if (cfg->mode != FF_MODE_BP && cfg->piece_images > 0 &&
        (cfg->piece_images > cfg->batch / 2 || (cfg->batch / 2) % cfg->piece_images != 0))
        return ff_error_set(err, "--piece-images: %u does not divide the %u images of a batch "
                            "(--batch %u)", cfg->piece_images, cfg->batch / 2, cfg->batch);
    /* A tile as wide as the layer is the whole layer: the same run, the
     * same fingerprint. */
    if (cfg->tile_units >= cfg->hidden) cfg->tile_units = 0;
    if (ff_config_tile_units(cfg) > 0 &&
        (cfg->hidden + cfg->tile_units - 1) / cfg->tile_units > FF_TILEFILE_MAX_TILES)
        return ff_error_set(err, "--tile-units: %u units per tile cut %u units into %u tiles, at "
                            "most %u (use wider tiles)", cfg->tile_units, cfg->hidden,
                            (cfg->hidden + cfg->tile_units - 1) / cfg->tile_units,
                            FF_TILEFILE_MAX_TILES);
    if (ff_config_tile_units(cfg) > 0 && cfg->mode != FF_MODE_FF_STREAM)
        return ff_error_set(err, "--tile-units: only ff-stream trains layers in tiles (--mode %s "
                            "holds whole layers)", ff_mode_name(cfg->mode));
    if (cfg->fused_pass && cfg->mode != FF_MODE_FF_STREAM && cfg->mode != FF_MODE_FF_MEM)
        return ff_error_set(err, "--fused-pass: only ff-mem and ff-stream train layer by layer "
                            "(--mode %s)", ff_mode_name(cfg->mode));
    if (cfg->fused_pass && ff_config_tile_units(cfg) > 0)
        return ff_error_set(err, "--fused-pass: not with --tile-units (a tiled layer's outputs "
                            "come from its own forward pass)");
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

/* A switch that is off is left out of the fingerprint, and a run.json
 * without it reads it as off: adding a switch changes no earlier run's
 * fingerprint and refuses no earlier run's resume. */
static int switch_off(const ff_config_t *cfg, const ff_option_t *o) {
    int on;
    if (o->kind != FF_OPT_SWITCH) return 0;
    memcpy(&on, cmember(cfg, o), sizeof on);
    return !on;
}

uint64_t ff_config_fingerprint(const ff_config_t *cfg) {
    uint64_t h = FF_FNV_OFFSET;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        if (!(o->flags & FF_OPT_FINGERPRINT) || switch_off(cfg, o)) continue;
        char value[FF_PATH_MAX];
        ff_config_format(cfg, o, value, sizeof value);
        h = ff_hash_bytes(h, o->key, strlen(o->key) + 1);
        h = ff_hash_bytes(h, value, strlen(value) + 1);
    }
    return h;
}

int ff_config_to_json(const ff_config_t *cfg, cJSON *obj) {
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        if (!(o->flags & FF_OPT_RECORDED)) continue;
        const void *m = cmember(cfg, o);
        char text[FF_PATH_MAX];
        cJSON *item = NULL;
        uint32_t u32;
        double d;
        int b;
        switch (o->kind) {
        case FF_OPT_U32:
            memcpy(&u32, m, sizeof u32);
            item = cJSON_AddNumberToObject(obj, o->key, u32);
            break;
        case FF_OPT_NUMBER:
            memcpy(&d, m, sizeof d);
            item = cJSON_AddNumberToObject(obj, o->key, d);
            break;
        case FF_OPT_SWITCH:
            memcpy(&b, m, sizeof b);
            item = cJSON_AddBoolToObject(obj, o->key, b);
            break;
        case FF_OPT_U64:
            if (o->max <= EXACT_IN_JSON) {
                uint64_t u64;
                memcpy(&u64, m, sizeof u64);
                item = cJSON_AddNumberToObject(obj, o->key, (double)u64);
                break;
            }
            /* JSON numbers stop being exact at 2^53: a value that can pass
             * it is a decimal string */
            __attribute__((fallthrough));
        default:
            ff_config_format(cfg, o, text, sizeof text);
            item = cJSON_AddStringToObject(obj, o->key, text);
            break;
        }
        if (item == NULL) return -1;
    }
    return 0;
}

int ff_config_from_json(ff_config_t *cfg, const cJSON *obj, const char *path, ff_error_t *err) {
    ff_json_ctx_t c = {.path = path, .section = "config"};
    const char *keys[OPTION_COUNT + 1];
    size_t nkeys = 0;
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        if (!(o->flags & FF_OPT_RECORDED)) continue;
        keys[nkeys++] = o->key;
        void *m = member(cfg, o);
        if (o->kind == FF_OPT_U32 || (o->kind == FF_OPT_U64 && o->max <= EXACT_IN_JSON)) {
            uint64_t v;
            if (ff_json_get_uint(&c, obj, o->key, whole_min(o), whole_max(o), &v, err))
                return -1;
            uint32_t v32 = (uint32_t)v;
            if (o->kind == FF_OPT_U32) memcpy(m, &v32, sizeof v32);
            else memcpy(m, &v, sizeof v);
        } else if (o->kind == FF_OPT_NUMBER) {
            double v;
            if (ff_json_get_number(&c, obj, o->key, o->min, o->max, &v, err) != 0) return -1;
            if (o->min_exclusive && v == o->min)
                return ff_error_set(err, "%s: field \"config.%s\" is %g, expected more than %g",
                                    path, o->key, v, o->min);
            memcpy(m, &v, sizeof v);
        } else if (o->kind == FF_OPT_SWITCH) {
            int v = 0;
            if (cJSON_GetObjectItemCaseSensitive(obj, o->key) != NULL &&
                ff_json_get_bool(&c, obj, o->key, &v, err) != 0)
                return -1;
            memcpy(m, &v, sizeof v);
        } else if (o->kind == FF_OPT_CHOICE) {
            int v;
            if (ff_json_get_choice(&c, obj, o->key, o->choices, &v, err) != 0) return -1;
            memcpy(m, &v, sizeof v);
        } else {
            const char *s;
            if (ff_json_get_string(&c, obj, o->key, &s, err) != 0) return -1;
            ff_error_t why;
            if (ff_config_set(cfg, o, s, &why) != 0)
                return ff_error_set(err, "%s: field \"config.%s\": %s", path, o->key, why.msg);
        }
    }
    keys[nkeys] = NULL;
    return ff_json_check_keys(&c, obj, keys, err);
}

int ff_config_compare(const ff_config_t *saved, const ff_config_t *now, ff_error_t *err) {
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const ff_option_t *o = &options[i];
        if (!(o->flags & FF_OPT_FINGERPRINT)) continue;
        char was[FF_PATH_MAX], is[FF_PATH_MAX];
        ff_config_format(saved, o, was, sizeof was);
        ff_config_format(now, o, is, sizeof is);
        if (strcmp(was, is) != 0)
            return ff_error_set(err,
                                "cannot resume: %s was %s in this run, now %s (resume with the "
                                "run's flags, or start a new --run)",
                                o->flag, was, is);
    }
    return 0;
}
