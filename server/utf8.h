/* UTF-8 checks for text that goes into JSON answers. jansson refuses to build a string from
 * bytes that are not well-formed UTF-8 (json_string returns NULL, which the reply helpers could
 * only read as "out of memory"), yet request text we echo back — a query value, a Content-Type,
 * the method, the raw path, jansson's own error text that quotes half a character — can be any
 * bytes. Everything echoed into a problem body or a spec error goes through utf8_sanitize, so a
 * client error stays a 4xx whatever the client sent.
 *
 * Well-formed means RFC 3629 / Unicode Table 3-7: no overlong forms, no surrogates, nothing
 * above U+10FFFF. */
#ifndef BASINLAB_UTF8_H
#define BASINLAB_UTF8_H

#include <stddef.h>

/* U+FFFD REPLACEMENT CHARACTER, what an ill-formed sequence becomes. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length (1 to 4) of the well-formed character at s[0..n), or 0 when the bytes there do not
 * start one (n == 0, a stray continuation byte, an overlong or truncated sequence, ...). */
size_t utf8_char_len(const char *s, size_t n);

/* 1 when s[0..len) is well-formed UTF-8 (NUL bytes included: U+0000 is a character). */
int utf8_valid(const char *s, size_t len);

/* The length of the longest prefix of s[0..len) of at most max bytes that does not end inside
 * a well-formed character: truncate there and no character is cut in half. Ill-formed bytes
 * count as one byte each. */
size_t utf8_prefix_len(const char *s, size_t len, size_t max);

/* *out = a NUL-terminated copy of s[0..len) (basin_malloc) in which each maximal ill-formed
 * subsequence (Unicode's "U+FFFD substitution of maximal subparts") is replaced by U+FFFD;
 * well-formed text is copied unchanged. Returns 0, BASIN_ERANGE when the result's size would
 * overflow, or BASIN_ENOMEM. */
int utf8_sanitize(const char *s, size_t len, char **out);

#endif
