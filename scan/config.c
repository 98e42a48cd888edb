/*
 * config: secrets in the image config JSON. Build arguments and ENV lines
 * leak into config.Env (and docker's container_config) and into
 * history[].created_by, where no file scanner looks. Each string is scanned on its own, with a path
 * that says where it was ("config.Env[1]", "config.Labels.KEY", "history[7].created_by") and
 * visibility "config"; a history entry that made a layer carries that layer's
 * index (empty_layer entries carry -1).
 */
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct cfgscan {
	struct scan_scanner *s;
	struct scan_target t;
	scan_finding_cb cb;
	void *opaque;
};

static int one(struct cfgscan *c, const char *loc, const char *text, size_t len, int layer)
{
	struct scan_target t = c->t;

	t.path = loc;
	t.layer = layer;
	return scan_buffer(c->s, &t, text, len, c->cb, c->opaque);
}

static int strings(struct cfgscan *c, json_t *arr, const char *name)
{
	size_t i;
	json_t *v;
	char loc[128];
	int rc;

	if (json_is_string(arr))
		return one(c, name, json_string_value(arr), json_string_length(arr), -1);
	if (!json_is_array(arr))
		return 0;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v))
			continue;
		snprintf(loc, sizeof(loc), "%s[%zu]", name, i);
		if ((rc = one(c, loc, json_string_value(v), json_string_length(v), -1)))
			return rc;
	}
	return 0;
}

/* Env, Cmd, Entrypoint and Labels of one config section. */
static int scan_section(struct cfgscan *c, json_t *cfg, const char *sect)
{
	static const char *const lists[] = {"Env", "Cmd", "Entrypoint"};
	json_t *labels, *v;
	const char *key;
	char name[64];
	int rc = 0;

	for (int i = 0; i < 3 && !rc; i++) {
		snprintf(name, sizeof(name), "%s.%s", sect, lists[i]);
		rc = strings(c, json_object_get(cfg, lists[i]), name);
	}
	labels = json_object_get(cfg, "Labels");
	if (rc || !json_is_object(labels))
		return rc;
	json_object_foreach(labels, key, v)
	{
		char loc[300], *text = NULL;
		int n;

		if (!json_is_string(v))
			continue;
		snprintf(loc, sizeof(loc), "%s.Labels.%.200s", sect, key);
		/* key=value, so that assignment-style rules see the name */
		n = asprintf(&text, "%s=%s", key, json_string_value(v));
		if (n < 0)
			return -ENOMEM;
		rc = one(c, loc, text, (size_t)n, -1);
		free(text);
		if (rc)
			return rc;
	}
	return 0;
}

int scan_config(struct scan_scanner *s, const struct scan_target *where, const void *json,
                size_t len, scan_finding_cb cb, void *opaque, struct scan_err *e)
{
	struct cfgscan c = {.s = s, .cb = cb, .opaque = opaque};
	json_t *root, *cfg, *hist, *v;
	json_error_t jerr;
	size_t i;
	int layer = 0, rc = 0;

	if (len > SCAN_MAX_CONFIG)
		return scan_err_set(e, -EFBIG, "image config over %u bytes", SCAN_MAX_CONFIG);
	root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return scan_err_set(e, -EINVAL, "image config: %s (line %d)", jerr.text, jerr.line);
	}
	if (where)
		c.t = *where;
	c.t.visibility = "config";
	/* docker's legacy container_config (the build container's) leaks the same */
	for (int k = 0; k < 2 && !rc; k++) {
		const char *sect = k ? "container_config" : "config";

		cfg = json_object_get(root, sect);
		if (json_is_object(cfg))
			rc = scan_section(&c, cfg, sect);
	}
	hist = json_object_get(root, "history");
	if (!rc && json_is_array(hist)) {
		json_array_foreach(hist, i, v)
		{
			json_t *cb_ = json_object_get(v, "created_by");
			bool empty = json_is_true(json_object_get(v, "empty_layer"));
			char loc[64];

			if (json_is_string(cb_)) {
				snprintf(loc, sizeof(loc), "history[%zu].created_by", i);
				rc = one(&c, loc, json_string_value(cb_), json_string_length(cb_),
				         empty ? -1 : layer);
				if (rc)
					break;
			}
			if (!empty)
				layer++;
		}
	}
	json_decref(root);
	if (rc)
		scan_err_set(e, rc, "image config: scan failed");
	return rc;
}
