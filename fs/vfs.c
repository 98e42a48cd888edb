/*
 * vfs: libfuse3 low-level operations over an opened image (see vfs.h).
 *
 * Inode numbers encode where a node lives, so no table of inodes is kept:
 * the high 32 bits name the view (0: the few virtual directories and files
 * of the mount root and image/; 1: merged; then one per layers/NN, then one
 * per stack/NN), the low 32 bits the node in that view's tree. Nothing in a
 * mounted image ever changes, so the kernel is told to cache entries,
 * attributes, directory listings and file pages for as long as it likes,
 * and forget needs no bookkeeping.
 */
#include "vfs.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "vfs_int.h"

enum virt {
	V_ROOT = 1,
	V_LAYERS,
	V_STACK,
	V_IMAGE,
	V_MANIFEST,
	V_CONFIG,
	V_HISTORY,
	V_DELETED_TSV,
	V_STATUS,
	V_COUNT,
};

static const struct {
	const char *name;
	enum virt parent;
	int dir;
} virt_nodes[V_COUNT] = {
    [V_ROOT] = {"", V_ROOT, 1},
    [V_LAYERS] = {"layers", V_ROOT, 1},
    [V_STACK] = {"stack", V_ROOT, 1},
    [V_IMAGE] = {"image", V_ROOT, 1},
    [V_MANIFEST] = {"manifest.json", V_IMAGE, 0},
    [V_CONFIG] = {"config.json", V_IMAGE, 0},
    [V_HISTORY] = {"history", V_IMAGE, 0},
    [V_DELETED_TSV] = {"deleted.tsv", V_IMAGE, 0},
    [V_STATUS] = {"status", V_IMAGE, 0},
};

#define VIEW_MERGED  1u
#define VIEW_DELETED 2u

static uint32_t ino_view(fuse_ino_t ino)
{
	return (uint32_t)(ino >> 32);
}

static uint32_t ino_node(fuse_ino_t ino)
{
	return (uint32_t)ino;
}

static uint32_t view_of_layer(const struct vfs *v, uint32_t i)
{
	(void)v;
	return 3 + i;
}

static uint32_t view_of_stack(const struct vfs *v, uint32_t i)
{
	return 3 + v->nlayers + i;
}

/* The tree of a view, built on first use. */
static int view_tree(struct vfs *v, uint32_t view, struct tree **ret)
{
	if (view == VIEW_MERGED) {
		*ret = image_merged(v->img);
		return 0;
	}
	if (view == VIEW_DELETED)
		return image_deleted_view(v->img, ret, NULL);
	if (view >= 3 && view < 3 + v->nlayers)
		return image_layer_view(v->img, view - 3, ret, NULL);
	if (view >= 3 + v->nlayers && view < 3 + 2 * v->nlayers)
		return image_stack_view(v->img, view - 3 - v->nlayers, ret, NULL);
	return -ENOENT;
}

static const char *virt_data(struct vfs *v, enum virt n, size_t *ret_len)
{
	const struct source_image *si = image_source(v->img);

	switch (n) {
	case V_MANIFEST:
		*ret_len = si->manifest_len;
		return si->manifest;
	case V_CONFIG:
		*ret_len = si->config_len;
		return si->config;
	case V_HISTORY:
		return image_history(v->img, ret_len);
	case V_STATUS:
		return image_status(v->img, ret_len);
	case V_DELETED_TSV: {

		const char *text;

		if (image_deleted_tsv(v->img, &text, ret_len, NULL) < 0)
			break;
		return text;
	}
	default:
		break;
	}
	*ret_len = 0;
	return "";
}

static void virt_stat(struct vfs *v, enum virt n, struct stat *st)
{
	size_t len;

	memset(st, 0, sizeof(*st));
	st->st_ino = make_ino(0, n);
	st->st_mtime = st->st_ctime = st->st_atime = v->mount_time;
	if (virt_nodes[n].dir) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		virt_data(v, n, &len);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
	}
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

static void tree_to_stat(const struct tree *t, uint32_t view, uint32_t node, struct stat *st)
{
	struct tree_attr a;

	tree_stat(t, node, &a);
	memset(st, 0, sizeof(*st));
	st->st_ino = make_ino(view, a.ino);
	st->st_mode = a.mode;
	st->st_nlink = a.nlink;
	st->st_uid = a.uid;
	st->st_gid = a.gid;
	st->st_size = (off_t)a.size;
	st->st_rdev = a.rdev;
	st->st_mtim.tv_sec = a.mtime;
	st->st_mtim.tv_nsec = a.mtime_nsec;
	st->st_atim = st->st_ctim = st->st_mtim;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
}

