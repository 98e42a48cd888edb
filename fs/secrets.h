/*
 * secrets: the secret scanner applied to an opened image. This is the one
 * module of fs/ that uses scan/ (the hook of DESIGN.md): the image model
 * hands it file bytes, it hands them to the scanner and keeps the findings.
 *
 * Two ways files get scanned:
 *  - secrets_scan_entry(): one file, now (the mount calls it once a file has
 *    been read through, so its findings show up at once);
 *  - secrets_scan_all(): everything not scanned yet, every layer in one
 *    sequential pass over its entries (layers in parallel), plus the image
 *    config; returns when all is done. Concurrent callers share the work.
 * A layer's results are saved in the cache directory, keyed by the layer's
 * digest and the rule set's hash, and reused by any image with that layer.
 *
 * Each finding says whether its file is live in merged/ ("live"), hidden by
 * a whiteout or opaque directory ("deleted") or by a later version of the
 * same path ("shadowed"), or comes from the config ("config"). This is
 * computed for this image, also for results read from the cache.
 *
 * Ownership: a secrets object borrows the image; free it first. All
 * functions are thread-safe.
 */
#ifndef STRATA_SECRETS_H
#define STRATA_SECRETS_H

#include <stdint.h>

#include "err.h"
#include "image.h"
#include "scan.h"

struct secrets_opts {
	const char *rules_file; /* extra rules (trivy YAML), merged over the built-in ones */
	uint64_t max_file_size; /* 0: the scanner's default */
	unsigned threads;       /* 0: one per core */
	int no_cache;           /* neither read nor write saved results */
	const char *cache_dir;  /* NULL: the image's cache directory */
	/* Optional: what the indexing pass found (below); its rules are used. */
	const struct secrets_stream *stream;
};

struct secrets_layer_progress {
	uint32_t entries_done, entries_total; /* regular files */
	uint64_t bytes_done, bytes_total;
	int from_cache; /* results came from the cache: nothing was read */
	int complete;
};

struct secrets;

/*
 * Scanning during indexing, for a scan of the whole image: a stream's hook
 * goes into the image_opts before image_open, so that each file of a layer
 * being indexed is scanned as the pass goes by its bytes; secrets_new with
 * opts->stream takes the findings over, and secrets_scan_all then reads only
 * what the pass did not see (layers whose index was cached). Each layer is
 * decompressed once instead of twice.
 *
 * Ownership: the secrets object borrows the stream; free the stream after it.
 */
struct secrets_stream;

int secrets_stream_new(const struct secrets_opts *opts, struct secrets_stream **ret,
                       struct err *err);
void secrets_stream_hook(struct secrets_stream *st, struct image_opts *io);
void secrets_stream_free(struct secrets_stream *st);

int secrets_new(struct image *img, const struct secrets_opts *opts, struct secrets **ret,
                struct err *err);
void secrets_free(struct secrets *s);

const struct scan_rules *secrets_rules(const struct secrets *s);

int secrets_scan_entry(struct secrets *s, uint32_t layer, uint32_t entry);
int secrets_scan_all(struct secrets *s, struct err *err);
/* 1 once secrets_scan_all has finished. */
int secrets_complete(struct secrets *s);

uint32_t secrets_layer_count(const struct secrets *s);
/* Per-layer progress; never waits for a scan in progress. */

void secrets_progress(struct secrets *s, uint32_t layer, struct secrets_layer_progress *ret);
/* Seconds since the first scan started (0 before), and since it ended. */
double secrets_elapsed(struct secrets *s);
/* Files scanned so far (lazily or in full passes), for tests and status. */
uint64_t secrets_files_scanned(struct secrets *s);

/*
 * A snapshot of all findings so far (config included), certificates linked
 * to keys and sorted: a new results object the caller frees.
 */
int secrets_results(struct secrets *s, struct scan_results **ret, struct err *err);

#endif
