/* plan.h: what a run will need before it starts: the memory budget (given,
 * or the limit of the cgroup the process runs in) and the chunk sizes
 * fitted to it, the memory model by category, the disk by kind, and the
 * checks of both against what the machine has (fftrain --plan prints it). */
#ifndef FFSTREAM_PLAN_H
#define FFSTREAM_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "ffstream/config.h"
#include "ffstream/data.h"
#include "ffstream/error.h"
#include "ffstream/memmodel.h"

typedef struct {
    uint64_t budget;          /* bytes, 0 for none */
    char budget_from[160];    /* "--mem-budget", "the limit of cgroup FILE", "none" */
    ff_memmodel_t memory;     /* at the peak, with the chunks chosen */
    ff_diskmodel_t disk;
    uint64_t disk_free;       /* bytes free where the run directory is (0: not asked) */
    uint64_t disk_present;    /* bytes the run directory holds already */
    uint64_t pixels, train, test;
} ff_plan_t;

/* Resolves the budget, fits cfg's chunk sizes to it (ff_memmodel_fit) and
 * computes both models for the loaded data. @return 0, or -1 with err
 * naming the smallest budget that would do. */
int ff_plan_make(ff_plan_t *plan, ff_config_t *cfg, const ff_dataset_t *train,
                 const ff_dataset_t *test, ff_error_t *err);

/* BYTES as "N bytes" or with two decimals in KiB, MiB, GiB or TiB. */
void ff_plan_bytes(char out[32], uint64_t bytes);

/* Checks the free space of the run directory's filesystem (statvfs)
 * against what the run still has to write (the plan minus what the
 * directory holds). @return 0 or -1 with err naming the directory and both
 * numbers. */
int ff_plan_check_disk(ff_plan_t *plan, const ff_config_t *cfg, ff_error_t *err);

/* The plan as text, and as a JSON document (free()), or NULL when out of
 * memory. */
void ff_plan_print(FILE *out, const ff_config_t *cfg, const ff_plan_t *plan);
char *ff_plan_json(const ff_config_t *cfg, const ff_plan_t *plan);

#endif
