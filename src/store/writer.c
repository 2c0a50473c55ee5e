/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store thread; see store.h for the contract.
 *
 * DESIGN
 *
 * The loop thread submits store_items into a bounded queue (queue.c) whose
 * lock also stamps each item with its seq, so seq order is queue order. The
 * store thread owns the SQLite connection and a batch array sized
 * commit_max_items. It blocks for the first item, opens the transaction
 * lazily (BEGIN IMMEDIATE, only when an item actually writes something, so
 * a batch of barriers costs nothing), writes what it has, then keeps taking
 * whatever is already queued without waiting, until the queue is empty, the
 * batch is full or commit_max_ms have passed since the first item. Then
 * COMMIT, publish committed_seq (release) and bump the eventfd. At low load
 * an ack therefore costs exactly one commit and no timer.
 *
 * Before that, store_gather() decides how long a batch waits for company,
 * in one place: a batch of lazy items (QoS 0 publish work, which nobody
 * waits for) up to qos0_ms after its first item, so at low rates many QoS 0
 * messages share one commit and one flush (flash wears per write, not per
 * byte); a batch holding anything else, at most ack_window_ms more
 * (default 0: no wait). store_close() ends every wait.
 *
 * Failure: any failed step (bind, insert, COMMIT: SQLITE_FULL, IOERR, BUSY
 * after busy_timeout...) rolls the whole transaction back and the SAME
 * batch, still held in the array with its references, is retried after a
 * capped exponential backoff (10 ms doubling to 5 s). committed_seq does not
 * move meanwhile, so the loop keeps the acks held and, its queue filling up,
 * pauses the publishers. The thread never exits on a database error; only
 * store_close() ends it, after everything queued has been committed, or,
 * with a shutdown timeout, once a batch still fails past it (dropped,
 * never acknowledged). Damage (SQLITE_CORRUPT, SQLITE_NOTADB) is not
 * retried on the same file: store_heal() moves it aside and opens a fresh
 * one (heal.c), and the batch is retried there at once.
 *
 * Statements are prepared once at open; values are bound SQLITE_STATIC
 * since the message outlives the step, and each statement is reset right
 * after its step. Nothing is allocated per row. Rule rows are buffered in
 * their sink (sink/sqlite.c) and inserted several per statement; every
 * sink is flushed before COMMIT and emptied after a rollback.
 *
 * Checkpoints: wal_autocheckpoint is off so no commit pays for one. A WAL
 * hook records the WAL size after each commit; between batches, past 4 MB,
 * the checkpointer thread copies the WAL; once it has left at most 1 MB
 * to copy (or past 16 MB) the thread runs the PASSIVE checkpoint that
 * finishes it (never waits) and the WAL starts over, its file no longer
 * growing (a growing file costs a filesystem journal commit per flush);
 * past 64 MB a TRUNCATE
 * one with the busy handler off (so a reader holding a snapshot only makes
 * it fail and be retried a second later, never stalls ingest). store_close
 * ends with a TRUNCATE checkpoint that may wait busy_timeout.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "broker/msg.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "mqtt/utf8.h"
#include "queue.h"
#include "rules/rules.h"
#include "sink/sqlite.h"
#include "store/actions.h"
#include "store/checkpoint.h"
#include "store/forward.h"
#include "store/heal.h"
#include "store/iostat.h"
#include "store/retention.h"
#include "store/rollup.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/store_int.h"

static void	*store_main(void *);
static void	store_run(struct store *);
static int	store_idle_ms(struct store *);
static size_t	store_gather(struct store *, size_t);
static void	store_batch(struct store *, size_t);
static int	store_txn(struct store *, size_t *, bool, uint64_t *);
static int	store_relax(struct store *, bool);
static int	store_begin(struct store *, bool);
static bool	store_item_writes(const struct store_item *);
static int	store_write(struct store *, const struct store_item *,
		    uint64_t *);
static void	store_release(struct store *, size_t);
static int	store_flush_rows(struct store *);
static uint64_t	store_item_bytes(const struct store_item *);
static void	store_checkpoint(struct store *, bool);
static void	store_sleep_ms(unsigned);
static bool	store_give_up(struct store *, size_t);

/* Borrowed writer connection; see store.h for the thread rule. */
struct sqlite3 *
store_db(struct store *s)
{
	return s->db;
}

