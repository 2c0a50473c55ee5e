/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The bridge thread; see bridge.h for the contract.
 *
 * DESIGN
 *
 * One thread for every mqtt route, sleeping on a condition variable
 * (monotonic clock) until a Paho callback, bridge_wake(), a reload or its
 * next deadline (a reconnect, the gauge refresh). Each time it wakes it
 * reads what the callbacks recorded in the routes' tags, then pumps every
 * route:
 *
 *	DOWN        at next_connect: start a connection -> CONNECTING
 *	CONNECTING  CONNECTED -> UP (failures = 0); FAILED -> DOWN with
 *	            a backoff of failures + 1
 *	UP          LOST -> DOWN (backoff), the client is destroyed and the
 *	            window's unacknowledged rows wait to be sent again;
 *	            otherwise fill the window: rows waiting to be sent
 *	            again first, then new rows read above the cursor, in id
 *	            order
 *
 * The window (struct bridge_fl, id order) holds at most max_in_flight
 * rows. An acknowledgement marks its row, which becomes an OK result for
 * the store at once; the row keeps its slot until the store reports the
 * delete committed (bridge_results_committed(), the ids then reach the
 * thread through b->gone), and such rows leave the window from its head:
 * a crash can only resend what the window holds. A
 * failed send marks its row to be sent again once the route is UP. After
 * a lost connection a NEW client connects (go-back-N from the first
 * unacknowledged row): Paho's own resending of a session's messages on a
 * reused client is not relied on, so what is resent, and in which order,
 * is decided here. The
 * held-id set (read ahead and window) and the drop_oldest handshake are
 * those of the webhook delivery thread (loop.c).
 *
 * A 5.0 route (mqtt_version 5): a row whose Message Expiry has passed is
 * deleted instead of sent (counted as expired). A PUBACK/PUBREC with a
 * reason code >= 0x80 is a refusal: 0x90 (Topic Name invalid) and 0x99
 * (Payload format invalid) can never succeed, so the row is dead-lettered;
 * any other code (0x80, 0x83, 0x87 Not authorized, 0x97 Quota exceeded,
 * ...) may pass later (an ACL or a quota changes), so the row keeps its
 * slot and is sent again after a full-jitter backoff of its own (1 s up
 * to 60 s, the reconnection's), while the rest of the window goes on.
 */
#include <sys/random.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "deliver/bridge_int.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "mqtt/codec.h"
#include "mqtt/reason.h"
#include "queue.h"
#include "store/outbox.h"

#define BRIDGE_PREFETCH		64	/* rows read ahead per route */
#define BRIDGE_GAUGE_MS		5000
#define BRIDGE_IDLE_MS		1000	/* longest sleep */
#define BRIDGE_SOON_MS		20	/* results queue full, busy window */
#define BRIDGE_ACK_MIN_MS	10000	/* shortest acknowledgement timeout */

static void	*bridge_main(void *);
static void	 bridge_take_routes(struct bridge *);
static void	 bridge_route_gone(struct bridge *, struct bridge_rt *,
		    struct bridge_rt **, size_t);
static void	 bridge_pump(struct bridge *, struct bridge_rt *, int64_t,
		    int64_t *);
static void	 bridge_rt_free(struct bridge *, struct bridge_rt *);

/* ------------------------------------------------------------------ */
/* Routes on the thread.                                                */

static struct bridge_rt *
bridge_rt_new(struct bridge *b, const struct bridge_route *conf)
{
	struct bridge_tag *t;
	struct bridge_rt *rt;
	size_t i;

	if ((rt = gw_calloc(1, sizeof *rt)) == NULL)
		return NULL;
	if (bridge_route_conf_copy(&rt->conf, conf) != 0)
		goto fail;
	if ((rt->urls = gw_calloc(conf->nurls + 1, sizeof *rt->urls)) == NULL)
		goto fail;
	for (i = 0; i < conf->nurls; i++)
		if ((rt->urls[i] = bridge_link_url(conf->urls[i])) == NULL)
			goto fail;
	rt->bufcap = BRIDGE_PREFETCH;
	if ((rt->buf = gw_calloc(rt->bufcap, sizeof *rt->buf)) == NULL ||
	    (rt->fl = gw_calloc(conf->max_in_flight, sizeof *rt->fl)) == NULL)
		goto fail;
	if ((t = gw_calloc(1, sizeof *t)) == NULL)
		goto fail;
	t->b = b;
	t->capdone = (size_t)conf->max_in_flight * 2 + 16;
	if ((t->done = gw_calloc(t->capdone, sizeof *t->done)) == NULL) {
		gw_free(t);
		goto fail;
	}
	pthread_mutex_lock(&b->mu);
	t->next = b->tags;
	b->tags = t;
	pthread_mutex_unlock(&b->mu);
	rt->ctr = results_ctr_get(&b->ctrs, conf->name, true);
	rt->tag = t;
	if (rt->ctr == NULL)
		goto fail;
	rt->more = true;
	rt->state = BRIDGE_DOWN;
	rt->next_connect = 0;
	return rt;
fail:
	bridge_rt_free(b, rt);
	return NULL;
}

/* Closes the client and frees rt; unacknowledged rows stay stored. */
static void
bridge_rt_free(struct bridge *b, struct bridge_rt *rt)
{
	size_t i;

	if (rt == NULL)
		return;
	bridge_link_close(b, rt);
	if (rt->tag != NULL) {
		/* No more callbacks for it: forget what they said. */
		pthread_mutex_lock(&b->mu);
		rt->tag->ndone = 0;
		rt->tag->ev = BRIDGE_EV_NONE;
		pthread_mutex_unlock(&b->mu);
	}
	results_held_del(&b->held, rt->buf, rt->nbuf);
	for (i = 0; i < rt->nbuf; i++)
		outbox_row_clear(&rt->buf[i]);
	for (i = 0; i < rt->nfl; i++) {
		results_held_del(&b->held, &rt->fl[i].row, 1);
		outbox_row_clear(&rt->fl[i].row);
	}
	if (rt->ctr != NULL) {
		atomic_store(&rt->ctr->in_flight, 0);
		atomic_store(&rt->ctr->state, BRIDGE_DOWN);
	}
	for (i = 0; rt->urls != NULL && i < rt->conf.nurls; i++)
		gw_free(rt->urls[i]);
	gw_free(rt->urls);
	gw_free(rt->buf);
	gw_free(rt->fl);
	bridge_route_conf_free(&rt->conf);
	gw_free(rt);
}

/* Logs what becomes of the rows of old, a route the new table drops. */
static void
bridge_route_gone(struct bridge *b, struct bridge_rt *old,
    struct bridge_rt **next, size_t n)
{
	uint64_t rows = 0;
	int64_t oldest;
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(next[i]->conf.name, old->conf.name) == 0) {
			log_info("bridge: route %s changed: reconnecting; its "
			    "unacknowledged rows are sent again",
			    old->conf.name);
			return;
		}
	}
	(void)outbox_route_depth(b->reader, old->conf.name, &rows, &oldest);
	log_warn("bridge: route %s removed: its %llu row(s) stay in the "
	    "outbox until an mqtt action of that rule comes back",
	    old->conf.name, (unsigned long long)rows);
}

