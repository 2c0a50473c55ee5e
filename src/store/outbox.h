/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox holds webhook and bridge deliveries that must survive restarts
 * and link outages. Only the store thread writes it; the delivery thread
 * claims due rows through its own read-only connection and reports results
 * back by id. A row leaves the outbox when it is delivered, dead-lettered
 * (moved to outbox_dead) or dropped by the outbox.max_bytes policy.
 *
 * Two handles, one per side, never shared between threads:
 *
 * struct outbox (writer side, store thread): wraps the store's writer
 * connection (store_db()) with prepared statements. Every call is made
 * INSIDE the batch transaction the store thread already opened; nothing here
 * begins or commits. The outbox keeps the total of outbox.bytes in memory
 * (a SUM at open, then deltas) so the cap check costs O(1). Deltas made in
 * the current transaction are pending until the store thread calls
 * outbox_txn_committed() (after COMMIT) or outbox_txn_rolled_back() (after
 * ROLLBACK; the store then retries the same batch, re-applying the same
 * enqueues and results, which is safe).
 *
 * struct outbox_reader (delivery thread, or any thread with its own): a
 * read-only connection to the same file (WAL: never blocks the writer);
 * each query is its own short read transaction, so it never pins a
 * snapshot and never holds back checkpoints.
 *
 * Results travel from the delivery thread to the store thread as
 * struct outbox_result elements of a queue (queue.h) that the store thread
 * drains at the start of each batch and applies with outbox_apply_results().
 */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sqlite3;
struct outbox;
struct outbox_reader;

/* Bytes of the response body kept in outbox_dead.response. */
#define OUTBOX_SNIPPET_MAX	512

/* One outbox row as read by the delivery thread. */
struct outbox_row {
	int64_t		 id;		/* outbox.id, AUTOINCREMENT */
	char		*url;		/* owned, NUL-terminated */
	char		*headers;	/* owned JSON object text, or NULL */
	char		*body;		/* owned, body_len bytes + a NUL */
	size_t		 body_len;
	size_t		 bytes;		/* outbox.bytes */
	int64_t		 created_ms;	/* wall clock, ms */
	uint32_t	 attempts;	/* failed attempts so far */
	int64_t		 next_ms;	/* not before (wall clock, ms) */
	uint8_t		*props;		/* owned 5.0 property block
					 * (length first), or NULL */
	size_t		 props_len;
	int64_t		 expire_ms;	/* wall ms its Message Expiry
					 * ends, 0: never */
};

/* What happened to one row; see outbox_apply_results(). */
enum outbox_verdict {
	OUTBOX_OK = 1,		/* delivered: delete */
	OUTBOX_RETRY,		/* transient: reschedule at next_ms */
	OUTBOX_FAIL,		/* permanent: move to outbox_dead */
};

/*
 * One result, one row (a batch yields one result per row). Travels by value
 * through the results queue; error and response are gw_malloc'd strings
 * owned by whoever holds the element (outbox_results_free() releases them).
 */
struct outbox_result {
	int64_t		 id;		/* outbox.id */
	uint8_t		 verdict;	/* enum outbox_verdict */
	bool		 sent;		/* FAIL: a request was made (counts
					 * as an attempt) */
	int		 status;	/* HTTP status, 0 if none */
	int64_t		 next_ms;	/* RETRY: not before (wall ms) */
	char		*error;		/* RETRY/FAIL reason, or NULL */
	char		*response;	/* FAIL: body snippet, or NULL */
};

/* Called once per route after a commit that dropped rows of it. */
typedef void (*outbox_drop_cb)(const char *route, uint64_t n, void *ctx);

/* ------------------------------------------------------------------ */
/* Writer side: store thread only, inside the store's transaction.     */

/*
 * Prepares the statements on db (borrowed: the store's writer connection,
 * which must outlive the outbox) and sums outbox.bytes. Call on the store
 * thread, or before it starts, outside a transaction. Returns a new outbox
 * or NULL (ENOMEM or a database error, logged).
 */
struct outbox	*outbox_open(struct sqlite3 *db);

/* Finalizes the statements and frees ob (not db). Accepts NULL. */
void		 outbox_close(struct outbox *ob);

/* Sets the function told about committed drops (NULL: none). */
void		 outbox_set_drop_cb(struct outbox *ob, outbox_drop_cb cb,
		    void *ctx);

/*
 * Inserts a row (attempts 0, next_ms 0: due now). Borrows every argument;
 * headers_json may be NULL. *id (may be NULL) receives the new id. Returns
 * 0 or GW_EIO (the caller fails its batch). Does not enforce the cap: see
 * outbox_has_room() (reject) and outbox_enforce_cap() (drop_oldest).
 */
int		 outbox_enqueue(struct outbox *ob, const char *route,
		    const char *url, const char *headers_json,
		    const void *body, size_t body_len, int64_t created_ms,
		    int64_t *id);

/*
 * As outbox_enqueue(), keeping an MQTT 5.0 property block (props_len bytes,
 * length varint first; NULL/0: none) and the wall-clock ms its Message
 * Expiry Interval ends (0: never) with the row, for an mqtt action that
 * speaks 5.0 upstream. The block counts in the row's bytes.
 */
int		 outbox_enqueue_props(struct outbox *ob, const char *route,
		    const char *url, const char *headers_json,
		    const void *body, size_t body_len, const void *props,
		    size_t props_len, int64_t expire_ms, int64_t created_ms,
		    int64_t *id);

