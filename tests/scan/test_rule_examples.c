/*
 * Rule examples: loads the rule file given as argument and checks, for every
 * rule, that each examples.match string yields a finding of that rule (at any
 * confidence: a published example value is still a match) and that no
 * examples.nomatch string yields one at confidence likely or above (the
 * default report). Path filters are lifted, since examples carry no path.
 * Run on tests/scan/rules-mini.yaml and on the built-in scan/rules.yaml.
 */
#include "helpers.h"

static bool has(const struct scan_results *r, const char *id, enum scan_confidence min)
{
	for (size_t i = 0; i < scan_results_count(r); i++) {
		const struct scan_finding *f = scan_results_get(r, i);

		if (!strcmp(f->rule_id, id) && f->confidence >= min)
			return true;
	}
	return false;
}

/* Context-only rules never report findings: collect those matches too. */
static int collect_all(const struct scan_finding *f, void *opaque)
{
	struct scan_finding tmp = *f;

	tmp.context_only = false;
	return scan_results_add(&tmp, opaque);
}

int main(int argc, char **argv)
{
	struct scan_rules *rules;
	struct scan_options opt = {.ignore_path_filters = true};
	struct scan_scanner *s;
	size_t nrules, nex = 0, without = 0;

	if (argc < 2) {
		printf("1..0 # SKIP usage: test_rule_examples RULES.yaml\n");
		return 0;
	}
	rules = load_rules(argv[1]);
	CHECK(rules != NULL, "%s loads", argv[1]);
	if (!rules)
		return tap_done();
	scan_scanner_new(&s, rules, &opt, NULL);
	nrules = scan_rules_count(rules);
	for (size_t i = 0; i < nrules; i++) {
		struct scan_rule_info info;
		const char *const *ex;
		size_t n;

		scan_rules_get(rules, i, &info);
		if (!info.has_examples)
			without++;
		for (int want = 1; want >= 0; want--) {
			n = scan_rules_examples(rules, i, want, &ex);
			for (size_t k = 0; k < n; k++) {
				struct scan_results *r;
				struct scan_target t = {.path = "srv/app/settings.conf",
				                        .layer = 0};
				bool got;

				scan_results_new(&r);
				/* before scan_results_finish, which keeps one finding of
				 * several rules matching one secret: this is about each rule */
				scan_buffer(s, &t, ex[k], strlen(ex[k]), collect_all, r);

				got = has(r, info.id, want ? SCAN_CONF_EXAMPLE : SCAN_CONF_LIKELY);
				CHECK(want ? got : !got, "%s: %s example %zu %s", info.id,
				      want ? "match" : "nomatch", k,
				      want ? "found" : "not reported");
				if (got != want)
					printf("#   example: %.200s\n", ex[k]);
				scan_results_free(r);
				nex++;
			}
		}
	}
	printf("# %zu rules, %zu examples, %zu rules without examples\n", nrules, nex, without);
	scan_scanner_free(s);
	scan_rules_free(rules);
	return tap_done();
}
