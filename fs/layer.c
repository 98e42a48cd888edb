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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "buf.h"
#include "layer_int.h"
#include "strlist.h"

struct index_ctx {
	struct layer *layer;
	struct blob_stream *stream;
	const char *name;
	const struct layer_limits *lim;
	const void *first; /* the chunk read before libarchive started */
	ssize_t first_len;
	struct err stream_err;
	struct buf clean;  /* scratch: a cleaned path */
	struct buf data;   /* scratch: a file's bytes for lim->file */
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

	e.mode = (archive_entry_mode(ae) & 07777) | layer_type_bits[e.type];
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

/*
 * Hands the regular file just indexed (the last entry) to lim->file with its
 * bytes, which must be exactly what layer_read gives: the size bytes of the
 * stream at data_off. libarchive's blocks are those bytes, unless it reads
 * the entry as sparse (an old GNU header may carry a sparse map whatever its
 * type, and a size taken from it): a hole, or blocks that do not add up to
 * the size, and the file is not handed over (a reader gets it with
 * layer_read, as for a cached index). Neither is a file whose bytes end
 * early: the next header read reports the broken stream.
 */
static int tap_file(struct index_ctx *c, struct archive *a)
{
	const struct layer *l = c->layer;
	uint32_t n = (uint32_t)(l->entries.len / sizeof(struct layer_entry));
	const struct layer_entry *e = (const struct layer_entry *)l->entries.data + n - 1;
	const char *path = l->pool.data + e->path;
	uint64_t got = 0;

	if (e->type != LAYER_REG)
		return 0;
	if (e->size > c->lim->file_max)
		return c->lim->file(c->lim->file_opaque, n - 1, path, NULL, e->size);
	c->data.len = 0;
	if (buf_grow(&c->data, e->size + 1) < 0)
		return -ENOMEM;
	for (;;) {
		const void *block;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(a, &block, &len, &off);

		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN || off < 0 || (uint64_t)off != got || len > e->size - got)
			return 0;
		memcpy(c->data.data + got, block, len);
		got += len;
	}
	if (got != e->size)
		return 0;
	return c->lim->file(c->lim->file_opaque, n - 1, path, c->data.data, e->size);
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
		if (r == 0 && c->lim->file && (r = tap_file(c, a)) < 0) {
			ret = err_set(err, r, "%s: entry at offset %lld: %s", c->name,
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
	buf_release(&c.data);
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
