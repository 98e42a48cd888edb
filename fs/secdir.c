/*
 * secdir: rendering .secrets/ (see secdir.h). Everything is generated once,
 * after the full scan, into a vtree; only status is made on every read.
 */
#include "secdir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Runs one of scan's report writers into memory. */
static int report_to(struct vtree *t, uint32_t dir, const char *name,
                     int (*fn)(FILE *, const struct scan_results *,
                               const struct scan_report_options *, struct scan_err *),
                     const struct scan_results *res, const struct scan_report_options *ro)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	int r;

	if (!f)
		return -ENOMEM;
	r = fn(f, res, ro, NULL);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r == 0)
		r = vtree_add(t, dir, name, VTREE_FILE, mem, len, NULL);
	free(mem);
	return r;
}

/* A count per distinct string, for the summary. */
struct tally {
	const char *key[512];
	unsigned count[512];
	unsigned n;
};

static void tally_add(struct tally *t, const char *key)
{
	for (unsigned i = 0; i < t->n; i++) {
		if (!strcmp(t->key[i], key)) {
			t->count[i]++;
			return;
		}
	}
	if (t->n < 512) {
		t->key[t->n] = key;
		t->count[t->n++] = 1;
	}
}

static int summary(struct vtree *t, const struct scan_results *all)
{
	struct tally conf = {0}, rule = {0}, vis = {0};
	struct buf b = BUF_INIT;
	size_t n = scan_results_count(all);
	int r;

	for (size_t i = 0; i < n; i++) {
		const struct scan_finding *f = scan_results_get(all, i);

		tally_add(&conf, scan_confidence_name(f->confidence));
		tally_add(&rule, f->rule_id);
		tally_add(&vis, f->visibility ? f->visibility : "-");
	}
	r = buf_printf(&b, "%zu findings\n\nby confidence:\n", n);
	for (unsigned i = 0; r == 0 && i < conf.n; i++)
		r = buf_printf(&b, "  %-12s %u\n", conf.key[i], conf.count[i]);
	if (r == 0)
		r = buf_append_str(
		    &b, "\nby visibility (live in merged/, deleted, shadowed, config):\n");
	for (unsigned i = 0; r == 0 && i < vis.n; i++)
		r = buf_printf(&b, "  %-12s %u\n", vis.key[i], vis.count[i]);
	if (r == 0)
		r = buf_append_str(&b, "\nby rule:\n");
	for (unsigned i = 0; r == 0 && i < rule.n; i++)
		r = buf_printf(&b, "  %-40s %u\n", rule.key[i], rule.count[i]);
	if (r == 0)
		r = buf_append_str(&b,
		                   "\nexample findings (test keys, placeholders, vendor files) are "
		                   "under examples/ only.\n");
	if (r == 0)
		r = vtree_add(t, 0, "summary.txt", VTREE_FILE, b.data, b.len, NULL);
	buf_release(&b);
	return r;
}

/* The per-finding text file. */
static int finding_text(struct buf *b, const struct scan_finding *f, int show)
{
	return buf_printf(
	    b,
	    "rule:        %s (%s)\n"
	    "confidence:  %s\n"
	    "severity:    %s\n"
	    "visibility:  %s\n"
	    "view:        %s\n"
	    "layer:       %s%d %s\n"
	    "created by:  %s\n"
	    "path:        %s\n"
	    "line:        %llu, column %llu, offset %llu\n"
	    "match:       %s\n"
	    "why:         %s\n"
	    "fingerprint: %s\n"
	    "\n%s\n",
	    f->rule_id, f->title ? f->title : "", scan_confidence_name(f->confidence),
	    scan_severity_name(f->severity), f->visibility ? f->visibility : "-",
	    f->view_path ? f->view_path : "image/config.json", f->layer < 10 ? "0" : "", f->layer,
	    f->layer_digest ? f->layer_digest : "", f->created_by ? f->created_by : "-",
	    f->path ? f->path : "", (unsigned long long)f->line, (unsigned long long)f->column,
	    (unsigned long long)f->offset, show ? f->secret : f->redacted,
	    f->why && *f->why ? f->why : "-", f->fingerprint, show ? f->context_raw : f->context);
}

/* The symlink target from <top>/RULE/NNN.file (depth levels below the mount root). */
static int link_target(struct buf *b, const struct scan_finding *f, int depth)
{
	const char *path = f->view_path;
	char *outer = NULL;
	int r = 0;

	for (int i = 0; r == 0 && i < depth; i++)
		r = buf_append_str(b, "../");
	if (r)
		return r;
	if (!path)
		return buf_append_str(b, "image/config.json");
	/* a member of an archive: link to the archive */
	const char *bang = strstr(path, "!/");
	outer = bang ? strndup(path, (size_t)(bang - path)) : NULL;
	r = buf_append_str(b, outer ? outer : path);
	free(outer);
	return r;
}

