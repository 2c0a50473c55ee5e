/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * Strict MQTT 3.1.1 codec (section numbers below refer to that standard).
 *
 * Decoders return GW_EMALFORMED for an empty body before forming any
 * pointer from it, so body may be NULL when len is 0.
 *
 * Decoding is split in two steps so the connection layer can bound memory
 * before a body arrives: codec_parse_header() looks only at the fixed header
 * (type, flags, remaining length) and rejects oversize packets as soon as
 * their length bytes are in; once header_len + remaining bytes are buffered,
 * the body decoder for the type checks every field. Body decoders see the
 * whole body, so a field that runs past its end is malformed, not "more".
 *
 * Nothing here allocates or keeps state: decoders fill caller structs with
 * pointers that borrow from the input, encoders reserve the exact packet
 * size in the output buffer once and then write it, so a failed encode
 * leaves the buffer as it was.
 *
 * The fixed-header flag rules (table 2.2) are checked in the header parser;
 * the PUBLISH flags are checked again by codec_decode_publish() since it
 * takes them as an argument. Topic filter syntax is the topic module's job.
 */
#include <string.h>

#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/codec_int.h"
#include "mqtt/utf8.h"

static bool	topic_name_ok(const struct codec_str *);
static bool	publish_args_ok(size_t, size_t, uint8_t, bool, uint16_t);

/* A topic name (4.7.3): non-empty, no wildcard characters. */
static bool
topic_name_ok(const struct codec_str *t)
{
	return t->len != 0 && !has_wildcard(t);
}

/*
 * Encodes v as a remaining-length varint (2.2.3) into out (at least 4
 * bytes). Returns the number of bytes written, 1..4, or 0 if v is above
 * CODEC_MAX_REMAINING (nothing written).
 */
size_t
codec_varint_encode(uint8_t *out, uint32_t v)
{
	size_t	n = 0;

	if (v > CODEC_MAX_REMAINING)
		return 0;
	do {
		out[n] = v & 0x7f;
		v >>= 7;
		if (v != 0)
			out[n] |= 0x80;
		n++;
	} while (v != 0);
	return n;
}

/*
 * Decodes a remaining-length varint from p[0..len). Returns 0 with *v and
 * *used (1..4) set, GW_EMORE if the input ends before the last byte,
 * GW_EMALFORMED if a fourth byte still has its continuation bit. Non-minimal
 * encodings (0x80 0x00) are accepted: 3.1.1 does not forbid them.
 */
int
codec_varint_decode(const uint8_t *p, size_t len, uint32_t *v, size_t *used)
{
	uint32_t	val = 0;
	size_t		i;

	for (i = 0; i < 4; i++) {
		if (i >= len)
			return GW_EMORE;
		val |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*v = val;
			*used = i + 1;
			return 0;
		}
	}
	return GW_EMALFORMED;
}

/*
 * See codec.h. The type and flags are judged from the first byte alone, so
 * a bad first byte is refused before the length arrives.
 */
int
codec_parse_header(const uint8_t *buf, size_t len, size_t max_packet,
    struct codec_header *h)
{
	uint8_t		type, flags;
	uint32_t	rem;
	size_t		used;
	int		rc;

