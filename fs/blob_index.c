/*
 * blob_index: the seek points of a blob as a byte string, for fs/cache to
 * keep on disk (blob_index_export) and give back to a later mount
 * (blob_index_import, or _mapped to leave the points in the caller's
 * mapping). An index is checked whole before the blob takes it: a cache file
 * is input like any other, and a point that lied about its offsets would send
 * reads to the wrong bytes; snapshots are checked again, table by table,
 * where fs/blob_gzip.c resumes from them.
 */
#include "blob_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define INDEX_MAGIC     "STRBLIDX"
#define INDEX_VERSION   2
#define INDEX_HEAD_LEN  48
#define INDEX_POINT_LEN 24

static const struct blob_point start_point = {.kind = POINT_START};

/*
 * ---- the index: a flat little-endian byte string ----
 *
 *   0  8  magic "STRBLIDX"
 *   8  4  version (2)
 *  12  4  compression (enum blob_compression)
 *  16  8  stored size      24  8  decompressed size      32  8  point count
 *  40  8  gz_snapshot_id() of the build that wrote it
 *  48     the points, each: 8 stored offset, 8 decompressed offset, 1 kind
 *         (1 member/frame start, 2 checkpoint, 3 snapshot), 1 unused bit
 *         count, 1 their value, 4 length of what follows, 1 zero; then a
 *         checkpoint's 32 KiB window or a snapshot's bytes.
 *
 * The version is tied to BLOB_WINDOW and to the rules that place points; a
 * reader that meets another version, or snapshots of another ISA-L build,
 * refuses the index and streams again.
 */

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static size_t point_len(const struct blob_point *p)
{
	return INDEX_POINT_LEN + (p->kind == POINT_START ? 0 : p->len);
}

int blob_index_pieces(const struct blob *b, struct iovec **ret_iov, size_t *ret_n, size_t *ret_len,
                      struct err *err)
{
	struct blob *mb = (struct blob *)b;
	struct iovec *iov = NULL;
	unsigned char *p;
	size_t n = 1, len = INDEX_HEAD_LEN;
	int r = 0;

	pthread_mutex_lock(&mb->lock);
	if (b->size < 0) {
		r = err_set(err, -EINVAL, "blob: no index before the stream pass has finished");
		goto out;
	}
	/* one block: the pieces, then the head and the point records they name */
	iov = calloc(1,
	             (2 * b->npts + 1) * sizeof(*iov) + INDEX_HEAD_LEN + b->npts * INDEX_POINT_LEN);
	if (!iov) {
		r = err_set(err, -ENOMEM, "blob: out of memory for the index of %zu points",
		            b->npts);
		goto out;
	}
	p = (unsigned char *)(iov + 2 * b->npts + 1);
	iov[0] = (struct iovec){p, INDEX_HEAD_LEN};
	memcpy(p, INDEX_MAGIC, 8);
	put_u64(p + 8, INDEX_VERSION | (uint64_t)b->comp << 32);
	put_u64(p + 16, b->length);
	put_u64(p + 24, (uint64_t)b->size);
	put_u64(p + 32, b->npts);
	put_u64(p + 40, gz_snapshot_id());
	p += INDEX_HEAD_LEN;
	for (size_t i = 0; i < b->npts; i++) {
		const struct blob_point *pt = &b->pts[i];

		put_u64(p, pt->in);
		put_u64(p + 8, pt->out);
		p[16] = pt->kind;
		p[17] = pt->bits;
		p[18] = pt->bitval;
		iov[n++] = (struct iovec){p, INDEX_POINT_LEN};
		if (pt->kind != POINT_START) {
			for (int k = 0; k < 4; k++)
				p[19 + k] = (unsigned char)(pt->len >> (8 * k));
			iov[n++] = (struct iovec){pt->data, pt->len};
		}
		len += point_len(pt);
		p += INDEX_POINT_LEN;
	}
	*ret_iov = iov;
	*ret_n = n;
	*ret_len = len;
out:
	pthread_mutex_unlock(&mb->lock);
	return r;
}

