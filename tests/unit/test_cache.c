/*
 * Unit tests of fs/cache (with layer_export/layer_import underneath): a
 * stored index loads back identical; a flipped byte, a truncated file, a file
 * made from another blob and a hostile key are refused, and a refused file
 * is removed so that it is rebuilt. A loaded index's mapping is split after
 * the entries, so that stat-like walks do not map its paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "cache.h"
#include "layer.h"
#include "mktar.h"
#include "tap.h"

#define KEY "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static int same_index(const struct layer *a, const struct layer *b)
{
	if (layer_count(a) != layer_count(b))
		return 0;
	for (uint32_t i = 0; i < layer_count(a); i++) {
		const struct layer_entry *x = layer_entry(a, i), *y = layer_entry(b, i);
		uint32_t cx = 0, cy = 0, sx, sy;
		const char *nx, *ny;
		const void *vx, *vy;

		if (memcmp(x, y, sizeof(*x)) ||
		    strcmp(layer_str(a, x->path), layer_str(b, y->path)))
			return 0;
		if (x->link != LAYER_NONE && strcmp(layer_str(a, x->link), layer_str(b, y->link)))
			return 0;
		while (layer_xattr_next(a, x, &cx, &nx, &vx, &sx)) {
			if (!layer_xattr_next(b, y, &cy, &ny, &vy, &sy) || strcmp(nx, ny) ||
			    sx != sy || memcmp(vx, vy, sx))
				return 0;
		}
	}
	return 1;
}

static void flip_byte(const char *path, off_t where)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	if (pread(fd, &c, 1, where) != 1)
		abort();
	c ^= 0x40;
	if (pwrite(fd, &c, 1, where) != 1)
		abort();
	close(fd);
}

/*
 * The mappings of the file at path in this process (by inode: earlier
 * versions of the file, since replaced, may still be mapped): count, and the
 * file offset where the second starts.
 */
static int mappings_of(const char *path, unsigned long *ret_second_off)
{
	FILE *f = fopen("/proc/self/maps", "re");
	struct stat st;
	char line[4096];
	int n = 0;

	if (stat(path, &st) < 0)
		return -1;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long off, ino;

		if (sscanf(line, "%*x-%*x %*s %lx %*s %lu", &off, &ino) != 2 || ino != st.st_ino ||
		    !strstr(line, path))
			continue;
		if (n++ == 1)
			*ret_second_off = off;
	}
	if (f)
		fclose(f);
	return n;
}

/*
 * An index with paths well past a page: after loading, the entries and the
 * paths are separate mappings (the kernel maps whole folios only within one),
 * split at the first page boundary past the entries.
 */
static void split_mapping(struct cache *c)
{
	enum { N = 300 };
	static char names[N][80];
	struct ent ents[N];
	struct layer *l, *l2 = NULL;
	struct blob *b, *b2;
	struct blob_digests d;
	struct err err = {0};
	const unsigned long page = (unsigned long)sysconf(_SC_PAGESIZE);
	unsigned long second = 0;
	size_t len, hot;
	char *path;
	int fd, n;

	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]),
		         "usr/share/a-rather-long-directory-name/file-%04d", i);
		ents[i] = (struct ent){names[i], 'f', "x", 0};
	}
	fd = mktar(ents, N, 0, &len);
	if (blob_open(fd, 0, len, NULL, &b, &err) < 0 ||
	    layer_index(b, "test", NULL, &l, &d, &err) < 0)
		abort();
	hot = layer_export_hot_len(l);
	CHECK(hot > N * sizeof(struct layer_entry) && hot < 4 * 4096,
	      "the hot part is the header and the entries (%zu bytes)", hot);
	CHECK(cache_store_layer(c, KEY, l, b, &d, &err) == 0, "stored: %s", err.msg);
	path = cache_path(c, KEY);
	blob_open(fd, 0, len, NULL, &b2, NULL);
	CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == 0, "loads: %s", err.msg);
	n = mappings_of(path, &second);
	CHECK(n == 2, "the file is mapped in two parts (%d)", n);
	/* the cache header comes before the layer's bytes */
	CHECK(second > hot && second % page == 0 && second - hot < page + 256,
	      "split on the page after the entries (at %lu, entries end near %zu)", second, hot);
	CHECK(l2 && same_index(l, l2), "and the split index reads the same");
	layer_free(l2);
	blob_free(b2);
	unlink(path);
	free(path);
	layer_free(l);
	blob_free(b);
	close(fd);
}

