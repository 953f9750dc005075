/* ffinspect: looks into ffstream checkpoints: the table of a run's layers,
 * one layer file's header and tensor statistics, --verify, --diff, and
 * export to safetensors or .npy. The work is in src/inspect.c; this file
 * parses arguments and prints, for people (aligned, with units) or --json. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ffstream/inspect.h"
#include "ffstream/tilefile.h"

/* Exit statuses (also in --help). */
enum {
    EXIT_SOUND = 0, /* ok, sound, identical */
    EXIT_FOUND = 1, /* verification failed, the inputs differ, a view shows damage */
    EXIT_USAGE = 2, /* bad arguments */
    EXIT_IO = 3,    /* an input cannot be opened or read, an export cannot be written */
};

typedef enum { ACTION_VIEW, ACTION_VERIFY, ACTION_DIFF, ACTION_SAFETENSORS, ACTION_NPY } action_t;

typedef struct {
    action_t action;
    int actions; /* how many action flags were given */
    int json;
    int with_optimizer;
    int force;       /* an export may replace an existing output */
    const char *out; /* export target */
    const char *inputs[2];
    int input_count;
} options_t;

static void usage(FILE *out) {
    fputs("usage: ffinspect [--json] RUN_DIR|FILE.ffl\n"
          "       ffinspect --verify [--json] RUN_DIR|FILE.ffl\n"
          "       ffinspect --diff [--json] A B          (two runs or two layer files)\n"
          "       ffinspect --export-safetensors OUT [--with-optimizer] [--force] RUN_DIR|FILE.ffl\n"
          "       ffinspect --export-npy DIR [--with-optimizer] [--force] RUN_DIR|FILE.ffl\n"
          "\n"
          "Without an action: for a run directory, the table of its layers (shape,\n"
          "parameters, raw and stored bytes, compression, epochs, Adam step, status,\n"
          "checksum), which are tiled, and its configuration; for a layer file, its\n"
          "header (with the tiles of a tiled file) and, per tensor, shape, codec,\n"
          "sizes, min, max, mean, std, L2 norm, zeros, NaN, Inf.\n"
          "\n"
          "  --verify              check every checksum and structural invariant (every\n"
          "                        layer present, shapes chaining); names each bad file\n"
          "                        and tensor\n"
          "  --diff A B            per tensor: identical, or the max absolute and relative\n"
          "                        difference (relative: max |a-b| / max(|a|, FLT_MIN)\n"
          "                        element by element; with --json also scaled: max |a-b|\n"
          "                        / max |a| over the tensor, and the parameters' largest)\n"
          "  --export-safetensors OUT  one safetensors file, tensors layers.K.weight\n"
          "                        [out, in] and layers.K.bias (PyTorch nn.Linear)\n"
          "  --export-npy DIR      one .npy file per tensor: DIR/layers.K.weight.npy ...\n"
          "  --with-optimizer      export the Adam moments too (layers.K.adam_m.weight ...)\n"
          "  --force               replace an existing export (else refused); an export is\n"
          "                        written whole or not at all, from sound sources only\n"
          "  --json                machine-readable output on stdout, for every view\n"
          "  --help, --version\n"
          "\n"
          "Exit status: 0 ok (sound, identical); 1 verification failed, the inputs\n"
          "differ, or a view shows damage; 2 bad arguments; 3 an input cannot be read\n"
          "or an export cannot be written.\n",
          out);
}

/* @return 0 to run, 1 for --help or --version (already printed), -1 with
 * err on a bad argument. */
static int parse_args(int argc, char **argv, options_t *o, ff_error_t *err) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("ffinspect (ffstream) %s\n", FF_VERSION);
            return 1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--with-optimizer") == 0) {
            o->with_optimizer = 1;
        } else if (strcmp(a, "--force") == 0) {
            o->force = 1;
        } else if (strcmp(a, "--verify") == 0) {
            o->action = ACTION_VERIFY, o->actions++;
        } else if (strcmp(a, "--diff") == 0) {
            o->action = ACTION_DIFF, o->actions++;
        } else if (strcmp(a, "--export-safetensors") == 0 || strcmp(a, "--export-npy") == 0) {
            if (i + 1 >= argc) return ff_error_set(err, "%s: missing value", a);
            o->action = strcmp(a, "--export-npy") == 0 ? ACTION_NPY : ACTION_SAFETENSORS;
            o->actions++;
            o->out = argv[++i];
        } else if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++) {
                if (o->input_count == 2) return ff_error_set(err, "too many paths: '%s'", argv[i]);
                o->inputs[o->input_count++] = argv[i];
            }
        } else if (strncmp(a, "--", 2) == 0) {
            return ff_error_set(err, "unknown flag '%s' (see --help)", a);
        } else {
            if (o->input_count == 2) return ff_error_set(err, "too many paths: '%s'", a);
            o->inputs[o->input_count++] = a;
        }
    }
    if (o->actions > 1)
        return ff_error_set(err,
                            "give one of --verify, --diff, --export-safetensors, --export-npy");
    int want = o->action == ACTION_DIFF ? 2 : 1;
    if (o->input_count != want)
        return ff_error_set(err, "%s needs %s, got %d path(s)",
                            o->action == ACTION_DIFF ? "--diff" : "ffinspect",
                            want == 2 ? "two paths (runs or layer files)"
                                      : "one path (a run directory or a layer file)",
                            o->input_count);
    if (o->with_optimizer && o->action != ACTION_SAFETENSORS && o->action != ACTION_NPY)
        return ff_error_set(err, "--with-optimizer goes with --export-safetensors or --export-npy");
    if (o->force && o->action != ACTION_SAFETENSORS && o->action != ACTION_NPY)
        return ff_error_set(err, "--force goes with --export-safetensors or --export-npy");
    return 0;
}

/* ---- formatting ---- */

