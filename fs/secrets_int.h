/*
 * secrets_int.h: what secrets.c and secrets_stream.c share, and nothing else
 * includes. A secrets_stream collects findings while the image is indexed;
 * secrets.c takes them over in secrets_new.
 */
#ifndef STRATA_SECRETS_INT_H
#define STRATA_SECRETS_INT_H

#include <pthread.h>

#include "secrets.h"

/* Idle scanners, shared by threads: a scanner is made when none is idle. */
struct scanner_pool {
	pthread_mutex_t lock;
	struct scan_scanner **v;
	size_t n;
};

void scanner_pool_init(struct scanner_pool *p);
void scanner_pool_release(struct scanner_pool *p);
/* An idle scanner, or a new one for these rules and options; NULL when out of memory. */
struct scan_scanner *scanner_pool_take(struct scanner_pool *p, const struct scan_rules *rules,
                                       const struct scan_options *opts);
void scanner_pool_give(struct scanner_pool *p, struct scan_scanner *sc);

/* One finding of the indexing pass and the entry whose bytes gave it. */
struct stream_rec {
	uint32_t entry;
	struct scan_finding *f; /* owned; visibility and view path not set */
};

struct stream_layer {
	struct stream_rec *recs;
	size_t n, cap;
	uint8_t *seen; /* per entry: 1 when its bytes went through here */
	size_t nseen;
	struct scan_stats stats;
	uint64_t files; /* regular files seen, over the size limit included */
};

struct secrets_stream {
	struct scan_rules *rules; /* owned; secrets_new borrows them */
	struct scan_limits limits;
	struct scan_options sopts; /* no vendor: that needs the whole image */

	struct scanner_pool pool;

	pthread_mutex_t lock; /* guards what follows */
	struct stream_layer *layers;
	uint32_t nlayers;
};

/* The built-in rules with opts->rules_file merged over them. */
int secrets_rules_load(const struct secrets_opts *opts, struct scan_rules **ret, struct err *err);

#endif
