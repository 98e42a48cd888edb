/*
 * strata: the command. Parses arguments, opens the image through fs/, and
 * either mounts it (vfs) or answers from the same views without FUSE (ls,
 * cat). This is the one place that prints messages and picks exit codes:
 * 0 success, 1 a finding/difference where a command reports one, 2 usage or
 * runtime errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "version.h"
#include "vfs.h"

static const char usage_main[] =
    "usage: strata COMMAND [OPTIONS] ...\n"
    "\n"
    "Mount a container image read-only for inspection, or read it without mounting.\n"
    "IMAGE is a docker save tarball, an OCI archive or an OCI layout directory;\n"
    "IMAGE:TAG and IMAGE@sha256:DIGEST pick one image when the file holds several.\n"
    "\n"
    "commands:\n"
    "  mount IMAGE MOUNTPOINT   mount the image (merged/, layers/NN/, stack/NN/, deleted/, "
    "image/)\n"
    "  umount MOUNTPOINT        unmount it\n"
    "  ls IMAGE [PATH]          list a directory of the merged view (or of --layer N)\n"
    "  cat IMAGE PATH           print a file of the merged view (or of --layer N)\n"
    "  images IMAGE             list the images a file holds (tags, digests, platforms)\n"
    "  inspect IMAGE            per layer: sizes, entries added/changed/hidden, build command\n"
    "  scan IMAGE               find secrets in every layer and the config (exit 1 if any)\n"
    "\n"
    "Run 'strata COMMAND --help' for a command's options; 'strata --version' names the\n"
    "build and what inflates gzip layers.\n";

static const char usage_mount[] =
    "usage: strata mount [OPTIONS] IMAGE[:TAG|@DIGEST] MOUNTPOINT\n"
    "\n"
    "Mounts the image read-only and returns once the mount answers.\n"
    "  -f               stay in the foreground\n"
    "  -d               FUSE debug output (implies -f)\n"
    "  -o OPTS          mount options: show_secrets (.secrets shows secrets in clear),\n"
    "                   contain_symlinks (absolute symlink targets shown relative to\n"
    "                   the view root, so following them stays in the image),\n"
    "                   and FUSE ones, e.g. -o allow_other\n"
    "  --platform P     pick OS/ARCH[/VARIANT] from a multi-platform image\n"
    "  --no-verify      warn instead of failing on a layer digest mismatch\n"
    "  --max-layer-size BYTES, --max-ratio N, --max-entries N\n"
    "                   bounds on one layer: decompressed size (default 256 GiB),\n"
    "                   decompressed/stored ratio (default 2000), entries (default 4Mi)\n"
    "  --no-spill       never keep decompressed bytes of single-frame zstd layers on disk\n"
    "  --spill-dir DIR  keep them in DIR (default: spill/ in the cache directory;\n"
    "                   with --no-cache $TMPDIR or /var/tmp)\n"
    "  -q, --quiet      no warnings\n"

    "\n"
    "example:\n"
    "  strata mount app.tar /mnt/img && ls /mnt/img/merged && strata umount /mnt/img\n";

/*
 * Splits -o OPTS into strata's own options (show_secrets) and those passed
 * to FUSE; several -o accumulate.
 */
static void take_mount_options(struct vfs_opts *vo, const char *opts)
{
	static char fuse[4096];
	char *copy = strdup(opts), *save = NULL;

	if (!copy)
		return;
	for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "show_secrets")) {
			vo->show_secrets = 1;
			continue;
		}
		if (!strcmp(o, "contain_symlinks")) {
			vo->contain_symlinks = 1;
			continue;
		}

		if (strlen(fuse) + strlen(o) + 2 < sizeof(fuse)) {
			if (fuse[0])
				strcat(fuse, ",");
			strcat(fuse, o);
		}
	}
	vo->fuse_opts = fuse;
	free(copy);
}

