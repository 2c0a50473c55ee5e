/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * MQTT 5.0 encoders (declared in codec5.h; the decoders are in codec5.c).
 *
 * Each encoder first checks its arguments against what the receiving side
 * would accept (a reason code the packet may carry, properties allowed on
 * the packet with values in range, no empty topic without a Topic Alias),
 * then computes the exact packet size, reserves it once and writes it, so
 * a refused or failed encode leaves the buffer as it was. Acks, DISCONNECT
 * and AUTH are written in their shortest form; properties in identifier
 * order, then subscription identifiers, then user properties (props.c).
 */
#include <string.h>

#include "err.h"
#include "mqtt/codec5.h"
#include "mqtt/codec_int.h"
#include "mqtt/reason.h"

static int	block_size(const struct props *, int, size_t *);

/* The empty property block, for callers passing NULL. */
static const struct props no_props;

/* Length of props' block for packet (NULL: empty), without its varint. */
static int
block_size(const struct props *props, int packet, size_t *len)
{
	return props_size(props == NULL ? &no_props : props, packet, len);
}

#define BLOCK(n)	(props_varint_size((uint32_t)(n)) + (n))
#define WR_PROPS(p, props, packet, n)					\
	props_write((p), (props) == NULL ? &no_props : (props), (packet), (n))
#define PACKET_END(out, p)	buf_commit((out), (size_t)((p) - buf_tail(out)))

/*
 * Appends a 5.0 CONNECT from c (borrowed; c->c.protocol_level is ignored,
 * 5 is sent). Will fields and will_props are used only with will_flag.
 * GW_EMALFORMED for will QoS > 2 or properties props_size() refuses.
 */
