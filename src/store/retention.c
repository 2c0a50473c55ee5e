/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention of the telemetry tables; see retention.h for the contract.
 *
 * DESIGN
 *
 * Targets. From the current rule set (and the fixed tables messages and
 * rejected) we build one target per telemetry table: its name, its time
 * column (messages and rejected: received_ms; a rule table: its
 * retention.time_column, or none) and its max_age (messages:
 * database.retention.max_age; a rule table: its retention.max_age; the
 * smallest non-zero one when several rules write the same table). Each
 * target gets its statements prepared once per rule set. When the time
 * column leads an index, rows are taken in time order through it; without
 * one they are taken in rowid (insertion) order and age pruning looks at a
 * window of the oldest rowids only, so a table is never scanned whole
 * between two batches: that is exact when rows arrive in time order,
 * and an index on the time column makes it exact in any case.
 *
 * Age. Each target with a max_age has a next-due time (monotonic). When it
 * is due, one DELETE of at most chunk rows older than now - max_age runs
 * in its own autocommit transaction. A full chunk means "behind": due again
 * at once. Otherwise the next check is when the oldest remaining row
 * expires, but no sooner than 1 s and no later than 60 s (the wall clock of
 * an edge box may jump at boot).
 *
 * Size. max_bytes bounds the database file plus its WAL. The WAL gets an
 * allowance of max_bytes / 8 (64 KB to 4 MB): journal_size_limit trims it
 * to that after each restart, and a PASSIVE checkpoint runs whenever it is
 * bigger on disk. The pages in use ((page_count - freelist_count) *
 * page_size) are kept under high = max_bytes - allowance: above it we
 * delete the oldest rows, a chunk per call, until they are under
 * low = 90% of high (hysteresis: pruning happens in bursts, not on every
 * batch). The chunk is sized from the excess and the average row size,
 * capped at chunk rows, a cap that doubles (up to 8x) while ingest grows
 * the database faster than one chunk per batch shrinks it. Which table
 * loses rows: the tables with a time column form one group in which the
 * one holding the oldest row goes first; tables without a time column
 * lose their lowest rowids; the group and each such table get turns in
 * proportion to their (estimated) row counts, smooth weighted round robin.
 * Freed pages are reused by new rows; while page_count exceeds high, an
 * incremental_vacuum step (256 pages at most) gives the surplus back to
 * the filesystem and a checkpoint makes the file shrink.
 *
 * Nothing is silent: every row deleted is counted (retention_stats) and
 * logged, in one summary line per 10 s at most (the store thread wakes up
 * for it when idle), naming the tables and counts.
 */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "rules/rules.h"
#include "store/retention.h"

#define RET_CHUNK_DEF		1000
#define RET_CHUNK_MULT_MAX	8
#define RET_WINDOW		4	/* x chunk rowids scanned, no index */
#define RET_IDLE_MIN_MS		1000
#define RET_IDLE_MAX_MS		60000
#define RET_RETRY_MS		1000
#define RET_LOG_MS		10000
#define RET_LOW_PCT		90
#define RET_WAL_MIN		(64LL << 10)
#define RET_WAL_MAX		(4LL << 20)
#define RET_VACUUM_STEP		256	/* pages per incremental_vacuum */
#define RET_SQL_MAX		1024

struct ret_target {
	char		*table;		/* validated identifier */
	char		*tcol;		/* time column, NULL: rowid order */
	bool		 indexed;	/* tcol leads a full index */
	uint64_t	 max_age_ms;	/* 0: no age pruning */
	sqlite3_stmt	*age_del;	/* ?1 cutoff, ?2 limit [, ?3 window] */
	sqlite3_stmt	*size_del;	/* ?1 limit, oldest first */
	sqlite3_stmt	*oldest;	/* time of the oldest row (tcol only) */
	sqlite3_stmt	*span;		/* min(rowid), max(rowid) */
	long long	 age_next_ms;	/* monotonic; next age check */
	long long	 est;		/* estimated rows (this size round) */
	long long	 cw;		/* round-robin credit */
	uint64_t	 log_age;	/* rows deleted since the last line */
	uint64_t	 log_size;
};

