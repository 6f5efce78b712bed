/* The fault-injecting SQLite VFS (vfs_fault.h): a shim over SQLite's default VFS that counts
 * opens, writes, truncates and syncs and fails the ones a test asked for.
 *
 * DESIGN
 * Shape (SQLite's own test_vfstrace.c / test_devsym.c): our sqlite3_vfs forwards every method to
 * the real ("root") VFS, except xOpen, which opens the real file inside our file object
 * (szOsFile = our header + the root's szOsFile) and installs an io_methods table that forwards
 * everything but xWrite, xTruncate and xSync. Those three and xOpen first ask fault_hit(): is
 * this operation one the plan counts, and is it the one (or past the one, when persistent) that
 * must fail? A failing write/truncate/sync returns without touching the disk, as a device that
 * refused the request would; SQLite then rolls the transaction back and reports the error,
 * which is exactly the path under test.
 * Concurrency: the store calls SQLite from many threads (one connection each), so the plan and
 * its counters are one process-wide record behind a mutex. The lock is held only to count, never
 * across real I/O. Registration runs once (pthread_once); the VFS is never the default, so only
 * a store opened with store_options.vfs = VFS_FAULT_NAME is affected.
 * Invariant: a file whose real open failed has pMethods == NULL (SQLite then never calls
 * xClose on it); one whose real open succeeded always forwards xClose to the real file. */
#include "vfs_fault.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include <sqlite3.h>

struct fault_file {
    sqlite3_file base;  /* first: SQLite sees a struct fault_file * as a sqlite3_file * */
    sqlite3_file *real; /* the root VFS's file, in the same allocation after this header */
};

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vfs_fault_plan fault_plan;
static struct vfs_fault_stats fault_counts;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static int fault_register_rc;
static sqlite3_vfs fault_vfs;

static sqlite3_vfs *root_vfs(void)
{
    return (sqlite3_vfs *)fault_vfs.pAppData;
}

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((struct fault_file *)f)->real;
}

/* 0 when this operation may proceed, else the SQLite code it must answer (io_code for an
 * I/O error, SQLITE_FULL for a full disk). The operation is counted when the plan covers it. */
static int fault_hit(unsigned op, int io_code)
{
    int rc = SQLITE_OK;
    pthread_mutex_lock(&fault_mu);
    if (fault_plan.ops & op) {
        uint64_t n = ++fault_counts.counted;
        if (fault_plan.nth != 0 &&
            (fault_plan.persistent ? n >= fault_plan.nth : n == fault_plan.nth)) {
            fault_counts.failed++;
            rc = fault_plan.error == VFS_FAULT_FULL && op != VFS_FAULT_OPEN ? SQLITE_FULL : io_code;
        }
    }
    pthread_mutex_unlock(&fault_mu);
    return rc;
}

/* ---- the file methods ---- */

static int ff_close(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int ff_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xRead(r, buf, amt, off);
}

static int ff_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    sqlite3_file *r = real_of(f);
    int rc = fault_hit(VFS_FAULT_WRITE, SQLITE_IOERR_WRITE);
    if (rc != SQLITE_OK)
        return rc;
    return r->pMethods->xWrite(r, buf, amt, off);
}

static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    sqlite3_file *r = real_of(f);
    int rc = fault_hit(VFS_FAULT_TRUNCATE, SQLITE_IOERR_TRUNCATE);
    if (rc != SQLITE_OK)
        return rc;
    return r->pMethods->xTruncate(r, size);
}

static int ff_sync(sqlite3_file *f, int flags)
{
    sqlite3_file *r = real_of(f);
    int rc = fault_hit(VFS_FAULT_SYNC, SQLITE_IOERR_FSYNC);
    if (rc != SQLITE_OK)
        return rc;
    return r->pMethods->xSync(r, flags);
}

static int ff_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileSize(r, size);
}

static int ff_lock(sqlite3_file *f, int level)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xLock(r, level);
}

static int ff_unlock(sqlite3_file *f, int level)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xUnlock(r, level);
}

static int ff_check_reserved_lock(sqlite3_file *f, int *out)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xCheckReservedLock(r, out);
}

static int ff_file_control(sqlite3_file *f, int op, void *arg)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xFileControl(r, op, arg);
}

static int ff_sector_size(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xSectorSize(r);
}

static int ff_device_characteristics(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods->xDeviceCharacteristics(r);
}

static int ff_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    sqlite3_file *r = real_of(f);
    if (r->pMethods->iVersion < 2 || !r->pMethods->xShmMap)
        return SQLITE_IOERR_SHMMAP;
    return r->pMethods->xShmMap(r, region, size, extend, pp);
}

static int ff_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    sqlite3_file *r = real_of(f);
    if (r->pMethods->iVersion < 2 || !r->pMethods->xShmLock)
        return SQLITE_IOERR_SHMLOCK;
    return r->pMethods->xShmLock(r, offset, n, flags);
}

static void ff_shm_barrier(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    if (r->pMethods->iVersion >= 2 && r->pMethods->xShmBarrier)
        r->pMethods->xShmBarrier(r);
}

static int ff_shm_unmap(sqlite3_file *f, int delete_flag)
{
    sqlite3_file *r = real_of(f);
    if (r->pMethods->iVersion < 2 || !r->pMethods->xShmUnmap)
        return SQLITE_OK;
    return r->pMethods->xShmUnmap(r, delete_flag);
}

static int ff_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    sqlite3_file *r = real_of(f);
    *pp = NULL;
    if (r->pMethods->iVersion < 3 || !r->pMethods->xFetch)
        return SQLITE_OK; /* no mapping: SQLite reads with xRead instead */
    return r->pMethods->xFetch(r, off, amt, pp);
}

