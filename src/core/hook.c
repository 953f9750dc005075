/* hook.c: the test hooks of hook.h (compiled only into test builds). */
#include "ffstream/hook.h"

#ifdef FF_TEST_HOOKS

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ff_hook_kill(const char *phase, uint32_t layer, uint64_t count) {
    static int parsed = 0;
    static char want_phase[16], want_signal[8];
    static unsigned long want_layer;
    static unsigned long long want_count;
    if (parsed == 0) {
        const char *spec = getenv("FFSTREAM_TEST_KILL");
        parsed = -1;
        want_signal[0] = '\0';
        if (spec != NULL && sscanf(spec, "%15[a-z]:%lu:%llu:%7[A-Z]", want_phase, &want_layer,
                                   &want_count, want_signal) >= 3)
            parsed = 1;
    }
    if (parsed == 1 && strcmp(phase, want_phase) == 0 && layer == want_layer &&
        count == want_count) {
        if (strcmp(want_signal, "INT") == 0) {
            parsed = -1; /* once: the run goes on to its next stop check */
            raise(SIGINT);
        } else {
            raise(SIGKILL);
        }
    }
}

static const char *const site_names[FF_HOOK_SITES] = {"write", "fsync"};

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static int fault_parsed = 0, fault_site = -1, fault_errno = 0;
static unsigned long long fault_at = 0, fault_calls[FF_HOOK_SITES];

static void print_counts(void) {
    fprintf(stderr, "fault sites: write=%llu fsync=%llu\n", fault_calls[FF_HOOK_WRITE],
            fault_calls[FF_HOOK_FSYNC]);
}

static void parse_fault(void) {
    fault_parsed = 1;
    const char *spec = getenv("FFSTREAM_TEST_FAULT");
    if (spec == NULL || spec[0] == '\0') return;
    if (strcmp(spec, "count") == 0) {
        atexit(print_counts);
        return;
    }
    char site[16], name[16];
    if (sscanf(spec, "%15[a-z]:%llu:%15[A-Z]", site, &fault_at, name) != 3) return;
    for (int s = 0; s < FF_HOOK_SITES; s++)
        if (strcmp(site, site_names[s]) == 0) fault_site = s;
    fault_errno = strcmp(name, "ENOSPC") == 0 ? ENOSPC : strcmp(name, "EFBIG") == 0 ? EFBIG : EIO;
}

int ff_hook_fault(ff_hook_site_t site) {
    int e = 0;
    pthread_mutex_lock(&fault_lock);
    if (!fault_parsed) parse_fault();
    unsigned long long n = ++fault_calls[site];
    if ((int)site == fault_site && n == fault_at) e = fault_errno;
    pthread_mutex_unlock(&fault_lock);
    return e;
}

int ff_hook_no_direct(void) {
    const char *v = getenv("FFSTREAM_TEST_NO_DIRECT");
    return v != NULL && strcmp(v, "1") == 0;
}

#else

/* A release build: hook.h makes every hook an empty inline function. */
typedef int ff_hook_release_build_t;

#endif
