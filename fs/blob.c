/*
 * blob: a layer blob seen as its decompressed stream (see blob.h).
 *
 * This file holds what does not depend on the compression: sniffing, the
 * input buffer of a decoder, the limits, the stream pass (its threads are in
 * blob_pass.c; it hands the recorded seek points to the blob), and random
 * reads through a few per-blob cursors and a small cache of decompressed
 * spans. The gzip and zstd decoders live in blob_gzip.c and blob_zstd.c, the
 * index format in blob_index.c, the decompressed spill in blob_spill.c.
 *
 * Locking: one mutex per blob guards its seek points, cursors, span cache and
 * counters. blob_pread holds it while it decompresses, so concurrent readers
 * of one blob take turns, but a span decompressed for one of them serves the
 * others. The stream pass runs outside the mutex with its own decoder and
 * only takes it to hand over its results. The spill (blob_spill.c) has locks
 * of its own and takes this one only for a moment, to look at the points and
 * cursors: a read served from the spill never waits for a decompressing one.
 */
#include "blob_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1ull << 20)
#define GiB (1ull << 30)

#define STREAM_IN_CAP  (1u << 20)
#define STREAM_OUT_CAP (1u << 20)
#define CURSOR_IN_CAP  (128u * 1024)
/* A cached span starts on this boundary (or at the cursor) so that reads
 * just before the requested one, common with readahead, hit it too. */
#define SPAN_ALIGN (64u * 1024)

static const struct blob_point start_point = {.kind = POINT_START};

void blob_limits_default(struct blob_limits *l)
{
	l->max_output = 256 * GiB;
	l->max_expansion = 2000;
	l->zstd_window_log_max = 30;
}

ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += r;
	}
	return done;
}

int blob_open(int fd, uint64_t offset, uint64_t length, const struct blob_limits *lim,
              struct blob **ret_blob, struct err *err)
{
	unsigned char magic[4];
	size_t want = length < 4 ? length : 4;
	struct blob *b = NULL;
	ssize_t n;
	int r;

	if (fd < 0)
		return err_set(err, -EBADF, "blob: bad file descriptor %d", fd);
	if (offset > INT64_MAX || length > INT64_MAX - offset)
		return err_set(err, -EINVAL, "blob: range %llu+%llu is out of bounds",
		               (unsigned long long)offset, (unsigned long long)length);
	n = pread_full(fd, magic, want, offset);
	if (n < 0)
		return err_set(err, (int)n,
		               "blob: cannot read its first bytes at file offset %llu: %s",
		               (unsigned long long)offset, strerror((int)-n));
	if ((size_t)n < want)
		return err_set(err, -EIO, "blob: the file ends before the blob at %llu+%llu does",
		               (unsigned long long)offset, (unsigned long long)length);
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(err, -ENOMEM, "blob: out of memory");
	r = pthread_mutex_init(&b->lock, NULL);
	if (r) {
		free(b);
		return err_set(err, -r, "blob: cannot create its mutex");
	}
	b->fd = fd;
	b->offset = offset;
	b->length = length;
	if (lim)
		b->lim = *lim;
	else
		blob_limits_default(&b->lim);
	b->size = -1;
	b->zlib_only = getenv("STRATA_BLOB_ZLIB") != NULL;
	if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
		b->comp = BLOB_GZIP;
	} else if (n == 4 && ((magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
	                       magic[3] == 0xfd) ||
	                      ((magic[0] & 0xf0) == 0x50 && magic[1] == 0x2a && magic[2] == 0x4d &&
	                       magic[3] == 0x18))) {
		b->comp = BLOB_ZSTD;
	} else {
		b->comp = BLOB_RAW;
		b->size = (int64_t)length;
	}
	*ret_blob = b;
	return 0;
}

void points_free(struct blob_point *pts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!pts[i].borrowed)
			free(pts[i].data);
	free(pts);
}

