/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The delivery thread; see loop.h for the contract.
 *
 * DESIGN
 *
 * One thread, one curl multi handle, one read-only SQLite connection. The
 * thread sleeps in curl_multi_poll() with a timeout set by the earliest of
 * its own deadlines (a held request's next_ms, a batch's max_delay, a rate
 * limiter's next token, the gauge refresh) and libcurl's; deliver_wake()
 * sets a flag and calls curl_multi_wakeup(), the only multi call that is
 * safe from another thread.
 *
 * Each iteration: perform transfers, turn finished ones into results, take
 * a new route table if one was posted, then "pump" every route: resend a
 * held request whose time has come, else read more rows above the cursor
 * (a few dozen at a time, a read-ahead buffer), form the next request from
 * the head of the buffer and start it, while the route has room (ordered:
 * nothing in flight or held; unordered: in flight + held < max_in_flight)
 * and its token bucket allows.
 *
 * A claim that finds no due row but a row scheduled later (after a restart,
 * the retry state comes from the database) turns that row into a held
 * request and moves the cursor past it, so an ordered route waits for it
 * and an unordered route keeps going around it.
 *
 * Counters move before the results are pushed, so whoever sees a result
 * applied sees it counted. Results are pushed to the results queue one per
 * row; if the queue is full they wait in a local list that is retried
 * every iteration (the thread then polls at a short interval), so push
 * never blocks and no result is lost while the thread runs.
 *
 * The held-id set (read-ahead, in flight, held) is the only state shared
 * with another thread: a mutex-guarded array the store thread copies for
 * outbox_enforce_cap(). Counters are atomics in entries that live as long
 * as the handle, so a reload never invalidates them.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "clock.h"
#include "deliver/backoff.h"
#include "deliver/loop.h"
#include "deliver/loop_int.h"
#include "deliver/webhook.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "store/outbox.h"

#define DELIVER_PREFETCH	32		/* rows read ahead per route */
#define DELIVER_PREFETCH_BYTES	(4u << 20)	/* ... at most this much */
#define DELIVER_GAUGE_MS	5000
#define DELIVER_IDLE_MS		5000		/* longest sleep */
#define DELIVER_PUSH_RETRY_MS	20		/* results queue full */
#define DELIVER_NOMEM_MS	1000		/* retry after ENOMEM */
#define DELIVER_RACE_MS		5		/* read again after a drop */

static void	*deliver_main(void *);
static void	 deliver_take_routes(struct deliver *);
static struct deliver_route_st *deliver_route_new(struct deliver *,
		    const struct deliver_route *);
static void	 deliver_route_free(struct deliver *,
		    struct deliver_route_st *);
static void	 deliver_pump(struct deliver *, struct deliver_route_st *,
		    int64_t, int64_t *);
static int	 deliver_claim(struct deliver *, struct deliver_route_st *,
		    int64_t);
static void	 deliver_dispatch(struct deliver *, struct deliver_req *,
		    int64_t);
static void	 deliver_finish(struct deliver *, CURL *, CURLcode);
static bool	 deliver_token(struct deliver_route_st *, int64_t,
		    int64_t *);
static void	 deliver_gauges(struct deliver *);
static void	 deliver_follow_db(struct deliver *);
static void	 deliver_report_unrouted(struct deliver *);
static void	 deliver_route_retire(struct deliver *,
		    struct deliver_route_st *);
static struct deliver_req *deliver_take_rows(struct deliver_route_st *,
		    size_t);
static size_t	 deliver_batch_len(struct deliver_route_st *);
static void	 deliver_teardown(struct deliver *);
static void	 deliver_unrouted_cb(const char *, void *);

/* ------------------------------------------------------------------ */
/* Route tables.                                                        */

/* ------------------------------------------------------------------ */
/* Public calls.                                                        */

/* Starts the thread; see loop.h. */
struct deliver *
deliver_start(const struct deliver_opts *opts, struct gw_error *err)
{
	struct deliver *d;
	uint64_t seed = opts->seed;
	int rc;

	if (opts->db_path == NULL || opts->results == NULL) {
		gw_error_set(err, "deliver", "no database or results queue");
		return NULL;
	}
	if ((d = gw_calloc(1, sizeof *d)) == NULL) {
		gw_error_set(err, "deliver", "out of memory");
		return NULL;
	}
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cond, NULL);
	results_init(&d->res, opts->results, opts->results_cb,
	    opts->results_ctx);
	results_held_init(&d->held);
	results_ctrs_init(&d->ctrs);
	d->prefetch = opts->prefetch != 0 ? opts->prefetch : DELIVER_PREFETCH;
	d->gauge_ms = opts->gauge_ms != 0 ? opts->gauge_ms : DELIVER_GAUGE_MS;
	if (seed == 0 && getrandom(&seed, sizeof seed, 0) != sizeof seed)
		seed = (uint64_t)clock_wall_ms() ^ (uint64_t)(uintptr_t)d;
	backoff_seed(&d->rng, seed);
	if ((d->db_path = gw_strdup(opts->db_path)) == NULL) {
		gw_error_set(err, "deliver", "out of memory");
		goto fail;
	}
	if ((rc = deliver_copy_routes(opts->routes, opts->nroutes,
	    &d->pending)) != 0) {
		gw_error_set(err, "deliver", "%s", rc == GW_ECONFIG ?
		    "route names must be unique and not empty" :
		    "out of memory");
		goto fail;
	}
	d->npending = opts->nroutes;
	d->have_pending = true;
	if ((d->multi = curl_multi_init()) == NULL) {
		gw_error_set(err, "deliver", "curl_multi_init failed");
		goto fail;
	}
	d->start_rc = 1;
	if (pthread_create(&d->thread, NULL, deliver_main, d) != 0) {
		gw_error_set(err, "deliver", "cannot start the thread");
		goto fail;
	}
	pthread_mutex_lock(&d->mu);
	while (d->start_rc == 1)
		pthread_cond_wait(&d->cond, &d->mu);
	rc = d->start_rc;
	pthread_mutex_unlock(&d->mu);
	if (rc != 0) {
		pthread_join(d->thread, NULL);
		gw_error_set(err, "deliver", "cannot open %s for reading",
		    opts->db_path);
		goto fail;
	}
	return d;

fail:
	if (d->multi != NULL)
		curl_multi_cleanup(d->multi);
	deliver_free_routes(d->pending, d->npending);
	gw_free(d->db_path);
	results_ctrs_destroy(&d->ctrs);
	results_held_destroy(&d->held);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
	gw_free(d);
	return NULL;
}

