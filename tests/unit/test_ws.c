/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the WebSocket endpoint (net/ws.c): SHA-1 against the
 * FIPS 180 vectors, the handshake answer for the RFC 6455 example key byte
 * for byte, masked and fragmented frames, pings between fragments, the
 * payload bound and backpressure, server frames, and every malformed form
 * with its close frame.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "buf.h"
#include "cutest.h"
#include "err.h"
#include "mem.h"
#include "net/ws.h"

#define RFC_REQ \
	"GET /mqtt HTTP/1.1\r\nHost: server.example.com\r\n" \
	"Upgrade: websocket\r\nConnection: Upgrade\r\n" \
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
	"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, mqtt\r\n" \
	"Sec-WebSocket-Version: 13\r\n\r\n"

#define RFC_ANSWER \
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" \
	"Connection: Upgrade\r\n" \
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" \
	"Sec-WebSocket-Protocol: mqtt\r\n\r\n"

/* The RFC's masked "Hello" (section 5.7) as a binary frame. */
static const uint8_t hello[] = { 0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
	0x9f, 0x4d, 0x51, 0x58 };

static void
hex(const uint8_t *md, char *out)
{
	int i;

	for (i = 0; i < 20; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void
test_sha1(void)
{
	static char million[1000000];
	uint8_t md[20];
	char h[41];

	ws_sha1("abc", 3, md);
	hex(md, h);
	CU_ASSERT_STRING_EQUAL(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	ws_sha1("", 0, md);
	hex(md, h);
	CU_ASSERT_STRING_EQUAL(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	ws_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	    md);
	hex(md, h);
	CU_ASSERT_STRING_EQUAL(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	memset(million, 'a', sizeof million);
	ws_sha1(million, sizeof million, md);
	hex(md, h);
	CU_ASSERT_STRING_EQUAL(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

/* A new endpoint fed the request, answered 101. */
static struct ws *
opened(void)
{
	struct ws *w = ws_new("/mqtt");
	struct buf in = BUF_INIT;

	buf_append(ws_rbuf(w), RFC_REQ, strlen(RFC_REQ));
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), (int)strlen(RFC_REQ));
	CU_ASSERT(ws_open(w));
	buf_reset(ws_wbuf(w));
	buf_free(&in);
	return w;
}

static void
test_handshake_rfc_example(void)
{
	struct ws *w = ws_new("/mqtt");
	struct buf in = BUF_INIT;
	char acc[29];
	size_t n = strlen(RFC_REQ);

	ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
	CU_ASSERT_STRING_EQUAL(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	/* Byte by byte: nothing happens before the blank line. */
	buf_append(ws_rbuf(w), RFC_REQ, n - 1);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), 0);
	CU_ASSERT(!ws_open(w));
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 0);
	buf_append(ws_rbuf(w), RFC_REQ + n - 1, 1);
	/* A frame pipelined behind the request is decoded too. */
	buf_append(ws_rbuf(w), hello, sizeof hello);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), (int)(n + sizeof hello));
	CU_ASSERT(ws_open(w));
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), strlen(RFC_ANSWER));
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), RFC_ANSWER,
	    strlen(RFC_ANSWER)) == 0);
	CU_ASSERT_EQUAL(buf_used(&in), 5);
	CU_ASSERT(memcmp(buf_head(&in), "Hello", 5) == 0);
	buf_free(&in);
	ws_free(w);
}

/* Feeds req to a new endpoint at /mqtt; checks the status line. */
static void
refused(const char *req, const char *status)
{
	struct ws *w = ws_new("/mqtt");
	struct buf in = BUF_INIT;

	buf_append(ws_rbuf(w), req, strlen(req));
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), GW_EPROTO);
	CU_ASSERT(ws_closed(w));
	CU_ASSERT_PTR_NOT_NULL(ws_failure(w));
	CU_ASSERT(buf_used(ws_wbuf(w)) > strlen(status));
	if (buf_used(ws_wbuf(w)) < strlen(status) ||
	    strncmp((const char *)buf_head(ws_wbuf(w)), status,
	    strlen(status)) != 0) {
		fprintf(stderr, "for %.40s: %.40s\n", req,
		    (const char *)buf_head(ws_wbuf(w)));
		CU_FAIL("wrong status");
	}
	CU_ASSERT_EQUAL(buf_used(&in), 0);
	buf_free(&in);
	ws_free(w);
}

