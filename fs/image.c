/*
 * image: opening, indexing and the lazily built views (see image.h).
 *
 * Layers are indexed by a small pool of threads that take the next layer
 * from a shared counter, so that a big layer and many small ones keep every
 * core busy. Each thread reads its own blob, so nothing is shared but the
 * counter.
 */
#include "image.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"

struct lazy_view {
	pthread_mutex_t lock;
	struct tree *tree;
};

struct image {
	char *path;
	struct source *src;
	struct source_image *si;
	uint32_t n;
	struct blob **blobs;
	struct layer **layers;
	struct blob_digests *digests;
	char **layer_names; /* "layer 02 sha256:..." for messages */
	struct tree *merged;
	struct lazy_view *layer_views;
	struct lazy_view *stack_views;
	struct lazy_view deleted; /* its lock also guards deleted_tsv */
	struct buf deleted_tsv;
	struct buf history;
	struct cache *cache;      /* NULL when caching is off */
	struct blob_spill *spill; /* NULL when blobs do not spill */
	char *spill_dir;
	uint32_t cache_hits;
	uint8_t *from_cache; /* per layer: its index came from the cache */
	int merged_from_cache;
	struct buf status; /* image/status */
	char **warnings;
	uint32_t nwarnings;
};

struct index_job {
	struct image *img;
	const struct image_opts *opts;
	uint32_t *order; /* layers, largest first */
	uint32_t next;
	pthread_mutex_t lock;
	struct err err;
	int failed;
};

void image_opts_default(struct image_opts *o)
{
	*o = (struct image_opts){0};
	blob_limits_default(&o->blob);
	layer_limits_default(&o->layer);
	o->spill_max = BLOB_SPILL_MAX_DEFAULT;
}

static int add_warning(struct image *img, const char *msg)
{
	char **w = realloc(img->warnings, (img->nwarnings + 1) * sizeof(*w));

	if (!w)
		return -ENOMEM;
	img->warnings = w;
	w[img->nwarnings] = strdup(msg);
	if (!w[img->nwarnings])
		return -ENOMEM;
	img->nwarnings++;
	return 0;
}

/*
 * The spill pool of the image, when it can have one: in the cache directory,
 * which is this user's and kept private (0700), or else in the temporary
 * directory, where nothing of it has a name anyway. No pool: reads
 * decompress, as before spills existed.
 */
static void open_spill(struct image *img, const struct image_opts *opts)
{
	const char *tmp = getenv("TMPDIR");
	struct err e = {0};
	char *dir = NULL;

	if (opts->no_spill)
		return;
	if (opts->spill_dir)
		dir = strdup(opts->spill_dir);
	else if (img->cache) {
		if (asprintf(&dir, "%s/spill", cache_dir(img->cache)) < 0)
			dir = NULL;
		else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			free(dir);
			dir = NULL;
		}
	} else
		dir = strdup(tmp && *tmp ? tmp : "/var/tmp");
	if (!dir || blob_spill_open(dir, opts->spill_max, &img->spill, &e) < 0) {
		/* asked for by name: say why it is not used (the rest is silent, as before) */
		if (opts->spill_dir) {
			char msg[ERR_MSG_MAX + 64];

			snprintf(msg, sizeof(msg), "spill directory %s not used: %s",
			         opts->spill_dir, e.msg[0] ? e.msg : "out of memory");
			add_warning(img, msg);
		}
		free(dir);
		return;
	}
	img->spill_dir = dir;
}

static void hex(const unsigned char *d, char *out)
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* Compares what the pass computed with what the manifest and config promise. */
static int verify(struct image *img, uint32_t i, int no_verify, struct err *err)
{
	const struct source_layer *sl = &img->si->layers[i];
	const struct blob_digests *d = &img->digests[i];
	char got[80] = "sha256:", msg[ERR_MSG_MAX];
	const char *want = NULL, *what = NULL;

	hex(d->stored, got + 7);
	if (sl->digest && !strncmp(sl->digest, "sha256:", 7) && strcmp(sl->digest, got)) {
		want = sl->digest;
		what = "blob digest";
	} else {
		hex(d->decompressed, got + 7);
		if (sl->diff_id && !strncmp(sl->diff_id, "sha256:", 7) &&
		    strcmp(sl->diff_id, got)) {
			want = sl->diff_id;
			what = "diff_id";
		}
	}
	if (!want)
		return 0;
	snprintf(msg, sizeof(msg), "%s: %s mismatch: the image says %s, the content is %s",
	         img->layer_names[i], what, want, got);
	if (no_verify)
		return add_warning(img, msg);
	return err_set(err, -EBADMSG, "%s (use --no-verify to read it anyway)", msg);
}