	if (len < 1)
		return GW_EMORE;
	type = buf[0] >> 4;
	flags = buf[0] & 0x0f;
	switch (type) {
	case CODEC_PUBLISH:
		if ((flags & 0x06) == 0x06)
			return GW_EMALFORMED;	/* QoS 3 */
		break;
	case CODEC_PUBREL:
	case CODEC_SUBSCRIBE:
	case CODEC_UNSUBSCRIBE:
		if (flags != 0x02)
			return GW_EMALFORMED;
		break;
	case CODEC_CONNECT:
	case CODEC_CONNACK:
	case CODEC_PUBACK:
	case CODEC_PUBREC:
	case CODEC_PUBCOMP:
	case CODEC_SUBACK:
	case CODEC_UNSUBACK:
	case CODEC_PINGREQ:
	case CODEC_PINGRESP:
	case CODEC_DISCONNECT:
		if (flags != 0)
			return GW_EMALFORMED;
		break;
	default:
		return GW_EMALFORMED;	/* 0 and 15 are reserved */
	}
	if ((rc = codec_varint_decode(buf + 1, len - 1, &rem, &used)) != 0)
		return rc;
	if (max_packet != 0 && (size_t)rem + 1 + used > max_packet)
		return GW_ETOOBIG;
	h->type = type;
	h->flags = flags;
	h->remaining = rem;
	h->header_len = (uint32_t)(1 + used);
	return 0;
}

/*
 * Like codec_parse_header() but returns GW_EMORE until the whole packet
 * (header_len + remaining bytes) is in buf[0..len). Errors come as early as
 * from codec_parse_header(). On 0 the body is buf + h->header_len.
 */
int
codec_parse_frame(const uint8_t *buf, size_t len, size_t max_packet,
    struct codec_header *h)
{
	return parse_frame_with(codec_parse_header, buf, len, max_packet, h);
}

/*
 * Decodes a CONNECT body (3.1). out borrows from body. Returns
 * GW_EUNSUPPORTED, with out->protocol_level set, as soon as a known
 * protocol name comes with a level we do not speak (the rest of such a
 * packet may follow other rules, e.g. MQTT 5 properties, so it is not
 * parsed); the caller answers CONNACK 0x01.
 */
int
codec_decode_connect(const uint8_t *body, size_t len,
    struct codec_connect *out)
{
	struct rd		r;
	struct codec_str	name;
	uint8_t			level, fl;
	bool			v311;

	memset(out, 0, sizeof *out);
	if (len == 0)
		return GW_EMALFORMED;
	r.p = body;
	r.end = body + len;
	if (rd_bin(&r, &name) != 0 || rd_u8(&r, &level) != 0)
		return GW_EMALFORMED;
	if (name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0)
		v311 = true;
	else if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0)
		v311 = false;
	else
		return GW_EMALFORMED;
	out->protocol_level = level;
	if ((v311 && level != 4) || (!v311 && level != 3))
		return GW_EUNSUPPORTED;

	if (rd_u8(&r, &fl) != 0 || rd_u16(&r, &out->keepalive) != 0)
		return GW_EMALFORMED;
	if (connect_flags_read(out, fl) != 0)
		return GW_EMALFORMED;
	if (out->has_password && !out->has_username)
		return GW_EMALFORMED;

	if (rd_str(&r, &out->client_id) != 0)
		return GW_EMALFORMED;
	if (out->will_flag) {
		if (rd_str(&r, &out->will_topic) != 0 ||
		    !topic_name_ok(&out->will_topic))
			return GW_EMALFORMED;
		if (rd_bin(&r, &out->will_payload) != 0)
			return GW_EMALFORMED;
	}
	if (out->has_username && rd_str(&r, &out->username) != 0)
		return GW_EMALFORMED;
	if (out->has_password && rd_bin(&r, &out->password) != 0)
		return GW_EMALFORMED;
	if (r.p != r.end)
		return GW_EMALFORMED;
	return 0;
}

/*
 * Decodes a CONNACK body (3.2): exactly 2 bytes, reserved flag bits 0,
 * return code 0..5, session present only with return code 0 (3.2.2-4).
 */
int
codec_decode_connack(const uint8_t *body, size_t len,
    struct codec_connack *out)
{
	if (len != 2 || (body[0] & 0xfe) != 0 || body[1] > 5)
		return GW_EMALFORMED;
	if (body[0] != 0 && body[1] != 0)
		return GW_EMALFORMED;
	out->session_present = body[0] != 0;
	out->return_code = body[1];
	return 0;
}