#define H(path) "GET " path " HTTP/1.1\r\nHost: h\r\n"
#define UP "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"
#define QREQ H("/mqtt?a=b") "upgrade: WebSocket\r\n" \
	"connection: keep-alive,  upgrade\r\n" KEY V13 "\r\n"

static void
test_handshake_refusals(void)
{
	struct ws *w;
	struct buf in = BUF_INIT;
	char big[WS_MAX_REQUEST + 64];

	refused(H("/other") UP KEY V13 "\r\n", "HTTP/1.1 404 ");
	refused(H("/mqtt") KEY V13 "\r\n", "HTTP/1.1 426 ");
	refused(H("/mqtt") "Upgrade: h2c\r\nConnection: Upgrade\r\n" KEY V13
	    "\r\n", "HTTP/1.1 426 ");
	refused(H("/mqtt") UP KEY "Sec-WebSocket-Version: 8\r\n\r\n",
	    "HTTP/1.1 426 ");
	refused(H("/mqtt") UP KEY "\r\n", "HTTP/1.1 426 ");
	refused(H("/mqtt") UP V13 "\r\n", "HTTP/1.1 400 ");
	refused(H("/mqtt") UP "Sec-WebSocket-Key: c2hvcnQ=\r\n" V13 "\r\n",
	    "HTTP/1.1 400 ");
	refused(H("/mqtt") UP "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\n"
	    V13 "\r\n", "HTTP/1.1 400 ");
	refused(H("/mqtt") UP KEY V13 "Sec-WebSocket-Protocol: chat\r\n\r\n",
	    "HTTP/1.1 400 ");
	refused("POST /mqtt HTTP/1.1\r\n" UP KEY V13 "\r\n", "HTTP/1.1 400 ");
	refused("GET /mqtt HTTP/1.0\r\n" UP KEY V13 "\r\n", "HTTP/1.1 400 ");
	refused(H("/mqtt") "NoColonHere\r\n" UP KEY V13 "\r\n",
	    "HTTP/1.1 400 ");
	refused(H("/mqtt") "X: y\n" UP KEY V13 "\r\n", "HTTP/1.1 400 ");
	refused("\x10\x0c\x01\x04MQTT\x04\x02\x01\x3c\r\n\r\n",
	    "HTTP/1.1 400 ");
	/* Headers over WS_MAX_REQUEST without the blank line. */
	w = ws_new("/mqtt");
	memset(big, 'x', sizeof big);
	buf_append(ws_rbuf(w), big, sizeof big);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), GW_EPROTO);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), "HTTP/1.1 400 ", 13) == 0);
	ws_free(w);
	/* A query string is ignored; no sub-protocol header: none answered. */
	w = ws_new("/mqtt");
	buf_append(ws_rbuf(w), QREQ, strlen(QREQ));
	CU_ASSERT(ws_feed(w, &in, 0) > 0);
	CU_ASSERT(ws_open(w));
	CU_ASSERT(buf_used(ws_wbuf(w)) > 0 && memmem(buf_head(ws_wbuf(w)),
	    buf_used(ws_wbuf(w)), "WebSocket-Protocol", 18) == NULL);
	ws_free(w);
	buf_free(&in);
}

/* A masked client frame (mask 01 02 03 04) of opcode with p. */
static void
frame(struct buf *b, unsigned first, const void *p, size_t len)
{
	static const uint8_t mask[4] = { 1, 2, 3, 4 };
	uint8_t h[14], c;
	size_t hl = 2, i;

	h[0] = (uint8_t)first;
	if (len < 126)
		h[1] = (uint8_t)(0x80 | len);
	else {
		h[1] = 0x80 | 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	}
	memcpy(h + hl, mask, 4);
	buf_append(b, h, hl + 4);
	for (i = 0; i < len; i++) {
		c = ((const uint8_t *)p)[i] ^ mask[i % 4];
		buf_append(b, &c, 1);
	}
}

