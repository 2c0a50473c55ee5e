/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * Unit tests for the MQTT 5.0 codec (codec5.c): every v5_*.bin fixture in
 * tests/fixtures/packets decoded at protocol level 5 with the result and
 * reason code listed here (81 files, 64 of them refused), the encoders
 * producing the valid fixtures byte for byte from fields, decoded packets
 * re-encoded to the same bytes, GW_EMORE for every prefix of a valid
 * packet, and codec5_decode() at level 4 giving the 3.1.1 codec's results
 * on the 3.1.1 fixtures. Inputs live in heap blocks of exactly their
 * length, so AddressSanitizer reports any read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "codectest.h"
#include "cutest.h"
#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/codec5.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"

#define STR(s)	((struct codec_str){ (s), (uint16_t)(sizeof (s) - 1) })

/* Frames and decodes pkt at level version; *reason as the codec set it. */
static int
decode_at(uint8_t version, const uint8_t *pkt, size_t len,
    struct codec5_packet *out, uint8_t *reason)
{
	struct codec_header	h;
	int			rc;

	*reason = 0;
	rc = version == CODEC5_LEVEL ? codec5_parse_frame(pkt, len, 0, &h) :
	    codec_parse_frame(pkt, len, 0, &h);
	if (rc != 0) {
		*reason = reason_from_error(rc);
		return rc;
	}
	CU_ASSERT_EQUAL(h.header_len + h.remaining, len);
	return codec5_decode(version, &h, pkt + h.header_len, h.remaining,
	    out, reason);
}