/* New rows committed. Any thread. */
void
deliver_wake(struct deliver *d)
{
	atomic_store(&d->woken, true);
	curl_multi_wakeup(d->multi);
}

/* Posts a new route table. Any thread. */
int
deliver_update_routes(struct deliver *d, const struct deliver_route *routes,
    size_t n)
{
	struct deliver_route *t, *old = NULL;
	size_t nold = 0;
	int rc;

	if ((rc = deliver_copy_routes(routes, n, &t)) != 0)
		return rc;
	pthread_mutex_lock(&d->mu);
	if (d->have_pending) {
		old = d->pending;
		nold = d->npending;
	}
	d->pending = t;
	d->npending = n;
	d->have_pending = true;
	pthread_mutex_unlock(&d->mu);
	deliver_free_routes(old, nold);
	curl_multi_wakeup(d->multi);
	return 0;
}

/* Stops, joins and frees. Caller's thread. */
void
deliver_stop(struct deliver *d, uint32_t grace_ms)
{
	if (d == NULL)
		return;
	atomic_store(&d->grace_ms, grace_ms);
	atomic_store(&d->stop, true);
	curl_multi_wakeup(d->multi);
	pthread_join(d->thread, NULL);
	curl_multi_cleanup(d->multi);
	deliver_free_routes(d->pending, d->have_pending ? d->npending : 0);
	results_ctrs_destroy(&d->ctrs);
	results_held_destroy(&d->held);
	gw_free(d->db_path);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->mu);
	gw_free(d);
}

/* ------------------------------------------------------------------ */
/* Routes on the thread.                                                */

