/*
 * vendor: which files the image's distribution packages installed, with the
 * checksum the package database recorded. A secret in a file that a package
 * installed unmodified was written by the distribution (test keys in
 * Python's test suite, GnuTLS self-test keys), not by the image's author, so
 * its findings become examples naming the package. A file whose bytes differ
 * from the recorded checksum was changed in the image and gets no such pass.
 *
 * dpkg records md5 per file (info/PKG.md5sums); apk records sha1 (Z:Q1...
 * in lib/apk/db/installed). Paths are kept without a leading "/" or "./".
 */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct ventry {
	char *path;      /* NULL: empty slot */
	const char *pkg; /* interned in pkgs */
	uint8_t sum[20];
	uint8_t sumlen; /* 16 md5, 20 sha1 */
};

struct scan_vendor {
	struct ventry *tab;
	size_t cap, n;
	char **pkgs;
	size_t npkgs;
};

int scan_vendor_new(struct scan_vendor **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void scan_vendor_free(struct scan_vendor *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->cap; i++)
		free(v->tab[i].path);
	free(v->tab);
	for (size_t i = 0; i < v->npkgs; i++)
		free(v->pkgs[i]);
	free(v->pkgs);
	free(v);
}

size_t scan_vendor_count(const struct scan_vendor *v)
{
	return v ? v->n : 0;
}

static const char *norm(const char *p, size_t *len)
{
	while (*len && (*p == '/' || (*len > 1 && p[0] == '.' && p[1] == '/'))) {
		p++;
		(*len)--;
	}
	return p;
}

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	return h;
}

static struct ventry *slot(const struct scan_vendor *v, const char *p, size_t n)
{
	size_t i = (size_t)hash(p, n) & (v->cap - 1);

	while (v->tab[i].path && (strlen(v->tab[i].path) != n || memcmp(v->tab[i].path, p, n)))
		i = (i + 1) & (v->cap - 1);
	return &v->tab[i];
}

static int grow(struct scan_vendor *v)
{
	struct scan_vendor nv = *v;

	nv.cap = v->cap ? v->cap * 2 : 1024;
	nv.tab = calloc(nv.cap, sizeof(*nv.tab));
	if (!nv.tab)
		return -ENOMEM;
	for (size_t i = 0; i < v->cap; i++)
		if (v->tab[i].path)
			*slot(&nv, v->tab[i].path, strlen(v->tab[i].path)) = v->tab[i];
	free(v->tab);
	*v = nv;
	return 0;
}

static const char *intern(struct scan_vendor *v, const char *pkg, size_t n)
{
	char **np;

	if (v->npkgs && strlen(v->pkgs[v->npkgs - 1]) == n &&
	    !memcmp(v->pkgs[v->npkgs - 1], pkg, n))
		return v->pkgs[v->npkgs - 1];
	np = realloc(v->pkgs, (v->npkgs + 1) * sizeof(*np));
	if (!np)
		return NULL;
	v->pkgs = np;
	if (!(v->pkgs[v->npkgs] = strndup(pkg, n)))
		return NULL;
	return v->pkgs[v->npkgs++];
}

static int add(struct scan_vendor *v, const char *pkg, const char *path, size_t plen,
               const uint8_t *sum, size_t sumlen)
{
	struct ventry *e;

	path = norm(path, &plen);
	if (!plen || plen > 4096)
		return 0;
	if ((v->n + 1) * 2 > v->cap && grow(v))
		return -ENOMEM;
	e = slot(v, path, plen);
	if (!e->path) {
		if (!(e->path = strndup(path, plen)))
			return -ENOMEM;
		v->n++;
	}
	e->pkg = pkg;
	memcpy(e->sum, sum, sumlen);
	e->sumlen = (uint8_t)sumlen;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int scan_vendor_add_dpkg_md5sums(struct scan_vendor *v, const char *package, const void *data,
                                 size_t len, struct scan_err *e)
{
	const char *p = data, *end = p + len, *pkg;
	int rc;

	pkg = intern(v, package, strlen(package));
	if (!pkg)
		return scan_err_set(e, -ENOMEM, "out of memory");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		uint8_t md5[16];
		bool ok = le - p > 34 && p[32] == ' ';

		for (int i = 0; ok && i < 16; i++) {
			int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);

			ok = hi >= 0 && lo >= 0;
			md5[i] = (uint8_t)(hi << 4 | lo);
		}
		if (ok) {
			const char *path = p + 33;

			while (path < le && *path == ' ')
				path++;
			if ((rc = add(v, pkg, path, (size_t)(le - path), md5, 16)))
				return scan_err_set(e, rc, "out of memory");
		}
		p = le + 1;
	}
	return 0;
}

