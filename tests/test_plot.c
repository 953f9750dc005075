/* test_plot: ffplot on a fixture results file writes well-formed SVG: every
 * element closed in order, attributes quoted, entities valid; one legend
 * entry and one measured series per mode in each of the three panels
 * (memory, time, accuracy); the memory limit line and the OOM marker when
 * the fixture has them; the PyTorch reference's modes dash-dotted in their
 * counterpart's colour with a legend entry each; the commit and date in the
 * subtitle. Bad input fails clearly and never hangs: a missing file, a
 * directory, a FIFO, a file that is not a profile, invalid JSON (NaN), and
 * values of 1e999 or 1e300 give a bounded chart.
 * Usage: test_plot PATH/TO/ffplot FIXTURE.json TORCH_FIXTURE.json */
#include <ctype.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testutil.h"

static char *slurp(const char *path) { return check_read_file(path, NULL); }

/* A small XML well-formedness checker: tags nest, names match, attribute
 * values are quoted, '&' starts a known entity, text has no '<'. */
static int well_formed(const char *s, char *why, size_t cap) {
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (p == NULL) return snprintf(why, cap, "unterminated XML declaration"), 0;
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            if (strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&amp;", 5) &&
                strncmp(p, "&quot;", 6) && strncmp(p, "&apos;", 6))
                return snprintf(why, cap, "bad entity at %.20s", p), 0;
            p++;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p))
                return snprintf(why, cap, "text outside the root: %.20s", p), 0;
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = 0;
        while (isalnum((unsigned char)n[len]) || n[len] == '-' || n[len] == ':') len++;
        if (len == 0 || len >= 32) return snprintf(why, cap, "bad tag at %.20s", p), 0;
        const char *q = n + len;
        int self_closing = 0;
        while (*q && *q != '>') {
            if (*q == '"') {
                q = strchr(q + 1, '"');
                if (q == NULL) return snprintf(why, cap, "unterminated attribute"), 0;
            } else if (*q == '=' && q[1] != '"') {
                return snprintf(why, cap, "unquoted attribute near %.20s", q), 0;
            } else if (*q == '/' && q[1] == '>') {
                self_closing = 1;
            } else if (*q == '<') {
                return snprintf(why, cap, "'<' inside a tag near %.20s", q), 0;
            }
            q++;
        }
        if (*q != '>') return snprintf(why, cap, "unterminated tag"), 0;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], n, len) != 0 || stack[depth - 1][len])
                return snprintf(why, cap, "mismatched </%.*s>", (int)len, n), 0;
            depth--;
        } else if (!self_closing) {
            if (depth == 0) roots++;
            if (depth >= 64) return snprintf(why, cap, "too deep"), 0;
            memcpy(stack[depth], n, len);
            stack[depth++][len] = '\0';
        } else if (depth == 0) {
            roots++;
        }
        p = q + 1;
    }
    if (depth != 0) return snprintf(why, cap, "%d unclosed elements, first <%s>", depth, stack[0]), 0;
    if (roots != 1) return snprintf(why, cap, "%d root elements", roots), 0;
    return 1;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle)) n++;
    return n;
}

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs ffplot on input into DIR/out.svg under a 30 s timeout (a hang is
 * exit 124), its stderr in DIR/err. @return the exit status. */
static int plot(const char *ffplot, const char *input, const char *dir) {
    char cmd[3 * FF_PATH_MAX];
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' '%s' -o '%s/out.svg' 2>'%s/err'", ffplot, input,
             dir, dir);
    return run(cmd);
}

/* ffplot's stderr of the last plot(). */
static char *plot_err(const char *dir) {
    char path[FF_PATH_MAX];
    check_path(path, dir, "err");
    char *e = slurp(path);
    return e != NULL ? e : strdup("");
}

/* The PyTorch reference beside ffstream: dash-dotted, in ff-mem's and bp's
 * colours, square markers, one legend entry each; commit and date shown. */
static void check_torch(const char *ffplot, const char *fixture, const char *dir) {
    CHECK(plot(ffplot, fixture, dir) == 0);
    char path[FF_PATH_MAX];
    check_path(path, dir, "out.svg");
    char *text = slurp(path);
    CHECK(text != NULL);
    if (text == NULL) return;
    char why[256] = "";
    CHECKF(well_formed(text, why, sizeof why), "%s", why);
    CHECK(count(text, "class=\"legend\"") == 4);
    CHECK_CONTAINS(text, ">torch-ff<");
    CHECK_CONTAINS(text, ">torch-bp<");
    /* Three panels each for torch-ff and torch-bp, and their two legend
     * entries: dash-dotted in the colour of ff-mem and of bp. */
    CHECK(count(text, "stroke=\"#d95f02\" stroke-width=\"2.2\" stroke-dasharray=\"9,3,2,3\"") == 4);
    CHECK(count(text, "stroke=\"#7570b3\" stroke-width=\"2.2\" stroke-dasharray=\"9,3,2,3\"") == 4);
    /* ff-mem and bp themselves stay solid, with round markers. */
    CHECK(count(text, "stroke=\"#d95f02\" stroke-width=\"2.2\" points=") == 3);
    CHECK(count(text, "<rect x=") > 8);
    CHECK_CONTAINS(text, "commit 0123456789ab, 2026-01-02");
    free(text);
}

