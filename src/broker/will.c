/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * Will messages. A connection that ends without a normal DISCONNECT (or
 * with a 5.0 DISCONNECT of reason 0x04) has its will published. As in
 * Mosquitto 2, the will topic is checked against the ACL in force when
 * the will is due, not at CONNECT: a will the client may not write is
 * dropped (logged, counted as a denied publish).
 *
 * A 5.0 client may ask for a Will Delay Interval. Its will then waits on
 * the session (which outlives the connection) and is published when the
 * delay has passed or when the session ends, whichever comes first; a new
 * connection with the same client id within the delay cancels it (also a
 * takeover). A session that ends at the close publishes the will at once.
 * The wait is driven by the session expiry sweep (expire.c), so a delayed
 * will is published within about a second of its due time. A delayed will
 * lives in memory only: one still waiting when the daemon stops is not
 * published.
 */
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "clock.h"

/* Publishes will (takes the reference) unless the ACL refuses it. */
void
will_publish(struct broker *b, struct msg *will)
{
	if (will == NULL)
		return;
	if (b->intake_stopped) {
		msg_unref(&will);
		return;
	}
	if (!access_may_publish(b, will->username, will->client_id,
	    will->topic, will->topic_len)) {
		b->access_stats.publish_denied++;
		log_warn("client %s: will on %s not published: not authorized "
		    "by the ACL", will->client_id, will->topic);
	} else {
		msg_restamp(will, clock_wall_ms());
		log_info("client %s: publishing will on %s", will->client_id,
		    will->topic);
		broker_accept_publish(b, NULL, will, 0);
	}
	msg_unref(&will);
}

void
will_client_gone(struct client *c)
{
	struct broker *b = c->b;
	struct session *s = c->sess;
	struct msg *will = c->will;

	c->will = NULL;
	if (will == NULL)
		return;
	if (c->clean_disconnect) {
		msg_unref(&will);
		return;
	}
	if (c->will_delay == 0 || s == NULL || s->client != c || s->clean ||
	    s->expiry_s == 0 || b->intake_stopped) {
		will_publish(b, will);
		return;
	}
	msg_unref(&s->will);
	s->will = will;
	s->will_due = clock_wall_ms() + (long long)c->will_delay * 1000;
	client_log(LOG_LVL_INFO, c, "will on %s due in %u s unless the client "
	    "comes back", will->topic, c->will_delay);
	expire_will_arm(b, s->will_due);
}

void
will_cancel(struct session *s)
{
	if (s->will != NULL)
		log_info("client %s: back within its will delay: will on %s "
		    "cancelled", s->client_id, s->will->topic);
	msg_unref(&s->will);
	s->will_due = 0;
}
