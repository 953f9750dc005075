/* error.h: the error record every fallible ffstream function fills.
 * A function that can fail takes `ff_error_t *err` last and returns 0 on
 * success or -1 with err->msg naming the thing, the field and what was
 * expected. Only main() prints errors; the library never exits. */
#ifndef FFSTREAM_ERROR_H
#define FFSTREAM_ERROR_H

#include <stddef.h>

#define FF_ERROR_MSG_MAX 1024

typedef struct {
    char msg[FF_ERROR_MSG_MAX];
} ff_error_t;

/* Formats the message into err (err may be NULL). @return -1, always, so a
 * caller can write `return ff_error_set(err, ...)`. */
int ff_error_set(ff_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the message already in err with more context ("loading X: ...").
 * @return -1. */
int ff_error_wrap(ff_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stores a*b in *out. @return 0, or -1 when the product overflows size_t. */
int ff_mul_size(size_t a, size_t b, size_t *out);

#endif
