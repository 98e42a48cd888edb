/*
 * Unit tests of fs/layer's index import (layer_import): a path or hardlink
 * target that is not clean (empty, "." or ".." components, a leading or
 * trailing '/') is refused wherever it lies in the string pool, a symlink
 * target is data and may hold anything, and import agrees with a plain
 * component-by-component check on thousands of damaged copies of an index
 * (bytes of the pool overwritten, entries pointing elsewhere in it): import
 * checks the whole pool at once, 64 bytes at a time, so the damage is put
 * at every distance from those block edges.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "../fuzz/fuzz_check.h"
#include "buf.h"
#include "layer.h"
#include "mktar.h"
#include "tap.h"

/*
 * Where struct layer_header (fs/layer_io.c) keeps the entry count and the
 * pool length, and its size: the entries follow it, then the pool.
 */
#define HDR_NENTRIES 16
#define HDR_STRS_LEN 24
#define HDR_LEN      48

static uint32_t hdr_nentries(const char *data)
{
	uint32_t n;

	memcpy(&n, data + HDR_NENTRIES, 4);
	return n;
}

static uint64_t hdr_strs_len(const char *data)
{
	uint64_t n;

	memcpy(&n, data + HDR_STRS_LEN, 8);
	return n;
}

/*
 * What import must say of an index whose pool or path offsets were changed;
 * the reference is fz_path_clean, one component at a time.
 */
static int ref_valid(const char *data)
{
	const struct layer_entry *ents = (const struct layer_entry *)(const void *)(data + HDR_LEN);
	const char *pool = data + HDR_LEN + (size_t)hdr_nentries(data) * sizeof(*ents);

	for (uint32_t i = 0; i < hdr_nentries(data); i++) {
		if (ents[i].path >= hdr_strs_len(data) || !fz_path_clean(pool + ents[i].path))
			return 0;
		if (ents[i].type == LAYER_HARDLINK && !fz_path_clean(pool + ents[i].link))
			return 0;
	}
	return 1;
}

static int import(struct blob *b, const char *data, size_t len)
{
	struct layer *l = NULL;
	int r = layer_import(b, data, len, &l, NULL, NULL);

	layer_free(l);
	return r;
}

static unsigned long long rng_state = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

struct outcome {
	int n, agree, refused, accepted;
};

/*
 * Rounds of damage to a copy of the index data (len bytes): pool bytes
 * overwritten, runs of them, entries pointed elsewhere in the pool; near
 * (bytes from) the middle of the pool when near is set, where import splits
 * a big pool between two threads. Import must agree with the reference.
 */
static void damage(struct blob *b, const char *data, size_t len, int rounds, size_t near,
                   const char *what)
{
	static const char bytes[] = {'/', '.', '\0', 'x'};
	uint32_t nents = hdr_nentries(data);
	size_t strs_len = hdr_strs_len(data);
	size_t pool_off = HDR_LEN + (size_t)nents * sizeof(struct layer_entry);
	char *copy = malloc(len);
	struct outcome o = {0, 0, 0, 0};

	for (int round = 0; round < rounds; round++) {
		int kind = round % 5, r;
		size_t at = near ? strs_len / 2 - near + rnd((uint32_t)(2 * near))
		                 : rnd((uint32_t)strs_len - 1),
		       run;

		memcpy(copy, data, len);
		if (kind == 0) {
			copy[pool_off + at] = bytes[rnd(4)];
		} else if (kind == 1 || kind == 3) {
			run = 1 + rnd(70);
			for (size_t k = 0; k < run && at + k < strs_len - 1; k++)
				copy[pool_off + at + k] = bytes[rnd(4)];
		} else if (kind == 4) {
			/* more bad strings than entries: import falls back to one check per path */
			run = 2 * nents + rnd(nents);
			for (size_t k = 0; k < run && at + k < strs_len - 1; k++)
				copy[pool_off + at + k] = k % 2 ? '/' : '\0';
		}
		if (kind >= 2) {
			struct layer_entry *ce =
			    (struct layer_entry *)(void *)(copy + HDR_LEN) + rnd(nents);
			uint32_t to =
			    near ? (uint32_t)(strs_len / 2 - near) + rnd((uint32_t)(2 * near))
			         : rnd((uint32_t)strs_len);

			/* often the start of a string, as a real index has them */
			if (rnd(2))
				while (to && copy[pool_off + to - 1])
					to--;
			if (ce->type == LAYER_HARDLINK && rnd(2))
				ce->link = to;
			else
				ce->path = to;
		}
		r = import(b, copy, len);
		o.n++;
		o.agree += (r == 0) == ref_valid(copy) && (r == 0 || r == -EINVAL);
		o.refused += r != 0;
		o.accepted += r == 0;
	}
	free(copy);
	CHECK(o.agree == o.n, "%s, damaged: import agrees with the reference %d of %d", what,
	      o.agree, o.n);
	CHECK(o.refused > rounds / 6 && o.accepted > rounds / 6,
	      "%s: both outcomes are tried (%d refused, %d accepted)", what, o.refused, o.accepted);
}

