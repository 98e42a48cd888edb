/*
 * fuzz_blob: libFuzzer target for fs/blob. The input is a stored blob: it is
 * opened, read at a few offsets before the stream pass, streamed to the end,
 * read again through the recorded seek points, through an exported and
 * re-imported index, and through a mutated copy of that index; the input is
 * also offered as an index, which must be refused or be harmless. Nothing may crash, leak or hang;
 * errors are fine. Limits are small so that bombs are cut short quickly.
 *
 * Half of the inputs (bit 1 of the last byte) give the first two blobs a
 * spill: one pool of 2 MiB for the whole run, in $TMPDIR or /tmp, so that
 * far reads in big zstd frames grow, serve and evict spills.
 */
#include "blob.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_MAX_OUTPUT (8u << 20)

static void some_preads(struct blob *b, const uint8_t *data, size_t size, int n)
{
	static unsigned char buf[70000];
	struct err e = {0};

	for (int i = 0; i < n; i++) {
		uint64_t off = 0;
		size_t len;

		/* offsets from the input's tail: near the start, anywhere, past the
		 * end; every third one anywhere in what the limits let a bomb
		 * expand to, so that small inputs reach far reads (and spills) too */
		for (int k = 0; k < 4 && size; k++)
			off = off << 8 | data[(size - 1 - (size_t)(4 * i + k) % size)];
		off %= i % 3 == 2 ? 2 * FUZZ_MAX_OUTPUT : 3 * (size + 1);
		len = 1 + (off * 7919) % sizeof(buf);
		blob_pread(b, buf, len, off, &e);
	}
}

static struct blob_spill *spill_pool(void)
{
	static struct blob_spill *pool;
	static bool tried;
	struct err e = {0};

	if (!tried) {
		const char *dir = getenv("TMPDIR");

		tried = true;
		if (blob_spill_open(dir && *dir ? dir : "/tmp", 2u << 20, &pool, &e) < 0)
			pool = NULL;
	}
	return pool;
}

static void maybe_spill(struct blob *b, const uint8_t *data, size_t size)
{
	struct err e = {0};

	if (size && data[size - 1] & 2 && spill_pool())
		blob_set_spill(b, spill_pool(), &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blob_limits lim = {
	    .max_output = FUZZ_MAX_OUTPUT, .max_expansion = 500, .zstd_window_log_max = 22};
	struct blob *b = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
	struct blob_stream *s = NULL;
	struct blob_digests dg;
	struct err e = {0};
	const void *run;
	void *idx = NULL;
	size_t idx_len = 0;
	int fd = memfd_create("fuzz_blob", 0);

	if (fd < 0)
		return 0;
	/* a 3-byte prefix: the blob is a range of the file, not the whole file */
	if (write(fd, "pre", 3) != 3 || (size && write(fd, data, size) != (ssize_t)size))
		goto out;
	/* half of the inputs with zlib only, where ISA-L is built in */
	if (size && data[size / 2] & 1)
		setenv("STRATA_BLOB_ZLIB", "1", 1);
	else
		unsetenv("STRATA_BLOB_ZLIB");
	if (blob_open(fd, 3, size, &lim, &b, &e) < 0)
		goto out;
	maybe_spill(b, data, size);
	some_preads(b, data, size, 2);
	if (blob_stream_open(b, &s, &e) == 0) {
		while (blob_stream_next(s, &run, &e) > 0)
			;
		blob_stream_finish(s, &dg, &e);
		blob_stream_free(s);
	}
	some_preads(b, data, size, 6);
	if (blob_index_export(b, &idx, &idx_len, &e) == 0 &&
	    blob_open(fd, 3, size, &lim, &b2, &e) == 0 &&
	    blob_index_import(b2, idx, idx_len, &e) == 0) {
		maybe_spill(b2, data, size);
		some_preads(b2, data, size, 4);
		/* A forged index that passes validation (a bit count, a bit value, a
		 * window byte changed) may give wrong bytes or errors, never a crash. */
		if (idx_len > 40 && size >= 8) {
			unsigned char *p = idx;
			for (int k = 0; k < 3; k++) {
				size_t at =
				    40 + (data[k] | data[k + 3] << 8 | (size_t)data[6] << 16) %
				             (idx_len - 40);
				p[at] ^= data[size - 1 - k] | 1;
			}
			if (blob_open(fd, 3, size, &lim, &b4, &e) == 0 &&
			    blob_index_import(b4, idx, idx_len, &e) == 0)
				some_preads(b4, data, size, 4);
		}
	}
	if (blob_open(fd, 3, size, &lim, &b3, &e) == 0 &&
	    blob_index_import(b3, data, size, &e) == 0)
		some_preads(b3, data, size, 2);
out:
	free(idx);
	blob_free(b4);
	blob_free(b3);
	blob_free(b2);
	blob_free(b);
	close(fd);
	return 0;
}
