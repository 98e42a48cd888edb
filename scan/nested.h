/*
 * nested.h: archives inside scanned buffers (zip family, tar, gzip).
 */
#ifndef STRATA_SCAN_NESTED_H
#define STRATA_SCAN_NESTED_H

#include "engine.h"

/* Whether the bytes start like an archive this module opens. */
bool scan_nested_detect(const uint8_t *d, size_t len);
/* 1 when the archive was opened and its members scanned, 0 when it is not an
 * archive after all (scan the raw bytes), <0 on a fatal error. */
int scan_nested(struct scan_ctx *c, const char *path, const void *data, size_t len, unsigned depth);

#endif
