/*
 * finding.h: the parts of a finding that engine.c derives from the buffer
 * around a match (see finding.c). Not part of the scanner's interface.
 */
#ifndef STRATA_SCAN_FINDING_H
#define STRATA_SCAN_FINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The lines of one buffer (borrowed, d and len set by the caller); the index
 * of its newlines is built on first use and owned here: release it with
 * finding_lines_release. oom is set if building it ran out of memory.
 */
struct finding_lines {
	const uint8_t *d;
	size_t len;
	size_t *nl; /* offsets of '\n' */
	size_t nnl;
	bool built;
	bool oom;
};

void finding_lines_release(struct finding_lines *lines);
/* 1-based line of a byte offset, and the offset where a line starts. */
size_t finding_line_of(struct finding_lines *lines, size_t off);
size_t finding_line_start(const struct finding_lines *lines, size_t line);
/*
 * A few lines around the secret at [ss, se), each cut to SCAN_CONTEXT_WIDTH,
 * the secret replaced by redacted, or kept as it is (raw). Caller frees;
 * NULL when out of memory.
 */
char *finding_context(struct finding_lines *lines, size_t ss, size_t se, const char *redacted,
                      bool raw);
/* "ghp_…(40)": enough to recognise, too little to use. Caller frees. */
char *finding_redact(const char *secret, size_t len);
/* A stable id of (rule, secret, path): 32 hex digits. Caller frees. */
char *finding_fingerprint(const char *rule, const char *secret, size_t slen, const char *path);

#endif
