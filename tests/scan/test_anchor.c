/*
 * Anchors (scan/anchor.c): what the pattern reader proves on hand-made
 * patterns, that its claim holds on every example of the built-in rules
 * (each match holds an anchor hit at most `back` bytes after its start),
 * and that the engine finds exactly the same findings with anchors as by
 * trying every position of every window, on a long text made of the rules'
 * examples, keywords and noise.
 */
#include "helpers.h"
#include "anchor.h"
#include "rules.h"

#include <ctype.h>

static bool anchors_are(const char *re, const char *const *kw, size_t nkw, const char *want)
{
	struct scan_anchor a[SCAN_ANCHOR_MAX];
	size_t kwlen[8], n;
	char got[2048] = "";

	for (size_t i = 0; i < nkw; i++)
		kwlen[i] = strlen(kw[i]);
	if (scan_regex_anchors(re, 3, kw, kwlen, nkw, a, &n, NULL) < 0)
		snprintf(got, sizeof(got), "none");
	for (size_t i = 0; got[0] != 'n' && i < n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%.*s/%u", i ? " " : "",
		         (int)a[i].len, a[i].s, a[i].back);
	if (strcmp(got, want))
		printf("# %s: got '%s', want '%s'\n", re, got, want);
	return !strcmp(got, want);
}

static void test_patterns(void)
{
	static const char *const pw[] = {"pass", "pwd"};
	static const char *const kw_ac[] = {"ac0", "ac1"};

	CHECK(anchors_are("(?<![A-Za-z0-9])(?:[A-Za-z0-9_.-]{0,40}(?:[_.-]|[a-z0-9](?=P)))?"
	                  "(?i:password|passwd|pwd|pass)[ \\t]*=",
	                  pw, 2, "pass/41 pwd/41"),
	      "an optional name of up to 41 bytes before the keyword");
	CHECK(anchors_are("AC[01][a-f0-9]{32}", kw_ac, 2, "ac0/0 ac1/0"),
	      "a literal joined with a small class gives the keywords");
	CHECK(anchors_are("(?:foo|ba)r+=", NULL, 0, "foor/0 bar/0"),
	      "no keywords: the literals themselves, first repeat joined");
	CHECK(anchors_are("x{2,5}hello", NULL, 0, "xxhello/0 xxxhello/0 xxxxhello/0 xxxxxhello/0"),
	      "a short counted repeat is spelled out");
	CHECK(anchors_are("[0-9]{1,3}\\.secret", NULL, 0, ".secret/3"),
	      "a bounded class run before the literal");
	CHECK(anchors_are("(?P<k>ab)c(?P=k)defg", NULL, 0, "abc/0"),
	      "a back reference ends the literal");
	CHECK(anchors_are("[ \\t]*password", pw, 2, "none"),
	      "an unbounded run before, lead not asked for: none");
	CHECK(anchors_are("ab|cde", NULL, 0, "none"), "a branch without a 3-byte literal: none");
	CHECK(anchors_are("abc\\Kdef", NULL, 0, "none"), "\\K: none");
	CHECK(anchors_are("(*COMMIT)abcdef", NULL, 0, "none"), "verbs: none");
	CHECK(anchors_are("(?x)abc def", NULL, 0, "none"), "extended syntax: none");
	CHECK(anchors_are("a{,3}password", pw, 2, "none"), "{,n}: none");
	CHECK(anchors_are("\\p{L}password", pw, 2, "none"), "Unicode properties: none");
	CHECK(anchors_are("(?:abc)?", NULL, 0, "none"), "may match nothing: none");
}

static void test_lead(void)
{
	static const char *const pw[] = {"password", "pwd"};
	struct scan_anchor a[SCAN_ANCHOR_MAX];
	size_t kwlen[] = {8, 3}, n = 0;
	uint8_t lead[32];
	int rc;

	rc = scan_regex_anchors("(?m)^[ \\t]*(?i:password|pwd)[ \\t]*=", 3, pw, kwlen, 2, a, &n,
	                        lead);
	CHECK(rc == 0 && n == 2 && a[0].back == 0 && a[1].back == 0 &&
	          lead[' ' >> 3] == (1u << (' ' & 7)) && lead['\t' >> 3] == (1u << ('\t' & 7)),
	      "a leading [ \\t]* becomes the lead class, out of the distance");
	rc = scan_regex_anchors("x[ \\t]*password", 3, pw, kwlen, 2, a, &n, lead);
	CHECK(rc < 0, "a run after the first byte is no lead: none");
	rc = scan_regex_anchors("(?<=;)[ \\t]*pwd|[a-c]*password", 3, pw, kwlen, 2, a, &n, lead);
	CHECK(rc == 0 && lead['a' >> 3] & (1u << ('a' & 7)) && lead[' ' >> 3] & (1u << (' ' & 7)),
	      "each branch may lead, the classes add up");
}

