/*
 * helpers.h: shared by the scanner tests: load a rule set, scan a string
 * into a results object, look findings up, and make fake tokens whose CRC32
 * checksum is valid (never real ones: the random part comes from a seed).
 */
#ifndef STRATA_TEST_SCAN_HELPERS_H
#define STRATA_TEST_SCAN_HELPERS_H

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "scan.h"
#include "tap.h"

#ifndef MINI_RULES
#define MINI_RULES "rules-mini.yaml"
#endif

static inline struct scan_rules *load_rules(const char *path)
{
	struct scan_rules *r = NULL;
	struct scan_err e = {0};

	if (scan_rules_new_file(&r, path, &e) < 0) {
		printf("# loading %s: %s\n", path, e.msg);
		return NULL;
	}
	return r;
}

static inline struct scan_results *scan_text_opt(const struct scan_rules *rules,
                                                 const struct scan_options *opt, const char *path,
                                                 const void *text, size_t len)
{
	struct scan_scanner *s = NULL;
	struct scan_results *res = NULL;
	struct scan_target t = {.path = path, .visibility = "live", .layer = 0};
	struct scan_stats st;
	int rc;

	if (scan_results_new(&res) || scan_scanner_new(&s, rules, opt, NULL))
		abort();
	rc = scan_buffer(s, &t, text, len, scan_results_add, res);
	if (rc < 0)
		printf("# scan_buffer: %d\n", rc);
	scan_scanner_stats(s, &st);
	scan_results_add_stats(res, &st);
	scan_scanner_free(s);
	scan_results_finish(res);
	return res;
}

static inline struct scan_results *scan_text(const struct scan_rules *rules, const char *path,
                                             const char *text)
{
	return scan_text_opt(rules, NULL, path, text, strlen(text));
}

/* The first finding of a rule, or NULL. */
static inline const struct scan_finding *find_rule(const struct scan_results *r, const char *id)
{
	for (size_t i = 0; i < scan_results_count(r); i++)
		if (!strcmp(scan_results_get(r, i)->rule_id, id))
			return scan_results_get(r, i);
	return NULL;
}

static inline size_t count_rule(const struct scan_results *r, const char *id)
{
	size_t n = 0;

	for (size_t i = 0; i < scan_results_count(r); i++)
		n += !strcmp(scan_results_get(r, i)->rule_id, id);
	return n;
}

/* PREFIX + 30 pseudo-random base62 characters + base62(CRC32) (6 digits). */
static inline void make_token(const char *prefix, unsigned seed, char *out)
{
	static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t pl = strlen(prefix);
	uint32_t crc, x = seed * 2654435761u + 12345u;

	memcpy(out, prefix, pl);
	for (int i = 0; i < 30; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[pl + i] = al[x % 62];
	}
	crc = (uint32_t)crc32(0L, (const Bytef *)out + pl, 30);
	for (int i = 5; i >= 0; i--) {
		out[pl + 30 + i] = al[crc % 62];
		crc /= 62;
	}
	out[pl + 36] = '\0';
}

#endif