/*
 * Decodes a PUBLISH (3.3) with fixed-header flags flags. out borrows topic
 * and payload from body; the payload may be empty.
 */
int
codec_decode_publish(uint8_t flags, const uint8_t *body, size_t len,
    struct codec_publish *out)
{
	struct rd	r;

	out->qos = (flags >> 1) & 0x03;
	out->retain = (flags & 0x01) != 0;
	out->dup = (flags & 0x08) != 0;
	out->packet_id = 0;
	if (len == 0 || (flags & 0xf0) != 0 || out->qos == 3)
		return GW_EMALFORMED;
	r.p = body;
	r.end = body + len;
	if (out->dup && out->qos == 0)
		return GW_EMALFORMED;		/* 3.3.1-2 */
	if (rd_str(&r, &out->topic) != 0 || !topic_name_ok(&out->topic))
		return GW_EMALFORMED;
	if (out->qos > 0) {
		if (rd_u16(&r, &out->packet_id) != 0 || out->packet_id == 0)
			return GW_EMALFORMED;
	}
	out->payload = r.p;
	out->payload_len = (uint32_t)(r.end - r.p);
	return 0;
}

/*
 * Decodes the body of PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK: exactly
 * a non-zero packet id.
 */
int
codec_decode_ack(const uint8_t *body, size_t len, uint16_t *packet_id)
{
	uint16_t	id;

	if (len != 2)
		return GW_EMALFORMED;
	id = (uint16_t)(body[0] << 8 | body[1]);
	if (id == 0)
		return GW_EMALFORMED;
	*packet_id = id;
	return 0;
}

/*
 * Decodes a SUBSCRIBE body (3.8), validating every entry and counting them;
 * out->entries then walks them with codec_subscribe_next().
 */
int
codec_decode_subscribe(const uint8_t *body, size_t len,
    struct codec_subscribe *out)
{
	struct rd		r;
	struct codec_str	f;
	uint8_t			opt;
	unsigned		n = 0;

	if (len == 0)
		return GW_EMALFORMED;
	r.p = body;
	r.end = body + len;
	if (rd_u16(&r, &out->packet_id) != 0 || out->packet_id == 0)
		return GW_EMALFORMED;
	out->entries.p = r.p;
	out->entries.end = r.end;
	while (r.p != r.end) {
		if (rd_str(&r, &f) != 0 || f.len == 0)
			return GW_EMALFORMED;
		if (rd_u8(&r, &opt) != 0 || (opt & 0xfc) != 0 || opt == 3)
			return GW_EMALFORMED;
		n++;
	}
	if (n == 0)
		return GW_EMALFORMED;		/* 3.8.3-3 */
	out->count = n;
	return 0;
}

/*
 * Produces the next SUBSCRIBE entry from an iterator that
 * codec_decode_subscribe() filled: returns 1 with *filter (borrowed) and
 * *qos set, 0 at the end. Bounds are rechecked, so a stray iterator ends
 * instead of over-reading.
 */
int
codec_subscribe_next(struct codec_iter *it, struct codec_str *filter,
    uint8_t *qos)
{
	size_t	n;

	if (it->end - it->p < 3)
		return 0;
	n = (size_t)(it->p[0] << 8 | it->p[1]);
	if ((size_t)(it->end - it->p) < 2 + n + 1)
		return 0;
	filter->ptr = (const char *)it->p + 2;
	filter->len = (uint16_t)n;
	*qos = it->p[2 + n] & 0x03;
	it->p += 2 + n + 1;
	return 1;
}

/*
 * Decodes an UNSUBSCRIBE body (3.10): non-zero packet id, one or more
 * non-empty UTF-8 filters; out->entries walks them.
 */
int
codec_decode_unsubscribe(const uint8_t *body, size_t len,
    struct codec_unsubscribe *out)
{
	struct rd		r;
	struct codec_str	f;
	unsigned		n = 0;

