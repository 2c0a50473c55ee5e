/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PINGREQ and DISCONNECT: the two packets without a body in 3.1.1. A 5.0
 * DISCONNECT may carry a reason (0x04: publish the will all the same) and
 * a new Session Expiry Interval.
 */
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "err.h"
#include "mqtt/codec5.h"
#include "mqtt/reason.h"

int
handle_pingreq(struct client *c, size_t len)
{
	int rc;

	if ((rc = codec_decode_empty(len)) != 0)
		return rc;
	return proto5_send_empty(c, CODEC_PINGRESP);
}

/*
 * A 5.0 DISCONNECT may set a new Session Expiry Interval, but not turn a
 * session that was to end at disconnect into a kept one (3.14.2.2.2).
 */
static int
disconnect5(struct client *c, const uint8_t *body, size_t len)
{
	struct codec5_disconnect d;
	struct session *s = c->sess;
	int rc;

	if ((rc = codec5_decode_disconnect(CODEC_DISCONNECT, body, len, &d,
	    &c->disc_reason)) != 0)
		return rc;
	if (props_has(&d.props, PROPS_SESSION_EXPIRY)) {
		if (s->expiry_s == 0 && d.props.session_expiry != 0) {
			c->disc_reason = REASON_PROTOCOL_ERROR;
			client_log(LOG_LVL_INFO, c, "DISCONNECT sets a session "
			    "expiry on a session that had none");
			return GW_EPROTO;
		}
		expire_session_set(c->b, s, d.props.session_expiry);
	}
	c->clean_disconnect = true;
	/* Reason 0x04: the client wants its will published all the same. */
	if (d.reason != REASON_DISCONNECT_WITH_WILL)
		msg_unref(&c->will);
	else
		c->clean_disconnect = false;
	client_close_after_write(c, NULL);
	return 0;
}

int
handle_disconnect(struct client *c, const uint8_t *body, size_t len)
{
	int rc;

	if (CLIENT_V5(c))
		return disconnect5(c, body, len);
	if ((rc = codec_decode_empty(len)) != 0)
		return rc;
	c->clean_disconnect = true;
	msg_unref(&c->will);
	client_close_after_write(c, NULL);
	return 0;
}

/*
 * AUTH (5.0 only: the 3.1.1 header parser refuses type 15). No enhanced
 * authentication is offered (a CONNECT naming a method got 0x8C), so any
 * AUTH is a Protocol Error; a malformed one gets the codec's reason.
 */
int
handle_auth(struct client *c, const uint8_t *body, size_t len)
{
	struct codec5_disconnect a;
	int rc;

	if ((rc = codec5_decode_disconnect(CODEC_AUTH, body, len, &a,
	    &c->disc_reason)) != 0)
		return rc;
	c->disc_reason = REASON_PROTOCOL_ERROR;
	client_log(LOG_LVL_INFO, c, "AUTH without an authentication method "
	    "in use");
	return GW_EPROTO;
}
