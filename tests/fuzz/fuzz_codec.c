/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the MQTT codec (built with --enable-fuzzing and
 * clang). The input is treated as a byte stream from a client, twice: as
 * MQTT 3.1.1, cut into packets with codec_parse_frame() and every packet
 * through its body decoder, and as MQTT 5.0, cut with codec5_parse_frame()
 * and decoded with codec5_decode() at level 5. Packets that decode are
 * encoded again and decoded a second time; any difference is a codec bug
 * and traps. For 5.0, whose encoders write the shortest form and the
 * properties in identifier order, the check is that encoding the second
 * decode gives the very same bytes as the first encode and that both
 * decodes agree field by field. Seed the corpus
 * with tests/fixtures/packets (the v5_*.bin files are the 5.0 seeds):
 *
 *	./tests/fuzz/fuzz_codec corpus/ $top_srcdir/tests/fixtures/packets
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/codec5.h"
#include "mqtt/props.h"
#include "mqtt/reason.h"
#include "mqtt/utf8.h"
#include "../unit/codectest.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static void	fuzz_publish(uint8_t, const uint8_t *, size_t);
static void	fuzz_connect(const uint8_t *, size_t);
static void	fuzz_subscribe(const uint8_t *, size_t);
static void	fuzz_packet(const struct codec_header *, const uint8_t *);
static void	check_props(const struct props *);
static void	same_props(const struct props *, const struct props *);
static void	same5(const struct codec5_packet *,
		    const struct codec5_packet *);
static void	fuzz_packet5(const struct codec_header *, const uint8_t *);
static void	fuzz_stream(const uint8_t *, size_t, int);

