/* fakefs: read-only FUSE passthrough of a staged directory, used only by
 * fake-strata to exercise the integration harness before strata exists.
 * Keeps inode numbers (hardlink groups), hides trusted.overlay.* xattrs,
 * refuses writes with EROFS.
 *
 *   cc -O2 -Wall -o fakefs fakefs.c $(pkg-config --cflags --libs fuse3)
 *   fakefs STAGEDIR MOUNTPOINT [fuse options]
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/xattr.h>
#include <unistd.h>

static int root_fd = -1;

static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->entry_timeout = cfg->attr_timeout = 3600;
	cfg->kernel_cache = 1;
	return NULL;
}

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	return fstatat(root_fd, rel(path), st, AT_SYMLINK_NOFOLLOW) ? -errno : 0;
}

static int ff_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(root_fd, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	int fd = openat(root_fd, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (fill(buf, e->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	int fd = openat(root_fd, rel(path), O_RDONLY);
	if (fd < 0)
		return -errno;
	fi->fh = fd;
	fi->keep_cache = 1;
	return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	/* FAKEFS_HANG=SUFFIX: reads of files whose path ends so never return
	 * (to test that the harness still unmounts a hung mount). */
	const char *hang = getenv("FAKEFS_HANG");
	if (hang && *hang) {
		size_t lp = strlen(path), lh = strlen(hang);
		if (lp >= lh && !strcmp(path + lp - lh, hang))
			for (;;)
				pause();
	}
	ssize_t n = pread(fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close(fi->fh);
	return 0;
}

static int ff_getxattr(const char *path, const char *name, char *value, size_t size)
{
	if (!strncmp(name, "trusted.overlay.", 16))
		return -ENODATA;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/proc/self/fd/%d/%s", root_fd, rel(path));
	ssize_t n = lgetxattr(p, name, value, size);
	return n < 0 ? -errno : (int)n;
}

static int ff_listxattr(const char *path, char *list, size_t size)
{
	char p[PATH_MAX], all[65536];
	snprintf(p, sizeof p, "/proc/self/fd/%d/%s", root_fd, rel(path));
	ssize_t n = llistxattr(p, all, sizeof all);
	if (n < 0)
		return -errno;
	size_t out = 0;
	for (ssize_t i = 0; i < n; i += strlen(all + i) + 1) {
		size_t l = strlen(all + i) + 1;
		if (!strncmp(all + i, "trusted.overlay.", 16))
			continue;
		if (size) {
			if (out + l > size)
				return -ERANGE;
			memcpy(list + out, all + i, l);
		}
		out += l;
	}
	return (int)out;
}

static int ff_erofs(void)
{
	return -EROFS;
}

static int ff_mkdir(const char *p, mode_t m)
{
	(void)p, (void)m;
	return ff_erofs();
}

static int ff_create(const char *p, mode_t m, struct fuse_file_info *fi)
{
	(void)p, (void)m, (void)fi;
	return ff_erofs();
}

static const struct fuse_operations ops = {
    .init = ff_init,
    .getattr = ff_getattr,
    .readlink = ff_readlink,
    .readdir = ff_readdir,
    .open = ff_open,
    .read = ff_read,
    .release = ff_release,
    .getxattr = ff_getxattr,
    .listxattr = ff_listxattr,
    .mkdir = ff_mkdir,
    .create = ff_create,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fakefs STAGEDIR MOUNTPOINT [fuse options]\n");
		return 2;
	}
	root_fd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (root_fd < 0) {
		perror(argv[1]);
		return 1;
	}
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