static struct deliver_route_st *
deliver_route_new(struct deliver *d, const struct deliver_route *conf)
{
	struct deliver_route_st *r;

	if ((r = gw_calloc(1, sizeof *r)) == NULL)
		return NULL;
	if (deliver_route_copy(&r->conf, conf) != 0 ||
	    (r->ctr = results_ctr_get(&d->ctrs, conf->name, true)) == NULL)
		goto fail;
	r->bufcap = d->prefetch;
	if (r->bufcap < r->conf.batch.max_messages)
		r->bufcap = r->conf.batch.max_messages;
	if ((r->buf = gw_calloc(r->bufcap, sizeof *r->buf)) == NULL)
		goto fail;
	r->more = true;
	r->tokens = 1;
	r->tb_ms = clock_mono_ms();
	return r;
fail:
	deliver_route_conf_free(&r->conf);
	gw_free(r);
	return NULL;
}

/* Frees a route that has nothing in flight; its rows stay in the outbox. */
static void
deliver_route_free(struct deliver *d, struct deliver_route_st *r)
{
	struct deliver_req *req;
	size_t i;

	results_held_del(&d->held, r->buf, r->nbuf);
	for (i = 0; i < r->nbuf; i++)
		outbox_row_clear(&r->buf[i]);
	while ((req = r->held) != NULL) {
		r->held = req->next;
		deliver_req_free(d, req, true);
	}
	gw_free(r->buf);
	deliver_route_conf_free(&r->conf);
	gw_free(r);
}

/* Takes a posted route table: keeps state by name, retires the rest. */
static void
deliver_take_routes(struct deliver *d)
{
	struct deliver_route_st **next, *r;
	struct deliver_route *t;
	struct outbox_row *nb;
	size_t n, i, j, cnt = 0, bufcap;

	pthread_mutex_lock(&d->mu);
	if (!d->have_pending) {
		pthread_mutex_unlock(&d->mu);
		return;
	}
	t = d->pending;
	n = d->npending;
	d->pending = NULL;
	d->npending = 0;
	d->have_pending = false;
	pthread_mutex_unlock(&d->mu);

	if ((next = gw_calloc(n + d->nroutes + 1, sizeof *next)) == NULL) {
		log_error("deliver: out of memory: route table not reloaded");
		deliver_free_routes(t, n);
		return;
	}
	for (i = 0; i < n; i++) {
		r = NULL;
		for (j = 0; j < d->nroutes; j++) {
			/* A retired route still finishing is revived, so
			 * its rows in flight are not read again. */
			if (d->routes[j] != NULL &&
			    d->routes[j]->conf.name != NULL &&
			    strcmp(d->routes[j]->conf.name, t[i].name) == 0) {
				r = d->routes[j];
				d->routes[j] = NULL;
				r->gone = false;
				break;
			}
		}
		if (r == NULL) {
			if ((r = deliver_route_new(d, &t[i])) == NULL) {
				log_error("deliver: out of memory: route %s "
				    "not started", t[i].name);
				continue;
			}
			next[cnt++] = r;
			continue;
		}
		/* Same route: new settings, same cursor and held rows. */
		bufcap = d->prefetch > t[i].batch.max_messages ?
		    d->prefetch : t[i].batch.max_messages;
		if (bufcap > r->bufcap && (nb = gw_realloc(r->buf,
		    bufcap * sizeof *nb)) != NULL) {
			memset(nb + r->bufcap, 0,
			    (bufcap - r->bufcap) * sizeof *nb);
			r->buf = nb;
			r->bufcap = bufcap;
		}
		deliver_route_conf_free(&r->conf);
		if (deliver_route_copy(&r->conf, &t[i]) != 0) {
			log_error("deliver: out of memory: route %s "
			    "stopped", t[i].name);
			r->gone = true;
		} else {
			if (r->conf.batch.max_messages > r->bufcap)
				r->conf.batch.max_messages =
				    (uint32_t)r->bufcap;
			r->more = true;
		}
		next[cnt++] = r;
	}
	/* What is left of the old table was removed by the reload. */
	for (j = 0; j < d->nroutes; j++) {
		if ((r = d->routes[j]) == NULL)
			continue;
		if (!r->gone)
			log_info("deliver: route %s removed; its rows stay in "
			    "the outbox", r->conf.name);
		r->gone = true;
		next[cnt++] = r;
	}
	gw_free(d->routes);
	d->routes = next;
	d->nroutes = cnt;
	deliver_free_routes(t, n);
	/* Idle retired routes go now; busy ones when they finish. */
	for (i = 0; i < d->nroutes; ) {
		r = d->routes[i];
		if (r->gone && r->inflight == 0)
			deliver_route_retire(d, r);
		else
			i++;
	}
	deliver_report_unrouted(d);
}

