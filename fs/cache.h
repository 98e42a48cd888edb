/*
 * cache: the on-disk cache of layer indexes, keyed by layer digest, so that
 * a remount (or another image sharing a layer) skips the indexing pass.
 *
 * One file per layer, <dir>/<algo>-<hex>.idx, holding the layer index, the
 * blob's seek points and digests, behind a header with a version and a
 * checksum. Files are written to a temporary name and renamed, so a kill at
 * any point leaves either the old state or the new one. A file that does not
 * check out (wrong version, size, checksum, or contents that fail the layer's
 * own validation) is removed and rebuilt, never trusted.
 *
 * The default directory is $XDG_CACHE_HOME/strata, else ~/.cache/strata.
 *
 * Ownership: layers loaded from the cache, and the seek points of their
 * blobs, use its mapped files in place; the cache must outlive both. Safe to use from many threads.
 */
#ifndef STRATA_CACHE_H
#define STRATA_CACHE_H

#include "blob.h"
#include "err.h"
#include "layer.h"

struct cache;

/* dir NULL: the default. The directory is created (0700) when missing. */
int cache_open(const char *dir, struct cache **ret_cache, struct err *err);
void cache_free(struct cache *c);
const char *cache_dir(const struct cache *c);

/*
 * Loads the index of the layer whose digest is key into a new layer over
 * blob b (and gives the blob its seek points). Returns -ENOENT when the cache
 * has none, -EINVAL when the file was corrupt (it is then removed).
 */
int cache_load_layer(struct cache *c, const char *key, struct blob *b, struct layer **ret_layer,
                     struct blob_digests *ret_digests, struct err *err);
int cache_store_layer(struct cache *c, const char *key, const struct layer *l, const struct blob *b,
                      const struct blob_digests *d, struct err *err);

/*
 * The merged view of layers[0..n-1], whose digests are digests[0..n-1],
 * cached in <dir>/tree-<hex>.tree (hex: SHA-256 of the digest list and the
 * format versions), mapped and used in place like a layer index. Load
 * returns -ENOENT when there is none and -EINVAL when the file was corrupt
 * or made for other layer indexes (it is then removed).
 */
struct tree;
int cache_load_tree(struct cache *c, const char *const *digests, struct layer *const *layers,
                    uint32_t n, struct tree **ret_tree, struct err *err);
int cache_store_tree(struct cache *c, const char *const *digests, uint32_t n, const struct tree *t,
                     struct err *err);
/* The file that holds (or would hold) that tree, malloc'd; NULL when out of memory. */
char *cache_tree_path(const struct cache *c, const char *const *digests, uint32_t n);

/* The file that holds (or would hold) key's index, malloc'd; NULL for a malformed key. */
char *cache_path(const struct cache *c, const char *key);
/*
 * The name of a cache file for key in dir with the given ending ("<dir>/
 * <algo>-<hex><ext>"), malloc'd; NULL unless key is "algo:hex", so that no
 * digest from an image ever names a file outside dir.
 */
char *cache_file_name(const char *dir, const char *key, const char *ext);

#endif
