/* ffprofile: the memory profile of ffstream's trainers (and of the PyTorch
 * reference) against depth. Every (mode, depth) cell is a separate process:
 * fftrain, or python3 running ff_torch.py for the torch-* modes; its peak
 * RSS comes from the child's rusage (as the original experiment measured
 * it), and, under --mem-limit, the cgroup's peak and OOM-kill counter too.
 * The results JSON holds the configuration, the build and the machine, one
 * record per cell (with the trainer's own result) and the memory model's
 * prediction. A cell that fails is recorded with its status and stderr tail
 * and the sweep goes on. The file is rewritten atomically after every cell,
 * and --resume continues a sweep from it, so a sweep of hours can run over
 * several sittings. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ffstream/cgroup.h"
#include "ffstream/comm.h"
#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/dense.h"
#include "ffstream/fileio.h"
#include "ffstream/json.h"
#include "ffstream/memmodel.h"
#include "ffstream/progress.h"
#include "ffstream/sysinfo.h"
#include "sweep.h"

/* A results file with every fftrain result of a 47-layer sweep is a few
 * MiB; a trainer's own result JSON is far smaller. */
#define RESULTS_MAX_BYTES ((size_t)256 << 20)
#define RESULT_MAX_BYTES ((size_t)16 << 20)

#define TORCH_INSTALL "apt-get install python3-torch"

typedef struct {
    const sweep_mode_t *modes[SWEEP_MODE_COUNT];
    int mode_count;
    uint32_t depths[SWEEP_MAX_DEPTHS];
    int depth_count;
    ff_config_t base;        /* hidden, batch, epochs, lr, seed, limits, data, threads */
    uint64_t mem_limit;      /* 0 = none */
    char out[FF_PATH_MAX];
    int resume;              /* continue the sweep recorded in out */
    int force;               /* --force: replace an existing out */
    char fftrain[FF_PATH_MAX];
    char work[FF_PATH_MAX];         /* run directories of ff-stream */
    char python[FF_PATH_MAX];       /* "" = /usr/bin/python3, else python3 on PATH */
    char torch_script[FF_PATH_MAX];
    int quiet;
    int full;
    char recipe[16];         /* "" = fftrain's default; else passed to FF modes */
    char eval[16];           /* "" = the recipe's; else --eval for FF modes */
    int lr_given;            /* --lr was given: passed to every mode */
    double bp_lr;            /* learning rate of bp and torch-bp (NAN: --lr) */
    uint32_t mpi;            /* ff-stream under mpirun -np mpi (0: one process) */
} profile_args_t;

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out) {
    fprintf(out,
        "usage: ffprofile [options] --out FILE\n"
        "       ffprofile --resume FILE\n"
        "Runs fftrain (or the PyTorch reference) once per (mode, depth), each in its\n"
        "own process, and writes peak memory, time and accuracy of every run as JSON\n"
        "(see ffplot).\n"
        "\n"
        "  --modes LIST        comma-separated: ff-stream, ff-mem, bp, ff-recurrent,\n"
        "                      torch-ff, torch-bp [ff-stream,ff-mem,bp]\n"
        "  --layers A:B:S      depths A, A+S, ... up to B; or a list 2,7,12 [2:22:5]\n"
        "                      (at most %d depths, each 1..%d)\n"
        "  --hidden N          units per layer [2000]\n"
        "  --batch N           rows per step [5000]\n"
        "  --epochs N          [1]\n"
        "  --lr X              [0.03; with --recipe, the recipe's for FF modes]\n"
        "  --recipe NAME       fftrain's --recipe for the FF modes: original or best\n"
        "                      (best: a recipe that learns; see the README) [original]\n"
        "  --eval NAME         fftrain's --eval for the FF modes: goodness (FF alone)\n"
        "                      or softmax (a head on the activities) [the recipe's]\n"
        "  --bp-lr X           learning rate of bp and torch-bp [--lr]\n"
        "  --mpi P             run ff-stream under mpirun -np P (data parallel; the\n"
        "                      other modes run in one process); each rank's peak is\n"
        "                      in the cell's fftrain result (ranks.peak_rss_bytes)\n"
        "  --seed N            [1]\n"
        "  --train-limit N     first N training images (0 = all) [0]\n"
        "  --test-limit N      first N test images (0 = all) [0]\n"
        "  --threads N         BLAS / torch threads of each run [online CPUs]\n"
        "  --data DIR          dataset directory [fftrain's default]\n"
        "  --mem-limit SIZE    run each process in a cgroup with this memory limit\n"
        "                      and no swap (e.g. 512M, 2G); OOM kills are recorded\n"
        "  --full              the original experiment: ff-stream, ff-mem, bp, layers\n"
        "                      2:47:5, hidden 2000, batch 5000, 1 epoch, all data\n"
        "  --fftrain PATH      the fftrain to run [next to ffprofile]\n"
        "  --python PATH       python3 for the torch-* modes [/usr/bin/python3, else\n"
        "                      python3 on PATH; the first that imports torch]\n"
        "  --torch-script PATH ff_torch.py [next to ffprofile]\n"
        "  --work DIR          where ff-stream runs keep their files [a temporary\n"
        "                      directory, removed afterwards]\n"
        "  --out FILE          results JSON (rewritten atomically after every run);\n"
        "                      an existing FILE is refused without --force\n"
        "  --force             replace an existing --out FILE\n"
        "  --resume FILE       continue the sweep in FILE with the options it\n"
        "                      recorded: cells recorded ok or oom-killed are kept,\n"
        "                      failed and missing ones run; options given beside it\n"
        "                      must be the sweep's own\n"
        "  --quiet             no table and no progress line\n",
        SWEEP_MAX_DEPTHS, FF_MAX_LAYERS);
}

/* The directory of this program into out, or "." */
static void self_dir(char *out) {
    char self[FF_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = NULL;
    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
    }
    if (slash != NULL) {
        *slash = '\0';
        snprintf(out, FF_PATH_MAX, "%s", self);
    } else {
        snprintf(out, FF_PATH_MAX, ".");
    }
}

