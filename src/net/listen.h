/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Socket plumbing: TCP listeners, non-blocking accept and the per-socket
 * options the broker wants (TCP_NODELAY, close-on-exec). Errors are written
 * into a caller buffer (err, errlen) so the caller decides how to log.
 */
#ifndef GW_LISTEN_H
#define GW_LISTEN_H

#include <stddef.h>

/*
 * Opens a non-blocking listening TCP socket on bind_addr:port (IPv4 or IPv6
 * literal, or a host name). Returns the fd or -1 with err filled.
 */
int	listen_tcp(const char *bind_addr, int port, int backlog, char *err,
	    size_t errlen);

/* The port a socket is bound to (useful after binding port 0), or -1. */
int	listen_port(int fd);

/*
 * Accepts one connection as a non-blocking, close-on-exec socket with
 * TCP_NODELAY; writes "ip:port" into peer. Returns the fd, or -1 with
 * errno set (EAGAIN when nothing is pending).
 */
int	listen_accept(int lfd, char *peer, size_t peerlen);

#endif