struct retention {
	sqlite3			*db;		/* borrowed writer connection */
	char			*wal_path;	/* "<path>-wal" */
	uint64_t		 max_bytes;
	uint64_t		 max_age_ms;	/* messages */
	unsigned		 chunk;		/* rows per DELETE */
	long long		 page_size;
	long long		 high;		/* pages in use: prune above */
	long long		 low;		/* ... down to */
	long long		 wal_limit;	/* WAL allowance */
	bool			 can_vacuum;	/* auto_vacuum = incremental */
	sqlite3_stmt		*page_count;
	sqlite3_stmt		*freelist;
	struct rule_set		*set;		/* referenced, or NULL */
	struct ret_target	*t;
	size_t			 nt;
	size_t			 age_rr;	/* next age target to look at */
	long long		 cw_timed;	/* credit of the timed group */
	bool			 pruning;	/* above high, not yet at low */
	bool			 behind;	/* size work left right now */
	unsigned		 mult;		/* chunk cap multiplier */
	long long		 log_next_ms;	/* no summary line before */
	bool			 log_pending;	/* rows deleted, not logged */
	struct log_limit	 errlim;
	struct log_limit	 warnlim;

	atomic_uint_fast64_t	 age_rows;
	atomic_uint_fast64_t	 size_rows;
	atomic_uint_fast64_t	 chunks;
	atomic_uint_fast64_t	 vacuum_pages;
	atomic_uint_fast64_t	 checkpoints;
	atomic_uint_fast64_t	 errors;
	atomic_uint_fast64_t	 used_bytes;
	atomic_uint_fast64_t	 file_bytes;
	atomic_uint_fast64_t	 wal_bytes;
};

/* Tables retention never touches, whatever a rule says. */
static const char *const ret_protected[] = {
	"outbox", "outbox_dead", "retained", "sessions", "session_msgs",
	"qos2_inflight", "mqlite_meta", "mqlite_rollup_state", NULL
};

static bool	ret_ident_ok(const char *);
static void	ret_targets_free(struct retention *);
static int	ret_add(struct retention *, const char *, const char *,
		    uint64_t);
static int	ret_build(struct retention *, const struct rule_set *);
static int	ret_stmt(struct retention *, sqlite3_stmt **, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	ret_prepare(struct retention *, struct ret_target *);
static int	ret_query_int(struct retention *, sqlite3_stmt *,
		    long long *);
static int	ret_delete(struct retention *, sqlite3_stmt *,
		    const struct ret_target *, long long *);
static long long ret_oldest(struct retention *, struct ret_target *,
		    bool *);
static int	ret_age(struct retention *, long long);
static void	ret_measure(struct retention *, long long *, long long *,
		    long long *, long long *);
static long long ret_size_chunk(struct retention *, long long);
static int	ret_size(struct retention *);
static void	ret_checkpoint(struct retention *);
static void	ret_log(struct retention *, long long, bool);
static void	ret_fail(struct retention *, const char *, const char *);

/* [A-Za-z_][A-Za-z0-9_]*, as the rules loader checks; defensive. */
static bool
ret_ident_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 128)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') ||
		    (i > 0 && s[i] >= '0' && s[i] <= '9'))
			continue;
		return false;
	}
	return true;
}

/*
 * Creates the retention state on db. Returns a new object or NULL with err
 * filled. Store thread, or main before the store thread starts.
 */
