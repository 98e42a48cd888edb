/*
 * The keyword prefilter: the Aho-Corasick automaton against a naive search
 * (random keywords and texts, case-insensitive), and its role in the engine:
 * regexes run only in windows around keyword hits.
 */
#include "helpers.h"
#include "prefilter.h"

#include <ctype.h>

struct hit {
	uint32_t rule;
	size_t s, e;
};

struct hits {
	struct hit v[100000];
	size_t n;
};

static void on_hit(uint32_t rule, size_t s, size_t e, void *opaque)
{
	struct hits *h = opaque;

	if (h->n < 100000)
		h->v[h->n++] = (struct hit){rule, s, e};
}

static int cmp_hit(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	if (x->e != y->e)
		return x->e < y->e ? -1 : 1;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return x->s < y->s ? -1 : x->s > y->s;
}

static struct hits got, want;

static void test_classic(void)
{
	struct scan_prefilter *pf;

	scan_prefilter_new(&pf);
	scan_prefilter_add(pf, "he", 2, 0);
	scan_prefilter_add(pf, "she", 3, 1);
	scan_prefilter_add(pf, "his", 3, 2);
	scan_prefilter_add(pf, "HERS", 4, 3);
	CHECK(scan_prefilter_build(pf) == 0, "automaton builds");
	got.n = 0;
	scan_prefilter_run(pf, (const uint8_t *)"uShErs", 6, on_hit, &got);
	qsort(got.v, got.n, sizeof(got.v[0]), cmp_hit);
	CHECK(got.n == 3, "ushers: 3 hits (%zu)", got.n);
	CHECK(got.n == 3 && got.v[0].rule == 0 && got.v[0].s == 2 && got.v[1].rule == 1 &&
	          got.v[1].s == 1 && got.v[2].rule == 3 && got.v[2].s == 2 && got.v[2].e == 6,
	      "he@2, she@1, hers@2..6");
	scan_prefilter_free(pf);
}

static void test_random(void)
{
	unsigned seed = 12345;
	bool all_ok = true;

	for (int round = 0; round < 50; round++) {
		struct scan_prefilter *pf;
		char kws[20][6], text[2000];
		size_t nk = 1 + (size_t)(rand_r(&seed) % 20), tl = sizeof(text);

		scan_prefilter_new(&pf);
		for (size_t k = 0; k < nk; k++) {
			size_t l = 1 + (size_t)(rand_r(&seed) % 5);

			for (size_t i = 0; i < l; i++)
				kws[k][i] = "abcAB_"[rand_r(&seed) % 6];
			kws[k][l] = '\0';
			scan_prefilter_add(pf, kws[k], l, (uint32_t)k);
		}
		scan_prefilter_build(pf);
		for (size_t i = 0; i < tl; i++)
			text[i] = "abcABC_\n"[rand_r(&seed) % 8];
		got.n = want.n = 0;
		scan_prefilter_run(pf, (uint8_t *)text, tl, on_hit, &got);
		for (size_t k = 0; k < nk; k++) {
			size_t l = strlen(kws[k]);

			for (size_t i = 0; i + l <= tl; i++)
				if (!strncasecmp(text + i, kws[k], l))
					want.v[want.n++] = (struct hit){(uint32_t)k, i, i + l};
		}
		qsort(got.v, got.n, sizeof(got.v[0]), cmp_hit);
		qsort(want.v, want.n, sizeof(want.v[0]), cmp_hit);
		if (got.n != want.n || memcmp(got.v, want.v, got.n * sizeof(got.v[0])))
			all_ok = false;
		scan_prefilter_free(pf);
	}
	CHECK(all_ok, "Aho-Corasick equals a naive case-insensitive search on 50 random sets");
}

/*
 * Long texts go through the automaton as several streams over consecutive
 * blocks: hits near block edges, with keywords longer than a few bytes, must
 * all come out, once, and in end order, as from a single pass.
 */
