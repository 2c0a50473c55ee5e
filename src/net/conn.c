/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket reads and writes for one connection; see conn.h. A WebSocket
 * connection reads raw bytes into its ws read buffer and lets ws_feed()
 * move the MQTT bytes into in; it writes the ws write buffer, refilled
 * from out by ws_frame_out() one frame at a time.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "err.h"
#include "net/conn.h"
#include "net/tls.h"
#include "net/ws.h"

/* One read(2) or TLS read into p: bytes, 0 at EOF, GW_ERETRY, GW_EIO. */
static int
raw_read(struct conn *c, void *p, size_t room)
{
	ssize_t n;

	for (;;) {
		if (c->tls != NULL)
			n = tls_read(c->tls, p, room);
		else
			n = read(c->fd, p, room);
		if (n >= 0 || c->tls != NULL)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return GW_ERETRY;
		return GW_EIO;
	}
}

/* Writes what p holds (len bytes): bytes, GW_ERETRY or GW_EIO. */
static int
raw_write(struct conn *c, const void *p, size_t len)
{
	ssize_t n;

	for (;;) {
		if (c->tls != NULL) {
			n = tls_write(c->tls, p, len);
			return n == 0 ? GW_EIO : (int)n;
		}
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0)
			return (int)n;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return GW_ERETRY;
		return GW_EIO;
	}
}

/* Writes the WebSocket output buffer: 0 once empty, GW_ERETRY, GW_EIO. */
static int
ws_write(struct conn *c)
{
	struct buf *wb = ws_wbuf(c->ws);
	int n;

	while (buf_used(wb) > 0) {
		if ((n = raw_write(c, buf_head(wb), buf_used(wb))) < 0)
			return n;
		buf_consume(wb, (size_t)n);
	}
	return 0;
}

/*
 * Decodes the raw WebSocket input. Returns bytes consumed (>= 0); after
 * a close frame 0 with the echo sent; GW_EIO when the peer broke the
 * protocol (the answer or close frame sent as far as the socket takes it).
 */
static int
ws_decode(struct conn *c, size_t limit, bool *closed)
{
	int rc;

	rc = ws_feed(c->ws, &c->in, limit);
	*closed = ws_closed(c->ws);
	if (rc == GW_ENOMEM)
		return rc;
	if (buf_used(ws_wbuf(c->ws)) > 0)
		(void)ws_write(c);
	return rc < 0 ? GW_EIO : rc;
}

/* conn_read() on a WebSocket connection. */
static int
conn_read_ws(struct conn *c, size_t chunk, size_t limit)
{
	struct buf *rb = ws_rbuf(c->ws);
	bool closed;
	int rc, n;

	if (ws_closed(c->ws))
		return ws_failure(c->ws) != NULL ? GW_EIO : 0;
	if (buf_used(rb) > 0) {
		rc = ws_decode(c, limit, &closed);
		if (rc < 0)
			return rc;
		if (closed)
			return 0;
		if (rc > 0)
			return rc;
	}
	if (limit != 0 && buf_used(&c->in) >= limit)
		return GW_ETOOBIG;
	if ((rc = buf_reserve(rb, chunk, 0)) != 0)
		return rc;
	if ((n = raw_read(c, buf_tail(rb), chunk)) <= 0)
		return n;
	buf_commit(rb, (size_t)n);
	rc = ws_decode(c, limit, &closed);
	if (rc < 0)
		return rc;
	return closed ? 0 : n;
}

int
conn_read(struct conn *c, size_t chunk, size_t limit)
{
	size_t room;
	int rc, n;

	if (c->ws != NULL)
		return conn_read_ws(c, chunk, limit);
	if (limit != 0 && buf_used(&c->in) >= limit)
		return GW_ETOOBIG;
	if (limit != 0 && chunk > limit - buf_used(&c->in))
		chunk = limit - buf_used(&c->in);
	if ((rc = buf_reserve(&c->in, chunk, 0)) != 0)
		return rc;
	room = c->in.cap - c->in.len;
	if (limit != 0 && room > limit - buf_used(&c->in))
		room = limit - buf_used(&c->in);
	if ((n = raw_read(c, buf_tail(&c->in), room)) > 0)
		buf_commit(&c->in, (size_t)n);
	return n;
}

int
conn_flush(struct conn *c)
{
	int n;

	if (c->ws != NULL) {
		for (;;) {
			if (ws_frame_out(c->ws, &c->out) != 0)
				return GW_EIO;
			if (buf_used(ws_wbuf(c->ws)) == 0)
				return 0;
			if ((n = ws_write(c)) != 0)
				return n;
		}
	}
	while (buf_used(&c->out) > 0) {
		if ((n = raw_write(c, buf_head(&c->out),
		    buf_used(&c->out))) < 0)
			return n;
		buf_consume(&c->out, (size_t)n);
	}
	return 0;
}

void
conn_close(struct conn *c)
{
	uint8_t bye[4] = { 0x88, 2, WS_CLOSE_NORMAL >> 8,
	    WS_CLOSE_NORMAL & 0xff };

	/* A WebSocket closed by the server: a close frame if it fits. */
	if (c->ws != NULL && ws_open(c->ws) && c->fd != -1 &&
	    buf_used(ws_wbuf(c->ws)) == 0)
		(void)raw_write(c, bye, sizeof bye);
	ws_free(c->ws);
	c->ws = NULL;
	tls_session_free(c->tls);
	c->tls = NULL;
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	buf_free(&c->in);
	buf_free(&c->out);
}

/* See conn.h. */
size_t
conn_pending(const struct conn *c)
{
	size_t n = tls_pending(c->tls);

	/* WebSocket bytes decoded once in has room again. */
	if (c->ws != NULL && ws_open(c->ws))
		n += buf_used(ws_rbuf(c->ws));
	return n;
}

/* See conn.h. */
bool
conn_out_pending(const struct conn *c)
{
	return buf_used(&c->out) > 0 ||
	    (c->ws != NULL && buf_used(ws_wbuf(c->ws)) > 0);
}

/* See conn.h. */
bool
conn_read_wants_write(const struct conn *c)
{
	return tls_read_wants_write(c->tls);
}

/* See conn.h. */
bool
conn_write_wants_read(const struct conn *c)
{
	return tls_write_wants_read(c->tls);
}

/* See conn.h. */
const char *
conn_failure(const struct conn *c)
{
	if (c->ws != NULL && ws_failure(c->ws) != NULL)
		return ws_failure(c->ws);
	return tls_failure(c->tls);
}
