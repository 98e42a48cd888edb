/*
 * validate: offline checks that turn a regex match into a verdict, without
 * any network access: token checksums (GitHub, npm), the structure of AWS
 * access key ids and the account id they encode, and JWTs whose header and
 * payload must decode to JSON objects. Keys and certificates are in keys.c.
 *
 * A verdict is 1 (checked, valid: the finding is confirmed), 0 (nothing to
 * check: likely) or -1 (checked, invalid: reported as an example, quiet by
 * default, since a token with a wrong checksum was never issued).
 */
#include "validate.h"
#include "keys.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

enum scan_validator scan_validator_parse(const char *name)
{
	static const struct {
		const char *name;
		enum scan_validator v;
	} names[] = {
	    {"aws-access-key-id", SCAN_V_AWS_KEY_ID},
	    {"aws-key-id", SCAN_V_AWS_KEY_ID},
	    {"github-token", SCAN_V_GITHUB},
	    {"github", SCAN_V_GITHUB},
	    {"npm-token", SCAN_V_NPM},
	    {"npm", SCAN_V_NPM},
	    {"jwt", SCAN_V_JWT},
	    {"private-key", SCAN_V_PRIVATE_KEY},
	    {"openssh-private-key", SCAN_V_PRIVATE_KEY},
	    {"putty-private-key", SCAN_V_PRIVATE_KEY},
	    {"certificate", SCAN_V_CERTIFICATE},
	    {"basic-auth", SCAN_V_BASIC_AUTH},
	    {"docker-auth", SCAN_V_BASIC_AUTH},
	};

	if (!name || !*name)
		return SCAN_V_NONE;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(name, names[i].name))
			return names[i].v;
	return SCAN_V_UNKNOWN;
}

uint32_t scan_crc32(const void *d, size_t n)
{
	return (uint32_t)crc32(0L, d, (uInt)n);
}

