/* test_cgroup: sizes parsed and rejected; then, where a writable memory
 * cgroup exists (else skip 77, or fail under FFSTREAM_REQUIRE_CGROUP=1):
 * a command that fits runs inside its own group and keeps its exit status,
 * an allocator past its limit is OOM-killed and the counter says so, one
 * under its limit reports its peak, stderr goes where asked, SIGTERM sent to
 * us reaches the command and our handler comes back, a missing command is
 * an error naming it, and no group of ours is left behind.
 * Run with "--allocate MIB" this binary is the allocator itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "ffstream/cgroup.h"

#define MIB ((uint64_t)1 << 20)
#define PAGE_BYTES 4096u

static ff_cgroup_env_t env;
static char self_path[PATH_MAX]; /* this binary, for the allocator */

/* Mallocs and touches mib MiB page by page, reads it back so the compiler
 * cannot drop the stores, and exits 0. */
static int allocate_mib(const char *text) {
    const long mib = strtol(text, NULL, 10);
    if (mib <= 0) return 2;
    const size_t bytes = (size_t)mib * MIB;
    unsigned char *block = malloc(bytes);
    if (block == NULL) return 3;
    for (size_t offset = 0; offset < bytes; offset += PAGE_BYTES)
        memset(block + offset, (int)(offset / PAGE_BYTES) | 1, PAGE_BYTES);
    const volatile unsigned char *check = block;
    size_t zero_pages = 0;
    for (size_t offset = 0; offset < bytes; offset += PAGE_BYTES)
        if (check[offset] == 0) zero_pages++;
    free(block);
    return zero_pages == 0 ? 0 : 4;
}

/* ---- sizes -------------------------------------------------------------- */

static void expect_size(const char *text, uint64_t want) {
    ff_error_t err = {{0}};
    uint64_t got = 0;
    const int rc = ff_parse_size(text, &got, &err);
    CHECKF(rc == 0 && got == want, "'%s': rc %d, %llu bytes, want %llu (%s)", text, rc,
           (unsigned long long)got, (unsigned long long)want, err.msg);
}

static void expect_bad_size(const char *text, const char *fragment) {
    ff_error_t err = {{0}};
    uint64_t got = 12345;
    const int rc = ff_parse_size(text, &got, &err);
    CHECKF(rc == -1, "'%s' accepted as %llu bytes", text, (unsigned long long)got);
    CHECK(got == 12345); /* untouched on failure */
    CHECK_CONTAINS(err.msg, fragment);
    CHECK_CONTAINS(err.msg, text);
}

static void test_parse_size(void) {
    expect_size("100000", 100000);
    expect_size("1", 1);
    expect_size("512M", 512 * MIB);
    expect_size("512m", 512 * MIB);
    expect_size("2G", 2048 * MIB);
    expect_size("1.5GiB", 1536 * MIB);
    expect_size("1.5gib", 1536 * MIB);
    expect_size("64k", 64 * 1024);
    expect_size("64KB", 64 * 1024);
    expect_size("64KiB", 64 * 1024);
    expect_size("3T", (uint64_t)3 << 40);
    expect_size("7B", 7);
    expect_size("0.5K", 512);
    expect_size("0.1K", 102); /* fractional bytes round down */
    expect_size("16777215T", UINT64_MAX - ((uint64_t)1 << 40) + 1);
    expect_size("18446744073709551615", UINT64_MAX);

    expect_bad_size("", "expected a positive size like 512M or 2G");
    expect_bad_size("0", "expected a positive size like 512M or 2G");
    expect_bad_size("0M", "expected a positive size like 512M or 2G");
    expect_bad_size("0.4", "expected a positive size like 512M or 2G");
    expect_bad_size("-1G", "negative");
    expect_bad_size("12Q", "unknown unit 'Q'");
    expect_bad_size("12 M", "unknown unit ' M'");
    expect_bad_size("M", "not a number");
    expect_bad_size("abc", "not a number");
    expect_bad_size("+5M", "not a number");
    expect_bad_size("1.G", "no digits after the decimal point");
    expect_bad_size("1.2.3M", "unknown unit '.3M'");
    expect_bad_size("12MM", "unknown unit 'MM'");
    expect_bad_size("18446744073709551616", "too large");
    expect_bad_size("16777216T", "too large");
    expect_bad_size("99999999999999999999999G", "too large");
    expect_bad_size("18446744073709551615.9K", "too large");
}

