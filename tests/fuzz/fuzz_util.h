/*
 * fuzz_util.h: small helpers shared by the fs/ fuzz targets, all static so
 * that each target stays one translation unit: a growable byte buffer, a
 * ustar writer (to build fixed layer blobs and image tars in memory), files
 * from bytes (memfd, or a named file in a directory), and sha256 digests in
 * the "sha256:<hex>" form that images use. Failures here are harness
 * failures, not findings: they abort with a message.
 */
#ifndef STRATA_FUZZ_UTIL_H
#define STRATA_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fbuf {
	unsigned char *data;
	size_t len, cap;
};

static inline __attribute__((noreturn)) void fz_die(const char *what)
{
	fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
	abort();
}

static inline void fb_add(struct fbuf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (!b->data)
			fz_die("out of memory");
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

static inline void fb_str(struct fbuf *b, const char *s)
{
	fb_add(b, s, strlen(s));
}

static inline void fb_free(struct fbuf *b)
{
	free(b->data);
	*b = (struct fbuf){0};
}

/*
 * Appends one ustar member: type '0' file, '5' dir, '2' symlink, '1' hardlink,
 * 'x' PAX extended header (data: its records). Names up to 99 bytes (the
 * harness only writes short ones).
 */
static inline void tar_add(struct fbuf *t, const char *name, char type, const void *data,
                           size_t len, const char *link)
{
	unsigned char h[512] = {0};
	unsigned sum = 0;
	static const unsigned char zeros[512];

	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", type == '0' || type == 'x' ? len : (size_t)0);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = (unsigned char)type;
	if (link)
		snprintf((char *)h + 157, 100, "%s", link);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	fb_add(t, h, 512);
	if ((type == '0' || type == 'x') && len) {
		fb_add(t, data, len);
		fb_add(t, zeros, (512 - len % 512) % 512);
	}
}

static inline void tar_end(struct fbuf *t)
{
	static const unsigned char zeros[1024];

	fb_add(t, zeros, sizeof(zeros));
}

/* An anonymous file holding data; the caller closes it. */
static inline int fz_memfd(const char *name, const void *data, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	const unsigned char *p = data;

	if (fd < 0)
		fz_die("memfd_create");
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			fz_die("write memfd");
		p += n;
		len -= (size_t)n;
	}
	return fd;
}

/* Writes dir/name (dir/a/b: the directories must exist), replacing it. */
static inline void fz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fz_die(path);
	for (const unsigned char *p = data; len;) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			fz_die(path);
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

static inline void fz_mkdir(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		fz_die(path);
}

/* A fresh directory under $TMPDIR (or /tmp), malloc'd. */
static inline char *fz_tempdir(const char *tag)
{
	const char *tmp = getenv("TMPDIR");
	char *path;

	if (asprintf(&path, "%s/strata-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag) < 0)
		fz_die("asprintf");
	if (!mkdtemp(path))
		fz_die("mkdtemp");
	return path;
}

/* "sha256:<64 hex>" of data into out[72]; hex only (no prefix) into hex[65] if not NULL. */
static inline void fz_digest(const void *data, size_t len, char out[72], char hex[65])
{
	unsigned char md[32];
	char h[65];

	if (!EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL))
		fz_die("sha256");
	for (int i = 0; i < 32; i++)
		snprintf(h + 2 * i, 3, "%02x", md[i]);
	snprintf(out, 72, "sha256:%s", h);
	if (hex)
		memcpy(hex, h, 65);
}

#endif