/* Takes a posted route table: keeps unchanged routes, replaces others. */
static void
bridge_take_routes(struct bridge *b)
{
	struct bridge_rt **next, *rt;
	struct bridge_route *t;
	size_t n, i, j, cnt = 0;

	pthread_mutex_lock(&b->mu);
	if (!b->have_pending) {
		pthread_mutex_unlock(&b->mu);
		return;
	}
	t = b->pending;
	n = b->npending;
	b->pending = NULL;
	b->npending = 0;
	b->have_pending = false;
	pthread_mutex_unlock(&b->mu);

	if ((next = gw_calloc(n + 1, sizeof *next)) == NULL) {
		log_error("bridge: out of memory: routes not reloaded");
		bridge_routes_free(t, n);
		return;
	}
	for (i = 0; i < n; i++) {
		rt = NULL;
		for (j = 0; j < b->nroutes; j++) {
			if (b->routes[j] != NULL &&
			    bridge_route_conf_eq(&b->routes[j]->conf, &t[i])) {
				rt = b->routes[j];
				b->routes[j] = NULL;
				break;
			}
		}
		if (rt == NULL && (rt = bridge_rt_new(b, &t[i])) == NULL) {
			log_error("bridge: out of memory: route %s not "
			    "started", t[i].name);
			continue;
		}
		next[cnt++] = rt;
	}
	for (j = 0; j < b->nroutes; j++) {
		if (b->routes[j] == NULL)
			continue;
		bridge_route_gone(b, b->routes[j], next, cnt);
		bridge_rt_free(b, b->routes[j]);
	}
	gw_free(b->routes);
	b->routes = next;
	b->nroutes = cnt;
	bridge_routes_free(t, n);
}