struct retention *
retention_new(struct sqlite3 *db, const char *path,
    const struct retention_opts *opts, struct gw_error *err)
{
	struct retention *r;
	long long v;
	char sql[64];
	size_t n;

	if ((r = gw_calloc(1, sizeof *r)) == NULL) {
		gw_error_set(err, path, "out of memory");
		return NULL;
	}
	r->db = db;
	r->max_bytes = opts->max_bytes;
	r->max_age_ms = opts->max_age_ms > (uint64_t)INT64_MAX / 2 ?
	    (uint64_t)INT64_MAX / 2 : opts->max_age_ms;
	r->chunk = opts->chunk_rows != 0 ? opts->chunk_rows : RET_CHUNK_DEF;
	r->mult = 1;
	n = strlen(path) + 5;
	if ((r->wal_path = gw_malloc(n)) == NULL) {
		gw_error_set(err, path, "out of memory");
		goto fail;
	}
	snprintf(r->wal_path, n, "%s-wal", path);
	if (sqlite3_prepare_v3(db, "PRAGMA page_count", -1,
	    SQLITE_PREPARE_PERSISTENT, &r->page_count, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, "PRAGMA freelist_count", -1,
	    SQLITE_PREPARE_PERSISTENT, &r->freelist, NULL) != SQLITE_OK) {
		gw_error_set(err, path, "retention: %s", sqlite3_errmsg(db));
		goto fail;
	}

	r->page_size = 4096;
	if (r->max_bytes > 0) {
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st,
		    NULL) == SQLITE_OK) {
			if (ret_query_int(r, st, &v) == 0 && v > 0)
				r->page_size = v;
			sqlite3_finalize(st);
		}
		if (sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &st,
		    NULL) == SQLITE_OK) {
			r->can_vacuum = ret_query_int(r, st, &v) == 0 &&
			    v == 2;
			sqlite3_finalize(st);
		}
		v = r->max_bytes > INT64_MAX / 2 ? INT64_MAX / 2 :
		    (long long)r->max_bytes;
		r->wal_limit = v / 8;
		if (r->wal_limit < RET_WAL_MIN)
			r->wal_limit = RET_WAL_MIN;
		if (r->wal_limit > RET_WAL_MAX)
			r->wal_limit = RET_WAL_MAX;
		r->high = v - r->wal_limit;
		if (r->high < r->page_size)
			r->high = r->page_size;
		r->low = r->high / 100 * RET_LOW_PCT;
		snprintf(sql, sizeof sql, "PRAGMA journal_size_limit = %lld",
		    r->wal_limit);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			gw_error_set(err, path, "retention: %s",
			    sqlite3_errmsg(db));
			goto fail;
		}
		if (!r->can_vacuum)
			log_warn("retention: %s: auto_vacuum is not "
			    "incremental: freed pages are reused but the file "
			    "never shrinks (run VACUUM after PRAGMA "
			    "auto_vacuum = INCREMENTAL once to change that)",
			    path);
		log_info("retention: %s: max_bytes %llu: rows pruned when "
		    "pages in use pass %lld bytes, down to %lld; WAL kept "
		    "near %lld", path, (unsigned long long)r->max_bytes,
		    r->high, r->low, r->wal_limit);
	}
	if (ret_build(r, NULL) != 0) {
		gw_error_set(err, path, "retention: out of memory");
		goto fail;
	}
	return r;

fail:
	retention_free(r);
	return NULL;
}

/* Finalizes every target's statements and frees the list. */
static void
ret_targets_free(struct retention *r)
{
	struct ret_target *t;
	size_t i;

	for (i = 0; i < r->nt; i++) {
		t = &r->t[i];
		sqlite3_finalize(t->age_del);
		sqlite3_finalize(t->size_del);
		sqlite3_finalize(t->oldest);
		sqlite3_finalize(t->span);
		gw_free(t->table);
		gw_free(t->tcol);
	}
	gw_free(r->t);
	r->t = NULL;
	r->nt = 0;
}

/*
 * Adds table (time column tcol or NULL, max_age or 0) to the list, merging
 * with an entry for the same table. Protected and invalid names are
 * skipped. 0 or GW_ENOMEM.
 */
static int
ret_add(struct retention *r, const char *table, const char *tcol,
    uint64_t max_age)
{
	struct ret_target *t, *nt;
	size_t i;

	if (!ret_ident_ok(table) || strncasecmp(table, "sqlite_", 7) == 0)
		return 0;
	for (i = 0; ret_protected[i] != NULL; i++)
		if (strcasecmp(table, ret_protected[i]) == 0)
			return 0;
	if (tcol != NULL && !ret_ident_ok(tcol))
		tcol = NULL;
	if (max_age > (uint64_t)INT64_MAX / 2)
		max_age = (uint64_t)INT64_MAX / 2;
	for (i = 0; i < r->nt; i++) {
		t = &r->t[i];
		if (strcasecmp(t->table, table) != 0)
			continue;
		if (tcol == NULL)
			return 0;
		if (t->tcol == NULL) {
			if ((t->tcol = gw_strdup(tcol)) == NULL)
				return GW_ENOMEM;
		} else if (strcasecmp(t->tcol, tcol) != 0) {
			log_warn("retention: table %s: time column %s ignored, "
			    "the table already uses %s", table, tcol,
			    t->tcol);
			return 0;
		}
		if (max_age != 0 && (t->max_age_ms == 0 ||
		    max_age < t->max_age_ms))
			t->max_age_ms = max_age;
		return 0;
	}
	if ((nt = gw_realloc(r->t, (r->nt + 1) * sizeof *r->t)) == NULL)
		return GW_ENOMEM;
	r->t = nt;
	t = &r->t[r->nt];
	memset(t, 0, sizeof *t);
	if ((t->table = gw_strdup(table)) == NULL ||
	    (tcol != NULL && (t->tcol = gw_strdup(tcol)) == NULL)) {
		gw_free(t->table);
		return GW_ENOMEM;
	}
	t->max_age_ms = tcol != NULL ? max_age : 0;
	r->nt++;
	return 0;
}

