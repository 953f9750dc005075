/* ffprofile: the memory profile of ffstream's trainers against depth. Every
 * (mode, depth) is a separate fftrain process; its peak RSS comes from the
 * child's rusage (as the original experiment measured it), and, under
 * --mem-limit, the cgroup's peak and OOM-kill counter too. The results JSON
 * holds the configuration, the machine, one record per run (with fftrain's
 * own result) and the memory model's prediction for every mode and depth.
 * A run that fails is recorded with its status and stderr tail; the sweep
 * goes on. The file is rewritten after every run. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ffstream/cgroup.h"
#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/memmodel.h"
#include "ffstream/progress.h"
#include "ffstream/fileio.h"
#include "ffstream/report.h"

#define MAX_DEPTHS 256

typedef struct {
    ff_mode_t modes[FF_MODE_COUNT];
    int mode_count;
    uint32_t depths[MAX_DEPTHS];
    int depth_count;
    ff_config_t base;        /* hidden, batch, epochs, lr, limits, data, threads */
    uint64_t mem_limit;      /* 0 = none */
    char out[FF_PATH_MAX];
    char fftrain[FF_PATH_MAX];
    char work[FF_PATH_MAX];         /* run directories of ff-stream */
    int quiet;
    int full;
    char depth_text[256];
} profile_args_t;

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: ffprofile [options] --out FILE\n"
        "Runs fftrain once per (mode, depth), each in its own process, and writes\n"
        "peak memory, time and accuracy of every run as JSON (see ffplot).\n"
        "\n"
        "  --modes LIST        comma-separated: ff-stream, ff-mem, bp, ff-recurrent\n"
        "                      [ff-stream,ff-mem,bp]\n"
        "  --layers A:B:S      depths A, A+S, ... up to B; or a list 2,7,12 [2:22:5]\n"
        "  --hidden N          units per layer [2000]\n"
        "  --batch N           rows per step [5000]\n"
        "  --epochs N          [1]\n"
        "  --lr X              [0.03]\n"
        "  --train-limit N     first N training images (0 = all) [0]\n"
        "  --test-limit N      first N test images (0 = all) [0]\n"
        "  --threads N         BLAS threads of each run [online CPUs]\n"
        "  --data DIR          dataset directory [fftrain's default]\n"
        "  --mem-limit SIZE    run each process in a cgroup with this memory limit\n"
        "                      and no swap (e.g. 512M, 2G); OOM kills are recorded\n"
        "  --full              the original experiment: all three modes, layers\n"
        "                      2:47:5, hidden 2000, batch 5000, 1 epoch, all data\n"
        "  --fftrain PATH      the fftrain to run [next to ffprofile]\n"
        "  --work DIR          where ff-stream runs keep their files [a temporary\n"
        "                      directory, removed afterwards]\n"
        "  --out FILE          results JSON (rewritten after every run)\n"
        "  --quiet             no table\n");
}

