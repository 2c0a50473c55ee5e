/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * MQTT 5.0 codec (section numbers refer to the 5.0 standard), beside the
 * strict 3.1.1 codec in codec.c, which it leaves untouched: a connection
 * that negotiated 3.1.1 keeps going through codec.c byte for byte, and
 * codec5_decode() picks the decoder set from the protocol level. The
 * encoders are in codec5_enc.c.
 *
 * The packet layouts are those of 3.1.1 plus a property block (props.c)
 * after the variable header and reason codes (reason.c) on acks, CONNACK,
 * DISCONNECT and the new AUTH packet (type 15, which 3.1.1 reserves). The
 * acks and DISCONNECT have short forms: a PUBACK of remaining length 2 is
 * Success without properties, one of length 3 has a reason code but no
 * property length, and so on; decoders accept every form and encoders
 * write the shortest one.
 *
 * Every refusal carries the reason code the standard names: the layout
 * broken (a field running past the end, bytes left over, a reserved bit
 * set, bad UTF-8) is Malformed Packet 0x81; a well-formed packet that
 * breaks a rule (no topic filter in SUBSCRIBE, retain handling 3, No Local
 * on a shared subscription, a reason code the packet may not carry,
 * Authentication Data without a method) is Protocol Error 0x82; a topic
 * name with wildcards is Topic Name invalid 0x90. Rules that need session
 * state (topic alias ranges, receive maximum, packet sizes against the
 * negotiated maximum, who may send which property) belong to the broker.
 */
#include <string.h>

#include "err.h"
#include "mqtt/codec5.h"
#include "mqtt/codec_int.h"
#include "mqtt/reason.h"
#include "mqtt/utf8.h"

static int	bad(uint8_t *, uint8_t);
static int	rd_props(struct rd *, int, struct props *, uint8_t *);
static int	id_props(struct rd *, const uint8_t *, size_t, int, uint16_t *,
		    struct props *, uint8_t *);
static int	connect_body(struct rd *, struct codec5_connect *, uint8_t *);

static int
bad(uint8_t *reason, uint8_t code)
{
	if (reason != NULL)
		*reason = code;
	return code == REASON_MALFORMED ? GW_EMALFORMED : GW_EPROTO;
}

/* A property block for packet at the cursor; moves past it. */
static int
rd_props(struct rd *r, int packet, struct props *out, uint8_t *reason)
{
	size_t	used;
	int	rc;

	if ((rc = props_decode(r->p, (size_t)(r->end - r->p), packet, out,
	    &used, reason)) != 0)
		return rc;
	r->p += used;
	return 0;
}

/*
 * Starts r on body and reads what SUBSCRIBE, UNSUBSCRIBE, SUBACK and
 * UNSUBACK begin with: a non-zero packet id into *id, then the property
 * block of packet into props.
 */
static int
id_props(struct rd *r, const uint8_t *body, size_t len, int packet,
    uint16_t *id, struct props *props, uint8_t *reason)
{
	r->p = body;
	r->end = body + len;
	if (len == 0 || rd_u16(r, id) != 0 || *id == 0)
		return bad(reason, REASON_MALFORMED);
	return rd_props(r, packet, props, reason);
}

/*
 * Parses a 5.0 fixed header: the 3.1.1 rules (codec_parse_header()) except
 * that type 15 is AUTH (flags 0) and the remaining length must be
 * minimally encoded [MQTT-1.5.5-1]. Same return codes.
 */
int
codec5_parse_header(const uint8_t *buf, size_t len, size_t max_packet,
    struct codec_header *h)
{
	struct codec_header	tmp;
	uint32_t		rem;
	size_t			used;
	int			rc;

	if (len < 1)
		return GW_EMORE;
	if (buf[0] >> 4 != CODEC_AUTH) {
		if ((rc = codec_parse_header(buf, len, max_packet,
		    &tmp)) != 0)
			return rc;
	} else {
		if ((buf[0] & 0x0f) != 0)
			return GW_EMALFORMED;
		if ((rc = codec_varint_decode(buf + 1, len - 1, &rem,
		    &used)) != 0)
			return rc;
		if (max_packet != 0 && (size_t)rem + 1 + used > max_packet)
			return GW_ETOOBIG;
		tmp.type = CODEC_AUTH;
		tmp.flags = 0;
		tmp.remaining = rem;
		tmp.header_len = (uint32_t)(1 + used);
	}
	if (tmp.header_len > 2 && buf[tmp.header_len - 1] == 0)
		return GW_EMALFORMED;		/* non-minimal length */
	*h = tmp;
	return 0;
}

