/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store thread's side of store-and-forward: rendering a rule's webhook
 * into an outbox row inside the batch transaction that stores the publish
 * (so a PUBACK means the forward is durable too), applying the delivery
 * thread's results (delivered, retry later, dead letter) in the same
 * batches, and keeping the outbox under outbox.max_bytes. Store thread
 * only; the delivery thread is reached through callbacks.
 */
#ifndef GW_FORWARD_H
#define GW_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg;
struct outbox_result;
struct queue;
struct rule;
struct rule_payload;
struct sqlite3;
struct forward;

enum forward_overflow {
	FORWARD_DROP_OLDEST = 0,	/* delete the oldest rows not in flight */
	FORWARD_REJECT,			/* hold publishes until there is room */
};

struct forward_opts {
	uint64_t	 max_bytes;	/* outbox cap, 0 = unbounded */
	uint64_t	 dead_max_bytes; /* outbox_dead cap, 0 = unbounded */
	enum forward_overflow overflow;
	struct queue	*results;	/* of struct outbox_result, or NULL */
	/* Wakes the delivery thread after a commit that added rows. */
	void		(*wake)(void *ctx);
	/* Sorted ids the delivery thread holds (new array, gw_free). */
	int		(*held_ids)(void *ctx, int64_t **ids, size_t *n);
	/*
	 * Called when a drop_oldest pass starts (before held_ids) and again
	 * after its COMMIT or ROLLBACK, so the delivery thread can tell that
	 * rows it read meanwhile may be gone (deliver_drop_mark()).
	 */
	void		(*drop_mark)(void *ctx);
	/* Counts rows dropped by the cap for a route. */
	void		(*dropped)(void *ctx, const char *route, uint64_t n);
	/* After a COMMIT that applied results (borrowed for the call). */
	void		(*committed)(void *ctx,
			    const struct outbox_result *res, size_t n);
	void		*ctx;
};

/* Opens the outbox on db (store thread, or main before it starts). */
struct forward	*forward_new(struct sqlite3 *db);
/* Sets or replaces the delivery callbacks and limits. */
void		 forward_configure(struct forward *f,
		    const struct forward_opts *o);
void		 forward_free(struct forward *f);

/*
 * Takes the delivery results waiting (kept until the batch commits, so a
 * retried batch applies them again). Called at the start of a batch and
 * again just before its COMMIT, so results whose wake-up item the batch
 * consumed are not left waiting. Returns true when some are not applied
 * yet: the batch must then have a transaction open, items or not.
 */
bool		 forward_take_results(struct forward *f);
/* Dead letters deleted for outbox.dead_max_bytes, committed. Any thread. */
uint64_t	 forward_dead_pruned(const struct forward *f);
/* True while delivery results wait in the queue (store thread). */
bool		 forward_pending(const struct forward *f);
/* Inside the transaction: applies the results taken and not yet applied
 * in it. 0 or GW_EIO. */
int		 forward_apply_results(struct forward *f);

/*
 * Inside the transaction: renders r's webhook for m into an outbox row.
 * A request that cannot be sent (bad header) goes straight to the dead
 * letters. 0, or GW_EIO / GW_ENOMEM (the batch is retried).
 */
int		 forward_webhook(struct forward *f, const struct rule *r,
		    const struct msg *m, struct rule_payload *pc);

/*
 * Inside the transaction: renders r's mqtt action for m into an outbox row
 * of route "<rule>/mqtt" (url: the upstream topic, body: the payload). A
 * topic that is not a valid topic name goes straight to the dead letters.
 * 0, or GW_EIO / GW_ENOMEM (the batch is retried).
 */
int		 forward_mqtt(struct forward *f, const struct rule *r,
		    const struct msg *m, struct rule_payload *pc);

/* Whether the reject policy must hold new webhook publishes (any thread:
 * an atomic snapshot). */
bool		 forward_full(const struct forward *f);

/* Inside the transaction, after the items: enforces the cap. 0/GW_EIO. */
int		 forward_finish(struct forward *f);
/* After COMMIT / ROLLBACK. */
void		 forward_committed(struct forward *f);
void		 forward_rolled_back(struct forward *f);

#endif
