/* test_plot: ffplot on a fixture results file writes well-formed SVG: every
 * element closed in order, attributes quoted, entities valid; one legend
 * entry and one measured series per mode; the memory limit line and the
 * OOM marker when the fixture has them; a clear error on bad input.
 * Usage: test_plot PATH/TO/ffplot FIXTURE.json */
#include <ctype.h>
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

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_plot FFPLOT FIXTURE\n");
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
        /* Per mode: a measured line in each panel and a model line. */
        CHECK(count(text, "<polyline") == 9);
        printf("svg: %zu bytes, well-formed\n", strlen(text));
        free(text);
    }
    /* Bad input: a missing file and a file that is not a profile. */
    snprintf(cmd, sizeof cmd, "'%s' '%s/none.json' -o '%s/x.svg' 2>'%s/err'", argv[1], dir, dir,
             dir);
    CHECK(run(cmd) == 1);
    snprintf(cmd, sizeof cmd, "%s/err", dir);
    char *err = slurp(cmd);
    CHECK(err != NULL && strstr(err, "none.json: cannot read") != NULL);
    free(err);
    snprintf(cmd, sizeof cmd, "echo '{\"x\":1}' > '%s/bad.json' && '%s' '%s/bad.json' -o '%s/y.svg' 2>/dev/null",
             dir, argv[1], dir, dir);
    CHECK(run(cmd) == 1);
    snprintf(cmd, sizeof cmd, "'%s' 2>/dev/null", argv[1]);
    CHECK(run(cmd) == 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_plot");
}
