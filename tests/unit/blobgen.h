/*
 * blobgen.h: what the unit tests of fs/blob (test_blob.c, test_spill.c) share:
 * generated data, its gzip and zstd forms, files holding a blob at an offset
 * under the test's mkdtemp() directory, checks of random reads and of a
 * whole stream pass, reader threads, and TIMED. Each test program includes
 * it once; the state below is that program's.
 */
#ifndef STRATA_TEST_BLOBGEN_H
#define STRATA_TEST_BLOBGEN_H

#include "tap.h"
#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#define MiB (1u << 20)

static __attribute__((unused)) char tmpdir[64];
static __attribute__((unused)) int file_seq;
/* "default" (ISA-L where built in) or "zlib" (STRATA_BLOB_ZLIB set) */
static __attribute__((unused)) const char *engine = "default";

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static __attribute__((unused)) void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static __thread uint64_t rng_state = 0x9e3779b97f4a7c15ull; /* per thread: readers race */

static __attribute__((unused)) uint64_t rnd(void)
{
	/* xorshift64*: reproducible across runs, good enough for test data */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Data like a layer: stretches of random bytes, of text, and of zeros. */
static __attribute__((unused)) struct buf gen_data(size_t len)
{
	static const char *words[] = {"usr",       "lib",    "bin",  "etc", "password",
	                              "=",         "export", "PATH", "\n",  " ",
	                              "libc.so.6", "0x",     "ELF",  "tar"};
	struct buf b = {0};

	while (b.len < len) {
		size_t n = 1 + rnd() % (96 * 1024);
		int kind = rnd() % 3;

		if (n > len - b.len)
			n = len - b.len;
		for (size_t i = 0; i < n;) {
			if (kind == 0) {
				uint64_t v = rnd();
				size_t k = n - i < 8 ? n - i : 8;
				buf_add(&b, &v, k);
				i += k;
			} else if (kind == 1) {
				const char *w = words[rnd() % 14];
				size_t k = strlen(w);
				if (k > n - i)
					k = n - i;
				buf_add(&b, w, k);
				i += k;
			} else {
				static const unsigned char zero[4096];
				size_t k = n - i < sizeof(zero) ? n - i : sizeof(zero);
				buf_add(&b, zero, k);
				i += k;
			}
		}
	}
	return b;
}

/* A gzip member; at odd levels with a full header (name, comment, extra field,
 * header CRC) like the gzip tool and eStargz write. */
static __attribute__((unused)) void gzip_member(struct buf *out, const unsigned char *p, size_t len,
                                                int level)
{
	z_stream z = {0};
	unsigned char tmp[65536];
	unsigned char extra[] = {'S', 'G', 4, 0, 1, 2, 3, 4};
	gz_header h = {.text = 0,
	               .time = 1700000000,
	               .os = 3,
	               .extra = extra,
	               .extra_len = sizeof(extra),
	               .name = (unsigned char *)"layer.tar",
	               .comment = (unsigned char *)"made by test_blob",
	               .hcrc = 1};
	int r;

	if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	if (level % 2 && deflateSetHeader(&z, &h) != Z_OK)
		abort();
	z.next_in = (unsigned char *)p;
	z.avail_in = len;
	do {
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		r = deflate(&z, Z_FINISH);
		buf_add(out, tmp, sizeof(tmp) - z.avail_out);
	} while (r == Z_OK);
	if (r != Z_STREAM_END)
		abort();
	deflateEnd(&z);
}

static __attribute__((unused)) void zstd_frame(struct buf *out, const unsigned char *p, size_t len,
                                               int level)
{
	size_t cap = ZSTD_compressBound(len);
	unsigned char *tmp = malloc(cap);
	size_t n = ZSTD_compress(tmp, cap, p, len, level);

	if (ZSTD_isError(n))
		abort();
	buf_add(out, tmp, n);
	free(tmp);
}

static __attribute__((unused)) void zstd_skippable(struct buf *out, unsigned variant, size_t len)
{
	unsigned char h[8] = {0x50 | variant, 0x2a,      0x4d,     0x18, len,
	                      len >> 8,       len >> 16, len >> 24};

	buf_add(out, h, 8);
	for (size_t i = 0; i < len; i++)
		buf_add(out, "s", 1);
}

static __attribute__((unused)) void sha256(const void *p, size_t len, unsigned char md[32])
{
	EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL);
}

