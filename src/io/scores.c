/* scores.c: the evaluation scores file (see scores.h). */
#include "ffstream/scores.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "ffstream/fileio.h"
#include "ffstream/memstat.h"

static const char scores_magic[8] = {'F', 'F', 'S', 'C', 'O', 'R', 'E', 0};


/* XXH3 of the floats, seeded with the XXH3 of the header's first 32 bytes. */
static uint64_t checksum(const uint8_t *header, const float *scores, size_t count) {
    return XXH3_64bits_withSeed(scores, count * sizeof(float), XXH3_64bits(header, 32));
}

static void encode_header(uint8_t *h, const float *scores, size_t count, uint32_t layer,
                          uint64_t tag) {
    memcpy(h, scores_magic, 8);
    ff_put_le(h + 8, FF_SCORES_VERSION, 4);
    ff_put_le(h + 12, layer, 4);
    ff_put_le(h + 16, count, 8);
    ff_put_le(h + 24, tag, 8);
    ff_put_le(h + 32, checksum(h, scores, count), 8);
}

int ff_scores_write(const char *path, const float *scores, size_t count, uint32_t layer,
                    uint64_t tag, ff_error_t *err) {
    uint8_t h[FF_SCORES_HEADER];
    encode_header(h, scores, count, layer, tag);
    ff_atomic_t a;
    if (ff_atomic_begin(&a, path, err) != 0) return -1;
    if (ff_atomic_write(&a, h, sizeof h, err) != 0 ||
        ff_atomic_write(&a, scores, count * sizeof(float), err) != 0)
        return -1;
    return ff_atomic_commit(&a, err);
}

int ff_scores_read(const char *path, float *scores, size_t count, uint32_t layer, uint64_t tag,
                   ff_error_t *err) {
    uint64_t size;
    int fd = ff_fileio_open_regular(path, 0, &size, err);
    if (fd < 0) return -1;
    int rc = -1;
    uint8_t h[FF_SCORES_HEADER];
    uint64_t want = FF_SCORES_HEADER + (uint64_t)count * sizeof(float);
    if (size != want) {
        ff_error_set(err, "%s: %llu bytes, expected %llu (%zu scores)", path,
                     (unsigned long long)size, (unsigned long long)want, count);
        goto done;
    }
    if (ff_fileio_read_exact(fd, h, sizeof h, 0) != 0 ||
        ff_fileio_read_exact(fd, scores, count * sizeof(float), FF_SCORES_HEADER) != 0) {
        ff_error_set(err, "%s: cannot read: %s", path, errno ? strerror(errno) : "file shrank");
        goto done;
    }
    if (memcmp(h, scores_magic, 8) != 0) {
        ff_error_set(err, "%s: not an ffstream scores file (bad magic)", path);
        goto done;
    }
    const struct {
        const char *name;
        uint64_t got, want;
    } fields[] = {
        {"version", ff_get_le(h + 8, 4), FF_SCORES_VERSION},
        {"layer", ff_get_le(h + 12, 4), layer},
        {"count", ff_get_le(h + 16, 8), count},
        {"tag", ff_get_le(h + 24, 8), tag},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].got != fields[i].want) {
            ff_error_set(err, "%s: field %s is %llu, expected %llu", path, fields[i].name,
                         (unsigned long long)fields[i].got, (unsigned long long)fields[i].want);
            goto done;
        }
    uint64_t sum = checksum(h, scores, count), stored = ff_get_le(h + 32, 8);
    if (sum != stored) {
        ff_error_set(err, "%s: checksum mismatch (stored %016llx, content %016llx): the file is "
                     "damaged", path, (unsigned long long)stored, (unsigned long long)sum);
        goto done;
    }
    rc = 0;
done:
    close(fd);
    return rc;
}
