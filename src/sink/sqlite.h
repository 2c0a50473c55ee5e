/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sqlite action of the rules engine: for one rule set on one database
 * connection, the tables, columns and indexes its rules need (created or
 * added before the set is used) and one prepared INSERT per rule. Writing
 * a row evaluates the rule's column templates and binds every value; a row
 * the database refuses (constraint, type, size) goes to the `rejected`
 * table with the reason, the rule name and the original message instead of
 * failing the batch. Store thread only (or main before the store starts).
 */
#ifndef GW_SINK_SQLITE_H
#define GW_SINK_SQLITE_H

#include <stddef.h>

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
 * Inserts the row of rule rule_id (whose filter passed; a rule without a
 * sqlite action is a no-op) for message m, or a `rejected` row when the
 * database refuses it. pc is the message's payload cache. Returns 1 when
 * the row went into the rule's table, 0 when it went to `rejected` (or
 * there was nothing to write), or GW_EIO / GW_ENOMEM when the batch must
 * be rolled back and retried.
 */
int		 sink_sqlite_write(struct sink_sqlite *k, size_t rule_id,
		    const struct msg *m, struct rule_payload *pc);

/* Finalizes the statements and drops the set reference. NULL ok. */
void		 sink_sqlite_free(struct sink_sqlite *k);

#endif
