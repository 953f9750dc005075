/* inspect.c: the library half of ffinspect (see inspect.h): tensor
 * statistics, tensor-by-tensor reading of layer files, verification and
 * comparison of files and runs, and the safetensors and .npy writers.
 * Streams tensors a block at a time (a comparison reads both files at once,
 * one on a second thread), so memory does not grow with the layer; prints
 * nothing. */
#include "ffstream/inspect.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ffstream/memstat.h"
#include "ffstream/fileio.h"

/* The exported bytes are the floats as they are in memory; both formats
 * say little-endian. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "inspect.c writes floats as they are in memory and needs a little-endian host"
#endif

#define SAFETENSORS_ALIGN 8u
#define NPY_ALIGN 64u


/* ---- tensors ---- */

/* Statistics accumulated over a tensor's values as they stream: pass 1
 * counts and sums, pass 2 (once the mean is known) the deviations, so std
 * keeps every digit when the spread is small next to the mean. */
typedef struct {
    ff_inspect_stats_t *out;
    double sum, sum_squares, min, max, deviation;
    int pass;
} stats_acc_t;

static int stats_add(void *ctx, const float *data, size_t count, ff_error_t *err) {
    (void)err;
    stats_acc_t *a = ctx;
    ff_inspect_stats_t *out = a->out;
    if (a->pass == 2) {
        for (size_t i = 0; i < count; i++) {
            if (!isfinite(data[i])) continue;
            double d = data[i] - out->mean;
            a->deviation += d * d;
        }
        return 0;
    }
    out->count += count;
    for (size_t i = 0; i < count; i++) {
        float x = data[i];
        if (isnan(x)) {
            out->nan_count++;
            continue;
        }
        if (isinf(x)) {
            out->inf_count++;
            continue;
        }
        out->finite++;
        if (x == 0.0f) out->zeros++;
        a->sum += x;
        a->sum_squares += (double)x * x;
        if (x < a->min) a->min = x;
        if (x > a->max) a->max = x;
    }
    return 0;
}

static void stats_begin(stats_acc_t *a, ff_inspect_stats_t *out) {
    memset(out, 0, sizeof *out);
    memset(a, 0, sizeof *a);
    a->out = out;
    a->min = INFINITY;
    a->max = -INFINITY;
    a->pass = 1;
}

/* After pass 1: the mean; then pass 2 runs. */
static void stats_middle(stats_acc_t *a) {
    ff_inspect_stats_t *out = a->out;
    out->l2_norm = sqrt(a->sum_squares);
    out->min = out->finite ? a->min : NAN;
    out->max = out->finite ? a->max : NAN;
    out->mean = out->finite ? a->sum / (double)out->finite : NAN;
    a->pass = 2;
}

static void stats_end(stats_acc_t *a) {
    ff_inspect_stats_t *out = a->out;
    out->std = out->finite ? sqrt(a->deviation / (double)out->finite) : NAN;
}

void ff_inspect_stats(const float *data, size_t count, ff_inspect_stats_t *out) {
    stats_acc_t a;
    stats_begin(&a, out);
    stats_add(&a, data, count, NULL);
    stats_middle(&a);
    stats_add(&a, data, count, NULL);
    stats_end(&a);
}

static int ignore_values(void *ctx, const float *values, size_t count, ff_error_t *err) {
    (void)ctx, (void)values, (void)count, (void)err;
    return 0;
}

/* Decodes every tensor of info once without keeping it: what a header
 * claims is then backed by real data before a caller allocates for it. */
static int check_tensors(const char *path, const ff_layerfile_info_t *info, uint32_t count,
                         ff_error_t *err) {
    for (uint32_t i = 0; i < count && i < info->tensor_count; i++)
        if (ff_layerfile_stream_tensor(path, &info->tensors[i], ignore_values, NULL, err) != 0)
            return -1;
    return 0;
}

int ff_inspect_file_read(const char *path, ff_inspect_file_t *file, ff_error_t *err) {
    memset(file, 0, sizeof *file);
    if (ff_layerfile_read_info(path, &file->info, err) != 0) return -1;
    /* Two streamed passes per tensor: memory does not grow with the layer. */
    for (uint32_t i = 0; i < file->info.tensor_count; i++) {
        const ff_layerfile_tensor_t *t = &file->info.tensors[i];
        ff_error_t tensor_err;
        stats_acc_t a;
        stats_begin(&a, &file->stats[i]);
        if (ff_layerfile_stream_tensor(path, t, stats_add, &a, &tensor_err) != 0) {
            snprintf(file->error[i], sizeof file->error[i], "%s", tensor_err.msg);
            continue;
        }
        stats_middle(&a);
        if (ff_layerfile_stream_tensor(path, t, stats_add, &a, &tensor_err) != 0) {
            snprintf(file->error[i], sizeof file->error[i], "%s", tensor_err.msg);
            continue;
        }
        stats_end(&a);
        file->readable[i] = 1;
    }
    return 0;
}

/* ---- runs ---- */

const char *ff_inspect_status_name(ff_inspect_status_t status) {
    switch (status) {
    case FF_INSPECT_TRAINED:
        return "trained";
    case FF_INSPECT_IN_PROGRESS:
        return "in progress";
    case FF_INSPECT_PENDING:
        return "pending";
    case FF_INSPECT_MISSING:
        return "missing";
    case FF_INSPECT_UNREADABLE:
        return "unreadable";
    }
    return "unknown";
}

/* run.json says layer index was trained (the same rule ff_run_write uses
 * for its "trained" status), so its checkpoint must exist. */
static int layer_expected(const ff_run_state_t *s, uint32_t index) {
    return s->finished || (s->cache_layer != FF_RUN_NO_CACHE && index < s->cache_layer);
}

