/* A TEST-ONLY SQLite VFS that fails chosen file operations on demand: the Nth open, write,
 * truncate or sync (counted from the moment a plan is armed) answers an I/O error or "disk
 * full", once or from then on until the plan is cleared. It proves that the store turns storage
 * faults into clean errors (503 to clients), keeps serving what it can read, and loses nothing
 * it acknowledged (tests/unit/test_faults_vfs.c, docs/RELIABILITY.md).
 *
 * It is compiled into the app library but inert: production never registers it. A test calls
 * vfs_fault_register() and opens the store with store_options.vfs = VFS_FAULT_NAME; every file
 * SQLite then opens for that store goes through the shim, which forwards to SQLite's default
 * VFS. State is process-wide (like any VFS registration) and guarded by a mutex, so the store's
 * many connections and threads count against one plan. */
#ifndef BASINLAB_VFS_FAULT_H
#define BASINLAB_VFS_FAULT_H

#include <stdint.h>

#define VFS_FAULT_NAME "basinlab-fault"

/* The operations a plan counts (a bit mask). */
enum vfs_fault_op {
    VFS_FAULT_OPEN = 1u,     /* xOpen of any file: database, WAL, temporary files */
    VFS_FAULT_WRITE = 2u,    /* xWrite */
    VFS_FAULT_TRUNCATE = 4u, /* xTruncate */
    VFS_FAULT_SYNC = 8u      /* xSync */
};

/* What a failing operation answers. */
enum vfs_fault_error {
    VFS_FAULT_EIO, /* SQLITE_IOERR_WRITE / _TRUNCATE / _FSYNC; SQLITE_CANTOPEN for an open */
    VFS_FAULT_FULL /* SQLITE_FULL (ENOSPC); an open answers SQLITE_CANTOPEN as the real VFS does */
};

struct vfs_fault_plan {
    unsigned ops;   /* enum vfs_fault_op bits counted; 0 = count nothing */
    uint64_t nth;   /* 1-based index of the first counted operation to fail; 0 = never */
    int persistent; /* 0: only the nth fails; 1: the nth and every later one, until cleared */
    enum vfs_fault_error error;
};

struct vfs_fault_stats {
    uint64_t counted; /* operations of plan.ops seen since the plan was armed */
    uint64_t failed;  /* of those, made to fail */
};

/* Register the VFS under VFS_FAULT_NAME (never as the default). Idempotent and thread-safe.
 * Returns 0, or an SQLite result code when SQLite cannot be initialised. */
int vfs_fault_register(void);

/* Reset the counters and start following `plan` (copied). */
void vfs_fault_arm(const struct vfs_fault_plan *plan);

/* Stop failing and counting (the counters keep their final values for vfs_fault_get_stats). */
void vfs_fault_clear(void);

void vfs_fault_get_stats(struct vfs_fault_stats *out);

#endif
