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
 *
 * MQTT 5.0: the PUBLISH is encoded per subscriber. A 5.0 client gets the
 * message's forwardable properties (msg.h) with the Message Expiry
 * Interval lowered to what is left of it; a 3.1.1 client gets the plain
 * message. A message whose PUBLISH would exceed the Maximum Packet Size
 * the client set is not sent to it (counted, logged rate-limited), as
 * 3.1.2.11.4 asks. A message whose expiry passed before its delivery
 * started (waiting in a session queue, or retained) is dropped and its
 * stored copy deleted; the onward delivery to a client online when the
 * message arrives starts at once, so it never expires on the way. A 5.0
 * client that takes topic aliases gets them for the first topics sent to
 * it (alias.c).
 *
 * Subscription Identifiers: a 5.0 PUBLISH carries the identifiers of the
 * receiving session's subscriptions that match its topic at the time the
 * PUBLISH is written (a queued message takes those of when it leaves the
 * queue, so a subscription changed meanwhile gives its new identifier and
 * one removed gives none). A shared message carries the identifier of the
 * member's subscription to its group; a retained message sent for a new
 * subscription carries that subscription's identifier only. A session
 * without identifiers skips all of this: nsub_ids is 0. The identifiers
 * go into a scratch array of the session, grown to its nsub_ids, so a
 * delivery allocates nothing.
 */
#include <string.h>

#include "broker/alias.h"
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "broker/topic.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec5.h"
#include "store/store.h"

static void	deliver(struct broker *, struct session *, struct msg *,
		    uint8_t, bool, uint32_t, uint32_t);

static bool
session_online(const struct session *s)
{
	return s->client != NULL && s->client->state == CLIENT_CONNECTED;
}

/* Whether m was published by s's own client (for No Local). */
static bool
own_publish(const struct msg *m, const struct session *s)
{
	return m->source == NULL && m->client_id_len == s->id_len &&
	    memcmp(m->client_id, s->client_id, s->id_len) == 0;
}

/*
 * The Subscription Identifiers o goes out with to s (see the top of the
 * file): points *ids at them (borrowed from o or s) and returns how many.
 */
static size_t
publish_sub_ids(struct broker *b, struct session *s, const struct out_msg *o,
    const uint32_t **ids)
{
	const struct msg *m = o->m;
	const struct sub_entry *e;
	uint32_t *nv;
	size_t i, n = 0;
	bool shared;

	if (o->sub_id != 0) {
		*ids = &o->sub_id;
		return o->sub_id != OUT_SUB_ID_NONE;
	}
	if (s->nsub_ids == 0)
		return 0;
	if (s->capids < s->nsub_ids) {
		if ((nv = gw_realloc(s->ids, s->nsub_ids * sizeof *nv)) ==
		    NULL)
			return 0;
		s->ids = nv;
		s->capids = s->nsub_ids;
	}
	for (i = 0; i < s->nsubs && n < s->nsub_ids; i++) {
		e = &s->subs[i];
		if (e->id == 0)
			continue;
		shared = share_is(e->filter, e->len);
		if (o->share != 0) {
			if (!shared || share_tab_id(b->shares, e->filter,
			    e->len) != o->share)
				continue;
		} else if (shared || !topic_matches(e->filter, e->len,
		    m->topic, m->topic_len) || ((e->qos &
		    SESSION_SUB_NO_LOCAL) && own_publish(m, s)))
			continue;
		s->ids[n++] = e->id;
	}
	*ids = s->ids;
	return n;
}

/* Sets the n identifiers ids on *pp (or on a cleared *pp when pr is NULL). */
static const struct props *
props_with_ids(const struct props *pr, struct props *pp, const uint32_t *ids,
    size_t n)
{
	if (n == 0)
		return pr;
	if (pr == NULL)
		memset(pp, 0, sizeof *pp);
	pp->sub_ids = ids;
	pp->n_sub_id = (unsigned)n;
	return pp;
}

/*
 * The properties m goes out with to a 5.0 client at now_ms: its own
 * block, the Message Expiry Interval lowered to what is left. NULL when
 * it has none.
 */
static const struct props *
publish_props(const struct msg *m, long long now_ms, struct props *pp)
{
	if (!msg_props(m, pp))
		return NULL;
	if (props_has(pp, PROPS_MESSAGE_EXPIRY))
		pp->message_expiry = msg_expiry_left(m, now_ms);
	return pp;
}

/*
 * Size of the whole PUBLISH o makes for s's client c (QoS > 0: with its
 * id).
 */
static size_t
publish_size(struct broker *b, struct session *s, const struct client *c,
    const struct out_msg *o)
{
	const struct msg *m = o->m;
	const struct props *pr;
	const uint32_t *ids = NULL;
	struct props pp;
	size_t rem, plen = 0, n;

	rem = 2 + (size_t)m->topic_len + (o->qos > 0 ? 2 : 0) +
	    m->payload_len;
	if (CLIENT_V5(c)) {
		n = publish_sub_ids(b, s, o, &ids);
		pr = props_with_ids(publish_props(m, 0, &pp), &pp, ids, n);
		if (pr != NULL && props_size(pr, CODEC_PUBLISH, &plen) != 0)
			return SIZE_MAX;
		rem += props_varint_size((uint32_t)plen) + plen;
	}
	return 1 + props_varint_size((uint32_t)rem) + rem;
}

