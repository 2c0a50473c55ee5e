/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection lifecycle of the broker: listeners and accept, reading and
 * framing packets, backpressure, timers (connect timeout, keepalive),
 * output flushing and closing; acknowledgements held for the store's
 * commit are in acks.c. Packet semantics live in dispatch.c and handle_*.c, delivery to
 * subscribers in outbound.c.
 *
 * Output is batched: handlers append encoded packets to a client's output
 * buffer and put it on the flush list; the before-sleep hook writes each
 * listed client once per loop iteration. Closing is deferred the same way
 * (CLIENT_CLOSING clients are flushed, then closed), so no handler ever
 * frees a client that a caller up the stack still uses.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker/alias.h"
#include "broker/broker_int.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/share.h"
#include "broker/subs.h"
#include "clock.h"
#include "config.h"
#include "mem.h"
#include "mqtt/reason.h"
#include "net/listen.h"
#include "net/tls.h"
#include "net/ws.h"
#include "rules/rules.h"
#include "store/store.h"

#define READ_CHUNK		65536
#define TURN_PACKETS		64	/* packets parsed per client and
					 * loop iteration, then the others */
#define STORE_RESERVE		4	/* free store slots needed per packet */
#define TURN_RETAINED		64	/* retained messages sent that count as
					 * one more packet of a turn */

static void	accept_cb(struct ev_loop *, int, unsigned, void *);
static void	client_io_cb(struct ev_loop *, int, unsigned, void *);
static void	client_timer_cb(struct ev_loop *, void *);
static void	store_event_cb(struct ev_loop *, int, unsigned, void *);
static void	before_sleep(struct ev_loop *, void *);
static void	client_process_input(struct client *);
static bool	client_read_input(struct client *);
static bool	client_reading(const struct client *);
static int	client_adopt(struct broker *, int, const char *,
		    const struct broker_listener *);
static void	client_yield(struct client *);
static void	client_pause(struct client *);
static void	client_destroy(struct client *);

struct broker *
broker_new(struct ev_loop *loop, const struct gw_config *cfg,
    struct store *store)
{
	struct broker *b;

	if ((b = gw_calloc(1, sizeof *b)) == NULL)
		return NULL;
	b->loop = loop;
	b->cfg = cfg;
	b->store = store;
	LIST_INIT(&b->clients);
	TAILQ_INIT(&b->flush);
	LIST_INIT(&b->ack_clients);
	LIST_INIT(&b->turns);
	b->out_limit = cfg->output_bytes;
	if ((b->subs = subs_new()) == NULL ||
	    (b->shares = share_tab_new()) == NULL ||
	    (b->retain = retain_new()) == NULL ||
	    (b->sys_retain = retain_new()) == NULL ||
	    (b->sessions = session_table_new()) == NULL) {
		broker_free(b);
		return NULL;
	}
	ev_set_before_sleep(loop, before_sleep, b);
	return b;
}

int
broker_listen(struct broker *b, const char *bind_addr, int port,
    struct tls_ctx *tls, struct gw_error *err)
{
	struct broker_listener *l;
	char ebuf[256];
	int fd, rc;

	if (b->nlst >= BROKER_MAX_LISTENERS) {
		tls_ctx_free(tls);
		return gw_error_set(err, "listeners", "too many listeners");
	}
	fd = listen_tcp(bind_addr, port, 511, ebuf, sizeof ebuf);
	if (fd == -1) {
		tls_ctx_free(tls);
		gw_error_set(err, "listeners", "%s", ebuf);
		return GW_EIO;
	}
	l = &b->lst[b->nlst];
	l->b = b;
	l->fd = fd;
	l->tls = tls;
	if ((rc = ev_add_fd(b->loop, fd, EV_READ, accept_cb, l)) != 0) {
		close(fd);
		tls_ctx_free(tls);
		l->tls = NULL;
		gw_error_set(err, "listeners", "cannot watch listener");
		return rc;
	}
	b->nlst++;
	return listen_port(fd);
}

/* See broker.h. */
int
broker_listen_websocket(struct broker *b, const char *path)
{
	struct broker_listener *l;

	if (b->nlst == 0)
		return GW_ENOTFOUND;
	l = &b->lst[b->nlst - 1];
	gw_free(l->ws_path);
	if ((l->ws_path = gw_strdup(path)) == NULL)
		return GW_ENOMEM;
	return 0;
}

