/*
 * scan: the secret scanner of strata, a library that knows nothing of FUSE or
 * of the image model. This header is its whole interface.
 *
 * Objects and their life cycles (every *_free accepts NULL):
 *
 *  - struct scan_rules: a compiled rule set (the built-in one, compiled into
 *    the binary from scan/rules.yaml, or a trivy-style YAML file), with a
 *    keyword prefilter over all rules. Read-only once built: share one set
 *    between any number of threads. scan_rules_merge() is the only mutator;
 *    call it before any scanner uses the set.
 *  - struct scan_vendor: the files that distribution packages installed,
 *    with their md5 (dpkg md5sums, apk installed db). Filled by one thread,
 *    then read-only and shareable.
 *  - struct scan_scanner: the per-thread matching state (PCRE2 match data,
 *    JIT stack, counters). One per thread; never shared.
 *  - struct scan_results: a collection of findings. scan_results_add() is
 *    thread-safe (many scanners may feed one collection); the other calls
 *    need the caller to hold it alone.
 *  - struct scan_ignore: a set of finding fingerprints to drop. Read-only
 *    once loaded; shareable.
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on
 * failure, with a one-line message in the caller's struct scan_err when it is
 * not NULL. The library never prints and never exits.
 *
 * A finding holds the secret in clear in memory (for validation, for
 * fingerprints and for --show-secrets); reports redact it unless asked.
 *
 * Typical use (error handling left out):
 *
 *	struct scan_rules *rules;      scan_rules_new_builtin(&rules, &err);
 *	struct scan_results *res;      scan_results_new(&res);
 *	per thread:
 *		struct scan_scanner *s; scan_scanner_new(&s, rules, &opt, &err);
 *		for each file: scan_buffer(s, &target, bytes, len, scan_results_add, res);
 *		scan_scanner_stats(s, &st); scan_results_add_stats(res, &st);
 *		scan_scanner_free(s);
 *	scan_config(s, &target, config_json, len, scan_results_add, res, &err);
 *	scan_results_finish(res);                     links keys to certificates, sorts
 *	scan_results_filter(res, SCAN_CONF_LIKELY, ignore);
 *	scan_report_sarif(stdout, res, &report_opt, &err);
 */
#ifndef STRATA_SCAN_H
#define STRATA_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SCAN_ERR_MAX 512

struct scan_err {
	int code;               /* negative errno, 0 when nothing failed */
	char msg[SCAN_ERR_MAX]; /* NUL-terminated, empty when nothing failed */
};

/* ---- bounds ---------------------------------------------------------- */

/* Defaults of struct scan_limits (see there). */
#define SCAN_DEFAULT_MAX_FILE_SIZE (64ull << 20)
#define SCAN_DEFAULT_MAX_DEPTH     3u
#define SCAN_DEFAULT_MAX_MEMBERS   10000u
#define SCAN_DEFAULT_MAX_EXPANDED  (256ull << 20)
#define SCAN_DEFAULT_MAX_RATIO     200u
#define SCAN_DEFAULT_WINDOW_BEFORE 1024u
#define SCAN_DEFAULT_WINDOW_AFTER  (16u << 10)
#define SCAN_DEFAULT_MATCH_LIMIT   1000000u
#define SCAN_DEFAULT_DEPTH_LIMIT   10000u
#define SCAN_DEFAULT_MAX_FINDINGS  1000u
#define SCAN_DEFAULT_MAX_SECRET    16384u
/* Hard caps that no configuration lifts. */
#define SCAN_MAX_RULE_FILE (16u << 20) /* a rules YAML file */
#define SCAN_MAX_CONFIG    (16u << 20) /* an image config JSON */
#define SCAN_CONTEXT_LINES 2u          /* lines of context each side of a finding */
#define SCAN_CONTEXT_WIDTH 160u        /* bytes kept of each context line */

struct scan_limits {
	uint64_t max_file_size; /* larger buffers and members are skipped, counted */
	unsigned max_depth;     /* nesting of archives inside a scanned buffer */
	unsigned max_members;   /* entries read from one archive */
	uint64_t max_expanded;  /* bytes expanded from the archives of one top buffer */
	unsigned max_ratio;     /* an archive's expanded / stored size, past 1 MiB expanded */
	unsigned window_before; /* bytes before a keyword hit a regex may start at */
	unsigned window_after;  /* bytes after a keyword hit a regex may reach */
	uint32_t match_limit;   /* PCRE2 match limit (backtracking steps) */
	uint32_t depth_limit;   /* PCRE2 depth limit */
	unsigned max_findings;  /* findings kept per buffer, the rest counted */
	unsigned max_secret;    /* a longer secret is cut to this for storage */
};

void scan_limits_default(struct scan_limits *l);

