/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bound on outbox_dead (outbox.dead_max_bytes): dead letters are kept
 * for inspection and replay, but a message that dead-letters on every try
 * must not grow the table without limit. Store thread only, inside the
 * batch transaction, like the outbox it sits beside.
 */
#ifndef GW_STORE_DEADCAP_H
#define GW_STORE_DEADCAP_H

#include <stdint.h>

struct sqlite3;
struct deadcap;

/*
 * Prepares the statements on the writer db and sums the bytes the dead
 * letters hold now. Returns a new deadcap or NULL (logged).
 */
struct deadcap	*deadcap_open(struct sqlite3 *db);

/* Finalizes and frees. NULL ok. */
void		 deadcap_close(struct deadcap *d);

/*
 * Counts the dead letter id just written in the open transaction: url,
 * headers, body, response and props, in bytes. 0 or GW_EIO.
 */
int		 deadcap_added(struct deadcap *d, int64_t id);

/*
 * In the open transaction: while the dead letters hold more than
 * max_bytes (0: no bound), deletes the oldest (by dead_ms, then id). The
 * deletions are counted and logged once committed. 0 or GW_EIO.
 */
int		 deadcap_enforce(struct deadcap *d, uint64_t max_bytes);

/* After the batch's COMMIT / ROLLBACK. */
void		 deadcap_committed(struct deadcap *d);
void		 deadcap_rolled_back(struct deadcap *d);

/* Bytes held, as committed; dead letters deleted for the bound. Any thread. */
uint64_t	 deadcap_bytes(const struct deadcap *d);
uint64_t	 deadcap_pruned(const struct deadcap *d);

#endif
