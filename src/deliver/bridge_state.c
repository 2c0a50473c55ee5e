/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 The mqlite authors */
/*
 * The bridge's state that other threads touch, and small helpers of the
 * bridge thread: route tables (deep copies, comparison), counters, the
 * held-id set, results on their way to the store and the window slots
 * that wait for the store to commit them. DESIGN: the results queue, the
 * held-id set and the counter list are those of results.c, shared with
 * the webhook delivery; the rest is under b->mu or atomic, and nothing
 * here blocks on I/O.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/bridge_int.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "queue.h"
#include "store/outbox.h"

/* ------------------------------------------------------------------ */
/* Small helpers.                                                       */

/* See bridge.h. Any thread unless it says otherwise. */
const char *
bridge_state_name(enum bridge_state st)
{
	switch (st) {
	case BRIDGE_UP:
		return "up";
	case BRIDGE_CONNECTING:
		return "connecting";
	default:
		return "down";
	}
}

/* See bridge.h. Any thread unless it says otherwise. */
int64_t
bridge_reconnect_delay(uint64_t *rng_state, uint32_t failures)
{
	struct backoff_rng r = { *rng_state };
	int64_t d;

	d = backoff_delay_ms(&r, BRIDGE_BASE_MS, BRIDGE_CAP_MS, failures);
	*rng_state = r.s;
	return d;
}

static char *
dup_or_null(const char *s, bool *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = gw_strdup(s)) == NULL)
		*bad = true;
	return d;
}

/* See bridge_int.h. */
void
bridge_route_conf_free(struct bridge_route *r)
{
	size_t i;

	gw_free((char *)r->name);
	for (i = 0; r->urls != NULL && i < r->nurls; i++)
		gw_free((char *)r->urls[i]);
	gw_free((char **)r->urls);
	gw_free((char *)r->client_id);
	gw_free((char *)r->username);
	if (r->password != NULL) {
		memset((char *)r->password, 0, strlen(r->password));
		gw_free((char *)r->password);
	}
	gw_free((char *)r->ca_file);
	gw_free((char *)r->cert);
	gw_free((char *)r->key);
	memset(r, 0, sizeof *r);
}