void
broker_reload_tls(struct broker *b)
{
	struct gw_error err;
	size_t i;

	for (i = 0; i < b->nlst; i++) {
		if (b->lst[i].tls == NULL)
			continue;
		memset(&err, 0, sizeof err);
		if (tls_ctx_reload(b->lst[i].tls, &err) == 0)
			log_info("SIGHUP: TLS certificates of listener %zu "
			    "(port %d) reloaded", i, listen_port(b->lst[i].fd));
		else
			log_error("SIGHUP: %s: %s; listener %zu keeps its "
			    "current certificates", err.path, err.msg, i);
	}
}

static int
load_retained_cb(struct msg *m, void *arg)
{
	struct broker *b = arg;
	int drop;

	/* Over a lowered bound the row goes: the table follows memory. */
	drop = !guard_retain_admit(b, m);
	if (!drop)
		retain_set(b->retain, m);
	msg_unref(&m);
	return drop;
}

static void
load_qos2_cb(const char *client_id, uint16_t pid, void *arg)
{
	struct broker *b = arg;
	struct session *s;
	size_t len = strlen(client_id);

	if (strncmp(client_id, BROKER_SOURCE_KEY_PREFIX,
	    sizeof BROKER_SOURCE_KEY_PREFIX - 1) == 0)
		return;		/* a source's: src/source/ loads them */
	if ((s = session_find(b->sessions, client_id, len)) == NULL &&
	    (s = session_create(b->sessions, client_id, len, false)) == NULL)
		return;
	session_qos2_add(s, pid);
}

int
broker_load_state(struct broker *b)
{
	int rc;

	if ((rc = store_load_retained(b->store, load_retained_cb, b)) != 0)
		return rc;
	if ((rc = store_load_qos2(b->store, load_qos2_cb, b)) != 0)
		return rc;
	if ((rc = persist_load(b)) != 0)
		return rc;
	expire_loaded(b);
	retain_sweep_arm(b);
	log_info("loaded %zu retained messages, %zu sessions with QoS 2 state",
	    retain_count(b->retain), session_count(b->sessions));
	return 0;
}

int
broker_set_rules(struct broker *b, struct rule_set *set)
{
	uint32_t *ids = NULL;
	size_t n = set != NULL ? rule_set_count(set) : 0;

	if (n > 0 && (ids = gw_calloc(n, sizeof *ids)) == NULL)
		return GW_ENOMEM;
	gw_free(b->rule_ids);
	b->rule_ids = ids;
	if (b->rules != NULL)
		rule_set_unref(&b->rules);
	b->rules = set != NULL ? rule_set_ref(set) : NULL;
	return 0;
}

int
broker_reload_rules(struct broker *b, struct rule_set *set)
{
	struct store_item it;
	int rc;

	memset(&it, 0, sizeof it);
	it.op = STORE_OP_RULES;
	it.rules = rule_set_ref(set);
	if ((rc = broker_submit(b, &it)) != 0) {
		rule_set_unref(&it.rules);
		return rc;
	}
	if (b->pending_rules != NULL)
		rule_set_unref(&b->pending_rules);
	b->pending_rules = rule_set_ref(set);
	b->pending_seq = b->last_seq;
	return 0;
}

/* Swaps in a reloaded rule set once the store prepared it. */
static void
broker_check_reload(struct broker *b)
{
	int ok;

	if (b->pending_rules == NULL ||
	    store_committed_seq(b->store) < b->pending_seq)
		return;
	ok = store_rules_result(b->store, b->pending_seq);
	if (ok == 1 && broker_set_rules(b, b->pending_rules) == 0)
		log_info("rules reloaded from %s: %zu rules",
		    rule_set_origin(b->pending_rules),
		    rule_set_count(b->pending_rules));
	else
		log_error("rules reload from %s failed: keeping the current "
		    "rules", rule_set_origin(b->pending_rules));
	rule_set_unref(&b->pending_rules);
}

int
broker_attach_store(struct broker *b)
{
	return ev_add_fd(b->loop, store_event_fd(b->store), EV_READ,
	    store_event_cb, b);
}

