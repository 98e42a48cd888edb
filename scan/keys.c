/*
 * keys: private keys and certificates, parsed offline.
 *
 * PEM keys (PKCS#1 RSA, SEC1 EC, DSA, PKCS#8) go through OpenSSL's decoder;
 * encrypted PEM keys cannot be opened without the passphrase, so they are
 * reported with what their armour says (type, "encrypted") and stay likely.
 * OpenSSH's "openssh-key-v1" container and PuTTY's PPK are parsed here: both
 * hold the public key blob in clear, which gives the key type, its size and
 * the SHA256 fingerprint that ssh-keygen -l prints.
 *
 * For PEM keys and certificates the fingerprint is the sha256 of the DER
 * SubjectPublicKeyInfo, which is what links a key to its certificate.
 */
#include "keys.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* A PEM block's label, as in "-----BEGIN <label>-----". */
static bool pem_label(const char *t, size_t n, char *out, size_t cap)
{
	const char *b = memmem(t, n, "-----BEGIN ", 11), *e;
	size_t l;

	if (!b)
		return false;
	b += 11;
	e = memmem(b, n - (size_t)(b - t), "-----", 5);
	if (!e)
		return false;
	l = (size_t)(e - b);
	if (l >= cap)
		l = cap - 1;
	memcpy(out, b, l);
	out[l] = '\0';
	return true;
}

static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* never prompt: encrypted keys stay closed */
}

static void spki_sha256(EVP_PKEY *pk, char out[65])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	out[0] = '\0';
	if (n > 0)
		scan_sha256_hex(der, (size_t)n, out);
	OPENSSL_free(der);
}

static const char *pkey_type(EVP_PKEY *pk)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		return "RSA";
	case EVP_PKEY_RSA_PSS:
		return "RSA-PSS";
	case EVP_PKEY_EC:
		return "EC";
	case EVP_PKEY_DSA:
		return "DSA";
	case EVP_PKEY_ED25519:
		return "Ed25519";
	case EVP_PKEY_ED448:
		return "Ed448";
	case EVP_PKEY_X25519:
		return "X25519";
	case EVP_PKEY_DH:
		return "DH";
	default:
		return "unknown type";
	}
}

static void describe_pkey(EVP_PKEY *pk, struct scan_validation *v)
{
	char group[64] = "";
	size_t gl = 0;

	spki_sha256(pk, v->pubkey_sha256);
	scan_buf_printf(&v->why, "%s %d bits", pkey_type(pk), EVP_PKEY_get_bits(pk));
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pk, group, sizeof(group), &gl) == 1)
		scan_buf_printf(&v->why, " (%s)", group);
	scan_buf_printf(&v->why, ", public key SHA256 %s", v->pubkey_sha256);
}

static void pem_key(const char *t, size_t n, struct scan_validation *v)
{
	char label[64];
	BIO *bio;
	EVP_PKEY *pk;

	if (!pem_label(t, n, label, sizeof(label))) {
		scan_buf_puts(&v->why, "no PEM armour");
		return;
	}
	if (!strcmp(label, "ENCRYPTED PRIVATE KEY") || memmem(t, n, "Proc-Type: 4,ENCRYPTED", 22)) {
		char type[64];

		snprintf(type, sizeof(type), "%s", label);
		if (strstr(type, " PRIVATE KEY"))
			*strstr(type, " PRIVATE KEY") = '\0';
		scan_buf_printf(&v->why, "%s private key, encrypted (passphrase needed)",
		                !strcmp(label, "ENCRYPTED PRIVATE KEY") ? "PKCS#8" : type);
		return;
	}
	bio = BIO_new_mem_buf(t, (int)(n > 1u << 30 ? 1u << 30 : n));
	pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
	BIO_free(bio);
	if (!pk) {
		scan_buf_printf(&v->why, "%s block does not parse", label);
		return;
	}
	v->verdict = 1;
	describe_pkey(pk, v);
	EVP_PKEY_free(pk);
}

/* ---- SSH wire format ------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static uint32_t rd_u32(struct rd *r)
{
	uint32_t x;

	if (r->n < 4) {
		r->bad = true;
		r->n = 0;
		return 0;
	}
	x = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	r->n -= 4;
	return x;
}

static const uint8_t *rd_str(struct rd *r, size_t *len)
{
	uint32_t l = rd_u32(r);
	const uint8_t *s = r->p;

	if (r->bad || l > r->n) {
		r->bad = true;
		r->n = 0;
		*len = 0;
		return NULL;
	}
	r->p += l;
	r->n -= l;
	*len = l;
	return s;
}

static bool str_is(const uint8_t *s, size_t n, const char *lit)
{
	return s && n == strlen(lit) && !memcmp(s, lit, n);
}

static int mpint_bits(const uint8_t *s, size_t n)
{
	while (n && !*s) {
		s++;
		n--;
	}
	if (!n)
		return 0;
	int bits = (int)(n - 1) * 8;
	for (uint8_t c = s[0]; c; c >>= 1)
		bits++;
	return bits;
}

/* An RSA public key from e and n, so that OpenSSH RSA keys get the same
 * SPKI fingerprint as their PEM form (and can be matched to certificates). */
