/* fftrain: trains one network with one trainer (ff-stream, ff-mem, bp or
 * ff-recurrent), evaluates it and reports accuracy, time and memory. The only
 * place that prints errors and chooses exit codes: 0 success, 1 failure, 2 bad flags,
 * 130 stopped by SIGINT/SIGTERM after saving (ff-stream; resumable). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/comm.h"
#include "ffstream/config.h"
#include "ffstream/dense.h"
#include "ffstream/fileio.h"
#include "ffstream/memstat.h"
#include "ffstream/plan.h"
#include "ffstream/report.h"
#include "ffstream/run.h"
#include "ffstream/sysinfo.h"
#include "ffstream/train.h"

static void print_summary(const ff_config_t *cfg, const ff_result_t *res) {
    fprintf(stdout, "mode %s: %u layers x %u units, %u epochs, batch %u, lr %g\n",
            ff_mode_name(cfg->mode), cfg->layers, cfg->hidden, cfg->epochs, cfg->batch, cfg->lr);
    for (uint32_t i = 0; i < res->layer_count && cfg->mode != FF_MODE_BP; i++) {
        const ff_layer_result_t *l = &res->per_layer[i];
        fprintf(stdout, "  layer %u (%u -> %u): loss %.4f, goodness pos %.3f neg %.3f, %.1f s\n",
                i + 1, l->in, l->out, l->loss, l->goodness_pos, l->goodness_neg, l->seconds);
    }
    if (cfg->mode == FF_MODE_FF_STREAM)
        fprintf(stdout,
                "  I/O (%s): %.1f MiB read, %.1f MiB written, %.1f s waiting; working set %.1f "
                "MiB\n",
                res->io_backend, (double)res->io_bytes_read / 1048576.0,
                (double)res->io_bytes_written / 1048576.0, res->io_wait_seconds,
                (double)res->working_set_bytes / 1048576.0);
    for (uint32_t e = 0; e < res->epoch_count; e++)
        fprintf(stdout, "  epoch %u: loss %.4f, %.1f s\n", e + 1, res->per_epoch[e].loss,
                res->per_epoch[e].seconds);
    fprintf(stdout,
            "test accuracy %.2f%% (%llu images), train %.1f s, eval %.1f s, peak RSS %.1f MiB, "
            "%.1f GFLOP/s\n",
            100.0 * res->test_accuracy, (unsigned long long)res->test_samples, res->train_seconds,
            res->eval_seconds, (double)res->peak_rss_bytes / 1048576.0,
            res->train_seconds > 0 ? res->train_flops / res->train_seconds / 1e9 : 0.0);
    if (cfg->eval_softmax && (cfg->mode == FF_MODE_FF_MEM || cfg->mode == FF_MODE_FF_STREAM))
        fprintf(stdout, "  read-outs: softmax head %.2f%% (trained in %.1f s), every-label goodness %.2f%%\n",
                100.0 * res->softmax_accuracy, res->head_seconds, 100.0 * res->goodness_accuracy);
}

/* The plan of this rank: over P ranks, a rank trains batches of batch / P
 * on its share of the images, and the budget is each rank's own. The
 * chunk sizes it fits are every rank's (the same inputs everywhere). */
static int make_plan(ff_plan_t *plan, ff_config_t *cfg, const ff_dataset_t *train,
                     const ff_dataset_t *test, const ff_comm_t *comm, ff_error_t *err) {
    if (comm->size == 1) return ff_plan_make(plan, cfg, train, test, err);
    const uint64_t P = (uint64_t)comm->size;
    ff_config_t view = *cfg;
    view.batch = cfg->batch / (uint32_t)P;
    ff_dataset_t tv = *train, te = *test;
    tv.count = (train->count + P - 1) / P;
    te.count = (test->count + P - 1) / P;
    if (view.batch < 2 || view.batch % 2 != 0)
        return ff_error_set(err, "--batch %u over %d ranks leaves %u rows per rank, expected an "
                            "even number of at least 2", cfg->batch, comm->size, view.batch);
    if (ff_plan_make(plan, &view, &tv, &te, err) != 0) return -1;
    cfg->piece_images = view.piece_images;
    cfg->eval_images = view.eval_images;
    return 0;
}

