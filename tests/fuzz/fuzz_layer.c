/*
 * fuzz_layer: libFuzzer target for fs/layer and fs/tree. The input is a
 * layer blob (a raw tar, or a tar compressed with gzip or zstd): it is put in
 * an anonymous file, opened as a blob, indexed with the default layer limits,
 * and then shown every way a mount shows a layer: the merged view of the
 * layer alone and of the layer stacked on itself (so that its whiteouts and
 * opaque markers hide its own lower copy), the layer's own view, and the
 * deleted view of the two-layer stack. Every node of every view is stat'ed,
 * looked up again by name under its parent, and read (up to 4 KiB) when it
 * is a regular file; the layer's warnings, entries, strings and xattrs are
 * walked too, and the index must keep the promises of layer.h
 * (fuzz_check.h: clean paths, consistent types). Nothing may crash, leak
 * or hang; errors are fine. A lookup that does not find a node under its
 * own name is a broken tree and aborts.
 *
 * Inputs of odd size also go through the file hook of the indexing pass
 * (layer_limits.file, what strata scan reads files with): every regular file
 * it is handed must be a regular entry of the finished index with the same
 * size, and the bytes it was handed must be the bytes layer_read gives.
 *
 * The blob limits are small (8 MiB out) so that decompression bombs end
 * fast; the layer limits are the defaults.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "blob.h"
#include "fuzz_check.h"
#include "fuzz_util.h"
#include "layer.h"
#include "tree.h"

static unsigned char readbuf[4096];

/* What the file hook was handed, for the first TAPPED files. */
#define TAPPED  64
#define TAP_MAX (64u << 10)
static struct {
	uint32_t entry;
	uint64_t size;
	int with_data;
	uLong crc;
} tapped[TAPPED];
static unsigned ntapped;
static unsigned char tapbuf[TAP_MAX];

static int on_file(void *opaque, uint32_t entry, const char *path, const void *data, uint64_t size)
{
	(void)opaque;
	(void)strlen(path);
	if (data && size > TAP_MAX) {
		fprintf(stderr, "fuzz_layer: the hook got %llu bytes, over its bound\n",
		        (unsigned long long)size);
		abort();
	}
	if (ntapped < TAPPED) {
		tapped[ntapped].entry = entry;
		tapped[ntapped].size = size;
		tapped[ntapped].with_data = data != NULL;
		tapped[ntapped].crc = data ? crc32(0, data, (uInt)size) : 0;
		ntapped++;
	}
	return 0;
}

/* The hook's files against the finished index. */
static void check_tapped(const struct layer *l)
{
	struct err e = {0};

	for (unsigned i = 0; i < ntapped; i++) {
		const struct layer_entry *en;

		if (tapped[i].entry >= layer_count(l) ||
		    (en = layer_entry(l, tapped[i].entry))->type != LAYER_REG ||
		    en->size != tapped[i].size) {
			fprintf(stderr, "fuzz_layer: hooked file %u is no such regular entry\n",
			        tapped[i].entry);
			abort();
		}
		if (tapped[i].with_data &&
		    (layer_read(l, en, tapbuf, en->size, 0, &e) != (ssize_t)en->size ||
		     crc32(0, tapbuf, (uInt)en->size) != tapped[i].crc)) {
			fprintf(stderr,
			        "fuzz_layer: hooked file %u: bytes differ from layer_read\n",
			        tapped[i].entry);
			abort();
		}
	}
}

