/*
 * Rule sets: the built-in set, loading errors, trivy files with unknown keys,
 * lookup, hash stability, merge; and how rules apply: path filters, allow
 * rules (per rule and global), the entropy floor, deduplication, positions,
 * the file size limit and the PCRE2 match limit.
 */
#include "helpers.h"

#include <errno.h>
#include <time.h>

static int load_str(const char *yaml, struct scan_rules **out, struct scan_err *e)
{
	return scan_rules_new_buffer(out, "t.yaml", yaml, strlen(yaml), e);
}

static void test_builtin(void)
{
	struct scan_rules *a = NULL, *b = NULL;
	struct scan_rule_info info;
	const char *h;

	CHECK(scan_rules_new_builtin(&a, NULL) == 0, "built-in rules load");
	CHECK(scan_rules_new_builtin(&b, NULL) == 0, "twice");
	CHECK(a && scan_rules_count(a) >= 3, "built-in rules: %zu", a ? scan_rules_count(a) : 0);
	h = a ? scan_rules_hash(a) : "";
	CHECK(strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64, "hash is 64 hex chars");
	CHECK(a && b && !strcmp(scan_rules_hash(a), scan_rules_hash(b)), "hash is stable");
	CHECK(a && scan_rules_find(a, "no-such-rule", &info) == -ENOENT, "unknown id: -ENOENT");
	scan_rules_free(a);
	scan_rules_free(b);
	scan_rules_free(NULL);
}

static void test_errors(void)
{
	struct scan_rules *r = NULL;
	struct scan_err e = {0};

	CHECK(load_str("rules: [ {id: a", &r, &e) == -EINVAL && strstr(e.msg, "YAML"),
	      "broken YAML: %s", e.msg);
	CHECK(!r, "no rule set on error");
	CHECK(load_str("rules:\n  - id: bad\n    regex: '(unclosed'\n", &r, &e) == -EINVAL &&
	          strstr(e.msg, "rule bad") && strstr(e.msg, "regex"),
	      "bad regex names the rule: %s", e.msg);
	CHECK(load_str("rules:\n  - id: g\n    regex: 'x(?P<s>y)'\n    secret-group-name: t\n", &r,
	               &e) == -EINVAL &&
	          strstr(e.msg, "no group named"),
	      "missing group: %s", e.msg);
	CHECK(load_str("rules:\n  - {id: a, regex: x}\n  - {id: a, regex: y}\n", &r, &e) ==
	              -EINVAL &&
	          strstr(e.msg, "duplicate"),
	      "duplicate id: %s", e.msg);
	CHECK(load_str("rules:\n  - {id: a, regex: x, severity: HUGE}\n", &r, &e) == -EINVAL,
	      "bad severity: %s", e.msg);
	CHECK(load_str("rules:\n  - {title: a, regex: x}\n", &r, &e) == -EINVAL, "rule without id");
	CHECK(scan_rules_new_file(&r, "/nonexistent/rules.yaml", &e) == -ENOENT,
	      "missing file: -ENOENT (%s)", e.msg);
}

/* A file in trivy's documented custom-secret format, with keys strata ignores. */
static const char trivy_yaml[] =
    "rules:\n"
    "  - id: rule1\n"
    "    category: general\n"
    "    title: Generic Rule\n"
    "    severity: HIGH\n"
    "    path: .*\\.sh\n"
    "    keywords:\n"
    "      - secret\n"
    "    regex: (?i)(?P<key>(secret))(=|:).{0,5}['\"](?P<secret>[0-9a-zA-Z\\-_=]{8,64})['\"]\n"
    "    secret-group-name: secret\n"
    "    allow-rules:\n"
    "      - id: skip-text\n"
    "        description: skip text files\n"
    "        path: .*\\.txt\n"
    "    future-key: ignored\n"
    "enable-builtin-rules:\n"
    "  - aws-access-key-id\n"
    "disable-rules:\n"
    "  - slack-access-token\n"
    "allow-rules:\n"
    "  - id: social-security-number\n"
    "    description: skip social security number\n"
    "    regex: 219-09-9999\n";

