/*
 * vfs_int.h: what vfs.c and vfs_secrets.c share inside the FUSE front end.
 * Not an interface for anything outside fs/vfs*.c.
 */
#ifndef STRATA_VFS_INT_H
#define STRATA_VFS_INT_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "image.h"
#include "secrets.h"
#include "vtree.h"

/* Nothing changes under a mount: let the kernel cache for a day. */
#define VFS_TIMEOUT 86400.0

/* The view number (high 32 bits of an inode) of .secrets/. */
#define VIEW_SECRETS 0xfffffffeu

struct vfs {
	struct image *img;
	uint32_t nlayers;
	time_t mount_time;
	int show_secrets;
	int contain_symlinks; /* absolute symlink targets shown relative to the view root */

	pthread_mutex_t sec_lock; /* guards sec */
	struct secrets *sec;      /* made on first use: mounting scans nothing */
	pthread_mutex_t dir_lock; /* guards secdir; held through the full scan */
	struct vtree *secdir;     /* .secrets/ once the full scan is done */
	uint64_t status_hash;     /* of the last status text seen (under sec_lock) */
	uint64_t status_gen;      /* bumped when it changes: status's mtime */

	/*
	 * The kernel opens files without asking us (FUSE_CAP_NO_OPEN_SUPPORT):
	 * a warm grep -r then costs no round trip per file. Reads are tracked
	 * per file, not per open handle, as there are none.
	 */
	int no_open;
	pthread_mutex_t track_lock;
	struct vsec_track **tracks; /* hash buckets, made on first use */
	uint32_t ntracks;
};

static inline fuse_ino_t make_ino(uint32_t view, uint32_t node)
{
	return ((fuse_ino_t)view << 32) | node;
}

/* .secrets/status: its attributes change with every scan step, never cached */
#define VSEC_STATUS_NODE 1u

/* Replies to lookup with the entry for ino (attributes from vfs_stat). */
void vfs_reply_entry(fuse_req_t req, struct vfs *v, fuse_ino_t ino);
/* Adds one directory entry to buf; returns 0 when it did not fit. */
int vfs_add_dirent(fuse_req_t req, char *buf, size_t size, size_t *pos, const char *name,
                   const struct stat *st, off_t next);

/* .secrets/ (vfs_secrets.c) */
struct secrets *vsec_get(struct vfs *v);
int vsec_stat(struct vfs *v, uint32_t node, struct stat *st);
void vsec_lookup(fuse_req_t req, struct vfs *v, uint32_t dir, const char *name);
void vsec_readdir(fuse_req_t req, struct vfs *v, uint32_t dir, size_t size, off_t off);
void vsec_opendir(fuse_req_t req, struct vfs *v, uint32_t dir, struct fuse_file_info *fi);

void vsec_open(fuse_req_t req, struct vfs *v, uint32_t node, struct fuse_file_info *fi);
void vsec_read(fuse_req_t req, struct vfs *v, uint32_t node, size_t size, off_t off);
void vsec_readlink(fuse_req_t req, struct vfs *v, uint32_t node);
void vsec_free(struct vfs *v);

/* Scanning files as they are read (vfs_secrets.c). */
/*
 * Records that [off, off + len) of the file whose bytes are entry `entry` of
 * layer `layer` (size bytes) was read; returns 1 once the whole file has been,
 * in any order and over any number of opens: then the caller calls vsec_scan
 * before replying, so that the findings are in .secrets/ when read() returns.
 */
int vsec_track_read(struct vfs *v, uint32_t layer, uint32_t entry, uint64_t size, uint64_t off,
                    size_t len);
void vsec_scan(struct vfs *v, uint32_t layer, uint32_t entry);

#endif