/* codec5_parse_header(), GW_EMORE until the whole packet is in buf. */
int
codec5_parse_frame(const uint8_t *buf, size_t len, size_t max_packet,
    struct codec_header *h)
{
	return parse_frame_with(codec5_parse_header, buf, len, max_packet, h);
}

/* CONNECT after the protocol level (3.1.2.3 onwards). */
static int
connect_body(struct rd *r, struct codec5_connect *out, uint8_t *reason)
{
	struct codec_connect	*c = &out->c;
	uint8_t			 fl;
	int			 rc;

	if (rd_u8(r, &fl) != 0 || rd_u16(r, &c->keepalive) != 0)
		return bad(reason, REASON_MALFORMED);
	if (connect_flags_read(c, fl) != 0)
		return bad(reason, REASON_MALFORMED);
	if ((rc = rd_props(r, CODEC_CONNECT, &out->props, reason)) != 0)
		return rc;
	if (props_has(&out->props, PROPS_AUTH_DATA) &&
	    !props_has(&out->props, PROPS_AUTH_METHOD))
		return bad(reason, REASON_PROTOCOL_ERROR);
	if (rd_str(r, &c->client_id) != 0)
		return bad(reason, REASON_MALFORMED);
	if (c->will_flag) {
		if ((rc = rd_props(r, PROPS_WILL, &out->will_props,
		    reason)) != 0)
			return rc;
		if (rd_str(r, &c->will_topic) != 0)
			return bad(reason, REASON_MALFORMED);
		if (c->will_topic.len == 0 || has_wildcard(&c->will_topic))
			return bad(reason, REASON_TOPIC_NAME_INVALID);
		if (rd_bin(r, &c->will_payload) != 0)
			return bad(reason, REASON_MALFORMED);
	}
	/* 5.0 allows a password without a user name (3.1.2.9). */
	if (c->has_username && rd_str(r, &c->username) != 0)
		return bad(reason, REASON_MALFORMED);
	if (c->has_password && rd_bin(r, &c->password) != 0)
		return bad(reason, REASON_MALFORMED);
	if (r->p != r->end)
		return bad(reason, REASON_MALFORMED);
	return 0;
}

/*
 * Decodes a CONNECT body of protocol level 5 (3.1); out borrows from body.
 * A known protocol name with another level is GW_EUNSUPPORTED with reason
 * 0x84 and out->c.protocol_level set; an unknown name is malformed.
 */
int
codec5_decode_connect(const uint8_t *body, size_t len,
    struct codec5_connect *out, uint8_t *reason)
{
	struct rd		r;
	struct codec_str	name;
	uint8_t			level;

	memset(out, 0, sizeof *out);
	if (len == 0)
		return bad(reason, REASON_MALFORMED);
	r.p = body;
	r.end = body + len;
	if (rd_bin(&r, &name) != 0 || rd_u8(&r, &level) != 0)
		return bad(reason, REASON_MALFORMED);
	if (!(name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0) &&
	    !(name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0))
		return bad(reason, REASON_MALFORMED);
	out->c.protocol_level = level;
	if (level != CODEC5_LEVEL || name.len != 4) {
		if (reason != NULL)
			*reason = REASON_UNSUPPORTED_VERSION;
		return GW_EUNSUPPORTED;
	}
	return connect_body(&r, out, reason);
}

/*
 * Decodes a CONNACK body (3.2): acknowledge flags with bits 7-1 zero, a
 * reason code CONNACK may carry, session present only with Success, then
 * properties.
 */
int
codec5_decode_connack(const uint8_t *body, size_t len,
    struct codec5_connack *out, uint8_t *reason)
{
	struct rd	r;
	uint8_t		fl;
	int		rc;

	memset(out, 0, sizeof *out);
	r.p = body;
	r.end = body + len;
	if (len == 0 || rd_u8(&r, &fl) != 0 || rd_u8(&r, &out->reason) != 0)
		return bad(reason, REASON_MALFORMED);
	if ((fl & 0xfe) != 0)
		return bad(reason, REASON_MALFORMED);	/* 3.2.2.1 */
	out->session_present = fl != 0;
	if (!reason_allowed(out->reason, CODEC_CONNACK) ||
	    (out->session_present && out->reason != 0))
		return bad(reason, REASON_PROTOCOL_ERROR);
	if ((rc = rd_props(&r, CODEC_CONNACK, &out->props, reason)) != 0)
		return rc;
	if (r.p != r.end)
		return bad(reason, REASON_MALFORMED);
	return 0;
}