int scan_vendor_add_apk_installed(struct scan_vendor *v, const void *data, size_t len,
                                  struct scan_err *e)
{
	const char *p = data, *end = p + len, *pkg = NULL;
	char dir[4096] = "", file[4096] = "";
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		size_t l = (size_t)(le - p);

		if (l > 2 && p[1] == ':') {
			size_t vl = l - 2 < sizeof(dir) - 1 ? l - 2 : sizeof(dir) - 1;

			if (p[0] == 'P') {
				if (!(pkg = intern(v, p + 2, l - 2)))
					return scan_err_set(e, -ENOMEM, "out of memory");
				dir[0] = '\0';
			} else if (p[0] == 'F') {
				memcpy(dir, p + 2, vl);
				dir[vl] = '\0';
			} else if (p[0] == 'R') {
				memcpy(file, p + 2, vl);
				file[vl] = '\0';
			} else if (p[0] == 'Z' && pkg && file[0] && l > 4 && p[2] == 'Q' &&
			           p[3] == '1') {
				uint8_t sha1[32];
				char path[8200];

				if (scan_base64_decode(p + 4, l - 4, sha1, sizeof(sha1)) == 20) {
					snprintf(path, sizeof(path), "%s%s%s", dir,
					         dir[0] ? "/" : "", file);
					if ((rc = add(v, pkg, path, strlen(path), sha1, 20)))
						return scan_err_set(e, rc, "out of memory");
				}
				file[0] = '\0';
			}
		} else if (!l) {
			pkg = NULL;
		}
		p = le + 1;
	}
	return 0;
}

int scan_vendor_add_db_file(struct scan_vendor *v, const char *path, const void *data, size_t len,
                            struct scan_err *e)
{
	size_t pl = strlen(path), bl;
	const char *p = norm(path, &pl), *base;
	char pkg[256];

	if (pl == strlen("lib/apk/db/installed") && !memcmp(p, "lib/apk/db/installed", pl))
		return scan_vendor_add_apk_installed(v, data, len, e) ?: 1;
	if (pl > 22 && !memcmp(p, "var/lib/dpkg/info/", 18) && pl > 8 &&
	    !memcmp(p + pl - 8, ".md5sums", 8)) {
		base = p + 18;
		bl = pl - 18 - 8;
		if (memchr(base, '/', bl) || bl >= sizeof(pkg))
			return 0;
		memcpy(pkg, base, bl);
		pkg[bl] = '\0';
		if (strchr(pkg, ':')) /* "libssl3:amd64" names the package libssl3 */
			*strchr(pkg, ':') = '\0';
		return scan_vendor_add_dpkg_md5sums(v, pkg, data, len, e) ?: 1;
	}
	return 0;
}

uint64_t scan_vendor_fingerprint(const struct scan_vendor *v)
{
	uint64_t sum = 0;

	/* a sum over the entries, so that the order they came in does not matter */
	for (size_t i = 0; v && i < v->cap; i++) {
		const struct ventry *e = &v->tab[i];
		uint64_t h;

		if (!e->path)
			continue;
		h = hash(e->path, strlen(e->path) + 1);
		h ^= hash(e->pkg, strlen(e->pkg) + 1) * 31;
		h ^= hash((const char *)e->sum, e->sumlen) * 131;
		sum += h * 0x9e3779b97f4a7c15ull;
	}
	return sum;
}

bool scan_vendor_lists(const struct scan_vendor *v, const char *path)
{
	size_t pl;

	if (!v || !v->n || !path)
		return false;
	pl = strlen(path);
	path = norm(path, &pl);
	return slot(v, path, pl)->path != NULL;
}

const char *scan_vendor_match(const struct scan_vendor *v, const char *path, const void *data,
                              size_t len)
{
	size_t pl;
	const struct ventry *e;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdl = 0;

	if (!v || !v->n || !path)
		return NULL;
	pl = strlen(path);
	path = norm(path, &pl);
	e = slot(v, path, pl);
	if (!e->path)
		return NULL;
	if (!EVP_Digest(data, len, md, &mdl, e->sumlen == 16 ? EVP_md5() : EVP_sha1(), NULL))
		return NULL;
	return mdl == e->sumlen && !memcmp(md, e->sum, mdl) ? e->pkg : NULL;
}