/* Starts the store thread. 0 or GW_EIO. Main thread, once. */
int
store_start(struct store *s)
{
	if (s->started)
		return 0;
	/* Without it checkpoints run between batches, on this thread. */
	s->ckpt = checkpointer_start(s->path);
	if (pthread_create(&s->thread, NULL, store_main, s) != 0) {
		log_error("store: cannot start thread: %s", strerror(errno));
		return GW_EIO;
	}
	s->started = true;
	return 0;
}

/*
 * Queues *it and returns its seq; on success the store owns it->msg,
 * it->client_id and it->text. GW_EFULL (full or closing): nothing taken.
 * GW_EMALFORMED for an unknown op. Loop thread (any producer is safe).
 */
int
store_submit(struct store *s, struct store_item *it, uint64_t *seq)
{
	uint64_t bytes, queued;
	int rc;

	if (it->op < STORE_OP_PUBLISH || it->op > STORE_OP_RETAIN_EXPIRE)
		return GW_EMALFORMED;
	bytes = store_item_bytes(it);
	queued = atomic_load_explicit(&s->queued_bytes, memory_order_relaxed);
	/* May overshoot by one message: the broker pauses at the bound. */
	if (queued >= s->max_queued_bytes)
		return GW_EFULL;
	rc = queue_push_seq(s->q, it, offsetof(struct store_item, seq), seq);
	if (rc == 0)
		atomic_fetch_add_explicit(&s->queued_bytes, bytes,
		    memory_order_relaxed);
	return rc;
}

/*
 * Free queue slots now (a snapshot), 0 while the queued message bytes are
 * at their bound. Any thread.
 */
size_t
store_queue_free(struct store *s)
{
	if (atomic_load_explicit(&s->queued_bytes, memory_order_relaxed) >=
	    s->max_queued_bytes)
		return 0;
	return queue_cap(s->q) - queue_len(s->q);
}

uint64_t
store_queue_bytes(struct store *s)
{
	return atomic_load_explicit(&s->queued_bytes, memory_order_relaxed);
}

/* The eventfd readable after committed_seq advanced. */
int
store_event_fd(struct store *s)
{
	return s->efd;
}

/* Clears the eventfd (nonblocking read). Loop thread. */
void
store_ack_event(struct store *s)
{
	uint64_t v;
	ssize_t n;

	n = read(s->efd, &v, sizeof v);
	(void)n;
}

/*
 * Closes the queue, lets the thread commit everything still queued (or
 * does it here when the thread never started), joins it, truncates the
 * WAL, closes the database and frees s. Blocks while the database keeps
 * failing: accepted items are never dropped. NULL ok. Main thread.
 */
void
store_close(struct store *s)
{
	store_close_committed(s, NULL);
}

/* See store.h. */
void
store_close_committed(struct store *s, uint64_t *committed)
{
	if (s == NULL)
		return;
	atomic_store(&s->closing, true);
	queue_close(s->q);
	if (s->started) {
		pthread_join(s->thread, NULL);
		s->started = false;
	} else
		store_run(s);
	checkpointer_stop(s->ckpt);
	s->ckpt = NULL;
	store_checkpoint(s, true);
	store_log_status(s, "database closed");
	if (s->abandoned)
		log_error("store: %s: stopped after shutdown_timeout with %llu "
		    "items not committed (their publishes were not "
		    "acknowledged)", s->path, (unsigned long long)s->dropped);
	else if (s->db != NULL)
		heal_unmark(s->path);
	if (committed != NULL)
		*committed = store_committed_seq(s);
	store_free(s);
}

/*
 * Bounds store_close(): ms from now (0: never) a closing store stops
 * retrying a failing batch, drops what is left uncommitted and says so.
 * Main thread, before store_close().
 */
void
store_set_shutdown_timeout(struct store *s, unsigned ms)
{
	atomic_store(&s->deadline_ms, ms != 0 ? clock_mono_ms() + ms : 0);
}

/*
 * Closing and past the deadline: drops batch[0..n) (never acknowledged:
 * committed_seq stays) and from now on everything still queued. True when
 * the batch was dropped.
 */
static bool
store_give_up(struct store *s, size_t n)
{
	long long dl = atomic_load(&s->deadline_ms);

	if (!s->abandoned && (!atomic_load(&s->closing) || dl == 0 ||
	    clock_mono_ms() < dl))
		return false;
	if (!s->abandoned)
		log_error("store: %s: shutdown_timeout passed while a batch "
		    "kept failing: giving up on what is not committed",
		    s->path);
	s->abandoned = true;
	s->dropped += n;
	store_release(s, n);
	return true;
}

