/*
 * strata inspect: one row per layer, without mounting: what each layer
 * stores, what it adds, changes and hides, and how much of what the image
 * ships is still visible (dive's "wasted space", per layer).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char usage_inspect[] =
    "usage: strata inspect [OPTIONS] IMAGE[:TAG|@DIGEST]\n"
    "\n"
    "Prints one row per layer: index, digest, stored (compressed) and uncompressed size,\n"
    "entries added / changed / hidden, bytes hidden (lower files this layer hid, still\n"
    "shipped but invisible), and the command that built it; then the totals and the\n"
    "image's efficiency (visible file bytes / file bytes shipped in all layers).\n"
    "  --json           the same as one JSON object\n"
    "  --platform P     pick OS/ARCH[/VARIANT]\n"
    "\n"
    "example:\n"
    "  strata inspect app.tar\n";

enum { OPT_JSON = 512 };

static const struct option inspect_options[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {0, 0, 0, 0},
};

struct totals {
	uint64_t stored, size, hidden_bytes, shipped, visible;
	uint64_t added, changed, hidden;
};

/* File bytes in the merged view, each inode once (hardlinks share one). */
static uint64_t visible_bytes(const struct tree *t)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < tree_node_count(t); i++) {
		struct tree_attr a;

		tree_stat(t, i, &a);
		if (S_ISREG(a.mode) && a.ino == i)
			sum += a.size;
	}
	return sum;
}

static uint64_t shipped_bytes(const struct layer *l)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < layer_count(l); i++)
		sum += layer_entry(l, i)->size;
	return sum;
}

static void human(uint64_t n, char *out, size_t len)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int terminal_width(void)
{
	struct winsize ws;

	if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return 0;
	return ws.ws_col;
}

static void print_text(struct image *img, const struct totals *t)
{
	const struct source_image *si = image_source(img);
	const struct tree *m = image_merged(img);
	int width = terminal_width();
	char a[32], b[32], c[32];

	printf("%-5s %-19s %10s %10s %7s %7s %7s %10s  %s\n", "LAYER", "DIGEST", "STORED", "SIZE",
	       "ADDED", "CHANGED", "HIDDEN", "HIDDEN-B", "CREATED BY");
	for (uint32_t i = 0; i < image_layer_count(img); i++) {
		struct tree_layer_stats s;
		const char *cb = si->layers[i].created_by ? si->layers[i].created_by : "";
		int used = 5 + 1 + 19 + 1 + 10 + 1 + 10 + 3 * 8 + 1 + 10 + 2;

		tree_layer_stats(m, i, &s);
		human(si->layers[i].size, a, sizeof(a));
		human(image_layer_digests(img, i)->decompressed_size, b, sizeof(b));
		human(s.hidden_bytes, c, sizeof(c));
		printf("%02u    %-19.19s %10s %10s %7u %7u %7u %10s  ", i,
		       image_layer_digest(img, i), a, b, s.added, s.changed, s.hidden, c);
		/* whole on a pipe, cut to the terminal on a TTY */
		if (width > used && (int)strlen(cb) > width - used)
			printf("%.*s…\n", width - used - 1, cb);
		else
			printf("%s\n", cb);
	}
	human(t->stored, a, sizeof(a));
	human(t->size, b, sizeof(b));
	human(t->hidden_bytes, c, sizeof(c));
	printf("%-5s %-19s %10s %10s %7llu %7llu %7llu %10s\n", "total", "", a, b,
	       (unsigned long long)t->added, (unsigned long long)t->changed,
	       (unsigned long long)t->hidden, c);
	human(t->visible, a, sizeof(a));
	human(t->shipped, b, sizeof(b));
	printf("efficiency: %.1f%% (%s of file data visible of %s shipped)\n",
	       t->shipped ? 100.0 * (double)t->visible / (double)t->shipped : 100.0, a, b);
}

static void print_json(struct image *img, const struct totals *t)
{
	const struct source_image *si = image_source(img);
	json_t *root = json_object(), *layers = json_array();

	for (uint32_t i = 0; i < image_layer_count(img); i++) {
		struct tree_layer_stats s;
		const char *cb = si->layers[i].created_by;

		tree_layer_stats(image_merged(img), i, &s);
		json_array_append_new(
		    layers,
		    json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "index",
		              (json_int_t)i, "digest", image_layer_digest(img, i), "stored_size",
		              (json_int_t)si->layers[i].size, "size",
		              (json_int_t)image_layer_digests(img, i)->decompressed_size, "added",
		              (json_int_t)s.added, "changed", (json_int_t)s.changed, "hidden",
		              (json_int_t)s.hidden, "hidden_bytes", (json_int_t)s.hidden_bytes,
		              "shipped_bytes", (json_int_t)shipped_bytes(image_layer(img, i)),
		              "created_by", cb));
	}
	json_object_set_new(root, "image", json_string(image_path(img)));
	json_object_set_new(root, "layers", layers);
	json_object_set_new(root, "totals",
	                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
	                              "stored_size", (json_int_t)t->stored, "size",
	                              (json_int_t)t->size, "added", (json_int_t)t->added, "changed",
	                              (json_int_t)t->changed, "hidden", (json_int_t)t->hidden,
	                              "hidden_bytes", (json_int_t)t->hidden_bytes, "visible_bytes",
	                              (json_int_t)t->visible, "shipped_bytes",
	                              (json_int_t)t->shipped, "efficiency",
	                              t->shipped ? (double)t->visible / (double)t->shipped : 1.0));
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(root);
}

int cmd_inspect(int argc, char **argv)
{
	struct common c = {.layer = -1};
	struct totals t = {0};
	struct image *img;
	int json = 0, opt;

	struct option *opts = cli_options(inspect_options);

	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (opt == OPT_JSON)
			json = 1;
		else
			common_option(&c, opt, usage_inspect);
	}
	free(opts);
	if (argc - optind != 1)
		usage_error(usage_inspect, "%s", "inspect wants IMAGE");
	img = open_image(argv[optind], &c);
	for (uint32_t i = 0; i < image_layer_count(img); i++) {
		struct tree_layer_stats s;

		tree_layer_stats(image_merged(img), i, &s);
		t.stored += image_source(img)->layers[i].size;
		t.size += image_layer_digests(img, i)->decompressed_size;
		t.added += s.added;
		t.changed += s.changed;
		t.hidden += s.hidden;
		t.hidden_bytes += s.hidden_bytes;
		t.shipped += shipped_bytes(image_layer(img, i));
	}
	t.visible = visible_bytes(image_merged(img));
	if (json)
		print_json(img, &t);
	else
		print_text(img, &t);
	image_free(img);
	return 0;
}
