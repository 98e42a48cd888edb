/*
 * rules: loading, compiling and describing rule sets.
 *
 * The file format is trivy's custom-secret YAML (rules[], allow-rules[], with
 * id, category, title, severity, keywords, regex, secret-group-name, path,
 * allow-rules) plus strata's extensions (entropy, validate, context-only,
 * examples); unknown keys are ignored so that a user's trivy file loads as
 * is. The built-in set is the same YAML, embedded into the binary at build
 * time by embed.py, and parsed on first use like any other file, so that there
 * is one parser and one set of error messages.
 *
 * A rule set is immutable once built (merge aside), which is what lets every
 * scanner thread share it: the compiled PCRE2 codes, the prefilter and the
 * hash are only read.
 */
#include "rules.h"
#include "anchor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

extern const unsigned char scan_builtin_rules[];
extern const size_t scan_builtin_rules_len;

static int compile_regex(const char *src, uint32_t options, pcre2_code **out, const char *what,
                         struct scan_err *e)
{
	int errcode;
	PCRE2_SIZE erroff;
	pcre2_code *re;

	re =
	    pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED, options, &errcode, &erroff, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return scan_err_set(e, -EINVAL, "%s: regex error at offset %zu: %s", what,
		                    (size_t)erroff, (char *)msg);
	}
	/*
	 * JIT is an optimisation: when the platform lacks it, the interpreter
	 * runs. STRATA_NO_JIT asks for the interpreter: valgrind cannot see
	 * through JIT code and reports it (tools/memcheck).
	 */
	if (!getenv("STRATA_NO_JIT"))
		(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);

	*out = re;
	return 0;
}

int scan_rules_compile_regex(const char *src, pcre2_code **out, const char *what,
                             struct scan_err *e)
{
	return compile_regex(src, 0, out, what, e);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void scan_allow_clear(struct scan_allow *a)
{
	free(a->id);
	free(a->description);
	free(a->regex_src);
	free(a->path_src);
	pcre2_code_free(a->regex);
	pcre2_code_free(a->path);
}

void scan_rule_free(struct scan_rule *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->title);
	free(r->category);
	free_strv(r->keywords, r->nkeywords);
	free(r->regex_src);
	pcre2_code_free(r->regex);
	pcre2_code_free(r->regex_anch);
	free(r->group_name);
	free(r->path_src);
	pcre2_code_free(r->path);
	for (size_t i = 0; i < r->nallow; i++)
		scan_allow_clear(&r->allow[i]);
	free(r->allow);
	free(r->validate_name);
	free_strv(r->ex_match, r->nex_match);
	free_strv(r->ex_nomatch, r->nex_nomatch);
	free(r);
}

void scan_rules_free(struct scan_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		scan_rule_free(r->rules[i]);
	free(r->rules);
	for (size_t i = 0; i < r->nallow; i++)
		scan_allow_clear(&r->allow[i]);
	free(r->allow);
	scan_prefilter_free(r->pf);
	free(r->tags);
	free(r->always);
	free_strv(r->disable, r->ndisable);
	free_strv(r->disable_allow, r->ndisable_allow);
	free_strv(r->enable, r->nenable);
	free(r);
}

/* ---- YAML walking ---------------------------------------------------- */

struct loader {
	yaml_document_t *doc;
	const char *name;
	struct scan_err *e;
};

