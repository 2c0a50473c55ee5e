/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker side of shared subscriptions (share.h): a session keeps its
 * "$share/GROUP/FILTER" entries in its own filter list like any other
 * (so limits.max_subscriptions, persistence and unsubscribe treat them
 * alike), while the broker files them in its share table instead of the
 * subscription trie. Fan-out gives each matching group's copy to the
 * member the table chooses; a member counts as available when it is
 * connected and its queue has room, so a stalled or offline member is
 * passed over while another can take the message, and a member whose ACL
 * does not let it read the topic is never chosen for it.
 *
 * When a member's connection goes, its shared QoS 1/2 messages not yet
 * acknowledged (queued, or awaiting PUBACK or PUBREC; a QoS 2 message
 * whose PUBREC came is the receiver's already) move to another member
 * that is connected, at that member's QoS, and leave the first session
 * (and its session_msgs rows). The receiver may have seen a moved message
 * before the connection broke, so a move can duplicate: shared
 * subscriptions deliver at least once. A message no other member can
 * take stays with a persistent session until it reconnects or expires;
 * when a session ends (clean session, expiry), it goes to any remaining
 * member, even an offline persistent one, else is dropped with the
 * session. Nothing moves once the broker is shutting down.
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "config.h"
#include "err.h"

/* Arguments of one share_fanout(). */
struct share_fan {
	struct broker	*b;
	struct msg	*m;
};

static int	share_avail(void *, void *);
static void	share_deliver(void *, uint8_t, uint32_t, void *);
static bool	share_move(struct broker *, struct session *,
		    const struct out_msg *, bool);

int
share_sub_add(struct broker *b, struct session *s, const char *f,
    size_t len, uint8_t qos)
{
	if (share_is(f, len))
		return share_tab_add(b->shares, f, len, s,
		    qos & SESSION_SUB_QOS, NULL);
	return subs_add(b->subs, f, len, s, qos, NULL);
}

int
share_sub_remove(struct broker *b, struct session *s, const char *f,
    size_t len)
{
	if (share_is(f, len))
		return share_tab_remove(b->shares, f, len, s);
	return subs_remove(b->subs, f, len, s);
}

size_t
share_sub_count(const struct broker *b)
{
	return subs_count(b->subs) + share_tab_count(b->shares);
}

/*
 * Whether member owner may have the message (its ACL read rules) and can
 * take it now: connected with room in its queue.
 */
static int
share_avail(void *owner, void *arg)
{
	struct share_fan *f = arg;
	struct session *s = owner;

	if (!access_may_read(f->b, s, f->m, true))
		return SHARE_NEVER;
	if (s->client != NULL && s->client->state == CLIENT_CONNECTED &&
	    s->qlen < f->b->cfg->max_queued)
		return SHARE_NOW;
	return SHARE_LATER;
}

static void
share_deliver(void *owner, uint8_t qos, uint32_t id, void *arg)
{
	struct share_fan *f = arg;
	struct session *s = owner;

	if (qos > f->m->qos)
		qos = f->m->qos;
	f->b->stats.shared_out++;
	outbound_deliver_shared(f->b, s, f->m, qos, false, id);
}

void
share_fanout(struct broker *b, struct msg *m)
{
	struct share_fan f = { b, m };

	share_tab_match(b->shares, m->topic, m->topic_len, share_avail,
	    share_deliver, &f);
}

/*
 * Gives o (a shared message of s) to another member of its group: a
 * connected one, or (ending) any. Returns whether it did; o still holds
 * its reference either way.
 */
static bool
share_move(struct broker *b, struct session *s, const struct out_msg *o,
    bool ending)
{
	struct share_fan f = { b, o->m };
	void *owner;
	uint8_t qos;

	if (share_tab_pick(b->shares, o->share, s, share_avail, &f, ending,
	    &owner, &qos) != 0)
		return false;
	if (qos > o->m->qos)
		qos = o->m->qos;
	b->stats.shared_moved++;
	outbound_deliver_shared(b, owner, o->m, qos, false, o->share);
	return true;
}

void
share_requeue(struct broker *b, struct session *s, bool ending)
{
	struct out_msg *o, tmp;
	size_t i, w, n;

	if (b->intake_stopped || share_tab_count(b->shares) == 0)
		return;
	i = 0;
	while (i < s->ninflight) {
		o = &s->inflight[i];
		if (o->share == 0 || o->state == OUT_WAIT_PUBCOMP ||
		    !share_move(b, s, o, ending)) {
			i++;
			continue;
		}
		persist_msg_delete(b, o->key);
		session_inflight_remove(s, o);
	}
	/* Compacts the queue ring in place, keeping the order. */
	n = s->qlen;
	for (i = 0, w = 0; i < n; i++) {
		o = &s->queue[(s->qhead + i) % s->qcap];
		if (o->share != 0 && share_move(b, s, o, ending)) {
			persist_msg_delete(b, o->key);
			msg_unref(&o->m);
			continue;
		}
		tmp = *o;
		s->queue[(s->qhead + w) % s->qcap] = tmp;
		w++;
	}
	s->qlen = w;
}
