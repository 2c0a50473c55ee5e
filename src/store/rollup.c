/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rollups on the store thread; see rollup.h for the contract.
 *
 * DESIGN
 *
 * SQL. Every name in it was checked by the rules loader
 * ([A-Za-z_][A-Za-z0-9_]*, columns of the rule) and is double-quoted here
 * as well; the window bounds are bound parameters. Per rollup two
 * statements are prepared once per rule set:
 *
 *   next: SELECT min(tc) FROM raw WHERE tc >= ?1 AND tc < ?2
 *         the first raw row at or after the cursor among closed windows,
 *         a seek on the time column's index (the loader adds one);
 *   ins:  INSERT INTO rollup (window_start, g..., c...)
 *         SELECT ?1, g..., agg... FROM raw WHERE tc >= ?1 AND tc < ?2
 *         GROUP BY g...       (no group_by: HAVING count(*) > 0)
 *         so an empty window writes nothing. first/last read the raw rows
 *         through a subquery numbering them per group by (time, rowid)
 *         both ways; first(c) is c of the row numbered 1 ascending.
 *
 * Progress. mqlite_rollup_state holds, per rollup table, last_end_ms: the
 * end of the last window written. A turn opens BEGIN IMMEDIATE, and for a
 * few windows at most (ROLLUP_TURN_WINDOWS, over all rollups in turn, and
 * no new one once the turn has taken ROLLUP_TURN_MS) runs next, ins and
 * the state upsert, then COMMITs: rows and progress land
 * together or not at all, so after kill -9 the next start resumes right
 * after the last window committed. The cursor starts at last_end_ms
 * (rounded up to the window grid when "every" changed), or at the oldest
 * raw row for a new rollup (the table's history is rolled up too).
 * Between windows with rows the cursor jumps with "next", so a long gap
 * costs one seek, and an idle table writes nothing: the cursor then moves
 * in memory only (after a restart it seeks again from the stored value).
 *
 * Time. Windows are aligned to multiples of every since the Unix epoch,
 * on the time column's values (Unix ms). A window is closed when the wall
 * clock is past its end plus grace. While closed windows with rows remain
 * the store thread comes back at once (between batches, so ingest keeps
 * its turn); else it sleeps until the next window is due (60 s at most).
 *
 * Errors. A busy, full or failing database rolls the turn back and is
 * retried a second later. An SQL error in one window's aggregate (say,
 * integer overflow in sum) would fail every retry: that window is given
 * up, logged and counted, so the others go on.
 */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "rules/rules.h"
#include "sink/sql.h"
#include "store/rollup.h"

#define ROLLUP_TURN_WINDOWS	8	/* windows per transaction */
#define ROLLUP_TURN_MS		20	/* no further window after this */
#define ROLLUP_RETRY_MS		1000
#define ROLLUP_IDLE_MAX_MS	60000
#define ROLLUP_NONE		LLONG_MIN	/* no state, no cursor */
#define ROLLUP_MIN_TIME		(-(1LL << 62))	/* rows before: no window */

struct roll_target {
	const struct rule_rollup  *ro;		/* borrowed from set */
	const char		  *raw;		/* raw table name */
	sqlite3_stmt		  *next;	/* ?1 from, ?2 to */
	sqlite3_stmt		  *ins;		/* ?1 start, ?2 end */
	long long		   cursor;	/* windows before it are done */
	long long		   pending;	/* cursor once committed */
	long long		   due_ms;	/* wall: next window closes */
	bool			   behind;	/* closed windows with rows */
};

struct rollup {
	sqlite3			*db;		/* borrowed writer connection */
	struct rule_set		*set;		/* referenced, or NULL */
	struct roll_target	*t;
	size_t			 nt;
	size_t			 rr;		/* next target to look at */
	sqlite3_stmt		*begin;
	sqlite3_stmt		*commit;
	sqlite3_stmt		*rollback;
	sqlite3_stmt		*put;		/* ?1 rollup ?2 raw ?3 end */
	long long		 retry_ms;	/* mono; no turn before */
	struct log_limit	 errlim;
	struct rollup_counters	*c;		/* borrowed from the store */
};