/* Inputs that once hung, looped or allocated without bound. */
static void check_bad_input(const char *ffplot, const char *dir) {
    char path[FF_PATH_MAX], *err;
    /* A missing file. */
    check_path(path, dir, "none.json");
    CHECK(plot(ffplot, path, dir) == 1);
    err = plot_err(dir);
    CHECK_CONTAINS(err, "none.json: cannot open");
    free(err);
    /* A directory: refused before any allocation from its "size". */
    CHECK(plot(ffplot, dir, dir) == 1);
    err = plot_err(dir);
    CHECK_CONTAINS(err, "is a directory, expected a regular file");
    free(err);
    /* A FIFO with no writer: refused without blocking on the open. */
    check_path(path, dir, "fifo");
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(plot(ffplot, path, dir) == 1);
    err = plot_err(dir);
    CHECK_CONTAINS(err, "is a FIFO, expected a regular file");
    free(err);
    /* Valid JSON that is not a profile, and NaN, which JSON does not have. */
    check_path(path, dir, "bad.json");
    check_write_file(path, "{\"x\":1}\n", 8);
    CHECK(plot(ffplot, path, dir) == 1);
    err = plot_err(dir);
    CHECK_CONTAINS(err, "neither an ffprofile results file (a \"runs\" array) nor an fftrain "
                        "result");
    free(err);
    static const char nan_doc[] =
        "{\"runs\":[{\"mode\":\"bp\",\"layers\":2,\"status\":\"ok\",\"peak_rss_bytes\":NaN}]}";
    check_write_file(path, nan_doc, sizeof nan_doc - 1);
    CHECK(plot(ffplot, path, dir) == 1);
    err = plot_err(dir);
    CHECK_CONTAINS(err, "not valid JSON");
    free(err);
    /* Infinity (1e999), -infinity and absurd finite values in every field
     * the chart reads, beside one sound run: the sound run is drawn, the
     * rest skipped, and the chart stays small. */
    static const char inf_doc[] =
        "{\"config\":{\"hidden\":1e999,\"batch\":-1e999,\"mem_limit_bytes\":1e999},"
        "\"machine\":{\"cores\":1e999,\"memory_bytes\":1e300},\"train_samples\":1e999,"
        "\"model\":[{\"mode\":\"bp\",\"layers\":2,\"bytes\":1e999},"
        "{\"mode\":\"bp\",\"layers\":1e999,\"bytes\":1000}],"
        "\"runs\":[{\"mode\":\"bp\",\"layers\":2,\"status\":\"ok\",\"peak_rss_bytes\":1e999,"
        "\"wall_seconds\":1e999,\"test_accuracy\":1e999},"
        "{\"mode\":\"bp\",\"layers\":3,\"status\":\"ok\",\"peak_rss_bytes\":1e300,"
        "\"wall_seconds\":-1e999,\"test_accuracy\":-1e300},"
        "{\"mode\":\"bp\",\"layers\":1e999,\"status\":\"ok\",\"peak_rss_bytes\":1,"
        "\"wall_seconds\":1,\"test_accuracy\":0.5},"
        "{\"mode\":\"ff-mem\",\"layers\":4,\"status\":\"ok\",\"peak_rss_bytes\":104857600,"
        "\"wall_seconds\":2.5,\"test_accuracy\":0.5}]}";
    check_path(path, dir, "inf.json");
    check_write_file(path, inf_doc, sizeof inf_doc - 1);
    CHECK(plot(ffplot, path, dir) == 0);
    check_path(path, dir, "out.svg");
    size_t size = 0;
    char *svg = check_read_file(path, &size);
    CHECK(svg != NULL && size < 64 * 1024);
    if (svg != NULL) {
        char why[256] = "";
        CHECKF(well_formed(svg, why, sizeof why), "%s", why);
        CHECK(strstr(svg, "inf") == NULL && strstr(svg, "nan") == NULL);
        CHECK_CONTAINS(svg, ">ff-mem<");
        printf("svg of non-finite values: %zu bytes, well-formed\n", size);
    }
    free(svg);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_plot FFPLOT FIXTURE TORCH_FIXTURE\n");
        return 2;
    }
    char dir[FF_PATH_MAX];
    check_tempdir(dir, "plot");
    char cmd[8192], svg[512];
    snprintf(svg, sizeof svg, "%s/chart.svg", dir);
    snprintf(cmd, sizeof cmd, "'%s' '%s' -o '%s'", argv[1], argv[2], svg);
    CHECK(run(cmd) == 0);
    char *text = slurp(svg);
    CHECK(text != NULL);
    if (text != NULL) {
        char why[256] = "";
        CHECKF(well_formed(text, why, sizeof why), "%s", why);
        CHECK(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
        /* The fixture: three modes, a memory limit, one OOM-killed run. */
        CHECK(count(text, "class=\"legend\"") == 3);
        CHECK_CONTAINS(text, ">ff-stream<");
        CHECK_CONTAINS(text, ">ff-mem<");
        CHECK_CONTAINS(text, ">bp<");
        CHECK_CONTAINS(text, "memory limit");
        CHECK_CONTAINS(text, ">OOM<");
        CHECK_CONTAINS(text, "hidden layers");
        CHECK_CONTAINS(text, "MiB");
        CHECK_CONTAINS(text, "seconds");
        CHECK_CONTAINS(text, ">Test accuracy<");
        CHECK_CONTAINS(text, ">chance<");
        /* Per mode: a measured line in each of the three panels and a
         * model line (every mode of the fixture has runs that finished). */
        CHECK(count(text, "<polyline") == 12);
        /* No commit or date in this older fixture: said so. */
        CHECK_CONTAINS(text, "commit unknown, date unknown");
        printf("svg: %zu bytes, well-formed\n", strlen(text));
        free(text);
    }
    check_torch(argv[1], argv[3], dir);
    check_bad_input(argv[1], dir);
    snprintf(cmd, sizeof cmd, "'%s' 2>/dev/null", argv[1]);
    CHECK(run(cmd) == 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_plot");
}
