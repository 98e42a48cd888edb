/*
 * Unit tests of the cached merged tree (tree_export/tree_import in
 * fs/tree_io.c, cache_store_tree/cache_load_tree in fs/cache.c): a stored
 * tree maps back into the same views (every node's name, place and
 * attributes, hardlinks, hidden versions, stats, warnings, and the deleted
 * view built from it); a flipped byte is refused and the file removed; so
 * are files whose checksum is right but whose contents are hostile (a parent
 * loop, an entry out of range, a name with '/', siblings out of order, a
 * hardlink record missing); a tree of other layer indexes or other digests
 * is never used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "blob.h"
#include "buf.h"
#include "cache.h"
#include "layer.h"
#include "mktar.h"
#include "tap.h"
#include "tree.h"

#define D0 "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define D1 "sha256:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

/* Mirrors of the on-disk layouts (fs/cache.c, fs/tree_io.c, fs/tree_int.h). */
#define FILE_HEAD  32 /* struct tree_cache_header; then the key, padded to 8 */
#define TREE_HEAD  72 /* struct tree_file_header */
#define H_NNODES   32 /* offsets of its counts */
#define H_NDIRS    36
#define H_NLINKS   40
#define H_NHIDDEN  44
#define NODE_SIZE  16 /* struct tnode */
#define NODE_ENTRY 4  /* offsets inside a node */
#define NODE_LAYER 8
#define NODE_DIR   12
#define DIR_SIZE   12 /* struct tdir: node, first, count */

static struct layer *layers[2];
static struct blob *blobs[2];

static void add_layer(int i, const struct ent *e, int n)
{
	struct err err = {0};
	size_t used;
	int fd = mktar(e, n, 0, &used);

	if (blob_open(fd, 0, used, NULL, &blobs[i], &err) < 0 ||
	    layer_index(blobs[i], "test", NULL, &layers[i], NULL, &err) < 0) {
		printf("# layer setup failed: %s\n", err.msg);
		abort();
	}
}

/* Every reader of tree.h gives the same answers for a and b. */
static int same_tree(const struct tree *a, const struct tree *b)
{
	if (tree_node_count(a) != tree_node_count(b) ||
	    tree_hidden_count(a) != tree_hidden_count(b) ||
	    tree_warning_count(a) != tree_warning_count(b))
		return 0;
	for (uint32_t i = 0; i < tree_node_count(a); i++) {
		struct tree_attr x, y;
		size_t lx, ly;
		const char *nx = tree_name(a, i, &lx), *ny = tree_name(b, i, &ly);
		uint32_t fx, cx, fy, cy;

		tree_stat(a, i, &x);
		tree_stat(b, i, &y);
		tree_children(a, i, &fx, &cx);
		tree_children(b, i, &fy, &cy);
		if (lx != ly || memcmp(nx, ny, lx) || tree_parent(a, i) != tree_parent(b, i) ||
		    cx != cy || (cx && fx != fy) || x.ino != y.ino || x.layer != y.layer ||
		    x.entry != y.entry || x.data_layer != y.data_layer ||
		    x.data_entry != y.data_entry || x.mode != y.mode || x.uid != y.uid ||
		    x.gid != y.gid || x.nlink != y.nlink || x.size != y.size ||
		    x.mtime != y.mtime || x.mtime_nsec != y.mtime_nsec || x.rdev != y.rdev)
			return 0;
		if (i && tree_lookup(b, tree_parent(b, i), ny, ly) != i)
			return 0;
	}
	for (uint32_t i = 0; i < tree_hidden_count(a); i++)
		if (memcmp(tree_hidden(a, i), tree_hidden(b, i), sizeof(struct tree_hidden)))
			return 0;
	for (uint32_t i = 0; i < tree_warning_count(a); i++)
		if (strcmp(tree_warning(a, i), tree_warning(b, i)))
			return 0;
	for (uint32_t l = 0; l < 3; l++) {
		struct tree_layer_stats sa, sb;

		tree_layer_stats(a, l, &sa);
		tree_layer_stats(b, l, &sb);
		if (sa.added != sb.added || sa.changed != sb.changed || sa.hidden != sb.hidden ||
		    sa.hidden_bytes != sb.hidden_bytes)
			return 0;
	}
	return 1;
}