static EVP_PKEY *rsa_from_en(const uint8_t *e, size_t el, const uint8_t *n, size_t nl)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	if (bld && bn && be && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) &&
	    EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

/*
 * Describes an SSH public key blob (RFC 4253 6.6): type, size, and the
 * OpenSSH fingerprint "SHA256:" + unpadded base64 of sha256(blob).
 * Returns false when the blob is malformed.
 */
static bool ssh_pubblob(const uint8_t *blob, size_t bl, struct scan_validation *v)
{
	struct rd r = {blob, bl, false};
	size_t tl, al, bl2;
	const uint8_t *t = rd_str(&r, &tl), *a, *b;
	uint8_t md[32];
	unsigned mdl = 0;
	char fp[64], type[64];
	int bits = 0;
	EVP_PKEY *pk = NULL;

	if (!t || !tl || tl >= sizeof(type))
		return false;
	memcpy(type, t, tl);
	type[tl] = '\0';
	if (str_is(t, tl, "ssh-rsa")) {
		a = rd_str(&r, &al);  /* e */
		b = rd_str(&r, &bl2); /* n */
		if (r.bad)
			return false;
		bits = mpint_bits(b, bl2);
		pk = rsa_from_en(a, al, b, bl2);
	} else if (str_is(t, tl, "ssh-dss")) {
		a = rd_str(&r, &al); /* p */
		if (r.bad)
			return false;
		bits = mpint_bits(a, al);
	} else if (str_is(t, tl, "ssh-ed25519")) {
		a = rd_str(&r, &al);
		if (r.bad || al != 32)
			return false;
		bits = 256;
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, a, al);
	} else if (tl > 19 && !memcmp(t, "ecdsa-sha2-nistp", 16)) {
		bits = atoi(type + 16);
	} else if (tl > 3 && !memcmp(t, "sk-", 3)) {
		bits = 256;
	} else {
		return false;
	}
	EVP_Digest(blob, bl, md, &mdl, EVP_sha256(), NULL);
	scan_base64_encode(md, 32, fp, false);
	scan_buf_printf(&v->why, "%s %d bits, SHA256:%s", type, bits, fp);
	if (pk) {
		spki_sha256(pk, v->pubkey_sha256);
		EVP_PKEY_free(pk);
	}
	return true;
}

