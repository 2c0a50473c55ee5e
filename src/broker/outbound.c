/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery to subscribers. A published message is matched against the
 * subscription trie once; a session with several matching filters gets it
 * once, at the highest granted QoS, downgraded to the QoS it was published
 * with. QoS 0 goes straight to the client's output buffer (dropped and
 * counted when that buffer is over its bound: a subscriber that does not
 * read cannot make us grow). QoS 1/2 enter the in-flight window
 * (max_inflight) or wait in the session queue (max_queued, drops beyond it
 * counted and logged); the queue refills the window as acks arrive, which
 * keeps order per session. A copy kept for a persistent session gets the
 * packet id its session_msgs row id gives, so a restart resends it with
 * the same id. Every delivery is checked against the receiving session's
 * ACL read rules first (access.c).
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/subs.h"
#include "config.h"
#include "err.h"
#include "mem.h"

static bool
session_online(const struct session *s)
{
	return s->client != NULL && s->client->state == CLIENT_CONNECTED;
}

/* Appends the PUBLISH for o to the client's output. */
static int
send_publish(struct broker *b, struct client *c, const struct out_msg *o,
    bool dup)
{
	struct msg *m = o->m;
	int rc;

	rc = proto5_encode_publish(c, &c->conn.out, m, o->qos, o->retain != 0,
	    dup, o->pid);
	if (rc == 0) {
		b->stats.publish_out++;
		client_want_flush(c);
	}
	return rc;
}

/*
 * The packet id to send o with. A copy kept in session_msgs takes the id
 * its row id gives, so after a restart it goes out with the same id again
 * (MQTT resends keep their ids; a QoS 2 receiver still holding the id
 * recognises the resend). Others take the next free id. 0 when the id is
 * still in flight with an older message: o waits in the queue.
 */
static uint16_t
outbound_pid(struct session *s, const struct out_msg *o)
{
	uint16_t pid;

	if (o->key == 0)
		return session_next_pid(s);
	pid = (uint16_t)(o->key % 65535 + 1);
	return session_inflight_find(s, pid) == NULL ? pid : 0;
}

static void
log_drop(struct broker *b, struct session *s, const char *what,
    const struct msg *m)
{
	log_limited(&b->drop_log, BROKER_LOG_BURST, BROKER_LOG_PERIOD_MS,
	    LOG_LVL_WARN, "client %s: dropping %s message on %s",
	    s->client_id, what, m->topic);
	if (b->drop_log.suppressed > 0)
		broker_log_later(b);
}

void
outbound_deliver(struct broker *b, struct session *s, struct msg *m,
    uint8_t qos, bool retain)
{
	struct client *c = s->client;
	struct out_msg o;

	if (!access_deliver(b, s, m, true))
		return;
	memset(&o, 0, sizeof o);
	o.qos = qos;
	o.retain = retain;
	if (qos == 0) {
		if (!session_online(s))
			return;
		if (buf_used(&c->conn.out) > b->out_limit &&
		    conn_flush(&c->conn) != 0 &&
		    buf_used(&c->conn.out) > b->out_limit) {
			b->stats.dropped_qos0++;
			log_drop(b, s, "QoS 0 (client not reading)", m);
			return;
		}
		o.m = m;
		send_publish(b, c, &o, false);
		return;
	}
	o.m = msg_ref(m);
	if (!s->clean && (s->qlen < b->cfg->max_queued ||
	    s->ninflight < b->cfg->max_inflight))
		o.key = persist_msg_add(b, s, m, qos, retain);
	if (session_online(s) && s->qlen == 0 &&
	    s->ninflight < proto5_window(b, s) &&
	    (o.pid = outbound_pid(s, &o)) != 0) {
		o.state = qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC;
		if (session_inflight_add(s, &o, b->cfg->max_inflight) == 0) {
			send_publish(b, c, &o, false);
			return;
		}
		o.pid = 0;
		o.state = OUT_QUEUED;
	}
	if (session_queue_push(s, &o, b->cfg->max_queued) != 0) {
		persist_msg_delete(b, o.key);
		msg_unref(&o.m);
		b->stats.dropped_queue_full++;
		log_drop(b, s, "queued (max_queued reached)", m);
	}
}

void
outbound_pump(struct broker *b, struct session *s)
{
	struct client *c = s->client;
	struct out_msg o;
	uint16_t pid;

	if (!session_online(s))
		return;
	while (s->qlen > 0 && s->ninflight < proto5_window(b, s) &&
	    buf_used(&c->conn.out) <= b->out_limit &&
	    (pid = outbound_pid(s, session_queue_peek(s))) != 0) {
		session_queue_pop(s, &o);
		if (!access_deliver(b, s, o.m, false)) {
			persist_msg_delete(b, o.key);
			msg_unref(&o.m);
			continue;
		}
		o.pid = pid;
		o.state = o.qos == 1 ? OUT_WAIT_PUBACK : OUT_WAIT_PUBREC;
		if (session_inflight_add(s, &o, b->cfg->max_inflight) != 0) {
			persist_msg_delete(b, o.key);
			msg_unref(&o.m);
			b->stats.dropped_queue_full++;
			return;
		}
		send_publish(b, c, &o, false);
	}
}