/* The image's hooks, told which layer a layer's indexer is on. */
struct layer_hook {
	const struct image_opts *opts;
	uint32_t layer;
};

static void layer_progress(void *opaque, uint64_t done, uint64_t total)
{
	struct layer_hook *h = opaque;

	h->opts->progress(h->opts->progress_opaque, h->layer, done, total);
}

static int layer_file(void *opaque, uint32_t entry, const char *path, const void *data,
                      uint64_t size)
{
	struct layer_hook *h = opaque;

	return h->opts->file(h->opts->file_opaque, h->layer, entry, path, data, size);
}

static void *index_worker(void *arg)
{
	struct index_job *job = arg;
	struct image *img = job->img;

	for (;;) {
		struct layer_limits lim = job->opts->layer;
		struct layer_hook hook = {job->opts, 0};
		struct err err = {0};
		uint32_t i;
		int r;

		pthread_mutex_lock(&job->lock);
		i = job->failed || job->next >= img->n ? img->n : job->order[job->next++];
		pthread_mutex_unlock(&job->lock);
		if (i >= img->n)
			return NULL;
		if (img->cache &&
		    cache_load_layer(img->cache, image_layer_digest(img, i), img->blobs[i],
		                     &img->layers[i], &img->digests[i], NULL) == 0) {
			pthread_mutex_lock(&job->lock);
			img->cache_hits++;
			img->from_cache[i] = 1;
			pthread_mutex_unlock(&job->lock);
			continue;
		}
		hook.layer = i;
		if (job->opts->progress) {
			lim.progress = layer_progress;
			lim.progress_opaque = &hook;
		}
		if (job->opts->file) {
			lim.file = layer_file;
			lim.file_opaque = &hook;
			lim.file_max = job->opts->file_max;
		}
		r = layer_index(img->blobs[i], img->layer_names[i], &lim, &img->layers[i],
		                &img->digests[i], &err);

		/*
		 * A cache that cannot be written only costs the next mount time. One
		 * that can is read back at once: the mapped index replaces the built
		 * one, whose heap memory goes back, so a first mount holds no more
		 * than a remount does.
		 */
		if (r == 0 && img->cache &&
		    cache_store_layer(img->cache, image_layer_digest(img, i), img->layers[i],
		                      img->blobs[i], &img->digests[i], NULL) == 0) {
			struct layer *mapped;

			if (cache_load_layer(img->cache, image_layer_digest(img, i), img->blobs[i],
			                     &mapped, NULL, NULL) == 0) {
				layer_free(img->layers[i]);
				img->layers[i] = mapped;
			}
		}
		if (r < 0) {
			pthread_mutex_lock(&job->lock);
			if (!job->failed) {
				job->failed = 1;
				job->err = err;
			}
			pthread_mutex_unlock(&job->lock);
		}
	}
}

/*
 * The order layers are indexed in: largest first, so that the largest is not
 * left to run alone at the end while the other threads have nothing to do.
 */
