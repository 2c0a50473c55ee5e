/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wire primitives shared by the MQTT codecs (codec.c for 3.1.1, codec5.c
 * and codec5_enc.c for 5.0), which read and write the same fields: a
 * bounds-checked cursor over a packet body with its two-byte integer,
 * binary data and UTF-8 string readers (1.5), and the writers of a fixed
 * header, a two-byte integer and length-prefixed data into a packet whose
 * exact size was reserved before. Only these codec files include it.
 */
#ifndef GW_CODEC_INT_H
#define GW_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/utf8.h"

/* Cursor over one packet body; every read is bounds-checked. */
struct rd {
	const uint8_t	*p;	/* next unread byte */
	const uint8_t	*end;	/* one past the body */
};

/* One byte; GW_EMALFORMED past the end. */
static inline int
rd_u8(struct rd *r, uint8_t *v)
{
	if (r->end - r->p < 1)
		return GW_EMALFORMED;
	*v = *r->p++;
	return 0;
}

/* Two-byte integer, most significant byte first (1.5.2). */
static inline int
rd_u16(struct rd *r, uint16_t *v)
{
	if (r->end - r->p < 2)
		return GW_EMALFORMED;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return 0;
}

/* Length-prefixed binary data (1.5.3 framing, no content rule). */
static inline int
rd_bin(struct rd *r, struct codec_str *s)
{
	uint16_t	n;

	if (rd_u16(r, &n) != 0 || r->end - r->p < n)
		return GW_EMALFORMED;
	s->ptr = (const char *)r->p;
	s->len = n;
	r->p += n;
	return 0;
}

/* UTF-8 encoded string (1.5.3): well-formed, no U+0000. */
static inline int
rd_str(struct rd *r, struct codec_str *s)
{
	if (rd_bin(r, s) != 0 || !utf8_valid(s->ptr, s->len, false))
		return GW_EMALFORMED;
	return 0;
}

/* Does topic t hold a wildcard character (4.7.1)? */
static inline bool
has_wildcard(const struct codec_str *t)
{
	return memchr(t->ptr, '+', t->len) != NULL ||
	    memchr(t->ptr, '#', t->len) != NULL;
}

/* Writes a fixed header: first byte and remaining-length varint. */
static inline uint8_t *
wr_header(uint8_t *p, uint8_t first, uint32_t remaining)
{
	*p++ = first;
	return p + codec_varint_encode(p, remaining);
}

/* Writes a two-byte integer, most significant byte first. */
static inline uint8_t *
wr_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)(v & 0xff);
	return p + 2;
}

/* Writes n bytes of data with their two-byte length in front. */
static inline uint8_t *
wr_bin(uint8_t *p, const void *data, uint16_t n)
{
	p = wr_u16(p, n);
	if (n != 0)
		memcpy(p, data, n);
	return p + n;
}

/* Writes field s with its two-byte length in front. */
static inline uint8_t *
wr_str(uint8_t *p, const struct codec_str *s)
{
	return wr_bin(p, s->ptr, s->len);
}

/*
 * The connect flags byte of c (3.1.2.3), and in *len the length of the
 * CONNECT payload fields c names (client id, will topic and message, user
 * name, password, each with its two-byte length); 5.0 will properties are
 * the caller's to add.
 */
static inline uint8_t
connect_flags(const struct codec_connect *c, size_t *len)
{
	uint8_t	fl = 0;
	size_t	n = 2 + (size_t)c->client_id.len;

	if (c->clean_session)
		fl |= 0x02;
	if (c->will_flag) {
		fl |= 0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0);
		n += 2 + (size_t)c->will_topic.len + 2 + c->will_payload.len;
	}
	if (c->has_username) {
		fl |= 0x80;
		n += 2 + (size_t)c->username.len;
	}
	if (c->has_password) {
		fl |= 0x40;
		n += 2 + (size_t)c->password.len;
	}
	*len = n;
	return fl;
}

/*
 * Reads connect flags fl (3.1.2.3) into c: GW_EMALFORMED for the reserved
 * bit [MQTT-3.1.2-3], will QoS 3 [MQTT-3.1.2-12], or a will QoS or retain
 * without the will flag [MQTT-3.1.2-11, -13]; else 0.
 */
static inline int
connect_flags_read(struct codec_connect *c, uint8_t fl)
{
	if ((fl & 0x01) != 0)
		return GW_EMALFORMED;
	c->clean_session = (fl & 0x02) != 0;
	c->will_flag = (fl & 0x04) != 0;
	c->will_qos = (fl >> 3) & 0x03;
	c->will_retain = (fl & 0x20) != 0;
	c->has_password = (fl & 0x40) != 0;
	c->has_username = (fl & 0x80) != 0;
	if (c->will_qos == 3)
		return GW_EMALFORMED;
	if (!c->will_flag && (c->will_qos != 0 || c->will_retain))
		return GW_EMALFORMED;
	return 0;
}

/*
 * Like parse (the 3.1.1 or 5.0 header parser) but GW_EMORE until the
 * whole packet, header_len + remaining bytes, is in buf[0..len).
 */
static inline int
parse_frame_with(int (*parse)(const uint8_t *, size_t, size_t,
    struct codec_header *), const uint8_t *buf, size_t len,
    size_t max_packet, struct codec_header *h)
{
	struct codec_header	tmp;
	int			rc;

	if ((rc = parse(buf, len, max_packet, &tmp)) != 0)
		return rc;
	if (len - tmp.header_len < tmp.remaining)
		return GW_EMORE;
	*h = tmp;
	return 0;
}

/*
 * Reserves room for a whole packet with remaining length rem and writes its
 * fixed header; *pp is where the body goes. The caller writes exactly rem
 * bytes and commits header + rem. GW_EMALFORMED when rem is above
 * CODEC_MAX_REMAINING, GW_ENOMEM.
 */
static inline int
packet_begin(struct buf *out, uint8_t first, size_t rem, uint8_t **pp)
{
	int	rc;

	if (rem > CODEC_MAX_REMAINING)
		return GW_EMALFORMED;
	if ((rc = buf_reserve(out, 5 + rem, 0)) != 0)
		return rc;
	*pp = wr_header(buf_tail(out), first, (uint32_t)rem);
	return 0;
}

#endif /* GW_CODEC_INT_H */