/* Fills st for any inode; returns 0 or a negative errno. */
static int do_stat(struct vfs *v, fuse_ino_t ino, struct stat *st)
{
	uint32_t view = ino_view(ino), node = ino_node(ino);
	struct tree *t;
	int r;

	if (view == VIEW_SECRETS)
		return vsec_stat(v, node, st);
	if (view == 0) {
		if (node < V_ROOT || node >= V_COUNT)
			return -ENOENT;
		virt_stat(v, (enum virt)node, st);
		return 0;
	}
	if ((r = view_tree(v, view, &t)) < 0)
		return r;
	if (node >= tree_node_count(t))
		return -ENOENT;
	tree_to_stat(t, view, node, st);
	return 0;
}

static struct vfs *vfs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

void vfs_reply_entry(fuse_req_t req, struct vfs *v, fuse_ino_t ino)
{
	struct fuse_entry_param e = {0};
	int r = do_stat(v, ino, &e.attr);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = e.attr.st_ino;
	e.attr_timeout = VFS_TIMEOUT;
	e.entry_timeout = VFS_TIMEOUT;
	fuse_reply_entry(req, &e);
}

/* "07" → 7 for names under layers/ and stack/; -1 when not such a name. */
static long layer_number(const char *name, uint32_t nlayers)
{
	char *end;
	long n;

	if (!name[0] || name[0] == '-' || name[0] == '+')
		return -1;
	n = strtol(name, &end, 10);
	if (*end || n < 0 || n >= (long)nlayers)
		return -1;
	/* exactly the spelling readdir shows, so every layer has one name */
	char canon[16];
	snprintf(canon, sizeof(canon), "%02ld", n);
	return strcmp(canon, name) ? -1 : n;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vfs *v = vfs_of(req);
	uint32_t view = ino_view(parent), node = ino_node(parent);
	struct tree *t;
	long n;
	int r;

	if (view == VIEW_SECRETS)
		return vsec_lookup(req, v, node, name);
	if (view == 0) {
		if (node == V_ROOT && strcmp(name, "merged") == 0)
			return vfs_reply_entry(req, v, make_ino(VIEW_MERGED, 0));
		if (node == V_ROOT && strcmp(name, "deleted") == 0)
			return vfs_reply_entry(req, v, make_ino(VIEW_DELETED, 0));
		if (node == V_ROOT && strcmp(name, ".secrets") == 0)
			return vfs_reply_entry(req, v, make_ino(VIEW_SECRETS, 0));
		if (node == V_LAYERS || node == V_STACK) {
			n = layer_number(name, v->nlayers);
			if (n < 0)
				return (void)fuse_reply_err(req, ENOENT);
			return vfs_reply_entry(req, v,
			                       make_ino(node == V_LAYERS
			                                    ? view_of_layer(v, (uint32_t)n)
			                                    : view_of_stack(v, (uint32_t)n),
			                                0));
		}
		for (int i = V_LAYERS; i < V_COUNT; i++)
			if (virt_nodes[i].parent == node && !strcmp(virt_nodes[i].name, name))
				return vfs_reply_entry(req, v, make_ino(0, (uint32_t)i));
		return (void)fuse_reply_err(req, ENOENT);
	}
	if ((r = view_tree(v, view, &t)) < 0)
		return (void)fuse_reply_err(req, -r);
	node = tree_lookup(t, node, name, strlen(name));
	if (node == TREE_NONE)
		return (void)fuse_reply_err(req, ENOENT);
	vfs_reply_entry(req, v, make_ino(view, node));
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfs *v = vfs_of(req);
	struct stat st;
	int r = do_stat(v, ino, &st);

	(void)fi;
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st,
	                ino == make_ino(VIEW_SECRETS, VSEC_STATUS_NODE) ? 0 : VFS_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct vfs *v = vfs_of(req);
	const struct layer *l;
	const struct layer_entry *e;
	struct tree_attr a;
	struct tree *t;

	if (ino_view(ino) == VIEW_SECRETS)
		return vsec_readlink(req, v, ino_node(ino));
	if (ino_view(ino) == 0 || view_tree(v, ino_view(ino), &t) < 0 ||
	    ino_node(ino) >= tree_node_count(t))
		return (void)fuse_reply_err(req, EINVAL);
	tree_stat(t, ino_node(ino), &a);
	if (!S_ISLNK(a.mode))
		return (void)fuse_reply_err(req, EINVAL);
	l = image_layer(v->img, a.data_layer);
	e = layer_entry(l, a.data_entry);
	const char *target = layer_str(l, e->link);
	if (v->contain_symlinks && target[0] == '/') {
		/*
		 * The kernel would resolve "/etc/x" against the host: present it as
		 * a path relative to the view's root, "../../etc/x" from two levels
		 * down, so that following it stays inside the image.
		 */
		struct buf rel = BUF_INIT;
		int r = 0;

		for (uint32_t n = tree_parent(t, ino_node(ino)); r == 0 && n != 0;
		     n = tree_parent(t, n))
			r = buf_append_str(&rel, "../");
		while (*target == '/')
			target++;
		if (r == 0)
			r = buf_append_str(&rel, *target ? target : ".");
		if (r < 0)
			fuse_reply_err(req, ENOMEM);
		else
			fuse_reply_readlink(req, rel.data);
		buf_release(&rel);
		return;
	}
	fuse_reply_readlink(req, target);
}

