/*
 * cli: what every strata subcommand shares: the options that pick and open
 * an image, and how errors are printed and turned into exit codes.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *prog = "strata";

void die_err(const struct err *e)
{
	fprintf(stderr, "%s: %s\n", prog, e->msg[0] ? e->msg : strerror(-e->code));
	exit(EXIT_USAGE);
}

void usage_error(const char *usage, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s", usage);
	exit(EXIT_USAGE);
}

const struct option common_options[] = {
    {"platform", required_argument, NULL, OPT_PLATFORM},
    {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
    {"layer", required_argument, NULL, OPT_LAYER},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"max-layer-size", required_argument, NULL, OPT_MAX_LAYER_SIZE},
    {"max-ratio", required_argument, NULL, OPT_MAX_RATIO},
    {"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
    {"help", no_argument, NULL, 'h'},
    {"quiet", no_argument, NULL, 'q'},
    {0, 0, 0, 0},
};

struct option *cli_options(const struct option *extra)
{
	size_t n = 0, m = 0;
	struct option *all;

	while (common_options[n].name)
		n++;
	while (extra && extra[m].name)
		m++;
	all = calloc(n + m + 1, sizeof(*all));
	if (!all) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_USAGE);
	}
	memcpy(all, extra, m * sizeof(*all));
	memcpy(all + m, common_options, n * sizeof(*all));
	return all;
}

static uint64_t number(const char *s, const char *what, const char *usage)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (!*s || *end || v == 0)
		usage_error(usage, what, s);
	return v;
}

/* Handles one option common to all commands; returns 0 if it was not one. */
int common_option(struct common *c, int opt, const char *usage)
{
	char *end;

	switch (opt) {
	case OPT_PLATFORM:
		c->platform = optarg;
		return 1;
	case OPT_NO_VERIFY:
		c->no_verify = 1;
		return 1;
	case OPT_NO_CACHE:
		c->no_cache = 1;
		return 1;
	case OPT_CACHE_DIR:
		c->cache_dir = optarg;
		return 1;
	case OPT_MAX_LAYER_SIZE:
		c->max_layer_size =
		    number(optarg, "--max-layer-size wants a byte count, not '%s'", usage);
		return 1;
	case OPT_MAX_RATIO:
		c->max_ratio = number(optarg, "--max-ratio wants a number, not '%s'", usage);
		return 1;
	case OPT_MAX_ENTRIES:
		c->max_entries = number(optarg, "--max-entries wants a number, not '%s'", usage);
		return 1;
	case OPT_LAYER:
		c->layer = strtol(optarg, &end, 10);
		if (*end || c->layer < 0)
			usage_error(usage, "--layer wants a layer number, not '%s'", optarg);
		return 1;
	case 'q':
		c->quiet = 1;
		return 1;
	case 'h':
		fputs(usage, stdout);
		exit(0);
	case '?':
		fputs(usage, stderr);
		exit(EXIT_USAGE);
	}
	return 0;
}

struct image *open_image(const char *arg, struct common *c)
{
	struct err e = {0};
	struct image *img;
	char *path;

	image_opts_default(&c->image);
	if (source_parse_ref(arg, &path, &c->image.select, &e) < 0)
		die_err(&e);
	c->image.select.platform = c->platform;
	c->image.no_verify = c->no_verify;
	c->image.no_cache = c->no_cache;
	c->image.cache_dir = c->cache_dir;
	if (c->max_layer_size)
		c->image.blob.max_output = c->max_layer_size;
	if (c->max_ratio)
		c->image.blob.max_expansion = c->max_ratio;
	if (c->max_entries)
		c->image.layer.max_entries =
		    c->max_entries > UINT32_MAX ? UINT32_MAX : (uint32_t)c->max_entries;

	if (image_open(path, &c->image, &img, &e) < 0)
		die_err(&e);
	free(path);
	if (!c->quiet) {
		uint32_t n = image_warning_count(img);

		for (uint32_t i = 0; i < n && i < 20; i++)
			fprintf(stderr, "%s: warning: %s\n", prog, image_warning(img, i));
		if (n > 20)
			fprintf(stderr, "%s: %u more warnings\n", prog, n - 20);
	}
	return img;
}

/* The tree --layer N names, or the merged one. */
struct tree *pick_tree(struct image *img, const struct common *c)
{
	struct err e = {0};
	struct tree *t;

	if (c->layer < 0)
		return image_merged(img);
	if (c->layer >= (long)image_layer_count(img)) {
		fprintf(stderr, "%s: no layer %ld: the image has %u (00..%02u)\n", prog, c->layer,
		        image_layer_count(img), image_layer_count(img) - 1);
		exit(EXIT_USAGE);
	}
	if (image_layer_view(img, (uint32_t)c->layer, &t, &e) < 0)
		die_err(&e);
	return t;
}