static const char *scalar(struct loader *l, yaml_node_t *n)
{
	(void)l;
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

static int bad(struct loader *l, yaml_node_t *n, const char *what)
{
	return scan_err_set(l->e, -EINVAL, "%s:%zu: %s", l->name,
	                    n ? (size_t)n->start_mark.line + 1 : 0, what);
}

static int dup_scalar(struct loader *l, yaml_node_t *n, char **out, const char *what)
{
	const char *s = scalar(l, n);

	if (!s)
		return bad(l, n, what);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

/* A scalar or a sequence of scalars, as a string vector. */
static int strv(struct loader *l, yaml_node_t *n, char ***out, size_t *nout, const char *what)
{
	yaml_node_item_t *it;
	size_t cnt = 0;

	free_strv(*out, *nout);
	*out = NULL;
	*nout = 0;
	if (n->type == YAML_SCALAR_NODE) {
		*out = calloc(1, sizeof(char *));
		if (!*out || !(**out = strdup(scalar(l, n))))
			return -ENOMEM;
		*nout = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return bad(l, n, what);
	cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	*out = calloc(cnt + 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *c = yaml_document_get_node(l->doc, *it);
		const char *s = scalar(l, c);

		if (!s)
			return bad(l, c, what);
		if (!((*out)[*nout] = strdup(s)))
			return -ENOMEM;
		(*nout)++;
	}
	return 0;
}

static int load_allow(struct loader *l, yaml_node_t *n, struct scan_allow *a, const char *owner)
{
	char what[300];
	int rc = 0;

	if (n->type != YAML_MAPPING_NODE)
		return bad(l, n, "an allow rule must be a mapping");
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const char *key = scalar(l, k);

		if (!key)
			continue;
		if (!strcmp(key, "id"))
			rc = dup_scalar(l, v, &a->id, "allow rule id must be a string");
		else if (!strcmp(key, "description"))
			rc = dup_scalar(l, v, &a->description, "description must be a string");
		else if (!strcmp(key, "regex"))
			rc = dup_scalar(l, v, &a->regex_src, "regex must be a string");
		else if (!strcmp(key, "path"))
			rc = dup_scalar(l, v, &a->path_src, "path must be a string");
		if (rc)
			return rc;
	}
	snprintf(what, sizeof(what), "%s: %s: allow rule %s", l->name, owner,
	         a->id ? a->id : "(no id)");
	if (a->regex_src && (rc = scan_rules_compile_regex(a->regex_src, &a->regex, what, l->e)))
		return rc;
	if (a->path_src && (rc = scan_rules_compile_regex(a->path_src, &a->path, what, l->e)))
		return rc;
	return 0;
}

static int load_allow_list(struct loader *l, yaml_node_t *n, struct scan_allow **out, size_t *nout,
                           const char *owner)
{
	size_t cnt;
	int rc;

	if (n->type != YAML_SEQUENCE_NODE)
		return bad(l, n, "allow-rules must be a sequence");
	if (*out)
		return bad(l, n, "allow-rules given twice");
	cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	*out = calloc(cnt + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *c = yaml_document_get_node(l->doc, n->data.sequence.items.start[i]);

		(*nout)++;
		if ((rc = load_allow(l, c, &(*out)[i], owner)))
			return rc;
	}
	return 0;
}

int scan_rule_compile(struct scan_rule *r, const char *name, struct scan_err *e)
{
	char what[300];
	int rc;

	snprintf(what, sizeof(what), "%s: rule %s", name, r->id);
	/* an offset limit lets the engine try the regex only near anchors */
	if ((rc = compile_regex(r->regex_src, PCRE2_USE_OFFSET_LIMIT, &r->regex, what, e)))
		return rc;
	if (r->path_src && (rc = scan_rules_compile_regex(r->path_src, &r->path, what, e)))
		return rc;
	r->group = 0;
	if (r->group_name) {
		int g = pcre2_substring_number_from_name(r->regex, (PCRE2_SPTR)r->group_name);

		if (g <= 0)
			return scan_err_set(e, -EINVAL, "%s: no group named '%s' in the regex",
			                    what, r->group_name);
		r->group = (uint32_t)g;
	}
	r->validate = scan_validator_parse(r->validate_name);
	return 0;
}

static int load_rule(struct loader *l, yaml_node_t *n, struct scan_rule **out)
{
	struct scan_rule *r;
	yaml_node_t *allow = NULL;
	int rc = 0;

	if (n->type != YAML_MAPPING_NODE)
		return bad(l, n, "a rule must be a mapping");
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*out = r;
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const char *key = scalar(l, k);

		if (!key || !v)
			continue;
		if (!strcmp(key, "id")) {
			rc = dup_scalar(l, v, &r->id, "id must be a string");
		} else if (!strcmp(key, "title")) {
			rc = dup_scalar(l, v, &r->title, "title must be a string");
		} else if (!strcmp(key, "category")) {
			rc = dup_scalar(l, v, &r->category, "category must be a string");
		} else if (!strcmp(key, "severity")) {
			const char *s = scalar(l, v);

			if (!s || scan_severity_parse(s, &r->severity))
				rc = bad(l, v, "severity must be CRITICAL, HIGH, MEDIUM or LOW");
		} else if (!strcmp(key, "keywords")) {
			rc = strv(l, v, &r->keywords, &r->nkeywords, "keywords must be strings");
		} else if (!strcmp(key, "regex")) {
			rc = dup_scalar(l, v, &r->regex_src, "regex must be a string");
		} else if (!strcmp(key, "secret-group-name")) {
			rc = dup_scalar(l, v, &r->group_name, "secret-group-name must be a string");
		} else if (!strcmp(key, "path")) {
			rc = dup_scalar(l, v, &r->path_src, "path must be a string");
		} else if (!strcmp(key, "allow-rules")) {
			allow = v;
		} else if (!strcmp(key, "entropy")) {
			const char *s = scalar(l, v);
			char *end;

			r->entropy = s ? strtod(s, &end) : -1;
			if (!s || *end || r->entropy < 0 || r->entropy > 8)
				rc = bad(l, v, "entropy must be a number of bits per byte (0-8)");
		} else if (!strcmp(key, "validate")) {
			rc = dup_scalar(l, v, &r->validate_name, "validate must be a string");
		} else if (!strcmp(key, "context-only")) {
			const char *s = scalar(l, v);

			r->context_only = s && (!strcmp(s, "true") || !strcmp(s, "yes"));
		} else if (!strcmp(key, "examples") && v->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
			     !rc && q < v->data.mapping.pairs.top; q++) {
				const char *ek = scalar(l, yaml_document_get_node(l->doc, q->key));
				yaml_node_t *ev = yaml_document_get_node(l->doc, q->value);

				if (ek && !strcmp(ek, "match"))
					rc = strv(l, ev, &r->ex_match, &r->nex_match,
					          "examples must be strings");
				else if (ek && !strcmp(ek, "nomatch"))
					rc = strv(l, ev, &r->ex_nomatch, &r->nex_nomatch,
					          "examples must be strings");
			}
		}
		if (rc)
			return rc;
	}
	if (!r->id || !*r->id)
		return bad(l, n, "rule without id");
	if (!r->regex_src)
		return scan_err_set(l->e, -EINVAL, "%s: rule %s has no regex", l->name, r->id);
	if (!r->title && !(r->title = strdup(r->id)))
		return -ENOMEM;
	if (!r->category && !(r->category = strdup("")))
		return -ENOMEM;
	if (allow && (rc = load_allow_list(l, allow, &r->allow, &r->nallow, r->id)))
		return rc;
	return scan_rule_compile(r, l->name, l->e);
}

