/*
 * err: the error report that every fs/ function fills when it fails.
 *
 * Library code never prints; it returns a negative errno and, when the caller
 * passed a struct err, a one-line message saying what failed, where (image path,
 * layer digest, entry path, offset) and why. tools/ prints the message.
 * Callers may pass NULL when they only want the code.
 */
#ifndef STRATA_ERR_H
#define STRATA_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 2048

struct err {
	int code;              /* negative errno, 0 when nothing failed */
	char msg[ERR_MSG_MAX]; /* NUL-terminated, empty when nothing failed */
};

/*
 * Records code (a negative errno) and a printf-style message in e (if not
 * NULL) and returns code, so that callers can write `return err_set(e, -EIO, ...)`.
 */
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Prefixes the message already in e with more context ("layer 02 sha256:ab..: ")
 * and returns e->code (or code when e is NULL).
 */
int err_prefix(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void err_clear(struct err *e);

#endif
