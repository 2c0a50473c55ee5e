/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * Unit tests for MQTT 5.0 property blocks (props.c) and reason codes
 * (reason.c). The test keeps its own copy of the standard's property table
 * (identifier, type, packets allowed) and, for every property and every
 * packet type, builds a block holding one valid value: the decoder must
 * accept it exactly on the allowed packets (0x81 elsewhere) and the
 * encoder must write the same bytes back. Then per property: a second copy
 * (0x82 unless repeatable), every truncation of the value (0x81) and the
 * out-of-range values (0x82, 0x94). Blocks are copied into heap blocks of
 * exactly their length so AddressSanitizer catches over-reads.
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
#include "mqtt/props.h"
#include "mqtt/reason.h"

enum { T_BYTE, T_U16, T_U32, T_VARINT, T_STR, T_BIN, T_PAIR };

#define P(t)		(1u << (t))
#define WILL		P(PROPS_WILL)
#define PUBACKS		(P(CODEC_PUBACK) | P(CODEC_PUBREC) | \
			    P(CODEC_PUBREL) | P(CODEC_PUBCOMP))
#define ALL		(P(CODEC_CONNECT) | P(CODEC_CONNACK) | \
			    P(CODEC_PUBLISH) | PUBACKS | P(CODEC_SUBSCRIBE) | \
			    P(CODEC_SUBACK) | P(CODEC_UNSUBSCRIBE) | \
			    P(CODEC_UNSUBACK) | P(CODEC_DISCONNECT) | \
			    P(CODEC_AUTH) | WILL)

/* Table 2-4 of the 5.0 standard, written out independently of props.c. */
static const struct spec {
	int		id;
	int		type;
	unsigned	packets;
} spec[] = {
	{ 0x01, T_BYTE, P(CODEC_PUBLISH) | WILL },
	{ 0x02, T_U32, P(CODEC_PUBLISH) | WILL },
	{ 0x03, T_STR, P(CODEC_PUBLISH) | WILL },
	{ 0x08, T_STR, P(CODEC_PUBLISH) | WILL },
	{ 0x09, T_BIN, P(CODEC_PUBLISH) | WILL },
	{ 0x0b, T_VARINT, P(CODEC_PUBLISH) | P(CODEC_SUBSCRIBE) },
	{ 0x11, T_U32, P(CODEC_CONNECT) | P(CODEC_CONNACK) |
	    P(CODEC_DISCONNECT) },
	{ 0x12, T_STR, P(CODEC_CONNACK) },
	{ 0x13, T_U16, P(CODEC_CONNACK) },
	{ 0x15, T_STR, P(CODEC_CONNECT) | P(CODEC_CONNACK) | P(CODEC_AUTH) },
	{ 0x16, T_BIN, P(CODEC_CONNECT) | P(CODEC_CONNACK) | P(CODEC_AUTH) },
	{ 0x17, T_BYTE, P(CODEC_CONNECT) },
	{ 0x18, T_U32, WILL },
	{ 0x19, T_BYTE, P(CODEC_CONNECT) },
	{ 0x1a, T_STR, P(CODEC_CONNACK) },
	{ 0x1c, T_STR, P(CODEC_CONNACK) | P(CODEC_DISCONNECT) },
	{ 0x1f, T_STR, P(CODEC_CONNACK) | PUBACKS | P(CODEC_SUBACK) |
	    P(CODEC_UNSUBACK) | P(CODEC_DISCONNECT) | P(CODEC_AUTH) },
	{ 0x21, T_U16, P(CODEC_CONNECT) | P(CODEC_CONNACK) },
	{ 0x22, T_U16, P(CODEC_CONNECT) | P(CODEC_CONNACK) },
	{ 0x23, T_U16, P(CODEC_PUBLISH) },
	{ 0x24, T_BYTE, P(CODEC_CONNACK) },
	{ 0x25, T_BYTE, P(CODEC_CONNACK) },
	{ 0x26, T_PAIR, ALL },
	{ 0x27, T_U32, P(CODEC_CONNECT) | P(CODEC_CONNACK) },
	{ 0x28, T_BYTE, P(CODEC_CONNACK) },
	{ 0x29, T_BYTE, P(CODEC_CONNACK) },
	{ 0x2a, T_BYTE, P(CODEC_CONNACK) },
};
#define NSPEC	(sizeof spec / sizeof spec[0])