/*
 * Rebuilds the target list for set (NULL: messages and rejected only) and
 * prepares the statements; a table that cannot be used (missing, WITHOUT
 * ROWID) is logged and left out. 0 or GW_ENOMEM.
 */
static int
ret_build(struct retention *r, const struct rule_set *set)
{
	const struct rule_sqlite *sq;
	const struct rule *rule;
	size_t i, k, n;

	ret_targets_free(r);
	if (ret_add(r, "messages", "received_ms", r->max_age_ms) != 0 ||
	    ret_add(r, "rejected", "received_ms", 0) != 0)
		return GW_ENOMEM;
	n = set != NULL ? rule_set_count(set) : 0;
	for (i = 0; i < n; i++) {
		rule = rule_set_rule(set, i);
		if ((sq = rule_sqlite(rule)) == NULL)
			continue;
		if (ret_add(r, sq->table, sq->time_column,
		    sq->max_age_ms) != 0)
			return GW_ENOMEM;
		for (k = 0; k < sq->nrollups; k++)
			if (ret_add(r, sq->rollups[k].table,
			    RULES_ROLLUP_WINDOW, sq->rollups[k].max_age_ms) != 0)
				return GW_ENOMEM;
	}
	for (i = 0; i < r->nt; ) {
		if (ret_prepare(r, &r->t[i]) != 0) {
			sqlite3_finalize(r->t[i].age_del);
			sqlite3_finalize(r->t[i].size_del);
			sqlite3_finalize(r->t[i].oldest);
			sqlite3_finalize(r->t[i].span);
			gw_free(r->t[i].table);
			gw_free(r->t[i].tcol);
			memmove(&r->t[i], &r->t[i + 1],
			    (r->nt - i - 1) * sizeof *r->t);
			r->nt--;
			continue;
		}
		r->t[i].age_next_ms = 0;	/* a new target is due at once */
		i++;
	}
	r->age_rr = 0;
	r->cw_timed = 0;
	return 0;
}

/* Prepares one statement into *st from a printf format; 0 or GW_EIO. */
static int
ret_stmt(struct retention *r, sqlite3_stmt **st, const char *fmt, ...)
{
	char sql[RET_SQL_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof sql)
		return GW_EIO;
	return sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    st, NULL) == SQLITE_OK ? 0 : GW_EIO;
}

/*
 * Checks t's time column and index and prepares its statements. Names were
 * validated (ret_ident_ok) and are quoted; values are all bound. 0, or
 * GW_EIO after logging why the table is left out.
 */
