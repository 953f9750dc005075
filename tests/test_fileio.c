/* test_fileio: the file primitives and the error record. The atomic writer
 * replaces a file whole or not at all, never writes through a link planted
 * at the target or at a predictable temporary name, and leaves nothing on
 * failure; regular-file opens refuse FIFOs (without blocking), directories
 * and devices by name; small reads check the size before allocating;
 * exclusive creation refuses links; error messages wrap and truncate
 * safely. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "testutil.h"
#include "ffstream/error.h"
#include "ffstream/fileio.h"
#include "ffstream/hook.h"

static char dir[FF_PATH_MAX];

static int count_entries(const char *d) {
    char cmd[FF_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", d);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p != NULL && fscanf(p, "%d", &n) != 1) n = -1;
    if (p != NULL) pclose(p);
    return n;
}

static void test_atomic_write(void) {
    char sub[FF_PATH_MAX], path[FF_PATH_MAX];
    ff_error_t err;
    check_path(sub, dir, "atomic");
    CHECK(mkdir(sub, 0755) == 0);
    check_path(path, sub, "out.json");
    CHECKF(ff_fileio_write_atomic(path, "first", 5, &err) == 0, "%s", err.msg);
    CHECKF(ff_fileio_write_atomic(path, "second!", 7, &err) == 0, "%s", err.msg);
    size_t size;
    char *text = check_read_file(path, &size);
    CHECK(text != NULL && size == 7 && memcmp(text, "second!", 7) == 0);
    free(text);
    CHECK(count_entries(sub) == 1); /* no temporary file left */

    /* A symlink planted at the target is replaced, its target untouched. */
    char victim[FF_PATH_MAX], link_path[FF_PATH_MAX];
    check_path(victim, dir, "victim");
    check_path(link_path, sub, "planted.json");
    check_write_file(victim, "precious", 8);
    CHECK(symlink(victim, link_path) == 0);
    CHECKF(ff_fileio_write_atomic(link_path, "new", 3, &err) == 0, "%s", err.msg);
    text = check_read_file(victim, &size);
    CHECK(text != NULL && size == 8 && memcmp(text, "precious", 8) == 0);
    free(text);
    struct stat st;
    CHECK(lstat(link_path, &st) == 0 && S_ISREG(st.st_mode));

    /* Links planted at the old predictable temporary names change nothing:
     * the name is random and created exclusively. */
    char old_tmp[FF_PATH_MAX + 32];
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(symlink(victim, old_tmp) == 0);
    CHECKF(ff_fileio_write_atomic(path, "third", 5, &err) == 0, "%s", err.msg);
    text = check_read_file(victim, &size);
    CHECK(text != NULL && size == 8 && memcmp(text, "precious", 8) == 0);
    free(text);
    unlink(old_tmp);

    /* A writer aborted halfway leaves the old file and no temporary. */
    ff_atomic_t a;
    CHECKF(ff_atomic_begin(&a, path, &err) == 0, "%s", err.msg);
    CHECK(ff_fileio_is_temporary(strrchr(a.tmp, '/') + 1));
    CHECK(ff_atomic_write(&a, "partial", 7, &err) == 0);
    ff_atomic_abort(&a);
    text = check_read_file(path, &size);
    CHECK(text != NULL && size == 5 && memcmp(text, "third", 5) == 0);
    free(text);
    CHECK(count_entries(sub) == 2); /* out.json and planted.json */

    /* A directory that does not exist: an error naming the path. */
    char missing[FF_PATH_MAX];
    check_path(missing, dir, "no/such/dir/file");
    CHECK(ff_fileio_write_atomic(missing, "x", 1, &err) == -1);
    CHECK_CONTAINS(err.msg, "no/such/dir/file.tmp.");
    CHECK_CONTAINS(err.msg, "No such file or directory");
    CHECK(!ff_fileio_is_temporary("run.json") && !ff_fileio_is_temporary("a.tmp.123"));
    CHECK(ff_fileio_is_temporary("run.json.tmp.0123456789abcdef"));
}

