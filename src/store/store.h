/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store thread: the only writer of the SQLite database. The loop thread
 * submits items through a bounded queue; the store thread drains it in
 * batches, writes every item of a batch in ONE transaction (group commit),
 * then publishes "committed up to seq S" (an atomic) and wakes the loop
 * through an eventfd, so the loop can release the PUBACK/PUBREC it held.
 *
 * A batch closes when the queue is empty, at commit_max_items, or
 * commit_max_ms after its first item; a batch of QoS 0 work only first
 * waits up to qos0_commit_ms for more, one holding acks ack_window_ms. A
 * failed COMMIT (disk full, I/O) is rolled back and the whole batch
 * retried with capped backoff; nothing is dropped and committed_seq does
 * not advance meanwhile.
 *
 * Items carry seq numbers assigned by store_submit() in submission order;
 * committed_seq only grows, and every item with seq <= committed_seq is
 * durable.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct forward_opts;
struct metrics_hist;
struct msg;
struct retention_stats;
struct rule_set;
struct sqlite3;
struct store;

enum store_durability { STORE_DURABILITY_FULL, STORE_DURABILITY_NORMAL };

struct store_opts {
	const char	*path;			/* database file */
	enum store_durability durability;	/* synchronous FULL / NORMAL */
	unsigned	 commit_max_items;	/* batch closes at this many */
	unsigned	 commit_max_ms;		/* ... or this long after 1st */
	unsigned	 qos0_commit_ms;	/* a batch of QoS 0 work only
						 * waits this long for more */
	unsigned	 ack_window_ms;		/* one holding acks this long */
	unsigned	 page_size;		/* of a new database, 0: 4096 */
	size_t		 queue_cap;		/* max items waiting */
	uint64_t	 queue_bytes;		/* max message bytes waiting
						 * (0: 16 MB) */
	unsigned	 busy_timeout_ms;	/* 0: 5000; wait for a lock
						 * before a batch fails */
	uint64_t	 max_bytes;		/* database.max_bytes, 0 = none */
	uint64_t	 max_age_ms;		/* messages retention, 0 = keep */
	bool		 on_corrupt_refuse;	/* damaged: refuse, not heal */
};

enum store_op {
	STORE_OP_PUBLISH = 1,	/* what a PUBLISH produced, see flags */
	STORE_OP_QOS2_DEL,	/* forget (client_id, packet_id); id 0: all
				 * of that client's ids */
	STORE_OP_BARRIER,	/* nothing to write; orders acks only */
	STORE_OP_SESSION_SAVE,	/* upsert session client_id, subs = text */
	STORE_OP_SESSION_DEL,	/* delete session client_id + its msgs */
	STORE_OP_SMSG_ADD,	/* queue msg for session client_id as key */
	STORE_OP_SMSG_DEL,	/* forget session message key */
	STORE_OP_SMSG_PUBREL,	/* session message key got its PUBREC:
				 * awaiting PUBCOMP as packet_id */
	STORE_OP_RULES,		/* prepare tables and statements for rules
				 * (a reload); see store_rules_result() */
	STORE_OP_RETAIN_EXPIRE,	/* delete msg's retained row if it is
				 * still that message (expired) */
};

#define STORE_RULE_INLINE	2	/* rule ids kept inside an item */

/* Flags of a STORE_OP_PUBLISH item. */
#define STORE_F_ROW		0x01	/* insert a row into messages */
#define STORE_F_RETAIN		0x02	/* upsert/delete the retained topic */
#define STORE_F_QOS2		0x04	/* record (client_id, packet_id) */