static int
ret_prepare(struct retention *r, struct ret_target *t)
{
	static const char *const has_col = "SELECT 1 FROM"
	    " pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE";
	static const char *const has_idx = "SELECT 1 FROM"
	    " pragma_index_list(?1) AS l, pragma_index_info(l.name) AS i"
	    " WHERE l.partial = 0 AND i.seqno = 0"
	    " AND i.name = ?2 COLLATE NOCASE";
	sqlite3_stmt *st;
	const char *tb = t->table, *c = t->tcol;
	int rc;

	if (c != NULL) {
		if (sqlite3_prepare_v2(r->db, has_col, -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, tb, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW) {
			log_warn("retention: table %s has no column %s: "
			    "no age retention, size pruning in rowid order",
			    tb, c);
			gw_free(t->tcol);
			t->tcol = NULL;
			t->max_age_ms = 0;
			c = NULL;
		}
	}
	if (c != NULL) {
		if (sqlite3_prepare_v2(r->db, has_idx, -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_text(st, 1, tb, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c, -1, SQLITE_STATIC);
		t->indexed = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
		if (!t->indexed && t->max_age_ms != 0)
			log_info("retention: table %s: no index on %s, rows "
			    "expire in insertion order (declare \"indexes\": "
			    "[\"%s\"] for exact age pruning)", tb, c, c);
	}

	if (ret_stmt(r, &t->span, "SELECT (SELECT min(rowid) FROM \"%s\"),"
	    " (SELECT max(rowid) FROM \"%s\")", tb, tb) != 0)
		goto fail;
	if (c != NULL && t->indexed) {
		if (ret_stmt(r, &t->size_del, "DELETE FROM \"%s\" WHERE rowid"
		    " IN (SELECT rowid FROM \"%s\" ORDER BY \"%s\" LIMIT ?1)",
		    tb, tb, c) != 0 ||
		    ret_stmt(r, &t->oldest, "SELECT min(\"%s\") FROM \"%s\"",
		    c, tb) != 0)
			goto fail;
		if (t->max_age_ms != 0 && ret_stmt(r, &t->age_del,
		    "DELETE FROM \"%s\" WHERE rowid IN (SELECT rowid FROM"
		    " \"%s\" WHERE \"%s\" < ?1 ORDER BY \"%s\" LIMIT ?2)",
		    tb, tb, c, c) != 0)
			goto fail;
		return 0;
	}
	if (ret_stmt(r, &t->size_del, "DELETE FROM \"%s\" WHERE rowid IN"
	    " (SELECT rowid FROM \"%s\" ORDER BY rowid LIMIT ?1)", tb,
	    tb) != 0)
		goto fail;
	if (c == NULL)
		return 0;
	if (ret_stmt(r, &t->oldest, "SELECT \"%s\" FROM \"%s\" ORDER BY rowid"
	    " LIMIT 1", c, tb) != 0)
		goto fail;
	if (t->max_age_ms != 0 && ret_stmt(r, &t->age_del,
	    "DELETE FROM \"%s\" WHERE rowid IN (SELECT r FROM"
	    " (SELECT rowid AS r, \"%s\" AS v FROM \"%s\" ORDER BY rowid"
	    " LIMIT ?3) WHERE v < ?1 LIMIT ?2)", tb, c, tb) != 0)
		goto fail;
	return 0;

fail:
	log_warn("retention: table %s left out: %s", tb,
	    sqlite3_errmsg(r->db));
	return GW_EIO;
}

/* Steps st for one integer (first column); resets it. 0 or GW_EIO. */
static int
ret_query_int(struct retention *r, sqlite3_stmt *st, long long *out)
{
	int rc;

	(void)r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : GW_EIO;
}

/* Counts and logs (rate-limited) a failed statement on table. */
static void
ret_fail(struct retention *r, const char *table, const char *what)
{
	atomic_fetch_add_explicit(&r->errors, 1, memory_order_relaxed);
	if (log_ratelimited(&r->errlim, 5, 60000))
		log_warn("retention: %s%s%s failed, retried later: %s (%d)",
		    what, table != NULL ? " on " : "",
		    table != NULL ? table : "", sqlite3_errmsg(r->db),
		    sqlite3_extended_errcode(r->db));
}

/* Runs a bound DELETE; *n = rows deleted. 0 or GW_EIO (logged). */
static int
ret_delete(struct retention *r, sqlite3_stmt *st,
    const struct ret_target *t, long long *n)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		ret_fail(r, t->table, "delete");
		sqlite3_reset(st);
		return GW_EIO;
	}
	sqlite3_reset(st);
	*n = sqlite3_changes(r->db);
	atomic_fetch_add_explicit(&r->chunks, 1, memory_order_relaxed);
	return 0;
}

/*
 * Time of t's oldest row (t has a time column): *known is false when the
 * table is empty or that value is NULL or not a number.
 */
static long long
ret_oldest(struct retention *r, struct ret_target *t, bool *known)
{
	long long v = 0;
	int rc, type;

	*known = false;
	rc = sqlite3_step(t->oldest);
	if (rc == SQLITE_ROW) {
		type = sqlite3_column_type(t->oldest, 0);
		if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
			v = sqlite3_column_int64(t->oldest, 0);
			*known = true;
		}
	} else if (rc != SQLITE_DONE)
		ret_fail(r, t->table, "oldest row query");
	sqlite3_reset(t->oldest);
	return v;
}

