/*
 * Unit tests of fs/blob: every input is generated here (random and
 * compressible data, compressed with zlib and libzstd in the ways real
 * registries and tools do), written under a mkdtemp() directory, opened as a
 * byte range of a larger file, and read back both as a stream and at random.
 */
#include "blobgen.h"

#include <stddef.h>
#if HAVE_ISAL
#include <isa-l/igzip_lib.h> /* the snapshot layout, to corrupt it on purpose */
#endif
#include <signal.h>
#include <sys/resource.h>

/*
 * The full round for a well-formed blob: reads before the stream pass, the
 * pass, reads after it, a deep 4 KiB read through an imported index.
 */
static void check_blob(const char *name, const struct buf *stored, const struct buf *want,
                       enum blob_compression comp, size_t prefix, int reads_before, int reads_after,
                       uint64_t deep_max)
{
	char full[128];
	struct blob *b = NULL, *b2 = NULL;
	struct blob_stats st;
	struct err e = {0};
	uint64_t off;
	bool match = false;
	void *idx = NULL;
	size_t idx_len = 0;
	int fd = write_file(stored, prefix, &off);
	int r;

	snprintf(full, sizeof(full), "%s [%s]", name, engine);
	name = full;
	r = blob_open(fd, off, stored->len, NULL, &b, &e);
	CHECK(r == 0, "%s: open (%s)", name, e.msg);
	if (r < 0)
		goto out;
	CHECK(blob_compression(b) == comp, "%s: sniffed as %s", name,
	      blob_compression_name(blob_compression(b)));
	CHECK(blob_stored_size(b) == stored->len, "%s: stored size", name);
	CHECK(blob_size(b) == (comp == BLOB_RAW ? (int64_t)stored->len : -1),
	      "%s: size before the stream pass", name);
	CHECK(random_reads(b, want, reads_before, 200 * 1024), "%s: random preads before the pass",
	      name);
	r = stream_all(b, stored, want, &match, &e);
	CHECK(r == 0 && match, "%s: stream output, run sizes and digests (%s)", name, e.msg);
	CHECK(blob_size(b) == (int64_t)want->len, "%s: size after the stream pass", name);
	CHECK(random_reads(b, want, reads_after, 150 * 1024), "%s: random preads after the pass",
	      name);
	CHECK(random_reads(b, want, reads_after, 5000), "%s: small random preads after the pass",
	      name);

	r = blob_index_export(b, &idx, &idx_len, &e);
	CHECK(r == 0, "%s: index export (%s)", name, e.msg);
	if (r == 0 && comp == BLOB_GZIP) {
		/* seek points (read from the index: 48-byte head, 24-byte points,
		 * each followed by as many bytes as its bytes 19..22 say) no further
		 * apart than a span and a deflate block (the blocks of this data
		 * give < 512 KiB); with ISA-L, snapshots (kind 3) exactly a span */
		const unsigned char *q = (const unsigned char *)idx + 48;
		uint64_t prev = 0, gap = 0, count = get64((const unsigned char *)idx + 32);
		unsigned kinds[4] = {0};
		for (uint64_t i = 0; i <= count; i++) {
			uint64_t at = i < count ? get64(q + 8) : want->len;
			if (at - prev > gap)
				gap = at - prev;
			prev = at;
			if (i < count) {
				kinds[q[16] & 3]++;
				q +=
				    24 + (q[19] | q[20] << 8 | q[21] << 16 | (uint32_t)q[22] << 24);
			}
		}
		CHECK(gap <= BLOB_SEEK_SPAN + 512 * 1024,
		      "%s: seek points at most %llu bytes apart (%llu points)", name,
		      (unsigned long long)gap, (unsigned long long)count);
		CHECK(q == (const unsigned char *)idx + idx_len,
		      "%s: the points fill the index exactly", name);
#if HAVE_ISAL
		CHECK(strcmp(engine, "zlib") ? kinds[3] > 0 && kinds[2] == 0
		                             : kinds[2] > 0 && kinds[3] == 0,
		      "%s: ISA-L makes snapshots, zlib checkpoints (%u checkpoints, %u snapshots)",
		      name, kinds[2], kinds[3]);
#endif
	}
	r = blob_open(fd, off, stored->len, NULL, &b2, &e);
	if (r == 0)
		r = blob_index_import(b2, idx, idx_len, &e);
	CHECK(r == 0 && blob_size(b2) == (int64_t)want->len, "%s: index import (%s)", name, e.msg);
	if (r == 0 && comp != BLOB_RAW && want->len > 8 * MiB) {
		unsigned char got[4096];
		uint64_t deep = want->len - want->len / 3 + 777;
		ssize_t n = blob_pread(b2, got, sizeof(got), deep, &e);

		blob_stats(b2, &st);
		CHECK(n == sizeof(got) && !memcmp(got, want->p + deep, sizeof(got)),
		      "%s: deep 4 KiB pread through the imported index", name);
		CHECK(!deep_max || st.pread_decompressed <= deep_max,
		      "%s: deep 4 KiB pread decompressed %llu bytes (%llu seek points)", name,
		      (unsigned long long)st.pread_decompressed,
		      (unsigned long long)st.seek_points);
	}
	if (b2)
		CHECK(random_reads(b2, want, reads_after / 2, 70000),
		      "%s: random preads through the import", name);
out:
	free(idx);
	blob_free(b2);
	blob_free(b);
	close(fd);
}

