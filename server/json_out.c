/* Compact JSON output with shortest round-trip reals (json_out.h). */
#include "json_out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 1024 };

static int emit(json_dump_callback_t cb, void *data, const char *s, size_t n)
{
    return cb(s, n, data) == 0 ? 0 : -1;
}

static int write_string(const char *s, size_t len, json_dump_callback_t cb, void *data)
{
    static const char hex[] = "0123456789abcdef";
    if (emit(cb, data, "\"", 1))
        return -1;
    size_t run = 0; /* bytes of s[run..i) that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            n = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (n == 0)
            continue;
        if (emit(cb, data, s + run, i - run) || emit(cb, data, esc, n))
            return -1;
        run = i + 1;
    }
    if (emit(cb, data, s + run, len - run))
        return -1;
    return emit(cb, data, "\"", 1);
}

static int write_real(double v, json_dump_callback_t cb, void *data)
{
    char buf[40];
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (len <= 0 || (size_t)len >= sizeof buf - 2)
        return -1;
    /* keep it recognisably a real, as jansson does ("1.0", not "1") */
    if (strpbrk(buf, ".eE") == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return emit(cb, data, buf, (size_t)len);
}

static int write_value(const json_t *j, json_dump_callback_t cb, void *data, int depth)
{
    char buf[32];
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return emit(cb, data, "null", 4);
    case JSON_TRUE:
        return emit(cb, data, "true", 4);
    case JSON_FALSE:
        return emit(cb, data, "false", 5);
    case JSON_INTEGER: {
        int n = snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return emit(cb, data, buf, (size_t)n);
    }
    case JSON_REAL:
        return write_real(json_real_value(j), cb, data);
    case JSON_STRING:
        return write_string(json_string_value(j), json_string_length(j), cb, data);
    case JSON_ARRAY: {
        if (emit(cb, data, "[", 1))
            return -1;
        for (size_t i = 0; i < json_array_size(j); i++) {
            if ((i > 0 && emit(cb, data, ",", 1)) ||
                write_value(json_array_get(j, i), cb, data, depth + 1))
                return -1;
        }
        return emit(cb, data, "]", 1);
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        int first = 1;
        if (emit(cb, data, "{", 1))
            return -1;
        json_object_foreach((json_t *)j, key, value)
        {
            if ((!first && emit(cb, data, ",", 1)) || write_string(key, strlen(key), cb, data) ||
                emit(cb, data, ":", 1) || write_value(value, cb, data, depth + 1))
                return -1;
            first = 0;
        }
        return emit(cb, data, "}", 1);
    }
    }
    return -1;
}

int json_write_compact(const json_t *json, json_dump_callback_t cb, void *data)
{
    if (json == NULL)
        return -1;
    return write_value(json, cb, data, 0);
}