static void
accept_cb(struct ev_loop *loop, int lfd, unsigned events, void *arg)
{
	struct broker_listener *l = arg;
	struct broker *b = l->b;
	char peer[64];
	int fd, n;

	(void)loop;
	(void)events;
	for (n = 0; n < 64; n++) {
		if ((fd = listen_accept(lfd, peer, sizeof peer)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    log_ratelimited(&b->err_log, 5, 10000))
				log_warn("accept: %s", strerror(errno));
			return;
		}
		b->stats.accepted_total++;
		if (b->intake_stopped ||
		    b->nclients >= b->cfg->max_connections) {
			b->stats.refused_total++;
			if (log_ratelimited(&b->err_log, 5, 10000))
				log_warn("refusing connection from %s: "
				    "max_connections (%u) reached", peer,
				    b->cfg->max_connections);
			close(fd);
			continue;
		}
		if (client_adopt(b, fd, peer, l) != 0)
			close(fd);
	}
}

/* broker_adopt() for a listener l: NULL for a plain TCP socket. */
static int
client_adopt(struct broker *b, int fd, const char *peer,
    const struct broker_listener *l)
{
	struct client *c;

	if ((c = gw_calloc(1, sizeof *c)) == NULL)
		return GW_ENOMEM;
	c->b = b;
	c->conn.fd = fd;
	if (l != NULL && l->tls != NULL &&
	    (c->conn.tls = tls_session_new(l->tls, fd)) == NULL) {
		gw_free(c);
		return GW_ENOMEM;
	}
	if (l != NULL && l->ws_path != NULL &&
	    (c->conn.ws = ws_new(l->ws_path)) == NULL) {
		tls_session_free(c->conn.tls);
		gw_free(c);
		return GW_ENOMEM;
	}
	snprintf(c->conn.peer, sizeof c->conn.peer, "%s", peer);
	c->last_rx_ms = ev_now(b->loop);
	c->ev_mask = EV_READ;
	if (ev_add_fd(b->loop, fd, EV_READ, client_io_cb, c) != 0) {
		ws_free(c->conn.ws);
		tls_session_free(c->conn.tls);
		gw_free(c);
		return GW_EIO;
	}
	LIST_INSERT_HEAD(&b->clients, c, link);
	b->nclients++;
	b->stats.connections = b->nclients;
	ev_timer_set(b->loop, &c->timer,
	    ev_now(b->loop) + b->cfg->connect_timeout_ms, client_timer_cb, c);
	log_debug("accepted %s on fd %d", peer, fd);
	return 0;
}

int
broker_adopt(struct broker *b, int fd, const char *peer)
{
	return client_adopt(b, fd, peer, NULL);
}

/* Sets the epoll interest of c from its state. */
void
client_set_events(struct client *c)
{
	unsigned mask = 0;

	if (c->conn.fd == -1)
		return;
	if (!c->read_paused && !c->out_blocked && !c->in_blocked &&
	    !c->in_turns && c->state != CLIENT_CLOSING)
		mask |= conn_read_wants_write(&c->conn) ? EV_WRITE : EV_READ;
	if (conn_out_pending(&c->conn))
		mask |= conn_write_wants_read(&c->conn) ? EV_READ : EV_WRITE;
	if (mask != c->ev_mask) {
		ev_mod_fd(c->b->loop, c->conn.fd, mask);
		c->ev_mask = mask;
	}
}

void
client_want_flush(struct client *c)
{
	if (!c->in_flush) {
		c->in_flush = true;
		TAILQ_INSERT_TAIL(&c->b->flush, c, flush_link);
	}
}

void
client_close_after_write(struct client *c, const char *why)
{
	if (c->state == CLIENT_CLOSING)
		return;
	if (why != NULL)
		client_log(LOG_LVL_INFO, c, "closing: %s", why);
	c->state = CLIENT_CLOSING;
	client_want_flush(c);
	client_set_events(c);
	/* A peer that never reads must not keep us waiting forever. */
	ev_timer_set(c->b->loop, &c->timer, ev_now(c->b->loop) + 5000,
	    client_timer_cb, c);
}

void
client_close_now(struct client *c, const char *why)
{
	/* What was answered already (CONNACK, released acks) still goes. */
	client_close_after_write(c, why);
}

/*
 * The peer closed its sending side: stop reading, and close once the
 * acknowledgements of what it sent before are released and written.
 */
static void
client_peer_eof(struct client *c)
{
	c->peer_eof = true;
	if (c->ack_len == 0) {
		client_close_after_write(c, NULL);
		return;
	}
	c->read_paused = true;
	client_set_events(c);
}

