/*
 * mktar.h: writes small tar streams for the unit tests with libarchive's
 * writer, so that layers are real tar bytes, not hand-made structures.
 */
#ifndef STRATA_MKTAR_H
#define STRATA_MKTAR_H

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One tar entry: type 'f' file, 'd' dir, 'l' symlink, 'h' hardlink. */
struct ent {
	const char *path;
	char type;
	const char *data; /* file contents, or link target */
	unsigned mode;
};

/*
 * Writes the entries as a tar (PAX unless format says otherwise) into an
 * unlinked temporary file; returns its descriptor and sets *ret_len.
 */
static inline int mktar(const struct ent *e, int n, int format, size_t *ret_len)
{
	size_t cap = 1 << 20, used = 0;
	char *mem = malloc(cap);
	struct archive *a = archive_write_new();
	char tmpl[] = "/tmp/strata-test-XXXXXX";
	int fd = mkstemp(tmpl);

	unlink(tmpl);
	archive_write_set_format(a, format ? format : ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_write_open_memory(a, mem, cap, &used);
	for (int i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t len = e[i].data ? strlen(e[i].data) : 0;

		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_mtime(ae, 1000 + i, 0);
		archive_entry_set_uid(ae, 0);
		switch (e[i].type) {
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0755);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].data);
			len = 0;
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].data);
			len = 0;
			break;
		default:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, e[i].mode ? e[i].mode : 0644);
			archive_entry_set_size(ae, (la_int64_t)len);
		}
		archive_write_header(a, ae);
		if (len)
			archive_write_data(a, e[i].data, len);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	if (fd < 0 || write(fd, mem, used) != (ssize_t)used)
		abort();
	free(mem);
	*ret_len = used;
	return fd;
}

#endif