struct scan_rule *scan_rules_lookup(const struct scan_rules *rs, const char *id, size_t *idx)
{
	for (size_t i = 0; i < rs->n; i++) {
		if (!strcmp(rs->rules[i]->id, id)) {
			if (idx)
				*idx = i;
			return rs->rules[i];
		}
	}
	return NULL;
}

static int load_doc(struct scan_rules *rs, struct loader *l)
{
	yaml_node_t *root = yaml_document_get_root_node(l->doc);
	int rc;

	if (!root)
		return 0; /* an empty file: no rules */
	if (root->type != YAML_MAPPING_NODE)
		return bad(l, root, "the top level must be a mapping with 'rules'");
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const char *key = scalar(l, k);

		if (!key || !v)
			continue;
		if (!strcmp(key, "rules")) {
			size_t cnt;

			if (v->type != YAML_SEQUENCE_NODE)
				return bad(l, v, "rules must be a sequence");
			if (rs->rules)
				return bad(l, v, "rules given twice");
			cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			rs->rules = calloc(cnt + 1, sizeof(*rs->rules));
			if (!rs->rules)
				return -ENOMEM;
			for (size_t i = 0; i < cnt; i++) {
				yaml_node_t *c =
				    yaml_document_get_node(l->doc, v->data.sequence.items.start[i]);
				struct scan_rule *r = NULL;

				rc = load_rule(l, c, &r);
				if (!rc && scan_rules_lookup(rs, r->id, NULL))
					rc = scan_err_set(l->e, -EINVAL, "%s: duplicate rule id %s",
					                  l->name, r->id);
				if (rc) {
					scan_rule_free(r);
					return rc;
				}
				rs->rules[rs->n++] = r;
			}
		} else if (!strcmp(key, "allow-rules")) {
			if ((rc = load_allow_list(l, v, &rs->allow, &rs->nallow, "global")))
				return rc;
		} else if (!strcmp(key, "disable-rules")) {
			if ((rc = strv(l, v, &rs->disable, &rs->ndisable, "rule ids expected")))
				return rc;
		} else if (!strcmp(key, "enable-builtin-rules")) {
			if ((rc = strv(l, v, &rs->enable, &rs->nenable, "rule ids expected")))
				return rc;
		} else if (!strcmp(key, "disable-allow-rules")) {
			if ((rc = strv(l, v, &rs->disable_allow, &rs->ndisable_allow,
			               "allow rule ids expected")))
				return rc;
		}
	}
	return 0;
}

