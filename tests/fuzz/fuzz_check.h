/*
 * fuzz_check.h: the promises of layer.h about an index, checked on any layer
 * a fuzz target gets (from layer_index, or from the on-disk cache, which must
 * refuse what it cannot vouch for): every path is cleaned (not empty, no
 * leading or trailing '/', no empty, "." or ".." component), the type is
 * known and agrees with the type bits of the mode, symlinks and hardlinks
 * have a target, a hardlink's target is cleaned too, and every string and xattr lies inside the
 * index. A broken promise aborts with a message naming the entry: the tree code relies on each of
 * them.
 */
#ifndef STRATA_FUZZ_CHECK_H
#define STRATA_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layer.h"

static inline int fz_path_clean(const char *p)
{
	if (!*p || *p == '/')
		return 0;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!slash)
			return 1;
		p = slash + 1;
	}
}

static inline __attribute__((noreturn)) void fz_broken(const char *who, uint32_t i,
                                                       const char *path, const char *what)
{
	fprintf(stderr, "%s: entry %u \"%.200s\": %s\n", who, i, path ? path : "?", what);
	abort();
}

static inline void fz_check_layer(const struct layer *l, const char *who)
{
	static const mode_t bits[] = {S_IFREG, S_IFDIR, S_IFLNK, S_IFREG,
	                              S_IFCHR, S_IFBLK, S_IFIFO};

	for (uint32_t i = 0; i < layer_count(l); i++) {
		const struct layer_entry *e = layer_entry(l, i);
		const char *path;

		if (e->type > LAYER_FIFO)
			fz_broken(who, i, NULL, "unknown type");
		path = layer_str(l, e->path);
		if (!fz_path_clean(path))
			fz_broken(who, i, path, "path not cleaned");
		if ((e->mode & S_IFMT) != bits[e->type])
			fz_broken(who, i, path, "mode type bits disagree with the type");
		if ((e->type == LAYER_SYMLINK || e->type == LAYER_HARDLINK) &&
		    e->link == LAYER_NONE)
			fz_broken(who, i, path, "link without a target");
		if (e->type == LAYER_HARDLINK && !fz_path_clean(layer_str(l, e->link)))
			fz_broken(who, i, path, "hardlink target not cleaned");
	}
}

#endif
