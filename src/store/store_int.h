/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the store thread's files (writer.c, open.c): the store's
 * state, its prepared statements and the helpers they share. Nothing
 * outside src/store/ includes this.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "log.h"
#include "metrics_hist.h"
#include "store/forward.h"
#include "store/rollup.h"
#include "store/store.h"

struct checkpointer;
struct forward;
struct msg;
struct queue;
struct retention;
struct rollup;
struct sink_sqlite;
struct store_item;

#define STORE_DEF_ITEMS		1024
#define STORE_DEF_QUEUE		8192
#define STORE_DEF_QUEUE_BYTES	(16ULL << 20)
#define STORE_BUSY_MS		5000
#define STORE_BACKOFF_MIN_MS	10
#define STORE_BACKOFF_MAX_MS	5000
#define STORE_CKPT_PASSIVE	(4LL << 20)	/* WAL bytes */
#define STORE_CKPT_INLINE	(16LL << 20)	/* WAL bytes: here, not aside */
#define STORE_CKPT_TAIL		(1LL << 20)	/* left behind: finish here */
#define STORE_CKPT_TRUNCATE	(64LL << 20)
#define STORE_CKPT_RETRY_MS	1000

/* Prepared statements, made once by store_open(). */
enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_MSG_INSERT,
	ST_RETAIN_UPSERT,
	ST_RETAIN_DELETE,
	ST_QOS2_INSERT,
	ST_QOS2_DELETE,
	ST_SESSION_UPSERT,
	ST_SESSION_DELETE,
	ST_SMSG_DELETE_CLIENT,
	ST_SMSG_INSERT,
	ST_SMSG_DELETE,
	ST_SMSG_PUBREL,
	ST_REJECTED_INSERT,
	ST_RETAIN_EXPIRE,
	ST__COUNT
};

/* Their SQL, indexed by enum store_stmt (open.c). */
extern const char *const store_sql[ST__COUNT];

#define STORE_MAX_SINKS		4	/* rule sets prepared at once */
#define STORE_ROWS_MULTI	16	/* messages rows per INSERT statement */
#define STORE_MAX_RETIRED	8	/* heals whose fw/ret are kept */

struct store {
	sqlite3			*db;		/* the writer connection */
	char			*path;		/* database file */
	struct queue		*q;		/* of struct store_item */
	unsigned		 max_items;	/* commit_max_items */
	unsigned		 max_ms;	/* commit_max_ms */
	unsigned		 qos0_ms;	/* qos0_commit_ms */
	unsigned		 ack_window_ms;	/* ack_window_ms */
	unsigned		 new_page_size;	/* page_size, new files */
	int			 efd;		/* eventfd, commit notices */
	int			 busy_ms;	/* busy_timeout */
	pthread_t		 thread;
	bool			 started;	/* thread running */
	sqlite3_stmt		*st[ST__COUNT];
	struct store_item	*batch;		/* max_items slots */
	long long		 page_size;	/* bytes per WAL frame */
	long long		 wal_frames;	/* after last commit */
	long long		 ckpt_next_ms;	/* no checkpoint before */
	uint64_t		 ckpt_runs_from; /* checkpointer runs that count
						 * for this WAL, 0 = not set */
	struct log_limit	 errlim;	/* batch failure lines */
	struct forward		*fw;		/* outbox and delivery results */
	struct checkpointer	*ckpt;		/* background checkpoints */
	sqlite3_stmt		*st_multi;	/* STORE_ROWS_MULTI-row insert */
	const struct msg	*pend[STORE_ROWS_MULTI]; /* rows not inserted */
	size_t			 npend;
	struct retention	*ret;		/* age/size retention */
	struct rollup		*roll;		/* rollup windows */
	struct rollup_counters	 roll_count;	/* its counters */
	atomic_bool		 closing;	/* store_close() began */
	struct sink_sqlite	*sinks[STORE_MAX_SINKS]; /* newest last */
	size_t			 nsinks;
	uint64_t		 max_queued_bytes; /* queue_bytes */
	atomic_uint_fast64_t	 queued_bytes;	/* message bytes not committed */
	atomic_uint_fast64_t	 rules_seq;	/* last STORE_OP_RULES seen */
	atomic_int		 rules_ok;	/* its outcome */
	enum store_durability	 durability;	/* for store_connect() */
	bool			 wal;		/* journal_mode is wal */
	bool			 relaxed;	/* synchronous NORMAL for now */
	uint64_t		 max_bytes;	/* retention */
	uint64_t		 max_age_ms;
	bool			 refuse;	/* on_corrupt: refuse */
	bool			 damaged;	/* SQLite said CORRUPT/NOTADB */
	char			 damage[128];	/* what it said */
	struct forward_opts	 fwo;		/* last store_set_forward() */
	bool			 fwo_set;
	bool			 healed;	/* a fresh file replaced the one
						 * the checkpointer has open */
	atomic_llong		 deadline_ms;	/* mono; closing gives up after
						 * it (0 = never) */
	bool			 abandoned;	/* gave up at the deadline */
	bool			 busy_off;	/* no waiting for locks */
	/*
	 * What other threads read (store_outbox_full, retention stats): the
	 * current fw and ret, published by the store thread. The ones a heal
	 * replaced are kept (retired) until store_free, so a reader holding
	 * an old pointer never sees it freed.
	 */
	_Atomic(struct forward *) fw_pub;
	_Atomic(struct retention *) ret_pub;
	struct forward		*old_fw[STORE_MAX_RETIRED];
	struct retention	*old_ret[STORE_MAX_RETIRED];
	size_t			 nretired;
	uint64_t		 dropped;	/* items not committed then */

	atomic_uint_fast64_t	 committed_seq;
	atomic_uint_fast64_t	 rows;
	atomic_uint_fast64_t	 batches;
	atomic_uint_fast64_t	 commit_failures;
	atomic_uint_fast64_t	 wal_bytes;
	atomic_uint_fast64_t	 checkpoints;
	atomic_uint		 failing;	/* failed tries of this batch */
	atomic_llong		 last_commit_ms; /* wall clock, 0: none yet */
	struct metrics_hist	 commit_hist;	/* BEGIN to COMMIT done */
};

/* open.c */
int	store_pragma(struct store *, const char *, char *, size_t,
	    struct gw_error *);
int	store_connect(struct store *, struct gw_error *);
void	store_disconnect(struct store *, bool);
int	store_heal(struct store *);
void	store_free(struct store *);

/* writer.c */
void	store_item_free(struct store_item *);
/* Steps prepared statement which and resets it: 0 or GW_EIO. */
int	store_step(struct store *, enum store_stmt);

/* actions.c: a publish's matched rules, rule sets' sinks. */
int	store_write_rules(struct store *, const struct store_item *,
	    uint64_t *);
int	store_write_rules_op(struct store *, const struct store_item *,
	    uint64_t *);
int	store_reject(struct store *, const struct msg *, const char *,
	    const char *);

#endif /* STORE_INT_H */