/* ---- enums ------------------------------------------------------------ */

enum scan_severity {
	SCAN_SEV_UNKNOWN = 0,
	SCAN_SEV_LOW,
	SCAN_SEV_MEDIUM,
	SCAN_SEV_HIGH,
	SCAN_SEV_CRITICAL,
};

/* Ordered: a filter "at least likely" keeps likely and confirmed. */
enum scan_confidence {
	SCAN_CONF_EXAMPLE = 0, /* known example value, placeholder, test path, vendor file */
	SCAN_CONF_LIKELY,      /* matches, could not be checked offline */
	SCAN_CONF_CONFIRMED,   /* checked offline: checksum, parsable key, decodable JWT */
};

const char *scan_severity_name(enum scan_severity s);     /* "CRITICAL", ... */
const char *scan_confidence_name(enum scan_confidence c); /* "confirmed", ... */
/* Parses a name (case-insensitive); returns 0 or -EINVAL. */
int scan_confidence_parse(const char *name, enum scan_confidence *out);
int scan_severity_parse(const char *name, enum scan_severity *out);

/* ---- rules ------------------------------------------------------------ */

struct scan_rules;

struct scan_rule_info {
	const char *id;
	const char *title;
	const char *category;
	enum scan_severity severity;
	bool context_only; /* never a finding alone (certificates) */
	bool has_examples;
};

/* The rule set compiled into the binary (scan/rules.yaml at build time). */
int scan_rules_new_builtin(struct scan_rules **out, struct scan_err *e);
/* A trivy custom-secret YAML file, or the strata extension of it. */
int scan_rules_new_file(struct scan_rules **out, const char *path, struct scan_err *e);
/* Same, from memory; name is used in error messages. */
int scan_rules_new_buffer(struct scan_rules **out, const char *name, const void *yaml, size_t len,
                          struct scan_err *e);
void scan_rules_free(struct scan_rules *r);
/*
 * Adds the rules of src to dst; a rule of src whose id is already in dst
 * replaces it, src's global allow rules are added, and the rules and allow
 * rules that src lists in trivy's disable-rules / disable-allow-rules are
 * removed from dst (with enable-builtin-rules, only those listed stay). To replace a set
 * entirely, use the loaded set alone. Not thread-safe, and it rebuilds the
 * set: free every scanner made on dst before, and make new ones after.
 */
int scan_rules_merge(struct scan_rules *dst, const struct scan_rules *src, struct scan_err *e);
size_t scan_rules_count(const struct scan_rules *r);
/* Stable hex sha256 (64 chars + NUL) of the rule set and the engine version. */
const char *scan_rules_hash(const struct scan_rules *r);
/* 0 or -ENOENT. Strings stay valid as long as the rule set. */
int scan_rules_find(const struct scan_rules *r, const char *id, struct scan_rule_info *out);
int scan_rules_get(const struct scan_rules *r, size_t i, struct scan_rule_info *out);
/* The examples of rule i (for tests): count and strings, match or nomatch. */
size_t scan_rules_examples(const struct scan_rules *r, size_t i, bool match,
                           const char *const **out);

/* ---- vendor content --------------------------------------------------- */

struct scan_vendor;

int scan_vendor_new(struct scan_vendor **out);
void scan_vendor_free(struct scan_vendor *v);
/* A dpkg /var/lib/dpkg/info/PKG[:ARCH].md5sums file: "md5hex  path" lines. */
int scan_vendor_add_dpkg_md5sums(struct scan_vendor *v, const char *package, const void *data,
                                 size_t len, struct scan_err *e);
/*
 * Convenience: given the path of a file in the image and its bytes, adds it
 * when it is a dpkg md5sums file or apk's lib/apk/db/installed; returns 1 when
 * used, 0 when the path is none of those.
 */
int scan_vendor_add_db_file(struct scan_vendor *v, const char *path, const void *data, size_t len,
                            struct scan_err *e);
/* apk's installed database (P:/F:/R:/Z: records; Z is "Q1" + base64 sha1). */
int scan_vendor_add_apk_installed(struct scan_vendor *v, const void *data, size_t len,
                                  struct scan_err *e);
size_t scan_vendor_count(const struct scan_vendor *v);
/*
 * The package whose database lists path with exactly these bytes (its md5 or
 * sha1 sum), or NULL: vendor content, whose findings are examples.
 */
const char *scan_vendor_match(const struct scan_vendor *v, const char *path, const void *data,
                              size_t len);
/*
 * A hash of everything the databases hold, 0 when empty: findings that went
 * through one vendor set are only valid for the same set.
 */
uint64_t scan_vendor_fingerprint(const struct scan_vendor *v);
/* Whether the package databases have a checksum for path (reading its bytes is worth it). */
bool scan_vendor_lists(const struct scan_vendor *v, const char *path);