static void test_raw(void)
{
	struct buf d = gen_data(3 * MiB + 17);

	check_blob("raw", &d, &d, BLOB_RAW, 4097, 50, 200, 0);
	free(d.p);
}

static void test_empty(void)
{
	struct buf d = {0};
	struct blob *b = NULL;
	struct err e = {0};
	unsigned char x;
	uint64_t off;
	bool match;
	int fd = write_file(&d, 10, &off);

	CHECK(blob_open(fd, off, 0, NULL, &b, &e) == 0 && blob_compression(b) == BLOB_RAW,
	      "empty: opens as raw");
	CHECK(stream_all(b, &d, &d, &match, &e) == 0 && match, "empty: stream");
	CHECK(blob_pread(b, &x, 1, 0, &e) == 0, "empty: pread returns 0");
	blob_free(b);
	close(fd);
}

/* The nearest gzip point is at most a span and a deflate block behind the
 * read, and the read fills a cached span of 256 KiB. */
#define GZIP_DEEP_MAX (BLOB_SEEK_SPAN + 512 * 1024)

static void test_gzip_single(const struct buf *d)
{
	struct buf z = {0};

	gzip_member(&z, d->p, d->len, 6);
	check_blob("gzip single member", &z, d, BLOB_GZIP, 12345, 6, 100, GZIP_DEEP_MAX);
	free(z.p);
}

static void test_gzip_multi(const struct buf *d)
{
	struct buf z = {0};
	size_t pos = 0;
	int members = 0;

	/* pigz --independent and eStargz: big members, tiny ones, an empty one */
	while (pos < d->len) {
		size_t n = members % 5 == 4 ? rnd() % 3000 : rnd() % (3 * MiB);
		if (n > d->len - pos)
			n = d->len - pos;
		gzip_member(&z, d->p + pos, n, 1 + members % 6);
		pos += n;
		members++;
	}
	gzip_member(&z, d->p, 0, 6);
	check_blob("gzip multi-member", &z, d, BLOB_GZIP, 0, 4, 100, GZIP_DEEP_MAX);
	free(z.p);
}

static void test_gzip_trailing(const struct buf *d)
{
	struct buf z = {0};
	unsigned char zero[5000] = {0};
	struct buf small = {d->p, 5 * MiB, 0};

	gzip_member(&z, small.p, small.len, 6);
	buf_add(&z, zero, sizeof(zero));
	check_blob("gzip with trailing zeros", &z, &small, BLOB_GZIP, 512, 4, 100, GZIP_DEEP_MAX);
	z.len -= sizeof(zero);
	buf_add(&z, "not a gzip member, just garbage", 31);
	check_blob("gzip with trailing garbage", &z, &small, BLOB_GZIP, 512, 4, 100, GZIP_DEEP_MAX);
	free(z.p);
}

