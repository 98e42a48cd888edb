/*
 * layer: one pass over a layer's decompressed stream, through libarchive's
 * tar reader, into a flat entry index (see layer.h).
 *
 * libarchive does the tar parsing (ustar, GNU and PAX long names, base-256
 * numbers, PAX xattrs, global headers) because it is mature against exactly
 * the malformed headers that hostile images carry. It reads from our blob
 * stream through a callback, so the same pass also hashes the blob and
 * records seek points. Right after a header is read, libarchive has consumed
 * exactly the header bytes, so archive_filter_bytes(a, 0) is the offset of
 * the entry's data in the decompressed stream: that is what makes random
 * access to file contents possible later.
 */
#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "buf.h"
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

struct index_ctx {
	struct layer *layer;
	struct blob_stream *stream;
	const char *name;
	const struct layer_limits *lim;
	const void *first; /* the chunk read before libarchive started */
	ssize_t first_len;
	struct err stream_err;
	struct buf clean;  /* scratch: a cleaned path */
	uint64_t reported; /* stored bytes at the last progress report */
};

void layer_limits_default(struct layer_limits *l)
{
	/* the whole struct: fields added later (the progress hook) start empty */
	*l = (struct layer_limits){
	    .max_entries = 4u << 20,
	    .max_path = 16384,
	    .max_depth = 2048,
	    .max_xattr_size = 1u << 20,
	    .max_pool = 3ull << 30,
	};
}

#define add_warning(l, ...) strlist_addf(&(l)->warnings, LAYER_MAX_WARNINGS, __VA_ARGS__)

/*
 * Cleans a tar path into out: components split on '/', empty and "." ones
 * dropped, ".." removing the previous component (never going above the root).
 * Returns the number of components (0 for the root itself), or -ENAMETOOLONG
 * when a bound is hit. *ret_dotdot tells whether ".." was seen.
 */
static int clean_path(const char *in, struct buf *out, const struct layer_limits *lim,
                      int *ret_dotdot)
{
	const char *p = in;
	uint32_t depth = 0;
	int dotdot = 0;

	out->len = 0;
	if (buf_grow(out, strlen(in)) < 0)
		return -ENOMEM;
	out->data[0] = '\0';
	while (*p) {
		const char *c = p;
		size_t n;

		while (*p && *p != '/')
			p++;
		n = (size_t)(p - c);
		if (*p == '/')
			p++;
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			dotdot = 1;
			if (depth > 0) {
				char *slash = memrchr(out->data, '/', out->len);

				out->len = slash ? (size_t)(slash - out->data) : 0;
				out->data[out->len] = '\0';
				depth--;
			}
			continue;
		}
		if (out->len)
			out->data[out->len++] = '/';
		memcpy(out->data + out->len, c, n);
		out->len += n;
		out->data[out->len] = '\0';
		if (++depth > lim->max_depth || out->len > lim->max_path)
			return -ENAMETOOLONG;
	}
	*ret_dotdot = dotdot;
	return (int)depth;
}

static la_ssize_t read_cb(struct archive *a, void *opaque, const void **ret_buf)
{
	struct index_ctx *c = opaque;
	ssize_t n;

	if (c->first) {
		*ret_buf = c->first;
		n = c->first_len;
		c->first = NULL;
		return n;
	}
	n = blob_stream_next(c->stream, ret_buf, &c->stream_err);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", c->stream_err.msg);
		return -1;
	}
	if (c->lim->progress) {
		uint64_t done = blob_stream_stored_offset(c->stream);

		if (done >= c->reported + (4u << 20) || n == 0) {
			c->reported = done;
			c->lim->progress(c->lim->progress_opaque, done,
			                 blob_stored_size(c->layer->blob));
		}
	}
	return n;
}

static int entry_type(struct archive_entry *ae, enum layer_type *ret_type)
{
	if (archive_entry_hardlink(ae)) {
		*ret_type = LAYER_HARDLINK;
		return 0;
	}
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG:
		*ret_type = LAYER_REG;
		return 0;
	case AE_IFDIR:
		*ret_type = LAYER_DIR;
		return 0;
	case AE_IFLNK:
		*ret_type = LAYER_SYMLINK;
		return 0;
	case AE_IFCHR:
		*ret_type = LAYER_CHR;
		return 0;
	case AE_IFBLK:
		*ret_type = LAYER_BLK;
		return 0;
	case AE_IFIFO:
		*ret_type = LAYER_FIFO;
		return 0;
	default:
		return -EINVAL;
	}
}