/*
 * Unlike files, directories keep their OPENDIR round trip (no
 * FUSE_CAP_NO_OPENDIR_SUPPORT): .secrets/ runs its full scan here, where
 * no directory lock is held.
 */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino_view(ino) == VIEW_SECRETS)
		return vsec_opendir(req, vfs_of(req), ino_node(ino), fi);
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vfs *v = userdata;

	v->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	/* .secrets/status changes under one inode: its size or mtime moving
	 * must drop its cached pages (there is no open to say direct_io) */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	/* lookups in a directory must not wait for a long readdir (.secrets/status) */
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}

int vfs_add_dirent(fuse_req_t req, char *buf, size_t size, size_t *pos, const char *name,
                   const struct stat *st, off_t next)
{
	size_t need = fuse_add_direntry(req, buf + *pos, size - *pos, name, st, next);

	if (need > size - *pos)
		return 0;
	*pos += need;
	return 1;
}

static void readdir_virtual(fuse_req_t req, struct vfs *v, uint32_t node, size_t size, off_t off,
                            char *buf, size_t *pos)
{
	char name[16];
	struct stat st = {0};
	off_t i = 0;

	/* entries: ".", "..", then the children in a fixed order */
	st.st_mode = S_IFDIR;
	st.st_ino = make_ino(0, node);
	if (off <= i && !vfs_add_dirent(req, buf, size, pos, ".", &st, i + 1))
		return;
	i++;
	st.st_ino = make_ino(0, virt_nodes[node].parent);
	if (off <= i && !vfs_add_dirent(req, buf, size, pos, "..", &st, i + 1))
		return;
	i++;
	if (node == V_ROOT) {
		st.st_ino = make_ino(VIEW_MERGED, 0);
		if (off <= i && !vfs_add_dirent(req, buf, size, pos, "merged", &st, i + 1))
			return;
		i++;
		st.st_ino = make_ino(VIEW_DELETED, 0);
		if (off <= i && !vfs_add_dirent(req, buf, size, pos, "deleted", &st, i + 1))
			return;
		i++;
		st.st_ino = make_ino(VIEW_SECRETS, 0);
		if (off <= i && !vfs_add_dirent(req, buf, size, pos, ".secrets", &st, i + 1))
			return;
		i++;
	}
	if (node == V_LAYERS || node == V_STACK) {
		for (uint32_t n = 0; n < v->nlayers; n++, i++) {
			snprintf(name, sizeof(name), "%02u", n);
			st.st_ino = make_ino(
			    node == V_LAYERS ? view_of_layer(v, n) : view_of_stack(v, n), 0);
			if (off <= i && !vfs_add_dirent(req, buf, size, pos, name, &st, i + 1))
				return;
		}
		return;
	}
	for (int c = V_LAYERS; c < V_COUNT; c++) {
		if (virt_nodes[c].parent != node)
			continue;
		virt_stat(v, (enum virt)c, &st);
		if (off <= i &&
		    !vfs_add_dirent(req, buf, size, pos, virt_nodes[c].name, &st, i + 1))
			return;
		i++;
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct vfs *v = vfs_of(req);
	uint32_t view = ino_view(ino), node = ino_node(ino), first, count;
	char *buf = malloc(size);
	size_t pos = 0;
	struct tree *t;
	struct stat st = {0};
	char name[4096];
	int r;

	(void)fi;
	if (view == VIEW_SECRETS) {
		free(buf);
		return vsec_readdir(req, v, node, size, off);
	}
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	if (view == 0) {
		readdir_virtual(req, v, node, size, off, buf, &pos);
		goto reply;
	}
	if ((r = view_tree(v, view, &t)) < 0) {
		free(buf);
		return (void)fuse_reply_err(req, -r);
	}
	tree_children(t, node, &first, &count);
	st.st_mode = S_IFDIR;
	if (off == 0) {
		st.st_ino = make_ino(view, node);
		if (!vfs_add_dirent(req, buf, size, &pos, ".", &st, 1))
			goto reply;
		off = 1;
	}
	if (off == 1) {
		st.st_ino = node ? make_ino(view, tree_parent(t, node)) : make_ino(0, V_ROOT);
		if (!vfs_add_dirent(req, buf, size, &pos, "..", &st, 2))
			goto reply;
		off = 2;
	}
	for (uint32_t i = (uint32_t)(off - 2); i < count; i++) {
		size_t len;
		const char *n = tree_name(t, first + i, &len);

		/*
		 * Longer names cannot be looked up (NAME_MAX), and one over the
		 * kernel's FUSE limit would fail the whole listing: leave them out.
		 */
		if (len > NAME_MAX)
			continue;

		memcpy(name, n, len);
		name[len] = '\0';
		tree_to_stat(t, view, first + i, &st);
		if (!vfs_add_dirent(req, buf, size, &pos, name, &st, (off_t)i + 3))
			break;
	}
reply:
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfs *v = vfs_of(req);

	/* From now on the kernel opens every file itself, caching kept. */
	if (v->no_open)
		return (void)fuse_reply_err(req, ENOSYS);
	if (ino_view(ino) == VIEW_SECRETS)
		return vsec_open(req, v, ino_node(ino), fi);
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EROFS);
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct vfs *v = vfs_of(req);
	uint32_t view = ino_view(ino);
	struct tree *t;
	ssize_t n;
	char *buf;
	int r;

	(void)fi; /* reads are tracked per file: there may be no open handle */
	if (view == VIEW_SECRETS)
		return vsec_read(req, v, ino_node(ino), size, off);
	if (view == 0) {
		size_t len;
		const char *data = virt_data(v, (enum virt)ino_node(ino), &len);

		if ((size_t)off >= len)
			return (void)fuse_reply_buf(req, NULL, 0);
		return (void)fuse_reply_buf(req, data + off,
		                            len - (size_t)off < size ? len - (size_t)off : size);
	}
	if ((r = view_tree(v, view, &t)) < 0)
		return (void)fuse_reply_err(req, -r);
	buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	n = tree_read(t, ino_node(ino), buf, size, (uint64_t)off, NULL);
	/*
	 * Files of the views are scanned once read through, before the reply
	 * that completes them: when that read returns, the findings are in
	 * .secrets/.
	 */
	if (n > 0 && ino_node(ino) < tree_node_count(t)) {
		struct tree_attr a;

		tree_stat(t, ino_node(ino), &a);
		if (S_ISREG(a.mode) && a.data_entry != TREE_NONE &&
		    vsec_track_read(v, a.data_layer, a.data_entry, a.size, (uint64_t)off,
		                    (size_t)n))
			vsec_scan(v, a.data_layer, a.data_entry);
	}
	if (n < 0)
		fuse_reply_err(req, n == -EISDIR ? EISDIR : EIO);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* The image's own xattrs of the version a node shows; without user.* ones if told. */
static int each_image_xattr(struct vfs *v, const struct tree_attr *a,
                            int (*fn)(void *ctx, const char *name, const void *value, size_t size),
                            void *ctx, int no_user)
{
	const struct layer *l;
	const struct layer_entry *e;
	const char *name;
	const void *value;
	uint32_t cursor = 0, vsize;
	int r;

	if (a->data_entry == TREE_NONE)
		return 0;
	l = image_layer(v->img, a->data_layer);
	e = layer_entry(l, a->data_entry);
	while (layer_xattr_next(l, e, &cursor, &name, &value, &vsize))
		if (!(no_user && !strncmp(name, "user.", 5)) && (r = fn(ctx, name, value, vsize)))
			return r;
	return 0;
}

/*
 * The extended attributes of a node: strata's own (where each version came
 * from), then the image's. Calls fn for each until it returns non-zero.
 */
static int each_xattr(struct vfs *v, fuse_ino_t ino,
                      int (*fn)(void *ctx, const char *name, const void *value, size_t size),
                      void *ctx)
{
	const struct tree_hidden *h = NULL;
	struct tree_attr a;
	struct tree *t;
	char num[16];
	int r;

	if (ino_view(ino) == 0 || view_tree(v, ino_view(ino), &t) < 0 ||
	    ino_node(ino) >= tree_node_count(t))
		return 0;
	tree_stat(t, ino_node(ino), &a);
	if (a.layer >= v->nlayers)
		return 0; /* the root of an image without layers */
	/*
	 * Linux allows user.* attributes only on regular files and directories:
	 * on anything else the kernel answers ENODATA itself, so listing them
	 * there would only promise what cannot be read.
	 */
	if (!S_ISREG(a.mode) && !S_ISDIR(a.mode))
		return each_image_xattr(v, &a, fn, ctx, 1);
	snprintf(num, sizeof(num), "%02u", a.layer);

	if ((r = fn(ctx, "user.strata.layer", num, strlen(num))) ||

	    (r = fn(ctx, "user.strata.digest", image_layer_digest(v->img, a.layer),
	            strlen(image_layer_digest(v->img, a.layer)))))
		return r;
	if (ino_view(ino) == VIEW_DELETED && (h = tree_shown_hidden(t, ino_node(ino)))) {
		const char *how = image_how_name(h->how);

		snprintf(num, sizeof(num), "%02u", h->removed_by);
		if ((r = fn(ctx, "user.strata.removed_by", num, strlen(num))) ||
		    (r = fn(ctx, "user.strata.how", how, strlen(how))))
			return r;
	}
	return each_image_xattr(v, &a, fn, ctx, 0);
}

struct xattr_list {
	char *buf; /* NULL while measuring */
	size_t len;
};

static int list_one(void *ctx, const char *name, const void *value, size_t size)
{
	struct xattr_list *x = ctx;
	size_t n = strlen(name) + 1;

	(void)value;
	(void)size;
	if (x->buf)
		memcpy(x->buf + x->len, name, n);
	x->len += n;
	return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct vfs *v = vfs_of(req);
	struct xattr_list x = {0};

	/* two rounds: measure, then fill */
	each_xattr(v, ino, list_one, &x);
	if (size == 0)
		return (void)fuse_reply_xattr(req, x.len);
	if (size < x.len)
		return (void)fuse_reply_err(req, ERANGE);
	x.buf = malloc(x.len + 1);
	if (!x.buf)
		return (void)fuse_reply_err(req, ENOMEM);
	x.len = 0;
	each_xattr(v, ino, list_one, &x);
	fuse_reply_buf(req, x.buf, x.len);
	free(x.buf);
}

struct xattr_get {
	fuse_req_t req;
	const char *want;
	size_t size;
};

static int get_one(void *ctx, const char *name, const void *value, size_t vsize)
{
	struct xattr_get *g = ctx;

	if (strcmp(name, g->want))
		return 0;
	if (g->size == 0)
		fuse_reply_xattr(g->req, vsize);
	else if (g->size < vsize)
		fuse_reply_err(g->req, ERANGE);
	else
		fuse_reply_buf(g->req, value, vsize);
	return 1;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *want, size_t size)
{
	struct xattr_get g = {req, want, size};

	if (!each_xattr(vfs_of(req), ino, get_one, &g))
		fuse_reply_err(req, ENODATA);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs s = {0};

	(void)ino;
	s.f_bsize = s.f_frsize = 4096;
	s.f_namemax = 255;
	s.f_files = tree_node_count(image_merged(vfs_of(req)->img));
	s.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &s);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,

    .getattr = op_getattr,
    .readlink = op_readlink,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .listxattr = op_listxattr,
    .getxattr = op_getxattr,
    .statfs = op_statfs,
};