static double mib(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

static double ratio(uint64_t raw, uint64_t stored) {
    return stored > 0 ? (double)raw / (double)stored : NAN;
}

static const char *shape_text(char *buf, size_t cap, uint32_t ndim, const uint64_t *shape) {
    if (ndim == 2)
        snprintf(buf, cap, "[%" PRIu64 ", %" PRIu64 "]", shape[0], shape[1]);
    else
        snprintf(buf, cap, "[%" PRIu64 "]", shape[0]);
    return buf;
}

/* A message without the leading "<path>: " its file column already shows. */
static const char *without_path(const char *message, const char *path) {
    size_t n = strlen(path);
    if (strncmp(message, path, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
        return message + n + 2;
    return message;
}

static void print_json(cJSON *root) {
    char *text = root != NULL ? cJSON_Print(root) : NULL;
    if (text == NULL) {
        fprintf(stderr, "ffinspect: out of memory building the JSON output\n");
    } else {
        puts(text);
        cJSON_free(text);
    }
    cJSON_Delete(root);
}

/* A double with the fewest of 15..17 digits that read back to the same bits
 * (cJSON's own printing only round-trips to within an ulp), or null for NaN
 * and infinities, which JSON lacks. */
static void json_number(cJSON *o, const char *name, double v) {
    if (!isfinite(v)) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v) break;
    }
    cJSON_AddRawToObject(o, name, text);
}

/* Exact digits, even past 2^31 (cJSON would use exponent form). */
static void json_uint(cJSON *o, const char *name, uint64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    cJSON_AddRawToObject(o, name, text);
}

static void json_hex(cJSON *o, const char *name, uint64_t v, int digits) {
    char text[24];
    snprintf(text, sizeof text, "%0*" PRIx64, digits, v);
    cJSON_AddStringToObject(o, name, text);
}

static cJSON *json_shape(uint32_t ndim, const uint64_t *shape) {
    cJSON *a = cJSON_CreateArray();
    for (uint32_t d = 0; a != NULL && d < ndim; d++) {
        char text[24];
        snprintf(text, sizeof text, "%" PRIu64, shape[d]);
        cJSON_AddItemToArray(a, cJSON_CreateRaw(text));
    }
    return a;
}

/* A tiled layer's geometry (tilefile.h), which its header's in, out and
 * units fix. @return 1 for a tiled file, 0 for a whole-tensor one. */
static int tiling_of(const ff_layerfile_info_t *i, ff_tilefile_t *g) {
    ff_error_t err;
    return i->tile_count > 0 && ff_tilefile_geometry(g, i->in, i->out, i->tile_units, &err) == 0;
}

/* "3 tiles of 70 output units (the last 60)". */
static const char *tiling_text(char *buf, size_t cap, const ff_tilefile_t *g) {
    uint32_t last = ff_tilefile_rows(g, g->count - 1);
    int n = snprintf(buf, cap, "%u tile%s of %u output unit%s", g->count, g->count == 1 ? "" : "s",
                     g->units, g->units == 1 ? "" : "s");
    if (last != g->units && n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (the last %u)", last);
    return buf;
}

/* "tiles": the geometry of a tiled layer, null for a whole-tensor file. */
static void json_tiles(cJSON *o, const ff_layerfile_info_t *i) {
    ff_tilefile_t g;
    if (!tiling_of(i, &g)) {
        cJSON_AddNullToObject(o, "tiles");
        return;
    }
    cJSON *t = cJSON_AddObjectToObject(o, "tiles");
    if (t == NULL) return;
    cJSON_AddNumberToObject(t, "units", g.units);
    cJSON_AddNumberToObject(t, "count", g.count);
    cJSON_AddNumberToObject(t, "last_units", ff_tilefile_rows(&g, g.count - 1));
    json_uint(t, "region_bytes", g.region_bytes);
    json_uint(t, "frame_bytes", g.frame_bytes);
    json_uint(t, "data_offset", g.data_offset);
}

static void json_problems(cJSON *root, const ff_inspect_report_t *r) {
    cJSON *list = cJSON_AddArrayToObject(root, "problems");
    for (size_t i = 0; list != NULL && i < r->count; i++) {
        const ff_inspect_problem_t *p = &r->problems[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) break;
        cJSON_AddStringToObject(o, "kind", p->kind == FF_INSPECT_PROBLEM_FILE ? "file" : "run");
        cJSON_AddStringToObject(o, "file", p->file);
        if (p->layer >= 0)
            cJSON_AddNumberToObject(o, "layer", (double)p->layer);
        else
            cJSON_AddNullToObject(o, "layer");
        if (p->tensor[0] != '\0')
            cJSON_AddStringToObject(o, "tensor", p->tensor);
        else
            cJSON_AddNullToObject(o, "tensor");
        cJSON_AddStringToObject(o, "message", p->message);
        cJSON_AddItemToArray(list, o);
    }
}

/* ---- the run table ---- */

/* The configuration as every writer of ffstream writes it (config.h). */
static void json_config(cJSON *o, const ff_config_t *c) { ff_config_to_json(c, o); }

/* Every recorded option, one per line, "  key  value", from the table. */
static void print_config_human(const ff_config_t *c) {
    size_t count;
    const ff_option_t *options = ff_options(&count);
    printf("config        ");
    int col = 14, first = 1;
    for (size_t i = 0; i < count; i++) {
        if (!(options[i].flags & FF_OPT_RECORDED)) continue;
        char value[FF_PATH_MAX], item[FF_PATH_MAX + 64];
        ff_config_format(c, &options[i], value, sizeof value);
        int n = snprintf(item, sizeof item, "%s%s %s", first ? "" : ", ", options[i].key, value);
        if (!first && col + n > 96) {
            printf(",\n              ");
            col = 14;
            n = snprintf(item, sizeof item, "%s %s", options[i].key, value);
        }
        printf("%s", item);
        col += n;
        first = 0;
    }
    printf("\n");
}

/* The first problem with layer k's file itself, or NULL. */
static const ff_inspect_problem_t *file_problem(const ff_inspect_report_t *r, uint32_t k) {
    for (size_t i = 0; i < r->count; i++)
        if (r->problems[i].kind == FF_INSPECT_PROBLEM_FILE && r->problems[i].layer == (int64_t)k)
            return &r->problems[i];
    return NULL;
}

static void print_run_human(const ff_inspect_run_t *run, const ff_inspect_report_t *r) {
    const ff_run_state_t *s = &run->state;
    const ff_config_t *c = &s->config;
    printf("run           %s\n", run->dir);
    printf("mode          %s, %s\n", ff_mode_name(c->mode),
           s->finished ? "finished" : "not finished");
    print_config_human(c);
    printf("data          %s: %" PRIu64 " training and %" PRIu64 " test samples\n", c->data_dir,
           s->train_samples, s->test_samples);
    printf("fingerprints  config %016" PRIx64 ", data %016" PRIx64 "\n", s->config_fingerprint,
           s->data_fingerprint);
    printf("weights hash  %016" PRIx64 " (FNV-1a over %u layer(s))\n", s->weights_hash,
           s->hashed_layers);
    if (s->cache_layer == FF_RUN_NO_CACHE)
        printf("caches        none\n");
    else
        printf("caches        inputs of layer %u complete\n", s->cache_layer);
    printf("disk          %.2f MiB: checkpoints %.2f, caches %.2f, other %.2f\n",
           mib(run->disk_layers + run->disk_caches + run->disk_other), mib(run->disk_layers),
           mib(run->disk_caches), mib(run->disk_other));
    printf("\n%5s  %-14s %10s %12s %12s %7s %7s %9s %7s  %-11s  %s\n", "layer", "shape",
           "parameters", "raw bytes", "stored bytes", "ratio", "epochs", "Adam step", "moments",
           "status", "checksum");
    uint64_t params = 0, raw = 0, stored = 0;
    for (uint32_t k = 0; k < c->layers; k++) {
        const ff_inspect_run_layer_t *l = &run->layers[k];
        const ff_inspect_problem_t *p = file_problem(r, k);
        char shape[48], epochs[32], checksum[FF_ERROR_MSG_MAX + 8];
        const char *status = ff_inspect_status_name(l->status);
        if (p != NULL)
            snprintf(checksum, sizeof checksum, "BAD: %s", without_path(p->message, l->path));
        else
            snprintf(checksum, sizeof checksum, "%s", l->has_info ? "ok" : "-");
        if (!l->has_info) {
            printf("%5u  %-14s %10s %12s %12s %7s %7s %9s %7s  %-11s  %s\n", k, "-", "-", "-", "-",
                   "-", "-", "-", "-", status, checksum);
            continue;
        }
        const ff_layerfile_info_t *i = &l->info;
        uint64_t count = (uint64_t)i->in * i->out + i->out;
        params += count;
        raw += l->raw_bytes;
        stored += l->stored_bytes;
        snprintf(shape, sizeof shape, "%u -> %u", i->in, i->out);
        snprintf(epochs, sizeof epochs, "%u/%u", i->meta.epochs_done, i->meta.epochs_total);
        printf("%5u  %-14s %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %6.2fx %7s %9" PRId64
               " %7s  %-11s  %s\n",
               k, shape, count, l->raw_bytes, l->stored_bytes, ratio(l->raw_bytes, l->stored_bytes),
               epochs, i->adam_step, i->has_optimizer ? "yes" : "no", status, checksum);
    }
    printf("%5s  %-14s %10" PRIu64 " %12" PRIu64 " %12" PRIu64 " %6.2fx\n", "total", "", params,
           raw, stored, ratio(raw, stored));
    printf("\nraw bytes: every tensor decoded (weights, bias, Adam moments): %.2f MiB; "
           "stored on disk: %.2f MiB\n",
           mib(raw), mib(stored));
    int tiled = 0;
    for (uint32_t k = 0; k < c->layers; k++) {
        ff_tilefile_t g;
        char text[96];
        if (!run->layers[k].has_info || !tiling_of(&run->layers[k].info, &g)) continue;
        if (tiled++ == 0)
            printf("\ntiled layers (format version 3: weights and Adam state in tiles of output "
                   "units):\n");
        printf("  layer %u: %s\n", k, tiling_text(text, sizeof text, &g));
    }
    int run_problems = 0;
    for (size_t i = 0; i < r->count; i++) {
        if (r->problems[i].kind != FF_INSPECT_PROBLEM_RUN) continue;
        if (run_problems++ == 0) printf("\nproblems:\n");
        printf("  %s\n", r->problems[i].message);
    }
}

static void print_run_json(const ff_inspect_run_t *run, const ff_inspect_report_t *r) {
    const ff_run_state_t *s = &run->state;
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) {
        print_json(NULL);
        return;
    }
    cJSON_AddStringToObject(root, "run", run->dir);
    cJSON_AddStringToObject(root, "mode", ff_mode_name(s->config.mode));
    cJSON_AddBoolToObject(root, "finished", s->finished);
    if (s->cache_layer == FF_RUN_NO_CACHE)
        cJSON_AddNullToObject(root, "cache_layer");
    else
        cJSON_AddNumberToObject(root, "cache_layer", s->cache_layer);
    json_uint(root, "train_samples", s->train_samples);
    json_uint(root, "test_samples", s->test_samples);
    json_hex(root, "config_fingerprint", s->config_fingerprint, 16);
    json_hex(root, "data_fingerprint", s->data_fingerprint, 16);
    json_hex(root, "weights_fnv1a64", s->weights_hash, 16);
    cJSON_AddNumberToObject(root, "hashed_layers", s->hashed_layers);
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    if (cfg != NULL) json_config(cfg, &s->config);
    cJSON *disk = cJSON_AddObjectToObject(root, "disk");
    if (disk != NULL) {
        json_uint(disk, "checkpoints", run->disk_layers);
        json_uint(disk, "caches", run->disk_caches);
        json_uint(disk, "other", run->disk_other);
        json_uint(disk, "total", run->disk_layers + run->disk_caches + run->disk_other);
    }
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    uint64_t params = 0, raw = 0, stored = 0;
    for (uint32_t k = 0; layers != NULL && k < s->config.layers; k++) {
        const ff_inspect_run_layer_t *l = &run->layers[k];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) break;
        cJSON_AddItemToArray(layers, o);
        cJSON_AddNumberToObject(o, "index", k);
        cJSON_AddStringToObject(o, "file", l->path);
        cJSON_AddStringToObject(o, "status", ff_inspect_status_name(l->status));
        const ff_inspect_problem_t *p = file_problem(r, k);
        if (p != NULL) {
            char bad[FF_ERROR_MSG_MAX + 8];
            snprintf(bad, sizeof bad, "BAD: %s", without_path(p->message, l->path));
            cJSON_AddStringToObject(o, "checksum", bad);
        } else if (l->has_info) {
            cJSON_AddStringToObject(o, "checksum", "ok");
        } else {
            cJSON_AddNullToObject(o, "checksum");
        }
        if (!l->has_info) continue;
        const ff_layerfile_info_t *i = &l->info;
        uint64_t count = (uint64_t)i->in * i->out + i->out;
        params += count;
        raw += l->raw_bytes;
        stored += l->stored_bytes;
        cJSON_AddNumberToObject(o, "in", i->in);
        cJSON_AddNumberToObject(o, "out", i->out);
        cJSON_AddBoolToObject(o, "adam_moments", i->has_optimizer);
        json_uint(o, "parameters", count);
        json_uint(o, "raw_bytes", l->raw_bytes);
        json_uint(o, "stored_bytes", l->stored_bytes);
        json_number(o, "compression_ratio", ratio(l->raw_bytes, l->stored_bytes));
        cJSON_AddNumberToObject(o, "epochs_done", i->meta.epochs_done);
        cJSON_AddNumberToObject(o, "epochs_total", i->meta.epochs_total);
        cJSON_AddBoolToObject(o, "complete", i->meta.complete);
        json_uint(o, "adam_step", (uint64_t)i->adam_step);
        cJSON_AddBoolToObject(o, "has_optimizer", i->has_optimizer);
        json_tiles(o, i);
    }
    cJSON *totals = cJSON_AddObjectToObject(root, "totals");
    if (totals != NULL) {
        json_uint(totals, "parameters", params);
        json_uint(totals, "raw_bytes", raw);
        json_uint(totals, "stored_bytes", stored);
        json_number(totals, "compression_ratio", ratio(raw, stored));
    }
    cJSON_AddBoolToObject(root, "sound", r->count == 0);
    json_problems(root, r);
    print_json(root);
}

