/*
 * cache: findings saved to and loaded from a file, so that a layer's scan
 * results can be kept on disk (keyed by the caller with the layer digest and
 * scan_rules_hash()) and reused by the next mount. Unlike the reports, the
 * cache keeps everything: secrets in clear (for fingerprints and
 * --show-secrets later), both contexts, and the context-only certificate
 * matches, which scan_results_finish() needs to link keys found in other
 * layers. Its format is JSON Lines after a header line naming the engine.
 */
#include "report.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_FORMAT 1

#define jstr scan_json_str

static json_t *finding_to_json(const struct scan_finding *f)
{
	json_t *o = json_object();

	json_object_set_new(o, "rule", jstr(f->rule_id));
	json_object_set_new(o, "title", jstr(f->title));
	json_object_set_new(o, "category", jstr(f->category));
	json_object_set_new(o, "severity", json_integer(f->severity));
	json_object_set_new(o, "confidence", json_integer(f->confidence));
	json_object_set_new(o, "context_only", json_boolean(f->context_only));
	json_object_set_new(o, "path", jstr(f->path));
	json_object_set_new(o, "visibility", jstr(f->visibility));
	json_object_set_new(o, "layer", json_integer(f->layer));
	json_object_set_new(o, "layer_digest", jstr(f->layer_digest));
	json_object_set_new(o, "created_by", jstr(f->created_by));
	json_object_set_new(o, "view_path", jstr(f->view_path));
	json_object_set_new(o, "line", json_integer((json_int_t)f->line));
	json_object_set_new(o, "column", json_integer((json_int_t)f->column));
	json_object_set_new(o, "offset", json_integer((json_int_t)f->offset));
	json_object_set_new(o, "secret", jstr(f->secret));
	json_object_set_new(o, "secret_len", json_integer((json_int_t)f->secret_len));
	json_object_set_new(o, "redacted", jstr(f->redacted));
	json_object_set_new(o, "why", jstr(f->why));
	json_object_set_new(o, "context", jstr(f->context));
	json_object_set_new(o, "context_raw", jstr(f->context_raw));
	json_object_set_new(o, "fingerprint", jstr(f->fingerprint));
	json_object_set_new(o, "pubkey_sha256", jstr(f->pubkey_sha256));
	json_object_set_new(o, "cert_subject", jstr(f->cert_subject));
	json_object_set_new(o, "cert_issuer", jstr(f->cert_issuer));
	json_object_set_new(o, "cert_not_before", jstr(f->cert_not_before));
	json_object_set_new(o, "cert_not_after", jstr(f->cert_not_after));
	return o;
}

static int write_one(FILE *out, const struct scan_finding *f)
{
	json_t *o = finding_to_json(f);
	int rc = o ? json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER) : -1;

	json_decref(o);
	fputc('\n', out);
	return rc ? -ENOMEM : 0;
}

int scan_results_save(FILE *out, const struct scan_results *r, struct scan_err *e)
{
	size_t nc = 0;

	fprintf(out, "{\"strata-scan-cache\":%d,\"engine\":\"%s\"}\n", CACHE_FORMAT,
	        SCAN_ENGINE_VERSION);
	for (size_t i = 0; i < scan_results_count(r); i++)
		if (write_one(out, scan_results_get(r, i)))
			return scan_err_set(e, -ENOMEM, "out of memory");
	for (const struct scan_finding *c; (c = scan_results_context(r, nc)); nc++)
		if (write_one(out, c))
			return scan_err_set(e, -ENOMEM, "out of memory");
	if (ferror(out))
		return scan_err_set(e, -EIO, "writing the scan cache failed");
	return 0;
}

static const char *gs(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t gi(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

int scan_results_load(FILE *in, scan_finding_cb cb, void *opaque, struct scan_err *e)
{
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int rc = 0;

	while (!rc && (n = getline(&line, &cap, in)) > 0) {
		json_t *o = json_loadb(line, (size_t)n, 0, NULL);
		struct scan_finding f = {0};

		lineno++;
		if (!json_is_object(o)) {
			rc = scan_err_set(e, -EINVAL, "scan cache line %zu: not a JSON object",
			                  lineno);
		} else if (lineno == 1) {
			if (gi(o, "strata-scan-cache") != CACHE_FORMAT || !gs(o, "engine") ||
			    strcmp(gs(o, "engine"), SCAN_ENGINE_VERSION))
				rc = scan_err_set(e, -ESTALE,
				                  "scan cache from another engine version");
		} else {
			f.rule_id = gs(o, "rule");
			f.title = gs(o, "title");
			f.category = gs(o, "category");
			f.severity = (enum scan_severity)gi(o, "severity");
			f.confidence = (enum scan_confidence)gi(o, "confidence");
			f.context_only = json_is_true(json_object_get(o, "context_only"));
			f.path = gs(o, "path");
			f.visibility = gs(o, "visibility");
			f.layer = (int)gi(o, "layer");
			f.layer_digest = gs(o, "layer_digest");
			f.created_by = gs(o, "created_by");
			f.view_path = gs(o, "view_path");
			f.line = (uint64_t)gi(o, "line");
			f.column = (uint64_t)gi(o, "column");
			f.offset = (uint64_t)gi(o, "offset");
			f.secret = gs(o, "secret");
			f.secret_len = (size_t)gi(o, "secret_len");
			f.redacted = gs(o, "redacted");
			f.why = gs(o, "why");
			f.context = gs(o, "context");
			f.context_raw = gs(o, "context_raw");
			f.fingerprint = gs(o, "fingerprint");
			f.pubkey_sha256 = gs(o, "pubkey_sha256");
			f.cert_subject = gs(o, "cert_subject");
			f.cert_issuer = gs(o, "cert_issuer");
			f.cert_not_before = gs(o, "cert_not_before");
			f.cert_not_after = gs(o, "cert_not_after");
			if (!f.rule_id || !f.path || !f.secret || !f.redacted || !f.why ||
			    !f.context || !f.context_raw || !f.fingerprint ||
			    f.severity > SCAN_SEV_CRITICAL || f.confidence > SCAN_CONF_CONFIRMED)
				rc = scan_err_set(e, -EINVAL, "scan cache line %zu: fields missing",
				                  lineno);
			else if (cb && (rc = cb(&f, opaque)) < 0)
				scan_err_set(e, rc, "scan cache line %zu: callback failed", lineno);
		}
		json_decref(o);
	}
	free(line);
	if (!rc && lineno == 0)
		rc = scan_err_set(e, -EINVAL, "scan cache is empty");
	return rc;
}