bool
client_should_pause(struct client *c)
{
	if (store_queue_free(c->b->store) < STORE_RESERVE)
		return true;
	if (c->outbox_wait) {
		if (store_outbox_full(c->b->store))
			return true;
		c->outbox_wait = false;
	}
	if (c->auth_wait)
		return true;
	/*
	 * Held acks are bounded by count (receive_maximum) and by the bytes
	 * of the packets behind them, not by the outbound window: a slow
	 * fsync must find many acks waiting to share its commit.
	 */
	return c->ack_len >= c->b->cfg->receive_maximum ||
	    c->held_bytes >= c->b->cfg->held_bytes;
}

/* Reads again after a parked login was decided. */
void
client_resume(struct client *c)
{
	if (!c->read_paused || c->state == CLIENT_CLOSING || c->peer_eof ||
	    client_should_pause(c))
		return;
	c->read_paused = false;
	client_input_resume(c);
}


static void
client_pause(struct client *c)
{
	if (!c->read_paused) {
		c->read_paused = true;
		if (!c->auth_wait)
			c->b->stats.store_pauses++;
		client_set_events(c);
	}
}

/* Resumes paused readers once the store has room again. */
static void
broker_resume_paused(struct broker *b)
{
	struct client *c, *next;

	for (c = LIST_FIRST(&b->clients); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (!c->read_paused || c->state == CLIENT_CLOSING ||
		    c->peer_eof)
			continue;
		if (client_should_pause(c))
			continue;
		c->read_paused = false;
		client_input_resume(c);
	}
}

static void
store_event_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct broker *b = arg;

	(void)loop;
	(void)fd;
	(void)events;
	store_ack_event(b->store);
	broker_check_reload(b);
	broker_release_acks(b);
	if (b->commit_hook != NULL)
		b->commit_hook(b->commit_arg);
	if (!b->intake_stopped)
		broker_resume_paused(b);
}

uint64_t
broker_committed_seq(const struct broker *b)
{
	return store_committed_seq(b->store);
}

void
broker_set_commit_hook(struct broker *b, void (*cb)(void *), void *arg)
{
	b->commit_hook = cb;
	b->commit_arg = arg;
}

static void
turns_cb(struct ev_loop *loop, void *arg)
{
	struct broker *b = arg;
	struct client_list list;
	struct client *c;

	(void)loop;
	/* Take the list: clients yielding again go on a fresh one. */
	list = b->turns;
	if ((c = LIST_FIRST(&list)) != NULL)
		c->turns_link.le_prev = &LIST_FIRST(&list);
	LIST_INIT(&b->turns);
	while ((c = LIST_FIRST(&list)) != NULL) {
		LIST_REMOVE(c, turns_link);
		c->in_turns = false;
		client_input_resume(c);
		guard_input_account(c);
		client_set_events(c);
	}
}

/*
 * Lets the other clients go first: c parsed TURN_PACKETS packets in this
 * iteration; the rest of its input waits for the next one (no reading
 * meanwhile), so a client streaming tiny packets cannot hold the loop.
 */
static void
client_yield(struct client *c)
{
	struct broker *b = c->b;

	if (c->in_turns)
		return;
	c->in_turns = true;
	LIST_INSERT_HEAD(&b->turns, c, turns_link);
	if (b->turns_timer.heap_index == 0)
		ev_timer_set(b->loop, &b->turns_timer, ev_now(b->loop),
		    turns_cb, b);
	client_set_events(c);
}