static int cmd_mount(int argc, char **argv)
{
	/*
	 * A daemon lives long: big blocks (a layer index being built) must go
	 * back to the system when freed. glibc raises its mmap threshold after
	 * each big free, after which such blocks stay in the indexing threads'
	 * arenas, whose tops malloc_trim does not release: 7 to 25 MB of a
	 * first mount of 200,000 entries. Fixed thresholds keep them mapped.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_TRIM_THRESHOLD, 1024 * 1024);

	struct common c = {.layer = -1};
	struct vfs_opts vo = {0};
	struct err e = {0};
	struct image *img;
	int opt;

	while ((opt = getopt_long(argc, argv, "+fdo:qh", common_options, NULL)) != -1) {
		if (common_option(&c, opt, usage_mount))
			continue;
		if (opt == 'f')
			vo.foreground = 1;
		else if (opt == 'd')
			vo.debug = vo.foreground = 1;
		else if (opt == 'o')
			take_mount_options(&vo, optarg);
	}
	if (argc - optind != 2)
		usage_error(usage_mount, "%s", "mount wants IMAGE and MOUNTPOINT");
	img = open_image(argv[optind], &c);
	if (vfs_mount(img, argv[optind + 1], &vo, &e) < 0)
		die_err(&e);
	image_free(img);
	return 0;
}

static const char usage_umount[] = "usage: strata umount MOUNTPOINT\n"
                                   "\n"
                                   "Unmounts a strata mount, also one whose process was killed.\n"
                                   "\n"
                                   "example:\n"
                                   "  strata umount /mnt/img\n";

static int run(const char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int cmd_umount(int argc, char **argv)
{
	const char *mnt;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage_umount, stdout);
		return 0;
	}
	if (argc != 2)
		usage_error(usage_umount, "%s", "umount wants MOUNTPOINT");
	mnt = argv[1];
	if (run((const char *const[]){"fusermount3", "-u", "--", mnt, NULL}) == 0)
		return 0;
	/* a killed mount process leaves "Transport endpoint is not connected": detach it */
	if (run((const char *const[]){"fusermount3", "-u", "-z", "--", mnt, NULL}) == 0)
		return 0;
	if (umount2(mnt, MNT_DETACH) == 0)
		return 0;
	fprintf(stderr, "%s: cannot unmount %s: %s\n", prog, mnt, strerror(errno));
	return EXIT_USAGE;
}

static void mode_string(mode_t m, char out[11])
{
	const char *rwx = "rwxrwxrwx";

	out[0] = S_ISDIR(m)    ? 'd'
	         : S_ISLNK(m)  ? 'l'
	         : S_ISCHR(m)  ? 'c'
	         : S_ISBLK(m)  ? 'b'
	         : S_ISFIFO(m) ? 'p'
	                       : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (0400 >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & S_IXUSR) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & S_IXGRP) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & S_IXOTH) ? 't' : 'T';
	out[10] = '\0';
}

static const char usage_ls[] =
    "usage: strata ls [OPTIONS] IMAGE[:TAG|@DIGEST] [PATH]\n"
    "\n"
    "Lists a directory of the merged view without mounting, one name per line.\n"
    "  -l               long format: mode, owner, size, mtime, name -> target\n"
    "  --layer N        list layer N as stored instead (whiteouts shown)\n"
    "  --platform P     pick OS/ARCH[/VARIANT]\n"
    "\n"
    "example:\n"
    "  strata ls -l app.tar /etc\n";

static void print_long(struct image *img, const struct tree *t, uint32_t node, const char *name,
                       size_t len)
{
	struct tree_attr a;
	char mode[11], when[32];
	struct tm tm;
	time_t mt;

	tree_stat(t, node, &a);
	mode_string(a.mode, mode);
	mt = (time_t)a.mtime;
	if (!gmtime_r(&mt, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm))
		strcpy(when, "?");
	printf("%s %5u %5u %10llu %s %.*s", mode, a.uid, a.gid, (unsigned long long)a.size, when,
	       (int)len, name);
	if (S_ISLNK(a.mode)) {
		const struct layer *l = image_layer(img, a.data_layer);

		printf(" -> %s", layer_str(l, layer_entry(l, a.data_entry)->link));
	}
	putchar('\n');
}

