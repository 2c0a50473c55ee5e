/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket reads and writes for one connection; see conn.h.
 */
#include <sys/socket.h>

#include <errno.h>
#include <unistd.h>

#include "err.h"
#include "net/conn.h"
#include "net/tls.h"

int
conn_read(struct conn *c, size_t chunk, size_t limit)
{
	size_t room;
	ssize_t n;
	int rc;

	if (limit != 0 && buf_used(&c->in) >= limit)
		return GW_ETOOBIG;
	if (limit != 0 && chunk > limit - buf_used(&c->in))
		chunk = limit - buf_used(&c->in);
	if ((rc = buf_reserve(&c->in, chunk, 0)) != 0)
		return rc;
	room = c->in.cap - c->in.len;
	if (limit != 0 && room > limit - buf_used(&c->in))
		room = limit - buf_used(&c->in);
	for (;;) {
		if (c->tls != NULL)
			n = tls_read(c->tls, buf_tail(&c->in), room);
		else
			n = read(c->fd, buf_tail(&c->in), room);
		if (n > 0) {
			buf_commit(&c->in, (size_t)n);
			return (int)n;
		}
		if (n == 0)
			return 0;
		if (c->tls != NULL)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return GW_ERETRY;
		return GW_EIO;
	}
}

int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (buf_used(&c->out) > 0) {
		if (c->tls != NULL)
			n = tls_write(c->tls, buf_head(&c->out),
			    buf_used(&c->out));
		else
			n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
			    MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (c->tls != NULL)
			return (int)n;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return GW_ERETRY;
		return GW_EIO;
	}
	return 0;
}

void
conn_close(struct conn *c)
{
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
	return tls_pending(c->tls);
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
	return tls_failure(c->tls);
}
