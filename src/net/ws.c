/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DESIGN
 *
 * A WebSocket endpoint is a decoder over two raw buffers owned here (rbuf
 * in, wbuf out) and the connection's MQTT buffers owned by conn.c.
 *
 * Handshake: bytes accumulate in rbuf until the blank line ending the
 * request, at most WS_MAX_REQUEST bytes (else 400). The request must be
 * "GET <path> HTTP/1.1" (400; a different path, query ignored, is 404)
 * with Upgrade: websocket and Connection: upgrade (426 without them),
 * Sec-WebSocket-Version: 13 (426 naming 13 otherwise) and a
 * Sec-WebSocket-Key of 16 bytes in base64 (400). A Sec-WebSocket-Protocol
 * list must name "mqtt" or "mqttv3.1" (400 otherwise); the first of them
 * listed is answered; a request without the header is accepted and
 * answered without one. Errors answer with "Connection: close" and fail.
 *
 * Frames: the header is decoded once it is whole in rbuf. Every frame
 * from the client is masked (1002 otherwise), has no RSV bit (1002) and a
 * known opcode (1002); text frames close with 1003; a data frame over the
 * limit closes with 1009; control frames are whole (FIN) and carry at most
 * 125 bytes (1002). Binary payload is unmasked straight into the MQTT
 * input buffer as it arrives, so a frame never needs to be held whole and
 * the MQTT parser sees a plain stream: one packet over many frames or many
 * packets in one frame are the same. Continuation frames follow a
 * non-FIN binary frame only (1002 otherwise). When the MQTT input buffer
 * is at its limit, decoding stops and rbuf keeps the rest: the broker's
 * backpressure reaches the socket as with TCP. A ping is answered with a
 * pong of the same payload, a pong is ignored, a close is echoed (its
 * code, or 1000) and ends the stream.
 *
 * Output: the MQTT bytes are copied into one unmasked binary frame of at
 * most WS_MAX_OUT_FRAME bytes at a time, and only consumed from the
 * connection's output buffer once the whole frame is written, so output
 * limits and backpressure count them exactly as on TCP. Control frames
 * are appended after whole frames only, never inside one.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "mem.h"
#include "net/ws.h"

#define WS_GUID		"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_state {
	WS_HTTP,		/* waiting for the upgrade request */
	WS_OPEN,		/* frames flow */
	WS_CLOSED		/* closed or failed: nothing more is read */
};

struct ws {
	enum ws_state	 state;
	char		*path;		/* the upgrade path served */
	struct buf	 rbuf;		/* raw input */
	struct buf	 wbuf;		/* raw output */
	size_t		 framed;	/* bytes of out inside wbuf */
	bool		 in_frame;	/* a data frame's payload is pending */
	bool		 in_message;	/* a fragmented message is open */
	uint64_t	 remain;	/* payload bytes left in this frame */
	uint8_t		 mask[4];
	unsigned	 mpos;		/* mask index of the next byte */
	char		 failure[128];
};

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* See ws.h. */
struct ws *
ws_new(const char *path)
{
	struct ws *w;

	if ((w = gw_calloc(1, sizeof *w)) == NULL)
		return NULL;
	if ((w->path = gw_strdup(path)) == NULL) {
		gw_free(w);
		return NULL;
	}
	return w;
}

/* See ws.h. */
void
ws_free(struct ws *w)
{
	if (w == NULL)
		return;
	buf_free(&w->rbuf);
	buf_free(&w->wbuf);
	gw_free(w->path);
	gw_free(w);
}

/* See ws.h. */
struct buf *
ws_rbuf(struct ws *w)
{
	return &w->rbuf;
}

/* See ws.h. */
struct buf *
ws_wbuf(struct ws *w)
{
	return &w->wbuf;
}

/* See ws.h. */
bool
ws_open(const struct ws *w)
{
	return w->state == WS_OPEN;
}

/* See ws.h. */
bool
ws_closed(const struct ws *w)
{
	return w->state == WS_CLOSED;
}

/* See ws.h. */
const char *
ws_failure(const struct ws *w)
{
	return w->failure[0] != '\0' ? w->failure : NULL;
}

