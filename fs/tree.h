/*
 * tree: one view of an image as a directory tree, built from layer indexes.
 *
 * A merged view applies layers 0..n-1 bottom to top with the OCI/Docker
 * overlay rules: ".wh.NAME" hides NAME in lower layers, ".wh..wh..opq" hides
 * the lower contents of its directory, whiteouts never hide entries of their
 * own layer whatever the tar order, a non-directory replaces a directory with
 * its subtree, a directory replacing a non-directory starts empty, two
 * directories merge with the upper attributes, the last duplicate in a layer
 * wins, missing parents are implied. Whiteouts are never shown. The merged
 * view of layers 0..NN is stack/NN; of all layers, merged/.
 *
 * A layer view shows one layer as stored: whiteout markers are plain empty
 * files, nothing is hidden.
 *
 * While a merged view is built, every version of a path that it hides is
 * recorded as a struct tree_hidden (for deleted/).
 *
 * Nodes are numbered 0..tree_node_count()-1, the root is node 0, and the
 * children of a directory are consecutive nodes sorted by name (bytewise), so
 * a lookup is a binary search. Hardlinked nodes share one inode: tree_stat()
 * reports the same `ino` node for all of them.
 *
 * Ownership: a tree borrows its layers (they must outlive it). After
 * building, a tree is immutable and safe to read from many threads.
 */
#ifndef STRATA_TREE_H
#define STRATA_TREE_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "layer.h"

#define TREE_NONE UINT32_MAX

enum tree_how {
	TREE_WHITEOUT, /* removed by a ".wh.NAME" of a later layer (or of a parent) */
	TREE_OPAQUE,   /* hidden by an opaque marker of a later layer */
	TREE_SHADOWED, /* replaced by another version of the same path */
};

struct tree_hidden {
	uint32_t layer;      /* the layer holding the hidden version */
	uint32_t entry;      /* its entry in that layer */
	uint32_t removed_by; /* the layer that hid it */
	uint32_t how;        /* enum tree_how */
};

struct tree_attr {
	uint32_t ino;        /* the node that stands for the inode (hardlinks share it) */
	uint32_t layer;      /* layer of the version shown (TREE_NONE: implied directory) */
	uint32_t entry;      /* its entry, TREE_NONE for an implied directory */
	uint32_t data_layer; /* where the file's bytes are (differs for hardlinks) */
	uint32_t data_entry;
	mode_t mode;
	uint32_t uid, gid, nlink;
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	dev_t rdev;
};

struct tree;

/* layers[0..nlayers-1], bottom first. */
int tree_build_merged(struct layer *const *layers, uint32_t nlayers, struct tree **ret_tree,
                      struct err *err);
/* The view of layers[index] alone; layers[0..index-1] are not consulted. */
int tree_build_layer(struct layer *const *layers, uint32_t index, struct tree **ret_tree,
                     struct err *err);
void tree_free(struct tree *t);

uint32_t tree_node_count(const struct tree *t);
/* The child called name (len bytes) of directory dir, or TREE_NONE. */
uint32_t tree_lookup(const struct tree *t, uint32_t dir, const char *name, size_t len);
/* Walks a slash-separated path from the root; returns TREE_NONE when absent. */
uint32_t tree_resolve(const struct tree *t, const char *path);
/* The children of dir are nodes first .. first + count - 1. */
void tree_children(const struct tree *t, uint32_t dir, uint32_t *ret_first, uint32_t *ret_count);
uint32_t tree_parent(const struct tree *t, uint32_t node);
/* The node's name, not NUL-terminated: len bytes. The root's is empty. */
const char *tree_name(const struct tree *t, uint32_t node, size_t *ret_len);
void tree_stat(const struct tree *t, uint32_t node, struct tree_attr *ret_attr);
/* The layer entry shown at node (NULL for implied directories). */
const struct layer_entry *tree_entry(const struct tree *t, uint32_t node,
                                     const struct layer **ret_layer);
/* Reads from a regular file, following hardlinks to the bytes. */
ssize_t tree_read(const struct tree *t, uint32_t node, void *buf, size_t len, uint64_t off,
                  struct err *err);

/*
 * The deleted view of a merged tree: every version it hid, at its own path.
 * When several versions of a path are hidden, the newest keeps the name and
 * older ones are called "NAME;LNN" after their layer ("NAME;LNN.2" for a
 * second one from the same layer). Directories that only hold hidden
 * versions are implied. Borrows merged's layers, not merged itself.
 */
int tree_build_deleted(const struct tree *merged, struct tree **ret_tree, struct err *err);
/* In a deleted view: the hidden version a node shows, or NULL (implied directories). */
const struct tree_hidden *tree_shown_hidden(const struct tree *t, uint32_t node);

/* What each layer did to the paths below it, counted while a merged view was built. */
struct tree_layer_stats {
	uint32_t added;        /* entries at paths no lower layer had */
	uint32_t changed;      /* entries replacing or updating a lower layer's version */
	uint32_t hidden;       /* lower versions this layer hid (whiteout, opaque, shadowing) */
	uint64_t hidden_bytes; /* their file sizes: bytes still shipped but invisible */
};
/* Zeroes for a layer view or a layer index out of range. */
void tree_layer_stats(const struct tree *t, uint32_t layer, struct tree_layer_stats *ret);

/* What a merged view hid, in the order it happened. */

uint32_t tree_hidden_count(const struct tree *t);
const struct tree_hidden *tree_hidden(const struct tree *t, uint32_t i);

/*
 * A merged view as one flat byte string, appended to out (for the on-disk
 * cache), and back over the same layers. tree_import validates what it is
 * given (a corrupt or hostile string is refused with -EINVAL, never trusted;
 * see tree_io.c for what is checked) and uses data in place: data must be
 * 8-byte aligned and outlive the tree. tree_export refuses other views.
 */
struct buf;
int tree_export(const struct tree *t, struct buf *out);
int tree_import(struct layer *const *layers, uint32_t nlayers, const void *data, size_t len,
                struct tree **ret_tree, struct err *err);

uint32_t tree_warning_count(const struct tree *t);
const char *tree_warning(const struct tree *t, uint32_t i);

#endif
