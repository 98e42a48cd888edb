/*
 * scan_int.h: what the modules of scan/ share and callers never see: the
 * compiled rule, small string and hashing helpers, and the internal entry
 * points between engine, nested archives and validators.
 */
#ifndef STRATA_SCAN_INT_H
#define STRATA_SCAN_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>

#include "scan.h"

enum scan_validator {
	SCAN_V_NONE = 0,
	SCAN_V_UNKNOWN, /* a name this engine does not know: ignored */
	SCAN_V_AWS_KEY_ID,
	SCAN_V_GITHUB,
	SCAN_V_NPM,
	SCAN_V_JWT,
	SCAN_V_PRIVATE_KEY,
	SCAN_V_CERTIFICATE,
	SCAN_V_BASIC_AUTH,
};

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
};

struct scan_prefilter;

struct scan_rules {
	struct scan_rule **rules;
	size_t n;
	struct scan_allow *allow; /* global allow rules */
	size_t nallow;
	struct scan_prefilter *pf;
	uint32_t *always; /* rules without keywords: run on the whole buffer */
	size_t nalways;
	uint32_t max_groups;
	char hash[65];
};

/* err helpers */
int scan_err_set(struct scan_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* growable byte buffer */
struct scan_buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};
void scan_buf_add(struct scan_buf *b, const void *d, size_t n);
void scan_buf_puts(struct scan_buf *b, const char *s);
void scan_buf_printf(struct scan_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated string (owned by the caller) or NULL on OOM. */
char *scan_buf_steal(struct scan_buf *b);

void scan_sha256_hex(const void *d, size_t n, char out[65]);
void scan_hex(const uint8_t *d, size_t n, char *out);
/* Base64 (standard or url-safe alphabet, whitespace and padding tolerated).
 * Returns the decoded length, or -1 on a character outside the alphabet. */
long scan_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
void scan_base64_encode(const uint8_t *in, size_t len, char *out, bool pad);
bool scan_is_example_path(const char *path);
/* NULL, or why the value is a known example or placeholder. */
const char *scan_example_value(const char *s, size_t len);

/* report.c: a JSON string from bytes that may not be UTF-8 (never fails on them) */
typedef struct json_t json_t;
json_t *scan_json_str(const char *s);

/* rules.c */
int scan_rules_compile_regex(const char *src, pcre2_code **out, const char *what,
                             struct scan_err *e);

/* validation (validate.c, keys.c) */
struct scan_validation {
	int verdict; /* 1 checked and valid, 0 could not check, -1 checked and invalid */
	struct scan_buf why;
	char pubkey_sha256[65];
	char *cert_subject;
	char *cert_issuer;
	char *cert_not_before;
	char *cert_not_after;
};
/*
 * Runs validator v on the secret; match is the whole regex match and data
 * the whole buffer (for key blocks the secret group may hold only the body).
 */
void scan_validate(enum scan_validator v, const char *secret, size_t slen, const char *match,
                   size_t mlen, struct scan_validation *out);
void scan_validation_clear(struct scan_validation *v);
enum scan_validator scan_validator_parse(const char *name);
int scan_check_github_token(const char *s, size_t len);
int scan_check_npm_token(const char *s, size_t len);
int scan_aws_account_id(const char *s, size_t len, uint64_t *account);
void scan_validate_key(const char *text, size_t len, struct scan_validation *out);
void scan_validate_cert(const char *text, size_t len, struct scan_validation *out);
uint32_t scan_crc32(const void *d, size_t n);
void scan_base62_6(uint32_t v, char out[7]);

/* prefilter.c: Aho-Corasick over lowercased bytes */
typedef void (*scan_pf_hit)(uint32_t rule, size_t start, size_t end, void *opaque);
int scan_prefilter_new(struct scan_prefilter **out);
int scan_prefilter_add(struct scan_prefilter *pf, const char *kw, size_t len, uint32_t rule);
int scan_prefilter_build(struct scan_prefilter *pf);
void scan_prefilter_run(const struct scan_prefilter *pf, const uint8_t *d, size_t len,
                        scan_pf_hit cb, void *opaque);
void scan_prefilter_free(struct scan_prefilter *pf);

/* vendor.c */
/* The package that installed path unmodified, or NULL (md5 compared). */
const char *scan_vendor_match(const struct scan_vendor *v, const char *path, const void *data,
                              size_t len);

/* engine <-> nested */
struct scan_ctx;
int scan_buffer_at(struct scan_ctx *c, const char *path, const void *data, size_t len,
                   unsigned depth);
bool scan_nested_detect(const uint8_t *d, size_t len);
/* 1 when the archive was opened and its members scanned, 0 when it is not an
 * archive after all (scan the raw bytes), <0 on a fatal error. */
int scan_nested(struct scan_ctx *c, const char *path, const void *data, size_t len, unsigned depth);
struct scan_stats *scan_ctx_stats(struct scan_ctx *c);
const struct scan_limits *scan_ctx_limits(struct scan_ctx *c);
/* Adds to the bytes expanded from archives for this top-level buffer; returns the total. */
uint64_t scan_ctx_expand(struct scan_ctx *c, uint64_t add);

#endif
