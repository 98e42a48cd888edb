/*
 * Findings and reports: redaction, context without the secret, fingerprint
 * stability (same rule+secret+path: same fingerprint, whatever the layer or
 * offset), JSON Lines key order and --show-secrets, the text table, ignore
 * files, the min-confidence filter, deterministic order across threads, and
 * vendor content (dpkg md5sums, apk installed db).
 */
#include "helpers.h"
#include "util.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <unistd.h>

static struct scan_rules *rules;
static char tok[64], tok2[64];

static char *report(struct scan_results *r, int kind, bool show, bool color)
{
	struct scan_report_options o = {.show_secrets = show, .color = color, .rules = rules};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (kind == 0)
		scan_report_jsonl(f, r, &o, NULL);
	else
		scan_report_text(f, r, &o, NULL);
	fclose(f);
	return buf;
}

static void test_redaction(void)
{
	char text[256], want[80], fp[65], in[200];
	struct scan_results *r;
	const struct scan_finding *f;
	char *out;

	snprintf(text, sizeof(text), "line one\n# token below\nexport GH_TOKEN=%s # ci\nlast\n",
	         tok);
	r = scan_text(rules, "app/deploy.sh", text);
	f = find_rule(r, "github-token");
	CHECK(f && !strcmp(f->redacted, "ghp_\u2026(40)"), "redacted: %s", f ? f->redacted : "-");
	CHECK(f && !strstr(f->context, tok) &&
	          strstr(f->context, "export GH_TOKEN=ghp_\u2026(40) # ci") &&
	          strstr(f->context, "# token below") && strstr(f->context, "last"),
	      "context: lines around, secret redacted:\n%s", f ? f->context : "-");
	CHECK(f && strstr(f->context_raw, tok), "raw context keeps the secret");
	snprintf(in, sizeof(in), "github-token%c%s%capp/deploy.sh", 0, tok, 0);
	scan_sha256_hex(in, strlen("github-token") + 1 + 40 + 1 + strlen("app/deploy.sh"), fp);
	fp[32] = '\0';
	CHECK(f && !strcmp(f->fingerprint, fp), "fingerprint = sha256(rule, secret, path)[:32]");
	snprintf(want, sizeof(want), "%s", f ? f->fingerprint : "");

	out = report(r, 0, false, false);
	CHECK(!strstr(out, tok), "JSONL: no secret by default");
	static const char head[] =
	    "{\"rule\":\"github-token\",\"title\":\"GitHub token\",\"category\":\"GitHub\","
	    "\"severity\":\"CRITICAL\",\"confidence\":\"confirmed\",\"visibility\":\"live\","
	    "\"layer\":0,\"layer_digest\":null,\"created_by\":null,\"path\":\"app/deploy.sh\",";
	CHECK(!strncmp(out, head, sizeof(head) - 1), "JSONL: fixed key order: %.160s", out);
	CHECK(strstr(out, "\"match\":\"ghp_\\u2026(40)\"") &&
	          strstr(out, "\"line\":3,\"column\":17"),
	      "JSONL: match and position");
	free(out);
	out = report(r, 0, true, false);
	CHECK(strstr(out, tok) && strstr(out, "\"secret\":"), "JSONL --show-secrets prints it");
	free(out);
	out = report(r, 1, false, false);
	CHECK(strstr(out, "github-token") && strstr(out, "app/deploy.sh:3:17") &&
	          !strstr(out, tok) && !strstr(out, "\033["),
	      "text table, no colour unless asked:\n%s", out);
	free(out);
	out = report(r, 1, false, true);
	CHECK(strstr(out, "\033[1;31mCRITICAL"), "colour when asked");
	free(out);
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		scan_report_summary(m, r, NULL);
		fclose(m);
		CHECK(strstr(buf, "findings: 1 (confirmed 1, likely 0, example 0)") &&
		          strstr(buf, "live       1") && strstr(buf, "github-token") &&
		          strstr(buf, "scanned: 1 files"),
		      "summary:\n%s", buf);
		free(buf);
		buf = NULL;
		m = open_memstream(&buf, &len);
		scan_report_finding(m, f, false, NULL);
		fclose(m);
		CHECK(strstr(buf, "confidence:  confirmed") &&
		          strstr(buf, "path:        app/deploy.sh") &&
		          strstr(buf, "why:         checksum valid") && !strstr(buf, tok) &&
		          strstr(buf, "export GH_TOKEN=ghp_"),
		      "one finding for people:\n%s", buf);
		free(buf);
	}
	scan_results_free(r);

	/* a file name that is not UTF-8 (latin-1 from an old tar): still a full record */
	r = scan_text(rules, "srv/caf\xe9/deploy.sh", text);
	out = report(r, 0, false, false);
	CHECK(strstr(out, "\"path\":\"srv/caf?/deploy.sh\"") && strstr(out, "\"fingerprint\":"),
	      "non-UTF-8 path: JSON keeps every key");
	free(out);
	scan_results_free(r);

	/* same secret, same path, other layer and offset: same fingerprint */
	snprintf(text, sizeof(text), "\n\n\n   x=%s\n", tok);
	r = scan_text(rules, "app/deploy.sh", text);
	f = find_rule(r, "github-token");
	CHECK(f && !strcmp(f->fingerprint, want), "fingerprint stable across offsets");
	scan_results_free(r);
	r = scan_text(rules, "app/other.sh", text);
	f = find_rule(r, "github-token");
	CHECK(f && strcmp(f->fingerprint, want), "another path: another fingerprint");
	scan_results_free(r);
}