/* A broken blob: the stream fails naming an offset, preads before it work. */
static void check_broken(const char *name, const struct buf *stored, const struct buf *want,
                         uint64_t min_off, uint64_t max_off, const char *needle)
{
	char full[128];
	struct blob *b = NULL;
	struct err e = {0};
	uint64_t off;
	bool match;
	unsigned char got[1000];
	int fd = write_file(stored, 100, &off);
	int r;

	snprintf(full, sizeof(full), "%s [%s]", name, engine);
	name = full;
	if (blob_open(fd, off, stored->len, NULL, &b, &e) < 0)
		abort();
	CHECK(blob_pread(b, got, sizeof(got), 1000, &e) == sizeof(got) &&
	          !memcmp(got, want->p + 1000, sizeof(got)),
	      "%s: pread near the start works", name);
	r = stream_all(b, stored, want, &match, &e);
	CHECK(r == -EIO && strstr(e.msg, needle), "%s: stream fails: %s", name, e.msg);
	CHECK(msg_offset(&e) >= min_off && msg_offset(&e) <= max_off,
	      "%s: error names stored offset %llu (damage at %llu)", name,
	      (unsigned long long)msg_offset(&e), (unsigned long long)min_off);
	err_clear(&e);
	r = blob_pread(b, got, sizeof(got), want->len - 10, &e);
	CHECK(r == -EIO && strstr(e.msg, needle), "%s: pread past the damage fails: %s", name,
	      e.msg);
	blob_free(b);
	close(fd);
}

static void test_gzip_broken(const struct buf *d)
{
	struct buf z = {0};
	struct buf small = {d->p, 6 * MiB, 0};
	size_t full;

	gzip_member(&z, small.p, small.len, 6);
	full = z.len;
	z.len = full / 2;
	check_broken("truncated gzip", &z, &small, full / 2 - 64 * 1024, full / 2,
	             "gzip data truncated at stored offset");
	z.len = full;
	for (size_t i = 0; i < 64; i++)
		z.p[full / 2 + i] ^= 0x5a;
	check_broken("corrupt gzip", &z, &small, full / 2, full,
	             "gzip data corrupt at stored offset");

	/* a structural error shows where it is, not at the CRC: the second
	 * member's first block has the reserved block type 3 */
	{
		size_t second;
		z.len = 0;
		gzip_member(&z, small.p, 3 * MiB, 6);
		second = z.len;
		gzip_member(&z, small.p + 3 * MiB, small.len - 3 * MiB, 6);
		z.p[second + 10] |= 0x06;
		check_broken("gzip with an invalid block type", &z, &small, second + 10,
		             second + 16, "gzip data corrupt at stored offset");
	}
	free(z.p);
}

static void test_zstd(const struct buf *d)
{
	struct buf z = {0};
	size_t pos = 0;
	int frames = 0;

	zstd_frame(&z, d->p, d->len, 3);
	/* one frame has no seek point but its start: a deep read costs it all */
	check_blob("zstd single frame", &z, d, BLOB_ZSTD, 777, 4, 16, 0);
	z.len = 0;
	zstd_skippable(&z, 0xe, 100);
	while (pos < d->len) {
		size_t n = rnd() % (2 * MiB);
		if (n > d->len - pos)
			n = d->len - pos;
		zstd_frame(&z, d->p + pos, n, 1 + frames % 5);
		if (frames % 3 == 1)
			zstd_skippable(&z, frames % 16, frames * 7);
		pos += n;
		frames++;
	}
	/* frames of up to 2 MiB: a read costs at most one frame and a span */
	check_blob("zstd multi-frame, skippable frames", &z, d, BLOB_ZSTD, 3, 4, 100,
	           2 * MiB + 320 * 1024);
	{
		static const unsigned char zero[3000];
		struct buf small = {d->p, 5 * MiB, 0};
		z.len = 0;
		zstd_frame(&z, small.p, small.len, 3);
		buf_add(&z, zero, sizeof(zero));
		check_blob("zstd with trailing zeros", &z, &small, BLOB_ZSTD, 9, 2, 40, 0);
	}
	free(z.p);
}

/* Before the stream pass the size is unknown: reads just past the end, in the
 * 64 KiB block where the stream ends, or in the 256 KiB span before it, get 0. */
static void test_zstd_past_end(const struct buf *d)
{
	struct buf z = {0}, small = {d->p, 3 * MiB + 4567, 0};
	unsigned char got[8192];
	struct blob *b = NULL;
	struct err e = {0};
	uint64_t off;
	int fd;

	zstd_frame(&z, small.p, small.len, 3);
	fd = write_file(&z, 0, &off);
	if (blob_open(fd, off, z.len, NULL, &b, &e) < 0)
		abort();
	CHECK(blob_pread(b, got, sizeof(got), small.len + 100, &e) == 0,
	      "zstd, size unknown: a read just past the end returns 0");
	CHECK(blob_pread(b, got, sizeof(got), small.len - 100, &e) == 100 &&
	          !memcmp(got, small.p + small.len - 100, 100),
	      "zstd, size unknown: a read across the end is short");
	CHECK(blob_pread(b, got, sizeof(got), small.len + 200, &e) == 0,
	      "zstd, size unknown: and one past it, from the cached span, returns 0");
	blob_free(b);
	close(fd);
	free(z.p);
}

