/* tilefile.h: a layer stored as tiles of output units: layer file format
 * version 3, for a layer whose weights and Adam state do not fit in memory.
 * Training reads and writes it a tile at a time (tiles.h); ffinspect reads
 * it through layerfile.h, which hands version 3 files to the functions
 * below, as whole tensors streamed tile by tile.
 *
 * Byte layout (integers little-endian, floats float32 little-endian):
 *
 *   0            24    the preamble of layerfile.h with version 3; its
 *                      header length H makes 24 + H = data_offset
 *   24           H     JSON header, padded with spaces
 *   data_offset + t * frame_bytes, for each tile t (0 .. count-1): the
 *                      tile's frame, three regions of region_bytes each:
 *                      parameters (weight rows [rows_t, in] of the tile's
 *                      output units, then their bias [rows_t]), adam_m and
 *                      adam_v in the same layout, each zero-padded
 *   the file ends with the last frame
 *
 * Tile t holds output units t*units .. t*units + rows_t - 1 (rows_t = units
 * but for the last tile, which takes what is left). data_offset and
 * region_bytes are multiples of FF_TILE_ALIGN, so every region can be read
 * and written with O_DIRECT.
 *
 * The JSON header holds what a version 2 header holds except "tensors",
 * and "tiles": {"units", "count", "region_bytes", "data_offset", "done",
 * "xxh3": [3 x done hex strings]}: the XXH3-64 of each written tile's three
 * regions (their floats, not the padding). "done" is "count" in a finished
 * file; a trainer's pending file (the next step's state, written tile by
 * tile) has fewer, which is how a killed step resumes at a tile boundary.
 *
 * Writes go to a new file beside the committed one and replace it only
 * when every tile and the header are on disk (fsync, rename, directory
 * fsync): the committed file is never written in place. */
#ifndef FFSTREAM_TILEFILE_H
#define FFSTREAM_TILEFILE_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"
#include "ffstream/fileio.h"
#include "ffstream/layerfile.h"

#define FF_TILEFILE_VERSION 3u
#define FF_TILE_ALIGN 4096u
/* Tiles per layer: the checksums must fit the header (1 MiB). */
#define FF_TILEFILE_MAX_TILES 8192u

typedef struct {
    char path[FF_PATH_MAX];
    int fd;                 /* -1 when closed */
    int direct;             /* fd was opened with O_DIRECT */
    uint32_t in, out;
    uint32_t units, count;  /* output units per tile (the last may have fewer), tiles */
    uint32_t done;          /* tiles written (count in a finished file) */
    uint64_t region_bytes;  /* one region of a frame, padded */
    uint64_t frame_bytes;   /* 3 regions */
    uint64_t data_offset;   /* the first frame */
    uint64_t file_bytes;
    uint64_t *sums;         /* [3 * count]: XXH3 of each written tile's regions */
    int64_t adam_step;
    ff_layerfile_meta_t meta;
    char writer[64];        /* the header's "writer" */
    uint64_t dev, ino;      /* the open file's identity */
} ff_tilefile_t;

/* Sets the geometry of a tiling of in -> out into units per tile (no file;
 * tf's other fields zeroed). @return 0 or -1 with err (sizes out of range,
 * more than FF_TILEFILE_MAX_TILES tiles). */
int ff_tilefile_geometry(ff_tilefile_t *tf, uint32_t in, uint32_t out, uint32_t units,
                         ff_error_t *err);

/* Output units of tile t. */
uint32_t ff_tilefile_rows(const ff_tilefile_t *tf, uint32_t t);

/* Floats of one region that hold values: rows_t * in + rows_t. */
uint64_t ff_tilefile_region_floats(const ff_tilefile_t *tf, uint32_t t);

/* Disk bytes of a file of this geometry. */
uint64_t ff_tilefile_bytes(const ff_tilefile_t *tf);

/* Creates path (after ff_tilefile_geometry) as a new file of its full
 * length with no tile written, opened for writing with O_DIRECT where the
 * filesystem allows it. A symlink or anything but a regular file at path
 * is refused. @return 0 or -1 with err. */
int ff_tilefile_create(ff_tilefile_t *tf, const char *path, ff_error_t *err);

/* Opens path and checks its header (checksum, every field, the length
 * against the geometry) before allocating anything; allow_partial accepts
 * a pending file (done < count). writable opens it for writing (a pending
 * file that resumes). direct asks for O_DIRECT (falls back when the
 * filesystem refuses it). @return 0 or -1 with err naming the file. */
int ff_tilefile_open(ff_tilefile_t *tf, const char *path, int writable, int allow_partial,
                     int direct, ff_error_t *err);

/* Reads the first `regions` (1: parameters; 3: with the Adam moments) of
 * tile t (< done) into buf (FF_TILE_ALIGN-aligned, regions x region_bytes)
 * and checks their checksums. @return 0 or -1 with err. */
int ff_tilefile_read(ff_tilefile_t *tf, uint32_t t, int regions, void *buf, ff_error_t *err);

/* Writes the first `regions` regions of tile done (the next in order) from
 * buf (a frame, aligned) and records the checksums of all three: regions
 * not written must be zero in buf, as they are in a new file.
 * @return 0 or -1 with err. */
int ff_tilefile_write_next(ff_tilefile_t *tf, const void *buf, int regions, ff_error_t *err);

/* Writes the preamble and header (tf->adam_step, tf->meta, the tiles done)
 * at the start of the file. @return 0 or -1 with err. */
int ff_tilefile_write_header(ff_tilefile_t *tf, ff_error_t *err);

/* fsync. @return 0 or -1 with err. */
int ff_tilefile_sync(ff_tilefile_t *tf, ff_error_t *err);

/* Closes the file and frees the checksums (safe twice). */
void ff_tilefile_close(ff_tilefile_t *tf);

/* ---- what layerfile.h calls for a version 3 file ---- */

/* The header as layerfile.h describes a file: the tensors are the
 * whole-layer tensors the tiles make up (codec raw, offset 0), and
 * info->tile_units / tile_count say how they are cut. */
int ff_tilefile_read_info(const char *path, ff_layerfile_info_t *info, ff_error_t *err);

/* Tensor `index` (weight, bias, adam_m.weight, ...) of a finished tiled
 * file, tile by tile, every tile's checksum checked: memory holds one block
 * at a time, whatever the layer's size. A tile's values reach fn before
 * its checksum is checked (the tile is streamed, not held): on -1 the
 * caller discards what it was given. @return 0 or -1 with err. */
int ff_tilefile_stream_tensor(const char *path, uint32_t index, ff_layerfile_values_fn fn,
                              void *ctx, ff_error_t *err);

#endif