/* ---- the claim, on every example ---------------------------------------- */

struct ahits {
	const struct scan_rules *rs;
	uint32_t rule;
	size_t s[4096], back[4096];
	size_t n;
};

static void on_ahit(uint32_t tag, size_t s, size_t e, void *opaque)
{
	struct ahits *h = opaque;
	const struct scan_kwtag *t = &h->rs->tags[tag];

	(void)e;
	if (t->rule == h->rule && t->anchor && h->n < 4096) {
		h->s[h->n] = s;
		h->back[h->n++] = t->back;
	}
}

/* Every match of rule ri in text holds an anchor hit within back of its start. */
static bool claim_holds(const struct scan_rules *rs, uint32_t ri, const char *text, size_t len)
{
	const struct scan_rule *r = rs->rules[ri];
	pcre2_match_data *md = pcre2_match_data_create(rs->max_groups + 1, NULL);
	static struct ahits h;
	size_t off = 0;
	bool ok = true;

	h.rs = rs;
	h.rule = ri;
	h.n = 0;
	scan_prefilter_run(rs->pf, (const uint8_t *)text, len, on_ahit, &h);
	while (off <= len) {
		int rc = pcre2_match(r->regex, (PCRE2_SPTR)text, len, off, 0, md, NULL);
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		bool found = false;

		if (rc < 0)
			break;
		for (size_t i = 0; i < h.n && !found; i++) {
			size_t at = ov[0];

			/* a match may start with a run of lead bytes, out of back */
			while (r->has_lead && at < h.s[i] &&
			       (r->lead[(uint8_t)text[at] >> 3] & (1u << ((uint8_t)text[at] & 7))))
				at++;
			found = h.s[i] >= ov[0] &&
			        (h.s[i] <= ov[0] + h.back[i] || h.s[i] <= at + h.back[i]);
		}
		if (!found) {
			printf("# %s: match at %zu without an anchor\n", r->id, (size_t)ov[0]);
			ok = false;
		}
		off = ov[1] > off ? ov[1] : off + 1;
	}
	pcre2_match_data_free(md);
	return ok;
}

static void test_claim(const struct scan_rules *rs)
{
	size_t anchored = 0, checked = 0;
	bool ok = true;

	for (size_t i = 0; i < rs->n; i++) {
		const struct scan_rule *r = rs->rules[i];

		if (!r->anchored)
			continue;
		anchored++;
		for (int m = 0; m < 2; m++) {
			char *const *ex = m ? r->ex_match : r->ex_nomatch;
			size_t n = m ? r->nex_match : r->nex_nomatch;

			for (size_t k = 0; k < n; k++) {
				char *t;

				ok = claim_holds(rs, (uint32_t)i, ex[k], strlen(ex[k])) && ok;
				if (asprintf(&t, "x = %s;\n%s %s", ex[k], ex[k], ex[k]) < 0)
					abort();
				ok = claim_holds(rs, (uint32_t)i, t, strlen(t)) && ok;
				free(t);
				checked++;
			}
		}
	}
	printf("# %zu of %zu rules anchored, %zu examples\n", anchored, rs->n, checked);
	CHECK(anchored > rs->n / 2, "most built-in rules have anchors (%zu)", anchored);
	CHECK(ok, "every match of every example holds an anchor within its distance");
}

/* ---- same findings as the search at every position ---------------------- */

static unsigned rnd(unsigned *seed, unsigned n)
{
	return (unsigned)rand_r(seed) % n;
}

static void put(struct scan_buf *b, const char *s, size_t n, unsigned *seed, bool flip)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (flip && rnd(seed, 4) == 0)
			c = (char)(isupper((unsigned char)c) ? tolower((unsigned char)c)
			                                     : toupper((unsigned char)c));
		scan_buf_add(b, &c, 1);
	}
}

