/*
 * nested: archives inside scanned files (zip and its kin jar, war, whl, egg,
 * apk; tar; gzip, including tar.gz/tgz and a lone .gz). Secrets ship inside
 * application bundles, so each member is scanned like a file, with the path
 * "outer.jar!/conf/x", and archives inside members are opened in turn.
 *
 * Formats are detected by magic bytes, never by name. Everything the input
 * controls is bounded (struct scan_limits): depth, members per archive,
 * bytes expanded for one top-level buffer, and the expansion ratio (checked
 * once past 1 MiB, so that small, very compressible files pass); each limit
 * hit is counted in the scanner's stats, never silent.
 *
 * When built with ISA-L (HAVE_ISAL), a gzip stream is first inflated with it
 * (two to three times faster than zlib, which libarchive uses) into memory,
 * and libarchive then reads the inflated bytes exactly as it would have read
 * them through its gzip filter: same formats, same members, same counters.
 * Only clean streams take that way (whole members, checksums right, nothing
 * after them) and only up to what the limits would let libarchive expand;
 * anything else is left to libarchive as before.
 */
#include "nested.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#if HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

enum kind {
	K_NONE,
	K_ZIP,
	K_TAR,
	K_GZIP,
};

static enum kind detect(const uint8_t *d, size_t len)
{
	if (len >= 4 && d[0] == 'P' && d[1] == 'K' &&
	    ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6)))
		return K_ZIP;
	if (len >= 18 && d[0] == 0x1f && d[1] == 0x8b && d[2] == 8)
		return K_GZIP;
	if (len >= 512 && !memcmp(d + 257, "ustar", 5))
		return K_TAR;
	return K_NONE;
}

bool scan_nested_detect(const uint8_t *d, size_t len)
{
	return detect(d, len) != K_NONE;
}

/* The name a lone gzip stream decompresses to: "x.gz" -> "x". */
static void raw_name(const char *path, char *out, size_t cap)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 3 && !strcmp(base + n - 3, ".gz"))
		n -= 3;
	else if (n > 4 && !strcmp(base + n - 4, ".tgz"))
		n -= 4;
	if (!n)
		snprintf(out, cap, "data");
	else
		snprintf(out, cap, "%.*s", (int)(n < cap - 1 ? n : cap - 1), base);
}

/* 0 when done, 1 when nothing could be read (scan raw), 2 when the archive
 * was empty, <0 on errors. */
static int scan_members(struct scan_ctx *c, struct archive *a, const char *path, size_t inlen,
                        unsigned depth)
{
	const struct scan_limits *l = scan_ctx_limits(c);
	struct scan_stats *st = scan_ctx_stats(c);
	struct archive_entry *ent;
	unsigned members = 0, entries = 0;
	uint64_t here = 0; /* bytes expanded from this archive, for its ratio */
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc = 0, r;

	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(ent);
		char rawbuf[256], *mpath = NULL;
		la_int64_t declared = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1;
		size_t got = 0;
		bool too_big = false;

		/* every entry counts: a million directories is a bomb too */
		if (++entries > l->max_members) {
			st->limit_members++;
			break;
		}
		if (archive_entry_filetype(ent) != AE_IFREG)
			continue;
		members++;
		if (archive_format(a) == ARCHIVE_FORMAT_RAW || !name || !*name) {
			raw_name(path, rawbuf, sizeof(rawbuf));
			name = rawbuf;
		}
		if (declared > 0 && (uint64_t)declared > l->max_file_size) {
			st->files++;
			st->skipped_too_large++;
			continue;
		}
		/* Read the member, bounded by the file size limit and by what is
		 * left of the expansion budget of this top-level buffer. */
		for (;;) {
			ssize_t n;

			if (got == cap) {
				size_t nc = cap ? cap * 2 : 64 << 10;
				uint8_t *nb;

				if (nc > l->max_file_size + 1)
					nc = l->max_file_size + 1;
				if (nc <= cap) {
					too_big = true;
					break;
				}
				nb = realloc(buf, nc);
				if (!nb) {
					rc = -ENOMEM;
					goto out;
				}
				buf = nb;
				cap = nc;
			}
			n = archive_read_data(a, buf + got, cap - got);
			if (n < 0) {
				st->archive_errors++;
				break;
			}
			if (n == 0)
				break;
			got += (size_t)n;
			here += (uint64_t)n;
			if (l->max_expanded && scan_ctx_expand(c, (uint64_t)n) > l->max_expanded) {
				st->limit_expanded++;
				goto out;
			}
		}
		if (too_big || got > l->max_file_size) {
			st->files++;
			st->skipped_too_large++;
			continue;
		}
		/* Ratio: bytes expanded from this archive against its own size. */
		if (here > (1u << 20) && l->max_ratio && inlen && here / inlen > l->max_ratio) {
			st->limit_expanded++;
			goto out;
		}
		if (asprintf(&mpath, "%s!/%s", path, name[0] == '/' ? name + 1 : name) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		st->members++;
		rc = scan_buffer_at(c, mpath, buf, got, depth + 1);
		free(mpath);
		if (rc)
			goto out;
	}
	if (r == ARCHIVE_FATAL) {
		st->archive_errors++;
		/* Not an archive after all (or damaged from the start): let the
		 * caller scan the raw bytes instead. */
		if (members == 0)
			rc = 1;
	} else if (members == 0 && !rc) {
		rc = 2; /* a clean, empty archive */
	}
out:
	free(buf);
	return rc;
}