static int view_run(const char *dir, int json) {
    ff_error_t err;
    ff_inspect_report_t report = {0};
    ff_inspect_run_t run;
    if (ff_inspect_run_open(&run, dir, &err) != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        return EXIT_IO;
    }
    /* The checksum column comes from reading every tensor: a few MB/s of
     * zstd at worst, worth it to never show "ok" for an unread file. */
    int rc = EXIT_IO;
    if (ff_inspect_verify_run(dir, &report, &err) != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        goto cleanup;
    }
    if (json)
        print_run_json(&run, &report);
    else
        print_run_human(&run, &report);
    rc = report.count == 0 ? EXIT_SOUND : EXIT_FOUND;
cleanup:
    ff_inspect_report_free(&report);
    ff_inspect_run_free(&run);
    return rc;
}

/* ---- one layer file ---- */

static void print_file_human(const char *path, const ff_inspect_file_t *f) {
    const ff_layerfile_info_t *i = &f->info;
    const ff_layerfile_meta_t *m = &i->meta;
    uint64_t params = (uint64_t)i->in * i->out + i->out;
    printf("file          %s\n", path);
    printf("size          %" PRIu64 " bytes (%.2f MiB), format version %u, written by %s\n",
           i->file_bytes, mib(i->file_bytes), i->version, i->writer);
    ff_tilefile_t g;
    const int tiled = tiling_of(i, &g);
    if (tiled) {
        char text[96];
        printf("tiles         %s: frames of 3 x %" PRIu64 " bytes from byte %" PRIu64
               ", an XXH3 per region\n",
               tiling_text(text, sizeof text, &g), g.region_bytes, g.data_offset);
    }
    printf("layer         %u: %u -> %u, float32, relu, weight [out, in]\n", m->layer_index, i->in,
           i->out);
    printf("parameters    %" PRIu64 " (%" PRIu64 " bytes)%s\n", params, params * 4,
           i->has_optimizer ? ", with Adam moments" : ", no optimizer state");
    printf("training      %s: %u of %u epoch(s) done, %u batch(es) into the next\n",
           m->complete ? "complete" : "in progress", m->epochs_done, m->epochs_total,
           m->batch_in_epoch);
    printf("last epoch    loss %.6g, goodness positive %.6g, negative %.6g\n", m->loss,
           m->goodness_pos, m->goodness_neg);
    printf("this epoch    %" PRIu64 " batch(es), %" PRIu64 " positive and %" PRIu64
           " negative rows, sums: loss %.6g, goodness positive %.6g, negative %.6g\n",
           m->batches, m->npos, m->nneg, m->loss_sum, m->good_pos_sum, m->good_neg_sum);
    printf("adam          step %" PRId64 ", lr %g, beta1 %g, beta2 %g, eps %g, weight decay %g\n",
           i->adam_step, m->adam.lr, m->adam.beta1, m->adam.beta2, m->adam.eps,
           m->adam.weight_decay);
    printf("fingerprints  data %016" PRIx64 ", config %016" PRIx64 "\n", m->data_fingerprint,
           m->config_fingerprint);
    uint32_t bad = 0;
    for (uint32_t t = 0; t < i->tensor_count; t++) bad += !f->readable[t];
    if (bad == 0)
        printf("checksums     ok (%u tensors)\n", i->tensor_count);
    else
        printf("checksums     BAD: %u of %u tensors\n", bad, i->tensor_count);

    printf("\n%-14s %-11s %-13s %10s %12s %7s %10s  %s\n", "tensor", "shape", "codec", "raw bytes",
           "stored bytes", "ratio", "offset", "crc32");
    uint64_t raw = 0, stored = 0;
    for (uint32_t t = 0; t < i->tensor_count; t++) {
        const ff_layerfile_tensor_t *x = &i->tensors[t];
        char shape[64];
        raw += x->raw_bytes;
        stored += x->stored_bytes;
        /* A tiled tensor has no offset or crc32 of its own: it is cut
         * across the tiles, which carry the checksums. */
        char offset[24] = "-", crc[12] = "-";
        if (!tiled) {
            snprintf(offset, sizeof offset, "%" PRIu64, x->offset);
            snprintf(crc, sizeof crc, "%08x", x->crc32);
        }
        printf("%-14s %-11s %-13s %10" PRIu64 " %12" PRIu64 " %6.2fx %10s  %s\n", x->name,
               shape_text(shape, sizeof shape, x->ndim, x->shape), ff_codec_name(x->codec),
               x->raw_bytes, x->stored_bytes, ratio(x->raw_bytes, x->stored_bytes), offset, crc);
    }
    printf("%-14s %-11s %-13s %10" PRIu64 " %12" PRIu64 " %6.2fx   (%.2f MiB raw, %.2f MiB "
           "stored)\n",
           "total", "", "", raw, stored, ratio(raw, stored), mib(raw), mib(stored));

    printf("\n%-14s %13s %13s %13s %13s %13s %8s %5s %5s\n", "tensor", "min", "max", "mean", "std",
           "L2 norm", "zeros", "NaN", "Inf");
    for (uint32_t t = 0; t < i->tensor_count; t++) {
        const ff_inspect_stats_t *s = &f->stats[t];
        if (!f->readable[t]) {
            printf("%-14s BAD: %s\n", i->tensors[t].name, without_path(f->error[t], path));
            continue;
        }
        double zeros = s->count > 0 ? 100.0 * (double)s->zeros / (double)s->count : 0;
        printf("%-14s %13.6g %13.6g %13.6g %13.6g %13.6g %7.2f%% %5" PRIu64 " %5" PRIu64 "\n",
               i->tensors[t].name, s->min, s->max, s->mean, s->std, s->l2_norm, zeros, s->nan_count,
               s->inf_count);
    }
}