static void describe_layer(const ff_inspect_run_t *run, ff_inspect_run_layer_t *l, uint32_t index) {
    ff_error_t err;
    l->index = index;
    if (ff_run_layer_path(l->path, run->dir, index, &err) != 0) {
        l->status = FF_INSPECT_UNREADABLE;
        snprintf(l->error, sizeof l->error, "%s", err.msg);
        return;
    }
    struct stat st;
    if (lstat(l->path, &st) != 0) {
        if (errno == ENOENT) {
            l->status =
                layer_expected(&run->state, index) ? FF_INSPECT_MISSING : FF_INSPECT_PENDING;
        } else {
            l->status = FF_INSPECT_UNREADABLE;
            ff_error_set(&err, "%s: cannot stat: %s", l->path, strerror(errno));
            memcpy(l->error, err.msg, sizeof l->error);
        }
        return;
    }
    if (ff_layerfile_read_info(l->path, &l->info, &err) != 0) {
        l->status = FF_INSPECT_UNREADABLE;
        snprintf(l->error, sizeof l->error, "%s", err.msg);
        return;
    }
    l->has_info = 1;
    l->status = l->info.meta.complete ? FF_INSPECT_TRAINED : FF_INSPECT_IN_PROGRESS;
    for (uint32_t i = 0; i < l->info.tensor_count; i++) {
        l->raw_bytes += l->info.tensors[i].raw_bytes;
        l->stored_bytes += l->info.tensors[i].stored_bytes;
    }
}


int ff_inspect_run_open(ff_inspect_run_t *run, const char *dir, ff_error_t *err) {
    memset(run, 0, sizeof *run);
    if (ff_path_format(run->dir, err, "%s", dir) != 0) return -1;
    int missing = 0;
    if (ff_run_read(dir, &run->state, &missing, err) != 0) {
        if (missing) ff_error_wrap(err, "%s is not a run directory (no run.json)", dir);
        return -1;
    }
    run->layers = ff_mem_calloc(FF_MEM_OTHER, run->state.config.layers, sizeof *run->layers);
    if (run->layers == NULL)
        return ff_error_set(err, "%s: out of memory for %u layers", dir, run->state.config.layers);
    for (uint32_t i = 0; i < run->state.config.layers; i++) describe_layer(run, &run->layers[i], i);
    char sub[FF_PATH_MAX];
    if (ff_path_format(sub, NULL, "%s/layers", dir) == 0) run->disk_layers = ff_fileio_tree_bytes(sub);
    if (ff_path_format(sub, NULL, "%s/cache", dir) == 0) run->disk_caches = ff_fileio_tree_bytes(sub);
    uint64_t all = ff_fileio_tree_bytes(dir);
    run->disk_other = all - run->disk_layers - run->disk_caches;
    return 0;
}

void ff_inspect_run_free(ff_inspect_run_t *run) {
    if (run == NULL) return;
    ff_mem_free(run->layers);
    memset(run, 0, sizeof *run);
}

uint32_t ff_inspect_run_present_layers(const ff_inspect_run_t *run) {
    uint32_t n = 0;
    while (n < run->state.config.layers && run->layers[n].has_info) n++;
    return n;
}

/* ---- verification ---- */

void ff_inspect_report_free(ff_inspect_report_t *report) {
    if (report == NULL) return;
    free(report->problems);
    memset(report, 0, sizeof *report);
}

/* The tensor a layerfile message is about ("...: tensor adam_m.bias: ..."),
 * or "" when it is about the whole file. */
static const char *tensor_named_in(const char *message) {
    for (const char *p = strstr(message, "tensor "); p != NULL; p = strstr(p + 1, "tensor ")) {
        const char *name = p + strlen("tensor ");
        for (int i = 0; i < FF_LAYERFILE_MAX_TENSORS; i++) {
            size_t n = strlen(ff_layerfile_tensor_name(i));
            char after = name[n];
            if (strncmp(name, ff_layerfile_tensor_name(i), n) == 0 &&
                (after == ':' || after == ' ' || after == '\0' || after == ','))
                return ff_layerfile_tensor_name(i);
        }
    }
    return "";
}

