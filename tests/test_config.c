/* test_config: the option table and what is generated from it. The
 * default learning rate and --lr 0.03 are the same run; every option
 * parses its own default and canonical spelling back to the same value;
 * every recorded option survives JSON both ways, and JSON with a typo, an
 * unknown key, a missing key or a value out of range is refused naming the
 * key; the fingerprint covers every fingerprinted option and nothing else;
 * resume comparison names the flag; --help lists every option; range
 * messages quote what was typed. */
#include "testutil.h"
#include "ffstream/config.h"
#include "ffstream/json.h"

/* A value of o different from its default, as typed on a command line. */
static const char *another_value(const ff_option_t *o) {
    switch (o->kind) {
    case FF_OPT_CHOICE: return o->choices[1];
    case FF_OPT_U32:
    case FF_OPT_U64: return o->min >= 3 ? "4" : "3";
    case FF_OPT_NUMBER: return o->max >= 0.75 ? "0.75" : "0.25";
    case FF_OPT_PATH: return "/somewhere/else";
    case FF_OPT_SWITCH: return "1";
    case FF_OPT_SIZE: return "900M";
    }
    return "";
}

static void test_default_lr_is_typed_lr(void) {
    ff_config_t a, b;
    ff_error_t err;
    ff_config_defaults(&a);
    ff_config_defaults(&b);
    char *argv[] = {"fftrain", "--lr", "0.03", NULL};
    CHECKF(ff_config_parse(&b, 3, argv, &err) == 0, "%s", err.msg);
    CHECK(a.lr == b.lr && a.lr == 0.03);
    CHECK(ff_config_fingerprint(&a) == ff_config_fingerprint(&b));
    CHECK(ff_config_compare(&a, &b, &err) == 0);
}

static void test_every_option(void) {
    size_t count;
    const ff_option_t *options = ff_options(&count);
    ff_config_t base;
    ff_error_t err;
    ff_config_defaults(&base);
    uint64_t fp = ff_config_fingerprint(&base);
    int recorded = 0;
    for (size_t i = 0; i < count; i++) {
        const ff_option_t *o = &options[i];
        CHECK(ff_option_find(o->flag) == o && ff_option_find(o->key) == o);
        /* The key is the flag without dashes, '-' as '_'. */
        char key[64];
        snprintf(key, sizeof key, "%s", o->flag + 2);
        for (char *p = key; *p != '\0'; p++)
            if (*p == '-') *p = '_';
        CHECKF(strcmp(key, o->key) == 0, "%s has key %s", o->flag, o->key);
        ff_config_t c = base;
        char before[FF_PATH_MAX], text[FF_PATH_MAX];
        ff_config_format(&c, o, before, sizeof before);
        if (o->kind != FF_OPT_SWITCH) {
            CHECKF(ff_config_set(&c, o, before, &err) == 0, "%s %s: %s", o->flag, before, err.msg);
            ff_config_format(&c, o, text, sizeof text);
            CHECKF(strcmp(before, text) == 0, "%s: '%s' reads back as '%s'", o->flag, before, text);
        }
        const char *other = another_value(o);
        if (strcmp(other, before) == 0) other = "4";
        CHECKF(ff_config_set(&c, o, other, &err) == 0, "%s: %s", o->flag, err.msg);
        ff_config_format(&c, o, text, sizeof text);
        CHECKF(strcmp(before, text) != 0, "%s: '%s' did not change the value", o->flag, text);
        int changes_fp = ff_config_fingerprint(&c) != fp;
        CHECKF(changes_fp == ((o->flags & FF_OPT_FINGERPRINT) != 0), "%s: fingerprint %s",
               o->flag, changes_fp ? "changed" : "unchanged");
        if (o->flags & FF_OPT_FINGERPRINT) {
            CHECK(ff_config_compare(&base, &c, &err) == -1);
            CHECK_CONTAINS(err.msg, o->flag);
            CHECK_CONTAINS(err.msg, before);
        }
        if (!(o->flags & FF_OPT_RECORDED)) continue;
        recorded++;
        /* Recorded options: the JSON round trip keeps the changed value. */
        cJSON *obj = cJSON_CreateObject();
        CHECK(ff_config_to_json(&c, obj) == 0);
        ff_config_t back;
        ff_config_defaults(&back);
        CHECKF(ff_config_from_json(&back, obj, "test.json", &err) == 0, "%s: %s", o->flag,
               err.msg);
        char again[FF_PATH_MAX];
        ff_config_format(&back, o, again, sizeof again);
        CHECKF(strcmp(text, again) == 0, "%s: JSON gave '%s' for '%s'", o->flag, again, text);
        CHECK(ff_config_fingerprint(&back) == ff_config_fingerprint(&c));
        /* Missing: refused naming the key, except a switch, which reads as
         * off (a run.json from before the switch existed); then
         * wrong-typed: refused naming the key. */
        cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(obj, o->key);
        if (o->kind == FF_OPT_SWITCH) {
            ff_config_t off;
            ff_config_defaults(&off);
            CHECK(ff_config_from_json(&off, obj, "test.json", &err) == 0);
            ff_config_format(&off, o, again, sizeof again);
            CHECKF(strcmp(again, "off") == 0, "%s: a missing switch read as '%s'", o->flag, again);
        } else {
            CHECK(ff_config_from_json(&back, obj, "test.json", &err) == -1);
            CHECK_CONTAINS(err.msg, o->key);
        }
        cJSON_AddItemToObject(obj, o->key, cJSON_CreateArray());
        CHECK(ff_config_from_json(&back, obj, "test.json", &err) == -1);
        CHECK_CONTAINS(err.msg, o->key);
        cJSON_Delete(item);
        cJSON_Delete(obj);
    }
    CHECK(recorded >= 25);
}