int scan_rules_new_buffer(struct scan_rules **out, const char *name, const void *yaml, size_t len,
                          struct scan_err *e)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct scan_rules *rs;
	struct loader l = {&doc, name ? name : "rules", e};
	int rc;

	*out = NULL;
	if (len > SCAN_MAX_RULE_FILE)
		return scan_err_set(e, -EFBIG, "%s: rule file over %u bytes", l.name,
		                    SCAN_MAX_RULE_FILE);
	rs = calloc(1, sizeof(*rs));
	if (!rs || !yaml_parser_initialize(&parser)) {
		free(rs);
		return scan_err_set(e, -ENOMEM, "out of memory");
	}
	/* libyaml asserts on a NULL input, even empty */
	yaml_parser_set_input_string(&parser, yaml ? yaml : (const void *)"", yaml ? len : 0);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = scan_err_set(e, -EINVAL, "%s:%zu:%zu: YAML error: %s", l.name,
		                  (size_t)parser.problem_mark.line + 1,
		                  (size_t)parser.problem_mark.column + 1,
		                  parser.problem ? parser.problem : "?");
		yaml_parser_delete(&parser);
		scan_rules_free(rs);
		return rc;
	}
	rc = load_doc(rs, &l);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (!rc)
		rc = scan_rules_index(rs, e);
	if (rc) {
		if (rc == -ENOMEM)
			scan_err_set(e, rc, "out of memory");
		scan_rules_free(rs);
		return rc;
	}
	*out = rs;
	return 0;
}

int scan_rules_new_file(struct scan_rules **out, const char *path, struct scan_err *e)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return scan_err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SCAN_MAX_RULE_FILE) {
		close(fd);
		return scan_err_set(e, -EINVAL, "%s: not a regular file under %u bytes", path,
		                    SCAN_MAX_RULE_FILE);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return scan_err_set(e, -ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	rc = scan_rules_new_buffer(out, path, buf, got, e);
	free(buf);
	return rc;
}

int scan_rules_new_builtin(struct scan_rules **out, struct scan_err *e)
{
	return scan_rules_new_buffer(out, "built-in rules", scan_builtin_rules,
	                             scan_builtin_rules_len, e);
}

/* ---- index: prefilter and hash ----------------------------------------- */

static int cmp_rule_id(const void *a, const void *b)
{
	return strcmp((*(struct scan_rule *const *)a)->id, (*(struct scan_rule *const *)b)->id);
}

static void hash_str(struct scan_buf *b, const char *tag, const char *s)
{
	/* length-prefixed, so that no two different rule sets serialise alike */
	scan_buf_printf(b, "%s:%zu:%s\n", tag, s ? strlen(s) : (size_t)-1, s ? s : "");
}

static void hash_allow(struct scan_buf *b, const struct scan_allow *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hash_str(b, "allow.id", a[i].id);
		hash_str(b, "allow.regex", a[i].regex_src);
		hash_str(b, "allow.path", a[i].path_src);
	}
}

/* Most literals a rule may add to the prefilter for its anchors alone. */
#define MAX_EXTRA_ANCHORS 16

static void lower_ascii(char *d, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
}

static int add_tag(struct scan_rules *rs, size_t *cap, const char *lit, size_t len,
                   struct scan_kwtag t)
{
	int rc;

