/*
 * util.h: helpers every scan/ module uses: error messages, a growable string
 * buffer, sha256/hex/base64, and the heuristics for example values and
 * test/fixture paths. (Enum names, limits and entropy are public: scan.h.)
 */
#ifndef STRATA_SCAN_UTIL_H
#define STRATA_SCAN_UTIL_H

#include <stdarg.h>

#include "scan.h"

/* Records code and a printf-style message in e (if not NULL); returns code. */
int scan_err_set(struct scan_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A growable string; after an allocation failure it stays empty and oom. */
struct scan_buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};
void scan_buf_add(struct scan_buf *b, const void *d, size_t n);
void scan_buf_puts(struct scan_buf *b, const char *s);
void scan_buf_printf(struct scan_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated string (owned by the caller) or NULL on OOM. */
char *scan_buf_steal(struct scan_buf *b);

/* strdup that passes NULL through and sets *oom when it runs out of memory. */
char *scan_strdup(const char *s, bool *oom);

void scan_sha256_hex(const void *d, size_t n, char out[65]);
void scan_hex(const uint8_t *d, size_t n, char *out);
/* Base64 (standard or url-safe alphabet, whitespace and padding tolerated).
 * Returns the decoded length, or -1 on a character outside the alphabet. */
long scan_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
void scan_base64_encode(const uint8_t *in, size_t len, char *out, bool pad);
/* Whether a path lies in a test/fixture/example/sample place. */
bool scan_is_example_path(const char *path);
/* NULL, or why the value is a known example or placeholder. */
const char *scan_example_value(const char *s, size_t len);

#endif
