/*
 * layer: the entry index of one layer tar, built in one pass over the
 * layer's decompressed stream.
 *
 * The index is a flat array of fixed-size entries plus two pools (paths and
 * link targets; xattrs), so that it can later be written to and mmapped from
 * the on-disk cache as it is. Paths are stored cleaned: no leading "/" or "./",
 * no "." or empty components, ".." resolved lexically without ever leaving the
 * root, no trailing "/". The root entry itself is not kept. Whiteout markers
 * are kept as entries with LAYER_F_WHITEOUT or LAYER_F_OPAQUE so that the
 * layer can be shown exactly as stored; the tree module interprets them.
 *
 * Entries the indexer refuses (sparse files, names it cannot clean) are
 * skipped and described in the layer's warnings, with the entry's offset.
 *
 * Ownership: a layer owns its index; it borrows the blob it was built from,
 * which must outlive it. All read-only functions are safe from many threads.
 */
#ifndef STRATA_LAYER_H
#define STRATA_LAYER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include "blob.h"
#include "err.h"

#define LAYER_NONE UINT32_MAX

enum layer_type {
	LAYER_REG,
	LAYER_DIR,
	LAYER_SYMLINK,
	LAYER_HARDLINK,
	LAYER_CHR,
	LAYER_BLK,
	LAYER_FIFO,
};

enum {
	LAYER_F_WHITEOUT = 1 << 0, /* ".wh.NAME": hides NAME in lower layers */
	LAYER_F_OPAQUE = 1 << 1,   /* ".wh..wh..opq": hides the lower contents of its directory */
	LAYER_F_META = 1 << 2,     /* other ".wh..wh.*" (aufs metadata): never shown merged */
};

/*
 * One entry: 48 bytes, since a mount keeps every entry of every layer
 * resident. Offsets and sizes keep 48 bits (256 TiB, far past any stream
 * the blob limits allow) so that the mode, type and flags share their
 * words. A device keeps its number in data_off (it has no data): 24 bits
 * of major, 24 of minor, more than Linux's 12 and 20 (see layer_rdev).
 */
struct layer_entry {
	uint64_t data_off : 48; /* offset of the data in the decompressed stream */
	uint64_t mode : 16;     /* st_mode, type bits included */
	uint64_t size : 48;     /* data size (regular files), 0 otherwise */
	uint64_t type : 8;      /* enum layer_type */
	uint64_t flags : 8;     /* LAYER_F_* */
	int64_t mtime;
	uint32_t mtime_nsec;
	uint32_t path;   /* pool offset of the cleaned path */
	uint32_t link;   /* pool offset: symlink target verbatim, hardlink target cleaned */
	uint32_t xattrs; /* xattr pool offset, LAYER_NONE when there are none */
	uint32_t uid;
	uint32_t gid;
};

#define LAYER_MAX_OFFSET ((UINT64_C(1) << 48) - 1)

/* The device number of a LAYER_CHR or LAYER_BLK entry, 0 for any other. */
static inline dev_t layer_rdev(const struct layer_entry *e)
{
	if (e->type != LAYER_CHR && e->type != LAYER_BLK)
		return 0;
	return makedev((unsigned)(e->data_off >> 24), (unsigned)(e->data_off & 0xffffff));
}

/* Bounds on what a layer's input may make the indexer allocate. */
struct layer_limits {
	uint32_t max_entries;    /* entries in one layer */
	uint32_t max_path;       /* bytes in one path */
	uint32_t max_depth;      /* components in one path */
	uint32_t max_xattr_size; /* bytes of xattrs of one entry */
	uint64_t max_pool;       /* bytes of paths, link targets and xattrs together */
	/*
	 * Optional: called from the indexing thread every few MiB with the
	 * stored bytes read so far and the blob's stored size.
	 */
	void (*progress)(void *opaque, uint64_t stored_done, uint64_t stored_total);
	void *progress_opaque;
	/*
	 * Optional: called from the indexing thread with the bytes of each
	 * regular file as the pass goes by them (entry is its index number, path
	 * its cleaned path, both valid during the call), so that a reader of every
	 * file needs no second pass. Files over file_max bytes are reported with
	 * data NULL. A negative return stops indexing with that error.
	 */
	int (*file)(void *opaque, uint32_t entry, const char *path, const void *data,
	            uint64_t size);
	void *file_opaque;
	uint64_t file_max; /* bound on the bytes of one file held for the call */
};

struct layer;

void layer_limits_default(struct layer_limits *l);

/*
 * Indexes the layer in blob b with one sequential pass; on success the blob
 * also has its seek points and *ret_digests (if not NULL) the digests of what
 * was read. name is used in messages only ("layer 02 sha256:abcd...").
 */
int layer_index(struct blob *b, const char *name, const struct layer_limits *lim,
                struct layer **ret_layer, struct blob_digests *ret_digests, struct err *err);
void layer_free(struct layer *l);

uint32_t layer_count(const struct layer *l);
const struct layer_entry *layer_entry(const struct layer *l, uint32_t i);
/* The NUL-terminated string at pool offset off (a path or a link target). */
const char *layer_str(const struct layer *l, uint32_t off);
struct blob *layer_blob(const struct layer *l);

/*
 * Iterates the xattrs of entry e: *cursor starts at 0; each call returns 1 and
 * sets name/value/size, or 0 after the last one.
 */
int layer_xattr_next(const struct layer *l, const struct layer_entry *e, uint32_t *cursor,
                     const char **ret_name, const void **ret_value, uint32_t *ret_size);

/* Reads from the data of regular-file entry e, like pread. */
ssize_t layer_read(const struct layer *l, const struct layer_entry *e, void *buf, size_t len,
                   uint64_t off, struct err *err);

/*
 * The index as one flat byte string, appended to out (for the on-disk
 * cache), and back. layer_import validates everything it is given (a corrupt
 * index is refused with -EINVAL, never trusted) and uses data in place: data
 * must outlive the layer. *ret_used is the number of bytes the index took.
 */
struct buf;
int layer_export(const struct layer *l, struct buf *out);
int layer_import(struct blob *b, const void *data, size_t len, struct layer **ret_layer,
                 size_t *ret_used, struct err *err);

/*
 * How many leading bytes of an exported index a stat or lookup touches (the
 * header and the entries); paths, xattrs and warnings follow and are read
 * rarely, so a mapping can tell the kernel to keep them apart.
 */
size_t layer_export_hot_len(const struct layer *l);

/*
 * The version of the index format and of the indexing rules: anything that
 * refers to entries by number (a cached tree) is only valid for the same one.
 */
uint32_t layer_format_version(void);

/* Warnings about skipped or altered entries, one line each. */

uint32_t layer_warning_count(const struct layer *l);
const char *layer_warning(const struct layer *l, uint32_t i);

#endif