/* Examples, keywords and noise, mixed: lots of near misses around anchors. */
static char *make_text(const struct scan_rules *rs, size_t want, size_t *len)
{
	static const char noise[] =
	    "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-.=:'\" \t\n/{}[];,@";
	struct scan_buf b = {0};
	unsigned seed = 4242;

	while (b.len < want && !b.oom) {
		const struct scan_rule *r = rs->rules[rnd(&seed, (unsigned)rs->n)];
		unsigned what = rnd(&seed, 6), n;

		if (what == 0 && r->nex_match) {
			const char *ex = r->ex_match[rnd(&seed, (unsigned)r->nex_match)];

			/* indented, or after a ';', sometimes far: for lead classes */
			if (rnd(&seed, 3) == 0) {
				scan_buf_add(&b, &"\n;"[rnd(&seed, 2)], 1);
				for (n = rnd(&seed, 2) ? rnd(&seed, 8) : rnd(&seed, 400); n; n--)
					scan_buf_add(&b, &" \t"[rnd(&seed, 2)], 1);
			}
			put(&b, ex, strlen(ex), &seed, false);
		} else if (what == 1 && r->nex_nomatch) {
			const char *ex = r->ex_nomatch[rnd(&seed, (unsigned)r->nex_nomatch)];

			put(&b, ex, strlen(ex), &seed, false);
		} else if (what == 2 && r->nex_match) {
			/* an example cut short or with a byte changed */
			const char *ex = r->ex_match[rnd(&seed, (unsigned)r->nex_match)];
			size_t l = strlen(ex);

			put(&b, ex, l > 4 ? l - 1 - rnd(&seed, 4) : l, &seed, true);
		} else if (what == 3 && r->nkeywords) {
			const char *kw = r->keywords[rnd(&seed, (unsigned)r->nkeywords)];

			put(&b, kw, strlen(kw), &seed, true);
		} else if (what == 4) {
			for (n = rnd(&seed, 60); n; n--)
				scan_buf_add(&b, &"abcdefghij_.-0123456789"[rnd(&seed, 23)], 1);
		} else {
			for (n = rnd(&seed, 200); n; n--)
				scan_buf_add(&b, &noise[rnd(&seed, sizeof(noise) - 1)], 1);
		}
		scan_buf_add(&b, &" =:\n\"'"[rnd(&seed, 6)], 1);
	}
	*len = b.len;
	return scan_buf_steal(&b);
}

static int collect_all(const struct scan_finding *f, void *opaque)
{
	struct scan_finding tmp = *f;

	tmp.context_only = false;
	return scan_results_add(&tmp, opaque);
}

static struct scan_results *scan_all(const struct scan_rules *rs, const char *text, size_t len,
                                     struct scan_stats *st)
{
	struct scan_options opt = {.ignore_path_filters = true, .no_nested = true};
	struct scan_target t = {.path = "srv/app/settings.conf", .layer = 0};
	struct scan_scanner *s;
	struct scan_results *res;

	if (scan_results_new(&res) || scan_scanner_new(&s, rs, &opt, NULL))
		abort();
	scan_buffer(s, &t, text, len, collect_all, res);
	scan_scanner_stats(s, st);
	scan_scanner_free(s);
	scan_results_finish(res);
	return res;
}

static void test_same_findings(const char *path)
{
	struct scan_rules *with = load_rules(path), *without = load_rules(path);
	struct scan_results *a, *b;
	struct scan_stats sa, sb;
	size_t len, same = 0;
	char *text;

	if (!with || !without) {
		CHECK(false, "rules load");
		return;
	}
	for (size_t i = 0; i < without->n; i++)
		without->rules[i]->anchored = false;
	text = make_text(with, 1500000, &len);
	a = scan_all(with, text, len, &sa);
	b = scan_all(without, text, len, &sb);
	for (size_t i = 0; i < scan_results_count(a) && i < scan_results_count(b); i++) {
		const struct scan_finding *x = scan_results_get(a, i), *y = scan_results_get(b, i);

		if (!strcmp(x->rule_id, y->rule_id) && x->offset == y->offset &&
		    !strcmp(x->secret, y->secret) && x->confidence == y->confidence)
			same++;
		else if (i - same < 5)
			printf("# %zu: %s@%zu vs %s@%zu\n", i, x->rule_id, (size_t)x->offset,
			       y->rule_id, (size_t)y->offset);
	}
	printf("# %zu bytes, %zu findings with anchors, %zu without\n", len, scan_results_count(a),
	       scan_results_count(b));
	CHECK(scan_results_count(a) > 100, "the text has findings (%zu)", scan_results_count(a));
	CHECK(scan_results_count(a) == scan_results_count(b) && same == scan_results_count(a),
	      "anchored search: the same findings as the search at every position");
	CHECK(sa.regex_limits == 0 && sb.regex_limits == 0, "no regex limit hit either way");
	scan_results_free(a);
	scan_results_free(b);
	free(text);
	scan_rules_free(with);
	scan_rules_free(without);
}

int main(int argc, char **argv)
{
	struct scan_rules *rs;

	test_patterns();
	test_lead();
	if (argc < 2) {
		printf("# no rule file given: examples skipped\n");
		return tap_done();
	}
	rs = load_rules(argv[1]);
	CHECK(rs != NULL, "%s loads", argv[1]);
	if (rs)
		test_claim(rs);
	scan_rules_free(rs);
	test_same_findings(argv[1]);
	return tap_done();
}