static void *
store_main(void *arg)
{
	pthread_setname_np(pthread_self(), "mqlite-store");
	store_run(arg);
	return NULL;
}

/* How long the idle store may sleep: retention's and rollups' due work. */
static int
store_idle_ms(struct store *s)
{
	int	a, b;

	a = s->ret != NULL ? retention_timeout_ms(s->ret) : 1000;
	b = rollup_timeout_ms(s->roll);
	return a < 0 || (b >= 0 && b < a) ? b : a;
}

/* The batch loop; returns once the queue is closed and drained. */
static void
store_run(struct store *s)
{
	size_t n;

	/* The rules prepared at start may have rollup windows due now. */
	if (s->db != NULL && s->nsinks > 0)
		(void)rollup_run(s->roll,
		    sink_sqlite_set(s->sinks[s->nsinks - 1]));
	for (;;) {
		/* Wakes for due retention and rollup work even when idle. */
		n = queue_pop(s->q, s->batch, s->max_items, store_idle_ms(s));
		if (n > 0) {
			n = store_gather(s, n);
			store_batch(s, n);
			store_checkpoint(s, false);
		}
		/* Delivery results beyond what one batch took. */
		while (s->fw != NULL && forward_pending(s->fw) &&
		    !s->abandoned)
			store_batch(s, 0);
		if (n == 0 && atomic_load(&s->closing))
			break;
		if (s->db == NULL)
			continue;
		/* Between batches: one short chunk of pruning at most. */
		(void)retention_run(s->ret, s->nsinks > 0 ?
		    sink_sqlite_set(s->sinks[s->nsinks - 1]) : NULL);
		(void)rollup_run(s->roll, s->nsinks > 0 ?
		    sink_sqlite_set(s->sinks[s->nsinks - 1]) : NULL);
	}
}

/*
 * Whether nobody waits for the item's commit: the work of a QoS 0 publish
 * (its row, its retained topic, its rules' rows and outbox rows). Any
 * thread; the broker nudges the store when an ack waits behind one.
 */
bool
store_item_lazy(const struct store_item *it)
{
	return it->op == STORE_OP_PUBLISH && it->msg != NULL &&
	    it->msg->qos == 0;
}

/*
 * The batching decision, all of it. batch[0..n) was just popped. A batch
 * waits for company until the earlier of qos0_ms after its first lazy item
 * and ack_window_ms after its first other one (an ack waits for that), so
 * neither kind waits longer than its own setting; a barrier (a nudge for
 * delivery results) ends the wait at once, so a bridge's window, held until
 * its deletes commit, never waits for ack_window_ms. Then store_txn() takes
 * what is queued without waiting. Closing, or a full batch, ends the wait.
 * Returns the new item count.
 */
static size_t
store_gather(struct store *s, size_t n)
{
	long long now, deadline = LLONG_MAX, left, d;
	bool lazy = false, urgent = false;
	size_t i = 0;

	now = clock_mono_ms();
	for (;;) {
		/* Each kind's first item starts its own clock. */
		for (; i < n && !(lazy && urgent); i++) {
			if (store_item_lazy(&s->batch[i])) {
				if (lazy)
					continue;
				lazy = true;
				d = now + s->qos0_ms;
			} else if (s->batch[i].op == STORE_OP_BARRIER) {
				/* A nudge (delivery results) waits for no one. */
				d = now;
			} else {
				if (urgent)
					continue;
				urgent = true;
				d = now + s->ack_window_ms;
			}
			if (d < deadline)
				deadline = d;
		}
		i = n;
		left = deadline - now;
		if (left <= 0 || n >= s->max_items ||
		    atomic_load(&s->closing))
			break;
		n += queue_pop(s->q, s->batch + n, s->max_items - n,
		    left > INT_MAX ? INT_MAX : (int)left);
		now = clock_mono_ms();
	}
	return n;
}

/*
 * Commits batch[0..n) and whatever joins it, retrying until it lands; n
 * may be 0 for a batch of delivery results only.
 */