/*
 * Refreshes depth and oldest-row gauges of every route ever configured,
 * so the rows of a route a reload removed stay visible. The counters are
 * only ever added by this thread.
 */
static void
bridge_gauges(struct bridge *b)
{
	struct results_ctr *c;
	uint64_t rows;
	int64_t oldest;

	for (c = b->ctrs.head; c != NULL; c = c->next) {
		if (outbox_route_depth(b->reader, c->name, &rows,
		    &oldest) != 0)
			continue;
		atomic_store(&c->depth, rows);
		atomic_store(&c->oldest_ms, oldest);
	}
}

/* ------------------------------------------------------------------ */
/* Events and the pump.                                                 */

static void
set_state(struct bridge_rt *rt, enum bridge_state st)
{
	rt->state = st;
	atomic_store(&rt->ctr->state, (int)st);
}

/* Schedules the next connection attempt after a failure. */
static void
go_down(struct bridge *b, struct bridge_rt *rt, int64_t now)
{
	int64_t d = bridge_reconnect_delay(&b->rng, rt->failures);

	rt->failures++;
	rt->next_connect = now + d;
	set_state(rt, BRIDGE_DOWN);
}

/*
 * After a lost connection: the client goes (a new one connects), and
 * every unacknowledged row of the window is sent again, in order, once
 * the route is up. Completions the old client reported and that were not
 * read yet are forgotten: its tokens mean nothing to the new one.
 */
static void
bridge_lost(struct bridge *b, struct bridge_rt *rt)
{
	size_t i;

	bridge_link_close(b, rt);
	rt->connected_once = false;
	pthread_mutex_lock(&b->mu);
	rt->tag->ndone = 0;
	rt->tag->lostdone = 0;
	pthread_mutex_unlock(&b->mu);
	for (i = 0; i < rt->nfl; i++) {
		if (!rt->fl[i].acked && rt->fl[i].sent) {
			rt->fl[i].sent = false;
			rt->fl[i].resend = true;
		}
	}
}

/* Upstream refused row f with 5.0 reason code rc (>= 0x80). */
static void
bridge_refused(struct bridge *b, struct bridge_rt *rt, struct bridge_fl *f,
    uint8_t rc, int64_t now)
{
	char why[96];
	int64_t d;

	snprintf(why, sizeof why, "refused upstream: %s (0x%02x)",
	    reason_name(rc, CODEC_PUBACK), rc);
	if (rc == REASON_TOPIC_NAME_INVALID ||
	    rc == REASON_PAYLOAD_FORMAT_INVALID) {
		if (log_ratelimited(&rt->loglim, 5, 60000))
			log_warn("bridge: route %s: row %lld %s: dead letter",
			    rt->conf.name, (long long)f->row.id, why);
		atomic_fetch_add(&rt->ctr->dead, 1);
		f->deleted = !bridge_push(b, f->row.id, OUTBOX_FAIL, why);
		f->acked = true;
		return;
	}
	d = bridge_reconnect_delay(&b->rng, f->refusals);
	f->refusals++;
	f->sent = false;
	f->resend = true;
	f->not_before = now + d;
	if (log_ratelimited(&rt->loglim, 5, 60000))
		log_warn("bridge: route %s: row %lld %s; sent again in %lld ms",
		    rt->conf.name, (long long)f->row.id, why, (long long)d);
}

