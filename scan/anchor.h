/*
 * anchor.h: what a rule's regex says about where its matches can start.
 *
 * scan_regex_anchors() reads a PCRE2 pattern and, when it can prove it,
 * returns literals ("anchors") such that every string the pattern matches
 * holds an occurrence of one of them, compared case-insensitively, that
 * starts at most `back` bytes after the start of the match. The engine then
 * tries a rule's regex only at the positions that some anchor occurrence
 * allows (pcre2_set_offset_limit), instead of at every position of a window.
 */
#ifndef STRATA_SCAN_ANCHOR_H
#define STRATA_SCAN_ANCHOR_H

#include <stddef.h>
#include <stdint.h>

#define SCAN_ANCHOR_MAXLEN 64 /* bytes of one anchor literal */
#define SCAN_ANCHOR_MAX    64 /* anchors of one pattern */

struct scan_anchor {
	uint8_t len;
	char s[SCAN_ANCHOR_MAXLEN]; /* lowercase ASCII folding of the literal */
	uint32_t back;              /* most bytes from a match's start to the literal's */
};

/*
 * Fills out[0..*n) and returns 0, or returns -1 when the pattern uses
 * something the analysis does not know, or when some match could hold no
 * literal of at least min_len bytes at a bounded distance from its start.
 * Only a sound answer is ever given: -1 is always allowed. kw[0..nkw) are
 * the rule's keywords, lowercase: a literal that holds one is replaced by
 * it (the prefilter looks for it anyway), and anchors made only of keywords
 * are preferred.
 *
 * lead (32 bytes, a bit per byte value), when not NULL, receives the bytes
 * of the runs the pattern may start with ("^[ \t]*password"): those are left
 * out of `back`, so a match may start at back bytes before an anchor and
 * then further back over any bytes of lead. All zero: no such run (with lead
 * NULL, such patterns get no anchors).
 */
int scan_regex_anchors(const char *pattern, size_t min_len, const char *const *kw,
                       const size_t *kwlen, size_t nkw, struct scan_anchor *out, size_t *n,
                       uint8_t *lead);

#endif
