/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-connection resource guards: what one peer may make the broker hold.
 *
 * Output. limits.output_bytes is the output buffer one connection may
 * hold. Once its pending output passes half of that, the connection is not
 * read until it drains below a quarter: a peer that sends requests
 * (PINGREQ, PUBREL, SUBSCRIBE) and never reads the answers stops being
 * read, so the answers cannot pile up (Mosquitto does the same). Stopping
 * at half leaves room for the answer to the packet being handled without
 * the buffer (which grows by doubling) growing past output_bytes.
 *
 * Store share. The store queue is shared. While it is more than half full
 * (items or bytes), one connection may have at most 1/32 of its items (at
 * least 64) submitted and not yet committed, so a client that publishes
 * as fast as it can neither fills the queue nor puts a long backlog of
 * commits in front of every other publisher's ack; while the store keeps
 * up, nobody is held back.
 *
 * Input. The buffers holding bytes read but not parsed yet (a partial
 * packet, at most max_packet_bytes per connection) are counted over all
 * connections. When the total passes limits.input_budget, the connection
 * whose read passed it is not read, and the connection with a partial
 * packet that received nothing for the longest time is closed, until the
 * total is back within the budget; then the paused ones are read again.
 * Connections without a partial packet are always read, so small complete
 * packets keep flowing.
 *
 * Stalls. A connection with pending output that the peer does not take, or
 * with a partial packet that the peer does not complete, and no byte moved
 * either way for limits.stall_timeout, is closed, whatever its keepalive.
 * One timer per connection, armed only while it is stalled.
 *
 * Retained messages. A publish with the retain flag on a topic that holds
 * no retained message yet is kept as retained only while fewer than
 * limits.max_retained topics are kept and their payloads stay within
 * limits.retained_bytes (and the topic has at most TOPIC_MAX_LEVELS
 * levels); otherwise it is still stored and delivered, just not retained.
 * Replacing or clearing a retained message always works.
 *
 * Loop thread only, like the rest of the broker.
 */
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/topic.h"
#include "config.h"
#include "mqtt/reason.h"
#include "store/store.h"

static void	guard_stall_cb(struct ev_loop *, void *);

/*
 * Whether c must not be parsed further: its pending output is past half
 * of output_bytes even after a flush. Marks c out_blocked, counts, logs.
 */
bool
guard_output_full(struct client *c)
{
	size_t lim = c->b->cfg->output_bytes / 2, before;
	int rc;

	if ((before = buf_used(&c->conn.out)) <= lim)
		return false;
	rc = conn_flush(&c->conn);
	if (buf_used(&c->conn.out) < before)
		c->b->stats.bytes_out += before - buf_used(&c->conn.out);
	if (rc == 0 || buf_used(&c->conn.out) <= lim) {
		c->out_progress = true;
		return false;
	}
	if (!c->out_blocked) {
		c->out_blocked = true;
		c->b->stats.output_pauses++;
		if (log_ratelimited(&c->b->guard_log, 10, 10000))
			client_log(LOG_LVL_INFO, c, "not reading: %zu bytes of "
			    "output pending (limits.output_bytes %zu)",
			    buf_used(&c->conn.out), c->b->cfg->output_bytes);
	}
	return true;
}

/* Whether an out_blocked c drained below a quarter (then unblocks it). */
bool
guard_output_drained(struct client *c)
{
	if (!c->out_blocked ||
	    buf_used(&c->conn.out) > c->b->cfg->output_bytes / 4)
		return false;
	c->out_blocked = false;
	return true;
}

/*
 * Counts the store items the packet just handled submitted (c->last_seq
 * moved from before); a window of c's items ends once all are committed.
 */
void
guard_store_count(struct client *c, uint64_t before)
{
	if (c->last_seq == before)
		return;
	if (c->win_last <= store_committed_seq(c->b->store))
		c->win_items = 0;
	c->win_items += c->last_seq - before;
	c->win_last = c->last_seq;
}

/* Whether c holds its share of the store queue, uncommitted. */
bool
guard_store_hog(struct client *c)
{
	size_t items = c->b->cfg->store_queue_items, share = items / 32;

	if (c->win_items <= (share < 64 ? 64 : share) ||
	    (store_queue_free(c->b->store) > items / 2 &&
	    store_queue_bytes(c->b->store) < c->b->cfg->store_queue_bytes / 2))
		return false;
	if (c->win_last <= store_committed_seq(c->b->store)) {
		c->win_items = 0;
		return false;
	}
	c->b->stats.store_share_pauses++;
	return true;
}

/* Brings c's share of the broker's input_bytes up to date. */
void
guard_input_account(struct client *c)
{
	struct broker *b = c->b;
	size_t used;

	/* The memory held, not just the bytes: a partial packet keeps its
	 * whole (grown) buffer. */
	used = c->state == CLIENT_CLOSING || buf_used(&c->conn.in) == 0 ? 0 :
	    c->conn.in.cap;

	b->input_bytes = b->input_bytes - c->in_counted + used;
	c->in_counted = used;
}

/*
 * Whether c, holding a partial packet, must not be read while the input
 * budget is spent (marks it in_blocked).
 */
bool
guard_input_blocked(struct client *c)
{
	struct broker *b = c->b;

	if (buf_used(&c->conn.in) == 0 ||
	    b->input_bytes <= b->cfg->input_budget)
		return false;
	if (!c->in_blocked) {
		c->in_blocked = true;
		b->nin_blocked++;
		b->stats.input_pauses++;
	}
	return true;
}

