/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the daemon writes to storage; see iostat.h.
 *
 * DESIGN
 *
 * Flushes are counted where they happen: iostat_init() registers, as the
 * default, a VFS that wraps the one SQLite had and forwards every call to
 * it, counting xSync on the way. Its file object is the wrapped file's
 * object with a pointer in front, so each open costs one allocation of the
 * real size plus a pointer and nothing per I/O but the forward. Every
 * connection of the process (store, checkpointer, delivery, retention) goes
 * through it. Bytes come from the kernel: write_bytes of /proc/self/io is
 * what the process made the kernel write to storage, checkpoints, journal
 * and log files included, read when asked.
 *
 * The same wrapper joins the writes SQLite makes to a WAL file. SQLite
 * writes each frame as two calls, its 24-byte header and then its page,
 * so a commit of many small pages costs two system calls a page. Here a
 * frame header is held back and written in one call with the page that
 * follows it, and the frames of a transaction are gathered (up to
 * WALBUF_CAP bytes, contiguous) until the page of its commit frame, the
 * one whose header carries a database size: that write returns only once
 * everything up to it is in the file, before SQLite syncs the WAL or
 * tells other connections about the commit. Nothing another connection
 * can read is ever held: frames before the commit frame are not part of
 * any snapshot yet. Any other call on the file (read, sync, size,
 * truncate, lock, close, a write elsewhere or of another shape) writes
 * what is held first, so SQLite sees the file it would have seen; a
 * failure is returned by that call. The bytes the kernel writes and the
 * flushes do not change; the system calls do.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/iostat.h"

#define WALBUF_CAP	(64 * 1024)	/* bytes of WAL frames held at most */
#define WAL_HDR		32		/* the WAL file's own header */
#define WAL_FRAME_HDR	24

struct iostat_file {
	sqlite3_file	 base;		/* our methods */
	sqlite3_file	*real;		/* follows this struct */
	bool		 wal;		/* a WAL file: writes are joined */
	bool		 hdr_held;	/* buf ends with a frame header */
	bool		 commit;	/* ... of a commit frame */
	int		 len;		/* bytes held in buf */
	sqlite3_int64	 off;		/* file offset of buf[0] */
	unsigned char	*buf;		/* WALBUF_CAP, on first use */
};

static sqlite3_vfs		 iostat_vfs;
static sqlite3_vfs		*iostat_real;
static atomic_uint_fast64_t	 iostat_syncs;
static uint64_t		 iostat_base;	/* write_bytes at iostat_init() */

static uint64_t	proc_write_bytes(void);
static pthread_once_t		 iostat_once = PTHREAD_ONCE_INIT;
static int			 iostat_rc = SQLITE_OK;

#define REAL(f)	(((struct iostat_file *)(f))->real)
#define FLUSH(f)	(((struct iostat_file *)(f))->len == 0 ? SQLITE_OK : \
			    wal_flush((struct iostat_file *)(f)))

/* Writes what is held; it is dropped either way. SQLite's result code. */
static int
wal_flush(struct iostat_file *p)
{
	int n = p->len;

	p->len = 0;
	p->hdr_held = p->commit = false;
	return p->real->pMethods->xWrite(p->real, p->buf, n, p->off);
}

/*
 * A write to a WAL file: held when it is a frame header or the page of a
 * frame that is not a commit frame and fits; everything held is written
 * when the page of a commit frame arrives or anything else does.
 */
static int
wal_write(struct iostat_file *p, const unsigned char *d, int n,
    sqlite3_int64 off)
{
	bool hdr, page;
	int rc;

	hdr = n == WAL_FRAME_HDR && off >= WAL_HDR && !p->hdr_held;
	page = p->hdr_held && off == p->off + p->len;
	if (p->buf == NULL && (hdr || page))
		p->buf = malloc(WALBUF_CAP);
	if (p->buf == NULL || (!hdr && !page) ||
	    (p->len > 0 && off != p->off + p->len) ||
	    p->len + n > WALBUF_CAP) {
		/* Not the shape we join: the file as SQLite wrote it. */
		if (p->len > 0 && (rc = wal_flush(p)) != SQLITE_OK)
			return rc;
		if (!hdr || p->buf == NULL)
			return p->real->pMethods->xWrite(p->real, d, n, off);
	}
	if (p->len == 0)
		p->off = off;
	memcpy(p->buf + p->len, d, (size_t)n);
	p->len += n;
	if (hdr) {
		p->hdr_held = true;
		p->commit = (d[4] | d[5] | d[6] | d[7]) != 0;
		return SQLITE_OK;
	}
	p->hdr_held = false;
	if (p->commit || p->len > WALBUF_CAP - WAL_FRAME_HDR)
		return wal_flush(p);
	return SQLITE_OK;
}

static int
f_close(sqlite3_file *f)
{
	struct iostat_file *p = (struct iostat_file *)f;
	int rc, frc;

	frc = FLUSH(f);
	rc = REAL(f)->pMethods->xClose(REAL(f));
	free(p->buf);
	p->buf = NULL;
	return frc != SQLITE_OK ? frc : rc;
}