/* Reading a single-frame zstd blob front to back must not be quadratic. */
static void test_zstd_sequential(const struct buf *d)
{
	struct buf z = {0};
	struct blob *b = NULL;
	struct blob_stats st;
	struct err e = {0};
	unsigned char *got = malloc(128 * 1024);
	uint64_t off, pos;
	bool ok = true;
	int fd;

	zstd_frame(&z, d->p, d->len, 3);
	fd = write_file(&z, 0, &off);
	if (blob_open(fd, off, z.len, NULL, &b, &e) < 0)
		abort();
	for (pos = 0; ok; pos += 128 * 1024) {
		ssize_t n = blob_pread(b, got, 128 * 1024, pos, &e);
		if (n <= 0)
			break;
		ok = !memcmp(got, d->p + pos, n);
	}
	blob_stats(b, &st);
	CHECK(ok && pos >= d->len, "zstd sequential 128 KiB preads return the data");
	CHECK(st.pread_decompressed <= d->len + 256 * 1024 && st.pread_restarts == 1,
	      "zstd sequential preads are linear: %llu bytes decompressed, %llu restarts",
	      (unsigned long long)st.pread_decompressed, (unsigned long long)st.pread_restarts);
	blob_free(b);

	/* three readers take turns, each reading its own 8 MiB region in order:
	 * with one cursor every turn would decompress from the frame start */
	if (blob_open(fd, off, z.len, NULL, &b, &e) < 0)
		abort();
	for (pos = 0; ok && pos < 8 * MiB; pos += 128 * 1024) {
		for (int r = 0; r < 3 && ok; r++) {
			uint64_t at = r * 12 * MiB + pos;
			ok = blob_pread(b, got, 128 * 1024, at, &e) == 128 * 1024 &&
			     !memcmp(got, d->p + at, 128 * 1024);
		}
	}
	blob_stats(b, &st);
	CHECK(ok, "zstd interleaved sequential readers get the data");
	CHECK(st.pread_decompressed <= 2 * d->len && st.pread_restarts <= 6,
	      "zstd interleaved readers keep their own cursors: %llu bytes decompressed, "
	      "%llu restarts",
	      (unsigned long long)st.pread_decompressed, (unsigned long long)st.pread_restarts);
	blob_free(b);
	close(fd);
	free(got);
	free(z.p);
}

static void check_bomb(const char *name, const struct buf *z, const struct blob_limits *l,
                       uint64_t read_at)
{
	struct blob *b = NULL;
	struct err e = {0};
	unsigned char x[100];
	uint64_t off;
	bool match;
	struct buf none = {0};
	int fd = write_file(z, 0, &off);
	int r;

	if (blob_open(fd, off, z->len, l, &b, &e) < 0)
		abort();
	r = blob_pread(b, x, sizeof(x), read_at, &e);
	CHECK(r == -EFBIG && strstr(e.msg, "decompression bomb"), "%s: pread refused: %s", name,
	      e.msg);
	err_clear(&e);
	r = stream_all(b, z, &none, &match, &e);
	CHECK(r == -EFBIG && strstr(e.msg, "decompression bomb"), "%s: stream refused: %s", name,
	      e.msg);
	blob_free(b);
	close(fd);
}

/* A frame whose window passes zstd_window_log_max is refused, not decoded. */
static void test_zstd_window(const struct buf *d)
{
	struct buf z = {0};
	struct blob_limits l;
	struct blob *b = NULL;
	struct err e = {0};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(8 * MiB), n;
	unsigned char got[100];
	uint64_t off;
	int fd;

	z.p = malloc(cap);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 23);
	n = ZSTD_compress2(cc, z.p, cap, d->p, 8 * MiB);
	if (ZSTD_isError(n))
		abort();
	z.len = n;
	fd = write_file(&z, 0, &off);
	blob_limits_default(&l);
	l.zstd_window_log_max = 20;
	if (blob_open(fd, off, z.len, &l, &b, &e) < 0)
		abort();
	CHECK(blob_pread(b, got, sizeof(got), 0, &e) == -EFBIG && strstr(e.msg, "window"),
	      "zstd window above the limit refused: %s", e.msg);
	blob_free(b);
	l.zstd_window_log_max = 23;
	if (blob_open(fd, off, z.len, &l, &b, &e) < 0)
		abort();
	CHECK(blob_pread(b, got, sizeof(got), 5 * MiB, &e) == sizeof(got) &&
	          !memcmp(got, d->p + 5 * MiB, sizeof(got)),
	      "zstd window at the limit accepted");
	blob_free(b);
	close(fd);
	ZSTD_freeCCtx(cc);
	free(z.p);
}

