/*
 * secdir: the contents of a mount's .secrets/ directory, made from the
 * findings of struct secrets:
 *
 *   status            progress while a scan runs, "complete: ..." after
 *   summary.txt       counts by confidence, rule and visibility
 *   findings.jsonl    as `strata scan --format json`
 *   findings.sarif    as `strata scan --format sarif`
 *   by-rule/RULE/NNN      one small text file per finding
 *   by-rule/RULE/NNN.file a relative symlink to the file inside the mount
 *   examples/RULE/NNN[.file]  the same for findings of confidence "example"
 *
 * Paths of symlinks are relative to the file holding them, so they resolve
 * inside the mount wherever it is mounted.
 */
#ifndef STRATA_SECDIR_H
#define STRATA_SECDIR_H

#include "err.h"
#include "secrets.h"
#include "vtree.h"

/* Builds everything but status from the findings collected so far. */
int secdir_render(struct secrets *s, int show_secrets, struct vtree **ret_tree, struct err *err);

/* The text of status, now (never waits): malloc'd, length in *ret_len. */
char *secdir_status(struct secrets *s, size_t *ret_len);

#endif
