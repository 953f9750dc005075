/* test_run: the run directory and run.json. A state round-trips exactly
 * (the seed as a string beyond 2^53 included); an edited field is caught by
 * the checksum whatever the formatting; another format version is refused
 * naming both versions; out-of-range counts, a bad hash spelling, an
 * unknown field and a FIFO in place of run.json are refused by name; a
 * resume with another flag, mode or data is refused naming it; temporary
 * files of a killed run are removed, other files kept. RUN/layers.json
 * (the per-layer figures) round-trips and its damage is refused by name. */
#include <sys/stat.h>

#include "testutil.h"
#include "ffstream/layerstats.h"
#include "ffstream/run.h"

static char dir[FF_PATH_MAX];

static void sample_state(ff_run_state_t *s) {
    ff_config_t cfg;
    ff_config_defaults(&cfg);
    cfg.mode = FF_MODE_FF_STREAM;
    cfg.layers = 4;
    cfg.seed = UINT64_C(18446744073709551557); /* beyond 2^53 */
    cfg.lr = 0.01;
    ff_run_state_init(s, &cfg, UINT64_C(0xfeedfacecafebeef), 1000, 200);
    s->cache_layer = 2;
    s->hashed_layers = 2;
    s->weights_hash = UINT64_C(0x0123456789abcdef);
}

static char *run_json_path(void) {
    static char path[FF_PATH_MAX];
    check_path(path, dir, "run.json");
    return path;
}

/* Replaces the first `from` in run.json by `to`. */
static void edit_run_json(const char *from, const char *to) {
    size_t size;
    char *text = check_read_file(run_json_path(), &size);
    CHECK(text != NULL);
    if (text == NULL) return;
    char *at = strstr(text, from);
    CHECKF(at != NULL, "run.json lacks '%s'", from);
    if (at != NULL) {
        char *out = malloc(size + strlen(to) + 1);
        size_t head = (size_t)(at - text);
        memcpy(out, text, head);
        strcpy(out + head, to);
        strcat(out, at + strlen(from));
        check_write_file(run_json_path(), out, strlen(out));
        free(out);
    }
    free(text);
}

static void expect_read_error(const char *fragment) {
    ff_run_state_t s;
    ff_error_t err;
    int missing = 0;
    CHECK(ff_run_read(dir, &s, &missing, &err) == -1 && !missing);
    CHECK_CONTAINS(err.msg, fragment);
}

static void test_round_trip(void) {
    ff_run_state_t a, b;
    ff_error_t err;
    int missing = 0;
    sample_state(&a);
    CHECKF(ff_run_make_dirs(dir, &err) == 0, "%s", err.msg);
    CHECKF(ff_run_write(dir, &a, &err) == 0, "%s", err.msg);
    CHECKF(ff_run_read(dir, &b, &missing, &err) == 0, "%s", err.msg);
    CHECK(b.config.seed == a.config.seed && b.config.lr == a.config.lr);
    CHECK(b.config.mode == FF_MODE_FF_STREAM && b.config.layers == 4);
    CHECK(b.cache_layer == 2 && b.hashed_layers == 2 && !b.finished);
    CHECK(b.weights_hash == a.weights_hash && b.data_fingerprint == a.data_fingerprint);
    CHECK(b.config_fingerprint == ff_config_fingerprint(&a.config));
    CHECK(b.train_samples == 1000 && b.test_samples == 200);
    size_t size;
    char *text = check_read_file(run_json_path(), &size);
    CHECK(text != NULL && strstr(text, "\"seed\":\t\"18446744073709551557\"") != NULL);
    free(text);
    a.cache_layer = FF_RUN_NO_CACHE;
    CHECK(ff_run_write(dir, &a, &err) == 0 && ff_run_read(dir, &b, &missing, &err) == 0);
    CHECK(b.cache_layer == FF_RUN_NO_CACHE);
}

