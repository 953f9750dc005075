/* comm_mpi.c: the ranks of comm.h over MPI (Open MPI). Only the main
 * thread calls MPI (MPI_THREAD_FUNNELED): the I/O and checkpoint threads
 * never do.
 *
 * The rank-order sum: rank 0 folds the other ranks' buffers into its own,
 * rank 1's first, in slices of SLICE floats received into one scratch
 * buffer, then broadcasts the sum. Its association never depends on
 * timing or on the MPI library's choice of reduction tree, so a P-rank run
 * is bit-identical to a rerun with P ranks (MPI_Allreduce with MPI_SUM
 * promises no such thing). Rank 0 receives (P - 1) buffers per sum: fine
 * for the handful of ranks one layer's data parallelism uses; a fixed
 * binary tree would keep the same property at large P. Its scratch buffer
 * (4 MiB, 8 for doubles) is, like MPI's own buffers, outside the memory
 * model. */
#include "ffstream/comm.h"

#include <mpi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* Floats per message: 4 MiB, under MPI's int counts. */
#define SLICE ((size_t)1 << 20)

static float *scratch_f;
static double *scratch_d;

static int mpi_fail(ff_error_t *err, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return ff_error_set(err, "MPI %s: %.*s", what, len, text);
}

#define FOLD(NAME, TYPE, MPITYPE, SCRATCH)                                                       \
    static int NAME(ff_comm_t *c, TYPE *buf, size_t n, ff_error_t *err) {                        \
        if (c->size == 1) return 0;                                                              \
        if (SCRATCH == NULL && c->rank == 0) {                                                   \
            SCRATCH = malloc(SLICE * sizeof(TYPE));                                             \
            if (SCRATCH == NULL) return ff_error_set(err, "out of memory for the rank sum");     \
        }                                                                                        \
        for (size_t at = 0; at < n; at += SLICE) {                                               \
            const int count = (int)(n - at < SLICE ? n - at : SLICE);                            \
            int rc = MPI_SUCCESS;                                                                \
            if (c->rank == 0) {                                                                  \
                for (int r = 1; r < c->size && rc == MPI_SUCCESS; r++) {                         \
                    rc = MPI_Recv(SCRATCH, count, MPITYPE, r, 7, MPI_COMM_WORLD,                 \
                                  MPI_STATUS_IGNORE);                                            \
                    for (int i = 0; rc == MPI_SUCCESS && i < count; i++) buf[at + i] += SCRATCH[i]; \
                }                                                                                \
            } else {                                                                             \
                rc = MPI_Send(buf + at, count, MPITYPE, 0, 7, MPI_COMM_WORLD);                  \
            }                                                                                    \
            if (rc == MPI_SUCCESS) rc = MPI_Bcast(buf + at, count, MPITYPE, 0, MPI_COMM_WORLD);  \
            if (rc != MPI_SUCCESS) return mpi_fail(err, "rank-order sum", rc);                   \
        }                                                                                        \
        return 0;                                                                                \
    }

FOLD(mpi_sum_floats, float, MPI_FLOAT, scratch_f)
FOLD(mpi_sum_doubles, double, MPI_DOUBLE, scratch_d)

static int mpi_gather_u64(ff_comm_t *c, uint64_t value, uint64_t *out, ff_error_t *err) {
    (void)c;
    int rc = MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "gather", rc);
}

static int mpi_broadcast_text(ff_comm_t *c, char **text, size_t *size, ff_error_t *err) {
    uint64_t n = c->rank == 0 ? (uint64_t)*size : 0;
    int rc = MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "broadcast", rc);
    if (n > ((uint64_t)1 << 30)) return ff_error_set(err, "MPI broadcast: %llu bytes, at most 1 GiB",
                                                     (unsigned long long)n);
    if (c->rank != 0) {
        *text = malloc((size_t)n + 1);
        if (*text == NULL) return ff_error_set(err, "out of memory for rank 0's text");
        *size = (size_t)n;
    }
    rc = MPI_Bcast(*text, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "broadcast", rc);
    (*text)[n] = '\0';
    return 0;
}

static int mpi_barrier(ff_comm_t *c, ff_error_t *err) {
    (void)c;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "barrier", rc);
}

/* Stops the job. Ranks abort one after the other, rank r about r / 2
 * seconds after rank 0 (at most 4 s): when every rank fails at the same
 * point (a refusal they all reach), rank 0's abort ends the others while
 * they wait, for Open MPI 4.1's mpirun can crash while it reports two
 * concurrent MPI_Abort calls; a rank that fails alone still aborts the job
 * itself, under any launcher. */
static void mpi_abort(ff_comm_t *c, int code) {
    fflush(stdout);
    fflush(stderr);
    if (c->rank > 0) {
        int half_seconds = c->rank < 8 ? c->rank : 8;
        struct timespec wait = {.tv_sec = half_seconds / 2,
                                .tv_nsec = (half_seconds % 2) * 500000000L};
        while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {
        }
    }
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);
}

static const ff_comm_ops_t mpi_ops = {
    .sum_floats = mpi_sum_floats,
    .sum_doubles = mpi_sum_doubles,
    .gather_u64 = mpi_gather_u64,
    .broadcast_text = mpi_broadcast_text,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
};

static ff_comm_t mpi_world = {.ops = &mpi_ops, .backend = "mpi"};

int ff_comm_mpi_init(int *argc, char ***argv, ff_comm_t **out, ff_error_t *err);
void ff_comm_mpi_finalize(void);

int ff_comm_mpi_init(int *argc, char ***argv, ff_comm_t **out, ff_error_t *err) {
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "init", rc);
    /* Errors come back as codes, so each names its operation. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &mpi_world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mpi_world.size);
    *out = &mpi_world;
    return 0;
}

void ff_comm_mpi_finalize(void) {
    free(scratch_f);
    free(scratch_d);
    scratch_f = NULL;
    scratch_d = NULL;
    MPI_Finalize();
}
