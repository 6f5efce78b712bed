/* A test-only basin_allocator that counts allocations, fails the Nth one on request and tracks
 * the blocks still live, so a test can prove that every allocation-failure path of a function
 * returns BASIN_ENOMEM and frees everything (the SQLite "fail the Nth malloc" technique).
 *
 * Header-only: everything is `static inline`, so a test that includes it but uses only part of
 * it compiles warning-free. Usage:
 *
 *     failing_alloc fa;
 *     failing_alloc_install(&fa, 3, FAILING_ALLOC_FROM_N);  // 3rd call and all later ones fail
 *     rc = code_under_test();
 *     failing_alloc_remove();                                // back to the C library
 *     assert fa.failures > 0, rc == BASIN_ENOMEM, fa.live == 0
 *
 * or failing_alloc_sweep() below, which does that for N = 1, 2, ... until a run succeeds.
 *
 * Each block carries a small header (a magic word and its size) in front of the pointer handed
 * out, which is how live blocks and bytes are counted and how a foreign pointer is caught. So:
 * install before the code under test allocates, and free every block it made before
 * failing_alloc_remove() (blocks from this allocator must never reach the C library's free,
 * nor C-library blocks reach this one: either aborts). Not thread-safe, like basin_set_allocator.
 * New memory is filled with 0xA5 so that code relying on uninitialised memory being zero (or a
 * basin_calloc that forgot to clear) shows up. */
#ifndef BASINLAB_TESTS_FAILING_ALLOC_H
#define BASINLAB_TESTS_FAILING_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basin/alloc.h"
#include "basin/status.h"

typedef enum failing_alloc_mode {
    FAILING_ALLOC_FROM_N, /* the Nth call and every later one fail */
    FAILING_ALLOC_ONLY_N  /* only the Nth call fails; later ones succeed again */
} failing_alloc_mode;

typedef struct failing_alloc {
    size_t fail_at; /* 1-based index of the first call to fail; 0 = never fail */
    failing_alloc_mode mode;
    size_t calls;      /* malloc and realloc calls seen (each may fail) */
    size_t failures;   /* calls that were made to fail */
    size_t frees;      /* free calls */
    long live;         /* blocks allocated and not yet freed */
    size_t live_bytes; /* their total requested size */
    size_t peak_bytes; /* maximum of live_bytes */
} failing_alloc;

#define FAILING_ALLOC_MAGIC ((size_t)0xB5A1AB1Eu)
#define FAILING_ALLOC_POISON 0xA5

/* The prefix in front of every block; the union keeps the user pointer max_align_t-aligned. */
typedef union failing_alloc_hdr {
    struct {
        size_t magic;
        size_t size;
    } h;
    max_align_t align;
} failing_alloc_hdr;

static inline failing_alloc_hdr *failing_alloc_hdr_of(void *ptr)
{
    failing_alloc_hdr *hdr = (failing_alloc_hdr *)ptr - 1;
    if (hdr->h.magic != FAILING_ALLOC_MAGIC)
        abort(); /* a block this allocator did not hand out */
    return hdr;
}

/* 1 when this call (already counted) must fail. */
static inline int failing_alloc_should_fail(failing_alloc *fa)
{
    int fail = fa->fail_at != 0 && (fa->mode == FAILING_ALLOC_FROM_N ? fa->calls >= fa->fail_at
                                                                     : fa->calls == fa->fail_at);
    if (fail)
        fa->failures++;
    return fail;
}

static inline void failing_alloc_account(failing_alloc *fa, size_t add, size_t remove)
{
    fa->live_bytes = fa->live_bytes - remove + add;
    if (fa->live_bytes > fa->peak_bytes)
        fa->peak_bytes = fa->live_bytes;
}

static inline void *failing_alloc_malloc(size_t size, void *ctx)
{
    failing_alloc *fa = ctx;
    fa->calls++;
    if (failing_alloc_should_fail(fa) || size > SIZE_MAX - sizeof(failing_alloc_hdr))
        return NULL;
    failing_alloc_hdr *hdr = malloc(sizeof *hdr + size);
    if (!hdr)
        return NULL;
    hdr->h.magic = FAILING_ALLOC_MAGIC;
    hdr->h.size = size;
    memset(hdr + 1, FAILING_ALLOC_POISON, size);
    fa->live++;
    failing_alloc_account(fa, size, 0);
    return hdr + 1;
}