/* Base64 body between the armour lines of an OpenSSH key. */
static uint8_t *armour_body(const char *t, size_t n, long *outlen)
{
	const char *b = memmem(t, n, "-----BEGIN OPENSSH PRIVATE KEY-----", 35), *e;
	uint8_t *buf;

	if (!b)
		return NULL;
	b += 35;
	e = memmem(b, n - (size_t)(b - t), "-----END", 8);
	if (!e)
		e = t + n;
	buf = malloc((size_t)(e - b) + 1);
	if (!buf)
		return NULL;
	*outlen = scan_base64_decode(b, (size_t)(e - b), buf, (size_t)(e - b) + 1);
	if (*outlen <= 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void openssh_key(const char *t, size_t n, struct scan_validation *v)
{
	static const char magic[] = "openssh-key-v1";
	long len = 0;
	uint8_t *raw = armour_body(t, n, &len);
	struct rd r;
	size_t cl, kl, ol, pl, sl;
	const uint8_t *cipher, *pub, *priv;
	uint32_t nkeys;
	bool encrypted;

	if (!raw || (size_t)len < sizeof(magic) || memcmp(raw, magic, sizeof(magic))) {
		scan_buf_puts(&v->why, "OpenSSH key container does not parse");
		free(raw);
		return;
	}
	r = (struct rd){raw + sizeof(magic), (size_t)len - sizeof(magic), false};
	cipher = rd_str(&r, &cl);
	rd_str(&r, &kl); /* kdf name */
	rd_str(&r, &ol); /* kdf options */
	nkeys = rd_u32(&r);
	pub = rd_str(&r, &pl);
	for (uint32_t i = 1; i < nkeys && i < 16 && !r.bad; i++)
		rd_str(&r, &sl);
	priv = rd_str(&r, &sl);
	if (r.bad || !nkeys || !pub) {
		scan_buf_puts(&v->why, "OpenSSH key container does not parse");
		free(raw);
		return;
	}
	encrypted = !str_is(cipher, cl, "none");
	scan_buf_puts(&v->why, "OpenSSH private key, ");
	if (!ssh_pubblob(pub, pl, v)) {
		scan_buf_puts(&v->why, "public key blob malformed");
		free(raw);
		return;
	}
	if (encrypted) {
		scan_buf_printf(&v->why, ", encrypted (%.*s)", (int)(cl < 32 ? cl : 32),
		                (const char *)cipher);
	} else {
		/* Two equal check words open the private section of a clear key. */
		struct rd pr = {priv, sl, false};
		uint32_t c1 = rd_u32(&pr), c2 = rd_u32(&pr);

		if (!pr.bad && c1 == c2)
			v->verdict = 1;
		else
			scan_buf_puts(&v->why, ", private section damaged");
	}
	free(raw);
}

/* PuTTY-User-Key-File-2/3: a text header, then Public-Lines of base64. */
static void putty_key(const char *t, size_t n, struct scan_validation *v)
{
	const char *h = memmem(t, n, "PuTTY-User-Key-File-", 20), *end = t + n, *p, *enc;
	const char *pl;
	long lines, got;
	uint8_t *blob;
	struct scan_buf b64 = {0};
	char *s;

	scan_buf_puts(&v->why, "PuTTY private key, ");
	enc = memmem(h, (size_t)(end - h), "Encryption: ", 12);
	pl = memmem(h, (size_t)(end - h), "Public-Lines: ", 14);
	if (!enc || !pl) {
		scan_buf_puts(&v->why, "header incomplete");
		return;
	}
	lines = strtol(pl + 14, NULL, 10);
	p = memchr(pl, '\n', (size_t)(end - pl));
	for (long i = 0; p && i < lines && i < 64; i++) {
		const char *q = memchr(p + 1, '\n', (size_t)(end - p - 1));

		scan_buf_add(&b64, p + 1, (size_t)((q ? q : end) - p - 1));
		p = q;
	}
	s = scan_buf_steal(&b64);
	blob = s ? malloc(strlen(s) + 1) : NULL;
	got = blob ? scan_base64_decode(s, strlen(s), blob, strlen(s) + 1) : -1;
	if (got <= 0 || !ssh_pubblob(blob, (size_t)got, v)) {
		scan_buf_puts(&v->why, "public key does not parse");
	} else if (!strncmp(enc + 12, "none", 4)) {
		v->verdict = 1;
	} else {
		scan_buf_puts(&v->why, ", encrypted");
	}
	free(s);
	free(blob);
}

void scan_validate_key(const char *t, size_t n, struct scan_validation *v)
{
	if (memmem(t, n, "PuTTY-User-Key-File-", 20))
		putty_key(t, n, v);
	else if (memmem(t, n, "BEGIN OPENSSH PRIVATE KEY", 25))
		openssh_key(t, n, v);
	else
		pem_key(t, n, v);
}

/* ---- certificates --------------------------------------------------------- */

static char *name_str(const X509_NAME *nm)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *s = NULL;
	long l;

	if (!b)
		return NULL;
	X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253);
	l = BIO_get_mem_data(b, &p);
	if (l >= 0 && (s = malloc((size_t)l + 1))) {
		memcpy(s, p, (size_t)l);
		s[l] = '\0';
	}
	BIO_free(b);
	return s;
}

static char *time_str(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return strdup("?");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

void scan_validate_cert(const char *t, size_t n, struct scan_validation *v)
{
	BIO *bio = BIO_new_mem_buf(t, (int)(n > 1u << 30 ? 1u << 30 : n));
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
	EVP_PKEY *pk;

	BIO_free(bio);
	if (!x) {
		scan_buf_puts(&v->why, "certificate does not parse");
		return;
	}
	v->verdict = 1;
	v->cert_subject = name_str(X509_get_subject_name(x));
	v->cert_issuer = name_str(X509_get_issuer_name(x));
	v->cert_not_before = time_str(X509_get0_notBefore(x));
	v->cert_not_after = time_str(X509_get0_notAfter(x));
	pk = X509_get0_pubkey(x);
	if (pk)
		spki_sha256(pk, v->pubkey_sha256);
	scan_buf_printf(&v->why, "certificate subject %s, issuer %s, valid %s to %s",
	                v->cert_subject ? v->cert_subject : "?",
	                v->cert_issuer ? v->cert_issuer : "?", v->cert_not_before,
	                v->cert_not_after);
	X509_free(x);
}