static int add_problem(ff_inspect_report_t *r, ff_inspect_problem_kind_t kind, const char *file,
                       int64_t layer, const char *tensor, ff_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int add_problem(ff_inspect_report_t *r, ff_inspect_problem_kind_t kind, const char *file,
                       int64_t layer, const char *tensor, ff_error_t *err, const char *fmt, ...) {
    if (r->count == r->capacity) {
        size_t capacity = r->capacity == 0 ? 8 : 2 * r->capacity;
        ff_inspect_problem_t *grown = realloc(r->problems, capacity * sizeof *grown);
        if (grown == NULL) return ff_error_set(err, "out of memory listing %zu problems", r->count);
        r->problems = grown;
        r->capacity = capacity;
    }
    ff_inspect_problem_t *p = &r->problems[r->count++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    snprintf(p->file, sizeof p->file, "%s", file);
    p->layer = layer;
    snprintf(p->tensor, sizeof p->tensor, "%s", tensor);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
    va_end(ap);
    return 0;
}

int ff_inspect_verify_file(const char *path, int64_t layer, ff_inspect_report_t *report,
                           ff_error_t *err) {
    report->files_checked++;
    ff_layerfile_info_t info;
    ff_error_t file_err;
    if (ff_layerfile_read_info(path, &info, &file_err) != 0)
        return add_problem(report, FF_INSPECT_PROBLEM_FILE, path, layer,
                           tensor_named_in(file_err.msg), err, "%s", file_err.msg);
    /* Every checksum, every size, every value finite, streamed; each bad
     * tensor is named. */
    for (uint32_t i = 0; i < info.tensor_count; i++) {
        const ff_layerfile_tensor_t *t = &info.tensors[i];
        ff_inspect_stats_t stats;
        stats_acc_t a;
        report->tensors_checked++;
        stats_begin(&a, &stats);
        int rc = 0;
        if (ff_layerfile_stream_tensor(path, t, stats_add, &a, &file_err) != 0)
            rc = add_problem(report, FF_INSPECT_PROBLEM_FILE, path, layer, t->name, err, "%s",
                             file_err.msg);
        else if (stats.finite != stats.count)
            rc = add_problem(report, FF_INSPECT_PROBLEM_FILE, path, layer, t->name, err,
                             "%s: tensor %s: %llu of %llu values are NaN or infinite", path,
                             t->name, (unsigned long long)(stats.count - stats.finite),
                             (unsigned long long)stats.count);
        if (rc != 0) return -1;
    }
    return 0;
}

/* The run-level invariants of layer l, whose header was read (see
 * ff_inspect_verify_run). */
static int check_layer_fits(const ff_inspect_run_t *run, const ff_inspect_run_layer_t *l,
                            ff_inspect_report_t *r, ff_error_t *err) {
    const ff_run_state_t *s = &run->state;
    const ff_layerfile_info_t *info = &l->info;
    const ff_layerfile_meta_t *m = &info->meta;
    const char *path = l->path;
    const ff_inspect_problem_kind_t kind = FF_INSPECT_PROBLEM_RUN;
    uint32_t k = l->index;
    int rc = 0;
    if (m->layer_index != k)
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: header says layer_index %u, expected %u (a checkpoint copied "
                          "to the wrong place?)",
                          path, m->layer_index, k);
    if (k > 0 && run->layers[k - 1].has_info && info->in != run->layers[k - 1].info.out)
        rc |= add_problem(r, kind, path, k, "weight", err,
                          "%s: shapes do not chain: layer %u takes %u inputs but layer %u gives "
                          "%u outputs",
                          path, k, info->in, k - 1, run->layers[k - 1].info.out);
    if (info->out != s->config.hidden)
        rc |= add_problem(r, kind, path, k, "weight", err,
                          "%s: layer %u has %u outputs, but the run's hidden width is %u", path, k,
                          info->out, s->config.hidden);
    if (m->config_fingerprint != s->config_fingerprint)
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: config_fingerprint %016" PRIx64
                          " differs from run.json's %016" PRIx64 " (a checkpoint of another run?)",
                          path, m->config_fingerprint, s->config_fingerprint);
    if (m->data_fingerprint != s->data_fingerprint)
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: data_fingerprint %016" PRIx64 " differs from run.json's %016" PRIx64
                          " (trained on other data?)",
                          path, m->data_fingerprint, s->data_fingerprint);
    if (m->epochs_total != s->config.epochs)
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: header says %u epochs in total, run.json says %u", path,
                          m->epochs_total, s->config.epochs);
    if (m->complete && m->epochs_done != m->epochs_total)
        rc |= add_problem(r, kind, path, k, "", err, "%s: marked complete after %u of %u epochs",
                          path, m->epochs_done, m->epochs_total);
    if (!m->complete && layer_expected(s, k))
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: layer %u stopped at epoch %u of %u, but run.json says it was "
                          "trained%s",
                          path, k, m->epochs_done, m->epochs_total,
                          s->finished ? " (the run is finished)" : "");
    /* A missing layer before this one is reported on its own. */
    if (k > 0 && (run->layers[k - 1].status == FF_INSPECT_IN_PROGRESS ||
                  run->layers[k - 1].status == FF_INSPECT_PENDING))
        rc |= add_problem(r, kind, path, k, "", err,
                          "%s: layer %u has a checkpoint but layer %u before it is %s", path, k,
                          k - 1, ff_inspect_status_name(run->layers[k - 1].status));
    return rc != 0 ? -1 : 0;
}

/* Checkpoints in RUN/layers numbered at or past the run's layer count. */
static int check_stray_layers(const ff_inspect_run_t *run, ff_inspect_report_t *r,
                              ff_error_t *err) {
    char layers_dir[FF_PATH_MAX];
    if (ff_run_path(layers_dir, run->dir, "layers", NULL) != 0) return 0;
    DIR *d = opendir(layers_dir);
    if (d == NULL) return 0; /* no layers at all: each missing one is reported already */
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        unsigned index = 0;
        int end = 0;
        if (sscanf(e->d_name, "%u.ffl%n", &index, &end) != 1 || e->d_name[end] != '\0' ||
            e->d_name[0] < '0' || e->d_name[0] > '9' || index < run->state.config.layers)
            continue;
        char path[FF_PATH_MAX];
        if (ff_path_format(path, NULL, "%s/%s", layers_dir, e->d_name) != 0) continue;
        rc = add_problem(r, FF_INSPECT_PROBLEM_RUN, path, (int64_t)index, "", err,
                         "%s: a checkpoint beyond the run's %u layers", path, run->state.config.layers);
    }
    closedir(d);
    return rc;
}

int ff_inspect_verify_run(const char *dir, ff_inspect_report_t *report, ff_error_t *err) {
    ff_inspect_run_t run;
    ff_error_t run_err;
    if (ff_inspect_run_open(&run, dir, &run_err) != 0) {
        char json[FF_PATH_MAX];
        if (ff_run_path(json, dir, "run.json", NULL) != 0) snprintf(json, sizeof json, "%s", dir);
        return add_problem(report, FF_INSPECT_PROBLEM_RUN, json, -1, "", err, "%s", run_err.msg);
    }
    int rc = 0;
    for (uint32_t k = 0; k < run.state.config.layers && rc == 0; k++) {
        const ff_inspect_run_layer_t *l = &run.layers[k];
        switch (l->status) {
        case FF_INSPECT_PENDING:
            report->pending_layers++;
            break;
        case FF_INSPECT_MISSING:
            rc = add_problem(report, FF_INSPECT_PROBLEM_RUN, l->path, k, "", err,
                             "%s: layer %u is missing, but run.json says it was trained%s", l->path,
                             k, run.state.finished ? " (the run is finished)" : "");
            break;
        case FF_INSPECT_UNREADABLE:
            report->files_checked++;
            rc = add_problem(report, FF_INSPECT_PROBLEM_FILE, l->path, k, tensor_named_in(l->error),
                             err, "%s", l->error);
            break;
        case FF_INSPECT_TRAINED:
        case FF_INSPECT_IN_PROGRESS:
            rc = ff_inspect_verify_file(l->path, k, report, err);
            if (rc == 0) rc = check_layer_fits(&run, l, report, err);
            break;
        }
    }
    if (rc == 0) rc = check_stray_layers(&run, report, err);
    ff_inspect_run_free(&run);
    return rc;
}

