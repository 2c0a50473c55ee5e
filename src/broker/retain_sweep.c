/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sweep of expired retained messages. A retained message whose MQTT
 * 5.0 Message Expiry Interval has passed is never delivered; without a
 * sweep it would be removed only when a subscription matched it, so one
 * on a topic nobody subscribes to would stay in memory and in the
 * retained table forever and hold a slot of limits.max_retained and
 * limits.retained_bytes.
 *
 * The trie keeps its expiring messages in a heap ordered by expiry
 * (retain.c), so the sweep looks only at messages that are due. One broker
 * timer on the loop is armed at the earliest expiry plus
 * RETAIN_SWEEP_SLACK_MS (expiries close together go in one run); with no
 * retained message carrying an expiry (a 3.1.1-only broker) it is never
 * armed and nothing runs. A run removes at most RETAIN_SWEEP_BATCH
 * messages and, when more are due, runs again on the next loop iteration,
 * so a large set expiring at once never holds the loop. The timer sleeps
 * at most RETAIN_SWEEP_MAX_SLEEP_MS, so a step of the wall clock (on which
 * expiry is measured) delays a removal by at most that.
 *
 * Each removal goes to the store as STORE_OP_RETAIN_EXPIRE, on the same
 * queue as the publishes, and deletes the row only while it is still that
 * message (topic and received_ms): a newer retained message submitted
 * before it is never lost. The message leaves memory only once its store
 * item is queued; on a full store queue it stays (memory and table agree)
 * and the sweep tries again RETAIN_SWEEP_RETRY_MS later.
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "clock.h"
#include "store/store.h"

#define RETAIN_SWEEP_BATCH		256	/* removals per run */
#define RETAIN_SWEEP_SLACK_MS		200	/* after the earliest expiry */
#define RETAIN_SWEEP_MAX_SLEEP_MS	60000	/* bound on one wait */
#define RETAIN_SWEEP_RETRY_MS		1000	/* after a full store queue */

static void	retain_sweep_cb(struct ev_loop *, void *);

/* Arms the timer at at (monotonic ms) unless it fires earlier already. */
static void
retain_sweep_at(struct broker *b, long long at)
{
	if (b->retain_timer.heap_index != 0 &&
	    b->retain_timer.deadline_ms <= at)
		return;
	ev_timer_set(b->loop, &b->retain_timer, at, retain_sweep_cb, b);
}

/*
 * Arms the sweep for the retained message that expires first; nothing
 * when no retained message carries an expiry. Call after keeping a
 * retained message with one. Loop thread.
 */
void
retain_sweep_arm(struct broker *b)
{
	struct msg *m;
	long long left;

	if ((m = retain_next_expiring(b->retain)) == NULL)
		return;
	left = m->expire_ms - clock_wall_ms();
	if (left < 0)
		left = 0;
	if (left > RETAIN_SWEEP_MAX_SLEEP_MS)
		left = RETAIN_SWEEP_MAX_SLEEP_MS;
	retain_sweep_at(b, ev_now(b->loop) + left + RETAIN_SWEEP_SLACK_MS);
}

/*
 * Removes up to RETAIN_SWEEP_BATCH expired retained messages from memory
 * and, through the store, from the database, then rearms.
 */
static void
retain_sweep_run(struct broker *b)
{
	struct store_item it;
	struct msg *m;
	long long now = clock_wall_ms(), next = 0;
	size_t done = 0;

	if (b->intake_stopped)
		return;
	while ((m = retain_next_expiring(b->retain)) != NULL &&
	    msg_expired(m, now)) {
		if (done == RETAIN_SWEEP_BATCH) {
			/* More are due: after the loop's next I/O. */
			next = ev_now(b->loop) + 1;
			break;
		}
		memset(&it, 0, sizeof it);
		it.op = STORE_OP_RETAIN_EXPIRE;
		it.msg = msg_ref(m);
		if (broker_submit(b, &it) != 0) {
			msg_unref(&it.msg);
			if (log_ratelimited(&b->err_log, 5, 10000))
				log_warn("store queue full: expired retained "
				    "messages are removed later");
			next = ev_now(b->loop) + RETAIN_SWEEP_RETRY_MS;
			break;
		}
		/* The store holds its own reference; m is gone after this. */
		retain_remove(b->retain, m);
		b->stats.expired++;
		b->stats.retained_expired++;
		done++;
	}
	if (done > 0)
		log_debug("removed %zu expired retained messages, %zu with an "
		    "expiry left", done, retain_expiring(b->retain));
	if (next != 0)
		retain_sweep_at(b, next);
	else
		retain_sweep_arm(b);
}

static void
retain_sweep_cb(struct ev_loop *loop, void *arg)
{
	(void)loop;
	retain_sweep_run(arg);
}
