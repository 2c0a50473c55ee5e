/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sqlite action of the rules engine: for one rule set on one database
 * connection, the tables, columns and indexes its rules need (created or
 * added before the set is used) and prepared INSERTs per rule. Writing a
 * row evaluates the rule's column templates and copies the values into the
 * rule's row buffer; the buffer goes to the table with multi-row INSERTs
 * when it is full, when another rule of the same table writes, and at
 * sink_sqlite_flush(), which the store calls before every COMMIT. A row the
 * database refuses (constraint, type, size) goes to the `rejected` table
 * with the reason, the rule name and the original message instead of
 * failing the batch; the other rows of its statement are stored. Store
 * thread only (or main before the store starts).
 */
#ifndef GW_SINK_SQLITE_H
#define GW_SINK_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct msg;
struct rule_payload;
struct rule_set;
struct sqlite3;
struct sink_sqlite;

/*
 * Creates what set's sqlite actions need on db (missing tables with their
 * columns, ALTER TABLE ADD COLUMN for new columns, indexes) inside a
 * savepoint, so a failure changes nothing, and prepares the inserts. A
 * column that exists with a type other than the one a rule declares is an
 * error. Takes a reference on set. Returns a new sink or NULL with err.
 */
struct sink_sqlite *sink_sqlite_prepare(struct sqlite3 *db,
		    struct rule_set *set, struct gw_error *err);

/* The rule set the sink was prepared for (borrowed). */
const struct rule_set *sink_sqlite_set(const struct sink_sqlite *k);

/*
 * Adds the row of rule rule_id (whose filter passed; a rule without a
 * sqlite action is a no-op) for message m to the rule's buffer, which is
 * inserted when full (rows the database refuses go to `rejected`). May be
 * called several times per message. pc is the message's payload cache
 * (borrowed for the call); m gets a reference while its row is buffered.
 * Returns 1 when a row was buffered, 0 when there was nothing to write, or
 * GW_EIO / GW_ENOMEM when the batch must be rolled back and retried (then
 * call sink_sqlite_discard()).
 */
int		 sink_sqlite_write(struct sink_sqlite *k, size_t rule_id,
		    const struct msg *m, struct rule_payload *pc);

/*
 * Inserts every buffered row, in the order written per table, inside the
 * caller's transaction. Returns the number of rows that went into rule
 * tables since the previous flush or discard (rows sent to `rejected` not
 * counted), or GW_EIO / GW_ENOMEM (rows may be half inserted: roll the
 * transaction back and call sink_sqlite_discard()).
 */
int		 sink_sqlite_flush(struct sink_sqlite *k);

/*
 * sink_sqlite_flush() of each of ks[0..n) but except (NULL: all) that has
 * rows waiting, adding what they inserted to *rows (NULL ok): before a
 * COMMIT, and before another sink takes rows, so rows keep their order
 * across rule sets. 0 or GW_EIO.
 */
int		 sink_sqlite_flush_all(struct sink_sqlite *const *ks,
		    size_t n, const struct sink_sqlite *except,
		    uint64_t *rows);

/*
 * Drops every buffered row without inserting it, after a rollback, so a
 * retried batch starts from nothing. NULL ok.
 */
void		 sink_sqlite_discard(struct sink_sqlite *k);

/* Finalizes the statements and drops the set reference. NULL ok. */
void		 sink_sqlite_free(struct sink_sqlite *k);

#endif
