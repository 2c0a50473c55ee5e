/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * mqbench's wire forms for MQTT 3.1.1 and 5.0, built on the project's two
 * codecs (src/mqtt/codec.h and codec5.h), so the load generator speaks the
 * bytes the daemon is tested against in either protocol.
 *
 * 5.0 is sent in its plainest form, the one a 5.0 client without options
 * sends: a CONNECT with Clean Start, no session expiry and an empty
 * property block; PUBLISHes with a property length byte of 0; acks in
 * their 2-byte Success form; an empty DISCONNECT. What comes back is read
 * in every form the standard allows (acks of 2, 3 or more bytes, CONNACK
 * and SUBACK properties) and folded into struct benchproto_in: the reason
 * code, and from a CONNACK the limits the client must keep (Receive
 * Maximum, Maximum QoS, Maximum Packet Size). Judging a reason code is
 * left to the caller.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/codec5.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"

#include "benchproto.h"

static void	copy_why(struct benchproto_in *, const struct props *);

/* Appends a CONNECT; see benchproto.h. */
int
benchproto_connect(struct buf *out, uint8_t version, const char *id)
{
	struct codec5_connect	c5;
	struct codec_connect	*cc = &c5.c;

	memset(&c5, 0, sizeof c5);
	cc->protocol_level = version;
	cc->clean_session = true;
	cc->keepalive = 0;
	cc->client_id.ptr = id;
	cc->client_id.len = (uint16_t)strlen(id);
	if (version == BENCHPROTO_V5)
		return codec5_encode_connect(out, &c5);
	return codec_encode_connect(out, cc);
}

/* Appends a SUBSCRIBE for one filter; see benchproto.h. */
int
benchproto_subscribe(struct buf *out, uint8_t version, const char *filter,
    uint8_t qos)
{
	struct codec5_subopts	opts;
	struct codec_str	f;

	f.ptr = filter;
	f.len = (uint16_t)strlen(filter);
	if (version != BENCHPROTO_V5)
		return codec_encode_subscribe(out, 1, &f, &qos, 1);
	memset(&opts, 0, sizeof opts);
	opts.qos = qos;
	return codec5_encode_subscribe(out, 1, &f, &opts, 1, NULL);
}

/* Appends a PUBLISH; see benchproto.h. */
int
benchproto_publish(struct buf *out, uint8_t version, const char *topic,
    size_t topic_len, const uint8_t *payload, size_t len, uint8_t qos,
    uint16_t packet_id)
{
	struct codec_publish	p;

	if (version != BENCHPROTO_V5)
		return codec_encode_publish(out, topic, topic_len, payload,
		    len, qos, false, false, packet_id);
	if (topic_len > UINT16_MAX || len > CODEC_MAX_REMAINING)
		return GW_EMALFORMED;
	memset(&p, 0, sizeof p);
	p.qos = qos;
	p.topic.ptr = topic;
	p.topic.len = (uint16_t)topic_len;
	p.packet_id = packet_id;
	p.payload = payload;
	p.payload_len = (uint32_t)len;
	return codec5_encode_publish(out, &p, NULL);
}

/* Appends a Success ack; see benchproto.h. */
int
benchproto_ack(struct buf *out, uint8_t version, uint8_t type,
    uint16_t packet_id)
{
	if (version != BENCHPROTO_V5)
		return codec_encode_ack(out, type, packet_id);
	return codec5_encode_ack(out, type, packet_id, REASON_SUCCESS, NULL);
}

/* Appends a DISCONNECT; see benchproto.h. */
int
benchproto_disconnect(struct buf *out, uint8_t version)
{
	if (version != BENCHPROTO_V5)
		return codec_encode_empty(out, CODEC_DISCONNECT);
	return codec5_encode_disconnect(out, CODEC_DISCONNECT,
	    REASON_SUCCESS, NULL);
}

/* Parses a fixed header; see benchproto.h. */
int
benchproto_header(uint8_t version, const uint8_t *buf, size_t len,
    size_t max_packet, struct codec_header *h)
{
	if (version == BENCHPROTO_V5)
		return codec5_parse_header(buf, len, max_packet, h);
	return codec_parse_header(buf, len, max_packet, h);
}

