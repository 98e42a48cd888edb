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
 */
#include "nested.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static int open_and_scan(struct scan_ctx *c, const char *path, const void *data, size_t len,
                         unsigned depth, enum kind k, bool raw_only)
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
	rc = scan_members(c, a, path, len, depth);
	archive_read_free(a);
	return rc;
}

int scan_nested(struct scan_ctx *c, const char *path, const void *data, size_t len, unsigned depth)
{
	enum kind k = detect(data, len);
	int rc;

	scan_ctx_stats(c)->archives++;
	rc = open_and_scan(c, path, data, len, depth, k, false);
	/* The tar reader takes a gzip stream that starts with zero blocks for
	 * an empty tar; such a stream is a compressed file: read it raw. */
	if (rc == 2 && k == K_GZIP)
		rc = open_and_scan(c, path, data, len, depth, k, true);
	if (rc < 0)
		return rc;
	return rc == 1 ? 0 : 1;
}
