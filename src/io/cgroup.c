/* cgroup.c: runs a command in a fresh child memory cgroup (v2 or v1) with a
 * limit, and reads back how it ended: exit status or signal, the group's
 * peak, the OOM-kill counter, the command's own peak RSS and wall time.
 *
 * Where the memory controller lives is read from /proc/self/mountinfo (a
 * cgroup2 mount whose root offers "memory", else a v1 hierarchy mounted with
 * the "memory" option), the caller's own group from /proc/self/cgroup. Child
 * groups are named ffcgroup-<pid>-<n>, probes included, so leftovers can be
 * told apart from other processes' groups.
 *
 * Signal forwarding is process-wide (one handler per signal), so only one
 * ff_cgroup_run may be in progress per process at a time. */
#include "ffstream/cgroup.h"

#include "ffstream/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Room for a group directory plus the longest interface file name. */
#define CGROUP_PATH_MAX FF_PATH_MAX
/* Largest cgroup.procs read whole (a busy group's list of pids). */
#define CGROUP_TEXT_MAX 65536
/* Largest /proc/self/mountinfo read (container hosts have thousands of
 * mounts; the cgroup ones come early). */
#define MOUNTINFO_MAX (1u << 20)
/* memory.current sampling period where memory.peak is missing (v2 < 5.19). */
#define SAMPLE_INTERVAL_NS 20000000L
/* rmdir of a group whose last task just died may see EBUSY while the kernel
 * finishes the exit; it is retried this many times, this far apart (1 s). */
#define REMOVE_ATTEMPTS 100
#define REMOVE_INTERVAL_NS 10000000L
/* Names tried when ffcgroup-<pid>-<n> already exists (a pid reused after a
 * crash left a group behind). */
#define CREATE_ATTEMPTS 100

#define ADVICE                                                                                     \
    "run as root, under `systemd-run --user --scope -p Delegate=yes ...`, or from a delegated "    \
    "cgroup subtree"

_Static_assert(sizeof(pid_t) <= sizeof(sig_atomic_t), "a pid must fit a sig_atomic_t");

/* The command's pid while ff_cgroup_run waits for it, else 0: where the
 * SIGINT/SIGTERM handlers forward to. */
static volatile sig_atomic_t forward_pid = 0;
/* The last signal forwarded during a run, reported to the caller. */
static volatile sig_atomic_t forwarded_signal = 0;

/* Numbers the groups this process creates, probes included. */
static atomic_uint group_counter = 0;

/* ---- files -------------------------------------------------------------- */

