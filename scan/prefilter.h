/*
 * prefilter.h: the keyword automaton (Aho-Corasick over case-folded bytes)
 * that finds every rule keyword in one pass.
 */
#ifndef STRATA_SCAN_PREFILTER_H
#define STRATA_SCAN_PREFILTER_H

#include <stddef.h>
#include <stdint.h>

struct scan_prefilter;

/* A hit of a keyword of rule at [start, end); end-ordered. */
typedef void (*scan_pf_hit)(uint32_t rule, size_t start, size_t end, void *opaque);

int scan_prefilter_new(struct scan_prefilter **out);
/* Adds a keyword (1..1024 bytes) of a rule; before build only. */
int scan_prefilter_add(struct scan_prefilter *pf, const char *kw, size_t len, uint32_t rule);
int scan_prefilter_build(struct scan_prefilter *pf);
/* Read-only once built: many threads may run it at once. */
void scan_prefilter_run(const struct scan_prefilter *pf, const uint8_t *d, size_t len,
                        scan_pf_hit cb, void *opaque);
void scan_prefilter_free(struct scan_prefilter *pf);

#endif