static int by_size_desc(const void *a, const void *b, void *opaque)
{
	const struct image *img = opaque;
	uint64_t x = blob_stored_size(img->blobs[*(const uint32_t *)a]);
	uint64_t y = blob_stored_size(img->blobs[*(const uint32_t *)b]);

	if (x != y)
		return x < y ? 1 : -1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static int index_layers(struct image *img, const struct image_opts *opts, struct err *err)
{
	struct index_job job = {.img = img, .opts = opts};
	unsigned nthreads = opts->threads;
	pthread_t *tids;
	unsigned started = 0;

	if (!nthreads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = n > 0 ? (unsigned)n : 1;
	}
	if (nthreads > img->n)
		nthreads = img->n;
	tids = calloc(nthreads + 1, sizeof(*tids));
	job.order = malloc(((size_t)img->n + 1) * sizeof(*job.order));
	if (!tids || !job.order) {
		free(tids);
		free(job.order);
		return err_set(err, -ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < img->n; i++)
		job.order[i] = i;
	qsort_r(job.order, img->n, sizeof(*job.order), by_size_desc, img);
	pthread_mutex_init(&job.lock, NULL);
	/* the calling thread works too, so one thread means no thread at all */
	for (unsigned t = 1; t < nthreads; t++)
		if (pthread_create(&tids[started], NULL, index_worker, &job) == 0)
			started++;
	index_worker(&job);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	free(tids);
	free(job.order);
	pthread_mutex_destroy(&job.lock);
	if (job.failed) {
		if (err)
			*err = job.err;
		return job.err.code ? job.err.code : -EIO;
	}
	return 0;
}

/* image/status: what is mounted, for people and scripts ("key: value" lines). */
static int make_status(struct image *img)
{
	const struct source_image *si = img->si;
	struct buf *b = &img->status;
	int r = buf_printf(
	    b,
	    "image: %s\nkind: %s\nname: %s\nplatform: %s\nmanifest: %s\nconfig: %s\n"
	    "layers: %u\ncache: %s (%u of %u layer indexes from it%s)\nspill: %s\nwarnings: %u\n",
	    img->path, source_kind(img->src), si->name, si->platform ? si->platform : "-",
	    si->manifest_digest ? si->manifest_digest : "-",
	    si->config_digest ? si->config_digest : "-", img->n,
	    img->cache ? cache_dir(img->cache) : "off", img->cache_hits, img->n,
	    img->merged_from_cache ? ", and the merged tree" : "",
	    img->spill_dir ? img->spill_dir : "off", img->nwarnings);

	for (uint32_t i = 0; r == 0 && i < img->n; i++)
		r = buf_printf(b, "layer %02u: %s %s %llu bytes stored, %llu bytes, %u entries%s\n",
		               i, image_layer_digest(img, i),
		               blob_compression_name(blob_compression(img->blobs[i])),
		               (unsigned long long)si->layers[i].size,
		               (unsigned long long)img->digests[i].decompressed_size,
		               layer_count(img->layers[i]),
		               img->from_cache[i] ? ", index from cache" : "");
	return r;
}

const char *image_status(const struct image *img, size_t *ret_len)
{
	*ret_len = img->status.len;
	return img->status.data ? img->status.data : "";
}

static int make_history(struct image *img)

{
	for (uint32_t i = 0; i < img->n; i++) {
		const struct source_layer *l = &img->si->layers[i];
		const char *cb = l->created_by ? l->created_by : "";
		int r = buf_printf(&img->history, "%02u\t%s\t%llu\t", i, image_layer_digest(img, i),
		                   (unsigned long long)l->size);

		/* one line per layer: a newline inside the command would break that */
		for (const char *p = cb; r == 0 && *p; p++)
			r = buf_append(&img->history, *p == '\n' ? " " : p, 1);
		if (r < 0 || (r = buf_append(&img->history, "\n", 1)) < 0)
			return r;
	}
	return 0;
}

/*
 * merged/: mapped from the cache when it holds the tree of these layers;
 * otherwise built, stored and, like a layer index, read back mapped.
 */
static int merged_view(struct image *img, struct err *err)
{
	const char **digests = NULL;
	struct tree *mapped;
	int r;

	if (img->cache) {
		digests = calloc(img->n + 1, sizeof(*digests));
		if (!digests)
			return err_set(err, -ENOMEM, "out of memory");
		for (uint32_t i = 0; i < img->n; i++) {
			char *p = cache_path(img->cache, image_layer_digest(img, i));

			/* a layer without a usable digest names no content: nothing to key on */
			if (!p) {
				free(digests);
				digests = NULL;
				break;
			}
			free(p);
			digests[i] = image_layer_digest(img, i);
		}
	}
	if (digests &&
	    cache_load_tree(img->cache, digests, img->layers, img->n, &img->merged, NULL) == 0) {
		img->merged_from_cache = 1;
		free(digests);
		return 0;
	}
	r = tree_build_merged(img->layers, img->n, &img->merged, err);
	if (r == 0 && digests &&
	    cache_store_tree(img->cache, digests, img->n, img->merged, NULL) == 0 &&
	    cache_load_tree(img->cache, digests, img->layers, img->n, &mapped, NULL) == 0) {
		tree_free(img->merged);
		img->merged = mapped;
	}
	free(digests);
	return r;
}

int image_open(const char *path, const struct image_opts *opts, struct image **ret_image,
               struct err *err)
{
	struct image_opts def;
	struct image *img = calloc(1, sizeof(*img));
	int r;

	if (!opts) {
		image_opts_default(&def);
		opts = &def;
	}
	if (!img)
		return err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&img->deleted.lock, NULL);
	img->path = strdup(path);
	if (!img->path) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!opts->no_cache && cache_open(opts->cache_dir, &img->cache, NULL) < 0)
		img->cache = NULL; /* no cache directory: index every time */
	if ((r = source_open(path, &img->src, err)) < 0 ||
	    (r = source_select(img->src, &opts->select, &img->si, err)) < 0)
		goto out;
	img->n = img->si->nlayers;
	img->blobs = calloc(img->n + 1, sizeof(*img->blobs));
	img->layers = calloc(img->n + 1, sizeof(*img->layers));
	img->digests = calloc(img->n + 1, sizeof(*img->digests));
	img->layer_names = calloc(img->n + 1, sizeof(*img->layer_names));
	img->layer_views = calloc(img->n + 1, sizeof(*img->layer_views));
	img->stack_views = calloc(img->n + 1, sizeof(*img->stack_views));
	img->from_cache = calloc(img->n + 1, 1);
	open_spill(img, opts);
	if (!img->blobs || !img->layers || !img->digests || !img->layer_names ||
	    !img->layer_views || !img->stack_views || !img->from_cache) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < img->n; i++) {
		const struct source_layer *l = &img->si->layers[i];

		pthread_mutex_init(&img->layer_views[i].lock, NULL);
		pthread_mutex_init(&img->stack_views[i].lock, NULL);
		if (asprintf(&img->layer_names[i], "%s: layer %02u %s", path, i,
		             image_layer_digest(img, i)) < 0) {
			img->layer_names[i] = NULL;
			r = err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		if ((r = blob_open(l->fd, l->offset, l->size, &opts->blob, &img->blobs[i], err)) <
		    0) {
			err_prefix(err, r, "%s: ", img->layer_names[i]);
			goto out;
		}
		if (img->spill && (r = blob_set_spill(img->blobs[i], img->spill, err)) < 0)
			goto out;
	}
	if ((r = index_layers(img, opts, err)) < 0)
		goto out;
	for (uint32_t i = 0; i < img->n; i++) {
		if ((r = verify(img, i, opts->no_verify, err)) < 0)
			goto out;
		for (uint32_t w = 0; w < layer_warning_count(img->layers[i]); w++)
			if ((r = add_warning(img, layer_warning(img->layers[i], w))) < 0)
				goto out;
	}
	if ((r = merged_view(img, err)) < 0)
		goto out;
	for (uint32_t w = 0; w < tree_warning_count(img->merged); w++)
		if ((r = add_warning(img, tree_warning(img->merged, w))) < 0)
			goto out;
	if ((r = make_history(img)) < 0 || (r = make_status(img)) < 0) {
		err_set(err, r, "out of memory");
		goto out;
	}
	/* what building freed is only given back to the system on request */
	malloc_trim(0);
	*ret_image = img;
	img = NULL;
out:
	image_free(img);
	return r;
}

