/*
 * tree_io: a finished merged view as one flat byte string and back (see
 * tree_export in tree.h), so that a remount maps the tree from the on-disk
 * cache instead of building it again.
 *
 * The string is a header, then per-layer entry counts, the per-layer stats,
 * the nodes, the runs of children (struct tdir), the hardlink records, the hidden versions, the
 * name pool and the warnings, each padded to 8 bytes, so that a mapped file is used in place.
 * Finished nodes hold no pointers (tree_int.h), which is what makes that possible.
 *
 * Import trusts nothing: the cache directory may have been written by
 * someone else. It checks, in one pass over the nodes and without reading
 * any layer entry, everything the readers of tree.h rely on: every index is
 * in range, parents come before their children (so walking up ends), the
 * runs of children follow each other and cover every node but the root
 * exactly once, siblings are sorted and distinct (so lookups are right), names are non-empty and
 * hold no '/' or NUL (nor does anything else in the name pool), every node marked as linked has
 * exactly one hardlink record. That is a few compares per node and one look at each name byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tree_int.h"

#define TREE_MAGIC   "STRTREE\0"
#define TREE_VERSION 2 /* bump whenever struct tnode, tdir, tlink or the building rules change */

struct tree_file_header {
	char magic[8];
	uint32_t version;
	uint32_t layer_version; /* the layer index format the entry numbers refer to */
	uint16_t node_size, dir_size, link_size, hidden_size, stats_size, pad;
	uint32_t nlayers;
	uint32_t nnodes;
	uint32_t ndirs;
	uint32_t nlinks;
	uint32_t nhidden;
	uint32_t nwarnings;
	uint32_t pad2;
	uint64_t names_len;
	uint64_t warn_len;
};

_Static_assert(sizeof(struct tree_file_header) == 72, "no implicit padding in the header");

static const char zeros[8];

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int append_padded(struct buf *out, const void *data, size_t len)
{
	int r = buf_append(out, data, len);

	if (r == 0)
		r = buf_append(out, zeros, pad8(len) - len);
	return r;
}

int tree_export(const struct tree *t, struct buf *out)
{
	struct tree_file_header h = {.version = TREE_VERSION,
	                             .layer_version = layer_format_version(),
	                             .node_size = sizeof(struct tnode),
	                             .dir_size = sizeof(struct tdir),
	                             .link_size = sizeof(struct tlink),
	                             .hidden_size = sizeof(struct tree_hidden),
	                             .stats_size = sizeof(struct tree_layer_stats),
	                             .nlayers = t->nlayers,
	                             .nnodes = t->nnodes,
	                             .ndirs = t->ndirs,
	                             .nlinks = t->nlinks,
	                             .nhidden = t->nhidden,
	                             .nwarnings = t->warnings.n,
	                             .names_len = t->names_len};
	size_t start = out->len;
	uint32_t *counts;
	int r = 0;

	/* only a merged view: a deleted view's extra state is not part of the format */
	if (t->shown || !t->stats)
		return -EINVAL;
	memcpy(h.magic, TREE_MAGIC, 8);
	for (uint32_t i = 0; i < t->warnings.n; i++)
		h.warn_len += strlen(t->warnings.v[i]) + 1;
	counts = calloc(t->nlayers + 1, sizeof(*counts));
	if (!counts)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nlayers; i++)
		counts[i] = layer_count(t->layers[i]);
	if ((r = append_padded(out, &h, sizeof(h))) < 0 ||
	    (r = append_padded(out, counts, (size_t)t->nlayers * sizeof(*counts))) < 0 ||
	    (r = append_padded(out, t->stats, (size_t)t->nlayers * sizeof(*t->stats))) < 0 ||
	    (r = append_padded(out, t->nodes, (size_t)t->nnodes * sizeof(*t->nodes))) < 0 ||
	    (r = append_padded(out, t->dirs, (size_t)t->ndirs * sizeof(*t->dirs))) < 0 ||
	    (r = append_padded(out, t->links, (size_t)t->nlinks * sizeof(*t->links))) < 0 ||
	    (r = append_padded(out, t->hidden, (size_t)t->nhidden * sizeof(*t->hidden))) < 0 ||
	    (r = append_padded(out, t->names, t->names_len)) < 0)
		goto out;
	for (uint32_t i = 0; i < t->warnings.n; i++)
		if ((r = buf_append(out, t->warnings.v[i], strlen(t->warnings.v[i]) + 1)) < 0)
			goto out;
	r = buf_append(out, zeros, pad8(h.warn_len) - h.warn_len);