static void test_bombs(void)
{
	unsigned char *zeros = calloc(1, MiB);
	struct blob_limits l;
	struct buf z = {0};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	unsigned char tmp[65536];

	blob_limits_default(&l);
	l.max_output = 64 * MiB;
	gzip_member(&z, zeros, MiB, 9);
	{
		struct buf one = {0};
		buf_add(&one, z.p, z.len);
		for (int i = 1; i < 1024; i++)
			buf_add(&z, one.p, one.len);
		free(one.p);
	}
	check_bomb("gzip 1 GiB of zeros, max_output 64 MiB", &z, &l, 500 * MiB);

	z.len = 0;
	for (int i = 0; i < 1024; i++) {
		ZSTD_inBuffer in = {zeros, MiB, 0};
		size_t left;
		do {
			ZSTD_outBuffer out = {tmp, sizeof(tmp), 0};
			left = ZSTD_compressStream2(cc, &out, &in,
			                            i == 1023 ? ZSTD_e_end : ZSTD_e_continue);
			buf_add(&z, tmp, out.pos);
		} while (in.pos < in.size || (i == 1023 && left));
	}
	check_bomb("zstd 1 GiB of zeros, max_output 64 MiB", &z, &l, 500 * MiB);

	/* the ratio: 2 MiB of noise then 200 MiB of zeros, stored > 1 MiB */
	blob_limits_default(&l);
	l.max_expansion = 20;
	z.len = 0;
	{
		struct buf noise = {0};
		for (int i = 0; i < 2 * 1024 * 1024 / 8; i++) {
			uint64_t v = rnd();
			buf_add(&noise, &v, 8);
		}
		gzip_member(&z, noise.p, noise.len, 1);
		for (int i = 0; i < 200; i++)
			gzip_member(&z, zeros, MiB, 1);
		free(noise.p);
	}
	check_bomb("gzip expanding 100x with max_expansion 20", &z, &l, 150 * MiB);
	ZSTD_freeCCtx(cc);
	free(zeros);
	free(z.p);
}

static void check_refused(struct blob *b, const unsigned char *idx, size_t len, const char *what)
{
	struct err e = {0};
	int r = blob_index_import(b, idx, len, &e);

	CHECK(r == -EINVAL && e.msg[0], "corrupt index refused: %s (%s)", what, e.msg);
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}