/*
 * Decodes a PUBLISH (3.3) with fixed-header flags flags. The topic may be
 * empty only with a Topic Alias (3.3.2.1); topic, properties and payload
 * borrow from body.
 */
int
codec5_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
    struct codec5_publish *out, uint8_t *reason)
{
	struct codec_publish	*p = &out->p;
	struct rd		 r;
	int			 rc;

	memset(out, 0, sizeof *out);
	p->qos = (flags >> 1) & 0x03;
	p->retain = (flags & 0x01) != 0;
	p->dup = (flags & 0x08) != 0;
	if (len == 0 || (flags & 0xf0) != 0 || p->qos == 3 ||
	    (p->dup && p->qos == 0))
		return bad(reason, REASON_MALFORMED);	/* 3.3.1-2, -4 */
	r.p = body;
	r.end = body + len;
	if (rd_str(&r, &p->topic) != 0)
		return bad(reason, REASON_MALFORMED);
	if (has_wildcard(&p->topic))
		return bad(reason, REASON_TOPIC_NAME_INVALID);
	if (p->qos > 0 && (rd_u16(&r, &p->packet_id) != 0 ||
	    p->packet_id == 0))
		return bad(reason, REASON_MALFORMED);
	if ((rc = rd_props(&r, CODEC_PUBLISH, &out->props, reason)) != 0)
		return rc;
	if (p->topic.len == 0 && !props_has(&out->props, PROPS_TOPIC_ALIAS))
		return bad(reason, REASON_PROTOCOL_ERROR);
	p->payload = r.p;
	p->payload_len = (uint32_t)(r.end - r.p);
	return 0;
}

/*
 * Decodes PUBACK, PUBREC, PUBREL or PUBCOMP (type) in any of its three
 * forms (3.4.2): packet id; packet id and reason; packet id, reason and
 * properties.
 */
int
codec5_decode_ack(uint8_t type, const uint8_t *body, size_t len,
    struct codec5_ack *out, uint8_t *reason)
{
	struct rd	r;
	int		rc;

	memset(out, 0, sizeof *out);
	if (type < CODEC_PUBACK || type > CODEC_PUBCOMP)
		return bad(reason, REASON_PROTOCOL_ERROR);
	r.p = body;
	r.end = body + len;
	if (len < 2 || rd_u16(&r, &out->packet_id) != 0 ||
	    out->packet_id == 0)
		return bad(reason, REASON_MALFORMED);
	if (len == 2)
		return 0;
	(void)rd_u8(&r, &out->reason);
	if (!reason_allowed(out->reason, type))
		return bad(reason, REASON_PROTOCOL_ERROR);
	if (len == 3)
		return 0;
	if ((rc = rd_props(&r, type, &out->props, reason)) != 0)
		return rc;
	if (r.p != r.end)
		return bad(reason, REASON_MALFORMED);
	return 0;
}

/*
 * Decodes a SUBSCRIBE body (3.8): packet id, properties (one subscription
 * identifier at most), then one or more filter + options pairs. Options:
 * reserved bits 7-6 set or QoS 3 are malformed; retain handling 3, No Local
 * on a shared subscription ($share/...) and no pair at all are protocol
 * errors.
 */
int
codec5_decode_subscribe(const uint8_t *body, size_t len,
    struct codec5_subscribe *out, uint8_t *reason)
{
	struct rd		r;
	struct codec_str	f;
	uint8_t			opt;
	unsigned		n = 0;
	int			rc;

	memset(out, 0, sizeof *out);
	if ((rc = id_props(&r, body, len, CODEC_SUBSCRIBE, &out->packet_id,
	    &out->props, reason)) != 0)
		return rc;
	out->entries.p = r.p;
	out->entries.end = r.end;
	while (r.p != r.end) {
		if (rd_str(&r, &f) != 0 || f.len == 0 || rd_u8(&r, &opt) != 0)
			return bad(reason, REASON_MALFORMED);
		if ((opt & 0xc0) != 0 || (opt & 0x03) == 3)
			return bad(reason, REASON_MALFORMED);
		if ((opt & 0x30) == 0x30)
			return bad(reason, REASON_PROTOCOL_ERROR);
		if ((opt & 0x04) != 0 && f.len >= 7 &&
		    memcmp(f.ptr, "$share/", 7) == 0)
			return bad(reason, REASON_PROTOCOL_ERROR);
		n++;
	}
	if (n == 0)
		return bad(reason, REASON_PROTOCOL_ERROR);	/* 3.8.3-2 */
	out->count = n;
	return 0;
}