/* Applies what the callbacks recorded for rt. */
static void
bridge_events(struct bridge *b, struct bridge_rt *rt, int64_t now)
{
	struct bridge_tag *t = rt->tag;
	struct bridge_done done[256];
	enum bridge_conn_ev ev;
	char text[128];
	size_t nd, i, k, lost;
	bool again = true;

	while (again) {
		pthread_mutex_lock(&b->mu);
		ev = t->ev;
		t->ev = BRIDGE_EV_NONE;
		memcpy(text, t->ev_text, sizeof text);
		nd = t->ndone < 256 ? t->ndone : 256;
		memcpy(done, t->done, nd * sizeof *done);
		memmove(t->done, t->done + nd, (t->ndone - nd) *
		    sizeof *t->done);
		t->ndone -= nd;
		again = t->ndone > 0;
		lost = t->lostdone;
		t->lostdone = 0;
		pthread_mutex_unlock(&b->mu);

		if (lost > 0)
			log_error("bridge: route %s: %zu completion(s) did not "
			    "fit; those rows are sent again after a restart",
			    rt->conf.name, lost);
		for (i = 0; i < nd; i++) {
			for (k = 0; k < rt->nfl; k++)
				if (rt->fl[k].sent && !rt->fl[k].acked &&
				    rt->fl[k].token == done[i].token)
					break;
			if (k == rt->nfl)
				continue;
			if (done[i].ok) {
				rt->fl[k].acked = true;
				atomic_fetch_add(&rt->ctr->delivered, 1);
				rt->fl[k].deleted = !bridge_push(b,
				    rt->fl[k].row.id, OUTBOX_OK, NULL);
			} else if (done[i].reason >= 0x80)
				bridge_refused(b, rt, &rt->fl[k],
				    done[i].reason, now);
			else {
				rt->fl[k].sent = false;
				rt->fl[k].resend = true;
			}
		}
		switch (ev) {
		case BRIDGE_EV_CONNECTED:
			log_info("bridge: route %s: connected to %s",
			    rt->conf.name, text);
			rt->failures = 0;
			rt->connected_once = true;
			atomic_fetch_add(&rt->ctr->connects, 1);
			set_state(rt, BRIDGE_UP);
			break;
		case BRIDGE_EV_FAILED:
			if (rt->failures == 0)
				log_warn("bridge: route %s: cannot connect: "
				    "%s; retrying with backoff", rt->conf.name,
				    text);
			go_down(b, rt, now);
			break;
		case BRIDGE_EV_LOST:
			log_warn("bridge: route %s: connection lost: %s",
			    rt->conf.name, text);
			go_down(b, rt, now);
			bridge_lost(b, rt);
			again = false;
			break;
		default:
			break;
		}
	}
	/* Rows whose delete is committed leave the window from its head. */
	for (k = 0; k < rt->nfl && rt->fl[k].deleted; k++) {
		results_held_del(&b->held, &rt->fl[k].row, 1);
		outbox_row_clear(&rt->fl[k].row);
	}
	if (k > 0) {
		memmove(rt->fl, rt->fl + k, (rt->nfl - k) * sizeof *rt->fl);
		rt->nfl -= k;
		memset(rt->fl + rt->nfl, 0, k * sizeof *rt->fl);
	}
	k = 0;
	for (i = 0; i < rt->nfl; i++)
		k += !rt->fl[i].acked;
	atomic_store(&rt->ctr->in_flight, (uint32_t)k);
}

static int
id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Marks the window's rows among the n sorted ids of b->seen deleted. */
static void
bridge_gone(struct bridge *b, struct bridge_rt *rt, size_t n)
{
	size_t k;

	for (k = 0; k < rt->nfl; k++)
		if (rt->fl[k].acked && !rt->fl[k].deleted &&
		    bsearch(&rt->fl[k].row.id, b->seen, n, sizeof *b->seen,
		    id_cmp) != NULL)
			rt->fl[k].deleted = true;
}

/* Reads rows above the cursor. 0, GW_ERETRY (a drop pass overlapped). */
static int
bridge_claim(struct bridge *b, struct bridge_rt *rt, int64_t now_wall)
{
	size_t want = rt->bufcap - rt->nbuf, got, i;
	uint64_t seq;
	int rc;

	if (want == 0)
		return 0;
	seq = results_held_seq(&b->held);
	rc = outbox_claim_due(b->reader, rt->conf.name, rt->cursor, now_wall,
	    want, rt->buf + rt->nbuf, &got, NULL);
	if (rc != 0)
		return rc;
	if (got > 0)
		results_held_add(&b->held, rt->buf + rt->nbuf, got);
	if (got > 0 && results_held_raced(&b->held, seq)) {
		results_held_del(&b->held, rt->buf + rt->nbuf, got);
		for (i = 0; i < got; i++)
			outbox_row_clear(&rt->buf[rt->nbuf + i]);
		return GW_ERETRY;
	}
	for (i = 0; i < got; i++)
		rt->cursor = rt->buf[rt->nbuf++].id;
	if (rt->nbuf < rt->bufcap)
		rt->more = false;
	return 0;
}

