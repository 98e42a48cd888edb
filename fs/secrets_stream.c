/*
 * secrets_stream: the secret scan of each regular file while image_open's
 * indexing pass goes by its bytes (see secrets.h), so that a whole-image scan
 * of an image whose index is not cached decompresses each layer once instead
 * of twice. It runs on the indexing threads, several layers at once.
 *
 * What a finding says about the whole image (visible or hidden, the view
 * path, whether a package installed the file) is not known yet while the
 * layers are being indexed: findings are kept per entry without it, and
 * secrets_new adds it when it takes them over.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "secrets_int.h"

void scanner_pool_init(struct scanner_pool *p)
{
	*p = (struct scanner_pool){0};
	pthread_mutex_init(&p->lock, NULL);
}

void scanner_pool_release(struct scanner_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		scan_scanner_free(p->v[i]);
	free(p->v);
	pthread_mutex_destroy(&p->lock);
}

struct scan_scanner *scanner_pool_take(struct scanner_pool *p, const struct scan_rules *rules,
                                       const struct scan_options *opts)
{
	struct scan_scanner *sc = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->n)
		sc = p->v[--p->n];
	pthread_mutex_unlock(&p->lock);
	if (!sc && scan_scanner_new(&sc, rules, opts, NULL) < 0)
		return NULL;
	return sc;
}

void scanner_pool_give(struct scanner_pool *p, struct scan_scanner *sc)
{
	struct scan_scanner **v;

	pthread_mutex_lock(&p->lock);
	v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (v) {
		p->v = v;
		v[p->n++] = sc;
		sc = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	scan_scanner_free(sc); /* no room to keep it */
}

/* Findings of one file, held until the file is done so that the lock is taken once. */
struct held {
	struct stream_rec *v;
	size_t n, cap;
	uint32_t entry;
};

static int hold(const struct scan_finding *f, void *opaque)
{
	struct held *h = opaque;
	struct scan_finding *dup;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 8;
		struct stream_rec *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	if (!(dup = scan_finding_dup(f)))
		return -ENOMEM;
	h->v[h->n++] = (struct stream_rec){h->entry, dup};
	return 0;
}

/* Layer li's record, grown to know entry. Needs st->lock. */
static struct stream_layer *layer_for(struct secrets_stream *st, uint32_t li, uint32_t entry)
{
	struct stream_layer *sl;

	if (li >= st->nlayers) {
		struct stream_layer *v = realloc(st->layers, ((size_t)li + 1) * sizeof(*v));

		if (!v)
			return NULL;
		memset(v + st->nlayers, 0, (li + 1 - st->nlayers) * sizeof(*v));
		st->layers = v;
		st->nlayers = li + 1;
	}
	sl = &st->layers[li];
	if (entry >= sl->nseen) {
		size_t n = sl->nseen ? sl->nseen : 1024;
		uint8_t *seen;

		while (n <= entry)
			n *= 2;
		if (!(seen = realloc(sl->seen, n)))
			return NULL;
		memset(seen + sl->nseen, 0, n - sl->nseen);
		sl->seen = seen;
		sl->nseen = n;
	}
	return sl;
}

/* image_opts.file: scans one file of layer li. */
static int stream_file(void *opaque, uint32_t li, uint32_t entry, const char *path,
                       const void *data, uint64_t size)
{
	struct secrets_stream *st = opaque;
	struct scan_target t = {.path = path, .layer = (int)li};
	struct scan_stats before, after, delta = {0};
	struct held h = {.entry = entry};
	struct stream_layer *sl;
	struct scan_scanner *sc = NULL;
	int r = 0;

	if (data) {
		if (!(sc = scanner_pool_take(&st->pool, st->rules, &st->sopts)))
			return -ENOMEM;
		scan_scanner_stats(sc, &before);
		r = scan_buffer(sc, &t, data, (size_t)size, hold, &h);
		scan_scanner_stats(sc, &after);
		scan_stats_diff(&after, &before, &delta);
		scanner_pool_give(&st->pool, sc);
	} else {
		delta.skipped_too_large = 1; /* counted, as the full pass counts it */
	}
	pthread_mutex_lock(&st->lock);
	sl = r == 0 ? layer_for(st, li, entry) : NULL;
	if (r == 0 && !sl)
		r = -ENOMEM;
	if (r == 0 && sl->n + h.n > sl->cap) {
		size_t cap = sl->cap ? sl->cap : 64;
		struct stream_rec *v;

		while (cap < sl->n + h.n)
			cap *= 2;
		if ((v = realloc(sl->recs, cap * sizeof(*v)))) {
			sl->recs = v;
			sl->cap = cap;
		} else {
			r = -ENOMEM;
		}
	}
	if (r == 0) {
		if (h.n)
			memcpy(sl->recs + sl->n, h.v, h.n * sizeof(*h.v));
		sl->n += h.n;
		h.n = 0;
		sl->seen[entry] = 1;
		scan_stats_add(&sl->stats, &delta);
	}
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < h.n; i++)
		scan_finding_free(h.v[i].f);
	free(h.v);
	return r;
}

int secrets_stream_new(const struct secrets_opts *opts, struct secrets_stream **ret,
                       struct err *err)
{
	struct secrets_stream *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return err_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	scanner_pool_init(&st->pool);
	scan_limits_default(&st->limits);
	if (opts && opts->max_file_size)
		st->limits.max_file_size = opts->max_file_size;
	st->sopts.limits = &st->limits;
	if ((r = secrets_rules_load(opts, &st->rules, err)) < 0) {
		secrets_stream_free(st);
		return r;
	}
	*ret = st;
	return 0;
}

void secrets_stream_hook(struct secrets_stream *st, struct image_opts *io)
{
	io->file = stream_file;
	io->file_opaque = st;
	io->file_max = st->limits.max_file_size;
}

void secrets_stream_free(struct secrets_stream *st)
{
	if (!st)
		return;
	for (uint32_t i = 0; i < st->nlayers; i++) {
		for (size_t k = 0; k < st->layers[i].n; k++)
			scan_finding_free(st->layers[i].recs[k].f);
		free(st->layers[i].recs);
		free(st->layers[i].seen);
	}
	free(st->layers);
	scanner_pool_release(&st->pool);
	scan_rules_free(st->rules);
	pthread_mutex_destroy(&st->lock);
	free(st);
}
