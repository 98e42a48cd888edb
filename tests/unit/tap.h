/*
 * tap.h: the few macros the C unit tests use to print TAP (Test Anything
 * Protocol), which meson reads with `protocol : 'tap'`. A test binary calls
 * CHECK() for every assertion and ends with `return tap_done();`.
 */
#ifndef STRATA_TAP_H
#define STRATA_TAP_H

#include <stdio.h>

static int tap_count;
static int tap_failed;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		int ok_ = !!(cond);                                                                \
		tap_count++;                                                                       \
		if (!ok_)                                                                          \
			tap_failed++;                                                              \
		printf("%sok %d - ", ok_ ? "" : "not ", tap_count);                                \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
		if (!ok_)                                                                          \
			printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);              \
		fflush(stdout);                                                                    \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
