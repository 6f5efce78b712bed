/* The replaceable allocator (see alloc.h): a function table that defaults to the C library and
 * that tests replace to fail the Nth allocation. */
#include "basin/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basin/status.h"

static void *libc_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(ptr, size);
}

static void libc_free(void *ptr, void *ctx)
{
    (void)ctx;
    free(ptr);
}

static basin_allocator current = {libc_malloc, libc_realloc, libc_free, NULL};

void basin_set_allocator(const basin_allocator *allocator)
{
    if (allocator) {
        current = *allocator;
    } else {
        current.malloc_fn = libc_malloc;
        current.realloc_fn = libc_realloc;
        current.free_fn = libc_free;
        current.ctx = NULL;
    }
}

void *basin_malloc(size_t size)
{
    return current.malloc_fn(size ? size : 1, current.ctx);
}

void *basin_alloc_array(size_t count, size_t size)
{
    size_t total;
    if (basin_mul_size(count, size, &total) != BASIN_OK)
        return NULL;
    return basin_malloc(total);
}

void *basin_calloc(size_t count, size_t size)
{
    size_t total;
    if (basin_mul_size(count, size, &total) != BASIN_OK)
        return NULL;
    void *p = basin_malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *basin_realloc(void *ptr, size_t size)
{
    return current.realloc_fn(ptr, size ? size : 1, current.ctx);
}

void basin_free(void *ptr)
{
    if (ptr)
        current.free_fn(ptr, current.ctx);
}

char *basin_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = basin_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int basin_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return BASIN_ERANGE;
    *out = a * b;
    return BASIN_OK;
}

int basin_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return BASIN_ERANGE;
    *out = a + b;
    return BASIN_OK;
}