/*
 * SIGINT, SIGTERM and SIGHUP unmount. libfuse's own handlers only flag the
 * session, and the worker threads of the multi-threaded loop stay blocked
 * reading /dev/fuse until another request comes. So the signals are blocked
 * in every thread and one thread waits for them: it ends the session and
 * unmounts, which wakes the workers.
 */
struct signal_watch {
	struct fuse_session *se;
	pthread_t thread;
	pthread_mutex_t lock;
	sigset_t set;
	int started;
	int unmounted;
};

static void unmount_once(struct signal_watch *w)
{
	pthread_mutex_lock(&w->lock);
	if (!w->unmounted && w->se) {
		w->unmounted = 1;
		fuse_session_unmount(w->se);
	}
	pthread_mutex_unlock(&w->lock);
}

static void *signal_thread(void *arg)
{
	struct signal_watch *w = arg;
	int sig;

	if (sigwait(&w->set, &sig) == 0) {
		fuse_session_exit(w->se);
		unmount_once(w);
	}
	return NULL;
}

static int start_signal_watch(struct signal_watch *w)
{
	sigemptyset(&w->set);
	sigaddset(&w->set, SIGINT);
	sigaddset(&w->set, SIGTERM);
	sigaddset(&w->set, SIGHUP);
	/* blocked here, so in every thread made from now on, the loop's workers too */
	if (pthread_sigmask(SIG_BLOCK, &w->set, NULL) != 0 ||
	    pthread_create(&w->thread, NULL, signal_thread, w) != 0)
		return -1;
	w->started = 1;
	return 0;
}