/*
 * Where import splits a big pool between two threads: strings with bad
 * components on both sides of the middle, or right at it, and entries that
 * point at every few bytes around it.
 */
/* Moves every entry off the pool bytes from..to-1: paths to the first one, links away. */
static void move_off(char *data, size_t from, size_t to)
{
	struct layer_entry *ents = (struct layer_entry *)(void *)(data + HDR_LEN);

	for (uint32_t i = 0; i < hdr_nentries(data); i++) {
		if (ents[i].path >= from && ents[i].path < to)
			ents[i].path = 0;
		if (ents[i].link != LAYER_NONE && ents[i].link >= from && ents[i].link < to) {
			ents[i].type = LAYER_DIR;
			ents[i].mode = S_IFDIR | 0755;
			ents[i].link = LAYER_NONE;
		}
	}
}

static void middle(struct blob *b, const char *data, size_t len)
{
	static const char *const pats[] = {
	    "a/../b/x/../c/y/./d", "q//r", "../s", "t/..", "/u", "v/"};
	size_t mid = hdr_strs_len(data) / 2;
	char *copy = malloc(len),
	     *pool = copy + HDR_LEN + hdr_nentries(data) * sizeof(struct layer_entry);
	struct layer_entry *ents = (struct layer_entry *)(void *)(copy + HDR_LEN);
	int n = 0, agree = 0, accepted = 0, r;

	for (size_t p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
		size_t plen = strlen(pats[p]);

		for (size_t shift = 0; shift <= plen + 1; shift++) {
			for (int d = -40; d <= 40; d += 3) {
				memcpy(copy, data, len);
				/* the pattern inside a longer string across the middle, which
				 * only one entry looks at */
				memset(pool + mid - 30, 'w', 60);
				memcpy(pool + mid - shift, pats[p], plen);
				move_off(copy, mid - 200, mid + 200);
				ents[rnd(hdr_nentries(data))].path = (uint32_t)((ptrdiff_t)mid + d);
				r = import(b, copy, len);
				n++;
				agree += (r == 0) == ref_valid(copy);
				accepted += r == 0;
			}
		}
	}
	free(copy);
	CHECK(agree == n, "big index, bad components around the middle: agrees %d of %d", agree, n);
	CHECK(accepted > n / 4 && accepted < n * 3 / 4, "and accepts %d of them", accepted);
}

/*
 * An index of 70,000 entries (directories, and symlinks whose targets hold
 * bad components), big enough that import checks it in two threads, made
 * from the header of a real one (head).
 */
static void big_index(struct blob *b, const char *head)
{
	enum { N = 70000 };
	static const char *const t[] = {"../up", "/abs", "a//b", "./x", "..", "x/."};
	struct buf pool = BUF_INIT, out = BUF_INIT;
	struct layer_entry *ents = calloc(N, sizeof(*ents));
	uint64_t zero = 0, strs_len;
	uint32_t n = N;
	char name[64];

	for (uint32_t i = 0; i < N; i++) {
		uint32_t off;

		snprintf(name, sizeof(name), "dir%u/%.*s%u", i % 97, (int)(i % 23),
		         "abcdefghijklmnopqrstuvw", i);
		buf_append_cstr(&pool, name, strlen(name), &off);
		ents[i].path = off;
		ents[i].xattrs = LAYER_NONE;
		ents[i].link = LAYER_NONE;
		ents[i].type = LAYER_DIR;
		ents[i].mode = S_IFDIR | 0755;
		if (i % 5 == 2) {
			buf_append_cstr(&pool, t[i % 6], strlen(t[i % 6]), &off);
			ents[i].link = off;
			ents[i].type = LAYER_SYMLINK;
			ents[i].mode = S_IFLNK | 0777;
		}
	}
	strs_len = pool.len;
	buf_append(&out, head, HDR_LEN);
	memcpy(out.data + HDR_NENTRIES, &n, 4);
	memcpy(out.data + HDR_STRS_LEN, &strs_len, 8);
	memcpy(out.data + HDR_STRS_LEN + 8, &zero, 8);  /* no xattrs */
	memcpy(out.data + HDR_STRS_LEN + 16, &zero, 8); /* no warnings */
	memcpy(out.data + HDR_NENTRIES + 4, &zero, 4);
	buf_append(&out, ents, (size_t)N * sizeof(*ents));
	buf_append(&out, pool.data, pool.len);
	buf_append(&out, &zero, (8 - pool.len % 8) % 8);
	CHECK(ref_valid(out.data) && import(b, out.data, out.len) == 0,
	      "a big index (%u entries, %llu pool bytes) imports", n, (unsigned long long)strs_len);
	middle(b, out.data, out.len);
	damage(b, out.data, out.len, 300, 0, "big index");
	damage(b, out.data, out.len, 300, 100, "big index, near the middle of its pool");
	buf_release(&pool);
	buf_release(&out);
	free(ents);
}

