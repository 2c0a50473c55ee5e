/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox_dead bound; see deadcap.h.
 *
 * DESIGN
 *
 * Byte accounting follows the outbox's (outbox.c): a committed total,
 * summed once at open, and the delta of the open transaction, which a
 * ROLLBACK discards. A new dead letter adds its own size, read back by id
 * (the row was just copied from the outbox, so the cost is one primary-key
 * lookup). When the total passes outbox.dead_max_bytes the oldest dead
 * letters go, a chunk of ids at a time through the dead_ms index, until
 * it is under: the newest failures are the ones worth reading. A row
 * counts its url, headers, body, response and 5.0 property block in bytes
 * (text cast to BLOB), so the bound is the space they take, whatever their
 * encoding.
 * The pages freed count toward database.max_bytes like any others.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "store/deadcap.h"

#define DEADCAP_CHUNK	64

#define DEADCAP_BYTES \
	"coalesce(length(CAST(url AS BLOB)), 0) + " \
	"coalesce(length(CAST(headers AS BLOB)), 0) + " \
	"coalesce(length(CAST(body AS BLOB)), 0) + " \
	"coalesce(length(CAST(response AS BLOB)), 0) + " \
	"coalesce(length(props), 0)"

enum {
	DC_SUM,
	DC_ONE,
	DC_OLDEST,
	DC_DELETE,
	DC__COUNT
};

static const char *const deadcap_sql[DC__COUNT] = {
	[DC_SUM] = "SELECT total(" DEADCAP_BYTES ") FROM outbox_dead",
	[DC_ONE] = "SELECT " DEADCAP_BYTES " FROM outbox_dead WHERE id = ?1",
	[DC_OLDEST] = "SELECT id, " DEADCAP_BYTES " FROM outbox_dead"
	    " ORDER BY dead_ms, id LIMIT ?1",
	[DC_DELETE] = "DELETE FROM outbox_dead WHERE id = ?1",
};

struct deadcap {
	sqlite3			*db;		/* borrowed writer */
	sqlite3_stmt		*st[DC__COUNT];
	int64_t			 committed;	/* bytes after last COMMIT */
	int64_t			 delta;		/* bytes changed since */
	uint64_t		 txn_pruned;	/* rows deleted, this txn */
	uint64_t		 txn_freed;	/* their bytes */
	_Atomic uint64_t	 bytes;		/* committed, for readers */
	_Atomic uint64_t	 pruned;	/* committed deletions */
	struct log_limit	 loglim;
};

static int	deadcap_fail(struct deadcap *, sqlite3_stmt *, const char *);

/* Resets st after an error; logs it. GW_EIO. */
static int
deadcap_fail(struct deadcap *d, sqlite3_stmt *st, const char *what)
{
	log_error("outbox_dead: %s: %s", what, sqlite3_errmsg(d->db));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return GW_EIO;
}

/* See deadcap.h. */
struct deadcap *
deadcap_open(struct sqlite3 *db)
{
	struct deadcap *d;
	int i;

	if ((d = gw_calloc(1, sizeof *d)) == NULL)
		return NULL;
	d->db = db;
	atomic_init(&d->bytes, 0);
	atomic_init(&d->pruned, 0);
	for (i = 0; i < DC__COUNT; i++) {
		if (sqlite3_prepare_v3(db, deadcap_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &d->st[i], NULL) != SQLITE_OK) {
			log_error("outbox_dead: prepare: %s",
			    sqlite3_errmsg(db));
			goto fail;
		}
	}
	if (sqlite3_step(d->st[DC_SUM]) != SQLITE_ROW) {
		deadcap_fail(d, d->st[DC_SUM], "sum");
		goto fail;
	}
	d->committed = (int64_t)sqlite3_column_double(d->st[DC_SUM], 0);
	sqlite3_reset(d->st[DC_SUM]);
	atomic_store(&d->bytes, (uint64_t)d->committed);
	return d;

fail:
	deadcap_close(d);
	return NULL;
}

/* See deadcap.h. */
void
deadcap_close(struct deadcap *d)
{
	int i;

	if (d == NULL)
		return;
	for (i = 0; i < DC__COUNT; i++)
		sqlite3_finalize(d->st[i]);
	gw_free(d);
}

/* See deadcap.h. */
int
deadcap_added(struct deadcap *d, int64_t id)
{
	sqlite3_stmt *st = d->st[DC_ONE];
	int rc;

	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		d->delta += sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return deadcap_fail(d, st, "size");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return 0;
}

/* See deadcap.h. */
int
deadcap_enforce(struct deadcap *d, uint64_t max_bytes)
{
	sqlite3_stmt *sel = d->st[DC_OLDEST], *del = d->st[DC_DELETE];
	int64_t ids[DEADCAP_CHUNK], sizes[DEADCAP_CHUNK];
	size_t n, i;
	int rc;

	while (max_bytes != 0 && d->committed + d->delta > (int64_t)max_bytes) {
		/* Read a chunk of the oldest, then let go of the read. */
		sqlite3_bind_int(sel, 1, DEADCAP_CHUNK);
		n = 0;
		while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
			ids[n] = sqlite3_column_int64(sel, 0);
			sizes[n++] = sqlite3_column_int64(sel, 1);
		}
		if (rc != SQLITE_DONE)
			return deadcap_fail(d, sel, "oldest");
		sqlite3_reset(sel);
		if (n == 0) {
			d->delta = -d->committed;	/* the table is empty */
			break;
		}
		for (i = 0; i < n && d->committed + d->delta >
		    (int64_t)max_bytes; i++) {
			sqlite3_bind_int64(del, 1, ids[i]);
			if (sqlite3_step(del) != SQLITE_DONE)
				return deadcap_fail(d, del, "delete");
			sqlite3_reset(del);
			d->delta -= sizes[i];
			d->txn_pruned++;
			d->txn_freed += (uint64_t)sizes[i];
		}
	}
	return 0;
}

/* See deadcap.h. */
void
deadcap_committed(struct deadcap *d)
{
	d->committed += d->delta;
	if (d->committed < 0)
		d->committed = 0;
	d->delta = 0;
	atomic_store(&d->bytes, (uint64_t)d->committed);
	if (d->txn_pruned > 0) {
		atomic_fetch_add(&d->pruned, d->txn_pruned);
		log_limited(&d->loglim, 5, 60000, LOG_LVL_WARN, "outbox_dead: "
		    "over outbox.dead_max_bytes: deleted the %llu oldest dead "
		    "letter(s), %llu bytes", (unsigned long long)d->txn_pruned,
		    (unsigned long long)d->txn_freed);
	}
	d->txn_pruned = 0;
	d->txn_freed = 0;
}

/* See deadcap.h. */
void
deadcap_rolled_back(struct deadcap *d)
{
	d->delta = 0;
	d->txn_pruned = 0;
	d->txn_freed = 0;
}

/* See deadcap.h. */
uint64_t
deadcap_bytes(const struct deadcap *d)
{
	return d != NULL ? atomic_load(&d->bytes) : 0;
}

/* See deadcap.h. */
uint64_t
deadcap_pruned(const struct deadcap *d)
{
	return d != NULL ? atomic_load(&d->pruned) : 0;
}