static void
test_fragments_and_ping(void)
{
	struct ws *w = opened();
	struct buf in = BUF_INIT;
	static const uint8_t pong[] = { 0x8a, 0x02, 'h', 'i' };
	size_t i;
	int rc, total = 0;

	frame(ws_rbuf(w), 0x02, "Hel", 3);	/* binary, no FIN */
	frame(ws_rbuf(w), 0x89, "hi", 2);	/* ping in between */
	frame(ws_rbuf(w), 0x00, "", 0);		/* empty continuation */
	frame(ws_rbuf(w), 0x80, "lo", 2);	/* last continuation */
	frame(ws_rbuf(w), 0x82, "!", 1);	/* a new message */
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), 9 + 8 + 6 + 8 + 7);
	CU_ASSERT_EQUAL(buf_used(&in), 6);
	CU_ASSERT(memcmp(buf_head(&in), "Hello!", 6) == 0);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), sizeof pong);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), pong, sizeof pong) == 0);
	CU_ASSERT_EQUAL(buf_used(ws_rbuf(w)), 0);
	/* The RFC's frame one byte at a time. */
	buf_reset(&in);
	for (i = 0; i < sizeof hello; i++) {
		buf_append(ws_rbuf(w), hello + i, 1);
		rc = ws_feed(w, &in, 0);
		CU_ASSERT(rc >= 0);
		total += rc;
	}
	CU_ASSERT_EQUAL(total, (int)sizeof hello);
	CU_ASSERT_EQUAL(buf_used(&in), 5);
	CU_ASSERT(memcmp(buf_head(&in), "Hello", 5) == 0);
	buf_free(&in);
	ws_free(w);
}

static void
test_backpressure_and_limit(void)
{
	struct ws *w = opened();
	struct buf in = BUF_INIT;
	char p[200];

	memset(p, 'p', sizeof p);
	frame(ws_rbuf(w), 0x82, p, sizeof p);
	/* in holds 60 of 210 bytes: 150 fit, the rest waits in rbuf. */
	buf_append(&in, p, 60);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 210), 4 + 4 + 150);
	CU_ASSERT_EQUAL(buf_used(&in), 210);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 210), 0);
	CU_ASSERT_EQUAL(buf_used(ws_rbuf(w)), 50);
	buf_consume(&in, 210);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 210), 50);
	CU_ASSERT_EQUAL(buf_used(&in), 50);
	/* A frame over the limit: close 1009. */
	buf_reset(&in);
	frame(ws_rbuf(w), 0x82, p, sizeof p);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 199), GW_EPROTO);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 4);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), "\x88\x02\x03\xf1", 4) == 0);
	CU_ASSERT_STRING_EQUAL(ws_failure(w), "websocket: frame over the "
	    "packet size limit (close 1009)");
	buf_free(&in);
	ws_free(w);
}

/* Feeds raw bytes to an open endpoint; expects close code. */
static void
malformed_in(const void *p, size_t len, unsigned code, size_t inlen)
{
	struct ws *w = opened();
	struct buf in = BUF_INIT;
	uint8_t want[4] = { 0x88, 2, (uint8_t)(code >> 8), (uint8_t)code };

	buf_append(ws_rbuf(w), p, len);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 1000), GW_EPROTO);
	CU_ASSERT(ws_closed(w));
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 4);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), want, 4) == 0);
	CU_ASSERT_EQUAL(buf_used(&in), inlen);
	/* Nothing more is read. */
	frame(ws_rbuf(w), 0x82, "x", 1);
	CU_ASSERT(ws_feed(w, &in, 1000) <= 0);
	CU_ASSERT_EQUAL(buf_used(&in), inlen);
	buf_free(&in);
	ws_free(w);
}

static void
malformed(const void *p, size_t len, unsigned code)
{
	malformed_in(p, len, code, 0);
}

static void
test_malformed_frames(void)
{
	struct buf b = BUF_INIT;
	char big[126];
	static const uint8_t unmasked[] = { 0x82, 0x01, 'x' };
	static const uint8_t top[] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0,
	    1, 2, 3, 4 };

	malformed(unmasked, sizeof unmasked, 1002);
	malformed(top, sizeof top, 1002);
