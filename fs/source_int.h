/*
 * source_int.h: what source.c (the container: members, blobs, candidates)
 * and source_select.c (choosing an image and describing it) share. Not an
 * interface for anything else: callers use source.h.
 */
#ifndef STRATA_SOURCE_INT_H
#define STRATA_SOURCE_INT_H

#include <jansson.h>
#include <stdint.h>

#include "buf.h"
#include "source.h"

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"

/* How many in-archive symlinks one lookup may follow. */
#define SOURCE_MAX_LINK_HOPS 8

struct member {
	char *name;
	char *link; /* symlink or hardlink target, NULL otherwise */
	int is_symlink;
	uint64_t offset;
	uint64_t size;
};

struct candidate {
	char *name;       /* tags, comma-separated ("" when untagged) */
	char *digest;     /* manifest digest (docker legacy: config digest) */
	char *parents;    /* digests of the indexes above it, space-separated */
	char *platform;   /* NULL when unknown */
	int docker_index; /* element of manifest.json, or -1 */
	int broken;       /* -ELOOP: an index loop or nesting past SOURCE_MAX_DEPTH */
};

struct source {
	char *path;
	const char *kind;
	int fd;                 /* the tar file, or -1 */
	int dirfd;              /* the layout directory, or -1 */
	struct member *members; /* of the tar */
	uint32_t nmembers;
	int *fds; /* blob files opened in the directory */
	uint32_t nfds;
	json_t *docker_manifest; /* manifest.json when it is usable */
	struct candidate *cands;
	uint32_t ncands;
};

/* The bytes of the container's file called name: a byte range of fd. */
int source_locate(struct source *s, const char *name, int *ret_fd, uint64_t *ret_off,
                  uint64_t *ret_size, struct err *err);
int source_read_whole(struct source *s, const char *name, char **ret_buf, size_t *ret_len,
                      struct err *err);
/* A JSON file of the container (bounded by SOURCE_MAX_JSON), and its raw bytes if asked. */
int source_load_json(struct source *s, const char *name, json_t **ret, char **ret_raw,
                     size_t *ret_len, struct err *err);
/* "sha256:<hex>" -> "blobs/sha256/<hex>"; -EINVAL for anything that is not a digest. */
int source_blob_path(const char *digest, char *out, size_t outlen);
int source_load_blob_json(struct source *s, const char *digest, json_t **ret, char **ret_raw,
                          size_t *ret_len, struct err *err);
const char *source_jstr(json_t *o, const char *key);

#endif
