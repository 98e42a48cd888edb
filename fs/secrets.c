/*
 * secrets: scanning an image's files and config (see secrets.h).
 *
 * Work is tracked per layer entry, so a file read through the mount and
 * scanned then is skipped by the full pass. A full pass walks a layer's
 * entries in tar order, which is the order of their bytes in the stream, so
 * the blob's reads run forward through its span cache: one sequential pass.
 * Hardlinks have no bytes of their own: their target's bytes are scanned
 * again under the link's path, so that a secret is reported at every path
 * that shows it. Findings that come from the cache or from the indexing
 * pass are re-added by secrets_reload.c; the pass itself is
 * secrets_stream.c.
 */
#include "secrets_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t hash_key(uint32_t layer, const char *path)
{
	uint64_t h = 1469598103934665603ull ^ layer;

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ull;
	return h ^ (h >> 31);
}

static int build_hidden(struct secrets *s)
{
	const struct tree *m = image_merged(s->img);
	uint32_t n = tree_hidden_count(m), size = 16;

	while (size < 2 * n + 2)
		size <<= 1;
	s->hidden = calloc(size, sizeof(*s->hidden));
	if (!s->hidden)
		return -ENOMEM;
	s->hmask = size - 1;
	for (uint32_t i = 0; i < n; i++) {
		const struct tree_hidden *h = tree_hidden(m, i);
		const struct layer *l = image_layer(s->img, h->layer);
		const char *path = layer_str(l, layer_entry(l, h->entry)->path);
		uint32_t k = (uint32_t)hash_key(h->layer, path) & s->hmask;

		while (s->hidden[k].path &&
		       (s->hidden[k].layer != h->layer || strcmp(s->hidden[k].path, path)))
			k = (k + 1) & s->hmask;
		s->hidden[k] = (struct hidden_key){h->layer, path, h->how};
	}
	return 0;
}