static int parse_u32(const char *flag, const char *v, uint32_t min, uint32_t max, uint32_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long x = v != NULL && v[0] != '-' ? strtoull(v, &end, 10) : 0;
    if (v == NULL || v[0] == '-' || errno != 0 || end == v || *end != '\0' || x < min ||
        x > max) {
        fprintf(stderr, "ffprofile: %s: '%s' is not a whole number in %u..%u\n", flag,
                v ? v : "", min, max);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

/* "A:B:S" or "a,b,c". */
static int parse_depths(const char *v, profile_args_t *a) {
    a->depth_count = 0;
    snprintf(a->depth_text, sizeof a->depth_text, "%s", v);
    unsigned lo, hi, step;
    char tail;
    if (sscanf(v, "%u:%u:%u%c", &lo, &hi, &step, &tail) == 3) {
        if (lo < 1 || step < 1 || hi < lo || hi > 4096) {
            fprintf(stderr,
                    "ffprofile: --layers %s: empty or invalid range (expected A:B:S with "
                    "1 <= A <= B <= 4096 and S >= 1)\n",
                    v);
            return -1;
        }
        for (unsigned d = lo; d <= hi && a->depth_count < MAX_DEPTHS; d += step)
            a->depths[a->depth_count++] = d;
        return 0;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        uint32_t d;
        if (a->depth_count >= MAX_DEPTHS || parse_u32("--layers", t, 1, 4096, &d) != 0) return -1;
        a->depths[a->depth_count++] = d;
    }
    if (a->depth_count == 0) {
        fprintf(stderr, "ffprofile: --layers '%s': empty layer list\n", v);
        return -1;
    }
    return 0;
}

static int parse_modes(const char *v, profile_args_t *a) {
    a->mode_count = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int m = 0; m < FF_MODE_COUNT; m++)
            if (strcmp(t, ff_mode_name((ff_mode_t)m)) == 0) found = m;
        if (found < 0) {
            fprintf(stderr, "ffprofile: --modes: unknown mode '%s', expected ff-stream, ff-mem, bp or ff-recurrent\n", t);
            return -1;
        }
        if (a->mode_count < FF_MODE_COUNT) a->modes[a->mode_count++] = (ff_mode_t)found;
    }
    if (a->mode_count == 0) {
        fprintf(stderr, "ffprofile: --modes: empty mode list\n");
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, profile_args_t *a) {
    memset(a, 0, sizeof *a);
    ff_config_defaults(&a->base);
    a->base.quiet = 1;
    if (parse_modes("ff-stream,ff-mem,bp", a) != 0 || parse_depths("2:22:5", a) != 0) return -1;
    /* fftrain next to this program. */
    char self[FF_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) *slash = '\0';
        snprintf(a->fftrain, sizeof a->fftrain, "%.4000s/fftrain", self);
    } else {
        snprintf(a->fftrain, sizeof a->fftrain, "fftrain");
    }
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(f, "--quiet") == 0) { a->quiet = 1; continue; }
        if (strcmp(f, "--full") == 0) { a->full = 1; continue; }
        if (v == NULL) {
            fprintf(stderr, "ffprofile: %s: missing value (see --help)\n", f);
            return -1;
        }
        i++;
        uint32_t u;
        ff_error_t err;
        if (strcmp(f, "--modes") == 0) {
            if (parse_modes(v, a) != 0) return -1;
        } else if (strcmp(f, "--layers") == 0) {
            if (parse_depths(v, a) != 0) return -1;
        } else if (strcmp(f, "--hidden") == 0) {
            if (parse_u32(f, v, 1, 1u << 20, &a->base.hidden) != 0) return -1;
        } else if (strcmp(f, "--batch") == 0) {
            if (parse_u32(f, v, 2, 1u << 24, &a->base.batch) != 0) return -1;
        } else if (strcmp(f, "--epochs") == 0) {
            if (parse_u32(f, v, 1, 1000000, &a->base.epochs) != 0) return -1;
        } else if (strcmp(f, "--lr") == 0) {
            char *end = NULL;
            a->base.lr = strtod(v, &end);
            if (end == v || *end != '\0' || !(a->base.lr > 0)) {
                fprintf(stderr, "ffprofile: --lr: '%s' is not a positive number\n", v);
                return -1;
            }
        } else if (strcmp(f, "--train-limit") == 0) {
            if (parse_u32(f, v, 0, UINT32_MAX, &u) != 0) return -1;
            a->base.train_limit = u;
        } else if (strcmp(f, "--test-limit") == 0) {
            if (parse_u32(f, v, 0, UINT32_MAX, &u) != 0) return -1;
            a->base.test_limit = u;
        } else if (strcmp(f, "--threads") == 0) {
            if (parse_u32(f, v, 1, 1024, &u) != 0) return -1;
            a->base.threads = (int)u;
        } else if (strcmp(f, "--data") == 0) {
            snprintf(a->base.data_dir, sizeof a->base.data_dir, "%s", v);
        } else if (strcmp(f, "--mem-limit") == 0) {
            if (ff_parse_size(v, &a->mem_limit, &err) != 0) {
                fprintf(stderr, "ffprofile: --mem-limit: %s\n", err.msg);
                return -1;
            }
        } else if (strcmp(f, "--fftrain") == 0 || strcmp(f, "--work") == 0 ||
                   strcmp(f, "--out") == 0) {
            /* Room is left for the names made inside the work directory. */
            if (strlen(v) >= FF_PATH_MAX - 64) {
                fprintf(stderr, "ffprofile: %s: path too long (at most %d bytes)\n", f,
                        FF_PATH_MAX - 65);
                return -1;
            }
            char *dst = strcmp(f, "--fftrain") == 0 ? a->fftrain
                        : strcmp(f, "--work") == 0  ? a->work
                                                    : a->out;
            snprintf(dst, FF_PATH_MAX, "%s", v);
        } else {
            fprintf(stderr, "ffprofile: unknown flag '%s' (see --help)\n", f);
            return -1;
        }
    }
    if (a->full) {
        parse_modes("ff-stream,ff-mem,bp", a);
        parse_depths("2:47:5", a);
        a->base.hidden = 2000;
        a->base.batch = 5000;
        a->base.epochs = 1;
        a->base.train_limit = a->base.test_limit = 0;
    }
    if (a->out[0] == '\0') {
        fprintf(stderr, "ffprofile: --out FILE is required (see --help)\n");
        return -1;
    }
    if (a->base.batch % 2 != 0) {
        fprintf(stderr, "ffprofile: --batch %u is odd; FF needs half positive, half negative rows\n",
                a->base.batch);
        return -1;
    }
    return 0;
}