/* Base62 (0-9A-Za-z), most significant digit first, left-padded with '0'. */
void scan_base62_6(uint32_t v, char out[7])
{
	static const char al[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

	for (int i = 5; i >= 0; i--) {
		out[i] = al[v % 62];
		v /= 62;
	}
	out[6] = '\0';
}

static bool all_base62(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

/*
 * PREFIX_ + 30 random base62 characters + the CRC32 of those 30 characters
 * in 6 base62 digits (GitHub's 2021 token format, which npm adopted).
 * Returns 1 valid, -1 wrong checksum or shape.
 */
static int check_crc_token(const char *s, size_t len, size_t plen)
{
	char want[7];

	if (len != plen + 36 || !all_base62(s + plen, 36))
		return -1;
	scan_base62_6(scan_crc32(s + plen, 30), want);
	return memcmp(want, s + plen + 30, 6) ? -1 : 1;
}

int scan_check_github_token(const char *s, size_t len)
{
	static const char *const pfx[] = {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

	for (size_t i = 0; i < 5; i++)
		if (len >= 4 && !memcmp(s, pfx[i], 4))
			return check_crc_token(s, len, 4);
	return 0; /* github_pat_ and older formats carry no checksum we know */
}

int scan_check_npm_token(const char *s, size_t len)
{
	if (len >= 4 && !memcmp(s, "npm_", 4))
		return check_crc_token(s, len, 4);
	return 0;
}

static int b32val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/*
 * AWS access key ids: a 4-letter type prefix and 16 base32 characters. In
 * the current generation, the 40 bits after the first bit of the decoded
 * part are the account id (Aidan Steele's and Tal Be'ery's analyses):
 * base32-decode from index 4, take 48 bits big-endian, mask 0x7fffffffff80,
 * shift right by 7. Returns 1 with *account set, 0 for a well-formed id of
 * the older generation (no account encoded), -1 for a malformed id.
 */
int scan_aws_account_id(const char *s, size_t len, uint64_t *account)
{
	static const char *const pfx[] = {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA",
	                                  "ANPA", "ANVA", "APKA", "AROA", "ASCA", NULL};
	uint64_t bits = 0;
	bool known = false;

	if (len != 20)
		return -1;
	for (int i = 0; pfx[i]; i++)
		if (!memcmp(s, pfx[i], 4))
			known = true;
	if (!known && memcmp(s, "A3T", 3))
		return -1;
	for (size_t i = 4; i < 20; i++)
		if (b32val((unsigned char)s[i]) < 0)
			return -1;
	for (size_t i = 4; i < 14; i++) /* 10 characters: 50 bits, keep the first 48 */
		bits = bits << 5 | (uint64_t)b32val((unsigned char)s[i]);
	bits >>= 2;
	if (!(bits >> 47))
		return 0;
	*account = (bits & 0x7fffffffff80ull) >> 7;
	return 1;
}

static void validate_aws(const char *s, size_t len, struct scan_validation *v)
{
	uint64_t acct = 0;
	int rc = scan_aws_account_id(s, len, &acct);

	if (rc < 0) {
		v->verdict = -1;
		scan_buf_puts(&v->why, "not a well-formed AWS access key id");
	} else if (rc == 0) {
		scan_buf_puts(&v->why,
		              "well-formed AWS access key id (older format, no account id)");
	} else {
		scan_buf_printf(&v->why, "well-formed AWS access key id, account %012llu",
		                (unsigned long long)acct);
	}
}

static json_t *b64json(const char *s, size_t n)
{
	uint8_t *buf = malloc(n + 1);
	json_t *j = NULL;
	long got;

	if (!buf)
		return NULL;
	got = scan_base64_decode(s, n, buf, n + 1);
	if (got > 0)
		j = json_loadb((char *)buf, (size_t)got, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static void validate_jwt(const char *s, size_t len, struct scan_validation *v)
{
	const char *d1 = memchr(s, '.', len), *d2;
	json_t *h = NULL, *p = NULL, *x;

	d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - s)) : NULL;
	if (d1 && d2) {
		h = b64json(s, (size_t)(d1 - s));
		p = b64json(d1 + 1, (size_t)(d2 - d1 - 1));
	}
	if (!h || !p || !json_is_string(json_object_get(h, "alg"))) {
		v->verdict = -1;
		scan_buf_puts(&v->why, "header or payload does not decode to JSON");
		goto out;
	}
	/* The token every JWT tutorial shows (jwt.io): sub 1234567890, John Doe. */
	if ((x = json_object_get(p, "name")) && json_is_string(x) &&
	    !strcmp(json_string_value(x), "John Doe")) {
		v->verdict = -1;
		scan_buf_puts(&v->why, "the jwt.io example token");
		goto out;
	}
	v->verdict = 1;
	scan_buf_printf(&v->why, "JWT, alg %s", json_string_value(json_object_get(h, "alg")));
	if (!strcasecmp(json_string_value(json_object_get(h, "alg")), "none"))
		scan_buf_puts(&v->why, " (unsigned)");
	if ((x = json_object_get(p, "iss")) && json_is_string(x))
		scan_buf_printf(&v->why, ", iss %.80s", json_string_value(x));
	if ((x = json_object_get(p, "sub")) && json_is_string(x))
		scan_buf_printf(&v->why, ", sub %.80s", json_string_value(x));
	if ((x = json_object_get(p, "exp")) && json_is_integer(x)) {
		time_t t = (time_t)json_integer_value(x);
		struct tm tm;
		char when[32] = "?";

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		scan_buf_printf(&v->why, ", exp %s", when);
	}
out:
	json_decref(h);
	json_decref(p);
}

static void validate_token(int rc, struct scan_validation *v)
{
	v->verdict = rc;
	if (rc > 0)
		scan_buf_puts(&v->why, "checksum valid");
	else if (rc < 0)
		scan_buf_puts(&v->why, "checksum invalid: never issued");
}

void scan_validation_clear(struct scan_validation *v)
{
	free(v->why.p);
	free(v->cert_subject);
	free(v->cert_issuer);
	free(v->cert_not_before);
	free(v->cert_not_after);
	memset(v, 0, sizeof(*v));
}

/* For key blocks whose secret group holds only the base64 body: prefer the
 * text that carries the BEGIN line. */
static void pick_block(const char **s, size_t *n, const char *match, size_t mlen)
{
	if (!memmem(*s, *n, "-----BEGIN", 10) && !memmem(*s, *n, "PuTTY-User-Key-File", 19) &&
	    match && mlen &&
	    (memmem(match, mlen, "-----BEGIN", 10) ||
	     memmem(match, mlen, "PuTTY-User-Key-File", 19))) {
		*s = match;
		*n = mlen;
	}
}

/*
 * Keys and certificates reach the scanner as PEM text, but also inside JSON
 * strings ("\n" escapes: GCP service-account files) and base64-encoded
 * (kubeconfig client-key-data). Returns the PEM text to parse, malloc'd,
 * or NULL when s is usable as is; *how says what was undone.
 */
static char *unwrap_block(const char *s, size_t n, size_t *outlen, const char **how)
{
	char *t = NULL;
	size_t tl = 0;

	if (!memmem(s, n, "-----BEGIN", 10)) {
		uint8_t *d = malloc(n + 1);
		long dl = d ? scan_base64_decode(s, n, d, n + 1) : -1;

		if (dl > 20 && memmem(d, (size_t)dl, "-----BEGIN", 10)) {
			t = (char *)d;
			tl = (size_t)dl;
			*how = "base64-encoded";
		} else {
			free(d);
			return NULL;
		}
	}
	if (memmem(t ? t : s, t ? tl : n, "\\n", 2)) {
		const char *src = t ? t : s;
		size_t sl = t ? tl : n, o = 0;
		char *u = malloc(sl + 1);

		if (!u) {
			free(t);
			return NULL;
		}
		for (size_t i = 0; i < sl; i++) {
			if (src[i] == '\\' && i + 1 < sl &&
			    (src[i + 1] == 'n' || src[i + 1] == 'r')) {
				if (src[++i] == 'n')
					u[o++] = '\n';
			} else if (src[i] == '\\' && i + 1 < sl && src[i + 1] == '/') {
				u[o++] = src[++i];
			} else {
				u[o++] = src[i];
			}
		}
		free(t);
		t = u;
		tl = o;
		*how = *how ? "base64-encoded, escaped" : "in an escaped string";
	}
	if (t) {
		t[tl] = '\0';
		*outlen = tl;
	}
	return t;
}

static void validate_block(bool key, const char *s, size_t n, struct scan_validation *v)
{
	const char *how = NULL;
	size_t ul = 0;
	char *u = unwrap_block(s, n, &ul, &how);

	if (key)
		scan_validate_key(u ? u : s, u ? ul : n, v);
	else
		scan_validate_cert(u ? u : s, u ? ul : n, v);
	if (how)
		scan_buf_printf(&v->why, " (%s)", how);
	free(u);
}

/*
 * HTTP basic credentials as base64 "user:password" (.docker/config.json
 * auths, Authorization headers). A password that is itself a token with a
 * checksum is checked too (a GitHub token as a registry password).
 */
static void validate_basic_auth(const char *s, size_t n, struct scan_validation *v)
{
	uint8_t buf[512];
	long dl = n < sizeof(buf) ? scan_base64_decode(s, n, buf, sizeof(buf) - 1) : -1;
	const char *colon;
	size_t ul, pl;
	int tok;

	if (dl <= 2) {
		v->verdict = -1;
		scan_buf_puts(&v->why, "does not decode as base64");
		return;
	}
	for (long i = 0; i < dl; i++) {
		if (buf[i] < 0x20 || buf[i] >= 0x7f) {
			v->verdict = -1;
			scan_buf_puts(&v->why, "does not decode to user:password");
			return;
		}
	}
	buf[dl] = '\0';
	colon = strchr((char *)buf, ':');
	if (!colon || colon == (char *)buf || !colon[1]) {
		v->verdict = -1;
		scan_buf_puts(&v->why, "does not decode to user:password");
		return;
	}
	ul = (size_t)(colon - (char *)buf);
	pl = (size_t)dl - ul - 1;
	scan_buf_printf(&v->why, "user %.*s", (int)(ul > 64 ? 64 : ul), (char *)buf);
	tok = scan_check_github_token(colon + 1, pl);
	if (!tok)
		tok = scan_check_npm_token(colon + 1, pl);
	if (tok > 0) {
		v->verdict = 1;
		scan_buf_puts(&v->why, ", password is a token with a valid checksum");
	} else if (tok < 0) {
		scan_buf_puts(&v->why, ", password is a token with a wrong checksum");
		v->verdict = -1;
	} else if (scan_example_value(colon + 1, pl)) {
		v->verdict = -1;
		scan_buf_puts(&v->why, ", placeholder password");
	}
}

void scan_validate(enum scan_validator kind, const char *secret, size_t slen, const char *match,
                   size_t mlen, struct scan_validation *v)
{
	switch (kind) {
	case SCAN_V_AWS_KEY_ID:
		validate_aws(secret, slen, v);
		break;
	case SCAN_V_GITHUB:
		validate_token(scan_check_github_token(secret, slen), v);
		break;
	case SCAN_V_NPM:
		validate_token(scan_check_npm_token(secret, slen), v);
		break;
	case SCAN_V_JWT:
		validate_jwt(secret, slen, v);
		break;
	case SCAN_V_PRIVATE_KEY:
		pick_block(&secret, &slen, match, mlen);
		validate_block(true, secret, slen, v);
		break;
	case SCAN_V_CERTIFICATE:
		pick_block(&secret, &slen, match, mlen);
		validate_block(false, secret, slen, v);
		break;
	case SCAN_V_BASIC_AUTH:
		validate_basic_auth(secret, slen, v);
		break;
	case SCAN_V_NONE:
	case SCAN_V_UNKNOWN:
		break;
	}
}