	if (rs->ntags == *cap) {
		size_t nc = *cap ? 2 * *cap : 256;
		struct scan_kwtag *n = realloc(rs->tags, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		rs->tags = n;
		*cap = nc;
	}
	if ((rc = scan_prefilter_add(rs->pf, lit, len, (uint32_t)rs->ntags)))
		return rc;
	rs->tags[rs->ntags++] = t;
	return 0;
}

/*
 * A rule's prefilter literals: its keywords (each opens a window), and,
 * when its regex has anchors (anchor.h), which keywords are anchors and the
 * anchors that are not keywords. Keywords are compared as the prefilter
 * does, case-insensitively, and each is added once.
 */
static int index_rule(struct scan_rules *rs, uint32_t ri, size_t *cap, size_t *used)
{
	struct scan_rule *r = rs->rules[ri];
	struct scan_anchor *an = malloc(SCAN_ANCHOR_MAX * sizeof(*an));
	char **kw = calloc(r->nkeywords + 1, sizeof(*kw));
	size_t *kwlen = calloc(r->nkeywords + 1, sizeof(*kwlen));
	size_t nkw = 0, nan = 0, extra = 0;
	int rc = 0;

	*used = 0;
	if (!an || !kw || !kwlen) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < r->nkeywords; k++) {
		size_t kl = strlen(r->keywords[k]);
		bool dup = false;

		if (!kl)
			continue;
		if (kl > 1024) {
			rc = -EINVAL;
			goto out;
		}
		for (size_t j = 0; j < nkw && !dup; j++)
			dup = kwlen[j] == kl && !strncasecmp(kw[j], r->keywords[k], kl);
		if (dup)
			continue;
		if (!(kw[nkw] = malloc(kl + 1))) {
			rc = -ENOMEM;
			goto out;
		}
		lower_ascii(kw[nkw], r->keywords[k], kl + 1);
		kwlen[nkw++] = kl;
	}
	r->anchored = scan_regex_anchors(r->regex_src, 3, (const char *const *)kw, kwlen, nkw, an,
	                                 &nan, r->lead) == 0;
	r->has_lead = false;
	for (size_t i = 0; i < sizeof(r->lead); i++)
		r->has_lead = r->has_lead || r->lead[i];
	for (size_t i = 0; r->anchored && i < nan; i++) {
		bool is_kw = false;

		for (size_t j = 0; j < nkw && !is_kw; j++)
			is_kw = kwlen[j] == an[i].len && !memcmp(kw[j], an[i].s, an[i].len);
		extra += !is_kw;
	}
	/* the engine bounds the walk back over lead bytes by the window that
	 * the anchor's own hit opened: lead needs anchors that are keywords */
	if (extra > MAX_EXTRA_ANCHORS || (r->has_lead && extra))
		r->anchored = false;
	pcre2_code_free(r->regex_anch);
	r->regex_anch = NULL;
	if (r->anchored) {
		uint32_t last = 0;

		pcre2_pattern_info(r->regex, PCRE2_INFO_LASTCODETYPE, &last);
		/* no start optimisations changes no match of a pattern without
		 * verbs or callouts (anchor.c gives up on verbs); failing to
		 * compile it only costs time */
		if (last &&
		    compile_regex(r->regex_src, PCRE2_USE_OFFSET_LIMIT | PCRE2_NO_START_OPTIMIZE,
		                  &r->regex_anch, r->id, NULL))
			r->regex_anch = NULL;
	}
	for (size_t j = 0; j < nkw; j++) {
		struct scan_kwtag t = {.rule = ri, .window = true};

		for (size_t i = 0; r->anchored && i < nan; i++)
			if (kwlen[j] == an[i].len && !memcmp(kw[j], an[i].s, an[i].len)) {
				t.anchor = true;
				t.back = an[i].back;
			}
		if ((rc = add_tag(rs, cap, kw[j], kwlen[j], t)))
			goto out;
		(*used)++;
	}
	for (size_t i = 0; r->anchored && i < nan; i++) {
		struct scan_kwtag t = {.rule = ri, .back = an[i].back, .anchor = true};
		bool is_kw = false;

		for (size_t j = 0; j < nkw && !is_kw; j++)
			is_kw = kwlen[j] == an[i].len && !memcmp(kw[j], an[i].s, an[i].len);
		if (!is_kw && (rc = add_tag(rs, cap, an[i].s, an[i].len, t)))
			goto out;
	}
out:
	for (size_t j = 0; kw && j < nkw; j++)
		free(kw[j]);
	free(kw);
	free(kwlen);
	free(an);
	return rc;
}

