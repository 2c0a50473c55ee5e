/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running the actions of one matched rule for one publish on the store
 * thread: the table row (sink/sqlite.c), the webhook and the bridge
 * (forward.c), each once, or once per element of the action's "foreach"
 * array (rules.h, rule_items_begin). Everything happens inside the
 * transaction of the publish.
 */
#ifndef GW_STORE_ACTIONS_H
#define GW_STORE_ACTIONS_H

#include <stdint.h>

struct msg;
struct rule;
struct rule_payload;
struct sink_sqlite;
struct store;

/*
 * Runs rule r's actions (r is rule id of the publish's set and its filter
 * passed) for m, with pc m's payload cache. k is the set's sqlite sink, or
 * NULL when it could not be prepared, sink_err then saying why (the
 * publish goes to `rejected` for the sqlite action). A foreach array that
 * is not an array or holds more than max_items elements sends the publish
 * to `rejected` once for that action; a missing one does nothing. Rows
 * are counted when the sink inserts them. Returns 0, or GW_EIO / GW_ENOMEM when the batch
 * must be rolled back. Store thread; borrows everything.
 */
int	actions_run(struct store *s, struct sink_sqlite *k,
	    const struct rule *r, uint32_t id, const struct msg *m,
	    struct rule_payload *pc, const char *sink_err);

#endif
