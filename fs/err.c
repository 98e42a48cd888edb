/*
 * err: formatting of error reports (see err.h).
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_prefix(struct err *e, int code, const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX];
	char old[ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return code;
	if (!e->code)
		e->code = code;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* the message is cut at ERR_MSG_MAX: the prefix says where, so it goes first */
	memcpy(old, e->msg, sizeof(old));
	size_t plen = strnlen(prefix, sizeof(e->msg) - 1);
	size_t olen = strnlen(old, sizeof(e->msg) - 1 - plen);
	memcpy(e->msg, prefix, plen);
	memcpy(e->msg + plen, old, olen);
	e->msg[plen + olen] = '\0';
	return e->code;
}

void err_clear(struct err *e)
{
	if (!e)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}
