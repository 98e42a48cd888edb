/*
 * source: reading image containers and selecting an image (see source.h).
 *
 * The container is reduced to one question, "where are the bytes of the file
 * called NAME?", answered by a directory (openat) or by a table of the tar's
 * members built in one pass over its headers. Everything above that, the
 * docker manifest.json and the OCI index/manifest/config walk, is the same
 * for both. Digests from the image are validated before they are used as
 * file names, so a hostile index cannot make us open anything outside
 * blobs/.
 */
#include "source.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "source_int.h"

/* ---- the container: files by name ---- */

static char *clean_member_name(const char *in)
{
	struct buf b = BUF_INIT;
	const char *p = in;

	while (*p) {
		const char *c = p;
		size_t n;

		while (*p && *p != '/')
			p++;
		n = (size_t)(p - c);
		if (*p)
			p++;
		if (n == 0 || (n == 1 && *c == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			char *slash = b.data && b.len ? memrchr(b.data, '/', b.len) : NULL;

			b.len = slash ? (size_t)(slash - b.data) : 0;
			if (b.data)
				b.data[b.len] = '\0';
			continue;
		}
		if ((b.len && buf_append(&b, "/", 1) < 0) || buf_append(&b, c, n) < 0) {
			buf_release(&b);
			return NULL;
		}
	}
	return buf_detach(&b, NULL);
}

static int read_members(struct source *s, struct err *err)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ae;
	int r, ret = 0;

	if (!a)
		return err_set(err, -ENOMEM, "out of memory");
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, s->fd, 1 << 16) != ARCHIVE_OK) {
		ret = err_set(err, -EINVAL, "%s: not an image: neither a directory nor a tar (%s)",
		              s->path, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		struct member *m;
		const char *link;

		if (s->nmembers >= SOURCE_MAX_MEMBERS) {
			ret = err_set(err, -E2BIG, "%s: more than %u files in the image tar",
			              s->path, SOURCE_MAX_MEMBERS);
			goto out;
		}
		m = realloc(s->members, (s->nmembers + 1) * sizeof(*m));
		if (!m) {
			ret = err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		s->members = m;
		m = &m[s->nmembers];
		*m = (struct member){0};
		m->name =
		    clean_member_name(archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "");
		link = archive_entry_symlink(ae);
		m->is_symlink = link != NULL;
		if (!link)
			link = archive_entry_hardlink(ae);
		m->link = link ? strdup(link) : NULL;
		m->offset = (uint64_t)archive_filter_bytes(a, 0);
		m->size = (uint64_t)archive_entry_size(ae);
		s->nmembers++;
		if (!m->name || (link && !m->link)) {
			ret = err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		ret = err_set(err, -EINVAL, "%s: broken tar at offset %lld: %s", s->path,
		              (long long)archive_filter_bytes(a, 0), archive_error_string(a));
		goto out;
	}
	if (archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE)
		ret = err_set(err, -ENOTSUP,
		              "%s: compressed image archives are not read; "
		              "decompress it first (gzip -d / zstd -d)",
		              s->path);
out:
	archive_read_free(a);
	return ret;
}

static const struct member *find_member(const struct source *s, const char *name)
{
	char *want = clean_member_name(name);
	const struct member *m = NULL;

	for (int hop = 0; want && hop <= SOURCE_MAX_LINK_HOPS; hop++) {
		m = NULL;
		/* the last of duplicate members wins, as when extracting */
		for (uint32_t i = s->nmembers; i-- > 0;) {
			if (strcmp(s->members[i].name, want) == 0) {
				m = &s->members[i];
				break;
			}
		}
		if (!m || !m->link)
			break;
		/* a symlink's target is relative to its directory; a hardlink's to the root */
		char *next;
		const char *slash = strrchr(m->name, '/');

		if (m->is_symlink && slash && m->link[0] != '/') {
			if (asprintf(&next, "%.*s/%s", (int)(slash - m->name), m->name, m->link) <
			    0)
				next = NULL;
		} else {
			next = strdup(m->link);
		}
		free(want);
		want = next ? clean_member_name(next) : NULL;
		free(next);
		m = NULL;
	}
	free(want);
	return m;
}

/* Locates a file of the container as a byte range. */
int source_locate(struct source *s, const char *name, int *ret_fd, uint64_t *ret_off,
                  uint64_t *ret_size, struct err *err)
{
	if (s->dirfd >= 0) {
		struct stat st;
		int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			return err_set(err, -errno, "%s: cannot open %s: %s", s->path, name,
			               strerror(errno));
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return err_set(err, -EINVAL, "%s: %s is not a regular file", s->path, name);
		}
		/* one descriptor per blob, owned by the source: remember it */
		int *fds = realloc(s->fds, (s->nfds + 1) * sizeof(*fds));
		if (!fds) {
			close(fd);
			return err_set(err, -ENOMEM, "out of memory");
		}
		s->fds = fds;
		fds[s->nfds++] = fd;
		*ret_fd = fd;
		*ret_off = 0;
		*ret_size = (uint64_t)st.st_size;
		return 0;
	}
	const struct member *m = find_member(s, name);
	if (!m)
		return err_set(err, -ENOENT, "%s: the archive holds no %s", s->path, name);
	*ret_fd = s->fd;
	*ret_off = m->offset;
	*ret_size = m->size;
	return 0;
}

int source_read_whole(struct source *s, const char *name, char **ret_buf, size_t *ret_len,
                      struct err *err)
{
	uint64_t off = 0, size = 0;
	int fd = -1, r;
	char *p;

	if ((r = source_locate(s, name, &fd, &off, &size, err)) < 0)
		return r;
	if (size > SOURCE_MAX_JSON)
		return err_set(err, -EFBIG, "%s: %s is %llu bytes, over the %u-byte limit for JSON",
		               s->path, name, (unsigned long long)size, SOURCE_MAX_JSON);
	p = malloc(size + 1);
	if (!p)
		return err_set(err, -ENOMEM, "out of memory");
	for (uint64_t done = 0; done < size;) {
		ssize_t n = pread(fd, p + done, size - done, (off_t)(off + done));

		if (n <= 0) {
			free(p);
			return err_set(err, n < 0 ? -errno : -EIO, "%s: reading %s: %s", s->path,
			               name, n < 0 ? strerror(errno) : "file is truncated");
		}
		done += (uint64_t)n;
	}
	p[size] = '\0';
	*ret_buf = p;
	*ret_len = size;
	return 0;
}

int source_load_json(struct source *s, const char *name, json_t **ret, char **ret_raw,
                     size_t *ret_len, struct err *err)
{
	json_error_t je;
	char *raw = NULL;
	size_t len = 0;
	json_t *j;
	int r;

	if ((r = source_read_whole(s, name, &raw, &len, err)) < 0)
		return r;
	j = json_loadb(raw, len, JSON_DECODE_ANY, &je);
	if (!j) {
		free(raw);
		return err_set(err, -EINVAL, "%s: %s is not valid JSON (line %d: %s)", s->path,
		               name, je.line, je.text);
	}
	*ret = j;
	if (ret_raw) {
		*ret_raw = raw;
		*ret_len = len;
	} else {
		free(raw);
	}
	return 0;
}

/* "sha256:<64 hex>" (or sha512) → "blobs/sha256/<hex>"; anything else is refused. */
int source_blob_path(const char *digest, char *out, size_t outlen)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	size_t alen, hlen;

	if (!colon)
		return -EINVAL;
	alen = (size_t)(colon - digest);
	hlen = strlen(colon + 1);
	if (!((alen == 6 && !memcmp(digest, "sha256", 6) && hlen == 64) ||
	      (alen == 6 && !memcmp(digest, "sha512", 6) && hlen == 128)))
		return -EINVAL;
	if (strspn(colon + 1, "0123456789abcdef") != hlen)
		return -EINVAL;
	snprintf(out, outlen, "blobs/%.*s/%s", (int)alen, digest, colon + 1);
	return 0;
}