static int per_finding(struct vtree *t, uint32_t top, int depth, const struct scan_results *all,
                       int examples, int show)
{
	struct tally numbers = {0};
	size_t n = scan_results_count(all);
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct scan_finding *f = scan_results_get(all, i);
		struct buf text = BUF_INIT, target = BUF_INIT;
		uint32_t dir;
		char name[32], lname[40];
		unsigned k;

		if ((f->confidence == SCAN_CONF_EXAMPLE) != examples)
			continue;
		tally_add(&numbers, f->rule_id);
		for (k = 0; k < numbers.n && strcmp(numbers.key[k], f->rule_id); k++)
			;
		snprintf(name, sizeof(name), "%03u", numbers.count[k]);
		snprintf(lname, sizeof(lname), "%s.file", name);
		if ((r = vtree_mkdir(t, top, f->rule_id, &dir)) == 0 &&
		    (r = finding_text(&text, f, show)) == 0 &&
		    (r = vtree_add(t, dir, name, VTREE_FILE, text.data, text.len, NULL)) == 0 &&
		    (r = link_target(&target, f, depth)) == 0)
			r = vtree_add(t, dir, lname, VTREE_LINK, target.data, target.len, NULL);
		buf_release(&text);
		buf_release(&target);
	}
	return r;
}

int secdir_render(struct secrets *s, int show_secrets, struct vtree **ret_tree, struct err *err)
{
	struct scan_report_options ro = {.show_secrets = show_secrets, .rules = secrets_rules(s)};
	struct scan_results *all = NULL, *signal = NULL;
	struct vtree *t = NULL;
	uint32_t byrule, examples;
	int r;

	if ((r = secrets_results(s, &all, err)) < 0 || (r = secrets_results(s, &signal, err)) < 0)
		goto out;
	scan_results_filter(signal, SCAN_CONF_LIKELY, NULL);
	if ((r = vtree_new(&t)) < 0 || (r = summary(t, all)) < 0 ||
	    (r = report_to(t, 0, "findings.jsonl", scan_report_jsonl, signal, &ro)) < 0 ||
	    (r = report_to(t, 0, "findings.sarif", scan_report_sarif, signal, &ro)) < 0 ||
	    (r = vtree_mkdir(t, 0, "by-rule", &byrule)) < 0 ||
	    (r = vtree_mkdir(t, 0, "examples", &examples)) < 0 ||
	    (r = per_finding(t, byrule, 3, all, 0, show_secrets)) < 0 ||
	    (r = per_finding(t, examples, 3, all, 1, show_secrets)) < 0) {
		err_set(err, r, "rendering .secrets: %s", strerror(-r));
		goto out;
	}
	vtree_seal(t);
	*ret_tree = t;
	t = NULL;
out:
	vtree_free(t);
	scan_results_free(all);
	scan_results_free(signal);
	return r;
}

char *secdir_status(struct secrets *s, size_t *ret_len)
{
	struct buf b = BUF_INIT, layers = BUF_INIT;
	uint64_t e_done = 0, e_total = 0, b_done = 0, b_total = 0;
	uint32_t cached = 0, n = 0;
	double t = s ? secrets_elapsed(s) : 0;
	int complete = s && secrets_complete(s);

	while (s) {
		struct secrets_layer_progress p;

		if (secrets_layer_count(s) <= n)
			break;
		secrets_progress(s, n, &p);
		e_done += p.entries_done;
		e_total += p.entries_total;
		b_done += p.bytes_done;
		b_total += p.bytes_total;
		cached += p.from_cache;
		buf_printf(&layers, "layer %02u: %u/%u entries, %llu/%llu bytes%s%s\n", n,
		           p.entries_done, p.entries_total, (unsigned long long)p.bytes_done,
		           (unsigned long long)p.bytes_total, p.complete ? ", complete" : "",
		           p.from_cache ? ", from cache (nothing re-read)" : "");
		n++;
	}
	if (complete)
		buf_printf(&b, "complete: %llu entries, %llu bytes, %.2f s%s\n",
		           (unsigned long long)e_total, (unsigned long long)b_total, t,
		           cached == n && n ? " (all layers from cache)" : "");
	else
		buf_printf(&b, "%s: %llu/%llu entries, %llu/%llu bytes, %.2f s\n",
		           s && t > 0 ? "scanning" : "idle", (unsigned long long)e_done,
		           (unsigned long long)e_total, (unsigned long long)b_done,
		           (unsigned long long)b_total, t);
	buf_printf(&b, "files scanned: %llu\n",
	           s ? (unsigned long long)secrets_files_scanned(s) : 0ull);
	if (layers.len)
		buf_append(&b, layers.data, layers.len);
	buf_release(&layers);
	return buf_detach(&b, ret_len);
}