/* A path flag's value into dst; room is left for the names made inside
 * the work directory. */
static int set_path(char *dst, const char *flag, const char *v, ff_error_t *err) {
    if (strlen(v) >= FF_PATH_MAX - 64)
        return ff_error_set(err, "%s: path too long (%zu bytes, at most %d)", flag, strlen(v),
                            FF_PATH_MAX - 65);
    snprintf(dst, FF_PATH_MAX, "%s", v);
    return 0;
}

/* @return 0, 1 for --help, -1 with err. */
static int parse_args(int argc, char **argv, profile_args_t *a, ff_error_t *err) {
    memset(a, 0, sizeof *a);
    ff_config_defaults(&a->base);
    a->bp_lr = NAN;
    a->base.quiet = 1;
    if (sweep_parse_modes("ff-stream,ff-mem,bp", a->modes, &a->mode_count, err) != 0 ||
        sweep_parse_depths("2:22:5", a->depths, &a->depth_count, err) != 0)
        return -1;
    char dir[FF_PATH_MAX];
    self_dir(dir);
    if (ff_path_format(a->fftrain, err, "%s/fftrain", dir) != 0 ||
        ff_path_format(a->torch_script, err, "%s/ff_torch.py", dir) != 0)
        return -1;
    char resume_path[FF_PATH_MAX] = "";
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) return 1;
        if (strcmp(f, "--quiet") == 0) { a->quiet = 1; continue; }
        if (strcmp(f, "--full") == 0) { a->full = 1; continue; }
        if (strcmp(f, "--force") == 0) { a->force = 1; continue; }
        if (strncmp(f, "--", 2) != 0)
            return ff_error_set(err, "unexpected argument '%s' (see --help)", f);
        if (v == NULL) return ff_error_set(err, "%s: missing value (see --help)", f);
        i++;
        /* The options fftrain has too are parsed by fftrain's own table:
         * the same ranges and messages (--lr refuses inf and nan there). */
        static const char *const shared[] = {"--hidden", "--batch", "--epochs", "--lr", "--seed",
                                             "--train-limit", "--test-limit", "--threads",
                                             "--data", NULL};
        int is_shared = 0;
        for (int s = 0; shared[s] != NULL; s++) is_shared |= strcmp(f, shared[s]) == 0;
        if (is_shared) {
            if (ff_config_set(&a->base, ff_option_find(f), v, err) != 0) return -1;
            if (strcmp(f, "--lr") == 0) a->lr_given = 1;
        } else if (strcmp(f, "--recipe") == 0) {
            if (strcmp(v, "original") != 0 && strcmp(v, "best") != 0)
                return ff_error_set(err, "--recipe: '%s', expected original or best", v);
            snprintf(a->recipe, sizeof a->recipe, "%s", v);
        } else if (strcmp(f, "--eval") == 0) {
            if (strcmp(v, "goodness") != 0 && strcmp(v, "softmax") != 0)
                return ff_error_set(err, "--eval: '%s', expected goodness or softmax", v);
            snprintf(a->eval, sizeof a->eval, "%s", v);
        } else if (strcmp(f, "--mpi") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long p = strtoul(v, &end, 10);
            if (end == v || *end != '\0' || errno != 0 || p < 1 || p > FF_MAX_RANKS || v[0] == '-')
                return ff_error_set(err, "--mpi: '%s', expected a rank count in 1..%d", v,
                                    FF_MAX_RANKS);
            a->mpi = (uint32_t)p;
        } else if (strcmp(f, "--bp-lr") == 0) {
            ff_config_t probe = a->base;
            if (ff_config_set(&probe, ff_option_find("--lr"), v, err) != 0)
                return ff_error_wrap(err, "--bp-lr");
            a->bp_lr = probe.lr;
        } else if (strcmp(f, "--modes") == 0) {
            if (sweep_parse_modes(v, a->modes, &a->mode_count, err) != 0) return -1;
        } else if (strcmp(f, "--layers") == 0) {
            if (sweep_parse_depths(v, a->depths, &a->depth_count, err) != 0) return -1;
        } else if (strcmp(f, "--mem-limit") == 0) {
            ff_error_t why;
            if (ff_parse_size(v, &a->mem_limit, &why) != 0)
                return ff_error_set(err, "--mem-limit: %s", why.msg);
        } else if (strcmp(f, "--fftrain") == 0) {
            if (set_path(a->fftrain, f, v, err) != 0) return -1;
        } else if (strcmp(f, "--work") == 0) {
            if (set_path(a->work, f, v, err) != 0) return -1;
        } else if (strcmp(f, "--out") == 0) {
            if (set_path(a->out, f, v, err) != 0) return -1;
        } else if (strcmp(f, "--resume") == 0) {
            if (set_path(resume_path, f, v, err) != 0) return -1;
        } else if (strcmp(f, "--python") == 0) {
            if (set_path(a->python, f, v, err) != 0) return -1;
        } else if (strcmp(f, "--torch-script") == 0) {
            if (set_path(a->torch_script, f, v, err) != 0) return -1;
        } else {
            return ff_error_set(err, "unknown flag '%s' (see --help)", f);
        }
    }
    if (a->full) {
        if (sweep_parse_modes("ff-stream,ff-mem,bp", a->modes, &a->mode_count, err) != 0 ||
            sweep_parse_depths("2:47:5", a->depths, &a->depth_count, err) != 0)
            return -1;
        a->base.hidden = 2000;
        a->base.batch = 5000;
        a->base.epochs = 1;
        a->base.train_limit = a->base.test_limit = 0;
    }
    if (resume_path[0] != '\0') {
        if (a->out[0] != '\0' && strcmp(a->out, resume_path) != 0)
            return ff_error_set(err, "--resume %s and --out %s name different files (--resume "
                                "FILE alone continues FILE)", resume_path, a->out);
        snprintf(a->out, sizeof a->out, "%s", resume_path);
        a->resume = 1;
    }
    if (a->out[0] == '\0') return ff_error_set(err, "--out FILE is required (see --help)");
    for (int i = 0; i < a->mode_count; i++)
        if (strcmp(a->modes[i]->name, "torch-ff") == 0 && strcmp(a->recipe, "best") == 0)
            return ff_error_set(err, "--recipe best: the PyTorch reference (torch-ff) has only "
                                "the original recipe; profile torch-ff without --recipe best");
    if (a->base.batch % 2 != 0)
        return ff_error_set(err, "--batch %u is odd; FF needs half positive, half negative rows",
                            a->base.batch);
    return 0;
}

