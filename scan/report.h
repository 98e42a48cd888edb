/*
 * report.h: JSON helpers that report.c shares with cache.c.
 */
#ifndef STRATA_SCAN_REPORT_H
#define STRATA_SCAN_REPORT_H

#include <jansson.h>

/* A JSON string from bytes that may not be UTF-8 (never fails on them). */
json_t *scan_json_str(const char *s);

#endif
