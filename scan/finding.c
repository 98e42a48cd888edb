/*
 * finding: what a finding says besides the match itself, for engine.c: the
 * line and column of an offset (from an index of the buffer's newlines, built
 * on the first finding, so clean files never pay for it), a few lines of
 * context around the secret with control bytes made harmless, the redacted
 * form of the secret and its fingerprint; and the copy and release of a
 * finding, which are part of scan.h.
 */
#include "finding.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void finding_lines_release(struct finding_lines *b)
{
	free(b->nl);
	b->nl = NULL;
	b->nnl = 0;
	b->built = false;
}

static void build_nl(struct finding_lines *b)
{
	size_t cap = 0;
	const uint8_t *p = b->d, *end = b->d + b->len;

	b->built = true;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		if (b->nnl == cap) {
			size_t nc = cap ? cap * 2 : 256;
			size_t *n = realloc(b->nl, nc * sizeof(*n));

			if (!n) {
				b->oom = true;
				return;
			}
			b->nl = n;
			cap = nc;
		}
		b->nl[b->nnl++] = (size_t)(p - b->d);
		p++;
	}
}

/* 1-based line of a byte offset: one more than the newlines before it. */
size_t finding_line_of(struct finding_lines *b, size_t off)
{
	size_t lo = 0, hi;

	if (!b->built)
		build_nl(b);
	hi = b->nnl;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->nl[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

size_t finding_line_start(const struct finding_lines *b, size_t line)
{
	return line <= 1 ? 0 : b->nl[line - 2] + 1;
}

static size_t line_end(const struct finding_lines *b, size_t line)
{
	return line - 1 < b->nnl ? b->nl[line - 1] : b->len;
}

static void add_clean(struct scan_buf *o, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = (char)p[i];

		if (c == '\t')
			c = ' ';
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			c = '.';
		scan_buf_add(o, &c, 1);
	}
}

static void add_clean_keep_nl(struct scan_buf *o, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n')
			scan_buf_add(o, "\n", 1);
		else if (p[i] != '\r')
			add_clean(o, p + i, 1);
	}
}

char *finding_context(struct finding_lines *b, size_t ss, size_t se, const char *redacted, bool raw)
{
	struct scan_buf o = {0};
	size_t l1 = finding_line_of(b, ss), l2 = finding_line_of(b, se ? se - 1 : se), from, to;
	const size_t half = SCAN_CONTEXT_WIDTH / 2;

	from = l1 > SCAN_CONTEXT_LINES ? l1 - SCAN_CONTEXT_LINES : 1;
	to = l2 + SCAN_CONTEXT_LINES;
	if (to > b->nnl + 1)
		to = b->nnl + 1;
	for (size_t l = from; l <= to && !b->oom; l++) {
		size_t a = finding_line_start(b, l), z = line_end(b, l);

		if (l < l1 || l > l2) {
			add_clean(&o, b->d + a,
			          z - a < SCAN_CONTEXT_WIDTH ? z - a : SCAN_CONTEXT_WIDTH);
		} else if (l == l1) {
			size_t pre = ss - a > half ? half : ss - a, ze = line_end(b, l2);
			size_t post = ze - se > half ? half : ze - se;

			add_clean(&o, b->d + ss - pre, pre);
			if (raw)
				add_clean_keep_nl(&o, b->d + ss, se - ss);
			else
				scan_buf_puts(&o, redacted);
			add_clean(&o, b->d + se, post);
			l = l2; /* the secret's other lines are inside it */
		}
		if (l < to)
			scan_buf_puts(&o, "\n");
	}
	return scan_buf_steal(&o);
}

/* Short secrets show less of themselves. */
char *finding_redact(const char *s, size_t len)
{
	size_t show = len >= 8 ? 4 : len / 2;
	char head[5];
	char *out;

	for (size_t i = 0; i < show; i++)
		head[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	head[show] = '\0';
	if (asprintf(&out, "%s\u2026(%zu)", head, len) < 0)
		return NULL;
	return out;
}

char *finding_fingerprint(const char *rule, const char *secret, size_t slen, const char *path)
{
	struct scan_buf b = {0};
	char hex[65], *s;

	scan_buf_puts(&b, rule);
	scan_buf_add(&b, "", 1);
	scan_buf_add(&b, secret, slen);
	scan_buf_add(&b, "", 1);
	scan_buf_puts(&b, path);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	scan_sha256_hex(b.p, b.len, hex);
	free(b.p);
	hex[32] = '\0';
	s = strdup(hex);
	return s;
}

void scan_finding_free(struct scan_finding *f)
{
	if (!f)
		return;
	free((char *)f->rule_id);
	free((char *)f->title);
	free((char *)f->category);
	free((char *)f->path);
	free((char *)f->visibility);
	free((char *)f->layer_digest);
	free((char *)f->created_by);
	free((char *)f->view_path);
	free((char *)f->secret);
	free((char *)f->redacted);
	free((char *)f->why);
	free((char *)f->context);
	free((char *)f->context_raw);
	free((char *)f->fingerprint);
	free((char *)f->pubkey_sha256);
	free((char *)f->cert_subject);
	free((char *)f->cert_issuer);
	free((char *)f->cert_not_before);
	free((char *)f->cert_not_after);
	free(f);
}

struct scan_finding *scan_finding_dup(const struct scan_finding *f)
{
	struct scan_finding *d = malloc(sizeof(*d));
	bool oom = false;

	if (!d)
		return NULL;
	*d = *f;
	d->rule_id = scan_strdup(f->rule_id, &oom);
	d->title = scan_strdup(f->title, &oom);
	d->category = scan_strdup(f->category, &oom);
	d->path = scan_strdup(f->path, &oom);
	d->visibility = scan_strdup(f->visibility, &oom);
	d->layer_digest = scan_strdup(f->layer_digest, &oom);
	d->created_by = scan_strdup(f->created_by, &oom);
	d->view_path = scan_strdup(f->view_path, &oom);
	d->secret = scan_strdup(f->secret, &oom);
	d->redacted = scan_strdup(f->redacted, &oom);
	d->why = scan_strdup(f->why, &oom);
	d->context = scan_strdup(f->context, &oom);
	d->context_raw = scan_strdup(f->context_raw, &oom);
	d->fingerprint = scan_strdup(f->fingerprint, &oom);
	d->pubkey_sha256 = scan_strdup(f->pubkey_sha256, &oom);
	d->cert_subject = scan_strdup(f->cert_subject, &oom);
	d->cert_issuer = scan_strdup(f->cert_issuer, &oom);
	d->cert_not_before = scan_strdup(f->cert_not_before, &oom);
	d->cert_not_after = scan_strdup(f->cert_not_after, &oom);
	if (oom) {
		scan_finding_free(d);
		return NULL;
	}
	return d;
}
