/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Retention of the telemetry tables: rows older than a table's max_age and,
 * when database.max_bytes is set, the oldest rows of all telemetry tables
 * once the database outgrows its bound. The store thread calls
 * retention_run() between batches; each call does at most one short DELETE
 * per kind (age, size), in its own autocommit transaction, so the write
 * lock is never held for long and ingest goes on in between.
 *
 * Telemetry tables are `messages`, `rejected` and every table of the
 * current rule set's sqlite actions. The broker's own tables (outbox,
 * outbox_dead, retained, sessions, session_msgs, qos2_inflight,
 * mqlite_meta) are never touched.
 *
 * Time columns hold Unix time in milliseconds (what {received_ms} gives).
 * Rows whose time column is NULL or not a number never expire by age.
 */
#ifndef GW_RETENTION_H
#define GW_RETENTION_H

#include <stdint.h>

#include "err.h"

struct retention;
struct rule_set;
struct sqlite3;

struct retention_opts {
	uint64_t	 max_bytes;	/* database.max_bytes, 0 = unbounded */
	uint64_t	 max_age_ms;	/* database.retention.max_age, for
					 * messages by received_ms; 0 = keep */
	unsigned	 chunk_rows;	/* rows per DELETE at most, 0: 1000
					 * (size pruning may take up to 8x
					 * while ingest outpaces it) */
};

struct retention_stats {
	uint64_t	age_rows;	/* rows deleted for a max_age */
	uint64_t	size_rows;	/* rows deleted for max_bytes */
	uint64_t	chunks;		/* DELETE statements run */
	uint64_t	vacuum_pages;	/* pages given back to the filesystem */
	uint64_t	checkpoints;	/* WAL checkpoints run for max_bytes */
	uint64_t	errors;		/* failed statements (retried later) */
	uint64_t	used_bytes;	/* last measured: pages in use */
	uint64_t	file_bytes;	/* last measured: page_count pages */
	uint64_t	wal_bytes;	/* last measured: WAL file on disk */
	uint64_t	high_bytes;	/* pages in use above this: prune */
	uint64_t	low_bytes;	/* ... down to this */
};

/*
 * Creates the retention state for db (borrowed; the store's writer
 * connection, whose file is path). With max_bytes it sets the WAL's
 * journal_size_limit. Returns a new object or NULL with err filled.
 * Store thread (or main before it starts).
 */
struct retention *retention_new(struct sqlite3 *db, const char *path,
		    const struct retention_opts *opts, struct gw_error *err);

/*
 * Does what is due now: at most one age DELETE and one size DELETE (plus
 * an incremental_vacuum step and a WAL checkpoint when over the bound).
 * set is the current rule set (borrowed, may be NULL: messages and
 * rejected only); when it changed since the last call the table list is
 * rebuilt and a reference on it kept. Must be called outside any
 * transaction. Failures are counted, logged (rate-limited) and retried a
 * second later; returns 0 or the first error (GW_EIO, GW_ENOMEM).
 * Store thread.
 */
int		 retention_run(struct retention *r,
		    const struct rule_set *set);

/*
 * How long the store thread may sleep before retention_run() has work:
 * 0 when behind (call again at once), -1 when nothing is scheduled (no
 * max_age anywhere; size only needs a call after writes), else ms (at
 * least 1 s unless behind, at most 60 s). Store thread.
 */
int		 retention_timeout_ms(struct retention *r);

/* Snapshot of the counters. Any thread. NULL r gives zeros. */
void		 retention_get_stats(struct retention *r,
		    struct retention_stats *st);

/* Finalizes the statements, drops the set reference, frees r. NULL ok. */
void		 retention_free(struct retention *r);

#endif