/* ---- the machine --------------------------------------------------------- */

static cJSON *machine_json(int threads) {
    cJSON *m = cJSON_CreateObject();
    char line[512], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f != NULL) fclose(f);
    unsigned long long mem_kib = 0;
    f = fopen("/proc/meminfo", "r");
    if (f != NULL) {
        if (fscanf(f, "MemTotal: %llu kB", &mem_kib) != 1) mem_kib = 0;
        fclose(f);
    }
    struct utsname u;
    cJSON_AddStringToObject(m, "cpu", model);
    cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(m, "memory_bytes", (double)mem_kib * 1024.0);
    if (uname(&u) == 0) {
        char kernel[600];
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(m, "kernel", kernel);
    }
    cJSON_AddStringToObject(m, "blas", ff_dense_blas_name());
    cJSON_AddNumberToObject(m, "blas_threads", threads);
    return m;
}

/* ---- one run -------------------------------------------------------------- */

typedef struct {
    int exited, exit_status, term_signal, oom_killed;
    uint64_t peak_rss, cgroup_peak;
    double wall;
} run_outcome_t;

/* Runs argv without a cgroup: fork, exec, wait4 for the rusage. */
static int run_plain(char *const argv[], int stderr_fd, run_outcome_t *o) {
    double t0 = ff_now();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (stderr_fd >= 0) dup2(stderr_fd, STDERR_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "ffprofile: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) return -1;
        if (interrupted) kill(pid, SIGTERM);
    }
    o->wall = ff_now() - t0;
    o->exited = WIFEXITED(status);
    o->exit_status = o->exited ? WEXITSTATUS(status) : -1;
    o->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    o->peak_rss = (uint64_t)ru.ru_maxrss * 1024u;
    return 0;
}

static char *read_text(const char *path, size_t max_tail) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long start = size > (long)max_tail ? size - (long)max_tail : 0;
    fseek(f, start, SEEK_SET);
    char *text = malloc((size_t)(size - start) + 1);
    size_t n = text != NULL ? fread(text, 1, (size_t)(size - start), f) : 0;
    if (text != NULL) text[n] = '\0';
    fclose(f);
    return text;
}

static void rm_rf(const char *path) {
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
}

