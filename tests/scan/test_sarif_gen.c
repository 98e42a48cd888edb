/*
 * Writes a SARIF report of a few findings (file, nested archive member,
 * image config, a path that needs percent-encoding) to the file named by
 * argv[2], for sarif_check.py to validate against the SARIF 2.1.0 schema.
 * argv[1] is the rule file.
 */
#include "helpers.h"

int main(int argc, char **argv)
{
	struct scan_rules *rules;
	struct scan_scanner *s;
	struct scan_results *res;
	struct scan_report_options ro = {0};
	char tok[64], tok2[64], text[256], cfg[512];
	struct scan_target t = {.path = "srv/app dir/#conf%.env",
	                        .visibility = "deleted",
	                        .layer = 2,
	                        .layer_digest = "sha256:0123",
	                        .created_by = "COPY . /srv",
	                        .view_path = "layers/02/srv/app dir/#conf%.env"};
	FILE *out;
	size_t n;

	if (argc < 3)
		return 2;
	rules = load_rules(argv[1]);
	if (!rules)
		return 2;
	make_token("ghp_", 77, tok);
	make_token("npm_", 78, tok2);
	scan_results_new(&res);
	scan_scanner_new(&s, rules, NULL, NULL);
	snprintf(text, sizeof(text), "GH=%s\nNPM=%s\npassword=Tq8vR2mLz9pWx4k\n", tok, tok2);
	scan_buffer(s, &t, text, strlen(text), scan_results_add, res);
	t.path = "usr/lib/app.jar!/BOOT-INF/x.properties";
	t.view_path = NULL;
	t.visibility = "live";
	scan_buffer(s, &t, text, strlen(text), scan_results_add, res);
	snprintf(cfg, sizeof(cfg),
	         "{\"config\":{\"Env\":[\"T=%s\"]},\"history\":[{\"created_by\":\"ENV N=%s\"}]}",
	         tok, tok2);
	scan_config(s, NULL, cfg, strlen(cfg), scan_results_add, res, NULL);
	scan_results_finish(res);
	out = fopen(argv[2], "w");
	ro.rules = rules;
	ro.tool_version = "0.1.0";
	if (!out || scan_report_sarif(out, res, &ro, NULL))
		return 2;
	fclose(out);
	n = scan_results_count(res);
	printf("%zu results\n", n);
	scan_scanner_free(s);
	scan_results_free(res);
	scan_rules_free(rules);
	return n ? 0 : 1;
}