/* --out must name a file in an existing directory: checked before any run,
 * so a sweep never runs for hours to find it cannot write its results. */
static int check_out(const profile_args_t *a, ff_error_t *err) {
    const char *flag = a->resume ? "--resume" : "--out";
    struct stat st;
    if (stat(a->out, &st) == 0 && S_ISDIR(st.st_mode))
        return ff_error_set(err, "%s %s: is a directory, expected a results file", flag, a->out);
    /* A sweep of hours is not lost to a repeated command. */
    if (!a->resume && !a->force && lstat(a->out, &st) == 0)
        return ff_error_set(err, "--out %s: exists; continue its sweep with --resume %s, or pass "
                            "--force to replace it", a->out, a->out);
    char parent[FF_PATH_MAX];
    snprintf(parent, sizeof parent, "%s", a->out);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else if (slash != NULL) *slash = '\0';
    else snprintf(parent, sizeof parent, ".");
    if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
        return ff_error_set(err, "%s %s: the directory %s does not exist", flag, a->out, parent);
    if (access(parent, W_OK) != 0)
        return ff_error_set(err, "%s %s: cannot write in %s: %s", flag, a->out, parent,
                            strerror(errno));
    return 0;
}

static int has_runner(const profile_args_t *a, sweep_runner_t runner) {
    for (int i = 0; i < a->mode_count; i++)
        if (a->modes[i]->runner == runner) return 1;
    return 0;
}

/* ---- python and torch ----------------------------------------------------- */

/* name searched on PATH (or taken as is when it holds a '/') into out.
 * @return 0 when it is an executable file. */
static int find_program(const char *name, char *out) {
    if (strchr(name, '/') != NULL) {
        snprintf(out, FF_PATH_MAX, "%s", name);
        return access(out, X_OK);
    }
    const char *path = getenv("PATH");
    char dirs[FF_PATH_MAX];
    snprintf(dirs, sizeof dirs, "%s", path != NULL ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
         d = strtok_r(NULL, ":", &save)) {
        if (ff_path_format(out, NULL, "%s/%s", d, name) == 0 && access(out, X_OK) == 0) return 0;
    }
    return -1;
}