static cJSON *one_run(const profile_args_t *a, const ff_cgroup_env_t *cg, ff_mode_t mode,
                      uint32_t depth, const char *work, uint64_t pixels) {
    char json_path[FF_PATH_MAX], err_path[FF_PATH_MAX], run_dir[FF_PATH_MAX];
    /* --work is at most FF_PATH_MAX - 65 bytes: these fit. */
    ff_path_format(json_path, NULL, "%s/%s-%u.json", work, ff_mode_name(mode), depth);
    ff_path_format(err_path, NULL, "%s/%s-%u.stderr", work, ff_mode_name(mode), depth);
    ff_path_format(run_dir, NULL, "%s/%s-%u.run", work, ff_mode_name(mode), depth);
    unlink(json_path);
    rm_rf(run_dir);
    char s_layers[16], s_hidden[16], s_batch[16], s_epochs[16], s_lr[32], s_train[24], s_test[24],
        s_threads[16];
    snprintf(s_layers, sizeof s_layers, "%u", depth);
    snprintf(s_hidden, sizeof s_hidden, "%u", a->base.hidden);
    snprintf(s_batch, sizeof s_batch, "%u", a->base.batch);
    snprintf(s_epochs, sizeof s_epochs, "%u", a->base.epochs);
    snprintf(s_lr, sizeof s_lr, "%.17g", a->base.lr);
    snprintf(s_train, sizeof s_train, "%llu", (unsigned long long)a->base.train_limit);
    snprintf(s_test, sizeof s_test, "%llu", (unsigned long long)a->base.test_limit);
    snprintf(s_threads, sizeof s_threads, "%d", a->base.threads);
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)a->fftrain;
    argv[n++] = "--mode";
    argv[n++] = (char *)ff_mode_name(mode);
    argv[n++] = "--layers", argv[n++] = s_layers;
    argv[n++] = "--hidden", argv[n++] = s_hidden;
    argv[n++] = "--batch", argv[n++] = s_batch;
    argv[n++] = "--epochs", argv[n++] = s_epochs;
    argv[n++] = "--lr", argv[n++] = s_lr;
    argv[n++] = "--train-limit", argv[n++] = s_train;
    argv[n++] = "--test-limit", argv[n++] = s_test;
    argv[n++] = "--threads", argv[n++] = s_threads;
    argv[n++] = "--data", argv[n++] = (char *)a->base.data_dir;
    argv[n++] = "--json", argv[n++] = json_path;
    argv[n++] = "--quiet";
    if (mode == FF_MODE_FF_STREAM) argv[n++] = "--run", argv[n++] = run_dir;
    argv[n] = NULL;

    run_outcome_t o = {0};
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int started;
    ff_error_t err = {{0}};
    if (a->mem_limit > 0) {
        ff_cgroup_result_t r;
        started = ff_cgroup_run(cg, argv, a->mem_limit, fd, &r, &err);
        if (started == 0) {
            o.exited = r.exited;
            o.exit_status = r.exit_status;
            o.term_signal = r.term_signal;
            o.oom_killed = r.oom_killed;
            o.peak_rss = r.child_maxrss_bytes;
            o.cgroup_peak = r.peak_bytes;
            o.wall = r.wall_seconds;
            /* ff_cgroup_run took the signal to pass it on: stop the sweep too. */
            if (r.forwarded_signal != 0) interrupted = 1;
        }
    } else {
        started = run_plain(argv, fd, &o);
        if (started != 0) snprintf(err.msg, sizeof err.msg, "fork: %s", strerror(errno));
    }
    if (fd >= 0) close(fd);

    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "mode", ff_mode_name(mode));
    cJSON_AddNumberToObject(rec, "layers", depth);
    const char *status = "failed";
    if (started == 0 && o.oom_killed) status = "oom-killed";
    else if (started == 0 && o.exited && o.exit_status == 0) status = "ok";
    cJSON_AddStringToObject(rec, "status", status);
    if (started == 0 && o.exited) cJSON_AddNumberToObject(rec, "exit_status", o.exit_status);
    else cJSON_AddNullToObject(rec, "exit_status");
    if (started == 0 && o.term_signal) cJSON_AddNumberToObject(rec, "signal", o.term_signal);
    else cJSON_AddNullToObject(rec, "signal");
    cJSON_AddNumberToObject(rec, "peak_rss_bytes", (double)o.peak_rss);
    if (a->mem_limit > 0 && started == 0)
        cJSON_AddNumberToObject(rec, "cgroup_peak_bytes", (double)o.cgroup_peak);
    else
        cJSON_AddNullToObject(rec, "cgroup_peak_bytes");
    cJSON_AddNumberToObject(rec, "wall_seconds", o.wall);
    ff_config_t shape = a->base;
    shape.mode = mode;
    shape.layers = depth;
    /* Weights and the two Adam moments of the whole network: what an
     * in-memory trainer must hold at once. */
    cJSON_AddNumberToObject(rec, "weights_adam_bytes",
                            3.0 * sizeof(float) * (double)ff_memmodel_network_parameters(&shape, pixels));
    char *text = read_text(json_path, 1 << 22);
    cJSON *result = text != NULL ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *acc = result != NULL ? cJSON_GetObjectItemCaseSensitive(result, "test_accuracy") : NULL;
    if (strcmp(status, "ok") == 0 && cJSON_IsNumber(acc))
        cJSON_AddNumberToObject(rec, "test_accuracy", acc->valuedouble);
    else
        cJSON_AddNullToObject(rec, "test_accuracy");
    if (result != NULL) cJSON_AddItemToObject(rec, "fftrain", result);
    else cJSON_AddNullToObject(rec, "fftrain");
    char *tail = read_text(err_path, 2000);
    if (started != 0) {
        cJSON_AddStringToObject(rec, "stderr_tail", err.msg);
    } else if (strcmp(status, "ok") != 0) {
        cJSON_AddStringToObject(rec, "stderr_tail", tail != NULL ? tail : "");
    }
    free(tail);
    unlink(err_path);
    unlink(json_path);
    rm_rf(run_dir);
    return rec;
}