static void test_trivy_format(void)
{
	struct scan_rules *r = NULL;
	struct scan_err e = {0};
	struct scan_rule_info info;
	struct scan_results *res;
	const struct scan_finding *f;

	CHECK(load_str(trivy_yaml, &r, &e) == 0, "trivy file loads (%s)", e.msg);
	if (!r)
		return;
	CHECK(scan_rules_count(r) == 1, "one rule");
	CHECK(scan_rules_find(r, "rule1", &info) == 0 && !strcmp(info.title, "Generic Rule") &&
	          !strcmp(info.category, "general") && info.severity == SCAN_SEV_HIGH,
	      "lookup by id: title, category, severity");
	res = scan_text(r, "deploy/run.sh", "export secret='Zq7Xp2Lm9Kt4'\n");
	f = find_rule(res, "rule1");
	CHECK(f && !strcmp(f->secret, "Zq7Xp2Lm9Kt4"), "secret group extracted");
	CHECK(f && f->line == 1 && f->column == 16 && f->offset == 15, "line, column, offset");
	scan_results_free(res);
	res = scan_text(r, "deploy/run.txt", "export secret='Zq7Xp2Lm9Kt4'\n");
	CHECK(scan_results_count(res) == 0, "path filter: .sh only");
	scan_results_free(res);
	res = scan_text(r, "deploy/run.sh", "secret='219-09-9999'\n");
	CHECK(scan_results_count(res) == 0, "global allow regex drops the match");
	scan_results_free(res);
	scan_rules_free(r);
}

static void test_apply(struct scan_rules *mini)
{
	struct scan_results *res;
	struct scan_options opt = {.ignore_path_filters = true};
	const struct scan_finding *f;
	char tok[64], text[256];

	res = scan_text(mini, "srv/app/.env", "X=1\nAPI_KEY=k7Qm2XvR9tLp4WzN8sYc\n");
	f = find_rule(res, "dotenv-api-key");
	CHECK(f && f->line == 2 && f->column == 9, "path filter passes .env; line 2 col 9");
	scan_results_free(res);
	res = scan_text(mini, "srv/app/env.txt", "API_KEY=k7Qm2XvR9tLp4WzN8sYc\n");
	CHECK(!find_rule(res, "dotenv-api-key"), "path filter stops other files");
	scan_results_free(res);
	res = scan_text_opt(mini, &opt, "srv/app/env.txt", "API_KEY=k7Qm2XvR9tLp4WzN8sYc\n", 29);
	CHECK(find_rule(res, "dotenv-api-key"), "ignore_path_filters lifts it");
	scan_results_free(res);

	res = scan_text(mini, "etc/app.conf", "password: $DB_PASSWORD_FROM_ENV\n");
	CHECK(!find_rule(res, "generic-password"), "rule allow regex drops a $reference");
	scan_results_free(res);
	res = scan_text(mini, "etc/app.conf", "password: Tq8vR2mLz9pWx4k\n");
	CHECK(find_rule(res, "generic-password"), "a real-looking password is found");
	scan_results_free(res);
	res = scan_text(mini, "etc/app.conf", "password: aaaaaaaabbbb\n");
	CHECK(!find_rule(res, "generic-password"), "entropy floor drops a low-entropy value");
	scan_results_free(res);

	make_token("ghp_", 3, tok);
	snprintf(text, sizeof(text), "token=%s\n", tok);
	res = scan_text(mini, "usr/share/doc/tool/README", text);
	CHECK(scan_results_count(res) == 0, "global path allow rule skips usr/share/doc");
	scan_results_free(res);

	/* same token twice: two findings; keywords close together: no duplicates */
	snprintf(text, sizeof(text), "a=%s ghp_ ghp_ gho_\nb=%s\n", tok, tok);
	res = scan_text(mini, "etc/x", text);
	CHECK(count_rule(res, "github-token") == 2, "one finding per (rule, secret, offset): %zu",
	      count_rule(res, "github-token"));
	scan_results_free(res);
}