/* Adds column name (type decl) to table unless it is there. */
static int
rollup_add_col(sqlite3 *db, const char *table, const char *name,
    const char *decl, struct gw_error *err, const char *what)
{
	struct buf	 b = BUF_INIT;
	int		 bad = 0, rc;

	if ((rc = sql_column_type(db, table, name, NULL, 0)) != 0)
		return rc == 1 ? 0 : GW_EIO;
	sql_add(&b, "ALTER TABLE ", &bad);
	sql_ident(&b, table, &bad);
	sql_add(&b, " ADD COLUMN ", &bad);
	sql_coldef(&b, name, decl, &bad);
	rc = sql_exec_buf(db, &b, &bad, err, what);
	buf_free(&b);
	if (rc == 0)
		log_info("rollup %s: added column %s", table, name);
	return rc;
}

/* Creates one rollup table with its columns and window index. */
static int
rollup_table(sqlite3 *db, const struct rule_rollup *ro,
    struct gw_error *err)
{
	struct buf	 b = BUF_INIT;
	char		 what[128];
	size_t		 i;
	int		 bad = 0, rc;

	snprintf(what, sizeof what, "rollup %s", ro->table);
	sql_add(&b, "CREATE TABLE IF NOT EXISTS ", &bad);
	sql_ident(&b, ro->table, &bad);
	sql_add(&b, " (", &bad);
	sql_coldef(&b, RULES_ROLLUP_WINDOW, "INTEGER NOT NULL", &bad);
	for (i = 0; i < ro->ngroup; i++) {
		sql_add(&b, ", ", &bad);
		sql_coldef(&b, ro->group_by[i]->name, ro->group_by[i]->decl,
		    &bad);
	}
	for (i = 0; i < ro->ncols; i++) {
		sql_add(&b, ", ", &bad);
		sql_coldef(&b, ro->cols[i].name, ro->cols[i].decl, &bad);
	}
	sql_add(&b, ")", &bad);
	if ((rc = sql_exec_buf(db, &b, &bad, err, what)) != 0)
		goto out;
	for (i = 0; i < ro->ngroup && rc == 0; i++)
		rc = rollup_add_col(db, ro->table, ro->group_by[i]->name,
		    ro->group_by[i]->decl, err, what);
	for (i = 0; i < ro->ncols && rc == 0; i++)
		rc = rollup_add_col(db, ro->table, ro->cols[i].name,
		    ro->cols[i].decl, err, what);
	if (rc != 0)
		goto out;
	buf_reset(&b);
	sql_add(&b, "CREATE INDEX IF NOT EXISTS ", &bad);
	sql_add(&b, "\"", &bad);
	sql_add(&b, ro->table, &bad);
	sql_add(&b, "_" RULES_ROLLUP_WINDOW "_idx\" ON ", &bad);
	sql_ident(&b, ro->table, &bad);
	sql_add(&b, " (" RULES_ROLLUP_WINDOW ")", &bad);
	rc = sql_exec_buf(db, &b, &bad, err, what);
out:
	buf_free(&b);
	return rc;
}

/*
 * Creates the rollup tables of set; see rollup.h. The state table comes
 * with the schema (schema/004_rollup_state.sql).
 */
int
rollup_prepare(struct sqlite3 *db, const struct rule_set *set,
    struct gw_error *err)
{
	const struct rule_sqlite	*sq;
	size_t				 i, k, n;
	int				 rc;

	n = set != NULL ? rule_set_count(set) : 0;
	for (i = 0; i < n; i++) {
		sq = rule_sqlite(rule_set_rule(set, i));
		if (sq == NULL || sq->nrollups == 0)
			continue;
		for (k = 0; k < sq->nrollups; k++) {
			if ((rc = rollup_table(db, &sq->rollups[k], err)) != 0)
				return rc;
		}
	}
	return 0;
}

/* The source of a window's rows: the raw table, or numbered rows. */
static void
sql_source(struct buf *b, const char *raw, const struct rule_rollup *ro,
    bool numbered, int *bad)
{
	size_t	i;
	int	dir;

	if (!numbered) {
		sql_ident(b, raw, bad);
	} else {
		sql_add(b, "(SELECT *", bad);
		for (dir = 0; dir < 2; dir++) {
			sql_add(b, ", row_number() OVER (", bad);
			for (i = 0; i < ro->ngroup; i++) {
				sql_add(b, i == 0 ? "PARTITION BY " : ", ",
				    bad);
				sql_ident(b, ro->group_by[i]->name, bad);
			}
			sql_add(b, " ORDER BY ", bad);
			sql_ident(b, ro->time_column, bad);
			sql_add(b, dir == 0 ? ", rowid) AS mqlite__first" :
			    " DESC, rowid DESC) AS mqlite__last", bad);
		}
		sql_add(b, " FROM ", bad);
		sql_ident(b, raw, bad);
	}
	sql_add(b, " WHERE ", bad);
	sql_ident(b, ro->time_column, bad);
	sql_add(b, " >= ?1 AND ", bad);
	sql_ident(b, ro->time_column, bad);
	sql_add(b, " < ?2", bad);
	if (numbered)
		sql_add(b, ")", bad);
}