static void json_adam_training(cJSON *root, const ff_layerfile_info_t *i) {
    const ff_layerfile_meta_t *m = &i->meta;
    cJSON *adam = cJSON_AddObjectToObject(root, "adam");
    if (adam != NULL) {
        json_uint(adam, "step", (uint64_t)i->adam_step);
        json_number(adam, "lr", m->adam.lr);
        json_number(adam, "beta1", m->adam.beta1);
        json_number(adam, "beta2", m->adam.beta2);
        json_number(adam, "eps", m->adam.eps);
        json_number(adam, "weight_decay", m->adam.weight_decay);
    }
    cJSON *tr = cJSON_AddObjectToObject(root, "training");
    if (tr != NULL) {
        cJSON_AddNumberToObject(tr, "epochs_done", m->epochs_done);
        cJSON_AddNumberToObject(tr, "epochs_total", m->epochs_total);
        cJSON_AddNumberToObject(tr, "batch_in_epoch", m->batch_in_epoch);
        cJSON_AddBoolToObject(tr, "complete", m->complete);
        json_number(tr, "loss", m->loss);
        json_number(tr, "goodness_pos", m->goodness_pos);
        json_number(tr, "goodness_neg", m->goodness_neg);
        json_number(tr, "loss_sum", m->loss_sum);
        json_number(tr, "good_pos_sum", m->good_pos_sum);
        json_number(tr, "good_neg_sum", m->good_neg_sum);
        json_uint(tr, "batches", m->batches);
        json_uint(tr, "npos", m->npos);
        json_uint(tr, "nneg", m->nneg);
    }
}