/* inlen: the size of the archive as found in its parent, for the ratio. */
static int open_and_scan(struct scan_ctx *c, const char *path, const void *data, size_t len,
                         size_t inlen, unsigned depth, enum kind k, bool raw_only)
{
	struct archive *a = archive_read_new();
	int rc;

	if (!a)
		return -ENOMEM;
	archive_read_support_filter_gzip(a);
	if (!raw_only) {
		archive_read_support_format_tar(a);
		archive_read_support_format_gnutar(a);
		archive_read_support_format_zip(a);
	}
	/* A gzip stream that holds no tar is one file: read it raw. */
	if (k == K_GZIP)
		archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
		archive_read_free(a);
		return 1;
	}
	rc = scan_members(c, a, path, inlen, depth);
	archive_read_free(a);
	return rc;
}

#if HAVE_ISAL
/*
 * Inflates a gzip stream of one or more whole members into *out, at most
 * cap bytes: 0 when it did, -1 when the stream is damaged, truncated,
 * followed by other bytes, or larger than cap (libarchive then reads it, as
 * it always did, with its own error handling and limits), -ENOMEM.
 */
static int isal_gunzip(const uint8_t *in, size_t len, size_t cap, uint8_t **out, size_t *outlen)
{
	struct inflate_state *st = malloc(sizeof(*st));
	uint8_t *buf = NULL;
	size_t got = 0, size = 0, pos = 0;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (!st)
		return -ENOMEM;
	isal_inflate_init(st);
	st->crc_flag = ISAL_GZIP;
	st->next_in = (uint8_t *)in;
	st->avail_in = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	for (;;) {
		size_t room;
		uint32_t in_before;
		int r;

		if (got == size) {
			size_t ns = size ? 2 * size : (len < (1u << 20) ? 4 * len + 4096 : 4 * len);
			uint8_t *nb;

			if (ns > cap)
				ns = cap;
			if (ns <= size)
				break; /* larger than cap */
			if (!(nb = realloc(buf, ns))) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			size = ns;
		}
		room = size - got > UINT32_MAX ? UINT32_MAX : size - got;
		st->next_out = buf + got;
		st->avail_out = (uint32_t)room;
		in_before = st->avail_in;
		r = isal_inflate(st);
		got += room - st->avail_out;
		if (r < 0 || r == ISAL_NEED_DICT)
			break; /* damaged */
		if (st->block_state == ISAL_BLOCK_FINISH) {
			/* whole bytes still in the bit buffer were read past the member */
			pos = (size_t)(st->next_in - in) - (size_t)(st->read_in_length / 8);
			if (pos == len) {
				rc = 0;
				break;
			}
			if (len - pos < 18 || in[pos] != 0x1f || in[pos + 1] != 0x8b ||
			    in[pos + 2] != 8)
				break; /* something else follows: libarchive decides */
			isal_inflate_reset(st);
			st->crc_flag = ISAL_GZIP;
			st->next_in = (uint8_t *)in + pos;
			st->avail_in = len - pos > UINT32_MAX ? UINT32_MAX : (uint32_t)(len - pos);
			continue;
		}
		if (st->avail_out &&
		    (!st->avail_in || (st->avail_in == in_before && room == st->avail_out)))
			break; /* truncated, or stuck */
	}
	free(st);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = got;
	return 0;
}

/*
 * What ISA-L may inflate ahead of libarchive: no more than libarchive would
 * expand before a limit stops it (one file's size, what is left of this top
 * buffer's budget, the ratio past 1 MiB), so that a bomb costs no more than
 * it did; past that, libarchive runs and stops at the limit as before.
 */
static size_t isal_cap(struct scan_ctx *c, size_t len)
{
	const struct scan_limits *l = scan_ctx_limits(c);
	uint64_t cap = l->max_file_size + 1, done = scan_ctx_expand(c, 0);

	if (l->max_expanded)
		cap = done >= l->max_expanded            ? 0
		      : l->max_expanded - done + 1 < cap ? l->max_expanded - done + 1
		                                         : cap;
	if (l->max_ratio) {
		uint64_t r = (uint64_t)len * l->max_ratio;

		if (r < (1u << 20))
			r = 1u << 20;
		if (r + 1 < cap)
			cap = r + 1;
	}
	return cap > SIZE_MAX ? SIZE_MAX : (size_t)cap;
}

/* scan_nested for gzip: 1, 0 or <0 as scan_nested; 2 when ISA-L did not take it. */
static int gzip_isal(struct scan_ctx *c, const char *path, const void *data, size_t len,
                     unsigned depth)
{
	size_t cap = isal_cap(c, len), ilen;
	uint8_t *inflated;
	int rc;

	if (!cap)
		return 2;
	rc = isal_gunzip(data, len, cap, &inflated, &ilen);
	if (rc == -1)
		return 2;
	if (rc < 0)
		return rc;
	if (!ilen) {
		free(inflated); /* empty: libarchive's own way with it is the reference */
		return 2;
	}
	rc = open_and_scan(c, path, inflated, ilen, len, depth, K_GZIP, false);
	if (rc == 2)
		rc = open_and_scan(c, path, inflated, ilen, len, depth, K_GZIP, true);
	free(inflated);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : 1;
}
#endif

int scan_nested(struct scan_ctx *c, const char *path, const void *data, size_t len, unsigned depth)
{
	enum kind k = detect(data, len);
	int rc;

	scan_ctx_stats(c)->archives++;
#if HAVE_ISAL
	if (k == K_GZIP && (rc = gzip_isal(c, path, data, len, depth)) != 2)
		return rc;
#endif
	rc = open_and_scan(c, path, data, len, len, depth, k, false);
	/* The tar reader takes a gzip stream that starts with zero blocks for
	 * an empty tar; such a stream is a compressed file: read it raw. */
	if (rc == 2 && k == K_GZIP)
		rc = open_and_scan(c, path, data, len, len, depth, k, true);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : 1;
}
