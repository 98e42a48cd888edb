/*
 * vfs_secrets: .secrets/ at the mount root, and scanning files as they are
 * read through the mount.
 *
 * Inodes of .secrets/ are (VIEW_SECRETS, node): node 0 is the directory
 * itself, node 1 is status, and node k >= 2 is node k - 1 of the rendered
 * vtree. status is made anew on every read and never waits; everything else
 * exists only once the full scan has finished, so looking it up or listing
 * the directory runs that scan first (and every later caller finds it done).
 *
 * A file counts as read once every 4 KiB chunk of it has passed through
 * read(), in whatever order the reads come (the page cache reads ahead and
 * out of order) and over however many opens; then it is scanned at once and
 * its findings join the rest.
 *
 * When the kernel opens files without asking (see struct vfs), status cannot
 * bypass the page cache with direct_io: it is never cached for long instead
 * (attributes time out at once) and changes its mtime with its text, which
 * makes the kernel drop its cached pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "secdir.h"
#include "vfs_int.h"

#define NODE_DIR    0u
#define NODE_STATUS VSEC_STATUS_NODE
#define TRACK_CHUNK 4096u
/* Bigger files are left to the full scan: the scanner skips them anyway. */
#define TRACK_MAX_SIZE (64ull << 20)
#define TRACK_BUCKETS  1024u
#define TRACK_MAX      4096u

struct secrets *vsec_get(struct vfs *v)
{
	struct secrets *s;

	pthread_mutex_lock(&v->sec_lock);
	if (!v->sec && secrets_new(v->img, NULL, &v->sec, NULL) < 0)
		v->sec = NULL;
	s = v->sec;
	pthread_mutex_unlock(&v->sec_lock);
	return s;
}

/* The rendered tree, after running the full scan if nobody has yet. */
static struct vtree *secdir(struct vfs *v)
{
	struct secrets *s = vsec_get(v);
	struct vtree *t;

	pthread_mutex_lock(&v->dir_lock);
	if (!v->secdir && s && secrets_scan_all(s, NULL) == 0)
		secdir_render(s, v->show_secrets, &v->secdir, NULL);
	t = v->secdir;
	pthread_mutex_unlock(&v->dir_lock);
	return t;
}

/* The tree if it is already rendered, without waiting for anything. */
static struct vtree *secdir_now(struct vfs *v)
{
	struct vtree *t = NULL;

	if (pthread_mutex_trylock(&v->dir_lock) == 0) {
		t = v->secdir;
		pthread_mutex_unlock(&v->dir_lock);
	}
	return t;
}

static char *status_text(struct vfs *v, size_t *ret_len)
{
	struct secrets *s;

	pthread_mutex_lock(&v->sec_lock);
	s = v->sec;
	pthread_mutex_unlock(&v->sec_lock);
	return secdir_status(s, ret_len);
}

