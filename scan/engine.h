/*
 * engine.h: what nested.c needs of the engine: scanning a member with a
 * path and depth, and the counters and limits of the current scan.
 */
#ifndef STRATA_SCAN_ENGINE_H
#define STRATA_SCAN_ENGINE_H

#include "scan.h"

/* One top-level scan_buffer() call, shared by the members of its archives. */
struct scan_ctx;

int scan_buffer_at(struct scan_ctx *c, const char *path, const void *data, size_t len,
                   unsigned depth);
struct scan_stats *scan_ctx_stats(struct scan_ctx *c);
const struct scan_limits *scan_ctx_limits(struct scan_ctx *c);
/* Adds to the bytes expanded from archives for this top-level buffer; returns the total. */
uint64_t scan_ctx_expand(struct scan_ctx *c, uint64_t add);

#endif
