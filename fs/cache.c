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
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>
#if HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "buf.h"
#include "tree.h"

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

/*
 * A cached merged tree: this header, then the key (tree_key(): the layer
 * digests in order) padded to 8 bytes, then tree_export's bytes. The file
 * name is only a hash of the key; the key itself inside is what is checked.
 */
#define TREE_CACHE_MAGIC   "STRCTRE\0"
#define TREE_CACHE_VERSION 2

struct tree_cache_header {
	char magic[8];
	uint32_t version;
	uint32_t checksum; /* CRC-32 of everything after the header */
	uint64_t total_len;
	uint64_t key_len; /* the key's bytes, before the padding */
};

/*
 * CRC-32 (the gzip/zlib one). ISA-L computes the same value several times
 * faster than zlib, which matters: a warm mount checks every cached byte.
 */
/* The CRC-32 of data following bytes whose CRC-32 is crc (0 for none). */
static uint32_t checksum_more(uint32_t crc, const void *data, size_t len)
{
#if HAVE_ISAL
	return crc32_gzip_refl(crc, data, len);
#else
	return (uint32_t)crc32_z(crc, data, len);
#endif
}

static uint32_t checksum(const void *data, size_t len)
{
	return checksum_more(0, data, len);
}

struct crc_job {
	const char *data;
	size_t len;
	uint32_t crc;
};

static void *crc_part(void *arg)
{
	struct crc_job *j = arg;

	j->crc = checksum(j->data, j->len);
	return NULL;
}

/* The checksum of a big file in two threads: the halves combine exactly. */
static uint32_t checksum_file(const char *data, size_t len)
{
	struct crc_job a = {data, len / 2, 0};
	pthread_t t;
	uint32_t b;

	if (len < (8u << 20) || pthread_create(&t, NULL, crc_part, &a) != 0)
		return checksum(data, len);
	b = checksum(data + a.len, len - a.len);
	pthread_join(t, NULL);
	return (uint32_t)crc32_combine(a.crc, b, (z_off_t)(len - a.len));
}

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

/*
 * Opens and maps a cache file read-only. Returns 0 with the mapping, -ENOENT
 * when there is no such file, or -EINVAL with *ret_why when it cannot be
 * used: shorter than min_len, or not a regular file of this user that nobody
 * else can write (the checksums find damage, not forgery; seek points hold
 * ISA-L's decoder state, which is used as is).
 */
static int map_file(const char *path, size_t min_len, void **ret_map, size_t *ret_len,
                    const char **ret_why)
{
	struct stat st;
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = -EINVAL;

	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < min_len) {
		*ret_why = "truncated";
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) || !S_ISREG(st.st_mode)) {
		*ret_why = "not a private file of this user";
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		*ret_why = "cannot be mapped";
		goto out;
	}
	*ret_map = map;
	*ret_len = (size_t)st.st_size;
	r = 0;
out:
	close(fd);
	return r;
}

static size_t page_up(size_t n)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

int cache_load_layer(struct cache *c, const char *key, struct blob *b, struct layer **ret_layer,
                     struct blob_digests *ret_digests, struct err *err)
{
	char *path = cache_path(c, key);
	struct cache_header h;
	struct layer *l = NULL;
	void *map = MAP_FAILED;
	const char *why = NULL;
	size_t used, hot, len = 0;
	int r;

