/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Acknowledgements from a client for the messages we sent it: PUBACK ends
 * a QoS 1 delivery, PUBREC moves a QoS 2 delivery to PUBREL, PUBCOMP ends
 * it. Each frees a slot of the in-flight window, which the queue refills.
 * An id we do not know is ignored (the spec allows it after a reconnect).
 * For a persistent session the PUBREC is recorded (session_msgs state 2)
 * before the PUBREL leaves, so a restart resends the PUBREL, never the
 * message.
 */
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "err.h"
#include "mqtt/codec5.h"
#include "mqtt/reason.h"

/*
 * Decodes an ack of type from c in its protocol version into *pid and
 * *reason (0 for 3.1.1). A 5.0 refusal's reason goes to c->disc_reason.
 */
static int
ack_decode(struct client *c, uint8_t type, const uint8_t *body, size_t len,
    uint16_t *pid, uint8_t *reason)
{
	struct codec5_ack a;
	int rc;

	*reason = 0;
	if (!CLIENT_V5(c))
		return codec_decode_ack(body, len, pid);
	if ((rc = codec5_decode_ack(type, body, len, &a,
	    &c->disc_reason)) != 0)
		return rc;
	*pid = a.packet_id;
	*reason = a.reason;
	return 0;
}

/* Ends the delivery o: frees its window slot for the queue. */
static void
delivery_done(struct client *c, struct out_msg *o)
{
	persist_msg_delete(c->b, o->key);
	session_inflight_remove(c->sess, o);
	outbound_pump(c->b, c->sess);
}

/*
 * Ends the delivery of the acknowledged packet id if it waits in state
 * want, freeing its window slot for the queue. 0 or a decode error.
 */
static int
finish_delivery(struct client *c, uint8_t type, const uint8_t *body,
    size_t len, enum out_state want)
{
	struct out_msg *o;
	uint16_t pid;
	uint8_t reason;
	int rc;

	if ((rc = ack_decode(c, type, body, len, &pid, &reason)) != 0)
		return rc;
	o = session_inflight_find(c->sess, pid);
	if (o != NULL && o->state == want)
		delivery_done(c, o);
	return 0;
}

int
handle_puback(struct client *c, const uint8_t *body, size_t len)
{
	return finish_delivery(c, CODEC_PUBACK, body, len, OUT_WAIT_PUBACK);
}

int
handle_pubrec(struct client *c, const uint8_t *body, size_t len)
{
	struct out_msg *o;
	uint16_t pid;
	uint8_t reason;
	int rc;

	if ((rc = ack_decode(c, CODEC_PUBREC, body, len, &pid,
	    &reason)) != 0)
		return rc;
	o = session_inflight_find(c->sess, pid);
	/* 5.0: a PUBREC with a failure code ends the delivery (4.3.3). */
	if (o != NULL && o->state == OUT_WAIT_PUBREC && reason >= 0x80) {
		delivery_done(c, o);
		return 0;
	}
	if (o != NULL && o->state == OUT_WAIT_PUBREC) {
		o->state = OUT_WAIT_PUBCOMP;
		msg_unref(&o->m);	/* the payload is no longer needed */
		/* Persistent: the PUBREL waits for the new state's commit. */
		if (persist_msg_pubrel(c->b, o->key, pid) == 0) {
			c->last_seq = c->b->last_seq;
			return client_hold_ack(c, CODEC_PUBREL, pid, NULL, 0);
		}
	}
	return proto5_send_ack(c, CODEC_PUBREL, pid, o == NULL &&
	    CLIENT_V5(c) ? REASON_PACKET_ID_NOT_FOUND : 0);
}

int
handle_pubcomp(struct client *c, const uint8_t *body, size_t len)
{
	return finish_delivery(c, CODEC_PUBCOMP, body, len,
	    OUT_WAIT_PUBCOMP);
}