static const struct fx {
	const char	*name;
	int		 rc;
	uint8_t		 reason;
} fixtures[] = {
	{ "v5_connect_full.bin", 0, 0 },
	{ "v5_connack_full.bin", 0, 0 },
	{ "v5_publish_props.bin", 0, 0 },
	{ "v5_publish_alias_only.bin", 0, 0 },
	{ "v5_puback_short.bin", 0, 0 },
	{ "v5_puback_reason.bin", 0, 0 },
	{ "v5_pubrec_props.bin", 0, 0 },
	{ "v5_pubrel_notfound.bin", 0, 0 },
	{ "v5_subscribe_opts.bin", 0, 0 },
	{ "v5_suback.bin", 0, 0 },
	{ "v5_unsubscribe.bin", 0, 0 },
	{ "v5_unsuback.bin", 0, 0 },
	{ "v5_disconnect_short.bin", 0, 0 },
	{ "v5_disconnect_reason.bin", 0, 0 },
	{ "v5_disconnect_props.bin", 0, 0 },
	{ "v5_auth.bin", 0, 0 },
	{ "v5_auth_empty.bin", 0, 0 },
	{ "v5_prop_dup_session_expiry.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_receive_max.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_topic_alias.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_content_type.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_reason_string.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_subid_subscribe.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_dup_will_delay.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_topic_alias_in_connect.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_will_delay_in_publish.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_session_expiry_in_publish.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_reason_string_in_publish.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_subid_in_unsubscribe.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_payload_format_in_connect.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_topic_alias_in_will.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_id_zero.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_id_unknown.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_id_nonminimal.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_len_nonminimal.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_len_5bytes.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_len_past_end.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_truncated_u32.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_truncated_string.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_truncated_user_value.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_bad_utf8.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_user_nul.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_subid_nonminimal.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_subid_5bytes.bin", GW_EMALFORMED, 0x81 },
	{ "v5_prop_receive_max_0.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_max_packet_0.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_topic_alias_0.bin", GW_EPROTO, 0x94 },
	{ "v5_prop_subid_0.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_payload_format_2.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_request_problem_2.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_request_response_2.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_maximum_qos_2.bin", GW_EPROTO, 0x82 },
	{ "v5_prop_retain_available_2.bin", GW_EPROTO, 0x82 },
	{ "v5_connect_auth_data_no_method.bin", GW_EPROTO, 0x82 },
	{ "v5_connect_reserved_flag.bin", GW_EMALFORMED, 0x81 },
	{ "v5_connect_trailing.bin", GW_EMALFORMED, 0x81 },
	{ "v5_connect_will_wildcard.bin", GW_EPROTO, 0x90 },
	{ "v5_connect_no_props.bin", GW_EMALFORMED, 0x81 },
	{ "v5_publish_empty_topic.bin", GW_EPROTO, 0x82 },
	{ "v5_publish_wildcard_topic.bin", GW_EPROTO, 0x90 },
	{ "v5_publish_no_props.bin", GW_EMALFORMED, 0x81 },
	{ "v5_puback_bad_reason.bin", GW_EPROTO, 0x82 },
	{ "v5_pubrel_bad_reason.bin", GW_EPROTO, 0x82 },
	{ "v5_puback_trailing.bin", GW_EMALFORMED, 0x81 },
	{ "v5_puback_id0.bin", GW_EMALFORMED, 0x81 },
	{ "v5_subscribe_retain_handling_3.bin", GW_EPROTO, 0x82 },
	{ "v5_subscribe_reserved_bits.bin", GW_EMALFORMED, 0x81 },
	{ "v5_subscribe_qos3.bin", GW_EMALFORMED, 0x81 },
	{ "v5_subscribe_nolocal_shared.bin", GW_EPROTO, 0x82 },
	{ "v5_subscribe_no_entries.bin", GW_EPROTO, 0x82 },
	{ "v5_unsubscribe_no_entries.bin", GW_EPROTO, 0x82 },
	{ "v5_suback_bad_code.bin", GW_EPROTO, 0x82 },
	{ "v5_unsuback_no_codes.bin", GW_EPROTO, 0x82 },
	{ "v5_connack_reserved_flags.bin", GW_EMALFORMED, 0x81 },
	{ "v5_connack_sp_with_error.bin", GW_EPROTO, 0x82 },
	{ "v5_disconnect_bad_reason.bin", GW_EPROTO, 0x82 },
	{ "v5_disconnect_trailing.bin", GW_EMALFORMED, 0x81 },
	{ "v5_auth_no_method.bin", GW_EPROTO, 0x82 },
	{ "v5_auth_len1.bin", GW_EMALFORMED, 0x81 },
	{ "v5_auth_flags.bin", GW_EMALFORMED, 0x81 },
	{ "v5_hdr_len_nonminimal.bin", GW_EMALFORMED, 0x81 },
};
#define NFIX	(sizeof fixtures / sizeof fixtures[0])