void
outbound_resume(struct broker *b, struct session *s)
{
	struct client *c = s->client;
	struct out_msg *o;
	size_t i;

	for (i = 0; i < s->ninflight; i++) {
		o = &s->inflight[i];
		if (o->state == OUT_WAIT_PUBCOMP)
			proto5_send_ack(c, CODEC_PUBREL, o->pid, 0);
		else
			send_publish(b, c, o, true);
	}
	client_want_flush(c);
	outbound_pump(b, s);
}

/* What match_cb() needs besides the broker: the message matched. */
struct match_ctx {
	struct broker		*b;
	const struct msg	*m;
};

/*
 * One matching subscription (owner, its QoS byte with the 5.0 options);
 * a No Local one does not match the subscriber's own publish.
 */
static void
match_cb(void *owner, uint8_t opts, void *arg)
{
	struct match_ctx *mc = arg;
	struct broker *b = mc->b;
	struct session *s = owner, **nv;
	uint8_t qos = opts & SESSION_SUB_QOS;
	size_t n;

	if ((opts & SESSION_SUB_NO_LOCAL) && mc->m->source == NULL &&
	    mc->m->client_id_len == s->id_len &&
	    memcmp(mc->m->client_id, s->client_id, s->id_len) == 0)
		return;
	if (s->match_gen == b->match_gen) {
		if (qos > s->match_qos)
			s->match_qos = qos;
		s->match_rap |= (opts & SESSION_SUB_RAP) != 0;
		return;
	}
	if (b->nmatched == b->capmatched) {
		n = b->capmatched ? b->capmatched * 2 : 16;
		if ((nv = gw_realloc(b->matched, n * sizeof *nv)) == NULL)
			return;
		b->matched = nv;
		b->capmatched = n;
	}
	s->match_gen = b->match_gen;
	s->match_qos = qos;
	s->match_rap = (opts & SESSION_SUB_RAP) != 0;
	b->matched[b->nmatched++] = s;
}

void
outbound_fanout(struct broker *b, struct msg *m)
{
	struct match_ctx mc = { b, m };
	struct session *s;
	size_t i;
	uint8_t qos;

	b->match_gen++;
	b->nmatched = 0;
	subs_match(b->subs, m->topic, m->topic_len, match_cb, &mc);
	for (i = 0; i < b->nmatched; i++) {
		s = b->matched[i];
		qos = s->match_qos < m->qos ? s->match_qos : m->qos;
		outbound_deliver(b, s, m, qos, s->match_rap && m->retain);
	}
}

struct retained_ctx {
	struct broker	*b;
	struct session	*s;
	uint8_t		 qos;
	bool		 full;		/* output over out_limit: QoS 0 drops */
};

/*
 * One retained message for a new subscription. Each counts as work of the
 * client's turn; once its output is past the limit, the remaining QoS 0
 * ones are dropped at once (counted) instead of trying a write for each.
 */
static void
retained_cb(struct msg *m, void *arg)
{
	struct retained_ctx *rc = arg;
	struct client *c = rc->s->client;
	uint8_t qos = rc->qos < m->qos ? rc->qos : m->qos;

	if (c != NULL)
		c->turn_work++;
	if (qos == 0 && rc->full) {
		rc->b->stats.dropped_qos0++;
		return;
	}
	outbound_deliver(rc->b, rc->s, m, qos, true);
	if (qos == 0 && c != NULL && buf_used(&c->conn.out) > rc->b->out_limit)
		rc->full = true;
}

void
outbound_send_retained(struct broker *b, struct session *s,
    const char *filter, size_t len, uint8_t qos)
{
	struct retained_ctx rc = { b, s, qos, false };

	retain_match(b->retain, filter, len, retained_cb, &rc);
	retain_match(b->sys_retain, filter, len, retained_cb, &rc);
}

void
outbound_drop_session(struct broker *b, struct session *s)
{
	size_t i;

	for (i = 0; i < s->nsubs; i++)
		subs_remove(b->subs, s->subs[i].filter, s->subs[i].len, s);
	if (s->qos2_in_count > 0)
		broker_store_qos2_clear(b, s->client_id);
	if (!s->clean)
		persist_session_delete(b, s);
	if (s->client != NULL)
		s->client->sess = NULL;
	session_destroy(b->sessions, s);
}
