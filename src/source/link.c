/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One source's connection, an MQTT 3.1.1 client on the event loop built
 * from mqlite's own codec: non-blocking TCP connect, the TLS handshake
 * for an mqtts:// source, CONNECT with clean session 0, SUBSCRIBE to the
 * configured filters, then PUBLISH in,
 * PUBACK / PUBREC / PUBCOMP out once committed (see source.c), PINGREQ at
 * the keepalive interval.
 *
 * DESIGN
 *
 *	IDLE --timer--> CONNECTING --writable--> [TLS] --> CONNACK --> UP
 *	  ^                  |                      |          |         |
 *	  '------ link_drop(): close, backoff with jitter <---------------'
 *
 * TLS (net/tls.h) sits under the byte streams: after the handshake,
 * conn_read() and conn_flush() decrypt and encrypt, and the MQTT side is
 * the same. OpenSSL may hold decrypted bytes that epoll does not report,
 * so the link keeps reading while conn_pending() says there are some,
 * also when it resumes after a full store; a read may wait for the socket
 * to be writable and a write for it to be readable.
 *
 * Every failure (refused connection, bad CONNACK, malformed packet,
 * keepalive without PINGRESP, socket error) goes through link_drop(),
 * which forgets the held acks (the broker resends those messages; QoS 2
 * resends are recognised by their recorded packet ids) and schedules the
 * next attempt after min(reconnect.max, reconnect.min * 2^attempt),
 * halved and jittered, so a fleet of gateways does not reconnect in
 * step. When the store queue is full the link stops reading and tries
 * again after the next commit: backpressure reaches the source broker,
 * nothing is dropped. One timer carries the connect timeout (handshake
 * included), the reconnect delay and the keepalive deadline, depending on
 * the state. A failure is logged when it differs from the last one, so a
 * broker that stays away or keeps refusing our certificate leaves one
 * line, not one per attempt.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "clock.h"
#include "config.h"
#include "mem.h"
#include "mqtt/codec.h"
#include "net/tls.h"
#include "source/source_int.h"

#define LINK_READ_CHUNK		(64 * 1024)
#define LINK_READ_ROUNDS	64	/* TLS records read per wakeup */
#define LINK_CONNECT_TIMEOUT_MS	10000
#define LINK_RETRY_MS		100	/* store full and no commit seen */

/* Failures that say less than what an attempt may have said before. */
#define LINK_WRITE_FAILED	"write failed"
#define LINK_CLOSED		"closed by the broker"
#define LINK_SOCKET_ERROR	"socket error"

static void	link_io_cb(struct ev_loop *, int, unsigned, void *);
static void	link_timer_cb(struct ev_loop *, void *);
static void	link_retry_cb(struct ev_loop *, void *);
static void	link_read(struct source_link *);
static void	link_send_connect(struct source_link *);
static int	link_packet(struct source_link *, const struct codec_header *,
		    const uint8_t *);

#define link_log(lvl, l, fmt, ...) log_msg(lvl, "source %s (%s): " fmt, \
	(l)->cfg->name, (l)->origin, ##__VA_ARGS__)

/* Sets the epoll interest of l's socket. */
static void
link_events(struct source_link *l, unsigned mask)
{
	if (l->conn.fd == -1 || l->ev_mask == mask)
		return;
	if (ev_mod_fd(l->ss->loop, l->conn.fd, mask) == 0)
		l->ev_mask = mask;
}

/* The next keepalive deadline: ping when idle, drop when unanswered. */
static void
link_arm_keepalive(struct source_link *l)
{
	long long ka = l->cfg->keepalive_ms, at;

	if (l->ping_out)
		at = l->last_tx_ms + ka / 2;
	else
		at = l->last_tx_ms + ka;
	if (l->ping_out && at < ev_now(l->ss->loop))
		at = ev_now(l->ss->loop);
	ev_timer_set(l->ss->loop, &l->timer, at, link_timer_cb, l);
}

