/*
 * Unit tests of fs/secrets with a secrets_stream: a whole-image scan whose
 * files were scanned while the image was indexed gives exactly the findings
 * and counts of one that reads every file again afterwards, including what
 * only the whole image tells (a hardlink's path, a package that installed
 * the file), and needs no second read of the layer.
 *
 * The image is a docker save archive written here, with one gzip layer.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "blob.h"
#include "image.h"
#include "layer.h"
#include "mktar.h"
#include "secrets.h"
#include "tap.h"

#define SECRET                                                                                     \
	"AWS_ACCESS_KEY_ID=AKIACQTJKSZPRFK5CKNC\n"                                                 \
	"AWS_SECRET_ACCESS_KEY=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\n"                         \
	"GITHUB_TOKEN=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\n"

static char *read_fd(int fd, size_t len)
{
	char *p = malloc(len);

	if (!p || pread(fd, p, len, 0) != (ssize_t)len)
		abort();
	return p;
}

static void *gzip(const void *in, size_t len, size_t *ret_len)
{
	z_stream z = {0};
	size_t cap = len + 1024;
	unsigned char *out = malloc(cap);

	if (!out || deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	*ret_len = z.total_out;
	deflateEnd(&z);
	return out;
}

static void hex_digest(const EVP_MD *md, const void *data, size_t len, char *out)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_Digest(data, len, d, &n, md, NULL);
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* Writes one file into an archive being written. */
static void add_file(struct archive *a, const char *name, const void *data, size_t len)
{
	struct archive_entry *ae = archive_entry_new();

	archive_entry_set_pathname(ae, name);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0644);
	archive_entry_set_size(ae, (la_int64_t)len);
	archive_write_header(a, ae);
	archive_write_data(a, data, len);
	archive_entry_free(ae);
}

