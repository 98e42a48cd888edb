/*
 * tree: building views from layer indexes, and reading them (see tree.h).
 *
 * Building uses a mutable form: nodes in an array with first-child /
 * next-sibling links, and a hash table from (parent, name) to node, so that
 * each layer entry costs O(path depth). Removed nodes are only marked dead.
 * Finishing walks the live nodes breadth first into the final, immutable
 * array in which every directory's children are consecutive and sorted; all
 * build-time state is then freed. A build node's name points into the path
 * string of a layer entry; finishing copies the names into one pool, so that
 * a finished tree holds no pointers and can be cached on disk as it is.
 */
#include "tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "buf.h"
#include "tree_int.h"
#include "strlist.h"

static uint64_t key_hash(uint32_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

static int names_equal(const struct bnode *n, const char *name, size_t len)
{
	return n->name_len == len && memcmp(n->name, name, len) == 0;
}

/* The slot holding (parent, name), or the empty slot where it would go. */
static uint32_t *find_slot(struct builder *b, uint32_t parent, const char *name, size_t len)
{
	uint32_t mask = b->nslots - 1;
	uint32_t i = (uint32_t)key_hash(parent, name, len) & mask;

	for (;;) {
		uint32_t *s = &b->slots[i];

		if (!*s)
			return s;
		const struct bnode *n = &b->n[*s - 1];
		if (n->parent == parent && names_equal(n, name, len))
			return s;
		i = (i + 1) & mask;
	}
}

int tb_grow_slots(struct builder *b)
{
	uint32_t old_n = b->nslots, *old = b->slots;

	if (b->nslots > UINT32_MAX / 4)
		return -E2BIG;
	b->nslots = old_n ? old_n * 2 : 1024;
	b->slots = calloc(b->nslots, sizeof(*b->slots));
	if (!b->slots) {
		b->slots = old;
		b->nslots = old_n;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < old_n; i++) {
		if (old[i]) {
			const struct bnode *n = &b->n[old[i] - 1];
			*find_slot(b, n->parent, n->name, n->name_len) = old[i];
		}
	}
	free(old);
	return 0;
}

/* The live child (parent, name), or TREE_NONE. */
uint32_t tb_child(struct builder *b, uint32_t parent, const char *name, size_t len)
{
	uint32_t s = *find_slot(b, parent, name, len);

	if (!s || b->n[s - 1].dead)
		return TREE_NONE;
	return s - 1;
}

int tb_new_node(struct builder *b, uint32_t parent, const char *name, size_t len, uint32_t layer,
                uint32_t entry, int dir, uint32_t *ret)
{
	struct bnode *n;
	uint32_t idx;
	int r;

	/* a finished node keeps 16 bits of name length */
	if (len > UINT16_MAX)
		return -ENAMETOOLONG;
	if ((b->used + 1) * 2 > b->nslots && (r = tb_grow_slots(b)) < 0)
		return r;
	if (b->nn == b->capn) {
		uint32_t cap = b->capn ? b->capn * 2 : 1024;
		struct bnode *p;

		if (b->capn > UINT32_MAX / 4)
			return -E2BIG;
		p = realloc(b->n, (size_t)cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->n = p;
		b->capn = cap;
	}
	idx = b->nn++;
	n = &b->n[idx];
	*n = (struct bnode){.name = name,
	                    .name_len = (uint32_t)len,
	                    .parent = parent,
	                    .first_child = TREE_NONE,
	                    .next_sibling = TREE_NONE,
	                    .layer = layer,
	                    .entry = entry,
	                    .data_layer = layer,
	                    .data_entry = entry,
	                    .aux = TREE_NONE,
	                    .dir = (uint8_t)dir};
	if (idx != 0) {
		uint32_t *s = find_slot(b, parent, name, len);

		if (!*s)
			b->used++;
		*s = idx + 1;
		n->next_sibling = b->n[parent].first_child;
		b->n[parent].first_child = idx;
	}
	*ret = idx;
	return 0;
}

static int record_hidden(struct builder *b, const struct bnode *n, uint32_t by, uint32_t how)
{
	struct tree_hidden h = {n->layer, n->entry, by, how};

	if (!b->record_hidden || n->entry == TREE_NONE)
		return 0;
	if (by < b->t->nlayers) {
		const struct layer_entry *e = layer_entry(b->t->layers[n->layer], n->entry);

		b->t->own_stats[by].hidden++;
		b->t->own_stats[by].hidden_bytes += e->size;
	}
	return buf_append(&b->t->own_hidden, &h, sizeof(h));
}

/* Marks node and everything below it dead, recording each hidden version. */
static int kill_subtree(struct builder *b, uint32_t node, uint32_t by, uint32_t how)
{
	uint32_t sp = 0;
	int r;

	if (b->capstack == 0) {
		b->stack = malloc(256 * sizeof(*b->stack));
		if (!b->stack)
			return -ENOMEM;
		b->capstack = 256;
	}
	b->stack[sp++] = node;
	while (sp) {
		uint32_t i = b->stack[--sp];
		struct bnode *n = &b->n[i];

		if (n->dead)
			continue;
		n->dead = 1;
		if ((r = record_hidden(b, n, by, how)) < 0)
			return r;
		for (uint32_t c = n->first_child; c != TREE_NONE; c = b->n[c].next_sibling) {
			if (b->n[c].dead)
				continue;
			if (sp == b->capstack) {
				uint32_t *p = realloc(b->stack, 2 * sp * sizeof(*p));

				if (!p)
					return -ENOMEM;
				b->stack = p;
				b->capstack = 2 * sp;
			}
			b->stack[sp++] = c;
		}
	}
	return 0;
}

/*
 * Walks the directory part of path (all but the last component) from the
 * root. With create, missing directories are implied and non-directories in
 * the way are replaced; without, a missing or non-directory component gives
 * TREE_NONE. On success *ret_base points at the last component.
 */
static int walk_parent(struct builder *b, const char *path, uint32_t layer, int create,
                       uint32_t *ret_dir, const char **ret_base)
{
	uint32_t dir = 0;
	const char *p = path, *slash;
	int r;

	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		uint32_t c = tb_child(b, dir, p, len);

		if (c != TREE_NONE && !b->n[c].dir) {
			/*
			 * A parent that is a file of this very layer: the tar contradicts
			 * itself (umoci writes "x" and then "x/.wh.y"). The entry that
			 * exists wins over the directory its child would imply.
			 */
			if (!create || b->n[c].layer == layer) {
				*ret_dir = TREE_NONE;
				return 0;
			}

			if ((r = kill_subtree(b, c, layer, TREE_SHADOWED)) < 0)
				return r;
			c = TREE_NONE;
		}
		if (c == TREE_NONE) {
			if (!create) {
				*ret_dir = TREE_NONE;
				return 0;
			}
			if ((r = tb_new_node(b, dir, p, len, layer, TREE_NONE, 1, &c)) < 0)
				return r;
		}
		dir = c;
		p = slash + 1;
	}
	*ret_dir = dir;
	*ret_base = p;
	return 0;
}

static int apply_whiteout(struct builder *b, const struct layer *l, uint32_t li,
                          const struct layer_entry *e)
{
	const char *path = layer_str(l, e->path), *base;
	uint32_t dir, c;
	int r;

	if ((r = walk_parent(b, path, li, 0, &dir, &base)) < 0 || dir == TREE_NONE)
		return r;
	if (e->flags & LAYER_F_OPAQUE) {
		for (c = b->n[dir].first_child; c != TREE_NONE; c = b->n[c].next_sibling)
			if (!b->n[c].dead && (r = kill_subtree(b, c, li, TREE_OPAQUE)) < 0)
				return r;
		return 0;
	}
	c = tb_child(b, dir, base + 4, strlen(base + 4));
	if (c == TREE_NONE)
		return 0;
	return kill_subtree(b, c, li, TREE_WHITEOUT);
}

/* The live node at a cleaned path, or TREE_NONE. */
static uint32_t build_resolve(struct builder *b, const char *path)
{
	uint32_t dir;
	const char *base;

	if (walk_parent(b, path, 0, 0, &dir, &base) < 0 || dir == TREE_NONE)
		return TREE_NONE;
	return tb_child(b, dir, base, strlen(base));
}

static int apply_entry(struct builder *b, const struct layer *l, uint32_t li, uint32_t ei)
{
	const struct layer_entry *e = layer_entry(l, ei);
	const char *path = layer_str(l, e->path), *base;
	int is_dir = e->type == LAYER_DIR;
	uint32_t dir, c, data_layer = li, data_entry = ei;
	int r;

	if (e->type == LAYER_HARDLINK) {
		uint32_t target = build_resolve(b, layer_str(l, e->link));

		if (target == TREE_NONE || b->n[target].dir || b->n[target].entry == TREE_NONE) {
			tree_warn(b->t, "layer %u: hardlink %s to %s: target %s, skipped", li, path,
			          layer_str(l, e->link),
			          target == TREE_NONE ? "missing" : "is a directory");
			return 0;
		}
		data_layer = b->n[target].data_layer;
		data_entry = b->n[target].data_entry;
	}
	if ((r = walk_parent(b, path, li, 1, &dir, &base)) < 0)
		return r;
	if (dir == TREE_NONE) {
		tree_warn(b->t, "layer %u: %s lies under a file of the same layer, skipped", li,
		          path);
		return 0;
	}
	c = tb_child(b, dir, base, strlen(base));

	/* a path the lower layers had is changed; a new one is added; a same-layer repeat is
	 * neither */
	if (c == TREE_NONE || b->n[c].entry == TREE_NONE)
		b->t->own_stats[li].added++;
	else if (b->n[c].layer != li)
		b->t->own_stats[li].changed++;
	if (c != TREE_NONE) {
		if (is_dir && b->n[c].dir) {
			b->n[c].layer = b->n[c].data_layer = li;
			b->n[c].entry = b->n[c].data_entry = ei;
			return 0;
		}
		if ((r = kill_subtree(b, c, li, TREE_SHADOWED)) < 0)
			return r;
	}
	if ((r = tb_new_node(b, dir, base, strlen(base), li, ei, is_dir, &c)) < 0)
		return r;
	b->n[c].data_layer = data_layer;
	b->n[c].data_entry = data_entry;
	return 0;
}

static int apply_layer(struct builder *b, const struct layer *l, uint32_t li, int raw)
{
	uint32_t count = layer_count(l);
	int r;

	/*
	 * Whiteouts first: they hide lower layers only, so applying them before
	 * any entry of their own layer makes tar order irrelevant.
	 */
	if (!raw) {
		for (uint32_t i = 0; i < count; i++) {
			const struct layer_entry *e = layer_entry(l, i);

			if ((e->flags & (LAYER_F_WHITEOUT | LAYER_F_OPAQUE)) &&
			    (r = apply_whiteout(b, l, li, e)) < 0)
				return r;
		}
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct layer_entry *e = layer_entry(l, i);

		if (!raw && e->flags)
			continue;
		if ((r = apply_entry(b, l, li, i)) < 0)
			return r;
	}
	return 0;
}

static int cmp_names(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_children(const void *pa, const void *pb, void *nodes)
{
	const struct bnode *a = (const struct bnode *)nodes + *(const uint32_t *)pa;
	const struct bnode *b = (const struct bnode *)nodes + *(const uint32_t *)pb;

	return cmp_names(a->name, a->name_len, b->name, b->name_len);
}

/* Hash map from a data source (layer, entry) to its hardlink group. */
struct group {
	uint32_t layer, entry;
	uint32_t ino, nlink;
};

static struct group *group_find(struct group *g, uint32_t mask, uint32_t layer, uint32_t entry)
{
	uint32_t i =
	    (uint32_t)(((uint64_t)layer * 0x9E3779B97F4A7C15ull ^ entry) * 0xff51afd7ed558ccdull >>
	               20) &
	    mask;

	while (g[i].nlink && (g[i].layer != layer || g[i].entry != entry))
		i = (i + 1) & mask;
	return &g[i];
}

/* Turns the live build nodes into the final sorted array, and finds hardlink groups. */
int tb_finish(struct builder *b)
{
	struct tree *t = b->t;
	uint32_t *order = NULL, *newidx = NULL, n = 0, head = 0;
	struct group *groups = NULL;
	struct tnode *nodes;
	size_t name_bytes = 0;
	uint32_t gmask;
	int r = -ENOMEM;

	order = malloc((size_t)b->nn * sizeof(*order));
	newidx = malloc((size_t)b->nn * sizeof(*newidx));
	nodes = t->own_nodes = calloc(b->nn, sizeof(*nodes));
	if (!order || !newidx || !nodes)
		goto out;
	if (t->shown_hidden && !(t->shown = malloc((size_t)b->nn * sizeof(*t->shown))))
		goto out;
	/* Breadth first: each directory's children land consecutively. */
	order[n++] = 0;
	newidx[0] = 0;
	while (head < n) {
		uint32_t old = order[head], start = n;
		struct tnode *tn = &nodes[head];
		const struct bnode *bn = &b->n[old];

		for (uint32_t c = bn->first_child; c != TREE_NONE; c = b->n[c].next_sibling)
			if (!b->n[c].dead)
				order[n++] = c;
		qsort_r(order + start, n - start, sizeof(*order), cmp_children, b->n);
		if (name_bytes > UINT32_MAX - bn->name_len) {
			r = -E2BIG;
			goto out;
		}
		*tn = (struct tnode){.name = (uint32_t)name_bytes,
		                     .name_len = (uint16_t)bn->name_len,
		                     .dir = TREE_NONE,
		                     .entry = bn->entry,
		                     .layer = (uint16_t)bn->layer};
		if (n > start) {
			struct tdir d = {head, start, n - start};

			tn->dir = (uint32_t)(t->own_dirs.len / sizeof(d));
			if ((r = buf_append(&t->own_dirs, &d, sizeof(d))) < 0)
				goto out;
		}
		name_bytes += bn->name_len;
		for (uint32_t i = start; i < n; i++)
			newidx[order[i]] = i;
		if (t->shown)
			t->shown[head] = bn->aux;
		head++;
	}
	t->nnodes = n;
	/* the names in node order: siblings' names are neighbours for lookups */
	if ((r = buf_grow(&t->own_names, name_bytes)) < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		buf_append(&t->own_names, b->n[order[i]].name, b->n[order[i]].name_len);
	r = -ENOMEM;

	/* Hardlink groups: nodes whose bytes come from the same entry. */
	for (gmask = 1; gmask < 2 * n; gmask <<= 1)
		;
	groups = calloc(gmask, sizeof(*groups));
	if (!groups)
		goto out;
	gmask--;
	for (uint32_t i = 0; i < n; i++) {
		const struct bnode *bn = &b->n[order[i]];
		struct group *g;

		if (bn->dir || bn->data_entry == TREE_NONE)
			continue;
		g = group_find(groups, gmask, bn->data_layer, bn->data_entry);
		if (!g->nlink)
			*g = (struct group){bn->data_layer, bn->data_entry, i, 0};
		g->nlink++;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct bnode *bn = &b->n[order[i]];
		struct group *g;
		struct tlink *p;

		if (bn->dir || bn->data_entry == TREE_NONE)
			continue;
		g = group_find(groups, gmask, bn->data_layer, bn->data_entry);
		if (g->nlink < 2 && bn->data_entry == bn->entry && bn->data_layer == bn->layer)
			continue;
		p = realloc(t->own_links, (t->nlinks + 1) * sizeof(*p));
		if (!p)
			goto out;
		t->own_links = p;
		p[t->nlinks++] =
		    (struct tlink){i, g->ino, g->nlink, bn->data_layer, bn->data_entry};
		nodes[i].layer |= TNODE_LINKED;
	}
	t->nodes = nodes;
	t->dirs = (const struct tdir *)t->own_dirs.data;
	t->ndirs = (uint32_t)(t->own_dirs.len / sizeof(struct tdir));
	t->links = t->own_links;
	t->names = t->own_names.data ? t->own_names.data : "";
	t->names_len = t->own_names.len;
	t->hidden = (const struct tree_hidden *)t->own_hidden.data;
	t->nhidden = (uint32_t)(t->own_hidden.len / sizeof(struct tree_hidden));
	t->stats = t->own_stats;
	r = 0;
out:
	free(groups);
	free(order);
	free(newidx);
	return r;
}

static int build(struct layer *const *layers, uint32_t nlayers, uint32_t first, int raw,
                 struct tree **ret_tree, struct err *err)
{
	struct builder b = {0};
	struct tree *t = calloc(1, sizeof(*t));
	uint32_t root;
	int r = -ENOMEM;

	if (!t)
		goto out;
	t->layers = layers;
	t->nlayers = nlayers;
	if (nlayers > TREE_MAX_LAYERS) {
		r = -E2BIG;
		goto out;
	}
	t->own_stats = calloc(nlayers + 1, sizeof(*t->own_stats));
	if (!t->own_stats)
		goto out;
	b.t = t;
	b.record_hidden = !raw;
	if ((r = tb_grow_slots(&b)) < 0 ||
	    (r = tb_new_node(&b, 0, "", 0, first, TREE_NONE, 1, &root)) < 0)
		goto out;
	for (uint32_t i = first; i < nlayers; i++)
		if ((r = apply_layer(&b, layers[i], i, raw)) < 0)
			goto out;
	if ((r = tb_finish(&b)) < 0)
		goto out;
	*ret_tree = t;
	t = NULL;
out:
	if (r < 0)
		err_set(err, r, "building the %s view of %u layers: %s", raw ? "layer" : "merged",
		        nlayers, strerror(-r));
	free(b.n);
	free(b.slots);
	free(b.stack);
	tree_free(t);
	return r;
}

int tree_build_merged(struct layer *const *layers, uint32_t nlayers, struct tree **ret_tree,
                      struct err *err)
{
	return build(layers, nlayers, 0, 0, ret_tree, err);
}

int tree_build_layer(struct layer *const *layers, uint32_t index, struct tree **ret_tree,
                     struct err *err)
{
	return build(layers, index + 1, index, 1, ret_tree, err);
}

/* Newest first: higher layer, then later entry. */
void tree_layer_stats(const struct tree *t, uint32_t layer, struct tree_layer_stats *ret)
{
	*ret = layer < t->nlayers && t->stats ? t->stats[layer] : (struct tree_layer_stats){0};
}

const struct tree_hidden *tree_shown_hidden(const struct tree *t, uint32_t node)

{
	if (!t->shown || t->shown[node] == TREE_NONE)
		return NULL;
	return &t->shown_hidden[t->shown[node]];
}

void tb_free_made_up(struct tree *t)
{
	for (uint32_t i = 0; i < t->nmade_up; i++)
		free(t->made_up[i]);
	free(t->made_up);
	t->made_up = NULL;
	t->nmade_up = 0;
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	free(t->own_nodes);
	buf_release(&t->own_dirs);
	free(t->own_links);
	free(t->own_stats);
	free(t->shown);
	free(t->shown_hidden);
	tb_free_made_up(t);
	buf_release(&t->own_names);
	buf_release(&t->own_hidden);
	strlist_release(&t->warnings);
	free(t);
}

uint32_t tree_node_count(const struct tree *t)
{
	return t->nnodes;
}

uint32_t tree_lookup(const struct tree *t, uint32_t dir, const char *name, size_t len)
{
	uint32_t lo, hi;

	tree_children(t, dir, &lo, &hi);
	hi += lo;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct tnode *n = &t->nodes[mid];
		int c = cmp_names(t->names + n->name, n->name_len, name, len);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return TREE_NONE;
}

uint32_t tree_resolve(const struct tree *t, const char *path)
{
	uint32_t node = 0;

	while (*path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);

		if (len && !(len == 1 && path[0] == '.')) {
			node = tree_lookup(t, node, path, len);
			if (node == TREE_NONE)
				return TREE_NONE;
		}
		path += len + (slash ? 1 : 0);
	}
	return node;
}

void tree_children(const struct tree *t, uint32_t dir, uint32_t *ret_first, uint32_t *ret_count)
{
	uint32_t d = t->nodes[dir].dir;

	*ret_first = d == TREE_NONE ? 0 : t->dirs[d].first;
	*ret_count = d == TREE_NONE ? 0 : t->dirs[d].count;
}

uint32_t tree_parent(const struct tree *t, uint32_t node)
{
	uint32_t lo = 0, hi = t->ndirs;

	if (node == 0 || !hi)
		return 0;
	/* the last run that starts at or before node holds it */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->dirs[mid].first <= node)
			lo = mid;
		else
			hi = mid;
	}
	return t->dirs[lo].node;
}

