/* report.h: the result JSON of a training run (fftrain --json), written
 * atomically (temporary file, fsync, rename). */
#ifndef FFSTREAM_REPORT_H
#define FFSTREAM_REPORT_H

#include "ffstream/config.h"
#include "ffstream/error.h"
#include "ffstream/train.h"

/* Records the load average and the date at the program's start, for the
 * document's run_info (call first thing in main). */
void ff_report_mark_start(void);

/* Builds the result document and returns it as a malloc'd string (free()).
 * @return NULL when out of memory. */
char *ff_report_json(const ff_config_t *cfg, const ff_result_t *res);

/* ff_report_json written atomically (fileio.h). */
int ff_report_write(const char *path, const ff_config_t *cfg, const ff_result_t *res,
                    ff_error_t *err);

#endif
