/* The replaceable allocator of libbasin (and of the server, which uses it too).
 *
 * All core allocations go through basin_malloc/basin_calloc/basin_realloc/basin_free. Tests
 * install an allocator that fails the Nth call to prove that every failure path is clean.
 * This is the one piece of process-global state in the core, in the spirit of
 * sqlite3_config(SQLITE_CONFIG_MALLOC): set it before any other call and never while other
 * threads allocate. Passing NULL restores the C library allocator. */
#ifndef BASIN_ALLOC_H
#define BASIN_ALLOC_H

#include <stddef.h>

typedef struct basin_allocator {
    void *(*malloc_fn)(size_t size, void *ctx);
    void *(*realloc_fn)(void *ptr, size_t size, void *ctx);
    void (*free_fn)(void *ptr, void *ctx);
    void *ctx;
} basin_allocator;

void basin_set_allocator(const basin_allocator *allocator);

void *basin_malloc(size_t size);
/* Zeroed count*size bytes; NULL (not a wrapped size) when count*size overflows. */
void *basin_calloc(size_t count, size_t size);
void *basin_realloc(void *ptr, size_t size);
/* count*size bytes, uninitialised; NULL when the product overflows. */
void *basin_alloc_array(size_t count, size_t size);
void basin_free(void *ptr);
/* Duplicate a NUL-terminated string with basin_malloc; NULL on failure or NULL input. */
char *basin_strdup(const char *s);

/* *out = a*b; returns BASIN_ERANGE (and leaves *out untouched) when it overflows size_t. */
int basin_mul_size(size_t a, size_t b, size_t *out);
/* *out = a+b; returns BASIN_ERANGE when it overflows size_t. */
int basin_add_size(size_t a, size_t b, size_t *out);

#endif
