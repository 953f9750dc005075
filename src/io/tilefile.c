/* tilefile.c: layer files of tiles of output units (version 3; byte layout
 * in tilefile.h). The writer fills a file of its final length tile by tile
 * and writes the header last; the reader checks the header and the length
 * before it allocates, and every region's checksum as it reads. */
#include "ffstream/tilefile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "ffstream/hook.h"
#include "ffstream/json.h"
#include "ffstream/memstat.h"
#include "layerfile_internal.h"

/* Bytes read at a time when a tensor is streamed out of the tiles. */
#define STREAM_BLOCK ((size_t)1 << 20)

static uint64_t align_up(uint64_t v) { return (v + FF_TILE_ALIGN - 1) / FF_TILE_ALIGN * FF_TILE_ALIGN; }

/* Header bytes for count tiles: the fixed fields, 3 checksums per tile. */
static uint64_t header_room(uint32_t count) { return 4096 + 64 * (uint64_t)count; }

int ff_tilefile_geometry(ff_tilefile_t *tf, uint32_t in, uint32_t out, uint32_t units,
                         ff_error_t *err) {
    memset(tf, 0, sizeof *tf);
    tf->fd = -1;
    if (in < 1 || in > FF_LF_MAX_DIM || out < 1 || out > FF_LF_MAX_DIM)
        return ff_error_set(err, "tiled layer %u -> %u: sizes must be 1..%" PRIu64, in, out,
                            FF_LF_MAX_DIM);
    if (units < 1 || units > out)
        return ff_error_set(err, "tiled layer %u -> %u: %u units per tile, expected 1..%u", in,
                            out, units, out);
    uint64_t count = ((uint64_t)out + units - 1) / units;
    if (count > FF_TILEFILE_MAX_TILES)
        return ff_error_set(err, "tiled layer %u -> %u: %u units per tile make %" PRIu64
                            " tiles, at most %u (use wider tiles)", in, out, units, count,
                            FF_TILEFILE_MAX_TILES);
    tf->in = in;
    tf->out = out;
    tf->units = units;
    tf->count = (uint32_t)count;
    tf->region_bytes = align_up(((uint64_t)units * in + units) * sizeof(float));
    tf->frame_bytes = 3 * tf->region_bytes;
    tf->data_offset = align_up(FF_LAYERFILE_PREAMBLE + header_room(tf->count));
    tf->file_bytes = tf->data_offset + (uint64_t)tf->count * tf->frame_bytes;
    return 0;
}

uint32_t ff_tilefile_rows(const ff_tilefile_t *tf, uint32_t t) {
    uint64_t first = (uint64_t)t * tf->units;
    return first + tf->units <= tf->out ? tf->units : (uint32_t)(tf->out - first);
}

uint64_t ff_tilefile_region_floats(const ff_tilefile_t *tf, uint32_t t) {
    uint64_t rows = ff_tilefile_rows(tf, t);
    return rows * tf->in + rows;
}

uint64_t ff_tilefile_bytes(const ff_tilefile_t *tf) { return tf->file_bytes; }

/* ---- opening ---- */

/* Opens an existing regular file (never through a symlink) read-only or
 * read-write, with O_DIRECT when asked and the filesystem takes it. */