/* ---- comparison ---- */

/* The preamble and JSON header of a layer file, byte for byte (free()). */
static uint8_t *read_header_bytes(const char *path, size_t *size, ff_error_t *err) {
    int fd = ff_fileio_open_regular(path, 0, NULL, err);
    if (fd < 0) return NULL;
    uint8_t pre[FF_LAYERFILE_PREAMBLE];
    uint8_t *bytes = NULL;
    if (ff_fileio_read_exact(fd, pre, sizeof pre, 0) != 0) {
        ff_error_set(err, "%s: cannot read the preamble", path);
        goto cleanup;
    }
    uint32_t header = (uint32_t)pre[12] | (uint32_t)pre[13] << 8 | (uint32_t)pre[14] << 16 |
                      (uint32_t)pre[15] << 24;
    if (header > FF_LAYERFILE_MAX_HEADER) {
        ff_error_set(err, "%s: header length %u out of range", path, header);
        goto cleanup;
    }
    *size = FF_LAYERFILE_PREAMBLE + (size_t)header;
    bytes = malloc(*size);
    if (bytes == NULL) {
        ff_error_set(err, "%s: out of memory for the header", path);
        goto cleanup;
    }
    if (ff_fileio_read_exact(fd, bytes, *size, 0) != 0) {
        ff_error_set(err, "%s: cannot read the header", path);
        free(bytes);
        bytes = NULL;
    }
cleanup:
    close(fd);
    return bytes;
}

/* Elementwise comparison of x and y (count floats each), added to d: the
 * blocks of a tensor arrive in order, so the figures are those of the whole
 * tensor once every block is in. */
static void compare_floats(const float *x, const float *y, size_t count,
                           ff_inspect_tensor_diff_t *d) {
    d->count += count;
    for (size_t i = 0; i < count; i++) {
        if (fabsf(x[i]) > d->max_mag) d->max_mag = fabsf(x[i]);
        uint32_t bx, by;
        memcpy(&bx, &x[i], sizeof bx);
        memcpy(&by, &y[i], sizeof by);
        if (bx == by) continue;
        d->differing++;
        if (isnan(x[i]) || isnan(y[i])) {
            d->nan_mismatches++;
            continue;
        }
        double abs_diff = fabs((double)x[i] - (double)y[i]);
        double rel_diff = abs_diff / fmax(fabs((double)x[i]), FLT_MIN);
        if (abs_diff > d->max_abs) d->max_abs = abs_diff;
        if (rel_diff > d->max_rel) d->max_rel = rel_diff;
    }
}

/* Two tensors are compared as both stream: a second thread decodes B's
 * into a ring of floats while this one decodes A's and compares each block
 * against the ring. Memory holds the ring and each stream's own block,
 * whatever the tensors' size (a tiled layer can be larger than memory). */
#define RING_FLOATS ((size_t)1 << 18)

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* any field below changed */
    float *ring;            /* [RING_FLOATS] */
    uint64_t put, taken;    /* floats ever written into the ring and taken out */
    int started;            /* B's stream is past its header, or over */
    int stop;               /* the comparison is over: B's stream is to end */
    int done;               /* B's stream has returned rc (err when -1) */
    int rc;
    ff_error_t err;
    const char *path; /* B and its tensor, for the thread */
    const ff_layerfile_tensor_t *tensor;
} ring_t;

/* B's stream, on the second thread: blocks into the ring, waiting for room. */
static int ring_put(void *ctx, const float *values, size_t count, ff_error_t *err) {
    ring_t *r = ctx;
    while (count > 0) {
        pthread_mutex_lock(&r->mu);
        r->started = 1;
        while (!r->stop && r->put - r->taken == RING_FLOATS) pthread_cond_wait(&r->changed, &r->mu);
        const int stop = r->stop;
        const size_t room = RING_FLOATS - (size_t)(r->put - r->taken);
        const size_t at = (size_t)(r->put % RING_FLOATS);
        pthread_mutex_unlock(&r->mu);
        if (stop) return ff_error_set(err, "the comparison stopped");
        size_t n = count < room ? count : room;
        if (n > RING_FLOATS - at) n = RING_FLOATS - at;
        memcpy(r->ring + at, values, n * sizeof(float));
        pthread_mutex_lock(&r->mu);
        r->put += n;
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->mu);
        values += n;
        count -= n;
    }
    return 0;
}

static void *ring_main(void *arg) {
    ring_t *r = arg;
    ff_error_t err;
    int rc = ff_layerfile_stream_tensor(r->path, r->tensor, ring_put, r, &err);
    pthread_mutex_lock(&r->mu);
    r->rc = rc;
    if (rc != 0) r->err = err;
    r->done = 1;
    r->started = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* A's side of one tensor's comparison. */
typedef struct {
    ring_t *ring;
    ff_inspect_tensor_diff_t *d;
    uint64_t expected; /* floats both headers promise */
    uint64_t seen;     /* of A's so far */
    int b_stopped;     /* B's stream ended while A still had values: see ring->rc */
} compare_ctx_t;

/* A's stream: each block against as many of B's values from the ring. */
static int compare_block(void *ctx, const float *x, size_t count, ff_error_t *err) {
    compare_ctx_t *c = ctx;
    ring_t *r = c->ring;
    if (count > c->expected - c->seen)
        return ff_error_set(err, "more than the %" PRIu64 " values its header gives (the file "
                            "changed since it was read?)", c->expected);
    c->seen += count;
    while (count > 0) {
        pthread_mutex_lock(&r->mu);
        while (r->put == r->taken && !r->done) pthread_cond_wait(&r->changed, &r->mu);
        /* A failed stream's values are not compared: its error is the news. */
        const int ended = r->done && (r->rc != 0 || r->put == r->taken);
        const size_t ready = (size_t)(r->put - r->taken);
        const size_t at = (size_t)(r->taken % RING_FLOATS);
        pthread_mutex_unlock(&r->mu);
        if (ended) {
            c->b_stopped = 1;
            return ff_error_set(err, "the other file's stream ended");
        }
        size_t n = count < ready ? count : ready;
        if (n > RING_FLOATS - at) n = RING_FLOATS - at;
        compare_floats(x, r->ring + at, n, c->d);
        pthread_mutex_lock(&r->mu);
        r->taken += n;
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->mu);
        x += n;
        count -= n;
    }
    return 0;
}

