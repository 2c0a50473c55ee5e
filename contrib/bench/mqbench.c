/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2024 The mqlite authors. */
/*
 * mqbench: an MQTT 3.1.1 and 5.0 load generator for comparing brokers on
 * one host.
 *
 * One thread drives every connection through one level-triggered epoll loop
 * with non-blocking sockets; packets are built and parsed with the project's
 * codecs (benchproto.c over src/mqtt/codec.h and codec5.h), so the benchmark
 * speaks exactly the bytes the daemon is tested against. -V 5 makes every
 * connection speak MQTT 5.0 instead of 3.1.1: the load is the same, in the
 * plainest 5.0 form (no properties), and a broker's CONNACK limits are kept
 * (its Receive Maximum caps -w). A 5.0 reason code of 0x80 or more in any
 * acknowledgement, or a DISCONNECT from the broker, ends the run with an
 * error naming the code.
 *
 * A run goes through three steps. All connections connect (and the optional
 * subscriber subscribes) first; the clock starts when the last one is ready,
 * so connection set-up is not measured. Then every publisher sends its share
 * of the -n messages:
 *
 *   - QoS 0: copies of one pre-encoded PUBLISH are written in batches of
 *     about 64 KB; a publisher is done when its last byte left in a write().
 *   - QoS 1: each publisher keeps up to -w PUBLISHes unacknowledged, with
 *     distinct packet ids; the send time of each id is remembered and the
 *     PUBACK's arrival feeds a latency histogram (microseconds, log-linear
 *     buckets of 1/64 of a power of two, so percentiles are within ~1.6%).
 *     A publisher is done at its last PUBACK.
 *   - QoS 2: the same, a PUBREC answered with PUBREL, and the PUBCOMP ends
 *     the exchange (its arrival is the latency measured).
 *
 * Publisher i publishes on PREFIX/i, or PREFIX/i/SUFFIX with -x (so a rule
 * like site/{site}/dev/{device}/telemetry can match); the payload is -s
 * printable bytes, or the literal text given with -P (a JSON document, say).
 *
 * Finally each connection sends DISCONNECT, shuts down its write side and
 * waits for the broker to close, so no byte is lost to a reset. With -S a
 * subscriber on PREFIX/# counts the messages it receives and the
 * publish-to-receive rate is reported; it gives up after -I seconds without
 * a message once the publishers are done (QoS 0 may legitimately drop).
 *
 * -Q 1 or 2 makes that subscription QoS 1 or 2 (the subscriber then
 * acknowledges every delivery, counted at its PUBLISH) and -F FILTER
 * subscribes to FILTER instead of PREFIX/#.
 *
 * With -H SECONDS the connections, once all are up, are held idle (no
 * publish, no ping: keepalive is 0) for up to SECONDS before the load, so
 * the broker's memory per idle connection can be measured; -R FILE is
 * created when all are up and removing it ends the hold early. At most
 * BENCH_OPENING connections are being set up at a time, so thousands of
 * them do not overflow the broker's listen backlog, and the descriptor
 * limit is raised to its hard maximum.
 *
 * The whole run is bounded by -T seconds: past it the run is abandoned with
 * a message and the partial counters, and the exit status is 2.
 */

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "mqtt/codec.h"

#include "benchclock.h"
#include "benchproto.h"
#include "benchreport.h"

#define BENCH_BATCH_BYTES	65536	/* target size of a QoS 0 write */
#define BENCH_READ_BYTES	65536	/* read() size */
#define BENCH_MAX_PACKET	(1024 * 1024)
#define BENCH_DRAIN_NS		(10ULL * 1000000000ULL)	/* wait for close */
#define BENCH_IDS		65536	/* packet id space incl. unused 0 */
#define BENCH_OPENING		256	/* connections in set-up at once */
#define BENCH_IDLE_READ		512	/* read() size, held conns */