/*
 * Whether o fits the Maximum Packet Size of s's client; when not, it is
 * counted and logged (rate-limited) as dropped for that client.
 */
static bool
publish_fits(struct broker *b, struct session *s, const struct out_msg *o)
{
	const struct msg *m = o->m;
	uint32_t max = s->client->max_packet;

	if (max == 0 || publish_size(b, s, s->client, o) <= max)
		return true;
	b->stats.dropped_too_large++;
	log_limited(&b->drop_log, BROKER_LOG_BURST, BROKER_LOG_PERIOD_MS,
	    LOG_LVL_WARN, "client %s: dropping message on %s: larger than "
	    "its Maximum Packet Size %u", s->client_id, m->topic, max);
	if (b->drop_log.suppressed > 0)
		broker_log_later(b);
	return false;
}

/*
 * The 5.0 PUBLISH of o for c: m's properties and, when c takes topic
 * aliases, the alias of its topic (an empty topic once c knows it; a new
 * alias only when the 3 bytes it adds keep the packet within c's maximum
 * size). The alias is recorded once the packet is in the output.
 */
static int
send_publish5(struct broker *b, struct client *c, const struct out_msg *o,
    bool dup)
{
	struct msg *m = o->m;
	struct codec_publish p;
	struct props pp;
	const struct props *pr;
	const uint32_t *ids = NULL;
	uint16_t alias = 0, amax;
	size_t n;
	bool known = false;
	int rc;

	memset(&p, 0, sizeof p);
	p.qos = o->qos;
	p.retain = o->retain;
	p.dup = dup;
	p.topic.ptr = m->topic;
	p.topic.len = m->topic_len;
	p.packet_id = o->pid;
	p.payload = m->payload;
	p.payload_len = m->payload_len;
	n = c->sess != NULL ? publish_sub_ids(b, c->sess, o, &ids) : 0;
	pr = props_with_ids(publish_props(m, clock_wall_ms(), &pp), &pp, ids,
	    n);
	amax = c->peer_alias_max < c->alias_max ? c->peer_alias_max :
	    c->alias_max;
	if (amax > 0)
		alias = alias_out_find(&c->aliases_out, amax, m->topic,
		    m->topic_len, &known);
	if (alias != 0 && !known && c->max_packet != 0 &&
	    (c->sess == NULL || publish_size(b, c->sess, c, o) + 3 >
	    c->max_packet))
		alias = 0;
	if (alias != 0) {
		if (pr == NULL) {
			memset(&pp, 0, sizeof pp);
			pr = &pp;
		}
		pp.topic_alias = alias;
		props_set(&pp, PROPS_TOPIC_ALIAS);
		if (known)
			p.topic.len = 0;
	}
	rc = codec5_encode_publish(&c->conn.out, &p, pr);
	if (rc == 0 && alias != 0 && !known)
		alias_out_add(c->aliases_out, alias, m->topic, m->topic_len);
	return rc;
}

/* Appends the PUBLISH for o to the client's output. */
static int
send_publish(struct broker *b, struct client *c, const struct out_msg *o,
    bool dup)
{
	struct msg *m = o->m;
	int rc;

	if (CLIENT_V5(c))
		rc = send_publish5(b, c, o, dup);
	else
		rc = codec_encode_publish(&c->conn.out, m->topic, m->topic_len,
		    m->payload, m->payload_len, o->qos, o->retain, dup,
		    o->pid);
	if (rc == 0) {
		b->stats.publish_out++;
		client_want_flush(c);
	}
	return rc;
}

/*
 * Whether queued message m expired before its delivery started: then it
 * is counted and its stored copy (key, 0 if none) deleted; the caller
 * drops its reference.
 */
static bool
queued_expired(struct broker *b, const struct msg *m, uint64_t key)
{
	if (!msg_expired(m, clock_wall_ms()))
		return false;
	b->stats.expired++;
	persist_msg_delete(b, key);
	return true;
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
	deliver(b, s, m, qos, retain, 0, 0);
}

void
outbound_deliver_shared(struct broker *b, struct session *s, struct msg *m,
    uint8_t qos, bool retain, uint32_t share)
{
	deliver(b, s, m, qos, retain, share, 0);
}

/*
 * Delivers m to s at qos with the retain flag retain, for shared group
 * share (0: none) and with out_msg.sub_id sub_id.
 */