void points_take(struct blob *b, struct blob_point *pts, size_t n, uint64_t size)
{
	struct blob_point *old;
	uint64_t gap = 0, from = 0;
	size_t nold;

	for (size_t i = 0; i <= n; i++) {
		uint64_t to = i < n ? pts[i].out : size;

		if (to - from > gap)
			gap = to - from;
		from = to;
	}
	pthread_mutex_lock(&b->lock);
	old = b->pts;
	nold = b->npts;
	b->pts = pts;
	b->npts = n;
	b->stats.seek_points = n;
	__atomic_store_n(&b->points_near, gap <= BLOB_SPILL_GAP, __ATOMIC_RELEASE);
	__atomic_store_n(&b->size, (int64_t)size, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->lock);
	points_free(old, nold);
}

void dec_free(struct dec *d)
{
	if (!d)
		return;
	gz_free(d);
	zs_free(d);
	points_free(d->pts, d->npts);
	free(d->in);
	free(d);
}

void blob_free(struct blob *b)
{
	if (!b)
		return;
	spill_free(b->spill);
	for (int i = 0; i < BLOB_CURSORS; i++)
		dec_free(b->cur[i]);
	points_free(b->pts, b->npts);
	for (int i = 0; i < BLOB_CACHE_SPANS; i++)
		free(b->spans[i].data);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

enum blob_compression blob_compression(const struct blob *b)
{
	return b->comp;
}

const char *blob_compression_name(enum blob_compression c)
{
	switch (c) {
	case BLOB_RAW:
		return "none";
	case BLOB_GZIP:
		return "gzip";
	case BLOB_ZSTD:
		return "zstd";
	}
	return "unknown";
}

uint64_t blob_stored_size(const struct blob *b)
{
	return b->length;
}

int64_t blob_size(const struct blob *b)
{
	return __atomic_load_n(&b->size, __ATOMIC_ACQUIRE);
}

void blob_stats(const struct blob *b, struct blob_stats *ret)
{
	struct blob *mb = (struct blob *)b; /* the mutex is not part of the value */

	pthread_mutex_lock(&mb->lock);
	*ret = b->stats;
	pthread_mutex_unlock(&mb->lock);
	if (b->spill)
		spill_stats(b->spill, ret);
}

/* ---- decoder input and bookkeeping, shared by both backends ---- */

struct dec *dec_new(struct blob *b, size_t in_cap)
{
	struct dec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->b = b;
	d->in_cap = in_cap;
	d->in = malloc(in_cap);
	if (!d->in) {
		free(d);
		return NULL;
	}
	d->state = DEC_BROKEN;
	return d;
}

static int dec_start(struct dec *d, const struct blob_point *p, struct err *err)
{
	int r = 0;

	d->in_len = d->in_pos = 0;
	d->in_off = p->in;
	d->out_pos = p->out;
	d->last_point_out = p->out;
	d->raw_deflate = false;
	d->trailer_left = 0;
	d->state = DEC_BODY;
	if (d->b->comp == BLOB_GZIP)
		r = gz_start(d, p, err);
	else if (d->b->comp == BLOB_ZSTD)
		r = zs_start(d, p, err);
	if (r < 0)
		d->state = DEC_BROKEN;
	return r;
}

ssize_t dec_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err)
{
	ssize_t n = d->b->comp == BLOB_GZIP ? gz_read(d, buf, cap, err) : zs_read(d, buf, cap, err);

	if (n < 0)
		d->state = DEC_BROKEN;
	return n;
}

ssize_t dec_fill(struct dec *d, size_t want, struct err *err)
{
	const struct blob *b = d->b;
	size_t avail = d->in_len - d->in_pos;

	if (avail >= want || d->in_off >= b->length)
		return avail;
	if (d->in_pos) {
		d->last_byte = d->in[d->in_pos - 1];
		memmove(d->in, d->in + d->in_pos, avail);
		d->in_len = avail;
		d->in_pos = 0;
	}
	while (d->in_len < want && d->in_off < b->length) {
		size_t n = d->in_cap - d->in_len;
		ssize_t r;

		if (n > b->length - d->in_off)
			n = b->length - d->in_off;
		r = pread(b->fd, d->in + d->in_len, n, (off_t)(b->offset + d->in_off));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			return err_set(err, -e, "blob: read failed at stored offset %llu: %s",
			               (unsigned long long)d->in_off, strerror(e));
		}
		if (r == 0)
			return err_set(err, -EIO,
			               "blob: the file ends at stored offset %llu, inside the blob",
			               (unsigned long long)d->in_off);
		d->in_len += r;
		d->in_off += r;
	}
	return d->in_len - d->in_pos;
}