/* "live", "deleted" or "shadowed" for a path of a layer, in this image. */
const char *secrets_visibility(const struct secrets *s, uint32_t layer, const char *path)
{
	uint32_t k = (uint32_t)hash_key(layer, path) & s->hmask;

	for (; s->hidden[k].path; k = (k + 1) & s->hmask)
		if (s->hidden[k].layer == layer && !strcmp(s->hidden[k].path, path))
			return s->hidden[k].how == TREE_SHADOWED ? "shadowed" : "deleted";
	return "live";
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void note_start(struct secrets *s)
{
	pthread_mutex_lock(&s->lock);
	if (!s->has_started) {
		clock_gettime(CLOCK_MONOTONIC, &s->started);
		s->has_started = 1;
	}
	pthread_mutex_unlock(&s->lock);
}

struct scan_scanner *secrets_take_scanner(struct secrets *s)
{
	return scanner_pool_take(&s->pool, s->rules, &s->sopts);
}

void secrets_give_scanner(struct secrets *s, struct scan_scanner *sc)
{
	scanner_pool_give(&s->pool, sc);
}

/* Finds the hardlinks of each layer, so that their targets' bytes are scanned under their names
 * too. */
static int build_aliases(struct secrets *s, uint32_t li)
{
	const struct layer *l = image_layer(s->img, li);
	struct slayer *sl = &s->layers[li];
	uint32_t n = layer_count(l), size = 16, *slots;

	sl->alias_next = malloc(((size_t)n + 1) * sizeof(uint32_t));
	sl->alias_first = malloc(((size_t)n + 1) * sizeof(uint32_t));
	while (size < 2 * n + 2)
		size <<= 1;
	slots = calloc(size, sizeof(*slots)); /* path -> last regular entry + 1 */
	if (!sl->alias_next || !sl->alias_first || !slots) {
		free(slots);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct layer_entry *e = layer_entry(l, i);
		const char *path = layer_str(l, e->path);
		uint32_t k;

		sl->alias_next[i] = sl->alias_first[i] = NONE;
		if (e->type == LAYER_REG) {
			k = (uint32_t)hash_key(0, path) & (size - 1);
			while (slots[k] &&
			       strcmp(layer_str(l, layer_entry(l, slots[k] - 1)->path), path))
				k = (k + 1) & (size - 1);
			slots[k] = i + 1;
			sl->p.entries_total++;
			sl->p.bytes_total += e->size;
		} else if (e->type == LAYER_HARDLINK) {
			const char *target = layer_str(l, e->link);

			k = (uint32_t)hash_key(0, target) & (size - 1);
			while (slots[k] &&
			       strcmp(layer_str(l, layer_entry(l, slots[k] - 1)->path), target))
				k = (k + 1) & (size - 1);
			if (slots[k]) {
				sl->alias_next[i] = sl->alias_first[slots[k] - 1];
				sl->alias_first[slots[k] - 1] = i;
			}
		}
	}
	free(slots);
	return 0;
}

static int scan_bytes(struct secrets *s, struct scan_scanner *sc, uint32_t li, uint32_t ei,
                      const void *data, size_t len, struct scan_results *into)
{
	const struct layer *l = image_layer(s->img, li);
	const char *path = layer_str(l, layer_entry(l, ei)->path);
	const char *vis = secrets_visibility(s, li, path);
	char *view = NULL;
	int r;

	if (!strcmp(vis, "live") ? asprintf(&view, "merged/%s", path) < 0
	                         : asprintf(&view, "layers/%02u/%s", li, path) < 0)
		return -ENOMEM;
	struct scan_target t = {.path = path,
	                        .visibility = vis,
	                        .layer = (int)li,
	                        .layer_digest = image_layer_digest(s->img, li),
	                        .created_by = image_source(s->img)->layers[li].created_by,
	                        .view_path = view};
	r = scan_buffer(sc, &t, data, len, scan_results_add, into);
	free(view);
	return r;
}

/*
 * Scans the bytes of entry ei of layer li under its own path (unless
 * aliases_only) and under its hardlinks' paths, adding the findings and the
 * counts to the layer's results. Runs without the layer lock.
 */
int secrets_scan_file(struct secrets *s, struct scan_scanner *sc, uint32_t li, uint32_t ei,
                      int aliases_only)
{
	const struct layer *l = image_layer(s->img, li);
	const struct layer_entry *e = layer_entry(l, ei);
	struct slayer *sl = &s->layers[li];
	struct scan_stats before, after, delta = {0};
	char *data = NULL;
	ssize_t got = 0;
	int r = 0;

	scan_scanner_stats(sc, &before);
	if (e->size <= s->limits.max_file_size) {
		data = malloc(e->size ? e->size : 1);
		if (!data)
			return -ENOMEM;
		got = layer_read(l, e, data, e->size, 0, NULL);
		if (got < 0) {
			free(data);
			return (int)got;
		}
		if (!aliases_only)
			r = scan_bytes(s, sc, li, ei, data, (size_t)got, sl->results);
		for (uint32_t a = sl->alias_first[ei]; r == 0 && a != NONE; a = sl->alias_next[a])
			r = scan_bytes(s, sc, li, a, data, (size_t)got, sl->results);
	}
	scan_scanner_stats(sc, &after);
	scan_stats_diff(&after, &before, &delta);
	if (e->size > s->limits.max_file_size && !aliases_only)
		delta.skipped_too_large++; /* counted, never read */
	scan_results_add_stats(sl->results, &delta);
	free(data);
	return r;
}

/* Scans entry ei of layer li (claimed by the caller) and its hardlinks. */
static int scan_one(struct secrets *s, struct scan_scanner *sc, uint32_t li, uint32_t ei)
{
	const struct layer_entry *e = layer_entry(image_layer(s->img, li), ei);
	struct slayer *sl = &s->layers[li];
	int r = secrets_scan_file(s, sc, li, ei, 0);

	pthread_mutex_lock(&sl->lock);
	sl->p.entries_done++;
	sl->p.bytes_done += e->size;
	pthread_mutex_unlock(&sl->lock);
	pthread_mutex_lock(&s->lock);
	s->files++;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Claims entry ei for scanning: 1 if the caller should scan it. Needs sl->lock. */
static int claim(struct slayer *sl, const struct layer_entry *e, uint32_t ei)
{
	if (sl->done[ei] || e->type != LAYER_REG)
		return 0;
	sl->done[ei] = 1;
	sl->in_flight++;
	return 1;
}

static void unclaim(struct slayer *sl)
{
	pthread_mutex_lock(&sl->lock);
	if (--sl->in_flight == 0)
		pthread_cond_broadcast(&sl->idle);
	pthread_mutex_unlock(&sl->lock);
}

static int ensure_vendor(struct secrets *s);

int secrets_scan_entry(struct secrets *s, uint32_t li, uint32_t ei)
{
	struct slayer *sl;
	struct scan_scanner *sc = NULL;
	int mine, r;

	if (li >= s->n || ei >= layer_count(image_layer(s->img, li)))
		return -EINVAL;
	sl = &s->layers[li];
	pthread_mutex_lock(&sl->lock);
	mine = claim(sl, layer_entry(image_layer(s->img, li), ei), ei);
	pthread_mutex_unlock(&sl->lock);
	if (!mine)
		return 0;
	note_start(s);
	/* first, so that no scanner is made without the package databases */
	r = ensure_vendor(s);
	if (r == 0 && !(sc = secrets_take_scanner(s)))
		r = -ENOMEM;
	if (r == 0) {
		r = scan_one(s, sc, li, ei);
		secrets_give_scanner(s, sc);
	}
	unclaim(sl);
	return r;
}

/* Reads the image's package databases, so that files packages installed are known as vendor
 * content. */
static int ensure_vendor(struct secrets *s)
{
	const struct tree *m = image_merged(s->img);
	static const char *const dirs[] = {"var/lib/dpkg/info", "lib/apk/db"};
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->vendor)
		goto out;
	if ((r = scan_vendor_new(&s->vendor)) < 0)
		goto out;
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		uint32_t dir = tree_resolve(m, dirs[d]), first, count;

		if (dir == TREE_NONE)
			continue;
		tree_children(m, dir, &first, &count);
		for (uint32_t i = first; i < first + count; i++) {
			struct tree_attr a;
			size_t len;
			const char *name = tree_name(m, i, &len);
			char path[512];
			char *data;
			ssize_t got;

			tree_stat(m, i, &a);
			if (!S_ISREG(a.mode) || a.size > (64u << 20) ||
			    snprintf(path, sizeof(path), "%s/%.*s", dirs[d], (int)len, name) >=
			        (int)sizeof(path))
				continue;
			if (!(len > 8 && !memcmp(name + len - 8, ".md5sums", 8)) &&
			    strcmp(path, "lib/apk/db/installed"))
				continue;
			data = malloc(a.size + 1);
			if (!data) {
				r = -ENOMEM;
				goto out;
			}
			got = tree_read(m, i, data, a.size, 0, NULL);
			if (got > 0)
				scan_vendor_add_db_file(s->vendor, path, data, (size_t)got, NULL);
			free(data);
		}
	}
	s->sopts.vendor = s->vendor;
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int full_layer(struct secrets *s, struct scan_scanner *sc, uint32_t li)
{
	struct slayer *sl = &s->layers[li];
	uint32_t n = layer_count(image_layer(s->img, li));
	int r = 0, mine;

	if (secrets_load_saved(s, li) == 0)
		return 0;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		pthread_mutex_lock(&sl->lock);
		mine = claim(sl, layer_entry(image_layer(s->img, li), i), i);
		pthread_mutex_unlock(&sl->lock);
		if (!mine)
			continue;
		r = scan_one(s, sc, li, i);
		unclaim(sl);
	}
	pthread_mutex_lock(&sl->lock);
	while (sl->in_flight)
		pthread_cond_wait(&sl->idle, &sl->lock);
	sl->p.complete = r == 0;
	pthread_mutex_unlock(&sl->lock);
	if (r == 0)
		secrets_save_results(s, li);
	return r;
}