/* Writes prefix junk, the blob, suffix junk; returns the fd, the blob at *off. */
static __attribute__((unused)) int write_file(const struct buf *blob, size_t prefix, uint64_t *off)
{
	char path[128];
	unsigned char junk[1000];
	int fd;

	memset(junk, 0xa5, sizeof(junk));
	snprintf(path, sizeof(path), "%s/f%d", tmpdir, file_seq++);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	unlink(path);
	for (size_t i = 0; i < prefix; i += sizeof(junk))
		if (write(fd, junk, prefix - i < sizeof(junk) ? prefix - i : sizeof(junk)) < 0)
			abort();
	if (blob->len && pwrite(fd, blob->p, blob->len, prefix) != (ssize_t)blob->len)
		abort();
	if (pwrite(fd, junk, sizeof(junk), prefix + blob->len) != sizeof(junk))
		abort();
	*off = prefix;
	return fd;
}

static __attribute__((unused)) uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static __attribute__((unused)) uint64_t msg_offset(const struct err *e)
{
	const char *s = strstr(e->msg, "at stored offset ");

	return s ? strtoull(s + 17, NULL, 10) : UINT64_MAX;
}

/* Random reads at odd offsets and sizes, some running past the end. */
static __attribute__((unused)) bool random_reads(struct blob *b, const struct buf *want, int count,
                                                 size_t max_len)
{
	size_t cap = max_len + 16;
	unsigned char *got = malloc(cap);
	bool ok = true;
	struct err e = {0};

	for (int i = 0; i < count && ok; i++) {
		uint64_t off = want->len ? rnd() % (want->len + want->len / 50 + 1) : rnd() % 100;
		size_t len = 1 + rnd() % max_len;
		size_t expect =
		    off >= want->len ? 0 : (want->len - off < len ? want->len - off : len);
		ssize_t n = blob_pread(b, got, len, off, &e);

		if (n != (ssize_t)expect || (expect && memcmp(got, want->p + off, expect))) {
			printf("# pread %zu at %llu: got %zd want %zu (%s)\n", len,
			       (unsigned long long)off, n, expect, e.msg);
			ok = false;
		}
	}
	free(got);
	return ok;
}

/* The stream pass; checks output and digests, returns the stream's result. */
static __attribute__((unused)) int stream_all(struct blob *b, const struct buf *stored,
                                              const struct buf *want, bool *match, struct err *e)
{
	struct blob_stream *s = NULL;
	struct blob_digests dg;
	const void *data;
	unsigned char md[32];
	size_t pos = 0, small_runs = 0;
	ssize_t n;
	int r;

	*match = true;
	r = blob_stream_open(b, &s, e);
	if (r < 0)
		return r;
	while ((n = blob_stream_next(s, &data, e)) > 0) {
		if (pos + n > want->len || memcmp(data, want->p + pos, n))
			*match = false;
		if (n < 256 * 1024)
			small_runs++;
		pos += n;
	}
	r = n < 0 ? (int)n : blob_stream_finish(s, &dg, e);
	blob_stream_free(s);
	if (r < 0)
		return r;
	if (pos != want->len || small_runs > 1)
		*match = false;
	sha256(stored->p, stored->len, md);
	if (memcmp(md, dg.stored, 32) || dg.stored_size != stored->len)
		*match = false;
	sha256(want->p, want->len, md);
	if (memcmp(md, dg.decompressed, 32) || dg.decompressed_size != want->len)
		*match = false;
	return 0;
}

struct thread_arg {
	struct blob *b;
	const struct buf *want;
	bool ok;
	bool stream;
	const struct buf *stored;
	uint64_t seed;
	struct blob *other; /* not NULL: each read goes to b or to other, at random */
};

static __attribute__((unused)) void *reader(void *p)
{
	struct thread_arg *a = p;
	struct err e = {0};

	rng_state += a->seed * 0x9e3779b97f4a7c15ull;
	if (a->stream) {
		bool match = false;
		a->ok = stream_all(a->b, a->stored, a->want, &match, &e) == 0 && match;
	} else if (a->other) {
		a->ok = true;
		for (int i = 0; i < 60 && a->ok; i++)
			a->ok = random_reads(rnd() % 2 ? a->other : a->b, a->want, 1, 64 * 1024);
	} else {
		a->ok = random_reads(a->b, a->want, 40, 100 * 1024);
	}
	return NULL;
}

/* Runs reader() on 8 threads at once; true when every one read right. */
static __attribute__((unused)) bool run_readers(struct thread_arg a[8])
{
	pthread_t t[8];
	bool ok = true;

	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, reader, &a[i]);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok = ok && a[i].ok;
	}
	return ok;
}

/* Prints how long each part took, so that a slow machine is easy to tell. */
#define TIMED(call)                                                                                \
	do {                                                                                       \
		struct timespec t0_, t1_;                                                          \
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0_);                                     \
		call;                                                                              \
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1_);                                     \
		printf("# %s: %.2f s of CPU\n", #call,                                             \
		       t1_.tv_sec - t0_.tv_sec + (t1_.tv_nsec - t0_.tv_nsec) / 1e9);               \
	} while (0)

#endif