static void test_filters(void)
{
	char text[512], path[] = "/tmp/strata-ignore-XXXXXX";
	struct scan_results *r;
	struct scan_ignore *ign = NULL;
	FILE *f;
	int fd;
	size_t n;

	snprintf(text, sizeof(text), "a=%s\nb=%s\nkey=AKIAIOSFODNN7EXAMPLE\n", tok, tok2);
	r = scan_text(rules, "etc/app.conf", text);
	n = scan_results_count(r);
	CHECK(n == 3, "3 findings (%zu)", n);
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fprintf(f, "# reviewed, rotated\n  %s   # the first token\n\n",
	        find_rule(r, "github-token")->fingerprint);
	fclose(f);
	CHECK(scan_ignore_load_file(&ign, path, NULL) == 0, "ignore file loads");
	CHECK(scan_results_filter(r, SCAN_CONF_LIKELY, ign) == 2 && scan_results_count(r) == 1,
	      "ignore drops the listed one, min-confidence the example");
	CHECK(scan_results_count(r) == 1 && strstr(scan_results_get(r, 0)->secret, tok2),
	      "the other token stays");
	unlink(path);
	scan_ignore_free(ign);
	scan_ignore_free(NULL);
	scan_results_free(r);
}

struct job {
	struct scan_results *res;
	int half;
	char texts[8][128];
};

static void *worker(void *arg)
{
	struct job *j = arg;
	struct scan_scanner *s;

	scan_scanner_new(&s, rules, NULL, NULL);
	for (int i = 0; i < 8; i++) {
		int k = j->half ? 7 - i : i;
		char p[32];
		struct scan_target t = {.path = p, .visibility = "live", .layer = k % 3};

		snprintf(p, sizeof(p), "f/%d.txt", k);
		scan_buffer(s, &t, j->texts[k], strlen(j->texts[k]), scan_results_add, j->res);
	}
	scan_scanner_free(s);
	return NULL;
}

