/*
 * strata scan: the secret scanner over a whole image, without mounting.
 * Every layer is scanned (deleted and shadowed files included) plus the
 * image config; the report goes to stdout or --output. Exit code: 0 when
 * nothing at or above --min-confidence was found, 1 when something was, 2 on
 * errors, so that CI can gate on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "secrets.h"

static const char usage_scan[] =
    "usage: strata scan [OPTIONS] IMAGE[:TAG|@DIGEST]\n"
    "\n"
    "Scans every layer (deleted and shadowed files too) and the image config for secrets.\n"
    "  --format F            text (default), json (JSON Lines) or sarif (SARIF 2.1.0)\n"
    "  --output FILE         write the report to FILE instead of stdout\n"
    "  --show-secrets        print secrets in clear (default: first 4 characters and length)\n"
    "  --min-confidence C    example, likely (default) or confirmed\n"
    "  --rules FILE          more rules (trivy secret YAML), merged over the built-in ones\n"
    "  --ignore FILE         fingerprints to drop, one per line, # comments\n"
    "  --max-file-size N     skip (and count) files over N bytes (default 64 MiB)\n"
    "  --platform P          pick OS/ARCH[/VARIANT]\n"
    "  --no-cache            neither read nor write the index and results cache\n"
    "\n"
    "Exit status: 0 nothing found, 1 findings, 2 error.\n"
    "\n"
    "examples:\n"
    "  strata scan app.tar\n"
    "  strata scan --format sarif --output strata.sarif app.tar\n";

enum {
	OPT_FORMAT = 600,
	OPT_OUTPUT,
	OPT_SHOW,
	OPT_MIN,
	OPT_RULES,
	OPT_IGNORE,
	OPT_MAXSIZE,
};

static const struct option scan_options[] = {
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output", required_argument, NULL, OPT_OUTPUT},
    {"show-secrets", no_argument, NULL, OPT_SHOW},
    {"min-confidence", required_argument, NULL, OPT_MIN},
    {"rules", required_argument, NULL, OPT_RULES},
    {"ignore", required_argument, NULL, OPT_IGNORE},
    {"max-file-size", required_argument, NULL, OPT_MAXSIZE},
    {0, 0, 0, 0},
};

int cmd_scan(int argc, char **argv)
{
	struct common c = {.layer = -1};
	struct secrets_opts so = {0};
	struct scan_report_options ro = {0};
	enum scan_confidence min = SCAN_CONF_LIKELY;
	const char *format = "text", *output = NULL, *ignore_file = NULL;
	struct scan_ignore *ignore = NULL;
	struct scan_results *res = NULL;
	struct scan_err se = {0};
	struct secrets *sec = NULL;
	struct secrets_stream *stream = NULL;
	struct err e = {0};
	struct image *img;
	FILE *out = stdout;
	char *end;
	int opt, r;

	struct option *opts = cli_options(scan_options);

	while ((opt = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_FORMAT:
			format = optarg;
			if (strcmp(format, "text") && strcmp(format, "json") &&
			    strcmp(format, "sarif"))
				usage_error(usage_scan, "--format is text, json or sarif, not '%s'",
				            optarg);
			break;
		case OPT_OUTPUT:
			output = optarg;
			break;
		case OPT_SHOW:
			ro.show_secrets = true;
			break;
		case OPT_MIN:
			if (scan_confidence_parse(optarg, &min) < 0)
				usage_error(
				    usage_scan,
				    "--min-confidence is example, likely or confirmed, not '%s'",
				    optarg);
			break;
		case OPT_RULES:
			so.rules_file = optarg;
			break;
		case OPT_IGNORE:
			ignore_file = optarg;
			break;
		case OPT_MAXSIZE:
			so.max_file_size = strtoull(optarg, &end, 10);
			if (*end || !so.max_file_size)
				usage_error(usage_scan,
				            "--max-file-size wants a byte count, not '%s'", optarg);
			break;
		default:
			common_option(&c, opt, usage_scan);
		}
	}
	free(opts);
	if (argc - optind != 1)
		usage_error(usage_scan, "%s", "scan wants IMAGE");
	if (ignore_file && scan_ignore_load_file(&ignore, ignore_file, &se) < 0) {
		fprintf(stderr, "%s: %s\n", prog, se.msg);
		return EXIT_USAGE;
	}
	/* each layer that indexing reads is scanned on the way: one pass, not two */
	if (secrets_stream_new(&so, &stream, &e) < 0)
		die_err(&e);
	c.stream = stream;
	img = open_image(argv[optind], &c);
	so.no_cache = c.no_cache;
	so.stream = stream;
	if (secrets_new(img, &so, &sec, &e) < 0 || secrets_scan_all(sec, &e) < 0 ||
	    secrets_results(sec, &res, &e) < 0)
		die_err(&e);
	scan_results_filter(res, min, ignore);
	if (output && !(out = fopen(output, "we"))) {
		fprintf(stderr, "%s: cannot write %s: %s\n", prog, output, strerror(errno));
		return EXIT_USAGE;
	}
	ro.rules = secrets_rules(sec);
	ro.color = !output && !strcmp(format, "text") && isatty(STDOUT_FILENO);
	if (!strcmp(format, "json"))
		r = scan_report_jsonl(out, res, &ro, &se);
	else if (!strcmp(format, "sarif"))
		r = scan_report_sarif(out, res, &ro, &se);
	else
		r = scan_report_text(out, res, &ro, &se);
	if (out != stdout && fclose(out) != 0 && r == 0)
		r = -EIO;
	if (r < 0) {
		fprintf(stderr, "%s: writing the report: %s\n", prog,
		        se.msg[0] ? se.msg : strerror(-r));
		return EXIT_USAGE;
	}
	r = scan_results_count(res) > 0 ? 1 : 0;
	scan_results_free(res);
	scan_ignore_free(ignore);
	secrets_free(sec);
	secrets_stream_free(stream);
	image_free(img);
	return r;
}
