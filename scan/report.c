/*
 * report: findings as JSON Lines (one object per finding, keys in a fixed
 * order, for tools and for the .secrets directory), as SARIF 2.1.0 (for code
 * scanning services: unique rules in tool.driver.rules, relative URIs,
 * partialFingerprints), and as a text table for people. Secrets are redacted
 * unless show_secrets; the order is that of the results (sorted by
 * scan_results_finish), so output is deterministic.
 */
#include "report.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/*
 * A JSON string from bytes that came from the image (paths, secrets) and may
 * not be UTF-8: jansson refuses those, so bytes outside ASCII are then
 * replaced by '?', and the output stays complete and valid.
 */
json_t *scan_json_str(const char *s)
{
	json_t *j;
	char *c;

	if (!s)
		return json_null();
	if ((j = json_string(s)))
		return j;
	if (!(c = strdup(s)))
		return NULL;
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(c);
	free(c);
	return j;
}

#define jstr scan_json_str

char *scan_finding_json(const struct scan_finding *f, bool show_secrets)
{
	json_t *o = json_object();
	char *s;

	if (!o)
		return NULL;
	json_object_set_new(o, "rule", jstr(f->rule_id));
	json_object_set_new(o, "title", jstr(f->title));
	json_object_set_new(o, "category", jstr(f->category));
	json_object_set_new(o, "severity", json_string(scan_severity_name(f->severity)));
	json_object_set_new(o, "confidence", json_string(scan_confidence_name(f->confidence)));
	json_object_set_new(o, "visibility", jstr(f->visibility));
	json_object_set_new(o, "layer", f->layer >= 0 ? json_integer(f->layer) : json_null());
	json_object_set_new(o, "layer_digest", jstr(f->layer_digest));
	json_object_set_new(o, "created_by", jstr(f->created_by));
	json_object_set_new(o, "path", jstr(f->path));
	json_object_set_new(o, "view_path", jstr(f->view_path));
	json_object_set_new(o, "line", json_integer((json_int_t)f->line));
	json_object_set_new(o, "column", json_integer((json_int_t)f->column));
	json_object_set_new(o, "offset", json_integer((json_int_t)f->offset));
	json_object_set_new(o, "match", jstr(f->redacted));
	if (show_secrets)
		json_object_set_new(o, "secret", jstr(f->secret));
	json_object_set_new(o, "length", json_integer((json_int_t)f->secret_len));
	json_object_set_new(o, "why", jstr(f->why));
	json_object_set_new(o, "context", jstr(show_secrets ? f->context_raw : f->context));
	json_object_set_new(o, "fingerprint", jstr(f->fingerprint));
	json_object_set_new(o, "pubkey_sha256", jstr(f->pubkey_sha256));
	if (f->cert_subject) {
		json_t *c = json_object();

		json_object_set_new(c, "subject", jstr(f->cert_subject));
		json_object_set_new(c, "issuer", jstr(f->cert_issuer));
		json_object_set_new(c, "not_before", jstr(f->cert_not_before));
		json_object_set_new(c, "not_after", jstr(f->cert_not_after));
		json_object_set_new(o, "certificate", c);
	}
	/* jansson keeps insertion order: the key order above is the format. */
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

static int io_err(FILE *out, struct scan_err *e)
{
	if (ferror(out))
		return scan_err_set(e, -EIO, "writing the report failed");
	return 0;
}

int scan_report_jsonl(FILE *out, const struct scan_results *r,
                      const struct scan_report_options *opt, struct scan_err *e)
{
	bool show = opt && opt->show_secrets;

	for (size_t i = 0; i < scan_results_count(r); i++) {
		char *s = scan_finding_json(scan_results_get(r, i), show);

		if (!s)
			return scan_err_set(e, -ENOMEM, "out of memory");
		fputs(s, out);
		fputc('\n', out);
		free(s);
	}
	return io_err(out, e);
}

/* ---- SARIF -------------------------------------------------------------- */

/* RFC 3986: keep unreserved characters and '/', percent-encode the rest. */
static char *uri_encode(const char *path)
{
	struct scan_buf b = {0};

	while (*path == '/')
		path++;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			scan_buf_add(&b, p, 1);
		else
			scan_buf_printf(&b, "%%%02X", *p);
	}
	return scan_buf_steal(&b);
}

