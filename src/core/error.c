/* error.c: formatting of ff_error_t and overflow-checked size arithmetic. */
#include "ffstream/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int ff_error_set(ff_error_t *err, const char *fmt, ...) {
    if (err == NULL) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int ff_error_wrap(ff_error_t *err, const char *fmt, ...) {
    if (err == NULL) return -1;
    char prefix[FF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right and put "prefix: " in front, truncating
     * the tail when the whole does not fit. */
    size_t cap = sizeof err->msg, plen = strlen(prefix) + 2, olen = strlen(err->msg);
    if (plen >= cap) plen = cap - 1;
    if (olen > cap - 1 - plen) olen = cap - 1 - plen;
    memmove(err->msg + plen, err->msg, olen);
    err->msg[plen + olen] = '\0';
    memcpy(err->msg, prefix, plen >= 2 ? plen - 2 : plen);
    if (plen >= 2) memcpy(err->msg + plen - 2, ": ", 2);
    return -1;
}

int ff_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