static void
client_process_input(struct client *c)
{
	struct codec_header h;
	uint64_t seq;
	size_t total;
	unsigned n = 0;
	int rc;

	/*
	 * A turn is TURN_PACKETS packets, fewer when SUBSCRIBEs sent many
	 * retained messages: a client resubscribing to '#' over thousands of
	 * retained topics yields after one or two packets.
	 */
	c->turn_work = 0;
	while (c->state != CLIENT_CLOSING && buf_used(&c->conn.in) > 0) {
		if (c->b->intake_stopped)
			return;
		if (++n + c->turn_work / TURN_RETAINED > TURN_PACKETS) {
			client_yield(c);
			return;
		}
		if (client_should_pause(c)) {
			client_pause(c);
			return;
		}
		if (guard_output_full(c)) {
			client_set_events(c);
			return;
		}
		if (guard_store_hog(c)) {
			client_pause(c);
			return;
		}
		rc = proto5_parse_header(c, buf_head(&c->conn.in),
		    buf_used(&c->conn.in), &h);
		if (rc == GW_EMORE)
			return;
		if (rc != 0) {
			c->b->stats.protocol_errors++;
			c->disc_reason = 0;
			proto5_close_error(c, rc, rc == GW_ETOOBIG ?
			    "packet larger than max_packet_bytes" :
			    "malformed fixed header");
			return;
		}
		total = (size_t)h.header_len + h.remaining;
		if (buf_used(&c->conn.in) < total)
			return;
		/* What a held ack of this packet stands for. */
		c->pkt_bytes = (uint32_t)total;
		seq = c->last_seq;
		c->b->stats.packets_in++;
		c->disc_reason = 0;
		rc = dispatch_packet(c, &h, buf_head(&c->conn.in) +
		    h.header_len);
		guard_store_count(c, seq);
		if (rc == GW_EFULL) {
			/* Held, not refused: retried when the store has room. */
			c->outbox_wait = true;
			client_pause(c);
			return;
		}
		buf_consume(&c->conn.in, total);
		if (rc != 0) {
			c->b->stats.protocol_errors++;
			if (c->state != CLIENT_CLOSING)
				proto5_close_error(c, rc, gw_strerror(rc));
			return;
		}
	}
}

/*
 * Reads and parses, then again while TLS holds decrypted bytes that epoll
 * cannot report (each round takes at least one byte of one TLS record).
 * Returns whether any byte was read.
 */
static bool
client_read_input(struct client *c)
{
	size_t limit = c->b->cfg->max_packet_bytes + 8;
	unsigned rounds;
	const char *why;
	int rc;

	for (rounds = 0; rounds < 65536; rounds++) {
		if (!client_reading(c))
			return rounds > 0;
		rc = conn_read(&c->conn, READ_CHUNK, limit);
		if (rc == GW_ERETRY)
			return rounds > 0;
		if (rc == 0) {
			client_peer_eof(c);
			return false;
		}
		if (rc < 0) {
			why = conn_failure(&c->conn);
			if (why != NULL && c->state == CLIENT_NEW) {
				/* Anyone can fail a handshake: rate-limited. */
				if (log_ratelimited(&c->b->tls_log, 20, 10000))
					client_log(LOG_LVL_INFO, c, "from %s: %s",
					    c->conn.peer, why);
				why = NULL;
			} else if (why == NULL)
				why = rc == GW_EIO ? "read error" :
				    gw_strerror(rc);
			client_close_now(c, why);
			return false;
		}
		c->b->stats.bytes_in += (uint64_t)rc;
		c->last_rx_ms = ev_now(c->b->loop);
		client_process_input(c);
		if (conn_pending(&c->conn) == 0)
			return true;
	}
	return true;
}

/* Whether c's input is read now (nothing pauses or blocks it). */
static bool
client_reading(const struct client *c)
{
	return !c->read_paused && !c->out_blocked && !c->in_blocked &&
	    !c->in_turns && c->state != CLIENT_CLOSING;
}

void
client_input_resume(struct client *c)
{
	client_process_input(c);
	/* Decrypted bytes inside TLS: epoll will not report them. */
	if (conn_pending(&c->conn) > 0 && client_reading(c))
		client_read_input(c);
	client_set_events(c);
}

/* Counts what c holds unparsed against limits.input_budget. */
static void
client_input_guard(struct client *c)
{
	guard_input_account(c);
	if (c->state != CLIENT_CLOSING && guard_input_blocked(c))
		client_set_events(c);
	guard_input_balance(c->b);
	guard_stall_update(c, true);
}

static void
client_io_cb(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
	struct client *c = arg;
	const char *why;
	size_t before;
	int rc;

	(void)loop;
	(void)fd;
	/* TLS: a read may wait for writability and a write for input. */
	if ((events & EV_WRITE) && conn_read_wants_write(&c->conn))
		events |= EV_READ;
	if ((events & EV_READ) && conn_write_wants_read(&c->conn))
		events |= EV_WRITE;
	if (events & EV_WRITE) {
		before = buf_used(&c->conn.out);
		rc = conn_flush(&c->conn);
		if (rc == GW_EIO) {
			why = conn_failure(&c->conn);
			client_close_now(c, why != NULL ? why : "write error");
			return;
		}
		if (c->state == CLIENT_CLOSING) {
			client_want_flush(c);
			return;
		}
		c->out_progress |= buf_used(&c->conn.out) < before;
		c->b->stats.bytes_out += before - buf_used(&c->conn.out);
		if (guard_output_drained(c))
			client_input_resume(c);
		if (c->sess != NULL && c->state == CLIENT_CONNECTED)
			outbound_pump(c->b, c->sess);
		client_set_events(c);
	}
	if (!(events & (EV_READ | EV_ERROR)) || !client_reading(c)) {
		guard_stall_update(c, false);
		return;
	}
	if (client_read_input(c))
		client_input_guard(c);
	else
		guard_stall_update(c, false);
	client_set_events(c);
}