static void on_stop_signal(int sig) {
    (void)sig;
    ff_train_request_stop();
}

/* The whole program on one rank (the only one, or one of mpirun's);
 * `who` prefixes its messages. */
static int fftrain(int argc, char **argv, ff_comm_t *comm, const char *who) {
    ff_config_t cfg;
    ff_error_t err = {{0}};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--version") == 0) {
            if (comm->rank == 0)
                printf("fftrain (ffstream) %s, commit %.12s, %s build; MPI: %s\n", FF_VERSION,
                       ff_sysinfo_commit(), ff_sysinfo_build_type(),
                       ff_comm_have_mpi() ? "yes (mpirun -np P fftrain ...)" : "no");
            return 0;
        }
    ff_config_defaults(&cfg);
    int prc = ff_config_parse(&cfg, argc, argv, &err);
    if (prc == 1) {
        ff_config_usage(stdout);
        return 0;
    }
    if (prc != 0) {
        fprintf(stderr, "%s%s\n", who, err.msg);
        return 2;
    }
    if (comm->size > 1 && (cfg.mode != FF_MODE_FF_STREAM || cfg.eval_softmax)) {
        fprintf(stderr, "%sover %d ranks: only --mode ff-stream with --eval goodness (the other "
                        "modes and the softmax head train in one process)\n", who, comm->size);
        return 2;
    }
    /* Over ranks, rank 0 reports for all. */
    if (comm->rank > 0) {
        cfg.quiet = 1;
        cfg.progress = 0;
        cfg.json_path[0] = '\0';
    }
    /* What can be checked before the work is checked before the work. */
    if (cfg.json_path[0] != '\0' && ff_fileio_check_writable(cfg.json_path, &err) != 0) {
        fprintf(stderr, "%s--json: %s\n", who, err.msg);
        return 2;
    }
    ff_dense_set_threads(cfg.threads);
    /* A write past RLIMIT_FSIZE must fail with EFBIG and a message, not kill. */
    signal(SIGXFSZ, SIG_IGN);
    if (cfg.mode == FF_MODE_FF_STREAM) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C stops at once */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }

    ff_dataset_t train, test;
    if (ff_train_load_data(&cfg, &train, &test, &err) != 0) {
        fprintf(stderr, "%s%s\n", who, err.msg);
        return 1;
    }
    /* The plan: the budget and the chunks fitted to it, memory and disk,
     * all before any work. */
    ff_plan_t plan;
    if (make_plan(&plan, &cfg, &train, &test, comm, &err) != 0 ||
        (!cfg.plan && !cfg.ignore_disk_space && ff_plan_check_disk(&plan, &cfg, &err) != 0)) {
        fprintf(stderr, "%s%s\n", who, err.msg);
        ff_data_free(&test);
        ff_data_free(&train);
        return 1;
    }
    if (cfg.plan) {
        ff_error_t ignored;
        ff_plan_check_disk(&plan, &cfg, &ignored); /* the free space, when it can be read */
        ff_plan_print(stdout, &cfg, &plan);
        int status = 0;
        char *text = cfg.json_path[0] != '\0' ? ff_plan_json(&cfg, &plan) : NULL;
        if (cfg.json_path[0] != '\0' &&
            (text == NULL || ff_fileio_write_atomic(cfg.json_path, text, strlen(text), &err) != 0)) {
            fprintf(stderr, "%s%s\n", who, text == NULL ? "out of memory" : err.msg);
            status = 1;
        }
        free(text);
        ff_data_free(&test);
        ff_data_free(&train);
        return status;
    }
    ff_result_t res;
    int rc;
    switch (cfg.mode) {
    case FF_MODE_BP: rc = ff_train_bp(&cfg, &train, &test, &res, &err); break;
    case FF_MODE_FF_STREAM: rc = ff_train_ffstream(&cfg, &train, &test, &res, &err); break;
    case FF_MODE_FF_RECURRENT: rc = ff_train_ffrec(&cfg, &train, &test, &res, &err); break;
    default: rc = ff_train_ffmem(&cfg, &train, &test, &res, &err); break;
    }
    res.ranks = (uint32_t)comm->size;
    if (comm->size > 1 && rc == 0) {
        /* Every rank's peak, for rank 0's report. */
        res.rank_peak_rss = calloc((size_t)comm->size, sizeof *res.rank_peak_rss);
        if (res.rank_peak_rss == NULL ||
            comm->ops->gather_u64(comm, res.peak_rss_bytes, res.rank_peak_rss, &err) != 0)
            rc = -1;
    }
    res.plan_memory_bytes = plan.memory.total;
    res.plan_disk_bytes = cfg.run_dir[0] != '\0' ? plan.disk.total : 0;
    res.budget_bytes = plan.budget;
    res.state_bytes = 3 * sizeof(float) * ff_memmodel_network_parameters(&cfg, plan.pixels);
    int status = 0;
    if (res.started_fresh)
        fprintf(stderr, "%s%s held no run.json (the run was stopped before it wrote one): "
                        "started it anew\n", who, cfg.run_dir);
    if (rc == 1) {
        if (comm->rank == 0)
            fprintf(stderr,
                    "fftrain: stopped; the run is saved. Resume with:\n  %sfftrain --resume --run %s "
                    "[the same flags]\n",
                    comm->size > 1 ? "mpirun [the same options] " : "", cfg.run_dir);
        status = 130;
    } else if (rc != 0) {
        fprintf(stderr, "%s%s\n", who, err.msg);
        if (cfg.mode == FF_MODE_FF_STREAM && res.run_intact)
            fprintf(stderr, "%sfiles written before the error are intact; after fixing "
                            "the cause, continue with --resume --run %s\n",
                    who, cfg.run_dir);
        status = 1;
    } else {
        if (!cfg.quiet) print_summary(&cfg, &res);
        char result_path[FF_PATH_MAX];
        if (cfg.run_dir[0] != '\0' && comm->rank == 0 &&
            (ff_run_path(result_path, cfg.run_dir, "result.json", &err) != 0 ||
             ff_report_write(result_path, &cfg, &res, &err) != 0)) {
            fprintf(stderr, "%s%s\n", who, err.msg);
            status = 1;
        }
        if (cfg.json_path[0] != '\0' && ff_report_write(cfg.json_path, &cfg, &res, &err) != 0) {
            fprintf(stderr, "%s%s\n", who, err.msg);
            status = 1;
        }
    }
    ff_result_free(&res);
    ff_data_free(&test);
    ff_data_free(&train);
    return status;
}