static void test_rejections(void) {
    ff_run_state_t a;
    ff_error_t err;
    sample_state(&a);
    const struct {
        const char *from, *to, *fragment;
    } edits[] = {
        {"\"cache_layer\":\t2", "\"cache_layer\":\t3", "checksum mismatch"},
        {"\"hashed_layers\":\t2", "\"hashed_layers\":\t2 ", NULL}, /* formatting only */
        {"\"lr\":\t0.01", "\"lr\":\t0.02", "checksum mismatch"},
        {"\"version\":\t2", "\"version\":\t1", "run format version 1 (written by ffstream"},
        {"\"version\":\t2", "\"version\":\t3", "which reads version 2"},
        {"\"format\":\t\"ffstream-run\"", "\"format\":\t\"other\"", "expected \"ffstream-run\""},
        {"\"checksum\":\t\"", "\"checksum\":\t\"X", "expected 16 lowercase hex digits"},
        {"\"hashed_layers\"", "\"hashed_layers\":1,\"hashed_layers\"", "appears twice"},
        {"\"finished\"", "\"surprise\":1,\"finished\"", "\"surprise\" is not a field"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        CHECK(ff_run_write(dir, &a, &err) == 0);
        edit_run_json(edits[i].from, edits[i].to);
        if (edits[i].fragment == NULL) {
            ff_run_state_t b;
            int missing;
            CHECKF(ff_run_read(dir, &b, &missing, &err) == 0, "after a formatting change: %s",
                   err.msg);
        } else {
            expect_read_error(edits[i].fragment);
        }
    }
    /* A state that contradicts itself is refused even with a valid checksum. */
    a.hashed_layers = 9;
    CHECK(ff_run_write(dir, &a, &err) == 0);
    expect_read_error("\"hashed_layers\" is 9, expected at most 4");
    sample_state(&a);
    a.cache_layer = 4;
    CHECK(ff_run_write(dir, &a, &err) == 0);
    expect_read_error("\"cache_layer\" is 4, expected 0..3");
    sample_state(&a);
    a.weights_hash = 0;
    a.config_fingerprint ^= 1;
    CHECK(ff_run_write(dir, &a, &err) == 0);
    expect_read_error("\"config_fingerprint\" does not match the configuration");

    /* Not a file, empty, not JSON. */
    unlink(run_json_path());
    CHECK(mkfifo(run_json_path(), 0644) == 0);
    expect_read_error("is a FIFO, expected a regular file");
    unlink(run_json_path());
    check_write_file(run_json_path(), "", 0);
    expect_read_error("not valid JSON");
    check_write_file(run_json_path(), "[1, 2]", 6);
    expect_read_error("expected a JSON object");
    unlink(run_json_path());
    ff_run_state_t b;
    int missing = 0;
    CHECK(ff_run_read(dir, &b, &missing, &err) == -1 && missing);
}

static void test_resume_check(void) {
    ff_run_state_t a;
    ff_error_t err;
    sample_state(&a);
    ff_config_t now = a.config;
    CHECK(ff_run_check_resume(&a, &now, a.data_fingerprint, &err) == 0);
    now.hidden = 100;
    CHECK(ff_run_check_resume(&a, &now, a.data_fingerprint, &err) == -1);
    CHECK_CONTAINS(err.msg, "--hidden was 2000 in this run, now 100");
    now = a.config;
    now.mode = FF_MODE_FF_MEM;
    CHECK(ff_run_check_resume(&a, &now, a.data_fingerprint, &err) == -1);
    CHECK_CONTAINS(err.msg, "made by --mode ff-stream, not ff-mem");
    now = a.config;
    CHECK(ff_run_check_resume(&a, &now, 1, &err) == -1);
    CHECK_CONTAINS(err.msg, "the data differ");
}

static void test_temporaries(void) {
    ff_error_t err;
    char keep[FF_PATH_MAX], tmp1[FF_PATH_MAX], tmp2[FF_PATH_MAX], odd[FF_PATH_MAX];
    CHECK(ff_run_make_dirs(dir, &err) == 0);
    check_path(keep, dir, "layers/000.ffl");
    check_path(tmp1, dir, "layers/000.ffl.tmp.00000000deadbeef");
    check_path(tmp2, dir, "cache/scores-001.f32.tmp.0123456789abcdef");
    check_path(odd, dir, "notes.tmp.txt");
    check_write_file(keep, "k", 1);
    check_write_file(tmp1, "t", 1);
    check_write_file(tmp2, "t", 1);
    check_write_file(odd, "o", 1);
    ff_run_remove_temporaries(dir);
    struct stat st;
    CHECK(stat(keep, &st) == 0 && stat(odd, &st) == 0);
    CHECK(stat(tmp1, &st) != 0 && stat(tmp2, &st) != 0);
    char path[FF_PATH_MAX];
    CHECK(ff_run_layer_path(path, "R", 7, &err) == 0 && strcmp(path, "R/layers/007.ffl") == 0);
    CHECK(ff_run_cache_path(path, "R", "test", 12, "cache", &err) == 0 &&
          strcmp(path, "R/cache/test-012.cache") == 0);
}

static void expect_stats_error(const char *text, const char *fragment) {
    ff_layer_result_t layers[3];
    memset(layers, 0, sizeof layers);
    ff_error_t err;
    CHECKF(ff_layerstats_parse("x/layers.json", text, strlen(text), layers, 3, &err) == -1,
           "accepted: %s", text);
    CHECK_CONTAINS(err.msg, fragment);
}

static void test_layerstats(void) {
    ff_layer_result_t a[3], b[3];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    a[0] = (ff_layer_result_t){.measured = 1, .seconds = 1.5, .peak_rss_bytes = 123456789,
                               .cgroup_peak_bytes = 987654321, .bytes_read = UINT64_C(1) << 40,
                               .bytes_written = 7, .disk_bytes = 4096};
    a[2] = (ff_layer_result_t){.measured = 1, .seconds = 0.25, .peak_rss_bytes = 1};
    ff_error_t err;
    CHECK(ff_layerstats_save(dir, a, 3, &err) == 0);
    CHECK(ff_layerstats_load(dir, b, 3, &err) == 0);
    CHECK(b[0].measured && !b[1].measured && b[2].measured);
    CHECK(b[0].seconds == 1.5 && b[0].peak_rss_bytes == 123456789 &&
          b[0].cgroup_peak_bytes == 987654321 && b[0].bytes_read == UINT64_C(1) << 40 &&
          b[0].bytes_written == 7 && b[0].disk_bytes == 4096);
    CHECK(b[2].seconds == 0.25 && b[2].cgroup_peak_bytes == 0);
    /* A run with fewer layers than the file lists refuses the extra one. */
    CHECK(ff_layerstats_load(dir, b, 2, &err) == -1);
    CHECK_CONTAINS(err.msg, "index");
    const char *head = "{\"format\":\"ffstream-layer-stats\",\"version\":1,\"layers\":[";
    const char *rec = "\"seconds\":1,\"peak_rss_bytes\":1,\"cgroup_peak_bytes\":null,"
                      "\"bytes_read\":1,\"bytes_written\":1,\"disk_bytes\":1";
    char text[1024];
    snprintf(text, sizeof text, "%s{\"index\":0,%s},{\"index\":0,%s}]}", head, rec, rec);
    expect_stats_error(text, "listed twice");
    snprintf(text, sizeof text, "%s{\"index\":0,%s,\"extra\":1}]}", head, rec);
    expect_stats_error(text, "extra");
    snprintf(text, sizeof text, "%s{\"index\":0,\"seconds\":-1,\"peak_rss_bytes\":1,"
             "\"cgroup_peak_bytes\":null,\"bytes_read\":1,\"bytes_written\":1,"
             "\"disk_bytes\":1}]}", head);
    expect_stats_error(text, "seconds");
    snprintf(text, sizeof text, "%s{\"index\":0,\"seconds\":1,\"peak_rss_bytes\":1,"
             "\"bytes_read\":1,\"bytes_written\":1,\"disk_bytes\":1}]}", head);
    expect_stats_error(text, "cgroup_peak_bytes");
    expect_stats_error("{\"format\":\"other\",\"version\":1,\"layers\":[]}", "format");
    expect_stats_error("{\"format\":\"ffstream-layer-stats\",\"version\":2,\"layers\":[]}",
                       "version 2");
    expect_stats_error("[1,2]", "object");
    /* A missing file is no figures, not an error. */
    char sub[FF_PATH_MAX];
    check_path(sub, dir, "none");
    CHECK(ff_layerstats_load(sub, b, 3, &err) == 0);
}

int main(void) {
    check_tempdir(dir, "run");
    test_round_trip();
    test_rejections();
    test_resume_check();
    test_temporaries();
    test_layerstats();
    char cmd[FF_PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_exit("test_run");
}
