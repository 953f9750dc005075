/* fuzz_run: the run.json parser on any bytes (its checksum is skipped so
 * every field's validation is reached): accept or refuse cleanly, and an
 * accepted state must be consistent with itself. */
#include "ffstream/run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ff_run_state_t state;
    ff_error_t err;
    if (ff_run_parse("fuzz/run.json", (const char *)data, size, 0, &state, &err) == 0) {
        if (state.hashed_layers > state.config.layers) __builtin_trap();
        if (state.cache_layer != FF_RUN_NO_CACHE && state.cache_layer >= state.config.layers)
            __builtin_trap();
        if (state.config_fingerprint != ff_config_fingerprint(&state.config)) __builtin_trap();
    }
    return 0;
}