static void print_file_json(const char *path, const ff_inspect_file_t *f) {
    const ff_layerfile_info_t *i = &f->info;
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) {
        print_json(NULL);
        return;
    }
    cJSON_AddStringToObject(root, "file", path);
    json_uint(root, "file_bytes", i->file_bytes);
    cJSON_AddNumberToObject(root, "version", i->version);
    cJSON_AddStringToObject(root, "writer", i->writer);
    cJSON_AddNumberToObject(root, "layer_index", i->meta.layer_index);
    cJSON_AddNumberToObject(root, "in", i->in);
    cJSON_AddNumberToObject(root, "out", i->out);
    json_uint(root, "parameters", (uint64_t)i->in * i->out + i->out);
    cJSON_AddStringToObject(root, "dtype", "float32");
    cJSON_AddStringToObject(root, "activation", "relu");
    cJSON_AddBoolToObject(root, "has_optimizer", i->has_optimizer);
    json_tiles(root, i);
    json_adam_training(root, i);
    json_hex(root, "data_fingerprint", i->meta.data_fingerprint, 16);
    json_hex(root, "config_fingerprint", i->meta.config_fingerprint, 16);
    int sound = 1;
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    for (uint32_t t = 0; list != NULL && t < i->tensor_count; t++) {
        const ff_layerfile_tensor_t *x = &i->tensors[t];
        const ff_inspect_stats_t *s = &f->stats[t];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) break;
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "name", x->name);
        cJSON_AddItemToObject(o, "shape", json_shape(x->ndim, x->shape));
        cJSON_AddStringToObject(o, "codec", ff_codec_name(x->codec));
        json_uint(o, "raw_bytes", x->raw_bytes);
        json_uint(o, "stored_bytes", x->stored_bytes);
        json_number(o, "compression_ratio", ratio(x->raw_bytes, x->stored_bytes));
        if (i->tile_count > 0) {
            cJSON_AddNullToObject(o, "offset");
            cJSON_AddNullToObject(o, "crc32");
        } else {
            json_uint(o, "offset", x->offset);
            json_hex(o, "crc32", x->crc32, 8);
        }
        if (!f->readable[t]) {
            sound = 0;
            char bad[FF_ERROR_MSG_MAX + 8];
            snprintf(bad, sizeof bad, "BAD: %s", without_path(f->error[t], path));
            cJSON_AddStringToObject(o, "checksum", bad);
            continue;
        }
        cJSON_AddStringToObject(o, "checksum", "ok");
        json_uint(o, "elements", s->count);
        json_number(o, "min", s->min);
        json_number(o, "max", s->max);
        json_number(o, "mean", s->mean);
        json_number(o, "std", s->std);
        json_number(o, "l2_norm", s->l2_norm);
        json_uint(o, "zeros", s->zeros);
        json_number(o, "zero_fraction", s->count > 0 ? (double)s->zeros / (double)s->count : 0);
        json_uint(o, "nan", s->nan_count);
        json_uint(o, "inf", s->inf_count);
    }
    cJSON_AddBoolToObject(root, "sound", sound);
    print_json(root);
}