int main(void)
{
	struct ent ents[] = {{"etc/", 'd', NULL, 0},
	                     {"etc/passwd", 'f', "root:x:0:0", 0},
	                     {"etc/link", 'l', "/etc/passwd", 0},
	                     {"hard", 'h', "etc/passwd", 0},
	                     {".wh.gone", 'f', "", 0}};
	char dir[] = "/tmp/strata-cache-XXXXXX";
	struct blob *b, *b2, *b3;
	struct layer *l, *l2 = NULL;
	struct blob_digests d, d2;
	struct cache *c;
	struct err err = {0};
	struct stat st;
	char buf[64] = "";
	size_t len;
	char *path;
	int fd, r;

	if (!mkdtemp(dir))
		abort();
	fd = mktar(ents, 5, 0, &len);
	CHECK(cache_open(dir, &c, &err) == 0, "cache opens on %s", dir);
	CHECK(blob_open(fd, 0, len, NULL, &b, &err) == 0 &&
	          layer_index(b, "test", NULL, &l, &d, &err) == 0,
	      "layer indexed: %s", err.msg);
	CHECK(cache_load_layer(c, KEY, b, &l2, NULL, NULL) == -ENOENT, "nothing cached yet");
	CHECK(cache_store_layer(c, KEY, l, b, &d, &err) == 0, "stored: %s", err.msg);
	path = cache_path(c, KEY);

	blob_open(fd, 0, len, NULL, &b2, NULL);
	r = cache_load_layer(c, KEY, b2, &l2, &d2, &err);
	CHECK(r == 0, "loads back: %s", err.msg);
	CHECK(r == 0 && same_index(l, l2), "the loaded index equals the built one");
	CHECK(r == 0 && !memcmp(&d, &d2, sizeof(d)), "and so do the digests");
	CHECK(r == 0 && layer_read(l2, layer_entry(l2, 1), buf, sizeof(buf), 0, NULL) == 10 &&
	          !strcmp(buf, "root:x:0:0"),
	      "file data reads through the loaded index");
	layer_free(l2);
	blob_free(b2);

	/* a flipped byte in the middle: checksum mismatch, file removed */
	stat(path, &st);
	flip_byte(path, st.st_size / 2);
	blob_open(fd, 0, len, NULL, &b2, NULL);
	CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == -EINVAL, "corrupt file refused: %s",
	      err.msg);
	CHECK(access(path, F_OK) != 0, "and removed, to be rebuilt");

	/* truncated */
	cache_store_layer(c, KEY, l, b, &d, NULL);
	stat(path, &st);
	if (truncate(path, st.st_size - 9) < 0)
		abort();
	CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == -EINVAL,
	      "truncated file refused: %s", err.msg);

	/* a file made from another blob (here: the same tar with 512 more bytes) */
	cache_store_layer(c, KEY, l, b, &d, NULL);
	blob_open(fd, 0, len - 512, NULL, &b3, NULL);
	CHECK(cache_load_layer(c, KEY, b3, &l2, NULL, &err) == -EINVAL,
	      "an index of another blob is refused: %s", err.msg);
	blob_free(b3);

	/* files that another user could have written are not trusted */
	cache_store_layer(c, KEY, l, b, &d, NULL);
	chmod(path, 0666);
	CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == -EINVAL,
	      "a group- or world-writable file is refused: %s", err.msg);
	cache_store_layer(c, KEY, l, b, &d, NULL);
	if (geteuid() == 0 && chown(path, 12345, 12345) == 0)
		CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == -EINVAL,
		      "a file owned by another user is refused: %s", err.msg);
	cache_store_layer(c, KEY, l, b, &d, NULL);
	memset(&err, 0, sizeof(err));
	CHECK(cache_load_layer(c, KEY, b2, &l2, NULL, &err) == 0, "a private file loads%s",
	      err.msg);
	layer_free(l2);
	blob_free(b2);
	blob_open(fd, 0, len, NULL, &b2, NULL);

	CHECK(cache_path(c, "sha256:../../etc/passwd") == NULL && cache_path(c, "x") == NULL &&
	          cache_path(c, "sha256:ABCDEF") == NULL,
	      "keys that are not algo:hex never become file names");
	CHECK(cache_load_layer(c, "sha256:../../x", b2, &l2, NULL, NULL) == -ENOENT,
	      "and loading by such a key finds nothing");
	split_mapping(c);

	unlink(path);
	rmdir(dir);
	free(path);
	blob_free(b2);

	layer_free(l);
	blob_free(b);
	cache_free(c);
	close(fd);
	return tap_done();
}