static void
store_batch(struct store *s, size_t n)
{
	uint64_t rows = 0, seq, one = 1;
	unsigned delay = 0, failures = 0;
	long long t0, left;

	if (s->abandoned) {
		s->dropped += n;
		store_release(s, n);
		return;
	}

	for (;;) {
		t0 = clock_mono_us();
		if (store_txn(s, &n, failures == 0, &rows) == 0)
			break;
		failures++;
		atomic_store_explicit(&s->failing, failures,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&s->commit_failures, 1,
		    memory_order_relaxed);
		/* Damage is not transient: a fresh file, then retry now. */
		if ((s->damaged || s->db == NULL) && store_heal(s) == 0)
			continue;
		if (store_give_up(s, n))
			return;
		delay = delay == 0 ? STORE_BACKOFF_MIN_MS : delay * 2;
		if (delay > STORE_BACKOFF_MAX_MS)
			delay = STORE_BACKOFF_MAX_MS;
		left = atomic_load(&s->deadline_ms) - clock_mono_ms();
		if (atomic_load(&s->closing) &&
		    atomic_load(&s->deadline_ms) != 0 &&
		    left < (long long)delay)
			delay = left > 0 ? (unsigned)left : 0;
		store_sleep_ms(delay);
	}
	metrics_hist_observe(&s->commit_hist, clock_mono_us() - t0);
	atomic_store_explicit(&s->last_commit_ms, clock_wall_ms(),
	    memory_order_relaxed);
	if (failures > 0) {
		atomic_store_explicit(&s->failing, 0, memory_order_relaxed);
		log_info("store: batch of %zu items committed after %u failed "
		    "attempts", n, failures);
	}
	if (n > 0) {
		seq = s->batch[n - 1].seq;
		store_release(s, n);
		atomic_store_explicit(&s->committed_seq, seq,
		    memory_order_release);
	}
	atomic_fetch_add_explicit(&s->rows, rows, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
	if (write(s->efd, &one, sizeof one) < 0 &&
	    errno != EAGAIN)
		log_warn("store: eventfd write: %s", strerror(errno));
}

/*
 * Delivery results alone (deletes of delivered outbox rows, retries, dead
 * letters) need no fsync of their own with durability full: in WAL mode
 * the durable state is a prefix of the commit order, so such a commit is
 * durable at the next synchronous one (any batch that acknowledges a
 * publish, or a checkpoint); a crash of the process loses none, a power
 * cut at most some of them, and then those rows are only sent again.
 * Skipping the fsync keeps a bridge's window, which lasts until the
 * delete is committed, from waiting for the disk. on: NORMAL, else back
 * to FULL; 0 or GW_EIO (s->relaxed says where the connection stands).
 *
 * The setting changes only with the kind of transaction (store_begin()),
 * not twice per commit: a drain of results runs its commits relaxed, and
 * the first transaction that carries items sets FULL again before its
 * BEGIN. What commits in between outside store_txn() (retention, rollups,
 * tables for new rules: work redone after a loss) is then made durable by
 * that transaction, the prefix rule again. The PRAGMA goes through
 * sqlite3_exec() on purpose: SQLite applies "PRAGMA synchronous = x" while
 * preparing it, so a prepared statement stepped again would do nothing.
 */
static int
store_relax(struct store *s, bool on)
{
	if (sqlite3_exec(s->db, on ? "PRAGMA synchronous = NORMAL" :
	    "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("store: %s: cannot set synchronous: %s", s->path,
		    sqlite3_errmsg(s->db));
		return GW_EIO;
	}
	s->relaxed = on;
	return 0;
}

/*
 * BEGIN, with synchronous set for the kind of transaction first:
 * results_only (no item writes in it) may run relaxed, anything else runs
 * FULL, or fails (GW_EIO) when FULL cannot be restored. A failure to
 * relax only costs an fsync.
 */
static int
store_begin(struct store *s, bool results_only)
{
	bool relax = results_only && s->wal &&
	    s->durability == STORE_DURABILITY_FULL;

	if (relax != s->relaxed && store_relax(s, relax) != 0 && !relax)
		return GW_EIO;
	return store_step(s, ST_BEGIN);
}

/*
 * One transaction: writes batch[0..*np); when fill, keeps taking queued
 * items (no waiting) while the batch has room and commit_max_ms since its
 * start have not passed, growing *np. Sets *rowsp to the messages rows
 * written. 0, or GW_EIO after a rollback.
 */
static int
store_txn(struct store *s, size_t *np, bool fill, uint64_t *rowsp)
{
	long long first_ms = clock_mono_ms();
	size_t n = *np, i = 0, k;
	uint64_t rows = 0;
	bool open = false;

	if (s->db == NULL)
		return GW_EIO;
	/* Delivery results land in the same transactions as new items. */
	if (forward_take_results(s->fw)) {
		/* Results alone: no fsync (store_relax()), no items join. */
		for (k = 0; k < n && !store_item_writes(&s->batch[k]); k++)
			;
		if (store_begin(s, k == n) != 0)
			goto fail;
		open = true;
		if (s->relaxed)
			fill = false;
		if (forward_apply_results(s->fw) != 0)
			goto fail;
	}
	for (;;) {
		for (; i < n; i++) {
			if (!store_item_writes(&s->batch[i]))
				continue;
			if (!open) {
				if (store_begin(s, false) != 0)
					goto fail;
				open = true;
			}
			if (store_write(s, &s->batch[i], &rows) != 0)
				goto fail;
		}
		if (!fill || n >= s->max_items ||
		    clock_mono_ms() - first_ms >= (long long)s->max_ms)
			break;
		k = queue_pop(s->q, s->batch + n, s->max_items - n, 0);
		if (k == 0)
			break;
		n += k;
		*np = n;
	}
	if (s->npend > 0 && store_flush_rows(s) != 0)
		goto fail;
	if (sink_sqlite_flush_all(s->sinks, s->nsinks, NULL, &rows) != 0)
		goto fail;
	/* Results pushed while this batch ran (their nudge is in it). */
	if (forward_take_results(s->fw)) {
		if (!open) {
			if (store_begin(s, true) != 0)
				goto fail;
			open = true;
		}
		if (forward_apply_results(s->fw) != 0)
			goto fail;
	}
	if (open && (forward_finish(s->fw) != 0 ||
	    store_step(s, ST_COMMIT) != 0))
		goto fail;
	if (open)
		forward_committed(s->fw);
	*rowsp = rows;
	return 0;

fail:
	if (log_ratelimited(&s->errlim, 5, 60000))
		log_error("store: %s: batch of %zu items failed, rolled back "
		    "and retried: %s (%d)", s->path, n, sqlite3_errmsg(s->db),
		    sqlite3_extended_errcode(s->db));
	if (heal_is_corrupt(sqlite3_extended_errcode(s->db))) {
		s->damaged = true;
		snprintf(s->damage, sizeof s->damage, "%s (%d)",
		    sqlite3_errmsg(s->db), sqlite3_extended_errcode(s->db));
	}
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->st[ST_ROLLBACK]);
		sqlite3_reset(s->st[ST_ROLLBACK]);
	}
	forward_rolled_back(s->fw);
	s->npend = 0;
	for (k = 0; k < s->nsinks; k++)
		sink_sqlite_discard(s->sinks[k]);
	return GW_EIO;
}