/* After A's stream: lets B's finish (to hear its last checksum) unless A
 * failed, ends it early if it holds more values than A, and joins it.
 * @return whether B gave values past the end. */
static int ring_finish(ring_t *r, pthread_t thread, int a_ok) {
    pthread_mutex_lock(&r->mu);
    while (a_ok && !r->done && r->put == r->taken) pthread_cond_wait(&r->changed, &r->mu);
    const int extra = r->put != r->taken;
    r->stop = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mu);
    pthread_join(thread, NULL);
    return extra;
}

/* Compares tensor ta of a with tb of b (the same shape) into d, both
 * streamed at once; the thread is joined whatever happens. @return 0, or -1
 * with err naming the file at fault. */
static int compare_tensor(const char *a, const ff_layerfile_tensor_t *ta, const char *b,
                          const ff_layerfile_tensor_t *tb, float *ring_buffer,
                          ff_inspect_tensor_diff_t *d, ff_error_t *err) {
    ring_t r = {.ring = ring_buffer, .path = b, .tensor = tb};
    compare_ctx_t c = {.ring = &r, .d = d, .expected = ta->raw_bytes / sizeof(float)};
    pthread_t thread;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.changed, NULL);
    int started = pthread_create(&thread, NULL, ring_main, &r);
    if (started != 0) {
        pthread_cond_destroy(&r.changed);
        pthread_mutex_destroy(&r.mu);
        return ff_error_set(err, "cannot start a thread to read %s: %s", b, strerror(started));
    }
    /* A's header is parsed once B's is: cJSON keeps its last error in a
     * global that every parse writes, so two parses must not overlap. */
    pthread_mutex_lock(&r.mu);
    while (!r.started) pthread_cond_wait(&r.changed, &r.mu);
    pthread_mutex_unlock(&r.mu);
    ff_error_t a_err;
    int a_rc = ff_layerfile_stream_tensor(a, ta, compare_block, &c, &a_err);
    int extra = ring_finish(&r, thread, a_rc == 0);
    pthread_cond_destroy(&r.changed);
    pthread_mutex_destroy(&r.mu);
    /* Blame: B's own error when its stream failed first or last; A's when A
     * failed; then any count that is not the headers'. */
    int rc = -1;
    if (c.b_stopped && r.rc != 0)
        *err = r.err;
    else if (c.b_stopped)
        ff_error_set(err, "%s: tensor %s: ended after %" PRIu64 " of %" PRIu64 " values (the "
                     "file changed since it was read?)", b, tb->name, r.put, c.expected);
    else if (a_rc != 0)
        *err = a_err;
    else if (c.seen != c.expected)
        ff_error_set(err, "%s: tensor %s: ended after %" PRIu64 " of %" PRIu64 " values (the "
                     "file changed since it was read?)", a, ta->name, c.seen, c.expected);
    else if (extra)
        ff_error_set(err, "%s: tensor %s: more than the %" PRIu64 " values its header gives "
                     "(the file changed since it was read?)", b, tb->name, c.expected);
    else if (r.rc != 0)
        *err = r.err;
    else
        rc = 0;
    return rc;
}

static int diff_failed(ff_inspect_file_diff_t *out, ff_error_t *err, const ff_error_t *cause) {
    snprintf(out->error, sizeof out->error, "%s", cause->msg);
    out->identical = 0;
    out->readable = 0;
    return ff_error_set(err, "%s", cause->msg);
}

/* Tensor i of a file that has nothing to compare it with is still read
 * whole: a damaged file is never reported as merely different. */
static int check_tensor(const char *path, const ff_layerfile_info_t *info, uint32_t i,
                        ff_error_t *err) {
    if (i >= info->tensor_count) return 0;
    return ff_layerfile_stream_tensor(path, &info->tensors[i], ignore_values, NULL, err);
}

int ff_inspect_diff_files(const char *a, const char *b, ff_inspect_file_diff_t *out,
                          ff_error_t *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->a, sizeof out->a, "%s", a);
    snprintf(out->b, sizeof out->b, "%s", b);
    ff_layerfile_info_t ia, ib;
    ff_error_t cause;
    if (ff_layerfile_read_info(a, &ia, &cause) != 0 || ff_layerfile_read_info(b, &ib, &cause) != 0)
        return diff_failed(out, err, &cause);
    size_t size_a = 0, size_b = 0;
    uint8_t *header_a = read_header_bytes(a, &size_a, &cause);
    uint8_t *header_b = header_a != NULL ? read_header_bytes(b, &size_b, &cause) : NULL;
    if (header_a == NULL || header_b == NULL) {
        free(header_a);
        return diff_failed(out, err, &cause);
    }
    out->headers_identical = size_a == size_b && memcmp(header_a, header_b, size_a) == 0;
    free(header_b);
    free(header_a);

    out->shapes_equal = ia.in == ib.in && ia.out == ib.out;
    out->tensor_count = ia.tensor_count > ib.tensor_count ? ia.tensor_count : ib.tensor_count;
    out->identical = ia.tensor_count == ib.tensor_count;
    float *ring = ff_mem_alloc(FF_MEM_IO, RING_FLOATS * sizeof(float));
    if (ring == NULL) {
        ff_error_set(&cause, "out of memory for a %zu-byte buffer comparing %s and %s",
                     RING_FLOATS * sizeof(float), a, b);
        return diff_failed(out, err, &cause);
    }
    int rc = -1;
    for (uint32_t i = 0; i < out->tensor_count; i++) {
        ff_inspect_tensor_diff_t *d = &out->tensors[i];
        snprintf(d->name, sizeof d->name, "%s", ff_layerfile_tensor_name(i));
        d->in_a = i < ia.tensor_count;
        d->in_b = i < ib.tensor_count;
        d->ndim = i % 2 == 0 ? 2 : 1;
        if (d->in_a) memcpy(d->shape_a, ia.tensors[i].shape, sizeof d->shape_a);
        if (d->in_b) memcpy(d->shape_b, ib.tensors[i].shape, sizeof d->shape_b);
        d->shapes_equal = d->in_a && d->in_b &&
                          memcmp(d->shape_a, d->shape_b, sizeof d->shape_a) == 0;
        if (!d->shapes_equal) {
            out->identical = 0;
            if (check_tensor(a, &ia, i, &cause) != 0 || check_tensor(b, &ib, i, &cause) != 0)
                goto failed;
            continue;
        }
        if (compare_tensor(a, &ia.tensors[i], b, &ib.tensors[i], ring, d, &cause) != 0)
            goto failed;
        d->identical = d->differing == 0;
        if (!d->identical) out->identical = 0;
    }
    out->readable = 1;
    rc = 0;
    goto cleanup;
