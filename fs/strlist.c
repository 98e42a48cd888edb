/*
 * strlist: bounded message lists (see strlist.h).
 */
#include "strlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void strlist_addf(struct strlist *l, uint32_t max, const char *fmt, ...)
{
	char **v, *s;
	va_list ap;

	if (l->n >= max) {
		l->dropped++;
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v) {
		free(s);
		return;
	}
	l->v = v;
	v[l->n++] = s;
}

void strlist_release(struct strlist *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct strlist){0};
}
