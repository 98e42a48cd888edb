/*
 * blob_impl: what fs/blob.c shares with its two decompression backends,
 * fs/blob_gzip.c and fs/blob_zstd.c. Not part of the blob interface.
 *
 * Both backends drive one "decoder": a cursor over the stored bytes that
 * produces the decompressed stream from some seek point onwards. The stream
 * pass uses one (recording seek points and hashing the stored bytes as it
 * reads them); blob_pread keeps another per blob, positioned where the last
 * read ended, so that sequential reads never restart.
 */
#ifndef STRATA_BLOB_IMPL_H
#define STRATA_BLOB_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include "blob.h"

#define BLOB_WINDOW (32u * 1024)
/* Member and frame starts cost no window, but thousands of tiny eStargz
 * members would bloat the index for nothing: keep one every 64 KiB of output. */
#define BLOB_FREE_POINT_SPAN (64u * 1024)
/* Several cursors, so that readers interleaving sequential reads of different
 * files of one layer (grep -r through FUSE) do not restart each other. */
#define BLOB_CURSORS        4
#define BLOB_CACHE_SPANS    8
#define BLOB_CACHE_SPAN_LEN (256u * 1024)

enum point_kind {
	POINT_START = 1,      /* a gzip member or zstd frame begins at in */
	POINT_CHECKPOINT = 2, /* a deflate block boundary inside a gzip member */
	POINT_SNAPSHOT = 3,   /* ISA-L's whole inflate state, anywhere inside a member */
};

struct blob_point {
	uint64_t in;  /* stored offset (blob-relative) of the first byte to read */
	uint64_t out; /* decompressed offset at that point */
	uint8_t kind;
	uint8_t bits;   /* checkpoint: unused bits of the byte before in */
	uint8_t bitval; /* checkpoint: those bits, for inflatePrime */
	bool borrowed;  /* data points into an index the caller keeps mapped */
	uint32_t len;   /* bytes at data */
	/* checkpoint: the BLOB_WINDOW bytes of output before out;
	 * snapshot: the inflate state as gz_snapshot_len() describes */
	unsigned char *data;
};

struct blob_span {
	uint64_t off;
	size_t len;
	uint64_t stamp; /* LRU clock; 0 = unused */
	unsigned char *data;
};

enum dec_state {
	DEC_MEMBER_START, /* expecting a gzip member or a zstd frame, or the end */
	DEC_BODY,         /* inside deflate data or a zstd frame */
	DEC_TRAILER,      /* gzip: skipping the 8-byte trailer after raw inflate */
	DEC_END,
	DEC_BROKEN, /* an error happened; must be restarted */
};

struct dec {
	struct blob *b;
	unsigned char *in;
	size_t in_cap, in_len, in_pos;
	uint64_t in_off;         /* stored offset of in[in_len], the next byte to pread */
	unsigned char last_byte; /* the consumed byte before in[0], for checkpoints */
	uint64_t out_pos;
	enum dec_state state;
	uint64_t stamp; /* LRU clock of the pread cursors */
	size_t trailer_left;
	bool raw_deflate; /* restarted from a checkpoint: no gzip header/trailer */

	z_stream z;
	bool z_ready;
	void *isal;         /* struct inflate_state, when built with ISA-L */
	bool isal_ok;       /* built with ISA-L and not told otherwise */
	bool use_isal;      /* the current member or span is inflated by ISA-L */
	uint64_t member_in; /* where the current gzip member starts, stored */
	uint64_t member_out;
	ZSTD_DCtx *zd;

	/* stream pass only */
	bool record;
	struct blob_point *pts;
	size_t npts, cap_pts;
	uint64_t last_point_out;
};

/*
 * A blob's spill (blob_spill.c): the prefix [0, done) of its decompressed
 * stream in a temporary file. Locks, always taken in this order: grow (one
 * thread grows the spill at a time; it owns dec and buf), then the blob's lock
 * (briefly, for its seek points) or the pool's lock (its list and byte count;
 * evictions happen under it), then rw (readers of the file and the grower
 * writing past done hold it shared; an eviction holds it exclusive). Nobody waits for
 * anything while holding rw, so an eviction never waits for long.
 */
struct spill {
	struct blob_spill *pool;
	struct spill *prev, *next; /* in the pool's list, under its lock */
	pthread_mutex_t grow;
	pthread_rwlock_t rw;
	int fd; /* -1 while there is no file; atomic, set under grow and rw exclusive, reset by
	         * an eviction under rw exclusive */
	uint64_t done;    /* bytes in the file; atomic, changed under rw (shared when growing) */
	bool complete;    /* atomic: the stream ends at done */
	uint64_t gen;     /* evictions so far, under rw and the pool's lock */
	uint64_t charged; /* bytes counted against the pool (>= done), under its lock */
	uint64_t stamp;   /* atomic: the pool's clock at the last use, for LRU */
	bool dead;        /* atomic: grows no more (no file, or writing or decompressing failed) */
	struct dec *dec;  /* under grow */
	unsigned char *buf; /* under grow, only while growing */
	/* counters, atomic */
	uint64_t hits, decompressed, drops;
};