/* One age chunk on the first due target, round robin. 0 or GW_EIO. */
static int
ret_age(struct retention *r, long long now)
{
	struct ret_target *t;
	long long wall, n = 0, wait, v;
	size_t k, i;
	bool known;

	for (k = 0; k < r->nt; k++) {
		i = (r->age_rr + k) % r->nt;
		t = &r->t[i];
		if (t->age_del != NULL && t->age_next_ms <= now)
			break;
	}
	if (k == r->nt)
		return 0;
	r->age_rr = i + 1;
	wall = clock_wall_ms();
	sqlite3_bind_int64(t->age_del, 1, wall - (long long)t->max_age_ms);
	sqlite3_bind_int64(t->age_del, 2, r->chunk);
	if (!t->indexed)
		sqlite3_bind_int64(t->age_del, 3,
		    (long long)r->chunk * RET_WINDOW);
	if (ret_delete(r, t->age_del, t, &n) != 0) {
		t->age_next_ms = now + RET_RETRY_MS;
		return GW_EIO;
	}
	if (n > 0) {
		atomic_fetch_add_explicit(&r->age_rows, (uint64_t)n,
		    memory_order_relaxed);
		t->log_age += (uint64_t)n;
		r->log_pending = true;
	}
	if (n >= (long long)r->chunk) {
		t->age_next_ms = now;		/* behind */
		return 0;
	}
	v = ret_oldest(r, t, &known);
	wait = known ? v + (long long)t->max_age_ms - wall :
	    (long long)t->max_age_ms;
	if (wait < RET_IDLE_MIN_MS)
		wait = RET_IDLE_MIN_MS;
	if (wait > RET_IDLE_MAX_MS)
		wait = RET_IDLE_MAX_MS;
	t->age_next_ms = now + wait;
	return 0;
}

/* Pages in use, page_count pages and the WAL on disk, in bytes. */
static void
ret_measure(struct retention *r, long long *used, long long *file,
    long long *wal, long long *free_pages)
{
	struct stat sb;
	long long pc = 0, fl = 0;

	if (ret_query_int(r, r->page_count, &pc) != 0 ||
	    ret_query_int(r, r->freelist, &fl) != 0)
		ret_fail(r, NULL, "page count");
	*file = pc * r->page_size;
	*used = (pc - fl) * r->page_size;
	*free_pages = fl;
	*wal = stat(r->wal_path, &sb) == 0 ? (long long)sb.st_size : 0;
	atomic_store_explicit(&r->used_bytes, (uint64_t)*used,
	    memory_order_relaxed);
	atomic_store_explicit(&r->file_bytes, (uint64_t)*file,
	    memory_order_relaxed);
	atomic_store_explicit(&r->wal_bytes, (uint64_t)*wal,
	    memory_order_relaxed);
}

/*
 * Deletes one chunk of the oldest rows (see DESIGN for which table) sized
 * for used bytes in use. Returns the rows deleted, 0 when no telemetry row
 * is left, GW_EIO.
 */
static long long
ret_size_chunk(struct retention *r, long long used)
{
	struct ret_target *t, *victim = NULL;
	long long lo, hi, total = 0, timed = 0, limit, avg, v, best = 0;
	long long n = 0;
	size_t i;
	bool known;

	for (i = 0; i < r->nt; i++) {
		t = &r->t[i];
		t->est = 0;
		if (sqlite3_step(t->span) == SQLITE_ROW &&
		    sqlite3_column_type(t->span, 0) == SQLITE_INTEGER) {
			lo = sqlite3_column_int64(t->span, 0);
			hi = sqlite3_column_int64(t->span, 1);
			t->est = hi >= lo ? hi - lo + 1 : 1;
		}
		sqlite3_reset(t->span);
		total += t->est;
		if (t->tcol != NULL)
			timed += t->est;
	}
	if (total == 0)
		return 0;

	/*
	 * Smooth weighted round robin between the timed group and each table
	 * without a time column, weighted by estimated rows.
	 */
	r->cw_timed += timed;
	best = timed > 0 ? r->cw_timed : LLONG_MIN;
	for (i = 0; i < r->nt; i++) {
		t = &r->t[i];
		if (t->tcol != NULL)
			continue;
		t->cw += t->est;
		if (t->est > 0 && t->cw > best) {
			best = t->cw;
			victim = t;
		}
	}
	if (victim != NULL)
		victim->cw -= total;
	else {
		r->cw_timed -= total;
		for (i = 0; i < r->nt; i++) {
			t = &r->t[i];
			if (t->tcol == NULL || t->est == 0)
				continue;
			v = ret_oldest(r, t, &known);
			if (!known)
				v = LLONG_MIN;	/* NULL times go first */
			if (victim == NULL || v < best) {
				victim = t;
				best = v;
			}
		}
	}
	if (victim == NULL)
		return 0;

	avg = used / total;
	if (avg < 1)
		avg = 1;
	limit = (used - r->low) / avg + 1;
	if (limit > (long long)r->chunk * r->mult)
		limit = (long long)r->chunk * r->mult;
	sqlite3_bind_int64(victim->size_del, 1, limit);
	if (ret_delete(r, victim->size_del, victim, &n) != 0)
		return GW_EIO;
	if (n > 0) {
		atomic_fetch_add_explicit(&r->size_rows, (uint64_t)n,
		    memory_order_relaxed);
		victim->log_size += (uint64_t)n;
		r->log_pending = true;
	}
	return n;
}

