/*
 * util: small helpers shared by the scan/ modules: error messages, a growable
 * string buffer, hashing and base64, the names of enums, entropy, and the
 * heuristics that recognise example values and test/fixture paths.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

int scan_err_set(struct scan_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

static bool buf_reserve(struct scan_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void scan_buf_add(struct scan_buf *b, const void *d, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void scan_buf_puts(struct scan_buf *b, const char *s)
{
	scan_buf_add(b, s, strlen(s));
}

void scan_buf_printf(struct scan_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *scan_buf_steal(struct scan_buf *b)
{
	char *p;

	if (b->oom) {
		free(b->p);
		memset(b, 0, sizeof(*b));
		return NULL;
	}
	p = b->p ? b->p : strdup("");
	memset(b, 0, sizeof(*b));
	return p;
}

void scan_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void scan_sha256_hex(const void *d, size_t n, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;

	EVP_Digest(d, n, md, &mdlen, EVP_sha256(), NULL);
	scan_hex(md, 32, out);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

long scan_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)in[i], v;

		if (c == '=')
			break;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\\')
			continue;
		v = b64val(c);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)n;
}

void scan_base64_encode(const uint8_t *in, size_t len, char *out, bool pad)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = al[v >> 18];
		out[o++] = al[(v >> 12) & 63];
		out[o++] = al[(v >> 6) & 63];
		out[o++] = al[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = al[v >> 18];
		out[o++] = al[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = al[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
}

double scan_entropy(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t counts[256] = {0};
	double h = 0;

	if (!len)
		return 0;
	for (size_t i = 0; i < len; i++)
		counts[p[i]]++;
	for (int c = 0; c < 256; c++) {
		double f;

		if (!counts[c])
			continue;
		f = (double)counts[c] / (double)len;
		h -= f * log2(f);
	}
	return h;
}

void scan_limits_default(struct scan_limits *l)
{
	l->max_file_size = SCAN_DEFAULT_MAX_FILE_SIZE;
	l->max_depth = SCAN_DEFAULT_MAX_DEPTH;
	l->max_members = SCAN_DEFAULT_MAX_MEMBERS;
	l->max_expanded = SCAN_DEFAULT_MAX_EXPANDED;
	l->max_ratio = SCAN_DEFAULT_MAX_RATIO;
	l->window_before = SCAN_DEFAULT_WINDOW_BEFORE;
	l->window_after = SCAN_DEFAULT_WINDOW_AFTER;
	l->match_limit = SCAN_DEFAULT_MATCH_LIMIT;
	l->depth_limit = SCAN_DEFAULT_DEPTH_LIMIT;
	l->max_findings = SCAN_DEFAULT_MAX_FINDINGS;
	l->max_secret = SCAN_DEFAULT_MAX_SECRET;
}

static const char *const sev_names[] = {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"};
static const char *const conf_names[] = {"example", "likely", "confirmed"};

const char *scan_severity_name(enum scan_severity s)
{
	return (unsigned)s <= SCAN_SEV_CRITICAL ? sev_names[s] : "UNKNOWN";
}

const char *scan_confidence_name(enum scan_confidence c)
{
	return (unsigned)c <= SCAN_CONF_CONFIRMED ? conf_names[c] : "likely";
}

int scan_confidence_parse(const char *name, enum scan_confidence *out)
{
	for (int i = 0; i <= SCAN_CONF_CONFIRMED; i++) {
		if (name && !strcasecmp(name, conf_names[i])) {
			*out = (enum scan_confidence)i;
			return 0;
		}
	}
	return -EINVAL;
}

int scan_severity_parse(const char *name, enum scan_severity *out)
{
	for (int i = 0; i <= SCAN_SEV_CRITICAL; i++) {
		if (name && !strcasecmp(name, sev_names[i])) {
			*out = (enum scan_severity)i;
			return 0;
		}
	}
	return -EINVAL;
}

void scan_stats_add(struct scan_stats *sum, const struct scan_stats *add)
{
	sum->files += add->files;
	sum->bytes += add->bytes;
	sum->skipped_too_large += add->skipped_too_large;
	sum->archives += add->archives;
	sum->members += add->members;
	sum->limit_depth += add->limit_depth;
	sum->limit_members += add->limit_members;
	sum->limit_expanded += add->limit_expanded;
	sum->archive_errors += add->archive_errors;
	sum->regex_limits += add->regex_limits;
	sum->findings += add->findings;
	sum->findings_dropped += add->findings_dropped;
}

void scan_stats_diff(const struct scan_stats *after, const struct scan_stats *before,
                     struct scan_stats *ret)
{
	*ret = (struct scan_stats){
	    .files = after->files - before->files,
	    .bytes = after->bytes - before->bytes,
	    .skipped_too_large = after->skipped_too_large - before->skipped_too_large,
	    .archives = after->archives - before->archives,
	    .members = after->members - before->members,
	    .limit_depth = after->limit_depth - before->limit_depth,
	    .limit_members = after->limit_members - before->limit_members,
	    .limit_expanded = after->limit_expanded - before->limit_expanded,
	    .archive_errors = after->archive_errors - before->archive_errors,
	    .regex_limits = after->regex_limits - before->regex_limits,
	    .findings = after->findings - before->findings,
	    .findings_dropped = after->findings_dropped - before->findings_dropped,
	};
}

/*
 * Directory names under which secrets are test data: package test suites,
 * fixtures, documentation examples. Python's test suite and many gems ship
 * private keys there.
 */
