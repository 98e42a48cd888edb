/*
 * Unit tests of fs/layer and fs/tree: the overlay rules of issue 2, each on
 * layers built here as real tar streams (libarchive's writer), indexed by
 * layer_index() and merged by tree_build_merged().
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "mktar.h"
#include "layer.h"
#include "tap.h"
#include "tree.h"

#define MAXL 8
static struct layer *layers[MAXL];
static struct blob *blobs[MAXL];
static int nl;

/* Writes the entries as a tar and indexes it as the next layer. */
static void add_layer(const struct ent *e, int n, int format)
{
	struct err err = {0};
	size_t used;
	int fd = mktar(e, n, format, &used);

	if (blob_open(fd, 0, used, NULL, &blobs[nl], &err) < 0 ||
	    layer_index(blobs[nl], "test", NULL, &layers[nl], NULL, &err) < 0) {
		printf("# layer setup failed: %s\n", err.msg);
		abort();
	}
	nl++;
}

static void reset(void)
{
	for (int i = 0; i < nl; i++) {
		layer_free(layers[i]);
		blob_free(blobs[i]);
	}
	nl = 0;
}

static struct tree *merged(void)
{
	struct tree *t = NULL;
	struct err err = {0};

	if (tree_build_merged(layers, (uint32_t)nl, &t, &err) < 0) {
		printf("# merge failed: %s\n", err.msg);
		abort();
	}
	return t;
}

static int exists(const struct tree *t, const char *path)
{
	return tree_resolve(t, path) != TREE_NONE;
}

/* The file's contents as a static string ("" if absent). */
static const char *contents(const struct tree *t, const char *path)
{
	static char buf[4096];
	uint32_t n = tree_resolve(t, path);
	ssize_t r;

	if (n == TREE_NONE)
		return "";
	r = tree_read(t, n, buf, sizeof(buf) - 1, 0, NULL);
	buf[r > 0 ? r : 0] = '\0';
	return buf;
}

static uint32_t nchildren(const struct tree *t, const char *path)
{
	uint32_t first, count;

	tree_children(t, tree_resolve(t, path), &first, &count);
	return count;
}

static void test_whiteouts(void)
{
	struct ent l0[] = {{"a/old", 'f', "old", 0},
	                   {"a/sub/deep", 'f', "x", 0},
	                   {"b", 'f', "b", 0},
	                   {"d/x", 'f', "x", 0},
	                   {"d/y", 'f', "y", 0}};
	/* the whiteout comes after the same layer's a/new: it must not hide it */
	struct ent l1[] = {{"a/", 'd', NULL, 0700}, {"a/new", 'f', "new", 0},
	                   {".wh.a", 'f', "", 0},   {"d/.wh..wh..opq", 'f', "", 0},
	                   {"d/z", 'f', "z", 0},    {".wh.b", 'f', "", 0}};
	struct tree *t;
	struct tree_attr at;

	add_layer(l0, 5, 0);
	add_layer(l1, 6, 0);
	t = merged();
	CHECK(exists(t, "a/new") && !strcmp(contents(t, "a/new"), "new"),
	      "same-layer entry survives its layer's whiteout whatever the tar order");
	CHECK(!exists(t, "a/old") && !exists(t, "a/sub"),
	      ".wh.a hides the lower a and its subtree");
	CHECK(!exists(t, "b"), ".wh.b hides lower b");
	CHECK(!exists(t, ".wh.b") && !exists(t, "d/.wh..wh..opq"),
	      "whiteouts are never shown merged");
	CHECK(exists(t, "d/z") && !exists(t, "d/x") && !exists(t, "d/y") && nchildren(t, "d") == 1,
	      "opaque dir keeps only its own layer's entries");
	tree_stat(t, tree_resolve(t, "a"), &at);
	CHECK((at.mode & 07777) == 0700, "the upper directory's attributes win");
	/* a/old, a/sub/deep and b by whiteouts (implied dirs a, a/sub hold no version), d/x, d/y by
	 * opaque */
	uint32_t wh = 0, op = 0;
	for (uint32_t i = 0; i < tree_hidden_count(t); i++) {
		wh += tree_hidden(t, i)->how == TREE_WHITEOUT;
		op += tree_hidden(t, i)->how == TREE_OPAQUE;
	}
	CHECK(op == 2, "two entries hidden by the opaque marker (got %u)", op);
	CHECK(wh == 3, "three entries hidden by whiteouts: a/old, a/sub/deep, b (got %u)", wh);
	tree_free(t);

	struct tree *lv;
	CHECK(tree_build_layer(layers, 1, &lv, NULL) == 0, "layer view builds");
	CHECK(exists(lv, ".wh.a") && exists(lv, "d/.wh..wh..opq") && !exists(lv, "d/x"),
	      "a layer view shows its whiteouts as plain files and nothing of lower layers");
	tree_free(lv);
	reset();
}