static void test_limits(struct scan_rules *mini)
{
	struct scan_limits lim;
	struct scan_options opt = {.limits = &lim};
	struct scan_results *res;
	const char *slow = "rules:\n  - id: slow\n    keywords: [aaa]\n    regex: '(a+)+$'\n";
	struct scan_rules *r = NULL;
	char text[128], tok[64];
	time_t t0;

	scan_limits_default(&lim);
	CHECK(lim.max_file_size == 64ull << 20, "default size limit 64 MiB");
	lim.max_file_size = 50;
	make_token("ghp_", 4, tok);
	snprintf(text, sizeof(text), "token=%s and some more text\n", tok);
	res = scan_text_opt(mini, &opt, "etc/x", text, strlen(text));
	CHECK(scan_results_count(res) == 0 && scan_results_stats(res)->skipped_too_large == 1,
	      "over the size limit: skipped and counted");
	scan_results_free(res);

	load_str(slow, &r, NULL);
	scan_limits_default(&lim);
	lim.match_limit = 10000;
	memset(text, 'a', 60);
	strcpy(text + 60, "!\n");
	t0 = time(NULL);
	res = scan_text_opt(r, &opt, "x", text, strlen(text));
	CHECK(time(NULL) - t0 < 5 && scan_results_stats(res)->regex_limits > 0,
	      "catastrophic regex stopped by the match limit, counted");
	scan_results_free(res);
	scan_rules_free(r);
}

static void test_merge(struct scan_rules *mini)
{
	struct scan_rules *b = NULL;
	struct scan_rule_info info;
	char before[65];
	size_t nb, nm = scan_rules_count(mini), shared = 0;

	scan_rules_new_builtin(&b, NULL);
	nb = scan_rules_count(b);
	for (size_t i = 0; i < nm; i++) {
		scan_rules_get(mini, i, &info);
		struct scan_rule_info x;
		shared += scan_rules_find(b, info.id, &x) == 0;
	}
	strcpy(before, scan_rules_hash(b));
	CHECK(scan_rules_merge(b, mini, NULL) == 0, "merge");
	CHECK(scan_rules_count(b) == nb + nm - shared, "merged count %zu = %zu + %zu - %zu",
	      scan_rules_count(b), nb, nm, shared);
	CHECK(strcmp(before, scan_rules_hash(b)), "hash changes with the set");
	if (shared) {
		struct scan_rule_info a, m;

		scan_rules_find(b, "private-key", &a);
		scan_rules_find(mini, "private-key", &m);
		CHECK(a.severity == m.severity && !strcmp(a.title, m.title),
		      "same id: the merged-in rule replaces");
	}
	scan_rules_free(b);

	/* trivy's disable-rules and disable-allow-rules act on the set merged into */
	{
		struct scan_rules *m = NULL, *d = NULL;
		const char *dis = "disable-rules: [private-key, no-such-rule]\n"
		                  "disable-allow-rules: [docs]\nrules: []\n";
		struct scan_rule_info info;
		struct scan_results *res;
		char tok[64], text[128];

		scan_rules_new_buffer(&m, "mini", NULL, 0, NULL);
		CHECK(scan_rules_merge(m, mini, NULL) == 0 && scan_rules_count(m) == nm,
		      "merge into an empty set");
		CHECK(load_str(dis, &d, NULL) == 0, "disable lists load");
		CHECK(scan_rules_merge(m, d, NULL) == 0 && scan_rules_count(m) == nm - 1 &&
		          scan_rules_find(m, "private-key", &info) == -ENOENT,
		      "disable-rules removes a rule");
		make_token("ghp_", 8, tok);
		snprintf(text, sizeof(text), "t=%s\n", tok);
		res = scan_text(m, "usr/share/doc/x/README", text);
		CHECK(scan_results_count(res) == 1,
		      "disable-allow-rules removes a global allow rule");
		scan_results_free(res);
		scan_rules_free(d);
		d = NULL;
		CHECK(load_str("enable-builtin-rules: [jwt, npm-token]\n", &d, NULL) == 0 &&
		          scan_rules_merge(m, d, NULL) == 0 && scan_rules_count(m) == 2 &&
		          scan_rules_find(m, "jwt", &info) == 0,
		      "enable-builtin-rules keeps only those listed");
		scan_rules_free(m);
		scan_rules_free(d);
	}
}

int main(int argc, char **argv)
{
	struct scan_rules *mini = load_rules(argc > 1 ? argv[1] : MINI_RULES);

	CHECK(mini != NULL, "mini rules load");
	if (!mini)
		return tap_done();
	CHECK(scan_entropy("aaaa", 4) == 0.0 && scan_entropy("abcd", 4) == 2.0, "entropy");
	test_builtin();
	test_errors();
	test_trivy_format();
	test_apply(mini);
	test_limits(mini);
	test_merge(mini);
	scan_rules_free(mini);
	return tap_done();
}
