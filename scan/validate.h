/*
 * validate.h: offline validators (validate.c: tokens, AWS key ids, JWTs,
 * basic auth; keys.c: private keys and certificates) and their verdicts.
 */
#ifndef STRATA_SCAN_VALIDATE_H
#define STRATA_SCAN_VALIDATE_H

#include "util.h"

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

struct scan_validation {
	int verdict; /* 1 checked and valid, 0 could not check, -1 checked and invalid */
	struct scan_buf why;
	char pubkey_sha256[65]; /* hex sha256 of the DER SubjectPublicKeyInfo, or "" */
	char *cert_subject;
	char *cert_issuer;
	char *cert_not_before;
	char *cert_not_after;
};

enum scan_validator scan_validator_parse(const char *name);
/*
 * Runs validator v on the secret; match is the whole regex match (for key
 * blocks the secret group may hold only the body). Fills out, which the
 * caller zeroes first and clears with scan_validation_clear().
 */
void scan_validate(enum scan_validator v, const char *secret, size_t slen, const char *match,
                   size_t mlen, struct scan_validation *out);
void scan_validation_clear(struct scan_validation *v);

/* 1 valid checksum, -1 wrong, 0 not a checksummed format. */
int scan_check_github_token(const char *s, size_t len);
int scan_check_npm_token(const char *s, size_t len);
/* 1 with the account id, 0 well formed without one (older ids), -1 malformed. */
int scan_aws_account_id(const char *s, size_t len, uint64_t *account);
uint32_t scan_crc32(const void *d, size_t n);
/* v in 6 base62 digits (0-9A-Za-z), zero-padded, as GitHub's checksums. */
void scan_base62_6(uint32_t v, char out[7]);

#endif