int
codec5_encode_connect(struct buf *out, const struct codec5_connect *c)
{
	const struct codec_connect	*k = &c->c;
	size_t				 pl, wl = 0, rem;
	uint8_t				*p, fl;
	int				 rc;

	if (k->will_flag && k->will_qos > 2)
		return GW_EMALFORMED;
	if ((rc = props_size(&c->props, CODEC_CONNECT, &pl)) != 0)
		return rc;
	fl = connect_flags(k, &rem);
	rem += 2 + 4 + 1 + 1 + 2 + BLOCK(pl);
	if (k->will_flag) {
		if ((rc = props_size(&c->will_props, PROPS_WILL, &wl)) != 0)
			return rc;
		rem += BLOCK(wl);
	}
	if ((rc = packet_begin(out, CODEC_CONNECT << 4, rem, &p)) != 0)
		return rc;
	p = wr_str(p, &(struct codec_str){ "MQTT", 4 });
	*p++ = CODEC5_LEVEL;
	*p++ = fl;
	p = wr_u16(p, k->keepalive);
	p = props_write(p, &c->props, CODEC_CONNECT, pl);
	p = wr_str(p, &k->client_id);
	if (k->will_flag) {
		p = props_write(p, &c->will_props, PROPS_WILL, wl);
		p = wr_str(p, &k->will_topic);
		p = wr_str(p, &k->will_payload);
	}
	if (k->has_username)
		p = wr_str(p, &k->username);
	if (k->has_password)
		p = wr_str(p, &k->password);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a CONNACK with reason (one CONNACK may carry) and props
 * (borrowed, NULL for none); session present is sent only with Success.
 */
int
codec5_encode_connack(struct buf *out, bool session_present,
    uint8_t reason, const struct props *props)
{
	size_t	 pl;
	uint8_t	*p;
	int	 rc;

	if (!reason_allowed(reason, CODEC_CONNACK))
		return GW_EMALFORMED;
	if ((rc = block_size(props, CODEC_CONNACK, &pl)) != 0)
		return rc;
	if ((rc = packet_begin(out, CODEC_CONNACK << 4, 2 + BLOCK(pl),
	    &p)) != 0)
		return rc;
	*p++ = (session_present && reason == 0) ? 1 : 0;
	*p++ = reason;
	p = WR_PROPS(p, props, CODEC_CONNACK, pl);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a PUBLISH from pub (borrowed: topic, payload, qos, retain, dup,
 * packet_id) with props (NULL for none). The topic may be empty only when
 * props has a Topic Alias. GW_EMALFORMED for QoS > 2, packet id 0 with
 * QoS > 0, DUP with QoS 0 or a packet past the protocol maximum.
 */
int
codec5_encode_publish(struct buf *out, const struct codec_publish *pub,
    const struct props *props)
{
	size_t	 pl, rem;
	uint8_t	*p;
	int	 rc;

	if (pub->qos > 2 || (pub->qos > 0 && pub->packet_id == 0) ||
	    (pub->dup && pub->qos == 0))
		return GW_EMALFORMED;
	if (pub->topic.len == 0 && (props == NULL ||
	    !props_has(props, PROPS_TOPIC_ALIAS)))
		return GW_EMALFORMED;
	if ((rc = block_size(props, CODEC_PUBLISH, &pl)) != 0)
		return rc;
	rem = 2 + (size_t)pub->topic.len + (pub->qos > 0 ? 2 : 0) +
	    BLOCK(pl) + pub->payload_len;
	if ((rc = packet_begin(out, CODEC_PUBLISH << 4 | (pub->dup ? 0x08 : 0) |
	    pub->qos << 1 | (pub->retain ? 0x01 : 0), rem, &p)) != 0)
		return rc;
	p = wr_str(p, &pub->topic);
	if (pub->qos > 0)
		p = wr_u16(p, pub->packet_id);
	p = WR_PROPS(p, props, CODEC_PUBLISH, pl);
	if (pub->payload_len != 0)
		memcpy(p, pub->payload, pub->payload_len);
	p += pub->payload_len;
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends PUBACK, PUBREC, PUBREL or PUBCOMP (type) in its shortest form:
 * 2 bytes for Success without properties, 3 for another reason without
 * properties, else reason and properties.
 */
int
codec5_encode_ack(struct buf *out, uint8_t type, uint16_t packet_id,
    uint8_t reason, const struct props *props)
{
	size_t	 pl, rem;
	uint8_t	*p;
	int	 rc;

	if (type < CODEC_PUBACK || type > CODEC_PUBCOMP || packet_id == 0 ||
	    !reason_allowed(reason, type))
		return GW_EMALFORMED;
	if ((rc = block_size(props, type, &pl)) != 0)
		return rc;
	rem = pl != 0 ? 3 + BLOCK(pl) : reason != 0 ? 3 : 2;
	if ((rc = packet_begin(out, (uint8_t)(type << 4 |
	    (type == CODEC_PUBREL ? 0x02 : 0)), rem, &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	if (rem > 2)
		*p++ = reason;
	if (pl != 0)
		p = WR_PROPS(p, props, type, pl);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a SUBSCRIBE with n >= 1 non-empty filters (borrowed) and their
 * options (QoS <= 2, retain handling <= 2), props NULL for none.
 */
int
codec5_encode_subscribe(struct buf *out, uint16_t packet_id,
    const struct codec_str *filters, const struct codec5_subopts *opts,
    size_t n, const struct props *props)
{
	size_t	 pl, rem, i;
	uint8_t	*p;
	int	 rc;

	if (packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	if ((rc = block_size(props, CODEC_SUBSCRIBE, &pl)) != 0)
		return rc;
	rem = 2 + BLOCK(pl);
	for (i = 0; i < n; i++) {
		if (filters[i].len == 0 || opts[i].qos > 2 ||
		    opts[i].retain_handling > 2)
			return GW_EMALFORMED;
		rem += 2 + filters[i].len + 1;
	}
	if ((rc = packet_begin(out, CODEC_SUBSCRIBE << 4 | 0x02, rem,
	    &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	p = WR_PROPS(p, props, CODEC_SUBSCRIBE, pl);
	for (i = 0; i < n; i++) {
		p = wr_str(p, &filters[i]);
		*p++ = (uint8_t)(opts[i].qos | (opts[i].no_local ? 0x04 : 0) |
		    (opts[i].retain_as_published ? 0x08 : 0) |
		    opts[i].retain_handling << 4);
	}
	PACKET_END(out, p);
	return 0;
}

/* Appends an UNSUBSCRIBE with n >= 1 non-empty filters (borrowed). */
int
codec5_encode_unsubscribe(struct buf *out, uint16_t packet_id,
    const struct codec_str *filters, size_t n, const struct props *props)
{
	size_t	 pl, rem, i;
	uint8_t	*p;
	int	 rc;

	if (packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	if ((rc = block_size(props, CODEC_UNSUBSCRIBE, &pl)) != 0)
		return rc;
	rem = 2 + BLOCK(pl);
	for (i = 0; i < n; i++) {
		if (filters[i].len == 0)
			return GW_EMALFORMED;
		rem += 2 + filters[i].len;
	}
	if ((rc = packet_begin(out, CODEC_UNSUBSCRIBE << 4 | 0x02, rem,
	    &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	p = WR_PROPS(p, props, CODEC_UNSUBSCRIBE, pl);
	for (i = 0; i < n; i++)
		p = wr_str(p, &filters[i]);
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a SUBACK or UNSUBACK (type) with n >= 1 reason codes (borrowed),
 * each one the packet may carry.
 */
int
codec5_encode_suback(struct buf *out, uint8_t type, uint16_t packet_id,
    const uint8_t *codes, size_t n, const struct props *props)
{
	size_t	 pl, i;
	uint8_t	*p;
	int	 rc;

	if ((type != CODEC_SUBACK && type != CODEC_UNSUBACK) ||
	    packet_id == 0 || n == 0)
		return GW_EMALFORMED;
	for (i = 0; i < n; i++) {
		if (!reason_allowed(codes[i], type))
			return GW_EMALFORMED;
	}
	if ((rc = block_size(props, type, &pl)) != 0)
		return rc;
	if ((rc = packet_begin(out, (uint8_t)(type << 4), 2 + BLOCK(pl) + n,
	    &p)) != 0)
		return rc;
	p = wr_u16(p, packet_id);
	p = WR_PROPS(p, props, type, pl);
	memcpy(p, codes, n);
	p += n;
	PACKET_END(out, p);
	return 0;
}

/*
 * Appends a DISCONNECT or AUTH (type) in its shortest form: empty for
 * Success without properties, a lone reason code (DISCONNECT only), else
 * reason and properties. AUTH with a reason or properties must carry an
 * Authentication Method.
 */
int
codec5_encode_disconnect(struct buf *out, uint8_t type, uint8_t reason,
    const struct props *props)
{
	size_t	 pl, rem;
	uint8_t	*p;
	int	 rc;

	if ((type != CODEC_DISCONNECT && type != CODEC_AUTH) ||
	    !reason_allowed(reason, type))
		return GW_EMALFORMED;
	if ((rc = block_size(props, type, &pl)) != 0)
		return rc;
	if (pl == 0 && reason == 0)
		rem = 0;
	else if (pl == 0 && type == CODEC_DISCONNECT)
		rem = 1;
	else
		rem = 1 + BLOCK(pl);
	if (type == CODEC_AUTH && rem != 0 &&
	    (props == NULL || !props_has(props, PROPS_AUTH_METHOD)))
		return GW_EMALFORMED;
	if ((rc = packet_begin(out, (uint8_t)(type << 4), rem, &p)) != 0)
		return rc;
	if (rem > 0)
		*p++ = reason;
	if (rem > 1)
		p = WR_PROPS(p, props, type, pl);
	PACKET_END(out, p);
	return 0;
}