/* Sends window entry f; false when the route must stop for now. */
static bool
bridge_send(struct bridge *b, struct bridge_rt *rt, struct bridge_fl *f)
{
	int64_t now_wall = clock_wall_ms();
	int rc;

	if (f->row.expire_ms != 0 && now_wall >= f->row.expire_ms) {
		/* Its Message Expiry passed while it waited: not sent. */
		if (log_ratelimited(&rt->loglim, 5, 60000))
			log_info("bridge: route %s: row %lld expired before "
			    "it could be sent: dropped", rt->conf.name,
			    (long long)f->row.id);
		atomic_fetch_add(&rt->ctr->expired, 1);
		f->deleted = !bridge_push(b, f->row.id, OUTBOX_OK, NULL);
		f->acked = true;
		return true;
	}
	rc = bridge_link_send(b, rt, f, now_wall);

	if (rc == 0) {
		f->sent = true;
		f->sent_ms = clock_mono_ms();
		atomic_fetch_add(&rt->ctr->sent, 1);
		if (f->resend)
			atomic_fetch_add(&rt->ctr->retried, 1);
		f->resend = true;
		return true;
	}
	if (rc == GW_EMALFORMED) {
		/* Can never go: dead letter, and it leaves the window. */
		if (log_ratelimited(&rt->loglim, 5, 60000))
			log_warn("bridge: route %s: row %lld cannot be sent "
			    "(topic or secret): dead letter", rt->conf.name,
			    (long long)f->row.id);
		atomic_fetch_add(&rt->ctr->dead, 1);
		f->deleted = !bridge_push(b, f->row.id, OUTBOX_FAIL,
		    "cannot be published upstream");
		f->acked = true;
		return true;
	}
	return false;
}

/* How long a sent row may wait for its acknowledgement: 2 keepalives. */
static int64_t
bridge_ack_timeout(const struct bridge_rt *rt)
{
	int64_t ms = (int64_t)rt->conf.keepalive * 2000;

	return ms > BRIDGE_ACK_MIN_MS ? ms : BRIDGE_ACK_MIN_MS;
}

/* True when the oldest unacknowledged row sent has waited too long. */
static bool
bridge_ack_overdue(const struct bridge_rt *rt, int64_t now)
{
	size_t i;

	for (i = 0; i < rt->nfl; i++) {
		if (rt->fl[i].acked || !rt->fl[i].sent)
			continue;
		return now - rt->fl[i].sent_ms > bridge_ack_timeout(rt);
	}
	return false;
}

