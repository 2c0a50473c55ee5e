/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store's statistics, read from any thread; see store.h.
 *
 * DESIGN
 *
 * The store thread (writer.c) keeps its counters in atomics of struct
 * store (store_int.h) and publishes the retention pruner once it runs;
 * the getters here only load them (relaxed, except committed_seq which
 * is acquired so the commit happened-before) and add what the
 * checkpointer, the forwarder and the process I/O counters report. They
 * never take the store's lock nor wait for its thread, so the metrics
 * endpoint, $SYS and the wear log line cost nothing on the write path.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "store/checkpoint.h"
#include "store/forward.h"
#include "store/iostat.h"
#include "store/retention.h"
#include "store/store.h"
#include "store/store_int.h"

/* Highest durable seq; acquire, so the commit happened-before. */
uint64_t
store_committed_seq(struct store *s)
{
	return atomic_load_explicit(&s->committed_seq, memory_order_acquire);
}

/* Retention counters (rows pruned, sizes). Any thread. */
void
store_get_retention_stats(struct store *s, struct retention_stats *st)
{
	struct retention *r = atomic_load(&s->ret_pub);

	if (r != NULL)
		retention_get_stats(r, st);
	else
		memset(st, 0, sizeof *st);
}

/* Snapshot of the counters. Any thread. */
void
store_get_stats(struct store *s, struct store_stats *st)
{
	st->rows = atomic_load_explicit(&s->rows, memory_order_relaxed);
	st->batches = atomic_load_explicit(&s->batches, memory_order_relaxed);
	st->commit_failures = atomic_load_explicit(&s->commit_failures,
	    memory_order_relaxed);
	st->committed_seq = store_committed_seq(s);
	st->wal_bytes = atomic_load_explicit(&s->wal_bytes,
	    memory_order_relaxed);
	st->checkpoints = atomic_load_explicit(&s->checkpoints,
	    memory_order_relaxed) + (s->ckpt != NULL ?
	    checkpointer_count(s->ckpt) : 0);
	st->failing = atomic_load_explicit(&s->failing, memory_order_relaxed);
	st->last_commit_ms = atomic_load_explicit(&s->last_commit_ms,
	    memory_order_relaxed);
	st->queue_items = queue_len(s->q);
	st->dead_pruned = forward_dead_pruned(s->fw);
	st->write_bytes = iostat_write_bytes();
	st->fsyncs = iostat_fsyncs();
	st->rollup_windows = atomic_load(&s->roll_count.windows);
	st->rollup_rows = atomic_load(&s->roll_count.rows);
	st->rollup_errors = atomic_load(&s->roll_count.errors);
	st->rollup_skipped = atomic_load(&s->roll_count.skipped);
}

/* See store.h. */
const struct metrics_hist *
store_commit_hist(const struct store *s)
{
	return &s->commit_hist;
}

/*
 * Logs the wear line: rows, commits, bytes written and flushes, and both
 * per stored row since the start (what an SD card cares about). Any
 * thread.
 */
void
store_log_status(struct store *s, const char *what)
{
	struct store_stats st;
	double rows;

	store_get_stats(s, &st);
	rows = st.rows > 0 ? (double)st.rows : 1.0;
	log_info("%s: %llu rows written in %llu commits; storage: %llu bytes "
	    "written, %llu flushes; per row %.0f bytes, %.3f flushes", what,
	    (unsigned long long)st.rows, (unsigned long long)st.batches,
	    (unsigned long long)st.write_bytes,
	    (unsigned long long)st.fsyncs, (double)st.write_bytes / rows,
	    (double)st.fsyncs / rows);
}
