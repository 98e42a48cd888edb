/*
 * vtree: made-up directory trees (see vtree.h). Plain arrays: the trees are
 * small (one node per finding at most) and built once.
 */
#include "vtree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vnode {
	char *name;
	char *data;
	size_t len;
	uint32_t parent;
	enum vtree_type type;
	uint32_t *children;
	uint32_t nchildren;
};

struct vtree {
	struct vnode *n;
	uint32_t count;
};

int vtree_new(struct vtree **ret)
{
	struct vtree *t = calloc(1, sizeof(*t));
	uint32_t root;

	if (!t)
		return -ENOMEM;
	t->n = NULL;
	if (vtree_add(t, 0, "", VTREE_DIR, NULL, 0, &root) < 0) {
		free(t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

void vtree_free(struct vtree *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->count; i++) {
		free(t->n[i].name);
		free(t->n[i].data);
		free(t->n[i].children);
	}
	free(t->n);
	free(t);
}

int vtree_add(struct vtree *t, uint32_t parent, const char *name, enum vtree_type type,
              const void *data, size_t len, uint32_t *ret_node)
{
	struct vnode *n = realloc(t->n, (t->count + 1) * sizeof(*n)), *p;
	uint32_t idx = t->count, *c;

	if (!n)
		return -ENOMEM;
	t->n = n;
	n = &t->n[idx];
	*n = (struct vnode){.parent = parent, .type = type, .len = len};
	n->name = strdup(name);
	n->data = malloc(len + 1);
	if (!n->name || !n->data) {
		free(n->name);
		free(n->data);
		return -ENOMEM;
	}
	if (len)
		memcpy(n->data, data, len);
	n->data[len] = '\0';
	if (idx != 0) {
		p = &t->n[parent];
		c = realloc(p->children, (p->nchildren + 1) * sizeof(*c));
		if (!c) {
			free(n->name);
			free(n->data);
			return -ENOMEM;
		}
		p->children = c;
		c[p->nchildren++] = idx;
	}
	t->count++;
	if (ret_node)
		*ret_node = idx;
	return 0;
}

int vtree_mkdir(struct vtree *t, uint32_t parent, const char *name, uint32_t *ret_node)
{
	const struct vnode *p = &t->n[parent];

	for (uint32_t i = 0; i < p->nchildren; i++) {
		if (!strcmp(t->n[p->children[i]].name, name)) {
			*ret_node = p->children[i];
			return 0;
		}
	}
	return vtree_add(t, parent, name, VTREE_DIR, NULL, 0, ret_node);
}

static int cmp_child(const void *a, const void *b, void *tree)
{
	const struct vtree *t = tree;

	return strcmp(t->n[*(const uint32_t *)a].name, t->n[*(const uint32_t *)b].name);
}

void vtree_seal(struct vtree *t)
{
	for (uint32_t i = 0; i < t->count; i++)
		if (t->n[i].nchildren > 1) /* an empty list has no array to pass */
			qsort_r(t->n[i].children, t->n[i].nchildren, sizeof(uint32_t), cmp_child,
			        t);
}

uint32_t vtree_count(const struct vtree *t)
{
	return t->count;
}

uint32_t vtree_lookup(const struct vtree *t, uint32_t dir, const char *name)
{
	const struct vnode *d = &t->n[dir];
	uint32_t lo = 0, hi = d->nchildren;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->n[d->children[mid]].name, name);

		if (c == 0)
			return d->children[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return VTREE_NONE;
}

uint32_t vtree_child_count(const struct vtree *t, uint32_t dir)
{
	return t->n[dir].nchildren;
}

uint32_t vtree_child(const struct vtree *t, uint32_t dir, uint32_t i)
{
	return t->n[dir].children[i];
}

uint32_t vtree_parent(const struct vtree *t, uint32_t node)
{
	return t->n[node].parent;
}

const char *vtree_name(const struct vtree *t, uint32_t node)
{
	return t->n[node].name;
}

enum vtree_type vtree_type(const struct vtree *t, uint32_t node)
{
	return t->n[node].type;
}

const char *vtree_data(const struct vtree *t, uint32_t node, size_t *ret_len)
{
	*ret_len = t->n[node].len;
	return t->n[node].data;
}