/* ---- runs --------------------------------------------------------------- */

/* Counts the groups this process has under env.parent (ffcgroup-<pid>-*). */
static int count_own_groups(void) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ffcgroup-%ld-", (long)getpid());
    DIR *dir = opendir(env.parent);
    CHECK(dir != NULL);
    if (dir == NULL) return -1;
    int count = 0;
    const struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strncmp(entry->d_name, prefix, strlen(prefix)) == 0) count++;
    closedir(dir);
    return count;
}

/* A command that fits exits 3 only when it finds itself in one of our
 * groups; afterwards the group is gone. */
static void test_fits(void) {
    char script[128];
    snprintf(script, sizeof script, "grep -q '/ffcgroup-%ld-[0-9]*$' /proc/self/cgroup && exit 3",
             (long)getpid());
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    const int rc = ff_cgroup_run(&env, argv, 64 * MIB, -1, &res, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(res.exited == 1 && res.exit_status == 3, "exited %d status %d signal %d", res.exited,
           res.exit_status, res.term_signal);
    CHECK(res.term_signal == 0);
    CHECK(res.oom_killed == 0 && res.oom_kills == 0);
    CHECK(res.limit_bytes == 64 * MIB);
    CHECK(res.version == env.version);
    CHECK(res.peak_bytes > 0 && res.peak_bytes <= 64 * MIB);
    CHECK(res.child_maxrss_bytes > 0);
    CHECK(res.wall_seconds > 0 && res.wall_seconds < 30);
    CHECK(count_own_groups() == 0);
    printf("fits: status %d, group peak %.2f MiB, child RSS %.2f MiB, %.3f s\n", res.exit_status,
           (double)res.peak_bytes / MIB, (double)res.child_maxrss_bytes / MIB, res.wall_seconds);
}

static void run_allocator(const char *mib, uint64_t limit_bytes, ff_cgroup_result_t *res, int *rc,
                          ff_error_t *err) {
    char *argv[] = {self_path, "--allocate", (char *)mib, NULL};
    *rc = ff_cgroup_run(&env, argv, limit_bytes, -1, res, err);
}

/* 200 MiB touched under 48 MiB: the OOM killer must end it. */
static void test_oom_kill(void) {
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    int rc = -1;
    run_allocator("200", 48 * MIB, &res, &rc, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(res.exited == 0 && res.term_signal == SIGKILL, "exited %d status %d signal %d",
           res.exited, res.exit_status, res.term_signal);
    CHECK(res.oom_killed == 1);
    CHECK(res.oom_kills >= 1);
    CHECKF(res.peak_bytes >= 40 * MIB && res.peak_bytes <= 48 * MIB + MIB, "peak %llu bytes",
           (unsigned long long)res.peak_bytes);
    /* RSS also counts shared library pages charged to other groups. */
    CHECKF(res.child_maxrss_bytes <= 64 * MIB, "child RSS %llu bytes",
           (unsigned long long)res.child_maxrss_bytes);
    CHECK(count_own_groups() == 0);
    printf("oom: signal %d, %llu OOM kill(s), group peak %.2f MiB, child RSS %.2f MiB, %.3f s\n",
           res.term_signal, (unsigned long long)res.oom_kills, (double)res.peak_bytes / MIB,
           (double)res.child_maxrss_bytes / MIB, res.wall_seconds);
}

/* 100 MiB touched under 256 MiB: it finishes and the peaks show the 100. */
static void test_under_limit(void) {
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    int rc = -1;
    run_allocator("100", 256 * MIB, &res, &rc, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(res.exited == 1 && res.exit_status == 0, "exited %d status %d signal %d", res.exited,
           res.exit_status, res.term_signal);
    CHECK(res.oom_killed == 0 && res.oom_kills == 0);
    CHECKF(res.peak_bytes >= 100 * MIB && res.peak_bytes <= 256 * MIB, "peak %llu bytes",
           (unsigned long long)res.peak_bytes);
    CHECKF(res.child_maxrss_bytes >= 100 * MIB, "child RSS %llu bytes",
           (unsigned long long)res.child_maxrss_bytes);
    CHECK(count_own_groups() == 0);
    printf("under limit: status %d, group peak %.2f MiB, child RSS %.2f MiB, %.3f s\n",
           res.exit_status, (double)res.peak_bytes / MIB, (double)res.child_maxrss_bytes / MIB,
           res.wall_seconds);
}

/* stderr_fd receives the command's stderr. */
static void test_stderr_redirect(void) {
    char path[] = "/tmp/ffstream-test-cgroup-XXXXXX";
    const int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    char *argv[] = {"/bin/sh", "-c", "echo to-stderr >&2; echo to-stdout >/dev/null", NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    const int rc = ff_cgroup_run(&env, argv, 32 * MIB, fd, &res, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECK(res.exited == 1 && res.exit_status == 0);
    char text[64] = {0};
    CHECK(pread(fd, text, sizeof text - 1, 0) == 10);
    CHECK(strcmp(text, "to-stderr\n") == 0);
    close(fd);
    unlink(path);
}

static volatile sig_atomic_t our_handler_calls = 0;

static void our_handler(int sig) {
    (void)sig;
    our_handler_calls++;
}

/* Whether one of our groups holds a process: the command is in place, and
 * ff_cgroup_run's forwarding handlers are installed by then. */
static int own_group_has_process(void) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ffcgroup-%ld-", (long)getpid());
    DIR *dir = opendir(env.parent);
    if (dir == NULL) return 0;
    int found = 0;
    const struct dirent *entry;
    while (!found && (entry = readdir(dir)) != NULL) {
        if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0) continue;
        char path[8192], text[32] = {0};
        snprintf(path, sizeof path, "%s/%s/cgroup.procs", env.parent, entry->d_name);
        const int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        found = read(fd, text, sizeof text - 1) > 0;
        close(fd);
    }
    closedir(dir);
    return found;
}

/* Sends SIGTERM to this process once the command sits in its group. */
static void *send_sigterm_later(void *arg) {
    (void)arg;
    const struct timespec wait = {.tv_sec = 0, .tv_nsec = 10000000L};
    for (int i = 0; i < 1000 && !own_group_has_process(); i++) nanosleep(&wait, NULL);
    kill(getpid(), SIGTERM);
    return NULL;
}

/* SIGTERM sent to this process while it waits ends the command, not us;
 * our own handler is back afterwards. */
static void test_forward_signal(void) {
    struct sigaction mine, old;
    memset(&mine, 0, sizeof mine);
    mine.sa_handler = our_handler;
    sigemptyset(&mine.sa_mask);
    CHECK(sigaction(SIGTERM, &mine, &old) == 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, send_sigterm_later, NULL) == 0);
    char *argv[] = {"sleep", "30", NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    const int rc = ff_cgroup_run(&env, argv, 32 * MIB, -1, &res, &err);
    pthread_join(thread, NULL);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(res.exited == 0 && res.term_signal == SIGTERM, "exited %d status %d signal %d",
           res.exited, res.exit_status, res.term_signal);
    CHECK(res.oom_killed == 0);
    CHECKF(res.wall_seconds < 10, "%.3f s", res.wall_seconds);
    CHECK(our_handler_calls == 0);
    raise(SIGTERM);
    CHECK(our_handler_calls == 1);
    sigaction(SIGTERM, &old, NULL);
    CHECK(count_own_groups() == 0);
}

/* A signal the caller ignores stays ignored, in the command too, and is
 * still ignored afterwards. */
static void test_ignored_signal(void) {
    struct sigaction ignore, old, after;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    CHECK(sigaction(SIGINT, &ignore, &old) == 0);
    char *argv[] = {"/bin/sh", "-c", "kill -INT $$; exit 7", NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    const int rc = ff_cgroup_run(&env, argv, 32 * MIB, -1, &res, &err);
    CHECKF(rc == 0, "%s", err.msg);
    CHECKF(res.exited == 1 && res.exit_status == 7, "exited %d status %d signal %d", res.exited,
           res.exit_status, res.term_signal);
    CHECK(sigaction(SIGINT, &old, &after) == 0);
    CHECK(after.sa_handler == SIG_IGN);
}

/* A command that cannot start is an error naming it; nothing is left. */
static void test_missing_command(void) {
    char *argv[] = {"ffstream-no-such-command", "x", NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    CHECK(ff_cgroup_run(&env, argv, 32 * MIB, -1, &res, &err) == -1);
    CHECK_CONTAINS(err.msg, "cannot run ffstream-no-such-command");
    CHECK_CONTAINS(err.msg, "No such file or directory");
    CHECK(count_own_groups() == 0);
}

static void test_bad_arguments(void) {
    char *argv[] = {"true", NULL};
    char *empty[] = {NULL};
    ff_cgroup_result_t res;
    ff_error_t err = {{0}};
    CHECK(ff_cgroup_run(&env, argv, 0, -1, &res, &err) == -1);
    CHECK_CONTAINS(err.msg, "limit");
    CHECK(ff_cgroup_run(&env, empty, MIB, -1, &res, &err) == -1);
    CHECK_CONTAINS(err.msg, "no command");
    const ff_cgroup_env_t none = {.version = FF_CGROUP_NONE};
    CHECK(ff_cgroup_run(&none, argv, MIB, -1, &res, &err) == -1);
    CHECK_CONTAINS(err.msg, "ff_cgroup_probe");
    CHECK(count_own_groups() == 0);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--allocate") == 0) return allocate_mib(argv[2]);

    test_parse_size();
    CHECK(strcmp(ff_cgroup_version_name(FF_CGROUP_V1), "v1") == 0);
    CHECK(strcmp(ff_cgroup_version_name(FF_CGROUP_V2), "v2") == 0);

    ff_error_t err = {{0}};
    if (ff_cgroup_probe(&env, &err) != 0) {
        const char *require = getenv("FFSTREAM_REQUIRE_CGROUP");
        fprintf(stderr, "test_cgroup: cannot run commands under a cgroup here: %s\n", err.msg);
        CHECK(strlen(err.msg) > 0);
        CHECK(env.version == FF_CGROUP_NONE);
        if (require != NULL && strcmp(require, "1") == 0) {
            fprintf(stderr, "test_cgroup: FFSTREAM_REQUIRE_CGROUP=1, so this is a failure\n");
            check_failures++;
        }
        if (check_failures > 0) return check_exit("test_cgroup");
        printf("test_cgroup: sizes passed; cgroup runs skipped\n");
        return 77;
    }
    printf("cgroup %s under %s\n", ff_cgroup_version_name(env.version), env.parent);
    CHECK(env.version == FF_CGROUP_V1 || env.version == FF_CGROUP_V2);
    CHECK(count_own_groups() == 0); /* the probe cleaned up after itself */

    const ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    CHECK(len > 0);
    if (len <= 0) return check_exit("test_cgroup");
    self_path[len] = '\0';

    test_fits();
    test_oom_kill();
    test_under_limit();
    test_stderr_redirect();
    test_forward_signal();
    test_ignored_signal();
    test_missing_command();
    test_bad_arguments();
    CHECK(count_own_groups() == 0);
    return check_exit("test_cgroup");
}