/* A docker save archive at path with gzip layers: layer i holds ents[i][0 .. n[i]). */
static void write_layers(const char *path, const struct ent *const *ents, const int *n, int nlayers)
{
	char config[1024], manifest[512], name[32], diff_id[65];
	struct archive *a = archive_write_new();
	size_t cl, ml;

	cl = (size_t)snprintf(config, sizeof(config),
	                      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
	                      "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
	ml =
	    (size_t)snprintf(manifest, sizeof(manifest),
	                     "[{\"Config\":\"config.json\",\"RepoTags\":[\"demo:1\"],\"Layers\":[");
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		abort();
	for (int i = 0; i < nlayers; i++) {
		size_t tar_len, gz_len;
		int fd = mktar(ents[i], n[i], 0, &tar_len);
		char *tar = read_fd(fd, tar_len);
		void *gz = gzip(tar, tar_len, &gz_len);

		hex_digest(EVP_sha256(), tar, tar_len, diff_id);
		snprintf(name, sizeof(name), "l%d/layer.tar", i);
		add_file(a, name, gz, gz_len);
		cl += (size_t)snprintf(config + cl, sizeof(config) - cl, "%s\"sha256:%s\"",
		                       i ? "," : "", diff_id);
		ml += (size_t)snprintf(manifest + ml, sizeof(manifest) - ml, "%s\"%s\"",
		                       i ? "," : "", name);
		close(fd);
		free(tar);
		free(gz);
	}
	cl += (size_t)snprintf(config + cl, sizeof(config) - cl, "]}}");
	ml += (size_t)snprintf(manifest + ml, sizeof(manifest) - ml, "]}]");
	add_file(a, "config.json", config, cl);
	add_file(a, "manifest.json", manifest, ml);
	archive_write_close(a);
	archive_write_free(a);
}

/* The md5sums of package "demo", listing opt/demo/settings.env with SECRET's sum. */
static const char *md5sums(void)
{
	static char buf[128];
	char md5[33];

	hex_digest(EVP_md5(), SECRET, strlen(SECRET), md5);
	snprintf(buf, sizeof(buf), "%s  opt/demo/settings.env\n", md5);
	return buf;
}

/*
 * One gzip layer: a secret, a hardlink to it, a package's file holding it
 * and the package's md5sums; with plain set, only the first and a harmless
 * file.
 */
static void write_image(const char *path, int plain)
{
	const struct ent ents[] = {
	    {"app/", 'd', NULL, 0},
	    {"app/.env", 'f', SECRET, 0},
	    {"etc/passwd", 'f', "root:x:0:0:root:/root:/bin/sh\n", 0},
	    {"app/env-link", 'h', "app/.env", 0},
	    {"opt/demo/settings.env", 'f', SECRET, 0},
	    {"var/lib/dpkg/info/demo.md5sums", 'f', md5sums(), 0},
	};
	const struct ent *layers[] = {ents};
	const int n[] = {plain ? 3 : 6};

	write_layers(path, layers, n, 1);
}

struct run {
	char *report; /* every finding, JSON Lines */
	uint32_t done_before;
	uint32_t total;
	uint64_t reread; /* bytes blob_pread decompressed in all */
	uint64_t files;
	size_t nfound;
	int vendor_example, link_found;
};

/* Opens and scans the image, with a stream or without; 0 on success. */
static int scan_image(const char *path, int with_stream, struct run *ret)
{
	struct secrets_opts so = {.no_cache = 1};
	struct secrets_stream *st = NULL;
	struct image_opts io;
	struct image *img = NULL;
	struct secrets *s = NULL;
	struct scan_results *res = NULL;
	struct scan_report_options ro = {.show_secrets = true};
	struct secrets_layer_progress p;
	struct blob_stats bs;
	struct err e = {0};
	struct scan_err se = {0};
	size_t len = 0;
	FILE *f;

	image_opts_default(&io);
	io.no_cache = 1;
	if (with_stream && secrets_stream_new(&so, &st, &e) < 0)
		goto fail;
	if (st)
		secrets_stream_hook(st, &io);
	so.stream = st;
	if (image_open(path, &io, &img, &e) < 0 || secrets_new(img, &so, &s, &e) < 0)
		goto fail;
	secrets_progress(s, 0, &p);
	ret->done_before = p.entries_done;
	ret->total = p.entries_total;
	if (secrets_scan_all(s, &e) < 0 || secrets_results(s, &res, &e) < 0)
		goto fail;
	blob_stats(layer_blob(image_layer(img, 0)), &bs);
	ret->reread = bs.pread_decompressed;
	ret->files = scan_results_stats(res)->files;
	ret->nfound = scan_results_count(res);
	for (size_t i = 0; i < ret->nfound; i++) {
		const struct scan_finding *x = scan_results_get(res, i);

		if (!strcmp(x->path, "opt/demo/settings.env") &&
		    x->confidence == SCAN_CONF_EXAMPLE && strstr(x->why, "vendor: package demo"))
			ret->vendor_example = 1;
		if (!strcmp(x->path, "app/env-link") && x->confidence != SCAN_CONF_EXAMPLE &&
		    x->view_path && !strcmp(x->view_path, "merged/app/env-link"))
			ret->link_found = 1;
	}
	f = open_memstream(&ret->report, &len);
	if (!f || scan_report_jsonl(f, res, &ro, &se) < 0)
		abort();
	fclose(f);
	scan_results_free(res);
	secrets_free(s);
	secrets_stream_free(st);
	image_free(img);
	return 0;
fail:
	fprintf(stderr, "# %s\n", e.msg);
	scan_results_free(res);
	secrets_free(s);
	secrets_stream_free(st);
	image_free(img);
	return -1;
}

/*
 * The lowest confidence of the findings at opt/demo/settings.env after a
 * scan (-1: none). cache: the cache directory, or NULL for none. lazy: only
 * that file, as the mount scans a file once it has been read.
 */
static int settings_confidence(const char *path, const char *cache, int lazy)
{
	struct secrets_opts so = {.no_cache = !cache, .cache_dir = cache};
	struct scan_results *res = NULL;
	struct secrets *s = NULL;
	struct image *img = NULL;
	struct image_opts io;
	struct err e = {0};
	int conf = -1, r;

	image_opts_default(&io);
	io.no_cache = !cache;
	io.cache_dir = cache;
	r = image_open(path, &io, &img, &e);
	if (r == 0)
		r = secrets_new(img, &so, &s, &e);
	for (uint32_t li = 0; r == 0 && lazy && li < image_layer_count(img); li++) {
		const struct layer *l = image_layer(img, li);

		for (uint32_t i = 0; r == 0 && i < layer_count(l); i++)
			if (!strcmp(layer_str(l, layer_entry(l, i)->path), "opt/demo/settings.env"))
				r = secrets_scan_entry(s, li, i);
	}
	if (r == 0 && !lazy)
		r = secrets_scan_all(s, &e);
	if (r == 0)
		r = secrets_results(s, &res, &e);
	for (size_t i = 0; r == 0 && i < scan_results_count(res); i++) {
		const struct scan_finding *f = scan_results_get(res, i);

		if (!strcmp(f->path, "opt/demo/settings.env") &&
		    (conf < 0 || (int)f->confidence < conf))
			conf = (int)f->confidence;
	}
	if (r < 0)
		fprintf(stderr, "# %s: %s\n", path, e.msg[0] ? e.msg : strerror(-r));
	scan_results_free(res);
	secrets_free(s);
	image_free(img);
	return r < 0 ? -2 : conf;
}

/*
 * Two images with the same lower layer (the package's file) and different
 * upper layers: one brings the package's md5sums, the other not. Results
 * saved for the lower layer in one must not decide the other's.
 */
static void shared_layer(const char *dir)
{
	const struct ent lower[] = {{"opt/demo/settings.env", 'f', SECRET, 0}};
	const struct ent with_db[] = {{"var/lib/dpkg/info/demo.md5sums", 'f', md5sums(), 0}};
	const struct ent without[] = {{"etc/hostname", 'f', "box\n", 0}};
	const struct ent *x[] = {lower, with_db}, *y[] = {lower, without};
	const int n[] = {1, 1};
	char px[96], py[96], cache[96];
	int cx, cy, cx2;

	snprintf(px, sizeof(px), "%s/x.tar", dir);
	snprintf(py, sizeof(py), "%s/y.tar", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	write_layers(px, x, n, 2);
	write_layers(py, y, n, 2);
	cx = settings_confidence(px, cache, 0);
	cy = settings_confidence(py, cache, 0);
	cx2 = settings_confidence(px, cache, 0);
	CHECK(cx == SCAN_CONF_EXAMPLE, "with its package's md5sums, the file gives examples (%d)",
	      cx);
	CHECK(cy > SCAN_CONF_EXAMPLE,
	      "in an image without them, the same layer's file does not, cache or not (%d)", cy);
	CHECK(cx2 == SCAN_CONF_EXAMPLE, "and the first image still gets its own (%d)", cx2);
	CHECK(settings_confidence(px, NULL, 1) == SCAN_CONF_EXAMPLE,
	      "a file scanned alone, as the mount does, knows the package databases too");
	unlink(px);
	unlink(py);
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", cache);
	if (system(cmd) != 0)
		abort();
}

int main(void)
{
	char dir[] = "/tmp/strata-secrets-XXXXXX", path[64];
	struct run a = {0}, b = {0}, c = {0}, d = {0};

	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/image.tar", dir);

	/* no hardlinks, no packages: the stream needs no read at all */
	write_image(path, 1);
	CHECK(scan_image(path, 1, &c) == 0 && scan_image(path, 0, &d) == 0, "a plain image scans");
	CHECK(c.reread == 0 && d.reread > 0,
	      "with a stream the layer is decompressed once (re-read %llu bytes), without twice "
	      "(%llu)",
	      (unsigned long long)c.reread, (unsigned long long)d.reread);
	CHECK(c.report && d.report && !strcmp(c.report, d.report) && c.nfound > 0,
	      "and the findings are the same (%zu)", c.nfound);
	free(c.report);
	free(d.report);

	write_image(path, 0);

	CHECK(scan_image(path, 1, &a) == 0, "scanned with a stream");
	CHECK(scan_image(path, 0, &b) == 0, "scanned without");
	CHECK(a.total == 4 && a.done_before == a.total,
	      "with a stream, every file counts as scanned once the image is open (%u of %u)",
	      a.done_before, a.total);
	CHECK(b.done_before == 0, "without, none is (%u)", b.done_before);
	CHECK(a.nfound > 0 && a.nfound == b.nfound, "the same number of findings (%zu, %zu)",
	      a.nfound, b.nfound);
	CHECK(a.report && b.report && !strcmp(a.report, b.report),
	      "the same findings, field for field");
	CHECK(a.files == b.files && a.files >= 5, "the same file counts (%llu, %llu)",
	      (unsigned long long)a.files, (unsigned long long)b.files);
	CHECK(a.vendor_example && b.vendor_example,
	      "a file its package installed gives examples either way");
	CHECK(a.link_found && b.link_found, "and a hardlink's path gets its own findings");
	free(a.report);
	free(b.report);
	shared_layer(dir);
	unlink(path);
	rmdir(dir);
	return tap_done();
}