void image_free(struct image *img)
{
	if (!img)
		return;
	tree_free(img->deleted.tree);
	pthread_mutex_destroy(&img->deleted.lock);
	buf_release(&img->deleted_tsv);
	tree_free(img->merged);
	for (uint32_t i = 0; i < img->n; i++) {
		if (img->layer_views) {
			tree_free(img->layer_views[i].tree);
			pthread_mutex_destroy(&img->layer_views[i].lock);
		}
		if (img->stack_views) {
			tree_free(img->stack_views[i].tree);
			pthread_mutex_destroy(&img->stack_views[i].lock);
		}
		if (img->layers)
			layer_free(img->layers[i]);
		if (img->blobs)
			blob_free(img->blobs[i]);
		if (img->layer_names)
			free(img->layer_names[i]);
	}
	free(img->layer_views);
	free(img->stack_views);
	free(img->layers);
	free(img->blobs);
	free(img->digests);
	free(img->layer_names);
	for (uint32_t i = 0; i < img->nwarnings; i++)
		free(img->warnings[i]);
	free(img->warnings);
	buf_release(&img->history);
	buf_release(&img->status);
	free(img->from_cache);
	blob_spill_free(img->spill); /* after the blobs that spill into it */
	free(img->spill_dir);
	source_image_free(img->si);
	source_free(img->src);
	cache_free(img->cache); /* after the layers: they may live in its mappings */
	free(img->path);
	free(img);
}

uint32_t image_cache_hits(const struct image *img)
{
	return img->cache_hits;
}

const char *image_cache_dir(const struct image *img)
{
	return img->cache ? cache_dir(img->cache) : NULL;
}

const char *image_gzip_engine(void)
{
	return blob_gzip_engine();
}

const char *image_spill_dir(const struct image *img)
{
	return img->spill_dir;
}

const char *image_path(const struct image *img)

{
	return img->path;
}

const char *image_kind(const struct image *img)
{
	return source_kind(img->src);
}

const struct source_image *image_source(const struct image *img)
{
	return img->si;
}

