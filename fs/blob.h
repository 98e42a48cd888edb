/*
 * blob: one layer blob (a byte range of a file) seen as its decompressed stream.
 *
 * A blob is opened on the byte range [offset, offset + length) of a file
 * descriptor: a blobs/sha256/<hex> file of an OCI layout, or a member of an
 * image tar. Its compression is detected from the magic bytes, never from a
 * media type or a name: gzip (one or more members), zstd (one or more frames,
 * skippable frames allowed), or none (a raw tar).
 *
 * There are two ways in:
 *
 *  - blob_stream: one sequential pass over the whole decompressed stream, made
 *    once by the layer indexer. While it runs, the blob computes the sha256 of
 *    the stored bytes and of the decompressed stream, and records seek points
 *    (a checkpoint about every BLOB_SEEK_SPAN bytes of output, plus the free
 *    ones at gzip member and zstd frame starts), so that later random reads
 *    decompress at most about BLOB_SEEK_SPAN bytes. (zstd cannot resume inside
 *    a frame: in a blob of one big frame, a read behind the pread cursors
 *    decompresses from the start, unless the blob spills, below; sequential
 *    reads stay linear.)
 *
 *  - blob_pread: random access into the decompressed stream. Safe to call from
 *    many threads at once. Correct at any offset even before a stream pass (it
 *    then decompresses from the start).
 *
 * A blob given a spill pool (blob_set_spill) keeps, in a temporary file of the
 * pool's directory, a prefix of its decompressed stream, grown on demand by
 * reads that would otherwise decompress more than BLOB_SPILL_GAP bytes from the
 * nearest seek point or cursor (a single-frame zstd blob; gzip seek points are
 * a MiB apart and never trigger it). Reads inside the prefix are a pread of
 * that file. The pool bounds the bytes of all its blobs' spills together and
 * drops the least recently used spill when a new one needs room; a spill that
 * cannot be written is dropped; either way reads fall back to decompressing.
 *
 * When built with ISA-L (HAVE_ISAL), gzip is inflated with it throughout, and
 * its seek points are snapshots of ISA-L's state (see blob_gzip.c); otherwise
 * zlib inflates and its Z_BLOCK stops make the checkpoints. The environment
 * variable STRATA_BLOB_ZLIB,
 * when set at blob_open(), makes that blob use zlib throughout (for tests,
 * benchmarks, and as a way out).
 *
 * Every resource that the input controls is bounded by struct blob_limits:
 * the decompressed size, the expansion ratio, the zstd window.
 *
 * Ownership: a blob does not own fd; the caller keeps it open until blob_free().
 * A blob_stream borrows its blob; free the stream before the blob.
 */
#ifndef STRATA_BLOB_H
#define STRATA_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/types.h>

#include "err.h"

#define BLOB_SEEK_SPAN (1u << 20)

enum blob_compression {
	BLOB_RAW,
	BLOB_GZIP,
	BLOB_ZSTD,
};

struct blob_limits {
	uint64_t max_output;          /* bound on the decompressed size, bytes */
	uint64_t max_expansion;       /* bound on decompressed / stored size, when stored > 1 MiB */
	unsigned zstd_window_log_max; /* bound on the zstd window (log2 bytes) */
};

/*
 * How the limits apply: decompression fails with -EFBIG ("decompression bomb:
 * ...") as soon as the output passes max_output, or passes max_expansion times
 * the stored size while either the stored size is above 1 MiB or the output is
 * above 1 GiB. Small blobs thus may expand freely up to 1 GiB (tiny layers of
 * zeros are legitimate), and nothing expands without bound. A zstd frame that
 * needs a window above 2^zstd_window_log_max bytes is refused with -EFBIG too.
 * The checks run during the stream pass and during blob_pread alike.
 *
 * Where the compressed data ends before the stored bytes do (trailing zeros, or
 * anything that is not the start of another gzip member or zstd frame), the
 * decompressed stream ends there: that is not an error. Truncated or corrupt
 * compressed data is (-EIO, naming the stored offset).
 */

struct blob_digests {
	unsigned char stored[32];       /* sha256 of the blob as stored (the layer digest) */
	unsigned char decompressed[32]; /* sha256 of the decompressed stream (the diff_id) */
	uint64_t stored_size;
	uint64_t decompressed_size;
};

struct blob;
struct blob_stream;

/* Fills l with the defaults: 256 GiB output, ratio 2000, zstd window 2^30. */
void blob_limits_default(struct blob_limits *l);

/* What inflates gzip blobs in this process: "ISA-L 2.30.0" or "zlib". */
const char *blob_gzip_engine(void);

