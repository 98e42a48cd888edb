/*
 * fuzz_scan: a libFuzzer target for the scanner (not built by meson).
 *
 * The first input byte picks what the rest is fed to: a file's bytes
 * (scan_buffer with the built-in rules: prefilter, regex windows,
 * validators, nested archives), an image config (scan_config), or a rule
 * file (the YAML loader and regex compilation). Reports are written to
 * /dev/null so that the writers run too.
 *
 * Build from the repository root after `meson setup build` (which generates
 * the embedded rules):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iscan \
 *     tests/fuzz/fuzz_scan.c scan/(all .c) build/scan/scan_rules_builtin.c \
 *     $(pkg-config --cflags --libs libpcre2-8 libarchive jansson yaml-0.1 \
 *       libcrypto zlib) -lm -o fuzz_scan
 *   ./fuzz_scan -max_len=1048576 corpus/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "scan.h"

static struct scan_rules *rules;
static struct scan_scanner *scanner;
static FILE *devnull;

static void setup(void)
{
	struct scan_limits lim;
	struct scan_options opt = {.limits = &lim};

	scan_limits_default(&lim);
	/* small bounds keep each run fast; the bounds are what is under test */
	lim.max_expanded = 8u << 20;
	lim.match_limit = 100000;
	if (scan_rules_new_builtin(&rules, NULL) || scan_scanner_new(&scanner, rules, &opt, NULL))
		abort();
	devnull = fopen("/dev/null", "w");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_results *res = NULL;
	struct scan_target t = {.path = "fuzz/input", .visibility = "live", .layer = 0};
	struct scan_report_options ro = {.rules = rules};

	if (!rules)
		setup();
	if (size < 1)
		return 0;
	if (scan_results_new(&res))
		abort();
	switch (data[0] % 3) {
	case 0:
		scan_buffer(scanner, &t, data + 1, size - 1, scan_results_add, res);
		break;
	case 1:
		scan_config(scanner, NULL, data + 1, size - 1, scan_results_add, res, NULL);
		break;
	case 2: {
		struct scan_rules *r = NULL;
		struct scan_scanner *s = NULL;

		if (!scan_rules_new_buffer(&r, "fuzz", data + 1, size - 1, NULL) &&
		    !scan_scanner_new(&s, r, NULL, NULL))
			scan_buffer(s, &t, data + 1, size - 1, scan_results_add, res);
		scan_scanner_free(s);
		scan_rules_free(r);
		break;
	}
	}
	scan_results_finish(res);
	scan_report_jsonl(devnull, res, &ro, NULL);
	scan_report_sarif(devnull, res, &ro, NULL);
	scan_report_text(devnull, res, &ro, NULL);
	scan_results_free(res);
	return 0;
}
