/* What the libFuzzer targets in tests/fuzz share: the entry point each target defines (declared
 * here so the targets build with -Wmissing-prototypes), the limits they parse under, and the
 * checks of the contracts every target asserts: an answer that could not be built (a problem
 * body with invalid UTF-8, a pointer that is not RFC 6901) is a bug even when nothing crashes,
 * because the server would answer 500.
 *
 * A failed check prints what was wrong and aborts, which libFuzzer (and the corpus replay run by
 * ctest, replay.c) reports as a crash with the input that caused it. */
#ifndef BASINLAB_FUZZ_H
#define BASINLAB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "limits.h"
#include "spec.h"

/* libFuzzer's entry point: run one input. Returns 0 (the only value libFuzzer accepts). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Print "FILE:LINE: fuzz check failed: <what>" and abort. */
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

/* The published defaults scaled down so that one input runs in microseconds: limits are
 * compared, never trusted, so small values exercise the same checks as the defaults do. */
void fuzz_limits(struct limits *lim);

/* 1 when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
int fuzz_utf8_valid(const char *s, size_t len);

/* Every collected error has a pointer that is "" or starts with '/' (and whose '~' escapes are
 * ~0 or ~1), a non-empty message, both valid UTF-8; at most SPEC_MAX_ERRORS are stored; and a
 * 422 problem body listing them can be built. */
void fuzz_check_spec_errors(const struct spec_errors *errs);

/* Parsing the compact dump of `canon` with `parse` must succeed, and the canonical JSON of the
 * result (`to_json`) must equal `canon`: the server stores canonical specs and reads them back. */
void fuzz_check_canonical(const json_t *canon, json_t *(*reparse)(const char *text, size_t len));

#endif
