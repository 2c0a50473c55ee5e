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
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "clock.h"
#include "err.h"
#include "mem.h"
#include "rules/rules.h"
#include "store/store.h"

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
	if (n == 0)
		return 0;
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
	b->stats.publish_in++;
	if (m->qos < 2 || c == NULL)
		outbound_fanout(b, m);
	/* The ack also waits for the copies queued to persistent sessions. */
	if (c != NULL)
		c->last_seq = b->last_seq;
	return 0;
}

int
handle_publish(struct client *c, uint8_t flags, const uint8_t *body,
    size_t len)
{
	struct session *s = c->sess;
	struct codec_publish p;
	struct msg *m;
	int rc;

	if ((rc = codec_decode_publish(flags, body, len, &p)) != 0) {
		client_log(LOG_LVL_INFO, c, "malformed PUBLISH");
		return rc;
	}
	if (p.qos == 2 && session_qos2_has(s, p.packet_id))
		return client_hold_ack(c, CODEC_PUBREC, p.packet_id, NULL);
	if (!access_publish(c, p.topic.ptr, p.topic.len)) {
		if (p.qos == 0)
			return 0;
		return client_hold_ack(c, p.qos == 1 ? CODEC_PUBACK :
		    CODEC_PUBREC, p.packet_id, NULL);
	}
	m = msg_new(p.topic.ptr, p.topic.len, s->client_id, s->id_len,
	    c->username, c->username != NULL ? strlen(c->username) : 0,
	    p.payload, p.payload_len, p.qos, p.retain, clock_wall_ms());
	if (m == NULL)
		return GW_ENOMEM;
	if ((rc = broker_accept_publish(c->b, c, m, p.packet_id)) != 0) {
		msg_unref(&m);
		return rc;
	}
	switch (p.qos) {
	case 1:
		rc = client_hold_ack(c, CODEC_PUBACK, p.packet_id, NULL);
		break;
	case 2:
		if ((rc = session_qos2_add(s, p.packet_id)) != 0)
			break;
		rc = client_hold_ack(c, CODEC_PUBREC, p.packet_id, m);
		if (rc == 0)
			m = NULL;	/* the held ack owns it now */
		break;
	}
	msg_unref(&m);
	return rc;
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
	uint16_t pid;
	int rc;

	if ((rc = codec_decode_ack(body, len, &pid)) != 0)
		return rc;
	if (session_qos2_has(s, pid)) {
		if ((rc = store_qos2_del(c->b, c, s->client_id, pid)) != 0)
			return rc;
		session_qos2_del(s, pid);
	}
	return client_hold_ack(c, CODEC_PUBCOMP, pid, NULL);
}