static char *run_threads(struct job *tmpl, bool reverse)
{
	struct scan_results *res;
	pthread_t th[2];
	struct job jobs[2];
	char *out;

	scan_results_new(&res);
	for (int i = 0; i < 2; i++) {
		jobs[i] = *tmpl;
		jobs[i].res = res;
		jobs[i].half = reverse ? !i : i;
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	scan_results_finish(res);
	/* each file was scanned twice: the order must not depend on the threads */
	out = report(res, 0, false, false);
	scan_results_free(res);
	return out;
}

static void test_order(void)
{
	static struct job tmpl;
	char *a, *b;

	for (int i = 0; i < 8; i++) {
		char t[64];

		make_token("ghp_", 300 + (unsigned)i, t);
		snprintf(tmpl.texts[i], sizeof(tmpl.texts[i]), "x\ny=%s z=%s\n", t,
		         i % 2 ? "AKIAZ7V4SEH2KVJ72CEU" : "none");
	}
	a = run_threads(&tmpl, false);
	b = run_threads(&tmpl, true);
	CHECK(a && b && !strcmp(a, b) && strlen(a) > 100, "two threaded runs: identical output");
	{
		size_t lines = 0;

		for (const char *p = a; (p = strchr(p, '\n')); p++)
			lines++;
		CHECK(lines == 12, "each file scanned twice, reported once (%zu lines)", lines);
	}
	CHECK(strstr(a, "\"layer\":0") < strstr(a, "\"layer\":1") &&
	          strstr(a, "\"layer\":1") < strstr(a, "\"layer\":2"),
	      "sorted by layer first");
	free(a);
	free(b);
}

static void test_vendor(void)
{
	struct scan_vendor *v = NULL;
	struct scan_options opt = {0};
	char text[256], md5sums[512], hex[33], apk[512], sha1b64[40];
	unsigned char md[20];
	unsigned l;
	struct scan_results *r;
	const struct scan_finding *f;

	snprintf(text, sizeof(text), "TEST_TOKEN = '%s'\n", tok);
	EVP_Digest(text, strlen(text), md, &l, EVP_md5(), NULL);
	scan_hex(md, 16, hex);
	snprintf(
	    md5sums, sizeof(md5sums),
	    "0123456789abcdef0123456789abcdef  usr/bin/tool\n%s  usr/lib/python3/tool/conf.py\n",
	    hex);
	scan_vendor_new(&v);
	CHECK(scan_vendor_add_db_file(v, "/var/lib/dpkg/info/python3-tool:amd64.md5sums", md5sums,
	                              strlen(md5sums), NULL) == 1,
	      "dpkg md5sums recognised by path");
	CHECK(scan_vendor_count(v) == 2, "2 files listed");
	opt.vendor = v;
	r = scan_text_opt(rules, &opt, "/usr/lib/python3/tool/conf.py", text, strlen(text));
	f = find_rule(r, "github-token");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE &&
	          strstr(f->why, "vendor: package python3-tool"),
	      "unmodified package file: example, names the package (%s)", f ? f->why : "-");
	scan_results_free(r);
	text[0] = 'X';
	r = scan_text_opt(rules, &opt, "/usr/lib/python3/tool/conf.py", text, strlen(text));
	f = find_rule(r, "github-token");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED, "changed file: not vendor content");
	scan_results_free(r);

	/* apk: Z:Q1 + base64 sha1 */
	text[0] = 'T';
	EVP_Digest(text, strlen(text), md, &l, EVP_sha1(), NULL);
	EVP_EncodeBlock((unsigned char *)sha1b64, md, 20);
	snprintf(apk, sizeof(apk),
	         "P:musl\nV:1.2\nF:lib\nR:ld-musl.so\nZ:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
	         "P:py3-tool\nV:2.0\nF:usr/lib/py3/tool\nR:conf.py\nZ:Q1%s\n\n",
	         sha1b64);
	CHECK(scan_vendor_add_db_file(v, "lib/apk/db/installed", apk, strlen(apk), NULL) == 1,
	      "apk installed db recognised");
	r = scan_text_opt(rules, &opt, "usr/lib/py3/tool/conf.py", text, strlen(text));
	f = find_rule(r, "github-token");
	CHECK(f && strstr(f->why, "vendor: package py3-tool"), "apk vendor content");
	scan_results_free(r);
	scan_vendor_free(v);

	/* test/example paths */
	r = scan_text(rules, "usr/lib/python3.11/test/keys/conf.py", text);
	f = find_rule(r, "github-token");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE && strstr(f->why, "test or example path"),
	      "test path: example");
	scan_results_free(r);
	r = scan_text(rules, "app/.env.example", text);
	CHECK(find_rule(r, "github-token") &&
	          find_rule(r, "github-token")->confidence == SCAN_CONF_EXAMPLE,
	      ".env.example: example");
	scan_results_free(r);
	CHECK(!scan_is_example_path("srv/latest/contest.txt"), "contest is no test dir");
	CHECK(scan_example_value("your-api-key-here", 17) && scan_example_value("<token>", 7) &&
	          scan_example_value("xxxxxxxxxxxxxxxx", 16) &&
	          scan_example_value("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", 40) &&
	          !scan_example_value(tok, 40),
	      "placeholder values");
}

/* Two rules matching one secret make one finding: the surer, more specific one. */
static void test_overlap_merge(void)
{
	struct scan_results *r;
	struct scan_finding generic = {.rule_id = "generic-env-assignment",
	                               .category = "Generic",
	                               .severity = SCAN_SEV_MEDIUM,
	                               .confidence = SCAN_CONF_LIKELY,
	                               .path = "app/.env",
	                               .visibility = "live",
	                               .layer = 1,
	                               .offset = 10,
	                               .secret = "npm_0123456789abcdefghij",
	                               .secret_len = 24,
	                               .redacted = "npm_…(24)",
	                               .why = "",
	                               .context = "",
	                               .fingerprint = "00"};
	struct scan_finding vendor = generic, other = generic;
	const struct scan_finding *f;

	vendor.rule_id = "npm-access-token";
	vendor.category = "Registry";
	vendor.confidence = SCAN_CONF_CONFIRMED;
	vendor.offset = 14; /* inside the generic one's secret */
	vendor.secret_len = 20;
	other.path = "app/other.env"; /* same secret, another file: stays */
	scan_results_new(&r);
	scan_results_add(&generic, r);
	scan_results_add(&vendor, r);
	scan_results_add(&other, r);
	scan_results_finish(r);
	CHECK(scan_results_count(r) == 2, "overlapping findings of one file merge (got %zu)",
	      scan_results_count(r));
	f = scan_results_get(r, 0);
	CHECK(f && !strcmp(f->rule_id, "npm-access-token") &&
	          strstr(f->why, "generic-env-assignment"),
	      "the confirmed vendor rule is kept and names the other: %s / %s",
	      f ? f->rule_id : "-", f ? f->why : "-");
	scan_results_free(r);
}

int main(int argc, char **argv)
{
	test_overlap_merge();

	rules = load_rules(argc > 1 ? argv[1] : MINI_RULES);
	CHECK(rules != NULL, "rules load");
	if (!rules)
		return tap_done();
	make_token("ghp_", 41, tok);
	make_token("ghp_", 42, tok2);
	test_redaction();
	test_filters();
	test_order();
	test_vendor();
	scan_rules_free(rules);
	return tap_done();
}