static const mode_t type_bits[] = {
    [LAYER_REG] = S_IFREG,      [LAYER_DIR] = S_IFDIR, [LAYER_SYMLINK] = S_IFLNK,
    [LAYER_HARDLINK] = S_IFREG, [LAYER_CHR] = S_IFCHR, [LAYER_BLK] = S_IFBLK,
    [LAYER_FIFO] = S_IFIFO,
};

static uint8_t whiteout_flags(const char *base)
{
	if (strncmp(base, ".wh.", 4) != 0)
		return 0;
	if (strcmp(base, ".wh..wh..opq") == 0)
		return LAYER_F_OPAQUE;
	if (strncmp(base, ".wh..wh.", 8) == 0 || base[4] == '\0')
		return LAYER_F_META;
	return LAYER_F_WHITEOUT;
}

/* Appends the entry's xattrs (PAX SCHILY.xattr.*) to the pool. */
static int store_xattrs(struct index_ctx *c, struct archive_entry *ae, struct layer_entry *e)
{
	struct buf *x = &c->layer->xattrs;
	size_t start = x->len, total = 0;
	uint32_t count = 0;
	const char *name;
	const void *value;
	size_t size;
	int r;

	e->xattrs = LAYER_NONE;
	if (archive_entry_xattr_reset(ae) == 0)
		return 0;
	if (x->len > UINT32_MAX - 4)
		return -E2BIG;
	if ((r = buf_append(x, &count, 4)) < 0)
		return r;
	while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
		uint32_t nlen = (uint32_t)strlen(name), vlen = (uint32_t)size;

		/* overlayfs bookkeeping of the build host, not image content */
		if (strncmp(name, "trusted.overlay.", 16) == 0)
			continue;
		total += nlen + size;
		if (total > c->lim->max_xattr_size) {
			x->len = start;
			add_warning(c->layer, "%s: xattrs of %s exceed %u bytes, dropped", c->name,
			            archive_entry_pathname(ae), c->lim->max_xattr_size);
			return 0;
		}
		if ((r = buf_append(x, &nlen, 4)) < 0 || (r = buf_append(x, name, nlen + 1)) < 0 ||
		    (r = buf_append(x, &vlen, 4)) < 0 || (r = buf_append(x, value, size)) < 0)
			return r;
		count++;
	}
	if (!count) {
		x->len = start;
		return 0;
	}
	memcpy(x->data + start, &count, 4);
	e->xattrs = (uint32_t)start;
	return 0;
}

/* Turns one archive entry into an index entry; returns 1 if skipped. */
static int add_entry(struct index_ctx *c, struct archive *a, struct archive_entry *ae)
{
	struct layer *l = c->layer;
	struct layer_entry e = {0};
	const char *raw = archive_entry_pathname(ae);
	uint64_t hdr_end = (uint64_t)archive_filter_bytes(a, 0);
	int depth, dotdot = 0, r;
	enum layer_type type;
	const char *base;

	if (!raw)
		raw = "";
	if (archive_entry_sparse_count(ae) > 0) {
		add_warning(l, "%s: entry %s at offset %llu is a sparse file, skipped", c->name,
		            raw, (unsigned long long)hdr_end);
		return 1;
	}
	if (entry_type(ae, &type) < 0) {
		add_warning(l, "%s: entry %s at offset %llu has unknown type %o, skipped", c->name,
		            raw, (unsigned long long)hdr_end, archive_entry_filetype(ae));
		return 1;
	}
	e.type = type;
	depth = clean_path(raw, &c->clean, c->lim, &dotdot);
	if (depth == -ENOMEM)
		return -ENOMEM;
	if (depth < 0) {
		add_warning(
		    l, "%s: entry at offset %llu has a path over %u bytes or %u levels, skipped",
		    c->name, (unsigned long long)hdr_end, c->lim->max_path, c->lim->max_depth);
		return 1;
	}
	if (depth == 0)
		return 1; /* the root entry ("./" or "/") */
	if (dotdot)
		add_warning(l, "%s: entry %s at offset %llu climbs with '..', kept as %s", c->name,
		            raw, (unsigned long long)hdr_end, c->clean.data);

	if ((r = buf_append_cstr(&l->pool, c->clean.data, c->clean.len, &e.path)) < 0)
		return r;
	base = strrchr(c->clean.data, '/');
	e.flags = whiteout_flags(base ? base + 1 : c->clean.data);
	e.link = LAYER_NONE;
	if (e.type == LAYER_SYMLINK) {
		const char *t = archive_entry_symlink(ae);

		if (!t)
			t = "";
		if ((r = buf_append_cstr(&l->pool, t, strlen(t), &e.link)) < 0)
			return r;
	} else if (e.type == LAYER_HARDLINK) {
		int d = clean_path(archive_entry_hardlink(ae), &c->clean, c->lim, &dotdot);

		if (d == -ENOMEM)
			return -ENOMEM;
		if (d <= 0) {
			add_warning(
			    l, "%s: hardlink %s at offset %llu has an unusable target, skipped",
			    c->name, layer_str(l, e.path), (unsigned long long)hdr_end);
			return 1;
		}
		if ((r = buf_append_cstr(&l->pool, c->clean.data, c->clean.len, &e.link)) < 0)
			return r;
	}
	if (l->pool.len > c->lim->max_pool)
		return -E2BIG;

	e.mode = (archive_entry_mode(ae) & 07777) | type_bits[e.type];
	e.uid = (uint32_t)archive_entry_uid(ae);
	e.gid = (uint32_t)archive_entry_gid(ae);
	e.mtime = archive_entry_mtime(ae);
	e.mtime_nsec = (uint32_t)archive_entry_mtime_nsec(ae);
	if (hdr_end > LAYER_MAX_OFFSET)
		return -EFBIG;
	e.data_off = hdr_end;
	if (e.type == LAYER_CHR || e.type == LAYER_BLK) {
		uint64_t major = (uint64_t)archive_entry_rdevmajor(ae);
		uint64_t minor = (uint64_t)archive_entry_rdevminor(ae);

		/* Linux itself has 12 bits of major and 20 of minor */
		if (major > 0xffffff || minor > 0xffffff) {
			add_warning(
			    l,
			    "%s: device %s at offset %llu has a number past 24 bits, kept as 0,0",
			    c->name, layer_str(l, e.path), (unsigned long long)hdr_end);
			major = minor = 0;
		}
		e.data_off = major << 24 | minor;
	}
	if (e.type == LAYER_REG && archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0) {
		if ((uint64_t)archive_entry_size(ae) > LAYER_MAX_OFFSET)
			return -EFBIG;
		e.size = (uint64_t)archive_entry_size(ae);
	}
	if ((r = store_xattrs(c, ae, &e)) < 0)
		return r;
	return buf_append(&l->entries, &e, sizeof(e));
}

