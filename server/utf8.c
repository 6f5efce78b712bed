/* UTF-8 validation, character-safe truncation and U+FFFD substitution (utf8.h).
 *
 * DESIGN
 * One decoder step, `scan`, reads the character at the front of a byte range following
 * Unicode 15 Table 3-7 (well-formed byte sequences): the lead byte fixes how many continuation
 * bytes follow and the range of the FIRST of them (E0: A0..BF excludes overlongs, ED: 80..9F
 * excludes surrogates, F0: 90..BF excludes overlongs, F4: 80..8F stops at U+10FFFF); every
 * later continuation byte is 80..BF. When the sequence breaks off, `scan` reports how many
 * bytes it had accepted so far (at least one): that prefix is the "maximal subpart" of
 * Unicode §3.9 (U+FFFD substitution of maximal subparts, also what the WHATWG decoder does),
 * and it becomes ONE U+FFFD, so "\xE2\x82" followed by "A" gives "\uFFFDA", not two
 * replacement characters. The byte that broke the sequence is not consumed: it may start the
 * next character.
 * Invariant: the output of utf8_sanitize is well-formed and at most 3·len bytes (each
 * replaced subpart has ≥ 1 byte and becomes 3). */
#include "utf8.h"

#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"

/* Bytes of the character at s[0..n): the length when well-formed (*ok = 1), else the length of
 * its maximal subpart, ≥ 1 (*ok = 0). n must be ≥ 1. */
static size_t scan(const unsigned char *s, size_t n, int *ok)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    *ok = 0;
    if (c < 0x80) {
        *ok = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 1; /* 80..C1, F5..FF never start a character */
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = 1;
    return i;
}

size_t utf8_char_len(const char *s, size_t n)
{
    int ok = 0;
    if (s == NULL || n == 0)
        return 0;
    size_t k = scan((const unsigned char *)s, n, &ok);
    return ok ? k : 0;
}

int utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        int ok;
        if (u[i] < 0x80) { /* ASCII runs are the common case */
            i++;
            continue;
        }
        i += scan(u + i, len - i, &ok);
        if (!ok)
            return 0;
    }
    return 1;
}

size_t utf8_prefix_len(const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (max > len)
        max = len;
    while (i < max) {
        int ok;
        size_t k = scan(u + i, len - i, &ok);
        if (!ok)
            k = 1; /* an ill-formed byte is its own unit: cutting after it splits nothing */
        if (k > max - i)
            break;
        i += k;
    }
    return i;
}

int utf8_sanitize(const char *s, size_t len, char **out)
{
    int rc = BASIN_OK;
    const unsigned char *u = (const unsigned char *)s;
    char *buf = NULL;
    size_t cap = 0;
    *out = NULL;
    if (basin_mul_size(len, 3, &cap) != BASIN_OK || basin_add_size(cap, 1, &cap) != BASIN_OK) {
        rc = BASIN_ERANGE;
        goto done;
    }
    if (utf8_valid(s, len))
        cap = len + 1; /* the common case: an exact copy */
    buf = basin_malloc(cap);
    if (buf == NULL) {
        rc = BASIN_ENOMEM;
        goto done;
    }
    size_t i = 0, w = 0;
    while (i < len) {
        int ok;
        size_t k = scan(u + i, len - i, &ok);
        if (ok) {
            memcpy(buf + w, s + i, k);
            w += k;
        } else {
            memcpy(buf + w, UTF8_REPLACEMENT, 3);
            w += 3;
        }
        i += k;
    }
    buf[w] = '\0';
    *out = buf;
    buf = NULL;
done:
    basin_free(buf);
    return rc;
}
