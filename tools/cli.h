/*
 * cli: helpers shared by the strata subcommands (tools/ only). Messages go
 * to stderr as "strata: what failed: why"; exit codes are 0 success, 1 a
 * finding where a command reports findings, 2 usage or runtime errors.
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <getopt.h>
#include <stdint.h>

#include "image.h"
#include "secrets.h"
#include "tree.h"

#define EXIT_USAGE 2

extern const char *prog;

/* Options shared by every command that opens an image. */
struct common {
	struct image_opts image;
	const char *platform;
	long layer; /* --layer N, -1 when absent */
	int long_format;
	int no_cache;
	int no_verify;
	uint64_t max_layer_size; /* bounds on what an image may make us do; 0: default */
	uint64_t max_ratio;
	uint64_t max_entries;

	const char *cache_dir;
	int no_spill;
	const char *spill_dir;

	int quiet;
	/* strata scan: scan files as indexing reads them (see secrets.h) */
	struct secrets_stream *stream;
};

enum {
	OPT_PLATFORM = 256,
	OPT_NO_VERIFY,
	OPT_LAYER,
	OPT_HELP,
	OPT_NO_CACHE,
	OPT_CACHE_DIR,
	OPT_MAX_LAYER_SIZE,
	OPT_MAX_RATIO,
	OPT_MAX_ENTRIES,
	OPT_NO_SPILL,
	OPT_SPILL_DIR,
};

extern const struct option common_options[];
/* extra (a command's own options) followed by the common ones, malloc'd. */
struct option *cli_options(const struct option *extra);

/* Prints e and exits with EXIT_USAGE. */
void die_err(const struct err *e) __attribute__((noreturn));
/* Prints the message (fmt with one string) and the usage, exits with EXIT_USAGE. */
void usage_error(const char *usage, const char *fmt, const char *arg) __attribute__((noreturn));
/* Handles one option common to all commands; returns 0 if opt is not one of them. */
int common_option(struct common *c, int opt, const char *usage);
/* Opens the image named on the command line (with :TAG/@DIGEST), or exits. */
struct image *open_image(const char *arg, struct common *c);
/* The tree --layer N names, or the merged one; exits on a bad N. */
struct tree *pick_tree(struct image *img, const struct common *c);

int cmd_inspect(int argc, char **argv);
int cmd_scan(int argc, char **argv);

#endif