static void test_strict_json(void) {
    ff_config_t c, back;
    ff_error_t err;
    ff_config_defaults(&c);
    cJSON *obj = cJSON_CreateObject();
    CHECK(ff_config_to_json(&c, obj) == 0);
    /* The seed is a decimal string: exact beyond 2^53. */
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "seed")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(obj, "lr")));
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "loss", cJSON_CreateString("softpuls"));
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "run.json: field \"config.loss\" is \"softpuls\", expected");
    CHECK_CONTAINS(err.msg, "\"symba\"");
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "loss", cJSON_CreateString("symba"));
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "jitter", cJSON_CreateNumber(5));
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "config.jitter\" is 5, expected 0..4");
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "jitter", cJSON_CreateNumber(1.5));
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "not a whole number");
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "jitter", cJSON_CreateNumber(0));
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "lr", cJSON_CreateNumber(0));
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "config.lr");
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "lr", cJSON_CreateNumber(0.03));
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "seed", cJSON_CreateString("12x"));
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "config.seed");
    cJSON_ReplaceItemInObjectCaseSensitive(obj, "seed", cJSON_CreateString("18446744073709551615"));
    CHECKF(ff_config_from_json(&back, obj, "run.json", &err) == 0, "%s", err.msg);
    CHECK(back.seed == UINT64_MAX);
    cJSON_AddNumberToObject(obj, "learning_rate", 0.1);
    CHECK(ff_config_from_json(&back, obj, "run.json", &err) == -1);
    CHECK_CONTAINS(err.msg, "\"config.learning_rate\" is not a field this version knows");
    cJSON_Delete(obj);

    /* Duplicate keys and trailing garbage are refused by the parser. */
    cJSON *root = NULL;
    const char *dup = "{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}";
    CHECK(ff_json_parse("x.json", dup, strlen(dup), &root, &err) == -1 && root == NULL);
    CHECK_CONTAINS(err.msg, "key \"c\" appears twice");
    const char *tail = "{\"a\": 1} {\"b\": 2}";
    CHECK(ff_json_parse("x.json", tail, strlen(tail), &root, &err) == -1);
    CHECK_CONTAINS(err.msg, "bytes after the JSON document");
    const char bad_utf8[] = "{\"a\": \"\xc3\x28\"}";
    CHECK(ff_json_parse("x.json", bad_utf8, strlen(bad_utf8), &root, &err) == -1);
    CHECK_CONTAINS(err.msg, "not valid UTF-8");
    const char *good = "{\"a\": 1}\n";
    CHECK(ff_json_parse("x.json", good, strlen(good), &root, &err) == 0 && root != NULL);
    cJSON_Delete(root);
    CHECK(!ff_json_valid_utf8("\xed\xa0\x80", 3)); /* a surrogate */
    CHECK(!ff_json_valid_utf8("\xc0\xaf", 2));     /* overlong */
    CHECK(ff_json_valid_utf8("\xe2\x82\xac", 3));  /* the euro sign */
}

static void expect_parse_error(const char *flag, const char *value, const char *fragment) {
    ff_config_t c;
    ff_error_t err;
    ff_config_defaults(&c);
    char *argv[] = {"fftrain", (char *)flag, (char *)value, NULL};
    CHECK(ff_config_parse(&c, 3, argv, &err) == -1);
    CHECK_CONTAINS(err.msg, fragment);
}

static void test_messages(void) {
    expect_parse_error("--lr", "10.0000001", "--lr: 10.0000001 is out of range, expected a number in (0, 10]");
    expect_parse_error("--lr", "inf", "--lr: 'inf' is not a number in (0, 10]");
    expect_parse_error("--lr", "nan", "is not a number");
    expect_parse_error("--theta", "1e999", "--theta: '1e999' is not a finite number");
    expect_parse_error("--layers", "4097", "--layers: 4097 is out of range, expected 1..4096");
    expect_parse_error("--layers", "-1", "--layers: '-1' is not a whole number from 1 to 4096");
    expect_parse_error("--seed", "99999999999999999999", "--seed: 99999999999999999999 is out of range");
    expect_parse_error("--eval", "sofmax", "--eval: 'sofmax', expected goodness or softmax");
    expect_parse_error("--weight-decay", "-0.5", "expected a number in [0, 1]");
}

static void test_help(void) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ff_config_usage(f);
    fclose(f);
    size_t count;
    const ff_option_t *options = ff_options(&count);
    for (size_t i = 0; i < count; i++) CHECK_CONTAINS(text, options[i].flag);
    CHECK_CONTAINS(text, "[0.03]");
    free(text);
}

int main(void) {
    test_default_lr_is_typed_lr();
    test_every_option();
    test_strict_json();
    test_messages();
    test_help();
    return check_exit("test_config");
}
