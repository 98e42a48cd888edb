/*
 * layer_io: the entry index as one flat byte string and back (layer_export,
 * layer_import in layer.h), for the on-disk cache. Import trusts nothing:
 * every entry is checked to keep every promise of layer.h, as an indexed
 * one does, before the index is used in place.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layer_int.h"

/*
 * The serialized index: a header, then the entries (8-byte aligned), the
 * string pool, the xattr pool and the warnings (NUL-separated), each padded
 * to 8 bytes, so that a mapped file can be used in place.
 */
struct layer_header {
	char magic[8];
	uint32_t version;
	uint32_t entry_size;
	uint32_t nentries;
	uint32_t nwarnings;
	uint64_t strs_len;
	uint64_t xat_len;
	uint64_t warn_len;
};

#define LAYER_MAGIC   "STRLAYR\0"
#define LAYER_VERSION 4 /* bump whenever indexing gives other entries or warnings */

uint32_t layer_format_version(void)
{
	return LAYER_VERSION;
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

int layer_export(const struct layer *l, struct buf *out)
{
	struct layer_header h = {.version = LAYER_VERSION,
	                         .entry_size = sizeof(struct layer_entry),
	                         .nentries = l->nents,
	                         .nwarnings = l->warnings.n,
	                         .strs_len = l->strs_len,
	                         .xat_len = l->xat_len};
	static const char zeros[8];
	size_t start = out->len;
	int r;

	memcpy(h.magic, LAYER_MAGIC, 8);
	for (uint32_t i = 0; i < l->warnings.n; i++)
		h.warn_len += strlen(l->warnings.v[i]) + 1;
	if ((r = buf_append(out, &h, sizeof(h))) < 0 ||
	    (r = buf_append(out, l->ents, (size_t)l->nents * sizeof(*l->ents))) < 0 ||
	    (r = buf_append(out, l->strs, l->strs_len)) < 0 ||
	    (r = buf_append(out, zeros, pad8(l->strs_len) - l->strs_len)) < 0 ||
	    (r = buf_append(out, l->xat, l->xat_len)) < 0 ||
	    (r = buf_append(out, zeros, pad8(l->xat_len) - l->xat_len)) < 0)
		goto fail;
	for (uint32_t i = 0; i < l->warnings.n; i++)
		if ((r = buf_append(out, l->warnings.v[i], strlen(l->warnings.v[i]) + 1)) < 0)
			goto fail;
	if ((r = buf_append(out, zeros, pad8(h.warn_len) - h.warn_len)) < 0)
		goto fail;
	return 0;
fail:
	out->len = start;
	return r;
}

/*
 * The offset of the first '/' or NUL at or after p[i]; avail bytes from p
 * on may be read, the last of them a NUL. Eight bytes at a time where
 * little-endian words allow: a warm mount looks at every byte of every path
 * of every layer, and one byte at a time was the largest cost of a remount.
 */
static size_t next_slash_or_nul(const char *p, size_t i, size_t avail)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	while (avail - i >= 8) {
		uint64_t v, s, m;

		memcpy(&v, p + i, 8);
		s = v ^ (ones * '/');
		/* a high bit per byte that is 0 in v or in s; the lowest one is exact */
		m = ((v - ones) & ~v) | ((s - ones) & ~s);
		m &= highs;
		if (m)
			return i + (size_t)__builtin_ctzll(m) / 8;
		i += 8;
	}
#endif
	while (p[i] != '/' && p[i] != '\0')
		i++;
	return i;
}

/*
 * The form clean_path() gives: components that are not empty, "." or "..".
 * Returns the offset of the last component, or -1 when p is not clean.
 */
static long clean_path_last(const char *p, size_t avail)
{
	size_t start = 0;

	for (;;) {
		size_t i = next_slash_or_nul(p, start, avail);

		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return -1;
		if (p[i] == '\0')
			return (long)start;
		start = i + 1;
	}
}

