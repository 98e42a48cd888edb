/*
 * source_select: choosing one image among a source's candidates (by tag,
 * digest, platform) and describing it: manifest, config, the byte range of
 * each layer blob, the history mapped onto layers (see source.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "source_int.h"

static int tag_matches(const char *names, const char *tag)
{
	size_t tlen = strlen(tag);

	for (const char *p = names; *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		/* "repo:tag" matches both its whole self and its tag part */
		if ((n == tlen && !memcmp(p, tag, n)) ||
		    (n > tlen && p[n - tlen - 1] == ':' && !memcmp(p + n - tlen, tag, tlen)))
			return 1;
		p += n + (end ? 1 : 0);
	}
	return 0;
}

static int digest_matches(const struct candidate *c, const char *digest)
{
	const char *want = strncmp(digest, "sha256:", 7) == 0 ? digest + 7 : digest;
	const char *have = strchr(c->digest, ':') ? strchr(c->digest, ':') + 1 : c->digest;

	if (strlen(want) < 4)
		return 0;
	return strncmp(have, want, strlen(want)) == 0 || strstr(c->parents, want) != NULL;
}

static int platform_matches(const struct candidate *c, const char *platform)
{
	size_t n = strlen(platform);

	if (!c->platform)
		return 0;
	return strncmp(c->platform, platform, n) == 0 &&
	       (c->platform[n] == '\0' || c->platform[n] == '/');
}

/*
 * The candidates for a message, one group per name: "b1 [linux/amd64
 * linux/arm64], v1, (untagged) sha256:0123abcd". `strata images` has the
 * full list; this has to fit on a line.
 */
static int describe(const struct source *s, const int *pick, struct buf *out)
{
	int r = 0;

	for (uint32_t i = 0; i < s->ncands && r == 0; i++) {
		const struct candidate *c = &s->cands[i];
		uint32_t j;

		if (pick && !pick[i])
			continue;
		/* names seen before were described with their first candidate */
		for (j = 0; j < i; j++)
			if ((!pick || pick[j]) && c->name[0] && !strcmp(s->cands[j].name, c->name))
				break;
		if (j < i)
			continue;
		r = buf_printf(out, "%s%s", out->len ? ", " : "",
		               c->name[0] ? c->name : "(untagged)");
		if (r == 0 && !c->name[0])
			r = buf_printf(out, " %.19s", c->digest);
		/* the platforms this name offers */
		struct buf plats = BUF_INIT;

		for (j = i; r == 0 && j < s->ncands && c->name[0]; j++) {
			const struct candidate *d = &s->cands[j];

			/* what tells the images of one name apart: platform, else digest */
			if ((!pick || pick[j]) && !strcmp(d->name, c->name) &&
			    (d->platform || j != i))
				r = buf_printf(&plats, "%s%.*s", plats.len ? " " : "",
				               d->platform ? (int)strlen(d->platform) : 19,
				               d->platform ? d->platform : d->digest);

			if (r == 0 && j == i && !d->platform && plats.len == 0)
				r = buf_printf(&plats, "%.19s", d->digest);
		}
		if (r == 0 && plats.len)
			r = buf_printf(out, " [%s]", plats.data);
		buf_release(&plats);
	}
	return r;
}

int source_list(struct source *s, char **ret_text, struct err *err)
{
	struct buf b = BUF_INIT;

	for (uint32_t i = 0; i < s->ncands; i++) {
		const struct candidate *c = &s->cands[i];

		if (buf_printf(&b, "%s\t%s\t%s\n", c->name[0] ? c->name : "(untagged)", c->digest,
		               c->platform ? c->platform : "-") < 0) {
			buf_release(&b);
			return err_set(err, -ENOMEM, "out of memory");
		}
	}
	*ret_text = buf_detach(&b, NULL);
	return 0;
}

static char *xstrdup(const char *p)
{
	return p ? strdup(p) : NULL;
}

/* Fills the per-layer history and diff_ids from the config. */
static void apply_config(struct source_image *img)
{
	json_t *cfg = json_loadb(img->config, img->config_len, 0, NULL);
	json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	json_t *history = json_object_get(cfg, "history"), *h;
	uint32_t layer = 0;
	size_t i;

	for (uint32_t k = 0; k < img->nlayers; k++)
		img->layers[k].diff_id = xstrdup(json_string_value(json_array_get(diff_ids, k)));
	img->nhistory = (uint32_t)json_array_size(history);
	/* empty_layer entries (ENV, LABEL, ...) have no layer: they must not shift the mapping */
	json_array_foreach(history, i, h)
	{
		if (json_is_true(json_object_get(h, "empty_layer")))
			continue;
		if (layer >= img->nlayers)
			break;
		img->layers[layer++].created_by = xstrdup(source_jstr(h, "created_by"));
	}
	json_decref(cfg);
}