/* Properties whose value must be 0 or 1 / must not be 0. */
static bool
is_bool(int id)
{
	return id == 0x01 || id == 0x17 || id == 0x19 || id == 0x24 ||
	    id == 0x25 || id == 0x28 || id == 0x29 || id == 0x2a;
}

static bool
is_nonzero(int id)
{
	return id == 0x0b || id == 0x21 || id == 0x23 || id == 0x27;
}

/* Appends one property with a valid value (1, "ab", 00 01, "k"="v"). */
static size_t
put_prop(uint8_t *p, const struct spec *s)
{
	size_t	n = 0;

	p[n++] = (uint8_t)s->id;
	switch (s->type) {
	case T_BYTE:
		p[n++] = 1;
		break;
	case T_U16:
		p[n++] = 0;
		p[n++] = 1;
		break;
	case T_U32:
		memcpy(p + n, "\0\0\0\1", 4);
		n += 4;
		break;
	case T_VARINT:
		p[n++] = 1;
		break;
	case T_STR:
		memcpy(p + n, "\0\2ab", 4);
		n += 4;
		break;
	case T_BIN:
		memcpy(p + n, "\0\2\0\1", 4);
		n += 4;
		break;
	default:
		memcpy(p + n, "\0\1k\0\1v", 6);
		n += 6;
		break;
	}
	return n;
}

/* Decodes block[0..n) (length varint first) from an exact heap copy. */
static int
decode(const uint8_t *block, size_t n, int packet, struct props *out,
    uint8_t *reason, uint8_t **keep)
{
	uint8_t	*d = codectest_dup(block, n);
	size_t	 used = 0;
	int	 rc;

	*reason = 0;
	rc = props_decode(d, n, packet, out, &used, reason);
	if (rc == 0)
		CU_ASSERT_EQUAL(used, n);
	if (keep != NULL)
		*keep = d;
	else
		free(d);
	return rc;
}

/* Wraps the n property bytes at body into block (length byte first). */
static size_t
wrap(uint8_t *block, const uint8_t *body, size_t n)
{
	block[0] = (uint8_t)n;		/* all test blocks are < 128 bytes */
	memcpy(block + 1, body, n);
	return n + 1;
}

static void
test_each_property_each_packet(void)
{
	uint8_t		 body[64], block[80], reason, *keep;
	struct props	 pr;
	struct buf	 b = BUF_INIT;
	struct codec_iter it;
	struct codec_str k, v;
	uint32_t	 id;
	size_t		 i, n;
	int		 pk, rc;

	for (i = 0; i < NSPEC; i++) {
		n = wrap(block, body, put_prop(body, &spec[i]));
		for (pk = CODEC_CONNECT; pk <= PROPS_WILL; pk++) {
			if (pk == CODEC_PINGREQ || pk == CODEC_PINGRESP)
				continue;
			rc = decode(block, n, pk, &pr, &reason, &keep);
			CU_ASSERT_EQUAL(props_allowed(spec[i].id, pk),
			    (spec[i].packets & P(pk)) != 0);
			if ((spec[i].packets & P(pk)) == 0) {
				CU_ASSERT_EQUAL(rc, GW_EMALFORMED);
				CU_ASSERT_EQUAL(reason, REASON_MALFORMED);
				free(keep);
				continue;
			}
			CU_ASSERT_EQUAL_FATAL(rc, 0);
			if (spec[i].type == T_PAIR) {
				CU_ASSERT_EQUAL(pr.n_user, 1);
				it = pr.block;
				CU_ASSERT_EQUAL(props_next_user(&it, &k, &v),
				    1);
				CU_ASSERT(k.len == 1 && k.ptr[0] == 'k');
				CU_ASSERT(v.len == 1 && v.ptr[0] == 'v');
				CU_ASSERT_EQUAL(props_next_user(&it, &k, &v),
				    0);
			} else
				CU_ASSERT(props_has(&pr, spec[i].id));
			if (spec[i].id == PROPS_SUBSCRIPTION_ID) {
				it = pr.block;
				CU_ASSERT_EQUAL(props_next_sub_id(&it, &id), 1);
				CU_ASSERT_EQUAL(id, 1);
				CU_ASSERT_EQUAL(pr.subscription_id, 1);
			}
			/* Re-encoding writes the same bytes. */
			buf_reset(&b);
			CU_ASSERT_EQUAL_FATAL(props_encode(&b, &pr, pk), 0);
			CU_ASSERT_EQUAL(buf_used(&b), n);
			CU_ASSERT(memcmp(buf_head(&b), block, n) == 0);
			free(keep);
		}
	}
	buf_free(&b);
}

