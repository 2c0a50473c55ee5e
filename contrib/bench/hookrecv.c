/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * hookrecv: a counting HTTP/1.1 receiver for the webhook benchmark.
 *
 * It answers every request with "200 OK" and an empty body, as fast as
 * loopback allows, and counts what it was sent; it is the far end of
 * 'make bench''s webhook phases and must never be their bottleneck. One
 * thread, one level-triggered epoll loop, non-blocking sockets, keep-alive
 * and pipelining; no request is ever parsed beyond its framing.
 *
 * A connection's bytes collect in its input buffer until a whole request
 * is there: the header block up to the blank line, then a body framed by
 * Content-Length or by chunked transfer coding. "Expect: 100-continue" is
 * answered at once so a client that waits for it does not stall. Each
 * complete request counts one request, its body bytes, and its "messages":
 * the occurrences of the -m marker in the body (a batch of envelopes holds
 * one "received_ms" key per message), or 1 without -m. A marker split
 * between two chunks of a chunked body is not seen; mqlite sends
 * Content-Length.
 *
 * The counters go to the -o file as one line of JSON, rewritten through a
 * temporary file and rename() at most every 50 ms while they change and at
 * exit, so a shell script can poll them:
 *
 *   {"requests":R,"messages":M,"bytes":B,"connections":C,"bad":E,
 *    "first_ms":T0,"last_ms":T1,"target_ms":T2}
 *
 * Times are Unix milliseconds: first_ms when the first byte of the first
 * request arrived, last_ms when the latest request was complete, target_ms
 * when the messages reached the -n target (0 until then). The file is
 * rewritten at once when the target is reached. A malformed request is
 * answered 400 and its connection closed ("bad").
 *
 * The receiver exits on SIGTERM or SIGINT, or by itself after -T seconds.
 */

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "benchclock.h"

#define RECV_MAX_REQUEST	(64 * 1024 * 1024)	/* headers + body */
#define RECV_MAX_HEADERS	(64 * 1024)
#define RECV_READ_BYTES		65536
#define RECV_STATS_MS		50

struct rconn {
	int		 fd;
	char		*in;		/* bytes read, not yet consumed */
	size_t		 in_len;
	size_t		 in_cap;
	char		*out;		/* responses not yet written */
	size_t		 out_len;
	size_t		 out_cap;
	bool		 continued;	/* 100 Continue sent for this request */
	bool		 closing;	/* close once out is written */
	bool		 want_out;	/* EPOLLOUT registered */
};

struct recv {
	const char	*marker;	/* -m, or NULL */
	size_t		 marker_len;
	uint64_t	 target;	/* -n, 0 = none */
	const char	*stats_path;	/* -o, or NULL */
	int		 ep;
	int		 lfd;

	uint64_t	 requests;
	uint64_t	 messages;
	uint64_t	 bytes;
	uint64_t	 conns;		/* connections accepted */
	uint64_t	 bad;		/* malformed requests */
	long long	 first_ms;
	long long	 last_ms;
	long long	 target_ms;
	bool		 dirty;		/* counters changed since written */
	long long	 written_ms;	/* last stats write */
};

static volatile sig_atomic_t	 stop;

static void	usage(void) __attribute__((noreturn));
static long long wall_ms(void);
static void	on_signal(int);
static void	stats_write(struct recv *);
static void	conn_close(struct recv *, struct rconn *);
static int	conn_out(struct recv *, struct rconn *, const char *, size_t);
static int	conn_flush(struct recv *, struct rconn *);
static ssize_t	http_body(const char *, size_t, bool, size_t, char **,
		    size_t *);
static uint64_t	count_marker(const struct recv *, const char *, size_t);
static int	conn_parse(struct recv *, struct rconn *);
static int	conn_read(struct recv *, struct rconn *);
static void	do_accept(struct recv *);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hookrecv -p port [-b address] [-o stats-file] "
	    "[-m marker] [-n target]\n"
	    "                [-T timeout-s]\n"
	    "  -p port      port to listen on (required)\n"
	    "  -b address   IPv4 address to bind (127.0.0.1)\n"
	    "  -o file      counters as one line of JSON, kept current\n"
	    "  -m marker    count marker occurrences in bodies as messages\n"
	    "  -n n         note the time when messages reach n\n"
	    "  -T s         exit after s seconds (600)\n");
	exit(1);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Rewrites the stats file through a temporary file (rename is atomic). */
