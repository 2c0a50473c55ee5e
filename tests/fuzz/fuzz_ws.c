/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) mqlite authors */
/*
 * libFuzzer target for the WebSocket endpoint (net/ws.c): the input is
 * what a client sends on a WebSocket listener. Byte 0 picks the shape:
 * bit 0 puts a valid upgrade request (the RFC 6455 example) in front so
 * the frame decoder is reached, bits 1-7 give the chunk size of the
 * second run. The rest is fed twice:
 *
 *   A: all at once, the MQTT input drained after every call;
 *   B: in chunks, the MQTT input drained only when at its limit, so the
 *      backpressure path (payload left in the raw buffer) runs.
 *
 * Invariants: both runs yield the same MQTT bytes, the same raw output
 * (HTTP answer, pongs, close frame) and the same end state; the MQTT
 * input never holds more than the limit; a failure leaves a close frame
 * (or an HTTP error answer) last in the output; the raw input left over
 * is bounded (a partial header, control frame or request). Then the MQTT
 * bytes are framed back by ws_frame_out() and the server frames decoded
 * here must carry them exactly. ASan/UBSan/LSan see nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "net/ws.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(x)	do { if (!(x)) __builtin_trap(); } while (0)
#define LIMIT		4096

static const char req[] =
	"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct run {
	struct ws	*w;
	struct buf	 in;	/* MQTT bytes not yet drained */
	struct buf	 mqtt;	/* every MQTT byte decoded */
	int		 rc;	/* last error, or 0 */
};

static void
drain(struct run *r)
{
	CHECK(buf_used(&r->in) <= LIMIT);
	if (buf_used(&r->in) > 0)
		CHECK(buf_append(&r->mqtt, buf_head(&r->in),
		    buf_used(&r->in)) == 0);
	buf_reset(&r->in);
}

/* Feeds p in chunks of step bytes (0: at once). */
static void
feed(struct run *r, const uint8_t *p, size_t len, size_t step, bool lazy)
{
	size_t off = 0, n;
	int rc, rounds;

	r->w = ws_new("/mqtt");
	CHECK(r->w != NULL);
	while (off < len && r->rc == 0 && !ws_closed(r->w)) {
		n = step == 0 || len - off < step ? len - off : step;
		CHECK(buf_append(ws_rbuf(r->w), p + off, n) == 0);
		off += n;
		for (rounds = 0; rounds < 1000000; rounds++) {
			rc = ws_feed(r->w, &r->in, LIMIT);
			CHECK(rc != GW_ENOMEM);
			if (rc < 0) {
				r->rc = rc;
				break;
			}
			CHECK(buf_used(&r->in) <= LIMIT);
			if (!lazy || buf_used(&r->in) == LIMIT)
				drain(r);
			else if (rc == 0)
				break;
			if (rc == 0 && buf_used(&r->in) == 0)
				break;
		}
	}
	drain(r);
	if (!ws_closed(r->w))
		CHECK(buf_used(ws_rbuf(r->w)) < WS_MAX_REQUEST + 14 + 125);
}

/* Decodes the server's frames in b; binary payloads appended to out. */
static void
server_frames(const struct buf *b, struct buf *out)
{
	const uint8_t *p = buf_head(b);
	size_t len = buf_used(b), hl, i;
	uint64_t n;

	while (len > 0) {
		CHECK(len >= 2 && p[0] == 0x82 && !(p[1] & 0x80));
		n = p[1] & 0x7f;
		hl = 2;
		if (n == 126) {
			CHECK(len >= 4);
			n = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (n == 127) {
			CHECK(len >= 10);
			for (n = 0, i = 0; i < 8; i++)
				n = n << 8 | p[2 + i];
			hl = 10;
		}
		CHECK(n <= WS_MAX_OUT_FRAME && len >= hl + n);
		CHECK(buf_append(out, p + hl, (size_t)n) == 0);
		p += hl + n;
		len -= hl + (size_t)n;
	}
}

static void
run_free(struct run *r)
{
	ws_free(r->w);
	buf_free(&r->in);
	buf_free(&r->mqtt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a, b;
	struct buf input = BUF_INIT, out = BUF_INIT, back = BUF_INIT;
	struct ws *w;
	const uint8_t *wb;
	size_t step, rounds;

	if (size < 1 || size > 256 * 1024)
		return 0;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	if (data[0] & 1)
		CHECK(buf_append(&input, req, sizeof req - 1) == 0);
	if (size > 1)
		CHECK(buf_append(&input, data + 1, size - 1) == 0);
	if (buf_used(&input) == 0) {
		buf_free(&input);
		return 0;
	}
	step = (data[0] >> 1) + 1;
	feed(&a, buf_head(&input), buf_used(&input), 0, false);
	feed(&b, buf_head(&input), buf_used(&input), step, true);
	CHECK((a.rc == 0) == (b.rc == 0));
	CHECK(ws_closed(a.w) == ws_closed(b.w));
	CHECK(ws_open(a.w) == ws_open(b.w));
	CHECK(buf_used(&a.mqtt) == buf_used(&b.mqtt));
	CHECK(buf_used(&a.mqtt) == 0 || memcmp(buf_head(&a.mqtt),
	    buf_head(&b.mqtt), buf_used(&a.mqtt)) == 0);
	CHECK(buf_used(ws_wbuf(a.w)) == buf_used(ws_wbuf(b.w)));
	CHECK(buf_used(ws_wbuf(a.w)) == 0 || memcmp(buf_head(ws_wbuf(a.w)),
	    buf_head(ws_wbuf(b.w)), buf_used(ws_wbuf(a.w))) == 0);
	if (a.rc != 0) {
		CHECK(ws_failure(a.w) != NULL);
		wb = buf_head(ws_wbuf(a.w));
		CHECK(buf_used(ws_wbuf(a.w)) >= 4);
		CHECK(memcmp(wb, "HTTP/1.1 4", 10) == 0 ||
		    (wb[buf_used(ws_wbuf(a.w)) - 4] == 0x88 &&
		    wb[buf_used(ws_wbuf(a.w)) - 3] == 2));
	}

	/* The decoded bytes framed back come out the same. */
	if (buf_used(&a.mqtt) > 0) {
		w = ws_new("/mqtt");
		CHECK(w != NULL);
		CHECK(buf_append(ws_rbuf(w), req, sizeof req - 1) == 0);
		CHECK(ws_feed(w, &out, 0) == (int)(sizeof req - 1));
		buf_reset(ws_wbuf(w));
		CHECK(buf_append(&out, buf_head(&a.mqtt),
		    buf_used(&a.mqtt)) == 0);
		/* Repeat to cross WS_MAX_OUT_FRAME now and then. */
		for (rounds = 0; rounds < 40 && data[0] & 0x80; rounds++)
			CHECK(buf_append(&out, buf_head(&a.mqtt),
			    buf_used(&a.mqtt)) == 0);
		for (rounds = 0; rounds < 100000; rounds++) {
			CHECK(ws_frame_out(w, &out) == 0);
			if (buf_used(ws_wbuf(w)) == 0)
				break;
			server_frames(ws_wbuf(w), &back);
			buf_reset(ws_wbuf(w));
		}
		CHECK(buf_used(&out) == 0);
		CHECK(buf_used(&back) % buf_used(&a.mqtt) == 0);
		CHECK(memcmp(buf_head(&back), buf_head(&a.mqtt),
		    buf_used(&a.mqtt)) == 0);
		ws_free(w);
	}
	buf_free(&out);
	buf_free(&back);
	buf_free(&input);
	run_free(&a);
	run_free(&b);
	return 0;
}