/* Whether the item changes the database at all. */
static bool
store_item_writes(const struct store_item *it)
{
	if (it->op >= STORE_OP_SESSION_SAVE || it->op == STORE_OP_QOS2_DEL)
		return true;
	return it->op == STORE_OP_PUBLISH && it->msg != NULL &&
	    ((it->flags & (STORE_F_ROW | STORE_F_RETAIN | STORE_F_QOS2)) != 0 ||
	    it->rules != NULL);
}

/* Steps a statement without results and resets it. 0 or GW_EIO. */
/* See store_int.h. */
int
store_step(struct store *s, enum store_stmt which)
{
	sqlite3_stmt *st = s->st[which];
	int rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : GW_EIO;
}

/* Binds a text or NULL; SQLITE_OK or an error code. */
static int
bind_text_or_null(sqlite3_stmt *st, int i, const char *t)
{
	if (t == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
}

/* Binds m's 5.0 property block (NULL when it has none) at i. */
static int
bind_props(sqlite3_stmt *st, int i, const struct msg *m)
{
	if (m->props == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_blob(st, i, m->props, (int)m->props_len,
	    SQLITE_STATIC);
}

/*
 * Persistent-session items (the session row and its queued messages) and
 * the removal of an expired retained message.
 */
static int
store_write_session(struct store *s, const struct store_item *it)
{
	const struct msg *m = it->msg;
	sqlite3_stmt *st;
	int bad = SQLITE_OK;

	switch (it->op) {
	case STORE_OP_SESSION_SAVE:
		st = s->st[ST_SESSION_UPSERT];
		bad |= bind_text_or_null(st, 1, it->client_id);
		bad |= bind_text_or_null(st, 2, it->text);
		bad |= sqlite3_bind_int64(st, 3, clock_wall_ms());
		bad |= it->key != 0 ? sqlite3_bind_int64(st, 4,
		    (sqlite3_int64)it->key) : sqlite3_bind_null(st, 4);
		bad |= sqlite3_bind_int(st, 5, it->protocol != 0 ?
		    it->protocol : 4);
		bad |= sqlite3_bind_int64(st, 6, (sqlite3_int64)it->expiry_s);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_SESSION_UPSERT);
	case STORE_OP_SESSION_DEL:
		st = s->st[ST_SESSION_DELETE];
		bad |= bind_text_or_null(st, 1, it->client_id);
		if (bad != SQLITE_OK || store_step(s, ST_SESSION_DELETE) != 0)
			return GW_EIO;
		st = s->st[ST_SMSG_DELETE_CLIENT];
		bad |= bind_text_or_null(st, 1, it->client_id);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_SMSG_DELETE_CLIENT);
	case STORE_OP_SMSG_ADD:
		if (m == NULL)
			return 0;
		st = s->st[ST_SMSG_INSERT];
		bad |= sqlite3_bind_int64(st, 1, (sqlite3_int64)it->key);
		bad |= bind_text_or_null(st, 2, it->client_id);
		bad |= sqlite3_bind_text(st, 3, m->topic, m->topic_len,
		    SQLITE_STATIC);
		bad |= sqlite3_bind_int(st, 4, it->qos);
		bad |= sqlite3_bind_int(st, 5, it->retain != 0);
		bad |= sqlite3_bind_int64(st, 6, m->received_ms);
		bad |= sqlite3_bind_blob(st, 7, m->payload,
		    (int)m->payload_len, SQLITE_STATIC);
		bad |= bind_props(st, 8, m);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_SMSG_INSERT);
	case STORE_OP_RETAIN_EXPIRE:
		if (m == NULL)
			return 0;
		st = s->st[ST_RETAIN_EXPIRE];
		bad |= sqlite3_bind_text(st, 1, m->topic, m->topic_len,
		    SQLITE_STATIC);
		bad |= sqlite3_bind_int64(st, 2, m->received_ms);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_RETAIN_EXPIRE);
	case STORE_OP_SMSG_DEL:
		st = s->st[ST_SMSG_DELETE];
		bad |= sqlite3_bind_int64(st, 1, (sqlite3_int64)it->key);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_SMSG_DELETE);
	case STORE_OP_SMSG_PUBREL:
		st = s->st[ST_SMSG_PUBREL];
		bad |= sqlite3_bind_int64(st, 1, (sqlite3_int64)it->key);
		bad |= sqlite3_bind_int(st, 2, it->packet_id);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_SMSG_PUBREL);
	}
	return 0;
}