/*
 * Next entry of a decoded SUBSCRIBE: 1 with *filter (borrowed) and *opts
 * set, 0 at the end. Bounds are rechecked.
 */
int
codec5_subscribe_next(struct codec_iter *it, struct codec_str *filter,
    struct codec5_subopts *opts)
{
	size_t	n;
	uint8_t	o;

	if (it->p == NULL || it->end - it->p < 3)
		return 0;
	n = (size_t)(it->p[0] << 8 | it->p[1]);
	if ((size_t)(it->end - it->p) < 2 + n + 1)
		return 0;
	filter->ptr = (const char *)it->p + 2;
	filter->len = (uint16_t)n;
	o = it->p[2 + n];
	opts->qos = o & 0x03;
	opts->no_local = (o & 0x04) != 0;
	opts->retain_as_published = (o & 0x08) != 0;
	opts->retain_handling = (o >> 4) & 0x03;
	it->p += 2 + n + 1;
	return 1;
}

/*
 * Decodes an UNSUBSCRIBE body (3.10): packet id, properties, one or more
 * non-empty filters (walk them with codec_unsubscribe_next()).
 */
int
codec5_decode_unsubscribe(const uint8_t *body, size_t len,
    struct codec5_unsubscribe *out, uint8_t *reason)
{
	struct rd		r;
	struct codec_str	f;
	unsigned		n = 0;
	int			rc;

	memset(out, 0, sizeof *out);
	if ((rc = id_props(&r, body, len, CODEC_UNSUBSCRIBE,
	    &out->packet_id, &out->props, reason)) != 0)
		return rc;
	out->entries.p = r.p;
	out->entries.end = r.end;
	while (r.p != r.end) {
		if (rd_str(&r, &f) != 0 || f.len == 0)
			return bad(reason, REASON_MALFORMED);
		n++;
	}
	if (n == 0)
		return bad(reason, REASON_PROTOCOL_ERROR);	/* 3.10.3-2 */
	out->count = n;
	return 0;
}

/*
 * Decodes a SUBACK or UNSUBACK (type) body (3.9, 3.11): packet id,
 * properties, one or more reason codes the packet may carry.
 */
int
codec5_decode_suback(uint8_t type, const uint8_t *body, size_t len,
    struct codec5_suback *out, uint8_t *reason)
{
	struct rd	r;
	const uint8_t	*c;
	int		rc;

	memset(out, 0, sizeof *out);
	if (type != CODEC_SUBACK && type != CODEC_UNSUBACK)
		return bad(reason, REASON_PROTOCOL_ERROR);
	if ((rc = id_props(&r, body, len, type, &out->packet_id,
	    &out->props, reason)) != 0)
		return rc;
	if (r.p == r.end)
		return bad(reason, REASON_PROTOCOL_ERROR);
	for (c = r.p; c < r.end; c++) {
		if (!reason_allowed(*c, type))
			return bad(reason, REASON_PROTOCOL_ERROR);
	}
	out->codes = r.p;
	out->count = (unsigned)(r.end - r.p);
	return 0;
}

/*
 * Decodes a DISCONNECT or AUTH (type) body (3.14, 3.15). DISCONNECT may be
 * empty (Normal disconnection) or a lone reason code; AUTH may be empty
 * (Success), otherwise it has reason and properties, and then the
 * properties must name the Authentication Method (3.15.2.2.2).
 */
int
codec5_decode_disconnect(uint8_t type, const uint8_t *body, size_t len,
    struct codec5_disconnect *out, uint8_t *reason)
{
	struct rd	r;
	int		rc;

	memset(out, 0, sizeof *out);
	if (type != CODEC_DISCONNECT && type != CODEC_AUTH)
		return bad(reason, REASON_PROTOCOL_ERROR);
	if (len == 0)
		return 0;
	r.p = body;
	r.end = body + len;
	(void)rd_u8(&r, &out->reason);
	if (len == 1 && type == CODEC_AUTH)
		return bad(reason, REASON_MALFORMED);
	if (!reason_allowed(out->reason, type))
		return bad(reason, REASON_PROTOCOL_ERROR);
	if (len == 1)
		return 0;
	if ((rc = rd_props(&r, type, &out->props, reason)) != 0)
		return rc;
	if (r.p != r.end)
		return bad(reason, REASON_MALFORMED);
	if (type == CODEC_AUTH &&
	    !props_has(&out->props, PROPS_AUTH_METHOD))
		return bad(reason, REASON_PROTOCOL_ERROR);
	return 0;
}

