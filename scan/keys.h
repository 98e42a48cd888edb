/*
 * keys.h: private keys (PEM, OpenSSH, PuTTY) and certificates parsed offline.
 */
#ifndef STRATA_SCAN_KEYS_H
#define STRATA_SCAN_KEYS_H

#include "validate.h"

/* A private key block: type, size, fingerprints; verdict 1 when it parses. */
void scan_validate_key(const char *text, size_t len, struct scan_validation *out);
/* A PEM certificate: subject, issuer, validity and public key fingerprint. */
void scan_validate_cert(const char *text, size_t len, struct scan_validation *out);

#endif