/* Binds m's messages row at parameters base+1 .. base+6. */
static int
bind_row(sqlite3_stmt *st, int base, const struct msg *m)
{
	int bad;

	bad = sqlite3_bind_int64(st, base + 1, m->received_ms);
	bad |= sqlite3_bind_text(st, base + 2, m->topic, m->topic_len,
	    SQLITE_STATIC);
	if (m->client_id_len == 0)
		bad |= sqlite3_bind_null(st, base + 3);
	else
		bad |= sqlite3_bind_text(st, base + 3, m->client_id,
		    m->client_id_len, SQLITE_STATIC);
	bad |= sqlite3_bind_int(st, base + 4, m->qos);
	bad |= sqlite3_bind_int(st, base + 5, m->retain != 0);
	/*
	 * TEXT for valid UTF-8 without NUL ('' when empty), else BLOB.
	 * payload_len fits an int: MQTT caps packets at 256 MB.
	 */
	if (utf8_valid(m->payload, m->payload_len, false))
		bad |= sqlite3_bind_text(st, base + 6, (const char *)m->payload,
		    (int)m->payload_len, SQLITE_STATIC);
	else
		bad |= sqlite3_bind_blob(st, base + 6, m->payload,
		    (int)m->payload_len, SQLITE_STATIC);
	return bad;
}

/*
 * Inserts the pending messages rows: a full group with one statement
 * (less per-statement work per row), a partial one row by row. In order.
 * 0 or GW_EIO.
 */