int scan_rules_index(struct scan_rules *rs, struct scan_err *e)
{
	struct scan_rule **sorted;
	struct scan_buf b = {0};
	size_t tagcap = 0;
	char *ser;
	int rc;

	scan_prefilter_free(rs->pf);
	rs->pf = NULL;
	free(rs->tags);
	rs->tags = NULL;
	rs->ntags = 0;
	free(rs->always);
	rs->nalways = 0;
	rs->always = calloc(rs->n + 1, sizeof(*rs->always));
	if (!rs->always || (rc = scan_prefilter_new(&rs->pf)))
		return scan_err_set(e, -ENOMEM, "out of memory");
	rs->max_groups = 1;
	for (size_t i = 0; i < rs->n; i++) {
		struct scan_rule *r = rs->rules[i];
		uint32_t cap = 0;
		size_t used = 0;

		pcre2_pattern_info(r->regex, PCRE2_INFO_CAPTURECOUNT, &cap);
		if (cap + 1 > rs->max_groups)
			rs->max_groups = cap + 1;
		if ((rc = index_rule(rs, (uint32_t)i, &tagcap, &used)))
			return rc == -ENOMEM
			           ? scan_err_set(e, rc, "out of memory")
			           : scan_err_set(e, rc, "rule %s: a keyword is not usable", r->id);
		if (!used)
			rs->always[rs->nalways++] = (uint32_t)i;
	}
	if ((rc = scan_prefilter_build(rs->pf)))
		return scan_err_set(e, rc, "building the keyword prefilter failed");

	sorted = malloc((rs->n + 1) * sizeof(*sorted));
	if (!sorted)
		return scan_err_set(e, -ENOMEM, "out of memory");
	if (rs->n) /* an empty rule file has no array at all */
		memcpy(sorted, rs->rules, rs->n * sizeof(*sorted));

	qsort(sorted, rs->n, sizeof(*sorted), cmp_rule_id);
	hash_str(&b, "engine", SCAN_ENGINE_VERSION);
	for (size_t i = 0; i < rs->n; i++) {
		const struct scan_rule *r = sorted[i];
		char num[64];

		hash_str(&b, "id", r->id);
		hash_str(&b, "title", r->title);
		hash_str(&b, "category", r->category);
		hash_str(&b, "severity", scan_severity_name(r->severity));
		for (size_t k = 0; k < r->nkeywords; k++)
			hash_str(&b, "keyword", r->keywords[k]);
		hash_str(&b, "regex", r->regex_src);
		hash_str(&b, "group", r->group_name);
		hash_str(&b, "path", r->path_src);
		snprintf(num, sizeof(num), "%.6f", r->entropy);
		hash_str(&b, "entropy", num);
		hash_str(&b, "validate", r->validate_name);
		hash_str(&b, "context-only", r->context_only ? "1" : "0");
		hash_allow(&b, r->allow, r->nallow);
	}
	hash_allow(&b, rs->allow, rs->nallow);
	free(sorted);
	ser = scan_buf_steal(&b);
	if (!ser)
		return scan_err_set(e, -ENOMEM, "out of memory");
	scan_sha256_hex(ser, strlen(ser), rs->hash);
	free(ser);
	return 0;
}

/* ---- lookup -------------------------------------------------------------- */

size_t scan_rules_count(const struct scan_rules *r)
{
	return r ? r->n : 0;
}

const char *scan_rules_hash(const struct scan_rules *r)
{
	return r->hash;
}

static void fill_info(const struct scan_rule *r, struct scan_rule_info *out)
{
	out->id = r->id;
	out->title = r->title;
	out->category = r->category;
	out->severity = r->severity;
	out->context_only = r->context_only;
	out->has_examples = r->nex_match || r->nex_nomatch;
}

int scan_rules_find(const struct scan_rules *r, const char *id, struct scan_rule_info *out)
{
	const struct scan_rule *x = id ? scan_rules_lookup(r, id, NULL) : NULL;

	if (!x)
		return -ENOENT;
	fill_info(x, out);
	return 0;
}

int scan_rules_get(const struct scan_rules *r, size_t i, struct scan_rule_info *out)
{
	if (i >= r->n)
		return -ENOENT;
	fill_info(r->rules[i], out);
	return 0;
}

size_t scan_rules_examples(const struct scan_rules *r, size_t i, bool match,
                           const char *const **out)
{
	if (i >= r->n) {
		*out = NULL;
		return 0;
	}
	*out = (const char *const *)(match ? r->rules[i]->ex_match : r->rules[i]->ex_nomatch);
	return match ? r->rules[i]->nex_match : r->rules[i]->nex_nomatch;
}