static const char *sarif_level(enum scan_severity s)
{
	switch (s) {
	case SCAN_SEV_CRITICAL:
	case SCAN_SEV_HIGH:
		return "error";
	case SCAN_SEV_MEDIUM:
		return "warning";
	default:
		return "note";
	}
}

/* GitHub code scanning reads properties."security-severity" (0.0-10.0). */
static const char *security_severity(enum scan_severity s)
{
	switch (s) {
	case SCAN_SEV_CRITICAL:
		return "9.5";
	case SCAN_SEV_HIGH:
		return "8.0";
	case SCAN_SEV_MEDIUM:
		return "5.5";
	case SCAN_SEV_LOW:
		return "3.0";
	default:
		return "1.0";
	}
}

static json_t *sarif_rule(const struct scan_finding *f, const struct scan_rules *rules)
{
	struct scan_rule_info info = {f->rule_id, f->title, f->category, f->severity, false, false};
	json_t *r = json_object(), *props = json_object(), *tags = json_array();

	if (rules)
		scan_rules_find(rules, f->rule_id, &info);
	json_object_set_new(r, "id", json_string(info.id));
	json_object_set_new(r, "name", json_string(info.id));
	json_object_set_new(r, "shortDescription", json_pack("{s:s}", "text", info.title));
	json_object_set_new(
	    r, "fullDescription",
	    json_pack("{s:s++}", "text", info.title, info.category[0] ? " - " : "", info.category));
	json_object_set_new(r, "defaultConfiguration",
	                    json_pack("{s:s}", "level", sarif_level(info.severity)));
	json_array_append_new(tags, json_string("security"));
	json_array_append_new(tags, json_string("secret"));
	if (info.category && info.category[0])
		json_array_append_new(tags, json_string(info.category));
	json_object_set_new(props, "tags", tags);
	json_object_set_new(props, "security-severity",
	                    json_string(security_severity(info.severity)));
	json_object_set_new(props, "severity", json_string(scan_severity_name(info.severity)));
	json_object_set_new(r, "properties", props);
	return r;
}

static json_t *sarif_result(const struct scan_finding *f, size_t rule_index, bool show)
{
	json_t *res = json_object(), *loc, *phys, *region, *props;
	bool config = f->visibility && !strcmp(f->visibility, "config");
	const char *where = config ? "image/config.json" : (f->view_path ? f->view_path : f->path);
	const char *bang = where ? strstr(where, "!/") : NULL;
	char *outer = bang ? strndup(where, (size_t)(bang - where)) : NULL;
	/* A member of a nested archive has no URI of its own: point at the
	 * archive, and name the member in a logical location. */
	char *uri = uri_encode(outer ? outer : where ? where : "");
	char *msg = NULL;

	free(outer);

	if (asprintf(&msg, "%s: %s (%s)%s%s", f->title, show ? f->secret : f->redacted,
	             scan_confidence_name(f->confidence), f->why[0] ? "; " : "", f->why) < 0)
		msg = NULL;
	json_object_set_new(res, "ruleId", jstr(f->rule_id));
	json_object_set_new(res, "ruleIndex", json_integer((json_int_t)rule_index));
	json_object_set_new(res, "level", json_string(sarif_level(f->severity)));
	json_object_set_new(res, "message", json_pack("{s:o}", "text", jstr(msg ? msg : f->title)));
	region = json_object();
	json_object_set_new(region, "startLine", json_integer(config ? 1 : (json_int_t)f->line));
	json_object_set_new(region, "startColumn",
	                    json_integer(config ? 1 : (json_int_t)f->column));
	phys = json_object();
	json_object_set_new(phys, "artifactLocation", json_pack("{s:s}", "uri", uri ? uri : ""));
	json_object_set_new(phys, "region", region);
	loc = json_object();
	json_object_set_new(loc, "physicalLocation", phys);
	if (config || (f->path && strstr(f->path, "!/")))
		json_object_set_new(loc, "logicalLocations",
		                    json_pack("[{s:o}]", "fullyQualifiedName", jstr(f->path)));
	json_object_set_new(res, "locations", json_pack("[o]", loc));
	json_object_set_new(res, "partialFingerprints",
	                    json_pack("{s:s}", "strataFingerprint/v1", f->fingerprint));
	props = json_object();
	json_object_set_new(props, "confidence", json_string(scan_confidence_name(f->confidence)));
	json_object_set_new(props, "visibility", jstr(f->visibility));
	json_object_set_new(props, "layer", f->layer >= 0 ? json_integer(f->layer) : json_null());
	json_object_set_new(props, "layerDigest", jstr(f->layer_digest));
	json_object_set_new(props, "path", jstr(f->path));
	json_object_set_new(res, "properties", props);
	free(uri);
	free(msg);
	return res;
}

