/*
 * tree_int.h: what the view builders share (tree.c: merged and layer views;
 * tree_deleted.c: the deleted view). Not an interface for anything else:
 * callers use tree.h.
 */
#ifndef STRATA_TREE_INT_H
#define STRATA_TREE_INT_H

#include <stdint.h>

#include "buf.h"
#include "strlist.h"
#include "tree.h"

#define TREE_MAX_WARNINGS 64

/*
 * A node of the finished tree: 16 bytes, with no pointers, so that a merged
 * tree can be written to the on-disk cache and mapped back as it is
 * (tree_io.c). The name is an offset into the tree's name pool. Where its
 * children are is kept only for nodes that have any (struct tdir): most
 * nodes are files.
 */
struct tnode {
	uint32_t name;  /* offset of the name in the name pool */
	uint32_t entry; /* TREE_NONE: implied directory */
	uint16_t layer; /* TNODE_LINKED: shares an inode, see struct tlink */
	uint16_t name_len;
	uint32_t dir; /* its struct tdir, TREE_NONE when it has no children */
};

/*
 * A node with children, which are nodes first .. first + count - 1. In
 * breadth-first order, so sorted by node and by first, and each run starts
 * where the previous one ended: the parent of a node is found by a binary
 * search for the run that holds it.
 */
struct tdir {
	uint32_t node;
	uint32_t first;
	uint32_t count;
};

#define TNODE_LINKED    0x8000u
#define TNODE_LAYER     0x7fffu
#define TREE_MAX_LAYERS TNODE_LAYER /* layer numbers must stay clear of the flag bit */

/* A node that shares its inode with others (hardlinks). Sorted by node. */
struct tlink {
	uint32_t node;
	uint32_t ino; /* the group's representative node */
	uint32_t nlink;
	uint32_t data_layer;
	uint32_t data_entry;
};

/*
 * A finished tree. The const arrays are either the tree's own (built here:
 * the bufs and the malloc'd pointers below hold them) or a mapped cache file
 * (tree_import), which the tree only borrows.
 */
struct tree {
	struct layer *const *layers;
	uint32_t nlayers;
	const struct tnode *nodes;
	uint32_t nnodes;
	const struct tdir *dirs;
	uint32_t ndirs;
	const struct tlink *links;
	uint32_t nlinks;
	const char *names; /* name pool */
	size_t names_len;
	const struct tree_hidden *hidden; /* what a merged view hid, in order */
	uint32_t nhidden;
	const struct tree_layer_stats *stats; /* per layer, indexed by layer */
	uint32_t *shown; /* deleted view: node -> index in shown_hidden, or TREE_NONE */
	struct tree_hidden *shown_hidden; /* deleted view: the versions it shows */
	char **made_up; /* deleted view, while building: names for older versions ("x;L02") */
	uint32_t nmade_up;
	struct strlist warnings;
	/* what a built tree owns */
	struct tnode *own_nodes;
	struct buf own_dirs; /* struct tdir[] */
	struct tlink *own_links;
	struct buf own_names;
	struct buf own_hidden; /* struct tree_hidden[] */
	struct tree_layer_stats *own_stats;
};

/* Build-time node. */
struct bnode {
	const char *name;
	uint32_t name_len;
	uint32_t parent;
	uint32_t first_child;
	uint32_t next_sibling;
	uint32_t layer, entry;           /* version shown; TREE_NONE entry: implied dir */
	uint32_t data_layer, data_entry; /* where its bytes are (hardlinks) */
	uint32_t aux;                    /* deleted view: index of the hidden version shown */
	uint8_t dead;
	uint8_t dir;
};

struct builder {
	struct tree *t;
	struct bnode *n;
	uint32_t nn, capn;
	uint32_t *slots; /* hash: node index + 1, 0 = empty */
	uint32_t nslots, used;
	uint32_t *stack; /* scratch for subtree walks */
	uint32_t capstack;
	int record_hidden;
};

#define tree_warn(t, ...) strlist_addf(&(t)->warnings, TREE_MAX_WARNINGS, __VA_ARGS__)

/* The builder's node table and (parent, name) hash (tree.c). */
int tb_grow_slots(struct builder *b);
/* The live child (parent, name), or TREE_NONE. */
uint32_t tb_child(struct builder *b, uint32_t parent, const char *name, size_t len);
int tb_new_node(struct builder *b, uint32_t parent, const char *name, size_t len, uint32_t layer,
                uint32_t entry, int dir, uint32_t *ret);
/* Turns the live build nodes into the finished, sorted tree. */
int tb_finish(struct builder *b);
/* Frees the names the deleted view made up (tb_finish has copied them). */
void tb_free_made_up(struct tree *t);

#endif