static int view_file(const char *path, int json) {
    ff_error_t err;
    ff_inspect_file_t *f = malloc(sizeof *f); /* ~6 KiB of messages: not on the stack */
    if (f == NULL) {
        fprintf(stderr, "ffinspect: out of memory\n");
        return EXIT_IO;
    }
    int rc = EXIT_IO;
    if (ff_inspect_file_read(path, f, &err) != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        goto cleanup;
    }
    if (json)
        print_file_json(path, f);
    else
        print_file_human(path, f);
    rc = EXIT_SOUND;
    for (uint32_t t = 0; t < f->info.tensor_count; t++)
        if (!f->readable[t]) rc = EXIT_FOUND;
cleanup:
    free(f);
    return rc;
}

/* ---- --verify ---- */

static int verify(const char *path, int is_run, int json) {
    ff_error_t err;
    ff_inspect_report_t report = {0};
    int ran = is_run ? ff_inspect_verify_run(path, &report, &err)
                     : ff_inspect_verify_file(path, -1, &report, &err);
    if (ran != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        ff_inspect_report_free(&report);
        return EXIT_IO;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (root != NULL) {
            cJSON_AddStringToObject(root, "path", path);
            cJSON_AddStringToObject(root, "kind", is_run ? "run" : "file");
            cJSON_AddBoolToObject(root, "sound", report.count == 0);
            cJSON_AddNumberToObject(root, "files_checked", (double)report.files_checked);
            cJSON_AddNumberToObject(root, "tensors_checked", (double)report.tensors_checked);
            cJSON_AddNumberToObject(root, "pending_layers", report.pending_layers);
            json_problems(root, &report);
        }
        print_json(root);
    } else {
        for (size_t i = 0; i < report.count; i++) printf("BAD: %s\n", report.problems[i].message);
        if (report.pending_layers > 0)
            printf("note: %u layer(s) pending: the run has not reached them yet\n",
                   report.pending_layers);
        if (report.count == 0)
            printf("sound: %s: %zu file(s), %zu tensor(s): every checksum%s checked\n", path,
                   report.files_checked, report.tensors_checked,
                   is_run ? ", layer and shape" : " and the header");
        else
            printf("NOT SOUND: %s: %zu problem(s) (%zu file(s), %zu tensor(s) checked)\n", path,
                   report.count, report.files_checked, report.tensors_checked);
    }
    int rc = report.count == 0 ? EXIT_SOUND : EXIT_FOUND;
    ff_inspect_report_free(&report);
    return rc;
}

/* ---- --diff ---- */

/* Prints one file pair's comparison; accumulates the largest difference. */
static void print_file_diff_human(const char *label, const ff_inspect_file_diff_t *d,
                                  double *max_abs) {
    if (!d->readable) {
        printf("%s: cannot compare: %s\n", label, d->error);
        return;
    }
    printf("%s: headers %s%s\n", label, d->headers_identical ? "byte-identical" : "differ",
           d->shapes_equal ? "" : ", SHAPES DIFFER");
    for (uint32_t t = 0; t < d->tensor_count; t++) {
        const ff_inspect_tensor_diff_t *x = &d->tensors[t];
        char shape_a[64], shape_b[64];
        shape_text(shape_a, sizeof shape_a, x->ndim, x->shape_a);
        shape_text(shape_b, sizeof shape_b, x->ndim, x->shape_b);
        if (!x->in_a || !x->in_b) {
            printf("  %-14s %-11s only in %s\n", x->name, x->in_a ? shape_a : shape_b,
                   x->in_a ? "A" : "B");
        } else if (!x->shapes_equal) {
            printf("  %-14s %-11s shape differs: %s in B\n", x->name, shape_a, shape_b);
        } else if (x->identical) {
            printf("  %-14s %-11s identical\n", x->name, shape_a);
        } else {
            printf("  %-14s %-11s differ: %" PRIu64 " of %" PRIu64
                   " elements, max abs diff %.6g, max rel diff %.6g",
                   x->name, shape_a, x->differing, x->count, x->max_abs, x->max_rel);
            if (x->nan_mismatches > 0) printf(", %" PRIu64 " NaN mismatches", x->nan_mismatches);
            printf("\n");
            if (x->max_abs > *max_abs) *max_abs = x->max_abs;
        }
    }
}

/* max |a - b| / max |a|: the difference against the tensor's own scale. */
static double tensor_scaled(const ff_inspect_tensor_diff_t *x) {
    return x->identical || !(x->max_mag > 0) ? 0.0 : x->max_abs / x->max_mag;
}

/* The largest scaled difference of the parameters (weights and biases). */
static double file_diff_params_scaled(const ff_inspect_file_diff_t *d) {
    double most = 0;
    for (uint32_t t = 0; t < d->tensor_count; t++) {
        const ff_inspect_tensor_diff_t *x = &d->tensors[t];
        if ((strcmp(x->name, "weight") == 0 || strcmp(x->name, "bias") == 0) && x->in_a &&
            x->in_b && x->shapes_equal && tensor_scaled(x) > most)
            most = tensor_scaled(x);
    }
    return most;
}