/* Counters for tests and benchmarks: how much work random access costs. */
struct blob_stats {
	uint64_t pread_decompressed; /* bytes decompressed on behalf of blob_pread */
	uint64_t pread_restarts;     /* times blob_pread restarted at a seek point */
	uint64_t cache_hits;         /* pread pieces served from a cached span */
	uint64_t cache_misses;
	uint64_t seek_points; /* recorded or imported, the start at 0 not counted */
	/* the spill (see blob_set_spill); pread_decompressed includes spill_decompressed */
	uint64_t spill_hits;         /* blob_pread calls served from the spill file */
	uint64_t spill_decompressed; /* bytes decompressed to grow the spill */
	uint64_t spill_bytes;        /* bytes in the spill file now */
	uint64_t spill_drops;        /* spills evicted for room, or dropped after a write error */
};

/*
 * Opens the blob at [offset, offset + length) of fd and sniffs its compression.
 * lim may be NULL for the defaults. The blob is returned in *ret_blob.
 */
int blob_open(int fd, uint64_t offset, uint64_t length, const struct blob_limits *lim,
              struct blob **ret_blob, struct err *err);
void blob_free(struct blob *b);

enum blob_compression blob_compression(const struct blob *b);
const char *blob_compression_name(enum blob_compression c); /* "none", "gzip", "zstd" */
uint64_t blob_stored_size(const struct blob *b);

/*
 * Size of the decompressed stream, or -1 while unknown (a compressed blob
 * before its stream pass has finished).
 */
int64_t blob_size(const struct blob *b);

/* Starts the sequential pass. Only one stream per blob at a time. */
int blob_stream_open(struct blob *b, struct blob_stream **ret_stream, struct err *err);

/*
 * Returns the next run of decompressed bytes: a count > 0 with *ret_data
 * pointing at them (valid until the next call), 0 at the end of the stream, or
 * a negative errno.
 */
ssize_t blob_stream_next(struct blob_stream *s, const void **ret_data, struct err *err);

/*
 * Reads whatever the caller left unread, then fills *ret_digests and hands the
 * seek points and the decompressed size to the blob. Bytes after the end of the
 * compressed data (trailing zeros) are hashed as stored but produce no output.
 */
int blob_stream_finish(struct blob_stream *s, struct blob_digests *ret_digests, struct err *err);
/* Stored bytes the stream has read so far (for progress reports). */
uint64_t blob_stream_stored_offset(const struct blob_stream *s);

void blob_stream_free(struct blob_stream *s);

/*
 * Reads up to len bytes at offset off of the decompressed stream into buf.
 * Returns the count read (short only at the end of the stream) or a negative
 * errno. Thread-safe.
 */
ssize_t blob_pread(struct blob *b, void *buf, size_t len, uint64_t off, struct err *err);

/*
 * The seek points as one flat, position-independent byte string (for the on-disk
 * layer cache), and back. blob_index_export returns a malloc'd buffer the caller
 * frees. blob_index_import validates what it is given (a corrupt or foreign
 * index is refused with -EINVAL, never trusted) and sets the decompressed size.
 */
int blob_index_export(const struct blob *b, void **ret_buf, size_t *ret_len, struct err *err);
/*
 * The same string as *ret_n pieces to write out in order (*ret_len bytes in
 * all), without copying the points' data: the head and the point records are
 * in the block *ret_iov starts, which the caller frees (free(*ret_iov)); the
 * data pieces are the blob's own, valid until blob_free(b) or an import.
 */
int blob_index_pieces(const struct blob *b, struct iovec **ret_iov, size_t *ret_n, size_t *ret_len,
                      struct err *err);
int blob_index_import(struct blob *b, const void *buf, size_t len, struct err *err);
/*
 * The same, but the seek points keep pointing into buf instead of copying it:
 * for an index in a mapped file, whose pages then stay on disk until a read
 * needs them. buf must stay valid and unchanged until blob_free(b).
 */
int blob_index_import_mapped(struct blob *b, const void *buf, size_t len, struct err *err);

/* Copies the counters of b into *ret. Thread-safe. */
void blob_stats(const struct blob *b, struct blob_stats *ret);

/*
 * Spill pools. A read that would decompress more than BLOB_SPILL_GAP bytes
 * goes through the spill: about 4 ms of zstd on one core, and more than the
 * distance between gzip seek points (BLOB_SEEK_SPAN and a deflate block).
 */
#define BLOB_SPILL_GAP (4u << 20)
/* The default bound on the bytes of one pool's spills. */
#define BLOB_SPILL_MAX_DEFAULT (4ull << 30)

struct blob_spill;

/*
 * Opens a pool whose spill files go to dir (an existing directory; the files
 * are made with O_TMPFILE, or mkstemp and unlinked at once, so none outlives
 * the process) and whose spills hold at most max_bytes together, and never
 * more than half of the space the directory's file system has for them (free
 * space plus what the spills use, checked as they grow). dir is copied.
 */
int blob_spill_open(const char *dir, uint64_t max_bytes, struct blob_spill **ret_pool,
                    struct err *err);
/* Frees the pool; every blob given it must have been freed before. */
void blob_spill_free(struct blob_spill *pool);

/*
 * Makes b spill into pool. Call it before the first blob_pread of b; pool must
 * outlive b. Blobs stored uncompressed never spill.
 */
int blob_set_spill(struct blob *b, struct blob_spill *pool, struct err *err);

#endif