struct store_item {
	uint8_t		 op;		/* enum store_op */
	uint8_t		 flags;		/* STORE_F_* */
	uint16_t	 packet_id;	/* inbound QoS 2 packet id;
					 * SMSG_PUBREL: the outbound one */
	struct msg	*msg;		/* owned ref: PUBLISH items */
	char		*client_id;	/* owned (gw_malloc): QOS2_DEL, SESSION_*,
					 * SMSG_ADD; PUBLISH with STORE_F_QOS2:
					 * the key instead of msg's client id
					 * (sources), else NULL */
	char		*text;		/* owned: SESSION_SAVE subscriptions as
					 * JSON [{"filter":F,"qos":Q},...] */
	uint64_t	 key;		/* SMSG_*: session message id;
					 * SESSION_SAVE: wall ms the client
					 * went offline, 0 = connected */
	uint32_t	 expiry_s;	/* SESSION_SAVE: Session Expiry
					 * Interval (UINT32_MAX: the limit) */
	uint8_t		 protocol;	/* SESSION_SAVE: protocol level */
	uint8_t		 qos;		/* SMSG_ADD: delivery QoS */
	uint8_t		 retain;	/* SMSG_ADD: retain flag to send */
	struct rule_set	*rules;		/* owned ref: PUBLISH, the set whose
					 * rules matched; RULES, the set */
	uint32_t	 nrules;	/* matched rule ids */
	uint32_t	 rule_id[STORE_RULE_INLINE]; /* ids if nrules fits */
	uint32_t	*rule_ids;	/* owned (gw_malloc) ids otherwise */
	uint64_t	 seq;		/* set by store_submit() */
};

/* The matched rule ids of a PUBLISH item. */
static inline const uint32_t *
store_item_rule_ids(const struct store_item *it)
{
	return it->nrules <= STORE_RULE_INLINE ? it->rule_id : it->rule_ids;
}

struct store_stats {
	uint64_t	rows;		/* rows inserted (messages, rule tables) */
	uint64_t	batches;	/* transactions committed */
	uint64_t	commit_failures; /* failed COMMITs (retried) */
	uint64_t	committed_seq;
	uint64_t	wal_bytes;	/* WAL size after the last commit */
	uint64_t	checkpoints;	/* completed WAL checkpoints */
	uint64_t	failing;	/* failed tries of the batch now being
					 * retried, 0: the last commit worked */
	int64_t		last_commit_ms;	/* wall clock of the last commit */
	uint64_t	queue_items;	/* items queued, not committed */
	uint64_t	dead_pruned;	/* outbox_dead rows over its bound */
	uint64_t	write_bytes;	/* the process's, /proc/self/io */
	uint64_t	fsyncs;		/* flushes of database files */
	uint64_t	rollup_windows;	/* rollup windows written */
	uint64_t	rollup_rows;	/* rollup rows written */
	uint64_t	rollup_errors;	/* failed rollup turns (retried) */
	uint64_t	rollup_skipped;	/* rollup windows given up */
};

/*
 * Opens (creating if needed) the database at opts->path, sets WAL and the
 * pragmas, applies schema migrations. Does not start the thread. Returns a
 * new store or NULL with err filled.
 */
struct store	*store_open(const struct store_opts *opts,
		    struct gw_error *err);

/*
 * The writer connection, borrowed, for code that runs ON the store thread
 * (or before store_start() / after the thread stopped): outbox, retention,
 * rule sinks, the loaders below. Never use it from another thread.
 */
struct sqlite3	*store_db(struct store *s);

/* Startup loaders, called before store_start() from the main thread. */
/* Takes m; returns 0 to keep the row, 1 to delete it (over a bound). */
typedef int (*store_retained_cb)(struct msg *m, void *ctx);
typedef void (*store_qos2_cb)(const char *client_id, uint16_t packet_id,
		    void *ctx);
int		 store_load_retained(struct store *s, store_retained_cb cb,
		    void *ctx);
int		 store_load_qos2(struct store *s, store_qos2_cb cb, void *ctx);
/*
 * Persistent sessions: subs is the JSON text saved (may be NULL), seen_ms
 * the wall-clock ms its client went offline (0: connected when the
 * gateway stopped, or not recorded).
 */
typedef void (*store_session_cb)(const char *client_id, const char *subs,
		    long long seen_ms, uint32_t expiry_s, void *ctx);
/*
 * Queued session messages in id order; cb takes the reference on m.
 * pubrel_pid is not 0 for a QoS 2 message whose PUBREC arrived: only its
 * PUBREL (with that packet id) is still owed.
 */
