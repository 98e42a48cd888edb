/*
 * Validators: GitHub and npm token checksums (tokens generated here), AWS
 * key id structure and account decoding, JWT decoding, private keys (PEM
 * RSA/EC/PKCS#8, encrypted, OpenSSH, PuTTY; generated here with OpenSSL),
 * certificates, and the key-to-certificate link made at the end of a session.
 */
#include "helpers.h"
#include "validate.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static struct scan_rules *rules;

static char *bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = strndup(p, (size_t)n);

	BIO_free(b);
	return s;
}

static char *pem_key(EVP_PKEY *pk, int traditional, const EVP_CIPHER *enc)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (traditional)
		PEM_write_bio_PrivateKey_traditional(
		    b, pk, enc, (unsigned char *)(enc ? "pw" : NULL), enc ? 2 : 0, NULL, NULL);
	else
		PEM_write_bio_PrivateKey(b, pk, enc, (unsigned char *)(enc ? "pw" : NULL),
		                         enc ? 2 : 0, NULL, NULL);
	return bio_text(b);
}

static void spki_hex(EVP_PKEY *pk, char out[65])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	scan_sha256_hex(der, (size_t)n, out);
	OPENSSL_free(der);
}

static void test_tokens(void)
{
	char tok[64], text[128];
	struct scan_results *r;
	const struct scan_finding *f;

	make_token("ghp_", 1, tok);
	CHECK(scan_check_github_token(tok, strlen(tok)) == 1, "generated ghp_ token checks");
	snprintf(text, sizeof(text), "export GH=%s\n", tok);
	r = scan_text(rules, "app/run.sh", text);
	f = find_rule(r, "github-token");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED, "valid GitHub token is confirmed");
	CHECK(f && strstr(f->why, "checksum valid"), "why says checksum valid");
	scan_results_free(r);

	tok[39] = tok[39] == 'A' ? 'B' : 'A';
	CHECK(scan_check_github_token(tok, strlen(tok)) == -1, "altered token fails checksum");
	snprintf(text, sizeof(text), "export GH=%s\n", tok);
	r = scan_text(rules, "app/run.sh", text);
	f = find_rule(r, "github-token");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE, "bad checksum makes an example");
	scan_results_free(r);

	for (unsigned i = 0; i < 5; i++) {
		static const char *const p[] = {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"};

		make_token(p[i], 100 + i, tok);
		CHECK(scan_check_github_token(tok, strlen(tok)) == 1, "%s token checks", p[i]);
	}
	CHECK(scan_check_github_token("github_pat_11AAAA", 17) == 0, "fine-grained: no checksum");

	make_token("npm_", 7, tok);
	CHECK(scan_check_npm_token(tok, strlen(tok)) == 1, "generated npm token checks");
	snprintf(text, sizeof(text), "//registry.npmjs.org/:_authToken=%s\n", tok);
	r = scan_text(rules, "home/u/.npmrc", text);
	f = find_rule(r, "npm-token");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED, "valid npm token is confirmed");
	scan_results_free(r);
	tok[10] ^= 1;
	CHECK(scan_check_npm_token(tok, strlen(tok)) == -1, "altered npm token fails");
}

static void test_aws(void)
{
	uint64_t acct = 0;
	struct scan_results *r;
	const struct scan_finding *f;

	/* Published by Tal Be'ery's note on AWS key ids: decodes to 609629065308. */
	CHECK(scan_aws_account_id("ASIAY34FZKBOKMUTVV7A", 20, &acct) == 1 &&
	          acct == 609629065308ull,
	      "account id decoded (%llu)", (unsigned long long)acct);
	CHECK(scan_aws_account_id("AKIAIOSFODNN7EXAMPLE", 20, &acct) == 0,
	      "older-format key id: well formed, no account");
	CHECK(scan_aws_account_id("AKIA0000111188889999", 20, &acct) == -1,
	      "digits 0,1,8,9 are not base32");
	CHECK(scan_aws_account_id("XKIAZ7V4SEH2KVJ72CEU", 20, &acct) == -1, "unknown prefix");
	r = scan_text(rules, "root/.aws/credentials", "aws_access_key_id = AKIAZ7V4SEH2KVJ72CEU\n");
	f = find_rule(r, "aws-access-key-id");
	CHECK(f && f->confidence == SCAN_CONF_LIKELY && strstr(f->why, "account"),
	      "AWS key id is likely, with its account: %s", f ? f->why : "-");
	scan_results_free(r);
	r = scan_text(rules, "root/.aws/credentials", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n");
	f = find_rule(r, "aws-access-key-id");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE, "AWS documentation key is an example");
	scan_results_free(r);
}