static int
store_flush_rows(struct store *s)
{
	sqlite3_stmt *st;
	size_t i;
	int bad = SQLITE_OK, rc;

	if (s->npend == STORE_ROWS_MULTI && s->st_multi != NULL) {
		for (i = 0; i < s->npend; i++)
			bad |= bind_row(s->st_multi, (int)i * 6, s->pend[i]);
		rc = bad == SQLITE_OK ? sqlite3_step(s->st_multi) : bad;
		sqlite3_reset(s->st_multi);
		s->npend = 0;
		return rc == SQLITE_DONE ? 0 : GW_EIO;
	}
	st = s->st[ST_MSG_INSERT];
	for (i = 0; i < s->npend; i++) {
		if (bind_row(st, 0, s->pend[i]) != SQLITE_OK ||
		    store_step(s, ST_MSG_INSERT) != 0) {
			s->npend = 0;
			return GW_EIO;
		}
	}
	s->npend = 0;
	return 0;
}

/* Writes one item inside the open transaction; counts rows. */
static int
store_write(struct store *s, const struct store_item *it, uint64_t *rows)
{
	const struct msg *m = it->msg;
	const char *cid;
	sqlite3_stmt *st;
	int bad;

	if (it->op == STORE_OP_RULES)
		return store_write_rules_op(s, it, rows);
	if (it->op >= STORE_OP_SESSION_SAVE)
		return store_write_session(s, it);
	if (it->op == STORE_OP_QOS2_DEL) {
		cid = it->client_id;
		if (cid == NULL)
			cid = m != NULL ? m->client_id : "";
		st = s->st[ST_QOS2_DELETE];
		bad = sqlite3_bind_text(st, 1, cid, -1, SQLITE_STATIC);
		bad |= sqlite3_bind_int(st, 2, it->packet_id);
		return bad != SQLITE_OK ? GW_EIO :
		    store_step(s, ST_QOS2_DELETE);
	}

	if (it->flags & STORE_F_ROW) {
		/* Rows go in groups; the message outlives the batch. */
		s->pend[s->npend++] = m;
		if (s->npend == STORE_ROWS_MULTI && store_flush_rows(s) != 0)
			return GW_EIO;
		(*rows)++;
	}

	if (it->flags & STORE_F_RETAIN) {
		if (m->payload_len == 0) {
			st = s->st[ST_RETAIN_DELETE];
			bad = sqlite3_bind_text(st, 1, m->topic, m->topic_len,
			    SQLITE_STATIC);
			if (bad != SQLITE_OK ||
			    store_step(s, ST_RETAIN_DELETE) != 0)
				return GW_EIO;
		} else {
			st = s->st[ST_RETAIN_UPSERT];
			bad = sqlite3_bind_text(st, 1, m->topic, m->topic_len,
			    SQLITE_STATIC);
			bad |= sqlite3_bind_blob(st, 2, m->payload,
			    (int)m->payload_len, SQLITE_STATIC);
			bad |= sqlite3_bind_int(st, 3, m->qos);
			bad |= sqlite3_bind_int64(st, 4, m->received_ms);
			if (m->client_id_len == 0)
				bad |= sqlite3_bind_null(st, 5);
			else
				bad |= sqlite3_bind_text(st, 5, m->client_id,
				    m->client_id_len, SQLITE_STATIC);
			bad |= bind_props(st, 6, m);
			if (bad != SQLITE_OK ||
			    store_step(s, ST_RETAIN_UPSERT) != 0)
				return GW_EIO;
		}
	}

	if (it->flags & STORE_F_QOS2) {
		st = s->st[ST_QOS2_INSERT];
		/* A source's packet ids are keyed by it->client_id. */
		if (it->client_id != NULL)
			bad = sqlite3_bind_text(st, 1, it->client_id, -1,
			    SQLITE_STATIC);
		else
			bad = sqlite3_bind_text(st, 1, m->client_id,
			    m->client_id_len, SQLITE_STATIC);
		bad |= sqlite3_bind_int(st, 2, it->packet_id);
		if (bad != SQLITE_OK || store_step(s, ST_QOS2_INSERT) != 0)
			return GW_EIO;
	}
	if (it->rules != NULL)
		return store_write_rules(s, it, rows);
	return 0;
}

/* Memory an item holds while queued, for the queue's byte bound. */
static uint64_t
store_item_bytes(const struct store_item *it)
{
	const struct msg *m = it->msg;

	if (m == NULL)
		return sizeof *it;
	return sizeof *it + sizeof *m + m->payload_len + m->topic_len +
	    m->client_id_len + m->username_len;
}

/* Drops everything an item owns. */
void
store_item_free(struct store_item *it)
{
	msg_unref(&it->msg);
	gw_free(it->client_id);
	it->client_id = NULL;
	gw_free(it->text);
	it->text = NULL;
	if (it->nrules > STORE_RULE_INLINE)
		gw_free(it->rule_ids);
	it->rule_ids = NULL;
	it->nrules = 0;
	if (it->rules != NULL)
		rule_set_unref(&it->rules);
}

