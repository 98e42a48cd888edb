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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
 * little-endian words allow.
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
 * Returns whether p has it. The fallback of pool_scan (below).
 */
static int path_clean(const char *p, size_t avail)
{
	size_t start = 0;

	for (;;) {
		size_t i = next_slash_or_nul(p, start, avail);

		if (i == start || (i - start == 1 && p[start] == '.') ||
		    (i - start == 2 && p[start] == '.' && p[start + 1] == '.'))
			return 0;
		if (p[i] == '\0')
			return 1;
		start = i + 1;
	}
}

/*
 * A string of the pool that holds a component that is empty, "." or "..":
 * where it starts, and where its last such component starts.
 */
struct bad_str {
	size_t start, last;
};

/*
 * The paths are checked against the whole pool at once, not one by one: a
 * warm mount looks at every byte of every path of every layer, and walking
 * each path component by component (a mispredicted branch per component)
 * was the largest cost of a remount. One pass over the pool, 64 bytes at a
 * time, finds every position where a component that is empty, "." or ".."
 * starts (right after a '/' or a NUL); a clean index has them only in
 * symlink targets. An entry's path is then clean when its first component
 * is and no such position lies in the rest of its string.
 */
struct pool_marks {
	struct bad_str *bad; /* in pool order */
	size_t n;
};

/* The bits of 64 bytes at p: '/' or NUL, NUL, '.'. */
struct masks {
	uint64_t b, z, d;
};

static inline struct masks block_masks(const char *p)
{
	struct masks m = {0, 0, 0};
#ifdef __SSE2__
	const __m128i slash = _mm_set1_epi8('/'), dot = _mm_set1_epi8('.');
	const __m128i nul = _mm_setzero_si128();

	for (int k = 0; k < 4; k++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
		__m128i vz = _mm_cmpeq_epi8(v, nul);
		__m128i vb = _mm_or_si128(vz, _mm_cmpeq_epi8(v, slash));

		m.z |= (uint64_t)(uint16_t)_mm_movemask_epi8(vz) << (16 * k);
		m.b |= (uint64_t)(uint16_t)_mm_movemask_epi8(vb) << (16 * k);
		m.d |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, dot)) << (16 * k);
	}
#else
	for (int i = 0; i < 64; i++) {
		m.z |= (uint64_t)(p[i] == '\0') << i;
		m.b |= (uint64_t)(p[i] == '\0' || p[i] == '/') << i;
		m.d |= (uint64_t)(p[i] == '.') << i;
	}
#endif
	return m;
}

/* The masks of the 64 bytes at s[at], NULs past the end of the pool. */
static inline struct masks pool_masks(const char *s, size_t len, size_t at)
{
	char tail[64] = {0};

	if (at < len && len - at >= 64)
		return block_masks(s + at);
	if (at < len)
		memcpy(tail, s + at, len - at);
	return block_masks(tail);
}

/* Records a bad component at pos, in the string that starts at start. */
static int mark_bad(struct pool_marks *m, size_t start, size_t pos, size_t max, size_t *cap)
{
	if (m->n && m->bad[m->n - 1].start == start) {
		m->bad[m->n - 1].last = pos;
		return 0;
	}
	if (m->n == max)
		return -1;
	if (m->n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 64;
		struct bad_str *nb = realloc(m->bad, ncap * sizeof(*nb));

		if (!nb)
			return -1;
		m->bad = nb;
		*cap = ncap;
	}
	m->bad[m->n++] = (struct bad_str){start, pos};
	return 0;
}

/*
 * Fills m from positions from..to-1 of the pool s (len bytes, the last a
 * NUL). Returns -1 when more than max strings are bad (a clean index has at
 * most one per symlink), so that what a hostile index makes this hold stays
 * below its entries.
 */
static int pool_scan(const char *s, size_t len, size_t from, size_t to, size_t max,
                     struct pool_marks *m)
{
	struct masks c = pool_masks(s, len, from), n;
	/* whether the byte before from ends a component, and where its string starts */
	uint64_t before = !from || !s[from - 1] || s[from - 1] == '/';
	const char *nul = from ? memrchr(s, '\0', from) : NULL;
	size_t str = nul ? (size_t)(nul - s) + 1 : 0, cap = 0;

	m->bad = NULL;
	m->n = 0;
	for (size_t at = from; at < to; at += 64, c = n) {
		n = pool_masks(s, len, at + 64);
		/* per byte: the one before, after and two after are '/' or NUL, the next a dot */
		uint64_t bm1 = c.b << 1 | before, bp1 = c.b >> 1 | n.b << 63;
		uint64_t bp2 = c.b >> 2 | n.b << 62, dp1 = c.d >> 1 | n.d << 63;
		uint64_t bad = bm1 & (c.b | (c.d & bp1) | (c.d & dp1 & bp2));

		if (to - at < 64)
			bad &= (UINT64_C(1) << (to - at)) - 1;
		for (; bad; bad &= bad - 1) {
			unsigned j = (unsigned)__builtin_ctzll(bad);
			uint64_t zb = c.z & ((UINT64_C(1) << j) - 1);

			if (mark_bad(m, zb ? at + 64 - (size_t)__builtin_clzll(zb) : str, at + j,
			             max, &cap) < 0)
				return -1;
		}
		if (c.z)
			str = at + 64 - (size_t)__builtin_clzll(c.z);
		before = c.b >> 63;
	}
	return 0;
}

struct scan_job {
	const struct layer *l;
	size_t from, to;
	struct pool_marks marks;
	int r;
};