/* See ws.h. */
void
ws_accept_key(const char *key, char out[29])
{
	char joined[128];
	uint8_t md[21];
	size_t i, o = 0;
	uint32_t v;

	snprintf(joined, sizeof joined, "%s%s", key, WS_GUID);
	ws_sha1(joined, strlen(joined), md);
	md[20] = 0;
	for (i = 0; i < 21; i += 3) {
		v = (uint32_t)md[i] << 16 | (uint32_t)md[i + 1] << 8 |
		    (i + 2 < 21 ? md[i + 2] : 0);
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	/* 20 bytes: 27 characters and one '=' of padding. */
	out[27] = '=';
	out[28] = '\0';
}

/* Whether s is 16 bytes in base64: 22 characters and "==". */
static bool
key_valid(const char *s, size_t len)
{
	size_t i;

	if (len != 24 || s[22] != '=' || s[23] != '=')
		return false;
	for (i = 0; i < 22; i++)
		if (strchr(b64, s[i]) == NULL || s[i] == '\0')
			return false;
	/* The last character carries 2 bits: the rest must be zero. */
	return (strchr(b64, s[21]) - b64) % 16 == 0;
}

/*
 * Whether the comma-separated list v (len bytes) holds token,
 * case-insensitively; with pos, the token's index in the list.
 */
static bool
list_has(const char *v, size_t len, const char *token, size_t *pos)
{
	size_t i = 0, s, e, n = strlen(token), idx = 0;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == n && strncasecmp(v + s, token, n) == 0) {
			if (pos != NULL)
				*pos = idx;
			return true;
		}
		if (e > s)
			idx++;
	}
	return false;
}

/* Queues an HTTP error answer and fails with why. */
static int
http_refuse(struct ws *w, const char *status, const char *extra,
    const char *why)
{
	char msg[512];
	int n;

	n = snprintf(msg, sizeof msg, "HTTP/1.1 %s\r\n%sContent-Type: "
	    "text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"
	    "%s\n", status, extra, strlen(why) + 1, why);
	if (n > 0 && (size_t)n < sizeof msg)
		(void)buf_append(&w->wbuf, msg, (size_t)n);
	snprintf(w->failure, sizeof w->failure, "websocket handshake "
	    "refused (%.3s): %s", status, why);
	w->state = WS_CLOSED;
	return GW_EPROTO;
}

/* The request's headers, found by name. */
struct http_req {
	const char	*upgrade, *connection, *key, *version, *proto;
	size_t		 upgrade_len, connection_len, key_len;
	size_t		 version_len, proto_len;
};

/* Parses the request in p (len bytes, ending with the blank line). */
static int
http_upgrade(struct ws *w, const char *p, size_t len)
{
	struct http_req r;
	const char *line, *end, *sp, *colon, *v, *path, *pend, *q;
	const char *proto = NULL;
	char ans[256], extra[64], acc[29], key[32];
	size_t llen, vlen, plen, i1 = 0, i2 = 0;
	bool h1, h2;
	int n;

	memset(&r, 0, sizeof r);
	if ((end = memchr(p, '\n', len)) == NULL || end == p ||
	    end[-1] != '\r')
		return http_refuse(w, "400 Bad Request", "",
		    "bad request line");
	llen = (size_t)(end - 1 - p);
	if (llen < 14 || memcmp(p, "GET ", 4) != 0)
		return http_refuse(w, "400 Bad Request", "",
		    "only GET upgrades to a websocket");
	path = p + 4;
	if ((sp = memchr(path, ' ', llen - 4)) == NULL ||
	    (size_t)(p + llen - sp) != 9 || memcmp(sp + 1, "HTTP/1.1", 8) != 0)
		return http_refuse(w, "400 Bad Request", "",
		    "expected GET <path> HTTP/1.1");
	pend = sp;
	if ((q = memchr(path, '?', (size_t)(sp - path))) != NULL)
		pend = q;
	plen = (size_t)(pend - path);
	if (plen != strlen(w->path) || memcmp(path, w->path, plen) != 0)
		return http_refuse(w, "404 Not Found", "", "no websocket "
		    "endpoint at this path");
	for (line = end + 1; line < p + len; line = end + 1) {
		if ((end = memchr(line, '\n', (size_t)(p + len - line))) ==
		    NULL || end == line || end[-1] != '\r')
			return http_refuse(w, "400 Bad Request", "",
			    "malformed header line");
		llen = (size_t)(end - 1 - line);
		if (llen == 0)
			break;
		if ((colon = memchr(line, ':', llen)) == NULL ||
		    colon == line)
			return http_refuse(w, "400 Bad Request", "",
			    "malformed header line");
		v = colon + 1;
		while (v < line + llen && (*v == ' ' || *v == '\t'))
			v++;
		vlen = (size_t)(line + llen - v);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		n = (int)(colon - line);
#define HDR(name, f) \
		if (n == (int)strlen(name) && \
		    strncasecmp(line, name, (size_t)n) == 0) { \
			r.f = v; \
			r.f##_len = vlen; \
		}
		HDR("Upgrade", upgrade)
		HDR("Connection", connection)
		HDR("Sec-WebSocket-Key", key)
		HDR("Sec-WebSocket-Version", version)
		HDR("Sec-WebSocket-Protocol", proto)
#undef HDR
	}
	if (r.upgrade == NULL || !list_has(r.upgrade, r.upgrade_len,
	    "websocket", NULL) || r.connection == NULL ||
	    !list_has(r.connection, r.connection_len, "upgrade", NULL))
		return http_refuse(w, "426 Upgrade Required",
		    "Upgrade: websocket\r\nConnection: Upgrade\r\n",
		    "this port speaks MQTT over WebSockets only");
	if (r.version == NULL || r.version_len != 2 ||
	    memcmp(r.version, "13", 2) != 0)
		return http_refuse(w, "426 Upgrade Required",
		    "Sec-WebSocket-Version: 13\r\n",
		    "WebSocket version 13 only");
	if (r.key == NULL || !key_valid(r.key, r.key_len))
		return http_refuse(w, "400 Bad Request", "",
		    "missing or malformed Sec-WebSocket-Key");
	if (r.proto != NULL) {
		h1 = list_has(r.proto, r.proto_len, "mqtt", &i1);
		h2 = list_has(r.proto, r.proto_len, "mqttv3.1", &i2);
		if (!h1 && !h2)
			return http_refuse(w, "400 Bad Request", "",
			    "sub-protocol must be mqtt");
		proto = h1 && (!h2 || i1 < i2) ? "mqtt" : "mqttv3.1";
	}
	memcpy(key, r.key, 24);
	key[24] = '\0';
	ws_accept_key(key, acc);
	extra[0] = '\0';
	if (proto != NULL)
		snprintf(extra, sizeof extra, "Sec-WebSocket-Protocol: %s\r\n",
		    proto);
	n = snprintf(ans, sizeof ans, "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n%s\r\n", acc, extra);
	if (buf_append(&w->wbuf, ans, (size_t)n) != 0)
		return GW_ENOMEM;
	w->state = WS_OPEN;
	return 0;
}