/* ---- the document --------------------------------------------------------- */

static cJSON *config_json(const profile_args_t *a, int argc, char **argv) {
    cJSON *c = cJSON_CreateObject();
    cJSON *modes = cJSON_AddArrayToObject(c, "modes");
    for (int i = 0; i < a->mode_count; i++)
        cJSON_AddItemToArray(modes, cJSON_CreateString(ff_mode_name(a->modes[i])));
    cJSON *depths = cJSON_AddArrayToObject(c, "layers");
    for (int i = 0; i < a->depth_count; i++)
        cJSON_AddItemToArray(depths, cJSON_CreateNumber(a->depths[i]));
    cJSON_AddNumberToObject(c, "hidden", a->base.hidden);
    cJSON_AddNumberToObject(c, "batch", a->base.batch);
    cJSON_AddNumberToObject(c, "epochs", a->base.epochs);
    cJSON_AddNumberToObject(c, "lr", a->base.lr);
    cJSON_AddNumberToObject(c, "train_limit", (double)a->base.train_limit);
    cJSON_AddNumberToObject(c, "test_limit", (double)a->base.test_limit);
    cJSON_AddStringToObject(c, "data", a->base.data_dir);
    if (a->mem_limit > 0) cJSON_AddNumberToObject(c, "mem_limit_bytes", (double)a->mem_limit);
    else cJSON_AddNullToObject(c, "mem_limit_bytes");
    cJSON_AddBoolToObject(c, "full", a->full);
    char cmd[4096] = "";
    size_t used = 0;
    for (int i = 0; i < argc && used < sizeof cmd - 1; i++)
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", argv[i]);
    cJSON_AddStringToObject(c, "command", cmd);
    return c;
}

/* The model's prediction for every mode and depth. */
static cJSON *model_json(const profile_args_t *a, uint64_t pixels, uint64_t train, uint64_t test) {
    cJSON *arr = cJSON_CreateArray();
    for (int mi = 0; mi < a->mode_count; mi++) {
        for (int di = 0; di < a->depth_count; di++) {
            ff_config_t cfg = a->base;
            cfg.mode = a->modes[mi];
            cfg.layers = a->depths[di];
            ff_memmodel_t m = ff_memmodel(&cfg, pixels, train, test);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "mode", ff_mode_name(cfg.mode));
            cJSON_AddNumberToObject(o, "layers", cfg.layers);
            cJSON_AddNumberToObject(o, "bytes", (double)m.total);
            cJSON_AddNumberToObject(o, "parameters_bytes", (double)m.parameters);
            cJSON_AddNumberToObject(o, "activations_bytes", (double)m.activations);
            cJSON_AddNumberToObject(o, "io_bytes", (double)m.io);
            cJSON_AddNumberToObject(o, "dataset_bytes", (double)m.dataset);
            cJSON_AddItemToArray(arr, o);
        }
    }
    return arr;
}

static int save(const char *path, cJSON *doc) {
    char *text = cJSON_Print(doc);
    ff_error_t err;
    int rc = text != NULL ? ff_fileio_write_atomic(path, text, strlen(text), &err) : -1;
    if (rc != 0) fprintf(stderr, "ffprofile: %s\n", text ? err.msg : "out of memory");
    free(text);
    return rc;
}

static void print_row(const cJSON *rec) {
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(rec, "test_accuracy");
    const cJSON *cgp = cJSON_GetObjectItemCaseSensitive(rec, "cgroup_peak_bytes");
    char acc_s[16] = "-", cg_s[24] = "-";
    if (cJSON_IsNumber(acc)) snprintf(acc_s, sizeof acc_s, "%.2f%%", 100 * acc->valuedouble);
    if (cJSON_IsNumber(cgp)) snprintf(cg_s, sizeof cg_s, "%.1f", cgp->valuedouble / 1048576.0);
    printf("%-12s %6d %12.1f %12s %10.1f %9s  %s\n",
           cJSON_GetObjectItemCaseSensitive(rec, "mode")->valuestring,
           (int)cJSON_GetObjectItemCaseSensitive(rec, "layers")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(rec, "peak_rss_bytes")->valuedouble / 1048576.0, cg_s,
           cJSON_GetObjectItemCaseSensitive(rec, "wall_seconds")->valuedouble, acc_s,
           cJSON_GetObjectItemCaseSensitive(rec, "status")->valuestring);
    fflush(stdout);
}