	if (len == 0)
		return GW_EMALFORMED;
	r.p = body;
	r.end = body + len;
	if (rd_u16(&r, &out->packet_id) != 0 || out->packet_id == 0)
		return GW_EMALFORMED;
	out->entries.p = r.p;
	out->entries.end = r.end;
	while (r.p != r.end) {
		if (rd_str(&r, &f) != 0 || f.len == 0)
			return GW_EMALFORMED;
		n++;
	}
	if (n == 0)
		return GW_EMALFORMED;		/* 3.10.3-2 */
	out->count = n;
	return 0;
}

/*
 * Next UNSUBSCRIBE filter (borrowed) from a decoded iterator: 1, or 0 at
 * the end.
 */
int
codec_unsubscribe_next(struct codec_iter *it, struct codec_str *filter)
{
	size_t	n;

	if (it->end - it->p < 2)
		return 0;
	n = (size_t)(it->p[0] << 8 | it->p[1]);
	if ((size_t)(it->end - it->p) < 2 + n)
		return 0;
	filter->ptr = (const char *)it->p + 2;
	filter->len = (uint16_t)n;
	it->p += 2 + n;
	return 1;
}

/*
 * Decodes a SUBACK body (3.9): non-zero packet id and at least one return
 * code, each 0, 1, 2 or 0x80. out->codes borrows from body.
 */
int
codec_decode_suback(const uint8_t *body, size_t len,
    struct codec_suback *out)
{
	size_t	i;

	if (len < 3)
		return GW_EMALFORMED;
	out->packet_id = (uint16_t)(body[0] << 8 | body[1]);
	if (out->packet_id == 0)
		return GW_EMALFORMED;
	for (i = 2; i < len; i++) {
		if (body[i] > 2 && body[i] != CODEC_SUBACK_FAILURE)
			return GW_EMALFORMED;
	}
	out->codes = body + 2;
	out->count = (unsigned)(len - 2);
	return 0;
}

/* PINGREQ, PINGRESP and DISCONNECT carry no body. */
int
codec_decode_empty(size_t len)
{
	return len == 0 ? 0 : GW_EMALFORMED;
}

/* What a PUBLISH encoder may send: see codec_encode_publish(). */
static bool
publish_args_ok(size_t topic_len, size_t payload_len, uint8_t qos, bool dup,
    uint16_t packet_id)
{
	if (topic_len == 0 || topic_len > UINT16_MAX || qos > 2)
		return false;
	if ((qos > 0 && packet_id == 0) || (dup && qos == 0))
		return false;
	if (payload_len > CODEC_MAX_REMAINING ||
	    2 + topic_len + (qos > 0 ? 2 : 0) + payload_len >
	    CODEC_MAX_REMAINING)
		return false;
	return true;
}

#define PACKET_END(out, p)	buf_commit((out), (size_t)((p) - buf_tail(out)))

/*
 * Appends a CONNACK. return_code above 5 is refused (GW_EMALFORMED);
 * session_present is sent only with return code 0 (3.2.2-4).
 */