/* url + headers + body bytes a row would count for, as enqueue does. */
size_t		 outbox_row_bytes(const char *url, const char *headers_json,
		    size_t body_len);

/* Total bytes in the outbox including the open transaction's changes. */
uint64_t	 outbox_bytes(const struct outbox *ob);

/*
 * The "reject" policy's question: would `bytes` more fit under max_bytes
 * (0: unlimited)? O(1).
 */
bool		 outbox_has_room(const struct outbox *ob, size_t bytes,
		    uint64_t max_bytes);

/* Delivered: deletes row id (a missing id is fine). 0 or GW_EIO. */
int		 outbox_delete(struct outbox *ob, int64_t id);

/*
 * Retry later: attempts + 1, next_ms, last_error (may be NULL). A missing
 * id is fine. 0 or GW_EIO.
 */
int		 outbox_reschedule(struct outbox *ob, int64_t id,
		    int64_t next_ms, const char *error);

/*
 * Moves row id to outbox_dead with status (0: NULL), error, response
 * snippet (each may be NULL) and dead_ms = now_ms, all in the open
 * transaction; sent adds the final attempt to attempts. The row's 5.0
 * property block and expire_ms go along unchanged. A missing id is fine.
 * 0 or GW_EIO.
 */
int		 outbox_dead_letter(struct outbox *ob, int64_t id, int status,
		    const char *error, const char *response, bool sent,
		    int64_t now_ms);

/*
 * The drop_oldest policy: while the outbox holds more than max_bytes,
 * deletes the oldest rows (lowest id) whose id is not in skip (the ids the
 * delivery thread holds, see deliver_held_ids(); sorted ascending, nskip
 * may be 0). *dropped (may be NULL) receives the number deleted now. The
 * drops are counted and logged when the transaction commits. O(1) when
 * under the cap. 0 or GW_EIO. May stay over the cap if only held rows are
 * left.
 */
int		 outbox_enforce_cap(struct outbox *ob, uint64_t max_bytes,
		    const int64_t *skip, size_t nskip, uint64_t *dropped);

/*
 * Applies n results popped from the delivery results queue: OK deletes,
 * RETRY reschedules, FAIL dead-letters at now_ms. Borrows results (free
 * them with outbox_results_free() once the batch has COMMITTED: a retried
 * batch applies them again). Returns 0 or GW_EIO at the first failure.
 */
int		 outbox_apply_results(struct outbox *ob,
		    const struct outbox_result *results, size_t n,
		    int64_t now_ms);

/* Frees the strings inside n results (not the array). */
void		 outbox_results_free(struct outbox_result *results, size_t n);

/* After COMMIT: makes this transaction's byte deltas and drops final. */
void		 outbox_txn_committed(struct outbox *ob);

/* After ROLLBACK: forgets this transaction's byte deltas and drops. */
void		 outbox_txn_rolled_back(struct outbox *ob);

/* Rows dropped by the cap since open (committed only). Any thread. */
uint64_t	 outbox_dropped_total(const struct outbox *ob);

/* ------------------------------------------------------------------ */
/* Reader side: the thread that opened it only.                        */

/*
 * Opens a read-only connection to the database at path (which the store
 * has already created and migrated). Returns a new reader or NULL (logged).
 */
struct outbox_reader *outbox_reader_open(const char *path);

/* Closes and frees. Accepts NULL. */
void		 outbox_reader_close(struct outbox_reader *r);

/*
 * The database's instance_id (mqlite_meta), borrowed, valid until close;
 * "" if it has none.
 */
const char	*outbox_reader_instance_id(struct outbox_reader *r);

/*
 * Reads up to limit rows of route with id > after_id, in id order, that
 * are due (next_ms <= now_ms) into rows (caller's array; each row is filled
 * with owned strings, release with outbox_row_clear()). It stops at the
 * first row that is not due: if blocked is not NULL that row is copied
 * there (blocked->id == 0 when none), so an ordered route can wait for it
 * and an unordered one can hold it aside. *n receives the count.
 * Returns 0, GW_ENOMEM or GW_EIO (rows filled so far are cleared).
 */
int		 outbox_claim_due(struct outbox_reader *r, const char *route,
		    int64_t after_id, int64_t now_ms, size_t limit,
		    struct outbox_row *rows, size_t *n,
		    struct outbox_row *blocked);

/* Reads row id into row. 0, GW_ENOTFOUND, GW_ENOMEM or GW_EIO. */
int		 outbox_read_row(struct outbox_reader *r, int64_t id,
		    struct outbox_row *row);

/* Frees the strings of row and zeroes it. NULL ok. */
void		 outbox_row_clear(struct outbox_row *row);

/* Called once per distinct route by outbox_routes(), in name order. */
typedef void (*outbox_route_cb)(const char *route, void *ctx);

/*
 * Calls cb for every route that has rows (an index skip-scan: O(routes *
 * log rows), not a table scan). 0 or GW_EIO.
 */
int		 outbox_routes(struct outbox_reader *r, outbox_route_cb cb,
		    void *ctx);

/*
 * Depth (rows) of route and the created_ms of its oldest row (0 when
 * empty). 0 or GW_EIO.
 */
int		 outbox_route_depth(struct outbox_reader *r, const char *route,
		    uint64_t *rows, int64_t *oldest_created_ms);

#endif
