/* ffcgroup: runs a command under a memory limit in a fresh cgroup (see
 * cgroup.h) and reports how it ended: one line on stderr, optionally a JSON
 * file. Exit status: the command's own when it exited, 128 + signal when it
 * was killed, 2 for bad arguments, 1 when no writable cgroup exists, the
 * command cannot start or the JSON cannot be written. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffstream/cgroup.h"
#include "ffstream/fileio.h"
#include "ffstream/report.h"

#define MIB 1048576.0

typedef struct {
    uint64_t limit_bytes; /* 0 until --limit */
    const char *json_path;
    bool quiet;
    char **command; /* NULL-terminated, after "--" */
} options_t;

static void usage(FILE *out) {
    fputs("usage: ffcgroup --limit SIZE [--json FILE] [--quiet] -- CMD [ARGS...]\n"
          "Runs CMD in a new memory cgroup limited to SIZE (no swap) and reports its exit\n"
          "status or signal, whether it was OOM-killed, the group's peak memory, its own\n"
          "peak RSS and the wall time.\n"
          "  --limit SIZE  memory limit: bytes, or with a unit K, M, G, T (powers of 1024;\n"
          "                KiB/MB etc. accepted), e.g. 512M, 1.5G\n"
          "  --json FILE   also write the result as JSON to FILE\n"
          "  --quiet       do not print the summary line\n"
          "  --help        this text\n"
          "Exit status: CMD's status, 128+N when CMD was killed by signal N (137 when\n"
          "OOM-killed), 1 when no writable cgroup exists or CMD cannot start, 2 for bad\n"
          "arguments.\n",
          out);
}

/* @return 0 to run, 1 after --help, -1 with message on bad arguments. */
static int parse_args(int argc, char **argv, options_t *opt, char *message, size_t size) {
    memset(opt, 0, sizeof *opt);
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) break;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return 1;
        if (strcmp(arg, "--quiet") == 0) {
            opt->quiet = true;
        } else if (strcmp(arg, "--limit") == 0 || strcmp(arg, "--json") == 0) {
            if (i + 1 >= argc) {
                snprintf(message, size, "%s: missing value", arg);
                return -1;
            }
            const char *value = argv[++i];
            if (strcmp(arg, "--json") == 0) {
                opt->json_path = value;
                continue;
            }
            ff_error_t err;
            if (ff_parse_size(value, &opt->limit_bytes, &err) != 0) {
                snprintf(message, size, "--limit: %s", err.msg);
                return -1;
            }
        } else if (arg[0] == '-') {
            snprintf(message, size, "unknown flag '%s' (see --help)", arg);
            return -1;
        } else {
            snprintf(message, size,
                     "missing '--' before the command '%s' (ffcgroup --limit SIZE "
                     "-- CMD ARGS...)",
                     arg);
            return -1;
        }
    }
    if (i >= argc) {
        snprintf(message, size,
                 "missing '--' and a command after it (ffcgroup --limit SIZE -- "
                 "CMD ARGS...)");
        return -1;
    }
    if (i + 1 >= argc) {
        snprintf(message, size, "no command after '--'");
        return -1;
    }
    if (opt->limit_bytes == 0) {
        snprintf(message, size, "--limit SIZE is required (e.g. --limit 512M)");
        return -1;
    }
    opt->command = argv + i + 1;
    return 0;
}

static void print_summary(const ff_cgroup_result_t *res) {
    char ending[128];
    if (res->exited)
        snprintf(ending, sizeof ending, "exited with status %d", res->exit_status);
    else
        snprintf(ending, sizeof ending, "killed by signal %d (%s)", res->term_signal,
                 strsignal(res->term_signal));
    char oom[64];
    if (res->oom_killed)
        snprintf(oom, sizeof oom, "OOM-killed (%llu OOM kill%s)",
                 (unsigned long long)res->oom_kills, res->oom_kills == 1 ? "" : "s");
    else
        snprintf(oom, sizeof oom, "not OOM-killed");
    fprintf(stderr,
            "ffcgroup: cgroup %s, limit %.1f MiB: %s, %s; group peak %.1f MiB, child peak RSS "
            "%.1f MiB, wall %.3f s\n",
            ff_cgroup_version_name(res->version), (double)res->limit_bytes / MIB, ending, oom,
            (double)res->peak_bytes / MIB, (double)res->child_maxrss_bytes / MIB,
            res->wall_seconds);
}