static cJSON *json_file_diff(const ff_inspect_file_diff_t *d, int64_t index) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) return NULL;
    if (index >= 0) cJSON_AddNumberToObject(o, "index", (double)index);
    cJSON_AddStringToObject(o, "a", d->a);
    cJSON_AddStringToObject(o, "b", d->b);
    cJSON_AddBoolToObject(o, "readable", d->readable);
    if (!d->readable) {
        cJSON_AddStringToObject(o, "error", d->error);
        return o;
    }
    cJSON_AddBoolToObject(o, "identical", d->identical);
    cJSON_AddBoolToObject(o, "headers_identical", d->headers_identical);
    cJSON_AddBoolToObject(o, "shapes_equal", d->shapes_equal);
    cJSON *list = cJSON_AddArrayToObject(o, "tensors");
    for (uint32_t t = 0; list != NULL && t < d->tensor_count; t++) {
        const ff_inspect_tensor_diff_t *x = &d->tensors[t];
        cJSON *e = cJSON_CreateObject();
        if (e == NULL) break;
        cJSON_AddItemToArray(list, e);
        cJSON_AddStringToObject(e, "name", x->name);
        cJSON_AddBoolToObject(e, "in_a", x->in_a);
        cJSON_AddBoolToObject(e, "in_b", x->in_b);
        if (x->in_a) cJSON_AddItemToObject(e, "shape_a", json_shape(x->ndim, x->shape_a));
        if (x->in_b) cJSON_AddItemToObject(e, "shape_b", json_shape(x->ndim, x->shape_b));
        cJSON_AddBoolToObject(e, "identical", x->in_a && x->in_b && x->identical);
        if (!x->in_a || !x->in_b || !x->shapes_equal) continue;
        json_uint(e, "elements", x->count);
        json_uint(e, "differing", x->differing);
        json_uint(e, "nan_mismatches", x->nan_mismatches);
        json_number(e, "max_abs_diff", x->max_abs);
        json_number(e, "max_rel_diff", x->max_rel);
        json_number(e, "max_scaled_diff", tensor_scaled(x));
    }
    return o;
}

static double file_diff_max_abs(const ff_inspect_file_diff_t *d) {
    double most = 0;
    for (uint32_t t = 0; t < d->tensor_count; t++)
        if (d->tensors[t].max_abs > most) most = d->tensors[t].max_abs;
    return most;
}

static int diff_files(const char *a, const char *b, int json) {
    ff_error_t err;
    ff_inspect_file_diff_t *d = malloc(sizeof *d);
    if (d == NULL) {
        fprintf(stderr, "ffinspect: out of memory\n");
        return EXIT_IO;
    }
    int readable = ff_inspect_diff_files(a, b, d, &err) == 0;
    if (json) {
        cJSON *root = json_file_diff(d, -1);
        if (root != NULL) {
            cJSON_AddStringToObject(root, "kind", "files");
            json_number(root, "max_abs_diff", file_diff_max_abs(d));
            json_number(root, "params_max_scaled_diff", file_diff_params_scaled(d));
        }
        print_json(root);
    } else {
        double max_abs = 0;
        printf("a: %s\nb: %s\n", a, b);
        print_file_diff_human("file", d, &max_abs);
        if (readable) printf("result: %s", d->identical ? "identical" : "differ");
        if (readable && !d->identical) printf(" (max abs diff %.6g)", max_abs);
        if (readable) printf("\n");
    }
    if (!readable && !json) fprintf(stderr, "ffinspect: %s\n", err.msg);
    int rc = !readable ? EXIT_IO : d->identical ? EXIT_SOUND : EXIT_FOUND;
    free(d);
    return rc;
}

static int diff_runs(const char *a, const char *b, int json) {
    ff_error_t err;
    ff_inspect_run_diff_t d;
    if (ff_inspect_diff_runs(a, b, &d, &err) != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        ff_inspect_run_diff_free(&d);
        return EXIT_IO;
    }
    double max_abs = 0, scaled = 0;
    uint32_t tensors = 0, differing = 0;
    for (uint32_t k = 0; k < d.layer_count; k++) {
        const ff_inspect_file_diff_t *l = &d.layers[k];
        double m = file_diff_max_abs(l);
        if (m > max_abs) max_abs = m;
        if (file_diff_params_scaled(l) > scaled) scaled = file_diff_params_scaled(l);
        for (uint32_t t = 0; t < l->tensor_count; t++, tensors++)
            differing += !(l->readable && l->tensors[t].in_a && l->tensors[t].in_b &&
                           l->tensors[t].identical);
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (root != NULL) {
            cJSON_AddStringToObject(root, "kind", "runs");
            cJSON_AddStringToObject(root, "a", a);
            cJSON_AddStringToObject(root, "b", b);
            cJSON_AddStringToObject(root, "mode_a", ff_mode_name(d.a.config.mode));
            cJSON_AddStringToObject(root, "mode_b", ff_mode_name(d.b.config.mode));
            cJSON_AddNumberToObject(root, "layers_a", d.a.config.layers);
            cJSON_AddNumberToObject(root, "layers_b", d.b.config.layers);
            cJSON_AddBoolToObject(root, "identical", d.identical);
            if (d.message[0] != '\0') cJSON_AddStringToObject(root, "message", d.message);
            cJSON_AddNumberToObject(root, "tensors", tensors);
            cJSON_AddNumberToObject(root, "differing_tensors", differing);
            cJSON_AddNumberToObject(root, "unreadable_layers", d.unreadable);
            json_number(root, "max_abs_diff", max_abs);
            json_number(root, "params_max_scaled_diff", scaled);
            cJSON *list = cJSON_AddArrayToObject(root, "layers");
            for (uint32_t k = 0; list != NULL && k < d.layer_count; k++)
                cJSON_AddItemToArray(list, json_file_diff(&d.layers[k], k));
        }
        print_json(root);
    } else {
        printf("a: %s (%s run, %u layers)\nb: %s (%s run, %u layers)\n", a,
               ff_mode_name(d.a.config.mode), d.a.config.layers, b, ff_mode_name(d.b.config.mode),
               d.b.config.layers);
        if (d.message[0] != '\0') printf("%s\n", d.message);
        for (uint32_t k = 0; k < d.layer_count; k++) {
            char label[32];
            snprintf(label, sizeof label, "layer %u", k);
            print_file_diff_human(label, &d.layers[k], &max_abs);
        }
        if (d.identical)
            printf("result: identical (%u layers, %u tensors bit for bit)\n", d.layer_count,
                   tensors);
        else if (d.message[0] != '\0')
            printf("result: differ (layer counts)\n");
        else if (d.unreadable > 0)
            printf("result: %u layer(s) cannot be compared; %u of the %u tensors compared "
                   "differ (max abs diff %.6g)\n",
                   d.unreadable, differing, tensors, max_abs);
        else
            printf("result: differ (%u of %u tensors, max abs diff %.6g)\n", differing, tensors,
                   max_abs);
    }
    int rc = d.unreadable > 0 ? EXIT_IO : d.identical ? EXIT_SOUND : EXIT_FOUND;
    ff_inspect_run_diff_free(&d);
    return rc;
}

