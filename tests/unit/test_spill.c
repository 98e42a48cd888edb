/*
 * Unit tests of the spill of fs/blob (blob_spill.c): a single-frame zstd blob
 * read far from its start grows a spill and is served from it; evictions in a
 * shared pool, write errors and missing directories never change what reads
 * return; threads read through one spilling blob and through two that evict
 * each other; gzip blobs, whose seek points are near, never spill.
 */
#include "blobgen.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

/* ---- the spill ---- */

/* A blob over fd spilling into pool, or NULL after a failed check. */
static struct blob *spill_blob(int fd, uint64_t off, size_t len, struct blob_spill *pool)
{
	struct blob *b = NULL;
	struct err e = {0};

	if (blob_open(fd, off, len, NULL, &b, &e) < 0 || blob_set_spill(b, pool, &e) < 0)
		abort();
	return b;
}

static bool read_at(struct blob *b, const struct buf *want, uint64_t off, size_t len)
{
	unsigned char *got = malloc(len);
	struct err e = {0};
	ssize_t n = blob_pread(b, got, len, off, &e);
	bool ok = n == (ssize_t)len && !memcmp(got, want->p + off, len);

	if (!ok)
		printf("# pread %zu at %llu: got %zd (%s)\n", len, (unsigned long long)off, n,
		       e.msg);
	free(got);
	return ok;
}

/* Deep reads in one big zstd frame: the first pays, the next are preads of
 * the spill, before the stream pass and after it. */
static void test_spill_reads(const struct buf *d, const struct buf *z, int fd, uint64_t off,
                             const char *dir)
{
	struct blob_spill *pool = NULL;
	struct blob *b;
	struct blob_stats st, st2;
	struct err e = {0};
	bool ok = true, match = false;

	CHECK(blob_spill_open(dir, BLOB_SPILL_MAX_DEFAULT, &pool, &e) == 0, "spill pool opens (%s)",
	      e.msg);
	b = spill_blob(fd, off, z->len, pool);
	CHECK(read_at(b, d, 30 * MiB + 123, 4096), "spill: a deep 4 KiB read");
	blob_stats(b, &st);
	CHECK(st.spill_bytes >= 30 * MiB && st.spill_bytes <= 36 * MiB && st.spill_hits == 1 &&
	          st.pread_decompressed == st.spill_decompressed,
	      "spill: the deep read spilled the prefix (%llu bytes, %llu decompressed)",
	      (unsigned long long)st.spill_bytes, (unsigned long long)st.spill_decompressed);
	for (int i = 0; i < 200 && ok; i++)
		ok = read_at(b, d, rnd() % (st.spill_bytes - 70000), 1 + rnd() % 70000);
	blob_stats(b, &st2);
	CHECK(ok && st2.spill_hits == st.spill_hits + 200 &&
	          st2.pread_decompressed == st.pread_decompressed,
	      "spill: 200 reads inside the spill decompress nothing (%llu hits, %llu bytes "
	      "decompressed)",
	      (unsigned long long)st2.spill_hits, (unsigned long long)st2.pread_decompressed);
	CHECK(random_reads(b, d, 100, 100 * 1024),
	      "spill: random reads, some past the end, before the stream pass");
	blob_stats(b, &st);
	CHECK(st.spill_bytes == d->len && st.pread_decompressed <= d->len + 2 * BLOB_SPILL_GAP,
	      "spill: holds the whole stream after reads past its end (%llu bytes, %llu "
	      "decompressed in all)",
	      (unsigned long long)st.spill_bytes, (unsigned long long)st.pread_decompressed);
	CHECK(stream_all(b, z, d, &match, &e) == 0 && match, "spill: the stream pass (%s)", e.msg);
	CHECK(random_reads(b, d, 100, 100 * 1024), "spill: random reads after the stream pass");
	blob_stats(b, &st2);
	CHECK(st2.pread_decompressed == st.pread_decompressed &&
	          st2.spill_hits >= st.spill_hits + 100,
	      "spill: which are all served by the spill");
	blob_free(b);
	blob_spill_free(pool);
}

/* A pool too small for two spills evicts the older one; reads stay right. */
static void test_spill_evict(const struct buf *d, const struct buf *z, int fd, uint64_t off,
                             const char *dir)
{
	struct blob_spill *pool = NULL;
	struct blob *a, *b;
	struct blob_stats sa, sb;
	struct err e = {0};

	if (blob_spill_open(dir, 10 * MiB, &pool, &e) < 0)
		abort();
	a = spill_blob(fd, off, z->len, pool);
	b = spill_blob(fd, off, z->len, pool);
	CHECK(read_at(a, d, 20 * MiB, 5000), "evict: a read past what the pool holds");
	blob_stats(a, &sa);
	CHECK(sa.spill_bytes == 10 * MiB && sa.spill_drops == 0,
	      "evict: the spill stopped at the bound (%llu bytes)",
	      (unsigned long long)sa.spill_bytes);
	CHECK(read_at(a, d, 5 * MiB, 5000), "evict: a read inside it");
	CHECK(read_at(b, d, 5 * MiB, 5000), "evict: another blob's read");
	blob_stats(a, &sa);
	blob_stats(b, &sb);
	CHECK(sa.spill_bytes == 0 && sa.spill_drops == 1 && sb.spill_bytes == 8 * MiB,
	      "evict: it took the room of the least recently used spill (%llu, %llu bytes)",
	      (unsigned long long)sa.spill_bytes, (unsigned long long)sb.spill_bytes);
	CHECK(random_reads(a, d, 30, 100 * 1024) && random_reads(b, d, 30, 100 * 1024),
	      "evict: random reads in both blobs after evictions");
	blob_free(a);
	blob_free(b);
	blob_spill_free(pool);
}

