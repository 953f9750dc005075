/* sweep.c: ffprofile's decisions: modes and depths of a sweep, the resume
 * check and the kept records, the time left (see sweep.h). */
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const sweep_mode_t sweep_modes[SWEEP_MODE_COUNT] = {
    {"ff-stream", SWEEP_FFTRAIN, FF_MODE_FF_STREAM, NULL},
    {"ff-mem", SWEEP_FFTRAIN, FF_MODE_FF_MEM, NULL},
    {"bp", SWEEP_FFTRAIN, FF_MODE_BP, NULL},
    {"ff-recurrent", SWEEP_FFTRAIN, FF_MODE_FF_RECURRENT, NULL},
    {"torch-ff", SWEEP_TORCH, FF_MODE_FF_MEM, "ff"},
    {"torch-bp", SWEEP_TORCH, FF_MODE_BP, "bp"},
};

const sweep_setting_t sweep_settings[] = {
    {"modes", "--modes"},
    {"layers", "--layers"},
    {"hidden", "--hidden"},
    {"batch", "--batch"},
    {"epochs", "--epochs"},
    {"lr", "--lr"},
    {"recipe", "--recipe"},
    {"eval", "--eval"},
    {"bp_lr", "--bp-lr"},
    {"mpi_ranks", "--mpi"},
    {"seed", "--seed"},
    {"train_limit", "--train-limit"},
    {"test_limit", "--test-limit"},
    {"threads", "--threads"},
    {"data", "--data"},
    {"mem_limit_bytes", "--mem-limit"},
    {NULL, NULL},
};

/* The longest list text accepted (a list of 256 four-digit depths fits). */
#define LIST_MAX 1400

int sweep_parse_modes(const char *text, const sweep_mode_t **modes, int *count, ff_error_t *err) {
    char buf[LIST_MAX];
    *count = 0;
    if (strlen(text) >= sizeof buf)
        return ff_error_set(err, "--modes: list too long (%zu bytes, at most %zu)", strlen(text),
                            sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        const sweep_mode_t *found = NULL;
        for (int m = 0; m < SWEEP_MODE_COUNT; m++)
            if (strcmp(t, sweep_modes[m].name) == 0) found = &sweep_modes[m];
        if (found == NULL)
            return ff_error_set(err,
                                "--modes: unknown mode '%s', expected ff-stream, ff-mem, bp, "
                                "ff-recurrent, torch-ff or torch-bp",
                                t);
        /* A repeat would run the same cells twice (and the list has one slot
         * per mode): refused rather than dropped silently. */
        for (int i = 0; i < *count; i++)
            if (modes[i] == found)
                return ff_error_set(err, "--modes: '%s' is listed twice in '%s'", t, text);
        modes[(*count)++] = found;
    }
    if (*count == 0) return ff_error_set(err, "--modes: empty mode list '%s'", text);
    return 0;
}

/* One depth of --layers: digits only, 1..FF_MAX_LAYERS. */
static int parse_depth(const char *whole, const char *what, const char *t, uint32_t *out,
                       ff_error_t *err) {
    errno = 0;
    char *end = NULL;
    unsigned long long v = t[0] >= '0' && t[0] <= '9' ? strtoull(t, &end, 10) : 0;
    if (end == NULL || end == t || *end != '\0' || errno != 0 || v < 1 || v > FF_MAX_LAYERS)
        return ff_error_set(err, "--layers %s: %s '%s' is not a whole number in 1..%d", whole,
                            what, t, FF_MAX_LAYERS);
    *out = (uint32_t)v;
    return 0;
}

int sweep_parse_depths(const char *text, uint32_t *depths, int *count, ff_error_t *err) {
    char buf[LIST_MAX];
    *count = 0;
    if (strlen(text) >= sizeof buf)
        return ff_error_set(err, "--layers: list too long (%zu bytes, at most %zu)", strlen(text),
                            sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", text);
    if (strchr(buf, ':') != NULL) {
        /* Exactly two colons: A:B:S. */
        char *first = strchr(buf, ':'), *second = first != NULL ? strchr(first + 1, ':') : NULL;
        if (second == NULL || strchr(second + 1, ':') != NULL)
            return ff_error_set(err, "--layers %s: expected A:B:S", text);
        *first = *second = '\0';
        char *parts[3] = {buf, first + 1, second + 1};
        uint32_t lo = 0, hi = 0, step = 1;
        if (parse_depth(text, "start", parts[0], &lo, err) != 0 ||
            parse_depth(text, "end", parts[1], &hi, err) != 0 ||
            parse_depth(text, "step", parts[2], &step, err) != 0)
            return -1;
        if (hi < lo)
            return ff_error_set(err,
                                "--layers %s: empty or invalid range (expected A:B:S with "
                                "1 <= A <= B <= %d and S >= 1)",
                                text, FF_MAX_LAYERS);
        /* Counted before anything is stored: a sweep longer than the limit
         * is refused, never cut. The operands are at most 4096: no wrap. */
        uint64_t n_depths = ((uint64_t)hi - lo) / step + 1;
        if (n_depths > SWEEP_MAX_DEPTHS)
            return ff_error_set(err, "--layers %s: %llu depths, at most %d in one sweep", text,
                                (unsigned long long)n_depths, SWEEP_MAX_DEPTHS);
        for (uint64_t d = lo; d <= hi; d += step) depths[(*count)++] = (uint32_t)d;
        return 0;
    }
    int listed = 0;
    for (const char *p = text; *p; p++) listed += *p == ',';
    if (listed + 1 > SWEEP_MAX_DEPTHS)
        return ff_error_set(err, "--layers: %d depths listed, at most %d in one sweep", listed + 1,
                            SWEEP_MAX_DEPTHS);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        uint32_t d = 0;
        if (parse_depth(text, "depth", t, &d, err) != 0) return -1;
        for (int i = 0; i < *count; i++)
            if (depths[i] == d)
                return ff_error_set(err, "--layers %s: %u is listed twice", text, d);
        depths[(*count)++] = d;
    }
    if (*count == 0) return ff_error_set(err, "--layers '%s': empty layer list", text);
    return 0;
}