/* The Reason String of props, printable, into out->why. */
static void
copy_why(struct benchproto_in *out, const struct props *props)
{
	size_t	i, n;
	char	ch;

	if (!props_has(props, PROPS_REASON_STRING))
		return;
	n = props->reason_string.len;
	if (n > sizeof out->why - 1)
		n = sizeof out->why - 1;
	for (i = 0; i < n; i++) {
		ch = props->reason_string.ptr[i];
		out->why[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
	}
	out->why[n] = '\0';
}

/* Decodes a packet from the broker; see benchproto.h. */
int
benchproto_decode(uint8_t version, const struct codec_header *h,
    const uint8_t *body, struct benchproto_in *out)
{
	struct codec5_packet	pk;
	const struct props	*props = NULL;
	uint8_t			reason = 0;
	int			rc;

	memset(out, 0, sizeof *out);
	out->type = h->type;
	out->max_qos = -1;
	if (version == BENCHPROTO_V5 && h->type == CODEC_CONNACK &&
	    h->remaining == 2 && body[1] != 0 &&
	    !reason_allowed(body[1], CODEC_CONNACK)) {
		/* 3.1.1 refusal of the level, as 5.0 lets a server do. */
		out->code = body[1];
		out->legacy = true;
		return 0;
	}
	rc = codec5_decode(version, h, body, h->remaining, &pk, &reason);
	if (rc != 0) {
		if (version == BENCHPROTO_V5)
			snprintf(out->why, sizeof out->why, "%s",
			    reason_name(reason, h->type));
		return rc;
	}
	if (version != BENCHPROTO_V5) {
		switch (h->type) {
		case CODEC_CONNACK:
			out->code = pk.u.connack.return_code;
			break;
		case CODEC_PUBLISH:
			out->qos = pk.u.publish.qos;
			out->packet_id = pk.u.publish.packet_id;
			break;
		case CODEC_SUBACK:
			out->packet_id = pk.u.suback.packet_id;
			out->count = pk.u.suback.count;
			out->code = pk.u.suback.count > 0 ?
			    pk.u.suback.codes[0] : 0;
			break;
		case CODEC_PUBACK:
		case CODEC_PUBREC:
		case CODEC_PUBREL:
		case CODEC_PUBCOMP:
		case CODEC_UNSUBACK:
			out->packet_id = pk.u.packet_id;
			break;
		}
		return 0;
	}
	switch (h->type) {
	case CODEC_CONNACK:
		props = &pk.u.connack5.props;
		out->code = pk.u.connack5.reason;
		if (props_has(props, PROPS_RECEIVE_MAXIMUM))
			out->receive_max = props->receive_maximum;
		if (props_has(props, PROPS_MAXIMUM_QOS))
			out->max_qos = props->maximum_qos;
		if (props_has(props, PROPS_MAXIMUM_PACKET_SIZE))
			out->max_packet = props->maximum_packet_size;
		break;
	case CODEC_PUBLISH:
		out->qos = pk.u.publish5.p.qos;
		out->packet_id = pk.u.publish5.p.packet_id;
		break;
	case CODEC_SUBACK:
	case CODEC_UNSUBACK:
		props = &pk.u.suback5.props;
		out->packet_id = pk.u.suback5.packet_id;
		out->count = pk.u.suback5.count;
		out->code = pk.u.suback5.codes[0];
		break;
	case CODEC_PUBACK:
	case CODEC_PUBREC:
	case CODEC_PUBREL:
	case CODEC_PUBCOMP:
		props = &pk.u.ack5.props;
		out->packet_id = pk.u.ack5.packet_id;
		out->code = pk.u.ack5.reason;
		break;
	case CODEC_DISCONNECT:
	case CODEC_AUTH:
		props = &pk.u.disconnect5.props;
		out->code = pk.u.disconnect5.reason;
		break;
	}
	if (props != NULL)
		copy_why(out, props);
	return 0;
}

/* The name of a 5.0 reason code; see benchproto.h. */
const char *
benchproto_reason(uint8_t version, uint8_t code, uint8_t type)
{
	if (version != BENCHPROTO_V5)
		return "";
	return reason_name(code, type);
}