/*
 * Decodes one framed packet (h from codec5_parse_frame() for version 5,
 * codec_parse_frame() otherwise) with the decoders of protocol level
 * version: 5 uses the 5.0 decoders, 3 and 4 the 3.1.1 ones unchanged. A
 * CONNECT is decoded by the level it names itself, since the version is
 * not known before it; out->version says which. On failure *reason (if
 * not NULL) is the 5.0 reason code for the refusal.
 */
int
codec5_decode(uint8_t version, const struct codec_header *h,
    const uint8_t *body, size_t len, struct codec5_packet *out,
    uint8_t *reason)
{
	size_t	n;
	int	rc;

	memset(out, 0, sizeof *out);
	out->type = h->type;
	out->version = version;
	if (h->type == CODEC_CONNECT) {
		/* The level follows the protocol name. */
		n = len >= 2 ? (size_t)(body[0] << 8 | body[1]) : 0;
		if (len >= 2 && len > 2 + n && body[2 + n] == CODEC5_LEVEL) {
			out->version = CODEC5_LEVEL;
			return codec5_decode_connect(body, len,
			    &out->u.connect5, reason);
		}
		out->version = len > 2 + n ? body[2 + n] : 0;
		rc = codec_decode_connect(body, len, &out->u.connect);
	} else if (version == CODEC5_LEVEL) {
		switch (h->type) {
		case CODEC_CONNACK:
			return codec5_decode_connack(body, len,
			    &out->u.connack5, reason);
		case CODEC_PUBLISH:
			return codec5_decode_publish(h->flags, body, len,
			    &out->u.publish5, reason);
		case CODEC_PUBACK:
		case CODEC_PUBREC:
		case CODEC_PUBREL:
		case CODEC_PUBCOMP:
			return codec5_decode_ack(h->type, body, len,
			    &out->u.ack5, reason);
		case CODEC_SUBSCRIBE:
			return codec5_decode_subscribe(body, len,
			    &out->u.subscribe5, reason);
		case CODEC_SUBACK:
		case CODEC_UNSUBACK:
			return codec5_decode_suback(h->type, body, len,
			    &out->u.suback5, reason);
		case CODEC_UNSUBSCRIBE:
			return codec5_decode_unsubscribe(body, len,
			    &out->u.unsubscribe5, reason);
		case CODEC_DISCONNECT:
		case CODEC_AUTH:
			return codec5_decode_disconnect(h->type, body, len,
			    &out->u.disconnect5, reason);
		case CODEC_PINGREQ:
		case CODEC_PINGRESP:
			rc = codec_decode_empty(len);
			break;
		default:
			rc = GW_EMALFORMED;
			break;
		}
	} else {
		switch (h->type) {
		case CODEC_CONNACK:
			rc = codec_decode_connack(body, len, &out->u.connack);
			break;
		case CODEC_PUBLISH:
			rc = codec_decode_publish(h->flags, body, len,
			    &out->u.publish);
			break;
		case CODEC_PUBACK:
		case CODEC_PUBREC:
		case CODEC_PUBREL:
		case CODEC_PUBCOMP:
		case CODEC_UNSUBACK:
			rc = codec_decode_ack(body, len, &out->u.packet_id);
			break;
		case CODEC_SUBSCRIBE:
			rc = codec_decode_subscribe(body, len,
			    &out->u.subscribe);
			break;
		case CODEC_SUBACK:
			rc = codec_decode_suback(body, len, &out->u.suback);
			break;
		case CODEC_UNSUBSCRIBE:
			rc = codec_decode_unsubscribe(body, len,
			    &out->u.unsubscribe);
			break;
		case CODEC_PINGREQ:
		case CODEC_PINGRESP:
		case CODEC_DISCONNECT:
			rc = codec_decode_empty(len);
			break;
		default:
			rc = GW_EMALFORMED;
			break;
		}
	}
	if (rc != 0 && reason != NULL)
		*reason = reason_from_error(rc);
	return rc;
}