failed:
    /* Figures from values a checksum then refused are not a comparison. */
    memset(out->tensors, 0, sizeof out->tensors);
    diff_failed(out, err, &cause);
cleanup:
    ff_mem_free(ring);
    return rc;
}

int ff_inspect_diff_runs(const char *a, const char *b, ff_inspect_run_diff_t *out,
                         ff_error_t *err) {
    memset(out, 0, sizeof *out);
    int missing = 0;
    if (ff_run_read(a, &out->a, &missing, err) != 0 || ff_run_read(b, &out->b, &missing, err) != 0)
        return -1;
    if (out->a.config.layers != out->b.config.layers) {
        snprintf(out->message, sizeof out->message,
                 "the runs have different layer counts: %s has %u, %s has %u", a, out->a.config.layers, b,
                 out->b.config.layers);
        return 0;
    }
    out->layers = ff_mem_calloc(FF_MEM_OTHER, out->a.config.layers, sizeof *out->layers);
    if (out->layers == NULL)
        return ff_error_set(err, "out of memory comparing %u layers", out->a.config.layers);
    out->layer_count = out->a.config.layers;
    out->identical = 1;
    for (uint32_t k = 0; k < out->layer_count; k++) {
        char path_a[FF_PATH_MAX], path_b[FF_PATH_MAX];
        ff_error_t layer_err;
        if (ff_run_layer_path(path_a, a, k, err) != 0 || ff_run_layer_path(path_b, b, k, err) != 0)
            return -1;
        if (ff_inspect_diff_files(path_a, path_b, &out->layers[k], &layer_err) != 0)
            out->unreadable++;
        if (!out->layers[k].identical) out->identical = 0;
    }
    return 0;
}

void ff_inspect_run_diff_free(ff_inspect_run_diff_t *diff) {
    if (diff == NULL) return;
    ff_mem_free(diff->layers);
    memset(diff, 0, sizeof *diff);
}

/* ---- export ---- */

/* Exports are streamed tensor by tensor through the atomic writer, so they
 * never sit whole in memory and a failure leaves nothing behind. */
typedef struct {
    ff_atomic_t file;
    int open;
    uint64_t bytes;
} sink_t;

static int sink_open(sink_t *s, const char *path, ff_error_t *err) {
    s->open = ff_atomic_begin(&s->file, path, err) == 0;
    return s->open ? 0 : -1;
}

static int sink_write(sink_t *s, const void *data, size_t size, ff_error_t *err) {
    if (ff_atomic_write(&s->file, data, size, err) != 0) {
        s->open = 0;
        return -1;
    }
    s->bytes += size;
    return 0;
}

static void sink_abort(sink_t *s) {
    if (s->open) ff_atomic_abort(&s->file);
    s->open = 0;
}

static int sink_commit(sink_t *s, ff_error_t *err) {
    s->open = 0;
    return ff_atomic_commit(&s->file, err);
}

/* Reads every header and checks the set can be exported: Adam state when
 * asked for, the layer index each file must hold (names[i], or distinct
 * indices when names is NULL), every tensor sound. infos: [count]
 * (ff_mem_free). */
static ff_layerfile_info_t *read_export_infos(const char *const *paths, size_t count,
                                              const ff_inspect_export_options_t *opt,
                                              ff_error_t *err) {
    if (count == 0) {
        ff_error_set(err, "nothing to export: no layer files");
        return NULL;
    }
    ff_layerfile_info_t *infos = ff_mem_calloc(FF_MEM_OTHER, count, sizeof *infos);
    if (infos == NULL) {
        ff_error_set(err, "out of memory for %zu layer headers", count);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (ff_layerfile_read_info(paths[i], &infos[i], err) != 0) goto fail;
        if (opt->with_optimizer && !infos[i].has_optimizer) {
            ff_error_set(err, "%s: no Adam state to export (the file was saved without training "
                         "state; leave out --with-optimizer)", paths[i]);
            goto fail;
        }
        if (opt->names != NULL && infos[i].meta.layer_index != opt->names[i]) {
            ff_error_set(err, "%s: holds layer %u, expected layer %u (its place in the run)",
                         paths[i], infos[i].meta.layer_index, opt->names[i]);
            goto fail;
        }
        for (size_t j = 0; opt->names == NULL && j < i; j++) {
            if (infos[j].meta.layer_index == infos[i].meta.layer_index) {
                ff_error_set(err, "%s and %s are both layer %u: the exported names would clash",
                             paths[j], paths[i], infos[i].meta.layer_index);
                goto fail;
            }
        }
        /* A damaged source is an error before anything is written. */
        if (check_tensors(paths[i], &infos[i], infos[i].tensor_count, err) != 0) goto fail;
    }
    return infos;
fail:
    ff_mem_free(infos);
    return NULL;
}

