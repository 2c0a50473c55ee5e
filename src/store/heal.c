/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A database that heals itself: damage found at start or by a commit moves
 * the file aside and a fresh one takes its place, carrying over what can
 * still be read of the broker's own tables.
 *
 * DESIGN
 *
 * Checking. heal_check() runs before the store opens the file. It opens it
 * without checkpointing on close (a WAL that belongs to another database
 * must not be copied into this one before anyone looked), reads the schema
 * and every row of the small tables the broker loads at start (not the
 * outbox, which can be large; a commit finds damage there), and, only
 * when the last run did not end cleanly, PRAGMA quick_check. "Did not end
 * cleanly" is a marker file beside the database (<db>.running) that
 * heal_mark() creates once the store is open and heal_unmark() removes
 * after a clean close, or a WAL that is not empty (a clean close truncates
 * it). A 2 GB database on an SD card therefore costs no scan on a normal
 * boot. Only SQLITE_CORRUPT and SQLITE_NOTADB count as damage; any other
 * failure (a missing permission, a lock) is left for store_open() to
 * report, and a healthy file is never moved.
 *
 * Quarantine. heal_quarantine() renames the file and its -wal, -shm and
 * -journal to <db>.corrupt-<UTC time>[-wal...], so SQLite still pairs the
 * old file with its WAL and `sqlite3 OLD .recover` sees both. Then, on a
 * new connection, it creates the fresh file (schema.c), attaches the old
 * one and copies, table by table, every row it can read of mqlite_meta
 * (the instance_id that webhook Idempotency-Keys use), outbox,
 * outbox_dead, retained, sessions, session_msgs and qos2_inflight: in
 * rowid order until the first unreadable page, then from the end of the
 * table backwards to it, so one damaged page loses the rows on that page
 * and no others. Telemetry tables (messages, rule tables, rejected) are
 * not copied: they can be large and they stay in the quarantined file,
 * which is never deleted; the log says how to get them back.
 *
 * A disk too full for the fresh file is retried with a backoff (0.1 s
 * doubling to 30 s) until it works or stop() says to give up; the old file
 * is already aside, so nothing is served meanwhile and nothing is lost.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "store/heal.h"
#include "store/schema.h"

#define HEAL_MARK		".running"
#define HEAL_BACKOFF_MIN_MS	100
#define HEAL_BACKOFF_MAX_MS	30000
#define HEAL_MAX_COLS		32
#define HEAL_SQL_MAX		2048

/* The broker's tables, salvaged in this order. */
static const char *const heal_tables[] = {
	"mqlite_meta", "outbox", "outbox_dead", "retained", "sessions",
	"session_msgs", "qos2_inflight", NULL
};

static const char *const heal_suffixes[] = { "-wal", "-shm", "-journal",
	NULL };

static int	heal_dir_writable(const char *, struct gw_error *);
static bool	heal_unclean(const char *);
static off_t	heal_wal_size(const char *);
static void	heal_stamp(char *, size_t);
static int	heal_probe(const char *, bool, char *, size_t);
static int	heal_read_all(sqlite3 *, const char *);
static int	heal_truncated(const char *, off_t, char *, size_t);
static int	heal_fresh(const char *, const char *, bool *);
static void	heal_remove(const char *);
static int	heal_salvage(sqlite3 *, const char *);
static int	heal_copy(sqlite3 *, const char *, long long *, char *,
		    size_t);
static int	heal_columns(sqlite3 *, const char *, char *, size_t, int *);
static void	heal_sleep_ms(unsigned);
static int	heal_sync(const char *);
static int	heal_foreign_wal(const char *, sqlite3 *, char *, size_t);
static int	heal_instance_id(sqlite3 *, char *, size_t);

/* Whether an SQLite result code means the file is damaged. */
bool
heal_is_corrupt(int sqlite_rc)
{
	sqlite_rc &= 0xff;
	return sqlite_rc == SQLITE_CORRUPT || sqlite_rc == SQLITE_NOTADB;
}