static void test_index_refusal(const struct buf *d)
{
	struct buf z = {0}, small = {d->p, 8 * MiB, 0};
	struct blob *b = NULL, *b2 = NULL;
	struct err e = {0};
	unsigned char *idx = NULL, *bad;
	size_t len = 0;
	uint64_t off;
	bool match;
	int fd;

	gzip_member(&z, small.p, small.len, 6);
	fd = write_file(&z, 50, &off);
	if (blob_open(fd, off, z.len, NULL, &b, &e) < 0 || blob_open(fd, off, z.len, NULL, &b2, &e))
		abort();
	CHECK(blob_index_export(b, (void **)&idx, &len, &e) == -EINVAL,
	      "index export before the stream pass is refused");
	CHECK(stream_all(b, &z, &small, &match, &e) == 0 && match, "index blob streams");
	CHECK(blob_index_export(b, (void **)&idx, &len, &e) == 0 && len > 40 + 24,
	      "index exported, %zu bytes", len);
	bad = malloc(len + 1);
#define MUTATE(what, stmt)                                                                         \
	do {                                                                                       \
		size_t blen = len;                                                                 \
		memcpy(bad, idx, len);                                                             \
		stmt;                                                                              \
		check_refused(b2, bad, blen, what);                                                \
	} while (0)
	MUTATE("bad magic", bad[0] ^= 1);
	MUTATE("bad version", bad[8] = 1);
	MUTATE("other compression", bad[12] = BLOB_ZSTD);
	MUTATE("other stored size", put64(bad + 16, z.len + 1));
	MUTATE("size beyond max_output", put64(bad + 24, UINT64_MAX / 2));
	MUTATE("count too large", put64(bad + 32, 1000000));
	MUTATE("count one more", bad[32]++);
	MUTATE("count one less", bad[32]--);
	MUTATE("truncated", blen -= 100);
	MUTATE("header only", blen = 48);
	MUTATE("trailing byte", bad[len] = 0; blen++);
	MUTATE("empty", blen = 0);
	MUTATE("point beyond the stored size", put64(bad + 48, z.len + 5));
	MUTATE("point out past the size", put64(bad + 56, small.len + 1));
	MUTATE("point at offset 0", put64(bad + 48, 0));
	MUTATE("bad kind", bad[64] = 7);
	MUTATE("bad bit count", bad[65] = 9);
	MUTATE("bit value too wide", bad[65] = 1; bad[66] = 2);
	MUTATE("nonzero padding", bad[71] = 1);
	MUTATE("point length past the end", bad[70] = 0x7f);
	MUTATE("point length one short", bad[67]--);
	if (bad[32] >= 2) {
		/* the second point moved before the first */
		size_t second = 48 + 24 + (bad[67] | bad[68] << 8 | bad[69] << 16);
		MUTATE("offsets not increasing", put64(bad + second, 1));
	}
#if HAVE_ISAL
	if (bad[64] == 3) {
		/* the first point is an ISA-L snapshot: its state at 48 + 24 */
		const size_t st = 48 + 24;
		MUTATE("snapshot of another ISA-L build", bad[40] ^= 1);
		MUTATE("snapshot: bad block state",
		       memset(bad + st + offsetof(struct inflate_state, block_state), 0x55, 4));
		MUTATE("snapshot: bit buffer too long",
		       memset(bad + st + offsetof(struct inflate_state, read_in_length), 0x7f, 4));
		MUTATE("snapshot: output buffer count disagrees with its length",
		       bad[st + offsetof(struct inflate_state, tmp_out_valid)] ^= 1);
		MUTATE(
		    "snapshot: pending copy too long",
		    memset(bad + st + offsetof(struct inflate_state, copy_overflow_length), 1, 4));
	}
	if (bad[64] == 3 &&
	    ((const struct inflate_state *)(idx + 48 + 24))->block_state == ISAL_BLOCK_CODED) {
		/* Tables are checked when a snapshot is used: a forged entry
		 * makes the read fail, never reach past the state. */
		const size_t st = 48 + 24;
		static const struct {
			const char *what;
			size_t at;
			uint32_t value;
			size_t size;
		} forge[] = {
		    /* flag, max length 62, index 2^25-1 */
		    {"a literal hint far past the long table",
		     offsetof(struct inflate_state, lit_huff_code.short_code_lookup[77]),
		     0xfbffffffu, 4},
		    /* no code, but a value ISA-L's builder never leaves there */
		    {"a distance entry without a code holding 1094",
		     offsetof(struct inflate_state, dist_huff_code.short_code_lookup[5]), 1094, 2},
		};
		uint64_t at = get64(idx + 48 + 8);

		for (size_t i = 0; i < sizeof(forge) / sizeof(forge[0]); i++) {
			struct blob *bt = NULL;
			unsigned char got[4096];
			uint16_t v16 = (uint16_t)forge[i].value;
			ssize_t n;

			e = (struct err){0};
			memcpy(bad, idx, len);
			memcpy(bad + st + forge[i].at,
			       forge[i].size == 4 ? (const void *)&forge[i].value : &v16,
			       forge[i].size);
			if (blob_open(fd, off, z.len, NULL, &bt, &e) < 0)
				abort();
			CHECK(blob_index_import(bt, bad, len, &e) == 0,
			      "tables with %s pass the import (%s)", forge[i].what, e.msg);
			n = blob_pread(bt, got, sizeof(got), at + 1000, &e);
			CHECK(n == -EIO && strstr(e.msg, "tables"),
			      "and reading through them fails: %s", e.msg);
			blob_free(bt);
		}
	}
	CHECK(bad[64] == 3 || !strcmp(engine, "zlib"), "with ISA-L, the first point is a snapshot");
	setenv("STRATA_BLOB_ZLIB", "1", 1);
	{
		/* a blob told to use zlib throughout cannot resume a snapshot */
		struct blob *bz = NULL;
		if (blob_open(fd, off, z.len, NULL, &bz, &e) < 0)
			abort();
		check_refused(bz, idx, len, "snapshots in a zlib-only blob");
		blob_free(bz);
	}
	if (strcmp(engine, "zlib"))
		unsetenv("STRATA_BLOB_ZLIB");
#endif
#undef MUTATE
	CHECK(blob_size(b2) == -1, "refused imports left the blob untouched");
	CHECK(blob_index_import(b2, idx, len, &e) == 0 && random_reads(b2, &small, 50, 10000),
	      "the intact index still imports and reads right");
	free(bad);
	free(idx);
	blob_free(b);
	blob_free(b2);
	close(fd);
	free(z.p);
}