void
link_flush(struct source_link *l)
{
	int rc;

	if (l->conn.fd == -1)
		return;
	rc = 0;
	if (buf_used(&l->conn.out) > 0) {
		l->last_tx_ms = clock_mono_ms();
		rc = conn_flush(&l->conn);
	}
	if (rc == GW_EIO) {
		link_drop(l, conn_failure(&l->conn) != NULL ?
		    conn_failure(&l->conn) : LINK_WRITE_FAILED);
		return;
	}
	if (l->state == LINK_DONE)
		return;
	link_events(l, (l->blocked ? 0 : conn_read_wants_write(&l->conn) ?
	    EV_WRITE : EV_READ) | (rc != GW_ERETRY ? 0 :
	    conn_write_wants_read(&l->conn) ? EV_READ : EV_WRITE));
}

/* Opens a non-blocking socket connecting to the source. */
static int
link_socket(struct source_link *l)
{
	struct addrinfo hints, *res, *ai;
	char port[16];
	unsigned n, i, k;
	int fd = -1, rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof port, "%d", l->cfg->port);
	if ((rc = getaddrinfo(l->cfg->host, port, &hints, &res)) != 0) {
		if (log_ratelimited(&l->err_log, 3, 60000))
			link_log(LOG_LVL_WARN, l, "cannot resolve %s: %s",
			    l->cfg->host, gai_strerror(rc));
		return -1;
	}
	/*
	 * Start at the address after the one that failed last time, so a
	 * name with several addresses (::1 and 127.0.0.1) tries them all
	 * over successive attempts even when a connect fails later.
	 */
	for (n = 0, ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	for (i = 0; i < n && fd == -1; i++) {
		for (k = (l->addr_next + i) % n, ai = res; k > 0; k--)
			ai = ai->ai_next;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS) {
			l->addr_next = (l->addr_next + i) % n;
			break;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The delay before the next attempt: equal jitter around the ceiling. */
static long long
link_backoff_ms(struct source_link *l)
{
	int64_t ceil;

	ceil = backoff_ceiling_ms(l->cfg->reconnect_min_ms,
	    l->cfg->reconnect_max_ms, l->attempt);
	return ceil / 2 + (int64_t)backoff_uniform(&l->ss->rng,
	    (uint64_t)(ceil - ceil / 2));
}

/* Schedules the next connection attempt. */
static void
link_schedule(struct source_link *l)
{
	long long delay = link_backoff_ms(l);

	if (l->attempt < 32)
		l->attempt++;
	l->state = LINK_IDLE;
	link_log(LOG_LVL_DEBUG, l, "reconnecting in %lld ms", delay);
	ev_timer_set(l->ss->loop, &l->timer, ev_now(l->ss->loop) + delay,
	    link_timer_cb, l);
}

void
link_connect(struct source_link *l)
{
	int fd;

	if (l->intake_stopped || l->state == LINK_DONE)
		return;
	if ((fd = link_socket(l)) == -1) {
		l->stats.reconnects++;
		link_schedule(l);
		return;
	}
	memset(&l->conn, 0, sizeof l->conn);
	l->conn.fd = fd;
	/* conn.peer is for logs; link_log() prints origin instead. */
	snprintf(l->conn.peer, sizeof l->conn.peer, "%.*s",
	    (int)sizeof l->conn.peer - 1, l->origin);
	if (ev_add_fd(l->ss->loop, fd, EV_WRITE, link_io_cb, l) != 0) {
		close(fd);
		l->conn.fd = -1;
		link_schedule(l);
		return;
	}
	l->ev_mask = EV_WRITE;
	l->state = LINK_CONNECTING;
	l->subscribed = false;
	l->ping_out = false;
	l->blocked = false;
	ev_timer_set(l->ss->loop, &l->timer, ev_now(l->ss->loop) +
	    LINK_CONNECT_TIMEOUT_MS, link_timer_cb, l);
}

/*
 * Whether a failed attempt says something new: the first since the link
 * was up, or a reason other than the last one logged. A bare "closed" or
 * "write failed" after a precise reason (a TLS alert read on one attempt,
 * the socket already closed on the next) is not news.
 */
static bool
link_new_failure(const struct source_link *l, const char *why)
{
	if (l->last_fail[0] == '\0')
		return true;
	if (strcmp(why, LINK_WRITE_FAILED) == 0 ||
	    strcmp(why, LINK_CLOSED) == 0 ||
	    strcmp(why, LINK_SOCKET_ERROR) == 0)
		return false;
	return strcmp(why, l->last_fail) != 0;
}

void
link_drop(struct source_link *l, const char *reason)
{
	char why[sizeof l->last_fail];

	/* reason may live in the TLS session closed below. */
	snprintf(why, sizeof why, "%s", reason);
	ev_timer_cancel(l->ss->loop, &l->timer);
	ev_timer_cancel(l->ss->loop, &l->retry);
	if (l->conn.fd != -1) {
		ev_del_fd(l->ss->loop, l->conn.fd);
		conn_close(&l->conn);
		l->conn.fd = -1;
	}
	l->ev_mask = 0;
	/* Unsent acks: the broker resends those messages. */
	l->ack_head = l->ack_len = 0;
	l->blocked = false;
	if (l->state == LINK_DONE)
		link_log(LOG_LVL_INFO, l, "disconnected: %s", why);
	else if (l->stats.connected)
		link_log(LOG_LVL_WARN, l, "disconnected: %s", why);
	else if (link_new_failure(l, why)) {
		link_log(LOG_LVL_WARN, l, "connection failed: %s", why);
		snprintf(l->last_fail, sizeof l->last_fail, "%s", why);
	} else
		link_log(LOG_LVL_DEBUG, l, "connection failed again: %s", why);
	l->stats.connected = false;
	if (l->state == LINK_DONE || l->intake_stopped) {
		l->state = LINK_DONE;
		return;
	}
	l->stats.reconnects++;
	link_schedule(l);
}

/* Advances the TLS handshake; CONNECT follows once it is done. */
static void
link_handshake(struct source_link *l)
{
	const char *why;
	int rc;

	rc = tls_handshake(l->conn.tls);
	if (rc == GW_ERETRY) {
		link_events(l, conn_read_wants_write(&l->conn) ? EV_WRITE :
		    EV_READ);
		return;
	}
	if (rc != 0) {
		why = conn_failure(&l->conn);
		link_drop(l, why != NULL ? why : "TLS handshake failed");
		return;
	}
	link_log(LOG_LVL_DEBUG, l, "TLS handshake done");
	link_send_connect(l);
}

/* The TCP connection is up: start TLS, or send CONNECT. */
static void
link_connected(struct source_link *l)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(l->conn.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
	    err != 0) {
		l->addr_next++;		/* next attempt: the next address */
		link_drop(l, strerror(err != 0 ? err : errno));
		return;
	}
	if (l->tls == NULL) {
		link_send_connect(l);
		return;
	}
	if ((l->conn.tls = tls_session_connect(l->tls, l->conn.fd,
	    l->cfg->host)) == NULL) {
		link_drop(l, "cannot start TLS (out of memory)");
		return;
	}
	l->state = LINK_TLS;
	link_handshake(l);
}

/* Sends CONNECT (after the TLS handshake, if any). */
static void
link_send_connect(struct source_link *l)
{
	const struct config_source *s = l->cfg;
	struct codec_connect c;

	memset(&c, 0, sizeof c);
	c.protocol_level = 4;
	c.clean_session = false;
	c.keepalive = (uint16_t)(s->keepalive_ms / 1000);
	c.client_id.ptr = s->client_id;
	c.client_id.len = (uint16_t)strlen(s->client_id);
	if (s->username != NULL) {
		c.has_username = true;
		c.username.ptr = s->username;
		c.username.len = (uint16_t)strlen(s->username);
	}
	if (s->password != NULL) {
		c.has_password = true;
		c.password.ptr = s->password;
		c.password.len = (uint16_t)strlen(s->password);
	}
	if (codec_encode_connect(&l->conn.out, &c) != 0) {
		link_drop(l, "cannot encode CONNECT");
		return;
	}
	l->state = LINK_CONNACK;
	l->last_rx_ms = clock_mono_ms();
	link_flush(l);
}

/* CONNACK accepted: subscribe to every filter in one SUBSCRIBE. */
static int
link_subscribe(struct source_link *l)
{
	struct codec_str f[CONFIG_SOURCE_MAX_TOPICS];
	size_t i;

	for (i = 0; i < l->cfg->ntopics; i++) {
		f[i].ptr = l->cfg->topics[i];
		f[i].len = (uint16_t)strlen(l->cfg->topics[i]);
	}
	return codec_encode_subscribe(&l->conn.out, 1, f, l->cfg->topic_qos,
	    l->cfg->ntopics);
}

static int
link_connack(struct source_link *l, const uint8_t *body, size_t len)
{
	struct codec_connack ca;
	uint64_t seq;
	int rc;

	if (l->state != LINK_CONNACK)
		return GW_EPROTO;
	if ((rc = codec_decode_connack(body, len, &ca)) != 0)
		return rc;
	if (ca.return_code != CODEC_CONNACK_ACCEPTED) {
		link_log(LOG_LVL_ERROR, l, "connection refused by the broker "
		    "(CONNACK return code %u%s)", ca.return_code,
		    ca.return_code == CODEC_CONNACK_BAD_CREDENTIALS ?
		    ": bad user name or password" : ca.return_code ==
		    CODEC_CONNACK_NOT_AUTHORIZED ? ": not authorized" : "");
		return GW_EPROTO;
	}
	if (!ca.session_present && l->nqos2 > 0) {
		/*
		 * The broker lost our session: it will never release the
		 * packet ids we recorded and may reuse them for new messages.
		 */
		link_log(LOG_LVL_WARN, l, "session not present: forgetting "
		    "%u QoS 2 packet ids", l->nqos2);
		if ((rc = broker_source_qos2_del(l->ss->broker, l->key, 0,
		    &seq)) != 0)
			return rc;
		gw_free(l->qos2);
		l->qos2 = NULL;
		l->nqos2 = 0;
	}
	l->state = LINK_UP;
	l->attempt = 0;
	l->last_fail[0] = '\0';
	l->stats.connected = true;
	l->stats.connects++;
	link_log(LOG_LVL_INFO, l, "connected as %s (session %s)",
	    l->cfg->client_id, ca.session_present ? "resumed" : "new");
	if ((rc = link_subscribe(l)) != 0)
		return rc;
	link_arm_keepalive(l);
	return 0;
}

static int
link_suback(struct source_link *l, const uint8_t *body, size_t len)
{
	struct codec_suback sa;
	unsigned i;
	int rc;

	if ((rc = codec_decode_suback(body, len, &sa)) != 0)
		return rc;
	if (sa.packet_id != 1 || sa.count != l->cfg->ntopics)
		return GW_EPROTO;
	for (i = 0; i < sa.count; i++) {
		if (sa.codes[i] == CODEC_SUBACK_FAILURE)
			link_log(LOG_LVL_ERROR, l, "subscription to %s refused "
			    "by the broker", l->cfg->topics[i]);
		else if (sa.codes[i] < l->cfg->topic_qos[i])
			link_log(LOG_LVL_WARN, l, "subscription to %s granted "
			    "at QoS %u only", l->cfg->topics[i], sa.codes[i]);
	}
	if (!l->subscribed)
		link_log(LOG_LVL_INFO, l, "subscribed to %zu topic filters",
		    l->cfg->ntopics);
	l->subscribed = true;
	return 0;
}

/* Queues an acknowledgement released once seq is committed. */
static int
link_hold_ack(struct source_link *l, uint8_t type, uint16_t pid,
    uint64_t seq)
{
	struct link_ack *na;
	size_t n, i;

	if (seq < l->last_seq)
		seq = l->last_seq;	/* acks leave in receive order */
	l->last_seq = seq;
	if (l->ack_len == l->ack_cap) {
		n = l->ack_cap ? l->ack_cap * 2 : 16;
		if ((na = gw_malloc(n * sizeof *na)) == NULL)
			return GW_ENOMEM;
		for (i = 0; i < l->ack_len; i++)
			na[i] = l->acks[(l->ack_head + i) % l->ack_cap];
		gw_free(l->acks);
		l->acks = na;
		l->ack_cap = n;
		l->ack_head = 0;
	}
	na = &l->acks[(l->ack_head + l->ack_len) % l->ack_cap];
	na->seq = seq;
	na->pid = pid;
	na->type = type;
	l->ack_len++;
	if (seq <= broker_committed_seq(l->ss->broker))
		link_release_acks(l, seq, false);
	return 0;
}

void
link_release_acks(struct source_link *l, uint64_t committed, bool force)
{
	struct link_ack *a;
	size_t sent = 0;

	while (l->ack_len > 0) {
		a = &l->acks[l->ack_head];
		if (!force && a->seq > committed)
			break;
		if (codec_encode_ack(&l->conn.out, a->type, a->pid) != 0)
			break;
		l->ack_head = (l->ack_head + 1) % l->ack_cap;
		l->ack_len--;
		sent++;
	}
	if (sent > 0 && !force)
		link_flush(l);
}

/*
 * A PUBLISH from the source. GW_EFULL: the store has no room, the packet
 * stays buffered and is parsed again later.
 */
static int
link_publish(struct source_link *l, uint8_t flags, const uint8_t *body,
    size_t len)
{
	struct codec_publish p;
	struct msg *m;
	uint64_t seq = 0;
	int rc;

	if ((rc = codec_decode_publish(flags, body, len, &p)) != 0)
		return rc;
	if (p.qos == 2 && source_qos2_has(l, p.packet_id)) {
		l->stats.duplicates++;
		return link_hold_ack(l, CODEC_PUBREC, p.packet_id,
		    l->last_seq);
	}
	m = msg_new_source(p.topic.ptr, p.topic.len, l->cfg->client_id,
	    strlen(l->cfg->client_id), p.payload, p.payload_len, p.qos,
	    p.retain, clock_wall_ms(), l->cfg->name, l->origin);
	if (m == NULL)
		return GW_ENOMEM;
	rc = broker_source_publish(l->ss->broker, m, p.qos == 2 ? l->key :
	    NULL, p.packet_id, &seq);
	msg_unref(&m);
	if (rc != 0)
		return rc;
	l->stats.received++;
	switch (p.qos) {
	case 1:
		return link_hold_ack(l, CODEC_PUBACK, p.packet_id, seq);
	case 2:
		if ((rc = source_qos2_add(l, p.packet_id)) != 0)
			return rc;
		return link_hold_ack(l, CODEC_PUBREC, p.packet_id, seq);
	}
	return 0;
}

static int
link_pubrel(struct source_link *l, const uint8_t *body, size_t len)
{
	uint64_t seq = l->last_seq;
	uint16_t pid;
	int rc;

	if ((rc = codec_decode_ack(body, len, &pid)) != 0)
		return rc;
	if (source_qos2_has(l, pid)) {
		if ((rc = broker_source_qos2_del(l->ss->broker, l->key, pid,
		    &seq)) != 0)
			return rc;
		source_qos2_del(l, pid);
	}
	return link_hold_ack(l, CODEC_PUBCOMP, pid, seq);
}

/* One whole packet; nonzero drops the connection (GW_EFULL: retry). */
static int
link_packet(struct source_link *l, const struct codec_header *h,
    const uint8_t *body)
{
	link_log(LOG_LVL_DEBUG, l, "received %s (%u bytes)",
	    codec_type_name(h->type), h->remaining);
	if (l->state != LINK_UP && h->type != CODEC_CONNACK)
		return GW_EPROTO;
	switch (h->type) {
	case CODEC_CONNACK:
		return link_connack(l, body, h->remaining);
	case CODEC_SUBACK:
		return link_suback(l, body, h->remaining);
	case CODEC_PUBLISH:
		return link_publish(l, h->flags, body, h->remaining);
	case CODEC_PUBREL:
		return link_pubrel(l, body, h->remaining);
	case CODEC_PINGRESP:
		l->ping_out = false;
		return codec_decode_empty(h->remaining);
	default:
		return GW_EPROTO;
	}
}

void
link_process_input(struct source_link *l)
{
	struct codec_header h;
	size_t max = l->ss->cfg->max_packet_bytes;
	int rc;

	l->blocked = false;
	while (l->conn.fd != -1 && !l->intake_stopped) {
		if (l->ack_len >= LINK_MAX_ACKS) {
			l->blocked = true;
			break;
		}
		rc = codec_parse_frame(buf_head(&l->conn.in),
		    buf_used(&l->conn.in), max, &h);
		if (rc == GW_EMORE)
			break;
		if (rc == 0)
			rc = link_packet(l, &h, buf_head(&l->conn.in) +
			    h.header_len);
		if (rc == GW_EFULL) {
			l->blocked = true;
			ev_timer_set(l->ss->loop, &l->retry,
			    ev_now(l->ss->loop) + LINK_RETRY_MS,
			    link_retry_cb, l);
			break;
		}
		if (rc != 0) {
			link_drop(l, rc == GW_ETOOBIG ? "packet over "
			    "limits.max_packet_bytes" : rc == GW_EPROTO &&
			    l->state == LINK_CONNACK ? "refused or "
			    "unexpected packet" : gw_strerror(rc));
			return;
		}
		buf_consume(&l->conn.in, h.header_len + h.remaining);
	}
	link_flush(l);
}

/*
 * Reads what the socket has and parses it, and goes on while TLS holds
 * decrypted bytes (bounded; the retry timer carries on after that).
 */
static void
link_read(struct source_link *l)
{
	size_t limit = l->ss->cfg->max_packet_bytes + 8;
	unsigned rounds;
	int rc;

	for (rounds = 0; rounds < LINK_READ_ROUNDS; rounds++) {
		rc = conn_read(&l->conn, LINK_READ_CHUNK, limit);
		if (rc == GW_ERETRY) {
			link_flush(l);	/* read interest may have changed */
			return;
		}
		if (rc == 0) {
			link_drop(l, LINK_CLOSED);
			return;
		}
		if (rc < 0 && rc != GW_ETOOBIG) {
			link_drop(l, conn_failure(&l->conn) != NULL ?
			    conn_failure(&l->conn) : gw_strerror(rc));
			return;
		}
		l->last_rx_ms = clock_mono_ms();
		link_process_input(l);
		if (l->conn.fd == -1 || l->blocked ||
		    conn_pending(&l->conn) == 0)
			return;
	}
	ev_timer_set(l->ss->loop, &l->retry, ev_now(l->ss->loop),
	    link_retry_cb, l);
}

void
link_resume(struct source_link *l)
{
	link_process_input(l);
	if (l->conn.fd != -1 && !l->blocked && !l->intake_stopped &&
	    conn_pending(&l->conn) > 0)
		link_read(l);
}

static void
link_io_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct source_link *l = arg;

	(void)loop;
	(void)fd;
	if (l->state == LINK_CONNECTING) {
		if (events & (EV_WRITE | EV_ERROR))
			link_connected(l);
		return;
	}
	if (l->state == LINK_TLS) {
		link_handshake(l);
		return;
	}
	if ((events & EV_ERROR) && !(events & EV_READ)) {
		link_drop(l, LINK_SOCKET_ERROR);
		return;
	}
	/* TLS: a read may wait for writability and a write for input. */
	if ((events & EV_WRITE) && conn_read_wants_write(&l->conn))
		events |= EV_READ;
	if ((events & EV_READ) && conn_write_wants_read(&l->conn))
		events |= EV_WRITE;
	if (events & EV_WRITE)
		link_flush(l);
	if (l->conn.fd != -1 && (events & (EV_READ | EV_ERROR)) &&
	    !l->blocked)
		link_read(l);
}

static void
link_timer_cb(struct ev_loop *loop, void *arg)
{
	struct source_link *l = arg;
	long long now = ev_now(loop);

	switch (l->state) {
	case LINK_IDLE:
		link_connect(l);
		break;
	case LINK_CONNECTING:
	case LINK_TLS:
	case LINK_CONNACK:
		link_drop(l, l->state == LINK_TLS ? "timed out in the TLS "
		    "handshake" : "timed out connecting");
		break;
	case LINK_UP:
		if (l->ping_out) {
			link_drop(l, "no PINGRESP within the keepalive");
			break;
		}
		if (now - l->last_tx_ms >= (long long)l->cfg->keepalive_ms) {
			codec_encode_empty(&l->conn.out, CODEC_PINGREQ);
			l->ping_out = true;
			link_flush(l);
			if (l->conn.fd == -1)
				break;
		}
		link_arm_keepalive(l);
		break;
	default:
		break;
	}
}

static void
link_retry_cb(struct ev_loop *loop, void *arg)
{
	struct source_link *l = arg;

	(void)loop;
	if (l->conn.fd != -1 && !l->intake_stopped && l->state == LINK_UP)
		link_resume(l);
}