static const char *const example_dirs[] = {
    "test",    "tests",    "testing", "testdata",  "test-data", "test_data", "__tests__",
    "fixture", "fixtures", "example", "examples",  "sample",    "samples",   "mock",
    "mocks",   "spec",     "specs",   "testcases", "unittest",  "unittests", NULL,
};

bool scan_is_example_path(const char *path)
{
	const char *p = path, *base;

	if (!path)
		return false;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	/* Components, '!' of nested archives counting as a separator. */
	while (*p) {
		size_t n = strcspn(p, "/!");

		for (int i = 0; example_dirs[i]; i++) {
			if (p != base && strlen(example_dirs[i]) == n &&
			    !strncasecmp(p, example_dirs[i], n))
				return true;
		}
		p += n;
		while (*p == '/' || *p == '!')
			p++;
	}
	/* File names that say what they are: .env.example, config.sample.yml, test_x.py. */
	if (strcasestr(base, "example") || strcasestr(base, "sample") ||
	    !strncasecmp(base, "test_", 5) || strcasestr(base, "_test.") ||
	    strcasestr(base, ".test.") || strcasestr(base, "fixture"))
		return true;
	return false;
}

static bool all_same(const char *s, size_t len)
{
	for (size_t i = 1; i < len; i++)
		if (s[i] != s[0])
			return false;
	return true;
}

/* Published example credentials that documentation everywhere copies. */
static const char *const known_examples[] = {
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    NULL,
};

/* Substrings (case-insensitive) that mark a placeholder. */
static const char *const placeholder_words[] = {
    "example",     "your-",       "your_",      "yourapi",     "changeme",  "change_me",
    "change-me",   "placeholder", "dummy",      "redacted",    "xxxxxx",    "<",
    "${",          "{{",          "replace_me", "replace-me",  "insert_",   "insert-",
    "todo",        "fake",        "sample",     "0123456789",  "123456789", "abcdefgh",
    "secret_here", "_here",       "-here",      "password123", NULL,
};

const char *scan_example_value(const char *s, size_t len)
{
	char tmp[257];
	size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;

	if (!len)
		return "empty";
	for (int i = 0; known_examples[i]; i++)
		if (len >= strlen(known_examples[i]) &&
		    memmem(s, len, known_examples[i], strlen(known_examples[i])))
			return "published example value";
	if (len >= 4 && all_same(s, len))
		return "one repeated character";
	/* Long secrets (keys) are not judged by their words: base64 can spell anything. */
	if (len > 256)
		return NULL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	for (int i = 0; placeholder_words[i]; i++)
		if (strcasestr(tmp, placeholder_words[i]))
			return "placeholder value";
	return NULL;
}

char *scan_strdup(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}