int blob_index_export(const struct blob *b, void **ret_buf, size_t *ret_len, struct err *err)
{
	struct iovec *iov;
	unsigned char *buf, *p;
	size_t n, len;
	int r = blob_index_pieces(b, &iov, &n, &len, err);

	if (r < 0)
		return r;
	buf = malloc(len);
	if (!buf) {
		free(iov);
		return err_set(err, -ENOMEM, "blob: out of memory for the index (%zu bytes)", len);
	}
	p = buf;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	free(iov);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* Checks one point against the blob and its predecessor; NULL when valid. */
static const char *point_invalid(const struct blob *b, const struct blob_point *p,
                                 const struct blob_point *prev, uint64_t size)
{
	if (p->kind != POINT_START && !(p->kind == POINT_CHECKPOINT && b->comp == BLOB_GZIP) &&
	    !(p->kind == POINT_SNAPSHOT && b->comp == BLOB_GZIP))
		return "bad kind";
	if (p->bits > 7 || p->bitval >> p->bits || (p->kind != POINT_CHECKPOINT && p->bits))
		return "bad bit count";
	if ((p->kind == POINT_START && p->len) ||
	    (p->kind == POINT_CHECKPOINT && p->len != BLOB_WINDOW))
		return "bad length";
	if (p->kind == POINT_SNAPSHOT && (b->zlib_only || gz_snapshot_check(p->data, p->len) < 0))
		return "snapshot this build cannot resume from";
	if (p->in <= prev->in || p->out <= prev->out)
		return "offsets do not increase";
	if (p->in >= b->length || p->out > size)
		return "offset out of range";
	return NULL;
}

static int index_import(struct blob *b, const void *buf, size_t len, bool borrow, struct err *err)
{
	const unsigned char *s = buf, *p;
	struct blob_point *pts = NULL;
	const struct blob_point *prev = &start_point;
	uint64_t head, size, count, snap_id;
	size_t n = 0;
	const char *why = NULL;
	int r = -EINVAL;

	if (len < INDEX_HEAD_LEN || memcmp(s, INDEX_MAGIC, 8)) {
		why = "not a blob index";
		goto out;
	}
	head = get_u64(s + 8);
	size = get_u64(s + 24);
	count = get_u64(s + 32);
	snap_id = get_u64(s + 40);
	if ((uint32_t)head != INDEX_VERSION || head >> 32 != (uint64_t)b->comp) {
		why = "version or compression differs";
		goto out;
	}
	if (get_u64(s + 16) != b->length || size > INT64_MAX || size > b->lim.max_output ||
	    (b->comp == BLOB_RAW && (size != b->length || count))) {
		why = "sizes do not match the blob";
		goto out;
	}
	if (count > (len - INDEX_HEAD_LEN) / INDEX_POINT_LEN) {
		why = "point count too large";
		goto out;
	}
	pts = calloc(count ? count : 1, sizeof(*pts));
	if (!pts) {
		r = -ENOMEM;
		why = "out of memory";
		goto out;
	}
	p = s + INDEX_HEAD_LEN;
	for (n = 0; n < count; n++) {
		struct blob_point *pt = &pts[n];
		if ((size_t)(s + len - p) < INDEX_POINT_LEN) {
			why = "truncated";
			goto out;
		}
		pt->in = get_u64(p);
		pt->out = get_u64(p + 8);
		pt->kind = p[16];
		pt->bits = p[17];
		pt->bitval = p[18];
		pt->len = (uint32_t)p[19] | (uint32_t)p[20] << 8 | (uint32_t)p[21] << 16 |
		          (uint32_t)p[22] << 24;
		pt->data = (unsigned char *)p + INDEX_POINT_LEN;
		pt->borrowed = true; /* until copied below */
		if (p[23])
			why = "nonzero padding";
		else if ((size_t)(s + len - p) - INDEX_POINT_LEN < pt->len)
			why = "truncated point";
		else if (pt->kind == POINT_SNAPSHOT && snap_id != gz_snapshot_id())
			why = "snapshot of another ISA-L build";
		else
			why = point_invalid(b, pt, prev, size);
		if (why)
			goto out;
		if (pt->kind != POINT_START && !borrow) {
			pt->data = malloc(pt->len);
			if (!pt->data) {
				r = -ENOMEM;
				why = "out of memory";
				goto out;
			}
			pt->borrowed = false;
			memcpy(pt->data, p + INDEX_POINT_LEN, pt->len);
		}
		p += point_len(pt);
		prev = pt;
	}
	if (p != s + len) {
		why = "trailing bytes";
		goto out;
	}
	points_take(b, pts, n, size);
	return 0;
out:
	points_free(pts, pts ? count : 0); /* calloc'd: unfilled points own nothing */
	return err_set(err, r, "blob index refused: %s", why);
}

int blob_index_import(struct blob *b, const void *buf, size_t len, struct err *err)
{
	return index_import(b, buf, len, false, err);
}

int blob_index_import_mapped(struct blob *b, const void *buf, size_t len, struct err *err)
{
	return index_import(b, buf, len, true, err);
}
