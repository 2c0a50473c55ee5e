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

/*
 * Ends the delivery of the acknowledged packet id if it waits in state
 * want, freeing its window slot for the queue. 0 or a decode error.
 */
static int
finish_delivery(struct client *c, const uint8_t *body, size_t len,
    enum out_state want)
{
	struct out_msg *o;
	uint16_t pid;
	int rc;

	if ((rc = codec_decode_ack(body, len, &pid)) != 0)
		return rc;
	o = session_inflight_find(c->sess, pid);
	if (o != NULL && o->state == want) {
		persist_msg_delete(c->b, o->key);
		session_inflight_remove(c->sess, o);
		outbound_pump(c->b, c->sess);
	}
	return 0;
}

int
handle_puback(struct client *c, const uint8_t *body, size_t len)
{
	return finish_delivery(c, body, len, OUT_WAIT_PUBACK);
}

int
handle_pubrec(struct client *c, const uint8_t *body, size_t len)
{
	struct out_msg *o;
	uint16_t pid;
	int rc;

	if ((rc = codec_decode_ack(body, len, &pid)) != 0)
		return rc;
	o = session_inflight_find(c->sess, pid);
	if (o != NULL && o->state == OUT_WAIT_PUBREC) {
		o->state = OUT_WAIT_PUBCOMP;
		msg_unref(&o->m);	/* the payload is no longer needed */
		/* Persistent: the PUBREL waits for the new state's commit. */
		if (persist_msg_pubrel(c->b, o->key, pid) == 0) {
			c->last_seq = c->b->last_seq;
			return client_hold_ack(c, CODEC_PUBREL, pid, NULL);
		}
	}
	if ((rc = codec_encode_ack(&c->conn.out, CODEC_PUBREL, pid)) != 0)
		return rc;
	client_want_flush(c);
	return 0;
}

int
handle_pubcomp(struct client *c, const uint8_t *body, size_t len)
{
	return finish_delivery(c, body, len, OUT_WAIT_PUBCOMP);
}
