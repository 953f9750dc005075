/* report.h: the result JSON of a training run (fftrain --json), written
 * atomically (temporary file, fsync, rename). */
#ifndef FFSTREAM_REPORT_H
#define FFSTREAM_REPORT_H

#include "ffstream/config.h"
#include "ffstream/error.h"
#include "ffstream/train.h"

/* Builds the result document and returns it as a malloc'd string (free()).
 * @return NULL when out of memory. */
char *ff_report_json(const ff_config_t *cfg, const ff_result_t *res);

/* Writes text to path atomically: path.tmp, fsync, rename, fsync of the
 * directory. @return 0 or -1 with err naming the operation that failed. */
int ff_write_file_atomic(const char *path, const void *data, size_t size, ff_error_t *err);

/* ff_report_json + ff_write_file_atomic. */
int ff_report_write(const char *path, const ff_config_t *cfg, const ff_result_t *res,
                    ff_error_t *err);

#endif