/* OpenBLAS's idle threads spin after each product for about 2^28 cycles
 * (its default THREAD_TIMEOUT), holding the cores that the element-wise
 * team (pool.h) needs between products. The library reads a shorter spin
 * from the environment only when it loads, so fftrain sets one and starts
 * itself again, once; a value the user set is kept. */
static void shorten_blas_spin(char **argv) {
#ifdef FF_HAVE_OPENBLAS_THREADS
    if (getenv("OPENBLAS_THREAD_TIMEOUT") != NULL) return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* No restart (no /proc): the run goes on with the default spin. */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    shorten_blas_spin(argv);
    ff_report_mark_start();
    ff_error_t err = {{0}};
    if (ff_comm_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "fftrain: %s\n", err.msg);
        return 1;
    }
    ff_comm_t *comm = ff_comm_world();
    char who[48] = "fftrain: ";
    if (comm->size > 1) snprintf(who, sizeof who, "fftrain: rank %d: ", comm->rank);
    int status = fftrain(argc, argv, comm, who);
    /* A rank that failed alone would leave the others waiting in a sum:
     * the job stops (a stop asked for, 130, is taken by every rank). */
    if (comm->size > 1 && status != 0 && status != 130) ff_comm_abort(comm, status);
    ff_comm_finalize();
    return status;
}