int scan_report_sarif(FILE *out, const struct scan_results *r,
                      const struct scan_report_options *opt, struct scan_err *e)
{
	json_t *root, *run, *driver, *rules = json_array(), *results = json_array();
	const char **ids;
	size_t nids = 0, n = scan_results_count(r);
	bool show = opt && opt->show_secrets;
	int rc;

	ids = calloc(n + 1, sizeof(*ids));
	if (!ids || !rules || !results) {
		free(ids);
		json_decref(rules);
		json_decref(results);
		return scan_err_set(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const struct scan_finding *f = scan_results_get(r, i);
		size_t k;

		for (k = 0; k < nids && strcmp(ids[k], f->rule_id); k++)
			;
		if (k == nids) {
			ids[nids++] = f->rule_id;
			json_array_append_new(rules, sarif_rule(f, opt ? opt->rules : NULL));
		}
		json_array_append_new(results, sarif_result(f, k, show));
	}
	free(ids);
	driver = json_pack("{s:s, s:s, s:s, s:o}", "name", "strata", "informationUri",
	                   "https://github.com/strata-fs/strata", "version",
	                   opt && opt->tool_version ? opt->tool_version : SCAN_ENGINE_VERSION,
	                   "rules", rules);
	run = json_pack("{s:{s:o}, s:o, s:s}", "tool", "driver", driver, "results", results,
	                "columnKind", "utf16CodeUnits");
	root = json_pack("{s:s, s:s, s:[o]}", "$schema",
	                 "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0",
	                 "runs", run);
	if (!root)
		return scan_err_set(e, -ENOMEM, "out of memory");
	rc = json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(root);
	if (rc)
		return scan_err_set(e, -EIO, "writing the SARIF report failed");
	return io_err(out, e);
}

/* ---- text ---------------------------------------------------------------- */

static const char *sev_color(enum scan_severity s)
{
	switch (s) {
	case SCAN_SEV_CRITICAL:
		return "\033[1;31m";
	case SCAN_SEV_HIGH:
		return "\033[31m";
	case SCAN_SEV_MEDIUM:
		return "\033[33m";
	default:
		return "\033[36m";
	}
}

int scan_report_text(FILE *out, const struct scan_results *r, const struct scan_report_options *opt,
                     struct scan_err *e)
{
	bool color = opt && opt->color, show = opt && opt->show_secrets;
	size_t n = scan_results_count(r), by_conf[3] = {0};

	fprintf(out, "%-9s %-8s %-28s %-5s %-8s %-s\n", "CONF", "SEVERITY", "RULE", "LAYER", "VIS",
	        "WHERE / MATCH");
	for (size_t i = 0; i < n; i++) {
		const struct scan_finding *f = scan_results_get(r, i);
		char layer[16] = "-";

		by_conf[f->confidence]++;
		if (f->layer >= 0)
			snprintf(layer, sizeof(layer), "%d", f->layer);
		fprintf(out, "%-9s %s%-8s%s %-28s %-5s %-8s %s:%llu:%llu\n",
		        scan_confidence_name(f->confidence), color ? sev_color(f->severity) : "",
		        scan_severity_name(f->severity), color ? "\033[0m" : "", f->rule_id, layer,
		        f->visibility ? f->visibility : "-", f->path, (unsigned long long)f->line,
		        (unsigned long long)f->column);
		fprintf(out, "%-62s %s%s%s\n", "", show ? f->secret : f->redacted,
		        f->why[0] ? "  " : "", f->why);
	}
	fprintf(out, "%zu finding%s: %zu confirmed, %zu likely, %zu example\n", n,
	        n == 1 ? "" : "s", by_conf[SCAN_CONF_CONFIRMED], by_conf[SCAN_CONF_LIKELY],
	        by_conf[SCAN_CONF_EXAMPLE]);
	return io_err(out, e);
}

/* ---- summary -------------------------------------------------------------- */

struct count {
	const char *key;
	size_t n;
};

static void bump(struct count *c, size_t *nc, const char *key)
{
	for (size_t i = 0; i < *nc; i++) {
		if (!strcmp(c[i].key, key)) {
			c[i].n++;
			return;
		}
	}
	c[(*nc)++] = (struct count){key, 1};
}

static int cmp_count(const void *a, const void *b)
{
	const struct count *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

int scan_report_summary(FILE *out, const struct scan_results *r, struct scan_err *e)
{
	size_t n = scan_results_count(r), nrules = 0, nvis = 0, by_conf[3] = {0};
	struct count *rules = calloc(n + 1, sizeof(*rules)), *vis = calloc(n + 1, sizeof(*vis));
	const struct scan_stats *st = scan_results_stats(r);

	if (!rules || !vis) {
		free(rules);
		free(vis);
		return scan_err_set(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const struct scan_finding *f = scan_results_get(r, i);

		by_conf[f->confidence]++;
		bump(rules, &nrules, f->rule_id);
		bump(vis, &nvis, f->visibility ? f->visibility : "-");
	}
	qsort(rules, nrules, sizeof(*rules), cmp_count);
	qsort(vis, nvis, sizeof(*vis), cmp_count);
	fprintf(out, "findings: %zu (confirmed %zu, likely %zu, example %zu)\n", n,
	        by_conf[SCAN_CONF_CONFIRMED], by_conf[SCAN_CONF_LIKELY],
	        by_conf[SCAN_CONF_EXAMPLE]);
	fprintf(out, "\nby visibility:\n");
	for (size_t i = 0; i < nvis; i++)
		fprintf(out, "  %-10s %zu\n", vis[i].key, vis[i].n);
	fprintf(out, "\nby rule:\n");
	for (size_t i = 0; i < nrules; i++)
		fprintf(out, "  %-40s %zu\n", rules[i].key, rules[i].n);
	fprintf(out,
	        "\nscanned: %llu files, %llu bytes; skipped over the size limit: %llu\n"
	        "archives: %llu opened, %llu members; limits hit: depth %llu, members %llu, "
	        "expansion %llu; damaged %llu\n"
	        "regex limits hit: %llu; findings over the per-file bound: %llu\n",
	        (unsigned long long)st->files, (unsigned long long)st->bytes,
	        (unsigned long long)st->skipped_too_large, (unsigned long long)st->archives,
	        (unsigned long long)st->members, (unsigned long long)st->limit_depth,
	        (unsigned long long)st->limit_members, (unsigned long long)st->limit_expanded,
	        (unsigned long long)st->archive_errors, (unsigned long long)st->regex_limits,
	        (unsigned long long)st->findings_dropped);
	free(rules);
	free(vis);
	return io_err(out, e);
}

int scan_report_finding(FILE *out, const struct scan_finding *f, bool show_secrets,
                        struct scan_err *e)
{
	fprintf(out, "rule:        %s (%s)\n", f->rule_id, f->title);
	fprintf(out, "severity:    %s\n", scan_severity_name(f->severity));
	fprintf(out, "confidence:  %s\n", scan_confidence_name(f->confidence));
	fprintf(out, "visibility:  %s\n", f->visibility ? f->visibility : "-");
	if (f->layer >= 0)
		fprintf(out, "layer:       %d%s%s\n", f->layer, f->layer_digest ? " " : "",
		        f->layer_digest ? f->layer_digest : "");
	if (f->created_by)
		fprintf(out, "created_by:  %s\n", f->created_by);
	fprintf(out, "path:        %s\n", f->path);
	if (f->view_path)
		fprintf(out, "view:        %s\n", f->view_path);
	fprintf(out, "line:        %llu, column %llu, offset %llu\n", (unsigned long long)f->line,
	        (unsigned long long)f->column, (unsigned long long)f->offset);
	fprintf(out, "match:       %s\n", show_secrets ? f->secret : f->redacted);
	fprintf(out, "why:         %s\n", f->why[0] ? f->why : "matched the rule");
	fprintf(out, "fingerprint: %s\n", f->fingerprint);
	fprintf(out, "\n%s\n", show_secrets ? f->context_raw : f->context);
	return io_err(out, e);
}