/* Logs routes that have rows in the outbox but no configuration. */
static void
deliver_unrouted_cb(const char *route, void *arg)
{
	struct deliver *d = arg;
	uint64_t rows;
	int64_t oldest;
	size_t i;

	for (i = 0; i < d->nroutes; i++)
		if (!d->routes[i]->gone &&
		    strcmp(d->routes[i]->conf.name, route) == 0)
			return;
	if (outbox_route_depth(d->reader, route, &rows, &oldest) == 0)
		log_warn("deliver: route %s is not configured: its %llu "
		    "row(s) stay in the outbox, unsent", route,
		    (unsigned long long)rows);
}

static void
deliver_report_unrouted(struct deliver *d)
{
	outbox_routes(d->reader, deliver_unrouted_cb, d);
}

/* Refreshes depth and oldest-row gauges. */
static void
deliver_gauges(struct deliver *d)
{
	struct deliver_route_st *r;
	uint64_t rows;
	int64_t oldest;
	size_t i;

	for (i = 0; i < d->nroutes; i++) {
		r = d->routes[i];
		if (r->gone || outbox_route_depth(d->reader, r->conf.name,
		    &rows, &oldest) != 0)
			continue;
		atomic_store(&r->ctr->depth, rows);
		atomic_store(&r->ctr->oldest_ms, oldest);
	}
}

/* Takes a token if the route's rate allows; else *wake_ms says when. */
static bool
deliver_token(struct deliver_route_st *r, int64_t now_wall, int64_t *wake)
{
	double rate = r->conf.rate_limit_per_s, burst;
	long long now = clock_mono_ms();
	int64_t wait;

	if (rate <= 0)
		return true;
	burst = rate / 10 > 1 ? rate / 10 : 1;
	r->tokens += (double)(now - r->tb_ms) * rate / 1000.0;
	r->tb_ms = now;
	if (r->tokens > burst)
		r->tokens = burst;
	if (r->tokens >= 1) {
		r->tokens -= 1;
		return true;
	}
	wait = (int64_t)((1 - r->tokens) * 1000.0 / rate) + 1;
	if (now_wall + wait < *wake)
		*wake = now_wall + wait;
	return false;
}

/*
 * Whether rows read since drop_seq was seq may have been deleted by the
 * store's drop_oldest pass (one ran or began meanwhile). The caller has
 * added them to the held-id set already, so a pass that starts later
 * skips them.
 */
static bool
deliver_claim_raced(struct deliver *d, uint64_t seq)
{
	return results_held_raced(&d->held, seq);
}

/*
 * Reads rows above the cursor into the buffer. A first row that is not
 * due becomes a held request. Returns 0, GW_ERETRY (a drop pass of the
 * store overlapped the read: nothing taken, read again shortly) or an
 * error (logged).
 */
