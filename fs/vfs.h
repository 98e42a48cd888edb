/*
 * vfs: the FUSE front end. Presents an opened image as a read-only
 * filesystem through libfuse3's low-level API:
 *
 *   merged/      the image's root filesystem
 *   layers/NN/   each layer as stored
 *   stack/NN/    the root filesystem right after layer NN
 *   image/       manifest.json, config.json, history
 *
 * This is the only module that includes FUSE headers; the image model below
 * it knows nothing of FUSE.
 *
 * Ownership: vfs_mount borrows the image for as long as it runs.
 */
#ifndef STRATA_VFS_H
#define STRATA_VFS_H

#include "err.h"
#include "image.h"

struct vfs_opts {
	int foreground;        /* do not daemonize */
	int debug;             /* libfuse's -d */
	const char *fuse_opts; /* extra -o options, passed through ("allow_other,...") */
	unsigned max_threads;  /* FUSE worker threads, 0 = libfuse's default */
	int show_secrets;      /* .secrets shows secrets in clear (-o show_secrets) */
	int contain_symlinks;  /* absolute symlink targets made relative (-o contain_symlinks) */
};

/*
 * Mounts img at mountpoint and serves requests until the filesystem is
 * unmounted or the process gets SIGINT, SIGTERM or SIGHUP, which unmount
 * cleanly. Unless foreground is set, the process daemonizes once the mount
 * is in place: the parent returns 0 (through exit) as soon as the mount
 * answers. Returns 0 or a negative errno.
 */
int vfs_mount(struct image *img, const char *mountpoint, const struct vfs_opts *opts,
              struct err *err);

#endif