/* Whether python imports torch and numpy (what ff_torch.py needs). */
static int python_has_torch(const char *python) {
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execl(python, python, "-c", "import torch, numpy", (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Finds a python3 that imports torch (a->python, or Debian's
 * /usr/bin/python3, then python3 on PATH) and checks the script, before
 * the sweep. @return 0, or -1 with err giving the install line. */
static int find_torch(profile_args_t *a, const char *mode, ff_error_t *err) {
    const char *candidates[2] = {a->python[0] != '\0' ? a->python : "/usr/bin/python3",
                                 a->python[0] != '\0' ? NULL : "python3"};
    char tried[2 * FF_PATH_MAX + 16] = "";
    int found_any = 0;
    for (int i = 0; i < 2 && candidates[i] != NULL; i++) {
        char path[FF_PATH_MAX];
        if (find_program(candidates[i], path) != 0) continue;
        found_any = 1;
        if (python_has_torch(path)) {
            snprintf(a->python, sizeof a->python, "%s", path);
            if (access(a->torch_script, R_OK) != 0)
                return ff_error_set(err, "--modes %s: %s: cannot read the PyTorch reference "
                                    "(%s; use --torch-script PATH)",
                                    mode, a->torch_script, strerror(errno));
            return 0;
        }
        size_t n = strlen(tried);
        snprintf(tried + n, sizeof tried - n, "%s%s", n ? ", " : "", path);
    }
    if (!found_any)
        return ff_error_set(err, "--modes %s needs python3 with PyTorch, and %s was not found; "
                            "install it with: " TORCH_INSTALL, mode, candidates[0]);
    return ff_error_set(err, "--modes %s needs PyTorch, which %s cannot import; install it "
                        "with: " TORCH_INSTALL, mode, tried);
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
    char kernel[512], now[32];
    ff_sysinfo_kernel(kernel, sizeof kernel);
    ff_sysinfo_utc_now(now, sizeof now);
    cJSON_AddStringToObject(m, "cpu", model);
    cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(m, "memory_bytes", (double)mem_kib * 1024.0);
    cJSON_AddStringToObject(m, "kernel", kernel);
    cJSON_AddStringToObject(m, "blas", ff_dense_blas_name());
    cJSON_AddNumberToObject(m, "blas_threads", threads);
    /* The code: this program's source commit and build (each run's own
     * result records its trainer's). */
    cJSON_AddStringToObject(m, "commit", ff_sysinfo_commit());
    cJSON_AddStringToObject(m, "build_type", ff_sysinfo_build_type());
    /* Whether the machine was idle: the load when the sitting started and
     * when the file was last written. */
    cJSON_AddStringToObject(m, "started", now);
    cJSON_AddStringToObject(m, "finished", now);
    double load = ff_sysinfo_loadavg_1m();
    if (isfinite(load)) {
        cJSON_AddNumberToObject(m, "load_average_1m_start", load);
        cJSON_AddNumberToObject(m, "load_average_1m_end", load);
    } else {
        cJSON_AddNullToObject(m, "load_average_1m_start");
        cJSON_AddNullToObject(m, "load_average_1m_end");
    }
    cJSON_AddNumberToObject(m, "cells_run", 0);
    return m;
}

/* The end of the sitting so far: the time, the load, the cells run. */
static void machine_update(cJSON *m, int cells_run) {
    char now[32];
    ff_sysinfo_utc_now(now, sizeof now);
    double load = ff_sysinfo_loadavg_1m();
    cJSON_ReplaceItemInObjectCaseSensitive(m, "finished", cJSON_CreateString(now));
    cJSON_ReplaceItemInObjectCaseSensitive(
        m, "load_average_1m_end", isfinite(load) ? cJSON_CreateNumber(load) : cJSON_CreateNull());
    cJSON_ReplaceItemInObjectCaseSensitive(m, "cells_run", cJSON_CreateNumber(cells_run));
}

/* ---- one run -------------------------------------------------------------- */

typedef struct {
    int exited, exit_status, term_signal, oom_killed;
    uint64_t peak_rss, cgroup_peak;
    double wall, user, system; /* seconds: wall clock, CPU in user mode, in the kernel */
} run_outcome_t;

/* Runs argv without a cgroup: fork, exec, wait4 for the rusage. */
static int run_plain(char *const argv[], int stderr_fd, run_outcome_t *o) {
    double t0 = ff_now();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (stderr_fd >= 0) dup2(stderr_fd, STDERR_FILENO);
        execvp(argv[0], argv);
        fprintf(stderr, "ffprofile: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    int signalled = 0;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) return -1;
        if (interrupted && !signalled) {
            kill(pid, SIGTERM);
            signalled = 1;
        }
    }
    o->wall = ff_now() - t0;
    o->exited = WIFEXITED(status);
    o->exit_status = o->exited ? WEXITSTATUS(status) : -1;
    o->term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    o->peak_rss = (uint64_t)ru.ru_maxrss * 1024u;
    o->user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
    o->system = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    return 0;
}

/* The last max_tail bytes of a file this program wrote, NUL-terminated. */
static char *read_tail(const char *path, long max_tail) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *text = NULL;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long start = size > max_tail ? size - max_tail : 0;
    if (size >= 0 && fseek(f, start, SEEK_SET) == 0) text = malloc((size_t)(size - start) + 1);
    if (text != NULL) text[fread(text, 1, (size_t)(size - start), f)] = '\0';
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

/* A trainer's result JSON, strictly parsed, or NULL (why in err). */
static cJSON *read_result(const char *path, ff_error_t *err) {
    char *text = NULL;
    size_t size = 0;
    cJSON *doc = NULL;
    if (ff_fileio_read_small(path, RESULT_MAX_BYTES, &text, &size, err) == 0)
        ff_json_parse(path, text, size, &doc, err);
    free(text);
    return doc;
}

/* Runs one cell and returns its record, or NULL when the sweep was
 * interrupted during the cell (it is run again on resume). */
static cJSON *one_run(const profile_args_t *a, const ff_cgroup_env_t *cg,
                      const sweep_mode_t *mode, uint32_t depth, const char *work,
                      uint64_t pixels) {
    char json_path[FF_PATH_MAX], err_path[FF_PATH_MAX], run_dir[FF_PATH_MAX];
    /* --work is at most FF_PATH_MAX - 65 bytes: these fit. */
    ff_path_format(json_path, NULL, "%s/%s-%u.json", work, mode->name, depth);
    ff_path_format(err_path, NULL, "%s/%s-%u.stderr", work, mode->name, depth);
    ff_path_format(run_dir, NULL, "%s/%s-%u.run", work, mode->name, depth);
    unlink(json_path);
    rm_rf(run_dir);
    const ff_option_t *seed_opt = ff_option_find("--seed");
    char s_layers[16], s_hidden[16], s_batch[16], s_epochs[16], s_lr[32], s_train[24], s_test[24],
        s_threads[16], s_seed[32];
    snprintf(s_layers, sizeof s_layers, "%u", depth);
    snprintf(s_hidden, sizeof s_hidden, "%u", a->base.hidden);
    snprintf(s_batch, sizeof s_batch, "%u", a->base.batch);
    snprintf(s_epochs, sizeof s_epochs, "%u", a->base.epochs);
    const int bp_like = mode->ff_mode == FF_MODE_BP;
    snprintf(s_lr, sizeof s_lr, "%.17g", bp_like && !isnan(a->bp_lr) ? a->bp_lr : a->base.lr);
    /* Under a recipe the FF modes take its learning rate unless --lr says. */
    const int pass_lr = bp_like || a->recipe[0] == '\0' || a->lr_given;
    snprintf(s_train, sizeof s_train, "%llu", (unsigned long long)a->base.train_limit);
    snprintf(s_test, sizeof s_test, "%llu", (unsigned long long)a->base.test_limit);
    snprintf(s_threads, sizeof s_threads, "%u", a->base.threads);
    ff_config_format(&a->base, seed_opt, s_seed, sizeof s_seed);
    char *argv[64];
    int n = 0;
    char s_ranks[16];
    snprintf(s_ranks, sizeof s_ranks, "%u", a->mpi);
    if (mode->runner == SWEEP_TORCH) {
        argv[n++] = (char *)a->python;
        argv[n++] = (char *)a->torch_script;
        argv[n++] = "--mode", argv[n++] = (char *)mode->torch_mode;
    } else {
        if (a->mpi > 0 && mode->ff_mode == FF_MODE_FF_STREAM) {
            /* --bind-to none: ranks share the machine's cores with BLAS threads. */
            argv[n++] = "mpirun", argv[n++] = "--oversubscribe", argv[n++] = "--bind-to";
            argv[n++] = "none", argv[n++] = "-np", argv[n++] = s_ranks;
        }
        argv[n++] = (char *)a->fftrain;
        argv[n++] = "--mode", argv[n++] = (char *)mode->name;
    }
    argv[n++] = "--layers", argv[n++] = s_layers;
    argv[n++] = "--hidden", argv[n++] = s_hidden;
    argv[n++] = "--batch", argv[n++] = s_batch;
    argv[n++] = "--epochs", argv[n++] = s_epochs;
    if (pass_lr) argv[n++] = "--lr", argv[n++] = s_lr;
    if (mode->runner == SWEEP_FFTRAIN && !bp_like && a->recipe[0] != '\0')
        argv[n++] = "--recipe", argv[n++] = (char *)a->recipe;
    if (mode->runner == SWEEP_FFTRAIN && !bp_like && a->eval[0] != '\0')
        argv[n++] = "--eval", argv[n++] = (char *)a->eval;
    argv[n++] = "--seed", argv[n++] = s_seed;
    argv[n++] = "--train-limit", argv[n++] = s_train;
    argv[n++] = "--test-limit", argv[n++] = s_test;
    argv[n++] = "--threads", argv[n++] = s_threads;
    argv[n++] = "--data", argv[n++] = (char *)a->base.data_dir;
    argv[n++] = "--json", argv[n++] = json_path;
    argv[n++] = "--quiet";
    if (mode->runner == SWEEP_FFTRAIN) {
        /* The configured run, measured as it is: no chunks fitted to the
         * limit and no refusal before the work; the cgroup enforces it. */
        argv[n++] = "--mem-budget", argv[n++] = "none";
    }
    if (mode->runner == SWEEP_FFTRAIN && mode->ff_mode == FF_MODE_FF_STREAM)
        argv[n++] = "--run", argv[n++] = run_dir;
    argv[n] = NULL;

    double load = ff_sysinfo_loadavg_1m();
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
            o.user = r.child_user_seconds;
            o.system = r.child_system_seconds;
            /* ff_cgroup_run took the signal to pass it on: stop the sweep too. */
            if (r.forwarded_signal != 0) interrupted = 1;
        }
    } else {
        started = run_plain(argv, fd, &o);
        if (started != 0) snprintf(err.msg, sizeof err.msg, "fork: %s", strerror(errno));
    }
    if (fd >= 0) close(fd);
    cJSON *rec = NULL;
    if (interrupted) goto cleanup;

    rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "mode", mode->name);
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
    cJSON_AddNumberToObject(rec, "user_seconds", o.user);
    cJSON_AddNumberToObject(rec, "system_seconds", o.system);
    if (isfinite(load)) cJSON_AddNumberToObject(rec, "load_average_1m", load);
    else cJSON_AddNullToObject(rec, "load_average_1m");
    ff_config_t shape = a->base;
    shape.mode = mode->ff_mode;
    shape.layers = depth;
    /* Weights and the two Adam moments of the whole network: what an
     * in-memory trainer must hold at once. */
    cJSON_AddNumberToObject(rec, "weights_adam_bytes",
                            3.0 * sizeof(float) * (double)ff_memmodel_network_parameters(&shape, pixels));
    ff_error_t result_err = {{0}};
    cJSON *result = strcmp(status, "ok") == 0 ? read_result(json_path, &result_err) : NULL;
    cJSON *acc = result != NULL ? cJSON_GetObjectItemCaseSensitive(result, "test_accuracy") : NULL;
    if (cJSON_IsNumber(acc) && isfinite(acc->valuedouble))
        cJSON_AddNumberToObject(rec, "test_accuracy", acc->valuedouble);
    else
        cJSON_AddNullToObject(rec, "test_accuracy");
    /* The trainer's own result: fftrain's, or ff_torch.py's. */
    const char *result_key = mode->runner == SWEEP_TORCH ? "torch" : "fftrain";
    if (result != NULL) cJSON_AddItemToObject(rec, result_key, result);
    else cJSON_AddNullToObject(rec, result_key);
    if (strcmp(status, "ok") == 0 && result == NULL)
        cJSON_AddStringToObject(rec, "result_error", result_err.msg);
    char *tail = read_tail(err_path, 2000);
    if (started != 0) {
        cJSON_AddStringToObject(rec, "stderr_tail", err.msg);
    } else if (strcmp(status, "ok") != 0) {
        cJSON_AddStringToObject(rec, "stderr_tail", tail != NULL ? tail : "");
    }
    free(tail);
cleanup:
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
        cJSON_AddItemToArray(modes, cJSON_CreateString(a->modes[i]->name));
    cJSON *depths = cJSON_AddArrayToObject(c, "layers");
    for (int i = 0; i < a->depth_count; i++)
        cJSON_AddItemToArray(depths, cJSON_CreateNumber(a->depths[i]));
    cJSON_AddNumberToObject(c, "hidden", a->base.hidden);
    cJSON_AddNumberToObject(c, "batch", a->base.batch);
    cJSON_AddNumberToObject(c, "epochs", a->base.epochs);
    if (a->recipe[0] == '\0' || a->lr_given) cJSON_AddNumberToObject(c, "lr", a->base.lr);
    else cJSON_AddNullToObject(c, "lr"); /* the recipe's, for the FF modes */
    cJSON_AddStringToObject(c, "recipe", a->recipe[0] != '\0' ? a->recipe : "original");
    cJSON_AddStringToObject(c, "eval", a->eval[0] != '\0' ? a->eval : "recipe");
    cJSON_AddNumberToObject(c, "bp_lr", isnan(a->bp_lr) ? a->base.lr : a->bp_lr);
    /* As fftrain writes it: seeds pass 2^53, so a decimal string. */
    char seed[32];
    ff_config_format(&a->base, ff_option_find("--seed"), seed, sizeof seed);
    cJSON_AddStringToObject(c, "seed", seed);
    cJSON_AddNumberToObject(c, "train_limit", (double)a->base.train_limit);
    cJSON_AddNumberToObject(c, "test_limit", (double)a->base.test_limit);
    cJSON_AddNumberToObject(c, "threads", a->base.threads);
    cJSON_AddStringToObject(c, "data", a->base.data_dir);
    if (a->mem_limit > 0) cJSON_AddNumberToObject(c, "mem_limit_bytes", (double)a->mem_limit);
    else cJSON_AddNullToObject(c, "mem_limit_bytes");
    cJSON_AddBoolToObject(c, "full", a->full);
    cJSON_AddNumberToObject(c, "mpi_ranks", a->mpi);
    /* The options without --out and --resume: what --resume FILE alone
     * runs the sweep with again. */
    cJSON *args = cJSON_AddArrayToObject(c, "arguments");
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "--out") == 0 || strcmp(argv[i], "--resume") == 0) && i + 1 < argc) {
            i++;
            continue;
        }
        /* the sitting's own choices */
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "--force") == 0) continue;
        cJSON_AddItemToArray(args, cJSON_CreateString(argv[i]));
    }
    char cmd[4096] = "";
    size_t used = 0;
    for (int i = 0; i < argc && used < sizeof cmd - 1; i++)
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", argv[i]);
    cJSON_AddStringToObject(c, "command", cmd);
    return c;
}