static void *scan_part(void *arg)
{
	struct scan_job *j = arg;

	j->r = pool_scan(j->l->strs, j->l->strs_len, j->from, j->to, j->l->nents, &j->marks);
	return NULL;
}

/*
 * The marks of the whole pool, its halves in two threads for a big index.
 * Returns -1 when there are too many (see pool_scan).
 */
static int pool_marks_of(const struct layer *l, struct pool_marks *m)
{
	struct scan_job a = {l, 0, l->strs_len / 2, {NULL, 0}, 0};
	struct scan_job b = {l, l->strs_len / 2, l->strs_len, {NULL, 0}, 0};
	struct bad_str *all;
	pthread_t t;
	size_t skip;

	if (l->nents < 65536 || pthread_create(&t, NULL, scan_part, &b) != 0) {
		a.to = l->strs_len;
		scan_part(&a);
		*m = a.marks;
		return a.r;
	}
	scan_part(&a);
	pthread_join(t, NULL);
	*m = a.marks;
	if (a.r < 0 || b.r < 0) {
		free(b.marks.bad);
		return -1;
	}
	/* a string across the middle has marks in both halves: one record, the later last */
	skip = m->n && b.marks.n && m->bad[m->n - 1].start == b.marks.bad[0].start;
	if (skip)
		m->bad[m->n - 1].last = b.marks.bad[0].last;
	if (b.marks.n > skip) {
		all = realloc(m->bad, (m->n + b.marks.n - skip) * sizeof(*all));
		if (!all) {
			free(b.marks.bad);
			return -1;
		}
		memcpy(all + m->n, b.marks.bad + skip, (b.marks.n - skip) * sizeof(*all));
		m->bad = all;
		m->n += b.marks.n - skip;
	}
	free(b.marks.bad);
	return 0;
}

/*
 * Whether the string at off is clean, by the marks; *hint is where the last
 * look ended (entries come in pool order, so the next look usually starts
 * there).
 */
static int marked_clean(const char *s, const struct pool_marks *m, size_t off, size_t *hint)
{
	const char *p = s + off;
	size_t lo, hi;

	/* the first component: the pool scan saw what stood before it, not this path's start */
	if (p[0] == '/' || !p[0] ||
	    (p[0] == '.' && (p[1] == '/' || !p[1] || (p[1] == '.' && (p[2] == '/' || !p[2])))))
		return 0;
	if (!m->n || m->bad[0].start > off)
		return 1;
	/* the last bad string starting at or before off */
	lo = *hint < m->n && m->bad[*hint].start <= off ? *hint : 0;
	if (lo + 1 < m->n && m->bad[lo + 1].start <= off) {
		hi = m->n;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			if (m->bad[mid].start <= off)
				lo = mid;
			else
				hi = mid;
		}
	}
	*hint = lo;
	/* strings do not overlap: a bad component after off is in off's string */
	return m->bad[lo].last <= off;
}

struct check_job {
	const struct layer *l;
	const struct pool_marks *marks; /* NULL: check each path on its own */
	uint32_t from, to;
	int ok;
};

static int str_clean(const struct check_job *j, uint32_t off, size_t *hint)
{
	const struct layer *l = j->l;

	return j->marks ? marked_clean(l->strs, j->marks, off, hint)
	                : path_clean(l->strs + off, l->strs_len - off);
}

/* Checks that one entry keeps every promise of layer.h, as an indexed one does. */
static int entry_valid(const struct check_job *j, const struct layer_entry *e, int64_t stream,
                       size_t *hint)
{
	const struct layer *l = j->l;
	uint32_t count;
	size_t p;

	if (e->type > LAYER_FIFO || e->path >= l->strs_len ||
	    (e->link != LAYER_NONE && e->link >= l->strs_len))
		return 0;
	/* paths as clean_path() leaves them */
	if (!str_clean(j, e->path, hint))
		return 0;

	/* what readers rely on without checking: links have targets, the mode says
	 * the type, only files have bytes, and the bytes lie inside the stream */
	if ((e->type == LAYER_SYMLINK || e->type == LAYER_HARDLINK) != (e->link != LAYER_NONE))
		return 0;
	if ((e->mode & S_IFMT) != layer_type_bits[e->type] || (e->type != LAYER_REG && e->size))
		return 0;
	/* after the check above: a hardlink has a target to look at */
	if (e->type == LAYER_HARDLINK && !str_clean(j, e->link, hint))
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

static void *check_entries(void *arg)
{
	struct check_job *j = arg;
	int64_t stream = blob_size(j->l->blob);
	size_t hint = 0;

	j->ok = 1;
	for (uint32_t i = j->from; j->ok && i < j->to; i++)
		j->ok = entry_valid(j, &j->l->ents[i], stream, &hint);
	return NULL;
}

/*
 * Every entry, in two threads for a big index: a remount of an image with
 * one big layer would otherwise wait for one core to read every entry.
 */
static int entries_valid(const struct layer *l)
{
	struct pool_marks marks;
	struct check_job a = {l, &marks, 0, l->nents / 2, 0};
	struct check_job b = {l, &marks, l->nents / 2, l->nents, 0};
	pthread_t t;

	if (pool_marks_of(l, &marks) < 0)
		a.marks = b.marks = NULL;
	if (l->nents < 65536 || pthread_create(&t, NULL, check_entries, &a) != 0) {
		a.to = l->nents;
		check_entries(&a);
	} else {
		check_entries(&b);
		pthread_join(t, NULL);
	}
	free(marks.bad);
	return a.ok && (a.to == l->nents || b.ok);
}

size_t layer_export_hot_len(const struct layer *l)
{
	return sizeof(struct layer_header) + (size_t)l->nents * sizeof(struct layer_entry);
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