static uint64_t	now_ns(void);
static long long wall_ms(void);
static void	bench_fail(struct bench *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	conn_open(struct bench *, struct conn *);
static void	conn_events(struct conn *, uint32_t);
static void	conn_close(struct conn *);
static int	conn_flush(struct conn *);
static int	conn_connected(struct conn *);
static int	conn_read(struct conn *);
static int	conn_packet(struct conn *, const struct codec_header *,
		    const uint8_t *);
static int	conn_connack(struct conn *, const struct benchproto_in *);
static int	conn_acked(struct conn *, const struct benchproto_in *);
static size_t	publish_size(const struct bench *, const struct conn *);
static int	conn_pump(struct conn *);
static int	conn_finish(struct conn *);
static void	bench_open_more(struct bench *);
static bool	bench_held(struct bench *);
static void	bench_start(struct bench *);
static void	bench_tick(struct bench *);
static const char *conn_name(const struct conn *, char *, size_t);

/* Records the first error of the run; the main loop stops on it. */
static void
bench_fail(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	if (b->status != NULL && strcmp(b->status, "ok") != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->error, sizeof b->error, fmt, ap);
	va_end(ap);
	b->status = "error";
}

static const char *
conn_name(const struct conn *c, char *s, size_t len)
{
	if (c->idx < 0)
		snprintf(s, len, "subscriber");
	else
		snprintf(s, len, "publisher %d", c->idx);
	return s;
}

static int
conn_open(struct bench *b, struct conn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(b->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd == -1) {
		bench_fail(b, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, b->ai->ai_addr, b->ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		bench_fail(b, "connect %s:%s: %s", b->host, b->port,
		    strerror(errno));
		return -1;
	}
	c->state = CS_CONNECTING;
	c->events = EPOLLOUT;
	memset(&ev, 0, sizeof ev);
	ev.events = c->events;
	ev.data.ptr = c;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		bench_fail(b, "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	b->open++;
	return 0;
}

/* Registers interest in exactly the events given. */
static void
conn_events(struct conn *c, uint32_t events)
{
	struct epoll_event ev;

	if (c->fd == -1 || c->events == events)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = c;
	if (epoll_ctl(c->b->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = events;
}

static void
conn_close(struct conn *c)
{
	if (c->fd != -1) {
		epoll_ctl(c->b->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->b->open--;
		if (c->idx >= 0 && c->b->start_ns != 0)
			c->b->closed_ns = now_ns();
	}
	c->state = CS_DONE;
}

/*
 * Writes as much of the output buffer as the socket takes and asks for
 * EPOLLOUT only while bytes remain. Returns -1 on a socket error.
 */
static int
conn_flush(struct conn *c)
{
	ssize_t n;
	char name[32];

	while (buf_used(&c->out) > 0) {
		n = send(c->fd, buf_head(&c->out), buf_used(&c->out),
		    MSG_NOSIGNAL);
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		bench_fail(c->b, "%s: write: %s",
		    conn_name(c, name, sizeof name), strerror(errno));
		return -1;
	}
	conn_events(c, EPOLLIN | (buf_used(&c->out) > 0 ? EPOLLOUT : 0));
	if (c->state == CS_DRAIN && buf_used(&c->out) == 0 && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
	return 0;
}

/* The non-blocking connect finished: check it and send CONNECT. */
static int
conn_connected(struct conn *c)
{
	char id[64], name[32];
	int err = 0, rc;
	socklen_t len = sizeof err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		bench_fail(c->b, "%s: connect %s:%s: %s",
		    conn_name(c, name, sizeof name), c->b->host, c->b->port,
		    strerror(err));
		return -1;
	}
	if (c->idx < 0)
		snprintf(id, sizeof id, "mqbench-%ld-sub", (long)getpid());
	else
		snprintf(id, sizeof id, "mqbench-%ld-%d", (long)getpid(),
		    c->idx);
	if ((rc = benchproto_connect(&c->out, c->b->version, id)) != 0) {
		bench_fail(c->b, "encode CONNECT: %s", gw_strerror(rc));
		return -1;
	}
	c->state = CS_CONNACK;
	return conn_flush(c);
}

/*
 * Reads what the socket has and handles every complete packet. Returns -1
 * on an error (recorded), 0 otherwise.
 */
static int
conn_read(struct conn *c)
{
	struct codec_header h;
	ssize_t n;
	size_t whole;
	char name[32];
	size_t want;
	int rc, loops;

	want = c->b->hold_s > 0 && c->idx >= 0 ? BENCH_IDLE_READ :
	    BENCH_READ_BYTES;
	for (loops = 0; loops < 4; loops++) {
		if ((rc = buf_reserve(&c->in, want, 0)) != 0) {
			bench_fail(c->b, "out of memory");
			return -1;
		}
		n = read(c->fd, buf_tail(&c->in), want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			if (c->state == CS_DRAIN) {
				conn_close(c);
				return 0;
			}
			bench_fail(c->b, "%s: broker closed the connection%s%s "
			    "(state %d, sent %" PRIu64 ", acked %" PRIu64
			    ", received %" PRIu64 ")",
			    conn_name(c, name, sizeof name),
			    n == 0 ? "" : ": ",
			    n == 0 ? "" : strerror(errno), (int)c->state,
			    c->sent, c->acked, c->received);
			return -1;
		}
		buf_commit(&c->in, (size_t)n);
		for (;;) {
			rc = benchproto_header(c->b->version,
			    buf_head(&c->in), buf_used(&c->in),
			    BENCH_MAX_PACKET, &h);
			if (rc == GW_EMORE)
				break;
			if (rc != 0) {
				bench_fail(c->b, "%s: bad packet from broker: "
				    "%s", conn_name(c, name, sizeof name),
				    gw_strerror(rc));
				return -1;
			}
			whole = (size_t)h.header_len + h.remaining;
			if (buf_used(&c->in) < whole)
				break;
			if (conn_packet(c, &h, buf_head(&c->in) +
			    h.header_len) != 0)
				return -1;
			buf_consume(&c->in, whole);
		}
		if ((size_t)n < want)
			break;
	}
	if (c->state == CS_RUN)
		return conn_pump(c);
	return 0;
}

/*
 * The bytes of one of c's PUBLISHes, to hold against the broker's Maximum
 * Packet Size.
 */
static size_t
publish_size(const struct bench *b, const struct conn *c)
{
	size_t rem, v, n = 1;

	rem = 2 + c->topic_len + (b->qos > 0 ? 2 : 0) + b->size +
	    (b->version == BENCHPROTO_V5 ? 1 : 0);
	for (v = rem; v >= 128; v >>= 7)
		n++;
	return 1 + n + rem;
}

/*
 * A CONNACK: refused, or accepted with limits the load must keep (5.0);
 * the subscriber then subscribes.
 */
static int
conn_connack(struct conn *c, const struct benchproto_in *in)
{
	struct bench *b = c->b;
	char name[32], topic[300];
	int rc;

	conn_name(c, name, sizeof name);
	if (in->legacy) {
		bench_fail(b, "%s: CONNACK refused with 3.1.1 return code "
		    "0x%02x: the broker does not speak MQTT 5.0", name,
		    in->code);
		return -1;
	}
	if (in->code != 0) {
		bench_fail(b, "%s: CONNACK refused, %s 0x%02x%s%s%s%s", name,
		    b->version == BENCHPROTO_V5 ? "reason" : "return code",
		    in->code, b->version == BENCHPROTO_V5 ? " " : "",
		    benchproto_reason(b->version, in->code, CODEC_CONNACK),
		    in->why[0] != '\0' ? ": " : "", in->why);
		return -1;
	}
	if (in->receive_max != 0 && in->receive_max < c->window) {
		c->window = in->receive_max;
		if (b->receive_max == 0 || in->receive_max < b->receive_max)
			b->receive_max = in->receive_max;
	}
	if (c->idx >= 0 && in->max_qos >= 0 && b->qos > in->max_qos) {
		bench_fail(b, "%s: the broker's Maximum QoS is %d, below -q %d",
		    name, in->max_qos, b->qos);
		return -1;
	}
	if (c->idx >= 0 && in->max_packet != 0 &&
	    publish_size(b, c) > in->max_packet) {
		bench_fail(b, "%s: the broker's Maximum Packet Size %" PRIu32
		    " is below a PUBLISH of %zu bytes", name, in->max_packet,
		    publish_size(b, c));
		return -1;
	}
	if (c->idx >= 0) {
		c->state = CS_READY;
		b->ready++;
		return 0;
	}
	if (b->filter != NULL)
		snprintf(topic, sizeof topic, "%s", b->filter);
	else
		snprintf(topic, sizeof topic, "%s/#", b->prefix);
	if ((rc = benchproto_subscribe(&c->out, b->version, topic,
	    b->sub_qos)) != 0) {
		bench_fail(b, "encode SUBSCRIBE: %s", gw_strerror(rc));
		return -1;
	}
	c->state = CS_SUBACK;
	return conn_flush(c);
}

/*
 * A PUBACK (QoS 1), PUBREC or PUBCOMP (QoS 2) for one of c's PUBLISHes. A
 * PUBREC is answered with PUBREL; the PUBACK or PUBCOMP ends the exchange
 * and gives its latency. An ack for an id not in flight is counted.
 */
static int
conn_acked(struct conn *c, const struct benchproto_in *in)
{
	struct bench *b = c->b;
	uint16_t id = in->packet_id;
	uint64_t t;
	char name[32];
	int rc;

	if (in->code >= 0x80) {
		bench_fail(b, "%s: %s for packet %u: reason 0x%02x %s%s%s",
		    conn_name(c, name, sizeof name), codec_type_name(in->type),
		    id, in->code,
		    benchproto_reason(b->version, in->code, in->type),
		    in->why[0] != '\0' ? ": " : "", in->why);
		return -1;
	}
	if (c->sent_ns[id] == 0 || (b->qos == 1 && in->type !=
	    CODEC_PUBACK) || (b->qos == 2 && (in->type == CODEC_PUBACK ||
	    (in->type == CODEC_PUBREC) != (c->rec[id] == 0)))) {
		b->unexpected++;
		return 0;
	}
	if (in->type == CODEC_PUBREC) {
		c->rec[id] = 1;
		if ((rc = benchproto_ack(&c->out, b->version, CODEC_PUBREL,
		    id)) != 0) {
			bench_fail(b, "encode PUBREL: %s", gw_strerror(rc));
			return -1;
		}
		return 0;
	}
	t = now_ns();
	benchreport_add_latency(b, (t - c->sent_ns[id]) / 1000);
	c->sent_ns[id] = 0;
	if (c->rec != NULL)
		c->rec[id] = 0;
	c->inflight--;
	c->acked++;
	if (c->acked == c->quota) {
		c->done_ns = t;
		b->pubs_done++;
	}
	return 0;
}

/* Handles one packet from the broker. */
static int
conn_packet(struct conn *c, const struct codec_header *h,
    const uint8_t *body)
{
	struct bench *b = c->b;
	struct benchproto_in in;
	char name[32];
	int rc;

	conn_name(c, name, sizeof name);
	if ((rc = benchproto_decode(b->version, h, body, &in)) != 0)
		goto malformed;
	switch (h->type) {
	case CODEC_CONNACK:
		if (c->state != CS_CONNACK)
			goto unexpected;
		return conn_connack(c, &in);
	case CODEC_SUBACK:
		if (c->state != CS_SUBACK)
			goto unexpected;
		if (in.count != 1 || in.code >= 0x80) {
			bench_fail(b, "%s: subscription refused (0x%02x%s%s)",
			    name, in.code, in.why[0] != '\0' ? ": " : "",
			    in.why);
			return -1;
		}
		c->state = CS_READY;
		b->ready++;
		return 0;
	case CODEC_PUBACK:
	case CODEC_PUBREC:
	case CODEC_PUBCOMP:
		if (c->idx < 0 || c->sent_ns == NULL ||
		    (c->state != CS_RUN && c->state != CS_DRAIN))
			goto unexpected;
		return conn_acked(c, &in);
	case CODEC_PUBREL:
		/* The subscriber's QoS 2 deliveries end here. */
		if (c->idx >= 0)
			goto unexpected;
		if (c->state == CS_DRAIN)
			return 0;
		if ((rc = benchproto_ack(&c->out, b->version, CODEC_PUBCOMP,
		    in.packet_id)) != 0) {
			bench_fail(b, "encode PUBCOMP: %s", gw_strerror(rc));
			return -1;
		}
		return conn_flush(c);
	case CODEC_PUBLISH:
		if (c->idx >= 0 || (c->state != CS_RUN &&
		    c->state != CS_READY && c->state != CS_DRAIN))
			goto unexpected;
		if (in.qos > 0 && (rc = benchproto_ack(&c->out, b->version,
		    in.qos == 1 ? CODEC_PUBACK : CODEC_PUBREC,
		    in.packet_id)) != 0) {
			bench_fail(b, "encode PUBACK: %s", gw_strerror(rc));
			return -1;
		}
		c->received++;
		b->last_rx_ns = now_ns();
		if (c->received == b->total && c->state == CS_RUN)
			return conn_finish(c);
		if (in.qos > 0)
			return conn_flush(c);
		return 0;
	case CODEC_PINGRESP:
		return 0;
	case CODEC_DISCONNECT:
		if (b->version != BENCHPROTO_V5)
			goto unexpected;
		bench_fail(b, "%s: the broker sent DISCONNECT, reason 0x%02x "
		    "%s%s%s (state %d)", name, in.code,
		    benchproto_reason(b->version, in.code, CODEC_DISCONNECT),
		    in.why[0] != '\0' ? ": " : "", in.why, (int)c->state);
		return -1;
	default:
		goto unexpected;
	}

unexpected:
	bench_fail(b, "%s: unexpected %s from broker (state %d)", name,
	    codec_type_name(h->type), (int)c->state);
	return -1;
malformed:
	bench_fail(b, "%s: malformed %s from broker: %s%s%s", name,
	    codec_type_name(h->type), gw_strerror(rc),
	    in.why[0] != '\0' ? ", " : "", in.why);
	return -1;
}

/*
 * Queues as many PUBLISHes as the mode allows and writes them; moves the
 * connection on to DISCONNECT when its share is sent (QoS 0) or
 * acknowledged (QoS 1).
 */
static int
conn_pump(struct conn *c)
{
	struct bench *b = c->b;
	uint64_t t, k;
	int rc;

	if (c->idx < 0)
		return 0;
	if (b->qos == 0) {
		for (;;) {
			if (buf_used(&c->out) == 0 && c->sent < c->quota) {
				k = BENCH_BATCH_BYTES / buf_used(&c->tmpl);
				if (k == 0)
					k = 1;
				if (k > c->quota - c->sent)
					k = c->quota - c->sent;
				rc = buf_reserve(&c->out,
				    k * buf_used(&c->tmpl), 0);
				if (rc != 0) {
					bench_fail(b, "out of memory");
					return -1;
				}
				for (; k > 0; k--) {
					memcpy(buf_tail(&c->out),
					    buf_head(&c->tmpl),
					    buf_used(&c->tmpl));
					buf_commit(&c->out,
					    buf_used(&c->tmpl));
					c->sent++;
				}
			}
			if (conn_flush(c) != 0)
				return -1;
			if (buf_used(&c->out) > 0)
				return 0;
			if (c->sent == c->quota) {
				c->done_ns = now_ns();
				b->pubs_done++;
				return conn_finish(c);
			}
		}
	}

	t = now_ns();
	while (c->inflight < c->window && c->sent < c->quota) {
		while (c->next_id == 0 || c->sent_ns[c->next_id] != 0)
			c->next_id++;
		rc = benchproto_publish(&c->out, b->version, c->topic,
		    c->topic_len, b->payload, b->size, (uint8_t)b->qos,
		    c->next_id);
		if (rc != 0) {
			bench_fail(b, "encode PUBLISH: %s", gw_strerror(rc));
			return -1;
		}
		c->sent_ns[c->next_id++] = t;
		c->inflight++;
		c->sent++;
	}
	if (conn_flush(c) != 0)
		return -1;
	if (c->acked == c->quota)
		return conn_finish(c);
	return 0;
}

/* Sends DISCONNECT and half-closes; the broker's close ends the conn. */
static int
conn_finish(struct conn *c)
{
	int rc;

	if (c->state == CS_DRAIN || c->state == CS_DONE)
		return 0;
	if ((rc = benchproto_disconnect(&c->out, c->b->version)) != 0) {
		bench_fail(c->b, "encode DISCONNECT: %s", gw_strerror(rc));
		return -1;
	}
	c->state = CS_DRAIN;
	c->drain_ns = now_ns();
	return conn_flush(c);
}

/* Opens connections until BENCH_OPENING are being set up or all are. */
static void
bench_open_more(struct bench *b)
{
	struct conn *c;

	while (b->opened < b->nconns && (long)b->opened - (long)b->ready <
	    BENCH_OPENING && strcmp(b->status, "ok") == 0) {
		c = &b->conns[b->opened++];
		conn_open(b, c);
	}
}

/*
 * -H: true while the connections, all up, are to be held idle. The hold
 * starts when the last one is ready (the -R file is created then) and ends
 * after -H seconds or when the file is removed.
 */
static bool
bench_held(struct bench *b)
{
	FILE *f;

	if (b->hold_s == 0)
		return false;
	if (b->hold_end_ns == 0) {
		b->hold_end_ns = now_ns() + (uint64_t)b->hold_s * 1000000000ULL;
		if (b->ready_file != NULL) {
			if ((f = fopen(b->ready_file, "w")) == NULL) {
				bench_fail(b, "%s: %s", b->ready_file,
				    strerror(errno));
				return true;
			}
			fprintf(f, "%u\n", b->ready);
			fclose(f);
		}
		return true;
	}
	if (now_ns() >= b->hold_end_ns)
		return false;
	if (b->ready_file != NULL && access(b->ready_file, F_OK) != 0)
		return false;
	return true;
}

/* Everyone is connected (and subscribed): start the clock and the load. */
static void
bench_start(struct bench *b)
{
	unsigned i;

	b->start_ns = now_ns();
	b->start_wall_ms = wall_ms();
	if (b->subc != NULL)
		b->subc->state = CS_RUN;
	for (i = 0; i < b->nconns; i++) {
		b->conns[i].state = CS_RUN;
		if (b->conns[i].quota == 0) {
			b->conns[i].done_ns = b->start_ns;
			b->pubs_done++;
			conn_finish(&b->conns[i]);
			continue;
		}
		if (conn_pump(&b->conns[i]) != 0)
			return;
	}
}

/* Periodic checks: end of publishing, idle subscriber, slow closes. */
static void
bench_tick(struct bench *b)
{
	struct conn *c;
	uint64_t t = now_ns(), last;
	unsigned i;

	if (b->pubs_done == b->nconns && b->pub_end_ns == 0) {
		for (i = 0; i < b->nconns; i++) {
			if (b->conns[i].done_ns > b->pub_end_ns)
				b->pub_end_ns = b->conns[i].done_ns;
		}
		b->pub_end_wall_ms = b->start_wall_ms +
		    (long long)((b->pub_end_ns - b->start_ns) / 1000000);
	}
	if ((c = b->subc) != NULL && c->state == CS_RUN &&
	    b->pub_end_ns != 0) {
		last = b->last_rx_ns > b->pub_end_ns ? b->last_rx_ns :
		    b->pub_end_ns;
		if (t - last > (uint64_t)b->idle_s * 1000000000ULL)
			conn_finish(c);
	}
	for (i = 0; i <= b->nconns; i++) {
		c = i < b->nconns ? &b->conns[i] : b->subc;
		if (c == NULL || c->state != CS_DRAIN)
			continue;
		if (t - c->drain_ns > BENCH_DRAIN_NS)
			conn_close(c);
	}
}

int
main(int argc, char **argv)
{
	struct bench bs, *b = &bs;
	struct addrinfo hints;
	struct epoll_event evs[64];
	struct rlimit rl;
	struct conn *c;
	uint64_t per, extra, deadline;
	unsigned i;
	int n, j, rc;

	benchopts_parse(b, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(b->host, b->port, &hints, &b->ai)) != 0) {
		fprintf(stderr, "mqbench: %s:%s: %s\n", b->host, b->port,
		    gai_strerror(rc));
		exit(1);
	}
	if ((b->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		fprintf(stderr, "mqbench: epoll_create1: %s\n",
		    strerror(errno));
		exit(1);
	}

	/* A printable payload, so a broker storing text stores text. */
	b->payload = gw_malloc(b->size + 1);
	b->conns = gw_calloc(b->nconns, sizeof *b->conns);
	if (b->payload == NULL || b->conns == NULL) {
		fprintf(stderr, "mqbench: out of memory\n");
		exit(1);
	}
	if (b->literal != NULL)
		memcpy(b->payload, b->literal, b->size);
	else
		for (i = 0; i < b->size; i++)
			b->payload[i] = (uint8_t)('a' + i % 26);

	per = b->total / b->nconns;
	extra = b->total % b->nconns;
	for (i = 0; i < b->nconns && strcmp(b->status, "ok") == 0; i++) {
		c = &b->conns[i];
		c->b = b;
		c->fd = -1;
		c->idx = (int)i;
		c->quota = per + (i < extra ? 1 : 0);
		c->topic_len = (size_t)snprintf(c->topic, sizeof c->topic,
		    "%s/%u%s%s", b->prefix, i, b->suffix != NULL ? "/" : "",
		    b->suffix != NULL ? b->suffix : "");
		c->next_id = 1;
		c->window = b->window;
		if (b->qos == 0) {
			rc = benchproto_publish(&c->tmpl, b->version, c->topic,
			    c->topic_len, b->payload, b->size, 0, 0);
			if (rc != 0) {
				fprintf(stderr, "mqbench: encode PUBLISH: "
				    "%s\n", gw_strerror(rc));
				exit(1);
			}
		} else if ((c->sent_ns = gw_calloc(BENCH_IDS,
		    sizeof *c->sent_ns)) == NULL || (b->qos == 2 &&
		    (c->rec = gw_calloc(BENCH_IDS, 1)) == NULL)) {
			fprintf(stderr, "mqbench: out of memory\n");
			exit(1);
		}
	}
	bench_open_more(b);
	if (b->sub && strcmp(b->status, "ok") == 0) {
		if ((b->subc = gw_calloc(1, sizeof *b->subc)) == NULL) {
			fprintf(stderr, "mqbench: out of memory\n");
			exit(1);
		}
		b->subc->b = b;
		b->subc->fd = -1;
		b->subc->idx = -1;
		conn_open(b, b->subc);
	}

	deadline = b->begin_ns + (uint64_t)b->timeout_s * 1000000000ULL;
	while (strcmp(b->status, "ok") == 0 && (b->open > 0 ||
	    b->opened < b->nconns)) {
		n = epoll_wait(b->ep, evs, 64, 100);
		if (n == -1 && errno != EINTR) {
			bench_fail(b, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (j = 0; j < n && strcmp(b->status, "ok") == 0; j++) {
			c = evs[j].data.ptr;
			if (c->state == CS_DONE)
				continue;
			if (c->state == CS_CONNECTING) {
				conn_connected(c);
				continue;
			}
			if (evs[j].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				if (conn_read(c) != 0 || c->state == CS_DONE)
					continue;
			}
			if (evs[j].events & EPOLLOUT) {
				if (c->state == CS_RUN)
					conn_pump(c);
				else
					conn_flush(c);
			}
		}
		if (strcmp(b->status, "ok") != 0)
			break;
		bench_open_more(b);
		if (b->start_ns == 0 &&
		    b->ready == b->nconns + (b->subc != NULL ? 1 : 0) &&
		    !bench_held(b) && strcmp(b->status, "ok") == 0)
			bench_start(b);
		bench_tick(b);
		if (now_ns() > deadline && b->open > 0) {
			snprintf(b->error, sizeof b->error, "timed out after "
			    "%u s (-T)", b->timeout_s);
			b->status = "timeout";
		}
	}
	bench_tick(b);
	if (strcmp(b->status, "ok") != 0)
		fprintf(stderr, "mqbench: %s\n", b->error);
	benchreport_print(b);

	for (i = 0; i < b->nconns; i++) {
		conn_close(&b->conns[i]);
		buf_free(&b->conns[i].in);
		buf_free(&b->conns[i].out);
		buf_free(&b->conns[i].tmpl);
		gw_free(b->conns[i].sent_ns);
		gw_free(b->conns[i].rec);
	}
	if (b->subc != NULL) {
		conn_close(b->subc);
		buf_free(&b->subc->in);
		buf_free(&b->subc->out);
		gw_free(b->subc);
	}
	gw_free(b->conns);
	gw_free(b->payload);
	freeaddrinfo(b->ai);
	close(b->ep);
	if (strcmp(b->status, "ok") == 0)
		return 0;
	return strcmp(b->status, "timeout") == 0 ? 2 : 1;
}