/* Queues a frame (FIN set) of opcode with len bytes of p. */
static int
frame_append(struct buf *b, unsigned opcode, const void *p, size_t len)
{
	uint8_t h[10];
	size_t hl = 2;
	int i;

	h[0] = (uint8_t)(0x80 | opcode);
	if (len < 126)
		h[1] = (uint8_t)len;
	else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	if (buf_reserve(b, hl + len, 0) != 0)
		return GW_ENOMEM;
	(void)buf_append(b, h, hl);
	if (len > 0)
		(void)buf_append(b, p, len);
	return 0;
}

/* Queues a close frame with code and fails with why. */
static int
ws_fail(struct ws *w, unsigned code, const char *why)
{
	uint8_t c[2] = { (uint8_t)(code >> 8), (uint8_t)code };

	(void)frame_append(&w->wbuf, 0x8, c, sizeof c);
	snprintf(w->failure, sizeof w->failure, "websocket: %s (close %u)",
	    why, code);
	w->state = WS_CLOSED;
	return GW_EPROTO;
}

/* Handles a whole control frame of opcode with its unmasked payload. */
static int
control(struct ws *w, unsigned opcode, const uint8_t *p, size_t len)
{
	unsigned code;

	if (opcode == 0x9)
		return frame_append(&w->wbuf, 0xA, p, len);
	if (opcode == 0xA)
		return 0;
	/* Close: echo the code (none: 1000) and stop reading. */
	if (len == 1)
		return ws_fail(w, WS_CLOSE_PROTOCOL, "close frame of 1 byte");
	code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : WS_CLOSE_NORMAL;
	if (code < 1000 || code == 1004 || code == 1005 || code == 1006 ||
	    (code > 1011 && code < 3000) || code > 4999)
		return ws_fail(w, WS_CLOSE_PROTOCOL, "invalid close code");
	w->state = WS_CLOSED;
	(void)frame_append(&w->wbuf, 0x8, p, len >= 2 ? 2 : 0);
	return 0;
}

/*
 * Decodes one frame header (or a whole control frame) at the head of
 * rbuf. Returns bytes consumed, 0 when more bytes are needed, or an
 * error.
 */