uint32_t image_layer_count(const struct image *img)
{
	return img->n;
}

struct layer *image_layer(const struct image *img, uint32_t i)
{
	return img->layers[i];
}

const struct blob_digests *image_layer_digests(const struct image *img, uint32_t i)
{
	return &img->digests[i];
}

const char *image_layer_digest(const struct image *img, uint32_t i)
{
	const struct source_layer *l = &img->si->layers[i];

	if (l->digest)
		return l->digest;
	return l->diff_id ? l->diff_id : "(no digest)";
}

struct tree *image_merged(const struct image *img)
{
	return img->merged;
}

static int lazy(struct image *img, struct lazy_view *v, uint32_t i, int stack,
                struct tree **ret_tree, struct err *err)
{
	int r = 0;

	if (i >= img->n)
		return err_set(err, -ENOENT, "%s: no layer %u (the image has %u)", img->path, i,
		               img->n);
	pthread_mutex_lock(&v->lock);
	if (!v->tree)
		r = stack ? tree_build_merged(img->layers, i + 1, &v->tree, err)
		          : tree_build_layer(img->layers, i, &v->tree, err);
	if (r == 0)
		*ret_tree = v->tree;
	pthread_mutex_unlock(&v->lock);
	return r;
}

int image_layer_view(struct image *img, uint32_t i, struct tree **ret_tree, struct err *err)
{
	return lazy(img, &img->layer_views[i < img->n ? i : 0], i, 0, ret_tree, err);
}

int image_stack_view(struct image *img, uint32_t i, struct tree **ret_tree, struct err *err)
{
	if (i + 1 == img->n && i < img->n) {
		*ret_tree = img->merged;
		return 0;
	}
	return lazy(img, &img->stack_views[i < img->n ? i : 0], i, 1, ret_tree, err);
}

const char *image_how_name(uint32_t how)
{
	static const char *const names[] = {
	    [TREE_WHITEOUT] = "whiteout", [TREE_OPAQUE] = "opaque", [TREE_SHADOWED] = "shadowed"};

	return how < 3 ? names[how] : "?";
}

/* Appends the path of node (below the root of t, no leading slash) to b. */
static int append_path(struct buf *b, const struct tree *t, uint32_t node)
{
	const char *name;
	size_t len;
	int r;

	if (node == 0)
		return 0;
	if (tree_parent(t, node) != 0) {
		if ((r = append_path(b, t, tree_parent(t, node))) < 0 ||
		    (r = buf_append(b, "/", 1)) < 0)
			return r;
	}
	name = tree_name(t, node, &len);
	return buf_append(b, name, len);
}

static int make_deleted_tsv(struct image *img, const struct tree *t)
{
	struct buf *b = &img->deleted_tsv;
	int r = buf_append_str(b, "path\tlayer\tremoved_by\thow\tsize\n");

	for (uint32_t i = 0; r == 0 && i < tree_node_count(t); i++) {
		const struct tree_hidden *h = tree_shown_hidden(t, i);
		struct tree_attr a;

		if (!h)
			continue;
		tree_stat(t, i, &a);
		if ((r = append_path(b, t, i)) == 0)
			r = buf_printf(b, "\t%02u\t%02u\t%s\t%llu\n", h->layer, h->removed_by,
			               image_how_name(h->how), (unsigned long long)a.size);
	}
	return r;
}

int image_deleted_view(struct image *img, struct tree **ret_tree, struct err *err)
{
	int r = 0;

	pthread_mutex_lock(&img->deleted.lock);
	if (!img->deleted.tree) {
		r = tree_build_deleted(img->merged, &img->deleted.tree, err);
		if (r == 0 && (r = make_deleted_tsv(img, img->deleted.tree)) < 0)
			err_set(err, r, "out of memory");
	}
	if (r == 0)
		*ret_tree = img->deleted.tree;
	pthread_mutex_unlock(&img->deleted.lock);
	return r;
}

int image_deleted_tsv(struct image *img, const char **ret_text, size_t *ret_len, struct err *err)
{
	struct tree *t;
	int r = image_deleted_view(img, &t, err);

	if (r < 0)
		return r;
	*ret_text = img->deleted_tsv.data;
	*ret_len = img->deleted_tsv.len;
	return 0;
}

const char *image_history(const struct image *img, size_t *ret_len)
{
	*ret_len = img->history.len;
	return img->history.data ? img->history.data : "";
}

uint32_t image_warning_count(const struct image *img)
{
	return img->nwarnings;
}

const char *image_warning(const struct image *img, uint32_t i)
{
	return img->warnings[i];
}
