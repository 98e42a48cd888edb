/*
 * strlist: a bounded list of messages (the warnings a layer or a view
 * collects while it is built). Adding past the bound counts instead of
 * storing, so hostile input cannot grow it without limit. A zeroed struct is
 * an empty list; strlist_release frees it.
 */
#ifndef STRATA_STRLIST_H
#define STRATA_STRLIST_H

#include <stdint.h>

struct strlist {
	char **v;
	uint32_t n;
	uint32_t dropped; /* messages past the bound, counted only */
};

/* Adds a printf-style message unless n has reached max. Out of memory drops it. */
void strlist_addf(struct strlist *l, uint32_t max, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void strlist_release(struct strlist *l);

#endif