int dec_check_limits(struct dec *d, struct err *err)
{
	const struct blob_limits *l = &d->b->lim;
	uint64_t stored = d->b->length;
	uint64_t out = d->out_pos;

	if (out > l->max_output) {
		d->state = DEC_BROKEN;
		return err_set(err, -EFBIG,
		               "decompression bomb: output passes max_output (%llu bytes) at "
		               "stored offset %llu",
		               (unsigned long long)l->max_output,
		               (unsigned long long)dec_stored_pos(d));
	}
	if ((stored > MiB || out > GiB) && out > (unsigned __int128)l->max_expansion * stored) {
		d->state = DEC_BROKEN;
		return err_set(err, -EFBIG,
		               "decompression bomb: %llu bytes out of %llu stored passes the "
		               "expansion limit %llu",
		               (unsigned long long)out, (unsigned long long)stored,
		               (unsigned long long)l->max_expansion);
	}
	return 0;
}

int dec_add_point(struct dec *d, const struct blob_point *p, struct err *err)
{
	if (d->npts == d->cap_pts) {
		size_t cap = d->cap_pts ? 2 * d->cap_pts : 64;
		struct blob_point *np = realloc(d->pts, cap * sizeof(*np));

		if (!np)
			return err_set(err, -ENOMEM, "blob: out of memory for seek points");
		d->pts = np;
		d->cap_pts = cap;
	}
	d->pts[d->npts++] = *p;
	d->last_point_out = p->out;
	return 0;
}

/* ---- the stream pass ---- */

struct blob_stream {
	struct blob *b;
	struct dec *d;
	struct pass *p;
	uint64_t stored_at; /* progress: stored bytes read for the output handed out */
	bool ended, finished;
};

uint64_t blob_stream_stored_offset(const struct blob_stream *s)
{
	return s->stored_at;
}

void blob_stream_free(struct blob_stream *s)
{

	if (!s)
		return;
	pass_free(s->p);
	pthread_mutex_lock(&s->b->lock);
	s->b->streaming = false;
	pthread_mutex_unlock(&s->b->lock);
	dec_free(s->d);
	free(s);
}

int blob_stream_open(struct blob *b, struct blob_stream **ret_stream, struct err *err)
{
	struct blob_stream *s = NULL;
	bool busy;
	int r;

	pthread_mutex_lock(&b->lock);
	busy = b->streaming;
	b->streaming = true;
	pthread_mutex_unlock(&b->lock);
	if (busy)
		return err_set(err, -EBUSY, "blob: a stream pass is already running");
	s = calloc(1, sizeof(*s));
	if (!s) {
		pthread_mutex_lock(&b->lock);
		b->streaming = false;
		pthread_mutex_unlock(&b->lock);
		return err_set(err, -ENOMEM, "blob: out of memory for a stream");
	}
	s->b = b;
	s->d = dec_new(b, STREAM_IN_CAP);
	if (!s->d) {
		r = err_set(err, -ENOMEM, "blob: out of memory for a stream");
		goto out;
	}
	s->d->record = true;
	r = dec_start(s->d, &start_point, err);
	if (r < 0)
		goto out;
	if (b->comp == BLOB_RAW)
		r = pass_start(b, NULL, 0, &s->p, err);
	else
		r = pass_start(b, s->d, STREAM_OUT_CAP, &s->p, err);
	if (r < 0)
		goto out;
	*ret_stream = s;
	return 0;
out:
	blob_stream_free(s);
	return r;
}

ssize_t blob_stream_next(struct blob_stream *s, const void **ret_data, struct err *err)
{
	struct dec *d = s->d;
	ssize_t n;

	if (s->ended)
		return 0;
	if (s->b->comp == BLOB_RAW) {
		/* Stored bytes are the output: hand out the input buffer itself. */
		d->in_pos = d->in_len;
		n = dec_fill(d, d->in_cap, err);
		if (n < 0)
			return n;
		*ret_data = d->in;
		d->in_pos = d->in_len;
		d->out_pos += n;
		s->stored_at = d->in_off;
	} else {
		n = pass_next(s->p, ret_data, &s->stored_at, err);
		if (n < 0)
			return n;
	}
	if (!n)
		s->ended = true;
	return n;
}