int vsec_stat(struct vfs *v, uint32_t node, struct stat *st)
{
	struct vtree *t;
	size_t len = 0;

	memset(st, 0, sizeof(*st));
	st->st_ino = make_ino(VIEW_SECRETS, node);
	st->st_mtime = st->st_ctime = st->st_atime = v->mount_time;
	st->st_blksize = 4096;
	if (node == NODE_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (node == NODE_STATUS) {
		char *text = status_text(v, &len);
		uint64_t h = 14695981039346656037ull, gen;

		for (size_t i = 0; text && i < len; i++)
			h = (h ^ (unsigned char)text[i]) * 1099511628211ull;
		free(text);
		/* A new mtime for new text, even of the same size: the kernel
		 * then drops the pages it cached (auto_inval_data). */
		pthread_mutex_lock(&v->sec_lock);
		if (h != v->status_hash) {
			v->status_hash = h;
			v->status_gen++;
		}
		gen = v->status_gen;
		pthread_mutex_unlock(&v->sec_lock);
		st->st_mtim.tv_sec = v->mount_time + (time_t)(gen / 1000000000u);
		st->st_mtim.tv_nsec = (long)(gen % 1000000000u);
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		return 0;
	}
	t = secdir_now(v);
	if (!t || node - 1 >= vtree_count(t))
		return -ENOENT;
	vtree_data(t, node - 1, &len);
	st->st_nlink = 1;
	st->st_size = (off_t)len;
	switch (vtree_type(t, node - 1)) {
	case VTREE_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case VTREE_LINK:
		st->st_mode = S_IFLNK | 0777;
		break;
	default:
		st->st_mode = S_IFREG | 0444;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	return 0;
}

void vsec_lookup(fuse_req_t req, struct vfs *v, uint32_t dir, const char *name)
{
	struct fuse_entry_param e = {0};
	struct vtree *t;
	uint32_t n;

	if (dir == NODE_DIR && !strcmp(name, "status")) {
		/*
		 * The name never changes, so the kernel keeps it and later opens
		 * need no lookup (which could queue behind a long one); the
		 * attributes change with every scan step, so they are not kept.
		 */
		vsec_stat(v, NODE_STATUS, &e.attr);
		e.ino = e.attr.st_ino;
		e.entry_timeout = VFS_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (dir == NODE_STATUS || !(t = secdir(v)))
		return (void)fuse_reply_err(req, dir == NODE_STATUS ? ENOTDIR : EIO);
	n = vtree_lookup(t, dir == NODE_DIR ? 0 : dir - 1, name);
	if (n == VTREE_NONE)
		return (void)fuse_reply_err(req, ENOENT);
	vfs_reply_entry(req, v, make_ino(VIEW_SECRETS, n + 1));
}

void vsec_readdir(fuse_req_t req, struct vfs *v, uint32_t dir, size_t size, off_t off)
{
	struct vtree *t = secdir(v);
	uint32_t vdir = dir == NODE_DIR ? 0 : dir - 1, count;
	char *buf = malloc(size);
	struct stat st = {0};
	size_t pos = 0;
	off_t i = 0;

	if (!buf || !t) {
		free(buf);
		return (void)fuse_reply_err(req, buf ? EIO : ENOMEM);
	}
	count = vtree_child_count(t, vdir);
	st.st_mode = S_IFDIR;
	st.st_ino = make_ino(VIEW_SECRETS, dir);
	if (off <= i && !vfs_add_dirent(req, buf, size, &pos, ".", &st, i + 1))
		goto reply;
	i++;
	st.st_ino =
	    dir == NODE_DIR
	        ? make_ino(0, 1)
	        : make_ino(VIEW_SECRETS, vtree_parent(t, vdir) ? vtree_parent(t, vdir) + 1 : 0);
	if (off <= i && !vfs_add_dirent(req, buf, size, &pos, "..", &st, i + 1))
		goto reply;
	i++;
	if (dir == NODE_DIR) {
		st.st_mode = S_IFREG;
		st.st_ino = make_ino(VIEW_SECRETS, NODE_STATUS);
		if (off <= i && !vfs_add_dirent(req, buf, size, &pos, "status", &st, i + 1))
			goto reply;
		i++;
	}
	for (uint32_t c = 0; c < count; c++, i++) {
		uint32_t n = vtree_child(t, vdir, c);

		vsec_stat(v, n + 1, &st);
		if (off <= i && !vfs_add_dirent(req, buf, size, &pos, vtree_name(t, n), &st, i + 1))
			break;
	}
reply:
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

/*
 * Opening a directory of .secrets/ runs the full scan: open holds no lock on
 * the directory, unlike readdir (there a scan was seen to hold up the first
 * lookup of status), so status stays readable. This is why directories are
 * still opened through the daemon (see op_opendir).
 */
void vsec_opendir(fuse_req_t req, struct vfs *v, uint32_t dir, struct fuse_file_info *fi)
{
	(void)dir;
	if (!secdir(v))
		return (void)fuse_reply_err(req, EIO);
	fuse_reply_open(req, fi);
}

void vsec_open(fuse_req_t req, struct vfs *v, uint32_t node, struct fuse_file_info *fi)

{
	(void)v;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return (void)fuse_reply_err(req, EROFS);
	/* status grows and changes: bypass the page cache for it */
	if (node == NODE_STATUS)
		fi->direct_io = 1;
	else
		fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

void vsec_read(fuse_req_t req, struct vfs *v, uint32_t node, size_t size, off_t off)
{
	const char *data;
	char *text = NULL;
	struct vtree *t;
	size_t len;

	if (node == NODE_STATUS) {
		data = text = status_text(v, &len);
	} else {
		t = secdir_now(v);
		if (!t || node - 1 >= vtree_count(t))
			return (void)fuse_reply_err(req, EIO);
		data = vtree_data(t, node - 1, &len);
	}
	if ((size_t)off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, data + off,
		               len - (size_t)off < size ? len - (size_t)off : size);
	free(text);
}

void vsec_readlink(fuse_req_t req, struct vfs *v, uint32_t node)
{
	struct vtree *t = secdir_now(v);
	size_t len;

	if (!t || node < 2 || node - 1 >= vtree_count(t) || vtree_type(t, node - 1) != VTREE_LINK)
		return (void)fuse_reply_err(req, EINVAL);
	fuse_reply_readlink(req, vtree_data(t, node - 1, &len));
}

/*
 * Read coverage of one file, by 4 KiB chunk. Kept from the first read until
 * the file has been read through (then it is scanned and forgotten); at most
 * TRACK_MAX files are tracked at once, past that the table starts over (a
 * file half read and forgotten is simply tracked again from its next read).
 */
struct vsec_track {
	struct vsec_track *next;
	uint32_t layer, entry;
	uint64_t size;
	uint32_t nchunks, covered;
	uint8_t bits[];
};

static void tracks_clear(struct vfs *v)
{
	for (uint32_t i = 0; v->tracks && i < TRACK_BUCKETS; i++) {
		while (v->tracks[i]) {
			struct vsec_track *t = v->tracks[i];
			v->tracks[i] = t->next;
			free(t);
		}
	}
	v->ntracks = 0;
}

/* Marks the chunks that [off, end) covers whole (a chunk ends early at EOF). */
static void track_mark(struct vsec_track *t, uint64_t off, uint64_t end)
{
	for (uint64_t c = (off + TRACK_CHUNK - 1) / TRACK_CHUNK; c < t->nchunks; c++) {
		uint64_t ce = (c + 1) * TRACK_CHUNK < t->size ? (c + 1) * TRACK_CHUNK : t->size;

		if (ce > end)
			break;
		if (!(t->bits[c / 8] & (1u << (c % 8)))) {
			t->bits[c / 8] |= (uint8_t)(1u << (c % 8));
			t->covered++;
		}
	}
}

int vsec_track_read(struct vfs *v, uint32_t layer, uint32_t entry, uint64_t size, uint64_t off,
                    size_t len)
{
	uint32_t h = (layer * 0x9e3779b1u ^ entry) % TRACK_BUCKETS;
	struct vsec_track **pp, *t;
	int done = 0;

	if (len == 0 || size == 0 || size > TRACK_MAX_SIZE)
		return 0;
	pthread_mutex_lock(&v->track_lock);
	if (!v->tracks && !(v->tracks = calloc(TRACK_BUCKETS, sizeof(*v->tracks))))
		goto out;
	for (pp = &v->tracks[h]; (t = *pp); pp = &t->next)
		if (t->layer == layer && t->entry == entry)
			break;
	if (!t) {
		uint32_t nchunks = (uint32_t)((size + TRACK_CHUNK - 1) / TRACK_CHUNK);

		/* most files are read whole by one request: nothing to keep */
		if (off == 0 && len >= size) {
			done = 1;
			goto out;
		}
		if (v->ntracks >= TRACK_MAX)
			tracks_clear(v);
		t = calloc(1, sizeof(*t) + (nchunks + 7) / 8);
		if (!t)
			goto out;
		*t = (struct vsec_track){
		    .layer = layer, .entry = entry, .size = size, .nchunks = nchunks};
		t->next = v->tracks[h];
		v->tracks[h] = t;
		v->ntracks++;
		pp = &v->tracks[h];
	}
	track_mark(t, off, off + len);
	if (t->covered == t->nchunks) {
		*pp = t->next;
		free(t);
		v->ntracks--;
		done = 1;
	}
out:
	pthread_mutex_unlock(&v->track_lock);
	return done;
}

void vsec_scan(struct vfs *v, uint32_t layer, uint32_t entry)
{
	struct secrets *s = vsec_get(v);

	if (s)
		secrets_scan_entry(s, layer, entry);
}

void vsec_free(struct vfs *v)
{
	tracks_clear(v);
	free(v->tracks);
	vtree_free(v->secdir);
	secrets_free(v->sec);
}