static void stop_signal_watch(struct signal_watch *w)
{
	if (!w->started)
		return;
	pthread_cancel(w->thread); /* sigwait is a cancellation point */
	pthread_join(w->thread, NULL);
	w->started = 0;
}

int vfs_mount(struct image *img, const char *mountpoint, const struct vfs_opts *opts,
              struct err *err)
{
	struct signal_watch watch = {.lock = PTHREAD_MUTEX_INITIALIZER};

	struct vfs v = {.img = img,
	                .nlayers = image_layer_count(img),
	                .mount_time = time(NULL),
	                .show_secrets = opts->show_secrets,
	                .contain_symlinks = opts->contain_symlinks,

	                .sec_lock = PTHREAD_MUTEX_INITIALIZER,
	                .dir_lock = PTHREAD_MUTEX_INITIALIZER,
	                .track_lock = PTHREAD_MUTEX_INITIALIZER};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config cfg = {.clone_fd = 0, .max_idle_threads = 16};
	char *o = NULL;
	int r = 0;

	/* fsname goes into /proc/mounts: commas and blanks would break the option list */
	char *fsname = strdup(image_path(img));
	if (!fsname)
		return err_set(err, -ENOMEM, "out of memory");
	for (char *p = fsname; *p; p++)
		if (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			*p = '_';
	/* read-only, and an image's setuid files and devices stay inert */
	r = asprintf(&o, "ro,nosuid,nodev,noatime,fsname=%s,subtype=strata%s%s", fsname,
	             opts->fuse_opts && *opts->fuse_opts ? "," : "",
	             opts->fuse_opts ? opts->fuse_opts : "");
	free(fsname);
	if (r < 0)
		return err_set(err, -ENOMEM, "out of memory");
	r = 0;
	if (fuse_opt_add_arg(&args, "strata") < 0 || fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, o) < 0 || (opts->debug && fuse_opt_add_arg(&args, "-d") < 0)) {
		r = err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), &v);
	if (!se) {
		r = err_set(err, -EINVAL, "cannot start a FUSE session (bad -o options? %s)", o);
		goto out;
	}
	watch.se = se;
	if (fuse_session_mount(se, mountpoint) < 0) {
		r = err_set(err, -EIO, "cannot mount on %s (does it exist? is /dev/fuse there?)",
		            mountpoint);
		watch.unmounted = 1; /* nothing was mounted */
		goto out;
	}

	if (fuse_daemonize(opts->foreground) < 0) {
		r = err_set(err, -EIO, "cannot daemonize");
		unmount_once(&watch);
		goto out;
	}
	if (opts->max_threads)
		cfg.max_idle_threads = opts->max_threads;
	/* after the fork of fuse_daemonize: threads do not survive it */
	if (start_signal_watch(&watch) < 0) {
		r = err_set(err, -EIO, "cannot start the signal thread");
		unmount_once(&watch);
		goto out;
	}
	if (fuse_session_loop_mt(se, &cfg) < 0)
		r = err_set(err, -EIO, "the FUSE session failed");
	stop_signal_watch(&watch);
	unmount_once(&watch);
out:

	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	free(o);
	vsec_free(&v);
	return r;
}
