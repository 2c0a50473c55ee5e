/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * Unit tests for the MQTT 3.1.1 codec and the UTF-8 validator: round trips
 * of all 14 packet types, byte-exact encodings, every malformed form the
 * codec must refuse (inline, and from the .bin files in
 * tests/fixtures/packets), varint boundaries, GW_EMORE for every prefix of
 * a valid packet, and UTF-8 edge cases. Inputs are copied into heap blocks
 * of exactly their length, so AddressSanitizer reports any read past the
 * end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "codectest.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec.h"
#include "mqtt/utf8.h"

#define STR(s)	((struct codec_str){ (s), (uint16_t)(sizeof (s) - 1) })

/* Runs the body decoder for h->type; the result of the whole decode. */
static int
decode_body(const struct codec_header *h, const uint8_t *body, size_t len)
{
	struct codec_connect		c;
	struct codec_connack		ca;
	struct codec_publish		pub;
	struct codec_subscribe		sub;
	struct codec_unsubscribe	uns;
	struct codec_suback		sa;
	uint16_t			id;

	switch (h->type) {
	case CODEC_CONNECT:
		return codec_decode_connect(body, len, &c);
	case CODEC_CONNACK:
		return codec_decode_connack(body, len, &ca);
	case CODEC_PUBLISH:
		return codec_decode_publish(h->flags, body, len, &pub);
	case CODEC_PUBACK:
	case CODEC_PUBREC:
	case CODEC_PUBREL:
	case CODEC_PUBCOMP:
	case CODEC_UNSUBACK:
		return codec_decode_ack(body, len, &id);
	case CODEC_SUBSCRIBE:
		return codec_decode_subscribe(body, len, &sub);
	case CODEC_SUBACK:
		return codec_decode_suback(body, len, &sa);
	case CODEC_UNSUBSCRIBE:
		return codec_decode_unsubscribe(body, len, &uns);
	default:
		return codec_decode_empty(len);
	}
}

/* Frames and decodes one whole packet held in an exact heap copy. */
static int
decode_packet(const uint8_t *pkt, size_t len, size_t max)
{
	struct codec_header	 h;
	uint8_t			*d = codectest_dup(pkt, len);
	int			 rc;

	rc = codec_parse_frame(d, len, max, &h);
	if (rc == 0) {
		CU_ASSERT_EQUAL(h.header_len + h.remaining, len);
		rc = decode_body(&h, d + h.header_len, h.remaining);
	}
	free(d);
	return rc;
}

#define PKT_TEST(fn, want, ...)						\
static void								\
fn(void)								\
{									\
	static const uint8_t p[] = { __VA_ARGS__ };			\
	CU_ASSERT_EQUAL(decode_packet(p, sizeof p, 0), (want));		\
}

/* ---- fixtures ---------------------------------------------------- */

