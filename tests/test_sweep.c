/* test_sweep: ffprofile's decisions, called directly: --layers ranges and
 * lists (bounds, wrap-around, the depth limit, repeats), --modes (repeats
 * refused, never a mode dropped), the resume check naming the first setting
 * that differs, run records checked and found, and the ETA scaled by depth
 * from each mode's seconds per layer, else every mode's. */
#include "sweep.h"
#include "testutil.h"

static void test_depths(void) {
    uint32_t d[SWEEP_MAX_DEPTHS];
    int n = 0;
    ff_error_t err;
    CHECK(sweep_parse_depths("2:22:5", d, &n, &err) == 0);
    CHECK(n == 5 && d[0] == 2 && d[4] == 22);
    CHECK(sweep_parse_depths("2:47:5", d, &n, &err) == 0 && n == 10 && d[9] == 47);
    CHECK(sweep_parse_depths("3,12,60", d, &n, &err) == 0 && n == 3 && d[2] == 60);
    CHECK(sweep_parse_depths("7:7:100", d, &n, &err) == 0 && n == 1 && d[0] == 7);
    CHECK(sweep_parse_depths("1:256:1", d, &n, &err) == 0 && n == 256 && d[255] == 256);
    CHECK(sweep_parse_depths("4096:4096:4096", d, &n, &err) == 0 && n == 1);
    /* Values that once wrapped around in unsigned arithmetic. */
    CHECK(sweep_parse_depths("2:10:4294967295", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "--layers 2:10:4294967295: step '4294967295' is not a whole number");
    CHECK(sweep_parse_depths("4095:4096:4096", d, &n, &err) == 0 && n == 1);
    CHECK(sweep_parse_depths("2:4294967298:1", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "end '4294967298'");
    CHECK(sweep_parse_depths("2:10:0", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("-2:10:1", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("+2:10:1", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("2:10:1:1", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "expected A:B:S");
    CHECK(sweep_parse_depths("2:10", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("10:2:1", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "empty or invalid range");
    /* Longer than the limit: refused, not cut at 256. */
    CHECK(sweep_parse_depths("1:257:1", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "--layers 1:257:1: 257 depths, at most 256 in one sweep");
    char list[2048] = "";
    for (int i = 1; i <= 257; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%d", i > 1 ? "," : "", i);
    }
    CHECK(sweep_parse_depths(list, d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "257 depths listed, at most 256");
    CHECK(sweep_parse_depths("2,7,2", d, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "2 is listed twice");
    CHECK(sweep_parse_depths("2,x", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("0", d, &n, &err) != 0);
    CHECK(sweep_parse_depths("4097", d, &n, &err) != 0);
}

static void test_modes(void) {
    const sweep_mode_t *m[SWEEP_MODE_COUNT];
    int n = 0;
    ff_error_t err;
    CHECK(sweep_parse_modes("ff-stream,ff-mem,bp,ff-recurrent,torch-ff,torch-bp", m, &n, &err) == 0);
    CHECK(n == 6 && m[4]->runner == SWEEP_TORCH && strcmp(m[5]->torch_mode, "bp") == 0);
    CHECK(m[0]->runner == SWEEP_FFTRAIN && m[0]->ff_mode == FF_MODE_FF_STREAM);
    CHECK(sweep_parse_modes("ff-mem,ff-mem", m, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "--modes: 'ff-mem' is listed twice");
    /* Once four repeats filled the list and bp was dropped silently. */
    CHECK(sweep_parse_modes("ff-mem,ff-mem,ff-mem,ff-mem,bp", m, &n, &err) != 0);
    CHECK(sweep_parse_modes("bp,torch-magic", m, &n, &err) != 0);
    CHECK_CONTAINS(err.msg, "unknown mode 'torch-magic'");
    CHECK(sweep_parse_modes(",", m, &n, &err) != 0);
}

static cJSON *parse(const char *text) {
    cJSON *j = cJSON_Parse(text);
    CHECKF(j != NULL, "fixture JSON: %s", text);
    return j;
}

static void test_compare(void) {
    ff_error_t err;
    cJSON *saved = parse("{\"modes\":[\"ff-mem\",\"bp\"],\"layers\":[2,7],\"hidden\":32,\"batch\":100,"
                         "\"epochs\":1,\"lr\":0.03,\"seed\":\"1\",\"train_limit\":500,"
                         "\"test_limit\":100,\"threads\":2,\"data\":\"d\",\"mem_limit_bytes\":null,"
                         "\"recipe\":\"best\",\"eval\":\"goodness\",\"bp_lr\":3e-05,"
                         "\"full\":false,\"mpi_ranks\":0,\"command\":\"a\"}");
    cJSON *now = cJSON_Duplicate(saved, 1);
    /* The command line may differ. */
    cJSON_ReplaceItemInObject(now, "command", cJSON_CreateString("b"));
    CHECK(sweep_compare_config(saved, now, "r.json", &err) == 0);
    cJSON_ReplaceItemInObject(now, "train_limit", cJSON_CreateNumber(400));
    cJSON_ReplaceItemInObject(now, "hidden", cJSON_CreateNumber(64));
    CHECK(sweep_compare_config(saved, now, "r.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "r.json: cannot resume: hidden (--hidden) was 32 in that sweep, now 64");
    cJSON_ReplaceItemInObject(now, "hidden", cJSON_CreateNumber(32));
    CHECK(sweep_compare_config(saved, now, "r.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "train_limit (--train-limit) was 500 in that sweep, now 400");
    cJSON_ReplaceItemInObject(now, "train_limit", cJSON_CreateNumber(500));
    cJSON_DeleteItemFromObject(now, "threads");
    CHECK(sweep_compare_config(saved, now, "r.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "threads (--threads) was 2 in that sweep, now absent");
    cJSON_AddNumberToObject(now, "threads", 2);
    cJSON_ReplaceItemInObject(now, "recipe", cJSON_CreateString("original"));
    CHECK(sweep_compare_config(saved, now, "r.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "recipe (--recipe) was \"best\" in that sweep, now \"original\"");
    cJSON_ReplaceItemInObject(now, "recipe", cJSON_CreateString("best"));
    CHECK(sweep_compare_config(saved, now, "r.json", &err) == 0);
    cJSON_Delete(now);
    cJSON_Delete(saved);
}

static void test_runs_and_eta(void) {
    ff_error_t err;
    cJSON *bad = parse("[{\"mode\":\"bp\",\"layers\":2,\"status\":\"ok\"},{\"mode\":\"bp\",\"layers\":1e999}]");
    CHECK(sweep_check_runs(bad, "r.json", &err) != 0);
    CHECK_CONTAINS(err.msg, "r.json: runs[1] is not a run record");
    cJSON_Delete(bad);
    /* ff-mem: 10 s at 1 layer, 30 s at 2: 40 s / 3 layers. bp: only a
     * failed and an OOM-killed cell, which say nothing of its speed. */
    cJSON *runs = parse(
        "[{\"mode\":\"ff-mem\",\"layers\":1,\"status\":\"ok\",\"wall_seconds\":10},"
        "{\"mode\":\"ff-mem\",\"layers\":2,\"status\":\"ok\",\"wall_seconds\":30},"
        "{\"mode\":\"bp\",\"layers\":1,\"status\":\"failed\",\"wall_seconds\":1000},"
        "{\"mode\":\"bp\",\"layers\":2,\"status\":\"oom-killed\",\"wall_seconds\":1000}]");
    CHECK(sweep_check_runs(runs, "r.json", &err) == 0);
    CHECK(sweep_find_done(runs, "ff-mem", 2) != NULL);
    CHECK(sweep_find_done(runs, "bp", 1) == NULL);  /* failed: runs again */
    CHECK(sweep_find_done(runs, "bp", 2) != NULL);  /* oom-killed: kept */
    sweep_cell_t left[] = {{"ff-mem", 4}, {"bp", 3}, {"torch-bp", 6}};
    /* 40/3 s per layer for every cell (bp and torch-bp fall back to it). */
    CHECK_NEAR(sweep_eta(runs, left, 1), 40.0 / 3 * 4, 1e-9);
    CHECK_NEAR(sweep_eta(runs, left, 3), 40.0 / 3 * 13, 1e-9);
    cJSON_AddItemToArray(runs, parse("{\"mode\":\"bp\",\"layers\":4,\"status\":\"ok\",\"wall_seconds\":2}"));
    /* bp now has its own rate: 0.5 s per layer. */
    CHECK_NEAR(sweep_eta(runs, left, 2), 40.0 / 3 * 4 + 0.5 * 3, 1e-9);
    CHECK(sweep_eta(runs, left, 0) == 0);
    cJSON *none = cJSON_CreateArray();
    CHECK(sweep_eta(none, left, 3) < 0);
    cJSON_Delete(none);
    cJSON_Delete(runs);
    char text[32];
    sweep_format_duration(42.4, text, sizeof text);
    CHECK(strcmp(text, "42s") == 0);
    sweep_format_duration(187, text, sizeof text);
    CHECK(strcmp(text, "3m07s") == 0);
    sweep_format_duration(7500, text, sizeof text);
    CHECK(strcmp(text, "2h05m") == 0);
    sweep_format_duration(-1, text, sizeof text);
    CHECK(strcmp(text, "unknown") == 0);
    sweep_format_duration(INFINITY, text, sizeof text);
    CHECK(strcmp(text, "unknown") == 0);
}

int main(void) {
    test_depths();
    test_modes();
    test_compare();
    test_runs_and_eta();
    return check_exit("test_sweep");
}
