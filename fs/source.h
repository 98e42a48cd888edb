/*
 * source: an image as it lies on disk, and the choice of one image in it.
 *
 * Three containers are read: a `docker save` tarball (the legacy layout with
 * manifest.json and <id>/layer.tar, and Docker 25+'s OCI layout plus
 * manifest.json), an OCI image layout directory, and an OCI archive (a tar of
 * such a directory). A tar is never unpacked: its members are located once
 * and each blob is then a byte range of the tar file.
 *
 * One file may hold many images (tags, platforms, nested indexes). The
 * selection names one by tag (`IMAGE:TAG`), by digest (`IMAGE@sha256:...`)
 * and/or by platform (`os/arch[/variant]`); attestation manifests are never
 * candidates. An ambiguous or failed pick is an error that lists the
 * candidates.
 *
 * What the source hands out (struct source_image) is plain data; every
 * string and buffer in it belongs to the source_image and is freed with it.
 * The file descriptors belong to the struct source, which must outlive the
 * images taken from it.
 */
#ifndef STRATA_SOURCE_H
#define STRATA_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* JSON documents (index, manifest, config) bigger than this are refused. */
#define SOURCE_MAX_JSON (16u << 20)
/* Nesting of indexes, and members of an image tar. */
#define SOURCE_MAX_DEPTH   8
#define SOURCE_MAX_MEMBERS 100000
#define SOURCE_MAX_LAYERS  4096

struct source_select {
	const char *tag;      /* a ref name / repo tag, or NULL */
	const char *digest;   /* "sha256:<hex>" (a unique prefix is fine), or NULL */
	const char *platform; /* "os/arch[/variant]", or NULL */
};

struct source_layer {
	char *digest;     /* blob digest, "sha256:<hex>"; NULL when the format gives none */
	char *diff_id;    /* from the config's rootfs.diff_ids, or NULL */
	char *media_type; /* as the manifest says (informative only) */
	char *created_by; /* the history entry of this layer, or NULL */
	int fd;           /* holds the blob; owned by the struct source */
	uint64_t offset;  /* byte range of the blob in fd */
	uint64_t size;
};

struct source_image {
	char *name;            /* what was picked: a tag, or the digest */
	char *manifest_digest; /* NULL for legacy docker archives */
	char *config_digest;
	char *platform; /* "os/arch[/variant]" when known */
	char *manifest; /* the manifest as stored (legacy docker: its manifest.json entry) */
	size_t manifest_len;
	char *config;
	size_t config_len;
	uint32_t nlayers;
	struct source_layer *layers; /* bottom first */
	uint32_t nhistory;           /* history entries in the config, empty ones included */
};

struct source;

/*
 * Splits a command-line IMAGE argument into the path and a selection:
 * "path", "path:tag", "path@sha256:...". The path part is taken as long as
 * the whole argument is not an existing file. Pointers into arg are stored in
 * *sel and *ret_path is malloc'd.
 */
int source_parse_ref(const char *arg, char **ret_path, struct source_select *sel, struct err *err);

int source_open(const char *path, struct source **ret_source, struct err *err);
void source_free(struct source *s);

/* Describes the image container ("docker-archive", "oci-layout", "oci-archive"). */
const char *source_kind(const struct source *s);

/* Picks one image. sel may be NULL (the only image, or an error listing them). */
int source_select(struct source *s, const struct source_select *sel,
                  struct source_image **ret_image, struct err *err);
void source_image_free(struct source_image *img);

/*
 * Lists the images the source holds, one per line ("TAG  DIGEST  PLATFORM"),
 * into a malloc'd string.
 */
int source_list(struct source *s, char **ret_text, struct err *err);

#endif
