/*
 * The results cache: what is saved loads back identical (the JSONL report
 * with secrets matches byte for byte), certificates survive so that a key
 * scanned in another layer still links to them, and a cache from another
 * engine version is refused with -ESTALE.
 */
#include "helpers.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static char *pem_of(EVP_PKEY *pk, X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (x)
		PEM_write_bio_X509(b, x);
	else
		PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static char *self_signed(EVP_PKEY *pk)
{
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	char *s;

	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"cache.test", -1,
	                           -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, pk);
	X509_sign(x, pk, EVP_sha256());
	s = pem_of(NULL, x);
	X509_NAME_free(nm);
	X509_free(x);
	return s;
}

static char *jsonl(struct scan_results *r)
{
	struct scan_report_options o = {.show_secrets = true};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	scan_report_jsonl(f, r, &o, NULL);
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	struct scan_rules *rules = load_rules(argc > 1 ? argv[1] : MINI_RULES);
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *cert = self_signed(pk), *key = pem_of(pk, NULL), tok[64], text[128];
	struct scan_scanner *s;
	struct scan_results *layer1, *all, *again;
	struct scan_target t = {.path = "etc/ssl/cert.pem", .visibility = "live", .layer = 1};
	char *cachebuf = NULL, *a, *b;
	size_t cachelen = 0;
	struct scan_err e = {0};
	FILE *f;

	CHECK(rules != NULL, "rules load");
	if (!rules)
		return tap_done();
	scan_scanner_new(&s, rules, NULL, NULL);
	make_token("ghp_", 5, tok);
	snprintf(text, sizeof(text), "t=%s\n", tok);

	/* layer 1: a certificate and a token, saved to the cache */
	scan_results_new(&layer1);
	scan_buffer(s, &t, cert, strlen(cert), scan_results_add, layer1);
	t.path = "app/env";
	scan_buffer(s, &t, text, strlen(text), scan_results_add, layer1);
	scan_results_finish(layer1);
	f = open_memstream(&cachebuf, &cachelen);
	CHECK(scan_results_save(f, layer1, &e) == 0, "cache saved");
	fclose(f);

	/* a later session: layer 1 from the cache, layer 2 (the key) scanned */
	scan_results_new(&all);
	f = fmemopen(cachebuf, cachelen, "r");
	CHECK(scan_results_load(f, scan_results_add, all, &e) == 0, "cache loads (%s)", e.msg);
	fclose(f);
	t.path = "etc/ssl/key.pem";
	t.layer = 2;
	scan_buffer(s, &t, key, strlen(key), scan_results_add, all);
	scan_results_finish(all);
	CHECK(scan_results_count(all) == 2, "token from the cache + key");
	CHECK(find_rule(all, "private-key") && find_rule(all, "private-key")->cert_subject &&
	          strstr(find_rule(all, "private-key")->cert_subject, "cache.test"),
	      "the key links to the cached certificate");

	/* round trip: identical report */
	scan_results_new(&again);
	f = fmemopen(cachebuf, cachelen, "r");
	scan_results_load(f, scan_results_add, again, NULL);
	fclose(f);
	scan_results_finish(again);
	a = jsonl(layer1);
	b = jsonl(again);
	CHECK(!strcmp(a, b) && strstr(a, tok), "loaded results report identically");
	free(a);
	free(b);

	static char stale[] = "{\"strata-scan-cache\":1,\"engine\":\"other/0\"}\n";
	static char damaged[] = "{\"strata-scan-cache\":1,\"engine\":\"" SCAN_ENGINE_VERSION "\"}\n"
	                        "{\"rule\":1}\n";

	f = fmemopen(stale, strlen(stale), "r");
	CHECK(scan_results_load(f, scan_results_add, again, &e) == -ESTALE,
	      "other engine version: -ESTALE");
	fclose(f);
	f = fmemopen(damaged, strlen(damaged), "r");
	CHECK(scan_results_load(f, scan_results_add, again, &e) == -EINVAL,
	      "damaged line: -EINVAL");
	fclose(f);

	scan_results_free(layer1);
	scan_results_free(all);
	scan_results_free(again);
	scan_scanner_free(s);
	scan_rules_free(rules);
	free(cachebuf);
	free(cert);
	free(key);
	EVP_PKEY_free(pk);
	return tap_done();
}