/* The model's prediction for every fftrain mode and depth (the PyTorch
 * reference has none). */
static cJSON *model_json(const profile_args_t *a, uint64_t pixels, uint64_t train, uint64_t test) {
    cJSON *arr = cJSON_CreateArray();
    for (int mi = 0; mi < a->mode_count; mi++) {
        if (a->modes[mi]->runner != SWEEP_FFTRAIN) continue;
        for (int di = 0; di < a->depth_count; di++) {
            ff_config_t cfg = a->base;
            cfg.mode = a->modes[mi]->ff_mode;
            cfg.layers = a->depths[di];
            /* What changes the FF modes' memory in the recipe and --eval:
             * the head and the layers it reads. */
            if (cfg.mode != FF_MODE_BP) {
                if (strcmp(a->recipe, "best") == 0) cfg.eval_softmax = cfg.score_all_layers = 1;
                if (a->eval[0] != '\0') cfg.eval_softmax = strcmp(a->eval, "softmax") == 0;
            }
            ff_memmodel_t m = ff_memmodel(&cfg, pixels, train, test);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "mode", a->modes[mi]->name);
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

static int save(const char *path, cJSON *doc, ff_error_t *err) {
    char *text = cJSON_Print(doc);
    if (text == NULL) return ff_error_set(err, "%s: out of memory building the results", path);
    int rc = ff_fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* The sweep's earlier results (--resume): read strictly, checked against
 * this sweep's configuration. @return the document or NULL with err. */
static cJSON *load_previous(const char *path, const cJSON *config, ff_error_t *err) {
    char *text = NULL;
    size_t size = 0;
    cJSON *doc = NULL;
    int ok = 0;
    if (ff_fileio_read_small(path, RESULTS_MAX_BYTES, &text, &size, err) != 0) {
        if (errno == ENOENT)
            ff_error_set(err, "--resume %s: no such file (start the sweep with --out %s)", path,
                         path);
        goto cleanup;
    }
    if (ff_json_parse(path, text, size, &doc, err) != 0) goto cleanup;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(doc, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "ffstream-profile") != 0) {
        ff_error_set(err, "%s: not an ffprofile results file (\"format\" is not "
                     "\"ffstream-profile\")", path);
        goto cleanup;
    }
    if (sweep_compare_config(cJSON_GetObjectItemCaseSensitive(doc, "config"), config, path,
                             err) != 0 ||
        sweep_check_runs(cJSON_GetObjectItemCaseSensitive(doc, "runs"), path, err) != 0)
        goto cleanup;
    ok = 1;
cleanup:
    free(text);
    if (!ok) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    return doc;
}

/* The options a sweep recorded (config.arguments) as an argv: argv0, the
 * sweep's options, --resume path. Its strings point into *doc: free the
 * vector, then delete *doc. @return the vector or NULL with err. */
static char **recorded_arguments(const char *path, char *argv0, int *argc, cJSON **out_doc,
                                 ff_error_t *err) {
    char *text = NULL;
    size_t size = 0;
    cJSON *doc = NULL;
    if (ff_fileio_read_small(path, RESULTS_MAX_BYTES, &text, &size, err) != 0) {
        if (errno == ENOENT)
            ff_error_set(err, "--resume %s: no such file (start the sweep with --out %s)", path,
                         path);
        return NULL;
    }
    int rc = ff_json_parse(path, text, size, &doc, err);
    free(text);
    if (rc != 0) return NULL;
    char **v = NULL;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(doc, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "ffstream-profile") != 0) {
        ff_error_set(err, "%s: not an ffprofile results file (\"format\" is not "
                     "\"ffstream-profile\")", path);
        goto fail;
    }
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(doc, "config");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(config, "arguments");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(config, "command");
    if (!cJSON_IsArray(args)) {
        ff_error_set(err, "--resume %s: the file records no options (\"config\".\"arguments\"; "
                     "an older ffprofile wrote it): give the sweep's options beside --resume; "
                     "it was run as: %.600s", path,
                     cJSON_IsString(cmd) ? cmd->valuestring : "(not recorded)");
        goto fail;
    }
    int n = cJSON_GetArraySize(args);
    if (n > 64) {
        ff_error_set(err, "--resume %s: %d recorded arguments, at most 64", path, n);
        goto fail;
    }
    if ((v = calloc((size_t)n + 4, sizeof *v)) == NULL) {
        ff_error_set(err, "--resume %s: out of memory", path);
        goto fail;
    }
    int k = 0;
    v[k++] = argv0;
    const cJSON *item;
    cJSON_ArrayForEach(item, args) {
        if (!cJSON_IsString(item) || strcmp(item->valuestring, "--out") == 0 ||
            strcmp(item->valuestring, "--resume") == 0) {
            ff_error_set(err, "--resume %s: \"config\".\"arguments\" holds %s (expected the "
                         "sweep's options as strings, without --out and --resume)", path,
                         cJSON_IsString(item) ? item->valuestring : "a value that is not a string");
            goto fail;
        }
        v[k++] = item->valuestring;
    }
    v[k++] = (char *)"--resume";
    v[k++] = (char *)path;
    *argc = k;
    *out_doc = doc;
    return v;
fail:
    free(v);
    cJSON_Delete(doc);
    return NULL;
}

/* The position of a cell in the sweep's order (depth by depth, the modes
 * in --modes order within a depth), or INT_MAX for no cell of the sweep. */
static int cell_order(const profile_args_t *a, const cJSON *rec) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(rec, "mode");
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(rec, "layers");
    for (int di = 0; di < a->depth_count; di++)
        for (int mi = 0; mi < a->mode_count; mi++)
            if (cJSON_IsString(m) && strcmp(m->valuestring, a->modes[mi]->name) == 0 &&
                cJSON_IsNumber(l) && l->valuedouble == a->depths[di])
                return di * a->mode_count + mi;
    return INT_MAX;
}