static int
same(struct codec_str a, struct codec_str b)
{
	return a.len == b.len && (a.len == 0 ||
	    memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void
fuzz_publish(uint8_t flags, const uint8_t *body, size_t len)
{
	struct codec_publish	p, q;
	struct codec_header	h;
	struct buf		b = BUF_INIT;

	if (codec_decode_publish(flags, body, len, &p) != 0)
		return;
	CHECK(codec_encode_publish(&b, p.topic.ptr, p.topic.len, p.payload,
	    p.payload_len, p.qos, p.retain, p.dup, p.packet_id) == 0);
	CHECK(codec_parse_frame(buf_head(&b), buf_used(&b), 0, &h) == 0);
	CHECK(h.flags == flags);
	CHECK(h.remaining == len);
	CHECK(memcmp(buf_head(&b) + h.header_len, body, len) == 0);
	CHECK(codec_decode_publish(h.flags, buf_head(&b) + h.header_len,
	    h.remaining, &q) == 0);
	buf_free(&b);
}

static void
fuzz_connect(const uint8_t *body, size_t len)
{
	struct codec_connect	c, d;
	struct codec_header	h;
	struct buf		b = BUF_INIT;

	if (codec_decode_connect(body, len, &c) != 0)
		return;
	CHECK(codec_encode_connect(&b, &c) == 0);
	CHECK(codec_parse_frame(buf_head(&b), buf_used(&b), 0, &h) == 0);
	CHECK(h.remaining == len);
	CHECK(memcmp(buf_head(&b) + h.header_len, body, len) == 0);
	CHECK(codec_decode_connect(buf_head(&b) + h.header_len, h.remaining,
	    &d) == 0);
	CHECK(same(c.client_id, d.client_id));
	buf_free(&b);
}

static void
fuzz_subscribe(const uint8_t *body, size_t len)
{
	struct codec_subscribe	s;
	struct codec_str	f;
	uint8_t			qos;
	unsigned		n = 0;

	if (codec_decode_subscribe(body, len, &s) != 0)
		return;
	while (codec_subscribe_next(&s.entries, &f, &qos) == 1) {
		CHECK(f.len > 0 && qos <= 2);
		CHECK(utf8_valid(f.ptr, f.len, false));
		n++;
	}
	CHECK(n == s.count);
}

static void
fuzz_packet(const struct codec_header *h, const uint8_t *body)
{
	struct codec_unsubscribe	u;
	struct codec_connack		ca;
	struct codec_suback		sa;
	struct codec_str		f;
	uint16_t			id;
	unsigned			n = 0;

	switch (h->type) {
	case CODEC_CONNECT:
		fuzz_connect(body, h->remaining);
		break;
	case CODEC_CONNACK:
		(void)codec_decode_connack(body, h->remaining, &ca);
		break;
	case CODEC_PUBLISH:
		fuzz_publish(h->flags, body, h->remaining);
		break;
	case CODEC_SUBSCRIBE:
		fuzz_subscribe(body, h->remaining);
		break;
	case CODEC_UNSUBSCRIBE:
		if (codec_decode_unsubscribe(body, h->remaining, &u) != 0)
			break;
		while (codec_unsubscribe_next(&u.entries, &f) == 1)
			n++;
		CHECK(n == u.count);
		break;
	case CODEC_SUBACK:
		(void)codec_decode_suback(body, h->remaining, &sa);
		break;
	case CODEC_PINGREQ:
	case CODEC_PINGRESP:
	case CODEC_DISCONNECT:
		(void)codec_decode_empty(h->remaining);
		break;
	default:
		if (codec_decode_ack(body, h->remaining, &id) == 0)
			CHECK(id != 0);
		break;
	}
}

/* The counts of a decoded block agree with what its iterators yield. */
static void
check_props(const struct props *p)
{
	struct codec_iter	it = p->block;
	struct codec_str	k, v;
	uint32_t		id;
	unsigned		n = 0;

	while (props_next_user(&it, &k, &v) == 1) {
		CHECK(utf8_valid(k.ptr, k.len, false));
		CHECK(utf8_valid(v.ptr, v.len, false));
		n++;
	}
	CHECK(n == p->n_user);
	it = p->block;
	n = 0;
	while (props_next_sub_id(&it, &id) == 1) {
		CHECK(id >= 1 && id <= PROPS_VARINT_MAX);
		n++;
	}
	CHECK(n == p->n_sub_id);
}

/* Two decodes of the same property block content agree. */
static void
same_props(const struct props *a, const struct props *b)
{
	CHECK(a->present == b->present);
	CHECK(a->n_user == b->n_user && a->n_sub_id == b->n_sub_id);
	CHECK(a->subscription_id == b->subscription_id);
	CHECK(a->message_expiry == b->message_expiry);
	CHECK(a->topic_alias == b->topic_alias);
	CHECK(same(a->reason_string, b->reason_string));
	CHECK(same(a->correlation_data, b->correlation_data));
}

/* The original decode and the decode of its re-encoding agree. */
static void
same5(const struct codec5_packet *a, const struct codec5_packet *b)
{
	struct codec_iter	ia, ib;
	struct codec_str	fa, fb;
	struct codec5_subopts	oa, ob;

	CHECK(a->type == b->type);
	switch (a->type) {
	case CODEC_CONNECT:
		CHECK(same(a->u.connect5.c.client_id,
		    b->u.connect5.c.client_id));
		CHECK(a->u.connect5.c.will_flag == b->u.connect5.c.will_flag);
		CHECK(same(a->u.connect5.c.password, b->u.connect5.c.password));
		same_props(&a->u.connect5.props, &b->u.connect5.props);
		same_props(&a->u.connect5.will_props,
		    &b->u.connect5.will_props);
		break;
	case CODEC_CONNACK:
		CHECK(a->u.connack5.reason == b->u.connack5.reason);
		same_props(&a->u.connack5.props, &b->u.connack5.props);
		break;
	case CODEC_PUBLISH:
		CHECK(same(a->u.publish5.p.topic, b->u.publish5.p.topic));
		CHECK(a->u.publish5.p.packet_id == b->u.publish5.p.packet_id);
		CHECK(a->u.publish5.p.payload_len ==
		    b->u.publish5.p.payload_len);
		same_props(&a->u.publish5.props, &b->u.publish5.props);
		break;
	case CODEC_SUBSCRIBE:
		same_props(&a->u.subscribe5.props, &b->u.subscribe5.props);
		ia = a->u.subscribe5.entries;
		ib = b->u.subscribe5.entries;
		while (codec5_subscribe_next(&ia, &fa, &oa) == 1) {
			CHECK(codec5_subscribe_next(&ib, &fb, &ob) == 1);
			CHECK(same(fa, fb) && oa.qos == ob.qos);
			CHECK(oa.no_local == ob.no_local);
			CHECK(oa.retain_as_published ==
			    ob.retain_as_published);
			CHECK(oa.retain_handling == ob.retain_handling);
		}
		break;
	case CODEC_SUBACK:
	case CODEC_UNSUBACK:
		CHECK(a->u.suback5.count == b->u.suback5.count);
		CHECK(memcmp(a->u.suback5.codes, b->u.suback5.codes,
		    a->u.suback5.count) == 0);
		same_props(&a->u.suback5.props, &b->u.suback5.props);
		break;
	case CODEC_UNSUBSCRIBE:
		CHECK(a->u.unsubscribe5.count == b->u.unsubscribe5.count);
		break;
	case CODEC_DISCONNECT:
	case CODEC_AUTH:
		CHECK(a->u.disconnect5.reason == b->u.disconnect5.reason);
		same_props(&a->u.disconnect5.props, &b->u.disconnect5.props);
		break;
	default:
		CHECK(a->u.ack5.packet_id == b->u.ack5.packet_id);
		CHECK(a->u.ack5.reason == b->u.ack5.reason);
		same_props(&a->u.ack5.props, &b->u.ack5.props);
		break;
	}
}

static void
fuzz_packet5(const struct codec_header *h, const uint8_t *body)
{
	struct codec5_packet	*pk, *pk2;
	struct codec_header	 h2;
	struct buf		 b = BUF_INIT, b2 = BUF_INIT;
	uint8_t			 reason = 0;
	int			 rc;

	pk = malloc(sizeof *pk);
	pk2 = malloc(sizeof *pk2);
	if (pk == NULL || pk2 == NULL)
		goto out;
	rc = codec5_decode(CODEC5_LEVEL, h, body, h->remaining, pk, &reason);
	if (rc != 0) {
		/* Every refusal names a reason a DISCONNECT may carry. */
		CHECK(rc == GW_EMALFORMED || rc == GW_EPROTO ||
		    rc == GW_EUNSUPPORTED);
		CHECK(rc == GW_EUNSUPPORTED ? reason == 0x84 :
		    reason_allowed(reason, CODEC_DISCONNECT));
		goto out;
	}
	if (pk->version != CODEC5_LEVEL)
		goto out;		/* a 3.1.1 CONNECT: fuzz_packet() */
	switch (pk->type) {
	case CODEC_CONNECT:
		check_props(&pk->u.connect5.props);
		check_props(&pk->u.connect5.will_props);
		break;
	case CODEC_PUBLISH:
		check_props(&pk->u.publish5.props);
		break;
	default:
		break;
	}
	rc = codectest_reencode5(pk, &b);
	CHECK(rc != CODECTEST_MISCOUNT);
	if (rc != 0)
		goto out;
	CHECK(codec5_parse_frame(buf_head(&b), buf_used(&b), 0, &h2) == 0);
	CHECK(h2.type == h->type && h2.flags == h->flags);
	CHECK(h2.remaining <= h->remaining);
	CHECK(codec5_decode(CODEC5_LEVEL, &h2, buf_head(&b) + h2.header_len,
	    h2.remaining, pk2, &reason) == 0);
	same5(pk, pk2);
	CHECK(codectest_reencode5(pk2, &b2) == 0);
	CHECK(buf_used(&b2) == buf_used(&b));
	CHECK(memcmp(buf_head(&b2), buf_head(&b), buf_used(&b)) == 0);
out:
	buf_free(&b);
	buf_free(&b2);
	free(pk);
	free(pk2);
}

/* Cuts data into packets at protocol level version and decodes each. */
static void
fuzz_stream(const uint8_t *data, size_t size, int version)
{
	struct codec_header	h;
	uint8_t			*copy;
	size_t			off = 0;
	int			rc;

	while (off < size) {
		if (version == CODEC5_LEVEL)
			rc = codec5_parse_frame(data + off, size - off,
			    1 << 20, &h);
		else
			rc = codec_parse_frame(data + off, size - off,
			    1 << 20, &h);
		if (rc != 0)
			break;
		/* An exact copy so reads past the packet are caught. */
		copy = malloc(h.remaining == 0 ? 1 : h.remaining);
		if (copy == NULL)
			break;
		memcpy(copy, data + off + h.header_len, h.remaining);
		if (version == CODEC5_LEVEL)
			fuzz_packet5(&h, copy);
		else
			fuzz_packet(&h, copy);
		free(copy);
		off += h.header_len + h.remaining;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)utf8_valid(data, size, false);
	(void)utf8_valid(data, size, true);
	fuzz_stream(data, size, 4);
	fuzz_stream(data, size, CODEC5_LEVEL);
	return 0;
}