/* The folder of path must take new files: the WAL, a fresh database. */
static int
heal_dir_writable(const char *path, struct gw_error *err)
{
	char dir[4096];
	const char *slash;

	slash = strrchr(path, '/');
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	if (access(dir, W_OK | X_OK) == 0)
		return 0;
	gw_error_set(err, path, "cannot open database: cannot use folder "
	    "%s: %s (mqlite must create its journal there and move a "
	    "damaged database aside)", dir, strerror(errno));
	return GW_EIO;
}

/* The marker is there, or a WAL a clean close would have truncated. */
static bool
heal_unclean(const char *path)
{
	char name[4096];
	struct stat sb;

	snprintf(name, sizeof name, "%s%s", path, HEAL_MARK);
	if (stat(name, &sb) == 0)
		return true;
	return heal_wal_size(path) > 0;
}

/* Bytes in path's WAL, 0 if none. */
static off_t
heal_wal_size(const char *path)
{
	char name[4096];
	struct stat sb;

	snprintf(name, sizeof name, "%s-wal", path);
	return stat(name, &sb) == 0 ? sb.st_size : 0;
}

/*
 * 1 when the file is shorter than its header says (the header's page
 * count is trusted, as SQLite does, only when its version stamp matches).
 */
static int
heal_truncated(const char *path, off_t size, char *why, size_t whylen)
{
	unsigned char h[100];
	unsigned long long psz, pages;
	ssize_t n;
	int fd;

	if (size < (off_t)sizeof h ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = pread(fd, h, sizeof h, 0);
	close(fd);
	if (n != (ssize_t)sizeof h || memcmp(h, "SQLite format 3", 16) != 0 ||
	    memcmp(h + 24, h + 92, 4) != 0)
		return 0;
	psz = ((unsigned)h[16] << 8) | h[17];
	if (psz == 1)
		psz = 65536;
	pages = ((unsigned long long)h[28] << 24) | ((unsigned)h[29] << 16) |
	    ((unsigned)h[30] << 8) | h[31];
	if ((unsigned long long)size >= pages * psz)
		return 0;
	snprintf(why, whylen, "truncated: %lld bytes, its header says %llu "
	    "pages of %llu", (long long)size, pages, psz);
	return 1;
}

/* The instance_id of db's main file into id ("" if none). */
static int
heal_instance_id(sqlite3 *db, char *id, size_t len)
{
	sqlite3_stmt *st;
	const unsigned char *v;
	int rc;

	id[0] = '\0';
	rc = sqlite3_prepare_v2(db, "SELECT value FROM mqlite_meta"
	    " WHERE key = 'instance_id'", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = sqlite3_column_text(st, 0);
		snprintf(id, len, "%s", v != NULL ? (const char *)v : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_finalize(st);
	return rc;
}

/*
 * 1 when the WAL beside path belongs to another database: the file alone
 * (read as immutable, which ignores the WAL) has an instance_id that db
 * (the file with its WAL) does not. mqlite never changes it.
 */
static int
heal_foreign_wal(const char *path, sqlite3 *db, char *why, size_t whylen)
{
	char uri[8192], mine[128], seen[128];
	sqlite3 *ro = NULL;
	size_t i, n;

	n = (size_t)snprintf(uri, sizeof uri, "file:");
	for (i = 0; path[i] != '\0' && n + 4 < sizeof uri; i++) {
		if (path[i] == '%' || path[i] == '?' || path[i] == '#')
			n += (size_t)snprintf(uri + n, sizeof uri - n, "%%%02X",
			    (unsigned char)path[i]);
		else
			uri[n++] = path[i];
	}
	snprintf(uri + n, sizeof uri - n, "?immutable=1");
	mine[0] = '\0';
	if (sqlite3_open_v2(uri, &ro, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
	    SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK)
		(void)heal_instance_id(ro, mine, sizeof mine);
	sqlite3_close_v2(ro);
	if (mine[0] == '\0')
		return 0;
	if (heal_instance_id(db, seen, sizeof seen) == SQLITE_OK &&
	    strcmp(mine, seen) == 0)
		return 0;
	snprintf(why, whylen, "its WAL (%s-wal) belongs to another database "
	    "(instance_id %s, not %s)", path, seen[0] != '\0' ? seen : "none",
	    mine);
	return 1;
}

/* Steps through every row of table; a missing table is fine. */
static int
heal_read_all(sqlite3 *db, const char *table)
{
	char sql[128];
	sqlite3_stmt *st;
	int rc;

	snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", table);
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return heal_is_corrupt(sqlite3_extended_errcode(db)) ? rc :
		    SQLITE_OK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * 1 when path is damaged (why says how), 2 when its WAL belongs to another
 * database, 0 when it looks healthy or does not exist, -1 when it cannot
 * be checked (store_open says why).
 */
static int
heal_probe(const char *path, bool quick, char *why, size_t whylen)
{
	const unsigned char *v;
	sqlite3_stmt *st = NULL;
	struct stat sb;
	sqlite3 *db = NULL;
	size_t i;
	int rc, ret = 0;

	if (stat(path, &sb) == -1)
		return errno == ENOENT ? 0 : -1;
	if (heal_truncated(path, sb.st_size, why, whylen))
		return 1;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "%s", db != NULL ? sqlite3_errmsg(db) :
		    sqlite3_errstr(rc));
		ret = heal_is_corrupt(rc) ? 1 : -1;
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_busy_timeout(db, 5000);
	rc = heal_read_all(db, "sqlite_schema");
	for (i = 0; rc == SQLITE_OK && heal_tables[i] != NULL; i++)
		if (strncmp(heal_tables[i], "outbox", 6) != 0)
			rc = heal_read_all(db, heal_tables[i]);
	if (rc == SQLITE_OK && heal_wal_size(path) > 0 &&
	    heal_foreign_wal(path, db, why, whylen)) {
		ret = 2;
		goto out;
	}
	if (rc == SQLITE_OK && quick) {
		log_warn("store: %s was not closed cleanly: checking it "
		    "(PRAGMA quick_check)", path);
		rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st,
		    NULL);
		if (rc == SQLITE_OK && (rc = sqlite3_step(st)) ==
		    SQLITE_ROW) {
			v = sqlite3_column_text(st, 0);
			if (v == NULL || strcmp((const char *)v, "ok") != 0) {
				snprintf(why, whylen, "quick_check: %s",
				    v != NULL ? (const char *)v : "?");
				ret = 1;
			}
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK) {
		snprintf(why, whylen, "%s", sqlite3_errmsg(db));
		ret = heal_is_corrupt(rc) ||
		    heal_is_corrupt(sqlite3_extended_errcode(db)) ? 1 : -1;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close_v2(db);
	return ret;
}

/*
 * At start, before the store opens path: 0 when it is healthy, missing or
 * was healed (moved aside, replaced); GW_EIO with err filled when its
 * folder is not writable, or it is damaged and refuse is set, or it
 * could not be moved aside. A file that cannot be checked for another
 * reason returns 0: store_open() reports it. Main thread.
 */
int
heal_check(const char *path, bool refuse, heal_stop_fn stop, void *ctx,
    struct gw_error *err)
{
	char why[512], from[4096], to[4096 + 64], stamp[32];
	int rc;

	if (heal_dir_writable(path, err) != 0)
		return GW_EIO;
	why[0] = '\0';
	rc = heal_probe(path, heal_unclean(path), why, sizeof why);
	if (rc == 2 && !refuse) {
		/* The file itself may be fine: set the stranger aside. */
		heal_stamp(stamp, sizeof stamp);
		snprintf(from, sizeof from, "%s-wal", path);
		snprintf(to, sizeof to, "%s-wal.foreign-%s", path, stamp);
		if (rename(from, to) == -1) {
			gw_error_set(err, path, "%s and cannot be moved aside: "
			    "%s", why, strerror(errno));
			return GW_EIO;
		}
		log_error("store: %s: %s: moved it aside to %s, it is not "
		    "used", path, why, to);
		rc = heal_probe(path, true, why, sizeof why);
	}
	if (rc != 1 && rc != 2)
		return 0;
	log_error("store: %s is damaged: %s", path, why);
	if (refuse) {
		gw_error_set(err, path, "database is damaged (%s) and "
		    "database.on_corrupt is \"refuse\": move it aside, or "
		    "recover its rows with: sqlite3 %s .recover", why, path);
		return GW_EIO;
	}
	return heal_quarantine(path, why, stop, ctx, err);
}

/* The UTC time now as 20261205T233546Z. */
static void
heal_stamp(char *buf, size_t len)
{
	struct tm tm;
	time_t now;

	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* Removes path and its companions (a half-made fresh file). */
static void
heal_remove(const char *path)
{
	char name[4096];
	size_t i;

	(void)unlink(path);
	for (i = 0; heal_suffixes[i] != NULL; i++) {
		snprintf(name, sizeof name, "%s%s", path, heal_suffixes[i]);
		(void)unlink(name);
	}
}

/*
 * Moves path (with its -wal, -shm, -journal) aside as path.corrupt-<UTC
 * time>, creates a fresh database at path and salvages the broker's
 * tables into it. why is logged. A full disk is retried until it works or
 * stop(ctx) is true. 0, or GW_EIO with err filled. The caller holds no
 * connection that writes path. Any thread.
 */
int
heal_quarantine(const char *path, const char *why, heal_stop_fn stop,
    void *ctx, struct gw_error *err)
{
	char old[4096], from[4096], to[4096 + 16], stamp[32];
	struct stat sb;
	unsigned delay = 0;
	size_t i;
	bool full;
	int n;

	heal_stamp(stamp, sizeof stamp);
	snprintf(old, sizeof old, "%s.corrupt-%s", path, stamp);
	for (n = 2; lstat(old, &sb) == 0 && n < 1000; n++)
		snprintf(old, sizeof old, "%s.corrupt-%s-%d", path, stamp, n);
	if (rename(path, old) == -1 && errno != ENOENT) {
		gw_error_set(err, path, "database is damaged (%s) and cannot "
		    "be moved aside to %s: %s", why, old, strerror(errno));
		return GW_EIO;
	}
	for (i = 0; heal_suffixes[i] != NULL; i++) {
		snprintf(from, sizeof from, "%s%s", path, heal_suffixes[i]);
		snprintf(to, sizeof to, "%s%s", old, heal_suffixes[i]);
		if (rename(from, to) == -1 && errno != ENOENT)
			log_error("store: cannot move %s to %s: %s", from, to,
			    strerror(errno));
	}
	log_error("store: DATABASE DAMAGED: %s moved aside to %s (%s); "
	    "starting a fresh database", path, old, why);
	for (;;) {
		full = false;
		if (heal_fresh(path, old, &full) == 0)
			break;
		heal_remove(path);
		if (!full) {
			gw_error_set(err, path, "cannot create a fresh "
			    "database (the damaged one is %s)", old);
			return GW_EIO;
		}
		delay = delay == 0 ? HEAL_BACKOFF_MIN_MS : delay * 2;
		if (delay > HEAL_BACKOFF_MAX_MS)
			delay = HEAL_BACKOFF_MAX_MS;
		log_error("store: %s: disk full, no room for a fresh "
		    "database; retrying in %u ms", path, delay);
		if (stop != NULL && stop(ctx)) {
			gw_error_set(err, path, "disk full: no fresh database "
			    "(the damaged one is %s)", old);
			return GW_EIO;
		}
		heal_sleep_ms(delay);
	}
	log_error("store: the telemetry rows (messages, rule tables, "
	    "rejected) of the damaged database stay in %s; recover what is "
	    "readable with: sqlite3 %s .recover | sqlite3 recovered.db (or "
	    ".dump instead of .recover where the sqlite3 shell lacks it)",
	    old, old);
	return 0;
}

/*
 * Creates path with the schema and copies what it can from old. 0, or
 * GW_EIO with *full set when the disk (or quota) was full.
 */
static int
heal_fresh(const char *path, const char *old, bool *full)
{
	struct gw_error e;
	sqlite3 *db = NULL;
	int rc, sys;

	memset(&e, 0, sizeof e);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_extended_result_codes(db, 1);
		if (schema_apply(db, &e) != 0)
			rc = SQLITE_ERROR;
		else
			rc = heal_salvage(db, old);
	}
	if (rc != SQLITE_OK) {
		sys = db != NULL ? sqlite3_system_errno(db) : 0;
		*full = (db != NULL && (sqlite3_errcode(db) & 0xff) ==
		    SQLITE_FULL) || sys == ENOSPC || sys == EDQUOT ||
		    strstr(e.msg, "full") != NULL;
		log_error("store: %s: fresh database: %s", path,
		    e.msg[0] != '\0' ? e.msg : db != NULL ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
	}
	if (sqlite3_close(db) != SQLITE_OK)
		sqlite3_close_v2(db);
	if (rc == SQLITE_OK && heal_sync(path) != 0) {
		*full = errno == ENOSPC || errno == EDQUOT;
		log_error("store: %s: fresh database: fsync: %s", path,
		    strerror(errno));
		return GW_EIO;
	}
	return rc == SQLITE_OK ? 0 : GW_EIO;
}

/*
 * Copies the broker's tables from old into db (fresh, schema applied) in
 * one transaction and logs what came through. SQLITE_OK, or the error
 * that stopped a write (a read error only loses rows).
 */
static int
heal_salvage(sqlite3 *db, const char *old)
{
	char note[256], lost[1024];
	sqlite3_stmt *st;
	long long copied;
	size_t i, used = 0;
	int rc;

	lost[0] = '\0';
	/*
	 * No journal and no syncing while copying: a read error must not roll
	 * back rows already copied, and heal_fresh() syncs the file at the
	 * end. writable_schema lets a damaged schema attach (a truncated
	 * file's root pages past its end).
	 */
	sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if ((rc = sqlite3_exec(db, "PRAGMA journal_mode = OFF;"
	    " PRAGMA synchronous = OFF; PRAGMA writable_schema = ON", NULL,
	    NULL, NULL)) != SQLITE_OK)
		return rc;
	if (sqlite3_prepare_v2(db, "ATTACH ?1 AS old", -1, &st, NULL) !=
	    SQLITE_OK)
		return sqlite3_errcode(db);
	sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_error("store: nothing could be salvaged from %s: %s", old,
		    sqlite3_errmsg(db));
		return sqlite3_exec(db, "PRAGMA writable_schema = OFF", NULL,
		    NULL, NULL);
	}
	for (i = 0; heal_tables[i] != NULL; i++) {
		note[0] = '\0';
		copied = 0;
		rc = heal_copy(db, heal_tables[i], &copied, note, sizeof note);
		if (rc != SQLITE_OK)
			break;
		log_warn("store: salvaged %lld rows of %s%s%s", copied,
		    heal_tables[i], note[0] != '\0' ? "; lost the rest: " : "",
		    note);
		if (note[0] != '\0' && used < sizeof lost)
			used += (size_t)snprintf(lost + used, sizeof lost -
			    used, "%s%s", used > 0 ? ", " : "",
			    heal_tables[i]);
	}
	if (rc == SQLITE_OK && lost[0] != '\0')
		log_error("store: could not save every row of: %s", lost);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "DETACH old;"
		    " PRAGMA writable_schema = OFF", NULL, NULL, NULL);
	else
		(void)sqlite3_exec(db, "DETACH old", NULL, NULL, NULL);
	return rc;
}

/*
 * The quoted columns of main.table that old.table has too, comma
 * separated, into cols; their number in *n. SQLITE_OK or a read error.
 */
static int
heal_columns(sqlite3 *db, const char *table, char *cols, size_t len, int *n)
{
	sqlite3_stmt *st;
	const unsigned char *name;
	size_t used = 0;
	int rc;

	*n = 0;
	cols[0] = '\0';
	rc = sqlite3_prepare_v2(db, "SELECT m.name FROM"
	    " pragma_table_info(?1, 'main') AS m"
	    " JOIN pragma_table_info(?1, 'old') AS o ON o.name = m.name"
	    " ORDER BY m.cid", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < HEAL_MAX_COLS) {
		name = sqlite3_column_text(st, 0);
		if (name == NULL || strchr((const char *)name, '"') != NULL)
			continue;
		used += (size_t)snprintf(cols + used, len - used, "%s\"%s\"",
		    *n > 0 ? "," : "", (const char *)name);
		if (used >= len) {
			rc = SQLITE_TOOBIG;
			break;
		}
		(*n)++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/*
 * Copies what is readable of old.table into main.table: forwards in rowid
 * order, and after an unreadable page backwards from the end down to it.
 * Adds the rows copied to *copied; note gets the read error, if any.
 * SQLITE_OK, or the write error that must stop the salvage.
 */
static int
heal_copy(sqlite3 *db, const char *table, long long *copied, char *note,
    size_t notelen)
{
	char cols[HEAL_SQL_MAX / 2], sql[HEAL_SQL_MAX], qs[HEAL_MAX_COLS * 2];
	sqlite3_stmt *rd = NULL, *wr = NULL;
	sqlite3_int64 last = 0;
	bool seen = false;
	int rc, ncols, i, pass;

	rc = heal_columns(db, table, cols, sizeof cols, &ncols);
	if (rc != SQLITE_OK || ncols == 0) {
		if (rc != SQLITE_OK)
			snprintf(note, notelen, "%s", sqlite3_errmsg(db));
		return SQLITE_OK;
	}
	for (i = 0; i < ncols; i++) {
		qs[2 * i] = i > 0 ? ',' : ' ';
		qs[2 * i + 1] = '?';
	}
	qs[2 * ncols] = '\0';
	snprintf(sql, sizeof sql, "INSERT OR %s INTO main.\"%s\" (%s) "
	    "VALUES (%s)", strcmp(table, "mqlite_meta") == 0 ? "REPLACE" :
	    "IGNORE", table, cols, qs);
	if ((rc = sqlite3_prepare_v2(db, sql, -1, &wr, NULL)) != SQLITE_OK)
		return rc;
	for (pass = 0; pass < 2; pass++) {
		snprintf(sql, sizeof sql, "SELECT rowid, %s FROM old.\"%s\""
		    " WHERE ?1 = 0 OR rowid > ?2 ORDER BY rowid %s", cols,
		    table, pass == 0 ? "ASC" : "DESC");
		if (sqlite3_prepare_v2(db, sql, -1, &rd, NULL) != SQLITE_OK) {
			snprintf(note, notelen, "%s", sqlite3_errmsg(db));
			break;
		}
		sqlite3_bind_int(rd, 1, pass == 1 && seen);
		sqlite3_bind_int64(rd, 2, last);
		while ((rc = sqlite3_step(rd)) == SQLITE_ROW) {
			if (pass == 0) {
				last = sqlite3_column_int64(rd, 0);
				seen = true;
			}
			for (i = 0; i < ncols; i++)
				sqlite3_bind_value(wr, i + 1,
				    sqlite3_column_value(rd, i + 1));
			rc = sqlite3_step(wr);
			sqlite3_reset(wr);
			if (rc != SQLITE_DONE)
				goto out;
			if (sqlite3_changes(db) > 0)
				(*copied)++;
		}
		if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
			break;
		}
		if (note[0] == '\0')
			snprintf(note, notelen, "%s", sqlite3_errmsg(db));
		rc = SQLITE_OK;
		sqlite3_finalize(rd);
		rd = NULL;
	}
	rc = SQLITE_OK;
out:
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	return rc;
}

/* Creates the marker: the store is open, a clean close removes it. */
void
heal_mark(const char *path)
{
	char name[4096], pid[32];
	ssize_t w;
	int fd, n;

	snprintf(name, sizeof name, "%s%s", path, HEAL_MARK);
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("store: cannot create %s: %s (an unclean stop will "
		    "not be noticed)", name, strerror(errno));
		return;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	w = write(fd, pid, (size_t)n);
	(void)w;
	close(fd);
}

/* Removes the marker after a clean close. */
void
heal_unmark(const char *path)
{
	char name[4096];

	snprintf(name, sizeof name, "%s%s", path, HEAL_MARK);
	if (unlink(name) == -1 && errno != ENOENT)
		log_warn("store: cannot remove %s: %s", name, strerror(errno));
}

/* fsync(2) of path; 0 or -1 with errno. */
static int
heal_sync(const char *path)
{
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static void
heal_sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