/* Adds rec to runs at its place in the sweep's order. The records are
 * taken out and put back in order (cJSON_InsertItemInArray is not
 * dependable across cJSON versions); runs holds at most one record per
 * cell, SWEEP_MODE_COUNT x SWEEP_MAX_DEPTHS. */
static void insert_in_order(const profile_args_t *a, cJSON *runs, cJSON *rec) {
    static cJSON *items[SWEEP_MODE_COUNT * SWEEP_MAX_DEPTHS + 1];
    size_t n = 0;
    while (runs->child != NULL && n < sizeof items / sizeof items[0] - 1)
        items[n++] = cJSON_DetachItemViaPointer(runs, runs->child);
    /* Insertion into the ordered list (stable: equal orders keep theirs). */
    size_t at = n;
    while (at > 0 && cell_order(a, items[at - 1]) > cell_order(a, rec)) at--;
    memmove(&items[at + 1], &items[at], (n - at) * sizeof items[0]);
    items[at] = rec;
    n++;
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(runs, items[i]);
}

static void print_header(void) {
    printf("%-12s %6s %12s %12s %10s %9s  %s\n", "mode", "layers", "peak RSS MB", "cgroup MB",
           "seconds", "accuracy", "status");
    fflush(stdout);
}

static void print_row(const cJSON *rec, const char *note) {
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(rec, "test_accuracy");
    const cJSON *cgp = cJSON_GetObjectItemCaseSensitive(rec, "cgroup_peak_bytes");
    const cJSON *rss = cJSON_GetObjectItemCaseSensitive(rec, "peak_rss_bytes");
    const cJSON *wall = cJSON_GetObjectItemCaseSensitive(rec, "wall_seconds");
    char acc_s[16] = "-", cg_s[24] = "-";
    if (cJSON_IsNumber(acc)) snprintf(acc_s, sizeof acc_s, "%.2f%%", 100 * acc->valuedouble);
    if (cJSON_IsNumber(cgp)) snprintf(cg_s, sizeof cg_s, "%.1f", cgp->valuedouble / 1048576.0);
    printf("%-12s %6d %12.1f %12s %10.1f %9s  %s%s\n",
           cJSON_GetObjectItemCaseSensitive(rec, "mode")->valuestring,
           (int)cJSON_GetObjectItemCaseSensitive(rec, "layers")->valuedouble,
           cJSON_IsNumber(rss) ? rss->valuedouble / 1048576.0 : 0.0, cg_s,
           cJSON_IsNumber(wall) ? wall->valuedouble : 0.0, acc_s,
           cJSON_GetObjectItemCaseSensitive(rec, "status")->valuestring, note);
    fflush(stdout);
}