static int
f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (((struct iostat_file *)f)->wal)
		return wal_write((struct iostat_file *)f, p, n, off);
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int
f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
f_sync(sqlite3_file *f, int flags)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	atomic_fetch_add_explicit(&iostat_syncs, 1, memory_order_relaxed);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
f_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
f_lock(sqlite3_file *f, int l)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
f_unlock(sqlite3_file *f, int l)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
f_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
f_control(sqlite3_file *f, int op, void *arg)
{
	int rc;

	if ((rc = FLUSH(f)) != SQLITE_OK)
		return rc;
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
f_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
f_caps(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int
f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
f_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
f_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	if (REAL(f)->pMethods->iVersion < 3) {
		*pp = NULL;
		return SQLITE_OK;
	}
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int
f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	if (REAL(f)->pMethods->iVersion < 3)
		return SQLITE_OK;
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* Version 1 files (no shared memory) get the version 1 table. */
static const sqlite3_io_methods iostat_methods[2] = {
	{ 1, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
	    f_unlock, f_reserved, f_control, f_sector, f_caps, NULL, NULL,
	    NULL, NULL, NULL, NULL },
	{ 3, f_close, f_read, f_write, f_truncate, f_sync, f_size, f_lock,
	    f_unlock, f_reserved, f_control, f_sector, f_caps, f_shm_map,
	    f_shm_lock, f_shm_barrier, f_shm_unmap, f_fetch, f_unfetch },
};

static int
v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
    int *out)
{
	struct iostat_file *p = (struct iostat_file *)f;
	int rc;

	(void)vfs;
	memset(p, 0, sizeof *p);
	p->real = (sqlite3_file *)(p + 1);
	p->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = iostat_real->xOpen(iostat_real, name, p->real, flags, out);
	/* SQLite calls xClose only when pMethods is set. */
	if (p->real->pMethods != NULL)
		p->base.pMethods = &iostat_methods[
		    p->real->pMethods->iVersion >= 2 ? 1 : 0];
	return rc;
}

static int
v_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	(void)vfs;
	return iostat_real->xDelete(iostat_real, name, sync);
}

static int
v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return iostat_real->xAccess(iostat_real, name, flags, out);
}

static int
v_fullname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return iostat_real->xFullPathname(iostat_real, name, n, out);
}

static void *
v_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return iostat_real->xDlOpen(iostat_real, name);
}

static void
v_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	iostat_real->xDlError(iostat_real, n, msg);
}

static void
(*v_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return iostat_real->xDlSym(iostat_real, h, sym);
}

static void
v_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	iostat_real->xDlClose(iostat_real, h);
}

static int
v_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return iostat_real->xRandomness(iostat_real, n, out);
}

static int
v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return iostat_real->xSleep(iostat_real, us);
}

static int
v_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return iostat_real->xCurrentTime(iostat_real, out);
}

static int
v_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return iostat_real->xGetLastError(iostat_real, n, out);
}

static int
v_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return iostat_real->xCurrentTimeInt64(iostat_real, out);
}

static void
iostat_register(void)
{
	if ((iostat_real = sqlite3_vfs_find(NULL)) == NULL ||
	    iostat_real->iVersion < 2) {
		iostat_rc = SQLITE_ERROR;
		return;
	}
	iostat_vfs.iVersion = 2;
	iostat_vfs.szOsFile = (int)sizeof(struct iostat_file) +
	    iostat_real->szOsFile;
	iostat_vfs.mxPathname = iostat_real->mxPathname;
	iostat_vfs.zName = "mqlite-iostat";
	iostat_vfs.xOpen = v_open;
	iostat_vfs.xDelete = v_delete;
	iostat_vfs.xAccess = v_access;
	iostat_vfs.xFullPathname = v_fullname;
	iostat_vfs.xDlOpen = v_dlopen;
	iostat_vfs.xDlError = v_dlerror;
	iostat_vfs.xDlSym = v_dlsym;
	iostat_vfs.xDlClose = v_dlclose;
	iostat_vfs.xRandomness = v_random;
	iostat_vfs.xSleep = v_sleep;
	iostat_vfs.xCurrentTime = v_time;
	iostat_vfs.xGetLastError = v_lasterr;
	iostat_vfs.xCurrentTimeInt64 = v_time64;
	iostat_rc = sqlite3_vfs_register(&iostat_vfs, 1);
	iostat_base = proc_write_bytes();
}

/* Installs the counting VFS as the default, once. 0 or -1. Any thread. */
int
iostat_init(void)
{
	pthread_once(&iostat_once, iostat_register);
	return iostat_rc == SQLITE_OK ? 0 : -1;
}

/* Flushes (xSync calls) of every database file so far. Any thread. */
uint64_t
iostat_fsyncs(void)
{
	return atomic_load_explicit(&iostat_syncs, memory_order_relaxed);
}

/* write_bytes of /proc/self/io as the kernel reports it; 0 if it does not. */
static uint64_t
proc_write_bytes(void)
{
	unsigned long long v = 0;
	char line[128];
	FILE *f;

	if ((f = fopen("/proc/self/io", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "write_bytes: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/*
 * Bytes the process caused to be written to storage since iostat_init()
 * (the kernel's count also holds what a program that exec'ed the daemon
 * wrote, a build for example, so the start is subtracted); 0 when the
 * kernel does not tell. Any thread.
 */
uint64_t
iostat_write_bytes(void)
{
	uint64_t v = proc_write_bytes();

	return v > iostat_base ? v - iostat_base : 0;
}
