/* cgroup.h: run a command under a memory limit in a fresh child cgroup, and
 * report how it ended and how much memory it used.
 *
 * cgroup v2: a child group of the caller's own group (or of a delegated
 * subtree); memory.max = limit, memory.swap.max = 0; the peak from
 * memory.peak (Linux >= 5.19; else the highest memory.current sampled); the
 * OOM kill from the oom_kill counter of memory.events.
 * cgroup v1: a child group under the memory controller's hierarchy;
 * memory.limit_in_bytes = limit, memory.memsw.limit_in_bytes = limit where
 * swap accounting exists; the peak from memory.max_usage_in_bytes; the OOM
 * kill from the oom_kill counter of memory.oom_control (Linux >= 4.13),
 * else from memory.failcnt together with a SIGKILL exit.
 * An OOM kill is decided from the counter, not from exit status 137 alone.
 * The group is removed afterwards, also when the command fails or the
 * caller is interrupted. */
#ifndef FFSTREAM_CGROUP_H
#define FFSTREAM_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "ffstream/error.h"

typedef enum {
    FF_CGROUP_NONE = 0,
    FF_CGROUP_V1 = 1,
    FF_CGROUP_V2 = 2,
} ff_cgroup_version_t;

typedef struct {
    ff_cgroup_version_t version;
    char parent[4096]; /* directory under which child groups are created */
} ff_cgroup_env_t;

typedef struct {
    int exited;               /* 1: exit_status is valid */
    int exit_status;          /* when exited */
    int term_signal;          /* signal that ended it, else 0 */
    int oom_killed;           /* the group's OOM-kill counter rose */
    uint64_t oom_kills;       /* value of that counter */
    uint64_t peak_bytes;      /* the group's peak memory */
    uint64_t child_maxrss_bytes; /* the command's own peak RSS (rusage) */
    double child_user_seconds;   /* its CPU time in user mode (rusage) */
    double child_system_seconds; /* and in the kernel: page faults, I/O */
    uint64_t limit_bytes;
    double wall_seconds;
    int forwarded_signal;     /* SIGINT/SIGTERM the caller received and passed on, else 0 */
    ff_cgroup_version_t version;
} ff_cgroup_result_t;

/* Finds where child memory cgroups can be created (v2 first, then v1).
 * @return 0, or -1 with err explaining why not and what to do (run as
 * root, systemd-run --user --scope -p Delegate=yes, or a delegated
 * subtree). */
int ff_cgroup_probe(ff_cgroup_env_t *env, ff_error_t *err);

/* Runs argv (argv[0] looked up in PATH) in a new child group of env with
 * the memory limit, no swap, stdout/stderr inherited unless stderr_fd >= 0
 * (then the command's stderr goes there). Waits for it. Signals SIGINT and
 * SIGTERM received meanwhile are forwarded to the command (one run at a
 * time per process: the handlers are process-wide).
 * @return 0 when the command ran (whatever its status; see res), -1 with
 * err when the group could not be set up or the command not started, or
 * could not be removed afterwards (res is filled then). */
int ff_cgroup_run(const ff_cgroup_env_t *env, char *const argv[], uint64_t limit_bytes,
                  int stderr_fd, ff_cgroup_result_t *res, ff_error_t *err);

/* Parses a size: a whole or decimal number with an optional unit
 * B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T (powers of 1024 for every unit).
 * @return 0 or -1 with err naming the text. */
int ff_parse_size(const char *text, uint64_t *bytes, ff_error_t *err);

const char *ff_cgroup_version_name(ff_cgroup_version_t version);

/* The memory limit of the cgroup this process runs in: the tightest of its
 * own group's and its ancestors' (v2 memory.max, v1 memory.limit_in_bytes).
 * *limit 0 means none; where (may be NULL with where_size 0) receives the
 * file that sets it. @return 0, or -1 with err when the mounts cannot be
 * read. */
int ff_cgroup_own_limit(uint64_t *limit, char *where, size_t where_size, ff_error_t *err);

/* The file that reads the memory in use by this process's own cgroup (v1
 * memory.usage_in_bytes, v2 memory.current), page cache included.
 * @return 1 with path filled, 0 when there is none (path ""), -1 with err. */
int ff_cgroup_own_usage_file(char *path, size_t size, ff_error_t *err);

#endif