static int open_file(ff_tilefile_t *tf, const char *path, int writable, int direct,
                     ff_error_t *err) {
    /* A file written to is never reached through a link; one only read
     * may be (as a version 2 file may). */
    const int base = (writable ? O_RDWR | O_NOFOLLOW : O_RDONLY) | O_CLOEXEC | O_NONBLOCK;
    int fd;
    if (direct && ff_hook_no_direct()) {
        fd = -1;
        errno = EINVAL;
    } else {
        fd = open(path, base | (direct ? O_DIRECT : 0));
    }
    tf->direct = direct && fd >= 0;
    if (fd < 0 && direct && errno == EINVAL) fd = open(path, base); /* tmpfs: no O_DIRECT */
    if (fd < 0) {
        if (errno == ELOOP)
            return ff_error_set(err, "%s: is a symlink; refusing to use it (expected a regular "
                                "file)", path);
        return ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ff_error_set(err, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    tf->fd = fd;
    tf->file_bytes = (uint64_t)st.st_size;
    tf->dev = (uint64_t)st.st_dev;
    tf->ino = (uint64_t)st.st_ino;
    return 0;
}

int ff_tilefile_create(ff_tilefile_t *tf, const char *path, ff_error_t *err) {
    if (ff_path_format(tf->path, err, "%s", path) != 0) return -1;
    int fd = ff_fileio_create_new(path, O_RDWR, err);
    if (fd < 0) return -1;
    /* The full length now: regions not yet written read as zeros (the
     * moments of a new layer are never written: they are zero). */
    if (ftruncate(fd, (off_t)tf->file_bytes) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return ff_error_set(err, "%s: cannot size to %" PRIu64 " bytes: %s", path,
                            tf->file_bytes, strerror(e));
    }
    close(fd);
    uint64_t want = tf->file_bytes;
    if (open_file(tf, path, 1, 1, err) != 0) return -1;
    if (tf->file_bytes != want) {
        ff_tilefile_close(tf);
        return ff_error_set(err, "%s: changed size while being created", path);
    }
    tf->sums = ff_mem_calloc(FF_MEM_OTHER, 3 * (size_t)tf->count, sizeof *tf->sums);
    if (tf->sums == NULL) {
        ff_tilefile_close(tf);
        return ff_error_set(err, "%s: out of memory for %u tiles' checksums", path, tf->count);
    }
    tf->done = 0;
    return 0;
}

static const char *const header_keys[] = {"format", "version", "writer", "layer_index", "in",
                                          "out", "dtype", "activation", "tiles", "adam",
                                          "training", "data_fingerprint", "config_fingerprint",
                                          NULL};
static const char *const tiles_keys[] = {"units", "count", "region_bytes", "data_offset", "done",
                                         "xxh3", NULL};

/* The header's fields, strictly, into tf (whose fd and file_bytes are set). */
static int parse_header(ff_tilefile_t *tf, const char *text, size_t bytes, int allow_partial,
                        ff_error_t *err) {
    const char *path = tf->path;
    cJSON *root = NULL;
    int rc = -1;
    ff_json_ctx_t c = {path, NULL};
    ff_lf_common_t common;
    if (ff_lf_parse_common(path, text, bytes, header_keys, FF_TILEFILE_VERSION, &root, &common,
                           err) != 0)
        return -1;
    snprintf(tf->writer, sizeof tf->writer, "%s", common.writer);
    tf->meta.layer_index = common.layer_index;
    const uint64_t in = common.in, out = common.out;
    const cJSON *tiles;
    if (ff_json_get_object(&c, root, "tiles", &tiles, err) != 0) goto cleanup;
    ff_json_ctx_t tc = {path, "tiles"};
    uint64_t units, count, region, offset, done;
    if (ff_json_check_keys(&tc, tiles, tiles_keys, err) ||
        ff_json_get_uint(&tc, tiles, "units", 1, out, &units, err) ||
        ff_json_get_uint(&tc, tiles, "count", 1, FF_TILEFILE_MAX_TILES, &count, err) ||
        ff_json_get_uint(&tc, tiles, "region_bytes", 1, FF_LF_JSON_MAX_INT, &region, err) ||
        ff_json_get_uint(&tc, tiles, "data_offset", 1, FF_LF_JSON_MAX_INT, &offset, err) ||
        ff_json_get_uint(&tc, tiles, "done", 0, count, &done, err))
        goto cleanup;
    /* Every size follows from in, out and units: the header cannot make a
     * reader seek or allocate elsewhere. */
    ff_tilefile_t g;
    if (ff_tilefile_geometry(&g, (uint32_t)in, (uint32_t)out, (uint32_t)units, err) != 0) {
        ff_error_wrap(err, "%s", path);
        goto cleanup;
    }
    if (g.count != count || g.region_bytes != region || g.data_offset != offset ||
        FF_LAYERFILE_PREAMBLE + bytes != offset) {
        ff_error_set(err, "%s: header field \"tiles\" disagrees with the layer's shape %" PRIu64
                     " -> %" PRIu64 " in tiles of %" PRIu64 " units (count %" PRIu64
                     ", region %" PRIu64 ", data at %" PRIu64 "; expected %u, %" PRIu64
                     ", %" PRIu64 ")", path, in, out, units, count, region, offset, g.count,
                     g.region_bytes, g.data_offset);
        goto cleanup;
    }
    if (tf->file_bytes != g.file_bytes) {
        ff_error_set(err, "%s: %" PRIu64 " bytes, expected %" PRIu64 " for %u tiles of %" PRIu64
                     " bytes (truncated or appended?)", path, tf->file_bytes, g.file_bytes,
                     g.count, g.frame_bytes);
        goto cleanup;
    }
    if (done < count && !allow_partial) {
        ff_error_set(err, "%s: only %" PRIu64 " of %" PRIu64 " tiles are written (a step that "
                     "was cut off, not a checkpoint)", path, done, count);
        goto cleanup;
    }
    const cJSON *sums = cJSON_GetObjectItemCaseSensitive(tiles, "xxh3");
    if (!cJSON_IsArray(sums) || (uint64_t)cJSON_GetArraySize(sums) != 3 * done) {
        ff_error_set(err, "%s: header field \"tiles.xxh3\" is not an array of %" PRIu64
                     " checksums (3 per tile written)", path, 3 * done);
        goto cleanup;
    }
    tf->sums = ff_mem_calloc(FF_MEM_OTHER, 3 * (size_t)count, sizeof *tf->sums);
    if (tf->sums == NULL) {
        ff_error_set(err, "%s: out of memory for the checksums", path);
        goto cleanup;
    }
    for (uint64_t i = 0; i < 3 * done; i++) {
        const cJSON *h = cJSON_GetArrayItem(sums, (int)i);
        char *end = NULL;
        if (!cJSON_IsString(h) || strlen(h->valuestring) != 16 ||
            strspn(h->valuestring, "0123456789abcdef") != 16) {
            ff_error_set(err, "%s: header field \"tiles.xxh3\"[%" PRIu64 "] is not 16 hex digits",
                         path, i);
            goto cleanup;
        }
        tf->sums[i] = strtoull(h->valuestring, &end, 16);
    }
    ff_layerfile_info_t info = {0};
    if (ff_lf_parse_adam(path, root, &info, err) != 0 ||
        ff_lf_parse_training(path, root, &info.meta, err) != 0 ||
        ff_json_get_hex64(&c, root, "data_fingerprint", &info.meta.data_fingerprint, err) != 0 ||
        ff_json_get_hex64(&c, root, "config_fingerprint", &info.meta.config_fingerprint, err) != 0)
        goto cleanup;
    info.meta.layer_index = tf->meta.layer_index;
    tf->meta = info.meta;
    tf->adam_step = info.adam_step;
    tf->in = g.in;
    tf->out = g.out;
    tf->units = g.units;
    tf->count = g.count;
    tf->region_bytes = g.region_bytes;
    tf->frame_bytes = g.frame_bytes;
    tf->data_offset = g.data_offset;
    tf->done = (uint32_t)done;
    rc = 0;
cleanup:
    cJSON_Delete(root);
    return rc;
}

int ff_tilefile_open(ff_tilefile_t *tf, const char *path, int writable, int allow_partial,
                     int direct, ff_error_t *err) {
    memset(tf, 0, sizeof *tf);
    tf->fd = -1;
    if (ff_path_format(tf->path, err, "%s", path) != 0) return -1;
    if (open_file(tf, path, writable, direct, err) != 0) return -1;
    /* The preamble and header through a plain descriptor (O_DIRECT would
     * need aligned reads of a length the header has not yet vouched for)
     * of the same file: not a FIFO swapped in, not another file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    char *text = NULL;
    int rc = -1;
    uint8_t pre[FF_LAYERFILE_PREAMBLE];
    struct stat st;
    if (fd < 0) {
        ff_error_set(err, "%s: cannot open: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != tf->dev || (uint64_t)st.st_ino != tf->ino) {
        ff_error_set(err, "%s: changed while being opened (another file is there now)", path);
        goto cleanup;
    }
    if (tf->file_bytes < sizeof pre || ff_fileio_read_exact(fd, pre, sizeof pre, 0) != 0) {
        ff_error_set(err, "%s: shorter than the %u-byte preamble (truncated?)", path,
                     FF_LAYERFILE_PREAMBLE);
        goto cleanup;
    }
    if (memcmp(pre, FF_LAYERFILE_MAGIC, 8) != 0 ||
        ff_get_le(pre + 8, 4) != FF_TILEFILE_VERSION) {
        ff_error_set(err, "%s: not a tiled ffstream layer file (version 3)", path);
        goto cleanup;
    }
    uint32_t hb = (uint32_t)ff_get_le(pre + 12, 4);
    if (hb < 2 || hb > FF_LAYERFILE_MAX_HEADER || hb > tf->file_bytes - sizeof pre) {
        ff_error_set(err, "%s: header length %u bytes, expected 2..%u inside the %" PRIu64
                     "-byte file", path, hb, FF_LAYERFILE_MAX_HEADER, tf->file_bytes);
        goto cleanup;
    }
    text = ff_lf_read_header(fd, path, pre, hb, err);
    if (text == NULL) goto cleanup;
    if (parse_header(tf, text, hb, allow_partial, err) != 0) goto cleanup;
    rc = 0;
cleanup:
    ff_mem_free(text);
    if (fd >= 0) close(fd);
    if (rc != 0) ff_tilefile_close(tf);
    return rc;
}

/* ---- tiles ---- */

static uint64_t frame_offset(const ff_tilefile_t *tf, uint32_t t) {
    return tf->data_offset + (uint64_t)t * tf->frame_bytes;
}

static const char *const region_names[3] = {"parameters", "adam_m", "adam_v"};

int ff_tilefile_read(ff_tilefile_t *tf, uint32_t t, int regions, void *buf, ff_error_t *err) {
    if (t >= tf->done)
        return ff_error_set(err, "%s: tile %u is not written (%u of %u are)", tf->path, t,
                            tf->done, tf->count);
    if (ff_fileio_read_exact(tf->fd, buf, (size_t)(regions * tf->region_bytes),
                             frame_offset(tf, t)) != 0)
        return ff_lf_read_error(tf->path, "a tile", err);
    const size_t bytes = (size_t)ff_tilefile_region_floats(tf, t) * sizeof(float);
    for (int r = 0; r < regions; r++) {
        uint64_t h = XXH3_64bits((const uint8_t *)buf + r * tf->region_bytes, bytes);
        if (h != tf->sums[3 * (size_t)t + r])
            return ff_error_set(err, "%s: tile %u of %u: %s: checksum mismatch (stored %016"
                                PRIx64 ", computed %016" PRIx64 ")", tf->path, t, tf->count,
                                region_names[r], tf->sums[3 * (size_t)t + r], h);
    }
    return 0;
}

int ff_tilefile_write_next(ff_tilefile_t *tf, const void *buf, int regions, ff_error_t *err) {
    const uint32_t t = tf->done;
    if (t >= tf->count) return ff_error_set(err, "%s: every tile is written", tf->path);
    if (regions < 1 || regions > 3)
        return ff_error_set(err, "%s: %d regions of a tile, expected 1..3", tf->path, regions);
    const size_t bytes = (size_t)ff_tilefile_region_floats(tf, t) * sizeof(float);
    for (int r = 0; r < 3; r++)
        tf->sums[3 * (size_t)t + r] =
            XXH3_64bits((const uint8_t *)buf + r * tf->region_bytes, bytes);
    if (ff_fileio_pwrite(tf->fd, buf, (size_t)(regions * tf->region_bytes), frame_offset(tf, t)) != 0)
        return ff_error_set(err, "%s: cannot write tile %u: %s", tf->path, t, strerror(errno));
    tf->done = t + 1;
    return 0;
}

static char *build_header(const ff_tilefile_t *tf) {
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) return NULL;
    int bad = cJSON_AddStringToObject(root, "format", FF_LF_FORMAT_NAME) == NULL;
    bad |= ff_lf_add_uint(root, "version", FF_TILEFILE_VERSION);
    bad |= cJSON_AddStringToObject(root, "writer", "ffstream " FF_VERSION) == NULL;
    bad |= ff_lf_add_uint(root, "layer_index", tf->meta.layer_index);
    bad |= ff_lf_add_uint(root, "in", tf->in);
    bad |= ff_lf_add_uint(root, "out", tf->out);
    bad |= cJSON_AddStringToObject(root, "dtype", "float32") == NULL;
    bad |= cJSON_AddStringToObject(root, "activation", "relu") == NULL;
    cJSON *tiles = cJSON_AddObjectToObject(root, "tiles");
    bad |= tiles == NULL;
    if (tiles != NULL) {
        bad |= ff_lf_add_uint(tiles, "units", tf->units);
        bad |= ff_lf_add_uint(tiles, "count", tf->count);
        bad |= ff_lf_add_uint(tiles, "region_bytes", tf->region_bytes);
        bad |= ff_lf_add_uint(tiles, "data_offset", tf->data_offset);
        bad |= ff_lf_add_uint(tiles, "done", tf->done);
        cJSON *sums = cJSON_AddArrayToObject(tiles, "xxh3");
        bad |= sums == NULL;
        for (size_t i = 0; sums != NULL && i < 3 * (size_t)tf->done; i++) {
            char hex[20];
            snprintf(hex, sizeof hex, "%016" PRIx64, tf->sums[i]);
            cJSON *h = cJSON_CreateString(hex);
            bad |= h == NULL || !cJSON_AddItemToArray(sums, h);
        }
    }
    bad |= ff_lf_add_state(root, &tf->meta, tf->adam_step);
    char *text = bad ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

int ff_tilefile_write_header(ff_tilefile_t *tf, ff_error_t *err) {
    const size_t room = (size_t)tf->data_offset - FF_LAYERFILE_PREAMBLE;
    char *json = build_header(tf);
    if (json == NULL) return ff_error_set(err, "%s: out of memory for the header", tf->path);
    size_t n = strlen(json);
    uint8_t *block = n <= room ? ff_mem_alloc_aligned(FF_MEM_IO, (size_t)tf->data_offset,
                                                      FF_TILE_ALIGN)
                               : NULL;
    if (block == NULL) {
        cJSON_free(json);
        return ff_error_set(err, "%s: the header (%zu bytes) does not fit in %zu, or memory is "
                            "short", tf->path, n, room);
    }
    memcpy(block + FF_LAYERFILE_PREAMBLE, json, n);
    memset(block + FF_LAYERFILE_PREAMBLE + n, ' ', room - n);
    cJSON_free(json);
    memcpy(block, FF_LAYERFILE_MAGIC, 8);
    ff_put_le(block + 8, FF_TILEFILE_VERSION, 4);
    ff_put_le(block + 12, room, 4);
    ff_put_le(block + 16,
              ff_lf_header_checksum(block, (const char *)block + FF_LAYERFILE_PREAMBLE, room), 8);
    int rc = 0;
    if (ff_fileio_pwrite(tf->fd, block, (size_t)tf->data_offset, 0) != 0)
        rc = ff_error_set(err, "%s: cannot write the header: %s", tf->path, strerror(errno));
    ff_mem_free(block);
    return rc;
}

int ff_tilefile_sync(ff_tilefile_t *tf, ff_error_t *err) {
    if (ff_fileio_fsync(tf->fd) != 0)
        return ff_error_set(err, "%s: fsync failed: %s", tf->path, strerror(errno));
    return 0;
}

void ff_tilefile_close(ff_tilefile_t *tf) {
    if (tf->fd >= 0) {
        posix_fadvise(tf->fd, 0, 0, POSIX_FADV_DONTNEED);
        close(tf->fd);
    }
    tf->fd = -1;
    ff_mem_free(tf->sums);
    tf->sums = NULL;
}

/* ---- whole tensors, for layerfile.h's readers ---- */

int ff_tilefile_read_info(const char *path, ff_layerfile_info_t *info, ff_error_t *err) {
    memset(info, 0, sizeof *info);
    ff_tilefile_t tf;
    if (ff_tilefile_open(&tf, path, 0, 0, 0, err) != 0) return -1;
    info->version = FF_TILEFILE_VERSION;
    info->in = tf.in;
    info->out = tf.out;
    info->adam_step = tf.adam_step;
    info->has_optimizer = 1;
    info->tensor_count = 6;
    info->file_bytes = tf.file_bytes;
    info->tile_units = tf.units;
    info->tile_count = tf.count;
    info->meta = tf.meta;
    snprintf(info->writer, sizeof info->writer, "%s", tf.writer);
    for (uint32_t i = 0; i < 6; i++) {
        ff_layerfile_tensor_t *t = &info->tensors[i];
        snprintf(t->name, sizeof t->name, "%s", ff_layerfile_tensor_name(i));
        t->ndim = i % 2 == 0 ? 2 : 1;
        t->shape[0] = tf.out;
        t->shape[1] = i % 2 == 0 ? tf.in : 0;
        t->codec = FF_CODEC_RAW;
        t->raw_bytes = (uint64_t)tf.out * (i % 2 == 0 ? tf.in : 1) * sizeof(float);
        t->stored_bytes = t->raw_bytes;
    }
    ff_tilefile_close(&tf);
    return 0;
}

int ff_tilefile_stream_tensor(const char *path, uint32_t index, ff_layerfile_values_fn fn,
                              void *ctx, ff_error_t *err) {
    if (index >= 6) return ff_error_set(err, "%s: no tensor %u", path, index);
    ff_tilefile_t tf;
    if (ff_tilefile_open(&tf, path, 0, 0, 0, err) != 0) return -1;
    const int region = (int)(index / 2), bias = index % 2;
    float *block = ff_mem_alloc(FF_MEM_IO, STREAM_BLOCK);
    int rc = -1;
    if (block == NULL) {
        ff_error_set(err, "%s: out of memory", path);
        goto cleanup;
    }
    for (uint32_t t = 0; t < tf.count; t++) {
        /* The whole region is hashed; the tensor's part of it goes to fn. */
        const uint64_t rows = ff_tilefile_rows(&tf, t), floats = ff_tilefile_region_floats(&tf, t);
        const uint64_t want0 = bias ? rows * tf.in : 0, want1 = bias ? floats : rows * tf.in;
        const uint64_t base = frame_offset(&tf, t) + (uint64_t)region * tf.region_bytes;
        XXH3_state_t *st = XXH3_createState();
        if (st == NULL || XXH3_64bits_reset(st) != XXH_OK) {
            XXH3_freeState(st);
            ff_error_set(err, "%s: out of memory", path);
            goto cleanup;
        }
        for (uint64_t at = 0; at < floats;) {
            size_t n = (size_t)(floats - at < STREAM_BLOCK / sizeof(float)
                                    ? floats - at : STREAM_BLOCK / sizeof(float));
            if (ff_fileio_read_exact(tf.fd, block, n * sizeof(float),
                                     base + at * sizeof(float)) != 0) {
                XXH3_freeState(st);
                ff_lf_read_error(path, "a tile", err);
                goto cleanup;
            }
            XXH3_64bits_update(st, block, n * sizeof(float));
            uint64_t lo = at > want0 ? at : want0, hi = at + n < want1 ? at + n : want1;
            if (lo < hi && fn(ctx, block + (lo - at), (size_t)(hi - lo), err) != 0) {
                XXH3_freeState(st);
                ff_error_wrap(err, "%s: tensor %s", path, ff_layerfile_tensor_name(index));
                goto cleanup;
            }
            at += n;
        }
        uint64_t h = XXH3_64bits_digest(st);
        XXH3_freeState(st);
        if (h != tf.sums[3 * (size_t)t + region]) {
            ff_error_set(err, "%s: tensor %s: tile %u of %u: checksum mismatch (stored %016" PRIx64
                         ", computed %016" PRIx64 ")", path, ff_layerfile_tensor_name(index), t,
                         tf.count, tf.sums[3 * (size_t)t + region], h);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    ff_mem_free(block);
    ff_tilefile_close(&tf);
    return rc;
}
