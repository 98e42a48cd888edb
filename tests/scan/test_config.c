/*
 * Image config scanning: Env, Cmd, Entrypoint, Labels and history
 * created_by, with their locations, visibility "config", and the layer a
 * history entry made (empty_layer entries make none).
 */
#include "helpers.h"

#include <errno.h>

static const struct scan_finding *at(const struct scan_results *r, const char *path)
{
	for (size_t i = 0; i < scan_results_count(r); i++)
		if (!strcmp(scan_results_get(r, i)->path, path))
			return scan_results_get(r, i);
	return NULL;
}

int main(int argc, char **argv)
{
	struct scan_rules *rules = load_rules(argc > 1 ? argv[1] : MINI_RULES);
	struct scan_scanner *s = NULL;
	struct scan_results *res = NULL;
	struct scan_target t = {.layer_digest = "sha256:cafe", .layer = 99};
	struct scan_err e = {0};
	const struct scan_finding *f;
	char t1[64], t2[64], t3[64], t4[64], json[4096];
	int rc;

	CHECK(rules != NULL, "rules load");
	if (!rules)
		return tap_done();
	make_token("ghp_", 21, t1);
	make_token("ghp_", 22, t2);
	make_token("npm_", 23, t3);
	make_token("ghs_", 24, t4);
	snprintf(json, sizeof(json),
	         "{\"architecture\":\"amd64\",\"config\":{"
	         "\"Env\":[\"PATH=/usr/bin\",\"GITHUB_TOKEN=%s\"],"
	         "\"Cmd\":[\"/bin/sh\",\"-c\",\"curl -H 'Authorization: token %s' x\"],"
	         "\"Entrypoint\":[\"run\",\"DB_PASSWORD=Tq8vR2mLz9pWx4k\"],"
	         "\"Labels\":{\"org.example.npm\":\"%s\"}},"
	         "\"container_config\":{\"Env\":[\"PATH=/usr/bin\",\"GITHUB_TOKEN=%s\"]},"
	         "\"history\":["
	         "{\"created_by\":\"/bin/sh -c #(nop) ADD file:abc in / \"},"
	         "{\"created_by\":\"/bin/sh -c #(nop) ENV X=1\",\"empty_layer\":true},"
	         "{\"created_by\":\"RUN /bin/sh -c echo hi\"},"
	         "{\"created_by\":\"ARG TOKEN=%s\",\"empty_layer\":true},"
	         "{\"created_by\":\"RUN /bin/sh -c git clone https://%s@github.com/o/r\"}]}",
	         t1, t2, t3, t1, t4, t1);
	scan_results_new(&res);
	scan_scanner_new(&s, rules, NULL, NULL);
	rc = scan_config(s, &t, json, strlen(json), scan_results_add, res, &e);
	CHECK(rc == 0, "config scans (%s)", e.msg);
	scan_results_finish(res);
	f = at(res, "config.Env[1]");
	CHECK(f && !strcmp(f->rule_id, "github-token") && !strcmp(f->secret, t1),
	      "config.Env[1]: GitHub token");
	CHECK(f && !strcmp(f->visibility, "config") && f->layer == -1 &&
	          !strcmp(f->layer_digest, "sha256:cafe"),
	      "visibility config, no layer, caller's fields carried");
	CHECK(at(res, "config.Cmd[2]") != NULL, "config.Cmd[2]");
	CHECK(at(res, "config.Entrypoint[1]") &&
	          !strcmp(at(res, "config.Entrypoint[1]")->rule_id, "generic-password"),
	      "config.Entrypoint[1]: password");
	CHECK(at(res, "config.Labels.org.example.npm") != NULL, "config.Labels.KEY");
	f = at(res, "history[3].created_by");
	CHECK(f && f->layer == -1, "history[3] (empty layer): layer -1");
	f = at(res, "history[4].created_by");
	CHECK(f && f->layer == 2 && !strcmp(f->secret, t1), "history[4] made layer 2");
	CHECK(at(res, "container_config.Env[1]") != NULL, "docker's container_config.Env[1]");
	CHECK(scan_results_count(res) == 7, "7 findings (%zu)", scan_results_count(res));
	scan_results_free(res);

	scan_results_new(&res);
	CHECK(scan_config(s, NULL, "{not json", 9, scan_results_add, res, &e) == -EINVAL &&
	          e.msg[0],
	      "bad JSON: -EINVAL with a message (%s)", e.msg);
	CHECK(scan_config(s, NULL, "{}", 2, scan_results_add, res, &e) == 0 &&
	          scan_results_count(res) == 0,
	      "empty config: nothing");
	scan_results_free(res);
	scan_scanner_free(s);
	scan_rules_free(rules);
	return tap_done();
}