static int run_archive(struct index_ctx *c, struct err *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	uint32_t retries = 0;
	int r, ret = 0;

	if (!a)
		return err_set(err, -ENOMEM, "%s: out of memory", c->name);
	archive_read_support_format_tar(a);
	if (archive_read_open(a, c, NULL, read_cb, NULL) != ARCHIVE_OK) {
		ret = err_set(err, -EINVAL, "%s: not a tar stream: %s", c->name,
		              archive_error_string(a));
		goto out;
	}
	for (;;) {
		r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_RETRY && ++retries < 16) {
			add_warning(c->layer, "%s: bad header near offset %lld: %s", c->name,
			            (long long)archive_filter_bytes(a, 0), archive_error_string(a));
			continue;
		}
		if (r < ARCHIVE_WARN) {
			ret = err_set(err, c->stream_err.code ? c->stream_err.code : -EINVAL,
			              "%s: tar stream broken at offset %lld: %s", c->name,
			              (long long)archive_filter_bytes(a, 0),
			              c->stream_err.code        ? c->stream_err.msg
			              : archive_error_string(a) ? archive_error_string(a)
			                                        : "malformed tar header");
			goto out;
		}
		/* names that are not UTF-8 are kept as their bytes, which is what we want */
		if (r == ARCHIVE_WARN &&
		    !strstr(archive_error_string(a) ? archive_error_string(a) : "",
		            "can't be converted"))
			add_warning(c->layer, "%s: %s: %s", c->name,

			            archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "?",
			            archive_error_string(a));
		if (c->layer->entries.len / sizeof(struct layer_entry) >= c->lim->max_entries) {
			ret = err_set(err, -E2BIG, "%s: more than %u entries", c->name,
			              c->lim->max_entries);
			goto out;
		}
		r = add_entry(c, a, ae);
		if (r < 0) {
			ret = err_set(err, r, "%s: indexing entry at offset %lld: %s", c->name,
			              (long long)archive_filter_bytes(a, 0), strerror(-r));
			goto out;
		}
	}
out:
	archive_read_free(a);
	return ret;
}

/* Points the read-only view at the buffers the indexer filled. */
static void publish(struct layer *l)
{
	l->ents = (const struct layer_entry *)l->entries.data;
	l->nents = (uint32_t)(l->entries.len / sizeof(struct layer_entry));
	/* an empty pool is still one NUL, so that every index has a terminated pool */
	l->strs = l->pool.data ? l->pool.data : "";
	l->strs_len = l->pool.data ? l->pool.len : 1;

	l->xat = l->xattrs.data;
	l->xat_len = l->xattrs.len;
}

