/* Tests of the CSV reader (data_csv.c): accepted dialects (quotes, CRLF, CR, BOM, blank lines,
 * header detection, several target columns, other delimiters, unterminated buffers) and every
 * error path with its exact line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/data.h"
#include "basin/status.h"

/* Parse a NUL-terminated text with the given options. */
static int parse(const char *text, int header, size_t y_cols, char delim, size_t max_rows,
                 basin_dataset **out, basin_parse_error *err)
{
    basin_csv_options o = {header, y_cols, delim};
    return basin_data_from_csv(text, strlen(text), &o, max_rows, out, err);
}

/* Expect a failure with code rc at (line, column); the output must stay NULL. */
static void expect_error(const char *text, int header, int rc, size_t line, size_t column)
{
    basin_dataset *ds = (basin_dataset *)(uintptr_t)1;
    basin_parse_error err;
    memset(&err, 0x55, sizeof err);
    int got = parse(text, header, 0, 0, 0, &ds, &err);
    if (got != rc || err.line != line || err.column != column)
        print_error("text \"%s\": rc %d line %zu column %zu (%s)\n", text, got, err.line,
                    err.column, err.message);
    assert_int_equal(got, rc);
    assert_int_equal(err.line, line);
    assert_int_equal(err.column, column);
    assert_null(ds);
    assert_true(strlen(err.message) > 0);
    assert_true(strlen(err.message) < sizeof err.message);
}

