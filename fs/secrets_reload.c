/*
 * secrets_reload: findings that reach a layer's results from elsewhere than
 * a scan of its files here: results saved in the cache directory by an
 * earlier scan, and what the indexing pass found (secrets_stream.c). Both
 * are re-added with what this image decides: visibility, view path, layer
 * digest and history, and for the indexing pass, the package that installed
 * a file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "secrets_int.h"

struct reload {
	struct secrets *s;
	struct scan_results *into;
};

/* Re-adds a saved finding with the visibility it has in this image. */
static int reload_one(const struct scan_finding *f, void *opaque)
{
	struct reload *rl = opaque;
	struct scan_finding copy = *f;
	char *outer = NULL, *view = NULL;
	int r;

	if (f->layer >= 0 && (uint32_t)f->layer < rl->s->n && f->path) {
		const char *bang = strstr(f->path, "!/");

		outer = bang ? strndup(f->path, (size_t)(bang - f->path)) : strdup(f->path);
		if (!outer)
			return -ENOMEM;
		copy.visibility = secrets_visibility(rl->s, (uint32_t)f->layer, outer);
		if (!strcmp(copy.visibility, "live")
		        ? asprintf(&view, "merged/%s", outer) < 0
		        : asprintf(&view, "layers/%02d/%s", f->layer, outer) < 0)
			view = NULL;
		copy.view_path = view;
		copy.layer_digest = image_layer_digest(rl->s->img, (uint32_t)f->layer);
		copy.created_by = image_source(rl->s->img)->layers[f->layer].created_by;
	}
	r = scan_results_add(&copy, rl->into);
	free(outer);
	free(view);
	return r;
}

/* The package that installed entry ei of layer li unchanged, or NULL (reads the file). */
static const char *vendor_of(struct secrets *s, uint32_t li, uint32_t ei)
{
	const struct layer *l = image_layer(s->img, li);
	const struct layer_entry *e = layer_entry(l, ei);
	const char *pkg = NULL;
	char *data;
	ssize_t got;

	if (!scan_vendor_lists(s->vendor, layer_str(l, e->path)) ||
	    e->size > s->limits.max_file_size || !(data = malloc(e->size + 1)))
		return NULL;
	got = layer_read(l, e, data, e->size, 0, NULL);
	if (got >= 0)
		pkg = scan_vendor_match(s->vendor, layer_str(l, e->path), data, (size_t)got);
	free(data);
	return pkg;
}

/*
 * Takes over what the indexing pass found in layer li (secrets_stream.c):
 * its files count as scanned, each finding gets what depends on the whole
 * image (visibility, view path; a package that installed the file makes it
 * an example, with the note the scanner itself would add), and hardlinks to
 * those files have the files' bytes scanned under their paths, as scan_one
 * does. Runs in secrets_new, before anything else can see the layer.
 */
int secrets_adopt_layer(struct secrets *s, uint32_t li, const struct stream_layer *st)
{
	const struct layer *l = image_layer(s->img, li);
	const uint32_t n = layer_count(l);
	struct slayer *sl = &s->layers[li];
	struct reload rl = {s, sl->results};
	struct scan_scanner *sc = NULL;
	const char *pkg = NULL;
	int r = 0;

	for (size_t k = 0; r == 0 && k < st->n; k++) {
		const struct stream_rec *rec = &st->recs[k];
		struct scan_finding copy = *rec->f;
		char *why = NULL;

		if (rec->entry >= n)
			return -EINVAL;
		if (k == 0 || rec->entry != st->recs[k - 1].entry)
			pkg = vendor_of(s, li, rec->entry);
		if (pkg) {
			if (asprintf(&why, "%s%svendor: package %s", copy.why ? copy.why : "",
			             copy.why && *copy.why ? "; " : "", pkg) < 0)
				return -ENOMEM;
			copy.why = why;
			copy.confidence = SCAN_CONF_EXAMPLE;
		}
		r = reload_one(&copy, &rl);
		free(why);
	}
	for (uint32_t e = 0; r == 0 && e < n && e < st->nseen; e++) {
		if (!st->seen[e] || layer_entry(l, e)->type != LAYER_REG)
			continue;
		sl->done[e] = 1;
		s->files++;
		sl->p.entries_done++;
		sl->p.bytes_done += layer_entry(l, e)->size;
		if (sl->alias_first[e] == NONE)
			continue;
		if (!sc && !(sc = secrets_take_scanner(s)))
			return -ENOMEM;
		r = secrets_scan_file(s, sc, li, e, 1);
	}
	if (sc)
		secrets_give_scanner(s, sc);
	scan_results_add_stats(sl->results, &st->stats);
	return r;
}

/*
 * The saved results of layer li: keyed by the layer, the rules and the
 * package databases of the image (a package's files give examples), which
 * ensure_vendor has read.
 */
static char *results_file(const struct secrets *s, uint32_t li)
{
	char ext[64];

	if (!s->cache_dir)
		return NULL;
	snprintf(ext, sizeof(ext), ".%.16s-%016llx.scan", scan_rules_hash(s->rules),
	         (unsigned long long)scan_vendor_fingerprint(s->vendor));
	return cache_file_name(s->cache_dir, image_layer_digest(s->img, li), ext);
}

/* Takes a layer's results from the cache: 0, or -ENOENT when there are none. */
int secrets_load_saved(struct secrets *s, uint32_t li)
{
	struct slayer *sl = &s->layers[li];
	char *path = results_file(s, li);
	struct scan_results *fresh = NULL;
	struct reload rl = {s, NULL};
	FILE *f = path ? fopen(path, "re") : NULL;
	int r = -ENOENT;

	if (!f)
		goto out;
	if ((r = scan_results_new(&fresh)) < 0)
		goto out;
	rl.into = fresh;
	if ((r = scan_results_load(f, reload_one, &rl, NULL)) < 0) {
		unlink(path); /* stale or corrupt: scan again */
		goto out;
	}
	pthread_mutex_lock(&sl->lock);
	while (sl->in_flight)
		pthread_cond_wait(&sl->idle, &sl->lock);
	scan_results_add_stats(fresh, scan_results_stats(sl->results));
	scan_results_free(sl->results);
	sl->results = fresh;
	fresh = NULL;
	memset(sl->done, 1, layer_count(image_layer(s->img, li)));
	sl->p.entries_done = sl->p.entries_total;
	sl->p.bytes_done = sl->p.bytes_total;
	sl->p.from_cache = 1;
	sl->p.complete = 1;
	pthread_mutex_unlock(&sl->lock);
out:
	if (f)
		fclose(f);
	scan_results_free(fresh);
	free(path);
	return r;
}

/* Writes a layer's results to the cache: whole, then renamed into place. */
void secrets_save_results(struct secrets *s, uint32_t li)
{
	char *path = results_file(s, li), *tmp = NULL;
	FILE *f = NULL;
	int fd;

	if (!path || asprintf(&tmp, "%s/.tmp-XXXXXX", s->cache_dir) < 0) {
		free(path);
		return;
	}
	fd = mkstemp(tmp); /* 0600: the file holds secrets in clear */
	if (fd >= 0 && (f = fdopen(fd, "w"))) {
		int ok = scan_results_save(f, s->layers[li].results, NULL) == 0;

		ok = fclose(f) == 0 && ok;
		if (!ok || rename(tmp, path) < 0)
			unlink(tmp);
	} else if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	free(path);
}