/* Joins dir and name. @return 0, or -1 with errno = ENAMETOOLONG. */
static int join_path(char *out, size_t size, const char *dir, const char *name) {
    const int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Reads a whole small file into text, NUL-terminated (truncated at
 * size - 1 bytes). @return 0, or -1 with errno. */
static int read_text(const char *path, char *text, size_t size) {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done + 1 < size) {
        const ssize_t n = read(fd, text + done, size - 1 - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (n == 0) break;
        done += (size_t)n;
    }
    text[done] = '\0';
    close(fd);
    return 0;
}

/* Writes text to a control file in one write(2), as the kernel parses each
 * write on its own. @return 0, or -1 with errno. */
static int write_text(const char *path, const char *text) {
    const int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    const size_t len = strlen(text);
    ssize_t n;
    do n = write(fd, text, len);
    while (n < 0 && errno == EINTR);
    const int saved = errno;
    if (close(fd) != 0 && n >= 0) return -1;
    if (n < 0) {
        errno = saved;
        return -1;
    }
    if ((size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Writes text to the file name in group. @return 0, or -1 with errno. */
static int write_group_file(const char *group, const char *name, const char *text) {
    char path[CGROUP_PATH_MAX];
    if (join_path(path, sizeof path, group, name) != 0) return -1;
    return write_text(path, text);
}

static bool group_file_exists(const char *group, const char *name) {
    char path[CGROUP_PATH_MAX];
    return join_path(path, sizeof path, group, name) == 0 && access(path, F_OK) == 0;
}

/* Reads a file holding one unsigned number ("max" reads as UINT64_MAX).
 * @return 0, or -1 with errno (EINVAL when it is not a number). */
static int read_u64(const char *group, const char *name, uint64_t *value) {
    char path[CGROUP_PATH_MAX], text[64];
    if (join_path(path, sizeof path, group, name) != 0) return -1;
    if (read_text(path, text, sizeof text) != 0) return -1;
    if (strncmp(text, "max", 3) == 0) {
        *value = UINT64_MAX;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    const unsigned long long parsed = strtoull(text, &end, 10);
    if (end == text || errno != 0 || (*end != '\0' && *end != '\n')) {
        errno = EINVAL;
        return -1;
    }
    *value = parsed;
    return 0;
}

/* Finds "key N" in a flat-keyed file (memory.events, memory.oom_control).
 * @return 1 found, 0 absent, -1 with errno when the file cannot be read. */
static int read_keyed_u64(const char *group, const char *name, const char *key, uint64_t *value) {
    char path[CGROUP_PATH_MAX], text[4096];
    if (join_path(path, sizeof path, group, name) != 0) return -1;
    if (read_text(path, text, sizeof text) != 0) return -1;
    const size_t key_len = strlen(key);
    for (const char *line = text; *line != '\0';) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ' ') {
            *value = strtoull(line + key_len + 1, NULL, 10);
            return 1;
        }
        const char *next = strchr(line, '\n');
        if (next == NULL) break;
        line = next + 1;
    }
    return 0;
}

/* Whether word is one of the items of list separated by any of seps. */
static bool has_word(const char *list, const char *word, const char *seps) {
    const size_t word_len = strlen(word);
    for (const char *p = list; *p != '\0';) {
        const size_t len = strcspn(p, seps);
        if (len == word_len && strncmp(p, word, len) == 0) return true;
        p += len;
        if (*p != '\0') p++;
    }
    return false;
}

static void sleep_ns(long ns) {
    const struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
    nanosleep(&ts, NULL); /* an early wake-up only shortens one wait */
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- where the memory controller is -------------------------------------- */

/* A mount of a cgroup hierarchy: its directory and the path inside the
 * hierarchy it shows (mountinfo's root field, not "/" in some containers). */
typedef struct {
    char dir[FF_PATH_MAX];
    char root[FF_PATH_MAX];
    bool found;
} cgroup_mount_t;

static bool is_octal(char c) {
    return c >= '0' && c <= '7';
}

/* Copies a mountinfo field, decoding its octal escapes (\040 for a space). */
static void unescape_field(char *out, size_t size, const char *field, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++) {
        if (field[i] == '\\' && i + 3 < len && is_octal(field[i + 1]) && is_octal(field[i + 2]) &&
            is_octal(field[i + 3])) {
            out[o++] =
                (char)((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
            i += 3;
        } else {
            out[o++] = field[i];
        }
    }
    out[o] = '\0';
}

/* Finds the cgroup2 mount and the v1 mount carrying the memory controller.
 * mountinfo lines: id parent dev root mountpoint options [tags] - fstype
 * source superoptions. The first match of each kind wins. @return 0, or -1
 * with err. */
static int find_mounts(cgroup_mount_t *v2, cgroup_mount_t *v1, ff_error_t *err) {
    char *text = malloc(MOUNTINFO_MAX);
    if (text == NULL) return ff_error_set(err, "reading /proc/self/mountinfo: out of memory");
    int rc = -1;
    if (read_text("/proc/self/mountinfo", text, MOUNTINFO_MAX) != 0) {
        ff_error_set(err, "/proc/self/mountinfo: %s", strerror(errno));
        goto done;
    }
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        const char *fields[5];
        size_t lens[5];
        const char *p = line;
        int count = 0;
        for (; count < 5 && *p != '\0'; count++) {
            fields[count] = p;
            lens[count] = strcspn(p, " ");
            p += lens[count];
            if (*p == ' ') p++;
        }
        const char *dash = strstr(p, " - "); /* after the options and optional tags */
        if (count == 5 && dash != NULL) {
            char fstype[32], super[1024];
            const char *q = dash + 3;
            const size_t fs_len = strcspn(q, " ");
            snprintf(fstype, sizeof fstype, "%.*s", (int)fs_len, q);
            q += fs_len + strspn(q + fs_len, " ");
            q += strcspn(q, " "); /* the source */
            q += strspn(q, " ");
            snprintf(super, sizeof super, "%s", q);
            cgroup_mount_t *target = NULL;
            if (strcmp(fstype, "cgroup2") == 0 && !v2->found) target = v2;
            if (strcmp(fstype, "cgroup") == 0 && !v1->found && has_word(super, "memory", ","))
                target = v1;
            if (target != NULL) {
                unescape_field(target->root, sizeof target->root, fields[3], lens[3]);
                unescape_field(target->dir, sizeof target->dir, fields[4], lens[4]);
                target->found = true;
            }
        }
        line = next;
    }
    rc = 0;
done:
    free(text);
    return rc;
}

/* Reads the caller's group in one hierarchy from /proc/self/cgroup: the
 * v2 line ("0::/path") when controller is NULL, else the v1 line whose
 * controller list holds it ("4:memory:/path"). @return 0, or -1 with err. */
static int own_group_path(const char *controller, char *path, size_t size, ff_error_t *err) {
    char text[8192];
    if (read_text("/proc/self/cgroup", text, sizeof text) != 0)
        return ff_error_set(err, "/proc/self/cgroup: %s", strerror(errno));
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        char *first = strchr(line, ':');
        char *second = first != NULL ? strchr(first + 1, ':') : NULL;
        if (second != NULL) {
            *second = '\0';
            const char *controllers = first + 1;
            const bool match = controller == NULL
                                   ? strncmp(line, "0:", 2) == 0 && controllers[0] == '\0'
                                   : has_word(controllers, controller, ",");
            if (match) {
                if (snprintf(path, size, "%s", second + 1) >= (int)size)
                    return ff_error_set(err, "/proc/self/cgroup: group path too long");
                return 0;
            }
        }
        line = next;
    }
    return ff_error_set(err, "/proc/self/cgroup: no line for the %s hierarchy",
                        controller != NULL ? controller : "cgroup v2");
}

/* The directory of hierarchy path `path` under a mount that shows the
 * hierarchy from mount->root. @return 0, or -1 with err. */
static int group_directory(const cgroup_mount_t *mount, const char *path, char *dir, size_t size,
                           ff_error_t *err) {
    const char *rest = path;
    if (strcmp(mount->root, "/") != 0) {
        const size_t root_len = strlen(mount->root);
        if (strncmp(path, mount->root, root_len) != 0 ||
            (path[root_len] != '\0' && path[root_len] != '/'))
            return ff_error_set(err, "own group %s is outside the part %s mounted at %s", path,
                                mount->root, mount->dir);
        rest = path + root_len;
    }
    if (strcmp(rest, "/") == 0) rest = "";
    if (snprintf(dir, size, "%s%s", mount->dir, rest) >= (int)size)
        return ff_error_set(err, "cgroup directory %s%s: path too long", mount->dir, rest);
    return 0;
}

/* The directory of this process's own memory group and the version that
 * carries the memory controller. @return 1 found, 0 none, -1 with err. */
static int own_memory_group(char *dir, size_t size, ff_cgroup_version_t *version,
                            cgroup_mount_t *mount_out, ff_error_t *err) {
    cgroup_mount_t v2 = {.found = false}, v1 = {.found = false};
    if (find_mounts(&v2, &v1, err) != 0) return -1;
    char path[FF_PATH_MAX];
    ff_error_t ignored;
    /* The memory controller is on v1 when a v1 hierarchy carries it (a
     * hybrid system mounts an empty v2 tree beside it). */
    if (v1.found && own_group_path("memory", path, sizeof path, &ignored) == 0) {
        *mount_out = v1;
        *version = FF_CGROUP_V1;
    } else if (v2.found && own_group_path(NULL, path, sizeof path, &ignored) == 0) {
        *mount_out = v2;
        *version = FF_CGROUP_V2;
    } else {
        return 0;
    }
    if (group_directory(mount_out, path, dir, size, err) != 0) return -1;
    return 1;
}

int ff_cgroup_own_usage_file(char *path, size_t size, ff_error_t *err) {
    if (size > 0) path[0] = '\0';
    char dir[FF_PATH_MAX];
    ff_cgroup_version_t version;
    cgroup_mount_t mount;
    int found = own_memory_group(dir, sizeof dir, &version, &mount, err);
    if (found <= 0) return found;
    const char *file = version == FF_CGROUP_V1 ? "memory.usage_in_bytes" : "memory.current";
    if (join_path(path, size, dir, file) != 0)
        return ff_error_set(err, "cgroup directory %s: path too long", dir);
    return access(path, R_OK) == 0 ? 1 : 0;
}

int ff_cgroup_own_limit(uint64_t *limit, char *where, size_t where_size, ff_error_t *err) {
    *limit = 0;
    if (where_size > 0) where[0] = '\0';
    char dir[FF_PATH_MAX];
    ff_cgroup_version_t version;
    cgroup_mount_t storage, *mount = &storage;
    int found = own_memory_group(dir, sizeof dir, &version, mount, err);
    if (found < 0) return -1;
    if (found == 0) return 0; /* no memory controller: no limit */
    const char *file = version == FF_CGROUP_V1 ? "memory.limit_in_bytes" : "memory.max";
    /* The tightest limit from the own group up to the mount's root. */
    for (;;) {
        char name[FF_PATH_MAX], text[64];
        if (join_path(name, sizeof name, dir, file) == 0 && read_text(name, text, sizeof text) == 0) {
            char *end = NULL;
            unsigned long long v = strtoull(text, &end, 10);
            /* v2 says "max"; v1 says a page-rounded 2^63 when unlimited. */
            if (end != text && v > 0 && v < (1ULL << 62) && (*limit == 0 || v < *limit)) {
                *limit = v;
                if (where_size > 0) snprintf(where, where_size, "%s", name);
            }
        }
        if (strlen(dir) <= strlen(mount->dir)) break;
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir) break;
        *slash = '\0';
    }
    return 0;
}

/* Names the next group of this process under parent. @return 0 or -1
 * with errno = ENAMETOOLONG. */
static int next_group_name(const char *parent, char *group, size_t size) {
    const unsigned n = atomic_fetch_add(&group_counter, 1u);
    const int len = snprintf(group, size, "%s/ffcgroup-%ld-%u", parent, (long)getpid(), n);
    if (len < 0 || (size_t)len >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Creates a new empty group under parent. @return 0, or -1 with err. */
static int make_group(const char *parent, char *group, size_t size, ff_error_t *err) {
    for (int attempt = 0; attempt < CREATE_ATTEMPTS; attempt++) {
        if (next_group_name(parent, group, size) != 0)
            return ff_error_set(err, "cgroup under %s: path too long", parent);
        if (mkdir(group, 0755) == 0) return 0;
        if (errno != EEXIST)
            return ff_error_set(err, "cannot create cgroup %s: %s", group, strerror(errno));
    }
    return ff_error_set(err, "cannot create cgroup under %s: %d names already taken", parent,
                        CREATE_ATTEMPTS);
}

/* Creates and removes a probe group under parent and checks it offers the
 * memory interface file named by limit_file. @return 0, or -1 with err. */
static int probe_group(const char *parent, const char *limit_file, ff_error_t *err) {
    char group[CGROUP_PATH_MAX];
    if (make_group(parent, group, sizeof group, err) != 0) return -1;
    const bool has_limit = group_file_exists(group, limit_file);
    if (rmdir(group) != 0)
        return ff_error_set(err, "cannot remove probe cgroup %s: %s", group, strerror(errno));
    if (!has_limit)
        return ff_error_set(err,
                            "a new group under %s has no %s: the memory controller is not "
                            "enabled there",
                            parent, limit_file);
    return 0;
}

/* Checks that groups made under dir get the v2 memory controller, enabling
 * it in dir's cgroup.subtree_control when needed. A non-root group with
 * processes of its own cannot enable it (the "no internal processes" rule:
 * the kernel answers EBUSY). Moving the command into a child of dir needs
 * write access to dir's cgroup.procs (the common ancestor).
 * @return 0, or -1 with err saying why not. */
static int probe_v2_parent(const char *dir, ff_error_t *err) {
    char path[CGROUP_PATH_MAX], text[1024];
    if (join_path(path, sizeof path, dir, "cgroup.controllers") != 0 ||
        read_text(path, text, sizeof text) != 0)
        return ff_error_set(err, "%s/cgroup.controllers: %s", dir, strerror(errno));
    if (!has_word(text, "memory", " \n"))
        return ff_error_set(err,
                            "the memory controller is not available in %s (its parent does "
                            "not delegate it)",
                            dir);
    if (join_path(path, sizeof path, dir, "cgroup.subtree_control") != 0 ||
        read_text(path, text, sizeof text) != 0)
        return ff_error_set(err, "%s/cgroup.subtree_control: %s", dir, strerror(errno));
    if (!has_word(text, "memory", " \n") && write_text(path, "+memory") != 0) {
        if (errno == EBUSY)
            return ff_error_set(err,
                                "cannot enable the memory controller under %s because it "
                                "holds processes",
                                dir);
        return ff_error_set(err, "cannot enable the memory controller in %s: %s", path,
                            strerror(errno));
    }
    if (join_path(path, sizeof path, dir, "cgroup.procs") != 0 || access(path, W_OK) != 0)
        return ff_error_set(err, "cannot move processes under %s: %s/cgroup.procs: %s", dir, dir,
                            strerror(errno));
    return probe_group(dir, "memory.max", err);
}

/* cgroup v2: the caller's own group, else its parent (the command then runs
 * in a sibling of the caller's group). */
static int probe_v2(const cgroup_mount_t *mount, ff_cgroup_env_t *env, ff_error_t *err) {
    char path[FF_PATH_MAX], own[FF_PATH_MAX], parent[FF_PATH_MAX];
    if (own_group_path(NULL, path, sizeof path, err) != 0) return -1;
    if (group_directory(mount, path, own, sizeof own, err) != 0) return -1;
    ff_error_t own_err;
    if (probe_v2_parent(own, &own_err) == 0) {
        snprintf(env->parent, sizeof env->parent, "%s", own);
        env->version = FF_CGROUP_V2;
        return 0;
    }
    /* The parent is only visible when own is below the mount point. */
    if (strlen(own) <= strlen(mount->dir)) return ff_error_set(err, "%s", own_err.msg);
    ff_error_t parent_err;
    snprintf(parent, sizeof parent, "%s", own);
    *strrchr(parent, '/') = '\0';
    if (probe_v2_parent(parent, &parent_err) == 0) {
        snprintf(env->parent, sizeof env->parent, "%s", parent);
        env->version = FF_CGROUP_V2;
        return 0;
    }
    return ff_error_set(err, "%.450s; nor under its parent: %.450s", own_err.msg, parent_err.msg);
}

/* cgroup v1: children of the caller's own memory group; writability is
 * tested by creating one. */
static int probe_v1(const cgroup_mount_t *mount, ff_cgroup_env_t *env, ff_error_t *err) {
    char path[FF_PATH_MAX], own[FF_PATH_MAX];
    if (own_group_path("memory", path, sizeof path, err) != 0) return -1;
    if (group_directory(mount, path, own, sizeof own, err) != 0) return -1;
    if (probe_group(own, "memory.limit_in_bytes", err) != 0) return -1;
    snprintf(env->parent, sizeof env->parent, "%s", own);
    env->version = FF_CGROUP_V1;
    return 0;
}

int ff_cgroup_probe(ff_cgroup_env_t *env, ff_error_t *err) {
    memset(env, 0, sizeof *env);
    cgroup_mount_t *mounts = calloc(2, sizeof *mounts);
    if (mounts == NULL) return ff_error_set(err, "cgroup probe: out of memory");
    cgroup_mount_t *v2 = &mounts[0], *v1 = &mounts[1];
    ff_error_t v2_err = {{0}}, v1_err = {{0}};
    int rc = -1;
    if (find_mounts(v2, v1, err) != 0) goto done;
    /* A hybrid system mounts cgroup2 without controllers beside v1: the
     * memory controller belongs to whichever offers it. */
    bool v2_has_memory = false;
    if (v2->found) {
        char path[CGROUP_PATH_MAX], text[1024];
        v2_has_memory = join_path(path, sizeof path, v2->dir, "cgroup.controllers") == 0 &&
                        read_text(path, text, sizeof text) == 0 && has_word(text, "memory", " \n");
    }
    if (v2_has_memory && probe_v2(v2, env, &v2_err) == 0) {
        rc = 0;
        goto done;
    }
    if (v1->found && probe_v1(v1, env, &v1_err) == 0) {
        rc = 0;
        goto done;
    }
    memset(env, 0, sizeof *env);
    if (v2_has_memory && v1->found)
        ff_error_set(err,
                     "no writable memory cgroup: cgroup v2: %.300s; cgroup v1: %.300s; " ADVICE,
                     v2_err.msg, v1_err.msg);
    else if (v2_has_memory)
        ff_error_set(err, "no writable memory cgroup: cgroup v2: %.600s; " ADVICE, v2_err.msg);
    else if (v1->found)
        ff_error_set(err, "no writable memory cgroup: cgroup v1: %.600s; " ADVICE, v1_err.msg);
    else
        ff_error_set(err, "no memory cgroup: /proc/self/mountinfo shows neither a cgroup2 mount "
                          "offering the memory controller nor a cgroup v1 memory hierarchy; "
                          "mount one, or " ADVICE);
done:
    free(mounts);
    return rc;
}

/* ---- one run ------------------------------------------------------------ */

/* Sets the limit and turns swap off for the group. Optional files (swap
 * accounting off, older kernels) are skipped; a file that exists but refuses
 * the value is an error. @return 0, or -1 with err. */
static int set_limit(ff_cgroup_version_t version, const char *group, uint64_t limit_bytes,
                     ff_error_t *err) {
    char value[32];
    snprintf(value, sizeof value, "%llu", (unsigned long long)limit_bytes);
    if (version == FF_CGROUP_V2) {
        if (write_group_file(group, "memory.max", value) != 0)
            return ff_error_set(err, "%s/memory.max: cannot set %s bytes: %s", group, value,
                                strerror(errno));
        if (write_group_file(group, "memory.swap.max", "0") != 0 && errno != ENOENT)
            return ff_error_set(err, "%s/memory.swap.max: cannot set 0: %s", group,
                                strerror(errno));
        /* An OOM kill ends the whole command (a shell and what it started),
         * not only its largest process. */
        if (write_group_file(group, "memory.oom.group", "1") != 0 && errno != ENOENT)
            return ff_error_set(err, "%s/memory.oom.group: cannot set 1: %s", group,
                                strerror(errno));
        return 0;
    }
    /* The kernel keeps memsw.limit >= limit, so limit goes first. */
    if (write_group_file(group, "memory.limit_in_bytes", value) != 0)
        return ff_error_set(err, "%s/memory.limit_in_bytes: cannot set %s bytes: %s", group, value,
                            strerror(errno));
    if (group_file_exists(group, "memory.memsw.limit_in_bytes") &&
        write_group_file(group, "memory.memsw.limit_in_bytes", value) != 0)
        return ff_error_set(err, "%s/memory.memsw.limit_in_bytes: cannot set %s bytes: %s", group,
                            value, strerror(errno));
    /* Best effort: without memsw these keep pages out of swap, and a group
     * inheriting oom_kill_disable=1 would hang at the limit instead of dying. */
    (void)write_group_file(group, "memory.swappiness", "0");
    (void)write_group_file(group, "memory.oom_control", "0");
    return 0;
}

/* Kills what is left in a group after the command ended (daemons it
 * started), so the group can be removed. */
static void kill_leftovers(const char *group) {
    if (write_group_file(group, "cgroup.kill", "1") == 0) return; /* v2, Linux >= 5.14 */
    char path[CGROUP_PATH_MAX];
    char *text = malloc(CGROUP_TEXT_MAX);
    if (text == NULL) return;
    if (join_path(path, sizeof path, group, "cgroup.procs") == 0 &&
        read_text(path, text, CGROUP_TEXT_MAX) == 0) {
        for (char *p = text; *p != '\0';) {
            char *end = NULL;
            const long pid = strtol(p, &end, 10);
            if (end == p) break;
            if (pid > 0) kill((pid_t)pid, SIGKILL);
            p = end;
            while (*p == '\n') p++;
        }
    }
    free(text);
}

/* Removes a group, waiting out the EBUSY of a task still exiting and
 * killing leftovers once. @return 0, or -1 with err. */
static int remove_group(const char *group, ff_error_t *err) {
    for (int attempt = 0; attempt < REMOVE_ATTEMPTS; attempt++) {
        if (rmdir(group) == 0 || errno == ENOENT) return 0;
        if (errno != EBUSY)
            return ff_error_set(err, "cannot remove cgroup %s: %s", group, strerror(errno));
        if (attempt == 0) kill_leftovers(group);
        sleep_ns(REMOVE_INTERVAL_NS);
    }
    return ff_error_set(err, "cannot remove cgroup %s: %s (processes still inside after %d ms)",
                        group, strerror(EBUSY),
                        (int)(REMOVE_ATTEMPTS * (REMOVE_INTERVAL_NS / 1000000L)));
}

static void forward_signal(int sig) {
    const int saved = errno;
    const pid_t pid = (pid_t)forward_pid;
    forwarded_signal = sig;
    if (pid > 0) kill(pid, sig);
    errno = saved;
}

/* The forked child: waits for the go byte (sent once it is in the group),
 * redirects stderr, execs. Only async-signal-safe calls: the parent may
 * have threads. Never returns. */
static void run_child(char *const argv[], int stderr_fd, int start_fd, int exec_error_fd,
                      const sigset_t *mask) {
    /* A signal forwarded before exec must act as it will on the command,
     * not run a handler of the caller copied by fork; ignored stays ignored
     * (as a shell passes it on). Both are still blocked here. */
    const int forwarded[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        struct sigaction action;
        if (sigaction(forwarded[i], NULL, &action) == 0 && action.sa_handler != SIG_IGN) {
            memset(&action, 0, sizeof action);
            action.sa_handler = SIG_DFL;
            sigaction(forwarded[i], &action, NULL);
        }
    }
    sigprocmask(SIG_SETMASK, mask, NULL);
    char go = 0;
    ssize_t n;
    do n = read(start_fd, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) _exit(127); /* the parent gave up before the group was ready */
    if (stderr_fd >= 0 && stderr_fd != STDERR_FILENO && dup2(stderr_fd, STDERR_FILENO) < 0) {
        const int error = errno;
        (void)!write(exec_error_fd, &error, sizeof error);
        _exit(127);
    }
    execvp(argv[0], argv);
    const int error = errno;
    (void)!write(exec_error_fd, &error, sizeof error);
    _exit(127);
}

/* Waits until pid has ended, leaving it unreaped (a zombie keeps its pid, so
 * a late forwarded signal cannot reach another process). sample_group, when
 * set, is polled for memory.current every SAMPLE_INTERVAL_NS meanwhile.
 * @return 0, or -1 with errno. */
static int wait_for_end(pid_t pid, const char *sample_group, uint64_t *sampled_peak) {
    for (;;) {
        siginfo_t info;
        memset(&info, 0, sizeof info);
        const int flags = WEXITED | WNOWAIT | (sample_group != NULL ? WNOHANG : 0);
        if (waitid(P_PID, (id_t)pid, &info, flags) != 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (info.si_pid == pid) return 0;
        uint64_t current = 0;
        if (read_u64(sample_group, "memory.current", &current) == 0 && current > *sampled_peak)
            *sampled_peak = current;
        sleep_ns(SAMPLE_INTERVAL_NS);
    }
}

/* Reads the group's peak and OOM-kill counter into res (after the end). */
static int read_outcome(ff_cgroup_version_t version, const char *group, uint64_t sampled_peak,
                        ff_cgroup_result_t *res, ff_error_t *err) {
    if (version == FF_CGROUP_V2) {
        if (read_u64(group, "memory.peak", &res->peak_bytes) != 0) {
            if (errno != ENOENT)
                return ff_error_set(err, "%s/memory.peak: %s", group, strerror(errno));
            res->peak_bytes = sampled_peak;
        }
        uint64_t kills = 0, group_kills = 0;
        if (read_keyed_u64(group, "memory.events", "oom_kill", &kills) < 0)
            return ff_error_set(err, "%s/memory.events: %s", group, strerror(errno));
        (void)read_keyed_u64(group, "memory.events", "oom_group_kill", &group_kills);
        res->oom_kills = kills;
        res->oom_killed = kills > 0 || group_kills > 0;
        return 0;
    }
    if (read_u64(group, "memory.max_usage_in_bytes", &res->peak_bytes) != 0)
        return ff_error_set(err, "%s/memory.max_usage_in_bytes: %s", group, strerror(errno));
    uint64_t kills = 0;
    const int found = read_keyed_u64(group, "memory.oom_control", "oom_kill", &kills);
    if (found < 0) return ff_error_set(err, "%s/memory.oom_control: %s", group, strerror(errno));
    if (found == 1) {
        res->oom_kills = kills;
        res->oom_killed = kills > 0;
        return 0;
    }
    /* Before Linux 4.13 there is no counter: hitting the limit and dying of
     * SIGKILL is the OOM killer's signature; count it as one kill. */
    uint64_t failures = 0;
    if (read_u64(group, "memory.failcnt", &failures) != 0)
        return ff_error_set(err, "%s/memory.failcnt: %s", group, strerror(errno));
    res->oom_killed = failures > 0 && res->term_signal == SIGKILL;
    res->oom_kills = res->oom_killed ? 1 : 0;
    return 0;
}

int ff_cgroup_run(const ff_cgroup_env_t *env, char *const argv[], uint64_t limit_bytes,
                  int stderr_fd, ff_cgroup_result_t *res, ff_error_t *err) {
    memset(res, 0, sizeof *res);
    forwarded_signal = 0;
    res->limit_bytes = limit_bytes;
    res->version = env->version;
    if (env->version != FF_CGROUP_V1 && env->version != FF_CGROUP_V2)
        return ff_error_set(err, "cgroup run: no cgroup found (call ff_cgroup_probe first)");
    if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
        return ff_error_set(err, "cgroup run: no command given");
    if (limit_bytes == 0) return ff_error_set(err, "cgroup run: the memory limit must be > 0");
    if (forward_pid != 0)
        return ff_error_set(err, "cgroup run: another command is already running under a "
                                 "cgroup in this process");

    char group[CGROUP_PATH_MAX];
    bool group_made = false, mask_changed = false, reaped = false;
    int start_pipe[2] = {-1, -1}, exec_error_pipe[2] = {-1, -1};
    pid_t pid = -1;
    sigset_t forwarded_set, old_mask;
    /* The caller's dispositions of SIGINT and SIGTERM while ours are in. */
    const int forwarded_signals[2] = {SIGINT, SIGTERM};
    struct sigaction old_actions[2];
    bool replaced[2] = {false, false};
    int rc = -1;

    if (make_group(env->parent, group, sizeof group, err) != 0) goto done;
    group_made = true;
    if (set_limit(env->version, group, limit_bytes, err) != 0) goto done;
    if (pipe2(start_pipe, O_CLOEXEC) != 0 || pipe2(exec_error_pipe, O_CLOEXEC) != 0) {
        ff_error_set(err, "cgroup run: pipe2: %s", strerror(errno));
        goto done;
    }

    /* SIGINT/SIGTERM stay blocked from before fork until the handlers are
     * in place, so none is lost or kills us before we can forward it. */
    sigemptyset(&forwarded_set);
    sigaddset(&forwarded_set, SIGINT);
    sigaddset(&forwarded_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &forwarded_set, &old_mask);
    mask_changed = true;
    const double start = now_seconds();
    pid = fork();
    if (pid < 0) {
        ff_error_set(err, "cgroup run: fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        close(start_pipe[1]);
        close(exec_error_pipe[0]);
        run_child(argv, stderr_fd, start_pipe[0], exec_error_pipe[1], &old_mask);
    }
    forward_pid = (sig_atomic_t)pid;
    struct sigaction forward;
    memset(&forward, 0, sizeof forward);
    forward.sa_handler = forward_signal;
    forward.sa_mask = forwarded_set;
    forward.sa_flags = SA_RESTART;
    for (int i = 0; i < 2; i++) {
        /* A signal the caller ignores stays ignored, by us and the command
         * (nohup, background jobs of a shell). */
        if (sigaction(forwarded_signals[i], NULL, &old_actions[i]) == 0 &&
            old_actions[i].sa_handler != SIG_IGN)
            replaced[i] = sigaction(forwarded_signals[i], &forward, NULL) == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    mask_changed = false;
    close(start_pipe[0]);
    close(exec_error_pipe[1]);
    start_pipe[0] = exec_error_pipe[1] = -1;

    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%ld", (long)pid);
    if (write_group_file(group, "cgroup.procs", pid_text) != 0 &&
        (env->version != FF_CGROUP_V1 || write_group_file(group, "tasks", pid_text) != 0)) {
        ff_error_set(err, "%s/cgroup.procs: cannot move the command (pid %s) in: %s", group,
                     pid_text, strerror(errno));
        goto done;
    }
    ssize_t n;
    do n = write(start_pipe[1], "g", 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        ff_error_set(err, "cgroup run: starting the command: %s", strerror(errno));
        goto done;
    }
    /* The exec error pipe closes on a successful exec (O_CLOEXEC), or
     * carries the errno of a failed one. */
    int exec_error = 0;
    do n = read(exec_error_pipe[0], &exec_error, sizeof exec_error);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof exec_error) {
        ff_error_set(err, "cannot run %s: %s", argv[0], strerror(exec_error));
        goto done;
    }

    uint64_t sampled_peak = 0;
    const bool sample = env->version == FF_CGROUP_V2 && !group_file_exists(group, "memory.peak");
    if (wait_for_end(pid, sample ? group : NULL, &sampled_peak) != 0) {
        ff_error_set(err, "cgroup run: waitid for pid %ld: %s", (long)pid, strerror(errno));
        goto done;
    }
    forward_pid = 0; /* the zombie still holds the pid: no late signal strays */
    int status = 0;
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    pid_t waited;
    do waited = wait4(pid, &status, 0, &usage);
    while (waited < 0 && errno == EINTR);
    if (waited != pid) {
        ff_error_set(err, "cgroup run: wait4 for pid %ld: %s", (long)pid, strerror(errno));
        goto done;
    }
    reaped = true;
    res->wall_seconds = now_seconds() - start;
    res->forwarded_signal = forwarded_signal;
    res->child_maxrss_bytes = (uint64_t)usage.ru_maxrss * 1024u; /* Linux: KiB */
    res->child_user_seconds = (double)usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6;
    res->child_system_seconds = (double)usage.ru_stime.tv_sec + usage.ru_stime.tv_usec * 1e-6;
    if (WIFEXITED(status)) {
        res->exited = 1;
        res->exit_status = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->term_signal = WTERMSIG(status);
    }
    if (read_outcome(env->version, group, sampled_peak, res, err) != 0) goto done;
    rc = 0;

done:
    if (pid > 0 && !reaped) {
        /* Setup failed after fork: the child may still wait for its go. */
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    forward_pid = 0;
    for (int i = 0; i < 2; i++)
        if (replaced[i]) sigaction(forwarded_signals[i], &old_actions[i], NULL);
    if (mask_changed) pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    for (int i = 0; i < 2; i++) {
        if (start_pipe[i] >= 0) close(start_pipe[i]);
        if (exec_error_pipe[i] >= 0) close(exec_error_pipe[i]);
    }
    if (group_made) {
        ff_error_t remove_err;
        if (remove_group(group, &remove_err) != 0) {
            if (rc == 0) {
                ff_error_set(err, "%s", remove_err.msg);
            } else if (err != NULL) { /* keep the first error, add this one */
                const size_t len = strlen(err->msg);
                snprintf(err->msg + len, sizeof err->msg - len, "; then %s", remove_err.msg);
            }
            rc = -1;
        }
    }
    return rc;
}

/* ---- sizes -------------------------------------------------------------- */

typedef struct {
    const char *name;
    uint64_t bytes;
} size_unit_t;

static const size_unit_t size_units[] = {
    {"", 1},
    {"B", 1},
    {"K", (uint64_t)1 << 10},
    {"KB", (uint64_t)1 << 10},
    {"KiB", (uint64_t)1 << 10},
    {"M", (uint64_t)1 << 20},
    {"MB", (uint64_t)1 << 20},
    {"MiB", (uint64_t)1 << 20},
    {"G", (uint64_t)1 << 30},
    {"GB", (uint64_t)1 << 30},
    {"GiB", (uint64_t)1 << 30},
    {"T", (uint64_t)1 << 40},
    {"TB", (uint64_t)1 << 40},
    {"TiB", (uint64_t)1 << 40},
};

int ff_parse_size(const char *text, uint64_t *bytes, ff_error_t *err) {
    static const char expected[] = "expected a positive size like 512M or 2G";
    if (text == NULL || text[0] == '\0') return ff_error_set(err, "size '': %s", expected);
    if (text[0] == '-') return ff_error_set(err, "size '%s': negative; %s", text, expected);
    if (!isdigit((unsigned char)text[0]))
        return ff_error_set(err, "size '%s': not a number; %s", text, expected);
    const char *p = text;
    uint64_t whole = 0;
    bool overflow = false;
    for (; isdigit((unsigned char)*p); p++) {
        const uint64_t digit = (uint64_t)(*p - '0');
        if (whole > (UINT64_MAX - digit) / 10)
            overflow = true;
        else
            whole = whole * 10 + digit;
    }
    /* A fraction below one unit; a double holds it exactly enough, since
     * it is multiplied by at most 2^40. */
    double fraction = 0.0;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return ff_error_set(err, "size '%s': no digits after the decimal point; %s", text,
                                expected);
        double scale = 0.1;
        for (; isdigit((unsigned char)*p); p++, scale /= 10.0) fraction += (*p - '0') * scale;
    }
    const size_unit_t *unit = NULL;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
        if (strcasecmp(p, size_units[i].name) == 0) unit = &size_units[i];
    if (unit == NULL)
        return ff_error_set(err,
                            "size '%s': unknown unit '%s' (expected B, K, M, G or T, "
                            "powers of 1024)",
                            text, p);
    if (overflow || whole > UINT64_MAX / unit->bytes)
        return ff_error_set(err, "size '%s': too large (more than 2^64 - 1 bytes)", text);
    uint64_t total = whole * unit->bytes;
    const uint64_t part = (uint64_t)(fraction * (double)unit->bytes);
    if (total > UINT64_MAX - part)
        return ff_error_set(err, "size '%s': too large (more than 2^64 - 1 bytes)", text);
    total += part;
    if (total == 0) return ff_error_set(err, "size '%s': %s", text, expected);
    *bytes = total;
    return 0;
}

const char *ff_cgroup_version_name(ff_cgroup_version_t version) {
    switch (version) {
    case FF_CGROUP_V1:
        return "v1";
    case FF_CGROUP_V2:
        return "v2";
    default:
        return "none";
    }
}