#define NENTS 400

int main(void)
{
	static char names[NENTS][200], targets[NENTS][64];
	struct ent ents[NENTS];
	struct buf out = BUF_INIT;
	struct layer *l;
	struct blob *b;
	struct err err = {0};
	size_t len, strs_len;
	char *copy;
	int fd, n = 0, agree = 0;

	/* paths of every length from 1 to ~150, so that they straddle 64-byte blocks */
	for (int i = 0; i < NENTS; i++) {
		int depth = 1 + i % 5, k = 0;

		k += snprintf(names[i], sizeof(names[i]), "d%d", i);
		for (int c = 1; c < depth; c++)
			k += snprintf(names[i] + k, sizeof(names[i]) - (size_t)k, "/%.*s%d",
			              (i * 7 + c * 13) % 27, "abcdefghijklmnopqrstuvwxyz.", c);
		ents[i] = (struct ent){names[i], 'f', "data", 0};
		if (i % 7 == 3) {
			/* symlink targets are data: "..", ".", "//" and leading '/' are fine */
			static const char *const t[] = {
			    "../../etc/passwd", "/abs/path", "./x", "a//b", ".", "..", "x/", "/"};
			snprintf(targets[i], sizeof(targets[i]), "%s", t[i % 8]);
			ents[i] = (struct ent){names[i], 'l', targets[i], 0};
		} else if (i % 11 == 5) {
			ents[i] = (struct ent){names[i], 'h', names[i - 1], 0};
		}
	}
	for (int i = 0; i < NENTS; i++)
		if (ents[i].type == 'h' && ents[i - 1].type != 'f')
			ents[i].type = 'f';
	fd = mktar(ents, NENTS, 0, &len);
	CHECK(blob_open(fd, 0, len, NULL, &b, &err) == 0 &&
	          layer_index(b, "test", NULL, &l, NULL, &err) == 0,
	      "layer indexed: %s", err.msg);
	CHECK(layer_count(l) == NENTS, "with every entry (%u)", layer_count(l));
	CHECK(layer_export(l, &out) == 0, "exported");
	strs_len = hdr_strs_len(out.data);
	CHECK(hdr_nentries(out.data) == NENTS && strs_len > 10000,
	      "a pool of many blocks (%llu bytes)", (unsigned long long)strs_len);
	CHECK(ref_valid(out.data) && import(b, out.data, out.len) == 0,
	      "the index as built imports (its symlink targets hold \"..\", \"//\", \"/\")");

	copy = malloc(out.len);
	/* a path pointing into the middle of a symlink target: clean or not as that suffix is */
	for (uint32_t i = 0; i < NENTS; i++) {
		const struct layer_entry *e = layer_entry(l, i);

		if (e->type != LAYER_SYMLINK)
			continue;
		for (uint32_t k = 0; layer_str(l, e->link)[k]; k++) {
			struct layer_entry *ce;

			memcpy(copy, out.data, out.len);
			ce = (struct layer_entry *)(void *)(copy + HDR_LEN) + rnd(NENTS);
			ce->path = e->link + k;
			n++;
			agree += (import(b, copy, out.len) == 0) == ref_valid(copy);
		}
	}
	CHECK(agree == n, "paths into symlink targets: import agrees with the reference %d of %d",
	      agree, n);

	damage(b, out.data, out.len, 6000, 0, "small index");
	big_index(b, out.data);

	free(copy);
	buf_release(&out);
	layer_free(l);
	blob_free(b);
	close(fd);
	return tap_done();
}