static int
deliver_claim(struct deliver *d, struct deliver_route_st *r, int64_t now)
{
	struct outbox_row blocked;
	struct deliver_req *req;
	size_t want, got, i;
	uint64_t seq;
	int rc;

	want = r->bufcap - r->nbuf;
	if (want == 0 || r->bufbytes >= DELIVER_PREFETCH_BYTES)
		return 0;
	seq = results_held_seq(&d->held);
	rc = outbox_claim_due(d->reader, r->conf.name, r->cursor, now, want,
	    r->buf + r->nbuf, &got, &blocked);
	if (rc != 0)
		return rc;
	if (got > 0)
		results_held_add(&d->held, r->buf + r->nbuf, got);
	else if (blocked.id != 0)
		results_held_add(&d->held, &blocked, 1);
	if ((got > 0 || blocked.id != 0) && deliver_claim_raced(d, seq)) {
		if (got > 0)
			results_held_del(&d->held, r->buf + r->nbuf, got);
		else
			results_held_del(&d->held, &blocked, 1);
		for (i = 0; i < got; i++)
			outbox_row_clear(&r->buf[r->nbuf + i]);
		outbox_row_clear(&blocked);
		return GW_ERETRY;
	}
	if (got > 0) {
		for (; got > 0; got--) {
			r->bufbytes += r->buf[r->nbuf].bytes;
			r->cursor = r->buf[r->nbuf++].id;
		}
		/* A later row not due yet is read again after these. */
		if (blocked.id == 0 && r->nbuf < r->bufcap)
			r->more = false;
		outbox_row_clear(&blocked);
		return 0;
	}
	if (blocked.id == 0) {
		r->more = false;
		return 0;
	}
	/* Scheduled in the database (a retry before a restart): hold it. */
	if ((req = gw_calloc(1, sizeof *req)) == NULL ||
	    (req->rows = gw_malloc(sizeof *req->rows)) == NULL) {
		gw_free(req);
		outbox_row_clear(&blocked);
		return GW_ENOMEM;
	}
	req->route = r;
	req->rows[0] = blocked;
	req->n = 1;
	req->attempts = blocked.attempts;
	req->next_ms = blocked.next_ms;
	r->cursor = blocked.id;
	deliver_hold(r, req);
	return 0;
}

/* Starts req (or dead-letters it when it can never be sent). */
static void
deliver_dispatch(struct deliver *d, struct deliver_req *req, int64_t now)
{
	struct deliver_route_st *r = req->route;
	struct webhook_req *wr;
	int rc;

	if ((wr = deliver_pool_get(d)) == NULL) {
		rc = GW_ENOMEM;
		goto nomem;
	}
	rc = webhook_req_prepare(wr, &r->conf.http, d->instance_id, req->rows,
	    req->n, now);
	if (rc == GW_EMALFORMED) {
		if (log_ratelimited(&r->loglim, 5, 10000))
			log_warn("deliver: route %s: row %lld: %s: dead letter",
			    r->conf.name, (long long)req->rows[0].id,
			    webhook_req_error(wr));
		atomic_fetch_add(&r->ctr->dead, req->n);
		deliver_result_rows(d, req, OUTBOX_FAIL, 0, 0,
		    webhook_req_error(wr), NULL, false);
		deliver_pool_put(d, wr);
		deliver_req_free(d, req, true);
		return;
	}
	if (rc == 0) {
		curl_easy_setopt(webhook_req_easy(wr), CURLOPT_PRIVATE, req);
		if (curl_multi_add_handle(d->multi, webhook_req_easy(wr)) ==
		    CURLM_OK) {
			req->wr = wr;
			deliver_inflight_link(d, req);
			r->inflight++;
			atomic_fetch_add(&r->ctr->in_flight, 1);
			return;
		}
	}
	deliver_pool_put(d, wr);
nomem:
	/* Try again a little later, same rows. */
	log_warn("deliver: route %s: cannot start a request (%s)",
	    r->conf.name, gw_strerror(rc != 0 ? rc : GW_EIO));
	req->next_ms = now + DELIVER_NOMEM_MS;
	deliver_hold(r, req);
}

/* Moves rows [0, k) of the buffer into a new request. */
static struct deliver_req *
deliver_take_rows(struct deliver_route_st *r, size_t k)
{
	struct deliver_req *req;
	size_t i;

	if ((req = gw_calloc(1, sizeof *req)) == NULL ||
	    (req->rows = gw_malloc(k * sizeof *req->rows)) == NULL) {
		gw_free(req);
		return NULL;
	}
	memcpy(req->rows, r->buf, k * sizeof *req->rows);
	memmove(r->buf, r->buf + k, (r->nbuf - k) * sizeof *r->buf);
	r->nbuf -= k;
	memset(r->buf + r->nbuf, 0, k * sizeof *r->buf);
	req->route = r;
	req->n = k;
	for (i = 0; i < k; i++) {
		r->bufbytes -= req->rows[i].bytes;
		if (req->rows[i].attempts > req->attempts)
			req->attempts = req->rows[i].attempts;
	}
	return req;
}