static void
test_fixtures(void)
{
	struct codec5_packet	 pk;
	uint8_t			*d, reason;
	size_t			 i, len, refused = 0;
	int			 rc;

	for (i = 0; i < NFIX; i++) {
		d = codectest_load(fixtures[i].name, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		rc = decode_at(CODEC5_LEVEL, d, len, &pk, &reason);
		if (rc != fixtures[i].rc || (rc != 0 &&
		    reason != fixtures[i].reason))
			fprintf(stderr, "%s: rc %d reason 0x%02x, want %d "
			    "0x%02x\n", fixtures[i].name, rc, reason,
			    fixtures[i].rc, fixtures[i].reason);
		CU_ASSERT_EQUAL(rc, fixtures[i].rc);
		if (fixtures[i].rc != 0) {
			CU_ASSERT_EQUAL(reason, fixtures[i].reason);
			refused++;
		}
		free(d);
	}
	CU_ASSERT(refused >= 40);
}

/* Every valid fixture, decoded and encoded again, gives the same bytes. */
static void
test_reencode(void)
{
	struct codec5_packet	 pk;
	struct buf		 b = BUF_INIT;
	uint8_t			*d, reason;
	size_t			 i, len;

	for (i = 0; i < NFIX; i++) {
		if (fixtures[i].rc != 0)
			continue;
		d = codectest_load(fixtures[i].name, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		CU_ASSERT_EQUAL_FATAL(decode_at(CODEC5_LEVEL, d, len, &pk,
		    &reason), 0);
		buf_reset(&b);
		CU_ASSERT_EQUAL(codectest_reencode5(&pk, &b), 0);
		CU_ASSERT_EQUAL(buf_used(&b), len);
		if (buf_used(&b) != len ||
		    memcmp(buf_head(&b), d, len) != 0) {
			fprintf(stderr, "%s: re-encoded differently\n",
			    fixtures[i].name);
			CU_FAIL("re-encode differs");
		}
		free(d);
	}
	buf_free(&b);
}

/* Every proper prefix of a valid fixture is GW_EMORE, never an error. */
static void
test_prefixes(void)
{
	struct codec_header	 h;
	uint8_t			*d, *cut;
	size_t			 i, len, n;

	for (i = 0; i < NFIX; i++) {
		if (fixtures[i].rc != 0)
			continue;
		d = codectest_load(fixtures[i].name, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		for (n = 0; n < len; n++) {
			cut = malloc(n == 0 ? 1 : n);
			CU_ASSERT_PTR_NOT_NULL_FATAL(cut);
			memcpy(cut, d, n);
			CU_ASSERT_EQUAL(codec5_parse_frame(cut, n, 0, &h),
			    GW_EMORE);
			free(cut);
		}
		free(d);
	}
}

/* Compares what an encoder appended to b with fixture name, then resets. */
static void
same_as_fixture(struct buf *b, const char *name)
{
	uint8_t	*d;
	size_t	 len;

	d = codectest_load(name, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(buf_used(b), len);
	if (buf_used(b) != len || memcmp(buf_head(b), d, len) != 0) {
		fprintf(stderr, "%s: encoder output differs\n", name);
		CU_FAIL("encoder output differs from the fixture");
	}
	free(d);
	buf_reset(b);
}

static void
test_encode_connect_connack(void)
{
	struct props_pair	 u1[] = { { STR("k"), STR("v") } };
	struct props_pair	 u2[] = { { STR("w"), STR("1") } };
	struct props_pair	 u3[] = { { STR("a"), STR("b") } };
	struct codec5_connect	 c;
	struct props		 pr;
	struct buf		 b = BUF_INIT;
	int			 id;

	memset(&c, 0, sizeof c);
	c.c.clean_session = true;
	c.c.keepalive = 60;
	c.c.client_id = STR("c5");
	c.c.will_flag = true;
	c.c.will_qos = 1;
	c.c.will_retain = true;
	c.c.will_topic = STR("dev/c5/will");
	c.c.will_payload = STR("gone");
	c.c.has_username = c.c.has_password = true;
	c.c.username = STR("alice");
	c.c.password = STR("pw");
	c.props.session_expiry = 3600;
	c.props.request_problem_info = 0;
	c.props.request_response_info = 1;
	c.props.receive_maximum = 20;
	c.props.topic_alias_maximum = 10;
	c.props.maximum_packet_size = 65536;
	c.props.user = u1;
	c.props.n_user = 1;
	for (id = 0x11; id <= 0x27; id++) {
		if (id == 0x11 || id == 0x17 || id == 0x19 || id == 0x21 ||
		    id == 0x22 || id == 0x27)
			props_set(&c.props, id);
	}
	c.will_props.payload_format = 1;
	c.will_props.message_expiry = 60;
	c.will_props.content_type = STR("text/plain");
	c.will_props.response_topic = STR("r/t");
	c.will_props.correlation_data = STR("\x01\x02");
	c.will_props.will_delay = 5;
	c.will_props.user = u2;
	c.will_props.n_user = 1;
	props_set(&c.will_props, PROPS_PAYLOAD_FORMAT);
	props_set(&c.will_props, PROPS_MESSAGE_EXPIRY);
	props_set(&c.will_props, PROPS_CONTENT_TYPE);
	props_set(&c.will_props, PROPS_RESPONSE_TOPIC);
	props_set(&c.will_props, PROPS_CORRELATION_DATA);
	props_set(&c.will_props, PROPS_WILL_DELAY);
	CU_ASSERT_EQUAL_FATAL(codec5_encode_connect(&b, &c), 0);
	same_as_fixture(&b, "v5_connect_full.bin");
	/* A will property outside the will is refused, nothing written. */
	props_set(&c.props, PROPS_WILL_DELAY);
	CU_ASSERT_EQUAL(codec5_encode_connect(&b, &c), GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);

	memset(&pr, 0, sizeof pr);
	pr.assigned_client_id = STR("auto-1");
	pr.server_keepalive = 30;
	pr.response_info = STR("resp/");
	pr.reason_string = STR("ok");
	pr.receive_maximum = 100;
	pr.topic_alias_maximum = 5;
	pr.maximum_qos = 1;
	pr.retain_available = 1;
	pr.maximum_packet_size = 1048576;
	pr.wildcard_sub_available = 1;
	pr.sub_id_available = 1;
	pr.user = u3;
	pr.n_user = 1;
	for (id = 0x11; id <= 0x2a; id++) {
		if (id != 0x15 && id != 0x16 && id != 0x17 && id != 0x18 &&
		    id != 0x19 && id != 0x14 && id != 0x1b && id != 0x1c &&
		    id != 0x1d && id != 0x1e && id != 0x20 && id != 0x23 &&
		    id != 0x26)
			props_set(&pr, id);
	}
	CU_ASSERT_EQUAL_FATAL(codec5_encode_connack(&b, true, 0, &pr), 0);
	same_as_fixture(&b, "v5_connack_full.bin");
	CU_ASSERT_EQUAL(codec5_encode_connack(&b, false, 0x8e, NULL),
	    GW_EMALFORMED);			/* DISCONNECT only */
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

static void
test_encode_publish_acks(void)
{
	struct props_pair	 users[] = { { STR("u1"), STR("x") },
				    { STR("u2"), STR("y") } };
	uint32_t		 ids[] = { 1, 268435455 };
	struct codec_publish	 p;
	struct props		 pr;
	struct buf		 b = BUF_INIT;

	memset(&p, 0, sizeof p);
	p.topic = STR("site/1/t");
	p.qos = 1;
	p.packet_id = 7;
	p.payload = (const uint8_t *)"{\"t\":1}";
	p.payload_len = 7;
	memset(&pr, 0, sizeof pr);
	pr.payload_format = 1;
	pr.message_expiry = 120;
	pr.content_type = STR("application/json");
	pr.response_topic = STR("reply/1");
	pr.correlation_data = STR("\x00\xff");
	pr.topic_alias = 3;
	pr.user = users;
	pr.n_user = 2;
	pr.sub_ids = ids;
	pr.n_sub_id = 2;
	props_set(&pr, PROPS_PAYLOAD_FORMAT);
	props_set(&pr, PROPS_MESSAGE_EXPIRY);
	props_set(&pr, PROPS_CONTENT_TYPE);
	props_set(&pr, PROPS_RESPONSE_TOPIC);
	props_set(&pr, PROPS_CORRELATION_DATA);
	props_set(&pr, PROPS_TOPIC_ALIAS);
	CU_ASSERT_EQUAL_FATAL(codec5_encode_publish(&b, &p, &pr), 0);
	same_as_fixture(&b, "v5_publish_props.bin");

	/* Empty topic: only with a Topic Alias. */
	memset(&p, 0, sizeof p);
	p.payload = (const uint8_t *)"p";
	p.payload_len = 1;
	CU_ASSERT_EQUAL(codec5_encode_publish(&b, &p, NULL), GW_EMALFORMED);
	memset(&pr, 0, sizeof pr);
	pr.topic_alias = 3;
	props_set(&pr, PROPS_TOPIC_ALIAS);
	CU_ASSERT_EQUAL_FATAL(codec5_encode_publish(&b, &p, &pr), 0);
	same_as_fixture(&b, "v5_publish_alias_only.bin");

	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBACK, 5, 0, NULL), 0);
	same_as_fixture(&b, "v5_puback_short.bin");
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBACK, 5, 0x10, NULL), 0);
	same_as_fixture(&b, "v5_puback_reason.bin");
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBREL, 6, 0x92, NULL), 0);
	same_as_fixture(&b, "v5_pubrel_notfound.bin");
	memset(&pr, 0, sizeof pr);
	pr.reason_string = STR("disk full");
	props_set(&pr, PROPS_REASON_STRING);
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBREC, 6, 0x80, &pr), 0);
	same_as_fixture(&b, "v5_pubrec_props.bin");
	/* Refusals: reason not for the packet, id 0, wrong type. */
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBREL, 6, 0x10, NULL),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_PUBACK, 0, 0, NULL),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(codec5_encode_ack(&b, CODEC_SUBACK, 1, 0, NULL),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

static void
test_encode_subscribe_family(void)
{
	struct codec_str	 f[] = { STR("a/+"), STR("b/#") };
	struct codec5_subopts	 o[] = { { 1, true, false, 0 },
				    { 2, false, true, 2 } };
	struct props_pair	 us[] = { { STR("s"), STR("1") } };
	struct props_pair	 uk[] = { { STR("k"), STR("v") } };
	uint32_t		 sid = 42;
	static const uint8_t	 sa[] = { 0x01, 0x02, 0x87 };
	static const uint8_t	 ua[] = { 0x00, 0x11 };
	struct props		 pr;
	struct buf		 b = BUF_INIT;

	memset(&pr, 0, sizeof pr);
	pr.sub_ids = &sid;
	pr.n_sub_id = 1;
	pr.user = us;
	pr.n_user = 1;
	CU_ASSERT_EQUAL_FATAL(codec5_encode_subscribe(&b, 10, f, o, 2, &pr),
	    0);
	same_as_fixture(&b, "v5_subscribe_opts.bin");
	o[0].retain_handling = 3;
	CU_ASSERT_EQUAL(codec5_encode_subscribe(&b, 10, f, o, 2, NULL),
	    GW_EMALFORMED);

	memset(&pr, 0, sizeof pr);
	pr.reason_string = STR("acl");
	props_set(&pr, PROPS_REASON_STRING);
	CU_ASSERT_EQUAL(codec5_encode_suback(&b, CODEC_SUBACK, 10, sa, 3, &pr),
	    0);
	same_as_fixture(&b, "v5_suback.bin");
	CU_ASSERT_EQUAL(codec5_encode_suback(&b, CODEC_SUBACK, 10, ua, 2,
	    NULL), GW_EMALFORMED);		/* 0x11 is UNSUBACK only */
	CU_ASSERT_EQUAL(codec5_encode_suback(&b, CODEC_UNSUBACK, 11, ua, 2,
	    NULL), 0);
	same_as_fixture(&b, "v5_unsuback.bin");

	memset(&pr, 0, sizeof pr);
	pr.user = uk;
	pr.n_user = 1;
	CU_ASSERT_EQUAL(codec5_encode_unsubscribe(&b, 11, f, 2, &pr), 0);
	same_as_fixture(&b, "v5_unsubscribe.bin");
	buf_free(&b);
}

static void
test_encode_disconnect_auth(void)
{
	struct props	pr;
	struct buf	b = BUF_INIT;

	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_DISCONNECT, 0,
	    NULL), 0);
	same_as_fixture(&b, "v5_disconnect_short.bin");
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_DISCONNECT, 0x04,
	    NULL), 0);
	same_as_fixture(&b, "v5_disconnect_reason.bin");
	memset(&pr, 0, sizeof pr);
	pr.session_expiry = 10;
	pr.server_reference = STR("other:1883");
	pr.reason_string = STR("taken over");
	props_set(&pr, PROPS_SESSION_EXPIRY);
	props_set(&pr, PROPS_SERVER_REFERENCE);
	props_set(&pr, PROPS_REASON_STRING);
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_DISCONNECT,
	    REASON_SESSION_TAKEN_OVER, &pr), 0);
	same_as_fixture(&b, "v5_disconnect_props.bin");
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_AUTH, 0, NULL), 0);
	same_as_fixture(&b, "v5_auth_empty.bin");
	/* AUTH with a reason needs a method. */
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_AUTH, 0x18, NULL),
	    GW_EMALFORMED);
	memset(&pr, 0, sizeof pr);
	pr.auth_method = STR("SCRAM-SHA-1");
	pr.auth_data = STR("\x01\x02\x03");
	props_set(&pr, PROPS_AUTH_METHOD);
	props_set(&pr, PROPS_AUTH_DATA);
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_AUTH, 0x18, &pr),
	    0);
	same_as_fixture(&b, "v5_auth.bin");
	CU_ASSERT_EQUAL(codec5_encode_disconnect(&b, CODEC_DISCONNECT, 0x18,
	    NULL), GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	buf_free(&b);
}

