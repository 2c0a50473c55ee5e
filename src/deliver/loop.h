/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The delivery thread: sends the outbox's webhook rows with libcurl multi
 * and reports what happened, row by row, to the store thread.
 *
 * THREADS AND OWNERSHIP
 *
 *   store thread   writes the outbox (outbox.h) inside its batch
 *                  transactions; after a COMMIT that added outbox rows it
 *                  calls deliver_wake(); at the start of each batch it pops
 *                  struct outbox_result elements from the results queue and
 *                  applies them with outbox_apply_results() in that batch's
 *                  transaction (see "Integration" below).
 *   delivery thread (this module) owns a read-only connection, the curl
 *                  multi handle, every request and all per-route state. It
 *                  never writes the database.
 *   any thread     deliver_wake(), deliver_update_routes(),
 *                  deliver_held_ids(), deliver_count_dropped() and
 *                  deliver_stats() are thread-safe.
 *
 * SEMANTICS
 *
 * Per route a cursor (the highest id handed out) advances through the
 * route's rows in id order; rows at or below it are never read again by
 * the claim, so a delivered row whose delete is not committed yet is never
 * sent twice. A request (one row, or a batch of consecutive rows with the
 * same url and headers) that ends in RETRY stays in memory, held until its
 * next_ms, and is then resent with exactly the same rows and the same
 * Idempotency-Key. An ordered route (the default) has at most one request
 * in flight or held, so it delivers strictly in id order and a failing
 * receiver is probed by one request, not the whole backlog; an unordered
 * route has at most max_in_flight requests in flight or held. A FAIL (dead
 * letter) never stops its route. After a restart rows rescheduled earlier
 * wait until their next_ms, read back from the database.
 *
 * Every result is also a counter: delivered, retried and dead per route
 * (rows), dropped (the store thread's cap, via deliver_count_dropped()),
 * plus depth and oldest-row age refreshed every few seconds.
 *
 * Integration (the store thread and main)
 *
 *   main:   curl_global_init(CURL_GLOBAL_DEFAULT) before any thread;
 *           results = queue_new(sizeof(struct outbox_result), cap);
 *           store_open(); ob = outbox_open(store_db(s));
 *           d = deliver_start(&opts) with opts.results = results and
 *           opts.results_cb waking the store thread (it may block on its
 *           own queue: e.g. submit a STORE_OP_BARRIER or signal a condvar);
 *           outbox_set_drop_cb(ob, cb, d) with cb calling
 *           deliver_count_dropped(d, route, n).
 *   store:  each batch: pop up to N results (queue_pop(results, buf, N,
 *           0)); BEGIN; outbox_apply_results(ob, buf, n, now); rules'
 *           outbox_enqueue()s; for drop_oldest: deliver_held_ids() then
 *           outbox_enforce_cap(); COMMIT; outbox_txn_committed(ob);
 *           outbox_results_free(buf, n); if rows were enqueued,
 *           deliver_wake(d). On ROLLBACK: outbox_txn_rolled_back(ob) and
 *           retry the batch with the SAME results still in buf.
 *   reload: deliver_update_routes() with the new table.
 *   stop:   deliver_stop(d, grace) BEFORE store_close(): then drain the
 *           results queue once more in a last batch, so the outcome of
 *           the requests that finished is committed, then
 *           outbox_close(ob), store_close(s), queue_free(results),
 *           curl_global_cleanup().
 */
#ifndef GW_DELIVER_LOOP_H
#define GW_DELIVER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/results.h"
#include "deliver/webhook.h"
#include "err.h"

struct queue;
struct deliver;

#define DELIVER_DEF_MAX_IN_FLIGHT	8	/* unordered routes */
#define DELIVER_DEF_BASE_MS		1000
#define DELIVER_DEF_CAP_MS		300000

struct deliver_retry {
	int64_t		 base_ms;	/* first retry within [0, base] */
	int64_t		 cap_ms;	/* max delay; clamps Retry-After */
	uint32_t	 max_attempts;	/* 0: unbounded */
	int64_t		 max_age_ms;	/* since created_ms; 0: unbounded */
};

struct deliver_batch {
	uint32_t	 max_messages;	/* <= 1: no batching */
	uint32_t	 max_delay_ms;	/* wait for more while the oldest
					 * row is younger than this */
	enum webhook_format format;	/* array or ndjson */
};

/*
 * One route's delivery settings. Strings are borrowed by deliver_start()
 * and deliver_update_routes(), which copy them.
 */
struct deliver_route {
	const char	*name;		/* outbox.route this serves */
	struct webhook_conf http;	/* method, timeout, tls, hmac secret
					 * (batch/format come from batch) */
	bool		 ordered;	/* one request in flight (default) */
	uint32_t	 max_in_flight;	/* 0: 1 if ordered, else 8 */
	struct deliver_batch batch;
	struct deliver_retry retry;
	double		 rate_limit_per_s; /* requests/s; 0: unlimited */
};

/* Called on the delivery thread after results were pushed. */
typedef void (*deliver_results_cb)(void *ctx);

struct deliver_opts {
	const char	*db_path;	/* database the store created */
	const struct deliver_route *routes;	/* borrowed, copied */
	size_t		 nroutes;
	struct queue	*results;	/* of struct outbox_result, borrowed:
					 * must outlive deliver_stop() */
	deliver_results_cb results_cb;	/* or NULL */
	void		*results_ctx;
	uint64_t	 seed;		/* jitter PRNG seed; 0: random */
	uint32_t	 prefetch;	/* rows read ahead per route; 0: 32 */
	uint32_t	 gauge_ms;	/* depth refresh; 0: 5000 */
};

/* Fills r with the defaults (ordered, retry 1 s..300 s, timeout 10 s). */
void		 deliver_route_defaults(struct deliver_route *r);

/*
 * Starts the delivery thread. curl_global_init() must have been called.
 * Returns a new handle, or NULL with err (may be NULL) filled: bad route
 * table (duplicate or empty names), the database cannot be opened, no
 * thread. Caller's thread.
 */
struct deliver	*deliver_start(const struct deliver_opts *opts,
		    struct gw_error *err);

/* Says "new outbox rows are committed"; never blocks. Any thread. */
void		 deliver_wake(struct deliver *d);

/*
 * Replaces the route table (reload). Routes kept by name keep their
 * cursor and held requests; removed routes finish what is in flight and
 * their rows stay in the outbox, unsent (logged). 0, GW_ECONFIG (duplicate
 * or empty name) or GW_ENOMEM. Any thread.
 */
int		 deliver_update_routes(struct deliver *d,
		    const struct deliver_route *routes, size_t n);

/*
 * The ids of every row the delivery thread holds now (read ahead, in
 * flight, or held for a retry), sorted ascending, in a new array *ids
 * (gw_free it; NULL when *n is 0): the skip list of outbox_enforce_cap().
 * 0 or GW_ENOMEM. Any thread.
 */
int		 deliver_held_ids(struct deliver *d, int64_t **ids, size_t *n);

/*
 * Marks the start, then the end, of the store's drop_oldest pass: the
 * count is odd while rows not in the held-id set may be deleted. A claim
 * that overlapped a pass forgets the rows it read and reads them again,
 * so a row the cap deleted is never sent (and counted dropped as well).
 * Store thread.
 */
void		 deliver_drop_mark(struct deliver *d);

/* Adds n to route's dropped counter. Any thread. */
void		 deliver_count_dropped(struct deliver *d, const char *route,
		    uint64_t n);

/* Calls cb for each route ever configured, under a lock. Any thread. */
void		 deliver_stats(struct deliver *d, results_route_stats_cb cb,
		    void *ctx);

/*
 * Stops the thread: no new requests; waits up to grace_ms for those in
 * flight (their results are pushed), abandons the rest (their rows stay
 * and are sent again after a restart: at least once), joins and frees d.
 * Accepts NULL. Not concurrently with the other calls on d.
 */
void		 deliver_stop(struct deliver *d, uint32_t grace_ms);

#endif
