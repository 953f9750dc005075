/* fuzz_layerfile: the layer-file reader on any bytes, both layouts: whole
 * tensors (version 2) and tiles (version 3, tilefile.h). The header's
 * checksum is set to match first (as a writer would; the preamble is the
 * same in both versions), so the fuzzer reaches the parser's every check;
 * then read_info, verify and (for small shapes) load must accept or refuse
 * cleanly. */
#include <xxhash.h>

#include "fuzz_util.h"
#include "ffstream/layerfile.h"
#include "ffstream/memstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) return 0;
    memcpy(copy, data, size);
    if (size >= FF_LAYERFILE_PREAMBLE) {
        uint32_t header = (uint32_t)copy[12] | (uint32_t)copy[13] << 8 |
                          (uint32_t)copy[14] << 16 | (uint32_t)copy[15] << 24;
        if (header <= size - FF_LAYERFILE_PREAMBLE) {
            uint64_t sum = XXH3_64bits_withSeed(copy + FF_LAYERFILE_PREAMBLE, header,
                                                XXH3_64bits(copy, 16));
            for (int i = 0; i < 8; i++) copy[16 + i] = (uint8_t)(sum >> (8 * i));
        }
    }
    char path[64];
    int fd = fuzz_file(copy, size, path, sizeof path);
    free(copy);
    if (fd < 0) return 0;
    ff_layerfile_info_t info;
    ff_error_t err;
    if (ff_layerfile_read_info(path, &info, &err) == 0) {
        ff_layerfile_verify(path, &err);
        /* Loading allocates the shape: only small ones, as a trainer would
         * only ask for its own. */
        if ((uint64_t)info.in * info.out <= (1u << 16)) {
            ff_layer_t layer;
            ff_layerfile_meta_t meta;
            if (ff_layerfile_load(path, &layer, &meta, info.has_optimizer, info.in, info.out,
                                  &err) == 0)
                ff_layer_free(&layer);
        }
    }
    close(fd);
    return 0;
}