static int
frame_header(struct ws *w, size_t limit)
{
	const uint8_t *p = buf_head(&w->rbuf);
	size_t have = buf_used(&w->rbuf), hl = 2, i;
	uint8_t ctl[125];
	uint64_t len;
	unsigned op;
	int rc;

	if (have < 2)
		return 0;
	op = p[0] & 0x0f;
	if (p[0] & 0x70)
		return ws_fail(w, WS_CLOSE_PROTOCOL, "reserved bit set");
	if (!(p[1] & 0x80))
		return ws_fail(w, WS_CLOSE_PROTOCOL, "unmasked client frame");
	len = p[1] & 0x7f;
	if (op >= 0x8) {
		if (op > 0xA)
			return ws_fail(w, WS_CLOSE_PROTOCOL, "unknown opcode");
		if (!(p[0] & 0x80))
			return ws_fail(w, WS_CLOSE_PROTOCOL,
			    "fragmented control frame");
		if (len > 125)
			return ws_fail(w, WS_CLOSE_PROTOCOL,
			    "control frame over 125 bytes");
		if (have < 6 + len)
			return 0;
		for (i = 0; i < len; i++)
			ctl[i] = p[6 + i] ^ p[2 + i % 4];
		if ((rc = control(w, op, ctl, (size_t)len)) != 0)
			return rc;
		return (int)(6 + len);
	}
	if (op == 0x1)
		return ws_fail(w, WS_CLOSE_UNSUPPORTED, "text frame");
	if (op != 0x0 && op != 0x2)
		return ws_fail(w, WS_CLOSE_PROTOCOL, "unknown opcode");
	if (op == 0x0 && !w->in_message)
		return ws_fail(w, WS_CLOSE_PROTOCOL,
		    "continuation without a message");
	if (op == 0x2 && w->in_message)
		return ws_fail(w, WS_CLOSE_PROTOCOL,
		    "new message inside a fragmented one");
	if (len == 126) {
		if (have < 4)
			return 0;
		len = (uint64_t)p[2] << 8 | p[3];
		hl = 4;
	} else if (len == 127) {
		if (have < 10)
			return 0;
		if (p[2] & 0x80)
			return ws_fail(w, WS_CLOSE_PROTOCOL,
			    "length with the top bit set");
		for (len = 0, i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		hl = 10;
	}
	if (limit != 0 && len > limit)
		return ws_fail(w, WS_CLOSE_TOO_BIG, "frame over the packet "
		    "size limit");
	if (have < hl + 4)
		return 0;
	memcpy(w->mask, p + hl, 4);
	w->mpos = 0;
	w->remain = len;
	w->in_frame = len > 0;
	w->in_message = !(p[0] & 0x80);
	return (int)(hl + 4);
}

/* See ws.h. */
int
ws_feed(struct ws *w, struct buf *in, size_t limit)
{
	const uint8_t *p, *e;
	size_t used = 0, n, room, i;
	uint8_t *dst;
	int rc;

	if (buf_used(&w->rbuf) == 0)
		return 0;
	if (w->state == WS_HTTP) {
		p = buf_head(&w->rbuf);
		n = buf_used(&w->rbuf);
		e = NULL;
		for (i = 3; i < n && i < WS_MAX_REQUEST; i++)
			if (p[i] == '\n' && p[i - 1] == '\r' &&
			    p[i - 2] == '\n' && p[i - 3] == '\r') {
				e = p + i + 1;
				break;
			}
		if (e == NULL) {
			if (n >= WS_MAX_REQUEST)
				return http_refuse(w, "400 Bad Request", "",
				    "request headers too large");
			return 0;
		}
		if ((rc = http_upgrade(w, (const char *)p,
		    (size_t)(e - p))) != 0)
			return rc;
		used = (size_t)(e - p);
		buf_consume(&w->rbuf, used);
	}
	while (w->state == WS_OPEN && buf_used(&w->rbuf) > 0) {
		if (!w->in_frame) {
			if ((rc = frame_header(w, limit)) < 0)
				return rc;
			if (rc == 0)
				break;
			buf_consume(&w->rbuf, (size_t)rc);
			used += (size_t)rc;
			continue;
		}
		n = buf_used(&w->rbuf);
		if (n > w->remain)
			n = (size_t)w->remain;
		if (limit != 0) {
			room = buf_used(in) < limit ? limit - buf_used(in) : 0;
			if (n > room)
				n = room;
		}
		if (n == 0)
			break;
		if (buf_reserve(in, n, 0) != 0)
			return GW_ENOMEM;
		p = buf_head(&w->rbuf);
		dst = buf_tail(in);
		for (i = 0; i < n; i++)
			dst[i] = p[i] ^ w->mask[(w->mpos + i) & 3];
		w->mpos = (unsigned)((w->mpos + n) & 3);
		buf_commit(in, n);
		buf_consume(&w->rbuf, n);
		used += n;
		w->remain -= n;
		if (w->remain == 0)
			w->in_frame = false;
	}
	return (int)used;
}

/* See ws.h. */
int
ws_frame_out(struct ws *w, struct buf *out)
{
	size_t n;

	if (buf_used(&w->wbuf) > 0)
		return 0;
	if (w->framed > 0) {
		buf_consume(out, w->framed);
		w->framed = 0;
	}
	if (w->state != WS_OPEN || buf_used(out) == 0)
		return 0;
	n = buf_used(out);
	if (n > WS_MAX_OUT_FRAME)
		n = WS_MAX_OUT_FRAME;
	if (frame_append(&w->wbuf, 0x2, buf_head(out), n) != 0)
		return GW_ENOMEM;
	w->framed = n;
	return 0;
}