/* "ffprofile: bp, 7 layers: 3 done, 1 failed, 8 left, elapsed 1m02s, ETA 4m10s":
 * the cell about to run (depth index di0, mode index mi0) and the cells
 * from it to the end of the sweep not done yet. */
static void print_progress(const profile_args_t *a, const cJSON *runs, int done, int failed,
                           double elapsed, int di0, int mi0) {
    sweep_cell_t left[SWEEP_MODE_COUNT * SWEEP_MAX_DEPTHS];
    size_t n_left = 0;
    for (int di = di0; di < a->depth_count; di++)
        for (int mi = di == di0 ? mi0 : 0; mi < a->mode_count; mi++)
            if (sweep_find_done(runs, a->modes[mi]->name, a->depths[di]) == NULL)
                left[n_left++] = (sweep_cell_t){a->modes[mi]->name, a->depths[di]};
    char el[32], eta[32], failed_s[32] = "";
    sweep_format_duration(elapsed, el, sizeof el);
    sweep_format_duration(sweep_eta(runs, left, n_left), eta, sizeof eta);
    if (failed > 0) snprintf(failed_s, sizeof failed_s, ", %d failed", failed);
    fprintf(stderr, "ffprofile: %s, %u layers: %d done%s, %zu left, elapsed %s, ETA %s\n",
            a->modes[mi0]->name, a->depths[di0], done, failed_s, n_left, el, eta);
}

static int profile_main(int argc, char **argv);

int main(int argc, char **argv) {
    if (argc != 3 || strcmp(argv[1], "--resume") != 0) return profile_main(argc, argv);
    /* --resume FILE alone: the sweep's own options, then --resume FILE. */
    ff_error_t err = {{0}};
    int n = 0;
    cJSON *doc = NULL;
    char **recorded = recorded_arguments(argv[2], argv[0], &n, &doc, &err);
    if (recorded == NULL) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        return 2;
    }
    int rc = profile_main(n, recorded);
    free(recorded);
    cJSON_Delete(doc);
    return rc;
}

