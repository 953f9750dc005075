/* layerstats.h: RUN/layers.json, what each finished layer of a streamed run
 * cost: its seconds, the sampled peaks of the resident set and of the
 * cgroup, the bytes read and written, and the run directory's disk when it
 * was done. Rewritten atomically after every layer and read back by a
 * resumed run, so its result covers the layers an earlier process trained.
 *
 *   {"format": "ffstream-layer-stats", "version": 1, "layers": [
 *     {"index": 0, "seconds": 12.5, "peak_rss_bytes": N, "cgroup_peak_bytes": N|null,
 *      "bytes_read": N, "bytes_written": N, "disk_bytes": N}, ...]}
 *
 * Parsed strictly (no unknown key, every number finite and in range, each
 * index once and below the run's layer count). */
#ifndef FFSTREAM_LAYERSTATS_H
#define FFSTREAM_LAYERSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/train.h"

#define FF_LAYERSTATS_NAME "layers.json"
/* The largest layers.json read (a record is under 256 bytes). */
#define FF_LAYERSTATS_MAX_BYTES ((size_t)4 << 20)

/* Writes the measured layers of layers[0..count) to RUN/layers.json
 * atomically. @return 0 or -1 with err. */
int ff_layerstats_save(const char *run_dir, const ff_layer_result_t *layers, uint32_t count,
                       ff_error_t *err);

/* Parses size bytes of layers.json text (path names it in messages) and
 * fills the measured figures of each listed layer of layers[0..count)
 * (measured = 1); other fields are left alone. @return 0 or -1 with err. */
int ff_layerstats_parse(const char *path, const char *text, size_t size,
                        ff_layer_result_t *layers, uint32_t count, ff_error_t *err);

/* Reads RUN/layers.json into layers[0..count) as ff_layerstats_parse does;
 * a missing file fills nothing. @return 0 or -1 with err. */
int ff_layerstats_load(const char *run_dir, ff_layer_result_t *layers, uint32_t count,
                       ff_error_t *err);

#endif