static void test_replacements(void)
{
	struct ent l0[] = {{"x/a", 'f', "a", 0}, {"f", 'f', "file", 0}};
	struct ent l1[] = {{"x", 'f', "now a file", 0}, {"f/", 'd', NULL, 0}};
	struct ent l2[] = {{"x/", 'd', NULL, 0}, {"x/b", 'f', "b", 0}};
	struct tree *t;
	struct tree_attr at;

	add_layer(l0, 2, 0);
	add_layer(l1, 2, 0);
	add_layer(l2, 2, 0);
	t = merged();
	CHECK(exists(t, "x/b") && !exists(t, "x/a") && nchildren(t, "x") == 1,
	      "x/a, then file x, then dir x/ with x/b gives only x/b");
	tree_stat(t, tree_resolve(t, "f"), &at);
	CHECK(S_ISDIR(at.mode) && nchildren(t, "f") == 0,
	      "a directory replacing a file starts empty");
	tree_free(t);

	struct tree *s1;
	CHECK(tree_build_merged(layers, 2, &s1, NULL) == 0, "stack of two layers builds");
	CHECK(exists(s1, "x") && !strcmp(contents(s1, "x"), "now a file") && !exists(s1, "x/a"),
	      "after layer 1, x is the file that replaced the directory");
	tree_free(s1);
	reset();
}

static void test_paths_and_links(void)
{
	struct ent l0[] = {
	    {"./", 'd', NULL, 0},            /* the root entry: skipped */
	    {"./etc", 'd', NULL, 0711},      /* same as etc/ below */
	    {"/etc/passwd", 'f', "root", 0}, /* leading slash stripped */
	    {"etc/", 'd', NULL, 0750},       /* duplicate: last one wins */
	    {"deep/implied/file", 'f', "d", 0},
	    {"dup", 'f', "first", 0},
	    {"dup", 'f', "second", 0},
	    {"orig", 'f', "shared", 04755},
	    {"hl", 'h', "orig", 0},
	    {"abs", 'l', "/etc/passwd", 0},
	    {"rel", 'l', "../../../x", 0},
	};
	struct ent l1[] = {{".wh.orig", 'f', "", 0}};
	struct tree *t;
	struct tree_attr a, b;

	add_layer(l0, 11, 0);
	t = merged();
	tree_stat(t, tree_resolve(t, "etc"), &a);
	CHECK((a.mode & 07777) == 0750 && exists(t, "etc/passwd"),
	      "./etc, /etc/passwd and etc/ are one directory; the last duplicate wins");
	CHECK(nchildren(t, "") == 7, "root holds etc deep dup orig hl abs rel (got %u)",
	      nchildren(t, ""));
	tree_stat(t, tree_resolve(t, "deep/implied"), &a);
	CHECK(S_ISDIR(a.mode), "implied parent directories exist");
	CHECK(!strcmp(contents(t, "dup"), "second"), "duplicate paths: the last one wins");
	tree_stat(t, tree_resolve(t, "orig"), &a);
	tree_stat(t, tree_resolve(t, "hl"), &b);
	CHECK(a.ino == b.ino && a.nlink == 2 && b.nlink == 2, "hardlinks share an inode, nlink 2");
	CHECK((b.mode & 07777) == 04755, "setuid mode survives (and is shared by the hardlink)");
	tree_stat(t, tree_resolve(t, "abs"), &a);
	CHECK(S_ISLNK(a.mode) && a.size == strlen("/etc/passwd"), "absolute symlink kept verbatim");
	tree_free(t);

	add_layer(l1, 1, 0);
	t = merged();
	CHECK(!exists(t, "orig") && !strcmp(contents(t, "hl"), "shared"),
	      "a hardlink keeps its bytes after the original path is deleted");
	tree_stat(t, tree_resolve(t, "hl"), &a);
	CHECK(a.nlink == 1, "and its link count drops to 1");
	tree_free(t);
	reset();
}