typedef void (*store_smsg_cb)(const char *client_id, uint64_t key,
		    struct msg *m, uint8_t qos, uint8_t retain,
		    uint16_t pubrel_pid, void *ctx);
int		 store_load_sessions(struct store *s, store_session_cb cb,
		    void *ctx);
int		 store_load_session_msgs(struct store *s, store_smsg_cb cb,
		    void *ctx);

/*
 * Creates the tables, columns and indexes set's rules need and prepares
 * their statements, now, on the calling thread: main before store_start()
 * (a failure is a startup error). Takes its own reference on set. 0 or an
 * error with err filled.
 */
int		 store_prepare_rules(struct store *s, struct rule_set *set,
		    struct gw_error *err);

/*
 * Outcome of the STORE_OP_RULES item with sequence seq once committed:
 * 1 prepared, 0 failed (the store thread logged why), -1 unknown (not
 * processed yet, or a later one replaced the record). Any thread.
 */
int		 store_rules_result(struct store *s, uint64_t seq);

/*
 * Connects the outbox to the delivery thread (results queue, wake-up,
 * held ids, drop counts) and sets its cap and overflow policy. Before
 * store_start().
 */
void		 store_set_forward(struct store *s,
		    const struct forward_opts *o);

/*
 * Makes the store thread run a batch soon even with nothing queued (new
 * delivery results wait). Any thread; a full queue runs one anyway.
 */
void		 store_nudge(struct store *s);

/* True while the outbox is full under the reject policy. Any thread. */
bool		 store_outbox_full(struct store *s);

/* Starts the store thread. 0 or GW_EIO. */
int		 store_start(struct store *s);

/*
 * Queues it (the store takes ownership of it->msg and it->client_id on
 * success) and returns its seq in *seq. GW_EFULL when the queue is full:
 * nothing is taken, the caller pauses its producer. Loop thread.
 */
int		 store_submit(struct store *s, struct store_item *it,
		    uint64_t *seq);

/*
 * Logs "WHAT: N rows written in C commits; storage: B bytes written, F
 * flushes; per row X bytes, Y flushes" (the process's totals). Any thread.
 */
void		 store_log_status(struct store *s, const char *what);

/*
 * Whether no client waits for the commit of it (QoS 0 publish work): such
 * a batch may wait qos0_commit_ms for company. Any thread.
 */
bool		 store_item_lazy(const struct store_item *it);

/* Free slots in the queue now. */
size_t		 store_queue_free(struct store *s);

/* Message bytes queued and not committed yet (atomic read). */
uint64_t	 store_queue_bytes(struct store *s);

/* eventfd that becomes readable when committed_seq advances; the reader
 * must call store_ack_event() to clear it. */
int		 store_event_fd(struct store *s);
void		 store_ack_event(struct store *s);

/* Highest seq durable so far (atomic read, any thread). */
uint64_t	 store_committed_seq(struct store *s);

void		 store_get_stats(struct store *s, struct store_stats *st);

/*
 * The commit latency histogram (each transaction, BEGIN to COMMIT done,
 * retries of a failed one not included). Borrowed; any thread.
 */
const struct metrics_hist *store_commit_hist(const struct store *s);

/* Retention counters (rows pruned for max_age / max_bytes, sizes); see
 * store/retention.h. Any thread. */
void		 store_get_retention_stats(struct store *s,
		    struct retention_stats *st);

/*
 * Commits everything queued, stops and joins the thread, closes the
 * database and frees s. With a shutdown timeout set, a batch still failing
 * when it passes is dropped (never acknowledged) with everything queued
 * after it, and the log says how many items. Accepts NULL.
 */
void		 store_close(struct store *s);
/*
 * store_close() that also sets *committed to the store sequence number
 * committed last: items past it were never committed (abandoned after the
 * shutdown timeout), so their acknowledgements must not be sent.
 */
void		 store_close_committed(struct store *s, uint64_t *committed);
void		 store_set_shutdown_timeout(struct store *s, unsigned ms);

#endif
