/* comm.c: the single-rank case of comm.h, and the choice of ranks at start
 * (comm_mpi.c provides the MPI ranks in an MPI build). */
#include "ffstream/comm.h"

#include <stdlib.h>
#include <string.h>

#ifdef FF_HAVE_MPI
int ff_comm_mpi_init(int *argc, char ***argv, ff_comm_t **out, ff_error_t *err);
void ff_comm_mpi_finalize(void);
#endif

static int single_sum_floats(ff_comm_t *c, float *buf, size_t n, ff_error_t *err) {
    (void)c, (void)buf, (void)n, (void)err;
    return 0;
}

static int single_sum_doubles(ff_comm_t *c, double *buf, size_t n, ff_error_t *err) {
    (void)c, (void)buf, (void)n, (void)err;
    return 0;
}

static int single_gather_u64(ff_comm_t *c, uint64_t value, uint64_t *out, ff_error_t *err) {
    (void)c, (void)err;
    out[0] = value;
    return 0;
}

static int single_broadcast_text(ff_comm_t *c, char **text, size_t *size, ff_error_t *err) {
    (void)c, (void)text, (void)size, (void)err;
    return 0;
}

static int single_barrier(ff_comm_t *c, ff_error_t *err) {
    (void)c, (void)err;
    return 0;
}

static void single_abort(ff_comm_t *c, int code) {
    (void)c;
    exit(code);
}

static const ff_comm_ops_t single_ops = {
    .sum_floats = single_sum_floats,
    .sum_doubles = single_sum_doubles,
    .gather_u64 = single_gather_u64,
    .broadcast_text = single_broadcast_text,
    .barrier = single_barrier,
    .abort = single_abort,
};

static ff_comm_t single = {.ops = &single_ops, .rank = 0, .size = 1, .backend = "single"};
static ff_comm_t *world = &single;

ff_comm_t *ff_comm_world(void) { return world; }

int ff_comm_have_mpi(void) {
#ifdef FF_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* Whether a launcher started this process as one rank of a job. */
static int launched_by_mpirun(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", NULL};
    for (int i = 0; vars[i] != NULL; i++)
        if (getenv(vars[i]) != NULL) return 1;
    return 0;
}

int ff_comm_init(int *argc, char ***argv, ff_error_t *err) {
    if (!launched_by_mpirun()) return 0;
#ifdef FF_HAVE_MPI
    return ff_comm_mpi_init(argc, argv, &world, err);
#else
    (void)argc, (void)argv;
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size != NULL && strcmp(size, "1") != 0)
        return ff_error_set(err, "started by mpirun with %s ranks, but this fftrain was built "
                            "without MPI (meson setup -Dmpi=enabled; Debian: apt-get install "
                            "libopenmpi-dev openmpi-bin)", size);
    return 0;
#endif
}

void ff_comm_finalize(void) {
#ifdef FF_HAVE_MPI
    if (world != &single) ff_comm_mpi_finalize();
#endif
}
