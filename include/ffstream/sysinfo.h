/* sysinfo.h: what a report says about the build and the machine it ran on,
 * so a reader can tell which code produced a figure and whether the machine
 * was busy: the source commit, the build type, the kernel, the load average
 * and the date. */
#ifndef FFSTREAM_SYSINFO_H
#define FFSTREAM_SYSINFO_H

#include <stddef.h>
#include <stdint.h>

/* The git commit the build came from (40 hex digits, "-dirty" appended when
 * tracked files had changes), or "unknown" when built outside git. */
const char *ff_sysinfo_commit(void);

/* meson's build type, with the sanitizers when any ("release",
 * "debugoptimized+address,undefined"). */
const char *ff_sysinfo_build_type(void);

/* "Linux 6.1.0-18-amd64 x86_64" into out, or "unknown". */
void ff_sysinfo_kernel(char *out, size_t cap);

/* The 1-minute load average from /proc/loadavg, or NAN when unreadable. */
double ff_sysinfo_loadavg_1m(void);

/* The machine's physical memory (MemTotal in /proc/meminfo), or 0. */
uint64_t ff_sysinfo_ram_bytes(void);

/* The current UTC time as "2025-01-31T12:00:00Z" into out (cap >= 21). */
void ff_sysinfo_utc_now(char *out, size_t cap);

#endif