/* How many rows at the head of the buffer go into one request. */
static size_t
deliver_batch_len(struct deliver_route_st *r)
{
	const struct outbox_row *a = &r->buf[0], *b;
	size_t k;

	for (k = 1; k < r->nbuf && k < r->conf.batch.max_messages; k++) {
		b = &r->buf[k];
		if (strcmp(a->url, b->url) != 0 ||
		    (a->headers == NULL) != (b->headers == NULL) ||
		    (a->headers != NULL && strcmp(a->headers, b->headers) != 0))
			break;
	}
	return k;
}

/* Starts what route r may start now; lowers *wake to its next deadline. */
static void
deliver_pump(struct deliver *d, struct deliver_route_st *r, int64_t now,
    int64_t *wake)
{
	int64_t deadline, max_age = r->conf.retry.max_age_ms;
	unsigned lim = r->conf.max_in_flight;
	struct deliver_req *req;
	size_t k, guard;
	int rc;

	if (r->gone)
		return;
	for (guard = 0; guard < 4 * r->bufcap + 64; guard++) {
		if (r->inflight >= lim)
			return;
		/* A held request whose time has come goes first. */
		if ((req = r->held) != NULL && req->next_ms <= now) {
			if (!deliver_token(r, now, wake))
				return;
			r->held = req->next;
			r->nheld--;
			req->next = NULL;
			deliver_dispatch(d, req, now);
			continue;
		}
		if (req != NULL && req->next_ms < *wake)
			*wake = req->next_ms;
		/* Ordered: nothing new while one is in flight or held. */
		if (r->inflight + r->nheld >= lim)
			return;
		if (r->more && r->nbuf < r->conf.batch.max_messages) {
			if ((rc = deliver_claim(d, r, now)) == GW_ERETRY) {
				if (now + DELIVER_RACE_MS < *wake)
					*wake = now + DELIVER_RACE_MS;
				return;
			}
			if (rc != 0) {
				if (now + DELIVER_NOMEM_MS < *wake)
					*wake = now + DELIVER_NOMEM_MS;
				return;
			}
			if (r->nbuf == 0 && r->nheld > 0)
				continue;	/* a scheduled row was held */
		}
		if (r->nbuf == 0)
			return;
		/* Too old to be worth sending: dead letter, unsent. */
		if (max_age > 0 && r->buf[0].created_ms + max_age <= now) {
			if ((req = deliver_take_rows(r, 1)) == NULL)
				return;
			atomic_fetch_add(&r->ctr->dead, 1);
			deliver_result_rows(d, req, OUTBOX_FAIL, 0, 0,
			    "max_age exceeded before sending", NULL, false);
			deliver_req_free(d, req, true);
			continue;
		}
		/* A batch not full yet waits for max_delay_ms. */
		k = deliver_batch_len(r);
		if (k < r->conf.batch.max_messages && k == r->nbuf) {
			deadline = r->buf[0].created_ms +
			    r->conf.batch.max_delay_ms;
			if (deadline > now) {
				if (deadline < *wake)
					*wake = deadline;
				return;
			}
		}
		if (!deliver_token(r, now, wake))
			return;
		if ((req = deliver_take_rows(r, k)) == NULL) {
			if (now + DELIVER_NOMEM_MS < *wake)
				*wake = now + DELIVER_NOMEM_MS;
			return;
		}
		deliver_dispatch(d, req, now);
	}
	*wake = now;	/* more to do: come back without sleeping */
}

/* Unlinks r (gone, idle) from the table and frees it. */
static void
deliver_route_retire(struct deliver *d, struct deliver_route_st *r)
{
	size_t i;

	for (i = 0; i < d->nroutes; i++) {
		if (d->routes[i] == r) {
			d->routes[i] = d->routes[--d->nroutes];
			break;
		}
	}
	deliver_route_free(d, r);
}

