/*
 * vtree: a small in-memory tree of made-up directories, files and symlinks,
 * for the parts of a mount that are generated rather than read from layers
 * (.secrets/). Built by one thread with vtree_add(), then sealed with
 * vtree_seal(), after which it is immutable and safe to read from many
 * threads. Node 0 is the root directory.
 *
 * Ownership: the tree copies names and contents it is given.
 */
#ifndef STRATA_VTREE_H
#define STRATA_VTREE_H

#include <stddef.h>
#include <stdint.h>

#define VTREE_NONE UINT32_MAX

enum vtree_type {
	VTREE_DIR,
	VTREE_FILE,
	VTREE_LINK,
};

struct vtree;

int vtree_new(struct vtree **ret);
void vtree_free(struct vtree *t);

/* Adds a node under directory parent; data is the file's contents or the link's target. */
int vtree_add(struct vtree *t, uint32_t parent, const char *name, enum vtree_type type,
              const void *data, size_t len, uint32_t *ret_node);
/* The directory called name under parent, created if missing. */
int vtree_mkdir(struct vtree *t, uint32_t parent, const char *name, uint32_t *ret_node);
/* Sorts every directory's children by name; lookups need it. */
void vtree_seal(struct vtree *t);

uint32_t vtree_count(const struct vtree *t);
uint32_t vtree_lookup(const struct vtree *t, uint32_t dir, const char *name);
uint32_t vtree_child_count(const struct vtree *t, uint32_t dir);
uint32_t vtree_child(const struct vtree *t, uint32_t dir, uint32_t i);
uint32_t vtree_parent(const struct vtree *t, uint32_t node);
const char *vtree_name(const struct vtree *t, uint32_t node);
enum vtree_type vtree_type(const struct vtree *t, uint32_t node);
const char *vtree_data(const struct vtree *t, uint32_t node, size_t *ret_len);

#endif