static int set_layer(struct source *s, struct source_image *img, uint32_t i, const char *file,
                     const char *digest, const char *mt, struct err *err)
{
	struct source_layer *l = &img->layers[i];
	int r;

	l->digest = xstrdup(digest);
	l->media_type = xstrdup(mt);
	if (mt && strstr(mt, "+encrypted"))
		return err_set(err, -ENOTSUP,
		               "%s: layer %u (%s) is encrypted (%s); strata cannot "
		               "decrypt layers",
		               s->path, i, digest ? digest : file, mt);
	r = source_locate(s, file, &l->fd, &l->offset, &l->size, err);
	if (r == -ENOENT)
		return err_set(err, r, "%s: layer %u blob %s is missing from the image%s", s->path,
		               i, digest ? digest : file,
		               mt && strstr(mt, "foreign") ? " (a foreign layer, kept elsewhere)"
		                                           : "");
	return r;
}

static int docker_image(struct source *s, const struct candidate *c, struct source_image *img,
                        struct err *err)
{
	json_t *e = json_array_get(s->docker_manifest, (size_t)c->docker_index);
	json_t *layers = json_object_get(e, "Layers"), *lj;
	json_t *cfg = NULL;
	size_t i;
	int r;

	/* as stored: the archive's manifest.json, every image of it */
	if ((r = source_read_whole(s, "manifest.json", &img->manifest, &img->manifest_len, err)) <
	    0)
		return r;
	img->config_digest = xstrdup(c->digest);

	if ((r = source_load_json(s, source_jstr(e, "Config"), &cfg, &img->config, &img->config_len,
	                          err)) < 0)
		return r;
	json_decref(cfg);
	if (json_array_size(layers) > SOURCE_MAX_LAYERS)
		return err_set(err, -E2BIG, "%s: %zu layers, over the limit of %u", s->path,
		               json_array_size(layers), SOURCE_MAX_LAYERS);
	img->layers = calloc(json_array_size(layers) + 1, sizeof(*img->layers));
	if (!img->layers)
		return err_set(err, -ENOMEM, "out of memory");
	json_array_foreach(layers, i, lj)
	{
		const char *file = json_string_value(lj);
		char digest[80], *d = NULL;

		if (!file)
			return err_set(err, -EINVAL, "%s: manifest.json layer %zu is not a string",
			               s->path, i);
		img->nlayers = (uint32_t)i + 1;
		/* Docker 25+ names layers by blob path, which gives their digest */
		if (!strncmp(file, "blobs/sha256/", 13) && strlen(file) == 13 + 64) {
			snprintf(digest, sizeof(digest), "sha256:%s", file + 13);
			d = digest;
		}
		if ((r = set_layer(s, img, (uint32_t)i, file, d, NULL, err)) < 0)
			return r;
	}
	return 0;
}

static int oci_image(struct source *s, const struct candidate *c, struct source_image *img,
                     struct err *err)
{
	json_t *m = NULL, *cfgd, *layers, *lj, *cfg = NULL;
	const char *cmt;
	char path[256];
	size_t i;
	int r;

	img->manifest_digest = xstrdup(c->digest);
	if ((r = source_load_blob_json(s, c->digest, &m, &img->manifest, &img->manifest_len, err)) <
	    0)
		goto out;
	cfgd = json_object_get(m, "config");
	layers = json_object_get(m, "layers");
	cmt = source_jstr(cfgd, "mediaType");
	if (!cfgd || !json_is_array(layers)) {
		r = err_set(err, -EINVAL, "%s: %s is not an image manifest (no config or layers)",
		            s->path, c->digest);
		goto out;
	}
	if (cmt && strcmp(cmt, MT_OCI_CONFIG) && strcmp(cmt, MT_DOCKER_CONFIG)) {
		r = err_set(err, -EINVAL,
		            "%s: %s is not a container image but an artifact "
		            "(config media type %s)",
		            s->path, c->digest, cmt);
		goto out;
	}
	img->config_digest = xstrdup(source_jstr(cfgd, "digest"));
	if (source_blob_path(img->config_digest, path, sizeof(path)) < 0) {
		r = err_set(err, -EINVAL, "%s: manifest %s has a malformed config digest", s->path,
		            c->digest);
		goto out;
	}
	if ((r = source_load_json(s, path, &cfg, &img->config, &img->config_len, err)) < 0)
		goto out;
	if (json_array_size(layers) > SOURCE_MAX_LAYERS) {
		r = err_set(err, -E2BIG, "%s: %zu layers, over the limit of %u", s->path,
		            json_array_size(layers), SOURCE_MAX_LAYERS);
		goto out;
	}
	img->layers = calloc(json_array_size(layers) + 1, sizeof(*img->layers));
	if (!img->layers) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(layers, i, lj)
	{
		const char *d = source_jstr(lj, "digest");

		img->nlayers = (uint32_t)i + 1;
		if (source_blob_path(d, path, sizeof(path)) < 0) {
			r = err_set(err, -EINVAL, "%s: layer %zu has a malformed digest", s->path,
			            i);
			goto out;
		}
		if ((r = set_layer(s, img, (uint32_t)i, path, d, source_jstr(lj, "mediaType"),
		                   err)) < 0)
			goto out;
	}
out:
	json_decref(m);
	json_decref(cfg);
	return r;
}

