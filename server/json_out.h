/* JSON output with the shortest round-trip form of every real: json_dump_callback writes reals
 * with 17 significant digits ("lr": 0.10000000000000001), which is exact but hard to read; this
 * writer prints the shortest of %.15g/%.16g/%.17g that reads back to the same double, so
 * "lr": 0.1 — still exact. Compact output (no spaces), object keys in insertion order, strings
 * escaped as JSON requires. Same callback contract as jansson's json_dump_callback. */
#ifndef BASINLAB_JSON_OUT_H
#define BASINLAB_JSON_OUT_H

#include <jansson.h>

/* Write `json` (any value) through `cb`; 0 on success, -1 when cb failed or a value cannot be
 * written (nesting deeper than 1024). */
int json_write_compact(const json_t *json, json_dump_callback_t cb, void *data);

#endif
