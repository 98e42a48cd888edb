/*
 * tree_deleted: the deleted view (see tree_build_deleted in tree.h): every
 * version a merged view hid, placed newest first so that the newest keeps
 * the name and older ones are called NAME;LNN.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree_int.h"

static int cmp_hidden_newest(const void *pa, const void *pb)
{
	const struct tree_hidden *a = pa, *b = pb;

	if (a->layer != b->layer)
		return a->layer > b->layer ? -1 : 1;
	return a->entry > b->entry ? -1 : a->entry < b->entry;
}

/* Keeps a made-up name alive until tb_finish has copied it into the name pool. */
static const char *keep_name(struct tree *t, char *name)
{
	char **p = realloc(t->made_up, (t->nmade_up + 1) * sizeof(*p));

	if (!p) {
		free(name);
		return NULL;
	}
	t->made_up = p;
	p[t->nmade_up++] = name;
	return name;
}

/* The bytes of a hidden hardlink: the last entry of its layer at the link's target. */
static void hidden_link_data(const struct layer *l, const struct layer_entry *e, uint32_t li,
                             struct bnode *n)
{
	const char *target = layer_str(l, e->link);

	for (uint32_t i = layer_count(l); i-- > 0;) {
		const struct layer_entry *t = layer_entry(l, i);

		if (t->type != LAYER_HARDLINK && !strcmp(layer_str(l, t->path), target)) {
			n->data_layer = li;
			n->data_entry = i;
			return;
		}
	}
}

/*
 * The name for an older version where name is taken: "NAME;LNN", then
 * "NAME;LNN.2", ... With want_dir, an existing directory of that name is
 * taken as it is. Sets *ret_node to the existing directory or TREE_NONE.
 */
static int older_name(struct builder *b, uint32_t dir, const char *name, size_t len, uint32_t layer,
                      int want_dir, const char **ret_name, size_t *ret_len, uint32_t *ret_node)
{
	for (unsigned k = 1;; k++) {
		const char *kept;
		char *s;
		uint32_t c;

		if ((k == 1 ? asprintf(&s, "%.*s;L%02u", (int)len, name, layer)
		            : asprintf(&s, "%.*s;L%02u.%u", (int)len, name, layer, k)) < 0 ||
		    !(kept = keep_name(b->t, s)))
			return -ENOMEM;
		c = tb_child(b, dir, kept, strlen(kept));
		if (c == TREE_NONE || (want_dir && b->n[c].dir)) {
			*ret_name = kept;
			*ret_len = strlen(kept);
			*ret_node = c;
			return 0;
		}
	}
}

/* Places one hidden version in the deleted view. */
static int place_hidden(struct builder *b, const struct tree_hidden *h, uint32_t index)
{
	const struct layer *l = b->t->layers[h->layer];
	const struct layer_entry *e = layer_entry(l, h->entry);
	const char *path = layer_str(l, e->path), *base;
	int is_dir = e->type == LAYER_DIR;
	uint32_t dir, c;
	size_t len;
	int r;

	/*
	 * Parents are implied directories. Where a newer hidden version that is
	 * not a directory already holds a parent's name, this older version's
	 * parent is the older name "NAME;LNN" of the same scheme as files.
	 */
	dir = 0;
	for (const char *p = path, *slash; (slash = strchr(p, '/')); p = slash + 1) {
		size_t clen = (size_t)(slash - p);
		const char *cname = p;

		c = tb_child(b, dir, p, clen);
		if (c != TREE_NONE && !b->n[c].dir &&
		    (r = older_name(b, dir, p, clen, h->layer, 1, &cname, &clen, &c)) < 0)
			return r;
		if (c == TREE_NONE &&
		    (r = tb_new_node(b, dir, cname, clen, h->layer, TREE_NONE, 1, &c)) < 0)
			return r;
		dir = c;
	}
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	len = strlen(base);
	c = tb_child(b, dir, base, len);
	if (c != TREE_NONE && is_dir && b->n[c].dir) {
		/* versions of one directory merge: the newest shows, or this one if it was implied
		 */
		if (b->n[c].entry == TREE_NONE) {
			b->n[c].layer = b->n[c].data_layer = h->layer;
			b->n[c].entry = b->n[c].data_entry = h->entry;
			b->n[c].aux = index;
		}
		return 0;
	}
	if (c != TREE_NONE && (r = older_name(b, dir, base, len, h->layer, 0, &base, &len, &c)) < 0)
		return r;
	if ((r = tb_new_node(b, dir, base, len, h->layer, h->entry, is_dir, &c)) < 0)
		return r;
	b->n[c].aux = index;
	if (e->type == LAYER_HARDLINK)
		hidden_link_data(l, e, h->layer, &b->n[c]);
	return 0;
}

int tree_build_deleted(const struct tree *merged, struct tree **ret_tree, struct err *err)
{
	uint32_t n = tree_hidden_count(merged);
	struct builder b = {0};
	struct tree *t = calloc(1, sizeof(*t));
	uint32_t root;
	int r = -ENOMEM;

	if (!t)
		goto out;
	t->layers = merged->layers;
	t->nlayers = merged->nlayers;
	t->shown_hidden = malloc(((size_t)n + 1) * sizeof(*t->shown_hidden));
	if (!t->shown_hidden)
		goto out;
	if (n)
		memcpy(t->shown_hidden, merged->hidden, (size_t)n * sizeof(*t->shown_hidden));
	qsort(t->shown_hidden, n, sizeof(*t->shown_hidden), cmp_hidden_newest);
	b.t = t;
	if ((r = tb_grow_slots(&b)) < 0 ||
	    (r = tb_new_node(&b, 0, "", 0, 0, TREE_NONE, 1, &root)) < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		if ((r = place_hidden(&b, &t->shown_hidden[i], i)) < 0)
			goto out;
	if ((r = tb_finish(&b)) < 0)
		goto out;
	tb_free_made_up(t); /* the finished tree holds copies */
	*ret_tree = t;
	t = NULL;
out:
	if (r < 0)
		err_set(err, r, "building the deleted view: %s", strerror(-r));
	free(b.n);
	free(b.slots);
	free(b.stack);
	tree_free(t);
	return r;
}
