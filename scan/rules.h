/*
 * rules.h: the compiled form of a rule set, shared by the engine (which
 * reads it) and rules.c (which builds it).
 */
#ifndef STRATA_SCAN_RULES_H
#define STRATA_SCAN_RULES_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "prefilter.h"
#include "validate.h"

struct scan_allow {
	char *id;
	char *description;
	char *regex_src;
	char *path_src;
	pcre2_code *regex;
	pcre2_code *path;
};

struct scan_rule {
	char *id;
	char *title;
	char *category;
	enum scan_severity severity;
	char **keywords;
	size_t nkeywords;
	char *regex_src;
	pcre2_code *regex;
	char *group_name;
	uint32_t group; /* 0: the whole match */
	char *path_src;
	pcre2_code *path;
	struct scan_allow *allow;
	size_t nallow;
	double entropy;
	char *validate_name;
	enum scan_validator validate;
	bool context_only;
	char **ex_match;
	size_t nex_match;
	char **ex_nomatch;
	size_t nex_nomatch;
	/* Every match holds an anchor (a prefilter literal of this rule with
	 * anchor set in its tag) at most tag.back bytes after its start: the
	 * regex need only be tried just before anchor hits (anchor.h). */
	bool anchored;
	/* Anchored rules whose matches may start with a run of these bytes
	 * (bit per byte value) before the anchor's distance (anchor.h); all
	 * their anchors are keywords. */
	bool has_lead;
	uint8_t lead[32];
	/* The regex compiled without PCRE2's start-of-match optimisations, for
	 * the anchored search, when it has a required last byte: PCRE2 looks for
	 * that byte ahead of each attempt, up to thousands of bytes further
	 * than the offset limit, and an anchored search makes many attempts.
	 * NULL: the anchored search uses regex. */
	pcre2_code *regex_anch;
};

/* What a prefilter hit means: the prefilter reports the index of one. */
struct scan_kwtag {
	uint32_t rule;
	uint32_t back; /* anchor: most bytes from a match's start to the literal */
	bool window;   /* a rule keyword: opens a regex window */
	bool anchor;   /* a match of the rule may start up to back bytes before it */
};

struct scan_rules {
	struct scan_rule **rules;
	size_t n;
	struct scan_allow *allow; /* global allow rules */
	size_t nallow;
	struct scan_prefilter *pf;
	struct scan_kwtag *tags; /* indexed by the prefilter's hit ids */
	size_t ntags;
	uint32_t *always; /* rules without keywords: run on the whole buffer */
	size_t nalways;
	uint32_t max_groups;
	char hash[65];
	/* trivy's disable-rules / disable-allow-rules: ids that this set, when
	 * merged into another, removes from it */
	char **disable;
	size_t ndisable;
	char **disable_allow;
	size_t ndisable_allow;
	char **enable; /* enable-builtin-rules: when merged, keep only these of dst */
	size_t nenable;
};

/* Shared by rules.c and merge.c. */
void scan_allow_clear(struct scan_allow *a);
void scan_rule_free(struct scan_rule *r);
/* Compiles a rule's regexes and resolves its group and validator. */
int scan_rule_compile(struct scan_rule *r, const char *name, struct scan_err *e);
struct scan_rule *scan_rules_lookup(const struct scan_rules *rs, const char *id, size_t *idx);
/* Rebuilds the prefilter, the keyword-less list and the hash after a change. */
int scan_rules_index(struct scan_rules *rs, struct scan_err *e);

/* Compiles (and JIT-compiles when possible) a rule or allow regex. */
int scan_rules_compile_regex(const char *src, pcre2_code **out, const char *what,
                             struct scan_err *e);

#endif