	if (!path)
		return err_set(err, -ENOENT, "no cache key for %s", key ? key : "(no digest)");
	r = map_file(path, sizeof(h), &map, &len, &why);
	if (r == -ENOENT) {
		r = err_set(err, -ENOENT, "%s: not cached", key);
		goto out;
	}
	if (r < 0)
		goto corrupt;
	/* Kept until cache_free even if what follows fails: the blob may by
	 * then point into it, until its stream pass replaces the seek points. */
	if ((r = keep_mapping(c, map, len)) < 0) {
		munmap(map, len);
		err_set(err, r, "out of memory");
		goto out;
	}
	memcpy(&h, map, sizeof(h));
	if (memcmp(h.magic, CACHE_MAGIC, 8) || h.version != CACHE_VERSION) {
		why = "another version";
		goto corrupt;
	}
	if (h.total_len != (uint64_t)len || h.layer_len > h.total_len ||
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
	if (checksum_file((const char *)map + sizeof(h), (size_t)(h.total_len - sizeof(h))) !=
	    h.checksum) {
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
	/*
	 * Checking read every page; most are not needed again (paths, seek
	 * points, the entries of hidden versions). Dropping them from this
	 * mapping (they stay in the page cache) keeps resident memory to what
	 * is used from now on (a daemon that forks after opening starts empty
	 * anyway: fork does not copy the page tables of file mappings).
	 */
	madvise(map, len, MADV_DONTNEED);
	/*
	 * The kernel maps a whole page-cache folio (up to 2 MiB) on a fault: a
	 * walk over the entries would also map the paths that share their last
	 * folio, about 13 bytes per entry of a 200,000-entry image. A mapping
	 * split after the entries (advice differs, so two VMAs) keeps faults
	 * on either side to their own side.
	 */
	hot = page_up(sizeof(h) + layer_export_hot_len(l));
	if (hot < len)
		madvise((char *)map + hot, len - hot, MADV_RANDOM);
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
	free(path);
	return r;
}

/* Writes the pieces in order, whatever writev takes at a time. */
static int write_pieces(int fd, struct iovec *iov, size_t n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n < IOV_MAX ? (int)n : IOV_MAX);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		for (; n && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Writes the pieces to path whole, through a temporary file and a rename. */
static int write_atomic(struct cache *c, const char *path, struct iovec *iov, size_t n)
{
	char *tmp = NULL;
	int fd, r;

	if (asprintf(&tmp, "%s/.tmp-XXXXXX", c->dir) < 0)
		return -ENOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	/* readers see the old file or the new, never half of one */
	if ((r = write_pieces(fd, iov, n)) < 0) {
		close(fd);
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	unlink(tmp);
	free(tmp);
	return r;
}

int cache_store_layer(struct cache *c, const char *key, const struct layer *l, const struct blob *b,
                      const struct blob_digests *d, struct err *err)
{
	struct cache_header h = {.version = CACHE_VERSION,
	                         .compression = (uint32_t)blob_compression(b),
	                         .stored_size = blob_stored_size(b),
	                         .digests = *d};
	struct buf body = BUF_INIT;
	char *path = cache_path(c, key);
	struct iovec *bidx = NULL, *iov = NULL;
	size_t nb = 0, blen = 0;
	uint32_t crc;
	int r;

	if (!path)
		return err_set(err, -EINVAL, "no cache key for %s", key ? key : "(no digest)");
	/* The seek points (ISA-L snapshots: 54 KiB a MiB) go out from where
	 * they are, not copied into the body first. */
	if ((r = layer_export(l, &body)) < 0 ||
	    (r = blob_index_pieces(b, &bidx, &nb, &blen, err)) < 0)
		goto out;
	iov = malloc((nb + 2) * sizeof(*iov));
	if (!iov) {
		r = -ENOMEM;
		goto out;
	}
	h.layer_len = body.len;
	h.blob_len = blen;
	memcpy(h.magic, CACHE_MAGIC, 8);
	h.total_len = sizeof(h) + body.len + blen;
	crc = checksum(body.data, body.len);
	for (size_t i = 0; i < nb; i++)
		crc = checksum_more(crc, bidx[i].iov_base, bidx[i].iov_len);
	h.checksum = crc;
	iov[0] = (struct iovec){&h, sizeof(h)};
	iov[1] = (struct iovec){body.data, body.len};
	memcpy(iov + 2, bidx, nb * sizeof(*iov));
	r = write_atomic(c, path, iov, nb + 2);
out:
	if (r < 0 && err && !err->code)
		err_set(err, r, "cannot write the cache file %s: %s", path ? path : key,
		        strerror(-r));
	free(path);
	free(iov);
	free(bidx);
	buf_release(&body);
	return r;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/*
 * The key of a merged tree: the ordered layer digests, with the formats'
 * versions so that a new format never meets an old file, as text.
 */
static int tree_key(const char *const *digests, uint32_t n, struct buf *key)
{
	int r = buf_printf(key, "strata merged tree %u %u %u\n", TREE_CACHE_VERSION,
	                   layer_format_version(), n);

	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = buf_printf(key, "%s\n", digests[i]);
	return r;
}

/*
 * <dir>/tree-<hex>.tree, hex being 128 bits of two FNV-1a hashes of the key.
 * Not SHA-256: loading OpenSSL's provider for it cost a warm mount 2 ms, and
 * the name needs no strength (a file under a colliding name holds another
 * key and is refused).
 */
static char *tree_path(const struct cache *c, const struct buf *key)
{
	uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
	char name[5 + 33] = "tree:";

	for (size_t i = 0; i < key->len; i++)
		for (int k = 0; k < 2; k++)
			h[k] = (h[k] ^ (unsigned char)key->data[i]) * 0x100000001b3ull;
	snprintf(name + 5, 33, "%016llx%016llx", (unsigned long long)h[0],
	         (unsigned long long)(h[1] ^ h[1] >> 29));
	return cache_file_name(c->dir, name, ".tree");
}

char *cache_tree_path(const struct cache *c, const char *const *digests, uint32_t n)
{
	struct buf key = BUF_INIT;
	char *path = tree_key(digests, n, &key) < 0 ? NULL : tree_path(c, &key);

	buf_release(&key);
	return path;
}

int cache_load_tree(struct cache *c, const char *const *digests, struct layer *const *layers,
                    uint32_t n, struct tree **ret_tree, struct err *err)
{
	struct buf key = BUF_INIT;
	struct tree_cache_header h;
	struct tree *t = NULL;
	void *map = MAP_FAILED;
	const char *why = NULL;
	char *path = NULL;
	size_t body, len = 0;
	int r;

	if (tree_key(digests, n, &key) < 0 || !(path = tree_path(c, &key))) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = map_file(path, sizeof(h), &map, &len, &why);
	if (r == -ENOENT) {
		r = err_set(err, -ENOENT, "no cached tree");
		goto out;
	}
	if (r < 0)
		goto corrupt;
	memcpy(&h, map, sizeof(h));
	if (memcmp(h.magic, TREE_CACHE_MAGIC, 8) || h.version != TREE_CACHE_VERSION) {
		why = "another version";
		goto corrupt;
	}
	body = sizeof(h) + pad8(key.len);
	if (h.total_len != (uint64_t)len || h.key_len != key.len || body > h.total_len ||
	    memcmp((const char *)map + sizeof(h), key.data, key.len)) {
		why = "made for other layers, or its size is wrong";
		goto corrupt;
	}
	if (checksum_file((const char *)map + sizeof(h), (size_t)(h.total_len - sizeof(h))) !=
	    h.checksum) {
		why = "checksum mismatch";
		goto corrupt;
	}
	if (tree_import(layers, n, (const char *)map + body, (size_t)h.total_len - body, &t, NULL) <
	    0) {
		why = "contents do not validate";
		goto corrupt;
	}
	if ((r = keep_mapping(c, map, len)) < 0) {
		err_set(err, r, "out of memory");
		goto out;
	}
	map = MAP_FAILED;
	*ret_tree = t;
	t = NULL;
	r = 0;
	goto out;
corrupt:
	/* never trusted, and rebuilt by the caller */
	unlink(path);
	r = err_set(err, -EINVAL, "cache file %s: %s; removed", path, why);
out:
	tree_free(t);
	if (map != MAP_FAILED)
		munmap(map, len);
	free(path);
	buf_release(&key);
	return r;
}

int cache_store_tree(struct cache *c, const char *const *digests, uint32_t n, const struct tree *t,
                     struct err *err)
{
	static const char zeros[8];
	struct tree_cache_header h = {.version = TREE_CACHE_VERSION};
	struct buf key = BUF_INIT, body = BUF_INIT;
	char *path = NULL;
	int r;

	memcpy(h.magic, TREE_CACHE_MAGIC, 8);
	/* the body: the key, padded, then the tree */
	if ((r = tree_key(digests, n, &key)) < 0 ||
	    (r = buf_append(&body, key.data, key.len)) < 0 ||
	    (r = buf_append(&body, zeros, pad8(key.len) - key.len)) < 0 ||
	    (r = tree_export(t, &body)) < 0)
		goto out;
	h.key_len = key.len;
	if (!(path = tree_path(c, &key))) {
		r = -ENOMEM;
		goto out;
	}
	h.total_len = sizeof(h) + body.len;
	h.checksum = checksum(body.data, body.len);
	r = write_atomic(c, path, (struct iovec[]){{&h, sizeof(h)}, {body.data, body.len}}, 2);
out:
	if (r < 0)
		err_set(err, r, "cannot write the cached tree: %s", strerror(-r));
	free(path);
	buf_release(&key);
	buf_release(&body);
	return r;
}