static void
stats_write(struct recv *r)
{
	char tmp[PATH_MAX];
	FILE *f;

	r->written_ms = wall_ms();
	r->dirty = false;
	if (r->stats_path == NULL)
		return;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", r->stats_path) >=
	    sizeof tmp)
		return;
	if ((f = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "hookrecv: %s: %s\n", tmp, strerror(errno));
		return;
	}
	fprintf(f, "{\"requests\":%" PRIu64 ",\"messages\":%" PRIu64
	    ",\"bytes\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"bad\":%"
	    PRIu64 ",\"first_ms\":%lld,\"last_ms\":%lld,\"target_ms\":%lld}\n",
	    r->requests, r->messages, r->bytes, r->conns, r->bad, r->first_ms,
	    r->last_ms, r->target_ms);
	if (fclose(f) != 0 || rename(tmp, r->stats_path) != 0)
		fprintf(stderr, "hookrecv: %s: %s\n", r->stats_path,
		    strerror(errno));
}

static void
conn_close(struct recv *r, struct rconn *c)
{
	epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Queues bytes for the peer; -1 when out of memory. */
static int
conn_out(struct recv *r, struct rconn *c, const char *s, size_t n)
{
	size_t cap;
	char *p;

	(void)r;
	if (c->out_len + n > c->out_cap) {
		cap = c->out_cap != 0 ? c->out_cap * 2 : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		if ((p = realloc(c->out, cap)) == NULL)
			return -1;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	return 0;
}

/*
 * Writes what is queued; watches for EPOLLOUT while some is left. Returns
 * -1 when the connection must be closed.
 */
static int
conn_flush(struct recv *r, struct rconn *c)
{
	struct epoll_event ev;
	ssize_t n;
	size_t off = 0;
	bool want;

	while (off < c->out_len) {
		n = write(c->fd, c->out + off, c->out_len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return -1;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	if (c->out_len == 0 && c->closing)
		return -1;
	want = c->out_len > 0;
	if (want != c->want_out) {
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
		ev.data.ptr = c;
		if (epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
			return -1;
		c->want_out = want;
	}
	return 0;
}

/*
 * Frames a body that starts at p (avail bytes there): with Content-Length
 * clen, or chunked. Returns the bytes the body takes on the wire, 0 when
 * more are needed, -1 when it is malformed. For a chunked body the chunk
 * data are copied into *dec (a new buffer, *dec_len bytes) when complete.
 */
static ssize_t
http_body(const char *p, size_t avail, bool chunked, size_t clen,
    char **dec, size_t *dec_len)
{
	size_t off = 0, sz, len = 0, cap = 0;
	char *d = NULL, *e, *nd;
	const char *eol;

	*dec = NULL;
	*dec_len = 0;
	if (!chunked)
		return avail >= clen ? (ssize_t)clen : 0;
	for (;;) {
		eol = memmem(p + off, avail - off, "\r\n", 2);
		if (eol == NULL)
			goto more;
		errno = 0;
		sz = strtoul(p + off, &e, 16);
		if (e == p + off || errno != 0 || e > eol ||
		    sz > RECV_MAX_REQUEST)
			goto bad;
		off = (size_t)(eol - p) + 2;
		if (sz == 0) {
			/* Trailers, up to the blank line. */
			for (;;) {
				eol = memmem(p + off, avail - off, "\r\n", 2);
				if (eol == NULL)
					goto more;
				if (eol == p + off) {
					*dec = d;
					*dec_len = len;
					return (ssize_t)(off + 2);
				}
				off = (size_t)(eol - p) + 2;
			}
		}
		if (avail - off < sz + 2)
			goto more;
		if (p[off + sz] != '\r' || p[off + sz + 1] != '\n')
			goto bad;
		if (len + sz > cap) {
			cap = (len + sz) * 2;
			if ((nd = realloc(d, cap)) == NULL)
				goto bad;
			d = nd;
		}
		memcpy(d + len, p + off, sz);
		len += sz;
		off += sz + 2;
	}
more:
	free(d);
	return 0;
bad:
	free(d);
	return -1;
}

static uint64_t
count_marker(const struct recv *r, const char *p, size_t n)
{
	const char *q, *end = p + n;
	uint64_t k = 0;

	if (r->marker == NULL)
		return 1;
	while ((q = memmem(p, (size_t)(end - p), r->marker,
	    r->marker_len)) != NULL) {
		k++;
		p = q + r->marker_len;
	}
	return k;
}

/*
 * Answers every complete request at the front of c->in. Returns -1 when
 * the connection must be closed now.
 */
static int
conn_parse(struct recv *r, struct rconn *c)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const char okc[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "Connection: close\r\n\r\n";
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	const char *hend, *line, *eol, *v, *body;
	char *dec, *e;
	size_t off = 0, hlen, clen, dec_len, nlen;
	ssize_t blen;
	bool chunked, expect, close_after, has_len;
	uint64_t k;

	while (off < c->in_len && !c->closing) {
		hend = memmem(c->in + off, c->in_len - off, "\r\n\r\n", 4);
		if (hend == NULL) {
			if (c->in_len - off > RECV_MAX_HEADERS)
				goto malformed;
			break;
		}
		hlen = (size_t)(hend - (c->in + off)) + 4;
		chunked = expect = close_after = has_len = false;
		clen = 0;
		/* Request line, then one header a line. */
		line = memchr(c->in + off, '\n', hlen);
		if (line == NULL || memchr(c->in + off, ' ', hlen) == NULL)
			goto malformed;
		if (line - (c->in + off) >= 10 &&
		    strncmp(line - 9, "HTTP/1.0", 8) == 0)
			close_after = true;
		for (line++; line < hend; line = eol + 2) {
			eol = memmem(line, (size_t)(hend + 2 - line),
			    "\r\n", 2);
			if (eol == NULL)
				goto malformed;
			if ((v = memchr(line, ':', (size_t)(eol - line))) ==
			    NULL)
				goto malformed;
			nlen = (size_t)(v - line);
			for (v++; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
#define HDR(n)	(nlen == sizeof(n) - 1 && strncasecmp(line, n, nlen) == 0)
#define VAL(s)	((size_t)(eol - v) >= sizeof(s) - 1 &&			\
		    strncasecmp(v, s, sizeof(s) - 1) == 0)
			if (HDR("Content-Length")) {
				errno = 0;
				clen = strtoul(v, &e, 10);
				if (e == v || errno != 0 ||
				    clen > RECV_MAX_REQUEST)
					goto malformed;
				has_len = true;
			} else if (HDR("Transfer-Encoding")) {
				chunked = VAL("chunked");
				if (!chunked)
					goto malformed;
			} else if (HDR("Expect")) {
				expect = VAL("100-continue");
			} else if (HDR("Connection")) {
				if (VAL("close"))
					close_after = true;
				else if (VAL("keep-alive"))
					close_after = false;
			}
#undef HDR
#undef VAL
		}
		if (chunked && has_len)
			goto malformed;
		body = c->in + off + hlen;
		blen = http_body(body, c->in_len - off - hlen, chunked, clen,
		    &dec, &dec_len);
		if (blen < 0)
			goto malformed;
		if (blen == 0 && (chunked || clen > 0)) {
			if (expect && !c->continued) {
				if (conn_out(r, c, cont, sizeof cont - 1) != 0)
					return -1;
				c->continued = true;
			}
			if (c->in_len - off - hlen > RECV_MAX_REQUEST)
				goto malformed;
			break;
		}
		if (chunked) {
			k = count_marker(r, dec, dec_len);
			r->bytes += dec_len;
			free(dec);
		} else {
			k = count_marker(r, body, clen);
			r->bytes += clen;
		}
		r->requests++;
		r->messages += k;
		r->last_ms = wall_ms();
		r->dirty = true;
		if (r->target != 0 && r->target_ms == 0 &&
		    r->messages >= r->target) {
			r->target_ms = r->last_ms;
			stats_write(r);
		}
		c->continued = false;
		off += hlen + (size_t)blen;
		if (close_after) {
			c->closing = true;
			if (conn_out(r, c, okc, sizeof okc - 1) != 0)
				return -1;
		} else if (conn_out(r, c, ok, sizeof ok - 1) != 0)
			return -1;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return conn_flush(r, c);

malformed:
	r->bad++;
	r->dirty = true;
	c->closing = true;
	c->in_len = 0;
	if (conn_out(r, c, bad, sizeof bad - 1) != 0)
		return -1;
	return conn_flush(r, c);
}

/* Reads what is there; -1 when the connection is done with. */
static int
conn_read(struct recv *r, struct rconn *c)
{
	ssize_t n;
	size_t cap;
	char *p;

	if (c->in_cap - c->in_len < RECV_READ_BYTES) {
		cap = c->in_cap != 0 ? c->in_cap * 2 : 2 * RECV_READ_BYTES;
		if ((p = realloc(c->in, cap)) == NULL)
			return -1;
		c->in = p;
		c->in_cap = cap;
	}
	n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (n == 0)
		return -1;
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (r->first_ms == 0)
		r->first_ms = wall_ms();
	if (c->closing)
		return 0;
	c->in_len += (size_t)n;
	return conn_parse(r, c);
}

static void
do_accept(struct recv *r)
{
	struct epoll_event ev;
	struct rconn *c;
	int fd, one = 1;

	while ((fd = accept4(r->lfd, NULL, NULL,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if ((c = calloc(1, sizeof *c)) == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
			continue;
		}
		r->conns++;
		r->dirty = true;
	}
}

int
main(int argc, char **argv)
{
	struct epoll_event ev, evs[64];
	struct sockaddr_in sin;
	struct sigaction sa;
	struct recv r;
	struct rconn *c;
	const char *bind_addr = "127.0.0.1";
	long port = -1, timeout_s = 600;
	long long deadline, now;
	char *e;
	int ch, i, n, one = 1, wait_ms;

	memset(&r, 0, sizeof r);
	while ((ch = getopt(argc, argv, "b:m:n:o:p:T:")) != -1) {
		switch (ch) {
		case 'b':
			bind_addr = optarg;
			break;
		case 'm':
			r.marker = optarg;
			r.marker_len = strlen(optarg);
			if (r.marker_len == 0)
				usage();
			break;
		case 'n':
			r.target = strtoull(optarg, &e, 10);
			if (*e != '\0')
				usage();
			break;
		case 'o':
			r.stats_path = optarg;
			break;
		case 'p':
			port = strtol(optarg, &e, 10);
			if (*e != '\0' || port < 1 || port > 65535)
				usage();
			break;
		case 'T':
			timeout_s = strtol(optarg, &e, 10);
			if (*e != '\0' || timeout_s < 1 || timeout_s > 86400)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port < 0)
		usage();

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind_addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "hookrecv: -b %s: not an IPv4 address\n",
		    bind_addr);
		return 1;
	}
	r.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r.lfd == -1 ||
	    setsockopt(r.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    bind(r.lfd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(r.lfd, 512) == -1) {
		fprintf(stderr, "hookrecv: %s:%ld: %s\n", bind_addr, port,
		    strerror(errno));
		return errno == EADDRINUSE ? 3 : 1;
	}
	if ((r.ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		fprintf(stderr, "hookrecv: epoll_create1: %s\n",
		    strerror(errno));
		return 1;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(r.ep, EPOLL_CTL_ADD, r.lfd, &ev) == -1) {
		fprintf(stderr, "hookrecv: epoll_ctl: %s\n", strerror(errno));
		return 1;
	}
	stats_write(&r);

	deadline = wall_ms() + timeout_s * 1000;
	while (!stop) {
		now = wall_ms();
		if (now >= deadline) {
			fprintf(stderr, "hookrecv: %ld s are up, exiting\n",
			    timeout_s);
			break;
		}
		if (r.dirty && now - r.written_ms >= RECV_STATS_MS)
			stats_write(&r);
		wait_ms = r.dirty ? RECV_STATS_MS : 1000;
		n = epoll_wait(r.ep, evs, 64, wait_ms);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "hookrecv: epoll_wait: %s\n",
			    strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			if ((c = evs[i].data.ptr) == NULL) {
				do_accept(&r);
				continue;
			}
			if ((evs[i].events & EPOLLOUT) &&
			    conn_flush(&r, c) != 0) {
				conn_close(&r, c);
				continue;
			}
			if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
			    conn_read(&r, c) != 0)
				conn_close(&r, c);
		}
	}
	stats_write(&r);
	return 0;
}
