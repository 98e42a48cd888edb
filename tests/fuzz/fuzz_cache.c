/*
 * fuzz_cache: libFuzzer target for fs/cache, the on-disk layer index cache,
 * and through it layer_import and blob_index_import. The input is a cache
 * file: it is written where cache_load_layer looks for the key of one of two
 * small fixed layer blobs (a raw tar, and a gzip tar that expands past one
 * seek-point span), and loaded over that blob. A file that does not check out
 * must be refused with -EINVAL and removed; whatever loads must be safe to
 * use: every entry, string, xattr and warning is walked, files are read, and
 * merged and layer views are built over it and walked. It must also keep
 * the promises of layer.h (fuzz_check.h): clean paths, consistent types,
 * links with targets; the cache must refuse an index that breaks them.
 *
 * The first input byte holds flags: bit 0 picks the gzip blob; bit 2 makes
 * the rest a cached merged tree instead (below); bit 1 clear
 * means the harness repairs the header of the rest (file size, compression,
 * stored size, the blob index length and the CRC-32) and the version of the
 * layer index inside (learnt from a file the cache writes at start-up, so that
 * inputs outlive version bumps) before writing it, so that the fuzzer gets
 * past the checksum into the contents; with bit 1 set
 * the file is written as given, and the header checks themselves are fuzzed.
 * The header layout below mirrors struct cache_header in fs/cache.c.
 *
 * With bit 2, the rest is the cache file of the merged tree of the fixed
 * blob's layer stacked on itself (so that its whiteouts hide its own lower
 * copy), loaded over that layer as layer_index built it. Repairing fixes the
 * file size, the key (learnt from a file the cache writes at start-up) and
 * the CRC-32 (header layout: struct tree_cache_header in fs/cache.c). A
 * refused file must be removed; a loaded tree is walked whole (every node
 * stat'ed, read and looked up again under its parent by name, which must
 * find it), its hidden versions and stats read, and its deleted view built
 * and walked.
 *
 * FUZZ_CACHE_LAX=1 in the environment skips the promise checks, to look for
 * crashes past a known hole in the cache's validation.
 *
 * With FUZZ_CACHE_SEEDS=DIR in the environment, the target first writes
 * valid cache files of both blobs (with their flag byte) into DIR.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "blob.h"
#include "cache.h"
#include "fuzz_check.h"
#include "fuzz_util.h"
#include "layer.h"
#include "tree.h"

/* Mirror of fs/cache.c's header (version 1). */
struct fz_cache_header {
	char magic[8];
	uint32_t version;
	uint32_t compression;
	uint64_t stored_size;
	uint64_t total_len;
	uint64_t layer_len;
	uint64_t blob_len;
	struct blob_digests digests;
	uint32_t checksum;
	uint32_t pad;
};
_Static_assert(sizeof(struct fz_cache_header) == 136, "cache header mirror");

/* Mirror of fs/cache.c's tree file header (version 2); the key text follows, padded to 8. */
struct fz_tree_header {
	char magic[8];
	uint32_t version;
	uint32_t checksum;
	uint64_t total_len;
	uint64_t key_len;
};
_Static_assert(sizeof(struct fz_tree_header) == 32, "tree header mirror");

struct fixed {
	struct fbuf stored;
	char key[72];
	int fd;
	struct blob *blob; /* for the tree inputs: the blob and its built index */
	struct layer *layer;
	unsigned char *tree_key; /* the key of its stacked tree's file, padded to 8 */
	uint64_t tree_key_len;
	size_t tree_key_space;
};

static struct fixed blobs[2];
static char *dir;
static unsigned char readbuf[4096];
static int lax;
static uint32_t layer_version; /* of the layer index after the header, as written now */

static void make_raw(struct fbuf *t)
{
	static const char pax[] = "28 SCHILY.xattr.user.fuzz=1\n";

	tar_add(t, "app/", '5', NULL, 0, NULL);
	tar_add(t, "app/config", '0', "password=hunter2\n", 17, NULL);
	tar_add(t, "app/link", '2', NULL, 0, "config");
	tar_add(t, "app/hard", '1', NULL, 0, "app/config");
	tar_add(t, "PaxHeaders/app/x", 'x', pax, sizeof(pax) - 1, NULL);
	tar_add(t, "app/x", '0', "x\n", 2, NULL);
	tar_add(t, "app/.wh.old", '0', NULL, 0, NULL);
	tar_add(t, "opq/.wh..wh..opq", '0', NULL, 0, NULL);
	tar_end(t);
}