static void test_jwt(void)
{
	struct scan_results *r;
	const struct scan_finding *f;

	r = scan_text(rules, "srv/app.log",
	              "Bearer eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAic3ZjLWJhY2t1cCIs"
	              "ICJpc3MiOiAic3RyYXRhLXRlc3QiLCAiZXhwIjogMTg5MzQ1NjAwMH0.TJAMJTT1-NXa0IrleG6"
	              "woopoDzp7O8QuKEh6D0JCk39\n");
	f = find_rule(r, "jwt");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED, "decodable JWT is confirmed");
	CHECK(f && strstr(f->why, "alg HS256") && strstr(f->why, "2030-01-01"),
	      "why has alg and exp: %s", f ? f->why : "-");
	scan_results_free(r);
	/* header decodes to "{"alg"..." cut short: not JSON */
	r = scan_text(
	    rules, "srv/app.log",
	    "eyJhbGciOiAiSFMyNTYiLCAidHlw.eyJzdWIiOiAic3ZjLWJhY2t1cCIs.TJAMJTT1-NXa0IrleG6w\n");
	f = find_rule(r, "jwt");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE, "JWT that does not decode is not likely");
	scan_results_free(r);
}

static void check_key(const char *what, const char *pem, enum scan_confidence want,
                      const char *why_has, const char *spki)
{
	struct scan_results *r = scan_text(rules, "home/app/.ssh/key", pem);
	const struct scan_finding *f = find_rule(r, "private-key");

	CHECK(f && f->confidence == want, "%s: confidence %s", what,
	      f ? scan_confidence_name(f->confidence) : "none");
	CHECK(f && strstr(f->why, why_has), "%s: why has '%s': %s", what, why_has,
	      f ? f->why : "-");
	if (spki)
		CHECK(f && f->pubkey_sha256 && !strcmp(f->pubkey_sha256, spki),
		      "%s: SPKI fingerprint", what);
	scan_results_free(r);
}

static void put32(uint8_t **p, uint32_t v)
{
	(*p)[0] = (uint8_t)(v >> 24);
	(*p)[1] = (uint8_t)(v >> 16);
	(*p)[2] = (uint8_t)(v >> 8);
	(*p)[3] = (uint8_t)v;
	*p += 4;
}

static void putstr(uint8_t **p, const void *s, size_t n)
{
	put32(p, (uint32_t)n);
	memcpy(*p, s, n);
	*p += n;
}

/* OpenSSH's fingerprint, computed with OpenSSL's own base64. */
static void ssh_fp(const uint8_t *blob, size_t n, char *out)
{
	uint8_t md[32];
	unsigned l;
	char b64[64];

	EVP_Digest(blob, n, md, &l, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)b64, md, 32);
	*strchr(b64, '=') = '\0';
	sprintf(out, "SHA256:%s", b64);
}

static char *armour(const uint8_t *d, size_t n, const char *label)
{
	char *b64 = malloc(n * 2 + 8), *out = malloc(n * 3 + 200), *o = out;
	size_t bl;

	EVP_EncodeBlock((unsigned char *)b64, d, (int)n);
	bl = strlen(b64);
	o += sprintf(o, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < bl; i += 70)
		o += sprintf(o, "%.70s\n", b64 + i);
	sprintf(o, "-----END %s-----\n", label);
	free(b64);
	return out;
}