/* ---- scanning --------------------------------------------------------- */

/*
 * Where the scanned bytes come from. Only path is interpreted (path filters,
 * test/example path detection, vendor lookup, nested paths); the other
 * fields are carried into findings untouched. Strings are copied.
 */
struct scan_target {
	const char *path;         /* path inside the image, e.g. "etc/app.env" */
	const char *visibility;   /* "live", "deleted", "shadowed", "config", or NULL */
	int layer;                /* layer index, -1 when none */
	const char *layer_digest; /* or NULL */
	const char *created_by;   /* the layer's history command, or NULL */
	const char *view_path;    /* path inside the mount ("merged/etc/x"), or NULL */
};

struct scan_finding {
	const char *rule_id;
	const char *title;
	const char *category;
	enum scan_severity severity;
	enum scan_confidence confidence;
	bool context_only; /* a certificate: context for keys, not reported */

	const char *path; /* "outer.jar!/conf/x" inside archives; config: "config.Env[1]" */
	const char *visibility;
	int layer;
	const char *layer_digest;
	const char *created_by;
	const char *view_path;

	uint64_t line;   /* 1-based, in the innermost member */
	uint64_t column; /* 1-based byte column */
	uint64_t offset; /* 0-based byte offset of the secret */

	const char *secret;      /* clear text, NUL-terminated (cut at max_secret) */
	size_t secret_len;       /* original length */
	const char *redacted;    /* "ghp_…(40)" */
	const char *why;         /* validation notes, "; "-separated, may be "" */
	const char *context;     /* a few lines around, the secret redacted */
	const char *context_raw; /* the same lines unredacted */
	const char *fingerprint; /* 32 hex chars: sha256(rule id, secret, path) */

	/* Keys and certificates: hex sha256 of the DER SubjectPublicKeyInfo, or NULL. */
	const char *pubkey_sha256;
	const char *cert_subject; /* certificates, and keys once linked to one */
	const char *cert_issuer;
	const char *cert_not_before;
	const char *cert_not_after;
};

/* Called for every finding (and context-only match); the finding lives until
 * the callback returns: copy it with scan_finding_dup() to keep it. A
 * negative return stops the scan, and scan_buffer returns it. */
typedef int (*scan_finding_cb)(const struct scan_finding *f, void *opaque);

struct scan_finding *scan_finding_dup(const struct scan_finding *f);
void scan_finding_free(struct scan_finding *f);

struct scan_scanner;

struct scan_options {
	const struct scan_limits *limits; /* NULL: defaults */
	const struct scan_vendor *vendor; /* NULL: no vendor content detection */
	bool no_nested;                   /* do not open archives */
	bool ignore_path_filters;         /* rule path filters always pass (rule tests) */
};

int scan_scanner_new(struct scan_scanner **out, const struct scan_rules *rules,
                     const struct scan_options *opt, struct scan_err *e);
void scan_scanner_free(struct scan_scanner *s);

/*
 * Scans one file's bytes in one pass (text or binary; archives are opened).
 * Findings are deduplicated per (rule, secret, offset) within the call.
 * Returns 0, or a negative errno (-ENOMEM, or the callback's).
 */
int scan_buffer(struct scan_scanner *s, const struct scan_target *where, const void *data,
                size_t len, scan_finding_cb cb, void *opaque);

/*
 * Scans an image config JSON: config.Env, Cmd, Entrypoint, Labels (the same
 * in docker's container_config, as "container_config.Env[1]"), and each
 * history[i].created_by; findings have visibility "config", a path such as
 * "config.Env[1]" or "history[7].created_by", and for history entries the
 * index of the layer they made (-1 for empty layers). where may be NULL.
 * -EINVAL when the JSON does not parse.
 */
int scan_config(struct scan_scanner *s, const struct scan_target *where, const void *json,
                size_t len, scan_finding_cb cb, void *opaque, struct scan_err *e);

struct scan_stats {
	uint64_t files;             /* buffers scanned, nested members included */
	uint64_t bytes;             /* bytes scanned */
	uint64_t skipped_too_large; /* buffers/members over max_file_size */
	uint64_t archives;          /* nested archives opened */
	uint64_t members;           /* members scanned inside them */
	uint64_t limit_depth;       /* archives not opened: depth */
	uint64_t limit_members;     /* archives cut: member count */
	uint64_t limit_expanded;    /* archives cut: expanded bytes or ratio */
	uint64_t archive_errors;    /* damaged archives (what was read is kept) */
	uint64_t regex_limits;      /* PCRE2 match/depth limit hits */
	uint64_t findings;          /* findings reported (context-only excluded) */
	uint64_t findings_dropped;  /* over max_findings */
};