void
store_nudge(struct store *s)
{
	struct store_item it;
	uint64_t seq;

	memset(&it, 0, sizeof it);
	it.op = STORE_OP_BARRIER;
	(void)store_submit(s, &it, &seq);
}

void
store_set_forward(struct store *s, const struct forward_opts *o)
{
	s->fwo = *o;
	s->fwo_set = true;
	forward_configure(s->fw, o);
}

bool
store_outbox_full(struct store *s)
{
	struct forward *f = atomic_load(&s->fw_pub);

	return f != NULL && forward_full(f);
}

/* Drops what the committed items owned. */
static void
store_release(struct store *s, size_t n)
{
	uint64_t bytes = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		bytes += store_item_bytes(&s->batch[i]);
		store_item_free(&s->batch[i]);
	}
	atomic_fetch_sub_explicit(&s->queued_bytes, bytes,
	    memory_order_relaxed);
}

/*
 * Whether a checkpointer run asked for since the WAL passed
 * STORE_CKPT_PASSIVE left at most STORE_CKPT_TAIL to copy: the rest is then
 * copied between batches and the WAL starts over near STORE_CKPT_PASSIVE
 * (a growing WAL's flushes also commit the filesystem's journal).
 */
static bool
store_ckpt_tail(struct store *s)
{
	long long copied;
	uint64_t runs = checkpointer_runs(s->ckpt, &copied);

	if (s->ckpt_runs_from == 0) {
		/* A run under way may have begun before this WAL: skip it. */
		s->ckpt_runs_from = runs + 2;
		return false;
	}
	return runs >= s->ckpt_runs_from && copied <= s->wal_frames &&
	    (s->wal_frames - copied) * s->page_size <= STORE_CKPT_TAIL;
}

/*
 * Between batches: checkpoints when the WAL passed a threshold (final:
 * always, TRUNCATE, waiting busy_timeout). Failures are retried later.
 */
static void
store_checkpoint(struct store *s, bool final)
{
	long long bytes = s->wal_frames * s->page_size, now;
	int mode, rc, log_frames = 0, done = 0;

	now = clock_mono_ms();
	if (s->db == NULL || (final && s->abandoned))
		return;
	if (!final && (bytes < STORE_CKPT_PASSIVE || now < s->ckpt_next_ms))
		return;
	if (!final && s->ckpt != NULL && !s->healed &&
	    bytes < STORE_CKPT_INLINE && !store_ckpt_tail(s)) {
		/*
		 * Off the commit path. Under sustained ingest the writer keeps
		 * appending while it copies, so the WAL cannot start over;
		 * once the checkpointer has left at most STORE_CKPT_TAIL
		 * behind, or past STORE_CKPT_INLINE, one checkpoint runs
		 * here, between batches, with little left to copy, and the
		 * WAL restarts.
		 */
		checkpointer_request(s->ckpt);
		s->ckpt_next_ms = now + 50;
		return;
	}
	mode = final || bytes >= STORE_CKPT_TRUNCATE ?
	    SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
	if (!final && mode == SQLITE_CHECKPOINT_TRUNCATE)
		s->busy_off = true;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, mode, &log_frames, &done);
	if (!final && mode == SQLITE_CHECKPOINT_TRUNCATE)
		s->busy_off = false;
	if (rc == SQLITE_OK && (mode == SQLITE_CHECKPOINT_TRUNCATE ||
	    done >= log_frames)) {
		/* The next commit restarts the WAL; its hook tells the size. */
		s->wal_frames = 0;
		s->ckpt_runs_from = 0;
		atomic_fetch_add_explicit(&s->checkpoints, 1,
		    memory_order_relaxed);
		log_debug("store: checkpoint of %lld bytes done", bytes);
		return;
	}
	s->ckpt_next_ms = now + STORE_CKPT_RETRY_MS;
	if (rc != SQLITE_OK && rc != SQLITE_BUSY &&
	    log_ratelimited(&s->errlim, 5, 60000))
		log_warn("store: %s: checkpoint failed: %s", s->path,
		    sqlite3_errmsg(s->db));
	else
		log_debug("store: checkpoint incomplete (%d of %d frames), "
		    "a reader holds the WAL", done, log_frames);
}

static void
store_sleep_ms(unsigned ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
