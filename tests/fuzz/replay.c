/*
 * replay: a main() for the fuzz targets without libFuzzer. It feeds every
 * file named on the command line (directories: every file in them) to
 * LLVMFuzzerTestOneInput once and prints TAP, so that the test suite, also
 * in its sanitizer build, replays every input that ever crashed a fuzzer
 * (tests/fuzz/regressions/TARGET/) and the seeds.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int count;

static void replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = NULL;
	size_t len = 0, cap = 0, n;
	uint8_t chunk[65536];

	if (!f) {
		printf("not ok %d - %s: cannot open\n", ++count, path);
		return;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n > cap) {
			cap = (len + n) * 2;
			data = realloc(data, cap);
			if (!data)
				abort();
		}
		memcpy(data + len, chunk, n);
		len += n;
	}
	fclose(f);
	/* a crash, a sanitizer report or a hang ends the test run: reaching here is the pass */
	LLVMFuzzerTestOneInput(data ? data : (const uint8_t *)"", len);
	free(data);
	printf("ok %d - %s\n", ++count, path);
	fflush(stdout);
}

static void walk(const char *path)
{
	struct stat st;
	struct dirent **names;
	int n;

	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		replay(path);
		return;
	}
	n = scandir(path, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char *p;

		if (names[i]->d_name[0] != '.' &&
		    asprintf(&p, "%s/%s", path, names[i]->d_name) >= 0) {
			walk(p);
			free(p);
		}
		free(names[i]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		walk(argv[i]);
	printf("1..%d\n", count);
	return 0;
}