/* Moves the route forward; lowers *wake (mono ms) to its next deadline. */
static void
bridge_pump(struct bridge *b, struct bridge_rt *rt, int64_t now,
    int64_t *wake)
{
	struct bridge_fl *f;
	size_t i;
	int rc;

	if (rt->state == BRIDGE_DOWN) {
		if (now < rt->next_connect) {
			if (rt->next_connect < *wake)
				*wake = rt->next_connect;
			return;
		}
		if (bridge_link_connect(b, rt) != 0) {
			go_down(b, rt, now);
			if (rt->next_connect < *wake)
				*wake = rt->next_connect;
			return;
		}
		set_state(rt, BRIDGE_CONNECTING);
		return;
	}
	if (rt->state != BRIDGE_UP)
		return;
	if (bridge_ack_overdue(rt, now)) {
		/*
		 * A connection that stays up but acknowledges nothing (a
		 * broker that stopped serving it) is treated as lost: a new
		 * one sends the window again.
		 */
		log_warn("bridge: route %s: no acknowledgement for %lld s: "
		    "reconnecting", rt->conf.name,
		    (long long)(bridge_ack_timeout(rt) / 1000));
		go_down(b, rt, now);
		bridge_lost(b, rt);
		if (rt->next_connect < *wake)
			*wake = rt->next_connect;
		return;
	}
	/* What failed goes again first, in order (refused: once due). */
	for (i = 0; i < rt->nfl; i++) {
		f = &rt->fl[i];
		if (!f->sent && !f->acked && f->not_before > now) {
			if (f->not_before < *wake)
				*wake = f->not_before;
			continue;
		}
		if (!f->sent && !f->acked && !bridge_send(b, rt, f)) {
			*wake = now + BRIDGE_SOON_MS < *wake ?
			    now + BRIDGE_SOON_MS : *wake;
			return;
		}
	}
	while (rt->nfl < rt->conf.max_in_flight) {
		if (rt->nbuf == 0 && rt->more) {
			rc = bridge_claim(b, rt, clock_wall_ms());
			if (rc != 0) {
				if (now + BRIDGE_SOON_MS < *wake)
					*wake = now + BRIDGE_SOON_MS;
				return;
			}
		}
		if (rt->nbuf == 0)
			return;
		f = &rt->fl[rt->nfl++];
		memset(f, 0, sizeof *f);
		f->row = rt->buf[0];
		memmove(rt->buf, rt->buf + 1, (rt->nbuf - 1) * sizeof *rt->buf);
		rt->nbuf--;
		memset(&rt->buf[rt->nbuf], 0, sizeof *rt->buf);
		if (!bridge_send(b, rt, f)) {
			if (now + BRIDGE_SOON_MS < *wake)
				*wake = now + BRIDGE_SOON_MS;
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The thread and the public calls.                                    */

static void
bridge_wait(struct bridge *b, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->woken && !b->stop && !b->have_pending) {
		/* A callback may have recorded something meanwhile. */
		struct bridge_tag *t;
		bool any;

		any = b->ngone > 0;
		for (t = b->tags; t != NULL && !any; t = t->next)
			any = t->ev != BRIDGE_EV_NONE || t->ndone > 0;
		if (any || pthread_cond_timedwait(&b->cond, &b->mu, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&b->mu);
}

static bool
bridge_busy(struct bridge *b)
{
	size_t i, k;

	for (i = 0; i < b->nroutes; i++)
		for (k = 0; k < b->routes[i]->nfl; k++)
			if (b->routes[i]->state == BRIDGE_UP &&
			    !b->routes[i]->fl[k].acked)
				return true;
	return false;
}

static void *
bridge_main(void *arg)
{
	struct bridge *b = arg;
	int64_t now, wake, stop_at = 0;
	bool stopping = false, woken, stop;
	size_t i, ngone;

	b->reader = outbox_reader_open(b->db_path);
	pthread_mutex_lock(&b->mu);
	b->start_rc = b->reader != NULL ? 0 : GW_EIO;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->mu);
	if (b->reader == NULL)
		return NULL;
	b->instance_id = outbox_reader_instance_id(b->reader);
	for (;;) {
		pthread_mutex_lock(&b->mu);
		woken = b->woken;
		b->woken = false;
		stop = b->stop;
		pthread_mutex_unlock(&b->mu);
		now = clock_mono_ms();
		if (stop && !stopping) {
			stopping = true;
			stop_at = now + b->grace_ms;
		}
		if (!stopping)
			bridge_take_routes(b);
		ngone = bridge_take_gone(b);
		for (i = 0; i < b->nroutes; i++) {
			if (ngone > 0)
				bridge_gone(b, b->routes[i], ngone);
			if (woken)
				b->routes[i]->more = true;
			bridge_events(b, b->routes[i], now);
		}
		if (stopping && (!bridge_busy(b) || now >= stop_at)) {
			results_flush(&b->res);
			break;
		}
		if (!stopping && now >= b->gauge_next) {
			bridge_gauges(b);
			b->gauge_next = now + BRIDGE_GAUGE_MS;
			/* A safety net: look for rows even without a wake. */
			for (i = 0; i < b->nroutes; i++)
				b->routes[i]->more = true;
		}
		wake = now + BRIDGE_IDLE_MS;
		for (i = 0; i < b->nroutes && !stopping; i++)
			bridge_pump(b, b->routes[i], now, &wake);
		results_flush(&b->res);
		if (results_waiting(&b->res) > 0 && now + BRIDGE_SOON_MS < wake)
			wake = now + BRIDGE_SOON_MS;
		if (stopping && now + 20 < wake)
			wake = now + 20;
		if (wake > now)
			bridge_wait(b, wake - now);
	}
	for (i = 0; i < b->nroutes; i++)
		bridge_rt_free(b, b->routes[i]);
	gw_free(b->routes);
	b->routes = NULL;
	b->nroutes = 0;
	results_discard(&b->res, "bridge");
	outbox_reader_close(b->reader);
	return NULL;
}

/* See bridge.h. Any thread unless it says otherwise. */
struct bridge *
bridge_start(const struct bridge_opts *opts, struct gw_error *err)
{
	pthread_condattr_t ca;
	struct bridge *b;
	uint64_t seed = opts->seed;
	int rc;

	if (opts->db_path == NULL || opts->results == NULL) {
		gw_error_set(err, "bridge", "no database or results queue");
		return NULL;
	}
	if ((b = gw_calloc(1, sizeof *b)) == NULL) {
		gw_error_set(err, "bridge", "out of memory");
		return NULL;
	}
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	results_init(&b->res, opts->results, opts->results_cb,
	    opts->results_ctx);
	results_held_init(&b->held);
	results_ctrs_init(&b->ctrs);
	if (seed == 0 && getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)clock_wall_ms() ^ (uint64_t)(uintptr_t)b;
	b->rng = seed;
	if ((b->api = mqtt_shim_api()) == NULL) {
		gw_error_set(err, "bridge", "cannot load Eclipse Paho C "
		    "(libpaho-mqtt3as.so.1)");
		goto fail;
	}
	if ((b->db_path = gw_strdup(opts->db_path)) == NULL) {
		gw_error_set(err, "bridge", "out of memory");
		goto fail;
	}
	if ((rc = bridge_routes_copy(opts->routes, opts->nroutes,
	    &b->pending)) != 0) {
		gw_error_set(err, "bridge", "%s", rc == GW_ECONFIG ?
		    "route names must be unique and not empty" :
		    "out of memory");
		goto fail;
	}
	b->npending = opts->nroutes;
	b->have_pending = true;
	b->start_rc = 1;
	if (pthread_create(&b->thread, NULL, bridge_main, b) != 0) {
		gw_error_set(err, "bridge", "cannot start the thread");
		goto fail;
	}
	pthread_mutex_lock(&b->mu);
	while (b->start_rc == 1)
		pthread_cond_wait(&b->cond, &b->mu);
	rc = b->start_rc;
	pthread_mutex_unlock(&b->mu);
	if (rc != 0) {
		pthread_join(b->thread, NULL);
		gw_error_set(err, "bridge", "cannot open %s for reading",
		    opts->db_path);
		goto fail;
	}
	return b;
fail:
	bridge_routes_free(b->pending, b->npending);
	gw_free(b->db_path);
	results_ctrs_destroy(&b->ctrs);
	results_held_destroy(&b->held);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->mu);
	gw_free(b);
	return NULL;
}

/* See bridge.h. Any thread unless it says otherwise. */
void
bridge_wake(struct bridge *b)
{
	pthread_mutex_lock(&b->mu);
	b->woken = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->mu);
}

/* See bridge.h. Any thread unless it says otherwise. */
int
bridge_update_routes(struct bridge *b, const struct bridge_route *routes,
    size_t n)
{
	struct bridge_route *t, *old = NULL;
	size_t nold = 0;
	int rc;

	if ((rc = bridge_routes_copy(routes, n, &t)) != 0)
		return rc;
	pthread_mutex_lock(&b->mu);
	if (b->have_pending) {
		old = b->pending;
		nold = b->npending;
	}
	b->pending = t;
	b->npending = n;
	b->have_pending = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->mu);
	bridge_routes_free(old, nold);
	return 0;
}

/* See bridge.h. Any thread unless it says otherwise. */
void
bridge_stop(struct bridge *b, uint32_t grace_ms)
{
	struct bridge_tag *t, *tn;

	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->grace_ms = grace_ms;
	b->stop = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	bridge_routes_free(b->pending, b->have_pending ? b->npending : 0);
	for (t = b->tags; t != NULL; t = tn) {
		tn = t->next;
		gw_free(t->done);
		gw_free(t);
	}
	results_ctrs_destroy(&b->ctrs);
	results_held_destroy(&b->held);
	gw_free(b->await);
	gw_free(b->gone);
	gw_free(b->seen);
	gw_free(b->db_path);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->mu);
	gw_free(b);
}
