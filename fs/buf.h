/*
 * buf: a growable byte buffer, the one container that fs/ builds its flat
 * tables with (entry arrays, string pools, virtual file contents).
 *
 * Modelled on git's strbuf: the bytes live in b->data (always NUL-terminated
 * after a successful append, so text can be used as a C string), b->len counts
 * them. A zeroed struct buf (BUF_INIT) is an empty buffer. The owner frees
 * with buf_release(); buf_detach() hands the bytes to the caller instead.
 * Appends return 0 or -ENOMEM and leave the buffer as it was on failure.
 */
#ifndef STRATA_BUF_H
#define STRATA_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Makes room for at least extra more bytes (plus the trailing NUL). */
int buf_grow(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Appends s plus a NUL byte and returns, through ret_off, the offset where it
 * starts: the way string pools hand out 32-bit references.
 */
int buf_append_cstr(struct buf *b, const char *s, size_t len, uint32_t *ret_off);

/* Frees the bytes after giving up ownership: returns them, leaving b empty. */
char *buf_detach(struct buf *b, size_t *ret_len);
void buf_release(struct buf *b);

#endif
