/* sysinfo.c: the build's commit and type, the kernel, the load average and
 * the date, for the metadata of every result file. */
#include "ffstream/sysinfo.h"

#include <math.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>

#include "ff_commit.h"

#ifndef FF_BUILD_TYPE
#define FF_BUILD_TYPE "unknown"
#endif

const char *ff_sysinfo_commit(void) {
    /* vcs_tag leaves its fallback when git is missing or the tree is not a
     * repository; an empty answer is treated the same way. */
    return FF_COMMIT[0] != '\0' ? FF_COMMIT : "unknown";
}

const char *ff_sysinfo_build_type(void) { return FF_BUILD_TYPE; }

void ff_sysinfo_kernel(char *out, size_t cap) {
    struct utsname u;
    if (uname(&u) == 0) snprintf(out, cap, "%s %s %s", u.sysname, u.release, u.machine);
    else snprintf(out, cap, "unknown");
}

double ff_sysinfo_loadavg_1m(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double load = NAN;
    if (f == NULL) return NAN;
    if (fscanf(f, "%lf", &load) != 1 || !isfinite(load) || load < 0) load = NAN;
    fclose(f);
    return load;
}

uint64_t ff_sysinfo_ram_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (f == NULL) return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) break;
    fclose(f);
    return (uint64_t)kib * 1024u;
}

void ff_sysinfo_utc_now(char *out, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    if (cap == 0) return;
    if (gmtime_r(&now, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "unknown");
}