/* See bridge_int.h. */
int
bridge_route_conf_copy(struct bridge_route *d, const struct bridge_route *s)
{
	char **urls;
	bool bad = false;
	size_t i;

	memset(d, 0, sizeof *d);
	*d = *s;
	d->urls = NULL;
	d->name = dup_or_null(s->name, &bad);
	d->client_id = dup_or_null(s->client_id, &bad);
	d->username = dup_or_null(s->username, &bad);
	d->password = dup_or_null(s->password, &bad);
	d->ca_file = dup_or_null(s->ca_file, &bad);
	d->cert = dup_or_null(s->cert, &bad);
	d->key = dup_or_null(s->key, &bad);
	if ((urls = gw_calloc(s->nurls, sizeof *urls)) == NULL)
		bad = true;
	else {
		d->urls = (const char *const *)urls;
		for (i = 0; i < s->nurls; i++)
			urls[i] = dup_or_null(s->urls[i], &bad);
	}
	if (bad) {
		bridge_route_conf_free(d);
		return GW_ENOMEM;
	}
	return 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether two routes have the same settings. */
bool
bridge_route_conf_eq(const struct bridge_route *a, const struct bridge_route *b)
{
	size_t i;

	if (!str_eq(a->name, b->name) || a->nurls != b->nurls ||
	    !str_eq(a->client_id, b->client_id) ||
	    !str_eq(a->username, b->username) ||
	    !str_eq(a->password, b->password) ||
	    !str_eq(a->ca_file, b->ca_file) || !str_eq(a->cert, b->cert) ||
	    !str_eq(a->key, b->key) || a->insecure != b->insecure ||
	    a->qos != b->qos || a->retain != b->retain ||
	    a->keepalive != b->keepalive ||
	    a->max_in_flight != b->max_in_flight ||
	    a->mqtt_version != b->mqtt_version)
		return false;
	for (i = 0; i < a->nurls; i++)
		if (!str_eq(a->urls[i], b->urls[i]))
			return false;
	return true;
}

/* Deep copy of a route table; GW_ECONFIG on empty or duplicate names. */
int
bridge_routes_copy(const struct bridge_route *src, size_t n,
    struct bridge_route **out)
{
	struct bridge_route *t;
	size_t i, j;

	*out = NULL;
	for (i = 0; i < n; i++) {
		if (src[i].name == NULL || src[i].name[0] == '\0' ||
		    src[i].nurls == 0 || src[i].max_in_flight == 0)
			return GW_ECONFIG;
		for (j = 0; j < i; j++)
			if (strcmp(src[i].name, src[j].name) == 0)
				return GW_ECONFIG;
	}
	if (n == 0)
		return 0;
	if ((t = gw_calloc(n, sizeof *t)) == NULL)
		return GW_ENOMEM;
	for (i = 0; i < n; i++) {
		if (bridge_route_conf_copy(&t[i], &src[i]) != 0) {
			bridge_routes_free(t, i);
			return GW_ENOMEM;
		}
	}
	*out = t;
	return 0;
}

/* See bridge_int.h. */
void
bridge_routes_free(struct bridge_route *t, size_t n)
{
	size_t i;

	for (i = 0; t != NULL && i < n; i++)
		bridge_route_conf_free(&t[i]);
	gw_free(t);
}

/* ------------------------------------------------------------------ */
/* Held ids, counters.                                                  */

static int
cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* See bridge.h. Any thread unless it says otherwise. */
int
bridge_held_ids(struct bridge *b, int64_t **ids, size_t *n)
{
	return results_held_ids(&b->held, ids, n);
}

/* See bridge.h. Any thread unless it says otherwise. */
void
bridge_drop_mark(struct bridge *b)
{
	results_held_drop_mark(&b->held);
}

/* See bridge.h. Any thread unless it says otherwise. */
void
bridge_count_dropped(struct bridge *b, const char *route, uint64_t n)
{
	results_ctr_dropped(&b->ctrs, route, n, false);
}

/* See bridge.h. Any thread unless it says otherwise. */
void
bridge_stats(struct bridge *b, results_route_stats_cb cb, void *ctx)
{
	results_ctrs_stats(&b->ctrs, cb, ctx);
}

/* ------------------------------------------------------------------ */
/* Results.                                                             */

/*
 * Notes that id's result is on its way to the store: its window slot stays
 * taken until bridge_results_committed() reports the delete committed.
 * false when there is no room to remember it (the slot is freed at once).
 */
static bool
bridge_await(struct bridge *b, int64_t id)
{
	int64_t *p;
	size_t cap;
	bool ok = true;

	pthread_mutex_lock(&b->mu);
	if (b->nawait + b->ngone >= b->capawait) {
		/* gone and seen hold up to capawait ids as well. */
		cap = b->capawait == 0 ? 64 : b->capawait * 2;
		if ((p = gw_realloc(b->await, cap * sizeof *p)) != NULL)
			b->await = p;
		if (p != NULL && (p = gw_realloc(b->gone, cap *
		    sizeof *p)) != NULL)
			b->gone = p;
		if (p != NULL && (p = gw_realloc(b->seen, cap *
		    sizeof *p)) != NULL)
			b->seen = p;
		if (p != NULL)
			b->capawait = cap;
		else
			ok = false;
	}
	if (ok)
		b->await[b->nawait++] = id;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

/* Forgets an awaited id whose result never reached the store. */
static void
bridge_unawait(struct bridge *b, int64_t id)
{
	size_t i;

	pthread_mutex_lock(&b->mu);
	for (i = 0; i < b->nawait; i++)
		if (b->await[i] == id) {
			b->await[i] = b->await[--b->nawait];
			break;
		}
	pthread_mutex_unlock(&b->mu);
}

/*
 * Queues one row's result for the store; never blocks. true when the
 * row's slot must wait for the commit of its result, false when the
 * result was lost to a lack of memory (the row stays in the outbox and is
 * sent again after a restart) or cannot be tracked.
 */
bool
bridge_push(struct bridge *b, int64_t id, enum outbox_verdict v,
    const char *error)
{
	struct outbox_result r;

	memset(&r, 0, sizeof r);
	r.id = id;
	r.verdict = (uint8_t)v;
	if (error != NULL)
		r.error = gw_strdup(error);
	/*
	 * The id is awaited before the result is queued: the store may take
	 * the result and commit it at once, and a commit reported for an id
	 * not yet awaited would never free its slot (the window would stall
	 * behind it).
	 */
	if (!bridge_await(b, id)) {
		(void)results_push(&b->res, &r);
		return false;
	}
	if (!results_push(&b->res, &r)) {
		bridge_unawait(b, id);
		return false;
	}
	return true;
}

/* See bridge.h. Store thread. */
void
bridge_results_committed(struct bridge *b, const struct outbox_result *res,
    size_t n)
{
	int64_t ids[256];
	size_t i, j, k, moved = 0;

	/* Sorted chunks, looked up from each waiting id: n x log, not n x w. */
	for (i = 0; i < n; i += k) {
		for (k = 0; k < sizeof ids / sizeof ids[0] && i + k < n; k++)
			ids[k] = res[i + k].id;
		qsort(ids, k, sizeof ids[0], cmp_id);
		pthread_mutex_lock(&b->mu);
		for (j = 0; j < b->nawait; ) {
			if (bsearch(&b->await[j], ids, k, sizeof ids[0],
			    cmp_id) == NULL) {
				j++;
				continue;
			}
			b->gone[b->ngone++] = b->await[j];
			b->await[j] = b->await[--b->nawait];
			moved++;
		}
		if (moved > 0)
			pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->mu);
	}
}

/*
 * Takes the ids whose delete was committed since the last call into
 * b->seen, sorted; returns how many. Bridge thread.
 */
size_t
bridge_take_gone(struct bridge *b)
{
	size_t n;

	pthread_mutex_lock(&b->mu);
	n = b->ngone;
	if (n > 0)
		memcpy(b->seen, b->gone, n * sizeof *b->seen);
	b->ngone = 0;
	pthread_mutex_unlock(&b->mu);
	if (n > 1)
		qsort(b->seen, n, sizeof *b->seen, cmp_id);
	return n;
}