/* Checks that one entry keeps every promise of layer.h, as an indexed one does. */
static int entry_valid(const struct layer *l, const struct layer_entry *e)
{
	uint32_t count;
	size_t p;

	int64_t stream = blob_size(l->blob);

	if (e->type > LAYER_FIFO || e->path >= l->strs_len ||
	    (e->link != LAYER_NONE && e->link >= l->strs_len))
		return 0;
	/* paths as clean_path() leaves them */
	if (clean_path_last(l->strs + e->path, l->strs_len - e->path) < 0)
		return 0;

	/* what readers rely on without checking: links have targets, the mode says
	 * the type, only files have bytes, and the bytes lie inside the stream */
	if ((e->type == LAYER_SYMLINK || e->type == LAYER_HARDLINK) != (e->link != LAYER_NONE))
		return 0;
	if ((e->mode & S_IFMT) != layer_type_bits[e->type] || (e->type != LAYER_REG && e->size))
		return 0;
	/* after the check above: a hardlink has a target to look at */
	if (e->type == LAYER_HARDLINK &&
	    clean_path_last(l->strs + e->link, l->strs_len - e->link) < 0)
		return 0;
	/* a device's data_off is its number */
	if (stream >= 0 && e->type != LAYER_CHR && e->type != LAYER_BLK &&
	    (e->data_off > (uint64_t)stream || e->size > (uint64_t)stream - e->data_off))
		return 0;

	if (e->xattrs == LAYER_NONE)
		return 1;
	if ((size_t)e->xattrs + 4 > l->xat_len)
		return 0;
	memcpy(&count, l->xat + e->xattrs, 4);
	p = (size_t)e->xattrs + 4;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t nlen, vlen;

		if (p + 4 > l->xat_len)
			return 0;
		memcpy(&nlen, l->xat + p, 4);
		if (nlen > l->xat_len || p + 4 + nlen + 1 + 4 > l->xat_len || l->xat[p + 4 + nlen])
			return 0;
		memcpy(&vlen, l->xat + p + 4 + nlen + 1, 4);
		p += 4 + nlen + 1 + 4;
		if (vlen > l->xat_len - p)
			return 0;
		p += vlen;
	}
	return 1;
}

struct check_job {
	const struct layer *l;
	uint32_t from, to;
	int ok;
};

static void *check_entries(void *arg)
{
	struct check_job *j = arg;

	j->ok = 1;
	for (uint32_t i = j->from; j->ok && i < j->to; i++)
		j->ok = entry_valid(j->l, &j->l->ents[i]);
	return NULL;
}

/*
 * Every entry, in two threads for a big index: a remount of an image with
 * one big layer would otherwise wait for one core to read every path.
 */
static int entries_valid(const struct layer *l)
{
	struct check_job a = {l, 0, l->nents / 2, 0}, b = {l, l->nents / 2, l->nents, 0};
	pthread_t t;

	if (l->nents < 65536 || pthread_create(&t, NULL, check_entries, &a) != 0) {
		a.to = l->nents;
		check_entries(&a);
		return a.ok;
	}
	check_entries(&b);
	pthread_join(t, NULL);
	return a.ok && b.ok;
}

int layer_import(struct blob *b, const void *data, size_t len, struct layer **ret_layer,
                 size_t *ret_used, struct err *err)
{
	const char *p = data;
	struct layer_header h;
	struct layer *l;
	size_t need, off;

	if (len < sizeof(h))
		return err_set(err, -EINVAL, "layer index truncated");
	memcpy(&h, p, sizeof(h));
	if (memcmp(h.magic, LAYER_MAGIC, 8) || h.version != LAYER_VERSION ||
	    h.entry_size != sizeof(struct layer_entry))
		return err_set(err, -EINVAL, "not a layer index of this version");
	need = sizeof(h);
	if (h.strs_len > len || h.xat_len > len || h.warn_len > len ||
	    h.nentries > len / sizeof(struct layer_entry) || h.strs_len == 0)
		return err_set(err, -EINVAL, "layer index sizes are inconsistent");
	need += (size_t)h.nentries * sizeof(struct layer_entry) + pad8(h.strs_len) +
	        pad8(h.xat_len) + pad8(h.warn_len);
	if (need > len)
		return err_set(err, -EINVAL, "layer index truncated");
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(err, -ENOMEM, "out of memory");
	l->blob = b;
	off = sizeof(h);
	l->ents = (const struct layer_entry *)(p + off);
	l->nents = h.nentries;
	off += (size_t)h.nentries * sizeof(struct layer_entry);
	l->strs = p + off;
	l->strs_len = h.strs_len;
	off += pad8(h.strs_len);
	l->xat = p + off;
	l->xat_len = h.xat_len;
	off += pad8(h.xat_len);
	/* every string offset then ends at a NUL inside the pool */
	if (l->strs[l->strs_len - 1] != '\0')
		goto bad;
	if (!entries_valid(l))
		goto bad;
	for (const char *w = p + off, *end = w + h.warn_len;
	     w < end && l->warnings.n < h.nwarnings;) {
		const char *nul = memchr(w, '\0', (size_t)(end - w));

		if (!nul)
			goto bad;
		add_warning(l, "%s", w);
		w = nul + 1;
	}
	*ret_layer = l;
	if (ret_used)
		*ret_used = need;
	return 0;
bad:
	layer_free(l);
	return err_set(err, -EINVAL, "layer index is corrupt");
}
