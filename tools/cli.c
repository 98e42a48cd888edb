/*
 * cli: what every strata subcommand shares: the options that pick and open
 * an image, and how errors are printed and turned into exit codes.
 */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
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
    {"no-spill", no_argument, NULL, OPT_NO_SPILL},
    {"spill-dir", required_argument, NULL, OPT_SPILL_DIR},
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
	case OPT_NO_SPILL:
		c->no_spill = 1;
		return 1;
	case OPT_SPILL_DIR:
		c->spill_dir = optarg;
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

/*
 * Cold-mount progress on a terminal: percent of each layer being indexed,
 * the total, the rate and the time left, redrawn at most ten times a second.
 */
static struct {
	pthread_mutex_t lock;
	uint64_t done[SOURCE_MAX_LAYERS], total[SOURCE_MAX_LAYERS];
	struct timespec start, last;
	int drawn;
} progress = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void show_progress(void *opaque, uint32_t layer, uint64_t done, uint64_t total)
{
	uint64_t all_done = 0, all_total = 0;
	char line[256];
	size_t len = 0;
	double t, rate;

	(void)opaque;
	if (layer >= SOURCE_MAX_LAYERS)
		return;
	pthread_mutex_lock(&progress.lock);
	progress.done[layer] = done;
	progress.total[layer] = total;
	if (!progress.drawn) {
		clock_gettime(CLOCK_MONOTONIC, &progress.start);
		progress.last = progress.start;
	}
	if (progress.drawn && since(&progress.last) < 0.1 && done != total) {
		pthread_mutex_unlock(&progress.lock);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &progress.last);
	progress.drawn = 1;
	len += (size_t)snprintf(line + len, sizeof(line) - len, "indexing:");
	for (uint32_t i = 0; i < SOURCE_MAX_LAYERS && len < 160; i++) {
		if (!progress.total[i])
			continue;
		all_done += progress.done[i];
		all_total += progress.total[i];
		if (progress.done[i] < progress.total[i])
			len += (size_t)snprintf(
			    line + len, sizeof(line) - len, " layer %02u %3.0f%%", i,
			    100.0 * (double)progress.done[i] / (double)progress.total[i]);
	}
	t = since(&progress.start);
	rate = t > 0 ? (double)all_done / t : 0;
	snprintf(line + len, sizeof(line) - len, " | %.0f of %.0f MB, %.0f MB/s, %.0f s left",
	         (double)all_done / 1e6, (double)all_total / 1e6, rate / 1e6,
	         rate > 0 ? (double)(all_total - all_done) / rate : 0.0);
	fprintf(stderr, "\r\033[K%s", line);
	pthread_mutex_unlock(&progress.lock);
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
	c->image.no_spill = c->no_spill;
	c->image.spill_dir = c->spill_dir;
	if (c->max_layer_size)
		c->image.blob.max_output = c->max_layer_size;
	if (c->max_ratio)
		c->image.blob.max_expansion = c->max_ratio;
	if (c->max_entries)
		c->image.layer.max_entries =
		    c->max_entries > UINT32_MAX ? UINT32_MAX : (uint32_t)c->max_entries;

	if (c->stream)
		secrets_stream_hook(c->stream, &c->image);
	if (!c->quiet && isatty(STDERR_FILENO)) {
		c->image.progress = show_progress;
		c->image.progress_opaque = NULL;
	}
	int r = image_open(path, &c->image, &img, &e);
	if (progress.drawn)
		fputs("\r\033[K", stderr); /* the progress line goes; messages stay */
	if (r < 0)
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
