/*
 * Nested archives: a zip (as a .jar) inside a tar.gz, a lone .gz, members
 * reported as "outer!/inner"; and every bound: depth, member count,
 * expanded bytes, expansion ratio and member size, each counted. The
 * archives are written here with libarchive's writer.
 */
#include "helpers.h"

#include <archive.h>
#include <archive_entry.h>

struct member {
	const char *name;
	const void *data;
	size_t len;
};

/* format: "zip", "tar" or "tgz"; returns a malloc'd archive. */
static void *make_archive(const char *format, const struct member *m, size_t n, size_t *outlen)
{
	struct archive *a = archive_write_new();
	size_t cap = 16 << 20, used = 0;
	void *buf = malloc(cap);

	if (!strcmp(format, "zip")) {
		archive_write_set_format_zip(a);
	} else {
		archive_write_set_format_pax_restricted(a);
		if (!strcmp(format, "tgz"))
			archive_write_add_filter_gzip(a);
	}
	archive_write_open_memory(a, buf, cap, &used);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, m[i].name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)m[i].len);
		archive_write_header(a, e);
		archive_write_data(a, m[i].data, m[i].len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	*outlen = used;
	return buf;
}

/* A lone gzip stream (not a tar) of data. */
static void *make_gz(const void *data, size_t len, size_t *outlen)
{
	struct archive *a = archive_write_new();
	size_t cap = len + (1 << 20), used = 0;
	void *buf = malloc(cap);
	struct archive_entry *e = archive_entry_new();

	archive_write_set_format_raw(a);
	archive_write_add_filter_gzip(a);
	archive_write_open_memory(a, buf, cap, &used);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_write_header(a, e);
	archive_write_data(a, data, len);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
	*outlen = used;
	return buf;
}

static struct scan_rules *rules;
static char tok[64], props[256];

static struct scan_results *scan_limits_(const char *path, const void *d, size_t n,
                                         const struct scan_limits *lim)
{
	struct scan_options opt = {.limits = lim};

	return scan_text_opt(rules, &opt, path, d, n);
}

static void test_jar_in_tgz(void)
{
	struct member jm[] = {
	    {"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n", 22},
	    {"conf/app.properties", props, strlen(props)},
	};
	size_t jarlen, tgzlen;
	void *jar = make_archive("zip", jm, 2, &jarlen);
	struct member tm[] = {{"lib/app.jar", jar, jarlen}, {"README", "hello\n", 6}};
	void *tgz = make_archive("tgz", tm, 2, &tgzlen);
	struct scan_results *res;
	const struct scan_finding *f;
	struct scan_limits lim;

	res = scan_text_opt(rules, NULL, "opt/app.jar", jar, jarlen);
	f = find_rule(res, "github-token");
	CHECK(f && !strcmp(f->path, "opt/app.jar!/conf/app.properties"), "zip member found: %s",
	      f ? f->path : "-");
	CHECK(f && f->line == 2 && f->confidence == SCAN_CONF_CONFIRMED,
	      "line inside the member, confirmed");
	scan_results_free(res);

	res = scan_text_opt(rules, NULL, "srv/bundle.tgz", tgz, tgzlen);
	f = find_rule(res, "github-token");
	CHECK(f && !strcmp(f->path, "srv/bundle.tgz!/lib/app.jar!/conf/app.properties"),
	      "jar inside tar.gz: %s", f ? f->path : "-");
	CHECK(scan_results_stats(res)->archives == 2 && scan_results_stats(res)->members == 4,
	      "2 archives, 4 members (%llu, %llu)",
	      (unsigned long long)scan_results_stats(res)->archives,
	      (unsigned long long)scan_results_stats(res)->members);
	scan_results_free(res);

	scan_limits_default(&lim);
	lim.max_depth = 1;
	res = scan_limits_("srv/bundle.tgz", tgz, tgzlen, &lim);
	CHECK(!find_rule(res, "github-token") && scan_results_stats(res)->limit_depth == 1,
	      "depth limit: the jar is not opened, and that is counted");
	scan_results_free(res);

	scan_limits_default(&lim);
	lim.max_members = 1;
	res = scan_limits_("opt/app.jar", jar, jarlen, &lim);
	CHECK(!find_rule(res, "github-token") && scan_results_stats(res)->limit_members == 1,
	      "member limit: counted");
	scan_results_free(res);

	free(tgz);

	/* 2 MiB of incompressible data next to a small jar: the jar's ratio is
	 * its own, not the outer archive's expansion over the jar's size */
	{
		size_t rn = 2 << 20, biglen;
		uint8_t *rnd = malloc(rn);
		uint32_t x = 2463534242u;

		for (size_t i = 0; i < rn; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			rnd[i] = (uint8_t)x;
		}
		struct member bm[] = {{"data.bin", rnd, rn}, {"lib/app.jar", jar, jarlen}};
		void *bigtgz = make_archive("tgz", bm, 2, &biglen);

		res = scan_text_opt(rules, NULL, "srv/big.tgz", bigtgz, biglen);
		CHECK(find_rule(res, "github-token") && !scan_results_stats(res)->limit_expanded,
		      "small jar after big data: scanned, no ratio limit");
		scan_results_free(res);
		free(bigtgz);
		free(rnd);
	}
	free(jar);
}