int source_select(struct source *s, const struct source_select *sel,
                  struct source_image **ret_image, struct err *err)
{
	struct source_select none = {0};
	struct source_image *img = NULL;
	int *pick = calloc(s->ncands + 1, sizeof(*pick));
	struct buf list = BUF_INIT;
	uint32_t n = 0, chosen = 0;
	int r;

	if (!sel)
		sel = &none;
	if (!pick)
		return err_set(err, -ENOMEM, "out of memory");
	for (uint32_t i = 0; i < s->ncands; i++) {
		const struct candidate *c = &s->cands[i];

		pick[i] = (!sel->tag || tag_matches(c->name, sel->tag)) &&
		          (!sel->digest || digest_matches(c, sel->digest)) &&
		          (!sel->platform || platform_matches(c, sel->platform));
		if (pick[i]) {
			/* one image reached through several names or indexes is still one image */
			if (n && !strcmp(s->cands[chosen].digest, c->digest) &&
			    !strcmp(s->cands[chosen].platform ? s->cands[chosen].platform : "",
			            c->platform ? c->platform : ""))
				continue;
			n++;
			chosen = i;
		}
	}
	if (n == 1 && s->cands[chosen].broken) {
		r = err_set(err, s->cands[chosen].broken,
		            "%s: %s is an index that refers to itself "
		            "or nests deeper than %d levels",
		            s->path, s->cands[chosen].digest, SOURCE_MAX_DEPTH);
		goto out;
	}
	if (n != 1) {

		describe(s, n ? pick : NULL, &list);
		if (n == 0)
			r = err_set(err, -ENOENT,
			            "%s: no image matches %s%s%s%s%s; the image holds: %s", s->path,
			            sel->tag ? "tag " : "", sel->tag ? sel->tag : "",
			            sel->digest ? " digest " : "", sel->digest ? sel->digest : "",
			            sel->platform ? " and the platform" : "",
			            list.len ? list.data : "nothing");
		else
			r = err_set(err, -EINVAL,
			            "%s: holds %u images; pick one with IMAGE:TAG, "
			            "IMAGE@DIGEST or --platform OS/ARCH: %s",
			            s->path, n, list.data);
		goto out;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	const struct candidate *c = &s->cands[chosen];
	img->name = strdup(c->name[0] ? c->name : c->digest);
	img->platform = xstrdup(c->platform);
	r = c->docker_index >= 0 ? docker_image(s, c, img, err) : oci_image(s, c, img, err);
	if (r < 0)
		goto out;
	apply_config(img);
	*ret_image = img;
	img = NULL;
out:
	buf_release(&list);
	free(pick);
	source_image_free(img);
	return r;
}

void source_image_free(struct source_image *img)
{
	if (!img)
		return;
	for (uint32_t i = 0; i < img->nlayers; i++) {
		free(img->layers[i].digest);
		free(img->layers[i].diff_id);
		free(img->layers[i].media_type);
		free(img->layers[i].created_by);
	}
	free(img->layers);
	free(img->name);
	free(img->manifest_digest);
	free(img->config_digest);
	free(img->platform);
	free(img->manifest);
	free(img->config);
	free(img);
}

int source_parse_ref(const char *arg, char **ret_path, struct source_select *sel, struct err *err)
{
	struct stat st;
	char *path = strdup(arg), *at, *colon;

	if (!path)
		return err_set(err, -ENOMEM, "out of memory");
	if (stat(path, &st) == 0) {
		*ret_path = path;
		return 0;
	}
	at = strrchr(path, '@');
	if (at && stat((*at = '\0', path), &st) == 0) {
		sel->digest = arg + (at - path) + 1;
		*ret_path = path;
		return 0;
	}
	if (at)
		*at = '@';
	/* the tag may itself hold ':' (repo:tag), so try every split from the left */
	for (colon = strchr(path, ':'); colon; colon = strchr(colon + 1, ':')) {
		*colon = '\0';
		if (stat(path, &st) == 0) {
			sel->tag = arg + (colon - path) + 1;
			*ret_path = path;
			return 0;
		}
		*colon = ':';
	}
	free(path);
	return err_set(err, -ENOENT, "%s: no such file or directory", arg);
}
