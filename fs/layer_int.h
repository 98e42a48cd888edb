/*
 * layer_int.h: what the indexer (layer.c) and the index's on-disk form
 * (layer_io.c) share. Not an interface for anything else: callers use
 * layer.h.
 */
#ifndef STRATA_LAYER_INT_H
#define STRATA_LAYER_INT_H

#include <sys/stat.h>

#include "buf.h"
#include "layer.h"
#include "strlist.h"

/* Warnings beyond this many are counted, not kept. */
#define LAYER_MAX_WARNINGS 64

struct layer {
	struct blob *blob;
	/*
	 * What readers use: either the buffers below (an index built here) or
	 * memory given to layer_import (an index from the on-disk cache).
	 */
	const struct layer_entry *ents;
	uint32_t nents;
	const char *strs;
	size_t strs_len;
	const char *xat;
	size_t xat_len;
	struct buf entries; /* struct layer_entry[] */
	struct buf pool;    /* paths and link targets, NUL-terminated */
	struct buf xattrs;  /* per entry: u32 count, then (u32 nlen, name, NUL, u32 vlen, value) */
	struct strlist warnings;
};

#define add_warning(l, ...) strlist_addf(&(l)->warnings, LAYER_MAX_WARNINGS, __VA_ARGS__)

/* The type bits of the mode each type must have. */
static const mode_t layer_type_bits[] = {
    [LAYER_REG] = S_IFREG,      [LAYER_DIR] = S_IFDIR, [LAYER_SYMLINK] = S_IFLNK,
    [LAYER_HARDLINK] = S_IFREG, [LAYER_CHR] = S_IFCHR, [LAYER_BLK] = S_IFBLK,
    [LAYER_FIFO] = S_IFIFO,
};

#endif