static void test_long_names(void)
{
	char longpath[512], comp[200];
	struct tree *t;

	memset(comp, 'n', 150);
	comp[150] = '\0';
	snprintf(longpath, sizeof(longpath), "dir/%s/%s.txt", comp, comp);
	struct ent gnu[] = {{longpath, 'f', "gnu", 0}};
	struct ent pax[] = {{"\xff\xfe-not-utf8", 'f', "raw", 0}};

	add_layer(gnu, 1, ARCHIVE_FORMAT_TAR_GNUTAR);
	add_layer(pax, 1, ARCHIVE_FORMAT_TAR_USTAR);
	t = merged();
	CHECK(!strcmp(contents(t, longpath), "gnu"), "GNU long names read back");
	CHECK(!strcmp(contents(t, "\xff\xfe-not-utf8"), "raw"),
	      "names that are not UTF-8 kept as bytes");
	tree_free(t);
	reset();
}

static void test_deleted_view(void)
{
	struct ent l0[] = {
	    {"etc/conf", 'f', "v0", 0}, {"key", 'f', "secret", 0}, {"x", 'f', "file", 0}};
	struct ent l1[] = {{"etc/conf", 'f', "v1", 0}, {".wh.key", 'f', "", 0}};
	struct ent l2[] = {{"etc/conf", 'f', "v2", 0},
	                   {"key", 'f', "new", 0},
	                   {"x/", 'd', NULL, 0},
	                   {"x/in", 'f', "in", 0}};
	struct tree *t, *d;
	const struct tree_hidden *h;

	add_layer(l0, 3, 0);
	add_layer(l1, 2, 0);
	add_layer(l2, 4, 0);
	t = merged();
	CHECK(tree_build_deleted(t, &d, NULL) == 0, "deleted view builds");
	CHECK(
	    !strcmp(contents(d, "etc/conf"), "v1") && !strcmp(contents(d, "etc/conf;L00"), "v0"),
	    "a file overwritten twice: newest hidden version keeps the name, the older gets ;L00");
	CHECK(!strcmp(contents(t, "etc/conf"), "v2") && !exists(d, "etc/conf;L02"),
	      "the live version is not in deleted/");
	CHECK(!strcmp(contents(d, "key"), "secret") && !strcmp(contents(t, "key"), "new"),
	      "deleted then re-added: old version in deleted/, new one in merged/");
	h = tree_shown_hidden(d, tree_resolve(d, "key"));
	CHECK(h && h->how == TREE_WHITEOUT && h->layer == 0 && h->removed_by == 1,
	      "key was removed by layer 01's whiteout");
	h = tree_shown_hidden(d, tree_resolve(d, "etc/conf"));
	CHECK(h && h->how == TREE_SHADOWED && h->removed_by == 2,
	      "etc/conf v1 shadowed by layer 02");
	CHECK(!strcmp(contents(d, "x"), "file") && exists(t, "x/in"),
	      "a file replaced by a directory is in deleted/");
	CHECK(tree_shown_hidden(d, tree_resolve(d, "etc")) == NULL,
	      "a directory that only holds hidden versions is implied");
	tree_free(d);
	tree_free(t);
	reset();
}

int main(void)
{
	test_deleted_view();

	test_whiteouts();
	test_replacements();
	test_paths_and_links();
	test_long_names();
	return tap_done();
}
