/* fuzz_layerstats: the RUN/layers.json parser on any bytes: accept or
 * refuse cleanly, and what it accepts lies within the layers it was given. */
#include <string.h>

#include "ffstream/layerstats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ff_layer_result_t layers[8];
    memset(layers, 0, sizeof layers);
    ff_error_t err;
    if (ff_layerstats_parse("fuzz/layers.json", (const char *)data, size, layers, 8, &err) == 0) {
        for (int k = 0; k < 8; k++)
            if (layers[k].measured && !(layers[k].seconds >= 0)) __builtin_trap();
    }
    return 0;
}
