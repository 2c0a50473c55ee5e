/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The packet switch: routes one complete packet to its handler and
 * enforces the connection-state rules that apply to every packet (the first
 * packet must be CONNECT, a second CONNECT is a violation, packets a server
 * never receives close the connection). Any nonzero return closes the
 * connection in broker.c, in one place.
 */
#include "broker/broker_int.h"
#include "err.h"

int
dispatch_packet(struct client *c, const struct codec_header *h,
    const uint8_t *body)
{
	size_t len = h->remaining;

	if (c->state == CLIENT_NEW && h->type != CODEC_CONNECT) {
		client_log(LOG_LVL_INFO, c, "first packet is %s, not CONNECT",
		    codec_type_name(h->type));
		return GW_EPROTO;
	}
	switch (h->type) {
	case CODEC_CONNECT:
		if (c->state != CLIENT_NEW) {
			client_log(LOG_LVL_INFO, c, "second CONNECT");
			return GW_EPROTO;
		}
		return handle_connect(c, body, len);
	case CODEC_PUBLISH:
		return handle_publish(c, h->flags, body, len);
	case CODEC_PUBACK:
		return handle_puback(c, body, len);
	case CODEC_PUBREC:
		return handle_pubrec(c, body, len);
	case CODEC_PUBREL:
		return handle_pubrel(c, body, len);
	case CODEC_PUBCOMP:
		return handle_pubcomp(c, body, len);
	case CODEC_SUBSCRIBE:
		return handle_subscribe(c, body, len);
	case CODEC_UNSUBSCRIBE:
		return handle_unsubscribe(c, body, len);
	case CODEC_PINGREQ:
		return handle_pingreq(c, len);
	case CODEC_DISCONNECT:
		return handle_disconnect(c, body, len);
	case CODEC_AUTH:
		return handle_auth(c, body, len);
	default:
		client_log(LOG_LVL_INFO, c, "unexpected %s from a client",
		    codec_type_name(h->type));
		return GW_EPROTO;
	}
}
