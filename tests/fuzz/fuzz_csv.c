/* libFuzzer target: basin_data_from_csv, the CSV reader behind text/csv uploads and the CLI's
 * --csv. Input layout: byte 0 chooses the options (bits 0-1: header 1 / 0 / detect; bits 2-3:
 * y_cols 1..4; bit 4: a row bound of 8 instead of none), byte 1 is the delimiter (0 = default),
 * the rest is the CSV text.
 *
 * Asserted: success xor an error with a message; a dataset has n ≥ 1 rows (≤ the bound), at
 * least one input column, y_cols target columns and only finite values; the error message is
 * non-empty printable UTF-8 (it is sent back in a problem body); a quote or line break as the
 * delimiter is refused. Independent of the reader: the number of rows cannot exceed the number
 * of line breaks + 1, and a text with no digit cannot yield a dataset. */
#include <math.h>
#include <string.h>

#include "basin/data.h"
#include "basin/status.h"
#include "fuzz.h"

enum { FUZZ_CSV_ROW_BOUND = 8 };

static size_t count_breaks(const char *t, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += t[i] == '\n' || t[i] == '\r';
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    basin_csv_options o;
    basin_parse_error err;
    basin_dataset *ds = NULL;
    if (size < 2)
        return 0;
    int headers[4] = {1, 0, -1, -1};
    o.header = headers[data[0] & 3];
    o.y_cols = 1 + ((data[0] >> 2) & 3);
    size_t max_rows = (data[0] & 16) ? FUZZ_CSV_ROW_BOUND : 0;
    o.delimiter = (char)data[1];
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    memset(&err, 0x55, sizeof err);
    int rc = basin_data_from_csv(text, len, &o, max_rows, &ds, &err);
    char delim = o.delimiter ? o.delimiter : ',';
    if (delim == '"' || delim == '\n' || delim == '\r')
        FUZZ_CHECK(rc == BASIN_EINVAL);
    if (rc == BASIN_OK) {
        FUZZ_CHECK(ds != NULL);
        FUZZ_CHECK(ds->n >= 1 && (max_rows == 0 || ds->n <= max_rows));
        FUZZ_CHECK(ds->n <= count_breaks(text, len) + 1);
        FUZZ_CHECK(ds->in_rank == 1 && ds->in_dim == ds->in_shape[0] && ds->in_dim >= 1);
        FUZZ_CHECK(ds->y_dim == o.y_cols);
        for (size_t i = 0; i < ds->n * ds->in_dim; i++)
            FUZZ_CHECK(isfinite(ds->x[i]));
        for (size_t i = 0; i < ds->n * ds->y_dim; i++)
            FUZZ_CHECK(isfinite(ds->y[i]));
        int digit = 0;
        for (size_t i = 0; i < len && !digit; i++)
            digit = text[i] >= '0' && text[i] <= '9';
        FUZZ_CHECK(digit);
    } else {
        FUZZ_CHECK(ds == NULL);
        FUZZ_CHECK(rc == BASIN_EPARSE || rc == BASIN_ERANGE || rc == BASIN_EINVAL);
        size_t mlen = strnlen(err.message, sizeof err.message);
        FUZZ_CHECK(mlen > 0 && mlen < sizeof err.message);
        FUZZ_CHECK(fuzz_utf8_valid(err.message, mlen));
        for (size_t i = 0; i < mlen; i++)
            FUZZ_CHECK((unsigned char)err.message[i] >= 0x20);
        FUZZ_CHECK(err.line <= count_breaks(text, len) + 1);
    }
    basin_dataset_free(ds);
    return 0;
}