int main(int argc, char **argv) {
    profile_args_t a;
    if (parse_args(argc, argv, &a) != 0) return 2;
    if (access(a.fftrain, X_OK) != 0) {
        fprintf(stderr, "ffprofile: %s: not an executable fftrain (use --fftrain PATH)\n",
                a.fftrain);
        return 2;
    }
    ff_cgroup_env_t cg = {0};
    ff_error_t err;
    if (a.mem_limit > 0 && ff_cgroup_probe(&cg, &err) != 0) {
        fprintf(stderr, "ffprofile: --mem-limit needs a writable memory cgroup: %s\n", err.msg);
        return 1;
    }
    /* The data's shape and counts, for the memory model. */
    ff_dataset_t train, test;
    if (ff_data_load(&train, a.base.data_dir, true, a.base.train_limit, &err) != 0) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        return 1;
    }
    if (ff_data_load(&test, a.base.data_dir, false, a.base.test_limit, &err) != 0) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        ff_data_free(&train);
        return 1;
    }
    uint64_t pixels = train.pixels, n_train = train.count, n_test = test.count;
    ff_data_free(&test);
    ff_data_free(&train);
    if (a.base.batch / 2 > n_train) {
        fprintf(stderr, "ffprofile: --batch %u needs %u training images, only %llu loaded\n",
                a.base.batch, a.base.batch / 2, (unsigned long long)n_train);
        return 2;
    }

    char work[FF_PATH_MAX];
    int own_work = a.work[0] == '\0';
    if (own_work) {
        const char *tmp = getenv("TMPDIR");
        snprintf(work, sizeof work, "%s/ffprofile-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (mkdtemp(work) == NULL) {
            fprintf(stderr, "ffprofile: cannot create a work directory: %s\n", strerror(errno));
            return 1;
        }
    } else {
        snprintf(work, sizeof work, "%s", a.work);
        if (mkdir(work, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "ffprofile: %s: %s\n", work, strerror(errno));
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "format", "ffstream-profile");
    cJSON_AddNumberToObject(doc, "version", 1);
    cJSON_AddItemToObject(doc, "config", config_json(&a, argc, argv));
    cJSON_AddItemToObject(doc, "machine", machine_json(a.base.threads));
    cJSON_AddNumberToObject(doc, "train_samples", (double)n_train);
    cJSON_AddNumberToObject(doc, "test_samples", (double)n_test);
    cJSON_AddItemToObject(doc, "model", model_json(&a, pixels, n_train, n_test));
    cJSON *runs = cJSON_AddArrayToObject(doc, "runs");
    if (!a.quiet) {
        printf("%-12s %6s %12s %12s %10s %9s  %s\n", "mode", "layers", "peak RSS MB",
               "cgroup MB", "seconds", "accuracy", "status");
        fflush(stdout);
    }
    int failures = 0, total = 0;
    for (int di = 0; di < a.depth_count && !interrupted; di++) {
        for (int mi = 0; mi < a.mode_count && !interrupted; mi++) {
            cJSON *rec = one_run(&a, &cg, a.modes[mi], a.depths[di], work, pixels);
            if (!a.quiet) print_row(rec);
            failures += strcmp(cJSON_GetObjectItemCaseSensitive(rec, "status")->valuestring, "ok") != 0;
            cJSON_AddItemToArray(runs, rec);
            total++;
            save(a.out, doc);
        }
    }
    cJSON_AddBoolToObject(doc, "interrupted", interrupted != 0);
    int rc = save(a.out, doc);
    cJSON_Delete(doc);
    if (own_work) rm_rf(work);
    if (!a.quiet)
        printf("%s: %d runs, %d not ok%s\n", a.out, total, failures,
               interrupted ? " (interrupted)" : "");
    return rc != 0 ? 1 : (interrupted ? 130 : 0);
}
