/*
 * image: one selected image, opened and indexed: its source description, a
 * blob and a layer index per layer, and its views.
 *
 * image_open() does all the work a mount needs before it can answer: it
 * reads the container, picks the image, indexes every layer in parallel
 * (one sequential pass each, which also verifies the layer digests) and
 * builds the merged view. The per-layer views (layers/NN) and the stacked
 * views (stack/NN) are built on first use, from any thread.
 *
 * Ownership: the image owns everything it hands out; pointers stay valid
 * until image_free(). Getters are safe from many threads.
 */
#ifndef STRATA_IMAGE_H
#define STRATA_IMAGE_H

#include <stdint.h>

#include "blob.h"
#include "err.h"
#include "layer.h"
#include "source.h"
#include "tree.h"

struct image_opts {
	struct source_select select;
	unsigned threads;      /* indexing threads, 0 = one per core */
	int no_verify;         /* digest mismatches become warnings */
	int no_cache;          /* neither read nor write the on-disk index cache */
	const char *cache_dir; /* NULL: the default (see cache.h) */
	/*
	 * Where blobs spill decompressed bytes (see blob_set_spill): NULL is the
	 * spill/ directory of the cache directory, or with no_cache $TMPDIR, else
	 * /var/tmp (the files have no name and go with the process either way).
	 */
	const char *spill_dir;
	int no_spill;       /* decompress every read, spill nothing */
	uint64_t spill_max; /* bound on the spill bytes of the image, all its blobs together */
	struct blob_limits blob;
	struct layer_limits layer;
	/* Optional: indexing progress of layer i (stored bytes), from indexing threads. */
	void (*progress)(void *opaque, uint32_t layer, uint64_t done, uint64_t total);
	void *progress_opaque;
	/*
	 * Optional: each regular file of layer i with its bytes, as indexing
	 * passes over it (see layer_limits.file; file_max bounds the bytes held),
	 * from indexing threads. Layers whose index is cached are not read, so
	 * their files are not reported. A negative return fails image_open.
	 */
	int (*file)(void *opaque, uint32_t layer, uint32_t entry, const char *path,
	            const void *data, uint64_t size);
	void *file_opaque;
	uint64_t file_max;
};

struct image;

void image_opts_default(struct image_opts *o);

/* path is the image file or directory; the selection is in opts. */
int image_open(const char *path, const struct image_opts *opts, struct image **ret_image,
               struct err *err);
void image_free(struct image *img);

const char *image_path(const struct image *img);
const char *image_kind(const struct image *img);
const struct source_image *image_source(const struct image *img);
uint32_t image_layer_count(const struct image *img);
struct layer *image_layer(const struct image *img, uint32_t i);
const struct blob_digests *image_layer_digests(const struct image *img, uint32_t i);
/* "sha256:<hex>" of layer i: its blob digest, else its diff_id. */
const char *image_layer_digest(const struct image *img, uint32_t i);

/* merged/: all layers. Built by image_open. */
struct tree *image_merged(const struct image *img);
/* layers/NN and stack/NN, built on first call. */
int image_layer_view(struct image *img, uint32_t i, struct tree **ret_tree, struct err *err);
int image_stack_view(struct image *img, uint32_t i, struct tree **ret_tree, struct err *err);

/*
 * deleted/: every version merged/ hides, built on first call, and its table
 * (image/deleted.tsv): a header line, then one line per hidden version:
 * path (as under deleted/), layer, removed_by, how, size.
 */
int image_deleted_view(struct image *img, struct tree **ret_tree, struct err *err);
int image_deleted_tsv(struct image *img, const char **ret_text, size_t *ret_len, struct err *err);
/* "whiteout", "opaque" or "shadowed". */
const char *image_how_name(uint32_t how);

/* The text of image/status: what is mounted (path, kind, name, digests, cache use). */
const char *image_status(const struct image *img, size_t *ret_len);
/* What inflates gzip layers in this process: "ISA-L 2.30.0" or "zlib". */
const char *image_gzip_engine(void);

/* The text of image/history: one line per layer. */

const char *image_history(const struct image *img, size_t *ret_len);

/* Layers whose index came from the on-disk cache (no pass over their blob). */
uint32_t image_cache_hits(const struct image *img);
/* The cache directory in use, or NULL when caching is off. */
const char *image_cache_dir(const struct image *img);
/* The directory the blobs spill into, or NULL when they do not spill. */
const char *image_spill_dir(const struct image *img);

/* Warnings gathered while opening (skipped entries, digest mismatches with no_verify). */

uint32_t image_warning_count(const struct image *img);
const char *image_warning(const struct image *img, uint32_t i);

#endif