static void
deliver(struct broker *b, struct session *s, struct msg *m, uint8_t qos,
    bool retain, uint32_t share, uint32_t sub_id)
{
	struct client *c = s->client;
	struct out_msg o;

	if (!access_deliver(b, s, m, true))
		return;
	memset(&o, 0, sizeof o);
	o.m = m;
	o.qos = qos;
	o.retain = retain;
	o.share = share;
	o.sub_id = sub_id;
	if (session_online(s) && !publish_fits(b, s, &o))
		return;
	o.m = NULL;
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

/*
 * Sends again, oldest first, what a resumed session had in flight and has
 * not resent yet, while fewer PUBLISHes than the client's window (its
 * Receive Maximum) are unacknowledged.
 */
static void
resend_held(struct broker *b, struct session *s)
{
	struct out_msg *o;
	size_t i, out = 0, window;

	if (s->nresend == 0)
		return;		/* the path of every delivery */
	window = proto5_window(b, s);
	for (i = 0; i < s->ninflight; i++)
		out += !s->inflight[i].resend;
	for (i = 0; i < s->ninflight && out < window; i++) {
		o = &s->inflight[i];
		if (!o->resend)
			continue;
		o->resend = 0;
		s->nresend--;
		out++;
		send_publish(b, s->client, o, true);
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
	resend_held(b, s);
	while (s->qlen > 0 && s->ninflight < proto5_window(b, s) &&
	    buf_used(&c->conn.out) <= b->out_limit &&
	    (pid = outbound_pid(s, session_queue_peek(s))) != 0) {
		session_queue_pop(s, &o);
		if (!access_deliver(b, s, o.m, false) ||
		    !publish_fits(b, s, &o)) {
			persist_msg_delete(b, o.key);
			msg_unref(&o.m);
			continue;
		}
		if (queued_expired(b, o.m, o.key)) {
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
		else if (!publish_fits(b, s, o)) {
			/* The client came back with a smaller maximum. */
			persist_msg_delete(b, o->key);
			session_inflight_remove(s, o);
			i--;
		} else if (!o->resend) {
			o->resend = 1;	/* by outbound_pump(), in order */
			s->nresend++;
		}
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

	if ((opts & SESSION_SUB_NO_LOCAL) && own_publish(mc->m, s))
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
	share_fanout(b, m);
}

struct retained_ctx {
	struct broker	*b;
	struct session	*s;
	uint8_t		 qos;
	uint32_t	 sub_id;	/* out_msg.sub_id of the messages */
	bool		 full;		/* output over out_limit: QoS 0 drops */
	long long	 now;		/* wall ms, for message expiry */
	struct msg	**expired;	/* found expired (own refs) */
	size_t		 nexpired, capexpired;
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
	struct msg **nv;
	size_t n;

	if (msg_expired(m, rc->now)) {
		/* Removed after the walk, which must not change the trie. */
		if (rc->nexpired == rc->capexpired) {
			n = rc->capexpired ? rc->capexpired * 2 : 8;
			if ((nv = gw_realloc(rc->expired, n * sizeof *nv)) ==
			    NULL)
				return;
			rc->expired = nv;
			rc->capexpired = n;
		}
		rc->expired[rc->nexpired++] = msg_ref(m);
		return;
	}
	if (c != NULL)
		c->turn_work++;
	if (qos == 0 && rc->full) {
		rc->b->stats.dropped_qos0++;
		return;
	}
	deliver(rc->b, rc->s, m, qos, true, 0, rc->sub_id);
	if (qos == 0 && c != NULL && buf_used(&c->conn.out) > rc->b->out_limit)
		rc->full = true;
}

void
outbound_send_retained(struct broker *b, struct session *s,
    const char *filter, size_t len, uint8_t qos, uint32_t sub_id)
{
	struct retained_ctx rc;
	size_t i;

	memset(&rc, 0, sizeof rc);
	rc.b = b;
	rc.s = s;
	rc.qos = qos;
	rc.sub_id = sub_id != 0 ? sub_id : OUT_SUB_ID_NONE;
	rc.now = clock_wall_ms();
	retain_match(b->retain, filter, len, retained_cb, &rc);
	retain_match(b->sys_retain, filter, len, retained_cb, &rc);
	for (i = 0; i < rc.nexpired; i++) {
		outbound_retained_expire(b, rc.expired[i]);
		msg_unref(&rc.expired[i]);
	}
	gw_free(rc.expired);
}

void
outbound_retained_expire(struct broker *b, struct msg *m)
{
	struct store_item it;

	if (!retain_remove(b->retain, m))
		return;
	b->stats.expired++;
	b->stats.retained_expired++;
	if (b->intake_stopped)
		return;
	memset(&it, 0, sizeof it);
	it.op = STORE_OP_RETAIN_EXPIRE;
	it.msg = msg_ref(m);
	if (broker_submit(b, &it) != 0) {
		msg_unref(&it.msg);
		log_warn("store queue full: expired retained %s stays in the "
		    "database until the next start", m->topic);
	}
}

void
outbound_drop_session(struct broker *b, struct session *s)
{
	size_t i;

	share_requeue(b, s, true);
	for (i = 0; i < s->nsubs; i++)
		share_sub_remove(b, s, s->subs[i].filter, s->subs[i].len);
	if (s->qos2_in_count > 0)
		broker_store_qos2_clear(b, s->client_id);
	if (!s->clean)
		persist_session_delete(b, s);
	if (s->client != NULL)
		s->client->sess = NULL;
	session_destroy(b->sessions, s);
}
