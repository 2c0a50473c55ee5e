/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inbound PUBLISH and PUBREL. A publish becomes one refcounted message
 * (the payload's only copy), one store item carrying everything it must
 * make durable (the messages row, the retained topic, the QoS 2 packet id),
 * and a held acknowledgement released when that item is committed. QoS 0
 * and 1 fan out to subscribers at once; QoS 2 fans out after the commit,
 * so a message that a resend after a crash could duplicate is never
 * delivered before it is recorded. A publish the client may not make
 * (access.c: ACL, $SYS) is acknowledged in order and otherwise dropped.
 * The broker's own $SYS values (broker_sys_publish) take a short path:
 * kept in their own retained trie, fanned out, never stored.
 *
 * MQTT 5.0: a Topic Alias is resolved first (alias.c), so ACL, rules and
 * subscribers only ever see the topic name; the message keeps the
 * forwardable properties of the PUBLISH (msg.h).
 */
#include <string.h>

#include "broker/alias.h"
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec5.h"
#include "mqtt/reason.h"
#include "rules/rules.h"
#include "store/store.h"

static int	store_qos2_del(struct broker *, struct client *, const char *,
		    uint16_t);

/*
 * A publish no rule's topic pattern matched: counted, and stored in
 * messages when the rules say "unmatched": "messages" (as the default rule
 * would: not a '$' topic); else dropped, with its topic logged for the
 * first few (rate-limited) so that a gap in the rules is never silent.
 */
static void
unmatched(struct broker *b, const struct msg *m, struct store_item *it)
{
	b->stats.unmatched++;
	if (rule_set_unmatched(b->rules) == RULES_UNMATCHED_MESSAGES) {
		if (m->topic[0] != '$')
			it->flags |= STORE_F_ROW;
		return;
	}
	log_limited(&b->unmatched_log, 5, BROKER_LOG_PERIOD_MS, LOG_LVL_INFO,
	    "no rule matches topic %s: not stored (\"unmatched\": \"drop\"; "
	    "see mqlite_unmatched_total)", m->topic);
	if (b->unmatched_log.suppressed > 0)
		broker_log_later(b);
}

/*
 * Matches m against the current rules; when some match, it gets a rule set
 * reference and their ids (inline, or a new array). 0, GW_ENOMEM, or
 * GW_EFULL when a matching rule forwards and the outbox is full under the
 * reject policy (the caller holds the publish until there is room).
 */
static int
match_rules(struct broker *b, const struct msg *m, struct store_item *it)
{
	size_t n, i;

	n = rules_match(b->rules, m->topic, m->topic_len, b->rule_ids,
	    rule_set_count(b->rules));
	if (n == 0) {
		unmatched(b, m, it);
		return 0;
	}
	if (store_outbox_full(b->store)) {
		for (i = 0; i < n; i++)
			if (rule_webhook(rule_set_rule(b->rules,
			    b->rule_ids[i])) != NULL || rule_mqtt(
			    rule_set_rule(b->rules, b->rule_ids[i])) != NULL)
				return GW_EFULL;
	}
	if (n <= STORE_RULE_INLINE)
		memcpy(it->rule_id, b->rule_ids, n * sizeof *b->rule_ids);
	else if ((it->rule_ids = gw_malloc(n * sizeof *b->rule_ids)) == NULL)
		return GW_ENOMEM;
	else
		memcpy(it->rule_ids, b->rule_ids, n * sizeof *b->rule_ids);
	it->nrules = (uint32_t)n;
	it->rules = rule_set_ref(b->rules);
	return 0;
}

int
broker_accept_publish(struct broker *b, struct client *c, struct msg *m,
    uint16_t pid)
{
	struct store_item it;
	bool keep;
	int rc;

	memset(&it, 0, sizeof it);
	keep = m->retain && guard_retain_admit(b, m);
	if (b->rules == NULL) {
		if (m->topic[0] != '$')
			it.flags |= STORE_F_ROW;
	} else if ((rc = match_rules(b, m, &it)) != 0)
		return rc;
	if (keep)
		it.flags |= STORE_F_RETAIN;
	if (m->qos == 2 && c != NULL)
		it.flags |= STORE_F_QOS2;
	if (it.flags != 0 || it.rules != NULL) {
		it.op = STORE_OP_PUBLISH;
		it.packet_id = pid;
		it.msg = msg_ref(m);
		if ((rc = broker_submit(b, &it)) != 0) {
			msg_unref(&it.msg);
			if (it.rules != NULL)
				rule_set_unref(&it.rules);
			if (it.nrules > STORE_RULE_INLINE)
				gw_free(it.rule_ids);
			if (c != NULL)
				return rc;
			log_warn("store queue full: will on %s not stored",
			    m->topic);
		}
	}
	if (keep && retain_set(b->retain, m) != 0)
		log_warn("out of memory keeping retained %s", m->topic);
	else if (keep && m->expire_ms != 0)
		retain_sweep_arm(b);
	b->stats.publish_in++;
	if (m->qos < 2 || c == NULL)
		outbound_fanout(b, m);
	/* The ack also waits for the copies queued to persistent sessions. */
	if (c != NULL)
		c->last_seq = b->last_seq;
	return 0;
}

/*
 * Decodes a PUBLISH of c's protocol version into p5 (3.1.1: no
 * properties); a 5.0 refusal leaves its reason in c->disc_reason.
 */
static int
publish_decode(struct client *c, uint8_t flags, const uint8_t *body,
    size_t len, struct codec5_publish *p5)
{
	if (CLIENT_V5(c))
		return codec5_decode_publish(flags, body, len, p5,
		    &c->disc_reason);
	memset(p5, 0, sizeof *p5);
	return codec_decode_publish(flags, body, len, &p5->p);
}

int
handle_publish(struct client *c, uint8_t flags, const uint8_t *body,
    size_t len)
{
	struct session *s = c->sess;
	struct codec5_publish p5;
	struct codec_publish *p = &p5.p;
	struct msg *m;
	uint8_t ack;
	int rc;

	if ((rc = publish_decode(c, flags, body, len, &p5)) != 0) {
		client_log(LOG_LVL_INFO, c, "malformed PUBLISH");
		return rc;
	}
	if (CLIENT_V5(c) && props_has(&p5.props, PROPS_TOPIC_ALIAS) &&
	    (rc = alias_resolve(&c->aliases, c->alias_max,
	    p5.props.topic_alias, &p->topic, &c->disc_reason)) != 0) {
		if (rc != GW_ENOMEM)
			client_log(LOG_LVL_INFO, c, "PUBLISH with %s Topic "
			    "Alias %u (maximum %u)", c->disc_reason ==
			    REASON_TOPIC_ALIAS_INVALID ? "invalid" :
			    "unknown", p5.props.topic_alias, c->alias_max);
		return rc;
	}
	if (p->topic.len == 0) {
		c->disc_reason = REASON_PROTOCOL_ERROR;
		return GW_EPROTO;
	}
	ack = p->qos == 1 ? CODEC_PUBACK : CODEC_PUBREC;
	if (p->qos == 2 && session_qos2_has(s, p->packet_id))
		return client_hold_ack(c, CODEC_PUBREC, p->packet_id, NULL, 0);
	if (p->qos > 0 && CLIENT_V5(c) && s->qos2_in_count + c->held_quota >=
	    c->b->cfg->receive_maximum) {
		/* More unacknowledged than the Receive Maximum we sent. */
		c->disc_reason = REASON_RECEIVE_MAXIMUM_EXCEEDED;
		client_log(LOG_LVL_INFO, c, "more than receive_maximum (%u) "
		    "QoS 1/2 publishes unacknowledged",
		    c->b->cfg->receive_maximum);
		return GW_EPROTO;
	}
	if (!access_publish(c, p->topic.ptr, p->topic.len)) {
		if (p->qos == 0)
			return 0;
		return client_hold_ack(c, ack, p->packet_id, NULL,
		    REASON_NOT_AUTHORIZED);
	}
	m = msg_new5(p->topic.ptr, p->topic.len, s->client_id, s->id_len,
	    c->username, c->username != NULL ? strlen(c->username) : 0,
	    p->payload, p->payload_len, p->qos, p->retain, clock_wall_ms(),
	    CLIENT_V5(c) ? &p5.props : NULL);
	if (m == NULL)
		return GW_ENOMEM;
	if ((rc = broker_accept_publish(c->b, c, m, p->packet_id)) != 0) {
		msg_unref(&m);
		return rc;
	}
	switch (p->qos) {
	case 1:
		rc = client_hold_ack(c, CODEC_PUBACK, p->packet_id, NULL, 0);
		break;
	case 2:
		if ((rc = session_qos2_add(s, p->packet_id)) != 0)
			break;
		rc = client_hold_ack(c, CODEC_PUBREC, p->packet_id, m, 0);
		if (rc == 0)
			m = NULL;	/* the held ack owns it now */
		break;
	}
	msg_unref(&m);
	return rc;
}

int
broker_source_publish(struct broker *b, struct msg *m, const char *qos2_key,
    uint16_t pid, uint64_t *seq)
{
	struct store_item it;
	int rc;

	if (b->intake_stopped)
		return GW_EIO;
	memset(&it, 0, sizeof it);
	if (b->rules == NULL) {
		if (m->topic[0] != '$')
			it.flags |= STORE_F_ROW;
	} else if ((rc = match_rules(b, m, &it)) != 0)
		return rc;
	if (m->qos == 2 && qos2_key != NULL) {
		it.flags |= STORE_F_QOS2;
		if ((it.client_id = gw_strdup(qos2_key)) == NULL) {
			rc = GW_ENOMEM;
			goto fail;
		}
	}
	if (it.flags != 0 || it.rules != NULL) {
		it.op = STORE_OP_PUBLISH;
		it.packet_id = pid;
		it.msg = msg_ref(m);
		if ((rc = broker_submit(b, &it)) != 0)
			goto fail;
	}
	*seq = b->last_seq;
	return 0;
fail:
	msg_unref(&it.msg);
	gw_free(it.client_id);
	if (it.rules != NULL)
		rule_set_unref(&it.rules);
	if (it.nrules > STORE_RULE_INLINE)
		gw_free(it.rule_ids);
	return rc;
}

int
broker_source_qos2_del(struct broker *b, const char *qos2_key, uint16_t pid,
    uint64_t *seq)
{
	int rc;

	if (b->intake_stopped)
		return GW_EIO;
	if ((rc = store_qos2_del(b, NULL, qos2_key, pid)) != 0)
		return rc;
	*seq = b->last_seq;
	return 0;
}

/* Queues the removal of client_id's QoS 2 records (packet id 0 = all). */
static int
store_qos2_del(struct broker *b, struct client *c, const char *client_id,
    uint16_t pid)
{
	struct store_item it;
	int rc;

	memset(&it, 0, sizeof it);
	it.op = STORE_OP_QOS2_DEL;
	it.packet_id = pid;
	if ((it.client_id = gw_strdup(client_id)) == NULL)
		return GW_ENOMEM;
	if ((rc = broker_submit(b, &it)) != 0) {
		gw_free(it.client_id);
		return rc;
	}
	if (c != NULL)
		c->last_seq = b->last_seq;
	return 0;
}

void
broker_store_qos2_clear(struct broker *b, const char *client_id)
{
	if (b->intake_stopped)
		return;		/* the store may be closed already */
	if (store_qos2_del(b, NULL, client_id, 0) != 0)
		log_warn("client %s: could not queue removal of its QoS 2 "
		    "state", client_id);
}

int
handle_pubrel(struct client *c, const uint8_t *body, size_t len)
{
	struct session *s = c->sess;
	struct codec5_ack a;
	uint8_t reason = 0;
	int rc;

	if (CLIENT_V5(c))
		rc = codec5_decode_ack(CODEC_PUBREL, body, len, &a,
		    &c->disc_reason);
	else
		rc = codec_decode_ack(body, len, &a.packet_id);
	if (rc != 0)
		return rc;
	if (session_qos2_has(s, a.packet_id)) {
		if ((rc = store_qos2_del(c->b, c, s->client_id,
		    a.packet_id)) != 0)
			return rc;
		session_qos2_del(s, a.packet_id);
	} else
		reason = REASON_PACKET_ID_NOT_FOUND;
	return client_hold_ack(c, CODEC_PUBCOMP, a.packet_id, NULL, reason);
}

/* See broker.h. */
int
broker_sys_publish(struct broker *b, const char *topic, const void *payload,
    size_t len)
{
	const struct msg *old;
	struct msg *m;
	size_t tlen = strlen(topic);
	int rc;

	if (tlen < 5 || tlen > UINT16_MAX || memcmp(topic, "$SYS/", 5) != 0)
		return GW_EMALFORMED;
	/* As Mosquitto does: a value that did not change is not sent. */
	old = retain_get(b->sys_retain, topic, tlen);
	if (old != NULL && old->payload_len == len &&
	    memcmp(old->payload, payload, len) == 0)
		return 0;
	if ((m = msg_new(topic, tlen, "", 0, NULL, 0, payload, len, 0, 1,
	    clock_wall_ms())) == NULL)
		return GW_ENOMEM;
	rc = retain_set(b->sys_retain, m);
	if (rc == 0 && !b->intake_stopped)
		outbound_fanout(b, m);
	msg_unref(&m);
	return rc;
}