static void test_gz_and_bounds(void)
{
	size_t n = 4 << 20, gzlen, tlen;
	char *big = calloc(1, n);
	void *gz;
	struct scan_results *res;
	const struct scan_finding *f;
	struct scan_limits lim;

	gz = make_gz(props, strlen(props), &gzlen);
	res = scan_text_opt(rules, NULL, "var/backup/app.properties.gz", gz, gzlen);
	f = find_rule(res, "github-token");
	CHECK(f && !strcmp(f->path, "var/backup/app.properties.gz!/app.properties"),
	      "lone gzip: %s", f ? f->path : "-");
	scan_results_free(res);
	free(gz);

	/* 4 MiB of zeros then the token: compresses far beyond the ratio bound */
	memcpy(big + n - 200, props, strlen(props));
	gz = make_gz(big, n, &gzlen);
	res = scan_text_opt(rules, NULL, "x.gz", gz, gzlen);
	CHECK(!find_rule(res, "github-token") && scan_results_stats(res)->limit_expanded == 1,
	      "expansion ratio bound (%zu -> %zu bytes): counted", gzlen, n);
	scan_results_free(res);
	scan_limits_default(&lim);
	lim.max_ratio = 0;
	lim.max_expanded = 1 << 20;
	res = scan_limits_("x.gz", gz, gzlen, &lim);
	CHECK(!find_rule(res, "github-token") && scan_results_stats(res)->limit_expanded == 1,
	      "expanded bytes bound: counted");
	scan_results_free(res);
	scan_limits_default(&lim);
	lim.max_ratio = 0;
	res = scan_limits_("x.gz", gz, gzlen, &lim);
	CHECK(find_rule(res, "github-token"), "without those bounds the token is found");
	scan_results_free(res);
	free(gz);

	/* a tar whose first member is large: the next member is still reached */
	{
		struct member m[] = {{"big.bin", big, 2 << 20},
		                     {"small.txt", props, strlen(props)}};
		void *tar = make_archive("tar", m, 2, &tlen);

		res = scan_text_opt(rules, NULL, "t.tar", tar, tlen);
		f = find_rule(res, "github-token");
		CHECK(f && !strcmp(f->path, "t.tar!/small.txt"),
		      "tar member after a big one found");
		scan_results_free(res);
		free(tar);
	}

	/* something that looks like a zip but is not: raw bytes are still scanned */
	{
		char fake[300];

		snprintf(fake, sizeof(fake), "PK\x03\x04garbage %s", props);
		res = scan_text(rules, "weird.bin", fake);
		CHECK(find_rule(res, "github-token") &&
		          scan_results_stats(res)->archive_errors >= 1,
		      "damaged archive: raw scan, error counted");
		scan_results_free(res);
	}
	free(big);
}

static void test_member_size(void)
{
	size_t n = 300000, tlen;
	char *big = malloc(n);
	struct scan_limits lim;
	struct scan_results *res;

	memset(big, 'x', n);
	struct member m[] = {{"big.bin", big, n}, {"small.txt", props, strlen(props)}};
	void *zip = make_archive("zip", m, 2, &tlen);

	scan_limits_default(&lim);
	lim.max_file_size = 100000; /* the zip (compressed) passes, big.bin does not */
	res = scan_limits_("a.zip", zip, tlen, &lim);
	CHECK(tlen < 100000, "zip is small (%zu)", tlen);
	CHECK(scan_results_stats(res)->skipped_too_large == 1 && find_rule(res, "github-token"),
	      "member over the size limit skipped and counted, the next one scanned");
	scan_results_free(res);
	free(zip);
	free(big);
}

int main(int argc, char **argv)
{
	rules = load_rules(argc > 1 ? argv[1] : MINI_RULES);
	CHECK(rules != NULL, "rules load");
	if (!rules)
		return tap_done();
	make_token("ghp_", 9, tok);
	snprintf(props, sizeof(props), "db.host=localhost\ngithub.token=%s\n", tok);
	test_jar_in_tgz();
	test_gz_and_bounds();
	test_member_size();
	scan_rules_free(rules);
	return tap_done();
}