static void
check_fixture(const char *name, int want)
{
	uint8_t	*d;
	size_t	 len;

	d = codectest_load(name, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(decode_packet(d, len, 0), want);
	free(d);
}

#define FIXTURE_TEST(fn, name, want)					\
static void								\
fn(void)								\
{									\
	check_fixture(name, want);					\
}

FIXTURE_TEST(fx_connect_v311, "connect_v311.bin", 0)
FIXTURE_TEST(fx_connect_v31, "connect_v31.bin", 0)
FIXTURE_TEST(fx_publish_qos1, "publish_qos1.bin", 0)
FIXTURE_TEST(fx_publish_qos0_empty, "publish_qos0_empty.bin", 0)
FIXTURE_TEST(fx_subscribe_two, "subscribe_two.bin", 0)
FIXTURE_TEST(fx_hdr_varint_5bytes, "hdr_varint_5bytes.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_type0, "hdr_type0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_type15, "hdr_type15.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_pubrel_flags0, "hdr_pubrel_flags0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_subscribe_flags0, "hdr_subscribe_flags0.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_puback_flags, "hdr_puback_flags.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_hdr_publish_qos3, "hdr_publish_qos3.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_connect_mqtt5, "connect_mqtt5.bin", GW_EUNSUPPORTED)
FIXTURE_TEST(fx_connect_mqtt_level3, "connect_mqtt_level3.bin",
    GW_EUNSUPPORTED)
FIXTURE_TEST(fx_connect_bad_name, "connect_bad_name.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_connect_reserved_flag, "connect_reserved_flag.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_connect_will_qos3, "connect_will_qos3.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_connect_will_qos_no_will, "connect_will_qos_no_will.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_connect_password_no_user, "connect_password_no_user.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_connect_will_wildcard, "connect_will_wildcard.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_connect_clientid_nul, "connect_clientid_nul.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_connect_trailing, "connect_trailing.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_publish_wildcard_topic, "publish_wildcard_topic.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_publish_hash_topic, "publish_hash_topic.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_publish_empty_topic, "publish_empty_topic.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_publish_dup_qos0, "publish_dup_qos0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_publish_qos1_id0, "publish_qos1_id0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_publish_topic_nul, "publish_topic_nul.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_publish_topic_overlong, "publish_topic_overlong.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_publish_topic_surrogate, "publish_topic_surrogate.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_subscribe_no_entries, "subscribe_no_entries.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_subscribe_id0, "subscribe_id0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_subscribe_qos3, "subscribe_qos3.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_subscribe_opts_reserved, "subscribe_opts_reserved.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_subscribe_empty_filter, "subscribe_empty_filter.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_unsubscribe_no_entries, "unsubscribe_no_entries.bin",
    GW_EMALFORMED)
FIXTURE_TEST(fx_suback_bad_code, "suback_bad_code.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_puback_len3, "puback_len3.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_puback_id0, "puback_id0.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_pingreq_len1, "pingreq_len1.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_connack_bad_rc, "connack_bad_rc.bin", GW_EMALFORMED)
FIXTURE_TEST(fx_connack_bad_flags, "connack_bad_flags.bin", GW_EMALFORMED)

/* ---- inline malformed forms -------------------------------------- */

/* CONNECT: 00 04 'MQTT' 04 flags keepalive(2) then the payload. */
#define CONNECT_HEAD	0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04

PKT_TEST(bad_connect_mqisdp_level4, GW_EUNSUPPORTED,
    0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02,
    0x00, 0x3c, 0x00, 0x01, 'x')
PKT_TEST(ok_connect_mqisdp_level3, 0,
    0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02,
    0x00, 0x3c, 0x00, 0x01, 'x')
PKT_TEST(bad_connect_name_case, GW_EMALFORMED,
    0x10, 0x0d, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02,
    0x00, 0x3c, 0x00, 0x01, 'x')
PKT_TEST(bad_connect_will_retain_no_will, GW_EMALFORMED,
    0x10, 0x0d, CONNECT_HEAD, 0x22, 0x00, 0x3c, 0x00, 0x01, 'x')
PKT_TEST(bad_connect_clientid_utf8, GW_EMALFORMED,
    0x10, 0x0d, CONNECT_HEAD, 0x02, 0x00, 0x3c, 0x00, 0x01, 0xff)
PKT_TEST(bad_connect_will_topic_empty, GW_EMALFORMED,
    0x10, 0x11, CONNECT_HEAD, 0x06, 0x00, 0x3c, 0x00, 0x01, 'x',
    0x00, 0x00, 0x00, 0x00)
PKT_TEST(bad_connect_will_topic_plus, GW_EMALFORMED,
    0x10, 0x12, CONNECT_HEAD, 0x06, 0x00, 0x3c, 0x00, 0x01, 'x',
    0x00, 0x01, '+', 0x00, 0x00)
PKT_TEST(bad_connect_will_topic_nul, GW_EMALFORMED,
    0x10, 0x12, CONNECT_HEAD, 0x06, 0x00, 0x3c, 0x00, 0x01, 'x',
    0x00, 0x01, 0x00, 0x00, 0x00)
PKT_TEST(bad_connect_username_utf8, GW_EMALFORMED,
    0x10, 0x11, CONNECT_HEAD, 0x82, 0x00, 0x3c, 0x00, 0x01, 'x',
    0x00, 0x02, 0xc3, 0x28)
PKT_TEST(bad_connect_username_missing, GW_EMALFORMED,
    0x10, 0x0d, CONNECT_HEAD, 0x82, 0x00, 0x3c, 0x00, 0x01, 'x')
PKT_TEST(bad_connect_password_short, GW_EMALFORMED,
    0x10, 0x12, CONNECT_HEAD, 0xc2, 0x00, 0x3c, 0x00, 0x01, 'x',
    0x00, 0x00, 0x00, 0x05, 'p')
PKT_TEST(bad_connect_clientid_short, GW_EMALFORMED,
    0x10, 0x0d, CONNECT_HEAD, 0x02, 0x00, 0x3c, 0x00, 0x02, 'x')
PKT_TEST(bad_connect_no_flags, GW_EMALFORMED,
    0x10, 0x07, CONNECT_HEAD)
PKT_TEST(bad_connect_empty, GW_EMALFORMED, 0x10, 0x00)
PKT_TEST(ok_connect_empty_clientid, 0,
    0x10, 0x0c, CONNECT_HEAD, 0x02, 0x00, 0x3c, 0x00, 0x00)
PKT_TEST(ok_connect_binary_password, 0,
    0x10, 0x14, CONNECT_HEAD, 0xc2, 0x00, 0x3c, 0x00, 0x00,
    0x00, 0x01, 'u', 0x00, 0x03, 0x00, 0xff, 0xc0)

PKT_TEST(bad_publish_topic_utf8, GW_EMALFORMED,
    0x30, 0x04, 0x00, 0x02, 0xe2, 0x82)
PKT_TEST(bad_publish_topic_too_long, GW_EMALFORMED,
    0x30, 0x04, 0x00, 0x05, 'a', 'b')
PKT_TEST(bad_publish_qos2_id0, GW_EMALFORMED,
    0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x00)
PKT_TEST(bad_publish_qos1_no_id, GW_EMALFORMED,
    0x32, 0x04, 0x00, 0x01, 'a', 0x00)
PKT_TEST(bad_publish_dup_retain_qos0, GW_EMALFORMED,
    0x39, 0x03, 0x00, 0x01, 'a')
PKT_TEST(ok_publish_dup_qos2, 0,
    0x3d, 0x05, 0x00, 0x01, 'a', 0x00, 0x01)
PKT_TEST(ok_publish_binary_payload, 0,
    0x30, 0x06, 0x00, 0x01, 'a', 0x00, 0xff, 0xfe)

PKT_TEST(bad_subscribe_filter_utf8, GW_EMALFORMED,
    0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x80, 0x00)
PKT_TEST(bad_subscribe_filter_nul, GW_EMALFORMED,
    0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00)
PKT_TEST(bad_subscribe_no_options, GW_EMALFORMED,
    0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a')
PKT_TEST(bad_subscribe_opts_high, GW_EMALFORMED,
    0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x81)
PKT_TEST(bad_subscribe_second_bad, GW_EMALFORMED,
    0x82, 0x0a, 0x00, 0x01, 0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'b', 0x03)
PKT_TEST(bad_subscribe_short_id, GW_EMALFORMED, 0x82, 0x01, 0x00)
PKT_TEST(bad_unsubscribe_id0, GW_EMALFORMED,
    0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a')
PKT_TEST(bad_unsubscribe_empty_filter, GW_EMALFORMED,
    0xa2, 0x04, 0x00, 0x01, 0x00, 0x00)
PKT_TEST(bad_unsubscribe_filter_utf8, GW_EMALFORMED,
    0xa2, 0x05, 0x00, 0x01, 0x00, 0x01, 0xc1)
PKT_TEST(bad_unsubscribe_short, GW_EMALFORMED,
    0xa2, 0x05, 0x00, 0x01, 0x00, 0x02, 'a')
PKT_TEST(bad_unsubscribe_flags, GW_EMALFORMED,
    0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a')
PKT_TEST(bad_suback_code_81, GW_EMALFORMED, 0x90, 0x03, 0x00, 0x01, 0x81)
PKT_TEST(bad_suback_id0, GW_EMALFORMED, 0x90, 0x03, 0x00, 0x00, 0x00)
PKT_TEST(bad_suback_no_codes, GW_EMALFORMED, 0x90, 0x02, 0x00, 0x01)
PKT_TEST(ok_suback_all_codes, 0,
    0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80)

PKT_TEST(bad_pubrec_len1, GW_EMALFORMED, 0x50, 0x01, 0x01)
PKT_TEST(bad_pubrel_id0, GW_EMALFORMED, 0x62, 0x02, 0x00, 0x00)
PKT_TEST(bad_pubcomp_len0, GW_EMALFORMED, 0x70, 0x00)
PKT_TEST(bad_unsuback_len3, GW_EMALFORMED, 0xb0, 0x03, 0x00, 0x01, 0x00)
PKT_TEST(bad_pingresp_len1, GW_EMALFORMED, 0xd0, 0x01, 0x00)
PKT_TEST(bad_disconnect_len2, GW_EMALFORMED, 0xe0, 0x02, 0x00, 0x00)
PKT_TEST(bad_disconnect_flags, GW_EMALFORMED, 0xe2, 0x00)
PKT_TEST(bad_connack_len3, GW_EMALFORMED, 0x20, 0x03, 0x00, 0x00, 0x00)
PKT_TEST(bad_connack_sp_with_error, GW_EMALFORMED, 0x20, 0x02, 0x01, 0x05)
PKT_TEST(ok_connack_rc5, 0, 0x20, 0x02, 0x00, 0x05)

/* Reserved flag bits for every type against table 2.2. */
static void
test_header_flags(void)
{
	struct codec_header	h;
	uint8_t			b[2], type, fl;
	int			rc, want;

	for (type = 0; type < 16; type++) {
		for (fl = 0; fl < 16; fl++) {
			b[0] = (uint8_t)(type << 4 | fl);
			b[1] = 0;
			rc = codec_parse_header(b, 2, 0, &h);
			if (type == 0 || type == 15)
				want = GW_EMALFORMED;
			else if (type == CODEC_PUBLISH)
				want = (fl & 6) == 6 ? GW_EMALFORMED : 0;
			else if (type == CODEC_PUBREL ||
			    type == CODEC_SUBSCRIBE ||
			    type == CODEC_UNSUBSCRIBE)
				want = fl == 2 ? 0 : GW_EMALFORMED;
			else
				want = fl == 0 ? 0 : GW_EMALFORMED;
			CU_ASSERT_EQUAL(rc, want);
			if (rc == 0) {
				CU_ASSERT_EQUAL(h.type, type);
				CU_ASSERT_EQUAL(h.flags, fl);
				CU_ASSERT_EQUAL(h.header_len, 2);
				CU_ASSERT_EQUAL(h.remaining, 0);
			}
			/* The first byte alone is judged already. */
			rc = codec_parse_header(b, 1, 0, &h);
			CU_ASSERT_EQUAL(rc, want == 0 ? GW_EMORE : want);
		}
	}
}

/* Oversize packets are refused from the length bytes alone. */
static void
test_header_too_big(void)
{
	static const uint8_t	big[] = { 0x30, 0xe8, 0x07 };	/* 1000 */
	static const uint8_t	huge[] = { 0x30, 0xff, 0xff, 0xff, 0x7f };
	struct codec_header	h;
	uint8_t			*d = codectest_dup(big, sizeof big);

	CU_ASSERT_EQUAL(codec_parse_header(d, 3, 100, &h), GW_ETOOBIG);
	CU_ASSERT_EQUAL(codec_parse_frame(d, 3, 100, &h), GW_ETOOBIG);
	CU_ASSERT_EQUAL(codec_parse_header(d, 3, 1003, &h), 0);
	CU_ASSERT_EQUAL(h.remaining, 1000);
	CU_ASSERT_EQUAL(h.header_len, 3);
	CU_ASSERT_EQUAL(codec_parse_header(d, 3, 1002, &h), GW_ETOOBIG);
	CU_ASSERT_EQUAL(codec_parse_header(d, 3, 0, &h), 0);
	CU_ASSERT_EQUAL(codec_parse_frame(d, 3, 0, &h), GW_EMORE);
	/* Incomplete length bytes: still waiting, not yet too big. */
	CU_ASSERT_EQUAL(codec_parse_header(d, 2, 100, &h), GW_EMORE);
	free(d);

	d = codectest_dup(huge, sizeof huge);
	CU_ASSERT_EQUAL(codec_parse_header(d, sizeof huge, 0, &h), 0);
	CU_ASSERT_EQUAL(h.remaining, CODEC_MAX_REMAINING);
	CU_ASSERT_EQUAL(h.header_len, 5);
	CU_ASSERT_EQUAL(codec_parse_header(d, sizeof huge, 1u << 20, &h),
	    GW_ETOOBIG);
	free(d);
}

/* ---- varints ----------------------------------------------------- */

static void
test_varint_boundaries(void)
{
	static const struct {
		uint32_t	v;
		size_t		n;
		uint8_t		b[4];
	} t[] = {
		{ 0, 1, { 0x00 } },
		{ 127, 1, { 0x7f } },
		{ 128, 2, { 0x80, 0x01 } },
		{ 16383, 2, { 0xff, 0x7f } },
		{ 16384, 3, { 0x80, 0x80, 0x01 } },
		{ 2097151, 3, { 0xff, 0xff, 0x7f } },
		{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
		{ 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
	};
	uint8_t		out[4], *d;
	uint32_t	v;
	size_t		i, n, used;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		memset(out, 0xaa, sizeof out);
		n = codec_varint_encode(out, t[i].v);
		CU_ASSERT_EQUAL(n, t[i].n);
		CU_ASSERT(memcmp(out, t[i].b, t[i].n) == 0);
		d = codectest_dup(t[i].b, t[i].n);
		CU_ASSERT_EQUAL(codec_varint_decode(d, t[i].n, &v, &used), 0);
		CU_ASSERT_EQUAL(v, t[i].v);
		CU_ASSERT_EQUAL(used, t[i].n);
		/* Every shorter prefix needs more. */
		for (n = 0; n < t[i].n; n++)
			CU_ASSERT_EQUAL(codec_varint_decode(d, n, &v, &used),
			    GW_EMORE);
		free(d);
	}
	CU_ASSERT_EQUAL(codec_varint_encode(out, CODEC_MAX_REMAINING + 1), 0);
	CU_ASSERT_EQUAL(codec_varint_encode(out, UINT32_MAX), 0);
}

static void
test_varint_five_bytes(void)
{
	static const uint8_t	five[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t	nonmin[] = { 0x80, 0x00 };
	uint8_t			*d;
	uint32_t		v;
	size_t			used;

	d = codectest_dup(five, sizeof five);
	CU_ASSERT_EQUAL(codec_varint_decode(d, sizeof five, &v, &used),
	    GW_EMALFORMED);
	/* Malformed as soon as the 4th byte shows a continuation bit. */
	CU_ASSERT_EQUAL(codec_varint_decode(d, 4, &v, &used), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_varint_decode(d, 3, &v, &used), GW_EMORE);
	free(d);
	/* 3.1.1 does not demand the shortest form. */
	d = codectest_dup(nonmin, sizeof nonmin);
	CU_ASSERT_EQUAL(codec_varint_decode(d, 2, &v, &used), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(used, 2);
	free(d);
}

/* ---- round trips ------------------------------------------------- */

/* Frames the single packet in b; returns its body, checks type. */
static const uint8_t *
frame_one(const struct buf *b, uint8_t type, struct codec_header *h)
{
	int	rc;

	rc = codec_parse_frame(buf_head(b), buf_used(b), 0, h);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(h->type, type);
	CU_ASSERT_EQUAL(h->header_len + h->remaining, buf_used(b));
	return buf_head(b) + h->header_len;
}

static bool
str_eq(struct codec_str a, struct codec_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr,
	    a.len) == 0);
}

static void
test_rt_connect(void)
{
	struct codec_connect	c, d;
	struct codec_header	h;
	struct buf		b = BUF_INIT;
	const uint8_t		*body;

	memset(&c, 0, sizeof c);
	c.protocol_level = 4;
	c.clean_session = true;
	c.keepalive = 60;
	c.client_id = STR("dev-1");
	c.will_flag = true;
	c.will_qos = 1;
	c.will_retain = true;
	c.will_topic = STR("site/1/will");
	c.will_payload = STR("\0\377gone");
	c.has_username = true;
	c.username = STR("alice");
	c.has_password = true;
	c.password = STR("pw\0");
	CU_ASSERT_EQUAL_FATAL(codec_encode_connect(&b, &c), 0);
	body = frame_one(&b, CODEC_CONNECT, &h);
	CU_ASSERT_EQUAL(codec_decode_connect(body, h.remaining, &d), 0);
	CU_ASSERT_EQUAL(d.protocol_level, 4);
	CU_ASSERT(d.clean_session);
	CU_ASSERT_EQUAL(d.keepalive, 60);
	CU_ASSERT(str_eq(d.client_id, c.client_id));
	CU_ASSERT(d.will_flag);
	CU_ASSERT_EQUAL(d.will_qos, 1);
	CU_ASSERT(d.will_retain);
	CU_ASSERT(str_eq(d.will_topic, c.will_topic));
	CU_ASSERT(str_eq(d.will_payload, c.will_payload));
	CU_ASSERT(d.has_username);
	CU_ASSERT(str_eq(d.username, c.username));
	CU_ASSERT(d.has_password);
	CU_ASSERT(str_eq(d.password, c.password));
	/* Borrowed pointers point into the input. */
	CU_ASSERT((const uint8_t *)d.client_id.ptr > body &&
	    (const uint8_t *)d.client_id.ptr < body + h.remaining);
	buf_free(&b);

	/* Minimal 3.1 connect; will fields are ignored without the flag. */
	memset(&c, 0, sizeof c);
	c.protocol_level = 3;
	c.keepalive = 10;
	c.client_id = STR("legacy");
	c.will_qos = 2;
	c.will_retain = true;
	CU_ASSERT_EQUAL_FATAL(codec_encode_connect(&b, &c), 0);
	body = frame_one(&b, CODEC_CONNECT, &h);
	CU_ASSERT_EQUAL(codec_decode_connect(body, h.remaining, &d), 0);
	CU_ASSERT_EQUAL(d.protocol_level, 3);
	CU_ASSERT(!d.clean_session);
	CU_ASSERT(!d.will_flag);
	CU_ASSERT_EQUAL(d.will_qos, 0);
	CU_ASSERT(!d.will_retain);
	CU_ASSERT(!d.has_username);
	CU_ASSERT(!d.has_password);
	CU_ASSERT(str_eq(d.client_id, c.client_id));
	buf_free(&b);
}

/* The encoder reproduces the hand-written fixtures byte for byte. */
static void
test_connect_bytes(void)
{
	struct codec_connect	c;
	struct buf		b = BUF_INIT;
	uint8_t			*fx;
	size_t			len;

	memset(&c, 0, sizeof c);
	c.protocol_level = 4;
	c.clean_session = true;
	c.keepalive = 60;
	c.client_id = STR("dev-1");
	c.will_flag = true;
	c.will_qos = 1;
	c.will_retain = true;
	c.will_topic = STR("site/1/will");
	c.will_payload = STR("\0\377gone");
	c.has_username = true;
	c.username = STR("alice");
	c.has_password = true;
	c.password = STR("pw\0");
	CU_ASSERT_EQUAL_FATAL(codec_encode_connect(&b, &c), 0);
	fx = codectest_load("connect_v311.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
	CU_ASSERT_EQUAL(buf_used(&b), len);
	CU_ASSERT(len == buf_used(&b) && memcmp(fx, buf_head(&b), len) == 0);
	free(fx);
	buf_free(&b);

	memset(&c, 0, sizeof c);
	c.protocol_level = 3;
	c.clean_session = true;
	c.keepalive = 10;
	c.client_id = STR("legacy");
	CU_ASSERT_EQUAL_FATAL(codec_encode_connect(&b, &c), 0);
	fx = codectest_load("connect_v31.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
	CU_ASSERT(len == buf_used(&b) && memcmp(fx, buf_head(&b), len) == 0);
	free(fx);
	buf_free(&b);
}

static void
test_rt_connack(void)
{
	static const uint8_t	want[] = { 0x20, 0x02, 0x01, 0x00 };
	struct codec_connack	ca;
	struct codec_header	h;
	struct buf		b = BUF_INIT;
	const uint8_t		*body;
	uint8_t			rc;

	CU_ASSERT_EQUAL_FATAL(codec_encode_connack(&b, true, 0), 0);
	CU_ASSERT(buf_used(&b) == 4 && memcmp(buf_head(&b), want, 4) == 0);
	body = frame_one(&b, CODEC_CONNACK, &h);
	CU_ASSERT_EQUAL(codec_decode_connack(body, h.remaining, &ca), 0);
	CU_ASSERT(ca.session_present);
	CU_ASSERT_EQUAL(ca.return_code, 0);
	buf_free(&b);

	for (rc = 1; rc <= 5; rc++) {
		/* Session present is dropped with an error code. */
		CU_ASSERT_EQUAL_FATAL(codec_encode_connack(&b, true, rc), 0);
		body = frame_one(&b, CODEC_CONNACK, &h);
		CU_ASSERT_EQUAL(codec_decode_connack(body, h.remaining, &ca),
		    0);
		CU_ASSERT(!ca.session_present);
		CU_ASSERT_EQUAL(ca.return_code, rc);
		buf_reset(&b);
	}
	buf_free(&b);
}

static void
rt_publish(uint8_t qos, bool retain, bool dup, uint16_t id,
    const char *topic, size_t plen)
{
	struct codec_publish	p;
	struct codec_header	h;
	struct buf		b = BUF_INIT;
	uint8_t			*payload, *hdr;
	const uint8_t		*body;
	size_t			i, hlen, tlen = strlen(topic);

	payload = malloc(plen + 1);
	for (i = 0; i < plen; i++)
		payload[i] = (uint8_t)(i * 7);
	CU_ASSERT_EQUAL_FATAL(codec_encode_publish(&b, topic, tlen, payload,
	    plen, qos, retain, dup, id), 0);
	body = frame_one(&b, CODEC_PUBLISH, &h);
	CU_ASSERT_EQUAL(codec_decode_publish(h.flags, body, h.remaining, &p),
	    0);
	CU_ASSERT_EQUAL(p.qos, qos);
	CU_ASSERT_EQUAL(p.retain, retain);
	CU_ASSERT_EQUAL(p.dup, dup);
	CU_ASSERT_EQUAL(p.packet_id, qos > 0 ? id : 0);
	CU_ASSERT(p.topic.len == tlen &&
	    memcmp(p.topic.ptr, topic, tlen) == 0);
	CU_ASSERT_EQUAL(p.payload_len, plen);
	CU_ASSERT(plen == 0 || memcmp(p.payload, payload, plen) == 0);

	/* The zero-copy header is the same bytes up to the payload. */
	hdr = malloc(CODEC_PUBLISH_HDR_MAX);
	hlen = codec_publish_header(hdr, topic, tlen, plen, qos, retain, dup,
	    id);
	CU_ASSERT_EQUAL(hlen + plen, buf_used(&b));
	CU_ASSERT(memcmp(hdr, buf_head(&b), hlen) == 0);
	free(hdr);
	free(payload);
	buf_free(&b);
}

static void
test_rt_publish(void)
{
	struct buf	 b = BUF_INIT;
	uint8_t		*fx;
	size_t		 len;

	rt_publish(0, false, false, 0, "a", 0);
	rt_publish(0, true, false, 0, "site/1/dev/2/telemetry", 13);
	rt_publish(1, false, false, 1, "a/b", 5);
	rt_publish(1, true, true, 65535, "a/b", 100);
	rt_publish(2, false, true, 42, "$SYS/x", 0);
	rt_publish(2, true, false, 7, "\xc3\xa9t\xc3\xa9", 200);
	rt_publish(1, false, false, 9, "big", 20000);	/* 3-byte length */
	rt_publish(0, false, false, 0, "bigger", 2100000);	/* 4 bytes */

	/* Byte-exact against the fixture. */
	CU_ASSERT_EQUAL_FATAL(codec_encode_publish(&b,
	    "site/1/dev/2/telemetry", 22, "{\"temp\":21.5}", 13, 1, false,
	    false, 7), 0);
	fx = codectest_load("publish_qos1.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
	CU_ASSERT(len == buf_used(&b) && memcmp(fx, buf_head(&b), len) == 0);
	free(fx);
	buf_free(&b);
}

static void
test_rt_acks(void)
{
	static const enum codec_type	types[] = { CODEC_PUBACK,
	    CODEC_PUBREC, CODEC_PUBREL, CODEC_PUBCOMP, CODEC_UNSUBACK };
	struct codec_header		h;
	struct buf			b = BUF_INIT;
	const uint8_t			*body;
	uint16_t			id;
	size_t				i;

	for (i = 0; i < sizeof types / sizeof types[0]; i++) {
		CU_ASSERT_EQUAL_FATAL(codec_encode_ack(&b, types[i], 0x1234),
		    0);
		CU_ASSERT_EQUAL(buf_used(&b), 4);
		CU_ASSERT_EQUAL(buf_head(&b)[0], types[i] << 4 |
		    (types[i] == CODEC_PUBREL ? 2 : 0));
		CU_ASSERT_EQUAL(buf_head(&b)[1], 2);
		CU_ASSERT_EQUAL(buf_head(&b)[2], 0x12);
		CU_ASSERT_EQUAL(buf_head(&b)[3], 0x34);
		body = frame_one(&b, (uint8_t)types[i], &h);
		id = 0;
		CU_ASSERT_EQUAL(codec_decode_ack(body, h.remaining, &id), 0);
		CU_ASSERT_EQUAL(id, 0x1234);
		buf_reset(&b);
	}
	buf_free(&b);
}

static void
test_rt_subscribe(void)
{
	struct codec_str	f[3] = { STR("site/+/alarm/#"), STR("$SYS/#"),
	    STR("\xe2\x82\xac") }, got;
	uint8_t			q[3] = { 1, 0, 2 }, qos;
	struct codec_subscribe	s;
	struct codec_header	h;
	struct buf		b = BUF_INIT;
	const uint8_t		*body;
	unsigned		n = 0;

	CU_ASSERT_EQUAL_FATAL(codec_encode_subscribe(&b, 9, f, q, 3), 0);
	CU_ASSERT_EQUAL(buf_head(&b)[0], 0x82);
	body = frame_one(&b, CODEC_SUBSCRIBE, &h);
	CU_ASSERT_EQUAL(h.flags, 2);
	CU_ASSERT_EQUAL_FATAL(codec_decode_subscribe(body, h.remaining, &s),
	    0);
	CU_ASSERT_EQUAL(s.packet_id, 9);
	CU_ASSERT_EQUAL(s.count, 3);
	while (codec_subscribe_next(&s.entries, &got, &qos) == 1) {
		CU_ASSERT_FATAL(n < 3);
		CU_ASSERT(str_eq(got, f[n]));
		CU_ASSERT_EQUAL(qos, q[n]);
		n++;
	}
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(codec_subscribe_next(&s.entries, &got, &qos), 0);
	buf_free(&b);
}

static void
test_rt_suback(void)
{
	static const uint8_t	codes[] = { 0, 1, 2, CODEC_SUBACK_FAILURE };
	struct codec_suback	sa;
	struct codec_header	h;
	struct buf		b = BUF_INIT;
	const uint8_t		*body;

	CU_ASSERT_EQUAL_FATAL(codec_encode_suback(&b, 77, codes, 4), 0);
	body = frame_one(&b, CODEC_SUBACK, &h);
	CU_ASSERT_EQUAL(codec_decode_suback(body, h.remaining, &sa), 0);
	CU_ASSERT_EQUAL(sa.packet_id, 77);
	CU_ASSERT_EQUAL(sa.count, 4);
	CU_ASSERT(memcmp(sa.codes, codes, 4) == 0);
	buf_free(&b);
}

static void
test_rt_unsubscribe(void)
{
	struct codec_str		f[2] = { STR("a/b"), STR("#") }, got;
	struct codec_unsubscribe	u;
	struct codec_header		h;
	struct buf			b = BUF_INIT;
	const uint8_t			*body;
	unsigned			n = 0;

	CU_ASSERT_EQUAL_FATAL(codec_encode_unsubscribe(&b, 3, f, 2), 0);
	CU_ASSERT_EQUAL(buf_head(&b)[0], 0xa2);
	body = frame_one(&b, CODEC_UNSUBSCRIBE, &h);
	CU_ASSERT_EQUAL_FATAL(codec_decode_unsubscribe(body, h.remaining,
	    &u), 0);
	CU_ASSERT_EQUAL(u.packet_id, 3);
	CU_ASSERT_EQUAL(u.count, 2);
	while (codec_unsubscribe_next(&u.entries, &got) == 1) {
		CU_ASSERT_FATAL(n < 2);
		CU_ASSERT(str_eq(got, f[n]));
		n++;
	}
	CU_ASSERT_EQUAL(n, 2);
	buf_free(&b);
}

static void
test_rt_empty(void)
{
	static const enum codec_type	types[] = { CODEC_PINGREQ,
	    CODEC_PINGRESP, CODEC_DISCONNECT };
	struct codec_header		h;
	struct buf			b = BUF_INIT;
	size_t				i;

	for (i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL_FATAL(codec_encode_empty(&b, types[i]), 0);
		CU_ASSERT_EQUAL(buf_used(&b), 2);
		CU_ASSERT_EQUAL(buf_head(&b)[0], types[i] << 4);
		CU_ASSERT_EQUAL(buf_head(&b)[1], 0);
		frame_one(&b, (uint8_t)types[i], &h);
		CU_ASSERT_EQUAL(codec_decode_empty(h.remaining), 0);
		buf_reset(&b);
	}
	buf_free(&b);
}

/* Encoders refuse what the protocol cannot carry and leave out alone. */
static void
test_encode_rejects(void)
{
	struct codec_connect	c;
	struct codec_str	f[1] = { STR("") }, ok[1] = { STR("a") };
	uint8_t			q[1] = { 3 }, q0[1] = { 0 };
	uint8_t			codes[2] = { 0, 0x81 }, hdr[16];
	struct buf		b = BUF_INIT;

	CU_ASSERT_EQUAL(codec_encode_connack(&b, false, 6), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_publish(&b, "", 0, "x", 1, 0, false,
	    false, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_publish(&b, "a", 1, "x", 1, 3, false,
	    false, 1), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_publish(&b, "a", 1, "x", 1, 1, false,
	    false, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_publish(&b, "a", 1, "x", 1, 0, false,
	    true, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_publish(&b, "a", 1, "x",
	    CODEC_MAX_REMAINING - 2, 0, false, false, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_publish_header(hdr, "a", 1, 0, 1, false, false,
	    0), 0);
	CU_ASSERT_EQUAL(codec_encode_ack(&b, CODEC_PUBLISH, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_ack(&b, CODEC_PUBACK, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_suback(&b, 1, codes, 2), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_suback(&b, 1, codes, 0), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_suback(&b, 0, codes, 1), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_empty(&b, CODEC_CONNECT), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_subscribe(&b, 1, f, q0, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_subscribe(&b, 1, ok, q, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_subscribe(&b, 0, ok, q0, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_subscribe(&b, 1, ok, q0, 0),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_unsubscribe(&b, 1, f, 1),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_encode_unsubscribe(&b, 0, ok, 1),
	    GW_EMALFORMED);
	memset(&c, 0, sizeof c);
	c.protocol_level = 5;
	CU_ASSERT_EQUAL(codec_encode_connect(&b, &c), GW_EMALFORMED);
	c.protocol_level = 4;
	c.has_password = true;
	CU_ASSERT_EQUAL(codec_encode_connect(&b, &c), GW_EMALFORMED);
	c.has_password = false;
	c.will_flag = true;
	c.will_qos = 3;
	CU_ASSERT_EQUAL(codec_encode_connect(&b, &c), GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

/* Empty bodies are refused before any pointer is formed from them. */
static void
test_empty_bodies(void)
{
	struct codec_connect		c;
	struct codec_connack		ca;
	struct codec_publish		p;
	struct codec_subscribe		s;
	struct codec_unsubscribe	u;
	struct codec_suback		sa;
	uint16_t			id;

	CU_ASSERT_EQUAL(codec_decode_connect(NULL, 0, &c), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_connack(NULL, 0, &ca), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_publish(0, NULL, 0, &p), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_ack(NULL, 0, &id), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_subscribe(NULL, 0, &s), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_unsubscribe(NULL, 0, &u),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_suback(NULL, 0, &sa), GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec_decode_empty(0), 0);
}

/* ---- truncation ---------------------------------------------------- */

/*
 * Every proper prefix of a valid packet needs more bytes; the header parser
 * agrees; body decoders given a cut body never read past it (each prefix
 * lives in its own exact heap block).
 */
static void
check_prefixes(const uint8_t *pkt, size_t len)
{
	struct codec_header	h, full;
	uint8_t			*d;
	size_t			i;
	int			rc;

	CU_ASSERT_EQUAL_FATAL(codec_parse_frame(pkt, len, 0, &full), 0);
	CU_ASSERT_EQUAL_FATAL(full.header_len + full.remaining, len);
	for (i = 0; i < len; i++) {
		d = codectest_dup(pkt, i);
		CU_ASSERT_EQUAL(codec_parse_frame(d, i, 0, &h), GW_EMORE);
		rc = codec_parse_header(d, i, 0, &h);
		CU_ASSERT_EQUAL(rc, i < full.header_len ? GW_EMORE : 0);
		free(d);
	}
	for (i = 0; i < full.remaining; i++) {
		d = codectest_dup(pkt + full.header_len, i);
		rc = decode_body(&full, d, i);
		CU_ASSERT(rc == 0 || rc == GW_EMALFORMED);
		/* Fixed-layout bodies must notice the cut. */
		if (full.type != CODEC_PUBLISH &&
		    full.type != CODEC_SUBSCRIBE &&
		    full.type != CODEC_UNSUBSCRIBE &&
		    full.type != CODEC_SUBACK)
			CU_ASSERT_EQUAL(rc, GW_EMALFORMED);
		free(d);
	}
}

static void
test_truncations(void)
{
	static const char *const fixtures[] = { "connect_v311.bin",
	    "connect_v31.bin", "publish_qos1.bin", "publish_qos0_empty.bin",
	    "subscribe_two.bin" };
	struct codec_connect	c;
	struct codec_str	f[2] = { STR("a/+"), STR("b/#") };
	uint8_t			q[2] = { 0, 2 }, codes[2] = { 1, 0x80 };
	uint8_t			*fx;
	struct buf		b = BUF_INIT;
	size_t			i, len;

	memset(&c, 0, sizeof c);
	c.protocol_level = 4;
	c.client_id = STR("c");
	c.will_flag = true;
	c.will_topic = STR("w");
	c.has_username = true;
	c.username = STR("u");
	CU_ASSERT_EQUAL_FATAL(codec_encode_connect(&b, &c), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_connack(&b, false, 2), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_publish(&b, "t/u", 3, "hello", 5,
	    2, true, true, 5), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_publish(&b, "t", 1, NULL, 0, 0,
	    false, false, 0), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	for (i = CODEC_PUBACK; i <= CODEC_PUBCOMP; i++) {
		CU_ASSERT_EQUAL_FATAL(codec_encode_ack(&b, (enum codec_type)i,
		    300), 0);
		check_prefixes(buf_head(&b), buf_used(&b));
		buf_reset(&b);
	}
	CU_ASSERT_EQUAL_FATAL(codec_encode_ack(&b, CODEC_UNSUBACK, 1), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_subscribe(&b, 1, f, q, 2), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_suback(&b, 1, codes, 2), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	CU_ASSERT_EQUAL_FATAL(codec_encode_unsubscribe(&b, 1, f, 2), 0);
	check_prefixes(buf_head(&b), buf_used(&b));
	buf_reset(&b);
	for (i = CODEC_PINGREQ; i <= CODEC_DISCONNECT; i++) {
		CU_ASSERT_EQUAL_FATAL(codec_encode_empty(&b,
		    (enum codec_type)i), 0);
		check_prefixes(buf_head(&b), buf_used(&b));
		buf_reset(&b);
	}
	/* A long packet: 3-byte remaining length. */
	{
		static uint8_t	big[20000];

		CU_ASSERT_EQUAL_FATAL(codec_encode_publish(&b, "x", 1, big,
		    sizeof big, 1, false, false, 1), 0);
		check_prefixes(buf_head(&b), buf_used(&b));
		buf_reset(&b);
	}
	for (i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
		fx = codectest_load(fixtures[i], &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
		check_prefixes(fx, len);
		free(fx);
	}
	buf_free(&b);
}

/* ---- UTF-8 --------------------------------------------------------- */

static bool
u8(const char *s, size_t n, bool nul)
{
	uint8_t	*d = codectest_dup(s, n);
	bool	 ok = utf8_valid(d, n, nul);

	free(d);
	return ok;
}

#define U8(lit, nul)	u8((lit), sizeof (lit) - 1, (nul))

static void
test_utf8_valid_forms(void)
{
	CU_ASSERT(utf8_valid(NULL, 0, false));
	CU_ASSERT(U8("", false));
	CU_ASSERT(U8("plain ascii topic/level", false));
	CU_ASSERT(U8("\x7f", false));
	CU_ASSERT(U8("\xc2\x80", false));		/* U+0080 */
	CU_ASSERT(U8("\xc3\xa9", false));		/* é */
	CU_ASSERT(U8("\xdf\xbf", false));		/* U+07FF */
	CU_ASSERT(U8("\xe0\xa0\x80", false));		/* U+0800 */
	CU_ASSERT(U8("\xe2\x82\xac", false));		/* € */
	CU_ASSERT(U8("\xed\x9f\xbf", false));		/* U+D7FF */
	CU_ASSERT(U8("\xee\x80\x80", false));		/* U+E000 */
	CU_ASSERT(U8("\xef\xbf\xbf", false));		/* U+FFFF */
	CU_ASSERT(U8("\xf0\x90\x80\x80", false));	/* U+10000 */
	CU_ASSERT(U8("\xf0\x9d\x84\x9e", false));	/* 𝄞 */
	CU_ASSERT(U8("\xf4\x8f\xbf\xbf", false));	/* U+10FFFF */
	CU_ASSERT(U8("abcdefgh\xe2\x82\xac" "abcdefghijklmnop", false));
	CU_ASSERT(U8("\0", true));
	CU_ASSERT(!U8("\0", false));
}

static void
test_utf8_invalid_forms(void)
{
	/* Overlongs. */
	CU_ASSERT(!U8("\xc0\x80", true));
	CU_ASSERT(!U8("\xc0\xaf", true));
	CU_ASSERT(!U8("\xc1\xbf", true));
	CU_ASSERT(!U8("\xe0\x80\x80", true));
	CU_ASSERT(!U8("\xe0\x9f\xbf", true));
	CU_ASSERT(!U8("\xf0\x80\x80\x80", true));
	CU_ASSERT(!U8("\xf0\x8f\xbf\xbf", true));
	/* Surrogates. */
	CU_ASSERT(!U8("\xed\xa0\x80", true));
	CU_ASSERT(!U8("\xed\xbf\xbf", true));
	CU_ASSERT(!U8("\xed\xa0\xbd\xed\xb2\xa9", true));
	/* Above U+10FFFF and never-valid bytes. */
	CU_ASSERT(!U8("\xf4\x90\x80\x80", true));
	CU_ASSERT(!U8("\xf5\x80\x80\x80", true));
	CU_ASSERT(!U8("\xf8\x88\x80\x80\x80", true));
	CU_ASSERT(!U8("\xfe", true));
	CU_ASSERT(!U8("\xff", true));
	/* Lone continuations, bad continuations. */
	CU_ASSERT(!U8("\x80", true));
	CU_ASSERT(!U8("\xbf", true));
	CU_ASSERT(!U8("a\x80" "b", true));
	CU_ASSERT(!U8("\xc3\x28", true));
	CU_ASSERT(!U8("\xe2\x28\xa1", true));
	CU_ASSERT(!U8("\xe2\x82\x28", true));
	CU_ASSERT(!U8("\xf0\x9f\x98\x28", true));
	/* Truncated at the end (the block ends right there). */
	CU_ASSERT(!U8("\xc3", true));
	CU_ASSERT(!U8("\xe2\x82", true));
	CU_ASSERT(!U8("\xf0\x9f\x98", true));
	CU_ASSERT(!U8("abcdefghijklmno\xf0\x9f", true));
}

/* NUL and non-ASCII at every offset, around the 8-byte fast path. */
static void
test_utf8_positions(void)
{
	char	s[40];
	size_t	len, i;

	for (len = 1; len <= sizeof s; len++) {
		memset(s, 'a', sizeof s);
		CU_ASSERT(u8(s, len, false));
		for (i = 0; i < len; i++) {
			memset(s, 'a', sizeof s);
			s[i] = '\0';
			CU_ASSERT(!u8(s, len, false));
			CU_ASSERT(u8(s, len, true));
			s[i] = (char)0x80;
			CU_ASSERT(!u8(s, len, true));
			s[i] = (char)0xc3;
			CU_ASSERT(!u8(s, len, true));	/* cut or bad next */
			if (i + 1 < len) {
				s[i + 1] = (char)0xa9;
				CU_ASSERT(u8(s, len, false));
			}
		}
	}
}

/* Reference: decode code points the slow way and check the rules. */
static bool
utf8_ref(const uint8_t *s, size_t n, bool nul)
{
	size_t		i = 0, k, need;
	uint32_t	cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			if (s[i] == 0 && !nul)
				return false;
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			need = 1; cp = s[i] & 0x1f; min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			need = 2; cp = s[i] & 0x0f; min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			need = 3; cp = s[i] & 0x07; min = 0x10000;
		} else
			return false;
		if (n - i - 1 < need)
			return false;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

static void
test_utf8_random(void)
{
	static const uint8_t	pool[] = { 0x00, 'a', 0x7f, 0x80, 0x8f, 0x90,
	    0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed,
	    0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff };
	uint8_t			s[24], *d;
	unsigned		seed = 12345, i, j, n, fails = 0;

	for (i = 0; i < 200000; i++) {
		seed = seed * 1103515245 + 12345;
		n = (seed >> 16) % sizeof s;
		for (j = 0; j < n; j++) {
			seed = seed * 1103515245 + 12345;
			s[j] = pool[(seed >> 16) % sizeof pool];
		}
		d = codectest_dup(s, n);
		if (utf8_valid(d, n, false) != utf8_ref(d, n, false) ||
		    utf8_valid(d, n, true) != utf8_ref(d, n, true))
			fails++;
		free(d);
	}
	CU_ASSERT_EQUAL(fails, 0);
}

static void
test_type_names(void)
{
	CU_ASSERT_STRING_EQUAL(codec_type_name(CODEC_PUBLISH), "PUBLISH");
	CU_ASSERT_STRING_EQUAL(codec_type_name(CODEC_DISCONNECT),
	    "DISCONNECT");
	CU_ASSERT_STRING_EQUAL(codec_type_name(CODEC_CONNECT), "CONNECT");
	CU_ASSERT_STRING_EQUAL(codec_type_name(0), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(codec_type_name(15), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(codec_type_name(-1), "UNKNOWN");
}

#define T(fn)	{ #fn, fn }

static const struct cutest_case tests[] = {
	T(test_header_flags), T(test_header_too_big),
	T(test_varint_boundaries), T(test_varint_five_bytes),
	T(test_rt_connect), T(test_connect_bytes), T(test_rt_connack),
	T(test_rt_publish), T(test_rt_acks), T(test_rt_subscribe),
	T(test_rt_suback), T(test_rt_unsubscribe), T(test_rt_empty),
	T(test_encode_rejects), T(test_empty_bodies), T(test_truncations),
	T(test_utf8_valid_forms), T(test_utf8_invalid_forms),
	T(test_utf8_positions), T(test_utf8_random), T(test_type_names),

	T(fx_connect_v311), T(fx_connect_v31), T(fx_publish_qos1),
	T(fx_publish_qos0_empty), T(fx_subscribe_two),
	T(fx_hdr_varint_5bytes), T(fx_hdr_type0), T(fx_hdr_type15),
	T(fx_hdr_pubrel_flags0), T(fx_hdr_subscribe_flags0),
	T(fx_hdr_puback_flags), T(fx_hdr_publish_qos3), T(fx_connect_mqtt5),
	T(fx_connect_mqtt_level3), T(fx_connect_bad_name),
	T(fx_connect_reserved_flag), T(fx_connect_will_qos3),
	T(fx_connect_will_qos_no_will), T(fx_connect_password_no_user),
	T(fx_connect_will_wildcard), T(fx_connect_clientid_nul),
	T(fx_connect_trailing), T(fx_publish_wildcard_topic),
	T(fx_publish_hash_topic), T(fx_publish_empty_topic),
	T(fx_publish_dup_qos0), T(fx_publish_qos1_id0),
	T(fx_publish_topic_nul), T(fx_publish_topic_overlong),
	T(fx_publish_topic_surrogate), T(fx_subscribe_no_entries),
	T(fx_subscribe_id0), T(fx_subscribe_qos3),
	T(fx_subscribe_opts_reserved), T(fx_subscribe_empty_filter),
	T(fx_unsubscribe_no_entries), T(fx_suback_bad_code),
	T(fx_puback_len3), T(fx_puback_id0), T(fx_pingreq_len1),
	T(fx_connack_bad_rc), T(fx_connack_bad_flags),

	T(bad_connect_mqisdp_level4), T(ok_connect_mqisdp_level3),
	T(bad_connect_name_case), T(bad_connect_will_retain_no_will),
	T(bad_connect_clientid_utf8), T(bad_connect_will_topic_empty),
	T(bad_connect_will_topic_plus), T(bad_connect_will_topic_nul),
	T(bad_connect_username_utf8), T(bad_connect_username_missing),
	T(bad_connect_password_short), T(bad_connect_clientid_short),
	T(bad_connect_no_flags), T(bad_connect_empty),
	T(ok_connect_empty_clientid), T(ok_connect_binary_password),
	T(bad_publish_topic_utf8), T(bad_publish_topic_too_long),
	T(bad_publish_qos2_id0), T(bad_publish_qos1_no_id),
	T(bad_publish_dup_retain_qos0), T(ok_publish_dup_qos2),
	T(ok_publish_binary_payload),
	T(bad_subscribe_filter_utf8), T(bad_subscribe_filter_nul),
	T(bad_subscribe_no_options), T(bad_subscribe_opts_high),
	T(bad_subscribe_second_bad), T(bad_subscribe_short_id),
	T(bad_unsubscribe_id0), T(bad_unsubscribe_empty_filter),
	T(bad_unsubscribe_filter_utf8), T(bad_unsubscribe_short),
	T(bad_unsubscribe_flags), T(bad_suback_code_81), T(bad_suback_id0),
	T(bad_suback_no_codes), T(ok_suback_all_codes),
	T(bad_pubrec_len1), T(bad_pubrel_id0), T(bad_pubcomp_len0),
	T(bad_unsuback_len3), T(bad_pingresp_len1), T(bad_disconnect_len2),
	T(bad_disconnect_flags), T(bad_connack_len3),
	T(bad_connack_sp_with_error), T(ok_connack_rc5),
};

int
main(void)
{
	codectest_find_dir(__FILE__);
	return cutest_main("codec", NULL, NULL, tests, CUTEST_COUNT(tests));
}