static void test_basic(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    assert_int_equal(parse("1,2,3\n4,5.5,-6e-1\n", -1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->in_rank, 1);
    assert_int_equal(ds->in_shape[0], 2);
    assert_int_equal(ds->in_dim, 2);
    assert_int_equal(ds->y_dim, 1);
    const double x[4] = {1, 2, 4, 5.5}, y[2] = {3, -0.6};
    for (int i = 0; i < 4; i++)
        assert_true(ds->x[i] == x[i]);
    for (int i = 0; i < 2; i++)
        assert_true(ds->y[i] == y[i]);
    assert_int_equal(ds->task, BASIN_TASK_REGRESSION);
    basin_dataset_free(ds);
}

static void test_quotes_and_spaces(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    /* Header cells with an embedded delimiter, an escaped quote and a line break. */
    const char *text = "\"x,1\",\"say \"\"hi\"\"\",\"lab\nel\"\n"
                       "\"1.5\" , 2 ,\" 1 \"\n"
                       "  -3,\t4e1\t,0\n";
    assert_int_equal(parse(text, -1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->in_dim, 2);
    assert_true(ds->x[0] == 1.5 && ds->x[1] == 2 && ds->x[2] == -3 && ds->x[3] == 40);
    assert_true(ds->y[0] == 1 && ds->y[1] == 0);
    assert_int_equal(ds->task, BASIN_TASK_BINARY);
    assert_int_equal(ds->n_classes, 2);
    basin_dataset_free(ds);
}

static void test_line_endings_and_bom(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    assert_int_equal(parse("\xEF\xBB\xBF"
                           "a,b\r\n1,2\r\n\r\n3,4",
                           -1, 0, 0, 0, &ds, &err),
                     BASIN_OK);
    assert_int_equal(ds->n, 2);
    assert_true(ds->x[0] == 1 && ds->y[0] == 2 && ds->x[1] == 3 && ds->y[1] == 4);
    basin_dataset_free(ds);
    /* Lone CR line ends (old Mac files). */
    assert_int_equal(parse("1,2\r3,4\r", 0, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 2);
    assert_true(ds->x[1] == 3);
    basin_dataset_free(ds);
    /* Line numbers count CRLF once, CR and LF once each; blank lines count too. */
    expect_error("1,2\r\n3,4\r\n\r\n  \t\n5,x\r\n", -1, BASIN_EPARSE, 5, 2);
    expect_error("1,2\r3,4\r5,x\r", -1, BASIN_EPARSE, 3, 2);
}

static void test_header_modes(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    /* Detection: a numeric first row is data. */
    assert_int_equal(parse("1,2\n3,4\n", -1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 2);
    basin_dataset_free(ds);
    /* Forced header: the numeric first row is skipped. */
    assert_int_equal(parse("1,2\n3,4\n", 1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 1);
    assert_true(ds->x[0] == 3);
    basin_dataset_free(ds);
    /* Detection with one text cell among numbers. */
    assert_int_equal(parse("1,y\n3,4\n", -1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 1);
    basin_dataset_free(ds);
    /* No header allowed: a text cell is an error at its position. */
    expect_error("x,y\n1,2\n", 0, BASIN_EPARSE, 1, 1);
    /* A header must have as many fields as the rows. */
    expect_error("a,b,c\n1,2\n", -1, BASIN_EPARSE, 2, 3);
    /* Valid multi-byte UTF-8 in a header is fine. */
    assert_int_equal(
        parse("\xC3\xA9t\xC3\xA9,\xE2\x82\xAC,\xF0\x9F\x98\x80\n1,2,3\n", -1, 0, 0, 0, &ds, &err),
        BASIN_OK);
    assert_int_equal(ds->n, 1);
    basin_dataset_free(ds);
}

static void test_y_cols_and_delimiter(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    assert_int_equal(parse("1,2,3,4\n5,6,7,8\n", 0, 2, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->in_dim, 2);
    assert_int_equal(ds->y_dim, 2);
    assert_true(ds->x[2] == 5 && ds->x[3] == 6);
    assert_true(ds->y[0] == 3 && ds->y[1] == 4 && ds->y[2] == 7 && ds->y[3] == 8);
    assert_int_equal(ds->task, BASIN_TASK_REGRESSION); /* y_dim 2 */
    basin_dataset_free(ds);
    assert_int_equal(parse("1;2\n3;\"4;\"\n", 0, 0, ';', 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
    assert_int_equal(parse("1;2,5\n", 0, 0, ';', 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.column, 2);
    assert_int_equal(parse("1;2\n3; 4 \n", 0, 0, ';', 0, &ds, &err), BASIN_OK);
    assert_true(ds->y[1] == 4);
    basin_dataset_free(ds);
    /* Tab-delimited: tabs separate fields, they are not trimmed as blanks. */
    assert_int_equal(parse("1\t2\t0\n3\t4\t2\n5\t6\t1\n", 0, 0, '\t', 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->in_dim, 2);
    assert_int_equal(ds->task, BASIN_TASK_MULTICLASS);
    assert_int_equal(ds->n_classes, 3);
    basin_dataset_free(ds);
    assert_int_equal(parse("1\t\t2\n", 0, 0, '\t', 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.column, 2);
    /* Too many target columns leave no input. */
    assert_int_equal(parse("1,2\n", 0, 2, 0, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 0);
    assert_null(ds);
}

static void test_bad_options(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    assert_int_equal(parse("1,2\n", 2, 0, 0, 0, &ds, &err), BASIN_EINVAL);
    assert_int_equal(parse("1,2\n", 0, 0, '"', 0, &ds, &err), BASIN_EINVAL);
    assert_int_equal(parse("1,2\n", 0, 0, '\n', 0, &ds, &err), BASIN_EINVAL);
    assert_int_equal(basin_data_from_csv("1,2", 3, NULL, 0, NULL, &err), BASIN_EINVAL);
    assert_int_equal(basin_data_from_csv(NULL, 3, NULL, 0, &ds, &err), BASIN_EINVAL);
    assert_null(ds);
    /* NULL options mean the defaults; a NULL err is allowed. */
    assert_int_equal(basin_data_from_csv("1,2", 3, NULL, 0, &ds, NULL), BASIN_OK);
    assert_int_equal(ds->n, 1);
    basin_dataset_free(ds);
    assert_int_equal(basin_data_from_csv("1,x", 3, NULL, 0, &ds, NULL), BASIN_EPARSE);
}

static void test_cell_errors(void **state)
{
    (void)state;
    expect_error("1,2\n3,abc\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\nnan,3\n", -1, BASIN_EPARSE, 2, 1);
    expect_error("1,2\n3,NaN\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n3,inf\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n-Infinity,3\n", -1, BASIN_EPARSE, 2, 1);
    expect_error("1,2\n3,1e999\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n3,-1e400\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n0x10,3\n", -1, BASIN_EPARSE, 2, 1);
    expect_error("1,2\n3,4 5\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n3,1e\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2\n3,.\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2,3\n4,,6\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("1,2,3\n4,5,\n", -1, BASIN_EPARSE, 2, 3);
    expect_error("1,2\n3,\"\"\n", -1, BASIN_EPARSE, 2, 2);
    /* A quoted cell spanning lines 2-3 is reported where it starts. */
    expect_error("a,b\n\"1\",\"\n2x\"\n", 1, BASIN_EPARSE, 2, 2);
    /* A long garbage cell: message stays bounded and printable. */
    char text[600];
    strcpy(text, "1,2\n3,");
    memset(text + 6, 'z', 500);
    strcpy(text + 506, "\xff\n");
    expect_error(text, -1, BASIN_EPARSE, 2, 2);
    basin_dataset *ds = NULL;
    basin_parse_error err;
    assert_int_equal(parse(text, -1, 0, 0, 0, &ds, &err), BASIN_EPARSE);
    for (const char *c = err.message; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    /* Underflow to a subnormal or zero is a finite number and accepted. */
    assert_int_equal(parse("1,1e-400\n", 0, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_true(ds->y[0] == 0.0);
    basin_dataset_free(ds);
}

static void test_ragged(void **state)
{
    (void)state;
    expect_error("1,2,3\n4,5\n", -1, BASIN_EPARSE, 2, 3);
    expect_error("1,2\n3,4,5\n", -1, BASIN_EPARSE, 2, 3);
    expect_error("1,2\n3,4\n\n5\n", -1, BASIN_EPARSE, 4, 2);
    expect_error("1,2\n3,4\n5,6,7,8\n", -1, BASIN_EPARSE, 3, 3);
}

static void test_structure_errors(void **state)
{
    (void)state;
    /* Empty inputs. */
    expect_error("", -1, BASIN_EPARSE, 0, 0);
    expect_error("\n\n  \n\r\n", -1, BASIN_EPARSE, 0, 0);
    expect_error("\xEF\xBB\xBF", -1, BASIN_EPARSE, 0, 0);
    expect_error("a,b\n", -1, BASIN_EPARSE, 0, 0);
    expect_error("1,2\n", 1, BASIN_EPARSE, 0, 0);
    /* Unterminated quote: reported where it opens. */
    expect_error("1,2\n3,\"4\n5,6\n", -1, BASIN_EPARSE, 2, 2);
    expect_error("\"a,b\n1,2\n", -1, BASIN_EPARSE, 1, 1);
    /* Text after a closing quote, a quote inside an unquoted field. */
    expect_error("1,\"2\"x\n", -1, BASIN_EPARSE, 1, 2);
    expect_error("1,2\n3,4\"5\n", -1, BASIN_EPARSE, 2, 2);
    /* Invalid UTF-8 in a header: a stray byte, an overlong '/', a surrogate, beyond U+10FFFF,
     * a truncated sequence. */
    expect_error("a,\xff\n1,2\n", 1, BASIN_EPARSE, 1, 2);
    expect_error("a,\xC0\xAF\n1,2\n", -1, BASIN_EPARSE, 1, 2);
    expect_error("\xED\xA0\x80,b\n1,2\n", -1, BASIN_EPARSE, 1, 1);
    expect_error("a,b,\xF4\x90\x80\x80\n1,2,3\n", -1, BASIN_EPARSE, 1, 3);
    expect_error("a,\xE2\x82\n1,2\n", -1, BASIN_EPARSE, 1, 2);
    expect_error("\n\na,\"\xE2\x82\"\n1,2\n", -1, BASIN_EPARSE, 3, 2);
}

static void test_embedded_nul(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    const char t1[] = "1,2\n3,4\0\n";
    assert_int_equal(basin_data_from_csv(t1, sizeof t1 - 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
    const char t2[] = "1,2\n\"3\0\",4\n";
    assert_int_equal(basin_data_from_csv(t2, sizeof t2 - 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 1);
    const char t3[] = "a,\0b\n1,2\n";
    assert_int_equal(basin_data_from_csv(t3, sizeof t3 - 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 2);
    assert_null(ds);
}

static void test_max_rows(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    const char *text = "a,b\n1,2\n\n3,4\n5,6\n";
    assert_int_equal(parse(text, -1, 0, 0, 2, &ds, &err), BASIN_ERANGE);
    assert_int_equal(err.line, 5);
    assert_int_equal(err.column, 0);
    assert_null(ds);
    assert_int_equal(parse(text, -1, 0, 0, 3, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 3);
    basin_dataset_free(ds);
    assert_int_equal(parse(text, -1, 0, 0, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 3);
    basin_dataset_free(ds);
}

static void test_tiny_and_unterminated_buffers(void **state)
{
    (void)state;
    basin_dataset *ds = NULL;
    basin_parse_error err;
    /* One byte: one field, so no input column besides the target. */
    char one[1] = {'7'};
    assert_int_equal(basin_data_from_csv(one, 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 0);
    char nl[1] = {'\n'};
    assert_int_equal(basin_data_from_csv(nl, 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 0);
    char q[1] = {'"'};
    assert_int_equal(basin_data_from_csv(q, 1, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, 1);
    /* Heap buffers with no terminator: reading past len would be caught by ASan/valgrind, and
     * the digits after len must not be taken. */
    const char src[] = "1,2\n3,45";
    char *buf = malloc(7);
    assert_non_null(buf);
    memcpy(buf, src, 7);
    assert_int_equal(basin_data_from_csv(buf, 7, NULL, 0, &ds, &err), BASIN_OK);
    assert_int_equal(ds->n, 2);
    assert_true(ds->y[1] == 4);
    basin_dataset_free(ds);
    memcpy(buf, "1,2\n3,\"", 7);
    assert_int_equal(basin_data_from_csv(buf, 7, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
    memcpy(buf, "1,2\n3,4", 7);
    assert_int_equal(basin_data_from_csv(buf, 5, NULL, 0, &ds, &err), BASIN_EPARSE);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 2);
    free(buf);
}

/* An allocator that fails the Nth allocation. */
static long alloc_countdown = -1;

static void *failing_malloc(size_t size, void *ctx)
{
    (void)ctx;
    if (alloc_countdown == 0)
        return NULL;
    if (alloc_countdown > 0)
        alloc_countdown--;
    return malloc(size);
}

static void *failing_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void plain_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    basin_allocator a = {failing_malloc, failing_realloc, plain_free, NULL};
    basin_set_allocator(&a);
    int saw_nomem = 0, ok = 0;
    for (long k = 0; k < 20 && !ok; k++) {
        basin_dataset *ds = NULL;
        basin_parse_error err;
        alloc_countdown = k;
        int rc = parse("a,b\n1,2\n3,4\n", -1, 0, 0, 0, &ds, &err);
        if (rc == BASIN_ENOMEM) {
            saw_nomem = 1;
            assert_null(ds);
        } else {
            assert_int_equal(rc, BASIN_OK);
            assert_int_equal(ds->n, 2);
            ok = 1;
        }
        basin_dataset_free(ds);
    }
    alloc_countdown = -1;
    basin_set_allocator(NULL);
    assert_true(saw_nomem);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_quotes_and_spaces),
        cmocka_unit_test(test_line_endings_and_bom),
        cmocka_unit_test(test_header_modes),
        cmocka_unit_test(test_y_cols_and_delimiter),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_cell_errors),
        cmocka_unit_test(test_ragged),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_max_rows),
        cmocka_unit_test(test_tiny_and_unterminated_buffers),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
