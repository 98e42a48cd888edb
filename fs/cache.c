/*
 * cache: on-disk layer indexes (see cache.h).
 *
 * The file is mapped read-only and the layer index inside it is used in
 * place, which is what makes a warm mount cheap: nothing is parsed or
 * copied but the seek points. The checksum is CRC-32 (zlib), which costs far
 * less than reading the layer would and catches torn or flipped bytes.
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"

#define CACHE_MAGIC   "STRCACH\0"
#define CACHE_VERSION 1

struct cache_header {
	char magic[8];
	uint32_t version;
	uint32_t compression;
	uint64_t stored_size;
	uint64_t total_len;
	uint64_t layer_len; /* the layer index, right after this header */
	uint64_t blob_len;  /* then the blob's seek points */
	struct blob_digests digests;
	uint32_t checksum; /* CRC-32 of everything after the header */
	uint32_t pad;
};

struct mapping {
	void *addr;
	size_t len;
};

struct cache {
	char *dir;
	pthread_mutex_t lock;
	struct mapping *maps;
	size_t nmaps;
};

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int cache_open(const char *dir, struct cache **ret_cache, struct err *err)
{
	struct cache *c = calloc(1, sizeof(*c));
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int r;

	if (!c)
		return err_set(err, -ENOMEM, "out of memory");
	if (dir)
		c->dir = strdup(dir);
	else if (xdg && *xdg)
		r = asprintf(&c->dir, "%s/strata", xdg);
	else if (asprintf(&c->dir, "%s/.cache/strata", home && *home ? home : "/tmp") < 0)
		c->dir = NULL;
	(void)r;
	if (!c->dir) {
		free(c);
		return err_set(err, -ENOMEM, "out of memory");
	}
	if ((r = mkdirs(c->dir)) < 0) {
		err_set(err, r, "cannot create the cache directory %s: %s", c->dir, strerror(-r));
		free(c->dir);
		free(c);
		return r;
	}
	pthread_mutex_init(&c->lock, NULL);
	*ret_cache = c;
	return 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nmaps; i++)
		munmap(c->maps[i].addr, c->maps[i].len);
	free(c->maps);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

char *cache_path(const struct cache *c, const char *key)
{
	return cache_file_name(c->dir, key, ".idx");
}

char *cache_file_name(const char *dir, const char *key, const char *ext)
{
	const char *colon = key ? strchr(key, ':') : NULL;
	char *path;

	/* the key becomes a file name: only "algo:hex" is accepted */
	if (!colon || colon == key || colon - key > 16 || !colon[1] ||
	    strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789") != (size_t)(colon - key) ||
	    strspn(colon + 1, "0123456789abcdef") != strlen(colon + 1))
		return NULL;
	if (asprintf(&path, "%s/%.*s-%s%s", dir, (int)(colon - key), key, colon + 1, ext) < 0)

		return NULL;
	return path;
}

static int keep_mapping(struct cache *c, void *addr, size_t len)
{
	struct mapping *m;

	pthread_mutex_lock(&c->lock);
	m = realloc(c->maps, (c->nmaps + 1) * sizeof(*m));
	if (m) {
		c->maps = m;
		m[c->nmaps++] = (struct mapping){addr, len};
	}
	pthread_mutex_unlock(&c->lock);
	return m ? 0 : -ENOMEM;
}

int cache_load_layer(struct cache *c, const char *key, struct blob *b, struct layer **ret_layer,
                     struct blob_digests *ret_digests, struct err *err)
{
	char *path = cache_path(c, key);
	struct cache_header h;
	struct layer *l = NULL;
	struct stat st;
	void *map = MAP_FAILED;
	const char *why = NULL;
	size_t used;
	int fd = -1, r;