/* ---- export ---- */

static int export_layers(const options_t *o, int is_run) {
    ff_error_t err;
    ff_inspect_run_t run = {0};
    const char *single[1] = {o->inputs[0]};
    const char **paths = single;
    uint32_t *names = NULL;
    size_t count = 1;
    int rc = EXIT_IO;
    if (is_run) {
        if (ff_inspect_run_open(&run, o->inputs[0], &err) != 0) {
            fprintf(stderr, "ffinspect: %s\n", err.msg);
            return EXIT_IO;
        }
        /* Every layer of the run, each the trained layer of its place: a
         * missing, damaged or unfinished layer is an error, not a shorter
         * export. */
        count = run.state.config.layers;
        for (size_t k = 0; k < count; k++) {
            const ff_inspect_run_layer_t *l = &run.layers[k];
            if (l->status != FF_INSPECT_TRAINED) {
                fprintf(stderr, "ffinspect: %s: layer %zu is %s%s%s: nothing exported (export "
                        "single trained layers as FILE.ffl)\n", o->inputs[0], k,
                        ff_inspect_status_name(l->status), l->error[0] ? ": " : "", l->error);
                goto cleanup;
            }
        }
        paths = malloc(count * sizeof *paths);
        names = malloc(count * sizeof *names);
        if (paths == NULL || names == NULL) {
            fprintf(stderr, "ffinspect: out of memory\n");
            goto cleanup;
        }
        for (size_t k = 0; k < count; k++) {
            paths[k] = run.layers[k].path;
            names[k] = (uint32_t)k;
        }
    }
    ff_inspect_export_t result;
    ff_inspect_export_options_t opt = {.with_optimizer = o->with_optimizer, .force = o->force,
                                       .names = names};
    int failed = o->action == ACTION_SAFETENSORS
                     ? ff_inspect_export_safetensors(o->out, paths, count, &opt, &result, &err)
                     : ff_inspect_export_npy(o->out, paths, count, &opt, &result, &err);
    if (failed) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        goto cleanup;
    }
    const char *format = o->action == ACTION_SAFETENSORS ? "safetensors" : "npy";
    if (o->json) {
        cJSON *root = cJSON_CreateObject();
        if (root != NULL) {
            cJSON_AddStringToObject(root, "output", o->out);
            cJSON_AddStringToObject(root, "format", format);
            cJSON_AddNumberToObject(root, "layers", (double)count);
            cJSON_AddBoolToObject(root, "with_optimizer", o->with_optimizer);
            cJSON_AddNumberToObject(root, "tensors", (double)result.tensors);
            json_uint(root, "bytes", result.bytes);
        }
        print_json(root);
    } else {
        printf("wrote %s (%s): %zu tensor(s) of %zu layer(s)%s, %" PRIu64 " bytes (%.2f MiB)\n",
               o->out, format, result.tensors, count, o->with_optimizer ? " with Adam state" : "",
               result.bytes, mib(result.bytes));
    }
    rc = EXIT_SOUND;
cleanup:
    free(names);
    if (paths != single) free(paths);
    ff_inspect_run_free(&run);
    return rc;
}

int main(int argc, char **argv) {
    options_t o;
    ff_error_t err;
    int parsed = parse_args(argc, argv, &o, &err);
    if (parsed == 1) return EXIT_SOUND;
    if (parsed != 0) {
        fprintf(stderr, "ffinspect: %s\n", err.msg);
        return EXIT_USAGE;
    }
    int is_dir[2] = {0, 0};
    for (int i = 0; i < o.input_count; i++) {
        struct stat st;
        if (stat(o.inputs[i], &st) != 0) {
            fprintf(stderr, "ffinspect: %s: cannot open: %s\n", o.inputs[i], strerror(errno));
            return EXIT_IO;
        }
        is_dir[i] = S_ISDIR(st.st_mode);
    }
    switch (o.action) {
    case ACTION_VIEW:
        return is_dir[0] ? view_run(o.inputs[0], o.json) : view_file(o.inputs[0], o.json);
    case ACTION_VERIFY:
        return verify(o.inputs[0], is_dir[0], o.json);
    case ACTION_DIFF:
        if (is_dir[0] != is_dir[1]) {
            fprintf(stderr,
                    "ffinspect: --diff compares two runs or two layer files, not %s and %s\n",
                    is_dir[0] ? "a run" : "a file", is_dir[1] ? "a run" : "a file");
            return EXIT_USAGE;
        }
        return is_dir[0] ? diff_runs(o.inputs[0], o.inputs[1], o.json)
                         : diff_files(o.inputs[0], o.inputs[1], o.json);
    case ACTION_SAFETENSORS:
    case ACTION_NPY:
        return export_layers(&o, is_dir[0]);
    }
    return EXIT_USAGE;
}