static int cmd_ls(int argc, char **argv)
{
	struct common c = {.layer = -1};
	const char *path;
	struct image *img;
	struct tree *t;
	uint32_t node, first, count;
	struct tree_attr a;
	int opt;

	while ((opt = getopt_long(argc, argv, "lqh", common_options, NULL)) != -1) {
		if (common_option(&c, opt, usage_ls))
			continue;
		if (opt == 'l')
			c.long_format = 1;
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage_error(usage_ls, "%s", "ls wants IMAGE and an optional PATH");
	path = argc - optind == 2 ? argv[optind + 1] : "/";
	img = open_image(argv[optind], &c);
	t = pick_tree(img, &c);
	node = tree_resolve(t, path);
	if (node == TREE_NONE) {
		fprintf(stderr, "%s: %s: no such file or directory in the image\n", prog, path);
		image_free(img);
		return EXIT_USAGE;
	}
	tree_stat(t, node, &a);
	if (!S_ISDIR(a.mode)) {
		size_t len;
		const char *name = tree_name(t, node, &len);

		if (c.long_format)
			print_long(img, t, node, name, len);
		else
			printf("%.*s\n", (int)len, name);
	} else {
		tree_children(t, node, &first, &count);
		for (uint32_t i = first; i < first + count; i++) {
			size_t len;
			const char *name = tree_name(t, i, &len);

			if (c.long_format)
				print_long(img, t, i, name, len);
			else
				printf("%.*s\n", (int)len, name);
		}
	}
	image_free(img);
	return 0;
}

static const char usage_cat[] = "usage: strata cat [OPTIONS] IMAGE[:TAG|@DIGEST] PATH\n"
                                "\n"
                                "Prints a file of the merged view without mounting.\n"
                                "  --layer N        read the file from layer N as stored\n"
                                "  --platform P     pick OS/ARCH[/VARIANT]\n"
                                "\n"
                                "example:\n"
                                "  strata cat app.tar /etc/os-release\n";

static int cmd_cat(int argc, char **argv)
{
	struct common c = {.layer = -1};
	static char buf[1 << 20];
	struct err e = {0};
	struct image *img;
	struct tree *t;
	struct tree_attr a;
	uint32_t node;
	uint64_t off = 0;
	ssize_t n;
	int opt;

	while ((opt = getopt_long(argc, argv, "qh", common_options, NULL)) != -1)
		common_option(&c, opt, usage_cat);
	if (argc - optind != 2)
		usage_error(usage_cat, "%s", "cat wants IMAGE and PATH");
	img = open_image(argv[optind], &c);
	t = pick_tree(img, &c);
	node = tree_resolve(t, argv[optind + 1]);
	if (node == TREE_NONE) {
		fprintf(stderr, "%s: %s: no such file in the image\n", prog, argv[optind + 1]);
		image_free(img);
		return EXIT_USAGE;
	}
	tree_stat(t, node, &a);
	if (!S_ISREG(a.mode)) {
		fprintf(stderr, "%s: %s: not a regular file\n", prog, argv[optind + 1]);
		image_free(img);
		return EXIT_USAGE;
	}
	while ((n = tree_read(t, node, buf, sizeof(buf), off, &e)) > 0) {
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
		off += (uint64_t)n;
	}
	image_free(img);
	if (n < 0)
		die_err(&e);
	return fflush(stdout) == 0 ? 0 : EXIT_USAGE;
}

static const char usage_images[] =
    "usage: strata images IMAGE\n"
    "\n"
    "Lists the images a file or layout holds: tag, digest, platform.\n"
    "\n"
    "example:\n"
    "  strata images app-oci/    # then: strata mount --platform linux/arm64 app-oci/:v2 /mnt\n";

static int cmd_images(int argc, char **argv)
{
	struct err e = {0};
	struct source *s;
	char *text;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage_images, stdout);
		return 0;
	}
	if (argc != 2)
		usage_error(usage_images, "%s", "images wants IMAGE");
	if (source_open(argv[1], &s, &e) < 0 || source_list(s, &text, &e) < 0)
		die_err(&e);
	fputs(text, stdout);
	free(text);
	source_free(s);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	    {"mount", cmd_mount},   {"umount", cmd_umount},   {"ls", cmd_ls},     {"cat", cmd_cat},
	    {"images", cmd_images}, {"inspect", cmd_inspect}, {"scan", cmd_scan},
	};

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_main, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("strata %s (inflate: %s)\n", STRATA_VERSION, image_gzip_engine());
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command '%s'\n%s", prog, argv[1], usage_main);
	return EXIT_USAGE;
}