static void test_threads(const struct buf *d)
{
	struct buf z = {0}, part = {d->p, 16 * MiB, 0};
	struct thread_arg a[8];
	struct blob *b = NULL;
	struct err e = {0};
	uint64_t off;
	bool ok = true;
	int fd;

	for (size_t pos = 0; pos < part.len; pos += 4 * MiB)
		gzip_member(&z, part.p + pos, 4 * MiB, 6);
	fd = write_file(&z, 0, &off);
	if (blob_open(fd, off, z.len, NULL, &b, &e) < 0)
		abort();
	/* first round: one thread runs the stream pass while seven read */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 8; i++)
			a[i] = (struct thread_arg){
			    b, &part, false, round == 0 && i == 0, &z, 1 + round * 8 + i, NULL};
		ok = run_readers(a) && ok;
		CHECK(ok, "8 threads: %s",
		      round ? "concurrent preads" : "stream pass alongside preads");
	}
	blob_free(b);
	close(fd);
	free(z.p);
}

static void test_busy_and_bad_open(void)
{
	struct buf d = gen_data(1000);
	struct blob *b = NULL;
	struct blob_stream *s1 = NULL, *s2 = NULL;
	struct err e = {0};
	uint64_t off;
	int fd = write_file(&d, 0, &off);

	CHECK(blob_open(fd, 0, 5000, NULL, &b, &e) == 0, "a blob longer than its file opens");
	CHECK(blob_stream_open(b, &s1, &e) == 0, "first stream opens");
	CHECK(blob_stream_open(b, &s2, &e) == -EBUSY && !s2, "second stream refused: %s", e.msg);
	blob_stream_free(s1);
	CHECK(blob_stream_open(b, &s2, &e) == 0, "stream opens again after free");
	{
		const void *p;
		ssize_t n;
		while ((n = blob_stream_next(s2, &p, &e)) > 0)
			;
		CHECK(n == -EIO, "short file: stream fails: %s", e.msg);
	}
	blob_stream_free(s2);
	blob_free(b);
	b = NULL;
	CHECK(blob_open(-1, 0, 10, NULL, &b, &e) == -EBADF && !b, "bad fd refused");
	CHECK(blob_open(fd, UINT64_MAX - 5, 10, NULL, &b, &e) == -EINVAL && !b,
	      "overflowing range refused");
	blob_free(NULL);
	blob_stream_free(NULL);
	close(fd);
	free(d.p);
}

int main(void)
{
	struct buf d;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/strata-test-blob-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	d = gen_data(40 * MiB + 12345);
	TIMED(test_raw());
	TIMED(test_empty());
	TIMED(test_busy_and_bad_open());
	TIMED(test_gzip_single(&d));
	TIMED(test_gzip_multi(&d));
	TIMED(test_gzip_trailing(&d));
	TIMED(test_gzip_broken(&d));
	TIMED(test_zstd(&d));
	TIMED(test_zstd_sequential(&d));
	TIMED(test_zstd_past_end(&d));
	TIMED(test_index_refusal(&d));
	TIMED(test_threads(&d));
	TIMED(test_zstd_window(&d));
	TIMED(test_bombs());
	/* again with zlib throughout, where ISA-L (if built in) served random access
	 * and whole short members of the stream pass above */
	setenv("STRATA_BLOB_ZLIB", "1", 1);
	engine = "zlib";
	d.len = 12 * MiB; /* enough for a dozen checkpoints, and quicker */
	TIMED(test_gzip_single(&d));
	TIMED(test_gzip_multi(&d));
	TIMED(test_gzip_trailing(&d));
	TIMED(test_gzip_broken(&d));
	unsetenv("STRATA_BLOB_ZLIB");
	free(d.p);
	rmdir(tmpdir);
	return tap_done();
}