int blob_stream_finish(struct blob_stream *s, struct blob_digests *ret_digests, struct err *err)
{
	struct blob *b = s->b;
	struct dec *d = s->d;
	struct blob_digests dg = {0};
	const void *data;
	ssize_t n;
	int r;

	if (s->finished)
		return err_set(err, -EINVAL, "blob: stream already finished");
	while ((n = blob_stream_next(s, &data, err)) > 0)
		;
	if (n < 0)
		return (int)n;
	/* The pass reads the stored bytes to the end of the blob, past the
	 * compressed data: what follows it is part of the layer digest. */
	r = pass_finish(s->p, dg.stored, b->comp == BLOB_RAW ? NULL : dg.decompressed, err);
	if (r < 0)
		return r;
	if (b->comp == BLOB_RAW)
		memcpy(dg.decompressed, dg.stored, sizeof(dg.stored));
	dg.stored_size = b->length;
	dg.decompressed_size = d->out_pos;
	s->finished = true;

	points_take(b, d->pts, d->npts, d->out_pos);
	d->pts = NULL;
	d->npts = d->cap_pts = 0;
	*ret_digests = dg;
	return 0;
}

/* ---- random access ---- */

static const struct blob_point *point_before(const struct blob *b, uint64_t off)
{
	size_t lo = 0, hi = b->npts;

	/* The last point with out <= off; points are sorted by out. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->pts[mid].out <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &b->pts[lo - 1] : &start_point;
}

static struct blob_span *span_find(struct blob *b, uint64_t off)
{
	for (int i = 0; i < BLOB_CACHE_SPANS; i++) {
		struct blob_span *sp = &b->spans[i];
		if (sp->stamp && off >= sp->off && off - sp->off < sp->len) {
			sp->stamp = ++b->clock;
			return sp;
		}
	}
	return NULL;
}

static struct blob_span *span_victim(struct blob *b)
{
	struct blob_span *v = &b->spans[0];

	for (int i = 1; i < BLOB_CACHE_SPANS; i++)
		if (b->spans[i].stamp < v->stamp)
			v = &b->spans[i];
	if (!v->data)
		v->data = malloc(BLOB_CACHE_SPAN_LEN);
	if (!v->data)
		return NULL;
	v->stamp = 0;
	v->len = 0;
	return v;
}

int dec_seek(struct dec *d, uint64_t off, struct err *err)
{
	struct blob *b = d->b;
	int r;

	/* under the lock: an index import may replace the points meanwhile */
	pthread_mutex_lock(&b->lock);
	r = dec_start(d, point_before(b, off), err);
	pthread_mutex_unlock(&b->lock);
	return r;
}

uint64_t pread_cost(struct blob *b, uint64_t off)
{
	uint64_t from;

	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < BLOB_CACHE_SPANS; i++) {
		const struct blob_span *sp = &b->spans[i];
		if (sp->stamp && off >= sp->off && off - sp->off < sp->len) {
			pthread_mutex_unlock(&b->lock);
			return 0;
		}
	}
	from = point_before(b, off)->out;
	for (int i = 0; i < BLOB_CURSORS; i++) {
		const struct dec *c = b->cur[i];
		if (c && c->state != DEC_BROKEN && c->out_pos <= off && c->out_pos > from)
			from = c->out_pos;
	}
	pthread_mutex_unlock(&b->lock);
	return off - from;
}

/*
 * The cursor to read off with: the one furthest along that is still between
 * the nearest seek point p and off, or else the least recently used one,
 * restarted at p.
 */
static int cursor_for(struct blob *b, const struct blob_point *p, uint64_t off,
                      struct dec **ret_dec, struct err *err)
{
	struct dec *best = NULL, *lru = NULL;
	int r, empty = -1;

