/* comm.h: the ranks of a data-parallel run and what they exchange. One
 * process is the single-rank case of the same code (comm.c); an MPI build
 * launched by mpirun has one rank per process (comm_mpi.c, Open MPI).
 *
 * Every operation is collective: every rank calls it, in the same order.
 * A rank that fails between collectives stops the whole job with
 * ff_comm_abort after printing why (the others would wait forever). */
#ifndef FFSTREAM_COMM_H
#define FFSTREAM_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

/* The most ranks a run may have. */
#define FF_MAX_RANKS 1024

typedef struct ff_comm ff_comm_t;

typedef struct {
    /* Sums buf[0..n) over the ranks in rank order, ((r0 + r1) + r2) + ...,
     * and leaves the sum on every rank: the same bits for a given rank
     * count, whatever the timing. */
    int (*sum_floats)(ff_comm_t *c, float *buf, size_t n, ff_error_t *err);
    int (*sum_doubles)(ff_comm_t *c, double *buf, size_t n, ff_error_t *err);
    /* out[r] = rank r's value, on every rank. */
    int (*gather_u64)(ff_comm_t *c, uint64_t value, uint64_t *out, ff_error_t *err);
    /* Rank 0's text (size bytes, malloc'd) to every rank: *text and *size
     * are rank 0's on return (free() it). */
    int (*broadcast_text)(ff_comm_t *c, char **text, size_t *size, ff_error_t *err);
    int (*barrier)(ff_comm_t *c, ff_error_t *err);
    /* Stops every rank of the job with status code; does not return. */
    void (*abort)(ff_comm_t *c, int code);
} ff_comm_ops_t;

struct ff_comm {
    const ff_comm_ops_t *ops;
    int rank, size;
    const char *backend; /* "single", "mpi" */
};

/* The process's ranks: a single rank until ff_comm_init finds mpirun. */
ff_comm_t *ff_comm_world(void);

/* In an MPI build started by mpirun (or another launcher that sets the
 * PMIx / Open MPI rank variables): MPI_Init and one rank per process.
 * Otherwise nothing: a single rank. @return 0 or -1 with err. */
int ff_comm_init(int *argc, char ***argv, ff_error_t *err);

/* MPI_Finalize when ff_comm_init started MPI. */
void ff_comm_finalize(void);

/* Whether this build can run over MPI. */
int ff_comm_have_mpi(void);

static inline void ff_comm_abort(ff_comm_t *c, int code) { c->ops->abort(c, code); }

#endif