/* Closes the partial-packet holder that has waited longest. */
static bool
guard_shed_one(struct broker *b)
{
	struct client *c, *victim = NULL;

	LIST_FOREACH(c, &b->clients, link) {
		guard_input_account(c);
		if (c->state == CLIENT_CLOSING || c->in_counted == 0)
			continue;
		if (victim == NULL || c->last_rx_ms < victim->last_rx_ms)
			victim = c;
	}
	if (victim == NULL)
		return false;
	b->stats.input_shed++;
	if (log_ratelimited(&b->guard_log, 10, 10000))
		client_log(LOG_LVL_WARN, victim, "closing: limits.input_budget "
		    "(%llu bytes) spent by partial packets, this one waited "
		    "longest", (unsigned long long)b->cfg->input_budget);
	b->input_bytes -= victim->in_counted;
	victim->in_counted = 0;
	proto5_disconnect(victim, REASON_QUOTA_EXCEEDED, NULL);
	return true;
}

/*
 * Closes partial-packet holders, longest waiting first, until the input
 * is within the budget; then lets the blocked ones be read again. Returns
 * whether any was unblocked.
 */
bool
guard_input_balance(struct broker *b)
{
	struct client *c;
	bool resumed = false;

	while (b->input_bytes > b->cfg->input_budget)
		if (!guard_shed_one(b))
			break;
	if (b->nin_blocked == 0 || b->input_bytes > b->cfg->input_budget)
		return false;
	LIST_FOREACH(c, &b->clients, link) {
		if (c->in_blocked) {
			c->in_blocked = false;
			if (conn_pending(&c->conn) > 0)
				client_input_resume(c);
			else
				client_set_events(c);
			resumed = true;
		}
	}
	b->nin_blocked = 0;
	return resumed;
}

/* Drops c's input accounting and stall timer (c is being destroyed). */
void
guard_forget(struct client *c)
{
	struct broker *b = c->b;

	b->input_bytes -= c->in_counted;
	c->in_counted = 0;
	if (c->in_blocked) {
		c->in_blocked = false;
		b->nin_blocked--;
	}
	ev_timer_cancel(b->loop, &c->stall_timer);
}

/* Whether the peer, not the broker, keeps c from making progress. */
static bool
guard_stalled(const struct client *c)
{
	if (c->state != CLIENT_CONNECTED && c->state != CLIENT_NEW)
		return false;
	if (buf_used(&c->conn.out) > 0)
		return true;
	return buf_used(&c->conn.in) > 0 && !c->read_paused &&
	    !c->out_blocked;
}

/*
 * Arms, keeps or cancels c's stall timer after I/O; progress says bytes
 * moved (read, or written when out_progress is set).
 */
void
guard_stall_update(struct client *c, bool progress)
{
	struct ev_loop *loop = c->b->loop;

	if (progress || c->out_progress || c->stall_timer.heap_index == 0)
		c->stall_since = ev_now(loop);
	c->out_progress = false;
	if (!guard_stalled(c)) {
		ev_timer_cancel(loop, &c->stall_timer);
		return;
	}
	if (c->stall_timer.heap_index == 0)
		ev_timer_set(loop, &c->stall_timer,
		    c->stall_since + c->b->cfg->stall_timeout_ms,
		    guard_stall_cb, c);
}

static void
guard_stall_cb(struct ev_loop *loop, void *arg)
{
	struct client *c = arg;
	long long due = c->stall_since + c->b->cfg->stall_timeout_ms;

	if (!guard_stalled(c))
		return;
	if (due > ev_now(loop)) {
		ev_timer_set(loop, &c->stall_timer, due, guard_stall_cb, c);
		return;
	}
	c->b->stats.stall_closed++;
	if (log_ratelimited(&c->b->guard_log, 10, 10000))
		client_log(LOG_LVL_INFO, c, "closing: stalled for %u ms with "
		    "%zu bytes to send and %zu received, not parsed yet "
		    "(limits.stall_timeout)", c->b->cfg->stall_timeout_ms,
		    buf_used(&c->conn.out), buf_used(&c->conn.in));
	/* Nothing more can be written to this peer: drop what is pending. */
	buf_reset(&c->conn.out);
	client_close_now(c, NULL);
}

/*
 * Whether the retained publish m may be kept as retained (see the top of
 * the file); counts and logs a refusal. Borrows m.
 */
bool
guard_retain_admit(struct broker *b, const struct msg *m)
{
	const char *why = NULL;

	if (m->payload_len == 0 ||
	    retain_get(b->retain, m->topic, m->topic_len) != NULL)
		return true;
	if (topic_levels(m->topic, m->topic_len) > TOPIC_MAX_LEVELS)
		why = "more than 200 topic levels";
	else if (retain_count(b->retain) >= b->cfg->max_retained)
		why = "limits.max_retained reached";
	else if (retain_bytes(b->retain) + m->payload_len >
	    b->cfg->retained_bytes)
		why = "limits.retained_bytes reached";
	if (why == NULL)
		return true;
	b->stats.retained_refused++;
	if (log_ratelimited(&b->guard_log, 10, 10000))
		log_warn("retained message on %s not kept: %s", m->topic, why);
	return false;
}
