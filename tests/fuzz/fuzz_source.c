/*
 * fuzz_source: libFuzzer target for fs/source, the reader of image
 * containers. The first input byte picks what the rest is:
 *
 *   0  an image tar (docker save, or an OCI archive), opened from a memfd
 *   1  index.json of an OCI layout directory that also holds a fixed, valid
 *      image (manifest, config, layer, and a nested index)
 *   2  manifest.json of a docker save tar whose other members are fixed
 *   3  the manifest blob of that layout (its index.json is fixed)
 *   4  the config blob of that layout (index and manifest are fixed)
 *
 * Each case runs source_open, source_list, source_select with no selection,
 * then with the tag, the digest and the platform of the first listed image,
 * and opens (as blobs) and reads the start of the first layers of whatever
 * was selected, which checks that their byte ranges are usable. Nothing may
 * crash, leak or hang; errors are fine.
 *
 * With FUZZ_SOURCE_SEEDS=DIR in the environment, the target first writes one
 * seed per case into DIR (valid documents naming the fixed blobs' digests),
 * for tests/fuzz/run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "fuzz_util.h"
#include "source.h"

static char *layout; /* the OCI layout directory */
static struct fbuf layer_tar, config, manifest, nested, index_json, docker_manifest;
static char layer_digest[72], config_digest[72], manifest_digest[72], nested_digest[72];
static char layer_hex[65], config_hex[65], manifest_hex[65], nested_hex[65];

static void blob_name(char *out, size_t n, const char *hex)
{
	snprintf(out, n, "blobs/sha256/%s", hex);
}

