/*
 * secrets_int.h: what secrets.c and secrets_stream.c share, and nothing else
 * includes. A secrets_stream collects findings while the image is indexed;
 * secrets.c takes them over in secrets_new.
 */
#ifndef STRATA_SECRETS_INT_H
#define STRATA_SECRETS_INT_H

#include <pthread.h>
#include <time.h>

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

/* An opened image's scan state (secrets.c); all of it lives here so that
 * secrets_reload.c can re-add findings. */
struct slayer {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled when in_flight drops to 0 */
	struct scan_results *results;
	uint8_t *done;         /* per entry: scanned (or claimed by a scan in progress) */
	uint32_t *alias_next;  /* per entry: next hardlink entry with the same target, or NONE */
	uint32_t *alias_first; /* per entry: first hardlink entry whose target it is, or NONE */
	uint32_t in_flight;    /* entry scans running outside the lock */
	struct secrets_layer_progress p;
};

struct hidden_key {
	uint32_t layer;
	const char *path;
	uint32_t how;
};

struct secrets {
	struct image *img;
	struct scan_rules *rules;            /* owned unless stream is set */
	const struct secrets_stream *stream; /* taken over in secrets_new */
	struct scan_vendor *vendor;
	struct scan_limits limits;
	struct scan_options sopts;
	struct scanner_pool pool; /* idle scanners for lazy scans and workers */
	struct slayer *layers;
	uint32_t n;
	struct hidden_key *hidden; /* open addressing on (layer, path) */
	uint32_t hmask;
	char *cache_dir; /* NULL: no saved results */
	unsigned threads;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t done_cond;
	struct scan_results *config;
	int full_running, full_done;
	struct timespec started, ended;
	int has_started;
	uint64_t files;
};

#define NONE UINT32_MAX

const char *secrets_visibility(const struct secrets *s, uint32_t layer, const char *path);
struct scan_scanner *secrets_take_scanner(struct secrets *s);
void secrets_give_scanner(struct secrets *s, struct scan_scanner *sc);
/* Scans entry ei's bytes under its path (unless aliases_only) and its hardlinks' paths. */
int secrets_scan_file(struct secrets *s, struct scan_scanner *sc, uint32_t li, uint32_t ei,
                      int aliases_only);

/* secrets_reload.c: saved results (0, or -ENOENT when none) and the indexing pass's. */
int secrets_load_saved(struct secrets *s, uint32_t li);
void secrets_save_results(struct secrets *s, uint32_t li);
int secrets_adopt_layer(struct secrets *s, uint32_t li, const struct stream_layer *st);

/* The built-in rules with opts->rules_file merged over them. */
int secrets_rules_load(const struct secrets_opts *opts, struct scan_rules **ret, struct err *err);

#endif