int source_load_blob_json(struct source *s, const char *digest, json_t **ret, char **ret_raw,
                          size_t *ret_len, struct err *err)
{
	char path[256];

	int r;

	if (source_blob_path(digest, path, sizeof(path)) < 0)
		return err_set(err, -EINVAL, "%s: malformed digest \"%.80s\"", s->path,
		               digest ? digest : "(none)");
	r = source_load_json(s, path, ret, ret_raw, ret_len, err);
	if (r == -ENOENT)
		err_set(err, r, "%s: blob %s is missing from the image", s->path, digest);
	return r;
}

/* ---- candidates ---- */

const char *source_jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int add_candidate(struct source *s, const char *name, const char *digest,
                         const char *parents, const char *platform, int docker_index)
{
	struct candidate *c;

	/* indexes may list one manifest twice: list it once */
	for (uint32_t i = 0; i < s->ncands; i++) {
		c = &s->cands[i];
		if (!strcmp(c->name, name ? name : "") &&
		    !strcmp(c->digest, digest ? digest : "") &&
		    !strcmp(c->platform ? c->platform : "", platform ? platform : "")) {
			/* reachable through several indexes: any of them may pick it */
			char *p;

			if (!parents || !*parents || strstr(c->parents, parents))
				return 0;
			if (asprintf(&p, "%s %s", c->parents, parents) < 0)
				return -ENOMEM;
			free(c->parents);
			c->parents = p;
			return 0;
		}
	}
	c = realloc(s->cands, (s->ncands + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	s->cands = c;
	c = &c[s->ncands++];
	c->name = strdup(name ? name : "");
	c->digest = strdup(digest ? digest : "");
	c->parents = strdup(parents ? parents : "");
	c->platform = platform ? strdup(platform) : NULL;
	c->docker_index = docker_index;
	c->broken = 0;
	if (!c->name || !c->digest || !c->parents || (platform && !c->platform))
		return -ENOMEM;
	return 0;
}

static char *platform_string(json_t *p)
{
	const char *os = source_jstr(p, "os"), *arch = source_jstr(p, "architecture"),
	           *var = source_jstr(p, "variant");
	char *out;

	if (!os || !arch)
		return NULL;
	if (asprintf(&out, "%s/%s%s%s", os, arch, var ? "/" : "", var ? var : "") < 0)
		return NULL;
	return out;
}

static int is_attestation(json_t *desc)
{
	json_t *ann = json_object_get(desc, "annotations");
	const char *t = source_jstr(ann, "vnd.docker.reference.type");
	json_t *p = json_object_get(desc, "platform");

	if (t && strcmp(t, "attestation-manifest") == 0)
		return 1;
	return p && source_jstr(p, "os") && strcmp(source_jstr(p, "os"), "unknown") == 0;
}

static int walk_index(struct source *s, json_t *index, const char *name, const char *parents,
                      int depth, struct err *err);

/* One descriptor of an index: an image manifest becomes a candidate, an index is walked. */
static int walk_descriptor(struct source *s, json_t *desc, const char *name, const char *parents,
                           int depth, struct err *err)
{
	const char *mt = source_jstr(desc, "mediaType"), *digest = source_jstr(desc, "digest");
	json_t *ann = json_object_get(desc, "annotations");
	const char *ref = source_jstr(ann, "org.opencontainers.image.ref.name");
	json_t *child = NULL;
	char *plat = NULL, *np = NULL, *names = NULL;
	int r = 0;

	if (is_attestation(desc))
		return 0;
	/* a manifest answers to every ref name on its way down: "3" of the index and "1" of its own
	 */
	if (ref && name && *name && strcmp(ref, name)) {
		if (asprintf(&names, "%s,%s", name, ref) < 0)
			return -ENOMEM;
		name = names;
	} else if (ref) {
		name = ref;
	}
	if (!mt || !strcmp(mt, MT_OCI_INDEX) || !strcmp(mt, MT_DOCKER_LIST)) {
		if (!digest)
			goto out;
		/* loops, deep nesting and missing blobs fail only for whoever picks them */
		if (strstr(parents, digest) || depth >= SOURCE_MAX_DEPTH) {
			r = add_candidate(s, name, digest, parents, NULL, -1);
			if (r == 0)
				s->cands[s->ncands - 1].broken = -ELOOP;
			goto out;
		}
		if ((r = source_load_blob_json(s, digest, &child, NULL, NULL, err)) < 0) {
			if (r == -ENOENT) {
				err_clear(err);
				r = add_candidate(s, name, digest, parents, NULL, -1);
			}
			goto out;
		}
		const char *cmt = source_jstr(child, "mediaType");
		if (json_is_array(json_object_get(child, "manifests")) ||
		    (cmt && (!strcmp(cmt, MT_OCI_INDEX) || !strcmp(cmt, MT_DOCKER_LIST)))) {
			if (asprintf(&np, "%s %s", parents, digest) < 0) {
				r = -ENOMEM;
				goto out;
			}
			r = walk_index(s, child, name, np, depth + 1, err);
			goto out;
		}
		if (mt)
			goto out; /* an index that holds no manifests */
	} else if (strcmp(mt, MT_OCI_MANIFEST) && strcmp(mt, MT_DOCKER_MANIFEST)) {
		/* artifacts and unknown types are listed: picking one gives a clear error */
	}
	plat = platform_string(json_object_get(desc, "platform"));
	r = add_candidate(s, name, digest, parents, plat, -1) < 0 ? -ENOMEM : 0;
out:
	json_decref(child);
	free(plat);
	free(np);
	free(names);

	return r;
}

static int walk_index(struct source *s, json_t *index, const char *name, const char *parents,
                      int depth, struct err *err)
{
	json_t *ms = json_object_get(index, "manifests"), *d;
	size_t i;
	int r;

	json_array_foreach(ms, i, d)
	{
		if ((r = walk_descriptor(s, d, name, parents, depth, err)) < 0)
			return r;
	}
	return 0;
}

static int docker_candidates(struct source *s, struct err *err)
{
	json_t *m = s->docker_manifest, *e;
	size_t i;

	json_array_foreach(m, i, e)
	{
		json_t *tags = json_object_get(e, "RepoTags"), *t;
		const char *config = source_jstr(e, "Config");
		struct buf names = BUF_INIT;
		char digest[80] = "";
		size_t j;
		int r;

		if (!config || !json_is_array(json_object_get(e, "Layers")))
			return err_set(err, -EINVAL,
			               "%s: manifest.json entry %zu lacks Config or Layers",
			               s->path, i);
		/* the config file is named by its digest: "<hex>.json" or "blobs/sha256/<hex>" */
		const char *base = strrchr(config, '/') ? strrchr(config, '/') + 1 : config;
		snprintf(digest, sizeof(digest), "sha256:%.64s", base);
		json_array_foreach(tags, j, t)
		{
			if (json_string_value(t) &&
			    ((names.len && buf_append(&names, ",", 1) < 0) ||
			     buf_append_str(&names, json_string_value(t)) < 0)) {
				buf_release(&names);
				return -ENOMEM;
			}
		}
		r = add_candidate(s, names.data, digest, "", NULL, (int)i);
		buf_release(&names);
		if (r < 0)
			return err_set(err, r, "out of memory");
	}
	return 0;
}

static int find_candidates(struct source *s, struct err *err)
{
	json_t *m = NULL, *index = NULL;
	int r;

	if (s->fd >= 0 && find_member(s, "manifest.json")) {
		r = source_load_json(s, "manifest.json", &m, NULL, NULL, err);
		if (r < 0)
			return r;
		if (json_is_array(m) && json_array_size(m) > 0) {
			s->docker_manifest = m;
			s->kind = "docker-archive";
			return docker_candidates(s, err);
		}
		int is_null = json_is_null(m);

		json_decref(m);
		if (!find_member(s, "index.json"))
			return err_set(err, -EINVAL,
			               "%s: manifest.json holds no image (%s); "
			               "pre-1.10 docker save archives are not supported",
			               s->path, is_null ? "it is null" : "empty or not a list");
	}
	if ((r = source_load_json(s, "index.json", &index, NULL, NULL, err)) < 0) {
		if (r == -ENOENT)
			err_set(err, r,
			        "%s: not an image: no index.json (OCI layout) or "
			        "manifest.json (docker save)",
			        s->path);
		return r;
	}
	if (!s->kind)
		s->kind = s->fd >= 0 ? "oci-archive" : "oci-layout";
	r = walk_index(s, index, NULL, "", 0, err);
	json_decref(index);
	return r;
}

int source_open(const char *path, struct source **ret_source, struct err *err)
{
	struct source *s = calloc(1, sizeof(*s));
	struct stat st;
	int r;

	if (!s)
		return err_set(err, -ENOMEM, "out of memory");
	s->fd = s->dirfd = -1;
	s->path = strdup(path);
	if (!s->path) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (stat(path, &st) < 0) {
		r = err_set(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->dirfd < 0) {
			r = err_set(err, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
	} else {
		s->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0) {
			r = err_set(err, -errno, "%s: %s", path, strerror(errno));
			goto out;
		}
		if ((r = read_members(s, err)) < 0)
			goto out;
	}
	if ((r = find_candidates(s, err)) < 0)
		goto out;
	*ret_source = s;
	s = NULL;
out:
	source_free(s);
	return r;
}

void source_free(struct source *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nfds; i++)
		close(s->fds[i]);
	free(s->fds);
	for (uint32_t i = 0; i < s->nmembers; i++) {
		free(s->members[i].name);
		free(s->members[i].link);
	}
	for (uint32_t i = 0; i < s->ncands; i++) {
		free(s->cands[i].name);
		free(s->cands[i].digest);
		free(s->cands[i].parents);
		free(s->cands[i].platform);
	}
	free(s->cands);
	free(s->members);
	json_decref(s->docker_manifest);
	if (s->fd >= 0)
		close(s->fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s);
}

const char *source_kind(const struct source *s)
{
	return s->kind;
}