static int profile_main(int argc, char **argv) {
    profile_args_t a;
    ff_error_t err = {{0}};
    int prc = parse_args(argc, argv, &a, &err);
    if (prc == 1) {
        usage(stdout);
        return 0;
    }
    if (prc != 0 || check_out(&a, &err) != 0) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        return 2;
    }
    if (has_runner(&a, SWEEP_FFTRAIN) && access(a.fftrain, X_OK) != 0) {
        fprintf(stderr, "ffprofile: %s: not an executable fftrain (use --fftrain PATH)\n",
                a.fftrain);
        return 2;
    }
    for (int i = 0; i < a.mode_count; i++) {
        if (a.modes[i]->runner != SWEEP_TORCH) continue;
        if (find_torch(&a, a.modes[i]->name, &err) != 0) {
            fprintf(stderr, "ffprofile: %s\n", err.msg);
            return 2;
        }
        break;
    }
    ff_cgroup_env_t cg = {0};
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

    cJSON *doc = cJSON_CreateObject();
    cJSON *config = config_json(&a, argc, argv);
    cJSON *previous = NULL;
    if (a.resume && (previous = load_previous(a.out, config, &err)) == NULL) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        cJSON_Delete(config);
        cJSON_Delete(doc);
        return 2;
    }
    cJSON_AddStringToObject(doc, "format", "ffstream-profile");
    cJSON_AddNumberToObject(doc, "version", 2);
    cJSON_AddItemToObject(doc, "config", config);
    cJSON *machine = machine_json((int)a.base.threads);
    cJSON_AddItemToObject(doc, "machine", machine);
    /* The machine blocks of the sweep's earlier sittings, oldest first. */
    cJSON *earlier = cJSON_AddArrayToObject(doc, "earlier_sittings");
    cJSON_AddNumberToObject(doc, "train_samples", (double)n_train);
    cJSON_AddNumberToObject(doc, "test_samples", (double)n_test);
    cJSON_AddItemToObject(doc, "model", model_json(&a, pixels, n_train, n_test));
    cJSON *runs = cJSON_AddArrayToObject(doc, "runs");
    cJSON_AddBoolToObject(doc, "interrupted", 0);
    cJSON_AddBoolToObject(doc, "complete", 0);
    int total = a.depth_count * a.mode_count, done = 0;
    if (previous != NULL) {
        cJSON *old_earlier = cJSON_GetObjectItemCaseSensitive(previous, "earlier_sittings");
        cJSON *s;
        cJSON_ArrayForEach(s, old_earlier) cJSON_AddItemToArray(earlier, cJSON_Duplicate(s, 1));
        cJSON *old_machine = cJSON_GetObjectItemCaseSensitive(previous, "machine");
        if (cJSON_IsObject(old_machine))
            cJSON_AddItemToArray(earlier, cJSON_Duplicate(old_machine, 1));
        /* Cells done for good are kept, failed ones run again. */
        cJSON *old_runs = cJSON_GetObjectItemCaseSensitive(previous, "runs");
        for (int di = 0; di < a.depth_count; di++)
            for (int mi = 0; mi < a.mode_count; mi++) {
                cJSON *rec = sweep_find_done(old_runs, a.modes[mi]->name, a.depths[di]);
                if (rec == NULL) continue;
                cJSON_AddItemToArray(runs, cJSON_DetachItemViaPointer(old_runs, rec));
                done++;
            }
        const cJSON *old_commit = cJSON_GetObjectItemCaseSensitive(old_machine, "commit");
        if (!a.quiet && cJSON_IsString(old_commit) &&
            strcmp(old_commit->valuestring, ff_sysinfo_commit()) != 0)
            fprintf(stderr, "ffprofile: note: %s was started at commit %s, this is %s\n", a.out,
                    old_commit->valuestring, ff_sysinfo_commit());
        cJSON_Delete(previous);
        if (!a.quiet)
            fprintf(stderr, "ffprofile: resuming %s: %d of %d cells recorded (ok or oom-killed), "
                            "%d to run\n", a.out, done, total, total - done);
    }
    /* Written before the first cell: the file is valid (and writable) from
     * the start, whatever stops the sweep. */
    if (save(a.out, doc, &err) != 0) {
        fprintf(stderr, "ffprofile: %s\n", err.msg);
        cJSON_Delete(doc);
        return 1;
    }

    char work[FF_PATH_MAX];
    int own_work = a.work[0] == '\0';
    if (own_work) {
        const char *tmp = getenv("TMPDIR");
        if (ff_path_format(work, &err, "%s/ffprofile-XXXXXX", tmp && tmp[0] ? tmp : "/tmp") != 0 ||
            mkdtemp(work) == NULL) {
            fprintf(stderr, "ffprofile: cannot create a work directory: %s\n",
                    err.msg[0] ? err.msg : strerror(errno));
            cJSON_Delete(doc);
            return 1;
        }
    } else {
        snprintf(work, sizeof work, "%s", a.work);
        if (mkdir(work, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "ffprofile: --work %s: %s\n", work, strerror(errno));
            cJSON_Delete(doc);
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!a.quiet) {
        print_header();
        const cJSON *r;
        cJSON_ArrayForEach(r, runs) print_row(r, " (earlier sitting)");
    }
    double t0 = ff_now();
    int failures = 0, cells_run = 0, save_failed = 0;
    for (int di = 0; di < a.depth_count && !interrupted && !save_failed; di++) {
        for (int mi = 0; mi < a.mode_count && !interrupted && !save_failed; mi++) {
            if (sweep_find_done(runs, a.modes[mi]->name, a.depths[di]) != NULL) continue;
            if (!a.quiet)
                print_progress(&a, runs, done, failures, ff_now() - t0, di, mi);
            cJSON *rec = one_run(&a, &cg, a.modes[mi], a.depths[di], work, pixels);
            if (rec == NULL) break; /* interrupted: the cell runs again on resume */
            if (!a.quiet) print_row(rec, "");
            failures += !sweep_record_done(rec);
            done += sweep_record_done(rec);
            insert_in_order(&a, runs, rec);
            cells_run++;
            machine_update(machine, cells_run);
            if (save(a.out, doc, &err) != 0) {
                fprintf(stderr, "ffprofile: %s; the sweep stops (resume with --resume %s)\n",
                        err.msg, a.out);
                save_failed = 1;
            }
        }
    }
    machine_update(machine, cells_run);
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "interrupted", cJSON_CreateBool(interrupted != 0));
    cJSON_ReplaceItemInObjectCaseSensitive(doc, "complete", cJSON_CreateBool(done == total));
    int rc = save_failed ? -1 : save(a.out, doc, &err);
    if (rc != 0 && !save_failed) fprintf(stderr, "ffprofile: %s\n", err.msg);
    cJSON_Delete(doc);
    if (own_work) rm_rf(work);
    if (!a.quiet) {
        char el[32];
        sweep_format_duration(ff_now() - t0, el, sizeof el);
        fprintf(stderr, "ffprofile: %d of %d cells done, %d failed in this sitting, elapsed %s\n",
                done, total, failures, el);
        printf("%s: %d runs in this sitting, %d not ok; %d of %d cells done%s\n", a.out,
               cells_run, failures, done, total, interrupted ? " (interrupted)" : "");
        if (done < total)
            fprintf(stderr, "ffprofile: continue with: ffprofile [the same options] --resume %s\n",
                    a.out);
    }
    return rc != 0 ? 1 : (interrupted ? 130 : 0);
}
