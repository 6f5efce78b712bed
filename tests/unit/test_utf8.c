/* Tests of server/utf8.c, the UTF-8 checks behind every problem body and spec error.
 *
 * References that do not share the code under test: jansson's own UTF-8 validator (json_stringn
 * refuses exactly the ill-formed strings, RFC 3629) on a large deterministic sample of byte
 * strings drawn from the boundary bytes of Unicode Table 3-7; the worked examples of the Unicode
 * Standard §3.9 (Tables 3-8 to 3-11) for the U+FFFD substitution of maximal subparts; and a brute
 * force over every cut point for character-safe truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "basin/alloc.h"
#include "basin/status.h"
#include "utf8.h"

#define FFFD "\xEF\xBF\xBD"

/* jansson's validator as the oracle: json_stringn accepts exactly well-formed UTF-8. */
static int oracle_valid(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    json_decref(j);
    return j != NULL;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_u64(void)
{
    /* xorshift64* (Vigna): deterministic, independent of the code under test */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A byte string of 0..max bytes, mostly from the bytes where Table 3-7 changes its mind. */
static size_t random_bytes(char *buf, size_t max)
{
    static const unsigned char edges[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                          0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
                                          0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    size_t len = (size_t)(next_u64() % (max + 1));
    for (size_t i = 0; i < len; i++) {
        uint64_t r = next_u64();
        buf[i] = (char)(r % 4 == 0 ? (unsigned char)(r >> 8) : edges[(r >> 8) % sizeof edges]);
    }
    return len;
}

static void test_valid_matches_jansson(void **state)
{
    (void)state;
    char buf[16];
    size_t n_valid = 0, n_invalid = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = random_bytes(buf, 12);
        int want = oracle_valid(buf, len);
        assert_int_equal(utf8_valid(buf, len), want);
        n_valid += (size_t)want;
        n_invalid += (size_t)!want;
        /* utf8_char_len: the first character is well-formed exactly when some prefix of at
         * most 4 bytes is (decoding is unique), and its length is the shortest such prefix */
        size_t k = utf8_char_len(buf, len), shortest = 0;
        for (size_t m = 1; m <= 4 && m <= len && shortest == 0; m++)
            if (oracle_valid(buf, m))
                shortest = m;
        assert_int_equal(k, shortest);
    }
    /* the sample exercised both answers plenty */
    assert_true(n_valid > 10000);
    assert_true(n_invalid > 10000);
    /* hand cases at the edges of Table 3-7 */
    assert_true(utf8_valid("\xC2\x80", 2));
    assert_true(utf8_valid("\xE0\xA0\x80", 3));
    assert_true(utf8_valid("\xED\x9F\xBF", 3));      /* U+D7FF */
    assert_false(utf8_valid("\xED\xA0\x80", 3));     /* U+D800, a surrogate */
    assert_true(utf8_valid("\xF4\x8F\xBF\xBF", 4));  /* U+10FFFF */
    assert_false(utf8_valid("\xF4\x90\x80\x80", 4)); /* U+110000 */
    assert_false(utf8_valid("\xE0\x9F\xBF", 3));     /* overlong U+07FF */
    assert_false(utf8_valid("\xC1\xBF", 2));         /* overlong U+007F */
    assert_true(utf8_valid("a\0b", 3));              /* U+0000 is a character */
    assert_int_equal(utf8_char_len("\xF0\x9F\xA7\xA0", 4), 4);
    assert_int_equal(utf8_char_len("\xF0\x9F\xA7", 3), 0); /* cut short */
    assert_int_equal(utf8_char_len("", 0), 0);
}

static void expect_sanitized(const char *in, size_t len, const char *want)
{
    char *out = NULL;
    assert_int_equal(utf8_sanitize(in, len, &out), BASIN_OK);
    assert_string_equal(out, want);
    basin_free(out);
}

/* The Unicode Standard, §3.9, "U+FFFD Substitution of Maximal Subparts". */
static void test_sanitize_unicode_examples(void **state)
{
    (void)state;
    /* Table 3-8 */
    expect_sanitized("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", 13,
                     "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
    /* Table 3-9: bytes that never start a character, one U+FFFD each */
    expect_sanitized("\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41", 9,
                     FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A");
    /* Table 3-10: a surrogate's first byte is a maximal subpart of its own */
    expect_sanitized("\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41", 9,
                     FFFD FFFD FFFD FFFD FFFD FFFD FFFD FFFD "A");
    /* Table 3-11: above U+10FFFF */
    expect_sanitized("\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42", 9,
                     FFFD FFFD FFFD FFFD FFFD "A" FFFD FFFD "B");
    /* Table 3-12: truncated sequences are one U+FFFD each */
    expect_sanitized("\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", 9, FFFD FFFD FFFD FFFD "A");
    /* what jansson's error text does to "\é": the lead byte alone, then the end */
    expect_sanitized("near '\"\\\xC3'", 10, "near '\"\\" FFFD "'");
    /* well-formed text is copied unchanged, multi-byte characters and NUL-free */
    const char *fine = "r\xC3\xA9seau \xE2\x88\x91 \xF0\x9F\xA7\xA0";
    expect_sanitized(fine, strlen(fine), fine);
    expect_sanitized("", 0, "");
}

static void test_sanitize_properties(void **state)
{
    (void)state;
    char buf[16];
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = random_bytes(buf, 12);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                buf[i] = 'z'; /* the output is a C string: compare lengths exactly */
        char *out = NULL;
        assert_int_equal(utf8_sanitize(buf, len, &out), BASIN_OK);
        size_t olen = strlen(out);
        assert_true(oracle_valid(out, olen));
        assert_true(olen <= 3 * len);
        if (oracle_valid(buf, len)) {
            assert_int_equal(olen, len);
            assert_memory_equal(out, buf, len);
        }
        /* sanitising again changes nothing */
        char *again = NULL;
        assert_int_equal(utf8_sanitize(out, olen, &again), BASIN_OK);
        assert_string_equal(again, out);
        basin_free(again);
        basin_free(out);
    }
}

static void test_prefix_never_cuts_a_character(void **state)
{
    (void)state;
    /* "a" then forty "é": a 40-byte cut would split the 20th é */
    char id[128] = "a";
    for (int i = 0; i < 40; i++)
        strcat(id, "\xC3\xA9");
    assert_int_equal(utf8_prefix_len(id, strlen(id), 40), 39);
    assert_int_equal(utf8_prefix_len(id, strlen(id), 41), 41);
    assert_int_equal(utf8_prefix_len(id, strlen(id), 1000), strlen(id));
    /* 4-byte characters: only multiples of 4 after the "a" */
    const char *emoji = "a\xF0\x9F\xA7\xA0\xF0\x9F\xA7\xA0";
    for (size_t m = 0; m <= 9; m++)
        assert_int_equal(utf8_prefix_len(emoji, 9, m), m == 0 ? 0 : 1 + 4 * ((m - 1) / 4));
    /* brute force: for well-formed strings the cut is the longest well-formed prefix ≤ max;
     * for any string it is ≤ max and never splits a well-formed character */
    char buf[16];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = random_bytes(buf, 12);
        for (size_t m = 0; m <= len + 1; m++) {
            size_t p = utf8_prefix_len(buf, len, m);
            assert_true(p <= m && p <= len);
            if (oracle_valid(buf, len)) {
                size_t best = 0;
                for (size_t q = 0; q <= m && q <= len; q++)
                    if (oracle_valid(buf, q))
                        best = q;
                assert_int_equal(p, best);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_matches_jansson),
        cmocka_unit_test(test_sanitize_unicode_examples),
        cmocka_unit_test(test_sanitize_properties),
        cmocka_unit_test(test_prefix_never_cuts_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