	for (int i = 0; i < BLOB_CURSORS; i++) {
		struct dec *c = b->cur[i];
		if (!c) {
			empty = empty < 0 ? i : empty;
			continue;
		}
		if (c->state != DEC_BROKEN && c->out_pos <= off && c->out_pos >= p->out &&
		    (!best || c->out_pos > best->out_pos))
			best = c;
		if (!lru || c->stamp < lru->stamp)
			lru = c;
	}
	if (!best) {
		if (empty >= 0) {
			lru = b->cur[empty] = dec_new(b, CURSOR_IN_CAP);
			if (!lru)
				return err_set(err, -ENOMEM,
				               "blob: out of memory for a read cursor");
		}
		b->stats.pread_restarts++;
		r = dec_start(lru, p, err);
		if (r < 0)
			return r;
		best = lru;
	}
	best->stamp = ++b->clock;
	*ret_dec = best;
	return 0;
}

/*
 * Decompresses a span holding off into the cache, continuing from a cursor
 * when one is between the nearest seek point and off. *ret_span is NULL when
 * off is past the end of the stream.
 */
static int span_fill(struct blob *b, uint64_t off, struct blob_span **ret_span, struct err *err)
{
	const struct blob_point *p = point_before(b, off);
	struct blob_span *v;
	struct dec *d = NULL;
	uint64_t start;
	ssize_t n;
	int r;

	*ret_span = NULL;
	v = span_victim(b);
	if (!v)
		return err_set(err, -ENOMEM, "blob: out of memory for the span cache");
	r = cursor_for(b, p, off, &d, err);
	if (r < 0)
		return r;
	start = off - off % SPAN_ALIGN;
	while (d->out_pos < start) {
		uint64_t skip = start - d->out_pos;
		n = dec_read(d, v->data, skip < BLOB_CACHE_SPAN_LEN ? skip : BLOB_CACHE_SPAN_LEN,
		             err);
		if (n <= 0)
			return (int)n;
		b->stats.pread_decompressed += n;
	}
	n = dec_read(d, v->data, BLOB_CACHE_SPAN_LEN, err);
	if (n <= 0)
		return (int)n;
	b->stats.pread_decompressed += n;
	v->off = d->out_pos - n;
	v->len = n;
	v->stamp = ++b->clock;
	/* Before the stream pass the size is unknown: a read past the end but
	 * in the last span's alignment block gets that span, which ends first. */
	if (off - v->off < v->len)
		*ret_span = v;
	return 0;
}

ssize_t blob_pread(struct blob *b, void *buf, size_t len, uint64_t off, struct err *err)
{
	size_t done = 0;
	ssize_t r;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (len > UINT64_MAX - off)
		len = UINT64_MAX - off;
	if (b->comp == BLOB_RAW) {
		if (off >= b->length)
			return 0;
		if (len > b->length - off)
			len = b->length - off;
		r = pread_full(b->fd, buf, len, b->offset + off);
		if (r < 0)
			return err_set(err, (int)r, "blob: read failed at offset %llu: %s",
			               (unsigned long long)off, strerror((int)-r));
		return r;
	}
	/* Seek points a MiB apart (gzip) never need the spill: skip its locks. */
	if (b->spill && !__atomic_load_n(&b->points_near, __ATOMIC_ACQUIRE)) {
		bool served;

		r = spill_pread(b, buf, len, off, &served, err);
		if (served)
			return r;
	}
	pthread_mutex_lock(&b->lock);
	while (done < len) {
		uint64_t o = off + done;
		int64_t size = __atomic_load_n(&b->size, __ATOMIC_ACQUIRE);
		struct blob_span *sp;
		size_t n;

		if (size >= 0 && o >= (uint64_t)size)
			break;
		sp = span_find(b, o);
		if (sp) {
			b->stats.cache_hits++;
		} else {
			b->stats.cache_misses++;
			r = span_fill(b, o, &sp, err);
			if (r < 0)
				goto out;
			if (!sp)
				break;
		}
		n = sp->off + sp->len - o;
		if (n > len - done)
			n = len - done;
		memcpy((char *)buf + done, sp->data + (o - sp->off), n);
		done += n;
	}
	r = done;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}