static void make_fixed(void)
{
	char diff[72], name[128];

	tar_add(&layer_tar, "etc/", '5', NULL, 0, NULL);
	tar_add(&layer_tar, "etc/hello", '0', "hello\n", 6, NULL);
	tar_add(&layer_tar, "etc/link", '2', NULL, 0, "/etc/hello");
	tar_add(&layer_tar, "etc/.wh.gone", '0', NULL, 0, NULL);
	tar_end(&layer_tar);
	fz_digest(layer_tar.data, layer_tar.len, layer_digest, layer_hex);
	memcpy(diff, layer_digest, sizeof(diff));

	fb_str(&config,
	       "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"A=1\"]},"
	       "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"");
	fb_str(&config, diff);
	fb_str(&config, "\"]},\"history\":[{\"created_by\":\"ENV A=1\",\"empty_layer\":true},"
	                "{\"created_by\":\"COPY hello /etc/\"}]}");
	fz_digest(config.data, config.len, config_digest, config_hex);

	char *m;
	if (asprintf(
	        &m,
	        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	        "\"digest\":\"%s\",\"size\":%zu},"
	        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
	        "\"digest\":\"%s\",\"size\":%zu}]}",
	        config_digest, config.len, layer_digest, layer_tar.len) < 0)
		fz_die("asprintf");
	fb_str(&manifest, m);
	free(m);
	fz_digest(manifest.data, manifest.len, manifest_digest, manifest_hex);

	char *ix;
	if (asprintf(
	        &ix,
	        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	        "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	        "\"digest\":\"%s\",\"size\":%zu,"
	        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}",
	        manifest_digest, manifest.len) < 0)
		fz_die("asprintf");
	fb_str(&nested, ix);
	free(ix);
	fz_digest(nested.data, nested.len, nested_digest, nested_hex);

	if (asprintf(&ix,
	             "{\"schemaVersion\":2,\"manifests\":["
	             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	             "\"digest\":\"%s\",\"size\":%zu,"
	             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"latest\"},"
	             "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
	             "{\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
	             "\"digest\":\"%s\",\"size\":%zu,"
	             "\"annotations\":{\"org.opencontainers.image.ref.name\":\"multi\"}}]}",
	             manifest_digest, manifest.len, nested_digest, nested.len) < 0)
		fz_die("asprintf");
	fb_str(&index_json, ix);
	free(ix);

	if (asprintf(&ix,
	             "[{\"Config\":\"%s.json\",\"RepoTags\":[\"fuzz:latest\",\"fuzz:v1\"],"
	             "\"Layers\":[\"l1/layer.tar\"]}]",
	             config_hex) < 0)
		fz_die("asprintf");
	fb_str(&docker_manifest, ix);
	free(ix);

	layout = fz_tempdir("fuzz-source");
	fz_mkdir(layout, "blobs");
	fz_mkdir(layout, "blobs/sha256");
	fz_write_file(layout, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	blob_name(name, sizeof(name), layer_hex);
	fz_write_file(layout, name, layer_tar.data, layer_tar.len);
	blob_name(name, sizeof(name), nested_hex);
	fz_write_file(layout, name, nested.data, nested.len);
}

/* A docker save tar with the given manifest.json and the fixed config and layer. */
static void docker_tar(struct fbuf *t, const void *mj, size_t mj_len)
{
	char name[128];

	snprintf(name, sizeof(name), "%s.json", config_hex);
	tar_add(t, name, '0', config.data, config.len, NULL);
	tar_add(t, "l1/", '5', NULL, 0, NULL);
	tar_add(t, "l1/layer.tar", '0', layer_tar.data, layer_tar.len, NULL);
	tar_add(t, "l2/", '5', NULL, 0, NULL);
	tar_add(t, "l2/layer.tar", '2', NULL, 0, "../l1/layer.tar");
	tar_add(t, "manifest.json", '0', mj, mj_len, NULL);
	tar_end(t);
}

/* Writes the layout's documents: each one fixed, or the input where mode says so. */
static void write_layout(int mode, const void *data, size_t size)
{
	char name[128];

	fz_write_file(layout, "index.json", mode == 1 ? data : index_json.data,
	              mode == 1 ? size : index_json.len);
	blob_name(name, sizeof(name), manifest_hex);
	fz_write_file(layout, name, mode == 3 ? data : manifest.data,
	              mode == 3 ? size : manifest.len);
	blob_name(name, sizeof(name), config_hex);
	fz_write_file(layout, name, mode == 4 ? data : config.data, mode == 4 ? size : config.len);
}

static void write_seed(const char *dir, const char *name, int mode, const void *data, size_t len)
{
	struct fbuf f = {0};
	unsigned char m = (unsigned char)mode;

	fb_add(&f, &m, 1);
	fb_add(&f, data, len);
	fz_write_file(dir, name, f.data, f.len);
	fb_free(&f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("FUZZ_SOURCE_SEEDS");

	(void)argc;
	(void)argv;
	make_fixed();
	if (seeds && *seeds) {
		struct fbuf t = {0}, o = {0};
		char name[128];

		docker_tar(&t, docker_manifest.data, docker_manifest.len);
		write_seed(seeds, "docker.tar", 0, t.data, t.len);
		/* an OCI archive: the layout as a tar */
		tar_add(&o, "oci-layout", '0', "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL);
		tar_add(&o, "index.json", '0', index_json.data, index_json.len, NULL);
		tar_add(&o, "blobs/", '5', NULL, 0, NULL);
		tar_add(&o, "blobs/sha256/", '5', NULL, 0, NULL);
		blob_name(name, sizeof(name), manifest_hex);
		tar_add(&o, name, '0', manifest.data, manifest.len, NULL);
		blob_name(name, sizeof(name), nested_hex);
		tar_add(&o, name, '0', nested.data, nested.len, NULL);
		blob_name(name, sizeof(name), config_hex);
		tar_add(&o, name, '0', config.data, config.len, NULL);
		blob_name(name, sizeof(name), layer_hex);
		tar_add(&o, name, '0', layer_tar.data, layer_tar.len, NULL);
		tar_end(&o);
		write_seed(seeds, "oci-archive.tar", 0, o.data, o.len);
		write_seed(seeds, "index.json", 1, index_json.data, index_json.len);
		write_seed(seeds, "manifest.json", 2, docker_manifest.data, docker_manifest.len);
		write_seed(seeds, "manifest-blob.json", 3, manifest.data, manifest.len);
		write_seed(seeds, "config-blob.json", 4, config.data, config.len);
		write_seed(seeds, "nested-index.json", 1, nested.data, nested.len);
		fb_free(&t);
		fb_free(&o);
	}
	return 0;
}

static void read_layers(const struct source_image *img)
{
	struct blob_limits lim = {
	    .max_output = 1u << 20, .max_expansion = 100, .zstd_window_log_max = 20};
	unsigned char buf[1024];

	for (uint32_t i = 0; i < img->nlayers && i < 4; i++) {
		const struct source_layer *sl = &img->layers[i];
		struct blob *b = NULL;
		struct err e = {0};

		if (blob_open(sl->fd, sl->offset, sl->size, &lim, &b, &e) == 0)
			blob_pread(b, buf, sizeof(buf), 0, &e);
		blob_free(b);
	}
	(void)img->nhistory;
}

static void try_select(struct source *s, const char *tag, const char *digest, const char *platform)
{
	struct source_select sel = {.tag = tag, .digest = digest, .platform = platform};
	struct source_image *img = NULL;
	struct err e = {0};

	if (source_select(s, &sel, &img, &e) == 0)
		read_layers(img);
	source_image_free(img);
}

static void exercise(const char *path)
{
	struct source *s = NULL;
	struct source_image *img = NULL;
	struct err e = {0};
	char *list = NULL;

	if (source_open(path, &s, &e) < 0)
		return;
	(void)strlen(source_kind(s));
	if (source_select(s, NULL, &img, &e) == 0)
		read_layers(img);
	source_image_free(img);
	img = NULL;
	if (source_list(s, &list, &e) == 0 && list) {
		/* "NAME\tDIGEST\tPLATFORM\n" of the first image */
		char *tab1 = strchr(list, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		char *nl = tab2 ? strchr(tab2 + 1, '\n') : NULL;

		if (nl) {
			char *comma;

			*tab1 = *tab2 = *nl = '\0';
			if ((comma = strchr(list, ',')))
				*comma = '\0';
			try_select(s, list, NULL, NULL);
			if (strlen(tab1 + 1) > 20)
				(tab1 + 1)[20] = '\0';
			try_select(s, NULL, tab1 + 1, NULL);
			try_select(s, list, NULL, strcmp(tab2 + 1, "-") ? tab2 + 1 : "linux/amd64");
		}
	}
	free(list);
	try_select(s, "latest", NULL, NULL);
	source_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		fd = fz_memfd("fuzz_source", data + 1, size - 1);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		exercise(path);
		close(fd);
		break;
	case 2: {
		struct fbuf t = {0};

		docker_tar(&t, data + 1, size - 1);
		fd = fz_memfd("fuzz_source", t.data, t.len);
		fb_free(&t);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		exercise(path);
		close(fd);
		break;
	}
	default:
		write_layout(data[0] % 5, data + 1, size - 1);
		exercise(layout);
		break;
	}
	return 0;
}