#define M(first, p, n, code) do { \
		buf_reset(&b); \
		frame(&b, first, p, n); \
		malformed(buf_head(&b), buf_used(&b), code); \
	} while (0)
	M(0x81, "text", 4, 1003);		/* text frame */
	M(0xc2, "x", 1, 1002);			/* RSV1 */
	M(0xa2, "x", 1, 1002);			/* RSV2 */
	M(0x92, "x", 1, 1002);			/* RSV3 */
	M(0x83, "x", 1, 1002);			/* reserved data opcode */
	M(0x8b, "x", 1, 1002);		/* reserved control opcode */
	M(0x80, "x", 1, 1002);		/* continuation, no message */
	M(0x09, "x", 1, 1002);			/* fragmented ping */
	M(0x88, "x", 1, 1002);			/* close of one byte */
	M(0x88, "\x03\xed", 2, 1002);		/* close code 1005 */
	memset(big, 'b', sizeof big);
	M(0x89, big, sizeof big, 1002);		/* ping over 125 bytes */
	/* A new binary message inside a fragmented one. */
	buf_reset(&b);
	frame(&b, 0x02, "a", 1);
	frame(&b, 0x82, "b", 1);
	malformed_in(buf_head(&b), buf_used(&b), 1002, 1);
#undef M
	buf_free(&b);
}

static void
test_close_echo(void)
{
	struct ws *w = opened();
	struct buf in = BUF_INIT;

	frame(ws_rbuf(w), 0x88, "\x03\xe9" "bye", 5);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), 11);
	CU_ASSERT(ws_closed(w));
	CU_ASSERT_PTR_NULL(ws_failure(w));
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 4);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), "\x88\x02\x03\xe9", 4) == 0);
	ws_free(w);
	w = opened();
	frame(ws_rbuf(w), 0x88, "", 0);
	CU_ASSERT_EQUAL(ws_feed(w, &in, 0), 6);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), "\x88\x00", 2) == 0);
	ws_free(w);
	buf_free(&in);
}

static void
test_frame_out(void)
{
	struct ws *w = ws_new("/mqtt");
	struct buf out = BUF_INIT;
	static char big[70000];
	const uint8_t *h;

	/* Before the upgrade nothing is framed. */
	buf_append(&out, "abc", 3);
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 0);
	ws_free(w);
	w = opened();
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 5);
	CU_ASSERT(memcmp(buf_head(ws_wbuf(w)), "\x82\x03" "abc", 5) == 0);
	/* out keeps the bytes until the frame is written. */
	CU_ASSERT_EQUAL(buf_used(&out), 3);
	buf_append(&out, big, 300);
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 5);
	buf_reset(ws_wbuf(w));
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	CU_ASSERT_EQUAL(buf_used(&out), 300);
	h = buf_head(ws_wbuf(w));
	CU_ASSERT(h[0] == 0x82 && h[1] == 126 && h[2] == 1 && h[3] == 44);
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 304);
	buf_reset(ws_wbuf(w));
	buf_append(&out, big, sizeof big);
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	h = buf_head(ws_wbuf(w));
	CU_ASSERT_EQUAL(buf_used(ws_wbuf(w)), 10 + WS_MAX_OUT_FRAME);
	CU_ASSERT(h[0] == 0x82 && h[1] == 127 && h[7] == 1 && h[8] == 0 &&
	    h[9] == 0);
	buf_reset(ws_wbuf(w));
	CU_ASSERT_EQUAL(ws_frame_out(w, &out), 0);
	CU_ASSERT_EQUAL(buf_used(&out), sizeof big - WS_MAX_OUT_FRAME);
	buf_free(&out);
	ws_free(w);
}

int
main(void)
{
	CU_pSuite s;
	size_t base;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return cutest_setup_failed();
	base = gw_mem_used();
	s = CU_add_suite("ws", NULL, NULL);
	if (s == NULL ||
	    CU_add_test(s, "sha1 vectors", test_sha1) == NULL ||
	    CU_add_test(s, "handshake (RFC example)",
	    test_handshake_rfc_example) == NULL ||
	    CU_add_test(s, "handshake refusals",
	    test_handshake_refusals) == NULL ||
	    CU_add_test(s, "fragments and ping",
	    test_fragments_and_ping) == NULL ||
	    CU_add_test(s, "backpressure and limit",
	    test_backpressure_and_limit) == NULL ||
	    CU_add_test(s, "malformed frames", test_malformed_frames) == NULL ||
	    CU_add_test(s, "close echo", test_close_echo) == NULL ||
	    CU_add_test(s, "frame out", test_frame_out) == NULL)
		return cutest_setup_failed();
	(void)base;
	return cutest_run();
}