/* A PASSIVE checkpoint (never waits); counted when complete. */
static void
ret_checkpoint(struct retention *r)
{
	int rc, log_frames = 0, done = 0;

	rc = sqlite3_wal_checkpoint_v2(r->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
	if (rc == SQLITE_OK && done >= log_frames)
		atomic_fetch_add_explicit(&r->checkpoints, 1,
		    memory_order_relaxed);
	else if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		ret_fail(r, NULL, "checkpoint");
}

/* The max_bytes work of one call. 0 or GW_EIO. */
static int
ret_size(struct retention *r)
{
	long long used, file, wal, fl, n, pages;
	char sql[64];
	bool vacuumed = false;
	int rc = 0;

	r->behind = false;
	ret_measure(r, &used, &file, &wal, &fl);
	if (!r->pruning && used > r->high) {
		r->pruning = true;
		if (log_ratelimited(&r->warnlim, 1, 60000))
			log_warn("retention: %lld bytes in use passed the "
			    "max_bytes bound (%lld for rows, WAL %lld): "
			    "deleting the oldest telemetry rows", used,
			    r->high, wal);
	}
	if (r->pruning && used > r->low) {
		n = ret_size_chunk(r, used);
		if (n < 0)
			rc = (int)n;
		else if (n == 0) {
			r->pruning = false;
			r->mult = 1;
			if (log_ratelimited(&r->warnlim, 1, 60000))
				log_warn("retention: %lld bytes in use are "
				    "over the bound (%lld) but no telemetry "
				    "row is left to delete (outbox, sessions "
				    "and retained messages are kept)", used,
				    r->high);
		} else {
			ret_measure(r, &used, &file, &wal, &fl);
			if (used > r->high && r->mult < RET_CHUNK_MULT_MAX)
				r->mult *= 2;
			r->behind = used > r->low;
		}
	}
	if (r->pruning && used <= r->low) {
		r->pruning = false;
		r->mult = 1;
	}
	if (r->can_vacuum && file > r->high && fl > 0) {
		pages = (file - r->high + r->page_size - 1) / r->page_size;
		if (pages > fl)
			pages = fl;
		if (pages > RET_VACUUM_STEP)
			pages = RET_VACUUM_STEP;
		snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)",
		    pages);
		if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			ret_fail(r, NULL, "incremental_vacuum");
			rc = GW_EIO;
		} else {
			atomic_fetch_add_explicit(&r->vacuum_pages,
			    (uint64_t)pages, memory_order_relaxed);
			vacuumed = true;
			if (fl > pages && file - pages * r->page_size >
			    r->high)
				r->behind = true;
		}
	}
	if (vacuumed || wal > r->wal_limit)
		ret_checkpoint(r);
	if (rc != 0)
		r->behind = false;	/* retry after the next batch */
	return rc;
}

/*
 * Logs the rows deleted since the last line, at most every RET_LOG_MS
 * unless force.
 */