static uint32_t export_tensor_count(const ff_layerfile_info_t *info, int with_optimizer) {
    return with_optimizer ? info->tensor_count : 2;
}

/* Adds a non-negative integer as its exact digits (cJSON's doubles would
 * print large offsets in exponent form). */
static cJSON *exact_uint(uint64_t v) {
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return cJSON_CreateRaw(text);
}

static int add_safetensors_entry(cJSON *root, const char *name, const ff_layerfile_tensor_t *t,
                                 uint64_t begin) {
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToObject(root, name, o)) {
        cJSON_Delete(o);
        return -1;
    }
    int bad = cJSON_AddStringToObject(o, "dtype", "F32") == NULL;
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    cJSON *offsets = cJSON_AddArrayToObject(o, "data_offsets");
    bad |= shape == NULL || offsets == NULL;
    for (uint32_t d = 0; !bad && d < t->ndim; d++) {
        cJSON *dim = exact_uint(t->shape[d]);
        bad |= dim == NULL || !cJSON_AddItemToArray(shape, dim);
    }
    const uint64_t range[2] = {begin, begin + t->raw_bytes};
    for (int i = 0; !bad && i < 2; i++) {
        cJSON *v = exact_uint(range[i]);
        bad |= v == NULL || !cJSON_AddItemToArray(offsets, v);
    }
    return bad ? -1 : 0;
}

/* The safetensors JSON header (cJSON_free it), or NULL when out of memory. */
static char *safetensors_header(const ff_layerfile_info_t *infos, size_t count,
                                int with_optimizer) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    char text[64], key[96];
    int bad = 0;
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    bad |= meta == NULL;
    if (meta != NULL) {
        /* safetensors metadata values must all be strings. */
        bad |= cJSON_AddStringToObject(meta, "format", "pt") == NULL;
        bad |= cJSON_AddStringToObject(meta, "source", "ffstream") == NULL;
        bad |= cJSON_AddStringToObject(meta, "writer", "ffstream " FF_VERSION) == NULL;
        snprintf(text, sizeof text, "%zu", count);
        bad |= cJSON_AddStringToObject(meta, "layers", text) == NULL;
        bad |= cJSON_AddStringToObject(meta, "layout",
                                       "torch.nn.Linear: weight [out, in], bias [out]") == NULL;
        bad |= cJSON_AddStringToObject(meta, "activation", "relu") == NULL;
        bad |= cJSON_AddStringToObject(meta, "with_optimizer", with_optimizer ? "true" : "false") ==
               NULL;
        for (size_t i = 0; with_optimizer && i < count; i++) {
            snprintf(key, sizeof key, "layers.%u.adam_step", infos[i].meta.layer_index);
            snprintf(text, sizeof text, "%" PRId64, infos[i].adam_step);
            bad |= cJSON_AddStringToObject(meta, key, text) == NULL;
        }
    }
    uint64_t offset = 0;
    for (size_t i = 0; !bad && i < count; i++) {
        for (uint32_t t = 0; t < export_tensor_count(&infos[i], with_optimizer); t++) {
            snprintf(key, sizeof key, "layers.%u.%s", infos[i].meta.layer_index, ff_layerfile_tensor_name(t));
            bad |= add_safetensors_entry(root, key, &infos[i].tensors[t], offset);
            offset += infos[i].tensors[t].raw_bytes;
        }
    }
    char *json = bad ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return json;
}

/* Streams decoded values into an export sink. */
static int sink_values(void *ctx, const float *values, size_t count, ff_error_t *err) {
    return sink_write(ctx, values, count * sizeof(float), err);
}

/* Refuses to replace an existing output without --force. */
static int check_output(const char *path, int force, ff_error_t *err) {
    struct stat st;
    if (path == NULL) return ff_error_set(err, "export: no output path given");
    if (!force && lstat(path, &st) == 0)
        return ff_error_set(err, "%s: exists; pass --force to replace it", path);
    return 0;
}

int ff_inspect_export_safetensors(const char *out_path, const char *const *paths, size_t count,
                                  const ff_inspect_export_options_t *opt,
                                  ff_inspect_export_t *result, ff_error_t *err) {
    if (result != NULL) memset(result, 0, sizeof *result);
    const int with_optimizer = opt->with_optimizer;
    if (check_output(out_path, opt->force, err) != 0) return -1;
    ff_layerfile_info_t *infos = read_export_infos(paths, count, opt, err);
    if (infos == NULL) return -1;
    int rc = -1;
    char *json = NULL;
    sink_t sink = {.open = 0};
    size_t tensors = 0;
    json = safetensors_header(infos, count, with_optimizer);
    if (json == NULL) {
        ff_error_set(err, "%s: out of memory building the export", out_path);
        goto cleanup;
    }
    /* Spaces after the JSON put the data at a multiple of 8 bytes, as the
     * reference writer does, so readers can map the tensors aligned. */
    size_t json_bytes = strlen(json);
    size_t padding = (SAFETENSORS_ALIGN - json_bytes % SAFETENSORS_ALIGN) % SAFETENSORS_ALIGN;
    uint64_t header_bytes = (uint64_t)(json_bytes + padding);
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)(header_bytes >> (8 * i));
    const char spaces[SAFETENSORS_ALIGN] = "       ";
    if (sink_open(&sink, out_path, err) != 0 || sink_write(&sink, length, 8, err) != 0 ||
        sink_write(&sink, json, json_bytes, err) != 0 ||
        sink_write(&sink, spaces, padding, err) != 0)
        goto cleanup;
    for (size_t i = 0; i < count; i++) {
        for (uint32_t t = 0; t < export_tensor_count(&infos[i], with_optimizer); t++) {
            const ff_layerfile_tensor_t *tensor = &infos[i].tensors[t];
            if (ff_layerfile_stream_tensor(paths[i], tensor, sink_values, &sink, err) != 0)
                goto cleanup;
            tensors++;
        }
    }
    uint64_t bytes = sink.bytes;
    if (sink_commit(&sink, err) != 0) goto cleanup;
    if (result != NULL) {
        result->tensors = tensors;
        result->bytes = bytes;
    }
    rc = 0;