static void
test_values_land_in_slots(void)
{
	static const uint8_t blk[] = { 26,
		0x02, 0x00, 0x01, 0x00, 0x00,		/* expiry 65536 */
		0x23, 0x12, 0x34,			/* alias 0x1234 */
		0x01, 0x01,				/* utf-8 payload */
		0x0b, 0x80, 0x01,			/* sub id 128 */
		0x03, 0x00, 0x02, 'a', 'b',		/* content type */
		0x09, 0x00, 0x03, 0x00, 0xff, 0x01,	/* correlation */
		0x0b, 0x05,				/* sub id 5 */
	};
	struct props		 pr;
	struct codec_iter	 it;
	uint32_t		 id;
	uint8_t			 reason, *keep;

	CU_ASSERT_EQUAL_FATAL(decode(blk, sizeof blk, CODEC_PUBLISH, &pr,
	    &reason, &keep), 0);
	CU_ASSERT_EQUAL(pr.message_expiry, 65536);
	CU_ASSERT_EQUAL(pr.topic_alias, 0x1234);
	CU_ASSERT_EQUAL(pr.payload_format, 1);
	CU_ASSERT_EQUAL(pr.content_type.len, 2);
	CU_ASSERT_EQUAL(pr.correlation_data.len, 3);
	CU_ASSERT_EQUAL(pr.n_sub_id, 2);
	CU_ASSERT_EQUAL(pr.subscription_id, 128);
	CU_ASSERT(!props_has(&pr, PROPS_RESPONSE_TOPIC));
	it = pr.block;
	CU_ASSERT(props_next_sub_id(&it, &id) == 1 && id == 128);
	CU_ASSERT(props_next_sub_id(&it, &id) == 1 && id == 5);
	CU_ASSERT_EQUAL(props_next_sub_id(&it, &id), 0);
	free(keep);
}

static void
test_duplicates(void)
{
	uint8_t		body[64], block[80], reason;
	struct props	pr;
	size_t		i, n, m;
	int		pk, rc;

	for (i = 0; i < NSPEC; i++) {
		m = put_prop(body, &spec[i]);
		memcpy(body + m, body, m);
		n = wrap(block, body, 2 * m);
		for (pk = CODEC_CONNECT; pk <= PROPS_WILL; pk++) {
			if ((spec[i].packets & P(pk)) == 0)
				continue;
			rc = decode(block, n, pk, &pr, &reason, NULL);
			if (spec[i].type == T_PAIR ||
			    (spec[i].id == 0x0b && pk == CODEC_PUBLISH)) {
				CU_ASSERT_EQUAL(rc, 0);
				continue;
			}
			CU_ASSERT_EQUAL(rc, GW_EPROTO);
			CU_ASSERT_EQUAL(reason, REASON_PROTOCOL_ERROR);
		}
	}
}

static void
test_truncated_values(void)
{
	uint8_t		body[64], block[80], reason;
	struct props	pr;
	size_t		i, m, cut;
	int		pk, rc;

	for (i = 0; i < NSPEC; i++) {
		m = put_prop(body, &spec[i]);
		for (pk = 1; (spec[i].packets & P(pk)) == 0; pk++)
			;
		/* Keep the identifier, drop 1..all value bytes. */
		for (cut = 1; cut < m; cut++) {
			rc = decode(block, wrap(block, body, m - cut), pk,
			    &pr, &reason, NULL);
			CU_ASSERT_EQUAL(rc, GW_EMALFORMED);
			CU_ASSERT_EQUAL(reason, REASON_MALFORMED);
		}
		/* Or claim more bytes than there are. */
		wrap(block, body, m);
		block[0] = (uint8_t)(m + 1);
		rc = decode(block, m + 1, pk, &pr, &reason, NULL);
		CU_ASSERT_EQUAL(rc, GW_EMALFORMED);
	}
}