/* A spill that cannot be made, or written, costs nothing but the attempt. */
static void test_spill_failures(const struct buf *d, const struct buf *z, int fd, uint64_t off)
{
	char gone[128];
	struct blob_spill *pool = NULL;
	struct blob *b;
	struct blob_stats st;
	struct err e = {0};
	struct rlimit old, lim;
	bool ok;

	snprintf(gone, sizeof(gone), "%s/gone", tmpdir);
	CHECK(blob_spill_open(gone, MiB, &pool, &e) == -ENOENT && strstr(e.msg, gone),
	      "a missing spill directory is refused: %s", e.msg);
	if (mkdir(gone, 0700) < 0 || blob_spill_open(gone, BLOB_SPILL_MAX_DEFAULT, &pool, &e) < 0 ||
	    rmdir(gone) < 0)
		abort();
	b = spill_blob(fd, off, z->len, pool);
	CHECK(read_at(b, d, 20 * MiB, 4096) && random_reads(b, d, 20, 100 * 1024),
	      "spill directory removed: reads work");
	blob_stats(b, &st);
	CHECK(st.spill_bytes == 0 && st.spill_hits == 0 && st.spill_decompressed == 0,
	      "spill directory removed: nothing spilled");
	blob_free(b);
	blob_spill_free(pool);

	/* a file size limit makes the writes fail half way, like a full disk */
	if (blob_spill_open(tmpdir, BLOB_SPILL_MAX_DEFAULT, &pool, &e) < 0)
		abort();
	b = spill_blob(fd, off, z->len, pool);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 3 * MiB;
	setrlimit(RLIMIT_FSIZE, &lim);
	ok = read_at(b, d, 20 * MiB, 4096);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	blob_stats(b, &st);
	CHECK(ok && st.spill_bytes == 0 && st.spill_drops == 1,
	      "a write error drops the spill, the read works (%llu bytes, %llu drops)",
	      (unsigned long long)st.spill_bytes, (unsigned long long)st.spill_drops);
	CHECK(random_reads(b, d, 20, 100 * 1024), "after the write error reads work");
	blob_stats(b, &st);
	CHECK(st.spill_bytes == 0, "and the spill is not tried again");
	blob_free(b);
	blob_spill_free(pool);
}

/* gzip has a seek point every MiB: its reads never need the spill. */
static void test_spill_gzip(const struct buf *d, const char *dir)
{
	struct buf z = {0}, part = {d->p, 12 * MiB, 0};
	struct blob_spill *pool = NULL;
	struct blob *b;
	struct blob_stats st;
	struct err e = {0};
	uint64_t off;
	bool match;
	int fd;

	gzip_member(&z, part.p, part.len, 6);
	fd = write_file(&z, 0, &off);
	if (blob_spill_open(dir, BLOB_SPILL_MAX_DEFAULT, &pool, &e) < 0)
		abort();
	b = spill_blob(fd, off, z.len, pool);
	CHECK(stream_all(b, &z, &part, &match, &e) == 0 && match, "gzip with a spill pool streams");
	CHECK(random_reads(b, &part, 50, 100 * 1024), "gzip with a spill pool: random reads");
	blob_stats(b, &st);
	CHECK(st.spill_decompressed == 0 && st.spill_bytes == 0,
	      "gzip with a spill pool: nothing spilled");
	blob_free(b);
	blob_spill_free(pool);
	close(fd);
	free(z.p);
}

/* Readers at random offsets at once, in two blobs whose pool holds only
 * part of one: growth, hits and evictions all race. */
static void test_spill_threads(const struct buf *d, const struct buf *z, int fd, uint64_t off,
                               const char *dir)
{
	struct blob_spill *pool = NULL;
	struct thread_arg a[8];
	struct err e = {0};
	struct blob *b[2];

	for (int round = 0; round < 2; round++) {
		if (blob_spill_open(dir, round ? 12 * MiB : BLOB_SPILL_MAX_DEFAULT, &pool, &e) < 0)
			abort();
		b[0] = spill_blob(fd, off, z->len, pool);
		b[1] = round ? spill_blob(fd, off, z->len, pool) : b[0];
		for (int i = 0; i < 8; i++)
			a[i] = (struct thread_arg){b[0], d, false, false, z, 100 + 8 * round + i,
			                           b[1]};
		CHECK(run_readers(a), "8 threads reading at random through %s",
		      round ? "two blobs in a 12 MiB pool" : "one spilling blob");
		if (b[1] != b[0])
			blob_free(b[1]);
		blob_free(b[0]);
		blob_spill_free(pool);
	}
}

static void test_spill(const struct buf *d)
{
	char dir[128];
	struct buf z = {0};
	uint64_t off;
	int fd;

	snprintf(dir, sizeof(dir), "%s/spill", tmpdir);
	if (mkdir(dir, 0700) < 0)
		abort();
	zstd_frame(&z, d->p, d->len, 3);
	fd = write_file(&z, 333, &off);
	test_spill_reads(d, &z, fd, off, dir);
	test_spill_evict(d, &z, fd, off, dir);
	test_spill_failures(d, &z, fd, off);
	test_spill_threads(d, &z, fd, off, dir);
	test_spill_gzip(d, dir);
	close(fd);
	free(z.p);
	rmdir(dir);
}

int main(void)
{
	struct buf d;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/strata-test-spill-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	d = gen_data(40 * MiB + 12345);
	TIMED(test_spill(&d));
	free(d.p);
	rmdir(tmpdir);
	return tap_done();
}