/* Cumulative counters of this scanner since it was made. */
void scan_scanner_stats(const struct scan_scanner *s, struct scan_stats *out);
void scan_stats_add(struct scan_stats *sum, const struct scan_stats *add);
/* What a scanner counted between two of its snapshots: after - before. */
void scan_stats_diff(const struct scan_stats *after, const struct scan_stats *before,
                     struct scan_stats *ret);

/* Shannon entropy in bits per byte (exposed for tests and tools). */
double scan_entropy(const void *data, size_t len);

/* ---- results ---------------------------------------------------------- */

struct scan_results;
struct scan_ignore;

int scan_results_new(struct scan_results **out);
void scan_results_free(struct scan_results *r);
/* A scan_finding_cb: copies f into the results given as opaque. Thread-safe. */
int scan_results_add(const struct scan_finding *f, void *results);
/* Adds counters (thread-safe). */
void scan_results_add_stats(struct scan_results *r, const struct scan_stats *st);
const struct scan_stats *scan_results_stats(const struct scan_results *r);
/*
 * Ends a session: links each private key to the certificates holding its
 * public key (the key finding gets cert_* fields and a note in why), then
 * sorts findings by layer, path, offset, rule, secret so that output is
 * deterministic, dropping exact repeats (a file scanned twice). Call once
 * all scanners are done; calling it again after more adds is fine.
 */
int scan_results_finish(struct scan_results *r);
/* Findings (context-only ones excluded), in the order of the last finish. */
size_t scan_results_count(const struct scan_results *r);
const struct scan_finding *scan_results_get(const struct scan_results *r, size_t i);
/* Drops findings under min or whose fingerprint is in ign (may be NULL);
 * returns how many were dropped. */
size_t scan_results_filter(struct scan_results *r, enum scan_confidence min,
                           const struct scan_ignore *ign);

/* Context-only matches (certificates) collected, i: 0.., NULL past the end. */
const struct scan_finding *scan_results_context(const struct scan_results *r, size_t i);

/*
 * A cache file of results (a layer's, say: key it by layer digest and
 * scan_rules_hash()). It keeps secrets in clear and the certificates, unlike
 * the reports: store it with the permissions of the image itself.
 * scan_results_load() hands each saved finding (context-only ones included)
 * to cb, e.g. scan_results_add, or a function that adjusts the visibility
 * for this image first. -ESTALE when written by another engine version.
 */
int scan_results_save(FILE *out, const struct scan_results *r, struct scan_err *e);
int scan_results_load(FILE *in, scan_finding_cb cb, void *opaque, struct scan_err *e);

/* ---- ignore sets ------------------------------------------------------ */

int scan_ignore_new(struct scan_ignore **out);
/* One fingerprint a line; '#' starts a comment; blank lines skipped. */
int scan_ignore_load_file(struct scan_ignore **out, const char *path, struct scan_err *e);
int scan_ignore_add(struct scan_ignore *ign, const char *fingerprint);
bool scan_ignore_has(const struct scan_ignore *ign, const char *fingerprint);
void scan_ignore_free(struct scan_ignore *ign);

/* ---- reports ---------------------------------------------------------- */

struct scan_report_options {
	bool show_secrets;              /* print secrets and unredacted context */
	bool color;                     /* ANSI colours in the text table */
	const struct scan_rules *rules; /* SARIF rule metadata (optional) */
	const char *tool_version;       /* NULL: the library's */
};

/* One JSON object per finding and line, keys in a fixed order. */
int scan_report_jsonl(FILE *out, const struct scan_results *r,
                      const struct scan_report_options *opt, struct scan_err *e);
/* SARIF 2.1.0, one run. */
int scan_report_sarif(FILE *out, const struct scan_results *r,
                      const struct scan_report_options *opt, struct scan_err *e);
/* A table for people, then a summary line. */
int scan_report_text(FILE *out, const struct scan_results *r, const struct scan_report_options *opt,
                     struct scan_err *e);
/* Counts by confidence, visibility and rule, and the scan counters
 * (skipped files, limits hit), for people (.secrets/summary.txt). */
int scan_report_summary(FILE *out, const struct scan_results *r, struct scan_err *e);
/* One finding for people: rule, confidence, where (visibility, layer,
 * created_by, path, line), match, why, fingerprint, then the context lines
 * (.secrets/by-rule/RULE/NNN). */
int scan_report_finding(FILE *out, const struct scan_finding *f, bool show_secrets,
                        struct scan_err *e);
/* One finding as a JSON object string (malloc'd), as in the JSONL report. */
char *scan_finding_json(const struct scan_finding *f, bool show_secrets);

#define SCAN_ENGINE_VERSION "strata-scan/1"

#endif