static void
test_ranges(void)
{
	uint8_t		body[64], block[80], reason;
	struct props	pr;
	struct buf	b = BUF_INIT;
	size_t		i, m, n;
	int		pk, rc;

	for (i = 0; i < NSPEC; i++) {
		if (!is_bool(spec[i].id) && !is_nonzero(spec[i].id))
			continue;
		m = put_prop(body, &spec[i]);
		for (pk = 1; (spec[i].packets & P(pk)) == 0; pk++)
			;
		/* 2 for the 0/1 ones, 0 for the non-zero ones. */
		body[m - 1] = is_bool(spec[i].id) ? 2 : 0;
		n = wrap(block, body, m);
		rc = decode(block, n, pk, &pr, &reason, NULL);
		CU_ASSERT_EQUAL(rc, GW_EPROTO);
		CU_ASSERT_EQUAL(reason, spec[i].id == PROPS_TOPIC_ALIAS ?
		    REASON_TOPIC_ALIAS_INVALID : REASON_PROTOCOL_ERROR);
		/* The encoder refuses to send the same value. */
		memset(&pr, 0, sizeof pr);
		props_set(&pr, spec[i].id);
		pr.payload_format = pr.request_problem_info = 2;
		pr.request_response_info = pr.maximum_qos = 2;
		pr.retain_available = pr.wildcard_sub_available = 2;
		pr.sub_id_available = pr.shared_sub_available = 2;
		CU_ASSERT_EQUAL(props_encode(&b, &pr, pk), GW_EMALFORMED);
		CU_ASSERT_EQUAL(buf_used(&b), 0);
	}
	buf_free(&b);
}