static void make_gzip(struct fbuf *out)
{
	struct fbuf t = {0};
	size_t big = (1u << 20) + 300000;
	char *text = malloc(big);
	z_stream z = {0};

	if (!text)
		fz_die("malloc");
	for (size_t i = 0; i < big; i++)
		text[i] = (char)("abcdefghij\n"[i % 11] + (i / 4099) % 7);
	tar_add(&t, "big/", '5', NULL, 0, NULL);
	tar_add(&t, "big/file", '0', text, big, NULL);
	tar_add(&t, "big/small", '0', "tail\n", 5, NULL);
	tar_end(&t);
	free(text);
	if (deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		fz_die("deflateInit2");
	out->cap = deflateBound(&z, t.len);
	out->data = malloc(out->cap);
	if (!out->data)
		fz_die("malloc");
	z.next_in = t.data;
	z.avail_in = (uInt)t.len;
	z.next_out = out->data;
	z.avail_out = (uInt)out->cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		fz_die("deflate");
	out->len = z.total_out;
	deflateEnd(&z);
	fb_free(&t);
}

static struct blob *open_blob(int which)
{
	struct blob *b = NULL;

	if (blob_open(blobs[which].fd, 0, blobs[which].stored.len, NULL, &b, NULL) < 0)
		fz_die("blob_open of a fixed blob");
	return b;
}

/* Indexes fixed blob `which` and stores it in the cache at dir; returns the file's path. */
static char *store_seed(int which)
{
	struct blob *b = open_blob(which);
	struct layer *l = NULL;
	struct cache *c = NULL;
	struct blob_digests d;
	struct err e = {0};
	char *path;

	if (layer_index(b, "fixed", NULL, &l, &d, &e) < 0 || cache_open(dir, &c, &e) < 0 ||
	    cache_store_layer(c, blobs[which].key, l, b, &d, &e) < 0) {
		fprintf(stderr, "fuzz_cache: cannot make a seed: %s\n", e.msg);
		abort();
	}
	path = cache_path(c, blobs[which].key);
	cache_free(c);
	layer_free(l);
	blob_free(b);
	return path;
}

static void remove_dir(void)
{
	rmdir(dir);
}

/* Reads a whole file into f (appending). */
static void slurp(const char *path, struct fbuf *f)
{
	FILE *in = fopen(path, "rb");
	char chunk[65536];
	size_t n;

	if (!in)
		fz_die(path);
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		fb_add(f, chunk, n);
	fclose(in);
}

/*
 * Indexes fixed blob `which` for the tree inputs and stores the merged tree
 * of its layer stacked on itself; returns the tree file's path.
 */
static char *store_tree_seed(int which)
{
	struct fixed *fx = &blobs[which];
	struct layer *stack[2];
	const char *digests[2] = {fx->key, fx->key};
	struct tree *t = NULL;
	struct cache *c = NULL;
	struct err e = {0};
	char *path;

	if (!fx->layer) {
		fx->blob = open_blob(which);
		if (layer_index(fx->blob, "fixed", NULL, &fx->layer, NULL, &e) < 0)
			fz_die("indexing a fixed blob");
	}
	stack[0] = stack[1] = fx->layer;
	if (tree_build_merged(stack, 2, &t, &e) < 0 || cache_open(dir, &c, &e) < 0 ||
	    cache_store_tree(c, digests, 2, t, &e) < 0) {
		fprintf(stderr, "fuzz_cache: cannot make a tree seed: %s\n", e.msg);
		abort();
	}
	path = cache_tree_path(c, digests, 2);
	cache_free(c);
	tree_free(t);
	return path;
}

static void free_fixed(void)
{
	for (int i = 0; i < 2; i++) {
		layer_free(blobs[i].layer);
		blob_free(blobs[i].blob);
		free(blobs[i].tree_key);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FUZZ_CACHE_SEEDS");

	(void)argc;
	(void)argv;
	lax = getenv("FUZZ_CACHE_LAX") && *getenv("FUZZ_CACHE_LAX") == '1';
	make_raw(&blobs[0].stored);
	make_gzip(&blobs[1].stored);
	for (int i = 0; i < 2; i++) {
		blobs[i].fd =
		    fz_memfd("fuzz_cache_blob", blobs[i].stored.data, blobs[i].stored.len);
		fz_digest(blobs[i].stored.data, blobs[i].stored.len, blobs[i].key, NULL);
	}
	dir = fz_tempdir("fuzz-cache");
	atexit(remove_dir);
	{
		/* the layer index starts with 8 bytes of magic, then its version */
		char *path = store_seed(0);
		FILE *in = fopen(path, "rb");
		unsigned char head[sizeof(struct fz_cache_header) + 12];

		if (!in || fread(head, 1, sizeof(head), in) != sizeof(head))
			fz_die("reading a fresh cache file");
		fclose(in);
		memcpy(&layer_version, head + sizeof(struct fz_cache_header) + 8, 4);
		unlink(path);
		free(path);
	}
	atexit(free_fixed);
	for (int i = 0; i < 2; i++) {
		char *path = store_tree_seed(i);
		struct fbuf f = {0};

		slurp(path, &f);
		if (f.len < sizeof(struct fz_tree_header))
			fz_die("reading a fresh tree file");
		memcpy(&blobs[i].tree_key_len, f.data + offsetof(struct fz_tree_header, key_len),
		       8);
		blobs[i].tree_key_space = (blobs[i].tree_key_len + 7) & ~(uint64_t)7;
		if (f.len < sizeof(struct fz_tree_header) + blobs[i].tree_key_space ||
		    !(blobs[i].tree_key = malloc(blobs[i].tree_key_space)))
			fz_die("reading a fresh tree file's key");
		memcpy(blobs[i].tree_key, f.data + sizeof(struct fz_tree_header),
		       blobs[i].tree_key_space);
		if (seeds && *seeds) {
			char name[32];
			unsigned char flag = (unsigned char)(4 | i);
			struct fbuf g = {0};

			fb_add(&g, &flag, 1);
			fb_add(&g, f.data, f.len);
			snprintf(name, sizeof(name), "tree-%s", i ? "gzip" : "raw");
			fz_write_file(seeds, name, g.data, g.len);
			g.data[0] |= 2;
			snprintf(name, sizeof(name), "tree-%s-asis", i ? "gzip" : "raw");
			fz_write_file(seeds, name, g.data, g.len);
			fb_free(&g);
		}
		fb_free(&f);
		unlink(path);
		free(path);
	}
	if (seeds && *seeds) {
		for (int i = 0; i < 2; i++) {
			char *path = store_seed(i), name[32];
			struct fbuf f = {0};
			unsigned char flag = (unsigned char)i;
			FILE *in = fopen(path, "rb");
			char chunk[65536];
			size_t n;

			if (!in)
				fz_die(path);
			fb_add(&f, &flag, 1);
			while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
				fb_add(&f, chunk, n);
			fclose(in);
			snprintf(name, sizeof(name), "cache-%s", i ? "gzip" : "raw");
			fz_write_file(seeds, name, f.data, f.len);
			/* the same file unrepaired */
			f.data[0] |= 2;
			snprintf(name, sizeof(name), "cache-%s-asis", i ? "gzip" : "raw");
			fz_write_file(seeds, name, f.data, f.len);
			fb_free(&f);
			unlink(path);
			free(path);
		}
	}
	return 0;
}

/* Makes the header of a file of len bytes agree with the blob and the body. */
static void repair(unsigned char *file, size_t len, const struct fixed *fx, struct blob *b)
{
	struct fz_cache_header h;

	if (len < sizeof(h))
		return;
	memcpy(&h, file, sizeof(h));
	if (len >= sizeof(h) + 12)
		memcpy(file + sizeof(h) + 8, &layer_version, 4);
	h.total_len = len;
	h.compression = (uint32_t)blob_compression(b);
	h.stored_size = fx->stored.len;
	if (h.layer_len <= len - sizeof(h))
		h.blob_len = len - sizeof(h) - h.layer_len;
	h.checksum = (uint32_t)crc32_z(crc32(0, NULL, 0), file + sizeof(h), len - sizeof(h));
	memcpy(file, &h, sizeof(h));
}

static void walk_tree(const struct tree *t)
{
	struct err e = {0};

	for (uint32_t i = 0; i < tree_node_count(t); i++) {
		struct tree_attr a;
		size_t len;

		tree_stat(t, i, &a);
		tree_name(t, i, &len);
		if (S_ISREG(a.mode))
			tree_read(t, i, readbuf, sizeof(readbuf), a.size > 64 ? a.size - 64 : 0,
			          &e);
	}
}

static void use_layer(struct layer *l)
{
	struct layer *stack[1] = {l};
	struct tree *t = NULL;
	struct err e = {0};

	for (uint32_t i = 0; i < layer_count(l); i++) {
		const struct layer_entry *en = layer_entry(l, i);
		uint32_t cur = 0, vsize;
		const char *xn;
		const void *xv;

		(void)strlen(layer_str(l, en->path));
		if (en->link != LAYER_NONE)
			(void)strlen(layer_str(l, en->link));
		for (int k = 0; k < 64 && layer_xattr_next(l, en, &cur, &xn, &xv, &vsize) == 1; k++)
			(void)strlen(xn);
		if (en->type == LAYER_REG && i < 16)
			layer_read(l, en, readbuf, sizeof(readbuf), 0, &e);
	}
	for (uint32_t i = 0; i < layer_warning_count(l); i++)
		(void)strlen(layer_warning(l, i));
	if (tree_build_merged(stack, 1, &t, &e) == 0)
		walk_tree(t);
	tree_free(t);
	t = NULL;
	if (tree_build_layer(stack, 0, &t, &e) == 0)
		walk_tree(t);
	tree_free(t);
}

/* Makes a tree file's header agree with its length, its key and its body. */
static void repair_tree(unsigned char *file, size_t len, const struct fixed *fx)
{
	struct fz_tree_header h;

	if (len < sizeof(h) + fx->tree_key_space)
		return;
	memcpy(&h, file, sizeof(h));
	h.total_len = len;
	h.key_len = fx->tree_key_len;
	memcpy(file + sizeof(h), fx->tree_key, fx->tree_key_space);
	h.checksum = (uint32_t)crc32_z(crc32(0, NULL, 0), file + sizeof(h), len - sizeof(h));
	memcpy(file, &h, sizeof(h));
}

/* Everything a mount does with a merged tree; a node not found by its own name aborts. */
static void use_tree(const struct tree *t)
{
	uint32_t n = tree_node_count(t);
	struct tree *deleted = NULL;
	struct err e = {0};

	for (uint32_t i = 0; i < n; i++) {
		size_t len;
		const char *name = tree_name(t, i, &len);
		uint32_t first, count, p = tree_parent(t, i);

		tree_children(t, i, &first, &count);
		if (i && (p >= i || tree_lookup(t, p, name, len) != i)) {
			fprintf(stderr,
			        "fuzz_cache: mapped tree node %u not found under parent %u\n", i,
			        p);
			abort();
		}
		if (count && (first >= n || count > n - first)) {
			fprintf(stderr, "fuzz_cache: node %u: children %u+%u of %u\n", i, first,
			        count, n);
			abort();
		}
		tree_entry(t, i, NULL);
	}
	walk_tree(t);
	for (uint32_t i = 0; i < tree_hidden_count(t); i++)
		(void)tree_hidden(t, i)->how;
	for (uint32_t i = 0; i < 3; i++) {
		struct tree_layer_stats st;

		tree_layer_stats(t, i, &st);
	}
	for (uint32_t i = 0; i < tree_warning_count(t); i++)
		(void)strlen(tree_warning(t, i));
	tree_resolve(t, "app/config");
	if (tree_build_deleted(t, &deleted, &e) == 0) {
		walk_tree(deleted);
		for (uint32_t i = 0; i < tree_node_count(deleted); i++)
			tree_shown_hidden(deleted, i);
	}
	tree_free(deleted);
}

static int tree_input(const uint8_t *data, size_t size)
{
	const struct fixed *fx = &blobs[data[0] & 1];
	struct layer *stack[2] = {fx->layer, fx->layer};
	const char *digests[2] = {fx->key, fx->key};
	struct cache *c = NULL;
	struct tree *t = NULL;
	struct err e = {0};
	unsigned char *file = malloc(size);
	char *path;
	int r;

	if (!file)
		fz_die("malloc");
	memcpy(file, data + 1, size - 1);
	if (!(data[0] & 2))
		repair_tree(file, size - 1, fx);
	if (cache_open(dir, &c, &e) < 0 || !(path = cache_tree_path(c, digests, 2)))
		fz_die("cache_open");
	fz_write_file(dir, strrchr(path, '/') + 1, file, size - 1);
	free(file);
	r = cache_load_tree(c, digests, stack, 2, &t, &e);
	if (r == 0) {
		use_tree(t);
		tree_free(t);
	} else if (r == -EINVAL && access(path, F_OK) == 0) {
		fprintf(stderr, "fuzz_cache: refused tree file was not removed (%s)\n", e.msg);
		abort();
	}
	unlink(path);
	free(path);
	cache_free(c);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fixed *fx;
	struct cache *c = NULL;
	struct blob *b;
	struct layer *l = NULL;
	struct blob_digests d;
	struct err e = {0};
	unsigned char *file;
	char *path;
	int r;

	if (size < 1)
		return 0;
	if (data[0] & 4)
		return tree_input(data, size);
	fx = &blobs[data[0] & 1];
	b = open_blob(data[0] & 1);
	file = malloc(size);
	if (!file)
		fz_die("malloc");
	memcpy(file, data + 1, size - 1);
	if (!(data[0] & 2))
		repair(file, size - 1, fx, b);
	if (cache_open(dir, &c, &e) < 0)
		fz_die("cache_open");
	path = cache_path(c, fx->key);
	fz_write_file(dir, strrchr(path, '/') + 1, file, size - 1);
	free(file);
	r = cache_load_layer(c, fx->key, b, &l, &d, &e);
	if (r == 0) {
		if (!lax)
			fz_check_layer(l, "fuzz_cache: the cache accepted a corrupt index");
		use_layer(l);
		layer_free(l);
	} else if (r == -EINVAL && access(path, F_OK) == 0) {
		fprintf(stderr, "fuzz_cache: refused cache file was not removed (%d: %s)\n", r,
		        e.msg);
		abort();
	}
	unlink(path);
	free(path);
	cache_free(c);
	blob_free(b);
	return 0;
}