static int same_deleted(const struct tree *a, const struct tree *b)
{
	struct tree *da = NULL, *db = NULL;
	int ok = tree_build_deleted(a, &da, NULL) == 0 && tree_build_deleted(b, &db, NULL) == 0 &&
	         same_tree(da, db);

	for (uint32_t i = 0; ok && i < tree_node_count(da); i++) {
		const struct tree_hidden *x = tree_shown_hidden(da, i),
		                         *y = tree_shown_hidden(db, i);

		ok = (!x && !y) || (x && y && !memcmp(x, y, sizeof(*x)));
	}
	tree_free(da);
	tree_free(db);
	return ok && tree_node_count(a) > 1;
}

static void put32(struct buf *b, size_t off, uint32_t v)
{
	memcpy(b->data + off, &v, 4);
}

static uint32_t get32(const struct buf *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b->data + off, 4);
	return v;
}

/* tree_import of an exported tree with one change; 1 when refused. */
static int refused(const struct buf *good, void (*change)(struct buf *, size_t nodes))
{
	struct buf b = BUF_INIT;
	struct tree *t = NULL;
	size_t nodes = TREE_HEAD + 8 + 2 * 24; /* header, 2 counts (padded), 2 stats */
	int r;

	buf_append(&b, good->data, good->len);
	change(&b, nodes);
	r = tree_import(layers, 2, b.data, b.len, &t, NULL);
	tree_free(t);
	buf_release(&b);
	return r == -EINVAL;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Where the runs of children start: right after the nodes. */
static size_t dirs_at(const struct buf *b, size_t nodes)
{
	return nodes + pad8(get32(b, H_NNODES) * NODE_SIZE);
}

static void two_nodes_one_run(struct buf *b, size_t nodes)
{
	put32(b, nodes + 1 * NODE_SIZE + NODE_DIR, 0); /* node 1 claims the root's children */
}

static void run_owned_by_a_child(struct buf *b, size_t nodes)
{
	size_t d1 = dirs_at(b, nodes) + DIR_SIZE; /* the second run: a child of the root's */
	uint32_t first = get32(b, d1 + 4), owner = get32(b, d1);

	/* its owner moved to one of its own children (which then names it back) */
	put32(b, nodes + owner * NODE_SIZE + NODE_DIR, 0xffffffffu);
	put32(b, nodes + first * NODE_SIZE + NODE_DIR, 1);
	put32(b, d1, first);
}

static void runs_overlap(struct buf *b, size_t nodes)
{
	size_t d1 = dirs_at(b, nodes) + DIR_SIZE;

	put32(b, d1 + 4, get32(b, d1 + 4) - 1);
}

static void entry_out_of_range(struct buf *b, size_t nodes)
{
	put32(b, nodes + 1 * NODE_SIZE + NODE_ENTRY, 1000);
}

static void name_with_slash(struct buf *b, size_t nodes)
{
	/* the pool follows nodes, runs, hardlink records and hidden versions */
	size_t pool = dirs_at(b, nodes) + pad8(get32(b, H_NDIRS) * DIR_SIZE) +
	              pad8(get32(b, H_NLINKS) * 20) + pad8(get32(b, H_NHIDDEN) * 16);

	b->data[pool + get32(b, nodes + NODE_SIZE) + 1] = '/'; /* node 1: "bin" -> "b/n" */
}

static void siblings_swapped(struct buf *b, size_t nodes)
{
	/* the root's first two children change names */
	uint32_t n1 = get32(b, nodes + NODE_SIZE), n2 = get32(b, nodes + 2 * NODE_SIZE);
	uint16_t l1, l2;

	memcpy(&l1, b->data + nodes + NODE_SIZE + 10, 2);
	memcpy(&l2, b->data + nodes + 2 * NODE_SIZE + 10, 2);
	put32(b, nodes + NODE_SIZE, n2);
	put32(b, nodes + 2 * NODE_SIZE, n1);
	memcpy(b->data + nodes + NODE_SIZE + 10, &l2, 2);
	memcpy(b->data + nodes + 2 * NODE_SIZE + 10, &l1, 2);
}

static void link_flag_dropped(struct buf *b, size_t nodes)
{
	/* the first linked node loses its flag: its record no longer has a node */
	for (size_t i = 0;; i++) {
		uint16_t layer;

		memcpy(&layer, b->data + nodes + i * NODE_SIZE + NODE_LAYER, 2);
		if (layer & 0x8000) {
			layer &= 0x7fff;
			memcpy(b->data + nodes + i * NODE_SIZE + NODE_LAYER, &layer, 2);
			return;
		}
	}
}

static void children_past_end(struct buf *b, size_t nodes)
{
	size_t last = dirs_at(b, nodes) + (get32(b, H_NDIRS) - 1) * DIR_SIZE;

	put32(b, last + 8, get32(b, last + 8) + 100);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* The cache file of the tree, read whole; its name is the only *.tree in dir. */
static char *tree_file(const char *dir, struct buf *out)
{
	char cmd[256], *path = NULL;
	size_t n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls %s/tree-*.tree 2>/dev/null", dir);
	p = popen(cmd, "r");
	if (getline(&path, &n, p) < 0) {
		free(path);
		pclose(p);
		return NULL;
	}
	pclose(p);
	path[strcspn(path, "\n")] = '\0';
	out->len = 0;
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t got;

	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, got);
	fclose(f);
	return path;
}

int main(void)
{
	struct ent l0[] = {{"etc/", 'd', NULL, 0755},          {"etc/passwd", 'f', "root:x:0:0", 0},
	                   {"etc/hosts", 'f', "127.0.0.1", 0}, {"bin/sh", 'f', "#!", 0755},
	                   {"bin/hard", 'h', "bin/sh", 0},     {"lnk", 'l', "/etc/passwd", 0},
	                   {"dir/a/b", 'f', "b", 0},           {"gone/x", 'f', "x", 0}};
	struct ent l1[] = {
	    {"etc/passwd", 'f', "root:x:0:0:new", 0}, {".wh.gone", 'f', "", 0},
	    {"dir/.wh..wh..opq", 'f', "", 0},         {"dir/c", 'f', "c", 0},
	    {"bin/hard2", 'h', "bin/sh", 0},          {"broken", 'h', "no/such/file", 0}};
	const char *digests[2] = {D0, D1}, *swapped[2] = {D1, D0};
	char dir[] = "/tmp/strata-treecache-XXXXXX";
	struct tree *built = NULL, *loaded = NULL;
	struct buf exp = BUF_INIT, file = BUF_INIT;
	struct cache *c;
	struct err err = {0};
	char *path;
	int r;

	if (!mkdtemp(dir) || cache_open(dir, &c, &err) < 0)
		abort();
	add_layer(0, l0, 8);
	add_layer(1, l1, 6);
	CHECK(tree_build_merged(layers, 2, &built, &err) == 0, "merged view builds: %s", err.msg);
	CHECK(tree_warning_count(built) == 1, "with one warning (the broken hardlink)");
	CHECK(cache_load_tree(c, digests, layers, 2, &loaded, NULL) == -ENOENT,
	      "nothing cached yet");
	CHECK(cache_store_tree(c, digests, 2, built, &err) == 0, "stored: %s", err.msg);
	r = cache_load_tree(c, digests, layers, 2, &loaded, &err);
	CHECK(r == 0, "loads back: %s", err.msg);
	CHECK(r == 0 && same_tree(built, loaded),
	      "the mapped tree answers like the built one: names, places, attributes, hardlinks, "
	      "hidden versions, stats, warnings");
	CHECK(r == 0 && same_deleted(built, loaded), "and so does the deleted view built from it");
	tree_free(loaded);
	loaded = NULL;
	CHECK(cache_load_tree(c, swapped, layers, 2, &loaded, NULL) == -ENOENT,
	      "the layers in another order find no tree");
	CHECK(cache_load_tree(c, digests, layers, 1, &loaded, NULL) == -ENOENT,
	      "nor does a prefix of them");

	/* the same digests over other layer indexes: refused, never misread */
	{
		struct layer *other[2] = {layers[1], layers[0]};

		CHECK(cache_load_tree(c, digests, other, 2, &loaded, NULL) == -EINVAL,
		      "a tree of other layer indexes is refused");
		path = tree_file(dir, &file);
		CHECK(path == NULL, "and removed");
		free(path);
	}

	/* a file that another user could have written */
	cache_store_tree(c, digests, 2, built, NULL);
	path = tree_file(dir, &file);
	chmod(path, 0666);
	CHECK(cache_load_tree(c, digests, layers, 2, &loaded, &err) == -EINVAL &&
	          strstr(err.msg, "private"),
	      "a world-writable tree file is refused: %s", err.msg);
	free(path);

	/* a flipped byte */
	cache_store_tree(c, digests, 2, built, NULL);
	path = tree_file(dir, &file);
	file.data[file.len / 2] ^= 0x20;
	write_file(path, file.data, file.len);
	CHECK(cache_load_tree(c, digests, layers, 2, &loaded, &err) == -EINVAL,
	      "a flipped byte is refused: %s", err.msg);
	CHECK(access(path, F_OK) != 0, "and the file removed, to be rebuilt");
	free(path);

	/* hostile contents behind a right checksum: the validation, not the CRC, refuses */
	cache_store_tree(c, digests, 2, built, NULL);
	path = tree_file(dir, &file);
	{
		uint32_t crc;
		size_t body = FILE_HEAD + pad8(get32(&file, 24)); /* key_len */
		size_t node1 = body + TREE_HEAD + 8 + 2 * 24 + NODE_SIZE;

		put32(&file, node1 + NODE_DIR, 0); /* node 1 claims the root's children */
		crc =
		    (uint32_t)crc32(0, (const Bytef *)file.data + FILE_HEAD, file.len - FILE_HEAD);
		put32(&file, 12, crc);
		write_file(path, file.data, file.len);
	}
	CHECK(cache_load_tree(c, digests, layers, 2, &loaded, &err) == -EINVAL,
	      "a node claiming the root's children behind a valid checksum is refused: %s",
	      err.msg);
	CHECK(access(path, F_OK) != 0, "and removed");
	free(path);

	/* the validator itself, on exported bytes */
	CHECK(tree_export(built, &exp) == 0, "exported");
	{
		struct tree *t = NULL;

		CHECK(tree_import(layers, 2, exp.data, exp.len, &t, NULL) == 0 &&
		          same_tree(built, t),
		      "an untouched export imports");
		tree_free(t);
		t = NULL;
		CHECK(tree_import(layers, 2, exp.data, exp.len - 8, &t, NULL) == -EINVAL,
		      "a truncated one does not");
		CHECK(tree_import(layers, 1, exp.data, exp.len, &t, NULL) == -EINVAL,
		      "nor one over another number of layers");
	}
	CHECK(refused(&exp, two_nodes_one_run),
	      "two nodes claiming one run of children are refused");
	CHECK(refused(&exp, run_owned_by_a_child), "a run owned by a node inside it is refused");
	CHECK(refused(&exp, runs_overlap), "runs of children that overlap are refused");
	CHECK(refused(&exp, entry_out_of_range), "an entry past the layer's end is refused");
	CHECK(refused(&exp, name_with_slash), "a name holding '/' is refused");
	CHECK(refused(&exp, siblings_swapped), "siblings out of order are refused");
	CHECK(refused(&exp, link_flag_dropped), "a hardlink record without its node is refused");
	CHECK(refused(&exp, children_past_end), "children past the last node are refused");

	/* after all that, a store and a load work again */
	cache_store_tree(c, digests, 2, built, NULL);
	r = cache_load_tree(c, digests, layers, 2, &loaded, &err);
	CHECK(r == 0 && same_tree(built, loaded), "rebuilt and stored, it loads again");
	tree_free(loaded);

	path = tree_file(dir, &file);
	if (path)
		unlink(path);
	free(path);
	rmdir(dir);
	buf_release(&exp);
	buf_release(&file);
	tree_free(built);
	cache_free(c);
	for (int i = 0; i < 2; i++) {
		layer_free(layers[i]);
		blob_free(blobs[i]);
	}
	return tap_done();
}
