/* Opaque identifiers: a short type prefix ("ds_", "ar_", "ex_", "run_") and 16 lowercase hex
 * digits (64 bits) from the kernel's CSPRNG (getrandom), so ids reveal neither order nor count
 * and cannot be guessed. Also the random claim tokens of the run queue. */
#ifndef BASINLAB_IDS_H
#define BASINLAB_IDS_H

#include <stddef.h>

#define IDS_PREFIX_DATASET "ds_"
#define IDS_PREFIX_ARCHITECTURE "ar_"
#define IDS_PREFIX_EXPERIMENT "ex_"
#define IDS_PREFIX_RUN "run_"
#define IDS_HEX_DIGITS 16
#define IDS_TOKEN_HEX_DIGITS 32

/* Writes prefix + 16 random hex digits + NUL into out (cap bytes). Returns 0, -1 when cap is too
 * small or the prefix is longer than 8 bytes, -2 when the kernel gives no randomness. */
int ids_new(const char *prefix, char *out, size_t cap);
/* 32 random hex digits + NUL (a claim token); same returns as ids_new. */
int ids_token(char *out, size_t cap);
/* 1 if id is prefix followed by exactly 16 lowercase hex digits, else 0. Handlers use it to
 * answer 404 for an id of the wrong kind without a query. */
int ids_valid(const char *id, const char *prefix);

#endif