/* Turns a finished transfer into results and route bookkeeping. */
static void
deliver_finish(struct deliver *d, CURL *easy, CURLcode cc)
{
	const struct deliver_retry *rt;
	struct webhook_outcome out;
	struct deliver_route_st *r;
	struct deliver_req *req;
	int64_t now = clock_wall_ms(), delay, oldest;
	uint32_t attempts;
	char why[384], *priv = NULL;
	size_t i;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	curl_multi_remove_handle(d->multi, easy);
	if ((req = (struct deliver_req *)priv) == NULL)
		return;
	r = req->route;
	rt = &r->conf.retry;
	webhook_req_finish(req->wr, cc, &out);
	r->inflight--;
	atomic_fetch_sub(&r->ctr->in_flight, 1);
	deliver_inflight_unlink(d, req);

	if (out.verdict == OUTBOX_RETRY) {
		attempts = req->attempts + 1;
		oldest = req->rows[0].created_ms;
		for (i = 1; i < req->n; i++)
			if (req->rows[i].created_ms < oldest)
				oldest = req->rows[i].created_ms;
		if (rt->max_attempts != 0 && attempts >= rt->max_attempts) {
			snprintf(why, sizeof why, "max_attempts %u reached; "
			    "last: %s", rt->max_attempts, out.error);
			out.verdict = OUTBOX_FAIL;
			out.error = why;
		} else if (rt->max_age_ms > 0 &&
		    oldest + rt->max_age_ms <= now) {
			snprintf(why, sizeof why, "max_age exceeded; last: %s",
			    out.error);
			out.verdict = OUTBOX_FAIL;
			out.error = why;
		}
	}
	switch (out.verdict) {
	case OUTBOX_OK:
		atomic_fetch_add(&r->ctr->delivered, req->n);
		deliver_result_rows(d, req, OUTBOX_OK, out.status, 0, NULL,
		    NULL, true);
		break;
	case OUTBOX_RETRY:
		delay = backoff_next_delay_ms(&d->rng, rt->base_ms, rt->cap_ms,
		    req->attempts, out.retry_after_ms);
		req->attempts++;
		req->next_ms = now + delay;
		atomic_fetch_add(&r->ctr->retried, req->n);
		deliver_result_rows(d, req, OUTBOX_RETRY, out.status,
		    req->next_ms, out.error, NULL, true);
		if (log_ratelimited(&r->loglim, 5, 10000))
			log_warn("deliver: route %s: %s (%s): retry %u in "
			    "%lld ms", r->conf.name, webhook_req_key(req->wr),
			    out.error, req->attempts, (long long)delay);
		break;
	default:
		atomic_fetch_add(&r->ctr->dead, req->n);
		deliver_result_rows(d, req, OUTBOX_FAIL, out.status, 0,
		    out.error, out.response, true);
		if (log_ratelimited(&r->loglim, 5, 10000))
			log_warn("deliver: route %s: %s: %s: dead letter",
			    r->conf.name, webhook_req_key(req->wr), out.error);
		break;
	}
	deliver_pool_put(d, req->wr);
	req->wr = NULL;
	if (out.verdict == OUTBOX_RETRY && !r->gone)
		deliver_hold(r, req);
	else
		deliver_req_free(d, req, true);
	if (r->gone && r->inflight == 0)
		deliver_route_retire(d, r);
}

/* Frees everything the thread owns. */
static void
deliver_teardown(struct deliver *d)
{
	struct deliver_req *req;
	size_t i, lost = 0;

	while ((req = d->inflight) != NULL) {
		deliver_inflight_unlink(d, req);
		curl_multi_remove_handle(d->multi, webhook_req_easy(req->wr));
		webhook_req_free(req->wr);
		req->route->inflight--;
		atomic_fetch_sub(&req->route->ctr->in_flight, 1);
		deliver_req_free(d, req, true);
		lost++;
	}
	if (lost != 0)
		log_info("deliver: %zu request(s) abandoned at stop; their "
		    "rows stay in the outbox", lost);
	for (i = 0; i < d->nroutes; i++)
		deliver_route_free(d, d->routes[i]);
	gw_free(d->routes);
	d->routes = NULL;
	d->nroutes = 0;
	for (i = 0; i < d->npool; i++)
		webhook_req_free(d->pool[i]);
	gw_free(d->pool);
	results_discard(&d->res, "deliver");
	outbox_reader_close(d->reader);
	d->reader = NULL;
}