static void test_keys(void)
{
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char spki[65], *pem, fp[80];
	uint8_t pub[32], priv[32], blob[64], *p, cont[1024], sec[512];
	size_t pl = 32, kl = 32, bloblen, seclen, contlen;

	spki_hex(rsa, spki);
	pem = pem_key(rsa, 1, NULL);
	CHECK(strstr(pem, "BEGIN RSA PRIVATE KEY"), "PKCS#1 armour");
	check_key("PKCS#1 RSA", pem, SCAN_CONF_CONFIRMED, "RSA 2048 bits", spki);
	free(pem);
	pem = pem_key(rsa, 0, NULL);
	check_key("PKCS#8 RSA", pem, SCAN_CONF_CONFIRMED, "RSA 2048 bits", spki);
	free(pem);
	pem = pem_key(rsa, 0, EVP_aes_256_cbc());
	CHECK(strstr(pem, "BEGIN ENCRYPTED PRIVATE KEY"), "PKCS#8 encrypted armour");
	check_key("encrypted PKCS#8", pem, SCAN_CONF_LIKELY, "encrypted", NULL);
	free(pem);
	pem = pem_key(rsa, 1, EVP_aes_128_cbc());
	check_key("encrypted PKCS#1", pem, SCAN_CONF_LIKELY, "RSA private key, encrypted", NULL);
	free(pem);
	spki_hex(ec, spki);
	pem = pem_key(ec, 1, NULL);
	check_key("SEC1 EC", pem, SCAN_CONF_CONFIRMED, "EC 256 bits (prime256v1)", spki);
	free(pem);
	/* A damaged body: armour without a key inside is not confirmed. */
	check_key("damaged PEM",
	          "-----BEGIN RSA PRIVATE "
	          "KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
	          "-----END RSA PRIVATE KEY-----\n",
	          SCAN_CONF_LIKELY, "does not parse", NULL);

	/* OpenSSH: build an unencrypted openssh-key-v1 container for Ed25519. */
	EVP_PKEY_get_raw_public_key(ed, pub, &pl);
	EVP_PKEY_get_raw_private_key(ed, priv, &kl);
	p = blob;
	putstr(&p, "ssh-ed25519", 11);
	putstr(&p, pub, 32);
	bloblen = (size_t)(p - blob);
	ssh_fp(blob, bloblen, fp);
	p = sec;
	put32(&p, 0x5eed1234);
	put32(&p, 0x5eed1234);
	putstr(&p, "ssh-ed25519", 11);
	putstr(&p, pub, 32);
	{
		uint8_t both[64];

		memcpy(both, priv, 32);
		memcpy(both + 32, pub, 32);
		putstr(&p, both, 64);
	}
	putstr(&p, "test@strata", 11);
	for (uint8_t i = 1; (p - sec) % 8; i++)
		*p++ = i;
	seclen = (size_t)(p - sec);
	p = cont;
	memcpy(p, "openssh-key-v1", 15);
	p += 15;
	putstr(&p, "none", 4);
	putstr(&p, "none", 4);
	putstr(&p, "", 0);
	put32(&p, 1);
	putstr(&p, blob, bloblen);
	putstr(&p, sec, seclen);
	contlen = (size_t)(p - cont);
	pem = armour(cont, contlen, "OPENSSH PRIVATE KEY");
	spki_hex(ed, spki);
	check_key("OpenSSH Ed25519", pem, SCAN_CONF_CONFIRMED, fp, spki);
	check_key("OpenSSH Ed25519 type", pem, SCAN_CONF_CONFIRMED, "ssh-ed25519 256 bits", NULL);
	free(pem);
	/* The same container said to be encrypted: type known, not confirmed. */
	p = cont + 15;
	putstr(&p, "aes256-ctr", 10);
	putstr(&p, "bcrypt", 6);
	putstr(&p, "", 0);
	put32(&p, 1);
	putstr(&p, blob, bloblen);
	putstr(&p, sec, seclen);
	pem = armour(cont, (size_t)(p - cont), "OPENSSH PRIVATE KEY");
	check_key("OpenSSH encrypted", pem, SCAN_CONF_LIKELY, "encrypted (aes256-ctr)", NULL);
	free(pem);

	/* PuTTY PPK v2 with the same public blob. */
	{
		char b64[200], ppk[1024];

		EVP_EncodeBlock((unsigned char *)b64, blob, (int)bloblen);
		snprintf(ppk, sizeof(ppk),
		         "PuTTY-User-Key-File-2: ssh-ed25519\nEncryption: none\nComment: test\n"
		         "Public-Lines: 2\n%.64s\n%s\nPrivate-Lines: 1\n"
		         "AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n"
		         "Private-MAC: 0123abcd0123abcd0123abcd0123abcd0123abcd\n",
		         b64, b64 + 64);
		check_key("PuTTY", ppk, SCAN_CONF_CONFIRMED, fp, NULL);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

static char *make_cert(EVP_PKEY *pk, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, pk);
	X509_sign(x, pk, EVP_sha256());
	PEM_write_bio_X509(b, x);
	X509_NAME_free(nm);
	X509_free(x);
	return bio_text(b);
}

static void test_cert_link(void)
{
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *cert = make_cert(k1, "api.strata.example"), *key1 = pem_key(k1, 0, NULL);
	char *key2 = pem_key(k2, 0, NULL);
	struct scan_scanner *s;
	struct scan_results *res;
	struct scan_target t = {.path = "etc/ssl/certs/api.pem", .visibility = "live", .layer = 1};
	const struct scan_finding *f;

	scan_results_new(&res);
	scan_scanner_new(&s, rules, NULL, NULL);
	CHECK(scan_buffer(s, &t, cert, strlen(cert), scan_results_add, res) == 0, "scan cert");
	CHECK(scan_results_count(res) == 0, "a certificate alone is no finding");
	t.path = "etc/ssl/private/api.key";
	t.layer = 3;
	scan_buffer(s, &t, key1, strlen(key1), scan_results_add, res);
	t.path = "etc/ssl/private/other.key";
	scan_buffer(s, &t, key2, strlen(key2), scan_results_add, res);
	scan_results_finish(res);
	CHECK(scan_results_count(res) == 2, "two key findings");
	for (size_t i = 0; i < scan_results_count(res); i++) {
		f = scan_results_get(res, i);
		if (strstr(f->path, "api.key")) {
			CHECK(f->cert_subject && strstr(f->cert_subject, "CN=api.strata.example"),
			      "key linked to its certificate");
			CHECK(strstr(f->why, "matches certificate subject CN=api.strata.example") &&
			          strstr(f->why, "etc/ssl/certs/api.pem"),
			      "why names the certificate: %s", f->why);
			CHECK(f->cert_not_after && f->cert_not_after[0] == '2', "validity kept");
		} else {
			CHECK(!f->cert_subject, "the other key has no certificate");
		}
	}
	scan_scanner_free(s);
	scan_results_free(res);
	free(cert);
	free(key1);
	free(key2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static char *b64(const char *s)
{
	char *o = malloc(strlen(s) * 2 + 4);

	EVP_EncodeBlock((unsigned char *)o, (const unsigned char *)s, (int)strlen(s));
	return o;
}

/* Keys inside JSON strings and base64 (GCP service accounts, kubeconfig). */
static void test_wrapped(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *pem = pem_key(pk, 0, NULL), *cert = make_cert(pk, "kube-admin"), *json, *kube;
	char *k64 = b64(pem), *c64 = b64(cert), *o;
	struct scan_results *r;
	const struct scan_finding *f;

	/* JSON: newlines as \n escapes */
	json = malloc(strlen(pem) * 2 + 100);
	o = json + sprintf(json, "{\"type\": \"service_account\", \"private_key\": \"");
	for (const char *p = pem; *p; p++) {
		if (*p == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *p;
		}
	}
	strcpy(o, "\"}\n");
	r = scan_text(rules, "srv/app/sa.json", json);
	f = find_rule(r, "private-key");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED && strstr(f->why, "in an escaped string"),
	      "key in a JSON string: confirmed (%s)", f ? f->why : "-");
	scan_results_free(r);

	kube = malloc(strlen(k64) + strlen(c64) + 200);
	sprintf(kube,
	        "users:\n- name: admin\n  user:\n    client-certificate-data: %s\n"
	        "    client-key-data: %s\n",
	        c64, k64);
	r = scan_text(rules, "root/.kube/config", kube);
	f = find_rule(r, "kubeconfig-client-key");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED && strstr(f->why, "base64-encoded"),
	      "base64 key in a kubeconfig: confirmed (%s)", f ? f->why : "-");
	CHECK(f && f->cert_subject && strstr(f->cert_subject, "CN=kube-admin"),
	      "and linked to the base64 client certificate");
	CHECK(scan_results_count(r) == 1, "the certificate is context only");
	scan_results_free(r);
	free(pem);
	free(cert);
	free(json);
	free(kube);
	free(k64);
	free(c64);
	EVP_PKEY_free(pk);
}

static void test_basic_auth(void)
{
	char tok[64], up[128], text[256], *a;
	struct scan_results *r;
	const struct scan_finding *f;

	make_token("ghp_", 55, tok);
	snprintf(up, sizeof(up), "octo-ci:%s", tok);
	a = b64(up);
	snprintf(text, sizeof(text), "{\"auths\":{\"ghcr.io\":{\"auth\":\"%s\"}}}", a);
	free(a);
	r = scan_text(rules, "root/.docker/config.json", text);
	f = find_rule(r, "docker-config-auth");
	CHECK(f && f->confidence == SCAN_CONF_CONFIRMED && strstr(f->why, "user octo-ci") &&
	          strstr(f->why, "valid checksum"),
	      "registry auth hiding a GitHub token: confirmed (%s)", f ? f->why : "-");
	scan_results_free(r);
	a = b64("ci-bot:Zq8vR2mLz9pWx4kT");
	snprintf(text, sizeof(text), "{\"auths\":{\"r.example\":{\"auth\":\"%s\"}}}", a);
	free(a);
	r = scan_text(rules, "root/.docker/config.json", text);
	f = find_rule(r, "docker-config-auth");
	CHECK(f && f->confidence == SCAN_CONF_LIKELY && strstr(f->why, "user ci-bot"),
	      "user:password auth: likely, names the user");
	scan_results_free(r);
	a = b64("user:your-password-here");
	snprintf(text, sizeof(text), "{\"auths\":{\"r.example\":{\"auth\":\"%s\"}}}", a);
	free(a);
	r = scan_text(rules, "root/.docker/config.json", text);
	f = find_rule(r, "docker-config-auth");
	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE, "placeholder password: example");
	scan_results_free(r);
}

static void test_jwt_io(void)
{
	/* the public example token of jwt.io, copied into countless READMEs */
	struct scan_results *r = scan_text(
	    rules, "srv/app/README.txt",
	    "curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0"
	    "NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJ"
	    "f36POk6yJV_adQssw5c'\n");
	const struct scan_finding *f = find_rule(r, "jwt");

	CHECK(f && f->confidence == SCAN_CONF_EXAMPLE && strstr(f->why, "jwt.io"),
	      "the jwt.io example token is an example");
	scan_results_free(r);
}

int main(int argc, char **argv)
{
	rules = load_rules(argc > 1 ? argv[1] : MINI_RULES);
	CHECK(rules != NULL, "mini rules load");
	if (!rules)
		return tap_done();
	test_tokens();
	test_aws();
	test_jwt();
	test_keys();
	test_cert_link();
	test_wrapped();
	test_basic_auth();
	test_jwt_io();
	scan_rules_free(rules);
	return tap_done();
}