const char *tree_name(const struct tree *t, uint32_t node, size_t *ret_len)
{
	*ret_len = t->nodes[node].name_len;
	return t->names + t->nodes[node].name;
}

static const struct tlink *find_link(const struct tree *t, uint32_t node)
{
	uint32_t lo = 0, hi = t->nlinks;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (t->links[mid].node == node)
			return &t->links[mid];
		if (t->links[mid].node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct layer_entry *tree_entry(const struct tree *t, uint32_t node,
                                     const struct layer **ret_layer)
{
	const struct tnode *n = &t->nodes[node];

	uint32_t li = n->layer & TNODE_LAYER;

	if (n->entry == TREE_NONE)
		return NULL;
	if (ret_layer)
		*ret_layer = t->layers[li];
	return layer_entry(t->layers[li], n->entry);
}

void tree_stat(const struct tree *t, uint32_t node, struct tree_attr *ret)
{
	const struct tnode *n = &t->nodes[node];
	const struct layer_entry *e;

	*ret = (struct tree_attr){.ino = node,
	                          .layer = n->layer & TNODE_LAYER,
	                          .entry = n->entry,
	                          .data_layer = n->layer & TNODE_LAYER,
	                          .data_entry = n->entry,
	                          .nlink = 1};
	if (n->layer & TNODE_LINKED) {
		const struct tlink *k = find_link(t, node);

		ret->ino = k->ino;
		ret->nlink = k->nlink;
		ret->data_layer = k->data_layer;
		ret->data_entry = k->data_entry;
	}
	if (ret->data_entry == TREE_NONE) {
		/* an implied directory: what tar extraction would create */
		ret->mode = S_IFDIR | 0755;
	} else {
		e = layer_entry(t->layers[ret->data_layer], ret->data_entry);
		ret->mode = e->mode;
		ret->uid = e->uid;
		ret->gid = e->gid;
		ret->size = e->size;
		ret->mtime = e->mtime;
		ret->mtime_nsec = e->mtime_nsec;
		ret->rdev = layer_rdev(e);
		if (S_ISLNK(e->mode))
			ret->size = strlen(layer_str(t->layers[ret->data_layer], e->link));
	}
	if (S_ISDIR(ret->mode)) {
		ret->nlink = 2;
		uint32_t first, count;

		tree_children(t, node, &first, &count);
		for (uint32_t i = 0; i < count; i++) {
			const struct tnode *c = &t->nodes[first + i];
			const struct layer_entry *ce =
			    c->entry == TREE_NONE
			        ? NULL
			        : layer_entry(t->layers[c->layer & TNODE_LAYER], c->entry);

			if (!ce || ce->type == LAYER_DIR)
				ret->nlink++;
		}
	}
}

ssize_t tree_read(const struct tree *t, uint32_t node, void *buf, size_t len, uint64_t off,
                  struct err *err)
{
	struct tree_attr a;

	tree_stat(t, node, &a);
	if (a.data_entry == TREE_NONE || !S_ISREG(a.mode))
		return -EISDIR;
	return layer_read(t->layers[a.data_layer],
	                  layer_entry(t->layers[a.data_layer], a.data_entry), buf, len, off, err);
}

uint32_t tree_hidden_count(const struct tree *t)
{
	return t->nhidden;
}

const struct tree_hidden *tree_hidden(const struct tree *t, uint32_t i)
{
	return t->hidden + i;
}

uint32_t tree_warning_count(const struct tree *t)
{
	return t->warnings.n;
}

const char *tree_warning(const struct tree *t, uint32_t i)
{
	return t->warnings.v[i];
}