/* Appends the aggregate expression of c. */
static void
sql_agg(struct buf *b, const struct rule_rollup_col *c, int *bad)
{
	static const char *const fn[] = {
		[RULE_AGG_AVG] = "avg(", [RULE_AGG_MIN] = "min(",
		[RULE_AGG_MAX] = "max(", [RULE_AGG_SUM] = "sum(",
		[RULE_AGG_COUNT] = "count(",
	};

	if (c->agg == RULE_AGG_FIRST || c->agg == RULE_AGG_LAST) {
		sql_add(b, c->agg == RULE_AGG_FIRST ?
		    "max(CASE WHEN mqlite__first = 1 THEN " :
		    "max(CASE WHEN mqlite__last = 1 THEN ", bad);
		sql_ident(b, c->src, bad);
		sql_add(b, " END)", bad);
		return;
	}
	sql_add(b, fn[c->agg], bad);
	if (c->src == NULL)
		sql_add(b, "*", bad);
	else
		sql_ident(b, c->src, bad);
	sql_add(b, ")", bad);
}

static int
rollup_stmt(sqlite3 *db, struct buf *b, int *bad, sqlite3_stmt **st)
{
	const char	*sql;

	if ((sql = sql_text(b, bad)) == NULL)
		return GW_ENOMEM;
	return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    st, NULL) == SQLITE_OK ? 0 : GW_EIO;
}

/* Prepares t's statements. 0, GW_EIO (logged), GW_ENOMEM. */
static int
rollup_target_prepare(struct rollup *ru, struct roll_target *t)
{
	const struct rule_rollup	*ro = t->ro;
	struct buf			 b = BUF_INIT;
	bool				 numbered = false;
	size_t				 i;
	int				 bad = 0, rc;

	sql_add(&b, "SELECT min(", &bad);
	sql_ident(&b, ro->time_column, &bad);
	sql_add(&b, ") FROM ", &bad);
	sql_source(&b, t->raw, ro, false, &bad);
	if ((rc = rollup_stmt(ru->db, &b, &bad, &t->next)) != 0)
		goto out;

	for (i = 0; i < ro->ncols; i++)
		if (ro->cols[i].agg == RULE_AGG_FIRST ||
		    ro->cols[i].agg == RULE_AGG_LAST)
			numbered = true;
	buf_reset(&b);
	sql_add(&b, "INSERT INTO ", &bad);
	sql_ident(&b, ro->table, &bad);
	sql_add(&b, " (" RULES_ROLLUP_WINDOW, &bad);
	for (i = 0; i < ro->ngroup; i++) {
		sql_add(&b, ", ", &bad);
		sql_ident(&b, ro->group_by[i]->name, &bad);
	}
	for (i = 0; i < ro->ncols; i++) {
		sql_add(&b, ", ", &bad);
		sql_ident(&b, ro->cols[i].name, &bad);
	}
	sql_add(&b, ") SELECT ?1", &bad);
	for (i = 0; i < ro->ngroup; i++) {
		sql_add(&b, ", ", &bad);
		sql_ident(&b, ro->group_by[i]->name, &bad);
	}
	for (i = 0; i < ro->ncols; i++) {
		sql_add(&b, ", ", &bad);
		sql_agg(&b, &ro->cols[i], &bad);
	}
	sql_add(&b, " FROM ", &bad);
	sql_source(&b, t->raw, ro, numbered, &bad);
	for (i = 0; i < ro->ngroup; i++) {
		sql_add(&b, i == 0 ? " GROUP BY " : ", ", &bad);
		sql_ident(&b, ro->group_by[i]->name, &bad);
	}
	if (ro->ngroup == 0)
		sql_add(&b, " HAVING count(*) > 0", &bad);
	rc = rollup_stmt(ru->db, &b, &bad, &t->ins);
out:
	if (rc == GW_EIO)
		log_error("rollup %s: cannot prepare: %s", ro->table,
		    sqlite3_errmsg(ru->db));
	buf_free(&b);
	return rc;
}