static void test_streams(void)
{
	static struct hits bgot, bwant;
	unsigned seed = 777;
	bool all_ok = true, ordered = true;

	for (int round = 0; round < 6; round++) {
		struct scan_prefilter *pf;
		char kws[8][41];
		size_t nk = 2 + (size_t)(rand_r(&seed) % 6);
		size_t tl = (size_t)(200000 + rand_r(&seed) % 900000);
		char *text = malloc(tl);

		scan_prefilter_new(&pf);
		for (size_t k = 0; k < nk; k++) {
			size_t l = 3 + (size_t)(rand_r(&seed) % 38);

			for (size_t i = 0; i < l; i++)
				kws[k][i] = "abAB"[rand_r(&seed) % 4];
			kws[k][l] = '\0';
			scan_prefilter_add(pf, kws[k], l, (uint32_t)k);
		}
		scan_prefilter_build(pf);
		/* mostly filler, with keywords planted everywhere, edges included */
		for (size_t i = 0; i < tl; i++)
			text[i] = "abxyz\n"[rand_r(&seed) % 6];
		for (size_t i = 0; i + 40 < tl; i += 1 + (size_t)(rand_r(&seed) % 3000)) {
			const char *k = kws[rand_r(&seed) % nk];

			memcpy(text + i, k, strlen(k));
		}
		for (size_t edge = 65536; edge + 40 < tl; edge += 65536) {
			const char *k = kws[rand_r(&seed) % nk];
			size_t l = strlen(k), at = edge - (size_t)(rand_r(&seed) % (l + 1));

			memcpy(text + at, k, l);
		}
		bgot.n = bwant.n = 0;
		scan_prefilter_run(pf, (uint8_t *)text, tl, on_hit, &bgot);
		for (size_t i = 1; i < bgot.n; i++)
			if (bgot.v[i].e < bgot.v[i - 1].e)
				ordered = false;
		for (size_t k = 0; k < nk; k++) {
			size_t l = strlen(kws[k]);

			for (size_t i = 0; i + l <= tl && bwant.n < 100000; i++)
				if (!strncasecmp(text + i, kws[k], l))
					bwant.v[bwant.n++] = (struct hit){(uint32_t)k, i, i + l};
		}
		qsort(bgot.v, bgot.n, sizeof(bgot.v[0]), cmp_hit);
		qsort(bwant.v, bwant.n, sizeof(bwant.v[0]), cmp_hit);
		if (bgot.n != bwant.n || memcmp(bgot.v, bwant.v, bgot.n * sizeof(bgot.v[0])))
			all_ok = false;
		scan_prefilter_free(pf);
		free(text);
	}
	CHECK(ordered, "long texts: hits come in end order");
	CHECK(all_ok, "long texts: every hit once, as a naive search finds them");
}

static const char gated_rules[] = "rules:\n"
                                  "  - id: gated\n"
                                  "    title: gated\n"
                                  "    severity: HIGH\n"
                                  "    keywords: [tok_]\n"
                                  "    regex: 'tok_[a-z]{8}|zzz[0-9]{6}'\n"
                                  "  - id: ungated\n"
                                  "    title: no keywords\n"
                                  "    severity: LOW\n"
                                  "    regex: 'qqq[0-9]{6}'\n";

static void test_engine(void)
{
	struct scan_rules *r = NULL;
	struct scan_results *res;
	struct scan_limits lim;
	struct scan_options opt = {.limits = &lim};
	char *big;
	size_t n = 200000;

	CHECK(scan_rules_new_buffer(&r, "gated", gated_rules, sizeof(gated_rules) - 1, NULL) == 0,
	      "rules load");
	res = scan_text(r, "a.txt", "value zzz123456\n");
	CHECK(count_rule(res, "gated") == 0, "no keyword: the regex does not run");
	scan_results_free(res);
	res = scan_text(r, "a.txt", "TOK_ here, then zzz123456\n");
	CHECK(count_rule(res, "gated") == 1, "keyword (any case) opens a window: zzz found");
	scan_results_free(res);
	res = scan_text(r, "a.txt", "x qqq123456\n");
	CHECK(count_rule(res, "ungated") == 1, "a rule without keywords scans the whole buffer");
	scan_results_free(res);

	/* a match far beyond window_after of the only keyword is not looked for */
	big = malloc(n);
	memset(big, ' ', n);
	memcpy(big, "tok_", 4);
	memcpy(big + 150000, "zzz654321", 9);
	scan_limits_default(&lim);
	res = scan_text_opt(r, &opt, "b.bin", big, n);
	CHECK(count_rule(res, "gated") == 0, "window bounded by window_after");
	scan_results_free(res);
	lim.window_after = 180000;
	res = scan_text_opt(r, &opt, "b.bin", big, n);
	CHECK(count_rule(res, "gated") == 1, "a wider window finds it");
	CHECK(res && find_rule(res, "gated") && find_rule(res, "gated")->offset == 150000,
	      "byte offset of the match");
	scan_results_free(res);
	free(big);
	scan_rules_free(r);
}

int main(void)
{
	test_classic();
	test_random();
	test_streams();
	test_engine();
	return tap_done();
}
