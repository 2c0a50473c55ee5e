/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One client socket's byte streams: a read buffer filled from the socket
 * and a write buffer drained to it. The broker appends encoded packets to
 * out during an iteration and flushes once before the loop sleeps, so many
 * small packets cost one write(2). EV_WRITE interest is only requested
 * while output is pending. A connection accepted on a TLS listener reads
 * and writes through its struct tls_session (net/tls.h): the same calls,
 * decrypted bytes. A connection accepted on a WebSocket listener also
 * goes through its struct ws (net/ws.h): reads decode frames into in,
 * flushes wrap out into frames; the broker sees MQTT bytes either way.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct tls_session;
struct ws;

struct conn {
	int		 fd;		/* non-blocking socket, -1 when closed */
	struct tls_session *tls;	/* owned; NULL on a plain listener */
	struct ws	*ws;		/* owned; NULL unless WebSocket */
	struct buf	 in;		/* bytes read, not yet parsed */
	struct buf	 out;		/* encoded packets not yet written */
	char		 peer[64];	/* "ip:port" for logs */
};

/*
 * Reads what is available (one read of up to chunk bytes) into in, never
 * letting in hold more than limit unparsed bytes. Returns bytes read (> 0),
 * 0 on orderly EOF, GW_ERETRY if nothing is available, GW_ETOOBIG if the
 * buffer is at its limit, GW_EIO on a socket error, GW_ENOMEM.
 */
int	conn_read(struct conn *c, size_t chunk, size_t limit);

/*
 * Writes as much of out as the socket takes. Returns 0 when out is empty,
 * GW_ERETRY when bytes remain (wait for EV_WRITE), GW_EIO on error.
 */
int	conn_flush(struct conn *c);

/* Releases the buffers, ends TLS and closes fd if open. */
void	conn_close(struct conn *c);

/* Bytes readable now without waiting for the socket (TLS buffers). */
size_t	conn_pending(const struct conn *c);

/*
 * Extra readiness the connection waits for: reading needs the socket
 * writable (TLS handshake output), or writing needs it readable.
 */
bool	conn_read_wants_write(const struct conn *c);
bool	conn_write_wants_read(const struct conn *c);

/*
 * Whether bytes wait to be written: out, or WebSocket frames (a pong, the
 * upgrade answer) while out is empty.
 */
bool	conn_out_pending(const struct conn *c);

/* Why a read or write failed, when more is known than "I/O error". */
const char *conn_failure(const struct conn *c);

#endif
