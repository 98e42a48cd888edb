/*
 * results: the findings of a scan session, collected from any number of
 * scanner threads, then finished once: private keys are linked to the
 * certificates that hold their public key (the certificates themselves are
 * context, never findings), and findings are sorted so that two runs over the
 * same image print byte-identical reports. Also the ignore set of
 * fingerprints.
 */
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct fvec {
	struct scan_finding **v;
	size_t n, cap;
};

struct scan_results {
	pthread_mutex_t lock;
	struct fvec findings;
	struct fvec certs;
	struct scan_stats stats;
};

int scan_results_new(struct scan_results **out)
{
	struct scan_results *r = calloc(1, sizeof(*r));

	*out = r;
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

static void fvec_clear(struct fvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		scan_finding_free(v->v[i]);
	free(v->v);
}

void scan_results_free(struct scan_results *r)
{
	if (!r)
		return;
	fvec_clear(&r->findings);
	fvec_clear(&r->certs);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int fvec_push(struct fvec *v, struct scan_finding *f)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 32;
		struct scan_finding **n = realloc(v->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = f;
	return 0;
}

int scan_results_add(const struct scan_finding *f, void *results)
{
	struct scan_results *r = results;
	struct scan_finding *d = scan_finding_dup(f);
	int rc;

	if (!d)
		return -ENOMEM;
	pthread_mutex_lock(&r->lock);
	rc = fvec_push(f->context_only ? &r->certs : &r->findings, d);
	pthread_mutex_unlock(&r->lock);
	if (rc)
		scan_finding_free(d);
	return rc;
}

void scan_results_add_stats(struct scan_results *r, const struct scan_stats *st)
{
	pthread_mutex_lock(&r->lock);
	scan_stats_add(&r->stats, st);
	pthread_mutex_unlock(&r->lock);
}

const struct scan_stats *scan_results_stats(const struct scan_results *r)
{
	return &r->stats;
}

static int cmpstr(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* Layer (-1, config findings without a layer, first), path, offset, rule,
 * then secret and visibility so that no two distinct findings tie. */
static int cmp_finding(const void *pa, const void *pb)
{
	const struct scan_finding *a = *(struct scan_finding *const *)pa;
	const struct scan_finding *b = *(struct scan_finding *const *)pb;
	int c;

	if (a->layer != b->layer)
		return a->layer < b->layer ? -1 : 1;
	if ((c = cmpstr(a->path, b->path)))
		return c;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	if ((c = cmpstr(a->rule_id, b->rule_id)))
		return c;
	if ((c = cmpstr(a->secret, b->secret)))
		return c;
	return cmpstr(a->visibility, b->visibility);
}

static int replace(const char **slot, const char *val)
{
	char *d = strdup(val ? val : "");

	if (!d)
		return -ENOMEM;
	free((char *)*slot);
	*slot = d;
	return 0;
}

/* Which of two findings of one secret to keep: surer, then more specific, then graver. */
static bool better(const struct scan_finding *a, const struct scan_finding *b)
{
	bool ag = a->category && !strcmp(a->category, "Generic");
	bool bg = b->category && !strcmp(b->category, "Generic");

	if (a->confidence != b->confidence)
		return a->confidence > b->confidence;
	if (ag != bg)
		return !ag;
	if (a->severity != b->severity)
		return a->severity > b->severity;
	return cmpstr(a->rule_id, b->rule_id) < 0;
}

/*
 * Several rules often match one secret (an npm token is both an npm token
 * and an .npmrc _authToken). Findings of one file whose secrets overlap are
 * one finding: the best is kept, and its why names the other rules. Needs
 * the findings sorted (layer, path, offset).
 */
static int merge_overlaps(struct scan_results *r)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->findings.n;) {
		struct scan_finding *best = r->findings.v[i];
		uint64_t end = best->offset + best->secret_len;
		size_t j = i + 1;
		char *also = NULL;

		for (; j < r->findings.n; j++) {
			struct scan_finding *f = r->findings.v[j];

			if (f->layer != best->layer || cmpstr(f->path, best->path) ||
			    f->offset >= end)
				break;
			if (f->offset + f->secret_len > end)
				end = f->offset + f->secret_len;
			if (better(f, best)) {
				struct scan_finding *t = best;

				best = f;
				f = t;
			}
			char *s;
			if (asprintf(&s, "%s%s%s", also ? also : "", also ? ", " : "", f->rule_id) <
			    0) {
				free(also);
				return -ENOMEM;
			}
			free(also);
			also = s;
		}
		if (also) {
			char *why;

			if (asprintf(&why, "%s%salso matched by %s", best->why,
			             best->why[0] ? "; " : "", also) < 0) {
				free(also);
				return -ENOMEM;
			}
			free((char *)best->why);
			best->why = why;
			free(also);
		}
		for (size_t k = i; k < j; k++)
			if (r->findings.v[k] != best)
				scan_finding_free(r->findings.v[k]);
		r->findings.v[kept++] = best;
		i = j;
	}
	r->findings.n = kept;
	return 0;
}

int scan_results_finish(struct scan_results *r)
{

	int rc = 0;

	/* Certificates in a stable order, so the one named is the same each run. */
	if (r->certs.n > 1)
		qsort(r->certs.v, r->certs.n, sizeof(*r->certs.v), cmp_finding);
	for (size_t i = 0; i < r->findings.n && !rc; i++) {
		struct scan_finding *f = r->findings.v[i];
		const struct scan_finding *cert = NULL;
		char *why = NULL;

		if (!f->pubkey_sha256 || f->cert_subject)
			continue;
		for (size_t j = 0; j < r->certs.n && !cert; j++)
			if (r->certs.v[j]->pubkey_sha256 &&
			    !strcmp(r->certs.v[j]->pubkey_sha256, f->pubkey_sha256))
				cert = r->certs.v[j];
		if (!cert)
			continue;
		if (asprintf(&why,
		             "%s%smatches certificate subject %s, issuer %s, valid %s to %s (%s)",
		             f->why, f->why[0] ? "; " : "", cert->cert_subject, cert->cert_issuer,
		             cert->cert_not_before, cert->cert_not_after, cert->path) < 0)
			return -ENOMEM;
		free((char *)f->why);
		f->why = why;
		if (replace(&f->cert_subject, cert->cert_subject) ||
		    replace(&f->cert_issuer, cert->cert_issuer) ||
		    replace(&f->cert_not_before, cert->cert_not_before) ||
		    replace(&f->cert_not_after, cert->cert_not_after))
			rc = -ENOMEM;
	}
	if (r->findings.n > 1)
		qsort(r->findings.v, r->findings.n, sizeof(*r->findings.v), cmp_finding);
	/* The same file scanned twice in a session (read through the mount, then
	 * in the full pass) must not count twice: drop exact repeats. */
	if (r->findings.n > 1) {
		size_t kept = 1;

		for (size_t i = 1; i < r->findings.n; i++) {
			if (!cmp_finding(&r->findings.v[kept - 1], &r->findings.v[i]))
				scan_finding_free(r->findings.v[i]);
			else
				r->findings.v[kept++] = r->findings.v[i];
		}
		r->findings.n = kept;
	}
	if (rc == 0)
		rc = merge_overlaps(r);
	return rc;
}

size_t scan_results_count(const struct scan_results *r)
{
	return r->findings.n;
}

const struct scan_finding *scan_results_get(const struct scan_results *r, size_t i)
{
	return i < r->findings.n ? r->findings.v[i] : NULL;
}

const struct scan_finding *scan_results_context(const struct scan_results *r, size_t i)
{
	return i < r->certs.n ? r->certs.v[i] : NULL;
}

size_t scan_results_filter(struct scan_results *r, enum scan_confidence min,
                           const struct scan_ignore *ign)
{
	size_t kept = 0, dropped = 0;

	for (size_t i = 0; i < r->findings.n; i++) {
		struct scan_finding *f = r->findings.v[i];

		if (f->confidence < min || scan_ignore_has(ign, f->fingerprint)) {
			scan_finding_free(f);
			dropped++;
		} else {
			r->findings.v[kept++] = f;
		}
	}
	r->findings.n = kept;
	return dropped;
}

/* ---- ignore set ----------------------------------------------------------- */

struct scan_ignore {
	char **fp;
	size_t n, cap;
};

int scan_ignore_new(struct scan_ignore **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void scan_ignore_free(struct scan_ignore *ign)
{
	if (!ign)
		return;
	for (size_t i = 0; i < ign->n; i++)
		free(ign->fp[i]);
	free(ign->fp);
	free(ign);
}

int scan_ignore_add(struct scan_ignore *ign, const char *fingerprint)
{
	if (ign->n == ign->cap) {
		size_t cap = ign->cap ? ign->cap * 2 : 16;
		char **n = realloc(ign->fp, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ign->fp = n;
		ign->cap = cap;
	}
	if (!(ign->fp[ign->n] = strdup(fingerprint)))
		return -ENOMEM;
	ign->n++;
	return 0;
}

bool scan_ignore_has(const struct scan_ignore *ign, const char *fingerprint)
{
	if (!ign || !fingerprint)
		return false;
	for (size_t i = 0; i < ign->n; i++)
		if (!strcasecmp(ign->fp[i], fingerprint))
			return true;
	return false;
}

int scan_ignore_load_file(struct scan_ignore **out, const char *path, struct scan_err *e)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	int rc;

	*out = NULL;
	if (!f)
		return scan_err_set(e, -errno, "%s: %s", path, strerror(errno));
	if ((rc = scan_ignore_new(out))) {
		fclose(f);
		return scan_err_set(e, rc, "out of memory");
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		if (strchr(p, '#'))
			*strchr(p, '#') = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strcspn(p, " \t\r\n");
		*end = '\0';
		if (!*p)
			continue;
		if ((rc = scan_ignore_add(*out, p))) {
			fclose(f);
			scan_ignore_free(*out);
			*out = NULL;
			return scan_err_set(e, rc, "out of memory");
		}
	}
	fclose(f);
	return 0;
}
