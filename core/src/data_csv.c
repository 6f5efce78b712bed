/* CSV text → dataset (data.h): the reader behind POST /v1/datasets with text/csv and the CLI's
 * --csv option. The text comes from a user, so every malformation is reported with its 1-based
 * line and field and nothing is allocated from a size that was not first measured.
 *
 * DESIGN
 * - Grammar: RFC 4180 records of fields separated by the delimiter. A field that starts with '"'
 *   (after optional spaces or tabs) is quoted: it runs to the next lone '"', a doubled '""'
 *   stands for one quote, and delimiters and line breaks inside belong to the field. Only spaces
 *   and tabs may follow the closing quote. A '"' inside an unquoted field is an error. Records
 *   end at LF, CRLF or a lone CR; a final record may lack its line break. A UTF-8 BOM at the
 *   start is skipped. Lines holding only spaces and tabs are skipped.
 * - Numbers: the cell (quotes removed, surrounding spaces and tabs trimmed) must be a decimal
 *   number that strtod consumes completely and that is finite: "nan", "inf", hex floats,
 *   "1e999" and the empty cell are rejected. Only [0-9+-.eE] may occur, which keeps strtod to
 *   the plain decimal grammar. Cells longer than CSV_MAX_NUMBER bytes are rejected too.
 * - Header: opts->header 1 takes the first record as a header, 0 takes none, −1 takes the first
 *   record as a header when any of its cells is not a number. Header cells must be valid UTF-8
 *   (they may be echoed back in JSON); they are otherwise ignored. The header fixes the field
 *   count like any other first record.
 * - Two passes over the text with the same scanner: the first validates everything and counts
 *   rows and fields (stopping at max_rows + 1 rows), the second writes the numbers into the
 *   dataset allocated from those counts. A row costs at least one byte, so n·cols is bounded by
 *   the text length; the products are overflow-checked all the same.
 * - Positions: line = physical line (CR, LF and CRLF each end one) where the offending field
 *   starts, or where the record starts for a wrong field count; column = 1-based field index. */
#include "basin/data.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basin/status.h"

#define CSV_MAX_NUMBER 128

typedef struct csv_options {
    int header;
    size_t y_cols;
    char delim;
} csv_options;

typedef struct csv_cursor {
    const char *text;
    size_t len;
    size_t pos;
    size_t line; /* physical line of text[pos] */
} csv_cursor;

/* One field: the slice text[start, end) holds its content (without the quotes). */
typedef struct csv_field {
    size_t start, end;
    size_t line;
    int quoted;
} csv_field;

typedef enum csv_end { CSV_END_FIELD, CSV_END_RECORD } csv_end;

/* What the first pass measured. */
typedef struct csv_scan {
    size_t cols;
    size_t rows;
} csv_scan;

#if defined(__GNUC__)
#define CSV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CSV_PRINTF(f, a)
#endif

static int fail(basin_parse_error *err, int rc, size_t line, size_t column, const char *fmt, ...)
    CSV_PRINTF(5, 6);