int layer_index(struct blob *b, const char *name, const struct layer_limits *lim,

                struct layer **ret_layer, struct blob_digests *ret_digests, struct err *err)
{
	struct layer_limits deflim;
	struct index_ctx c = {.name = name, .lim = lim};
	struct blob_digests dg;
	struct layer *l = calloc(1, sizeof(*l));
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = (locale_t)0;
	int r;

	if (!lim) {
		layer_limits_default(&deflim);
		c.lim = &deflim;
	}
	/*
	 * libarchive converts PAX (UTF-8) names to the thread's locale; in the C
	 * locale non-ASCII names would fail to convert. A thread-local UTF-8
	 * locale keeps names as the bytes the image holds, without touching the
	 * process's locale.
	 */
	if (utf8)
		old = uselocale(utf8);
	if (!l) {
		r = err_set(err, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	l->blob = b;
	c.layer = l;
	r = blob_stream_open(b, &c.stream, err);
	if (r < 0)
		goto out;
	c.first_len = blob_stream_next(c.stream, &c.first, err);
	if (c.first_len < 0) {
		r = (int)c.first_len;
		goto out;
	}
	/* An empty blob is an empty layer: libarchive would call it no tar at all. */
	if (c.first_len > 0 && (r = run_archive(&c, err)) < 0)
		goto out;
	r = blob_stream_finish(c.stream, &dg, err);
	if (r < 0)
		goto out;
	if (c.lim->progress)
		c.lim->progress(c.lim->progress_opaque, blob_stored_size(b), blob_stored_size(b));

	if (ret_digests)
		*ret_digests = dg;
	publish(l);
	*ret_layer = l;

	l = NULL;
out:
	/* every message names the layer, also those the blob and libarchive wrote */
	if (r < 0 && err && !err->msg[0])
		err_set(err, r, "%s: indexing failed: %s", name, strerror(-r));
	else if (r < 0 && err && strncmp(err->msg, name, strlen(name)))
		err_prefix(err, r, "%s: ", name);

	blob_stream_free(c.stream);
	buf_release(&c.clean);
	layer_free(l);
	if (utf8) {
		uselocale(old);
		freelocale(utf8);
	}
	return r;
}

void layer_free(struct layer *l)
{
	if (!l)
		return;
	buf_release(&l->entries);
	buf_release(&l->pool);
	buf_release(&l->xattrs);
	strlist_release(&l->warnings);
	free(l);
}

uint32_t layer_count(const struct layer *l)
{
	return l->nents;
}

const struct layer_entry *layer_entry(const struct layer *l, uint32_t i)
{
	return l->ents + i;
}

const char *layer_str(const struct layer *l, uint32_t off)
{
	return l->strs + off;
}

struct blob *layer_blob(const struct layer *l)
{
	return l->blob;
}

int layer_xattr_next(const struct layer *l, const struct layer_entry *e, uint32_t *cursor,
                     const char **ret_name, const void **ret_value, uint32_t *ret_size)
{
	const char *base, *p;
	uint32_t count, nlen, vlen;

	if (e->xattrs == LAYER_NONE)
		return 0;
	base = l->xat + e->xattrs;
	memcpy(&count, base, 4);
	p = base + 4;
	/* *cursor counts attributes; walk to the one it names */
	if (*cursor >= count)
		return 0;
	for (uint32_t i = 0;; i++) {
		memcpy(&nlen, p, 4);
		memcpy(&vlen, p + 4 + nlen + 1, 4);
		if (i == *cursor) {
			*ret_name = p + 4;
			*ret_value = p + 4 + nlen + 1 + 4;
			*ret_size = vlen;
			(*cursor)++;
			return 1;
		}
		p += 4 + nlen + 1 + 4 + vlen;
	}
}

ssize_t layer_read(const struct layer *l, const struct layer_entry *e, void *buf, size_t len,
                   uint64_t off, struct err *err)
{
	if (off >= e->size)
		return 0;
	if (len > e->size - off)
		len = (size_t)(e->size - off);
	return blob_pread(l->blob, buf, len, e->data_off + off, err);
}

uint32_t layer_warning_count(const struct layer *l)
{
	return l->warnings.n;
}

const char *layer_warning(const struct layer *l, uint32_t i)
{
	return l->warnings.v[i];
}

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
	if ((e->mode & S_IFMT) != type_bits[e->type] || (e->type != LAYER_REG && e->size))
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