static void walk_tree(const struct tree *t, int check_lookup)
{
	uint32_t n = tree_node_count(t);
	struct err e = {0};

	for (uint32_t i = 0; i < n; i++) {
		struct tree_attr a;
		const struct layer *l = NULL;
		size_t len;
		const char *name = tree_name(t, i, &len);
		uint32_t first, count;

		tree_stat(t, i, &a);
		tree_entry(t, i, &l);
		if (S_ISDIR(a.mode)) {
			tree_children(t, i, &first, &count);
			if (count && (first >= n || count > n - first)) {
				fprintf(stderr, "fuzz_layer: node %u: children %u+%u of %u nodes\n",
				        i, first, count, n);
				abort();
			}
		}
		if (i && check_lookup) {
			uint32_t p = tree_parent(t, i);

			if (p >= n || tree_lookup(t, p, name, len) != i) {
				fprintf(
				    stderr,
				    "fuzz_layer: node %u \"%.*s\" not found under its parent %u\n",
				    i, (int)len, name, p);
				abort();
			}
		}
		if (S_ISREG(a.mode)) {
			tree_read(t, i, readbuf, sizeof(readbuf), 0, &e);
			if (a.size > sizeof(readbuf))
				tree_read(t, i, readbuf, sizeof(readbuf), a.size - 100, &e);
		}
	}
	for (uint32_t i = 0; i < tree_warning_count(t); i++)
		(void)strlen(tree_warning(t, i));
	tree_resolve(t, "etc/passwd");
	tree_resolve(t, "a/../b");
}

static void walk_layer(const struct layer *l)
{
	struct err e = {0};

	for (uint32_t i = 0; i < layer_count(l); i++) {
		const struct layer_entry *en = layer_entry(l, i);
		uint32_t cur = 0, vsize;
		const char *xn;
		const void *xv;

		(void)strlen(layer_str(l, en->path));
		if (en->link != LAYER_NONE)
			(void)strlen(layer_str(l, en->link));
		while (layer_xattr_next(l, en, &cur, &xn, &xv, &vsize) == 1)
			(void)strlen(xn);
		if (en->type == LAYER_REG && i < 64)
			layer_read(l, en, readbuf, sizeof(readbuf), 0, &e);
	}
	for (uint32_t i = 0; i < layer_warning_count(l); i++)
		(void)strlen(layer_warning(l, i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blob_limits blim = {
	    .max_output = 8u << 20, .max_expansion = 500, .zstd_window_log_max = 22};
	struct layer_limits llim;
	struct blob *b = NULL;
	struct layer *l = NULL;
	struct tree *merged1 = NULL, *merged2 = NULL, *own = NULL, *deleted = NULL;
	struct blob_digests dg;
	struct err e = {0};
	int fd = fz_memfd("fuzz_layer", data, size);

	layer_limits_default(&llim);
	ntapped = 0;
	if (size & 1) {
		llim.file = on_file;
		llim.file_max = TAP_MAX;
	}
	if (blob_open(fd, 0, size, &blim, &b, &e) < 0)
		goto out;
	if (layer_index(b, "layer 00 fuzz", &llim, &l, &dg, &e) < 0)
		goto out;
	fz_check_layer(l, "fuzz_layer: layer_index broke a promise of layer.h");
	check_tapped(l);
	walk_layer(l);

	struct layer *stack[2] = {l, l};

	if (tree_build_merged(stack, 1, &merged1, &e) == 0)
		walk_tree(merged1, 1);
	if (tree_build_merged(stack, 2, &merged2, &e) == 0) {
		walk_tree(merged2, 1);
		for (uint32_t i = 0; i < tree_hidden_count(merged2); i++)
			(void)tree_hidden(merged2, i)->how;
		for (uint32_t i = 0; i < 3; i++) {
			struct tree_layer_stats st;

			tree_layer_stats(merged2, i, &st);
		}
		if (tree_build_deleted(merged2, &deleted, &e) == 0) {
			walk_tree(deleted, 1);
			for (uint32_t i = 0; i < tree_node_count(deleted); i++)
				tree_shown_hidden(deleted, i);
		}
	}
	if (tree_build_layer(stack, 1, &own, &e) == 0)
		walk_tree(own, 1);
out:
	tree_free(deleted);
	tree_free(own);
	tree_free(merged2);
	tree_free(merged1);
	layer_free(l);
	blob_free(b);
	close(fd);
	return 0;
}