static void
ret_log(struct retention *r, long long now, bool force)
{
	char size_s[256], age_s[256];
	size_t i, so = 0, ao = 0;
	uint64_t size = 0, age = 0;
	struct ret_target *t;
	int k;

	if (!r->log_pending || (!force && now < r->log_next_ms))
		return;
	r->log_pending = false;
	size_s[0] = age_s[0] = '\0';
	for (i = 0; i < r->nt; i++) {
		t = &r->t[i];
		if (t->log_size > 0 && so < sizeof size_s) {
			k = snprintf(size_s + so, sizeof size_s - so,
			    "%s%s %llu", so > 0 ? ", " : "", t->table,
			    (unsigned long long)t->log_size);
			so += k > 0 ? (size_t)k : 0;
		}
		if (t->log_age > 0 && ao < sizeof age_s) {
			k = snprintf(age_s + ao, sizeof age_s - ao,
			    "%s%s %llu", ao > 0 ? ", " : "", t->table,
			    (unsigned long long)t->log_age);
			ao += k > 0 ? (size_t)k : 0;
		}
		size += t->log_size;
		age += t->log_age;
		t->log_size = t->log_age = 0;
	}
	if (size == 0 && age == 0)
		return;
	r->log_next_ms = now + RET_LOG_MS;
	if (size > 0 && age > 0)
		log_warn("retention: deleted %llu oldest rows to stay under "
		    "max_bytes %llu (%s) and %llu rows past max_age (%s); "
		    "%llu for max_bytes in total", (unsigned long long)size,
		    (unsigned long long)r->max_bytes, size_s,
		    (unsigned long long)age, age_s,
		    (unsigned long long)atomic_load(&r->size_rows));
	else if (size > 0)
		log_warn("retention: deleted %llu oldest rows to stay under "
		    "max_bytes %llu (%s); %llu in total",
		    (unsigned long long)size, (unsigned long long)r->max_bytes,
		    size_s, (unsigned long long)atomic_load(&r->size_rows));
	else
		log_info("retention: deleted %llu rows past max_age (%s)",
		    (unsigned long long)age, age_s);
}

/*
 * Does the age and size work due now (see retention.h). Store thread,
 * outside any transaction.
 */
int
retention_run(struct retention *r, const struct rule_set *set)
{
	long long now = clock_mono_ms();
	int rc = 0, rc2;

	if (!sqlite3_get_autocommit(r->db))
		return GW_EIO;
	if (set != r->set) {
		/* We hold our own reference, so the pointer cannot be
		 * reused while we compare against it. Counts first: the
		 * per-table ones go with the old targets. */
		ret_log(r, now, true);
		rule_set_unref(&r->set);
		if (set != NULL)
			r->set = rule_set_ref((struct rule_set *)set);
		if (ret_build(r, set) != 0) {
			rule_set_unref(&r->set);
			return GW_ENOMEM;
		}
	}
	if (r->nt > 0)
		rc = ret_age(r, now);
	if (r->max_bytes > 0 && (rc2 = ret_size(r)) != 0 && rc == 0)
		rc = rc2;
	ret_log(r, now, false);
	return rc;
}

/* Milliseconds until retention_run() has work; see retention.h. */
int
retention_timeout_ms(struct retention *r)
{
	long long now, best = -1, d;
	size_t i;

	if (r == NULL)
		return -1;
	if (r->behind)
		return 0;
	now = clock_mono_ms();
	for (i = 0; i < r->nt; i++) {
		if (r->t[i].age_del == NULL)
			continue;
		d = r->t[i].age_next_ms - now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	if (r->log_pending) {
		d = r->log_next_ms > now ? r->log_next_ms - now : 0;
		if (best < 0 || d < best)
			best = d;
	}
	if (best > INT_MAX)
		best = INT_MAX;
	return (int)best;
}

/* Counter snapshot; any thread. */
void
retention_get_stats(struct retention *r, struct retention_stats *st)
{
	memset(st, 0, sizeof *st);
	if (r == NULL)
		return;
	st->age_rows = atomic_load_explicit(&r->age_rows,
	    memory_order_relaxed);
	st->size_rows = atomic_load_explicit(&r->size_rows,
	    memory_order_relaxed);
	st->chunks = atomic_load_explicit(&r->chunks, memory_order_relaxed);
	st->vacuum_pages = atomic_load_explicit(&r->vacuum_pages,
	    memory_order_relaxed);
	st->checkpoints = atomic_load_explicit(&r->checkpoints,
	    memory_order_relaxed);
	st->errors = atomic_load_explicit(&r->errors, memory_order_relaxed);
	st->used_bytes = atomic_load_explicit(&r->used_bytes,
	    memory_order_relaxed);
	st->file_bytes = atomic_load_explicit(&r->file_bytes,
	    memory_order_relaxed);
	st->wal_bytes = atomic_load_explicit(&r->wal_bytes,
	    memory_order_relaxed);
	st->high_bytes = (uint64_t)r->high;
	st->low_bytes = (uint64_t)r->low;
}

/* Logs what is pending, finalizes, frees. NULL ok. Store thread. */
void
retention_free(struct retention *r)
{
	if (r == NULL)
		return;
	ret_log(r, clock_mono_ms(), true);
	ret_targets_free(r);
	sqlite3_finalize(r->page_count);
	sqlite3_finalize(r->freelist);
	rule_set_unref(&r->set);
	gw_free(r->wal_path);
	gw_free(r);
}