static int fail(basin_parse_error *err, int rc, size_t line, size_t column, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->line = line;
        err->column = column;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* A printable ASCII rendering of a cell for messages: the message may end up in JSON, so bytes
 * outside 0x20..0x7e (including broken UTF-8) become '?'. */
static void cell_preview(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0, i = 0;
    for (; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < n) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

static int is_blank_char(char c)
{
    return c == ' ' || c == '\t';
}

static int at_line_break(const csv_cursor *cur)
{
    return cur->pos < cur->len && (cur->text[cur->pos] == '\n' || cur->text[cur->pos] == '\r');
}

/* Step over one line break (LF, CRLF or CR) at cur->pos. */
static void skip_line_break(csv_cursor *cur)
{
    if (cur->text[cur->pos] == '\r' && cur->pos + 1 < cur->len && cur->text[cur->pos + 1] == '\n')
        cur->pos++;
    cur->pos++;
    cur->line++;
}

/* Read the field at cur->pos, leaving the cursor after its delimiter or line break. */
static int read_field(csv_cursor *cur, const csv_options *o, size_t column, csv_field *f,
                      csv_end *end, basin_parse_error *err)
{
    const char *t = cur->text;
    while (cur->pos < cur->len && is_blank_char(t[cur->pos]) && t[cur->pos] != o->delim)
        cur->pos++;
    f->line = cur->line;
    f->quoted = cur->pos < cur->len && t[cur->pos] == '"';
    if (f->quoted) {
        size_t open_line = cur->line;
        cur->pos++;
        f->start = cur->pos;
        for (;;) {
            if (cur->pos >= cur->len)
                return fail(err, BASIN_EPARSE, open_line, column,
                            "unterminated quoted field (the quote opens on line %zu)", open_line);
            char c = t[cur->pos];
            if (c == '\0')
                return fail(err, BASIN_EPARSE, cur->line, column, "embedded NUL byte");
            if (c == '"') {
                if (cur->pos + 1 < cur->len && t[cur->pos + 1] == '"') {
                    cur->pos += 2;
                    continue;
                }
                break;
            }
            if (c == '\n' || c == '\r')
                skip_line_break(cur);
            else
                cur->pos++;
        }
        f->end = cur->pos;
        cur->pos++; /* the closing quote */
        while (cur->pos < cur->len && is_blank_char(t[cur->pos]) && t[cur->pos] != o->delim)
            cur->pos++;
        if (cur->pos < cur->len && t[cur->pos] != o->delim && !at_line_break(cur)) {
            if (t[cur->pos] == '\0')
                return fail(err, BASIN_EPARSE, cur->line, column, "embedded NUL byte");
            return fail(err, BASIN_EPARSE, cur->line, column,
                        "unexpected character after a closing quote");
        }
    } else {
        f->start = cur->pos;
        while (cur->pos < cur->len && t[cur->pos] != o->delim && !at_line_break(cur)) {
            if (t[cur->pos] == '\0')
                return fail(err, BASIN_EPARSE, cur->line, column, "embedded NUL byte");
            if (t[cur->pos] == '"')
                return fail(err, BASIN_EPARSE, cur->line, column, "quote inside an unquoted field");
            cur->pos++;
        }
        f->end = cur->pos;
    }
    if (cur->pos < cur->len && t[cur->pos] == o->delim) {
        cur->pos++;
        *end = CSV_END_FIELD;
    } else {
        if (cur->pos < cur->len)
            skip_line_break(cur);
        *end = CSV_END_RECORD;
    }
    return BASIN_OK;
}

/* Strict decimal number: 1 and *value when text[start,end) (spaces/tabs trimmed) is one. */
static int parse_number(const char *text, size_t start, size_t end, double *value)
{
    char buf[CSV_MAX_NUMBER + 1];
    while (start < end && is_blank_char(text[start]))
        start++;
    while (end > start && is_blank_char(text[end - 1]))
        end--;
    size_t n = end - start;
    if (n == 0 || n > CSV_MAX_NUMBER)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[start + i];
        if (!((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E'))
            return 0;
    }
    memcpy(buf, text + start, n);
    buf[n] = '\0';
    char *stop = NULL;
    double v = strtod(buf, &stop);
    if (stop != buf + n || !isfinite(v))
        return 0;
    *value = v;
    return 1;
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is malformed: overlong
 * forms, surrogates and code points above U+10FFFF are malformed (RFC 3629). */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        if (s[0] == 0xE0)
            lo = 0xA0;
        else if (s[0] == 0xED)
            hi = 0x9F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        if (s[0] == 0xF0)
            lo = 0x90;
        else if (s[0] == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(u + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Skip blank lines; 1 when a record starts at cur->pos, 0 at the end of the text. */
static int next_record(csv_cursor *cur, char delim)
{
    for (;;) {
        size_t p = cur->pos;
        while (p < cur->len && is_blank_char(cur->text[p]) && cur->text[p] != delim)
            p++;
        if (p >= cur->len) {
            cur->pos = p;
            return 0;
        }
        if (cur->text[p] != '\n' && cur->text[p] != '\r')
            return 1;
        cur->pos = p;
        skip_line_break(cur);
    }
}

/* *has_text = 1 when any field of the record at cur is not a number (the cursor stays). */
static int record_has_text(const csv_cursor *at, const csv_options *o, int *has_text,
                           basin_parse_error *err)
{
    csv_cursor cur = *at;
    csv_field f;
    csv_end end = CSV_END_FIELD;
    *has_text = 0;
    for (size_t col = 1; end == CSV_END_FIELD; col++) {
        int rc = read_field(&cur, o, col, &f, &end, err);
        if (rc)
            return rc;
        double v;
        if (!parse_number(cur.text, f.start, f.end, &v))
            *has_text = 1;
    }
    return BASIN_OK;
}

/* Check and skip the header record at cur. */
static int read_header(csv_cursor *cur, const csv_options *o, size_t *cols, basin_parse_error *err)
{
    csv_field f;
    csv_end end = CSV_END_FIELD;
    size_t col = 0;
    while (end == CSV_END_FIELD) {
        col++;
        int rc = read_field(cur, o, col, &f, &end, err);
        if (rc)
            return rc;
        if (!valid_utf8(cur->text + f.start, f.end - f.start))
            return fail(err, BASIN_EPARSE, f.line, col, "header cell is not valid UTF-8");
    }
    *cols = col;
    return BASIN_OK;
}

static int check_cols(size_t cols, const csv_options *o, size_t line, basin_parse_error *err)
{
    if (cols <= o->y_cols)
        return fail(err, BASIN_EPARSE, line, 0,
                    "%zu field%s per row leave no input column besides %zu target column%s", cols,
                    cols == 1 ? "" : "s", o->y_cols, o->y_cols == 1 ? "" : "s");
    return BASIN_OK;
}

/* One pass over the text. With ds == NULL it validates and measures into *scan; with ds it
 * writes the scan->rows rows into ds (the text has been validated by then). */
static int csv_pass(const char *text, size_t len, const csv_options *o, size_t max_rows,
                    csv_scan *scan, basin_dataset *ds, basin_parse_error *err)
{
    csv_cursor cur = {text, len, 0, 1};
    size_t cols = 0, rows = 0;
    int rc;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        cur.pos = 3;
    if (!next_record(&cur, o->delim))
        return fail(err, BASIN_EPARSE, 0, 0, "empty file: no rows");
    int header = o->header;
    if (header < 0 && (rc = record_has_text(&cur, o, &header, err)) != BASIN_OK)
        return rc;
    if (header) {
        size_t line = cur.line;
        if ((rc = read_header(&cur, o, &cols, err)) != BASIN_OK ||
            (rc = check_cols(cols, o, line, err)) != BASIN_OK)
            return rc;
    }
    while (next_record(&cur, o->delim)) {
        size_t record_line = cur.line;
        if (max_rows && rows == max_rows)
            return fail(err, BASIN_ERANGE, record_line, 0, "more than %zu data rows", max_rows);
        csv_field f;
        csv_end end = CSV_END_FIELD;
        size_t col = 0;
        while (end == CSV_END_FIELD) {
            col++;
            if (cols && col > cols)
                return fail(err, BASIN_EPARSE, record_line, col, "row has more than %zu fields",
                            cols);
            if ((rc = read_field(&cur, o, col, &f, &end, err)) != BASIN_OK)
                return rc;
            double v = 0;
            if (!parse_number(text, f.start, f.end, &v)) {
                char preview[48];
                cell_preview(text + f.start, f.end - f.start, preview, sizeof preview);
                return fail(err, BASIN_EPARSE, f.line, col, "cell \"%s\" is not a finite number",
                            preview);
            }
            if (ds) {
                size_t in_dim = ds->in_dim;
                if (col <= in_dim)
                    ds->x[rows * in_dim + col - 1] = v;
                else
                    ds->y[rows * ds->y_dim + (col - 1 - in_dim)] = v;
            }
        }
        if (cols == 0) {
            cols = col;
            if ((rc = check_cols(cols, o, record_line, err)) != BASIN_OK)
                return rc;
        } else if (col < cols) {
            return fail(err, BASIN_EPARSE, record_line, col + 1,
                        "row has %zu field%s, expected %zu", col, col == 1 ? "" : "s", cols);
        }
        rows++;
    }
    if (rows == 0)
        return fail(err, BASIN_EPARSE, 0, 0, "no data rows (only a header)");
    scan->cols = cols;
    scan->rows = rows;
    return BASIN_OK;
}

int basin_data_from_csv(const char *text, size_t len, const basin_csv_options *opts,
                        size_t max_rows, basin_dataset **out, basin_parse_error *err)
{
    int rc = BASIN_OK;
    basin_dataset *ds = NULL;
    csv_options o = {-1, 1, ','};
    csv_scan scan = {0, 0};
    if (err) {
        err->line = 0;
        err->column = 0;
        err->message[0] = '\0';
    }
    if (out)
        *out = NULL;
    if (!out || (!text && len > 0)) {
        rc = fail(err, BASIN_EINVAL, 0, 0, "no text or no output");
        goto done;
    }
    if (opts) {
        o.header = opts->header;
        o.y_cols = opts->y_cols ? opts->y_cols : 1;
        o.delim = opts->delimiter ? opts->delimiter : ',';
    }
    if (o.header < -1 || o.header > 1) {
        rc = fail(err, BASIN_EINVAL, 0, 0, "header must be 1, 0 or -1 (detect)");
        goto done;
    }
    if (o.delim == '"' || o.delim == '\n' || o.delim == '\r') {
        rc = fail(err, BASIN_EINVAL, 0, 0, "the delimiter cannot be a quote or a line break");
        goto done;
    }
    if ((rc = csv_pass(text, len, &o, max_rows, &scan, NULL, err)) != BASIN_OK)
        goto done;
    size_t shape[1] = {scan.cols - o.y_cols};
    rc = basin_dataset_create(scan.rows, 1, shape, o.y_cols, &ds);
    if (rc) {
        fail(err, rc, 0, 0, "cannot allocate %zu rows of %zu values", scan.rows, scan.cols);
        goto done;
    }
    if ((rc = csv_pass(text, len, &o, max_rows, &scan, ds, err)) != BASIN_OK)
        goto done;
    basin_dataset_infer_task(ds);
    *out = ds;
    ds = NULL;
done:
    basin_dataset_free(ds);
    return rc;
}