struct full_job {
	struct secrets *s;
	pthread_mutex_t lock;
	uint32_t next;
	int err;
};

static void *full_worker(void *arg)
{
	struct full_job *job = arg;
	struct scan_scanner *sc = secrets_take_scanner(job->s);

	for (;;) {
		uint32_t i;
		int r;

		pthread_mutex_lock(&job->lock);
		i = job->next++;
		pthread_mutex_unlock(&job->lock);
		if (i >= job->s->n)
			break;
		r = sc ? full_layer(job->s, sc, i) : -ENOMEM;
		if (r < 0) {
			pthread_mutex_lock(&job->lock);
			job->err = r;
			pthread_mutex_unlock(&job->lock);
		}
	}
	if (sc)
		secrets_give_scanner(job->s, sc);
	return NULL;
}

static int scan_config_once(struct secrets *s)
{
	const struct source_image *si = image_source(s->img);
	struct scan_scanner *sc = secrets_take_scanner(s);
	struct scan_results *res = NULL;
	struct scan_target t = {.path = "config", .visibility = "config", .layer = -1};
	int r;

	if (!sc)
		return -ENOMEM;
	if ((r = scan_results_new(&res)) == 0)
		r = scan_config(sc, &t, si->config, si->config_len, scan_results_add, res, NULL);
	secrets_give_scanner(s, sc);
	pthread_mutex_lock(&s->lock);
	if (r == 0 && !s->config) {
		s->config = res;
		res = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	scan_results_free(res);
	/* a config that is not JSON has nothing to scan: the image opened anyway */
	return r == -EINVAL ? 0 : r;
}

int secrets_scan_all(struct secrets *s, struct err *err)
{
	struct full_job job = {.s = s};
	pthread_t *tids;
	unsigned nthreads = s->threads, started = 0;
	int r;

	pthread_mutex_lock(&s->lock);
	while (s->full_running && !s->full_done)
		pthread_cond_wait(&s->done_cond, &s->lock);
	if (s->full_done) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	s->full_running = 1;
	pthread_mutex_unlock(&s->lock);

	note_start(s);
	if ((r = ensure_vendor(s)) < 0 || (r = scan_config_once(s)) < 0)
		goto out;
	if (nthreads > s->n)
		nthreads = s->n;
	pthread_mutex_init(&job.lock, NULL);
	tids = calloc(nthreads + 1, sizeof(*tids));
	for (unsigned t = 1; tids && t < nthreads; t++)
		if (pthread_create(&tids[started], NULL, full_worker, &job) == 0)
			started++;
	full_worker(&job);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	free(tids);
	pthread_mutex_destroy(&job.lock);
	r = job.err;
out:
	pthread_mutex_lock(&s->lock);
	s->full_running = 0;
	s->full_done = r == 0;
	clock_gettime(CLOCK_MONOTONIC, &s->ended);
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		err_set(err, r, "%s: scanning failed: %s", image_path(s->img), strerror(-r));
	return r;
}

int secrets_complete(struct secrets *s)
{
	int done;

	pthread_mutex_lock(&s->lock);
	done = s->full_done;
	pthread_mutex_unlock(&s->lock);
	return done;
}

void secrets_progress(struct secrets *s, uint32_t li, struct secrets_layer_progress *ret)
{
	struct slayer *sl = &s->layers[li];

	pthread_mutex_lock(&sl->lock);
	*ret = sl->p;
	pthread_mutex_unlock(&sl->lock);
}

double secrets_elapsed(struct secrets *s)
{
	struct timespec now;
	double t = 0;

	pthread_mutex_lock(&s->lock);
	if (s->has_started) {
		if (s->full_done)
			now = s->ended;
		else
			clock_gettime(CLOCK_MONOTONIC, &now);
		t = seconds_between(&s->started, &now);
	}
	pthread_mutex_unlock(&s->lock);
	return t;
}

uint64_t secrets_files_scanned(struct secrets *s)
{
	uint64_t n;

	pthread_mutex_lock(&s->lock);
	n = s->files;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int copy_results(struct scan_results *into, const struct scan_results *from)
{
	const struct scan_finding *f;
	int r = 0;

	for (size_t i = 0; r == 0 && i < scan_results_count(from); i++)
		r = scan_results_add(scan_results_get(from, i), into);
	for (size_t i = 0; r == 0 && (f = scan_results_context(from, i)); i++)
		r = scan_results_add(f, into);
	scan_results_add_stats(into, scan_results_stats(from));
	return r;
}

int secrets_results(struct secrets *s, struct scan_results **ret, struct err *err)
{
	struct scan_results *all = NULL;
	int r;

	if ((r = scan_results_new(&all)) < 0)
		goto out;
	pthread_mutex_lock(&s->lock);
	r = s->config ? copy_results(all, s->config) : 0;
	pthread_mutex_unlock(&s->lock);
	for (uint32_t i = 0; r == 0 && i < s->n; i++) {
		pthread_mutex_lock(&s->layers[i].lock);
		r = copy_results(all, s->layers[i].results);
		pthread_mutex_unlock(&s->layers[i].lock);
	}
	if (r == 0)
		r = scan_results_finish(all);
out:
	if (r < 0) {
		scan_results_free(all);
		return err_set(err, r, "collecting findings: %s", strerror(-r));
	}
	*ret = all;
	return 0;
}

const struct scan_rules *secrets_rules(const struct secrets *s)
{
	return s->rules;
}

int secrets_rules_load(const struct secrets_opts *opts, struct scan_rules **ret, struct err *err)
{
	struct scan_rules *rules = NULL, *extra = NULL;
	struct scan_err se = {0};
	int r;

	if ((r = scan_rules_new_builtin(&rules, &se)) < 0)
		return err_set(err, r, "built-in rules: %s", se.msg);
	if (opts && opts->rules_file) {
		r = scan_rules_new_file(&extra, opts->rules_file, &se);
		if (r == 0)
			r = scan_rules_merge(rules, extra, &se);
		scan_rules_free(extra);
		if (r < 0) {
			scan_rules_free(rules);
			return err_set(err, r, "%s: %s", opts->rules_file, se.msg);
		}
	}
	*ret = rules;
	return 0;
}

int secrets_new(struct image *img, const struct secrets_opts *opts, struct secrets **ret,
                struct err *err)
{
	struct secrets_opts def = {0};
	struct secrets *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;

	if (!opts)
		opts = &def;
	if (!s)
		return err_set(err, -ENOMEM, "out of memory");
	s->img = img;
	s->n = image_layer_count(img);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	scanner_pool_init(&s->pool);
	scan_limits_default(&s->limits);
	if (opts->max_file_size)
		s->limits.max_file_size = opts->max_file_size;
	s->sopts.limits = &s->limits;
	s->threads = opts->threads;
	if (!s->threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		s->threads = n > 0 ? (unsigned)n : 1;
	}
	if (opts->stream) {
		s->stream = opts->stream;
		s->rules = opts->stream->rules;
	} else if ((r = secrets_rules_load(opts, &s->rules, err)) < 0) {
		goto fail;
	}
	if (!opts->no_cache) {
		const char *dir = opts->cache_dir ? opts->cache_dir : image_cache_dir(img);

		if (dir && !(s->cache_dir = strdup(dir)))
			goto nomem;
	}
	if ((r = build_hidden(s)) < 0)
		goto nomem;
	s->layers = calloc(s->n + 1, sizeof(*s->layers));
	if (!s->layers)
		goto nomem;
	for (uint32_t i = 0; i < s->n; i++) {
		struct slayer *sl = &s->layers[i];

		pthread_mutex_init(&sl->lock, NULL);
		pthread_cond_init(&sl->idle, NULL);
		sl->done = calloc(layer_count(image_layer(img, i)) + 1, 1);
		if (!sl->done || scan_results_new(&sl->results) < 0 || build_aliases(s, i) < 0)
			goto nomem;
	}
	if (s->stream) {
		if ((r = ensure_vendor(s)) < 0) {
			err_set(err, r, "reading the package databases: %s", strerror(-r));
			goto fail;
		}
		for (uint32_t i = 0; i < s->n && i < s->stream->nlayers; i++) {
			if ((r = secrets_adopt_layer(s, i, &s->stream->layers[i])) < 0) {
				err_set(err, r, "%s: taking over the scan of the indexing pass: %s",
				        image_layer_digest(img, i), strerror(-r));
				goto fail;
			}
		}
	}
	*ret = s;
	return 0;
nomem:
	r = err_set(err, -ENOMEM, "out of memory");
fail:
	secrets_free(s);
	return r;
}

void secrets_free(struct secrets *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; s->layers && i < s->n; i++) {
		struct slayer *sl = &s->layers[i];

		scan_results_free(sl->results);
		free(sl->done);
		free(sl->alias_next);
		free(sl->alias_first);
		pthread_mutex_destroy(&sl->lock);
		pthread_cond_destroy(&sl->idle);
	}
	free(s->layers);
	scanner_pool_release(&s->pool);
	scan_results_free(s->config);
	scan_vendor_free(s->vendor);
	if (!s->stream)
		scan_rules_free(s->rules);
	free(s->hidden);
	free(s->cache_dir);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->done_cond);
	free(s);
}

uint32_t secrets_layer_count(const struct secrets *s)
{
	return s->n;
}