static int ff_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    sqlite3_file *r = real_of(f);
    if (r->pMethods->iVersion < 3 || !r->pMethods->xUnfetch)
        return SQLITE_OK;
    return r->pMethods->xUnfetch(r, off, p);
}

static const sqlite3_io_methods fault_io = {
    3,
    ff_close,
    ff_read,
    ff_write,
    ff_truncate,
    ff_sync,
    ff_file_size,
    ff_lock,
    ff_unlock,
    ff_check_reserved_lock,
    ff_file_control,
    ff_sector_size,
    ff_device_characteristics,
    ff_shm_map,
    ff_shm_lock,
    ff_shm_barrier,
    ff_shm_unmap,
    ff_fetch,
    ff_unfetch,
};

/* ---- the VFS methods ---- */

/* Our header rounded up so that the real file that follows it is suitably aligned. */
static size_t header_size(void)
{
    size_t a = sizeof(void *) > sizeof(sqlite3_int64) ? sizeof(void *) : sizeof(sqlite3_int64);
    return (sizeof(struct fault_file) + a - 1) / a * a;
}

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    struct fault_file *ff = (struct fault_file *)f;
    sqlite3_vfs *root = root_vfs();
    int rc;
    (void)vfs;

    ff->base.pMethods = NULL;
    ff->real = (sqlite3_file *)((char *)f + header_size());
    memset(ff->real, 0, (size_t)root->szOsFile);
    rc = fault_hit(VFS_FAULT_OPEN, SQLITE_CANTOPEN);
    if (rc != SQLITE_OK)
        return rc;
    rc = root->xOpen(root, name, ff->real, flags, out_flags);
    /* a real file with methods must be closed through us, even after a failed open */
    if (ff->real->pMethods)
        ff->base.pMethods = &fault_io;
    return rc;
}

static int fv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return root_vfs()->xDelete(root_vfs(), name, sync_dir);
}

static int fv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return root_vfs()->xAccess(root_vfs(), name, flags, out);
}

static int fv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return root_vfs()->xFullPathname(root_vfs(), name, n, out);
}

static void *fv_dlopen(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return root_vfs()->xDlOpen(root_vfs(), name);
}

static void fv_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
    (void)vfs;
    root_vfs()->xDlError(root_vfs(), n, msg);
}

static void (*fv_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return root_vfs()->xDlSym(root_vfs(), h, sym);
}

static void fv_dlclose(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    root_vfs()->xDlClose(root_vfs(), h);
}

static int fv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return root_vfs()->xRandomness(root_vfs(), n, out);
}

static int fv_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return root_vfs()->xSleep(root_vfs(), us);
}

static int fv_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return root_vfs()->xCurrentTime(root_vfs(), out);
}

static int fv_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return root_vfs()->xGetLastError ? root_vfs()->xGetLastError(root_vfs(), n, out) : 0;
}

static int fv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *root = root_vfs();
    double days = 0.0;
    int rc;
    (void)vfs;
    if (root->iVersion >= 2 && root->xCurrentTimeInt64)
        return root->xCurrentTimeInt64(root, out);
    rc = root->xCurrentTime(root, &days);
    *out = (sqlite3_int64)(days * 86400000.0);
    return rc;
}

static void fault_register_once(void)
{
    sqlite3_vfs *root;
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK) {
        fault_register_rc = rc;
        return;
    }
    root = sqlite3_vfs_find(NULL);
    if (root == NULL) {
        fault_register_rc = SQLITE_ERROR;
        return;
    }
    memset(&fault_vfs, 0, sizeof fault_vfs);
    fault_vfs.iVersion = 2; /* no system-call overrides through the shim */
    fault_vfs.szOsFile = (int)(header_size() + (size_t)root->szOsFile);
    fault_vfs.mxPathname = root->mxPathname;
    fault_vfs.zName = VFS_FAULT_NAME;
    fault_vfs.pAppData = root;
    fault_vfs.xOpen = fv_open;
    fault_vfs.xDelete = fv_delete;
    fault_vfs.xAccess = fv_access;
    fault_vfs.xFullPathname = fv_full_pathname;
    fault_vfs.xDlOpen = fv_dlopen;
    fault_vfs.xDlError = fv_dlerror;
    fault_vfs.xDlSym = fv_dlsym;
    fault_vfs.xDlClose = fv_dlclose;
    fault_vfs.xRandomness = fv_randomness;
    fault_vfs.xSleep = fv_sleep;
    fault_vfs.xCurrentTime = fv_current_time;
    fault_vfs.xGetLastError = fv_get_last_error;
    fault_vfs.xCurrentTimeInt64 = fv_current_time_int64;
    fault_register_rc = sqlite3_vfs_register(&fault_vfs, 0);
}

/* ---- the API ---- */

int vfs_fault_register(void)
{
    pthread_once(&fault_once, fault_register_once);
    return fault_register_rc;
}

void vfs_fault_arm(const struct vfs_fault_plan *plan)
{
    pthread_mutex_lock(&fault_mu);
    fault_plan = *plan;
    memset(&fault_counts, 0, sizeof fault_counts);
    pthread_mutex_unlock(&fault_mu);
}

void vfs_fault_clear(void)
{
    pthread_mutex_lock(&fault_mu);
    memset(&fault_plan, 0, sizeof fault_plan);
    pthread_mutex_unlock(&fault_mu);
}

void vfs_fault_get_stats(struct vfs_fault_stats *out)
{
    pthread_mutex_lock(&fault_mu);
    *out = fault_counts;
    pthread_mutex_unlock(&fault_mu);
}