static inline void *failing_alloc_realloc(void *ptr, size_t size, void *ctx)
{
    failing_alloc *fa = ctx;
    if (!ptr)
        return failing_alloc_malloc(size, ctx);
    fa->calls++;
    if (failing_alloc_should_fail(fa) || size > SIZE_MAX - sizeof(failing_alloc_hdr))
        return NULL; /* like realloc: the old block stays valid */
    failing_alloc_hdr *old = failing_alloc_hdr_of(ptr);
    size_t old_size = old->h.size;
    failing_alloc_hdr *hdr = malloc(sizeof *hdr + size);
    if (!hdr)
        return NULL;
    /* a fresh block rather than realloc(): a caller that keeps the stale pointer is caught */
    memcpy(hdr + 1, ptr, old_size < size ? old_size : size);
    if (size > old_size)
        memset((unsigned char *)(hdr + 1) + old_size, FAILING_ALLOC_POISON, size - old_size);
    hdr->h.magic = FAILING_ALLOC_MAGIC;
    hdr->h.size = size;
    old->h.magic = 0;
    free(old);
    failing_alloc_account(fa, size, old_size);
    return hdr + 1;
}

static inline void failing_alloc_free(void *ptr, void *ctx)
{
    failing_alloc *fa = ctx;
    if (!ptr)
        return;
    failing_alloc_hdr *hdr = failing_alloc_hdr_of(ptr);
    fa->frees++;
    fa->live--;
    failing_alloc_account(fa, 0, hdr->h.size);
    hdr->h.magic = 0;
    free(hdr);
}

/* Reset the counters of fa and make it the basin allocator. fail_at = 0: count only. */
static inline void failing_alloc_install(failing_alloc *fa, size_t fail_at, failing_alloc_mode mode)
{
    memset(fa, 0, sizeof *fa);
    fa->fail_at = fail_at;
    fa->mode = mode;
    basin_allocator a = {failing_alloc_malloc, failing_alloc_realloc, failing_alloc_free, fa};
    basin_set_allocator(&a);
}

/* Restore the C library allocator (fa keeps its final counts). */
static inline void failing_alloc_remove(void)
{
    basin_set_allocator(NULL);
}

/* What failing_alloc_sweep found. bad_n == 0 means every run behaved. */
typedef struct failing_alloc_report {
    size_t runs;        /* runs in which an allocation was made to fail */
    size_t allocations; /* allocation calls of the final, unfailed run */
    size_t bad_n;       /* first N whose run misbehaved (wrong status or a leak), else 0 */
    int bad_rc;         /* that run's status */
    long bad_live;      /* blocks that run left live */
    int final_rc;       /* status of the final, unfailed run */
} failing_alloc_report;

/* Run fn(arg) with the Nth allocation failing (in `mode`) for N = 1, 2, ... until a run makes
 * no failed allocation; that last run must then return BASIN_OK. fn must free everything it
 * allocates before returning, on success as on failure. A run in which an allocation failed
 * must return BASIN_ENOMEM and leave no block live; the sweep stops at the first one that does
 * not, leaving its leaked blocks alive (rep->bad_live of them: a test that wants to be clean
 * under ASan frees them by re-installing a failing_alloc). At most max_runs runs (0 = 100000);
 * running out leaves rep->final_rc == BASIN_ENOMEM. Returns 1 when every run behaved and the
 * final run succeeded without a leak, else 0. */
static inline int failing_alloc_sweep(int (*fn)(void *arg), void *arg, failing_alloc_mode mode,
                                      size_t max_runs, failing_alloc_report *rep)
{
    failing_alloc fa;
    memset(rep, 0, sizeof *rep);
    rep->final_rc = BASIN_ENOMEM;
    if (max_runs == 0)
        max_runs = 100000;
    for (size_t n = 1; n <= max_runs; n++) {
        failing_alloc_install(&fa, n, mode);
        int rc = fn(arg);
        failing_alloc_remove();
        if (fa.failures == 0) {
            rep->allocations = fa.calls;
            rep->final_rc = rc;
            if (rc != BASIN_OK || fa.live != 0) {
                rep->bad_n = n;
                rep->bad_rc = rc;
                rep->bad_live = fa.live;
            }
            return rep->bad_n == 0;
        }
        rep->runs++;
        if (rc != BASIN_ENOMEM || fa.live != 0) {
            rep->bad_n = n;
            rep->bad_rc = rc;
            rep->bad_live = fa.live;
            return 0;
        }
    }
    return 0;
}

#endif
