/* fuzz_idx: the IDX reader on any bytes, raw or gzip: ff_idx_read must
 * accept or refuse cleanly, and allocate only from verified lengths. */
#include "fuzz_util.h"
#include "ffstream/idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    for (int ndims = 1; ndims <= 3; ndims += 2) {
        ff_idx_t idx;
        ff_error_t err;
        if (ff_idx_read(&idx, path, ndims, &err) == 0) {
            /* What was accepted is exactly what the header says. */
            size_t count = 1;
            for (int i = 0; i < idx.ndims; i++) count *= idx.dims[i];
            if (count != idx.count) __builtin_trap();
            ff_idx_free(&idx);
        }
    }
    close(fd);
    return 0;
}