cleanup:
    if (rc != 0) sink_abort(&sink);
    cJSON_free(json);
    ff_mem_free(infos);
    return rc;
}

/* The .npy header of a float32 array of this shape (format 1.0): magic (6),
 * version (2), header length (2), the dict, spaces, '\n', the whole a
 * multiple of 64 so the data are aligned. @return its bytes, or 0 when the
 * shape is impossible (err set). */
static size_t npy_header(uint8_t *header, const char *path, uint32_t ndim, const uint64_t *shape,
                         size_t *data_bytes, ff_error_t *err) {
    if (ndim < 1 || ndim > 2) {
        ff_error_set(err, "%s: %u dimensions, expected 1 or 2", path, ndim);
        return 0;
    }
    size_t count = 1;
    for (uint32_t d = 0; d < ndim; d++)
        if (shape[d] > SIZE_MAX || ff_mul_size(count, (size_t)shape[d], &count) != 0 ||
            ff_mul_size(count, sizeof(float), data_bytes) != 0) {
            ff_error_set(err, "%s: shape too large", path);
            return 0;
        }
    char dict[160];
    if (ndim == 1)
        snprintf(dict, sizeof dict,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ",), }", shape[0]);
    else
        snprintf(dict, sizeof dict,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %" PRIu64 "), }",
                 shape[0], shape[1]);
    size_t dict_bytes = strlen(dict);
    size_t total = (10 + dict_bytes + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (uint8_t)((total - 10) & 0xff);
    header[9] = (uint8_t)((total - 10) >> 8);
    memcpy(header + 10, dict, dict_bytes);
    memset(header + 10 + dict_bytes, ' ', total - 10 - dict_bytes - 1);
    header[total - 1] = '\n';
    return total;
}

int ff_inspect_write_npy(const char *path, const float *data, uint32_t ndim, const uint64_t *shape,
                         ff_error_t *err) {
    uint8_t header[256];
    size_t bytes, total = npy_header(header, path, ndim, shape, &bytes, err);
    if (total == 0) return -1;
    sink_t sink = {.open = 0};
    if (sink_open(&sink, path, err) != 0 || sink_write(&sink, header, total, err) != 0 ||
        sink_write(&sink, data, bytes, err) != 0 || sink_commit(&sink, err) != 0) {
        sink_abort(&sink);
        return -1;
    }
    return 0;
}

/* Removes a directory of regular files (an export written here). */
static void remove_export_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[FF_PATH_MAX];
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                ff_path_format(path, NULL, "%s/%s", dir, e->d_name) == 0)
                unlink(path);
        closedir(d);
    }
    rmdir(dir);
}

int ff_inspect_export_npy(const char *dir, const char *const *paths, size_t count,
                          const ff_inspect_export_options_t *opt, ff_inspect_export_t *result,
                          ff_error_t *err) {
    if (result != NULL) memset(result, 0, sizeof *result);
    if (check_output(dir, opt->force, err) != 0) return -1;
    struct stat st;
    if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return ff_error_set(err, "%s: exists and is not a directory", dir);
    ff_layerfile_info_t *infos = read_export_infos(paths, count, opt, err);
    if (infos == NULL) return -1;
    /* All or nothing: every file goes into a new directory beside dir,
     * which replaces dir only when complete. */
    char tmp[FF_PATH_MAX], old[FF_PATH_MAX];
    int rc = -1, made = 0;
    size_t tensors = 0;
    uint64_t bytes = 0;
    if (ff_path_format(tmp, err, "%s.tmp.XXXXXX", dir) != 0 ||
        ff_path_format(old, err, "%s.old.tmp.XXXXXX", dir) != 0)
        goto cleanup;
    if (mkdtemp(tmp) == NULL) {
        ff_error_set(err, "%s: cannot create a directory beside it: %s", dir, strerror(errno));
        goto cleanup;
    }
    made = 1;
    for (size_t i = 0; i < count; i++) {
        uint32_t name = opt->names != NULL ? opt->names[i] : infos[i].meta.layer_index;
        for (uint32_t t = 0; t < export_tensor_count(&infos[i], opt->with_optimizer); t++) {
            const ff_layerfile_tensor_t *tensor = &infos[i].tensors[t];
            char path[FF_PATH_MAX];
            uint8_t header[256];
            size_t data_bytes, total;
            if (ff_path_format(path, err, "%s/layers.%u.%s.npy", tmp, name, tensor->name) != 0)
                goto cleanup;
            total = npy_header(header, path, tensor->ndim, tensor->shape, &data_bytes, err);
            sink_t sink = {.open = 0};
            if (total == 0 || sink_open(&sink, path, err) != 0 ||
                sink_write(&sink, header, total, err) != 0 ||
                ff_layerfile_stream_tensor(paths[i], tensor, sink_values, &sink, err) != 0 ||
                sink_commit(&sink, err) != 0) {
                sink_abort(&sink);
                goto cleanup;
            }
            tensors++;
            bytes += total + data_bytes;
        }
    }
    /* An old export (--force) moves aside, the new one takes its name. */
    int replaced = lstat(dir, &st) == 0;
    if (replaced && (mkdtemp(old) == NULL || rename(dir, old) != 0)) {
        ff_error_set(err, "%s: cannot move the old export aside: %s", dir, strerror(errno));
        goto cleanup;
    }
    if (rename(tmp, dir) != 0) {
        ff_error_set(err, "%s: rename from %s failed: %s", dir, tmp, strerror(errno));
        if (replaced) rename(old, dir);
        goto cleanup;
    }
    made = 0;
    if (replaced) remove_export_dir(old);
    if (ff_fileio_sync_parent(dir, err) != 0) goto cleanup;
    if (result != NULL) {
        result->tensors = tensors;
        result->bytes = bytes;
    }
    rc = 0;
cleanup:
    if (made) remove_export_dir(tmp);
    ff_mem_free(infos);
    return rc;
}