static void
test_block_length_forms(void)
{
	static const uint8_t nonmin[] = { 0x80, 0x00 };
	static const uint8_t five[] = { 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t empty[] = { 0x00 };
	static const uint8_t bad_utf8[] = { 5, 0x1f, 0x00, 0x02, 0xed, 0xa0 };
	static const uint8_t id_two[] = { 4, 0x9f, 0x00, 0x00, 0x00 };
	struct props	pr;
	uint8_t		reason;

	CU_ASSERT_EQUAL(decode(nonmin, sizeof nonmin, CODEC_PUBLISH, &pr,
	    &reason, NULL), GW_EMALFORMED);
	CU_ASSERT_EQUAL(reason, REASON_MALFORMED);
	CU_ASSERT_EQUAL(decode(five, sizeof five, CODEC_PUBLISH, &pr,
	    &reason, NULL), GW_EMALFORMED);
	CU_ASSERT_EQUAL(decode(empty, 0, CODEC_PUBLISH, &pr, &reason, NULL),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(decode(empty, 1, CODEC_PUBLISH, &pr, &reason, NULL),
	    0);
	CU_ASSERT_EQUAL(pr.present, 0);
	CU_ASSERT_EQUAL(decode(bad_utf8, sizeof bad_utf8, CODEC_PUBACK, &pr,
	    &reason, NULL), GW_EMALFORMED);
	CU_ASSERT_EQUAL(decode(id_two, sizeof id_two, CODEC_PUBACK, &pr,
	    &reason, NULL), GW_EMALFORMED);
}

static void
test_encode_arrays_and_limits(void)
{
	static const uint8_t want[] = { 15,
		0x0b, 0x07, 0x0b, 0xff, 0xff, 0xff, 0x7f,
		0x26, 0x00, 0x01, 'a', 0x00, 0x02, 'b', 'c',
	};
	struct props_pair	 up[] = { { { "a", 1 }, { "bc", 2 } } };
	uint32_t		 ids[] = { 7, PROPS_VARINT_MAX };
	uint32_t		 bad_ids[] = { 0 };
	struct props		 pr;
	struct buf		 b = BUF_INIT;

	memset(&pr, 0, sizeof pr);
	pr.user = up;
	pr.n_user = 1;
	pr.sub_ids = ids;
	pr.n_sub_id = 2;
	CU_ASSERT_EQUAL_FATAL(props_encode(&b, &pr, CODEC_PUBLISH), 0);
	CU_ASSERT_EQUAL(buf_used(&b), sizeof want);
	CU_ASSERT(memcmp(buf_head(&b), want, sizeof want) == 0);
	buf_reset(&b);
	/* Two subscription ids only fit a PUBLISH, none fit PUBACK. */
	CU_ASSERT_EQUAL(props_encode(&b, &pr, CODEC_SUBSCRIBE),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(props_encode(&b, &pr, CODEC_PUBACK), GW_EMALFORMED);
	ids[1] = PROPS_VARINT_MAX + 1;
	CU_ASSERT_EQUAL(props_encode(&b, &pr, CODEC_PUBLISH), GW_EMALFORMED);
	pr.sub_ids = bad_ids;
	pr.n_sub_id = 1;
	CU_ASSERT_EQUAL(props_encode(&b, &pr, CODEC_SUBSCRIBE),
	    GW_EMALFORMED);
	CU_ASSERT_EQUAL(buf_used(&b), 0);
	memset(&pr, 0, sizeof pr);
	props_set(&pr, PROPS_WILL_DELAY);
	CU_ASSERT_EQUAL(props_encode(&b, &pr, CODEC_PUBLISH), GW_EMALFORMED);
	CU_ASSERT_EQUAL(props_encode(&b, &pr, PROPS_WILL), 0);
	CU_ASSERT_EQUAL(props_varint_size(127), 1);
	CU_ASSERT_EQUAL(props_varint_size(128), 2);
	CU_ASSERT_EQUAL(props_varint_size(PROPS_VARINT_MAX), 4);
	CU_ASSERT_EQUAL(props_varint_size(PROPS_VARINT_MAX + 1), 0);
	CU_ASSERT_STRING_EQUAL(props_name(PROPS_TOPIC_ALIAS), "Topic Alias");
	CU_ASSERT_STRING_EQUAL(props_name(0x7f), "unknown");
	buf_free(&b);
}

static void
test_reason_table(void)
{
	static const struct {
		uint8_t	code;
		int	packet;
		bool	ok;
	} cases[] = {
		{ 0x00, CODEC_CONNACK, true }, { 0x00, CODEC_AUTH, true },
		{ 0x00, CODEC_CONNECT, false }, { 0x01, CODEC_SUBACK, true },
		{ 0x01, CODEC_PUBACK, false }, { 0x04, CODEC_DISCONNECT, true },
		{ 0x10, CODEC_PUBREC, true }, { 0x10, CODEC_PUBREL, false },
		{ 0x11, CODEC_UNSUBACK, true }, { 0x11, CODEC_SUBACK, false },
		{ 0x18, CODEC_AUTH, true }, { 0x19, CODEC_DISCONNECT, false },
		{ 0x81, CODEC_DISCONNECT, true },
		{ 0x81, CODEC_PUBACK, false },
		{ 0x84, CODEC_CONNACK, true }, { 0x84, CODEC_DISCONNECT, false },
		{ 0x87, CODEC_SUBACK, true }, { 0x8e, CODEC_DISCONNECT, true },
		{ 0x8e, CODEC_CONNACK, false }, { 0x92, CODEC_PUBCOMP, true },
		{ 0x92, CODEC_PUBACK, false }, { 0x93, CODEC_DISCONNECT, true },
		{ 0x95, CODEC_CONNACK, true }, { 0x9e, CODEC_SUBACK, true },
		{ 0xa2, CODEC_SUBACK, true }, { 0xa2, CODEC_UNSUBACK, false },
		{ 0x03, CODEC_DISCONNECT, false }, { 0xa3, CODEC_DISCONNECT,
		    false }, { 0xff, CODEC_CONNACK, false },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		CU_ASSERT_EQUAL(reason_allowed(cases[i].code,
		    cases[i].packet), cases[i].ok);
	CU_ASSERT_STRING_EQUAL(reason_name(0x00, CODEC_DISCONNECT),
	    "Normal disconnection");
	CU_ASSERT_STRING_EQUAL(reason_name(0x00, CODEC_SUBACK),
	    "Granted QoS 0");
	CU_ASSERT_STRING_EQUAL(reason_name(0x00, CODEC_PUBACK), "Success");
	CU_ASSERT_STRING_EQUAL(reason_name(0x8e, 0), "Session taken over");
	CU_ASSERT_STRING_EQUAL(reason_name(0x03, 0), "Unknown reason code");
	CU_ASSERT_EQUAL(reason_from_error(GW_EMALFORMED), 0x81);
	CU_ASSERT_EQUAL(reason_from_error(GW_EPROTO), 0x82);
	CU_ASSERT_EQUAL(reason_from_error(GW_ETOOBIG), 0x95);
	CU_ASSERT_EQUAL(reason_from_error(GW_ENOMEM), 0x80);
}

#define T(fn)	{ #fn, fn }
static const struct cutest_case tests[] = {
	T(test_each_property_each_packet), T(test_values_land_in_slots),
	T(test_duplicates), T(test_truncated_values), T(test_ranges),
	T(test_block_length_forms), T(test_encode_arrays_and_limits),
	T(test_reason_table),
};

int
main(void)
{
	return cutest_main("props", NULL, NULL, tests, CUTEST_COUNT(tests));
}
