/* Tests for json_out.c: the shortest-real JSON writer must produce JSON that jansson parses back
 * to an equal value (every real bit-identical), with the short form where one exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "basin/rng.h"
#include "json_out.h"

struct sink {
    char buf[1 << 16];
    size_t len;
};

static int sink_cb(const char *s, size_t n, void *data)
{
    struct sink *k = data;
    if (k->len + n >= sizeof k->buf)
        return -1;
    memcpy(k->buf + k->len, s, n);
    k->len += n;
    k->buf[k->len] = 0;
    return 0;
}

static const char *write(const json_t *j, struct sink *k)
{
    k->len = 0;
    k->buf[0] = 0;
    assert_int_equal(json_write_compact(j, sink_cb, k), 0);
    return k->buf;
}

static void test_short_reals(void **state)
{
    (void)state;
    static struct sink k;
    json_t *j = json_pack("{s:f, s:f, s:f, s:f}", "a", 0.1, "b", 1.0, "c", 1e-8, "d", -2.5e300);
    assert_string_equal(write(j, &k), "{\"a\":0.1,\"b\":1.0,\"c\":1e-08,\"d\":-2.5e+300}");
    json_decref(j);
}

static void test_reals_round_trip_exactly(void **state)
{
    (void)state;
    static struct sink k;
    basin_rng rng;
    basin_rng_init(&rng, 42, 0);
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = basin_rng_u64(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        json_t *j = json_real(v);
        json_t *back = json_loads(write(j, &k), JSON_DECODE_ANY, NULL);
        assert_non_null(back);
        assert_true(json_is_real(back));
        double w = json_real_value(back);
        assert_memory_equal(&v, &w, sizeof v);
        json_decref(j);
        json_decref(back);
    }
}

static void test_strings_and_structure(void **state)
{
    (void)state;
    static struct sink k;
    const char text[] = "quote\" backslash\\ nl\n tab\t cr\r bell\a del\x7f utf8 \xc3\xa9 nul";
    json_t *j = json_pack("{s:s%, s:[i, b, b, n, {}, []], s:s}", "s", text, sizeof text, "arr",
                          (json_int_t)-7, 1, 0, "k\"ey", "v");
    assert_non_null(j);
    json_t *back = json_loads(write(j, &k), JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    assert_non_null(back);
    assert_true(json_equal(j, back));
    /* insertion order kept */
    assert_true(strstr(k.buf, "\"s\"") < strstr(k.buf, "\"arr\""));
    json_decref(j);
    json_decref(back);
}

static void test_too_deep_fails(void **state)
{
    (void)state;
    static struct sink k;
    json_t *root = json_array();
    json_t *cur = root;
    for (int i = 0; i < 1100; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    k.len = 0;
    assert_int_equal(json_write_compact(root, sink_cb, &k), -1);
    assert_int_equal(json_write_compact(NULL, sink_cb, &k), -1);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_reals),
        cmocka_unit_test(test_reals_round_trip_exactly),
        cmocka_unit_test(test_strings_and_structure),
        cmocka_unit_test(test_too_deep_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