out:
	if (r < 0)
		out->len = start;
	free(counts);
	return r;
}

static int name_cmp(const struct tree *t, const struct tnode *a, const struct tnode *b)
{
	size_t la = a->name_len, lb = b->name_len;
	int c = memcmp(t->names + a->name, t->names + b->name, la < lb ? la : lb);

	return c ? c : (la > lb) - (la < lb);
}

/* The checks of one node (see the top of the file); counts[] are entries per layer. */
static int node_valid(const struct tree *t, const uint32_t *counts, uint32_t i)
{
	const struct tnode *n = &t->nodes[i];
	uint32_t li = n->layer & TNODE_LAYER;

	if (n->name > t->names_len || n->name_len > t->names_len - n->name)
		return 0;
	/* its run of children names it back, which makes node and run one to one */
	if (n->dir != TREE_NONE && (n->dir >= t->ndirs || t->dirs[n->dir].node != i))
		return 0;
	if (i == 0)
		return n->name_len == 0 && n->entry == TREE_NONE && li == 0 &&
		       !(n->layer & TNODE_LINKED);
	if (li >= t->nlayers || (n->entry != TREE_NONE && n->entry >= counts[li]))
		return 0;
	/* names hold no '/' or NUL: tree_import checked the whole pool */
	return n->name_len != 0;
}

/*
 * The runs of children: in node order, each starting where the previous
 * ended (the first right after the root), past the node that owns it, the
 * last ending at the last node; names strictly increasing inside a run.
 */
static int dirs_valid(const struct tree *t)
{
	uint32_t next = 1;

	for (uint32_t k = 0; k < t->ndirs; k++) {
		const struct tdir *d = &t->dirs[k];

		if (d->node >= t->nnodes || t->nodes[d->node].dir != k ||
		    (k && d->node <= t->dirs[k - 1].node) || d->first != next ||
		    d->node >= d->first || !d->count || d->count > t->nnodes - d->first)
			return 0;
		for (uint32_t c = d->first + 1; c < d->first + d->count; c++)
			if (name_cmp(t, &t->nodes[c - 1], &t->nodes[c]) >= 0)
				return 0;
		next = d->first + d->count;
	}
	return next == t->nnodes;
}

static int links_valid(const struct tree *t, const uint32_t *counts, uint32_t nlinked)
{
	if (t->nlinks != nlinked)
		return 0;
	for (uint32_t i = 0; i < t->nlinks; i++) {
		const struct tlink *k = &t->links[i];

		/* sorted by node, one per linked node: find_link always finds one */
		if (k->node >= t->nnodes || (i && k->node <= t->links[i - 1].node) ||
		    !(t->nodes[k->node].layer & TNODE_LINKED) || k->ino >= t->nnodes || !k->nlink ||
		    k->data_layer >= t->nlayers || k->data_entry >= counts[k->data_layer])
			return 0;
	}
	return 1;
}

static int hidden_valid(const struct tree *t, const uint32_t *counts)
{
	for (uint32_t i = 0; i < t->nhidden; i++) {
		const struct tree_hidden *h = &t->hidden[i];

		if (h->layer >= t->nlayers || h->entry >= counts[h->layer] ||
		    h->removed_by >= t->nlayers || h->how > TREE_SHADOWED)
			return 0;
	}
	return 1;
}

int tree_import(struct layer *const *layers, uint32_t nlayers, const void *data, size_t len,
                struct tree **ret_tree, struct err *err)
{
	const char *p = data;
	struct tree_file_header h;
	const uint32_t *counts;
	struct tree *t = NULL;
	uint64_t need;
	uint32_t nlinked = 0;
	size_t off;