/* What the decoder reports for the richest fixtures. */
static void
test_decoded_fields(void)
{
	struct codec5_packet	 pk;
	struct codec_iter	 it;
	struct codec_str	 f, k, v;
	struct codec5_subopts	 o;
	uint8_t			*d, reason;
	uint32_t		 id;
	size_t			 len;

	d = codectest_load("v5_connect_full.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL_FATAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason),
	    0);
	CU_ASSERT_EQUAL(pk.version, CODEC5_LEVEL);
	CU_ASSERT_EQUAL(pk.u.connect5.c.protocol_level, 5);
	CU_ASSERT(pk.u.connect5.c.clean_session);
	CU_ASSERT_EQUAL(pk.u.connect5.props.session_expiry, 3600);
	CU_ASSERT_EQUAL(pk.u.connect5.props.receive_maximum, 20);
	CU_ASSERT_EQUAL(pk.u.connect5.props.maximum_packet_size, 65536);
	CU_ASSERT(props_has(&pk.u.connect5.props,
	    PROPS_REQUEST_PROBLEM_INFO));
	CU_ASSERT_EQUAL(pk.u.connect5.will_props.will_delay, 5);
	CU_ASSERT_EQUAL(pk.u.connect5.will_props.n_user, 1);
	CU_ASSERT_EQUAL(pk.u.connect5.c.will_qos, 1);
	CU_ASSERT(pk.u.connect5.c.password.len == 2);
	free(d);

	d = codectest_load("v5_publish_props.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL_FATAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason),
	    0);
	CU_ASSERT_EQUAL(pk.u.publish5.p.packet_id, 7);
	CU_ASSERT_EQUAL(pk.u.publish5.p.payload_len, 7);
	CU_ASSERT(memcmp(pk.u.publish5.p.payload, "{\"t\":1}", 7) == 0);
	CU_ASSERT_EQUAL(pk.u.publish5.props.n_sub_id, 2);
	CU_ASSERT_EQUAL(pk.u.publish5.props.n_user, 2);
	it = pk.u.publish5.props.block;
	CU_ASSERT(props_next_sub_id(&it, &id) == 1 && id == 1);
	CU_ASSERT(props_next_sub_id(&it, &id) == 1 && id == 268435455);
	it = pk.u.publish5.props.block;
	CU_ASSERT(props_next_user(&it, &k, &v) == 1 && k.len == 2 &&
	    memcmp(k.ptr, "u1", 2) == 0 && v.len == 1 && v.ptr[0] == 'x');
	CU_ASSERT(props_next_user(&it, &k, &v) == 1 && k.ptr[1] == '2');
	CU_ASSERT_EQUAL(props_next_user(&it, &k, &v), 0);
	free(d);

	d = codectest_load("v5_subscribe_opts.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL_FATAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason),
	    0);
	CU_ASSERT_EQUAL(pk.u.subscribe5.count, 2);
	CU_ASSERT_EQUAL(pk.u.subscribe5.props.subscription_id, 42);
	it = pk.u.subscribe5.entries;
	CU_ASSERT_EQUAL(codec5_subscribe_next(&it, &f, &o), 1);
	CU_ASSERT(o.qos == 1 && o.no_local && !o.retain_as_published &&
	    o.retain_handling == 0);
	CU_ASSERT_EQUAL(codec5_subscribe_next(&it, &f, &o), 1);
	CU_ASSERT(f.len == 3 && memcmp(f.ptr, "b/#", 3) == 0);
	CU_ASSERT(o.qos == 2 && !o.no_local && o.retain_as_published &&
	    o.retain_handling == 2);
	CU_ASSERT_EQUAL(codec5_subscribe_next(&it, &f, &o), 0);
	free(d);

	d = codectest_load("v5_pubrel_notfound.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL_FATAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason),
	    0);
	CU_ASSERT_EQUAL(pk.u.ack5.reason, REASON_PACKET_ID_NOT_FOUND);
	CU_ASSERT_EQUAL(pk.u.ack5.packet_id, 6);
	free(d);
}