int sweep_compare_config(const cJSON *saved, const cJSON *now, const char *path, ff_error_t *err) {
    if (!cJSON_IsObject(saved))
        return ff_error_set(err, "%s: no \"config\" object (not an ffprofile results file)", path);
    for (int i = 0; sweep_settings[i].key != NULL; i++) {
        const char *key = sweep_settings[i].key;
        const cJSON *was = cJSON_GetObjectItemCaseSensitive(saved, key);
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(now, key);
        if (was == NULL && is == NULL) continue; /* neither sweep has it */
        if (was != NULL && is != NULL && cJSON_Compare(was, is, 1)) continue;
        char *was_text = was != NULL ? cJSON_PrintUnformatted(was) : NULL;
        char *is_text = is != NULL ? cJSON_PrintUnformatted(is) : NULL;
        ff_error_set(err,
                     "%s: cannot resume: %s (%s) was %.200s in that sweep, now %.200s (resume "
                     "with the sweep's flags, or write a new --out)",
                     path, key, sweep_settings[i].flag, was_text ? was_text : "absent",
                     is_text ? is_text : "absent");
        free(was_text);
        free(is_text);
        return -1;
    }
    return 0;
}

int sweep_check_runs(const cJSON *runs, const char *path, ff_error_t *err) {
    if (!cJSON_IsArray(runs))
        return ff_error_set(err, "%s: no \"runs\" array (not an ffprofile results file)", path);
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(r, "mode");
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(r, "layers");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
        if (!cJSON_IsObject(r) || !cJSON_IsString(mode) || !cJSON_IsString(status) ||
            !cJSON_IsNumber(layers) || !(layers->valuedouble >= 1) ||
            !(layers->valuedouble <= FF_MAX_LAYERS) ||
            layers->valuedouble != floor(layers->valuedouble))
            return ff_error_set(err,
                                "%s: runs[%d] is not a run record (expected an object with a "
                                "string \"mode\", \"layers\" in 1..%d and a string \"status\")",
                                path, i, FF_MAX_LAYERS);
        i++;
    }
    return 0;
}

int sweep_record_done(const cJSON *record) {
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(record, "status");
    return cJSON_IsString(status) && (strcmp(status->valuestring, "ok") == 0 ||
                                      strcmp(status->valuestring, "oom-killed") == 0);
}

cJSON *sweep_find_done(const cJSON *runs, const char *mode, uint32_t depth) {
    cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "mode");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "layers");
        if (cJSON_IsString(m) && strcmp(m->valuestring, mode) == 0 && cJSON_IsNumber(l) &&
            l->valuedouble == depth && sweep_record_done(r))
            return r;
    }
    return NULL;
}

/* Wall seconds and depths summed over the ok records of mode (NULL: all). */
static void rate_of(const cJSON *runs, const char *mode, double *seconds, double *layers) {
    *seconds = *layers = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "mode");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "layers");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "status");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(r, "wall_seconds");
        if (!cJSON_IsString(m) || !cJSON_IsNumber(l) || !cJSON_IsString(s) ||
            !cJSON_IsNumber(w) || strcmp(s->valuestring, "ok") != 0)
            continue;
        if (mode != NULL && strcmp(m->valuestring, mode) != 0) continue;
        /* A record from a hand-edited file may hold anything. */
        if (!isfinite(w->valuedouble) || w->valuedouble < 0 || !(l->valuedouble >= 1) ||
            !isfinite(l->valuedouble))
            continue;
        *seconds += w->valuedouble;
        *layers += l->valuedouble;
    }
}

double sweep_eta(const cJSON *runs, const sweep_cell_t *left, size_t n_left) {
    double all_s, all_l;
    rate_of(runs, NULL, &all_s, &all_l);
    if (n_left == 0) return 0;
    if (all_l <= 0) return -1;
    double eta = 0;
    for (size_t i = 0; i < n_left; i++) {
        double s, l;
        rate_of(runs, left[i].mode, &s, &l);
        double per_layer = l > 0 ? s / l : all_s / all_l;
        eta += per_layer * left[i].depth;
    }
    return eta;
}

void sweep_format_duration(double seconds, char *out, size_t cap) {
    if (!(seconds >= 0) || seconds > 1e9) {
        snprintf(out, cap, "unknown");
        return;
    }
    unsigned long long s = (unsigned long long)(seconds + 0.5);
    if (s < 60) snprintf(out, cap, "%llus", s);
    else if (s < 3600) snprintf(out, cap, "%llum%02llus", s / 60, s % 60);
    else snprintf(out, cap, "%lluh%02llum", s / 3600, s / 60 % 60);
}