struct blob {
	int fd;
	uint64_t offset, length;
	struct blob_limits lim;
	enum blob_compression comp;
	bool zlib_only; /* STRATA_BLOB_ZLIB set: no ISA-L even where built in */

	pthread_mutex_t lock;
	int64_t size; /* -1 while unknown; read with __atomic loads */
	/* Known points and none more than BLOB_SPILL_GAP from the next (or the
	 * end): no read can need the spill. Read with __atomic loads. */
	bool points_near;
	bool streaming;
	struct blob_point *pts; /* sorted by in and out; the start at 0 is implicit */
	size_t npts;

	struct dec *cur[BLOB_CURSORS]; /* pread cursors, created when first needed */
	struct blob_span spans[BLOB_CACHE_SPANS];
	uint64_t clock;
	struct blob_stats stats;
	struct spill *spill; /* NULL: no spill pool */
};

/* Reads until len bytes or the end of the file; returns the count or -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off);

struct dec *dec_new(struct blob *b, size_t in_cap);
void dec_free(struct dec *d);
ssize_t dec_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err);
/* Starts d at the seek point nearest before off (takes the blob's lock). */
int dec_seek(struct dec *d, uint64_t off, struct err *err);
/*
 * What blob_pread would decompress to reach off without the spill: 0 when a
 * cached span holds it, else the distance from the nearest seek point or
 * cursor before it (takes the blob's lock).
 */
uint64_t pread_cost(struct blob *b, uint64_t off);

/*
 * Serves [off, off + len) from the spill, growing it first when that costs
 * less than the cursors would, and returns the count (short only at the end
 * of the stream). *served false: the caller reads as if there were no spill
 * (errors of the spill's own decoder are not reported: that read meets them).
 */
ssize_t spill_pread(struct blob *b, void *buf, size_t len, uint64_t off, bool *served,
                    struct err *err);
void spill_free(struct spill *sp);
void spill_stats(const struct spill *sp, struct blob_stats *st);

/* Stored offset (blob-relative) of the next byte the decoder will consume. */
static inline uint64_t dec_stored_pos(const struct dec *d)
{
	return d->in_off - (d->in_len - d->in_pos);
}

/*
 * Makes at least want bytes available at d->in + d->in_pos unless the blob
 * ends first. Returns the bytes available, or a negative errno.
 */
ssize_t dec_fill(struct dec *d, size_t want, struct err *err);
int dec_check_limits(struct dec *d, struct err *err);
int dec_add_point(struct dec *d, const struct blob_point *p, struct err *err);

/* Frees n points and what they own (not what they borrow). */
void points_free(struct blob_point *pts, size_t n);
/* Makes pts (n of them, sorted) the blob's seek points for a stream of size
 * bytes, freeing the old ones. */
void points_take(struct blob *b, struct blob_point *pts, size_t n, uint64_t size);

/* Decompresses the next bytes into buf; 0 at the end of the stream. */
ssize_t dec_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err);

/*
 * The stream pass's decompressing and hashing (blob_pass.c), on threads of
 * their own for all but small blobs. d is the pass's decoder, started at the
 * blob's start and owned by the caller, who must not touch it between
 * pass_start and pass_finish; NULL when the stored bytes are the output
 * (the caller reads them; only the stored digest is taken).
 */
struct pass;
int pass_start(const struct blob *b, struct dec *d, size_t out_cap, struct pass **ret_pass,
               struct err *err);
/*
 * The next piece of output, valid until the next call: its length (0 at the
 * end) or a negative errno; *ret_stored_at is how far into the stored bytes
 * the decoder had read when it ended.
 */
ssize_t pass_next(struct pass *p, const void **ret_data, uint64_t *ret_stored_at, struct err *err);
/* After pass_next returned 0: both digests (out NULL when d was NULL). */
int pass_finish(struct pass *p, unsigned char stored[32], unsigned char out[32], struct err *err);
void pass_free(struct pass *p);

int gz_start(struct dec *d, const struct blob_point *p, struct err *err);
ssize_t gz_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err);
void gz_free(struct dec *d);
/*
 * Snapshots (ISA-L builds only): 0 when the len bytes at data are a snapshot
 * this build can resume from, else a negative errno. gz_snapshot_id() names
 * the ISA-L version and state layout that snapshots depend on (0 without ISA-L).
 */
int gz_snapshot_check(const unsigned char *data, size_t len);
uint64_t gz_snapshot_id(void);

int zs_start(struct dec *d, const struct blob_point *p, struct err *err);
ssize_t zs_read(struct dec *d, unsigned char *buf, size_t cap, struct err *err);
void zs_free(struct dec *d);

#endif