/*
 * codec5_decode() at level 4 is the 3.1.1 codec: the 3.1.1 fixtures keep
 * their results, a 3.1.1 CONNECT is decoded by the 3.1.1 rules whatever
 * level the caller passes, and a 5.0 AUTH header stays malformed there.
 */
static void
test_v311_path(void)
{
	static const struct {
		const char	*name;
		int		 rc;
	} old[] = {
		{ "connect_v311.bin", 0 }, { "connect_v31.bin", 0 },
		{ "publish_qos1.bin", 0 }, { "subscribe_two.bin", 0 },
		{ "connect_mqtt5.bin", 0 }, { "publish_empty_topic.bin",
		    GW_EMALFORMED }, { "connect_password_no_user.bin",
		    GW_EMALFORMED }, { "hdr_type15.bin", GW_EMALFORMED },
		{ "puback_len3.bin", GW_EMALFORMED },
	};
	struct codec5_packet	 pk;
	uint8_t			*d, reason;
	size_t			 i, len;

	for (i = 0; i < sizeof old / sizeof old[0]; i++) {
		d = codectest_load(old[i].name, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d);
		if (strcmp(old[i].name, "connect_mqtt5.bin") == 0) {
			/* Level 5 CONNECT goes to the 5.0 decoder. */
			CU_ASSERT_EQUAL(decode_at(4, d, len, &pk, &reason), 0);
			CU_ASSERT_EQUAL(pk.version, CODEC5_LEVEL);
		} else
			CU_ASSERT_EQUAL(decode_at(4, d, len, &pk, &reason),
			    old[i].rc);
		free(d);
	}
	d = codectest_load("connect_v311.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason), 0);
	CU_ASSERT_EQUAL(pk.version, 4);
	CU_ASSERT_EQUAL(pk.u.connect.protocol_level, 4);
	free(d);
	d = codectest_load("connect_mqtt_level3.bin", &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(decode_at(CODEC5_LEVEL, d, len, &pk, &reason),
	    GW_EUNSUPPORTED);
	CU_ASSERT_EQUAL(reason, REASON_UNSUPPORTED_VERSION);
	free(d);
}

#define T(fn)	{ #fn, fn }
static const struct cutest_case tests[] = {
	T(test_fixtures), T(test_reencode), T(test_prefixes),
	T(test_encode_connect_connack), T(test_encode_publish_acks),
	T(test_encode_subscribe_family), T(test_encode_disconnect_auth),
	T(test_decoded_fields), T(test_v311_path),
};

int
main(void)
{
	codectest_find_dir(__FILE__);
	return cutest_main("codec5", NULL, NULL, tests, CUTEST_COUNT(tests));
}