/* @return the document as a malloc'd string, or NULL when out of memory. */
static char *result_json(char *const command[], const ff_cgroup_result_t *res) {
    cJSON *root = cJSON_CreateObject();
    cJSON *args = cJSON_AddArrayToObject(root, "command");
    char *text = NULL;
    if (root == NULL || args == NULL) goto done;
    for (size_t i = 0; command[i] != NULL; i++) {
        cJSON *arg = cJSON_CreateString(command[i]);
        if (arg == NULL || !cJSON_AddItemToArray(args, arg)) {
            cJSON_Delete(arg);
            goto done;
        }
    }
    /* One statement per field: the keys appear in this order. */
    bool ok = cJSON_AddStringToObject(root, "cgroup_version",
                                      ff_cgroup_version_name(res->version)) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "limit_bytes", (double)res->limit_bytes) != NULL;
    ok = ok && (res->exited ? cJSON_AddNumberToObject(root, "exit_status", res->exit_status)
                            : cJSON_AddNullToObject(root, "exit_status")) != NULL;
    ok = ok && (res->exited ? cJSON_AddNullToObject(root, "signal")
                            : cJSON_AddNumberToObject(root, "signal", res->term_signal)) != NULL;
    ok = ok && cJSON_AddBoolToObject(root, "oom_killed", res->oom_killed) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "oom_kills", (double)res->oom_kills) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "cgroup_peak_bytes", (double)res->peak_bytes) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "child_peak_rss_bytes",
                                       (double)res->child_maxrss_bytes) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "wall_seconds", res->wall_seconds) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "child_user_seconds", res->child_user_seconds) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "child_system_seconds", res->child_system_seconds) !=
                   NULL;
    if (ok) text = cJSON_Print(root);
done:
    cJSON_Delete(root);
    return text;
}

int main(int argc, char **argv) {
    options_t opt;
    char message[1200];
    const int parsed = parse_args(argc, argv, &opt, message, sizeof message);
    if (parsed == 1) {
        usage(stdout);
        return 0;
    }
    if (parsed != 0) {
        fprintf(stderr, "ffcgroup: %s\n", message);
        return 2;
    }

    ff_error_t err = {{0}};
    /* Checked before the command runs: a bad --json must not cost a run. */
    if (opt.json_path != NULL && ff_fileio_check_writable(opt.json_path, &err) != 0) {
        fprintf(stderr, "ffcgroup: --json: %s\n", err.msg);
        return 2;
    }
    ff_cgroup_env_t env;
    if (ff_cgroup_probe(&env, &err) != 0) {
        fprintf(stderr, "ffcgroup: %s\n", err.msg);
        return 1;
    }
    ff_cgroup_result_t res;
    if (ff_cgroup_run(&env, opt.command, opt.limit_bytes, -1, &res, &err) != 0) {
        fprintf(stderr, "ffcgroup: %s\n", err.msg);
        return 1;
    }
    if (!opt.quiet) print_summary(&res);
    int status = res.exited ? res.exit_status : 128 + res.term_signal;
    if (opt.json_path != NULL) {
        char *text = result_json(opt.command, &res);
        int rc = text != NULL ? ff_fileio_write_atomic(opt.json_path, text, strlen(text), &err)
                              : ff_error_set(&err, "%s: building the JSON: out of memory",
                                             opt.json_path);
        free(text);
        /* The command's own status comes first; a JSON that could not be
         * written after a successful command is a failure of ffcgroup. */
        if (rc != 0) {
            fprintf(stderr, "ffcgroup: %s\n", err.msg);
            if (status == 0) status = 1;
        }
    }
    return status;
}
