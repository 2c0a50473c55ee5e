/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the MQTT codec (built with --enable-fuzzing and
 * clang). The input is treated as a byte stream from a client: it is cut
 * into packets with codec_parse_frame() and every packet goes through its
 * body decoder. Packets that decode are encoded again and decoded a second
 * time; any difference is a codec bug and traps. Seed the corpus with
 * tests/fixtures/packets:
 *
 *	./tests/fuzz/fuzz_codec corpus/ $top_srcdir/tests/fixtures/packets
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "mqtt/codec.h"
#include "mqtt/utf8.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)

static void	fuzz_publish(uint8_t, const uint8_t *, size_t);
static void	fuzz_connect(const uint8_t *, size_t);
static void	fuzz_subscribe(const uint8_t *, size_t);
static void	fuzz_packet(const struct codec_header *, const uint8_t *);

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_header	h;
	uint8_t			*copy;
	size_t			off = 0;

	(void)utf8_valid(data, size, false);
	(void)utf8_valid(data, size, true);
	while (off < size) {
		if (codec_parse_frame(data + off, size - off, 1 << 20,
		    &h) != 0)
			break;
		/* An exact copy so reads past the packet are caught. */
		copy = malloc(h.remaining == 0 ? 1 : h.remaining);
		if (copy == NULL)
			break;
		memcpy(copy, data + off + h.header_len, h.remaining);
		fuzz_packet(&h, copy);
		free(copy);
		off += h.header_len + h.remaining;
	}
	return 0;
}