/*
 * A damaged database replaced by a fresh file (store/heal.c) has a new
 * inode under the same name: read the outbox from there from now on. The
 * rows salvaged kept their ids but new ones may reuse ids past the damage,
 * so each route forgets what it read ahead and reads from the start again
 * (a request in flight then may be sent twice: at least once).
 */
static void
deliver_follow_db(struct deliver *d)
{
	struct deliver_route_st *rt;
	struct outbox_reader *r;
	struct stat sb;
	size_t i, j;

	if (stat(d->db_path, &sb) == -1 || sb.st_ino == d->db_ino)
		return;
	if ((r = outbox_reader_open(d->db_path)) == NULL)
		return;
	log_warn("deliver: %s was replaced by a fresh file: reading the "
	    "outbox from it", d->db_path);
	outbox_reader_close(d->reader);
	d->reader = r;
	d->instance_id = outbox_reader_instance_id(r);
	d->db_ino = sb.st_ino;
	for (i = 0; i < d->nroutes; i++) {
		rt = d->routes[i];
		results_held_del(&d->held, rt->buf, rt->nbuf);
		for (j = 0; j < rt->nbuf; j++)
			outbox_row_clear(&rt->buf[j]);
		rt->nbuf = 0;
		rt->bufbytes = 0;
		rt->cursor = 0;
		rt->more = true;
	}
}

static void *
deliver_main(void *arg)
{
	struct deliver *d = arg;
	long long stop_at = 0, mono;
	int64_t now, wake, timeout;
	bool stopping = false;
	struct stat sb;
	CURLMsg *msg;
	int running, left;
	size_t i;

	d->reader = outbox_reader_open(d->db_path);
	pthread_mutex_lock(&d->mu);
	d->start_rc = d->reader != NULL ? 0 : GW_EIO;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->mu);
	if (d->reader == NULL)
		return NULL;
	d->instance_id = outbox_reader_instance_id(d->reader);
	if (d->instance_id[0] == '\0')
		log_warn("deliver: the database has no instance_id");
	if (stat(d->db_path, &sb) == 0)
		d->db_ino = sb.st_ino;

	for (;;) {
		curl_multi_perform(d->multi, &running);
		while ((msg = curl_multi_info_read(d->multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				deliver_finish(d, msg->easy_handle,
				    msg->data.result);
		mono = clock_mono_ms();
		if (atomic_load(&d->stop)) {
			if (!stopping) {
				stopping = true;
				stop_at = mono + atomic_load(&d->grace_ms);
			}
			results_flush(&d->res);
			if (d->inflight == NULL || mono >= stop_at)
				break;
			timeout = stop_at - mono;
			curl_multi_poll(d->multi, NULL, 0, (int)(timeout < 100 ?
			    timeout : 100), NULL);
			continue;
		}
		deliver_take_routes(d);
		if (atomic_exchange(&d->woken, false))
			for (i = 0; i < d->nroutes; i++)
				d->routes[i]->more = true;
		if (mono >= d->gauge_next) {
			deliver_follow_db(d);
			deliver_gauges(d);
			d->gauge_next = mono + d->gauge_ms;
		}
		now = clock_wall_ms();
		wake = now + DELIVER_IDLE_MS;
		for (i = 0; i < d->nroutes; i++)
			deliver_pump(d, d->routes[i], now, &wake);
		results_flush(&d->res);
		if (results_waiting(&d->res) != 0 &&
		    now + DELIVER_PUSH_RETRY_MS < wake)
			wake = now + DELIVER_PUSH_RETRY_MS;
		if (d->gauge_next - mono < wake - now)
			wake = now + (d->gauge_next - mono);
		timeout = wake - clock_wall_ms();
		if (timeout < 0)
			timeout = 0;
		if (timeout > DELIVER_IDLE_MS)
			timeout = DELIVER_IDLE_MS;
		curl_multi_poll(d->multi, NULL, 0, (int)timeout, NULL);
	}
	deliver_teardown(d);
	return NULL;
}
