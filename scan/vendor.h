/*
 * vendor.h: the lookup side of struct scan_vendor (filled through scan.h).
 */
#ifndef STRATA_SCAN_VENDOR_H
#define STRATA_SCAN_VENDOR_H

#include "scan.h"

/* The package that installed path with exactly these bytes, or NULL. */
const char *scan_vendor_match(const struct scan_vendor *v, const char *path, const void *data,
                              size_t len);

#endif