int
codec_encode_connack(struct buf *out, bool session_present,
    uint8_t return_code)
{
	uint8_t	*p;
	int	 rc;

	if (return_code > CODEC_CONNACK_NOT_AUTHORIZED)
		return GW_EMALFORMED;
	if ((rc = packet_begin(out, CODEC_CONNACK << 4, 2, &p)) != 0)
		return rc;
	*p++ = (session_present && return_code == 0) ? 1 : 0;
	*p++ = return_code;
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a whole PUBLISH (copies topic and payload). Refuses (GW_EMALFORMED)
 * an empty or over-65535-byte topic, QoS > 2, packet id 0 with QoS > 0, DUP
 * with QoS 0 and a packet past the protocol maximum. The topic's content is
 * trusted (callers pass validated topics).
 */
int
codec_encode_publish(struct buf *out, const char *topic, size_t topic_len,
    const void *payload, size_t payload_len, uint8_t qos, bool retain,
    bool dup, uint16_t packet_id)
{
	size_t	hlen;
	int	rc;

	if (!publish_args_ok(topic_len, payload_len, qos, dup, packet_id))
		return GW_EMALFORMED;
	/* Header + topic + id + payload never exceed 5 + remaining. */
	if ((rc = buf_reserve(out, 5 + 2 + topic_len + 2 + payload_len,
	    0)) != 0)
		return rc;
	hlen = codec_publish_header(buf_tail(out), topic, topic_len,
	    payload_len, qos, retain, dup, packet_id);
	if (payload_len != 0)
		memcpy(buf_tail(out) + hlen, payload, payload_len);
	buf_commit(out, hlen + payload_len);
	return 0;
}

/*
 * Writes the PUBLISH fixed header, topic and packet id into hdr (room for
 * CODEC_PUBLISH_HDR_MAX bytes) and returns their length; payload_len bytes
 * of payload must follow on the wire. Returns 0 (nothing usable written)
 * for arguments codec_encode_publish() would refuse.
 */
size_t
codec_publish_header(uint8_t *hdr, const char *topic, size_t topic_len,
    size_t payload_len, uint8_t qos, bool retain, bool dup,
    uint16_t packet_id)
{
	uint8_t	*p = hdr;
	size_t	 rem;

	if (!publish_args_ok(topic_len, payload_len, qos, dup, packet_id))
		return 0;
	rem = 2 + topic_len + (qos > 0 ? 2 : 0) + payload_len;
	p = wr_header(p, CODEC_PUBLISH << 4 | (dup ? 0x08 : 0) | qos << 1 |
	    (retain ? 0x01 : 0), (uint32_t)rem);
	p = wr_bin(p, topic, (uint16_t)topic_len);
	if (qos > 0)
		p = wr_u16(p, packet_id);
	return (size_t)(p - hdr);
}

/*
 * Appends PUBACK, PUBREC, PUBREL (flags 0x2), PUBCOMP or UNSUBACK with a
 * non-zero packet id; any other type or id 0 is GW_EMALFORMED.
 */
int
codec_encode_ack(struct buf *out, enum codec_type type, uint16_t packet_id)
{
	uint8_t	*p, first;
	int	 rc;

	switch (type) {
	case CODEC_PUBACK:
	case CODEC_PUBREC:
	case CODEC_PUBCOMP:
	case CODEC_UNSUBACK:
		first = (uint8_t)(type << 4);
		break;
	case CODEC_PUBREL:
		first = CODEC_PUBREL << 4 | 0x02;
		break;
	default:
		return GW_EMALFORMED;
	}
	if (packet_id == 0)
		return GW_EMALFORMED;
	if ((rc = packet_begin(out, first, 2, &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a SUBACK with n >= 1 return codes (borrowed), each 0, 1, 2 or
 * 0x80, and a non-zero packet id; anything else is GW_EMALFORMED.
 */
int
codec_encode_suback(struct buf *out, uint16_t packet_id,
    const uint8_t *codes, size_t n)
{
	uint8_t	*p;
	size_t	 i;
	int	 rc;

	if (packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	for (i = 0; i < n; i++) {
		if (codes[i] > 2 && codes[i] != CODEC_SUBACK_FAILURE)
			return GW_EMALFORMED;
	}
	if ((rc = packet_begin(out, CODEC_SUBACK << 4, 2 + n, &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	memcpy(p, codes, n);
	p += n;
	PACKET_END(out, p);
	return 0;
}

/* Appends PINGREQ, PINGRESP or DISCONNECT; other types are GW_EMALFORMED. */
int
codec_encode_empty(struct buf *out, enum codec_type type)
{
	uint8_t	*p;
	int	 rc;

	if (type != CODEC_PINGREQ && type != CODEC_PINGRESP &&
	    type != CODEC_DISCONNECT)
		return GW_EMALFORMED;
	if ((rc = packet_begin(out, (uint8_t)(type << 4), 0, &p)) != 0)
		return rc;
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a CONNECT built from c (borrowed). protocol_level 4 sends "MQTT",
 * 3 sends "MQIsdp"; other levels are GW_EMALFORMED, as are will QoS > 2 and
 * a password without a username. Will fields are ignored unless will_flag,
 * username/password unless has_username/has_password.
 */
int
codec_encode_connect(struct buf *out, const struct codec_connect *c)
{
	const char	*name;
	uint16_t	 nlen;
	uint8_t		*p, fl;
	size_t		 rem;
	int		 rc;

	if (c->protocol_level == 4) {
		name = "MQTT";
		nlen = 4;
	} else if (c->protocol_level == 3) {
		name = "MQIsdp";
		nlen = 6;
	} else
		return GW_EMALFORMED;
	if ((c->will_flag && c->will_qos > 2) ||
	    (c->has_password && !c->has_username))
		return GW_EMALFORMED;

	fl = connect_flags(c, &rem);
	rem += 2 + nlen + 1 + 1 + 2;
	if ((rc = packet_begin(out, CODEC_CONNECT << 4, rem, &p)) != 0)
		return rc;
	p = wr_bin(p, name, nlen);
	*p++ = c->protocol_level;
	*p++ = fl;
	p = wr_u16(p, c->keepalive);
	p = wr_bin(p, c->client_id.ptr, c->client_id.len);
	if (c->will_flag) {
		p = wr_bin(p, c->will_topic.ptr, c->will_topic.len);
		p = wr_bin(p, c->will_payload.ptr, c->will_payload.len);
	}
	if (c->has_username)
		p = wr_bin(p, c->username.ptr, c->username.len);
	if (c->has_password)
		p = wr_bin(p, c->password.ptr, c->password.len);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a SUBSCRIBE with n >= 1 filters (borrowed, non-empty) and their
 * requested QoS (<= 2); the packet id must be non-zero.
 */
int
codec_encode_subscribe(struct buf *out, uint16_t packet_id,
    const struct codec_str *filters, const uint8_t *qos, size_t n)
{
	uint8_t	*p;
	size_t	 i, rem = 2;
	int	 rc;

	if (packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	for (i = 0; i < n; i++) {
		if (filters[i].len == 0 || qos[i] > 2)
			return GW_EMALFORMED;
		rem += 2 + filters[i].len + 1;
	}
	if ((rc = packet_begin(out, CODEC_SUBSCRIBE << 4 | 0x02, rem,
	    &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	for (i = 0; i < n; i++) {
		p = wr_bin(p, filters[i].ptr, filters[i].len);
		*p++ = qos[i];
	}
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends an UNSUBSCRIBE with n >= 1 non-empty filters (borrowed) and a
 * non-zero packet id.
 */
int
codec_encode_unsubscribe(struct buf *out, uint16_t packet_id,
    const struct codec_str *filters, size_t n)
{
	uint8_t	*p;
	size_t	 i, rem = 2;
	int	 rc;

	if (packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	for (i = 0; i < n; i++) {
		if (filters[i].len == 0)
			return GW_EMALFORMED;
		rem += 2 + filters[i].len;
	}
	if ((rc = packet_begin(out, CODEC_UNSUBSCRIBE << 4 | 0x02, rem,
	    &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	for (i = 0; i < n; i++)
		p = wr_bin(p, filters[i].ptr, filters[i].len);
	PACKET_END(out, p);
	return 0;
}

/* Returns a static name for packet type type, "UNKNOWN" if out of range. */
const char *
codec_type_name(int type)
{
	static const char *const names[] = {
		NULL, "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
		"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE",
		"UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT"
	};

	if (type < CODEC_CONNECT || type > CODEC_DISCONNECT)
		return "UNKNOWN";
	return names[type];
}