static void test_open_regular(void) {
    char fifo[FF_PATH_MAX], file[FF_PATH_MAX];
    ff_error_t err;
    check_path(fifo, dir, "fifo");
    check_path(file, dir, "file");
    CHECK(mkfifo(fifo, 0644) == 0);
    /* Would block forever without O_NONBLOCK: the test itself would hang. */
    CHECK(ff_fileio_open_regular(fifo, 0, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "is a FIFO, expected a regular file");
    CHECK(ff_fileio_open_regular(dir, 0, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "is a directory");
    CHECK(ff_fileio_open_regular("/dev/null", 0, NULL, &err) == -1);
    CHECK_CONTAINS(err.msg, "character device");
    check_write_file(file, "0123456789", 10);
    uint64_t size = 0;
    int fd = ff_fileio_open_regular(file, 0, &size, &err);
    CHECK(fd >= 0 && size == 10);
    char buf[4];
    CHECK(ff_fileio_read_exact(fd, buf, 4, 6) == 0 && memcmp(buf, "6789", 4) == 0);
    CHECK(ff_fileio_read_exact(fd, buf, 4, 8) == -1 && errno == 0); /* ends early */
    if (fd >= 0) close(fd);
    char missing[FF_PATH_MAX];
    check_path(missing, dir, "missing");
    CHECK(ff_fileio_open_regular(missing, 0, NULL, &err) == -1 && errno == ENOENT);

    char *text = NULL;
    size_t n = 0;
    CHECK(ff_fileio_read_small(file, 10, &text, &n, &err) == 0 && n == 10 && text[10] == '\0');
    free(text);
    CHECK(ff_fileio_read_small(file, 9, &text, &n, &err) == -1 && text == NULL);
    CHECK_CONTAINS(err.msg, "10 bytes, expected at most 9");
    CHECK(ff_fileio_read_small(fifo, 100, &text, &n, &err) == -1);
    CHECK_CONTAINS(err.msg, "FIFO");
}

static void test_create_new(void) {
    char path[FF_PATH_MAX], victim[FF_PATH_MAX], link_path[FF_PATH_MAX];
    ff_error_t err;
    check_path(path, dir, "new.cache");
    check_path(victim, dir, "victim2");
    check_path(link_path, dir, "link.cache");
    int fd = ff_fileio_create_new(path, O_WRONLY, &err);
    CHECKF(fd >= 0, "%s", err.msg);
    if (fd >= 0) close(fd);
    /* A regular file left by a killed run is replaced. */
    fd = ff_fileio_create_new(path, O_WRONLY, &err);
    CHECKF(fd >= 0, "%s", err.msg);
    if (fd >= 0) close(fd);
    check_write_file(victim, "keep", 4);
    CHECK(symlink(victim, link_path) == 0);
    CHECK(ff_fileio_create_new(link_path, O_WRONLY, &err) == -1);
    CHECK_CONTAINS(err.msg, "symbolic link; refusing to write there");
    size_t size;
    char *text = check_read_file(victim, &size);
    CHECK(text != NULL && size == 4);
    free(text);
}

static void test_errors(void) {
    ff_error_t err;
    CHECK(ff_error_set(&err, "%s: field %s", "file", "x") == -1);
    CHECK(strcmp(err.msg, "file: field x") == 0);
    CHECK(ff_error_wrap(&err, "loading %d", 3) == -1);
    CHECK(strcmp(err.msg, "loading 3: file: field x") == 0);
    CHECK(ff_error_set(NULL, "ignored") == -1 && ff_error_wrap(NULL, "ignored") == -1);
    /* A long prefix truncates the tail, never overflows. */
    char big[3000];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ff_error_set(&err, "tail");
    ff_error_wrap(&err, "%s", big);
    CHECK(strlen(err.msg) == FF_ERROR_MSG_MAX - 1);
    size_t out;
    CHECK(ff_mul_size(SIZE_MAX / 2, 3, &out) == -1 && ff_mul_size(7, 6, &out) == 0 && out == 42);
    char path[FF_PATH_MAX];
    CHECK(ff_path_format(path, &err, "%s/%s", "a", "b") == 0 && strcmp(path, "a/b") == 0);
    CHECK(ff_path_format(path, &err, "%s", big) == 0);
    char huge[FF_PATH_MAX + 10];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(ff_path_format(path, &err, "%s", huge) == -1 && path[0] == '\0');
    CHECK_CONTAINS(err.msg, "longer than 4095 bytes");
}

static void test_checksums(void) {
    CHECK(ff_fileio_crc32("123456789", 9) == 0xcbf43926u); /* the CRC-32 check value */
    CHECK(ff_fileio_xxh3("", 0) == UINT64_C(0x2d06800538d394c2)); /* XXH3-64 of nothing */
    CHECK(ff_fileio_xxh3("a", 1) != ff_fileio_xxh3("b", 1));
}

int main(void) {
    check_tempdir(dir, "fileio");
    test_atomic_write();
    test_open_regular();
    test_create_new();
    test_errors();
    test_checksums();
    char cmd[FF_PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_fileio");
}
