/* hook.h: test hooks, compiled only into test builds (meson option
 * test_hooks, which tools/test.sh turns on). In a release build every hook
 * is an empty inline function: no environment variable can change what a
 * release binary does.
 *
 *   FFSTREAM_TEST_KILL=phase:layer:count[:INT]
 *       SIGKILL (or, with INT, one SIGINT) when a trainer reaches that
 *       point. Phases: "input" (count = chunks of layer 0's caches written),
 *       "train" (count = steps of that layer taken by this process),
 *       "cache", "eval", "neutral" (count = chunks written by that pass),
 *       "saved" (the layer's checkpoint is complete, count 0), "advanced"
 *       (run.json moved past the layer, count 0).
 *   FFSTREAM_TEST_FAULT=site:n:ERRNO
 *       the n-th call (1-based) of that site fails with ERRNO (EIO, ENOSPC,
 *       EFBIG); sites: "write" (every pwrite and write of a file, and every
 *       asynchronous write's completion), "fsync".
 *   FFSTREAM_TEST_FAULT=count
 *       prints "fault sites: write=N fsync=M" to stderr at exit, so a test
 *       can visit every site of a run in turn.
 *   FFSTREAM_TEST_NO_DIRECT=1
 *       every open with O_DIRECT fails with EINVAL, as on a filesystem
 *       without it, so the buffered fallback of the tile I/O is tested on
 *       any kernel (tmpfs takes O_DIRECT since Linux 6.6). */
#ifndef FFSTREAM_HOOK_H
#define FFSTREAM_HOOK_H

#include <stdint.h>

typedef enum {
    FF_HOOK_WRITE = 0,
    FF_HOOK_FSYNC = 1,
    FF_HOOK_SITES
} ff_hook_site_t;

#ifdef FF_TEST_HOOKS

/* Kills (or interrupts) the process when FFSTREAM_TEST_KILL names this point. */
void ff_hook_kill(const char *phase, uint32_t layer, uint64_t count);

/* Counts a call of site. @return the errno to fail it with, or 0. */
int ff_hook_fault(ff_hook_site_t site);

/* Whether opens with O_DIRECT are to fail (FFSTREAM_TEST_NO_DIRECT=1). */
int ff_hook_no_direct(void);

#define FF_HOOKS_ENABLED 1

#else

static inline void ff_hook_kill(const char *phase, uint32_t layer, uint64_t count) {
    (void)phase;
    (void)layer;
    (void)count;
}

static inline int ff_hook_fault(ff_hook_site_t site) {
    (void)site;
    return 0;
}

static inline int ff_hook_no_direct(void) { return 0; }

#define FF_HOOKS_ENABLED 0

#endif

#endif