	if (!path)
		return err_set(err, -ENOENT, "no cache key for %s", key ? key : "(no digest)");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = err_set(err, -ENOENT, "%s: not cached", key);
		goto out;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h)) {
		why = "truncated";
		goto corrupt;
	}
	/* The checksum finds damage, not forgery: only files that nobody but
	 * this user could have written are trusted (seek points hold ISA-L's
	 * decoder state, which is used as is). */
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) || !S_ISREG(st.st_mode)) {
		why = "not a private file of this user";
		goto corrupt;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		why = "cannot be mapped";
		goto corrupt;
	}
	/* Kept until cache_free even if what follows fails: the blob may by
	 * then point into it, until its stream pass replaces the seek points. */
	if ((r = keep_mapping(c, map, (size_t)st.st_size)) < 0) {
		munmap(map, (size_t)st.st_size);
		err_set(err, r, "out of memory");
		goto out;
	}
	memcpy(&h, map, sizeof(h));
	if (memcmp(h.magic, CACHE_MAGIC, 8) || h.version != CACHE_VERSION) {
		why = "another version";
		goto corrupt;
	}
	if (h.total_len != (uint64_t)st.st_size || h.layer_len > h.total_len ||
	    h.blob_len > h.total_len - h.layer_len ||
	    sizeof(h) + h.layer_len + h.blob_len != h.total_len) {
		why = "sizes are inconsistent";
		goto corrupt;
	}
	if (h.compression != (uint32_t)blob_compression(b) ||
	    h.stored_size != blob_stored_size(b)) {
		why = "made from another blob";
		goto corrupt;
	}
	if ((uint32_t)crc32_z(crc32(0, NULL, 0), (const Bytef *)map + sizeof(h),
	                      (size_t)(h.total_len - sizeof(h))) != h.checksum) {
		why = "checksum mismatch";
		goto corrupt;
	}
	/* the seek points first: they give the stream size that entries are checked against */
	if (blob_index_import_mapped(b, (const char *)map + sizeof(h) + h.layer_len, h.blob_len,
	                             NULL) < 0 ||
	    layer_import(b, (const char *)map + sizeof(h), h.layer_len, &l, &used, NULL) < 0) {

		why = "contents do not validate";
		goto corrupt;
	}
	if (ret_digests)
		*ret_digests = h.digests;
	*ret_layer = l;
	l = NULL;
	r = 0;
	goto out;
corrupt:
	/* never trusted, and rebuilt by the caller */
	unlink(path);
	r = err_set(err, -EINVAL, "cache file %s: %s; removed", path, why);
out:
	layer_free(l);
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cache_store_layer(struct cache *c, const char *key, const struct layer *l, const struct blob *b,
                      const struct blob_digests *d, struct err *err)
{
	struct cache_header h = {.version = CACHE_VERSION,
	                         .compression = (uint32_t)blob_compression(b),
	                         .stored_size = blob_stored_size(b),
	                         .digests = *d};
	struct buf body = BUF_INIT;
	char *path = cache_path(c, key), *tmp = NULL;
	void *bidx = NULL;
	size_t blen = 0;
	int fd = -1, r;

	if (!path)
		return err_set(err, -EINVAL, "no cache key for %s", key ? key : "(no digest)");
	if ((r = layer_export(l, &body)) < 0 || (r = blob_index_export(b, &bidx, &blen, err)) < 0)
		goto out;
	h.layer_len = body.len;
	h.blob_len = blen;
	if ((r = buf_append(&body, bidx, blen)) < 0)
		goto out;
	memcpy(h.magic, CACHE_MAGIC, 8);
	h.total_len = sizeof(h) + body.len;
	h.checksum = (uint32_t)crc32_z(crc32(0, NULL, 0), (const Bytef *)body.data, body.len);
	if (asprintf(&tmp, "%s/.tmp-XXXXXX", c->dir) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* write whole, then rename: readers see the old file or the new, never half of one */
	if ((r = write_all(fd, &h, sizeof(h))) < 0 || (r = write_all(fd, body.data, body.len)) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	free(tmp);
	tmp = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	if (r < 0 && err && !err->code)
		err_set(err, r, "cannot write the cache file %s: %s", path ? path : key,
		        strerror(-r));
	free(tmp);
	free(path);
	free(bidx);
	buf_release(&body);
	return r;
}