/* Reads t's stored progress into its cursor. 0 or GW_EIO. */
static int
rollup_target_load(struct rollup *ru, struct roll_target *t)
{
	sqlite3_stmt	*st;
	long long	 every = (long long)t->ro->every_ms, end;
	int		 rc;

	t->cursor = ROLLUP_NONE;
	if (sqlite3_prepare_v2(ru->db, "SELECT last_end_ms FROM"
	    " mqlite_rollup_state WHERE rollup = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return GW_EIO;
	sqlite3_bind_text(st, 1, t->ro->table, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		end = sqlite3_column_int64(st, 0);
		/* Onto the grid ("every" may have changed). */
		if (end % every != 0)
			end += every - ((end % every) + every) % every;
		t->cursor = end;
		if (clock_wall_ms() - end > 2 * every +
		    (long long)t->ro->grace_ms)
			log_info("rollup %s: catching up from window %lld, "
			    "%lld windows at most", t->ro->table, end,
			    (clock_wall_ms() - end) / every);
	}
	sqlite3_finalize(st);
	t->pending = t->cursor;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : GW_EIO;
}

static void
rollup_targets_free(struct rollup *ru)
{
	size_t	i;

	for (i = 0; i < ru->nt; i++) {
		sqlite3_finalize(ru->t[i].next);
		sqlite3_finalize(ru->t[i].ins);
	}
	gw_free(ru->t);
	ru->t = NULL;
	ru->nt = 0;
	ru->rr = 0;
}

/*
 * Builds the targets of set. A rollup whose statements fail to prepare is
 * left out (logged). 0, GW_EIO (state unreadable: retried), GW_ENOMEM.
 */
static int
rollup_build(struct rollup *ru, const struct rule_set *set)
{
	const struct rule_sqlite	*sq;
	struct roll_target		*t;
	size_t				 i, k, n, cnt = 0;
	int				 rc;

	rollup_targets_free(ru);
	n = set != NULL ? rule_set_count(set) : 0;
	for (i = 0; i < n; i++)
		if ((sq = rule_sqlite(rule_set_rule(set, i))) != NULL)
			cnt += sq->nrollups;
	if (cnt == 0)
		return 0;
	if (ru->put == NULL && sqlite3_prepare_v3(ru->db,
	    "INSERT INTO mqlite_rollup_state (rollup, source, last_end_ms)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (rollup) DO UPDATE SET"
	    " source = ?2, last_end_ms = ?3", -1, SQLITE_PREPARE_PERSISTENT,
	    &ru->put, NULL) != SQLITE_OK)
		return GW_EIO;
	if ((ru->t = gw_calloc(cnt, sizeof *ru->t)) == NULL)
		return GW_ENOMEM;
	for (i = 0; i < n; i++) {
		if ((sq = rule_sqlite(rule_set_rule(set, i))) == NULL)
			continue;
		for (k = 0; k < sq->nrollups; k++) {
			t = &ru->t[ru->nt];
			t->ro = &sq->rollups[k];
			t->raw = sq->table;
			if ((rc = rollup_target_prepare(ru, t)) == 0) {
				ru->nt++;	/* freed with the others */
				if (rollup_target_load(ru, t) == 0)
					continue;
				rollup_targets_free(ru);
				return GW_EIO;	/* state unreadable: retried */
			}
			sqlite3_finalize(t->next);
			sqlite3_finalize(t->ins);
			t->next = t->ins = NULL;
			if (rc == GW_ENOMEM) {
				rollup_targets_free(ru);
				return rc;
			}
			/* Not preparable (logged): left out. */
		}
	}
	return 0;
}

/* A new rollup state on db; see rollup.h. */
struct rollup *
rollup_new(struct sqlite3 *db, struct rollup_counters *c)
{
	struct rollup	*ru;

	if ((ru = gw_calloc(1, sizeof *ru)) == NULL)
		return NULL;
	ru->db = db;
	ru->c = c;
	if (sqlite3_prepare_v3(db, "BEGIN IMMEDIATE", -1,
	    SQLITE_PREPARE_PERSISTENT, &ru->begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT,
	    &ru->commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(db, "ROLLBACK", -1, SQLITE_PREPARE_PERSISTENT,
	    &ru->rollback, NULL) != SQLITE_OK) {
		rollup_free(ru);
		return NULL;
	}
	return ru;
}

/* Floor of v / m times m, for negative v too (m > 0). */
static long long
rollup_floor(long long v, long long m)
{
	long long	r = v % m;

	return r < 0 ? v - r - m : v - r;
}

/* Runs a statement without results; the SQLite code. */
static int
rollup_step(sqlite3_stmt *st)
{
	int	rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Is rc a database trouble worth a retry (not this window's SQL)? */
static bool
rollup_transient(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_NOMEM:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_READONLY:
		return true;
	}
	return false;
}

/*
 * The next window of t to compute: 1 with its start in *ws, 0 when none
 * is closed yet (t->due_ms set), or an SQLite error code (negated).
 */
static int
rollup_next(struct roll_target *t, long long now, long long *ws)
{
	long long	 every = (long long)t->ro->every_ms, closed, v;
	int		 rc;

	closed = rollup_floor(now - (long long)t->ro->grace_ms, every);
	t->due_ms = closed + every + (long long)t->ro->grace_ms;
	t->behind = false;
	if (t->pending != ROLLUP_NONE && t->pending >= closed)
		return 0;
	sqlite3_bind_int64(t->next, 1, t->pending == ROLLUP_NONE ?
	    ROLLUP_MIN_TIME : t->pending);
	sqlite3_bind_int64(t->next, 2, closed);
	rc = sqlite3_step(t->next);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(t->next);
		return -(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
	}
	if (sqlite3_column_type(t->next, 0) == SQLITE_NULL) {
		/* Nothing more to roll up: the cursor moves in memory. */
		sqlite3_reset(t->next);
		t->pending = closed;
		return 0;
	}
	if (sqlite3_column_type(t->next, 0) == SQLITE_FLOAT)
		v = (long long)floor(sqlite3_column_double(t->next, 0));
	else
		v = sqlite3_column_int64(t->next, 0);
	sqlite3_reset(t->next);
	*ws = rollup_floor(v, every);
	if (t->pending != ROLLUP_NONE && *ws < t->pending)
		*ws = t->pending;
	t->behind = true;
	return 1;
}

/* Writes window ws of t and its progress. SQLite code. */
static int
rollup_window(struct rollup *ru, struct roll_target *t, long long ws)
{
	long long	 we = ws + (long long)t->ro->every_ms;
	int		 rc, n;

	sqlite3_bind_int64(t->ins, 1, ws);
	sqlite3_bind_int64(t->ins, 2, we);
	if ((rc = rollup_step(t->ins)) != SQLITE_OK)
		return rc;
	n = sqlite3_changes(ru->db);
	sqlite3_bind_text(ru->put, 1, t->ro->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(ru->put, 2, t->raw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ru->put, 3, we);
	if ((rc = rollup_step(ru->put)) != SQLITE_OK)
		return rc;
	t->pending = we;
	if (n > 0) {
		atomic_fetch_add(&ru->c->windows, 1);
		atomic_fetch_add(&ru->c->rows, (uint64_t)n);
	}
	log_debug("rollup %s: window %lld: %d rows", t->ro->table, ws, n);
	return SQLITE_OK;
}

/* Gives window ws of t up: progress only, in its own transaction. */
static void
rollup_skip(struct rollup *ru, struct roll_target *t, long long ws,
    const char *why)
{
	long long	 we = ws + (long long)t->ro->every_ms;

	log_limited(&ru->errlim, 3, 60000, LOG_LVL_ERROR, "rollup %s: window "
	    "%lld..%lld given up: %s", t->ro->table, ws, we, why);
	atomic_fetch_add(&ru->c->skipped, 1);
	if (rollup_step(ru->begin) != SQLITE_OK)
		return;
	sqlite3_bind_text(ru->put, 1, t->ro->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(ru->put, 2, t->raw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ru->put, 3, we);
	if (rollup_step(ru->put) != SQLITE_OK ||
	    rollup_step(ru->commit) != SQLITE_OK) {
		(void)rollup_step(ru->rollback);
		return;
	}
	t->cursor = t->pending = we;
}

/* One transaction of a few windows; see the DESIGN note. */
static int
rollup_turn(struct rollup *ru)
{
	struct roll_target	*t = NULL;
	long long		 now = clock_wall_ms(), ws = 0;
	long long		 t0 = clock_mono_ms();
	size_t			 i, done = 0, idle = 0;
	bool			 open = false;
	int			 rc = SQLITE_OK, got = 0;
	char			 why[160];

	for (i = 0; i < ru->nt; i++)
		ru->t[i].pending = ru->t[i].cursor;
	while (done < ROLLUP_TURN_WINDOWS && idle < ru->nt) {
		t = &ru->t[ru->rr];
		if ((got = rollup_next(t, now, &ws)) < 0) {
			rc = -got;
			break;
		}
		if (got == 0) {
			ru->rr = (ru->rr + 1) % ru->nt;
			idle++;
			continue;
		}
		idle = 0;
		if (!open) {
			if ((rc = rollup_step(ru->begin)) != SQLITE_OK)
				break;
			open = true;
		}
		if ((rc = rollup_window(ru, t, ws)) != SQLITE_OK)
			break;
		if (++done < ROLLUP_TURN_WINDOWS &&
		    clock_mono_ms() - t0 >= ROLLUP_TURN_MS)
			done = ROLLUP_TURN_WINDOWS;	/* big windows */
	}
	if (rc == SQLITE_OK && (!open || (rc = rollup_step(ru->commit)) ==
	    SQLITE_OK)) {
		/* Idle cursors move in memory only (nothing written). */
		for (i = 0; i < ru->nt; i++)
			ru->t[i].cursor = ru->t[i].pending;
		return 0;
	}
	snprintf(why, sizeof why, "%s", sqlite3_errmsg(ru->db));
	if (open || !sqlite3_get_autocommit(ru->db))
		(void)rollup_step(ru->rollback);
	for (i = 0; i < ru->nt; i++)
		ru->t[i].pending = ru->t[i].cursor;
	if (t != NULL && !rollup_transient(rc) && got == 1) {
		rollup_skip(ru, t, ws, why);
		return GW_EIO;
	}
	atomic_fetch_add(&ru->c->errors, 1);
	ru->retry_ms = clock_mono_ms() + ROLLUP_RETRY_MS;
	log_limited(&ru->errlim, 3, 60000, LOG_LVL_ERROR, "rollup: %s "
	    "(retried in %d ms)", why, ROLLUP_RETRY_MS);
	return GW_EIO;
}

/* Does the rollup work due now; see rollup.h. */
int
rollup_run(struct rollup *ru, const struct rule_set *set)
{
	int	rc;

	if (ru == NULL)
		return 0;
	if (!sqlite3_get_autocommit(ru->db))
		return GW_EIO;
	if (clock_mono_ms() < ru->retry_ms)
		return 0;
	if (set != ru->set) {
		rule_set_unref(&ru->set);
		if ((rc = rollup_build(ru, set)) != 0) {
			ru->retry_ms = clock_mono_ms() + ROLLUP_RETRY_MS;
			log_limited(&ru->errlim, 3, 60000, LOG_LVL_ERROR,
			    "rollup: cannot start: %s (retried in %d ms)",
			    rc == GW_ENOMEM ? "out of memory" :
			    sqlite3_errmsg(ru->db), ROLLUP_RETRY_MS);
			return rc;
		}
		if (set != NULL)
			ru->set = rule_set_ref((struct rule_set *)set);
	}
	if (ru->nt == 0)
		return 0;
	return rollup_turn(ru);
}

/* See rollup.h. */
int
rollup_timeout_ms(struct rollup *ru)
{
	long long	 now, best = ROLLUP_IDLE_MAX_MS, d;
	size_t		 i;

	if (ru == NULL)
		return -1;
	now = clock_mono_ms();
	if (now < ru->retry_ms)
		return (int)(ru->retry_ms - now);
	if (ru->nt == 0)
		return -1;
	now = clock_wall_ms();
	for (i = 0; i < ru->nt; i++) {
		if (ru->t[i].behind)
			return 0;
		d = ru->t[i].due_ms - now;
		if (d < 0)
			d = 0;
		if (d < best)
			best = d;
	}
	return (int)best;
}

/* Finalizes, drops the set, frees. NULL ok. Store thread. */
void
rollup_free(struct rollup *ru)
{
	if (ru == NULL)
		return;
	rollup_targets_free(ru);
	sqlite3_finalize(ru->begin);
	sqlite3_finalize(ru->commit);
	sqlite3_finalize(ru->rollback);
	sqlite3_finalize(ru->put);
	rule_set_unref(&ru->set);
	gw_free(ru);
}