static void
client_timer_cb(struct ev_loop *loop, void *arg)
{
	struct client *c = arg;
	long long deadline;
	bool paused;

	if (c->state == CLIENT_CLOSING) {
		client_destroy(c);
		return;
	}
	if (c->state == CLIENT_NEW && c->auth_parked) {
		/* CONNECT complete, its password being hashed: the worker
		 * answers within the bounded slots' time. */
		ev_timer_set(loop, &c->timer, ev_now(loop) + 1000,
		    client_timer_cb, c);
		return;
	}
	if (c->state == CLIENT_NEW) {
		client_close_now(c, "no CONNECT within connect_timeout");
		return;
	}
	if (c->keepalive == 0)
		return;
	deadline = c->last_rx_ms + (long long)c->keepalive * 1500;
	/* Not while mqlite stopped reading it (stall_timeout covers that). */
	paused = c->read_paused || c->out_blocked || c->in_blocked;
	if (paused || deadline > ev_now(loop)) {
		if (paused)
			deadline = ev_now(loop) + (long long)c->keepalive * 1500;
		ev_timer_set(loop, &c->timer, deadline, client_timer_cb, c);
		return;
	}
	proto5_disconnect(c, REASON_KEEPALIVE_TIMEOUT, "keepalive timeout");
}

void
client_arm_keepalive(struct client *c)
{
	ev_timer_cancel(c->b->loop, &c->timer);
	if (c->keepalive != 0)
		ev_timer_set(c->b->loop, &c->timer,
		    c->last_rx_ms + (long long)c->keepalive * 1500,
		    client_timer_cb, c);
}

static void
client_destroy(struct client *c)
{
	struct broker *b = c->b;
	struct session *s = c->sess;

	will_client_gone(c);
	access_client_gone(c);
	guard_forget(c);
	if (c->in_turns)
		LIST_REMOVE(c, turns_link);
	if (c->in_flush)
		TAILQ_REMOVE(&b->flush, c, flush_link);
	if (c->in_acks)
		LIST_REMOVE(c, acks_link);
	while (c->ack_len > 0) {
		if (c->acks[c->ack_head].fanout != NULL)
			acks_orphan(b, &c->acks[c->ack_head]);
		gw_free(c->acks[c->ack_head].data);
		c->ack_head = (c->ack_head + 1) % c->ack_cap;
		c->ack_len--;
	}
	gw_free(c->acks);
	LIST_REMOVE(c, link);
	b->nclients--;
	b->stats.connections = b->nclients;
	ev_timer_cancel(b->loop, &c->timer);
	if (c->conn.fd != -1)
		ev_del_fd(b->loop, c->conn.fd);
	conn_close(&c->conn);
	if (s != NULL && s->client == c) {
		s->client = NULL;
		if (s->clean || s->expiry_s == 0)
			outbound_drop_session(b, s);
		else {
			share_requeue(b, s, false);
			expire_session_offline(b, s, clock_wall_ms());
		}
	}
	gw_free(c->username);
	alias_free(&c->aliases);
	alias_out_free(&c->aliases_out);
	gw_free(c);
}

static void
before_sleep(struct ev_loop *loop, void *arg)
{
	struct broker *b = arg;
	struct client *c;
	size_t before;
	int rc;

	(void)loop;
	while ((c = TAILQ_FIRST(&b->flush)) != NULL) {
		TAILQ_REMOVE(&b->flush, c, flush_link);
		c->in_flush = false;
		before = buf_used(&c->conn.out);
		rc = conn_flush(&c->conn);
		if (rc == GW_EIO) {
			client_destroy(c);
			continue;
		}
		if (c->state == CLIENT_CLOSING && rc == 0) {
			client_destroy(c);
			continue;
		}
		c->out_progress |= buf_used(&c->conn.out) < before;
		c->b->stats.bytes_out += before - buf_used(&c->conn.out);
		if (c->state != CLIENT_CLOSING && guard_output_drained(c)) {
			client_process_input(c);
			guard_input_account(c);
		}
		if (c->state != CLIENT_CLOSING && rc == 0 && c->sess != NULL)
			outbound_pump(b, c->sess);
		buf_shrink(&c->conn.in, 4096);
		guard_stall_update(c, false);
		client_set_events(c);
	}
}

