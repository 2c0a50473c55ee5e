/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * What differs between MQTT 3.1.1 and 5.0 on the wire, for the packets the
 * broker sends. A connection's protocol level (struct client's version) is
 * fixed by its CONNECT; every packet handler and outbound.c encode through
 * these helpers, so a 3.1.1 connection keeps its byte-exact packets and a
 * 5.0 one gets the 5.0 forms: acks with reason codes, CONNACK refusals
 * with 5.0 reason codes, and a DISCONNECT naming the reason before the
 * server closes.
 *
 * Reason strings (a short English text on a refusal) are added only when
 * the client left Request Problem Information on (its default), and never
 * past the client's Maximum Packet Size: the code alone is the contract.
 * Protocol errors become reason codes in one place, proto5_close_error():
 * a handler that refuses a packet either returns the codec's error (the
 * reason is the codec's, kept in disc_reason) or sets disc_reason itself.
 */
#include <string.h>

#include "broker/broker_int.h"
#include "broker/msg.h"
#include "config.h"
#include "err.h"
#include "mqtt/codec5.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"

/* Chooses the fixed-header parser of c's protocol level. */
int
proto5_parse_header(const struct client *c, const uint8_t *buf, size_t len,
    struct codec_header *h)
{
	size_t max = c->b->cfg->max_packet_bytes;

	if (CLIENT_V5(c))
		return codec5_parse_header(buf, len, max, h);
	return codec_parse_header(buf, len, max, h);
}

#define REASON_STRING_MAX	200	/* bytes of a reason string sent */
#define REASON_PACKET_MAX	256	/* an ack or DISCONNECT with one */

/*
 * Fills props with a Reason String why for c if its Request Problem
 * Information allows one and its Maximum Packet Size leaves room for it
 * (why may be NULL). Borrows why.
 */
static void
reason_string(const struct client *c, struct props *p, const char *why)
{
	memset(p, 0, sizeof *p);
	if (why == NULL || !c->problem_info ||
	    (c->max_packet != 0 && c->max_packet < REASON_PACKET_MAX))
		return;
	p->reason_string.ptr = why;
	p->reason_string.len = (uint16_t)strnlen(why, REASON_STRING_MAX);
	props_set(p, PROPS_REASON_STRING);
}

/*
 * Appends PUBACK, PUBREC, PUBREL, PUBCOMP or a 3.1.1 UNSUBACK (type) for
 * pid; a 5.0 client gets reason (0 success), a 3.1.1 one the 3.1.1 form.
 * Puts c on the flush list. 0 or GW_ENOMEM.
 */
int
proto5_send_ack(struct client *c, uint8_t type, uint16_t pid, uint8_t reason)
{
	struct props p;
	int rc;

	if (!CLIENT_V5(c) || type == CODEC_UNSUBACK)
		rc = codec_encode_ack(&c->conn.out, type, pid);
	else {
		reason_string(c, &p, reason >= 0x80 ? reason_name(reason,
		    type) : NULL);
		rc = codec5_encode_ack(&c->conn.out, type, pid, reason, &p);
	}
	if (rc == 0)
		client_want_flush(c);
	return rc;
}

/* Appends a packet without a body (PINGRESP); same in both versions. */
int
proto5_send_empty(struct client *c, uint8_t type)
{
	int rc;

	if ((rc = codec_encode_empty(&c->conn.out, type)) == 0)
		client_want_flush(c);
	return rc;
}

/* The 5.0 CONNACK reason code for a 3.1.1 CONNACK return code. */
static uint8_t
connack_reason(uint8_t rc311)
{
	switch (rc311) {
	case CODEC_CONNACK_BAD_PROTOCOL:
		return REASON_UNSUPPORTED_VERSION;
	case CODEC_CONNACK_ID_REJECTED:
		return REASON_CLIENT_ID_INVALID;
	case CODEC_CONNACK_UNAVAILABLE:
		return REASON_SERVER_UNAVAILABLE;
	case CODEC_CONNACK_BAD_CREDENTIALS:
		return REASON_BAD_CREDENTIALS;
	case CODEC_CONNACK_NOT_AUTHORIZED:
		return REASON_NOT_AUTHORIZED;
	default:
		return REASON_UNSPECIFIED;
	}
}

/*
 * Refuses a CONNECT: CONNACK with 3.1.1 return code rc311 for a 3.1.1
 * client; for a 5.0 one reason (0: the one matching rc311) with why as the
 * reason string. Then closes c once that is written (why is logged).
 * Returns 0.
 */
int
proto5_connack_refuse(struct client *c, uint8_t rc311, uint8_t reason,
    const char *why)
{
	struct props p;

	if (!CLIENT_V5(c))
		codec_encode_connack(&c->conn.out, false, rc311);
	else {
		if (reason == 0)
			reason = connack_reason(rc311);
		if (!reason_allowed(reason, CODEC_CONNACK))
			reason = REASON_UNSPECIFIED;
		reason_string(c, &p, why);
		codec5_encode_connack(&c->conn.out, false, reason, &p);
	}
	client_close_after_write(c, why);
	return 0;
}

/*
 * Closes c after what is queued is written; a connected 5.0 client first
 * gets a DISCONNECT with reason (and why as reason string). why is also
 * logged (NULL: nothing logged).
 */
void
proto5_disconnect(struct client *c, uint8_t reason, const char *why)
{
	struct props p;

	if (CLIENT_V5(c) && c->state == CLIENT_CONNECTED) {
		if (!reason_allowed(reason, CODEC_DISCONNECT))
			reason = REASON_UNSPECIFIED;
		reason_string(c, &p, why);
		codec5_encode_disconnect(&c->conn.out, CODEC_DISCONNECT,
		    reason, &p);
	}
	client_close_after_write(c, why);
}

/*
 * Closes c for error err returned by a packet handler: the reason is
 * disc_reason when the handler set one, else the one err maps to.
 */
void
proto5_close_error(struct client *c, int err, const char *why)
{
	uint8_t reason = c->disc_reason;

	if (reason == 0)
		reason = reason_from_error(err);
	if (reason == REASON_UNSPECIFIED && err == GW_ENOMEM)
		reason = REASON_IMPLEMENTATION_ERROR;
	proto5_disconnect(c, reason, why);
}

/*
 * How many QoS 1/2 PUBLISHes s may have in flight to its client: the
 * window limits.max_inflight, within a 5.0 client's Receive Maximum.
 */
size_t
proto5_window(const struct broker *b, const struct session *s)
{
	size_t w = b->cfg->max_inflight;

	if (s->client != NULL && CLIENT_V5(s->client) &&
	    s->client->recv_max < w)
		w = s->client->recv_max;
	return w;
}