	if (len < sizeof(h) || (uintptr_t)data % 8)
		return err_set(err, -EINVAL, "tree truncated or not aligned");
	memcpy(&h, p, sizeof(h));
	if (memcmp(h.magic, TREE_MAGIC, 8) || h.version != TREE_VERSION ||
	    h.layer_version != layer_format_version() || h.node_size != sizeof(struct tnode) ||
	    h.dir_size != sizeof(struct tdir) || h.link_size != sizeof(struct tlink) ||
	    h.hidden_size != sizeof(struct tree_hidden) ||
	    h.stats_size != sizeof(struct tree_layer_stats))
		return err_set(err, -EINVAL, "not a tree of this version");
	/* each count is bounded by the length before anything is multiplied */
	if (h.nlayers != nlayers || h.nnodes == 0 || h.nnodes > len / sizeof(struct tnode) ||
	    h.ndirs > len / sizeof(struct tdir) || h.nlinks > len / sizeof(struct tlink) ||
	    h.nhidden > len / sizeof(struct tree_hidden) ||
	    h.nlayers > len / sizeof(struct tree_layer_stats) || h.names_len > len ||
	    h.warn_len > len || h.nwarnings > TREE_MAX_WARNINGS)
		return err_set(err, -EINVAL, "tree sizes are inconsistent");
	need = pad8(sizeof(h)) + pad8((size_t)h.nlayers * 4) +
	       pad8((size_t)h.nlayers * sizeof(struct tree_layer_stats)) +
	       pad8((size_t)h.nnodes * sizeof(struct tnode)) +
	       pad8((size_t)h.ndirs * sizeof(struct tdir)) +
	       pad8((size_t)h.nlinks * sizeof(struct tlink)) +
	       pad8((size_t)h.nhidden * sizeof(struct tree_hidden)) + pad8(h.names_len) +
	       pad8(h.warn_len);
	if (need != len)
		return err_set(err, -EINVAL, "tree length is inconsistent");
	off = pad8(sizeof(h));
	counts = (const uint32_t *)(p + off);
	for (uint32_t i = 0; i < nlayers; i++)
		if (counts[i] != layer_count(layers[i]))
			return err_set(err, -EINVAL, "tree of other layer indexes");
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(err, -ENOMEM, "out of memory");
	t->layers = layers;
	t->nlayers = nlayers;
	off += pad8((size_t)h.nlayers * 4);
	t->stats = (const struct tree_layer_stats *)(p + off);
	off += pad8((size_t)h.nlayers * sizeof(struct tree_layer_stats));
	t->nodes = (const struct tnode *)(p + off);
	t->nnodes = h.nnodes;
	off += pad8((size_t)h.nnodes * sizeof(struct tnode));
	t->dirs = (const struct tdir *)(p + off);
	t->ndirs = h.ndirs;
	off += pad8((size_t)h.ndirs * sizeof(struct tdir));
	t->links = (const struct tlink *)(p + off);
	t->nlinks = h.nlinks;
	off += pad8((size_t)h.nlinks * sizeof(struct tlink));
	t->hidden = (const struct tree_hidden *)(p + off);
	t->nhidden = h.nhidden;
	off += pad8((size_t)h.nhidden * sizeof(struct tree_hidden));
	t->names = p + off;
	t->names_len = h.names_len;
	off += pad8(h.names_len);
	/*
	 * The pool holds the names back to back and nothing else, so no name
	 * has a '/' or a NUL when the pool has none: one pass over it instead
	 * of two calls per node, which a warm mount of many files felt.
	 */
	if (memchr(t->names, '/', t->names_len) || memchr(t->names, '\0', t->names_len))
		goto bad;
	for (uint32_t i = 0; i < t->nnodes; i++) {
		if (!node_valid(t, counts, i))
			goto bad;
		nlinked += !!(t->nodes[i].layer & TNODE_LINKED);
	}
	if (!dirs_valid(t) || !links_valid(t, counts, nlinked) || !hidden_valid(t, counts))
		goto bad;
	const char *w = p + off, *end = w + h.warn_len;
	for (uint32_t k = 0; k < h.nwarnings; k++) {
		const char *nul = memchr(w, '\0', (size_t)(end - w));

		if (!nul)
			goto bad;
		tree_warn(t, "%s", w);
		w = nul + 1;
	}
	*ret_tree = t;
	return 0;
bad:
	tree_free(t);
	return err_set(err, -EINVAL, "tree is corrupt");
}