void
broker_stop_intake(struct broker *b)
{
	struct client *c;
	size_t i;

	for (i = 0; i < b->nlst; i++) {
		ev_del_fd(b->loop, b->lst[i].fd);
		close(b->lst[i].fd);
		tls_ctx_free(b->lst[i].tls);
		gw_free(b->lst[i].ws_path);
		b->lst[i].ws_path = NULL;
		b->lst[i].tls = NULL;
	}
	b->nlst = 0;
	b->intake_stopped = true;
	LIST_FOREACH(c, &b->clients, link) {
		c->read_paused = true;
		client_set_events(c);
	}
}

void
broker_finish(struct broker *b, uint64_t committed)
{
	struct client *c;

	LIST_FOREACH(c, &b->clients, link) {
		acks_release_client(c, committed, committed == UINT64_MAX);
		if (c->in_acks) {
			LIST_REMOVE(c, acks_link);
			c->in_acks = false;
		}
		proto5_disconnect(c, REASON_SERVER_SHUTTING_DOWN, NULL);
		(void)conn_flush(&c->conn);
	}
	while ((c = LIST_FIRST(&b->clients)) != NULL)
		client_destroy(c);
	acks_release_orphans(b, 0, true);
}

static void
log_timer_cb(struct ev_loop *loop, void *arg)
{
	struct broker *b = arg;

	(void)loop;
	if (log_limit_flush(&b->drop_log, BROKER_LOG_PERIOD_MS) +
	    log_limit_flush(&b->unmatched_log, BROKER_LOG_PERIOD_MS) > 0)
		broker_log_later(b);
}

/*
 * After a per-message line was held back: makes sure its "(repeated N
 * times)" summary is logged when the window ends, even if no line of the
 * kind follows. Loop thread.
 */
void
broker_log_later(struct broker *b)
{
	if (b->log_timer.heap_index != 0)
		return;
	ev_timer_set(b->loop, &b->log_timer, ev_now(b->loop) +
	    BROKER_LOG_PERIOD_MS + 10, log_timer_cb, b);
}

void
broker_get_stats(const struct broker *b, struct broker_stats *st)
{
	*st = b->stats;
	st->retained = retain_count(b->retain);
	st->retained_bytes = retain_bytes(b->retain);
	st->subscriptions = share_sub_count(b);
	st->sessions = session_count(b->sessions);
}

const struct metrics_hist *
broker_ack_hist(const struct broker *b)
{
	return &b->ack_hist;
}

const struct rule_set *
broker_rules(const struct broker *b)
{
	return b->rules;
}

static void
free_session_cb(struct session *s, void *arg)
{
	struct broker *b = arg;

	session_destroy(b->sessions, s);
}

void
broker_free(struct broker *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->nlst; i++) {
		tls_ctx_free(b->lst[i].tls);
		gw_free(b->lst[i].ws_path);
	}
	ev_timer_cancel(b->loop, &b->expire_timer);
	ev_timer_cancel(b->loop, &b->retain_timer);
	ev_timer_cancel(b->loop, &b->turns_timer);
	ev_timer_cancel(b->loop, &b->log_timer);
	while (!LIST_EMPTY(&b->clients))
		client_destroy(LIST_FIRST(&b->clients));
	if (b->sessions != NULL) {
		session_foreach(b->sessions, free_session_cb, b);
		session_table_free(b->sessions);
	}
	subs_free(b->subs);
	share_tab_free(b->shares);
	acks_release_orphans(b, 0, true);
	gw_free(b->orphans);
	if (b->rules != NULL)
		rule_set_unref(&b->rules);
	if (b->pending_rules != NULL)
		rule_set_unref(&b->pending_rules);
	gw_free(b->rule_ids);
	retain_free(b->retain);
	retain_free(b->sys_retain);
	access_free(b);
	gw_free(b->matched);
	gw_free(b);
}
