/* json.c: strict JSON reading on top of cJSON. */
#include "ffstream/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffstream/fileio.h"

int ff_json_valid_utf8(const char *text, size_t size) {
    const unsigned char *p = (const unsigned char *)text, *end = p + size;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80) continue;
        int more;
        unsigned min;
        if ((c & 0xe0) == 0xc0) {
            more = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (end - p < more) return 0;
        for (int i = 0; i < more; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i] & 0x3f);
        }
        p += more;
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    }
    return 1;
}

/* The first duplicate key found in any object under item, or NULL. */
static const char *duplicate_key(const cJSON *item) {
    for (const cJSON *a = item->child; a != NULL; a = a->next) {
        if (cJSON_IsObject(item))
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (a->string != NULL && b->string != NULL && strcmp(a->string, b->string) == 0)
                    return a->string;
        const char *inner = duplicate_key(a);
        if (inner != NULL) return inner;
    }
    return NULL;
}

int ff_json_parse(const char *path, const char *text, size_t size, cJSON **out,
                  ff_error_t *err) {
    *out = NULL;
    if (!ff_json_valid_utf8(text, size))
        return ff_error_set(err, "%s: not valid UTF-8, expected a UTF-8 JSON document", path);
    if (memchr(text, '\0', size) != NULL)
        return ff_error_set(err, "%s: holds a NUL byte, expected a JSON document", path);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (root == NULL)
        return ff_error_set(err, "%s: not valid JSON (near byte %td)", path,
                            cJSON_GetErrorPtr() != NULL && cJSON_GetErrorPtr() >= text &&
                                    cJSON_GetErrorPtr() <= text + size
                                ? cJSON_GetErrorPtr() - text
                                : (ptrdiff_t)0);
    if (end != NULL) {
        while (end < text + size && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
            end++;
        if (end < text + size) {
            cJSON_Delete(root);
            return ff_error_set(err, "%s: bytes after the JSON document (from byte %td)", path,
                                end - text);
        }
    }
    const char *dup = duplicate_key(root);
    if (dup != NULL) {
        ff_error_set(err, "%s: key \"%.64s\" appears twice in one object", path, dup);
        cJSON_Delete(root);
        return -1;
    }
    *out = root;
    return 0;
}

/* "PATH: field \"[SECTION.]KEY\"" into buf. */
static const char *where(char *buf, size_t cap, const ff_json_ctx_t *c, const char *key) {
    if (c->section != NULL && c->section[0] != '\0')
        snprintf(buf, cap, "%s: field \"%s.%s\"", c->path, c->section, key);
    else
        snprintf(buf, cap, "%s: field \"%s\"", c->path, key);
    return buf;
}

static const cJSON *member(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                           ff_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL) {
        char w[1200];
        ff_error_set(err, "%s is missing", where(w, sizeof w, c, key));
    }
    return v;
}

int ff_json_get_number(const ff_json_ctx_t *c, const cJSON *obj, const char *key, double min,
                       double max, double *out, ff_error_t *err) {
    char w[1200];
    const cJSON *v = member(c, obj, key, err);
    if (v == NULL) return -1;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ff_error_set(err, "%s is not a finite number", where(w, sizeof w, c, key));
    if (!(v->valuedouble >= min && v->valuedouble <= max))
        return ff_error_set(err, "%s is %.17g, expected %.17g..%.17g", where(w, sizeof w, c, key),
                            v->valuedouble, min, max);
    *out = v->valuedouble;
    return 0;
}

int ff_json_get_uint(const ff_json_ctx_t *c, const cJSON *obj, const char *key, uint64_t min,
                     uint64_t max, uint64_t *out, ff_error_t *err) {
    char w[1200];
    const cJSON *v = member(c, obj, key, err);
    if (v == NULL) return -1;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= 0 && d <= 9007199254740992.0) || floor(d) != d)
        return ff_error_set(err, "%s is not a whole number from 0 to 2^53",
                            where(w, sizeof w, c, key));
    uint64_t u = (uint64_t)d;
    if (u < min || u > max)
        return ff_error_set(err, "%s is %llu, expected %llu..%llu", where(w, sizeof w, c, key),
                            (unsigned long long)u, (unsigned long long)min,
                            (unsigned long long)max);
    *out = u;
    return 0;
}

int ff_json_get_string(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const char **out, ff_error_t *err) {
    char w[1200];
    const cJSON *v = member(c, obj, key, err);
    if (v == NULL) return -1;
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return ff_error_set(err, "%s is not a string", where(w, sizeof w, c, key));
    *out = v->valuestring;
    return 0;
}

int ff_json_get_bool(const ff_json_ctx_t *c, const cJSON *obj, const char *key, int *out,
                     ff_error_t *err) {
    char w[1200];
    const cJSON *v = member(c, obj, key, err);
    if (v == NULL) return -1;
    if (!cJSON_IsBool(v))
        return ff_error_set(err, "%s is not true or false", where(w, sizeof w, c, key));
    *out = cJSON_IsTrue(v);
    return 0;
}

int ff_json_get_hex64(const ff_json_ctx_t *c, const cJSON *obj, const char *key, uint64_t *out,
                      ff_error_t *err) {
    char w[1200];
    const char *s;
    if (ff_json_get_string(c, obj, key, &s, err) != 0) return -1;
    if (strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16)
        return ff_error_set(err, "%s is \"%.40s\", expected 16 lowercase hex digits",
                            where(w, sizeof w, c, key), s);
    *out = strtoull(s, NULL, 16);
    return 0;
}

int ff_json_get_choice(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const char *const *names, int *out, ff_error_t *err) {
    char w[1200];
    const char *s;
    if (ff_json_get_string(c, obj, key, &s, err) != 0) return -1;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    char expected[256] = "";
    for (int i = 0; names[i] != NULL; i++) {
        size_t n = strlen(expected);
        snprintf(expected + n, sizeof expected - n, "%s\"%s\"", i == 0 ? "" : names[i + 1] == NULL ? " or " : ", ",
                 names[i]);
    }
    return ff_error_set(err, "%s is \"%.40s\", expected %s", where(w, sizeof w, c, key), s,
                        expected);
}

int ff_json_get_object(const ff_json_ctx_t *c, const cJSON *obj, const char *key,
                       const cJSON **out, ff_error_t *err) {
    char w[1200];
    const cJSON *v = member(c, obj, key, err);
    if (v == NULL) return -1;
    if (!cJSON_IsObject(v))
        return ff_error_set(err, "%s is not an object", where(w, sizeof w, c, key));
    *out = v;
    return 0;
}

int ff_json_check_keys(const ff_json_ctx_t *c, const cJSON *obj, const char *const *allowed,
                       ff_error_t *err) {
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        int known = 0;
        for (int i = 0; allowed[i] != NULL && !known; i++) known = strcmp(m->string, allowed[i]) == 0;
        if (!known) {
            char w[1200];
            return ff_error_set(err, "%s is not a field this version knows",
                                where(w, sizeof w, c, m->string));
        }
    }
    return 0;
}

cJSON *ff_json_add_hex64(cJSON *obj, const char *key, uint64_t v) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)v);
    return cJSON_AddStringToObject(obj, key, hex);
}

int ff_json_write_atomic(const char *path, cJSON *root, int ok, ff_error_t *err) {
    char *text = ok && root != NULL ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL) return ff_error_set(err, "%s: out of memory", path);
    int rc = ff_fileio_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}
