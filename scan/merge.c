/*
 * merge: combining rule sets, as `strata scan --rules FILE` does with the
 * built-in set: rules replaced by id, global allow rules added, and trivy's
 * enable-builtin-rules / disable-rules / disable-allow-rules applied. Rules
 * are deep-copied and their regexes compiled again, so that each set owns
 * its PCRE2 codes and can be freed on its own.
 */
#include "rules.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char **strv_dup(char *const *v, size_t n, bool *oom)
{
	char **d = calloc(n + 1, sizeof(char *));

	if (!d) {
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		d[i] = scan_strdup(v[i], oom);
	return d;
}

static int allow_dup(struct scan_allow *d, const struct scan_allow *s, struct scan_err *e)
{
	bool oom = false;
	int rc;

	d->id = scan_strdup(s->id, &oom);
	d->description = scan_strdup(s->description, &oom);
	d->regex_src = scan_strdup(s->regex_src, &oom);
	d->path_src = scan_strdup(s->path_src, &oom);
	if (oom)
		return -ENOMEM;
	if (d->regex_src && (rc = scan_rules_compile_regex(d->regex_src, &d->regex, "allow", e)))
		return rc;
	if (d->path_src && (rc = scan_rules_compile_regex(d->path_src, &d->path, "allow", e)))
		return rc;
	return 0;
}

/* A deep copy, recompiled: PCRE2 codes are not shared between two sets so
 * that each set can be freed on its own. */
static int rule_dup(struct scan_rule **out, const struct scan_rule *s, struct scan_err *e)
{
	struct scan_rule *d = calloc(1, sizeof(*d));
	bool oom = false;
	int rc;

	*out = d;
	if (!d)
		return -ENOMEM;
	d->id = scan_strdup(s->id, &oom);
	d->title = scan_strdup(s->title, &oom);
	d->category = scan_strdup(s->category, &oom);
	d->severity = s->severity;
	d->keywords = strv_dup(s->keywords, s->nkeywords, &oom);
	d->nkeywords = s->nkeywords;
	d->regex_src = scan_strdup(s->regex_src, &oom);
	d->group_name = scan_strdup(s->group_name, &oom);
	d->path_src = scan_strdup(s->path_src, &oom);
	d->entropy = s->entropy;
	d->validate_name = scan_strdup(s->validate_name, &oom);
	d->context_only = s->context_only;
	d->ex_match = strv_dup(s->ex_match, s->nex_match, &oom);
	d->nex_match = s->nex_match;
	d->ex_nomatch = strv_dup(s->ex_nomatch, s->nex_nomatch, &oom);
	d->nex_nomatch = s->nex_nomatch;
	if (oom)
		return -ENOMEM;
	if (s->nallow) {
		d->allow = calloc(s->nallow, sizeof(*d->allow));
		if (!d->allow)
			return -ENOMEM;
		for (size_t i = 0; i < s->nallow; i++) {
			d->nallow++;
			if ((rc = allow_dup(&d->allow[i], &s->allow[i], e)))
				return rc;
		}
	}
	return scan_rule_compile(d, "merge", e);
}

int scan_rules_merge(struct scan_rules *dst, const struct scan_rules *src, struct scan_err *e)
{
	struct scan_rule **rules;
	struct scan_allow *allow;
	int rc;

	/* src's enable and disable lists first: they name rules of dst */
	if (src->nenable) {
		size_t kept = 0;

		for (size_t i = 0; i < dst->n; i++) {
			bool keep = false;

			for (size_t k = 0; k < src->nenable && !keep; k++)
				keep = !strcmp(dst->rules[i]->id, src->enable[k]);
			if (keep)
				dst->rules[kept++] = dst->rules[i];
			else
				scan_rule_free(dst->rules[i]);
		}
		dst->n = kept;
	}
	for (size_t k = 0; k < src->ndisable; k++) {
		size_t at;

		if (scan_rules_lookup(dst, src->disable[k], &at)) {
			scan_rule_free(dst->rules[at]);
			memmove(&dst->rules[at], &dst->rules[at + 1],
			        (dst->n - at - 1) * sizeof(*dst->rules));
			dst->n--;
		}
	}
	for (size_t k = 0; k < src->ndisable_allow; k++) {
		for (size_t i = 0; i < dst->nallow; i++) {
			if (dst->allow[i].id && !strcmp(dst->allow[i].id, src->disable_allow[k])) {
				scan_allow_clear(&dst->allow[i]);
				memmove(&dst->allow[i], &dst->allow[i + 1],
				        (dst->nallow - i - 1) * sizeof(*dst->allow));
				dst->nallow--;
				i--;
			}
		}
	}
	rules = realloc(dst->rules, (dst->n + src->n + 1) * sizeof(*rules));
	if (!rules)
		return scan_err_set(e, -ENOMEM, "out of memory");
	dst->rules = rules;
	for (size_t i = 0; i < src->n; i++) {
		struct scan_rule *r = NULL;
		size_t at;

		if ((rc = rule_dup(&r, src->rules[i], e))) {
			scan_rule_free(r);
			return rc == -ENOMEM ? scan_err_set(e, rc, "out of memory") : rc;
		}
		if (scan_rules_lookup(dst, r->id, &at)) {
			scan_rule_free(dst->rules[at]);
			dst->rules[at] = r;
		} else {
			dst->rules[dst->n++] = r;
		}
	}
	if (src->nallow) {
		allow = realloc(dst->allow, (dst->nallow + src->nallow) * sizeof(*allow));
		if (!allow)
			return scan_err_set(e, -ENOMEM, "out of memory");
		dst->allow = allow;
		for (size_t i = 0; i < src->nallow; i++) {
			memset(&dst->allow[dst->nallow], 0, sizeof(*allow));
			dst->nallow++;
			if ((rc = allow_dup(&dst->allow[dst->nallow - 1], &src->allow[i], e)))
				return rc;
		}
	}
	return scan_rules_index(dst, e);
}
